//! Every canary case catches its trap: the Rust LSTM passes it, and a
//! deliberately wrong implementation of the trap fails it.
//!
//! The wrong implementations are [`Runner`]s, exactly what an external
//! implementation plugs into: each takes the canonical step the dialect
//! asks for, makes one known mistake, and computes.

use std::path::PathBuf;

use lstm_parity::conformance::{self, check_outputs, Case, Dtype, Filter};
use lstm_parity::dialect::{length_mask, reverse_sequence, DialectError, Runner, RustLstm, Step};
use lstm_parity::lstm::{Activation, Gate, Layer, MaskedOutput, RunOutput, State, StepTrace};
use lstm_parity::tensor::Tensor;
use ndarray::{s, Array2, Array3, Axis};

/// One known mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wrong {
    /// Gate blocks read in another framework's order (f and g swapped:
    /// TF1's i,j,f,o read as Keras's i,f,c,o, or the reverse).
    SwapForgetAndCell,
    /// Block ops' i,c,f,o read as i,f,c,o... and ONNX's i,o,f,c read as i,f,c,o.
    SwapOutputAndForget,
    /// forget_bias not added at run time.
    ForgetBiasDropped,
    /// forget_bias added at run time and also folded into the bias.
    ForgetBiasTwice,
    /// Keras `unit_forget_bias` treated as TF1's forget_bias: +1 at run time.
    UnitForgetBiasAddedAtRunTime,
    /// The output gate's peephole reads the previous cell state.
    OutputPeepholeOnOldCell,
    /// The cell state is not clipped.
    NoCellClip,
    /// The output gate's peephole reads the cell state before clipping.
    ClipAfterOutputPeephole,
    /// proj_clip applied to the output before projecting it.
    ProjClipBeforeProjection,
    /// Masked steps repeat the previous output instead of zeros (or the reverse).
    MaskedOutputSwapped,
    /// The backward pass reverses whole rows, padding included.
    ReverseWholeRows,
    /// go_backwards outputs returned in input time order.
    BackwardOutputsReReversed,
    /// The other Keras's hard_sigmoid.
    OtherHardSigmoid,
    /// A clip of 0 taken as "clip to 0" where it means "no clip".
    ZeroClipClips,
    /// The block ops' default clip of 3.0 applied where the default is off.
    DefaultClipThree,
    /// A Masking layer that masks a step when any feature (not all) equals 0.
    MaskIfAnyFeatureIsZero,
    /// Final h and c swapped (state order).
    StateOrderSwapped,
    /// Each stateful call starts from zeros instead of the previous state.
    StatefulReset,
    /// `seq_len_max` ignored: every step computed.
    IgnoreSeqLenMax,
    /// `time_major` ignored: time-major inputs read as batch-major.
    IgnoreTimeMajor,
}

struct WrongRunner(Wrong);

