//! Every diagnosis has a deliberately wrong implementation that it must
//! name: the mistaken LSTM (`conformance::mistake`), a [`Runner`] (what an
//! external implementation plugs into) that makes one known mistake.
//! Without the diagnosis the test fails; with a correct or merely
//! imprecise runner no trap is named.

mod common;

use lstm_parity::conformance::diagnose::{DiagnoseOptions, Trap};
use lstm_parity::conformance::mistake::{ForgetBiasChange, Mistake, MistakenLstm, Precision};
use lstm_parity::conformance::{self, check_runner, report, Case, CaseRun, Dtype, Filter};
use lstm_parity::dialect::layout::Layout;
use lstm_parity::dialect::RustLstm;
use lstm_parity::lstm::Gate;

fn case(id: &str) -> Case {
    let s = conformance::select(&common::reference(), &Filter::new(&[id]).unwrap()).unwrap();
    s.cases
        .into_iter()
        .find(|c| c.id == id)
        .expect("the case exists")
}

/// TF1's i, j, f, o read as Keras's i, f, c, o.
const SWAP_F_G: Mistake = Mistake::GateOrder([Gate::I, Gate::G, Gate::F, Gate::O]);

fn check(case: &Case, mistake: Mistake, layout: Option<Layout>) -> CaseRun {
    let run = check_runner::<f32>(
        case,
        Dtype::F32,
        None,
        &mut MistakenLstm(mistake),
        DiagnoseOptions {
            external: true,
            layout,
            nan_means_not_written: false,
        },
    );
    assert!(!run.passed(), "{mistake:?} must fail {}", case.id);
    run
}

fn hint(run: &CaseRun, trap: Trap) -> String {
    let d = run.diagnosis.as_ref().expect("a failed run is diagnosed");
    let found: Vec<_> = d.hints.iter().filter(|h| h.trap == trap).collect();
    assert_eq!(
        found.len(),
        1,
        "one {trap:?} hint expected:\n{}",
        report::failure_detail(run)
    );
    found[0].message.clone()
}

#[test]
fn permuted_gates_are_named_in_the_layouts_terms() {
    let c = case("tf1/rand-001-basic-dyn");
    let run = check(&c, SWAP_F_G, Some(Layout::Tf1));
    let m = hint(&run, Trap::GateOrder);
    assert!(
        m.contains("as [i, f, j, o] instead of the layout's [i, j, f, o]"),
        "{m}"
    );
    // The same mistake in canonical terms when no layout is given.
    let run = check(&c, SWAP_F_G, None);
    assert!(hint(&run, Trap::GateOrder)
        .contains("as [i, g, f, o] instead of the layout's [i, f, g, o]"));
}

#[test]
fn a_dropped_forget_bias_is_named_and_measured() {
    let c = case("tf1/rand-001-basic-dyn");
    let run = check(
        &c,
        Mistake::ForgetBias(ForgetBiasChange::Dropped),
        Some(Layout::Tf1),
    );
    let m = hint(&run, Trap::ForgetBias);
    assert!(m.contains("forget_bias = 0 instead of 1"), "{m}");
    // Where the numbers part: the first step, layer and unit, and the
    // constant offset of the forget pre-activation that explains them.
    let d = &run.diagnosis.as_ref().unwrap().steps[0];
    // Step 0 starts from c = 0, where the forget gate does not matter.
    assert_eq!((d.step.as_str(), d.time, d.layer), ("main", Some(1), 0));
    assert_eq!(d.state, "c", "the cell state leaves tolerance first");
    let offset = d.forget_offset.expect("a constant forget offset");
    assert!((offset + 1.0).abs() < 1e-2, "offset {offset}");
    let text = report::failure_detail(&run);
    assert!(
        text.contains("step \"main\" parts from the Rust LSTM at time step 1, layer 0"),
        "{text}"
    );
}

#[test]
fn outputs_in_the_wrong_time_order_are_named() {
    let c = case("keras3/rand-005-lstm-back-seq-state");
    let run = check(
        &c,
        Mistake::ReverseOutputsInInputOrder { traces: false },
        Some(Layout::Keras),
    );
    assert!(hint(&run, Trap::ReverseOrder).contains("input time order"));
}

