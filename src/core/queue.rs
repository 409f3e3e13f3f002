//! The request queue as a sans-IO state machine (the style of quinn-proto's `Connection`).
//!
//! The adapter feeds it calls, answers, storage changes and the current time, and pulls
//! out what to send ([`Queue::poll_transmit`]), what to write to storage
//! ([`Queue::sync`] then [`Queue::take_ops`]) and when to call back
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
use super::limiter::Limiter;
use super::payload::{self, Event};
use super::record::{self, Line};
pub use super::record::{Endpoint, ENDPOINTS};
use super::retry::{self, Outcome, Verdict};
use super::text;

/// A write the adapter must make to durable storage, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    Put {
        key: String,
        value: String,
    },
    Remove {
        key: String,
    },
    /// Remove every key that starts with `prefix` (consent was denied).
    Erase {
        prefix: String,
    },
}

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

/// Something the shop should hear about through `onError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    pub status: u16,
    /// The server's JSON:API error body, as received.
    pub detail: String,
    pub count: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// Klaviyo refused the request (4xx): it has been removed.
    Rejected,
    /// A retryable failure; the request stays queued.
    WillRetry,
    /// The stored queue was full: the oldest calls left storage. This page still
    /// sends them; they are lost only if it closes first.
    Evicted,
    /// The page's memory bound was reached: the oldest calls were dropped.
    Dropped,
    /// Too many attempts or too old: dropped.
    GaveUp,
    /// Storage refused a write (quota): calls are kept in memory only.
    Storage,
    /// Calls made before a closed page's tracker was ready, adopted by this page, were
    /// refused by the rules (`detail` says why).
    Invalid,
    /// Consent is denied: calls are dropped (reported once per denial).
    Consent,
}

impl ReportKind {
    /// The name `onError` sees (`error.kind`).
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Rejected => "rejected",
            ReportKind::WillRetry => "retry",
            ReportKind::Evicted => "evicted",
            ReportKind::Dropped => "dropped",
            ReportKind::GaveUp => "gave_up",
            ReportKind::Storage => "storage",
            ReportKind::Invalid => "invalid",
            ReportKind::Consent => "consent",
        }
    }

    /// The message of the `Error` `onError` gets.
    pub fn message(self) -> &'static str {
        match self {
            ReportKind::Rejected => {
                "klaviyo: Klaviyo rejected a request; it was removed from the queue"
            }
            ReportKind::WillRetry => {
                "klaviyo: sending failed; the request stays queued and will be retried"
            }
            ReportKind::Evicted => {
                "klaviyo: the stored queue is full; the oldest requests left storage and are kept in memory until sent"
            }
            ReportKind::Dropped => {
                "klaviyo: the page's queue is full; the oldest requests were dropped"
            }
            ReportKind::GaveUp => "klaviyo: requests were dropped after too many failed attempts",
            ReportKind::Storage => {
                "klaviyo: localStorage refused a write; requests are kept in memory for this page"
            }
            ReportKind::Invalid => "klaviyo: calls made before the tracker was ready were refused",
            ReportKind::Consent => {
                "klaviyo: consent is denied; calls are dropped, nothing is stored or sent"
            }
        }
    }
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

