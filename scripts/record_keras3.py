"""Record the `keras3` reference suite: Keras 3 LSTM layers run by Keras itself.

Run WITHOUT TF_USE_LEGACY_KERAS (removed here before TensorFlow is imported),
so that `keras` is Keras 3 on the TensorFlow backend. Layers:
`keras.layers.LSTM` and `keras.layers.RNN(keras.layers.StackedRNNCells([LSTMCell...]))`,
with explicit names so the variable paths are stable.

Every case is run twice: layers built with dtype "float32" and with dtype
"float64" (checked: float64 variables and outputs), with the same
float32-valued weights assigned by variable path. Per-step states come from
Keras: the layer's own cell object is wrapped in `TraceCell`, whose output is
`[output, h0, c0, h1, c1, ...]`, and run through `keras.layers.RNN` with the
same go_backwards and initial state; its output part is checked equal to the
layer's output and its last step to the layer's returned states.

Usage: record_keras3.py --out ROOT   (writes ROOT/keras3/<case>/)
"""

import argparse
import pathlib
import sys
import time

from lstm_record import determinism

determinism.configure_environment(legacy_keras=False)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from lstm_record import numpy_lstm  # noqa: E402
from lstm_record.case_writer import Case  # noqa: E402
from lstm_record.weights import Generator  # noqa: E402

SCRIPT = "scripts/record_keras3.py"
SUITE = "keras3"
NOTEBOOK_INPUT_2x3x6 = [
    [[1, 2, 3, 4, 3, 2], [1, 2, 1, 1, 1, 2], [1, 2, 2, 2, 2, 2]],
    [[1, 2, 3, 4, 3, 2], [3, 2, 2, 1, 1, 2], [0, 0, 0, 0, 3, 2]],
]
TRACE_NOTE = (
    "trace/*: per-step (h, c) computed by Keras: the layer's own cell object wrapped in a "
    "pass-through cell whose output is [output, h0, c0, ...], run through keras.layers.RNN with the "
    "same go_backwards and initial state; checked equal to the layer's output and returned states. "
    "Steps are in processing order (with go_backwards, step k read input x[T-1-k])."
)


def cell(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True):
    return {"units": units, "activation": activation, "recurrent_activation": recurrent_activation,
            "use_bias": use_bias}


def cell_names(count):
    """Keras 3's own default names in a fresh session: lstm_cell, lstm_cell_1, ..."""
    return ["lstm_cell"] + [f"lstm_cell_{i}" for i in range(1, count)]


class TraceCell(keras.layers.Layer):
    """Pass-through wrapper around an already built cell: output = [output] + flattened states."""

    def __init__(self, inner, **kwargs):
        super().__init__(dtype=inner.dtype_policy, **kwargs)
        self.inner = inner
        self.state_size = inner.state_size
        self.output_size = inner.output_size + sum(tf.nest.flatten(inner.state_size))
        self.built = True

    def call(self, inputs, states, training=False):
        output, new_states = self.inner(inputs, states, training=training)
        return keras.ops.concatenate([output] + tf.nest.flatten(new_states), axis=-1), new_states

    def get_initial_state(self, batch_size=None):
        return self.inner.get_initial_state(batch_size)


# ------------------------------------------------------------------ running


def build_layer(case, dtype):
    common = {"return_sequences": case["return_sequences"], "return_state": case["return_state"],
              "go_backwards": case["go_backwards"], "dtype": dtype}
    specs = case["cells"]
    if case["layer"] == "LSTM":
        (spec,) = specs
        layer = keras.layers.LSTM(spec["units"], activation=spec["activation"],
                                  recurrent_activation=spec["recurrent_activation"], use_bias=spec["use_bias"],
                                  name="lstm", **common)
        return layer, lambda: [layer.cell]
    cells = [keras.layers.LSTMCell(s["units"], activation=s["activation"],
                                   recurrent_activation=s["recurrent_activation"], use_bias=s["use_bias"],
                                   name=name, dtype=dtype)
             for s, name in zip(specs, cell_names(len(specs)))]
    stacked = keras.layers.StackedRNNCells(cells, name="stacked_rnn_cells", dtype=dtype)
    return keras.layers.RNN(stacked, name="rnn", **common), lambda: cells


