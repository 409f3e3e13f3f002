//! The browser adapter: moves bytes between the core and the page (fetch,
//! localStorage, timers, `crypto.getRandomValues`) and decides nothing itself.
//!
//! - `tracker.rs`: the exported class behind the JS `Klaviyo` wrapper
//! - `pump.rs`: the send loop (one at a time, chained) and its timer
//! - `storage.rs`: localStorage that never throws
//! - `host.rs`: the global functions we import (fetch, timers, crypto, clock)

mod host;
mod pump;
mod storage;
mod tracker;

#[cfg(test)]
mod tests;
