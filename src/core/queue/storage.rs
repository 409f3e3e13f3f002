//! The queue's storage: the end of a task writes its record; bounds evict the oldest;
//! records shrink as calls leave; another tab's writes are mirrored; keepalive marks.

use super::*;

impl Queue {
    // ---------------------------------------------------------------- storage

    /// The end of a task: writes its calls as one new record, keeps storage within its
    /// bounds, and rewrites or removes records whose calls left. Then [`Queue::take_ops`].
    /// Only while consent is granted (the client sees to it): pending calls stay in
    /// the open record until then.
    pub fn sync(&mut self, now_ms: u64) {
        if let Some(open) = self.open.take() {
            // Dated when written: calls held while consent was pending went into one
            // record, dated by its first, and another tab put an `identify` of the
            // grant before one it had made since, and sent it first.
            let last = self.latest_date(now_ms);
            let rec = &mut self.records[open as usize];
            rec.created_ms = rec.created_ms.max(now_ms);
            // And after a record read while it was open (consent pending).
            if last > rec.created_ms {
                rec.created_ms = last + 1;
            }
            self.last_created_ms = rec.created_ms;
            let store = !self.storage_full;
            for it in self.items.iter_mut().filter(|it| it.rec == open) {
                it.stored = store;
                if store {
                    self.stored_events += 1;
                    self.stored_bytes += it.text.len();
                }
            }
            self.records[open as usize].dirty = true;
        }
        self.evict_from_storage();
        self.rewrite_dirty();
        self.forget_expired_marks(now_ms);
        // No 429 pauses longer: a stored pause further ahead is a bad value (a clock far
        // ahead when it was written), dropped, and removed below.
        if self.paused_until_ms > now_ms + MAX_PAUSE_MS {
            self.paused_until_ms = 0;
        }
        // Over: removed (another tab's newer pause, heard, is in `paused_until_ms`; one
        // written in the same instant may go, and then the next page does not wait).
        if self.pause_stored && self.paused_until_ms <= now_ms {
            self.pause_stored = false;
            self.ops.remove(&self.mark_prefix, PAUSE);
        }
        self.forget_records();
    }

    /// The records this page wrote (not those it read), removed into `out` (the erasure,
    /// which goes whatever the consent): a denial another tab carried out, heard after
    /// this page wrote some (see `Client::denied_before_start`). A keepalive mark of one
    /// goes with the next page's look at marks (`forget_expired_marks`).
    pub fn remove_own_records(&self, out: &mut StorageOps) {
        for r in self.records.iter().filter(|r| r.mine && r.written) {
            out.remove(&self.prefix, &r.id);
        }
    }

    /// With no call held, nothing refers to the records and profiles any more.
    pub(super) fn forget_records(&mut self) {
        if self.items.is_empty() {
            self.records.clear();
            self.profiles.clear();
            self.open = None;
        }
    }

    /// Marks whose wait is over are forgotten; a mark whose record is gone is removed
    /// from storage too (a record's own removal takes its mark with it).
    /// Removed in place, with the one `Vec::swap_remove` marks use (no copy of their
    /// ids; their order does not matter).
    pub(super) fn forget_expired_marks(&mut self, now_ms: u64) {
        let mut i = 0;
        while let Some((id, until, _)) = self.marks.get(i) {
            if *until > now_ms {
                i += 1;
                continue;
            }
            let live = self
                .find_record(id)
                .is_some_and(|r| self.records[r as usize].written);
            if !live {
                self.ops.remove(&self.mark_prefix, id);
            }
            self.marks.swap_remove(i);
        }
    }

    /// Past the storage bounds: the oldest calls leave storage (this page keeps them).
    pub(super) fn evict_from_storage(&mut self) {
        let l = &self.limits;
        // Only the sender evicts: it then holds and sends what it evicted.
        let within = self.stored_events <= l.max_events && self.stored_bytes <= l.max_bytes;
        if !self.sender || within {
            return;
        }
        let mut evicted = 0;
        for it in self.items.iter_mut().filter(|it| it.stored) {
            if self.stored_events <= l.max_events && self.stored_bytes <= l.max_bytes {
                break;
            }
            it.stored = false;
            self.stored_events -= 1;
            self.stored_bytes -= it.text.len();
            self.records[it.rec as usize].dirty = true;
            evicted += 1;
        }
        if evicted > 0 {
            self.report(ReportKind::Evicted, 0, "", evicted);
        }
    }

