//! The edge worker: a first-party proxy on the shop's own domain that holds the
//! private key. Everything here but `worker/` and the other I/O modules below is plain Rust, tested natively:
//!
//! - `config.rs`: settings from the worker's `env` (serde), checked once
//! - `router/`: what to answer or forward, in two steps (the head, then the body),
//!   and the isolate's gate (replays, browser rate); by route in `client.rs`, `api.rs`,
//!   `webhook.rs`; `tests.rs`, `fuzz.rs` (proptest)
//! - `upstream.rs`: Klaviyo's answer: retry, or what to pass back
//! - `auth.rs`: signed backend requests and Klaviyo webhook signatures (RustCrypto),
//!   replay memory
//! - `bodies.rs`: bodies parsed with serde_json, duplicate keys refused, JSON pointers
//! - `bounded.rs`: members read without building trees, so memory follows body size
//! - `api_rules/`: the `/api` bodies' rules (subscription jobs in `subscriptions.rs`), and
//!   what the unsigned browser path may carry
//! - `orders/`: server-side order events (Placed / Fulfilled / Cancelled / Refunded)
//! - `lists.rs`: list membership (profile-import, then add-to-list)
//! - `delivery/`: durable delivery through a queue: the messages a call becomes
//!   (`plan.rs`), the caller's answer (`answer.rs`) and what the consumer does with each
//!   answer of Klaviyo's (`attempt.rs`); `consumer.rs` is its I/O; `bulk_job.rs`:
//!   a bulk event job read as entries and written again; `refused_in_bulk.rs`: the events
//!   or subscriptions of a queued bulk job Klaviyo refused, taken out by its error
//!   pointers, the rest sent again
//! - `stable_time.rs`: events without a `time` given the time the worker accepted them,
//!   so that a redelivery or a retry is the same event, at the time it happened
//! - `heap.rs`: what the isolate's maps hold, to state their bounds in bytes
//! - `shared_replay.rs`: the replay guard as a Durable Object (`REPLAY_GUARD`), one
//!   answer for every isolate and location
//! - `ratelimit.rs`: who a page's call comes from (the runtime's view of its address,
//!   the configured origin), and per-client buckets for the unsigned browser path
//! - `visitor.rs`: what a page's `/client` call gets about its visitor (`location.ip`,
//!   the identity of the first-party cookie); `visitor_id.rs`: that cookie and `/id`
//! - `bots.rs` (data: `bots.txt`): `/client` calls of crawlers and monitors, dropped
//! - `script.rs`: the script-tag files served first-party (`/script/…`);
//!   `worker/script_files.rs` holds them
//! - `reply.rs`: JSON:API errors and CORS headers
//! - `worker/`: the async fetch handler (wasm-bindgen-futures, gloo-net, web-sys)
//! - `executor.rs`: runs the handler's future to a `Promise`, resuming it where it is woken;
//!   its tables and slots in `slots.rs`, tested natively
//!
//! Built only with `--no-default-features --features edge`: the browser package never
//! contains this module or the private key path.

pub mod api_rules;
pub mod auth;
pub mod bodies;
pub mod body_scan;
pub mod bots;
pub mod bounded;
pub mod bulk_job;
pub mod config;
pub mod dead_letters;
pub mod delivery;
pub mod fixed;
pub mod heap;
pub mod lists;
pub mod orders;
pub mod ratelimit;
pub mod refused_in_bulk;
pub mod reply;
pub mod router;
pub mod script;
pub mod shared_replay;
pub mod slots;
pub mod stable_time;
pub mod upstream;
pub mod visitor;
pub mod visitor_id;

#[cfg(target_arch = "wasm32")]
mod consumer;
#[cfg(target_arch = "wasm32")]
mod executor;
#[cfg(target_arch = "wasm32")]
mod worker;
