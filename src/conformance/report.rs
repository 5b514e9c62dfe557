//! Reports: a human table, failure details, JSON, and what changed between
//! two JSON reports. JUnit XML is in [`super::junit`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::case::CaseError;
use super::check::CaseRun;
use super::tolerance::Bound;

/// A load or input error, naming the case and file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportError {
    /// The case id.
    pub case: String,
    /// The file concerned.
    pub file: Option<String>,
    /// What is wrong, in full.
    pub message: String,
}

impl From<&CaseError> for ReportError {
    fn from(e: &CaseError) -> Self {
        ReportError {
            case: e.case.clone(),
            file: e.file.clone(),
            message: e.to_string(),
        }
    }
}

/// A case the gate did not check: its layout cannot express it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The case id.
    pub id: String,
    /// Its API.
    pub api: String,
    /// Why it was not exported.
    pub reason: String,
    /// What it exercises.
    #[serde(default)]
    pub features: Vec<String>,
}

/// What a gate check checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateInfo {
    /// The export's layout.
    pub layout: String,
    /// The export's dtype.
    pub dtype: String,
    /// `kept` or `folded`.
    pub forget_bias: String,
    /// The suite fingerprint of the export.
    pub suite_fingerprint: String,
    /// The implementation, as its outputs name it.
    pub implementation: String,
    /// Which cases the export selected (`every case`, the filters, or a
    /// count of listed cases).
    #[serde(default)]
    pub selection: String,
}

/// Everything a `run` or `check` found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// One verdict per case (and dtype).
    pub runs: Vec<CaseRun>,
    /// Cases that could not be loaded or whose outputs are unreadable.
    pub errors: Vec<ReportError>,
    /// Cases not checked (not exported).
    pub skipped: Vec<Skipped>,
    /// Stale entries of an expected-failure list.
    pub expectation_errors: Vec<String>,
    /// Set for a gate check.
    pub gate: Option<GateInfo>,
    /// The tolerance level every case was judged at (`--tolerance`), when
    /// it overrode each case's own.
    pub tolerance: Option<String>,
}

/// Counts over a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Case runs within tolerance.
    pub passed: usize,
    /// Case runs out of tolerance or that could not run, not expected to
    /// fail, other than refusals.
    pub failed: usize,
    /// Case runs the implementation refused (it wrote `error.txt` for a
    /// step), not expected to fail.
    pub refused: usize,
    /// Case runs that failed and are listed as expected to fail.
    pub expected_failures: usize,
    /// Cases that could not be loaded, or whose outputs are unreadable.
    pub errors: usize,
    /// Cases not checked (not exported).
    pub skipped: usize,
    /// Stale entries of an expected-failure list.
    pub expectation_errors: usize,
}

impl Report {
    /// A report of `runs` and load `errors`.
    pub fn new(runs: Vec<CaseRun>, errors: &[CaseError]) -> Report {
        Report {
            runs,
            errors: errors.iter().map(ReportError::from).collect(),
            ..Report::default()
        }
    }

    /// The counts.
    pub fn summary(&self) -> Summary {
        let count = |v: &str| self.runs.iter().filter(|r| r.verdict() == v).count();
        let refused = self
            .runs
            .iter()
            .filter(|r| r.verdict() == "fail" && r.refused)
            .count();
        Summary {
            passed: count("pass"),
            failed: count("fail") - refused,
            refused,
            expected_failures: count("xfail"),
            errors: self.errors.len(),
            skipped: self.skipped.len(),
            expectation_errors: self.expectation_errors.len(),
        }
    }

    /// The report's name: `command`, followed for a gate check by the
    /// implementation, its layout and dtype.
    pub fn name(&self, command: &str) -> String {
        match &self.gate {
            Some(g) => format!("{command} {} ({}, {})", g.implementation, g.layout, g.dtype),
            None => command.to_string(),
        }
    }

    /// Whether no case ran at all (every selected case was not exported):
    /// a check of nothing, which is not a pass.
    pub fn nothing_checked(&self) -> bool {
        self.runs.is_empty() && self.errors.is_empty()
    }

