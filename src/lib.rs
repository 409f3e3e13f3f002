//! Klaviyo tracking for the web. One sans-IO [`core`] and two thin adapters, each
//! behind its own cargo feature so a build carries only what it needs:
//! `browser` (the npm package, public `/client` endpoints only) and `edge` (the worker
//! that holds the private key). The browser build never contains edge code.

pub mod core;

#[cfg(any(test, all(feature = "browser", target_arch = "wasm32")))]
mod alloc;

#[cfg(all(feature = "browser", target_arch = "wasm32"))]
mod browser;

#[cfg(feature = "edge")]
pub mod edge;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod test_heap;

#[cfg(all(test, not(target_arch = "wasm32")))]
#[global_allocator]
static HEAP: test_heap::Counting = test_heap::Counting;
