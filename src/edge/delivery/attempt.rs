//! The consumer's side: a message read back, what Klaviyo's answer to an attempt makes
//! of it (acknowledge, retry after a delay, refuse), and what is kept of a message
//! refused in part, for the dead-letter queue or to carry on.

use serde_json::value::RawValue;

use super::{Message, Work, MAX_DELAY_S, MAX_QUEUE_DELAY_S, VERSION};
use crate::core::retry;
use crate::edge::config::EdgeConfig;
use crate::edge::upstream::Upstream;

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
        throttled_since: msg.throttled_since,
    };
    serde_json::to_string(&m).ok()
}

/// How long 429s may hold a message, counted from the first that sent it back to the
/// queue: then it is dead-lettered, with status 429. Each 429 queues it again as a new
/// message, so neither `max_retries` nor the queue's retention ends it: a route that
/// answers nothing but 429 (a proxy's rate limit in front of Klaviyo, an account
/// throttled for good) sent it round for ever, never to the operator. A week, so that a
/// backlog behind Klaviyo's own limit drains first: a million orders at its 150 bulk
/// jobs a minute take 4.6 days.
pub const MAX_THROTTLED_S: u64 = 7 * 86_400;

/// What becomes of a throttled message, as JSON text `text`, at `now_s` (unix seconds).
#[derive(Debug, PartialEq, Eq)]
pub enum Throttle {
    /// Back on the queue as this text, which remembers since when 429s hold it.
    Again(String),
    /// Held longer than [`MAX_THROTTLED_S`], since `since_s`: dead-letter it.
    Expired { since_s: u64 },
}

pub fn throttled(text: &str, now_s: u64) -> Throttle {
    let Some(mut msg) = read(text) else {
        return Throttle::Again(text.to_string());
    };
    match msg.throttled_since {
        Some(since_s) if now_s.saturating_sub(since_s) > MAX_THROTTLED_S => {
            Throttle::Expired { since_s }
        }
        Some(_) => Throttle::Again(text.to_string()),
        None => {
            msg.throttled_since = Some(now_s);
            Throttle::Again(serde_json::to_string(&msg).unwrap_or_else(|_| text.to_string()))
        }
    }
}

/// A message as it goes into a dead letter: without its [`Message::throttled_since`],
/// so that one sent again by hand, after the fault is fixed, is held by 429s afresh.
pub fn as_first_queued(text: &str) -> Option<String> {
    let mut msg = read(text)?;
    msg.throttled_since.take()?;
    serde_json::to_string(&msg).ok()
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
    /// Klaviyo's throttle (a 429): no fault of the message. It goes back on the queue as
    /// a new message after `delay_s`, the server's wait (`wait_s`: `Retry-After`) and a
    /// spread of up to as much again, so that waiting spends none of its retries and
    /// grows no backoff (a backlog behind a rate limit drained ever slower, and could run
    /// a message out of retries without one failure). The batch's later messages to the
    /// endpoint are held behind it the same way (`held_behind`).
    Throttled { wait_s: u32, delay_s: u32 },
    /// Refused for good (a 4xx other than 401, 403, 408 and 429, a redirect):
    /// acknowledge, report, and dead-letter it where a dead-letter queue is bound.
    Refused { status: u16 },
}

/// The wait of a 429 without a readable `Retry-After`.
const THROTTLE_WAIT_S: u32 = 10;

/// After attempt `attempts` (1 for the first, as Queues counts) had `outcome` at
/// `now_ms`. `jitter` in `0..=u16::MAX` spreads retries: up to a quarter of the backoff.
/// Network failures, timeouts, 408 and 5xx are retried after
/// `max(Retry-After, min(1 s × 2^(attempts-1), MAX_DELAY_S))`; a 429 is `Throttled`; a
/// 401 or 403 waits `MAX_DELAY_S`, as a missing setting does: the key was refused
/// (rotated, revoked, short of a scope), which is the operator's to fix, and every
/// message queued meanwhile would otherwise be dead-lettered.
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
        (
            _,
            retry::Outcome::Status {
                status: 401 | 403, ..
            },
        ) => Verdict::Retry {
            delay_s: MAX_DELAY_S,
        },
        (
            _,
            retry::Outcome::Status {
                status: 429,
                retry_after_s,
                ..
            },
        ) => held_behind(retry_after_s.unwrap_or(THROTTLE_WAIT_S), jitter),
        (retry::Verdict::Rejected, retry::Outcome::Status { status, .. }) => {
            Verdict::Refused { status: *status }
        }
        (retry::Verdict::Rejected, retry::Outcome::Network) => Verdict::Refused { status: 0 },
        (retry::Verdict::Retry, _) => Verdict::Retry {
            delay_s: delay_s(attempts, &outcome, jitter),
        },
    }
}

/// A message held behind a 429 that asked to wait `wait_s` (or the one that met it):
/// queued again after that wait and up to as much again, spread by `jitter`, so that the
/// backlog comes back over one more window rather than at once.
pub fn held_behind(wait_s: u32, jitter: u16) -> Verdict {
    let wait = u64::from(wait_s.clamp(1, MAX_QUEUE_DELAY_S));
    // Uniform over 0..=wait whole seconds, so a wait of one second still spreads.
    let spread = (wait + 1) * u64::from(jitter) / (u64::from(u16::MAX) + 1);
    Verdict::Throttled {
        wait_s: wait as u32,
        delay_s: (wait + spread).min(u64::from(MAX_QUEUE_DELAY_S)) as u32,
    }
}

/// The wait of a throttled message the queue would not take again as a new one (no
/// `DELIVERY_QUEUE` in the consumer's env, a send refused): it is retried instead, which
/// spends a retry, so it waits its `delay_s` and at least the backoff of its attempts.
/// Without it, a route that kept answering 429 ran the message out of retries in
/// minutes (81 retries of 1 s under `Retry-After: 1`).
pub fn throttled_retry_s(delay_s: u32, attempts: u32, jitter: u16) -> u32 {
    let outcome = retry::Outcome::Status {
        status: 429,
        retry_after_s: Some(delay_s),
        body: String::new(),
    };
    self::delay_s(attempts, &outcome, jitter)
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
    (server.max(exp) + spread).min(u64::from(MAX_QUEUE_DELAY_S)) as u32
}
