"""A float64 NumPy LSTM that re-checks every written case.

It reads a case folder back from disk (case.json + .npy, as the Rust side
will), recomputes every expected output in float64 from the stored float32
weights and inputs, and compares with the recorded float64 expectation. A
mismatch means a recording mistake (a variable assigned to the wrong slot, a
wrong trace fill, a wrong layout), not a framework quirk: the formulas here
follow /work/shared/SEMANTICS.md sections 1-3 (TF1) and 5 (Keras).

It also checks TF's float32 run against its float64 run (a loose sanity bound).
"""

import json
import pathlib

import numpy as np

FLOAT64_REL_TOL = 1e-12  # |numpy64 - tf64| <= tol * max(1, |tf64|), elementwise
FLOAT32_SANITY_REL = 1e-3  # |tf32 - tf64| <= this * max(1, |tf64|): catches gross slips only


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def activation(name, keras_version="3"):
    if name == "tanh":
        return np.tanh
    if name == "sigmoid":
        return sigmoid
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    if name == "linear":
        return lambda x: x
    if name == "hard_sigmoid":
        if keras_version == "3":
            return lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0)  # relu6(x + 3) / 6
        return lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0)
    raise ValueError(f"unknown activation {name}")


# ---------------------------------------------------------------- TF1 cells


class Tf1Cell:
    """BasicLSTMCell or LSTMCell; state is (c, h), gate order i, j, f, o."""

    def __init__(self, spec, variables):
        self.spec = spec
        names = spec["variables"]
        self.kernel = variables[names["kernel"]]
        self.bias = variables[names["bias"]]
        self.units = spec["num_units"]
        self.forget_bias = spec["forget_bias"]
        self.act = activation(spec["activation"])
        self.peepholes = spec.get("use_peepholes", False)
        self.cell_clip = spec.get("cell_clip")
        self.num_proj = spec.get("num_proj")
        self.proj_clip = spec.get("proj_clip")
        if self.peepholes:
            self.w_i, self.w_f, self.w_o = (variables[names[k]] for k in ("w_i_diag", "w_f_diag", "w_o_diag"))
        if self.num_proj is not None:
            self.projection = variables[names["projection/kernel"]]
        if set(names) != self.expected_roles():
            raise AssertionError(f"variable roles {sorted(names)} != {sorted(self.expected_roles())}")

    def expected_roles(self):
        roles = {"kernel", "bias"}
        if self.peepholes:
            roles |= {"w_i_diag", "w_f_diag", "w_o_diag"}
        if self.num_proj is not None:
            roles.add("projection/kernel")
        return roles

    def step(self, x, state):
        c_prev, h_prev = state
        z = np.concatenate([x, h_prev], axis=1) @ self.kernel + self.bias
        i, j, f, o = np.split(z, 4, axis=1)
        if self.peepholes:
            c = sigmoid(f + self.forget_bias + self.w_f * c_prev) * c_prev + sigmoid(i + self.w_i * c_prev) * self.act(j)
        else:
            c = sigmoid(f + self.forget_bias) * c_prev + sigmoid(i) * self.act(j)
        if self.cell_clip is not None:
            c = np.clip(c, -self.cell_clip, self.cell_clip)
        if self.peepholes:
            h = sigmoid(o + self.w_o * c) * self.act(c)
        else:
            h = sigmoid(o) * self.act(c)
        if self.num_proj is not None:
            h = h @ self.projection
            if self.proj_clip is not None:
                h = np.clip(h, -self.proj_clip, self.proj_clip)
        return h, (c, h)

    def zero_state(self, batch):
        return (np.zeros((batch, self.units)), np.zeros((batch, self.num_proj or self.units)))


def tf1_layers(cell_spec, variables):
    if cell_spec["class"] == "MultiRNNCell":
        return [Tf1Cell(c, variables) for c in cell_spec["cells"]]
    return [Tf1Cell(cell_spec, variables)]


