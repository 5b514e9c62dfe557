//! Weight layouts of other LSTM implementations: canonical layers to and
//! from each target's own arrays, and what each target cannot express
//! (each target's semantics: docs/semantics.md §7-§10).
//!
//! The gate (`crate::conformance::gate`) exports every canonical
//! [`Step`] a dialect asks for in one of these layouts, so that another
//! implementation can load the weights the way it loads its own. The
//! converters are the dialects' own (`tf1::kernel_from_canonical`,
//! `keras::weights_from_canonical`, `block::weights_from_canonical`, the
//! gate-order helpers of this module's parent); the inverse direction
//! ([`import_layer`]) lets a Rust implementation read an export back.
//!
//! | layout | arrays per layer | gate order | forget_bias |
//! |---|---|---|---|
//! | `canonical` | `w_x [I,4U]`, `w_h [H,4U]`, `bias [4U]`, `peephole_i/f/o [U]`, `projection [U,P]` | i, f, g, o | kept or folded |
//! | `tf1` | `kernel [I+H,4U]`, `bias [4U]`, `w_i_diag`/`w_f_diag`/`w_o_diag [U]`, `projection/kernel [U,P]` | i, j, f, o | kept or folded |
//! | `keras` | `kernel [I,4U]`, `recurrent_kernel [U,4U]`, `bias [4U]` | i, f, c, o | folded |
//! | `block` | `w [I+U,4U]`, `b [4U]`, `wci`/`wcf`/`wco [U]` | i, c, f, o | kept or folded |
//! | `block-v2` | as `block` | i, f, c, o | folded |
//! | `onnx`, `onnx-layout1` | `W [1,4U,I]`, `R [1,4U,U]`, `B [1,8U]` = `[Wb, Rb]`, `P [1,3U]` (i, o, f) | i, o, f, c | folded |
//! | `torch` | `weight_ih_l<k> [4U,I]`, `weight_hh_l<k> [4U,H]`, `bias_ih_l<k>`, `bias_hh_l<k> [4U]`, `weight_hr_l<k> [P,U]` | i, f, g, o | folded |
//! | `cudnn` | `w_i..w_o [U,I]`, `r_i..r_o [U,H]`, `b_wi..b_wo`, `b_ri..b_ro [U]` | i, f, c, o | folded |
//!
//! Where a target has two biases (ONNX `Wb`/`Rb`, PyTorch `bias_ih`/`bias_hh`,
//! cuDNN `b_w*`/`b_r*`), each holds **half** of the canonical bias: halving
//! is exact in binary floating point and the halves sum to the bias exactly,
//! and an implementation that reads only one of them fails (the cuDNN double
//! bias trap, docs/semantics.md §9).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ndarray::{concatenate, s, Array1, Array2, ArrayD, Axis, Ix1, Ix2, Ix3};
use serde_json::{json, Value};

use super::{block, keras, tf1, DialectError, Step};
use crate::lstm::{Activation, Gate, Layer, MaskedOutput, Peepholes, Projection, Real};

/// A target weight layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layout {
    /// This crate's own form ([`Layer`]).
    Canonical,
    /// TF1 `LSTMCell`: one kernel over `[x, h]`, i, j, f, o.
    Tf1,
    /// Keras `LSTM`: kernel, recurrent kernel, bias, i, f, c, o.
    Keras,
    /// `LSTMBlockCell` / `BlockLSTM`: i, c, f, o.
    Block,
    /// `BlockLSTMV2`: i, f, c, o, no forget_bias.
    BlockV2,
    /// ONNX `LSTM`, `layout = 0` (time-major).
    Onnx,
    /// ONNX `LSTM`, `layout = 1` (batch-major).
    OnnxLayout1,
    /// PyTorch `nn.LSTM` (`batch_first=True`).
    Torch,
    /// cuDNN's canonical per-gate matrices and double bias.
    Cudnn,
}

/// Whether `forget_bias` stays a separate number or is added into the
/// forget block of the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForgetBias {
    /// A separate option the implementation adds at run time.
    Kept,
    /// Added into the bias (in the export's dtype).
    Folded,
}

impl fmt::Display for ForgetBias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForgetBias::Kept => "kept",
            ForgetBias::Folded => "folded",
        })
    }
}

impl FromStr for ForgetBias {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kept" => Ok(ForgetBias::Kept),
            "folded" => Ok(ForgetBias::Folded),
            _ => Err(format!(
                "unknown forget_bias mode {s:?} (modes: folded, kept)"
            )),
        }
    }
}

impl Layout {
    /// Every layout.
    pub const ALL: [Layout; 9] = [
        Layout::Canonical,
        Layout::Tf1,
        Layout::Keras,
        Layout::Block,
        Layout::BlockV2,
        Layout::Onnx,
        Layout::OnnxLayout1,
        Layout::Torch,
        Layout::Cudnn,
    ];

