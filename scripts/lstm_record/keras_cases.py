"""The cases of the `keras3` (Keras 3) and `tfkeras` (tf-keras) suites, as data.

Nothing here imports TensorFlow or Keras (lstm_record/keras_runner.py runs the
cases): specs are plain dicts (the layout is in keras_runner.py), weights and
inputs are float32 NumPy arrays drawn from lstm_record.weights.Generator, so a
case is fully determined by its seed. `suite_cases(version)` lists a suite:

  nb002-*, rand-*   keras3 only: the notebook and hand-picked LSTM / RNN(StackedRNNCells) cases
  canary-<trap>     one trap each, checked to fail visibly under a NumPy model with that mistake
  quirk-<what>      a Keras behaviour that reference/README.md does not describe (recorded as Keras does it)
  grid-NNN-<tags>   seeded random cases over every option: LSTM / LSTMCell options, masks and
                    Masking, RNN(StackedRNNCells) and RNN([cells]), Bidirectional (all merge
                    modes, backward_layer), Sequential stacks, stateful, unroll, initial states,
                    dropout at inference; tf-keras also implementation 1 and 2 and time_major
"""

import copy

import numpy as np

from lstm_record.notebook_print import NOTEBOOK_INPUT_2x3x6
from lstm_record.weights import Generator

KERAS_NAME = {"3": "Keras 3", "2": "tf-keras"}
TRACE_NOTE = (
    "trace/*: per-step (h, c) computed by Keras: the layer's own cell object wrapped in a "
    "pass-through cell whose output is [output, h0, c0, ...], run through keras.layers.RNN with the "
    "same go_backwards and initial state; checked equal to the layer's output and returned states. "
    "Steps are in processing order (with go_backwards, step k read input x[T-1-k])."
)
MASK_TRACE_NOTE = (
    " With a mask the wrapper runs with the same mask (and zero_output_for_mask=False), so a masked "
    "step repeats the carried (h, c); steps before a row's first computed step (processing order), "
    "where Keras's previous output is still zeros, are filled with the initial state the runner "
    "carries there (zeros without initial_state)."
)
BIDI_NOTE = (
    " Bidirectional sets zero_output_for_mask = return_sequences on both of its layers (recorded as "
    "that effective value); fw/ and bw/ traces are each layer's own processing order; Keras returns "
    "[output(s), h_fw, c_fw, h_bw, c_bw]."
)
STATEFUL_NOTE = (
    " stateful=True: the same layer object was called on inputs/0, inputs/1, ... in turn (no "
    "reset_states in between; the first call starts from zeros); state/* are layer.states after the "
    "last call. No per-step traces for stateful cases."
)


# ------------------------------------------------------------------ spec helpers


def cell(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True, **extra):
    spec = {"units": units, "activation": activation, "recurrent_activation": recurrent_activation,
            "use_bias": use_bias, "dropout": 0.0, "recurrent_dropout": 0.0, "unit_forget_bias": True,
            "bias_from_keras": False}
    spec.update(extra)
    return spec


def rnn_layer(kind, cells, return_sequences=True, return_state=False, go_backwards=False, **opts):
    spec = {"layer": kind, "cells": cells, "return_sequences": return_sequences, "return_state": return_state,
            "go_backwards": go_backwards, "zero_output_for_mask": False, "unroll": False, "stateful": False,
            "implementation": None, "time_major": False, "rnn_form": "stacked",
            "name": "lstm" if kind == "LSTM" else "rnn"}
    spec.update(opts)
    return spec


def bidi_layer(forward, merge_mode="concat", backward=None, name="bidirectional"):
    """Bidirectional(forward[, backward_layer=backward]); without `backward` Keras copies the
    forward layer's config with go_backwards flipped (its own weights)."""
    given = backward is not None
    if backward is None:
        backward = copy.deepcopy(forward)
        backward["go_backwards"] = not forward["go_backwards"]
    for key in ("return_sequences", "return_state"):
        if backward[key] != forward[key]:
            raise ValueError(f"Bidirectional layers disagree on {key}")
    if backward["go_backwards"] == forward["go_backwards"]:
        raise ValueError("Bidirectional layers need opposite go_backwards")
    # Keras forces zero_output_for_mask = return_sequences on both layers
    for layer in (forward, backward):
        layer["zero_output_for_mask"] = layer["return_sequences"]
    return {"layer": "Bidirectional", "forward": forward, "backward": backward, "backward_given": given,
            "merge_mode": merge_mode, "name": name, "return_sequences": forward["return_sequences"],
            "return_state": forward["return_state"]}


def sequential(layers):
    names = {}
    for sub in layers:
        base = "lstm" if sub["layer"] == "LSTM" else "bidirectional"
        count = names.get(base, 0)
        sub["name"] = base if count == 0 else f"{base}_{count}"
        names[base] = count + 1
    return {"layer": "Sequential", "layers": layers, "name": "sequential",
            "return_sequences": layers[-1]["return_sequences"], "return_state": False}


def walk_cells(spec, prefix=""):
    """(slot, cell spec, owning layer spec) in a fixed order."""
    if spec["layer"] == "Sequential":
        for k, sub in enumerate(spec["layers"]):
            yield from walk_cells(sub, f"{prefix}l{k}.")
    elif spec["layer"] == "Bidirectional":
        yield f"{prefix}fw", spec["forward"]["cells"][0], spec["forward"]
        yield f"{prefix}bw", spec["backward"]["cells"][0], spec["backward"]
    else:
        for i, c in enumerate(spec["cells"]):
            yield f"{prefix}c{i}", c, spec


