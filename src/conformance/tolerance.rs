//! Named tolerance levels: the only place an epsilon is chosen.
//!
//! `default` is derived from the framework's own float32 error on the same
//! case (DESIGN.md, "Tolerances"): a float32 result passes when it is no
//! further from the float64 truth than [`TF_ERROR_MULTIPLE`] times
//! TensorFlow's own float32 distance from it, with a floor of
//! [`F32_FLOOR_EPS`] float32 epsilons (scaled by the magnitude). A float64
//! result passes within [`F64_EPS`] float64 epsilons (scaled) of the float64
//! expectation.

use std::fmt;
use std::str::FromStr;

/// How many times the framework's own float32 error an implementation may have.
pub const TF_ERROR_MULTIPLE: f64 = 4.0;
/// Floor of the float32 bound, in `f32::EPSILON` times `max(1, max|expected|)`.
pub const F32_FLOOR_EPS: f64 = 8.0;
/// The float64 bound, in `f64::EPSILON` times `max(1, max|expected|)`.
pub const F64_EPS: f64 = 256.0;
/// A recording is self-consistent when the framework's own float32 result
/// is within this many `f32::EPSILON` (times `max(1, max|float64|)`) of its
/// float64 result. Measured on the committed cases: at most 2.3. A larger
/// distance means a damaged or mislabelled expectation, which must not
/// widen the tolerance it is the basis of.
pub const RECORDING_F32_EPS: f64 = 64.0;

/// Diagnostics: the forget-gate offset test at the first diverging step
/// (`diagnose`) uses units whose previous cell state is at least this large
/// (smaller ones leave the implied forget gate too noisy).
pub const FORGET_OFFSET_MIN_C_PREV: f64 = 1e-2;
/// Diagnostics: the implied offsets of the forget pre-activation count as
/// one constant when they all lie within this width (float32 noise on the
/// implied gate is below 1e-2 for the units used).
pub const FORGET_OFFSET_SPREAD: f64 = 5e-2;
/// Diagnostics: the smallest constant forget offset reported.
pub const FORGET_OFFSET_MIN: f64 = 5e-2;

/// A tolerance level.
#[derive(Clone, Debug, PartialEq)]
pub enum Tolerance {
    /// Derived from the framework's own float32 error (see the module docs).
    Default,
    /// Bit-for-bit equal to the expectation of the same dtype.
    Exact,
    /// `|actual - expected| <= a`, against the same dtype's expectation.
    Abs(f64),
    /// `|actual - expected| <= r * |expected|`, against the same dtype's expectation.
    Rel(f64),
    /// At most `n` units in the last place of the result's dtype, against the
    /// same dtype's expectation.
    Ulp(u64),
}

impl FromStr for Tolerance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "unknown tolerance level {s:?} (levels: default, exact, abs:<a>, rel:<r>, ulp:<n>)"
            )
        };
        let number = |v: &str| -> Result<f64, String> {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(bad()),
            }
        };
        Ok(match s.split_once(':') {
            None if s == "default" => Tolerance::Default,
            None if s == "exact" => Tolerance::Exact,
            Some(("abs", v)) => Tolerance::Abs(number(v)?),
            Some(("rel", v)) => Tolerance::Rel(number(v)?),
            Some(("ulp", v)) => Tolerance::Ulp(v.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        })
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tolerance::Default => write!(f, "default"),
            Tolerance::Exact => write!(f, "exact"),
            Tolerance::Abs(a) => write!(f, "abs:{a}"),
            Tolerance::Rel(r) => write!(f, "rel:{r}"),
            Tolerance::Ulp(n) => write!(f, "ulp:{n}"),
        }
    }
}

/// The bound one element is held to, resolved for one output array.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// `|actual - expected| <= value`.
    Abs(f64),
    /// `|actual - expected| <= value * |expected|`.
    Rel(f64),
    /// ULP distance in the result's dtype `<= value`.
    Ulp(u64),
    /// Identical bits.
    Exact,
}

impl Bound {
    /// Whether one finite element passes.
    pub fn admits(self, abs_err: f64, expected: f64, ulps: u64, identical: bool) -> bool {
        match self {
            Bound::Abs(a) => abs_err <= a,
            Bound::Rel(r) => abs_err <= r * expected.abs(),
            Bound::Ulp(n) => ulps <= n,
            Bound::Exact => identical,
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Abs(a) => write!(f, "abs<={a:.2e}"),
            Bound::Rel(r) => write!(f, "rel<={r:.2e}"),
            Bound::Ulp(n) => write!(f, "ulp<={n}"),
            Bound::Exact => write!(f, "exact"),
        }
    }
}
