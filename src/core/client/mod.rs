//! The browser client's logic, sans IO: each call of the JS API is validated, given
//! what must be fixed at call time (its id, its time, the profile it belongs to) and
//! queued; request bodies are built later, when they are sent. The adapter supplies
//! the clock (`now_ms`), fresh random ids, what storage held, and carries out the
//! storage writes and transmits.
//!
//! Consent (`consent.rs`) gates all of it: while pending nothing is written or sent and
//! calls are held; while denied storage is erased and calls are dropped. Klaviyo's own
//! opt-out cookie (`__kla_off=true`, `onsite.rs`) denies it for as long as it is set,
//! whatever the page's consent manager says.

use std::borrow::Cow;

use super::config::Config;
use super::consent::{self, Consent};
use super::ecommerce;
use super::identity::Identity;
use super::jsontext::{self as jt, Kind};
use super::onsite;
use super::payload::{self, Event};
#[cfg(test)]
use super::queue::Report;
#[cfg(test)]
use super::queue::StorageOp;
use super::queue::{Endpoint, Queue, ReportKind, StorageOps, Stored, Transmit};
use super::record;
use super::retry::Outcome;
use super::text;
use super::time;
use super::validate::{self, ValidationError};

type Result<T> = std::result::Result<T, ValidationError>;

/// A page keeps the calls made before its tracker is ready in storage (`pre:<page>`)
/// until its core has them. If it closes first, the sending tab adopts them once they are
/// this old (the page that wrote them would have been ready long before).
pub const EARLY_STALE_MS: u64 = 60_000;

/// The calls of the JS API that queue something, by the number the adapter passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Identify = 1,
    Track,
    ViewedProduct,
    AddedToCart,
    StartedCheckout,
    Subscribe,
    BackInStock,
    ViewedCollection,
    SubmittedSearch,
    ActiveOnSite,
    /// `Active on Site` for a page view the tracker saw itself (`activeOnSite: "auto"`):
    /// never two in a row for one `URL`.
    PageView,
}

impl Op {
    pub fn from_code(code: u32) -> Option<Op> {
        const ALL: [Op; 11] = [
            Op::Identify,
            Op::Track,
            Op::ViewedProduct,
            Op::AddedToCart,
            Op::StartedCheckout,
            Op::Subscribe,
            Op::BackInStock,
            Op::ViewedCollection,
            Op::SubmittedSearch,
            Op::ActiveOnSite,
            Op::PageView,
        ];
        ALL.get(usize::try_from(code).ok()?.checked_sub(1)?)
            .copied()
    }

    /// The JS method name, which starts every error message.
    pub fn name(self) -> &'static str {
        match self {
            Op::Identify => "identify",
            Op::Track => "track",
            Op::ViewedProduct => "viewedProduct",
            Op::AddedToCart => "addedToCart",
            Op::StartedCheckout => "startedCheckout",
            Op::Subscribe => "subscribe",
            Op::BackInStock => "backInStock",
            Op::ViewedCollection => "viewedCollection",
            Op::SubmittedSearch => "submittedSearch",
            Op::ActiveOnSite | Op::PageView => "activeOnSite",
        }
    }

    /// What the n-th argument is called in messages.
    fn arg_name(self, n: usize) -> &'static str {
        match (self, n) {
            (Op::Track, 0) => "metric",
            (Op::Track, 1) => "properties",
            (Op::Track, _) => "options",
            (Op::Identify, _) => "profile",
            (Op::Subscribe | Op::BackInStock, _) => "options",
            (_, 0) => "properties",
            _ => "options",
        }
    }
}

/// Profile keys `identify` accepts, as Klaviyo names them. Anything custom belongs in
/// `properties`.
const PROFILE_KEYS: &[&str] = &[
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "title",
    "image",
    "locale",
    "location",
    "properties",
];
const LOCATION_KEYS: &[&str] = &[
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
    "timezone",
    "ip",
];

