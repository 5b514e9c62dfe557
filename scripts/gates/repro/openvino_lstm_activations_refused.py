#!/usr/bin/env python3
"""OpenVINO refuses an ONNX `LSTM` node with the activation HardSigmoid or
Affine when the model is compiled for the CPU. The CPU plugin's own RNN
node takes only Sigmoid/Tanh/Tanh, so any other activations make it
rewrite the sequence as a loop of LSTM cells and those as elementwise
operations:

* Affine: `get_activation_func_by_name`
  (src/core/src/op/util/activation_functions.cpp) knows sigmoid, tanh,
  relu and hardsigmoid only, so creating the cell fails: "Unknown
  activation function: affine" (in ConvertLSTMSequenceToTensorIterator).
* HardSigmoid: `ov::op::util::activation`
  (src/common/transformations/src/transformations/utils/utils.cpp), which
  `LSTMCellDecomposition` calls, builds relu, sigmoid and tanh only:
  "Unsupported activation function".

Relu, for one, runs and matches NumPy.

    python openvino_lstm_activations_refused.py     (needs openvino, onnx, numpy)

Prints what OpenVINO does with each; exits 1 while one is refused.
"""

import sys

import openvino as ov
from openvino_lstm_node import lstm_model, max_diff, numpy_lstm, random_inputs, run_openvino

TOLERANCE = 1e-5


def main():
    d = random_inputs()
    wrong = False
    for activations in (("Sigmoid", "Relu", "Relu"), ("HardSigmoid", "Tanh", "Tanh"), ("Sigmoid", "Affine", "Affine")):
        try:
            (y, _, _), kinds = run_openvino(*lstm_model(d, activations=activations))
            err = max_diff(y[:, 0], numpy_lstm(d, use=(), activations=activations)[0])
            result = f"compiled to {kinds}, max |Y - NumPy| = {err:.2e}"
            wrong |= err > TOLERANCE
        except RuntimeError as e:
            result = f"refused: {str(e).strip().splitlines()[-1].split('CALLBACK HAS THROWN: ')[-1]}"
            wrong = True
        print(f"OpenVINO {ov.get_version()}, activations {'/'.join(activations)}: {result}")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
