//! Durable delivery. With a queue bound as `DELIVERY_QUEUE`, a signed `/api` call or a
//! verified webhook is checked as ever, then handed to the queue instead of being sent at
//! once: [`plan`] says as which messages. The queue's consumer (`consumer.rs`) carries
//! each out later, with the private key, and [`after_attempt`] says from the answer
//! whether to acknowledge, retry or refuse it. Plain Rust: the worker does the I/O.
//!
//! A message carries no secret: the consumer adds the key (and signs a forward) when it
//! sends. Bodies travel as raw JSON inside the message, never re-escaped, so a message
//! is about as long as the call it holds.
//!
//! Redelivery (an acknowledgement lost, a consumer that crashed) must be harmless, so a
//! message holds only what Klaviyo takes idempotently: events with their `unique_id`
//! (an event without one, or a `time`, is given the time the worker accepted it: Klaviyo
//! de-duplicates such events by time to the second), profile upserts, subscriptions,
//! and list membership.

use std::borrow::Cow;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::bulk_job;
use super::config::EdgeConfig;
use super::lists::Members;
use super::reply::{error, Reply};
use super::router::{Action, Payload};
use super::stable_time::{single_event, stable_direct, stable_event};
use super::upstream::Upstream;
use crate::core::retry;

/// The message format's version: a consumer refuses (dead-letters) what it cannot read.
pub const VERSION: u8 = 1;

/// Cloudflare Queues takes messages of up to 128 KB (KB = 1000 B), about 100 B of which
/// are its own.
pub const MAX_MESSAGE_BYTES: usize = 120_000;

/// Cloudflare Queues takes at most this many messages in one `sendBatch`.
pub const MAX_BATCH_MESSAGES: usize = 100;

/// Cloudflare Queues takes at most 256 KB (KB = 1000 B) in one `sendBatch`; this leaves
/// a margin, and each message is counted with [`MESSAGE_OVERHEAD`] more. Two messages of
/// [`MAX_MESSAGE_BYTES`] still make one batch.
pub const MAX_BATCH_BYTES: usize = 250_000;

/// The internal metadata Queues counts toward the limits, per message (about 100 B).
pub const MESSAGE_OVERHEAD: usize = 100;

// Within Queues' limits (100 messages and 256 KB a batch, 128 KB a message), and two
// of the largest messages make one batch.
const _: () = assert!(
    MAX_BATCH_MESSAGES <= 100
        && MAX_BATCH_BYTES <= 256_000
        && MAX_MESSAGE_BYTES + MESSAGE_OVERHEAD <= 128_000
        && 2 * (MAX_MESSAGE_BYTES + MESSAGE_OVERHEAD) <= MAX_BATCH_BYTES
);

/// What the consumer waits at most before a retry (Queues allows 24 hours). The
/// backoff reaches it at the 13th attempt; `max_retries` in `wrangler.toml` is chosen so
/// that the whole schedule, jitter included, ends inside the queue's retention, and a
/// message that never got through reaches the dead-letter queue rather than expiring
/// (`delivery_tests.rs` checks the shipped file).
pub const MAX_DELAY_S: u32 = 3_600;

/// One unit of work on the queue.
#[derive(Debug, Serialize, Deserialize)]
pub struct Message {
    pub v: u8,
    /// The delivery id the caller was answered, shared by the parts of one call.
    pub id: String,
    /// This message's place among the delivery's parts (from 0), and their number.
    pub part: u32,
    pub parts: u32,
    pub work: Work,
}

/// Externally tagged (`{"call": {...}}`): serde reads a raw body in place only then (an
/// internally tagged enum buffers its content, which `RawValue` cannot come from).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// One call of Klaviyo's API: `path` below `KLAVIYO_API_BASE`, the JSON body.
    Call { path: String, body: Box<RawValue> },
    /// List membership: a profile-import for each member without an id, in order, then
    /// one add-to-list call with every id. The parts of one list call hold separate
    /// members: adding to a list is a set operation, so their order does not matter.
    List {
        list_id: String,
        ids: Vec<Option<String>>,
        imports: Vec<(usize, Box<RawValue>)>,
    },
    /// A verified Klaviyo webhook for `WEBHOOK_FORWARD_URL`, signed when it is sent.
    Forward { body: Box<RawValue> },
}

