//! The exact `float32` sigmoid and tanh of the default path, eight values
//! at a time: bit for bit the values of the scalar libm calls
//! (`1 / (1 + expf(-x))` and `tanhf(x)`) they replace.
//!
//! Why: as scalar libm calls, five per unit and step (glibc's `tanhf`
//! calls `expm1f`), the exact activations are 23-48% of the default path's
//! time at the benchmark shapes. Here the same algorithms run in AVX2
//! lanes:
//!
//! * `expf` as in glibc 2.27+ (from Arm's optimized routines, with its
//!   multiply-adds fused as in glibc's x86-64 build for processors with
//!   FMA): in `double`, `x * 32 / ln 2 = k + r`, `2^(k/32)` from a 32-entry table
//!   and a cubic in `r`, rounded once to `float`.
//! * `tanhf` as in glibc up to at least 2.36 (the Sun `s_tanhf.c`): `1 -
//!   2 / (expm1f(2|x|) + 2)` from `|x| = 1` on, `-t / (t + 2)` with `t =
//!   expm1f(-2|x|)` below, `±1` from 22 on; and `expm1f` (Sun
//!   `s_expm1f.c`) in `float` with its argument reduction and each of its
//!   final cases as a lane mask.
//!
//! Lanes outside the ranges handled here (NaN, infinities, `|x| >= 88`
//! for the sigmoid) send their whole vector to the scalar calls, which
//! makes them the same values by construction. The tests compare every
//! lane with the scalar call over a sweep of float32 bit patterns (every
//! 251st, and every one with `LSTM_PARITY_EXHAUSTIVE=1`: all 2^32 inputs
//! of both functions gave libm's bits here, glibc 2.36 on AMD EPYC, in
//! 121 s). On a platform whose libm computes these functions otherwise,
//! the tests fail, and [`available`]'s check at first use (a sample of
//! inputs against the scalar calls) turns the vector path off, so the
//! exact path keeps the platform's scalar values there.
//!
//! At the benchmark shapes (`lstm-parity bench`, two threads, exact
//! activations, the same minutes), this path against the scalar calls:
//! B64-T50-H512 112-119 ms against 167-172; B16-T100-H256 18.7-18.8 ms
//! against 30.1-30.5; B1-T200-H128 1.2-1.3 ms against 1.9-2.3
//! (docs/performance.md).

// Only the x86-64 build uses the tables and the scalar helpers.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// `2^(i/32)` as the bits of a double, minus `i << 47` (so that adding
/// `k << 47` for `k = i mod 32` gives `2^(k/32)`): glibc's `__exp2f_data.tab`.
/// Each entry is checked against `2^(i/32)` in `tests`.
const EXP2_TABLE: [u64; 32] = [
    0x3ff0000000000000,
    0x3fefd9b0d3158574,
    0x3fefb5586cf9890f,
    0x3fef9301d0125b51,
    0x3fef72b83c7d517b,
    0x3fef54873168b9aa,
    0x3fef387a6e756238,
    0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715,
    0x3feef1a7373aa9cb,
    0x3feedea64c123422,
    0x3feece086061892d,
    0x3feebfdad5362a27,
    0x3feeb42b569d4f82,
    0x3feeab07dd485429,
    0x3feea47eb03a5585,
    0x3feea09e667f3bcd,
    0x3fee9f75e8ec5f74,
    0x3feea11473eb0187,
    0x3feea589994cce13,
    0x3feeace5422aa0db,
    0x3feeb737b0cdc5e5,
    0x3feec49182a3f090,
    0x3feed503b23e255d,
    0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47,
    0x3fef199bdd85529c,
    0x3fef3720dcef9069,
    0x3fef5818dcfba487,
    0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da,
    0x3fefd0765b6e4540,
];
/// `32 / ln 2`.
const INV_LN2_32: f64 = std::f64::consts::LOG2_E * 32.0;
/// `1.5 * 2^52`: adding it rounds to an integer, kept in the low bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// The cubic for `2^(r/32)`, highest power first.
const EXP2_POLY: [f64; 3] = [
    0.055_503_615_593_415_35 / 32.0 / 32.0 / 32.0,
    0.240_228_452_244_572_2 / 32.0 / 32.0,
    0.693_147_180_691_620_3 / 32.0,
];

