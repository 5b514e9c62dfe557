//! Weight layouts of other LSTM implementations: canonical layers to and
//! from each target's own arrays, and what each target cannot express
//! (each target's semantics: docs/semantics.md §7-§10).
//!
//! The gate (`crate::conformance::gate`) exports every canonical
//! [`Step`] a dialect asks for in one of these layouts, so that another
//! implementation can load the weights the way it loads its own. The
//! converters are the dialects' own (`dialect::tf1::kernel_from_canonical`,
//! `dialect::keras::weights_from_canonical`,
//! `dialect::block::weights_from_canonical`, the gate-order helpers of
//! `dialect`); the inverse direction ([`import_layer`]) lets a Rust
//! implementation read an export back.
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
//!
//! Each layout is one file below this module, a type implementing
//! `LayerLayout`: its gate order and sequence rules, what it cannot
//! express ([`Lacks`]), its options as a typed struct that an import reads
//! strictly (an unknown or missing field is an error), and its arrays both
//! ways. [`Layout`] is the runtime selector; every function here that takes
//! one dispatches to the layout's type with a `match` (`dispatch!`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ndarray::{s, Array2, ArrayD, Ix3};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{DialectError, Step};
use crate::lstm::{Gate, Layer, MaskedOutput, Real};
use crate::parse::UnknownName;
use arrays::Named;

mod activation;
mod arrays;
mod block;
mod canonical;
mod cudnn;
mod keras;
mod lacks;
mod onnx;
mod tf1;
mod torch;

pub use activation::{activation_name, onnx_activation, OnnxActivation, KERAS3_HARD_SIGMOID_ALPHA};
pub use lacks::{Lacks, LayerOption};
pub use onnx::ONNX_ORDER;

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

/// `$body` with `$L` naming the [`LayerLayout`] type of `$layout`: the one
/// place a [`Layout`] turns into its type.
macro_rules! dispatch {
    ($layout:expr, $L:ident => $body:expr) => {
        dispatch!(@arms $layout, $L, $body,
            Canonical => canonical::Canonical,
            Tf1 => tf1::Tf1,
            Keras => keras::Keras,
            Block => block::Block,
            BlockV2 => block::BlockV2,
            Onnx => onnx::Onnx<0>,
            OnnxLayout1 => onnx::Onnx<1>,
            Torch => torch::Torch,
            Cudnn => cudnn::Cudnn)
    };
    (@arms $layout:expr, $L:ident, $body:expr, $($variant:ident => $type:ty),*) => {
        match $layout {
            $(Layout::$variant => {
                type $L = $type;
                $body
            })*
        }
    };
}

/// One target layout, as a type: what [`Layout`] selects at run time.
trait LayerLayout {
    /// The layout this type is.
    const LAYOUT: Layout;
    /// The target's gate order along its `4*units` axis.
    const GATE_ORDER: [Gate; 4];
    /// The target's name of each canonical gate (i, f, g, o).
    const GATE_NAMES: [&'static str; 4];
    /// Whether sequences are `[time, batch, ...]` (else `[batch, time, ...]`).
    const TIME_MAJOR: bool;
    /// Whether the target has a run-time `forget_bias` option.
    const FORGET_BIAS: bool;
    /// Which masks the target takes.
    const MASKS: Masks;
    /// `Some(who)` when the target runs forward only.
    const FORWARD_ONLY: Option<&'static str>;
    /// The options of one layer, as the export writes them (`None` fields
    /// are written as `null`, so that every export has every field).
    type Options: Serialize + DeserializeOwned;

    /// Why the target cannot express `layer`, or `Ok` when it can.
    ///
    /// # Errors
    /// The option the target lacks.
    fn check_layer<T: Real>(layer: &Layer<T>) -> Result<(), Lacks>;

    /// `layer` (number `index` of its stack; its `forget_bias` already
    /// folded where the target has none) as options and named arrays, in
    /// the order they are written. Options [`Self::check_layer`] rejects
    /// are dropped.
    fn export<T: Real>(layer: &Layer<T>, index: usize) -> (Self::Options, Named<T>);

    /// The canonical layer back from what [`Self::export`] wrote.
    ///
    /// # Errors
    /// A missing or misshapen array, or an option with no canonical equivalent.
    fn import<T: Real>(
        options: Self::Options,
        arrays: &Arrays<T>,
        index: usize,
    ) -> Result<Layer<T>, DialectError>;
}

/// Which masks a layout takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Masks {
    /// Any `[batch, time]` mask.
    Any,
    /// Per-row sequence lengths only; past a row's length `writer` (the
    /// target, as the reason names it) writes zeros.
    Lengths {
        /// Who writes the zeros.
        writer: &'static str,
    },
    /// No mask of any kind, and why.
    None(&'static str),
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
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "kept" => Ok(ForgetBias::Kept),
            "folded" => Ok(ForgetBias::Folded),
            _ => Err(UnknownName::new(
                "forget_bias mode",
                "modes",
                s,
                &["folded", "kept"],
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
        dispatch!(self, L => L::TIME_MAJOR)
    }

    /// The target's gate order along its `4*units` axis.
    pub fn gate_order(self) -> [Gate; 4] {
        dispatch!(self, L => L::GATE_ORDER)
    }

    /// The target's name of each canonical gate (i, f, g, o).
    pub fn gate_names(self) -> [&'static str; 4] {
        dispatch!(self, L => L::GATE_NAMES)
    }

    /// The target's name of `gate`.
    pub fn gate_name(self, gate: Gate) -> &'static str {
        self.gate_names()[gate as usize]
    }

    /// Whether the target has a run-time `forget_bias` option.
    pub fn has_forget_bias(self) -> bool {
        dispatch!(self, L => L::FORGET_BIAS)
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
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Layout::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| UnknownName::new("layout", "layouts", s, &Layout::ALL.map(Layout::name)))
    }
}

