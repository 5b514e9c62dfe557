//! `cudnn`: cuDNN's canonical LSTM weights, one matrix and one bias per
//! gate, for both the input and the recurrent side.
//!
//! Arrays: `w_i`, `w_f`, `w_c`, `w_o [U,I]`, `r_i` .. `r_o [U,H]`, `b_wi` ..
//! `b_wo` and `b_ri` .. `b_ro [U]`. cuDNN adds both biases, so each holds
//! half of the canonical bias (an implementation that reads one of them
//! only falls into the double bias trap, docs/semantics.md §9). Gate order
//! i, f, c, o; sequences time-major. No `forget_bias` (folded),
//! peepholes, `cell_clip` or projection, standard activations only. Masks
//! are per-row sequence lengths, past which cuDNN writes zeros.

use ndarray::{concatenate, s, Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::arrays::{half, mat, named, transposed, vec1, Named};
use super::{declared_units, Arrays, Lacks, LayerLayout, Layout, Masks};
use crate::dialect::DialectError;
use crate::lstm::{Gate, Layer, Real};

/// cuDNN's name of each canonical gate (i, f, g, o).
const NAMES: [&str; 4] = ["i", "f", "c", "o"];

/// The `cudnn` layout.
pub(super) struct Cudnn;

/// A `cudnn` layer's options.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CudnnOptions {
    hidden_size: usize,
}

impl LayerLayout for Cudnn {
    const LAYOUT: Layout = Layout::Cudnn;
    const GATE_ORDER: [Gate; 4] = Gate::ALL;
    const GATE_NAMES: [&'static str; 4] = NAMES;
    const TIME_MAJOR: bool = true;
    const FORGET_BIAS: bool = false;
    const MASKS: Masks = Masks::Lengths {
        writer: "cuDNN (docs/semantics.md §9)",
    };
    const FORWARD_ONLY: Option<&'static str> = None;
    type Options = CudnnOptions;

    fn check_layer<T: Real>(layer: &Layer<T>) -> Result<(), Lacks> {
        Lacks::standard_activations::<Self, T>(layer)?;
        Lacks::no_peepholes_or_cell_clip::<Self, T>(layer)?;
        if layer.projection.is_some() {
            return Err(Lacks::CudnnProjection);
        }
        Ok(())
    }

    fn export<T: Real>(layer: &Layer<T>, _: usize) -> (CudnnOptions, Named<T>) {
        let units = layer.units();
        let b = half(&layer.bias);
        let mut arrays = Vec::new();
        for (prefix, m) in [("w_", &layer.w_x), ("r_", &layer.w_h)] {
            for (gate, name) in Gate::ALL.iter().zip(NAMES) {
                let block = m.slice(s![.., gate.columns(units)]);
                arrays.push(named(format!("{prefix}{name}"), transposed(block)));
            }
        }
        for prefix in ["b_w", "b_r"] {
            for (gate, name) in Gate::ALL.iter().zip(NAMES) {
                let block = b.slice(s![gate.columns(units)]).to_owned();
                arrays.push(named(format!("{prefix}{name}"), block));
            }
        }
        (CudnnOptions { hidden_size: units }, arrays)
    }

    fn import<T: Real>(
        options: CudnnOptions,
        arrays: &Arrays<T>,
        _: usize,
    ) -> Result<Layer<T>, DialectError> {
        let blocks = |prefix: &str| -> Result<Array2<T>, DialectError> {
            let parts = NAMES
                .iter()
                .map(|n| mat(arrays, &format!("{prefix}{n}")).map(|m| m.reversed_axes()))
                .collect::<Result<Vec<_>, _>>()?;
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            concatenate(Axis(1), &views)
                .map(|m| m.as_standard_layout().into_owned())
                .map_err(|e| DialectError::Model(format!("{prefix}*: {e}")))
        };
        let biases = |prefix: &str| -> Result<Array1<T>, DialectError> {
            let parts = NAMES
                .iter()
                .map(|n| vec1(arrays, &format!("{prefix}{n}")))
                .collect::<Result<Vec<_>, _>>()?;
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            concatenate(Axis(0), &views).map_err(|e| DialectError::Model(format!("{prefix}*: {e}")))
        };
        let l = Layer::new(
            blocks("w_")?,
            blocks("r_")?,
            biases("b_w")? + biases("b_r")?,
        );
        declared_units::<Self, T>("hidden_size", options.hidden_size, l)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::s;

    use super::super::tests::layer;
    use super::super::{export_layer, fold_forget_bias, ForgetBias, Layout};
    use crate::lstm::Gate;

    #[test]
    fn each_gate_has_two_biases_of_half_the_bias() {
        let l = layer(3, 2, 0.5);
        let e = export_layer(Layout::Cudnn, &l, 0, ForgetBias::Folded);
        let folded = fold_forget_bias(&l, ForgetBias::Folded);
        let array = |name: String| e.arrays.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        for (gate, name) in Gate::ALL.iter().zip(["i", "f", "c", "o"]) {
            let sum = array(format!("b_w{name}")) + array(format!("b_r{name}"));
            let expected = folded.bias.slice(s![gate.columns(2)]).to_owned().into_dyn();
            assert_eq!(sum, expected, "{name}");
        }
    }
}
