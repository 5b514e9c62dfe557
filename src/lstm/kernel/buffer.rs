//! Kernel buffers (the packed weights, the gate buffer): 64-byte
//! aligned, and left unfilled until the threads that use them write them.
//!
//! Why not a `Vec`: a panel row of packed weights is one 64-byte cache line
//! and must start on one (else each of its two 32-byte loads per step of k
//! straddles two lines), and `vec![0.0; n]` would write (or fault in) the
//! whole buffer on the calling thread before the workers write it again.
//! The kernel fills each part on the thread that uses it, through
//! [`Buffer::raw`], before any slice of it is made.
//!
//! Buffers are reused: a dropped buffer of at least 64 KiB goes to a
//! process-wide cache (at most 256 MiB in all, the oldest freed first) and
//! the next request it fits takes it. A new allocation of that size comes
//! from `mmap` and faults in every page on first touch; at B128-T25-H1024
//! the gate buffer (52 MB) and the packed weights (32 MiB) are 21,000
//! pages, 13-26 ms of page faults and zeroing in every layer call (measured:
//! the input projection at B64-T50-H512 on one thread, 69 ms into a reused
//! buffer, 83-91 ms into a new one). Why from 64 KiB: with a bound of
//! 1 MiB, at B1-T200-H128 the gate buffer (400 KiB) and the packed weights
//! (256 KiB each) come from `mmap` in every call, and `perf record` of
//! `lstm-parity bench --threads 1` puts 12-15% of the samples in the
//! kernel's page-fault path; with 64 KiB, 0.3%. (glibc's own threshold
//! for `mmap` is 128 KiB.) onnxruntime's arena does the same.
//! [`release_cached_buffers`] frees the cache.
//!
//! Tried and not kept: 2 MiB-aligned buffers advised with
//! `madvise(MADV_HUGEPAGE)` (transparent huge pages are `madvise`-only
//! here). At B64-T50-H512 the difference was within this shared machine's
//! run-to-run noise (±20%), so the extra code and the `libc` dependency
//! did not earn their place.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::Mutex;

/// Alignment: one cache line.
const ALIGN: usize = 64;
/// Buffers from this size on are cached when dropped (smaller ones are
/// left to the allocator, which keeps them in its heap).
const CACHED_FROM: usize = 64 << 10;
/// The most the cache keeps, in bytes.
const CACHE_BYTES: usize = 256 << 20;

/// One allocation in the cache.
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a cached block is owned by the cache alone, like a Box<[u8]>.
unsafe impl Send for Block {}

/// Freed large allocations, oldest first.
struct Cache {
    blocks: Vec<Block>,
    bytes: usize,
    limit: usize,
}

impl Cache {
    const fn new(limit: usize) -> Self {
        Cache {
            blocks: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// The smallest cached block that holds `layout` without wasting more
    /// than its own size again (at most twice the bytes asked for).
    fn take(&mut self, layout: Layout) -> Option<Block> {
        let fits = |b: &Block| {
            b.layout.align() == layout.align()
                && b.layout.size() >= layout.size()
                && b.layout.size() / 2 <= layout.size()
        };
        let (at, _) = self
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| fits(b))
            .min_by_key(|(_, b)| b.layout.size())?;
        let block = self.blocks.remove(at);
        self.bytes -= block.layout.size();
        Some(block)
    }

    /// Keep `block`, then [`shrink_to`](Self::shrink_to) the limit. A
    /// block larger than the whole limit is freed at once instead.
    fn put(&mut self, block: Block) {
        if block.layout.size() > self.limit {
            // SAFETY: allocated by `alloc::alloc` with this layout.
            unsafe { alloc::dealloc(block.ptr.as_ptr(), block.layout) };
            return;
        }
        self.bytes += block.layout.size();
        self.blocks.push(block);
        self.shrink_to(self.limit);
    }

    /// Free the oldest blocks until at most `bytes` are kept.
    fn shrink_to(&mut self, bytes: usize) {
        while self.bytes > bytes {
            let old = self.blocks.remove(0);
            self.bytes -= old.layout.size();
            // SAFETY: allocated by `alloc::alloc` with this layout, and no
            // longer in the cache.
            unsafe { alloc::dealloc(old.ptr.as_ptr(), old.layout) };
        }
    }
}

/// The process-wide cache.
static CACHE: Mutex<Cache> = Mutex::new(Cache::new(CACHE_BYTES));

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    // A panic while the lock is held leaves the list consistent.
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Free the large kernel buffers kept for reuse (up to 256 MiB) after the
/// last layer run. The next run allocates afresh.
pub fn release_cached_buffers() {
    cache().shrink_to(0);
}

/// A fixed-length buffer of `T` (`f32`/`f64`), 64-byte aligned.
pub(crate) struct Buffer<T: Copy> {
    ptr: NonNull<T>,
    layout: Layout,
}

// SAFETY: Buffer owns its allocation like a Vec<T>.
unsafe impl<T: Copy + Send> Send for Buffer<T> {}
unsafe impl<T: Copy + Sync> Sync for Buffer<T> {}

impl<T: Copy> Buffer<T> {
    /// Room for `len` values, not yet written: they are read and written
    /// only through [`raw`](Self::raw), each value written before it is
    /// read.
    pub(crate) fn unfilled(len: usize) -> Self {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .expect("buffer size overflows usize");
        let align = std::mem::align_of::<T>().max(ALIGN);
        let layout = Layout::from_size_align(bytes, align).expect("valid layout");
        if bytes == 0 {
            return Buffer {
                ptr: NonNull::dangling(),
                layout,
            };
        }
        if bytes >= CACHED_FROM {
            if let Some(block) = cache().take(layout) {
                return Buffer {
                    ptr: block.ptr.cast(),
                    layout: block.layout,
                };
            }
        }
        // SAFETY: the size is not zero.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            alloc::handle_alloc_error(layout)
        };
        Buffer { ptr, layout }
    }

