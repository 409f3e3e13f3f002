//! A deterministic, seeded simulation of the browser's durable queue.
//!
//! Several tabs, each its own [`Client`] driven the way js/runtime.js drives the wasm core
//! (the arms of `src/browser/exports.rs`'s `control_text` are copied into [`World`]'s
//! methods, since that module only builds for wasm32: keep `became` and `other_tab` in
//! step with its SENDER and STORAGE arms; as `Client` methods both could call, they cost
//! the `.wasm` 8 B gzipped even inlined, past the inline page's budget), share one
//! simulated localStorage.
//! A write by one tab reaches the others as a `storage` event, in order, whenever that tab
//! runs its next task. A simulated clock, Web Locks (or the storage lease), and a
//! simulated Klaviyo that answers 202, 429 with Retry-After, 5xx, 400 (for a "poison"
//! call), or not at all (dropped before or after it processed the request).
//!
//! A run is a script of [`Action`]s made from a seed. Every action carries its own
//! parameters (a tab is picked modulo the live tabs), so a script with actions removed
//! still runs: that is how a failing run is minimised ([`minimise`]).
//!
//! After the script, a quiet period: the network is healthy, every live pending tab grants,
//! one granted tab at least is open, and the world runs until nothing is left to do. Then
//! the invariants of the README's "The queue: nothing lost, nothing sent twice" are
//! checked (see [`World::check_end`] and the checks made as things happen).
//!
//! The visitor too: the page calls `identify` (each call gives a value no other call
//! gives), `subscribe` and `reset()`, and a model of the README's identity rules
//! ([`Visitor`], one per tab: merges, a subscription's provisional name, a reset, a
//! denial, the visitor stored that every tab follows) says what each call must carry.
//! Checked: (p1) every profile request is the profile an `identify` made (nothing
//! invented, nothing of another visitor); (p3) every event carries the profile in force
//! at its call, every subscription the identifiers, and each tab holds the visitor the
//! rules give; (a) covers each visitor's latest `identify` (coalescing drops the older
//! ones: the latest carries what they said); (p2) the profile Klaviyo ends with.
//!
//! The files: `script.rs` (the seeded actions), `world.rs` (tabs, storage, locks, the
//! network), `adapter.rs` (js/runtime.js step by step), `checks.rs` (Klaviyo's side and
//! the invariants), `runs.rs` (runs, sweeps, minimising); the sweeps and the minimal
//! scripts of what they found are below.
//!
//! Where this differs from the browser:
//! - storage is sequentially consistent (Chromium's cross-process localStorage is not);
//! - each tab's tasks come from two FIFO sources (storage events; everything else: lock
//!   callbacks, the start's timeouts, online/offline), picked in any order;
//! - no loading window (`pre:` records), no edge worker (`/id`), one tracker per tab;
//! - a crashed tab's requests still reach Klaviyo (as keepalive ones do);
//! - no storage quota, `flushDelayMs` or `__kla_off`; jitter and ids are deterministic;
//! - no `_kx` and no onsite cookie: a visitor is what `identify`, `subscribe` and `reset()`
//!   made it; Klaviyo's profile is what its profile requests set (an event's profile, a
//!   snapshot of its call, is not applied to it);
//! - storage events are all heard before the clock moves (a late event is late within a
//!   moment, never across a retry's or a lease's wait).
#![cfg(not(target_arch = "wasm32"))]

use crate::core::client::{Client, Op};
use crate::core::config::Config;
use crate::core::consent::Consent;
use crate::core::lease;
use crate::core::queue::{Endpoint, Stored, Transmit, SEP, SUB};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

const NS: &str = "klaviyo:";
const PREFIX: &str = "klaviyo:AbC123:";
const Q_PREFIX: &str = "klaviyo:AbC123:q:";
const K_PREFIX: &str = "klaviyo:AbC123:k:";
const ID_KEY: &str = "klaviyo:AbC123:id";
const CONSENT_KEY: &str = "klaviyo:AbC123:consent";
const LEASE_KEY: &str = "klaviyo:AbC123:lease";
/// js/runtime.js: `KEEPALIVE`, the keepalive bytes allowed in flight.
const KEEPALIVE: usize = 60 * 1024;
/// js/runtime.js: `deadline(30000)` aborts a `/client` request.
const DEADLINE_MS: u64 = 30_000;
const T0: u64 = 1_795_669_339_000;

