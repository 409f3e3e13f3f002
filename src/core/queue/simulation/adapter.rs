//! What js/runtime.js does, step by step: syncs, sends, answers, hides, `storage`
//! events, timers and tasks, and the script's actions carried out.

use super::*;
use crate::core::consent::DENIED;

impl World {
    pub(super) fn sync_and_send(&mut self, t: usize) {
        self.sync(t);
        self.send_due(t);
    }

    /// `sync_`: the core's storage writes, made; a failed one handed back.
    pub(super) fn sync(&mut self, t: usize) {
        self.new_records = 0;
        let id = self.tabs[t].id;
        let mut out = String::new();
        self.tabs[t].c.sync_storage(self.now, &mut out);
        for op in out.split(SEP).filter(|o| !o.is_empty()) {
            match op.split_once(SUB) {
                None => self.storage_del(id, op),
                Some(("", prefix)) => {
                    self.erased_by_denial();
                    let keys: Vec<String> = self
                        .seen(t)
                        .keys()
                        .filter(|k| k.starts_with(prefix))
                        .cloned()
                        .collect();
                    // `dropPrefix` keeps the denial's time for the tabs in the cache.
                    for k in keys.iter().filter(|k| *k != DENIED_KEY) {
                        self.storage_del(id, k);
                    }
                }
                Some((k, v)) => {
                    // `storage.set` writes a denial marker's time first.
                    if k == CONSENT_KEY && v == DENIED {
                        let at = self.now.to_string();
                        self.storage_set(id, DENIED_KEY, &at);
                    }
                    self.storage_set(id, k, v);
                }
            }
        }
        if self.new_records > 1 {
            self.fault(format!(
                "one record per task: {} new records in one sync",
                self.new_records
            ));
        }
        self.reports(t);
    }

    pub(super) fn reports(&mut self, t: usize) {
        let mut out = String::new();
        self.tabs[t].c.move_reports(&mut out);
        for r in out.split(SEP).filter(|r| !r.is_empty()) {
            let f: Vec<&str> = r.splitn(5, SUB).collect();
            let count: usize = f[2].parse().unwrap_or(0);
            match f[0] {
                "gave_up" => self.stats.gave_up += count,
                "rejected" => self.stats.rejected += count,
                "evicted" | "dropped" | "storage" => {
                    self.fault(format!("unexpected report {}", f[0]))
                }
                _ => {}
            }
        }
    }

    /// `sendDue_`: one request at a time, then the timer.
    pub(super) fn send_due(&mut self, t: usize) {
        if self.tabs[t].electing {
            return;
        }
        if !self.tabs[t].reread {
            self.tabs[t].reread = true;
            self.tabs[t].c.read_cookies("");
            self.consent(t, None);
        }
        while !self.tabs[t].busy {
            let Some(tx) = self.tabs[t].c.poll_transmit(self.now, usize::MAX) else {
                break;
            };
            self.send(t, tx, false);
        }
        if self.tabs[t].busy {
            return;
        }
        if let Some(at) = self.tabs[t].c.poll_timeout() {
            // `wakeAt_`: never sooner than 10 ms; an earlier timer stays.
            let at = at.max(self.now + 10);
            let tab = &mut self.tabs[t];
            if tab.timer_at.is_none_or(|cur| cur > at) {
                tab.timer_at = Some(at);
            }
        }
    }