/// One message of a call, as JSON text, and how far into the call it and the messages
/// before it reach.
#[derive(Debug)]
pub struct Part {
    pub text: String,
    pub upto: Reach,
}

/// How much of a call some leading messages hold, in the caller's terms: what to send
/// again when only they were queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// All of it (the call is one message).
    Whole,
    /// A bulk job's first `events` events, in the order sent, and its first `entries`
    /// entries whole (the next entry's leading events are the rest of `events`).
    Events { entries: usize, events: usize },
    /// The first `events` events of the job an order makes. Every one of them has a
    /// `unique_id`, so the order is sent again whole.
    Order { events: usize },
    /// A list call's first `profiles` members.
    Profiles(usize),
    /// A webhook's first `items` events (of its `data`), in order.
    Items(usize),
}

/// What becomes of a call when a queue is bound.
#[derive(Debug)]
pub enum Plan {
    /// These messages, to be sent to the queue in order (at least one).
    Enqueue(Vec<Part>),
    /// Too large for a message and not divisible: sent at once, as without a queue.
    Direct,
}

/// What a decided call becomes with a queue: `None` for what is answered at once (a
/// refusal, a `/client` call, a page's call); else the messages, or `Direct` for a call
/// too large for a message. `tag` is the call's signature tag (signed calls and
/// webhooks only have one); `body` the request's bytes as received.
pub fn plan(
    action: &Action,
    tag: &[u8; 32],
    body: &[u8],
    cfg: &EdgeConfig,
    now_ms: u64,
) -> Option<Plan> {
    let id = delivery_id(tag);
    let text = std::str::from_utf8(body).ok()?;
    Some(match action {
        Action::Reply(_) => return None,
        Action::Forward(f) => {
            let path = f.url.strip_prefix(cfg.api_base.as_str())?;
            match &f.body {
                Payload::AsReceived => plan_call(&id, path, text, now_ms),
                // A body of the worker's own on a signed route: an order's job.
                Payload::Text(t) => as_order(plan_call(&id, path, t, now_ms)),
            }
        }
        Action::AddToList {
            list_id, members, ..
        } => plan_list(&id, list_id, members),
        Action::ReplyAndNotify { .. } => plan_forward(&id, text),
    })
}

/// The answer to a call handed to the queue: 202 and its delivery id (Klaviyo's own
/// answer comes later, to the consumer).
pub fn queued(tag: &[u8; 32], parts: usize, cors: Option<&str>) -> Reply {
    let body = serde_json::json!({
        "data": {
            "type": "delivery",
            "id": delivery_id(tag),
            "attributes": { "status": "queued", "parts": parts },
        }
    });
    Reply::new(202, body.to_string()).cors(cors)
}

/// The answer when the queue took only the first `sent` of `parts` (0: none): the
/// caller must know what to send again, and that nothing else was queued.
pub fn not_all_queued(tag: &[u8; 32], parts: &[Part], sent: usize, cors: Option<&str>) -> Reply {
    match sent.checked_sub(1).and_then(|last| parts.get(last)) {
        None => queue_unavailable(cors),
        Some(_) if sent >= parts.len() => queued(tag, parts.len(), cors),
        Some(p) => queue_partial(tag, p.upto, sent, parts.len(), cors),
    }
}

