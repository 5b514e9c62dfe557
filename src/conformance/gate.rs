//! The gate: export the cases for another LSTM implementation in its own
//! weight layout, read back the outputs it wrote, and check them against
//! the references through the same dialect mapping and comparison the Rust
//! LSTM is held to.
//!
//! The unit of exchange is the canonical [`Step`] a dialect asks a
//! [`Runner`] to compute (one stack of layers over one batch of
//! sequences). [`export`] records every step of every case with the Rust
//! LSTM and writes the ones the layout can express; [`check`] runs each
//! case again with a runner that returns, for each step, what the
//! implementation wrote; the dialect turns those into the case's native
//! outputs and [`check_runner_except`] judges and diagnoses them.
//!
//! The file contract (`docs/gate.md` says it for people):
//!
//! ```text
//! EXPORT/index.json                          which cases and steps, and why others are not exported
//! EXPORT/<case id>/<step>/step.json          the step: shapes, direction, masking rule, files
//! EXPORT/<case id>/<step>/x.npy ...          inputs; layer<k>/<name>.npy weights in the layout
//! OUTPUTS/outputs.json                       {"format", "version", "suite_fingerprint", "implementation"}
//! OUTPUTS/<case id>/<step>/y.npy             the last layer's outputs, time in processing order
//! OUTPUTS/<case id>/<step>/h_n.<l>.npy       final h of layer l, [batch, output_size]
//! OUTPUTS/<case id>/<step>/c_n.<l>.npy       final c of layer l, [batch, units]
//! OUTPUTS/<case id>/<step>/trace.<l>.h.npy   optional per-step h of layer l
//! OUTPUTS/<case id>/<step>/trace.<l>.c.npy   optional per-step c of layer l
//! OUTPUTS/<case id>/<step>/error.txt         instead of outputs: the implementation could not run it
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, Array3, ArrayD, Dimension, Ix2};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::case::Case;
use super::check::{check_runner_except, CaseRun, Dtype, NotCompared, Recording, NEEDS_TRACES};
use super::diagnose::DiagnoseOptions;
use super::expectations::{Expectations, StatedTolerance};
use super::fsio;
use super::npy;
use super::replace::{self, LockError, TargetLock};
use super::report::{GateInfo, Report, ReportError, Skipped};
use super::suite::{discover, SuiteError};
use super::tolerance::Tolerance;
use crate::dialect::layout::{self, ForgetBias, Layout};
use crate::dialect::{DialectError, Half, Outputs, Runner, RustLstm, Step};
use crate::lstm::{Activation, MaskedOutput, Real, RunOutput, State, StepTrace};
use crate::tensor::Tensor;

/// The version of the export format (`index.json`, `step.json`).
pub const GATE_VERSION: u32 = 2;
/// The version of the outputs format (`outputs.json` and the arrays).
pub const OUTPUTS_VERSION: u32 = 1;
/// `format` of `index.json`.
pub const EXPORT_FORMAT: &str = "lstm-parity-gate-export";
/// `format` of `step.json`.
pub const STEP_FORMAT: &str = "lstm-parity-gate-step";
/// `format` of `outputs.json`.
pub const OUTPUTS_FORMAT: &str = "lstm-parity-gate-outputs";

// ---------------------------------------------------------------------------
// Files.

/// `EXPORT/index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportIndex {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// [`GATE_VERSION`].
    pub version: u32,
    /// The SHA-256 of everything else in this file (see
    /// [`fingerprint`]): layout, dtype, forget_bias, every case's flags and
    /// steps, the hash of every file written and of every reference file
    /// read. Outputs carry it to say which export they were computed from.
    pub suite_fingerprint: String,
    /// The layout name.
    pub layout: String,
    /// `float32` or `float64`.
    pub dtype: Dtype,
    /// `kept` or `folded`.
    pub forget_bias: String,
    /// How the cases were selected: `check` selects again from the
    /// reference and refuses an index that lost or gained a case.
    pub selected_by: SelectedBy,
    /// Every selected case, exported or not.
    pub cases: Vec<IndexCase>,
    /// The reference folder the export was made from (canonical path), so
    /// that a check against another folder can say so. Not part of the
    /// fingerprint: the same suite exports the same wherever it lies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// How the cases of an export were selected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SelectedBy {
    /// Case-id filters (globs, or substrings of ids; every case when
    /// empty), narrowed by the model's API glob and option word: what the
    /// command line selects with.
    Filters {
        /// The case-id filters.
        filters: Vec<String>,
        /// `--api`.
        api: Option<String>,
        /// `--option`.
        option: Option<String>,
    },
    /// Exactly these case ids (a library caller's own list).
    Cases(Vec<String>),
}

impl SelectedBy {
    /// Every case of the reference.
    pub fn all() -> SelectedBy {
        SelectedBy::Filters {
            filters: Vec::new(),
            api: None,
            option: None,
        }
    }

    /// Select from the cases under `root`: discover, filter and load.
    ///
    /// # Errors
    /// A [`SuiteError`]: the folder, a filter, or a listed case id that is
    /// not in it.
    pub fn select(&self, root: &Path) -> Result<super::check::Selection, SuiteError> {
        match self {
            SelectedBy::Filters {
                filters,
                api,
                option,
            } => {
                let narrow = super::suite::ModelFilter::new(api.as_deref(), option.as_deref())?;
                let mut selection =
                    super::check::select(root, &super::suite::Filter::new(filters)?)?;
                selection
                    .cases
                    .retain(|c| narrow.matches(&c.model.api(), &c.model.summary()));
                Ok(selection)
            }
            SelectedBy::Cases(ids) => {
                let known: BTreeMap<String, PathBuf> =
                    discover(root)?.into_iter().map(|r| (r.id, r.dir)).collect();
                let mut selection = super::check::Selection {
                    cases: Vec::new(),
                    errors: Vec::new(),
                };
                for id in ids {
                    let dir = known.get(id).ok_or_else(|| SuiteError::Io {
                        path: root.join(id),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "the case is not in the reference folder",
                        ),
                    })?;
                    match Case::load(dir, id) {
                        Ok(c) => selection.cases.push(c),
                        Err(e) => selection.errors.push(e),
                    }
                }
                Ok(selection)
            }
        }
    }
}

impl std::fmt::Display for SelectedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelectedBy::Filters {
                filters,
                api,
                option,
            } => {
                if filters.is_empty() {
                    write!(f, "every case")?;
                } else {
                    write!(f, "cases matching {}", filters.join(" "))?;
                }
                if let Some(a) = api {
                    write!(f, ", --api {a}")?;
                }
                if let Some(o) = option {
                    write!(f, ", --option {o}")?;
                }
                Ok(())
            }
            SelectedBy::Cases(ids) => write!(f, "{} listed cases", ids.len()),
        }
    }
}

/// One case in `index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexCase {
    /// The case id.
    pub id: String,
    /// Its API.
    pub api: String,
    /// What it exercises.
    pub features: Vec<String>,
    /// Whether every step was exported (a case is checked whole or not at all).
    pub exported: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    /// Its steps, in the order the dialect runs them.
    pub steps: Vec<IndexStep>,
    /// The case's reference files as the export read them (relative to
    /// the case folder), with their SHA-256.
    pub reference_files: BTreeMap<String, String>,
    /// The files exported for it (relative to the export folder), with
    /// their SHA-256.
    pub files: BTreeMap<String, String>,
}

/// One step in `index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexStep {
    /// The step's name within the case.
    pub name: String,
    /// Its folder, relative to the export (and to the outputs) folder.
    pub dir: String,
    /// Why the layout cannot express it, when it cannot.
    pub not_exported: Option<String>,
}

/// A file in `step.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Relative to the step folder.
    pub file: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// `float32`, `float64`, `int32` or `bool`.
    pub dtype: String,
}

/// An output the implementation writes, in `step.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputRef {
    /// Relative to the step's outputs folder.
    pub file: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// The export's dtype.
    pub dtype: String,
    /// Whether it must be written (`false`: per-step traces, optional).
    pub required: bool,
}

/// One layer in `step.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLayer {
    /// Cell units.
    pub units: usize,
    /// Size of h (the projection size, if any).
    pub output_size: usize,
    /// Layout-specific options (see `docs/gate.md`).
    pub options: Value,
    /// Weight arrays by the layout's own names.
    pub weights: BTreeMap<String, FileRef>,
}

/// `EXPORT/<case>/<step>/step.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// [`STEP_FORMAT`].
    pub format: String,
    /// [`GATE_VERSION`].
    pub version: u32,
    /// The case id.
    pub case: String,
    /// The step's name.
    pub step: String,
    /// The layout name.
    pub layout: String,
    /// The dtype of every float array, in and out.
    pub dtype: Dtype,
    /// Rows.
    pub batch: usize,
    /// Time steps.
    pub time: usize,
    /// Input features.
    pub input_size: usize,
    /// Whether sequences (`x`, `mask`, `y`, traces) are `[time, batch, ...]`.
    pub time_major: bool,
    /// `forward`, or `reverse`: process the last time step first.
    pub direction: String,
    /// At a masked step: `zero` or `repeat_previous`; `null` without a mask.
    pub masked_output: Option<String>,
    /// Input arrays: `x`, optional `mask`, `sequence_lengths`,
    /// `initial_h/<l>`, `initial_c/<l>`.
    pub inputs: BTreeMap<String, FileRef>,
    /// The stack, first layer first.
    pub layers: Vec<StepLayer>,
    /// What the implementation writes: `y`, `h_n/<l>`, `c_n/<l>`, optional
    /// `trace/<l>/h` and `trace/<l>/c`.
    pub outputs: BTreeMap<String, OutputRef>,
}

/// `OUTPUTS/outputs.json`, written by the implementation (or its adapter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsInfo {
    /// [`OUTPUTS_FORMAT`].
    pub format: String,
    /// [`OUTPUTS_VERSION`].
    pub version: u32,
    /// Copied from the export's `index.json`.
    pub suite_fingerprint: String,
    /// Free text: name and version of the implementation.
    pub implementation: String,
    /// The export folder the outputs were computed from (so that `check`
    /// can find it without `--export`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
}

// ---------------------------------------------------------------------------
// Errors.

