//! What the consumer of the dead-letter queue keeps: a letter's id (its key in the
//! store, below [`KEY_PREFIX`]), the metadata its listing shows, how long a letter the
//! store did not take waits, and what a kept letter sends again.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{id_byte, MAX_ID_BYTES};
use crate::core::time;
use crate::edge::delivery;

/// What every key of the store begins with: the listing reads these alone, so a
/// namespace shared with something else lists no stranger's key as a letter.
pub const KEY_PREFIX: &str = "letter:";

/// The store's key of letter `id`.
pub fn key(id: &str) -> String {
    let mut k = String::with_capacity(KEY_PREFIX.len() + id.len());
    k.push_str(KEY_PREFIX);
    k.push_str(id);
    k
}

/// The letter id of a key the listing gave.
pub fn id_of(key: &str) -> &str {
    key.strip_prefix(KEY_PREFIX).unwrap_or(key)
}

/// KV's limit on a key's metadata, serialized.
const MAX_METADATA_BYTES: usize = 1024;

/// A letter as the store keeps it: its id, and the metadata its listing shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub id: String,
    pub metadata: Value,
}

/// The id and listing of a message of the dead-letter queue: `body` as it came,
/// `message_id` and `timestamp_ms` as Queues gives them (`fallback_id` where it gives
/// no id). Ids sort by that time, and a message delivered again gets the same id (it
/// is kept once).
pub fn kept(body: &str, message_id: &str, timestamp_ms: u64, fallback_id: &str) -> Kept {
    let mut id = format!("{:013}-", timestamp_ms.min(9_999_999_999_999));
    let own = id_chars(message_id);
    let fallback = id_chars(fallback_id);
    id.push_str(match (own.is_empty(), fallback.is_empty()) {
        (false, _) => &own,
        (true, false) => &fallback,
        (true, true) => "_",
    });
    let (reason, status, msg) = why(body);
    let mut metadata = json!({
        "reason": reason,
        "status": status,
        "delivery": null,
        "part": null,
        "route": null,
        "queued_at": time::iso_from_secs((timestamp_ms / 1000) as i64),
    });
    if let Some(m) = msg {
        metadata["delivery"] = json!(clipped(&m.id, 64));
        metadata["part"] = json!(format!("{}/{}", m.part.saturating_add(1), m.parts));
        metadata["route"] = json!(clipped(m.route(), 256));
    }
    // A foreign message's text can grow as JSON escapes it: KV would refuse the put.
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        metadata["delivery"] = Value::Null;
        metadata["route"] = Value::Null;
    }
    Kept { id, metadata }
}

/// A queue message's id as a letter's id may hold it: itself where it is made of
/// letters, digits, `-` and `_` and fits; else `h` and the hex of its SHA-256's first
/// 16 bytes, so that two ids never become one (`q:1`, `q.1`) and a message delivered
/// again still gets the same.
fn id_chars(text: &str) -> String {
    if text.len() <= MAX_ID_BYTES && text.bytes().all(id_byte) {
        return text.to_string();
    }
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::from("h");
    out.push_str(&hex::encode(&digest[..16]));
    out
}

/// The letter kept for a message of bytes that are not UTF-8 (no text holds them as
/// they are): `{"status":0,"message":{"bytes_hex":"…"}}`, listed unreadable, the bytes
/// whole.
pub fn bytes_letter(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + 40);
    out.push_str(r#"{"status":0,"message":{"bytes_hex":""#);
    out.push_str(&hex::encode(bytes));
    out.push_str(r#""}}"#);
    out
}

/// `text`'s first `max` bytes, cut at a character's boundary.
fn clipped(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A letter the consumer wrote: the status that refused the message, and the message
/// (a JSON string when the consumer could not read it).
#[derive(Deserialize)]
struct LetterIn<'a> {
    status: u16,
    #[serde(borrow)]
    message: &'a RawValue,
}

/// Whether `text` is a letter the consumer wrote: a message of the dead-letter queue,
/// never one to deliver (were it wrapped as unreadable and dead-lettered again, it
/// would go round until it no longer fit a message).
pub fn is_letter(text: &str) -> bool {
    serde_json::from_str::<LetterIn>(text).is_ok()
}

/// Why a message is dead, the status that refused it, and the delivery message in it.
fn why(body: &str) -> (&'static str, Option<u16>, Option<delivery::Message>) {
    match serde_json::from_str::<LetterIn>(body) {
        Ok(l) => match delivery::read(l.message.get()) {
            Some(m) if l.status == 429 => ("throttled", Some(429), Some(m)),
            Some(m) if l.status != 0 => ("refused", Some(l.status), Some(m)),
            _ => ("unreadable", Some(l.status), None),
        },
        // Not a letter: Queues moved it here when it ran out of retries.
        Err(_) => match delivery::read(body) {
            Some(m) => ("retries", None, Some(m)),
            None => ("unreadable", None, None),
        },
    }
}

/// How long a letter the store did not take waits before its `attempts`-th retry: a
/// minute doubling to the longest delay Queues takes (12 hours), so that a brief
/// failure hides a letter briefly, and the consumer's 100 retries outlast the queue's
/// retention (14 days at most): a store missing or failing for good leaves the letter
/// in the queue as long as there was no consumer.
pub fn keep_retry_s(attempts: u32) -> u32 {
    let doublings = attempts.saturating_sub(1).min(10);
    60u32
        .saturating_mul(1 << doublings)
        .min(delivery::MAX_QUEUE_DELAY_S)
}

/// What a kept letter sends to the delivery queue again: its message, as first queued
/// (no throttle's time), and the message's delivery id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Again {
    pub message: String,
    pub delivery: String,
}

/// What letter `value` sends again; `None` for a message the consumer cannot read.
pub fn resendable(value: &str) -> Option<Again> {
    let text = match serde_json::from_str::<LetterIn>(value) {
        Ok(l) => l.message.get(),
        Err(_) => value,
    };
    let mut msg = delivery::read(text)?;
    let message = match msg.throttled_since.take() {
        Some(_) => serde_json::to_string(&msg).ok()?,
        None => text.to_string(),
    };
    Some(Again {
        message,
        delivery: msg.id,
    })
}
