//! Reports: a human table, failure details, JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::case::CaseError;
use super::check::CaseRun;

/// Counts over a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Case runs within tolerance.
    pub passed: usize,
    /// Case runs out of tolerance or that could not run.
    pub failed: usize,
    /// Cases that could not be loaded.
    pub errors: usize,
}

impl Summary {
    /// Count `runs` and load `errors`.
    pub fn of(runs: &[CaseRun], errors: &[CaseError]) -> Summary {
        let passed = runs.iter().filter(|r| r.passed()).count();
        Summary {
            passed,
            failed: runs.len() - passed,
            errors: errors.len(),
        }
    }
}

/// The failure details of one run: for each output out of tolerance, the
/// worst element, both values, the errors, the count out of tolerance; and
/// the first step where the per-step states part.
pub fn failure_detail(run: &CaseRun) -> String {
    let mut s = String::new();
    if let Some(e) = &run.error {
        let _ = writeln!(s, "{} [{}]: error: {e}", run.id, run.dtype);
    }
    for c in run.comparisons.iter().filter(|c| !c.passed) {
        if let Some(w) = &c.inconsistent_recording {
            let _ = writeln!(
                s,
                "{} [{}] output {}: the recording is inconsistent: float32 expectation {:.9e} vs float64 {:.9e} at {} (more than {} float32 epsilons apart)",
                run.id,
                run.dtype,
                c.output,
                w.actual,
                w.expected,
                at(&c.output, &w.index),
                super::tolerance::RECORDING_F32_EPS
            );
        }
        let _ = write!(
            s,
            "{} [{}] output {}: {} of {} elements out of tolerance ({} against {}); max abs {:.3e}, max rel {:.3e}, max ulp {}",
            run.id, run.dtype, c.output, c.out_of_tolerance, c.count, c.bound, c.against, c.max_abs, c.max_rel, c.max_ulp
        );
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
        let _ = writeln!(
            s,
            "{} [{}] first divergence: step {} in {} (batch {}, unit {}): got {:.9e}, expected {:.9e}",
            run.id, run.dtype, d.step, d.output, d.batch, d.unit, d.actual, d.expected
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

/// The human table: one line per case and dtype, failure details, load
/// errors, and a summary line.
pub fn table(runs: &[CaseRun], errors: &[CaseError]) -> String {
    let width = runs.iter().map(|r| r.id.len()).max().unwrap_or(4).max(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<width$}  {:<7}  {:>10}  {:>8}  verdict",
        "case", "dtype", "max abs", "max ulp"
    );
    for r in runs {
        let verdict = if r.passed() { "ok" } else { "FAIL" };
        let _ = writeln!(
            s,
            "{:<width$}  {:<7}  {:>10.3e}  {:>8}  {verdict}",
            r.id,
            r.dtype.to_string(),
            r.max_abs(),
            r.max_ulp()
        );
    }
    let failures: Vec<&CaseRun> = runs.iter().filter(|r| !r.passed()).collect();
    if !failures.is_empty() {
        s.push_str("\nfailures:\n");
        for r in failures {
            s.push_str(&failure_detail(r));
        }
    }
    if !errors.is_empty() {
        s.push_str("\nerrors:\n");
        for e in errors {
            let _ = writeln!(s, "{e}");
        }
    }
    let sum = Summary::of(runs, errors);
    let _ = writeln!(
        s,
        "\n{} passed, {} failed, {} errors",
        sum.passed, sum.failed, sum.errors
    );
    s
}

/// The JSON report: `{"summary": {...}, "cases": [...], "errors": [...]}`.
pub fn json(runs: &[CaseRun], errors: &[CaseError]) -> serde_json::Value {
    #[derive(Serialize)]
    struct Entry<'a> {
        #[serde(flatten)]
        run: &'a CaseRun,
        verdict: &'static str,
        max_abs: f64,
        max_ulp: u64,
    }
    let cases: Vec<Entry> = runs
        .iter()
        .map(|r| Entry {
            run: r,
            verdict: if r.passed() { "pass" } else { "fail" },
            max_abs: r.max_abs(),
            max_ulp: r.max_ulp(),
        })
        .collect();
    serde_json::json!({
        "summary": Summary::of(runs, errors),
        "cases": cases,
        "errors": errors.iter().map(|e| serde_json::json!({"case": e.case, "file": e.file, "message": e.to_string()})).collect::<Vec<_>>(),
    })
}
