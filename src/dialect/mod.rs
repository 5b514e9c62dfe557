//! Each framework's terms, turned into the canonical LSTM and back.
//!
//! Every framework quirk lives here and nowhere else: gate orders,
//! `forget_bias` added at run time, `go_backwards` output order, masking
//! rules, which `hard_sigmoid`. A dialect receives a case's native model
//! description (JSON) and native tensors by name, and returns the native
//! outputs by name. It knows nothing of files.

use crate::lstm::reduced::{Precision, Products};
use std::collections::BTreeMap;

use ndarray::{concatenate, Array1, Array2, ArrayD, ArrayView1, ArrayView2, Axis, Ix1, Ix2, Ix3};

use crate::lstm::{Activation, Gate, Real};
use crate::tensor::Tensor;

pub mod block;
pub mod keras;
pub mod layout;
pub mod tf1;

/// Named tensors (variables or inputs) as a dialect receives them.
pub type Tensors = BTreeMap<String, Tensor>;

/// Named outputs as a dialect returns them.
pub type Outputs<T> = BTreeMap<String, ArrayD<T>>;

/// Why a dialect cannot build or run a case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DialectError {
    /// No dialect by that name.
    #[error("unknown dialect {0:?} (known: {known})", known = DIALECTS.join(", "))]
    UnknownDialect(String),
    /// The model description does not parse.
    #[error("model: {0}")]
    Model(String),
    /// The model names a variable the case does not have.
    #[error("variable {0:?} is named by the model but not listed in the case")]
    MissingVariable(String),
    /// An input the API needs is missing.
    #[error("input {0:?} is required by the model but not listed in the case")]
    MissingInput(String),
    /// An input the API does not take.
    #[error("input {0:?} is not an input of this API (expected one of: {1})")]
    UnknownInput(String, String),
    /// A tensor has the wrong shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// Which tensor.
        what: String,
        /// The shape the model implies.
        expected: Vec<usize>,
        /// The shape it has.
        got: Vec<usize>,
    },
    /// A tensor has the wrong dtype.
    #[error("{what}: expected dtype {expected}, got {got}")]
    DType {
        /// Which tensor.
        what: String,
        /// The dtype the model needs.
        expected: &'static str,
        /// The dtype it has.
        got: &'static str,
    },
    /// Anything else that makes the case invalid for this dialect.
    #[error("{0}")]
    Invalid(String),
}

/// The dialect names the registry knows.
pub const DIALECTS: &[&str] = &["tf1", "block", "keras"];

/// A parsed model in one of the dialects.
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    /// TensorFlow 1.x cells and runners.
    Tf1(Box<tf1::Model>),
    /// TensorFlow's fused block ops.
    Block(block::Model),
    /// Keras 3 and tf-keras layers.
    Keras(keras::Model),
}

impl Model {
    /// Parse a case's `model` for the named dialect.
    ///
    /// # Errors
    /// [`DialectError::UnknownDialect`] or [`DialectError::Model`].
    pub fn parse(dialect: &str, model: &serde_json::Value) -> Result<Model, DialectError> {
        let parse_err = |e: serde_json::Error| DialectError::Model(e.to_string());
        match dialect {
            "tf1" => Ok(Model::Tf1(
                serde_json::from_value(model.clone()).map_err(parse_err)?,
            )),
            "block" => Ok(Model::Block(
                serde_json::from_value(model.clone()).map_err(parse_err)?,
            )),
            "keras" => Ok(Model::Keras(
                serde_json::from_value(model.clone()).map_err(parse_err)?,
            )),
            other => Err(DialectError::UnknownDialect(other.to_string())),
        }
    }

    /// Run the model on the case's variables and inputs in float type `T`,
    /// with the Rust LSTM.
    ///
    /// # Errors
    /// A [`DialectError`] when variables or inputs are missing or do not fit.
    pub fn run<T: Real>(
        &self,
        variables: &Tensors,
        inputs: &Tensors,
    ) -> Result<Outputs<T>, DialectError> {
        self.run_with(variables, inputs, &mut RustLstm)
    }