/// Why an export or a check cannot go on. Each names the folder or file,
/// and the case where there is one.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The export folder holds other things.
    #[error("{}: {reason}; refusing to replace it (export into a new or empty folder, or an earlier export)", path.display())]
    NotAnExport {
        /// The folder.
        path: PathBuf,
        /// What makes it not an export.
        reason: String,
    },
    /// The export folder would overlap the references.
    #[error("{}: inside or around the reference folder {}; refusing to export there", out.display(), reference.display())]
    IntoReference {
        /// `--out`.
        out: PathBuf,
        /// The reference folder.
        reference: PathBuf,
    },
    /// Another export into the same folder is running.
    #[error("{}: another export into this folder is running (lock file {}); nothing was changed", target.display(), lock.display())]
    Busy {
        /// The export folder.
        target: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A signal stopped the export.
    #[error("{}: interrupted; the folder is as it was before (nothing was changed)", .0.display())]
    Interrupted(PathBuf),
    /// No selected case can be expressed in the layout: an export of
    /// nothing, which would let a check of nothing look like a pass.
    #[error("{}: nothing to export: none of the {count} selected cases can be expressed in layout {layout} (for example {example}); nothing was changed", target.display())]
    NothingExported {
        /// The export folder.
        target: PathBuf,
        /// The layout.
        layout: String,
        /// Cases selected.
        count: usize,
        /// The first case with its reason.
        example: String,
    },
    /// A file or folder cannot be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A gate file that is not what it should be.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The outputs were written for another export.
    #[error("{}: written for suite fingerprint {got}, but the export in {} has {expected}: run the implementation on this export again", outputs.display(), export.display())]
    OtherExport {
        /// The outputs folder.
        outputs: PathBuf,
        /// The export folder.
        export: PathBuf,
        /// The export's fingerprint.
        expected: String,
        /// The outputs'.
        got: String,
    },
    /// The export does not vouch for what is on disk now: the reference or
    /// an export file changed since the export, or `index.json` was edited.
    #[error("{}: {what}: export again (and run the implementation on the new export)", export.display())]
    StaleExport {
        /// The export folder.
        export: PathBuf,
        /// What changed, naming the file.
        what: String,
    },
    /// The reference folder cannot be listed.
    #[error("{0}")]
    Suite(#[from] SuiteError),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> GateError + '_ {
    move |e| GateError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn json_bytes<S: Serialize>(value: &S) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(value).expect("gate files serialize");
    text.push('\n');
    text.into_bytes()
}

fn write_json<S: Serialize>(path: &Path, value: &S) -> Result<(), GateError> {
    npy::write_atomic_unsynced(path, &json_bytes(value)).map_err(io_err(path))
}

/// Read a gate JSON file: a regular file of bounded size, strict JSON (no
/// duplicate keys), the exact structure.
fn read_json<D: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<D, GateError> {
    let text = fsio::read_json_text(path).map_err(|e| GateError::Io {
        path: path.to_path_buf(),
        message: format!("cannot read the {what}: {e}"),
    })?;
    super::json::from_str_strict(&text).map_err(|e| GateError::Format {
        path: path.to_path_buf(),
        message: format!("not a valid {what}: {e}"),
    })
}

/// `rel` (a case id or step folder) joined to `dir`, refusing anything
/// that would leave `dir`.
fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let ok = !rel.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !p.is_absolute();
    ok.then(|| dir.join(p))
}

// ---------------------------------------------------------------------------
// Fingerprint and features.

/// The fingerprint of an index: the SHA-256 of its JSON with the
/// fingerprint field empty. It covers the layout, dtype and forget_bias,
/// every case's flags, features and steps, and the hashes of every file
/// exported and every reference file read, so a change to any of them
/// changes it.
pub fn fingerprint(index: &ExportIndex) -> String {
    let mut blank = index.clone();
    blank.suite_fingerprint = String::new();
    blank.reference = None;
    fsio::sha256(&json_bytes(&blank))
}

/// What the steps of a case exercise, for reports and the compatibility
/// matrix: `peepholes`, `cell_clip`, `projection`, `proj_clip`,
/// `forget_bias`, `activations` (other than sigmoid/tanh/tanh), `stacked`,
/// `reverse`, `bidirectional`, `sequence_lengths`, `zero_length`, `mask`
/// (not a length mask), `masked_repeat`, `initial_state`, `one_step`,
/// `chained_steps` (later steps read earlier results); `plain` for none.
pub fn features<T: Real>(steps: &[Step<T>]) -> Vec<String> {
    let mut f: Vec<&str> = Vec::new();
    let mut add = |cond: bool, name: &'static str| {
        if cond && !f.contains(&name) {
            f.push(name);
        }
    };
    for s in steps {
        for l in &s.layers {
            add(l.peepholes.is_some(), "peepholes");
            add(l.cell_clip.is_some(), "cell_clip");
            add(l.projection.is_some(), "projection");
            add(
                l.projection.as_ref().is_some_and(|p| p.clip.is_some()),
                "proj_clip",
            );
            add(l.forget_bias != T::zero(), "forget_bias");
            add(
                (l.gate_activation, l.cell_activation, l.output_activation)
                    != (Activation::Sigmoid, Activation::Tanh, Activation::Tanh),
                "activations",
            );
        }
        add(s.layers.len() > 1, "stacked");
        add(s.reverse, "reverse");
        add(s.bidirectional == Some(Half::Backward), "bidirectional");
        if let Some(m) = &s.mask {
            let lengths = layout::mask_lengths(m);
            add(lengths.is_some(), "sequence_lengths");
            add(
                lengths.as_ref().is_some_and(|l| l.contains(&0)),
                "zero_length",
            );
            add(lengths.is_none(), "mask");
            add(
                s.masked_output == MaskedOutput::RepeatPrevious,
                "masked_repeat",
            );
        }
        add(s.initial_state.is_some(), "initial_state");
        add(s.inputs.dim().1 == 1, "one_step");
        add(s.depends_on_earlier_steps, "chained_steps");
    }
    if f.is_empty() {
        f.push("plain");
    }
    f.into_iter().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------
// Export.

/// What to export.
#[derive(Clone, Copy, Debug)]
pub struct ExportOptions<'a> {
    /// How the cases were selected, recorded in the index; `None`: exactly
    /// the cases given ([`SelectedBy::Cases`]).
    pub selected_by: Option<&'a SelectedBy>,
    /// The target layout.
    pub layout: Layout,
    /// The dtype of every float array.
    pub dtype: Dtype,
    /// `None`: the layout's default (kept where it has the option).
    pub forget_bias: Option<ForgetBias>,
    /// Set (by a signal handler) to stop the export: the folder is then
    /// left as it was.
    pub interrupt: Option<&'a AtomicBool>,
}

fn tensor_of<T: Real>(a: &ArrayD<T>) -> Tensor {
    if T::NAME == "float32" {
        Tensor::F32(a.mapv(|v| v.widen() as f32))
    } else {
        Tensor::F64(a.mapv(Real::widen))
    }
}

/// Where an export's files go: the staging folder on disk, or nowhere
/// (`check` plans the export again in memory to know the hash every file
/// must have). Records the SHA-256 of each file.
struct Sink<'a> {
    disk: Option<&'a Path>,
    interrupt: Option<&'a AtomicBool>,
    files: BTreeMap<String, String>,
}

impl Sink<'_> {
    fn put(&mut self, rel: &str, bytes: &[u8]) -> Result<(), GateError> {
        if let Some(root) = self.disk {
            if self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
                return Err(GateError::Interrupted(root.to_path_buf()));
            }
            let path = root.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            // The staging folder is private until it is swapped in whole,
            // so each file is written in place.
            fs::write(&path, bytes).map_err(io_err(&path))?;
        }
        self.files.insert(rel.to_string(), fsio::sha256(bytes));
        Ok(())
    }

    fn array(&mut self, step_rel: &str, file: &str, t: &Tensor) -> Result<FileRef, GateError> {
        let rel = format!("{step_rel}/{file}");
        let bytes = npy::to_bytes(t).map_err(|e| GateError::Io {
            path: PathBuf::from(&rel),
            message: e.to_string(),
        })?;
        self.put(&rel, &bytes)?;
        Ok(FileRef {
            file: file.to_string(),
            shape: t.shape().to_vec(),
            dtype: t.dtype().to_string(),
        })
    }
}

/// Whether `dir` may be replaced by a new export: it is absent, an empty
/// folder, or an earlier export of this format that vouches for every
/// entry in it: its `index.json` is as that export wrote it (its
/// fingerprint matches), and every file below it is one the index lists,
/// with the bytes it was written with. Never a symbolic link, a file, or a
/// folder holding anything else (a user's notes inside a step folder
/// included): what the tool would delete is only ever what it wrote.
fn check_replaceable(dir: &Path) -> Result<(), GateError> {
    let not_export = |reason: String| GateError::NotAnExport {
        path: dir.to_path_buf(),
        reason,
    };
    let meta = match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir)(e)),
        Ok(m) => m,
    };
    if meta.file_type().is_symlink() {
        return Err(not_export("a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(not_export(format!(
            "{}, not a folder",
            fsio::kind_of(&meta)
        )));
    }
    if fs::read_dir(dir).map_err(io_err(dir))?.next().is_none() {
        return Ok(());
    }
    let index_path = dir.join("index.json");
    let text = fsio::read_json_text(&index_path).map_err(|e| {
        not_export(format!(
            "not empty, and index.json is not an export index ({e})"
        ))
    })?;
    let raw: Value = super::json::from_str_strict(&text)
        .map_err(|e| not_export(format!("not empty, and index.json is not JSON ({e})")))?;
    if raw.get("format").and_then(Value::as_str) != Some(EXPORT_FORMAT) {
        return Err(not_export(
            "not empty, and index.json is not an export index".into(),
        ));
    }
    if raw.get("version").and_then(Value::as_u64) != Some(u64::from(GATE_VERSION)) {
        return Err(not_export(format!(
            "an export of another version than {GATE_VERSION}, which does not list its files: remove it yourself, or export elsewhere"
        )));
    }
    let old: ExportIndex = serde_json::from_value(raw)
        .map_err(|e| not_export(format!("index.json is not an export index ({e})")))?;
    if fingerprint(&old) != old.suite_fingerprint {
        return Err(not_export(
            "index.json was changed after that export: it no longer vouches for the folder's files"
                .into(),
        ));
    }
    let mut listed: BTreeMap<String, &String> = BTreeMap::new();
    for case in &old.cases {
        for (rel, hash) in &case.files {
            listed.insert(rel.clone(), hash);
        }
    }
    // Every entry below `dir`, without following links: a folder on the
    // way to a listed file, or a listed file with its bytes unchanged.
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = pending.pop() {
        for e in fs::read_dir(&path).map_err(io_err(&path))? {
            let e = e.map_err(io_err(&path))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                return Err(not_export(format!(
                    "holds {:?}, which its index.json does not list",
                    e.path()
                )));
            };
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let kind = e.file_type().map_err(io_err(&e.path()))?;
            let unlisted = || {
                not_export(format!(
                    "holds {child:?}, which its index.json does not list; move it away, or export elsewhere"
                ))
            };
            if kind.is_dir() {
                let prefix = format!("{child}/");
                if !listed
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix))
                {
                    return Err(unlisted());
                }
                pending.push((e.path(), child));
            } else if child == "index.json" && kind.is_file() {
                continue;
            } else if kind.is_file() {
                let hash = listed.get(&child).ok_or_else(unlisted)?;
                let bytes = fsio::read_limited(&e.path(), npy::MAX_FILE_BYTES, "an export file")
                    .map_err(|x| not_export(format!("{child}: {x}")))?;
                if &&fsio::sha256(&bytes) != hash {
                    return Err(not_export(format!(
                        "{child} changed since that export; move it away, or export elsewhere"
                    )));
                }
            } else {
                return Err(not_export(format!(
                    "holds {child:?}, {}, which an export never writes",
                    if kind.is_symlink() {
                        "a symbolic link"
                    } else {
                        "not a regular file"
                    }
                )));
            }
        }
    }
    Ok(())
}

