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
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Alignment: one cache line.
const ALIGN: usize = 64;

/// A fixed-length buffer of `T` (`f32`/`f64`), 64-byte aligned.
pub(crate) struct Buffer<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    layout: Layout,
}

// SAFETY: Buffer owns its allocation like a Vec<T>.
unsafe impl<T: Copy + Send> Send for Buffer<T> {}
unsafe impl<T: Copy + Sync> Sync for Buffer<T> {}

impl<T: Copy> Buffer<T> {
    /// Room for `len` values, not yet written: only [`raw`](Self::raw) may
    /// be used until every value has been written through it (the slice
    /// views would read uninitialised memory).
    pub(crate) fn unfilled(len: usize) -> Self {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .expect("buffer size overflows usize");
        let align = std::mem::align_of::<T>().max(ALIGN);
        let layout = Layout::from_size_align(bytes, align).expect("valid layout");
        if bytes == 0 {
            return Buffer {
                ptr: NonNull::dangling(),
                len: 0,
                layout,
            };
        }
        // SAFETY: the size is not zero.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            alloc::handle_alloc_error(layout)
        };
        Buffer { ptr, len, layout }
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

impl<T: Copy> Deref for Buffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` values, written by the owner before any view (see
        // `unfilled`), or a dangling pointer and 0.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_writable_and_empty() {
        for len in [0, 1, 17, 1 << 20] {
            let mut b = Buffer::<f32>::unfilled(len);
            for k in 0..len {
                // SAFETY: in bounds.
                unsafe { b.raw().add(k).write(k as f32) };
            }
            assert_eq!(b.len(), len);
            assert!(b.iter().enumerate().all(|(k, &v)| v == k as f32));
            if len > 0 {
                b[len - 1] = 1.5;
                assert_eq!(b[len - 1], 1.5);
                assert_eq!(b.as_ptr() as usize % ALIGN, 0);
            }
        }
    }
}
