//! Klaviyo's side and the invariants: what each send and record write may hold, and
//! what must have happened by the end of a run.

use super::*;

impl World {
    // --------------------------------------------------------------- Klaviyo

    /// What a request carries: the profile (an event's, an `identify`'s whole body, a
    /// subscription's identifiers) and per call its id (an `identify`'s is the call
    /// whose profile the body is, "" for none), an event's ISO time, whether it is
    /// poison.
    pub(super) fn carried(&self, body: &str, endpoint: Endpoint) -> (Json, Vec<Carried>) {
        let mut v: Json = serde_json::from_str(body).expect("a request body is JSON");
        // (`pointer_mut`: indexing a `&mut` would add the keys a body lacks.)
        let mut profile = v
            .pointer_mut("/data/attributes/profile/data/attributes")
            .map(Json::take)
            .unwrap_or_default();
        let a = &mut v["data"]["attributes"];
        let event = |e: &Json| Carried {
            uid: e["unique_id"].as_str().unwrap_or("").to_string(),
            time: e["time"].as_str().map(str::to_string),
            poison: e["properties"]["poison"] == Json::Bool(true),
        };
        let other = |uid: String| Carried {
            uid,
            time: None,
            poison: false,
        };
        let calls = match endpoint {
            Endpoint::Events => vec![event(a)],
            Endpoint::BulkEvents => a["events"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| event(&e["attributes"]))
                .collect(),
            Endpoint::Subscriptions => {
                if let Some(p) = profile.as_object_mut() {
                    p.remove("subscriptions");
                }
                let list = v["data"]["relationships"]["list"]["data"]["id"].as_str();
                vec![other(list.unwrap().to_string())]
            }
            Endpoint::Profiles => {
                profile = a.take();
                vec![other(self.profile_uid(&profile).unwrap_or_default())]
            }
            Endpoint::BackInStock => Vec::new(),
        };
        (profile, calls)
    }

    /// The `identify` whose profile `attributes` are (each makes one no other does).
    pub(super) fn profile_uid(&self, attributes: &Json) -> Option<String> {
        self.profile_made.get(&attributes.to_string()).cloned()
    }

    /// Checks what a send carries against the calls: (c) the same id and time as the
    /// call; (d) nothing dropped or forgotten by a denial; (p1) a profile request is
    /// the profile an `identify` made; (p3) an event or subscription carries the
    /// profile in force at its call. Returns the ids.
    pub(super) fn check_send(&mut self, tab: TabId, body: &str, endpoint: Endpoint) -> Vec<String> {
        let (profile, parsed) = self.carried(body, endpoint);
        let mut uids = Vec::new();
        if endpoint == Endpoint::Profiles {
            self.stats.profile_sends += 1;
        }
        for Carried { uid, time, .. } in parsed {
            if uid.is_empty() && endpoint == Endpoint::Profiles {
                let why = self.provenance(&profile);
                self.log(|| format!("profile {profile}: {why}"));
                self.fault("(p1) a profile request carries a profile no identify made".into());
                continue;
            }
            let Some((time_s, dropped, before_denial, other)) = self.calls.get(&uid).map(|c| {
                (
                    c.time_s,
                    c.dropped,
                    c.before_denial.filter(|_| !c.window_written),
                    c.expect.as_ref().filter(|e| **e != profile).cloned(),
                )
            }) else {
                self.fault(format!("(c) a send carries an unknown id {uid}"));
                continue;
            };
            if let Some(time) = time {
                let s = crate::core::time::secs_from_iso(&time);
                if s != Some(time_s) {
                    self.fault("(c) a call was sent with another time than its own".to_string());
                }
            }
            if dropped {
                self.fault("(d) a call made while denied was sent".into());
            }
            if let Some(at) = before_denial {
                let heard = self.heard(tab, at);
                if heard {
                    self.fault("(d) a call made before a denial was sent after it, by a tab that had heard the denial".into());
                } else {
                    // The README's 0-4 ms: the tab has not heard the denial yet.
                    self.log(|| {
                        "a call made before a denial sent by a tab that has not heard it yet".into()
                    });
                    self.stats.sent_in_window += 1;
                }
            }
            if let Some(e) = other {
                self.log(|| format!("{uid} carries {profile}, made with {e}"));
                self.fault(if endpoint == Endpoint::Subscriptions {
                    "(p3) a subscription carries other identifiers than those in force at its call"
                        .into()
                } else {
                    "(p3) an event carries another profile than the one in force at its call".into()
                });
            }
            uids.push(uid);
        }
        self.stats.sends += 1;
        uids
    }

