//! `compare`: what changed between a base and a new JSON report of `run`
//! or `check`.
//!
//! Both reports are read as the typed files [`json`](super::report::json)
//! writes, strictly: bounded reads of regular files, no duplicate JSON
//! keys, known verdicts only, each case and dtype once, at least one
//! entry, and both of the same kind. A case that stops being checked
//! (skipped where it was compared, or gone from the new report) got worse,
//! whatever its verdict was: a gate must not go green by losing a case.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{fsio, json};

/// The largest report `compare` reads: 512 MiB (a check of every case
/// with 64 KiB of `error.txt` in every step writes about 34 MB).
pub const MAX_REPORT_BYTES: u64 = 512 << 20;

/// Why two reports cannot be compared.
#[derive(Debug, thiserror::Error)]
#[error("{}: {why}", file.display())]
pub struct CompareError {
    /// The report concerned.
    pub file: PathBuf,
    /// What is wrong with it.
    pub why: String,
}

/// A JSON report as `compare` reads it (other fields are ignored).
#[derive(Deserialize)]
struct ReportFile {
    kind: Kind,
    cases: Vec<CaseEntry>,
    #[serde(default)]
    skipped: Vec<SkippedEntry>,
    #[serde(default)]
    errors: Vec<ErrorEntry>,
    #[serde(default)]
    gate: Option<GateEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Run,
    Check,
}

#[derive(Deserialize)]
struct CaseEntry {
    id: String,
    dtype: String,
    verdict: Verdict,
    /// `null` when the largest error is NaN.
    #[serde(default)]
    max_abs: Option<f64>,
    /// The tolerance level the case was judged at.
    tolerance: String,
}

/// A case's verdict in a report; `Skipped` and `Error` come from the
/// report's `skipped` and `errors` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Within tolerance.
    Pass,
    /// Out of tolerance.
    Fail,
    /// Out of tolerance, and listed as an expected failure.
    Xfail,
    /// Not checked: the export's layout cannot express it.
    Skipped,
    /// Could not be loaded or its outputs could not be read.
    Error,
}

impl Verdict {
    fn failing(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Xfail | Verdict::Error)
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Xfail => "xfail",
            Verdict::Skipped => "skipped",
            Verdict::Error => "error",
        }
    }
}

#[derive(Deserialize)]
struct SkippedEntry {
    id: String,
}

#[derive(Deserialize)]
struct ErrorEntry {
    case: String,
}

#[derive(Clone, Deserialize, PartialEq)]
struct GateEntry {
    layout: String,
    dtype: String,
    forget_bias: String,
    suite_fingerprint: String,
}

/// `(verdict, max_abs)` per `(id, dtype)`.
type Verdicts = BTreeMap<(String, String), (Verdict, Option<f64>)>;

/// The tolerance level per `(id, dtype)` of the cases that ran.
type Levels = BTreeMap<(String, String), String>;

/// One report's verdicts, with its kind, gate and tolerance levels.
struct Read {
    kind: Kind,
    gate: Option<GateEntry>,
    verdicts: Verdicts,
    levels: Levels,
}

fn read(path: &Path) -> Result<Read, CompareError> {
    let fail = |why: String| CompareError {
        file: path.to_path_buf(),
        why,
    };
    let bytes = fsio::read_limited(path, MAX_REPORT_BYTES, "a JSON report")
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| fail(format!("not UTF-8 text: {e}")))?;
    let report: ReportFile = json::from_str_strict(&text)
        .map_err(|e| fail(format!("not a JSON report of `run` or `check`: {e}")))?;
    // Skipped cases and errors have no dtype of their own: a check's is
    // the export's, a run's covers both.
    let dtype = report.gate.as_ref().map_or("-", |g| g.dtype.as_str());
    let entries = report
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c.dtype.as_str(), c.verdict, c.max_abs))
        .chain(
            report
                .skipped
                .iter()
                .map(|k| (k.id.as_str(), dtype, Verdict::Skipped, None)),
        )
        .chain(
            report
                .errors
                .iter()
                .map(|e| (e.case.as_str(), dtype, Verdict::Error, None)),
        );
    let mut verdicts = Verdicts::new();
    let mut levels = Levels::new();
    for c in &report.cases {
        levels.insert((c.id.clone(), c.dtype.clone()), c.tolerance.clone());
    }
    for (id, dtype, verdict, max_abs) in entries {
        let key = (id.to_string(), dtype.to_string());
        if let Some((before, _)) = verdicts.insert(key, (verdict, max_abs)) {
            return Err(fail(format!(
                "case {id} [{dtype}] is listed twice ({} and {})",
                before.name(),
                verdict.name()
            )));
        }
    }
    if verdicts.is_empty() {
        return Err(fail(
            "the report lists no case: there is nothing to compare".into(),
        ));
    }
    Ok(Read {
        kind: report.kind,
        gate: report.gate,
        verdicts,
        levels,
    })
}

