//! The request queue as a sans-IO state machine (the style of quinn-proto's `Connection`).
//!
//! The adapter feeds it calls, answers, storage changes and the current time, and pulls
//! out what to send ([`Queue::poll_transmit`]), what to write to storage
//! ([`Queue::sync`] then [`Queue::ops`]) and when to call back
//! ([`Queue::poll_timeout`]). It never sleeps, reads a clock or does I/O, so every rule
//! is a fast native test.
//!
//! Durability: the calls of one task share one storage record (`record.rs`), written
//! once at the end of the task by [`Queue::sync`]; no call rewrites an existing record.
//! Nothing is sent before its record is written. A record shrinks (is rewritten) as
//! Klaviyo accepts or refuses its calls and goes when none is left. A reload, a crash
//! or a closed tab resends what is left with the same `unique_id` and `time`.
//!
//! Bounds: `max_events`/`max_bytes` bound what is *stored*: past them the oldest calls
//! leave storage (reported `evicted`) but this page still holds and sends them.
//! `max_memory_bytes`, far larger, bounds what the page holds: past it the oldest are
//! dropped (reported `dropped`).
//!
//! Tabs: every tab writes its records to the shared storage, but only the *sender* tab
//! (the adapter decides: a Web Lock, or a lease) sends stored calls; each tab sends the
//! calls only it holds (not stored). The others mirror storage through
//! [`Queue::on_storage_change`], so a call is in flight in one tab only.
//!
//! Keepalive: when the page is hidden or closed, [`Queue::on_hide`] marks the stored
//! calls whose request is still unanswered (`k:<record>`). The next page holds them
//! back for [`KEEPALIVE_WAIT_MS`], so it does not race the request the browser is
//! still completing; if the page that sent it is still alive it removes them when the
//! answer comes. After the wait they are sent again, with their own `unique_id`s, so a
//! failed keepalive request loses nothing.
//!
//! Consent (`consent.rs`): while it is pending the queue holds its calls in memory: the
//! current task's record stays open, so nothing is written and nothing is due; granting
//! writes and sends them. While it is denied the queue is empty and refuses calls.

use super::consent::Consent;
use super::jsontext as jt;
use super::limiter::Limiter;
use super::payload;
use super::record::{self, Line};
pub use super::record::{Endpoint, ENDPOINTS};
use super::retry::{self, Outcome, Verdict};
use super::text;

/// A request to send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Pass back to [`Queue::on_outcome`].
    pub id: u32,
    pub endpoint: Endpoint,
    pub body: String,
    /// How many queued calls (events) this one carries.
    pub items: usize,
}

/// Bounds of the queue. Give-up policy: a call is dropped (and reported) after
/// `max_attempts` failed attempts or once it is older than `max_age_ms`. Attempts only
/// count while online, so a long offline period costs nothing; the age bound keeps a
/// queue that can never succeed from living forever.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Calls kept in storage.
    pub max_events: usize,
    /// Bytes of calls kept in storage.
    pub max_bytes: usize,
    /// Bytes of calls the page holds (stored or not).
    pub max_memory_bytes: usize,
    pub max_attempts: u32,
    pub max_age_ms: u64,
    /// Klaviyo allows 1000 events per bulk request.
    pub batch_events: usize,
    /// Keep bulk bodies well under Klaviyo's limits and quick to send.
    pub batch_bytes: usize,
    /// How long a task's calls wait for later ones before they are sent. 0 (the
    /// default): at the end of the task, so a page that navigates right after a call
    /// has most often read Klaviyo's answer before it goes.
    pub flush_delay_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_events: 1000,
            max_bytes: 1024 * 1024,
            max_memory_bytes: 16 * 1024 * 1024,
            max_attempts: 30,
            max_age_ms: 7 * 24 * 3600 * 1000,
            batch_events: 1000,
            batch_bytes: 512 * 1024,
            flush_delay_ms: 0,
        }
    }
}

/// Browsers allow about 64 KB of `keepalive` bodies in flight; stay under it.
pub const KEEPALIVE_BUDGET: usize = 60 * 1024;