impl Runner<f64> for WrongRunner {
    fn run_step(&mut self, step: &Step<f64>) -> Result<RunOutput<f64>, DialectError> {
        let mut step = step.clone();
        let swap = |layers: &mut Vec<Layer<f64>>, a: Gate, b: Gate| {
            for l in layers.iter_mut() {
                let u = l.units();
                for m in [&mut l.w_x, &mut l.w_h] {
                    let (ca, cb) = (
                        m.slice(s![.., a.columns(u)]).to_owned(),
                        m.slice(s![.., b.columns(u)]).to_owned(),
                    );
                    m.slice_mut(s![.., a.columns(u)]).assign(&cb);
                    m.slice_mut(s![.., b.columns(u)]).assign(&ca);
                }
                let (ba, bb) = (
                    l.bias.slice(s![a.columns(u)]).to_owned(),
                    l.bias.slice(s![b.columns(u)]).to_owned(),
                );
                l.bias.slice_mut(s![a.columns(u)]).assign(&bb);
                l.bias.slice_mut(s![b.columns(u)]).assign(&ba);
            }
        };
        match self.0 {
            Wrong::SwapForgetAndCell => swap(&mut step.layers, Gate::F, Gate::G),
            Wrong::SwapOutputAndForget => swap(&mut step.layers, Gate::F, Gate::O),
            Wrong::ForgetBiasDropped => step.layers.iter_mut().for_each(|l| l.forget_bias = 0.0),
            Wrong::ForgetBiasTwice => step.layers.iter_mut().for_each(|l| {
                let fb = l.forget_bias;
                l.bias
                    .slice_mut(s![Gate::F.columns(l.units())])
                    .mapv_inplace(|v| v + fb);
            }),
            Wrong::UnitForgetBiasAddedAtRunTime => {
                step.layers.iter_mut().for_each(|l| l.forget_bias += 1.0)
            }
            Wrong::NoCellClip => step.layers.iter_mut().for_each(|l| l.cell_clip = None),
            Wrong::MaskedOutputSwapped => {
                step.masked_output = match step.masked_output {
                    MaskedOutput::Zero => MaskedOutput::RepeatPrevious,
                    MaskedOutput::RepeatPrevious => MaskedOutput::Zero,
                }
            }
            Wrong::OtherHardSigmoid => step.layers.iter_mut().for_each(|l| {
                l.gate_activation = match l.gate_activation {
                    Activation::HardSigmoidKeras2 => Activation::HardSigmoidKeras3,
                    Activation::HardSigmoidKeras3 => Activation::HardSigmoidKeras2,
                    other => other,
                }
            }),
            Wrong::ZeroClipClips => step
                .layers
                .iter_mut()
                .for_each(|l| l.cell_clip = Some(l.cell_clip.unwrap_or(0.0))),
            Wrong::DefaultClipThree => step
                .layers
                .iter_mut()
                .for_each(|l| l.cell_clip = Some(l.cell_clip.unwrap_or(3.0))),
            Wrong::MaskIfAnyFeatureIsZero => {
                let (batch, time, _) = step.inputs.dim();
                step.mask = Some(Array2::from_shape_fn((batch, time), |(b, t)| {
                    step.inputs.slice(s![b, t, ..]).iter().all(|&v| v != 0.0)
                }));
            }
            Wrong::StatefulReset
                if step.name.starts_with("call/") && !step.name.starts_with("call/0/") =>
            {
                step.initial_state = None;
            }
            Wrong::ReverseWholeRows if step.name.ends_with("bw") => {
                // Undo the per-row reversal the dialect did, then reverse whole rows.
                let lengths: Vec<usize> = match &step.mask {
                    Some(m) => m
                        .rows()
                        .into_iter()
                        .map(|r| r.iter().filter(|&&v| v).count())
                        .collect(),
                    None => vec![step.inputs.dim().1; step.inputs.dim().0],
                };
                let original = reverse_sequence(step.inputs.view(), Some(&lengths));
                let mut whole = original.clone();
                whole.invert_axis(Axis(1));
                step.inputs = whole.as_standard_layout().into_owned();
                let mut flipped = length_mask(&lengths, step.inputs.dim().1);
                flipped.invert_axis(Axis(1));
                step.mask = Some(flipped.as_standard_layout().into_owned());
            }
            Wrong::OutputPeepholeOnOldCell
            | Wrong::ClipAfterOutputPeephole
            | Wrong::ProjClipBeforeProjection => {
                return Ok(wrong_steps(&step, self.0));
            }
            _ => {}
        }
        let mut out = RustLstm.run_step(&step)?;
        if self.0 == Wrong::BackwardOutputsReReversed && step.reverse {
            out.outputs.invert_axis(Axis(1));
            out.outputs = out.outputs.as_standard_layout().into_owned();
        }
        if self.0 == Wrong::StateOrderSwapped {
            for st in &mut out.final_state {
                if st.c.dim() == st.h.dim() {
                    std::mem::swap(&mut st.c, &mut st.h);
                }
            }
        }
        Ok(out)
    }
}