    /// `send_`: the request goes out (with keepalive when it fits the allowance).
    pub(super) fn send(&mut self, t: usize, tx: Transmit, hiding: bool) {
        let bytes = tx.body.len();
        let tab = &mut self.tabs[t];
        let keepalive = bytes <= KEEPALIVE.saturating_sub(tab.ka_bytes);
        if keepalive {
            tab.ka_bytes += bytes;
        }
        if !hiding {
            tab.busy = true;
        }
        let (id, core_sender) = (tab.id, tab.c.is_sender());
        let req = self.next_req;
        self.next_req += 1;
        let uids = self.check_send(id, &tx.body, tx.endpoint);
        self.log(|| {
            format!(
                "tab {id} sends req {req} tx {} {:?} {uids:?}{}",
                tx.id,
                tx.endpoint,
                if hiding { " (hiding)" } else { "" }
            )
        });
        self.sends.push(Send {
            step: self.step,
            tab: id,
            core_sender,
            uids,
        });
        self.net.push(Request {
            id: req,
            tab: id,
            tx: tx.id,
            body: tx.body,
            endpoint: tx.endpoint,
            bytes,
            keepalive,
            hiding,
            deadline: self.now + DEADLINE_MS,
            doomed: !self.online,
            client_done: false,
        });
    }

    /// The answer reaches the page: `answered(...)` then `syncAndSend()`.
    pub(super) fn answered(
        &mut self,
        t: usize,
        r: &Request,
        status: u16,
        retry_after: Option<u32>,
        body: &str,
    ) {
        let tab = &mut self.tabs[t];
        if r.keepalive {
            tab.ka_bytes -= r.bytes;
        }
        if !r.hiding {
            tab.busy = false;
        }
        let jitter = (self.step as u64 * 7919 % 65536) as u16;
        tab.c
            .on_answer(r.tx, status, retry_after, body, self.now, jitter);
        self.sync_and_send(t);
    }

    /// `hide_`: what is due and fits goes with keepalive now; in-flight calls are marked.
    /// Nothing while away (another tab may send by then).
    pub(super) fn hide(&mut self, t: usize) {
        if self.tabs[t].away.is_some() {
            return;
        }
        self.catch_up(t);
        self.sync(t);
        let t0 = self.now;
        loop {
            let budget = KEEPALIVE.saturating_sub(self.tabs[t].ka_bytes);
            let Some(tx) = self.tabs[t].c.poll_keepalive(t0, budget) else {
                break;
            };
            self.send(t, tx, true);
        }
        self.tabs[t].c.on_hide(t0);
        self.sync(t);
    }

    /// `otherTab(e)`: another tab's write.
    pub(super) fn other_tab(&mut self, t: usize, e: StorageEvent) {
        if self.heard_write(t, e, true) {
            self.sync_and_send(t);
        }
    }

    /// `otherTab(e)` up to its end of task (`atEndOfTask_`): whether it queued one (not
    /// for a key not ours). `model`: the model's visitor follows an `id` written (not
    /// on a catch-up's read, where it follows one it missed: `come_back`).
    pub(super) fn heard_write(&mut self, t: usize, e: StorageEvent, model: bool) -> bool {
        match &e.key {
            None => {
                self.clears_heard.push((self.tabs[t].id, self.step));
                let stored = scan_of(self.seen(t), PREFIX);
                self.tabs[t].c.storage_cleared(Stored(&stored));
            }
            Some(key) if key.starts_with(PREFIX) => {
                // The identity: the value stored now, after this tab's own write to come.
                let id_key = key == ID_KEY;
                if id_key {
                    self.sync(t);
                }
                // As stored now, but the consent marker (removed in the task that wrote it).
                let value = if key == CONSENT_KEY {
                    e.new.clone()
                } else {
                    self.seen(t).get(key).cloned()
                };
                if id_key && model {
                    self.follow_stored(t);
                }
                // A marker written before this tab came back, heard only now: carried out
                // by its tab (`heardLate`, `consent(5)`).
                if key == CONSENT_KEY
                    && value.as_deref() == Some(DENIED)
                    && self.denied_before_back(t)
                {
                    self.tabs[t].c.denied_before_start();
                    self.consent(t, None);
                }
                let now = self.now;
                let c = &mut self.tabs[t].c;
                c.on_storage_change(key, value.as_deref());
                c.early_written(key, value.as_deref(), now);
                self.consent(t, None);
            }
            Some(_) => return false,
        }
        true
    }

