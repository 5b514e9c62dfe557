//! The LSTM in float16 or bfloat16, emulated: the canonical formula with
//! every value rounded where a 16-bit CPU kernel rounds it. It is what the
//! Rust LSTM is held to against a framework's own float16 and bfloat16
//! runs (`docs/semantics.md`, "Reduced precision").
//!
//! Arithmetic is done in `f64` and each result rounded to the precision
//! (to nearest, ties to even). An element-wise `f32` operation on 16-bit
//! values followed by a conversion to 16 bits gives the same bits, since
//! `f32` has more than twice the 16-bit mantissa plus two bits, so this
//! is exactly what a kernel that computes in `f32` and stores 16 bits
//! does. The rounding points, the same for every form:
//!
//! * weights, inputs and initial states are rounded first (a framework
//!   casts `float32` variables to the compute type at use);
//! * each matrix product as [`Products`] says (an `f32` product is
//!   converted to bfloat16 by truncation, as TensorFlow's `MatMul` does);
//! * `f32` results below the smallest normal `f32` are flushed to zero;
//! * each addition and multiplication of the cell, and `forget_bias`
//!   itself;
//! * `sigmoid(x)` as `e / (1 + e)` with `e = exp(x)`, each of the three
//!   rounded (Eigen's logistic with every packet operation in 16 bits);
//!   the hard sigmoids operation by operation as Keras writes them
//!   (`relu6(x + 3) / 6`, `clip(0.2 * x + 0.5, 0, 1)`); other activations
//!   are rounded once;
//! * a cell or projection clip bound is rounded; clipping itself is exact.

use ndarray::{Array1, Array2, Array3};

use super::{oracle, Activation, Gate, Layer, RunOutput, Sequence, ShapeError, State, StepTrace};

/// A reduced floating-point precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    /// IEEE half precision: 10 mantissa bits.
    Float16,
    /// bfloat16: float32's exponent, 7 mantissa bits.
    BFloat16,
}

impl Precision {
    /// Both, bfloat16 first.
    pub const ALL: [Precision; 2] = [Precision::BFloat16, Precision::Float16];

    /// `v` rounded to this precision (to nearest, ties to even), widened.
    pub fn round(self, v: f64) -> f64 {
        match self {
            Precision::Float16 => f64::from(half::f16::from_f64(v)),
            Precision::BFloat16 => f64::from(half::bf16::from_f64(v)),
        }
    }

    /// A matrix product's `f32` sum converted to this precision: to
    /// nearest for float16, **truncated** for bfloat16 (TensorFlow's
    /// `MatMul` converts its `float` result with `FloatToBFloat16`, which
    /// drops the low 16 bits).
    pub fn from_f32_sum(self, v: f32) -> f64 {
        match self {
            Precision::Float16 => f64::from(half::f16::from_f32(v)),
            Precision::BFloat16 => f64::from(f32::from_bits(v.to_bits() & 0xFFFF_0000)),
        }
    }

    /// The spacing of this precision's values at `scale`: one unit in the
    /// last place of a number of that magnitude (`2^-10` or `2^-7` times
    /// its power of two).
    pub fn ulp_at(self, scale: f64) -> f64 {
        let bits = match self {
            Precision::Float16 => 10,
            Precision::BFloat16 => 7,
        };
        let exponent = if scale > 0.0 {
            scale.log2().floor()
        } else {
            -24.0
        };
        2f64.powf(exponent - f64::from(bits))
    }

    /// `"float16"` or `"bfloat16"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float16 => "float16",
            Precision::BFloat16 => "bfloat16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a 16-bit kernel forms the gate pre-activations `x·W + h·U + b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Products {
    /// Two products, each summed in `f32` and converted, added, then the
    /// bias added: `r(r(r(x·W) + r(h·U)) + b)`.
    Separate,
    /// The same products, the bias added to the input's first:
    /// `r(r(r(x·W) + b) + r(h·U))`.
    SeparateBiasFirst,
    /// One product over `[x, h]`, summed in `f32` and converted, then the
    /// bias: `r(r([x, h]·[W; U]) + b)`.
    Joint,
    /// One product over `[x, h]` whose sums are kept in 16 bits: the
    /// columns in whole blocks of 8 (of the `4*units`) add each rounded
    /// product to a rounded sum, `s = r(s + r(x·w))`; the last `4*units
    /// mod 8` columns add each exact product, `s = r(s + x·w)`. Float16
    /// only. Then the bias: `r(s + b)`.
    Accumulating16,
}

