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

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::config::EdgeConfig;
use super::lists::Members;
use super::reply::{error, Reply};
use super::router::{Action, Payload};
use super::upstream::Upstream;
use crate::core::{retry, time};

/// The message format's version: a consumer refuses (dead-letters) what it cannot read.
pub const VERSION: u8 = 1;

/// Cloudflare Queues takes messages of up to 128 KB (KB = 1000 B), about 100 B of which
/// are its own.
pub const MAX_MESSAGE_BYTES: usize = 120_000;

/// What the consumer waits at most before a retry (Queues allows 24 hours): with 100
/// retries a message is tried for about four days before it is dead-lettered.
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

/// What becomes of a call when a queue is bound.
#[derive(Debug)]
pub enum Plan {
    /// These messages, as JSON text, to be sent to the queue (at least one).
    Enqueue(Vec<String>),
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
            let body = match &f.body {
                Payload::AsReceived => text,
                Payload::Text(t) => t.as_str(),
            };
            plan_call(&id, path, body, now_ms)
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
            None => vec![body.to_string()],
        },
        "/api/events" => vec![single_event(body, now_s).into_owned()],
        _ => vec![body.to_string()],
    };
    let mut works = Vec::with_capacity(bodies.len());
    for b in bodies {
        let Ok(body) = RawValue::from_string(b) else {
            return Plan::Direct;
        };
        works.push(Work::Call {
            path: path.to_string(),
            body,
        });
    }
    messages(id, works)
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
            works.push(Work::List {
                list_id: list_id.to_string(),
                ids: members.ids[start..end].to_vec(),
                imports,
            });
            start = end;
        }
        match messages(id, works) {
            Plan::Direct if per > 1 => per = per.div_ceil(2),
            plan => return plan,
        }
    }
}

/// The message for a webhook forward.
pub fn plan_forward(id: &str, body: &str) -> Plan {
    match RawValue::from_string(body.to_string()) {
        Ok(body) => messages(id, vec![Work::Forward { body }]),
        Err(_) => Plan::Direct,
    }
}

fn messages(id: &str, works: Vec<Work>) -> Plan {
    let parts = works.len() as u32;
    let mut out = Vec::with_capacity(works.len());
    for (part, work) in works.into_iter().enumerate() {
        let m = Message {
            v: VERSION,
            id: id.to_string(),
            part: part as u32,
            parts,
            work,
        };
        match serde_json::to_string(&m) {
            Ok(text) if text.len() <= MAX_MESSAGE_BYTES => out.push(text),
            _ => return Plan::Direct,
        }
    }
    if out.is_empty() {
        Plan::Direct
    } else {
        Plan::Enqueue(out)
    }
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

/// `{"data": <event>}`: the event given the time the worker accepted it when it has
/// neither `unique_id` nor `time`, so that a redelivery is the same event to Klaviyo.
fn single_event(body: &str, now_s: i64) -> Cow<'_, str> {
    #[derive(Deserialize)]
    struct One<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let Ok(one) = serde_json::from_str::<One>(body) else {
        return Cow::Borrowed(body);
    };
    match stable_event(one.data.get(), now_s) {
        Cow::Borrowed(_) => Cow::Borrowed(body),
        Cow::Owned(event) => Cow::Owned(splice(body, one.data.get(), &event)),
    }
}

/// An event object (`{"type": "event", "attributes": {...}}`) with `time` set to `now_s`
/// when its attributes have neither `unique_id` nor `time`.
fn stable_event(event: &str, now_s: i64) -> Cow<'_, str> {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        attributes: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct Keys<'a> {
        #[serde(borrow, default)]
        unique_id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        time: Option<&'a RawValue>,
    }
    let Ok(e) = serde_json::from_str::<Event>(event) else {
        return Cow::Borrowed(event);
    };
    let attrs = e.attributes.get();
    let named = serde_json::from_str::<Keys>(attrs)
        .map(|k| {
            let given = |v: Option<&RawValue>| v.is_some_and(|v| v.get() != "null");
            given(k.unique_id) || given(k.time)
        })
        .unwrap_or(true);
    if named || !attrs.starts_with('{') {
        return Cow::Borrowed(event);
    }
    let mut with = String::with_capacity(attrs.len() + 32);
    with.push_str("{\"time\":\"");
    time::push_iso(&mut with, now_s);
    with.push('"');
    let rest = attrs[1..].trim_start();
    if !rest.starts_with('}') {
        with.push(',');
    }
    with.push_str(rest);
    Cow::Owned(splice(event, attrs, &with))
}

/// `whole` with its sub-slice `part` replaced by `by`.
fn splice(whole: &str, part: &str, by: &str) -> String {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    let mut out = String::with_capacity(whole.len() + by.len());
    out.push_str(&whole[..start]);
    out.push_str(by);
    out.push_str(&whole[start + part.len()..]);
    out
}

/// An `event-bulk-create-job` body as jobs that each fit a message, its profiles'
/// events divided among them in order (each event given a stable time as above).
/// `None` when the body has members this reading does not know (then it travels whole,
/// or directly when too large), or when one event alone is too large.
fn bulk_parts(body: &str, now_s: i64) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Job<'a> {
        #[serde(borrow)]
        data: JobData<'a>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct JobData<'a> {
        #[serde(rename = "type")]
        _kind: &'a str,
        #[serde(borrow)]
        attributes: JobAttributes<'a>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct JobAttributes<'a> {
        #[serde(rename = "events-bulk-create", borrow)]
        entries: List<Entry<'a>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct List<T> {
        data: Vec<T>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry<'a> {
        #[serde(rename = "type")]
        _kind: &'a str,
        #[serde(borrow)]
        attributes: EntryAttributes<'a>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EntryAttributes<'a> {
        #[serde(borrow)]
        profile: &'a RawValue,
        #[serde(borrow)]
        events: List<&'a RawValue>,
    }
    const HEAD: &str =
        r#"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":["#;
    const TAIL: &str = "]}}}}";
    const ENTRY: &str = r#"{"type":"event-bulk-create","attributes":{"profile":"#;
    const EVENTS: &str = r#","events":{"data":["#;
    const ENTRY_END: &str = "]}}}";
    // Room for the body in a message (its id, part, path and kind take the rest).
    let room = MAX_MESSAGE_BYTES - 200 - HEAD.len() - TAIL.len() - ENTRY_END.len();

    let job: Job = serde_json::from_str(body).ok()?;
    let mut parts = Vec::new();
    // The entries of the part being filled, and which entry of the job is open in it.
    let mut part = String::new();
    let mut open: Option<usize> = None;
    for (at, entry) in job.data.attributes.entries.data.iter().enumerate() {
        let profile = entry.attributes.profile.get();
        let events: Vec<Option<Cow<str>>> = if entry.attributes.events.data.is_empty() {
            vec![None] // an entry without events stays one
        } else {
            let e = &entry.attributes.events.data;
            e.iter()
                .map(|e| Some(stable_event(e.get(), now_s)))
                .collect()
        };
        for event in events {
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
                    close + ENTRY.len() + profile.len() + EVENTS.len() + event.len()
                };
                if part.len() + cost <= room {
                    break;
                }
                if part.is_empty() {
                    return None; // one event and its profile are too large on their own
                }
                part.push_str(ENTRY_END);
                parts.push(format!("{HEAD}{part}{TAIL}"));
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
                part.push_str(profile);
                part.push_str(EVENTS);
                open = Some(at);
            }
            part.push_str(event);
        }
    }
    if open.is_some() {
        part.push_str(ENTRY_END);
    }
    parts.push(format!("{HEAD}{part}{TAIL}"));
    Some(parts)
}

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;
