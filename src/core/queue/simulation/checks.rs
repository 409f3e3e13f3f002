//! Klaviyo's side and the invariants: what each send and record write may hold, and
//! what must have happened by the end of a run.

use super::*;

impl World {
    // --------------------------------------------------------------- Klaviyo

    /// What a request carries: (id, ISO time) per event, the list id of a subscription.
    pub(super) fn parse_body(
        body: &str,
        endpoint: Endpoint,
    ) -> Vec<(String, Option<String>, bool)> {
        let v: Json = serde_json::from_str(body).expect("a request body is JSON");
        let a = &v["data"]["attributes"];
        let event = |e: &Json| {
            (
                e["unique_id"].as_str().unwrap_or("").to_string(),
                e["time"].as_str().map(str::to_string),
                e["properties"]["poison"] == Json::Bool(true),
            )
        };
        match endpoint {
            Endpoint::Events => vec![event(a)],
            Endpoint::BulkEvents => a["events"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| event(&e["attributes"]))
                .collect(),
            Endpoint::Subscriptions => {
                vec![(
                    v["data"]["relationships"]["list"]["data"]["id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    None,
                    false,
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Checks what a send carries against the calls: (c) the same id and time as the
    /// call; (d) nothing dropped or forgotten by a denial. Returns the ids.
    pub(super) fn check_send(&mut self, tab: TabId, body: &str, endpoint: Endpoint) -> Vec<String> {
        let parsed = World::parse_body(body, endpoint);
        let mut uids = Vec::new();
        for (uid, time, _) in parsed {
            let Some((time_s, dropped, before_denial)) = self.calls.get(&uid).map(|c| {
                (
                    c.time_s,
                    c.dropped,
                    c.before_denial.filter(|_| !c.window_written),
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
            uids.push(uid);
        }
        self.stats.sends += 1;
        uids
    }

    /// Whether tab `id` knows of what happened at step `at`: it became denied since, or
    /// opened after it (its whole life is after that denial).
    pub(super) fn heard(&self, id: TabId, at: usize) -> bool {
        self.idx(id).is_some_and(|i| {
            let t = &self.tabs[i];
            t.opened_at > at || t.denied_at.is_some_and(|d| d >= at)
        })
    }

    /// (e) A record written after a denial must hold no call made before it; one written
    /// after a page received the 202 of a call should not hold it again.
    pub(super) fn check_record_write(&mut self, from: TabId, key: &str, value: &str) {
        let id = &key[Q_PREFIX.len()..];
        if self.records_seen.insert(id.to_string()) {
            self.new_records += 1;
        }
        for uid in record_uids(value) {
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
            if self.answered_202.contains_key(&uid) {
                self.fault(
                    "(e) a record written after a page had the 202 of a call holds it again".into(),
                );
            }
        }
    }

    /// Klaviyo's answer to a request it processed: 202, or 400 naming poison events.
    pub(super) fn klaviyo(&mut self, r: &Request, fate: Fate) -> (u16, Option<u32>, String) {
        let parsed = World::parse_body(&r.body, r.endpoint);
        let bad: Vec<usize> = (0..parsed.len()).filter(|&i| parsed[i].2).collect();
        if !bad.is_empty() {
            for (uid, _, _) in &parsed {
                self.refused.insert(uid.clone());
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
        for (uid, _, _) in parsed {
            self.accepted
                .entry(uid)
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
            for (uid, _, _) in World::parse_body(&r.body, r.endpoint) {
                self.answered_202.entry(uid).or_insert(self.step);
            }
        }
        self.answered(t, &r, seen, ra, &body);
    }

    // --------------------------------------------------------------- the end of a run

    /// The checks of the end of a run.
    pub(super) fn check_end(&mut self) {
        // (a) every required call reached Klaviyo.
        self.stats.required = self
            .calls
            .values()
            .filter(|c| c.required && c.excused_at.is_none() && c.kind != Kind::Identify)
            .count();
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
            return if second.tab == first.tab {
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

/// The ids of the calls a stored record holds (a subscription's list id is its call's).
pub(super) fn record_uids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in value.lines().skip(1) {
        let uid = if line.starts_with('e') {
            line.split('\t')
                .nth(2)
                .map(|u| u.trim_matches('"').to_string())
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
