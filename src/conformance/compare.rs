//! Compare one computed output with its expectation, and find where the
//! numbers part.

use ndarray::{ArrayD, Dimension};
use serde::Serialize;

use super::case::ExpectedOutput;
use super::tolerance::{
    Bound, Tolerance, F32_FLOOR_EPS, F64_EPS, RECORDING_F32_EPS, RECORDING_REDUCED_ULPS,
    REDUCED_FLOOR_ULPS, REDUCED_TF_ERROR_MULTIPLE, TF_ERROR_MULTIPLE,
};
use crate::lstm::{Precision, Real};

/// The result of comparing one output array.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The output's native name.
    pub output: String,
    /// Which expectation it was compared with (`float64` or `float32`).
    pub against: &'static str,
    /// The bound each element is held to.
    #[serde(serialize_with = "display")]
    pub bound: Bound,
    /// Elements compared.
    pub count: usize,
    /// Largest absolute error (infinite where NaN/inf do not match).
    pub max_abs: f64,
    /// Largest relative error `|a - e| / |e|` over elements with `e != 0`.
    pub max_rel: f64,
    /// Largest distance in units in the last place of the result's dtype.
    pub max_ulp: u64,
    /// The output's scale: its largest finite `|expected|`.
    pub scale: f64,
    /// How many times the tolerance the worst element's error is (its
    /// error over what the bound allows it; infinite where the bound
    /// allows nothing, as `exact` or `rel` at an expected 0).
    pub times_tolerance: f64,
    /// The element with the largest absolute error.
    pub worst: Option<Element>,
    /// Elements out of tolerance.
    pub out_of_tolerance: usize,
    /// Elements where one side is NaN and the other is not.
    pub nan_mismatches: usize,
    /// For per-step outputs (`.../trace/...`, `[batch, steps, units]`): the
    /// first step with an element out of tolerance, and that element.
    pub first_bad_step: Option<(usize, Element)>,
    /// Whether every element is within tolerance.
    pub passed: bool,
    /// The framework's own float32 error against its float64 run
    /// (`max|tf32 - tf64|`), where both exist.
    pub framework_f32_error: Option<f64>,
    /// Set when the `default` level's basis is unsound: the framework's
    /// float32 expectation is further than [`RECORDING_F32_EPS`] from its
    /// float64 one (the worst element: actual = float32, expected = float64).
    pub inconsistent_recording: Option<Element>,
}

/// One element of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Element {
    /// Its index.
    pub index: Vec<usize>,
    /// The computed value.
    pub actual: f64,
    /// The expected value.
    pub expected: f64,
}

fn display<S: serde::Serializer>(b: &Bound, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&b.to_string())
}

/// `|a - b|`, with NaN against NaN as 0 and NaN against a number as infinite.
fn gap(a: f64, b: f64) -> f64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => 0.0,
        (false, false) if a == b => 0.0,
        (false, false) => (a - b).abs(),
        _ => f64::INFINITY,
    }
}

/// The framework's own error: the largest finite `|ran - truth|` between
/// its run in a lower precision and its float64 run.
fn framework_error(ran: &ArrayD<f32>, truth: &ArrayD<f64>) -> f64 {
    ran.iter()
        .zip(truth.iter())
        .map(|(a, b)| (f64::from(*a) - b).abs())
        .filter(|e| e.is_finite())
        .fold(0.0, f64::max)
}

fn max_abs(a: &ArrayD<f64>) -> f64 {
    a.iter()
        .filter(|v| v.is_finite())
        .fold(0.0, |m, v| m.max(v.abs()))
}

