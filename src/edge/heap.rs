//! What the isolate's maps hold on the heap, so that their memory can be stated in
//! bytes, not only in entries.
//!
//! A `HashMap` (hashbrown) has a power-of-two number of slots, each an entry and one
//! control byte, and holds at most 7/8 of them. Removing entries from a full map leaves
//! tombstones, and it grows again unless its entries fit in half of what it holds:
//! so a map kept at `n` entries by eviction settles at the smallest table where `n + 1`
//! is at most 7/16 of the slots. A `VecDeque` of `n` grows to the next power of two.

/// The slots of a table of `capacity` (as `HashMap::capacity` reports it).
pub fn slots(capacity: usize) -> usize {
    if capacity == 0 {
        0
    } else {
        (capacity * 8 / 7).next_power_of_two()
    }
}

/// The slots a map kept at `max_entries` by eviction settles at.
pub const fn settled_slots(max_entries: usize) -> usize {
    let mut slots = 16;
    while (slots * 7 / 8) / 2 < max_entries + 1 {
        slots *= 2;
    }
    slots
}

/// The most a map of `entry`-byte entries and a queue of `queued`-byte items, kept at
/// `max_entries` by eviction, hold once settled.
pub const fn bound(max_entries: usize, entry: usize, queued: usize) -> usize {
    settled_slots(max_entries) * (entry + 1) + max_entries.next_power_of_two() * queued
}

#[cfg(test)]
#[path = "heap_tests.rs"]
mod tests;