def output_width(spec):
    if spec["layer"] == "Sequential":
        return output_width(spec["layers"][-1])
    if spec["layer"] == "Bidirectional":
        fw, bw = spec["forward"]["cells"][-1]["units"], spec["backward"]["cells"][-1]["units"]
        return fw + bw if spec["merge_mode"] == "concat" else fw
    return spec["cells"][-1]["units"]


def draw_weights(spec, gen, depth, scale=1.0, overrides=None):
    """Kernel, recurrent kernel and bias per cell (or the bias pieces Keras's initializer is given)."""
    weights = {}
    cell_specs = {}

    def one_cell(c, slot, d):
        u = c["units"]
        c["slot"] = slot
        cell_specs[slot] = c
        weights[slot, "kernel"] = gen.weight((d, 4 * u), scale, gates=4)
        weights[slot, "recurrent_kernel"] = gen.weight((u, 4 * u), scale, gates=4)
        if c["use_bias"]:
            if c["bias_from_keras"]:
                if c["unit_forget_bias"]:
                    c["bias_parts"] = {(u,): gen.weight((u,), scale), (2 * u,): gen.weight((2 * u,), scale)}
                else:
                    c["bias_parts"] = {(4 * u,): gen.weight((4 * u,), scale, gates=4)}
            else:
                weights[slot, "bias"] = gen.weight((4 * u,), scale, gates=4)

    def visit(layer, d, prefix):
        if layer["layer"] == "Bidirectional":
            for key, tag in (("forward", "fw"), ("backward", "bw")):
                (c,) = layer[key]["cells"]
                one_cell(c, f"{prefix}{tag}", d)
                c["implementation"] = cell_implementation(layer[key], c)
            return output_width(layer)
        for i, c in enumerate(layer["cells"]):
            one_cell(c, f"{prefix}c{i}", d)
            c["implementation"] = cell_implementation(layer, c)
            d = c["units"]
        return d

    if spec["layer"] == "Sequential":
        d = depth
        for k, sub in enumerate(spec["layers"]):
            d = visit(sub, d, f"l{k}.")
    else:
        visit(spec, depth, "")
    for key, value in (overrides or {}).items():
        weights[key] = value
    return weights, cell_specs


def initial_state_inputs(spec, gen, batch, low=-1.0, high=1.0):
    inputs = {}
    if spec["layer"] == "Bidirectional":
        for key, tag in (("forward", "fw"), ("backward", "bw")):
            u = spec[key]["cells"][0]["units"]
            for name in ("h", "c"):
                inputs[f"initial_state/{tag}/0/{name}"] = gen.uniform((batch, u), low, high)
    else:
        for index, c in enumerate(spec["cells"]):
            for name in ("h", "c"):
                inputs[f"initial_state/{index}/{name}"] = gen.uniform((batch, c["units"]), low, high)
    return inputs


def make_mask(rng, batch, steps, pattern):
    """[batch, steps] bool (True = keep) in one of the patterns right, left, gaps, mixed."""
    mask = np.ones((batch, steps), dtype=bool)
    kinds = [pattern] * batch
    if pattern == "mixed":
        kinds = list(rng.choice(["right", "left", "gaps", "none"], size=batch))
        if batch >= 2:
            kinds[int(rng.integers(batch))] = "all"
    for b, kind in enumerate(kinds):
        if kind == "right":
            mask[b, int(rng.integers(0, steps + 1)):] = False
        elif kind == "left":
            mask[b, :int(rng.integers(0, steps + 1))] = False
        elif kind == "gaps":
            mask[b] = rng.random(steps) < 0.6
        elif kind == "all":
            mask[b] = False
    if pattern in ("right", "left", "gaps") and mask.all():
        mask[0, -1 if pattern == "right" else 0] = False  # at least one masked step
    return mask


def apply_masking(x, mask, value, rng):
    """Inputs for keras.layers.Masking(value): masked steps get `value` in every feature; one kept
    step gets it in one feature only (Keras masks a step only when ALL features equal it)."""
    x = x.copy()
    x[~mask] = value
    kept = np.argwhere(mask)
    if x.shape[-1] > 1 and len(kept):
        b, t = kept[int(rng.integers(len(kept)))]
        x[b, t, int(rng.integers(x.shape[-1]))] = value
    return x


# ------------------------------------------------------------------ model json and descriptions


def cell_json(c, paths):
    entry = {"units": c["units"], "activation": c["activation"], "recurrent_activation": c["recurrent_activation"],
             "use_bias": c["use_bias"]}
    if c["dropout"]:
        entry["dropout"] = float(c["dropout"])
    if c["recurrent_dropout"]:
        entry["recurrent_dropout"] = float(c["recurrent_dropout"])
    if c["bias_from_keras"] or not c["unit_forget_bias"]:
        entry["unit_forget_bias"] = bool(c["unit_forget_bias"])
    entry["variables"] = {role: paths[c["slot"], role] for role in ("kernel", "recurrent_kernel", "bias")
                          if (c["slot"], role) in paths}
    return entry


def cell_implementation(layer, c):
    """tf-keras LSTMCell.implementation: as requested (default 2), but recurrent_dropout forces 1."""
    return 1 if c["recurrent_dropout"] else (layer.get("implementation") or 2)


def effective_implementation(layer, version):
    """The model-level `implementation` of a tf-keras layer (None: Keras 3, or cells that differ)."""
    if version != "2":
        return None
    values = {cell_implementation(layer, c) for c in layer["cells"]}
    return values.pop() if len(values) == 1 else None


