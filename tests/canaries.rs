//! Every canary case catches its trap: the Rust LSTM passes it, and the
//! mistaken LSTM (`conformance::mistake`) making the canary's mistake fails
//! it. One named trial per canary and mistake:
//! `cargo test --test canaries -- canary-gate-order`.
//!
//! The mistakes are [`Runner`](lstm_parity::dialect::Runner)s, exactly
//! what an external implementation plugs into: each takes the canonical
//! step the dialect asks for, makes one known mistake, and computes.

use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use lstm_parity::conformance::check::check_reduced_outputs;
use lstm_parity::conformance::mistake::{ForgetBiasChange, Mistake, MistakenLstm};
use lstm_parity::conformance::{self, check_outputs, Case, Dtype, Filter};
use lstm_parity::dialect::Outputs;
use lstm_parity::lstm::{Gate, Precision, Real};

use Mistake as M;

/// TF1's i, j, f, o read as Keras's i, f, c, o (f and g swapped), or the reverse.
const SWAP_F_G: Mistake = M::GateOrder([Gate::I, Gate::G, Gate::F, Gate::O]);
/// The block ops' i, c, f, o or ONNX's i, o, f, c read as i, f, c, o (f and o swapped).
const SWAP_F_O: Mistake = M::GateOrder([Gate::I, Gate::O, Gate::G, Gate::F]);

/// Which mistakes each canary must catch, by the canary's name (its id
/// without the suite): every canary is listed, every entry has a canary.
const CANARIES: &[(&str, &[Mistake])] = &[
    // tf1
    ("canary-bidirectional-padding", &[M::ReverseWholeRows]),
    (
        "canary-static-bidirectional-padding",
        &[M::ReverseWholeRows],
    ),
    ("canary-cell-clip-zero", &[M::NoCellClip]),
    (
        "canary-forget-bias-1",
        &[
            M::ForgetBias(ForgetBiasChange::Dropped),
            M::ForgetBias(ForgetBiasChange::Doubled),
        ],
    ),
    (
        "canary-forget-bias-2.5",
        &[
            M::ForgetBias(ForgetBiasChange::Dropped),
            M::ForgetBias(ForgetBiasChange::Doubled),
        ],
    ),
    ("canary-gate-order", &[SWAP_F_G, SWAP_F_O]),
    (
        "canary-peephole-clipped-c",
        &[
            M::OutputPeepholeOnOldCell,
            M::ClipAfterOutputPeephole,
            M::NoCellClip,
            M::PeepholesIgnored,
        ],
    ),
    ("canary-proj-clip", &[M::ProjClipBeforeProjection]),
    (
        "canary-seqlen-zeros",
        &[M::OtherMaskedOutput, M::ZeroLengthDropsInitialState],
    ),
    ("canary-state-tuple-c-h", &[M::StateOrderSwapped]),
    (
        "canary-state-concat-c-h",
        &[M::ConcatenatedStateAsHC, M::StateOrderSwapped],
    ),
    ("canary-time-major", &[M::IgnoreTimeMajor]),
    // block
    ("canary-cell-default-clip", &[M::NoCellClip]),
    ("canary-default-clip", &[M::NoCellClip]),
    ("canary-clip-zero-no-clip", &[M::ZeroClipClips]),
    ("canary-gate-order-icfo", &[SWAP_F_G]),
    (
        "canary-peephole-new-cs",
        &[M::OutputPeepholeOnOldCell, M::PeepholesIgnored],
    ),
    ("canary-seq-len-max", &[M::IgnoreSeqLenMax]),
    ("canary-v2-default-no-clip", &[M::DefaultClipThree]),
    (
        "canary-v2-no-forget-bias",
        &[M::ForgetBias(ForgetBiasChange::PlusOne)],
    ),
    ("canary-v2-order-ifco", &[SWAP_F_G]),
    // keras3 and tfkeras
    (
        "canary-bidi-backward-order",
        &[
            M::ReverseOutputsInInputOrder { traces: false },
            M::ReverseRunForward,
        ],
    ),
    ("canary-gate-order-tf1", &[SWAP_F_G]),
    (
        "canary-go-backwards-order",
        &[
            M::ReverseOutputsInInputOrder { traces: false },
            M::ReverseRunForward,
        ],
    ),
    (
        "canary-hard-sigmoid-version",
        &[M::OtherHardSigmoid, M::ActivationsIgnored],
    ),
    ("canary-mask-last-output", &[M::OtherMaskedOutput]),
    ("canary-mask-last-output-zero", &[M::OtherMaskedOutput]),
    (
        "canary-mask-repeat",
        &[M::OtherMaskedOutput, M::LeadingMaskedOutputInitialH],
    ),
    ("canary-mask-zero", &[M::OtherMaskedOutput]),
    ("canary-masking-all-features", &[M::MaskIfAnyFeatureIsZero]),
    ("canary-state-order", &[M::StateOrderSwapped]),
    ("canary-stateful-carry", &[M::StatefulReset]),
    (
        "canary-unit-forget-bias-twice",
        &[M::ForgetBias(ForgetBiasChange::PlusOne)],
    ),
];