/// Refuse an export folder inside the reference folder (or a case
/// folder), or one that holds it.
fn check_outside_reference(out: &Path, root: &Path) -> Result<(), GateError> {
    let out_abs = replace::absolute(out).map_err(io_err(out))?;
    let root_abs = root.canonicalize().map_err(io_err(root))?;
    if out_abs.starts_with(&root_abs) || root_abs.starts_with(&out_abs) {
        return Err(GateError::IntoReference {
            out: out.to_path_buf(),
            reference: root.to_path_buf(),
        });
    }
    Ok(())
}

/// Removes the staging folder unless the export completed.
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Export `cases` (loaded from `root`) into `dir`: every step the layout
/// can express, with `index.json` listing every case and why any is not
/// exported, and the hash of every file.
///
/// The export is built in a staging folder beside `dir` and swapped in
/// whole, under a lock: `dir` is at every moment the earlier export or the
/// new one (see [`replace`]). `dir` must be absent, empty, or an earlier
/// export; it must not overlap `root`.
///
/// # Errors
/// A [`GateError`]: `dir` is not replaceable, lies in the references, is
/// being exported into by another process, the export was interrupted, a
/// file cannot be written, a forget_bias mode the layout lacks.
pub fn export(
    root: &Path,
    cases: &[Case],
    dir: &Path,
    options: &ExportOptions,
) -> Result<ExportIndex, GateError> {
    let forget_bias = resolve_forget_bias(options)?;
    check_outside_reference(dir, root)?;
    let (parent, _) = replace::split(dir).map_err(io_err(dir))?;
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let _lock = TargetLock::acquire(dir).map_err(|e| match e {
        LockError::Busy(lock) => GateError::Busy {
            target: dir.to_path_buf(),
            lock,
        },
        LockError::Io(path, e) => io_err(&path)(e),
    })?;
    replace::remove_stale_staging(dir, &|d| check_replaceable(d).is_ok());
    check_replaceable(dir)?;
    let staging_path = replace::staging(dir).map_err(io_err(dir))?;
    fs::create_dir(&staging_path).map_err(io_err(&staging_path))?;
    let mut staging = Staging(Some(staging_path.clone()));
    let marker = staging_path.join(replace::STAGING_MARKER);
    fs::write(&marker, b"").map_err(io_err(&marker))?;
    let mut index = build(
        cases,
        options,
        forget_bias,
        Some(&staging_path),
        options.interrupt,
    )
    .map_err(|e| match e {
        GateError::Interrupted(_) => GateError::Interrupted(dir.to_path_buf()),
        other => other,
    })?;
    index.reference = Some(
        fs::canonicalize(root)
            .unwrap_or_else(|_| root.to_path_buf())
            .display()
            .to_string(),
    );
    if options.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
        return Err(GateError::Interrupted(dir.to_path_buf()));
    }
    if !index.cases.iter().any(|c| c.exported) {
        return Err(GateError::NothingExported {
            target: dir.to_path_buf(),
            layout: index.layout.clone(),
            count: index.cases.len(),
            example: index.cases.first().map_or_else(
                || "no case was selected".into(),
                |c| format!("{}: {}", c.id, c.reason.as_deref().unwrap_or("-")),
            ),
        });
    }
    fs::write(staging_path.join("index.json"), json_bytes(&index))
        .map_err(io_err(&staging_path.join("index.json")))?;
    fs::remove_file(&marker).map_err(io_err(&marker))?;
    replace::swap_in(&staging_path, dir).map_err(io_err(dir))?;
    staging.0 = None;
    Ok(index)
}

/// The index an export of `cases` has, computed in memory without writing
/// anything: what `check` holds an export folder to.
///
/// # Errors
/// A forget_bias mode the layout lacks.
pub fn plan(cases: &[Case], options: &ExportOptions) -> Result<ExportIndex, GateError> {
    let forget_bias = resolve_forget_bias(options)?;
    build(cases, options, forget_bias, None, None)
}

fn resolve_forget_bias(options: &ExportOptions) -> Result<ForgetBias, GateError> {
    let forget_bias = options
        .forget_bias
        .unwrap_or_else(|| options.layout.default_forget_bias());
    if forget_bias == ForgetBias::Kept && !options.layout.has_forget_bias() {
        return Err(GateError::Usage(format!(
            "layout {} has no forget_bias option: it is always folded into the bias (omit --forget-bias or use folded)",
            options.layout
        )));
    }
    Ok(forget_bias)
}

fn build(
    cases: &[Case],
    options: &ExportOptions,
    forget_bias: ForgetBias,
    disk: Option<&Path>,
    interrupt: Option<&AtomicBool>,
) -> Result<ExportIndex, GateError> {
    let mut index = ExportIndex {
        format: EXPORT_FORMAT.into(),
        version: GATE_VERSION,
        suite_fingerprint: String::new(),
        layout: options.layout.name().into(),
        dtype: options.dtype,
        forget_bias: forget_bias.to_string(),
        selected_by: options.selected_by.cloned().unwrap_or_else(|| {
            let mut ids: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
            ids.sort();
            SelectedBy::Cases(ids)
        }),
        cases: Vec::new(),
        reference: None,
    };
    // Sorted by id, each once: the order `check` holds an index to.
    let mut sorted: Vec<&Case> = cases.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(w) = sorted.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(GateError::Usage(format!("case {} is given twice", w[0].id)));
    }
    for case in sorted {
        let mut sink = Sink {
            disk,
            interrupt,
            files: BTreeMap::new(),
        };
        let mut entry = match options.dtype {
            Dtype::F32 => {
                export_case::<f32>(case, &mut sink, options.layout, options.dtype, forget_bias)?
            }
            Dtype::F64 => {
                export_case::<f64>(case, &mut sink, options.layout, options.dtype, forget_bias)?
            }
        };
        entry.files = sink.files;
        index.cases.push(entry);
    }
    index.suite_fingerprint = fingerprint(&index);
    Ok(index)
}

fn export_case<T: Real>(
    case: &Case,
    sink: &mut Sink,
    layout: Layout,
    dtype: Dtype,
    forget_bias: ForgetBias,
) -> Result<IndexCase, GateError> {
    let mut lstm = RustLstm;
    let mut recording = Recording::new(&mut lstm);
    let run = case
        .model
        .run_with::<T>(&case.variables, &case.inputs, &mut recording);
    let steps: Vec<Step<T>> = recording.steps.into_iter().map(|(s, _)| s).collect();
    let mut entry = IndexCase {
        id: case.id.clone(),
        api: case.model.api(),
        features: features(&steps),
        exported: false,
        reason: None,
        steps: Vec::new(),
        reference_files: case.files.clone(),
        files: BTreeMap::new(),
    };
    if let Err(e) = run {
        entry.reason = Some(format!("the Rust LSTM cannot run it: {e}"));
        return Ok(entry);
    }
    for s in &steps {
        let not_exported = layout::check_step(layout, s, forget_bias)
            .err()
            .map(|e| e.to_string());
        entry.steps.push(IndexStep {
            name: s.name.clone(),
            dir: format!("{}/{}", case.id, s.name),
            not_exported,
        });
    }
    if let Some(bad) = entry.steps.iter().find(|s| s.not_exported.is_some()) {
        entry.reason = Some(format!(
            "step {:?}: {}",
            bad.name,
            bad.not_exported.as_deref().unwrap_or("")
        ));
        return Ok(entry);
    }
    let read = final_states_read(case);
    for (s, e) in steps.iter().zip(&entry.steps) {
        if inside(Path::new("."), &e.dir).is_none() {
            return Err(GateError::Format {
                path: PathBuf::from(&e.dir),
                message: format!("step folder {:?} is not a plain relative path", e.dir),
            });
        }
        let states_read = read.get(&s.name).map_or(&[][..], Vec::as_slice);
        write_step(
            sink,
            &e.dir,
            s,
            case,
            layout,
            dtype,
            forget_bias,
            states_read,
        )?;
    }
    entry.exported = true;
    Ok(entry)
}

/// Whether a recorded output reads a layer's final `h` and `c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatesRead {
    h: bool,
    c: bool,
}

impl StatesRead {
    const BOTH: StatesRead = StatesRead { h: true, c: true };
}

