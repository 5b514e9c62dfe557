//! Activation names: this crate's own (the `canonical` and `tf1` layouts),
//! Keras's (`hard_sigmoid` is two functions, told apart by the Keras
//! major version) and ONNX's (a name with `alpha` and `beta`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DialectError;
use crate::lstm::{Activation, Layer};

/// Every activation.
const ALL: [Activation; 6] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::Linear,
    Activation::HardSigmoidLinear,
    Activation::HardSigmoidRelu6,
];

/// This crate's name of an activation, as the `canonical` layout writes it.
pub fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
        Activation::Relu => "relu",
        Activation::Linear => "linear",
        Activation::HardSigmoidLinear => "hard_sigmoid_keras2",
        Activation::HardSigmoidRelu6 => "hard_sigmoid_keras3",
    }
}

/// A layer's gate, cell and output activation.
pub(super) fn activations<T>(layer: &Layer<T>) -> [Activation; 3] {
    [
        layer.gate_activation,
        layer.cell_activation,
        layer.output_activation,
    ]
}

fn activation_from_name(name: &str) -> Result<Activation, DialectError> {
    ALL.into_iter()
        .find(|a| activation_name(*a) == name)
        .ok_or_else(|| DialectError::Model(format!("unknown activation {name:?}")))
}

/// An [`Activation`] option as its [`activation_name`]
/// (`#[serde(with = "activation::by_name")]`).
pub(super) mod by_name {
    use super::*;

    pub fn serialize<S: Serializer>(a: &Activation, s: S) -> Result<S::Ok, S::Error> {
        activation_name(*a).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Activation, D::Error> {
        let name = String::deserialize(d)?;
        activation_from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// Which Keras's `hard_sigmoid` an export means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum KerasHardSigmoid {
    /// `clip(0.2 * x + 0.5, 0, 1)`.
    Keras2,
    /// `relu6(x + 3) / 6`.
    Keras3,
}

impl KerasHardSigmoid {
    /// The Keras major version.
    pub fn major(self) -> u8 {
        match self {
            KerasHardSigmoid::Keras2 => 2,
            KerasHardSigmoid::Keras3 => 3,
        }
    }
}

/// A Keras activation name and, for `hard_sigmoid`, which Keras's.
pub(super) fn keras_activation(a: Activation) -> (&'static str, Option<KerasHardSigmoid>) {
    match a {
        Activation::HardSigmoidLinear => ("hard_sigmoid", Some(KerasHardSigmoid::Keras2)),
        Activation::HardSigmoidRelu6 => ("hard_sigmoid", Some(KerasHardSigmoid::Keras3)),
        other => (activation_name(other), None),
    }
}

/// The Keras 3 `hard_sigmoid` as ONNX `HardSigmoid(alpha, beta)`:
/// `relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)`.
pub const KERAS3_HARD_SIGMOID_ALPHA: f64 = 1.0 / 6.0;

/// An activation as ONNX spells it: `{"name": "HardSigmoid", "alpha": a, "beta": b}`
/// (`alpha` and `beta` only where the function has them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxActivation {
    /// The ONNX name (`Sigmoid`, `Tanh`, `Relu`, `Affine`, `HardSigmoid`, ...).
    pub name: String,
    /// The first parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// The second parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
}

/// An activation as ONNX spells it.
pub fn onnx_activation(a: Activation) -> OnnxActivation {
    let (name, params) = match a {
        Activation::Sigmoid => ("Sigmoid", None),
        Activation::Tanh => ("Tanh", None),
        Activation::Relu => ("Relu", None),
        Activation::Linear => ("Affine", Some((1.0, 0.0))),
        Activation::HardSigmoidLinear => ("HardSigmoid", Some((0.2, 0.5))),
        Activation::HardSigmoidRelu6 => ("HardSigmoid", Some((KERAS3_HARD_SIGMOID_ALPHA, 0.5))),
    };
    OnnxActivation {
        name: name.into(),
        alpha: params.map(|p| p.0),
        beta: params.map(|p| p.1),
    }
}

impl OnnxActivation {
    /// The activation this is, within `1e-12` of each parameter.
    ///
    /// # Errors
    /// When no activation of this crate is this function.
    pub fn to_canonical(&self) -> Result<Activation, DialectError> {
        let near = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-12,
            (x, y) => x.is_none() && y.is_none(),
        };
        ALL.into_iter()
            .find(|&a| {
                let c = onnx_activation(a);
                c.name == self.name && near(c.alpha, self.alpha) && near(c.beta, self.beta)
            })
            .ok_or_else(|| {
                DialectError::Model(format!(
                    "ONNX activation {} has no canonical equivalent",
                    serde_json::to_value(self).expect("plain JSON")
                ))
            })
    }
}