/// `409 queue_partial`: the leading `sent` of `parts` messages are on the queue (and
/// will be delivered); `upto` says what of the call they hold. A 4xx, not a 5xx:
/// clients (`signedFetch` among them) repeat a 5xx as it was, which would queue the
/// leading part twice; this call must not be sent again as it is.
pub fn queue_partial(
    tag: &[u8; 32],
    upto: Reach,
    sent: usize,
    parts: usize,
    cors: Option<&str>,
) -> Reply {
    use serde_json::json;
    let head = format!("the delivery queue took the first {sent} of {parts} parts");
    let (queued, resend, detail) = match upto {
        Reach::Events { entries, events } => (
            json!({ "events": events, "entries": entries }),
            "rest",
            format!(
                "{head}: the job's first {events} events (its first {entries} entries whole) \
                 are queued; send a job of the rest alone, signed anew"
            ),
        ),
        Reach::Order { events } => (
            json!({ "events": events }),
            "whole",
            format!(
                "{head}: {events} of the order's events are queued; send the order again \
                 whole, signed anew (its events carry unique ids, so none is kept twice)"
            ),
        ),
        Reach::Profiles(profiles) => (
            json!({ "profiles": profiles }),
            "rest",
            format!(
                "{head}: the first {profiles} profiles are queued; send the rest alone, \
                 signed anew"
            ),
        ),
        // A webhook is Klaviyo's: it sends it again whole (the receiver de-duplicates by
        // the webhook's id and each event's `external_id`).
        Reach::Items(items) => (
            json!({ "items": items }),
            "whole",
            format!("{head}: the webhook's first {items} events are queued"),
        ),
        // Only a call of one message reaches whole, and then nothing is left over.
        Reach::Whole => (json!({}), "rest", head),
    };
    let body = json!({ "errors": [{
        "status": "409",
        "code": "queue_partial",
        "title": "The call was queued in part.",
        "detail": detail,
        "meta": {
            "delivery": delivery_id(tag),
            "parts": parts,
            "queued_parts": sent,
            "queued": queued,
            "resend": resend,
        },
    }]});
    Reply::new(409, body.to_string())
        .header("retry-after", "1")
        .cors(cors)
}

/// The plan's messages, by their lengths, as consecutive runs for `sendBatch` within
/// Queues' limits. Each batch is all or nothing, so fewer batches leave fewer places to
/// stop part-way: greedy filling in order gives the fewest runs. A message too large
/// for any batch (never one of ours) goes alone, for the queue to refuse.
pub fn batches(lens: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (at, len) in lens.iter().enumerate() {
        let cost = len.saturating_add(MESSAGE_OVERHEAD);
        let full = at - start >= MAX_BATCH_MESSAGES || bytes + cost > MAX_BATCH_BYTES;
        if at > start && full {
            out.push(start..at);
            start = at;
            bytes = 0;
        }
        bytes = bytes.saturating_add(cost);
    }
    if start < lens.len() {
        out.push(start..lens.len());
    }
    out
}

/// The queue did not take the call: nothing was sent; the caller retries (signed anew).
pub fn queue_unavailable(cors: Option<&str>) -> Reply {
    error(
        503,
        "queue_unavailable",
        "The call was not queued.",
        "the delivery queue did not take the call; retry it",
        None,
    )
    .header("retry-after", "1")
    .cors(cors)
}

/// The delivery id of a call: its signature's tag, which the replay guard makes unique.
pub fn delivery_id(tag: &[u8; 32]) -> String {
    let mut id = String::from("dlv_");
    id.push_str(&hex::encode(&tag[..12]));
    id
}

/// The messages for a call of Klaviyo's API at `path` with `body` (checked JSON), made
/// at `now_ms`.
pub fn plan_call(id: &str, path: &str, body: &str, now_ms: u64) -> Plan {
    let now_s = (now_ms / 1000) as i64;
    let bodies = match path {
        "/api/event-bulk-create-jobs" => match bulk_parts(body, now_s) {
            Some(parts) => parts,
            // Whole, and its events still given their stable time.
            None => vec![(
                stable_direct(path, body, now_ms).unwrap_or_else(|| body.to_string()),
                Reach::Whole,
            )],
        },
        "/api/events" => vec![(single_event(body, now_s).into_owned(), Reach::Whole)],
        _ => vec![(body.to_string(), Reach::Whole)],
    };
    let mut works = Vec::with_capacity(bodies.len());
    for (b, upto) in bodies {
        let Ok(body) = RawValue::from_string(b) else {
            return Plan::Direct;
        };
        let work = Work::Call {
            path: path.to_string(),
            body,
        };
        works.push((work, upto));
    }
    messages(id, works)
}

