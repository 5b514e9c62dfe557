//! The fast kernel for one layer over a whole sequence: how the canonical
//! semantics of the parent module are computed quickly. Its parts:
//! `recurrent` (the packed-weight AVX2/FMA products), `exact_math` and
//! `fast_math` (vectorised activations), `buffer` (aligned, reused
//! buffers), `pool` and `parallel` (the step threads and their barrier).
//!
//! Work per layer, in this order:
//!
//! 1. **Input projection of every step at once**: `xw = x @ w_x + bias`, one
//!    GEMM of `[batch*time, input] x [input, 4*units]`. The threads split its
//!    rows (possibly more threads than step 2 uses: it needs one barrier, not
//!    one per step). `xw` then *is* the gate buffer: step `t` adds `h @ w_h`
//!    into rows `(b, t)` in place, so no other per-step buffer is needed.
//! 2. **Per step**, each thread owns a consecutive share of the units: it
//!    adds `h_prev @ w_h[:, its columns of each gate block]` into its part of
//!    the gate rows (GEMM, `beta = 1`), then runs the fused cell pass over
//!    exactly those columns (activations, new `c`, output `h`) for every batch
//!    row, writing its units of `c` and the next `h`. A projection, if any, is
//!    a second GEMM per step after a barrier (it needs every unit of `m`).
//!    With at least `MIN_ROWS_PER_THREAD` batch rows per thread, each thread
//!    instead owns a share of the batch rows and computes every unit of
//!    them: the sequences are independent, so no thread ever waits for
//!    another (the input projection's rows follow the same split).
//! 3. With the unit split, the threads meet at a barrier; the two `h`
//!    buffers swap roles.
//!
//! The products: on AVX2/FMA processors (`float32` and `float64`) the
//! packed-weight kernel of `recurrent` (weights packed once per call of
//! `run_layer`, by the threads themselves before step 1, each its share,
//! then a barrier; or once per split for a [`Prepared`](super::Prepared)
//! stack, whose [`PackSlot`]s keep them between calls); otherwise, and
//! for the projection, the `gemm` crate. Nothing is allocated per step.
//! With the packed kernel each output value is computed by the same
//! instructions whatever the thread count or split, so results are
//! bit-identical across thread counts (the exact activations' vector path,
//! which takes a thread's units eight at a time, gives the scalar calls'
//! bits: checked at first use, `exact_math::available`); the `gemm`
//! fallback may block its sums differently for different column counts
//! (last-bit differences, within the oracle tests).
//!
//! Buffers are shared between the threads through raw pointers: every write
//! goes to columns (or, in step 1, rows) that only the writing thread owns,
//! and every read of another thread's columns happens after a barrier that
//! follows the write. Each `unsafe` block relies on exactly that.

use std::any::TypeId;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, CowArray, Ix1, Ix2};

use super::{Activation, Layer, MaskedOutput, Real, RunOptions, State, StepTrace};
use buffer::Buffer;
use parallel::{split, SpinBarrier};
use recurrent::PackedRecurrent;

mod buffer;
mod exact_math;
mod fast_math;
mod parallel;
mod pool;
pub(crate) mod recurrent;

pub use buffer::release_cached_buffers;
pub use parallel::{default_threads, THREADS_ENV};

/// Batch rows per step thread from which the threads split the batch
/// instead of the units (see `run_layer`). Each thread then runs its own
/// sequences and never waits for the other: on this project's shared
/// 2-core machine, interleaved single runs against the unit split gave
/// B16-T100-H256 13.5 / 22.7 ms (min / median) against 19.0 / 44.8; at the
/// big shapes two comparisons each went either way (B64-T50-H512 106 / 121
/// against 99 / 129, then 97 / 120 against 109 / 130; B128-T25-H1024
/// 488 / 554 against 547 / 572, then 515 / 529 against 504 / 517), and
/// with no barrier a descheduled thread delays only its own rows. The
/// bound of 8 is a choice, not tuned:
/// with fewer rows per thread, each pass over a weight panel would feed
/// only a few rows.
const MIN_ROWS_PER_THREAD: usize = 8;

/// Extra elements per row of the padded copy of `w_h` (see `run_layer`).
const W_H_PAD: usize = 16;

/// Both weight matrices of one layer packed for the AVX2 kernel, for
/// one split of the units between the step threads (the panels' grouping
/// depends on it).
struct Packs<T: Real> {
    unit_shares: Vec<Range<usize>>,
    w_h: PackedRecurrent<T>,
    w_x: PackedRecurrent<T>,
}

/// Where a prepared layer keeps its packed weights between runs: the last
/// split's packs. A run with another split (another thread count, or a
/// batch that changes between the unit and the batch split) packs anew and
/// replaces them.
pub(crate) struct PackSlot<T: Real>(Mutex<Option<Arc<Packs<T>>>>);

impl<T: Real> Default for PackSlot<T> {
    fn default() -> Self {
        PackSlot(Mutex::new(None))
    }
}

