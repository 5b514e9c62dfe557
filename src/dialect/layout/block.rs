//! `block` and `block-v2`: TensorFlow's fused ops, `LSTMBlockCell` /
//! `BlockLSTM` and `BlockLSTMV2`, their inputs as the ops take them.
//!
//! Arrays: `w [I+U,4U]` (one matrix over `[x, h]`), `b [4U]`, and the
//! peepholes `wci`/`wcf`/`wco [U]`, always present (zeros unless
//! `use_peephole`). Gate order i, c, f, o for `block`, i, f, c, o for
//! `block-v2`; sequences time-major. `block` has `forget_bias` (kept or
//! folded); `block-v2` has none, so its options have no such field.
//! `cell_clip <= 0` means no clipping here, so a layer that clips at 0 or
//! below cannot be expressed, and no clip is written as `0`. The ops take
//! no per-row lengths or mask, no projection, standard activations only,
//! and run forward only.

use ndarray::{s, Array1};
use serde::{Deserialize, Serialize};

use super::arrays::{mat, named, named_peepholes, peepholes, vec1, Named};
use super::{Arrays, Lacks, LayerLayout, LayerOption, Layout, Masks};
use crate::dialect::{self, block, DialectError};
use crate::lstm::{Gate, Layer, Peepholes, Real};

/// The peephole vectors' names (input, forget, output gate).
const PEEPHOLES: [&str; 3] = ["wci", "wcf", "wco"];

const NO_MASK: Masks = Masks::None(
    "the block ops have no per-row lengths or mask (seq_len_max is one number for the batch)",
);

/// The `block` layout (`LSTMBlockCell`, `BlockLSTM`).
pub(super) struct Block;

/// The `block-v2` layout (`BlockLSTMV2`).
pub(super) struct BlockV2;

/// A `block` layer's options: the op's attributes.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BlockOptions {
    forget_bias: f64,
    /// `0` for no clipping.
    cell_clip: f64,
    use_peephole: bool,
}

/// A `block-v2` layer's options: `block`'s without `forget_bias`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BlockV2Options {
    /// `0` for no clipping.
    cell_clip: f64,
    use_peephole: bool,
}

