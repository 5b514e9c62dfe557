//! The parity suite: one named trial per recorded case and dtype, found at
//! run time under `reference/` (or `$LSTM_PARITY_REFERENCE`): float32 and
//! float64 for every case, float16 and bfloat16 (emulated) for every case
//! with a recorded run in them.
//!
//! `cargo test --test parity -- tf1/` runs the TF1 cases only. A failure
//! prints the output, worst index, both values and the first diverging step.

use libtest_mimic::{Arguments, Failed, Trial};
use lstm_parity::conformance::{self, report, Case, Dtype, Filter};

fn main() {
    let args = Arguments::from_args();
    let root = conformance::suite::reference_root(None);
    let selection = conformance::select(&root, &Filter::new::<&str>(&[]).expect("empty filter"))
        .unwrap_or_else(|e| panic!("cannot list the reference cases: {e}"));
    let mut trials = Vec::new();
    for error in selection.errors {
        let name = format!("{}/load", error.case);
        let message = error.to_string();
        trials.push(Trial::test(name, move || Err(Failed::from(message))));
    }
    for case in selection.cases {
        let case = std::sync::Arc::new(case);
        let reduced = Dtype::REDUCED
            .into_iter()
            .filter(|d| d.precision().is_some_and(|p| case.reduced.contains_key(&p)));
        for dtype in Dtype::ALL.into_iter().chain(reduced) {
            let case = case.clone();
            let name = format!("{}/{dtype}", case.id);
            trials.push(Trial::test(name, move || check(&case, dtype)));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn check(case: &Case, dtype: Dtype) -> Result<(), Failed> {
    let run = conformance::run_case(case, dtype, None);
    if run.passed() {
        Ok(())
    } else {
        Err(report::failure_detail(&run).into())
    }
}
