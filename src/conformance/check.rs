//! Run cases through the Rust LSTM (or check outputs from anywhere) and
//! collect verdicts.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::case::{Case, CaseError};
use super::compare::{compare, Comparison};
use super::diagnose::{self, DiagnoseOptions, Diagnosis};
use super::suite::{discover, CaseRef, Filter, SuiteError};
use super::tolerance::Tolerance;
use crate::dialect::EmulatedLstm;
use crate::dialect::{DialectError, Outputs, Runner, RustLstm, Step};
use crate::lstm::{Precision, Real, RunOutput};
use crate::parse::UnknownName;

/// The float type a case is run in.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
pub enum Dtype {
    /// `f32`.
    #[serde(rename = "float32")]
    #[value(name = "float32", help = "32-bit floats")]
    F32,
    /// `f64`.
    #[serde(rename = "float64")]
    #[value(name = "float64", help = "64-bit floats")]
    F64,
    /// IEEE half precision, emulated (the cases with a float16 run).
    #[serde(rename = "float16")]
    #[value(
        name = "float16",
        help = "float16, emulated (cases with a recorded float16 run)"
    )]
    F16,
    /// bfloat16, emulated (the cases with a bfloat16 run).
    #[serde(rename = "bfloat16")]
    #[value(
        name = "bfloat16",
        help = "bfloat16, emulated (cases with a recorded bfloat16 run)"
    )]
    BF16,
}

impl Dtype {
    /// The dtypes every case is run in, float32 first.
    pub const ALL: [Dtype; 2] = [Dtype::F32, Dtype::F64];
    /// The reduced precisions, run where a case has a recorded run.
    pub const REDUCED: [Dtype; 2] = [Dtype::F16, Dtype::BF16];

    /// The reduced precision this dtype emulates, if it is one (the
    /// inverse of `Dtype::from(Precision)`).
    pub fn precision(self) -> Option<Precision> {
        match self {
            Dtype::F32 | Dtype::F64 => None,
            Dtype::F16 => Some(Precision::Float16),
            Dtype::BF16 => Some(Precision::BFloat16),
        }
    }
}

impl From<Precision> for Dtype {
    fn from(p: Precision) -> Dtype {
        match p {
            Precision::Float16 => Dtype::F16,
            Precision::BFloat16 => Dtype::BF16,
        }
    }
}

impl std::str::FromStr for Dtype {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "float32" => Ok(Dtype::F32),
            "float64" => Ok(Dtype::F64),
            "float16" => Ok(Dtype::F16),
            "bfloat16" => Ok(Dtype::BF16),
            _ => Err(UnknownName::new(
                "dtype",
                "dtypes",
                s,
                &["float32", "float64", "float16", "bfloat16"],
            )),
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
        })
    }
}

/// Where the per-step states first leave tolerance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    /// The trace output, e.g. `trace/1/c`.
    pub output: String,
    /// The layer (`1` in `trace/1/c`).
    pub layer: Option<usize>,
    /// `c` or `h`.
    pub state: Option<String>,
    /// The step (in processing order).
    pub step: usize,
    /// The batch row.
    pub batch: usize,
    /// The unit.
    pub unit: usize,
    /// Computed.
    pub actual: f64,
    /// Expected.
    pub expected: f64,
}

/// An expected output left out of the comparison, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotCompared {
    /// The output's native name.
    pub output: String,
    /// Why it was not compared.
    pub reason: String,
}

/// The reason given for outputs computed from per-step states (trace
/// files) that the implementation did not write: the gate's contract
/// makes traces optional.
pub const NEEDS_TRACES: &str =
    "computed from per-step states (optional trace files) the implementation did not write";

