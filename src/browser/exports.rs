//! The wasm-bindgen surface of the browser build. Few exports with plain arguments keep
//! the generated glue small; the rare controls share one entry, [`ctl`].

use std::cell::UnsafeCell;

use wasm_bindgen::prelude::*;

use crate::core::client::{Client, Op};
use crate::core::config::Config;
use crate::core::jsontext as jt;
use crate::core::lease;
use crate::core::queue::StorageOp;
use crate::core::retry::Outcome;
use crate::core::text::{self, push_u64};

/// Separates the parts of a message, and key from value.
const SEP: char = '\u{1}';
const SUB: char = '\u{2}';

/// The open trackers, by handle, the last error message, and the buffer the runtime
/// writes a call's arguments into (`TextEncoder.encodeInto`: no allocation and no
/// per-character copy in JS on the hot path).
struct Slots {
    clients: Vec<Option<Client>>,
    error: String,
    scratch: Vec<u8>,
}

struct Global(UnsafeCell<Slots>);

// SAFETY: wasm32 without threads: there is only ever one thread.
unsafe impl Sync for Global {}

static SLOTS: Global = Global(UnsafeCell::new(Slots {
    clients: Vec::new(),
    error: String::new(),
    scratch: Vec::new(),
}));

fn slots() -> &'static mut Slots {
    // SAFETY: see `Global`; exports never call each other, so no second reference
    // exists while one is in use.
    unsafe { &mut *SLOTS.0.get() }
}

fn client(h: u32) -> Option<&'static mut Client> {
    slots().clients.get_mut(h as usize)?.as_mut()
}