def model_json(spec, paths, version, top=True):
    kind = spec["layer"]
    if kind == "Sequential":
        model = {"keras": version, "layer": kind, "return_sequences": spec["return_sequences"],
                 "return_state": False, "go_backwards": False,
                 "layers": [model_json(sub, paths, version, top=False) for sub in spec["layers"]]}
    elif kind == "Bidirectional":
        fw, bw = spec["forward"], spec["backward"]
        model = {"keras": version, "layer": kind, "return_sequences": spec["return_sequences"],
                 "return_state": spec["return_state"], "merge_mode": spec["merge_mode"],
                 "forward": {"go_backwards": fw["go_backwards"], "cells": [cell_json(c, paths) for c in fw["cells"]]},
                 "backward": {"go_backwards": bw["go_backwards"], "cells": [cell_json(c, paths) for c in bw["cells"]]}}
        if fw["zero_output_for_mask"]:
            model["zero_output_for_mask"] = True
        if fw["unroll"]:
            model["unroll"] = True
    else:
        model = {"keras": version, "layer": kind, "return_sequences": spec["return_sequences"],
                 "return_state": spec["return_state"], "go_backwards": spec["go_backwards"],
                 "cells": [cell_json(c, paths) for c in spec["cells"]]}
        for key in ("zero_output_for_mask", "time_major", "stateful", "unroll"):
            if spec[key]:
                model[key] = True
        if effective_implementation(spec, version) == 1:
            model["implementation"] = 1
    if top and spec.get("masking") is not None:
        model["masking"] = {"mask_value": float(spec["masking"])}
    return model


def describe_cells(cells):
    parts = []
    for c in cells:
        text = f"{c['units']}"
        if (c["activation"], c["recurrent_activation"]) != ("tanh", "sigmoid"):
            text += f" {c['activation']}/{c['recurrent_activation']}"
        if not c["use_bias"]:
            text += " no-bias"
        if c["bias_from_keras"]:
            text += f" keras-bias(unit_forget_bias={c['unit_forget_bias']})"
        elif not c["unit_forget_bias"]:
            text += " unit_forget_bias=False"
        if c["dropout"] or c["recurrent_dropout"]:
            text += f" dropout={c['dropout']}/{c['recurrent_dropout']}"
        parts.append(text)
    return parts


def describe_layer(spec, version):
    kind = spec["layer"]
    if kind == "Sequential":
        return "Sequential([" + ", ".join(describe_layer(s, version) for s in spec["layers"]) + "])"
    if kind == "Bidirectional":
        text = f"Bidirectional({describe_layer(spec['forward'], version)}, merge_mode={spec['merge_mode']!r}"
        if spec["backward_given"]:
            text += f", backward_layer={describe_layer(spec['backward'], version)}"
        return text + ")"
    cells = describe_cells(spec["cells"])
    if kind == "LSTM":
        text = f"LSTM({cells[0]}"
    else:
        form = "StackedRNNCells([...])" if spec["rnn_form"] == "stacked" else "[cells]"
        text = f"RNN({form}: " + "; ".join(cells)
    flags = [name for name in ("return_sequences", "return_state", "go_backwards", "zero_output_for_mask",
                               "unroll", "stateful", "time_major") if spec.get(name)]
    impl = effective_implementation(spec, version)
    if impl == 1:
        flags.append("implementation=1")
    return text + "".join(f", {f}" for f in flags) + ")"


def describe(case_spec, version, inputs, extra=""):
    text = f"{KERAS_NAME[version]} {describe_layer(case_spec, version)}"
    if case_spec.get("masking") is not None:
        text = f"{KERAS_NAME[version]} Masking({case_spec['masking']}) + {describe_layer(case_spec, version)}"
    if "mask" in inputs:
        text += " with an explicit mask"
    if any(k.startswith("initial_state/") for k in inputs):
        text += " with initial_state"
    shape = inputs["inputs/0"].shape if "inputs/0" in inputs else inputs["inputs"].shape
    return text + f" on {list(shape)}" + (f"; {extra}" if extra else "")


def notes_for(case_spec, inputs, base):
    notes = base.rstrip()
    stateful = case_spec.get("stateful", False)
    if stateful:
        notes += STATEFUL_NOTE
    else:
        notes += " " + TRACE_NOTE
        if "mask" in inputs or case_spec.get("masking") is not None:
            notes += MASK_TRACE_NOTE
    layers = case_spec["layers"] if case_spec["layer"] == "Sequential" else [case_spec]
    if any(s["layer"] == "Bidirectional" for s in layers):
        notes += BIDI_NOTE
    if case_spec["layer"] == "Sequential":
        notes += (" Sequential: layers/<k>/ prefixes each layer's traces; each layer gets the previous "
                  "layer's output and the mask Keras propagates (compute_mask returns the input mask "
                  "unchanged when return_sequences, also after a go_backwards layer whose outputs are "
                  "in reversed order).")
    for _, c, layer in walk_cells(case_spec):
        if c["bias_from_keras"]:
            notes += (f" The bias of cell {c['slot']} was made by Keras's LSTMCell.build from a seeded "
                      f"bias_initializer with unit_forget_bias={c['unit_forget_bias']}"
                      + (" (forget block exactly 1.0, nothing is added at run time)." if c["unit_forget_bias"]
                         else "."))
            break
    if case_spec["layer"] == "RNN" and case_spec["rnn_form"] == "list":
        notes += (" RNN([cells]) wraps the list in a StackedRNNCells created with the global dtype policy: "
                  "the float64 run sets it to float64 (keras.config.set_dtype_policy / tf-keras "
                  "backend.set_floatx), otherwise the stack would round float64 states to float32.")
    if any(c["dropout"] or c["recurrent_dropout"] for _, c, _ in walk_cells(case_spec)):
        notes += " dropout/recurrent_dropout: inference call (training=False), so no effect."
    return notes


