//! The queue's sending: what is due, batched into one request, and what each answer
//! does to its calls (delivered, refused, retried after backoff or Retry-After).

use super::*;

impl Queue {
    // ---------------------------------------------------------------- sending

    /// Whether this tab may send `it` now: written (its task ended), not in flight,
    /// due, and ours to send (the sender sends stored calls; any tab sends what only it
    /// holds).
    /// `urgent`: the page is going away, so a flush delay no longer applies (backoff,
    /// Retry-After and keepalive holds still do).
    pub(super) fn due(&self, it: &Item, now_ms: u64, urgent: bool) -> bool {
        it.tx == 0
            && it.not_before_ms <= now_ms
            && (urgent
                || self.limits.flush_delay_ms == 0
                || it.created_ms + self.limits.flush_delay_ms <= now_ms)
            && self.mine(it)
            && Some(it.rec) != self.open
    }

    /// Whether item `n`, a profile request, waits behind an earlier one of the same
    /// visitor, out or this tab's to send: a visitor's profile requests go in order, one
    /// at a time (a newer one sent beside or before an older, which was then retried,
    /// was overtaken by it at Klaviyo: its profile ended on the older values).
    pub(super) fn held_behind(&self, n: usize) -> bool {
        let it = &self.items[n];
        it.endpoint == Endpoint::Profiles && {
            let v = visitor(&it.text);
            self.items[..n].iter().any(|o| {
                o.endpoint == Endpoint::Profiles
                    && (o.in_flight() || self.mine(o))
                    && visitor(&o.text) == v
            })
        }
    }

    /// Whether this tab is the one to send `it`.
    pub(super) fn mine(&self, it: &Item) -> bool {
        self.sender || !it.stored
    }

    /// The next request to send, if one is due, with a body of at most `max_body`
    /// bytes (the keepalive allowance left, when the page is going away).
    pub fn poll_transmit(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        self.poll(now_ms, max_body, false)
    }

    /// For a page being hidden or closed: like [`Queue::poll_transmit`], but a flush
    /// delay no longer holds calls back, and calls too large for `max_body` (what is
    /// left of the keepalive allowance) are passed over rather than blocking the rest.
    pub fn poll_keepalive(&mut self, now_ms: u64, max_body: usize) -> Option<Transmit> {
        self.poll(now_ms, max_body, true)
    }

    pub(super) fn poll(&mut self, now_ms: u64, max_body: usize, urgent: bool) -> Option<Transmit> {
        if !self.online || now_ms < self.paused_until_ms || self.consent != Consent::Granted {
            return None;
        }
        self.give_up_stale(now_ms);
        let fits = |it: &Item| {
            let extra = match it.profile {
                NO_PROFILE => 0,
                p => self.profiles[p as usize].len() + payload::EVENT_OVERHEAD + 100,
            };
            !urgent || it.text.len() + extra <= max_body
        };
        let first =
            self.items.iter().enumerate().position(|(n, i)| {
                self.due(i, now_ms, urgent) && fits(i) && !self.held_behind(n)
            })?;
        let (endpoint, body, picked) = if self.items[first].profile == NO_PROFILE {
            let it = &self.items[first];
            (it.endpoint, it.text.clone(), vec![first])
        } else {
            let budget = max_body.min(self.limits.batch_bytes);
            self.batch_from(first, now_ms, budget)
        };
        if body.len() > max_body || !self.limiters[endpoint as usize].try_take(now_ms) {
            return None;
        }
        let id = self.next_tx;
        self.next_tx = self.next_tx.wrapping_add(1).max(1);
        for i in &picked {
            self.items[*i].tx = id;
        }
        self.in_flight.push(id);
        Some(Transmit {
            id,
            endpoint,
            body,
            items: picked.len(),
        })
    }

