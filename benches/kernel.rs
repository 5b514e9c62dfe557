//! Criterion benchmarks of the LSTM kernel at the standard shapes
//! (`lstm_parity::bench::SHAPES`), of the two GEMM crates considered
//! for it at the shapes of one recurrent step, and of the packed kernel's
//! per-step product alone (`step-product`).
//!
//! `cargo bench` runs them (never `cargo test`). Thread counts follow
//! `LSTM_PARITY_THREADS` (default: every core); `lstm-parity bench` and
//! `scripts/bench_all` are the side-by-side comparison with other LSTMs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lstm_parity::bench::{problem, Shape, StepProduct, SHAPES};
use lstm_parity::lstm::{self, Real, RunOptions, Sequence};
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;

fn run_shape<T: Real>(
    c: &mut Criterion,
    group_name: &str,
    fast_activations: bool,
    shapes: &[Shape],
) {
    let mut group = c.benchmark_group(group_name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for &shape in shapes {
        let (layer, x) = problem::<T>(shape);
        // Weights packed once (in the warm-up), as `lstm-parity bench` does.
        let model = lstm::Prepared::new(vec![layer]);
        let options = RunOptions {
            trace: false,
            threads: None,
            fast_activations,
        };
        group.throughput(Throughput::Elements(shape.flops() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(shape), &shape, |b, _| {
            b.iter(|| {
                let seq = Sequence::new(x.view());
                black_box(model.run_with(&seq, &options).unwrap())
            })
        });
    }
    group.finish();
}

fn kernel(c: &mut Criterion) {
    run_shape::<f32>(c, "lstm/float32", false, &SHAPES);
    run_shape::<f32>(c, "lstm/float32-fast", true, &SHAPES);
    run_shape::<f64>(c, "lstm/float64", false, &SHAPES[2..]);
}

/// One recurrent step's product `[B, H] x [H, 4H]`, single-threaded:
/// `gemm` (the fallback without AVX2/FMA, and the output projection) against
/// `matrixmultiply` through ndarray.
fn gemm_crates(c: &mut Criterion) {
    let mut group = c.benchmark_group("step-gemm/float32");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300));
    for &shape in &SHAPES {
        let (b, h) = (shape.batch, shape.hidden);
        let a = Array2::<f32>::from_shape_fn((b, h), |(i, j)| ((i * 7 + j * 3) % 13) as f32 * 0.01);
        let w = Array2::<f32>::from_shape_fn((h, 4 * h), |(i, j)| ((i * 5 + j) % 11) as f32 * 0.01);
        let mut out = Array2::<f32>::zeros((b, 4 * h));
        group.throughput(Throughput::Elements((2 * b * h * 4 * h) as u64));
        group.bench_function(BenchmarkId::new("matrixmultiply", shape), |bench| {
            bench.iter(|| general_mat_mul(1.0, &a, &w, 1.0, &mut out))
        });
        group.bench_function(BenchmarkId::new("gemm", shape), |bench| {
            bench.iter(|| unsafe {
                gemm::gemm(
                    b,
                    4 * h,
                    h,
                    out.as_mut_ptr(),
                    1,
                    4 * h as isize,
                    true,
                    a.as_ptr(),
                    1,
                    h as isize,
                    w.as_ptr(),
                    1,
                    4 * h as isize,
                    1.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            })
        });
    }
    group.finish();
}

/// The packed recurrent product of one step alone, single-threaded, at
/// B16-T100-H256's per-thread rows (8 with the batch split) and depth
/// (256), over `w_h` of 1 MiB (H = 256: every step reads it from L3), of
/// 512 KiB (128 units: this machine's whole L2) and of 256 KiB (64 units:
/// it stays in L2). The same FLOPs
/// per second at every size mean that the weights' size is not what
/// limits B16. Beside them, the same statistic for a register-only FMA
/// loop (`fma-peak`): the most this core gives in the same minutes; and for
/// the kernel's instruction mix with everything in L1 (`kernel-mix-in-L1`).
fn step_product(c: &mut Criterion) {
    let mut group = c.benchmark_group("step-product/float32");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300));
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        const ITERS: usize = 4096;
        // 12 independent accumulators x 8 lanes x 2 FLOPs per iteration.
        group.throughput(Throughput::Elements((12 * 8 * 2 * ITERS) as u64));
        group.bench_function("fma-peak", |b| {
            // SAFETY: the features were checked above.
            b.iter(|| unsafe { fma_loop(black_box(ITERS)) })
        });
        let (w, a) = (vec![0.001f32; 32 * 16], vec![0.002f32; 6 * 64]);
        group.bench_function("kernel-mix-in-L1", |b| {
            // SAFETY: as above; the loop stays inside both buffers.
            b.iter(|| unsafe { mix_loop(black_box(ITERS), &w, &a) })
        });
    }
    for units in [256, 128, 64] {
        let Some(mut product) = StepProduct::<f32>::new(8, 256, units) else {
            eprintln!("step-product: no AVX2/FMA here, the packed kernel does not run");
            return;
        };
        let kib = 256 * 4 * units * 4 / 1024;
        group.throughput(Throughput::Elements(product.flops()));
        let id = BenchmarkId::new("rows8-depth256", format!("w_h-{kib}KiB"));
        group.bench_function(id, |b| b.iter(|| product.run()));
    }
    group.finish();
}

/// `iters` rounds of 12 independent 8-lane FMAs, nothing but registers:
/// enough chains to cover the FMA latency on both FMA ports.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, x| _mm256_add_ps(s, *x));
    _mm256_cvtss_f32(sum)
}

/// The 6 x 16 block's instructions per step of k (2 weight loads, 6
/// broadcasts, 12 FMAs) over 2 KiB of weights and 1.5 KiB of inputs, both
/// in L1: the kernel's instruction mix without its memory traffic, stores
/// or panel changes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn mix_loop(iters: usize, w: &[f32], a: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    assert!(w.len() >= 32 * 16 && a.len() >= 5 * 64 + 32);
    let mut acc = [[_mm256_setzero_ps(); 2]; 6];
    let mut k = 0usize;
    for _ in 0..iters {
        let w0 = _mm256_loadu_ps(w.as_ptr().add(k * 16));
        let w1 = _mm256_loadu_ps(w.as_ptr().add(k * 16 + 8));
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm256_broadcast_ss(&*a.as_ptr().add(r * 64 + k));
            acc[0] = _mm256_fmadd_ps(x, w0, acc[0]);
            acc[1] = _mm256_fmadd_ps(x, w1, acc[1]);
        }
        k = (k + 1) % 32;
    }
    let sum = acc
        .iter()
        .flatten()
        .fold(_mm256_setzero_ps(), |s, x| _mm256_add_ps(s, *x));
    _mm256_cvtss_f32(sum)
}

criterion_group!(benches, kernel, gemm_crates, step_product);
criterion_main!(benches);
