#!/usr/bin/env python3
"""OpenVINO's ONNX front end drops the peephole input `P` of an ONNX
`LSTM` node, silently: `ai_onnx::opset_1::lstm`
(src/frontends/onnx/frontend/src/op/lstm.cpp) reads P into its input map
but builds a `v5::LSTMSequence`, which has no peephole input, from X, H,
C, sequence_lens, W, R and B only: the model `read_model` returns holds
no constant with P's values. The node's outputs are those of the same
LSTM without peepholes, with symbolic or fixed dimensions alike.

    python openvino_lstm_peepholes_dropped.py     (needs openvino, onnx, numpy)

Prints the differences to NumPy with and without P; exits 1 while
OpenVINO's outputs differ from the LSTM with peepholes.
"""

import sys

import numpy as np
import openvino as ov
from openvino_lstm_node import lstm_model, max_diff, numpy_lstm, random_inputs, run_openvino

TOLERANCE = 1e-5


def main():
    d = random_inputs()
    read = ov.Core().read_model(lstm_model(d, use=("P",))[0].SerializeToString(), b"")
    holds_p = any(op.get_type_name() == "Constant" and np.array_equal(np.sort(op.get_data().ravel()), np.sort(d["P"].ravel()))
                  for op in read.get_ordered_ops())
    print(f"OpenVINO {ov.get_version()}: read_model gives {[op.get_type_name() for op in read.get_ordered_ops() if 'LSTM' in op.get_type_name()]}, "
          f"{'a' if holds_p else 'no'} constant with P's values")
    with_p, without_p = numpy_lstm(d, use=("P",)), numpy_lstm(d, use=())
    wrong = False
    for static in (False, True):
        (y, y_h, y_c), kinds = run_openvino(*lstm_model(d, use=("P",), static=static))
        got = (y[:, 0], y_h[0], y_c[0])
        err_p = max(max_diff(g, w) for g, w in zip(got, with_p))
        err_no_p = max(max_diff(g, w) for g, w in zip(got, without_p))
        print(f"OpenVINO {ov.get_version()}, {'fixed' if static else 'symbolic'} dimensions, compiled to {kinds}: "
              f"max |OpenVINO - NumPy with P| = {err_p:.2e}, without P = {err_no_p:.2e}")
        wrong |= err_p > TOLERANCE
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