    /// Builds one request from the due events that share the profile of `first`,
    /// oldest first.
    pub(super) fn batch_from(
        &self,
        first: usize,
        now_ms: u64,
        max_bytes: usize,
    ) -> (Endpoint, String, Vec<usize>) {
        let profile_id = self.items[first].profile;
        let profile = &self.profiles[profile_id as usize];
        let mut picked: Vec<usize> = Vec::new();
        // Sorted, for a cheap duplicate check in batches of up to 1000.
        let mut uids: Vec<&str> = Vec::new();
        let mut cap = self.limits.batch_events;
        let mut bytes = profile.len() + 200;
        for (n, item) in self.items.iter().enumerate().skip(first) {
            // Once a request goes, calls still in their flush delay join it.
            if item.profile != profile_id || !self.due(item, now_ms, true) {
                continue;
            }
            let Some(e) = record::read_event(&item.text) else {
                continue;
            };
            // A repeated unique_id would make Klaviyo refuse the whole bulk request.
            let Err(slot) = uids.binary_search(&e.unique_id) else {
                continue;
            };
            let size = item.text.len() + payload::EVENT_OVERHEAD;
            let cap_with = cap.min(item.batch_cap as usize);
            if !picked.is_empty() && (picked.len() >= cap_with || bytes + size > max_bytes) {
                break;
            }
            cap = cap_with;
            bytes += size;
            uids.insert(slot, e.unique_id);
            picked.push(n);
        }
        // The picked events, read again from their lines (no list of them kept).
        let mut events = picked
            .iter()
            .filter_map(|&n| record::read_event(&self.items[n].text));
        let mut body = String::with_capacity(bytes);
        let endpoint = if picked.len() == 1 {
            if let Some(e) = events.next() {
                payload::client_event(&e, profile, &mut body);
            }
            Endpoint::Events
        } else {
            payload::bulk_client_events(profile, events, &mut body);
            Endpoint::BulkEvents
        };
        (endpoint, body, picked)
    }

    /// Drops calls that have had too many attempts or waited too long.
    pub(super) fn give_up_stale(&mut self, now_ms: u64) {
        let l = &self.limits;
        let (max_attempts, max_age) = (l.max_attempts, l.max_age_ms);
        let sender = self.sender;
        let mut n = 0;
        self.remove_where(|i| {
            // Only the calls this tab would send: another tab's give up is its own.
            let stale = !i.in_flight()
                && (sender || !i.stored)
                && (i.attempts >= max_attempts || now_ms.saturating_sub(i.created_ms) > max_age);
            n += usize::from(stale);
            stale
        });
        if n > 0 {
            self.failed += n;
            self.report(ReportKind::GaveUp, 0, "", n);
        }
    }

    /// Feeds back what happened to transmit `tx`. `jitter` comes from the caller's RNG.
    pub fn on_outcome(&mut self, tx: u32, outcome: Outcome, now_ms: u64, jitter: u16) {
        let body = match &outcome {
            Outcome::Status { body, .. } => body.as_str(),
            Outcome::Network => "",
        };
        self.on_answer(tx, &outcome, body, now_ms, jitter);
    }