/// An order's plan: its parts' reach counted as the order's events.
fn as_order(plan: Plan) -> Plan {
    match plan {
        Plan::Enqueue(mut parts) => {
            for p in &mut parts {
                if let Reach::Events { events, .. } = p.upto {
                    p.upto = Reach::Order { events };
                }
            }
            Plan::Enqueue(parts)
        }
        direct => direct,
    }
}

/// The messages for list membership: one, or the members divided among several.
pub fn plan_list(id: &str, list_id: &str, members: &Members) -> Plan {
    let n = members.ids.len();
    // Halve the members per message until each fits (at most 1000 members: ten halvings).
    let mut per = n.max(1);
    loop {
        let mut works = Vec::new();
        let mut start = 0;
        while start < n {
            let end = (start + per).min(n);
            let mut imports = Vec::new();
            for (at, body) in members
                .imports
                .iter()
                .filter(|(at, _)| (start..end).contains(at))
            {
                let Ok(raw) = RawValue::from_string(body.clone()) else {
                    return Plan::Direct;
                };
                imports.push((at - start, raw));
            }
            let work = Work::List {
                list_id: list_id.to_string(),
                ids: members.ids[start..end].to_vec(),
                imports,
            };
            works.push((work, Reach::Profiles(end)));
            start = end;
        }
        match messages(id, works) {
            Plan::Direct if per > 1 => per = per.div_ceil(2),
            plan => return plan,
        }
    }
}

/// The messages for a webhook forward: one, the body as Klaviyo sent it; or, for a
/// system webhook too large for a message (`{"data": [events], "meta": {...}}`), its
/// events divided among several forwards, in order, each with the body's other members
/// unchanged. The receiver de-duplicates by `meta.klaviyo_webhook_id` and each event's
/// `external_id`, so a webhook in parts is the same events to it. `Direct` for a body
/// that is too large and not of that shape, or has one event too large on its own:
/// sent at once, as without a queue.
pub fn plan_forward(id: &str, body: &str) -> Plan {
    let Ok(raw) = RawValue::from_string(body.to_string()) else {
        return Plan::Direct;
    };
    match messages(id, vec![(Work::Forward { body: raw }, Reach::Whole)]) {
        Plan::Direct => match webhook_parts(id, body) {
            Some(works) => messages(id, works),
            None => Plan::Direct,
        },
        plan => plan,
    }
}