    /// Where the attributes of a profile no `identify` made come from (for the trace):
    /// each value was given once, by one call.
    pub(super) fn provenance(&self, profile: &Json) -> String {
        let anon = profile["anonymous_id"].as_str().unwrap_or("");
        let mut out = String::new();
        for (k, v) in profile.as_object().into_iter().flatten() {
            if k == "anonymous_id" {
                continue;
            }
            let from: Vec<&str> = self
                .calls
                .values()
                .filter(|c| c.expect.as_ref().is_some_and(|e| e.get(k) == Some(v)))
                .map(|c| c.anon.as_str())
                .collect();
            let said = if from.contains(&anon) {
                "this visitor's"
            } else if from.is_empty() {
                "invented"
            } else {
                "another visitor's"
            };
            let _ = write!(out, "{k}: {said}; ");
        }
        out
    }

    /// Whether tab `id` knows of what happened at step `at`: it became denied since, or
    /// opened after it (its whole life is after that denial), or it was in the
    /// back/forward cache then and is back (it must catch up: unless a script's
    /// `clear()` took the denial's time before it came back).
    pub(super) fn heard(&self, id: TabId, at: usize) -> bool {
        self.idx(id).is_some_and(|i| {
            let t = &self.tabs[i];
            t.opened_at > at || t.denied_at.is_some_and(|d| d >= at)
        }) || self.stays.iter().any(|&(t, went, back)| {
            t == id && went < at && at < back && !self.clears.iter().any(|&c| at < c && c <= back)
        })
    }

    /// Back from the cache with no visitor written meanwhile, a tab's own stands: the
    /// catch-up's read must not take the stored one for it (one not stored, as while
    /// consent is pending). Flagged once; the model then follows what the core holds.
    pub(super) fn own_visitor_kept(&mut self, t: usize) {
        let tab = &self.tabs[t];
        if tab.c.consent() == Consent::Denied {
            return;
        }
        let stored = self.seen(t).get(ID_KEY);
        let Some(v) = stored.and_then(|v| Visitor::restore(v, self.id_knows.get(v))) else {
            return;
        };
        if !v.same(&tab.who) {
            let (id, was) = (tab.id, tab.who.attributes());
            self.log(|| format!("tab {id} took {} for {was}", v.attributes()));
            self.fault(VISITOR_READ_BACK.into());
            self.tabs[t].who = v;
        }
    }

    /// Back from a stay since step `went`: the calls delivered meanwhile, no longer
    /// stored (the tab must forget them; one still stored it may read back).
    pub(super) fn delivered_in_stay(&mut self, id: TabId, went: usize) {
        let stored: BTreeSet<String> = self.stored_uids().into_iter().collect();
        let back = self.step;
        let gone = self
            .answered_202
            .iter()
            .filter(|&(uid, &at)| went < at && !stored.contains(uid))
            .map(|(uid, _)| ((id, uid.clone()), back));
        self.missed_deliveries.extend(gone);
    }

    /// Back from the cache, a tab takes a denial stored since it went for one it missed.
    /// One it had heard (its own, or told) and granted again since, in the millisecond
    /// it went (only then is its time not earlier), is taken again: counted apart (the
    /// clock here stands still between `Advance` actions; a page's does not).
    pub(super) fn denied_on_return(&mut self, t: usize) {
        let tab = &self.tabs[t];
        let heard = self.last_denial.is_none_or(|d| self.heard(tab.id, d));
        if heard && tab.state != Some(Consent::Denied) {
            let id = tab.id;
            self.log(|| format!("tab {id} takes a denial it had heard for one it missed"));
            self.stats.denied_again_on_return += 1;
        }
    }