    /// Run the model with any [`Runner`]: the dialect turns the case into
    /// canonical [`Step`]s, the runner computes each, and the dialect turns
    /// the results into the case's native outputs. The gate uses this with
    /// runners that export steps or read back an external implementation's
    /// results.
    ///
    /// # Errors
    /// A [`DialectError`] when variables or inputs are missing or do not
    /// fit, or the runner fails.
    pub fn run_with<T: Real>(
        &self,
        variables: &Tensors,
        inputs: &Tensors,
        runner: &mut dyn Runner<T>,
    ) -> Result<Outputs<T>, DialectError> {
        match self {
            Model::Tf1(m) => m.run(variables, inputs, runner),
            Model::Block(m) => m.run(variables, inputs, runner),
            Model::Keras(m) => m.run(variables, inputs, runner),
        }
    }

    /// A one-line description: API and options, for `lstm-parity list`.
    pub fn summary(&self) -> String {
        match self {
            Model::Tf1(m) => m.summary(),
            Model::Block(m) => m.summary(),
            Model::Keras(m) => m.summary(),
        }
    }

    /// The API name, e.g. `tf1.dynamic_rnn` or `keras3.LSTM`, for filtering.
    pub fn api(&self) -> String {
        match self {
            Model::Tf1(m) => m.api_name(),
            Model::Block(m) => m.api_name(),
            Model::Keras(m) => m.api_name(),
        }
    }
}

/// One run of the canonical LSTM that a dialect asks for.
#[derive(Clone, Debug)]
pub struct Step<T> {
    /// A name unique within the case: `main`, `fw`, `bw`, `call/1`, `layers/0`...
    pub name: String,
    /// The stack of layers.
    pub layers: Vec<crate::lstm::Layer<T>>,
    /// `[batch, time, input]`, batch-major, in input time order.
    pub inputs: ndarray::Array3<T>,
    /// One state per layer, or zeros.
    pub initial_state: Option<Vec<crate::lstm::State<T>>>,
    /// `[batch, time]`, `true` where a row computes.
    pub mask: Option<Array2<bool>>,
    /// What masked steps output.
    pub masked_output: crate::lstm::MaskedOutput,
    /// Process last to first; results in processing order.
    pub reverse: bool,
    /// The half of a bidirectional layer this step computes, if it is one.
    /// A backward half runs with `reverse` (Keras `go_backwards`), or
    /// forward over inputs the dialect reversed row by row (TF1's
    /// `bidirectional_dynamic_rnn`, which reverses each row's valid steps
    /// only).
    pub bidirectional: Option<Half>,
    /// Whether this step's inputs or initial state were computed from an
    /// earlier step's results (Keras `Sequential`, stateful calls): such a
    /// case cannot be exported as independent steps.
    pub depends_on_earlier_steps: bool,
    /// How the framework's 16-bit CPU kernel forms this step's gate
    /// products (`docs/semantics.md` §13.1), for the emulated precisions:
    /// Keras multiplies `x` and `h` apart (with `implementation=1` it adds
    /// the bias to `x·W` first), a TF1 cell multiplies `[x, h]` at once,
    /// the block ops keep their float16 sums in 16 bits. `None` for a step
    /// read back from an export, which no framework computed.
    pub products: Option<Products>,
}

impl<T: Real> Step<T> {
    /// The step as a [`crate::lstm::Sequence`] borrowing its arrays.
    pub fn sequence(&self) -> crate::lstm::Sequence<'_, T> {
        crate::lstm::Sequence {
            inputs: self.inputs.view(),
            initial_state: self.initial_state.as_deref(),
            mask: self.mask.as_ref().map(Array2::view),
            masked_output: self.masked_output,
            reverse: self.reverse,
        }
    }
}

/// One half of a bidirectional layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// The forward pass.
    Forward,
    /// The backward pass.
    Backward,
}

impl Half {
    /// The step name a dialect gives a step of a bidirectional layer's
    /// `half` (or of a single direction): `fw`, `bw` or `main`.
    pub fn step_name(half: Option<Half>) -> &'static str {
        match half {
            None => "main",
            Some(Half::Forward) => "fw",
            Some(Half::Backward) => "bw",
        }
    }
}