/// A webhook body's top-level members, in order, their values as sent.
struct TopLevel<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = TopLevel<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(TopLevel(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A system webhook's bodies, each holding a run of its `data` events (in order) and
/// its other members as they were, each to fit a message; with the events each body
/// and those before it hold. `None` when the body is not of that shape (an object with
/// one `data` list and one `meta` object), or one event does not fit a message alone.
fn webhook_parts(id: &str, body: &str) -> Option<Vec<(Work, Reach)>> {
    let TopLevel(members) = serde_json::from_str(body).ok()?;
    let named = |name: &str| members.iter().filter(|(k, _)| k == name).count();
    if named("data") != 1 || named("meta") != 1 {
        return None;
    }
    let meta = members.iter().find(|(k, _)| k == "meta")?.1;
    if !meta.get().starts_with('{') {
        return None;
    }
    let data = members.iter().find(|(k, _)| k == "data")?.1;
    let events: Vec<&RawValue> = serde_json::from_str(data.get()).ok()?;
    // The body around its events: before and after the `data` list's brackets.
    let (mut head, mut tail) = (String::from("{"), String::new());
    let mut after = false;
    for (at, (k, v)) in members.iter().enumerate() {
        let out = if after { &mut tail } else { &mut head };
        if at > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).ok()?);
        out.push(':');
        if k == "data" {
            out.push('[');
            after = true;
        } else {
            out.push_str(v.get());
        }
    }
    tail.insert(0, ']');
    tail.push('}');
    // A message's own members, at their longest (part and parts of ten digits).
    let envelope = serde_json::to_string(&Message {
        v: VERSION,
        id: id.to_string(),
        part: u32::MAX,
        parts: u32::MAX,
        work: Work::Forward {
            body: RawValue::from_string("{}".to_string()).ok()?,
        },
    })
    .ok()?
    .len()
        - 2;
    let room = MAX_MESSAGE_BYTES.checked_sub(envelope + head.len() + tail.len())?;
    let mut works = Vec::new();
    let mut run = String::new();
    let mut held = 0;
    let mut close = |run: &mut String, held: usize| -> Option<()> {
        let body = RawValue::from_string(format!("{head}{run}{tail}")).ok()?;
        works.push((Work::Forward { body }, Reach::Items(held)));
        run.clear();
        Some(())
    };
    for event in events {
        let event = event.get();
        if event.len() > room {
            return None; // one event too large on its own
        }
        if !run.is_empty() && run.len() + 1 + event.len() > room {
            close(&mut run, held)?;
        }
        if !run.is_empty() {
            run.push(',');
        }
        run.push_str(event);
        held += 1;
    }
    if held == 0 || !run.is_empty() {
        close(&mut run, held)?;
    }
    Some(works)
}

fn messages(id: &str, works: Vec<(Work, Reach)>) -> Plan {
    let parts = works.len() as u32;
    let mut out = Vec::with_capacity(works.len());
    for (part, (work, upto)) in works.into_iter().enumerate() {
        let m = Message {
            v: VERSION,
            id: id.to_string(),
            part: part as u32,
            parts,
            work,
        };
        match serde_json::to_string(&m) {
            Ok(text) if text.len() <= MAX_MESSAGE_BYTES => out.push(Part { text, upto }),
            _ => return Plan::Direct,
        }
    }
    if out.is_empty() {
        Plan::Direct
    } else {
        Plan::Enqueue(out)
    }
}

/// A list message holding only the members at `refused` (positions in its `ids`, whose
/// profile-imports Klaviyo refused): for the dead-letter queue, to be looked at and sent
/// again by hand, while the others are added to the list. `None` when nothing is left
/// out (or the message is no list's).
pub fn refused_members(msg: &Message, refused: &[usize]) -> Option<String> {
    let Work::List {
        list_id, imports, ..
    } = &msg.work
    else {
        return None;
    };
    let mut kept = Vec::new();
    for (at, body) in imports {
        if refused.contains(at) {
            kept.push((kept.len(), body.clone()));
        }
    }
    if kept.is_empty() {
        return None;
    }
    with_work(
        msg,
        Work::List {
            list_id: list_id.clone(),
            ids: vec![None; kept.len()],
            imports: kept,
        },
    )
}

/// A list message that carries on where an attempt stopped (a 429 or a 5xx after some
/// members were imported): the ids found so far (`ids`, by position), and the imports of
/// the members still without one. Sent in the message's place, so that the next attempt
/// does not import them again: a message of 1,000 members to import, retried whole
/// after each 429, began again every time and never got past Klaviyo's 750 imports a
/// minute. `None` when the attempt found no id the message lacked (it is retried as it
/// is), or the message is no list's.
pub fn list_carried_on(msg: &Message, ids: &[Option<String>]) -> Option<String> {
    let Work::List {
        list_id,
        ids: before,
        imports,
    } = &msg.work
    else {
        return None;
    };
    let found = |i: usize| ids.get(i).is_some_and(Option::is_some);
    if ids.len() != before.len() || !imports.iter().any(|(at, _)| found(*at)) {
        return None;
    }
    let imports = imports
        .iter()
        .filter(|(at, _)| !found(*at))
        .map(|(at, body)| (*at, body.clone()))
        .collect();
    with_work(
        msg,
        Work::List {
            list_id: list_id.clone(),
            ids: ids.to_vec(),
            imports,
        },
    )
}