def nested_initial_state(case, dtype):
    """[h0, c0] for LSTM, [[h0, c0], [h1, c1], ...] for a stack; None when not given."""
    inputs = case["inputs"]
    if "initial_state/0/h" not in inputs:
        return None
    per_layer = [[inputs[f"initial_state/{i}/{k}"].astype(dtype) for k in ("h", "c")]
                 for i in range(len(case["cells"]))]
    return per_layer[0] if case["layer"] == "LSTM" else per_layer


def run_keras(case, dtype):
    """Run one case in `dtype`; return (outputs, {(layer, role): variable path})."""
    keras.utils.set_random_seed(0)
    x = case["inputs"]["inputs"].astype(dtype)
    layer, get_cells = build_layer(case, dtype)
    layer.build(x.shape)
    paths = {}
    for index, layer_cell in enumerate(get_cells()):
        for variable in layer_cell.weights:
            role = variable.path.rsplit("/", 1)[1]
            paths[index, role] = variable.path
            value = case["weights"][index, role].astype(dtype)
            variable.assign(value)
            assert np.array_equal(keras.ops.convert_to_numpy(variable), value)
            if variable.dtype != dtype:
                raise AssertionError(f"{case['name']}: {variable.path} is {variable.dtype}, not {dtype}")
    if set(paths.values()) != {v.path for v in layer.weights} or set(paths) != set(case["weights"]):
        raise AssertionError(f"{case['name']}: variables {[v.path for v in layer.weights]} vs {sorted(paths)}")
    initial = nested_initial_state(case, dtype)
    kwargs = {} if initial is None else {"initial_state": initial}
    result = layer(x, **kwargs)
    flat = [keras.ops.convert_to_numpy(t) for t in tf.nest.flatten(result)]
    for array in flat:
        if array.dtype != np.dtype(dtype):
            raise AssertionError(f"{case['name']}: Keras computed {array.dtype} in a {dtype} layer")
    named = {"output": flat[0]}
    if case["return_state"]:
        for index in range(len(case["cells"])):
            named[f"state/{index}/h"], named[f"state/{index}/c"] = flat[1 + 2 * index], flat[2 + 2 * index]

    tracer = keras.layers.RNN(TraceCell(layer.cell), return_sequences=True, go_backwards=case["go_backwards"],
                              dtype=dtype, name="trace_rnn")
    trace = keras.ops.convert_to_numpy(tracer(x, **kwargs))
    if tracer.weights and {v.path for v in tracer.weights} != {v.path for v in layer.weights}:
        raise AssertionError(f"{case['name']}: the trace wrapper owns other variables")
    units_out = case["cells"][-1]["units"]
    expected_output = trace[..., :units_out] if case["return_sequences"] else trace[:, -1, :units_out]
    if not np.array_equal(expected_output, named["output"]):
        raise AssertionError(f"{case['name']}: trace output differs from the layer's output")
    offset = units_out
    for index, spec in enumerate(case["cells"]):
        for name in ("h", "c"):
            named[f"trace/{index}/{name}"] = trace[..., offset:offset + spec["units"]]
            offset += spec["units"]
            if case["return_state"] and not np.array_equal(named[f"trace/{index}/{name}"][:, -1],
                                                           named[f"state/{index}/{name}"]):
                raise AssertionError(f"{case['name']}: last trace step != returned state/{index}/{name}")
    return named, paths


# ------------------------------------------------------------------ cases


def prepare(case, scale=1.0):
    """Draw weights, then initial states (inputs were given or drawn first) from the case's generator."""
    gen = case.pop("generator_state", None) or Generator(case["seed"])
    depth = case["inputs"]["inputs"].shape[-1]
    weights = {}
    for index, spec in enumerate(case["cells"]):
        units = spec["units"]
        weights[index, "kernel"] = gen.weight((depth, 4 * units), scale, gates=4)
        weights[index, "recurrent_kernel"] = gen.weight((units, 4 * units), scale, gates=4)
        if spec["use_bias"]:
            weights[index, "bias"] = gen.weight((4 * units,), scale, gates=4)
        depth = units
    case["weights"] = weights
    if case.pop("random_initial_state", False):
        batch = case["inputs"]["inputs"].shape[0]
        for index, spec in enumerate(case["cells"]):
            for name in ("h", "c"):
                case["inputs"][f"initial_state/{index}/{name}"] = gen.uniform((batch, spec["units"]))
    return case


