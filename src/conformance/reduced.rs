//! A case's reduced-precision runs: `reduced.json` beside `case.json`
//! (documented in `reference/README.md`), holding what the framework
//! computed in float16 and in bfloat16 from the same variables and inputs.
//!
//! The sidecar is not part of `case.json`, so the float32 and float64
//! recording, and every gate fingerprint made from it, stays as it was.
//! Strict like `case.json`: unknown fields, unknown output names, another
//! shape or dtype, a bfloat16 file with a value that is not a bfloat16,
//! and a path leaving the folder are errors naming the case and the file.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;
use serde::Deserialize;

use super::case::{load_array, CaseError, CaseErrorKind};
use super::manifest::Manifest;
use crate::lstm::Precision;
use crate::tensor::Tensor;

/// The sidecar's file name.
pub const FILE: &str = "reduced.json";
/// Its `format`.
pub const FORMAT: &str = "lstm-parity-reduced-precision";
/// The version this build reads.
pub const VERSION: u32 = 1;

/// `reduced.json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    format: String,
    version: u32,
    runs: BTreeMap<String, RunRef>,
    // Read for its strictness only: who recorded the runs, with what.
    #[allow(dead_code)]
    provenance: SidecarProvenance,
}

/// Where the runs came from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SidecarProvenance {
    script: String,
    versions: BTreeMap<String, String>,
    #[serde(default)]
    notes: String,
}

/// One precision's run in the sidecar.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRef {
    how: String,
    expected: BTreeMap<String, String>,
}

/// What the framework computed in one reduced precision.
#[derive(Clone, Debug, PartialEq)]
pub struct ReducedRun {
    /// How the framework ran it (its policy or dtype).
    pub how: String,
    /// Expected outputs by native name (a subset of the case's), as
    /// `f32` arrays whose every value is a value of the precision.
    pub expected: BTreeMap<String, ArrayD<f32>>,
}

/// The reduced-precision runs of a case, and the files they were read
/// from (relative to the case folder) with the SHA-256 of their bytes.
pub type Loaded = (BTreeMap<Precision, ReducedRun>, BTreeMap<String, String>);

/// Read the reduced-precision runs of the case in `dir` (none without a
/// `reduced.json`).
///
/// # Errors
/// A [`CaseError`] naming the case and the file.
pub fn load(dir: &Path, id: &str, manifest: &Manifest) -> Result<Loaded, CaseError> {
    let err = |file: &str, kind: CaseErrorKind| CaseError {
        case: id.to_string(),
        file: Some(file.to_string()),
        kind,
    };
    let json_err = |m: String| err(FILE, CaseErrorKind::Json(m));
    let path = super::case::resolve(dir, FILE).map_err(|k| err(FILE, k))?;
    let mut files = BTreeMap::new();
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((BTreeMap::new(), files)),
        Err(e) => return Err(json_err(format!("cannot read: {e}"))),
        Ok(_) => {}
    }
    let text = super::fsio::read_json_text(&path).map_err(|e| json_err(e.to_string()))?;
    files.insert(FILE.to_string(), super::fsio::sha256(text.as_bytes()));
    let sidecar: Sidecar =
        super::json::from_str_strict(&text).map_err(|e| json_err(e.to_string()))?;
    if sidecar.format != FORMAT || sidecar.version != VERSION {
        return Err(json_err(format!(
            "format {:?} version {} where {FORMAT:?} version {VERSION} is required",
            sidecar.format, sidecar.version
        )));
    }
    let mut runs = BTreeMap::new();
    for (name, run) in sidecar.runs {
        let precision = match name.as_str() {
            "float16" => Precision::Float16,
            "bfloat16" => Precision::BFloat16,
            other => {
                return Err(err(
                    FILE,
                    CaseErrorKind::Precision(Box::new(crate::parse::UnknownName::new(
                        "precision",
                        "precisions",
                        other,
                        &["float16", "bfloat16"],
                    ))),
                ))
            }
        };
        let mut expected = BTreeMap::new();
        for (output, file) in &run.expected {
            let Some(e) = manifest.expected.get(output) else {
                let names: Vec<&str> = manifest.expected.keys().map(String::as_str).collect();
                return Err(err(
                    FILE,
                    CaseErrorKind::UnknownOutput(output.clone(), names.join(", ")),
                ));
            };
            let (t, got, hash) = load_array(dir, file, &e.shape).map_err(|k| err(file, k))?;
            files.insert(file.clone(), hash);
            let stored = match precision {
                Precision::Float16 => "float16",
                Precision::BFloat16 => "float32",
            };
            let (Tensor::F32(a), true) = (t, got == stored) else {
                return Err(err(
                    file,
                    CaseErrorKind::DType {
                        expected: stored,
                        got,
                    },
                ));
            };
            if let Some((index, &value)) = a
                .indexed_iter()
                .find(|(_, v)| !v.is_finite() || precision.round(f64::from(**v)) != f64::from(**v))
            {
                let kind = if value.is_finite() {
                    CaseErrorKind::NotOfPrecision {
                        value,
                        precision: precision.name(),
                    }
                } else {
                    CaseErrorKind::NonFinite {
                        value: f64::from(value),
                        index: ndarray::Dimension::slice(&index).to_vec(),
                    }
                };
                return Err(err(file, kind));
            }
            expected.insert(output.clone(), a);
        }
        runs.insert(
            precision,
            ReducedRun {
                how: run.how,
                expected,
            },
        );
    }
    Ok((runs, files))
}