# ------------------------------------------------------------------ case assembly


def new_case(name, generator, seed, spec, gen, x, *, scale=1.0, initial_state=False, mask=None, notes="",
             description_extra="", calls=None, weight_overrides=None, traps=None, input_bound=1.0):
    """Draw weights (and initial states) for `spec` and return a case dict for record_case."""
    time_major = spec.get("time_major", False)
    depth = (calls[0] if calls else x).shape[-1]
    weights, cell_specs = draw_weights(spec, gen, depth, scale, weight_overrides)
    if calls:
        inputs = {f"inputs/{k}": xk for k, xk in enumerate(calls)}
        batch = calls[0].shape[1 if time_major else 0]
    else:
        inputs = {"inputs": x}
        batch = x.shape[1 if time_major else 0]
    if mask is not None:
        inputs["mask"] = mask
    if initial_state:
        inputs.update(initial_state_inputs(spec, gen, batch))
    base = (f"Seeded {generator} case: weights uniform [-0.5, 0.5] * {scale}, inputs uniform "
            f"[-{input_bound}, {input_bound}] (float32), numpy default_rng({seed}). ") + notes
    return {"name": name, "generator": generator, "seed": seed, "notebook": None, "spec": spec,
            "inputs": inputs, "weights": weights, "cell_specs": cell_specs,
            "description_extra": description_extra, "notes_base": base, "traps": traps or []}


# ------------------------------------------------------------------ the keras3 suite's first cases


def keras3_first_cases():
    """notebook-002's two models (nb002-*) and hand-picked random cases (rand-*) covering LSTM and
    RNN(StackedRNNCells): weights drawn after the inputs, initial states after the weights."""
    def first(name, generator, seed, spec, gen, x, description, notes, notebook=None, **kwargs):
        case = new_case(name, generator, seed, spec, gen, x, **kwargs)
        case.update(notebook=notebook, description=description, notes=notes + TRACE_NOTE)
        return case

    cases = [
        first("nb002-lstm-one-step", "notebook", 120, rnn_layer("LSTM", [cell(4)], True, True), Generator(120),
              np.asarray([[[3, 2, 2, 2, 2, 2]]], dtype=np.float32),
              "notebook-002: LSTM(4, return_sequences=True, return_state=True) on the (1,1,6) input [[[3,2,2,2,2,2]]]",
              "The notebook's `lstm.states = state` (zeros) only sets a Python attribute and has no "
              "effect on the call: the initial state is Keras's zero state, so no initial_state "
              "input is given. The notebook used the default initializers; here the weights are "
              "seeded random (uniform [-0.5, 0.5], float32). ", notebook="notebook-002"),
        first("nb002-stacked", "notebook", 121, rnn_layer("RNN", [cell(4), cell(5)], True, True), Generator(121),
              np.asarray(NOTEBOOK_INPUT_2x3x6, dtype=np.float32),
              "notebook-002: RNN(StackedRNNCells([LSTMCell(4), LSTMCell(5)]), return_sequences=True, "
              "return_state=True) on the (2,3,6) input",
              "Keras returns [output, [h0, c0], [h1, c1]] (the notebook unpacks this as output, "
              "final_memory_state, final_carry_state, which are really layer 0's and layer 1's [h, c]). "
              "Seeded random weights (uniform [-0.5, 0.5], float32). ", notebook="notebook-002"),
    ]
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
    for number, tag, layer, cells, sequences, state, backwards, (batch, steps, depth), options in table:
        seed = 2000 + number
        gen = Generator(seed)
        bound = options.get("input_range", 1.0)
        scale = options.get("scale", 1.0)
        flags = [f"return_sequences={sequences}", f"return_state={state}"] + (["go_backwards=True"] if backwards else [])
        cell_text = [f"{c['units']} units, {c['activation']}/{c['recurrent_activation']}"
                     + ("" if c["use_bias"] else ", no bias") for c in cells]
        if layer == "LSTM":
            what = f"LSTM({cell_text[0]}, {', '.join(flags)})"
        else:
            what = f"RNN(StackedRNNCells([{'; '.join(cell_text)}]), {', '.join(flags)})"
        notes = (f"Seeded random case: weights uniform [-0.5, 0.5] * {scale}, inputs uniform "
                 f"[-{bound}, {bound}] (float32), drawn with numpy default_rng({seed}). ")
        if not state:
            notes += "return_state=False: the layer returns no states, so only output and the trace are recorded. "
        x = gen.uniform((batch, steps, depth), -bound, bound)
        cases.append(first(f"rand-{number:03d}-{tag}", "random", seed,
                           rnn_layer(layer, cells, sequences, state, backwards), gen, x,
                           what + (" with initial_state" if options.get("initial_state") else ""), notes,
                           scale=scale, initial_state=options.get("initial_state", False)))
    return cases


# ------------------------------------------------------------------ canaries


