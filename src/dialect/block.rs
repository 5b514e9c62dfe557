//! TensorFlow's fused LSTM kernels: `tf.raw_ops.LSTMBlockCell`, `BlockLSTM`
//! and `BlockLSTMV2` (docs/semantics.md §5).
//!
//! Quirks handled here:
//! * gate order **i, c, f, o** for `LSTMBlockCell` and `BlockLSTM`, but
//!   **i, f, c, o** for `BlockLSTMV2`;
//! * `cell_clip <= 0` means no clipping, and an op called without
//!   `cell_clip` clips at the op default, **3.0** (`BlockLSTMV2`: 0.0, off);
//! * `BlockLSTMV2` has no `forget_bias` (the kernel adds 0);
//! * the sequence ops run `seq_len_max` steps for every row (no per-row
//!   length) and write zeros to `cs` and `h` after it;
//! * the ops return the gate activations `i`, `f`, `o`, `ci` (= tanh of the
//!   cell input) and `co` (= tanh of the clipped cell state).

use ndarray::{s, Array3, Axis};
use serde::Deserialize;

use super::{DialectError, Outputs, Tensors};
use crate::lstm::{self, Gate, Layer, Peepholes, Real, State};

/// Gate order of `LSTMBlockCell` and `BlockLSTM`: i, c (= g), f, o.
pub const ICFO: [Gate; 4] = [Gate::I, Gate::G, Gate::F, Gate::O];
/// Gate order of `BlockLSTMV2`: i, f, c (= g), o.
pub const IFCO: [Gate; 4] = [Gate::I, Gate::F, Gate::G, Gate::O];

/// Which op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Op {
    /// One step.
    #[serde(rename = "LSTMBlockCell")]
    LstmBlockCell,
    /// A sequence, ICFO.
    #[serde(rename = "BlockLSTM")]
    BlockLstm,
    /// A sequence, IFCO, no forget_bias.
    #[serde(rename = "BlockLSTMV2")]
    BlockLstmV2,
}

/// A case's `model` in the `block` dialect.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Which op.
    pub op: Op,
    /// The `forget_bias` attr as passed (`None`: the op default 1.0).
    #[serde(default)]
    pub forget_bias: Option<f64>,
    /// The `cell_clip` attr as passed (`None`: the op default).
    #[serde(default)]
    pub cell_clip: Option<f64>,
    /// The `use_peephole` attr.
    #[serde(default)]
    pub use_peephole: bool,
}

impl Model {
    /// `block.<op>`.
    pub fn api_name(&self) -> String {
        let op = match self.op {
            Op::LstmBlockCell => "LSTMBlockCell",
            Op::BlockLstm => "BlockLSTM",
            Op::BlockLstmV2 => "BlockLSTMV2",
        };
        format!("block.{op}")
    }

    /// One line: op and attrs.
    pub fn summary(&self) -> String {
        let mut s = self.api_name();
        if let Some(fb) = self.forget_bias {
            s.push_str(&format!(" forget_bias={fb}"));
        }
        match self.cell_clip {
            Some(c) => s.push_str(&format!(" cell_clip={c}")),
            None => s.push_str(" cell_clip=(op default)"),
        }
        if self.use_peephole {
            s.push_str(" use_peephole");
        }
        s
    }

    /// The clip the kernel applies: the attr, or the op's default when not
    /// passed; `None` when it is `<= 0`.
    pub fn effective_cell_clip(&self) -> Option<f64> {
        let clip = self.cell_clip.unwrap_or(match self.op {
            Op::LstmBlockCell | Op::BlockLstm => 3.0,
            Op::BlockLstmV2 => 0.0,
        });
        (clip > 0.0).then_some(clip)
    }

    fn gate_order(&self) -> [Gate; 4] {
        match self.op {
            Op::BlockLstmV2 => IFCO,
            _ => ICFO,
        }
    }

    /// The canonical layer reading `input` features, in float type `T`.
    ///
    /// # Errors
    /// A [`DialectError`] when a variable is missing or has the wrong shape.
    pub fn canonical_layer<T: Real>(
        &self,
        vars: &Tensors,
        input: usize,
    ) -> Result<Layer<T>, DialectError> {
        let b = super::float_tensor::<T>(vars, "b", DialectError::MissingVariable)?;
        if b.ndim() != 1 || b.len() % 4 != 0 || b.is_empty() {
            return Err(DialectError::Shape {
                what: "b".into(),
                expected: vec![4],
                got: b.shape().to_vec(),
            });
        }
        let units = b.len() / 4;
        let w = super::variable2::<T>(vars, "w", [input + units, 4 * units])?;
        let b = super::variable1::<T>(vars, "b", 4 * units)?;
        let order = self.gate_order();
        let mut layer = Layer::new(
            super::blocks_to_canonical(w.slice(s![..input, ..]), order),
            super::blocks_to_canonical(w.slice(s![input.., ..]), order),
            super::vector_to_canonical(b.view(), order),
        );
        let f = T::from_f64_lossy;
        layer.forget_bias = match (self.op, self.forget_bias) {
            (Op::BlockLstmV2, Some(_)) => {
                return Err(DialectError::Model(
                    "BlockLSTMV2 has no forget_bias attr".into(),
                ));
            }
            (Op::BlockLstmV2, None) => T::zero(),
            (_, fb) => f(fb.unwrap_or(1.0)),
        };
        layer.cell_clip = self.effective_cell_clip().map(f);
        // The ops always take wci/wcf/wco; they are read only with use_peephole.
        let peepholes = Peepholes {
            input: super::variable1(vars, "wci", units)?,
            forget: super::variable1(vars, "wcf", units)?,
            output: super::variable1(vars, "wco", units)?,
        };
        if self.use_peephole {
            layer.peepholes = Some(peepholes);
        }
        Ok(layer)
    }