/// A plain LSTM with one of the step-level mistakes (no mask support: the
/// canaries for these traps have none).
fn wrong_steps(step: &Step<f64>, wrong: Wrong) -> RunOutput<f64> {
    let (batch, time, _) = step.inputs.dim();
    let mut x = step.inputs.clone();
    if step.reverse {
        x.invert_axis(Axis(1));
    }
    let mut final_state = Vec::new();
    let mut trace = Vec::new();
    for (k, layer) in step.layers.iter().enumerate() {
        let units = layer.units();
        let out_size = layer.output_size();
        let init = step
            .initial_state
            .as_ref()
            .map_or_else(|| State::zeros(layer, batch), |s| s[k].clone());
        let (mut c, mut h) = (init.c, init.h);
        let mut outputs = Array3::zeros((batch, time, out_size));
        let mut tr = StepTrace {
            c: Array3::zeros((batch, time, units)),
            h: Array3::zeros((batch, time, out_size)),
        };
        for t in 0..time {
            let z = x.index_axis(Axis(1), t).dot(&layer.w_x) + h.dot(&layer.w_h) + &layer.bias;
            let col = |g: Gate, j: usize| g.columns(units).start + j;
            let peep = |which: usize, j: usize, v: f64| {
                layer
                    .peepholes
                    .as_ref()
                    .map_or(0.0, |p| [&p.input, &p.forget, &p.output][which][j] * v)
            };
            let mut m = Array2::zeros((batch, units));
            let mut c_new = Array2::zeros((batch, units));
            for b in 0..batch {
                for j in 0..units {
                    let act = layer.gate_activation;
                    let i = act.apply(z[[b, col(Gate::I, j)]] + peep(0, j, c[[b, j]]));
                    let f = act
                        .apply(z[[b, col(Gate::F, j)]] + layer.forget_bias + peep(1, j, c[[b, j]]));
                    let g = layer.cell_activation.apply(z[[b, col(Gate::G, j)]]);
                    let unclipped = f * c[[b, j]] + i * g;
                    let clipped = layer
                        .cell_clip
                        .map_or(unclipped, |cl| unclipped.max(-cl).min(cl));
                    let peep_c = match wrong {
                        Wrong::OutputPeepholeOnOldCell => c[[b, j]],
                        Wrong::ClipAfterOutputPeephole => unclipped,
                        _ => clipped,
                    };
                    let o = act.apply(z[[b, col(Gate::O, j)]] + peep(2, j, peep_c));
                    c_new[[b, j]] = clipped;
                    m[[b, j]] = o * layer.output_activation.apply(clipped);
                }
            }
            c = c_new;
            h = match &layer.projection {
                None => m,
                Some(p) => {
                    let clip = |a: Array2<f64>| {
                        p.clip
                            .map_or(a.clone(), |cl| a.mapv(|v| v.max(-cl).min(cl)))
                    };
                    if wrong == Wrong::ProjClipBeforeProjection {
                        clip(m).dot(&p.kernel)
                    } else {
                        clip(m.dot(&p.kernel))
                    }
                }
            };
            outputs.index_axis_mut(Axis(1), t).assign(&h);
            tr.c.index_axis_mut(Axis(1), t).assign(&c);
            tr.h.index_axis_mut(Axis(1), t).assign(&h);
        }
        final_state.push(State { c, h });
        trace.push(tr);
        x = outputs;
    }
    RunOutput {
        outputs: x,
        final_state,
        trace,
    }
}

/// A wrong reading of the case itself (what the runner cannot see).
fn misread(case: &Case, wrong: Wrong) -> Case {
    let mut case = case.clone();
    match wrong {
        Wrong::IgnoreSeqLenMax => {
            let time = case.inputs["x"].shape()[0] as i32;
            case.inputs.insert(
                "seq_len_max".into(),
                Tensor::I32(ndarray::arr0(time).into_dyn()),
            );
        }
        Wrong::IgnoreTimeMajor => {
            case.manifest.model["time_major"] = false.into();
            case.model =
                lstm_parity::dialect::Model::parse(&case.manifest.dialect, &case.manifest.model)
                    .unwrap();
        }
        _ => {}
    }
    case
}