/// `expm1f`'s constants (Sun `s_expm1f.c`).
const LN2_HI: f32 = 6.931_381e-1;
const LN2_LO: f32 = 9.058_001e-6;
const INV_LN2: f32 = std::f32::consts::LOG2_E;
const Q: [f32; 5] = [
    -3.333_333_5e-2,
    1.587_301_6e-3,
    -7.936_507_6e-5,
    4.008_217_7e-6,
    -2.010_992_1e-7,
];

/// Whether the vector functions run here: the processor has AVX2 and FMA,
/// and on a sample of inputs (every case boundary of both functions and
/// values spread over all exponents) they give exactly the bits of this
/// platform's libm. Checked once per process. A libm that computes
/// `expf` or `tanhf` otherwise (another C library, or a glibc with other
/// algorithms) turns the vector path off, so the exact path always gives
/// the platform's scalar values, whatever the thread split.
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: self_check runs the vector code only after checking
            // the features.
            is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && unsafe { self_check() }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// The inputs of [`self_check`]: the thresholds of both functions (as
/// bit patterns, each with its neighbours and both signs) and a spread of
/// bit patterns over every exponent.
fn check_inputs() -> Vec<f32> {
    const EDGES: [u32; 10] = [
        0x2400_0000, // tanhf: 2^-55
        0x3300_0000, // expm1f: 2^-25
        0x3eb1_7218, // expm1f: ln2 / 2
        0x3f85_1592, // expm1f: 1.5 ln2
        0x3f80_0000, // tanhf: 1
        0x4195_b844, // expm1f: 27 ln2
        0x41b0_0000, // tanhf: 22
        0x42b0_0000, // expf: 88
        0x42b1_7218, // expm1f: 88.72
        0x0000_0001, // the smallest subnormal
    ];
    let mut inputs = Vec::new();
    for edge in EDGES {
        for bits in edge - 1..=edge + 1 {
            inputs.extend([f32::from_bits(bits), -f32::from_bits(bits)]);
        }
    }
    inputs.extend((0..4096u32).map(|k| f32::from_bits(k.wrapping_mul(1_048_573))));
    inputs.extend((-1000..1000).map(|k| k as f32 * 0.013));
    inputs
}

/// Whether the vector sigmoid and tanh equal the scalar calls on
/// [`check_inputs`].
///
/// # Safety
/// The processor has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn self_check() -> bool {
    check_inputs().chunks(8).all(|chunk| {
        let mut x = [0.0f32; 8];
        x[..chunk.len()].copy_from_slice(chunk);
        first_difference(&x).is_none()
    })
}

/// The first lane of `x` where the vector sigmoid or tanh differs from
/// the scalar call (NaN equals NaN), described, or `None`.
///
/// # Safety
/// The processor has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn first_difference(x: &[f32; 8]) -> Option<String> {
    let v = _mm256_loadu_ps(x.as_ptr());
    let vector = [("sigmoid", sigmoid8(v)), ("tanh", tanh8(v))];
    let scalars: [fn(f32) -> f32; 2] = [sigmoid_scalar, f32::tanh];
    for ((name, got), scalar) in vector.into_iter().zip(scalars) {
        for (g, &x) in lanes(got).iter().zip(x) {
            let want = scalar(x);
            if g.to_bits() != want.to_bits() && !(g.is_nan() && want.is_nan()) {
                return Some(format!(
                    "{name}({x:e} = {:#x}): {g:e} ({:#x}), scalar {want:e} ({:#x})",
                    x.to_bits(),
                    g.to_bits(),
                    want.to_bits()
                ));
            }
        }
    }
    None
}

