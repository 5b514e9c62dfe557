//! TensorFlow 1.x: `BasicLSTMCell`, `LSTMCell`, `MultiRNNCell`, called once
//! or run by `dynamic_rnn` / `static_rnn` (SEMANTICS.md sections 1-3).
//!
//! Quirks handled here:
//! * kernel `[input + h_depth, 4*units]` in gate order **i, j, f, o**, rows
//!   for x first, then for h;
//! * `forget_bias` is added at run time, it is not in the bias variable;
//! * `LSTMCell(cell_clip=0.0)` clips to 0 (only `None` means no clip);
//! * the output peephole reads the new, clipped c;
//! * past a row's `sequence_length` the output is zero and the state carried.

use ndarray::{s, Array1, Array2, Array3, Axis};
use serde::Deserialize;

use super::{DialectError, Outputs, Tensors};
use crate::lstm::{self, Gate, Layer, MaskedOutput, Peepholes, Projection, Real, Sequence};

/// TF1 gate order along the `4*units` axis: i, j (= g), f, o.
pub const GATE_ORDER: [Gate; 4] = [Gate::I, Gate::G, Gate::F, Gate::O];

/// How the cell is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `output, state = cell(inputs, state)`: one step.
    CellCall,
    /// `tf.nn.dynamic_rnn`.
    DynamicRnn,
    /// `tf.nn.static_rnn` (inputs and outputs as a stacked list, time-major).
    StaticRnn,
}

/// A case's `model` in the `tf1` dialect.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// How the cell is run.
    pub api: Api,
    /// `dynamic_rnn(time_major=...)`.
    #[serde(default)]
    pub time_major: bool,
    /// The cell.
    pub cell: Cell,
}

/// A TF1 RNN cell.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "class")]
pub enum Cell {
    /// `tf.compat.v1.nn.rnn_cell.BasicLSTMCell`.
    #[serde(rename = "BasicLSTMCell")]
    Basic(BasicLstmCell),
    /// `tf.compat.v1.nn.rnn_cell.LSTMCell`.
    #[serde(rename = "LSTMCell")]
    Lstm(LstmCell),
    /// `tf.compat.v1.nn.rnn_cell.MultiRNNCell`.
    #[serde(rename = "MultiRNNCell")]
    Multi(MultiRnnCell),
}

/// `BasicLSTMCell(num_units, forget_bias, activation)`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicLstmCell {
    /// Units.
    pub num_units: usize,
    /// Added to the forget pre-activation at run time.
    pub forget_bias: f64,
    /// Activation of j and of the new c.
    pub activation: String,
    /// Native names of `kernel` and `bias`.
    pub variables: BasicVariables,
}

/// Variable names of a `BasicLSTMCell`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicVariables {
    /// `[input + units, 4*units]`.
    pub kernel: String,
    /// `[4*units]`.
    pub bias: String,
}

/// `LSTMCell(num_units, use_peepholes, cell_clip, num_proj, proj_clip, forget_bias, activation)`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LstmCell {
    /// Units.
    pub num_units: usize,
    /// Added to the forget pre-activation at run time.
    pub forget_bias: f64,
    /// Activation of j and of the new c.
    pub activation: String,
    /// Diagonal peepholes.
    pub use_peepholes: bool,
    /// Clip c to `[-cell_clip, cell_clip]` (0 clips to 0).
    pub cell_clip: Option<f64>,
    /// Project h to this many units.
    pub num_proj: Option<usize>,
    /// Clip the projection.
    pub proj_clip: Option<f64>,
    /// Native names of the variables.
    pub variables: LstmVariables,
}

/// Variable names of an `LSTMCell`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LstmVariables {
    /// `[input + h_depth, 4*units]`.
    pub kernel: String,
    /// `[4*units]`.
    pub bias: String,
    /// `[units]`, with peepholes.
    pub w_i_diag: Option<String>,
    /// `[units]`, with peepholes.
    pub w_f_diag: Option<String>,
    /// `[units]`, with peepholes.
    pub w_o_diag: Option<String>,
    /// `[units, num_proj]`, with `num_proj`.
    #[serde(rename = "projection/kernel")]
    pub projection_kernel: Option<String>,
}

/// `MultiRNNCell(cells)`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiRnnCell {
    /// The stacked cells, first to last.
    pub cells: Vec<Cell>,
}

impl Model {
    /// The cells as a flat stack.
    fn layers(&self) -> Result<Vec<&Cell>, DialectError> {
        match &self.cell {
            Cell::Multi(m) => {
                if m.cells.is_empty() {
                    return Err(DialectError::Model("MultiRNNCell with no cells".into()));
                }
                if m.cells.iter().any(|c| matches!(c, Cell::Multi(_))) {
                    return Err(DialectError::Model(
                        "nested MultiRNNCell is not supported".into(),
                    ));
                }
                Ok(m.cells.iter().collect())
            }
            cell => Ok(vec![cell]),
        }
    }

