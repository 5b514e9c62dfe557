//! # lstm-parity
//!
//! A Rust LSTM that is proven, case by case, to compute what TensorFlow and
//! Keras compute, and a conformance harness other LSTM implementations can
//! be gated on.
//!
//! The crate is layered; dependencies point down only:
//!
//! | module | what it is | must not know |
//! |---|---|---|
//! | [`conformance`] | the engine: cases on disk, comparison, tolerances, reports | any particular framework |
//! | [`dialect`] | each framework's terms (gate orders, quirks) to and from the canonical LSTM | files |
//! | [`lstm`] | the canonical LSTM math and its slow `f64` oracle | frameworks, files |
//! | [`tensor`] | the arrays passed between them | |
//! | [`parse`] | names read from the command line and files, and the typed error for an unknown one | |
//! | [`mod@bench`] | timing the kernel at the benchmark shapes (`lstm-parity bench`) | |
//!
//! Where to start, by task:
//!
//! | to | read |
//! |---|---|
//! | run a stack of canonical layers | [`lstm::run`], [`lstm::run_with`], [`lstm::Prepared`] |
//! | run a case in a framework's own terms | [`dialect::Model`] and the modules [`dialect::tf1`], [`dialect::block`], [`dialect::keras`] |
//! | load, run and compare recorded cases | [`conformance::suite`], [`conformance::case`], [`conformance::compare`] |
//! | gate another implementation | [`conformance::gate`] (export, check), [`dialect::layout`] (weight layouts) |
//! | map TensorFlow/Keras terms to this crate's | [`for_tensorflow_users`] |
//!
//! Documents in the repository: `docs/semantics.md` (what each framework
//! computes, quirk by quirk, with the recorded cases that prove it; the
//! dialect modules cite its sections), `reference/README.md` (the case
//! format), `docs/gate.md` (the gate's file contract), `docs/performance.md`
//! (the kernel's design and measurements).

#![warn(missing_docs)]

pub mod bench;
pub mod conformance;
pub mod dialect;
pub mod for_tensorflow_users;
pub mod lstm;
pub mod parse;
pub mod tensor;
