//! `onnx` and `onnx-layout1`: the inputs of the ONNX `LSTM` operator, one
//! direction, `layout = 0` (time-major) or `layout = 1` (batch-major).
//!
//! Arrays: `W [1,4U,I]`, `R [1,4U,U]`, `B [1,8U]` (`[Wb, Rb]`, each half of
//! the canonical bias) and, with peepholes, `P [1,3U]` in the order i, o,
//! f. Gate order i, o, f, c. Options: `hidden_size`, the three
//! `activations` (gate, cell, output) as ONNX names with `alpha`/`beta`,
//! and `layout`. ONNX has no `forget_bias` (it is folded) and no
//! projection; its `clip` bounds the gate pre-activations, not the cell
//! state, so `cell_clip` cannot be expressed. Masks are per-row
//! `sequence_lens`, past which `Y` is zero.

use ndarray::{concatenate, s, Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::activation::activations;
use super::arrays::{from_gate_rows, gate_rows, get, half, named, squeeze0, Named};
use super::{
    declared_units, onnx_activation, Arrays, Lacks, LayerLayout, LayerOption, Layout, Masks,
    OnnxActivation,
};
use crate::dialect::{self, DialectError};
use crate::lstm::{Gate, Layer, Peepholes, Real};

/// ONNX gate order: i, o, f, c (onnx `docs/Operators.md`, LSTM).
pub const ONNX_ORDER: [Gate; 4] = [Gate::I, Gate::O, Gate::F, Gate::G];

/// The ONNX layout with the operator's `layout` attribute `LAYOUT` (0 or 1).
pub(super) struct Onnx<const LAYOUT: u8>;

/// An ONNX layer's options: the operator's attributes.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OnnxOptions {
    hidden_size: usize,
    /// Gate (f), cell (g) and output (h) activation.
    activations: [OnnxActivation; 3],
    layout: u8,
}

