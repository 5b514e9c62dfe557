//! Benchmark of the Rust LSTM kernel at fixed shapes, in the same units and
//! JSON line format as `scripts/bench_peers.py`, so that `scripts/bench_all`
//! can put both in one table.
//!
//! One measurement: a one-layer LSTM with `input = hidden`, random weights
//! and inputs (fixed seed), run through [`lstm::run_with`] without the
//! per-step trace (the peers do not record one either). A warm-up run, then
//! repeats until both a minimum count and a minimum time are reached; the
//! reported time is the **median** (robust to the other work on a shared
//! machine). FLOPs are counted as `2 * T * B * 4H * (I + H)`: the two matrix
//! products per step, not the activations.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use ndarray::{Array1, Array2, Array3};
use serde::Serialize;

use crate::lstm::{self, Layer, Real, RunOptions, Sequence};

/// One benchmark shape: batch, time steps, and `input = hidden` size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Batch size B.
    pub batch: usize,
    /// Time steps T.
    pub time: usize,
    /// Input and hidden size I = H.
    pub hidden: usize,
}

/// The most memory a benchmarked shape may take by
/// [`Shape::memory_estimate`]: 8 GiB (a third of this project's machines).
pub const MAX_MEMORY_BYTES: u64 = 8 << 30;

/// The memory a benchmarked shape may take here: [`MAX_MEMORY_BYTES`], or
/// half of what this process may map (`RLIMIT_AS`) or what the machine
/// has available (`MemAvailable`), whichever is least: a shape past it is
/// refused, not aborted on a failed allocation.
pub fn memory_limit() -> u64 {
    let mut limit = MAX_MEMORY_BYTES;
    #[cfg(unix)]
    {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) } == 0
            && r.rlim_cur != libc::RLIM_INFINITY
        {
            limit = limit.min(r.rlim_cur / 2);
        }
    }
    if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
        let available = text
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(kb) = available {
            limit = limit.min(kb * 1024 / 2);
        }
    }
    limit
}

/// The most threads a benchmark may ask for: four per core of this
/// machine (more only measures the scheduler).
pub fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The longest `min_time` a benchmark may ask for, in seconds.
pub const MAX_MIN_TIME_SECONDS: f64 = 3600.0;

/// The standard shapes: DeepBench-like, large, medium, streaming.
pub const SHAPES: [Shape; 4] = [
    Shape::new(64, 50, 512),
    Shape::new(128, 25, 1024),
    Shape::new(16, 100, 256),
    Shape::new(1, 200, 128),
];

impl Shape {
    /// `(batch, time, hidden)`.
    pub const fn new(batch: usize, time: usize, hidden: usize) -> Self {
        Shape {
            batch,
            time,
            hidden,
        }
    }

    /// An estimate of the memory a run of this shape takes, in bytes, for
    /// elements of `element_bytes` bytes: the layer's weights with their
    /// packed copy, the inputs, the gate buffer and the outputs
    /// (`element_bytes * (3 * 4H * H + 4H + B * T * 6H)`). `None` when the
    /// count does not fit in `u64`.
    pub fn memory_estimate(&self, element_bytes: usize) -> Option<u64> {
        let (b, t, h) = (self.batch as u64, self.time as u64, self.hidden as u64);
        let weights = h
            .checked_mul(h)?
            .checked_mul(12)?
            .checked_add(h.checked_mul(4)?)?;
        let sequence = b.checked_mul(t)?.checked_mul(h)?.checked_mul(6)?;
        weights
            .checked_add(sequence)?
            .checked_mul(element_bytes as u64)
    }

    /// Check that a run of this shape fits [`memory_limit`].
    ///
    /// # Errors
    /// [`BenchError::TooLarge`] naming the shape and its estimate.
    pub fn check_fits(&self, element_bytes: usize) -> Result<(), BenchError> {
        let limit = memory_limit();
        match self.memory_estimate(element_bytes) {
            Some(n) if n <= limit => Ok(()),
            estimate => Err(BenchError::TooLarge {
                shape: *self,
                element_bytes,
                estimate,
                limit,
            }),
        }
    }

    /// Floating-point operations of one layer: `2 * T * B * 4H * (I + H)`.
    pub fn flops(&self) -> f64 {
        let (b, t, h) = (self.batch as f64, self.time as f64, self.hidden as f64);
        2.0 * t * b * 4.0 * h * (h + h)
    }
}

