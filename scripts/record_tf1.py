"""Record the `tf1` reference suite: TF1 LSTM cells run by TensorFlow itself.

Run with TF_USE_LEGACY_KERAS=1 (set here too, before TensorFlow is imported):
`tf.compat.v1.nn.rnn_cell.{BasicLSTMCell, LSTMCell, MultiRNNCell}` with a
direct cell call, `tf.compat.v1.nn.dynamic_rnn` or `static_rnn`, in graph mode.

Every case is built twice, as a float32 graph and as a float64 graph, with the
same float32-valued weights (widened exactly for float64). Weights are assigned
to the real TF variables, found by name in `trainable_variables()`. Per-step
states come from TF: the same cell objects are wrapped in `_TraceCell`, whose
output is `[output, c0, h0, c1, h1, ...]`, and run through the same API with the
variables reused (the wrapper adds no variable scope; the variable list is
checked to be unchanged). Past a row's sequence_length TF zeroes that output,
so there the trace is filled with TF's final state of the row (the carried
state), as reference/README.md asks.

Usage: record_tf1.py --out ROOT [--seeds DIR]   (writes ROOT/tf1/<case>/)
"""

import argparse
import contextlib
import pathlib
import sys
import time

from lstm_record import REPO_ROOT, determinism

determinism.configure_environment(legacy_keras=True)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from lstm_record import numpy_lstm  # noqa: E402
from lstm_record.case_writer import Case  # noqa: E402
from lstm_record.notebook_print import notebook003_printed  # noqa: E402
from lstm_record.weights import Generator  # noqa: E402

v1 = tf.compat.v1
SCRIPT = "scripts/record_tf1.py"
SUITE = "tf1"
NOTEBOOK_INPUT_2x3x6 = [
    [[1, 2, 3, 4, 3, 2], [1, 2, 1, 1, 1, 2], [1, 2, 2, 2, 2, 2]],
    [[1, 2, 3, 4, 3, 2], [3, 2, 2, 1, 1, 2], [0, 0, 0, 0, 3, 2]],
]
TRACE_NOTE = (
    "trace/*: per-step (c, h) computed by TF: the same cell objects wrapped in a pass-through "
    "RNNCell whose output is [output, c0, h0, ...], run through the same API with the variables "
    "reused; its output part was checked equal to the API's outputs."
)
FILL_NOTE = (
    " Past a row's sequence_length TF zeroes outputs, so there the trace was filled in NumPy "
    "with TF's final state of that row (the carried state)."
)


# ------------------------------------------------------------------ cell specs


def basic(num_units, forget_bias=1.0, activation="tanh"):
    return {"class": "BasicLSTMCell", "num_units": num_units, "forget_bias": float(forget_bias),
            "activation": activation}


def lstm(num_units, forget_bias=1.0, activation="tanh", use_peepholes=False, cell_clip=None,
         num_proj=None, proj_clip=None):
    for value in (forget_bias, cell_clip, proj_clip):
        # the float32 and float64 graphs must see the same constant
        assert value is None or float(np.float32(value)) == value, "use float32-exact constants"
    return {"class": "LSTMCell", "num_units": num_units, "forget_bias": float(forget_bias),
            "activation": activation, "use_peepholes": use_peepholes,
            "cell_clip": None if cell_clip is None else float(cell_clip), "num_proj": num_proj,
            "proj_clip": None if proj_clip is None else float(proj_clip)}


def multi(*cells):
    return {"class": "MultiRNNCell", "cells": list(cells)}


def layer_specs(cell):
    return cell["cells"] if cell["class"] == "MultiRNNCell" else [cell]


def out_size(spec):
    return spec.get("num_proj") or spec["num_units"]


def make_tf_cell(spec):
    if spec["class"] == "BasicLSTMCell":
        return v1.nn.rnn_cell.BasicLSTMCell(spec["num_units"], forget_bias=spec["forget_bias"],
                                            activation=spec["activation"])
    return v1.nn.rnn_cell.LSTMCell(
        spec["num_units"], forget_bias=spec["forget_bias"], activation=spec["activation"],
        use_peepholes=spec["use_peepholes"], cell_clip=spec["cell_clip"], num_proj=spec["num_proj"],
        proj_clip=spec["proj_clip"])