/// A call message holding `body` in place of the message's own (the events or profiles
/// of a bulk job Klaviyo refused, taken out by `refused_in_bulk::divide`): for the
/// dead-letter queue, while the rest are sent again. `None` for a message that is no
/// call.
pub fn refused_call(msg: &Message, body: String) -> Option<String> {
    let Work::Call { path, .. } = &msg.work else {
        return None;
    };
    let body = RawValue::from_string(body).ok()?;
    with_work(
        msg,
        Work::Call {
            path: path.clone(),
            body,
        },
    )
}

/// Message `msg` (its delivery id and part) holding `work` instead, as JSON text.
fn with_work(msg: &Message, work: Work) -> Option<String> {
    let m = Message {
        v: VERSION,
        id: msg.id.clone(),
        part: msg.part,
        parts: msg.parts,
        work,
    };
    serde_json::to_string(&m).ok()
}

/// A message from the queue; `None` for one this consumer cannot read.
pub fn read(text: &str) -> Option<Message> {
    serde_json::from_str::<Message>(text)
        .ok()
        .filter(|m| m.v == VERSION)
}

/// Whether a message's API path may be appended to `KLAVIYO_API_BASE`: below `/api/`,
/// letters, digits, `-`, `_` and single `/` only. A message is ours, but a path with `@`
/// or `//` would move the key to another host, so the consumer checks again.
pub fn api_path_ok(path: &str) -> bool {
    path.starts_with("/api/")
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'))
}

/// The setting a message's work needs and this deployment lacks: the operator's to
/// put back (a secret rotated by delete then put, a deploy without a variable), so the
/// message waits for it, as for a malformed setting, rather than being refused.
pub fn missing_setting(work: &Work, cfg: &EdgeConfig) -> Option<&'static str> {
    match work {
        Work::Call { .. } | Work::List { .. } if cfg.private_key.is_none() => {
            Some("KLAVIYO_PRIVATE_KEY")
        }
        Work::Forward { .. } if cfg.webhook_forward_url.is_none() => Some("WEBHOOK_FORWARD_URL"),
        Work::Forward { .. } if cfg.signing_secret.is_none() => Some("EDGE_SIGNING_SECRET"),
        _ => None,
    }
}

// ------------------------------------------------------------------ the answers

/// What the consumer does with a message after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered: acknowledge.
    Ack,
    /// Try again in this many seconds (the message's own delay, not the batch's).
    Retry { delay_s: u32 },
    /// Refused for good (a 4xx other than 408 and 429, a redirect): acknowledge, report,
    /// and dead-letter it where a dead-letter queue is bound.
    Refused { status: u16 },
}

/// After attempt `attempts` (1 for the first, as Queues counts) had `outcome` at
/// `now_ms`. `jitter` in `0..=u16::MAX` spreads retries: up to a quarter of the backoff.
/// Network failures, timeouts, 408, 429 and 5xx are retried after
/// `max(Retry-After, min(1 s × 2^(attempts-1), MAX_DELAY_S))`.
pub fn after_attempt(outcome: &Upstream, attempts: u32, now_ms: u64, jitter: u16) -> Verdict {
    let outcome = match outcome {
        Upstream::Failed => retry::Outcome::Network,
        Upstream::Answered {
            status,
            retry_after,
            ..
        } => retry::Outcome::Status {
            status: *status,
            retry_after_s: retry_after
                .as_deref()
                .and_then(|h| retry::retry_after_secs(h, now_ms)),
            body: String::new(),
        },
    };
    match (retry::verdict(&outcome), &outcome) {
        (retry::Verdict::Delivered, _) => Verdict::Ack,
        (retry::Verdict::Rejected, retry::Outcome::Status { status, .. }) => {
            Verdict::Refused { status: *status }
        }
        (retry::Verdict::Rejected, retry::Outcome::Network) => Verdict::Refused { status: 0 },
        (retry::Verdict::Retry, _) => Verdict::Retry {
            delay_s: delay_s(attempts, &outcome, jitter),
        },
    }
}