    /// (e) A record written after a denial must hold no call made before it; one written
    /// after a page received the 202 of a call should not hold it again.
    pub(super) fn check_record_write(&mut self, from: TabId, key: &str, value: &str) {
        let id = &key[Q_PREFIX.len()..];
        if self.records_seen.insert(id.to_string()) {
            self.new_records += 1;
        }
        for uid in self.record_uids(value) {
            let Some(c) = self.calls.get(&uid) else {
                continue;
            };
            if let Some(at) = c.before_denial.filter(|&at| at < self.step) {
                if self.heard(from, at) && !c.window_written {
                    self.fault(
                        "(e) a record written after a denial holds a call made before it".into(),
                    );
                } else {
                    // Written by a tab that had not heard the denial (a pending tab that
                    // granted meanwhile): what follows from it is that window's too.
                    self.stats.written_in_window += 1;
                    if let Some(c) = self.calls.get_mut(&uid) {
                        c.window_written = true;
                    }
                }
            }
            if self.answered_202.contains_key(&uid) && self.out_over_a_stay.contains(&uid) {
                self.fault(STALE_RECORD_OVER_A_STAY.into());
            } else if self.answered_202.contains_key(&uid) {
                self.fault(
                    "(e) a record written after a page had the 202 of a call holds it again".into(),
                );
            }
        }
    }

