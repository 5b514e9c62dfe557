//! Properties of the LSTM math and the weight conversions, with bounded
//! random sizes and values.
//!
//! Comparisons use the named float64 level of the `default` tolerance
//! (`F64_EPS` float64 epsilons, scaled by magnitude); no test invents an
//! epsilon.

use lstm_parity::conformance::tolerance::F64_EPS;
use lstm_parity::dialect::{self, keras, tf1};
use lstm_parity::lstm::{
    self, oracle, Activation, Layer, MaskedOutput, Peepholes, Projection, RunOptions, RunOutput,
    Sequence, State,
};
use ndarray::{s, Array1, Array2, Array3, ArrayD, Axis};
use proptest::prelude::*;

/// Shared bounds for generated sizes and values.
mod bounds {
    pub const MAX_BATCH: usize = 4;
    pub const MAX_TIME: usize = 6;
    pub const MAX_SIZE: usize = 6;
    pub const MAX_LAYERS: usize = 3;
    /// Weights and inputs are drawn from `[-WEIGHT, WEIGHT]`.
    pub const WEIGHT: f64 = 0.5;
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= F64_EPS * f64::EPSILON * b.abs().max(1.0)
}

/// Outputs, final states and traces of two runs of the same layers close.
fn assert_run_close(a: &RunOutput<f64>, b: &RunOutput<f64>) -> Result<(), TestCaseError> {
    let dyn_of = |x: &Array2<f64>| x.clone().into_dyn();
    assert_all_close(
        &a.outputs.clone().into_dyn(),
        &b.outputs.clone().into_dyn(),
        "outputs",
    )?;
    for (l, (x, y)) in a.final_state.iter().zip(&b.final_state).enumerate() {
        assert_all_close(&dyn_of(&x.c), &dyn_of(&y.c), &format!("layer {l} c"))?;
        assert_all_close(&dyn_of(&x.h), &dyn_of(&y.h), &format!("layer {l} h"))?;
    }
    prop_assert_eq!(a.trace.len(), b.trace.len(), "traced layers");
    for (l, (x, y)) in a.trace.iter().zip(&b.trace).enumerate() {
        assert_all_close(
            &x.c.clone().into_dyn(),
            &y.c.clone().into_dyn(),
            &format!("layer {l} trace c"),
        )?;
        assert_all_close(
            &x.h.clone().into_dyn(),
            &y.h.clone().into_dyn(),
            &format!("layer {l} trace h"),
        )?;
    }
    Ok(())
}

fn assert_all_close(a: &ArrayD<f64>, b: &ArrayD<f64>, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.shape(), b.shape(), "{} shape", what);
    for ((i, x), y) in a.indexed_iter().zip(b.iter()) {
        prop_assert!(close(*x, *y), "{} at {:?}: {} vs {}", what, i, x, y);
    }
    Ok(())
}

fn values(len: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(-bounds::WEIGHT..bounds::WEIGHT, len)
}

#[derive(Clone, Debug)]
struct Options {
    peepholes: bool,
    cell_clip: Option<f64>,
    projection: Option<usize>,
    forget_bias: f64,
}

fn options() -> impl Strategy<Value = Options> {
    (
        any::<bool>(),
        prop_oneof![Just(None), (0.05f64..2.0).prop_map(Some)],
        prop_oneof![Just(None), (1..=bounds::MAX_SIZE).prop_map(Some)],
        prop_oneof![Just(0.0), Just(1.0), -1.0f64..1.0],
    )
        .prop_map(|(peepholes, cell_clip, projection, forget_bias)| Options {
            peepholes,
            cell_clip,
            projection,
            forget_bias,
        })
}