def canary_cases(version, seed_base):
    """One trap per case; each is checked to land visibly (>= 0.02 max abs) away under the trap."""
    other = "2" if version == "3" else "3"
    cases = []

    def add(trap, seed, spec, x, gen, traps, what, **kwargs):
        cases.append(new_case(f"canary-{trap}", "canary", seed, spec, gen, x, traps=traps,
                              description_extra=f"canary: {what}", **kwargs))

    # hard_sigmoid of the other Keras: pre-activations in 1.5..3 where 0.2x+0.5 and x/6+0.5 part most
    seed = seed_base + 1
    gen = Generator(seed)
    x = gen.uniform((3, 6, 3), -3.0, 3.0)
    spec = rnn_layer("LSTM", [cell(4, "hard_sigmoid", "hard_sigmoid")], True, True)
    add("hard-sigmoid-version", seed, spec, x, gen, [(f"Keras {other} hard_sigmoid", {"hard_sigmoid": other}, 0.02)],
        f"hard_sigmoid is Keras {version}'s (the other Keras's formula differs by up to 1/12 per gate)",
        scale=3.0, input_bound=3.0)

    # go_backwards: outputs stay in processing (reversed) order
    seed = seed_base + 2
    gen = Generator(seed)
    ramp = np.linspace(-1.0, 1.0, 7, dtype=np.float32)[None, :, None]
    x = (gen.uniform((2, 7, 2), -0.3, 0.3) + ramp * np.array([1.5, -1.5], np.float32)).astype(np.float32)
    spec = rnn_layer("LSTM", [cell(3)], True, True, go_backwards=True)
    add("go-backwards-order", seed, spec, x, gen, [("outputs re-reversed into input order", {"rereverse": True}, 0.02)],
        "go_backwards returns outputs in processing (reversed) order", scale=2.0)

    # masking: repeat previous output (zeros before the first computed step) vs zeros
    for trap, zero in (("mask-repeat", False), ("mask-zero", True)):
        seed = seed_base + (3 if not zero else 4)
        gen = Generator(seed)
        x = gen.uniform((4, 6, 3))
        mask = np.array([[1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1], [1, 0, 1, 0, 1, 1], [0, 0, 0, 0, 0, 0]], bool)
        spec = rnn_layer("LSTM", [cell(3)], True, True, zero_output_for_mask=zero)
        traps = [("masked steps output zeros" if not zero else "masked steps repeat the previous output",
                  {"zero_output": not zero}, 0.02)]
        if not zero:
            traps.append(("masked steps output the carried h (initial h first), as Keras 2.2.4 / Keras 3 JAX",
                          {"masked_output": "previous_h"}, 0.02))
        add(trap, seed, spec, x, gen, traps,
            "masked steps " + ("output zeros (zero_output_for_mask=True)" if zero else
                               "repeat the previous output, zeros before the first computed step"),
            mask=mask, initial_state=True, scale=1.5)

    # return_sequences=False: the last output is the last computed one, or zeros with zero_output_for_mask
    for trap, zero in (("mask-last-output", False), ("mask-last-output-zero", True)):
        seed = seed_base + (11 if not zero else 12)
        gen = Generator(seed)
        x = gen.uniform((4, 6, 3))
        mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1]], bool)
        spec = rnn_layer("LSTM", [cell(3)], False, True, zero_output_for_mask=zero)
        traps = [("last output " + ("zeros" if not zero else "the last computed output") + " for a row "
                  "whose last step is masked", {"zero_output": not zero}, 0.02)]
        if not zero:
            traps.append(("masked steps output the carried h (initial h first), as Keras 2.2.4 / Keras 3 JAX",
                          {"masked_output": "previous_h"}, 0.02))
        add(trap, seed, spec, x, gen, traps,
            "return_sequences=False with right padding, a gap and an all-masked row: the last output is "
            + ("zeros where the last step is masked (zero_output_for_mask=True)" if zero else
               "the last computed output (zeros for the all-masked row)"),
            mask=mask, initial_state=True, scale=1.5)

    # unit_forget_bias=True gives a forget block of exactly 1.0 in the stored bias: adding 1 again is wrong
    seed = seed_base + 5
    gen = Generator(seed)
    x = gen.uniform((2, 10, 3))
    spec = rnn_layer("LSTM", [cell(4, bias_from_keras=True, unit_forget_bias=True)], True, True)
    add("unit-forget-bias-twice", seed, spec, x, gen,
        [("1.0 added to the forget gate at run time", {"forget_add": 1.0}, 0.02)],
        "the bias came from unit_forget_bias=True (forget block 1.0); nothing is added at run time",
        initial_state=True, scale=1.0)

    # Keras gate order i, f, c, o read as TF1's i, j, f, o
    seed = seed_base + 6
    gen = Generator(seed)
    x = gen.uniform((2, 5, 3))
    units = 3
    bias = np.concatenate([np.full(units, 1.5), np.full(units, -2.0), np.full(units, 0.8), np.full(units, 2.5)])
    bias = (bias + gen.weight((4 * units,), 0.2)).astype(np.float32)
    spec = rnn_layer("LSTM", [cell(units)], True, True)
    add("gate-order-tf1", seed, spec, x, gen, [("gate blocks read as TF1's i, j, f, o", {"gate_order": "tf1"}, 0.02)],
        "gate blocks i, f, c, o with clearly different biases (i +1.5, f -2, c +0.8, o +2.5)",
        weight_overrides={("c0", "bias"): bias}, scale=1.5)

    # return_state order [output, h, c]
    seed = seed_base + 7
    gen = Generator(seed)
    x = gen.uniform((2, 4, 3), -2.0, 2.0)
    spec = rnn_layer("LSTM", [cell(3)], False, True)
    add("state-order", seed, spec, x, gen, [("states read as [c, h]", {"swap_state_order": True}, 0.02)],
        "return_state gives [output, h, c] (h first)", scale=2.0, input_bound=2.0)

    # Bidirectional: backward half re-reversed into input order; states fw h, c then bw h, c
    seed = seed_base + 8
    gen = Generator(seed)
    ramp = np.linspace(-1.5, 1.5, 6, dtype=np.float32)[None, :, None]
    x = (gen.uniform((2, 6, 2), -0.3, 0.3) + ramp).astype(np.float32)
    spec = bidi_layer(rnn_layer("LSTM", [cell(3)], True, True), "concat")
    add("bidi-backward-order", seed, spec, x, gen,
        [("backward half left in processing order", {"bidi_no_reverse": True}, 0.02),
         ("states read as [c, h]", {"swap_state_order": True}, 0.02)],
        "Bidirectional re-reverses the backward outputs; states are [h_fw, c_fw, h_bw, c_bw]", scale=2.0)

    # stateful: the second call starts from the first call's final state
    seed = seed_base + 9
    gen = Generator(seed)
    calls = [gen.uniform((3, 4, 2)), gen.uniform((3, 4, 2))]
    spec = rnn_layer("LSTM", [cell(3)], True, False, stateful=True)
    add("stateful-carry", seed, spec, None, gen, [("state reset between calls", {"stateful_reset": True}, 0.02)],
        "stateful: the second call continues from the first call's state", calls=calls, scale=2.0)

    # Masking masks a step only when ALL its features equal mask_value
    seed = seed_base + 10
    gen = Generator(seed)
    x = gen.uniform((3, 5, 3))
    mask = np.array([[1, 1, 0, 0, 0], [1, 0, 1, 1, 1], [0, 0, 1, 1, 1]], bool)
    x[~mask] = 0.0
    x[0, 1, 0] = 0.0
    x[1, 2, :2] = 0.0
    x[2, 4, 2] = 0.0
    spec = rnn_layer("LSTM", [cell(3)], True, True)
    spec["masking"] = 0.0
    add("masking-all-features", seed, spec, x, gen,
        [("steps with ANY feature == mask_value masked", {"masking_any": True}, 0.02)],
        "Masking(0.0) masks only steps whose features are all 0.0 (some kept steps have zeros in some features)",
        scale=1.5)
    return cases


