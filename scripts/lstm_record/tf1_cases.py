"""The cases of the `tf1` suite, as data: TF1 cell specs, weights, inputs.

No TensorFlow here (lstm_record/tf1_runner.py runs the cases). A case is a dict:
`name`, `api`, `cell` (and `cell_bw` for the bidirectional runners), `inputs`
(float32 or int32 arrays under their native input names), `weights`
({(layer, role) or (direction, layer, role): float32 array}), `description`,
`notes`, and optional checks: `bites` (clips that must be reached) and
`traps` (wrong implementations a canary must catch, see traps.py).

Sections: cell specs; hand-written cases (notebooks, rand-*); canaries (one per
known trap); the seeded grid (grid-NNN-<tags>); previews with the NumPy LSTM.
"""

import collections
import functools

import numpy as np

from . import numpy_lstm, traps
from .notebook_print import NOTEBOOK_INPUT_2x3x6
from .weights import Generator, assert_coverage, grid_size, shrink_to_cap


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


def multi(*cells, state_is_tuple=True):
    spec = {"class": "MultiRNNCell", "cells": list(cells)}
    if not state_is_tuple:
        spec["state_is_tuple"] = False
    return spec


def concat_state(spec):
    """The cell with state_is_tuple=False: its state is one tensor [c, h]."""
    return {**spec, "state_is_tuple": False}


def residual(cell):
    return {"class": "ResidualWrapper", "cell": cell}


def dropout(cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0, seed=None):
    return {"class": "DropoutWrapper", "input_keep_prob": float(input_keep_prob),
            "output_keep_prob": float(output_keep_prob), "state_keep_prob": float(state_keep_prob), "seed": seed,
            "cell": cell}


def layer_specs(cell):
    """The LSTM cell specs of a cell, first layer first, wrappers taken off."""
    return [spec for spec, _ in numpy_lstm.tf1_unwrap(cell)]


def out_size(spec):
    return spec.get("num_proj") or spec["num_units"]


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


BIDIRECTIONAL_APIS = numpy_lstm.BIDIRECTIONAL_APIS
BW_TRACE_NOTE = (
    " The backward trace is in processing order: TF returns the backward outputs (and so the "
    "wrapper's per-step states) re-reversed into input order, so each row's first "
    "sequence_length steps were reversed back in NumPy (step k read inputs[len-1-k])."
)


def state_width(cell):
    """Width of the flattened state [c0, h0, c1, h1, ...] of a cell spec."""
    return sum(spec["num_units"] + out_size(spec) for spec in layer_specs(cell))


API_WORDS = {"cell_call": "one cell call", "dynamic_rnn": "dynamic_rnn", "static_rnn": "static_rnn",
             "bidirectional_dynamic_rnn": "bidirectional_dynamic_rnn",
             "static_bidirectional_rnn": "static_bidirectional_rnn"}


def input_shape(api, time_major, batch, steps, depth):
    if api == "cell_call":
        return (batch, depth)
    if api in ("dynamic_rnn", "bidirectional_dynamic_rnn") and not time_major:
        return (batch, steps, depth)
    return (steps, batch, depth)


def add_bias_offsets(weights, offsets):
    """Add a constant per gate block (i, j, f, o) to every layer's bias: makes the blocks clearly different."""
    for key in weights:
        if key[-1] == "bias":
            units = weights[key].shape[0] // 4
            weights[key] = (weights[key] + np.repeat(np.asarray(offsets, np.float32), units)).astype(np.float32)


