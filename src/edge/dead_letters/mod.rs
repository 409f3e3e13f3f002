//! Dead letters the worker keeps. Queues deletes what nobody consumed once the
//! dead-letter queue's retention is past (4 days by default, 14 at most), so the worker
//! consumes that queue itself and writes each letter to `DEAD_LETTER_STORE` (KV, no
//! expiry); the shop's backend lists, reads, sends again and deletes them with signed
//! calls. Sans IO: the key and the listing of a kept letter ([`kept`]), what a call asks
//! ([`ask`]), what a letter sends again ([`resendable`]) and the answers.
//! `worker/dead_letters.rs` carries them out.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::bodies::{self, Invalid};
use super::delivery;
use super::reply::{error, Reply};
use crate::core::time;

/// The routes, below the route prefix (signed, `POST`).
pub const LIST: &str = "/api/dead-letters";
const READ: &str = "/api/dead-letters/read";
const RESEND: &str = "/api/dead-letters/resend";
const DELETE: &str = "/api/dead-letters/delete";

/// Letters a page of the listing holds, and ids a call may name.
pub const PAGE: usize = 100;

/// The longest KV cursor a listing call may carry back.
const MAX_CURSOR_BYTES: usize = 4096;

/// The longest queue message id kept in a key (Cloudflare's are 32 hex digits).
const MAX_ID_BYTES: usize = 128;

/// Which call a route is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    List,
    Read,
    Resend,
    Delete,
}

/// The call a route names, if it is one of these.
pub fn route(path: &str) -> Option<Op> {
    Some(match path {
        LIST => Op::List,
        READ => Op::Read,
        RESEND => Op::Resend,
        DELETE => Op::Delete,
        _ => return None,
    })
}

/// What a signed call asks, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    List { cursor: Option<String> },
    Read { id: String },
    Resend { ids: Vec<String> },
    Delete { ids: Vec<String> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListIn {
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadIn {
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsIn {
    ids: Option<Vec<String>>,
}

/// The body of call `op`, checked: each refusal names its field.
pub fn ask(op: Op, text: &str) -> Result<Ask, Invalid> {
    let named = |mut e: Invalid, members: &str| {
        if e.detail == bodies::UNKNOWN_MEMBER {
            e.detail = format!("is not a member of this body ({members})");
        }
        e
    };
    match op {
        Op::List => {
            let body: ListIn = bodies::parse(text).map_err(|e| named(e, "cursor"))?;
            if let Some(c) = &body.cursor {
                if c.is_empty() || c.len() > MAX_CURSOR_BYTES {
                    return Err(Invalid::new(
                        "/cursor",
                        "must be the next_cursor of a listing",
                    ));
                }
            }
            Ok(Ask::List {
                cursor: body.cursor,
            })
        }
        Op::Read => {
            let body: ReadIn = bodies::parse(text).map_err(|e| named(e, "id"))?;
            let id = body.id.ok_or_else(|| Invalid::new("/id", "is required"))?;
            checked_id(&id, "/id")?;
            Ok(Ask::Read { id })
        }
        Op::Resend | Op::Delete => {
            let body: IdsIn = bodies::parse(text).map_err(|e| named(e, "ids"))?;
            let ids = body
                .ids
                .ok_or_else(|| Invalid::new("/ids", "is required"))?;
            if ids.is_empty() || ids.len() > PAGE {
                return Err(Invalid::new("/ids", "must hold 1 to 100 ids"));
            }
            for (i, id) in ids.iter().enumerate() {
                checked_id(id, &bodies::at_index("/ids", i))?;
            }
            Ok(if op == Op::Resend {
                Ask::Resend { ids }
            } else {
                Ask::Delete { ids }
            })
        }
    }
}

/// An id is a key [`kept`] makes: 13 digits, `-`, the queue message's id.
fn checked_id(id: &str, pointer: &str) -> Result<(), Invalid> {
    let ok = id.split_once('-').is_some_and(|(ms, rest)| {
        ms.len() == 13
            && ms.bytes().all(|b| b.is_ascii_digit())
            && (1..=MAX_ID_BYTES).contains(&rest.len())
            && rest.bytes().all(id_byte)
    });
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(pointer, "is not the id of a dead letter"))
    }
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A letter as the store keeps it: its key, and the metadata its listing shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub key: String,
    pub metadata: Value,
}

/// The key and listing of a message of the dead-letter queue: `body` as it came,
/// `message_id` and `timestamp_ms` as Queues gives them. The key orders letters by the
/// time they were dead-lettered, and a message delivered again gets the same key (it
/// is kept once).
pub fn kept(body: &str, message_id: &str, timestamp_ms: u64) -> Kept {
    let mut key = format!("{:013}-", timestamp_ms.min(9_999_999_999_999));
    let id: String = message_id
        .bytes()
        .filter(|b| id_byte(*b))
        .take(MAX_ID_BYTES)
        .map(char::from)
        .collect();
    key.push_str(if id.is_empty() { "_" } else { &id });
    let (reason, status, msg) = why(body);
    let mut metadata = json!({
        "reason": reason,
        "status": status,
        "delivery": null,
        "part": null,
        "route": null,
        "dead_lettered_at": time::iso_from_secs((timestamp_ms / 1000) as i64),
    });
    if let Some(m) = msg {
        metadata["delivery"] = json!(m.id.chars().take(64).collect::<String>());
        metadata["part"] = json!(format!("{}/{}", m.part.saturating_add(1), m.parts));
        metadata["route"] = json!(m.route().chars().take(256).collect::<String>());
    }
    Kept { key, metadata }
}

/// A letter the consumer wrote: the status that refused the message, and the message
/// (a JSON string when the consumer could not read it).
#[derive(Deserialize)]
struct LetterIn<'a> {
    status: u16,
    #[serde(borrow)]
    message: &'a RawValue,
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

/// The message a kept letter sends to the delivery queue again, as first queued (no
/// throttle's time); `None` for a message the consumer cannot read.
pub fn resendable(value: &str) -> Option<String> {
    let text = match serde_json::from_str::<LetterIn>(value) {
        Ok(l) => l.message.get(),
        Err(_) => value,
    };
    delivery::read(text)?;
    Some(delivery::as_first_queued(text).unwrap_or_else(|| text.to_string()))
}

/// What became of one letter a call named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent to the delivery queue, and taken out of the store.
    Queued {
        delivery: Option<String>,
    },
    NotFound,
    /// A message the consumer cannot read: only deleting it is left.
    NotResendable,
    /// The delivery queue refused it: it stays kept.
    QueueUnavailable,
    Deleted,
}

