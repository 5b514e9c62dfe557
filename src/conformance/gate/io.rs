//! File helpers of the gate: every error names its file; nothing leaves
//! the folder it belongs to.

use std::path::{Component, Path, PathBuf};

use ndarray::ArrayD;
use serde::Serialize;

use super::error::GateError;
use crate::conformance::{fsio, npy};
use crate::lstm::Real;

pub(super) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> GateError + '_ {
    move |e| GateError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

pub(super) fn json_bytes<S: Serialize>(value: &S) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(value).expect("gate files serialize");
    text.push('\n');
    text.into_bytes()
}

pub(super) fn write_json<S: Serialize>(path: &Path, value: &S) -> Result<(), GateError> {
    npy::write_atomic_unsynced(path, &json_bytes(value)).map_err(io_err(path))
}

/// Read a gate JSON file: a regular file of bounded size, strict JSON (no
/// duplicate keys), the exact structure.
pub(super) fn read_json<D: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<D, GateError> {
    let text = fsio::read_json_text(path).map_err(|e| GateError::Io {
        path: path.to_path_buf(),
        message: format!("cannot read the {what}: {e}"),
    })?;
    crate::conformance::json::from_str_strict(&text).map_err(|e| GateError::Format {
        path: path.to_path_buf(),
        message: format!("not a valid {what}: {e}"),
    })
}

/// `rel` (a case id or step folder) joined to `dir`, refusing anything
/// that would leave `dir`.
pub(super) fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let ok = !rel.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !p.is_absolute();
    ok.then(|| dir.join(p))
}

/// The most bytes an `.npy` of `shape` with `item`-byte elements may
/// take: the data and a generous header. `None` when it overflows.
pub(super) fn npy_budget(shape: &[usize], item: usize) -> Option<u64> {
    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))?;
    elements
        .checked_mul(item as u64)?
        .checked_add(npy::MAX_HEADER_BYTES)
}

/// Why an array file of a step cannot be used. The caller names the file.
#[derive(Debug, thiserror::Error)]
pub(super) enum ArrayFileError {
    /// A shape whose byte count overflows.
    #[error("shape {0:?} is too large")]
    TooLarge(Vec<usize>),
    /// The file cannot be read (missing, not a regular file, too large).
    #[error("{0}")]
    Read(#[from] fsio::ReadError),
    /// Not a valid `.npy`.
    #[error("{0}")]
    Npy(#[from] npy::NpyError),
    /// Another dtype.
    #[error("dtype {found} where {required} is required")]
    Dtype {
        /// The file's dtype.
        found: &'static str,
        /// The step's.
        required: &'static str,
    },
    /// Another shape.
    #[error("shape {found:?} where {required:?} is required")]
    Shape {
        /// The file's shape.
        found: Vec<usize>,
        /// The step's.
        required: Vec<usize>,
    },
    /// NaN or an infinity in an input or a weight.
    #[error("non-finite value {value} at index {index:?}")]
    NonFinite {
        /// The value.
        value: f64,
        /// Where.
        index: Vec<usize>,
    },
}

/// Read an implementation's output: the file, its dtype and shape as the
/// export says. Any value is accepted, NaN and infinities included: they
/// are results, and the comparison fails them.
pub(super) fn read_output<T: Real>(
    path: &Path,
    shape: &[usize],
) -> Result<ArrayD<T>, ArrayFileError> {
    let limit = npy_budget(shape, std::mem::size_of::<T>())
        .ok_or_else(|| ArrayFileError::TooLarge(shape.to_vec()))?;
    // The implementation's own file: a symbolic link is refused, never
    // followed (it could point at a reference array).
    let bytes = fsio::read_limited_nofollow(path, limit, "an output of the shape the step needs")?;
    let (t, found) = npy::parse_with_dtype(&bytes)?;
    let wrong_dtype = || ArrayFileError::Dtype {
        found,
        required: T::NAME,
    };
    if found != T::NAME {
        return Err(wrong_dtype());
    }
    if t.shape() != shape {
        return Err(ArrayFileError::Shape {
            found: t.shape().to_vec(),
            required: shape.to_vec(),
        });
    }
    t.to_float::<T>().ok_or_else(wrong_dtype)
}

/// [`read_output`] for an export's own arrays (inputs and weights), which
/// must be finite.
pub(super) fn read_finite<T: Real>(
    path: &Path,
    shape: &[usize],
) -> Result<ArrayD<T>, ArrayFileError> {
    let a = read_output::<T>(path, shape)?;
    if let Some((i, v)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(ArrayFileError::NonFinite {
            value: v.widen(),
            index: ndarray::Dimension::slice(&i).to_vec(),
        });
    }
    Ok(a)
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
