//! The matrix products `z += h @ w_h` (per step) and `xw += x @ w_x` (all
//! steps) for `float32` and `float64` on processors with AVX2 and FMA, with
//! both weight matrices packed once per layer run.
//!
//! Why not the GEMM crate here: a library GEMM packs (or reads unpacked,
//! strided) the whole `[h_depth, 4*units]` weight matrix on *every* step,
//! although it never changes, and at `B <= 128` rows there is little
//! arithmetic to hide that behind. Packing it once into panels of 16
//! columns (8 in `float64`), each `[h_depth][16]` contiguous, makes every
//! step's weight reads one sequential stream. The micro-kernel is the classic 6 x 16 register block
//! (12 accumulators, 2 weight vectors, 1 broadcast). `float64` runs the
//! same code with 8-column panels (two 4-lane vectors): a panel row is one
//! 64-byte cache line for either type ([`Element`]).
//!
//! Each output column is one sequence of FMAs over `k` whatever the thread
//! count or panel boundaries, so results do not depend on the split.

use std::ops::Range;

use super::buffer::Buffer;

/// Rows of the register block.
const ROWS: usize = 6;
/// Depth (`k`) per pass. Blocks of 256 (a 16 KiB panel block that stays in
/// L1) measured 10-15% slower at H=512 than whole panels (the extra loads
/// and stores of `z` cost more than the L2 reads they save), so only
/// depths past 1024 are split.
const DEPTH_BLOCK: usize = 1024;
/// Rows of `float32` inputs kept in L2 while the panels pass over them (96
/// rows of 1024 floats: 384 KiB); half as many `float64` rows (the same
/// bytes), see [`chunk_rows`]. (Measured for float64, 48 against 96 rows,
/// three alternations: B64-T50-H512 253-305 ms against 259-266,
/// B128-T25-H1024 771-997 against 860-880: within the noise; 48 keeps
/// the rows in L2.)
const CHUNK_ROWS: usize = 96;

/// [`CHUNK_ROWS`] for `T`.
fn chunk_rows<T>() -> usize {
    CHUNK_ROWS * 4 / std::mem::size_of::<T>()
}

/// One panel: up to `PANEL` (16 float32, 8 float64) consecutive gate
/// columns starting at `column`.
#[derive(Clone, Debug)]
struct Panel {
    column: usize,
    width: usize,
    offset: usize,
}

/// `w_h` packed into panels, grouped by the thread that owns them.
pub(crate) struct PackedRecurrent<T: Element> {
    data: Buffer<T>,
    depth: usize,
    panels: Vec<Vec<Panel>>,
}

