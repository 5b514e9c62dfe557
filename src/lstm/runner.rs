//! The sequence runner: a stack of layers over a batch of sequences.
//!
//! This module validates, puts inputs and mask in processing order, and
//! chains the layers; the per-layer work (one GEMM for the input projection
//! of all steps, one per step for the recurrence, a fused activation pass,
//! threads over the units) is in `kernel`.

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3};

use super::kernel::default_threads;
use super::kernel::{run_layer, PackSlot};
use super::{Layer, Real, ShapeError};

/// The state of one layer: cell state `c` `[batch, units]` and hidden state
/// `h` `[batch, output_size]`.
#[derive(Clone, Debug, PartialEq)]
pub struct State<T> {
    /// Cell state, `[batch, units]`.
    pub c: Array2<T>,
    /// Hidden state (the output), `[batch, output_size]`.
    pub h: Array2<T>,
}

impl<T: Real> State<T> {
    /// The zero state of `layer` for `batch` rows.
    pub fn zeros(layer: &Layer<T>, batch: usize) -> Self {
        State {
            c: Array2::zeros((batch, layer.units())),
            h: Array2::zeros((batch, layer.output_size())),
        }
    }
}

/// What a row outputs at a step it does not compute (masked, or past its
/// length). Its state is always carried unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskedOutput {
    /// Zeros (TF1 `sequence_length`, Keras `zero_output_for_mask`).
    Zero,
    /// The row's previous output, zeros before its first computed step
    /// (Keras masking by default).
    RepeatPrevious,
}

/// A batch of input sequences and how to run over them.
#[derive(Clone, Debug)]
pub struct Sequence<'a, T> {
    /// `[batch, time, input]`.
    pub inputs: ArrayView3<'a, T>,
    /// One state per layer; zeros when `None`.
    pub initial_state: Option<&'a [State<T>]>,
    /// `[batch, time]`, `true` where the row computes; all when `None`.
    /// Indexed in input time order, like `inputs`.
    pub mask: Option<ArrayView2<'a, bool>>,
    /// Output at steps that are masked out.
    pub masked_output: MaskedOutput,
    /// Process the time steps last to first. Outputs and traces are then in
    /// processing order (step `k` read input `time - 1 - k`).
    pub reverse: bool,
}

impl<'a, T> Sequence<'a, T> {
    /// A plain forward run of `inputs` from the zero state, no mask.
    pub fn new(inputs: ArrayView3<'a, T>) -> Self {
        Sequence {
            inputs,
            initial_state: None,
            mask: None,
            masked_output: MaskedOutput::Zero,
            reverse: false,
        }
    }
}

/// Per-step states of one layer, `[batch, steps, units]` and
/// `[batch, steps, output_size]`, in processing order. At a masked step the
/// carried state is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTrace<T> {
    /// Cell state after each step.
    pub c: Array3<T>,
    /// Hidden state after each step.
    pub h: Array3<T>,
}

/// What a run returns.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutput<T> {
    /// The last layer's outputs, `[batch, time, output_size]`, processing order.
    pub outputs: Array3<T>,
    /// The state of every layer after the last step.
    pub final_state: Vec<State<T>>,
    /// Per-step states of every layer; empty when [`RunOptions::trace`] is off.
    pub trace: Vec<StepTrace<T>>,
}

/// How [`run_with`] runs (not what it computes: every option gives the
/// same outputs and final states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Record the per-step states of every layer ([`RunOutput::trace`]).
    /// The parity suite needs them; a benchmark or an inference caller does
    /// not, and skips two `[batch, time, units]` arrays per layer.
    pub trace: bool,
    /// Number of threads. `None`: [`default_threads`](super::default_threads)
    /// (the `LSTM_PARITY_THREADS` variable, else every core) for the input
    /// projection and for the steps, each lowered to 1 when it is too small
    /// for threads to pay ([`MIN_PROJECTION_WORK_FOR_THREADS`],
    /// [`MIN_STEP_WORK_FOR_THREADS`]). `Some(n)`: exactly `n`
    /// (at most one per unit), whatever the size; `Some(1)` is the
    /// single-threaded mode.
    pub threads: Option<usize>,
    /// `float32` sigmoid and tanh from vectorised polynomials (a few ULP
    /// from exact, see `fast_math`) instead of libm's values, for the
    /// common cell (sigmoid gates, tanh cell and output, no peepholes, no
    /// cell clip); other cells and `float64` always get libm's values. Off
    /// by default: the exact functions are the reference behaviour.
    pub fast_activations: bool,
}

/// Environment variable that turns [`RunOptions::fast_activations`] on in
/// [`RunOptions::default`] (and so in [`run`] and the whole parity suite)
/// when set to `1`: how `LSTM_PARITY_FAST_ACTIVATIONS=1 lstm-parity run`
/// checks the approximation against every recorded case.
pub const FAST_ACTIVATIONS_ENV: &str = "LSTM_PARITY_FAST_ACTIVATIONS";

