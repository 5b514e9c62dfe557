//! The suite can fail: a one-element change to any expected array of any
//! case makes that case fail, with a report naming the output and the
//! index (and, for per-step states, the step).

use lstm_parity::conformance::compare::resolve;
use lstm_parity::conformance::tolerance::Bound;
use lstm_parity::conformance::{self, report, Case, Dtype, Filter, Tolerance};
use ndarray::{ArrayD, Dimension};

/// How far above the case's own float32 bound the changed element moves.
const CHANGE_IN_BOUNDS: f64 = 1000.0;

fn cases() -> Vec<Case> {
    let root = lstm_parity::conformance::suite::reference_root(None);
    let selection = conformance::select(&root, &Filter::new::<&str>(&[]).unwrap()).unwrap();
    assert!(selection.errors.is_empty());
    selection.cases
}

/// The element changed: the middle one.
fn middle(len: usize) -> usize {
    len / 2
}

#[test]
fn a_changed_expected_element_fails_its_case() {
    let mut checked = 0;
    for case in cases() {
        for (name, expected) in &case.expected {
            if expected.float32.is_empty() {
                continue;
            }
            let Bound::Abs(bound) = resolve::<f32>(&Tolerance::Default, expected).2 else {
                panic!("default level is an absolute bound")
            };
            let k = middle(expected.float32.len());
            let change = |v: f64| v + CHANGE_IN_BOUNDS * bound * v.abs().max(1.0);
            let files: Vec<(&str, Case)> = {
                let mut variants = Vec::new();
                let mut c = case.clone();
                let e = c.expected.get_mut(name).unwrap();
                let v = e.float32.as_slice_mut().unwrap();
                v[k] = change(f64::from(v[k])) as f32;
                variants.push(("float32", c));
                if expected.float64.is_some() {
                    let mut c = case.clone();
                    let e = c.expected.get_mut(name).unwrap();
                    let v = e.float64.as_mut().unwrap().as_slice_mut().unwrap();
                    v[k] = change(v[k]);
                    variants.push(("float64", c));
                }
                variants
            };
            for (file, tampered) in files {
                let runs: Vec<_> = Dtype::ALL
                    .iter()
                    .map(|&d| conformance::run_case(&tampered, d, None))
                    .collect();
                let failed: Vec<_> = runs.iter().filter(|r| !r.passed()).collect();
                assert!(
                    !failed.is_empty(),
                    "{}: changing {name} ({file}) at {k} went unnoticed",
                    case.id
                );
                let shape = expected.float32.shape();
                let index: Vec<usize> = ndarray::indices(shape)
                    .into_iter()
                    .nth(k)
                    .unwrap()
                    .as_array_view()
                    .to_vec();
                let detail: String = failed.iter().map(|r| report::failure_detail(r)).collect();
                assert!(
                    detail.contains(&format!("output {name}")),
                    "{}: report does not name {name}:\n{detail}",
                    case.id
                );
                assert!(
                    detail.contains(&format!("{index:?}")),
                    "{}: report does not name index {index:?}:\n{detail}",
                    case.id
                );
                if name.starts_with("trace/") {
                    assert!(
                        detail.contains(&format!("step {}", index[1])),
                        "{}: report does not name the step:\n{detail}",
                        case.id
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} arrays were checked");
}

/// Gate order, forget_bias and direction mistakes in an implementation
/// are caught: feeding a case a deliberately wrong variant fails it.
#[test]
fn wrong_variants_fail() {
    let case = cases()
        .into_iter()
        .find(|c| c.id == "tf1/nb001-stacked")
        .expect("recorded");
    // Wrong: swap the j and f blocks of every kernel (Keras order read as TF1's).
    let mut swapped = case.clone();
    for (name, t) in swapped.variables.iter_mut() {
        if let lstm_parity::tensor::Tensor::F32(a) = t {
            let n = a.shape()[a.ndim() - 1] / 4;
            let original: ArrayD<f32> = a.clone();
            for (idx, v) in a.indexed_iter_mut() {
                let col = idx[idx.ndim() - 1];
                let (block, j) = (col / n, col % n);
                let from = match block {
                    1 => 2,
                    2 => 1,
                    b => b,
                };
                let mut src = idx.clone();
                src[idx.ndim() - 1] = from * n + j;
                *v = original[src];
            }
            assert!(name.ends_with("kernel") || name.ends_with("bias"));
        }
    }
    for dtype in Dtype::ALL {
        let run = conformance::run_case(&swapped, dtype, None);
        assert!(!run.passed(), "swapped gate blocks pass in {dtype}");
        let d = run
            .divergence
            .expect("per-step states locate the divergence");
        assert_eq!(d.step, 0, "a gate-order error shows at the first step");
    }
}