/// Run `layers` over `seq` in `precision`, with the gate products formed
/// as `products` says. Inputs, states and weights are `f32` values; every
/// result is a value of `precision`.
///
/// # Errors
/// A [`ShapeError`] when the layers, inputs, states or mask do not fit.
pub fn run(
    layers: &[Layer<f32>],
    seq: &Sequence<f32>,
    precision: Precision,
    products: Products,
) -> Result<RunOutput<f32>, ShapeError> {
    let r = |v: f32| precision.round(f64::from(v));
    let layers: Vec<Layer<f64>> = layers.iter().map(|l| rounded_layer(l, precision)).collect();
    let inputs: Array3<f64> = seq.inputs.mapv(r);
    let initial: Option<Vec<State<f64>>> = seq.initial_state.map(|states| {
        states
            .iter()
            .map(|s| State {
                c: s.c.mapv(r),
                h: s.h.mapv(r),
            })
            .collect()
    });
    let wide = Sequence {
        inputs: inputs.view(),
        initial_state: initial.as_deref(),
        mask: seq.mask.as_ref().map(|m| m.view()),
        masked_output: seq.masked_output,
        reverse: seq.reverse,
    };
    let cell = Cell {
        precision,
        products,
    };
    let out = oracle::run_steps(&layers, &wide, &|layer, x, c, h| cell.step(layer, x, c, h))?;
    let narrow = |a: &Array3<f64>| a.mapv(|v| v as f32);
    let narrow2 = |a: &Array2<f64>| a.mapv(|v| v as f32);
    Ok(RunOutput {
        outputs: narrow(&out.outputs),
        final_state: out
            .final_state
            .iter()
            .map(|s| State {
                c: narrow2(&s.c),
                h: narrow2(&s.h),
            })
            .collect(),
        trace: out
            .trace
            .iter()
            .map(|t| StepTrace {
                c: narrow(&t.c),
                h: narrow(&t.h),
            })
            .collect(),
    })
}

/// `layer` with every weight, bias, `forget_bias` and clip bound rounded.
fn rounded_layer(layer: &Layer<f32>, p: Precision) -> Layer<f64> {
    let r = |v: f32| p.round(f64::from(v));
    let mut l = Layer::new(layer.w_x.mapv(r), layer.w_h.mapv(r), layer.bias.mapv(r));
    l.forget_bias = r(layer.forget_bias);
    l.cell_clip = layer.cell_clip.map(r);
    l.gate_activation = layer.gate_activation;
    l.cell_activation = layer.cell_activation;
    l.output_activation = layer.output_activation;
    l.peepholes = layer.peepholes.as_ref().map(|q| super::Peepholes {
        input: q.input.mapv(r),
        forget: q.forget.mapv(r),
        output: q.output.mapv(r),
    });
    l.projection = layer.projection.as_ref().map(|q| super::Projection {
        kernel: q.kernel.mapv(r),
        clip: q.clip.map(r),
    });
    l
}

/// One step of one row, rounded.
struct Cell {
    precision: Precision,
    products: Products,
}

/// The smallest normal `f32`: smaller results of an `f32` operation are
/// flushed to zero (TensorFlow sets flush-to-zero), which matters for
/// bfloat16 only (its values reach that far down).
const F32_MIN_NORMAL: f64 = 1.1754943508222875e-38;

fn flush(v: f64) -> f64 {
    if v.abs() < F32_MIN_NORMAL {
        0.0 * v.signum()
    } else {
        v
    }
}

impl Cell {
    fn r(&self, v: f64) -> f64 {
        self.precision.round(flush(v))
    }

    fn activate(&self, a: Activation, x: f64) -> f64 {
        match a {
            Activation::Sigmoid => {
                let e = self.r(x.exp());
                if e.is_infinite() {
                    1.0
                } else {
                    self.r(e / self.r(1.0 + e))
                }
            }
            // Keras 3: relu6(x + 3) / 6, each operation in 16 bits.
            Activation::HardSigmoidRelu6 => self.r(self.r(x + 3.0).clamp(0.0, 6.0) / 6.0),
            // tf-keras: clip(0.2 * x + 0.5, 0, 1), 0.2 itself in 16 bits.
            Activation::HardSigmoidLinear => self.r(self.r(self.r(0.2) * x) + 0.5).clamp(0.0, 1.0),
            other => self.r(other.apply_f64(x)),
        }
    }

    /// `sum(a[k] * b[k])` as an `f32` GEMM gives it (modelled as the exact
    /// sum rounded once to `f32`; a blocked GEMM's order differs from it in
    /// the last `f32` place at most, rarely seen in 16 bits), converted.
    fn product(&self, terms: impl Iterator<Item = (f64, f64)>) -> f64 {
        let sum: f64 = terms.map(|(a, b)| a * b).sum();
        self.precision.from_f32_sum(flush(sum) as f32)
    }

