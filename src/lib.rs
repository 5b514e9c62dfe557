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
//! | [`mod@bench`] | timing the kernel at the benchmark shapes (`lstm-parity bench`) | |
//!
//! The case format is documented in `reference/README.md`; each framework's
//! semantics in the dialect modules' docs.

pub mod bench;
pub mod conformance;
pub mod dialect;
pub mod lstm;
pub mod tensor;
