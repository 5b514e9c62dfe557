//! Load and validate one case: the manifest parses, the dialect accepts the
//! model, every file exists inside the case folder, and every array has the
//! shape and dtype the manifest says.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use ndarray::{ArrayD, Dimension};

use super::manifest::{ArrayRef, Manifest, FORMAT_VERSION};
use super::npy::{self, NpyError};
use super::tolerance::Tolerance;
use crate::dialect::{DialectError, Model};
use crate::tensor::Tensor;

/// A loaded case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Path of the case folder relative to the reference root, `/`-separated.
    pub id: String,
    /// The case folder.
    pub dir: PathBuf,
    /// The parsed `case.json`.
    pub manifest: Manifest,
    /// The parsed model.
    pub model: Model,
    /// The case's own tolerance level.
    pub tolerance: Tolerance,
    /// Variables by native name.
    pub variables: BTreeMap<String, Tensor>,
    /// Inputs by native name.
    pub inputs: BTreeMap<String, Tensor>,
    /// Expected outputs by native name.
    pub expected: BTreeMap<String, ExpectedOutput>,
    /// Numbers the seed notebook printed, by output name.
    pub printed: BTreeMap<String, ArrayD<f64>>,
}

/// One output's expected values.
#[derive(Clone, Debug)]
pub struct ExpectedOutput {
    /// From the framework's float32 run.
    pub float32: ArrayD<f32>,
    /// From the framework's float64 run, where it has one.
    pub float64: Option<ArrayD<f64>>,
}

/// An error loading or running a case: always names the case and, where
/// there is one, the file.
#[derive(Debug, thiserror::Error)]
pub struct CaseError {
    /// The case id (or folder, before the id is known).
    pub case: String,
    /// The file concerned, relative to the case folder.
    pub file: Option<String>,
    /// What went wrong.
    pub kind: CaseErrorKind,
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "case {}: {}: {}", self.case, file, self.kind),
            None => write!(f, "case {}: {}", self.case, self.kind),
        }
    }
}

/// What went wrong with a case.
#[derive(Debug, thiserror::Error)]
pub enum CaseErrorKind {
    /// `case.json` cannot be read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// `case.json` is not valid JSON or not the format.
    #[error("invalid case.json: {0}")]
    Json(String),
    /// A format version this build does not read.
    #[error("format_version {got} is not supported (this build reads version {FORMAT_VERSION})")]
    Version {
        /// The version in the file.
        got: u32,
    },
    /// A path that leaves the case folder.
    #[error("path {0:?} leaves the case folder (paths must be relative, without '..', and not symlinks out)")]
    PathEscape(String),
    /// A bad `.npy` file.
    #[error("{0}")]
    Npy(#[from] NpyError),
    /// An array whose shape differs from the manifest.
    #[error("shape {got:?} differs from the {expected:?} case.json gives")]
    Shape {
        /// From the manifest.
        expected: Vec<usize>,
        /// From the file.
        got: Vec<usize>,
    },
    /// An array of the wrong dtype.
    #[error("dtype {got} where {expected} is required")]
    DType {
        /// Required.
        expected: &'static str,
        /// Found.
        got: &'static str,
    },
    /// NaN or inf where only finite values make sense (weights, inputs).
    #[error("non-finite value {value} at index {index:?}")]
    NonFinite {
        /// The value.
        value: f64,
        /// Where.
        index: Vec<usize>,
    },
    /// The dialect rejects the model, variables or inputs.
    #[error("{0}")]
    Dialect(#[from] DialectError),
    /// A bad tolerance level name.
    #[error("{0}")]
    Tolerance(String),
    /// Expected outputs the dialect does not produce.
    #[error("expected output {0:?} is not an output of this model (it produces: {1})")]
    UnknownOutput(String, String),
}

impl Case {
    /// Load the case in `dir`, whose id is `id`.
    ///
    /// # Errors
    /// A [`CaseError`] naming the case and file for anything missing,
    /// malformed, inconsistent or outside the folder.
    pub fn load(dir: &Path, id: &str) -> Result<Case, CaseError> {
        let err = |file: Option<&str>, kind: CaseErrorKind| CaseError {
            case: id.to_string(),
            file: file.map(str::to_string),
            kind,
        };
        let text = std::fs::read_to_string(dir.join("case.json"))
            .map_err(|e| err(Some("case.json"), e.into()))?;
        // Check the version first, so a newer file says so rather than
        // failing on a field this build does not know.
        let raw: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| err(Some("case.json"), CaseErrorKind::Json(e.to_string())))?;
        match raw
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(err(
                    Some("case.json"),
                    CaseErrorKind::Version {
                        got: u32::try_from(v).unwrap_or(u32::MAX),
                    },
                ))
            }
            None => {
                return Err(err(
                    Some("case.json"),
                    CaseErrorKind::Json("missing or non-integer field `format_version`".into()),
                ))
            }
        }
        let manifest: Manifest = serde_json::from_value(raw)
            .map_err(|e| err(Some("case.json"), CaseErrorKind::Json(e.to_string())))?;
        let model = Model::parse(&manifest.dialect, &manifest.model)
            .map_err(|e| err(Some("case.json"), e.into()))?;
        let tolerance: Tolerance = manifest
            .tolerance
            .parse()
            .map_err(|e: String| err(Some("case.json"), CaseErrorKind::Tolerance(e)))?;

