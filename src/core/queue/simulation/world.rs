//! The simulated world: tabs (each a real `Client`), one localStorage, Web Locks or the
//! lease, the network, and the record of what the page called and Klaviyo accepted.

use super::*;

// ------------------------------------------------------------------------ the world

pub(super) type TabId = u32;

/// Tasks a tab runs later, other than storage events (their own queue).
#[derive(Clone, Debug)]
pub(super) enum Task {
    /// `watch_`'s `setTimeout`: the online/offline and pagehide listeners.
    Watch,
    /// `replayWindow`'s `setTimeout(syncAndSend)`.
    InitialSync,
    /// The answer of `locks.request(name, { ifAvailable: true }, ...)` for ballot `b`.
    LockAnswer {
        ballot: u32,
        got: bool,
    },
    /// The waiting `locks.request(name, { signal }, hold)` is granted.
    LockGranted {
        ballot: u32,
    },
    /// The lease's first beat (`setTimeout(beat)`).
    FirstBeat {
        ballot: u32,
    },
    Online(bool),
}

/// A `storage` event: the key (`None`: `clear()`) and the value written then.
#[derive(Clone, Debug)]
pub(super) struct StorageEvent {
    pub(super) key: Option<String>,
    pub(super) new: Option<String>,
    /// Late (Chromium): written while its tab was away, or since while its view is
    /// stale; heard, it brings that write into the tab's view first.
    pub(super) late: bool,
}

/// Chromium: storage as a tab back from the cache (or unfrozen) sees it while the events
/// of its stay are still to come: the page's copy of localStorage is brought up to date
/// write by write, each just before its event. The model keeps storage sequentially
/// consistent and reads it at each event (the page running, its copy is current within
/// a task); only here does a page see storage as of a past write, so only here is a
/// copy kept (taken as it goes, ended once its last late event is heard).
#[derive(Clone, Debug)]
pub(super) struct View {
    pub(super) storage: BTreeMap<String, String>,
    /// Keys it wrote itself since: an older write of another tab's, heard late, does
    /// not change them in its copy (Chromium keeps a page's own pending writes over
    /// those it is told of until the store has them: they come after).
    pub(super) own: BTreeSet<String>,
    /// The step it went away (for `World::heard`: the stay ends once it is current).
    pub(super) went: usize,
}

impl View {
    /// Another tab's write, as the page's copy takes it.
    pub(super) fn take(&mut self, key: Option<&str>, new: Option<&str>) {
        match (key, new) {
            (None, _) => {
                let own = &self.own;
                self.storage.retain(|k, _| own.contains(k));
            }
            (Some(k), _) if self.own.contains(k) => {}
            (Some(k), Some(v)) => {
                self.storage.insert(k.to_string(), v.to_string());
            }
            (Some(k), None) => {
                self.storage.remove(k);
            }
        }
    }
}

pub(super) struct Tab {
    pub(super) id: TabId,
    pub(super) c: Client,
    /// The adapter's `state` (`None` before the constructor's `consent()`).
    pub(super) state: Option<Consent>,
    /// `sender_`, `electing_`, `busy_`, `kaBytes_`, `timerAt_`, `reread_`.
    pub(super) sender: bool,
    pub(super) electing: bool,
    pub(super) busy: bool,
    pub(super) ka_bytes: usize,
    pub(super) timer_at: Option<u64>,
    pub(super) reread: bool,
    /// The current ballot (`ballot_`): a lock callback of another one is aborted.
    pub(super) ballot: u32,
    /// The lease mode's `me` and next interval beat, while electing by lease.
    pub(super) lease: Option<(String, u64)>,
    /// Listeners of `watch_`'s timeout are registered.
    pub(super) watching: bool,
    pub(super) storage_events: VecDeque<StorageEvent>,
    pub(super) tasks: VecDeque<Task>,
    /// The step at which it opened.
    pub(super) opened_at: usize,
    /// The step at which this tab's core last became denied.
    pub(super) denied_at: Option<usize>,
    /// The visitor this tab's core should hold, by the rules (`checks.rs`'s model).
    pub(super) who: Visitor,
    /// In the back/forward cache since (the step, and `awayAt_`).
    pub(super) away: Option<(usize, u64)>,
    /// While away: events it never heard, and whether one was of the visitor (`id`).
    pub(super) missed: usize,
    pub(super) missed_id: bool,
    /// `idAway_`: the visitor stored as it went; `behind_`: back, storage to read anew
    /// once it sends again.
    pub(super) id_away: Option<String>,
    pub(super) behind: bool,
    /// `backAt_`: when it last came back.
    pub(super) back_at: Option<u64>,
    /// With late events: storage as this page sees it, while its late events are still
    /// to come (`None`: as it is).
    pub(super) view: Option<View>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Event,
    Subscription,
    Identify,
}

