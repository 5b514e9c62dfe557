//! The gate's machinery with the Rust LSTM as the implementation: what is
//! compared and what is not, hints, expected failures and stated
//! tolerances, the command line, and the gate's refusals (bad outputs,
//! stale or foreign exports, folders it does not own). The loop through
//! every layout is `tests/gate_layouts.rs`, one trial per layout.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{check_in, export_in, reference, rust_implementation, scratch};

use lstm_parity::conformance::check::{check_reduced_outputs, NotCompared};
use lstm_parity::conformance::expectations::Expectations;
use lstm_parity::conformance::gate::{self, CheckOptions, ExportOptions, GateError};
use lstm_parity::conformance::report::{self, Report};
use lstm_parity::conformance::{self, Case, Dtype, Filter};
use lstm_parity::dialect::layout::{ForgetBias, Layout};
use lstm_parity::dialect::{Runner, RustLstm};
use lstm_parity::lstm::{Gate, Precision};
use lstm_parity::tensor::Tensor;

fn cases(filter: &[&str]) -> Vec<Case> {
    let s = conformance::select(&reference(), &Filter::new(filter).unwrap()).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    s.cases
}

/// tf1/rand-001-basic-dyn exported in the onnx layout (float32) and run by
/// the Rust LSTM: a passing export and outputs folder for a test to break.
fn rand001_onnx_outputs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = scratch();
    let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
    export(
        &cases(&["tf1/rand-001-basic-dyn"]),
        &ex,
        Layout::Onnx,
        Dtype::F32,
        None,
    );
    rust_implementation::<f32>(&ex, &out, false);
    (tmp, ex, out)
}

fn check(
    export: &Path,
    outputs: &Path,
    expectations: Option<&Expectations>,
) -> Result<Report, GateError> {
    check_in(&reference(), export, outputs, expectations)
}

fn export(
    cases: &[Case],
    dir: &Path,
    layout: Layout,
    dtype: Dtype,
    forget_bias: Option<ForgetBias>,
) -> gate::ExportIndex {
    export_in(&reference(), cases, dir, layout, dtype, forget_bias)
}

/// The block case's outputs are per-step states: without traces only `h` and `ci`
/// (from the output, as no mask applies) are compared, and a case left with
/// nothing to compare fails.
#[test]
fn outputs_that_need_traces_are_not_compared_without_them() {
    let suite = scratch();
    let id = common::block_case(suite.path());
    let cases = conformance::select(suite.path(), &Filter::new(&[id.as_str()]).unwrap())
        .unwrap()
        .cases;
    let tmp = scratch();
    let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
    export_in(suite.path(), &cases, &ex, Layout::Block, Dtype::F32, None);
    rust_implementation::<f32>(&ex, &out, false);
    let report = check_in(suite.path(), &ex, &out, None).unwrap();
    let run = &report.runs[0];
    assert!(run.passed());
    let compared: Vec<&str> = run.comparisons.iter().map(|c| c.output.as_str()).collect();
    // The block op records no final state: the written h_n and c_n are
    // held to the Rust LSTM's (the contract defines them), not ignored.
    assert_eq!(
        compared,
        vec![
            "ci",
            "h",
            "trace/0/h",
            "main/h_n.0.npy (unrecorded: against the Rust LSTM)",
            "main/c_n.0.npy (unrecorded: against the Rust LSTM)"
        ]
    );
    let not_compared: Vec<&str> = run.not_compared.iter().map(|n| n.output.as_str()).collect();
    assert_eq!(not_compared, vec!["co", "cs", "f", "i", "o", "trace/0/c"]);
    assert!(run
        .not_compared
        .iter()
        .all(|n| n.reason == conformance::NEEDS_TRACES));
    let all: Vec<conformance::NotCompared> = cases[0]
        .expected
        .keys()
        .map(|k| conformance::NotCompared {
            output: k.clone(),
            reason: "test".into(),
        })
        .collect();
    let none = lstm_parity::conformance::check_outputs_except::<f32>(
        &cases[0],
        &Default::default(),
        Dtype::F32,
        None,
        &all,
    );
    assert!(!none.passed());
    assert!(none.error.unwrap().starts_with("nothing to compare"));
}