/// Computes the canonical [`Step`]s of a case.
pub trait Runner<T> {
    /// Compute one step.
    ///
    /// # Errors
    /// A [`DialectError`] when the step cannot be computed.
    fn run_step(&mut self, step: &Step<T>) -> Result<crate::lstm::RunOutput<T>, DialectError>;
}

/// The Rust LSTM as a [`Runner`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RustLstm;

impl<T: Real> Runner<T> for RustLstm {
    fn run_step(&mut self, step: &Step<T>) -> Result<crate::lstm::RunOutput<T>, DialectError> {
        crate::lstm::run(&step.layers, &step.sequence())
            .map_err(|e| DialectError::Invalid(e.to_string()))
    }
}

/// The Rust LSTM in float16 or bfloat16, emulated ([`crate::lstm::reduced`]):
/// every value rounded where the framework's 16-bit kernel rounds it
/// ([`Step::products`]).
#[derive(Clone, Copy, Debug)]
pub struct EmulatedLstm(pub Precision);

impl Runner<f32> for EmulatedLstm {
    fn run_step(&mut self, step: &Step<f32>) -> Result<crate::lstm::RunOutput<f32>, DialectError> {
        let products = step.products.ok_or_else(|| {
            DialectError::Invalid(format!(
                "step {}: no framework's 16-bit products to emulate",
                step.name
            ))
        })?;
        crate::lstm::reduced::run(&step.layers, &step.sequence(), self.0, products)
            .map_err(|e| DialectError::Invalid(e.to_string()))
    }
}

// ---------------------------------------------------------------------------
// Helpers shared by the dialects.

/// Reorder the four gate blocks along the last axis from `native` order to
/// canonical order (i, f, g, o).
pub fn blocks_to_canonical<T: Clone>(a: ArrayView2<T>, native: [Gate; 4]) -> Array2<T> {
    let units = a.ncols() / 4;
    let views: Vec<_> = Gate::ALL
        .iter()
        .map(|gate| {
            let k = native
                .iter()
                .position(|g| g == gate)
                .expect("native order names every gate");
            a.slice(ndarray::s![.., k * units..(k + 1) * units])
        })
        .collect();
    concatenate(Axis(1), &views).expect("blocks of equal height")
}

/// Reorder the four gate blocks along the last axis from canonical order to
/// `native` order: the inverse of [`blocks_to_canonical`].
pub fn blocks_from_canonical<T: Clone>(a: ArrayView2<T>, native: [Gate; 4]) -> Array2<T> {
    let units = a.ncols() / 4;
    let views: Vec<_> = native
        .iter()
        .map(|gate| a.slice(ndarray::s![.., gate.columns(units)]))
        .collect();
    concatenate(Axis(1), &views).expect("blocks of equal height")
}

/// [`blocks_to_canonical`] for a vector.
pub fn vector_to_canonical<T: Clone>(v: ArrayView1<T>, native: [Gate; 4]) -> Array1<T> {
    let a = v.insert_axis(Axis(0));
    blocks_to_canonical(a, native).row(0).to_owned()
}

/// [`blocks_from_canonical`] for a vector.
pub fn vector_from_canonical<T: Clone>(v: ArrayView1<T>, native: [Gate; 4]) -> Array1<T> {
    let a = v.insert_axis(Axis(0));
    blocks_from_canonical(a, native).row(0).to_owned()
}

/// Parse an activation name as the frameworks spell it. `keras_major` picks
/// the `hard_sigmoid` (2 or 3); `None` where the framework has none.
pub fn activation(name: &str, keras_major: Option<u8>) -> Result<Activation, DialectError> {
    Ok(match (name, keras_major) {
        ("tanh", _) => Activation::Tanh,
        ("sigmoid", _) => Activation::Sigmoid,
        ("relu", _) => Activation::Relu,
        ("linear", _) => Activation::Linear,
        ("hard_sigmoid", Some(2)) => Activation::HardSigmoidLinear,
        ("hard_sigmoid", Some(3)) => Activation::HardSigmoidRelu6,
        _ => {
            return Err(DialectError::Model(format!(
                "unsupported activation {name:?} (supported: tanh, sigmoid, relu, linear{})",
                if keras_major.is_some() {
                    ", hard_sigmoid"
                } else {
                    ""
                }
            )))
        }
    })
}

