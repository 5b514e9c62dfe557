//! One LSTM layer's weights and options in the canonical form.

use ndarray::{Array1, Array2};

use super::{Activation, Real};

/// The four gate blocks, in canonical order along the `4*units` axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Input gate.
    I = 0,
    /// Forget gate.
    F = 1,
    /// Cell candidate (TF1 calls it `j`, Keras and ONNX `c`).
    G = 2,
    /// Output gate.
    O = 3,
}

impl Gate {
    /// All gates in canonical order.
    pub const ALL: [Gate; 4] = [Gate::I, Gate::F, Gate::G, Gate::O];

    /// The column range of this gate's block for `units` units.
    pub fn columns(self, units: usize) -> std::ops::Range<usize> {
        let k = self as usize;
        k * units..(k + 1) * units
    }
}

/// Diagonal ("peephole") connections from the cell state to the gates.
#[derive(Clone, Debug, PartialEq)]
pub struct Peepholes<T> {
    /// Weight of the previous cell state in the input gate, `[units]`.
    pub input: Array1<T>,
    /// Weight of the previous cell state in the forget gate, `[units]`.
    pub forget: Array1<T>,
    /// Weight of the **new** (clipped) cell state in the output gate, `[units]`.
    pub output: Array1<T>,
}

/// A projection of the hidden output (TF1 `num_proj`).
#[derive(Clone, Debug, PartialEq)]
pub struct Projection<T> {
    /// `[units, proj]`.
    pub kernel: Array2<T>,
    /// Clip the projected output to `[-clip, clip]`.
    pub clip: Option<T>,
}

/// One LSTM layer in the canonical form.
///
/// The step computed (`*` element-wise, `z_g` the gate block `g` of
/// `x @ w_x + h @ w_h + bias`):
///
/// ```text
/// i = gate_act(z_i + p_i * c_prev)
/// f = gate_act(z_f + forget_bias + p_f * c_prev)
/// g = cell_act(z_g)
/// c = f * c_prev + i * g           ; then clipped to ±cell_clip if set
/// o = gate_act(z_o + p_o * c)
/// h = o * output_act(c)            ; then projected and clipped if set
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Layer<T> {
    /// `[input, 4*units]`, gate blocks i, f, g, o.
    pub w_x: Array2<T>,
    /// `[h_depth, 4*units]`, where `h_depth` is the projection size or `units`.
    pub w_h: Array2<T>,
    /// `[4*units]`.
    pub bias: Array1<T>,
    /// Added to the forget pre-activation at run time (TF1's `forget_bias`).
    /// Kept apart from `bias` so that float32 rounding matches frameworks
    /// that add it at run time; 0 for frameworks that do not.
    pub forget_bias: T,
    /// Peephole weights, if any.
    pub peepholes: Option<Peepholes<T>>,
    /// Clip the cell state to `[-cell_clip, cell_clip]`; `Some(0)` clips to 0
    /// (TF1 `LSTMCell`). Dialects whose "0 means off" map that to `None`.
    pub cell_clip: Option<T>,
    /// Projection of the output, if any.
    pub projection: Option<Projection<T>>,
    /// Activation of the i, f and o gates.
    pub gate_activation: Activation,
    /// Activation of the cell candidate g.
    pub cell_activation: Activation,
    /// Activation of the cell state in the output.
    pub output_activation: Activation,
}

/// A layer whose arrays do not fit together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: expected shape {expected:?}, got {got:?}")]
pub struct ShapeError {
    /// Which array.
    pub what: String,
    /// The shape the other arrays imply.
    pub expected: Vec<usize>,
    /// The shape it has.
    pub got: Vec<usize>,
}

impl<T: Real> Layer<T> {
    /// A layer with the usual defaults: sigmoid gates, tanh cell, no
    /// forget_bias, peepholes, clip or projection.
    pub fn new(w_x: Array2<T>, w_h: Array2<T>, bias: Array1<T>) -> Self {
        Layer {
            w_x,
            w_h,
            bias,
            forget_bias: T::zero(),
            peepholes: None,
            cell_clip: None,
            projection: None,
            gate_activation: Activation::Sigmoid,
            cell_activation: Activation::Tanh,
            output_activation: Activation::Tanh,
        }
    }

    /// Number of cell units.
    pub fn units(&self) -> usize {
        self.bias.len() / 4
    }

    /// Size of the input.
    pub fn input_size(&self) -> usize {
        self.w_x.nrows()
    }

    /// Size of the output and recurrent state h (the projection size, if any).
    pub fn output_size(&self) -> usize {
        self.projection
            .as_ref()
            .map_or(self.units(), |p| p.kernel.ncols())
    }

    /// Check that all arrays agree in shape.
    ///
    /// # Errors
    /// A [`ShapeError`] naming the first array that does not fit.
    pub fn validate(&self) -> Result<(), ShapeError> {
        let units = self.units();
        let check = |what: &str, expected: Vec<usize>, got: &[usize]| {
            if expected.as_slice() == got {
                Ok(())
            } else {
                Err(ShapeError {
                    what: what.to_string(),
                    expected,
                    got: got.to_vec(),
                })
            }
        };
        if self.bias.len() % 4 != 0 || units == 0 {
            return Err(ShapeError {
                what: "bias".into(),
                expected: vec![4 * units.max(1)],
                got: self.bias.shape().to_vec(),
            });
        }
        check("w_x", vec![self.w_x.nrows(), 4 * units], self.w_x.shape())?;
        if let Some(p) = &self.projection {
            check(
                "projection",
                vec![units, p.kernel.ncols()],
                p.kernel.shape(),
            )?;
        }
        check("w_h", vec![self.output_size(), 4 * units], self.w_h.shape())?;
        if let Some(p) = &self.peepholes {
            check("peephole i", vec![units], p.input.shape())?;
            check("peephole f", vec![units], p.forget.shape())?;
            check("peephole o", vec![units], p.output.shape())?;
        }
        Ok(())
    }

    /// Convert every array and option to another float type.
    pub fn cast<U: Real>(&self) -> Layer<U> {
        let c = |x: &T| U::from_f64_lossy(x.widen());
        Layer {
            w_x: self.w_x.map(c),
            w_h: self.w_h.map(c),
            bias: self.bias.map(c),
            forget_bias: c(&self.forget_bias),
            peepholes: self.peepholes.as_ref().map(|p| Peepholes {
                input: p.input.map(c),
                forget: p.forget.map(c),
                output: p.output.map(c),
            }),
            cell_clip: self.cell_clip.as_ref().map(c),
            projection: self.projection.as_ref().map(|p| Projection {
                kernel: p.kernel.map(c),
                clip: p.clip.as_ref().map(c),
            }),
            gate_activation: self.gate_activation,
            cell_activation: self.cell_activation,
            output_activation: self.output_activation,
        }
    }
}
