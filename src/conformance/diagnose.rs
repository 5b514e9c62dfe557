//! Where a failing implementation parts from the truth, and which known
//! trap the pattern fits.
//!
//! Three kinds of evidence, from cheapest to most telling:
//!
//! * **Step divergence**: each canonical step the implementation computed is
//!   compared with the Rust LSTM's run of the same step; the first time
//!   step, layer, row and unit where `c` or `h` leaves tolerance is reported
//!   with both values (from the per-step traces when the implementation
//!   wrote them, else from `y` and the final states). At that step the
//!   cell state is also tested for a constant offset in the forget gate's
//!   pre-activation (the `forget_bias` signature).
//! * **Gate divergence**: where a case records the gates (the block ops'
//!   `i`, `f`, `o`, `ci`, `co`), which gate leaves tolerance first, and
//!   whether it is the only one.
//! * **Hints**: the Rust LSTM is re-run with one known mistake at a time
//!   (the 23 other gate orders, `forget_bias` dropped/doubled/±1, the
//!   other direction, outputs in the other time order, the other masking
//!   rule, the mask ignored); a mistake whose outputs match the
//!   implementation's within the `default` tolerance names the trap.
//!
//! This module knows no framework: it sees canonical steps, native output
//! names, and (for wording only) the layout's gate names.

use ndarray::{s, Array2, ArrayD, Axis, Dimension};
use serde::Serialize;

use super::case::{Case, ExpectedOutput};
use super::compare::{compare, resolve};
use super::tolerance::{
    Tolerance, FORGET_OFFSET_MIN, FORGET_OFFSET_MIN_C_PREV, FORGET_OFFSET_SPREAD,
};
use crate::dialect::layout::Layout;
use crate::dialect::{DialectError, Outputs, Runner, RustLstm, Step};
use crate::lstm::{self, Activation, Gate, Layer, MaskedOutput, Real, RunOutput, State};

/// Everything known about why a case failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diagnosis {
    /// Per step that differs from the Rust LSTM's run of it: where first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepDivergence>,
    /// The first recorded gate out of tolerance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateDivergence>,
    /// Known traps whose pattern fits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<Hint>,
}

impl Diagnosis {
    /// Whether there is nothing to say.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.gate.is_none() && self.hints.is_empty()
    }
}

/// Where one step's results first leave tolerance against the Rust LSTM.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepDivergence {
    /// The step's name (`main`, `fw`, `bw`, ...).
    pub step: String,
    /// `c` or `h`.
    pub state: &'static str,
    /// Where it was seen: `trace` (per-step states), `y` (the last layer's
    /// output) or `final` (the state after the last step).
    pub source: &'static str,
    /// The layer in the step's stack.
    pub layer: usize,
    /// The time step in processing order; `None` for a final state.
    pub time: Option<usize>,
    /// The batch row.
    pub batch: usize,
    /// The unit.
    pub unit: usize,
    /// The implementation's value.
    pub actual: f64,
    /// The Rust LSTM's value (float64 run).
    pub expected: f64,
    /// A constant offset in the forget gate's pre-activation that explains
    /// the implementation's cell state at this step, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forget_offset: Option<f64>,
}

/// The first recorded gate out of tolerance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateDivergence {
    /// The gate output's name (`f`, `ci`, ...).
    pub gate: String,
    /// The time step.
    pub time: usize,
    /// The batch row.
    pub batch: usize,
    /// The unit.
    pub unit: usize,
    /// Computed.
    pub actual: f64,
    /// Expected.
    pub expected: f64,
    /// Every gate (of `i`, `f`, `o`, `ci`) out of tolerance at that step.
    pub gates_out: Vec<String>,
}

/// A known trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trap {
    /// Gate blocks read in another order.
    GateOrder,
    /// `forget_bias` dropped, added twice, or added where there is none.
    ForgetBias,
    /// `go_backwards`/`reverse`: the other direction or the other output order.
    ReverseOrder,
    /// Masked steps: zeros instead of the previous output (or the reverse),
    /// or the mask ignored.
    MaskingRule,
}

