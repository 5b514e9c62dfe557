"""The float64 NumPy reference of the keras family: the `keras` dialect, with every option.

It reads a case folder back from disk (case.json + .npy, as the Rust side
will), recomputes every expected output in float64 from the stored float32
weights and inputs, and compares with the recorded float64 expectation
(reference/README.md "Dialect keras"; docs/semantics.md §6):

* `LSTM` / `RNN` (stacked cells), `Bidirectional`, `Sequential`;
* masks (explicit `mask` input or `"masking": {"mask_value": v}`): a masked
  step carries (h, c) and outputs the previous output (zeros before the first
  computed step) or zeros with `zero_output_for_mask`;
* `go_backwards` (outputs in processing order), `time_major` (tf-keras),
  `stateful` (consecutive calls), initial states;
* hard_sigmoid of Keras 2 (`0.2x+0.5`) or Keras 3 (`x/6+0.5`), clipped;
* the unrolled loop's `zero_output_for_mask` quirk of both Kerases: with
  `unroll`, the zeroing of masked outputs uses the mask in *input* time order
  on outputs stored in *processing* order (wrong positions with go_backwards).

`traps` switch on deliberate mistakes (TF1 gate order, the other Keras's
hard_sigmoid, a forget bias added at run time, ...): the canaries are
checked to fail visibly under them.
"""

import pathlib

import numpy as np

from lstm_record.numpy_lstm import check_suite as numpy_check_suite
from lstm_record.numpy_lstm import activation, compare, load_case

ROLES = ("kernel", "recurrent_kernel", "bias")


class Cell:
    """One Keras LSTMCell: state (h, c), gates i, f, c, o."""

    def __init__(self, spec, variables, keras_version, traps):
        names = spec["variables"]
        roles = {"kernel", "recurrent_kernel"} | ({"bias"} if spec["use_bias"] else set())
        if set(names) != roles:
            raise AssertionError(f"keras variable roles {sorted(names)} != {sorted(roles)}")
        allowed = {"units", "activation", "recurrent_activation", "use_bias", "variables",
                   "dropout", "recurrent_dropout", "unit_forget_bias"}
        if set(spec) - allowed:
            raise AssertionError(f"unknown cell fields {sorted(set(spec) - allowed)}")
        self.units = spec["units"]
        self.kernel = variables[names["kernel"]]
        self.recurrent = variables[names["recurrent_kernel"]]
        self.bias = variables[names["bias"]] if spec["use_bias"] else np.zeros(4 * self.units)
        if self.kernel.shape[1] != 4 * self.units or self.recurrent.shape != (self.units, 4 * self.units):
            raise AssertionError(f"kernel shapes {self.kernel.shape} {self.recurrent.shape} for {self.units} units")
        version = traps.get("hard_sigmoid", keras_version)
        self.act = activation(spec["activation"], version)
        self.rec_act = activation(spec["recurrent_activation"], version)
        self.gate_order = traps.get("gate_order", "keras")
        self.forget_add = traps.get("forget_add", 0.0)

    def step(self, x, h, c):
        z = x @ self.kernel + h @ self.recurrent + self.bias
        if self.gate_order == "keras":
            zi, zf, zc, zo = np.split(z, 4, axis=1)
        else:  # TF1's i, j, f, o read onto Keras weights: block 1 taken as the candidate, block 2 as f
            zi, zc, zf, zo = np.split(z, 4, axis=1)
        c_new = self.rec_act(zf + self.forget_add) * c + self.rec_act(zi) * self.act(zc)
        h_new = self.rec_act(zo) * self.act(c_new)
        return h_new, c_new