    /// The pre-activations `x·W + h·U + b` of every column.
    fn pre_activations(&self, layer: &Layer<f64>, x: &[f64], h: &[f64]) -> Vec<f64> {
        let columns = layer.bias.len();
        // The terms of `x·W` and of `h·U` in one column.
        let xs = |col: usize| {
            x.iter()
                .enumerate()
                .map(move |(k, &v)| (v, layer.w_x[[k, col]]))
        };
        let hs = |col: usize| {
            h.iter()
                .enumerate()
                .map(move |(k, &v)| (v, layer.w_h[[k, col]]))
        };
        let separate = |col: usize| (self.product(xs(col)), self.product(hs(col)));
        (0..columns)
            .map(|col| {
                let z = match self.products {
                    Products::Separate => {
                        let (xw, hu) = separate(col);
                        self.r(xw + hu)
                    }
                    Products::SeparateBiasFirst => {
                        let (xw, hu) = separate(col);
                        return self.r(self.r(xw + layer.bias[col]) + hu);
                    }
                    Products::Joint => self.product(xs(col).chain(hs(col))),
                    Products::Accumulating16 => {
                        let in_blocks = col < columns - columns % 8;
                        xs(col).chain(hs(col)).fold(0.0, |s, (a, w)| {
                            let term = if in_blocks { self.r(a * w) } else { a * w };
                            self.r(s + term)
                        })
                    }
                };
                self.r(z + layer.bias[col])
            })
            .collect()
    }

    fn step(
        &self,
        layer: &Layer<f64>,
        x: &[f64],
        c_prev: &[f64],
        h_prev: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let units = layer.units();
        let z = self.pre_activations(layer, x, h_prev);
        let at = |gate: Gate, j: usize| z[gate.columns(units).start + j];
        let peep =
            |which: fn(&super::Peepholes<f64>) -> &Array1<f64>, j: usize, c: f64, pre: f64| {
                layer
                    .peepholes
                    .as_ref()
                    .map_or(pre, |p| self.r(pre + self.r(which(p)[j] * c)))
            };
        let clip = |c: f64| layer.cell_clip.map_or(c, |b| c.max(-b).min(b));
        let gate = layer.gate_activation;
        let mut c = vec![0.0; units];
        let mut m = vec![0.0; units];
        for j in 0..units {
            let i = self.activate(gate, peep(|p| &p.input, j, c_prev[j], at(Gate::I, j)));
            let f_pre = self.r(at(Gate::F, j) + layer.forget_bias);
            let f = self.activate(gate, peep(|p| &p.forget, j, c_prev[j], f_pre));
            let g = self.activate(layer.cell_activation, at(Gate::G, j));
            c[j] = clip(self.r(self.r(f * c_prev[j]) + self.r(i * g)));
            let o = self.activate(gate, peep(|p| &p.output, j, c[j], at(Gate::O, j)));
            m[j] = self.r(o * self.activate(layer.output_activation, c[j]));
        }
        let h = match &layer.projection {
            None => m,
            Some(p) => (0..p.kernel.ncols())
                .map(|q| {
                    let v = self.product(m.iter().enumerate().map(|(j, &v)| (v, p.kernel[[j, q]])));
                    p.clip.map_or(v, |b| v.max(-b).min(b))
                })
                .collect(),
        };
        (c, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfloat16_products_are_truncated_and_float16_ones_rounded() {
        // 1 + 0.75 ulp: truncated to 1 in bfloat16, rounded up otherwise.
        let v = 1.0 + 2f32.powi(-8) + 2f32.powi(-9);
        assert_eq!(Precision::BFloat16.from_f32_sum(v), 1.0);
        assert_eq!(Precision::BFloat16.round(f64::from(v)), 1.0 + 2f64.powi(-7));
        let w = 1.0 + 2f32.powi(-11) + 2f32.powi(-12);
        assert_eq!(Precision::Float16.from_f32_sum(w), 1.0 + 2f64.powi(-10));
    }

    #[test]
    fn every_result_is_a_value_of_the_precision() {
        let mut layer = Layer::new(
            Array2::from_shape_fn((3, 8), |(a, b)| ((a * 8 + b) as f32 * 0.37).sin()),
            Array2::from_shape_fn((2, 8), |(a, b)| ((a * 8 + b) as f32 * 0.91).cos()),
            Array1::from_shape_fn(8, |k| k as f32 * 0.1),
        );
        layer.forget_bias = 1.0;
        let x = Array3::from_shape_fn((2, 4, 3), |(b, t, k)| {
            ((b + 2 * t + 3 * k) as f32 * 0.29).sin()
        });
        for p in Precision::ALL {
            for products in [Products::Separate, Products::Joint] {
                let out = run(&[layer.clone()], &Sequence::new(x.view()), p, products).unwrap();
                for v in out.outputs.iter().chain(out.final_state[0].c.iter()) {
                    assert_eq!(p.round(f64::from(*v)), f64::from(*v), "{p} {products:?}");
                }
            }
        }
    }
}
