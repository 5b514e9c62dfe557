//! `keras`: the Keras `LSTM` layer's weights, as `layer.get_weights()`
//! returns them.
//!
//! Arrays: `kernel [I,4U]`, `recurrent_kernel [U,4U]`, `bias [4U]`. Gate
//! order i, f, c, o; sequences batch-major. No peepholes, `cell_clip` or
//! projection, no `forget_bias` option (it is folded; `unit_forget_bias`
//! only initialises the bias), and one `activation` for the cell candidate
//! and the output. `hard_sigmoid` is a different function in Keras 2 and
//! Keras 3: the options say which (`"keras2"`, `"keras3"`, or `null` where
//! no activation is a `hard_sigmoid`).

use serde::{Deserialize, Serialize};

use super::activation::{keras_activation, KerasHardSigmoid};
use super::arrays::{mat, named, vec1, Named};
use super::{declared_units, required, Arrays, Lacks, LayerLayout, LayerOption, Layout, Masks};
use crate::dialect::{self, keras, DialectError};
use crate::lstm::{Activation, Gate, Layer, Real};

/// The `keras` layout.
pub(super) struct Keras;

/// A `keras` layer's options: the `LSTM` layer's arguments.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KerasOptions {
    units: usize,
    /// The Keras name of the cell and output activation.
    activation: String,
    /// The Keras name of the gate activation.
    recurrent_activation: String,
    #[serde(deserialize_with = "required")]
    hard_sigmoid: Option<KerasHardSigmoid>,
}

impl LayerLayout for Keras {
    const LAYOUT: Layout = Layout::Keras;
    const GATE_ORDER: [Gate; 4] = keras::GATE_ORDER;
    const GATE_NAMES: [&'static str; 4] = ["i", "f", "c", "o"];
    const TIME_MAJOR: bool = false;
    const FORGET_BIAS: bool = false;
    const MASKS: Masks = Masks::Any;
    const FORWARD_ONLY: Option<&'static str> = None;
    type Options = KerasOptions;

    fn check_layer<T: Real>(layer: &Layer<T>) -> Result<(), Lacks> {
        Lacks::no_peepholes_or_cell_clip::<Self, T>(layer)?;
        if layer.projection.is_some() {
            return Lacks::option::<Self>(LayerOption::Projection);
        }
        if layer.cell_activation != layer.output_activation {
            return Err(Lacks::KerasOneActivation);
        }
        let hard = [layer.gate_activation, layer.cell_activation];
        if hard.contains(&Activation::HardSigmoidLinear)
            && hard.contains(&Activation::HardSigmoidRelu6)
        {
            return Err(Lacks::KerasBothHardSigmoids);
        }
        Ok(())
    }

    fn export<T: Real>(layer: &Layer<T>, _: usize) -> (KerasOptions, Named<T>) {
        let mut plain = layer.clone();
        plain.peepholes = None;
        plain.cell_clip = None;
        plain.projection = None;
        let w = keras::weights_from_canonical(&plain).expect("checked: Keras can express it");
        let arrays = vec![
            named("kernel", w.kernel),
            named("recurrent_kernel", w.recurrent_kernel),
            named("bias", w.bias),
        ];
        let (activation, k1) = keras_activation(layer.cell_activation);
        let (recurrent_activation, k2) = keras_activation(layer.gate_activation);
        let options = KerasOptions {
            units: layer.units(),
            activation: activation.into(),
            recurrent_activation: recurrent_activation.into(),
            hard_sigmoid: k1.or(k2),
        };
        (options, arrays)
    }

    fn import<T: Real>(
        options: KerasOptions,
        arrays: &Arrays<T>,
        _: usize,
    ) -> Result<Layer<T>, DialectError> {
        let order = Self::GATE_ORDER;
        let mut l = Layer::new(
            dialect::blocks_to_canonical(mat(arrays, "kernel")?.view(), order),
            dialect::blocks_to_canonical(mat(arrays, "recurrent_kernel")?.view(), order),
            dialect::vector_to_canonical(vec1(arrays, "bias")?.view(), order),
        );
        let major = Some(options.hard_sigmoid.map_or(3, KerasHardSigmoid::major));
        l.gate_activation = dialect::activation(&options.recurrent_activation, major)?;
        l.cell_activation = dialect::activation(&options.activation, major)?;
        l.output_activation = l.cell_activation;
        declared_units::<Self, T>("units", options.units, l)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{import_error, layer, round_trip};
    use super::super::{fold_forget_bias, ForgetBias, Layout};
    use crate::lstm::Activation;

    #[test]
    fn each_keras_hard_sigmoid_round_trips() {
        for hard in [Activation::HardSigmoidLinear, Activation::HardSigmoidRelu6] {
            let mut l = layer(3, 2, 0.5);
            l.gate_activation = hard;
            let back = round_trip(Layout::Keras, &l, 0, ForgetBias::Folded);
            assert_eq!(back, fold_forget_bias(&l, ForgetBias::Folded), "{hard:?}");
        }
    }

    #[test]
    fn hard_sigmoid_is_keras2_keras3_or_null() {
        let e = import_error(Layout::Keras, &layer(3, 2, 0.5), |o| {
            o.insert("hard_sigmoid".into(), "keras1".into());
        });
        assert!(e.contains("unknown variant `keras1`"), "{e}");
    }
}