/// The largest number of units a model may declare: far above any real
/// LSTM, low enough that shape arithmetic cannot overflow.
pub const MAX_UNITS: usize = 1 << 24;

/// A declared size, checked to be in `1..=MAX_UNITS`.
pub(crate) fn size(what: &str, n: usize) -> Result<usize, DialectError> {
    if (1..=MAX_UNITS).contains(&n) {
        Ok(n)
    } else {
        Err(DialectError::Model(format!(
            "{what} = {n} is outside 1..={MAX_UNITS}"
        )))
    }
}

/// A float tensor by name from `tensors`, as `T`, with its rank checked.
fn float_tensor<T: Real>(
    tensors: &Tensors,
    name: &str,
    missing: impl Fn(String) -> DialectError,
) -> Result<ArrayD<T>, DialectError> {
    let t = tensors.get(name).ok_or_else(|| missing(name.to_string()))?;
    t.to_float::<T>().ok_or_else(|| DialectError::DType {
        what: name.to_string(),
        expected: "float32",
        got: t.dtype(),
    })
}

fn with_shape<T, D: ndarray::Dimension>(
    a: ArrayD<T>,
    name: &str,
    expected: &[usize],
) -> Result<ndarray::Array<T, D>, DialectError> {
    if a.shape() != expected {
        return Err(DialectError::Shape {
            what: name.to_string(),
            expected: expected.to_vec(),
            got: a.shape().to_vec(),
        });
    }
    Ok(a.into_dimensionality::<D>().expect("shape checked"))
}

thread_local! {
    /// The variable names read by the model run in progress on this thread,
    /// when [`track_variable_use`] is collecting them.
    static USED_VARIABLES: std::cell::RefCell<Option<std::collections::BTreeSet<String>>> =
        const { std::cell::RefCell::new(None) };
}

fn note_variable(name: &str) {
    USED_VARIABLES.with(|u| {
        if let Some(set) = u.borrow_mut().as_mut() {
            set.insert(name.to_string());
        }
    });
}

/// Run `f` (a model run) and return, with its result, the names of the
/// variables the dialect read: a case's loader refuses variables no
/// dialect code reads, since a misnamed one would be silently ignored.
pub fn track_variable_use<R>(f: impl FnOnce() -> R) -> (R, std::collections::BTreeSet<String>) {
    let previous = USED_VARIABLES.with(|u| u.replace(Some(Default::default())));
    let result = f();
    let used = USED_VARIABLES
        .with(|u| u.replace(previous))
        .unwrap_or_default();
    (result, used)
}

/// A variable as a matrix of the expected shape.
pub(crate) fn variable2<T: Real>(
    vars: &Tensors,
    name: &str,
    shape: [usize; 2],
) -> Result<Array2<T>, DialectError> {
    note_variable(name);
    with_shape::<T, Ix2>(
        float_tensor(vars, name, DialectError::MissingVariable)?,
        name,
        &shape,
    )
}

/// A variable as a vector of the expected length.
pub(crate) fn variable1<T: Real>(
    vars: &Tensors,
    name: &str,
    len: usize,
) -> Result<Array1<T>, DialectError> {
    note_variable(name);
    with_shape::<T, Ix1>(
        float_tensor(vars, name, DialectError::MissingVariable)?,
        name,
        &[len],
    )
}

/// A float input of any shape (checked by the caller), with its rank.
pub(crate) fn input_float<T: Real>(
    inputs: &Tensors,
    name: &str,
) -> Result<ArrayD<T>, DialectError> {
    float_tensor(inputs, name, DialectError::MissingInput)
}

/// A float input as a matrix of the expected shape.
pub(crate) fn input2<T: Real>(
    inputs: &Tensors,
    name: &str,
    shape: [usize; 2],
) -> Result<Array2<T>, DialectError> {
    with_shape::<T, Ix2>(input_float(inputs, name)?, name, &shape)
}

