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
//! outputs and [`check_runner`] judges and diagnoses them.
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

use ndarray::{Array2, Array3, ArrayD, Dimension, Ix2};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::case::Case;
use super::check::{check_runner, CaseRun, Dtype, Recording};
use super::diagnose::DiagnoseOptions;
use super::expectations::Expectations;
use super::npy;
use super::report::{GateInfo, Report, ReportError, Skipped};
use super::suite::{discover, SuiteError};
use super::tolerance::Tolerance;
use crate::dialect::layout::{self, ForgetBias, Layout};
use crate::dialect::{DialectError, Runner, RustLstm, Step};
use crate::lstm::{Activation, MaskedOutput, Real, RunOutput, State, StepTrace};
use crate::tensor::Tensor;

/// The version of the export and outputs formats.
pub const GATE_VERSION: u32 = 1;
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
    /// A hash of the exported cases' ids and files: check refuses outputs
    /// made for another suite version.
    pub suite_fingerprint: String,
    /// The layout name.
    pub layout: String,
    /// `float32` or `float64`.
    pub dtype: Dtype,
    /// `kept` or `folded`.
    pub forget_bias: String,
    /// Every selected case, exported or not.
    pub cases: Vec<IndexCase>,
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
    /// As in `index.json`.
    pub suite_fingerprint: String,
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
    /// [`GATE_VERSION`].
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
    #[error("{}: not empty and not an lstm-parity export; refusing to write into it (use --force)", .0.display())]
    NotAnExport(PathBuf),
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
    /// The reference cases changed since the export.
    #[error("{}: exported from suite fingerprint {expected}, but the reference folder {} now gives {got}{detail}: export again", export.display(), reference.display())]
    StaleExport {
        /// The export folder.
        export: PathBuf,
        /// The reference folder.
        reference: PathBuf,
        /// The export's fingerprint.
        expected: String,
        /// The reference's.
        got: String,
        /// Which case is missing, if one is.
        detail: String,
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

fn write_json<S: Serialize>(path: &Path, value: &S) -> Result<(), GateError> {
    let mut text = serde_json::to_string_pretty(value).expect("gate files serialize");
    text.push('\n');
    npy::write_atomic_unsynced(path, text.as_bytes()).map_err(io_err(path))
}

fn read_json<D: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<D, GateError> {
    let text = fs::read_to_string(path).map_err(|e| GateError::Io {
        path: path.to_path_buf(),
        message: format!("cannot read the {what}: {e}"),
    })?;
    serde_json::from_str(&text).map_err(|e| GateError::Format {
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

/// FNV-1a, 64 bit: a stable, dependency-free hash. The fingerprint tells
/// suite versions apart; it is not a security measure.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
    }
}

fn hash_dir(h: &mut Fnv, dir: &Path, rel: &str) -> Result<(), GateError> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let rel = format!("{rel}/{name}");
        if path.is_dir() {
            hash_dir(h, &path, &rel)?;
        } else {
            h.write(rel.as_bytes());
            h.write(&fs::read(&path).map_err(io_err(&path))?);
        }
    }
    Ok(())
}

