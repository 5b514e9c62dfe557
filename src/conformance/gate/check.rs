//! Check: read an implementation's outputs back and judge them.

use super::error::GateError;
use super::export::{plan, ExportOptions};
use super::format::{ExportIndex, IndexCase, SelectedBy};
use super::implementer::{read_index, read_outputs_info};
use super::io::{inside, read_output};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3, ArrayD};

use super::export::{final_states_read, StatesRead};
use crate::conformance::case::Case;
use crate::conformance::check::{check_reduced_outputs, reduced_run};
use crate::conformance::check::{
    check_runner_except, CaseRun, Dtype, NotCompared, Recording, NEEDS_TRACES,
};
use crate::conformance::diagnose::DiagnoseOptions;
use crate::conformance::expectations::{Expectations, StatedTolerance};
use crate::conformance::fsio;
use crate::conformance::npy;
use crate::conformance::report::{GateInfo, Report, ReportError, Skipped};
use crate::conformance::suite::discover;
use crate::conformance::tolerance::Tolerance;
use crate::dialect::layout::{self, ForgetBias, Layout};
use crate::dialect::{DialectError, Outputs, Runner, RustLstm, Step};
use crate::lstm::{Precision, Real, RunOutput, State, StepTrace};
use crate::parse::UnknownName;

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
            read_output::<T>(&path, shape).map_err(|e| ReadProblem::BadFile(path, e.to_string()))
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
    /// Judge the outputs against the framework's own run in this reduced
    /// precision (float32 exports only), at `default@<precision>` unless a
    /// level is given; cases without such a run are skipped.
    pub precision: Option<Precision>,
}

/// The first difference between what `index.json` says of a case and what
/// exporting the case from the reference gives now.
fn index_difference(recorded: &IndexCase, planned: &IndexCase) -> Option<String> {
    // The first file added, changed or gone.
    let changed = |was: &BTreeMap<String, String>, now: &BTreeMap<String, String>| {
        now.iter()
            .find(|(f, h)| was.get(*f) != Some(*h))
            .map(|(f, _)| f.clone())
            .or_else(|| was.keys().find(|f| !now.contains_key(*f)).cloned())
    };
    let file = changed(&recorded.reference_files, &planned.reference_files)
        .or_else(|| changed(&recorded.reduced_files, &planned.reduced_files));
    if let Some(file) = file {
        return Some(format!(
            "the reference file {}/{file} changed since the export",
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
    let forget_bias: ForgetBias =
        index
            .forget_bias
            .parse()
            .map_err(|m: UnknownName| GateError::Format {
                path: options.export_dir.join("index.json"),
                message: m.to_string(),
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
    if let Some(precision) = options.precision {
        // An implementation computing in 16 bits, against the framework's
        // own 16-bit run: the outputs as the dialect assembles them from
        // what it wrote, in f32 (exports in reduced precision are float32).
        let outputs = case
            .model
            .run_with::<T>(&case.variables, &case.inputs, &mut reader);
        let run = match outputs {
            Ok(o) => {
                let o: Outputs<f32> = o
                    .into_iter()
                    .map(|(k, v)| (k, v.mapv(|x| x.widen() as f32)))
                    .collect();
                check_reduced_outputs(case, precision, options.tolerance, &o, &not_compared)
            }
            Err(e) => CaseRun {
                error: Some(e.to_string()),
                ..reduced_run(case, precision, options.tolerance)
            },
        };
        return (run, reader.problem);
    }
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
            Err(e) => run.error = Some(e.to_string()),
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

/// Why the outputs no recording reads cannot be judged.
#[derive(Debug, thiserror::Error)]
enum UnreadError {
    /// The Rust LSTM cannot run the case.
    #[error("the Rust LSTM cannot run the case to check unrecorded outputs: {0}")]
    CannotRun(DialectError),
    /// The Rust LSTM has no such array for the step.
    #[error("step {step}: the Rust LSTM has no {file} to check the written one against")]
    NoCounterpart { step: String, file: String },
}

/// The Rust LSTM's result of every step of `case`, computed in `U`.
fn rust_steps<U: Real>(case: &Case) -> Result<BTreeMap<String, RunOutput<U>>, UnreadError> {
    let mut rust = RustLstm;
    let mut recording = Recording::new(&mut rust);
    case.model
        .run_with::<U>(&case.variables, &case.inputs, &mut recording)
        .map_err(UnreadError::CannotRun)?;
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
) -> Result<Vec<crate::conformance::compare::Comparison>, UnreadError> {
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
            return Err(UnreadError::NoCounterpart {
                step: step.clone(),
                file: field.file(),
            });
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
    super::export::full_precision(index.dtype)?;
    if let (Some(p), false) = (options.precision, index.dtype == Dtype::F32) {
        return Err(GateError::Usage(format!(
            "--precision {p} judges a float32 export; this export is {}",
            index.dtype
        )));
    }
    let layout: Layout = index
        .layout
        .parse()
        .map_err(|m: UnknownName| GateError::Format {
            path: options.export_dir.join("index.json"),
            message: m.to_string(),
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
        if let Some(p) = options.precision.filter(|p| !case.reduced.contains_key(p)) {
            unchecked.push(entry.id.clone());
            report.skipped.push(Skipped {
                id: entry.id.clone(),
                api: entry.api.clone(),
                reason: format!("no {p} run is recorded for this case"),
                features: entry.features.clone(),
            });
            continue;
        }
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
        let check = |o: &CheckOptions| {
            if index.dtype == Dtype::F32 {
                check_case::<f32>(case, entry, layout, o, index.dtype)
            } else {
                check_case::<f64>(case, entry, layout, o, index.dtype)
            }
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
