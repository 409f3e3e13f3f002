//! What the caller is answered once its call is handed to the queue (all of it, some
//! of its messages, or none), and how messages are grouped into `sendBatch` calls.

use std::ops::Range;

use super::{Part, Reach, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MESSAGE_OVERHEAD};
use crate::edge::reply::{error, Reply};

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
