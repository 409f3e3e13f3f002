//! A deterministic, seeded simulation of the browser's durable queue.
//!
//! Several tabs, each its own [`Client`] driven the way js/runtime.js drives the wasm core
//! (the arms of `src/browser/exports.rs`'s `control_text` are copied into [`World`]'s
//! methods, since that module only builds for wasm32: keep `control_sender` and
//! `heard_write` in step with its SENDER and STORAGE arms; as `Client` methods both
//! could call, they cost the `.wasm` 8 B gzipped even inlined, past the inline page's
//! budget), share one simulated localStorage.
//! A write by one tab reaches the others as a `storage` event, in order, whenever that tab
//! runs its next task. A simulated clock, Web Locks (or the storage lease), and a
//! simulated Klaviyo that answers 202, 429 with Retry-After, 5xx, 400 (for a "poison"
//! call), or not at all (dropped before or after it processed the request).
//!
//! A tab may go into the back/forward cache (`pagehide` persisted, or frozen) and come
//! back: it hides, gives up the lock or lease, and runs nothing while there; as WebKit
//! does, it hears no `storage` event then, nor later (those queued before wait). With
//! `Knobs::late` (`SIM_LATE=1`, and the late sweep) as Chromium does: it hears them
//! once back, in order, each with storage as it was right after its write, and sees
//! at its return storage as it went, as it is, or in between (a race: `View`). Back,
//! it catches up as `away_(0)` does: a denial since it went (the erase's time, kept
//! under `denied`) is taken as carried out; granted, the `denied` key gone (it writes
//! `0` there going away) is a `clear()`; else storage is read anew once it sends again
//! or hides (`catchUp_`), and a visitor another tab stored meanwhile is read.
//! `Knobs::catch_up` false is the `away_(0)` before, which only stood for the lock
//! again (`SIM_AWAY=old`).
//!
//! A run is a script of [`Action`]s made from a seed. Every action carries its own
//! parameters (a tab is picked modulo the live tabs), so a script with actions removed
//! still runs: that is how a failing run is minimised ([`minimise`]).
//!
//! After the script, a quiet period: the network is healthy, every tab in the cache comes
//! back, every live pending tab grants, one granted tab at least is open, and the world
//! runs until nothing is left to do. Then the invariants of the README's "The queue:
//! nothing lost, nothing sent twice" are checked (see [`World::check_end`] and the
//! checks made as things happen).
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
//!   moment, never across a retry's or a lease's wait);
//! - a tab goes into the back/forward cache only once `watch_`'s listeners are there
//!   (before, the browser caches it without the tracker knowing: not modelled); its
//!   tasks, timers and online/offline events wait while it is there (assumed: were the
//!   latter lost, a tab gone offline and back online would stay offline); answers to
//!   its requests may come while it is away or after (WebKit runs them once it is back);
//! - the clock stands still between `Advance` actions: a denial, a grant and a going
//!   away in one millisecond, rare in a page, are common here (see
//!   [`World::denied_on_return`]).
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
/// js/runtime.js: `storage.dropPrefix` keeps the time of a denial's erase here.
const DENIED_KEY: &str = "klaviyo:AbC123:denied";
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

/// Seeds per sweep: `SIM_SEEDS=5000` for a longer run (the report's numbers). A seed
/// named below is the first of a sweep to show a fault; tabs going into the
/// back/forward cache (a slot of the script that made a 100 ms wait) changed the
/// scripts of most, and moved two (`SIM_AWAY=0` makes those before).
fn seeds() -> std::ops::Range<u64> {
    0..std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000)
}
const STEPS: usize = 300;

/// `SIM_AWAY=0`: no tab goes into the back/forward cache (each seed's script as before
/// it was modelled); `SIM_AWAY=old`: a tab back from it does not catch up (js/runtime.js
/// before it did). `SIM_LATE=1`: Chromium's late `storage` events (`Knobs::late`; the
/// scripts then draw what a page sees at its return, so the seeds' scripts change).
fn away(mut k: Knobs) -> Knobs {
    match std::env::var("SIM_AWAY").as_deref() {
        Ok("0") => k.away = false,
        Ok("old") => k.catch_up = false,
        _ => {}
    }
    k.late |= std::env::var("SIM_LATE").is_ok_and(|v| v == "1");
    k
}

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
/// only, with `SIM_AWAY=0`; its first now, 344, is of the next kind); and two tabs'
/// `identify` calls in one millisecond, one made after its tab heard the other's
/// identity (its own key) but before it read the other's record, so that neither
/// record is dated after the other (seed 1554 of 5,000, follower start). In 5,000 runs
/// of each sweep: 1 to 5 runs each (1 to 4 with `SIM_AWAY=0`), against 16 to 302 before.
const PROFILE_REVERTED: &str =
    "(p2) a visitor's profile at Klaviyo ends on an identify its latest superseded";