    /// Whether the denial's time stored (as the tab sees it) is before it last came back
    /// (`deniedSince`: `+null` is 0, so no time stored is before too).
    fn denied_before_back(&self, t: usize) -> bool {
        // (`deniedSince(.., 1, ..)`: no time, or a granted page's `0` mark, is no denial.)
        let denied = self
            .seen(t)
            .get(DENIED_KEY)
            .and_then(|v| v.parse::<u64>().ok());
        matches!((denied, self.tabs[t].back_at), (Some(d), Some(b)) if d >= 1 && d < b)
    }

    /// The model: a tab not denied follows the visitor stored.
    pub(super) fn follow_stored(&mut self, t: usize) {
        let value = self.seen(t).get(ID_KEY).cloned();
        let value = value.as_deref();
        let tab = &mut self.tabs[t];
        if tab.c.consent() != Consent::Denied {
            let knows = value.and_then(|v| self.id_knows.get(v));
            if let Some(who) = value.and_then(|v| Visitor::restore(v, knows)) {
                tab.who = who;
            }
        }
    }

    /// `pagehide` (persisted) or `freeze`: `hide_()`, then `away_(1)`: out of choosing
    /// the sender, and nothing run until it is back. (Before `watch_`'s timeout, no
    /// listener: the page is cached without the tracker knowing, not modelled.)
    pub(super) fn go_away(&mut self, t: usize) {
        if !self.tabs[t].watching || self.tabs[t].away.is_some() {
            return;
        }
        self.hide(t);
        let id = self.tabs[t].id;
        self.log(|| format!("tab {id} goes into the back/forward cache"));
        self.tabs[t].away = Some((self.step, self.now));
        self.tabs[t].id_away = self.seen(t).get(ID_KEY).cloned();
        // A mark only a clear() removes (a denial writes its time there). Written as it
        // goes, before the copy below: a denial's time written later wins over it there.
        if self.tabs[t].state == Some(Consent::Granted) && !self.seen(t).contains_key(DENIED_KEY) {
            self.storage_set(id, DENIED_KEY, "0");
        }
        if self.k.late && self.tabs[t].view.is_none() {
            // Chromium: what it sees from now on is brought up to date by its late events
            // (if it went again before it heard them all, its copy stays as it is).
            self.tabs[t].view = Some(View {
                storage: self.storage.clone(),
                own: BTreeSet::new(),
                went: self.step,
            });
        }
        let out: Vec<String> = (self.net.iter())
            .filter(|r| r.tab == id)
            .flat_map(|r| self.carried(&r.body, r.endpoint).1)
            .map(|c| c.uid)
            .collect();
        self.out_over_a_stay.extend(out);
        self.stand(t, true);
    }

