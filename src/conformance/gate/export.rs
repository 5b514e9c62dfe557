//! Export: write every step of every case in the layout.

use super::error::GateError;
use super::fingerprint::{features, fingerprint};
use super::format::{
    ExportIndex, FileRef, IndexCase, IndexStep, OutputRef, SelectedBy, StepFile, StepLayer,
};
use super::io::{inside, io_err, json_bytes};
use super::{EXPORT_FORMAT, GATE_VERSION, STEP_FORMAT};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::ArrayD;
use serde_json::Value;

use crate::conformance::case::Case;
use crate::conformance::check::{Dtype, Recording};
use crate::conformance::fsio;
use crate::conformance::npy;
use crate::conformance::replace::{self, LockError, TargetLock};
use crate::dialect::layout::{self, ForgetBias, Layout};
use crate::dialect::{DialectError, Runner, RustLstm, Step};
use crate::lstm::{MaskedOutput, Real, RunOutput};
use crate::tensor::Tensor;

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

pub(super) fn tensor_of<T: Real>(a: &ArrayD<T>) -> Tensor {
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
    let raw: Value = crate::conformance::json::from_str_strict(&text)
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

/// Select the cases `options.selected_by` names (every case when `None`)
/// under `root` and [`export`] them: what `lstm-parity export` does.
///
/// # Errors
/// A [`GateError`]: as [`export`], and also when the folder or a filter
/// is bad, a selected case does not load (nothing is exported then), or
/// nothing is selected.
pub fn export_selected(
    root: &Path,
    dir: &Path,
    options: &ExportOptions,
) -> Result<ExportIndex, GateError> {
    let all = SelectedBy::all();
    let selected_by = options.selected_by.unwrap_or(&all);
    let selection = selected_by.select(root)?;
    if !selection.errors.is_empty() {
        return Err(GateError::CasesDoNotLoad(
            selection.errors.iter().map(ToString::to_string).collect(),
        ));
    }
    if selection.cases.is_empty() {
        return Err(GateError::NothingSelected {
            root: root.to_path_buf(),
            selection: selected_by.to_string(),
        });
    }
    export(root, &selection.cases, dir, options)
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
    full_precision(options.dtype)?;
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

/// Exports are float32 or float64: an implementation that computes in 16
/// bits is judged on a float32 export, at a level stated for it.
pub(super) fn full_precision(dtype: Dtype) -> Result<(), GateError> {
    match dtype {
        Dtype::F32 | Dtype::F64 => Ok(()),
        Dtype::F16 | Dtype::BF16 => Err(GateError::Usage(format!(
            "exports are float32 or float64, not {dtype}: gate an implementation that computes in 16 bits on a float32 export, with a tolerance stated for it in its expectations (docs/gate.md)"
        ))),
    }
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
        full_precision(options.dtype)?;
        let mut entry = if options.dtype == Dtype::F32 {
            export_case::<f32>(case, &mut sink, options.layout, options.dtype, forget_bias)?
        } else {
            export_case::<f64>(case, &mut sink, options.layout, options.dtype, forget_bias)?
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
        reduced_files: case.reduced_files.clone(),
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
pub(super) struct StatesRead {
    pub(super) h: bool,
    pub(super) c: bool,
}

impl StatesRead {
    pub(super) const BOTH: StatesRead = StatesRead { h: true, c: true };
}

/// Per step of `case` (by name) and layer: whether any recorded output
/// reads the final `h` and `c`. Found by running the case (float64) with
/// one final state changed at a time and seeing whether any recorded
/// output changes: a Keras layer without `return_state` reads none, TF1's
/// `dynamic_rnn` reads both. Where the case cannot be run, every state
/// counts as read.
pub(super) fn final_states_read(case: &Case) -> BTreeMap<String, Vec<StatesRead>> {
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