/// Who tells the other tabs of a change of consent (only a denial travels, through
/// the marker key) and erases our storage for it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Told {
    /// This page's own answer: tell them, then erase.
    Now,
    /// Another tab's: it told them; erase what this tab wrote since.
    ByOtherTab,
    /// The adapter told them and erased, before this core ran.
    Already,
}

pub struct Client {
    pub config: Config,
    identity: Identity,
    queue: Queue,
    /// What a denial left to write (the marker, the erasure), whatever the consent now.
    erasure: StorageOps,
    /// `__kla_off=true` was seen: denied for the rest of the page, whatever the page's
    /// consent manager says (the next page reads the cookie again).
    opted_out: bool,
    /// The `URL` of the last automatic page view.
    last_page: String,
    /// When the first calls of another page's loading window, seen but still fresh,
    /// become stale (then [`Client::adopt_stored`] takes them).
    early_due: Option<u64>,
}

impl Client {
    /// `stored_identity` is what storage held under [`Config::identity_key`];
    /// `page_query` is the page URL's query string, where an email click leaves `_kx`;
    /// `fresh_id` becomes the anonymous id if none was stored. Stored records are
    /// handed in afterwards with [`Client::load`].
    pub fn new(
        config: Config,
        stored_identity: Option<&str>,
        page_query: &str,
        fresh_id: &str,
    ) -> Client {
        let mut identity = stored_identity
            .and_then(Identity::restore)
            .unwrap_or_else(|| Identity::new(fresh_id.to_string()));
        if let Some(kx) = text::query_param(page_query, "_kx").filter(|k| !k.is_empty()) {
            if identity.kx.as_ref() != Some(&kx) {
                identity.set_kx(kx);
            }
        }
        let queue = Queue::new(
            config.queue_prefix(),
            config.mark_prefix(),
            config.limits.clone(),
        );
        let consent = config.consent;
        let mut client = Client {
            config,
            identity,
            queue,
            erasure: StorageOps::default(),
            opted_out: false,
            last_page: String::new(),
            early_due: None,
        };
        // Denied: the identity read above is dropped with everything else.
        client.change(consent, "", Told::Now);
        if stored_identity != Some(client.identity.to_storage().as_str()) {
            client.save_identity();
        }
        client
    }

    /// Writes the identity, once consent is granted (pending: at the grant).
    fn save_identity(&mut self) {
        if self.consent() == Consent::Granted {
            let key = self.config.identity_key();
            self.identity.write_storage(self.queue.ops.put(&key, ""));
        }
    }

    pub fn consent(&self) -> Consent {
        self.queue.consent()
    }

    /// The page's consent manager changed its answer (`kl.setConsent`). `fresh_id` is
    /// the anonymous id of a new profile, used when a grant follows a denial (the
    /// earlier identity was erased with everything else).
    pub fn set_consent(&mut self, consent: Consent, fresh_id: &str) {
        if !self.opted_out {
            self.change(consent, fresh_id, Told::Now);
        }
    }

    /// A denial carried out before this core heard of it: by the adapter before this core
    /// ran (js/index.js, the loading window), or by another tab while this page was in
    /// the back/forward cache or frozen (js/runtime.js, consent code 5): the other tabs
    /// were told and our storage erased then. This page's calls are dropped (and
    /// reported), and the records it wrote since (as it came back, before it heard of
    /// the denial) removed; what else storage holds now was written since, by other tabs
    /// (their queue, a loading page's window): it is forgotten, not erased again.
    pub fn denied_before_start(&mut self) {
        self.queue.remove_own_records(&mut self.erasure);
        self.queue.forget_other_tabs_calls();
        self.change(Consent::Denied, "", Told::Already);
    }