    /// `pageshow` or `resume`: `away_(0)`, `back_()`. It heard no `storage` event
    /// meanwhile: a denial since it went (the erase's time, kept, not ahead of the clock)
    /// is taken as one carried out (`consent(4)`); granted, with no visitor stored, a
    /// clear (`CLEARED`, as heard); else storage is read anew once it sends again
    /// (`behind_`, see `became`), and a visitor stored since it went is read as if its
    /// event came. Then it stands.
    ///
    /// With late events (Chromium) it hears them next, and sees storage at its return
    /// as it was when it went, or as it is, or in between, as `seen` draws (a race).
    pub(super) fn come_back(&mut self, t: usize, seen: u8) {
        let Some((went, away_at)) = self.tabs[t].away.take() else {
            return;
        };
        let id = self.tabs[t].id;
        // A page's return takes a millisecond at least: what it does next is dated after
        // what was written while it was away (a record stored meanwhile, the last thing
        // before a denial it makes at once, is then dated before that denial).
        self.now += 1;
        self.tabs[t].back_at = Some(self.now);
        let ahead = self.sees_ahead(t, seen);
        self.log(|| format!("tab {id} is back (seeing {ahead} of its late writes already)"));
        self.delivered_in_stay(id, went);
        let (mut end_of_task, mut read) = (false, false);
        if self.k.catch_up {
            let mark = self.seen(t).get(DENIED_KEY);
            let denied = mark.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let cleared = mark.is_none();
            let stored = self.seen(t).get(ID_KEY).cloned();
            if denied >= away_at && denied <= self.now {
                self.denied_on_return(t);
                self.tabs[t].c.denied_before_start();
                self.consent(t, None);
            } else if self.tabs[t].state == Some(Consent::Granted) && cleared {
                let e = StorageEvent {
                    key: None,
                    new: None,
                    late: false,
                };
                end_of_task = self.heard_write(t, e, false);
            } else {
                self.tabs[t].behind = true;
                if stored != self.tabs[t].id_away {
                    let e = StorageEvent {
                        key: Some(ID_KEY.to_string()),
                        new: None,
                        late: false,
                    };
                    end_of_task = self.heard_write(t, e, false);
                    read = true;
                }
            }
        }
        // The model: what it would have heard (a denial: in `heard`'s stays, once its
        // copy is current). It follows the visitor another tab wrote meanwhile; on a
        // catch-up's read, one written before, whose event waits in its queue, too (a
        // write is heard now or then).
        if !self.k.late {
            self.stays.push((id, went, self.step));
        } else if !self.tabs[t].storage_events.iter().any(|e| e.late) {
            self.view_current(t); // (after `denied_on_return`, which asks `heard`)
        }
        let tab = &mut self.tabs[t];
        self.stats.stays += 1;
        self.stats.stays_missing_writes += usize::from(std::mem::take(&mut tab.missed) > 0);
        let waiting = tab
            .storage_events
            .iter()
            .any(|e| e.key.as_deref() == Some(ID_KEY));
        let missed_id = std::mem::take(&mut tab.missed_id);
        // (With the catch-up, a visitor stored as it went stays its own: a pending tab's
        // is in its memory only.)
        if (missed_id && (read || !self.k.catch_up)) || (read && waiting) {
            self.follow_stored(t);
        } else if read {
            self.own_visitor_kept(t);
        }
        self.stand(t, false);
        if end_of_task {
            self.sync_and_send(t);
        }
    }

    /// Back with late events: the first of them whose writes it already sees (their
    /// events still come; all of them: its copy is storage, ended by `come_back`).
    fn sees_ahead(&mut self, t: usize, seen: u8) -> usize {
        let tab = &mut self.tabs[t];
        let Some(view) = &mut tab.view else {
            return 0;
        };
        let late = tab.storage_events.iter().filter(|e| e.late).count();
        let ahead = match seen % 3 {
            0 => 0,
            1 => late,
            _ => usize::from(seen / 3) % (late + 1),
        };
        for e in tab.storage_events.iter_mut().filter(|e| e.late).take(ahead) {
            view.take(e.key.as_deref(), e.new.as_deref());
            e.late = false;
        }
        ahead
    }

    /// A tab's copy of storage is current again (its late writes all in it): the stay
    /// it went on ends for the model (`heard`) if it is back.
    pub(super) fn view_current(&mut self, t: usize) {
        let tab = &mut self.tabs[t];
        let Some(view) = tab.view.take() else {
            return;
        };
        for e in &mut tab.storage_events {
            e.late = false;
        }
        if tab.away.is_none() {
            self.stays.push((tab.id, view.went, self.step));
        }
    }

    /// The tab is gone: its lock goes to the next waiter, its requests are orphans.
    pub(super) fn remove_tab(&mut self, t: usize) {
        let tab = self.tabs.remove(t);
        let id = tab.id;
        self.waiters.retain(|(w, _)| *w != id);
        self.release(id);
        for r in &mut self.net {
            if r.tab == id {
                r.client_done = true;
            }
        }
        if tab.state == Some(Consent::Pending) {
            // A page closed while pending loses its calls, by design.
            for c in self.calls.values_mut() {
                if c.pending_in == Some(id) {
                    c.pending_in = None;
                }
            }
        }
    }

