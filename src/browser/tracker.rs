//! `Tracker`, the wasm class behind the JS `Klaviyo` wrapper. Each method turns its
//! JS arguments into JSON text (the browser's own `JSON.stringify`), hands them to the
//! core, writes what the core asks to storage, and wakes the send loop.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::host::{now_ms, CryptoRng};
use super::pump::{self, Shared, State};
use super::storage::Store;
use crate::core::client::Client;
use crate::core::config::Config;
use crate::core::json;
use crate::core::validate::ValidationError;

#[wasm_bindgen]
pub struct Tracker {
    state: Shared,
}

/// The `Error` a shop developer sees: `track: value must be a finite number`.
fn fail(call: &str, e: ValidationError) -> JsError {
    JsError::new(&e.message(call))
}

/// JS value -> JSON text; `undefined`/`null` become `null` (an omitted argument).
fn to_json(call: &str, field: &str, v: &JsValue) -> Result<String, JsError> {
    if v.is_undefined() || v.is_null() {
        return Ok("null".into());
    }
    js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| {
            fail(
                call,
                ValidationError::new(
                    field,
                    "must be plain JSON data (no cycles, functions or BigInt)",
                ),
            )
        })
}

/// `JSON.stringify` turns NaN and Infinity into null, which would read as "not given":
/// refuse them before that happens.
fn finite(call: &str, v: &JsValue, keys: &[&'static str]) -> Result<(), JsError> {
    if !v.is_object() {
        return Ok(());
    }
    for key in keys {
        let x = Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
        if x.as_f64().is_some_and(|n| !n.is_finite()) {
            return Err(fail(
                call,
                ValidationError::new(key, "must be a finite number"),
            ));
        }
    }
    Ok(())
}

const NUMBERS: &[&str] = &["value", "Price", "Quantity", "CartTotal", "CompareAtPrice"];

#[wasm_bindgen]
impl Tracker {
    /// `options`: `{ companyId, apiBase?, revision?, maxQueueEvents?, maxQueueBytes?, debug? }`
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue, on_error: Option<Function>) -> Result<Tracker, JsError> {
        let text = to_json("init", "options", &options)?;
        let opts = json::parse(&text)
            .map_err(|_| fail("init", ValidationError::new("options", "must be an object")))?;
        let config = Config::from_json(&opts).map_err(|e| fail("init", e))?;
        let debug = matches!(opts.get("debug"), Some(json::Json::Bool(true)));
        let store = Store::open();
        let identity = store.get(&config.identity_key());
        let records = store.scan(&config.queue_prefix());
        let query = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        let client = Client::new(config, identity.as_deref(), records, &query, CryptoRng);
        let state = Rc::new(RefCell::new(State::new(client, store, on_error, debug)));
        let t = Tracker { state };
        t.after_call();
        Ok(t)
    }

    /// Persists what the call queued and schedules a send shortly (so a burst of calls
    /// shares one request).
    fn after_call(&self) {
        let (reports, due) = {
            let mut s = self.state.borrow_mut();
            let reports = s.sync();
            let due = s
                .client
                .poll_timeout()
                .map(|t| t.max(now_ms() + s.client.config.flush_delay_ms));
            (reports, due)
        };
        pump::deliver(&self.state, reports);
        if let Some(at) = due {
            pump::arm(&self.state, at);
        }
    }

    pub fn identify(&self, profile: JsValue) -> Result<(), JsError> {
        let args = to_json("identify", "profile", &profile)?;
        let r = self.state.borrow_mut().client.identify(&args, now_ms());
        r.map_err(|e| fail("identify", e))?;
        self.after_call();
        Ok(())
    }

    pub fn track(
        &self,
        metric: JsValue,
        properties: JsValue,
        options: JsValue,
    ) -> Result<String, JsError> {
        let metric = metric
            .as_string()
            .ok_or_else(|| fail("track", ValidationError::new("metric", "must be a string")))?;
        finite("track", &options, &["value"])?;
        let props = to_json("track", "properties", &properties)?;
        let opts = to_json("track", "options", &options)?;
        let r = self
            .state
            .borrow_mut()
            .client
            .track(&metric, &props, &opts, now_ms());
        let id = r.map_err(|e| fail("track", e))?;
        self.after_call();
        Ok(id)
    }

    #[wasm_bindgen(js_name = viewedProduct)]
    pub fn viewed_product(&self, properties: JsValue, options: JsValue) -> Result<String, JsError> {
        self.ecommerce("viewedProduct", properties, options)
    }

    #[wasm_bindgen(js_name = addedToCart)]
    pub fn added_to_cart(&self, properties: JsValue, options: JsValue) -> Result<String, JsError> {
        self.ecommerce("addedToCart", properties, options)
    }

    #[wasm_bindgen(js_name = startedCheckout)]
    pub fn started_checkout(
        &self,
        properties: JsValue,
        options: JsValue,
    ) -> Result<String, JsError> {
        self.ecommerce("startedCheckout", properties, options)
    }

    fn ecommerce(
        &self,
        call: &str,
        properties: JsValue,
        options: JsValue,
    ) -> Result<String, JsError> {
        finite(call, &options, &["value"])?;
        finite(call, &properties, NUMBERS)?;
        let props = to_json(call, "properties", &properties)?;
        let opts = to_json(call, "options", &options)?;
        let now = now_ms();
        let r = {
            let c = &mut self.state.borrow_mut().client;
            match call {
                "viewedProduct" => c.viewed_product(&props, &opts, now),
                "addedToCart" => c.added_to_cart(&props, &opts, now),
                _ => c.started_checkout(&props, &opts, now),
            }
        };
        let id = r.map_err(|e| fail(call, e))?;
        self.after_call();
        Ok(id)
    }

    pub fn subscribe(&self, args: JsValue) -> Result<(), JsError> {
        let text = to_json("subscribe", "options", &args)?;
        let r = self.state.borrow_mut().client.subscribe(&text, now_ms());
        r.map_err(|e| fail("subscribe", e))?;
        self.after_call();
        Ok(())
    }

    #[wasm_bindgen(js_name = backInStock)]
    pub fn back_in_stock(&self, args: JsValue) -> Result<(), JsError> {
        let text = to_json("backInStock", "options", &args)?;
        let r = self
            .state
            .borrow_mut()
            .client
            .back_in_stock(&text, now_ms());
        r.map_err(|e| fail("backInStock", e))?;
        self.after_call();
        Ok(())
    }

    /// Sends everything due now; resolves to `{ sent, pending, failed }` for this flush.
    pub fn flush(&self) -> Promise {
        let before = self.state.borrow().client.totals();
        let mut resolve_fn = None;
        let promise = Promise::new(&mut |resolve, _| resolve_fn = Some(resolve));
        let st = self.state.clone();
        pump::kick(
            &self.state,
            Box::new(move || {
                let out = Object::new();
                {
                    let s = st.borrow();
                    let (sent, failed) = s.client.totals();
                    let set = |k: &str, v: usize| {
                        let _ = Reflect::set(&out, &JsValue::from_str(k), &JsValue::from(v as u32));
                    };
                    set("sent", sent - before.0);
                    set("failed", failed - before.1);
                    set("pending", s.client.pending());
                }
                if let Some(r) = resolve_fn {
                    let _ = r.call1(&JsValue::NULL, &out);
                }
            }),
        );
        promise
    }

    /// Requests queued and not yet accepted by Klaviyo.
    pub fn pending(&self) -> u32 {
        self.state.borrow().client.pending() as u32
    }

    /// Starts a new anonymous profile (call on logout).
    pub fn reset(&self) {
        self.state.borrow_mut().client.reset();
        self.after_call();
    }

    /// The visitor's anonymous id (stable across page loads).
    #[wasm_bindgen(getter, js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.state.borrow().client.anonymous_id().to_string()
    }
}
