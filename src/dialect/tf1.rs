//! TensorFlow 1.x: `BasicLSTMCell`, `LSTMCell`, `MultiRNNCell`, called once
//! or run by `dynamic_rnn` / `static_rnn` (docs/semantics.md §3-§4).
//!
//! Quirks handled here:
//! * kernel `[input + h_depth, 4*units]` in gate order **i, j, f, o**, rows
//!   for x first, then for h;
//! * `forget_bias` is added at run time, it is not in the bias variable;
//! * `LSTMCell(cell_clip=0.0)` clips to 0 (only `None` means no clip);
//! * the output peephole reads the new, clipped c;
//! * past a row's `sequence_length` the output is zero and the state carried;
//! * the backward half of a bidirectional API reverses each row's valid
//!   prefix only (`reverse_sequence`), leaving the padding in place.

use ndarray::{s, Array1, Array2, Array3, Axis};
use serde::Deserialize;

use super::{DialectError, Half, Outputs, Tensors};
use crate::lstm::{Gate, Layer, MaskedOutput, Peepholes, Projection, Real};

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
    /// `tf.nn.bidirectional_dynamic_rnn`.
    BidirectionalDynamicRnn,
    /// `tf.nn.static_bidirectional_rnn` (stacked lists, time-major).
    StaticBidirectionalRnn,
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
    /// The cell (the forward cell of a bidirectional API).
    pub cell: Cell,
    /// The backward cell of a bidirectional API.
    #[serde(default)]
    pub cell_bw: Option<Cell>,
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
    /// `tf1.<api>`.
    pub fn api_name(&self) -> String {
        let api = match self.api {
            Api::CellCall => "cell_call",
            Api::DynamicRnn => "dynamic_rnn",
            Api::StaticRnn => "static_rnn",
            Api::BidirectionalDynamicRnn => "bidirectional_dynamic_rnn",
            Api::StaticBidirectionalRnn => "static_bidirectional_rnn",
        };
        format!("tf1.{api}")
    }

    /// One line: API, cells and options.
    pub fn summary(&self) -> String {
        let describe_stack = |cell: &Cell| -> String {
            let cells: Vec<String> = flatten(cell)
                .unwrap_or_default()
                .iter()
                .map(|c| describe(c))
                .collect();
            cells.join(", ")
        };
        let mut s = format!("{} [{}]", self.api_name(), describe_stack(&self.cell));
        if let Some(bw) = &self.cell_bw {
            s.push_str(&format!(" bw [{}]", describe_stack(bw)));
        }
        if self.time_major {
            s.push_str(" time_major");
        }
        s
    }

    /// The names of the inputs this model takes.
    fn input_names(&self, fw_layers: usize, bw_layers: usize) -> Vec<String> {
        let mut names = vec!["inputs".to_string()];
        if self.api != Api::CellCall {
            names.push("sequence_length".into());
        }
        if self.bidirectional() {
            names.extend(super::initial_state_names("initial_state_fw/", fw_layers));
            names.extend(super::initial_state_names("initial_state_bw/", bw_layers));
        } else {
            names.extend(super::initial_state_names("initial_state/", fw_layers));
        }
        names
    }

    /// Whether the API runs a backward cell too.
    fn bidirectional(&self) -> bool {
        matches!(
            self.api,
            Api::BidirectionalDynamicRnn | Api::StaticBidirectionalRnn
        )
    }

    /// Whether `inputs` and `outputs` are `[time, batch, ...]`.
    fn is_time_major(&self) -> bool {
        match self.api {
            Api::CellCall => false,
            Api::DynamicRnn | Api::BidirectionalDynamicRnn => self.time_major,
            Api::StaticRnn | Api::StaticBidirectionalRnn => true,
        }
    }

    /// The canonical layers of the forward (or only) cell, reading `input`
    /// features, in float type `T`.
    ///
    /// # Errors
    /// A [`DialectError`] when a variable is missing or has the wrong shape.
    pub fn canonical_layers<T: Real>(
        &self,
        vars: &Tensors,
        input: usize,
    ) -> Result<Vec<Layer<T>>, DialectError> {
        stack_to_canonical(&flatten(&self.cell)?, input, vars)
    }

    /// The canonical layers of the backward cell (bidirectional APIs).
    ///
    /// # Errors
    /// As [`Model::canonical_layers`]; also when the API has no backward cell.
    pub fn canonical_layers_bw<T: Real>(
        &self,
        vars: &Tensors,
        input: usize,
    ) -> Result<Vec<Layer<T>>, DialectError> {
        let cell = self
            .cell_bw
            .as_ref()
            .ok_or_else(|| DialectError::Model(format!("{} needs cell_bw", self.api_name())))?;
        stack_to_canonical(&flatten(cell)?, input, vars)
    }

    /// Run in float type `T`.
    ///
    /// # Errors
    /// A [`DialectError`] when variables or inputs are missing or do not fit.
    pub fn run<T: Real>(
        &self,
        vars: &Tensors,
        inputs: &Tensors,
        runner: &mut dyn super::Runner<T>,
    ) -> Result<Outputs<T>, DialectError> {
        let fw_cells = flatten(&self.cell)?;
        let bw_cells = match (&self.cell_bw, self.bidirectional()) {
            (Some(c), true) => flatten(c)?,
            (None, false) => Vec::new(),
            (None, true) => {
                return Err(DialectError::Model(format!(
                    "{} needs cell_bw",
                    self.api_name()
                )))
            }
            (Some(_), false) => {
                return Err(DialectError::Model(format!(
                    "{} takes no cell_bw",
                    self.api_name()
                )))
            }
        };
        super::check_input_names(inputs, &self.input_names(fw_cells.len(), bw_cells.len()))?;
        if self.time_major && !matches!(self.api, Api::DynamicRnn | Api::BidirectionalDynamicRnn) {
            return Err(DialectError::Model(
                "time_major applies to dynamic_rnn and bidirectional_dynamic_rnn only".into(),
            ));
        }

        // Inputs as [batch, time, input].
        let x: Array3<T> = match self.api {
            Api::CellCall => super::input_one_step(inputs, "inputs", 1)?,
            _ if self.is_time_major() => {
                super::input3::<T>(inputs, "inputs")?.permuted_axes([1, 0, 2])
            }
            _ => super::input3(inputs, "inputs")?,
        };
        let (batch, time, input) = x.dim();
        let lengths = sequence_lengths(inputs, batch, time)?;
        let mask = lengths.as_ref().map(|l| super::length_mask(l, time));

        let mut out = Outputs::new();
        let fw_layers = stack_to_canonical::<T>(&fw_cells, input, vars)?;
        let fw_prefix = if self.bidirectional() {
            "initial_state_fw/"
        } else {
            "initial_state/"
        };
        let fw_initial =
            super::initial_states::<T>(inputs, fw_prefix, &state_shapes(&fw_layers, batch))?;
        let fw_half = self.bidirectional().then_some(Half::Forward);
        let fw = runner.run_step(&super::Step {
            name: Half::step_name(fw_half).into(),
            layers: fw_layers,
            inputs: x.clone(),
            initial_state: fw_initial,
            mask: mask.clone(),
            masked_output: MaskedOutput::Zero,
            reverse: false,
            bidirectional: fw_half,
            depends_on_earlier_steps: false,
        })?;

        if !self.bidirectional() {
            let name = if self.api == Api::CellCall {
                "output"
            } else {
                "outputs"
            };
            let outputs = match self.api {
                Api::CellCall => fw.outputs.index_axis(Axis(1), 0).to_owned().into_dyn(),
                _ => self.layout(fw.outputs.clone()),
            };
            out.insert(name.into(), outputs);
            super::put_states(&mut out, &fw, "");
            return Ok(out);
        }

        // Backward: TF reverses each row's valid prefix (reverse_sequence),
        // runs forward with the same lengths, and reverses the outputs back.
        let bw_layers = stack_to_canonical::<T>(&bw_cells, input, vars)?;
        let bw_initial = super::initial_states::<T>(
            inputs,
            "initial_state_bw/",
            &state_shapes(&bw_layers, batch),
        )?;
        let x_rev = super::reverse_sequence(x.view(), lengths.as_deref());
        let bw = runner.run_step(&super::Step {
            name: Half::step_name(Some(Half::Backward)).into(),
            layers: bw_layers,
            inputs: x_rev,
            initial_state: bw_initial,
            mask,
            masked_output: MaskedOutput::Zero,
            reverse: false,
            bidirectional: Some(Half::Backward),
            depends_on_earlier_steps: false,
        })?;
        let bw_outputs = super::reverse_sequence(bw.outputs.view(), lengths.as_deref());
        match self.api {
            Api::StaticBidirectionalRnn => {
                let both = ndarray::concatenate(Axis(2), &[fw.outputs.view(), bw_outputs.view()])
                    .map_err(|e| DialectError::Invalid(e.to_string()))?;
                out.insert("outputs".into(), self.layout(both));
            }
            _ => {
                out.insert("outputs_fw".into(), self.layout(fw.outputs.clone()));
                out.insert("outputs_bw".into(), self.layout(bw_outputs));
            }
        }
        super::put_states(&mut out, &fw, "fw/");
        super::put_states(&mut out, &bw, "bw/");
        Ok(out)
    }

    /// Batch-major outputs in the API's layout.
    fn layout<T: Real>(&self, outputs: Array3<T>) -> ndarray::ArrayD<T> {
        if self.is_time_major() {
            outputs
                .permuted_axes([1, 0, 2])
                .as_standard_layout()
                .into_owned()
                .into_dyn()
        } else {
            outputs.into_dyn()
        }
    }
}