impl LayerLayout for Block {
    const LAYOUT: Layout = Layout::Block;
    const GATE_ORDER: [Gate; 4] = block::ICFO;
    const GATE_NAMES: [&'static str; 4] = ["i", "f", "c", "o"];
    const TIME_MAJOR: bool = true;
    const FORGET_BIAS: bool = true;
    const MASKS: Masks = NO_MASK;
    const FORWARD_ONLY: Option<&'static str> = Some("the block ops");
    type Options = BlockOptions;

    fn check_layer<T: Real>(layer: &Layer<T>) -> Result<(), Lacks> {
        check::<Self, T>(layer)
    }

    fn export<T: Real>(layer: &Layer<T>, _: usize) -> (BlockOptions, Named<T>) {
        let options = BlockOptions {
            forget_bias: layer.forget_bias.widen(),
            cell_clip: cell_clip(layer),
            use_peephole: layer.peepholes.is_some(),
        };
        (options, export::<Self, T>(layer))
    }

    fn import<T: Real>(
        options: BlockOptions,
        arrays: &Arrays<T>,
        _: usize,
    ) -> Result<Layer<T>, DialectError> {
        let mut l = import::<Self, T>(arrays, options.cell_clip, options.use_peephole)?;
        l.forget_bias = T::from_f64_lossy(options.forget_bias);
        Ok(l)
    }
}

impl LayerLayout for BlockV2 {
    const LAYOUT: Layout = Layout::BlockV2;
    const GATE_ORDER: [Gate; 4] = block::IFCO;
    const GATE_NAMES: [&'static str; 4] = Block::GATE_NAMES;
    const TIME_MAJOR: bool = Block::TIME_MAJOR;
    const FORGET_BIAS: bool = false;
    const MASKS: Masks = Block::MASKS;
    const FORWARD_ONLY: Option<&'static str> = Block::FORWARD_ONLY;
    type Options = BlockV2Options;

    fn check_layer<T: Real>(layer: &Layer<T>) -> Result<(), Lacks> {
        check::<Self, T>(layer)
    }

    fn export<T: Real>(layer: &Layer<T>, _: usize) -> (BlockV2Options, Named<T>) {
        let options = BlockV2Options {
            cell_clip: cell_clip(layer),
            use_peephole: layer.peepholes.is_some(),
        };
        (options, export::<Self, T>(layer))
    }

    fn import<T: Real>(
        options: BlockV2Options,
        arrays: &Arrays<T>,
        _: usize,
    ) -> Result<Layer<T>, DialectError> {
        import::<Self, T>(arrays, options.cell_clip, options.use_peephole)
    }
}

fn check<L: LayerLayout, T: Real>(layer: &Layer<T>) -> Result<(), Lacks> {
    Lacks::standard_activations::<L, T>(layer)?;
    if layer.projection.is_some() {
        return Lacks::option::<L>(LayerOption::Projection);
    }
    match layer.cell_clip {
        Some(clip) if clip <= T::zero() => Err(Lacks::BlockClipNotPositive(clip.to_string())),
        _ => Ok(()),
    }
}

/// The op's `cell_clip`: `0` for none.
fn cell_clip<T: Real>(layer: &Layer<T>) -> f64 {
    layer.cell_clip.map_or(0.0, T::widen)
}

fn export<L: LayerLayout, T: Real>(layer: &Layer<T>) -> Named<T> {
    let (w, b) = block::weights_from_canonical(layer, L::GATE_ORDER);
    let zeros = || Array1::<T>::zeros(layer.units());
    let p = layer.peepholes.clone().unwrap_or_else(|| Peepholes {
        input: zeros(),
        forget: zeros(),
        output: zeros(),
    });
    let mut arrays = vec![named("w", w), named("b", b)];
    arrays.extend(named_peepholes(PEEPHOLES, &p));
    arrays
}

fn import<L: LayerLayout, T: Real>(
    arrays: &Arrays<T>,
    cell_clip: f64,
    use_peephole: bool,
) -> Result<Layer<T>, DialectError> {
    let w = mat(arrays, "w")?;
    let b = vec1(arrays, "b")?;
    let units = b.len() / 4;
    let input = w
        .nrows()
        .checked_sub(units)
        .ok_or_else(|| DialectError::Model("block w has fewer rows than units".into()))?;
    let order = L::GATE_ORDER;
    let mut l = Layer::new(
        dialect::blocks_to_canonical(w.slice(s![..input, ..]), order),
        dialect::blocks_to_canonical(w.slice(s![input.., ..]), order),
        dialect::vector_to_canonical(b.view(), order),
    );
    l.cell_clip = (cell_clip > 0.0).then(|| T::from_f64_lossy(cell_clip));
    if use_peephole {
        l.peepholes = Some(peepholes(arrays, PEEPHOLES)?);
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{import_error, layer, round_trip, with_peepholes};
    use super::super::{fold_forget_bias, ForgetBias, LayerLayout, Layout};
    use super::Block;

    #[test]
    fn peepholes_and_the_clip_round_trip_in_both_gate_orders() {
        let l = with_peepholes();
        assert_eq!(round_trip(Layout::Block, &l, 0, ForgetBias::Kept), l);
        assert_eq!(
            round_trip(Layout::BlockV2, &l, 0, ForgetBias::Folded),
            fold_forget_bias(&l, ForgetBias::Folded)
        );
    }

    #[test]
    fn block_v2_has_no_forget_bias_option() {
        let e = import_error(Layout::BlockV2, &layer(3, 2, 0.5), |o| {
            o.insert("forget_bias".into(), 1.0.into());
        });
        assert!(
            e.starts_with("model: layout block-v2: options: unknown field `forget_bias`"),
            "{e}"
        );
    }

    #[test]
    fn a_clip_at_zero_is_not_expressible() {
        let mut l = layer(3, 2, 0.5);
        l.cell_clip = Some(0.0);
        assert_eq!(
            Block::check_layer(&l).unwrap_err().to_string(),
            "cell_clip = 0 clips to 0 here; the block ops take cell_clip <= 0 as no clipping"
        );
    }
}
