#!/usr/bin/env python3
"""Where OpenVINO applies `sequence_lens` (the TensorIterator its CPU
plugin makes of an LSTMSequence: fixed dimensions, or activations other
than Sigmoid/Tanh/Tanh), a row of length 0 gets the final states
Y_h = Y_c = 0 instead of its initial state. `convert_sequence_to_ti`
(src/common/transformations/src/transformations/op_conversions/
convert_sequences_to_tensor_iterator.cpp) collects the final states in
loop variables that start at zero ("aggregated Y_h") and takes a row's
state only at the iteration equal to its length, which never comes for
length 0. The ONNX specification does not say what Y_h is for an empty
row; TensorFlow keeps the initial state.

    python openvino_lstm_zero_length_initial_state.py     (needs openvino, onnx, numpy)

Prints the empty row's final states; exits 1 while they are not the
initial states.
"""

import sys

import openvino as ov
from openvino_lstm_node import lstm_model, max_diff, numpy_lstm, random_inputs, run_openvino

TOLERANCE = 1e-5
LENGTHS = [5, 0, 2]


def main():
    d = random_inputs()
    use = ("initial_h", "initial_c")
    wrong = False
    for name, static, activations in (("fixed dimensions, Sigmoid/Tanh/Tanh", True, ("Sigmoid", "Tanh", "Tanh")),
                                      ("symbolic dimensions, Sigmoid/Relu/Relu", False, ("Sigmoid", "Relu", "Relu"))):
        (y, y_h, y_c), kinds = run_openvino(*lstm_model(d, use=use, lengths=LENGTHS, activations=activations, static=static))
        want_y, want_h, want_c = numpy_lstm(d, use=use, lengths=LENGTHS, activations=activations)
        print(f"OpenVINO {ov.get_version()}, sequence_lens {LENGTHS}, {name}, compiled to {kinds}: "
              f"max |Y - NumPy| = {max_diff(y[:, 0], want_y):.2e}; row 1 (length 0): "
              f"Y_h {y_h[0, 1].round(4).tolist()}, Y_c {y_c[0, 1].round(4).tolist()}; "
              f"initial_h {want_h[1].round(4).tolist()}, initial_c {want_c[1].round(4).tolist()}")
        wrong |= max(max_diff(y_h[0], want_h), max_diff(y_c[0], want_c)) > TOLERANCE
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