def build_case(name, *, seed, generator, api, cell, batch, steps, depth, cell_bw=None, time_major=False,
               sequence_length=None, initial_state=False, scale=1.0, input_range=1.0, bias_offsets=None,
               tweak=None, bites=(), traps=(), description=None, notes=""):
    """A canary or grid case: inputs, then weights (fw, then bw), then initial states, all from default_rng(seed).

    `bites`: (direction prefix "" / "fw/" / "bw/", layer, "cell" | "proj") clips that must bite.
    `traps`: (label, wrong) variants for lstm_record.traps (canaries).
    """
    gen = Generator(seed)
    bidirectional = api in BIDIRECTIONAL_APIS
    inputs = {"inputs": gen.uniform(input_shape(api, time_major, batch, steps, depth), -input_range, input_range)}
    if sequence_length is not None:
        inputs["sequence_length"] = np.asarray(sequence_length, dtype=np.int32)
        assert inputs["sequence_length"].shape == (batch,) and np.all(inputs["sequence_length"] <= steps)
    weights = {}
    cells = [("fw", cell), ("bw", cell_bw)] if bidirectional else [(None, cell)]
    for direction, spec in cells:
        drawn = draw_weights(gen, spec, depth, scale)
        weights.update({(direction, *key) if direction else key: value for key, value in drawn.items()})
    if bias_offsets is not None:
        add_bias_offsets(weights, bias_offsets)
    if initial_state or api == "cell_call":  # a cell call needs a state: zeros unless initial_state
        for direction, spec in cells:
            prefix = f"initial_state_{direction}" if direction else "initial_state"
            for index, layer in enumerate(layer_specs(spec)):
                for part, size in (("c", layer["num_units"]), ("h", out_size(layer))):
                    inputs[f"{prefix}/{index}/{part}"] = (gen.uniform((batch, size)) if initial_state
                                                          else np.zeros((batch, size), np.float32))
    if tweak is not None:
        tweak(weights, inputs)
    for direction, spec in cells:  # states as TF's nest holds them (state_is_tuple=False: concatenated)
        prefix = f"initial_state_{direction}" if direction else "initial_state"
        groups = numpy_lstm.state_groups(spec, prefix)
        if any(len(parts) > 1 for _, parts in groups) and f"{prefix}/0/c" in inputs:
            per_layer = {(index, part): inputs.pop(f"{prefix}/{index}/{part}") for _, parts in groups
                         for index, part in parts}
            inputs.update(numpy_lstm.join_states(spec, per_layer, prefix))
    for key, value in weights.items():
        assert value.dtype == np.float32 and np.all(value != 0), f"{name}: weight {key} has zeros or is not float32"
    what = API_WORDS[api]
    if api in ("dynamic_rnn", "bidirectional_dynamic_rnn"):
        what += ", time-major" if time_major else ", batch-major"
    extras = [word for word, present in (("sequence length", sequence_length is not None),
                                         ("initial state", initial_state)) if present]
    if description is None:
        cell_words = (f"fw {describe_cell(cell)}, bw {describe_cell(cell_bw)}" if bidirectional
                      else describe_cell(cell))
        description = f"{cell_words} via {what}" + (f", with {' and '.join(extras)}" if extras else "")
    full_notes = (f"Seeded {generator} case: weights uniform [-0.5, 0.5] * {scale:g}"
                  + (f" plus per-gate bias offsets (i, j, f, o) = {tuple(float(v) for v in bias_offsets)}"
                     if bias_offsets is not None else "")
                  + f", inputs uniform [-{input_range:g}, {input_range:g}] (float32), drawn with numpy "
                  f"default_rng({seed}) in the order inputs, weights{' (fw, then bw)' if bidirectional else ''}, "
                  "initial states. ")
    if notes:
        full_notes += notes.rstrip() + " "
    if api == "cell_call":
        full_notes += "trace/* is the single step's returned state."
    else:
        full_notes += TRACE_NOTE + (FILL_NOTE if sequence_length is not None else "")
        full_notes += BW_TRACE_NOTE if bidirectional else ""
    case = {
        "name": name, "notebook": None, "seed": seed, "generator": generator, "description": description,
        "notes": full_notes, "api": api, "time_major": time_major if api in ("dynamic_rnn", "bidirectional_dynamic_rnn") else None,
        "cell": cell, "scope": "cell_call", "inputs": inputs, "weights": weights, "bites": list(bites),
        "traps": list(traps),
    }
    if bidirectional:
        case["cell_bw"] = cell_bw
    return case


def check_bites(case, out64):
    """Every clip listed in case["bites"] must be reached somewhere in that layer's trace.

    "Reached" is |value| == clip exactly: carried initial states (rows of length 0) may exceed it.
    """
    for prefix, index, which in case.get("bites", ()):
        cell = case["cell_bw"] if prefix == "bw/" else case["cell"]
        spec = layer_specs(cell)[index]
        limit, name = (spec["cell_clip"], "c") if which == "cell" else (spec["proj_clip"], "h")
        values = np.abs(out64[f"{prefix}trace/{index}/{name}"])
        reached = float(np.max(values, initial=0.0))
        if not np.any(values == limit):
            raise AssertionError(f"{case['name']}: {prefix}layer {index} {which} clip {limit} never bites "
                                 f"(max |{name}| = {reached})")


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
        inputs = {"inputs": gen.uniform(input_shape(api, time_major, batch, steps, depth), -low_high, low_high)}
        if "sequence_length" in options:
            inputs["sequence_length"] = np.asarray(options["sequence_length"], dtype=np.int32)
            assert len(inputs["sequence_length"]) == batch
        what = API_WORDS[api]
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


# ------------------------------------------------------------------ canaries


wrong_tf1 = functools.partial(traps.wrong, numpy_lstm.tf1_expected)


def each_cell(model):
    """Every BasicLSTMCell/LSTMCell spec of a tf1 model (all layers, both directions)."""
    for key in ("cell", "cell_bw"):
        if key in model:
            yield from layer_specs(model[key])


def set_option(**changes):
    def change(model):
        for spec in each_cell(model):
            spec.update(changes)
    return change