/// How long the next page holds back calls that a hidden or closed page handed to a
/// keepalive request (see the module notes and the README for the measurement).
pub const KEEPALIVE_WAIT_MS: u64 = 10_000;

/// The key (under the keepalive marks' prefix, in a mark's form) of a 429's pause: no
/// record has this id (record ids hold a `-`).
const PAUSE: &str = "pause";

/// The longest a 429 pauses the whole shop: `retry::MAX_SERVER_WAIT_MS`. A stored pause
/// further ahead than that is a bad value (a clock far ahead): dropped.
pub const MAX_PAUSE_MS: u64 = retry::MAX_SERVER_WAIT_MS;

/// How far ahead of the clock a new record may be dated to follow those read
/// (`Queue::last_created_ms`).
const MAX_AHEAD_MS: u64 = 1_000;

/// `Item::profile` of a non-event request.
const NO_PROFILE: u32 = u32::MAX;

/// The visitor a profile request names: its `anonymous_id`, as written.
fn visitor(body: &str) -> Option<&str> {
    jt::get(
        jt::get(jt::get(body, "data")?, "attributes")?,
        "anonymous_id",
    )
}

#[derive(Clone, Debug)]
struct Item {
    /// Its record (index into `Queue::records`) and line number there.
    rec: u32,
    idx: u32,
    /// Events: the profile they carry (index into `Queue::profiles`).
    profile: u32,
    endpoint: Endpoint,
    /// Events: the fields of its record line; others: the whole request body.
    text: String,
    created_ms: u64,
    attempts: u32,
    not_before_ms: u64,
    /// Until when the server's last `Retry-After` holds it: coming back online ends the
    /// backoff, not that.
    server_until_ms: u64,
    /// The transmit carrying it, 0 when not in flight.
    tx: u32,
    /// Most events this one may share a request with: halved when a bulk request
    /// containing it is refused, to isolate the bad event.
    batch_cap: u32,
    /// Its line is in storage.
    stored: bool,
    /// Chosen by the removal under way (see `Queue::remove_where`).
    gone: bool,
}

impl Item {
    fn in_flight(&self) -> bool {
        self.tx != 0
    }
}

#[derive(Clone, Debug)]
struct Record {
    /// The storage key after the queue prefix.
    id: String,
    created_ms: u64,
    /// Storage holds a value under its key.
    written: bool,
    /// Made by this page (not read from storage).
    mine: bool,
    /// Its key was among those read by the current [`Queue::resync`].
    listed: bool,
    /// Its stored lines changed: rewrite (or remove) it at the next sync.
    dirty: bool,
    /// A keepalive mark exists for it (removed with it).
    marked: bool,
    /// Its last write replaced an earlier version (so a failed one leaves that behind).
    replaced: bool,
    next_idx: u32,
}

pub struct Queue {
    prefix: String,
    mark_prefix: String,
    limits: Limits,
    /// Oldest first.
    items: Vec<Item>,
    records: Vec<Record>,
    /// The time of the shop's last denial, as read (`Queue::before_denial`).
    denied_ms: u64,
    profiles: Vec<String>,
    /// The record the current task's calls go to; written at the next sync.
    open: Option<u32>,
    /// The latest date of a record this page made or read: its next record is dated at
    /// least a millisecond later, so that every tab orders records as they were made
    /// (two tasks' `identify` calls in one millisecond, or one made after hearing
    /// another tab's, were read back the other way round: the older profile sent last).
    last_created_ms: u64,
    /// Bytes held (all items), and what storage holds.
    bytes: usize,
    stored_events: usize,
    stored_bytes: usize,
    /// Keepalive marks read from storage: (record id, until, list of idx as stored).
    marks: Vec<(String, u64, String)>,
    /// Transmits sent and not answered yet.
    in_flight: Vec<u32>,
    next_tx: u32,
    /// Storage writes to make, in order (the client adds its own: the identity, ...).
    pub ops: StorageOps,
    reports: String,
    limiters: [Limiter; ENDPOINTS],
    /// No request goes out before this (a 429's Retry-After applies to all of them).
    paused_until_ms: u64,
    /// Storage holds a pause (`PAUSE`): removed once over.
    pause_stored: bool,
    online: bool,
    sender: bool,
    /// Whether a storage warning was already reported (one per page is enough).
    storage_warned: bool,
    /// Storage refused a write: new calls stay in memory (no doomed, slow writes)
    /// until Klaviyo answers a request (calls leave, so storage may have room).
    storage_full: bool,
    consent: Consent,
    /// A call was dropped and reported since consent was last denied.
    consent_reported: bool,
    /// Totals since start, so `flush()` can tell what it achieved.
    pub delivered: usize,
    pub failed: usize,
}

