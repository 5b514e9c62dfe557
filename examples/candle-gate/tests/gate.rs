//! Every recorded case of the reference suite, in float32 and float64,
//! through candle's LSTM; the outcome of each must be the one in
//! `tests/expected.txt`, exactly: a case that newly passes, newly fails or
//! is refused for another reason fails this test.
//!
//! `CANDLE_GATE_BLESS=1 cargo test` rewrites the expectations from this
//! run instead of comparing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use candle_gate::{CandleLstm, REFUSAL};
use lstm_parity::conformance::diagnose::DiagnoseOptions;
use lstm_parity::conformance::report::failure_detail;
use lstm_parity::conformance::{check_runner, select, Case, CaseRun, Dtype, Filter};
use lstm_parity::dialect::layout::Layout;

const EXPECTED: &str = "tests/expected.txt";

fn run(case: &Case, dtype: Dtype) -> CaseRun {
    // External: the diagnosis compares each step with the Rust LSTM and
    // tries the known mistakes; candle's gate order is the canonical one.
    let options = DiagnoseOptions {
        external: true,
        layout: Some(Layout::Canonical),
        nan_means_not_written: false,
    };
    match dtype {
        Dtype::F32 => check_runner::<f32>(case, dtype, None, &mut CandleLstm, options),
        Dtype::F64 => check_runner::<f64>(case, dtype, None, &mut CandleLstm, options),
        other => unreachable!("the suite runs candle in float32 and float64, not {other}"),
    }
}

/// `pass`, `fail`, `refused FEATURE, ...` or `error MESSAGE`.
fn outcome(run: &CaseRun) -> String {
    match &run.error {
        _ if run.passed() => "pass".into(),
        Some(e) => match e.strip_prefix(REFUSAL) {
            Some(reasons) => {
                let features: Vec<&str> = reasons
                    .split("; ")
                    .map(|r| r.split(" (").next().unwrap_or(r))
                    .collect();
                format!("refused {}", features.join(", "))
            }
            None => format!("error {e}"),
        },
        None => "fail".into(),
    }
}

#[test]
fn candle_on_every_recorded_case() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reference");
    let selection = select(&root, &Filter::new::<&str>(&[]).unwrap()).unwrap();
    assert!(selection.errors.is_empty(), "{:?}", selection.errors);

    let mut lines = String::new();
    let mut details = String::new();
    let mut reasons = std::collections::BTreeMap::new();
    let (mut passed, mut refused, mut failed) = (0, 0, 0);
    for case in &selection.cases {
        for dtype in Dtype::ALL {
            let r = run(case, dtype);
            let o = outcome(&r);
            match o.split(' ').next() {
                Some("pass") => passed += 1,
                Some("refused") => {
                    refused += 1;
                    let e = r.error.as_deref().unwrap_or_default();
                    for reason in e[REFUSAL.len()..].split("; ") {
                        *reasons.entry(reason.to_string()).or_insert(0) += 1;
                    }
                }
                _ => {
                    failed += 1;
                    details.push_str(&failure_detail(&r));
                }
            }
            writeln!(lines, "{} {dtype} {o}", r.id).unwrap();
        }
    }

    let mut summary = format!(
        "candle-nn LSTM on {} cases x 2 dtypes: {passed} pass, {refused} refused, {failed} fail\n",
        selection.cases.len()
    );
    for (reason, n) in &reasons {
        writeln!(summary, "  refused {n}x: {reason}").unwrap();
    }
    if !details.is_empty() {
        writeln!(summary, "failures:\n{details}").unwrap();
    }
    // Straight to stderr, past the test harness's capture: the result is
    // the point of this example, so it is shown on every run.
    std::io::stderr().write_all(summary.as_bytes()).unwrap();

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED);
    let header = "# candle's LSTM on every recorded case: `id dtype outcome`, written by\n\
                  # `CANDLE_GATE_BLESS=1 cargo test` (tests/gate.rs).\n";
    if std::env::var_os("CANDLE_GATE_BLESS").is_some() {
        std::fs::write(&path, format!("{header}{lines}")).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    let expected: Vec<&str> = expected.lines().filter(|l| !l.starts_with('#')).collect();
    let got: Vec<&str> = lines.lines().collect();
    let mut diff = String::new();
    for l in expected.iter().filter(|l| !got.contains(l)) {
        writeln!(diff, "- {l}").unwrap();
    }
    for l in got.iter().filter(|l| !expected.contains(l)) {
        writeln!(diff, "+ {l}").unwrap();
    }
    assert!(
        diff.is_empty(),
        "outcomes differ from {EXPECTED} (- expected, + this run; \
         CANDLE_GATE_BLESS=1 rewrites it):\n{diff}"
    );
}
