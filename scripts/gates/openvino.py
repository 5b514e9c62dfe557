#!/usr/bin/env python3
"""Run OpenVINO's ONNX `LSTM` on an lstm-parity gate export and write the
outputs `lstm-parity check` reads (the contract is in docs/gate.md).

    openvino.py EXPORT_DIR OUT_DIR

EXPORT_DIR is `lstm-parity export --layout onnx`; the graphs are
scripts/gates/onnx_graphs.py's, read by OpenVINO's ONNX front end
(`Core.read_model`) and compiled for the CPU device with one thread and
inference precision f32 (the CPU plugin otherwise runs in bf16 or f16
where the processor has them; the compiled model's precision is checked).
The graphs' dimensions stay symbolic, as exporters write them; fixing them
(`Model.reshape`) would take the plugin down another path for per-row
lengths (scripts/gates/repro/openvino_lstm_sequence_lens_ignored.py). A
step OpenVINO refuses gets `error.txt` with its message.

Layout `onnx-layout1` is refused: OpenVINO's ONNX front end ignores the
LSTM's `layout` attribute (src/frontends/onnx/frontend/src/op/lstm.cpp
reads X as [T, B, I] whatever it says), so batch-first graphs come back
misshapen, and running a second one crashes the process.

Exit status: 0 when every step was run (or refused with error.txt), 2 when
the export cannot be read.
"""

import os
import re
import sys

# The shared part of the adapters, from this folder, before the folder
# leaves the import path: this file is named like the package it drives,
# and `import openvino` would otherwise import this script.
from gate_io import read_export, run_export  # noqa: E402  (first, see above)
from onnx_graphs import OPSET, Adapter  # noqa: E402  (first, see above)

_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import openvino as ov  # noqa: E402

CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}


class ZeroTimeSteps(Exception):
    """The CPU plugin does not run an LSTMSequence whose input has 0 time
    steps, and nothing writes Y_h and Y_c: they hold whatever their memory
    held (scripts/gates/repro/openvino_lstm_zero_time_steps.py). Such a
    step is refused rather than run, so that no verdict rests on stale
    memory."""


class OpenVINO:
    """OpenVINO's ONNX front end and CPU plugin, f32, one thread."""

    core = ov.Core()

    @staticmethod
    def check(step):
        time = step.x.shape[0 if step.layout_attr == 0 else 1]
        if time == 0:
            raise ZeroTimeSteps("0 time steps: OpenVINO's CPU plugin does not run the LSTMSequence and leaves Y_h/Y_c uninitialised, so the step is not run")

    @classmethod
    def run(cls, model, output_names, feed):
        try:
            compiled = cls.core.compile_model(cls.core.read_model(model.SerializeToString(), b""), "CPU", CONFIG)
        except RuntimeError as e:
            # OpenVINO's message, without the dump of the failing node (its
            # generated names change from run to run).
            text = re.sub(r"node: .*? CALLBACK HAS THROWN: ", "", str(e))
            raise RuntimeError("\n".join(line for line in text.splitlines() if line.strip())) from None
        precision = compiled.get_property("INFERENCE_PRECISION_HINT")
        if precision != ov.Type.f32:
            raise RuntimeError(f"the CPU plugin compiled the model for {precision}, not f32")
        got = compiled(feed)
        return [np.array(got[compiled.output(name)]) for name in output_names]


def main(argv):
    export_dir, out_dir, index = read_export(argv, ("onnx",))
    implementation = f"OpenVINO {ov.get_version()} (CPU, f32; onnx {onnx.__version__}, opset {OPSET})"
    run_export(export_dir, out_dir, index, Adapter(OpenVINO), implementation, "OpenVINO")


if __name__ == "__main__":
    main(sys.argv)