def tf1_expected(model, variables, inputs):
    """All outputs of a tf1 case, in float64."""
    layers = tf1_layers(model["cell"], variables)
    api = model["api"]
    x = inputs["inputs"]
    if api == "cell_call":
        x = x[None]  # one time step, time-major
    elif api == "dynamic_rnn" and not model.get("time_major", False):
        x = np.transpose(x, (1, 0, 2))
    steps, batch = x.shape[0], x.shape[1]
    states = []
    for index, layer in enumerate(layers):
        if f"initial_state/{index}/c" in inputs:
            states.append((inputs[f"initial_state/{index}/c"], inputs[f"initial_state/{index}/h"]))
        else:
            states.append(layer.zero_state(batch))
    lengths = inputs.get("sequence_length")
    outputs, trace = [], []
    for t in range(steps):
        value = x[t]
        new_states = []
        for layer, state in zip(layers, states):
            value, new_state = layer.step(value, state)
            new_states.append(new_state)
        if lengths is not None:  # past a row's length: zero output, carried state
            done = (t >= lengths)[:, None]
            value = np.where(done, 0.0, value)
            new_states = [tuple(np.where(done, old, new) for old, new in zip(o, n)) for o, n in zip(states, new_states)]
        states = new_states
        outputs.append(value)
        trace.append(states)
    result = {}
    out = np.stack(outputs)  # [time, batch, out]
    if api == "cell_call":
        result["output"] = out[0]
    elif api == "dynamic_rnn" and not model.get("time_major", False):
        result["outputs"] = np.transpose(out, (1, 0, 2))
    else:
        result["outputs"] = out
    for index in range(len(layers)):
        result[f"state/{index}/c"], result[f"state/{index}/h"] = states[index]
        for k, name in ((0, "c"), (1, "h")):
            result[f"trace/{index}/{name}"] = np.stack([step[index][k] for step in trace], axis=1)
    return result


# ---------------------------------------------------------------- Keras


def keras_expected(model, variables, inputs):
    """All outputs of a keras case, in float64 (state order [h, c], gates i, f, c, o)."""
    x = inputs["inputs"]
    batch, steps = x.shape[0], x.shape[1]
    cells = []
    for index, spec in enumerate(model["cells"]):
        names = spec["variables"]
        expected_roles = {"kernel", "recurrent_kernel"} | ({"bias"} if spec["use_bias"] else set())
        if set(names) != expected_roles:
            raise AssertionError(f"keras variable roles {sorted(names)} != {sorted(expected_roles)}")
        units = spec["units"]
        bias = variables[names["bias"]] if spec["use_bias"] else np.zeros(4 * units)
        h0 = inputs.get(f"initial_state/{index}/h", np.zeros((batch, units)))
        c0 = inputs.get(f"initial_state/{index}/c", np.zeros((batch, units)))
        cells.append({
            "kernel": variables[names["kernel"]],
            "recurrent": variables[names["recurrent_kernel"]],
            "bias": bias,
            "act": activation(spec["activation"], model["keras"]),
            "rec_act": activation(spec["recurrent_activation"], model["keras"]),
            "state": (h0, c0),
        })
    order = range(steps - 1, -1, -1) if model["go_backwards"] else range(steps)
    outputs, trace = [], []
    for t in order:
        value = x[:, t]
        for cell in cells:
            h_prev, c_prev = cell["state"]
            z = value @ cell["kernel"] + h_prev @ cell["recurrent"] + cell["bias"]
            zi, zf, zc, zo = np.split(z, 4, axis=1)
            c = cell["rec_act"](zf) * c_prev + cell["rec_act"](zi) * cell["act"](zc)
            h = cell["rec_act"](zo) * cell["act"](c)
            cell["state"] = (h, c)
            value = h
        outputs.append(value)
        trace.append([cell["state"] for cell in cells])
    result = {"output": np.stack(outputs, axis=1) if model["return_sequences"] else outputs[-1]}
    for index, cell in enumerate(cells):
        if model["return_state"]:
            result[f"state/{index}/h"], result[f"state/{index}/c"] = cell["state"]
        for k, name in ((0, "h"), (1, "c")):
            result[f"trace/{index}/{name}"] = np.stack([step[index][k] for step in trace], axis=1)
    return result


