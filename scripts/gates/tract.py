#!/usr/bin/env python3
"""Run tract's ONNX `LSTM` (through its Python bindings) on an lstm-parity
gate export and write the outputs `lstm-parity check` reads (the contract
is in docs/gate.md).

    tract.py EXPORT_DIR OUT_DIR

EXPORT_DIR is `lstm-parity export --layout onnx` (or `onnx-layout1`); the
graphs are scripts/gates/onnx_graphs.py's. Each graph is saved to a
temporary file (tract loads ONNX from a path; per-row lengths as a
constant, the only form tract translates), its inputs are given their
concrete shapes and types, and it runs as a deployment through tract's API
would: `into_model` (typed and decluttered), then `into_runnable` (tract's
default CPU runtime, which optimises the model first). A step tract refuses gets `error.txt`
with its message.

Exit status: 0 when every step was run (or refused with error.txt), 2 when
the export cannot be read.
"""

import os
import sys
import tempfile

# The shared part of the adapters, from this folder, before the folder
# leaves the import path: this file is named like the package it drives,
# and `import tract` would otherwise import this script.
from gate_io import read_export, run_export  # noqa: E402  (first, see above)
from onnx_graphs import OPSET, Adapter  # noqa: E402  (first, see above)

_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tract  # noqa: E402

DATUM = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64", np.dtype(np.int32): "i32"}


class Tract:
    """tract's ONNX front end, optimised."""

    # tract translates `sequence_lens` only when it is a constant (and then
    # only when every row has the full length: onnx/src/ops/rec/common.rs),
    # so the lengths go in as a constant rather than an input.
    constant_lengths = True

    @staticmethod
    def check(step):
        pass

    @staticmethod
    def run(model, output_names, feed):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "step.onnx")
            onnx.save(model, path)
            m = tract.onnx().load(path)
        names = [m.input_name(i) for i in range(m.input_count())]
        for i, name in enumerate(names):
            a = feed[name]
            m.set_input_fact(i, ",".join([str(n) for n in a.shape] + [DATUM[a.dtype]]))
        try:
            got = m.into_model().into_runnable().run([feed[n] for n in names])
        except tract.TractError as e:
            # tract's message, without the stack trace it appends.
            raise tract.TractError(str(e).split("Stack backtrace:")[0].strip()) from None
        # In the graph's output order, which is `output_names`.
        return [t.to_numpy() for t in got]


def main(argv):
    export_dir, out_dir, index = read_export(argv, ("onnx", "onnx-layout1"))
    implementation = f"tract {tract.version()} (Python bindings; onnx {onnx.__version__}, opset {OPSET})"
    run_export(export_dir, out_dir, index, Adapter(Tract), implementation, "tract")


if __name__ == "__main__":
    main(sys.argv)
