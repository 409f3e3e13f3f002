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

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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

/// The longest `delaySeconds` Queues takes on a send or a retry: 12 hours. A longer one
/// is refused (the retry then fails, and the message comes back at once).
pub const MAX_QUEUE_DELAY_S: u32 = 43_200;

/// What the consumer's backoff waits at most before a retry. The
/// backoff reaches it at the 13th attempt; `max_retries` in `wrangler.toml` is chosen so
/// that the whole schedule, jitter included, ends inside the queue's retention, and a
/// message that never got through reaches the dead-letter queue rather than expiring
/// (`tests.rs` checks the shipped file).
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
    /// Unix seconds of the first 429 that sent this message back to the queue (as a new
    /// message, whose retries and age start again): how long throttles have held it,
    /// for [`throttled`]. Absent until then, and in a dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_since: Option<u64>,
}

impl Message {
    /// Where the message goes, for logs, throttles and the dead letters' listing: its
    /// API path, or the forward.
    pub fn route(&self) -> &str {
        match &self.work {
            Work::Call { path, .. } => path,
            Work::List { .. } => "/api/lists",
            Work::Forward { .. } => "webhook forward",
        }
    }
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

mod answer;
mod attempt;
mod plan;

pub use answer::{batches, delivery_id, not_all_queued, queue_partial, queue_unavailable, queued};
pub use attempt::{
    after_attempt, api_path_ok, as_first_queued, held_behind, list_carried_on, missing_setting,
    read, refused_call, refused_members, throttled, throttled_retry_s, Throttle, Verdict,
    MAX_THROTTLED_S,
};
pub use plan::{plan, plan_call, plan_forward, plan_list};

#[cfg(test)]
mod tests;