/// `key SUB value SEP key SUB value ...` -> pairs.
fn pairs(packed: &str) -> Vec<(String, String)> {
    packed
        .split(SEP)
        .filter_map(|p| p.split_once(SUB))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Opens a tracker. `options` is the init options as JSON, `stored` everything in
/// storage under `klaviyo:` (packed), `query` the page's query string, `fresh_id` a
/// new random id (the anonymous id if none is stored), `now` the time. Returns the
/// handle, or
/// `u32::MAX` with the message in [`error`].
#[wasm_bindgen]
pub fn open(options: &str, stored: &str, query: &str, fresh_id: &str, now: f64) -> u32 {
    let config = match Config::from_json(options) {
        Ok(c) => c,
        Err(e) => {
            slots().error = e.message("init");
            return u32::MAX;
        }
    };
    let stored = pairs(stored);
    let id_key = config.identity_key();
    let identity = stored
        .iter()
        .find(|(k, _)| *k == id_key)
        .map(|(_, v)| v.as_str());
    let early = config.early_prefix();
    let mut c = Client::new(config, identity, query, fresh_id);
    for (k, v) in &stored {
        if k.starts_with(&early) {
            c.adopt_early(k, v, now as u64);
        } else {
            c.load(k, v);
        }
    }
    let s = slots();
    s.clients.push(Some(c));
    (s.clients.len() - 1) as u32
}

/// The address of a buffer of at least `len` bytes for [`call`]'s arguments (valid
/// until the next `buf`; the runtime asks again when it needs more room).
#[wasm_bindgen]
pub fn buf(len: usize) -> *mut u8 {
    let b = &mut slots().scratch;
    if b.len() < len {
        b.resize(len, 0);
    }
    b.as_mut_ptr()
}

/// One call of the API: the first `len` bytes of [`buf`] hold
/// `JSON.stringify([id, now, ...arguments])` as UTF-8. False when the core refuses it;
/// the message is then in [`error`].
#[wasm_bindgen]
pub fn call(h: u32, op: u32, len: usize) -> bool {
    let s = slots();
    let (Some(Some(c)), Some(op)) = (s.clients.get_mut(h as usize), Op::from_code(op)) else {
        return false;
    };
    let args = s
        .scratch
        .get(..len)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("");
    let r = match jt::split_array(args) {
        Some(parts) if parts.len() >= 2 => {
            let (id, now) = id_and_time(&parts);
            c.call_checked(op, &parts[2..], &id, now)
        }
        // Not what JSON.stringify makes: check each part, to name the bad argument.
        _ => {
            let parts: Vec<&str> = jt::items(args).collect();
            let (id, now) = id_and_time(&parts);
            c.call(op, parts.get(2..).unwrap_or(&[]), &id, now)
        }
    };
    match r {
        Ok(()) => true,
        Err(e) => {
            s.error = e.message(op.name());
            false
        }
    }
}

/// [`call`] with `text` put in the buffer, as the runtime does (for the tests).
#[cfg(test)]
pub fn call_text(h: u32, op: u32, text: &str) -> bool {
    let b = &mut slots().scratch;
    b.clear();
    b.extend_from_slice(text.as_bytes());
    call(h, op, text.len())
}

fn id_and_time(parts: &[&str]) -> (String, u64) {
    let id = parts
        .first()
        .and_then(|p| jt::unescape(p))
        .unwrap_or_default();
    let now = parts.get(1).and_then(|p| text::parse_u64(p)).unwrap_or(0);
    (id, now)
}

/// The message of the last refused `open` or `call`.
#[wasm_bindgen]
pub fn error() -> String {
    std::mem::take(&mut slots().error)
}

/// The answer to transmit `tx`: `status` 0 when there was none (network error,
/// timeout), `retry_after` the header as received (or "").
#[wasm_bindgen]
pub fn done(h: u32, tx: u32, status: u16, retry_after: &str, body: String, now: f64, jitter: u16) {
    let Some(c) = client(h) else { return };
    let outcome = if status == 0 {
        Outcome::Network
    } else {
        Outcome::Status {
            status,
            retry_after_s: crate::core::retry::retry_after_secs(retry_after, now as u64),
            body,
        }
    };
    c.on_outcome(tx, outcome, now as u64, jitter);
}

/// What [`ctl`] does, by number (js/runtime.js has the same table).
mod what {
    pub const SYNC: u32 = 1;
    pub const FAILED: u32 = 2;
    pub const NEXT: u32 = 3;
    pub const WAKE: u32 = 4;
    pub const HIDE: u32 = 5;
    pub const ONLINE: u32 = 6;
    pub const SENDER: u32 = 7;
    pub const STORAGE: u32 = 8;
    pub const RESYNC: u32 = 9;
    pub const PENDING: u32 = 10;
    pub const ANON: u32 = 11;
    pub const RESET: u32 = 12;
    pub const REPORTS: u32 = 13;
    pub const TOTALS: u32 = 14;
    pub const LEASE: u32 = 15;
    pub const CLOSE: u32 = 16;
    pub const INFO: u32 = 17;
}

/// Everything else the runtime asks or tells the core. `n` is a time or a number,
/// `a` and `b` text; the answer is text ("" when there is nothing to say).
#[wasm_bindgen]
pub fn ctl(h: u32, what: u32, n: f64, a: &str, b: Option<String>) -> String {
    let mut out = String::new();
    if what == what::LEASE {
        // The lease needs no tracker: `a` is this tab's id, `b` the stored lease.
        if let (true, Some(v)) = lease::decide(b.as_deref(), a, n as u64) {
            out = v;
        }
        return out;
    }
    let Some(c) = client(h) else { return out };
    let now = n as u64;
    match what {
        what::SYNC => {
            for op in c.take_storage_ops(now) {
                out.push(SEP);
                match op {
                    StorageOp::Put { key, value } => {
                        out.push_str(&key);
                        out.push(SUB);
                        out.push_str(&value);
                    }
                    StorageOp::Remove { key } => out.push_str(&key),
                }
            }
        }
        what::FAILED => c.on_storage_failed(a),
        what::NEXT => {
            // With a budget (`b`): the page is going away; keepalive requests only.
            let t = match b.as_deref().and_then(text::parse_u64) {
                Some(max) => c.poll_keepalive(now, max as usize),
                None => c.poll_transmit(now, usize::MAX),
            };
            if let Some(t) = t {
                push_u64(&mut out, u64::from(t.id));
                out.push(SEP);
                out.push_str(&c.config.url(t.endpoint.path()));
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
            let sender = a == "1";
            if sender && !c.is_sender() {
                // Take over what the previous sender left, in flight or not.
                c.resync(pairs(b.as_deref().unwrap_or("")));
            }
            c.set_sender(sender);
        }
        what::STORAGE => c.on_storage_change(a, b.as_deref()),
        what::RESYNC => c.resync(pairs(a)),
        what::PENDING => push_u64(&mut out, c.pending() as u64),
        what::ANON => out.push_str(c.anonymous_id()),
        what::RESET => c.reset(a),
        what::REPORTS => {
            for r in c.take_reports() {
                out.push(SEP);
                out.push_str(r.kind.name());
                out.push(SUB);
                push_u64(&mut out, u64::from(r.status));
                out.push(SUB);
                push_u64(&mut out, r.count as u64);
                out.push(SUB);
                out.push_str(r.kind.message());
                out.push(SUB);
                out.push_str(&r.detail);
            }
        }
        what::TOTALS => {
            let (sent, failed) = c.totals();
            push_u64(&mut out, sent as u64);
            out.push(' ');
            push_u64(&mut out, failed as u64);
        }
        what::CLOSE => {
            if let Some(slot) = slots().clients.get_mut(h as usize) {
                *slot = None;
            }
        }
        what::INFO => {
            out.push_str(&c.config.storage_prefix());
            out.push(SEP);
            out.push_str(&c.config.revision);
        }
        _ => {}
    }
    out
}
