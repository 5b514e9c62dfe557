//! Threads for the layer kernel: how many, how work is split, and the
//! barrier that separates time steps.
//!
//! The kernel runs one thread per share of the work for the whole layer
//! (not a task per step; the threads are kept between calls, see
//! [`pool`](super::pool)): a step is short (tens of microseconds at B=16,
//! H=256), so handing out work per step would cost more than it saves.
//! Between steps the threads meet at a [`SpinBarrier`].

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Environment variable that sets the default number of threads
/// (`1` = single-threaded). Unset or invalid: the machine's available
/// parallelism.
pub const THREADS_ENV: &str = "LSTM_PARITY_THREADS";

/// The default number of threads: [`THREADS_ENV`] if set to a positive
/// integer, else [`std::thread::available_parallelism`].
pub fn default_threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Split `0..len` into `parts` consecutive ranges of nearly equal size
/// (some may be empty). Boundaries are multiples of 8 when every part
/// still gets at least 8, so that each thread's gate columns start on a
/// SIMD-vector boundary (8 `f32` lanes).
pub fn split(len: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let align = if len >= 8 * parts { 8 } else { 1 };
    let chunk = len.div_ceil(parts).div_ceil(align) * align;
    (0..parts)
        .map(|k| (k * chunk).min(len)..((k + 1) * chunk).min(len))
        .collect()
}

/// A reusable barrier for a fixed number of threads that spins briefly,
/// then sleeps.
///
/// `std::sync::Barrier` always parks on a condition variable; waking costs
/// tens of microseconds, as much as a whole step at small shapes, so this
/// one first spins (the other threads usually arrive within microseconds).
/// It then sleeps rather than spinning on: on a shared, oversubscribed
/// machine the thread being waited for may be descheduled, and a spinning
/// (or merely yielding) waiter holds the core it needs.
pub struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    /// Threads asleep in `wait`, guarded with the condition variable.
    sleepers: Mutex<usize>,
    wake: Condvar,
}

/// Spin iterations before sleeping (tens of microseconds).
const SPINS: u32 = 1 << 14;

impl SpinBarrier {
    /// A barrier for `threads` threads.
    pub fn new(threads: usize) -> Self {
        SpinBarrier {
            threads: threads.max(1),
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            sleepers: Mutex::new(0),
            wake: Condvar::new(),
        }
    }

    /// Block until all threads have called `wait` for this round. Every
    /// write made before `wait` by any thread is visible to every thread
    /// after it returns.
    pub fn wait(&self) {
        if self.threads == 1 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // Last to arrive: reset the count, then release the others. The
            // increment happens under the lock so that a thread about to
            // sleep either sees it or is already waiting for the notification.
            self.arrived.store(0, Ordering::Relaxed);
            let sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
            self.generation.fetch_add(1, Ordering::Release);
            if *sleepers > 0 {
                self.wake.notify_all();
            }
            return;
        }
        for _ in 0..SPINS {
            if self.generation.load(Ordering::Acquire) != generation {
                return;
            }
            std::hint::spin_loop();
        }
        let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        *sleepers += 1;
        while self.generation.load(Ordering::Acquire) == generation {
            sleepers = self.wake.wait(sleepers).unwrap_or_else(|e| e.into_inner());
        }
        *sleepers -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_in_order() {
        for len in [0, 1, 5, 16, 31, 128, 256, 1000] {
            for parts in 1..5 {
                let ranges = split(len, parts);
                assert_eq!(ranges.len(), parts);
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges.last().unwrap().end, len);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
            }
        }
        assert_eq!(split(512, 2), vec![0..256, 256..512]);
        assert_eq!(split(100, 3), vec![0..40, 40..80, 80..100]);
    }

    #[test]
    fn barrier_orders_rounds() {
        let barrier = SpinBarrier::new(3);
        let counter = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for round in 0..100 {
                        counter.fetch_add(1, Ordering::SeqCst);
                        barrier.wait();
                        assert_eq!(counter.load(Ordering::SeqCst), 3 * (round + 1));
                        barrier.wait();
                    }
                });
            }
        });
    }
}