/// Per step of `case` (by name) and layer: whether any recorded output
/// reads the final `h` and `c`. Found by running the case (float64) with
/// one final state changed at a time and seeing whether any recorded
/// output changes: a Keras layer without `return_state` reads none, TF1's
/// `dynamic_rnn` reads both. Where the case cannot be run, every state
/// counts as read.
fn final_states_read(case: &Case) -> BTreeMap<String, Vec<StatesRead>> {
    /// Which final states to change by +1.
    #[derive(Clone)]
    enum Which {
        None,
        All,
        One { step: String, layer: usize, c: bool },
    }
    /// The Rust LSTM, with final states changed.
    struct Changed(Which);
    impl Runner<f64> for Changed {
        fn run_step(&mut self, step: &Step<f64>) -> Result<RunOutput<f64>, DialectError> {
            let mut run = RustLstm.run_step(step)?;
            for (l, st) in run.final_state.iter_mut().enumerate() {
                for (c, a) in [(false, &mut st.h), (true, &mut st.c)] {
                    let changed = match &self.0 {
                        Which::None => false,
                        Which::All => true,
                        Which::One {
                            step: name,
                            layer,
                            c: which,
                        } => *name == step.name && *layer == l && *which == c,
                    };
                    if changed {
                        a.mapv_inplace(|v| v + 1.0);
                    }
                }
            }
            Ok(run)
        }
    }
    let mut plain = Changed(Which::None);
    let mut recording = Recording::new(&mut plain);
    let Ok(baseline) = case
        .model
        .run_with::<f64>(&case.variables, &case.inputs, &mut recording)
    else {
        return BTreeMap::new();
    };
    let shape: Vec<(String, usize)> = recording
        .steps
        .iter()
        .map(|(s, _)| (s.name.clone(), s.layers.len()))
        .collect();
    let reads = |changed: &mut Changed| -> bool {
        let Ok(out) = case
            .model
            .run_with::<f64>(&case.variables, &case.inputs, changed)
        else {
            return true;
        };
        case.expected
            .keys()
            .any(|name| match (baseline.get(name), out.get(name)) {
                (Some(a), Some(b)) => {
                    a.shape() != b.shape()
                        || a.iter()
                            .zip(b.iter())
                            .any(|(x, y)| x.to_bits() != y.to_bits())
                }
                (None, None) => false,
                _ => true,
            })
    };
    // Commonly no recorded output reads any final state (Keras layers
    // without return_state): one run tells.
    let none_read = !reads(&mut Changed(Which::All));
    shape
        .into_iter()
        .map(|(name, layers)| {
            let per_layer = (0..layers)
                .map(|layer| {
                    let read = |c: bool| {
                        !none_read
                            && reads(&mut Changed(Which::One {
                                step: name.clone(),
                                layer,
                                c,
                            }))
                    };
                    StatesRead {
                        h: read(false),
                        c: read(true),
                    }
                })
                .collect();
            (name, per_layer)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn write_step<T: Real>(
    sink: &mut Sink,
    step_rel: &str,
    step: &Step<T>,
    case: &Case,
    layout: Layout,
    dtype: Dtype,
    forget_bias: ForgetBias,
    states_read: &[StatesRead],
) -> Result<(), GateError> {
    let (batch, time, input_size) = step.inputs.dim();
    let order = |a: ArrayD<T>| -> ArrayD<T> {
        if layout.time_major() {
            layout::swap_batch_time(&a)
        } else {
            a
        }
    };
    let mut inputs = BTreeMap::new();
    inputs.insert(
        "x".to_string(),
        sink.array(
            step_rel,
            "x.npy",
            &tensor_of(&order(step.inputs.clone().into_dyn())),
        )?,
    );
    if let Some(mask) = &step.mask {
        let m = if layout.time_major() {
            mask.t().as_standard_layout().into_owned()
        } else {
            mask.clone()
        };
        inputs.insert(
            "mask".into(),
            sink.array(step_rel, "mask.npy", &Tensor::Bool(m.into_dyn()))?,
        );
        if let Some(lengths) = layout::mask_lengths(mask) {
            let l: Vec<i32> = lengths
                .iter()
                .map(|&v| i32::try_from(v).unwrap_or(i32::MAX))
                .collect();
            inputs.insert(
                "sequence_lengths".into(),
                sink.array(
                    step_rel,
                    "sequence_lengths.npy",
                    &Tensor::I32(ndarray::Array1::from(l).into_dyn()),
                )?,
            );
        }
    }
    if let Some(states) = &step.initial_state {
        for (l, s) in states.iter().enumerate() {
            inputs.insert(
                format!("initial_h/{l}"),
                sink.array(
                    step_rel,
                    &format!("initial_h.{l}.npy"),
                    &tensor_of(&s.h.clone().into_dyn()),
                )?,
            );
            inputs.insert(
                format!("initial_c/{l}"),
                sink.array(
                    step_rel,
                    &format!("initial_c.{l}.npy"),
                    &tensor_of(&s.c.clone().into_dyn()),
                )?,
            );
        }
    }
    let mut layers = Vec::new();
    for (k, layer) in step.layers.iter().enumerate() {
        let e = layout::export_layer(layout, layer, k, forget_bias);
        let mut weights = BTreeMap::new();
        for (name, a) in &e.arrays {
            let file = format!("layer{k}/{}.npy", name.replace('/', "_"));
            weights.insert(name.clone(), sink.array(step_rel, &file, &tensor_of(a))?);
        }
        layers.push(StepLayer {
            units: layer.units(),
            output_size: layer.output_size(),
            options: e.options,
            weights,
        });
    }
    let seq = |features: usize| -> Vec<usize> {
        if layout.time_major() {
            vec![time, batch, features]
        } else {
            vec![batch, time, features]
        }
    };
    let out = |file: String, shape: Vec<usize>, required: bool| OutputRef {
        file,
        shape,
        dtype: T::NAME.to_string(),
        required,
    };
    let mut outputs = BTreeMap::new();
    let last = step.layers.last().map_or(0, |l| l.output_size());
    outputs.insert("y".to_string(), out("y.npy".into(), seq(last), true));
    for (l, layer) in step.layers.iter().enumerate() {
        // A final state no recorded output reads is optional (when written,
        // it is still judged, against the Rust LSTM).
        let read = states_read.get(l).copied().unwrap_or(StatesRead::BOTH);
        outputs.insert(
            format!("h_n/{l}"),
            out(
                format!("h_n.{l}.npy"),
                vec![batch, layer.output_size()],
                read.h,
            ),
        );
        outputs.insert(
            format!("c_n/{l}"),
            out(format!("c_n.{l}.npy"), vec![batch, layer.units()], read.c),
        );
        outputs.insert(
            format!("trace/{l}/h"),
            out(format!("trace.{l}.h.npy"), seq(layer.output_size()), false),
        );
        outputs.insert(
            format!("trace/{l}/c"),
            out(format!("trace.{l}.c.npy"), seq(layer.units()), false),
        );
    }
    let file = StepFile {
        format: STEP_FORMAT.into(),
        version: GATE_VERSION,
        case: case.id.clone(),
        step: step.name.clone(),
        layout: layout.name().into(),
        dtype,
        batch,
        time,
        input_size,
        time_major: layout.time_major(),
        direction: if step.reverse { "reverse" } else { "forward" }.into(),
        masked_output: step.mask.as_ref().map(|_| {
            match step.masked_output {
                MaskedOutput::Zero => "zero",
                MaskedOutput::RepeatPrevious => "repeat_previous",
            }
            .to_string()
        }),
        inputs,
        layers,
        outputs,
    };
    sink.put(&format!("{step_rel}/step.json"), &json_bytes(&file))
}

// ---------------------------------------------------------------------------
// For Rust implementations: read a step back, write its outputs.

/// Read an export's `index.json`.
///
/// # Errors
/// [`GateError::Io`] or [`GateError::Format`] naming the file.
pub fn read_index(export_dir: &Path) -> Result<ExportIndex, GateError> {
    let path = export_dir.join("index.json");
    let raw: Value = read_json(&path, "export index")?;
    let (format, version) = (
        raw.get("format").and_then(Value::as_str).unwrap_or(""),
        raw.get("version").and_then(Value::as_u64).unwrap_or(0),
    );
    if format != EXPORT_FORMAT || version != u64::from(GATE_VERSION) {
        return Err(GateError::Format {
            path,
            message: format!(
                "format {format:?} version {version}: this build reads {EXPORT_FORMAT:?} version {GATE_VERSION} (export again with this build)"
            ),
        });
    }
    let index: ExportIndex = serde_json::from_value(raw).map_err(|e| GateError::Format {
        path: path.clone(),
        message: format!("not a valid export index: {e}"),
    })?;
    let recomputed = fingerprint(&index);
    if recomputed != index.suite_fingerprint {
        return Err(GateError::StaleExport {
            export: export_dir.to_path_buf(),
            what: format!(
                "index.json was changed after the export: its content hashes to {recomputed}, not the {} it records",
                index.suite_fingerprint
            ),
        });
    }
    Ok(index)
}

fn read_float<T: Real>(path: &Path, shape: &[usize]) -> Result<ArrayD<T>, String> {
    let a = read_output::<T>(path, shape)?;
    if let Some((i, v)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(format!("non-finite value {v} at index {:?}", i.slice()));
    }
    Ok(a)
}

/// Read a step of an export back as a canonical [`Step`] (weights
/// converted back from the layout with [`layout::import_layer`]): what a
/// Rust implementation needs to run it.
///
/// # Errors
/// A [`GateError`] naming the file that is missing or malformed.
pub fn load_step<T: Real>(
    export_dir: &Path,
    step_dir: &str,
) -> Result<(StepFile, Step<T>), GateError> {
    let dir = inside(export_dir, step_dir).ok_or_else(|| GateError::Format {
        path: export_dir.to_path_buf(),
        message: format!("step folder {step_dir:?} is not a plain relative path"),
    })?;
    let path = dir.join("step.json");
    let file: StepFile = read_json(&path, "step file")?;
    let layout: Layout = file.layout.parse().map_err(|m| GateError::Format {
        path: path.clone(),
        message: m,
    })?;
    let bad = |f: &str, message: String| GateError::Format {
        path: dir.join(f),
        message,
    };
    let array = |r: &FileRef| -> Result<ArrayD<T>, GateError> {
        read_float::<T>(&dir.join(&r.file), &r.shape).map_err(|m| bad(&r.file, m))
    };
    let x_ref = file
        .inputs
        .get("x")
        .ok_or_else(|| bad("step.json", "no input x".into()))?;
    let x = layout::from_layout_order(layout, &array(x_ref)?)
        .map_err(|e| bad(&x_ref.file, e.to_string()))?;
    let mask = match file.inputs.get("mask") {
        None => None,
        Some(r) => {
            let limit = npy_budget(&r.shape, 1)
                .ok_or_else(|| bad(&r.file, format!("shape {:?} is too large", r.shape)))?;
            let (t, file_dtype) = npy::read_with_dtype(&dir.join(&r.file), limit)
                .map_err(|e| bad(&r.file, e.to_string()))?;
            let Tensor::Bool(m) = t else {
                return Err(bad(
                    &r.file,
                    format!("dtype {file_dtype} where bool is required"),
                ));
            };
            let m = m
                .into_dimensionality::<Ix2>()
                .map_err(|e| bad(&r.file, e.to_string()))?;
            Some(if file.time_major {
                m.t().as_standard_layout().into_owned()
            } else {
                m
            })
        }
    };
    let mut layers = Vec::new();
    let mut input = file.input_size;
    for (k, l) in file.layers.iter().enumerate() {
        let mut arrays = layout::Arrays::new();
        for (name, r) in &l.weights {
            arrays.insert(name.clone(), array(r)?);
        }
        let layer = layout::import_layer::<T>(layout, &l.options, &arrays, k)
            .map_err(|e| bad("step.json", format!("layer {k}: {e}")))?;
        if layer.input_size() != input {
            return Err(bad(
                "step.json",
                format!(
                    "layer {k} reads {} features, the layer below gives {input}",
                    layer.input_size()
                ),
            ));
        }
        input = layer.output_size();
        layers.push(layer);
    }
    let initial_state = if file.inputs.contains_key("initial_h/0") {
        let mut states = Vec::new();
        for l in 0..layers.len() {
            let get = |name: String| -> Result<Array2<T>, GateError> {
                let r = file
                    .inputs
                    .get(&name)
                    .ok_or_else(|| bad("step.json", format!("no input {name}")))?;
                array(r)?
                    .into_dimensionality::<Ix2>()
                    .map_err(|e| bad(&r.file, e.to_string()))
            };
            states.push(State {
                h: get(format!("initial_h/{l}"))?,
                c: get(format!("initial_c/{l}"))?,
            });
        }
        Some(states)
    } else {
        None
    };
    let step = Step {
        name: file.step.clone(),
        layers,
        inputs: x,
        initial_state,
        mask,
        masked_output: match file.masked_output.as_deref() {
            Some("repeat_previous") => MaskedOutput::RepeatPrevious,
            _ => MaskedOutput::Zero,
        },
        reverse: file.direction == "reverse",
        bidirectional: None,
        depends_on_earlier_steps: false,
    };
    Ok((file, step))
}

/// Write a step's results as the contract wants them, into
/// `outputs_dir/<case>/<step>/`: `y`, `h_n.<l>`, `c_n.<l>`, and the
/// per-step traces when `traces` is set.
///
/// # Errors
/// [`GateError::Io`] when a file cannot be written.
pub fn write_outputs<T: Real>(
    outputs_dir: &Path,
    file: &StepFile,
    run: &RunOutput<T>,
    traces: bool,
) -> Result<(), GateError> {
    let rel = format!("{}/{}", file.case, file.step);
    let dir = inside(outputs_dir, &rel).ok_or_else(|| GateError::Format {
        path: outputs_dir.to_path_buf(),
        message: format!("step folder {rel:?} is not a plain relative path"),
    })?;
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let order = |a: ArrayD<T>| -> ArrayD<T> {
        if file.time_major {
            layout::swap_batch_time(&a)
        } else {
            a
        }
    };
    write_output(
        &dir,
        "y.npy",
        &tensor_of(&order(run.outputs.clone().into_dyn())),
    )?;
    for (l, s) in run.final_state.iter().enumerate() {
        write_output(
            &dir,
            &format!("h_n.{l}.npy"),
            &tensor_of(&s.h.clone().into_dyn()),
        )?;
        write_output(
            &dir,
            &format!("c_n.{l}.npy"),
            &tensor_of(&s.c.clone().into_dyn()),
        )?;
    }
    if traces {
        for (l, t) in run.trace.iter().enumerate() {
            write_output(
                &dir,
                &format!("trace.{l}.h.npy"),
                &tensor_of(&order(t.h.clone().into_dyn())),
            )?;
            write_output(
                &dir,
                &format!("trace.{l}.c.npy"),
                &tensor_of(&order(t.c.clone().into_dyn())),
            )?;
        }
    }
    Ok(())
}

fn write_output(dir: &Path, file: &str, t: &Tensor) -> Result<(), GateError> {
    let path = dir.join(file);
    let bytes = npy::to_bytes(t).map_err(|e| GateError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    npy::write_atomic_unsynced(&path, &bytes).map_err(io_err(&path))
}

/// Write `outputs_dir/outputs.json` for the export in `export_dir`.
///
/// # Errors
/// [`GateError::Io`] when it cannot be written.
pub fn write_outputs_info(
    outputs_dir: &Path,
    export_dir: &Path,
    index: &ExportIndex,
    implementation: &str,
) -> Result<(), GateError> {
    fs::create_dir_all(outputs_dir).map_err(io_err(outputs_dir))?;
    write_json(
        &outputs_dir.join("outputs.json"),
        &OutputsInfo {
            format: OUTPUTS_FORMAT.into(),
            version: OUTPUTS_VERSION,
            suite_fingerprint: index.suite_fingerprint.clone(),
            implementation: implementation.into(),
            export: Some(export_dir.display().to_string()),
        },
    )
}

/// Read `outputs_dir/outputs.json`.
///
/// # Errors
/// [`GateError::Io`] or [`GateError::Format`] naming the file.
pub fn read_outputs_info(outputs_dir: &Path) -> Result<OutputsInfo, GateError> {
    let path = outputs_dir.join("outputs.json");
    let info: OutputsInfo = read_json(&path, "outputs description (outputs.json)")?;
    if info.format != OUTPUTS_FORMAT || info.version != OUTPUTS_VERSION {
        return Err(GateError::Format {
            path,
            message: format!(
                "format {:?} version {}: expected {OUTPUTS_FORMAT:?} version {OUTPUTS_VERSION}",
                info.format, info.version
            ),
        });
    }
    Ok(info)
}

// ---------------------------------------------------------------------------
// Check.

/// What went wrong reading one step's outputs.
enum ReadProblem {
    /// A missing or malformed file: bad input (exit 2).
    BadFile(PathBuf, String),
    /// The implementation wrote `error.txt`: it could not run the step.
    Failed(String),
}

/// What the implementation wrote for one step: its outputs, final states
/// and, when it wrote them, the per-step states of every layer.
#[derive(Clone)]
struct Written<T> {
    outputs: Array3<T>,
    final_state: Vec<State<T>>,
    /// Per layer, whether the final `h` and `c` were written (an optional
    /// one left out is filled like per-step states).
    final_written: Vec<StatesRead>,
    trace: Option<Vec<StepTrace<T>>>,
}

/// The most bytes an `.npy` of `shape` with `item`-byte elements may
/// take: the data and a generous header. `None` when it overflows.
fn npy_budget(shape: &[usize], item: usize) -> Option<u64> {
    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))?;
    elements
        .checked_mul(item as u64)?
        .checked_add(npy::MAX_HEADER_BYTES)
}

/// Read an implementation's output: the file, its dtype and shape as the
/// export says. Any value is accepted, NaN and infinities included: they
/// are results, and the comparison fails them.
fn read_output<T: Real>(path: &Path, shape: &[usize]) -> Result<ArrayD<T>, String> {
    let limit = npy_budget(shape, std::mem::size_of::<T>())
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    // The implementation's own file: a symbolic link is refused, never
    // followed (it could point at a reference array).
    let bytes = fsio::read_limited_nofollow(path, limit, "an output of the shape the step needs")
        .map_err(|e| e.to_string())?;
    let (t, file_dtype) = npy::parse_with_dtype(&bytes).map_err(|e| e.to_string())?;
    if file_dtype != T::NAME {
        return Err(format!("dtype {file_dtype} where {} is required", T::NAME));
    }
    if t.shape() != shape {
        return Err(format!(
            "shape {:?} where {:?} is required",
            t.shape(),
            shape
        ));
    }
    t.to_float::<T>()
        .ok_or_else(|| format!("dtype {file_dtype} where {} is required", T::NAME))
}

/// Returns, for each step a dialect asks for, what the implementation
/// wrote. Per-step states it did not write (they are optional) are filled
/// with `fill`; [`check`] runs a case with two different fillings to find
/// the expected outputs that depend on them, and leaves those out.
struct OutputReader<'a, T> {
    layout: Layout,
    outputs_dir: &'a Path,
    steps: BTreeMap<String, String>,
    problem: Option<ReadProblem>,
    /// Steps read so far, by name.
    written: BTreeMap<String, Written<T>>,
    /// The value of per-step states that were not written.
    fill: T,
    /// Whether some step's per-step states were filled.
    filled: bool,
    /// Per step and layer, the final states a recorded output reads: the
    /// others are optional.
    required: BTreeMap<String, Vec<StatesRead>>,
}

impl<T: Real> Runner<T> for OutputReader<'_, T> {
    fn run_step(&mut self, step: &Step<T>) -> Result<RunOutput<T>, DialectError> {
        if !self.written.contains_key(&step.name) {
            match self.read(step) {
                Ok(w) => {
                    self.written.insert(step.name.clone(), w);
                }
                Err(p) => {
                    let message = match &p {
                        ReadProblem::BadFile(path, m) => format!("{}: {m}", path.display()),
                        ReadProblem::Failed(m) => format!("the implementation reported: {m}"),
                    };
                    self.problem.get_or_insert(p);
                    return Err(DialectError::Invalid(message));
                }
            }
        }
        let w = &self.written[&step.name];
        let trace = match &w.trace {
            Some(t) => t.clone(),
            None => {
                self.filled = true;
                let (batch, time, _) = step.inputs.dim();
                let layers = step.layers.len();
                step.layers
                    .iter()
                    .enumerate()
                    .map(|(l, layer)| StepTrace {
                        // Without a mask the last layer's h at every step is
                        // its output y.
                        h: if l + 1 == layers && step.mask.is_none() {
                            w.outputs.clone()
                        } else {
                            Array3::from_elem((batch, time, layer.output_size()), self.fill)
                        },
                        c: Array3::from_elem((batch, time, layer.units()), self.fill),
                    })
                    .collect()
            }
        };
        // Final states left out (optional ones) take the current filling.
        let final_state = w
            .final_state
            .iter()
            .zip(&w.final_written)
            .map(|(st, written)| State {
                h: if written.h {
                    st.h.clone()
                } else {
                    st.h.mapv(|_| self.fill)
                },
                c: if written.c {
                    st.c.clone()
                } else {
                    st.c.mapv(|_| self.fill)
                },
            })
            .collect();
        Ok(RunOutput {
            outputs: w.outputs.clone(),
            final_state,
            trace,
        })
    }
}