mod adapter;
mod checks;
mod runs;
mod script;
mod world;

use checks::*;
use runs::*;
use script::*;
use world::*;

// ------------------------------------------------------------------------ the tests

/// Seeds per sweep: `SIM_SEEDS=5000` for a longer run (the report's numbers).
fn seeds() -> std::ops::Range<u64> {
    0..std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000)
}
const STEPS: usize = 300;

/// The faults this simulation finds in the queue as it is, each with a minimal script
/// below (the first seed of a sweep that shows it is in the comment), left as they are
/// (README, "The queue", Tabs). A sweep fails on any other: the properties not listed
/// here hold ((c) ids and times never change, (d) nothing made before a denial is sent
/// or stored by a tab that knows of it, (f) no panic, (p1) and (p3) what profile each
/// request carries), and so does (a) without a page's own `clear()`.
const LOST: &str = "(a) required calls never reached Klaviyo";
/// `same_tab_resends_its_delivered_call_after_pending` (seed 59) and
/// `a_tab_still_electing_sends_on_hide` (seed 48, delivery only): sent again with its id.
const RESENT_AFTER_202: &str = "(b) after the 202: the same tab sent it again";
/// The same two, the lease's handover (seed 30, lease) and the README's own `clear()`
/// then close (seed 178): a record that still holds a call a page had the 202 of.
const STALE_RECORD: &str = "(e) a record written after a page had the 202 of a call holds it again";
// Found before the adapter read a `storage` event's value from storage (it took the
// event's copy), and not expected since (a sweep that shows them fails): a tab that
// denied and granted again before it heard an earlier write of another tab's record
// took the calls made before the denial back, and sent ("(d) a call made before a
// denial was sent after it ...") and stored them. Seed 893 of the lease
// (`a_late_record_write_brings_back_no_call_made_before_a_denial`).
/// An older profile request, superseded by a newer `identify` of the same visitor,
/// accepted after the newer one: Klaviyo's profile ends on the older values. Fixed in
/// the queue (profile requests go in order, one at a time; records are dated after
/// every record a page made or read; a record held open while consent is pending is
/// dated when written, and one a page let go goes before its calls of the same
/// millisecond): the two pinned scripts below fail on the code before, as did a few
/// hundred runs of each sweep. Left: a tab still electing that hides sends what it
/// holds beside the sender (the README's allowance, as for (b) and (e)), a profile
/// request among them, which may land after the sender's newer one (seed 555, delivery
/// only); and two tabs' `identify` calls in one millisecond, one made after its tab
/// heard the other's identity (its own key) but before it read the other's record, so
/// that neither record is dated after the other (seed 1554 of 5,000, follower start).
/// In 5,000 runs of each sweep: 1 to 4 runs each, against 16 to 302 before.
const PROFILE_REVERTED: &str =
    "(p2) a visitor's profile at Klaviyo ends on an identify its latest superseded";
const ALL_KNOWN: [&str; 4] = [LOST, RESENT_AFTER_202, STALE_RECORD, PROFILE_REVERTED];
/// What the start's few milliseconds allow (every sweep but the follower start's).
const START_WINDOW: [&str; 3] = [RESENT_AFTER_202, STALE_RECORD, PROFILE_REVERTED];