def run_cells(cells, x, mask, initial, go_backwards, zero_output, unroll, traps):
    """Run stacked cells over batch-major x [B, T, D] like Keras's backend.rnn.

    Returns (seq, last, states, trace): seq [B, T, U] in processing order (what
    the layer returns with return_sequences), last [B, U], the final [(h, c)]
    per cell, and per cell (h [B, T, U], c [B, T, U]) in processing order.
    """
    batch, steps = x.shape[0], x.shape[1]
    states = list(initial)
    order = list(range(steps - 1, -1, -1)) if go_backwards else list(range(steps))
    prev = np.zeros((batch, cells[-1].units))
    chain, direct, trace = [], [], []
    masked_output = traps.get("masked_output")
    for t in order:
        value = x[:, t]
        new_states = []
        for cell, (h, c) in zip(cells, states):
            h, c = cell.step(value, h, c)
            new_states.append((h, c))
            value = h
        if mask is None:
            states = new_states
            chain.append(value)
            direct.append(value)
        else:
            m = mask[:, t][:, None]
            if masked_output == "previous_h":  # Keras 2.2.4 / Keras 3 JAX: the carried h, initial h first
                prev = states[-1][0]
            states = [(np.where(m, hn, ho), np.where(m, cn, co)) for (hn, cn), (ho, co) in zip(new_states, states)]
            repeated = np.where(m, value, prev)
            prev = repeated
            chain.append(repeated)
            direct.append(np.where(m, value, 0.0))
        trace.append(states)
    zero_output = traps.get("zero_output", zero_output)
    if mask is None or not zero_output:
        seq, last = np.stack(chain, axis=1), chain[-1]
    elif not unroll:
        seq, last = np.stack(direct, axis=1), direct[-1]
    else:  # backend.rnn unroll path: where(mask, outputs, 0) with the mask in input order
        seq = np.where(mask[:, :, None], np.stack(chain, axis=1), 0.0)
        last = direct[-1]
    if go_backwards and traps.get("rereverse"):
        seq = seq[:, ::-1]
    per_cell = [(np.stack([s[i][0] for s in trace], axis=1), np.stack([s[i][1] for s in trace], axis=1))
                for i in range(len(cells))]
    if traps.get("swap_state_order"):
        states = [(c, h) for h, c in states]
    return seq, last, states, per_cell


# ---------------------------------------------------------------- models

RNN_FIELDS = {"keras", "layer", "return_sequences", "return_state", "go_backwards", "cells",
              "zero_output_for_mask", "time_major", "stateful", "unroll", "implementation", "masking"}
BIDI_FIELDS = {"keras", "layer", "return_sequences", "return_state", "merge_mode", "forward", "backward",
               "zero_output_for_mask", "unroll", "masking"}
SEQ_FIELDS = {"keras", "layer", "return_sequences", "return_state", "go_backwards", "layers", "masking"}


def _check_fields(model, allowed):
    unknown = set(model) - allowed
    if unknown:
        raise AssertionError(f"model fields {sorted(unknown)} not expected for layer {model['layer']}")


def _initial(inputs, prefix, cells, batch):
    result = []
    for index, cell in enumerate(cells):
        h = inputs.get(f"{prefix}{index}/h", np.zeros((batch, cell.units)))
        c = inputs.get(f"{prefix}{index}/c", np.zeros((batch, cell.units)))
        result.append((h, c))
    return result


def _traces(prefix, per_cell):
    out = {}
    for index, (h, c) in enumerate(per_cell):
        out[f"{prefix}trace/{index}/h"] = h
        out[f"{prefix}trace/{index}/c"] = c
    return out


def _merge(mode, y, y_rev):
    if mode == "concat":
        return np.concatenate([y, y_rev], axis=-1)
    if mode == "sum":
        return y + y_rev
    if mode == "mul":
        return y * y_rev
    if mode == "ave":
        return (y + y_rev) / 2
    raise AssertionError(f"unknown merge_mode {mode}")