def notebook_cases():
    lstm_case = {
        "name": "nb002-lstm-one-step", "notebook": "notebook-002", "seed": 120,
        "description": "notebook-002: LSTM(4, return_sequences=True, return_state=True) on the (1,1,6) "
                       "input [[[3,2,2,2,2,2]]]",
        "notes": "The notebook's `lstm.states = state` (zeros) only sets a Python attribute and has no "
                 "effect on the call: the initial state is Keras's zero state, so no initial_state "
                 "input is given. The notebook used the default initializers; here the weights are "
                 "seeded random (uniform [-0.5, 0.5], float32). " + TRACE_NOTE,
        "layer": "LSTM", "cells": [cell(4)], "return_sequences": True, "return_state": True,
        "go_backwards": False,
        "inputs": {"inputs": np.asarray([[[3, 2, 2, 2, 2, 2]]], dtype=np.float32)},
    }
    stacked_case = {
        "name": "nb002-stacked", "notebook": "notebook-002", "seed": 121,
        "description": "notebook-002: RNN(StackedRNNCells([LSTMCell(4), LSTMCell(5)]), "
                       "return_sequences=True, return_state=True) on the (2,3,6) input",
        "notes": "Keras returns [output, [h0, c0], [h1, c1]] (the notebook unpacks this as output, "
                 "final_memory_state, final_carry_state, which are really layer 0's and layer 1's [h, c]). "
                 "Seeded random weights (uniform [-0.5, 0.5], float32). " + TRACE_NOTE,
        "layer": "RNN", "cells": [cell(4), cell(5)], "return_sequences": True, "return_state": True,
        "go_backwards": False,
        "inputs": {"inputs": np.asarray(NOTEBOOK_INPUT_2x3x6, dtype=np.float32)},
    }
    return [prepare(lstm_case), prepare(stacked_case)]


def random_cases():
    """Seeded random cases; shapes and options chosen by hand to cover the Keras 3 surface."""
    relu, lin, hs = "relu", "linear", "hard_sigmoid"
    table = [
        # number, tag, layer, cells, return_sequences, return_state, go_backwards, (batch, time, input), options
        (1, "lstm-seq-state", "LSTM", [cell(3)], True, True, False, (2, 4, 3), {}),
        (2, "lstm-last", "LSTM", [cell(4)], False, False, False, (3, 5, 2), {}),
        (3, "lstm-seq", "LSTM", [cell(2)], True, False, False, (2, 6, 4), {}),
        (4, "lstm-last-state", "LSTM", [cell(5)], False, True, False, (1, 3, 3), {}),
        (5, "lstm-back-seq-state", "LSTM", [cell(3)], True, True, True, (2, 5, 2), {}),
        (6, "lstm-back-last-state-init", "LSTM", [cell(4)], False, True, True, (3, 4, 3), {"initial_state": True}),
        (7, "lstm-seq-state-init", "LSTM", [cell(3)], True, True, False, (2, 3, 5), {"initial_state": True}),
        (8, "lstm-act-relu", "LSTM", [cell(3, activation=relu)], True, True, False, (2, 5, 3), {}),
        (9, "lstm-ract-hardsig-wide", "LSTM", [cell(4, recurrent_activation=hs)], True, True, False, (2, 6, 3),
         {"input_range": 3.0, "scale": 2.0}),
        (10, "lstm-act-linear", "LSTM", [cell(3, activation=lin)], True, True, False, (2, 4, 2), {}),
        (11, "lstm-act-sigmoid-ract-tanh", "LSTM", [cell(3, activation="sigmoid", recurrent_activation="tanh")],
         True, True, False, (2, 4, 3), {}),
        (12, "lstm-nobias", "LSTM", [cell(4, use_bias=False)], True, True, False, (2, 5, 3), {}),
        (13, "lstm-relu-hardsig-back-wide", "LSTM", [cell(3, activation=relu, recurrent_activation=hs)],
         True, True, True, (3, 5, 2), {"input_range": 3.0, "scale": 2.0}),
        (14, "lstm-big", "LSTM", [cell(32)], True, True, False, (8, 20, 32), {"scale": 0.5}),
        (15, "lstm-tiny", "LSTM", [cell(1)], True, True, False, (1, 1, 1), {}),
        (16, "lstm-ract-linear-init", "LSTM", [cell(2, recurrent_activation=lin)], True, True, False, (2, 3, 2),
         {"initial_state": True}),
        (17, "stack1", "RNN", [cell(4)], True, True, False, (2, 3, 3), {}),
        (18, "stack2-back-init", "RNN", [cell(3), cell(6)], True, True, True, (2, 4, 2), {"initial_state": True}),
        (19, "stack3-mixed", "RNN", [cell(2), cell(5, activation=relu, use_bias=False), cell(3, recurrent_activation=hs)],
         True, True, False, (3, 5, 4), {}),
        (20, "stack2-last", "RNN", [cell(4), cell(2)], False, False, False, (2, 5, 3), {}),
        (21, "stack2-last-state-wide", "RNN", [cell(5), cell(3, activation=lin)], False, True, False, (2, 6, 3),
         {"input_range": 3.0}),
        (22, "stack3-back-last-state-init", "RNN", [cell(3), cell(2), cell(4)], False, True, True, (4, 3, 2),
         {"initial_state": True}),
    ]
    cases = []
    for number, tag, layer, cells, sequences, state, backwards, (batch, steps, depth), options in table:
        seed = 2000 + number
        gen = Generator(seed)
        bound = options.get("input_range", 1.0)
        scale = options.get("scale", 1.0)
        flags = [f"return_sequences={sequences}", f"return_state={state}"]
        if backwards:
            flags.append("go_backwards=True")
        cell_text = [f"{c['units']} units, {c['activation']}/{c['recurrent_activation']}"
                     + ("" if c["use_bias"] else ", no bias") for c in cells]
        if layer == "LSTM":
            what = f"LSTM({cell_text[0]}, {', '.join(flags)})"
        else:
            what = f"RNN(StackedRNNCells([{'; '.join(cell_text)}]), {', '.join(flags)})"
        description = what + (" with initial_state" if options.get("initial_state") else "")
        notes = (f"Seeded random case: weights uniform [-0.5, 0.5] * {scale}, inputs uniform "
                 f"[-{bound}, {bound}] (float32), drawn with numpy default_rng({seed}). ")
        if not state:
            notes += "return_state=False: the layer returns no states, so only output and the trace are recorded. "
        case = {
            "name": f"rand-{number:03d}-{tag}", "notebook": None, "seed": seed, "generator": "random",
            "description": description, "notes": notes + TRACE_NOTE,
            "layer": layer, "cells": cells, "return_sequences": sequences, "return_state": state,
            "go_backwards": backwards, "inputs": {"inputs": gen.uniform((batch, steps, depth), -bound, bound)},
            "random_initial_state": options.get("initial_state", False), "generator_state": gen,
        }
        cases.append(prepare(case, scale))
    return cases