def draw_weights(gen, cell, input_depth, scale):
    """{(layer, role): float32 array}, drawn in a fixed order: layer by layer, kernel, bias, peepholes, projection."""
    weights = {}
    depth = input_depth
    for index, spec in enumerate(layer_specs(cell)):
        units = spec["num_units"]
        weights[index, "kernel"] = gen.weight((depth + out_size(spec), 4 * units), scale, gates=4)
        weights[index, "bias"] = gen.weight((4 * units,), scale, gates=4)
        if spec.get("use_peepholes"):
            for role in ("w_i_diag", "w_f_diag", "w_o_diag"):
                weights[index, role] = gen.weight((units,), scale)
        if spec.get("num_proj"):
            weights[index, "projection/kernel"] = gen.weight((units, spec["num_proj"]), scale)
        depth = out_size(spec)
    return weights


# ------------------------------------------------------------------ TF graph


class _TraceCell(v1.nn.rnn_cell.RNNCell):
    """Pass-through wrapper: output = concat([cell output] + flattened state).

    `__call__` is overridden so that no Layer scope is entered: the wrapped cell
    is called exactly as the runner would call it, under the same variable scope.
    """

    def __init__(self, cell):
        super().__init__()
        self._cell = cell

    @property
    def state_size(self):
        return self._cell.state_size

    @property
    def output_size(self):
        return self._cell.output_size + sum(tf.nest.flatten(self._cell.state_size))

    def zero_state(self, batch_size, dtype):
        return self._cell.zero_state(batch_size, dtype)

    def __call__(self, inputs, state, scope=None):
        output, new_state = self._cell(inputs, state, scope=scope)
        return tf.concat([output] + tf.nest.flatten(new_state), axis=1), new_state

    def call(self, inputs, state):  # required by the base class; never reached
        raise NotImplementedError


def variable_role(variable, cell):
    """'kernel', 'bias', 'w_f_diag', ... or 'projection/kernel' for a cell's variable."""
    name = variable.name[: -len(":0")]
    for role in ("projection/kernel", "kernel", "bias", "w_i_diag", "w_f_diag", "w_o_diag"):
        if name.endswith("/" + role):
            if role == "kernel" and name.endswith("/projection/kernel"):
                continue
            return role
    raise AssertionError(f"unexpected variable {variable.name} in {cell}")