def permute_tf1_gates(order):
    def change(model, variables):
        names = [spec["variables"][role] for spec in each_cell(model) for role in ("kernel", "bias")]
        return traps.permuted_variables(variables, names, order)
    return change


def scale_role(role, factor):
    """tweak: multiply every variable of `role` (e.g. 'w_o_diag') by `factor`."""
    def tweak(weights, inputs):
        for key in weights:
            if key[-1] == role:
                weights[key] = (weights[key] * np.float32(factor)).astype(np.float32)
    return tweak


def canary_cases():
    """One small case per known trap; lstm_record.traps proves each wrong variant fails it."""
    gate_traps = [(f"gate blocks read in order {''.join('ijfo'[k] for k in order)}", wrong_tf1(variables_change=permute_tf1_gates(order)))
                  for order in traps.gate_permutations()]
    swap_c_h = lambda inputs: inputs.update({"initial_state/0/c": inputs["initial_state/0/h"],  # noqa: E731
                                             "initial_state/0/h": inputs["initial_state/0/c"]})

    def scale_initial_c(weights, inputs):
        inputs["initial_state/0/c"] = (inputs["initial_state/0/c"] * np.float32(3.0)).astype(np.float32)

    table = [
        ("gate-order", "TF1 gate order i, j, f, o: the four gate blocks get clearly different biases, so "
         "reading them in any other order (Keras i, f, c, o; ...) fails", "dynamic_rnn", lstm(5), (3, 6, 4),
         {"scale": 2.0, "bias_offsets": (1.5, 1.0, -1.5, 0.5),
          "variant_summary": "the kernel and bias gate blocks read in each of the 23 other orders"}, gate_traps),
        ("forget-bias-1", "forget_bias=1.0 (the default) is added at run time to the forget pre-activation",
         "dynamic_rnn", basic(4, forget_bias=1.0), (2, 8, 3), {"initial_state": True, "scale": 2.0},
         [("forget_bias dropped (0)", wrong_tf1(set_option(forget_bias=0.0))),
          ("forget_bias added twice (2)", wrong_tf1(set_option(forget_bias=2.0)))]),
        ("forget-bias-2.5", "forget_bias=2.5 (not the default) is added at run time to the forget pre-activation",
         "dynamic_rnn", lstm(4, forget_bias=2.5), (2, 8, 3), {"initial_state": True, "scale": 2.0},
         [("forget_bias 1.0 (default) used", wrong_tf1(set_option(forget_bias=1.0))),
          ("forget_bias dropped (0)", wrong_tf1(set_option(forget_bias=0.0)))]),
        ("peephole-clipped-c", "peepholes with a cell_clip that bites: the output gate peeks at the NEW, "
         "clipped c (w_o_diag scaled by 6)", "dynamic_rnn", lstm(4, use_peepholes=True, cell_clip=0.5),
         (2, 6, 3), {"scale": 2.0, "input_range": 3.0, "tweak": scale_role("w_o_diag", 6.0),
                     "bites": [("", 0, "cell")]},
         [("output peephole on c_prev", wrong_tf1(trap="peephole_o_on_c_prev")),
          ("output peephole on the unclipped c", wrong_tf1(trap="peephole_o_on_unclipped_c")),
          ("cell_clip ignored", wrong_tf1(set_option(cell_clip=None)))]),
        ("cell-clip-zero", "cell_clip=0.0 clips c to 0 (LSTMCell; unlike the block ops, where <= 0 means none)",
         "dynamic_rnn", lstm(4, cell_clip=0.0), (2, 5, 3), {"initial_state": True, "scale": 2.0},
         [("cell_clip 0.0 read as no clip", wrong_tf1(set_option(cell_clip=None)))]),
        ("proj-clip", "num_proj then proj_clip: the projected m is clipped (projection kernel scaled by 3 so the "
         "clip bites) and is both output and recurrent state", "dynamic_rnn",
         lstm(6, num_proj=3, proj_clip=0.25), (2, 6, 3),
         {"scale": 2.0, "input_range": 3.0, "tweak": scale_role("projection/kernel", 3.0),
          "bites": [("", 0, "proj")]},
         [("proj_clip ignored", wrong_tf1(set_option(proj_clip=None))),
          ("clip applied before the projection", wrong_tf1(trap="clip_before_projection"))]),
        ("seqlen-zeros", "sequence_length well short of time: outputs are zero past each row's length and the "
         "state is carried (length 0: the initial state)", "dynamic_rnn", lstm(4), (4, 10, 3),
         {"sequence_length": [3, 0, 6, 1], "initial_state": True, "scale": 2.0},
         [("sequence_length ignored", wrong_tf1(inputs_change=lambda i: i.pop("sequence_length"))),
          ("previous output repeated past the length (Keras mask style)", wrong_tf1(trap="output_carried_past_length")),
          ("state not carried past the length", wrong_tf1(trap="state_not_carried"))]),
        ("bidirectional-padding", "bidirectional_dynamic_rnn with lengths well short of time: the backward cell "
         "reads each row's valid prefix reversed (reverse_sequence), not the padding", "bidirectional_dynamic_rnn",
         lstm(3), (3, 8, 3), {"cell_bw": lstm(4), "sequence_length": [2, 5, 3], "scale": 2.0},
         [("whole time axis reversed (padding read first)", wrong_tf1(trap="full_reverse")),
          ("sequence_length ignored", wrong_tf1(inputs_change=lambda i: i.pop("sequence_length")))]),
        ("static-bidirectional-padding", "static_bidirectional_rnn with lengths short of time: reverse_sequence of "
         "each row's valid prefix; outputs are concat([fw, bw])", "static_bidirectional_rnn", lstm(3), (3, 6, 2),
         {"cell_bw": basic(2), "sequence_length": [1, 4, 2], "scale": 2.0},
         [("whole time axis reversed (padding read first)", wrong_tf1(trap="full_reverse")),
          ("outputs concatenated as [bw, fw]", wrong_tf1(trap="concat_bw_fw"))]),
        ("state-tuple-c-h", "the TF1 state tuple is (c, h) (LSTMStateTuple), not Keras' [h, c]: initial state "
         "given, c scaled by 3", "dynamic_rnn", lstm(4), (2, 4, 3),
         {"initial_state": True, "tweak": scale_initial_c},
         [("initial state read as (h, c)", wrong_tf1(inputs_change=swap_c_h))]),
        ("time-major", "dynamic_rnn with time_major=True and batch == time, so a layout mix-up keeps the shapes",
         "dynamic_rnn", lstm(4), (5, 5, 3), {"time_major": True, "scale": 2.0},
         [("inputs read as batch-major", wrong_tf1(set_time_major(False)))]),
    ]
    cases = []
    for number, (trap, guards, api, cell, (batch, steps, depth), options, variants) in enumerate(table):
        options = dict(options)
        summary = options.pop("variant_summary", None) or "; ".join(label for label, _ in variants)
        case = build_case(
            f"canary-{trap}", seed=3000 + number, generator="canary", api=api, cell=cell, batch=batch, steps=steps,
            depth=depth, traps=variants, notes=f"Canary: {guards}. Wrong implementations that must fail it by "
            f"more than {traps.MIN_MARGIN:g} (checked at record time with the NumPy LSTM): {summary}.", **options)
        case["description"] = f"canary {trap}: " + case["description"]
        cases.append(case)
    return cases


