//! candle's LSTM (`candle_nn::rnn::LSTM`, CPU) as an lstm-parity [`Runner`].
//!
//! What candle computes (`candle-nn/src/rnn.rs`, `impl RNN for LSTM`): per
//! step, `z = (x @ w_ih^T + b_ih) + (h @ w_hh^T + b_hh)`, split into four
//! blocks **i, f, g, o** (the canonical order), `c = σ(f) * c + σ(i) *
//! tanh(g)`, `h = σ(o) * tanh(c)`, with `σ(x) = 1 / (1 + exp(-x))`.
//! `RNN::seq_init` runs it from a given state over `[batch, time, input]`,
//! first step to last, and returns the state after every step. One
//! `LSTM` is one layer.
//!
//! So a canonical step maps onto candle by:
//! * weights: `w_x` and `w_h` transposed; gate order unchanged;
//! * bias: the canonical bias in `b_ih` with `forget_bias` **folded** into
//!   its forget block (in `T`), no `b_hh`: candle has no run-time forget
//!   bias;
//! * a stack of layers: one candle `LSTM` per layer, each reading the
//!   previous layer's `h` sequence;
//! * traces and final states: the `LSTMState`s `seq_init` returns;
//! * a mask that hides no step, and `reverse` over one time step, compute
//!   what no mask and the forward direction compute: run as they are.
//!
//! Everything else a step can ask for is refused ([`unexpressible`]).

use std::collections::HashMap;

use candle_core::{Device, Tensor, WithDType};
use candle_nn::rnn::{LSTMConfig, LSTMState, LSTM, RNN};
use candle_nn::VarBuilder;
use lstm_parity::dialect::{DialectError, Runner, Step};
use lstm_parity::lstm::{Activation, Gate, Layer, Real, RunOutput, State, StepTrace};
use ndarray::{s, Array, Array3, ArrayBase, Data, Dimension, IxDyn};

/// The start of every refusal's message.
pub const REFUSAL: &str = "candle cannot express ";

/// candle's `LSTM` on the CPU, in `f32` or `f64`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CandleLstm;

impl<T: Real + WithDType> Runner<T> for CandleLstm {
    fn run_step(&mut self, step: &Step<T>) -> Result<RunOutput<T>, DialectError> {
        refuse_unexpressible(step)?;
        let mut x = tensor(&step.inputs)?;
        let mut out = RunOutput {
            outputs: Array3::zeros((0, 0, 0)),
            final_state: vec![],
            trace: vec![],
        };
        for (l, layer) in step.layers.iter().enumerate() {
            let lstm = candle_lstm(layer)?;
            let init = match &step.initial_state {
                Some(s) => LSTMState::new(tensor(&s[l].h)?, tensor(&s[l].c)?),
                None => lstm.zero_state(step.inputs.dim().0).map_err(candle)?,
            };
            let states = lstm.seq_init(&x, &init).map_err(candle)?;
            x = lstm.states_to_tensor(&states).map_err(candle)?;
            record(&mut out, &states)?;
        }
        out.outputs = array(&x)?;
        Ok(out)
    }
}

/// One canonical layer as a candle `LSTM`, built through a `VarBuilder`
/// over the converted tensors: `weight_ih_l0` = `w_x^T` `[4*units, input]`,
/// `weight_hh_l0` = `w_h^T` `[4*units, units]`, `bias_ih_l0` = `bias` with
/// `forget_bias` added to the forget block; no `bias_hh_l0`.
///
/// # Errors
/// A [`DialectError`] when candle rejects the tensors.
pub fn candle_lstm<T: Real + WithDType>(layer: &Layer<T>) -> Result<LSTM, DialectError> {
    let units = layer.units();
    let mut bias = layer.bias.clone();
    bias.slice_mut(s![Gate::F.columns(units)])
        .mapv_inplace(|b| b + layer.forget_bias);
    let vars = HashMap::from([
        ("weight_ih_l0".to_string(), tensor(&layer.w_x.t())?),
        ("weight_hh_l0".to_string(), tensor(&layer.w_h.t())?),
        ("bias_ih_l0".to_string(), tensor(&bias)?),
    ]);
    let vb = VarBuilder::from_tensors(vars, T::DTYPE, &Device::Cpu);
    let config = LSTMConfig {
        b_hh_init: None,
        ..LSTMConfig::default()
    };
    LSTM::new(layer.input_size(), units, config, vb).map_err(candle)
}

