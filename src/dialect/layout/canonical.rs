//! `canonical`: this crate's own [`Layer`], array for array.
//!
//! Arrays: `w_x [I,4U]`, `w_h [H,4U]`, `bias [4U]`, with
//! `peephole_i`/`peephole_f`/`peephole_o [U]` and `projection [U,P]` where
//! the layer has them. Gate order i, f, g, o; sequences batch-major.
//! Every option is expressible: `forget_bias` (kept or folded), `cell_clip`,
//! `proj_clip` and the three activations by [`activation_name`].
//!
//! [`activation_name`]: super::activation_name

use serde::{Deserialize, Serialize};

use super::activation::by_name;
use super::arrays::{mat, named, named_peepholes, peepholes, projection, vec1, Named};
use super::{declared_units, required, Arrays, Lacks, LayerLayout, Layout, Masks};
use crate::dialect::DialectError;
use crate::lstm::{Activation, Gate, Layer, Real};

/// The peephole vectors' names (input, forget, output gate).
const PEEPHOLES: [&str; 3] = ["peephole_i", "peephole_f", "peephole_o"];

/// The `canonical` layout.
pub(super) struct Canonical;

/// A `canonical` layer's options.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CanonicalOptions {
    units: usize,
    forget_bias: f64,
    #[serde(deserialize_with = "required")]
    cell_clip: Option<f64>,
    #[serde(deserialize_with = "required")]
    proj_clip: Option<f64>,
    #[serde(with = "by_name")]
    gate_activation: Activation,
    #[serde(with = "by_name")]
    cell_activation: Activation,
    #[serde(with = "by_name")]
    output_activation: Activation,
}

impl LayerLayout for Canonical {
    const LAYOUT: Layout = Layout::Canonical;
    const GATE_ORDER: [Gate; 4] = Gate::ALL;
    const GATE_NAMES: [&'static str; 4] = ["i", "f", "g", "o"];
    const TIME_MAJOR: bool = false;
    const FORGET_BIAS: bool = true;
    const MASKS: Masks = Masks::Any;
    const FORWARD_ONLY: Option<&'static str> = None;
    type Options = CanonicalOptions;

    fn check_layer<T: Real>(_: &Layer<T>) -> Result<(), Lacks> {
        Ok(())
    }

    fn export<T: Real>(layer: &Layer<T>, _: usize) -> (CanonicalOptions, Named<T>) {
        let mut arrays = vec![
            named("w_x", layer.w_x.clone()),
            named("w_h", layer.w_h.clone()),
            named("bias", layer.bias.clone()),
        ];
        if let Some(p) = &layer.peepholes {
            arrays.extend(named_peepholes(PEEPHOLES, p));
        }
        if let Some(p) = &layer.projection {
            arrays.push(named("projection", p.kernel.clone()));
        }
        let options = CanonicalOptions {
            units: layer.units(),
            forget_bias: layer.forget_bias.widen(),
            cell_clip: layer.cell_clip.map(T::widen),
            proj_clip: layer.projection.as_ref().and_then(|p| p.clip).map(T::widen),
            gate_activation: layer.gate_activation,
            cell_activation: layer.cell_activation,
            output_activation: layer.output_activation,
        };
        (options, arrays)
    }

    fn import<T: Real>(
        options: CanonicalOptions,
        arrays: &Arrays<T>,
        _: usize,
    ) -> Result<Layer<T>, DialectError> {
        let f = T::from_f64_lossy;
        let mut l = Layer::new(
            mat(arrays, "w_x")?,
            mat(arrays, "w_h")?,
            vec1(arrays, "bias")?,
        );
        l.forget_bias = f(options.forget_bias);
        l.cell_clip = options.cell_clip.map(f);
        l.gate_activation = options.gate_activation;
        l.cell_activation = options.cell_activation;
        l.output_activation = options.output_activation;
        if arrays.contains_key(PEEPHOLES[0]) {
            l.peepholes = Some(peepholes(arrays, PEEPHOLES)?);
        }
        l.projection = projection(arrays, "projection", options.proj_clip)?;
        declared_units::<Self, T>("units", options.units, l)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{round_trip, with_projection};
    use super::super::{ForgetBias, Layout};
    use crate::lstm::Activation;

    #[test]
    fn every_option_round_trips() {
        let mut l = with_projection();
        l.gate_activation = Activation::HardSigmoidLinear;
        l.output_activation = Activation::Relu;
        assert_eq!(round_trip(Layout::Canonical, &l, 0, ForgetBias::Kept), l);
    }
}
