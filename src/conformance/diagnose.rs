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
//!   ([`super::mistake`]: the 23 other gate orders, `forget_bias`
//!   dropped/doubled/±1, the other direction, a reverse step run forward,
//!   outputs in the other time order, activations or peepholes ignored,
//!   the other masking rule, the mask ignored, the initial `h` output
//!   before a row's first step, a zero-length row's state dropped); a
//!   mistake whose outputs match the implementation's within the
//!   `default` tolerance names the trap. Outputs that are all exactly
//!   float16 or bfloat16 values name reduced precision.
//!
//! This module knows no framework: it sees canonical steps, native output
//! names, and (for wording only) the layout's gate names.

use ndarray::{s, Array2, ArrayD, Axis, Dimension};
use serde::Serialize;

use super::case::{Case, ExpectedOutput};
use super::compare::{compare, resolve};
use super::mistake::{permutations, ForgetBiasChange, Mistake, MistakenLstm, Precision};
use super::tolerance::{
    Tolerance, FORGET_OFFSET_MIN, FORGET_OFFSET_MIN_C_PREV, FORGET_OFFSET_SPREAD,
};
use crate::dialect::layout::Layout;
use crate::dialect::{Outputs, Runner, RustLstm, Step};
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
    /// the mask ignored, or the initial `h` output before a row's first step.
    MaskingRule,
    /// The activations asked for ignored, or the other `hard_sigmoid`.
    Activations,
    /// Peephole weights ignored.
    Peepholes,
    /// A row with no time step loses its initial state.
    ZeroLength,
    /// Outputs computed or stored in float16 or bfloat16.
    ReducedPrecision,
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
        bidirectional: step.bidirectional,
        depends_on_earlier_steps: step.depends_on_earlier_steps,
        products: step.products,
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
    // A layer without time-indexed evidence (no traces written) is seen
    // through its final state, after every time step.
    for l in 0..layers.min(actual.final_state.len()) {
        if found.iter().any(|(_, fl, _, _)| *fl == l) {
            continue;
        }
        let finals = [
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
        ];
        for (k, (state, a, o, w)) in finals.into_iter().enumerate() {
            let got = first_out(
                &a.clone().into_dyn(),
                &o.clone().into_dyn(),
                &w.clone().into_dyn(),
            );
            if let Some((i, av, ev)) = got {
                found.push((usize::MAX, l, k, make(state, "final", l, &i, av, ev)));
                break;
            }
        }
    }
    // The first layer whose own results part (a later layer only inherits
    // them), and in it the first time step.
    let divergence = found
        .into_iter()
        .min_by_key(|(t, l, k, _)| (*l, *t, *k))
        .map(|(_, _, _, d)| d);
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
    let reverse_names: Vec<&str> = steps
        .iter()
        .filter(|(s, _)| s.reverse)
        .map(|(s, _)| s.name.as_str())
        .collect();
    // A bidirectional pair (or any case with forward steps besides the
    // reverse ones) whose reverse steps ran forward: "the other
    // direction" above flips the forward steps too and cannot match.
    if !reverse_names.is_empty()
        && steps.len() > reverse_names.len()
        && !hints.iter().any(|h| h.trap == Trap::ReverseOrder)
        && matches_mistake(case, actual, compared, Mistake::ReverseRunForward)
    {
        hints.push(Hint {
            trap: Trap::ReverseOrder,
            message: format!(
                "reverse order: the outputs match the reverse step{} ({}) run forward: its direction is ignored (the forward steps are right)",
                if reverse_names.len() > 1 { "s" } else { "" },
                reverse_names.join(", ")
            ),
        });
    }
    let layers = || steps.iter().flat_map(|(s, _)| s.layers.iter());
    let standard = |l: &Layer<T>| {
        (l.gate_activation, l.cell_activation, l.output_activation)
            == (Activation::Sigmoid, Activation::Tanh, Activation::Tanh)
    };
    if let Some(l) = layers().find(|l| !standard(l)) {
        let hard = |a: Activation| {
            matches!(
                a,
                Activation::HardSigmoidLinear | Activation::HardSigmoidRelu6
            )
        };
        let asked = format!(
            "{}, {}, {}",
            activation_name(l.gate_activation),
            activation_name(l.cell_activation),
            activation_name(l.output_activation)
        );
        let mut tries = vec![(
            Mistake::ActivationsIgnored,
            format!("activations: the outputs match sigmoid, tanh, tanh where the case asks for {asked} (gates, cell, output): the activations are ignored"),
        )];
        if layers().any(|l| hard(l.gate_activation)) {
            tries.push((
                Mistake::OtherHardSigmoid,
                format!("activations: the outputs match the other hard_sigmoid where the case asks for {}", activation_name(l.gate_activation)),
            ));
        }
        if let Some((_, message)) = tries
            .into_iter()
            .find(|(m, _)| matches_mistake(case, actual, compared, *m))
        {
            hints.push(Hint {
                trap: Trap::Activations,
                message,
            });
        }
    }
    if layers().any(|l| l.peepholes.is_some())
        && matches_mistake(case, actual, compared, Mistake::PeepholesIgnored)
    {
        hints.push(Hint {
            trap: Trap::Peepholes,
            message: "peepholes: the outputs match the same LSTM without peepholes: the peephole weights are ignored".into(),
        });
    }
    let zero_length_with_state = steps.iter().any(|(s, _)| {
        s.initial_state.is_some()
            && s.mask
                .as_ref()
                .is_some_and(|m| m.rows().into_iter().any(|r| r.iter().all(|&v| !v)))
    });
    if zero_length_with_state
        && matches_mistake(case, actual, compared, Mistake::ZeroLengthDropsInitialState)
    {
        hints.push(Hint {
            trap: Trap::ZeroLength,
            message: "zero-length rows: the final state of a row with no time step is zeros where the case carries its initial state through".into(),
        });
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
            (
                Mistake::LeadingMaskedOutputInitialH,
                "masking rule: masked steps before a row's first computed step output the initial h where the case has zeros",
            ),
        ] {
            let leading = mistake == Mistake::LeadingMaskedOutputInitialH;
            if leading
                && !steps.iter().any(|(s, _)| {
                    s.initial_state.is_some() && s.masked_output == MaskedOutput::RepeatPrevious
                })
            {
                continue;
            }
            if matches_mistake(case, actual, compared, mistake) {
                hints.push(Hint {
                    trap: Trap::MaskingRule,
                    message: message.into(),
                });
                break;
            }
        }
    }
    if let Some(p) = reduced_precision(actual, compared) {
        hints.push(Hint {
            trap: Trap::ReducedPrecision,
            message: format!(
                "reduced precision: every output value is a {} value, where float32 results would not be: the implementation computes or stores in {}; state the level it is judged at (docs/gate.md, stated tolerances)",
                p.name(),
                p.name()
            ),
        });
    }
    hints
}

/// The activation's name as the cases' options spell it.
fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
        Activation::Relu => "relu",
        Activation::Linear => "linear",
        Activation::HardSigmoidLinear => "hard_sigmoid (0.2x + 0.5)",
        Activation::HardSigmoidRelu6 => "hard_sigmoid (relu6(x + 3) / 6)",
    }
}

/// The reduced precision every compared output value is exactly
/// representable in, when there is one: the mark of a kernel that computes
/// or stores in it (results rounded from float32 arithmetic almost never
/// are: a float32 value is a bfloat16 value with probability 2^-16).
/// Needs enough distinct values that chance cannot explain it.
fn reduced_precision<T: Real>(actual: &Outputs<T>, compared: &[String]) -> Option<Precision> {
    let values: Vec<f64> = compared
        .iter()
        .filter_map(|name| actual.get(name))
        .flat_map(|a| a.iter().map(|v| v.widen()))
        .collect();
    let mut distinct: Vec<u64> = values
        .iter()
        .filter(|v| **v != 0.0 && v.is_finite())
        .map(|v| v.to_bits())
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 16 {
        return None;
    }
    Precision::ALL
        .into_iter()
        .find(|p| values.iter().all(|&v| !v.is_finite() || p.round(v) == v))
}