impl<T: Real> OutputReader<'_, T> {
    fn read(&self, step: &Step<T>) -> Result<Written<T>, ReadProblem> {
        let rel = self.steps.get(&step.name).ok_or_else(|| {
            ReadProblem::BadFile(
                self.outputs_dir.to_path_buf(),
                format!("step {:?} is not in the export: export again", step.name),
            )
        })?;
        let dir = inside(self.outputs_dir, rel).ok_or_else(|| {
            ReadProblem::BadFile(
                self.outputs_dir.to_path_buf(),
                format!("bad step folder {rel:?}"),
            )
        })?;
        // Files outside the contract mean the implementation and the
        // export disagree on names: an error, never silently ignored.
        let layers = step.layers.len();
        let known = |name: &str| {
            name == "y.npy"
                || (0..layers).any(|l| {
                    [
                        format!("h_n.{l}.npy"),
                        format!("c_n.{l}.npy"),
                        format!("trace.{l}.h.npy"),
                        format!("trace.{l}.c.npy"),
                    ]
                    .iter()
                    .any(|k| k == name)
                })
        };
        let mut outputs_written = Vec::new();
        let mut error_txt = false;
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name == "error.txt" {
                    error_txt = true;
                } else if known(&name) {
                    outputs_written.push(name);
                } else {
                    return Err(ReadProblem::BadFile(
                        entry.path(),
                        "unexpected file: not an output of this step (see docs/gate.md)".into(),
                    ));
                }
            }
        }
        if error_txt {
            let error_file = dir.join("error.txt");
            if let Some(other) = outputs_written.first() {
                return Err(ReadProblem::BadFile(
                    error_file,
                    format!(
                        "written beside the output {other}: a step has either outputs or error.txt (remove the stale one)"
                    ),
                ));
            }
            let (text, longer) = fsio::read_message(&error_file, fsio::MAX_MESSAGE_BYTES)
                .map_err(|e| ReadProblem::BadFile(error_file.clone(), e.to_string()))?;
            let text = if longer {
                format!(
                    "{text} [...; the first {} bytes shown]",
                    fsio::MAX_MESSAGE_BYTES
                )
            } else if text.is_empty() {
                "(error.txt is empty: the implementation gave no reason)".to_string()
            } else {
                text
            };
            return Err(ReadProblem::Failed(fsio::printable(&text)));
        }
        let (batch, time, _) = step.inputs.dim();
        let seq = |features: usize| -> Vec<usize> {
            if self.layout.time_major() {
                vec![time, batch, features]
            } else {
                vec![batch, time, features]
            }
        };
        let read = |file: &str, shape: &[usize]| -> Result<ArrayD<T>, ReadProblem> {
            let path = dir.join(file);
            if fs::symlink_metadata(&path).is_err() {
                return Err(ReadProblem::BadFile(
                    path,
                    "missing (the implementation must write it, or error.txt)".into(),
                ));
            }
            read_output::<T>(&path, shape).map_err(|m| ReadProblem::BadFile(path, m))
        };
        let seq3 = |a: ArrayD<T>| -> Array3<T> {
            layout::from_layout_order(self.layout, &a).expect("shape checked")
        };
        let two = |a: ArrayD<T>| -> Array2<T> { a.into_dimensionality().expect("shape checked") };
        let last = step.layers.last().map_or(0, |l| l.output_size());
        let outputs = seq3(read("y.npy", &seq(last))?);
        let any_trace = outputs_written.iter().any(|n| n.starts_with("trace."));
        let mut final_state = Vec::new();
        let mut trace = Vec::new();
        let required = self.required.get(&step.name);
        let mut final_written = Vec::new();
        for (l, layer) in step.layers.iter().enumerate() {
            let needed = required
                .and_then(|r| r.get(l))
                .copied()
                .unwrap_or(StatesRead::BOTH);
            // An optional final state left out is filled like per-step
            // states (and never judged); a written one is read.
            let state = |name: String, needed: bool, shape: [usize; 2]| {
                if needed || outputs_written.contains(&name) {
                    read(&name, &shape).map(|a| (two(a), true))
                } else {
                    Ok((Array2::from_elem(shape, self.fill), false))
                }
            };
            let (h, h_written) = state(
                format!("h_n.{l}.npy"),
                needed.h,
                [batch, layer.output_size()],
            )?;
            let (c, c_written) = state(format!("c_n.{l}.npy"), needed.c, [batch, layer.units()])?;
            final_written.push(StatesRead {
                h: h_written,
                c: c_written,
            });
            final_state.push(State { h, c });
            if any_trace {
                trace.push(StepTrace {
                    h: seq3(read(
                        &format!("trace.{l}.h.npy"),
                        &seq(layer.output_size()),
                    )?),
                    c: seq3(read(&format!("trace.{l}.c.npy"), &seq(layer.units()))?),
                });
            }
        }
        Ok(Written {
            final_written,
            outputs,
            final_state,
            trace: any_trace.then_some(trace),
        })
    }
}

