#!/usr/bin/env python3
"""Run OpenVINO's ONNX `LSTM` (CPU device) on an lstm-parity gate export and
write the outputs `lstm-parity check` reads (the contract is in
docs/gate.md).

    openvino.py EXPORT_DIR OUT_DIR

EXPORT_DIR is `lstm-parity export --layout onnx` (or `onnx-layout1`); the
graphs are scripts/gates/onnx_graphs.py's, read by OpenVINO's ONNX
front end and compiled for the CPU device with one inference thread and
the inference precision pinned to f32 (on processors with bf16 support
the CPU device's default is bf16; that mode is judged as its own column
at a reduced-precision tolerance). A step OpenVINO refuses gets
`error.txt` with its message.

Exit status: 0 when every step was run (or refused with error.txt), 2 when
the export cannot be read.
"""

import os
import sys

# The shared part of the adapters, from this folder, before the folder
# leaves the import path: this file is named like the package it drives,
# and `import openvino` would otherwise import this script.
from gate_io import read_export, run_export  # noqa: E402  (first, see above)
from onnx_graphs import OPSET, Adapter  # noqa: E402  (first, see above)

_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import onnx  # noqa: E402
import openvino as ov  # noqa: E402

CORE = ov.Core()
CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": "1"}


class OpenVino:
    """OpenVINO's CPU device, f32, one thread."""

    @staticmethod
    def check(step):
        pass

    @staticmethod
    def run(model, output_names, feed):
        m = CORE.read_model(model.SerializeToString(), b"")
        compiled = CORE.compile_model(m, "CPU", CONFIG)
        got = compiled(feed)
        by_name = {}
        for port, value in got.items():
            for name in port.get_names():
                by_name[name] = value
        return [by_name[n] for n in output_names]


def main(argv):
    export_dir, out_dir, index = read_export(argv, ("onnx", "onnx-layout1"))
    implementation = f"OpenVINO {ov.get_version()} (CPU, f32; onnx {onnx.__version__}, opset {OPSET})"
    run_export(export_dir, out_dir, index, Adapter(OpenVino), implementation, "OpenVINO")


if __name__ == "__main__":
    main(sys.argv)