/// One case whose verdict or error changed between two reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Case id.
    pub id: String,
    /// Dtype (`-` for a skipped case or an error of a `run` report).
    pub dtype: String,
    /// Verdict in the base report (`None`: absent).
    pub base: Option<Verdict>,
    /// Verdict in the new report (`None`: absent).
    pub new: Option<Verdict>,
    /// Largest absolute error in the base report.
    pub base_max_abs: Option<f64>,
    /// Largest absolute error in the new report.
    pub new_max_abs: Option<f64>,
}

/// What changed between a base and a new report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delta {
    /// Passed (or was skipped) before, fails now.
    pub newly_failing: Vec<Change>,
    /// Not in the base report, fails in the new one.
    pub new_failing: Vec<Change>,
    /// Failed in both, with a larger error now (or an error where it
    /// failed).
    pub worse: Vec<Change>,
    /// Checked before (pass or fail), skipped now: no longer checked.
    pub no_longer_checked: Vec<Change>,
    /// In the base report, absent from the new one.
    pub removed: Vec<Change>,
    /// Failed (or was skipped) before, passes now.
    pub fixed: Vec<Change>,
    /// Failed in both, with a smaller error now.
    pub better: Vec<Change>,
    /// Not in the base report, passes (or is skipped) in the new one.
    pub new_passing: Vec<Change>,
    /// The same verdict and no larger error.
    pub unchanged: usize,
    /// The two checks are of different exports (their suite fingerprints
    /// differ: cases added, removed or recorded again).
    pub other_export: bool,
}

impl Delta {
    /// Whether anything got worse: newly or new failing, larger errors,
    /// a case no longer checked or gone.
    pub fn got_worse(&self) -> bool {
        !(self.newly_failing.is_empty()
            && self.new_failing.is_empty()
            && self.worse.is_empty()
            && self.no_longer_checked.is_empty()
            && self.removed.is_empty())
    }
}

/// Compare the JSON reports `base` and `new` (of `run` or `check`, both of
/// the same kind).
///
/// # Errors
/// A [`CompareError`] naming the report that cannot be read or is not a
/// valid report, or the new one when the kinds differ.
pub fn compare_files(base: &Path, new: &Path) -> Result<Delta, CompareError> {
    let b = read(base)?;
    let n = read(new)?;
    if b.kind != n.kind {
        return Err(CompareError {
            file: new.to_path_buf(),
            why: format!(
                "a report of `{:?}`, the base report {} one of `{:?}`: compare reports of one kind",
                n.kind,
                base.display(),
                b.kind
            )
            .to_lowercase(),
        });
    }
    // A verdict made at another tolerance level is another question: a
    // loosened level must not read as a fix.
    for (key, level) in &n.levels {
        if let Some(before) = b.levels.get(key).filter(|b| *b != level) {
            return Err(CompareError {
                file: new.to_path_buf(),
                why: format!(
                    "case {} [{}] was judged at tolerance {level}, in the base report {} at {before}: compare reports made at the same tolerance levels",
                    key.0,
                    key.1,
                    base.display()
                ),
            });
        }
    }
    let mut d = delta(&b.verdicts, &n.verdicts);
    if let (Some(bg), Some(ng)) = (&b.gate, &n.gate) {
        let what =
            |g: &GateEntry| format!("{} {} forget_bias {}", g.layout, g.dtype, g.forget_bias);
        if what(bg) != what(ng) {
            return Err(CompareError {
                file: new.to_path_buf(),
                why: format!(
                    "a check of {}, the base report {} one of {}: compare checks of one layout, dtype and forget_bias",
                    what(ng),
                    base.display(),
                    what(bg)
                ),
            });
        }
        d.other_export = bg.suite_fingerprint != ng.suite_fingerprint;
    }
    Ok(d)
}