/// The eight lanes of `v`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx")]
unsafe fn lanes(v: __m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), v);
    out
}

/// The scalar sigmoid of the exact path.
#[inline]
fn sigmoid_scalar(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `expf` of four doubles (floats widened), glibc's steps: valid for
/// `|x| < 88`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp4(xd: __m256d) -> __m128 {
    let shift = _mm256_set1_pd(SHIFT);
    // z = x * 32/ln2 = k + r; the build contracts both uses of z into FMAs.
    let inv = _mm256_set1_pd(INV_LN2_32);
    let kd = _mm256_fmadd_pd(inv, xd, shift);
    let ki = _mm256_castpd_si256(kd);
    let kd = _mm256_sub_pd(kd, shift);
    let r = _mm256_fmsub_pd(inv, xd, kd);
    // s = 2^(k/32): the table entry of k mod 32, plus k in the exponent.
    let index = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
    let t = _mm256_i64gather_epi64::<8>(EXP2_TABLE.as_ptr().cast::<i64>(), index);
    let s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64::<47>(ki)));
    let z = _mm256_fmadd_pd(
        _mm256_set1_pd(EXP2_POLY[0]),
        r,
        _mm256_set1_pd(EXP2_POLY[1]),
    );
    let r2 = _mm256_mul_pd(r, r);
    let y = _mm256_fmadd_pd(_mm256_set1_pd(EXP2_POLY[2]), r, _mm256_set1_pd(1.0));
    let y = _mm256_fmadd_pd(z, r2, y);
    _mm256_cvtpd_ps(_mm256_mul_pd(y, s))
}

/// `1 / (1 + expf(-x))` for eight floats, bit-identical to the scalar.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn sigmoid8(x: __m256) -> __m256 {
    let abs = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7fff_ffff));
    // |x| >= 88, infinities and NaN (as integers, NaN is the largest).
    let outside = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x42af_ffff));
    if _mm256_testz_si256(outside, outside) == 0 {
        return _mm256_loadu_ps(lanes(x).map(sigmoid_scalar).as_ptr());
    }
    let neg = _mm256_xor_ps(x, _mm256_set1_ps(-0.0));
    let lo = exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(neg)));
    let hi = exp4(_mm256_cvtps_pd(_mm256_extractf128_ps::<1>(neg)));
    let e = _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(lo), hi);
    let one = _mm256_set1_ps(1.0);
    _mm256_div_ps(one, _mm256_add_ps(one, e))
}

