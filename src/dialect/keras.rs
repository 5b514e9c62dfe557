//! Keras 3 and tf-keras (Keras 2): `LSTM` and `RNN(StackedRNNCells([LSTMCell, ...]))`
//! (SEMANTICS.md section 5).
//!
//! Quirks handled here:
//! * kernel `[input, 4*units]`, recurrent kernel `[units, 4*units]`, gate
//!   order **i, f, c, o**; nothing is added to the forget gate at run time
//!   (`unit_forget_bias` only initialises the stored bias);
//! * `hard_sigmoid` is `clip(0.2x + 0.5)` in Keras 2 and `relu6(x + 3)/6` in
//!   Keras 3;
//! * `go_backwards` returns the outputs in processing (reversed) order;
//! * masked steps carry the state and repeat the previous output (zeros
//!   with `zero_output_for_mask`);
//! * `return_state` gives `[output, h, c]`: state order is h before c.

use ndarray::{Array2, Axis};
use serde::Deserialize;

use super::{DialectError, Outputs, Tensors};
use crate::lstm::{self, Gate, Layer, MaskedOutput, Real, Sequence};

/// Keras gate order along the `4*units` axis: i, f, c (= g), o.
pub const GATE_ORDER: [Gate; 4] = [Gate::I, Gate::F, Gate::G, Gate::O];

/// Which Keras made the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum KerasVersion {
    /// tf-keras / Keras 2.
    #[serde(rename = "2")]
    Keras2,
    /// Keras 3.
    #[serde(rename = "3")]
    Keras3,
}

impl KerasVersion {
    fn major(self) -> u8 {
        match self {
            KerasVersion::Keras2 => 2,
            KerasVersion::Keras3 => 3,
        }
    }
}

/// Which layer ran the cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum LayerKind {
    /// `keras.layers.LSTM`: exactly one cell.
    #[serde(rename = "LSTM")]
    Lstm,
    /// `keras.layers.RNN(StackedRNNCells([...]))` or `RNN([cells])`.
    #[serde(rename = "RNN")]
    Rnn,
}

/// A case's `model` in the `keras` dialect.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Which Keras.
    pub keras: KerasVersion,
    /// Which layer.
    pub layer: LayerKind,
    /// Return every step's output, not only the last.
    pub return_sequences: bool,
    /// Also return the final states.
    pub return_state: bool,
    /// Process the sequence last to first, outputs in that order.
    pub go_backwards: bool,
    /// Masked steps output zeros instead of the previous output.
    #[serde(default)]
    pub zero_output_for_mask: bool,
    /// The cells, first to last.
    pub cells: Vec<CellConfig>,
}

/// One `LSTMCell`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellConfig {
    /// Units.
    pub units: usize,
    /// Activation of c and of the cell candidate.
    pub activation: String,
    /// Activation of the i, f and o gates.
    pub recurrent_activation: String,
    /// Whether the cell has a bias.
    pub use_bias: bool,
    /// Native names of the variables.
    pub variables: CellVariables,
}

/// Variable names of an `LSTMCell`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellVariables {
    /// `[input, 4*units]`.
    pub kernel: String,
    /// `[units, 4*units]`.
    pub recurrent_kernel: String,
    /// `[4*units]`, when `use_bias`.
    pub bias: Option<String>,
}

impl Model {
    /// `keras<major>.<layer>`.
    pub fn api_name(&self) -> String {
        let layer = match self.layer {
            LayerKind::Lstm => "LSTM",
            LayerKind::Rnn => "RNN",
        };
        format!("keras{}.{layer}", self.keras.major())
    }

    /// One line: API, cells and options.
    pub fn summary(&self) -> String {
        let cells: Vec<String> = self
            .cells
            .iter()
            .map(|c| {
                let mut s = format!("LSTMCell({}", c.units);
                if c.activation != "tanh" {
                    s.push_str(&format!(", activation={}", c.activation));
                }
                if c.recurrent_activation != "sigmoid" {
                    s.push_str(&format!(
                        ", recurrent_activation={}",
                        c.recurrent_activation
                    ));
                }
                if !c.use_bias {
                    s.push_str(", use_bias=False");
                }
                s + ")"
            })
            .collect();
        let mut s = format!("{} [{}]", self.api_name(), cells.join(", "));
        for (on, name) in [
            (self.return_sequences, "return_sequences"),
            (self.return_state, "return_state"),
            (self.go_backwards, "go_backwards"),
            (self.zero_output_for_mask, "zero_output_for_mask"),
        ] {
            if on {
                s.push(' ');
                s.push_str(name);
            }
        }
        s
    }

