//! The gate: export the cases for another LSTM implementation in its own
//! weight layout, read back the outputs it wrote, and check them against
//! the references through the same dialect mapping and comparison the Rust
//! LSTM is held to.
//!
//! The unit of exchange is the canonical [`Step`](crate::dialect::Step) a dialect asks a
//! [`Runner`](crate::dialect::Runner) to compute (one stack of layers over one batch of
//! sequences). [`export`] records every step of every case with the Rust
//! LSTM and writes the ones the layout can express; [`check`] runs each
//! case again with a runner that returns, for each step, what the
//! implementation wrote; the dialect turns those into the case's native
//! outputs and [`check_runner_except`](crate::conformance::check::check_runner_except) judges and diagnoses them.
//!
//! One file per job: `format` (the files' structures), `error`, `io`
//! (reading and writing them, never outside their folder), `fingerprint`
//! (of an export, and a case's features), `export`, `implementer` (for a
//! Rust implementation: load a step, write its outputs) and `check`.
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

mod check;
mod error;
mod export;
mod fingerprint;
mod format;
mod implementer;
mod io;

pub use check::{check, CheckOptions};
pub use error::GateError;
pub use export::{export, export_selected, plan, ExportOptions};
pub use fingerprint::{features, fingerprint};
pub use format::{
    ExportIndex, FileRef, IndexCase, IndexStep, OutputRef, OutputsInfo, SelectedBy, StepFile,
    StepLayer,
};
pub use implementer::{
    export_dir_of, load_step, read_index, read_outputs_info, write_outputs, write_outputs_info,
};

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