def run_tf(case, dtype):
    """Build and run one case in `dtype`; return (outputs, {(layer, role): native name})."""
    specs = layer_specs(case["cell"])
    api = case["api"]
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        feeds, ph = {}, {}
        for name, value in case["inputs"].items():
            ph_dtype = tf.int32 if value.dtype == np.int32 else dtype
            ph[name] = v1.placeholder(ph_dtype, value.shape, name=name.replace("/", "_"))
            feeds[ph[name]] = value if value.dtype == np.int32 else value.astype(dtype.as_numpy_dtype)
        layer_cells = [make_tf_cell(spec) for spec in specs]
        if case["cell"]["class"] == "MultiRNNCell":
            top = v1.nn.rnn_cell.MultiRNNCell(layer_cells)
        else:
            top = layer_cells[0]
        if case.get("unused_multi_rnn_cell"):
            # notebook-000 as written: MultiRNNCell([LSTMCell(4), LSTMCell(4)]) is built but the
            # last LSTMCell alone goes to dynamic_rnn (the MultiRNNCell is never called).
            v1.nn.rnn_cell.MultiRNNCell([make_tf_cell(specs[0]), top])
        initial = None
        if "initial_state/0/c" in ph:
            per_layer = [(ph[f"initial_state/{i}/c"], ph[f"initial_state/{i}/h"]) for i in range(len(specs))]
            if case.get("initial_state_as_list"):
                initial = [per_layer[0][0], per_layer[0][1]]  # notebook-003: [initial_ltm, initial_stm]
            elif case.get("initial_state_as_tuple"):
                initial = tuple(per_layer[0])  # notebook-000/1/4: state = (zeros, zeros)
            else:
                initial = tuple(v1.nn.rnn_cell.LSTMStateTuple(c, h) for c, h in per_layer)
                if len(specs) == 1 and case["cell"]["class"] != "MultiRNNCell":
                    initial = initial[0]
        seq_len = ph.get("sequence_length")

        def run_api(cell):
            if api == "cell_call":
                with v1.variable_scope(case["scope"]):
                    return cell(ph["inputs"], initial)
            if api == "dynamic_rnn":
                return v1.nn.dynamic_rnn(cell, ph["inputs"], sequence_length=seq_len, initial_state=initial,
                                         dtype=dtype, time_major=case["time_major"])
            name_scope = case.get("name_scope")  # notebook-003 builds under name_scope('rec_layer')
            with tf.name_scope(name_scope) if name_scope else contextlib.nullcontext():
                outs, state = v1.nn.static_rnn(cell, tf.unstack(ph["inputs"]), initial_state=initial,
                                               dtype=dtype, sequence_length=seq_len)
            return tf.stack(outs), state

        outputs, final_state = run_api(top)
        variables_before = [v.name for v in v1.trainable_variables()]
        trace_outputs = None
        if api != "cell_call":
            with v1.variable_scope(v1.get_variable_scope(), reuse=True):
                trace_outputs, _ = run_api(_TraceCell(top))
        if [v.name for v in v1.trainable_variables()] != variables_before:
            raise AssertionError(f"{case['name']}: the trace wrapper created or renamed variables")

        # map each cell's variables to (layer, role) and check against trainable_variables()
        names = {}
        for index, cell in enumerate(layer_cells):
            for variable in cell.trainable_weights:
                names[index, variable_role(variable, cell)] = variable.name[: -len(":0")]
        by_name = {v.name[: -len(":0")]: v for v in v1.trainable_variables()}
        if set(by_name) != set(names.values()) or set(names) != set(case["weights"]):
            raise AssertionError(f"{case['name']}: variables {sorted(by_name)} vs roles {sorted(names)}")

        flat_state = tf.nest.flatten(final_state)  # [c0, h0, c1, h1, ...]
        fetches = {"outputs": outputs, "state": flat_state}
        if trace_outputs is not None:
            fetches["trace"] = trace_outputs
        with v1.Session(graph=graph, config=determinism.session_config(tf)) as session:
            session.run(v1.global_variables_initializer())
            for key, native in names.items():
                value = case["weights"][key].astype(dtype.as_numpy_dtype)
                by_name[native].load(value, session)
                assert np.array_equal(session.run(by_name[native]), value)
            result = session.run(fetches, feed_dict=feeds)
    return collect_outputs(case, result), names


def collect_outputs(case, result):
    """Turn raw fetches into the case's named outputs (batch-major traces, carried-state fill)."""
    specs = layer_specs(case["cell"])
    api, batch_major = case["api"], case["api"] == "dynamic_rnn" and not case["time_major"]
    named = {}
    finals = result["state"]
    for index in range(len(specs)):
        named[f"state/{index}/c"], named[f"state/{index}/h"] = finals[2 * index], finals[2 * index + 1]
    if api == "cell_call":
        named["output"] = result["outputs"]
        for index in range(len(specs)):
            for name in ("c", "h"):
                named[f"trace/{index}/{name}"] = named[f"state/{index}/{name}"][:, None, :]
        return named
    named["outputs"] = result["outputs"]
    trace = result["trace"] if batch_major else np.transpose(result["trace"], (1, 0, 2))
    outputs_bm = result["outputs"] if batch_major else np.transpose(result["outputs"], (1, 0, 2))
    width = out_size(specs[-1])
    if not np.array_equal(trace[..., :width], outputs_bm):
        raise AssertionError(f"{case['name']}: trace wrapper output differs from the API's outputs")
    batch, steps = trace.shape[0], trace.shape[1]
    lengths = case["inputs"].get("sequence_length")
    lengths = np.full(batch, steps) if lengths is None else lengths
    offset = width
    for index, spec in enumerate(specs):
        for name, size in (("c", spec["num_units"]), ("h", out_size(spec))):
            per_step = trace[..., offset:offset + size].copy()
            final = named[f"state/{index}/{name}"]
            for row in range(batch):
                if lengths[row] > 0 and not np.array_equal(per_step[row, lengths[row] - 1], final[row]):
                    raise AssertionError(f"{case['name']}: trace at the last valid step != final state")
                per_step[row, lengths[row]:] = final[row]  # carried state past the row's length
            named[f"trace/{index}/{name}"] = per_step
            offset += size
    return named


