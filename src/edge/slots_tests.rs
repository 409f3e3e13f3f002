//! The executor's slot life-cycle, natively: reuse after settling, a dropped future's
//! slot freed, no wake after a drop, and many tasks at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};

use super::*;

/// A waker that counts its wakes.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn waker() -> (Waker, Arc<Count>) {
    let c = Arc::new(Count(AtomicUsize::new(0)));
    (Waker::from(c.clone()), c)
}

#[test]
fn a_slot_is_reused_once_its_value_is_taken() {
    let mut s: Slots<u32> = Slots::default();
    let (w, woken) = waker();
    let a = s.claim();
    assert_eq!(s.poll(a, &w), Poll::Pending);
    let wake = s.settle(a, 7).expect("the task waits");
    wake.wake();
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    assert_eq!(s.poll(a, &w), Poll::Ready(Some(7)));
    assert_eq!(s.in_use(), 0);
    let b = s.claim();
    assert_eq!(b, a, "the free slot serves the next promise");
    assert_eq!(s.capacity(), 1);
}

#[test]
fn a_promise_that_settles_before_the_first_poll_is_ready_at_once() {
    let mut s: Slots<&str> = Slots::default();
    let (w, woken) = waker();
    let a = s.claim();
    assert!(s.settle(a, "early").is_none(), "no task polled it yet");
    assert_eq!(s.poll(a, &w), Poll::Ready(Some("early")));
    assert_eq!(woken.0.load(Ordering::SeqCst), 0);
}

#[test]
fn a_dropped_future_frees_its_slot_and_a_late_settle_wakes_nobody() {
    let mut s: Slots<String> = Slots::default();
    let (w, woken) = waker();
    let a = s.claim();
    assert_eq!(s.poll(a, &w), Poll::Pending);
    s.abandon(a);
    assert_eq!(s.in_use(), 1, "held until the promise settles");
    // The slot is not handed out while its promise may still call back.
    let b = s.claim();
    assert_ne!(a, b);
    assert!(s.settle(a, "late".into()).is_none(), "no wake after a drop");
    assert_eq!(woken.0.load(Ordering::SeqCst), 0);
    assert_eq!(s.in_use(), 1, "freed: only b is left");
    assert_eq!(s.claim(), a, "and reused");
    // Dropped after settling, before the value was taken: freed at once.
    let c = s.claim();
    s.settle(c, "unread".into());
    s.abandon(c);
    assert_eq!(s.claim(), c);
}

#[test]
fn a_stray_or_second_settle_changes_nothing() {
    let mut s: Slots<u8> = Slots::default();
    let (w, _) = waker();
    assert!(s.settle(3, 1).is_none(), "no such slot");
    let a = s.claim();
    s.settle(a, 1);
    assert!(s.settle(a, 2).is_none());
    assert_eq!(s.poll(a, &w), Poll::Ready(Some(1)), "the first value stays");
    assert_eq!(s.poll(a, &w), Poll::Ready(None), "taken");
}

#[test]
fn many_tasks_at_once_each_get_their_own_value() {
    let mut s: Slots<usize> = Slots::default();
    let (w, woken) = waker();
    let slots: Vec<usize> = (0..1000).map(|_| s.claim()).collect();
    for &slot in &slots {
        assert_eq!(s.poll(slot, &w), Poll::Pending);
    }
    // Settled out of order (a fixed shuffle), each with a value naming its promise.
    let mut order: Vec<usize> = (0..slots.len()).collect();
    let mut x = 0x9e37_79b9_u32;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        order.swap(i, x as usize % (i + 1));
    }
    for &i in &order {
        s.settle(slots[i], i * 10).expect("each waits").wake();
    }
    assert_eq!(woken.0.load(Ordering::SeqCst), 1000);
    for (i, &slot) in slots.iter().enumerate() {
        assert_eq!(s.poll(slot, &w), Poll::Ready(Some(i * 10)));
    }
    assert_eq!(s.in_use(), 0);
    assert_eq!(s.capacity(), 1000, "grown once, to the most in flight");
}

#[test]
fn the_task_table_reuses_finished_tasks_entries() {
    let mut t: Table<&str> = Table::default();
    let a = t.insert("a");
    let b = t.insert("b");
    assert_eq!(t.remove(a), Some("a"));
    assert_eq!(t.get(a), None, "a late wake finds nothing");
    assert_eq!(t.insert("c"), a);
    assert_eq!(t.get(b), Some(&"b"));
    assert_eq!((t.len(), t.capacity()), (2, 2));
    assert_eq!(t.remove(9), None);
}
