//! Criterion benchmarks of the LSTM kernel at the standard shapes
//! (`lstm_parity::bench::SHAPES`), and of the two GEMM crates considered
//! for it at the shapes of one recurrent step.
//!
//! `cargo bench` runs them (never `cargo test`). Thread counts follow
//! `LSTM_PARITY_THREADS` (default: every core); `lstm-parity bench` and
//! `scripts/bench_all` are the side-by-side comparison with other LSTMs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lstm_parity::bench::{problem, Shape, SHAPES};
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
/// `gemm` (the fallback for float64 and non-AVX2 processors) against
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

criterion_group!(benches, kernel, gemm_crates);
criterion_main!(benches);
