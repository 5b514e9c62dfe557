#!/usr/bin/env python3
"""OpenVINO's CPU plugin ignores `sequence_lens` of an ONNX `LSTM` node
with the default activations (Sigmoid, Tanh, Tanh) when the input's
dimensions are symbolic, silently: every row runs the whole sequence.

`RNN::isSupportedOperation` (src/plugins/intel_cpu/src/nodes/rnn.cpp)
keeps such an LSTMSequence for its oneDNN RNN node whenever the input
shape is dynamic ("WA: dynamic shapes make impossible to check seq_len"),
before its check that refuses provided lengths ("Unsupported sequence
length"); the node never reads its sequence_lens input (rnn.h: "oneDNN
does not support unique t (seq_len) per batch"). Otherwise the sequence
is rewritten as a TensorIterator over LSTM cells
(ConvertLSTMSequenceToTensorIterator), which applies the lengths: with
fixed dimensions, or with other activations.

    python openvino_lstm_sequence_lens_ignored.py     (needs openvino, onnx, numpy)

Prints, per variant, what the plugin compiled the node to and the
differences to NumPy with and without the lengths; exits 1 while a
variant ignores them.
"""

import sys

import openvino as ov
from openvino_lstm_node import lstm_model, max_diff, numpy_lstm, random_inputs, run_openvino

TOLERANCE = 1e-5
LENGTHS = [5, 2, 1]


def main():
    d = random_inputs()
    wrong = False
    variants = [("symbolic dimensions, Sigmoid/Tanh/Tanh", False, ("Sigmoid", "Tanh", "Tanh")),
                ("fixed dimensions, Sigmoid/Tanh/Tanh", True, ("Sigmoid", "Tanh", "Tanh")),
                ("symbolic dimensions, Sigmoid/Relu/Relu", False, ("Sigmoid", "Relu", "Relu"))]
    for name, static, activations in variants:
        (y, y_h, y_c), kinds = run_openvino(*lstm_model(d, lengths=LENGTHS, activations=activations, static=static))
        got = (y[:, 0], y_h[0], y_c[0])
        masked = numpy_lstm(d, use=(), lengths=LENGTHS, activations=activations)
        unmasked = numpy_lstm(d, use=(), activations=activations)
        err = max(max_diff(g, w) for g, w in zip(got, masked))
        err_unmasked = max(max_diff(g, w) for g, w in zip(got, unmasked))
        print(f"OpenVINO {ov.get_version()}, sequence_lens {LENGTHS} of 5, {name}, compiled to {kinds}: "
              f"max |OpenVINO - NumPy with the lengths| = {err:.2e}, without them = {err_unmasked:.2e}")
        wrong |= err > TOLERANCE
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
