//! The wasm-bindgen surface of the browser build: numbers only. Text goes through two
//! buffers in the wasm memory: the runtime writes its strings into [`input_buffer`] with
//! `TextEncoder.encodeInto` (no allocation, no copy per character in JS) and passes
//! their byte lengths; an export that answers with text leaves it in the out buffer
//! ([`answer_ptr`]) and returns its length. So js/runtime.js calls these exports directly
//! (no generated JS glue in the package), and the hot path, [`call`], moves no string
//! back.

use std::cell::UnsafeCell;

use wasm_bindgen::prelude::*;

use crate::core::client::{Client, Op};
use crate::core::config::Config;
use crate::core::consent::Consent;
use crate::core::lease;
use crate::core::queue::{Stored, SEP};
use crate::core::text::{self, push_u64};

/// A global of the single-threaded wasm. Each export takes what it needs for its own
/// duration; exports never call each other, and the three globals are apart, so no
/// two references to one of them are ever alive at once.
struct Global<T>(UnsafeCell<T>);

// SAFETY: wasm32 without threads: there is only ever one thread.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    #[allow(clippy::mut_from_ref)]
    fn get(&self) -> &mut T {
        // SAFETY: see the type's notes.
        unsafe { &mut *self.0.get() }
    }
}

/// The open trackers, by handle. Boxed: a handle is never reused (a closed tracker's
/// late answer must not reach another), so the list only grows, by a pointer per
/// `create`; a tracker held inline grew it by the whole tracker, kept after `close`.
static CLIENTS: Global<Vec<Option<Box<Client>>>> = Global(UnsafeCell::new(Vec::new()));
/// What the runtime wrote for the current export.
static INPUT: Global<Vec<u8>> = Global(UnsafeCell::new(Vec::new()));
/// The current export's answer (or the last refusal's message).
static OUT: Global<String> = Global(UnsafeCell::new(String::new()));

fn client(h: u32) -> Option<&'static mut Client> {
    CLIENTS.get().get_mut(h as usize)?.as_deref_mut()
}

/// The next of the input buffer's texts, of `len` bytes (`u32::MAX`: absent), from
/// byte `at` on; moves `at` past it. Each export reads its texts in order with it
/// (one copy of the code, no array of them).
#[inline(never)]
fn text_at(at: &mut usize, len: u32) -> Option<&'static str> {
    if len == u32::MAX {
        return None;
    }
    let end = *at + len as usize;
    let s = INPUT.get().get(*at..end).and_then(text::utf8);
    *at = end;
    Some(s.unwrap_or(""))
}

/// Leaves `s` as the answer; returns its length.
fn answer(s: String) -> u32 {
    let n = s.len() as u32;
    *OUT.get() = s;
    n
}

/// The address of a buffer of at least `len` bytes for an export's text (valid until
/// the next `input_buffer`; the runtime asks again when it needs more room).
#[wasm_bindgen]
pub fn input_buffer(len: usize) -> *mut u8 {
    let b = INPUT.get();
    if b.len() < len {
        b.resize(len, 0);
    }
    b.as_mut_ptr()
}

/// Where the last answer is (valid until the next export call).
#[wasm_bindgen]
pub fn answer_ptr() -> *const u8 {
    OUT.get().as_ptr()
}

/// The length of the last answer (for `open`, whose result is the handle).
#[wasm_bindgen]
pub fn answer_len() -> u32 {
    OUT.get().len() as u32
}

/// Opens a tracker. The input holds the init options as JSON, everything in storage
/// under `klaviyo:` (packed), the page's query string, a new random id (the anonymous
/// id if none is stored) and the page's cookies (Klaviyo's onsite ones are read).
/// Returns the handle, or `u32::MAX` with the message as the answer.
#[wasm_bindgen]
pub fn open(options: u32, stored: u32, query: u32, fresh_id: u32, cookies: u32) -> u32 {
    let at = &mut 0;
    let options = text_at(at, options);
    let stored = text_at(at, stored);
    let query = text_at(at, query);
    let fresh_id = text_at(at, fresh_id);
    let cookies = text_at(at, cookies);
    let config = match Config::from_json(options.unwrap_or("")) {
        Ok(c) => c,
        Err(e) => {
            answer(e.message("init"));
            return u32::MAX;
        }
    };
    let stored = Stored(stored.unwrap_or(""));
    let id_key = config.identity_key();
    let mut identity = None;
    for (k, v) in stored.pairs() {
        if k == id_key {
            identity = Some(v);
            break;
        }
    }
    let mut c = Client::new(
        config,
        identity,
        query.unwrap_or(""),
        fresh_id.unwrap_or(""),
    );
    c.read_cookies(cookies.unwrap_or(""));
    c.load_stored(stored);
    let clients = CLIENTS.get();
    clients.push(Some(Box::new(c)));
    (clients.len() - 1) as u32
}