impl Queue {
    /// `prefix` namespaces the record keys (`klaviyo:AbC123:q:`), `mark_prefix` the
    /// keepalive marks (`klaviyo:AbC123:k:`).
    pub fn new(prefix: String, mark_prefix: String, limits: Limits) -> Queue {
        Queue {
            prefix,
            mark_prefix,
            limits,
            items: Vec::new(),
            records: Vec::new(),
            denied_ms: 0,
            profiles: Vec::new(),
            open: None,
            last_created_ms: 0,
            bytes: 0,
            stored_events: 0,
            stored_bytes: 0,
            marks: Vec::new(),
            in_flight: Vec::new(),
            next_tx: 1,
            ops: StorageOps::default(),
            reports: String::new(),
            // One loop, not five inlined constructions.
            limiters: [
                Endpoint::Events,
                Endpoint::BulkEvents,
                Endpoint::Profiles,
                Endpoint::Subscriptions,
                Endpoint::BackInStock,
            ]
            .map(|e| {
                let (burst, steady) = e.limits();
                Limiter::new(burst, steady)
            }),
            paused_until_ms: 0,
            pause_stored: false,
            online: true,
            sender: true,
            storage_warned: false,
            storage_full: false,
            consent: Consent::Granted,
            consent_reported: false,
            delivered: 0,
            failed: 0,
        }
    }

    // ---------------------------------------------------------------- calls

    /// Queues an event of `profile` (its fields as `record::event_fields` wrote them).
    /// `call_id` names the record if this call opens one (a fresh random id).
    pub fn push_event(&mut self, call_id: &str, profile: &str, fields: String, now_ms: u64) {
        let p = self.intern(profile);
        self.push(call_id, p, Endpoint::Events, fields, now_ms);
    }

    /// Queues a whole request body for a non-event endpoint. False when consent is
    /// denied: then the call was dropped.
    pub fn push_body(
        &mut self,
        call_id: &str,
        endpoint: Endpoint,
        body: String,
        now_ms: u64,
    ) -> bool {
        self.push(call_id, NO_PROFILE, endpoint, body, now_ms)
    }

    /// Calls were dropped for want of consent: the first time since the denial, the
    /// shop hears of it.
    fn drop_for_consent(&mut self, n: usize) {
        if n > 0 && !std::mem::replace(&mut self.consent_reported, true) {
            self.report(ReportKind::Consent, 0, "", n);
        }
    }

    /// The visitor's consent changed. Pending: calls are held in memory from now.
    /// Denied: everything held is dropped (in flight included: its answer no longer
    /// matters) and the queue forgets its records and marks (the client erases
    /// storage). Either way this tab is no longer the sender (the adapter elects one
    /// among granted tabs only), so on becoming it again it reads storage anew.
    pub fn set_consent(&mut self, consent: Consent) {
        if consent != Consent::Granted {
            self.sender = false;
        }
        if consent == Consent::Denied {
            let n = self.items.len();
            // All calls go, so the records go too (no removal pass needed).
            self.items.clear();
            self.bytes = 0;
            self.stored_events = 0;
            self.stored_bytes = 0;
            self.forget_records();
            self.marks.clear();
            self.in_flight.clear();
            self.ops.clear();
            self.consent_reported = false;
            self.drop_for_consent(n);
        }
        self.consent = consent;
    }

    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// The latest date of a record this page made or read, never more than
    /// [`MAX_AHEAD_MS`] ahead of `now_ms`: one dated far ahead (a clock set back, a bad
    /// value) would date every later record there, and hold calls behind a flush delay
    /// until then.
    pub(super) fn latest_date(&self, now_ms: u64) -> u64 {
        self.last_created_ms.min(now_ms + MAX_AHEAD_MS)
    }

