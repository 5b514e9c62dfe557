//! The engine: cases, comparison, reports.
//!
//! Shared by the CLI (`src/main.rs`) and the test harnesses (`tests/`),
//! which only parse arguments and print. It knows nothing of a particular
//! framework beyond asking [`crate::dialect`] to parse and run a model.

pub mod case;
pub mod check;
pub mod compare;
pub mod delta;
pub mod diagnose;
pub mod expectations;
pub mod fsio;
pub mod gate;
pub mod json;
pub mod junit;
pub mod manifest;
pub mod mistake;
pub mod npy;
pub mod reduced;
pub mod replace;
pub mod report;
pub mod suite;
pub mod tolerance;

pub use case::{Case, CaseError, CaseErrorKind};
pub use check::{
    check_outputs, check_outputs_except, check_runner, check_runner_except, run_all, run_case,
    select, CaseRun, Dtype, NotCompared, Recording, Selection, NEEDS_TRACES,
};
pub use suite::{discover, Filter, ModelFilter};
pub use tolerance::Tolerance;
