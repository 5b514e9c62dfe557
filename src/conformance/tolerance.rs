//! Named tolerance levels: the only place an epsilon is chosen.
//!
//! `default` is derived from the framework's own float32 error on the same
//! case (DESIGN.md, "Tolerances"): a float32 result passes when it is no
//! further from the float64 truth than [`TF_ERROR_MULTIPLE`] times
//! TensorFlow's own float32 distance from it, with a floor of
//! [`F32_FLOOR_EPS`] float32 epsilons (scaled by the magnitude). A float64
//! result passes within [`F64_EPS`] float64 epsilons (scaled) of the float64
//! expectation.

use crate::parse::UnknownName;
use std::fmt;
use std::str::FromStr;

/// How many times the framework's own float32 error an implementation may have.
pub const TF_ERROR_MULTIPLE: f64 = 4.0;
/// Floor of the float32 bound, in `f32::EPSILON` times `max(1, max|expected|)`.
pub const F32_FLOOR_EPS: f64 = 8.0;
/// The float64 bound, in `f64::EPSILON` times `max(1, max|expected|)`.
pub const F64_EPS: f64 = 256.0;
/// How many times the framework's own float16 or bfloat16 error (against
/// its float64 run) an implementation may have at that precision. The
/// emulated Rust LSTM reproduces TensorFlow's 16-bit results to the bit
/// in most cases, so its error is TensorFlow's; twice leaves room for an
/// implementation whose `exp` or `tanh` differs in the last place, or
/// that sums its products in another order (see `docs/semantics.md`,
/// "Reduced precision").
pub const REDUCED_TF_ERROR_MULTIPLE: f64 = 2.0;
/// Floor of the float16 and bfloat16 bounds, in units in the last place of
/// the precision at the output's scale.
pub const REDUCED_FLOOR_ULPS: f64 = 2.0;
/// A reduced-precision run is self-consistent when it is within this many
/// units in the last place of its precision (at the output's scale) of the
/// float64 truth. Measured on the committed runs: at most 7.3 (float16)
/// and 8.9 (bfloat16), median 1.6 and 1.7.
pub const RECORDING_REDUCED_ULPS: f64 = 64.0;
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
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let bad = || {
            UnknownName::new(
                "tolerance level",
                "levels",
                s,
                &["default", "exact", "abs:<a>", "rel:<r>", "ulp:<n>"],
            )
        };
        let number = |v: &str| -> Result<f64, UnknownName> {
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

impl Bound {
    /// How many times what the bound allows one element's error is
    /// (ULPs for [`Bound::Ulp`]); infinite where it allows no error.
    pub fn excess(self, abs_err: f64, expected: f64, ulps: u64) -> f64 {
        let ratio = |err: f64, allowed: f64| {
            if err == 0.0 {
                0.0
            } else if allowed > 0.0 {
                err / allowed
            } else {
                f64::INFINITY
            }
        };
        match self {
            Bound::Abs(a) => ratio(abs_err, a),
            Bound::Rel(r) => ratio(abs_err, r * expected.abs()),
            #[allow(clippy::cast_precision_loss)]
            Bound::Ulp(n) => ratio(ulps as f64, n as f64),
            Bound::Exact => ratio(abs_err, 0.0),
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

#[cfg(test)]
mod tests {
    use super::Bound;

    #[test]
    fn excess_is_the_error_over_what_the_bound_allows() {
        assert_eq!(Bound::Abs(0.5).excess(1.0, 3.0, 7), 2.0);
        assert_eq!(Bound::Rel(0.1).excess(1.0, -5.0, 7), 2.0);
        assert_eq!(Bound::Ulp(4).excess(1.0, 3.0, 2), 0.5);
        assert_eq!(Bound::Exact.excess(0.0, 3.0, 0), 0.0);
        assert!(Bound::Exact.excess(1e-9, 3.0, 1).is_infinite());
        assert!(Bound::Rel(0.1).excess(1e-9, 0.0, 1).is_infinite());
    }
}
