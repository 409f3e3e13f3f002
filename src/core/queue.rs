//! The request queue as a sans-IO state machine (the style of quinn-proto's `Connection`).
//!
//! The adapter feeds it calls, answers and the current time, and pulls out what to send
//! ([`Queue::poll_transmit`]), what to write to storage ([`Queue::take_ops`]) and when to
//! call back ([`Queue::poll_timeout`]). It never sleeps, reads a clock or does I/O, so
//! every rule is a fast native test with a fake clock.
//!
//! Each queued request is one storage record under its own key (`<prefix><id>`), written
//! when it is pushed and removed only when Klaviyo has accepted or refused it, so a
//! reload or a crash resends it with the same `unique_id` and `time`. Enqueueing writes
//! one key; nothing rewrites the whole queue.

use super::payload;
use super::retry::{self, Outcome, Verdict};

/// The `/client` endpoints the browser sends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Events,
    BulkEvents,
    Profiles,
    Subscriptions,
    BackInStock,
}

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
    in_flight: bool,
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
}

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

pub struct Queue {
    prefix: String,
    limits: Limits,
    items: Vec<Item>,
    bytes: usize,
    in_flight: Vec<(u64, Vec<String>)>,
    next_tx: u64,
    ops: Vec<StorageOp>,
    reports: Vec<Report>,
    /// Totals since start, so `flush()` can tell what it achieved.
    pub delivered: usize,
    pub failed: usize,
}

const RECORD_VERSION: &str = "1";

