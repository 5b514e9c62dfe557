//! Why an export or a check cannot go on.

use std::path::PathBuf;

use crate::conformance::suite::SuiteError;

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
    /// Selected cases do not load: nothing is exported.
    #[error("{}\nnothing exported: the reference folder has cases that do not load", .0.join("\n"))]
    CasesDoNotLoad(Vec<String>),
    /// No case is selected.
    #[error("no case in {} is selected ({selection})", root.display())]
    NothingSelected {
        /// The reference folder.
        root: PathBuf,
        /// The selection, as the index records it.
        selection: String,
    },
    /// `outputs.json` names no export folder, and none was given.
    #[error("{}: names no export folder: give --export", .0.display())]
    NoExportNamed(PathBuf),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
}