/// A trap whose pattern the failing results fit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hint {
    /// Which trap.
    pub trap: Trap,
    /// What matched, in the implementation's terms.
    pub message: String,
}

/// What to diagnose.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiagnoseOptions {
    /// Compare each step with the Rust LSTM and try the known mistakes
    /// (for an external implementation; pointless for the Rust LSTM itself).
    pub external: bool,
    /// The layout the implementation read, for naming gates in hints.
    pub layout: Option<Layout>,
    /// The runner fills the per-step states it was not given with NaN (the
    /// gate's output reader does): the diagnosis then skips states holding
    /// NaN instead of reporting them as the implementation's. The verdict
    /// never reads NaN this way (see `check::check_runner_except`).
    pub nan_means_not_written: bool,
}

/// Diagnose a failed case. `outputs` are the native outputs computed from
/// the implementation's `steps` (each with its result); `compared` the
/// expected outputs that were compared.
pub fn diagnose<T: Real>(
    case: &Case,
    outputs: &Outputs<T>,
    steps: &[(Step<T>, RunOutput<T>)],
    compared: &[String],
    tolerance: &Tolerance,
    options: DiagnoseOptions,
) -> Diagnosis {
    let mut d = Diagnosis {
        gate: gate_divergence(case, outputs, tolerance),
        ..Diagnosis::default()
    };
    if options.external {
        d.steps = steps
            .iter()
            .filter_map(|(step, actual)| step_divergence(step, actual))
            .collect();
        d.hints = hints(case, outputs, steps, compared, options.layout);
        if !d.hints.iter().any(|h| h.trap == Trap::ForgetBias) {
            if let Some((s, offset)) = d.steps.iter().find_map(|s| s.forget_offset.map(|o| (s, o)))
            {
                d.hints.push(Hint {
                    trap: Trap::ForgetBias,
                    message: format!(
                        "forget_bias: the cell state where step {} first parts (layer {}) is explained by a constant offset of {offset:+.3} in the forget gate's pre-activation",
                        s.step, s.layer
                    ),
                });
            }
        }
    }
    d
}

// ---------------------------------------------------------------------------
// Step divergence.

/// `step` in another float type (exact when widening).
pub fn cast_step<T: Real, U: Real>(step: &Step<T>) -> Step<U> {
    let c = |v: &T| U::from_f64_lossy(v.widen());
    Step {
        name: step.name.clone(),
        layers: step.layers.iter().map(Layer::cast).collect(),
        inputs: step.inputs.map(c),
        initial_state: step.initial_state.as_ref().map(|states| {
            states
                .iter()
                .map(|s| State {
                    c: s.c.map(c),
                    h: s.h.map(c),
                })
                .collect()
        }),
        mask: step.mask.clone(),
        masked_output: step.masked_output,
        reverse: step.reverse,
        depends_on_earlier_steps: step.depends_on_earlier_steps,
    }
}

/// The Rust LSTM's run of `step` in `T` and in `f64`.
fn reference_runs<T: Real>(step: &Step<T>) -> Option<(RunOutput<T>, RunOutput<f64>)> {
    let ours = RustLstm.run_step(step).ok()?;
    let wide = RustLstm.run_step(&cast_step::<T, f64>(step)).ok()?;
    Some((ours, wide))
}

fn expected_of<T: Real>(ours: &ArrayD<T>, wide: &ArrayD<f64>) -> ExpectedOutput {
    ExpectedOutput {
        float32: ours.mapv(|v| v.widen() as f32),
        float64: Some(wide.clone()),
    }
}