/// One layer's arrays and options in a target layout.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerExport<T> {
    /// The layout's options (units, activations, clip, ...), as JSON.
    pub options: Value,
    /// Arrays by the target's own name, in a fixed order.
    pub arrays: Vec<(String, ArrayD<T>)>,
}

/// Arrays by name, as [`import_layer`] reads them.
pub type Arrays<T> = BTreeMap<String, ArrayD<T>>;

// ---------------------------------------------------------------------------
// What a layout can express.

/// Why a layout cannot express a step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CannotExpress {
    /// The step reads an earlier step's results.
    #[error(
        "its inputs or initial state are computed from an earlier step's results \
         (a Keras Sequential layer, a stateful call, or a TF1 ResidualWrapper stacked in a \
         MultiRNNCell): it cannot be run on its own"
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
        reason: Lacks,
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
    dispatch!(layout, L => check_step_in::<L, T>(step, forget_bias))
}

fn check_step_in<L: LayerLayout, T: Real>(
    step: &Step<T>,
    forget_bias: ForgetBias,
) -> Result<(), CannotExpress> {
    let layout = L::LAYOUT;
    if step.depends_on_earlier_steps {
        return Err(CannotExpress::DependsOnEarlierSteps);
    }
    if forget_bias == ForgetBias::Kept && !L::FORGET_BIAS {
        return Err(CannotExpress::NoForgetBias(layout));
    }
    for (k, layer) in step.layers.iter().enumerate() {
        L::check_layer(layer).map_err(|reason| CannotExpress::Layer { layer: k, reason })?;
    }
    if let Some(mask) = &step.mask {
        match L::MASKS {
            Masks::Any => {}
            Masks::None(why) => return Err(CannotExpress::Masking(why.into())),
            Masks::Lengths { writer } => {
                if mask_lengths(mask).is_none() {
                    return Err(CannotExpress::Masking(format!(
                        "the mask is not a right-padded length mask; {layout} takes per-row sequence lengths only"
                    )));
                }
                // Keras masking repeats the previous output at a masked
                // step; the length-only layouts write zeros there. An
                // adapter would have to rewrite the runtime's outputs to
                // match, which would no longer judge the runtime: such
                // steps are not exported.
                if step.masked_output == MaskedOutput::RepeatPrevious {
                    return Err(CannotExpress::Masking(format!(
                        "masked steps repeat the previous output here; {writer} writes zeros past a row's length"
                    )));
                }
            }
        }
    }
    match L::FORWARD_ONLY {
        Some(who) if step.reverse => Err(CannotExpress::ForwardOnly(who)),
        _ => Ok(()),
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
// Export and import.

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
    let (options, arrays) = dispatch!(layout, L => {
        let (options, arrays) = L::export(&layer, index);
        (serde_json::to_value(options), arrays)
    });
    LayerExport {
        options: options.expect("layout options are plain JSON"),
        arrays,
    }
}

/// A layer exported in `layout` (`options` and `arrays` as
/// [`export_layer`] writes them) back in canonical form. `index` is the
/// layer's number in its stack (PyTorch names carry it).
///
/// # Errors
/// A [`DialectError`] when an array is missing or misshapen, or when the
/// options are not the layout's (an unknown or missing field, a value of
/// the wrong type or with no canonical equivalent).
pub fn import_layer<T: Real>(
    layout: Layout,
    options: &Value,
    arrays: &Arrays<T>,
    index: usize,
) -> Result<Layer<T>, DialectError> {
    let mut layer = dispatch!(layout, L => import_in::<L, T>(options, arrays, index))?;
    layer.w_x = layer.w_x.as_standard_layout().into_owned();
    layer.w_h = layer.w_h.as_standard_layout().into_owned();
    layer
        .validate()
        .map_err(|e| DialectError::Invalid(format!("layer {index}: {e}")))?;
    Ok(layer)
}

/// [`import_layer`] in layout `L`: the options parsed strictly into
/// `L::Options`.
fn import_in<L: LayerLayout, T: Real>(
    options: &Value,
    arrays: &Arrays<T>,
    index: usize,
) -> Result<Layer<T>, DialectError> {
    let options = L::Options::deserialize(options)
        .map_err(|e| DialectError::Model(format!("layout {}: options: {e}", L::LAYOUT)))?;
    L::import(options, arrays, index)
}

/// `layer`, when it has the number of units its options declare in
/// `field`.
fn declared_units<L: LayerLayout, T: Real>(
    field: &str,
    declared: usize,
    layer: Layer<T>,
) -> Result<Layer<T>, DialectError> {
    if layer.units() == declared {
        Ok(layer)
    } else {
        Err(DialectError::Model(format!(
            "layout {}: options.{field} = {declared}, but the arrays have {} units",
            L::LAYOUT,
            layer.units()
        )))
    }
}

/// A field that must be present even where its value may be `null`
/// (`#[serde(deserialize_with = "required")]`: serde takes a missing
/// `Option` as `None` otherwise).
fn required<'de, D: Deserializer<'de>, V: Deserialize<'de>>(d: D) -> Result<V, D::Error> {
    V::deserialize(d)
}