    /// [`Queue::on_outcome`] with the answer's body apart (borrowed from the adapter's
    /// input: `outcome`'s own is not read).
    pub fn on_answer(&mut self, tx: u32, outcome: &Outcome, body: &str, now_ms: u64, jitter: u16) {
        let Some(pos) = self.in_flight.iter().position(|id| *id == tx) else {
            return;
        };
        self.in_flight.swap_remove(pos);
        let mut count = 0;
        for i in &self.items {
            count += usize::from(i.tx == tx);
        }
        let status = match outcome {
            Outcome::Status { status, .. } => *status,
            Outcome::Network => 0,
        };
        // What to report, made once below (one call for every verdict).
        let report = match retry::verdict(outcome) {
            Verdict::Delivered => {
                self.remove_in_tx(tx, None);
                self.delivered += count;
                return;
            }
            Verdict::Rejected if count > 1 && matches!(status, 400 | 422) => {
                let Some(bad) = self.isolate(tx, count, body) else {
                    return;
                };
                (ReportKind::Rejected, bad)
            }
            Verdict::Rejected => {
                self.remove_in_tx(tx, None);
                self.failed += count;
                (ReportKind::Rejected, count)
            }
            Verdict::Retry => {
                let online = self.online;
                let mut wait = 0;
                for item in self.items.iter_mut().filter(|i| i.tx == tx) {
                    item.tx = 0;
                    let d = retry::delay_ms(item.attempts, outcome, jitter);
                    wait = wait.max(d);
                    item.not_before_ms = now_ms + d;
                    item.server_until_ms = now_ms + retry::server_ms(outcome);
                    if online {
                        item.attempts += 1;
                    }
                }
                if status == 429 {
                    // Klaviyo throttles the account, not one request: everything waits.
                    self.pause(now_ms + wait.min(MAX_PAUSE_MS));
                    // Stored: the shop's next page and its other tabs wait as well.
                    let at = self.ops.put(&self.mark_prefix, PAUSE);
                    record::mark(self.paused_until_ms, &[0], at);
                }
                self.failed += count;
                (ReportKind::WillRetry, count)
            }
        };
        self.report(report.0, status, body, report.1);
    }

    /// Removes the items of transmit `tx`: all, or those whose position in it
    /// (`0..count`, the order they were sent in) `only` lists. Not generic: one copy.
    pub(super) fn remove_in_tx(&mut self, tx: u32, only: Option<&[usize]>) {
        let mut nth = 0;
        self.remove_where(|it| {
            it.tx == tx && {
                nth += 1;
                only.is_none_or(|o| lists(o, nth - 1))
            }
        });
        // Calls left: try storage again at the next task, even when none of them was
        // stored (else a page whose first write failed would never store again). If
        // it is still full, that one write fails and we are back to memory only.
        self.storage_full = false;
    }

    /// A bulk request was refused. Klaviyo's error pointers name the bad events
    /// (`/data/attributes/events/data/3/...`): drop those, resend the rest
    /// now. Without usable pointers, halve the batch until the bad event is alone.
    /// The number of bad events, to report as rejected, when pointers named them.
    pub(super) fn isolate(&mut self, tx: u32, count: usize, body: &str) -> Option<usize> {
        let bad = event_pointers(body, count);
        let halve = bad.is_empty();
        if !halve {
            self.remove_in_tx(tx, Some(&bad));
        }
        // The rest go again now (one loop for both cases).
        let half = count.div_ceil(2) as u32;
        for item in &mut self.items {
            if item.tx == tx {
                item.tx = 0;
                if halve {
                    item.batch_cap = half;
                }
            }
        }
        if halve {
            return None;
        }
        self.failed += bad.len();
        Some(bad.len())
    }

    /// When the adapter should next call [`Queue::poll_transmit`]: the earliest time a
    /// waiting call becomes due (and may go, given pauses and rate limits).
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.online || self.consent != Consent::Granted {
            return None;
        }
        // Earliest wish per endpoint class in one cheap pass, then the limiters once.
        let mut earliest = [u64::MAX; ENDPOINTS];
        let delay = self.limits.flush_delay_ms;
        for (_, i) in self.items.iter().enumerate().filter(|(n, i)| {
            !i.in_flight() && self.mine(i) && Some(i.rec) != self.open && !self.held_behind(*n)
        }) {
            let class = i.endpoint as usize;
            let at = i.not_before_ms.max(i.created_ms + delay);
            earliest[class] = earliest[class].min(at);
        }
        let mut next = None;
        for (c, &at) in earliest.iter().enumerate() {
            if at == u64::MAX {
                continue;
            }
            let mut t = at.max(self.limiters[c].ready_at(at));
            if c == Endpoint::Events as usize {
                // Alone or in bulk is decided at send time: wait for both limits.
                t = t.max(self.limiters[Endpoint::BulkEvents as usize].ready_at(at));
            }
            next = Some(next.map_or(t, |n: u64| n.min(t)));
        }
        next.map(|t| t.max(self.paused_until_ms))
    }
}