    /// Reads Klaviyo's onsite cookies (`document.cookie`): at start, and again before
    /// the page's first send, since the onsite script may set them after we start. Its
    /// visitor fills what ours lack (`identity.rs`); `__kla_off=true` denies consent
    /// for the rest of the page, and the other tabs are told as for a withdrawal.
    pub fn read_cookies(&mut self, cookies: &str) {
        let onsite = onsite::read(cookies);
        if onsite.off && !self.opted_out {
            self.opted_out = true;
            self.change(Consent::Denied, "", Told::Now);
        }
        if self.consent() != Consent::Denied {
            self.identity.set_onsite(onsite.visitor);
        }
    }

    /// Whether the visitor is known: an email, a phone number, an external id or a `_kx`.
    pub fn is_identified(&self) -> bool {
        self.identity.is_identified()
    }

    /// Consent becomes `consent`. Denied: drop what the page holds (identity included)
    /// and erase every key under our prefix. When the denial is this page's
    /// ([`Told::Now`]), the other tabs are told first, through the marker key, which the
    /// erasure removes at once: so they drop their calls as refused ones before they
    /// see the erasure. A grant or pending after a denial starts a new profile (`fresh_id`).
    fn change(&mut self, consent: Consent, fresh_id: &str, told: Told) {
        let was = self.consent();
        if consent == was {
            return;
        }
        self.queue.set_consent(consent);
        let denied = consent == Consent::Denied;
        if denied || was == Consent::Denied {
            let id = if denied { "" } else { fresh_id };
            self.identity = Identity::new(id.to_string());
        }
        // Granted: the identity is written with the calls held while pending.
        self.save_identity();
        if !denied || told == Told::Already {
            return;
        }
        if told == Told::Now {
            let key = self.config.consent_key();
            self.erasure.put(&key, "").push_str(consent::DENIED);
        }
        self.erasure.erase(&self.config.storage_prefix());
    }

    /// A key and value found in storage under our prefix (queue records, keepalive marks).
    /// Ignored while consent is denied (other tabs' data is not ours to hold then).
    pub fn load(&mut self, key: &str, value: &str) {
        self.queue.load(key, value);
    }

    /// A record of calls made before a page's tracker was ready:
    /// `[saved_ms, op, "[id,time,...args]", op, ...]`. Once stale it is adopted: its
    /// calls are queued with their own ids and times (refused ones are reported), and
    /// it is removed. A `reset` of that window is not replayed: the identity has moved on.
    pub fn adopt_early(&mut self, key: &str, value: &str, now_ms: u64) {
        if self.consent() == Consent::Denied {
            return; // erased
        }
        let Ok(v) = jt::check(value) else {
            return self.queue.ops.remove(key, "");
        };
        let mut parts = jt::items(&v);
        let saved = parts.next().and_then(text::parse_u64);
        // Saved before the shop's last denial: its calls were made before it.
        if saved.is_some_and(|t| self.queue.before_denial(t, now_ms)) {
            return self.queue.ops.remove(key, "");
        }
        if let Some(stale) = saved.map(|t| t + EARLY_STALE_MS).filter(|s| *s > now_ms) {
            // Its page may still be loading: adopt it once it is stale, if it is left.
            self.early_due = Some(self.early_due.map_or(stale, |d| d.min(stale)));
            return;
        }
        let (mut refused, mut first) = (0, String::new());
        // That page's views follow its own "same URL in a row" rule, not this page's.
        let own_page = std::mem::take(&mut self.last_page);
        while let (Some(op), Some(args)) = (parts.next(), parts.next()) {
            let op = text::parse_u64(op).and_then(|n| Op::from_code(n as u32));
            let args = jt::unescape(args).unwrap_or_default();
            let Some(op) = op else { continue };
            if let Err(e) = self.call_json(op, &args, now_ms) {
                refused += 1;
                if first.is_empty() {
                    first = e.message(op.name());
                }
            }
        }
        self.last_page = own_page;
        if refused > 0 {
            self.queue.report(ReportKind::Invalid, 0, &first, refused);
        }
        self.queue.ops.remove(key, "");
    }

    /// When the first loading-window record seen still fresh becomes stale.
    pub fn early_due(&self) -> Option<u64> {
        self.early_due
    }