/// A call made by the page, and what the rules say must happen to it.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) tab: TabId,
    pub(super) step: usize,
    pub(super) time_s: i64,
    pub(super) kind: Kind,
    /// Klaviyo refuses it (400).
    pub(super) poison: bool,
    /// Made while the tab was denied: dropped, must never be sent.
    pub(super) dropped: bool,
    /// Must reach Klaviyo by the end (granted at the call, or pending then granted).
    pub(super) required: bool,
    /// Made while pending in this tab: required once it grants.
    pub(super) pending_in: Option<TabId>,
    /// No longer required from this step: a denial after it, its tab becoming denied,
    /// an erase or a `clear()` took it.
    pub(super) excused_at: Option<usize>,
    /// The first denial a page made after it: from then it must never be sent or stored.
    pub(super) before_denial: Option<usize>,
    /// A tab that had not heard that denial stored it (the README's 0-4 ms window).
    pub(super) window_written: bool,
    /// The order calls were made in (uids sort as text).
    pub(super) seq: u64,
    /// The visitor (`anonymous_id`) of its tab at the call, by the model.
    pub(super) anon: String,
    /// The profile it must carry, by the model: an event's profile attributes, an
    /// `identify`'s whole body (the profile after it), a subscription's identifiers.
    /// `None` for a call made while denied (dropped).
    pub(super) expect: Option<Json>,
    /// An `identify`: those its profile request supersedes (see [`Visitor::knows`]).
    pub(super) knows: BTreeSet<u64>,
}

/// A request out on the network.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) id: u32,
    pub(super) tab: TabId,
    pub(super) tx: u32,
    pub(super) body: String,
    pub(super) endpoint: Endpoint,
    pub(super) bytes: usize,
    pub(super) keepalive: bool,
    pub(super) hiding: bool,
    pub(super) deadline: u64,
    /// Sent while offline: the fetch fails, Klaviyo never sees it.
    pub(super) doomed: bool,
    /// The page no longer waits for it (aborted at 30 s, or its tab is gone).
    pub(super) client_done: bool,
}

/// One send, as Klaviyo's log of what reached (or was meant to reach) it.
#[derive(Debug)]
pub(super) struct Send {
    pub(super) step: usize,
    pub(super) tab: TabId,
    /// The core's `is_sender()` when it was polled.
    pub(super) core_sender: bool,
    pub(super) uids: Vec<String>,
}

