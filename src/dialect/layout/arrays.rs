//! Named arrays both ways: reading an import's arrays by name and rank,
//! and the shapes several layouts share (gate blocks as rows, peepholes as
//! three vectors, a bias in two halves).

use ndarray::{Array, Array1, Array2, ArrayD, ArrayView2, Axis, Dimension, Ix1, Ix2};

use super::{Arrays, DialectError};
use crate::dialect::{blocks_from_canonical, blocks_to_canonical};
use crate::lstm::{Gate, Peepholes, Projection, Real};

/// Arrays by the target's name, in the order they are written.
pub(super) type Named<T> = Vec<(String, ArrayD<T>)>;

/// `a` named `name`, for [`Named`].
pub(super) fn named<T, D: Dimension>(
    name: impl Into<String>,
    a: Array<T, D>,
) -> (String, ArrayD<T>) {
    (name.into(), a.into_dyn())
}

/// The three peephole vectors (input, forget, output gate) named `names`.
pub(super) fn named_peepholes<T: Clone>(names: [&str; 3], p: &Peepholes<T>) -> Named<T> {
    let [i, f, o] = names;
    vec![
        named(i, p.input.clone()),
        named(f, p.forget.clone()),
        named(o, p.output.clone()),
    ]
}

/// Canonical `[in, 4U]` (gate blocks i, f, g, o in columns) as the
/// target's `[4U, in]`, gate blocks in `order` in rows.
pub(super) fn gate_rows<T: Clone>(a: ArrayView2<T>, order: [Gate; 4]) -> Array2<T> {
    transposed(blocks_from_canonical(a, order).view())
}

/// The inverse of [`gate_rows`].
pub(super) fn from_gate_rows<T: Clone>(a: Array2<T>, order: [Gate; 4]) -> Array2<T> {
    blocks_to_canonical(a.reversed_axes().view(), order)
}

/// `a` transposed, in standard (row-major) layout.
pub(super) fn transposed<T: Clone>(a: ArrayView2<T>) -> Array2<T> {
    a.t().as_standard_layout().into_owned()
}

/// Half of each element: one of the two biases of a target that adds two.
pub(super) fn half<T: Real>(a: &Array1<T>) -> Array1<T> {
    let h = T::from_f64_lossy(0.5);
    a.mapv(|v| v * h)
}

pub(super) fn get<'a, T>(arrays: &'a Arrays<T>, name: &str) -> Result<&'a ArrayD<T>, DialectError> {
    arrays
        .get(name)
        .ok_or_else(|| DialectError::MissingVariable(name.to_string()))
}

/// `a` as rank `D`; `what` names it in the error.
fn of_rank<T: Clone, D: Dimension>(
    a: &ArrayD<T>,
    what: String,
) -> Result<Array<T, D>, DialectError> {
    a.clone()
        .into_dimensionality::<D>()
        .map_err(|_| DialectError::Shape {
            what,
            expected: vec![],
            got: a.shape().to_vec(),
        })
}

/// Matrix `name`.
pub(super) fn mat<T: Real>(arrays: &Arrays<T>, name: &str) -> Result<Array2<T>, DialectError> {
    of_rank::<T, Ix2>(get(arrays, name)?, format!("{name} (rank 2)"))
}

/// Vector `name`.
pub(super) fn vec1<T: Real>(arrays: &Arrays<T>, name: &str) -> Result<Array1<T>, DialectError> {
    of_rank::<T, Ix1>(get(arrays, name)?, format!("{name} (rank 1)"))
}

/// Peepholes from the three named vectors (input, forget, output gate).
pub(super) fn peepholes<T: Real>(
    arrays: &Arrays<T>,
    [i, f, o]: [&str; 3],
) -> Result<Peepholes<T>, DialectError> {
    Ok(Peepholes {
        input: vec1(arrays, i)?,
        forget: vec1(arrays, f)?,
        output: vec1(arrays, o)?,
    })
}

/// The projection from matrix `name`, if present, clipped at `clip`.
pub(super) fn projection<T: Real>(
    arrays: &Arrays<T>,
    name: &str,
    clip: Option<f64>,
) -> Result<Option<Projection<T>>, DialectError> {
    if !arrays.contains_key(name) {
        return Ok(None);
    }
    Ok(Some(Projection {
        kernel: mat(arrays, name)?,
        clip: clip.map(T::from_f64_lossy),
    }))
}

/// Array `name` with its first axis, of length 1, dropped (ONNX's
/// `num_directions`).
pub(super) fn squeeze0<T: Real, D: Dimension>(
    arrays: &Arrays<T>,
    name: &str,
) -> Result<Array<T, D>, DialectError> {
    let a = get(arrays, name)?;
    let bad = || DialectError::Shape {
        what: format!("{name} ([1, ...], one direction)"),
        expected: vec![],
        got: a.shape().to_vec(),
    };
    if a.shape().first() != Some(&1) {
        return Err(bad());
    }
    a.index_axis(Axis(0), 0)
        .to_owned()
        .into_dimensionality::<D>()
        .map_err(|_| bad())
}