    /// Run in float type `T`.
    ///
    /// # Errors
    /// A [`DialectError`] when variables or inputs are missing or do not fit.
    pub fn run<T: Real>(
        &self,
        vars: &Tensors,
        inputs: &Tensors,
        runner: &mut dyn super::Runner<T>,
    ) -> Result<Outputs<T>, DialectError> {
        let sequence = self.op != Op::LstmBlockCell;
        let mut allowed = vec!["x".to_string(), "cs_prev".into(), "h_prev".into()];
        if sequence {
            allowed.push("seq_len_max".into());
        }
        super::check_input_names(inputs, &allowed)?;

        // x as time-major [time, batch, input].
        let x: Array3<T> = if sequence {
            super::input3(inputs, "x")?
        } else {
            super::input_one_step(inputs, "x", 0)?
        };
        let (time, batch, input) = x.dim();
        let layer = self.canonical_layer::<T>(vars, input)?;
        let units = layer.units();
        let steps = if sequence {
            seq_len_max(inputs, time)?
        } else {
            1
        };
        let initial = State {
            c: super::input2(inputs, "cs_prev", [batch, units])?,
            h: super::input2(inputs, "h_prev", [batch, units])?,
        };

        let x_bm = x
            .slice(s![..steps, .., ..])
            .permuted_axes([1, 0, 2])
            .to_owned();
        let run = runner.run_step(&super::Step {
            name: "main".into(),
            layers: vec![layer.clone()],
            inputs: x_bm.clone(),
            initial_state: Some(vec![initial.clone()]),
            mask: None,
            masked_output: lstm::MaskedOutput::Zero,
            reverse: false,
            bidirectional: None,
            depends_on_earlier_steps: false,
            products: Some(crate::lstm::reduced::Products::Accumulating16),
        })?;

        // Gate activations per step, [steps, batch, units].
        let mut gates: [Array3<T>; 5] =
            std::array::from_fn(|_| Array3::zeros((steps, batch, units)));
        let trace = &run.trace[0];
        for t in 0..steps {
            let (c_prev, h_prev) = if t == 0 {
                (initial.c.view(), initial.h.view())
            } else {
                (
                    trace.c.index_axis(Axis(1), t - 1),
                    trace.h.index_axis(Axis(1), t - 1),
                )
            };
            let c = trace.c.index_axis(Axis(1), t);
            let g = lstm::step_gates(&layer, x_bm.index_axis(Axis(1), t), c_prev, h_prev, c);
            let co = c.mapv(|v| layer.output_activation.apply(v));
            for (k, a) in [g.i, g.f, g.o, g.g, co].into_iter().enumerate() {
                gates[k].index_axis_mut(Axis(0), t).assign(&a);
            }
        }
        let [i, f, o, ci, co] = gates;

        // cs and h over the whole time axis, zero after seq_len_max.
        let mut cs = Array3::<T>::zeros((time, batch, units));
        let mut h = Array3::<T>::zeros((time, batch, units));
        cs.slice_mut(s![..steps, .., ..])
            .assign(&trace.c.view().permuted_axes([1, 0, 2]));
        h.slice_mut(s![..steps, .., ..])
            .assign(&trace.h.view().permuted_axes([1, 0, 2]));

        let mut out = Outputs::new();
        let mut put = |name: &str, a: Array3<T>| {
            let a = if sequence {
                a.into_dyn()
            } else {
                a.index_axis(Axis(0), 0).to_owned().into_dyn()
            };
            out.insert(name.to_string(), a);
        };
        put("i", i);
        put("f", f);
        put("o", o);
        put("ci", ci);
        put("co", co);
        put("cs", cs);
        put("h", h);
        out.insert("trace/0/c".into(), trace.c.clone().into_dyn());
        out.insert("trace/0/h".into(), trace.h.clone().into_dyn());
        Ok(out)
    }
}

fn seq_len_max(inputs: &Tensors, time: usize) -> Result<usize, DialectError> {
    let t = inputs
        .get("seq_len_max")
        .ok_or_else(|| DialectError::MissingInput("seq_len_max".into()))?;
    let crate::tensor::Tensor::I32(a) = t else {
        return Err(DialectError::DType {
            what: "seq_len_max".into(),
            expected: "int32",
            got: t.dtype(),
        });
    };
    let value = match a.shape() {
        [] | [1] => a.iter().next().copied().unwrap_or(0),
        got => {
            return Err(DialectError::Shape {
                what: "seq_len_max".into(),
                expected: vec![],
                got: got.to_vec(),
            })
        }
    };
    usize::try_from(value)
        .ok()
        .filter(|&v| v <= time)
        .ok_or_else(|| {
            DialectError::Invalid(format!("seq_len_max = {value} is outside 0..={time}"))
        })
}

/// Canonical weights as a block op's `(w, b)` in `order` (ICFO or IFCO).
/// `forget_bias` (V1) stays separate; V2 has none: fold it into `b` first.
pub fn weights_from_canonical<T: Real>(
    layer: &Layer<T>,
    order: [Gate; 4],
) -> (ndarray::Array2<T>, ndarray::Array1<T>) {
    let stacked =
        ndarray::concatenate(Axis(0), &[layer.w_x.view(), layer.w_h.view()]).expect("same width");
    (
        super::blocks_from_canonical(stacked.view(), order),
        super::vector_from_canonical(layer.bias.view(), order),
    )
}
