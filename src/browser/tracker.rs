//! `Tracker`, the wasm class behind the JS `Klaviyo` wrapper. Each call turns its JS
//! arguments into JSON text (the browser's own `JSON.stringify`), hands them to the
//! core, writes what the core asks to storage, and wakes the send loop.
//!
//! Calls enter through one exported `call(op, a, b)` rather than a method each: every
//! exported method costs its own argument and error glue, in the wasm and in the JS.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::host::{now_ms, CryptoRng};
use super::pump::{self, Shared, State};
use super::storage::Store;
use super::tabs;
use crate::core::client::{Client, Commerce};
use crate::core::config::Config;
use crate::core::json;
use crate::core::validate::ValidationError;

#[wasm_bindgen]
pub struct Tracker {
    state: Shared,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        pump::close(&self.state);
    }
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
    /// `options`: `{ companyId, apiBase?, revision?, maxQueueEvents?, maxQueueBytes?,
    /// flushDelayMs?, debug? }`
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
        let query = super::host::query();
        let mut client = Client::new(config, identity.as_deref(), records, &query, CryptoRng);
        let tab_id = client.new_id();
        let state = Rc::new(RefCell::new(State::new(client, store, on_error, debug)));
        tabs::connect(&state, tab_id);
        let t = Tracker { state };
        t.after_call();
        Ok(t)
    }

    /// Every call of the JS API: `op` is its JS name, `a` and `b` its arguments.
    /// Returns the event's `unique_id` for events, a number for `pending`, else
    /// `undefined`.
    pub fn call(&self, op: &str, a: JsValue, b: JsValue) -> Result<JsValue, JsError> {
        let now = now_ms();
        let r = match op {
            "pending" => return Ok(JsValue::from(self.pending())),
            "anonymousId" => {
                return Ok(JsValue::from_str(self.state.borrow().client.anonymous_id()))
            }
            "reset" => {
                self.state.borrow_mut().client.reset();
                Ok(None)
            }
            "close" => {
                pump::close(&self.state);
                return Ok(JsValue::UNDEFINED);
            }
            "identify" => {
                let args = to_json(op, "profile", &a)?;
                self.state
                    .borrow_mut()
                    .client
                    .identify(&args, now)
                    .map(|_| None)
            }
            "subscribe" | "backInStock" => {
                let args = to_json(op, "options", &a)?;
                let c = &mut self.state.borrow_mut().client;
                if op == "subscribe" {
                    c.subscribe(&args, now)
                } else {
                    c.back_in_stock(&args, now)
                }
                .map(|_| None)
            }
            "viewedProduct" | "addedToCart" | "startedCheckout" => {
                finite(op, &b, &["value"])?;
                finite(op, &a, NUMBERS)?;
                let props = to_json(op, "properties", &a)?;
                let opts = to_json(op, "options", &b)?;
                let c = &mut self.state.borrow_mut().client;
                let kind = match op {
                    "viewedProduct" => Commerce::ViewedProduct,
                    "addedToCart" => Commerce::AddedToCart,
                    _ => Commerce::StartedCheckout,
                };
                c.commerce(kind, &props, &opts, now).map(Some)
            }
            _ => return Err(JsError::new("klaviyo: unknown call")),
        };
        let id = r.map_err(|e| fail(op, e))?;
        self.after_call();
        Ok(id.map_or(JsValue::UNDEFINED, |s| JsValue::from_str(&s)))
    }

    /// `track(metric, properties, options)`: its own entry, having three arguments.
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
}

impl Tracker {
    /// Persists what the call queued and schedules a send shortly (so a burst of calls
    /// shares one request).
    fn after_call(&self) {
        let (reports, due) = {
            let mut s = self.state.borrow_mut();
            let reports = s.sync();
            let soon = now_ms() + s.client.config.flush_delay_ms;
            let due = if s.wakes_by(soon) {
                None
            } else {
                s.client.poll_timeout().map(|t| t.max(soon))
            };
            (reports, due)
        };
        pump::deliver(&self.state, reports);
        if let Some(at) = due {
            pump::arm(&self.state, at);
        }
    }

    /// Requests queued and not yet accepted by Klaviyo.
    pub fn pending(&self) -> u32 {
        self.state.borrow().client.pending() as u32
    }
}