    /// False when consent is denied: the call is dropped (reported once).
    fn push(
        &mut self,
        call_id: &str,
        profile: u32,
        endpoint: Endpoint,
        text: String,
        now_ms: u64,
    ) -> bool {
        if self.consent == Consent::Denied {
            self.drop_for_consent(1);
            return false;
        }
        let rec = match self.open {
            Some(r) => r,
            None => {
                let created = now_ms.max(self.latest_date(now_ms) + 1);
                self.last_created_ms = created;
                let r = self.new_record(call_id, created, false);
                self.open = Some(r);
                r
            }
        };
        let record = &mut self.records[rec as usize];
        let idx = record.next_idx;
        record.next_idx += 1;
        // Its record's date, as another tab reads it (or its own time, later, in a
        // record held open while consent is pending): one order everywhere.
        let created = now_ms.max(self.latest_date(now_ms));
        let at = self.items.len();
        self.add_item(at, rec, idx, profile, endpoint, text, created, false);
        if self.bytes > self.limits.max_memory_bytes {
            self.drop_oldest();
        }
        true
    }

    /// Adds a record (written: read from storage); returns its index. One copy of
    /// the construction for new and read records.
    #[inline(never)]
    fn new_record(&mut self, id: &str, created_ms: u64, written: bool) -> u32 {
        self.records.push(Record {
            id: id.to_string(),
            created_ms,
            written,
            mine: !written,
            listed: false,
            dirty: false,
            marked: false,
            replaced: false,
            next_idx: 0,
        });
        (self.records.len() - 1) as u32
    }

