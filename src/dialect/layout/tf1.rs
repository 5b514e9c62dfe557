//! `tf1`: TF1 `LSTMCell` (and `BasicLSTMCell`, `LSTMCell` without its
//! options), the variables as a TF1 checkpoint holds them.
//!
//! Arrays: `kernel [I+H,4U]` (one kernel over `[x, h]`), `bias [4U]`, with
//! `w_i_diag`/`w_f_diag`/`w_o_diag [U]` when `use_peepholes` and
//! `projection/kernel [U,P]` when `num_proj` is set. Gate order i, j, f, o
//! (j is the cell candidate); sequences batch-major. `forget_bias` is the
//! cell's own option (kept or folded). TF1 cells have a sigmoid gate and
//! one `activation` for both the cell candidate and the output.

use serde::{Deserialize, Serialize};

use super::activation::activations;
use super::activation::by_name;
use super::arrays::{mat, named, named_peepholes, peepholes, projection, vec1, Named};
use super::{declared_units, required, Arrays, Lacks, LayerLayout, Layout, Masks};
use crate::dialect::{tf1, DialectError};
use crate::lstm::{Activation, Gate, Layer, Real};

/// The peephole vectors' names (input, forget, output gate).
const PEEPHOLES: [&str; 3] = ["w_i_diag", "w_f_diag", "w_o_diag"];

/// The `tf1` layout.
pub(super) struct Tf1;

/// A `tf1` layer's options: the `LSTMCell` arguments.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Tf1Options {
    num_units: usize,
    forget_bias: f64,
    #[serde(with = "by_name")]
    activation: Activation,
    use_peepholes: bool,
    #[serde(deserialize_with = "required")]
    cell_clip: Option<f64>,
    #[serde(deserialize_with = "required")]
    num_proj: Option<usize>,
    #[serde(deserialize_with = "required")]
    proj_clip: Option<f64>,
}

impl LayerLayout for Tf1 {
    const LAYOUT: Layout = Layout::Tf1;
    const GATE_ORDER: [Gate; 4] = tf1::GATE_ORDER;
    const GATE_NAMES: [&'static str; 4] = ["i", "f", "j", "o"];
    const TIME_MAJOR: bool = false;
    const FORGET_BIAS: bool = true;
    const MASKS: Masks = Masks::Any;
    const FORWARD_ONLY: Option<&'static str> = None;
    type Options = Tf1Options;

    fn check_layer<T: Real>(layer: &Layer<T>) -> Result<(), Lacks> {
        if layer.gate_activation != Activation::Sigmoid
            || layer.cell_activation != layer.output_activation
            || !matches!(
                layer.cell_activation,
                Activation::Tanh | Activation::Sigmoid | Activation::Relu | Activation::Linear
            )
        {
            return Err(Lacks::Tf1Activations(activations(layer)));
        }
        Ok(())
    }

    fn export<T: Real>(layer: &Layer<T>, _: usize) -> (Tf1Options, Named<T>) {
        let (kernel, bias) = tf1::kernel_from_canonical(layer);
        let mut arrays = vec![named("kernel", kernel), named("bias", bias)];
        if let Some(p) = &layer.peepholes {
            arrays.extend(named_peepholes(PEEPHOLES, p));
        }
        if let Some(p) = &layer.projection {
            arrays.push(named("projection/kernel", p.kernel.clone()));
        }
        let options = Tf1Options {
            num_units: layer.units(),
            forget_bias: layer.forget_bias.widen(),
            activation: layer.cell_activation,
            use_peepholes: layer.peepholes.is_some(),
            cell_clip: layer.cell_clip.map(T::widen),
            num_proj: layer.projection.as_ref().map(|p| p.kernel.ncols()),
            proj_clip: layer.projection.as_ref().and_then(|p| p.clip).map(T::widen),
        };
        (options, arrays)
    }

    fn import<T: Real>(
        options: Tf1Options,
        arrays: &Arrays<T>,
        _: usize,
    ) -> Result<Layer<T>, DialectError> {
        let f = T::from_f64_lossy;
        let kernel = mat(arrays, "kernel")?;
        let bias = vec1(arrays, "bias")?;
        let h_depth = options.num_proj.unwrap_or(bias.len() / 4);
        let input = kernel
            .nrows()
            .checked_sub(h_depth)
            .ok_or_else(|| DialectError::Model("tf1 kernel has fewer rows than h_depth".into()))?;
        let (w_x, w_h, bias) = tf1::kernel_to_canonical(&kernel, &bias, input);
        let mut l = Layer::new(w_x, w_h, bias);
        l.forget_bias = f(options.forget_bias);
        l.cell_clip = options.cell_clip.map(f);
        l.cell_activation = options.activation;
        l.output_activation = options.activation;
        if options.use_peepholes {
            l.peepholes = Some(peepholes(arrays, PEEPHOLES)?);
        }
        l.projection = projection(arrays, "projection/kernel", options.proj_clip)?;
        declared_units::<Self, T>("num_units", options.num_units, l)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{import_error, layer, round_trip, with_projection};
    use super::super::{ForgetBias, Layout};

    #[test]
    fn peepholes_clips_and_the_projection_round_trip() {
        let l = with_projection();
        assert_eq!(round_trip(Layout::Tf1, &l, 0, ForgetBias::Kept), l);
    }

    #[test]
    fn an_unknown_activation_is_an_error() {
        let e = import_error(Layout::Tf1, &layer(3, 2, 0.5), |o| {
            o.insert("activation".into(), "swish".into());
        });
        assert!(
            e.contains("layout tf1: options: model: unknown activation \"swish\""),
            "{e}"
        );
    }
}