    /// The start of the buffer, for writes from several threads (each to
    /// its own part) and for filling an [`unfilled`](Buffer::unfilled) one.
    pub(crate) fn raw(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T: Copy> Drop for Buffer<T> {
    fn drop(&mut self) {
        if self.layout.size() >= CACHED_FROM {
            cache().put(Block {
                ptr: self.ptr.cast(),
                layout: self.layout,
            });
        } else if self.layout.size() > 0 {
            // SAFETY: allocated in `unfilled` with this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(size: usize) -> Block {
        let layout = Layout::from_size_align(size, ALIGN).unwrap();
        // SAFETY: the size is not zero.
        let ptr = NonNull::new(unsafe { alloc::alloc(layout) }).unwrap();
        Block { ptr, layout }
    }

    #[test]
    fn the_cache_reuses_the_closest_fit_and_keeps_to_its_limit() {
        let mut cache = Cache::new(10 << 20);
        let asked = |size| Layout::from_size_align(size, ALIGN).unwrap();
        let (four, three) = (block(4 << 20), block(3 << 20));
        let (at_four, at_three) = (four.ptr, three.ptr);
        cache.put(four);
        cache.put(three);
        assert_eq!(cache.bytes, 7 << 20);
        // Too big for both, or so small that either would waste > half.
        assert!(cache.take(asked(5 << 20)).is_none());
        assert!(cache.take(asked(1 << 20)).is_none());
        // The smaller of the two that fit.
        let got = cache.take(asked(2 << 20)).unwrap();
        assert_eq!((got.ptr, got.layout.size()), (at_three, 3 << 20));
        // Another alignment does not match.
        assert!(cache
            .take(Layout::from_size_align(4 << 20, 4096).unwrap())
            .is_none());
        cache.put(got);
        // Over the limit: the oldest (the 4 MiB block) goes.
        cache.put(block(5 << 20));
        assert_eq!(cache.bytes, 8 << 20);
        assert!(cache.blocks.iter().all(|b| b.ptr != at_four));
        // Larger than the whole limit: freed at once.
        cache.put(block(11 << 20));
        assert_eq!(cache.bytes, 8 << 20);
        cache.shrink_to(0);
        assert_eq!((cache.bytes, cache.blocks.len()), (0, 0));
    }

    #[test]
    fn aligned_writable_and_empty() {
        for len in [0, 1, 17, 1 << 20, 3 << 20] {
            let b = Buffer::<f32>::unfilled(len);
            // SAFETY: in bounds; every value is written before it is read.
            unsafe {
                for k in 0..len {
                    b.raw().add(k).write(k as f32);
                }
                for k in 0..len {
                    assert_eq!(*b.raw().add(k), k as f32);
                }
            }
            if len > 0 {
                assert_eq!(b.raw() as usize % ALIGN, 0);
            }
        }
    }
}
