//! One snapshot per seed-notebook scenario: a readable report of the case,
//! its shapes, the Rust LSTM's outputs and states (rounded) and its error
//! against TensorFlow. The numeric verdicts are the parity suite's; these
//! snapshots are for people to review (`cargo insta review`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use lstm_parity::conformance::compare::resolve;
use lstm_parity::conformance::{self, Case, Dtype, Filter, Tolerance};
use ndarray::{ArrayD, Axis};

fn reference_root() -> PathBuf {
    lstm_parity::conformance::suite::reference_root(None)
}

fn notebook_cases() -> Vec<Case> {
    let selection =
        conformance::select(&reference_root(), &Filter::new::<&str>(&[]).unwrap()).unwrap();
    assert!(
        selection.errors.is_empty(),
        "cases that do not load: {:?}",
        selection.errors
    );
    selection
        .cases
        .into_iter()
        .filter(|c| c.manifest.provenance.notebook.is_some())
        .collect()
}

/// The smallest power of ten at or above `x`, as text (`<= 1e-7`).
fn order_of(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("<= 1e{}", x.log10().ceil() as i32)
    }
}

fn rounded(a: &ArrayD<f64>) -> String {
    let rows: Vec<String> = a
        .rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .map(|v| format!("{v:>10.6}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    rows.join("\n      ")
}

fn report(case: &Case) -> String {
    let m = &case.manifest;
    let mut s = String::new();
    let _ = writeln!(s, "case: {}", case.id);
    let _ = writeln!(
        s,
        "notebook: {}",
        m.provenance.notebook.as_deref().unwrap_or("-")
    );
    let _ = writeln!(s, "description: {}", m.description);
    let _ = writeln!(s, "model: {}", case.model.summary());
    for (name, t) in &case.inputs {
        let _ = writeln!(s, "input {name}: {} {:?}", t.dtype(), t.shape());
    }
    for (name, t) in &case.variables {
        let _ = writeln!(s, "variable {name}: {:?}", t.shape());
    }
    let ours = case
        .model
        .run::<f64>(&case.variables, &case.inputs)
        .unwrap();
    for (name, e) in &case.expected {
        if name.starts_with("trace/") {
            continue;
        }
        let _ = writeln!(
            s,
            "output {name} {:?} (Rust, float64 run, 6 decimals):\n      {}",
            e.float32.shape(),
            rounded(&ours[name])
        );
    }
    for dtype in Dtype::ALL {
        let run = conformance::run_case(case, dtype, None);
        let verdict = if run.passed() { "pass" } else { "FAIL" };
        let _ = writeln!(
            s,
            "{dtype} run against TensorFlow: {verdict}, max abs error {}",
            order_of(run.max_abs())
        );
    }
    if !case.printed.is_empty() {
        let _ = writeln!(
            s,
            "numbers the notebook printed, against the recording and the Rust float32 run:"
        );
        let ours32 = case
            .model
            .run::<f32>(&case.variables, &case.inputs)
            .unwrap();
        for (name, (printed, tf32, rust32)) in printed_triples(case, &ours32) {
            let gap = |a: &ArrayD<f64>| {
                a.iter()
                    .zip(printed.iter())
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max)
            };
            let _ = writeln!(
                s,
                "  {name}: |printed - TF float32| {}, |printed - Rust float32| {}",
                order_of(gap(&tf32)),
                order_of(gap(&rust32))
            );
        }
    }
    s
}

/// A printed array with the matching part of TensorFlow's and the Rust
/// float32 results: `(printed, tf32, rust32)`.
type Printed = (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>);

/// For each printed array: (printed, TensorFlow float32, Rust float32).
/// A printed name is an output name, optionally indexed on its first axis
/// (`outputs[0]`).
fn printed_triples(
    case: &Case,
    ours32: &lstm_parity::dialect::Outputs<f32>,
) -> Vec<(String, Printed)> {
    case.printed
        .iter()
        .map(|(name, printed)| {
            let (output, index) = match name.split_once('[') {
                Some((o, rest)) => (
                    o,
                    Some(rest.trim_end_matches(']').parse::<usize>().unwrap()),
                ),
                None => (name.as_str(), None),
            };
            // The printed array may be a leading part (the seed text of
            // notebook-003 is cut off inside the 7th row of outputs[0]).
            let pick = |a: ArrayD<f64>| {
                let a = match index {
                    Some(i) => a.index_axis(Axis(0), i).to_owned(),
                    None => a,
                };
                a.slice_each_axis(|ax| ndarray::Slice::from(0..printed.shape()[ax.axis.index()]))
                    .to_owned()
            };
            let tf32 = pick(case.expected[output].float32.mapv(f64::from));
            let rust32 = pick(ours32[output].mapv(f64::from));
            (name.clone(), (printed.clone(), tf32, rust32))
        })
        .collect()
}

#[test]
fn every_notebook_scenario_is_a_snapshot() {
    let cases = notebook_cases();
    let notebooks: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| c.manifest.provenance.notebook.clone())
        .collect();
    let all: BTreeSet<String> = (0..5).map(|k| format!("notebook-00{k}")).collect();
    assert_eq!(notebooks, all, "every seed notebook has recorded cases");
    for case in &cases {
        let name = case.id.replace('/', "__");
        insta::with_settings!({snapshot_suffix => name, prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("notebook", report(case));
        });
    }
}

/// notebook-003 prints TensorFlow's numbers: the recording and the Rust
/// float32 run both reproduce them, to the printed precision plus the
/// case's float32 tolerance.
#[test]
fn notebook_003_printed_numbers_are_reproduced() {
    let cases = notebook_cases();
    let case = cases
        .iter()
        .find(|c| c.manifest.provenance.notebook.as_deref() == Some("notebook-003"))
        .expect("the notebook-003 case is recorded");
    assert!(
        !case.printed.is_empty(),
        "the notebook-003 case keeps the printed numbers"
    );
    let decimals = case.manifest.notebook_printed.as_ref().unwrap();
    let ours32 = case
        .model
        .run::<f32>(&case.variables, &case.inputs)
        .unwrap();
    for (name, (printed, tf32, rust32)) in printed_triples(case, &ours32) {
        let output = name.split('[').next().unwrap();
        let (_, _, bound) = resolve::<f32>(&Tolerance::Default, &case.expected[output]);
        let lstm_parity::conformance::tolerance::Bound::Abs(bound) = bound else {
            panic!("default level is an absolute bound")
        };
        let rounding = 0.5 * 10f64.powi(-(decimals[&name].decimals as i32));
        for ((p, t), r) in printed.iter().zip(tf32.iter()).zip(rust32.iter()) {
            assert!(
                (p - t).abs() <= rounding + bound,
                "{name}: printed {p}, TF recorded {t}"
            );
            assert!(
                (p - r).abs() <= rounding + bound,
                "{name}: printed {p}, Rust {r}"
            );
        }
    }
}