fn delta(base: &Verdicts, new: &Verdicts) -> Delta {
    let mut delta = Delta::default();
    let keys: std::collections::BTreeSet<_> = base.keys().chain(new.keys()).collect();
    for key in keys {
        let b = base.get(key).copied();
        let n = new.get(key).copied();
        let change = Change {
            id: key.0.clone(),
            dtype: key.1.clone(),
            base: b.map(|v| v.0),
            new: n.map(|v| v.0),
            base_max_abs: b.and_then(|v| v.1),
            new_max_abs: n.and_then(|v| v.1),
        };
        use Verdict::Skipped;
        let list = match (b, n) {
            (None, None) => continue,
            (None, Some((v, _))) if v.failing() => &mut delta.new_failing,
            (None, Some(_)) => &mut delta.new_passing,
            (Some(_), None) => &mut delta.removed,
            (Some((bv, bx)), Some((nv, nx))) => match (bv, nv) {
                _ if bv == nv && !bv.failing() => {
                    delta.unchanged += 1;
                    continue;
                }
                (_, Skipped) => &mut delta.no_longer_checked,
                (_, v) if v.failing() && !bv.failing() => &mut delta.newly_failing,
                (_, Verdict::Pass) => &mut delta.fixed,
                // Failing in both.
                (_, Verdict::Error) if bv != Verdict::Error => &mut delta.worse,
                (Verdict::Error, _) => &mut delta.better,
                _ => match (bx, nx) {
                    (Some(x), Some(y)) if y > x => &mut delta.worse,
                    (Some(x), Some(y)) if y < x => &mut delta.better,
                    // A NaN largest error where there was a number.
                    (Some(_), None) => &mut delta.worse,
                    (None, Some(_)) => &mut delta.better,
                    _ => {
                        delta.unchanged += 1;
                        continue;
                    }
                },
            },
        };
        list.push(change);
    }
    delta
}

/// The base/new comparison for people: what got worse first.
pub fn table(delta: &Delta) -> String {
    let mut s = String::new();
    let abs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3e}"));
    let verdict = |v: Option<Verdict>| v.map_or("absent", Verdict::name);
    if delta.other_export {
        s.push_str("note: the two checks are of different exports (suite fingerprints differ): cases may have been added, removed or recorded again\n");
    }
    let sections: [(&str, &Vec<Change>); 8] = [
        ("newly failing", &delta.newly_failing),
        ("new cases, failing", &delta.new_failing),
        ("worse (larger error)", &delta.worse),
        ("no longer checked (skipped now)", &delta.no_longer_checked),
        ("removed (absent now)", &delta.removed),
        ("fixed", &delta.fixed),
        ("better (smaller error)", &delta.better),
        ("new cases, passing or skipped", &delta.new_passing),
    ];
    for (title, changes) in sections {
        if changes.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{title} ({}):", changes.len());
        for c in changes {
            let _ = writeln!(
                s,
                "  {} [{}]: {} -> {}, max abs {} -> {}",
                c.id,
                c.dtype,
                verdict(c.base),
                verdict(c.new),
                abs(c.base_max_abs),
                abs(c.new_max_abs)
            );
        }
    }
    let _ = writeln!(
        s,
        "{} newly failing, {} new failing, {} worse, {} no longer checked, {} removed, {} fixed, {} better, {} new passing, {} unchanged",
        delta.newly_failing.len(),
        delta.new_failing.len(),
        delta.worse.len(),
        delta.no_longer_checked.len(),
        delta.removed.len(),
        delta.fixed.len(),
        delta.better.len(),
        delta.new_passing.len(),
        delta.unchanged
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(entries: &[(&str, Verdict, Option<f64>)]) -> Verdicts {
        entries
            .iter()
            .map(|&(id, v, x)| ((id.to_string(), "float32".to_string()), (v, x)))
            .collect()
    }

    /// Every pair of verdicts lands in the list a gate owner expects; only
    /// the lists that got worse make `got_worse`.
    #[test]
    fn every_transition_is_classified() {
        use Verdict::*;
        let all = [
            Some(Pass),
            Some(Fail),
            Some(Xfail),
            Some(Skipped),
            Some(Error),
            None,
        ];
        for b in all {
            for n in all {
                let mk = |v: Option<Verdict>, x| {
                    verdicts(&v.map(|v| ("c", v, x)).into_iter().collect::<Vec<_>>())
                };
                let d = delta(&mk(b, Some(1.0)), &mk(n, Some(1.0)));
                let worse = match (b, n) {
                    (_, None) => b.is_some(),
                    (None, Some(v)) => v.failing(),
                    (Some(b), Some(n)) => {
                        n == Skipped && b != Skipped
                            || n.failing() && !b.failing()
                            || n == Error && b != Error
                    }
                };
                assert_eq!(d.got_worse(), worse, "{b:?} -> {n:?}: {d:?}");
            }
        }
        let d = delta(
            &verdicts(&[("c", Fail, Some(1.0))]),
            &verdicts(&[("c", Skipped, None)]),
        );
        assert_eq!(d.no_longer_checked.len(), 1);
        let d = delta(
            &verdicts(&[("c", Fail, Some(1.0))]),
            &verdicts(&[("c", Fail, None)]),
        );
        assert_eq!(d.worse.len(), 1, "a NaN error where there was a number");
        let d = delta(
            &verdicts(&[("c", Fail, Some(1.0))]),
            &verdicts(&[("c", Xfail, Some(2.0))]),
        );
        assert_eq!(d.worse.len(), 1);
        let d = delta(
            &verdicts(&[("c", Skipped, None)]),
            &verdicts(&[("c", Pass, Some(0.0))]),
        );
        assert_eq!(d.fixed.len(), 1);
    }
}
