//! For Rust implementations: read a step back, write its outputs.

use super::error::GateError;
use super::export::tensor_of;
use super::fingerprint::fingerprint;
use super::format::{ExportIndex, FileRef, OutputsInfo, StepFile};
use super::io::{inside, io_err, npy_budget, read_finite, read_json, write_json};
use super::{EXPORT_FORMAT, GATE_VERSION, OUTPUTS_FORMAT, OUTPUTS_VERSION};
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, Ix2};
use serde_json::Value;

use crate::conformance::npy;
use crate::dialect::layout::{self, Layout};
use crate::dialect::Step;
use crate::lstm::{MaskedOutput, Real, RunOutput, State};
use crate::parse::UnknownName;
use crate::tensor::Tensor;

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
    let layout: Layout = file
        .layout
        .parse()
        .map_err(|m: UnknownName| GateError::Format {
            path: path.clone(),
            message: m.to_string(),
        })?;
    let bad = |f: &str, message: String| GateError::Format {
        path: dir.join(f),
        message,
    };
    let array = |r: &FileRef| -> Result<ArrayD<T>, GateError> {
        read_finite::<T>(&dir.join(&r.file), &r.shape).map_err(|e| bad(&r.file, e.to_string()))
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
        products: None,
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

/// The export folder `outputs.json` in `outputs_dir` names.
///
/// # Errors
/// [`GateError::NoExportNamed`] when it names none; as
/// [`read_outputs_info`] when it cannot be read.
pub fn export_dir_of(outputs_dir: &Path) -> Result<PathBuf, GateError> {
    read_outputs_info(outputs_dir)?
        .export
        .map(PathBuf::from)
        .ok_or_else(|| GateError::NoExportNamed(outputs_dir.join("outputs.json")))
}