/// A random layer reading `input` features with `units` units.
fn layer(input: usize, units: usize, opts: Options) -> impl Strategy<Value = Layer<f64>> {
    let h_depth = opts.projection.unwrap_or(units);
    (
        values(input * 4 * units),
        values(h_depth * 4 * units),
        values(4 * units),
        values(3 * units),
        values(units * h_depth),
    )
        .prop_map(move |(wx, wh, b, p, proj)| {
            let mut l = Layer::new(
                Array2::from_shape_vec((input, 4 * units), wx).unwrap(),
                Array2::from_shape_vec((h_depth, 4 * units), wh).unwrap(),
                Array1::from_vec(b),
            );
            l.forget_bias = opts.forget_bias;
            l.cell_clip = opts.cell_clip;
            if opts.peepholes {
                l.peepholes = Some(Peepholes {
                    input: Array1::from_vec(p[..units].to_vec()),
                    forget: Array1::from_vec(p[units..2 * units].to_vec()),
                    output: Array1::from_vec(p[2 * units..].to_vec()),
                });
            }
            if let Some(n) = opts.projection {
                l.projection = Some(Projection {
                    kernel: Array2::from_shape_vec((units, n), proj).unwrap(),
                    clip: opts.cell_clip,
                });
            }
            l
        })
}

/// A stack of 1..=MAX_LAYERS layers reading `input` features.
fn stack(input: usize) -> impl Strategy<Value = Vec<Layer<f64>>> {
    proptest::collection::vec((1..=bounds::MAX_SIZE, options()), 1..=bounds::MAX_LAYERS)
        .prop_flat_map(move |specs| {
            let mut size = input;
            let mut layers = Vec::new();
            for (units, opts) in specs {
                let next = opts.projection.unwrap_or(units);
                layers.push(layer(size, units, opts).boxed());
                size = next;
            }
            layers
        })
}

#[derive(Clone, Debug)]
struct Problem {
    layers: Vec<Layer<f64>>,
    inputs: Array3<f64>,
    mask: Option<Array2<bool>>,
    masked_output: MaskedOutput,
    reverse: bool,
    initial: Option<Vec<State<f64>>>,
}

fn problem() -> impl Strategy<Value = Problem> {
    (
        1..=bounds::MAX_BATCH,
        0..=bounds::MAX_TIME,
        1..=bounds::MAX_SIZE,
    )
        .prop_flat_map(|(batch, time, input)| {
            (
                stack(input),
                values(batch * time * input),
                prop_oneof![
                    Just(None),
                    proptest::collection::vec(any::<bool>(), batch * time).prop_map(Some)
                ],
                prop_oneof![Just(MaskedOutput::Zero), Just(MaskedOutput::RepeatPrevious)],
                any::<bool>(),
                any::<bool>(),
                Just((batch, time, input)),
            )
        })
        .prop_flat_map(
            |(layers, x, mask, masked_output, reverse, with_initial, (batch, time, input))| {
                let sizes: Vec<(usize, usize)> = layers
                    .iter()
                    .map(|l| (l.units(), l.output_size()))
                    .collect();
                let total: usize = sizes.iter().map(|(u, h)| batch * (u + h)).sum();
                (
                    Just((
                        layers,
                        x,
                        mask,
                        masked_output,
                        reverse,
                        with_initial,
                        (batch, time, input),
                        sizes,
                    )),
                    values(total),
                )
            },
        )
        .prop_map(
            |(
                (
                    layers,
                    x,
                    mask,
                    masked_output,
                    reverse,
                    with_initial,
                    (batch, time, input),
                    sizes,
                ),
                init,
            )| {
                let mut offset = 0;
                let initial: Vec<State<f64>> = sizes
                    .iter()
                    .map(|&(u, h)| {
                        let c = Array2::from_shape_vec(
                            (batch, u),
                            init[offset..offset + batch * u].to_vec(),
                        )
                        .unwrap();
                        offset += batch * u;
                        let hh = Array2::from_shape_vec(
                            (batch, h),
                            init[offset..offset + batch * h].to_vec(),
                        )
                        .unwrap();
                        offset += batch * h;
                        State { c, h: hh }
                    })
                    .collect();
                Problem {
                    layers,
                    inputs: Array3::from_shape_vec((batch, time, input), x).unwrap(),
                    mask: mask.map(|m| Array2::from_shape_vec((batch, time), m).unwrap()),
                    masked_output,
                    reverse,
                    initial: with_initial.then_some(initial),
                }
            },
        )
}

