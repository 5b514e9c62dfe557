//! Keras 3 and tf-keras (Keras 2): `LSTM`, `RNN(StackedRNNCells([LSTMCell, ...]))`,
//! `Bidirectional(LSTM)` and `Sequential` stacks of them (docs/semantics.md §6).
//!
//! Quirks handled here:
//! * kernel `[input, 4*units]`, recurrent kernel `[units, 4*units]`, gate
//!   order **i, f, c, o**; nothing is added to the forget gate at run time
//!   (`unit_forget_bias` only initialises the stored bias);
//! * `hard_sigmoid` is `clip(0.2x + 0.5)` in Keras 2 and `relu6(x + 3)/6` in
//!   Keras 3;
//! * `go_backwards` returns the outputs in processing (reversed) order;
//! * masked steps carry the state and repeat the previous output (zeros
//!   with `zero_output_for_mask`, which `Bidirectional` forces on when it
//!   returns sequences);
//! * `Bidirectional` reverses the backward layer's output sequence in full
//!   (not per row), then merges;
//! * `return_state` gives `[output, h, c]`: state order is h before c;
//! * the unrolled loop zeroes masked outputs with the mask in input order
//!   on outputs in processing order (`go_backwards`, §6.7), and Keras 3
//!   drops `Masking`'s mask when `initial_state` is passed (§6.8);
//! * dropout, recurrent_dropout and implementation do not change values
//!   at inference, nor does unroll but for the quirk above.

use ndarray::{s, Array2, Array3, ArrayD, Axis};
use serde::{Deserialize, Deserializer};

use super::{DialectError, Half, Outputs, Tensors};
use crate::lstm::{self, Gate, Layer, MaskedOutput, Real, RunOutput};

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
    /// `keras.layers.Bidirectional(LSTM)`.
    #[serde(rename = "Bidirectional")]
    Bidirectional,
    /// `keras.Sequential([...])` of LSTM / Bidirectional layers.
    #[serde(rename = "Sequential")]
    Sequential,
}

/// How `Bidirectional` merges the two directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// `concatenate([y, y_rev], -1)`.
    Concat,
    /// `y + y_rev`.
    Sum,
    /// `y * y_rev`.
    Mul,
    /// `(y + y_rev) / 2`.
    Ave,
}

/// A `keras.layers.Masking(mask_value)` before the layer.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Masking {
    /// Steps whose features all equal this are masked.
    pub mask_value: f64,
}

/// One direction of a `Bidirectional`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Direction {
    /// Whether this direction's layer runs backwards.
    pub go_backwards: bool,
    /// Its cells (one for an LSTM layer).
    pub cells: Vec<CellConfig>,
}