/// Whether this processor runs the packed kernel.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl<T: Element> PackedRecurrent<T> {
    /// Lay out (but do not fill) the panels of `w_h` (`[depth, 4 * units]`)
    /// for threads owning the unit ranges `shares`: thread `k`'s panels
    /// cover columns `g * units + shares[k]` for each gate block `g`.
    /// Every panel must then be filled with [`pack`](Self::pack) before the
    /// products read it.
    pub(crate) fn layout(depth: usize, units: usize, shares: &[Range<usize>]) -> Self {
        // Count first, so that the buffer is allocated once. It starts on a
        // cache line (a `Buffer` is 64-byte aligned): a panel row is 64
        // bytes, and read from an address that is not a multiple of 64 every
        // one of its two 32-byte loads per step of k would straddle two
        // lines. It is left unfilled: the threads that use the panels
        // write them (`pack`), so that neither the copy nor the first touch
        // of the pages runs on one thread alone.
        let panel_count: usize = shares.iter().map(|s| 4 * s.len().div_ceil(T::PANEL)).sum();
        let data = Buffer::<T>::unfilled(panel_count * depth * T::PANEL);
        let mut next = 0;
        let mut panels = Vec::with_capacity(shares.len());
        for share in shares {
            let mut mine = Vec::new();
            for gate in 0..4 {
                let columns = gate * units + share.start..gate * units + share.end;
                for column in columns.clone().step_by(T::PANEL) {
                    mine.push(Panel {
                        column,
                        width: T::PANEL.min(columns.end - column),
                        offset: next,
                    });
                    next += depth * T::PANEL;
                }
            }
            panels.push(mine);
        }
        PackedRecurrent {
            data,
            depth,
            panels,
        }
    }

    /// Lay out and fill every panel on this thread (see [`layout`](Self::layout)).
    pub(crate) fn new(
        w_h: &[T],
        w_rs: usize,
        depth: usize,
        units: usize,
        shares: &[Range<usize>],
    ) -> Self {
        let packed = Self::layout(depth, units, shares);
        let all = 0..packed.panel_count();
        // SAFETY: one thread fills every panel before any product.
        unsafe { packed.pack(all, w_h, w_rs) };
        packed
    }

    /// How many panels there are (all threads' groups).
    pub(crate) fn panel_count(&self) -> usize {
        self.panels.iter().map(Vec::len).sum()
    }

    /// The panel numbers of thread `thread`'s group, for [`pack`](Self::pack).
    pub(crate) fn group(&self, thread: usize) -> Range<usize> {
        let start: usize = self.panels[..thread].iter().map(Vec::len).sum();
        start..start + self.panels[thread].len()
    }

    /// Fill panels `which` (numbered over all groups in order) from `w`
    /// (`[depth, 4 * units]`, row stride `w_rs`); columns past a panel's
    /// width get zero weights.
    ///
    /// The copy runs over 8 panels at a time, row by row: each row of `w`
    /// is then read as one run of up to 512 bytes and the writes go to 8
    /// sequential streams. (Panel by panel, each row of a panel is a
    /// separate 64-byte read at a stride of `w_rs` floats: packing both
    /// matrices that way, on the calling thread before the workers started,
    /// took 14 ms of a 100 ms layer at B64-T50-H512; this way, split
    /// between two threads, 2-2.6 ms.)
    ///
    /// # Safety
    /// No other thread reads or writes panels `which` during the call, and
    /// no product reads a panel before it is filled.
    pub(crate) unsafe fn pack(&self, which: Range<usize>, w: &[T], w_rs: usize) {
        let list: Vec<&Panel> = self.panels.iter().flatten().collect();
        let data = self.data.raw();
        for group in list[which].chunks(8) {
            for k in 0..self.depth {
                let row = &w[k * w_rs..];
                for panel in group {
                    // Raw writes: the buffer is unfilled until here.
                    let dst = data.add(panel.offset + k * T::PANEL);
                    let src = &row[panel.column..panel.column + panel.width];
                    if panel.width == T::PANEL {
                        // A whole panel row (one cache line) as one
                        // fixed-size copy (two vector moves), not a call
                        // to `memmove` for 64 bytes: at B1-T200-H128 those
                        // calls were most of the packing time.
                        let line = src.as_ptr().cast::<[u8; PANEL_BYTES]>().read_unaligned();
                        dst.cast::<[u8; PANEL_BYTES]>().write(line);
                    } else {
                        std::ptr::copy_nonoverlapping(src.as_ptr(), dst, panel.width);
                        std::ptr::write_bytes(dst.add(panel.width), 0, T::PANEL - panel.width);
                    }
                }
            }
        }
    }

    /// Group `group`'s share of one step: for each of its panels and every
    /// row `b < rows`, `z[b * z_rs + column..][..width] += h[b * h_rs..][..depth] @ panel`.
    /// `lone_row`: the whole batch is one row, which may use the
    /// latency-hiding [`single`] kernel (see [`multiply`](Self::multiply)).
    ///
    /// # Safety
    /// [`available`] is true; `h` holds `rows` rows of `depth` values at
    /// stride `h_rs`; `z` holds `rows` rows at stride `z_rs` covering every
    /// panel's columns, and no other thread touches these rows' columns of
    /// the group.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn step(
        &self,
        group: usize,
        rows: usize,
        h: *const T,
        h_rs: usize,
        z: *mut T,
        z_rs: usize,
        lone_row: bool,
    ) {
        self.multiply(
            &self.panels[group..=group],
            rows,
            h,
            h_rs,
            z,
            z_rs,
            None,
            lone_row,
        );
    }

    /// Every panel (all `4 * units` columns) for `rows` rows, written as
    /// `z = bias + a @ w` (z is not read): the input projection of one
    /// thread's rows.
    ///
    /// # Safety
    /// As for [`step`](Self::step), with `z` rows this thread owns.
    pub(crate) unsafe fn all(
        &self,
        rows: usize,
        a: *const T,
        a_rs: usize,
        z: *mut T,
        z_rs: usize,
        bias: &[T],
    ) {
        self.multiply(&self.panels, rows, a, a_rs, z, z_rs, Some(bias), false);
    }

    /// Rows in chunks of [`CHUNK_ROWS`] (their inputs stay in L2 while every
    /// panel passes over them), depth in blocks of [`DEPTH_BLOCK`], each
    /// panel's depth block over the chunk in 6-row blocks (it stays in L1
    /// across them). Each block adds its partial sum into `z`.
    ///
    /// While a panel's row blocks run, they fetch the next panel into L2
    /// (software prefetch, spread over the blocks). Without it the first
    /// block of each panel waited on L3 or memory for its weights: one
    /// thread, `64 x 1024 @ 1024 x 4096` with the panels in L3, ran at
    /// 79-85 GFLOP/s without and 91-95 with (best of 20, over several
    /// alternations; the machine's measured FMA peak is 97.6 per core).
    /// At depth 512 (a 32 KiB panel) both were 93-99.
    ///
    /// `split_sums`: a lone row uses the latency-hiding [`single`] kernel
    /// (another summation order). Only a batch of one row may: elsewhere
    /// the rows are split between threads (the input projection's always,
    /// a step's with the batch split), and a row's value must not depend on
    /// the split.
    #[allow(clippy::too_many_arguments)]
    unsafe fn multiply(
        &self,
        groups: &[Vec<Panel>],
        rows: usize,
        a: *const T,
        a_rs: usize,
        z: *mut T,
        z_rs: usize,
        bias: Option<&[T]>,
        split_sums: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        for chunk in (0..rows).step_by(chunk_rows::<T>()) {
            let chunk_end = rows.min(chunk + chunk_rows::<T>());
            for k0 in (0..self.depth).step_by(DEPTH_BLOCK) {
                let depth = DEPTH_BLOCK.min(self.depth - k0);
                let mut panels = groups.iter().flatten().peekable();
                while let Some(panel) = panels.next() {
                    let weights = self
                        .data
                        .raw()
                        .cast_const()
                        .add(panel.offset + k0 * T::PANEL);
                    let next = panels.peek().map(|next| {
                        self.data
                            .raw()
                            .cast_const()
                            .add(next.offset + k0 * T::PANEL)
                    });
                    let mut row = chunk;
                    let mut blk = 0usize;
                    let per = prefetch_rate(chunk_end - chunk);
                    while row < chunk_end {
                        // Blocks of 6 rows, but 7 or 8 rows left go as 4 + 3
                        // or 4 + 4: a 1- or 2-row block has too few
                        // independent accumulators to keep the FMA units
                        // busy. (Each row's sums are the same whatever its
                        // block. Measured at B16, 8 rows per thread: 14.1-15.2
                        // ms against 14.4-15.7 as 6 + 2, within the noise.)
                        let n = match chunk_end - row {
                            7 | 8 => 4,
                            left => ROWS.min(left),
                        };
                        let a = a.add(row * a_rs + k0);
                        let c = z.add(row * z_rs + panel.column);
                        let w = panel.width;
                        // The first depth block starts from the bias, if
                        // given, instead of reading z.
                        let base = match bias {
                            Some(bias) if k0 == 0 => bias.as_ptr().add(panel.column),
                            _ => std::ptr::null(),
                        };
                        // The row blocks of this panel fetch the next panel
                        // into L2 between them, `per` of its 64-byte rows
                        // every 4 steps of k (see `block`).
                        let pf = match next {
                            Some(next) if blk * per * depth < 4 * depth => Prefetch {
                                from: next.wrapping_add(blk * per * depth / 4 * T::PANEL),
                                per,
                            },
                            _ => Prefetch::NONE,
                        };
                        match n {
                            6 => block::<T, 6>(depth, a, a_rs, weights, c, z_rs, w, base, pf),
                            5 => block::<T, 5>(depth, a, a_rs, weights, c, z_rs, w, base, pf),
                            4 => block::<T, 4>(depth, a, a_rs, weights, c, z_rs, w, base, pf),
                            3 => block::<T, 3>(depth, a, a_rs, weights, c, z_rs, w, base, pf),
                            2 => block::<T, 2>(depth, a, a_rs, weights, c, z_rs, w, base, pf),
                            _ if split_sums => single(depth, a, weights, c, w, base),
                            _ => block::<T, 1>(depth, a, a_rs, weights, c, z_rs, w, base, pf),
                        }
                        row += n;
                        blk += 1;
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (groups, rows, a, a_rs, z, z_rs, bias, split_sums);
    }
}

/// What a row block fetches of the next panel while it runs: from `from`,
/// `per` panel rows every 4 steps of `k` (none when `per` is 0).
#[derive(Clone, Copy)]
struct Prefetch<T> {
    from: *const T,
    per: usize,
}

impl<T> Prefetch<T> {
    const NONE: Prefetch<T> = Prefetch {
        from: std::ptr::null(),
        per: 0,
    };
}

/// How many rows of the next panel each row block of a chunk of `rows`
/// rows prefetches per 4 steps of `k`: enough that the chunk's blocks
/// (about `rows / 6` of them) cover the whole panel, at least 1 and at
/// most 4 (one per step).
fn prefetch_rate(rows: usize) -> usize {
    let blocks = rows.div_ceil(ROWS).max(1);
    4usize.div_ceil(blocks).clamp(1, 4)
}

/// `c[r][0..width] += a[r] @ w` for `R` rows: the 6 x 16 register block
/// (6 x 8 for `float64`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn block<T: Element, const R: usize>(
    depth: usize,
    a: *const T,
    a_rs: usize,
    w: *const T,
    c: *mut T,
    c_rs: usize,
    width: usize,
    base: *const T,
    pf: Prefetch<T>,
) {
    use std::arch::x86_64::*;
    let panel = T::PANEL;
    // The output tile is read once, after the loop; fetch it now so that
    // its cache misses overlap the arithmetic instead of following it
    // (measured: 37-42 -> 53-62 GFLOP/s at 3200 x 512 x 2048).
    if base.is_null() {
        for r in 0..R {
            _mm_prefetch(c.add(r * c_rs).cast::<i8>(), _MM_HINT_T0);
            _mm_prefetch(c.add(r * c_rs + width - 1).cast::<i8>(), _MM_HINT_T0);
        }
    }
    let mut acc = [[T::vzero(); 2]; R];
    // One step of k: two weight vectors, R broadcasts, 2R FMAs. (A macro,
    // not a function: it must compile inside this AVX2/FMA function.)
    // `w` and `a` advance by pointer, and k's offsets within an unrolled
    // group of 4 are constants: three integer instructions fewer per step
    // of k (a `mov`, `or` and `shl` that formed `k * panel`) than with
    // `w.add(k * panel)`. Measured
    // against that: within this machine's noise (the product alone,
    // 8 and 48 rows over 1 MiB of weights, as a share of an interleaved
    // register-only FMA loop's rate: medians 62-75% against 60-84% and
    // 71-86% against 68-71%, four alternations).
    macro_rules! step {
        ($w:expr, $a:expr, $u:expr) => {{
            let w0 = T::vload($w.add($u * panel));
            let w1 = T::vload($w.add($u * panel + T::LANES));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = T::vsplat($a.add(r * a_rs + $u));
                acc[0] = T::vfmadd(x, w0, acc[0]);
                acc[1] = T::vfmadd(x, w1, acc[1]);
            }
        }};
    }
    let (mut wk, mut ak) = (w, a);
    let mut k = 0;
    // `per` panel rows (64 bytes each) of the next panel every 4 k (none
    // when `per` is 0).
    let mut line = pf.from;
    while k + 4 <= depth {
        for _ in 0..pf.per {
            _mm_prefetch(line.cast::<i8>(), _MM_HINT_T1);
            line = line.wrapping_add(panel);
        }
        step!(wk, ak, 0);
        step!(wk, ak, 1);
        step!(wk, ak, 2);
        step!(wk, ak, 3);
        wk = wk.add(4 * panel);
        ak = ak.add(4);
        k += 4;
    }
    while k < depth {
        step!(wk, ak, 0);
        wk = wk.add(panel);
        ak = ak.add(1);
        k += 1;
    }
    for (r, acc) in acc.iter().enumerate() {
        store(c.add(r * c_rs), acc[0], acc[1], width, base);
    }
}

/// One row (B = 1): four independent accumulator pairs over `k` so that
/// the FMA latency does not serialise the loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn single<T: Element>(
    depth: usize,
    a: *const T,
    w: *const T,
    c: *mut T,
    width: usize,
    base: *const T,
) {
    let (panel, lanes) = (T::PANEL, T::LANES);
    let mut acc = [[T::vzero(); 2]; 4];
    let mut k = 0;
    while k + 4 <= depth {
        for (u, acc) in acc.iter_mut().enumerate() {
            let x = T::vsplat(a.add(k + u));
            acc[0] = T::vfmadd(x, T::vload(w.add((k + u) * panel)), acc[0]);
            acc[1] = T::vfmadd(x, T::vload(w.add((k + u) * panel + lanes)), acc[1]);
        }
        k += 4;
    }
    while k < depth {
        let x = T::vsplat(a.add(k));
        acc[0][0] = T::vfmadd(x, T::vload(w.add(k * panel)), acc[0][0]);
        acc[0][1] = T::vfmadd(x, T::vload(w.add(k * panel + lanes)), acc[0][1]);
        k += 1;
    }
    let lo = T::vadd(T::vadd(acc[0][0], acc[1][0]), T::vadd(acc[2][0], acc[3][0]));
    let hi = T::vadd(T::vadd(acc[0][1], acc[1][1]), T::vadd(acc[2][1], acc[3][1]));
    store(c, lo, hi, width, base);
}