// ---------------------------------------------------------------------------
// Sequence order.

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
pub(super) mod tests {
    use super::*;
    use ndarray::{Array, Array1};
    use serde_json::json;

    use crate::lstm::{Activation, Peepholes, Projection};

    /// A layer with made-up weights and `forget_bias = 1`.
    pub(in crate::dialect::layout) fn layer(input: usize, units: usize, seed: f64) -> Layer<f64> {
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

    /// [`layer`] (2 inputs, 3 units) with peepholes and a cell clip.
    pub(in crate::dialect::layout) fn with_peepholes() -> Layer<f64> {
        let mut l = layer(2, 3, 1.5);
        l.peepholes = Some(Peepholes {
            input: Array1::from(vec![0.1, 0.2, 0.3]),
            forget: Array1::from(vec![0.4, 0.5, 0.6]),
            output: Array1::from(vec![0.7, 0.8, 0.9]),
        });
        l.cell_clip = Some(0.5);
        l
    }

    /// [`with_peepholes`] with a clipped projection to 2.
    pub(in crate::dialect::layout) fn with_projection() -> Layer<f64> {
        let mut l = with_peepholes();
        l.projection = Some(Projection {
            kernel: Array2::from_shape_fn((3, 2), |(a, b)| (a * 2 + b) as f64 * 0.1),
            clip: Some(0.25),
        });
        l.w_h = Array2::from_shape_fn((2, 12), |(a, b)| (a * 12 + b) as f64 * 0.01);
        l
    }

    /// `l` (layer `index` of its stack) exported in `layout` and imported
    /// back.
    pub(in crate::dialect::layout) fn round_trip(
        layout: Layout,
        l: &Layer<f64>,
        index: usize,
        mode: ForgetBias,
    ) -> Layer<f64> {
        let e = export_layer(layout, l, index, mode);
        let arrays: Arrays<f64> = e.arrays.into_iter().collect();
        import_layer(layout, &e.options, &arrays, index).unwrap()
    }

    /// The error of importing `l`'s export in `layout` with its options
    /// changed by `edit`.
    pub(in crate::dialect::layout) fn import_error(
        layout: Layout,
        l: &Layer<f64>,
        edit: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> String {
        let mut e = export_layer(layout, l, 0, layout.default_forget_bias());
        edit(e.options.as_object_mut().unwrap());
        let arrays: Arrays<f64> = e.arrays.into_iter().collect();
        import_layer(layout, &e.options, &arrays, 0)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn each_layout_dispatches_to_its_own_type() {
        for layout in Layout::ALL {
            assert_eq!(dispatch!(layout, L => L::LAYOUT), layout);
        }
    }

    #[test]
    fn every_layout_round_trips_a_plain_layer() {
        for layout in Layout::ALL {
            let l = layer(3, 2, 0.5);
            let back = round_trip(layout, &l, 1, layout.default_forget_bias());
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
    fn an_unknown_option_is_an_error_naming_the_layout_and_the_field() {
        for layout in Layout::ALL {
            let e = import_error(layout, &layer(3, 2, 0.5), |o| {
                o.insert("colour".into(), json!("blue"));
            });
            assert!(e.contains(&format!("layout {layout}")), "{layout}: {e}");
            assert!(e.contains("unknown field `colour`"), "{layout}: {e}");
        }
    }

    #[test]
    fn a_missing_option_is_an_error_naming_the_field() {
        for layout in Layout::ALL {
            let l = layer(3, 2, 0.5);
            let e = export_layer(layout, &l, 0, layout.default_forget_bias());
            for field in e.options.as_object().unwrap().keys() {
                let e = import_error(layout, &l, |o| {
                    o.remove(field);
                });
                assert!(e.contains(&format!("layout {layout}")), "{layout}: {e}");
                assert!(
                    e.contains(&format!("missing field `{field}`")),
                    "{layout}: {e}"
                );
            }
        }
    }

    #[test]
    fn a_null_where_a_number_belongs_is_an_error() {
        let e = import_error(Layout::Canonical, &layer(3, 2, 0.5), |o| {
            o.insert("forget_bias".into(), Value::Null);
        });
        assert!(
            e.contains("layout canonical: options: invalid type: null"),
            "{e}"
        );
    }

    #[test]
    fn units_the_arrays_do_not_have_are_an_error() {
        for layout in Layout::ALL {
            let l = layer(3, 2, 0.5);
            let e = export_layer(layout, &l, 0, layout.default_forget_bias());
            let Some(field) = ["units", "num_units", "hidden_size"]
                .into_iter()
                .find(|f| e.options.get(f).is_some())
            else {
                continue;
            };
            let e = import_error(layout, &l, |o| {
                o.insert(field.into(), json!(5));
            });
            assert_eq!(
                e,
                format!("model: layout {layout}: options.{field} = 5, but the arrays have 2 units")
            );
        }
    }

    #[test]
    fn what_a_layout_lacks_is_worded_as_the_gate_reports_say_it() {
        let mut hard = layer(3, 2, 0.5);
        hard.gate_activation = Activation::HardSigmoidRelu6;
        let full = with_projection();
        let mut projected = with_projection();
        projected.peepholes = None;
        projected.cell_clip = None;
        for (layout, l, text) in [
            (Layout::Torch, &hard, "activations hard_sigmoid_keras3/tanh/tanh (gate/cell/output); torch has sigmoid/tanh/tanh only"),
            (Layout::Tf1, &hard, "activations hard_sigmoid_keras3/tanh/tanh; TF1 cells have a sigmoid gate and one activation (tanh, sigmoid, relu or linear) for both the cell and the output"),
            (Layout::Keras, &full, "peepholes; keras has none"),
            (Layout::Onnx, &full, "cell_clip (on the cell state); ONNX `clip` bounds the gate pre-activations, not c"),
            (Layout::Keras, &projected, "a projection (num_proj); keras has none"),
            (Layout::Torch, &projected, "proj_clip; PyTorch's proj_size has no clip"),
            (Layout::Cudnn, &projected, "a projection; this export's cuDNN layout has none"),
        ] {
            let lacks = dispatch!(layout, L => L::check_layer(l)).unwrap_err();
            assert_eq!(lacks.to_string(), text, "{layout}");
        }
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