    /// Writes every dirty record again from its stored calls, or removes it. Each is
    /// written straight into the storage writes, from a pass over the items.
    pub(super) fn rewrite_dirty(&mut self) {
        for (r, rec) in self.records.iter_mut().enumerate() {
            if !std::mem::take(&mut rec.dirty) {
                continue;
            }
            let of_rec = |it: &&Item| it.stored && it.rec as usize == r;
            if self.items.iter().any(|it| of_rec(&it)) {
                rec.replaced = rec.written;
                rec.written = true;
                let out = self.ops.put(&self.prefix, &rec.id);
                record::header(rec.created_ms, out);
                let mut last = NO_PROFILE;
                for it in self.items.iter().filter(of_rec) {
                    if it.profile == NO_PROFILE {
                        record::push_body(it.idx, it.endpoint, &it.text, out);
                    } else {
                        if last != it.profile {
                            record::push_profile(&self.profiles[it.profile as usize], out);
                            last = it.profile;
                        }
                        record::push_event(it.idx, &it.text, out);
                    }
                }
            } else if rec.written {
                rec.written = false;
                self.ops.remove(&self.prefix, &rec.id);
                if std::mem::take(&mut rec.marked) {
                    self.ops.remove(&self.mark_prefix, &rec.id);
                    // Its mark is gone with it: nothing left to expire.
                    let mut i = 0;
                    while let Some((id, _, _)) = self.marks.get(i) {
                        if *id == rec.id {
                            self.marks.swap_remove(i);
                        } else {
                            i += 1;
                        }
                    }
                }
            }
        }
    }

    /// A stored record or keepalive mark under our prefixes (at start, or on taking
    /// over as sender). Records we cannot read are removed, not fatal. Ignored while
    /// consent is denied (other tabs' data is not ours to hold then).
    pub fn load(&mut self, key: &str, value: &str) {
        if self.consent == Consent::Denied {
            return;
        }
        if let Some(id) = key.strip_prefix(self.prefix.as_str()) {
            self.insert_record(id, value);
        } else if key.strip_suffix("denied") == self.prefix.strip_suffix("q:") {
            // `<prefix>denied`: the time of the shop's last denial (or a page's `0` mark).
            self.denied_ms = text::parse_u64(value).unwrap_or(0);
        } else if let Some(id) = key.strip_prefix(self.mark_prefix.as_str()) {
            match record::read_mark(value) {
                Some((until, _)) if id == PAUSE => self.pause(until),
                Some((until, list)) => self.apply_mark(id, until, list),
                None => self.ops.remove(key, ""),
            }
        }
    }

    /// Every request waits until `until` (a 429 here, or one another page stored under
    /// [`PAUSE`]); whichever tab or page holds it once it is over removes it.
    pub(super) fn pause(&mut self, until: u64) {
        self.paused_until_ms = self.paused_until_ms.max(until);
        self.pause_stored = true;
    }

    pub(super) fn find_record(&self, id: &str) -> Option<u32> {
        // The newest first, in a plain loop (as `intern`).
        let mut r = self.records.len();
        while r > 0 {
            r -= 1;
            if self.records[r].id == id {
                return Some(r as u32);
            }
        }
        None
    }

    /// On becoming or staying the sender: other tabs' records dated before the shop's
    /// last denial are removed, their calls never sent (see `before_denial`). Not at
    /// every sync: a tab that hears the denial's time hears its marker next, and drops
    /// its own calls then, reported; another tab's removal before that would have them
    /// forgotten as if delivered.
    pub fn forget_before_denial(&mut self, now_ms: u64) {
        for r in 0..self.records.len() {
            let rec = &self.records[r];
            if rec.written && !rec.mine && self.before_denial(rec.created_ms, now_ms) {
                self.ops.remove(&self.prefix, &rec.id);
                self.record_removed(r as u32);
            }
        }
    }