/// What `step` asks for that candle's LSTM does not compute: each item is
/// the feature and why, from candle's source (no "; " in either: the
/// refusal message joins them with it). Empty when candle can run it.
pub fn unexpressible<T: Real>(step: &Step<T>) -> Vec<(&'static str, &'static str)> {
    let any = |f: fn(&Layer<T>) -> bool| step.layers.iter().any(f);
    let time = step.inputs.dim().1;
    let checks: [(bool, &str, &str); 7] = [
        (any(|l| l.peepholes.is_some()), "peepholes",
            "LSTM::step computes the gates from x and h only"),
        (any(|l| l.cell_clip.is_some()), "cell_clip",
            "LSTM::step never clips the cell state"),
        (any(|l| l.projection.is_some()), "projection",
            "LSTM has no projection weight: h = o * tanh(c), of size hidden_dim"),
        (any(|l| (l.gate_activation, l.cell_activation, l.output_activation)
            != (Activation::Sigmoid, Activation::Tanh, Activation::Tanh)), "activations",
            "LSTM::step hard-codes sigmoid gates and tanh for the cell candidate and the output"),
        (step.reverse && time > 1, "reverse",
            "RNN::seq_init always runs first step to last, and Direction::Backward only names the weights `*_reverse`"),
        (step.mask.as_ref().is_some_and(|m| m.iter().any(|&v| !v)), "mask",
            "RNN::seq_init computes every step of every row: it takes no mask or sequence lengths"),
        (time == 0, "zero_length",
            "RNN::seq_init returns no state for an empty sequence, so there is no final state"),
    ];
    checks
        .into_iter()
        .filter(|c| c.0)
        .map(|(_, f, why)| (f, why))
        .collect()
}

/// `Err` with every reason from [`unexpressible`], as
/// `candle cannot express FEATURE (WHY); FEATURE (WHY)`.
fn refuse_unexpressible<T: Real>(step: &Step<T>) -> Result<(), DialectError> {
    let reasons = unexpressible(step);
    if reasons.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = reasons
        .iter()
        .map(|(f, why)| format!("{f} ({why})"))
        .collect();
    Err(DialectError::Invalid(format!(
        "{REFUSAL}{}",
        list.join("; ")
    )))
}

/// One layer's states after each step, as `seq_init` returns them, pushed
/// as its final state and its trace.
fn record<T: WithDType>(out: &mut RunOutput<T>, states: &[LSTMState]) -> Result<(), DialectError> {
    let last = states.last().expect("an empty sequence is refused");
    let stack = |f: fn(&LSTMState) -> &Tensor| {
        Tensor::stack(&states.iter().map(f).collect::<Vec<_>>(), 1).map_err(candle)
    };
    out.final_state.push(State {
        c: array(last.c())?,
        h: array(last.h())?,
    });
    out.trace.push(StepTrace {
        c: array(&stack(LSTMState::c)?)?,
        h: array(&stack(LSTMState::h)?)?,
    });
    Ok(())
}

fn candle(e: candle_core::Error) -> DialectError {
    DialectError::Invalid(format!("candle: {e}"))
}

/// An ndarray array as a CPU tensor of the same shape (logical order).
fn tensor<T: WithDType, S: Data<Elem = T>, D: Dimension>(
    a: &ArrayBase<S, D>,
) -> Result<Tensor, DialectError> {
    Tensor::from_vec(
        a.iter().copied().collect::<Vec<T>>(),
        a.shape(),
        &Device::Cpu,
    )
    .map_err(candle)
}

/// A tensor as an ndarray array of rank `D`.
fn array<T: WithDType, D: Dimension>(t: &Tensor) -> Result<Array<T, D>, DialectError> {
    let values = t
        .flatten_all()
        .and_then(|f| f.to_vec1::<T>())
        .map_err(candle)?;
    Array::from_shape_vec(IxDyn(t.dims()), values)
        .and_then(|a| a.into_dimensionality::<D>())
        .map_err(|e| DialectError::Invalid(format!("candle result {:?}: {e}", t.dims())))
}