def set_time_major(value):
    def change(model):
        model["time_major"] = value
    return change


# ------------------------------------------------------------------ grid

# Grid: options and sizes drawn per case from numpy default_rng((seed, 1)); values from default_rng(seed).
GRID_COUNT = 100
GRID_SEED = 20000
GRID_API_CYCLE = ("dynamic_rnn", "static_rnn", "bidirectional_dynamic_rnn", "dynamic_rnn", "cell_call",
                  "static_bidirectional_rnn", "dynamic_rnn", "bidirectional_dynamic_rnn")
GRID_FORGET_BIASES = (1.0, 1.0, 0.0, 0.5, 2.5, -1.0, 1.5)
GRID_ACTIVATIONS = ("tanh", "tanh", "tanh", "sigmoid", "relu", "linear")
GRID_BITING_CLIPS = (0.125, 0.25, 0.375)  # cell_clip / proj_clip values the grid asserts to bite
GRID_WIDE_CLIPS = (4.0, 8.0)  # not asserted either way
GRID_SIZE_CAP = 250  # batch * max(time, 1) * sum of state widths: keeps the folder small
FORGET_BIAS_TAGS = {0.0: "fb0", 0.5: "fb05", 2.5: "fb25", -1.0: "fbm1", 1.5: "fb15"}
API_TAGS = {"cell_call": "call", "dynamic_rnn": "dyn", "static_rnn": "static", "bidirectional_dynamic_rnn": "bidyn",
            "static_bidirectional_rnn": "bistatic"}
OPTION_TAG_ORDER = ("peep", "clip", "clip0", "clipwide", "proj", "projclip", "fb0", "fb05", "fb15", "fb25", "fbm1",
                    "sigmoid", "relu", "linear")