impl<T: Real> PackSlot<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Packs<T>>>> {
        // A panic while the lock is held leaves an Option, consistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The packs for `unit_shares`, if kept.
    fn get(&self, unit_shares: &[Range<usize>]) -> Option<Arc<Packs<T>>> {
        self.lock()
            .as_ref()
            .filter(|p| p.unit_shares == unit_shares)
            .cloned()
    }

    /// Which packs are kept, by address (for tests).
    #[cfg(test)]
    pub(crate) fn kept(&self) -> Option<*const ()> {
        self.lock().as_ref().map(|p| Arc::as_ptr(p).cast())
    }
}

/// What one layer run returns: outputs `[batch, time, out]`, the final
/// state, and the per-step states when recorded.
pub(crate) type LayerOutput<T> = (Array3<T>, State<T>, Option<StepTrace<T>>);

/// `dst[m, n] = (accumulate ? dst : 0) + a[m, k] @ b[k, n]`: row-major
/// operands with the given row strides and unit column stride, computed on
/// the calling thread.
///
/// # Safety
/// Each pointer must be valid for the `m`/`k` rows of the given stride it
/// addresses, and `dst` must not be read or written by another thread
/// during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: *mut T,
    dst_rs: usize,
    accumulate: bool,
    a: *const T,
    a_rs: usize,
    b: *const T,
    b_rs: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                std::slice::from_raw_parts_mut(dst.add(r * dst_rs), n).fill(T::zero());
            }
        }
        return;
    }
    // `gemm` computes dst = alpha * dst + beta * (a @ b), reading dst only
    // when asked.
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        a,
        1,
        a_rs as isize,
        b,
        1,
        b_rs as isize,
        T::one(),
        T::one(),
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// A pointer that may be shared between the kernel's threads (see the
/// module docs for who may write where).
struct Shared<T>(*mut T);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}

// SAFETY: the kernel's threads only write disjoint parts of each buffer and
// synchronise at barriers before reading each other's parts.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn new(buffer: &mut [T]) -> Self {
        Shared(buffer.as_mut_ptr())
    }

    /// `len` elements from `offset`.
    ///
    /// # Safety
    /// In bounds, and no other thread writes them while the slice lives.
    unsafe fn slice<'a>(self, offset: usize, len: usize) -> &'a [T] {
        std::slice::from_raw_parts(self.0.add(offset), len)
    }

    /// `len` elements from `offset`, mutable.
    ///
    /// # Safety
    /// In bounds, and no other thread reads or writes them while the slice
    /// lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut<'a>(self, offset: usize, len: usize) -> &'a mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(offset), len)
    }
}

fn standard2<T: Real>(a: &Array2<T>) -> CowArray<'_, T, Ix2> {
    a.as_standard_layout()
}

fn contiguous1<T: Real>(a: &ndarray::Array1<T>) -> CowArray<'_, T, Ix1> {
    a.as_standard_layout()
}

/// Peephole weights as plain slices.
struct PeepholeSlices<'a, T> {
    input: &'a [T],
    forget: &'a [T],
    output: &'a [T],
}

/// Everything the threads read, plus the shared buffers they write.
struct Context<'a, T: Real> {
    batch: usize,
    time: usize,
    input: usize,
    units: usize,
    out: usize,
    layer: &'a Layer<T>,
    x: &'a [T],
    w_x: &'a [T],
    /// Recurrent weights, `[out, 4 * units]` with row stride `w_h_rs`.
    w_h: &'a [T],
    w_h_rs: usize,
    /// The packed recurrent weights when the AVX2 kernel runs (then
    /// `w_h` is empty).
    packed: Option<&'a PackedRecurrent<T>>,
    /// The packed input weights, likewise.
    packed_x: Option<&'a PackedRecurrent<T>>,
    /// `w_h` in standard layout, which the threads pack (with `packed`).
    w_h_packing: &'a [T],
    /// Whether the threads fill `packed` and `packed_x` (not when a
    /// [`PackSlot`] kept them from an earlier run).
    pack: bool,
    /// Every thread, after packing its share of the input weights.
    packed_ready: SpinBarrier,
    bias: &'a [T],
    peepholes: Option<PeepholeSlices<'a, T>>,
    projection: Option<(&'a [T], Option<T>)>,
    mask: Option<ArrayView2<'a, bool>>,
    masked_output: MaskedOutput,
    fast_activations: bool,
    /// Sigmoid gates, tanh cell and output, no peepholes or cell clip:
    /// the cell pass without per-element option checks.
    standard: bool,
    /// Whether the cell pass takes the exact activations eight units at a
    /// time (`exact_math`: float32, sigmoid and tanh, no cell clip or a
    /// positive one).
    exact_vector: bool,
    /// Whether the steps' threads split the batch rows (each runs its own
    /// sequences through every step, no barrier) rather than the units.
    batch_split: bool,
    /// Batch rows per thread when `batch_split` (else one range: all).
    batch_shares: Vec<Range<usize>>,
    /// Threads over the steps (`unit_shares.len()`, or `batch_shares.len()`).
    threads: usize,
    /// Rows of the input projection per thread (every thread).
    rows: Vec<Range<usize>>,
    unit_shares: Vec<Range<usize>>,
    out_shares: Vec<Range<usize>>,
    /// Every thread, after the input projection.
    projected: SpinBarrier,
    /// The step threads, after each step (and before a projection).
    barrier: SpinBarrier,
    /// `[batch * time, 4 * units]`: input projections, then gates in place.
    xw: Shared<T>,
    /// `[batch, units]`.
    c: Shared<T>,
    /// Two `[batch, out]` buffers: step `t` reads `h[t % 2]`, writes the other.
    h: [Shared<T>; 2],
    /// `[batch, units]` pre-projection output (only with a projection).
    m: Shared<T>,
    /// `[batch, time, out]`.
    outputs: Shared<T>,
    /// `[batch, time, units]` and `[batch, time, out]` when recording.
    trace: Option<(Shared<T>, Shared<T>)>,
}