def quirk_cases(version, seed_base):
    """Keras behaviours reference/README.md does not describe; recorded as Keras does them."""
    cases = []
    seed = seed_base + 1
    gen = Generator(seed)
    x = gen.uniform((3, 6, 2))
    mask = np.array([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1]], bool)
    spec = rnn_layer("LSTM", [cell(3)], True, True, go_backwards=True, zero_output_for_mask=True, unroll=True)
    cases.append(new_case(
        "quirk-unroll-backwards-zero-output-mask", "quirk", seed, spec, gen, x, mask=mask,
        description_extra="quirk: unroll=True zeroes masked outputs with the mask in input order",
        notes=("Keras quirk (both Keras 3 and tf-keras backend.rnn, unrolled loop): with unroll=True, a mask "
               "and zero_output_for_mask=True the loop first repeats the previous output at masked steps and "
               "then applies where(mask, outputs, 0) with the mask in INPUT time order to outputs stored in "
               "PROCESSING order, so with go_backwards output[:, k] is zero where mask[:, k] is False (not "
               "mask[:, T-1-k]) and otherwise the repeat-previous-output value. The non-unrolled loop zeroes "
               "output[:, k] where mask[:, T-1-k] is False. States and traces are not affected. "),
        scale=1.5))
    seed = seed_base + 2
    gen = Generator(seed)
    x = gen.uniform((3, 5, 2))
    mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
    spec = bidi_layer(rnn_layer("LSTM", [cell(2)], True, False, unroll=True), "concat")
    cases.append(new_case(
        "quirk-bidi-unroll-mask", "quirk", seed, spec, gen, x, mask=mask,
        description_extra="quirk: Bidirectional(LSTM(unroll=True)) with a mask",
        notes=("Keras quirk: Bidirectional forces zero_output_for_mask=True when return_sequences, so with "
               "unroll=True and a mask the backward layer (go_backwards) zeroes its processing-order outputs "
               "with the input-order mask (see quirk-unroll-backwards-zero-output-mask) before Bidirectional "
               "reverses them: the backward half of `output` is zero at the mirrored positions of the "
               "masked steps, not at the masked steps. "),
        scale=1.5))
    if version == "3":
        for number, (trap, layer) in enumerate((("lstm", "LSTM"), ("bidi", "Bidirectional")), start=3):
            seed = seed_base + number
            gen = Generator(seed)
            x = gen.uniform((3, 5, 2))
            mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 0, 1, 1]], bool)
            x[~mask] = 0.5
            spec = rnn_layer("LSTM", [cell(3)], True, True)
            if layer == "Bidirectional":
                spec = bidi_layer(rnn_layer("LSTM", [cell(2)], True, True), "concat")
            spec["masking"] = 0.5
            cases.append(new_case(
                f"quirk-masking-ignored-with-initial-state-{trap}", "quirk", seed, spec, gen, x, initial_state=True,
                description_extra="quirk: Keras 3 drops the Masking mask when initial_state is passed",
                notes=("Keras 3 quirk (3.15, TF backend, eager and functional alike): when the layer is called "
                       "with initial_state, the mask that keras.layers.Masking attaches to its output does not "
                       "reach the layer, which then runs UNMASKED over Masking's output, in which the masked "
                       "steps (all features == mask_value 0.5) are zeros. Without initial_state, or with an "
                       "explicit mask= argument, the mask is applied (tf-keras applies it in all cases). "),
                scale=1.5))
    return cases


# ------------------------------------------------------------------ grid

ACTIVATIONS = ["tanh"] * 5 + ["sigmoid", "relu", "linear", "hard_sigmoid", "hard_sigmoid"]
RECURRENT_ACTIVATIONS = ["sigmoid"] * 5 + ["hard_sigmoid"] * 3 + ["tanh", "linear", "relu"]
UNITS = [1, 2, 2, 3, 3, 4, 4, 5, 6, 8, 8, 12, 16, 32]
STEPS = [1, 2, 3, 4, 4, 5, 5, 6, 7, 8, 10, 12, 16, 20]
FAMILIES = ["lstm", "lstm-mask", "lstm-masking", "rnn", "rnn-mask", "bidi", "bidi-mask", "seq", "stateful",
            "lstm-opts"]