def _layer(model, variables, x, mask, inputs, traps, init_prefix=""):
    """One LSTM/RNN/Bidirectional layer on batch-major x with a batch-major mask.

    Returns (named outputs, the layer's main output(s) batch-major, output mask).
    """
    version = model["keras"]
    batch = x.shape[0]
    sequences = model["return_sequences"]
    if model["layer"] in ("LSTM", "RNN"):
        _check_fields(model, RNN_FIELDS)
        cells = [Cell(spec, variables, version, traps) for spec in model["cells"]]
        if model["layer"] == "LSTM" and len(cells) != 1:
            raise AssertionError("LSTM has exactly one cell")
        initial = _initial(inputs, f"{init_prefix}initial_state/", cells, batch)
        seq, last, states, per_cell = run_cells(cells, x, mask, initial, model["go_backwards"],
                                                model.get("zero_output_for_mask", False),
                                                model.get("unroll", False), traps)
        output = seq if sequences else last
        named = {}
        if model["return_state"]:
            for index, (h, c) in enumerate(states):
                named[f"state/{index}/h"], named[f"state/{index}/c"] = h, c
        named.update(_traces("", per_cell))
        return named, [output], (mask if sequences else None)
    if model["layer"] == "Bidirectional":
        _check_fields(model, BIDI_FIELDS)
        zero_output = model.get("zero_output_for_mask", False)
        unroll = model.get("unroll", False)
        named, halves = {}, []
        for key in ("forward", "backward"):
            direction = model[key]
            if set(direction) != {"go_backwards", "cells"}:
                raise AssertionError(f"{key}: fields {sorted(direction)}")
            cells = [Cell(spec, variables, version, traps) for spec in direction["cells"]]
            tag = "fw" if key == "forward" else "bw"
            initial = _initial(inputs, f"{init_prefix}initial_state/{tag}/", cells, batch)
            seq, last, states, per_cell = run_cells(cells, x, mask, initial, direction["go_backwards"],
                                                    zero_output, unroll, traps)
            halves.append(seq if sequences else last)
            if model["return_state"]:
                for index, (h, c) in enumerate(states):
                    named[f"{tag}/state/{index}/h"], named[f"{tag}/state/{index}/c"] = h, c
            named.update(_traces(f"{tag}/", per_cell))
        y, y_rev = halves
        if sequences and not traps.get("bidi_no_reverse"):
            y_rev = y_rev[:, ::-1]
        if "merge_mode" not in model:
            raise AssertionError("Bidirectional cases state merge_mode explicitly")
        mode = model["merge_mode"]
        outputs = [y, y_rev] if mode is None else [_merge(mode, y, y_rev)]
        return named, outputs, (mask if sequences else None)
    raise AssertionError(f"unknown layer {model['layer']}")


def _mask_of(model, inputs, x, traps):
    masking = model.get("masking")
    if masking is not None:
        if set(masking) != {"mask_value"}:
            raise AssertionError(f"masking fields {sorted(masking)}")
        if "mask" in inputs:
            raise AssertionError("both a mask input and masking")
        if traps.get("masking_any"):
            return np.all(x != masking["mask_value"], axis=-1)
        return np.any(x != masking["mask_value"], axis=-1)  # masked only where ALL features equal it
    if "mask" in inputs:
        mask = inputs["mask"]
        if mask.dtype != np.bool_ or mask.shape != x.shape[:2]:
            raise AssertionError(f"mask {mask.dtype}{mask.shape} for inputs {x.shape}")
        return mask
    return None


