//! The mistaken LSTM: the Rust LSTM with one known mistake, as a
//! [`Runner`].
//!
//! Every trap this project knows of is one [`Mistake`]. The diagnosis
//! re-runs a failing case with each plausible mistake and names the one
//! whose outputs the implementation's match; the canary tests run every
//! canary case with the mistakes it exists to catch and require a
//! failure; the diagnostics tests require that each mistake is named.
//! One definition serves all three, so a trap the tests prove is the trap
//! the diagnosis names.
//!
//! Most mistakes change the canonical step before the Rust LSTM runs it
//! (a gate order, a forget bias, a direction, a masking rule), or change
//! its results after (outputs in the other time order, states swapped).
//! The few that live inside one time step (which cell state a peephole
//! reads, where a clip applies) run a plain per-element loop that has no
//! masking; [`Mistake::misread`] covers mistakes in reading the case
//! itself (what no runner sees).

use ndarray::{s, Array2, Array3, Axis};

use super::case::Case;
use crate::dialect::{length_mask, reverse_sequence, DialectError, Half, Runner, RustLstm, Step};
use crate::lstm::{Activation, Gate, Layer, MaskedOutput, Real, RunOutput, State, StepTrace};
use crate::tensor::Tensor;

/// One known mistake.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mistake {
    /// Gate `k` computed from the weights of canonical gate `perm[k]`: the
    /// gate blocks read in another framework's order.
    GateOrder([Gate; 4]),
    /// `forget_bias` changed per layer.
    ForgetBias(ForgetBiasChange),
    /// Every step run in the other direction, outputs in its processing order.
    OtherDirection,
    /// Every step run in the other direction, outputs in the other time order.
    OtherDirectionOtherOrder,
    /// Reverse steps run forward: the direction ignored (a `go_backwards`
    /// layer, a `reverse` node, the backward half of a bidirectional pair).
    ReverseRunForward,
    /// Reverse steps' outputs returned in input time order (and their
    /// per-step states too, when `traces`).
    ReverseOutputsInInputOrder {
        /// Whether the per-step states are flipped too.
        traces: bool,
    },
    /// The backward pass reverses whole rows, padding included, instead of
    /// each row's valid steps.
    ReverseWholeRows,
    /// Zeros instead of the previous output at masked steps, or the reverse.
    OtherMaskedOutput,
    /// The mask not applied.
    MaskIgnored,
    /// A Masking layer that masks a step when any feature (not all) is 0.
    MaskIfAnyFeatureIsZero,
    /// Masked steps before a row's first computed step output the initial
    /// `h` instead of zeros (where masked steps repeat the previous output).
    LeadingMaskedOutputInitialH,
    /// A row with no computed step ends in zeros instead of its initial state.
    ZeroLengthDropsInitialState,
    /// sigmoid, tanh, tanh computed whatever activations the step asks for.
    ActivationsIgnored,
    /// The other Keras's `hard_sigmoid`.
    OtherHardSigmoid,
    /// Peepholes not applied.
    PeepholesIgnored,
    /// The output gate's peephole reads the previous cell state.
    OutputPeepholeOnOldCell,
    /// The output gate's peephole reads the cell state before clipping.
    ClipAfterOutputPeephole,
    /// The cell state not clipped.
    NoCellClip,
    /// A clip of 0 taken as "clip to 0" where it means "no clip".
    ZeroClipClips,
    /// A clip of 3.0 (the block ops' default) applied where there is none.
    DefaultClipThree,
    /// `proj_clip` applied to the output before projecting it.
    ProjClipBeforeProjection,
    /// Final `h` and `c` swapped.
    StateOrderSwapped,
    /// A one-tensor state (TF1 `state_is_tuple=False`, `[c, h]`) split and
    /// joined as `[h, c]`: initial and final `c` and `h` swapped, in every
    /// layer where they have the same width.
    ConcatenatedStateAsHC,
    /// Every call of a stateful layer starts from zeros.
    StatefulReset,
    /// Weights, inputs and initial states rounded to a reduced precision
    /// before the run, outputs and final states after it: what a kernel
    /// computing in that precision returns.
    ReducedPrecision(Precision),
    /// Every output off by a constant: imprecise, no known trap.
    OutputsOffBy(f64),
    /// One output NaN.
    NanInOutput,
    /// The case read with `seq_len_max` ignored (every step computed).
    IgnoreSeqLenMax,
    /// The case read with `time_major` ignored (time-major inputs read as
    /// batch-major).
    IgnoreTimeMajor,
}

