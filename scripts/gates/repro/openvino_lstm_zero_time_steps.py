#!/usr/bin/env python3
"""OpenVINO's CPU plugin does not run an ONNX `LSTM` node whose input has
0 time steps (symbolic dimensions), and nothing writes Y_h and Y_c: they
hold whatever their memory held, different from run to run. A node with
dynamic shapes runs only when it is executable (`Node::executeDynamic`,
src/plugins/intel_cpu/src/node.cpp), and a node with an empty input
tensor is not (`Node::isExecutable`, src/plugins/intel_cpu/src/node.h).
With fixed dimensions the model is refused when compiled. ONNX's Y_h and
Y_c of an empty sequence are the initial states.

    python openvino_lstm_zero_time_steps.py     (needs openvino, onnx, numpy)

Prints Y_h and Y_c against the initial states; exits 1 while they differ.
"""

import sys

import openvino as ov
from openvino_lstm_node import lstm_model, max_diff, random_inputs, run_openvino

TOLERANCE = 1e-5


def main():
    d = random_inputs(time=0)
    (_, y_h, y_c), _ = run_openvino(*lstm_model(d, use=("initial_h", "initial_c")))
    err = max(max_diff(y_h, d["initial_h"]), max_diff(y_c, d["initial_c"]))
    print(f"OpenVINO {ov.get_version()}, 0 time steps: Y_h {y_h[0, 0].tolist()}, initial_h "
          f"{d['initial_h'][0, 0].tolist()}; Y_c {y_c[0, 0].tolist()}, initial_c {d['initial_c'][0, 0].tolist()}; "
          f"max |(Y_h, Y_c) - initial states| = {err:.2e}")
    sys.exit(0 if err <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