fn state_shapes<T: Real>(layers: &[Layer<T>], batch: usize) -> Vec<([usize; 2], [usize; 2])> {
    layers
        .iter()
        .map(|l| ([batch, l.units()], [batch, l.output_size()]))
        .collect()
}

/// A cell as a flat stack of cells.
fn flatten(cell: &Cell) -> Result<Vec<&Cell>, DialectError> {
    match cell {
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

fn stack_to_canonical<T: Real>(
    cells: &[&Cell],
    input: usize,
    vars: &Tensors,
) -> Result<Vec<Layer<T>>, DialectError> {
    let mut layers = Vec::with_capacity(cells.len());
    let mut size = input;
    for cell in cells {
        let layer = to_canonical::<T>(cell, size, vars)?;
        size = layer.output_size();
        layers.push(layer);
    }
    Ok(layers)
}

/// `sequence_length`, checked: one length per row, each in `0..=time`.
fn sequence_lengths(
    inputs: &Tensors,
    batch: usize,
    time: usize,
) -> Result<Option<Vec<usize>>, DialectError> {
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
    lengths
        .iter()
        .enumerate()
        .map(|(b, &len)| {
            usize::try_from(len)
                .ok()
                .filter(|&l| l <= time)
                .ok_or_else(|| {
                    DialectError::Invalid(format!(
                        "sequence_length[{b}] = {len} is outside 0..={time}"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
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
            let units = super::size("num_units", c.num_units)?;
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
            let units = super::size("num_units", c.num_units)?;
            let h_depth = super::size("num_proj", c.num_proj.unwrap_or(units))?;
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