def grid_layer(pick):
    """(cell spec, option tags, clips that must bite as (layer-relative) 'cell'/'proj')."""
    units = grid_size(pick)
    forget_bias = GRID_FORGET_BIASES[pick.integers(len(GRID_FORGET_BIASES))]
    act = GRID_ACTIVATIONS[pick.integers(len(GRID_ACTIVATIONS))]
    tags = {FORGET_BIAS_TAGS.get(forget_bias), None if act == "tanh" else act} - {None}
    if pick.random() < 0.3:
        return basic(units, forget_bias=forget_bias, activation=act), tags, []
    peepholes = bool(pick.random() < 0.4)
    bites = []
    r = pick.random()
    if r < 0.55:
        cell_clip = None
    elif r < 0.80:
        cell_clip = GRID_BITING_CLIPS[pick.integers(3)]
        tags.add("clip")
        bites.append("cell")
    elif r < 0.88:
        cell_clip = 0.0
        tags.add("clip0")
    else:
        cell_clip = GRID_WIDE_CLIPS[pick.integers(2)]
        tags.add("clipwide")
    num_proj = proj_clip = None
    r = pick.random()
    if r >= 0.65:
        num_proj = grid_size(pick)
        tags.add("proj")
        if r >= 0.85:
            proj_clip = GRID_BITING_CLIPS[pick.integers(3)]
            tags.add("projclip")
            if cell_clip != 0.0:  # c == 0 gives m == act(0) * ..., which need not reach the clip
                bites.append("proj")
    if peepholes:
        tags.add("peep")
    return (lstm(units, forget_bias=forget_bias, activation=act, use_peepholes=peepholes, cell_clip=cell_clip,
                 num_proj=num_proj, proj_clip=proj_clip), tags, bites)


def grid_cell(pick):
    """(cell spec, kind tag, option tags, bites as (layer, which))."""
    r = pick.random()
    layers = 1 if r < 0.65 else (2 if r < 0.85 else 3)
    multi_cell = r >= 0.5  # MultiRNNCell (1-3 layers) or a bare cell
    drawn = [grid_layer(pick) for _ in range(layers)]
    tags = set().union(*(t for _, t, _ in drawn))
    bites = [(index, which) for index, (_, _, b) in enumerate(drawn) for which in b]
    if multi_cell:
        return multi(*(spec for spec, _, _ in drawn)), f"multi{layers}", tags, bites
    spec = drawn[0][0]
    return spec, "basic" if spec["class"] == "BasicLSTMCell" else "lstm", tags, bites


