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
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};

    #[test]
    fn a_map_kept_at_n_by_eviction_stays_within_the_bound() {
        for max in [3usize, 100, 1_000, 20_000] {
            let mut map: HashMap<u64, u64> = HashMap::new();
            let mut order = VecDeque::new();
            for i in 0..(max as u64 * 6) {
                if map.len() >= max {
                    if let Some(old) = order.pop_front() {
                        map.remove(&old);
                    }
                }
                map.insert(i, i);
                order.push_back(i);
                let held = slots(map.capacity()) * (16 + 1) + order.capacity() * 8;
                assert!(held <= bound(max, 16, 8), "{max}: {held}");
            }
        }
    }
}
