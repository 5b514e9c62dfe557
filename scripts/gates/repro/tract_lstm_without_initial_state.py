#!/usr/bin/env python3
"""tract cannot run an ONNX `LSTM` node that outputs its final cell state
`Y_c` without an `initial_c` input, for a batch of more than one row: it
fails while evaluating its Scan ("Clashing resolution for expression.
1=1 != 2"). The same node runs and matches NumPy with a batch of one,
without the `Y_c` output, or with explicit zero initial states (what ONNX
defines the missing inputs to be) fed as graph inputs.

    python tract_lstm_without_initial_state.py     (needs tract, onnx, numpy)

Prints one line per variant; exits 1 if tract's behaviour differs from
what this file states.
"""

import os
import sys
import tempfile

import numpy as np
import onnx
import tract
from onnx import TensorProto, helper, numpy_helper


def numpy_lstm(x, w, r, b, h0, c0):
    """ONNX LSTM, forward, gate order i, o, f, c; [T, B, I] -> Y [T, B, H]."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h, c, ys = h0, c0, []
    hidden = r.shape[1]
    for t in range(x.shape[0]):
        z = x[t] @ w.T + h @ r.T + b[:4 * hidden] + b[4 * hidden:]
        i, o, f, g = np.split(z, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        ys.append(h)
    return np.stack(ys)


def run(batch, with_initial, outputs):
    rng = np.random.default_rng(0)
    t, inp, hidden = 4, 3, 5
    x = rng.standard_normal((t, batch, inp)).astype(np.float32)
    w = (rng.standard_normal((1, 4 * hidden, inp)) * 0.5).astype(np.float32)
    r = (rng.standard_normal((1, 4 * hidden, hidden)) * 0.5).astype(np.float32)
    b = (rng.standard_normal((1, 8 * hidden)) * 0.5).astype(np.float32)
    zeros = np.zeros((1, batch, hidden), np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"))]
    node_inputs = ["X", "W", "R", "B"]
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [t, batch, inp])]
    feed = [x]
    if with_initial:
        # As graph inputs, as the gate's graphs pass them.
        for name in ("h0", "c0"):
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, batch, hidden]))
            feed.append(zeros)
        node_inputs += ["", "h0", "c0"]
    node = helper.make_node("LSTM", node_inputs, outputs, hidden_size=hidden)
    shapes = {"Y": [t, 1, batch, hidden], "Y_h": [1, batch, hidden], "Y_c": [1, batch, hidden]}
    graph = helper.make_graph(
        [node], "repro",
        graph_inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shapes[o]) for o in outputs],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "lstm.onnx")
        onnx.save(model, path)
        m = tract.onnx().load(path)
    try:
        y = m.into_model().into_runnable().run(feed)[0].to_numpy()[:, 0]
    except tract.TractError as e:
        return "error", str(e).splitlines()[0]
    want = numpy_lstm(x, w[0], r[0], b[0], zeros[0], zeros[0])
    return "ok", f"max |tract - numpy| = {np.abs(y - want).max():.2e}"


def main():
    all_outputs = ("Y", "Y_h", "Y_c")
    expected = {
        (1, False, all_outputs): "ok",
        (2, False, all_outputs): "error",
        (2, False, ("Y", "Y_h")): "ok",
        (2, True, all_outputs): "ok",
    }
    ok = True
    for (batch, with_initial, outputs), want in expected.items():
        got, detail = run(batch, with_initial, list(outputs))
        print(
            f"tract {tract.version()}: batch {batch}, outputs {'/'.join(outputs)}, "
            f"initial states {'given' if with_initial else 'absent'}: {got} ({detail})"
        )
        ok &= got == want
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