/// What to check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions<'a> {
    /// The export folder.
    pub export_dir: &'a Path,
    /// The implementation's outputs folder.
    pub outputs_dir: &'a Path,
    /// The reference folder the export was made from.
    pub reference: &'a Path,
    /// A tolerance level for every case (default: each case's own).
    pub tolerance: Option<&'a Tolerance>,
    /// Cases expected to fail.
    pub expectations: Option<&'a Expectations>,
}

/// The first difference between what `index.json` says of a case and what
/// exporting the case from the reference gives now.
fn index_difference(recorded: &IndexCase, planned: &IndexCase) -> Option<String> {
    if recorded.reference_files != planned.reference_files {
        let changed = planned
            .reference_files
            .iter()
            .find(|(f, h)| recorded.reference_files.get(*f) != Some(*h))
            .map(|(f, _)| f.clone())
            .or_else(|| {
                recorded
                    .reference_files
                    .keys()
                    .find(|f| !planned.reference_files.contains_key(*f))
                    .cloned()
            })
            .unwrap_or_default();
        return Some(format!(
            "the reference file {}/{changed} changed since the export",
            recorded.id
        ));
    }
    let field = if recorded.exported != planned.exported {
        "exported"
    } else if recorded.reason != planned.reason {
        "reason"
    } else if recorded.steps != planned.steps {
        "steps"
    } else if recorded.features != planned.features {
        "features"
    } else if recorded.api != planned.api {
        "api"
    } else if recorded.files != planned.files {
        let f = planned
            .files
            .iter()
            .find(|(f, h)| recorded.files.get(*f) != Some(*h))
            .map(|(f, _)| f.clone())
            .or_else(|| {
                recorded
                    .files
                    .keys()
                    .find(|f| !planned.files.contains_key(*f))
                    .cloned()
            })
            .unwrap_or_default();
        return Some(format!(
            "index.json does not match what this reference exports to: file {f} of case {} differs (changed by hand, or exported by another build)",
            recorded.id
        ));
    } else {
        return None;
    };
    Some(format!(
        "index.json does not match what this reference exports to: case {} has another {field:?} (changed by hand, or exported by another build)",
        recorded.id
    ))
}

/// Verify that the export in `export_dir` is exactly what exporting the
/// reference cases gives now: the same index (flags, steps, reference
/// hashes, file hashes) and, on disk, every file with the bytes its hash
/// says. Returns the loaded cases by id.
/// A stale export checked against another reference folder than the one
/// it was made from: say that, not "export again".
fn other_reference(e: GateError, index: &ExportIndex, options: &CheckOptions) -> GateError {
    let GateError::StaleExport { export, what } = e else {
        return e;
    };
    let now = fs::canonicalize(options.reference)
        .unwrap_or_else(|_| options.reference.to_path_buf())
        .display()
        .to_string();
    match &index.reference {
        Some(made_from) if *made_from != now => GateError::StaleExport {
            what: format!(
                "{what}; but the export was made from the reference folder {} and this check reads {}: check with --reference {}",
                fsio::printable(made_from),
                now,
                fsio::printable(made_from)
            ),
            export,
        },
        _ => GateError::StaleExport { export, what },
    }
}