/// `expm1f(a)` for eight floats, in Sun's steps, for the arguments
/// `tanhf` passes: `a` in `(-2, 0)` (`-2|x|` for `|x| < 1`) or in
/// `[2, 44)` (`2|x|` for `1 <= |x| < 22`). Then the reduction's `k` is
/// 0 or -1 to -3, or 3 to 63: never 1, so `expm1f`'s case `k = 1` is not
/// here, nor its cases for `|a| >= 27 ln 2` with `a < 0` and for
/// overflow.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn expm1_8(a: __m256) -> __m256 {
    let ps = _mm256_set1_ps;
    let epi = _mm256_set1_epi32;
    let bits = _mm256_castps_si256(a);
    let hx = _mm256_and_si256(bits, epi(0x7fff_ffff));
    let negative = _mm256_castsi256_ps(_mm256_cmpgt_epi32(epi(0), bits));
    // k: 0 up to ln2/2, +-1 up to 1.5 ln2 (only -1 occurs here), else
    // round(a / ln2) (by truncation after adding +-0.5, in float).
    let half = _mm256_blendv_ps(ps(0.5), ps(-0.5), negative);
    let k_far = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(ps(INV_LN2), a), half));
    let k_one = _mm256_blendv_epi8(epi(1), epi(-1), _mm256_castps_si256(negative));
    let beyond_half = _mm256_cmpgt_epi32(hx, epi(0x3eb1_7218));
    let beyond_1_5 = _mm256_cmpgt_epi32(hx, epi(0x3f85_1591));
    let k = _mm256_blendv_epi8(k_one, k_far, beyond_1_5);
    let k = _mm256_and_si256(k, beyond_half);
    // hi - lo = a - k ln2 (with k = +-1 these are Sun's a -+ ln2_hi, +-ln2_lo;
    // with k = 0, x = a and c = 0).
    let kf = _mm256_cvtepi32_ps(k);
    let hi = _mm256_sub_ps(a, _mm256_mul_ps(kf, ps(LN2_HI)));
    let lo = _mm256_mul_ps(kf, ps(LN2_LO));
    let x = _mm256_sub_ps(hi, lo);
    let c = _mm256_sub_ps(_mm256_sub_ps(hi, x), lo);
    // The primary range.
    let hfx = _mm256_mul_ps(ps(0.5), x);
    let hxs = _mm256_mul_ps(x, hfx);
    let mut p = _mm256_mul_ps(hxs, ps(Q[4]));
    for &q in Q[..4].iter().rev() {
        p = _mm256_mul_ps(hxs, _mm256_add_ps(ps(q), p));
    }
    let r1 = _mm256_add_ps(ps(1.0), p);
    let t = _mm256_sub_ps(ps(3.0), _mm256_mul_ps(r1, hfx));
    let e = _mm256_mul_ps(
        hxs,
        _mm256_div_ps(
            _mm256_sub_ps(r1, t),
            _mm256_sub_ps(ps(6.0), _mm256_mul_ps(x, t)),
        ),
    );
    // k = 0.
    let k0 = _mm256_sub_ps(x, _mm256_sub_ps(_mm256_mul_ps(x, e), hxs));
    // k != 0.
    let e = _mm256_sub_ps(_mm256_sub_ps(_mm256_mul_ps(x, _mm256_sub_ps(e, c)), c), hxs);
    let km1 = _mm256_sub_ps(_mm256_mul_ps(ps(0.5), _mm256_sub_ps(x, e)), ps(0.5));
    let scale = |y: __m256| {
        _mm256_castsi256_ps(_mm256_add_epi32(
            _mm256_castps_si256(y),
            _mm256_slli_epi32::<23>(k),
        ))
    };
    // k <= -2 or k > 56.
    let far = _mm256_sub_ps(scale(_mm256_sub_ps(ps(1.0), _mm256_sub_ps(e, x))), ps(1.0));
    // 2 <= k < 23: t = 1 - 2^-k.
    let t = _mm256_castsi256_ps(_mm256_sub_epi32(
        epi(0x3f80_0000),
        _mm256_srlv_epi32(epi(0x0100_0000), k),
    ));
    let mid = scale(_mm256_sub_ps(t, _mm256_sub_ps(e, x)));
    // 23 <= k <= 56: t = 2^-k.
    let t = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_sub_epi32(epi(0x7f), k)));
    let high = scale(_mm256_add_ps(
        _mm256_sub_ps(x, _mm256_add_ps(e, t)),
        ps(1.0),
    ));
    let is = |value: i32| _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, epi(value)));
    let gt = |value: i32| _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, epi(value)));
    let mut y = far;
    y = _mm256_blendv_ps(y, mid, _mm256_andnot_ps(gt(22), gt(1)));
    y = _mm256_blendv_ps(y, high, _mm256_andnot_ps(gt(56), gt(22)));
    y = _mm256_blendv_ps(y, km1, is(-1));
    y = _mm256_blendv_ps(y, k0, is(0));
    // |a| < 2^-25: a itself.
    let tiny = _mm256_castsi256_ps(_mm256_cmpgt_epi32(epi(0x3300_0000), hx));
    _mm256_blendv_ps(y, a, tiny)
}

