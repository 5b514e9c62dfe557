"""ONNX graphs of exported steps, for the adapters of every runtime that
runs ONNX (scripts/gates/onnxruntime.py, tract.py, openvino.py).

Per exported step (layout `onnx` or `onnx-layout1`), one ONNX graph: one
`LSTM` node per layer of the step's stack (each node reads the previous
node's `Y`), with the layer's `W`, `R`, `B` and `P` as initializers,
`direction` forward or reverse, the step's activations, `sequence_lens`
when the step has per-row lengths, and `initial_h`/`initial_c` when it has
initial states. Two single-layer steps of one case that read the same
inputs in opposite directions (Keras `Bidirectional`) run as one
`direction="bidirectional"` node.

ONNX's `Y` is in input time order for every direction; the contract wants
processing order, so a reverse direction's `Y` is flipped in time. No
per-step cell states are returned, so no traces are written.

A runtime supplies `run(model, output_names, feed)` (the outputs, in the
order of `output_names`) and `check(step)` (raise to refuse a step before
it runs); `Adapter(runtime)` is what `gate_io.run_export` drives.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gate_io import StepFolder, layer_arrays

# The opset of the graphs; IR version 10 is the newest onnxruntime 1.31 reads.
OPSET = 22
IR_VERSION = 10


class StepData(StepFolder):
    """One exported step, read from its folder."""

    def __init__(self, export_dir, entry):
        super().__init__(export_dir, entry)
        s = self.spec
        self.layout_attr = 0 if s["time_major"] else 1
        self.x = self.array(s["inputs"]["x"])
        self.lengths = self.array(s["inputs"]["sequence_lengths"]) if "sequence_lengths" in s["inputs"] else None
        if "mask" in s["inputs"] and self.lengths is None:
            raise ValueError("the step has a mask that is not a length mask (the onnx layouts export none)")
        self.layers = []
        for k, layer in enumerate(s["layers"]):
            w, init = layer_arrays(s, k, layer, self.array)
            self.layers.append({"hidden": layer["units"], "options": layer["options"], "weights": w, "initial": init})


def activation_attrs(layers_options):
    """`activations`, `activation_alpha`, `activation_beta` for one node.

    onnxruntime consumes alpha/beta in order, only for the activations that
    take them (Affine, HardSigmoid, ...), so only those contribute entries.
    """
    names, alphas, betas = [], [], []
    for options in layers_options:
        for a in options["activations"]:
            names.append(a["name"])
            if "alpha" in a:
                alphas.append(float(a["alpha"]))
                betas.append(float(a["beta"]))
    attrs = {"activations": names}
    if alphas:
        attrs["activation_alpha"] = alphas
        attrs["activation_beta"] = betas
    return attrs


def dtype_of(step):
    return TensorProto.FLOAT if step.x.dtype == np.float32 else TensorProto.DOUBLE


def state_input(h, layout_attr, directions=1):
    """[directions, batch, hidden] (layout 0) or [batch, directions, hidden] (layout 1)."""
    h = np.stack(h, axis=0) if isinstance(h, (list, tuple)) else h[None]
    return h if layout_attr == 0 else np.ascontiguousarray(np.swapaxes(h, 0, 1))


def value(name, elem_type, rank):
    """A graph input or output of known rank (dimensions left symbolic)."""
    return helper.make_tensor_value_info(name, elem_type, [None] * rank)


def run_step(step, runtime):
    """Run one step's stack on `runtime`; return (y in processing order,
    [(h_n, c_n)] per layer)."""
    runtime.check(step)
    dt = dtype_of(step)
    la = step.layout_attr
    seq_axis_y = 1 if la == 0 else 2  # Y: [T, dirs, B, H] or [B, T, dirs, H]
    nodes, inputs, inits, outs, feed = [], [], [], [], {}
    inputs.append(value("X", dt, 3))
    feed["X"] = step.x
    if step.lengths is not None:
        add_lengths(runtime, step.lengths, inputs, inits, feed)
    inits.append(numpy_helper.from_array(np.array([seq_axis_y], dtype=np.int64), "squeeze_axes"))
    x_name = "X"
    for k, layer in enumerate(step.layers):
        w = layer["weights"]
        for name in ("W", "R", "B", "P"):
            if name in w:
                inits.append(numpy_helper.from_array(w[name], f"{name}_{k}"))
        node_inputs = [x_name, f"W_{k}", f"R_{k}", f"B_{k}", "sequence_lens" if step.lengths is not None else ""]
        if layer["initial"] is not None:
            h0, c0 = layer["initial"]
            for name, array in ((f"initial_h_{k}", h0), (f"initial_c_{k}", c0)):
                inputs.append(value(name, dt, 3))
                feed[name] = state_input(array, la)
            node_inputs += [f"initial_h_{k}", f"initial_c_{k}"]
        else:
            node_inputs += ["", ""]
        node_inputs.append(f"P_{k}" if "P" in w else "")
        while node_inputs and node_inputs[-1] == "":
            node_inputs.pop()
        nodes.append(
            helper.make_node(
                "LSTM",
                node_inputs,
                [f"Y_{k}", f"Y_h_{k}", f"Y_c_{k}"],
                hidden_size=layer["hidden"],
                direction="reverse" if step.reverse else "forward",
                layout=la,
                **activation_attrs([layer["options"]]),
            )
        )
        nodes.append(helper.make_node("Squeeze", [f"Y_{k}", "squeeze_axes"], [f"Yseq_{k}"]))
        x_name = f"Yseq_{k}"
        outs += [value(n, dt, 3) for n in (f"Y_h_{k}", f"Y_c_{k}")]
    outs.insert(0, value(x_name, dt, 3))
    got = run_graph(runtime, nodes, inputs, inits, outs, feed)
    y = got[x_name]  # [T, B, H] or [B, T, H], input time order
    if step.reverse:
        y = np.flip(y, axis=0 if la == 0 else 1)
    finals = []
    for k in range(len(step.layers)):
        h, c = got[f"Y_h_{k}"], got[f"Y_c_{k}"]
        finals.append((h[0], c[0]) if la == 0 else (h[:, 0], c[:, 0]))
    return np.ascontiguousarray(y), finals


def bidirectional_pair(steps):
    """Two single-layer steps that read the same inputs in opposite directions."""
    for a in steps:
        for b in steps:
            if a is b or a.reverse or not b.reverse:
                continue
            if len(a.layers) != 1 or len(b.layers) != 1 or a.layers[0]["hidden"] != b.layers[0]["hidden"]:
                continue
            if not np.array_equal(a.x, b.x):
                continue
            same_lengths = (a.lengths is None and b.lengths is None) or (
                a.lengths is not None and b.lengths is not None and np.array_equal(a.lengths, b.lengths)
            )
            if not same_lengths or a.spec["masked_output"] != b.spec["masked_output"]:
                continue
            if (a.layers[0]["initial"] is None) != (b.layers[0]["initial"] is None):
                continue
            return a, b
    return None


def run_pair(fw, bw, runtime):
    """One bidirectional node for a forward and a reverse step, on `runtime`."""
    runtime.check(fw)
    dt = dtype_of(fw)
    la = fw.layout_attr
    lf, lb = fw.layers[0], bw.layers[0]
    hidden = lf["hidden"]
    inputs = [value("X", dt, 3)]
    feed = {"X": fw.x}
    inits = []
    for name in ("W", "R", "B"):
        inits.append(numpy_helper.from_array(np.concatenate([lf["weights"][name], lb["weights"][name]]), name))
    node_inputs = ["X", "W", "R", "B"]
    node_inputs.append("sequence_lens" if fw.lengths is not None else "")
    if fw.lengths is not None:
        add_lengths(runtime, fw.lengths, inputs, inits, feed)
    if lf["initial"] is not None:
        for i, name in enumerate(("initial_h", "initial_c")):
            inputs.append(value(name, dt, 3))
            feed[name] = state_input([lf["initial"][i], lb["initial"][i]], la)
        node_inputs += ["initial_h", "initial_c"]
    else:
        node_inputs += ["", ""]
    if "P" in lf["weights"] or "P" in lb["weights"]:
        zero = np.zeros((1, 3 * hidden), dtype=fw.x.dtype)
        p = np.concatenate([lf["weights"].get("P", zero), lb["weights"].get("P", zero)])
        inits.append(numpy_helper.from_array(p, "P"))
        node_inputs.append("P")
    while node_inputs[-1] == "":
        node_inputs.pop()
    node = helper.make_node(
        "LSTM",
        node_inputs,
        ["Y", "Y_h", "Y_c"],
        hidden_size=hidden,
        direction="bidirectional",
        layout=la,
        **activation_attrs([lf["options"], lb["options"]]),
    )
    outs = [value("Y", dt, 4), value("Y_h", dt, 3), value("Y_c", dt, 3)]
    got = run_graph(runtime, [node], inputs, inits, outs, feed)
    y, h, c = got["Y"], got["Y_h"], got["Y_c"]
    if la == 0:  # Y [T, 2, B, H]; Y_h [2, B, H]
        y_fw, y_bw = y[:, 0], np.flip(y[:, 1], axis=0)
        return (y_fw, [(h[0], c[0])]), (y_bw, [(h[1], c[1])])
    y_fw, y_bw = y[:, :, 0], np.flip(y[:, :, 1], axis=1)  # Y [B, T, 2, H]
    return (y_fw, [(h[:, 0], c[:, 0])]), (y_bw, [(h[:, 1], c[:, 1])])


def add_lengths(runtime, lengths, inputs, inits, feed):
    """`sequence_lens`: a graph input, or a constant where the runtime
    takes only constant lengths (`runtime.constant_lengths`)."""
    lengths = lengths.astype(np.int32)
    if getattr(runtime, "constant_lengths", False):
        inits.append(numpy_helper.from_array(lengths, "sequence_lens"))
    else:
        inputs.append(value("sequence_lens", TensorProto.INT32, 1))
        feed["sequence_lens"] = lengths


def run_graph(runtime, nodes, inputs, initializers, outputs, feed):
    """Build, check and run one graph; its outputs by name."""
    graph = helper.make_graph(nodes, "lstm_parity_step", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    names = [o.name for o in outputs]
    return dict(zip(names, runtime.run(model, names, feed)))


class Adapter:
    """The step reader and runners `gate_io.run_export` drives, on one runtime."""

    StepData = StepData

    def __init__(self, runtime):
        self.runtime = runtime

    @staticmethod
    def bidirectional_pair(steps):
        return bidirectional_pair(steps)

    def run_step(self, step):
        return run_step(step, self.runtime)

    def run_pair(self, fw, bw):
        return run_pair(fw, bw, self.runtime)
