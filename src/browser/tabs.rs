//! Which tab sends, and the page events that steer the queue.
//!
//! All tabs of a shop share one queue through localStorage: every tab writes its
//! requests there, and exactly one tab (the sender) sends. The sender is the holder of
//! the Web Lock `klaviyo:<companyId>:sender`; the browser hands it to another tab when
//! the sender closes or crashes, and that tab first re-reads storage (`resync`), so
//! requests the old sender had in flight are sent again with the same `unique_id`.
//! Other tabs follow storage through `storage` events, so `pending()` agrees everywhere.
//! Without Web Locks, a lease in storage (see `core::lease`) picks the sender, renewed
//! every second. Without storage there is nothing to share: each tab sends its own.

use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::host::{self, now_ms};
use super::pump::{self, Shared};
use crate::core::lease;

/// Wires page events and the sender election to `state`.
pub fn connect(state: &Shared, tab_id: String) {
    let (prefix, shared) = {
        let s = state.borrow();
        (s.client.config.storage_prefix(), s.store.is_shared())
    };
    let weak = Rc::downgrade(state);
    let on_event = Closure::<dyn FnMut(String, Option<String>, Option<String>)>::new(
        move |kind: String, key: Option<String>, value: Option<String>| {
            if let Some(st) = weak.upgrade() {
                on_page_event(&st, &kind, key, value);
            }
        },
    )
    .into_js_value();
    let watched = host::watch(&prefix, &on_event);
    let online = watched.get(0).as_bool().unwrap_or(true);
    {
        let mut s = state.borrow_mut();
        s.client.set_online(online);
        if let Ok(stop) = watched.get(1).dyn_into::<Function>() {
            s.cleanups.push(stop);
        }
        s.client.set_sender(!shared);
        s.electing = shared;
    }
    if !shared {
        pump::log(
            state,
            &["klaviyo: no localStorage: this tab sends its own requests"],
        );
        return;
    }
    let weak = Rc::downgrade(state);
    let on_lead = Closure::<dyn FnMut(bool)>::new(move |sender: bool| {
        if let Some(st) = weak.upgrade() {
            became(&st, sender);
        }
    })
    .into_js_value();
    let release = host::lead(&(prefix.clone() + "sender"), &on_lead);
    if let Ok(release) = release.dyn_into::<Function>() {
        state.borrow_mut().cleanups.push(release);
        return;
    }
    // No Web Locks: a lease, checked now and on every heartbeat.
    let key = prefix + "lease";
    let weak = Rc::downgrade(state);
    let tick_key = key.clone();
    let tick_id = tab_id.clone();
    let tick = Closure::<dyn FnMut()>::new(move || {
        if let Some(st) = weak.upgrade() {
            lease_tick(&st, &tick_key, &tick_id);
        }
    })
    .into_js_value();
    lease_tick(state, &key, &tab_id);
    let stop = host::every(lease::HEARTBEAT_MS as u32, &tick);
    let mut s = state.borrow_mut();
    s.cleanups.push(stop);
}

fn lease_tick(state: &Shared, key: &str, tab_id: &str) {
    let (mine, changed) = {
        let s = state.borrow();
        let stored = s.store.get(key);
        let (mine, write) = lease::decide(stored.as_deref(), tab_id, now_ms());
        if let Some(v) = write {
            s.store.put(key, &v);
        }
        (mine, s.electing || mine != s.client.is_sender())
    };
    if changed {
        became(state, mine);
    }
}

/// This tab learned whether it is the sender.
fn became(state: &Shared, sender: bool) {
    let reports = {
        let mut s = state.borrow_mut();
        s.electing = false;
        if sender && !s.client.is_sender() {
            // Take over what the previous sender left, in flight or not.
            let records = s.store.scan(&s.client.config.queue_prefix());
            s.client.resync(records);
        }
        s.client.set_sender(sender);
        s.sync()
    };
    pump::log(
        state,
        &[
            "klaviyo: this tab ",
            if sender {
                "sends"
            } else {
                "queues; another tab sends"
            },
        ],
    );
    pump::deliver(state, reports);
    pump::start(state);
}

fn on_page_event(state: &Shared, kind: &str, key: Option<String>, value: Option<String>) {
    match kind {
        "online" | "offline" => {
            let online = kind == "online";
            state.borrow_mut().client.set_online(online);
            pump::log(state, &["klaviyo: ", kind]);
            if online {
                pump::start(state);
            }
        }
        "hide" => pump::flush_keepalive(state),
        _ => {
            // Another tab changed our keys; `None` key: storage was cleared.
            let (reports, due) = {
                let mut s = state.borrow_mut();
                match &key {
                    Some(k) => s.client.on_storage_change(k, value.as_deref()),
                    None => {
                        let records = s.store.scan(&s.client.config.queue_prefix());
                        s.client.resync(records);
                    }
                }
                let delay = s.client.config.flush_delay_ms;
                (
                    s.sync(),
                    s.client.poll_timeout().map(|t| t.max(now_ms() + delay)),
                )
            };
            pump::deliver(state, reports);
            if let Some(at) = due {
                pump::arm(state, at);
            }
        }
    }
}