    /// `2` when there are errors, else `1` when a case failed unexpectedly,
    /// an expected-failure entry is stale or nothing was checked, else `0`.
    pub fn exit_code(&self) -> u8 {
        let s = self.summary();
        if s.errors > 0 {
            2
        } else if s.failed > 0
            || s.refused > 0
            || s.expectation_errors > 0
            || self.nothing_checked()
        {
            1
        } else {
            0
        }
    }
}

/// The failure details of one run: for each output out of tolerance, the
/// worst element, both values, the errors, the count out of tolerance; the
/// first step (and layer) where the per-step states part; and the
/// diagnosis.
pub fn failure_detail(run: &CaseRun) -> String {
    let mut s = String::new();
    let head = format!("{} [{}]", run.id, run.dtype);
    if let Some(e) = &run.error {
        let _ = writeln!(s, "{head}: error: {e}");
    }
    for c in run.comparisons.iter().filter(|c| !c.passed) {
        if let Some(w) = &c.inconsistent_recording {
            let _ = writeln!(
                s,
                "{head} output {}: the recording is inconsistent: float32 expectation {:.9e} vs float64 {:.9e} at {} (more than {} float32 epsilons apart)",
                c.output,
                w.actual,
                w.expected,
                at(&c.output, &w.index),
                super::tolerance::RECORDING_F32_EPS
            );
        }
        // In a user's terms: the error, the error against the output's
        // scale, and how far past the tolerance; ULPs only where the bound
        // is counted in them.
        let _ = write!(
            s,
            "{head} output {}: {} of {} elements out of tolerance ({} against {}): max abs error {:.3e}",
            c.output, c.out_of_tolerance, c.count, c.bound, c.against, c.max_abs
        );
        if c.scale > 0.0 && c.max_abs.is_finite() {
            let _ = write!(
                s,
                " ({:.2e} of the output's scale {:.3e})",
                c.max_abs / c.scale,
                c.scale
            );
        }
        if c.times_tolerance.is_finite() {
            let digits = if c.times_tolerance >= 10.0 { 0 } else { 2 };
            let _ = write!(s, ", {:.digits$} times the tolerance", c.times_tolerance);
        }
        if matches!(c.bound, Bound::Ulp(_) | Bound::Exact) {
            let _ = write!(s, ", max ulp {}", c.max_ulp);
        }
        if c.nan_mismatches > 0 {
            let _ = write!(s, ", {} NaN mismatches", c.nan_mismatches);
        }
        if let Some(w) = &c.worst {
            let _ = write!(
                s,
                "; worst at {:?}: got {:.9e}, expected {:.9e}",
                w.index, w.actual, w.expected
            );
        }
        s.push('\n');
    }
    if let Some(d) = &run.divergence {
        let _ = write!(
            s,
            "{head} first divergence: step {} in {} (batch {}, unit {}): got {:.9e}, expected {:.9e}",
            d.step, d.output, d.batch, d.unit, d.actual, d.expected
        );
        if let (Some(layer), Some(state)) = (d.layer, &d.state) {
            let _ = write!(s, "; layer {layer}, state {state}");
        }
        s.push('\n');
    }
    s.push_str(&not_compared_detail(run));
    if let Some(diag) = &run.diagnosis {
        for d in &diag.steps {
            let when = d.time.map_or("after the last step".to_string(), |t| {
                format!("at time step {t}")
            });
            let _ = write!(
                s,
                "{head} step {:?} parts from the Rust LSTM {when}, layer {}, batch {}, unit {} ({} from {}): got {:.9e}, expected {:.9e}",
                d.step, d.layer, d.batch, d.unit, d.state, d.source, d.actual, d.expected
            );
            if let Some(k) = d.forget_offset {
                let _ = write!(
                    s,
                    "; explained by a constant offset of {k:+.3} in the forget pre-activation"
                );
            }
            s.push('\n');
        }
        if let Some(g) = &diag.gate {
            let alone = if g.gates_out.len() == 1 {
                format!(" (only {} of i, f, o, ci is out at that step)", g.gate)
            } else {
                format!(" (out at that step: {})", g.gates_out.join(", "))
            };
            let _ = writeln!(
                s,
                "{head} gate {} leaves tolerance first: step {}, batch {}, unit {}: got {:.9e}, expected {:.9e}{alone}",
                g.gate, g.time, g.batch, g.unit, g.actual, g.expected
            );
        }
        for h in &diag.hints {
            let _ = writeln!(s, "{head} hint: {}", h.message);
        }
    }
    s
}