fn verify_export(
    options: &CheckOptions,
    index: &ExportIndex,
    layout: Layout,
) -> Result<(BTreeMap<String, Case>, Vec<ReportError>), GateError> {
    let known: BTreeMap<String, PathBuf> = discover(options.reference)?
        .into_iter()
        .map(|r| (r.id, r.dir))
        .collect();
    let stale = |what: String| GateError::StaleExport {
        export: options.export_dir.to_path_buf(),
        what,
    };
    if let Some(entry) = index.cases.iter().find(|e| !known.contains_key(&e.id)) {
        return Err(stale(format!(
            "case {} is not in the reference folder {} (is it the folder the export was made from? give --reference)",
            entry.id,
            options.reference.display()
        )));
    }
    // The cases the export's own selection picks from this reference now:
    // exactly the ones its index lists, or it lost (or gained) a case.
    let selected = index.selected_by.select(options.reference)?;
    let mut now: Vec<&str> = selected
        .cases
        .iter()
        .map(|c| c.id.as_str())
        .chain(selected.errors.iter().map(|e| e.case.as_str()))
        .collect();
    now.sort_unstable();
    // The index lists each selected case once, in the order the export
    // writes them (sorted by id).
    let in_order: Vec<&str> = index.cases.iter().map(|c| c.id.as_str()).collect();
    if let Some(w) = in_order.windows(2).find(|w| w[0] >= w[1]) {
        return Err(stale(format!(
            "index.json lists case {} {} case {}: each case once, sorted by id, as the export writes them",
            w[1],
            if w[0] == w[1] { "twice, after" } else { "out of order, after" },
            w[0]
        )));
    }
    if let SelectedBy::Cases(ids) = &index.selected_by {
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(stale(
                "index.json's selected_by lists case ids out of order or twice (an export lists each once, sorted)".into(),
            ));
        }
    }
    let mut listed = in_order;
    listed.sort_unstable();
    if let Some(id) = now.iter().find(|id| listed.binary_search(id).is_err()) {
        return Err(stale(format!(
            "the export's selection ({}) picks case {id} from {}, but index.json does not list it (dropped from index.json, or added to the reference since)",
            index.selected_by,
            options.reference.display()
        )));
    }
    if let Some(id) = listed.iter().find(|id| now.binary_search(id).is_err()) {
        return Err(stale(format!(
            "index.json lists case {id}, which the export's selection ({}) does not pick from {}",
            index.selected_by,
            options.reference.display()
        )));
    }
    let errors: Vec<ReportError> = selected.errors.iter().map(ReportError::from).collect();
    let cases: BTreeMap<String, Case> = selected
        .cases
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    if !errors.is_empty() {
        // The export cannot be verified without every case: check none.
        return Ok((BTreeMap::new(), errors));
    }
    let loaded: Vec<Case> = index.cases.iter().map(|e| cases[&e.id].clone()).collect();
    let forget_bias: ForgetBias = index.forget_bias.parse().map_err(|m| GateError::Format {
        path: options.export_dir.join("index.json"),
        message: m,
    })?;
    let planned = plan(
        &loaded,
        &ExportOptions {
            selected_by: Some(&index.selected_by),
            layout,
            dtype: index.dtype,
            forget_bias: Some(forget_bias),
            interrupt: None,
        },
    )?;
    for (recorded, now) in index.cases.iter().zip(&planned.cases) {
        if let Some(d) = index_difference(recorded, now) {
            return Err(stale(d));
        }
    }
    if planned.suite_fingerprint != index.suite_fingerprint {
        return Err(stale(
            "index.json does not match what this reference exports to (changed by hand, or exported by another build)".into(),
        ));
    }
    for entry in &index.cases {
        for (rel, hash) in &entry.files {
            let path = inside(options.export_dir, rel).ok_or_else(|| {
                stale(format!(
                    "index.json lists the file {rel:?}, which leaves the export folder"
                ))
            })?;
            let bytes = fsio::read_limited(&path, npy::MAX_FILE_BYTES, "an export file")
                .map_err(|e| stale(format!("{}: {e}", path.display())))?;
            if &fsio::sha256(&bytes) != hash {
                return Err(stale(format!(
                    "{} changed since the export",
                    path.display()
                )));
            }
        }
    }
    Ok((cases, errors))
}

/// Check one case's outputs in `T`: read them, find the expected outputs
/// that depend on per-step states the implementation did not write (by
/// running the case with two different fillings of them), and judge the
/// rest.
fn check_case<T: Real>(
    case: &Case,
    entry: &IndexCase,
    layout: Layout,
    options: &CheckOptions,
    dtype: Dtype,
) -> (CaseRun, Option<ReadProblem>) {
    let mut reader = OutputReader::<T> {
        layout,
        outputs_dir: options.outputs_dir,
        steps: entry
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.dir.clone()))
            .collect(),
        problem: None,
        written: BTreeMap::new(),
        fill: T::from_f64_lossy(0.375),
        filled: false,
        required: final_states_read(case),
    };
    let mut not_compared = Vec::new();
    let first: Option<Outputs<T>> = case
        .model
        .run_with::<T>(&case.variables, &case.inputs, &mut reader)
        .ok();
    if let (Some(a), true) = (first, reader.filled) {
        reader.fill = T::from_f64_lossy(-0.8125);
        if let Ok(b) = case
            .model
            .run_with::<T>(&case.variables, &case.inputs, &mut reader)
        {
            for name in case.expected.keys() {
                let same = match (a.get(name), b.get(name)) {
                    (Some(x), Some(y)) => {
                        x.shape() == y.shape()
                            && x.iter().zip(y.iter()).all(|(p, q)| {
                                p.widen().to_bits() == q.widen().to_bits()
                                    || (p.is_nan() && q.is_nan())
                            })
                    }
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    not_compared.push(NotCompared {
                        output: name.clone(),
                        reason: NEEDS_TRACES.into(),
                    });
                }
            }
        }
    }
    // The run that is judged and diagnosed: unwritten states are NaN, so
    // the diagnosis never presents them as the implementation's.
    reader.fill = T::nan();
    let diagnose = DiagnoseOptions {
        external: true,
        layout: Some(layout),
        nan_means_not_written: true,
    };
    let mut run = check_runner_except::<T>(
        case,
        dtype,
        options.tolerance,
        &mut reader,
        diagnose,
        &not_compared,
    );
    if reader.problem.is_none() && run.error.is_none() {
        let level = options.tolerance.unwrap_or(&case.tolerance);
        match unread_outputs(case, layout, &reader.written, &not_compared, level) {
            Ok(extra) => run.comparisons.extend(extra),
            Err(e) => run.error = Some(e),
        }
    }
    (run, reader.problem)
}

/// The most (batch row, time step) slices of one array probed one by one
/// for whether a recorded output reads them; a larger array is probed one
/// time step at a time (each probe runs the case once).
const PROBE_SLICES: usize = 1024;

/// One array an implementation wrote for a step.
#[derive(Clone, Copy, Debug)]
enum Field {
    Y,
    FinalH(usize),
    FinalC(usize),
    TraceH(usize),
    TraceC(usize),
}

impl Field {
    /// Every array of `w`.
    fn all<T>(w: &Written<T>) -> Vec<Field> {
        let mut fields = vec![Field::Y];
        for (l, written) in w.final_written.iter().enumerate() {
            if written.h {
                fields.push(Field::FinalH(l));
            }
            if written.c {
                fields.push(Field::FinalC(l));
            }
        }
        for l in 0..w.trace.as_ref().map_or(0, Vec::len) {
            fields.extend([Field::TraceH(l), Field::TraceC(l)]);
        }
        fields
    }

    /// The output file's name (`docs/gate.md`).
    fn file(self) -> String {
        match self {
            Field::Y => "y.npy".into(),
            Field::FinalH(l) => format!("h_n.{l}.npy"),
            Field::FinalC(l) => format!("c_n.{l}.npy"),
            Field::TraceH(l) => format!("trace.{l}.h.npy"),
            Field::TraceC(l) => format!("trace.{l}.c.npy"),
        }
    }

    /// The array in `r`, in the canonical order ([batch, time, ..]); `None`
    /// when `r` has no such array.
    fn get<T: Real>(self, r: &RunOutput<T>) -> Option<ArrayD<T>> {
        Some(match self {
            Field::Y => r.outputs.clone().into_dyn(),
            Field::FinalH(l) => r.final_state.get(l)?.h.clone().into_dyn(),
            Field::FinalC(l) => r.final_state.get(l)?.c.clone().into_dyn(),
            Field::TraceH(l) => r.trace.get(l)?.h.clone().into_dyn(),
            Field::TraceC(l) => r.trace.get(l)?.c.clone().into_dyn(),
        })
    }

    /// This array of `w`, to change.
    fn view_mut<T: Real>(self, w: &mut Written<T>) -> ndarray::ArrayViewMutD<'_, T> {
        match self {
            Field::Y => w.outputs.view_mut().into_dyn(),
            Field::FinalH(l) => w.final_state[l].h.view_mut().into_dyn(),
            Field::FinalC(l) => w.final_state[l].c.view_mut().into_dyn(),
            Field::TraceH(l) => w.trace.as_mut().expect("a trace field")[l]
                .h
                .view_mut()
                .into_dyn(),
            Field::TraceC(l) => w.trace.as_mut().expect("a trace field")[l]
                .c
                .view_mut()
                .into_dyn(),
        }
    }
}

/// The recorded outputs of `case` computed from the arrays `written`
/// (missing per-step states filled with one fixed value).
fn outputs_from<T: Real>(
    case: &Case,
    layout: Layout,
    written: &BTreeMap<String, Written<T>>,
) -> Option<Outputs<T>> {
    let mut reader = OutputReader::<T> {
        layout,
        outputs_dir: Path::new(""),
        steps: BTreeMap::new(),
        problem: None,
        written: written.clone(),
        fill: T::from_f64_lossy(0.375),
        filled: false,
        // Every step is already read: nothing more is read from files.
        required: BTreeMap::new(),
    };
    case.model
        .run_with::<T>(&case.variables, &case.inputs, &mut reader)
        .ok()
}

/// The Rust LSTM's result of every step of `case`, computed in `U`.
fn rust_steps<U: Real>(case: &Case) -> Result<BTreeMap<String, RunOutput<U>>, String> {
    let mut rust = RustLstm;
    let mut recording = Recording::new(&mut rust);
    case.model
        .run_with::<U>(&case.variables, &case.inputs, &mut recording)
        .map_err(|e| {
            format!("the Rust LSTM cannot run the case to check unrecorded outputs: {e}")
        })?;
    Ok(recording
        .steps
        .into_iter()
        .map(|(step, out)| (step.name, out))
        .collect())
}

