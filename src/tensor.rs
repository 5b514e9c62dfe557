//! A named array of one of the dtypes a case may hold.
//!
//! The common currency between the case loader (which reads files) and the
//! dialects (which must not): a dialect receives tensors, never paths.

use ndarray::ArrayD;

use crate::lstm::Real;

/// An n-dimensional array of one of the supported dtypes.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// `<f4`.
    F32(ArrayD<f32>),
    /// `<f8`.
    F64(ArrayD<f64>),
    /// `<i4`.
    I32(ArrayD<i32>),
    /// `|b1`.
    Bool(ArrayD<bool>),
}

impl Tensor {
    /// The dtype's NumPy name.
    pub fn dtype(&self) -> &'static str {
        match self {
            Tensor::F32(_) => "float32",
            Tensor::F64(_) => "float64",
            Tensor::I32(_) => "int32",
            Tensor::Bool(_) => "bool",
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::F64(a) => a.shape(),
            Tensor::I32(a) => a.shape(),
            Tensor::Bool(a) => a.shape(),
        }
    }

    /// The values as floats of type `T`: exact when widening `f32` to `f64`
    /// (which is how a float64 run uses float32-stored weights). `None` for
    /// integer and boolean tensors.
    pub fn to_float<T: Real>(&self) -> Option<ArrayD<T>> {
        match self {
            Tensor::F32(a) => Some(a.mapv(|v| T::from_f64_lossy(f64::from(v)))),
            Tensor::F64(a) => Some(a.mapv(T::from_f64_lossy)),
            _ => None,
        }
    }

    /// The values as `f64` when this is a float tensor.
    pub fn as_f64(&self) -> Option<ArrayD<f64>> {
        self.to_float::<f64>()
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Self {
        Tensor::F32(a)
    }
}

impl From<ArrayD<f64>> for Tensor {
    fn from(a: ArrayD<f64>) -> Self {
        Tensor::F64(a)
    }
}