/// Run one layer over inputs already in processing order.
///
/// `threads` is `(input projection, steps)`: the number of threads that
/// split the input projection's rows, and how many of them go on to split
/// the units over the steps (at most one per unit). The trace and the
/// activations follow `options`. With a `slot`, the packed weights of this
/// split are taken from it when kept there, else packed and kept there.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_layer<T: Real>(
    layer: &Layer<T>,
    x: ArrayView3<T>,
    initial: State<T>,
    mask: Option<ArrayView2<bool>>,
    masked_output: MaskedOutput,
    options: &RunOptions,
    threads: (usize, usize),
    slot: Option<&PackSlot<T>>,
) -> LayerOutput<T> {
    let record_trace = options.trace;
    let (batch, time, input) = x.dim();
    let units = layer.units();
    let out = layer.output_size();
    let step_threads = threads.1.clamp(1, units.max(1));
    let all_threads = threads.0.max(step_threads);

    let x = x.as_standard_layout();
    let w_x = standard2(&layer.w_x);
    let bias = contiguous1(&layer.bias);
    let peephole_arrays = layer.peepholes.as_ref().map(|p| {
        (
            contiguous1(&p.input),
            contiguous1(&p.forget),
            contiguous1(&p.output),
        )
    });
    let projection_kernel = layer.projection.as_ref().map(|p| standard2(&p.kernel));

    // Written by the threads, each its own rows (and first touched there,
    // unless the buffer is a reused one: see `buffer`).
    let xw = Buffer::<T>::unfilled(batch * time * 4 * units);
    let mut c = initial
        .c
        .as_standard_layout()
        .into_owned()
        .into_raw_vec_and_offset()
        .0;
    let mut h0 = initial
        .h
        .as_standard_layout()
        .into_owned()
        .into_raw_vec_and_offset()
        .0;
    let mut h1 = vec![T::zero(); batch * out];
    let mut m = vec![
        T::zero();
        if layer.projection.is_some() {
            batch * units
        } else {
            0
        }
    ];
    let mut outputs = vec![T::zero(); batch * time * out];
    let (mut trace_c, mut trace_h) = if record_trace {
        (
            vec![T::zero(); batch * time * units],
            vec![T::zero(); batch * time * out],
        )
    } else {
        (Vec::new(), Vec::new())
    };

    // Thread shares of the steps: units (every thread computes its units
    // for every row, the threads meet once per step) or, with enough rows
    // per thread, batch rows (every thread runs its own sequences through
    // every unit: no barrier per step, and the input projection's rows
    // follow the same split, so no barrier after it either).
    let batch_split = step_threads > 1
        && all_threads == step_threads
        && batch >= MIN_ROWS_PER_THREAD * step_threads;
    let (unit_shares, batch_shares) = if batch_split {
        (
            std::iter::once(0..units).collect(),
            split(batch, step_threads),
        )
    } else {
        (
            split(units, step_threads),
            std::iter::once(0..batch).collect(),
        )
    };
    // The recurrent weights: packed once for the AVX2 kernel, else
    // a copy with a padded row stride for the GEMM crate. That GEMM reads
    // w_h unpacked, 16 columns at a time down all its rows; with a row
    // stride of 4*units floats (a multiple of 4 KiB at units = 256, 512,
    // 1024) every row maps to the same L1 cache set and the reads evict
    // each other. 16 extra floats per row break that alignment (measured
    // 1.5x faster at [16 x 256] x [256 x 1024]).
    // Laid out here, filled by the threads that use them (`worker`).
    let use_packed = recurrent::available();
    let kept = slot
        .filter(|_| use_packed)
        .and_then(|slot| slot.get(&unit_shares));
    let pack = use_packed && kept.is_none();
    let packed = kept.or_else(|| {
        pack.then(|| {
            Arc::new(Packs {
                unit_shares: unit_shares.clone(),
                w_h: PackedRecurrent::layout(out, units, &unit_shares),
                w_x: PackedRecurrent::layout(input, units, &unit_shares),
            })
        })
    });
    let w_h_std = standard2(&layer.w_h);
    let w_h_rs = 4 * units + W_H_PAD;
    let mut w_h = Vec::new();
    if packed.is_none() {
        w_h = vec![T::zero(); out * w_h_rs];
        for (dst, src) in w_h.chunks_exact_mut(w_h_rs).zip(layer.w_h.rows()) {
            for (d, s) in dst.iter_mut().zip(src.iter()) {
                *d = *s;
            }
        }
    }
    let sigmoid_tanh = layer.gate_activation == Activation::Sigmoid
        && layer.cell_activation == Activation::Tanh
        && layer.output_activation == Activation::Tanh;
    let context = Context {
        batch,
        time,
        input,
        units,
        out,
        layer,
        x: x.as_slice().expect("standard layout"),
        w_x: w_x.as_slice().expect("standard layout"),
        w_h: &w_h,
        w_h_rs,
        packed: packed.as_ref().map(|p| &p.w_h),
        packed_x: packed.as_ref().map(|p| &p.w_x),
        w_h_packing: if pack {
            w_h_std.as_slice().expect("standard layout")
        } else {
            &[]
        },
        pack,
        packed_ready: SpinBarrier::new(all_threads),
        bias: bias.as_slice().expect("contiguous"),
        peepholes: peephole_arrays.as_ref().map(|(i, f, o)| PeepholeSlices {
            input: i.as_slice().expect("contiguous"),
            forget: f.as_slice().expect("contiguous"),
            output: o.as_slice().expect("contiguous"),
        }),
        projection: projection_kernel.as_ref().map(|k| {
            (
                k.as_slice().expect("standard layout"),
                layer.projection.as_ref().and_then(|p| p.clip),
            )
        }),
        mask: mask.as_ref().map(|m| m.view()),
        masked_output,
        fast_activations: options.fast_activations,
        standard: sigmoid_tanh && layer.peepholes.is_none() && layer.cell_clip.is_none(),
        exact_vector: TypeId::of::<T>() == TypeId::of::<f32>()
            && sigmoid_tanh
            && layer.cell_clip.is_none_or(|clip| clip > T::zero())
            && exact_math::available(),
        threads: step_threads,
        rows: if batch_split {
            batch_shares
                .iter()
                .map(|r| r.start * time..r.end * time)
                .collect()
        } else {
            split(batch * time, all_threads)
        },
        batch_split,
        batch_shares,
        out_shares: if batch_split {
            std::iter::once(0..out).collect()
        } else if layer.projection.is_some() {
            split(out, step_threads)
        } else {
            unit_shares.clone()
        },
        unit_shares,
        projected: SpinBarrier::new(all_threads),
        barrier: SpinBarrier::new(step_threads),
        xw: Shared(xw.raw()),
        c: Shared::new(&mut c),
        h: [Shared::new(&mut h0), Shared::new(&mut h1)],
        m: Shared::new(&mut m),
        outputs: Shared::new(&mut outputs),
        trace: record_trace.then(|| (Shared::new(&mut trace_c), Shared::new(&mut trace_h))),
    };

    // Worker 0 is this thread; the others come from the pool.
    pool::run(all_threads, &|k| worker(k, &context));
    drop(context);
    if let (Some(slot), Some(packed), true) = (slot, packed, pack) {
        // Every panel is filled now (the threads have all returned).
        *slot.lock() = Some(packed);
    }

    let h = if time % 2 == 0 { h0 } else { h1 };
    let state = State {
        c: Array2::from_shape_vec((batch, units), c).expect("batch * units"),
        h: Array2::from_shape_vec((batch, out), h).expect("batch * out"),
    };
    let outputs = Array3::from_shape_vec((batch, time, out), outputs).expect("batch*time*out");
    let trace = record_trace.then(|| StepTrace {
        c: Array3::from_shape_vec((batch, time, units), trace_c).expect("batch*time*units"),
        h: Array3::from_shape_vec((batch, time, out), trace_h).expect("batch*time*out"),
    });
    (outputs, state, trace)
}

