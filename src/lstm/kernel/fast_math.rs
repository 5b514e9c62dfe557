//! Vectorised `float32` sigmoid and tanh for the common cell (sigmoid
//! gates, tanh cell and output, no peepholes or clip), used only when
//! [`RunOptions::fast_activations`](super::RunOptions::fast_activations) is
//! on.
//!
//! Why: as scalar libm calls, the five transcendentals per unit and step
//! cost as much as the recurrent matrix product at small and medium
//! shapes. The exact path is vectorised too (`exact_math`, libm's own
//! algorithms, bit for bit); this option saves a further 2-25% of a run
//! at the benchmark shapes (docs/performance.md, "What limits it"). These are branch-free polynomials (Cephes' `expf` and `tanhf`
//! coefficients) that the compiler turns into 8-lane AVX2/FMA code: within
//! a few float32 ULP of the exact value (`tests` below measures it against
//! `f64`), about as close as TensorFlow's own Eigen approximations, and the
//! parity suite passes with them at the default tolerance (`tests/cli.rs`).

/// Cephes `expf` polynomial for `exp(r) - 1 - r` on `|r| <= ln(2) / 2`.
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];
/// Cephes `tanhf` polynomial for `(tanh(x) - x) / x^3` on `|x| < 0.625`.
const TANH_P: [f32; 5] = [
    -5.704_988_7e-3,
    2.063_908_8e-2,
    -5.373_971_6e-2,
    1.333_144_2e-1,
    -3.333_328e-1,
];

/// `a * b + c`, fused when the caller was compiled with FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(x)` for `x` in `[-87, 88]` (clamped there: the callers only need
/// it inside `1 / (1 + exp)`, where the clamp changes nothing visible).
#[inline(always)]
fn exp<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to the nearest integer in any SIMD width.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let k = shifted - ROUND;
    let r = madd::<FMA>(-k, LN2_LO, madd::<FMA>(-k, LN2_HI, x));
    let mut p = EXP_P[0];
    for &coefficient in &EXP_P[1..] {
        p = madd::<FMA>(p, r, coefficient);
    }
    let e = madd::<FMA>(p, r * r, r) + 1.0;
    // k is in [-126, 127]: 2^k is a normal float built from its exponent
    // bits, k + 127. `shifted` is 1.5 * 2^23 + k, whose bits are those of
    // 1.5 * 2^23 plus k: integer arithmetic on the bits gives k + 127
    // without a float-to-int conversion. (`k as i32` is a saturating cast
    // in Rust, which the compiler does not vectorise: it made this loop a
    // chain of scalar conversions, 10 ns per unit instead of 2.)
    let biased = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    e * f32::from_bits(biased << 23)
}

/// `1 / (1 + exp(-x))`.
#[inline(always)]
fn sigmoid<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp::<FMA>(-x))
}

