#!/usr/bin/env python3
"""OpenVINO runs both directions of a bidirectional ONNX `LSTM` node with
the forward direction's activations, silently: ONNX lists three
activations per direction (forward first), OpenVINO's LSTMSequence uses
the first three of its list, and `BidirectionalLSTMSequenceDecomposition`
(src/common/transformations/src/transformations/op_conversions/
bidirectional_sequences_decomposition.cpp) gives the forward and the
reverse sequence it splits the node into the same whole list.

    python openvino_lstm_bidirectional_activations.py     (needs openvino, onnx, numpy)

Prints each direction's difference to NumPy with its own activations and
with the forward ones; exits 1 while the reverse direction is wrong.
"""

import sys

import openvino as ov
from openvino_lstm_node import lstm_model, max_diff, numpy_lstm, random_inputs, run_openvino

TOLERANCE = 1e-5
FORWARD, REVERSE = ("Sigmoid", "Tanh", "Tanh"), ("Sigmoid", "Relu", "Relu")


def main():
    d = random_inputs(directions=2)
    (y, y_h, y_c), kinds = run_openvino(*lstm_model(d, activations=FORWARD + REVERSE, direction="bidirectional"))
    wrong = False
    for k, own in enumerate((FORWARD, REVERSE)):
        got = (y[:, k], y_h[k], y_c[k])
        err_own = max(max_diff(g, w) for g, w in zip(got, numpy_lstm(d, k, use=(), activations=own, reverse=k == 1)))
        err_fw = max(max_diff(g, w) for g, w in zip(got, numpy_lstm(d, k, use=(), activations=FORWARD, reverse=k == 1)))
        print(f"OpenVINO {ov.get_version()}, bidirectional node, activations {'/'.join(FORWARD + REVERSE)}, "
              f"compiled to {kinds}: {'reverse' if k else 'forward'} direction: max |OpenVINO - NumPy with "
              f"{'/'.join(own)}| = {err_own:.2e}, with {'/'.join(FORWARD)} = {err_fw:.2e}")
        wrong |= err_own > TOLERANCE
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
