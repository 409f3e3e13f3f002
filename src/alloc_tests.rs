use super::*;

/// Fresh memory from a real buffer, so the tests write through the pointers.
struct Arena {
    buf: Vec<u64>,
    used: usize,
}

impl Grow for &mut Arena {
    fn more(&mut self, bytes: usize) -> Option<(usize, usize)> {
        let base = self.buf.as_ptr() as usize;
        if self.used + bytes > self.buf.len() * 8 {
            return None;
        }
        let at = base + self.used;
        self.used += bytes;
        Some((at, bytes))
    }
}

fn arena(bytes: usize) -> Arena {
    Arena {
        buf: vec![0; bytes / 8],
        used: 0,
    }
}

#[test]
fn sizes_round_up_to_a_power_of_two_class() {
    type B<'a> = Bins<&'a mut Arena>;
    assert_eq!(B::class(1, 1), Some(0));
    assert_eq!(B::class(16, 8), Some(0));
    assert_eq!(B::class(17, 1), Some(1));
    assert_eq!(B::class(4096, 4096), Some(8));
    assert_eq!(B::class(8, 64), Some(2), "alignment counts");
    assert_eq!(B::class(usize::MAX, 1), None);
    assert!(B::same_class(20, 32, 8));
    assert!(!B::same_class(32, 33, 8));
}

#[test]
fn blocks_are_aligned_distinct_reused_and_writable() {
    let mut a = arena(1 << 22);
    let mut b = Bins::new(&mut a);
    let mut live = Vec::new();
    for (i, size) in [1usize, 24, 100, 4000, 70_000, 16, 300_000]
        .into_iter()
        .enumerate()
    {
        let p = unsafe { b.alloc(size, 8) };
        assert_ne!(p, 0);
        let class = size.next_power_of_two().max(16);
        assert_eq!(p % class.min(4096), 0, "aligned to its class, at most 4 KB");
        // Fill it: any overlap with another live block would show below.
        unsafe { std::ptr::write_bytes(p as *mut u8, i as u8, size) };
        live.push((p, size, i as u8));
    }
    for (p, size, tag) in &live {
        let bytes = unsafe { std::slice::from_raw_parts(*p as *const u8, *size) };
        assert!(bytes.iter().all(|b| b == tag), "a block was overwritten");
    }
    let (p, size, _) = live[2];
    unsafe { b.dealloc(p, size, 8) };
    assert_eq!(
        unsafe { b.alloc(120, 8) },
        p,
        "a freed block serves its class again"
    );
}

#[test]
fn running_out_of_memory_returns_null() {
    let mut a = arena(1 << 17);
    let mut b = Bins::new(&mut a);
    assert_ne!(unsafe { b.alloc(100, 8) }, 0);
    assert_eq!(unsafe { b.alloc(1 << 20, 8) }, 0);
}