#[test]
fn a_swapped_masking_rule_is_named() {
    let c = case("tf1/rand-004-lstm-dyn-seqlen");
    let run = check(&c, Mistake::OtherMaskedOutput, Some(Layout::Onnx));
    assert!(hint(&run, Trap::MaskingRule)
        .contains("repeat the previous output at masked steps where the case has zeros"));
    // And the other way round, on a Keras masking case.
    let tmp = common::scratch();
    let id = common::keras_masked_case(tmp.path());
    let c = Case::load(&tmp.path().join(&id), &id).unwrap();
    let run = check(&c, Mistake::OtherMaskedOutput, Some(Layout::Keras));
    assert!(hint(&run, Trap::MaskingRule)
        .contains("zeros at masked steps where the case repeats the previous output"));
}

#[test]
fn no_trap_is_named_for_a_merely_imprecise_implementation() {
    for id in [
        "tf1/rand-001-basic-dyn",
        "keras3/rand-005-lstm-back-seq-state",
        "tf1/rand-004-lstm-dyn-seqlen",
    ] {
        let run = check(&case(id), Mistake::OutputsOffBy(1e-3), None);
        let d = run.diagnosis.as_ref().unwrap();
        assert!(d.hints.is_empty(), "{id}: {:?}", d.hints);
        let s = &d.steps[0];
        assert_eq!(
            (s.source, s.time),
            ("y", Some(0)),
            "{id}: y parts at the first step"
        );
    }
    // And a correct one passes without a diagnosis.
    let run = check_runner::<f32>(
        &case("tf1/rand-001-basic-dyn"),
        Dtype::F32,
        None,
        &mut RustLstm,
        DiagnoseOptions {
            external: true,
            layout: None,
            nan_means_not_written: false,
        },
    );
    assert!(run.passed() && run.diagnosis.is_none());
}

/// A NaN a runner computes is a result to judge: it fails the case, it is
/// not taken for an output left unwritten.
#[test]
fn a_computed_nan_fails_the_case() {
    let c = case("tf1/rand-001-basic-dyn");
    let run = check(&c, Mistake::NanInOutput, None);
    assert!(run.not_compared.is_empty());
    let outputs = run
        .comparisons
        .iter()
        .find(|x| x.output == "outputs")
        .unwrap();
    assert_eq!(outputs.nan_mismatches, 1);
}

#[test]
fn the_first_gate_out_of_tolerance_is_named() {
    let tmp = common::scratch();
    let id = common::block_case(tmp.path());
    let mut c = Case::load(&tmp.path().join(&id), &id).unwrap();
    assert!(conformance::run_case(&c, Dtype::F32, None).passed());
    // A wrong forget gate at step 2, row 1, unit 3 (as a dialect bug would give).
    let f = c.expected.get_mut("f").unwrap();
    f.float32[[2, 1, 3]] += 0.25;
    f.float64.as_mut().unwrap()[[2, 1, 3]] += 0.25;
    let run = conformance::run_case(&c, Dtype::F32, None);
    let g = run
        .diagnosis
        .as_ref()
        .and_then(|d| d.gate.as_ref())
        .expect("a gate divergence");
    assert_eq!((g.gate.as_str(), g.time, g.batch, g.unit), ("f", 2, 1, 3));
    assert_eq!(g.gates_out, vec!["f".to_string()]);
    let text = report::failure_detail(&run);
    assert!(
        text.contains("gate f leaves tolerance first: step 2, batch 1, unit 3"),
        "{text}"
    );
    assert!(text.contains("only f of i, f, o, ci"), "{text}");
}

#[test]
fn the_first_divergence_names_the_layer() {
    let mut c = case("tf1/nb001-stacked");
    let e = c.expected.get_mut("trace/1/c").unwrap();
    e.float64.as_mut().unwrap()[[0, 1, 2]] += 0.01;
    e.float32[[0, 1, 2]] += 0.01;
    let run = conformance::run_case(&c, Dtype::F32, None);
    let d = run.divergence.as_ref().unwrap();
    assert_eq!(
        (d.layer, d.state.as_deref(), d.step),
        (Some(1), Some("c"), 1)
    );
    assert!(report::failure_detail(&run).contains("; layer 1, state c"));
}

#[test]
fn ignored_activations_are_named() {
    let c = case("keras3/canary-hard-sigmoid-version");
    let run = check(&c, Mistake::ActivationsIgnored, Some(Layout::Keras));
    let m = hint(&run, Trap::Activations);
    assert!(
        m.contains("match sigmoid, tanh, tanh where the case asks for hard_sigmoid"),
        "{m}"
    );
    let run = check(&c, Mistake::OtherHardSigmoid, Some(Layout::Keras));
    assert!(hint(&run, Trap::Activations).contains("the other hard_sigmoid"));
}

