//! The browser adapter: moves bytes between the core and the page (fetch,
//! localStorage, timers, `crypto.getRandomValues`) and decides nothing itself.
//!
//! - `tracker.rs`: the exported class behind the JS `Klaviyo` wrapper
//! - `pump.rs`: the send loop (one request at a time), its timer, keepalive on unload
//! - `tabs.rs`: which tab sends (Web Locks, else a lease), online/offline, storage events
//! - `storage.rs`: localStorage that never throws
//! - `host.rs`: what we import (`js/host.js`: fetch, page events, locks; timers, crypto)

mod host;
mod pump;
mod storage;
mod tabs;
mod tracker;

#[cfg(test)]
mod tests;