/// One call of the API: the first `len` input bytes hold
/// `JSON.stringify([id, now, ...arguments])`. Returns 0 when accepted, else the length
/// of the message (the answer).
#[wasm_bindgen]
pub fn call(h: u32, op: u32, len: u32) -> u32 {
    let args = text_at(&mut 0, len);
    let (Some(c), Some(op)) = (client(h), Op::from_code(op)) else {
        return 0;
    };
    let r = c.call_json(op, args.unwrap_or(""), 0);
    match r {
        Ok(()) => 0,
        Err(e) => answer(e.message(op.name())),
    }
}

/// The answer to transmit `tx`: `status` 0 when there was none (network error,
/// timeout); the input holds the `Retry-After` header as received ("" when absent)
/// and the response body.
#[wasm_bindgen]
pub fn answered(h: u32, tx: u32, status: u16, retry_after: u32, body: u32, now: f64, jitter: u16) {
    let at = &mut 0;
    let retry_after = text_at(at, retry_after);
    let body = text_at(at, body);
    let Some(c) = client(h) else { return };
    // Seconds: the runtime turns an HTTP-date into the seconds until it with the
    // browser's own Date (the core's date reader stays out of this wasm).
    let retry_after_s = retry_after
        .and_then(|r| text::parse_u64(r.trim_ascii()))
        .map(|s| s.min(u64::from(u32::MAX)) as u32);
    c.on_answer(
        tx,
        status,
        retry_after_s,
        body.unwrap_or(""),
        now as u64,
        jitter,
    );
}

/// What [`control`] does, by number. js/runtime.js names the same codes;
/// tests/build/seam.test.mjs fails if the two tables differ.
pub(crate) mod what {
    pub const SYNC: u32 = 1;
    pub const FAILED: u32 = 2;
    pub const NEXT: u32 = 3;
    pub const WAKE: u32 = 4;
    pub const HIDE: u32 = 5;
    pub const ONLINE: u32 = 6;
    pub const SENDER: u32 = 7;
    pub const STORAGE: u32 = 8;
    pub const CLEARED: u32 = 9;
    pub const PENDING: u32 = 10;
    pub const ANON: u32 = 11;
    pub const RESET: u32 = 12;
    pub const REPORTS: u32 = 13;
    pub const TOTALS: u32 = 14;
    pub const LEASE: u32 = 15;
    pub const CLOSE: u32 = 16;
    pub const INFO: u32 = 17;
    pub const CONSENT: u32 = 18;
    pub const COOKIES: u32 = 19;
    pub const IDENTIFIED: u32 = 20;
    pub const ADOPT: u32 = 21;
    pub const VISITOR: u32 = 22;
}

/// Everything else the runtime asks or tells the core. `n` is a time or a number; the
/// input holds two texts `a` and `b` of the given lengths (`b` may be absent,
/// `u32::MAX`). Returns the length of the answer ("" when there is nothing to say).
#[wasm_bindgen]
pub fn control(h: u32, what: u32, n: f64, a: u32, b: u32) -> u32 {
    let at = &mut 0;
    let a = text_at(at, a);
    let b = text_at(at, b);
    answer(control_text(h, what, n, a.unwrap_or(""), b))
}