impl fmt::Display for Shape {
    /// `B64-T50-H512`, the name used in every benchmark's JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "B{}-T{}-H{}", self.batch, self.time, self.hidden)
    }
}

impl FromStr for Shape {
    type Err = BenchError;

    /// `B64-T50-H512` (case-insensitive; the letters may be left out: `64-50-512`).
    fn from_str(s: &str) -> Result<Self, BenchError> {
        let bad = || BenchError::BadShape(s.to_string());
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        let mut numbers = [0usize; 3];
        for (k, (part, prefix)) in parts.iter().zip(['b', 't', 'h']).enumerate() {
            let part = part.trim().to_ascii_lowercase();
            let digits = part.strip_prefix(prefix).unwrap_or(&part);
            numbers[k] = digits.parse().map_err(|_| bad())?;
            if numbers[k] == 0 {
                return Err(bad());
            }
        }
        Ok(Shape::new(numbers[0], numbers[1], numbers[2]))
    }
}

/// Why a benchmark request is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BenchError {
    /// A shape that does not parse.
    #[error("bad shape {0:?}: expected B64-T50-H512")]
    BadShape(String),
    /// A shape past [`memory_limit`].
    #[error("shape {shape} {}", too_large(*estimate, *element_bytes, *limit))]
    TooLarge {
        /// The shape.
        shape: Shape,
        /// The element size.
        element_bytes: usize,
        /// Its memory estimate (`None`: past `u64`).
        estimate: Option<u64>,
        /// The limit here.
        limit: u64,
    },
    /// A thread count outside `1..=max_threads()`.
    #[error("--threads {given}: must be from 1 to {max} (four per core)")]
    Threads {
        /// The count asked for.
        given: usize,
        /// [`max_threads`].
        max: usize,
    },
    /// A minimum time that is not a number of seconds in range.
    #[error("{0:?}: must be a number of seconds from 0 to {MAX_MIN_TIME_SECONDS}")]
    MinTime(String),
}

fn too_large(estimate: Option<u64>, element_bytes: usize, limit: u64) -> String {
    let gib = |n: u64| n as f64 / f64::from(1u32 << 30);
    match estimate {
        Some(n) => format!(
            "needs about {:.1} GiB with {element_bytes}-byte elements, more than the {:.1} GiB the benchmark allows here",
            gib(n),
            gib(limit)
        ),
        None => "is too large to count its memory".into(),
    }
}

/// Parse `--min-time`: seconds, finite, from 0 to [`MAX_MIN_TIME_SECONDS`].
///
/// # Errors
/// [`BenchError::MinTime`].
pub fn parse_min_time(s: &str) -> Result<Duration, BenchError> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| BenchError::MinTime(s.to_string()))?;
    if !(0.0..=MAX_MIN_TIME_SECONDS).contains(&v) {
        return Err(BenchError::MinTime(s.to_string()));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Which float types a benchmark times (the command line's `--dtype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtypes {
    /// `f32` only.
    #[value(help = "float32 only")]
    Float32,
    /// `f64` only.
    #[value(help = "float64 only")]
    Float64,
    /// Both, `f32` first.
    #[value(help = "both, float32 first")]
    All,
}

/// Which activations a benchmark times (the command line's `--activations`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Activations {
    /// libm's (the default everywhere).
    #[value(help = "libm's, the default everywhere")]
    Exact,
    /// The vectorised float32 sigmoid/tanh ([`RunOptions::fast_activations`]).
    #[value(help = "vectorised float32 sigmoid and tanh")]
    Fast,
    /// Both, exact first.
    #[value(help = "both, exact first")]
    Both,
}

/// What `lstm-parity bench` asks for.
#[derive(Clone, Debug)]
pub struct Request {
    /// The shapes (empty: [`SHAPES`]).
    pub shapes: Vec<Shape>,
    /// Threads (`None`: automatic).
    pub threads: Option<usize>,
    /// Which float types.
    pub dtypes: Dtypes,
    /// Which activations.
    pub activations: Activations,
    /// Pack the weights once ([`lstm::Prepared`]) rather than in every run.
    pub prepared: bool,
    /// How long and how often.
    pub repeats: Repeats,
}

