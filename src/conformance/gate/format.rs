//! The gate's files: `index.json`, `step.json`, `outputs.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conformance::case::Case;
use crate::conformance::check::Dtype;
use crate::conformance::suite::{discover, SuiteError};

/// `EXPORT/index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportIndex {
    /// [`EXPORT_FORMAT`](super::EXPORT_FORMAT).
    pub format: String,
    /// [`GATE_VERSION`](super::GATE_VERSION).
    pub version: u32,
    /// The SHA-256 of everything else in this file (see
    /// [`fingerprint`](super::fingerprint)): layout, dtype, forget_bias, every case's flags and
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

impl ExportIndex {
    /// What an export did, as `lstm-parity export` prints it: each case
    /// not exported with its reason, then one line of totals naming the
    /// folder `dir`.
    pub fn summary(&self, dir: &Path) -> String {
        let mut text = String::new();
        for c in self.cases.iter().filter(|c| !c.exported) {
            let reason = c.reason.as_deref().unwrap_or("");
            text.push_str(&format!("not exported: {}: {reason}\n", c.id));
        }
        let exported: Vec<&IndexCase> = self.cases.iter().filter(|c| c.exported).collect();
        let steps: usize = exported.iter().map(|c| c.steps.len()).sum();
        text.push_str(&format!(
            "exported {} of {} cases ({steps} steps) in layout {}, {}, forget_bias {}, to {} (suite {})\n",
            exported.len(),
            self.cases.len(),
            self.layout,
            self.dtype,
            self.forget_bias,
            dir.display(),
            self.suite_fingerprint
        ));
        text
    }
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
    pub fn select(&self, root: &Path) -> Result<crate::conformance::check::Selection, SuiteError> {
        match self {
            SelectedBy::Filters {
                filters,
                api,
                option,
            } => {
                let narrow =
                    crate::conformance::suite::ModelFilter::new(api.as_deref(), option.as_deref())?;
                let mut selection = crate::conformance::check::select(
                    root,
                    &crate::conformance::suite::Filter::new(filters)?,
                )?;
                selection
                    .cases
                    .retain(|c| narrow.matches(&c.model.api(), &c.model.summary()));
                Ok(selection)
            }
            SelectedBy::Cases(ids) => {
                let known: BTreeMap<String, PathBuf> =
                    discover(root)?.into_iter().map(|r| (r.id, r.dir)).collect();
                let mut selection = crate::conformance::check::Selection {
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
    /// The files of the case's float16 and bfloat16 runs (`reduced.json`
    /// and its arrays) with their SHA-256: `check` refuses the export when
    /// one changed. Outside the fingerprint: float32 and float64 exports
    /// and their verdicts do not depend on them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reduced_files: BTreeMap<String, String>,
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
    /// [`STEP_FORMAT`](super::STEP_FORMAT).
    pub format: String,
    /// [`GATE_VERSION`](super::GATE_VERSION).
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
    /// [`OUTPUTS_FORMAT`](super::OUTPUTS_FORMAT).
    pub format: String,
    /// [`OUTPUTS_VERSION`](super::OUTPUTS_VERSION).
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