/// How a [`Mistake::ForgetBias`] changes `forget_bias`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForgetBiasChange {
    /// Not added.
    Dropped,
    /// Added twice (folded into the bias and added again at run time).
    Doubled,
    /// 1.0 added at run time where there is none (Keras `unit_forget_bias`
    /// taken for a run-time bias, or a default `forget_bias=1.0`).
    PlusOne,
    /// 1.0 missing.
    MinusOne,
}

impl ForgetBiasChange {
    /// Every change, in the order the diagnosis tries them.
    pub const ALL: [ForgetBiasChange; 4] = [
        ForgetBiasChange::Dropped,
        ForgetBiasChange::Doubled,
        ForgetBiasChange::PlusOne,
        ForgetBiasChange::MinusOne,
    ];

    /// The forget bias computed instead of `fb`.
    pub fn apply(self, fb: f64) -> f64 {
        match self {
            ForgetBiasChange::Dropped => 0.0,
            ForgetBiasChange::Doubled => 2.0 * fb,
            ForgetBiasChange::PlusOne => fb + 1.0,
            ForgetBiasChange::MinusOne => fb - 1.0,
        }
    }
}

pub use crate::lstm::Precision;

/// The Rust LSTM with one [`Mistake`].
#[derive(Clone, Copy, Debug)]
pub struct MistakenLstm(pub Mistake);

impl Mistake {
    /// The case as an implementation making this mistake reads it: only
    /// [`Mistake::IgnoreSeqLenMax`] and [`Mistake::IgnoreTimeMajor`]
    /// change it; run the result with [`MistakenLstm`].
    ///
    /// # Errors
    /// A [`DialectError`] when the changed model does not parse.
    pub fn misread(self, case: &Case) -> Result<Case, DialectError> {
        let mut case = case.clone();
        match self {
            Mistake::IgnoreSeqLenMax => {
                if let Some(x) = case.inputs.get("x") {
                    let time = x.shape().first().copied().unwrap_or(0);
                    let time = i32::try_from(time).unwrap_or(i32::MAX);
                    case.inputs.insert(
                        "seq_len_max".into(),
                        Tensor::I32(ndarray::arr0(time).into_dyn()),
                    );
                }
            }
            Mistake::IgnoreTimeMajor => {
                case.manifest.model["time_major"] = false.into();
                case.model =
                    crate::dialect::Model::parse(&case.manifest.dialect, &case.manifest.model)?;
            }
            _ => {}
        }
        Ok(case)
    }
}

/// Swap every step's `reverse`-relevant time axis of the outputs, and of
/// the per-step states when `traces`.
fn flip_time<T: Real>(run: &mut RunOutput<T>, traces: bool) {
    let flip = |a: &mut Array3<T>| {
        a.invert_axis(Axis(1));
        *a = a.as_standard_layout().into_owned();
    };
    flip(&mut run.outputs);
    if traces {
        for tr in &mut run.trace {
            flip(&mut tr.c);
            flip(&mut tr.h);
        }
    }
}

/// Per row of `step`, how many time steps it computes.
fn row_lengths<T>(step: &Step<T>) -> Vec<usize> {
    let (batch, time, _) = step.inputs.dim();
    match &step.mask {
        Some(m) => m
            .rows()
            .into_iter()
            .map(|r| r.iter().filter(|&&v| v).count())
            .collect(),
        None => vec![time; batch],
    }
}

