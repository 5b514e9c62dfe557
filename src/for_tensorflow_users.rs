//! # lstm-parity for TensorFlow and Keras users
//!
//! A map from what you write in TensorFlow or Keras to this crate's items,
//! and the differences that silently change numbers when an LSTM moves
//! between frameworks. The full account, quirk by quirk with the recorded
//! case that proves each, is `docs/semantics.md` in the repository.
//!
//! ## One canonical LSTM
//!
//! Every framework's layer becomes one [`Layer`]: input weights
//! `w_x [input, 4u]`, recurrent weights `w_h [h, 4u]`, `bias [4u]`, gate
//! blocks in the order **i, f, g, o** (Keras calls `g` "c", TF1 calls it
//! "j"), plus what some frameworks add: a run-time `forget_bias`,
//! [`Peepholes`], a cell clip, a [`Projection`], and the three
//! activations. A [`Sequence`] says what to run it on: inputs
//! `[batch, time, input]` (batch-major), initial states, a mask and what
//! masked steps output ([`MaskedOutput`]), and the direction.
//!
//! ```
//! use lstm_parity::lstm::{self, Layer, Sequence};
//! use ndarray::{Array1, Array2, Array3};
//!
//! // One layer of 3 units over 2 input features, all weights 0.1.
//! let layer = Layer::new(
//!     Array2::from_elem((2, 12), 0.1f32),
//!     Array2::from_elem((3, 12), 0.1f32),
//!     Array1::zeros(12),
//! );
//! let x = Array3::from_elem((1, 4, 2), 1.0f32); // [batch, time, input]
//! let out = lstm::run(&[layer], &Sequence::new(x.view())).unwrap();
//! assert_eq!(out.outputs.dim(), (1, 4, 3));
//! assert_eq!(out.final_state[0].h.dim(), (1, 3));
//! ```
//!
//! ## From your framework to the canonical form
//!
//! | you write | weights | gate order | forget bias | in this crate |
//! |---|---|---|---|---|
//! | `tf.compat.v1.nn.rnn_cell.LSTMCell`, `BasicLSTMCell`, `MultiRNNCell` | one `kernel [input + h, 4u]`: rows for x, then rows for h | i, j, f, o | added at run time (default 1.0) | [`dialect::tf1`] |
//! | `dynamic_rnn`, `static_rnn`, `bidirectional_dynamic_rnn` | as the cell | | | [`dialect::tf1`] |
//! | `tf.raw_ops.LSTMBlockCell`, `BlockLSTM` | `w [input + u, 4u]`, `wci`, `wcf`, `wco` | i, c, f, o | `forget_bias` attribute (default 1.0) | [`dialect::block`] |
//! | `tf.raw_ops.BlockLSTMV2` | as above | i, f, c, o | none | [`dialect::block`] |
//! | `keras.layers.LSTM`, `RNN(LSTMCell)`, `Bidirectional` (Keras 3 and tf-keras) | `kernel [input, 4u]`, `recurrent_kernel [u, 4u]`, `bias [4u]` | i, f, c, o | already in `bias` | [`dialect::keras`] |
//!
//! A recorded case names its framework (`dialect` in `case.json`);
//! [`dialect::Model::parse`] reads its model description and
//! [`dialect::Model::run`] computes its outputs in the framework's own
//! names and layouts. To convert weights yourself,
//! [`dialect::blocks_to_canonical`] reorders gate blocks and
//! [`dialect::layout::export_layer`] writes a canonical layer in any
//! supported layout (TF1, Keras, the block ops, ONNX, PyTorch, cuDNN).
//!
//! ## What changes numbers silently
//!
//! * **Gate order.** TF1's kernel is i, j, f, o; Keras's i, f, c, o; the
//!   block ops' i, c, f, o; ONNX's i, o, f, c. Reading one as another
//!   runs, and gives wrong numbers.
//! * **`forget_bias`.** TF1 and the block ops add it at run time; Keras
//!   stores it in `bias` (`unit_forget_bias=True` only initialises the
//!   bias to 1 there). Folding it into the bias and adding it again, or
//!   dropping it, are the classic port bugs. [`Layer::forget_bias`] keeps
//!   it apart, so float32 rounding matches the frameworks that add it.
//! * **`cell_clip`.** TF1's `cell_clip=0.0` clips to 0; the block ops
//!   clip at 3.0 when the attribute is not passed; Keras has none.
//! * **`go_backwards`.** Keras returns the outputs in processing order
//!   (last input first); TF1's bidirectional runners reverse each row's
//!   valid steps only, and return outputs in input order.
//! * **Masking.** Past `sequence_length`, TF1 outputs zeros and carries the
//!   state; a Keras mask repeats the previous output (zeros before a row's
//!   first step), or outputs zeros with `zero_output_for_mask`
//!   ([`MaskedOutput`]).
//! * **`hard_sigmoid`.** tf-keras computes `clip(0.2x + 0.5, 0, 1)`, Keras
//!   3 `relu6(x + 3) / 6`; [`Activation`] has both.
//! * **State order.** TF1's `LSTMStateTuple` is `(c, h)`; Keras's
//!   `return_state` gives `[output, h, c]`.
//!
//! Each of these has a `canary-*` case under `reference/` built so that
//! the mistake moves the outputs visibly, and
//! [`conformance::mistake`] the wrong implementation that proves it.
//!
//! ## Checking your own implementation
//!
//! * In Rust: implement [`dialect::Runner`] and call
//!   [`conformance::check_runner`] per case (see `examples/candle-gate/`).
//! * In any language: `lstm-parity export --layout L` writes every case
//!   as steps in layout `L`, your program writes the outputs,
//!   `lstm-parity check` judges them ([`conformance::gate`]; `docs/gate.md`).
//!
//! [`Layer`]: crate::lstm::Layer
//! [`Layer::forget_bias`]: crate::lstm::Layer::forget_bias
//! [`Peepholes`]: crate::lstm::Peepholes
//! [`Projection`]: crate::lstm::Projection
//! [`Sequence`]: crate::lstm::Sequence
//! [`MaskedOutput`]: crate::lstm::MaskedOutput
//! [`Activation`]: crate::lstm::Activation
//! [`dialect::tf1`]: crate::dialect::tf1
//! [`dialect::block`]: crate::dialect::block
//! [`dialect::keras`]: crate::dialect::keras
//! [`dialect::Model::parse`]: crate::dialect::Model::parse
//! [`dialect::Model::run`]: crate::dialect::Model::run
//! [`dialect::blocks_to_canonical`]: crate::dialect::blocks_to_canonical
//! [`dialect::layout::export_layer`]: crate::dialect::layout::export_layer
//! [`dialect::Runner`]: crate::dialect::Runner
//! [`conformance::check_runner`]: crate::conformance::check_runner
//! [`conformance::gate`]: crate::conformance::gate
//! [`conformance::mistake`]: crate::conformance::mistake