/// Resolve `tolerance` for an output computed in `T`: the expectation to
/// compare with and the element bound.
pub fn resolve<T: Real>(
    tolerance: &Tolerance,
    expected: &ExpectedOutput,
) -> (ArrayD<f64>, &'static str, Bound) {
    let tf32 = expected.float32.mapv(f64::from);
    let same_dtype = || match (T::NAME, &expected.float64) {
        ("float64", Some(e)) => (e.clone(), "float64"),
        _ => (tf32.clone(), "float32"),
    };
    match tolerance {
        Tolerance::Default => match (&expected.float64, T::NAME) {
            (Some(tf64), "float32") => {
                let tf_err = framework_error(&expected.float32, tf64);
                let floor = F32_FLOOR_EPS * f64::from(f32::EPSILON) * max_abs(tf64).max(1.0);
                (
                    tf64.clone(),
                    "float64",
                    Bound::Abs((TF_ERROR_MULTIPLE * tf_err).max(floor)),
                )
            }
            (Some(tf64), _) => {
                let bound = F64_EPS * f64::EPSILON * max_abs(tf64).max(1.0);
                (tf64.clone(), "float64", Bound::Abs(bound))
            }
            (None, _) => {
                // No float64 truth: hold any dtype to the float32 floor
                // around the framework's float32 result.
                let floor = F32_FLOOR_EPS * f64::from(f32::EPSILON) * max_abs(&tf32).max(1.0);
                (tf32, "float32", Bound::Abs(floor))
            }
        },
        Tolerance::Exact => {
            let (e, against) = same_dtype();
            (e, against, Bound::Exact)
        }
        Tolerance::Abs(a) => {
            let (e, against) = same_dtype();
            (e, against, Bound::Abs(*a))
        }
        Tolerance::Rel(r) => {
            let (e, against) = same_dtype();
            (e, against, Bound::Rel(*r))
        }
        Tolerance::Ulp(n) => {
            let (e, against) = same_dtype();
            (e, against, Bound::Ulp(*n))
        }
    }
}

/// Compare `actual` (computed in `T`) with `expected` under `tolerance`.
pub fn compare<T: Real>(
    name: &str,
    actual: &ArrayD<T>,
    expected: &ExpectedOutput,
    tolerance: &Tolerance,
) -> Comparison {
    let (reference, against, bound) = resolve::<T>(tolerance, expected);
    let mut c = judge(name, actual, &reference, against, bound);
    c.framework_f32_error = expected
        .float64
        .as_ref()
        .map(|tf64| framework_error(&expected.float32, tf64));
    if *tolerance == Tolerance::Default {
        c.inconsistent_recording = inconsistent_recording(expected);
        c.passed &= c.inconsistent_recording.is_none();
    }
    c
}

/// Where the framework's float32 expectation is further than
/// [`RECORDING_F32_EPS`] from its float64 one: a damaged or mislabelled
/// expectation, which must not widen a tolerance derived from it (the
/// worst element: actual = float32, expected = float64).
pub fn inconsistent_recording(expected: &ExpectedOutput) -> Option<Element> {
    let tf64 = expected.float64.as_ref()?;
    let limit = RECORDING_F32_EPS * f64::from(f32::EPSILON) * max_abs(tf64).max(1.0);
    let (index, a, b) = expected
        .float32
        .indexed_iter()
        .zip(tf64.iter())
        .map(|((i, a), b)| (i, f64::from(*a), *b))
        .max_by(|x, y| gap(x.1, x.2).total_cmp(&gap(y.1, y.2)))?;
    let consistent = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= limit;
    (!consistent).then(|| Element {
        index: index.slice().to_vec(),
        actual: a,
        expected: b,
    })
}

/// The worst distance of the framework's own run in `precision` from its
/// truth, in units in the last place of the precision at the truth's
/// scale, when it is more than [`RECORDING_REDUCED_ULPS`]: a damaged
/// recording, which must not widen the level derived from it.
pub fn inconsistent_reduced(
    precision: Precision,
    reduced: &ArrayD<f32>,
    truth: &ArrayD<f64>,
) -> Option<(Vec<usize>, f64)> {
    let ulp = precision.ulp_at(max_abs(truth));
    let (index, distance) = reduced
        .indexed_iter()
        .zip(truth.iter())
        .map(|((i, a), b)| (i, gap(f64::from(*a), *b) / ulp))
        .max_by(|x, y| x.1.total_cmp(&y.1))?;
    (distance > RECORDING_REDUCED_ULPS).then(|| (index.slice().to_vec(), distance))
}

