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