/// Every array the implementation wrote that no recorded output reads
/// (the final states of a Keras layer without `return_state`, `y` of a
/// block op whose per-step states were written, ...), compared with the
/// Rust LSTM's result for the same step, which the contract defines
/// completely (`docs/gate.md`, "The step, precisely") and which passes the
/// case's recorded outputs. A slice of an array (a batch row at one time
/// step, or a row of a final state) is unread when adding 1 to it changes
/// no compared output. So every value written is judged: a wrong or faked
/// value fails the case even where TensorFlow recorded nothing to compare
/// it with. (A value whose only effect is multiplied by an exact zero, in
/// a Keras `mul` merge, stays unjudged unless its whole slice is.)
fn unread_outputs<T: Real>(
    case: &Case,
    layout: Layout,
    written: &BTreeMap<String, Written<T>>,
    not_compared: &[NotCompared],
    tolerance: &Tolerance,
) -> Result<Vec<crate::conformance::compare::Comparison>, String> {
    let compared: Vec<&String> = case
        .expected
        .keys()
        .filter(|name| !not_compared.iter().any(|n| &n.output == *name))
        .collect();
    let same = |a: &Outputs<T>, b: &Outputs<T>| {
        compared
            .iter()
            .all(|name| match (a.get(*name), b.get(*name)) {
                (Some(x), Some(y)) => {
                    x.shape() == y.shape()
                        && x.iter().zip(y.iter()).all(|(p, q)| {
                            p.widen().to_bits() == q.widen().to_bits() || (p.is_nan() && q.is_nan())
                        })
                }
                (None, None) => true,
                _ => false,
            })
    };
    let Some(baseline) = outputs_from(case, layout, written) else {
        return Ok(Vec::new());
    };
    // Which slices of each array (a batch row at one time step, or a row
    // of a final state) reach a compared output: one changed by +1 that
    // changes none of them is read by none (the earlier steps of a layer
    // with `return_sequences=False`, a step whose mask hides it, a final
    // state TF did not record).
    let mut unread: Vec<(&String, Field, ArrayD<bool>)> = Vec::new();
    for (step, w) in written {
        for field in Field::all(w) {
            let mut probe_w = w.clone();
            let shape = field.view_mut(&mut probe_w).shape().to_vec();
            // Each probe runs the case once, so the probes are bounded: a
            // batch row at one time step while there are at most
            // PROBE_SLICES of them, else each time step for the whole batch.
            let slices: Vec<(Option<usize>, Option<usize>)> = match shape.as_slice() {
                [b, t, _] if b * t <= PROBE_SLICES => (0..*b)
                    .flat_map(|i| (0..*t).map(move |j| (Some(i), Some(j))))
                    .collect(),
                [_, t, _] => (0..*t).map(|j| (None, Some(j))).collect(),
                [b, _] => (0..*b).map(|i| (Some(i), None)).collect(),
                _ => Vec::new(),
            };
            let mut mask = ArrayD::from_elem(ndarray::IxDyn(&shape), false);
            for (i, j) in slices {
                let mut probe = written.clone();
                let changed_w = probe.get_mut(step).expect("the step");
                let mut a = field.view_mut(changed_w);
                let bump = |v: &mut T| *v = *v + T::from_f64_lossy(1.0);
                match (i, j) {
                    (Some(i), Some(j)) => a.slice_mut(ndarray::s![i, j, ..]).map_inplace(bump),
                    (None, Some(j)) => a.slice_mut(ndarray::s![.., j, ..]).map_inplace(bump),
                    (Some(i), None) => a.slice_mut(ndarray::s![i, ..]).map_inplace(bump),
                    (None, None) => unreachable!("no such slice"),
                }
                let changed =
                    outputs_from(case, layout, &probe).is_none_or(|o| !same(&baseline, &o));
                if !changed {
                    match (i, j) {
                        (Some(i), Some(j)) => mask.slice_mut(ndarray::s![i, j, ..]).fill(true),
                        (None, Some(j)) => mask.slice_mut(ndarray::s![.., j, ..]).fill(true),
                        (Some(i), None) => mask.slice_mut(ndarray::s![i, ..]).fill(true),
                        (None, None) => unreachable!("no such slice"),
                    }
                }
            }
            if mask.iter().any(|&m| m) {
                unread.push((step, field, mask));
            }
        }
    }
    if unread.is_empty() {
        return Ok(Vec::new());
    }
    let rust32 = rust_steps::<f32>(case)?;
    let rust64 = rust_steps::<f64>(case)?;
    let mut comparisons = Vec::new();
    for (step, field, mask) in unread {
        let w = &written[step];
        let as_run = RunOutput {
            outputs: w.outputs.clone(),
            final_state: w.final_state.clone(),
            trace: w.trace.clone().unwrap_or_default(),
        };
        let written_array = field.get(&as_run).expect("a field of the written arrays");
        let (Some(e32), Some(e64)) = (
            rust32.get(step).and_then(|r| field.get(r)),
            rust64.get(step).and_then(|r| field.get(r)),
        ) else {
            return Err(format!(
                "step {step}: the Rust LSTM has no {} to check the written one against",
                field.file()
            ));
        };
        // Elements a recorded output reads are judged there: here they
        // take the Rust LSTM's own value in this dtype, so only the unread
        // ones can fail.
        let own: ArrayD<T> = if T::NAME == "float64" {
            e64.mapv(T::from_f64_lossy)
        } else {
            e32.mapv(|v| T::from_f64_lossy(f64::from(v)))
        };
        let mut actual = own;
        ndarray::Zip::from(&mut actual)
            .and(&written_array)
            .and(&mask)
            .for_each(|a, &w, &m| {
                if m {
                    *a = w;
                }
            });
        let unread_count = mask.iter().filter(|&&m| m).count();
        let expected = crate::conformance::case::ExpectedOutput {
            float32: e32,
            float64: Some(e64),
        };
        let name = if unread_count == mask.len() {
            format!(
                "{step}/{} (unrecorded: against the Rust LSTM)",
                field.file()
            )
        } else {
            format!(
                "{step}/{} ({unread_count} of {} elements unrecorded: against the Rust LSTM)",
                field.file(),
                mask.len()
            )
        };
        let mut c = crate::conformance::compare::compare::<T>(&name, &actual, &expected, tolerance);
        c.count = unread_count;
        comparisons.push(c);
    }
    Ok(comparisons)
}

/// Check the outputs an implementation wrote for an export: the export
/// verified against the reference first, then every exported case through
/// its dialect and [`check_runner_except`], diagnosed when it fails, then
/// the expected-failure list applied.
///
/// # Errors
/// A [`GateError`] when the export or the outputs folder cannot be read as
/// a whole, they belong to another export, or the export no longer matches
/// the reference or its own files (naming what changed). A bad output file
/// of one case is not an error here: it is a [`ReportError`] in the report
/// (exit 2), naming the case and the file.
pub fn check(options: &CheckOptions) -> Result<Report, GateError> {
    let index = read_index(options.export_dir)?;
    let layout: Layout = index.layout.parse().map_err(|m| GateError::Format {
        path: options.export_dir.join("index.json"),
        message: m,
    })?;
    let info = read_outputs_info(options.outputs_dir)?;
    if info.suite_fingerprint != index.suite_fingerprint {
        return Err(GateError::OtherExport {
            outputs: options.outputs_dir.to_path_buf(),
            export: options.export_dir.to_path_buf(),
            expected: index.suite_fingerprint.clone(),
            got: info.suite_fingerprint,
        });
    }
    let (cases, load_errors) =
        verify_export(options, &index, layout).map_err(|e| other_reference(e, &index, options))?;

    let mut report = Report {
        gate: Some(GateInfo {
            layout: index.layout.clone(),
            dtype: index.dtype.to_string(),
            forget_bias: index.forget_bias.clone(),
            suite_fingerprint: index.suite_fingerprint.clone(),
            implementation: fsio::printable(&info.implementation),
            selection: fsio::printable(&index.selected_by.to_string()),
        }),
        errors: load_errors,
        tolerance: options.tolerance.map(ToString::to_string),
        ..Report::default()
    };
    let mut unchecked = Vec::new();
    let mut passes_own_level = std::collections::BTreeSet::new();
    for entry in &index.cases {
        if !entry.exported {
            unchecked.push(entry.id.clone());
            report.skipped.push(Skipped {
                id: entry.id.clone(),
                api: entry.api.clone(),
                reason: entry.reason.clone().unwrap_or_default(),
                features: entry.features.clone(),
            });
            continue;
        }
        let Some(case) = cases.get(&entry.id) else {
            continue; // it did not load: in report.errors
        };
        // A level stated in the expectations judges the case unless
        // `--tolerance` overrides every case.
        let stated = options
            .expectations
            .filter(|_| options.tolerance.is_none())
            .and_then(|l| {
                l.stated_tolerance(&entry.id, Some(layout.name()), &index.dtype.to_string())
            });
        let stated_level = stated.map(StatedTolerance::tolerance);
        let case_options = CheckOptions {
            tolerance: stated_level.as_ref().or(options.tolerance),
            ..*options
        };
        let check = |o: &CheckOptions| match index.dtype {
            Dtype::F32 => check_case::<f32>(case, entry, layout, o, index.dtype),
            Dtype::F64 => check_case::<f64>(case, entry, layout, o, index.dtype),
        };
        let (mut run, problem) = check(&case_options);
        if let Some(t) = stated {
            run.tolerance_reason = Some(t.reason.clone());
            if run.passed() {
                // Whether the stated level is needed at all: the same
                // outputs judged at the case's own level.
                let (own, _) = check(&CheckOptions {
                    tolerance: None,
                    ..*options
                });
                if own.passed() {
                    passes_own_level.insert((run.id.clone(), run.dtype));
                }
            }
        }
        match problem {
            Some(ReadProblem::BadFile(path, message)) => {
                let file = path
                    .strip_prefix(options.outputs_dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                report.errors.push(ReportError {
                    case: entry.id.clone(),
                    file: Some(file.clone()),
                    message: format!(
                        "case {}: {}: {message}",
                        entry.id,
                        options.outputs_dir.join(&file).display()
                    ),
                });
                continue;
            }
            Some(ReadProblem::Failed(m)) => {
                run.error = Some(format!("the implementation could not run it: {m}"));
                run.refused = true;
            }
            None => {}
        }
        run.features = entry.features.clone();
        report.runs.push(run);
    }
    if let Some(list) = options.expectations {
        report.expectation_errors = list.apply(&mut report.runs, Some(layout.name()), &unchecked);
        if options.tolerance.is_none() {
            report.expectation_errors.extend(list.stale_tolerances(
                &report.runs,
                Some(layout.name()),
                &|r| passes_own_level.contains(&(r.id.clone(), r.dtype)),
            ));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_folders_stay_inside() {
        let d = Path::new("/x");
        assert!(inside(d, "tf1/case/main").is_some());
        assert!(inside(d, "../etc").is_none());
        assert!(inside(d, "/etc").is_none());
        assert!(inside(d, "").is_none());
    }
}