    /// Whether a record or a loading window dated `ms` was made before the shop's last
    /// denial (`<prefix>denied`, which every erase keeps, read by `load`): it holds calls
    /// made before the denial, never to be sent (a denying page left it: one that saw
    /// storage as it was before it went into the back/forward cache or froze, its late
    /// events not yet heard, Chromium). Not for a denial ahead of the clock (a clock set
    /// back since: every record made now would be dated before it).
    pub fn before_denial(&self, ms: u64, now_ms: u64) -> bool {
        ms < self.denied_ms && self.denied_ms <= now_ms
    }

    /// Adds the calls of a stored record that we do not hold yet; for a record we know,
    /// forgets stored calls it no longer lists (another tab delivered them).
    pub(super) fn insert_record(&mut self, id: &str, value: &str) {
        let Some((created_ms, lines)) = record::read(value).filter(|(_, l)| !l.is_empty()) else {
            self.ops.remove(&self.prefix, id);
            return;
        };
        // This page's next record is dated after every one it has read (a Lamport
        // clock): an `identify` made after hearing another tab's goes after it.
        self.last_created_ms = self.last_created_ms.max(created_ms);
        let known = self.find_record(id);
        let rec = match known {
            Some(r) => {
                let was_dirty = self.records[r as usize].dirty;
                self.forget_stored(r, &lines);
                // Those removals were another tab's doing: nothing to rewrite for them.
                let rec = &mut self.records[r as usize];
                rec.dirty = was_dirty;
                rec.written = true;
                r
            }
            None => self.new_record(id, created_ms, true),
        };
        // New calls go in by creation time, in line order, where they are read: no
        // second list of them. A record this page knew goes before the calls held with
        // the same time (it is one whose calls it let go: superseded, evicted, so an
        // older one: two `identify` calls in one millisecond came back the other way
        // round, the older profile request last); another tab's goes after them.
        let own = known.is_some();
        let at = self
            .items
            .partition_point(|i| i.created_ms < created_ms || !own && i.created_ms == created_ms);
        let mut added = 0;
        let mut profile = NO_PROFILE;
        for line in lines {
            let (idx, p, endpoint, text) = match line {
                Line::Profile(p) => {
                    profile = self.intern(p);
                    continue;
                }
                Line::Event { idx, fields } => (idx, profile, Endpoint::Events, fields),
                Line::Body {
                    idx,
                    endpoint,
                    body,
                } => (idx, NO_PROFILE, endpoint, body),
            };
            // Held already (those just added are not compared: as before, a line is
            // checked against what was held when the record was read).
            let held = self
                .items
                .iter()
                .enumerate()
                .any(|(j, it)| (j < at || j >= at + added) && it.rec == rec && it.idx == idx);
            if held {
                continue;
            }
            let r = &mut self.records[rec as usize];
            r.next_idx = r.next_idx.max(idx + 1);
            self.add_item(
                at + added,
                rec,
                idx,
                p,
                endpoint,
                text.to_string(),
                created_ms,
                true,
            );
            added += 1;
        }
        if added == 0 {
            return;
        }
        // The marks read before their record: they hold its calls now.
        for (m, until, list) in &self.marks {
            if m == id {
                self.records[rec as usize].marked = true;
                hold(&mut self.items, rec, *until, list);
            }
        }
    }

    pub(super) fn apply_mark(&mut self, id: &str, until: u64, list: &str) {
        if let Some(r) = self.find_record(id) {
            self.records[r as usize].marked = true;
            hold(&mut self.items, r, until, list);
        }
        self.marks.push((id.to_string(), until, list.to_string()));
    }

    /// Makes memory match storage after other tabs may have changed it (on becoming
    /// the sender): adds what is new, forgets stored calls whose record is gone.
    pub fn resync(&mut self, stored: Stored) {
        // The records whose keys are stored are flagged in one pass over the keys (no
        // lists of ids); the written ones not flagged are gone.
        for (k, _) in stored.pairs() {
            let Some(id) = k.strip_prefix(self.prefix.as_str()) else {
                continue;
            };
            for rec in &mut self.records {
                rec.listed |= rec.id == id;
            }
        }
        for r in 0..self.records.len() {
            let rec = &mut self.records[r];
            let listed = std::mem::take(&mut rec.listed);
            if rec.written && !listed {
                self.record_removed(r as u32);
            }
        }
        for (k, v) in stored.pairs() {
            self.load(k, v);
        }
    }