        let load = |r: &ArrayRef| -> Result<Tensor, CaseError> {
            load_array(dir, &r.file, &r.shape).map_err(|k| err(Some(&r.file), k))
        };
        let mut variables = BTreeMap::new();
        for (name, r) in &manifest.variables {
            let t = load(r)?;
            check_finite(&t).map_err(|k| err(Some(&r.file), k))?;
            variables.insert(name.clone(), t);
        }
        let mut inputs = BTreeMap::new();
        for (name, r) in &manifest.inputs {
            let t = load(r)?;
            check_finite(&t).map_err(|k| err(Some(&r.file), k))?;
            inputs.insert(name.clone(), t);
        }
        let mut expected = BTreeMap::new();
        for (name, e) in &manifest.expected {
            let float32 = match load_array(dir, &e.float32, &e.shape)
                .map_err(|k| err(Some(&e.float32), k))?
            {
                Tensor::F32(a) => a,
                other => {
                    return Err(err(
                        Some(&e.float32),
                        CaseErrorKind::DType {
                            expected: "float32",
                            got: other.dtype(),
                        },
                    ))
                }
            };
            let float64 = match &e.float64 {
                None => None,
                Some(file) => {
                    match load_array(dir, file, &e.shape).map_err(|k| err(Some(file), k))? {
                        Tensor::F64(a) => Some(a),
                        other => {
                            return Err(err(
                                Some(file),
                                CaseErrorKind::DType {
                                    expected: "float64",
                                    got: other.dtype(),
                                },
                            ))
                        }
                    }
                }
            };
            expected.insert(name.clone(), ExpectedOutput { float32, float64 });
        }
        let mut printed = BTreeMap::new();
        for (name, p) in manifest.notebook_printed.iter().flatten() {
            let t = load_array(dir, &p.file, &p.shape).map_err(|k| err(Some(&p.file), k))?;
            let values = t.as_f64().ok_or_else(|| {
                err(
                    Some(&p.file),
                    CaseErrorKind::DType {
                        expected: "float64",
                        got: t.dtype(),
                    },
                )
            })?;
            printed.insert(name.clone(), values);
        }

        // Dry run of the dialect: it must accept the variables and inputs
        // and produce every expected output with the expected shape.
        let produced = model
            .run::<f64>(&variables, &inputs)
            .map_err(|e| err(Some("case.json"), e.into()))?;
        for (name, e) in &manifest.expected {
            let Some(out) = produced.get(name) else {
                let names: Vec<&str> = produced.keys().map(String::as_str).collect();
                return Err(err(
                    Some("case.json"),
                    CaseErrorKind::UnknownOutput(name.clone(), names.join(", ")),
                ));
            };
            if out.shape() != e.shape.as_slice() {
                return Err(err(
                    Some(&e.float32),
                    CaseErrorKind::Dialect(DialectError::Shape {
                        what: format!("output {name} (as the model computes it)"),
                        expected: out.shape().to_vec(),
                        got: e.shape.clone(),
                    }),
                ));
            }
        }

        Ok(Case {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            manifest,
            model,
            tolerance,
            variables,
            inputs,
            expected,
            printed,
        })
    }
}

/// Resolve `file` inside `dir`, refusing anything that leaves it.
pub fn resolve(dir: &Path, file: &str) -> Result<PathBuf, CaseErrorKind> {
    let rel = Path::new(file);
    let escapes = file.is_empty()
        || rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(CaseErrorKind::PathEscape(file.to_string()));
    }
    let path = dir.join(rel);
    // A symlink (or a symlinked folder on the way) must not lead out.
    if let (Ok(real), Ok(root)) = (path.canonicalize(), dir.canonicalize()) {
        if !real.starts_with(&root) {
            return Err(CaseErrorKind::PathEscape(file.to_string()));
        }
    }
    Ok(path)
}

fn load_array(dir: &Path, file: &str, shape: &[usize]) -> Result<Tensor, CaseErrorKind> {
    let path = resolve(dir, file)?;
    let t = npy::read(&path)?;
    if t.shape() != shape {
        return Err(CaseErrorKind::Shape {
            expected: shape.to_vec(),
            got: t.shape().to_vec(),
        });
    }
    Ok(t)
}

fn check_finite(t: &Tensor) -> Result<(), CaseErrorKind> {
    if let Some(values) = t.as_f64() {
        if let Some((index, v)) = values.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(CaseErrorKind::NonFinite {
                value: *v,
                index: index.slice().to_vec(),
            });
        }
    }
    Ok(())
}