/// One line per reason some expected outputs of `run` were not compared.
pub fn not_compared_detail(run: &CaseRun) -> String {
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in &run.not_compared {
        by_reason
            .entry(n.reason.as_str())
            .or_default()
            .push(n.output.as_str());
    }
    let mut s = String::new();
    for (reason, outputs) in by_reason {
        let _ = writeln!(
            s,
            "{} [{}] not compared: {} ({reason})",
            run.id,
            run.dtype,
            outputs.join(", ")
        );
    }
    s
}

/// An index, with its step for per-step outputs (`[batch, steps, units]`).
fn at(output: &str, index: &[usize]) -> String {
    if output.split('/').any(|p| p == "trace") && index.len() == 3 {
        format!("{index:?} (step {})", index[1])
    } else {
        format!("{index:?}")
    }
}

/// The human table: one line per case and dtype, failure details, cases
/// not checked, errors, stale expectations, and a summary line.
pub fn table(report: &Report) -> String {
    let runs = &report.runs;
    let width = runs.iter().map(|r| r.id.len()).max().unwrap_or(4).max(4);
    let mut s = String::new();
    if let Some(t) = &report.tolerance {
        let _ = writeln!(
            s,
            "tolerance: {t} for every case (--tolerance), not each case's own\n"
        );
    }
    if let Some(g) = &report.gate {
        let _ = writeln!(
            s,
            "gate: {} in layout {} ({}, forget_bias {}), {}, suite {}\n",
            g.implementation, g.layout, g.dtype, g.forget_bias, g.selection, g.suite_fingerprint
        );
    }
    let _ = writeln!(
        s,
        "{:<width$}  {:<7}  {:>10}  {:>8}  verdict",
        "case", "dtype", "max abs", "max ulp"
    );
    for r in runs {
        let verdict = match r.verdict() {
            "pass" => "ok",
            "xfail" => "expected failure",
            _ => "FAIL",
        };
        // A level stated in the expectations is named on the case's line.
        let stated = match &r.tolerance_reason {
            Some(_) => format!(" (at the stated {})", r.tolerance),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "{:<width$}  {:<7}  {:>10.3e}  {:>8}  {verdict}{stated}",
            r.id,
            r.dtype.to_string(),
            r.max_abs(),
            r.max_ulp()
        );
    }
    let stated: std::collections::BTreeMap<(&str, &str), usize> = runs
        .iter()
        .filter_map(|r| Some(((r.tolerance.as_str(), r.tolerance_reason.as_deref()?), 1)))
        .fold(Default::default(), |mut m, (k, n)| {
            *m.entry(k).or_default() += n;
            m
        });
    if !stated.is_empty() {
        s.push_str(
            "
stated tolerances (from the expectations):
",
        );
        for ((level, reason), n) in stated {
            let _ = writeln!(s, "{level} for {n} case run(s): {reason}");
        }
    }
    let failures: Vec<&CaseRun> = runs.iter().filter(|r| r.verdict() == "fail").collect();
    if !failures.is_empty() {
        s.push_str("\nfailures:\n");
        for r in failures {
            s.push_str(&failure_detail(r));
        }
    }
    let expected: Vec<&CaseRun> = runs.iter().filter(|r| r.verdict() == "xfail").collect();
    if !expected.is_empty() {
        s.push_str("\nexpected failures:\n");
        for r in expected {
            let _ = writeln!(
                s,
                "{} [{}]: {}",
                r.id,
                r.dtype,
                r.expected_failure.as_deref().unwrap_or("")
            );
        }
    }
    let partial: Vec<&CaseRun> = runs
        .iter()
        .filter(|r| r.verdict() != "fail" && !r.not_compared.is_empty())
        .collect();
    if !partial.is_empty() {
        s.push_str("\nnot compared (outputs left out of a case's verdict, with the reason):\n");
        for r in partial {
            s.push_str(&not_compared_detail(r));
        }
    }
    if !report.skipped.is_empty() {
        s.push_str("\nnot exported (the layout cannot express them):\n");
        for k in &report.skipped {
            let _ = writeln!(s, "{}: {}", k.id, k.reason);
        }
    }
    if !report.errors.is_empty() {
        s.push_str("\nerrors:\n");
        for e in &report.errors {
            let _ = writeln!(s, "{}", e.message);
        }
    }
    if !report.expectation_errors.is_empty() {
        s.push_str("\nexpected-failure list:\n");
        for e in &report.expectation_errors {
            let _ = writeln!(s, "{e}");
        }
    }
    if report.nothing_checked() {
        s.push_str(
            "\nnothing was checked: no selected case ran (a check of nothing is not a pass)\n",
        );
    }
    let sum = report.summary();
    let _ = write!(
        s,
        "\n{} passed, {} failed, {} errors",
        sum.passed, sum.failed, sum.errors
    );
    if report.gate.is_some() || sum.expected_failures > 0 || sum.expectation_errors > 0 {
        let _ = write!(
            s,
            ", {} refused, {} expected failures, {} not exported, {} stale expectations",
            sum.refused, sum.expected_failures, sum.skipped, sum.expectation_errors
        );
    }
    s.push('\n');
    s
}

