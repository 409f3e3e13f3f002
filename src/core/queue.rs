//! The request queue as a sans-IO state machine (the style of quinn-proto's `Connection`).
//!
//! The adapter feeds it calls, answers, storage changes and the current time, and pulls
//! out what to send ([`Queue::poll_transmit`]), what to write to storage
//! ([`Queue::take_ops`]) and when to call back ([`Queue::poll_timeout`]). It never
//! sleeps, reads a clock or does I/O, so every rule is a fast native test.
//!
//! Durability: each queued request is one storage record under its own key
//! (`<prefix><id>`), written when it is pushed and removed only when Klaviyo has
//! accepted or refused it. A reload, a crash or a closed tab resends it with the same
//! `unique_id` and `time`; Klaviyo de-duplicates on those. Enqueueing writes one key;
//! nothing rewrites the whole queue.
//!
//! Tabs: every tab of a shop writes its requests to the shared storage, but only the
//! tab that is the *sender* (the adapter decides: a Web Lock, or a lease) sends. The
//! others mirror the storage through [`Queue::on_storage_change`], so the sender picks
//! up their requests and everyone's `pending()` agrees. A request is in flight in one
//! tab only, so no event is sent twice by two tabs; if the sender dies mid-request, the
//! record is still on disk and the next sender resends it.

use super::limiter::Limiter;
use super::payload;
use super::retry::{self, Outcome, Verdict};
use super::text::{self, push_u64};

/// The `/client` endpoints the browser sends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Events,
    BulkEvents,
    Profiles,
    Subscriptions,
    BackInStock,
}

const ENDPOINTS: usize = 5;

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Events => "/client/events",
            Endpoint::BulkEvents => "/client/event-bulk-create",
            Endpoint::Profiles => "/client/profiles",
            Endpoint::Subscriptions => "/client/subscriptions",
            Endpoint::BackInStock => "/client/back-in-stock-subscriptions",
        }
    }

    /// Klaviyo's published limits: (burst per second, steady per minute).
    fn limits(self) -> (u32, u32) {
        match self {
            Endpoint::BulkEvents => (10, 150),
            Endpoint::Subscriptions => (350, 750),
            _ => (350, 3500),
        }
    }

    fn code(self) -> &'static str {
        match self {
            Endpoint::Events | Endpoint::BulkEvents => "E",
            Endpoint::Profiles => "P",
            Endpoint::Subscriptions => "S",
            Endpoint::BackInStock => "B",
        }
    }

    fn from_code(c: &str) -> Option<Endpoint> {
        Some(match c {
            "P" => Endpoint::Profiles,
            "S" => Endpoint::Subscriptions,
            "B" => Endpoint::BackInStock,
            _ => return None,
        })
    }
}

/// What a queued request carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// An event, kept apart from its profile so that events of one profile can share
    /// one bulk request. Both are JSON text. `unique_id` is repeated here because a bulk
    /// request must not carry the same one twice.
    Event {
        unique_id: String,
        profile: String,
        event: String,
    },
    /// A whole request body for a non-event endpoint.
    Body { endpoint: Endpoint, body: String },
}

impl Payload {
    fn bytes(&self) -> usize {
        match self {
            Payload::Event {
                unique_id,
                profile,
                event,
            } => unique_id.len() + profile.len() + event.len(),
            Payload::Body { body, .. } => body.len(),
        }
    }
}

#[derive(Clone, Debug)]
struct Item {
    /// Random and unique per queued request; its storage key. (Not the event's
    /// `unique_id`: a shop may reuse one across metrics.)
    id: String,
    payload: Payload,
    created_ms: u64,
    attempts: u32,
    not_before_ms: u64,
    /// The transmit carrying it, 0 when not in flight.
    tx: u64,
    /// Most events this one may share a request with: halved when a bulk request
    /// containing it is refused, to isolate the bad event.
    batch_cap: usize,
    /// Written to storage (false when storage was full or missing).
    persisted: bool,
}

impl Item {
    /// Whether this tab may send it now: the sender tab sends everything; any tab sends
    /// what only it holds (storage refused to write it, so no other tab can see it).
    fn due(&self, now_ms: u64, sender: bool) -> bool {
        self.tx == 0 && self.not_before_ms <= now_ms && (sender || !self.persisted)
    }