/// The bound of `tolerance` for an output the framework computed in the
/// reduced `precision` as `reduced`, whose truth (its float64 run, or its
/// float32 one where it has no float64 kernel) is `truth`. `default` is
/// [`REDUCED_TF_ERROR_MULTIPLE`] times the framework's own error at that
/// precision, `max|reduced - truth|`, with a floor of
/// [`REDUCED_FLOOR_ULPS`] units in the last place of the precision at the
/// output's scale `max|truth|`; the others are as for float32.
pub fn reduced_bound(
    tolerance: &Tolerance,
    precision: Precision,
    reduced: &ArrayD<f32>,
    truth: &ArrayD<f64>,
) -> Bound {
    match tolerance {
        Tolerance::Default => {
            let tf_err = framework_error(reduced, truth);
            let floor = REDUCED_FLOOR_ULPS * precision.ulp_at(max_abs(truth));
            Bound::Abs((REDUCED_TF_ERROR_MULTIPLE * tf_err).max(floor))
        }
        Tolerance::Exact => Bound::Exact,
        Tolerance::Abs(a) => Bound::Abs(*a),
        Tolerance::Rel(r) => Bound::Rel(*r),
        Tolerance::Ulp(n) => Bound::Ulp(*n),
    }
}

/// Compare `actual` with `reference` element by element under `bound`;
/// `against` names the reference (`float64`, `float16`, ...).
pub fn judge<T: Real>(
    name: &str,
    actual: &ArrayD<T>,
    reference: &ArrayD<f64>,
    against: &'static str,
    bound: Bound,
) -> Comparison {
    let mut c = Comparison {
        output: name.to_string(),
        against,
        bound,
        count: reference.len(),
        max_abs: 0.0,
        max_rel: 0.0,
        max_ulp: 0,
        scale: reference
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0, |m: f64, v| m.max(v.abs())),
        times_tolerance: 0.0,
        worst: None,
        out_of_tolerance: 0,
        nan_mismatches: 0,
        first_bad_step: None,
        passed: true,
        framework_f32_error: None,
        inconsistent_recording: None,
    };
    if actual.shape() != reference.shape() {
        c.passed = false;
        c.max_abs = f64::INFINITY;
        c.times_tolerance = f64::INFINITY;
        c.out_of_tolerance = c.count;
        c.worst = Some(Element {
            index: actual.shape().to_vec(),
            actual: f64::NAN,
            expected: f64::NAN,
        });
        return c;
    }
    let is_trace = name.split('/').any(|p| p == "trace") && reference.ndim() == 3;
    let mut worst_abs = -1.0;
    for ((index, &a), &e) in actual.indexed_iter().zip(reference.iter()) {
        let a64 = a.widen();
        let (abs_err, ok, ulps) = if e.is_nan() || a64.is_nan() {
            let both = e.is_nan() && a64.is_nan();
            if !both {
                c.nan_mismatches += 1;
            }
            (
                if both { 0.0 } else { f64::INFINITY },
                both,
                if both { 0 } else { u64::MAX },
            )
        } else if e.is_infinite() || a64.is_infinite() {
            let same = a64 == e;
            (
                if same { 0.0 } else { f64::INFINITY },
                same,
                if same { 0 } else { u64::MAX },
            )
        } else {
            let abs_err = (a64 - e).abs();
            let ulps = a.ulps(T::from_f64_lossy(e));
            let identical = a64.to_bits() == e.to_bits();
            (abs_err, bound.admits(abs_err, e, ulps, identical), ulps)
        };
        if e != 0.0 && e.is_finite() {
            c.max_rel = c.max_rel.max(abs_err / e.abs());
        }
        c.max_ulp = c.max_ulp.max(ulps);
        // A NaN or infinity that matches is no error; one that does not
        // has an infinite error.
        c.times_tolerance = c.times_tolerance.max(if ok && !abs_err.is_finite() {
            0.0
        } else {
            bound.excess(abs_err, e, ulps)
        });
        if abs_err > worst_abs {
            worst_abs = abs_err;
            c.max_abs = abs_err;
            c.worst = Some(Element {
                index: index.slice().to_vec(),
                actual: a64,
                expected: e,
            });
        }
        if !ok {
            c.out_of_tolerance += 1;
            c.passed = false;
            if is_trace {
                let step = index[1];
                if c.first_bad_step.as_ref().is_none_or(|(s, _)| step < *s) {
                    c.first_bad_step = Some((
                        step,
                        Element {
                            index: index.slice().to_vec(),
                            actual: a64,
                            expected: e,
                        },
                    ));
                }
            }
        }
    }
    c
}
