//! The visitor's consent to tracking, as the page's consent manager (CMP) gives it:
//! `Klaviyo.create({ consent })` at every page load, then `kl.setConsent(state)` when
//! the visitor answers. The page is the source of truth; we keep no record of it.
//!
//! What each state lets the client do (the rules live in `client/` and `queue/`):
//!
//! - [`Consent::Granted`] (the default): everything works as documented.
//! - [`Consent::Pending`]: calls are validated (bad input throws as ever) and held in
//!   memory. Nothing is written to storage, not even the anonymous id, and nothing is
//!   sent. Granting then writes and sends them with their own `unique_id` and time;
//!   denying drops them. A page closed while pending loses them, by design.
//! - [`Consent::Denied`]: everything stored under our prefix (`klaviyo:<companyId>:`,
//!   which covers every key we use: `id`, `q:`, `k:`, `pre:`, `lease`, and the marker
//!   below) is erased; other shops' keys and the page's own are left alone. What the
//!   page held is dropped and forgotten (identity included), and from then on calls
//!   are validated and dropped without throwing. `onError` hears of it once per denial
//!   (kind `consent`), at the first calls dropped. What other tabs store meanwhile is
//!   not read.
//!
//! A pending page does read what an earlier granted page stored (its identity, its
//! queue), in memory only: none of it is written back or sent before a grant.
//!
//! Withdrawal in another tab: a tab whose page denies tells the others by writing
//! [`DENIED`] under the marker key (`klaviyo:<companyId>:consent`) just before it
//! erases (which removes the marker again, in the same task). Every other tab's
//! `storage` event carries it: that tab becomes denied (its calls dropped and reported
//! as refused, not taken for delivered by the erasure that follows) and erases too, so
//! a write it made in the meantime goes as well. It does not tell the others again.
//!
//! Why a marker in storage and not a record of the refusal: the marker holds no
//! personal data and does not stay, so "denied" still means nothing of ours is stored.
//! Nothing remembers a refusal across page loads: the page passes its CMP's answer at
//! every load, and is the source of truth. (BroadcastChannel would do the same without
//! the write, but storage events are already how tabs follow each other here.) Only a
//! withdrawal travels between tabs; a grant never does (each page grants for itself).
//! A tab that is still loading its wasm when another withdraws does not hear of it: it
//! has what its own page told it.

/// The value the marker key carries while it exists.
pub const DENIED: &str = "denied";

/// The states, by the code the adapter uses: js/index.js maps the JS names
/// (`"pending"`, `"granted"`, `"denied"`) to these and checks them, so no name crosses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    Pending = 0,
    Granted = 1,
    Denied = 2,
}

impl Consent {
    pub fn from_code(code: u64) -> Option<Consent> {
        match code {
            0 => Some(Consent::Pending),
            1 => Some(Consent::Granted),
            2 => Some(Consent::Denied),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "consent_tests.rs"]
mod tests;