/// The verdict on one case in one dtype.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseRun {
    /// Case id.
    pub id: String,
    /// API, e.g. `tf1.dynamic_rnn`.
    pub api: String,
    /// Dtype it ran in.
    pub dtype: Dtype,
    /// The tolerance level used.
    pub tolerance: String,
    /// Why: the reason of the expectations entry that stated the level,
    /// when one did (otherwise the level is the case's own or `--tolerance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_reason: Option<String>,
    /// One comparison per expected output.
    pub comparisons: Vec<Comparison>,
    /// The first step where per-step states leave tolerance.
    pub divergence: Option<Divergence>,
    /// Set when the case could not be run at all.
    pub error: Option<String>,
    /// Set when the implementation itself refused a step of the case (it
    /// wrote `error.txt`): a failure, counted apart from wrong numbers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Expected outputs not compared, each with the reason (today only
    /// one: it is computed from optional per-step states the
    /// implementation did not write).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<NotCompared>,
    /// Why it failed, as far as can be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    /// The reason from an expected-failure list that names this case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_failure: Option<String>,
    /// What the case exercises (`peepholes`, `reverse`, ...), for the gate's
    /// compatibility matrix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

impl CaseRun {
    /// A run of `case` in `dtype` at `tolerance` with nothing compared yet.
    fn of(case: &Case, dtype: Dtype, tolerance: &Tolerance) -> CaseRun {
        CaseRun {
            id: case.id.clone(),
            api: case.model.api(),
            dtype,
            tolerance: tolerance.to_string(),
            tolerance_reason: None,
            comparisons: Vec::new(),
            divergence: None,
            error: None,
            refused: false,
            not_compared: Vec::new(),
            diagnosis: None,
            expected_failure: None,
            features: Vec::new(),
        }
    }

    /// Whether every output is within tolerance.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.comparisons.iter().all(|c| c.passed)
    }

    /// `pass`, `fail`, or `xfail` (failed, and listed as expected to fail).
    pub fn verdict(&self) -> &'static str {
        match (self.passed(), self.expected_failure.is_some()) {
            (true, _) => "pass",
            (false, true) => "xfail",
            (false, false) => "fail",
        }
    }

    /// Largest absolute error over all outputs.
    pub fn max_abs(&self) -> f64 {
        self.comparisons
            .iter()
            .map(|c| c.max_abs)
            .fold(0.0, f64::max)
    }

    /// Largest ULP distance over all outputs.
    pub fn max_ulp(&self) -> u64 {
        self.comparisons
            .iter()
            .map(|c| c.max_ulp)
            .max()
            .unwrap_or(0)
    }
}

/// Compare `outputs`, computed in `T` by any implementation, with the
/// case's expectations. Outputs the case does not expect are ignored; an
/// expected output that is missing fails.
pub fn check_outputs<T: Real>(
    case: &Case,
    outputs: &Outputs<T>,
    dtype: Dtype,
    tolerance: Option<&Tolerance>,
) -> CaseRun {
    check_outputs_except(case, outputs, dtype, tolerance, &[])
}

