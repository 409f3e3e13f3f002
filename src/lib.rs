//! Klaviyo tracking for the web. One sans-IO [`core`] and two thin adapters, each
//! behind its own cargo feature so a build carries only what it needs:
//! `browser` (the npm package, public `/client` endpoints only) and `edge` (the worker
//! that holds the private key). The browser build never contains edge code.

pub mod core;

#[cfg(all(feature = "browser", target_arch = "wasm32"))]
mod browser;

// SAFETY: a browser page runs this module on one thread, which is the one condition
// `AssumeSingleThreaded` asks for.
#[cfg(all(feature = "browser", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
