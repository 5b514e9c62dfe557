//! The float types the LSTM is generic over.

use std::fmt::{Debug, Display};

/// `f32` or `f64`: what the canonical LSTM computes in.
///
/// Sealed: its supertrait `Element` (the packed kernel's AVX2 vector
/// operations, in a private module) is implemented for these two types
/// only, so no other type can implement `Real`. `Element`'s items are
/// reachable through a `T: Real` bound but are not part of the crate's
/// API.
pub trait Real:
    super::kernel::recurrent::Element
    + ndarray::LinalgScalar
    + num_traits::Float
    + num_traits::FromPrimitive
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// `"float32"` or `"float64"`, as NumPy and TensorFlow name it.
    const NAME: &'static str;
    /// Round an `f64` to this type (exact for `f64`, round-to-nearest for `f32`).
    fn from_f64_lossy(value: f64) -> Self;
    /// Widen to `f64` (exact).
    fn widen(self) -> f64;
    /// Distance in units in the last place between two finite values of
    /// this type (0 for equal values, including +0 and -0).
    fn ulps(self, other: Self) -> u64;
    /// The machine epsilon of this type, as `f64`.
    fn epsilon_f64() -> f64;
}

/// Map a float's bits onto a line where adjacent floats are adjacent integers.
fn ordered(bits: i64, sign_bit: i64) -> i64 {
    if bits & sign_bit != 0 {
        sign_bit - bits
    } else {
        bits
    }
}

impl Real for f32 {
    const NAME: &'static str = "float32";
    fn from_f64_lossy(value: f64) -> Self {
        value as f32
    }
    fn widen(self) -> f64 {
        f64::from(self)
    }
    fn ulps(self, other: Self) -> u64 {
        let a = ordered(i64::from(self.to_bits()), 1 << 31);
        let b = ordered(i64::from(other.to_bits()), 1 << 31);
        a.abs_diff(b)
    }
    fn epsilon_f64() -> f64 {
        f64::from(f32::EPSILON)
    }
}

impl Real for f64 {
    const NAME: &'static str = "float64";
    fn from_f64_lossy(value: f64) -> Self {
        value
    }
    fn widen(self) -> f64 {
        self
    }
    fn ulps(self, other: Self) -> u64 {
        // i128 so that the map below cannot overflow.
        let key = |v: f64| {
            let bits = i128::from(v.to_bits());
            if bits & (1 << 63) != 0 {
                (1i128 << 63) - bits
            } else {
                bits
            }
        };
        u64::try_from(key(self).abs_diff(key(other))).unwrap_or(u64::MAX)
    }
    fn epsilon_f64() -> f64 {
        f64::EPSILON
    }
}
