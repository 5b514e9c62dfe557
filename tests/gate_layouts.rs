//! The gate loop (export -> an implementation -> check) with the Rust LSTM
//! as the implementation: one named trial per layout, forget_bias mode
//! and dtype, e.g. `cargo test --test gate_layouts -- float32/onnx`.
//!
//! The "implementation" is a test-only runner that reads each exported
//! step back through the layout converters (`gate::load_step`, i.e.
//! `layout::import_layer`), runs the Rust LSTM and writes the outputs as
//! the contract says: exactly what an external implementation does.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{check_in, export_in, reference, rust_implementation, scratch};
use libtest_mimic::{Arguments, Failed, Trial};
use lstm_parity::conformance::report::{failure_detail, table};
use lstm_parity::conformance::{self, Case, Dtype, Filter};
use lstm_parity::dialect::layout::{ForgetBias, Layout};

/// The cases the gate loop runs on: the notebook, random and canary cases
/// of every suite, so every API and trap, in a few seconds (the grids
/// repeat them at more sizes).
const GATE_SAMPLE: &[&str] = &["*/nb*", "*/rand-*", "*/canary-*"];

/// The layouts also run in float64.
const FLOAT64_LAYOUTS: [Layout; 3] = [Layout::Tf1, Layout::Onnx, Layout::Torch];

/// `Err` with `message` unless `ok`.
fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// Export `cases` of `root`, run the Rust LSTM on the export, check: every
/// exported case passes, every other one is skipped with its reason.
fn gate_loop(
    root: &Path,
    cases: &[Case],
    layout: Layout,
    mode: Option<ForgetBias>,
    dtype: Dtype,
) -> Result<(), Failed> {
    let tmp = scratch();
    let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
    let index = export_in(root, cases, &ex, layout, dtype, mode);
    let exported = index.cases.iter().filter(|c| c.exported).count();
    ensure(exported > 0, || "nothing exported".into())?;
    // Traces in half the layouts, so both paths of the reader run.
    let traces = layout as usize % 2 == 0;
    match dtype {
        Dtype::F32 => rust_implementation::<f32>(&ex, &out, traces),
        _ => rust_implementation::<f64>(&ex, &out, traces),
    }
    let report = check_in(root, &ex, &out, None)?;
    let failed: Vec<String> = report
        .runs
        .iter()
        .filter(|r| !r.passed())
        .map(failure_detail)
        .collect();
    ensure(failed.is_empty(), || failed.join("\n"))?;
    ensure(report.errors.is_empty(), || format!("{:?}", report.errors))?;
    ensure(report.runs.len() == exported, || {
        format!("{} runs for {exported} exported cases", report.runs.len())
    })?;
    ensure(report.skipped.len() == cases.len() - exported, || {
        format!("{} skipped", report.skipped.len())
    })?;
    ensure(report.exit_code() == 0, || table(&report))
}

/// A synthetic suite of the kinds of cases the recording lacks (block op
/// with gates, Keras masking, Keras Bidirectional, Keras Sequential): the
/// layout exports what it can express, says why not otherwise, and the
/// Rust LSTM passes.
fn synthetic(layout: Layout) -> Result<(), Failed> {
    let suite = scratch();
    let root = suite.path();
    let ids = [
        common::block_case(root),
        common::keras_masked_case(root),
        common::keras_bidirectional_case(root),
        common::keras_sequential_case(root),
    ];
    let selection = conformance::select(root, &Filter::new::<&str>(&[]).unwrap())?;
    ensure(selection.errors.is_empty(), || {
        format!("{:?}", selection.errors)
    })?;
    let tmp = scratch();
    let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
    let index = export_in(root, &selection.cases, &ex, layout, Dtype::F32, None);
    rust_implementation::<f32>(&ex, &out, true);
    let report = check_in(root, &ex, &out, None)?;
    ensure(report.exit_code() == 0, || table(&report))?;
    let case = |id: &str| index.cases.iter().find(|c| c.id == id).unwrap();
    let reason = |id: &str| case(id).reason.clone().unwrap_or_default();
    let [block, masked, bidirectional, sequential] = ids.each_ref().map(|id| case(id));
    ensure(!sequential.exported, || {
        "the Sequential case is exported".into()
    })?;
    ensure(
        reason(&ids[3]).starts_with("step \"layers/1/main\": its inputs or initial state are computed from an earlier step's results"),
        || reason(&ids[3]),
    )?;
    match layout {
        Layout::Torch | Layout::Cudnn => {
            // Keras repeats the previous output at masked steps.
            ensure(
                reason(&ids[1]).contains("writes zeros past a row's length"),
                || reason(&ids[1]),
            )?;
            // Bidirectional with return_sequences outputs zeros at masked steps.
            ensure(bidirectional.exported, || reason(&ids[2]))?;
            ensure(!block.exported, || "peepholes exported".into())
        }
        Layout::Block | Layout::BlockV2 => {
            ensure(block.exported, || reason(&ids[0]))?;
            ensure(reason(&ids[1]).contains("no per-row lengths"), || {
                reason(&ids[1])
            })
        }
        Layout::Keras => ensure(reason(&ids[0]).contains("peepholes"), || reason(&ids[0])),
        Layout::Onnx | Layout::OnnxLayout1 => {
            // The ONNX LSTM writes zeros past sequence_lens too.
            ensure(
                reason(&ids[1]).contains("the ONNX LSTM (its Y past sequence_lens)"),
                || reason(&ids[1]),
            )?;
            ensure(block.exported && bidirectional.exported, || {
                format!("{}; {}", reason(&ids[0]), reason(&ids[2]))
            })
        }
        Layout::Canonical | Layout::Tf1 => ensure(
            block.exported && masked.exported && bidirectional.exported,
            || {
                format!(
                    "{}; {}; {}",
                    reason(&ids[0]),
                    reason(&ids[1]),
                    reason(&ids[2])
                )
            },
        ),
    }
}

fn main() {
    let args = Arguments::from_args();
    let root = Arc::new(reference());
    let selection = conformance::select(&root, &Filter::new(GATE_SAMPLE).unwrap()).unwrap();
    assert!(selection.errors.is_empty(), "{:?}", selection.errors);
    let cases = Arc::new(selection.cases);
    let mut trials = Vec::new();
    let mut add = |name: String, layout, mode, dtype| {
        let (root, cases) = (root.clone(), cases.clone());
        trials.push(Trial::test(name, move || {
            gate_loop(&root, &cases, layout, mode, dtype)
        }));
    };
    for layout in Layout::ALL {
        if layout.has_forget_bias() {
            for mode in [ForgetBias::Kept, ForgetBias::Folded] {
                let name = format!("float32/{layout}/forget-bias-{mode}");
                add(name, layout, Some(mode), Dtype::F32);
            }
        } else {
            add(format!("float32/{layout}"), layout, None, Dtype::F32);
        }
    }
    for layout in FLOAT64_LAYOUTS {
        add(format!("float64/{layout}"), layout, None, Dtype::F64);
    }
    for layout in Layout::ALL {
        trials.push(Trial::test(format!("synthetic/{layout}"), move || {
            synthetic(layout)
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}