def keras_outputs(model, variables, inputs, traps=None):
    """Every output of a keras case, in float64 (names as reference/README.md)."""
    traps = traps or {}
    kind = model["layer"]
    if kind == "Sequential":
        _check_fields(model, SEQ_FIELDS)
        x = inputs["inputs"]
        mask = _mask_of(model, inputs, x, traps)
        if model.get("masking") is not None:
            x = np.where(mask[:, :, None], x, 0.0)  # keras.layers.Masking zeroes masked steps
        result = {}
        for index, sub in enumerate(model["layers"]):
            if sub["keras"] != model["keras"] or sub.get("masking") is not None:
                raise AssertionError("Sequential layers: same keras, no own masking")
            named, outputs, mask = _layer(sub, variables, x, mask, {}, traps)
            if len(outputs) != 1:
                raise AssertionError("a Sequential layer must have one output")
            x = outputs[0]
            for name, value in named.items():
                if "state/" in name:
                    raise AssertionError("no states from inside a Sequential")
                result[f"layers/{index}/{name}"] = value
        result["output"] = x
        return result
    if kind in ("LSTM", "RNN") and model.get("stateful", False):
        _check_fields(model, RNN_FIELDS)
        if "mask" in inputs or model.get("masking") is not None:
            raise AssertionError("stateful cases have no masks here")
        calls = sorted(int(k.split("/")[1]) for k in inputs if k.startswith("inputs/"))
        if calls != list(range(len(calls))) or len(calls) < 2:
            raise AssertionError(f"stateful inputs {sorted(inputs)}")
        cells = [Cell(spec, variables, model["keras"], traps) for spec in model["cells"]]
        states, result = None, {}
        for k in calls:
            x = inputs[f"inputs/{k}"]
            if model.get("time_major", False):
                x = np.transpose(x, (1, 0, 2))
            if states is None:
                states = [(np.zeros((x.shape[0], c.units)), np.zeros((x.shape[0], c.units))) for c in cells]
            if traps.get("stateful_reset"):
                states = [(np.zeros_like(h), np.zeros_like(c)) for h, c in states]
            seq, last, states, _ = run_cells(cells, x, None, states, model["go_backwards"], False,
                                             model.get("unroll", False), traps)
            out = seq if model["return_sequences"] else last
            if model["return_sequences"] and model.get("time_major", False):
                out = np.transpose(out, (1, 0, 2))
            result[f"output/{k}"] = out
        for index, (h, c) in enumerate(states):
            result[f"state/{index}/h"], result[f"state/{index}/c"] = h, c
        return result
    x = inputs["inputs"]
    time_major = model.get("time_major", False)
    if time_major:
        if kind == "Bidirectional" or model["keras"] != "2":
            raise AssertionError("time_major is a tf-keras LSTM/RNN option")
        x = np.transpose(x, (1, 0, 2))
    mask = _mask_of(model, inputs, x, traps)
    if (model["keras"] == "3" and model.get("masking") is not None
            and any(k.startswith("initial_state/") for k in inputs)):
        # Keras 3 quirk: with initial_state the Masking layer's mask does not reach the layer; the
        # layer runs unmasked on Masking's output, which has zeros at the masked steps
        x, mask = np.where(mask[:, :, None], x, 0.0), None
    named, outputs, _ = _layer(model, variables, x, mask, inputs, traps)
    if time_major and model["return_sequences"]:
        outputs = [np.transpose(o, (1, 0, 2)) for o in outputs]
    if len(outputs) == 1:
        named["output"] = outputs[0]
    else:
        named["output/0"], named["output/1"] = outputs
    return named


# ---------------------------------------------------------------- checking


def _bool_inputs(case_dir, manifest, inputs):
    """numpy_lstm.load_case widens every non-int32 input to float64: restore bool masks."""
    for name, entry in manifest["inputs"].items():
        array = np.load(pathlib.Path(case_dir) / entry["file"], allow_pickle=False)
        if array.dtype == np.bool_:
            inputs[name] = array
    return inputs


def load(case_dir):
    manifest, variables, inputs, expected = load_case(case_dir)
    return manifest, variables, _bool_inputs(case_dir, manifest, inputs), expected


def check_case(case_dir):
    """Recompute a keras case in float64; raise AssertionError on mismatch.

    Returns (max relative float64 error vs Keras, max abs float32-vs-float64 distance of Keras).
    """
    manifest, variables, inputs, expected = load(case_dir)
    if manifest["dialect"] != "keras":
        raise AssertionError(f"{case_dir}: dialect {manifest['dialect']}")
    ours = keras_outputs(manifest["model"], variables, inputs)
    return compare(case_dir, ours, expected, "Keras")


def check_suite(suite_dir):
    """Check every case of a keras suite; print one summary line; return the number of cases."""
    return numpy_check_suite(suite_dir, check_case, "keras")
