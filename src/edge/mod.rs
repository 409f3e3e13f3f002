//! The edge worker: a first-party proxy on the shop's own domain that holds the
//! private key. Everything here but `worker.rs` is plain Rust, tested natively:
//!
//! - `config.rs`: settings from the worker's environment
//! - `router.rs`: what to answer or forward, and the upstream retry policy
//! - `auth.rs`: signed backend requests and Klaviyo webhook signatures
//! - `api_rules.rs`: checks of the `/api` bodies, with JSON:API pointers
//! - `crypto.rs`: SHA-256, HMAC-SHA256, constant-time comparison
//! - `reply.rs`: JSON:API errors and CORS headers
//! - `worker.rs`: the wasm-bindgen entry points that `js/edge/handler.mjs` calls
//!
//! Built only with `--no-default-features --features edge`: the browser package never
//! contains this module or the private key path.

pub mod api_rules;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod reply;
pub mod router;

#[cfg(target_arch = "wasm32")]
mod worker;
