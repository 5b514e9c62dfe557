//! What a layout cannot express in one layer: the reason each layout's
//! `check_layer` gives, worded as the export's `not_exported` lines say it.

use std::fmt;

use super::activation::{activation_name, activations};
use super::{LayerLayout, Layout};
use crate::lstm::{Activation, Layer};

/// A layer option a layout cannot express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lacks {
    /// An option the layout has none of.
    Option {
        /// The option.
        option: LayerOption,
        /// The layout.
        layout: Layout,
    },
    /// Activations other than sigmoid/tanh/tanh (gate/cell/output).
    StandardActivationsOnly {
        /// Gate, cell and output activation.
        activations: [Activation; 3],
        /// The layout.
        layout: Layout,
    },
    /// TF1 activations other than a sigmoid gate and one activation (tanh,
    /// sigmoid, relu or linear) for both the cell and the output.
    Tf1Activations([Activation; 3]),
    /// Different cell and output activations, where Keras has one.
    KerasOneActivation,
    /// The `hard_sigmoid` of both Keras 2 and Keras 3 in one layer.
    KerasBothHardSigmoids,
    /// `cell_clip <= 0`, which the block ops take as no clipping; the
    /// value as the layer's dtype prints it.
    BlockClipNotPositive(String),
    /// `cell_clip` on the cell state, where ONNX clips the gates.
    OnnxCellClip,
    /// `proj_clip`, which PyTorch's `proj_size` lacks.
    TorchProjClip,
    /// A projection, which the cuDNN layout here lacks.
    CudnnProjection,
}

/// A layer option some layouts lack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerOption {
    /// Peephole weights.
    Peepholes,
    /// `cell_clip`.
    CellClip,
    /// A projection of the output.
    Projection,
}

impl Lacks {
    /// `option`, which layout `L` has none of.
    pub(super) fn option<L: LayerLayout>(option: LayerOption) -> Result<(), Lacks> {
        Err(Lacks::Option {
            option,
            layout: L::LAYOUT,
        })
    }

    /// Sigmoid/tanh/tanh, or why not in layout `L`.
    pub(super) fn standard_activations<L: LayerLayout, T>(layer: &Layer<T>) -> Result<(), Lacks> {
        let activations = activations(layer);
        if activations == [Activation::Sigmoid, Activation::Tanh, Activation::Tanh] {
            Ok(())
        } else {
            Err(Lacks::StandardActivationsOnly {
                activations,
                layout: L::LAYOUT,
            })
        }
    }

    /// Neither peepholes nor `cell_clip`, or which of them layout `L` lacks.
    pub(super) fn no_peepholes_or_cell_clip<L: LayerLayout, T>(
        layer: &Layer<T>,
    ) -> Result<(), Lacks> {
        if layer.peepholes.is_some() {
            return Lacks::option::<L>(LayerOption::Peepholes);
        }
        if layer.cell_clip.is_some() {
            return Lacks::option::<L>(LayerOption::CellClip);
        }
        Ok(())
    }
}

impl fmt::Display for LayerOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LayerOption::Peepholes => "peepholes",
            LayerOption::CellClip => "cell_clip",
            LayerOption::Projection => "a projection (num_proj)",
        })
    }
}

impl fmt::Display for Lacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |[g, c, o]: &[Activation; 3]| {
            format!(
                "{}/{}/{}",
                activation_name(*g),
                activation_name(*c),
                activation_name(*o)
            )
        };
        match self {
            Lacks::Option { option, layout } => write!(f, "{option}; {layout} has none"),
            Lacks::StandardActivationsOnly {
                activations,
                layout,
            } => write!(
                f,
                "activations {} (gate/cell/output); {layout} has sigmoid/tanh/tanh only",
                names(activations)
            ),
            Lacks::Tf1Activations(activations) => write!(
                f,
                "activations {}; TF1 cells have a sigmoid gate and one activation (tanh, sigmoid, relu or linear) for both the cell and the output",
                names(activations)
            ),
            Lacks::KerasOneActivation => f.write_str(
                "different cell and output activations; Keras has one `activation` for both",
            ),
            Lacks::KerasBothHardSigmoids => {
                f.write_str("the hard_sigmoid of both Keras 2 and Keras 3")
            }
            Lacks::BlockClipNotPositive(clip) => write!(
                f,
                "cell_clip = {clip} clips to 0 here; the block ops take cell_clip <= 0 as no clipping"
            ),
            Lacks::OnnxCellClip => f.write_str(
                "cell_clip (on the cell state); ONNX `clip` bounds the gate pre-activations, not c",
            ),
            Lacks::TorchProjClip => f.write_str("proj_clip; PyTorch's proj_size has no clip"),
            Lacks::CudnnProjection => {
                f.write_str("a projection; this export's cuDNN layout has none")
            }
        }
    }
}