impl Default for RunOptions {
    /// Trace on, automatic threads, exact activations (unless
    /// [`FAST_ACTIVATIONS_ENV`] is `1`): what [`run`] uses.
    fn default() -> Self {
        RunOptions {
            trace: true,
            threads: None,
            fast_activations: std::env::var(FAST_ACTIVATIONS_ENV).is_ok_and(|v| v.trim() == "1"),
        }
    }
}

/// Multiply-adds of one recurrent step (`batch * h_depth * 4 * units`)
/// below which [`RunOptions::threads`] `None` runs the steps of a layer on
/// one thread. Threads over a step meet at a barrier once per step, which
/// costs about a microsecond when both are running, and starting the
/// second thread costs tens of microseconds per layer call; the tiny
/// layers of the parity suite stay on one thread. On this project's 2-core
/// machine, steady state (`lstm-parity bench --repeats 50`, three
/// alternations), two threads against one: B1-T200-H128 (65K per step)
/// 1.43-1.65 ms against 2.0-2.3 ms, B16-T100-H256 (4.2M) 15.7-24 ms
/// against 23-36 ms. Under heavy load from other jobs (load average 4-10)
/// two threads that meet every step lose instead (B16: 53-130 ms against
/// 31 ms on one): set `LSTM_PARITY_THREADS=1` there.
pub const MIN_STEP_WORK_FOR_THREADS: usize = 1 << 15;

/// Multiply-adds of the input projection of all steps (`batch * time *
/// input * 4 * units`) from which [`RunOptions::threads`] `None` splits it
/// over every core even when the steps run on one thread. It needs a
/// single barrier, so the threads pay from far smaller sizes than the
/// benchmark shapes; below this, starting a thread costs more than the
/// product.
pub const MIN_PROJECTION_WORK_FOR_THREADS: usize = 1 << 22;

/// Threads for one layer (sizes as named) under [`RunOptions::threads`]:
/// `(input projection, steps)`.
pub fn layer_threads(
    batch: usize,
    time: usize,
    input: usize,
    units: usize,
    h_depth: usize,
    threads: Option<usize>,
) -> (usize, usize) {
    match threads {
        Some(n) => (n.max(1), n.max(1)),
        None => {
            let all = default_threads();
            let projection = batch * time * input * 4 * units;
            let step = batch * h_depth * 4 * units;
            (
                if projection < MIN_PROJECTION_WORK_FOR_THREADS {
                    1
                } else {
                    all
                },
                if step < MIN_STEP_WORK_FOR_THREADS {
                    1
                } else {
                    all
                },
            )
        }
    }
}