MERGE_MODES = ["concat", "sum", "mul", "ave", None]


class GridDraw:
    """Random option choices for one grid case, with the tags that name it."""

    def __init__(self, rng, version):
        self.rng, self.version = rng, version
        self.tags = []
        self.unbounded = False  # relu/linear somewhere: keep sequences short
        self.hard = False

    def p(self, probability):
        return bool(self.rng.random() < probability)

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def cell(self, units=None, keras_bias_ok=True, act_tags=True):
        r = self
        act = r.pick(ACTIVATIONS)
        rec = r.pick(RECURRENT_ACTIVATIONS)
        units = units or r.pick(UNITS)
        c = cell(units, act, rec, use_bias=not r.p(0.15))
        if act in ("relu", "linear") or rec in ("relu", "linear", "tanh"):
            self.unbounded = True
        if "hard_sigmoid" in (act, rec):
            self.hard = True
        if r.p(0.15):
            c["dropout"] = 0.25
        if r.p(0.15):
            c["recurrent_dropout"] = 0.4
        if keras_bias_ok and c["use_bias"] and r.p(0.25):
            c["bias_from_keras"] = True
            c["unit_forget_bias"] = r.p(0.6)
        elif c["use_bias"] and r.p(0.1):
            c["unit_forget_bias"] = False
        if act_tags:
            short = {"tanh": "", "sigmoid": "sig", "relu": "relu", "linear": "lin", "hard_sigmoid": "hs"}
            if act != "tanh":
                self.tags.append(f"a{short[act]}")
            if rec != "sigmoid":
                self.tags.append(f"r{short[rec] or 'tanh'}")
            if not c["use_bias"]:
                self.tags.append("nobias")
            if c["bias_from_keras"]:
                self.tags.append(f"ufb{int(c['unit_forget_bias'])}")
            elif not c["unit_forget_bias"]:
                self.tags.append("ufbF")
            if c["dropout"] or c["recurrent_dropout"]:
                self.tags.append("drop")
        return c

    def flags(self, spec, allow_unroll=True):
        if spec["return_sequences"]:
            self.tags.append("seq")
        if spec["return_state"]:
            self.tags.append("state")
        if spec["go_backwards"]:
            self.tags.append("back")
        if spec.get("zero_output_for_mask") and spec["layer"] != "Bidirectional":
            self.tags.append("zero")
        if spec.get("unroll"):
            self.tags.append("unroll")
        if spec.get("implementation") == 1:
            self.tags.append("impl1")
        if spec.get("time_major"):
            self.tags.append("tm")