#[derive(Default, Debug)]
pub(super) struct Stats {
    pub(super) calls: usize,
    pub(super) required: usize,
    pub(super) sends: usize,
    pub(super) accepted: usize,
    /// Unique ids sent more than once / accepted (202) more than once, by reason.
    pub(super) resent: BTreeMap<&'static str, usize>,
    pub(super) dup_accepted: BTreeMap<&'static str, usize>,
    pub(super) gave_up: usize,
    pub(super) rejected: usize,
    /// Required calls lost because another tab's denial erased them before their own tab
    /// heard of it (made after the denial, in the window the README allows).
    pub(super) lost_in_window: usize,
    /// Stored calls no live tab held when another script cleared localStorage.
    pub(super) lost_to_clear: usize,
    /// Calls made before a denial, sent by a tab that had not heard it yet.
    pub(super) sent_in_window: usize,
    /// Calls made before a denial, written by a tab that had not heard it yet.
    pub(super) written_in_window: usize,
    /// Profile requests sent, and accepted (202).
    pub(super) profile_sends: usize,
    pub(super) profiles_accepted: usize,
    /// Visitors whose latest `identify` had to reach Klaviyo (and did: else (a)).
    pub(super) visitors_checked: usize,
    /// Attributes a visitor's latest `identify` set that its profile at Klaviyo ends
    /// on another value for: through a request the latest superseded (a fault), or
    /// one of a concurrent `identify` it did not know of (allowed: last write wins).
    pub(super) profiles_reverted: usize,
    pub(super) profiles_overwritten: usize,
    /// Tabs back from the back/forward cache that denied again on a denial they had
    /// heard (see [`World::denied_on_return`]).
    pub(super) denied_again_on_return: usize,
    /// Stays in the back/forward cache, and those in which other tabs wrote.
    pub(super) stays: usize,
    pub(super) stays_missing_writes: usize,
}

pub(super) struct World {
    pub(super) k: Knobs,
    pub(super) now: u64,
    pub(super) step: usize,
    pub(super) storage: BTreeMap<String, String>,
    pub(super) tabs: Vec<Tab>,
    pub(super) next_tab: TabId,
    pub(super) next_id: u64,
    pub(super) online: bool,
    /// Web Locks: the holder (tab, ballot) and the waiting requests, in order.
    pub(super) lock: Option<(TabId, u32)>,
    pub(super) waiters: VecDeque<(TabId, u32)>,
    pub(super) net: Vec<Request>,
    pub(super) next_req: u32,
    pub(super) calls: BTreeMap<String, Call>,
    pub(super) sends: Vec<Send>,
    /// Klaviyo: steps at which each unique id (or list id) was accepted (202), and the
    /// ids it answered 400 for.
    pub(super) accepted: BTreeMap<String, Vec<(usize, u32)>>,
    pub(super) refused: BTreeSet<String>,
    /// Unique ids whose 202 a live page received (the step).
    pub(super) answered_202: BTreeMap<String, usize>,
    /// Unique ids of requests out when their tab went into the back/forward cache.
    pub(super) out_over_a_stay: BTreeSet<String>,
    /// Klaviyo: the profile requests it accepted, per `anonymous_id`, in order: the
    /// `identify` each was made by (its uid) and the step.
    pub(super) profile_log: BTreeMap<String, Vec<(String, usize)>>,
    /// The latest `identify` of each visitor (not one made while denied, which was
    /// dropped): coalescing drops an older one still queued.
    pub(super) latest_identify: BTreeMap<String, String>,
    /// Each `identify`'s profile (as JSON text, keys sorted): its uid.
    pub(super) profile_made: BTreeMap<String, String>,
    /// The `identify` calls each visitor written under `id` was made from (the
    /// writer's [`Visitor::knows`]), for the tabs that follow it.
    pub(super) id_knows: BTreeMap<String, BTreeSet<u64>>,
    /// Record ids ever written: a new one per task at most.
    pub(super) records_seen: BTreeSet<String>,
    /// Record ids first written in the current sync.
    pub(super) new_records: usize,
    pub(super) faults: Vec<String>,
    /// The step of the last denial a page made.
    pub(super) last_denial: Option<usize>,
    /// Each stay in the back/forward cache: the tab, the steps it went and came back.
    pub(super) stays: Vec<(TabId, usize, usize)>,
    /// The calls delivered while a tab was in the cache, gone from storage when it came
    /// back (see [`World::delivered_in_stay`]): the step it came back.
    pub(super) missed_deliveries: BTreeMap<(TabId, String), usize>,
    /// The steps at which another script cleared localStorage, and at which each tab
    /// heard such a `clear()`.
    pub(super) clears: Vec<usize>,
    pub(super) clears_heard: Vec<(TabId, usize)>,
    pub(super) stats: Stats,
    pub(super) trace: Option<String>,
}