    /// Holds a call at position `at` of the queue (stored: read from storage). One
    /// copy of the construction for new and read calls.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn add_item(
        &mut self,
        at: usize,
        rec: u32,
        idx: u32,
        profile: u32,
        endpoint: Endpoint,
        text: String,
        created_ms: u64,
        stored: bool,
    ) {
        self.bytes += text.len();
        if stored {
            self.stored_events += 1;
            self.stored_bytes += text.len();
        }
        self.items.insert(
            at,
            Item {
                rec,
                idx,
                profile,
                endpoint,
                text,
                created_ms,
                attempts: 0,
                not_before_ms: 0,
                server_until_ms: 0,
                tx: 0,
                batch_cap: u32::MAX,
                stored,
                gone: false,
            },
        );
    }

    /// Over the memory bound: drops the oldest calls not in flight until a tenth of
    /// the bound is free again (so a long burst pays for this once per tenth, not per
    /// call).
    fn drop_oldest(&mut self) {
        let target = self.limits.max_memory_bytes - self.limits.max_memory_bytes / 10;
        let mut excess = self.bytes.saturating_sub(target);
        let mut dropped = 0;
        let newest = self.items.len().saturating_sub(1);
        let mut n = 0;
        self.remove_where(|it| {
            let drop = excess > 0 && !it.in_flight() && n < newest;
            n += 1;
            if drop {
                excess = excess.saturating_sub(it.text.len());
                dropped += 1;
            }
            drop
        });
        if dropped > 0 {
            self.report(ReportKind::Dropped, 0, "", dropped);
        }
    }

    fn intern(&mut self, profile: &str) -> u32 {
        // The newest first (a plain loop: no `rposition` instance).
        let mut i = self.profiles.len();
        while i > 0 {
            i -= 1;
            if self.profiles[i] == profile {
                return i as u32;
            }
        }
        self.profiles.push(profile.to_string());
        (self.profiles.len() - 1) as u32
    }

    /// Removes a queued, not in flight, request for `endpoint` whose body contains
    /// `marker`: a newer profile update carries everything an older one did.
    pub fn drop_superseded(&mut self, endpoint: Endpoint, marker: &str) {
        self.remove_where(|it| {
            !it.in_flight() && it.endpoint == endpoint && text::find(&it.text, marker).is_some()
        });
    }

    /// Forgets the calls read from storage, keeping this page's own not yet written:
    /// what storage holds is another tab's to send (see `Client::denied_before_start`).
    pub fn forget_other_tabs_calls(&mut self) {
        self.remove_where(|it| it.stored);
    }

    /// Removes the items `pick` chooses; their records are rewritten at the next
    /// sync. Each criterion only marks (a plain loop in its caller); one sweep removes.
    fn remove_where(&mut self, mut pick: impl FnMut(&Item) -> bool) {
        for it in &mut self.items {
            it.gone = pick(it);
        }
        self.sweep();
    }

    /// Removes the items marked `gone`, in one pass (one copy, whatever the criterion).
    #[inline(never)]
    fn sweep(&mut self) {
        // Kept items move down over the gone ones (which end up past `kept`, and go
        // with the truncation), in order: no `retain` instance.
        let mut kept = 0;
        for n in 0..self.items.len() {
            let it = &self.items[n];
            if it.gone {
                self.bytes -= it.text.len();
                if it.stored {
                    self.stored_events -= 1;
                    self.stored_bytes -= it.text.len();
                    // Storage is the sender's to change; another tab only forgets its
                    // copy (the sender rewrites the record when it is done with it).
                    self.records[it.rec as usize].dirty |= self.sender;
                }
            } else {
                self.items.swap(kept, n);
                kept += 1;
            }
        }
        self.items.truncate(kept);
    }

    // ---------------------------------------------------------------- state

    /// Calls waiting to be delivered (in flight included).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Calls in storage.
    pub fn stored(&self) -> usize {
        self.stored_events
    }

    /// While offline nothing is sent. Coming back online makes everything due at once
    /// (the backoff was waiting for the network, which is back), but a server's
    /// Retry-After and keepalive holds still apply.
    pub fn set_online(&mut self, online: bool) {
        if online && !self.online {
            for item in &mut self.items {
                if item.attempts > 0 {
                    item.not_before_ms = item.server_until_ms;
                }
            }
        }
        self.online = online;
    }

    /// Only the sender tab sends stored calls; the others only queue. A new sender writes
    /// again the records a clear took (`on_storage_cleared`: a follower only forgot they
    /// were written).
    pub fn set_sender(&mut self, sender: bool) {
        if sender && !self.sender {
            for rec in &mut self.records {
                rec.dirty |= !rec.written;
            }
        }
        self.sender = sender;
    }

    pub fn is_sender(&self) -> bool {
        self.sender
    }

    /// Storage writes to make, in order, read back.
    #[cfg(test)]
    pub fn take_ops(&mut self) -> Vec<StorageOp> {
        let mut text = String::new();
        self.ops.move_to(&mut text);
        StorageOp::read_all(&text)
    }
}

fn line_idx(line: &Line) -> Option<u32> {
    match line {
        Line::Event { idx, .. } | Line::Body { idx, .. } => Some(*idx),
        Line::Profile(_) => None,
    }
}

/// Indices below `count` of the events named by JSON:API error pointers in `body`.
fn event_pointers(body: &str, count: usize) -> Vec<usize> {
    const P: &str = "/data/attributes/events/data/";
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = text::find(rest, P) {
        rest = &rest[at + P.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Some(n) = text::parse_u64(&rest[..digits]).map(|n| n as usize) {
            if n < count && !lists(&out, n) {
                out.push(n);
            }
        }
    }
    out
}

/// Whether `list` holds `n`: a plain loop, smaller than the slice's unrolled
/// `contains`.
fn lists(list: &[usize], n: usize) -> bool {
    for &x in list {
        if x == n {
            return true;
        }
    }
    false
}

mod ops;
mod report;
mod storage;
mod transmit;

#[cfg(test)]
pub use ops::StorageOp;
pub use ops::{StorageOps, Stored, SEP, SUB};
#[cfg(test)]
pub use report::Report;
pub use report::ReportKind;

#[cfg(test)]
mod tests;

/// A seeded simulation of tabs sharing the queue (crashes, lost answers, clears, consent).
#[cfg(test)]
mod simulation;