/// `c[0..width] += [lo, hi][0..width]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn store<T: Element>(c: *mut T, lo: T::V, hi: T::V, width: usize, base: *const T) {
    // c = (base or c) + acc: the same sum either way, the bias having been
    // z's starting value before.
    let from = if base.is_null() { c.cast_const() } else { base };
    let lanes = T::LANES;
    if width == T::PANEL {
        T::vstore(c, T::vadd(T::vload(from), lo));
        T::vstore(c.add(lanes), T::vadd(T::vload(from.add(lanes)), hi));
    } else {
        let mut spill = [T::default(); 16];
        T::vstore(spill.as_mut_ptr(), lo);
        T::vstore(spill.as_mut_ptr().add(lanes), hi);
        for (j, v) in spill.iter().enumerate().take(width) {
            *c.add(j) = *from.add(j) + *v;
        }
    }
}

/// Bytes per panel row: one cache line, two 256-bit vectors.
const PANEL_BYTES: usize = 64;

// `pack` copies whole panel rows as `PANEL_BYTES`, and `store` spills a
// partial one into 16 elements.
const _: () = assert!(
    <f32 as Element>::PANEL * 4 == PANEL_BYTES
        && <f64 as Element>::PANEL * 8 == PANEL_BYTES
        && <f32 as Element>::PANEL <= 16
        && <f64 as Element>::PANEL <= 16
);