/// `tanhf(x)` for eight floats, bit-identical to the scalar.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh8(x: __m256) -> __m256 {
    let ps = _mm256_set1_ps;
    let epi = _mm256_set1_epi32;
    let ix = _mm256_and_si256(_mm256_castps_si256(x), epi(0x7fff_ffff));
    // Infinities and NaN.
    let outside = _mm256_cmpgt_epi32(ix, epi(0x7f7f_ffff));
    if _mm256_testz_si256(outside, outside) == 0 {
        return _mm256_loadu_ps(lanes(x).map(f32::tanh).as_ptr());
    }
    let abs = _mm256_castsi256_ps(ix);
    let sign = _mm256_andnot_ps(abs, x);
    let from_one = _mm256_castsi256_ps(_mm256_cmpgt_epi32(ix, epi(0x3f7f_ffff)));
    // expm1f(2|x|) from 1 on, expm1f(-2|x|) below.
    let two_abs = _mm256_mul_ps(ps(2.0), abs);
    let arg = _mm256_blendv_ps(_mm256_xor_ps(two_abs, ps(-0.0)), two_abs, from_one);
    let t = expm1_8(arg);
    let t2 = _mm256_add_ps(t, ps(2.0));
    let big = _mm256_sub_ps(ps(1.0), _mm256_div_ps(ps(2.0), t2));
    let small = _mm256_div_ps(_mm256_xor_ps(t, ps(-0.0)), t2);
    let mut z = _mm256_blendv_ps(small, big, from_one);
    // |x| >= 22: 1 - 1e-30, which is 1 in float.
    let huge = _mm256_castsi256_ps(_mm256_cmpgt_epi32(ix, epi(0x41af_ffff)));
    z = _mm256_blendv_ps(z, ps(1.0), huge);
    z = _mm256_or_ps(z, sign);
    // |x| < 2^-55: x * (1 + x); 0 stays 0 (with its sign).
    let tiny = _mm256_castsi256_ps(_mm256_cmpgt_epi32(epi(0x2400_0000), ix));
    let small_x = _mm256_mul_ps(x, _mm256_add_ps(ps(1.0), x));
    z = _mm256_blendv_ps(z, small_x, tiny);
    let zero = _mm256_castsi256_ps(_mm256_cmpeq_epi32(ix, epi(0)));
    _mm256_blendv_ps(z, x, zero)
}

/// `min(max(c, low), high)` per lane, which for `low = -clip`, `high =
/// clip` and `clip > 0` is the scalar `c.max(-clip).min(clip)` bit for
/// bit (see [`cells`]). `vmaxps` returns its second operand when either is
/// NaN: `low`, as Rust's `max` returns the non-NaN argument.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn clip8(c: __m256, low: __m256, high: __m256) -> __m256 {
    _mm256_min_ps(_mm256_max_ps(c, low), high)
}