impl Request {
    /// The shapes asked for ([`SHAPES`] when none).
    pub fn shapes(&self) -> Vec<Shape> {
        if self.shapes.is_empty() {
            SHAPES.to_vec()
        } else {
            self.shapes.clone()
        }
    }

    /// Check the request before anything runs.
    ///
    /// # Errors
    /// A [`BenchError`]: a thread count out of range or a shape past
    /// [`memory_limit`].
    pub fn validate(&self) -> Result<(), BenchError> {
        if let Some(n) = self.threads.filter(|&n| n == 0 || n > max_threads()) {
            return Err(BenchError::Threads {
                given: n,
                max: max_threads(),
            });
        }
        let element_bytes = if self.dtypes == Dtypes::Float32 { 4 } else { 8 };
        self.shapes()
            .iter()
            .try_for_each(|shape| shape.check_fits(element_bytes))
    }

    /// Measure every shape, dtype and activation asked for, passing each
    /// result to `each` as soon as it is measured.
    ///
    /// # Errors
    /// As [`Request::validate`], before anything runs.
    pub fn run(&self, mut each: impl FnMut(&Measurement)) -> Result<(), BenchError> {
        self.validate()?;
        let fast_modes: &[bool] = match self.activations {
            Activations::Exact => &[false],
            Activations::Fast => &[true],
            Activations::Both => &[false, true],
        };
        let (threads, prepared, repeats) = (self.threads, self.prepared, self.repeats);
        for shape in self.shapes() {
            for &fast in fast_modes {
                if self.dtypes != Dtypes::Float64 {
                    each(&measure::<f32>(shape, threads, fast, prepared, repeats));
                }
                if self.dtypes != Dtypes::Float32 {
                    each(&measure::<f64>(shape, threads, fast, prepared, repeats));
                }
            }
        }
        Ok(())
    }
}

/// How long and how often to measure.
#[derive(Clone, Copy, Debug)]
pub struct Repeats {
    /// Untimed runs first (page faults, caches, thread start-up).
    pub warmup: usize,
    /// At least this many timed runs...
    pub min_runs: usize,
    /// ...and at least this much timed time (capped by `max_runs`).
    pub min_time: Duration,
    /// At most this many timed runs.
    pub max_runs: usize,
}

impl Default for Repeats {
    fn default() -> Self {
        Repeats {
            warmup: 2,
            min_runs: 7,
            min_time: Duration::from_secs(1),
            max_runs: 200,
        }
    }
}

/// One result, one JSON line:
/// `{"impl": "lstm-parity", "shape": "B64-T50-H512", "dtype": "float32", "ms": ..., "gflops": ..., "threads": 2}`.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// The implementation: [`implementation_name`].
    #[serde(rename = "impl")]
    pub implementation: String,
    /// [`Shape`] as `B64-T50-H512`.
    pub shape: String,
    /// `float32` or `float64`.
    pub dtype: String,
    /// Median wall time of one run, milliseconds.
    pub ms: f64,
    /// [`Shape::flops`] / median time, in GFLOP/s.
    pub gflops: f64,
    /// Threads over the steps (the automatic choice when not given).
    pub threads: usize,
    /// Threads over the input projection.
    pub projection_threads: usize,
    /// Timed runs.
    pub runs: usize,
    /// Whether the weights were packed once ([`lstm::Prepared`]) rather
    /// than in every run.
    pub prepared: bool,
}

impl Measurement {
    /// The header of `lstm-parity bench`'s table.
    pub const TABLE_HEADER: &'static str =
        "impl              shape          dtype            ms   GFLOP/s threads (projection/steps)";

    /// This measurement as a row of that table.
    pub fn table_row(&self) -> String {
        format!(
            "{:<17} {:<14} {:<8} {:>10.3} {:>9.1} {:>7}",
            self.implementation,
            self.shape,
            self.dtype,
            self.ms,
            self.gflops,
            format!("{}/{}", self.projection_threads, self.threads)
        )
    }
}

