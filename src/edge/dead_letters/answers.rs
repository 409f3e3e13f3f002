//! What the signed calls on the dead letters answer (JSON:API).

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::edge::reply::{error, Reply};

/// What became of one letter a call named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent to the delivery queue, and taken out of the store.
    Queued {
        delivery: String,
    },
    /// Sent to the delivery queue, but the store failed to delete it: still listed, it
    /// must not be sent again (delete it).
    QueuedStillKept {
        delivery: String,
    },
    NotFound,
    /// A message the consumer cannot read: only deleting it is left.
    NotResendable,
    /// The delivery queue refused it: it stays kept.
    QueueUnavailable,
    /// The store failed to read or delete it: it stays kept; ask again.
    StoreUnavailable,
    Deleted,
}

impl Outcome {
    fn result(&self) -> &'static str {
        match self {
            Outcome::Queued { .. } => "queued",
            Outcome::QueuedStillKept { .. } => "queued_still_kept",
            Outcome::NotFound => "not_found",
            Outcome::NotResendable => "not_resendable",
            Outcome::QueueUnavailable => "queue_unavailable",
            Outcome::StoreUnavailable => "store_unavailable",
            Outcome::Deleted => "deleted",
        }
    }
}

/// Metadata as the store gave it (JSON text), as an object: `{}` if it is none.
fn attributes_of(meta: Option<&str>) -> Map<String, Value> {
    match meta.and_then(|m| serde_json::from_str::<Value>(m).ok()) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

/// A page of the listing: each letter's id with its metadata (JSON text), and the
/// cursor of the next page.
pub fn listing(entries: &[(String, Option<String>)], next_cursor: Option<&str>) -> Reply {
    let data: Vec<Value> = entries
        .iter()
        .map(|(id, meta)| {
            json!({ "type": "dead-letter", "id": id, "attributes": attributes_of(meta.as_deref()) })
        })
        .collect();
    let body = json!({ "data": data, "meta": { "next_cursor": next_cursor } });
    Reply::new(200, body.to_string())
}

#[derive(Serialize)]
struct LetterOut<'a> {
    data: LetterData<'a>,
}

#[derive(Serialize)]
struct LetterData<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    attributes: LetterAttributes<'a>,
}

#[derive(Serialize)]
struct LetterAttributes<'a> {
    #[serde(flatten)]
    meta: Map<String, Value>,
    letter: AsKept<'a>,
}

/// The letter byte for byte where it is JSON (numbers and member order as kept), else
/// as a string.
#[derive(Serialize)]
#[serde(untagged)]
enum AsKept<'a> {
    Json(&'a RawValue),
    Text(&'a str),
}

/// One letter, whole: its metadata and the letter as kept.
pub fn letter(id: &str, meta: Option<&str>, value: &str) -> Reply {
    let mut meta = attributes_of(meta);
    meta.remove("letter");
    let letter = match serde_json::from_str::<&RawValue>(value) {
        Ok(raw) => AsKept::Json(raw),
        Err(_) => AsKept::Text(value),
    };
    let out = LetterOut {
        data: LetterData {
            kind: "dead-letter",
            id,
            attributes: LetterAttributes { meta, letter },
        },
    };
    match serde_json::to_string(&out) {
        Ok(body) => Reply::new(200, body),
        Err(_) => error(
            500,
            "worker_error",
            "The worker failed.",
            "the letter could not be answered",
            None,
        ),
    }
}

/// What became of each letter a call named, in its order.
pub fn outcomes(results: &[(String, Outcome)]) -> Reply {
    let data: Vec<Value> = results
        .iter()
        .map(|(id, o)| {
            let mut attributes = json!({ "result": o.result() });
            if let Outcome::Queued { delivery } | Outcome::QueuedStillKept { delivery } = o {
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

/// `400`: a cursor the store does not take (not one of its listing's).
pub fn bad_cursor() -> Reply {
    error(
        400,
        "invalid",
        "Invalid input.",
        "is not the next_cursor of a listing",
        Some("/cursor"),
    )
}

/// `503`: the store failed to answer; ask again.
pub fn store_unavailable() -> Reply {
    error(
        503,
        "store_unavailable",
        "The dead-letter store did not answer.",
        "DEAD_LETTER_STORE failed: ask again",
        None,
    )
    .header("retry-after", "1")
}