pub(super) fn config(consent: Consent) -> Config {
    Config::from_json(&format!(
        r#"{{"companyId":"AbC123","consent":{}}}"#,
        consent as u8
    ))
    .unwrap()
}

impl World {
    pub(super) fn new(k: Knobs, trace: bool) -> World {
        World {
            k,
            now: T0,
            step: 0,
            storage: BTreeMap::new(),
            tabs: Vec::new(),
            next_tab: 1,
            next_id: 0,
            online: true,
            lock: None,
            waiters: VecDeque::new(),
            net: Vec::new(),
            next_req: 1,
            calls: BTreeMap::new(),
            sends: Vec::new(),
            accepted: BTreeMap::new(),
            refused: BTreeSet::new(),
            answered_202: BTreeMap::new(),
            out_over_a_stay: BTreeSet::new(),
            profile_log: BTreeMap::new(),
            id_knows: BTreeMap::new(),
            latest_identify: BTreeMap::new(),
            profile_made: BTreeMap::new(),
            records_seen: BTreeSet::new(),
            new_records: 0,
            faults: Vec::new(),
            last_denial: None,
            stays: Vec::new(),
            clears: Vec::new(),
            clears_heard: Vec::new(),
            missed_deliveries: BTreeMap::new(),
            stats: Stats::default(),
            trace: trace.then(String::new),
        }
    }