    /// `tf1.<api>`.
    pub fn api_name(&self) -> String {
        let api = match self.api {
            Api::CellCall => "cell_call",
            Api::DynamicRnn => "dynamic_rnn",
            Api::StaticRnn => "static_rnn",
        };
        format!("tf1.{api}")
    }

    /// One line: API, cells and options.
    pub fn summary(&self) -> String {
        let cells: Vec<String> = self
            .layers()
            .unwrap_or_default()
            .iter()
            .map(|c| describe(c))
            .collect();
        let mut s = format!("{} [{}]", self.api_name(), cells.join(", "));
        if self.time_major {
            s.push_str(" time_major");
        }
        s
    }

    /// The names of the inputs this model takes.
    fn input_names(&self, layers: usize) -> Vec<String> {
        let mut names = vec!["inputs".to_string()];
        if self.api != Api::CellCall {
            names.push("sequence_length".into());
        }
        names.extend(super::initial_state_names("initial_state/", layers));
        names
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
        let cells = self.layers()?;
        super::check_input_names(inputs, &self.input_names(cells.len()))?;
        if self.time_major && self.api != Api::DynamicRnn {
            return Err(DialectError::Model(
                "time_major applies to dynamic_rnn only".into(),
            ));
        }

        // Inputs as [batch, time, input].
        let x: Array3<T> = match self.api {
            Api::CellCall => {
                let x = super::input_float::<T>(inputs, "inputs")?;
                let got = x.shape().to_vec();
                x.into_dimensionality::<ndarray::Ix2>()
                    .map_err(|_| DialectError::Shape {
                        what: "inputs (rank 2: [batch, input])".into(),
                        expected: vec![],
                        got,
                    })?
                    .insert_axis(Axis(1))
            }
            Api::DynamicRnn if !self.time_major => super::input3(inputs, "inputs")?,
            _ => super::input3::<T>(inputs, "inputs")?.permuted_axes([1, 0, 2]),
        };
        let (batch, time, input) = x.dim();

        let mut layers = Vec::with_capacity(cells.len());
        let mut size = input;
        for cell in &cells {
            let layer = to_canonical::<T>(cell, size, vars)?;
            size = layer.output_size();
            layers.push(layer);
        }

        let shapes: Vec<_> = layers
            .iter()
            .map(|l| ([batch, l.units()], [batch, l.output_size()]))
            .collect();
        let initial = super::initial_states::<T>(inputs, "initial_state/", &shapes)?;
        let mask = sequence_mask(inputs, batch, time)?;

        let seq = Sequence {
            inputs: x.view(),
            initial_state: initial.as_deref(),
            mask: mask.as_ref().map(|m| m.view()),
            masked_output: MaskedOutput::Zero,
            reverse: false,
        };
        let run = lstm::run(&layers, &seq).map_err(|e| DialectError::Invalid(e.to_string()))?;

        let mut out = Outputs::new();
        match self.api {
            Api::CellCall => {
                out.insert(
                    "output".into(),
                    run.outputs.index_axis(Axis(1), 0).to_owned().into_dyn(),
                );
            }
            Api::DynamicRnn if !self.time_major => {
                out.insert("outputs".into(), run.outputs.clone().into_dyn());
            }
            _ => {
                let time_major = run.outputs.view().permuted_axes([1, 0, 2]);
                out.insert(
                    "outputs".into(),
                    time_major.as_standard_layout().into_owned().into_dyn(),
                );
            }
        }
        super::put_states(&mut out, &run, "");
        Ok(out)
    }
}

/// `sequence_length` as a `[batch, time]` mask: row `b` computes steps
/// `t < sequence_length[b]`.
fn sequence_mask(
    inputs: &Tensors,
    batch: usize,
    time: usize,
) -> Result<Option<Array2<bool>>, DialectError> {
    let Some(t) = inputs.get("sequence_length") else {
        return Ok(None);
    };
    let crate::tensor::Tensor::I32(lengths) = t else {
        return Err(DialectError::DType {
            what: "sequence_length".into(),
            expected: "int32",
            got: t.dtype(),
        });
    };
    if lengths.shape() != [batch] {
        return Err(DialectError::Shape {
            what: "sequence_length".into(),
            expected: vec![batch],
            got: lengths.shape().to_vec(),
        });
    }
    let mut mask = Array2::from_elem((batch, time), false);
    for (b, &len) in lengths.iter().enumerate() {
        if len < 0 || len as usize > time {
            return Err(DialectError::Invalid(format!(
                "sequence_length[{b}] = {len} is outside 0..={time}"
            )));
        }
        mask.slice_mut(s![b, ..len as usize]).fill(true);
    }
    Ok(Some(mask))
}