# ------------------------------------------------------------------ cases


def model_json(case, names):
    def cell_json(index, spec):
        entry = dict(spec)
        entry["variables"] = {role: names[layer, role] for (layer, role) in names if layer == index}
        return entry

    if case["cell"]["class"] == "MultiRNNCell":
        cell = {"class": "MultiRNNCell", "cells": [cell_json(i, s) for i, s in enumerate(case["cell"]["cells"])]}
    else:
        cell = cell_json(0, case["cell"])
    model = {"api": case["api"], "cell": cell}
    if case["api"] == "dynamic_rnn":
        model["time_major"] = case["time_major"]
    return model


def notebook_cases():
    f32 = lambda values: np.asarray(values, dtype=np.float32)  # noqa: E731
    zeros = lambda b, u: np.zeros((b, u), dtype=np.float32)  # noqa: E731
    cases = []
    for nb, seed, rows in (("000", 100, [[1, 2, 3, 4, 3, 2], [3, 2, 2, 2, 2, 2]]),
                           ("001", 110, [[3, 2, 2, 2, 2, 2]]),
                           ("004", 140, [[3, 2, 2, 3, 2, 2]])):
        cases.append({
            "name": f"nb{nb}-basic-one-step", "notebook": f"notebook-{nb}", "seed": seed,
            "description": f"notebook-{nb}: BasicLSTMCell(4) called once under variable_scope('LSTM_sample1') "
                           f"on a [{len(rows)}, 6] input with a zero state",
            "notes": "The notebook used the default random initializer; here the weights are seeded random "
                     "(uniform [-0.5, 0.5], float32). The zero state (zeros, zeros) is given as inputs "
                     "initial_state/0/c, /h, passed to the cell as a plain tuple like the notebook. "
                     "trace/* is the single step's returned state.",
            "api": "cell_call", "scope": "LSTM_sample1", "cell": basic(4), "initial_state_as_tuple": True,
            "inputs": {"inputs": f32(rows), "initial_state/0/c": zeros(len(rows), 4),
                       "initial_state/0/h": zeros(len(rows), 4)},
        })
    cases.append({
        "name": "nb000-stacked-as-written", "notebook": "notebook-000", "seed": 101,
        "description": "notebook-000 stacked section as written: MultiRNNCell built, but only the last "
                       "LSTMCell(4) goes to dynamic_rnn on the (2,3,6) input",
        "notes": "The notebook's loop builds MultiRNNCell([LSTMCell(4), LSTMCell(4)]) and then calls "
                 "dynamic_rnn(cell, data) with the loop variable `cell`, the last LSTMCell; the "
                 "MultiRNNCell is built here too and never called, so it owns no variables. Seeded random "
                 "weights. " + TRACE_NOTE,
        "api": "dynamic_rnn", "time_major": False, "cell": lstm(4), "unused_multi_rnn_cell": True,
        "inputs": {"inputs": f32(NOTEBOOK_INPUT_2x3x6)},
    })
    cases.append({
        "name": "nb000-stacked-intended", "notebook": "notebook-000", "seed": 102,
        "description": "notebook-000 stacked section as intended: MultiRNNCell([LSTMCell(4), LSTMCell(4)]) "
                       "+ dynamic_rnn on the (2,3,6) input",
        "notes": "Seeded random weights. " + TRACE_NOTE,
        "api": "dynamic_rnn", "time_major": False, "cell": multi(lstm(4), lstm(4)),
        "inputs": {"inputs": f32(NOTEBOOK_INPUT_2x3x6)},
    })
    for nb, seed in (("001", 111), ("004", 141)):
        cases.append({
            "name": f"nb{nb}-stacked", "notebook": f"notebook-{nb}", "seed": seed,
            "description": f"notebook-{nb}: MultiRNNCell([LSTMCell(4), LSTMCell(5)]) + dynamic_rnn "
                           "on the (2,3,6) input",
            "notes": "Seeded random weights. " + TRACE_NOTE,
            "api": "dynamic_rnn", "time_major": False, "cell": multi(lstm(4), lstm(5)),
            "inputs": {"inputs": f32(NOTEBOOK_INPUT_2x3x6)},
        })
    cases.append(notebook003_case())
    return cases