def grid_cases(count=GRID_COUNT):
    cases = []
    for number in range(1, count + 1):
        seed = GRID_SEED + number
        pick = np.random.default_rng((seed, 1))
        api = GRID_API_CYCLE[(number - 1) % len(GRID_API_CYCLE)]
        bidirectional = api in BIDIRECTIONAL_APIS
        cell, kind, tags, bites = grid_cell(pick)
        bites = [("fw/" if bidirectional else "", layer, which) for layer, which in bites]
        cell_bw = None
        kinds = [kind]
        if bidirectional:
            cell_bw, kind_bw, tags_bw, bites_bw = grid_cell(pick)
            kinds.append(kind_bw)
            tags |= tags_bw
            bites += [("bw/", layer, which) for layer, which in bites_bw]
        depth = grid_size(pick)
        r = pick.random()
        batch = int(pick.integers(1, 5)) if r < 0.65 else int(pick.integers(5, 9)) if r < 0.9 else int(pick.integers(9, 17))
        if api == "cell_call":
            steps = 1
        elif api in ("dynamic_rnn", "bidirectional_dynamic_rnn"):
            r = pick.random()
            steps = 0 if r < 0.08 else int(pick.integers(1, 9)) if r < 0.6 else int(pick.integers(9, 21)) if r < 0.8 \
                else int(pick.integers(21, 41))
        else:
            steps = int(pick.integers(1, 7)) if pick.random() < 0.8 else int(pick.integers(7, 25))
        time_major = api in ("dynamic_rnn", "bidirectional_dynamic_rnn") and bool(pick.random() < 0.4)
        widths = state_width(cell) + (state_width(cell_bw) if bidirectional else 0)
        mode = pick.random()  # a few long (time 30-40) and wide (batch 12-16) cases of narrow cells
        if mode < 0.12 and api in ("dynamic_rnn", "bidirectional_dynamic_rnn") and widths <= 40:
            batch, steps = int(pick.integers(1, 3)), int(pick.integers(30, 41))
        elif mode > 0.93 and widths <= 40:
            batch, steps = int(pick.integers(12, 17)), min(steps, 3)
        else:
            batch, steps = shrink_to_cap(batch, steps, widths, GRID_SIZE_CAP)
        if steps == 0:
            bites = []  # nothing runs, nothing to clip
        sequence_length = None
        if api != "cell_call" and pick.random() < 0.5:
            lengths = pick.integers(0, steps + 1, size=batch)
            if batch >= 2:  # always one row of length 0 and one of the full time
                rows = pick.permutation(batch)[:2]
                lengths[rows[0]], lengths[rows[1]] = steps, 0
            sequence_length = [int(v) for v in lengths]
            if max(sequence_length) == 0:
                bites = []  # no row runs a step
        initial_state = bool(pick.random() < 0.4)
        if api == "cell_call" and bites:
            initial_state = True  # one step from a zero state rarely reaches a clip
        specs = layer_specs(cell) + (layer_specs(cell_bw) if bidirectional else [])
        widest = max([depth + out_size(specs[0])] + [s["num_units"] + out_size(s) for s in specs])
        scale = 1.0 if widest <= 16 else round(4.0 / float(np.sqrt(widest)), 3)
        input_range = 1.0
        if bites:
            scale, input_range = scale * 2.0, 3.0
        api_tag = API_TAGS[api] + ("-tm" if time_major else "")
        runner_tags = [t for t, present in (("seqlen", sequence_length is not None), ("init", initial_state),
                                            ("t0", steps == 0)) if present]
        name = "-".join([f"grid-{number:03d}", *kinds, *[t for t in OPTION_TAG_ORDER if t in tags], api_tag,
                         *runner_tags])
        proj_bites = {(prefix, layer) for prefix, layer, which in bites if which == "proj"}
        tweak = scale_projections(proj_bites, 4.0) if proj_bites else None
        # Values are drawn from default_rng(seed); should a clip meant to bite not bite (checked
        # with the NumPy LSTM before TF runs), the values are redrawn with seed + 1000, + 2000, ...
        for attempt in range(GRID_ATTEMPTS):
            value_seed = seed + 1000 * attempt
            notes = (f"Grid case {number}: options and sizes drawn with numpy default_rng(({seed}, 1)); "
                     + (f"values redrawn with seed {value_seed} (attempt {attempt + 1}) so that every clip meant to "
                        "bite bites; " if attempt else "")
                     + ("projection kernels of layers with a biting proj_clip scaled by 4; " if tweak else "")
                     + ("clips meant to bite were checked to be reached." if bites else "no clip is meant to bite."))
            case = build_case(name, seed=value_seed, generator="grid", api=api, cell=cell, cell_bw=cell_bw,
                              batch=batch, steps=steps, depth=depth, time_major=time_major,
                              sequence_length=sequence_length, initial_state=initial_state, scale=scale,
                              input_range=input_range, bites=bites, tweak=tweak, notes=notes)
            preview = numpy_preview(case)
            try:
                check_bites(case, preview)
            except AssertionError:
                continue
            break
        else:
            raise AssertionError(f"{name}: no clip-biting values in {GRID_ATTEMPTS} attempts")
        worst = max((float(np.max(np.abs(v), initial=0.0)) for v in preview.values()), default=0.0)
        if not worst < 1e3:
            raise AssertionError(f"{name}: NumPy preview reaches {worst:.3g}; keep the grid's values moderate")
        case["grid"] = {"kinds": kinds, "tags": tags, "batch": batch, "steps": steps, "depth": depth,
                        "specs": specs, "attempts": attempt + 1}
        cases.append(case)
    return cases


GRID_ATTEMPTS = 30


def scale_projections(where, factor):
    """tweak: multiply the projection kernels of the (direction prefix, layer)s in `where` by `factor`."""
    def tweak(weights, inputs):
        for key in weights:
            if key[-1] == "projection/kernel":
                prefix = f"{key[0]}/" if len(key) == 3 else ""
                if (prefix, key[-2]) in where:
                    weights[key] = (weights[key] * np.float32(factor)).astype(np.float32)
    return tweak


def numpy_preview(case):
    """The case's outputs from the float64 NumPy LSTM, before any TF run (grid checks)."""
    def cell_model(cell, direction):
        def one(index, spec):
            entry = dict(spec)
            roles = [key[-1] for key in case["weights"] if key[-2] == index and (key[0] == direction if direction else len(key) == 2)]
            entry["variables"] = {role: f"{direction}/{index}/{role}" for role in roles}
            return entry
        if cell["class"] == "MultiRNNCell":
            return {"class": "MultiRNNCell", "cells": [one(i, s) for i, s in enumerate(cell["cells"])]}
        return one(0, cell)

    model = {"api": case["api"], "time_major": bool(case.get("time_major"))}
    if case["api"] in BIDIRECTIONAL_APIS:
        model["cell"], model["cell_bw"] = cell_model(case["cell"], "fw"), cell_model(case["cell_bw"], "bw")
    else:
        model["cell"] = cell_model(case["cell"], None)
    variables = {(f"{key[0]}/{key[1]}/{key[2]}" if len(key) == 3 else f"None/{key[0]}/{key[1]}"): value.astype(np.float64)
                 for key, value in case["weights"].items()}
    inputs = {name: value if value.dtype == np.int32 else value.astype(np.float64)
              for name, value in case["inputs"].items()}
    return numpy_lstm.tf1_expected(model, variables, inputs)