/// [`check_outputs`], leaving the expected outputs named in `not_compared`
/// aside (they are listed in [`CaseRun::not_compared`]). A run that
/// compares no element at all (nothing left, or only empty outputs) fails
/// with an error saying so: a comparison of nothing is not a pass.
pub fn check_outputs_except<T: Real>(
    case: &Case,
    outputs: &Outputs<T>,
    dtype: Dtype,
    tolerance: Option<&Tolerance>,
    not_compared: &[NotCompared],
) -> CaseRun {
    let tolerance = tolerance.unwrap_or(&case.tolerance);
    let mut comparisons = Vec::new();
    let mut missing = Vec::new();
    for (name, expected) in &case.expected {
        if not_compared.iter().any(|n| &n.output == name) {
            continue;
        }
        match outputs.get(name) {
            Some(actual) => comparisons.push(compare(name, actual, expected, tolerance)),
            None => missing.push(name.as_str()),
        }
    }
    let divergence = comparisons
        .iter()
        .filter_map(|c| c.first_bad_step.as_ref().map(|(step, e)| (step, c, e)))
        .min_by_key(|(step, _, _)| **step)
        .map(|(step, c, e)| {
            let parts: Vec<&str> = c.output.split('/').collect();
            let at = parts.iter().position(|p| *p == "trace");
            Divergence {
                output: c.output.clone(),
                layer: at.and_then(|k| parts.get(k + 1)?.parse().ok()),
                state: at.and_then(|k| parts.get(k + 2).map(|s| s.to_string())),
                step: *step,
                batch: e.index[0],
                unit: e.index[2],
                actual: e.actual,
                expected: e.expected,
            }
        });
    let compared_elements: usize = comparisons.iter().map(|c| c.count).sum();
    let error = if !missing.is_empty() {
        Some(format!("missing outputs: {}", missing.join(", ")))
    } else if comparisons.is_empty() && !not_compared.is_empty() {
        let names: Vec<&str> = not_compared.iter().map(|n| n.output.as_str()).collect();
        Some(format!(
            "nothing to compare: no expected output is left to compare ({} not compared: {})",
            names.join(", "),
            not_compared[0].reason
        ))
    } else if compared_elements == 0 {
        Some(format!(
            "nothing to compare: every compared output ({}) has 0 elements, and a comparison of nothing is not a pass",
            comparisons
                .iter()
                .map(|c| c.output.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        None
    };
    CaseRun {
        comparisons,
        divergence,
        error,
        not_compared: not_compared.to_vec(),
        ..CaseRun::of(case, dtype, tolerance)
    }
}

/// A [`Runner`] that passes each step to another runner and keeps every
/// step with its result.
pub struct Recording<'a, T> {
    inner: &'a mut dyn Runner<T>,
    /// The steps run so far, with their results.
    pub steps: Vec<(Step<T>, RunOutput<T>)>,
}

impl<'a, T> Recording<'a, T> {
    /// Record what `inner` computes.
    pub fn new(inner: &'a mut dyn Runner<T>) -> Self {
        Recording {
            inner,
            steps: Vec::new(),
        }
    }
}

impl<T: Real> Runner<T> for Recording<'_, T> {
    fn run_step(&mut self, step: &Step<T>) -> Result<RunOutput<T>, DialectError> {
        let out = self.inner.run_step(step)?;
        self.steps.push((step.clone(), out.clone()));
        Ok(out)
    }
}

fn error_run(case: &Case, dtype: Dtype, tolerance: &Tolerance, error: String) -> CaseRun {
    CaseRun {
        error: Some(error),
        ..CaseRun::of(case, dtype, tolerance)
    }
}

/// Run a case with any [`Runner`] (an external implementation, or a test's
/// deliberately wrong one) and check the results; a failure is diagnosed.
/// Whatever the runner returns is judged: a NaN or an infinity in a result
/// fails the case.
pub fn check_runner<T: Real>(
    case: &Case,
    dtype: Dtype,
    tolerance: Option<&Tolerance>,
    runner: &mut dyn Runner<T>,
    options: DiagnoseOptions,
) -> CaseRun {
    check_runner_except(case, dtype, tolerance, runner, options, &[])
}

/// [`check_runner`], leaving the expected outputs in `not_compared` aside
/// (the gate passes those that are computed from per-step states the
/// implementation did not write: it finds them by running the case with two
/// different fillings of the missing states and keeping what changes).
pub fn check_runner_except<T: Real>(
    case: &Case,
    dtype: Dtype,
    tolerance: Option<&Tolerance>,
    runner: &mut dyn Runner<T>,
    options: DiagnoseOptions,
    not_compared: &[NotCompared],
) -> CaseRun {
    let level = tolerance.unwrap_or(&case.tolerance);
    let mut recording = Recording::new(runner);
    let outputs = match case
        .model
        .run_with::<T>(&case.variables, &case.inputs, &mut recording)
    {
        Ok(o) => o,
        Err(e) => return error_run(case, dtype, level, e.to_string()),
    };
    let mut run = check_outputs_except(case, &outputs, dtype, tolerance, not_compared);
    if !run.passed() {
        let compared: Vec<String> = run.comparisons.iter().map(|c| c.output.clone()).collect();
        let d = diagnose::diagnose(case, &outputs, &recording.steps, &compared, level, options);
        run.diagnosis = (!d.is_empty()).then_some(d);
    }
    run
}

/// Run a loaded case through the Rust LSTM in `dtype` and check it.
pub fn run_case(case: &Case, dtype: Dtype, tolerance: Option<&Tolerance>) -> CaseRun {
    fn go<T: Real>(case: &Case, dtype: Dtype, tolerance: Option<&Tolerance>) -> CaseRun {
        check_runner::<T>(
            case,
            dtype,
            tolerance,
            &mut RustLstm,
            DiagnoseOptions::default(),
        )
    }
    match dtype.precision() {
        None if dtype == Dtype::F32 => go::<f32>(case, dtype, tolerance),
        None => go::<f64>(case, dtype, tolerance),
        Some(p) => check_reduced(case, p, tolerance, &mut EmulatedLstm(p)),
    }
}

/// Run a case with `runner` (computing in `f32`) and check the results
/// against the framework's own run in the reduced `precision`, at the
/// level `tolerance` names for that precision (`default`: see
/// [`reduced_bound`](super::compare::reduced_bound)).
pub fn check_reduced(
    case: &Case,
    precision: Precision,
    tolerance: Option<&Tolerance>,
    runner: &mut dyn Runner<f32>,
) -> CaseRun {
    match case
        .model
        .run_with::<f32>(&case.variables, &case.inputs, runner)
    {
        Ok(outputs) => check_reduced_outputs(case, precision, tolerance, &outputs, &[]),
        Err(e) => CaseRun {
            error: Some(e.to_string()),
            ..reduced_run(case, precision, tolerance)
        },
    }
}

/// A run of `case` in `precision` with nothing compared yet.
pub fn reduced_run(case: &Case, precision: Precision, tolerance: Option<&Tolerance>) -> CaseRun {
    let level = tolerance.unwrap_or(&Tolerance::Default);
    CaseRun {
        tolerance: format!("{level}@{precision}"),
        ..CaseRun::of(case, Dtype::from(precision), level)
    }
}

/// [`check_reduced`] of outputs computed (in `f32`) by any implementation,
/// leaving out the outputs named in `not_compared` (as
/// [`check_outputs_except`] does).
pub fn check_reduced_outputs(
    case: &Case,
    precision: Precision,
    tolerance: Option<&Tolerance>,
    outputs: &Outputs<f32>,
    not_compared: &[NotCompared],
) -> CaseRun {
    let level = tolerance.unwrap_or(&Tolerance::Default);
    let mut run = reduced_run(case, precision, tolerance);
    run.not_compared = not_compared.to_vec();
    let Some(recorded) = case.reduced.get(&precision) else {
        run.error = Some(format!("the case has no {precision} run (reduced.json)"));
        return run;
    };
    let mut missing = Vec::new();
    let compared = recorded
        .expected
        .iter()
        .filter(|(name, _)| !not_compared.iter().any(|n| &n.output == *name));
    for (name, reduced) in compared {
        let Some(actual) = outputs.get(name) else {
            missing.push(name.as_str());
            continue;
        };
        let e = &case.expected[name];
        let truth = e
            .float64
            .clone()
            .unwrap_or_else(|| e.float32.mapv(f64::from));
        let bound = super::compare::reduced_bound(level, precision, reduced, &truth);
        let reference = reduced.mapv(f64::from);
        let mut c = super::compare::judge(name, actual, &reference, precision.name(), bound);
        if *level == Tolerance::Default {
            // The level stands on the truth and on the 16-bit run: a damaged
            // one of either fails the case instead of widening it.
            c.inconsistent_recording = super::compare::inconsistent_recording(e);
            c.passed &= c.inconsistent_recording.is_none();
            if let Some((index, ulps)) =
                super::compare::inconsistent_reduced(precision, reduced, &truth)
            {
                c.passed = false;
                run.error = Some(format!(
                    "the recording is inconsistent: the {precision} run of {name} is {ulps:.1} units in the last place from the truth at {index:?} (more than {})",
                    super::tolerance::RECORDING_REDUCED_ULPS
                ));
            }
        }
        run.comparisons.push(c);
    }
    if !missing.is_empty() {
        run.error = Some(format!("missing outputs: {}", missing.join(", ")));
    } else if run.comparisons.is_empty() {
        run.error = Some(format!(
            "nothing to compare: no output of the {precision} run is left to compare"
        ));
    } else if run.comparisons.iter().all(|c| c.count == 0) {
        run.error = Some(format!(
            "nothing to compare: every output of the {precision} run has 0 elements, and a comparison of nothing is not a pass"
        ));
    }
    run
}

/// Cases selected from a reference root: loaded ones and those that failed
/// to load.
#[derive(Debug)]
pub struct Selection {
    /// Loaded cases, sorted by id.
    pub cases: Vec<Case>,
    /// Cases that could not be loaded.
    pub errors: Vec<CaseError>,
}

/// Discover, filter and load the cases under `root`.
///
/// # Errors
/// A [`SuiteError`] when the root cannot be listed, holds no case, or the
/// filter is not valid. Errors of single cases are collected in
/// [`Selection::errors`].
pub fn select(root: &Path, filter: &Filter) -> Result<Selection, SuiteError> {
    let refs: Vec<CaseRef> = discover(root)?
        .into_iter()
        .filter(|r| filter.matches(&r.id))
        .collect();
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for r in refs {
        match Case::load(&r.dir, &r.id) {
            Ok(c) => cases.push(c),
            Err(e) => errors.push(e),
        }
    }
    Ok(Selection { cases, errors })
}

/// Run every selected case in every dtype (a reduced precision only where
/// the case has a recorded run in it).
pub fn run_all(cases: &[Case], dtypes: &[Dtype], tolerance: Option<&Tolerance>) -> Vec<CaseRun> {
    cases
        .iter()
        .flat_map(|case| {
            dtypes
                .iter()
                .filter(|d| d.precision().is_none_or(|p| case.reduced.contains_key(&p)))
                .map(move |&d| run_case(case, d, tolerance))
        })
        .collect()
}

/// What `lstm-parity run` asks for: the Rust LSTM on the selected cases.
#[derive(Clone, Copy, Debug)]
pub struct RunRequest<'a> {
    /// The reference folder.
    pub root: &'a Path,
    /// Which cases.
    pub selected_by: &'a super::gate::SelectedBy,
    /// Which dtypes.
    pub dtypes: &'a [Dtype],
    /// A level for every case (default: each case's own).
    pub tolerance: Option<&'a Tolerance>,
    /// Cases expected to fail.
    pub expectations: Option<&'a super::expectations::Expectations>,
}