/// A float input of rank 2 (`[batch, input]`, one step), with a time axis
/// of length 1 inserted at `time_axis`.
pub(crate) fn input_one_step<T: Real>(
    inputs: &Tensors,
    name: &str,
    time_axis: usize,
) -> Result<ndarray::Array3<T>, DialectError> {
    let x = input_float::<T>(inputs, name)?;
    let got = x.shape().to_vec();
    Ok(x.into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| DialectError::Shape {
            what: format!("{name} (rank 2: [batch, input])"),
            expected: vec![],
            got,
        })?
        .insert_axis(Axis(time_axis)))
}

/// A float input of rank 3.
pub(crate) fn input3<T: Real>(
    inputs: &Tensors,
    name: &str,
) -> Result<ndarray::Array3<T>, DialectError> {
    let a = input_float::<T>(inputs, name)?;
    let got = a.shape().to_vec();
    a.into_dimensionality::<Ix3>()
        .map_err(|_| DialectError::Shape {
            what: format!("{name} (rank 3)"),
            expected: vec![],
            got,
        })
}

/// Check that `inputs` holds no name outside `allowed`.
pub(crate) fn check_input_names(inputs: &Tensors, allowed: &[String]) -> Result<(), DialectError> {
    for name in inputs.keys() {
        if !allowed.contains(name) {
            return Err(DialectError::UnknownInput(name.clone(), allowed.join(", ")));
        }
    }
    Ok(())
}

/// Initial states `initial_state/<layer>/c` and `/h` for every layer, or
/// `None` when the case gives none. All or nothing.
pub(crate) fn initial_states<T: Real>(
    inputs: &Tensors,
    prefix: &str,
    shapes: &[([usize; 2], [usize; 2])],
) -> Result<Option<Vec<crate::lstm::State<T>>>, DialectError> {
    let any = inputs.keys().any(|k| k.starts_with(prefix));
    if !any {
        return Ok(None);
    }
    shapes
        .iter()
        .enumerate()
        .map(|(layer, (c_shape, h_shape))| {
            Ok(crate::lstm::State {
                c: input2(inputs, &format!("{prefix}{layer}/c"), *c_shape)?,
                h: input2(inputs, &format!("{prefix}{layer}/h"), *h_shape)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Names of the initial state inputs for `layers` layers.
pub(crate) fn initial_state_names(prefix: &str, layers: usize) -> Vec<String> {
    (0..layers)
        .flat_map(|l| [format!("{prefix}{l}/c"), format!("{prefix}{l}/h")])
        .collect()
}

/// A `[batch, time]` mask from per-row lengths: row `b` computes `t < lengths[b]`.
pub fn length_mask(lengths: &[usize], time: usize) -> Array2<bool> {
    Array2::from_shape_fn((lengths.len(), time), |(b, t)| t < lengths[b])
}

/// TensorFlow's `reverse_sequence` on `[batch, time, features]`: reverse
/// the first `lengths[b]` steps of each row and leave the rest in place;
/// the whole time axis when `lengths` is `None`.
pub fn reverse_sequence<T: Clone>(
    x: ndarray::ArrayView3<T>,
    lengths: Option<&[usize]>,
) -> ndarray::Array3<T> {
    let (batch, time, _) = x.dim();
    let mut out = x.to_owned();
    for b in 0..batch {
        let len = lengths.map_or(time, |l| l[b]);
        for t in 0..len {
            out.slice_mut(ndarray::s![b, t, ..])
                .assign(&x.slice(ndarray::s![b, len - 1 - t, ..]));
        }
    }
    out
}

/// Put final states and traces in `out` under the shared names.
pub(crate) fn put_states<T: Real>(
    out: &mut Outputs<T>,
    run: &crate::lstm::RunOutput<T>,
    prefix: &str,
) {
    for (l, state) in run.final_state.iter().enumerate() {
        out.insert(format!("{prefix}state/{l}/c"), state.c.clone().into_dyn());
        out.insert(format!("{prefix}state/{l}/h"), state.h.clone().into_dyn());
    }
    for (l, trace) in run.trace.iter().enumerate() {
        out.insert(format!("{prefix}trace/{l}/c"), trace.c.clone().into_dyn());
        out.insert(format!("{prefix}trace/{l}/h"), trace.h.clone().into_dyn());
    }
}