/// Deterministic values in `[-scale, scale)` (a 64-bit LCG: no dependency,
/// the same numbers on every machine).
fn values(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// The benchmark layer and input for `shape`: weights uniform in
/// `±1/sqrt(H)` (Keras' and PyTorch's scale), inputs in `±1`.
pub fn problem<T: Real>(shape: Shape) -> (Layer<T>, Array3<T>) {
    let h = shape.hidden;
    let scale = 1.0 / (h as f64).sqrt();
    let cast = |v: Vec<f64>| -> Vec<T> { v.into_iter().map(T::from_f64_lossy).collect() };
    let layer = Layer::new(
        Array2::from_shape_vec((h, 4 * h), cast(values(h * 4 * h, 1, scale))).expect("w_x"),
        Array2::from_shape_vec((h, 4 * h), cast(values(h * 4 * h, 2, scale))).expect("w_h"),
        Array1::from_vec(cast(values(4 * h, 3, scale))),
    );
    let x = Array3::from_shape_vec(
        (shape.batch, shape.time, h),
        cast(values(shape.batch * shape.time * h, 4, 1.0)),
    )
    .expect("inputs");
    (layer, x)
}

/// The thread counts the kernel picks for `shape` under `threads`:
/// `(input projection, steps)`.
pub fn threads_used(shape: Shape, threads: Option<usize>) -> (usize, usize) {
    let (b, t, h) = (shape.batch, shape.time, shape.hidden);
    lstm::layer_threads(b, t, h, h, h, threads)
}

/// The implementation name of a measurement: `lstm-parity` with the exact
/// (libm) activations, `lstm-parity-fast` with
/// [`RunOptions::fast_activations`].
pub fn implementation_name(fast_activations: bool) -> &'static str {
    if fast_activations {
        "lstm-parity-fast"
    } else {
        "lstm-parity"
    }
}

/// Measure the kernel at `shape` in `T` with `threads` (`None`: automatic)
/// and exact or fast activations. `prepared`: the weights are packed once,
/// in the first warm-up run, and kept ([`lstm::Prepared`], as onnxruntime
/// packs them once per session); else packed in every run
/// ([`lstm::run_with`]).
pub fn measure<T: Real>(
    shape: Shape,
    threads: Option<usize>,
    fast_activations: bool,
    prepared: bool,
    repeats: Repeats,
) -> Measurement {
    let (layer, x) = problem::<T>(shape);
    let model = lstm::Prepared::new(vec![layer]);
    let seq = Sequence::new(x.view());
    let options = RunOptions {
        trace: false,
        threads,
        fast_activations,
    };
    let once = || {
        let out = if prepared {
            model.run_with(&seq, &options)
        } else {
            lstm::run_with(model.layers(), &seq, &options)
        };
        std::hint::black_box(out.expect("benchmark shapes fit"));
    };
    for _ in 0..repeats.warmup {
        once();
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < repeats.max_runs.max(1)
        && (times.len() < repeats.min_runs || started.elapsed() < repeats.min_time)
    {
        let t = Instant::now();
        once();
        times.push(t.elapsed().as_secs_f64());
    }
    let seconds = median(&mut times);
    Measurement {
        implementation: implementation_name(fast_activations).into(),
        shape: shape.to_string(),
        dtype: T::NAME.into(),
        ms: seconds * 1e3,
        gflops: shape.flops() / seconds / 1e9,
        threads: threads_used(shape, threads).1,
        projection_threads: threads_used(shape, threads).0,
        runs: times.len(),
        prepared,
    }
}

/// The median (mean of the middle two for an even count).
fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    }
}

/// [`StepProduct`]'s weights and inputs: `w_h[k]` and `h[k]` (row-major).
/// Multiples of 2^-10 in [-0.3, 0.3): exact in either type, and so are
/// the products and their sums in the tests below.
fn step_value<T: Real>(k: usize) -> T {
    T::from_f64_lossy(((k * 7919 % 613) as f64 - 306.0) / 1024.0)
}

/// The recurrent product of one step alone, `z += h @ w_h` for `rows` rows
/// of `depth` values over `4 * units` gate columns, on the calling thread,
/// with `w_h` packed as a layer run packs it: what the kernel computes per
/// step and thread, without the rest of the layer (the cell pass, the
/// barrier, the input projection). `cargo bench -- step-product` uses it to
/// ask whether B16-T100-H256's per-thread product (8 rows over all 1 MiB of
/// `w_h`, which does not fit in this machine's 512 KiB L2) runs slower per
/// FLOP than the same rows over a `w_h` that fits.
pub struct StepProduct<T: Real> {
    packed: crate::lstm::recurrent::PackedRecurrent<T>,
    rows: usize,
    depth: usize,
    units: usize,
    h: Vec<T>,
    z: Vec<T>,
}