    pub(super) fn log(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            let line = f();
            let _ = writeln!(t, "[{:>4} +{:>7}ms] {line}", self.step, self.now - T0);
        }
    }

    pub(super) fn fault(&mut self, what: String) {
        self.log(|| format!("FAULT {what}"));
        if !self.faults.contains(&what) {
            self.faults.push(what);
        }
    }

    /// `uuid()`: deterministic here.
    pub(super) fn uuid(&mut self) -> String {
        self.next_id += 1;
        format!("id-{}", self.next_id)
    }

    pub(super) fn idx(&self, id: TabId) -> Option<usize> {
        self.tabs.iter().position(|t| t.id == id)
    }

    pub(super) fn pick(&self, p: u8) -> Option<usize> {
        (!self.tabs.is_empty()).then(|| p as usize % self.tabs.len())
    }

    // --------------------------------------------------------------- localStorage

    /// `storage.scan(prefix)`: `key SUB value SEP ...`.
    pub(super) fn scan(&self, prefix: &str) -> String {
        scan_of(&self.storage, prefix)
    }

    /// Storage as tab `t` sees it (see [`View`]).
    pub(super) fn seen(&self, t: usize) -> &BTreeMap<String, String> {
        self.tabs[t]
            .view
            .as_ref()
            .map_or(&self.storage, |v| &v.storage)
    }

    /// A tab's own write, in its own copy at once.
    pub(super) fn own_write(&mut self, from: TabId, key: &str, value: Option<&str>) {
        let Some(v) = self.idx(from).and_then(|t| self.tabs[t].view.as_mut()) else {
            return;
        };
        v.own.insert(key.to_string());
        match value {
            Some(value) => v.storage.insert(key.to_string(), value.to_string()),
            None => v.storage.remove(key),
        };
    }

    /// Tells every other tab of a write, as the browser's `storage` event does. A tab
    /// in the back/forward cache hears none, now or later (WebKit); with late events
    /// (Chromium), it hears them once back, as one whose copy is stale does.
    pub(super) fn tell(&mut self, from: TabId, key: Option<&str>, new: Option<&str>) {
        for t in &mut self.tabs {
            if t.id == from {
                continue;
            }
            if t.away.is_some() {
                t.missed += 1;
                t.missed_id |= key == Some(ID_KEY) && t.view.is_none();
            }
            if t.away.is_none() || t.view.is_some() {
                t.storage_events.push_back(StorageEvent {
                    key: key.map(str::to_string),
                    new: new.map(str::to_string),
                    late: t.view.is_some(),
                });
            }
        }
    }

    /// `storage.set`: no event when the value is unchanged (HTML's `setItem`).
    pub(super) fn storage_set(&mut self, from: TabId, key: &str, value: &str) -> bool {
        if key.starts_with(Q_PREFIX) {
            self.check_record_write(from, key, value);
        }
        if key == ID_KEY {
            if let Some(t) = self.idx(from) {
                let knows = self.tabs[t].who.knows.clone();
                self.id_knows.insert(value.to_string(), knows);
            }
        }
        self.own_write(from, key, Some(value));
        if self.storage.get(key).map(String::as_str) == Some(value) {
            return true;
        }
        self.storage.insert(key.to_string(), value.to_string());
        self.tell(from, Some(key), Some(value));
        true
    }

    pub(super) fn storage_del(&mut self, from: TabId, key: &str) {
        // `storage.del` removes only a key its page sees.
        if self
            .idx(from)
            .is_some_and(|t| !self.seen(t).contains_key(key))
        {
            return;
        }
        self.own_write(from, key, None);
        if self.storage.remove(key).is_some() {
            self.tell(from, Some(key), None);
        }
    }

    // --------------------------------------------------------------- the adapter

    /// `new Runtime(...)`: open the core on what storage holds, then `consent()`, the
    /// start's timeouts, and the election.
    pub(super) fn open(&mut self, consent: Consent) {
        let id = self.next_tab;
        self.next_tab += 1;
        let fresh = self.uuid();
        let stored = self.scan(NS);
        let identity = self.storage.get(ID_KEY).cloned();
        let mut c = Client::new(config(consent), identity.as_deref(), "", &fresh);
        let who = identity
            .as_deref()
            .and_then(|v| Visitor::restore(v, self.id_knows.get(v)))
            .unwrap_or_else(|| Visitor::new(&fresh));
        c.read_cookies("");
        c.load_stored(Stored(&stored));
        if self.k.fix_start {
            // An adapter fix tried here (not js/runtime.js): the core starts as a
            // follower until the election says otherwise.
            c.set_sender(false);
        }
        self.tabs.push(Tab {
            id,
            c,
            state: None,
            sender: false,
            electing: false,
            busy: false,
            ka_bytes: 0,
            timer_at: None,
            reread: false,
            ballot: 0,
            lease: None,
            watching: false,
            storage_events: VecDeque::new(),
            tasks: VecDeque::from([Task::Watch]),
            denied_at: None,
            opened_at: self.step,
            who,
            away: None,
            missed: 0,
            missed_id: false,
            id_away: None,
            behind: false,
            back_at: None,
            view: None,
        });
        self.log(|| format!("tab {id} opens ({consent:?})"));
        let t = self.tabs.len() - 1;
        self.consent(t, None);
        // Created denied, the page erases at once (js/index.js `#deny` in `create`: the
        // denial's time, its marker, the erase), not in a later task.
        if consent == Consent::Denied {
            self.sync(t);
        }
        self.tabs[t].tasks.push_back(Task::InitialSync);
    }

    /// `consent(set)`: set (or only ask) the core's consent; on a change, withdraw from
    /// the election, elect again if granted, and write at once.
    pub(super) fn consent(&mut self, t: usize, set: Option<Consent>) {
        let fresh = self.uuid();
        let tab = &mut self.tabs[t];
        let was = tab.state;
        if let Some(s) = set {
            tab.c.set_consent(s, &fresh);
        }
        let now_state = tab.c.consent();
        tab.state = Some(now_state);
        if Some(now_state) == was {
            return;
        }
        // The model: a denial forgets the visitor; a grant or pending after one starts
        // a new one (`fresh`).
        if now_state == Consent::Denied {
            tab.who = Visitor::new("");
        } else if was == Some(Consent::Denied) {
            tab.who = Visitor::new(&fresh);
        }
        let id = tab.id;
        self.log(|| format!("tab {id} consent {was:?} -> {now_state:?}"));
        self.on_consent_change(t, was, now_state);
        self.stand(t, false);
        if was.is_some() || now_state == Consent::Denied {
            self.sync_and_send(t);
        }
    }

    /// The rules' bookkeeping of a change of consent (not the adapter's).
    pub(super) fn on_consent_change(&mut self, t: usize, was: Option<Consent>, now: Consent) {
        let id = self.tabs[t].id;
        let step = self.step;
        if now == Consent::Denied {
            self.tabs[t].denied_at = Some(step);
            for c in self.calls.values_mut() {
                // This tab drops everything it held; its pending calls are gone.
                if c.tab == id || c.pending_in == Some(id) {
                    c.excused_at.get_or_insert(step);
                    c.pending_in = None;
                }
            }
        }
        if was == Some(Consent::Pending) && now == Consent::Granted {
            for c in self.calls.values_mut() {
                if c.pending_in == Some(id) {
                    c.pending_in = None;
                    c.required = c.excused_at.is_none();
                }
            }
        }
    }

    /// A tab erases storage for a denial (its own or another tab's): the calls stored
    /// then are forgotten, including those another tab made before it heard the denial
    /// (the README's 0-4 ms window): counted apart.
    pub(super) fn erased_by_denial(&mut self) {
        let step = self.step;
        let last_denial = self.last_denial;
        let mut window = 0;
        for uid in self.stored_uids() {
            if let Some(c) = self.calls.get_mut(&uid) {
                if c.excused_at.is_none() {
                    c.excused_at = Some(step);
                    window += usize::from(c.required && last_denial.is_some_and(|d| d < c.step));
                }
            }
        }
        self.stats.lost_in_window += window;
    }

    /// Another script's `localStorage.clear()`: a stored call that no live tab holds is
    /// gone with it (nothing can bring it back); those a live tab holds must still go.
    /// Held: its own tab is alive, or a granted tab sends (the sender holds every stored
    /// call, or hears it in a storage event still to come).
    pub(super) fn cleared_by_a_script(&mut self) {
        self.clears.push(self.step);
        let sender = self
            .tabs
            .iter()
            .any(|t| t.c.is_sender() && t.state == Some(Consent::Granted));
        let live: BTreeSet<TabId> = self.tabs.iter().map(|t| t.id).collect();
        let step = self.step;
        let mut lost = 0;
        for uid in self.stored_uids() {
            if let Some(c) = self.calls.get_mut(&uid) {
                if !sender && !live.contains(&c.tab) && c.excused_at.is_none() {
                    c.excused_at = Some(step);
                    lost += 1;
                }
            }
        }
        self.stats.lost_to_clear += lost;
    }

    /// A denial made by a page (its own `setConsent("denied")`, or a load with it):
    /// every call made so far is to be forgotten everywhere.
    pub(super) fn denial_made(&mut self) {
        let step = self.step;
        self.last_denial = Some(step);
        for c in self.calls.values_mut() {
            c.excused_at.get_or_insert(step);
            c.before_denial.get_or_insert(step);
            c.required = false;
        }
    }

    /// `stand_(electing)`: out of choosing the sender (`ballot_.abort()`, `release_()`;
    /// `electing_` kept while away: nothing is sent then), and in again where it may:
    /// granted, not away.
    pub(super) fn stand(&mut self, t: usize, electing: bool) {
        self.abort_ballot(t);
        self.release(self.tabs[t].id);
        let tab = &mut self.tabs[t];
        tab.electing = electing || tab.away.is_some();
        if tab.state == Some(Consent::Granted) && tab.away.is_none() {
            self.elect(t);
        }
    }

    pub(super) fn abort_ballot(&mut self, t: usize) {
        let tab = &mut self.tabs[t];
        tab.ballot += 1;
        tab.lease = None;
        let id = tab.id;
        self.waiters.retain(|(w, _)| *w != id);
    }

    /// The lock is let go by `id` (if it holds it): the next waiter gets it.
    pub(super) fn release(&mut self, id: TabId) {
        if self.lock.is_some_and(|(h, _)| h == id) {
            self.lock = None;
            self.grant_next();
        }
    }

    pub(super) fn grant_next(&mut self) {
        while self.lock.is_none() {
            let Some((w, b)) = self.waiters.pop_front() else {
                return;
            };
            if let Some(i) = self.idx(w) {
                self.lock = Some((w, b));
                self.tabs[i]
                    .tasks
                    .push_back(Task::LockGranted { ballot: b });
            }
        }
    }

    /// `elect_`: a Web Lock if the run has them, else the lease.
    pub(super) fn elect(&mut self, t: usize) {
        let tab = &mut self.tabs[t];
        tab.electing = true;
        tab.ballot += 1;
        let (id, ballot) = (tab.id, tab.ballot);
        if self.k.locks {
            // `ifAvailable`: decided now, heard in a later task.
            let got = self.lock.is_none();
            if got {
                self.lock = Some((id, ballot));
            }
            self.tabs[t]
                .tasks
                .push_back(Task::LockAnswer { ballot, got });
        } else {
            let me = self.uuid();
            let tab = &mut self.tabs[t];
            tab.lease = Some((me, self.now + 1_000));
            tab.tasks.push_back(Task::FirstBeat { ballot });
        }
    }

    /// The lease's `beat`.
    pub(super) fn beat(&mut self, t: usize) {
        let Some((me, _)) = self.tabs[t].lease.clone() else {
            return;
        };
        let stored = self.seen(t).get(LEASE_KEY).cloned();
        let (held, v) = lease::decide(stored.as_deref(), &me, self.now);
        let v = if held { v } else { None };
        let id = self.tabs[t].id;
        if let Some(v) = &v {
            self.storage_set(id, LEASE_KEY, v);
        }
        let tab = &self.tabs[t];
        if tab.electing || v.is_some() != tab.sender {
            self.became(t, v.is_some());
        }
    }

    /// `became_`: the core hears whether it sends (and reads storage when it starts to).
    pub(super) fn became(&mut self, t: usize, sender: bool) {
        let tab = &mut self.tabs[t];
        tab.electing = false;
        tab.sender = sender;
        self.catch_up(t);
        self.control_sender(t, sender);
        let id = self.tabs[t].id;
        self.log(|| format!("tab {id} became sender={sender}"));
        self.sync_and_send(t);
    }

    /// `catchUp_`: back from the cache, the core as no sender before it sends again, so
    /// that it reads storage anew.
    pub(super) fn catch_up(&mut self, t: usize) {
        if std::mem::take(&mut self.tabs[t].behind) {
            self.control_sender(t, false);
        }
    }

    /// `control_(SENDER, now, sender, scan)`: exports.rs's SENDER arm (the core takes
    /// over what storage holds when it starts to send).
    pub(super) fn control_sender(&mut self, t: usize, sender: bool) {
        let stored = if sender {
            scan_of(self.seen(t), PREFIX)
        } else {
            String::new()
        };
        let now = self.now;
        self.tabs[t].c.take_part(sender, Stored(&stored), now);
    }
}

/// `key SUB value SEP ...` of the keys of `storage` that start with `prefix`.
pub(super) fn scan_of(storage: &BTreeMap<String, String>, prefix: &str) -> String {
    let mut out = String::new();
    for (k, v) in storage.range(prefix.to_string()..) {
        if !k.starts_with(prefix) {
            break;
        }
        out.push(SEP);
        out.push_str(k);
        out.push(SUB);
        out.push_str(v);
    }
    out
}
