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
//!   prefix only (`reverse_sequence`), leaving the padding in place;
//! * `state_is_tuple=False`: a cell's state is one tensor `[c, h]`, and a
//!   `MultiRNNCell(state_is_tuple=False)` concatenates its cells' states
//!   into one tensor `[c0, h0, c1, h1, ...]` (§3.6); split and joined here;
//! * `DropoutWrapper` with every keep probability 1.0 is the identity; below
//!   1.0 it is random and refused (§3.8);
//! * `ResidualWrapper` adds the cell's input to its output, not to its state
//!   (§3.9): a residual layer runs as a step of its own and the dialect adds
//!   the input at the steps the row computes.

use ndarray::{s, Array1, Array2, Array3, Axis};
use serde::Deserialize;

use super::{DialectError, Half, Outputs, Tensors};
use crate::lstm::{Gate, Layer, MaskedOutput, Peepholes, Projection, Real, RunOutput, State};

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
    /// `tf.compat.v1.nn.rnn_cell.DropoutWrapper` around one cell.
    #[serde(rename = "DropoutWrapper")]
    Dropout(DropoutWrapper),
    /// `tf.compat.v1.nn.rnn_cell.ResidualWrapper` around one cell.
    #[serde(rename = "ResidualWrapper")]
    Residual(ResidualWrapper),
}

fn yes() -> bool {
    true
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
    /// `false`: the state is one tensor `[c, h]` (default `true`: `(c, h)`).
    #[serde(default = "yes")]
    pub state_is_tuple: bool,
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
    /// `false`: the state is one tensor `[c, h]`, h with `num_proj` columns
    /// if set (default `true`: `(c, h)`).
    #[serde(default = "yes")]
    pub state_is_tuple: bool,
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
    /// `false`: the stack's state is one tensor, the cells' one-tensor
    /// states concatenated (every cell must have `state_is_tuple=false`).
    #[serde(default = "yes")]
    pub state_is_tuple: bool,
}

/// `DropoutWrapper(cell, input_keep_prob, output_keep_prob, state_keep_prob, seed)`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutWrapper {
    /// Keep probability of the cell's input.
    pub input_keep_prob: f64,
    /// Keep probability of the cell's output.
    pub output_keep_prob: f64,
    /// Keep probability of the cell's new state.
    pub state_keep_prob: f64,
    /// The wrapper's seed (unused when every keep probability is 1.0).
    pub seed: Option<i64>,
    /// The wrapped cell.
    pub cell: Box<Cell>,
}

/// `ResidualWrapper(cell)`: output = input + the cell's output.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidualWrapper {
    /// The wrapped cell.
    pub cell: Box<Cell>,
}

/// One layer of a stack: a `BasicLSTMCell` or `LSTMCell`, wrappers taken off.
#[derive(Clone, Copy, Debug)]
struct StackLayer<'a> {
    /// The LSTM cell.
    cell: &'a Cell,
    /// Inside a `ResidualWrapper`.
    residual: bool,
}

/// How TF's state nest holds a stack's states.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StateForm {
    /// Per layer: `(c, h)` tuples (`false`) or one tensor `[c, h]` (`true`).
    PerLayer(Vec<bool>),
    /// One tensor for the whole stack: `[c0, h0, c1, h1, ...]`.
    Whole,
}

