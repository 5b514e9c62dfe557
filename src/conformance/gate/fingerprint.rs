//! The fingerprint of an export and the features of a case.

use super::format::ExportIndex;
use super::io::json_bytes;
use crate::conformance::fsio;
use crate::dialect::layout;
use crate::dialect::{Half, Step};
use crate::lstm::{Activation, MaskedOutput, Real};

/// The fingerprint of an index: the SHA-256 of its JSON with the
/// fingerprint field empty. It covers the layout, dtype and forget_bias,
/// every case's flags, features and steps, and the hashes of every file
/// exported and every reference file read, so a change to any of them
/// changes it.
pub fn fingerprint(index: &ExportIndex) -> String {
    let mut blank = index.clone();
    blank.suite_fingerprint = String::new();
    blank.reference = None;
    for case in &mut blank.cases {
        case.reduced_files.clear();
    }
    fsio::sha256(&json_bytes(&blank))
}

/// What the steps of a case exercise, for reports and the compatibility
/// matrix: `peepholes`, `cell_clip`, `projection`, `proj_clip`,
/// `forget_bias`, `activations` (other than sigmoid/tanh/tanh), `stacked`,
/// `reverse`, `bidirectional`, `sequence_lengths`, `zero_length`, `mask`
/// (not a length mask), `masked_repeat`, `initial_state`, `one_step`,
/// `chained_steps` (later steps read earlier results: a Keras Sequential
/// layer, a stateful call, a TF1 ResidualWrapper in a MultiRNNCell);
/// `plain` for none.
pub fn features<T: Real>(steps: &[Step<T>]) -> Vec<String> {
    let mut f: Vec<&str> = Vec::new();
    let mut add = |cond: bool, name: &'static str| {
        if cond && !f.contains(&name) {
            f.push(name);
        }
    };
    for s in steps {
        for l in &s.layers {
            add(l.peepholes.is_some(), "peepholes");
            add(l.cell_clip.is_some(), "cell_clip");
            add(l.projection.is_some(), "projection");
            add(
                l.projection.as_ref().is_some_and(|p| p.clip.is_some()),
                "proj_clip",
            );
            add(l.forget_bias != T::zero(), "forget_bias");
            add(
                (l.gate_activation, l.cell_activation, l.output_activation)
                    != (Activation::Sigmoid, Activation::Tanh, Activation::Tanh),
                "activations",
            );
        }
        add(s.layers.len() > 1, "stacked");
        add(s.reverse, "reverse");
        add(s.bidirectional == Some(Half::Backward), "bidirectional");
        if let Some(m) = &s.mask {
            let lengths = layout::mask_lengths(m);
            add(lengths.is_some(), "sequence_lengths");
            add(
                lengths.as_ref().is_some_and(|l| l.contains(&0)),
                "zero_length",
            );
            add(lengths.is_none(), "mask");
            add(
                s.masked_output == MaskedOutput::RepeatPrevious,
                "masked_repeat",
            );
        }
        add(s.initial_state.is_some(), "initial_state");
        add(s.inputs.dim().1 == 1, "one_step");
        add(s.depends_on_earlier_steps, "chained_steps");
    }
    if f.is_empty() {
        f.push("plain");
    }
    f.into_iter().map(str::to_string).collect()
}