def notebook003_case():
    """notebook-003: NumPy LSTM vs BasicLSTMCell(3, forget_bias=0) + static_rnn, weights as the notebook drew them."""
    data_x1 = np.array([[0., 1.], [1, 0], [1, 1], [0, -1], [-1, 0], [-1, -1], [-1, -1]])
    data_x2 = np.array([[1., 0.], [-1, 1], [0, -2], [2, 1], [1, -1], [2, 2], [1, 1]])
    weights_dim = [5, 3]
    rng = np.random.RandomState(666)  # == np.random.seed(666) followed by np.random.rand calls
    Wf = 2 * rng.rand(*weights_dim) - 1
    bf = 2 * rng.rand(3) - 1
    Wi = 2 * rng.rand(*weights_dim) - 1
    bi = 2 * rng.rand(3) - 1
    WC = 2 * rng.rand(*weights_dim) - 1
    bC = 2 * rng.rand(3) - 1  # (the notebook's `bC = np.zeros(n_nodes)` before this draws nothing)
    Wo = 2 * rng.rand(*weights_dim) - 1
    bo = 2 * rng.rand(3) - 1
    kernel = np.concatenate([Wi, WC, Wf, Wo], axis=1).astype(np.float32)
    bias = np.concatenate([bi, bC, bf, bo]).astype(np.float32)
    return {
        "name": "nb003-numpy-vs-static-rnn", "notebook": "notebook-003", "seed": 666,
        "description": "notebook-003: BasicLSTMCell(num_units=3, forget_bias=0) + static_rnn, 2 steps, "
                       "batch 7, input 2, zero initial state, the notebook's own weights",
        "notes": "Weights drawn exactly as the notebook: np.random.seed(666), then Wf, bf, Wi, bi, WC, bC, "
                 "Wo, bo = 2*rand-1; kernel = concat([Wi, WC, Wf, Wo], 1), bias = concat([bi, bC, bf, bo]), "
                 "stored as float32 (what the notebook's TF float32 run used; the notebook's own NumPy "
                 "LSTM used the float64 values). The notebook's variables were named "
                 "rnn/basic_lstm_cell/weights, /biases (older TF); TF 2.21 names them kernel, bias. "
                 "initial_state=[c, h] passed as a list like the notebook, under name_scope('rec_layer'). "
                 "notebook_printed: TF's float32 final c, h and step-0 outputs as the notebook printed them "
                 "(8 decimals), parsed from the seed text at record time; the seed text is cut off inside "
                 "the 7th row of the step-0 outputs, so outputs[0] holds the first 6 rows. The recorder "
                 "asserts its float32 results match every printed number within the print rounding plus "
                 "8 float32 epsilons (measured: 9.3e-8). " + TRACE_NOTE,
        "api": "static_rnn", "name_scope": "rec_layer", "cell": basic(3, forget_bias=0.0),
        "initial_state_as_list": True,
        "weights": {(0, "kernel"): kernel, (0, "bias"): bias},
        "inputs": {"inputs": np.array([data_x1, data_x2]).astype(np.float32),
                   "initial_state/0/c": np.zeros((7, 3), np.float32),
                   "initial_state/0/h": np.zeros((7, 3), np.float32)},
    }