    /// Another tab cleared the whole storage: no call was delivered by it. Every tab keeps
    /// what it holds. The sender, which holds every stored call and alone removes
    /// delivered ones, writes each record again at the next sync; another tab writes its
    /// copies only if it becomes the sender (`set_sender`), as there may be none now.
    /// The cost: a sender that cleared storage itself (no event for it) and delivered
    /// meanwhile leaves a tab that takes over copies to send again, with their ids.
    pub fn on_storage_cleared(&mut self) {
        for rec in &mut self.records {
            if std::mem::take(&mut rec.written) {
                rec.dirty = self.sender;
                rec.marked = false;
            }
        }
    }

    /// Another tab wrote (`Some`) or removed (`None`) one of our keys.
    pub fn on_storage_change(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.load(key, v),
            None => {
                if let Some(r) = key
                    .strip_prefix(self.prefix.as_str())
                    .and_then(|id| self.find_record(id))
                {
                    self.record_removed(r);
                }
            }
        }
    }

    /// Another tab removed record `r`: forget its stored calls (not ours to send).
    pub(super) fn record_removed(&mut self, r: u32) {
        self.forget_stored(r, &[]);
        let rec = &mut self.records[r as usize];
        rec.written = false;
        rec.dirty = false;
    }

    /// Forgets the stored calls of record `r` that are not in flight and whose line
    /// `listed` does not hold (one removal for a record gone and one shrunk).
    fn forget_stored(&mut self, r: u32, listed: &[Line]) {
        self.remove_where(|it| {
            it.rec == r
                && it.stored
                && !it.in_flight()
                && !listed.iter().any(|l| line_idx(l) == Some(it.idx))
        });
    }

    /// The adapter could not write `key` (quota exceeded, storage gone): its calls stay
    /// in memory and are still sent by this page.
    pub fn on_storage_failed(&mut self, key: &str) {
        self.storage_full = true;
        if let Some(r) = key
            .strip_prefix(self.prefix.as_str())
            .and_then(|id| self.find_record(id))
        {
            let rec = &mut self.records[r as usize];
            rec.written = false;
            if rec.replaced {
                // A rewrite failed: the older version must not stay behind, or the next
                // page would send again what was delivered since.
                self.ops.remove(key, "");
            }
            for it in self.items.iter_mut().filter(|it| it.rec == r && it.stored) {
                it.stored = false;
                self.stored_events -= 1;
                self.stored_bytes -= it.text.len();
            }
        }
        if !self.storage_warned {
            self.storage_warned = true;
            self.report(ReportKind::Storage, 0, "", 1);
        }
    }

    /// The page is being hidden or closed: marks the stored calls whose request is
    /// still unanswered, so the next page waits before sending them again.
    pub fn on_hide(&mut self, now_ms: u64) {
        let until = now_ms + KEEPALIVE_WAIT_MS;
        // One list of idx, refilled for each record (no list of lists).
        let mut idx = Vec::new();
        for (r, rec) in self.records.iter_mut().enumerate() {
            idx.clear();
            // Pushed one by one: `extend`'s generic growth code is larger.
            for it in &self.items {
                if it.in_flight() && it.stored && it.rec as usize == r {
                    idx.push(it.idx);
                }
            }
            if !idx.is_empty() {
                rec.marked = true;
                record::mark(until, &idx, self.ops.put(&self.mark_prefix, &rec.id));
            }
        }
    }
}

/// Holds the calls of record `rec` that a mark's `list` names back until `until`.
fn hold(items: &mut [Item], rec: u32, until: u64, list: &str) {
    for it in items
        .iter_mut()
        .filter(|it| it.rec == rec && record::mark_lists(list, it.idx))
    {
        it.not_before_ms = it.not_before_ms.max(until);
    }
}