# ------------------------------------------------------------------ recording


def model_json(case, paths):
    cells = []
    for index, spec in enumerate(case["cells"]):
        entry = dict(spec)
        entry["variables"] = {role: paths[layer, role] for (layer, role) in paths if layer == index}
        cells.append(entry)
    return {"keras": "3", "layer": case["layer"], "return_sequences": case["return_sequences"],
            "return_state": case["return_state"], "go_backwards": case["go_backwards"], "cells": cells}


def record(case, suite_dir, versions):
    out32, paths = run_keras(case, "float32")
    out64, paths64 = run_keras(case, "float64")
    assert paths == paths64, "float32 and float64 layers name their variables differently"
    provenance = {
        "script": SCRIPT,
        "generator": case.get("generator", "notebook"),
        "notebook": case["notebook"],
        "seed": case["seed"],
        "versions": versions,
        "notes": case["notes"],
    }
    writer = Case(case["name"], case["description"], "keras", model_json(case, paths), provenance)
    for key in sorted(paths, key=lambda k: paths[k]):
        writer.variable(paths[key], case["weights"][key])
    for name in sorted(case["inputs"]):
        writer.input(name, case["inputs"][name])
    for name in sorted(out32):
        writer.expected(name, out32[name], out64[name])
    writer.write(suite_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="reference root to write <root>/keras3 into")
    args = parser.parse_args()
    if not keras.__version__.startswith("3.") or keras.backend.backend() != "tensorflow":
        sys.exit(f"need Keras 3 on the TensorFlow backend, got {keras.__version__} / {keras.backend.backend()}")
    determinism.configure_tensorflow(tf)
    started = time.time()
    suite_dir = args.out / SUITE
    if suite_dir.exists() and any(suite_dir.iterdir()):
        sys.exit(f"{suite_dir} is not empty; record into a fresh folder")
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    cases = notebook_cases() + random_cases()
    if len({c["name"] for c in cases}) != len(cases):
        raise AssertionError("duplicate case names")
    for case in cases:
        record(case, suite_dir, versions)
    numpy_lstm.check_suite(suite_dir)
    print(f"keras3: recorded {len(cases)} cases in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
