//! The executor's bookkeeping (`executor.rs`), as plain Rust so it is tested natively:
//! a table whose free entries are reused, and the life of one awaited promise's slot
//! (waiting, settled, taken, or abandoned by a future dropped first).

use std::task::{Poll, Waker};

/// Entries by index; a free entry is reused before the table grows, so ids stay small
/// and no hashing sits on the path of every wake.
pub struct Table<T> {
    entries: Vec<Option<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    /// Puts `value` in the first free entry (or a new one) and returns its index.
    pub fn insert(&mut self, value: T) -> usize {
        self.insert_with(|_| value)
    }

    /// As [`Table::insert`], the value made knowing its index.
    pub fn insert_with(&mut self, make: impl FnOnce(usize) -> T) -> usize {
        match self.entries.iter().position(Option::is_none) {
            Some(free) => {
                self.entries[free] = Some(make(free));
                free
            }
            None => {
                let at = self.entries.len();
                self.entries.push(Some(make(at)));
                at
            }
        }
    }

    pub fn get(&self, at: usize) -> Option<&T> {
        self.entries.get(at).and_then(Option::as_ref)
    }

    pub fn remove(&mut self, at: usize) -> Option<T> {
        self.entries.get_mut(at).and_then(Option::take)
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries in use or free: what the table has grown to.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }
}

/// One awaited promise.
pub enum Slot<V> {
    /// Not settled yet; the waker of the task awaiting it, once polled.
    Waiting(Option<Waker>),
    Done(V),
    /// Its future was dropped first: freed when the promise settles.
    Abandoned,
}

/// The slots of the promises awaited now.
pub struct Slots<V> {
    table: Table<Slot<V>>,
}

impl<V> Default for Slots<V> {
    fn default() -> Self {
        Slots {
            table: Table::default(),
        }
    }
}

impl<V> Slots<V> {
    /// A slot for a promise about to be awaited.
    pub fn claim(&mut self) -> usize {
        self.table.insert(Slot::Waiting(None))
    }

    /// The promise of `slot` settled with `value`: the waker to call, if a task waits.
    /// An abandoned slot is freed, and its value dropped.
    pub fn settle(&mut self, slot: usize, value: V) -> Option<Waker> {
        match self.table.remove(slot)? {
            Slot::Waiting(waker) => {
                self.put(slot, Slot::Done(value));
                waker
            }
            Slot::Done(old) => {
                // Not reachable: a promise settles once. Keep the first value.
                self.put(slot, Slot::Done(old));
                None
            }
            Slot::Abandoned => None,
        }
    }

    /// A poll of the future awaiting `slot`: its value once settled (the slot is then
    /// free for another promise), else pending with `waker` kept.
    pub fn poll(&mut self, slot: usize, waker: &Waker) -> Poll<Option<V>> {
        match self.table.remove(slot) {
            Some(Slot::Done(value)) => Poll::Ready(Some(value)),
            Some(Slot::Waiting(_)) => {
                self.put(slot, Slot::Waiting(Some(waker.clone())));
                Poll::Pending
            }
            Some(Slot::Abandoned) => {
                self.put(slot, Slot::Abandoned);
                Poll::Ready(None)
            }
            None => Poll::Ready(None),
        }
    }

    /// The future awaiting `slot` was dropped before it had the value: a settled slot
    /// is freed now, a waiting one when its promise settles.
    pub fn abandon(&mut self, slot: usize) {
        match self.table.remove(slot) {
            Some(Slot::Waiting(_)) => self.put(slot, Slot::Abandoned),
            Some(other @ Slot::Abandoned) => self.put(slot, other),
            Some(Slot::Done(_)) | None => {}
        }
    }

    /// Slots in use (waiting, settled and not yet taken, or abandoned).
    pub fn in_use(&self) -> usize {
        self.table.len()
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    fn put(&mut self, slot: usize, value: Slot<V>) {
        if let Some(e) = self.table.entries.get_mut(slot) {
            *e = Some(value);
        }
    }
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