/// A case's `model` in the `keras` dialect (and a layer of a `Sequential`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Which Keras.
    pub keras: KerasVersion,
    /// Which layer.
    pub layer: LayerKind,
    /// Return every step's output, not only the last.
    #[serde(default)]
    pub return_sequences: bool,
    /// Also return the final states.
    #[serde(default)]
    pub return_state: bool,
    /// Process the sequence last to first, outputs in that order.
    #[serde(default)]
    pub go_backwards: bool,
    /// Masked steps output zeros instead of the previous output.
    #[serde(default)]
    pub zero_output_for_mask: bool,
    /// tf-keras: inputs and sequence outputs are `[time, batch, ...]`.
    #[serde(default)]
    pub time_major: bool,
    /// Called once per `inputs/<k>`, each call from the previous call's state.
    #[serde(default)]
    pub stateful: bool,
    /// No effect on values, but for the masked zero-output quirk
    /// (docs/semantics.md §6.7).
    #[serde(default)]
    pub unroll: bool,
    /// 1 or 2: the same values in float32 and float64; in 16 bits, 1 adds
    /// the bias to `x·W` before `h·U` ([`Model::products`]).
    #[serde(default)]
    pub implementation: Option<u8>,
    /// A `Masking` layer before this one.
    #[serde(default)]
    pub masking: Option<Masking>,
    /// `Bidirectional` merge mode: absent = concat, `null` = none.
    #[serde(default, deserialize_with = "present")]
    pub merge_mode: Option<Option<MergeMode>>,
    /// `Bidirectional`: the forward layer.
    #[serde(default)]
    pub forward: Option<Direction>,
    /// `Bidirectional`: the backward layer.
    #[serde(default)]
    pub backward: Option<Direction>,
    /// `Sequential`: the layers, first to last.
    #[serde(default)]
    pub layers: Option<Vec<Model>>,
    /// `LSTM` / `RNN`: the cells, first to last.
    #[serde(default)]
    pub cells: Vec<CellConfig>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<V>>, D::Error> {
    Option::<V>::deserialize(d).map(Some)
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
    /// Input dropout rate (training only: no effect here).
    #[serde(default)]
    pub dropout: f64,
    /// Recurrent dropout rate (training only: no effect here).
    #[serde(default)]
    pub recurrent_dropout: f64,
    /// Initializer option only: the stored bias already holds it.
    #[serde(default)]
    pub unit_forget_bias: Option<bool>,
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

/// The result of one recurrent layer (one direction) on a batch.
struct LayerRun<T> {
    /// `[batch, time, out]` in processing order.
    run: RunOutput<T>,
}

fn describe_cells(cells: &[CellConfig]) -> String {
    cells
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
        .collect::<Vec<_>>()
        .join(", ")
}

impl Model {
    /// How a 16-bit kernel forms this layer's gate products:
    /// `implementation=1` adds the bias to `x·W` before `h·U` is added.
    pub fn products(&self) -> crate::lstm::reduced::Products {
        use crate::lstm::reduced::Products;
        if self.implementation == Some(1) {
            Products::SeparateBiasFirst
        } else {
            Products::Separate
        }
    }

    /// `keras<major>.<layer>`.
    pub fn api_name(&self) -> String {
        let layer = match self.layer {
            LayerKind::Lstm => "LSTM",
            LayerKind::Rnn => "RNN",
            LayerKind::Bidirectional => "Bidirectional",
            LayerKind::Sequential => "Sequential",
        };
        format!("keras{}.{layer}", self.keras.major())
    }

    /// One line: API, cells and options.
    pub fn summary(&self) -> String {
        let inner = match self.layer {
            LayerKind::Sequential => self
                .layers
                .iter()
                .flatten()
                .map(Model::summary)
                .collect::<Vec<_>>()
                .join("; "),
            LayerKind::Bidirectional => {
                let side = |d: &Option<Direction>| {
                    d.as_ref()
                        .map(|d| describe_cells(&d.cells))
                        .unwrap_or_default()
                };
                let merge = match self.merge_mode {
                    None => "concat".to_string(),
                    Some(None) => "None".to_string(),
                    Some(Some(m)) => format!("{m:?}").to_lowercase(),
                };
                format!(
                    "fw {} bw {} merge_mode={merge}",
                    side(&self.forward),
                    side(&self.backward)
                )
            }
            _ => describe_cells(&self.cells),
        };
        let mut s = format!("{} [{inner}]", self.api_name());
        for (on, name) in [
            (self.return_sequences, "return_sequences"),
            (self.return_state, "return_state"),
            (self.go_backwards, "go_backwards"),
            (self.zero_output_for_mask, "zero_output_for_mask"),
            (self.time_major, "time_major"),
            (self.stateful, "stateful"),
            (self.masking.is_some(), "masking"),
        ] {
            if on {
                s.push(' ');
                s.push_str(name);
            }
        }
        s
    }

    /// The canonical layers of an `LSTM`/`RNN` model (or of one direction
    /// of a `Bidirectional`: `direction` 0 forward, 1 backward), reading
    /// `input` features, in float type `T`.
    ///
    /// # Errors
    /// A [`DialectError`] when a variable is missing or has the wrong shape.
    pub fn canonical_layers<T: Real>(
        &self,
        vars: &Tensors,
        input: usize,
        direction: usize,
    ) -> Result<Vec<Layer<T>>, DialectError> {
        let cells = match (self.layer, direction) {
            (LayerKind::Bidirectional, 0) => &self.direction(&self.forward, "forward")?.cells,
            (LayerKind::Bidirectional, _) => &self.direction(&self.backward, "backward")?.cells,
            _ => &self.cells,
        };
        self.stack(cells, input, vars)
    }

    fn direction<'a>(
        &self,
        d: &'a Option<Direction>,
        name: &str,
    ) -> Result<&'a Direction, DialectError> {
        d.as_ref()
            .ok_or_else(|| DialectError::Model(format!("Bidirectional needs `{name}`")))
    }

    fn stack<T: Real>(
        &self,
        cells: &[CellConfig],
        input: usize,
        vars: &Tensors,
    ) -> Result<Vec<Layer<T>>, DialectError> {
        if cells.is_empty() {
            return Err(DialectError::Model("no cells".into()));
        }
        let mut layers = Vec::with_capacity(cells.len());
        let mut size = input;
        for cell in cells {
            let layer = self.to_canonical::<T>(cell, size, vars)?;
            size = layer.output_size();
            layers.push(layer);
        }
        Ok(layers)
    }

    /// Check the fields fit the layer kind.
    fn validate(&self) -> Result<(), DialectError> {
        let bad = |m: String| Err(DialectError::Model(m));
        match self.layer {
            LayerKind::Lstm if self.cells.len() != 1 => {
                return bad(format!(
                    "LSTM has exactly one cell, got {}",
                    self.cells.len()
                ))
            }
            LayerKind::Lstm | LayerKind::Rnn => {
                if self.forward.is_some()
                    || self.backward.is_some()
                    || self.layers.is_some()
                    || self.merge_mode.is_some()
                {
                    return bad(
                        "forward/backward/merge_mode/layers belong to Bidirectional/Sequential"
                            .into(),
                    );
                }
            }
            LayerKind::Bidirectional => {
                if !self.cells.is_empty() || self.layers.is_some() || self.go_backwards {
                    return bad(
                        "Bidirectional takes forward/backward, not cells/layers/go_backwards"
                            .into(),
                    );
                }
                let fw = self.direction(&self.forward, "forward")?;
                let bw = self.direction(&self.backward, "backward")?;
                if fw.go_backwards == bw.go_backwards {
                    return bad("Bidirectional's two layers must run in opposite directions".into());
                }
            }
            LayerKind::Sequential => {
                let layers = self.layers.as_ref().filter(|l| !l.is_empty());
                let Some(layers) = layers else {
                    return bad("Sequential needs layers".into());
                };
                if !self.cells.is_empty() || self.stateful || self.time_major {
                    return bad("Sequential takes layers only".into());
                }
                for l in layers {
                    if l.layer == LayerKind::Sequential
                        || l.masking.is_some()
                        || l.stateful
                        || l.time_major
                    {
                        return bad("a Sequential layer is an LSTM, RNN or Bidirectional without masking/stateful/time_major".into());
                    }
                    l.validate()?;
                }
            }
        }
        if self.time_major && self.keras == KerasVersion::Keras3 {
            return bad("Keras 3 has no time_major".into());
        }
        if matches!(self.implementation, Some(i) if i != 1 && i != 2) {
            return bad("implementation is 1 or 2".into());
        }
        Ok(())
    }

    /// The number of layers whose states the model takes and returns (per
    /// direction for Bidirectional).
    fn state_layers(&self) -> usize {
        match self.layer {
            LayerKind::Bidirectional => self.forward.as_ref().map_or(0, |d| d.cells.len()),
            _ => self.cells.len(),
        }
    }

    fn input_names(&self) -> Vec<String> {
        let calls: Vec<String> = if self.stateful {
            // Stateful cases name each call's input; a generous bound.
            (0..64)
                .flat_map(|k| [format!("inputs/{k}"), format!("mask/{k}")])
                .collect()
        } else {
            vec!["inputs".into(), "mask".into()]
        };
        let mut names = calls;
        match self.layer {
            LayerKind::Bidirectional => {
                let n = self.state_layers();
                names.extend(keras_state_names("initial_state/fw/", n));
                names.extend(keras_state_names("initial_state/bw/", n));
            }
            LayerKind::Sequential => {}
            _ => names.extend(keras_state_names("initial_state/", self.state_layers())),
        }
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
        runner: &mut dyn super::Runner<T>,
    ) -> Result<Outputs<T>, DialectError> {
        self.validate()?;
        super::check_input_names(inputs, &self.input_names())?;
        let mut out = Outputs::new();
        let mut pass = Pass {
            runner,
            step_prefix: String::new(),
            dependent: false,
        };
        if !self.stateful {
            let (x, mask) = self.call_inputs::<T>(inputs, "inputs", "mask")?;
            let initial = self.initial_states(inputs, x.dim().0)?;
            self.forward_pass(&mut pass, vars, x, mask, initial, &mut out, "", "output")?;
            return Ok(out);
        }
        // Stateful: call k starts from call k-1's final states.
        let calls = (0..)
            .take_while(|k| inputs.contains_key(&format!("inputs/{k}")))
            .count();
        if calls == 0 {
            return Err(DialectError::MissingInput("inputs/0".into()));
        }
        let mut states: Option<Vec<lstm::State<T>>> = None;
        for k in 0..calls {
            let (x, mask) =
                self.call_inputs::<T>(inputs, &format!("inputs/{k}"), &format!("mask/{k}"))?;
            if k == 0 {
                states = self.initial_states(inputs, x.dim().0)?;
            }
            let mut call_out = Outputs::new();
            pass.step_prefix = format!("call/{k}/");
            pass.dependent = k > 0;
            let finals = self.forward_pass(
                &mut pass,
                vars,
                x,
                mask,
                states.take(),
                &mut call_out,
                "",
                "output",
            )?;
            out.insert(
                format!("output/{k}"),
                call_out
                    .remove("output")
                    .expect("forward_pass writes output"),
            );
            if k + 1 == calls {
                for (name, v) in call_out {
                    if name.starts_with("state/") {
                        out.insert(name, v);
                    }
                }
            }
            states = Some(finals);
        }
        Ok(out)
    }

    /// One call's inputs as batch-major `[batch, time, input]` and its mask.
    fn call_inputs<T: Real>(
        &self,
        inputs: &Tensors,
        x_name: &str,
        mask_name: &str,
    ) -> Result<(Array3<T>, Option<Array2<bool>>), DialectError> {
        let x = super::input3::<T>(inputs, x_name)?;
        let x = if self.time_major {
            x.permuted_axes([1, 0, 2]).as_standard_layout().into_owned()
        } else {
            x
        };
        let (batch, time, _) = x.dim();
        let mut mask = match inputs.get(mask_name) {
            None => None,
            Some(crate::tensor::Tensor::Bool(m)) => {
                let m = if self.time_major {
                    m.clone().reversed_axes()
                } else {
                    m.clone()
                };
                if m.shape() != [batch, time] {
                    return Err(DialectError::Shape {
                        what: mask_name.into(),
                        expected: vec![batch, time],
                        got: m.shape().to_vec(),
                    });
                }
                Some(
                    m.into_dimensionality::<ndarray::Ix2>()
                        .expect("shape checked"),
                )
            }
            Some(other) => {
                return Err(DialectError::DType {
                    what: mask_name.into(),
                    expected: "bool",
                    got: other.dtype(),
                })
            }
        };
        if let Some(m) = self.masking {
            let value = T::from_f64_lossy(m.mask_value);
            let derived = Array2::from_shape_fn((batch, time), |(b, t)| {
                x.slice(s![b, t, ..]).iter().any(|&v| v != value)
            });
            if self.keras == KerasVersion::Keras3 && self.has_initial_state(inputs) {
                // Keras 3 quirk (measured, 3.15; docs/semantics.md §6.8):
                // called with initial_state, the layer does not receive the
                // mask Masking attaches; it runs unmasked over Masking's
                // output, which is zero at the masked steps. An explicit
                // mask still applies.
                let mut zeroed = x;
                for ((b, t), keep) in derived.indexed_iter() {
                    if !keep {
                        zeroed.slice_mut(s![b, t, ..]).fill(T::zero());
                    }
                }
                return Ok((zeroed, mask));
            }
            mask = Some(match mask {
                Some(given) => given & derived,
                None => derived,
            });
        }
        Ok((x, mask))
    }

    fn has_initial_state(&self, inputs: &Tensors) -> bool {
        inputs.keys().any(|k| k.starts_with("initial_state/"))
    }

    /// Keras quirk (measured in Keras 3.15 and tf-keras 2.21, the unrolled
    /// loop of `backend.rnn`): with `unroll`, a mask and zero outputs for
    /// masked steps, the loop repeats the previous output at masked steps,
    /// then zeroes `outputs[:, k]` (processing order) where `mask[:, k]`
    /// (input order) is false. Without `go_backwards` the two orders agree
    /// (docs/semantics.md §6.7).
    fn unrolled_zero_output_quirk(&self) -> bool {
        self.unroll
    }

    fn initial_states<T: Real>(
        &self,
        inputs: &Tensors,
        batch: usize,
    ) -> Result<Option<Vec<lstm::State<T>>>, DialectError> {
        let units = |cells: &[CellConfig]| -> Vec<([usize; 2], [usize; 2])> {
            cells
                .iter()
                .map(|c| ([batch, c.units], [batch, c.units]))
                .collect()
        };
        match self.layer {
            LayerKind::Sequential => Ok(None),
            LayerKind::Bidirectional => {
                let fw = super::initial_states::<T>(
                    inputs,
                    "initial_state/fw/",
                    &units(&self.direction(&self.forward, "forward")?.cells),
                )?;
                let bw = super::initial_states::<T>(
                    inputs,
                    "initial_state/bw/",
                    &units(&self.direction(&self.backward, "backward")?.cells),
                )?;
                match (fw, bw) {
                    (None, None) => Ok(None),
                    (Some(mut f), Some(b)) => {
                        f.extend(b);
                        Ok(Some(f))
                    }
                    _ => Err(DialectError::Model(
                        "Bidirectional takes initial states for both directions or neither".into(),
                    )),
                }
            }
            _ => super::initial_states::<T>(inputs, "initial_state/", &units(&self.cells)),
        }
    }

    /// Run this layer on batch-major `x`, put its outputs in `out` under
    /// `prefix`, and return its final states (forward then backward).
    #[allow(clippy::too_many_arguments)]
    fn forward_pass<T: Real>(
        &self,
        pass: &mut Pass<'_, T>,
        vars: &Tensors,
        x: Array3<T>,
        mask: Option<Array2<bool>>,
        initial: Option<Vec<lstm::State<T>>>,
        out: &mut Outputs<T>,
        prefix: &str,
        output_name: &str,
    ) -> Result<Vec<lstm::State<T>>, DialectError> {
        let input = x.dim().2;
        match self.layer {
            LayerKind::Lstm | LayerKind::Rnn => {
                let layers = self.stack::<T>(&self.cells, input, vars)?;
                let masked = if self.zero_output_for_mask {
                    MaskedOutput::Zero
                } else {
                    MaskedOutput::RepeatPrevious
                };
                let r = pass.run(
                    None,
                    layers,
                    &x,
                    mask.as_ref(),
                    initial,
                    self.go_backwards,
                    masked,
                    self.unrolled_zero_output_quirk(),
                    self.products(),
                )?;
                out.insert(
                    format!("{prefix}{output_name}"),
                    self.select_output(&r.run.outputs),
                );
                put_keras_states(out, &r.run, prefix);
                Ok(r.run.final_state)
            }
            LayerKind::Bidirectional => {
                let fw_dir = self.direction(&self.forward, "forward")?;
                let bw_dir = self.direction(&self.backward, "backward")?;
                let fw_layers = self.stack::<T>(&fw_dir.cells, input, vars)?;
                let bw_layers = self.stack::<T>(&bw_dir.cells, input, vars)?;
                let (fw_init, bw_init) = match initial {
                    Some(mut states) => {
                        let b = states.split_off(fw_layers.len());
                        (Some(states), Some(b))
                    }
                    None => (None, None),
                };
                // Bidirectional forces zero_output_for_mask = return_sequences.
                let masked = if self.return_sequences {
                    MaskedOutput::Zero
                } else {
                    MaskedOutput::RepeatPrevious
                };
                let fw = pass.run(
                    Some(Half::Forward),
                    fw_layers,
                    &x,
                    mask.as_ref(),
                    fw_init,
                    fw_dir.go_backwards,
                    masked,
                    self.unrolled_zero_output_quirk(),
                    self.products(),
                )?;
                let bw = pass.run(
                    Some(Half::Backward),
                    bw_layers,
                    &x,
                    mask.as_ref(),
                    bw_init,
                    bw_dir.go_backwards,
                    masked,
                    self.unrolled_zero_output_quirk(),
                    self.products(),
                )?;
                let y = self.select_output(&fw.run.outputs);
                let mut y_rev = self.select_output(&bw.run.outputs);
                if self.return_sequences {
                    let time_axis = if self.time_major { 0 } else { 1 };
                    y_rev.invert_axis(Axis(time_axis));
                    y_rev = y_rev.as_standard_layout().into_owned();
                }
                match self.merge_mode {
                    Some(None) => {
                        out.insert(format!("{prefix}{output_name}/0"), y);
                        out.insert(format!("{prefix}{output_name}/1"), y_rev);
                    }
                    Some(Some(mode)) => {
                        out.insert(format!("{prefix}{output_name}"), merge(mode, y, y_rev)?);
                    }
                    None => {
                        out.insert(
                            format!("{prefix}{output_name}"),
                            merge(MergeMode::Concat, y, y_rev)?,
                        );
                    }
                }
                put_keras_states(out, &fw.run, &format!("{prefix}fw/"));
                put_keras_states(out, &bw.run, &format!("{prefix}bw/"));
                let mut finals = fw.run.final_state;
                finals.extend(bw.run.final_state);
                Ok(finals)
            }
            LayerKind::Sequential => {
                let layers = self.layers.as_ref().expect("validated");
                let mut x = x;
                let mut finals = Vec::new();
                let outer_prefix = pass.step_prefix.clone();
                let outer_dependent = pass.dependent;
                for (k, layer) in layers.iter().enumerate() {
                    let mut inner = Outputs::new();
                    pass.step_prefix = format!("{outer_prefix}layers/{k}/");
                    pass.dependent = outer_dependent || k > 0;
                    finals = layer.forward_pass(
                        pass,
                        vars,
                        x,
                        mask.clone(),
                        None,
                        &mut inner,
                        "",
                        "output",
                    )?;
                    let y = inner.remove("output").ok_or_else(|| {
                        DialectError::Model(format!("layer {k} of a Sequential must merge its outputs (merge_mode not null)"))
                    })?;
                    for (name, v) in inner {
                        if name.contains("trace/") {
                            out.insert(format!("{prefix}layers/{k}/{name}"), v);
                        }
                    }
                    if k + 1 == layers.len() {
                        out.insert(format!("{prefix}{output_name}"), y);
                        break;
                    }
                    if !layer.return_sequences {
                        return Err(DialectError::Model(format!(
                            "layer {k} of a Sequential feeds another recurrent layer: it needs return_sequences"
                        )));
                    }
                    let y = y
                        .into_dimensionality::<ndarray::Ix3>()
                        .expect("sequence output");
                    // A sequence output of a go_backwards layer is in its
                    // processing order, which is what the next layer reads.
                    x = y;
                }
                Ok(finals)
            }
        }
    }

    /// The layer's output from the processing-order outputs `[batch, time, out]`.
    fn select_output<T: Real>(&self, outputs: &Array3<T>) -> ArrayD<T> {
        if self.return_sequences {
            if self.time_major {
                outputs
                    .view()
                    .permuted_axes([1, 0, 2])
                    .as_standard_layout()
                    .into_owned()
                    .into_dyn()
            } else {
                outputs.clone().into_dyn()
            }
        } else {
            let time = outputs.dim().1;
            if time == 0 {
                Array2::zeros((outputs.dim().0, outputs.dim().2)).into_dyn()
            } else {
                outputs.index_axis(Axis(1), time - 1).to_owned().into_dyn()
            }
        }
    }

    fn to_canonical<T: Real>(
        &self,
        cell: &CellConfig,
        input: usize,
        vars: &Tensors,
    ) -> Result<Layer<T>, DialectError> {
        let units = super::size("units", cell.units)?;
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

/// Keras state input names: `<prefix><layer>/h` and `/c`.
fn keras_state_names(prefix: &str, layers: usize) -> Vec<String> {
    super::initial_state_names(prefix, layers)
}

/// Final states and traces under Keras names (the same names as the other
/// dialects: `state/<layer>/h|c`, `trace/<layer>/h|c`).
fn put_keras_states<T: Real>(out: &mut Outputs<T>, run: &RunOutput<T>, prefix: &str) {
    super::put_states(out, run, prefix);
}

/// Runs a model's steps through a [`super::Runner`], naming them.
struct Pass<'a, T> {
    runner: &'a mut dyn super::Runner<T>,
    /// Prefix of step names (`call/1/`, `layers/0/`).
    step_prefix: String,
    /// Whether the steps run now depend on earlier steps' results.
    dependent: bool,
}

