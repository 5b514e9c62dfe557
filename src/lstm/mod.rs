//! The canonical LSTM: one weight form, one step function, one sequence
//! runner, generic over `f32` and `f64`.
//!
//! This module knows nothing of files or frameworks. Every framework's terms
//! (gate orders, `forget_bias`, `go_backwards`, masking rules) are turned into
//! this form by `crate::dialect`.
//!
//! * [`Layer`] holds the weights in the canonical form: input weights
//!   `[input, 4*units]`, recurrent weights `[h_depth, 4*units]`, bias
//!   `[4*units]`, gate blocks in the fixed order **i, f, g, o**.
//! * [`run`] runs a stack of layers over a batch of sequences ([`Sequence`]);
//!   [`run_with`] takes [`RunOptions`] (threads, whether to record per-step
//!   states).
//! * [`oracle`] is a slow scalar `f64` implementation written to be read; the
//!   property tests hold [`run`] to it.
//!
//! The semantics are in `layer`, `gates`, `activation` and `runner`; how
//! they are computed fast (packed weights, vectorised activations,
//! threads) is the `kernel` subtree, which adds nothing to them.

mod activation;
mod gates;
mod kernel;
mod layer;
pub mod oracle;
mod real;
pub mod reduced;
mod runner;

pub(crate) use kernel::recurrent;

pub use activation::Activation;
pub use gates::{step_gates, Gates};
pub use kernel::release_cached_buffers;
pub use kernel::{default_threads, THREADS_ENV};
pub use layer::{Gate, Layer, Peepholes, Projection, ShapeError};
pub use real::Real;
pub use reduced::Precision;
#[doc(hidden)]
pub use runner::layer_threads;
pub use runner::{
    run, run_with, MaskedOutput, Prepared, RunOptions, RunOutput, Sequence, State, StepTrace,
    FAST_ACTIVATIONS_ENV, MIN_PROJECTION_WORK_FOR_THREADS, MIN_STEP_WORK_FOR_THREADS,
};
