"""One ONNX `LSTM` node run by OpenVINO (ONNX front end, CPU plugin, f32)
and the NumPy LSTM it is held to: what the openvino_lstm_*.py
reproductions in this folder share.

The node is built as scripts/gates/onnx_graphs.py builds the gate's
graphs (opset 22, weights as initializers, the other inputs as graph
inputs with symbolic dimensions), or with every dimension fixed.
"""

import numpy as np
import onnx
import openvino as ov
from onnx import TensorProto, helper, numpy_helper

# ONNX activations with the alpha and beta these reproductions give them.
ACTIVATIONS = {
    "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "Tanh": np.tanh,
    "Relu": lambda v: np.maximum(v, 0),
    "HardSigmoid": lambda v: np.clip(0.2 * v + 0.5, 0, 1),  # alpha 0.2, beta 0.5
    "Affine": lambda v: v,  # alpha 1, beta 0
}
ALPHA_BETA = {"HardSigmoid": (0.2, 0.5), "Affine": (1.0, 0.0)}


def random_inputs(time=5, batch=3, inputs=4, hidden=3, directions=1, seed=0):
    """x [T, B, I] and W, R, B, P, initial_h, initial_c for `directions`."""
    rng = np.random.default_rng(seed)
    a = lambda *shape: (rng.standard_normal(shape) * 0.5).astype(np.float32)  # noqa: E731
    return {"X": a(time, batch, inputs), "W": a(directions, 4 * hidden, inputs),
            "R": a(directions, 4 * hidden, hidden), "B": a(directions, 8 * hidden),
            "P": a(directions, 3 * hidden), "initial_h": a(directions, batch, hidden),
            "initial_c": a(directions, batch, hidden)}


def numpy_lstm(d, k=0, use=("P", "initial_h", "initial_c"), lengths=None,
               activations=("Sigmoid", "Tanh", "Tanh"), reverse=False):
    """Direction k of ONNX's LSTM (gates i, o, f, c; P as i, o, f) in float64:
    Y [T, B, H] (zeros past a row's length), Y_h, Y_c [B, H]."""
    x = d["X"].astype(np.float64)
    time, batch = x.shape[:2]
    hidden = d["R"].shape[2]
    w, r, b = d["W"][k], d["R"][k], d["B"][k]
    p = d["P"][k] if "P" in use else np.zeros(3 * hidden)
    h = d["initial_h"][k] if "initial_h" in use else np.zeros((batch, hidden))
    c = d["initial_c"][k] if "initial_c" in use else np.zeros((batch, hidden))
    lengths = np.full(batch, time) if lengths is None else np.asarray(lengths)
    assert not reverse or (lengths == time).all(), "reverse with lengths is not needed here"
    f, g, hh = (ACTIVATIONS[n] for n in activations)
    pi, po, pf = np.split(p, 3)
    y = np.zeros((time, batch, hidden))
    for t in (range(time - 1, -1, -1) if reverse else range(time)):
        z = x[t] @ w.T + h @ r.T + b[:4 * hidden] + b[4 * hidden:]
        zi, zo, zf, zc = np.split(z, 4, axis=1)
        c_new = f(zf + pf * c) * c + f(zi + pi * c) * g(zc)
        h_new = f(zo + po * c_new) * hh(c_new)
        live = (t < lengths)[:, None]
        c, h = np.where(live, c_new, c), np.where(live, h_new, h)
        y[t] = np.where(live, h_new, 0)
    return y, h, c


def lstm_model(d, use=(), lengths=None, activations=None, direction="forward", static=False):
    """One LSTM node over d's X, W, R, B and the inputs named in `use`
    (of P, initial_h, initial_c), with `sequence_lens` = `lengths`."""
    time, batch, _ = d["X"].shape
    directions, hidden = d["R"].shape[0], d["R"].shape[2]
    dims = (lambda shape: list(shape)) if static else (lambda shape: [None] * len(shape))
    value = lambda name, elem, shape: helper.make_tensor_value_info(name, elem, dims(shape))  # noqa: E731
    inits = [numpy_helper.from_array(d[n], n) for n in ("W", "R", "B") + (("P",) if "P" in use else ())]
    inputs, feed = [value("X", TensorProto.FLOAT, d["X"].shape)], {"X": d["X"]}
    names = ["X", "W", "R", "B", "", "", "", ""]
    if lengths is not None:
        names[4] = "sequence_lens"
        feed["sequence_lens"] = np.asarray(lengths, np.int32)
        inputs.append(value("sequence_lens", TensorProto.INT32, [batch]))
    for slot, name in ((5, "initial_h"), (6, "initial_c")):
        if name in use:
            names[slot] = name
            feed[name] = d[name]
            inputs.append(value(name, TensorProto.FLOAT, d[name].shape))
    if "P" in use:
        names[7] = "P"
    while names[-1] == "":
        names.pop()
    attrs = {}
    if activations:
        attrs["activations"] = list(activations)
        ab = [ALPHA_BETA[n] for n in activations if n in ALPHA_BETA]
        if ab:
            attrs["activation_alpha"] = [a for a, _ in ab]
            attrs["activation_beta"] = [b for _, b in ab]
    node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], hidden_size=hidden, direction=direction, **attrs)
    outputs = [value("Y", TensorProto.FLOAT, (time, directions, batch, hidden)),
               value("Y_h", TensorProto.FLOAT, (directions, batch, hidden)),
               value("Y_c", TensorProto.FLOAT, (directions, batch, hidden))]
    graph = helper.make_graph([node], "lstm", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)
    onnx.checker.check_model(model)
    return model, feed


def run_openvino(model, feed):
    """Y, Y_h, Y_c from OpenVINO's CPU plugin (f32, one thread), and what
    the plugin compiled the node to (from its profile): `LSTMSequence`,
    its oneDNN RNN node, or `TensorIterator`, a loop over LSTM cells."""
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1, "PERF_COUNT": True}
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU", config)
    request = compiled.create_infer_request()
    request.infer(feed)
    outputs = [np.array(request.get_tensor(name).data) for name in ("Y", "Y_h", "Y_c")]
    kinds = sorted({p.node_type for p in request.profiling_info} & {"LSTMSequence", "TensorIterator"})
    return outputs, kinds


def max_diff(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max())