fn delay_s(attempts: u32, outcome: &retry::Outcome, jitter: u16) -> u32 {
    let cap = u64::from(MAX_DELAY_S);
    let exp = 1u64 << attempts.saturating_sub(1).min(20);
    let exp = exp.min(cap);
    let server = match outcome {
        retry::Outcome::Status {
            retry_after_s: Some(s),
            ..
        } => u64::from(*s),
        _ => 0,
    };
    // Never less than Retry-After; the spread only adds.
    let spread = exp * u64::from(jitter) / u64::from(u16::MAX) / 4;
    (server.max(exp) + spread).min(24 * 3600) as u32
}

// ------------------------------------------------------------------ bodies

/// An `event-bulk-create-job` body as jobs that each fit a message, its profiles'
/// events divided among them in order (each event given a stable time as above), each
/// with how far into the job it and those before it reach.
/// `None` when the body has members this reading does not know (then it travels whole,
/// or directly when too large), or when one event alone is too large.
fn bulk_parts(body: &str, now_s: i64) -> Option<Vec<(String, Reach)>> {
    use super::bulk_job::{ENTRY, ENTRY_END, EVENTS, HEAD, TAIL};
    // Room for the body in a message (its id, part, path and kind take the rest).
    let room = MAX_MESSAGE_BYTES - 200 - HEAD.len() - TAIL.len() - ENTRY_END.len();

    let entries = bulk_job::read(body)?;
    let mut parts = Vec::new();
    // The entries of the part being filled, and which entry of the job is open in it.
    let mut part = String::new();
    let mut open: Option<usize> = None;
    // Events, and entries whole, placed so far (in the parts made and the open one).
    let mut reach = (0, 0);
    let upto = |(entries, events)| Reach::Events { entries, events };
    for (at, entry) in entries.iter().enumerate() {
        let members = &entry.members;
        let events: Vec<Option<Cow<str>>> = if entry.events.is_empty() {
            vec![None] // an entry without events stays one
        } else {
            entry
                .events
                .iter()
                .map(|e| Some(stable_event(e, now_s)))
                .collect()
        };
        let last = events.len().saturating_sub(1);
        for (n, event) in events.into_iter().enumerate() {
            let counted = usize::from(event.is_some());
            let event = event.as_deref().unwrap_or("");
            loop {
                let cost = if open == Some(at) {
                    1 + event.len()
                } else {
                    let close = if open.is_some() {
                        ENTRY_END.len() + 1
                    } else {
                        0
                    };
                    close + ENTRY.len() + members.len() + EVENTS.len() + event.len()
                };
                if part.len() + cost <= room {
                    break;
                }
                if part.is_empty() {
                    return None; // one event and its profile are too large on their own
                }
                part.push_str(ENTRY_END);
                parts.push((format!("{HEAD}{part}{TAIL}"), upto(reach)));
                part.clear();
                open = None;
            }
            if open == Some(at) {
                part.push(',');
            } else {
                if open.is_some() {
                    part.push_str(ENTRY_END);
                    part.push(',');
                }
                part.push_str(ENTRY);
                part.push_str(members);
                part.push_str(EVENTS);
                open = Some(at);
            }
            part.push_str(event);
            reach.1 += counted;
            if n == last {
                reach.0 = at + 1;
            }
        }
    }
    if open.is_some() {
        part.push_str(ENTRY_END);
    }
    parts.push((format!("{HEAD}{part}{TAIL}"), upto(reach)));
    Some(parts)
}

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;
