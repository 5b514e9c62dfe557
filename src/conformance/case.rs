//! Load and validate one case: the manifest parses, the dialect accepts the
//! model, every file exists inside the case folder, and every array has the
//! shape and dtype the manifest says.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use ndarray::{ArrayD, Dimension};

use super::fsio::{self, ReadError};
use super::manifest::{Manifest, FORMAT_VERSION};
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
    /// The framework's float16 and bfloat16 runs (`reduced.json`; not in
    /// [`Case::files`], so they change no gate fingerprint).
    pub reduced: BTreeMap<crate::lstm::Precision, super::reduced::ReducedRun>,
    /// The files of [`Case::reduced`] with the SHA-256 of their bytes.
    pub reduced_files: BTreeMap<String, String>,
    /// Every file the case was loaded from (`case.json` and each array,
    /// relative to the case folder), with the SHA-256 of the bytes as they
    /// were read: what a gate export vouches for.
    pub files: BTreeMap<String, String>,
}

/// The most bytes the arrays of one case may declare together (by their
/// shapes in `case.json`, at 8 bytes an element): 1 GiB. Each file is
/// refused before reading when it is larger than its declared shape needs.
pub const MAX_CASE_BYTES: u64 = 1 << 30;

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
    /// A file that is not a regular file, or too large.
    #[error("{0}")]
    Read(#[from] ReadError),
    /// The arrays declare more data than a case may hold.
    #[error(
        "the arrays declare {0} bytes together, more than the {MAX_CASE_BYTES} a case may hold"
    )]
    TooLarge(u64),
    /// A variable in `case.json` that the model never reads.
    #[error("variable {0:?} is listed but the model does not use it (a misnamed variable would be silently ignored)")]
    UnusedVariable(String),
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
        /// Found: the file's own dtype.
        got: &'static str,
    },
    /// NaN or inf where only finite values make sense (weights, inputs,
    /// expectations).
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
    Tolerance(Box<crate::parse::UnknownName>),
    /// Expected outputs the dialect does not produce.
    #[error("expected output {0:?} is not an output of this model (it produces: {1})")]
    UnknownOutput(String, String),
    /// A reduced-precision run that is not float16 or bfloat16.
    #[error("{0}")]
    Precision(Box<crate::parse::UnknownName>),
    /// A value that the precision cannot hold, in a reduced-precision run.
    #[error("value {value} is not a {precision} value")]
    NotOfPrecision {
        /// The value.
        value: f32,
        /// The run's precision.
        precision: &'static str,
    },
}

impl Case {
    /// One line for `lstm-parity list`: the id, the model's summary, and
    /// each input's name and shape.
    pub fn listing(&self) -> String {
        let shapes: Vec<String> = self
            .inputs
            .iter()
            .map(|(name, t)| format!("{name}{:?}", t.shape()))
            .collect();
        format!(
            "{}  {}  {}",
            self.id,
            self.model.summary(),
            shapes.join(" ")
        )
    }

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
        // case.json, like every array, stays inside the case folder.
        let manifest_path = resolve(dir, "case.json").map_err(|k| err(Some("case.json"), k))?;
        let manifest_bytes =
            fsio::read_limited(&manifest_path, fsio::MAX_JSON_BYTES, "a case.json")
                .map_err(|e| err(Some("case.json"), e.into()))?;
        let mut files = BTreeMap::new();
        files.insert("case.json".to_string(), fsio::sha256(&manifest_bytes));
        let text = String::from_utf8(manifest_bytes).map_err(|e| {
            err(
                Some("case.json"),
                CaseErrorKind::Json(format!("not UTF-8 text: {e}")),
            )
        })?;
        super::json::check_no_duplicate_keys(&text)
            .map_err(|e| err(Some("case.json"), CaseErrorKind::Json(e.to_string())))?;
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
            .map_err(|e| err(Some("case.json"), CaseErrorKind::Tolerance(Box::new(e))))?;
        let declared = declared_bytes(&manifest)
            .filter(|&b| b <= MAX_CASE_BYTES)
            .ok_or_else(|| {
                err(
                    Some("case.json"),
                    CaseErrorKind::TooLarge(declared_bytes(&manifest).unwrap_or(u64::MAX)),
                )
            })?;
        debug_assert!(declared <= MAX_CASE_BYTES);