/// A request that selects nothing: the message names the folder and the
/// selection.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The folder or a filter is bad.
    #[error("{0}")]
    Suite(#[from] SuiteError),
    /// No case matches.
    #[error("no case in {} is selected ({selection})", root.display())]
    NothingSelected {
        /// The reference folder.
        root: std::path::PathBuf,
        /// The selection, as the report names it.
        selection: String,
    },
}

/// Run the Rust LSTM on the request's cases: the report, with the
/// expectations applied (a stated tolerance is reported as misplaced: the
/// Rust LSTM is held to every case's own level).
///
/// # Errors
/// A [`RunError`]: the folder or a filter is bad, or nothing is selected.
pub fn run_request(request: &RunRequest) -> Result<super::report::Report, RunError> {
    let selection = request.selected_by.select(request.root)?;
    if selection.cases.is_empty() && selection.errors.is_empty() {
        return Err(RunError::NothingSelected {
            root: request.root.to_path_buf(),
            selection: request.selected_by.to_string(),
        });
    }
    let runs = run_all(&selection.cases, request.dtypes, request.tolerance);
    let mut report = super::report::Report::new(runs, &selection.errors);
    report.tolerance = request.tolerance.map(ToString::to_string);
    if let Some(list) = request.expectations {
        report.expectation_errors = list.apply(&mut report.runs, None, &[]);
        report.expectation_errors.extend(list.tolerances.iter().map(|t| {
            format!(
                "the tolerance {:?} stated for {:?} applies to `check` (an implementation's outputs), not to `run`: remove it from this list",
                t.level, t.case
            )
        }));
    }
    Ok(report)
}
