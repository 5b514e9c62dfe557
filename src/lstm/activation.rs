//! Element-wise activations used by LSTM gates and cells.

use super::Real;

/// An activation function, named by what it computes rather than by which
/// framework spells it how: the two `hard_sigmoid`s of Keras 2 and Keras 3
/// are different functions and get different variants.
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
    /// Keras 2 (tf-keras) `hard_sigmoid`: `clip(0.2 * x + 0.5, 0, 1)`
    /// (tf-keras `backend.py::hard_sigmoid`).
    HardSigmoidKeras2,
    /// Keras 3 `hard_sigmoid` on the TensorFlow backend: `relu6(x + 3) / 6`
    /// (keras `backend/tensorflow/nn.py`).
    HardSigmoidKeras3,
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
            Activation::HardSigmoidKeras2 => {
                let y = x * T::from_f64_lossy(0.2) + T::from_f64_lossy(0.5);
                y.max(zero).min(one)
            }
            Activation::HardSigmoidKeras3 => {
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
