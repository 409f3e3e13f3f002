//! The send loop: one request in flight at a time, driven by callbacks (no async
//! executor in the wasm). `flush()` promises resolve when the loop runs dry. A single
//! timer wakes the loop when the core says the next request is due (batch delay,
//! retry backoff, Retry-After, rate limit).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use super::host::{self, now_ms, CryptoRng};
use super::storage::Store;
use crate::core::client::Client;
use crate::core::queue::{Report, ReportKind, Transmit, KEEPALIVE_BUDGET};
use crate::core::retry::Outcome;

pub struct State {
    pub client: Client<CryptoRng>,
    pub store: Store,
    pub on_error: Option<Function>,
    pub debug: bool,
    /// Still waiting to learn whether this tab is the sender: `flush()` waits too.
    pub electing: bool,
    /// `close()` was called: nothing more is sent or scheduled.
    pub closed: bool,
    /// Called by `close()`: release the Web Lock, stop listeners and heartbeats.
    pub cleanups: Vec<Function>,
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
            electing: false,
            closed: false,
            cleanups: Vec::new(),
            running: false,
            waiters: Vec::new(),
            timer: None,
        }
    }

    /// Whether the loop will look at the queue by `at_ms` anyway (running, or its timer
    /// is set): then a call need not ask the core when to wake up (an O(n) scan).
    pub fn wakes_by(&self, at_ms: u64) -> bool {
        self.running || matches!(&self.timer, Some((_, t)) if *t <= at_ms)
    }

    /// Writes what the core asked for and takes the reports to hand to `onError`.
    /// The caller calls [`deliver`] after releasing its borrow: a handler may call us back.
    pub fn sync(&mut self) -> Vec<Report> {
        let ops = self.client.take_storage_ops();
        for key in self.store.apply(ops) {
            self.client.on_storage_failed(&key);
        }
        self.client.take_reports()
    }
}

/// `console.debug` when the shop asked for `debug: true`. Never personal data: callers
/// pass only endpoints, counts and statuses.
pub fn log(state: &Shared, parts: &[&str]) {
    if state.borrow().debug {
        host::console_debug(&parts.concat());
    }
}

fn num(n: usize) -> String {
    let mut s = String::new();
    crate::core::text::push_u64(&mut s, n as u64);
    s
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
        ReportKind::Storage => (
            "storage",
            "klaviyo: localStorage refused a write; requests are kept in memory for this page",
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

/// Starts the loop unless it runs already, or the tab is still learning its role.
pub fn start(state: &Shared) {
    let go = {
        let mut s = state.borrow_mut();
        let go = !s.running && !s.electing;
        s.running |= go;
        go
    };
    if go {
        step(state);
    }
}

/// Stops everything: no more sends, timers or listeners (the queue stays on disk).
pub fn close(state: &Shared) {
    let (timer, cleanups) = {
        let mut s = state.borrow_mut();
        s.closed = true;
        (s.timer.take(), std::mem::take(&mut s.cleanups))
    };
    if let Some((id, _)) = timer {
        host::clear_timeout(&id);
    }
    for f in cleanups {
        let _ = f.call0(&JsValue::NULL);
    }
}

/// Makes sure the loop runs again no later than `at_ms`.
pub fn arm(state: &Shared, at_ms: u64) {
    let mut s = state.borrow_mut();
    if s.closed || matches!(&s.timer, Some((_, t)) if *t <= at_ms) {
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
        let now = now_ms();
        if s.closed {
            None
        } else {
            s.client.poll_transmit(now)
        }
    };
    match next {
        Some(tx) => transmit(state, tx, false),
        None => {
            let (waiters, due) = {
                let mut s = state.borrow_mut();
                s.running = false;
                (std::mem::take(&mut s.waiters), s.client.poll_timeout())
            };
            if let Some(at) = due {
                // Never a busy loop, whatever the core says.
                arm(state, at.max(now_ms() + 10));
            }
            for w in waiters {
                w();
            }
        }
    }
}

/// The page is being hidden or unloaded: hand the browser what fits its keepalive
/// allowance now. Everything else stays on disk for the next page of the shop.
pub fn flush_keepalive(state: &Shared) {
    let mut budget = KEEPALIVE_BUDGET;
    loop {
        let next = {
            let mut s = state.borrow_mut();
            if s.closed {
                return;
            }
            s.client.poll_keepalive(now_ms(), budget)
        };
        let Some(tx) = next else { return };
        budget = budget.saturating_sub(tx.body.len());
        transmit(state, tx, true);
    }
}

fn transmit(state: &Shared, tx: Transmit, keepalive: bool) {
    let (url, revision) = {
        let s = state.borrow();
        (
            s.client.config.url(tx.endpoint.path()),
            s.client.config.revision.clone(),
        )
    };
    let path = tx.endpoint.path();
    log(
        state,
        &[
            "klaviyo: POST ",
            path,
            " (",
            &num(tx.items),
            if keepalive { ", keepalive)" } else { ")" },
        ],
    );
    let st = state.clone();
    let id = tx.id;
    let done = Closure::once_into_js(
        move |status: u16, retry_after: Option<String>, body: String| {
            log(&st, &["klaviyo: ", path, " -> ", &num(usize::from(status))]);
            let outcome = if status == 0 {
                Outcome::Network
            } else {
                // Null when absent or not exposed by CORS; an HTTP-date form counts as absent.
                let retry_after_s = retry_after
                    .and_then(|v| crate::core::text::parse_u64(v.trim()))
                    .map(|s| s.min(u64::from(u32::MAX)) as u32);
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
            if keepalive {
                start(&st); // the page survived: carry on (or set the retry timer)
            } else {
                step(&st);
            }
        },
    );
    host::send(&url, &revision, &tx.body, keepalive, &done);
}