    /// The name used on the command line and in export files.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Canonical => "canonical",
            Layout::Tf1 => "tf1",
            Layout::Keras => "keras",
            Layout::Block => "block",
            Layout::BlockV2 => "block-v2",
            Layout::Onnx => "onnx",
            Layout::OnnxLayout1 => "onnx-layout1",
            Layout::Torch => "torch",
            Layout::Cudnn => "cudnn",
        }
    }

    /// Whether sequences (`x`, `mask`, `y`, traces) are `[time, batch, ...]`
    /// in this layout (the target's own default), else `[batch, time, ...]`.
    pub fn time_major(self) -> bool {
        matches!(
            self,
            Layout::Block | Layout::BlockV2 | Layout::Onnx | Layout::Cudnn
        )
    }

    /// The target's gate order along its `4*units` axis.
    pub fn gate_order(self) -> [Gate; 4] {
        match self {
            Layout::Canonical | Layout::Keras | Layout::BlockV2 | Layout::Torch | Layout::Cudnn => {
                [Gate::I, Gate::F, Gate::G, Gate::O]
            }
            Layout::Tf1 => tf1::GATE_ORDER,
            Layout::Block => block::ICFO,
            Layout::Onnx | Layout::OnnxLayout1 => ONNX_ORDER,
        }
    }

    /// The target's name of each canonical gate (i, f, g, o).
    pub fn gate_names(self) -> [&'static str; 4] {
        match self {
            Layout::Canonical | Layout::Torch => ["i", "f", "g", "o"],
            Layout::Tf1 => ["i", "f", "j", "o"],
            _ => ["i", "f", "c", "o"],
        }
    }

    /// The target's name of `gate`.
    pub fn gate_name(self, gate: Gate) -> &'static str {
        self.gate_names()[gate as usize]
    }

    /// Whether the target has a run-time `forget_bias` option.
    pub fn has_forget_bias(self) -> bool {
        matches!(self, Layout::Canonical | Layout::Tf1 | Layout::Block)
    }

    /// The `forget_bias` mode used when none is asked for: kept where the
    /// target has the option, folded elsewhere.
    pub fn default_forget_bias(self) -> ForgetBias {
        if self.has_forget_bias() {
            ForgetBias::Kept
        } else {
            ForgetBias::Folded
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Layout::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Layout::ALL.iter().map(|l| l.name()).collect();
                format!("unknown layout {s:?} (layouts: {})", names.join(", "))
            })
    }
}

/// ONNX gate order: i, o, f, c (onnx `docs/Operators.md`, LSTM).
pub const ONNX_ORDER: [Gate; 4] = [Gate::I, Gate::O, Gate::F, Gate::G];

/// One layer's arrays and options in a target layout.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerExport<T> {
    /// Layout-specific options (units, activations, clip, ...), as JSON.
    pub options: Value,
    /// Arrays by the target's own name, in a fixed order.
    pub arrays: Vec<(String, ArrayD<T>)>,
}

// ---------------------------------------------------------------------------
// What a layout can express.

/// Why a layout cannot express a step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CannotExpress {
    /// The step reads an earlier step's results.
    #[error(
        "its inputs or initial state are computed from an earlier step's results \
         (a Keras Sequential layer or a stateful call): it cannot be run on its own"
    )]
    DependsOnEarlierSteps,
    /// `forget_bias` kept apart, in a layout without one.
    #[error("layout {0} has no forget_bias option")]
    NoForgetBias(Layout),
    /// A layer option the layout lacks.
    #[error("layer {layer}: {reason}")]
    Layer {
        /// The layer in the stack.
        layer: usize,
        /// The option and what the layout has instead.
        reason: String,
    },
    /// A mask or masking rule the layout lacks.
    #[error("{0}")]
    Masking(String),
    /// The reverse direction, in a layout that runs forward only.
    #[error("{0} run forward only")]
    ForwardOnly(&'static str),
}

/// Why `layout` cannot express `step`, or `Ok` when it can.
///
/// # Errors
/// A [`CannotExpress`] naming the layer and the option.
pub fn check_step<T: Real>(
    layout: Layout,
    step: &Step<T>,
    forget_bias: ForgetBias,
) -> Result<(), CannotExpress> {
    if step.depends_on_earlier_steps {
        return Err(CannotExpress::DependsOnEarlierSteps);
    }
    if forget_bias == ForgetBias::Kept && !layout.has_forget_bias() {
        return Err(CannotExpress::NoForgetBias(layout));
    }
    for (k, layer) in step.layers.iter().enumerate() {
        check_layer(layout, layer).map_err(|reason| CannotExpress::Layer { layer: k, reason })?;
    }
    if let Some(mask) = &step.mask {
        let lengths_only = matches!(
            layout,
            Layout::Onnx | Layout::OnnxLayout1 | Layout::Torch | Layout::Cudnn
        );
        if lengths_only && mask_lengths(mask).is_none() {
            return Err(CannotExpress::Masking(format!(
                "the mask is not a right-padded length mask; {layout} takes per-row sequence lengths only"
            )));
        }
        if matches!(layout, Layout::Block | Layout::BlockV2) {
            return Err(CannotExpress::Masking(
                "the block ops have no per-row lengths or mask (seq_len_max is one number for the batch)"
                    .into(),
            ));
        }
        // Keras masking repeats the previous output at a masked step; the
        // length-only layouts write zeros there. An adapter would have to
        // rewrite the runtime's outputs to match, which would no longer
        // judge the runtime: such steps are not exported.
        if step.masked_output == MaskedOutput::RepeatPrevious && lengths_only {
            return Err(CannotExpress::Masking(format!(
                "masked steps repeat the previous output here; {} writes zeros past a row's length",
                match layout {
                    Layout::Torch => "PyTorch (pad_packed_sequence)",
                    Layout::Cudnn => "cuDNN (docs/semantics.md §9)",
                    _ => "the ONNX LSTM (its Y past sequence_lens)",
                }
            )));
        }
    }
    if step.reverse && matches!(layout, Layout::Block | Layout::BlockV2) {
        return Err(CannotExpress::ForwardOnly("the block ops"));
    }
    Ok(())
}