/// The fingerprint of the cases `ids` under `root`: a hash of each id and
/// every file in its folder (`case.json` and the arrays).
///
/// # Errors
/// [`GateError::Io`] when a case folder cannot be read.
pub fn suite_fingerprint(root: &Path, ids: &[String]) -> Result<String, GateError> {
    let mut ids = ids.to_vec();
    ids.sort();
    let mut h = Fnv::new();
    for id in &ids {
        h.write(id.as_bytes());
        let dir = inside(root, id).ok_or_else(|| GateError::Format {
            path: root.to_path_buf(),
            message: format!("case id {id:?} is not a plain relative path"),
        })?;
        hash_dir(&mut h, &dir, "")?;
    }
    Ok(format!("fnv1a64:{:016x}", h.0))
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
        add(s.name.ends_with("bw"), "bidirectional");
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
pub struct ExportOptions {
    /// The target layout.
    pub layout: Layout,
    /// The dtype of every float array.
    pub dtype: Dtype,
    /// `None`: the layout's default (kept where it has the option).
    pub forget_bias: Option<ForgetBias>,
    /// Write into a non-empty folder that is not an export.
    pub force: bool,
}

fn tensor_of<T: Real>(a: &ArrayD<T>) -> Tensor {
    if T::NAME == "float32" {
        Tensor::F32(a.mapv(|v| v.widen() as f32))
    } else {
        Tensor::F64(a.mapv(Real::widen))
    }
}

/// Make `dir` ready for an export: create it, or clear the cases of an
/// earlier export in it.
fn prepare(dir: &Path, force: bool) -> Result<(), GateError> {
    if !dir.exists() {
        return fs::create_dir_all(dir).map_err(io_err(dir));
    }
    if !dir.is_dir() {
        return Err(GateError::Io {
            path: dir.to_path_buf(),
            message: "not a folder".into(),
        });
    }
    let empty = fs::read_dir(dir).map_err(io_err(dir))?.next().is_none();
    if empty {
        return Ok(());
    }
    match read_json::<ExportIndex>(&dir.join("index.json"), "export index") {
        Ok(old) if old.format == EXPORT_FORMAT => {
            for c in &old.cases {
                if let Some(p) = inside(dir, &c.id).filter(|p| p.is_dir()) {
                    fs::remove_dir_all(&p).map_err(io_err(&p))?;
                }
            }
            Ok(())
        }
        _ if force => Ok(()),
        _ => Err(GateError::NotAnExport(dir.to_path_buf())),
    }
}

/// Export `cases` (loaded from `root`) into `dir`: every step the layout can
/// express, with `index.json` listing every case and why any is not
/// exported. Files are written atomically; `index.json` last.
///
/// # Errors
/// A [`GateError`]: `dir` is not empty and not an export (without
/// `force`), a file cannot be written, a forget_bias mode the layout lacks.
pub fn export(
    root: &Path,
    cases: &[Case],
    dir: &Path,
    options: &ExportOptions,
) -> Result<ExportIndex, GateError> {
    let forget_bias = options
        .forget_bias
        .unwrap_or_else(|| options.layout.default_forget_bias());
    if forget_bias == ForgetBias::Kept && !options.layout.has_forget_bias() {
        return Err(GateError::Usage(format!(
            "layout {} has no forget_bias option: it is always folded into the bias (omit --forget-bias or use folded)",
            options.layout
        )));
    }
    let ids: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
    let fingerprint = suite_fingerprint(root, &ids)?;
    prepare(dir, options.force)?;
    let mut index = ExportIndex {
        format: EXPORT_FORMAT.into(),
        version: GATE_VERSION,
        suite_fingerprint: fingerprint,
        layout: options.layout.name().into(),
        dtype: options.dtype,
        forget_bias: forget_bias.to_string(),
        cases: Vec::new(),
    };
    for case in cases {
        let entry = match options.dtype {
            Dtype::F32 => export_case::<f32>(case, dir, &index, forget_bias)?,
            Dtype::F64 => export_case::<f64>(case, dir, &index, forget_bias)?,
        };
        index.cases.push(entry);
    }
    write_json(&dir.join("index.json"), &index)?;
    Ok(index)
}

fn export_case<T: Real>(
    case: &Case,
    dir: &Path,
    index: &ExportIndex,
    forget_bias: ForgetBias,
) -> Result<IndexCase, GateError> {
    let layout: Layout = index.layout.parse().map_err(GateError::Usage)?;
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
    };
    if let Err(e) = run {
        entry.reason = Some(format!("the Rust LSTM cannot run it: {e}"));
        return Ok(entry);
    }
    for s in &steps {
        let not_exported = layout::check_step(layout, s, forget_bias).err();
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
    for (s, e) in steps.iter().zip(&entry.steps) {
        let step_dir = inside(dir, &e.dir).ok_or_else(|| GateError::Format {
            path: dir.to_path_buf(),
            message: format!("step folder {:?} is not a plain relative path", e.dir),
        })?;
        write_step(&step_dir, s, case, index, layout, forget_bias)?;
    }
    entry.exported = true;
    Ok(entry)
}

fn write_array(step_dir: &Path, file: &str, t: &Tensor) -> Result<FileRef, GateError> {
    let path = step_dir.join(file);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let bytes = npy::to_bytes(t).map_err(|e| GateError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    npy::write_atomic_unsynced(&path, &bytes).map_err(io_err(&path))?;
    Ok(FileRef {
        file: file.to_string(),
        shape: t.shape().to_vec(),
        dtype: t.dtype().to_string(),
    })
}

fn write_step<T: Real>(
    step_dir: &Path,
    step: &Step<T>,
    case: &Case,
    index: &ExportIndex,
    layout: Layout,
    forget_bias: ForgetBias,
) -> Result<(), GateError> {
    fs::create_dir_all(step_dir).map_err(io_err(step_dir))?;
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
        write_array(
            step_dir,
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
            write_array(step_dir, "mask.npy", &Tensor::Bool(m.into_dyn()))?,
        );
        if let Some(lengths) = layout::mask_lengths(mask) {
            let l: Vec<i32> = lengths
                .iter()
                .map(|&v| i32::try_from(v).unwrap_or(i32::MAX))
                .collect();
            inputs.insert(
                "sequence_lengths".into(),
                write_array(
                    step_dir,
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
                write_array(
                    step_dir,
                    &format!("initial_h.{l}.npy"),
                    &tensor_of(&s.h.clone().into_dyn()),
                )?,
            );
            inputs.insert(
                format!("initial_c/{l}"),
                write_array(
                    step_dir,
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
            weights.insert(name.clone(), write_array(step_dir, &file, &tensor_of(a))?);
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
        outputs.insert(
            format!("h_n/{l}"),
            out(
                format!("h_n.{l}.npy"),
                vec![batch, layer.output_size()],
                true,
            ),
        );
        outputs.insert(
            format!("c_n/{l}"),
            out(format!("c_n.{l}.npy"), vec![batch, layer.units()], true),
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
        suite_fingerprint: index.suite_fingerprint.clone(),
        case: case.id.clone(),
        step: step.name.clone(),
        layout: layout.name().into(),
        dtype: index.dtype,
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
    write_json(&step_dir.join("step.json"), &file)
}

// ---------------------------------------------------------------------------
// For Rust implementations: read a step back, write its outputs.

/// Read an export's `index.json`.
///
/// # Errors
/// [`GateError::Io`] or [`GateError::Format`] naming the file.
pub fn read_index(export_dir: &Path) -> Result<ExportIndex, GateError> {
    let path = export_dir.join("index.json");
    let index: ExportIndex = read_json(&path, "export index")?;
    if index.format != EXPORT_FORMAT || index.version != GATE_VERSION {
        return Err(GateError::Format {
            path,
            message: format!(
                "format {:?} version {}: this build reads {EXPORT_FORMAT:?} version {GATE_VERSION}",
                index.format, index.version
            ),
        });
    }
    Ok(index)
}

fn read_float<T: Real>(path: &Path, shape: &[usize]) -> Result<ArrayD<T>, String> {
    let t = npy::read(path).map_err(|e| e.to_string())?;
    if t.dtype() != T::NAME {
        return Err(format!("dtype {} where {} is required", t.dtype(), T::NAME));
    }
    if t.shape() != shape {
        return Err(format!(
            "shape {:?} where {:?} is required",
            t.shape(),
            shape
        ));
    }
    let a = t.to_float::<T>().expect("a float tensor");
    if let Some((i, _)) = a.indexed_iter().find(|(_, v)| v.is_nan()) {
        return Err(format!("NaN at index {:?}", i.slice()));
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
            let t = npy::read(&dir.join(&r.file)).map_err(|e| bad(&r.file, e.to_string()))?;
            let Tensor::Bool(m) = t else {
                return Err(bad(
                    &r.file,
                    format!("dtype {} where bool is required", t.dtype()),
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
    write_array(
        &dir,
        "y.npy",
        &tensor_of(&order(run.outputs.clone().into_dyn())),
    )?;
    for (l, s) in run.final_state.iter().enumerate() {
        write_array(
            &dir,
            &format!("h_n.{l}.npy"),
            &tensor_of(&s.h.clone().into_dyn()),
        )?;
        write_array(
            &dir,
            &format!("c_n.{l}.npy"),
            &tensor_of(&s.c.clone().into_dyn()),
        )?;
    }
    if traces {
        for (l, t) in run.trace.iter().enumerate() {
            write_array(
                &dir,
                &format!("trace.{l}.h.npy"),
                &tensor_of(&order(t.h.clone().into_dyn())),
            )?;
            write_array(
                &dir,
                &format!("trace.{l}.c.npy"),
                &tensor_of(&order(t.c.clone().into_dyn())),
            )?;
        }
    }
    Ok(())
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
            version: GATE_VERSION,
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
    if info.format != OUTPUTS_FORMAT || info.version != GATE_VERSION {
        return Err(GateError::Format {
            path,
            message: format!(
                "format {:?} version {}: expected {OUTPUTS_FORMAT:?} version {GATE_VERSION}",
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

/// Returns, for each step a dialect asks for, what the implementation wrote.
struct OutputReader<'a> {
    layout: Layout,
    outputs_dir: &'a Path,
    steps: BTreeMap<String, String>,
    problem: Option<ReadProblem>,
}

impl<T: Real> Runner<T> for OutputReader<'_> {
    fn run_step(&mut self, step: &Step<T>) -> Result<RunOutput<T>, DialectError> {
        match self.read(step) {
            Ok(run) => Ok(run),
            Err(p) => {
                let message = match &p {
                    ReadProblem::BadFile(path, m) => format!("{}: {m}", path.display()),
                    ReadProblem::Failed(m) => format!("the implementation reported: {m}"),
                };
                self.problem.get_or_insert(p);
                Err(DialectError::Invalid(message))
            }
        }
    }
}

impl OutputReader<'_> {
    fn read<T: Real>(&self, step: &Step<T>) -> Result<RunOutput<T>, ReadProblem> {
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
        let error_file = dir.join("error.txt");
        if error_file.is_file() {
            let text = fs::read_to_string(&error_file).unwrap_or_default();
            return Err(ReadProblem::Failed(text.trim().to_string()));
        }
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
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !known(&name) {
                    return Err(ReadProblem::BadFile(
                        entry.path(),
                        "unexpected file: not an output of this step (see docs/gate.md)".into(),
                    ));
                }
            }
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
            if !path.is_file() {
                return Err(ReadProblem::BadFile(
                    path,
                    "missing (the implementation must write it, or error.txt)".into(),
                ));
            }
            read_float::<T>(&path, shape).map_err(|m| ReadProblem::BadFile(path, m))
        };
        let seq3 = |a: ArrayD<T>| -> Array3<T> {
            layout::from_layout_order(self.layout, &a).expect("shape checked")
        };
        let two = |a: ArrayD<T>| -> Array2<T> { a.into_dimensionality().expect("shape checked") };
        let last = step.layers.last().map_or(0, |l| l.output_size());
        let outputs = seq3(read("y.npy", &seq(last))?);
        let mut final_state = Vec::new();
        let mut trace = Vec::new();
        let any_trace = (0..step.layers.len()).any(|l| {
            dir.join(format!("trace.{l}.h.npy")).exists()
                || dir.join(format!("trace.{l}.c.npy")).exists()
        });
        for (l, layer) in step.layers.iter().enumerate() {
            final_state.push(State {
                h: two(read(
                    &format!("h_n.{l}.npy"),
                    &[batch, layer.output_size()],
                )?),
                c: two(read(&format!("c_n.{l}.npy"), &[batch, layer.units()])?),
            });
            trace.push(if any_trace {
                StepTrace {
                    h: seq3(read(
                        &format!("trace.{l}.h.npy"),
                        &seq(layer.output_size()),
                    )?),
                    c: seq3(read(&format!("trace.{l}.c.npy"), &seq(layer.units()))?),
                }
            } else {
                // Not written: NaN, so that whatever is computed from it
                // is left out of the comparison (check_runner). Without a
                // mask the last layer's h at every step is its output y.
                let last_layer = l + 1 == step.layers.len();
                StepTrace {
                    h: if last_layer && step.mask.is_none() {
                        outputs.clone()
                    } else {
                        Array3::from_elem((batch, time, layer.output_size()), T::nan())
                    },
                    c: Array3::from_elem((batch, time, layer.units()), T::nan()),
                }
            });
        }
        Ok(RunOutput {
            outputs,
            final_state,
            trace,
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

/// Check the outputs an implementation wrote for an export: every exported
/// case through its dialect and [`check_runner`], diagnosed when it fails,
/// then the expected-failure list applied.
///
/// # Errors
/// A [`GateError`] when the export or the outputs folder cannot be read as
/// a whole, or they belong to another suite version. A bad output file of
/// one case is not an error here: it is a [`ReportError`] in the report
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
    let known: BTreeMap<String, PathBuf> = discover(options.reference)?
        .into_iter()
        .map(|r| (r.id, r.dir))
        .collect();
    let ids: Vec<String> = index.cases.iter().map(|c| c.id.clone()).collect();
    let stale = |got: String, detail: String| GateError::StaleExport {
        export: options.export_dir.to_path_buf(),
        reference: options.reference.to_path_buf(),
        expected: index.suite_fingerprint.clone(),
        got,
        detail,
    };
    if let Some(missing) = ids.iter().find(|id| !known.contains_key(*id)) {
        return Err(stale(
            "a different case set".into(),
            format!(" (case {missing} is not there)"),
        ));
    }
    let fingerprint = suite_fingerprint(options.reference, &ids)?;
    if fingerprint != index.suite_fingerprint {
        return Err(stale(fingerprint, String::new()));
    }

    let mut report = Report {
        gate: Some(GateInfo {
            layout: index.layout.clone(),
            dtype: index.dtype.to_string(),
            forget_bias: index.forget_bias.clone(),
            suite_fingerprint: index.suite_fingerprint.clone(),
            implementation: info.implementation.clone(),
        }),
        ..Report::default()
    };
    let mut unchecked = Vec::new();
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
        let case = match Case::load(&known[&entry.id], &entry.id) {
            Ok(c) => c,
            Err(e) => {
                report.errors.push(ReportError::from(&e));
                continue;
            }
        };
        let mut reader = OutputReader {
            layout,
            outputs_dir: options.outputs_dir,
            steps: entry
                .steps
                .iter()
                .map(|s| (s.name.clone(), s.dir.clone()))
                .collect(),
            problem: None,
        };
        let diagnose = DiagnoseOptions {
            external: true,
            layout: Some(layout),
            nan_means_not_written: true,
        };
        let mut run: CaseRun = match index.dtype {
            Dtype::F32 => {
                check_runner::<f32>(&case, index.dtype, options.tolerance, &mut reader, diagnose)
            }
            Dtype::F64 => {
                check_runner::<f64>(&case, index.dtype, options.tolerance, &mut reader, diagnose)
            }
        };
        match reader.problem {
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
            }
            None => {}
        }
        run.features = entry.features.clone();
        report.runs.push(run);
    }
    if let Some(list) = options.expectations {
        report.expectation_errors = list.apply(&mut report.runs, Some(layout.name()), &unchecked);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_fields() {
        let mut a = Fnv::new();
        a.write(b"ab");
        a.write(b"c");
        let mut b = Fnv::new();
        b.write(b"a");
        b.write(b"bc");
        assert_ne!(a.0, b.0);
    }

    #[test]
    fn step_folders_stay_inside() {
        let d = Path::new("/x");
        assert!(inside(d, "tf1/case/main").is_some());
        assert!(inside(d, "../etc").is_none());
        assert!(inside(d, "/etc").is_none());
        assert!(inside(d, "").is_none());
    }
}