/// The element types of the packed kernel, and the AVX2/FMA operations on
/// a 256-bit vector of them that the kernel uses: `f32` in eight lanes,
/// `f64` in four. Implemented for these two only (it is a supertrait of
/// [`Real`](super::Real), which names no other type). Not part of the
/// crate's API: its items are reachable through `Real` but may change
/// in any release.
#[doc(hidden)]
pub trait Element: Copy + Default + std::ops::Add<Output = Self> + Send + Sync + 'static {
    /// Lanes per vector.
    const LANES: usize;
    /// Columns per panel: two vectors, [`PANEL_BYTES`].
    const PANEL: usize = 2 * Self::LANES;
    /// The vector type.
    #[cfg(target_arch = "x86_64")]
    type V: Copy;
    /// # Safety (every method)
    /// The processor has AVX2 and FMA; pointers are valid for a vector.
    #[cfg(target_arch = "x86_64")]
    unsafe fn vzero() -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn vload(p: *const Self) -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn vstore(p: *mut Self, v: Self::V);
    /// Every lane `*p`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn vsplat(p: *const Self) -> Self::V;
    /// `a * b + c`, one rounding.
    #[cfg(target_arch = "x86_64")]
    unsafe fn vfmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn vadd(a: Self::V, b: Self::V) -> Self::V;
}