/// A Rust implementation that reads the TF1 kernel in Keras's gate order:
/// the whole file loop, and the hint in the layout's own gate names.
#[test]
fn a_wrong_implementation_through_the_files_gets_a_hint() {
    let tmp = scratch();
    let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
    let c = cases(&["tf1/rand-017-basic-dyn-init"]);
    let index = export(&c, &ex, Layout::Tf1, Dtype::F32, None);
    for s in &index.cases[0].steps {
        let (file, mut step) = gate::load_step::<f32>(&ex, &s.dir).unwrap();
        for l in &mut step.layers {
            *l = lstm_parity::conformance::mistake::permute_gates(
                l,
                [Gate::I, Gate::G, Gate::F, Gate::O],
            );
        }
        let run = RustLstm.run_step(&step).unwrap();
        gate::write_outputs(&out, &file, &run, false).unwrap();
    }
    gate::write_outputs_info(&out, &ex, &index, "wrong").unwrap();
    let report = check(&ex, &out, None).unwrap();
    assert_eq!(report.exit_code(), 1);
    let text = lstm_parity::conformance::report::failure_detail(&report.runs[0]);
    assert!(text.contains("hint: gate order: the outputs match the weights read with the gate blocks as [i, f, j, o] instead of the layout's [i, j, f, o]"), "{text}");
    // No traces were written: the divergence names y, not a trace.
    assert!(text.contains("(h from y)"), "{text}");
    assert!(!text.contains("from trace"), "{text}");
}

// ---------------------------------------------------------------------------
// Expected-failure lists.

fn expectations(toml: &str) -> Expectations {
    let tmp = scratch();
    let path = tmp.path().join("x.toml");
    fs::write(&path, toml).unwrap();
    Expectations::load(&path).unwrap()
}

/// An export of three cases whose outputs fail one case (rand-001: its
/// y is off by 0.5).
fn gate_with_one_failure() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = scratch();
    let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
    let c = cases(&[
        "tf1/rand-001-basic-dyn",
        "tf1/rand-003*",
        "tf1/rand-008-lstm-proj-dyn",
    ]);
    export(&c, &ex, Layout::Onnx, Dtype::F32, None);
    rust_implementation::<f32>(&ex, &out, false);
    let y = out.join("tf1/rand-001-basic-dyn/main/y.npy");
    let Tensor::F32(a) = lstm_parity::conformance::npy::read(&y).unwrap() else {
        panic!()
    };
    lstm_parity::conformance::npy::write(&y, &Tensor::F32(a.mapv(|v| v + 0.5))).unwrap();
    (tmp, ex, out)
}

#[test]
fn expected_failures_are_strict() {
    let (_tmp, ex, out) = gate_with_one_failure();
    // Unlisted: exit 1.
    assert_eq!(check(&ex, &out, None).unwrap().exit_code(), 1);
    // Listed with a reason: expected failure, exit 0.
    let list = expectations(
        "[[expected_failure]]\ncase = \"tf1/rand-001-basic-dyn\"\nreason = \"y off by 0.5\"\n",
    );
    let r = check(&ex, &out, Some(&list)).unwrap();
    assert_eq!(r.exit_code(), 0, "{:?}", r.expectation_errors);
    assert_eq!(
        r.runs
            .iter()
            .find(|x| x.id == "tf1/rand-001-basic-dyn")
            .unwrap()
            .verdict(),
        "xfail"
    );
    // A listed case that passes: exit 1, "remove it".
    let list =
        expectations("[[expected_failure]]\ncase = \"tf1/rand-0*\"\nreason = \"all of them\"\n");
    let r = check(&ex, &out, Some(&list)).unwrap();
    assert_eq!(r.exit_code(), 1);
    assert!(
        r.expectation_errors.iter().any(|e| e
            .contains("tf1/rand-003-basic-fb05-static [float32] is listed as expected to fail")
            && e.contains("but passed: remove it from the list")),
        "{:?}",
        r.expectation_errors
    );
    // An entry that matches nothing, and one that matches only a case not exported.
    let list = expectations(
        "[[expected_failure]]\ncase = \"tf1/rand-001-basic-dyn\"\nreason = \"r\"\n\
         [[expected_failure]]\ncase = \"tf1/no-such-case\"\nreason = \"r\"\n\
         [[expected_failure]]\ncase = \"tf1/rand-008-*\"\nreason = \"r\"\n",
    );
    let r = check(&ex, &out, Some(&list)).unwrap();
    assert_eq!(r.exit_code(), 1);
    assert!(
        r.expectation_errors
            .contains(&"\"tf1/no-such-case\" matches no case: remove it from the list".to_string()),
        "{:?}",
        r.expectation_errors
    );
    assert!(r
        .expectation_errors
        .iter()
        .any(|e| e.contains("\"tf1/rand-008-*\" matches only cases that were not checked")));
    // An entry for another layout does not apply.
    let list = expectations("[[expected_failure]]\ncase = \"tf1/rand-001-basic-dyn\"\nreason = \"r\"\nlayouts = [\"torch\"]\n");
    assert_eq!(check(&ex, &out, Some(&list)).unwrap().exit_code(), 1);
}

