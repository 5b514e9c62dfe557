//! The slow, obvious `f64` LSTM: the oracle the fast path is tested against.
//!
//! Written for reading, not speed: plain loops over plain vectors, one
//! row, one step, one unit at a time, following the formula on
//! [`Layer`] line by line. It shares nothing with the main path
//! but the weight type and [`Activation::apply`](super::Activation::apply).

use ndarray::Array3;

use super::{Gate, Layer, MaskedOutput, RunOutput, Sequence, ShapeError, State, StepTrace};

/// Run a stack of layers like [`super::run`], in `f64`, the slow way.
///
/// # Errors
/// A [`ShapeError`] when the layers, inputs, states or mask do not fit.
pub fn run(layers: &[Layer<f64>], seq: &Sequence<f64>) -> Result<RunOutput<f64>, ShapeError> {
    run_steps(layers, seq, &step)
}

/// One step of one row of a layer: `(layer, x, c_prev, h_prev) -> (c, h)`.
pub(crate) type StepFn<'a> =
    dyn Fn(&Layer<f64>, &[f64], &[f64], &[f64]) -> (Vec<f64>, Vec<f64>) + 'a;

/// [`run`] with another step function (the emulated reduced precisions):
/// the order of steps, masking, reversal, states and traces are the same.
pub(crate) fn run_steps(
    layers: &[Layer<f64>],
    seq: &Sequence<f64>,
    step: &StepFn,
) -> Result<RunOutput<f64>, ShapeError> {
    super::runner::validate(layers, seq)?;
    let (batch, time, input) = seq.inputs.dim();

    // Processing order: step k reads input time index `source_time(k)`.
    let source_time = |k: usize| if seq.reverse { time - 1 - k } else { k };
    let mut layer_input: Vec<Vec<Vec<f64>>> = (0..batch)
        .map(|b| {
            (0..time)
                .map(|k| {
                    (0..input)
                        .map(|x| seq.inputs[[b, source_time(k), x]])
                        .collect()
                })
                .collect()
        })
        .collect();
    let active = |b: usize, k: usize| seq.mask.as_ref().is_none_or(|m| m[[b, source_time(k)]]);

    let mut final_state = Vec::new();
    let mut trace = Vec::new();
    for (index, layer) in layers.iter().enumerate() {
        let units = layer.units();
        let out_size = layer.output_size();
        let mut outputs = vec![vec![vec![0.0; out_size]; time]; batch];
        let mut trace_c = Array3::zeros((batch, time, units));
        let mut trace_h = Array3::zeros((batch, time, out_size));
        let mut last_c = Vec::new();
        let mut last_h = Vec::new();
        for b in 0..batch {
            let (mut c, mut h): (Vec<f64>, Vec<f64>) = match seq.initial_state {
                Some(states) => (
                    states[index].c.row(b).to_vec(),
                    states[index].h.row(b).to_vec(),
                ),
                None => (vec![0.0; units], vec![0.0; out_size]),
            };
            let mut previous_output = vec![0.0; out_size];
            for k in 0..time {
                if active(b, k) {
                    (c, h) = step(layer, &layer_input[b][k], &c, &h);
                    outputs[b][k] = h.clone();
                    previous_output = h.clone();
                } else if seq.masked_output == MaskedOutput::RepeatPrevious {
                    outputs[b][k] = previous_output.clone();
                }
                for j in 0..units {
                    trace_c[[b, k, j]] = c[j];
                }
                for j in 0..out_size {
                    trace_h[[b, k, j]] = h[j];
                }
            }
            last_c.extend(c);
            last_h.extend(h);
        }
        final_state.push(State {
            c: ndarray::Array2::from_shape_vec((batch, units), last_c)
                .expect("batch * units values"),
            h: ndarray::Array2::from_shape_vec((batch, out_size), last_h)
                .expect("batch * out values"),
        });
        trace.push(StepTrace {
            c: trace_c,
            h: trace_h,
        });
        layer_input = outputs;
    }
    let out_size = layers.last().map_or(0, |l| l.output_size());
    let flat: Vec<f64> = layer_input.into_iter().flatten().flatten().collect();
    Ok(RunOutput {
        outputs: Array3::from_shape_vec((batch, time, out_size), flat)
            .expect("batch * time * out values"),
        final_state,
        trace,
    })
}

/// One step of one row: returns the new `(c, h)`.
pub fn step(layer: &Layer<f64>, x: &[f64], c_prev: &[f64], h_prev: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let units = layer.units();
    let [i, f, g, o] = gates(layer, x, c_prev, h_prev);
    let c: Vec<f64> = (0..units)
        .map(|j| new_cell(layer, f[j], c_prev[j], i[j], g[j]))
        .collect();
    let m: Vec<f64> = (0..units)
        .map(|j| o[j] * layer.output_activation.apply_f64(c[j]))
        .collect();
    let h = match &layer.projection {
        None => m,
        Some(p) => (0..p.kernel.ncols())
            .map(|q| {
                let v: f64 = (0..units).map(|j| m[j] * p.kernel[[j, q]]).sum();
                p.clip.map_or(v, |clip| v.max(-clip).min(clip))
            })
            .collect(),
    };
    (c, h)
}

/// `c = f * c_prev + i * g`, clipped to `±cell_clip` when set.
fn new_cell(layer: &Layer<f64>, f: f64, c_prev: f64, i: f64, g: f64) -> f64 {
    let c = f * c_prev + i * g;
    layer.cell_clip.map_or(c, |clip| c.max(-clip).min(clip))
}

/// The activated gates `[i, f, g, o]` of one step of one row (`o` reads the
/// new, clipped cell state through its peephole).
pub fn gates(layer: &Layer<f64>, x: &[f64], c_prev: &[f64], h_prev: &[f64]) -> [Vec<f64>; 4] {
    let units = layer.units();
    // z = x @ w_x + h_prev @ w_h + bias, one gate column at a time.
    let z = |gate: Gate, j: usize| -> f64 {
        let col = gate.columns(units).start + j;
        let mut sum = layer.bias[col];
        for (r, xr) in x.iter().enumerate() {
            sum += xr * layer.w_x[[r, col]];
        }
        for (r, hr) in h_prev.iter().enumerate() {
            sum += hr * layer.w_h[[r, col]];
        }
        sum
    };
    let peep = |which: fn(&super::Peepholes<f64>) -> &ndarray::Array1<f64>, j: usize, c: f64| {
        layer.peepholes.as_ref().map_or(0.0, |p| which(p)[j] * c)
    };
    let act = layer.gate_activation;
    let i: Vec<f64> = (0..units)
        .map(|j| act.apply_f64(z(Gate::I, j) + peep(|p| &p.input, j, c_prev[j])))
        .collect();
    let f: Vec<f64> = (0..units)
        .map(|j| {
            act.apply_f64(z(Gate::F, j) + layer.forget_bias + peep(|p| &p.forget, j, c_prev[j]))
        })
        .collect();
    let g: Vec<f64> = (0..units)
        .map(|j| layer.cell_activation.apply_f64(z(Gate::G, j)))
        .collect();
    let o: Vec<f64> = (0..units)
        .map(|j| {
            let c = new_cell(layer, f[j], c_prev[j], i[j], g[j]);
            act.apply_f64(z(Gate::O, j) + peep(|p| &p.output, j, c))
        })
        .collect();
    [i, f, g, o]
}