def random_cases():
    """Seeded random cases; shapes and options chosen by hand to cover the TF1 surface."""
    table = [
        # number, tag, api, time_major, cell, (batch, time, input), options
        (1, "basic-dyn", "dynamic_rnn", False, basic(3), (2, 4, 3), {}),
        (2, "basic-fb0-dyn-tm", "dynamic_rnn", True, basic(5, forget_bias=0.0), (3, 5, 2), {}),
        (3, "basic-fb05-static", "static_rnn", None, basic(4, forget_bias=0.5), (2, 3, 5), {}),
        (4, "lstm-dyn-seqlen", "dynamic_rnn", False, lstm(4), (4, 6, 3), {"sequence_length": [6, 3, 0, 1]}),
        (5, "lstm-static-seqlen", "static_rnn", None, lstm(3), (3, 5, 2), {"sequence_length": [5, 0, 2]}),
        (6, "lstm-peep-dyn", "dynamic_rnn", False, lstm(5, use_peepholes=True), (2, 7, 4), {}),
        (7, "lstm-clip-dyn", "dynamic_rnn", False, lstm(4, cell_clip=0.5), (3, 6, 3),
         {"scale": 2.0, "input_range": 3.0, "clip_bites": "cell"}),
        (8, "lstm-proj-dyn", "dynamic_rnn", False, lstm(6, num_proj=3), (2, 4, 3), {}),
        (9, "lstm-projclip-dyn-tm", "dynamic_rnn", True, lstm(6, num_proj=4, proj_clip=0.25), (2, 5, 3),
         {"scale": 2.0, "input_range": 3.0, "clip_bites": "proj"}),
        (10, "lstm-peep-clip-proj-static-seqlen", "static_rnn", None,
         lstm(5, use_peepholes=True, cell_clip=1.0, num_proj=2, proj_clip=0.5), (3, 6, 4),
         {"sequence_length": [6, 2, 4], "scale": 2.0, "input_range": 3.0, "clip_bites": "cell"}),
        (11, "multi1-basic-dyn", "dynamic_rnn", False, multi(basic(4)), (2, 3, 3), {}),
        (12, "multi2-mixed-dyn-init", "dynamic_rnn", False, multi(basic(3), lstm(5)), (3, 4, 2),
         {"initial_state": True}),
        (13, "multi3-mixed-dyn-tm-seqlen", "dynamic_rnn", True,
         multi(lstm(2), basic(4, forget_bias=0.0), lstm(3, use_peepholes=True)), (4, 5, 3),
         {"sequence_length": [5, 1, 0, 3]}),
        (14, "multi2-static-init", "static_rnn", None, multi(lstm(4), basic(2)), (2, 3, 4),
         {"initial_state": True}),
        (15, "cell-call-basic-init", "cell_call", None, basic(6), (5, None, 7), {"initial_state": True}),
        (16, "cell-call-lstm-peep-proj-init", "cell_call", None, lstm(4, use_peepholes=True, num_proj=3),
         (3, None, 2), {"initial_state": True}),
        (17, "basic-dyn-init", "dynamic_rnn", False, basic(4), (3, 5, 3), {"initial_state": True}),
        (18, "lstm-big-dyn-seqlen", "dynamic_rnn", False, lstm(32), (8, 20, 32),
         {"sequence_length": [20, 17, 0, 9, 20, 1, 12, 5], "scale": 0.5}),
        (19, "basic-tiny", "dynamic_rnn", False, basic(1), (1, 1, 1), {}),
        (20, "lstm-saturating-dyn", "dynamic_rnn", False, lstm(3, forget_bias=0.5), (2, 8, 4),
         {"scale": 2.0, "input_range": 3.0}),
        (21, "basic-relu-dyn", "dynamic_rnn", False, basic(3, activation="relu"), (2, 4, 3), {}),
        (22, "multi3-static-seqlen-init", "static_rnn", None, multi(basic(3), lstm(2, num_proj=1), basic(4)),
         (4, 4, 2), {"sequence_length": [4, 0, 2, 1], "initial_state": True}),
        (23, "lstm-dyn-tm-seqlen-init", "dynamic_rnn", True, lstm(3, forget_bias=0.0), (3, 4, 2),
         {"sequence_length": [0, 4, 2], "initial_state": True}),
        (24, "lstm-peep-clip-dyn", "dynamic_rnn", False, lstm(4, use_peepholes=True, cell_clip=0.75), (2, 6, 3),
         {"scale": 2.0, "input_range": 3.0, "clip_bites": "cell"}),
        (25, "lstm-fb05-proj-static", "static_rnn", None, lstm(5, forget_bias=0.5, num_proj=7), (2, 3, 3), {}),
        (26, "basic-fb0-static-seqlen-full", "static_rnn", None, basic(2, forget_bias=0.0), (3, 4, 3),
         {"sequence_length": [4, 4, 4]}),
        (27, "cell-call-multi2", "cell_call", None, multi(lstm(3), basic(2)), (2, None, 4), {"initial_state": True}),
        (28, "multi2-dyn-seqlen-short", "dynamic_rnn", False, multi(lstm(3), lstm(3, use_peepholes=True)),
         (3, 6, 2), {"sequence_length": [3, 2, 0]}),
    ]
    cases = []
    for number, tag, api, time_major, cell, (batch, steps, depth), options in table:
        seed = 1000 + number
        gen = Generator(seed)
        low_high = options.get("input_range", 1.0)
        if api == "cell_call":
            shape = (batch, depth)
        elif api == "dynamic_rnn" and not time_major:
            shape = (batch, steps, depth)
        else:
            shape = (steps, batch, depth)
        inputs = {"inputs": gen.uniform(shape, -low_high, low_high)}
        if "sequence_length" in options:
            inputs["sequence_length"] = np.asarray(options["sequence_length"], dtype=np.int32)
            assert len(inputs["sequence_length"]) == batch
        what = {"cell_call": "one cell call", "dynamic_rnn": "dynamic_rnn", "static_rnn": "static_rnn"}[api]
        if api == "dynamic_rnn":
            what += ", time-major" if time_major else ", batch-major"
        extras = [k for k in ("sequence_length", "initial_state") if k in options]
        notes = (f"Seeded random case: weights uniform [-0.5, 0.5] * {options.get('scale', 1.0)}, inputs "
                 f"uniform [-{low_high}, {low_high}] (float32), drawn with numpy default_rng({seed}). ")
        if api == "cell_call":
            notes += "trace/* is the single step's returned state."
        else:
            notes += TRACE_NOTE + (FILL_NOTE if "sequence_length" in options else "")
        cases.append({
            "name": f"rand-{number:03d}-{tag}", "notebook": None, "seed": seed, "generator": "random",
            "description": f"{describe_cell(cell)} via {what}"
                           + (f", with {' and '.join(e.replace('_', ' ') for e in extras)}" if extras else ""),
            "notes": notes, "api": api, "time_major": time_major, "cell": cell, "scope": "cell_call",
            "inputs": inputs, "scale": options.get("scale", 1.0),
            "random_initial_state": options.get("initial_state", False),
            "clip_bites": options.get("clip_bites"), "generator_state": gen,
        })
    return cases


