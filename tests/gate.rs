//! The gate loop (export -> an implementation -> check) with the Rust LSTM
//! as the implementation, in every layout; and the gate's refusals.
//!
//! The "implementation" here is a test-only runner that reads each
//! exported step back through the layout converters
//! (`gate::load_step`, i.e. `layout::import_layer`), runs the Rust LSTM and
//! writes the outputs as the contract says: exactly what an external
//! implementation does.

use std::path::{Path, PathBuf};

use lstm_parity::conformance::expectations::Expectations;
use lstm_parity::conformance::gate::{self, CheckOptions, ExportOptions, GateError};
use lstm_parity::conformance::report::Report;
use lstm_parity::conformance::{self, Case, Dtype, Filter};
use lstm_parity::dialect::layout::{ForgetBias, Layout};
use lstm_parity::dialect::{Runner, RustLstm};
use lstm_parity::lstm::Real;

/// A scratch folder, on a RAM file system where there is one: an export
/// is a thousand small files, and creating them on a slow disk costs
/// seconds per layout.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

fn reference() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference")
}

fn cases(filter: &[&str]) -> Vec<Case> {
    let s = conformance::select(&reference(), &Filter::new(filter).unwrap()).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    s.cases
}

/// The Rust LSTM as an external implementation: read each exported step,
/// run it, write its outputs (with traces when `traces`).
fn rust_implementation<T: Real>(export: &Path, outputs: &Path, traces: bool) {
    let index = gate::read_index(export).unwrap();
    for c in index.cases.iter().filter(|c| c.exported) {
        for s in &c.steps {
            let (file, step) = gate::load_step::<T>(export, &s.dir).unwrap();
            let run = RustLstm.run_step(&step).unwrap();
            gate::write_outputs(outputs, &file, &run, traces).unwrap();
        }
    }
    gate::write_outputs_info(outputs, export, &index, "Rust LSTM (tests/gate.rs)").unwrap();
}

fn check(
    export: &Path,
    outputs: &Path,
    expectations: Option<&Expectations>,
) -> Result<Report, GateError> {
    gate::check(&CheckOptions {
        export_dir: export,
        outputs_dir: outputs,
        reference: &reference(),
        tolerance: None,
        expectations,
    })
}

fn export(
    cases: &[Case],
    dir: &Path,
    layout: Layout,
    dtype: Dtype,
    forget_bias: Option<ForgetBias>,
) -> gate::ExportIndex {
    gate::export(
        &reference(),
        cases,
        dir,
        &ExportOptions {
            layout,
            dtype,
            forget_bias,
            force: false,
        },
    )
    .unwrap()
}

#[test]
fn the_rust_lstm_passes_the_gate_in_every_layout() {
    let all = cases(&[]);
    for layout in Layout::ALL {
        let modes: Vec<Option<ForgetBias>> = if layout.has_forget_bias() {
            vec![Some(ForgetBias::Kept), Some(ForgetBias::Folded)]
        } else {
            vec![None]
        };
        for mode in modes {
            let tmp = scratch();
            let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
            let index = export(&all, &ex, layout, Dtype::F32, mode);
            let exported = index.cases.iter().filter(|c| c.exported).count();
            assert!(exported > 0, "{layout}: nothing exported");
            // Traces in half the layouts, so both paths of the reader run.
            rust_implementation::<f32>(&ex, &out, layout as usize % 2 == 0);
            let report = check(&ex, &out, None).unwrap();
            let failed: Vec<String> = report
                .runs
                .iter()
                .filter(|r| !r.passed())
                .map(lstm_parity::conformance::report::failure_detail)
                .collect();
            assert!(
                failed.is_empty(),
                "{layout} {mode:?}:\n{}",
                failed.join("\n")
            );
            assert!(report.errors.is_empty(), "{layout}: {:?}", report.errors);
            assert_eq!(report.runs.len(), exported, "{layout}");
            assert_eq!(report.skipped.len(), all.len() - exported, "{layout}");
            assert_eq!(report.exit_code(), 0);
        }
    }
}

#[test]
fn the_rust_lstm_passes_the_gate_in_float64() {
    let all = cases(&[]);
    for layout in [Layout::Tf1, Layout::Onnx, Layout::Torch] {
        let tmp = scratch();
        let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
        let index = export(&all, &ex, layout, Dtype::F64, None);
        rust_implementation::<f64>(&ex, &out, true);
        let report = check(&ex, &out, None).unwrap();
        assert_eq!(report.summary().failed, 0, "{layout}");
        assert_eq!(
            report.summary().passed,
            index.cases.iter().filter(|c| c.exported).count()
        );
    }
}