fn check_layer<T: Real>(layout: Layout, layer: &Layer<T>) -> Result<(), String> {
    let acts = (
        layer.gate_activation,
        layer.cell_activation,
        layer.output_activation,
    );
    let standard = acts == (Activation::Sigmoid, Activation::Tanh, Activation::Tanh);
    let non_standard = || {
        format!(
            "activations {}/{}/{} (gate/cell/output); {layout} has sigmoid/tanh/tanh only",
            activation_name(acts.0),
            activation_name(acts.1),
            activation_name(acts.2)
        )
    };
    let no = |what: &str| Err(format!("{what}; {layout} has none"));
    match layout {
        Layout::Canonical => Ok(()),
        Layout::Tf1 => {
            if layer.gate_activation != Activation::Sigmoid
                || layer.cell_activation != layer.output_activation
                || !matches!(
                    layer.cell_activation,
                    Activation::Tanh | Activation::Sigmoid | Activation::Relu | Activation::Linear
                )
            {
                return Err(format!(
                    "activations {}/{}/{}; TF1 cells have a sigmoid gate and one activation (tanh, sigmoid, relu or linear) for both the cell and the output",
                    activation_name(acts.0),
                    activation_name(acts.1),
                    activation_name(acts.2)
                ));
            }
            Ok(())
        }
        Layout::Keras => {
            if layer.peepholes.is_some() {
                return no("peepholes");
            }
            if layer.cell_clip.is_some() {
                return no("cell_clip");
            }
            if layer.projection.is_some() {
                return no("a projection (num_proj)");
            }
            if layer.cell_activation != layer.output_activation {
                return Err(
                    "different cell and output activations; Keras has one `activation` for both"
                        .into(),
                );
            }
            let hard = [layer.gate_activation, layer.cell_activation];
            if hard.contains(&Activation::HardSigmoidLinear)
                && hard.contains(&Activation::HardSigmoidRelu6)
            {
                return Err("the hard_sigmoid of both Keras 2 and Keras 3".into());
            }
            Ok(())
        }
        Layout::Block | Layout::BlockV2 => {
            if !standard {
                return Err(non_standard());
            }
            if layer.projection.is_some() {
                return no("a projection (num_proj)");
            }
            if let Some(clip) = layer.cell_clip {
                if clip <= T::zero() {
                    return Err(format!(
                        "cell_clip = {clip} clips to 0 here; the block ops take cell_clip <= 0 as no clipping"
                    ));
                }
            }
            Ok(())
        }
        Layout::Onnx | Layout::OnnxLayout1 => {
            if layer.cell_clip.is_some() {
                return Err(
                    "cell_clip (on the cell state); ONNX `clip` bounds the gate pre-activations, not c"
                        .into(),
                );
            }
            if layer.projection.is_some() {
                return no("a projection (num_proj)");
            }
            Ok(())
        }
        Layout::Torch => {
            if !standard {
                return Err(non_standard());
            }
            if layer.peepholes.is_some() {
                return no("peepholes");
            }
            if layer.cell_clip.is_some() {
                return no("cell_clip");
            }
            if layer.projection.as_ref().is_some_and(|p| p.clip.is_some()) {
                return Err("proj_clip; PyTorch's proj_size has no clip".into());
            }
            Ok(())
        }
        Layout::Cudnn => {
            if !standard {
                return Err(non_standard());
            }
            if layer.peepholes.is_some() {
                return no("peepholes");
            }
            if layer.cell_clip.is_some() {
                return no("cell_clip");
            }
            if layer.projection.is_some() {
                return Err("a projection; this export's cuDNN layout has none".into());
            }
            Ok(())
        }
    }
}