impl Queue {
    /// `prefix` namespaces the storage keys (`klaviyo:AbC123:q:`).
    pub fn new(prefix: String, limits: Limits) -> Queue {
        Queue {
            prefix,
            limits,
            items: Vec::new(),
            bytes: 0,
            in_flight: Vec::new(),
            next_tx: 1,
            ops: Vec::new(),
            reports: Vec::new(),
            delivered: 0,
            failed: 0,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Rebuilds the queue from stored records (`key`, `value`) under our prefix.
    /// Records we cannot read are removed, not fatal.
    pub fn restore(&mut self, records: Vec<(String, String)>) {
        // Kept in time order by insertion (a sort would add kilobytes to the wasm).
        let mut found: Vec<Item> = Vec::new();
        for (key, value) in records {
            let Some(id) = key.strip_prefix(self.prefix.as_str()) else {
                continue;
            };
            if self.items.iter().any(|i| i.id == id) {
                continue;
            }
            match decode(id, &value) {
                Some(item) => {
                    let at = found.partition_point(|i| i.created_ms <= item.created_ms);
                    found.insert(at, item);
                }
                None => self.ops.push(StorageOp::Remove { key }),
            }
        }
        for item in found {
            self.bytes += item.payload.bytes();
            self.items.push(item);
        }
        self.enforce_bounds(None);
    }

    /// Accepts a validated request. Writes it to storage before anything is sent.
    pub fn push(&mut self, id: String, payload: Payload, now_ms: u64) {
        let item = Item {
            id,
            payload,
            created_ms: now_ms,
            attempts: 0,
            not_before_ms: 0,
            in_flight: false,
        };
        self.ops.push(StorageOp::Put {
            key: self.key(&item.id),
            value: encode(&item),
        });
        self.bytes += item.payload.bytes();
        let id = item.id.clone();
        self.items.push(item);
        self.enforce_bounds(Some(&id));
    }

    /// Drops the oldest requests that are not in flight until the queue fits its bounds.
    fn enforce_bounds(&mut self, keep: Option<&str>) {
        let mut evicted = 0;
        while self.items.len() > self.limits.max_events || self.bytes > self.limits.max_bytes {
            let Some(i) = self
                .items
                .iter()
                .position(|it| !it.in_flight && Some(it.id.as_str()) != keep)
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

    /// The next request to send, if one is due. Events of the same profile go together
    /// through the bulk endpoint.
    pub fn poll_transmit(&mut self, now_ms: u64) -> Option<Transmit> {
        self.give_up_stale(now_ms);
        let first = self
            .items
            .iter()
            .position(|i| !i.in_flight && i.not_before_ms <= now_ms)?;
        let (endpoint, body, ids) = match &self.items[first].payload {
            Payload::Body { endpoint, body } => {
                (*endpoint, body.clone(), vec![self.items[first].id.clone()])
            }
            Payload::Event { profile, .. } => self.batch_from(first, profile.clone(), now_ms),
        };
        let id = self.next_tx;
        self.next_tx += 1;
        for item in self.items.iter_mut().filter(|i| ids.contains(&i.id)) {
            item.in_flight = true;
        }
        let items = ids.len();
        self.in_flight.push((id, ids));
        Some(Transmit {
            id,
            endpoint,
            body,
            items,
        })
    }

    /// Builds one request from the due events that share `profile`, oldest first.
    fn batch_from(
        &self,
        first: usize,
        profile: String,
        now_ms: u64,
    ) -> (Endpoint, String, Vec<String>) {
        let mut picked: Vec<&Item> = Vec::new();
        let mut uids: Vec<&str> = Vec::new();
        let mut bytes = profile.len();
        for item in self.items.iter().skip(first) {
            if item.in_flight || item.not_before_ms > now_ms {
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
            if *p != profile || uids.contains(&unique_id.as_str()) {
                continue;
            }
            if !picked.is_empty()
                && (picked.len() >= self.limits.batch_events
                    || bytes + event.len() > self.limits.batch_bytes)
            {
                break;
            }
            bytes += event.len() + 30;
            uids.push(unique_id);
            picked.push(item);
        }
        let events = picked.iter().filter_map(|i| match &i.payload {
            Payload::Event { event, .. } => Some(event.as_str()),
            Payload::Body { .. } => None,
        });
        let mut body = String::with_capacity(bytes + 200);
        let endpoint = if picked.len() == 1 {
            payload::client_event(events.clone().next().unwrap_or("{}"), &profile, &mut body);
            Endpoint::Events
        } else {
            payload::bulk_client_events(&profile, events, &mut body);
            Endpoint::BulkEvents
        };
        (
            endpoint,
            body,
            picked.iter().map(|i| i.id.clone()).collect(),
        )
    }

    /// Drops requests that have had too many attempts or waited too long.
    fn give_up_stale(&mut self, now_ms: u64) {
        let limits = &self.limits;
        let stale: Vec<usize> = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| {
                !i.in_flight
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
        let Some(pos) = self.in_flight.iter().position(|(id, _)| *id == tx) else {
            return;
        };
        let (_, ids) = self.in_flight.swap_remove(pos);
        let verdict = retry::verdict(&outcome);
        let (status, body) = match &outcome {
            Outcome::Status { status, body, .. } => (*status, body.clone()),
            Outcome::Network => (0, String::new()),
        };
        match verdict {
            Verdict::Delivered | Verdict::Rejected => {
                for id in &ids {
                    if let Some(i) = self.items.iter().position(|it| it.id == *id) {
                        self.remove_at(i);
                    }
                }
                if verdict == Verdict::Delivered {
                    self.delivered += ids.len();
                } else {
                    self.failed += ids.len();
                    self.report(ReportKind::Rejected, status, body, ids.len());
                }
            }
            Verdict::Retry => {
                let mut attempts = 0;
                for item in self.items.iter_mut().filter(|i| ids.contains(&i.id)) {
                    item.in_flight = false;
                    item.not_before_ms = now_ms + retry::delay_ms(item.attempts, &outcome, jitter);
                    item.attempts += 1;
                    attempts = item.attempts;
                }
                let _ = attempts;
                self.failed += ids.len();
                self.report(ReportKind::WillRetry, status, body, ids.len());
            }
        }
    }

    /// When the adapter should next call [`Queue::poll_transmit`]: the earliest time a
    /// waiting request becomes due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.items
            .iter()
            .filter(|i| !i.in_flight)
            .map(|i| i.not_before_ms)
            .min()
    }

    /// Storage writes to make, in order.
    pub fn take_ops(&mut self) -> Vec<StorageOp> {
        std::mem::take(&mut self.ops)
    }

    pub fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.reports)
    }

    /// Forgets everything queued (for `reset` of a test page, never called on errors).
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }
}

/// `1\nE\n<created_ms>\n<unique_id>\n<profile>\n<event>` or `1\n<code>\n<created_ms>\n<body>`.
/// Our JSON text never holds a raw newline, so newline is a safe separator.
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
    let created_ms = parts.next()?.parse::<u64>().ok()?;
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
        in_flight: false,
    })
}

pub fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for b in &buf[i..] {
        out.push(*b as char);
    }
}