/// Thread `k`'s whole share of one layer run.
fn worker<T: Real>(k: usize, cx: &Context<T>) {
    let (batch, time, units, out) = (cx.batch, cx.time, cx.units, cx.out);
    let width = 4 * units;

    // 0. Pack this thread's share of the input weights' panels and of the
    // recurrent ones (its own group with the unit split, a share of the
    // one group with the batch split), then meet: the projection reads
    // every input panel, and with the batch split every step reads every
    // recurrent panel.
    if let (Some(packed_x), Some(packed), true) = (cx.packed_x, cx.packed, cx.pack) {
        let all_threads = cx.rows.len();
        // SAFETY: the panel shares are disjoint, and the barrier orders
        // the writes of every share of packed_x before the projection
        // reads them.
        unsafe {
            let share = split(packed_x.panel_count(), all_threads)[k].clone();
            packed_x.pack(share, cx.w_x, width);
            if cx.batch_split {
                // One group, read by every thread: packed in shares too.
                let share = split(packed.panel_count(), all_threads)[k].clone();
                packed.pack(share, cx.w_h_packing, width);
            } else if k < cx.threads {
                packed.pack(packed.group(k), cx.w_h_packing, width);
            }
        }
        cx.packed_ready.wait();
    }

    // 1. Input projection of this thread's rows: bias + x @ w_x.
    let rows = cx.rows[k].clone();
    // SAFETY: rows of xw are split between the threads; the barrier below
    // orders these writes before any other thread reads them. The buffer
    // starts unfilled, and its first touch is here, on the thread that uses
    // the rows: the packed product writes every value of them (bias + sum,
    // without reading), the other path copies the bias into each row first;
    // only then is a slice made of them.
    unsafe {
        let xw = cx.xw.0.add(rows.start * width);
        // (With no inputs at all the packed product would not even write the bias.)
        if let (Some(packed), true) = (cx.packed_x, cx.input > 0) {
            packed.all(
                rows.len(),
                cx.x.as_ptr().add(rows.start * cx.input),
                cx.input,
                xw,
                width,
                cx.bias,
            );
        } else {
            for r in 0..rows.len() {
                std::ptr::copy_nonoverlapping(cx.bias.as_ptr(), xw.add(r * width), width);
            }
            matmul(
                (rows.len(), width, cx.input),
                xw,
                width,
                true,
                cx.x.as_ptr().add(rows.start * cx.input),
                cx.input,
                cx.w_x.as_ptr(),
                width,
            );
        }
    }
    if !cx.batch_split {
        // (With the batch split each thread reads only the rows it wrote.)
        cx.projected.wait();
    }
    if k >= cx.threads {
        return; // a projection-only thread
    }

    // This thread's part of every step: its units of every row, or every
    // unit of its rows.
    let (group, rows_b) = if cx.batch_split {
        (0, cx.batch_shares[k].clone())
    } else {
        (k, 0..batch)
    };
    let mine = cx.unit_shares[group].clone();
    let my_out = cx.out_shares[group].clone();
    let active = |b: usize, t: usize| cx.mask.as_ref().is_none_or(|m| m[[b, t]]);
    let z_rs = time * width;
    for t in 0..time {
        let (h_prev, h_next) = (cx.h[t % 2], cx.h[(t + 1) % 2]);
        // SAFETY (this whole block): this thread writes only its own unit
        // columns of xw, c, m and h_next (or its own output columns of
        // h_next, outputs and the trace), or with the batch split only its
        // own rows of them; h_prev is read-only during the step; m is read
        // by all only after the barrier that follows its writes (with the
        // batch split, by this thread only).
        unsafe {
            // 2a. Gates of this thread's units and rows: z += h_prev @ w_h.
            let z0 = cx.xw.0.add(rows_b.start * z_rs + t * width);
            let h_rows = h_prev.0.add(rows_b.start * out);
            if let Some(packed) = cx.packed {
                packed.step(group, rows_b.len(), h_rows, out, z0, z_rs, batch == 1);
            } else if cx.threads == 1 || cx.batch_split {
                matmul(
                    (rows_b.len(), width, out),
                    z0,
                    z_rs,
                    true,
                    h_rows,
                    out,
                    cx.w_h.as_ptr(),
                    cx.w_h_rs,
                );
            } else if !mine.is_empty() {
                for gate in 0..4 {
                    let col = gate * units + mine.start;
                    matmul(
                        (batch, mine.len(), out),
                        z0.add(col),
                        z_rs,
                        true,
                        h_rows,
                        out,
                        cx.w_h.as_ptr().add(col),
                        cx.w_h_rs,
                    );
                }
            }
            // 2b. The fused cell pass over this thread's units.
            let cell_out = if cx.projection.is_some() {
                cx.m
            } else {
                h_next
            };
            let cell_rs = if cx.projection.is_some() { units } else { out };
            for b in rows_b.clone() {
                let c_row = cx.c.slice_mut(b * units + mine.start, mine.len());
                if active(b, t) {
                    let z = cx.xw.slice((b * time + t) * width, width);
                    let m_row = cell_out.slice_mut(b * cell_rs + mine.start, mine.len());
                    cells(cx, z, mine.clone(), c_row, m_row);
                } else if cx.projection.is_none() {
                    // A masked row carries its state.
                    h_next
                        .slice_mut(b * out + mine.start, mine.len())
                        .copy_from_slice(h_prev.slice(b * out + mine.start, mine.len()));
                }
            }
            // 2c. Projection of this thread's output columns: h = clip(m @ P).
            if let Some((kernel, clip)) = cx.projection {
                if !cx.batch_split {
                    cx.barrier.wait();
                }
                matmul(
                    (rows_b.len(), my_out.len(), units),
                    h_next.0.add(rows_b.start * out + my_out.start),
                    out,
                    false,
                    cx.m.0.add(rows_b.start * units),
                    units,
                    kernel.as_ptr().add(my_out.start),
                    out,
                );
                for b in rows_b.clone() {
                    let row = h_next.slice_mut(b * out + my_out.start, my_out.len());
                    if !active(b, t) {
                        row.copy_from_slice(h_prev.slice(b * out + my_out.start, my_out.len()));
                    } else if let Some(clip) = clip {
                        for v in row.iter_mut() {
                            *v = v.max(-clip).min(clip);
                        }
                    }
                }
            }
            // 2d. Outputs and trace of this thread's columns.
            for b in rows_b.clone() {
                let at = (b * time + t) * out + my_out.start;
                let dst = cx.outputs.slice_mut(at, my_out.len());
                if active(b, t) {
                    dst.copy_from_slice(h_next.slice(b * out + my_out.start, my_out.len()));
                } else if cx.masked_output == MaskedOutput::RepeatPrevious && t > 0 {
                    // The previous step's output is this row's last output
                    // (zeros before its first computed step).
                    dst.copy_from_slice(cx.outputs.slice(at - out, my_out.len()));
                }
                if let Some((trace_c, trace_h)) = cx.trace {
                    trace_c
                        .slice_mut((b * time + t) * units + mine.start, mine.len())
                        .copy_from_slice(cx.c.slice(b * units + mine.start, mine.len()));
                    trace_h
                        .slice_mut(at, my_out.len())
                        .copy_from_slice(h_next.slice(b * out + my_out.start, my_out.len()));
                }
            }
        }
        // 3. Everyone has written h_next before anyone reads it (with the
        // batch split, each thread reads only its own rows of it).
        if !cx.batch_split {
            cx.barrier.wait();
        }
    }
}