/// Check that a run's inputs fit its layers.
pub(crate) fn validate<T: Real>(layers: &[Layer<T>], seq: &Sequence<T>) -> Result<(), ShapeError> {
    let (batch, time, mut input) = seq.inputs.dim();
    if layers.is_empty() {
        return Err(ShapeError {
            what: "layers".into(),
            expected: vec![1],
            got: vec![0],
        });
    }
    for (index, layer) in layers.iter().enumerate() {
        layer.validate().map_err(|mut e| {
            e.what = format!("layer {index} {}", e.what);
            e
        })?;
        if layer.input_size() != input {
            return Err(ShapeError {
                what: format!("layer {index} input size"),
                expected: vec![input],
                got: vec![layer.input_size()],
            });
        }
        if let Some(states) = seq.initial_state {
            let state = states.get(index).ok_or_else(|| ShapeError {
                what: "initial states".into(),
                expected: vec![layers.len()],
                got: vec![states.len()],
            })?;
            let c_shape = [batch, layer.units()];
            let h_shape = [batch, layer.output_size()];
            if state.c.shape() != c_shape {
                return Err(ShapeError {
                    what: format!("initial c of layer {index}"),
                    expected: c_shape.to_vec(),
                    got: state.c.shape().to_vec(),
                });
            }
            if state.h.shape() != h_shape {
                return Err(ShapeError {
                    what: format!("initial h of layer {index}"),
                    expected: h_shape.to_vec(),
                    got: state.h.shape().to_vec(),
                });
            }
        }
        input = layer.output_size();
    }
    if let Some(states) = seq.initial_state {
        if states.len() != layers.len() {
            return Err(ShapeError {
                what: "initial states".into(),
                expected: vec![layers.len()],
                got: vec![states.len()],
            });
        }
    }
    if let Some(mask) = &seq.mask {
        if mask.dim() != (batch, time) {
            return Err(ShapeError {
                what: "mask".into(),
                expected: vec![batch, time],
                got: mask.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// Run a stack of layers over a batch of sequences.
///
/// Layer `k + 1` reads layer `k`'s outputs. A mask applies to every layer:
/// at a masked step each layer carries its state and emits per
/// [`Sequence::masked_output`].
///
/// Per-step states are recorded and threads are chosen automatically
/// ([`RunOptions::default`]).
///
/// # Errors
/// A [`ShapeError`] when the layers, inputs, states or mask do not fit.
pub fn run<T: Real>(layers: &[Layer<T>], seq: &Sequence<T>) -> Result<RunOutput<T>, ShapeError> {
    run_with(layers, seq, &RunOptions::default())
}

/// [`run`] with explicit [`RunOptions`].
///
/// # Errors
/// A [`ShapeError`] when the layers, inputs, states or mask do not fit.
pub fn run_with<T: Real>(
    layers: &[Layer<T>],
    seq: &Sequence<T>,
    options: &RunOptions,
) -> Result<RunOutput<T>, ShapeError> {
    run_layers(layers, None, seq, options)
}

/// A stack of layers prepared for many runs: the AVX2 kernel's packed
/// weights (both matrices of every layer, in panels of one cache line per
/// row: 16 float32 or 8 float64 columns) are made in
/// the first run and kept for the next ones, as onnxruntime packs them once
/// per session. [`run`] and [`run_with`] pack them in every call.
///
/// The packing depends on how the units are split between threads, so a
/// run with another split (another thread count, or a batch size that
/// moves between the unit and the batch split) packs anew and keeps that
/// one instead. The results are those of [`run_with`], bit for bit. The
/// layers cannot change after `new`, so the kept packs cannot go stale.
/// A `Prepared` may be shared between threads; concurrent runs read the
/// same packs.
///
/// ```
/// use lstm_parity::lstm::{Layer, Prepared, Sequence};
/// use ndarray::{Array1, Array2, Array3};
///
/// // 3 inputs, 4 units.
/// let layer = Layer::<f32>::new(Array2::zeros((3, 16)), Array2::zeros((4, 16)), Array1::zeros(16));
/// let model = Prepared::new(vec![layer]);
/// let x = Array3::<f32>::ones((2, 5, 3));
/// for _ in 0..3 {
///     let out = model.run(&Sequence::new(x.view())).unwrap();
///     assert_eq!(out.outputs.dim(), (2, 5, 4));
/// }
/// ```
pub struct Prepared<T: Real> {
    layers: Vec<Layer<T>>,
    slots: Vec<PackSlot<T>>,
}

impl<T: Real> Prepared<T> {
    /// Prepare `layers` (nothing is packed until the first run).
    pub fn new(layers: Vec<Layer<T>>) -> Self {
        let slots = layers.iter().map(|_| PackSlot::default()).collect();
        Prepared { layers, slots }
    }

    /// The layers, as given.
    pub fn layers(&self) -> &[Layer<T>] {
        &self.layers
    }

    /// The layers back (the packed weights are dropped).
    pub fn into_layers(self) -> Vec<Layer<T>> {
        self.layers
    }

    /// [`run`] on these layers.
    ///
    /// # Errors
    /// A [`ShapeError`] when the layers, inputs, states or mask do not fit.
    pub fn run(&self, seq: &Sequence<T>) -> Result<RunOutput<T>, ShapeError> {
        self.run_with(seq, &RunOptions::default())
    }

    /// [`run_with`] on these layers.
    ///
    /// # Errors
    /// A [`ShapeError`] when the layers, inputs, states or mask do not fit.
    pub fn run_with(
        &self,
        seq: &Sequence<T>,
        options: &RunOptions,
    ) -> Result<RunOutput<T>, ShapeError> {
        run_layers(&self.layers, Some(&self.slots), seq, options)
    }
}

impl<T: Real> std::fmt::Debug for Prepared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

/// [`run_with`], with the packed weights of layer `k` kept in `slots[k]`
/// when given.
fn run_layers<T: Real>(
    layers: &[Layer<T>],
    slots: Option<&[PackSlot<T>]>,
    seq: &Sequence<T>,
    options: &RunOptions,
) -> Result<RunOutput<T>, ShapeError> {
    validate(layers, seq)?;
    let (batch, time, _) = seq.inputs.dim();
    // Inputs in processing order; a forward run reads the caller's array.
    let reversed;
    let mut x: ndarray::CowArray<T, ndarray::Ix3> = if seq.reverse {
        reversed = seq.inputs.slice(s![.., ..;-1, ..]).to_owned();
        reversed.view().into()
    } else {
        seq.inputs.view().into()
    };
    let mask: Option<Array2<bool>> = seq.mask.as_ref().map(|m| {
        if seq.reverse {
            m.slice(s![.., ..;-1]).to_owned()
        } else {
            m.to_owned()
        }
    });
    let mut final_state = Vec::with_capacity(layers.len());
    let mut trace = Vec::with_capacity(layers.len());
    for (index, layer) in layers.iter().enumerate() {
        let initial = match seq.initial_state {
            Some(states) => states[index].clone(),
            None => State::zeros(layer, batch),
        };
        let (outputs, state, steps) = run_layer(
            layer,
            x.view(),
            initial,
            mask.as_ref().map(|m| m.view()),
            seq.masked_output,
            options,
            layer_threads(
                batch,
                time,
                layer.input_size(),
                layer.units(),
                layer.output_size(),
                options.threads,
            ),
            slots.map(|slots| &slots[index]),
        );
        final_state.push(state);
        trace.extend(steps);
        x = outputs.into();
    }
    debug_assert_eq!(x.dim().1, time);
    Ok(RunOutput {
        outputs: x.into_owned(),
        final_state,
        trace,
    })
}
