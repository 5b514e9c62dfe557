"""Record the `keras3` reference suite: Keras 3 LSTM layers run by Keras itself.

Run WITHOUT TF_USE_LEGACY_KERAS (removed here before TensorFlow is imported),
so that `keras` is Keras 3 on the TensorFlow backend. Cases:

  nb002-*, rand-*   the original 24 cases (LSTM and RNN(StackedRNNCells)), unchanged
  canary-<trap>     one trap each (lstm_record/keras_cases.py canary_cases)
  quirk-<what>      Keras behaviours reference/README.md does not describe
  grid-NNN-<tags>   seeded random cases over every option: LSTM / LSTMCell options,
                    masks and Masking, RNN(StackedRNNCells) and RNN([cells]),
                    Bidirectional (all merge modes, backward_layer), Sequential stacks,
                    stateful, unroll, initial states, dropout at inference

Every case is run twice: models built with dtype "float32" and with dtype
"float64" (checked: float64 variables and outputs), with the same
float32-valued weights assigned by variable path. Per-step states come from
Keras (lstm_record/keras_runner.py). Every case is re-checked against the
float64 NumPy model lstm_record/keras_numpy.py.

Usage: record_keras3.py --out ROOT   (writes ROOT/keras3/<case>/)
"""

from lstm_record import determinism

determinism.configure_environment(legacy_keras=False)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from lstm_record import keras_cases, keras_suite  # noqa: E402
from lstm_record.keras_runner import KerasRunner  # noqa: E402
from lstm_record.weights import Generator  # noqa: E402

SCRIPT = "scripts/record_keras3.py"
SUITE = "keras3"
NOTEBOOK_INPUT_2x3x6 = [
    [[1, 2, 3, 4, 3, 2], [1, 2, 1, 1, 1, 2], [1, 2, 2, 2, 2, 2]],
    [[1, 2, 3, 4, 3, 2], [3, 2, 2, 1, 1, 2], [0, 0, 0, 0, 3, 2]],
]
TRACE_NOTE = keras_cases.TRACE_NOTE
GRID_CASES = 80


def cell(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True):
    return {"units": units, "activation": activation, "recurrent_activation": recurrent_activation,
            "use_bias": use_bias}


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


def all_cases():
    legacy = [keras_cases.from_legacy(c) for c in notebook_cases() + random_cases()]
    return (legacy + keras_cases.canary_cases("3", 31000) + keras_cases.quirk_cases("3", 32000)
            + keras_cases.grid_cases("3", GRID_CASES, 33000))


def versions():
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}


def check_environment():
    if not keras.__version__.startswith("3.") or keras.backend.backend() != "tensorflow":
        return f"need Keras 3 on the TensorFlow backend, got {keras.__version__} / {keras.backend.backend()}"
    return None


def runner():
    return KerasRunner(keras, tf, "3")


def configure():
    determinism.configure_tensorflow(tf)


RECORDER = keras_suite.Recorder(suite=SUITE, script=SCRIPT, runner=runner, all_cases=all_cases,
                                versions=versions, configure=configure, check_environment=check_environment)


if __name__ == "__main__":
    keras_suite.main(RECORDER, __doc__.splitlines()[0])