def describe_cell(cell):
    if cell["class"] == "MultiRNNCell":
        return "MultiRNNCell([" + ", ".join(describe_cell(c) for c in cell["cells"]) + "])"
    options = [str(cell["num_units"])]
    if cell["forget_bias"] != 1.0:
        options.append(f"forget_bias={cell['forget_bias']:g}")
    if cell["activation"] != "tanh":
        options.append(f"activation={cell['activation']}")
    for key in ("use_peepholes", "cell_clip", "num_proj", "proj_clip"):
        if cell.get(key):
            options.append(f"{key}={cell[key]}")
    return f"{cell['class']}({', '.join(options)})"


def prepare_random(case):
    """Draw weights and initial states with the case's generator, after its inputs."""
    gen = case.pop("generator_state")
    specs = layer_specs(case["cell"])
    inputs = case["inputs"]
    case["weights"] = draw_weights(gen, case["cell"], inputs["inputs"].shape[-1], case["scale"])
    if case["random_initial_state"]:
        batch_axis = 0 if case["api"] == "cell_call" or (case["api"] == "dynamic_rnn" and not case["time_major"]) else 1
        batch = inputs["inputs"].shape[batch_axis]
        for index, spec in enumerate(specs):
            inputs[f"initial_state/{index}/c"] = gen.uniform((batch, spec["num_units"]))
            inputs[f"initial_state/{index}/h"] = gen.uniform((batch, out_size(spec)))
    return case


def prepare_notebook(case):
    """Seeded random weights for notebook cases whose notebook used random initial weights."""
    if "weights" not in case:
        gen = Generator(case["seed"])
        case["weights"] = draw_weights(gen, case["cell"], case["inputs"]["inputs"].shape[-1], 1.0)
    return case