/// [`control`] with its texts read: the answer.
fn control_text(h: u32, what: u32, n: f64, a: &str, b: Option<&str>) -> String {
    let mut out = String::new();
    match what {
        what::LEASE => {
            // The lease needs no tracker: `a` is this tab's id, `b` the stored lease.
            if let (true, Some(v)) = lease::decide(b, a, n as u64) {
                out = v;
            }
            return out;
        }
        what::CLOSE => {
            if let Some(slot) = CLIENTS.get().get_mut(h as usize) {
                *slot = None;
            }
            return out;
        }
        _ => {}
    }
    let Some(c) = client(h) else { return out };
    let now = n as u64;
    match what {
        what::SYNC => c.sync_storage(now, &mut out),
        what::FAILED => c.on_storage_failed(a),
        what::NEXT => {
            // With a budget (`b`): the page is going away; keepalive requests only.
            let t = match b.and_then(text::parse_u64) {
                Some(max) => c.poll_keepalive(now, max as usize),
                None => c.poll_transmit(now, usize::MAX),
            };
            if let Some(t) = t {
                push_u64(&mut out, u64::from(t.id));
                out.push(SEP);
                c.config.write_url(t.endpoint.path(), &mut out);
                out.push(SEP);
                push_u64(&mut out, t.items as u64);
                out.push(SEP);
                push_u64(&mut out, t.body.len() as u64);
                out.push(SEP);
                out.push_str(&t.body);
            }
        }
        what::WAKE => {
            if let Some(t) = c.poll_timeout() {
                push_u64(&mut out, t);
            }
        }
        what::HIDE => c.on_hide(now),
        what::ONLINE => c.set_online(a == "1"),
        what::SENDER => {
            // `a` "1": this tab sends; `b`: all we store then; `n`: the time. The answer:
            // when to look at the loading-window records again (below).
            c.take_part(a == "1", Stored(b.unwrap_or("")), now);
        }
        what::STORAGE => {
            c.on_storage_change(a, b);
            c.early_written(a, b, now);
        }
        what::CLEARED => c.storage_cleared(Stored(a)),
        what::PENDING => push_u64(&mut out, c.pending() as u64),
        // `n` 1: both ids as the body of the first-party cookie's `POST /id`.
        what::ANON if n == 1.0 => c.visitor_json(&mut out),
        what::ANON => out.push_str(c.anonymous_id()),
        what::RESET => c.reset(a),
        what::REPORTS => c.move_reports(&mut out),
        what::TOTALS => {
            let (sent, failed) = c.totals();
            push_u64(&mut out, sent as u64);
            out.push(' ');
            push_u64(&mut out, failed as u64);
        }
        what::CONSENT => {
            // `n`: the new state's code; 4: a denial the adapter carried out before the
            // core ran, 5: one another tab carried out while this page was away (the
            // same here); 3: only asks. `a`: a fresh random id. The answer: the state's code.
            if n >= 4.0 {
                c.denied_before_start();
            } else if let Some(consent) = Consent::from_code(n as u64) {
                c.set_consent(consent, a);
            }
            push_u64(&mut out, c.consent() as u64);
        }
        what::INFO => {
            out.push_str(&c.config.storage_prefix());
            out.push(SEP);
            out.push_str(&c.config.revision);
        }
        what::COOKIES => c.read_cookies(a),
        what::IDENTIFIED => {
            if c.is_identified() {
                out.push('1');
            }
        }
        what::ADOPT => {
            // `a`: the loading-window records in storage now; the answer: when to ask
            // again ("" for never), below.
            c.adopt_stored(Stored(a), now);
        }
        // `a`, `b`: the first-party cookie's anonymous id and `_kx`.
        what::VISITOR => c.adopt_visitor(a, b.unwrap_or("")),
        _ => {}
    }
    // SENDER, STORAGE and ADOPT end with when to look at the loading-window records
    // again (one copy of it).
    if what == what::SENDER || what == what::STORAGE || what == what::ADOPT {
        if let Some(due) = c.early_due() {
            push_u64(&mut out, due);
        }
    }
    out
}

/// The exports as Rust functions taking and giving strings, as the runtime uses them
/// (for the tests in real Chromium).
#[cfg(test)]
pub mod text_api {
    use super::*;

    fn put(parts: &[Option<&str>]) -> Vec<u32> {
        let b = INPUT.get();
        b.clear();
        parts
            .iter()
            .map(|p| match p {
                Some(p) => {
                    b.extend_from_slice(p.as_bytes());
                    p.len() as u32
                }
                None => u32::MAX,
            })
            .collect()
    }

    fn out(len: u32) -> String {
        OUT.get()[..len as usize].to_string()
    }

    /// The handle, or the refusal's message.
    pub fn open(options: &str, stored: &str, query: &str, fresh: &str) -> Result<u32, String> {
        let l = put(&[
            Some(options),
            Some(stored),
            Some(query),
            Some(fresh),
            Some(""),
        ]);
        match super::open(l[0], l[1], l[2], l[3], l[4]) {
            u32::MAX => Err(OUT.get().clone()),
            h => Ok(h),
        }
    }

    /// `Ok` when accepted, else the message.
    pub fn call(h: u32, op: u32, args: &str) -> Result<(), String> {
        let l = put(&[Some(args)]);
        match super::call(h, op, l[0]) {
            0 => Ok(()),
            n => Err(out(n)),
        }
    }

    pub fn control(h: u32, what: u32, n: f64, a: &str, b: Option<&str>) -> String {
        let l = put(&[Some(a), b]);
        let len = super::control(h, what, n, l[0], l[1]);
        out(len)
    }

    pub fn answered(h: u32, tx: u32, status: u16, now: f64) {
        let l = put(&[Some(""), Some("")]);
        super::answered(h, tx, status, l[0], l[1], now, 0);
    }
}