fn canary_cases() -> Vec<Case> {
    let root = conformance::suite::reference_root(None);
    let selection = conformance::select(&root, &Filter::new(&["*/canary-*"]).unwrap()).unwrap();
    assert!(selection.errors.is_empty(), "{:?}", selection.errors);
    selection.cases
}

/// The canary's name: its id without the suite.
fn name(case: &Case) -> &str {
    case.id.split('/').next_back().unwrap_or(&case.id)
}

fn right(case: &Case) -> Result<(), Failed> {
    if conformance::run_case(case, Dtype::F64, None).passed() {
        Ok(())
    } else {
        Err(format!("{}: the Rust LSTM fails its own canary", case.id).into())
    }
}

/// What the mistaken LSTM computes for `case`, in `T`.
fn mistaken<T: Real>(case: &Case, mistake: Mistake) -> Result<Outputs<T>, Failed> {
    let misread = mistake.misread(case).map_err(|e| e.to_string())?;
    let outputs = misread
        .model
        .run_with::<T>(
            &misread.variables,
            &misread.inputs,
            &mut MistakenLstm(mistake),
        )
        .map_err(|e| format!("{}: {mistake:?}: {e}", case.id))?;
    Ok(outputs)
}

fn caught(case: &Case, mistake: Mistake) -> Result<(), Failed> {
    let outputs = mistaken::<f64>(case, mistake)?;
    if check_outputs(case, &outputs, Dtype::F64, None).passed() {
        return Err(format!("{}: the mistaken LSTM {mistake:?} passes", case.id).into());
    }
    Ok(())
}

/// The mistake fails the canary at the level of a reduced precision too:
/// its `f32` result against the framework's own float16 or bfloat16 run.
fn caught_at(case: &Case, mistake: Mistake, precision: Precision) -> Result<(), Failed> {
    let outputs = mistaken::<f32>(case, mistake)?;
    let run = check_reduced_outputs(case, precision, None, &outputs, &[]);
    if run.passed() {
        return Err(format!(
            "{}: the mistaken LSTM {mistake:?} passes at {}",
            case.id, run.tolerance
        )
        .into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let cases = canary_cases();
    let mut trials = Vec::new();
    for case in cases.iter().cloned().map(Arc::new) {
        let Some((_, mistakes)) = CANARIES.iter().find(|(n, _)| *n == name(&case)) else {
            let message = format!("{}: no mistake is tied to this canary", case.id);
            trials.push(Trial::test(format!("{}/tied", case.id), move || {
                Err(message.into())
            }));
            continue;
        };
        let c = case.clone();
        trials.push(Trial::test(
            format!("{}/rust-lstm-passes", case.id),
            move || right(&c),
        ));
        for &mistake in *mistakes {
            let c = case.clone();
            trials.push(Trial::test(
                format!("{}/catches/{mistake:?}", case.id),
                move || caught(&c, mistake),
            ));
            for &precision in case.reduced.keys() {
                let c = case.clone();
                trials.push(Trial::test(
                    format!("{}/catches/{mistake:?}@{precision}", case.id),
                    move || caught_at(&c, mistake, precision),
                ));
            }
        }
    }
    for (canary, _) in CANARIES {
        if !cases.iter().any(|c| name(c) == *canary) {
            trials.push(Trial::test(format!("{canary}/exists"), move || {
                Err(format!("no canary case {canary}").into())
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