#[test]
fn stated_tolerances_judge_their_cases_and_are_strict() {
    // rand-001's y is off by exactly 0.5 (float32: 0.5 +- rounding).
    let (_tmp, ex, out) = gate_with_one_failure();
    let rand001 = |r: &Report| {
        r.runs
            .iter()
            .find(|x| x.id == "tf1/rand-001-basic-dyn")
            .unwrap()
            .clone()
    };
    // A level that admits the error: the case passes at it, and the
    // report names the level and the reason.
    let list = expectations(
        "[[tolerance]]\ncase = \"tf1/rand-001-*\"\nlevel = \"abs:0.6\"\nreason = \"quantized\"\n",
    );
    let r = check(&ex, &out, Some(&list)).unwrap();
    assert_eq!(r.exit_code(), 0, "{:?}", r.expectation_errors);
    let run = rand001(&r);
    assert!(run.passed());
    assert_eq!(
        (run.tolerance.as_str(), run.tolerance_reason.as_deref()),
        ("abs:0.6", Some("quantized"))
    );
    let table = lstm_parity::conformance::report::table(&r);
    assert!(table.contains("ok (at the stated abs:0.6)"), "{table}");
    assert!(
        table.contains("abs:0.6 for 1 case run(s): quantized"),
        "{table}"
    );
    // The other cases keep their own level.
    assert!(r
        .runs
        .iter()
        .filter(|x| x.id != "tf1/rand-001-basic-dyn")
        .all(|x| x.tolerance == "default" && x.tolerance_reason.is_none()));
    // A level the error exceeds: still a failure.
    let list = expectations(
        "[[tolerance]]\ncase = \"tf1/rand-001-*\"\nlevel = \"abs:0.4\"\nreason = \"quantized\"\n",
    );
    let r = check(&ex, &out, Some(&list)).unwrap();
    assert_eq!(r.exit_code(), 1);
    assert!(!rand001(&r).passed());
    // Strict: a level whose cases all pass at their own level, and one
    // that judges nothing, are stale.
    let list = expectations(
        "[[tolerance]]\ncase = \"tf1/rand-003*\"\nlevel = \"abs:0.6\"\nreason = \"r\"\n\
         [[tolerance]]\ncase = \"tf1/no-such-case\"\nlevel = \"abs:0.6\"\nreason = \"r\"\n",
    );
    let r = check(&ex, &out, Some(&list)).unwrap();
    assert_eq!(r.exit_code(), 1);
    assert!(
        r.expectation_errors
            .iter()
            .any(|e| e.contains("stated for \"tf1/rand-003*\" is not needed")),
        "{:?}",
        r.expectation_errors
    );
    assert!(
        r.expectation_errors
            .iter()
            .any(|e| e.contains("stated for \"tf1/no-such-case\" judges no checked case")),
        "{:?}",
        r.expectation_errors
    );
    // --tolerance overrides every stated level.
    let list = expectations(
        "[[tolerance]]\ncase = \"tf1/rand-001-*\"\nlevel = \"abs:0.6\"\nreason = \"r\"\n",
    );
    let r = gate::check(&CheckOptions {
        export_dir: &ex,
        outputs_dir: &out,
        reference: &reference(),
        tolerance: Some(&"abs:0.1".parse().unwrap()),
        expectations: Some(&list),
        precision: None,
    })
    .unwrap();
    assert_eq!(rand001(&r).tolerance, "abs:0.1");
    assert_eq!(r.exit_code(), 1);
    // A bad level is refused when the list is read.
    let tmp = scratch();
    let path = tmp.path().join("t.toml");
    fs::write(
        &path,
        "[[tolerance]]\ncase = \"x\"\nlevel = \"loose\"\nreason = \"r\"\n",
    )
    .unwrap();
    let e = Expectations::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("tolerance entry 1 (\"x\")") && e.contains("unknown tolerance level"),
        "{e}"
    );
}

