//! Dead letters the worker keeps. Queues deletes what nobody consumed once the
//! dead-letter queue's retention is past (4 days by default, 14 at most), so the worker
//! consumes that queue itself and writes each letter to `DEAD_LETTER_STORE` (KV, no
//! expiry); the shop's backend lists, reads, sends again and deletes them with signed
//! calls. Sans IO: what a call asks ([`ask`], here), what is kept of a letter and what
//! it sends again (`kept.rs`), the answers (`answers.rs`). `worker/dead_letters.rs`
//! carries them out.

use serde::Deserialize;

use super::bodies::{self, Invalid};

mod answers;
mod kept;

pub use answers::{bad_cursor, letter, listing, not_found, outcomes, store_unavailable, Outcome};
pub use kept::{
    bytes_letter, id_of, is_letter, keep_retry_s, kept, key, resendable, Again, Kept, KEY_PREFIX,
};

/// The routes, below the route prefix (signed, `POST`).
pub const LIST: &str = "/api/dead-letters";
const READ: &str = "/api/dead-letters/read";
const RESEND: &str = "/api/dead-letters/resend";
const DELETE: &str = "/api/dead-letters/delete";

/// Letters a page of the listing holds, and ids a call may name.
pub const PAGE: usize = 100;

/// The longest KV cursor a listing call may carry back.
const MAX_CURSOR_BYTES: usize = 4096;

/// The longest queue message id kept in a letter's id (Cloudflare's are 32 hex digits).
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
                let at = bodies::at_index("/ids", i);
                checked_id(id, &at)?;
                // Named twice, a letter read before KV shows its delete would go twice.
                if ids[..i].contains(id) {
                    return Err(Invalid::new(&at, "is named twice"));
                }
            }
            Ok(if op == Op::Resend {
                Ask::Resend { ids }
            } else {
                Ask::Delete { ids }
            })
        }
    }
}

/// An id is one [`kept`] makes: 13 digits, `-`, the queue message's id.
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

#[cfg(test)]
mod tests;
