//! What we import from the page: `js/host.js` (fetch, page events, Web Locks, wrapped
//! for one callback each) and a few globals. Imported directly rather than through
//! web-sys `Window`, which keeps the glue small.

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

use crate::core::client::Entropy;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// `fetch` wrapped so it calls `done(status, retryAfter, body)` exactly once.
    pub fn send(url: &str, revision: &str, body: &str, keepalive: bool, done: &JsValue);

    /// Listens for online/offline/hide/storage; returns `[onLine, stop]`.
    pub fn watch(prefix: &str, on: &JsValue) -> Array;

    /// Requests the sender Web Lock; returns `release` or null without Web Locks.
    pub fn lead(name: &str, on: &JsValue) -> JsValue;

    /// `setInterval`; returns `stop`.
    pub fn every(ms: u32, tick: &JsValue) -> Function;

    /// The page URL's query string (`?a=1&_kx=...`), or "".
    pub fn query() -> String;

    #[wasm_bindgen(js_namespace = storage, js_name = shared)]
    pub fn storage_shared() -> bool;
    #[wasm_bindgen(js_namespace = storage, js_name = get)]
    pub fn storage_get(key: &str) -> Option<String>;
    #[wasm_bindgen(js_namespace = storage, js_name = set)]
    pub fn storage_set(key: &str, value: &str) -> bool;
    #[wasm_bindgen(js_namespace = storage, js_name = del)]
    pub fn storage_del(key: &str);
    #[wasm_bindgen(js_namespace = storage, js_name = scan)]
    pub fn storage_scan(prefix: &str) -> Vec<String>;
}

#[wasm_bindgen]
extern "C" {
    #[cfg(test)]
    #[wasm_bindgen(js_name = fetch)]
    pub fn fetch(url: &str, init: &JsValue) -> js_sys::Promise;

    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(f: &Function, ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    pub fn clear_timeout(id: &JsValue);

    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);

    #[wasm_bindgen(js_namespace = console, js_name = debug)]
    pub fn console_debug(msg: &str);
}

pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// The platform's cryptographic RNG, for `unique_id`s, anonymous ids and jitter.
pub struct CryptoRng;

impl Entropy for CryptoRng {
    fn fill(&mut self, buf: &mut [u8]) {
        get_random_values(buf);
    }
}