def _dedupe(tags):
    seen, out = set(), []
    for t in tags:
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def grid_case(number, version, seed, family, merge_mode, occurrence):
    """Grid case `number`: the `occurrence`-th case of `family` (cycles some options for coverage)."""
    rng = np.random.default_rng(seed)
    draw = GridDraw(rng, version)
    v2 = version == "2"
    batch = int(rng.integers(1, 9))
    steps = draw.pick(STEPS)
    depth = int(draw.pick([1, 2, 3, 3, 4, 5, 6, 8, 16]))
    masked = family in ("lstm-mask", "lstm-masking", "rnn-mask", "bidi-mask") or (family == "seq" and draw.p(0.6))
    masking = family == "lstm-masking" or (masked and draw.p(0.4))
    pattern = draw.pick(["right", "left", "gaps", "mixed"]) if masked else None
    initial = False
    calls = None
    if family in ("lstm", "lstm-mask", "lstm-masking", "lstm-opts", "stateful", "rnn", "rnn-mask"):
        stacked = family.startswith("rnn") or (family == "stateful" and draw.p(0.4))
        if stacked:
            count = int(rng.integers(1, 4))
            if count == 1 and masked and version == "3":
                count = 2  # Keras 3.15 TF backend: RNN(StackedRNNCells([one cell])) with a mask fails (nest error)
            sizes = list(rng.choice([1, 2, 3, 4, 5, 6, 8], size=count, replace=False))
            cells = [draw.cell(int(u), act_tags=True) for u in sizes]
            kind = "RNN"
        else:
            cells = [draw.cell()]
            kind = "LSTM"
        spec = rnn_layer(kind, cells, draw.p(0.6), draw.p(0.5), draw.p(0.3))
        if kind == "RNN":
            spec["rnn_form"] = "stacked" if draw.p(0.5) else "list"
        if masked:
            spec["zero_output_for_mask"] = draw.p(0.5)
        if family == "stateful":
            spec["stateful"] = True
            spec["go_backwards"] = draw.p(0.25)
        if draw.p(0.35 if family == "lstm-opts" else 0.12):
            spec["unroll"] = True
        if v2 and draw.p(0.5 if family == "lstm-opts" else 0.2):
            spec["implementation"] = 1
        explicit_mask = masked and not masking  # tf-keras wants a time-major mask there: not in the format
        if v2 and not explicit_mask and family != "stateful" and draw.p(0.6 if family == "lstm-opts" else 0.3):
            spec["time_major"] = True
        if family != "stateful" and draw.p(0.35):
            initial = True
        if version == "3" and kind == "RNN" and len(cells) == 1:
            spec["unroll"] = False  # Keras 3.15: RNN(StackedRNNCells([one cell]), unroll=True) fails (IndexError)
        # avoid the unroll quirk (recorded separately) and tf-keras's unroll crash
        if spec["unroll"] and masked and spec["zero_output_for_mask"]:
            if spec["go_backwards"] and spec["return_sequences"]:
                spec["unroll"] = False
            if v2 and not spec["return_sequences"]:
                spec["unroll"] = False
        form = "rnn" if spec["rnn_form"] == "stacked" else "rnnlist"
        tags = ["lstm" if kind == "LSTM" else f"{form}{len(cells)}"]
        if family == "stateful":
            tags.append("stateful")
    elif family.startswith("bidi"):
        fw = rnn_layer("LSTM", [draw.cell(keras_bias_ok=False)], draw.p(0.6), draw.p(0.5), draw.p(0.12))
        backward = None
        if occurrence % 3 == 1 or (version == "3" and fw["go_backwards"]):
            # Keras 3's own backward copy always has go_backwards=True, which a go_backwards forward
            # layer rejects: such a case needs backward_layer
            units = fw["cells"][0]["units"] if merge_mode != "concat" else None
            backward = rnn_layer("LSTM", [draw.cell(units, keras_bias_ok=False)], fw["return_sequences"],
                                 fw["return_state"], not fw["go_backwards"])
            backward["name"] = "reverse_lstm"
        if not masked and draw.p(0.15):
            fw["unroll"] = True
            if backward is not None:
                backward["unroll"] = True
        spec = bidi_layer(fw, merge_mode, backward)
        initial = draw.p(0.3)
        tags = ["bidi", {None: "none"}.get(merge_mode, merge_mode)]
        if backward is not None:
            tags.append("bwgiven")
    else:  # seq
        count = int(rng.integers(2, 4))
        layers = []
        for k in range(count):
            last = k == count - 1
            sequences = True if not last else draw.p(0.5)
            if draw.p(0.3):
                fw = rnn_layer("LSTM", [draw.cell(keras_bias_ok=False)], sequences, False,
                               draw.p(0.15) and version == "2")
                sub = bidi_layer(fw, draw.pick(["concat", "sum", "mul", "ave"]))
                draw.tags.append("bidi")
            else:
                sub = rnn_layer("LSTM", [draw.cell()], sequences, False, draw.p(0.25))
                if masked:
                    sub["zero_output_for_mask"] = draw.p(0.3)
                if not masked and draw.p(0.15):
                    sub["unroll"] = True
                draw.flags(sub)
            layers.append(sub)
        spec = sequential(layers)
        tags = [f"seq{count}"] + [t for t in draw.tags if t in ("bidi",)]
    if draw.unbounded:  # relu/linear/tanh gates: keep every pre-activation small and sequences short
        fan_in = depth + 2 * max(c["units"] for _, c, _ in walk_cells(spec))
        scale, bound = round(min(1.0, 2.0 / np.sqrt(fan_in)), 3), 1.0
        steps = min(steps, 8)
    elif draw.hard:  # hard_sigmoid: reach its kinks and saturation
        scale, bound = 2.0, 3.0
    else:
        scale, bound = 1.0, 1.0
    gen = Generator(seed)
    if family == "stateful":
        ncalls = int(rng.integers(2, 4))
        shape = (steps, batch, depth) if spec.get("time_major") else (batch, steps, depth)
        calls = [gen.uniform(shape, -bound, bound) for _ in range(ncalls)]
        x = None
        tags.append(f"calls{ncalls}")
    else:
        x = gen.uniform((batch, steps, depth), -bound, bound)
    mask = None
    if masked:
        mask_bm = make_mask(rng, batch, steps, pattern)
        if masking:
            value = draw.pick([0.0, -1.0, 0.5])
            x = apply_masking(x, mask_bm, value, rng)
            spec["masking"] = value
            tags.append(f"masking-{pattern}")
        else:
            mask = mask_bm
            tags.append(f"mask-{pattern}")
        if spec.get("time_major"):
            x = np.ascontiguousarray(np.transpose(x, (1, 0, 2)))
    elif spec.get("time_major") and x is not None:
        x = np.ascontiguousarray(np.transpose(x, (1, 0, 2)))
    if spec["layer"] != "Sequential":
        draw.flags(spec if spec["layer"] != "Bidirectional" else dict(spec["forward"], layer="Bidirectional"))
    if initial and masking and version == "3":
        initial = False  # Keras 3 drops Masking's mask when initial_state is passed (quirk case records it)
    if initial:
        draw.tags.append("init")
    tags = _dedupe(tags + draw.tags)
    name = f"grid-{number:03d}-" + "-".join(tags)
    merge = f" (merge_mode {merge_mode!r})" if family.startswith("bidi") else ""
    return new_case(name, "grid", seed, spec, gen, x, scale=scale, initial_state=initial, mask=mask,
                    calls=calls, input_bound=bound, notes=f"Grid family '{family}'{merge}. ")


def grid_cases(version, count, seed_base):
    cases = []
    merge_index = 0
    seen = {}
    for number in range(1, count + 1):
        family = FAMILIES[(number - 1) % len(FAMILIES)]
        merge_mode = None
        if family.startswith("bidi"):
            merge_mode = MERGE_MODES[merge_index % len(MERGE_MODES)]
            merge_index += 1
        occurrence = seen.get(family, 0)
        seen[family] = occurrence + 1
        cases.append(grid_case(number, version, seed_base + number, family, merge_mode, occurrence))
    return cases


def suite_cases(version):
    """Every case of the keras3 (version "3") or tfkeras ("2") suite, in recording order."""
    seed_base = {"3": 31000, "2": 41000}[version]
    return ((keras3_first_cases() if version == "3" else []) + canary_cases(version, seed_base)
            + quirk_cases(version, seed_base + 1000) + grid_cases(version, 80, seed_base + 2000))
