//! `case.json`, format version 1 (documented in `reference/README.md`).
//!
//! Strict: unknown fields are errors, so a typo or a field from a newer
//! writer is never silently ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A case manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be [`FORMAT_VERSION`].
    pub format_version: u32,
    /// One line of free text.
    pub description: String,
    /// Which dialect reads `model`.
    pub dialect: String,
    /// The dialect-specific model description.
    pub model: serde_json::Value,
    /// The tolerance level name.
    pub tolerance: String,
    /// Native variable name -> array.
    pub variables: BTreeMap<String, ArrayRef>,
    /// Native input name -> array.
    pub inputs: BTreeMap<String, ArrayRef>,
    /// Native output name -> expected results.
    pub expected: BTreeMap<String, Expected>,
    /// Who made the case, how.
    pub provenance: Provenance,
    /// Numbers a notebook printed, kept to check the recording against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notebook_printed: Option<BTreeMap<String, PrintedRef>>,
}

/// A reference to one `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayRef {
    /// Path relative to the case folder.
    pub file: String,
    /// Shape the file must have.
    pub shape: Vec<usize>,
}

/// One expected output, from the float32 and the float64 run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Shape of both files.
    pub shape: Vec<usize>,
    /// The float32 run's result.
    pub float32: String,
    /// The float64 run's result, where the framework has a float64 kernel.
    pub float64: Option<String>,
}

/// Numbers a notebook printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintedRef {
    /// Path relative to the case folder.
    pub file: String,
    /// Shape of the file.
    pub shape: Vec<usize>,
    /// Decimals the notebook printed.
    pub decimals: u32,
}

/// Where a case came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The script that recorded it, relative to the repository root.
    pub script: String,
    /// Which generator in the script: `notebook`, `grid`, `canary`, ...
    pub generator: String,
    /// The seed notebook, if any.
    pub notebook: Option<String>,
    /// The random seed.
    pub seed: Option<u64>,
    /// Package versions.
    pub versions: BTreeMap<String, String>,
    /// Anything a reader needs to trust the recording.
    #[serde(default)]
    pub notes: String,
}