    /// Klaviyo's answer to a request it processed: 202, or 400 naming poison events.
    pub(super) fn klaviyo(&mut self, r: &Request, fate: Fate) -> (u16, Option<u32>, String) {
        let (profile, parsed) = self.carried(&r.body, r.endpoint);
        let bad: Vec<usize> = (0..parsed.len()).filter(|&i| parsed[i].poison).collect();
        if !bad.is_empty() {
            for c in &parsed {
                self.refused.insert(c.uid.clone());
            }
            // With pointers on even request ids, without on odd ones (then it halves).
            let mut detail = String::from(r#"{"errors":["#);
            if r.id.is_multiple_of(2) {
                for (n, i) in bad.iter().enumerate() {
                    let sep = if n > 0 { "," } else { "" };
                    let _ = write!(
                        detail,
                        r#"{sep}{{"source":{{"pointer":"/data/attributes/events/data/{i}/attributes/properties"}}}}"#
                    );
                }
            }
            detail.push_str("]}");
            return (400, None, detail);
        }
        match fate {
            Fate::Throttle(s) => return (429, Some(u32::from(s)), String::new()),
            Fate::ServerError(code) => return (code, None, String::new()),
            _ => {}
        }
        for c in parsed {
            if c.uid.is_empty() {
                continue;
            }
            if r.endpoint == Endpoint::Profiles {
                // Klaviyo keeps the profile's attributes per visitor, the last given.
                let anon = profile["anonymous_id"].as_str().unwrap_or("").to_string();
                self.profile_log
                    .entry(anon)
                    .or_default()
                    .push((c.uid.clone(), self.step));
                self.stats.profiles_accepted += 1;
            }
            self.accepted
                .entry(c.uid)
                .or_default()
                .push((self.step, r.id));
        }
        self.stats.accepted += 1;
        (202, None, String::new())
    }

    /// A request's fate: Klaviyo (maybe) processes it; the page (maybe) hears.
    pub(super) fn answer(&mut self, n: usize, fate: Fate) {
        let r = self.net.remove(n);
        let fate = if r.doomed || !self.online {
            Fate::DropBefore
        } else {
            fate
        };
        let (status, ra, body) = match fate {
            Fate::DropBefore => (0, None, String::new()),
            _ => self.klaviyo(&r, fate),
        };
        let seen = if fate == Fate::DropAfter { 0 } else { status };
        self.log(|| {
            format!(
                "req {} of tab {}: {fate:?} -> server {status}, page sees {seen}",
                r.id, r.tab
            )
        });
        if r.client_done {
            return;
        }
        let Some(t) = self.idx(r.tab) else { return };
        if seen == 202 {
            for c in self.carried(&r.body, r.endpoint).1 {
                if !c.uid.is_empty() {
                    self.answered_202.entry(c.uid).or_insert(self.step);
                }
            }
        }
        self.answered(t, &r, seen, ra, &body);
    }

    // --------------------------------------------------------------- the end of a run

    /// The checks of the end of a run.
    pub(super) fn check_end(&mut self) {
        // (a) every required call reached Klaviyo (of a visitor's `identify` calls, the
        // latest: it carries what the others said, which it may have replaced).
        self.stats.required = self
            .calls
            .iter()
            .filter(|(uid, c)| c.required && c.excused_at.is_none() && self.wanted(uid, c))
            .count();
        self.check_profiles();
        let lost = self.unfinished().len();
        // (A call given up is lost too: nothing in a run reaches 30 attempts or 7 days.)
        if lost > 0 {
            let list = format!("{:?}", self.unfinished());
            self.log(|| format!("never reached Klaviyo: {list}"));
            self.fault("(a) required calls never reached Klaviyo".into());
        }
        // (e) nothing stored for accepted calls: no record, no mark left. (A 429's pause
        // is no call's: the page that next sends after it is over removes it, and one
        // with nothing to send leaves it, as with a pause still running at the end.)
        let pause = format!("{K_PREFIX}pause");
        let left: Vec<String> = self
            .storage
            .keys()
            .filter(|k| (k.starts_with(Q_PREFIX) || k.starts_with(K_PREFIX)) && **k != pause)
            .cloned()
            .collect();
        if !left.is_empty() {
            self.log(|| format!("left in storage: {left:?}"));
            self.fault("(e) storage still holds records or marks after the quiet period".into());
        }
        // (b) the same id sent, or accepted, twice: why.
        let mut sent: BTreeMap<&str, Vec<&Send>> = BTreeMap::new();
        for s in &self.sends {
            for u in &s.uids {
                sent.entry(u.as_str()).or_default().push(s);
            }
        }
        let mut resent = BTreeMap::new();
        for (uid, list) in &sent {
            if list.len() < 2 {
                continue;
            }
            let why = self.why_resent(uid, list);
            *resent.entry(why).or_insert(0) += 1;
        }
        let mut dup = BTreeMap::new();
        for (uid, list) in &self.accepted {
            if list.len() > 1 {
                let why = self.why_resent(uid, &sent[uid.as_str()]);
                *dup.entry(why).or_insert(0) += 1;
            }
        }
        // A second 202 after a page had the first one is not a lost answer: flagged.
        let flagged: Vec<String> = dup
            .keys()
            .filter(|w| w.starts_with("after the 202:"))
            .map(|w| format!("(b) {w}"))
            .collect();
        for f in flagged {
            self.fault(f);
        }
        self.stats.resent = resent;
        self.stats.dup_accepted = dup;
    }

    /// Whether call `uid` must reach Klaviyo if it is required: every event and
    /// subscription, and the latest `identify` of its visitor.
    pub(super) fn wanted(&self, uid: &str, c: &Call) -> bool {
        c.kind != Kind::Identify || self.latest_identify.get(&c.anon).is_some_and(|u| u == uid)
    }

    /// (p2) The profile Klaviyo ends with for each visitor whose latest `identify` it
    /// had to get: the profile requests it accepted, in order, each setting what it
    /// carries (custom properties key by key). An attribute the latest sets may end
    /// on another value only through a request the latest did not supersede: one made
    /// by a tab whose visitor the latest's tab had not heard of (consent pending, or a
    /// write not heard yet: the last write wins). Not through one it superseded.
    pub(super) fn check_profiles(&mut self) {
        let (mut reverted, mut concurrent) = (Vec::new(), Vec::new());
        for (anon, uid) in &self.latest_identify {
            let Some(c) = self.calls.get(uid) else {
                continue;
            };
            if !c.required || c.excused_at.is_some() || !self.accepted.contains_key(uid) {
                continue;
            }
            let Some(Json::Object(want)) = &c.expect else {
                continue;
            };
            self.stats.visitors_checked += 1;
            // Each attribute (a custom property apart) as Klaviyo ends: the value and
            // the `identify` whose request set it last.
            let mut ends: BTreeMap<(String, String), (&Json, &Call)> = BTreeMap::new();
            for (u, _) in self.profile_log.get(anon).into_iter().flatten() {
                let Some(o) = self.calls.get(u) else { continue };
                let Some(Json::Object(body)) = &o.expect else {
                    continue;
                };
                for (k, v) in body {
                    match v {
                        Json::Object(props) if k == "properties" => {
                            for (pk, pv) in props {
                                ends.insert((k.clone(), pk.clone()), (pv, o));
                            }
                        }
                        _ => {
                            ends.insert((k.clone(), String::new()), (v, o));
                        }
                    }
                }
            }
            for (k, v) in want {
                let wanted: Vec<((String, String), &Json)> = match v {
                    Json::Object(props) if k == "properties" => props
                        .iter()
                        .map(|(pk, pv)| ((k.clone(), pk.clone()), pv))
                        .collect(),
                    _ => vec![((k.clone(), String::new()), v)],
                };
                for (key, v) in wanted {
                    match ends.get(&key) {
                        Some((have, _)) if *have == v => {}
                        Some((have, by)) if !c.knows.contains(&by.seq) => {
                            concurrent.push(format!(
                                "{anon}: {key:?} ends on {have} of identify {}",
                                by.seq
                            ));
                        }
                        have => {
                            let by = have.map(|(h, by)| format!("{h} of identify {}", by.seq));
                            reverted
                                .push(format!("{anon}: {key:?} ends on {by:?}, not {v} of {uid}"));
                        }
                    }
                }
            }
        }
        self.stats.profiles_overwritten += concurrent.len();
        self.stats.profiles_reverted += reverted.len();
        if !concurrent.is_empty() {
            self.log(|| format!("ends on a concurrent identify (allowed): {concurrent:?}"));
        }
        if !reverted.is_empty() {
            self.log(|| format!("profiles that end on a superseded identify: {reverted:?}"));
            self.fault(PROFILE_REVERTED.into());
        }
    }

    /// Why `uid` went out again after its first send.
    pub(super) fn why_resent(&self, uid: &str, sends: &[&Send]) -> &'static str {
        // The first send after a page received Klaviyo's 202 for it (not only the second
        // send: a call retried, then sent again after its 202), and the send before it.
        let after_202 = self
            .answered_202
            .get(uid)
            .and_then(|&at| sends.iter().position(|s| s.step > at))
            .filter(|&i| i > 0);
        if let Some(i) = after_202 {
            let (first, second) = (sends[i - 1], sends[i]);
            let missed = self.missed_deliveries.get(&(second.tab, uid.to_string()));
            return if self.out_over_a_stay.contains(uid) {
                &RESENT_AFTER_A_202_OVER_A_STAY[4..] // (less "(b) ", put back as flagged)
            } else if missed.is_some_and(|&back| {
                (self.clears_heard.iter())
                    .any(|&(t, at)| t == second.tab && back <= at && at <= second.step)
            }) {
                &RESENT_AFTER_A_CLEAR_BACK[4..]
            } else if missed.is_some() {
                "after the 202: a tab back from the back/forward cache, where it was then, sent it again"
            } else if second.tab == first.tab {
                "after the 202: the same tab sent it again"
            } else if !second.core_sender {
                "after the 202: another tab sent its own copy again"
            } else {
                "another tab resent after the 202 reached a tab that was no longer the sender"
            };
        }
        let (first, second) = (sends[0], sends[1]);
        if second.tab != first.tab && first.step < second.step {
            let first_alive = self.idx(first.tab).is_some();
            if self.tabs.is_empty() || !first_alive {
                return "sender gone (crash/close) before its answer: the next sender resent";
            }
            return "another tab sent it while the first request was out (handover)";
        }
        "same tab: the answer was lost (drop, 30 s abort) or a retryable error"
    }
}

