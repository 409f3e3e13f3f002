//! The browser build's allocator: power-of-two size classes, each with a free list.
//!
//! Why not dlmalloc (Rust's default on wasm32): it is about 5 KB of wasm, a sixth of
//! the module, to manage memory the page gives back when it closes. Here a block's
//! class comes from the `Layout` Rust passes to `dealloc`, so blocks need no header,
//! and allocation and release are O(1) (a list pop or push, else a bump). The cost is
//! memory: sizes round up to a power of two, and a freed block only serves its own
//! class. That suits a tracker's short strings and a few large buffers that are
//! reused at the same sizes.
//!
//! The logic is [`Bins`], generic over where fresh memory comes from, so native tests
//! run it over a plain buffer; the wasm build feeds it `memory.grow`.

/// Classes 16 B (2^4) ... 2^31 B.
const MIN_SHIFT: u32 = 4;
const CLASSES: usize = 28;

/// Where fresh memory comes from: `more(bytes)` returns the start and length of at
/// least `bytes` new bytes, or `None`.
pub trait Grow {
    fn more(&mut self, bytes: usize) -> Option<(usize, usize)>;
}

pub struct Bins<G> {
    grow: G,
    /// Head of each class's free list (0: empty); a free block holds the next one's
    /// address in its first word.
    free: [usize; CLASSES],
    /// The unused rest of the memory obtained so far.
    next: usize,
    end: usize,
}

impl<G: Grow> Bins<G> {
    pub const fn new(grow: G) -> Bins<G> {
        Bins {
            grow,
            free: [0; CLASSES],
            next: 0,
            end: 0,
        }
    }

    /// The class of a request: its size rounded up to a power of two, at least its
    /// alignment and 16 bytes.
    fn class(size: usize, align: usize) -> Option<usize> {
        let need = size.max(align).max(1 << MIN_SHIFT);
        let shift = need.checked_next_power_of_two()?.trailing_zeros();
        let c = (shift - MIN_SHIFT) as usize;
        (c < CLASSES).then_some(c)
    }

    /// # Safety
    /// The caller (GlobalAlloc) guarantees a valid layout; the returned address is
    /// aligned to the class size or 4 KB, whichever is less (and to `align`), or 0.
    pub unsafe fn alloc(&mut self, size: usize, align: usize) -> usize {
        let Some(c) = Self::class(size, align) else {
            return 0;
        };
        let head = self.free[c];
        if head != 0 {
            // SAFETY: `head` is a block of this class we handed out and got back.
            self.free[c] = unsafe { *(head as *const usize) };
            return head;
        }
        let bytes = 1usize << (c as u32 + MIN_SHIFT);
        // Every block of a class is aligned alike, so a reused one suits any request
        // of that class (Rust asks for 16 at most; 4 KB caps the padding of big ones).
        let align = bytes.min(align.max(4096));
        let mut at = self.next.next_multiple_of(align);
        if self.end == 0 || at + bytes > self.end {
            let Some((start, len)) = self.grow.more(bytes + align) else {
                return 0;
            };
            // New memory right after ours extends it; elsewhere, start over there.
            if start != self.end {
                self.next = start;
            }
            self.end = start + len;
            at = self.next.next_multiple_of(align);
        }
        self.next = at + bytes;
        at
    }

    /// # Safety
    /// `ptr` came from [`Bins::alloc`] with the same `size` and `align`.
    pub unsafe fn dealloc(&mut self, ptr: usize, size: usize, align: usize) {
        if let Some(c) = Self::class(size, align) {
            // SAFETY: the block is ours again and at least 16 bytes long.
            unsafe { *(ptr as *mut usize) = self.free[c] };
            self.free[c] = ptr;
        }
    }

    /// Whether a block of `size` can become `new_size` where it is.
    pub fn same_class(size: usize, new_size: usize, align: usize) -> bool {
        Self::class(size, align) == Self::class(new_size, align)
    }
}

#[cfg(all(feature = "browser", target_arch = "wasm32", not(test)))]
mod wasm {
    use super::{Bins, Grow};
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::UnsafeCell;

    struct MemoryGrow;

    impl Grow for MemoryGrow {
        fn more(&mut self, bytes: usize) -> Option<(usize, usize)> {
            // At least 64 KB pages; ask for a few at once when the need is small.
            let pages = bytes.div_ceil(1 << 16).max(4);
            let old = core::arch::wasm32::memory_grow(0, pages);
            (old != usize::MAX).then_some((old << 16, pages << 16))
        }
    }

    struct Allocator(UnsafeCell<Bins<MemoryGrow>>);

    // SAFETY: wasm32 without threads: only one thread ever allocates.
    unsafe impl Sync for Allocator {}

    unsafe impl GlobalAlloc for Allocator {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            // SAFETY: single-threaded, and the allocator never re-enters itself.
            unsafe { (*self.0.get()).alloc(l.size(), l.align()) as *mut u8 }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, l: Layout) {
            // SAFETY: as above; `ptr` came from `alloc` with this layout.
            unsafe { (*self.0.get()).dealloc(ptr as usize, l.size(), l.align()) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            if Bins::<MemoryGrow>::same_class(l.size(), new_size, l.align()) {
                return ptr;
            }
            // SAFETY: the contract of `GlobalAlloc::realloc`.
            unsafe {
                let new = self.alloc(Layout::from_size_align_unchecked(new_size, l.align()));
                if !new.is_null() {
                    core::ptr::copy_nonoverlapping(ptr, new, l.size().min(new_size));
                    self.dealloc(ptr, l);
                }
                new
            }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Allocator = Allocator(UnsafeCell::new(Bins::new(MemoryGrow)));
}

#[cfg(test)]
#[path = "alloc_tests.rs"]
mod tests;