    /// What storage holds under our prefix, at start: queue records and keepalive marks
    /// are loaded (the queue takes only its own keys). Loading-window records wait for
    /// the sender ([`Client::adopt_stored`]).
    pub fn load_stored(&mut self, stored: Stored) {
        for (key, value) in stored.pairs() {
            self.load(key, value);
        }
    }

    /// The loading-window records among `stored`, adopted by the sender tab only: on
    /// becoming it, and again at [`Client::early_due`]. Tabs that open together (a
    /// restored session) would otherwise each adopt the same record: each writes it,
    /// one write lands after the sender sent and removed it, and its calls go twice.
    /// Stale ones are adopted; the rest wait again. In a tab that does not send, nothing.
    pub fn adopt_stored(&mut self, stored: Stored, now_ms: u64) {
        self.early_due = None;
        for (key, value) in stored.pairs() {
            self.early_written(key, Some(value), now_ms);
        }
    }

    /// Another tab wrote `key` (heard as it happens, or found by a scan): when it is a
    /// loading-window record (that page's wasm may still be loading), the sender adopts
    /// it once stale, if it is left by then.
    pub fn early_written(&mut self, key: &str, value: Option<&str>, now_ms: u64) {
        if let Some(v) = value {
            if self.is_sender() && key.starts_with(&self.config.early_prefix()) {
                self.adopt_early(key, v, now_ms);
            }
        }
    }

    pub fn anonymous_id(&self) -> &str {
        &self.identity.anonymous_id
    }

    /// `{"anonymous_id":…,"_kx":…}` (`_kx` where there is one): what the shop's
    /// first-party cookie keeps (the edge worker's `POST /id`).
    pub fn visitor_json(&self, out: &mut String) {
        self.identity.write_ids(out);
        out.push('}');
    }

    /// Starts a new anonymous profile (on logout) with `fresh_id`. Queued calls keep
    /// the identity they were made with.
    /// The onsite script's visitor is not carried over: the shop said the person left.
    pub fn reset(&mut self, fresh_id: &str) {
        if self.consent() != Consent::Denied {
            self.identity = Identity::new(fresh_id.to_string());
            self.save_identity();
        }
    }

    /// The visitor of the shop's first-party cookie (see [`Identity::adopt`]), kept from
    /// now on. Refused while consent is denied, and for an id no longer than 128 bytes.
    pub fn adopt_visitor(&mut self, anonymous_id: &str, kx: &str) {
        if self.consent() != Consent::Denied && (1..=128).contains(&anonymous_id.len()) {
            self.identity.adopt(anonymous_id, kx);
            self.save_identity();
        }
    }

    /// Calls queued and not yet accepted by Klaviyo.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The end of a task: the storage writes to make now (the task's calls as one
    /// record, records that shrank, the identity), added to `out` as the adapter reads
    /// them (`queue::StorageOps`). None while consent is pending or denied, but what a
    /// denial left (the erasure, once).
    pub fn sync_storage(&mut self, now_ms: u64, out: &mut String) {
        self.erasure.move_to(out);
        if self.consent() == Consent::Granted {
            self.queue.sync(now_ms);
            self.queue.ops.move_to(out);
        }
    }

    /// [`Client::sync_storage`]'s writes, read back.
    #[cfg(test)]
    pub fn take_storage_ops(&mut self, now_ms: u64) -> Vec<StorageOp> {
        let mut text = String::new();
        self.sync_storage(now_ms, &mut text);
        StorageOp::read_all(&text)
    }

    pub fn poll_transmit(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        self.queue.poll_transmit(now_ms, max_body)
    }

    /// The page is going away: the next request that fits the keepalive allowance left.
    pub fn poll_keepalive(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        self.queue.poll_keepalive(now_ms, max_body)
    }

    pub fn on_outcome(&mut self, tx: u32, outcome: Outcome, now_ms: u64, jitter: u16) {
        self.queue.on_outcome(tx, outcome, now_ms, jitter);
    }