    // --------------------------------------------------------------- the page's calls

    /// One task of `n` calls of one kind, then its end (`atEndOfTask_` → `syncAndSend`).
    pub(super) fn calls(&mut self, t: usize, kind: u8, n: u8) {
        for _ in 0..n {
            self.call(t, kind);
        }
        self.sync_and_send(t);
    }

    pub(super) fn call(&mut self, t: usize, kind: u8) {
        let uid = self.uuid();
        let n = self.next_id;
        // Every `identify` sets a value no other call gives (`n`): the profile after it
        // is one no other call makes, and each value names the call that gave it.
        let v = kind / 16;
        let (op, args, k, poison) = match kind % 16 {
            0..=6 => (
                Op::Track,
                format!(r#""Sim",{{"n":{n}}}"#),
                Kind::Event,
                false,
            ),
            7 => (
                Op::Track,
                format!(r#""Sim",{{"n":{n},"poison":true}}"#),
                Kind::Event,
                true,
            ),
            8..=9 => (
                Op::ViewedProduct,
                format!(r#"{{"ProductID":"p{n}","ProductName":"P","Price":9.5}}"#),
                Kind::Event,
                false,
            ),
            10..=11 => (
                Op::AddedToCart,
                format!(r#"{{"ProductID":"p{n}","ProductName":"P","Price":2,"Quantity":3}}"#),
                Kind::Event,
                false,
            ),
            12 => (
                Op::Subscribe,
                format!(r#"{{"listId":"{uid}","email":"s{n}@example.com","channels":["email"]}}"#),
                Kind::Subscription,
                false,
            ),
            15 if v >= 8 => return self.reset(t, uid),
            shape => {
                let attrs = match (shape, v % 4) {
                    (13, 0 | 2) => format!(r#"{{"email":"v{n}@example.com"}}"#),
                    (13, _) => format!(r#"{{"email":"v{n}@example.com","first_name":"F{n}"}}"#),
                    (14, 0 | 1) => format!(
                        r#"{{"first_name":"F{n}","properties":{{"p{}":{n}}}}}"#,
                        n % 3
                    ),
                    (14, 2) => format!(r#"{{"last_name":"L{n}","properties":{{"q":"Q{n}"}}}}"#),
                    (14, _) => format!(r#"{{"external_id":"x{n}","last_name":null}}"#),
                    _ => format!(
                        r#"{{"phone_number":"+1555{n:07}","properties":{{"p{}":{n}}}}}"#,
                        n % 3
                    ),
                };
                (Op::Identify, attrs, Kind::Identify, false)
            }
        };
        let text = format!(r#"["{uid}",{},{args}]"#, self.now);
        let tab = &mut self.tabs[t];
        let state = tab.c.consent();
        let id = tab.id;
        if let Err(e) = tab.c.call_json(op, &text, 0) {
            panic!(
                "the simulation's call was refused: {}",
                e.message(op.name())
            );
        }
        // The model: what the call carries, and the visitor after it.
        let expect = (state != Consent::Denied).then(|| {
            let a: Json = serde_json::from_str(&args).unwrap_or(Json::Null);
            tab.who.call(n, k, &a)
        });
        let anon = tab.who.anon.clone();
        let knows = if k == Kind::Identify {
            tab.who.knows.clone()
        } else {
            BTreeSet::new()
        };
        let core_anon = tab.c.anonymous_id().to_string();
        self.stats.calls += 1;
        self.log(|| format!("tab {id} calls {op:?} {uid} ({state:?}) as {anon}"));
        if core_anon != anon {
            self.log(|| format!("the core holds visitor {core_anon}"));
            self.fault("(p3) a tab's visitor is not the one the rules give".into());
        }
        if let (Kind::Identify, Some(e)) = (k, &expect) {
            self.latest_identify.insert(anon.clone(), uid.clone());
            self.profile_made.insert(e.to_string(), uid.clone());
        }
        self.calls.insert(
            uid,
            Call {
                tab: id,
                step: self.step,
                time_s: (self.now / 1000) as i64,
                kind: k,
                poison,
                dropped: state == Consent::Denied,
                required: state == Consent::Granted,
                pending_in: (state == Consent::Pending).then_some(id),
                excused_at: None,
                before_denial: None,
                window_written: false,
                seq: n,
                anon,
                expect,
                knows,
            },
        );
    }

    /// `reset()` (a logout): a new anonymous visitor, `fresh` its id.
    pub(super) fn reset(&mut self, t: usize, fresh: String) {
        let tab = &mut self.tabs[t];
        tab.c.reset(&fresh);
        if tab.c.consent() != Consent::Denied {
            tab.who = Visitor::new(&fresh);
        }
        let id = tab.id;
        self.log(|| format!("tab {id} resets: visitor {fresh}"));
    }

    // --------------------------------------------------------------- the scheduler

    /// The earliest timer of tab `t` and what it is.
    pub(super) fn next_timer(&self, t: usize) -> Option<(u64, u8)> {
        let tab = &self.tabs[t];
        if tab.away.is_some() {
            return None; // (its timers wait: they fire once it is back)
        }
        let mut best: Option<(u64, u8)> = tab.timer_at.map(|at| (at, 0));
        if let Some((_, at)) = &tab.lease {
            best = best.into_iter().chain([(*at, 1)]).min();
        }
        for r in &self.net {
            if r.tab == tab.id && !r.client_done {
                best = best.into_iter().chain([(r.deadline, 2)]).min();
            }
        }
        best
    }

    pub(super) fn fire_timer(&mut self, t: usize) -> bool {
        let Some((at, what)) = self.next_timer(t) else {
            return false;
        };
        if at > self.now {
            return false;
        }
        match what {
            0 => {
                self.tabs[t].timer_at = None;
                self.sync_and_send(t);
            }
            1 => {
                if let Some((_, next)) = &mut self.tabs[t].lease {
                    *next += 1_000;
                }
                self.beat(t);
            }
            _ => {
                // `deadline(30000)` aborts the fetch: a network error for the page.
                let id = self.tabs[t].id;
                let n = self
                    .net
                    .iter()
                    .position(|r| r.tab == id && !r.client_done && r.deadline == at)
                    .unwrap();
                self.net[n].client_done = true;
                let r = Request {
                    client_done: true,
                    ..self.clone_req(n)
                };
                self.log(|| format!("req {} of tab {id} aborted at 30 s", r.id));
                self.answered(t, &r, 0, None, "");
            }
        }
        true
    }

    pub(super) fn clone_req(&self, n: usize) -> Request {
        let r = &self.net[n];
        Request {
            body: r.body.clone(),
            ..*r
        }
    }

    pub(super) fn drain_storage_events(&mut self) {
        while let Some(t) = (0..self.tabs.len())
            .find(|&t| self.tabs[t].away.is_none() && !self.tabs[t].storage_events.is_empty())
        {
            self.run_task(t, true);
        }
    }

    /// A task of tab `t` (none while away: those queued before wait).
    pub(super) fn run_task(&mut self, t: usize, storage: bool) -> bool {
        let tab = &mut self.tabs[t];
        if tab.away.is_some() {
            return false;
        }
        if storage || tab.tasks.is_empty() {
            if let Some(e) = tab.storage_events.pop_front() {
                // A late event: its write reaches the page's copy just before it.
                if let Some(view) = tab.view.as_mut().filter(|_| e.late) {
                    view.take(e.key.as_deref(), e.new.as_deref());
                    if !tab.storage_events.iter().any(|e| e.late) {
                        self.view_current(t);
                    }
                }
                self.other_tab(t, e);
                return true;
            }
        }
        let Some(task) = self.tabs[t].tasks.pop_front() else {
            return false;
        };
        let ballot = self.tabs[t].ballot;
        match task {
            Task::Watch => {
                self.tabs[t].watching = true;
                if !self.online {
                    self.tabs[t].c.set_online(false);
                }
            }
            Task::InitialSync => self.sync_and_send(t),
            Task::Online(on) => {
                self.tabs[t].c.set_online(on);
                if on {
                    self.sync_and_send(t);
                }
            }
            Task::FirstBeat { ballot: b } => {
                if b == ballot {
                    self.beat(t);
                }
            }
            Task::LockAnswer { ballot: b, got } => {
                let id = self.tabs[t].id;
                if got {
                    self.hold(t, b);
                } else if b == ballot {
                    self.became(t, false);
                    // Waits its turn (granted at once if the lock went free meanwhile).
                    if self.tabs.get(t).is_some_and(|x| x.ballot == b) {
                        self.waiters.push_back((id, b));
                        self.grant_next();
                    }
                }
            }
            Task::LockGranted { ballot: b } => self.hold(t, b),
        }
        true
    }

    /// The lock callback's `hold()`: an aborted ballot lets the lock go at once.
    pub(super) fn hold(&mut self, t: usize, b: u32) {
        let id = self.tabs[t].id;
        if self.tabs[t].ballot != b {
            if self.lock == Some((id, b)) {
                self.lock = None;
                self.grant_next();
            }
            return;
        }
        self.became(t, true);
    }

    pub(super) fn act(&mut self, a: &Action) {
        match *a {
            Action::Call { tab, kind, n } => {
                if let Some(t) = self.here(tab) {
                    self.calls(t, kind, n);
                }
            }
            Action::RunTask { tab, storage } => {
                if let Some(t) = self.pick(tab) {
                    self.run_task(t, storage);
                }
            }
            Action::FireTimer { tab } => {
                if let Some(t) = self.pick(tab) {
                    self.fire_timer(t);
                }
            }
            Action::Answer { req, fate } => {
                if !self.net.is_empty() {
                    self.answer(req as usize % self.net.len(), fate);
                }
            }
            Action::Advance { ms } => {
                // Storage events reach the other tabs within milliseconds (README: 0-4
                // ms): before the clock moves on, each tab hears what is pending.
                self.drain_storage_events();
                self.now += u64::from(ms);
            }
            Action::Crash { tab } => {
                if let Some(t) = self.pick(tab) {
                    let id = self.tabs[t].id;
                    self.log(|| format!("tab {id} crashes"));
                    self.remove_tab(t);
                }
            }
            Action::Close { tab } => {
                if let Some(t) = self.pick(tab) {
                    let id = self.tabs[t].id;
                    self.log(|| format!("tab {id} closes"));
                    if self.tabs[t].watching {
                        self.hide(t);
                    }
                    self.remove_tab(t);
                }
            }
            Action::Open { consent } => {
                if self.tabs.len() < 4 {
                    let c = Consent::from_code(u64::from(consent)).unwrap();
                    if c == Consent::Denied {
                        self.denial_made();
                    }
                    self.open(c);
                }
            }
            Action::Consent { tab, state } => {
                if let Some(t) = self.here(tab) {
                    let c = Consent::from_code(u64::from(state)).unwrap();
                    if c == Consent::Denied && self.tabs[t].state != Some(Consent::Denied) {
                        self.denial_made();
                    }
                    self.consent(t, Some(c));
                }
            }
            Action::Online(on) => {
                if on != self.online {
                    self.online = on;
                    self.log(|| format!("online={on}"));
                    if !on {
                        for r in &mut self.net {
                            r.doomed = true;
                        }
                    }
                    for tab in &mut self.tabs {
                        if tab.watching {
                            tab.tasks.push_back(Task::Online(on));
                        }
                    }
                }
            }
            Action::Hide { tab } => {
                if let Some(t) = self.pick(tab) {
                    if self.tabs[t].watching {
                        self.hide(t);
                    }
                }
            }
            Action::Clear { tab } => {
                if let Some(t) = self.here(tab) {
                    if !self.storage.is_empty() {
                        let id = self.tabs[t].id;
                        self.log(|| format!("tab {id}: localStorage.clear()"));
                        self.cleared_by_a_script();
                        self.storage.clear();
                        // Its page's copy is storage again (empty): what others wrote
                        // before, heard late, no longer changes it (a page's own
                        // pending writes win, as in `View`).
                        self.view_current(t);
                        self.tell(id, None, None);
                    }
                }
            }
            Action::Away { tab } => {
                if let Some(t) = self.here(tab) {
                    self.go_away(t);
                }
            }
            Action::Back { tab, seen } => {
                let away: Vec<usize> = (0..self.tabs.len())
                    .filter(|&t| self.tabs[t].away.is_some())
                    .collect();
                if !away.is_empty() {
                    self.come_back(away[tab as usize % away.len()], seen);
                }
            }
        }
    }

    /// Tab `p` (as [`World::pick`]) if it is not away: a page in the cache runs nothing.
    pub(super) fn here(&self, p: u8) -> Option<usize> {
        self.pick(p).filter(|&t| self.tabs[t].away.is_none())
    }

    /// The quiet period: a healthy network, tabs in the cache back, pending tabs grant,
    /// one granted tab open; every task, timer and request runs until nothing is left
    /// (or 6 simulated hours).
    pub(super) fn quiet(&mut self) {
        self.act(&Action::Online(true));
        for t in 0..self.tabs.len() {
            self.come_back(t, 0); // (with late events: it sees storage as it went)
        }
        for t in 0..self.tabs.len() {
            if self.tabs[t].state == Some(Consent::Pending) {
                self.consent(t, Some(Consent::Granted));
            }
        }
        if !self.tabs.iter().any(|t| t.state == Some(Consent::Granted)) {
            self.open(Consent::Granted);
        }
        let end = self.now + 6 * 3600 * 1000;
        while self.now < end {
            self.step += 1;
            if let Some(t) = (0..self.tabs.len()).find(|&t| {
                !self.tabs[t].storage_events.is_empty() || !self.tabs[t].tasks.is_empty()
            }) {
                self.run_task(t, true);
                continue;
            }
            if let Some(r) = self.net.first() {
                // A crashed or closed tab's request dies with it, but for a keepalive one.
                let orphan = !r.keepalive && self.idx(r.tab).is_none();
                self.answer(0, if orphan { Fate::DropBefore } else { Fate::Ok });
                continue;
            }
            if (0..self.tabs.len()).any(|t| self.fire_timer(t)) {
                continue;
            }
            let held: usize = self.tabs.iter().map(|t| t.c.pending()).sum();
            if held == 0 && self.unfinished().is_empty() {
                break;
            }
            // Nothing to do now: the clock moves to the next timer.
            match (0..self.tabs.len())
                .filter_map(|t| self.next_timer(t))
                .map(|(at, _)| at)
                .min()
            {
                Some(at) => self.now = self.now.max(at),
                None => break,
            }
        }
    }

    /// Required calls Klaviyo has not had (202, or a 400 for a poison one); of a
    /// visitor's `identify` calls, the latest.
    pub(super) fn unfinished(&self) -> Vec<&String> {
        self.calls
            .iter()
            .filter(|(uid, c)| {
                c.required
                    && c.excused_at.is_none()
                    && self.wanted(uid, c)
                    && !self.accepted.contains_key(*uid)
                    && !(c.poison && self.refused.contains(*uid))
            })
            .map(|(uid, _)| uid)
            .collect()
    }
}