# ------------------------------------------------------------------ recording


def record(case, suite_dir, versions, printed=None):
    out32, names = run_tf(case, tf.float32)
    out64, names64 = run_tf(case, tf.float64)
    assert names == names64, "float32 and float64 graphs name their variables differently"
    check_clip(case, out64)
    provenance = {
        "script": SCRIPT,
        "generator": case.get("generator", "notebook"),
        "notebook": case["notebook"],
        "seed": case["seed"],
        "versions": versions,
        "notes": case["notes"],
    }
    writer = Case(case["name"], case["description"], "tf1", model_json(case, names), provenance)
    for key in sorted(names, key=lambda k: names[k]):
        writer.variable(names[key], case["weights"][key])
    for name in sorted(case["inputs"]):
        writer.input(name, case["inputs"][name])
    for name in sorted(out32):
        writer.expected(name, out32[name], out64[name])
    if printed is not None:
        writer.manifest["notebook_printed"] = notebook003_section(writer, printed, out32)
    writer.write(suite_dir)


def check_clip(case, out64):
    """A case that is meant to exercise a clip must actually hit it."""
    which = case.get("clip_bites")
    if which is None:
        return
    spec = layer_specs(case["cell"])[0]
    limit, name = (spec["cell_clip"], "c") if which == "cell" else (spec["proj_clip"], "h")
    reached = np.max(np.abs(out64[f"trace/0/{name}"]))
    if reached != limit:
        raise AssertionError(f"{case['name']}: {which} clip {limit} never bites (max |{name}| = {reached})")


def notebook003_section(writer, printed, out32):
    """Save the numbers notebook-003 printed and assert the float32 recording reproduces them."""
    recorded = {"state/0/c": out32["state/0/c"], "state/0/h": out32["state/0/h"],
                "outputs[0]": out32["outputs"][0]}
    section, worst = {}, 0.0
    for key, (values, decimals) in printed.items():
        ours = recorded[key][: values.shape[0]].astype(np.float64)
        diff = float(np.max(np.abs(ours - values)))
        worst = max(worst, diff)
        # The same rule as tests/notebooks.rs: print rounding plus the float32
        # floor of the default tolerance (8 float32 epsilons, scaled).
        limit = 0.5 * 10.0 ** -decimals + 8 * float(np.finfo(np.float32).eps) * max(1.0, float(np.max(np.abs(values))))
        if diff > limit:
            raise AssertionError(f"nb003: {key} differs from the notebook's printed TF values by {diff:.3g} > {limit:.3g}")
        stem = key.replace("/", ".").replace("[", ".").replace("]", "")
        file_name = writer.extra_array(f"printed.{stem}.npy", values, "float64")
        section[key] = {"file": file_name, "shape": list(values.shape), "decimals": decimals}
    print(f"nb003: max |float32 recording - notebook's printed TF values| = {worst:.3g} "
          f"({sum(v.size for v, _ in printed.values())} numbers)")
    return section


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="reference root to write <root>/tf1 into")
    parser.add_argument("--seeds", type=pathlib.Path, default=REPO_ROOT / "scripts" / "seeds",
                        help="folder with the seed notebooks (default scripts/seeds, a copy of ../shared/seeds)")
    args = parser.parse_args()
    determinism.configure_tensorflow(tf)
    started = time.time()
    suite_dir = args.out / SUITE
    if suite_dir.exists() and any(suite_dir.iterdir()):
        sys.exit(f"{suite_dir} is not empty; record into a fresh folder")
    versions = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "numpy": np.__version__}
    printed = notebook003_printed((args.seeds / "notebook-003.txt").read_text(encoding="utf-8"))
    cases = [prepare_notebook(c) for c in notebook_cases()] + [prepare_random(c) for c in random_cases()]
    if len({c["name"] for c in cases}) != len(cases):
        raise AssertionError("duplicate case names")
    for case in cases:
        record(case, suite_dir, versions, printed if case["name"] == "nb003-numpy-vs-static-rnn" else None)
    numpy_lstm.check_suite(suite_dir)
    print(f"tf1: recorded {len(cases)} cases in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