/// A cell as a flat stack of layers and the form of its state.
#[derive(Clone, Debug)]
struct Stack<'a> {
    layers: Vec<StackLayer<'a>>,
    form: StateForm,
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
            match cell {
                Cell::Multi(m) => {
                    let cells: Vec<String> = m.cells.iter().map(describe).collect();
                    let joined = cells.join(", ");
                    if m.state_is_tuple {
                        joined
                    } else {
                        format!("{joined}; state_is_tuple=False")
                    }
                }
                cell => describe(cell),
            }
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
    fn input_names(&self, fw: &Stack, bw: Option<&Stack>) -> Vec<String> {
        let mut names = vec!["inputs".to_string()];
        if self.api != Api::CellCall {
            names.push("sequence_length".into());
        }
        match bw {
            Some(bw) => {
                names.extend(fw.state_names("initial_state_fw"));
                names.extend(bw.state_names("initial_state_bw"));
            }
            None => names.extend(fw.state_names("initial_state")),
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
    /// features, in float type `T`. A `ResidualWrapper`'s addition is not
    /// part of a layer: [`Model::run`] adds it between steps.
    ///
    /// # Errors
    /// A [`DialectError`] when a variable is missing or has the wrong shape.
    pub fn canonical_layers<T: Real>(
        &self,
        vars: &Tensors,
        input: usize,
    ) -> Result<Vec<Layer<T>>, DialectError> {
        stack_to_canonical(&flatten(&self.cell)?.layers, input, vars)
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
        stack_to_canonical(&flatten(cell)?.layers, input, vars)
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
        let fw_stack = flatten(&self.cell)?;
        let bw_stack = match (&self.cell_bw, self.bidirectional()) {
            (Some(c), true) => Some(flatten(c)?),
            (None, false) => None,
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
        super::check_input_names(inputs, &self.input_names(&fw_stack, bw_stack.as_ref()))?;
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
        let fw_layers = stack_to_canonical::<T>(&fw_stack.layers, input, vars)?;
        let fw_base = if self.bidirectional() {
            "initial_state_fw"
        } else {
            "initial_state"
        };
        let fw_initial = fw_stack.initial_states::<T>(inputs, fw_base, &fw_layers, batch)?;
        let fw_half = self.bidirectional().then_some(Half::Forward);
        let fw = run_stack(
            runner,
            &fw_stack,
            fw_layers,
            x.clone(),
            fw_initial,
            mask.as_ref(),
            fw_half,
        )?;

        let Some(bw_stack) = bw_stack else {
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
            fw_stack.put_states(&mut out, &fw, "");
            return Ok(out);
        };

        // Backward: TF reverses each row's valid prefix (reverse_sequence),
        // runs forward with the same lengths, and reverses the outputs back.
        let bw_layers = stack_to_canonical::<T>(&bw_stack.layers, input, vars)?;
        let bw_initial =
            bw_stack.initial_states::<T>(inputs, "initial_state_bw", &bw_layers, batch)?;
        let x_rev = super::reverse_sequence(x.view(), lengths.as_deref());
        let bw = run_stack(
            runner,
            &bw_stack,
            bw_layers,
            x_rev,
            bw_initial,
            mask.as_ref(),
            Some(Half::Backward),
        )?;
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
        fw_stack.put_states(&mut out, &fw, "fw/");
        bw_stack.put_states(&mut out, &bw, "bw/");
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

/// Run a stack's layers as canonical steps: one step for the whole stack,
/// or, when it has `ResidualWrapper` layers, one step per residual layer and
/// per run of plain layers between them, each reading the previous step's
/// outputs; a residual step's outputs get its inputs added at the steps
/// each row computes (where TF's runner zeroes the wrapper's output
/// instead, the canonical step's output is already zero).
fn run_stack<T: Real>(
    runner: &mut dyn super::Runner<T>,
    stack: &Stack,
    layers: Vec<Layer<T>>,
    inputs: ndarray::Array3<T>,
    initial: Option<Vec<State<T>>>,
    mask: Option<&Array2<bool>>,
    half: Option<Half>,
) -> Result<RunOutput<T>, DialectError> {
    let base = Half::step_name(half);
    let mut segments: Vec<std::ops::Range<usize>> = Vec::new();
    for (k, layer) in stack.layers.iter().enumerate() {
        match segments.last_mut() {
            Some(last) if !layer.residual && !stack.layers[last.start].residual => last.end = k + 1,
            _ => segments.push(k..k + 1),
        }
    }
    let single = segments.len() == 1;
    let mut x = inputs;
    let mut final_state = Vec::with_capacity(layers.len());
    let mut trace = Vec::with_capacity(layers.len());
    for (index, range) in segments.into_iter().enumerate() {
        let residual = stack.layers[range.start].residual;
        let step = super::Step {
            name: if single {
                base.to_string()
            } else {
                format!("{base}/{}", range.start)
            },
            layers: layers[range.clone()].to_vec(),
            inputs: x,
            initial_state: initial.as_ref().map(|s| s[range.clone()].to_vec()),
            mask: mask.cloned(),
            masked_output: MaskedOutput::Zero,
            reverse: false,
            bidirectional: half,
            depends_on_earlier_steps: index > 0,
            products: Some(crate::lstm::reduced::Products::Joint),
        };
        let mut run = runner.run_step(&step)?;
        if residual {
            if run.outputs.dim() != step.inputs.dim() {
                return Err(DialectError::Invalid(format!(
                    "step {}: outputs {:?} cannot take the residual inputs {:?}",
                    step.name,
                    run.outputs.dim(),
                    step.inputs.dim()
                )));
            }
            let (batch, time, _) = step.inputs.dim();
            for b in 0..batch {
                for t in 0..time {
                    if mask.is_none_or(|m| m[[b, t]]) {
                        run.outputs
                            .slice_mut(s![b, t, ..])
                            .zip_mut_with(&step.inputs.slice(s![b, t, ..]), |o, &x| *o = x + *o);
                    }
                }
            }
        }
        final_state.extend(run.final_state);
        trace.extend(run.trace);
        x = run.outputs;
    }
    Ok(RunOutput {
        outputs: x,
        final_state,
        trace,
    })
}

/// The LSTM cell inside `cell`'s wrappers, and whether one is a
/// `ResidualWrapper`.
fn unwrap_cell(cell: &Cell) -> Result<StackLayer<'_>, DialectError> {
    match cell {
        Cell::Basic(_) | Cell::Lstm(_) => Ok(StackLayer {
            cell,
            residual: false,
        }),
        Cell::Multi(_) => Err(DialectError::Model(
            "a MultiRNNCell inside a MultiRNNCell or a wrapper is not supported".into(),
        )),
        Cell::Dropout(d) => {
            for (what, p) in [
                ("input_keep_prob", d.input_keep_prob),
                ("output_keep_prob", d.output_keep_prob),
                ("state_keep_prob", d.state_keep_prob),
            ] {
                if p != 1.0 {
                    return Err(DialectError::Model(format!(
                        "DropoutWrapper {what} = {p}: only keep probabilities of 1.0 (no dropout) \
                         can be a case; below 1.0 TensorFlow draws a new random mask on every run \
                         (docs/semantics.md §3.8)"
                    )));
                }
            }
            unwrap_cell(&d.cell)
        }
        Cell::Residual(r) => {
            let inner = unwrap_cell(&r.cell)?;
            if inner.residual {
                return Err(DialectError::Model(
                    "a ResidualWrapper around a ResidualWrapper is not supported".into(),
                ));
            }
            Ok(StackLayer {
                residual: true,
                ..inner
            })
        }
    }
}

/// Whether a `BasicLSTMCell` or `LSTMCell` keeps its state as one tensor.
fn concatenated(cell: &Cell) -> bool {
    match cell {
        Cell::Basic(c) => !c.state_is_tuple,
        Cell::Lstm(c) => !c.state_is_tuple,
        _ => false,
    }
}

/// A cell as a flat stack of layers.
fn flatten(cell: &Cell) -> Result<Stack<'_>, DialectError> {
    match cell {
        Cell::Multi(m) => {
            if m.cells.is_empty() {
                return Err(DialectError::Model("MultiRNNCell with no cells".into()));
            }
            let layers = m
                .cells
                .iter()
                .map(unwrap_cell)
                .collect::<Result<Vec<_>, _>>()?;
            let concat: Vec<bool> = layers.iter().map(|l| concatenated(l.cell)).collect();
            if m.state_is_tuple {
                return Ok(Stack {
                    layers,
                    form: StateForm::PerLayer(concat),
                });
            }
            if let Some(k) = concat.iter().position(|c| !c) {
                return Err(DialectError::Model(format!(
                    "MultiRNNCell(state_is_tuple=False) needs every cell with state_is_tuple=False; \
                     cell {k} keeps a (c, h) tuple (TensorFlow raises ValueError)"
                )));
            }
            Ok(Stack {
                layers,
                form: StateForm::Whole,
            })
        }
        cell => {
            let layer = unwrap_cell(cell)?;
            Ok(Stack {
                form: StateForm::PerLayer(vec![concatenated(layer.cell)]),
                layers: vec![layer],
            })
        }
    }
}

impl Stack<'_> {
    /// The native names of the stack's state tensors under `base`
    /// (`initial_state`, `state`, `fw/state`, ...): `<base>/<layer>/c` and
    /// `/h` for a tuple, `<base>/<layer>` for a one-tensor cell state,
    /// `<base>` for a one-tensor stack state.
    fn state_names(&self, base: &str) -> Vec<String> {
        match &self.form {
            StateForm::Whole => vec![base.to_string()],
            StateForm::PerLayer(concat) => concat
                .iter()
                .enumerate()
                .flat_map(|(l, &whole)| {
                    if whole {
                        vec![format!("{base}/{l}")]
                    } else {
                        vec![format!("{base}/{l}/c"), format!("{base}/{l}/h")]
                    }
                })
                .collect(),
        }
    }

    /// The initial states under `base`, split into each layer's `(c, h)`,
    /// or `None` when the case gives none. All or nothing.
    fn initial_states<T: Real>(
        &self,
        inputs: &Tensors,
        base: &str,
        layers: &[Layer<T>],
        batch: usize,
    ) -> Result<Option<Vec<State<T>>>, DialectError> {
        let names = self.state_names(base);
        if !names.iter().any(|n| inputs.contains_key(n)) {
            return Ok(None);
        }
        let read = |name: &str, widths: Vec<usize>| -> Result<Vec<Array2<T>>, DialectError> {
            let a = super::input_float::<T>(inputs, name)?;
            let total: usize = widths.iter().sum();
            if a.shape() != [batch, total] {
                let what = if widths.len() > 1 {
                    format!("{name} (state_is_tuple=False: each layer's [c, h] concatenated, widths {widths:?})")
                } else {
                    name.to_string()
                };
                return Err(DialectError::Shape {
                    what,
                    expected: vec![batch, total],
                    got: a.shape().to_vec(),
                });
            }
            let a = a
                .into_dimensionality::<ndarray::Ix2>()
                .expect("shape checked");
            let mut offset = 0;
            Ok(widths
                .iter()
                .map(|w| {
                    let part = a.slice(s![.., offset..offset + w]).to_owned();
                    offset += w;
                    part
                })
                .collect())
        };
        let pair = |l: &Layer<T>| [l.units(), l.output_size()];
        let states = match &self.form {
            StateForm::Whole => {
                let widths = layers.iter().flat_map(pair).collect();
                let mut parts = read(base, widths)?.into_iter();
                layers
                    .iter()
                    .map(|_| {
                        let c = parts.next().expect("two parts per layer");
                        let h = parts.next().expect("two parts per layer");
                        State { c, h }
                    })
                    .collect()
            }
            StateForm::PerLayer(concat) => layers
                .iter()
                .zip(concat)
                .enumerate()
                .map(|(l, (layer, &whole))| {
                    let [u, h] = pair(layer);
                    if whole {
                        let mut parts = read(&format!("{base}/{l}"), vec![u, h])?.into_iter();
                        let c = parts.next().expect("two parts");
                        let h = parts.next().expect("two parts");
                        Ok(State { c, h })
                    } else {
                        let mut c = read(&format!("{base}/{l}/c"), vec![u])?;
                        let mut h = read(&format!("{base}/{l}/h"), vec![h])?;
                        Ok(State {
                            c: c.remove(0),
                            h: h.remove(0),
                        })
                    }
                })
                .collect::<Result<Vec<_>, DialectError>>()?,
        };
        Ok(Some(states))
    }

    /// Put the final states in `out` under `<prefix>state...` as TF's nest
    /// holds them, and the per-layer traces under `<prefix>trace/<layer>/`.
    fn put_states<T: Real>(&self, out: &mut Outputs<T>, run: &RunOutput<T>, prefix: &str) {
        let join = |states: &[&State<T>]| {
            let views: Vec<_> = states
                .iter()
                .flat_map(|st| [st.c.view(), st.h.view()])
                .collect();
            ndarray::concatenate(Axis(1), &views)
                .expect("states of one batch")
                .into_dyn()
        };
        let base = format!("{prefix}state");
        match &self.form {
            StateForm::Whole => {
                let all: Vec<&State<T>> = run.final_state.iter().collect();
                out.insert(base, join(&all));
            }
            StateForm::PerLayer(concat) => {
                for (l, (state, &whole)) in run.final_state.iter().zip(concat).enumerate() {
                    if whole {
                        out.insert(format!("{base}/{l}"), join(&[state]));
                    } else {
                        out.insert(format!("{base}/{l}/c"), state.c.clone().into_dyn());
                        out.insert(format!("{base}/{l}/h"), state.h.clone().into_dyn());
                    }
                }
            }
        }
        for (l, trace) in run.trace.iter().enumerate() {
            out.insert(format!("{prefix}trace/{l}/c"), trace.c.clone().into_dyn());
            out.insert(format!("{prefix}trace/{l}/h"), trace.h.clone().into_dyn());
        }
    }
}

fn stack_to_canonical<T: Real>(
    cells: &[StackLayer],
    input: usize,
    vars: &Tensors,
) -> Result<Vec<Layer<T>>, DialectError> {
    let mut layers = Vec::with_capacity(cells.len());
    let mut size = input;
    for (k, cell) in cells.iter().enumerate() {
        let layer = to_canonical::<T>(cell.cell, size, vars)?;
        if cell.residual && layer.output_size() != size {
            return Err(DialectError::Model(format!(
                "ResidualWrapper around layer {k}: the cell reads {size} features but outputs {}; \
                 input + output needs equal sizes (TensorFlow raises ValueError)",
                layer.output_size()
            )));
        }
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
    let tuple = |t: bool| if t { "" } else { ", state_is_tuple=False" };
    match cell {
        Cell::Basic(c) => format!(
            "BasicLSTMCell({}, forget_bias={}{})",
            c.num_units,
            c.forget_bias,
            tuple(c.state_is_tuple)
        ),
        Cell::Lstm(c) => {
            let mut s = format!(
                "LSTMCell({}, forget_bias={}{}",
                c.num_units,
                c.forget_bias,
                tuple(c.state_is_tuple)
            );
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
        Cell::Dropout(d) => format!(
            "DropoutWrapper({}, keep {}/{}/{})",
            describe(&d.cell),
            d.input_keep_prob,
            d.output_keep_prob,
            d.state_keep_prob
        ),
        Cell::Residual(r) => format!("ResidualWrapper({})", describe(&r.cell)),
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
        Cell::Multi(_) | Cell::Dropout(_) | Cell::Residual(_) => Err(DialectError::Model(
            "a wrapper or MultiRNNCell where a BasicLSTMCell or LSTMCell is expected".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use ndarray::ArrayD;

    fn tensor(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::F32(
            ArrayD::from_shape_vec(
                shape.to_vec(),
                (0..n).map(|i| (i % 7) as f32 * 0.1).collect(),
            )
            .unwrap(),
        )
    }

    fn lstm(units: usize, tuple: bool, kernel: &str) -> serde_json::Value {
        serde_json::json!({
            "class": "LSTMCell", "num_units": units, "forget_bias": 1.0, "activation": "tanh",
            "use_peepholes": false, "cell_clip": null, "num_proj": null, "proj_clip": null,
            "state_is_tuple": tuple,
            "variables": {"kernel": format!("{kernel}/kernel"), "bias": format!("{kernel}/bias")}
        })
    }

    /// Run a `dynamic_rnn` of `cell` on `[2, 3, input]` with `extra` inputs.
    fn run(
        cell: serde_json::Value,
        input: usize,
        vars: &[(&str, &[usize])],
        extra: &[(&str, &[usize])],
    ) -> Result<Outputs<f64>, DialectError> {
        let model: Model = serde_json::from_value(serde_json::json!({
            "api": "dynamic_rnn", "time_major": false, "cell": cell
        }))
        .map_err(|e| DialectError::Model(e.to_string()))?;
        let vars: Tensors = vars
            .iter()
            .map(|(n, s)| (n.to_string(), tensor(s)))
            .collect();
        let mut inputs: Tensors = [("inputs".to_string(), tensor(&[2, 3, input]))].into();
        inputs.extend(extra.iter().map(|(n, s)| (n.to_string(), tensor(s))));
        model.run(&vars, &inputs, &mut super::super::RustLstm)
    }

    const A: [(&str, &[usize]); 2] = [("a/kernel", &[7, 16]), ("a/bias", &[16])];

    #[test]
    fn one_tensor_state_is_c_then_h() {
        let out = run(lstm(4, false, "a"), 3, &A, &[("initial_state/0", &[2, 8])]).unwrap();
        let state = &out["state/0"];
        assert_eq!(state.shape(), [2, 8]);
        let h = &out["outputs"].slice(s![.., 2, ..]);
        assert_eq!(state.slice(s![.., 4..]), h);
    }

    #[test]
    fn one_tensor_state_of_the_wrong_width_is_a_shape_error() {
        let e = run(lstm(4, false, "a"), 3, &A, &[("initial_state/0", &[2, 9])]).unwrap_err();
        assert!(
            matches!(&e, DialectError::Shape { what, expected, .. }
                if what.contains("state_is_tuple=False") && expected == &[2, 8]),
            "{e}"
        );
        // The tuple names are not inputs of a one-tensor state.
        let e = run(
            lstm(4, false, "a"),
            3,
            &A,
            &[
                ("initial_state/0/c", &[2, 4]),
                ("initial_state/0/h", &[2, 4]),
            ],
        )
        .unwrap_err();
        assert!(matches!(e, DialectError::UnknownInput(..)), "{e}");
    }

    #[test]
    fn one_tensor_multi_needs_one_tensor_cells() {
        let cell = serde_json::json!({
            "class": "MultiRNNCell", "state_is_tuple": false,
            "cells": [lstm(4, false, "a"), lstm(4, true, "b")]
        });
        let vars = [
            A[0],
            A[1],
            ("b/kernel", &[8usize, 16][..]),
            ("b/bias", &[16][..]),
        ];
        let e = run(cell, 3, &vars, &[]).unwrap_err();
        assert!(e.to_string().contains("cell 1 keeps a (c, h) tuple"), "{e}");
    }

    #[test]
    fn residual_needs_equal_input_and_output_sizes() {
        let cell = serde_json::json!({"class": "ResidualWrapper", "cell": lstm(4, true, "a")});
        let e = run(cell, 3, &A, &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("reads 3 features but outputs 4; input + output"),
            "{e}"
        );
        let nested = serde_json::json!({"class": "ResidualWrapper", "cell":
            {"class": "ResidualWrapper", "cell": lstm(4, true, "a")}});
        let e = run(nested, 4, &[("a/kernel", &[8, 16]), A[1]], &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("ResidualWrapper around a ResidualWrapper"),
            "{e}"
        );
    }

    #[test]
    fn residual_adds_the_input_to_the_output_not_to_the_state() {
        let vars = [("a/kernel", &[8usize, 16][..]), A[1]];
        let plain = run(lstm(4, true, "a"), 4, &vars, &[]).unwrap();
        let cell = serde_json::json!({"class": "ResidualWrapper", "cell": lstm(4, true, "a")});
        let res = run(cell, 4, &vars, &[("sequence_length", &[2])]);
        // sequence_length must be int32: a float tensor is refused by name.
        assert!(matches!(res, Err(DialectError::DType { .. })));
        let cell = serde_json::json!({"class": "ResidualWrapper", "cell": lstm(4, true, "a")});
        let res = run(cell, 4, &vars, &[]).unwrap();
        assert_eq!(res["state/0/h"], plain["state/0/h"]);
        let x = tensor(&[2, 3, 4]).to_float::<f64>().unwrap();
        assert_eq!(res["outputs"], &x + &plain["outputs"]);
    }

    #[test]
    fn dropout_below_one_is_refused_and_one_is_the_identity() {
        let wrap = |keep: f64| {
            serde_json::json!({"class": "DropoutWrapper", "input_keep_prob": 1.0,
                "output_keep_prob": keep, "state_keep_prob": 1.0, "seed": 7,
                "cell": lstm(4, true, "a")})
        };
        let e = run(wrap(0.5), 3, &A, &[]).unwrap_err();
        assert!(e.to_string().contains("output_keep_prob = 0.5"), "{e}");
        let plain = run(lstm(4, true, "a"), 3, &A, &[]).unwrap();
        assert_eq!(run(wrap(1.0), 3, &A, &[]).unwrap(), plain);
    }
}
