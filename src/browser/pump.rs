//! The send loop. Runs are chained on one promise, so only one loop sends at a time and
//! `flush()` can wait for everything started before it. A single timer wakes the loop
//! when the core says the next request is due (batch delay, retry backoff).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::Response;

use super::host::{self, now_ms, CryptoRng};
use super::storage::Store;
use crate::core::client::Client;
use crate::core::queue::{Report, ReportKind, Transmit};
use crate::core::retry::Outcome;

pub struct State {
    pub client: Client<CryptoRng>,
    pub store: Store,
    pub on_error: Option<Function>,
    pub debug: bool,
    tail: Option<Promise>,
    timer: Option<(JsValue, u64)>,
}

pub type Shared = Rc<RefCell<State>>;

impl State {
    pub fn new(client: Client<CryptoRng>, store: Store, on_error: Option<Function>, debug: bool) -> State {
        State {
            client,
            store,
            on_error,
            debug,
            tail: None,
            timer: None,
        }
    }

    /// Writes what the core asked for and takes the reports to hand to `onError`.
    /// The caller calls [`deliver`] after releasing its borrow: a handler may call us back.
    pub fn sync(&mut self) -> Vec<Report> {
        let ops = self.client.take_storage_ops();
        self.store.apply(ops);
        self.client.take_reports()
    }
}

/// Hands reports to `onError` as `Error`s. Never throws: a failing handler is ignored.
pub fn deliver(state: &Shared, reports: Vec<Report>) {
    if reports.is_empty() {
        return;
    }
    let (handler, debug) = {
        let s = state.borrow();
        (s.on_error.clone(), s.debug)
    };
    for r in reports {
        let err = report_error(&r);
        if debug {
            host::console_debug(&String::from(err.message()));
        }
        if let Some(f) = &handler {
            let _ = f.call1(&JsValue::NULL, &err);
        }
    }
}

fn report_error(r: &Report) -> js_sys::Error {
    let (kind, text) = match r.kind {
        ReportKind::Rejected => ("rejected", "klaviyo: Klaviyo rejected a request; it was removed from the queue"),
        ReportKind::WillRetry => ("retry", "klaviyo: sending failed; the request stays queued and will be retried"),
        ReportKind::Evicted => ("evicted", "klaviyo: the queue was full; the oldest requests were dropped"),
        ReportKind::GaveUp => ("gave_up", "klaviyo: requests were dropped after too many failed attempts"),
    };
    let e = js_sys::Error::new(text);
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&e, &JsValue::from_str(k), &v);
    };
    set("kind", JsValue::from_str(kind));
    set("status", JsValue::from(r.status));
    set("count", JsValue::from(r.count as u32));
    if !r.detail.is_empty() {
        // The server's JSON:API error body, parsed when it is JSON.
        let detail = js_sys::JSON::parse(&r.detail).unwrap_or_else(|_| JsValue::from_str(&r.detail));
        set("detail", detail);
    }
    e
}

/// Starts a send loop after the one running now; resolves when it has finished.
pub fn kick(state: &Shared) -> Promise {
    let prev = state.borrow_mut().tail.take();
    let st = state.clone();
    let p = future_to_promise(async move {
        if let Some(prev) = prev {
            let _ = JsFuture::from(prev).await;
        }
        run(&st).await;
        Ok(JsValue::UNDEFINED)
    });
    state.borrow_mut().tail = Some(p.clone());
    p
}

/// Makes sure the loop runs again no later than `at_ms`.
pub fn arm(state: &Shared, at_ms: u64) {
    let mut s = state.borrow_mut();
    if matches!(&s.timer, Some((_, t)) if *t <= at_ms) {
        return;
    }
    if let Some((id, _)) = s.timer.take() {
        host::clear_timeout(&id);
    }
    let st = state.clone();
    let cb = Closure::once_into_js(move || {
        st.borrow_mut().timer = None;
        let _ = kick(&st);
    });
    let delay = at_ms.saturating_sub(now_ms()).min(i32::MAX as u64) as f64;
    let id = host::set_timeout(cb.unchecked_ref(), delay);
    s.timer = Some((id, at_ms));
}

async fn run(state: &Shared) {
    loop {
        let (tx, url, revision) = {
            let mut s = state.borrow_mut();
            let Some(tx) = s.client.poll_transmit(now_ms()) else {
                break;
            };
            let url = s.client.config.url(tx.endpoint.path());
            (tx, url, s.client.config.revision.clone())
        };
        let outcome = send(&url, &tx, &revision).await;
        let reports = {
            let mut s = state.borrow_mut();
            s.client.on_outcome(tx.id, outcome, now_ms());
            s.sync()
        };
        deliver(state, reports);
    }
    let next = state.borrow().client.poll_timeout();
    if let Some(at) = next {
        arm(state, at);
    }
}

async fn send(url: &str, tx: &Transmit, revision: &str) -> Outcome {
    let init = Object::new();
    let headers = Object::new();
    let set = |o: &Object, k: &str, v: &str| {
        let _ = Reflect::set(o, &JsValue::from_str(k), &JsValue::from_str(v));
    };
    set(&headers, "content-type", "application/vnd.api+json");
    set(&headers, "revision", revision);
    set(&init, "method", "POST");
    set(&init, "body", &tx.body);
    let _ = Reflect::set(&init, &JsValue::from_str("headers"), &headers);
    let Ok(resp) = JsFuture::from(host::fetch(url, &init)).await else {
        return Outcome::Network;
    };
    let resp: Response = resp.unchecked_into();
    let status = resp.status();
    // Null when absent or not exposed by CORS; an HTTP-date form counts as absent.
    let retry_after_s = resp
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u32>().ok());
    let body = if status >= 300 {
        match resp.text() {
            Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
            Err(_) => String::new(),
        }
    } else {
        String::new()
    };
    Outcome::Status {
        status,
        retry_after_s,
        body,
    }
}