impl<T: Real> Pass<'_, T> {
    /// One direction of one recurrent layer.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        half: Option<Half>,
        layers: Vec<Layer<T>>,
        x: &Array3<T>,
        mask: Option<&Array2<bool>>,
        initial: Option<Vec<lstm::State<T>>>,
        go_backwards: bool,
        masked_output: MaskedOutput,
        unrolled: bool,
        products: crate::lstm::reduced::Products,
    ) -> Result<LayerRun<T>, DialectError> {
        // See `Model::unrolled_zero_output_quirk`.
        let quirk = unrolled && masked_output == MaskedOutput::Zero && mask.is_some();
        let mut run = self.runner.run_step(&super::Step {
            name: format!("{}{}", self.step_prefix, Half::step_name(half)),
            layers,
            inputs: x.clone(),
            initial_state: initial,
            mask: mask.cloned(),
            masked_output: if quirk {
                MaskedOutput::RepeatPrevious
            } else {
                masked_output
            },
            reverse: go_backwards,
            bidirectional: half,
            depends_on_earlier_steps: self.dependent,
            products: Some(products),
        })?;
        if let (true, Some(mask)) = (quirk, mask) {
            for ((b, k), keep) in mask.indexed_iter() {
                if !keep {
                    run.outputs.slice_mut(s![b, k, ..]).fill(T::zero());
                }
            }
        }
        Ok(LayerRun { run })
    }
}

fn merge<T: Real>(
    mode: MergeMode,
    y: ArrayD<T>,
    y_rev: ArrayD<T>,
) -> Result<ArrayD<T>, DialectError> {
    let last = Axis(y.ndim() - 1);
    Ok(match mode {
        MergeMode::Concat => ndarray::concatenate(last, &[y.view(), y_rev.view()])
            .map_err(|e| DialectError::Invalid(e.to_string()))?,
        MergeMode::Sum => y + y_rev,
        MergeMode::Mul => y * y_rev,
        MergeMode::Ave => (y + y_rev).mapv(|v| v / T::from_f64_lossy(2.0)),
    })
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