fn describe(cell: &Cell) -> String {
    match cell {
        Cell::Basic(c) => format!(
            "BasicLSTMCell({}, forget_bias={})",
            c.num_units, c.forget_bias
        ),
        Cell::Lstm(c) => {
            let mut s = format!("LSTMCell({}, forget_bias={}", c.num_units, c.forget_bias);
            if c.use_peepholes {
                s.push_str(", peepholes");
            }
            if let Some(clip) = c.cell_clip {
                s.push_str(&format!(", cell_clip={clip}"));
            }
            if let Some(p) = c.num_proj {
                s.push_str(&format!(", num_proj={p}"));
            }
            if let Some(p) = c.proj_clip {
                s.push_str(&format!(", proj_clip={p}"));
            }
            if c.activation != "tanh" {
                s.push_str(&format!(", activation={}", c.activation));
            }
            s + ")"
        }
        Cell::Multi(m) => format!("MultiRNNCell({})", m.cells.len()),
    }
}

/// A TF1 kernel `[input + h_depth, 4u]` (i, j, f, o) and bias as canonical
/// `(w_x, w_h, bias)`.
pub fn kernel_to_canonical<T: Clone>(
    kernel: &Array2<T>,
    bias: &Array1<T>,
    input: usize,
) -> (Array2<T>, Array2<T>, Array1<T>) {
    let w_x = super::blocks_to_canonical(kernel.slice(s![..input, ..]), GATE_ORDER);
    let w_h = super::blocks_to_canonical(kernel.slice(s![input.., ..]), GATE_ORDER);
    (
        w_x,
        w_h,
        super::vector_to_canonical(bias.view(), GATE_ORDER),
    )
}

/// Canonical weights as a TF1 `(kernel, bias)`: the inverse of
/// [`kernel_to_canonical`]. `forget_bias` stays separate.
pub fn kernel_from_canonical<T: Real>(layer: &Layer<T>) -> (Array2<T>, Array1<T>) {
    let stacked =
        ndarray::concatenate(Axis(0), &[layer.w_x.view(), layer.w_h.view()]).expect("same width");
    (
        super::blocks_from_canonical(stacked.view(), GATE_ORDER),
        super::vector_from_canonical(layer.bias.view(), GATE_ORDER),
    )
}

/// One cell as a canonical layer reading `input` features.
fn to_canonical<T: Real>(
    cell: &Cell,
    input: usize,
    vars: &Tensors,
) -> Result<Layer<T>, DialectError> {
    let f = T::from_f64_lossy;
    match cell {
        Cell::Basic(c) => {
            let units = c.num_units;
            let kernel =
                super::variable2::<T>(vars, &c.variables.kernel, [input + units, 4 * units])?;
            let bias = super::variable1::<T>(vars, &c.variables.bias, 4 * units)?;
            let (w_x, w_h, bias) = kernel_to_canonical(&kernel, &bias, input);
            let act = super::activation(&c.activation, None)?;
            let mut layer = Layer::new(w_x, w_h, bias);
            layer.forget_bias = f(c.forget_bias);
            layer.cell_activation = act;
            layer.output_activation = act;
            Ok(layer)
        }
        Cell::Lstm(c) => {
            let units = c.num_units;
            let h_depth = c.num_proj.unwrap_or(units);
            let v = &c.variables;
            let kernel = super::variable2::<T>(vars, &v.kernel, [input + h_depth, 4 * units])?;
            let bias = super::variable1::<T>(vars, &v.bias, 4 * units)?;
            let (w_x, w_h, bias) = kernel_to_canonical(&kernel, &bias, input);
            let act = super::activation(&c.activation, None)?;
            let mut layer = Layer::new(w_x, w_h, bias);
            layer.forget_bias = f(c.forget_bias);
            layer.cell_activation = act;
            layer.output_activation = act;
            layer.cell_clip = c.cell_clip.map(f);
            let named = |name: &Option<String>, what: &str| {
                name.clone().ok_or_else(|| {
                    DialectError::Model(format!(
                        "LSTMCell.variables.{what} is required by this cell's options"
                    ))
                })
            };
            if c.use_peepholes {
                layer.peepholes = Some(Peepholes {
                    input: super::variable1(vars, &named(&v.w_i_diag, "w_i_diag")?, units)?,
                    forget: super::variable1(vars, &named(&v.w_f_diag, "w_f_diag")?, units)?,
                    output: super::variable1(vars, &named(&v.w_o_diag, "w_o_diag")?, units)?,
                });
            }
            if let Some(proj) = c.num_proj {
                layer.projection = Some(Projection {
                    kernel: super::variable2(
                        vars,
                        &named(&v.projection_kernel, "projection/kernel")?,
                        [units, proj],
                    )?,
                    clip: c.proj_clip.map(f),
                });
            }
            // Without num_proj, TF ignores proj_clip; so do we.
            Ok(layer)
        }
        Cell::Multi(_) => Err(DialectError::Model(
            "nested MultiRNNCell is not supported".into(),
        )),
    }
}