/// Per-row lengths when `mask` (`[batch, time]`, input time order) is a
/// right-padded length mask: row `b` is true exactly for `t < len[b]`.
pub fn mask_lengths(mask: &Array2<bool>) -> Option<Vec<usize>> {
    mask.outer_iter()
        .map(|row| {
            let len = row.iter().take_while(|&&m| m).count();
            row.iter().skip(len).all(|&m| !m).then_some(len)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Activations.

/// This crate's name of an activation, as the `canonical` layout writes it.
pub fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
        Activation::Relu => "relu",
        Activation::Linear => "linear",
        Activation::HardSigmoidLinear => "hard_sigmoid_keras2",
        Activation::HardSigmoidRelu6 => "hard_sigmoid_keras3",
    }
}

fn activation_from_name(name: &str) -> Result<Activation, DialectError> {
    [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::Linear,
        Activation::HardSigmoidLinear,
        Activation::HardSigmoidRelu6,
    ]
    .into_iter()
    .find(|a| activation_name(*a) == name)
    .ok_or_else(|| DialectError::Model(format!("unknown activation {name:?}")))
}

/// The Keras 3 `hard_sigmoid` as ONNX `HardSigmoid(alpha, beta)`:
/// `relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)`.
pub const KERAS3_HARD_SIGMOID_ALPHA: f64 = 1.0 / 6.0;

/// An activation as ONNX spells it: `{"name": "HardSigmoid", "alpha": a, "beta": b}`.
pub fn onnx_activation(a: Activation) -> Value {
    match a {
        Activation::Sigmoid => json!({"name": "Sigmoid"}),
        Activation::Tanh => json!({"name": "Tanh"}),
        Activation::Relu => json!({"name": "Relu"}),
        Activation::Linear => json!({"name": "Affine", "alpha": 1.0, "beta": 0.0}),
        Activation::HardSigmoidLinear => json!({"name": "HardSigmoid", "alpha": 0.2, "beta": 0.5}),
        Activation::HardSigmoidRelu6 => {
            json!({"name": "HardSigmoid", "alpha": KERAS3_HARD_SIGMOID_ALPHA, "beta": 0.5})
        }
    }
}

fn onnx_activation_back(v: &Value) -> Result<Activation, DialectError> {
    let bad = || DialectError::Model(format!("ONNX activation {v} has no canonical equivalent"));
    let name = v.get("name").and_then(Value::as_str).ok_or_else(bad)?;
    let alpha = v.get("alpha").and_then(Value::as_f64);
    let beta = v.get("beta").and_then(Value::as_f64);
    let near = |x: Option<f64>, y: f64| x.is_some_and(|x| (x - y).abs() < 1e-12);
    Ok(match name {
        "Sigmoid" => Activation::Sigmoid,
        "Tanh" => Activation::Tanh,
        "Relu" => Activation::Relu,
        "Affine" if near(alpha, 1.0) && near(beta, 0.0) => Activation::Linear,
        "HardSigmoid" if near(alpha, 0.2) && near(beta, 0.5) => Activation::HardSigmoidLinear,
        "HardSigmoid" if near(alpha, KERAS3_HARD_SIGMOID_ALPHA) && near(beta, 0.5) => {
            Activation::HardSigmoidRelu6
        }
        _ => return Err(bad()),
    })
}

/// A Keras activation name and which Keras's `hard_sigmoid` it is.
fn keras_activation(a: Activation) -> (&'static str, Option<&'static str>) {
    match a {
        Activation::HardSigmoidLinear => ("hard_sigmoid", Some("2")),
        Activation::HardSigmoidRelu6 => ("hard_sigmoid", Some("3")),
        other => (activation_name(other), None),
    }
}

// ---------------------------------------------------------------------------
// Export.

/// `layer` with `forget_bias` added into the forget block of the bias (in
/// `T`) when `mode` is [`ForgetBias::Folded`].
pub fn fold_forget_bias<T: Real>(layer: &Layer<T>, mode: ForgetBias) -> Layer<T> {
    let mut layer = layer.clone();
    if mode == ForgetBias::Folded && layer.forget_bias != T::zero() {
        let fb = layer.forget_bias;
        let units = layer.units();
        layer
            .bias
            .slice_mut(s![Gate::F.columns(units)])
            .mapv_inplace(|b| b + fb);
        layer.forget_bias = T::zero();
    }
    layer
}

fn half<T: Real>(a: &Array1<T>) -> Array1<T> {
    let h = T::from_f64_lossy(0.5);
    a.mapv(|v| v * h)
}

fn clip_json<T: Real>(v: Option<T>) -> Value {
    v.map_or(Value::Null, |c| json!(c.widen()))
}

/// `layer` (layer number `index` of its stack) in `layout`. Call
/// [`check_step`] first: options the layout cannot express are dropped.
pub fn export_layer<T: Real>(
    layout: Layout,
    layer: &Layer<T>,
    index: usize,
    forget_bias: ForgetBias,
) -> LayerExport<T> {
    let mode = if layout.has_forget_bias() {
        forget_bias
    } else {
        ForgetBias::Folded
    };
    let layer = fold_forget_bias(layer, mode);
    let units = layer.units();
    let mut arrays: Vec<(String, ArrayD<T>)> = Vec::new();
    let mut put = |name: &str, a: ArrayD<T>| arrays.push((name.to_string(), a));
    let options = match layout {
        Layout::Canonical => {
            put("w_x", layer.w_x.clone().into_dyn());
            put("w_h", layer.w_h.clone().into_dyn());
            put("bias", layer.bias.clone().into_dyn());
            if let Some(p) = &layer.peepholes {
                put("peephole_i", p.input.clone().into_dyn());
                put("peephole_f", p.forget.clone().into_dyn());
                put("peephole_o", p.output.clone().into_dyn());
            }
            if let Some(p) = &layer.projection {
                put("projection", p.kernel.clone().into_dyn());
            }
            json!({
                "units": units,
                "forget_bias": layer.forget_bias.widen(),
                "cell_clip": clip_json(layer.cell_clip),
                "proj_clip": clip_json(layer.projection.as_ref().and_then(|p| p.clip)),
                "gate_activation": activation_name(layer.gate_activation),
                "cell_activation": activation_name(layer.cell_activation),
                "output_activation": activation_name(layer.output_activation),
            })
        }
        Layout::Tf1 => {
            let (kernel, bias) = tf1::kernel_from_canonical(&layer);
            put("kernel", kernel.into_dyn());
            put("bias", bias.into_dyn());
            if let Some(p) = &layer.peepholes {
                put("w_i_diag", p.input.clone().into_dyn());
                put("w_f_diag", p.forget.clone().into_dyn());
                put("w_o_diag", p.output.clone().into_dyn());
            }
            if let Some(p) = &layer.projection {
                put("projection/kernel", p.kernel.clone().into_dyn());
            }
            json!({
                "num_units": units,
                "forget_bias": layer.forget_bias.widen(),
                "activation": activation_name(layer.cell_activation),
                "use_peepholes": layer.peepholes.is_some(),
                "cell_clip": clip_json(layer.cell_clip),
                "num_proj": layer.projection.as_ref().map(|p| p.kernel.ncols()),
                "proj_clip": clip_json(layer.projection.as_ref().and_then(|p| p.clip)),
            })
        }
        Layout::Keras => {
            let mut plain = layer.clone();
            plain.peepholes = None;
            plain.cell_clip = None;
            plain.projection = None;
            let w = keras::weights_from_canonical(&plain).expect("checked: Keras can express it");
            put("kernel", w.kernel.into_dyn());
            put("recurrent_kernel", w.recurrent_kernel.into_dyn());
            put("bias", w.bias.into_dyn());
            let (activation, k1) = keras_activation(layer.cell_activation);
            let (recurrent_activation, k2) = keras_activation(layer.gate_activation);
            json!({
                "units": units,
                "activation": activation,
                "recurrent_activation": recurrent_activation,
                "hard_sigmoid": k1.or(k2).map(|k| format!("keras{k}")),
            })
        }
        Layout::Block | Layout::BlockV2 => {
            let (w, b) = block::weights_from_canonical(&layer, layout.gate_order());
            put("w", w.into_dyn());
            put("b", b.into_dyn());
            let zeros = || Array1::<T>::zeros(units);
            let p = layer.peepholes.clone().unwrap_or_else(|| Peepholes {
                input: zeros(),
                forget: zeros(),
                output: zeros(),
            });
            put("wci", p.input.into_dyn());
            put("wcf", p.forget.into_dyn());
            put("wco", p.output.into_dyn());
            let clip = layer.cell_clip.map_or(0.0, |c| c.widen());
            if layout == Layout::Block {
                json!({"forget_bias": layer.forget_bias.widen(), "cell_clip": clip, "use_peephole": layer.peepholes.is_some()})
            } else {
                json!({"cell_clip": clip, "use_peephole": layer.peepholes.is_some()})
            }
        }
        Layout::Onnx | Layout::OnnxLayout1 => {
            let w = super::blocks_from_canonical(layer.w_x.view(), ONNX_ORDER);
            let r = super::blocks_from_canonical(layer.w_h.view(), ONNX_ORDER);
            let b = super::vector_from_canonical(layer.bias.view(), ONNX_ORDER);
            let halves = half(&b);
            put(
                "W",
                w.reversed_axes()
                    .insert_axis(Axis(0))
                    .as_standard_layout()
                    .into_owned()
                    .into_dyn(),
            );
            put(
                "R",
                r.reversed_axes()
                    .insert_axis(Axis(0))
                    .as_standard_layout()
                    .into_owned()
                    .into_dyn(),
            );
            let bb = concatenate(Axis(0), &[halves.view(), halves.view()]).expect("vectors");
            put("B", bb.insert_axis(Axis(0)).into_dyn());
            if let Some(p) = &layer.peepholes {
                let pp = concatenate(Axis(0), &[p.input.view(), p.output.view(), p.forget.view()])
                    .expect("vectors");
                put("P", pp.insert_axis(Axis(0)).into_dyn());
            }
            json!({
                "hidden_size": units,
                "activations": [
                    onnx_activation(layer.gate_activation),
                    onnx_activation(layer.cell_activation),
                    onnx_activation(layer.output_activation),
                ],
                "layout": if layout == Layout::Onnx { 0 } else { 1 },
            })
        }
        Layout::Torch => {
            let w = super::blocks_from_canonical(layer.w_x.view(), layout.gate_order());
            let r = super::blocks_from_canonical(layer.w_h.view(), layout.gate_order());
            let b = half(&super::vector_from_canonical(
                layer.bias.view(),
                layout.gate_order(),
            ));
            put(
                &format!("weight_ih_l{index}"),
                w.reversed_axes()
                    .as_standard_layout()
                    .into_owned()
                    .into_dyn(),
            );
            put(
                &format!("weight_hh_l{index}"),
                r.reversed_axes()
                    .as_standard_layout()
                    .into_owned()
                    .into_dyn(),
            );
            put(&format!("bias_ih_l{index}"), b.clone().into_dyn());
            put(&format!("bias_hh_l{index}"), b.into_dyn());
            if let Some(p) = &layer.projection {
                put(
                    &format!("weight_hr_l{index}"),
                    p.kernel.t().as_standard_layout().into_owned().into_dyn(),
                );
            }
            json!({
                "hidden_size": units,
                "proj_size": layer.projection.as_ref().map_or(0, |p| p.kernel.ncols()),
            })
        }
        Layout::Cudnn => {
            let b = half(&layer.bias);
            for (gate, name) in Gate::ALL.iter().zip(["i", "f", "c", "o"]) {
                let cols = gate.columns(units);
                put(
                    &format!("w_{name}"),
                    layer
                        .w_x
                        .slice(s![.., cols.clone()])
                        .t()
                        .as_standard_layout()
                        .into_owned()
                        .into_dyn(),
                );
            }
            for (gate, name) in Gate::ALL.iter().zip(["i", "f", "c", "o"]) {
                let cols = gate.columns(units);
                put(
                    &format!("r_{name}"),
                    layer
                        .w_h
                        .slice(s![.., cols.clone()])
                        .t()
                        .as_standard_layout()
                        .into_owned()
                        .into_dyn(),
                );
            }
            for prefix in ["b_w", "b_r"] {
                for (gate, name) in Gate::ALL.iter().zip(["i", "f", "c", "o"]) {
                    put(
                        &format!("{prefix}{name}"),
                        b.slice(s![gate.columns(units)]).to_owned().into_dyn(),
                    );
                }
            }
            json!({"hidden_size": units})
        }
    };
    LayerExport { options, arrays }
}

// ---------------------------------------------------------------------------
// Import: a layer in a target layout back to canonical.

/// Arrays by name, as [`import_layer`] reads them.
pub type Arrays<T> = BTreeMap<String, ArrayD<T>>;

fn get<'a, T>(arrays: &'a Arrays<T>, name: &str) -> Result<&'a ArrayD<T>, DialectError> {
    arrays
        .get(name)
        .ok_or_else(|| DialectError::MissingVariable(name.to_string()))
}

