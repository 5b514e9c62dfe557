//! Element-wise activations used by LSTM gates and cells.

use super::Real;

/// An activation function, named by what it computes rather than by which
/// framework spells it how: two frameworks' `hard_sigmoid`s are different
/// functions and get different variants (the dialects choose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// `x`.
    Linear,
    /// `clip(0.2 * x + 0.5, 0, 1)`, computed in that order: ONNX's
    /// `HardSigmoid` with its default alpha 0.2 and beta 0.5.
    HardSigmoidLinear,
    /// `relu6(x + 3) / 6`, computed in that order: equal to
    /// `clip(x / 6 + 0.5, 0, 1)` in exact arithmetic, rounded differently.
    HardSigmoidRelu6,
}

impl Activation {
    /// Apply to one value.
    #[inline]
    pub fn apply<T: Real>(self, x: T) -> T {
        let zero = T::zero();
        let one = T::one();
        match self {
            Activation::Sigmoid => one / (one + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Relu => {
                if x > zero {
                    x
                } else {
                    zero
                }
            }
            Activation::Linear => x,
            Activation::HardSigmoidLinear => {
                let y = x * T::from_f64_lossy(0.2) + T::from_f64_lossy(0.5);
                y.max(zero).min(one)
            }
            Activation::HardSigmoidRelu6 => {
                let six = T::from_f64_lossy(6.0);
                (x + T::from_f64_lossy(3.0)).max(zero).min(six) / six
            }
        }
    }

    /// Apply to one value in plain `f64` (the oracle's path).
    pub fn apply_f64(self, x: f64) -> f64 {
        self.apply::<f64>(x)
    }
}