/// The cell with sigmoid gates and tanh cell and output activations over
/// one row's units, eight units at a time with the exact activations: the
/// same values, bit for bit, as the scalar loops in `kernel::cells` (which
/// run the remaining `len % 8` units). Returns how many units it did.
///
/// `peepholes`: the input, forget and output peephole weights of these
/// units, added as `z_i + p_i * c_prev`, `(z_f + forget_bias) + p_f *
/// c_prev` and `z_o + p_o * c`.
///
/// `clip`: a cell clip, which must be positive (`clip > 0`): the scalar
/// `c.max(-clip).min(clip)` as `min(max(c, -clip), clip)` in lanes. With a
/// positive clip the two agree on every input: a tie means equal values
/// (no zero can tie with `±clip`), so equal bits; a NaN `c` gives `-clip`
/// in both (Rust's `max` returns the other argument, `vmaxps` its second
/// operand). A clip of 0 (where `+0` and `-0` would tie) or NaN stays with
/// the scalar loops (`kernel::cells` does not call this then).
///
/// # Safety
/// [`available`] is true.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn cells(
    zi: &[f32],
    zf: &[f32],
    zg: &[f32],
    zo: &[f32],
    forget_bias: f32,
    peepholes: Option<[&[f32]; 3]>,
    clip: Option<f32>,
    c: &mut [f32],
    m: &mut [f32],
) -> usize {
    assert!(
        clip.is_none_or(|clip| clip > 0.0),
        "clip {clip:?}: positive only"
    );
    let n = c.len();
    assert!(zi.len() >= n && zf.len() >= n && zg.len() >= n && zo.len() >= n && m.len() >= n);
    assert!(peepholes.is_none_or(|p| p.iter().all(|p| p.len() >= n)));
    let fb = _mm256_set1_ps(forget_bias);
    let bounds = clip.map(|clip| (_mm256_set1_ps(-clip), _mm256_set1_ps(clip)));
    let mut j = 0;
    while j + 8 <= n {
        let load = |s: &[f32]| _mm256_loadu_ps(s.as_ptr().add(j));
        let c_prev = load(c);
        let (zi, zf) = (load(zi), _mm256_add_ps(load(zf), fb));
        let (zi, zf) = match peepholes {
            Some([p_i, p_f, _]) => (
                _mm256_add_ps(zi, _mm256_mul_ps(load(p_i), c_prev)),
                _mm256_add_ps(zf, _mm256_mul_ps(load(p_f), c_prev)),
            ),
            None => (zi, zf),
        };
        let (i, f, g) = (sigmoid8(zi), sigmoid8(zf), tanh8(load(zg)));
        let mut c_new = _mm256_add_ps(_mm256_mul_ps(f, c_prev), _mm256_mul_ps(i, g));
        if let Some((low, high)) = bounds {
            c_new = clip8(c_new, low, high);
        }
        let zo = match peepholes {
            Some([_, _, p_o]) => _mm256_add_ps(load(zo), _mm256_mul_ps(load(p_o), c_new)),
            None => load(zo),
        };
        _mm256_storeu_ps(c.as_mut_ptr().add(j), c_new);
        _mm256_storeu_ps(
            m.as_mut_ptr().add(j),
            _mm256_mul_ps(sigmoid8(zo), tanh8(c_new)),
        );
        j += 8;
    }
    j
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Every `stride`-th float32 bit pattern (every one with
    /// `LSTM_PARITY_EXHAUSTIVE=1`), in vectors of eight.
    fn sweep(stride: u32, mut check: impl FnMut(&[f32; 8])) {
        let stride = if std::env::var("LSTM_PARITY_EXHAUSTIVE").is_ok_and(|v| v == "1") {
            1
        } else {
            stride
        };
        let mut lanes = [0.0f32; 8];
        let mut filled = 0;
        let mut bits: u64 = 0;
        while bits <= u64::from(u32::MAX) {
            lanes[filled] = f32::from_bits(bits as u32);
            filled += 1;
            if filled == 8 {
                check(&lanes);
                filled = 0;
            }
            bits += u64::from(stride);
        }
    }

    /// The decimal constants are exactly the bit patterns of glibc's
    /// (`0x1.71547652b82fep+0` and so on; `s_expm1f.c` lists them in hex).
    #[test]
    fn constants_are_the_libm_bits() {
        assert_eq!(INV_LN2_32.to_bits(), 0x3ff7_1547_652b_82fe + (5 << 52));
        assert_eq!(SHIFT.to_bits(), 0x4338_0000_0000_0000);
        let poly = EXP2_POLY.map(f64::to_bits);
        let scaled = [
            0x3fac_6af8_4b91_2394 - (15 << 52),
            0x3fce_bfce_50fa_c4f3 - (10 << 52),
            0x3fe6_2e42_ff0c_52d6 - (5 << 52),
        ];
        assert_eq!(poly, scaled);
        let bits = [LN2_HI, LN2_LO, INV_LN2].map(f32::to_bits);
        assert_eq!(bits, [0x3f31_7180, 0x3717_f7d1, 0x3fb8_aa3b]);
        let q = Q.map(f32::to_bits);
        assert_eq!(
            q,
            [
                0xbd08_8889,
                0x3ad0_0d01,
                0xb8a6_70cd,
                0x3686_7e54,
                0xb457_edbb
            ]
        );
    }

    /// The self-check passes here (so the vector path runs in the other
    /// tests), and its inputs reach both signs of every threshold.
    /// Whether this processor can run the vector code.
    fn features() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    #[test]
    fn the_self_check_passes_and_covers_the_thresholds() {
        assert_eq!(available(), features());
        let inputs = check_inputs();
        for edge in [1.0f32, 22.0, 88.0, 2f32.powi(-55), 2f32.powi(-25)] {
            assert!(inputs.contains(&edge) && inputs.contains(&-edge), "{edge}");
        }
    }

    #[test]
    fn the_table_is_two_to_the_i_over_32() {
        for (i, &entry) in EXP2_TABLE.iter().enumerate() {
            let value = f64::from_bits(entry + ((i as u64) << 47));
            let exact = (i as f64 / 32.0).exp2();
            assert!((value - exact).abs() <= f64::EPSILON * exact, "entry {i}");
        }
    }

    /// The vector sigmoid and tanh equal the scalar calls on a sweep of
    /// float32 bit patterns (every 251st: 17 million values, every
    /// exponent) and densely on [-25, 25].
    #[test]
    fn vectors_equal_the_scalar_calls_bit_for_bit() {
        // (On the processor's features alone, not `available()`: a
        // difference must fail here with its input, not turn the path off.)
        if !features() {
            return;
        }
        let check = |x: &[f32; 8]| {
            // SAFETY: the processor has AVX2 and FMA.
            if let Some(difference) = unsafe { first_difference(x) } {
                panic!("{difference}");
            }
        };
        sweep(251, check);
        for start in (-250_000..250_000).step_by(8) {
            let x: [f32; 8] = std::array::from_fn(|l| (start + l as i32) as f32 * 1e-4);
            check(&x);
        }
    }

    /// The clip step alone equals the scalar `max`/`min` bit for bit over
    /// cells of every kind (NaN, ±infinity, ±0, subnormals, exactly ±clip
    /// and their neighbours) for clips from the smallest subnormal to
    /// infinity.
    #[test]
    fn clip_equals_scalar_max_min() {
        if !features() {
            return;
        }
        let up = |v: f32| f32::from_bits(v.to_bits() + 1);
        let down = |v: f32| f32::from_bits(v.to_bits() - 1);
        for clip in [f32::from_bits(1), 1e-30, 1.5, 3.0, f32::MAX, f32::INFINITY] {
            let mut cells = vec![
                f32::NAN,
                -f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                0.0,
                -0.0,
                f32::from_bits(1),
                -f32::from_bits(1),
                f32::MIN_POSITIVE,
                1.0,
                -2.5,
                f32::MAX,
                f32::MIN,
            ];
            for v in [clip, -clip] {
                cells.push(v);
                if v.is_finite() && v != 0.0 {
                    cells.extend([up(v), down(v)]);
                }
            }
            for chunk in cells.chunks(8) {
                let mut lanes = [0.0f32; 8];
                lanes[..chunk.len()].copy_from_slice(chunk);
                let mut out = [0.0f32; 8];
                // SAFETY: the processor has AVX2 and FMA.
                unsafe {
                    let (low, high) = (_mm256_set1_ps(-clip), _mm256_set1_ps(clip));
                    let clipped = clip8(_mm256_loadu_ps(lanes.as_ptr()), low, high);
                    _mm256_storeu_ps(out.as_mut_ptr(), clipped);
                }
                for (c, got) in lanes.iter().zip(out) {
                    let want = c.max(-clip).min(clip);
                    assert_eq!(got.to_bits(), want.to_bits(), "clip {clip:e}, cell {c:e}");
                }
            }
        }
    }

    /// The vector cell pass equals the scalar formulas of `kernel::cells`
    /// bit for bit, with and without peepholes and a cell clip, over units
    /// that reach every branch of both functions (saturation, |x| >= 88,
    /// tiny values) and a forget bias; with the clip, also previous cells
    /// of NaN, ±infinity, ±0 and exactly ±clip.
    #[test]
    fn cells_equal_the_scalar_formulas() {
        // (On the processor's features alone, not `available()`: a
        // difference must fail here with its input, not turn the path off.)
        if !features() {
            return;
        }
        let n = 8 * 40;
        // Mostly in [-12, 12), where every result depends on every term;
        // every 7th value tiny, every 11th past 88 (the scalar fallback).
        let mut z: Vec<f32> = (0..4 * n)
            .map(|k| {
                let v = ((k * 7919) % 613) as f32 / 613.0 * 24.0 - 12.0;
                match (k % 7, k % 11) {
                    (0, _) => v * 1e-9,
                    (_, 0) => v * 10.0,
                    _ => v,
                }
            })
            .collect();
        let c0: Vec<f32> = (0..n)
            .map(|k| ((k * 131) % 97) as f32 * 0.1 - 4.8)
            .collect();
        let fb = 1.0f32;
        let p: Vec<f32> = (0..3 * n)
            .map(|k| ((k * 37) % 101) as f32 * 0.02 - 1.0)
            .collect();
        let peepholes = [&p[..n], &p[n..2 * n], &p[2 * n..]];
        let clip = 1.5f32;
        // Previous cells of special values; with z_f + fb = 21 (f = 1
        // exactly) and z_g = 0 (i * g = 0) the new cell is the previous
        // one, so the clip meets NaN, ±infinity, ±0 and exactly ±clip.
        let mut c_odd = c0.clone();
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            clip,
            -clip,
        ];
        for (k, v) in specials.iter().enumerate() {
            let j = k * 13 + 5;
            c_odd[j] = *v;
            (z[n + j], z[2 * n + j]) = (20.0, 0.0);
        }
        for (with_peepholes, clipped) in
            [(false, false), (true, false), (false, true), (true, true)]
        {
            let c0 = if clipped { c_odd.clone() } else { c0.clone() };
            let (mut c, mut m) = (c0.clone(), vec![0.0f32; n]);
            let zs = (&z[..n], &z[n..2 * n], &z[2 * n..3 * n], &z[3 * n..]);
            let peep = with_peepholes.then_some(peepholes);
            let cl = clipped.then_some(clip);
            // SAFETY: the processor has AVX2 and FMA.
            let done = unsafe { cells(zs.0, zs.1, zs.2, zs.3, fb, peep, cl, &mut c, &mut m) };
            assert_eq!(done, n);
            for j in 0..n {
                let zk = |k: usize| z[k * n + j];
                // The scalar formulas of kernel::cells: the standard cell's
                // without peepholes or clip, else the general one's (which
                // adds `+0` peephole terms without peepholes: the same
                // values, a `-0` input giving the same 0.5).
                let (i, f) = if with_peepholes {
                    (
                        sigmoid_scalar(zk(0) + p[j] * c0[j]),
                        sigmoid_scalar(zk(1) + fb + p[n + j] * c0[j]),
                    )
                } else {
                    (sigmoid_scalar(zk(0)), sigmoid_scalar(zk(1) + fb))
                };
                let mut c_new = f * c0[j] + i * zk(2).tanh();
                if clipped {
                    c_new = c_new.max(-clip).min(clip);
                }
                let o = if with_peepholes {
                    sigmoid_scalar(zk(3) + p[2 * n + j] * c_new)
                } else {
                    sigmoid_scalar(zk(3))
                };
                let m_new = o * c_new.tanh();
                let what = (with_peepholes, clipped, c0[j]);
                assert_eq!(
                    c[j].to_bits(),
                    c_new.to_bits(),
                    "c[{j}] (peepholes, clip, c_prev) {what:?}"
                );
                assert_eq!(
                    m[j].to_bits(),
                    m_new.to_bits(),
                    "m[{j}] (peepholes, clip, c_prev) {what:?}"
                );
            }
        }
    }
}