/// Found with tabs in the back/forward cache (known in every sweep: the README's
/// "a request the page had out when it went away"): a call out when its page went into
/// the cache, sent again after a page had its 202. Answered once the page is back and
/// another tab holds the lock (its core no longer the sender), a 202 does not shrink
/// the record (seed 325 of the follower start's delivery only); the first catch-up made
/// the core a non-sender at once, and then even with no other tab
/// (`a_202_heard_back_from_the_cache_sends_its_call_no_more`: now only once it sends
/// again, `became_`). Answered while away, past the keepalive mark's wait, it is
/// settled beside the sender that has sent the call again, whose copy then fails and
/// is retried (seed 629 there).
const RESENT_AFTER_A_202_OVER_A_STAY: &str =
    "(b) after the 202: it was out when its tab went into the back/forward cache";
/// The same, a record written again with it: by the page back (its copy still in
/// flight), once another tab had the 202 of the call (seed 1190 of 5,000 there).
const STALE_RECORD_OVER_A_STAY: &str =
    "(e) a record written after a page had the 202 of a call out when its tab went into the back/forward cache holds it again";
/// A tab back from the cache reads storage anew only once it sends (`resync`): a
/// `clear()` by another script heard before then (made after its return, or before it
/// went and heard late) says nothing was delivered, and the calls another tab
/// delivered while it was away go again (seeds 2972 of the lease, 2101 of the cache's,
/// of 5,000).
const RESENT_AFTER_A_CLEAR_BACK: &str =
    "(b) after the 202: a tab back from the back/forward cache sent it again, told of a clear() before it sent";
/// The first catch-up read the visitor stored as if another tab had written it: a tab
/// whose consent is pending (its visitor not stored yet) lost its own
/// (`a_pending_tab_back_from_the_cache_keeps_its_visitor`; seeds 547, 32 of the cache's).
/// Now read only if it changed while away (`idAway_`): a fault again.
const VISITOR_READ_BACK: &str =
    "(p3) a tab back from the back/forward cache took the visitor stored for its own, which no tab wrote meanwhile";
const FOUND_IN_AWAY: [&str; 3] = [
    RESENT_AFTER_A_202_OVER_A_STAY,
    STALE_RECORD_OVER_A_STAY,
    RESENT_AFTER_A_CLEAR_BACK,
];
const ALL_KNOWN: [&str; 4] = [LOST, RESENT_AFTER_202, STALE_RECORD, PROFILE_REVERTED];
/// What the start's few milliseconds allow (every sweep but the follower start's).
const START_WINDOW: [&str; 3] = [RESENT_AFTER_202, STALE_RECORD, PROFILE_REVERTED];