/// `tanh(x)`: an odd polynomial near 0, `1 - 2 / (exp(2|x|) + 1)` with the
/// sign of `x` elsewhere; both are computed and one is selected, so the
/// loop stays branch-free.
#[inline(always)]
fn tanh<const FMA: bool>(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let mut p = TANH_P[0];
    for &coefficient in &TANH_P[1..] {
        p = madd::<FMA>(p, z, coefficient);
    }
    let small = madd::<FMA>(p * z, x, x);
    let large = (1.0 - 2.0 / (exp::<FMA>(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

/// The standard cell over one row's units: `i, f, o = sigmoid`, `g = tanh`,
/// `c = f * c + i * g`, `m = o * tanh(c)`; the same formula and order as
/// the exact path, with these activations.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn cells_impl<const FMA: bool>(
    zi: &[f32],
    zf: &[f32],
    zg: &[f32],
    zo: &[f32],
    forget_bias: f32,
    c: &mut [f32],
    m: &mut [f32],
) {
    let n = c.len();
    let (zi, zf, zg, zo, m) = (&zi[..n], &zf[..n], &zg[..n], &zo[..n], &mut m[..n]);
    // Blocks of 8 units (one AVX2 vector) as slices of constant length: each
    // compiles to straight vector code, without the general loop's peeling
    // and checks. Measured on one thread, 128-256 units per call: 6.2 -> 4.4
    // ns per unit (blocks of 16 and 32 were no faster).
    const BLOCK: usize = 8;
    let full = n / BLOCK * BLOCK;
    for start in (0..full).step_by(BLOCK) {
        let r = start..start + BLOCK;
        cells_run::<FMA, BLOCK>(
            [
                &zi[r.clone()],
                &zf[r.clone()],
                &zg[r.clone()],
                &zo[r.clone()],
            ],
            forget_bias,
            &mut c[r.clone()],
            &mut m[r],
        );
    }
    for j in full..n {
        cells_run::<FMA, 1>(
            [&zi[j..=j], &zf[j..=j], &zg[j..=j], &zo[j..=j]],
            forget_bias,
            &mut c[j..=j],
            &mut m[j..=j],
        );
    }
}

/// The cell formula over `N` units (slices of exactly `N`).
#[inline(always)]
fn cells_run<const FMA: bool, const N: usize>(
    [zi, zf, zg, zo]: [&[f32]; 4],
    forget_bias: f32,
    c: &mut [f32],
    m: &mut [f32],
) {
    let (zi, zf, zg, zo) = (&zi[..N], &zf[..N], &zg[..N], &zo[..N]);
    let (c, m) = (&mut c[..N], &mut m[..N]);
    for j in 0..N {
        let i = sigmoid::<FMA>(zi[j]);
        let f = sigmoid::<FMA>(zf[j] + forget_bias);
        let g = tanh::<FMA>(zg[j]);
        let c_new = f * c[j] + i * g;
        let o = sigmoid::<FMA>(zo[j]);
        c[j] = c_new;
        m[j] = o * tanh::<FMA>(c_new);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn cells_avx2(
    zi: &[f32],
    zf: &[f32],
    zg: &[f32],
    zo: &[f32],
    forget_bias: f32,
    c: &mut [f32],
    m: &mut [f32],
) {
    cells_impl::<true>(zi, zf, zg, zo, forget_bias, c, m);
}

/// The standard cell over one row's units with the fast activations: AVX2
/// and FMA when the processor has them, else the same code for the
/// baseline instruction set.
pub(crate) fn cells(
    zi: &[f32],
    zf: &[f32],
    zg: &[f32],
    zo: &[f32],
    forget_bias: f32,
    c: &mut [f32],
    m: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the processor has both features.
        unsafe { cells_avx2(zi, zf, zg, zo, forget_bias, c, m) };
        return;
    }
    cells_impl::<false>(zi, zf, zg, zo, forget_bias, c, m);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in float32 ULP at the magnitude of `exact` (at least the
    /// ULP of the smallest normal around 0).
    fn ulps(got: f32, exact: f64) -> f64 {
        let ulp = (exact.abs().max(f64::from(f32::MIN_POSITIVE)) as f32).to_bits();
        let ulp = f64::from(f32::from_bits(ulp + 1) - f32::from_bits(ulp));
        (f64::from(got) - exact).abs() / ulp
    }

    fn sweep() -> impl Iterator<Item = f32> {
        (-200_000..=200_000).map(|k| k as f32 * 1e-4)
    }

    #[test]
    fn within_a_few_ulp_of_f64() {
        for fma in [false, true] {
            let (mut worst_s, mut worst_t) = (0.0f64, 0.0f64);
            for x in sweep() {
                let (s, t) = if fma {
                    (sigmoid::<true>(x), tanh::<true>(x))
                } else {
                    (sigmoid::<false>(x), tanh::<false>(x))
                };
                let xd = f64::from(x);
                worst_s = worst_s.max(ulps(s, 1.0 / (1.0 + (-xd).exp())));
                worst_t = worst_t.max(ulps(t, xd.tanh()));
            }
            assert!(worst_s <= 4.0, "sigmoid: {worst_s} ulp (fma {fma})");
            assert!(worst_t <= 4.0, "tanh: {worst_t} ulp (fma {fma})");
        }
    }

    #[test]
    fn saturates_without_nan() {
        for x in [-1e30f32, -1e4, -100.0, -88.5, 88.5, 100.0, 1e4, 1e30] {
            let (s, t) = (sigmoid::<false>(x), tanh::<false>(x));
            assert!(
                s.is_finite() && (0.0..=1.0).contains(&s),
                "sigmoid({x}) = {s}"
            );
            assert_eq!(t, x.signum(), "tanh({x})");
        }
        assert_eq!(tanh::<false>(0.0), 0.0);
        assert_eq!(sigmoid::<false>(0.0), 0.5);
    }

    #[test]
    fn dispatch_equals_the_formula() {
        let n = 37;
        let z: Vec<f32> = (0..4 * n).map(|k| (k as f32 - 70.0) * 0.13).collect();
        let mut c: Vec<f32> = (0..n).map(|k| (k as f32 - 18.0) * 0.1).collect();
        let c0 = c.clone();
        let mut m = vec![0.0; n];
        cells(
            &z[..n],
            &z[n..2 * n],
            &z[2 * n..3 * n],
            &z[3 * n..],
            1.0,
            &mut c,
            &mut m,
        );
        for j in 0..n {
            let s = |x: f64| 1.0 / (1.0 + (-x).exp());
            let zd = |k: usize| f64::from(z[k * n + j]);
            let c_new = s(zd(1) + 1.0) * f64::from(c0[j]) + s(zd(0)) * zd(2).tanh();
            let m_new = s(zd(3)) * c_new.tanh();
            assert!((f64::from(c[j]) - c_new).abs() < 1e-6, "c[{j}]");
            assert!((f64::from(m[j]) - m_new).abs() < 1e-6, "m[{j}]");
        }
    }
}