#[test]
fn malformed_expectation_lists_are_refused() {
    let tmp = scratch();
    for (name, text, message) in [
        (
            "a.toml",
            "[[expected_failure]]\ncase = \"x\"\n",
            "missing field `reason`",
        ),
        (
            "b.toml",
            "[[expected_failure]]\ncase = \"x\"\nreason = \" \"\n",
            "a reason is required",
        ),
        (
            "c.toml",
            "[[expected_failure]]\ncase = \"x\"\nreason = \"r\"\ncolour = 1\n",
            "unknown field `colour`",
        ),
        (
            "d.toml",
            "[[expected_failure]]\ncase = \"x\"\nreason = \"r\"\nlayouts = [\"caffe\"]\n",
            "unknown layout \"caffe\"",
        ),
        (
            "e.json",
            "{\"expected_failure\": [{\"case\": \"[\", \"reason\": \"r\"}]}",
            "bad glob",
        ),
        ("f.yaml", "", "must end in .toml or .json"),
        (
            "g.toml",
            "[[expected_failure]]\ncase = \"x\"\nreason = \"r\"\nlayouts = []\n",
            "an empty list",
        ),
        (
            "h.json",
            "{\"expected_failure\": [{\"case\": \"x\", \"reason\": \"r\", \"dtypes\": []}]}",
            "an empty list",
        ),
        (
            "i.toml",
            "[[expected_failure]]\ncase = \"x\"\nreason = \"r\"\n[[expected_failure]]\ncase = \"x\"\nreason = \"again\"\n",
            "entry 2 (\"x\") repeats entry 1",
        ),
    ] {
        let path = tmp.path().join(name);
        fs::write(&path, text).unwrap();
        let e = Expectations::load(&path).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(message), "{name}: {e}");
    }
}

// ---------------------------------------------------------------------------
// The command line: reports, exit codes, bad input.

