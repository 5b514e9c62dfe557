//! The sequence runner: a stack of layers over a batch of sequences.
//!
//! The main path: the input projection of all time steps is one matrix
//! product, the recurrent product is one matrix product per step into a
//! buffer allocated once, and the gate activations are one fused pass over
//! that buffer.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};

use super::{Gate, Layer, Real, ShapeError};

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
    /// Per-step states of every layer.
    pub trace: Vec<StepTrace<T>>,
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
/// # Errors
/// A [`ShapeError`] when the layers, inputs, states or mask do not fit.
pub fn run<T: Real>(layers: &[Layer<T>], seq: &Sequence<T>) -> Result<RunOutput<T>, ShapeError> {
    validate(layers, seq)?;
    let (batch, time, _) = seq.inputs.dim();
    // Inputs and mask in processing order.
    let mut x: Array3<T> = if seq.reverse {
        seq.inputs.slice(s![.., ..;-1, ..]).to_owned()
    } else {
        seq.inputs.to_owned()
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
        );
        final_state.push(state);
        trace.push(steps);
        x = outputs;
    }
    debug_assert_eq!(x.dim().1, time);
    Ok(RunOutput {
        outputs: x,
        final_state,
        trace,
    })
}

/// One layer over inputs already in processing order.
fn run_layer<T: Real>(
    layer: &Layer<T>,
    x: ArrayView3<T>,
    initial: State<T>,
    mask: Option<ArrayView2<bool>>,
    masked_output: MaskedOutput,
) -> (Array3<T>, State<T>, StepTrace<T>) {
    let (batch, time, input) = x.dim();
    let units = layer.units();
    let out_size = layer.output_size();
    let gates_width = 4 * units;

    // Input projection for all steps at once: [batch * time, 4u], bias added.
    let x_flat = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((batch * time, input))
        .expect("standard layout reshapes");
    let mut xw = Array2::<T>::zeros((batch * time, gates_width));
    general_mat_mul(T::one(), &x_flat, &layer.w_x, T::zero(), &mut xw);
    xw.zip_mut_with(&layer.bias, |a, &b| *a = *a + b);
    let xw = xw
        .into_shape_with_order((batch, time, gates_width))
        .expect("contiguous reshape");

    let State { mut c, mut h } = initial;
    let mut gates = Array2::<T>::zeros((batch, gates_width));
    let mut m = Array2::<T>::zeros((batch, units)); // pre-projection output
    let mut projected = Array2::<T>::zeros((batch, out_size));
    let mut outputs = Array3::<T>::zeros((batch, time, out_size));
    let mut previous_output = Array2::<T>::zeros((batch, out_size));
    let mut trace = StepTrace {
        c: Array3::zeros((batch, time, units)),
        h: Array3::zeros((batch, time, out_size)),
    };
    let [ci, cf, cg, co] = Gate::ALL.map(|g| g.columns(units).start);

    for t in 0..time {
        general_mat_mul(T::one(), &h, &layer.w_h, T::zero(), &mut gates);
        gates.zip_mut_with(&xw.index_axis(Axis(1), t), |a, &b| *a = *a + b);
        for b in 0..batch {
            let active = mask.as_ref().is_none_or(|m| m[[b, t]]);
            if !active {
                continue;
            }
            let z = gates.row(b);
            let mut c_row = c.row_mut(b);
            let mut m_row = m.row_mut(b);
            for j in 0..units {
                let c_prev = c_row[j];
                let (pi, pf) = match &layer.peepholes {
                    Some(p) => (p.input[j] * c_prev, p.forget[j] * c_prev),
                    None => (T::zero(), T::zero()),
                };
                let i = layer.gate_activation.apply(z[ci + j] + pi);
                let f = layer
                    .gate_activation
                    .apply(z[cf + j] + layer.forget_bias + pf);
                let g = layer.cell_activation.apply(z[cg + j]);
                let mut c_new = f * c_prev + i * g;
                if let Some(clip) = layer.cell_clip {
                    c_new = c_new.max(-clip).min(clip);
                }
                let po = match &layer.peepholes {
                    Some(p) => p.output[j] * c_new,
                    None => T::zero(),
                };
                let o = layer.gate_activation.apply(z[co + j] + po);
                c_row[j] = c_new;
                m_row[j] = o * layer.output_activation.apply(c_new);
            }
        }
        match &layer.projection {
            None => copy_active_rows(&m, &mut h, mask.as_ref(), t),
            Some(p) => {
                general_mat_mul(T::one(), &m, &p.kernel, T::zero(), &mut projected);
                if let Some(clip) = p.clip {
                    projected.mapv_inplace(|v| v.max(-clip).min(clip));
                }
                copy_active_rows(&projected, &mut h, mask.as_ref(), t);
            }
        }
        for b in 0..batch {
            let active = mask.as_ref().is_none_or(|m| m[[b, t]]);
            let mut out = outputs.slice_mut(s![b, t, ..]);
            if active {
                out.assign(&h.row(b));
                previous_output.row_mut(b).assign(&h.row(b));
            } else if masked_output == MaskedOutput::RepeatPrevious {
                out.assign(&previous_output.row(b));
            }
        }
        trace.c.index_axis_mut(Axis(1), t).assign(&c);
        trace.h.index_axis_mut(Axis(1), t).assign(&h);
    }
    (outputs, State { c, h }, trace)
}

fn copy_active_rows<T: Real>(
    from: &Array2<T>,
    to: &mut Array2<T>,
    mask: Option<&ArrayView2<bool>>,
    t: usize,
) {
    match mask {
        None => to.assign(from),
        Some(mask) => {
            for b in 0..from.nrows() {
                if mask[[b, t]] {
                    to.row_mut(b).assign(&from.row(b));
                }
            }
        }
    }
}
