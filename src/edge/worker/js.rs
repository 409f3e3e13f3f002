//! Talking to the runtime cheaply: header names and fixed values made JS strings once
//! per isolate, headers read and written by them, `env` bindings, `ctx.waitUntil`, and
//! the URL's path and query.

use std::cell::RefCell;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::*;

#[wasm_bindgen]
extern "C" {
    /// A `Headers` that takes its names (and fixed values) as JS strings made once by
    /// [`fixed`]: `web_sys::Headers` takes `&str`, copied out of wasm memory and
    /// decoded afresh on every call.
    #[wasm_bindgen(js_name = Headers)]
    pub(crate) type FixedHeaders;
    #[wasm_bindgen(method, js_name = get)]
    pub(crate) fn get_fixed(this: &FixedHeaders, name: &JsValue) -> Option<String>;
    #[wasm_bindgen(method, catch, js_name = append)]
    pub(crate) fn append_fixed(
        this: &FixedHeaders,
        name: &JsValue,
        value: &JsValue,
    ) -> Result<(), JsValue>;
    /// `RequestInit.method` from a JS string made once.
    #[wasm_bindgen(js_name = Object)]
    pub(crate) type FixedInit;
    #[wasm_bindgen(method, setter = method)]
    pub(crate) fn set_method_fixed(this: &FixedInit, method: &JsValue);
}

pub(crate) fn fixed_headers(headers: &web_sys::Headers) -> &FixedHeaders {
    headers.unchecked_ref()
}

thread_local! {
    /// Header names and fixed values as JS strings, made once per isolate, in the
    /// slots [`fixed_slot`] gives them.
    static FIXED: RefCell<[Option<JsValue>; FIXED_SLOTS]> =
        const { RefCell::new([const { None }; FIXED_SLOTS]) };
}

/// `text` as a JS string: the one made once when [`fixed_slot`] knows it, else a new one.
pub(crate) fn fixed(text: &str) -> JsValue {
    let Some(slot) = fixed_slot(text) else {
        return JsValue::from_str(text);
    };
    FIXED.with(|f| {
        let mut f = f.borrow_mut();
        match f.get_mut(slot) {
            None => JsValue::from_str(text),
            Some(Some(js)) => js.clone(),
            Some(empty) => empty.insert(JsValue::from_str(text)).clone(),
        }
    })
}

/// `headers.get(name)`.
pub(crate) fn header(headers: &web_sys::Headers, name: &str) -> Option<String> {
    fixed_headers(headers).get_fixed(&fixed(name))
}

/// `headers.append(name, value)`.
pub(crate) fn append(headers: &web_sys::Headers, name: &str, value: &str) -> Result<(), JsValue> {
    fixed_headers(headers).append_fixed(&fixed(name), &fixed(value))
}

/// `env[name]` when it is an object with a method `method`.
pub(crate) fn binding(env: &JsValue, name: &str, method: &str) -> Option<(JsValue, Function)> {
    let obj = Reflect::get(env, &JsValue::from_str(name))
        .ok()
        .filter(JsValue::is_object)?;
    let f = Reflect::get(&obj, &JsValue::from_str(method))
        .ok()?
        .dyn_into::<Function>()
        .ok()?;
    Some((obj, f))
}

/// `queue.send(text, { contentType: "text", delaySeconds })`: whether the queue took it.
pub(crate) async fn sent_as_text(
    queue: &JsValue,
    send: &Function,
    text: &str,
    delay_s: Option<u32>,
) -> bool {
    let opts = Object::new();
    let _ = Reflect::set(&opts, &"contentType".into(), &"text".into());
    if let Some(d) = delay_s {
        let _ = Reflect::set(&opts, &"delaySeconds".into(), &JsValue::from(d));
    }
    match send.call2(queue, &JsValue::from_str(text), &opts) {
        Ok(p) => JsFuture::from(Promise::from(p)).await.is_ok(),
        Err(_) => false,
    }
}

/// A queue message's body as text, the same for every consumer: text as it is, bytes
/// (an `ArrayBuffer` or a view of one) when they are UTF-8, and a plain object or array,
/// a number, a boolean or `null` as its JSON (`JSON.stringify`'s: what JSON cannot
/// hold inside it, a nested `Map` or `NaN`, it writes as JSON does). `None` for
/// anything else (bytes that are not UTF-8, a `Map` or `Date` body): such a message is
/// left to its queue, never acknowledged as something it is not.
pub(crate) fn body_text(body: &JsValue) -> Option<String> {
    if let Some(t) = body.as_string() {
        return Some(t);
    }
    if let Some(bytes) = body_bytes(body) {
        return String::from_utf8(bytes).ok();
    }
    let plain = !body.is_object() || js_sys::Array::is_array(body) || {
        let proto = Object::get_prototype_of(body);
        proto.is_null() || Object::is(&proto, &Object::get_prototype_of(&Object::new()))
    };
    if !plain || body.is_undefined() || body.is_function() {
        return None;
    }
    js_sys::JSON::stringify(body).ok()?.as_string()
}

/// The bytes of a body that is an `ArrayBuffer` or a view of one (its own bytes, not
/// the whole buffer's).
pub(crate) fn body_bytes(body: &JsValue) -> Option<Vec<u8>> {
    if let Some(buffer) = body.dyn_ref::<js_sys::ArrayBuffer>() {
        return Some(js_sys::Uint8Array::new(buffer).to_vec());
    }
    if !js_sys::ArrayBuffer::is_view(body) {
        return None;
    }
    let buffer = Reflect::get(body, &"buffer".into()).ok()?;
    let at = Reflect::get(body, &"byteOffset".into()).ok()?.as_f64()?;
    let len = Reflect::get(body, &"byteLength".into()).ok()?.as_f64()?;
    let view = js_sys::Uint8Array::new_with_byte_offset_and_length(&buffer, at as u32, len as u32);
    Some(view.to_vec())
}

/// `message.attempts`: 1 for the first delivery.
pub(crate) fn attempts_of(m: &JsValue) -> u32 {
    Reflect::get(m, &"attempts".into())
        .ok()
        .and_then(|a| a.as_f64())
        .map_or(1, |n| n.max(1.0) as u32)
}

/// `ctx.waitUntil(promise)` where the runtime has it (workerd); elsewhere the promise
/// simply runs on.
pub(crate) fn wait_until(ctx: &JsValue, promise: &Promise) {
    let f = Reflect::get(ctx, &"waitUntil".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    if let Some(f) = f {
        let _ = f.call1(ctx, promise);
    }
}

/// `https://host/a/b?x=1` -> (`/a/b`, `x=1`).
pub(crate) fn split_url(url: &str) -> (&str, &str) {
    // Byte scans: `str::find` with a `&str` pattern builds a two-way searcher per call.
    let after_scheme = url
        .as_bytes()
        .windows(3)
        .position(|w| w == b"://")
        .map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let path_and_query = rest.find('/').map_or("/", |i| &rest[i..]);
    let path_and_query = path_and_query.split('#').next().unwrap_or("/");
    match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    }
}

/// The headers the router reads on this route, as `(name, value)` pairs.
pub(crate) fn header_pairs(headers: &web_sys::Headers, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| Some((name.to_string(), header(headers, name)?)))
        .collect()
}
