//! `torch`: PyTorch `nn.LSTM` (`batch_first=True`), its `state_dict` for
//! layer `k` of the stack.
//!
//! Arrays: `weight_ih_l<k> [4U,I]`, `weight_hh_l<k> [4U,H]`, `bias_ih_l<k>`
//! and `bias_hh_l<k> [4U]` (each half of the canonical bias: PyTorch adds
//! both), and `weight_hr_l<k> [P,U]` when `proj_size > 0`. Gate order i, f,
//! g, o; sequences batch-major. No `forget_bias` (folded), peepholes or
//! `cell_clip`, standard activations only, and `proj_size` has no clip.
//! Masks are per-row lengths (`pack_padded_sequence`), past which
//! `pad_packed_sequence` writes zeros.

use serde::{Deserialize, Serialize};

use super::arrays::{from_gate_rows, gate_rows, half, mat, named, transposed, vec1, Named};
use super::{declared_units, Arrays, Lacks, LayerLayout, Layout, Masks};
use crate::dialect::{self, DialectError};
use crate::lstm::{Gate, Layer, Projection, Real};

/// The `torch` layout.
pub(super) struct Torch;

/// A `torch` layer's options: the `nn.LSTM` arguments.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TorchOptions {
    hidden_size: usize,
    /// `0` for no projection.
    proj_size: usize,
}

impl LayerLayout for Torch {
    const LAYOUT: Layout = Layout::Torch;
    const GATE_ORDER: [Gate; 4] = Gate::ALL;
    const GATE_NAMES: [&'static str; 4] = ["i", "f", "g", "o"];
    const TIME_MAJOR: bool = false;
    const FORGET_BIAS: bool = false;
    const MASKS: Masks = Masks::Lengths {
        writer: "PyTorch (pad_packed_sequence)",
    };
    const FORWARD_ONLY: Option<&'static str> = None;
    type Options = TorchOptions;

    fn check_layer<T: Real>(layer: &Layer<T>) -> Result<(), Lacks> {
        Lacks::standard_activations::<Self, T>(layer)?;
        Lacks::no_peepholes_or_cell_clip::<Self, T>(layer)?;
        if layer.projection.as_ref().is_some_and(|p| p.clip.is_some()) {
            return Err(Lacks::TorchProjClip);
        }
        Ok(())
    }

    fn export<T: Real>(layer: &Layer<T>, index: usize) -> (TorchOptions, Named<T>) {
        let order = Self::GATE_ORDER;
        let b = half(&dialect::vector_from_canonical(layer.bias.view(), order));
        let mut arrays = vec![
            named(
                format!("weight_ih_l{index}"),
                gate_rows(layer.w_x.view(), order),
            ),
            named(
                format!("weight_hh_l{index}"),
                gate_rows(layer.w_h.view(), order),
            ),
            named(format!("bias_ih_l{index}"), b.clone()),
            named(format!("bias_hh_l{index}"), b),
        ];
        if let Some(p) = &layer.projection {
            arrays.push(named(
                format!("weight_hr_l{index}"),
                transposed(p.kernel.view()),
            ));
        }
        let options = TorchOptions {
            hidden_size: layer.units(),
            proj_size: layer.projection.as_ref().map_or(0, |p| p.kernel.ncols()),
        };
        (options, arrays)
    }

    fn import<T: Real>(
        options: TorchOptions,
        arrays: &Arrays<T>,
        index: usize,
    ) -> Result<Layer<T>, DialectError> {
        let order = Self::GATE_ORDER;
        let bias = vec1(arrays, &format!("bias_ih_l{index}"))?
            + vec1(arrays, &format!("bias_hh_l{index}"))?;
        let mut l = Layer::new(
            from_gate_rows(mat(arrays, &format!("weight_ih_l{index}"))?, order),
            from_gate_rows(mat(arrays, &format!("weight_hh_l{index}"))?, order),
            dialect::vector_to_canonical(bias.view(), order),
        );
        if options.proj_size > 0 {
            let name = format!("weight_hr_l{index}");
            let hr = mat(arrays, &name)?;
            if hr.nrows() != options.proj_size {
                return Err(DialectError::Shape {
                    what: format!("{name} (options.proj_size = {})", options.proj_size),
                    expected: vec![options.proj_size, l.units()],
                    got: hr.shape().to_vec(),
                });
            }
            l.projection = Some(Projection {
                kernel: transposed(hr.view()),
                clip: None,
            });
        }
        declared_units::<Self, T>("hidden_size", options.hidden_size, l)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::super::tests::{import_error, layer, round_trip};
    use super::super::{export_layer, fold_forget_bias, ForgetBias, Layout};
    use crate::lstm::{Layer, Projection};

    /// A layer projecting its 2 units to 1.
    fn projected() -> Layer<f64> {
        let mut l = layer(3, 2, 0.5);
        l.projection = Some(Projection {
            kernel: Array2::from_shape_fn((2, 1), |(a, _)| a as f64 + 0.5),
            clip: None,
        });
        l.w_h = Array2::from_shape_fn((1, 8), |(_, b)| b as f64 * 0.1);
        l
    }

    #[test]
    fn names_carry_the_layer_number_and_the_projection_round_trips() {
        let l = projected();
        let e = export_layer(Layout::Torch, &l, 2, ForgetBias::Folded);
        let names: Vec<_> = e.arrays.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "weight_ih_l2",
                "weight_hh_l2",
                "bias_ih_l2",
                "bias_hh_l2",
                "weight_hr_l2"
            ]
        );
        assert_eq!(
            round_trip(Layout::Torch, &l, 2, ForgetBias::Folded),
            fold_forget_bias(&l, ForgetBias::Folded)
        );
    }

    #[test]
    fn proj_size_must_match_weight_hr() {
        let e = import_error(Layout::Torch, &projected(), |o| {
            o.insert("proj_size".into(), 3.into());
        });
        assert_eq!(
            e,
            "weight_hr_l0 (options.proj_size = 3): expected shape [3, 2], got [1, 2]"
        );
    }
}