fn sweep_expecting(name: &str, k: impl Fn(u64) -> Knobs, known: &[&str]) {
    let (faults, stats, steps) = sweep(seeds(), k);
    print_sweep(name, &faults, &stats, steps);
    let unknown: Vec<&String> = faults
        .keys()
        .filter(|f| !known.contains(&f.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "{name}: new faults {unknown:?} (first seeds above)"
    );
}

/// Web Locks, every kind of event. Seeds 20 (lost: `own_clear_then_taking_over_loses_calls`),
/// 59, 155.
#[test]
fn simulation_with_web_locks() {
    sweep_expecting("web locks", |_| knobs(STEPS, true), &ALL_KNOWN);
}

/// The storage lease (no Web Locks), every kind of event. Seeds 20, 59, 30.
#[test]
fn simulation_with_the_lease() {
    sweep_expecting("lease", |_| knobs(STEPS, false), &ALL_KNOWN);
}

/// Without other scripts' `clear()`: nothing is lost (a) with Web Locks.
#[test]
fn simulation_with_web_locks_no_clear() {
    let k = |_| Knobs {
        clear: false,
        ..knobs(STEPS, true)
    };
    sweep_expecting("web locks, no clear", k, &START_WINDOW);
}

/// Web Locks, delivery alone: no consent change, no `clear()`; every tab a follower at
/// its start with `fix_start`.
fn delivery_only(fix_start: bool) -> Knobs {
    Knobs {
        fix_start,
        clear: false,
        consent: false,
        ..knobs(STEPS, true)
    }
}

/// Delivery alone (no consent change, no `clear()`): crashes, reloads, offline, 429,
/// 5xx, 400, dropped answers, several tabs. Seed 48 (23): a tab still electing sends.
#[test]
fn simulation_with_web_locks_delivery_only() {
    let k = |_| delivery_only(false);
    sweep_expecting("web locks, delivery only", k, &START_WINDOW);
}

/// Every tab starts as a follower (as after a handover or a grant): delivery alone then
/// shows no fault but a rare (p2) of two tabs' `identify` in one millisecond, so the
/// start's few milliseconds are the only cause of (b) and (e) above (the README says why
/// they are left).
#[test]
fn simulation_with_a_follower_start() {
    let k = |_| delivery_only(true);
    sweep_expecting(
        "web locks, follower start, delivery only",
        k,
        &[PROFILE_REVERTED],
    );
    let k = |_| Knobs {
        fix_start: true,
        ..knobs(STEPS, true)
    };
    sweep_expecting("web locks, follower start", k, &ALL_KNOWN);
}

/// Runs a hand-written script (tab 1 is open from the start) and returns its faults,
/// printing the trace with `--nocapture`.
fn replay(k: Knobs, actions: &[Action]) -> Vec<String> {
    replay_stats(k, actions).0
}

fn replay_stats(k: Knobs, actions: &[Action]) -> (Vec<String>, Stats) {
    let (faults, stats, trace) = run(k, actions, true);
    eprintln!("{}", trace.unwrap());
    (faults, stats)
}

use Action as A;

/// The next task of tab `tab` (a lock callback, a start timeout, online/offline).
fn task(tab: u8) -> Action {
    A::RunTask {
        tab,
        storage: false,
    }
}

/// Tab `tab` hears its next `storage` event.
fn heard(tab: u8) -> Action {
    A::RunTask { tab, storage: true }
}

/// (a) LOST: a tab that does not send yet, whose own page runs `localStorage.clear()`
/// (no `storage` event in that page), then becomes the sender: `Queue::resync` takes
/// its own records, missing from storage, for records another tab delivered and
/// forgets their calls. Two tabs, Web Locks, no consent change. Sweep: seed 20.
#[test]
#[ignore = "left as it is (README, Tabs): (a) a page's own clear() then taking over loses its calls"]
fn own_clear_then_taking_over_loses_calls() {
    let faults = replay(
        knobs(0, true),
        &[
            task(0),                // tab 1: its watch timeout
            task(0),                // tab 1: the lock: it sends
            A::Open { consent: 1 }, // tab 2
            task(1),                // tab 2: watch
            task(1),                // tab 2: no lock: it waits its turn
            A::Call {
                tab: 1,
                kind: 0,
                n: 2,
            }, // tab 2 stores two events
            A::Crash { tab: 0 },    // tab 1 dies before it hears them
            A::Clear { tab: 0 },    // tab 2's own page: clear()
            task(0),                // tab 2 gets the lock: resync
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// (b)/(e) A tab whose election has not answered yet acts as the sender: `Queue::new`
/// starts with `sender: true`, the adapter only calls SENDER in `became_`, and `hide_`
/// does not wait for `electing_`. Hidden (or closed) in that window, the new tab sends
/// the other tab's stored calls with keepalive and marks them; the real sender holds
/// them 10 s, then sends them again. The new tab, told meanwhile that it does not send,
/// gets its 202s but does not shrink the records (`sweep`: `dirty |= self.sender`).
/// Same ids and times: Klaviyo keeps one. Sweep: seed 23 (delivery only).
#[test]
#[ignore = "left as it is (README, Tabs): (b) a tab still electing sends another tab's calls on hide"]
fn a_tab_still_electing_sends_on_hide() {
    let k = Knobs {
        consent: false,
        clear: false,
        ..knobs(0, true)
    };
    let faults = replay(
        k,
        &[
            A::Call {
                tab: 0,
                kind: 12,
                n: 3,
            }, // tab 1: three subscriptions, stored
            A::Open { consent: 1 }, // tab 2, which loads them (sender: true)
            task(1),                // tab 2: watch (before its lock answer)
            A::Hide { tab: 1 },     // tab 2 hidden: sends tab 1's calls
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// (b) One tab, granted then pending while its request is out, then granted again: the
/// 202 came while it was no longer the sender, so the record was not shrunk (`sweep`
/// marks records dirty only for the sender, and nothing is written while pending); on
/// becoming the sender again `resync` → `insert_record` reads the call back from the
/// stale record and sends it a second time. Same id and time (Klaviyo keeps one); the
/// README's note on granted → pending speaks of another tab, here there is none.
/// Sweep: seed 59.
#[test]
#[ignore = "left as it is (README, Tabs): (b) a tab resends its own delivered call after pending"]
fn same_tab_resends_its_delivered_call_after_pending() {
    let faults = replay(
        knobs(0, true),
        &[
            task(0), // watch
            task(0), // the lock: it sends
            A::Call {
                tab: 0,
                kind: 0,
                n: 1,
            }, // one event, sent at once
            A::Consent { tab: 0, state: 0 }, // pending while it is out
            A::Answer {
                req: 0,
                fate: Fate::Ok,
            }, // 202
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// The lease without Web Locks: a holder whose beats are late by more than the 3 s
/// TTL (a background tab's throttled timers) loses it while its request is out; the
/// next holder sends the same calls, and a record that still holds delivered calls is
/// written again. Same ids (Klaviyo keeps one). Sweep: seed 30 (lease). lease.rs
/// allows this "for one heartbeat after a race"; throttled timers make it longer. This
/// test pins the behaviour: no fault, but both requests reach Klaviyo.
#[test]
fn a_late_lease_holder_and_its_successor_both_send() {
    let (faults, stats) = replay_stats(
        knobs(0, false),
        &[
            task(0), // watch
            task(0), // first beat: tab 1 holds the lease
            A::Open { consent: 1 },
            task(1), // tab 2: watch
            task(1), // tab 2: first beat, not the holder
            A::Call {
                tab: 0,
                kind: 0,
                n: 2,
            }, // tab 1 sends them
            A::Advance { ms: 3_500 }, // tab 1's beats are late
            A::FireTimer { tab: 1 }, // tab 2 takes the lease, sends again
            A::Answer {
                req: 0,
                fate: Fate::Ok,
            },
            A::Answer {
                req: 0,
                fate: Fate::Ok,
            },
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
    let both = "another tab sent it while the first request was out (handover)";
    assert_eq!(stats.dup_accepted.get(both), Some(&2), "{stats:?}");
}

/// Fixed: a storage event heard after the sender already read the same record by a
/// scan (`became_` → SENDER → `resync`) and delivered it. The adapter handed the core
/// the event's `newValue` (a stale copy), the record was forgotten once empty
/// (`forget_records`), and its own removal makes no event in its own tab, so
/// `insert_record` took the delivered calls back and they went again. The adapter now
/// reads what is stored when it hears the event (the consent marker aside).
#[test]
fn a_stale_storage_event_brings_no_delivered_call_back() {
    let faults = replay(
        // The follower start makes tab 1 take over through `resync`, as a tab does in
        // js/runtime.js whenever its core was not the sender (a lock handed over after
        // the sender closed, or a grant after pending or denied).
        Knobs {
            consent: false,
            clear: false,
            fix_start: true,
            ..knobs(0, true)
        },
        &[
            A::Open { consent: 1 }, // tab 2
            task(0),                // tab 1: watch
            A::Call {
                tab: 1,
                kind: 0,
                n: 2,
            }, // tab 2 stores two events
            task(0),                // tab 1: the lock: scans, sends
            A::Answer {
                req: 0,
                fate: Fate::Ok,
            }, // 202: tab 1 removes the record
            heard(0),               // tab 1 hears the record's write now
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// Fixed with the same change: a tab that denied and granted again before it heard an
/// earlier write of another tab's record took the calls made before its denial back
/// from the event's copy, then sent and stored them. Sweep: seed 893 (the lease).
#[test]
fn a_late_record_write_brings_back_no_call_made_before_a_denial() {
    let faults = replay(
        knobs(0, false),
        &[
            A::Open { consent: 1 },
            A::Open { consent: 1 },
            A::Crash { tab: 175 },
            A::Call {
                tab: 76,
                kind: 133,
                n: 2,
            },
            A::Consent { tab: 151, state: 2 },
            A::Consent { tab: 211, state: 1 },
            A::Clear { tab: 252 },
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// (p2), one tab, nothing else. A profile request is in flight when the page calls
/// `identify` again: `Queue::drop_superseded` passes over an item in flight, so the
/// newer profile request is queued beside it. The older one's answer is lost (Klaviyo
/// processed it; a 5xx, a 429 or the 30 s abort do the same). Before, it went back in
/// the queue with a backoff, the newer one was due at once and accepted, then the
/// older one was retried and accepted last: Klaviyo's profile ended on the first
/// call's values. Now the newer waits for it (in order, one at a time).
#[test]
fn a_retried_profile_request_lands_after_its_successor() {
    let faults = replay(
        knobs(0, true),
        &[
            task(0), // watch
            task(0), // the lock: it sends
            A::Call {
                tab: 0,
                kind: 14,
                n: 1,
            }, // identify: sent at once
            A::Call {
                tab: 0,
                kind: 14,
                n: 1,
            }, // identify again while the first is out
            A::Answer {
                req: 0,
                fate: Fate::DropAfter,
            }, // Klaviyo has the first; the page sees a network error
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// (p2). A tab that does not send calls `identify` in two tasks in the same
/// millisecond: the second one's `drop_superseded` forgets only this tab's copy of the
/// first (storage is the sender's to rewrite), so the first's record stays. The sender
/// closes before it heard either; this tab takes over, and `resync` reads the first's
/// record back. Before, it went after the calls held with the same creation time, and
/// the superseded profile request was accepted last; now records are dated a
/// millisecond apart at least, and one a page let go goes before its calls of the same
/// millisecond.
#[test]
fn a_superseded_profile_comes_back_when_its_tab_takes_over() {
    let faults = replay(
        Knobs {
            consent: false,
            clear: false,
            ..knobs(0, true)
        },
        &[
            A::Open { consent: 1 }, // tab 2
            task(0),                // tab 1: watch
            task(0),                // tab 1: the lock: it sends
            task(1),                // tab 2: watch
            task(1),                // tab 2: no lock: it waits its turn
            A::Call {
                tab: 1,
                kind: 14,
                n: 1,
            }, // tab 2: identify, stored
            A::Call {
                tab: 1,
                kind: 14,
                n: 1,
            }, // tab 2: identify again, next task, same millisecond
            A::Close { tab: 0 },    // tab 1 closes before it heard them; tab 2 sends
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// Replays one seed with a trace and a minimised script: `SIM_SEED=12 SIM_LOCKS=1
/// SIM_FAULT='(a) ...' cargo test ... replay_one -- --nocapture --ignored`.
#[test]
#[ignore]
fn replay_one() {
    let seed: u64 = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let locks = std::env::var("SIM_LOCKS").map_or(true, |v| v == "1");
    let mut k = knobs(STEPS, locks);
    if let Ok(v) = std::env::var("SIM_KNOBS") {
        k.consent = v.contains('c');
        k.clear = v.contains('l');
        k.crashes = v.contains('x');
        k.fix_start = v.contains('f');
    }
    let mut actions = script(seed, k);
    if let Ok(fault) = std::env::var("SIM_FAULT") {
        actions = minimise(k, &actions, &fault);
        eprintln!("minimal script ({} actions): {actions:#?}", actions.len());
    }
    let (f, s, trace) = run(k, &actions, true);
    eprintln!("{}", trace.unwrap());
    eprintln!("faults: {f:#?}\nstats: {s:#?}");
}