    fn in_flight(&self) -> bool {
        self.tx != 0
    }
}

/// A write the adapter must make to durable storage, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    Put { key: String, value: String },
    Remove { key: String },
}

/// A request to send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Pass back to [`Queue::on_outcome`].
    pub id: u64,
    pub endpoint: Endpoint,
    pub body: String,
    /// How many queued requests (events) this one carries.
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
    /// The queue was full: the oldest requests were dropped.
    Evicted,
    /// Too many attempts or too old: dropped.
    GaveUp,
    /// Storage refused a write (quota): the request is kept in memory only.
    Storage,
}

/// Bounds of the queue. Give-up policy: a request is dropped (and reported) after
/// `max_attempts` failed attempts or once it is older than `max_age_ms`. Attempts only
/// count while online, so a long offline period costs nothing; the age bound keeps a
/// queue that can never succeed from living forever.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_events: usize,
    pub max_bytes: usize,
    pub max_attempts: u32,
    pub max_age_ms: u64,
    /// Klaviyo allows 1000 events per bulk request.
    pub batch_events: usize,
    /// Keep bulk bodies well under Klaviyo's limits and quick to send.
    pub batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_events: 1000,
            max_bytes: 1024 * 1024,
            max_attempts: 30,
            max_age_ms: 7 * 24 * 3600 * 1000,
            batch_events: 1000,
            batch_bytes: 512 * 1024,
        }
    }
}

/// Browsers allow about 64 KB of `keepalive` bodies in flight; stay under it.
pub const KEEPALIVE_BUDGET: usize = 60 * 1024;

pub struct Queue {
    prefix: String,
    limits: Limits,
    items: Vec<Item>,
    bytes: usize,
    /// Transmits sent and not answered yet.
    in_flight: Vec<u64>,
    next_tx: u64,
    ops: Vec<StorageOp>,
    reports: Vec<Report>,
    limiters: [Limiter; ENDPOINTS],
    /// No request goes out before this (a 429's Retry-After applies to all of them).
    paused_until_ms: u64,
    online: bool,
    sender: bool,
    /// Whether a storage warning was already reported (one per page is enough).
    storage_warned: bool,
    /// Storage refused a write: new requests stay in memory (no doomed, slow writes)
    /// until a delivery frees some space.
    storage_full: bool,
    /// Totals since start, so `flush()` can tell what it achieved.
    pub delivered: usize,
    pub failed: usize,
}

const RECORD_VERSION: &str = "1";

impl Queue {
    /// `prefix` namespaces the storage keys (`klaviyo:AbC123:q:`).
    pub fn new(prefix: String, limits: Limits) -> Queue {
        let limiter = |e: Endpoint| {
            let (burst, steady) = e.limits();
            Limiter::new(burst, steady)
        };
        Queue {
            prefix,
            limits,
            items: Vec::new(),
            bytes: 0,
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
            delivered: 0,
            failed: 0,
        }
    }

    /// Adds stored records (`key`, `value`) under our prefix that we do not hold yet.
    /// Records we cannot read are removed, not fatal.
    pub fn restore(&mut self, records: Vec<(String, String)>) {
        let mut added = false;
        for (key, value) in records {
            added |= self.insert_record(key, &value);
        }
        if added {
            self.enforce_bounds(None);
        }
    }