/// The first `[batch, time, unit]` element of `actual` out of the
/// `default` bound around the reference, by time then row then unit.
fn first_out<T: Real>(
    actual: &ArrayD<T>,
    ours: &ArrayD<T>,
    wide: &ArrayD<f64>,
) -> Option<(Vec<usize>, f64, f64)> {
    if actual.shape() != wide.shape() || actual.iter().any(|v| v.is_nan()) {
        return None;
    }
    let (reference, _, bound) = resolve::<T>(&Tolerance::Default, &expected_of(ours, wide));
    let mut best: Option<(Vec<usize>, f64, f64)> = None;
    for ((index, &a), &e) in actual.indexed_iter().zip(reference.iter()) {
        let a64 = a.widen();
        let err = (a64 - e).abs();
        let ulps = a.ulps(T::from_f64_lossy(e));
        if bound.admits(err, e, ulps, a64.to_bits() == e.to_bits()) {
            continue;
        }
        let idx = index.slice().to_vec();
        let key = |i: &[usize]| -> Vec<usize> {
            if i.len() == 3 {
                vec![i[1], i[0], i[2]]
            } else {
                i.to_vec()
            }
        };
        if best.as_ref().is_none_or(|(b, _, _)| key(&idx) < key(b)) {
            best = Some((idx, a64, e));
        }
    }
    best
}

/// Whether two arrays hold the same bits.
fn same_bits<T: Real>(a: &ndarray::Array3<T>, b: &ndarray::Array3<T>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.widen().to_bits() == y.widen().to_bits())
}

/// Where `actual` (an implementation's result of `step`) first leaves
/// tolerance against the Rust LSTM's run of the same step, or `None` when
/// it agrees. Traces holding NaN (not written) are skipped.
pub fn step_divergence<T: Real>(step: &Step<T>, actual: &RunOutput<T>) -> Option<StepDivergence> {
    let (ours, wide) = reference_runs(step)?;
    let layers = step.layers.len();
    // (time, layer, order, divergence)
    let mut found: Vec<(usize, usize, usize, StepDivergence)> = Vec::new();
    let make = |state, source, layer, index: &[usize], a, e| StepDivergence {
        step: step.name.clone(),
        state,
        source,
        layer,
        time: (index.len() == 3).then(|| index[1]),
        batch: index[0],
        unit: index[index.len() - 1],
        actual: a,
        expected: e,
        forget_offset: None,
    };
    for l in 0..layers.min(actual.trace.len()) {
        let pairs = [
            ("c", &actual.trace[l].c, &ours.trace[l].c, &wide.trace[l].c),
            ("h", &actual.trace[l].h, &ours.trace[l].h, &wide.trace[l].h),
        ];
        // The last layer's h that is the output itself (a gate check fills
        // it from y when no traces were written) is named as y below.
        let h_is_y = l + 1 == layers && same_bits(&actual.trace[l].h, &actual.outputs);
        for (k, (state, a, o, w)) in pairs.into_iter().enumerate() {
            if state == "h" && h_is_y {
                continue;
            }
            let (a, o, w) = (
                a.clone().into_dyn(),
                o.clone().into_dyn(),
                w.clone().into_dyn(),
            );
            if let Some((i, av, ev)) = first_out(&a, &o, &w) {
                found.push((i[1], l, k, make(state, "trace", l, &i, av, ev)));
            }
        }
    }
    let y = first_out(
        &actual.outputs.clone().into_dyn(),
        &ours.outputs.clone().into_dyn(),
        &wide.outputs.clone().into_dyn(),
    );
    if let Some((i, av, ev)) = y {
        found.push((i[1], layers - 1, 2, make("h", "y", layers - 1, &i, av, ev)));
    }
    let mut divergence = found
        .into_iter()
        .min_by_key(|(t, l, k, _)| (*t, *l, *k))
        .map(|(_, _, _, d)| d);
    if divergence.is_none() {
        for l in 0..layers.min(actual.final_state.len()) {
            for (state, a, o, w) in [
                (
                    "c",
                    &actual.final_state[l].c,
                    &ours.final_state[l].c,
                    &wide.final_state[l].c,
                ),
                (
                    "h",
                    &actual.final_state[l].h,
                    &ours.final_state[l].h,
                    &wide.final_state[l].h,
                ),
            ] {
                let got = first_out(
                    &a.clone().into_dyn(),
                    &o.clone().into_dyn(),
                    &w.clone().into_dyn(),
                );
                if let (Some((i, av, ev)), None) = (got, &divergence) {
                    divergence = Some(make(state, "final", l, &i, av, ev));
                }
            }
        }
    }
    let mut d = divergence?;
    if let Some(t) = d.time {
        d.forget_offset = forget_offset(step, actual, &wide, d.layer, t);
    }
    Some(d)
}

