//! The browser adapter's Rust half: the wasm exports that `js/runtime.js` drives.
//!
//! The wasm imports nothing from the page. Everything that touches the page (fetch,
//! localStorage, timers, page lifecycle, Web Locks) is in `js/runtime.js`; everything
//! that decides (validation, what to store, what to send and when) is in the core.
//! This module only moves text and numbers between the two: JSON text in, storage
//! writes and requests out, as strings with `\u{1}`/`\u{2}` separators (neither can
//! appear in them: JSON escapes control characters).
//!
//! - `exports.rs`: `open`, `call`, `answered`, `control` and `error`, the whole surface

mod exports;

#[cfg(test)]
mod tests;
