//! Worker threads kept between layer runs.
//!
//! The kernel runs `threads` workers at once for the whole layer (they meet
//! at barriers between steps). Starting them with `std::thread::scope` on
//! every call cost 60-80 µs per spawn and join on this machine (measured:
//! 100 empty scoped spawns), about a tenth of a B1-T200-H128 layer
//! (0.8 ms), and the calling thread then waited at the first barrier for
//! the new one. Here the extra threads are started once, wait for work by
//! spinning for [`SPIN`] after each job (so back-to-back layer calls find
//! them awake, as onnxruntime's and OpenMP's pools do), then sleep on a
//! condition variable.
//!
//! One caller at a time uses the pool: a second thread calling while it is
//! busy gets scoped threads of its own, so concurrent callers never
//! wait for each other or share workers.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// A job as the workers see it: the caller's closure with its lifetime
/// erased. The caller does not return before every worker has finished
/// with it (see [`run`]).
type Job = *const (dyn Fn(usize) + Sync);

/// What one worker is given to do.
struct Task {
    job: Job,
    index: usize,
    done: *const Done,
}

// SAFETY: the pointers are only used while the posting caller waits in
// `run`, which keeps both alive; the closure is `Sync`.
unsafe impl Send for Task {}

/// Completion of one call: workers still running, and whether one panicked.
struct Done {
    running: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// One worker's mailbox.
struct Slot {
    task: Mutex<Option<Task>>,
    /// Bumped for every task posted; the worker spins on it.
    posted: AtomicUsize,
    /// The worker is asleep on `wake` (set and cleared under `task`'s lock).
    asleep: AtomicBool,
    wake: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data under these locks stays consistent across a panic.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Slot {
    fn post(&self, task: Task) {
        let mut slot = lock(&self.task);
        *slot = Some(task);
        self.posted.fetch_add(1, Ordering::Release);
        if self.asleep.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Wait for the task after the `seen`-th, spinning first.
    fn next(&self, seen: usize) -> Task {
        let started = Instant::now();
        let mut spins = 0u32;
        while self.posted.load(Ordering::Acquire) == seen {
            std::hint::spin_loop();
            spins += 1;
            if spins % 1024 == 0 && started.elapsed() > SPIN {
                let mut slot = lock(&self.task);
                self.asleep.store(true, Ordering::Relaxed);
                while self.posted.load(Ordering::Acquire) == seen {
                    slot = self.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
                }
                self.asleep.store(false, Ordering::Relaxed);
                return slot.take().expect("a posted task");
            }
        }
        lock(&self.task).take().expect("a posted task")
    }
}

/// The started workers (their mailboxes).
static POOL: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());

fn worker_loop(slot: Arc<Slot>) {
    let mut seen = 0;
    loop {
        let task = slot.next(seen);
        seen += 1;
        // SAFETY: the caller that posted the task waits in `run` until
        // `running` reaches zero, so the job and `done` are alive here.
        let done = unsafe { &*task.done };
        let job = unsafe { &*task.job };
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| job(task.index))) {
            lock(&done.panic).get_or_insert(payload);
        }
        // Last touch of `done`: the caller may return right after this.
        done.running.fetch_sub(1, Ordering::Release);
    }
}

/// Run `job(k)` for every `k < threads` at the same time: `k = 0` on the
/// calling thread, the others on pool workers (or on scoped threads if
/// another caller holds the pool). Returns when all have returned; a panic
/// in any of them is resumed here.
pub(crate) fn run(threads: usize, job: &(dyn Fn(usize) + Sync)) {
    if threads <= 1 {
        job(0);
        return;
    }
    let mut pool = match POOL.try_lock() {
        Ok(pool) => pool,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return scoped(threads, job),
    };
    while pool.len() < threads - 1 {
        let slot = Arc::new(Slot {
            task: Mutex::new(None),
            posted: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            wake: Condvar::new(),
        });
        let mine = Arc::clone(&slot);
        let started = std::thread::Builder::new()
            .name(format!("lstm-parity-{}", pool.len() + 1))
            .spawn(move || worker_loop(mine));
        if started.is_err() {
            drop(pool);
            return scoped(threads, job); // (that will report the failure)
        }
        pool.push(slot);
    }
    let done = Done {
        running: AtomicUsize::new(threads - 1),
        panic: Mutex::new(None),
    };
    // SAFETY (the erased lifetime): this function does not return, nor
    // unwind, before `running` is zero, i.e. before every worker is done
    // with `job` and `done`.
    let erased: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(job) };
    for (k, slot) in pool.iter().take(threads - 1).enumerate() {
        slot.post(Task {
            job: erased,
            index: k + 1,
            done: &done,
        });
    }
    let mine = panic::catch_unwind(AssertUnwindSafe(|| job(0)));
    let mut spins = 0u32;
    while done.running.load(Ordering::Acquire) > 0 {
        spins = spins.wrapping_add(1);
        if spins % 1024 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    drop(pool);
    if let Err(payload) = mine {
        panic::resume_unwind(payload);
    }
    let theirs = lock(&done.panic).take();
    if let Some(payload) = theirs {
        panic::resume_unwind(payload);
    }
}

/// [`run`] on threads started for this call.
fn scoped(threads: usize, job: &(dyn Fn(usize) + Sync)) {
    std::thread::scope(|s| {
        for k in 1..threads {
            s.spawn(move || job(k));
        }
        job(0);
    });
}

#[cfg(test)]
mod tests {
    use super::super::parallel::SpinBarrier;
    use super::*;

    #[test]
    fn every_index_runs_once_and_concurrently() {
        for threads in [1, 2, 3, 2, 4] {
            let seen: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
            // A barrier needs every index running at once.
            let barrier = SpinBarrier::new(threads);
            run(threads, &|k| {
                barrier.wait();
                seen[k].fetch_add(1, Ordering::SeqCst);
                barrier.wait();
            });
            let counts: Vec<usize> = seen.iter().map(|s| s.load(Ordering::SeqCst)).collect();
            assert_eq!(counts, vec![1; threads]);
        }
    }

    #[test]
    fn concurrent_callers_each_get_their_threads() {
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let barrier = SpinBarrier::new(2);
                        let sum = AtomicUsize::new(0);
                        run(2, &|k| {
                            barrier.wait();
                            sum.fetch_add(k + 1, Ordering::SeqCst);
                        });
                        assert_eq!(sum.load(Ordering::SeqCst), 3);
                    }
                });
            }
        });
    }

    #[test]
    fn a_worker_panic_reaches_the_caller_and_the_pool_still_works() {
        let caught = panic::catch_unwind(|| {
            run(2, &|k| {
                if k == 1 {
                    panic!("worker one fails");
                }
            })
        });
        let payload = caught.expect_err("the panic is resumed");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"worker one fails"));
        let sum = AtomicUsize::new(0);
        run(2, &|k| {
            sum.fetch_add(k + 1, Ordering::SeqCst);
        });
        assert_eq!(sum.load(Ordering::SeqCst), 3);
    }
}