/// `layer` with gate `k`'s weights taken from canonical gate `perm[k]`
/// (peepholes and `forget_bias` stay with their gates).
pub fn permute_gates<T: Real>(layer: &Layer<T>, perm: [Gate; 4]) -> Layer<T> {
    let units = layer.units();
    let mut out = layer.clone();
    for (k, from) in perm.iter().enumerate() {
        let to = Gate::ALL[k].columns(units);
        let src = from.columns(units);
        out.w_x
            .slice_mut(s![.., to.clone()])
            .assign(&layer.w_x.slice(s![.., src.clone()]));
        out.w_h
            .slice_mut(s![.., to.clone()])
            .assign(&layer.w_h.slice(s![.., src.clone()]));
        out.bias
            .slice_mut(s![to])
            .assign(&layer.bias.slice(s![src]));
    }
    out
}

/// The 24 orders of the four gates, identity first.
pub fn permutations() -> Vec<[Gate; 4]> {
    let mut out = Vec::new();
    let g = Gate::ALL;
    for a in 0..4 {
        for b in 0..4 {
            for c in 0..4 {
                for d in 0..4 {
                    let idx = [a, b, c, d];
                    let mut seen = [false; 4];
                    if idx.iter().all(|&i| !std::mem::replace(&mut seen[i], true)) {
                        out.push([g[a], g[b], g[c], g[d]]);
                    }
                }
            }
        }
    }
    out
}