impl Outcome {
    fn result(&self) -> &'static str {
        match self {
            Outcome::Queued { .. } => "queued",
            Outcome::NotFound => "not_found",
            Outcome::NotResendable => "not_resendable",
            Outcome::QueueUnavailable => "queue_unavailable",
            Outcome::Deleted => "deleted",
        }
    }
}

/// The delivery id of a message about to be sent again.
pub fn delivery_of(message: &str) -> Option<String> {
    delivery::read(message).map(|m| m.id)
}

/// A page of the listing: each key with its metadata as the store gave it (JSON
/// text), and the cursor of the next page.
pub fn listing(entries: &[(String, Option<String>)], next_cursor: Option<&str>) -> Reply {
    let data: Vec<Value> = entries
        .iter()
        .map(|(key, meta)| {
            let attributes = meta
                .as_deref()
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            json!({ "type": "dead-letter", "id": key, "attributes": attributes })
        })
        .collect();
    let body = json!({ "data": data, "meta": { "next_cursor": next_cursor } });
    Reply::new(200, body.to_string())
}

/// One letter, whole: its metadata and the letter as kept (JSON, or text where it is
/// not JSON).
pub fn letter(id: &str, meta: Option<&str>, value: &str) -> Reply {
    let mut attributes = meta
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    attributes["letter"] =
        serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.into()));
    let body = json!({ "data": { "type": "dead-letter", "id": id, "attributes": attributes } });
    Reply::new(200, body.to_string())
}

/// What became of each letter a call named, in its order.
pub fn outcomes(results: &[(String, Outcome)]) -> Reply {
    let data: Vec<Value> = results
        .iter()
        .map(|(id, o)| {
            let mut attributes = json!({ "result": o.result() });
            if let Outcome::Queued { delivery } = o {
                attributes["delivery"] = json!(delivery);
            }
            json!({ "type": "dead-letter", "id": id, "attributes": attributes })
        })
        .collect();
    Reply::new(200, json!({ "data": data }).to_string())
}

/// `404`: no letter of that id (deleted, sent again, or never kept).
pub fn not_found() -> Reply {
    error(
        404,
        "not_found",
        "Not found.",
        "no dead letter has this id",
        Some("/id"),
    )
}

#[cfg(test)]
mod tests;