    /// The answer to transmit `tx` as the browser passes it: `status` 0 for none (a
    /// network error), the body borrowed, not copied.
    pub fn on_answer(
        &mut self,
        tx: u32,
        status: u16,
        retry_after_s: Option<u32>,
        body: &str,
        now_ms: u64,
        jitter: u16,
    ) {
        let outcome = match status {
            0 => Outcome::Network,
            _ => Outcome::Status {
                status,
                retry_after_s,
                body: String::new(),
            },
        };
        self.queue.on_answer(tx, &outcome, body, now_ms, jitter);
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.queue.poll_timeout()
    }

    /// The page is being hidden or closed (after the keepalive transmits were taken).
    pub fn on_hide(&mut self, now_ms: u64) {
        self.queue.on_hide(now_ms);
    }

    pub fn set_online(&mut self, online: bool) {
        self.queue.set_online(online);
    }

    pub fn set_sender(&mut self, sender: bool) {
        self.queue.set_sender(sender);
    }

    pub fn is_sender(&self) -> bool {
        self.queue.is_sender()
    }

    /// Another tab changed a key of ours (`None`: removed). The consent marker saying
    /// `denied` means another tab's page withdrew consent: so does this one.
    pub fn on_storage_change(&mut self, key: &str, value: Option<&str>) {
        if self.consent() == Consent::Denied {
            return;
        }
        if value.unwrap_or("") == consent::DENIED && key == self.config.consent_key() {
            return self.change(Consent::Denied, "", Told::ByOtherTab);
        }
        if key == self.config.identity_key() {
            // Another tab identified or reset: follow it, so all tabs send one profile.
            if let Some(id) = value.and_then(Identity::restore) {
                // Klaviyo's cookie still describes this visitor: it stays under theirs.
                let old = std::mem::replace(&mut self.identity, id);
                self.identity.set_onsite(old.onsite);
            }
            return;
        }
        self.queue.on_storage_change(key, value);
    }

    /// The sender drops other tabs' records dated before the shop's last denial.
    pub fn forget_before_denial(&mut self, now_ms: u64) {
        self.queue.forget_before_denial(now_ms);
    }

    /// The election's word (`sender`: this tab sends; `stored`: all we store then), as
    /// the adapter and the simulation both carry it out: a tab that becomes the sender
    /// takes over what the previous one left, in flight or not; the sender drops other
    /// tabs' records dated before the last denial; then the loading-window records.
    pub fn take_part(&mut self, sender: bool, stored: Stored, now_ms: u64) {
        if sender && !self.is_sender() {
            self.resync(stored);
        }
        if sender {
            self.forget_before_denial(now_ms);
        }
        self.set_sender(sender);
        self.adopt_stored(stored, now_ms);
    }

    /// Memory made to match storage (on becoming the sender tab).
    pub fn resync(&mut self, stored: Stored) {
        self.queue.resync(stored);
    }

    /// Storage was cleared (a `storage` event without a key): nothing was delivered by
    /// it; what is stored now (written since) is read.
    pub fn storage_cleared(&mut self, stored: Stored) {
        self.queue.on_storage_cleared();
        self.queue.resync(stored);
    }

    /// Storage refused to write `key`.
    pub fn on_storage_failed(&mut self, key: &str) {
        self.queue.on_storage_failed(key);
    }

    /// Totals since start: (delivered, failed attempts).
    pub fn totals(&self) -> (usize, usize) {
        (self.queue.delivered, self.queue.failed)
    }

    /// The reports since the last time, added to `out` as the adapter reads them
    /// (`queue::report`).
    pub fn move_reports(&mut self, out: &mut String) {
        self.queue.move_reports(out);
    }

    #[cfg(test)]
    pub fn take_reports(&mut self) -> Vec<Report> {
        self.queue.take_reports()
    }
}

mod calls;

#[cfg(test)]
mod tests;
