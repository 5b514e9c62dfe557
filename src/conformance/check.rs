//! Run cases through the Rust LSTM (or check outputs from anywhere) and
//! collect verdicts.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::case::{Case, CaseError};
use super::compare::{compare, Comparison};
use super::suite::{discover, CaseRef, Filter, SuiteError};
use super::tolerance::Tolerance;
use crate::dialect::Outputs;
use crate::lstm::Real;

/// The float type a case is run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Dtype {
    /// `f32`.
    #[serde(rename = "float32")]
    F32,
    /// `f64`.
    #[serde(rename = "float64")]
    F64,
}

impl Dtype {
    /// Both, float32 first.
    pub const ALL: [Dtype; 2] = [Dtype::F32, Dtype::F64];
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        })
    }
}

/// Where the per-step states first leave tolerance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    /// The trace output, e.g. `trace/1/c`.
    pub output: String,
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
    /// One comparison per expected output.
    pub comparisons: Vec<Comparison>,
    /// The first step where per-step states leave tolerance.
    pub divergence: Option<Divergence>,
    /// Set when the case could not be run at all.
    pub error: Option<String>,
}

impl CaseRun {
    /// Whether every output is within tolerance.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.comparisons.iter().all(|c| c.passed)
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
    let tolerance = tolerance.unwrap_or(&case.tolerance);
    let mut comparisons = Vec::new();
    let mut missing = Vec::new();
    for (name, expected) in &case.expected {
        match outputs.get(name) {
            Some(actual) => comparisons.push(compare(name, actual, expected, tolerance)),
            None => missing.push(name.as_str()),
        }
    }
    let divergence = comparisons
        .iter()
        .filter_map(|c| c.first_bad_step.as_ref().map(|(step, e)| (step, c, e)))
        .min_by_key(|(step, _, _)| **step)
        .map(|(step, c, e)| Divergence {
            output: c.output.clone(),
            step: *step,
            batch: e.index[0],
            unit: e.index[2],
            actual: e.actual,
            expected: e.expected,
        });
    CaseRun {
        id: case.id.clone(),
        api: case.model.api(),
        dtype,
        tolerance: tolerance.to_string(),
        comparisons,
        divergence,
        error: (!missing.is_empty()).then(|| format!("missing outputs: {}", missing.join(", "))),
    }
}

/// Run a loaded case through the Rust LSTM in `dtype` and check it.
pub fn run_case(case: &Case, dtype: Dtype, tolerance: Option<&Tolerance>) -> CaseRun {
    fn go<T: Real>(case: &Case, dtype: Dtype, tolerance: Option<&Tolerance>) -> CaseRun {
        match case.model.run::<T>(&case.variables, &case.inputs) {
            Ok(outputs) => check_outputs(case, &outputs, dtype, tolerance),
            Err(e) => CaseRun {
                id: case.id.clone(),
                api: case.model.api(),
                dtype,
                tolerance: tolerance.unwrap_or(&case.tolerance).to_string(),
                comparisons: Vec::new(),
                divergence: None,
                error: Some(e.to_string()),
            },
        }
    }
    match dtype {
        Dtype::F32 => go::<f32>(case, dtype, tolerance),
        Dtype::F64 => go::<f64>(case, dtype, tolerance),
    }
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

/// Run every selected case in every dtype.
pub fn run_all(cases: &[Case], dtypes: &[Dtype], tolerance: Option<&Tolerance>) -> Vec<CaseRun> {
    cases
        .iter()
        .flat_map(|case| dtypes.iter().map(move |&d| run_case(case, d, tolerance)))
        .collect()
}