def grid_coverage(cases):
    """Counts per option over the grid (printed; the minimums are asserted)."""
    counts = collections.Counter()

    def bump(key, n=1):
        counts[key] += n

    for case in cases:
        g = case["grid"]
        bump("api " + case["api"])
        if case.get("time_major"):
            bump("time_major")
        for tag in g["tags"]:
            bump(tag)
        for kind in g["kinds"]:
            bump(kind)
        lengths = case["inputs"].get("sequence_length")
        if lengths is not None:
            bump("sequence_length")
            bump("length 0 row", int(np.any(lengths == 0)))
            bump("full length row", int(np.any(lengths == g["steps"])))
        if any(k.startswith("initial_state") for k in case["inputs"]):
            bump("initial_state")
        bump("time 0", int(g["steps"] == 0))
        bump("time >= 30", int(g["steps"] >= 30))
        bump("batch >= 12", int(g["batch"] >= 12))
        bump("input >= 48", int(g["depth"] >= 48))
        bump("units >= 48", int(any(s["num_units"] >= 48 for s in g["specs"])))
        bump("BasicLSTMCell", sum(s["class"] == "BasicLSTMCell" for s in g["specs"]))
        bump("LSTMCell", sum(s["class"] == "LSTMCell" for s in g["specs"]))
        for cell in [case["cell"]] + ([case["cell_bw"]] if "cell_bw" in case else []):
            stacked = layer_specs(cell)
            bump("projection feeding a next layer", int(any(s.get("num_proj") for s in stacked[:-1])))
            if cell["class"] == "MultiRNNCell" and len({s["class"] for s in stacked}) > 1:
                bump("mixed MultiRNNCell")
    minimums = {"api cell_call": 10, "api dynamic_rnn": 20, "api static_rnn": 10, "api bidirectional_dynamic_rnn": 20,
                "api static_bidirectional_rnn": 10, "time_major": 10, "peep": 10, "clip": 10, "clip0": 3,
                "clipwide": 3, "proj": 10, "projclip": 5, "fb0": 5, "fb05": 5, "fb25": 5, "fbm1": 5, "fb15": 5,
                "sigmoid": 5, "relu": 5, "linear": 5, "multi1": 3, "multi2": 5, "multi3": 3, "sequence_length": 20,
                "length 0 row": 10, "full length row": 10, "initial_state": 20, "time 0": 2, "time >= 30": 3,
                "batch >= 12": 3, "input >= 48": 2, "units >= 48": 2, "projection feeding a next layer": 3,
                "mixed MultiRNNCell": 5}
    return assert_coverage(counts, minimums, "tf1")


def describe_cell(cell):
    if cell["class"] == "MultiRNNCell":
        tuple_word = "" if cell.get("state_is_tuple", True) else ", state_is_tuple=False"
        return "MultiRNNCell([" + ", ".join(describe_cell(c) for c in cell["cells"]) + "]" + tuple_word + ")"
    if cell["class"] == "ResidualWrapper":
        return f"ResidualWrapper({describe_cell(cell['cell'])})"
    if cell["class"] == "DropoutWrapper":
        keeps = ", ".join(f"{k}={cell[k]:g}" for k in ("input_keep_prob", "output_keep_prob", "state_keep_prob"))
        return f"DropoutWrapper({describe_cell(cell['cell'])}, {keeps})"
    options = [str(cell["num_units"])]
    if cell.get("state_is_tuple") is False:
        options.append("state_is_tuple=False")
    if cell["forget_bias"] != 1.0:
        options.append(f"forget_bias={cell['forget_bias']:g}")
    if cell["activation"] != "tanh":
        options.append(f"activation={cell['activation']}")
    for key in ("use_peepholes", "cell_clip", "num_proj", "proj_clip"):
        if cell.get(key) is not None and cell.get(key) is not False:  # cell_clip=0.0 is an option too
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