/// The JSON report: `{"kind", "summary", "gate", "cases": [...],
/// "skipped": [...], "errors": [...], "expectation_errors": [...]}`;
/// every case carries `verdict` (`pass`, `fail`, `xfail`), `max_abs` and
/// `max_ulp` besides its comparisons and diagnosis.
pub fn json(report: &Report) -> serde_json::Value {
    #[derive(Serialize)]
    struct Entry<'a> {
        #[serde(flatten)]
        run: &'a CaseRun,
        verdict: &'static str,
        max_abs: f64,
        max_ulp: u64,
    }
    let cases: Vec<Entry> = report
        .runs
        .iter()
        .map(|r| Entry {
            run: r,
            verdict: r.verdict(),
            max_abs: r.max_abs(),
            max_ulp: r.max_ulp(),
        })
        .collect();
    serde_json::json!({
        "kind": if report.gate.is_some() { "check" } else { "run" },
        "tolerance": report.tolerance,
        "summary": report.summary(),
        "gate": report.gate,
        "cases": cases,
        "skipped": report.skipped,
        "errors": report.errors,
        "expectation_errors": report.expectation_errors,
    })
}

/// The formats a report is written in (also the command line's `--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The human table ([`table`]).
    #[value(help = "a table for people")]
    Table,
    /// JSON ([`json`]).
    #[value(help = "JSON")]
    Json,
    /// JUnit XML ([`super::junit::junit`]).
    #[value(help = "JUnit XML")]
    Junit,
}

impl Format {
    /// The format a report file's name asks for: `.xml` JUnit, `.json`
    /// JSON, anything else the table.
    pub fn of_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("xml") => Format::Junit,
            Some("json") => Format::Json,
            _ => Format::Table,
        }
    }
}

/// `report` as text in `format`; `name` names the JUnit test suite.
pub fn render(report: &Report, format: Format, name: &str) -> String {
    match format {
        Format::Table => table(report),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json(report)).expect("report serializes");
            s.push('\n');
            s
        }
        Format::Junit => super::junit::junit(report, name),
    }
}

/// Write `report` to `path` in the format its name asks for
/// ([`Format::of_path`]), atomically, never over one of the command's
/// inputs (`input_files`, or a file inside `input_dirs`).
///
/// # Errors
/// A [`WriteReportError`](super::fsio::WriteReportError) naming the file.
pub fn write(
    report: &Report,
    path: &std::path::Path,
    name: &str,
    input_files: &[&std::path::Path],
    input_dirs: &[&std::path::Path],
) -> Result<(), super::fsio::WriteReportError> {
    let text = render(report, Format::of_path(path), name);
    super::fsio::write_report(path, text.as_bytes(), input_files, input_dirs)
}