/// One call as a request carries it (see [`World::carried`]).
pub(super) struct Carried {
    pub(super) uid: String,
    pub(super) time: Option<String>,
    pub(super) poison: bool,
}

impl World {
    /// The ids of the calls a stored record holds (a subscription's list id is its
    /// call's; a profile request's is the `identify` that made it).
    pub(super) fn record_uids(&self, value: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in value.lines().skip(1) {
            let uid = if line.starts_with('e') {
                line.split('\t')
                    .nth(2)
                    .map(|u| u.trim_matches('"').to_string())
            } else if line.starts_with('b') && line.split('\t').nth(1) == Some("P") {
                line.split('\t')
                    .nth(2)
                    .and_then(|b| serde_json::from_str::<Json>(b).ok())
                    .and_then(|b| self.profile_uid(&b["data"]["attributes"]))
            } else if line.starts_with('b') {
                line.split("\"list\",\"id\":\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .map(str::to_string)
            } else {
                None
            };
            out.extend(uid);
        }
        out
    }

    /// The ids of the calls all stored records hold.
    pub(super) fn stored_uids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in self.storage.range(Q_PREFIX.to_string()..) {
            if !k.starts_with(Q_PREFIX) {
                break;
            }
            out.extend(self.record_uids(v));
        }
        out
    }
}

// ------------------------------------------------------------------------ the visitor

/// The identifiers a shop gives (`identity.rs`'s `OWN_IDENTIFIERS`).
const OWN: [&str; 3] = ["email", "phone_number", "external_id"];