def form_cases():
    """The TF1 forms beyond plain cells (docs/semantics.md §3.6, §3.8, §3.9): one-tensor states
    (state_is_tuple=False), DropoutWrapper with every keep probability 1.0, ResidualWrapper; and the
    canary of the one-tensor state's [c, h] order."""
    swap_halves = lambda inputs: inputs.update(  # noqa: E731
        {"initial_state/0": np.concatenate(np.split(inputs["initial_state/0"], 2, axis=1)[::-1], axis=1)})

    def scale_initial_c(weights, inputs):
        inputs["initial_state/0/c"] = (inputs["initial_state/0/c"] * np.float32(3.0)).astype(np.float32)

    table = [
        # name, api, cell, (batch, time, input), options
        ("concat-basic-dyn-init", "dynamic_rnn", concat_state(basic(4)), (3, 5, 3), {"initial_state": True}),
        ("concat-lstm-peep-proj-call-init", "cell_call", concat_state(lstm(5, use_peepholes=True, num_proj=3)),
         (4, 1, 2), {"initial_state": True}),
        ("concat-lstm-proj-dyn-seqlen-init", "dynamic_rnn", concat_state(lstm(4, num_proj=2, forget_bias=0.5)),
         (4, 6, 3), {"initial_state": True, "sequence_length": [6, 0, 3, 1]}),
        ("concat-multi2-dyn-tm-init", "dynamic_rnn",
         multi(concat_state(lstm(3, num_proj=2)), concat_state(basic(4)), state_is_tuple=False), (2, 5, 3),
         {"initial_state": True, "time_major": True}),
        ("concat-multi2-call-init", "cell_call",
         multi(concat_state(basic(3)), concat_state(lstm(2, cell_clip=0.5)), state_is_tuple=False), (3, 1, 4),
         {"initial_state": True}),
        ("concat-in-tuple-multi-static-seqlen", "static_rnn",
         multi(concat_state(lstm(3)), basic(2), concat_state(lstm(4, num_proj=3))), (3, 4, 2),
         {"initial_state": True, "sequence_length": [4, 2, 0]}),
        ("concat-bidyn-seqlen-init", "bidirectional_dynamic_rnn", concat_state(lstm(3, num_proj=2)), (3, 5, 2),
         {"cell_bw": multi(concat_state(basic(2)), concat_state(lstm(3)), state_is_tuple=False),
          "initial_state": True, "sequence_length": [5, 2, 3]}),
        ("dropout-keep1-lstm-peep-dyn-seqlen", "dynamic_rnn", dropout(lstm(4, use_peepholes=True)), (3, 5, 3),
         {"sequence_length": [5, 3, 0]}),
        ("dropout-keep1-multi2-static-init", "static_rnn",
         multi(dropout(basic(3)), dropout(lstm(4, num_proj=2), seed=7)), (2, 4, 3), {"initial_state": True}),
        ("residual-lstm-dyn-seqlen", "dynamic_rnn", residual(lstm(4)), (3, 5, 4),
         {"sequence_length": [5, 2, 0], "initial_state": True}),
        ("residual-lstm-proj-call-init", "cell_call", residual(lstm(6, num_proj=3, use_peepholes=True)), (3, 1, 3),
         {"initial_state": True}),
        ("residual-multi2-dyn-init", "dynamic_rnn", multi(lstm(4), residual(lstm(4))), (2, 6, 3),
         {"initial_state": True}),
        ("residual-multi3-static-seqlen", "static_rnn",
         multi(residual(basic(3)), basic(5), residual(lstm(5, use_peepholes=True, cell_clip=1.0))), (3, 4, 3),
         {"sequence_length": [4, 1, 3]}),
        ("residual-bistatic", "static_bidirectional_rnn", residual(lstm(2)), (2, 4, 2),
         {"cell_bw": multi(basic(3), residual(basic(3))), "sequence_length": [4, 2]}),
        ("forms-multi3-concat-residual-dropout-dyn-seqlen-init", "dynamic_rnn",
         multi(concat_state(lstm(4)), residual(dropout(concat_state(basic(4)))),
               dropout(residual(concat_state(lstm(4, num_proj=4)))), state_is_tuple=False), (3, 6, 3),
         {"initial_state": True, "sequence_length": [6, 4, 0]}),
    ]
    cases = []
    for number, (name, api, cell, (batch, steps, depth), options) in enumerate(table):
        cases.append(build_case(name, seed=4000 + number, generator="form", api=api, cell=cell, batch=batch,
                                steps=steps, depth=depth, **options))
    canary = build_case(
        "canary-state-concat-c-h", seed=4100, generator="canary", api="dynamic_rnn",
        cell=concat_state(lstm(4)), batch=2, steps=4, depth=3, initial_state=True, tweak=scale_initial_c,
        traps=[("one-tensor initial state read as [h, c]", wrong_tf1(inputs_change=swap_halves))],
        notes="Canary: LSTMCell(state_is_tuple=False) holds its state as ONE tensor concat([c, h], 1), c first "
              "(the initial c scaled by 3 so that the halves differ in size). Wrong implementations that must "
              f"fail it by more than {traps.MIN_MARGIN:g} (checked at record time with the NumPy LSTM): the "
              "one-tensor initial state read as [h, c].")
    canary["description"] = "canary state-concat-c-h: " + canary["description"]
    return cases + [canary]


def all_cases():
    """Every case in recording order, built deterministically from the seeds."""
    return ([prepare_notebook(c) for c in notebook_cases()] + [prepare_random(c) for c in random_cases()]
            + canary_cases() + form_cases() + grid_cases())