/// A constant offset `k` such that the implementation's cell state of
/// `layer` at processing step `t` is `sigmoid(z_f + k) * c_prev + i * g`,
/// with `z_f`, `i`, `g`, `c_prev` from the float64 reference (which agrees
/// with the implementation up to step `t`).
fn forget_offset<T: Real>(
    step: &Step<T>,
    actual: &RunOutput<T>,
    wide: &RunOutput<f64>,
    layer_index: usize,
    t: usize,
) -> Option<f64> {
    let layer: Layer<f64> = step.layers.get(layer_index)?.cast();
    if layer.gate_activation != Activation::Sigmoid || layer.cell_clip.is_some() {
        return None;
    }
    let (batch, time, _) = step.inputs.dim();
    // The implementation's c at t: its trace, or its final state at the last step.
    let c_actual: Array2<f64> = match actual.trace.get(layer_index) {
        Some(tr) if !tr.c.iter().any(|v| v.is_nan()) => {
            tr.c.index_axis(Axis(1), t).mapv(|v| v.widen())
        }
        _ if t + 1 == time => actual.final_state.get(layer_index)?.c.mapv(|v| v.widen()),
        _ => return None,
    };
    let input_t = if step.reverse { time - 1 - t } else { t };
    let x: Array2<f64> = if layer_index == 0 {
        step.inputs.slice(s![.., input_t, ..]).mapv(|v| v.widen())
    } else {
        wide.trace[layer_index - 1]
            .h
            .index_axis(Axis(1), t)
            .to_owned()
    };
    let tr = &wide.trace[layer_index];
    let (c_prev, h_prev): (Array2<f64>, Array2<f64>) = if t == 0 {
        match &step.initial_state {
            Some(s) => (
                s[layer_index].c.mapv(|v| v.widen()),
                s[layer_index].h.mapv(|v| v.widen()),
            ),
            None => (
                Array2::zeros((batch, layer.units())),
                Array2::zeros((batch, layer.output_size())),
            ),
        }
    } else {
        (
            tr.c.index_axis(Axis(1), t - 1).to_owned(),
            tr.h.index_axis(Axis(1), t - 1).to_owned(),
        )
    };
    let c_ref = tr.c.index_axis(Axis(1), t);
    let gates = lstm::step_gates(&layer, x.view(), c_prev.view(), h_prev.view(), c_ref);
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let mut offsets = Vec::new();
    for b in 0..batch {
        if step.mask.as_ref().is_some_and(|m| !m[[b, input_t]]) {
            continue;
        }
        for u in 0..layer.units() {
            let cp = c_prev[[b, u]];
            if cp.abs() < FORGET_OFFSET_MIN_C_PREV {
                continue;
            }
            let f_implied = (c_actual[[b, u]] - gates.i[[b, u]] * gates.g[[b, u]]) / cp;
            let f = gates.f[[b, u]];
            if f_implied > 0.0 && f_implied < 1.0 && f > 0.0 && f < 1.0 {
                offsets.push(logit(f_implied) - logit(f));
            }
        }
    }
    if offsets.len() < 2 {
        return None;
    }
    let lo = offsets.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = offsets.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = offsets.iter().sum::<f64>() / offsets.len() as f64;
    (hi - lo <= FORGET_OFFSET_SPREAD && mean.abs() >= FORGET_OFFSET_MIN).then_some(mean)
}