/// The model of the visitor a tab's core holds, by the README's rules (Identity, the
/// `subscribe` and `reset()` rows, Tabs: every tab follows the visitor stored), made
/// apart from `identity.rs`: what `identify` said (a later value replaces an earlier
/// one, `null` removes one, custom `properties` merge key by key), a subscription's
/// provisional name, the anonymous id. No `_kx` and no onsite cookie here.
#[derive(Clone, Debug)]
pub(super) struct Visitor {
    pub(super) anon: String,
    profile: serde_json::Map<String, Json>,
    /// The email came from a subscription, not `identify`.
    provisional: bool,
    /// The `identify` calls (their `seq`) this state was made from, in this tab or in
    /// those whose stored visitor it followed: a profile request made now carries
    /// everything those said (or replaced it), so it supersedes theirs.
    pub(super) knows: BTreeSet<u64>,
}

impl Visitor {
    pub(super) fn new(anon: &str) -> Visitor {
        Visitor {
            anon: anon.to_string(),
            profile: serde_json::Map::new(),
            provisional: false,
            knows: BTreeSet::new(),
        }
    }

    /// The visitor stored under `id` (as a tab reads it at start, or hears it), made
    /// from the `identify` calls `knows` (its writer's).
    pub(super) fn restore(text: &str, knows: Option<&BTreeSet<u64>>) -> Option<Visitor> {
        let v: Json = serde_json::from_str(text).ok()?;
        let anon = v["anonymous_id"].as_str().filter(|a| !a.is_empty())?;
        Some(Visitor {
            anon: anon.to_string(),
            profile: v["profile"].as_object().cloned().unwrap_or_default(),
            provisional: v["provisional"] == Json::Bool(true),
            knows: knows.cloned().unwrap_or_default(),
        })
    }

    /// The same visitor, the same profile.
    pub(super) fn same(&self, o: &Visitor) -> bool {
        self.anon == o.anon && self.profile == o.profile && self.provisional == o.provisional
    }

    /// Named by our own `identify`, not only by a subscription.
    fn named_for_good(&self) -> bool {
        !self.provisional && OWN.iter().any(|k| self.profile.contains_key(*k))
    }

    /// What every request of this visitor carries as its profile.
    pub(super) fn attributes(&self) -> Json {
        let mut a = self.profile.clone();
        a.insert("anonymous_id".into(), Json::String(self.anon.clone()));
        Json::Object(a)
    }

    /// Call `seq` (not made while denied) of kind `kind` with arguments `args`: what
    /// it carries (see [`Call::expect`]); the visitor after it.
    pub(super) fn call(&mut self, seq: u64, kind: Kind, args: &Json) -> Json {
        let Some(args) = args.as_object() else {
            return self.attributes();
        };
        match kind {
            Kind::Event => self.attributes(),
            Kind::Identify => {
                let names = OWN.iter().any(|k| args.contains_key(*k));
                // A sign-in after a subscription's name starts from nothing of it.
                if self.provisional && names {
                    self.profile.clear();
                }
                for (k, v) in args {
                    match (self.profile.get_mut(k), v) {
                        (Some(Json::Object(old)), Json::Object(new)) if k == "properties" => {
                            old.extend(new.clone());
                        }
                        (_, Json::Null) => {
                            self.profile.remove(k);
                        }
                        _ => {
                            self.profile.insert(k.clone(), v.clone());
                        }
                    }
                }
                self.provisional &= !names;
                self.knows.insert(seq);
                self.attributes()
            }
            Kind::Subscription => {
                // Its own email alone, unless our identify named the visitor: then
                // theirs, with the email given.
                let mut p = serde_json::Map::new();
                let good = self.named_for_good();
                if good {
                    for k in OWN {
                        if let Some(v) = self.profile.get(k) {
                            p.insert(k.into(), v.clone());
                        }
                    }
                }
                for k in ["email", "phone_number"] {
                    if let Some(v) = args.get(k) {
                        p.insert(k.into(), v.clone());
                    }
                }
                if !good {
                    // It names the visitor, provisionally, in place of any earlier name.
                    for k in OWN {
                        self.profile.remove(k);
                    }
                    for k in ["email", "phone_number"] {
                        if let Some(v) = p.get(k) {
                            self.profile.insert(k.into(), v.clone());
                        }
                    }
                    self.provisional = true;
                }
                Json::Object(p)
            }
        }
    }
}