impl Problem {
    fn sequence(&self) -> Sequence<'_, f64> {
        Sequence {
            inputs: self.inputs.view(),
            initial_state: self.initial.as_deref(),
            mask: self.mask.as_ref().map(|m| m.view()),
            masked_output: self.masked_output,
            reverse: self.reverse,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Every runner option gives outputs, states and traces of the right shapes.
    #[test]
    fn output_shapes(p in problem()) {
        let run = lstm::run(&p.layers, &p.sequence()).unwrap();
        let (batch, time, _) = p.inputs.dim();
        let last = p.layers.last().unwrap();
        prop_assert_eq!(run.outputs.dim(), (batch, time, last.output_size()));
        for (l, layer) in p.layers.iter().enumerate() {
            prop_assert_eq!(run.final_state[l].c.dim(), (batch, layer.units()));
            prop_assert_eq!(run.final_state[l].h.dim(), (batch, layer.output_size()));
            prop_assert_eq!(run.trace[l].c.dim(), (batch, time, layer.units()));
            prop_assert_eq!(run.trace[l].h.dim(), (batch, time, layer.output_size()));
        }
    }

    /// The main path equals the slow f64 oracle.
    #[test]
    fn main_path_equals_oracle(p in problem()) {
        let fast = lstm::run(&p.layers, &p.sequence()).unwrap();
        let slow = oracle::run(&p.layers, &p.sequence()).unwrap();
        assert_run_close(&fast, &slow)?;
    }

    /// Any thread count (given explicitly, so that even these small layers
    /// take the multi-threaded path) computes what the oracle computes, and
    /// turning the trace off changes nothing else.
    #[test]
    fn every_thread_count_equals_oracle(p in problem(), threads in 1usize..=4) {
        let traced = lstm::run_with(&p.layers, &p.sequence(), &RunOptions { trace: true, threads: Some(threads), fast_activations: false }).unwrap();
        let untraced = lstm::run_with(&p.layers, &p.sequence(), &RunOptions { trace: false, threads: Some(threads), fast_activations: false }).unwrap();
        let slow = oracle::run(&p.layers, &p.sequence()).unwrap();
        prop_assert!(untraced.trace.is_empty());
        prop_assert_eq!(&untraced.outputs, &traced.outputs);
        prop_assert_eq!(&untraced.final_state, &traced.final_state);
        assert_run_close(&traced, &slow)?;
    }

    /// Each batch row computes alone what it computes in the batch.
    #[test]
    fn batch_rows_are_independent(p in problem()) {
        let whole = lstm::run(&p.layers, &p.sequence()).unwrap();
        for b in 0..p.inputs.dim().0 {
            let inputs = p.inputs.slice(s![b..b + 1, .., ..]).to_owned();
            let mask = p.mask.as_ref().map(|m| m.slice(s![b..b + 1, ..]).to_owned());
            let initial: Option<Vec<State<f64>>> = p.initial.as_ref().map(|states| {
                states.iter().map(|st| State {
                    c: st.c.slice(s![b..b + 1, ..]).to_owned(),
                    h: st.h.slice(s![b..b + 1, ..]).to_owned(),
                }).collect()
            });
            let seq = Sequence {
                inputs: inputs.view(),
                initial_state: initial.as_deref(),
                mask: mask.as_ref().map(|m| m.view()),
                masked_output: p.masked_output,
                reverse: p.reverse,
            };
            let alone = lstm::run(&p.layers, &seq).unwrap();
            assert_all_close(
                &alone.outputs.index_axis(Axis(0), 0).to_owned().into_dyn(),
                &whole.outputs.index_axis(Axis(0), b).to_owned().into_dyn(),
                "row outputs",
            )?;
        }
    }

    /// With sigmoid gates and tanh cells, the gates lie in (0, 1) and |h| <= 1
    /// (without projection).
    #[test]
    fn gates_and_h_are_bounded(l in layer(3, 4, Options { peepholes: true, cell_clip: None, projection: None, forget_bias: 1.0 }),
                               x in values(3), c in values(4), h in values(4)) {
        let [i, f, _, o] = oracle::gates(&l, &x, &c, &h);
        for v in i.iter().chain(&f).chain(&o) {
            prop_assert!(*v > 0.0 && *v < 1.0);
        }
        let (_, h_new) = oracle::step(&l, &x, &c, &h);
        prop_assert!(h_new.iter().all(|v| v.abs() <= 1.0));
    }

    /// A sequence of length 1 equals one step.
    #[test]
    fn length_one_equals_one_step(l in layer(3, 4, Options { peepholes: true, cell_clip: Some(0.7), projection: Some(2), forget_bias: 1.0 }),
                                  x in values(3), c in values(4), h in values(2)) {
        let inputs = Array3::from_shape_vec((1, 1, 3), x.clone()).unwrap();
        let initial = [State {
            c: Array2::from_shape_vec((1, 4), c.clone()).unwrap(),
            h: Array2::from_shape_vec((1, 2), h.clone()).unwrap(),
        }];
        let mut seq = Sequence::new(inputs.view());
        seq.initial_state = Some(&initial);
        let run = lstm::run(std::slice::from_ref(&l), &seq).unwrap();
        let (c_new, h_new) = oracle::step(&l, &x, &c, &h);
        assert_all_close(&run.final_state[0].c.clone().into_dyn(), &Array1::from_vec(c_new).insert_axis(Axis(0)).into_dyn(), "c")?;
        assert_all_close(&run.final_state[0].h.clone().into_dyn(), &Array1::from_vec(h_new).insert_axis(Axis(0)).into_dyn(), "h")?;
    }

    /// canonical -> TF1 kernel -> canonical and canonical -> Keras -> canonical
    /// are exact, and TF1 and Keras layouts of the same layer agree.
    #[test]
    fn weight_conversions_round_trip(l in layer(3, 5, Options { peepholes: false, cell_clip: None, projection: None, forget_bias: 0.0 })) {
        let (kernel, bias) = tf1::kernel_from_canonical(&l);
        let (w_x, w_h, b) = tf1::kernel_to_canonical(&kernel, &bias, 3);
        prop_assert_eq!(&w_x, &l.w_x);
        prop_assert_eq!(&w_h, &l.w_h);
        prop_assert_eq!(&b, &l.bias);
        let keras::Weights { kernel: k, recurrent_kernel: r, bias: kb } = keras::weights_from_canonical(&l).unwrap();
        prop_assert_eq!(dialect::blocks_to_canonical(k.view(), keras::GATE_ORDER), l.w_x.clone());
        prop_assert_eq!(dialect::blocks_to_canonical(r.view(), keras::GATE_ORDER), l.w_h.clone());
        prop_assert_eq!(dialect::vector_to_canonical(kb.view(), keras::GATE_ORDER), l.bias.clone());
        // Keras (i,f,c,o) -> TF1 (i,j,f,o): swap the middle blocks.
        let tf1_from_keras = dialect::blocks_from_canonical(
            dialect::blocks_to_canonical(k.view(), keras::GATE_ORDER).view(), tf1::GATE_ORDER);
        prop_assert_eq!(tf1_from_keras, kernel.slice(s![..3, ..]).to_owned());
    }
}

/// A one-cell MultiRNNCell computes exactly what the cell computes.
#[test]
fn one_layer_stack_equals_the_cell() {
    use lstm_parity::tensor::Tensor;
    let mut vars = dialect::Tensors::new();
    let kernel: Vec<f32> = (0..(3 + 2) * 8)
        .map(|k| ((k * 37 % 23) as f32 - 11.0) / 16.0)
        .collect();
    let bias: Vec<f32> = (0..8).map(|k| (k as f32 - 4.0) / 8.0).collect();
    vars.insert(
        "k".into(),
        Tensor::F32(ArrayD::from_shape_vec(vec![5, 8], kernel).unwrap()),
    );
    vars.insert(
        "b".into(),
        Tensor::F32(ArrayD::from_shape_vec(vec![8], bias).unwrap()),
    );
    let mut inputs = dialect::Tensors::new();
    let x: Vec<f32> = (0..2 * 4 * 3)
        .map(|k| ((k * 13 % 7) as f32 - 3.0) / 4.0)
        .collect();
    inputs.insert(
        "inputs".into(),
        Tensor::F32(ArrayD::from_shape_vec(vec![2, 4, 3], x).unwrap()),
    );
    let cell = serde_json::json!({"class": "LSTMCell", "num_units": 2, "forget_bias": 1.0, "activation": "tanh",
        "use_peepholes": false, "cell_clip": null, "num_proj": null, "proj_clip": null,
        "variables": {"kernel": "k", "bias": "b"}});
    let single = dialect::Model::parse(
        "tf1",
        &serde_json::json!({"api": "dynamic_rnn", "cell": cell}),
    )
    .unwrap();
    let multi = dialect::Model::parse(
        "tf1",
        &serde_json::json!({"api": "dynamic_rnn", "cell": {"class": "MultiRNNCell", "cells": [cell]}}),
    )
    .unwrap();
    let a = single.run::<f32>(&vars, &inputs).unwrap();
    let b = multi.run::<f32>(&vars, &inputs).unwrap();
    assert_eq!(a, b);
}

/// The two hard sigmoids are different functions (Keras 2 vs Keras 3).
#[test]
fn hard_sigmoids_differ() {
    let (k2, k3) = (Activation::HardSigmoidLinear, Activation::HardSigmoidRelu6);
    assert!(k2.apply_f64(1.0) > k3.apply_f64(1.0));
    assert_eq!(k2.apply_f64(2.5), 1.0); // 0.2x + 0.5 saturates at 2.5
    assert!(k3.apply_f64(2.5) < 1.0); // relu6(x + 3) / 6 saturates at 3
    assert_eq!(k3.apply_f64(3.0), 1.0);
}

/// A problem without mask, reverse or initial state, for composition laws.
fn plain_problem() -> impl Strategy<Value = Problem> {
    problem().prop_map(|mut p| {
        p.mask = None;
        p.reverse = false;
        p.initial = None;
        p
    })
}

fn run_plain(
    layers: &[Layer<f64>],
    x: &Array3<f64>,
    initial: Option<&[State<f64>]>,
) -> lstm::RunOutput<f64> {
    let mut seq = Sequence::new(x.view());
    seq.initial_state = initial;
    lstm::run(layers, &seq).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// T = 0 returns empty outputs and the initial state unchanged.
    #[test]
    fn zero_steps_keep_the_initial_state(p in problem()) {
        let x = Array3::zeros((p.inputs.dim().0, 0, p.inputs.dim().2));
        let seq = Sequence { inputs: x.view(), mask: None, ..p.sequence() };
        let run = lstm::run(&p.layers, &seq).unwrap();
        prop_assert_eq!(run.outputs.dim().1, 0);
        for (l, layer) in p.layers.iter().enumerate() {
            let expected = p.initial.as_ref().map_or_else(|| State::zeros(layer, x.dim().0), |s| s[l].clone());
            prop_assert_eq!(&run.final_state[l], &expected);
        }
    }

    /// Running the first k steps, then the rest from the carried state,
    /// equals running the whole sequence.
    #[test]
    fn a_split_sequence_equals_the_whole(p in plain_problem(), split in 0usize..=bounds::MAX_TIME) {
        let time = p.inputs.dim().1;
        let k = split.min(time);
        let whole = run_plain(&p.layers, &p.inputs, None);
        let first = run_plain(&p.layers, &p.inputs.slice(s![.., ..k, ..]).to_owned(), None);
        let rest = run_plain(&p.layers, &p.inputs.slice(s![.., k.., ..]).to_owned(), Some(&first.final_state));
        for l in 0..p.layers.len() {
            assert_all_close(&rest.final_state[l].c.clone().into_dyn(), &whole.final_state[l].c.clone().into_dyn(), "c")?;
            assert_all_close(&rest.final_state[l].h.clone().into_dyn(), &whole.final_state[l].h.clone().into_dyn(), "h")?;
        }
        let joined = ndarray::concatenate(Axis(1), &[first.outputs.view(), rest.outputs.view()]).unwrap();
        assert_all_close(&joined.into_dyn(), &whole.outputs.into_dyn(), "outputs")?;
    }

    /// A stack of layers is the composition of its layers.
    #[test]
    fn stacking_is_composition(p in plain_problem()) {
        let whole = run_plain(&p.layers, &p.inputs, None);
        let mut x = p.inputs.clone();
        for (l, layer) in p.layers.iter().enumerate() {
            let one = run_plain(std::slice::from_ref(layer), &x, None);
            assert_all_close(&one.final_state[0].h.clone().into_dyn(), &whole.final_state[l].h.clone().into_dyn(), "h")?;
            x = one.outputs;
        }
        assert_all_close(&x.into_dyn(), &whole.outputs.into_dyn(), "outputs")?;
    }

    /// sequence_length n (a mask of n leading steps, zero outputs after)
    /// equals running the first n steps of that row.
    #[test]
    fn a_length_equals_running_that_many_steps(p in plain_problem(), lengths in proptest::collection::vec(0usize..=bounds::MAX_TIME, bounds::MAX_BATCH)) {
        let (batch, time, _) = p.inputs.dim();
        let lengths: Vec<usize> = lengths[..batch].iter().map(|&n| n.min(time)).collect();
        let mask = lstm_parity::dialect::length_mask(&lengths, time);
        let seq = Sequence { mask: Some(mask.view()), masked_output: MaskedOutput::Zero, ..Sequence::new(p.inputs.view()) };
        let masked = lstm::run(&p.layers, &seq).unwrap();
        for (b, &n) in lengths.iter().enumerate() {
            let row = p.inputs.slice(s![b..b + 1, ..n, ..]).to_owned();
            let alone = run_plain(&p.layers, &row, None);
            let last = p.layers.len() - 1;
            assert_all_close(
                &masked.final_state[last].h.slice(s![b..b + 1, ..]).to_owned().into_dyn(),
                &alone.final_state[last].h.clone().into_dyn(),
                "final h",
            )?;
            prop_assert!(masked.outputs.slice(s![b, n.., ..]).iter().all(|v| *v == 0.0));
        }
    }

    /// Folding forget_bias into the bias's forget block gives the same outputs.
    #[test]
    fn forget_bias_folding_preserves_outputs(p in plain_problem()) {
        let folded: Vec<Layer<f64>> = p.layers.iter().map(|l| {
            let mut f = l.clone();
            let units = l.units();
            for j in lstm_parity::lstm::Gate::F.columns(units) {
                f.bias[j] += l.forget_bias;
            }
            f.forget_bias = 0.0;
            f
        }).collect();
        let a = run_plain(&p.layers, &p.inputs, None);
        let b = run_plain(&folded, &p.inputs, None);
        assert_all_close(&a.outputs.into_dyn(), &b.outputs.into_dyn(), "outputs")?;
    }

    /// float32 stays within the float32 floor of the default tolerance of float64.
    #[test]
    fn float32_is_close_to_float64(p in problem()) {
        let layers32: Vec<Layer<f32>> = p.layers.iter().map(Layer::cast).collect();
        let x32 = p.inputs.mapv(|v| v as f32);
        let init32: Option<Vec<State<f32>>> = p.initial.as_ref().map(|s| s.iter().map(|st| State { c: st.c.mapv(|v| v as f32), h: st.h.mapv(|v| v as f32) }).collect());
        // The float64 run on exactly the float32-rounded values.
        let layers64: Vec<Layer<f64>> = layers32.iter().map(Layer::cast).collect();
        let x64 = x32.mapv(f64::from);
        let init64: Option<Vec<State<f64>>> = init32.as_ref().map(|s| s.iter().map(|st| State { c: st.c.mapv(f64::from), h: st.h.mapv(f64::from) }).collect());
        let seq32 = Sequence { inputs: x32.view(), initial_state: init32.as_deref(), mask: p.mask.as_ref().map(|m| m.view()), masked_output: p.masked_output, reverse: p.reverse };
        let seq64 = Sequence { inputs: x64.view(), initial_state: init64.as_deref(), mask: p.mask.as_ref().map(|m| m.view()), masked_output: p.masked_output, reverse: p.reverse };
        let r32 = lstm::run(&layers32, &seq32).unwrap();
        let r64 = lstm::run(&layers64, &seq64).unwrap();
        let scale = r64.outputs.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let bound = lstm_parity::conformance::tolerance::F32_FLOOR_EPS * f64::from(f32::EPSILON) * scale;
        for (a, b) in r32.outputs.iter().zip(r64.outputs.iter()) {
            prop_assert!((f64::from(*a) - b).abs() <= bound, "{} vs {}", a, b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// The main path equals the oracle at larger sizes: up to 64 units and
    /// inputs, 50 steps.
    #[test]
    fn main_path_equals_oracle_at_larger_sizes(
        (l, x) in (1usize..=64, 1usize..=64, 1usize..=4, 1usize..=50).prop_flat_map(|(input, units, batch, time)| {
            (layer(input, units, Options { peepholes: true, cell_clip: Some(1.5), projection: None, forget_bias: 1.0 }),
             values(batch * time * input).prop_map(move |v| Array3::from_shape_vec((batch, time, input), v).unwrap()))
        })
    ) {
        let fast = run_plain(std::slice::from_ref(&l), &x, None);
        let slow = oracle::run(std::slice::from_ref(&l), &Sequence::new(x.view())).unwrap();
        assert_all_close(&fast.outputs.into_dyn(), &slow.outputs.into_dyn(), "outputs")?;
    }
}

/// Bidirectional = the forward layer's outputs concatenated with the
/// backward layer's outputs reversed in time: on every recorded Keras
/// `Bidirectional` case with concat merge and sequences, the dialect's
/// output equals that composition of two single-layer runs.
#[test]
fn bidirectional_is_forward_concat_reversed_backward() {
    use lstm_parity::conformance::{self, Filter};
    let root = lstm_parity::conformance::suite::reference_root(None);
    let cases = conformance::select(&root, &Filter::new::<&str>(&[]).unwrap())
        .unwrap()
        .cases;
    let mut checked = 0;
    for case in &cases {
        let lstm_parity::dialect::Model::Keras(m) = &case.model else {
            continue;
        };
        if m.layer != keras::LayerKind::Bidirectional
            || !m.return_sequences
            || !matches!(m.merge_mode, None | Some(Some(keras::MergeMode::Concat)))
            || m.time_major
        {
            continue;
        }
        let x = case.inputs["inputs"]
            .to_float::<f64>()
            .unwrap()
            .into_dimensionality::<ndarray::Ix3>()
            .unwrap();
        if m.forward.as_ref().is_none_or(|f| f.go_backwards)
            || case.inputs.keys().any(|k| k != "inputs")
        {
            continue; // masks and initial states: covered by the parity suite
        }
        let fw_layers = m
            .canonical_layers::<f64>(&case.variables, x.dim().2, 0)
            .unwrap();
        let bw_layers = m
            .canonical_layers::<f64>(&case.variables, x.dim().2, 1)
            .unwrap();
        let fw = lstm::run(&fw_layers, &Sequence::new(x.view())).unwrap();
        let bw = lstm::run(
            &bw_layers,
            &Sequence {
                reverse: true,
                ..Sequence::new(x.view())
            },
        )
        .unwrap();
        let mut bw_out = bw.outputs.clone();
        bw_out.invert_axis(Axis(1));
        let composed = ndarray::concatenate(Axis(2), &[fw.outputs.view(), bw_out.view()]).unwrap();
        let dialect = case
            .model
            .run::<f64>(&case.variables, &case.inputs)
            .unwrap();
        assert_eq!(dialect["output"], composed.into_dyn(), "{}", case.id);
        checked += 1;
    }
    assert!(checked > 0, "no recorded Keras Bidirectional case to check");
}

/// A layer large enough for the kernel's real splits (units not a multiple
/// of the SIMD width, inputs past the packed kernel's depth block of 1024,
/// 17 x 7 input projection rows past its row chunk, 17 rows: on 2
/// threads the steps split the batch, on 3 the units), with peepholes,
/// clipping, projection and a mask, equals the oracle on 1, 2 and 3
/// threads, and repeated runs are bit-for-bit identical.
#[test]
fn larger_layers_equal_oracle_on_every_thread_count() {
    let (batch, time, input, units, proj) = (17, 7, 1100, 70, 33);
    let value = |k: usize, scale: f64| ((k * 7919 % 1009) as f64 / 1009.0 - 0.5) * scale;
    let mut first = Layer::new(
        Array2::from_shape_fn((input, 4 * units), |(r, c)| value(r * 4 * units + c, 0.1)),
        Array2::from_shape_fn((proj, 4 * units), |(r, c)| value(r * 31 + c * 17, 0.4)),
        Array1::from_shape_fn(4 * units, |c| value(c * 13, 1.0)),
    );
    first.forget_bias = 1.0;
    first.cell_clip = Some(1.5);
    first.peepholes = Some(Peepholes {
        input: Array1::from_shape_fn(units, |u| value(u * 3, 0.5)),
        forget: Array1::from_shape_fn(units, |u| value(u * 5, 0.5)),
        output: Array1::from_shape_fn(units, |u| value(u * 11, 0.5)),
    });
    first.projection = Some(Projection {
        kernel: Array2::from_shape_fn((units, proj), |(r, c)| value(r * 19 + c * 23, 0.3)),
        clip: Some(0.8),
    });
    let second = Layer::new(
        Array2::from_shape_fn((proj, 4 * 40), |(r, c)| value(r * 29 + c, 0.4)),
        Array2::from_shape_fn((40, 4 * 40), |(r, c)| value(r * 37 + c * 3, 0.4)),
        Array1::from_shape_fn(4 * 40, |c| value(c * 7, 1.0)),
    );
    let layers = [first, second];
    let inputs = Array3::from_shape_fn((batch, time, input), |(b, t, i)| {
        value(b * 1000 + t * 100 + i, 1.0)
    });
    let mask = Array2::from_shape_fn((batch, time), |(b, t)| (b + t) % 4 != 1);
    let seq = Sequence {
        inputs: inputs.view(),
        initial_state: None,
        mask: Some(mask.view()),
        masked_output: MaskedOutput::RepeatPrevious,
        reverse: true,
    };
    let slow = oracle::run(&layers, &seq).unwrap();
    for threads in 1..=3 {
        let options = RunOptions {
            trace: true,
            threads: Some(threads),
            fast_activations: false,
        };
        let fast = lstm::run_with(&layers, &seq, &options).unwrap();
        let again = lstm::run_with(&layers, &seq, &options).unwrap();
        assert_eq!(fast, again, "{threads} threads: repeated runs differ");
        let check = |a: ArrayD<f64>, b: ArrayD<f64>, what: &str| {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                assert!(
                    close(*x, *y),
                    "{threads} threads, {what} at {i}: {x} vs {y}"
                );
            }
        };
        check(
            fast.outputs.into_dyn(),
            slow.outputs.clone().into_dyn(),
            "outputs",
        );
        for l in 0..layers.len() {
            check(
                fast.final_state[l].c.clone().into_dyn(),
                slow.final_state[l].c.clone().into_dyn(),
                "c",
            );
            check(
                fast.trace[l].h.clone().into_dyn(),
                slow.trace[l].h.clone().into_dyn(),
                "trace h",
            );
        }
    }
}

/// A [`Prepared`](lstm::Prepared) stack (packed weights kept between runs)
/// gives exactly the outputs, states and traces of `run_with`, run after
/// run, as the thread count and the batch size (and so the split the packs
/// are made for) change back and forth; and it reports bad inputs as
/// `run_with` does.
#[test]
fn prepared_runs_equal_plain_runs() {
    let value = |k: usize, scale: f32| ((k * 7919 % 1009) as f32 / 1009.0 - 0.5) * scale;
    let layer = |input: usize, units: usize, seed: usize| {
        Layer::new(
            Array2::from_shape_fn((input, 4 * units), |(r, c)| value(seed + r * 97 + c, 0.3)),
            Array2::from_shape_fn((units, 4 * units), |(r, c)| {
                value(seed + r * 31 + c * 3, 0.3)
            }),
            Array1::from_shape_fn(4 * units, |c| value(seed + c * 13, 1.0)),
        )
    };
    let layers = vec![layer(29, 45, 1), layer(45, 19, 2)];
    let prepared = lstm::Prepared::new(layers.clone());
    assert_eq!(prepared.layers(), &layers[..]);
    for (batch, threads) in [(17, 2), (17, 2), (3, 2), (17, 3), (17, 1), (17, 2), (1, 3)] {
        let inputs = Array3::from_shape_fn((batch, 6, 29), |(b, t, i)| {
            value(b * 1000 + t * 100 + i, 1.0)
        });
        let seq = Sequence::new(inputs.view());
        let options = RunOptions {
            trace: true,
            threads: Some(threads),
            fast_activations: false,
        };
        let plain = lstm::run_with(&layers, &seq, &options).unwrap();
        let kept = prepared.run_with(&seq, &options).unwrap();
        assert_eq!(plain, kept, "batch {batch}, {threads} threads");
    }
    let wrong = Array3::<f32>::zeros((2, 3, 28));
    let error = prepared.run(&Sequence::new(wrong.view())).unwrap_err();
    assert_eq!(
        error,
        lstm::run(&layers, &Sequence::new(wrong.view())).unwrap_err()
    );
    assert_eq!(prepared.into_layers(), layers);
}
