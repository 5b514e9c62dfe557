//! The activated gates of one step, for APIs that return them (TF's block
//! ops return `i`, `f`, `o`, `ci` and `co` besides the states).

use ndarray::{Array2, ArrayView2};

use super::{Gate, Layer, Real};

/// Activated gates of one step for every row, each `[batch, units]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gates<T> {
    /// Input gate.
    pub i: Array2<T>,
    /// Forget gate.
    pub f: Array2<T>,
    /// Cell candidate (after the cell activation).
    pub g: Array2<T>,
    /// Output gate (its peephole reads the new, clipped cell state `c`).
    pub o: Array2<T>,
}

/// The gates of the step that read `x` `[batch, input]` from state
/// `(c_prev, h_prev)` and produced cell state `c` (all `[batch, ...]`).
///
/// Computed apart from the main path, in the formula's plain order; the
/// states themselves come from [`super::run`].
pub fn step_gates<T: Real>(
    layer: &Layer<T>,
    x: ArrayView2<T>,
    c_prev: ArrayView2<T>,
    h_prev: ArrayView2<T>,
    c: ArrayView2<T>,
) -> Gates<T> {
    let units = layer.units();
    let mut z = x.dot(&layer.w_x) + h_prev.dot(&layer.w_h);
    z.zip_mut_with(&layer.bias, |a, &b| *a = *a + b);
    let batch = x.nrows();
    let zero = T::zero();
    let peep = |which: usize, j: usize, c: T| match &layer.peepholes {
        Some(p) => [&p.input, &p.forget, &p.output][which][j] * c,
        None => zero,
    };
    let col = |g: Gate, j: usize| g.columns(units).start + j;
    let act = layer.gate_activation;
    Gates {
        i: Array2::from_shape_fn((batch, units), |(b, j)| {
            act.apply(z[[b, col(Gate::I, j)]] + peep(0, j, c_prev[[b, j]]))
        }),
        f: Array2::from_shape_fn((batch, units), |(b, j)| {
            act.apply(z[[b, col(Gate::F, j)]] + layer.forget_bias + peep(1, j, c_prev[[b, j]]))
        }),
        g: Array2::from_shape_fn((batch, units), |(b, j)| {
            layer.cell_activation.apply(z[[b, col(Gate::G, j)]])
        }),
        o: Array2::from_shape_fn((batch, units), |(b, j)| {
            act.apply(z[[b, col(Gate::O, j)]] + peep(2, j, c[[b, j]]))
        }),
    }
}