impl<T: Real> Runner<T> for MistakenLstm {
    fn run_step(&mut self, step: &Step<T>) -> Result<RunOutput<T>, DialectError> {
        let mut step = step.clone();
        let original_reverse = step.reverse;
        let lengths = row_lengths(&step);
        let round = |p: Precision, v: T| T::from_f64_lossy(p.round(v.widen()));
        match self.0 {
            Mistake::GateOrder(perm) => {
                for layer in &mut step.layers {
                    *layer = permute_gates(layer, perm);
                }
            }
            Mistake::ForgetBias(change) => {
                for layer in &mut step.layers {
                    layer.forget_bias = T::from_f64_lossy(change.apply(layer.forget_bias.widen()));
                }
            }
            Mistake::OtherDirection | Mistake::OtherDirectionOtherOrder => {
                step.reverse = !step.reverse;
            }
            Mistake::ReverseRunForward => step.reverse = false,
            Mistake::ReverseWholeRows
                if step.bidirectional == Some(Half::Backward) && !step.reverse =>
            {
                // A backward half the dialect runs forward over each row's
                // valid steps reversed: undo that per-row reversal, then
                // reverse whole rows.
                let original = reverse_sequence(step.inputs.view(), Some(&lengths));
                let mut whole = original;
                whole.invert_axis(Axis(1));
                step.inputs = whole.as_standard_layout().into_owned();
                let mut flipped = length_mask(&lengths, step.inputs.dim().1);
                flipped.invert_axis(Axis(1));
                step.mask = Some(flipped.as_standard_layout().into_owned());
            }
            Mistake::OtherMaskedOutput => {
                step.masked_output = match step.masked_output {
                    MaskedOutput::Zero => MaskedOutput::RepeatPrevious,
                    MaskedOutput::RepeatPrevious => MaskedOutput::Zero,
                };
            }
            Mistake::MaskIgnored => step.mask = None,
            Mistake::MaskIfAnyFeatureIsZero => {
                let (batch, time, _) = step.inputs.dim();
                step.mask = Some(Array2::from_shape_fn((batch, time), |(b, t)| {
                    step.inputs
                        .slice(s![b, t, ..])
                        .iter()
                        .all(|&v| v != T::zero())
                }));
            }
            Mistake::ActivationsIgnored => {
                for l in &mut step.layers {
                    l.gate_activation = Activation::Sigmoid;
                    l.cell_activation = Activation::Tanh;
                    l.output_activation = Activation::Tanh;
                }
            }
            Mistake::OtherHardSigmoid => {
                for l in &mut step.layers {
                    l.gate_activation = match l.gate_activation {
                        Activation::HardSigmoidLinear => Activation::HardSigmoidRelu6,
                        Activation::HardSigmoidRelu6 => Activation::HardSigmoidLinear,
                        other => other,
                    };
                }
            }
            Mistake::PeepholesIgnored => step.layers.iter_mut().for_each(|l| l.peepholes = None),
            Mistake::NoCellClip => step.layers.iter_mut().for_each(|l| l.cell_clip = None),
            Mistake::ZeroClipClips => step
                .layers
                .iter_mut()
                .for_each(|l| l.cell_clip = Some(l.cell_clip.unwrap_or(T::zero()))),
            Mistake::DefaultClipThree => step.layers.iter_mut().for_each(|l| {
                l.cell_clip = Some(l.cell_clip.unwrap_or(T::from_f64_lossy(3.0)));
            }),
            Mistake::StatefulReset
                if step.name.starts_with("call/") && !step.name.starts_with("call/0/") =>
            {
                step.initial_state = None;
            }
            Mistake::ReducedPrecision(p) => {
                let r = |v: &mut T| *v = round(p, *v);
                step.inputs.iter_mut().for_each(r);
                for l in &mut step.layers {
                    l.w_x.iter_mut().for_each(r);
                    l.w_h.iter_mut().for_each(r);
                    l.bias.iter_mut().for_each(r);
                }
                for st in step.initial_state.iter_mut().flatten() {
                    st.c.iter_mut().for_each(r);
                    st.h.iter_mut().for_each(r);
                }
            }
            Mistake::ConcatenatedStateAsHC => {
                for st in step.initial_state.iter_mut().flatten() {
                    if st.c.dim() == st.h.dim() {
                        std::mem::swap(&mut st.c, &mut st.h);
                    }
                }
            }
            Mistake::OutputPeepholeOnOldCell
            | Mistake::ClipAfterOutputPeephole
            | Mistake::ProjClipBeforeProjection => return within_step(&step, self.0),
            _ => {}
        }
        let mut run = RustLstm.run_step(&step)?;
        match self.0 {
            Mistake::OtherDirectionOtherOrder => flip_time(&mut run, true),
            Mistake::ReverseOutputsInInputOrder { traces } if original_reverse => {
                flip_time(&mut run, traces);
            }
            Mistake::LeadingMaskedOutputInitialH
                if step.masked_output == MaskedOutput::RepeatPrevious =>
            {
                if let (Some(mask), Some(initial)) = (&step.mask, &step.initial_state) {
                    let time = mask.ncols();
                    let h0 = &initial[initial.len() - 1].h;
                    for (b, row) in mask.rows().into_iter().enumerate() {
                        // Processing order k reads input time `source(k)`.
                        let source = |k: usize| if step.reverse { time - 1 - k } else { k };
                        for k in (0..time).take_while(|&k| !row[source(k)]) {
                            run.outputs.slice_mut(s![b, k, ..]).assign(&h0.row(b));
                        }
                    }
                }
            }
            Mistake::ZeroLengthDropsInitialState => {
                for (b, _) in lengths.iter().enumerate().filter(|(_, &n)| n == 0) {
                    for st in &mut run.final_state {
                        st.c.row_mut(b).fill(T::zero());
                        st.h.row_mut(b).fill(T::zero());
                    }
                }
            }
            Mistake::StateOrderSwapped | Mistake::ConcatenatedStateAsHC => {
                for st in &mut run.final_state {
                    if st.c.dim() == st.h.dim() {
                        std::mem::swap(&mut st.c, &mut st.h);
                    }
                }
            }
            Mistake::ReducedPrecision(p) => {
                let r = |v: &mut T| *v = round(p, *v);
                run.outputs.iter_mut().for_each(r);
                for st in &mut run.final_state {
                    st.c.iter_mut().for_each(r);
                    st.h.iter_mut().for_each(r);
                }
                for tr in &mut run.trace {
                    tr.c.iter_mut().for_each(r);
                    tr.h.iter_mut().for_each(r);
                }
            }
            Mistake::OutputsOffBy(d) => {
                let d = T::from_f64_lossy(d);
                run.outputs.mapv_inplace(|v| v + d);
            }
            Mistake::NanInOutput => {
                if let Some(v) = run.outputs.iter_mut().next() {
                    *v = T::nan();
                }
            }
            _ => {}
        }
        Ok(run)
    }
}