fn mat<T: Real>(arrays: &Arrays<T>, name: &str) -> Result<Array2<T>, DialectError> {
    let a = get(arrays, name)?;
    a.clone()
        .into_dimensionality::<Ix2>()
        .map_err(|_| DialectError::Shape {
            what: format!("{name} (rank 2)"),
            expected: vec![],
            got: a.shape().to_vec(),
        })
}

fn vec1<T: Real>(arrays: &Arrays<T>, name: &str) -> Result<Array1<T>, DialectError> {
    let a = get(arrays, name)?;
    a.clone()
        .into_dimensionality::<Ix1>()
        .map_err(|_| DialectError::Shape {
            what: format!("{name} (rank 1)"),
            expected: vec![],
            got: a.shape().to_vec(),
        })
}

/// Peepholes from the three named vectors (input, forget, output gate).
fn peepholes<T: Real>(
    arrays: &Arrays<T>,
    [i, f, o]: [&str; 3],
) -> Result<Peepholes<T>, DialectError> {
    Ok(Peepholes {
        input: vec1(arrays, i)?,
        forget: vec1(arrays, f)?,
        output: vec1(arrays, o)?,
    })
}

/// The projection from matrix `name`, if present, with `options.proj_clip`.
fn projection<T: Real>(
    arrays: &Arrays<T>,
    name: &str,
    options: &Value,
) -> Result<Option<Projection<T>>, DialectError> {
    if !arrays.contains_key(name) {
        return Ok(None);
    }
    Ok(Some(Projection {
        kernel: mat(arrays, name)?,
        clip: opt_f64(options, "proj_clip").map(T::from_f64_lossy),
    }))
}

