#!/usr/bin/env python3
"""Run onnxruntime's ONNX `LSTM` on an lstm-parity gate export and write the
outputs `lstm-parity check` reads (the contract is in docs/gate.md).

    onnxruntime.py EXPORT_DIR OUT_DIR

EXPORT_DIR is `lstm-parity export --layout onnx` (or `onnx-layout1`); the
graphs are scripts/gates/onnx_graphs.py's, run on onnxruntime's CPU
provider with one thread. A step onnxruntime refuses gets `error.txt` with
its message.

Exit status: 0 when every step was run (or refused with error.txt), 2 when
the export cannot be read.
"""

import os
import sys
from importlib.metadata import version

# The shared part of the adapters, from this folder, before the folder
# leaves the import path: this file is named like the package it drives,
# and `import onnxruntime` would otherwise import this script.
from gate_io import read_export, run_export  # noqa: E402  (first, see above)
from onnx_graphs import OPSET, Adapter  # noqa: E402  (first, see above)

_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import onnxruntime as ort  # noqa: E402


class ZeroTimeSteps(Exception):
    """onnxruntime leaves Y_h and Y_c uninitialised for an input of 0 time
    steps (measured: NaN in one run, stale memory equal to the expected
    state in another), so such a step is refused rather than run."""


class OnnxRuntime:
    """onnxruntime's CPU provider, one thread."""

    @staticmethod
    def check(step):
        time = step.x.shape[0 if step.layout_attr == 0 else 1]
        if time == 0:
            raise ZeroTimeSteps("0 time steps: onnxruntime's LSTM leaves Y_h/Y_c uninitialised (NaN or stale memory), so the step is not run")

    @staticmethod
    def run(model, output_names, feed):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # a refused node is reported through error.txt, not the log
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return session.run(output_names, feed)


def main(argv):
    ort.set_default_logger_severity(4)
    export_dir, out_dir, index = read_export(argv, ("onnx", "onnx-layout1"))
    implementation = f"onnxruntime {version('onnxruntime')} (onnx {version('onnx')}, opset {OPSET})"
    run_export(export_dir, out_dir, index, Adapter(OnnxRuntime), implementation, "onnxruntime")


if __name__ == "__main__":
    main(sys.argv)
