//! Large kernel buffers (the packed weights, the gate buffer): 64-byte
//! aligned, and left unfilled until the threads that use them write them.
//!
//! Why not a `Vec`: a panel row of packed weights is one 64-byte cache line
//! and must start on one (else each of its two 32-byte loads per step of k
//! straddles two lines), and `vec![0.0; n]` would write (or fault in) the
//! whole buffer on the calling thread before the workers write it again.
//! The kernel fills each part on the thread that uses it, through
//! [`Buffer::raw`], before any slice of it is made.
//!
//! Tried and not kept: 2 MiB-aligned buffers advised with
//! `madvise(MADV_HUGEPAGE)` (transparent huge pages are `madvise`-only
//! here). At B64-T50-H512 the difference was within this shared machine's
//! run-to-run noise (±20%), so the extra code and the `libc` dependency
//! did not earn their place.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment: one cache line.
const ALIGN: usize = 64;

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
        if self.layout.size() > 0 {
            // SAFETY: allocated in `unfilled` with this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_writable_and_empty() {
        for len in [0, 1, 17, 1 << 20] {
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