fn lstm_parity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm-parity"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `lstm-parity export --layout LAYOUT --out OUT EXTRA...`.
fn cli_export(layout: &str, out: &Path, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let args = [&["export", "--layout", layout, "--out", out], extra].concat();
    lstm_parity(&args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn cli_export_check_and_junit() {
    let (tmp, ex, out) = gate_with_one_failure();
    let junit = tmp.path().join("report.xml");
    let o = lstm_parity(&[
        "check",
        "--outputs",
        out.to_str().unwrap(),
        "--report",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("tf1/rand-001-basic-dyn [float32] output outputs:"),
        "{t}"
    );
    // The failure line in a user's terms: the error, against the output's
    // scale, and against the tolerance; no ULPs for an absolute bound.
    let line = t
        .lines()
        .find(|l| l.starts_with("tf1/rand-001-basic-dyn [float32] output outputs:"))
        .unwrap();
    assert!(
        line.contains("max abs error 5.000e-1 (")
            && line.contains("of the output's scale")
            && line.contains(" times the tolerance;")
            && !line.contains("ulp"),
        "{line}"
    );
    assert!(t.contains("not exported (the layout cannot express them):\ntf1/rand-008-lstm-proj-dyn: step \"main\": layer 0: a projection"), "{t}");
    assert!(
        t.contains("1 passed, 1 failed, 0 errors, 0 refused, 0 expected failures, 1 not exported"),
        "{t}"
    );

    // JUnit: the common schema's shape and required attributes.
    let xml = fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    for a in ["name", "tests", "failures", "errors"] {
        assert!(root.attribute(a).is_some(), "testsuites@{a}");
    }
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert!(!suites.is_empty());
    let mut counted = (0, 0, 0);
    for suite in &suites {
        assert_eq!(suite.tag_name().name(), "testsuite");
        for a in ["name", "tests", "failures", "errors", "skipped"] {
            assert!(suite.attribute(a).is_some(), "testsuite@{a}");
        }
        let cases: Vec<_> = suite.children().filter(|n| n.is_element()).collect();
        assert_eq!(suite.attribute("tests").unwrap(), cases.len().to_string());
        for case in cases {
            assert_eq!(case.tag_name().name(), "testcase");
            assert!(case.attribute("name").is_some() && case.attribute("classname").is_some());
            counted.0 += 1;
            for child in case.children().filter(|n| n.is_element()) {
                match child.tag_name().name() {
                    "failure" => {
                        assert!(
                            child.attribute("message").is_some()
                                && child.attribute("type").is_some()
                        );
                        counted.1 += 1;
                    }
                    "skipped" => counted.2 += 1,
                    "error" => assert!(child.attribute("message").is_some()),
                    other => panic!("unexpected element {other}"),
                }
            }
        }
    }
    assert_eq!(counted, (3, 1, 1), "3 cases: one failure, one not exported");
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("1"));

    // JSON, and the comparison of two reports.
    let base = tmp.path().join("base.json");
    let list = tmp.path().join("x.json");
    fs::write(
        &list,
        r#"{"expected_failure": [{"case": "tf1/rand-001-basic-dyn", "reason": "y off by 0.5"}]}"#,
    )
    .unwrap();
    let o = lstm_parity(&[
        "check",
        "--outputs",
        out.to_str().unwrap(),
        "--export",
        ex.to_str().unwrap(),
        "--expectations",
        list.to_str().unwrap(),
        "--format",
        "json",
        "--report",
        base.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["expected_failures"], 1);
    assert_eq!(v["gate"]["layout"], "onnx");
    let failing = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["verdict"] == "xfail")
        .unwrap();
    assert_eq!(failing["expected_failure"], "y off by 0.5");
    assert!(failing["features"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "forget_bias"));

    // Now break the passing case too: compare names it first.
    let y = out.join("tf1/rand-003-basic-fb05-static/main/y.npy");
    let Tensor::F32(a) = lstm_parity::conformance::npy::read(&y).unwrap() else {
        panic!()
    };
    lstm_parity::conformance::npy::write(&y, &Tensor::F32(a.mapv(|v| v * 2.0))).unwrap();
    let new = tmp.path().join("new.json");
    let o = lstm_parity(&[
        "check",
        "--outputs",
        out.to_str().unwrap(),
        "--report",
        new.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = lstm_parity(&["compare", base.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.starts_with(
            "newly failing (1):\n  tf1/rand-003-basic-fb05-static [float32]: pass -> fail"
        ),
        "{t}"
    );
    let o = lstm_parity(&["compare", new.to_str().unwrap(), base.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("fixed (1):"));
    let o = lstm_parity(&["compare", base.to_str().unwrap(), list.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("x.json: not a JSON report"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_outputs_are_errors_naming_case_and_file() {
    type Break = fn(&Path);
    let breakers: Vec<(&str, Break, &str)> = vec![
        (
            "missing file",
            |d| fs::remove_file(d.join("h_n.0.npy")).unwrap(),
            "h_n.0.npy: missing",
        ),
        (
            "wrong shape",
            |d| {
                let p = d.join("y.npy");
                let Tensor::F32(a) = lstm_parity::conformance::npy::read(&p).unwrap() else {
                    panic!()
                };
                lstm_parity::conformance::npy::write(
                    &p,
                    &Tensor::F32(a.slice_axis(ndarray::Axis(0), (0..1).into()).to_owned()),
                )
                .unwrap();
            },
            "y.npy: shape [1, 2, 3] where [4, 2, 3] is required",
        ),
        (
            "wrong dtype",
            |d| {
                let p = d.join("c_n.0.npy");
                let t = lstm_parity::conformance::npy::read(&p).unwrap();
                lstm_parity::conformance::npy::write(&p, &Tensor::F64(t.as_f64().unwrap()))
                    .unwrap();
            },
            "c_n.0.npy: dtype float64 where float32 is required",
        ),
        (
            "extra file",
            |d| fs::write(d.join("h_n.1.npy"), b"").unwrap(),
            "h_n.1.npy: unexpected file",
        ),
    ];
    for (what, brk, message) in breakers {
        let (_tmp, _export, out) = rand001_onnx_outputs();
        brk(&out.join("tf1/rand-001-basic-dyn/main"));
        let o = lstm_parity(&["check", "--outputs", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("error: case tf1/rand-001-basic-dyn: ") && t.contains(message),
            "{what}: {t}"
        );
        assert!(!t.contains("panicked"), "{what}: {t}");
    }
}

#[test]
fn an_implementation_that_cannot_run_a_step_fails_it_with_its_message() {
    let (_tmp, ex, out) = rand001_onnx_outputs();
    let d = out.join("tf1/rand-001-basic-dyn/main");
    // Beside outputs, error.txt is stale: an error naming both.
    fs::write(d.join("error.txt"), "layout 1 is not supported\n").unwrap();
    let r = check(&ex, &out, None).unwrap();
    assert_eq!(r.exit_code(), 2);
    assert!(
        r.errors[0]
            .message
            .contains("error.txt: written beside the output"),
        "{:?}",
        r.errors
    );
    for e in fs::read_dir(&d).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "npy") {
            fs::remove_file(p).unwrap();
        }
    }
    let r = check(&ex, &out, None).unwrap();
    assert_eq!(r.exit_code(), 1);
    assert_eq!(
        r.runs[0].error.as_deref(),
        Some("the implementation could not run it: layout 1 is not supported")
    );
    // Not UTF-8, and long: shown lossily and trimmed, never empty.
    let mut long = b"\xff\xfe bad bytes ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 100_000));
    fs::write(d.join("error.txt"), long).unwrap();
    let r = check(&ex, &out, None).unwrap();
    let e = r.runs[0].error.as_deref().unwrap();
    assert!(
        e.contains("\u{fffd}\u{fffd} bad bytes") && e.contains("bytes shown]") && e.len() < 70_000,
        "{}",
        &e[..80]
    );
}

#[test]
fn outputs_or_exports_of_another_suite_version_are_refused() {
    let tmp = scratch();
    let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
    let c = cases(&["tf1/rand-001-basic-dyn"]);
    export(&c, &ex, Layout::Onnx, Dtype::F32, None);
    rust_implementation::<f32>(&ex, &out, false);
    // Outputs made for another export.
    let info = out.join("outputs.json");
    let original = fs::read_to_string(&info).unwrap();
    let fp = gate::read_index(&ex).unwrap().suite_fingerprint;
    let other = format!("sha256:{}", "0".repeat(64));
    fs::write(&info, original.replace(&fp, &other)).unwrap();
    let o = lstm_parity(&["check", "--outputs", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains(&format!(
            "written for suite fingerprint {other}, but the export in"
        )),
        "{}",
        text(&o)
    );
    fs::write(&info, original).unwrap();
    // A reference that changed since the export.
    let root = tmp.path().join("reference");
    let case_dir = root.join("tf1/rand-001-basic-dyn");
    fs::create_dir_all(&case_dir).unwrap();
    for e in fs::read_dir(reference().join("tf1/rand-001-basic-dyn")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), case_dir.join(e.file_name())).unwrap();
    }
    assert!(check_in(&root, &ex, &out, None).is_ok());
    let manifest = case_dir.join("case.json");
    let m = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        m.replacen("\"description\": \"", "\"description\": \"edited: ", 1),
    )
    .unwrap();
    let e = check_in(&root, &ex, &out, None).unwrap_err().to_string();
    assert!(
        e.contains("the reference file tf1/rand-001-basic-dyn/case.json changed since the export")
            && e.contains("export again"),
        "{e}"
    );
    fs::remove_dir_all(&case_dir).unwrap();
    fs::create_dir_all(root.join("tf1/other")).unwrap();
    fs::write(root.join("tf1/other/case.json"), m).unwrap();
    let e = check_in(&root, &ex, &out, None).unwrap_err().to_string();
    assert!(
        e.contains("case tf1/rand-001-basic-dyn is not in the reference folder"),
        "{e}"
    );
    // An export made with --reference DIR, checked without it: the
    // message names the folder it was made from.
    fs::remove_dir_all(root.join("tf1/other")).unwrap();
    let edited = root.join("tf1/rand-001-basic-dyn");
    fs::create_dir_all(&edited).unwrap();
    for e in fs::read_dir(reference().join("tf1/rand-001-basic-dyn")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), edited.join(e.file_name())).unwrap();
    }
    let m = fs::read_to_string(reference().join("tf1/rand-001-basic-dyn/case.json")).unwrap();
    fs::write(
        edited.join("case.json"),
        m.replacen("\"description\": \"", "\"description\": \"edited: ", 1),
    )
    .unwrap();
    let ex2 = tmp.path().join("export2");
    let out2 = tmp.path().join("out2");
    export_in(
        &root,
        &cases_in(&root, &["tf1/rand-001-basic-dyn"]),
        &ex2,
        Layout::Onnx,
        Dtype::F32,
        None,
    );
    rust_implementation::<f32>(&ex2, &out2, false);
    assert!(check_in(&root, &ex2, &out2, None).is_ok());
    let e = check(&ex2, &out2, None).unwrap_err().to_string();
    let made_from = fs::canonicalize(&root).unwrap();
    assert!(
        e.contains(&format!(
            "the export was made from the reference folder {} and this check reads",
            made_from.display()
        )) && e.contains(&format!("check with --reference {}", made_from.display())),
        "{e}"
    );
}

fn cases_in(root: &Path, filter: &[&str]) -> Vec<Case> {
    let s = conformance::select(root, &Filter::new(filter).unwrap()).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    s.cases
}

#[test]
fn export_refuses_foreign_folders_and_bad_options() {
    let tmp = scratch();
    let dir = tmp.path().join("x");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    let o = cli_export("onnx", &dir, &["rand-001"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains(
            "holds \"notes.txt\", which its index.json does not list; refusing to replace it"
        ) || text(&o).contains("not empty, and index.json is not an export index"),
        "{}",
        text(&o)
    );
    assert_eq!(fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
    // Its own export is replaced, and stale cases go.
    let own = tmp.path().join("own");
    let o = cli_export("tf1", &own, &["rand-00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(own
        .join("tf1/rand-002-basic-fb0-dyn-tm/main/step.json")
        .is_file());
    let o = cli_export("tf1", &own, &["tf1/rand-001-*"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!own.join("tf1/rand-002-basic-fb0-dyn-tm").exists());
    assert!(text(&o)
        .contains("exported 1 of 1 cases (1 steps) in layout tf1, float32, forget_bias kept"));
    // Unknown layout, a forget_bias mode the layout lacks.
    let o = cli_export("caffe", &own, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown layout \"caffe\" (layouts: canonical, tf1, keras, block, block-v2, onnx, onnx-layout1, torch, cudnn)"), "{}", text(&o));
    let o = cli_export("keras", &own, &["--forget-bias", "kept"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("layout keras has no forget_bias option"),
        "{}",
        text(&o)
    );
    // Not exported cases are listed with the reason on stdout.
    let o = cli_export("torch", &own, &["rand-006"]);
    assert!(text(&o).contains("not exported: tf1/rand-006-lstm-peep-dyn: step \"main\": layer 0: peepholes; torch has none"), "{}", text(&o));
}

/// `run` takes the same expected-failure lists and report formats.
#[test]
fn run_applies_expectations_and_writes_junit() {
    let tmp = scratch();
    let list = tmp.path().join("x.toml");
    fs::write(
        &list,
        "[[expected_failure]]\ncase = \"tf1/nb000-basic-one-step\"\nreason = \"it does not fail\"\n",
    )
    .unwrap();
    let report = tmp.path().join("r.xml");
    let o = lstm_parity(&[
        "run",
        "nb000",
        "--expectations",
        list.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("tf1/nb000-basic-one-step [float32] is listed as expected to fail (\"tf1/nb000-basic-one-step\": it does not fail) but passed: remove it from the list"), "{}", text(&o));
    let xml = fs::read_to_string(&report).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(
        doc.root_element().attribute("name"),
        Some("lstm-parity run")
    );
    assert!(xml.contains("type=\"stale_expectation\""));
    let o = lstm_parity(&["run", "nb000", "--format", "junit"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("<?xml"));
    // A stated tolerance is for implementations, not for the Rust LSTM.
    fs::write(
        &list,
        "[[tolerance]]\ncase = \"*\"\nlevel = \"abs:1\"\nreason = \"r\"\n",
    )
    .unwrap();
    let o = lstm_parity(&["run", "nb000", "--expectations", list.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("applies to `check`"), "{}", text(&o));
}

// ---------------------------------------------------------------------------
// The committed reports of the real implementations (scripts/gates/results/,
// written by `scripts/gates/run IMPL --update`): they are what docs/compatibility.md
// shows, so they must belong to this suite and to the committed
// expectation lists.

#[test]
fn committed_gate_reports_match_the_suite_and_the_expectations() {
    let root = reference();
    let gates = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gates");
    let ids: Vec<String> = conformance::suite::discover(&root)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let all = cases(&["*"]);
    let mut reports: Vec<PathBuf> = fs::read_dir(gates.join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    reports.sort();
    let names: Vec<String> = reports
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // Every report is a column of the matrix: `columns=(...)` in
    // scripts/gates/run, which also gives the matrix's column order.
    let run = fs::read_to_string(gates.join("run")).unwrap();
    let columns: Vec<String> = run
        .split_once("columns=(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .expect("scripts/gates/run lists its columns")
        .0
        .split_whitespace()
        .map(|c| format!("{c}.json"))
        .collect();
    for name in &names {
        assert!(
            columns.contains(name),
            "{name} is not a column of scripts/gates/run"
        );
    }
    for ci in [
        "onnxruntime.onnx.json",
        "tract.onnx.json",
        "openvino.onnx.json",
    ] {
        assert!(names.iter().any(|n| n == ci), "{ci} missing");
    }
    for path in &reports {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (implementation, layout) = name.split_once('.').unwrap();
        let report: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        let fingerprint = gate::plan(
            &all,
            &ExportOptions {
                selected_by: Some(&gate::SelectedBy::all()),
                layout: layout.parse().unwrap(),
                dtype: report["gate"]["dtype"].as_str().unwrap().parse().unwrap(),
                forget_bias: Some(
                    report["gate"]["forget_bias"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap(),
                ),
                interrupt: None,
            },
        )
        .unwrap()
        .suite_fingerprint;
        assert_eq!(
            report["gate"]["suite_fingerprint"], fingerprint,
            "{name}: made on another version of reference/: run scripts/gates/run {implementation} --update"
        );
        assert_eq!(report["gate"]["layout"], layout, "{name}");
        let summary = &report["summary"];
        for key in ["failed", "errors", "expectation_errors"] {
            assert_eq!(summary[key], 0, "{name}: {key}");
        }
        let cases = report["cases"].as_array().unwrap();
        let skipped = report["skipped"].as_array().unwrap();
        assert_eq!(cases.len() + skipped.len(), ids.len(), "{name}");
        // Every listed expected failure is one in the report, and back.
        let list =
            Expectations::load(&gates.join(format!("{implementation}.expectations.toml"))).unwrap();
        let xfail: Vec<&str> = cases
            .iter()
            .filter(|c| c["verdict"] == "xfail")
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(xfail.len() as u64, summary["expected_failures"], "{name}");
        for id in &xfail {
            assert!(
                list.entries.iter().any(|e| {
                    (e.layouts.is_empty() || e.layouts.iter().any(|l| l == layout))
                        && glob::Pattern::new(&e.case).unwrap().matches(id)
                }),
                "{name}: {id} failed as expected but no entry lists it"
            );
        }
        for e in &list.entries {
            if e.layouts.is_empty() || e.layouts.iter().any(|l| l == layout) {
                let pattern = glob::Pattern::new(&e.case).unwrap();
                assert!(
                    xfail.iter().any(|id| pattern.matches(id)),
                    "{name}: entry {:?} matches no expected failure",
                    e.case
                );
            }
        }
    }
}

/// `check --precision float16`: the outputs against TensorFlow's own
/// float16 run at `default@float16`; cases without one are not checked,
/// with that reason; a wrong output still fails.
#[test]
fn reduced_precision_checks_judge_against_the_framework_s_16_bit_run() {
    let tmp = scratch();
    let (ex, out) = (tmp.path().join("export"), tmp.path().join("out"));
    let ids = [
        "tf1/nb001-stacked",
        "tf1/grid-001-multi1-proj-projclip-fbm1-dyn-tm-seqlen-init",
    ];
    export(&cases(&ids), &ex, Layout::Tf1, Dtype::F32, None);
    rust_implementation::<f32>(&ex, &out, true);
    let at = |precision| {
        gate::check(&CheckOptions {
            export_dir: &ex,
            outputs_dir: &out,
            reference: &reference(),
            tolerance: None,
            expectations: None,
            precision,
        })
        .unwrap()
    };
    for precision in [Precision::Float16, Precision::BFloat16] {
        let r = at(Some(precision));
        assert_eq!(r.exit_code(), 0, "{}", report::table(&r));
        assert_eq!(r.runs.len(), 1);
        assert_eq!(r.runs[0].tolerance, format!("default@{precision}"));
        assert_eq!(r.skipped.len(), 1);
        assert!(r.skipped[0].reason.contains(&format!("no {precision} run")));
    }
    // One output element off by 0.05: past TF's own float16 error.
    let y = out.join("tf1/nb001-stacked/main/y.npy");
    let Tensor::F32(mut a) = lstm_parity::conformance::npy::read(&y).unwrap() else {
        panic!("float32 outputs")
    };
    a[[0, 0, 0]] += 0.05;
    lstm_parity::conformance::npy::write(&y, &Tensor::F32(a)).unwrap();
    let r = at(Some(Precision::Float16));
    assert_eq!(r.exit_code(), 1, "{}", report::table(&r));
}

/// Outputs left out of a reduced-precision verdict (they need traces the
/// implementation did not write) leave nothing to compare: a failure,
/// never a pass of nothing.
#[test]
fn a_reduced_precision_check_with_every_output_left_out_fails() {
    let case = &cases(&["tf1/nb001-stacked"])[0];
    let outputs = case
        .model
        .run_with::<f32>(
            &case.variables,
            &case.inputs,
            &mut lstm_parity::dialect::EmulatedLstm(Precision::Float16),
        )
        .unwrap();
    let check = |left_out: &[NotCompared]| {
        check_reduced_outputs(case, Precision::Float16, None, &outputs, left_out)
    };
    assert!(check(&[]).passed());
    let all: Vec<NotCompared> = case
        .expected
        .keys()
        .map(|name| NotCompared {
            output: name.clone(),
            reason: "needs traces".into(),
        })
        .collect();
    let run = check(&all);
    assert!(!run.passed());
    assert!(run.error.unwrap().starts_with("nothing to compare"));
}