/// `Item::profile` of a non-event request.
const NO_PROFILE: u32 = u32::MAX;

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
    /// The transmit carrying it, 0 when not in flight.
    tx: u32,
    /// Most events this one may share a request with: halved when a bulk request
    /// containing it is refused, to isolate the bad event.
    batch_cap: u32,
    /// Its line is in storage.
    stored: bool,
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
    profiles: Vec<String>,
    /// The record the current task's calls go to; written at the next sync.
    open: Option<u32>,
    /// Bytes held (all items), and what storage holds.
    bytes: usize,
    stored_events: usize,
    stored_bytes: usize,
    /// Keepalive marks read from storage: (record id, until, idx).
    marks: Vec<(String, u64, Vec<u32>)>,
    /// Transmits sent and not answered yet.
    in_flight: Vec<u32>,
    next_tx: u32,
    /// Storage writes to make, in order (the client adds its own: the identity, ...).
    pub ops: Vec<StorageOp>,
    reports: Vec<Report>,
    limiters: [Limiter; ENDPOINTS],
    /// No request goes out before this (a 429's Retry-After applies to all of them).
    paused_until_ms: u64,
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
        let limiter = |e: Endpoint| {
            let (burst, steady) = e.limits();
            Limiter::new(burst, steady)
        };
        Queue {
            prefix,
            mark_prefix,
            limits,
            items: Vec::new(),
            records: Vec::new(),
            profiles: Vec::new(),
            open: None,
            bytes: 0,
            stored_events: 0,
            stored_bytes: 0,
            marks: Vec::new(),
            in_flight: Vec::new(),
            next_tx: 1,
            ops: Vec::new(),
            reports: Vec::new(),
            limiters: [
                limiter(Endpoint::Events),
                limiter(Endpoint::BulkEvents),
                limiter(Endpoint::Profiles),
                limiter(Endpoint::Subscriptions),
                limiter(Endpoint::BackInStock),
            ],
            paused_until_ms: 0,
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
            self.report(ReportKind::Consent, 0, String::new(), n);
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
            self.remove_where(|_| true);
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
                let r = self.records.len() as u32;
                self.records.push(Record {
                    id: call_id.to_string(),
                    created_ms: now_ms,
                    written: false,
                    dirty: false,
                    marked: false,
                    replaced: false,
                    next_idx: 0,
                });
                self.open = Some(r);
                r
            }
        };
        let record = &mut self.records[rec as usize];
        let idx = record.next_idx;
        record.next_idx += 1;
        self.bytes += text.len();
        self.items.push(Item {
            rec,
            idx,
            profile,
            endpoint,
            text,
            created_ms: now_ms,
            attempts: 0,
            not_before_ms: 0,
            tx: 0,
            batch_cap: u32::MAX,
            stored: false,
        });
        if self.bytes > self.limits.max_memory_bytes {
            self.drop_oldest();
        }
        true
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
            self.report(ReportKind::Dropped, 0, String::new(), dropped);
        }
    }

    fn intern(&mut self, profile: &str) -> u32 {
        if let Some(i) = self.profiles.iter().rposition(|p| p == profile) {
            return i as u32;
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

    /// Removes the items `pick` chooses, in one pass; their records are rewritten at
    /// the next sync.
    fn remove_where(&mut self, mut pick: impl FnMut(&Item) -> bool) {
        self.remove_dyn(&mut pick);
    }

    /// One copy of the removal loop, whatever the criterion (code size).
    fn remove_dyn(&mut self, pick: &mut dyn FnMut(&Item) -> bool) {
        let mut items = std::mem::take(&mut self.items);
        items.retain(|it| {
            let drop = pick(it);
            if drop {
                self.bytes -= it.text.len();
                if it.stored {
                    self.stored_events -= 1;
                    self.stored_bytes -= it.text.len();
                    // Storage is the sender's to change; another tab only forgets its
                    // copy (the sender rewrites the record when it is done with it).
                    self.records[it.rec as usize].dirty |= self.sender;
                }
            }
            !drop
        });
        self.items = items;
    }

    // ---------------------------------------------------------------- storage

    /// The end of a task: writes its calls as one new record, keeps storage within its
    /// bounds, and rewrites or removes records whose calls left. Then [`Queue::take_ops`].
    /// Only while consent is granted (the client sees to it): pending calls stay in
    /// the open record until then.
    pub fn sync(&mut self, now_ms: u64) {
        if let Some(open) = self.open.take() {
            let store = !self.storage_full;
            for it in self.items.iter_mut().filter(|it| it.rec == open) {
                it.stored = store;
                if store {
                    self.stored_events += 1;
                    self.stored_bytes += it.text.len();
                }
            }
            self.records[open as usize].dirty = true;
        }
        self.evict_from_storage();
        self.rewrite_dirty();
        self.forget_expired_marks(now_ms);
        self.forget_records();
    }

    /// With no call held, nothing refers to the records and profiles any more.
    fn forget_records(&mut self) {
        if self.items.is_empty() {
            self.records.clear();
            self.profiles.clear();
            self.open = None;
        }
    }

    /// Marks whose wait is over are forgotten; a mark whose record is gone is removed
    /// from storage too (a record's own removal takes its mark with it).
    fn forget_expired_marks(&mut self, now_ms: u64) {
        let mut expired = Vec::new();
        self.marks.retain(|(id, until, _)| {
            let keep = *until > now_ms;
            if !keep {
                expired.push(id.clone());
            }
            keep
        });
        for id in expired {
            let live = self
                .find_record(&id)
                .is_some_and(|r| self.records[r as usize].written);
            if !live {
                self.ops.push(StorageOp::Remove {
                    key: key(&self.mark_prefix, &id),
                });
            }
        }
    }

    /// Past the storage bounds: the oldest calls leave storage (this page keeps them).
    fn evict_from_storage(&mut self) {
        let l = &self.limits;
        // Only the sender evicts: it then holds and sends what it evicted.
        let within = self.stored_events <= l.max_events && self.stored_bytes <= l.max_bytes;
        if !self.sender || within {
            return;
        }
        let mut evicted = 0;
        for it in self.items.iter_mut().filter(|it| it.stored) {
            if self.stored_events <= l.max_events && self.stored_bytes <= l.max_bytes {
                break;
            }
            it.stored = false;
            self.stored_events -= 1;
            self.stored_bytes -= it.text.len();
            self.records[it.rec as usize].dirty = true;
            evicted += 1;
        }
        if evicted > 0 {
            self.report(ReportKind::Evicted, 0, String::new(), evicted);
        }
    }

    /// Writes every dirty record again from its stored calls, or removes it.
    fn rewrite_dirty(&mut self) {
        if !self.records.iter().any(|r| r.dirty) {
            return;
        }
        // One pass over the items: each dirty record's text, in line order.
        let mut text: Vec<Option<(String, u32)>> = vec![None; self.records.len()];
        for it in self.items.iter().filter(|it| it.stored) {
            let r = &self.records[it.rec as usize];
            if !r.dirty {
                continue;
            }
            let (out, last) = text[it.rec as usize].get_or_insert_with(|| {
                let mut s = String::new();
                record::header(r.created_ms, &mut s);
                (s, NO_PROFILE)
            });
            if it.profile == NO_PROFILE {
                record::push_body(it.idx, it.endpoint, &it.text, out);
            } else {
                if *last != it.profile {
                    record::push_profile(&self.profiles[it.profile as usize], out);
                    *last = it.profile;
                }
                record::push_event(it.idx, &it.text, out);
            }
        }
        let mut unmarked = Vec::new();
        for (r, t) in self.records.iter_mut().zip(text) {
            if !r.dirty {
                continue;
            }
            r.dirty = false;
            let k = key(&self.prefix, &r.id);
            match t {
                Some((value, _)) => {
                    r.replaced = r.written;
                    r.written = true;
                    self.ops.push(StorageOp::Put { key: k, value });
                }
                None if r.written => {
                    r.written = false;
                    self.ops.push(StorageOp::Remove { key: k });
                    if std::mem::take(&mut r.marked) {
                        self.ops.push(StorageOp::Remove {
                            key: key(&self.mark_prefix, &r.id),
                        });
                        unmarked.push(r.id.clone());
                    }
                }
                None => {}
            }
        }
        // Their marks are gone with them: nothing left to expire.
        self.marks.retain(|(id, _, _)| !unmarked.contains(id));
    }

    /// A stored record or keepalive mark under our prefixes (at start, or on taking
    /// over as sender). Records we cannot read are removed, not fatal. Ignored while
    /// consent is denied (other tabs' data is not ours to hold then).
    pub fn load(&mut self, key: &str, value: &str) {
        if self.consent == Consent::Denied {
            return;
        }
        if let Some(id) = key.strip_prefix(self.prefix.as_str()) {
            self.insert_record(id, value);
        } else if let Some(id) = key.strip_prefix(self.mark_prefix.as_str()) {
            match record::read_mark(value) {
                Some((until, idx)) => self.apply_mark(id, until, idx),
                None => self.ops.push(StorageOp::Remove {
                    key: key.to_string(),
                }),
            }
        }
    }

    fn find_record(&self, id: &str) -> Option<u32> {
        self.records
            .iter()
            .rposition(|r| r.id == id)
            .map(|r| r as u32)
    }

    /// Adds the calls of a stored record that we do not hold yet; for a record we know,
    /// forgets stored calls it no longer lists (another tab delivered them).
    fn insert_record(&mut self, id: &str, value: &str) {
        let Some((created_ms, lines)) = record::read(value).filter(|(_, l)| !l.is_empty()) else {
            self.ops.push(StorageOp::Remove {
                key: key(&self.prefix, id),
            });
            return;
        };
        let rec = match self.find_record(id) {
            Some(r) => {
                let listed: Vec<u32> = lines.iter().filter_map(line_idx).collect();
                let was_dirty = self.records[r as usize].dirty;
                self.remove_where(|it| {
                    it.rec == r && it.stored && !it.in_flight() && !listed.contains(&it.idx)
                });
                // Those removals were another tab's doing: nothing to rewrite for them.
                let rec = &mut self.records[r as usize];
                rec.dirty = was_dirty;
                rec.written = true;
                r
            }
            None => {
                self.records.push(Record {
                    id: id.to_string(),
                    created_ms,
                    written: true,
                    dirty: false,
                    marked: false,
                    replaced: false,
                    next_idx: 0,
                });
                (self.records.len() - 1) as u32
            }
        };
        let mut profile = NO_PROFILE;
        let mut new = Vec::new();
        for line in lines {
            let (idx, p, endpoint, text) = match line {
                Line::Profile(p) => {
                    profile = self.intern(p);
                    continue;
                }
                Line::Event { idx, fields } => (idx, profile, Endpoint::Events, fields),
                Line::Body {
                    idx,
                    endpoint,
                    body,
                } => (idx, NO_PROFILE, endpoint, body),
            };
            if self.items.iter().any(|it| it.rec == rec && it.idx == idx) {
                continue;
            }
            let r = &mut self.records[rec as usize];
            r.next_idx = r.next_idx.max(idx + 1);
            self.bytes += text.len();
            self.stored_events += 1;
            self.stored_bytes += text.len();
            new.push(Item {
                rec,
                idx,
                profile: p,
                endpoint,
                text: text.to_string(),
                created_ms,
                attempts: 0,
                not_before_ms: 0,
                tx: 0,
                batch_cap: u32::MAX,
                stored: true,
            });
        }
        if new.is_empty() {
            return;
        }
        let at = self.items.partition_point(|i| i.created_ms <= created_ms);
        self.items.splice(at..at, new);
        let marks: Vec<(u64, Vec<u32>)> = self
            .marks
            .iter()
            .filter(|(m, _, _)| m == id)
            .map(|(_, u, i)| (*u, i.clone()))
            .collect();
        for (until, idx) in marks {
            self.hold(rec, until, &idx);
        }
    }

    fn apply_mark(&mut self, id: &str, until: u64, idx: Vec<u32>) {
        if let Some(r) = self.find_record(id) {
            self.records[r as usize].marked = true;
            self.hold(r, until, &idx);
        }
        self.marks.push((id.to_string(), until, idx));
    }

    /// Holds the listed calls of `rec` back until `until`.
    fn hold(&mut self, rec: u32, until: u64, idx: &[u32]) {
        self.records[rec as usize].marked = true;
        for it in self
            .items
            .iter_mut()
            .filter(|it| it.rec == rec && idx.contains(&it.idx))
        {
            it.not_before_ms = it.not_before_ms.max(until);
        }
    }

    /// Makes memory match storage after other tabs may have changed it (on becoming
    /// the sender): adds what is new, forgets stored calls whose record is gone.
    pub fn resync(&mut self, stored: &[(&str, &str)]) {
        let ids: Vec<&str> = stored
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(self.prefix.as_str()))
            .collect();
        let gone: Vec<u32> = (0..self.records.len() as u32)
            .filter(|r| {
                let rec = &self.records[*r as usize];
                rec.written && !ids.contains(&rec.id.as_str())
            })
            .collect();
        for r in gone {
            self.record_removed(r);
        }
        for (k, v) in stored {
            self.load(k, v);
        }
    }

    /// Another tab wrote (`Some`) or removed (`None`) one of our keys.
    pub fn on_storage_change(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.load(key, v),
            None => {
                if let Some(r) = key
                    .strip_prefix(self.prefix.as_str())
                    .and_then(|id| self.find_record(id))
                {
                    self.record_removed(r);
                }
            }
        }
    }

    /// Another tab removed record `r`: forget its stored calls (not ours to send).
    fn record_removed(&mut self, r: u32) {
        self.remove_where(|it| it.rec == r && it.stored && !it.in_flight());
        let rec = &mut self.records[r as usize];
        rec.written = false;
        rec.dirty = false;
    }

    /// The adapter could not write `key` (quota exceeded, storage gone): its calls stay
    /// in memory and are still sent by this page.
    pub fn on_storage_failed(&mut self, key: &str) {
        self.storage_full = true;
        if let Some(r) = key
            .strip_prefix(self.prefix.as_str())
            .and_then(|id| self.find_record(id))
        {
            let rec = &mut self.records[r as usize];
            rec.written = false;
            if rec.replaced {
                // A rewrite failed: the older version must not stay behind, or the next
                // page would send again what was delivered since.
                self.ops.push(StorageOp::Remove {
                    key: key.to_string(),
                });
            }
            for it in self.items.iter_mut().filter(|it| it.rec == r && it.stored) {
                it.stored = false;
                self.stored_events -= 1;
                self.stored_bytes -= it.text.len();
            }
        }
        if !self.storage_warned {
            self.storage_warned = true;
            self.report(ReportKind::Storage, 0, String::new(), 1);
        }
    }

    /// The page is being hidden or closed: marks the stored calls whose request is
    /// still unanswered, so the next page waits before sending them again.
    pub fn on_hide(&mut self, now_ms: u64) {
        let until = now_ms + KEEPALIVE_WAIT_MS;
        let mut marks: Vec<(u32, Vec<u32>)> = Vec::new();
        for it in self.items.iter().filter(|it| it.in_flight() && it.stored) {
            match marks.iter_mut().find(|(r, _)| *r == it.rec) {
                Some((_, idx)) => idx.push(it.idx),
                None => marks.push((it.rec, vec![it.idx])),
            }
        }
        for (r, idx) in marks {
            let rec = &mut self.records[r as usize];
            rec.marked = true;
            self.ops.push(StorageOp::Put {
                key: key(&self.mark_prefix, &rec.id),
                value: record::mark(until, &idx),
            });
        }
    }

    // ---------------------------------------------------------------- state

    pub fn report(&mut self, kind: ReportKind, status: u16, detail: String, count: usize) {
        self.reports.push(Report {
            kind,
            status,
            detail,
            count,
        });
    }

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
                    item.not_before_ms = 0;
                }
            }
        }
        self.online = online;
    }

    /// Only the sender tab sends stored calls; the others only queue.
    pub fn set_sender(&mut self, sender: bool) {
        self.sender = sender;
    }

    pub fn is_sender(&self) -> bool {
        self.sender
    }

    // ---------------------------------------------------------------- sending

    /// Whether this tab may send `it` now: written (its task ended), not in flight,
    /// due, and ours to send (the sender sends stored calls; any tab sends what only it
    /// holds).
    /// `urgent`: the page is going away, so a flush delay no longer applies (backoff,
    /// Retry-After and keepalive holds still do).
    fn due(&self, it: &Item, now_ms: u64, urgent: bool) -> bool {
        it.tx == 0
            && it.not_before_ms <= now_ms
            && (urgent || it.created_ms + self.limits.flush_delay_ms <= now_ms)
            && self.mine(it)
            && Some(it.rec) != self.open
    }

    /// Whether this tab is the one to send `it`.
    fn mine(&self, it: &Item) -> bool {
        self.sender || !it.stored
    }

    /// The next request to send, if one is due, with a body of at most `max_body`
    /// bytes (the keepalive allowance left, when the page is going away).
    pub fn poll_transmit(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        self.poll(now_ms, max_body, false)
    }

    /// For a page being hidden or closed: like [`Queue::poll_transmit`], but a flush
    /// delay no longer holds calls back, and calls too large for `max_body` (what is
    /// left of the keepalive allowance) are passed over rather than blocking the rest.
    pub fn poll_keepalive(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        self.poll(now_ms, max_body, true)
    }

    fn poll(&mut self, now_ms: u64, max_body: usize, urgent: bool) -> Option<Transmit> {
        if !self.online || now_ms < self.paused_until_ms || self.consent != Consent::Granted {
            return None;
        }
        self.give_up_stale(now_ms);
        let fits = |it: &Item| {
            let extra = match it.profile {
                NO_PROFILE => 0,
                p => self.profiles[p as usize].len() + payload::EVENT_OVERHEAD + 100,
            };
            !urgent || it.text.len() + extra <= max_body
        };
        let first = self
            .items
            .iter()
            .position(|i| self.due(i, now_ms, urgent) && fits(i))?;
        let (endpoint, body, picked) = if self.items[first].profile == NO_PROFILE {
            let it = &self.items[first];
            (it.endpoint, it.text.clone(), vec![first])
        } else {
            let budget = max_body.min(self.limits.batch_bytes);
            self.batch_from(first, now_ms, budget)
        };
        if body.len() > max_body || !self.limiters[endpoint as usize].try_take(now_ms) {
            return None;
        }
        let id = self.next_tx;
        self.next_tx = self.next_tx.wrapping_add(1).max(1);
        for i in &picked {
            self.items[*i].tx = id;
        }
        self.in_flight.push(id);
        Some(Transmit {
            id,
            endpoint,
            body,
            items: picked.len(),
        })
    }

    /// Builds one request from the due events that share the profile of `first`,
    /// oldest first.
    fn batch_from(
        &self,
        first: usize,
        now_ms: u64,
        max_bytes: usize,
    ) -> (Endpoint, String, Vec<usize>) {
        let profile_id = self.items[first].profile;
        let profile = &self.profiles[profile_id as usize];
        let mut picked: Vec<usize> = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        // Sorted, for a cheap duplicate check in batches of up to 1000.
        let mut uids: Vec<&str> = Vec::new();
        let mut cap = self.limits.batch_events;
        let mut bytes = profile.len() + 200;
        for (n, item) in self.items.iter().enumerate().skip(first) {
            // Once a request goes, calls still in their flush delay join it.
            if item.profile != profile_id || !self.due(item, now_ms, true) {
                continue;
            }
            let Some(e) = record::read_event(&item.text) else {
                continue;
            };
            // A repeated unique_id would make Klaviyo refuse the whole bulk request.
            let Err(slot) = uids.binary_search(&e.unique_id) else {
                continue;
            };
            let size = item.text.len() + payload::EVENT_OVERHEAD;
            let cap_with = cap.min(item.batch_cap as usize);
            if !picked.is_empty() && (picked.len() >= cap_with || bytes + size > max_bytes) {
                break;
            }
            cap = cap_with;
            bytes += size;
            uids.insert(slot, e.unique_id);
            picked.push(n);
            events.push(e);
        }
        let mut body = String::with_capacity(bytes);
        let endpoint = if let [e] = events.as_slice() {
            payload::client_event(e, profile, &mut body);
            Endpoint::Events
        } else {
            payload::bulk_client_events(profile, events.into_iter(), &mut body);
            Endpoint::BulkEvents
        };
        (endpoint, body, picked)
    }

    /// Drops calls that have had too many attempts or waited too long.
    fn give_up_stale(&mut self, now_ms: u64) {
        let l = &self.limits;
        let (max_attempts, max_age) = (l.max_attempts, l.max_age_ms);
        let sender = self.sender;
        let mut n = 0;
        self.remove_where(|i| {
            // Only the calls this tab would send: another tab's give up is its own.
            let stale = !i.in_flight()
                && (sender || !i.stored)
                && (i.attempts >= max_attempts || now_ms.saturating_sub(i.created_ms) > max_age);
            n += usize::from(stale);
            stale
        });
        if n > 0 {
            self.failed += n;
            self.report(ReportKind::GaveUp, 0, String::new(), n);
        }
    }

    /// Feeds back what happened to transmit `tx`. `jitter` comes from the caller's RNG.
    pub fn on_outcome(&mut self, tx: u32, outcome: Outcome, now_ms: u64, jitter: u16) {
        let Some(pos) = self.in_flight.iter().position(|id| *id == tx) else {
            return;
        };
        self.in_flight.swap_remove(pos);
        let count = self.items.iter().filter(|i| i.tx == tx).count();
        let (status, body) = match &outcome {
            Outcome::Status { status, body, .. } => (*status, body.clone()),
            Outcome::Network => (0, String::new()),
        };
        match retry::verdict(&outcome) {
            Verdict::Delivered => {
                self.remove_in_tx(tx, |_| true);
                self.delivered += count;
            }
            Verdict::Rejected if count > 1 && matches!(status, 400 | 422) => {
                self.isolate(tx, count, status, body);
            }
            Verdict::Rejected => {
                self.remove_in_tx(tx, |_| true);
                self.failed += count;
                self.report(ReportKind::Rejected, status, body, count);
            }
            Verdict::Retry => {
                let online = self.online;
                let mut wait = 0;
                for item in self.items.iter_mut().filter(|i| i.tx == tx) {
                    item.tx = 0;
                    let d = retry::delay_ms(item.attempts, &outcome, jitter);
                    wait = wait.max(d);
                    item.not_before_ms = now_ms + d;
                    if online {
                        item.attempts += 1;
                    }
                }
                if status == 429 {
                    // Klaviyo throttles the account, not one request: everything waits.
                    self.paused_until_ms = self.paused_until_ms.max(now_ms + wait);
                }
                self.failed += count;
                self.report(ReportKind::WillRetry, status, body, count);
            }
        }
    }

    /// Removes the items of transmit `tx` whose position in it (`0..count`, the order
    /// they were sent in) `pick` accepts.
    fn remove_in_tx(&mut self, tx: u32, pick: impl Fn(usize) -> bool) {
        let mut nth = 0;
        self.remove_where(|it| {
            it.tx == tx && {
                nth += 1;
                pick(nth - 1)
            }
        });
        // Calls left: try storage again at the next task, even when none of them was
        // stored (else a page whose first write failed would never store again). If
        // it is still full, that one write fails and we are back to memory only.
        self.storage_full = false;
    }

    /// A bulk request was refused. Klaviyo's error pointers name the bad events
    /// (`/data/attributes/events/data/3/...`): drop and report those, resend the rest
    /// now. Without usable pointers, halve the batch until the bad event is alone.
    fn isolate(&mut self, tx: u32, count: usize, status: u16, body: String) {
        let bad: Vec<usize> = event_pointers(&body)
            .into_iter()
            .filter(|i| *i < count)
            .collect();
        if bad.is_empty() {
            let half = count.div_ceil(2) as u32;
            for item in self.items.iter_mut().filter(|i| i.tx == tx) {
                item.tx = 0;
                item.batch_cap = half;
            }
            return;
        }
        self.remove_in_tx(tx, |n| bad.contains(&n));
        for item in self.items.iter_mut().filter(|i| i.tx == tx) {
            item.tx = 0;
        }
        self.failed += bad.len();
        self.report(ReportKind::Rejected, status, body, bad.len());
    }

    /// When the adapter should next call [`Queue::poll_transmit`]: the earliest time a
    /// waiting call becomes due (and may go, given pauses and rate limits).
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.online || self.consent != Consent::Granted {
            return None;
        }
        // Earliest wish per endpoint class in one cheap pass, then the limiters once.
        let mut earliest = [u64::MAX; ENDPOINTS];
        for i in self
            .items
            .iter()
            .filter(|i| !i.in_flight() && self.mine(i) && Some(i.rec) != self.open)
        {
            let class = i.endpoint as usize;
            let at = i
                .not_before_ms
                .max(i.created_ms + self.limits.flush_delay_ms);
            earliest[class] = earliest[class].min(at);
        }
        let limiter = |e: Endpoint, at: u64| self.limiters[e as usize].ready_at(at);
        (0..ENDPOINTS)
            .filter(|c| earliest[*c] != u64::MAX)
            .map(|c| {
                let at = earliest[c];
                if c == Endpoint::Events as usize {
                    // Alone or in bulk is decided at send time: wait for both limits.
                    at.max(limiter(Endpoint::Events, at))
                        .max(limiter(Endpoint::BulkEvents, at))
                } else {
                    at.max(self.limiters[c].ready_at(at))
                }
            })
            .min()
            .map(|t| t.max(self.paused_until_ms))
    }

    /// Storage writes to make, in order.
    pub fn take_ops(&mut self) -> Vec<StorageOp> {
        std::mem::take(&mut self.ops)
    }

    pub fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.reports)
    }
}

fn key(prefix: &str, id: &str) -> String {
    let mut k = String::with_capacity(prefix.len() + id.len());
    k.push_str(prefix);
    k.push_str(id);
    k
}

fn line_idx(line: &Line) -> Option<u32> {
    match line {
        Line::Event { idx, .. } | Line::Body { idx, .. } => Some(*idx),
        Line::Profile(_) => None,
    }
}

/// Indices of the events named by JSON:API error pointers in `body`.
fn event_pointers(body: &str) -> Vec<usize> {
    const P: &str = "/data/attributes/events/data/";
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = text::find(rest, P) {
        rest = &rest[at + P.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Some(n) = text::parse_u64(&rest[..digits]).map(|n| n as usize) {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
