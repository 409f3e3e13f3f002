//! Global functions of the page (or worker) we run in. Imported directly rather than
//! through `window`, which keeps the glue small and works wherever they exist.

use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::core::client::Entropy;

#[wasm_bindgen(module = "/js/send.js")]
extern "C" {
    /// `fetch` wrapped so it calls `done(status, retryAfter, body)` exactly once.
    pub fn send(url: &str, revision: &str, body: &str, keepalive: bool, done: &JsValue);
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
