//! The sans-IO core: payloads, validation, identity, the queue and its retry policy.
//! Plain Rust with no web-sys, js-sys or async: it compiles and is tested natively,
//! driven by calls, answers and the time the adapter passes in.

pub mod client;
pub mod config;
pub mod consent;
pub mod decimal;
pub mod ecommerce;
pub mod identity;
pub mod jsontext;
pub mod lease;
pub mod limiter;
pub mod onsite;
pub mod payload;
pub mod queue;
pub mod record;
pub mod retry;
pub mod text;
pub mod time;
pub mod validate;
