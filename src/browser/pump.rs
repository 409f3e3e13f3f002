//! The send loop: one request in flight at a time, driven by callbacks (no async
//! executor in the wasm). `flush()` promises resolve when the loop runs dry. A single
//! timer wakes the loop when the core says the next request is due (batch delay,
//! retry backoff).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use super::host::{self, now_ms, CryptoRng};
use super::storage::Store;
use crate::core::client::Client;
use crate::core::queue::{Report, ReportKind};
use crate::core::retry::Outcome;

pub struct State {
    pub client: Client<CryptoRng>,
    pub store: Store,
    pub on_error: Option<Function>,
    pub debug: bool,
    running: bool,
    /// `flush()` promises waiting for the loop to run dry.
    waiters: Vec<Box<dyn FnOnce()>>,
    timer: Option<(JsValue, u64)>,
}

pub type Shared = Rc<RefCell<State>>;

impl State {
    pub fn new(
        client: Client<CryptoRng>,
        store: Store,
        on_error: Option<Function>,
        debug: bool,
    ) -> State {
        State {
            client,
            store,
            on_error,
            debug,
            running: false,
            waiters: Vec::new(),
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
        ReportKind::Rejected => (
            "rejected",
            "klaviyo: Klaviyo rejected a request; it was removed from the queue",
        ),
        ReportKind::WillRetry => (
            "retry",
            "klaviyo: sending failed; the request stays queued and will be retried",
        ),
        ReportKind::Evicted => (
            "evicted",
            "klaviyo: the queue was full; the oldest requests were dropped",
        ),
        ReportKind::GaveUp => (
            "gave_up",
            "klaviyo: requests were dropped after too many failed attempts",
        ),
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
        let detail =
            js_sys::JSON::parse(&r.detail).unwrap_or_else(|_| JsValue::from_str(&r.detail));
        set("detail", detail);
    }
    e
}

/// Runs the loop now (if it is not running); `when_idle` runs once it has nothing more
/// to send.
pub fn kick(state: &Shared, when_idle: Box<dyn FnOnce()>) {
    state.borrow_mut().waiters.push(when_idle);
    start(state);
}

fn start(state: &Shared) {
    let idle = !std::mem::replace(&mut state.borrow_mut().running, true);
    if idle {
        step(state);
    }
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
        start(&st);
    });
    let delay = at_ms.saturating_sub(now_ms()).min(i32::MAX as u64) as f64;
    let id = host::set_timeout(cb.unchecked_ref(), delay);
    s.timer = Some((id, at_ms));
}

/// Sends the next due request, or stops: resolves the waiters and sets the timer.
fn step(state: &Shared) {
    let next = {
        let mut s = state.borrow_mut();
        s.client.poll_transmit(now_ms()).map(|tx| {
            let url = s.client.config.url(tx.endpoint.path());
            (tx, url, s.client.config.revision.clone())
        })
    };
    let Some((tx, url, revision)) = next else {
        let (waiters, due) = {
            let mut s = state.borrow_mut();
            s.running = false;
            (std::mem::take(&mut s.waiters), s.client.poll_timeout())
        };
        if let Some(at) = due {
            arm(state, at);
        }
        for w in waiters {
            w();
        }
        return;
    };
    let st = state.clone();
    let id = tx.id;
    let done = Closure::once_into_js(
        move |status: u16, retry_after: Option<String>, body: String| {
            let outcome = if status == 0 {
                Outcome::Network
            } else {
                // Null when absent or not exposed by CORS; an HTTP-date form counts as absent.
                let retry_after_s = retry_after.and_then(|v| v.trim().parse::<u32>().ok());
                Outcome::Status {
                    status,
                    retry_after_s,
                    body,
                }
            };
            let reports = {
                let mut s = st.borrow_mut();
                s.client.on_outcome(id, outcome, now_ms());
                s.sync()
            };
            deliver(&st, reports);
            step(&st);
        },
    );
    host::send(&url, &revision, &tx.body, false, &done);
}