/// Which mistakes each canary must catch, by the canary's name (its id
/// without the suite): every canary is listed, every entry has a canary.
const CANARIES: &[(&str, &[Wrong])] = &[
    // tf1
    ("canary-bidirectional-padding", &[Wrong::ReverseWholeRows]),
    (
        "canary-static-bidirectional-padding",
        &[Wrong::ReverseWholeRows],
    ),
    ("canary-cell-clip-zero", &[Wrong::NoCellClip]),
    (
        "canary-forget-bias-1",
        &[Wrong::ForgetBiasDropped, Wrong::ForgetBiasTwice],
    ),
    (
        "canary-forget-bias-2.5",
        &[Wrong::ForgetBiasDropped, Wrong::ForgetBiasTwice],
    ),
    (
        "canary-gate-order",
        &[Wrong::SwapForgetAndCell, Wrong::SwapOutputAndForget],
    ),
    (
        "canary-peephole-clipped-c",
        &[
            Wrong::OutputPeepholeOnOldCell,
            Wrong::ClipAfterOutputPeephole,
            Wrong::NoCellClip,
        ],
    ),
    ("canary-proj-clip", &[Wrong::ProjClipBeforeProjection]),
    ("canary-seqlen-zeros", &[Wrong::MaskedOutputSwapped]),
    ("canary-state-tuple-c-h", &[Wrong::StateOrderSwapped]),
    ("canary-time-major", &[Wrong::IgnoreTimeMajor]),
    // block
    ("canary-cell-default-clip", &[Wrong::NoCellClip]),
    ("canary-default-clip", &[Wrong::NoCellClip]),
    ("canary-clip-zero-no-clip", &[Wrong::ZeroClipClips]),
    ("canary-gate-order-icfo", &[Wrong::SwapForgetAndCell]),
    ("canary-peephole-new-cs", &[Wrong::OutputPeepholeOnOldCell]),
    ("canary-seq-len-max", &[Wrong::IgnoreSeqLenMax]),
    ("canary-v2-default-no-clip", &[Wrong::DefaultClipThree]),
    (
        "canary-v2-no-forget-bias",
        &[Wrong::UnitForgetBiasAddedAtRunTime],
    ),
    ("canary-v2-order-ifco", &[Wrong::SwapForgetAndCell]),
    // keras3 and tfkeras
    (
        "canary-bidi-backward-order",
        &[Wrong::BackwardOutputsReReversed],
    ),
    ("canary-gate-order-tf1", &[Wrong::SwapForgetAndCell]),
    (
        "canary-go-backwards-order",
        &[Wrong::BackwardOutputsReReversed],
    ),
    ("canary-hard-sigmoid-version", &[Wrong::OtherHardSigmoid]),
    ("canary-mask-last-output", &[Wrong::MaskedOutputSwapped]),
    (
        "canary-mask-last-output-zero",
        &[Wrong::MaskedOutputSwapped],
    ),
    ("canary-mask-repeat", &[Wrong::MaskedOutputSwapped]),
    ("canary-mask-zero", &[Wrong::MaskedOutputSwapped]),
    (
        "canary-masking-all-features",
        &[Wrong::MaskIfAnyFeatureIsZero],
    ),
    ("canary-state-order", &[Wrong::StateOrderSwapped]),
    ("canary-stateful-carry", &[Wrong::StatefulReset]),
    (
        "canary-unit-forget-bias-twice",
        &[Wrong::UnitForgetBiasAddedAtRunTime],
    ),
];

fn canary_cases() -> Vec<Case> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference");
    let selection = conformance::select(&root, &Filter::new(&["*/canary-*"]).unwrap()).unwrap();
    assert!(selection.errors.is_empty(), "{:?}", selection.errors);
    selection.cases
}

#[test]
fn every_canary_catches_its_trap() {
    let cases = canary_cases();
    let mut checked = 0;
    for case in &cases {
        let name = case.id.split('/').next_back().unwrap();
        let wrongs = CANARIES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no wrong implementation is tied to this canary",
                    case.id
                )
            })
            .1;
        let right = conformance::run_case(case, Dtype::F64, None);
        assert!(
            right.passed(),
            "{}: the Rust LSTM fails its own canary",
            case.id
        );
        for &wrong in wrongs {
            let misread = misread(case, wrong);
            let outputs = misread
                .model
                .run_with::<f64>(&misread.variables, &misread.inputs, &mut WrongRunner(wrong))
                .unwrap_or_else(|e| panic!("{}: {wrong:?}: {e}", case.id));
            let run = check_outputs(case, &outputs, Dtype::F64, None);
            assert!(
                !run.passed(),
                "{}: the wrong implementation {wrong:?} passes",
                case.id
            );
            checked += 1;
        }
    }
    for (name, _) in CANARIES {
        assert!(
            cases.iter().any(|c| c.id.ends_with(&format!("/{name}"))),
            "no canary case {name}"
        );
    }
    assert!(checked >= CANARIES.len());
}