/// A plain LSTM (no mask) with a mistake inside one time step: which cell
/// state the output peephole reads, or where a clip applies.
fn within_step<T: Real>(step: &Step<T>, mistake: Mistake) -> Result<RunOutput<T>, DialectError> {
    if step.mask.is_some() {
        return Err(DialectError::Invalid(format!(
            "the mistake {mistake:?} is modelled for steps without a mask"
        )));
    }
    let (batch, time, _) = step.inputs.dim();
    let mut x = step.inputs.clone();
    if step.reverse {
        x.invert_axis(Axis(1));
    }
    let clip = |v: T, at: Option<T>| at.map_or(v, |cl| v.max(-cl).min(cl));
    let mut final_state = Vec::new();
    let mut trace = Vec::new();
    for (k, layer) in step.layers.iter().enumerate() {
        let units = layer.units();
        let init = step
            .initial_state
            .as_ref()
            .map_or_else(|| State::zeros(layer, batch), |s| s[k].clone());
        let (mut c, mut h) = (init.c, init.h);
        let mut outputs = Array3::zeros((batch, time, layer.output_size()));
        let mut tr = StepTrace {
            c: Array3::zeros((batch, time, units)),
            h: Array3::zeros((batch, time, layer.output_size())),
        };
        let peep = |which: usize, j: usize, v: T| {
            layer.peepholes.as_ref().map_or(T::zero(), |p| {
                [&p.input, &p.forget, &p.output][which][j] * v
            })
        };
        for t in 0..time {
            let z = x.index_axis(Axis(1), t).dot(&layer.w_x) + h.dot(&layer.w_h) + &layer.bias;
            let col = |g: Gate, j: usize| g.columns(units).start + j;
            let mut m = Array2::zeros((batch, units));
            let mut c_new = Array2::zeros((batch, units));
            for b in 0..batch {
                for j in 0..units {
                    let act = layer.gate_activation;
                    let c_prev = c[[b, j]];
                    let i = act.apply(z[[b, col(Gate::I, j)]] + peep(0, j, c_prev));
                    let f =
                        act.apply(z[[b, col(Gate::F, j)]] + layer.forget_bias + peep(1, j, c_prev));
                    let g = layer.cell_activation.apply(z[[b, col(Gate::G, j)]]);
                    let unclipped = f * c_prev + i * g;
                    let clipped = clip(unclipped, layer.cell_clip);
                    let seen = match mistake {
                        Mistake::OutputPeepholeOnOldCell => c_prev,
                        Mistake::ClipAfterOutputPeephole => unclipped,
                        _ => clipped,
                    };
                    let o = act.apply(z[[b, col(Gate::O, j)]] + peep(2, j, seen));
                    c_new[[b, j]] = clipped;
                    m[[b, j]] = o * layer.output_activation.apply(clipped);
                }
            }
            c = c_new;
            h = match &layer.projection {
                None => m,
                Some(p) if mistake == Mistake::ProjClipBeforeProjection => {
                    m.mapv(|v| clip(v, p.clip)).dot(&p.kernel)
                }
                Some(p) => m.dot(&p.kernel).mapv(|v| clip(v, p.clip)),
            };
            outputs.index_axis_mut(Axis(1), t).assign(&h);
            tr.c.index_axis_mut(Axis(1), t).assign(&c);
            tr.h.index_axis_mut(Axis(1), t).assign(&h);
        }
        final_state.push(State { c, h });
        trace.push(tr);
        x = outputs;
    }
    Ok(RunOutput {
        outputs: x,
        final_state,
        trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_24_gate_orders_identity_first() {
        let p = permutations();
        assert_eq!(p.len(), 24);
        assert_eq!(p[0], Gate::ALL);
        let mut sorted: Vec<_> = p.iter().map(|o| o.map(|g| g as usize)).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 24);
    }

    #[test]
    fn reduced_precisions_round_to_their_mantissa() {
        // 1 + 2^-9 is between bfloat16 neighbours 1 and 1 + 2^-7 (ties to 1);
        // float16 holds it exactly.
        let v = 1.0 + 2f64.powi(-9);
        assert_eq!(Precision::BFloat16.round(v), 1.0);
        assert_eq!(Precision::Float16.round(v), v);
        assert_eq!(Precision::Float16.round(1.0 + 2f64.powi(-12)), 1.0);
    }
}