    /// Makes memory match storage after another tab may have changed it (on becoming
    /// the sender): adds what is new, forgets persisted requests that are gone.
    pub fn resync(&mut self, records: Vec<(String, String)>) {
        let prefix = self.prefix.clone();
        let on_disk: Vec<&str> = records
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(prefix.as_str()))
            .collect();
        let gone: Vec<String> = self
            .items
            .iter()
            .filter(|i| i.persisted && !i.in_flight() && !on_disk.contains(&i.id.as_str()))
            .map(|i| i.id.clone())
            .collect();
        for id in gone {
            self.forget(&id);
        }
        self.restore(records);
    }

    /// Another tab wrote (`Some`) or removed (`None`) one of our keys.
    pub fn on_storage_change(&mut self, key: &str, value: Option<&str>) {
        let Some(id) = key.strip_prefix(self.prefix.as_str()) else {
            return;
        };
        match value {
            Some(v) => {
                if self.insert_record(key.to_string(), v) {
                    self.enforce_bounds(None);
                }
            }
            None => {
                let id = id.to_string();
                self.forget(&id);
            }
        }
    }

    /// Drops an item from memory without touching storage.
    fn forget(&mut self, id: &str) {
        if let Some(i) = self.items.iter().position(|it| it.id == id) {
            let item = self.items.remove(i);
            self.bytes -= item.payload.bytes();
        }
    }

    /// Decodes and inserts one record in time order; true if it was new and readable.
    fn insert_record(&mut self, key: String, value: &str) -> bool {
        let Some(id) = key.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        if self.items.iter().any(|i| i.id == id) {
            return false;
        }
        match decode(id, value) {
            Some(item) => {
                let at = self
                    .items
                    .partition_point(|i| i.created_ms <= item.created_ms);
                self.bytes += item.payload.bytes();
                self.items.insert(at, item);
                true
            }
            None => {
                self.ops.push(StorageOp::Remove { key });
                false
            }
        }
    }

    /// Accepts a validated request. Writes it to storage before anything is sent.
    pub fn push(&mut self, id: String, payload: Payload, now_ms: u64) {
        let item = Item {
            id,
            payload,
            created_ms: now_ms,
            attempts: 0,
            not_before_ms: 0,
            tx: 0,
            batch_cap: usize::MAX,
            persisted: !self.storage_full,
        };
        if item.persisted {
            self.ops.push(StorageOp::Put {
                key: self.key(&item.id),
                value: encode(&item),
            });
        }
        self.bytes += item.payload.bytes();
        let id = item.id.clone();
        self.items.push(item);
        self.enforce_bounds(Some(&id));
    }

    /// Removes queued (not in flight) bodies for `endpoint` that contain `marker`: a
    /// newer profile update carries everything an older queued one did.
    pub fn drop_superseded(&mut self, endpoint: Endpoint, marker: &str) {
        let mut i = 0;
        while i < self.items.len() {
            let it = &self.items[i];
            let superseded = !it.in_flight()
                && matches!(&it.payload, Payload::Body { endpoint: e, body } if *e == endpoint && text::find(body, marker).is_some());
            if superseded {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
    }

    /// The adapter could not write `key` (quota exceeded, storage gone): the request
    /// stays in memory and is still sent by this page.
    pub fn on_storage_failed(&mut self, key: &str) {
        self.storage_full = true;
        if let Some(id) = key.strip_prefix(self.prefix.as_str()) {
            if let Some(item) = self.items.iter_mut().find(|i| i.id == id) {
                item.persisted = false;
            }
        }
        if !self.storage_warned {
            self.storage_warned = true;
            self.report(ReportKind::Storage, 0, String::new(), 1);
        }
    }

    /// Drops the oldest requests that are not in flight until the queue fits its bounds.
    fn enforce_bounds(&mut self, keep: Option<&str>) {
        let mut evicted = 0;
        while self.items.len() > self.limits.max_events || self.bytes > self.limits.max_bytes {
            let Some(i) = self
                .items
                .iter()
                .position(|it| !it.in_flight() && Some(it.id.as_str()) != keep)
            else {
                break;
            };
            self.remove_at(i);
            evicted += 1;
        }
        if evicted > 0 {
            self.report(ReportKind::Evicted, 0, String::new(), evicted);
        }
    }

    fn remove_at(&mut self, i: usize) {
        if i < self.items.len() {
            let item = self.items.remove(i);
            self.bytes -= item.payload.bytes();
            self.ops.push(StorageOp::Remove {
                key: self.key(&item.id),
            });
        }
    }

    fn key(&self, id: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + id.len());
        k.push_str(&self.prefix);
        k.push_str(id);
        k
    }

    fn report(&mut self, kind: ReportKind, status: u16, detail: String, count: usize) {
        self.reports.push(Report {
            kind,
            status,
            detail,
            count,
        });
    }

    /// Requests waiting to be delivered (in flight included).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// While offline nothing is sent. Coming back online makes everything due at once
    /// (the backoff was waiting for the network, which is back), but a server's
    /// Retry-After still holds.
    pub fn set_online(&mut self, online: bool) {
        if online && !self.online {
            for item in &mut self.items {
                item.not_before_ms = 0;
            }
        }
        self.online = online;
    }

    /// Only the sender tab sends; the others only queue.
    pub fn set_sender(&mut self, sender: bool) {
        self.sender = sender;
    }

    pub fn is_sender(&self) -> bool {
        self.sender
    }

    /// The next request to send, if one is due.
    pub fn poll_transmit(&mut self, now_ms: u64) -> Option<Transmit> {
        self.next_transmit(now_ms, usize::MAX)
    }

    /// For a page being hidden or closed: the next request whose body fits in
    /// `budget` bytes (what is left of the browser's keepalive allowance).
    pub fn poll_keepalive(&mut self, now_ms: u64, budget: usize) -> Option<Transmit> {
        self.next_transmit(now_ms, budget)
    }

    fn next_transmit(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        if !self.online || now_ms < self.paused_until_ms {
            return None;
        }
        self.give_up_stale(now_ms);
        let sender = self.sender;
        let first = self.items.iter().position(|i| i.due(now_ms, sender))?;
        let (endpoint, body, picked) = match &self.items[first].payload {
            Payload::Body { endpoint, body } => (*endpoint, body.clone(), vec![first]),
            Payload::Event { profile, .. } => {
                let budget = max_body.min(self.limits.batch_bytes);
                self.batch_from(first, profile.clone(), now_ms, budget)
            }
        };
        if body.len() > max_body {
            return None;
        }
        if !self.limiters[endpoint as usize].try_take(now_ms) {
            return None;
        }
        let id = self.next_tx;
        self.next_tx += 1;
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

    /// Builds one request from the due events that share `profile`, oldest first.
    fn batch_from(
        &self,
        first: usize,
        profile: String,
        now_ms: u64,
        max_bytes: usize,
    ) -> (Endpoint, String, Vec<usize>) {
        let mut picked: Vec<usize> = Vec::new();
        let mut events: Vec<&str> = Vec::new();
        // Sorted, for a cheap duplicate check in batches of up to 1000.
        let mut uids: Vec<&str> = Vec::new();
        let mut cap = self.limits.batch_events;
        let mut bytes = profile.len() + 200;
        for (n, item) in self.items.iter().enumerate().skip(first) {
            if !item.due(now_ms, self.sender) {
                continue;
            }
            let Payload::Event {
                unique_id,
                profile: p,
                event,
            } = &item.payload
            else {
                continue;
            };
            // A repeated unique_id would make Klaviyo refuse the whole bulk request.
            let slot = match uids.binary_search(&unique_id.as_str()) {
                Err(slot) if *p == profile => slot,
                _ => continue,
            };
            // Each event adds its `{"type":"event","attributes":...}` wrapper and a comma.
            let size = event.len() + 32;
            let cap_with = cap.min(item.batch_cap);
            if !picked.is_empty() && (picked.len() >= cap_with || bytes + size > max_bytes) {
                break;
            }
            cap = cap_with;
            bytes += size;
            uids.insert(slot, unique_id);
            picked.push(n);
            events.push(event);
        }
        let mut body = String::with_capacity(bytes);
        let endpoint = if picked.len() == 1 {
            payload::client_event(events[0], &profile, &mut body);
            Endpoint::Events
        } else {
            payload::bulk_client_events(&profile, events.into_iter(), &mut body);
            Endpoint::BulkEvents
        };
        (endpoint, body, picked)
    }

    /// Drops requests that have had too many attempts or waited too long.
    fn give_up_stale(&mut self, now_ms: u64) {
        let limits = &self.limits;
        let stale: Vec<usize> = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| {
                !i.in_flight()
                    && (i.attempts >= limits.max_attempts
                        || now_ms.saturating_sub(i.created_ms) > limits.max_age_ms)
            })
            .map(|(n, _)| n)
            .collect();
        for n in stale.iter().rev() {
            self.remove_at(*n);
        }
        if !stale.is_empty() {
            self.failed += stale.len();
            self.report(ReportKind::GaveUp, 0, String::new(), stale.len());
        }
    }

    /// Feeds back what happened to transmit `tx`. `jitter` comes from the caller's RNG.
    pub fn on_outcome(&mut self, tx: u64, outcome: Outcome, now_ms: u64, jitter: u16) {
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

    /// Removes (from memory and storage), in one pass, the items of transmit `tx`
    /// whose position in it (`0..count`, the order they were sent in) `pick` accepts.
    fn remove_in_tx(&mut self, tx: u64, pick: impl Fn(usize) -> bool) {
        let items = std::mem::take(&mut self.items);
        let mut kept = Vec::with_capacity(items.len());
        let mut nth = 0;
        for item in items {
            let drop = item.tx == tx && {
                nth += 1;
                pick(nth - 1)
            };
            if drop {
                self.bytes -= item.payload.bytes();
                self.storage_full = false;
                self.ops.push(StorageOp::Remove {
                    key: self.key(&item.id),
                });
            } else {
                kept.push(item);
            }
        }
        self.items = kept;
    }

    /// A bulk request was refused. Klaviyo's error pointers name the bad events
    /// (`/data/attributes/events/data/3/...`): drop and report those, resend the rest
    /// now. Without usable pointers, halve the batch until the bad event is alone.
    fn isolate(&mut self, tx: u64, count: usize, status: u16, body: String) {
        let bad: Vec<usize> = event_pointers(&body)
            .into_iter()
            .filter(|i| *i < count)
            .collect();
        if bad.is_empty() {
            let half = count.div_ceil(2);
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
    /// waiting request becomes due (and may go, given pauses and rate limits).
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.online {
            return None;
        }
        // Earliest wish per endpoint class in one cheap pass, then the limiters once.
        let mut earliest = [u64::MAX; ENDPOINTS];
        for i in self
            .items
            .iter()
            .filter(|i| !i.in_flight() && (self.sender || !i.persisted))
        {
            let class = match &i.payload {
                Payload::Event { .. } => Endpoint::Events,
                Payload::Body { endpoint, .. } => *endpoint,
            } as usize;
            earliest[class] = earliest[class].min(i.not_before_ms);
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

/// `1\nE\n<created_ms>\n<unique_id>\n<profile>\n<event>` or `1\n<code>\n<created_ms>\n<body>`.
/// Our JSON text never holds a raw newline and a `unique_id` has no control
/// characters, so newline is a safe separator.
fn encode(item: &Item) -> String {
    let mut v = String::with_capacity(item.payload.bytes() + 24);
    v.push_str(RECORD_VERSION);
    v.push('\n');
    match &item.payload {
        Payload::Event {
            unique_id,
            profile,
            event,
        } => {
            v.push_str("E\n");
            push_u64(&mut v, item.created_ms);
            v.push('\n');
            v.push_str(unique_id);
            v.push('\n');
            v.push_str(profile);
            v.push('\n');
            v.push_str(event);
        }
        Payload::Body { endpoint, body } => {
            v.push_str(endpoint.code());
            v.push('\n');
            push_u64(&mut v, item.created_ms);
            v.push('\n');
            v.push_str(body);
        }
    }
    v
}

fn decode(id: &str, value: &str) -> Option<Item> {
    let mut parts = value.splitn(4, '\n');
    if parts.next()? != RECORD_VERSION || id.is_empty() {
        return None;
    }
    let code = parts.next()?;
    let created_ms = text::parse_u64(parts.next()?)?;
    let rest = parts.next()?;
    let payload = if code == "E" {
        let (unique_id, rest) = rest.split_once('\n')?;
        let (profile, event) = rest.split_once('\n')?;
        if unique_id.is_empty()
            || !(profile.starts_with('{') && event.starts_with('{') && event.ends_with('}'))
        {
            return None;
        }
        Payload::Event {
            unique_id: unique_id.to_string(),
            profile: profile.to_string(),
            event: event.to_string(),
        }
    } else {
        if !rest.starts_with('{') {
            return None;
        }
        Payload::Body {
            endpoint: Endpoint::from_code(code)?,
            body: rest.to_string(),
        }
    };
    Some(Item {
        id: id.to_string(),
        payload,
        created_ms,
        attempts: 0,
        not_before_ms: 0,
        tx: 0,
        batch_cap: usize::MAX,
        persisted: true,
    })
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