#[test]
fn ignored_peepholes_are_named() {
    for id in [
        "tf1/canary-peephole-clipped-c",
        "block/canary-peephole-new-cs",
    ] {
        let run = check(&case(id), Mistake::PeepholesIgnored, None);
        assert!(
            hint(&run, Trap::Peepholes).contains("without peepholes"),
            "{id}"
        );
    }
}

#[test]
fn an_ignored_direction_is_named_for_a_step_and_for_a_backward_half() {
    // One go_backwards layer run forward.
    let run = check(
        &case("keras3/rand-005-lstm-back-seq-state"),
        Mistake::ReverseRunForward,
        Some(Layout::Keras),
    );
    assert!(hint(&run, Trap::ReverseOrder).contains("other direction"));
    // The backward half of a Bidirectional layer run forward.
    let c = case("keras3/canary-bidi-backward-order");
    let run = check(&c, Mistake::ReverseRunForward, Some(Layout::Keras));
    let m = hint(&run, Trap::ReverseOrder);
    assert!(
        m.contains("the reverse step (bw) run forward") && m.contains("forward steps are right"),
        "{m}"
    );
    // Its outputs returned in input time order.
    let run = check(
        &c,
        Mistake::ReverseOutputsInInputOrder { traces: false },
        Some(Layout::Keras),
    );
    assert!(hint(&run, Trap::ReverseOrder).contains("input time order"));
}

#[test]
fn a_zero_length_row_that_drops_its_initial_state_is_named() {
    let run = check(
        &case("tf1/rand-023-lstm-dyn-tm-seqlen-init"),
        Mistake::ZeroLengthDropsInitialState,
        Some(Layout::Onnx),
    );
    assert!(hint(&run, Trap::ZeroLength).contains("a row with no time step is zeros"));
}

#[test]
fn the_initial_h_output_before_a_rows_first_step_is_named() {
    let c = case("keras3/canary-mask-repeat");
    let run = check(
        &c,
        Mistake::LeadingMaskedOutputInitialH,
        Some(Layout::Keras),
    );
    assert!(hint(&run, Trap::MaskingRule).contains("output the initial h where the case has zeros"));
}

#[test]
fn reduced_precision_is_named_and_imprecision_is_not() {
    for p in Precision::ALL {
        let run = check(
            &case("tf1/rand-001-basic-dyn"),
            Mistake::ReducedPrecision(p),
            None,
        );
        let m = hint(&run, Trap::ReducedPrecision);
        assert!(
            m.contains(&format!("every output value is a {} value", p.name())),
            "{m}"
        );
    }
    // Uniformly off by 1e-3 is no precision: no hint (see
    // no_trap_is_named_for_a_merely_imprecise_implementation).
}

/// The first layer whose own results part is named, even where a later
/// layer parts at an earlier time step: without traces, layer 0 is seen
/// only through its final state, layer 1 through y from the first step.
#[test]
fn the_first_diverging_layer_is_named_not_the_earliest_time() {
    struct LaterLayerEarlier;
    impl lstm_parity::dialect::Runner<f32> for LaterLayerEarlier {
        fn run_step(
            &mut self,
            step: &lstm_parity::dialect::Step<f32>,
        ) -> Result<lstm_parity::lstm::RunOutput<f32>, lstm_parity::dialect::DialectError> {
            let mut run = RustLstm.run_step(step)?;
            run.trace.clear();
            run.outputs.mapv_inplace(|v| v + 0.01);
            run.final_state[0].c.mapv_inplace(|v| v + 0.01);
            Ok(run)
        }
    }
    use lstm_parity::dialect::Runner;
    let c = case("tf1/nb001-stacked");
    let mut rust = RustLstm;
    let mut recording = conformance::Recording::new(&mut rust);
    c.model
        .run_with::<f32>(&c.variables, &c.inputs, &mut recording)
        .unwrap();
    let step = &recording.steps[0].0;
    assert_eq!(step.layers.len(), 2);
    let actual = LaterLayerEarlier.run_step(step).unwrap();
    let d =
        lstm_parity::conformance::diagnose::step_divergence(step, &actual).expect("a divergence");
    assert_eq!((d.layer, d.source, d.state), (0, "final", "c"), "{d:?}");
}