// ---------------------------------------------------------------------------
// Gate divergence.

/// Recorded gate outputs (the block ops'), in the order they are reported.
pub const GATE_OUTPUTS: [&str; 5] = ["i", "f", "o", "ci", "co"];

/// The first recorded gate out of tolerance, for cases that record gates
/// (`[steps, batch, units]`, or `[batch, units]` for one step).
pub fn gate_divergence<T: Real>(
    case: &Case,
    outputs: &Outputs<T>,
    tolerance: &Tolerance,
) -> Option<GateDivergence> {
    // (gate, first bad (time, batch, unit), actual, expected)
    type At = (usize, usize, usize);
    let mut per_gate: Vec<(&str, At, f64, f64)> = Vec::new();
    for gate in GATE_OUTPUTS {
        let (Some(expected), Some(actual)) = (case.expected.get(gate), outputs.get(gate)) else {
            continue;
        };
        if actual.shape() != expected.float32.shape() || actual.iter().any(|v| v.is_nan()) {
            continue;
        }
        let (reference, _, bound) = resolve::<T>(tolerance, expected);
        let mut first: Option<((usize, usize, usize), f64, f64)> = None;
        for ((index, &a), &e) in actual.indexed_iter().zip(reference.iter()) {
            let a64 = a.widen();
            let ok = bound.admits(
                (a64 - e).abs(),
                e,
                a.ulps(T::from_f64_lossy(e)),
                a64.to_bits() == e.to_bits(),
            );
            if ok {
                continue;
            }
            let i = index.slice();
            let at = if i.len() == 3 {
                (i[0], i[1], i[2])
            } else {
                (0, i[0], i[1])
            };
            if first.as_ref().is_none_or(|(f, _, _)| at < *f) {
                first = Some((at, a64, e));
            }
        }
        if let Some((at, a, e)) = first {
            per_gate.push((gate, at, a, e));
        }
    }
    let time = per_gate.iter().map(|(_, at, _, _)| at.0).min()?;
    let (gate, at, actual, expected) = per_gate
        .iter()
        .filter(|(g, at, _, _)| at.0 == time && *g != "co")
        .chain(per_gate.iter().filter(|(_, at, _, _)| at.0 == time))
        .next()?;
    Some(GateDivergence {
        gate: gate.to_string(),
        time,
        batch: at.1,
        unit: at.2,
        actual: *actual,
        expected: *expected,
        gates_out: per_gate
            .iter()
            .filter(|(g, at, _, _)| at.0 == time && *g != "co")
            .map(|(g, _, _, _)| g.to_string())
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// Hints: re-run the Rust LSTM with one known mistake.

/// One known mistake, applied to every step.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mistake {
    /// Gate `k` computed from the weights of canonical gate `perm[k]`.
    GateOrder([Gate; 4]),
    /// `forget_bias` replaced per layer.
    ForgetBias(ForgetBiasChange),
    /// The other direction, outputs in its processing order.
    OtherDirection,
    /// The other direction, outputs in the step's input time order.
    OtherDirectionOtherOrder,
    /// Reverse steps' outputs in input time order (and their per-step
    /// states too, when set).
    ReverseOutputsInInputOrder { traces: bool },
    /// Zeros instead of the previous output at masked steps, or the reverse.
    OtherMaskedOutput,
    /// The mask not applied.
    MaskIgnored,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ForgetBiasChange {
    Dropped,
    Doubled,
    PlusOne,
    MinusOne,
}

impl ForgetBiasChange {
    fn apply(self, fb: f64) -> f64 {
        match self {
            ForgetBiasChange::Dropped => 0.0,
            ForgetBiasChange::Doubled => 2.0 * fb,
            ForgetBiasChange::PlusOne => fb + 1.0,
            ForgetBiasChange::MinusOne => fb - 1.0,
        }
    }
}

/// Reverse the time axis of the outputs, and of the traces when `traces`.
fn flip_time<T: Real>(run: &mut RunOutput<T>, traces: bool) {
    run.outputs.invert_axis(Axis(1));
    run.outputs = run.outputs.as_standard_layout().into_owned();
    if !traces {
        return;
    }
    for tr in &mut run.trace {
        tr.c.invert_axis(Axis(1));
        tr.h.invert_axis(Axis(1));
        tr.c = tr.c.as_standard_layout().into_owned();
        tr.h = tr.h.as_standard_layout().into_owned();
    }
}

struct MistakenLstm(Mistake);

impl<T: Real> Runner<T> for MistakenLstm {
    fn run_step(&mut self, step: &Step<T>) -> Result<RunOutput<T>, DialectError> {
        let mut step = step.clone();
        let original_reverse = step.reverse;
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
            Mistake::ReverseOutputsInInputOrder { .. } => {}
            Mistake::OtherMaskedOutput => {
                step.masked_output = match step.masked_output {
                    MaskedOutput::Zero => MaskedOutput::RepeatPrevious,
                    MaskedOutput::RepeatPrevious => MaskedOutput::Zero,
                };
            }
            Mistake::MaskIgnored => step.mask = None,
        }
        let mut run = RustLstm.run_step(&step)?;
        match self.0 {
            Mistake::OtherDirectionOtherOrder => flip_time(&mut run, true),
            Mistake::ReverseOutputsInInputOrder { traces } if original_reverse => {
                flip_time(&mut run, traces);
            }
            _ => {}
        }
        Ok(run)
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
fn permutations() -> Vec<[Gate; 4]> {
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

/// Whether `actual` matches the outputs the Rust LSTM computes with
/// `mistake`, on every compared output, within the `default` tolerance.
fn matches_mistake<T: Real>(
    case: &Case,
    actual: &Outputs<T>,
    compared: &[String],
    mistake: Mistake,
) -> bool {
    let Ok(ours) =
        case.model
            .run_with::<T>(&case.variables, &case.inputs, &mut MistakenLstm(mistake))
    else {
        return false;
    };
    let Ok(wide) =
        case.model
            .run_with::<f64>(&case.variables, &case.inputs, &mut MistakenLstm(mistake))
    else {
        return false;
    };
    !compared.is_empty()
        && compared.iter().all(
            |name| match (actual.get(name), ours.get(name), wide.get(name)) {
                (Some(a), Some(o), Some(w)) => {
                    compare(name, a, &expected_of(o, w), &Tolerance::Default).passed
                }
                _ => false,
            },
        )
}

fn hints<T: Real>(
    case: &Case,
    actual: &Outputs<T>,
    steps: &[(Step<T>, RunOutput<T>)],
    compared: &[String],
    layout: Option<Layout>,
) -> Vec<Hint> {
    let mut hints = Vec::new();
    let layout = layout.unwrap_or(Layout::Canonical);
    let native = layout.gate_order();
    let names = |order: &[Gate; 4]| -> String {
        let n: Vec<&str> = order.iter().map(|g| layout.gate_name(*g)).collect();
        format!("[{}]", n.join(", "))
    };
    for perm in permutations().into_iter().skip(1) {
        if matches_mistake(case, actual, compared, Mistake::GateOrder(perm)) {
            // Native block j holds canonical gate native[j]; the
            // implementation used it for gate k where perm[k] = native[j].
            let read_as: Vec<Gate> = native
                .iter()
                .map(|held| {
                    let k = perm.iter().position(|p| p == held).expect("a permutation");
                    Gate::ALL[k]
                })
                .collect();
            let read_as: [Gate; 4] = read_as.try_into().expect("four gates");
            hints.push(Hint {
                trap: Trap::GateOrder,
                message: format!(
                    "gate order: the outputs match the weights read with the gate blocks as {} instead of the layout's {}",
                    names(&read_as),
                    names(&native)
                ),
            });
            break;
        }
    }
    let fbs: Vec<f64> = steps
        .iter()
        .flat_map(|(s, _)| s.layers.iter().map(|l| l.forget_bias.widen()))
        .collect();
    for change in [
        ForgetBiasChange::Dropped,
        ForgetBiasChange::Doubled,
        ForgetBiasChange::PlusOne,
        ForgetBiasChange::MinusOne,
    ] {
        if fbs.iter().all(|&fb| change.apply(fb) == fb) {
            continue;
        }
        if matches_mistake(case, actual, compared, Mistake::ForgetBias(change)) {
            let shown = |f: fn(f64) -> f64| -> String {
                let mut v: Vec<String> = fbs.iter().map(|&fb| format!("{}", f(fb))).collect();
                v.dedup();
                v.join("/")
            };
            let given = shown(|fb| fb);
            let what = match change {
                ForgetBiasChange::Dropped => format!(
                    "forget_bias: the outputs match forget_bias = 0 instead of {given}: the forget bias is not added"
                ),
                ForgetBiasChange::Doubled => format!(
                    "forget_bias: the outputs match forget_bias = {} instead of {given}: it is added twice (folded into the bias and added again?)",
                    shown(|fb| 2.0 * fb)
                ),
                ForgetBiasChange::PlusOne => format!(
                    "forget_bias: the outputs match forget_bias = {} instead of {given}: 1.0 is added to the forget gate at run time (a default forget_bias=1.0, or Keras unit_forget_bias taken for a run-time bias?)",
                    shown(|fb| fb + 1.0)
                ),
                ForgetBiasChange::MinusOne => format!(
                    "forget_bias: the outputs match forget_bias = {} instead of {given}: 1.0 is missing from the forget gate",
                    shown(|fb| fb - 1.0)
                ),
            };
            hints.push(Hint {
                trap: Trap::ForgetBias,
                message: what,
            });
            break;
        }
    }
    let any_reverse = steps.iter().any(|(s, _)| s.reverse);
    let mut reverse_mistakes = vec![
        (
            Mistake::OtherDirection,
            "reverse order: the outputs match the sequence processed in the other direction (go_backwards / direction ignored or inverted)",
        ),
        (
            Mistake::OtherDirectionOtherOrder,
            "reverse order: the outputs match the sequence processed in the other direction, returned in the other time order",
        ),
    ];
    if any_reverse {
        let message = "reverse order: the backward step's outputs match in input time order; the contract (and Keras go_backwards) wants them in processing order, last input first";
        for traces in [true, false] {
            reverse_mistakes.insert(0, (Mistake::ReverseOutputsInInputOrder { traces }, message));
        }
    }
    for (mistake, message) in reverse_mistakes {
        if matches_mistake(case, actual, compared, mistake) {
            hints.push(Hint {
                trap: Trap::ReverseOrder,
                message: message.into(),
            });
            break;
        }
    }
    if let Some((masked, _)) = steps.iter().find(|(s, _)| s.mask.is_some()) {
        let swapped = match masked.masked_output {
            MaskedOutput::Zero => "masking rule: the outputs repeat the previous output at masked steps where the case has zeros",
            MaskedOutput::RepeatPrevious => "masking rule: the outputs are zeros at masked steps where the case repeats the previous output",
        };
        for (mistake, message) in [
            (Mistake::OtherMaskedOutput, swapped),
            (
                Mistake::MaskIgnored,
                "masking rule: the outputs match a run without the mask (sequence lengths / mask ignored)",
            ),
        ] {
            if matches_mistake(case, actual, compared, mistake) {
                hints.push(Hint {
                    trap: Trap::MaskingRule,
                    message: message.into(),
                });
                break;
            }
        }
    }
    hints
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
}