        // Every array with its file's own dtype; each file read once.
        let mut dtypes: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut load = |file: &str, shape: &[usize]| -> Result<(Tensor, &'static str), CaseError> {
            let (t, dtype, hash) = load_array(dir, file, shape).map_err(|k| err(Some(file), k))?;
            files.insert(file.to_string(), hash);
            dtypes.insert(file.to_string(), dtype);
            Ok((t, dtype))
        };
        let mut variables = BTreeMap::new();
        for (name, r) in &manifest.variables {
            let (t, _) = load(&r.file, &r.shape)?;
            check_finite(&t).map_err(|k| err(Some(&r.file), k))?;
            variables.insert(name.clone(), t);
        }
        let mut inputs = BTreeMap::new();
        for (name, r) in &manifest.inputs {
            let (t, _) = load(&r.file, &r.shape)?;
            check_finite(&t).map_err(|k| err(Some(&r.file), k))?;
            inputs.insert(name.clone(), t);
        }
        let mut expected = BTreeMap::new();
        for (name, e) in &manifest.expected {
            let (t, got) = load(&e.float32, &e.shape)?;
            check_finite(&t).map_err(|k| err(Some(&e.float32), k))?;
            let float32 = match t {
                Tensor::F32(a) if got == "float32" => a,
                _ => {
                    return Err(err(
                        Some(&e.float32),
                        CaseErrorKind::DType {
                            expected: "float32",
                            got,
                        },
                    ))
                }
            };
            let float64 = match &e.float64 {
                None => None,
                Some(file) => {
                    let (t, got) = load(file, &e.shape)?;
                    check_finite(&t).map_err(|k| err(Some(file), k))?;
                    match t {
                        Tensor::F64(a) => Some(a),
                        _ => {
                            return Err(err(
                                Some(file),
                                CaseErrorKind::DType {
                                    expected: "float64",
                                    got,
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
            let (t, got) = load(&p.file, &p.shape)?;
            let values = t.as_f64().ok_or_else(|| {
                err(
                    Some(&p.file),
                    CaseErrorKind::DType {
                        expected: "float64",
                        got,
                    },
                )
            })?;
            printed.insert(name.clone(), values);
        }
        // Weights are floats whatever the dialect: say so with the file's
        // own dtype, naming the file.
        for r in manifest.variables.values() {
            if !matches!(dtypes[&r.file], "float32" | "float64") {
                return Err(err(
                    Some(&r.file),
                    CaseErrorKind::DType {
                        expected: "float32 or float64",
                        got: dtypes[&r.file],
                    },
                ));
            }
        }

        // Dry run of the dialect: it must accept the variables and inputs
        // and produce every expected output with the expected shape.
        let (produced, used) =
            crate::dialect::track_variable_use(|| model.run::<f64>(&variables, &inputs));
        let produced = produced.map_err(|e| {
            // A dtype the model refuses: name the array's file and its own dtype.
            if let DialectError::DType { what, expected, .. } = &e {
                let file = manifest
                    .inputs
                    .get(what)
                    .or_else(|| manifest.variables.get(what))
                    .map(|r| r.file.clone());
                if let Some(file) = file {
                    let got = dtypes.get(&file).copied().unwrap_or("unknown");
                    return err(Some(&file), CaseErrorKind::DType { expected, got });
                }
            }
            err(Some("case.json"), e.into())
        })?;
        for (name, r) in &manifest.variables {
            if !used.contains(name) {
                return Err(err(
                    Some(&r.file),
                    CaseErrorKind::UnusedVariable(name.clone()),
                ));
            }
        }
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

        let (reduced, reduced_files) = super::reduced::load(dir, id, &manifest)?;
        Ok(Case {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            reduced,
            reduced_files,
            manifest,
            model,
            tolerance,
            variables,
            inputs,
            expected,
            printed,
            files,
        })
    }
}

/// The bytes the arrays of `manifest` declare (8 per element), `None` on
/// overflow.
fn declared_bytes(m: &Manifest) -> Option<u64> {
    let mut shapes: Vec<&[usize]> = Vec::new();
    shapes.extend(m.variables.values().map(|r| r.shape.as_slice()));
    shapes.extend(m.inputs.values().map(|r| r.shape.as_slice()));
    for e in m.expected.values() {
        shapes.push(&e.shape);
        if e.float64.is_some() {
            shapes.push(&e.shape);
        }
    }
    shapes.extend(
        m.notebook_printed
            .iter()
            .flatten()
            .map(|(_, p)| p.shape.as_slice()),
    );
    shapes.iter().try_fold(0u64, |acc, shape| {
        let n = shape
            .iter()
            .try_fold(8u64, |a, &d| a.checked_mul(d as u64))?;
        acc.checked_add(n)
    })
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

/// Read one array: inside the folder, a regular file no larger than its
/// declared shape needs, of that shape. Returns the tensor, the file's own
/// dtype and the SHA-256 of its bytes.
pub(super) fn load_array(
    dir: &Path,
    file: &str,
    shape: &[usize],
) -> Result<(Tensor, &'static str, String), CaseErrorKind> {
    let path = resolve(dir, file)?;
    let limit = shape
        .iter()
        .try_fold(8u64, |a, &d| a.checked_mul(d as u64))
        .and_then(|b| b.checked_add(npy::MAX_HEADER_BYTES))
        .map_or(npy::MAX_FILE_BYTES, |b| b.min(npy::MAX_FILE_BYTES));
    let bytes = fsio::read_limited(&path, limit, "an array of the shape case.json declares")?;
    let hash = fsio::sha256(&bytes);
    let (t, dtype) = npy::parse_with_dtype(&bytes)?;
    if t.shape() != shape {
        return Err(CaseErrorKind::Shape {
            expected: shape.to_vec(),
            got: t.shape().to_vec(),
        });
    }
    Ok((t, dtype, hash))
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