fn sweep_expecting(name: &str, k: impl Fn(u64) -> Knobs, known: &[&str]) {
    let (faults, stats, steps) = sweep(seeds(), |s| away(k(s)));
    print_sweep(name, &faults, &stats, steps);
    let unknown: Vec<&String> = faults
        .keys()
        .filter(|f| !known.contains(&f.as_str()) && !FOUND_IN_AWAY.contains(&f.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "{name}: new faults {unknown:?} (first seeds above)"
    );
}

/// Web Locks, every kind of event. Seeds 20 (lost: `own_clear_then_taking_over_loses_calls`),
/// 59, 22 (155 with `SIM_AWAY=0`).
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

/// Tabs go into the back/forward cache and come back often (one action in ten; one in
/// a hundred in the others), Web Locks, every kind of event: a tab back must act on
/// what it missed. With the old `away_(0)` (`SIM_AWAY=old`) 138 of its 1,000 runs fail,
/// 10 to 22 of each other sweep's.
#[test]
fn simulation_with_the_bfcache() {
    let k = |_| Knobs {
        often: true,
        ..knobs(STEPS, true)
    };
    sweep_expecting("web locks, back/forward cache", k, &ALL_KNOWN);
}

/// Chromium's late `storage` events (`Knobs::late`): a tab back from the back/forward
/// cache, or unfrozen, hears those of its stay, each with storage as it was right after
/// its write, and sees at its return storage as it went, as it is, or in between. Tabs
/// go and come back as often as in the cache's sweep; Web Locks on even seeds, the lease
/// on odd ones. It found a denial made by a page that still saw storage as it went
/// leaving a record stored meanwhile, sent later (seed 814 of 1,000), now never read:
/// `a_denial_made_with_a_stale_view_leaves_no_record_to_send`.
#[test]
fn simulation_with_late_events() {
    let k = |s: u64| Knobs {
        often: true,
        late: true,
        ..knobs(STEPS, s.is_multiple_of(2))
    };
    sweep_expecting("late storage events (Chromium)", k, &ALL_KNOWN);
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
/// shows no fault but a rare (p2) of two tabs' `identify` in one millisecond (and those
/// found with the back/forward cache), so the start's few milliseconds are the only
/// cause of (b) and (e) above (the README says why they are left).
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

/// The old js/runtime.js: a tab back from the cache only stands for the sender again.
fn no_catch_up(k: Knobs) -> Knobs {
    Knobs {
        catch_up: false,
        ..k
    }
}

/// Fixed by the catch-up (`away_(0)`): a tab back from the back/forward cache missed
/// another tab's delivery of the calls it held (WebKit tells a cached page no `storage`
/// event), and sent them again once it was the sender again.
#[test]
fn a_tab_back_from_the_cache_sends_no_call_another_tab_delivered() {
    let k = Knobs {
        consent: false,
        clear: false,
        ..knobs(0, true)
    };
    let script = [
        task(0), // watch
        task(0), // the lock: it sends
        A::Call {
            tab: 0,
            kind: 0,
            n: 1,
        }, // one event, sent at once
        A::Answer {
            req: 0,
            fate: Fate::ServerError(503),
        }, // held for a retry
        A::Open { consent: 1 }, // tab 2
        task(1), // tab 2: watch
        task(1), // tab 2: no lock: it waits its turn
        A::Away { tab: 0 }, // tab 1 into the cache: the lock goes to tab 2
        task(1), // tab 2: its start's sync
        task(1), // tab 2 sends: reads tab 1's record, sends it
        A::Answer {
            req: 0,
            fate: Fate::Ok,
        }, // 202: tab 2 removes the record
        A::Close { tab: 1 }, // the lock is free
        A::Back { tab: 0, seen: 0 }, // tab 1 gets it: it sends again
    ];
    let faults = replay(no_catch_up(k), &script);
    let again =
        "(b) after the 202: a tab back from the back/forward cache, where it was then, sent it again";
    assert_eq!(faults, [again], "the script no longer shows it");
    let faults = replay(k, &script);
    assert!(faults.is_empty(), "{faults:?}");
}

/// Fixed by the catch-up: a tab back from the cache that sends again never read the
/// record another tab stored meanwhile (that tab died before it sent): its calls wait
/// for as long as the first tab lives.
#[test]
fn a_tab_back_from_the_cache_reads_the_calls_stored_meanwhile() {
    let k = Knobs {
        consent: false,
        clear: false,
        ..knobs(0, true)
    };
    let script = [
        task(0),                // watch
        task(0),                // the lock: it sends
        A::Away { tab: 0 },     // into the cache: the lock is free
        A::Open { consent: 1 }, // tab 2 gets it (heard in its next task)
        A::Call {
            tab: 1,
            kind: 0,
            n: 2,
        }, // tab 2 stores two events
        A::Crash { tab: 1 },    // before it sends
        A::Back { tab: 0, seen: 0 }, // tab 1 sends again
    ];
    let faults = replay(no_catch_up(k), &script);
    assert!(faults.contains(&LOST.to_string()), "{faults:?}");
    let faults = replay(k, &script);
    assert!(faults.is_empty(), "{faults:?}");
}

/// Fixed by the catch-up: a tab in the cache missed another tab's denial (the marker
/// written and erased in one task): back, it kept the calls made before it, stored
/// and sent them once granted.
#[test]
fn a_tab_back_from_the_cache_drops_the_calls_made_before_a_denial() {
    let script = [
        task(0),                         // watch
        task(0),                         // the lock: it sends
        A::Consent { tab: 0, state: 0 }, // pending: its calls wait in memory
        A::Call {
            tab: 0,
            kind: 0,
            n: 2,
        },
        A::Away { tab: 0 },
        A::Open { consent: 2 }, // tab 2 loads denied: the erase, its time kept
        A::Back { tab: 0, seen: 0 },
        A::Consent { tab: 0, state: 1 }, // tab 1 grants
    ];
    let faults = replay(no_catch_up(knobs(0, true)), &script);
    let sent =
        "(d) a call made before a denial was sent after it, by a tab that had heard the denial";
    assert!(faults.contains(&sent.to_string()), "{faults:?}");
    let faults = replay(knobs(0, true), &script);
    assert!(faults.is_empty(), "{faults:?}");
}

/// Fixed by the catch-up: a tab in the cache missed another tab's `reset()`: back, it
/// went on with the visitor before it.
#[test]
fn a_tab_back_from_the_cache_follows_a_reset_made_meanwhile() {
    let script = [
        task(0), // watch (the pagehide listener)
        A::Away { tab: 0 },
        A::Open { consent: 1 },
        A::Call {
            tab: 1,
            kind: 143,
            n: 1,
        }, // tab 2: reset(), the new visitor stored
        A::Back { tab: 0, seen: 0 },
        A::Call {
            tab: 0,
            kind: 0,
            n: 1,
        }, // tab 1's event
    ];
    let faults = replay(no_catch_up(knobs(0, true)), &script);
    let old = "(p3) a tab's visitor is not the one the rules give";
    assert!(faults.contains(&old.to_string()), "{faults:?}");
    let faults = replay(knobs(0, true), &script);
    assert!(faults.is_empty(), "{faults:?}");
}

/// Found in the first catch-up (RESENT_AFTER_A_202_OVER_A_STAY): a request out when
/// the page went into the cache (a pagehide's keepalive one, say) is answered once it
/// is back (WebKit runs a cached page's tasks then). That `away_(0)` made the core a
/// non-sender at once, and a 202 to a non-sender does not shrink the record (`sweep`);
/// on becoming the sender again `resync` read the call back and sent it again. Now the
/// core stops being the sender only as it becomes it again (`became_`, `behind_`).
#[test]
fn a_202_heard_back_from_the_cache_sends_its_call_no_more() {
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
            A::Away { tab: 0 },
            A::Back { tab: 0, seen: 0 }, // still the sender's core, until its lock answer
            A::Answer {
                req: 0,
                fate: Fate::Ok,
            }, // the 202, heard now
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// Found in the first catch-up (VISITOR_READ_BACK): a tab whose consent is pending
/// keeps its visitor in memory (stored at the grant). Back from the cache, that
/// `away_(0)` read the stored one as if another tab had written it, though none did:
/// the tab's `identify` made while pending was gone from its later calls. Now the
/// visitor is read only if another tab stored one while it was away (`idAway_`).
#[test]
fn a_pending_tab_back_from_the_cache_keeps_its_visitor() {
    let faults = replay(
        Knobs {
            consent: false,
            clear: false,
            ..knobs(0, true)
        },
        &[
            A::Call {
                tab: 0,
                kind: 14,
                n: 1,
            }, // tab 1's identify: its visitor stored
            A::Open { consent: 0 }, // tab 2, pending, follows it
            task(1),                // tab 2: watch
            A::Call {
                tab: 1,
                kind: 14,
                n: 1,
            }, // tab 2's identify: its own visitor, not stored yet
            A::Away { tab: 1 },
            A::Back { tab: 0, seen: 0 },
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
}

/// Allowed (a window, counted apart): a script's `localStorage.clear()` while a tab is
/// in the cache takes the time a denial kept with the rest, and the tab back knows of
/// no denial. Here it stores and sends the calls made before it (as a tab may that
/// has not heard a denial yet).
#[test]
fn a_clear_while_a_tab_is_in_the_cache_hides_a_denial_from_it() {
    let (faults, stats) = replay_stats(
        knobs(0, true),
        &[
            task(0),                         // watch
            task(0),                         // the lock: it sends
            A::Consent { tab: 0, state: 0 }, // pending: its calls wait in memory
            A::Call {
                tab: 0,
                kind: 0,
                n: 2,
            },
            A::Away { tab: 0 },
            A::Open { consent: 2 }, // tab 2 loads denied: the erase, its time kept
            A::Clear { tab: 1 },    // a script of tab 2: the time is gone too
            A::Back { tab: 0, seen: 0 },
            A::Consent { tab: 0, state: 1 }, // tab 1 grants
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
    assert_eq!(stats.written_in_window, 2, "{stats:?}");
}

/// Allowed (counted apart): a tab that denied (or heard a denial), granted again and
/// went into the cache in one millisecond reads that denial's time as no earlier than
/// its going, and denies again when back (js/runtime.js compares with `>=`, so that
/// a denial of another tab in that millisecond is not missed).
#[test]
fn a_denial_of_the_millisecond_a_tab_went_is_taken_again_on_return() {
    let (faults, stats) = replay_stats(
        knobs(0, true),
        &[
            task(0),                         // watch
            A::Consent { tab: 0, state: 2 }, // denied: the erase, at this millisecond
            A::Consent { tab: 0, state: 1 }, // granted again
            A::Away { tab: 0 },
            A::Back { tab: 0, seen: 0 }, // denied again
        ],
    );
    assert!(faults.is_empty(), "{faults:?}");
    assert_eq!(stats.denied_again_on_return, 1, "{stats:?}");
}

/// Chromium, late events: a page back from the cache that still sees storage as it went
/// (its late events not yet heard) denies: `storage.dropPrefix` erases only the keys it
/// sees, not a record another tab stored while it was away. No tab erases it later:
/// that tab is gone (here), or was away too and takes the marker, heard late, for a
/// denial carried out (`consent(5)`: no erase; seed 814 of the late sweep). The next
/// sender sent a call made before the denial; now no tab reads a record dated before
/// the last denial (its time, kept in storage: `Queue::denied_at`): it is removed.
/// Not a fault with WebKit's delivery, nor if the page already sees the record.
#[test]
fn a_denial_made_with_a_stale_view_leaves_no_record_to_send() {
    let script = |seen| {
        [
            task(0),                // tab 1: watch
            A::Away { tab: 0 },     // tab 1 into the cache
            A::Open { consent: 1 }, // tab 2
            A::Call {
                tab: 1,
                kind: 0,
                n: 1,
            }, // tab 2's event, stored
            A::Crash { tab: 1 },    // tab 2 dies before it sends it
            A::Back { tab: 0, seen }, // tab 1 back
            A::Consent { tab: 0, state: 2 }, // tab 1 denies
            A::Advance { ms: 1_000 }, // (the next tab opens after it)
        ]
    };
    let late = Knobs {
        late: true,
        ..knobs(0, true)
    };
    assert!(replay(knobs(0, true), &script(0)).is_empty(), "WebKit");
    assert!(
        replay(late, &script(1)).is_empty(),
        "seeing storage as it is"
    );
    // "(d) a call made before a denial was sent after it, by a tab that had heard the
    // denial": tab 3, the sender the quiet period opens, sends tab 2's event.
    let faults = replay(late, &script(0));
    assert!(faults.is_empty(), "seeing storage as it went: {faults:?}");
}

/// Replays one seed with a trace and a minimised script: `SIM_SEED=12 SIM_LOCKS=1
/// SIM_FAULT='(a) ...' cargo test ... replay_one -- --nocapture --ignored` (`SIM_KNOBS`
/// of the letters `clxfo`: consent, clear, crashes, follower start, often away;
/// `SIM_AWAY` as for the sweeps).
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
        k.often = v.contains('o');
    }
    let k = away(k);
    let mut actions = script(seed, k);
    if let Ok(fault) = std::env::var("SIM_FAULT") {
        actions = minimise(k, &actions, &fault);
        eprintln!("minimal script ({} actions): {actions:#?}", actions.len());
    }
    let (f, s, trace) = run(k, &actions, true);
    eprintln!("{}", trace.unwrap());
    eprintln!("faults: {f:#?}\nstats: {s:#?}");
}