/// The fused cell pass for one batch row over units `mine`: reads the gate
/// pre-activations `z` (the whole row, blocks i, f, g, o), updates `c`
/// (this thread's units) and writes `m = o * act(c)`.
///
/// The arithmetic is the formula on [`Layer`], in the same order as the
/// oracle (`z_f + forget_bias` before the peephole term, clip before the
/// output peephole).
#[inline]
fn cells<T: Real>(cx: &Context<T>, z: &[T], mine: Range<usize>, c: &mut [T], m: &mut [T]) {
    let layer = cx.layer;
    let units = cx.units;
    let n = mine.len();
    let zi = &z[mine.start..mine.end];
    let zf = &z[units + mine.start..units + mine.end];
    let zg = &z[2 * units + mine.start..2 * units + mine.end];
    let zo = &z[3 * units + mine.start..3 * units + mine.end];
    let standard = cx.standard;
    let is_f32 = TypeId::of::<T>() == TypeId::of::<f32>();
    // The same slices as f32 (asserted: T is f32).
    let f32s = |s: &[T]| {
        assert!(is_f32);
        // SAFETY: T is f32.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) }
    };
    let f32s_mut = |s: &mut [T]| {
        assert!(is_f32);
        // SAFETY: T is f32.
        unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) }
    };
    if standard && cx.fast_activations && is_f32 {
        let forget_bias = layer.forget_bias.widen() as f32;
        let (zi, zf, zg, zo) = (f32s(zi), f32s(zf), f32s(zg), f32s(zo));
        fast_math::cells(zi, zf, zg, zo, forget_bias, f32s_mut(c), f32s_mut(m));
        return;
    }
    // The exact activations: eight units at a time where they can, the
    // same values as the loops below, which do the rest.
    #[cfg(target_arch = "x86_64")]
    let done = if cx.exact_vector {
        let peepholes = cx
            .peepholes
            .as_ref()
            .map(|p| [p.input, p.forget, p.output].map(|w| f32s(&w[mine.start..mine.end])));
        let (zi, zf, zg, zo) = (f32s(zi), f32s(zf), f32s(zg), f32s(zo));
        let forget_bias = layer.forget_bias.widen() as f32;
        // (Exact: T is f32.)
        let clip = layer.cell_clip.map(|clip| clip.widen() as f32);
        // SAFETY: the processor has AVX2 and FMA.
        unsafe {
            exact_math::cells(
                zi,
                zf,
                zg,
                zo,
                forget_bias,
                peepholes,
                clip,
                f32s_mut(c),
                f32s_mut(m),
            )
        }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    if standard {
        // The common configuration, without per-element option checks.
        let one = T::one();
        let fb = layer.forget_bias;
        for j in done..n {
            let i = one / (one + (-zi[j]).exp());
            let f = one / (one + (-(zf[j] + fb)).exp());
            let g = zg[j].tanh();
            let c_new = f * c[j] + i * g;
            let o = one / (one + (-zo[j]).exp());
            c[j] = c_new;
            m[j] = o * c_new.tanh();
        }
        return;
    }
    let zero = T::zero();
    for j in done..n {
        let u = mine.start + j;
        let c_prev = c[j];
        let (pi, pf) = match &cx.peepholes {
            Some(p) => (p.input[u] * c_prev, p.forget[u] * c_prev),
            None => (zero, zero),
        };
        let i = layer.gate_activation.apply(zi[j] + pi);
        let f = layer.gate_activation.apply(zf[j] + layer.forget_bias + pf);
        let g = layer.cell_activation.apply(zg[j]);
        let mut c_new = f * c_prev + i * g;
        if let Some(clip) = layer.cell_clip {
            c_new = c_new.max(-clip).min(clip);
        }
        let po = match &cx.peepholes {
            Some(p) => p.output[u] * c_new,
            None => zero,
        };
        let o = layer.gate_activation.apply(zo[j] + po);
        c[j] = c_new;
        m[j] = o * layer.output_activation.apply(c_new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array3};

    /// Deterministic values in `[-0.2, 0.2)`.
    fn v<T: Real>(k: usize) -> T {
        T::from_f64_lossy(((k * 7919 % 613) as f64 / 613.0 - 0.5) * 0.4)
    }

    /// A plain layer and inputs of these sizes.
    fn fixture<T: Real>(
        (batch, time, input, units): (usize, usize, usize, usize),
    ) -> (Layer<T>, Array3<T>) {
        let layer = Layer::new(
            Array2::from_shape_fn((input, 4 * units), |(r, c)| v(r * 97 + c)),
            Array2::from_shape_fn((units, 4 * units), |(r, c)| v(r * 31 + c * 3 + 5)),
            Array1::from_shape_fn(4 * units, |c| v(c * 13 + 1)),
        );
        let x = Array3::from_shape_fn((batch, time, input), |(b, t, i)| v(b * 100 + t * 10 + i));
        (layer, x)
    }

    /// One run of `layer` on `x` from the zero state, no mask, exact
    /// activations, trace on.
    fn run_exact<T: Real>(
        layer: &Layer<T>,
        x: &Array3<T>,
        threads: (usize, usize),
        slot: Option<&PackSlot<T>>,
    ) -> LayerOutput<T> {
        let options = RunOptions {
            trace: true,
            threads: None,
            fast_activations: false,
        };
        let initial = State::zeros(layer, x.dim().0);
        run_layer(
            layer,
            x.view(),
            initial,
            None,
            MaskedOutput::Zero,
            &options,
            threads,
            slot,
        )
    }

    /// Outputs, final state and trace all bit-identical.
    fn assert_identical<T: Real>(
        one: &LayerOutput<T>,
        other: &LayerOutput<T>,
        what: impl std::fmt::Debug,
    ) {
        assert_eq!(one.0, other.0, "outputs, {what:?}");
        assert_eq!(one.1, other.1, "state, {what:?}");
        assert_eq!(one.2, other.2, "trace, {what:?}");
    }

    /// Threads that only help with the input projection (more projection
    /// threads than step threads) change nothing in the results.
    #[test]
    fn projection_only_threads_change_nothing() {
        let (batch, time, input, units) = (3, 5, 11, 20);
        let (layer, x) = fixture::<f32>((batch, time, input, units));
        let run = |threads| run_exact(&layer, &x, threads, None);
        let one = run((1, 1));
        for threads in [(2, 1), (3, 1), (3, 2)] {
            let other = run(threads);
            assert_identical(&one, &other, threads);
        }
    }

    /// The two ways of splitting the steps between threads (units, or
    /// batch rows from `MIN_ROWS_PER_THREAD` rows per thread on) give
    /// bit-identical float32 results, with and without the fast
    /// activations, a projection and peepholes, a mask and remainder rows
    /// and units; float64 likewise (the same packed kernel, 8-column
    /// panels; its activations are always the scalar calls, so it runs
    /// only the exact pass).
    #[test]
    fn batch_and_unit_splits_are_bit_identical() {
        splits_are_bit_identical::<f32>();
        splits_are_bit_identical::<f64>();
    }

    fn splits_are_bit_identical<T: Real>() {
        let (batch, time, input, units, proj) = (19, 6, 37, 45, 21);
        let (plain, x) = fixture::<T>((batch, time, input, units));
        let mut projected = Layer::new(
            plain.w_x.clone(),
            Array2::from_shape_fn((proj, 4 * units), |(r, c)| v(r * 37 + c * 7 + 2)),
            plain.bias.clone(),
        );
        projected.projection = Some(crate::lstm::Projection {
            kernel: Array2::from_shape_fn((units, proj), |(r, c)| v(r * 17 + c * 5 + 3)),
            clip: Some(T::from_f64_lossy(0.3)),
        });
        // Peepholes too: the float32 exact activations then run eight
        // units at a time with each thread's slice of the peephole weights.
        projected.peepholes = Some(crate::lstm::Peepholes {
            input: Array1::from_shape_fn(units, |u| v(u * 3 + 1)),
            forget: Array1::from_shape_fn(units, |u| v(u * 5 + 2)),
            output: Array1::from_shape_fn(units, |u| v(u * 11 + 3)),
        });
        let mask = Array2::from_shape_fn((batch, time), |(b, t)| (b + 2 * t) % 5 != 3);
        assert!((2 * MIN_ROWS_PER_THREAD..3 * MIN_ROWS_PER_THREAD).contains(&batch));
        for layer in [&plain, &projected] {
            // (float64 has no fast activations: one pass.)
            let fast_modes: &[bool] = if T::NAME == "float32" {
                &[false, true]
            } else {
                &[false]
            };
            for &fast_activations in fast_modes {
                let run = |threads| {
                    let options = RunOptions {
                        trace: true,
                        threads: None,
                        fast_activations,
                    };
                    run_layer(
                        layer,
                        x.view(),
                        State::zeros(layer, batch),
                        Some(mask.view()),
                        MaskedOutput::RepeatPrevious,
                        &options,
                        threads,
                        None,
                    )
                };
                let one = run((1, 1));
                // (2, 2) splits the batch; (3, 3) and (3, 2) the units.
                for threads in [(2, 2), (3, 3), (3, 2)] {
                    let other = run(threads);
                    let what = (
                        T::NAME,
                        threads,
                        fast_activations,
                        layer.projection.is_some(),
                    );
                    assert_identical(&one, &other, what);
                }
            }
        }
    }

    /// A [`PackSlot`] keeps the packed weights of one split and gives them
    /// to the next run of that split; a run of another split packs anew.
    /// Every run is bit-identical to one without a slot.
    #[test]
    fn kept_packs_are_reused_per_split_and_change_nothing() {
        kept_packs_are_reused::<f32>();
        kept_packs_are_reused::<f64>();
    }

    fn kept_packs_are_reused<T: Real>() {
        let (batch, time, input, units) = (17, 5, 23, 40);
        let (layer, x) = fixture::<T>((batch, time, input, units));
        let run = |threads, slot| run_exact(&layer, &x, threads, slot);
        let slot = PackSlot::default();
        let packs = recurrent::available();
        // (2, 2) splits the batch: one group of panels, like (1, 1); (3, 3)
        // and (3, 2) split the units three and two ways. Three layouts.
        let layout = |threads| match threads {
            (3, n) => n,
            _ => 1,
        };
        let mut last = None;
        for threads in [
            (2, 2),
            (2, 2),
            (3, 3),
            (3, 3),
            (3, 2),
            (1, 1),
            (2, 2),
            (3, 3),
        ] {
            let kept = slot.kept();
            let with = run(threads, Some(&slot));
            assert_identical(&run(threads, None), &with, threads);
            assert_eq!(slot.kept().is_some(), packs, "{threads:?}");
            if packs {
                // Reused exactly when the previous run had the same layout.
                let same = last.map(layout) == Some(layout(threads));
                assert_eq!(slot.kept() == kept, same, "{threads:?} after {last:?}");
            }
            last = Some(threads);
        }
    }

    /// With fewer units than eight per thread, which units the exact
    /// activations compute eight at a time (and which the scalar loops)
    /// depends on the split; the results do not. 20 units with and without
    /// peepholes and a cell clip:
    /// one thread does 16 + 4, three threads 7, 7 and 6 in the scalar loops.
    #[test]
    fn vector_and_scalar_activations_agree_across_splits() {
        let (batch, time, input, units) = (3, 6, 7, 20);
        let (mut layer, x) = fixture::<f32>((batch, time, input, units));
        layer.forget_bias = 1.0;
        let run = |layer: &Layer<f32>, threads| run_exact(layer, &x, threads, None);
        // A cell clip that bites (the cells reach about 0.3 without it).
        for (peepholes, clip) in [
            (false, None),
            (true, None),
            (false, Some(0.05)),
            (true, Some(0.05)),
        ] {
            layer.peepholes = peepholes.then(|| crate::lstm::Peepholes {
                input: Array1::from_shape_fn(units, |u| v::<f32>(u * 3 + 1) * 5.0),
                forget: Array1::from_shape_fn(units, |u| v::<f32>(u * 5 + 2) * 5.0),
                output: Array1::from_shape_fn(units, |u| v::<f32>(u * 11 + 3) * 5.0),
            });
            layer.cell_clip = clip;
            let one = run(&layer, (1, 1));
            if let Some(clip) = clip {
                // In the units that one thread runs eight at a time (0..16).
                let trace = &one.2.as_ref().unwrap().c;
                let bitten = trace
                    .indexed_iter()
                    .filter(|((_, _, u), c)| *u < 16 && c.abs() == clip);
                assert!(bitten.count() > 10, "the clip must bite");
            }
            for threads in [(3, 3), (2, 2)] {
                assert_identical(&one, &run(&layer, threads), (threads, peepholes, clip));
            }
        }
    }
}