/// Implements [`Element`] with one type's intrinsics.
macro_rules! element {
    ($t:ty, $lanes:expr, $v:ident, $zero:ident, $load:ident, $store:ident, $splat:ident, $fmadd:ident, $add:ident) => {
        impl Element for $t {
            const LANES: usize = $lanes;
            #[cfg(target_arch = "x86_64")]
            type V = std::arch::x86_64::$v;
            #[cfg(target_arch = "x86_64")]
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn vzero() -> Self::V {
                std::arch::x86_64::$zero()
            }
            #[cfg(target_arch = "x86_64")]
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn vload(p: *const Self) -> Self::V {
                std::arch::x86_64::$load(p)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn vstore(p: *mut Self, v: Self::V) {
                std::arch::x86_64::$store(p, v)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn vsplat(p: *const Self) -> Self::V {
                std::arch::x86_64::$splat(&*p)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn vfmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
                std::arch::x86_64::$fmadd(a, b, c)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn vadd(a: Self::V, b: Self::V) -> Self::V {
                std::arch::x86_64::$add(a, b)
            }
        }
    };
}

element!(
    f32,
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_broadcast_ss,
    _mm256_fmadd_ps,
    _mm256_add_ps
);
element!(
    f64,
    4,
    __m256d,
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_broadcast_sd,
    _mm256_fmadd_pd,
    _mm256_add_pd
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lstm::Real;

    /// Weights `w[k] = ((k * 37 % 101) - 50) / 64` and inputs `h[k] =
    /// ((k * 13 % 29) - 14) / 16`: every product is a multiple of 2^-10 of
    /// magnitude below 1, so every partial sum of these tests (at most 1030
    /// terms, plus a bias or `z` on a grid of 0.5) is exact in float32, in
    /// any order: the tests compare exactly.
    fn grids<T: Real>(w_len: usize, h_len: usize) -> (Vec<T>, Vec<T>) {
        let w = (0..w_len).map(|k| T::from_f64_lossy(((k * 37 % 101) as f64 - 50.0) / 64.0));
        let h = (0..h_len).map(|k| T::from_f64_lossy(((k * 13 % 29) as f64 - 14.0) / 16.0));
        (w.collect(), h.collect())
    }

    /// The input projection (`all`: bias + a @ w) past one depth block
    /// (1030 > 1024) and past one row chunk (100 rows > 96 float32, > 48
    /// float64), in both types, against the plain product.
    #[test]
    fn projection_across_depth_blocks_and_row_chunks() {
        projection_across::<f32>();
        projection_across::<f64>();
    }

    fn projection_across<T: Real>() {
        if !available() {
            return;
        }
        let (rows, depth, units) = (100, DEPTH_BLOCK + 6, 6);
        assert!(rows > chunk_rows::<T>());
        let width = 4 * units;
        let (w, a) = grids::<T>(depth * width, rows * depth);
        let bias: Vec<T> = (0..width)
            .map(|j| T::from_f64_lossy(j as f64 - 3.5))
            .collect();
        let shares = [0..4, 4..units];
        let packed = PackedRecurrent::new(&w, width, depth, units, &shares);
        // Garbage in z: `all` must write every value without reading it.
        let mut z = vec![T::from_f64_lossy(1e6); rows * width];
        unsafe { packed.all(rows, a.as_ptr(), depth, z.as_mut_ptr(), width, &bias) };
        for r in 0..rows {
            for j in 0..width {
                let dot: f64 = (0..depth)
                    .map(|k| a[r * depth + k].widen() * w[k * width + j].widen())
                    .sum();
                let expected = bias[j].widen() + dot;
                let got = z[r * width + j].widen();
                // Exact: see `grids`.
                assert_eq!(got, expected, "{}: [{r}, {j}]", T::NAME);
            }
        }
    }

    #[test]
    fn packed_step_equals_the_plain_product() {
        packed_step_equals::<f32>();
        packed_step_equals::<f64>();
    }

    fn packed_step_equals<T: Real>() {
        if !available() {
            return;
        }
        let (depth, units, w_rs) = (37, 37, 4 * 37 + 3);
        for rows in [1, 2, 5, 6, 7, 13] {
            let h_rs = depth + 2;
            let (w, h) = grids::<T>(depth * w_rs, rows * h_rs);
            let z_rs = 4 * units + 5;
            let z0: Vec<T> = (0..rows * z_rs)
                .map(|k| T::from_f64_lossy((k % 7) as f64))
                .collect();
            // Whole panels and partial ones (float32: widths 16, 5, 16 and
            // 0; float64: 8, 8, 5, 8, 8 and 0).
            let shares = [0..16, 16..21, 21..37, 37..37];
            let packed = PackedRecurrent::new(&w, w_rs, depth, units, &shares);
            let mut z = z0.clone();
            for thread in 0..shares.len() {
                unsafe {
                    packed.step(
                        thread,
                        rows,
                        h.as_ptr(),
                        h_rs,
                        z.as_mut_ptr(),
                        z_rs,
                        rows == 1,
                    )
                };
            }
            for b in 0..rows {
                for j in 0..z_rs {
                    let expected = if j < 4 * units {
                        let dot: f64 = (0..depth)
                            .map(|k| h[b * h_rs + k].widen() * w[k * w_rs + j].widen())
                            .sum();
                        z0[b * z_rs + j].widen() + dot
                    } else {
                        z0[b * z_rs + j].widen() // padding columns untouched
                    };
                    let got = z[b * z_rs + j].widen();
                    // Exact: see `grids`.
                    assert_eq!(got, expected, "{}: rows {rows}, [{b}, {j}]", T::NAME);
                }
            }
        }
    }
}