impl<T: Real> StepProduct<T> {
    /// Deterministic weights and inputs of these sizes; `None` where the
    /// packed kernel does not run (a processor without AVX2 and FMA).
    pub fn new(rows: usize, depth: usize, units: usize) -> Option<Self> {
        use crate::lstm::recurrent::{self, PackedRecurrent};
        if !recurrent::available() {
            return None;
        }
        let w: Vec<T> = (0..depth * 4 * units).map(step_value).collect();
        let shares: Vec<_> = std::iter::once(0..units).collect();
        let packed = PackedRecurrent::new(&w, 4 * units, depth, units, &shares);
        Some(StepProduct {
            packed,
            rows,
            depth,
            units,
            h: (0..rows * depth).map(step_value).collect(),
            z: vec![T::zero(); rows * 4 * units],
        })
    }

    /// Floating-point operations of one [`run`](Self::run).
    pub fn flops(&self) -> u64 {
        (2 * self.rows * self.depth * 4 * self.units) as u64
    }

    /// One step's product (it adds into the same `z` every time).
    pub fn run(&mut self) {
        // SAFETY: `new` checked the processor; `h` holds `rows` rows of
        // `depth` values and `z` `rows` rows of `4 * units`, owned by self.
        unsafe {
            self.packed.step(
                0,
                self.rows,
                self.h.as_ptr(),
                self.depth,
                self.z.as_mut_ptr(),
                4 * self.units,
                false,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs add `h @ w_h` twice, exactly, in both types, with partial
    /// panels only (5 units) and whole and partial ones (20 units).
    #[test]
    fn step_product_adds_the_product() {
        step_product_adds::<f32>();
        step_product_adds::<f64>();
    }

    fn step_product_adds<T: Real>() {
        for units in [5, 20] {
            let (rows, depth) = (3, 11);
            let Some(mut product) = StepProduct::<T>::new(rows, depth, units) else {
                return; // no AVX2/FMA: nothing to run
            };
            assert_eq!(product.flops(), (2 * rows * depth * 4 * units) as u64);
            product.run();
            product.run();
            for b in 0..rows {
                for j in 0..4 * units {
                    let dot: f64 = (0..depth)
                        .map(|k| {
                            let h = step_value::<T>(b * depth + k).widen();
                            h * step_value::<T>(k * 4 * units + j).widen()
                        })
                        .sum();
                    // Exact (see `step_value`).
                    let got = product.z[b * 4 * units + j].widen();
                    assert_eq!(got, 2.0 * dot, "{} {units} units [{b}, {j}]", T::NAME);
                }
            }
        }
    }

    #[test]
    fn shapes_parse_and_print() {
        let s: Shape = "B64-T50-H512".parse().unwrap();
        assert_eq!(s, Shape::new(64, 50, 512));
        assert_eq!(s.to_string(), "B64-T50-H512");
        assert_eq!(
            "1-200-128".parse::<Shape>().unwrap(),
            Shape::new(1, 200, 128)
        );
        assert!("B64-T50".parse::<Shape>().is_err());
        assert!("B0-T1-H1".parse::<Shape>().is_err());
    }

    #[test]
    fn flops_count_both_products() {
        // 2 * T * B * 4H * (I + H) with I = H.
        assert_eq!(Shape::new(1, 1, 1).flops(), 16.0);
        assert_eq!(
            Shape::new(64, 50, 512).flops(),
            2.0 * 50.0 * 64.0 * 2048.0 * 1024.0
        );
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_tiny_measurement_is_sane() {
        let quick = Repeats {
            warmup: 0,
            min_runs: 1,
            min_time: Duration::ZERO,
            max_runs: 1,
        };
        for prepared in [true, false] {
            let m = measure::<f32>(Shape::new(2, 3, 8), Some(1), false, prepared, quick);
            assert_eq!(m.shape, "B2-T3-H8");
            assert_eq!(m.dtype, "float32");
            assert_eq!(m.runs, 1);
            assert_eq!(m.prepared, prepared);
            assert!(m.ms > 0.0 && m.gflops > 0.0);
        }
    }
}