    /// Run in float type `T`.
    ///
    /// # Errors
    /// A [`DialectError`] when variables or inputs are missing or do not fit.
    pub fn run<T: Real>(
        &self,
        vars: &Tensors,
        inputs: &Tensors,
    ) -> Result<Outputs<T>, DialectError> {
        if self.cells.is_empty() {
            return Err(DialectError::Model("no cells".into()));
        }
        if self.layer == LayerKind::Lstm && self.cells.len() != 1 {
            return Err(DialectError::Model(format!(
                "LSTM has exactly one cell, got {}",
                self.cells.len()
            )));
        }
        let mut allowed = vec!["inputs".to_string(), "mask".to_string()];
        allowed.extend(super::initial_state_names(
            "initial_state/",
            self.cells.len(),
        ));
        super::check_input_names(inputs, &allowed)?;

        let x = super::input3::<T>(inputs, "inputs")?;
        let (batch, time, input) = x.dim();
        let mut layers = Vec::with_capacity(self.cells.len());
        let mut size = input;
        for cell in &self.cells {
            let layer = self.to_canonical::<T>(cell, size, vars)?;
            size = layer.output_size();
            layers.push(layer);
        }
        let shapes: Vec<_> = layers
            .iter()
            .map(|l| ([batch, l.units()], [batch, l.units()]))
            .collect();
        let initial = super::initial_states::<T>(inputs, "initial_state/", &shapes)?;
        let mask = match inputs.get("mask") {
            None => None,
            Some(crate::tensor::Tensor::Bool(m)) => {
                if m.shape() != [batch, time] {
                    return Err(DialectError::Shape {
                        what: "mask".into(),
                        expected: vec![batch, time],
                        got: m.shape().to_vec(),
                    });
                }
                Some(
                    m.clone()
                        .into_dimensionality::<ndarray::Ix2>()
                        .expect("shape checked"),
                )
            }
            Some(other) => {
                return Err(DialectError::DType {
                    what: "mask".into(),
                    expected: "bool",
                    got: other.dtype(),
                })
            }
        };
        let seq = Sequence {
            inputs: x.view(),
            initial_state: initial.as_deref(),
            mask: mask.as_ref().map(Array2::view),
            masked_output: if self.zero_output_for_mask {
                MaskedOutput::Zero
            } else {
                MaskedOutput::RepeatPrevious
            },
            reverse: self.go_backwards,
        };
        let run = lstm::run(&layers, &seq).map_err(|e| DialectError::Invalid(e.to_string()))?;

        let mut out = Outputs::new();
        let output = if self.return_sequences {
            run.outputs.clone().into_dyn()
        } else if time == 0 {
            return Err(DialectError::Invalid(
                "a sequence of length 0 has no last output".into(),
            ));
        } else {
            run.outputs
                .index_axis(Axis(1), time - 1)
                .to_owned()
                .into_dyn()
        };
        out.insert("output".into(), output);
        super::put_states(&mut out, &run, "");
        Ok(out)
    }

    fn to_canonical<T: Real>(
        &self,
        cell: &CellConfig,
        input: usize,
        vars: &Tensors,
    ) -> Result<Layer<T>, DialectError> {
        let units = cell.units;
        let v = &cell.variables;
        let kernel = super::variable2::<T>(vars, &v.kernel, [input, 4 * units])?;
        let recurrent = super::variable2::<T>(vars, &v.recurrent_kernel, [units, 4 * units])?;
        let bias = match (&v.bias, cell.use_bias) {
            (Some(name), true) => super::variable1::<T>(vars, name, 4 * units)?,
            (None, false) => ndarray::Array1::zeros(4 * units),
            (None, true) => {
                return Err(DialectError::Model(
                    "use_bias is true but variables.bias is missing".into(),
                ))
            }
            (Some(_), false) => {
                return Err(DialectError::Model(
                    "use_bias is false but variables.bias is given".into(),
                ))
            }
        };
        let mut layer = Layer::new(
            super::blocks_to_canonical(kernel.view(), GATE_ORDER),
            super::blocks_to_canonical(recurrent.view(), GATE_ORDER),
            super::vector_to_canonical(bias.view(), GATE_ORDER),
        );
        let major = Some(self.keras.major());
        layer.gate_activation = super::activation(&cell.recurrent_activation, major)?;
        layer.cell_activation = super::activation(&cell.activation, major)?;
        layer.output_activation = layer.cell_activation;
        Ok(layer)
    }
}

/// An `LSTMCell`'s weights in Keras layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights<T> {
    /// `[input, 4*units]`, i, f, c, o.
    pub kernel: Array2<T>,
    /// `[units, 4*units]`, i, f, c, o.
    pub recurrent_kernel: Array2<T>,
    /// `[4*units]`, i, f, c, o.
    pub bias: ndarray::Array1<T>,
}

/// Canonical weights in Keras layout.
///
/// # Errors
/// When the layer has options Keras cannot express (forget_bias,
/// peepholes, clipping, projection).
pub fn weights_from_canonical<T: Real>(layer: &Layer<T>) -> Result<Weights<T>, DialectError> {
    if layer.forget_bias != T::zero()
        || layer.peepholes.is_some()
        || layer.cell_clip.is_some()
        || layer.projection.is_some()
    {
        return Err(DialectError::Invalid(
            "Keras LSTM has no forget_bias, peepholes, cell_clip or projection".into(),
        ));
    }
    Ok(Weights {
        kernel: super::blocks_from_canonical(layer.w_x.view(), GATE_ORDER),
        recurrent_kernel: super::blocks_from_canonical(layer.w_h.view(), GATE_ORDER),
        bias: super::vector_from_canonical(layer.bias.view(), GATE_ORDER),
    })
}