impl<const LAYOUT: u8> LayerLayout for Onnx<LAYOUT> {
    const LAYOUT: Layout = if LAYOUT == 0 {
        Layout::Onnx
    } else {
        Layout::OnnxLayout1
    };
    const GATE_ORDER: [Gate; 4] = ONNX_ORDER;
    const GATE_NAMES: [&'static str; 4] = ["i", "f", "c", "o"];
    const TIME_MAJOR: bool = LAYOUT == 0;
    const FORGET_BIAS: bool = false;
    const MASKS: Masks = Masks::Lengths {
        writer: "the ONNX LSTM (its Y past sequence_lens)",
    };
    const FORWARD_ONLY: Option<&'static str> = None;
    type Options = OnnxOptions;

    fn check_layer<T: Real>(layer: &Layer<T>) -> Result<(), Lacks> {
        if layer.cell_clip.is_some() {
            return Err(Lacks::OnnxCellClip);
        }
        if layer.projection.is_some() {
            return Lacks::option::<Self>(LayerOption::Projection);
        }
        Ok(())
    }

    fn export<T: Real>(layer: &Layer<T>, _: usize) -> (OnnxOptions, Named<T>) {
        let one_direction = |a: Array2<T>| a.insert_axis(Axis(0));
        let halves = half(&dialect::vector_from_canonical(
            layer.bias.view(),
            ONNX_ORDER,
        ));
        let b = concatenate(Axis(0), &[halves.view(), halves.view()]).expect("vectors");
        let mut arrays = vec![
            named("W", one_direction(gate_rows(layer.w_x.view(), ONNX_ORDER))),
            named("R", one_direction(gate_rows(layer.w_h.view(), ONNX_ORDER))),
            named("B", b.insert_axis(Axis(0))),
        ];
        if let Some(p) = &layer.peepholes {
            let p = concatenate(Axis(0), &[p.input.view(), p.output.view(), p.forget.view()])
                .expect("vectors");
            arrays.push(named("P", p.insert_axis(Axis(0))));
        }
        let options = OnnxOptions {
            hidden_size: layer.units(),
            activations: activations(layer).map(onnx_activation),
            layout: LAYOUT,
        };
        (options, arrays)
    }

    fn import<T: Real>(
        options: OnnxOptions,
        arrays: &Arrays<T>,
        _: usize,
    ) -> Result<Layer<T>, DialectError> {
        if options.layout != LAYOUT {
            return Err(DialectError::Model(format!(
                "layout {}: options.layout is {}, not {LAYOUT}",
                Self::LAYOUT,
                options.layout
            )));
        }
        let w: Array2<T> = squeeze0(arrays, "W")?;
        let r: Array2<T> = squeeze0(arrays, "R")?;
        let b: Array1<T> = squeeze0(arrays, "B")?;
        let units = w.nrows() / 4;
        if b.len() != 8 * units {
            return Err(DialectError::Shape {
                what: "B".into(),
                expected: vec![1, 8 * units],
                got: get(arrays, "B")?.shape().to_vec(),
            });
        }
        let bias = &b.slice(s![..4 * units]) + &b.slice(s![4 * units..]);
        let mut l = Layer::new(
            from_gate_rows(w, ONNX_ORDER),
            from_gate_rows(r, ONNX_ORDER),
            dialect::vector_to_canonical(bias.view(), ONNX_ORDER),
        );
        if arrays.contains_key("P") {
            let p: Array1<T> = squeeze0(arrays, "P")?;
            l.peepholes = Some(Peepholes {
                input: p.slice(s![..units]).to_owned(),
                output: p.slice(s![units..2 * units]).to_owned(),
                forget: p.slice(s![2 * units..]).to_owned(),
            });
        }
        let [gate, cell, output] = &options.activations;
        l.gate_activation = gate.to_canonical()?;
        l.cell_activation = cell.to_canonical()?;
        l.output_activation = output.to_canonical()?;
        declared_units::<Self, T>("hidden_size", options.hidden_size, l)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2};
    use serde_json::json;

    use super::super::tests::{import_error, round_trip, with_peepholes};
    use super::super::{export_layer, fold_forget_bias, ForgetBias, Layout};
    use crate::lstm::{Activation, Layer};

    #[test]
    fn gate_blocks_are_i_o_f_c_and_the_bias_is_split_in_halves() {
        let mut l = Layer::new(
            Array2::from_shape_fn((1, 4), |(_, c)| c as f64),
            Array2::zeros((1, 4)),
            Array1::from(vec![10.0, 20.0, 30.0, 40.0]),
        );
        l.forget_bias = 1.0;
        let e = export_layer(Layout::Onnx, &l, 0, ForgetBias::Folded);
        let w = &e.arrays[0].1;
        assert_eq!(
            w.iter().copied().collect::<Vec<_>>(),
            vec![0.0, 3.0, 1.0, 2.0]
        );
        let b = &e.arrays[2].1;
        assert_eq!(
            b.iter().copied().collect::<Vec<_>>(),
            vec![5.0, 20.0, 10.5, 15.0, 5.0, 20.0, 10.5, 15.0]
        );
    }

    #[test]
    fn peepholes_and_parameterised_activations_round_trip() {
        let mut l = with_peepholes();
        l.cell_clip = None;
        l.gate_activation = Activation::HardSigmoidRelu6;
        l.cell_activation = Activation::Linear;
        for layout in [Layout::Onnx, Layout::OnnxLayout1] {
            assert_eq!(
                round_trip(layout, &l, 0, ForgetBias::Folded),
                fold_forget_bias(&l, ForgetBias::Folded),
                "{layout}"
            );
        }
    }

    #[test]
    fn the_layout_attribute_must_be_the_layouts() {
        let e = import_error(Layout::OnnxLayout1, &with_peepholes(), |o| {
            o.insert("layout".into(), 0.into());
        });
        assert_eq!(e, "model: layout onnx-layout1: options.layout is 0, not 1");
    }

    #[test]
    fn an_activation_without_a_canonical_equivalent_is_an_error() {
        let mut l = with_peepholes();
        l.cell_clip = None;
        let e = import_error(Layout::Onnx, &l, |o| {
            o["activations"][0] = json!({"name": "HardSigmoid", "alpha": 0.3});
        });
        assert_eq!(
            e,
            r#"model: ONNX activation {"alpha":0.3,"name":"HardSigmoid"} has no canonical equivalent"#
        );
        let e = import_error(Layout::Onnx, &l, |o| {
            o["activations"][1] = json!({"name": "Tanh", "gamma": 1.0});
        });
        assert!(e.contains("unknown field `gamma`"), "{e}");
    }
}