# ---------------------------------------------------------------- checking


def load_case(case_dir):
    case_dir = pathlib.Path(case_dir)
    manifest = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))

    def load(entry):
        array = np.load(case_dir / entry["file"], allow_pickle=False)
        if list(array.shape) != entry["shape"]:
            raise AssertionError(f"{case_dir}/{entry['file']}: shape {array.shape} != {entry['shape']}")
        return array

    variables = {name: load(entry).astype(np.float64) for name, entry in manifest["variables"].items()}
    inputs = {}
    for name, entry in manifest["inputs"].items():
        array = load(entry)
        inputs[name] = array if array.dtype == np.int32 else array.astype(np.float64)
    expected = {}
    for name, entry in manifest["expected"].items():
        pair = {}
        for dtype in ("float32", "float64"):
            pair[dtype] = np.load(case_dir / entry[dtype], allow_pickle=False)
            if list(pair[dtype].shape) != entry["shape"] or pair[dtype].dtype != np.dtype(dtype):
                raise AssertionError(f"{case_dir}/{entry[dtype]}: wrong shape or dtype")
        expected[name] = pair
    return manifest, variables, inputs, expected


def check_case(case_dir):
    """Recompute a case in float64; raise AssertionError naming case and output on mismatch.

    Returns (max relative float64 error vs TF, max abs float32-vs-float64 distance of TF).
    """
    manifest, variables, inputs, expected = load_case(case_dir)
    if manifest["dialect"] == "tf1":
        ours = tf1_expected(manifest["model"], variables, inputs)
    elif manifest["dialect"] == "keras":
        ours = keras_expected(manifest["model"], variables, inputs)
    else:
        raise AssertionError(f"{case_dir}: unknown dialect {manifest['dialect']}")
    if set(ours) != set(expected):
        raise AssertionError(f"{case_dir}: outputs {sorted(expected)} but NumPy computes {sorted(ours)}")
    worst64, worst32 = 0.0, 0.0
    for name, pair in expected.items():
        tf64, tf32 = pair["float64"], pair["float32"].astype(np.float64)
        scale = np.maximum(1.0, np.abs(tf64))
        if ours[name].shape != tf64.shape:
            raise AssertionError(f"{case_dir}: {name}: shape {ours[name].shape} vs recorded {tf64.shape}")
        if not (np.all(np.isfinite(tf64)) and np.all(np.isfinite(tf32))):
            raise AssertionError(f"{case_dir}: {name}: non-finite expectation")
        rel64 = float(np.max(np.abs(ours[name] - tf64) / scale, initial=0.0))
        rel32 = float(np.max(np.abs(tf32 - tf64) / scale, initial=0.0))
        if rel64 > FLOAT64_REL_TOL:
            raise AssertionError(f"{case_dir}: {name}: NumPy float64 differs from TF float64 by {rel64:.3g} (rel)")
        if rel32 > FLOAT32_SANITY_REL:
            raise AssertionError(f"{case_dir}: {name}: TF float32 differs from TF float64 by {rel32:.3g} (rel)")
        worst64 = max(worst64, rel64)
        worst32 = max(worst32, float(np.max(np.abs(tf32 - tf64), initial=0.0)))
    return worst64, worst32


def check_suite(suite_dir):
    """Check every case in a suite folder; print one summary line; return the number of cases."""
    suite_dir = pathlib.Path(suite_dir)
    cases = sorted(p.parent for p in suite_dir.glob("*/case.json"))
    if not cases:
        raise AssertionError(f"{suite_dir}: no cases")
    worst64 = worst32 = 0.0
    for case_dir in cases:
        rel64, abs32 = check_case(case_dir)
        worst64, worst32 = max(worst64, rel64), max(worst32, abs32)
    print(f"numpy check {suite_dir.name}: {len(cases)} cases ok; max rel |numpy64 - tf64| = {worst64:.3g}, "
          f"max |tf32 - tf64| = {worst32:.3g}")
    return len(cases)