/// The first axis of a `[1, ...]` array dropped (ONNX's `num_directions`).
fn squeeze0<T: Real, D: ndarray::Dimension>(
    arrays: &Arrays<T>,
    name: &str,
) -> Result<ndarray::Array<T, D>, DialectError> {
    let a = get(arrays, name)?;
    let bad = || DialectError::Shape {
        what: format!("{name} ([1, ...], one direction)"),
        expected: vec![],
        got: a.shape().to_vec(),
    };
    if a.shape().first() != Some(&1) {
        return Err(bad());
    }
    a.index_axis(Axis(0), 0)
        .to_owned()
        .into_dimensionality::<D>()
        .map_err(|_| bad())
}

fn opt_f64(options: &Value, key: &str) -> Option<f64> {
    options.get(key).and_then(Value::as_f64)
}

fn opt_str<'a>(options: &'a Value, key: &str) -> Result<&'a str, DialectError> {
    options
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| DialectError::Model(format!("options.{key} is missing or not a string")))
}

/// A layer exported in `layout` (`options` and `arrays` as
/// [`export_layer`] writes them) back in canonical form. `index` is the
/// layer's number in its stack (PyTorch names carry it).
///
/// # Errors
/// A [`DialectError`] when an array is missing or an option does not parse.
pub fn import_layer<T: Real>(
    layout: Layout,
    options: &Value,
    arrays: &Arrays<T>,
    index: usize,
) -> Result<Layer<T>, DialectError> {
    let f = T::from_f64_lossy;
    let mut layer = match layout {
        Layout::Canonical => {
            let mut l = Layer::new(
                mat(arrays, "w_x")?,
                mat(arrays, "w_h")?,
                vec1(arrays, "bias")?,
            );
            l.forget_bias = f(opt_f64(options, "forget_bias").unwrap_or(0.0));
            l.cell_clip = opt_f64(options, "cell_clip").map(f);
            l.gate_activation = activation_from_name(opt_str(options, "gate_activation")?)?;
            l.cell_activation = activation_from_name(opt_str(options, "cell_activation")?)?;
            l.output_activation = activation_from_name(opt_str(options, "output_activation")?)?;
            if arrays.contains_key("peephole_i") {
                l.peepholes = Some(peepholes(
                    arrays,
                    ["peephole_i", "peephole_f", "peephole_o"],
                )?);
            }
            l.projection = projection(arrays, "projection", options)?;
            l
        }
        Layout::Tf1 => {
            let kernel = mat(arrays, "kernel")?;
            let bias = vec1(arrays, "bias")?;
            let h_depth = options
                .get("num_proj")
                .and_then(Value::as_u64)
                .map_or(bias.len() / 4, |p| p as usize);
            let input = kernel.nrows().checked_sub(h_depth).ok_or_else(|| {
                DialectError::Model("tf1 kernel has fewer rows than h_depth".into())
            })?;
            let (w_x, w_h, bias) = tf1::kernel_to_canonical(&kernel, &bias, input);
            let mut l = Layer::new(w_x, w_h, bias);
            l.forget_bias = f(opt_f64(options, "forget_bias").unwrap_or(0.0));
            l.cell_clip = opt_f64(options, "cell_clip").map(f);
            let act = activation_from_name(opt_str(options, "activation")?)?;
            l.cell_activation = act;
            l.output_activation = act;
            if options.get("use_peepholes").and_then(Value::as_bool) == Some(true) {
                l.peepholes = Some(peepholes(arrays, ["w_i_diag", "w_f_diag", "w_o_diag"])?);
            }
            l.projection = projection(arrays, "projection/kernel", options)?;
            l
        }
        Layout::Keras => {
            let order = layout.gate_order();
            let mut l = Layer::new(
                super::blocks_to_canonical(mat(arrays, "kernel")?.view(), order),
                super::blocks_to_canonical(mat(arrays, "recurrent_kernel")?.view(), order),
                super::vector_to_canonical(vec1(arrays, "bias")?.view(), order),
            );
            let keras = match options.get("hard_sigmoid").and_then(Value::as_str) {
                Some("keras2") => Some(2),
                Some("keras3") => Some(3),
                _ => Some(3),
            };
            l.gate_activation =
                super::activation(opt_str(options, "recurrent_activation")?, keras)?;
            l.cell_activation = super::activation(opt_str(options, "activation")?, keras)?;
            l.output_activation = l.cell_activation;
            l
        }
        Layout::Block | Layout::BlockV2 => {
            let w = mat(arrays, "w")?;
            let b = vec1(arrays, "b")?;
            let units = b.len() / 4;
            let input = w
                .nrows()
                .checked_sub(units)
                .ok_or_else(|| DialectError::Model("block w has fewer rows than units".into()))?;
            let order = layout.gate_order();
            let mut l = Layer::new(
                super::blocks_to_canonical(w.slice(s![..input, ..]), order),
                super::blocks_to_canonical(w.slice(s![input.., ..]), order),
                super::vector_to_canonical(b.view(), order),
            );
            l.forget_bias = f(opt_f64(options, "forget_bias").unwrap_or(0.0));
            l.cell_clip = opt_f64(options, "cell_clip").filter(|&c| c > 0.0).map(f);
            if options.get("use_peephole").and_then(Value::as_bool) == Some(true) {
                l.peepholes = Some(peepholes(arrays, ["wci", "wcf", "wco"])?);
            }
            l
        }
        Layout::Onnx | Layout::OnnxLayout1 => {
            let w: Array2<T> = squeeze0(arrays, "W")?;
            let r: Array2<T> = squeeze0(arrays, "R")?;
            let b: Array1<T> = squeeze0(arrays, "B")?;
            let units = w.nrows() / 4;
            if b.len() != 8 * units {
                return Err(DialectError::Shape {
                    what: "B".into(),
                    expected: vec![1, 8 * units],
                    got: get(arrays, "B")?.shape().to_vec(),
                });
            }
            let bias = &b.slice(s![..4 * units]) + &b.slice(s![4 * units..]);
            let mut l = Layer::new(
                super::blocks_to_canonical(w.reversed_axes().view(), ONNX_ORDER),
                super::blocks_to_canonical(r.reversed_axes().view(), ONNX_ORDER),
                super::vector_to_canonical(bias.view(), ONNX_ORDER),
            );
            if arrays.contains_key("P") {
                let p: Array1<T> = squeeze0(arrays, "P")?;
                l.peepholes = Some(Peepholes {
                    input: p.slice(s![..units]).to_owned(),
                    output: p.slice(s![units..2 * units]).to_owned(),
                    forget: p.slice(s![2 * units..]).to_owned(),
                });
            }
            let acts = options
                .get("activations")
                .and_then(Value::as_array)
                .filter(|a| a.len() == 3)
                .ok_or_else(|| {
                    DialectError::Model("options.activations: expected 3 entries".into())
                })?;
            l.gate_activation = onnx_activation_back(&acts[0])?;
            l.cell_activation = onnx_activation_back(&acts[1])?;
            l.output_activation = onnx_activation_back(&acts[2])?;
            l
        }
        Layout::Torch => {
            let order = layout.gate_order();
            let w = mat(arrays, &format!("weight_ih_l{index}"))?;
            let r = mat(arrays, &format!("weight_hh_l{index}"))?;
            let bias = vec1(arrays, &format!("bias_ih_l{index}"))?
                + vec1(arrays, &format!("bias_hh_l{index}"))?;
            let mut l = Layer::new(
                super::blocks_to_canonical(w.reversed_axes().view(), order),
                super::blocks_to_canonical(r.reversed_axes().view(), order),
                super::vector_to_canonical(bias.view(), order),
            );
            let hr = format!("weight_hr_l{index}");
            if arrays.contains_key(&hr) {
                l.projection = Some(Projection {
                    kernel: mat(arrays, &hr)?
                        .reversed_axes()
                        .as_standard_layout()
                        .into_owned(),
                    clip: None,
                });
            }
            l
        }
        Layout::Cudnn => {
            let names = ["i", "f", "c", "o"];
            let blocks = |prefix: &str| -> Result<Array2<T>, DialectError> {
                let parts = names
                    .iter()
                    .map(|n| mat(arrays, &format!("{prefix}{n}")).map(|m| m.reversed_axes()))
                    .collect::<Result<Vec<_>, _>>()?;
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                concatenate(Axis(1), &views)
                    .map_err(|e| DialectError::Model(format!("{prefix}*: {e}")))
            };
            let biases = |prefix: &str| -> Result<Array1<T>, DialectError> {
                let parts = names
                    .iter()
                    .map(|n| vec1(arrays, &format!("{prefix}{n}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                concatenate(Axis(0), &views)
                    .map_err(|e| DialectError::Model(format!("{prefix}*: {e}")))
            };
            Layer::new(
                blocks("w_")?.as_standard_layout().into_owned(),
                blocks("r_")?.as_standard_layout().into_owned(),
                biases("b_w")? + biases("b_r")?,
            )
        }
    };
    layer.w_x = layer.w_x.as_standard_layout().into_owned();
    layer.w_h = layer.w_h.as_standard_layout().into_owned();
    layer
        .validate()
        .map_err(|e| DialectError::Invalid(format!("layer {index}: {e}")))?;
    Ok(layer)
}

/// A `[time, batch, ...]` array as `[batch, time, ...]` or back (the same
/// swap of the first two axes).
pub fn swap_batch_time<T: Clone>(a: &ArrayD<T>) -> ArrayD<T> {
    let mut v = a.view();
    v.swap_axes(0, 1);
    v.as_standard_layout().into_owned()
}

/// A rank-3 array in a layout's sequence order from batch-major.
pub fn to_layout_order<T: Clone>(layout: Layout, a: ndarray::ArrayView3<T>) -> ArrayD<T> {
    let a = a.to_owned().into_dyn();
    if layout.time_major() {
        swap_batch_time(&a)
    } else {
        a
    }
}

/// A rank-3 array in a layout's sequence order as batch-major.
///
/// # Errors
/// When the array is not of rank 3.
pub fn from_layout_order<T: Clone>(
    layout: Layout,
    a: &ArrayD<T>,
) -> Result<ndarray::Array3<T>, DialectError> {
    let a = if layout.time_major() {
        swap_batch_time(a)
    } else {
        a.clone()
    };
    let got = a.shape().to_vec();
    a.into_dimensionality::<Ix3>()
        .map_err(|_| DialectError::Shape {
            what: "sequence (rank 3)".into(),
            expected: vec![],
            got,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn layer(input: usize, units: usize, seed: f64) -> Layer<f64> {
        let v = |n: usize, k: f64| Array::from_shape_fn(n, |i| ((i as f64 + k) * 0.37).sin());
        let mut l = Layer::new(
            v(input * 4 * units, seed)
                .into_shape_with_order((input, 4 * units))
                .unwrap(),
            v(units * 4 * units, seed + 1.0)
                .into_shape_with_order((units, 4 * units))
                .unwrap(),
            v(4 * units, seed + 2.0),
        );
        l.forget_bias = 1.0;
        l
    }

    #[test]
    fn every_layout_round_trips_a_plain_layer() {
        for layout in Layout::ALL {
            let l = layer(3, 2, 0.5);
            let e = export_layer(layout, &l, 1, layout.default_forget_bias());
            let arrays: Arrays<f64> = e.arrays.into_iter().collect();
            let back = import_layer(layout, &e.options, &arrays, 1).unwrap();
            let expected = fold_forget_bias(
                &l,
                if layout.has_forget_bias() {
                    ForgetBias::Kept
                } else {
                    ForgetBias::Folded
                },
            );
            assert_eq!(back, expected, "{layout}");
        }
    }

    #[test]
    fn options_round_trip_where_the_layout_has_them() {
        let mut l = layer(2, 3, 1.5);
        l.peepholes = Some(Peepholes {
            input: Array1::from(vec![0.1, 0.2, 0.3]),
            forget: Array1::from(vec![0.4, 0.5, 0.6]),
            output: Array1::from(vec![0.7, 0.8, 0.9]),
        });
        l.cell_clip = Some(0.5);
        l.projection = Some(Projection {
            kernel: Array2::from_shape_fn((3, 2), |(a, b)| (a * 2 + b) as f64 * 0.1),
            clip: Some(0.25),
        });
        l.w_h = Array2::from_shape_fn((2, 12), |(a, b)| (a * 12 + b) as f64 * 0.01);
        for layout in [Layout::Canonical, Layout::Tf1] {
            let e = export_layer(layout, &l, 0, ForgetBias::Kept);
            let arrays: Arrays<f64> = e.arrays.into_iter().collect();
            assert_eq!(
                import_layer(layout, &e.options, &arrays, 0).unwrap(),
                l,
                "{layout}"
            );
        }
        l.projection = None;
        l.w_h = Array2::from_shape_fn((3, 12), |(a, b)| (a * 12 + b) as f64 * 0.01);
        let e = export_layer(Layout::Block, &l, 0, ForgetBias::Kept);
        let arrays: Arrays<f64> = e.arrays.into_iter().collect();
        assert_eq!(
            import_layer(Layout::Block, &e.options, &arrays, 0).unwrap(),
            l
        );
        l.cell_clip = None;
        l.gate_activation = Activation::HardSigmoidRelu6;
        l.cell_activation = Activation::Linear;
        let e = export_layer(Layout::Onnx, &l, 0, ForgetBias::Folded);
        let arrays: Arrays<f64> = e.arrays.into_iter().collect();
        assert_eq!(
            import_layer(Layout::Onnx, &e.options, &arrays, 0).unwrap(),
            fold_forget_bias(&l, ForgetBias::Folded)
        );
    }

    #[test]
    fn onnx_gate_blocks_are_i_o_f_c_and_the_bias_is_split_in_halves() {
        let mut l = Layer::new(
            Array2::from_shape_fn((1, 4), |(_, c)| c as f64),
            Array2::zeros((1, 4)),
            Array1::from(vec![10.0, 20.0, 30.0, 40.0]),
        );
        l.forget_bias = 1.0;
        let e = export_layer(Layout::Onnx, &l, 0, ForgetBias::Folded);
        let w = &e.arrays[0].1;
        assert_eq!(
            w.iter().copied().collect::<Vec<_>>(),
            vec![0.0, 3.0, 1.0, 2.0]
        );
        let b = &e.arrays[2].1;
        assert_eq!(
            b.iter().copied().collect::<Vec<_>>(),
            vec![5.0, 20.0, 10.5, 15.0, 5.0, 20.0, 10.5, 15.0]
        );
    }

    #[test]
    fn length_masks_are_recognised() {
        let m =
            Array2::from_shape_vec((2, 3), vec![true, true, false, false, false, false]).unwrap();
        assert_eq!(mask_lengths(&m), Some(vec![2, 0]));
        let holes = Array2::from_shape_vec((1, 3), vec![true, false, true]).unwrap();
        assert_eq!(mask_lengths(&holes), None);
    }
}
