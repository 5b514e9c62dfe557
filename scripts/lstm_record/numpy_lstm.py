"""The float64 NumPy reference of the tf1 and block families, and the re-check every suite shares.

It reads a case folder back from disk (case.json + .npy, as the Rust side
will), recomputes every expected output in float64 from the stored float32
weights and inputs, and compares with the recorded float64 expectation. A
mismatch means a recording mistake (a variable assigned to the wrong slot, a
wrong trace fill, a wrong layout), not a framework quirk: the formulas here
follow docs/semantics.md §3-§4 (TF1) and §5 (block ops); the keras family's
reference is keras_numpy.py (§6), which uses `load_case`, `compare` and
`check_suite` from here.

It also checks TF's float32 run against its float64 run (a loose sanity bound).
"""

import json
import pathlib

import numpy as np

FLOAT64_REL_TOL = 1e-12  # |numpy64 - tf64| <= tol * max(1, |tf64|), elementwise
FLOAT32_SANITY_REL = 1e-3  # |tf32 - tf64| <= this * max(1, |tf64|): catches gross slips only

# Named wrong implementations, used only by the canary checks of the recorders
# (lstm_record/traps.py) to prove that a canary case fails when its trap is
# implemented wrong. `trap=None` (the default everywhere) is the right semantics.
TF1_CELL_TRAPS = ("peephole_o_on_c_prev", "peephole_o_on_unclipped_c", "clip_before_projection")
TF1_RUNNER_TRAPS = ("output_carried_past_length", "state_not_carried", "full_reverse", "concat_bw_fw")
BLOCK_TRAPS = ("peephole_o_on_cs_prev", "peephole_o_on_unclipped_cs")


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
        if keras_version == "2":
            return lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0)
    raise ValueError(f"unknown activation {name} (keras {keras_version})")


# ---------------------------------------------------------------- TF1 cells


class Tf1Cell:
    """BasicLSTMCell or LSTMCell; state is (c, h), gate order i, j, f, o.

    `residual`: the cell sits in a ResidualWrapper, so its output is input + output
    (the state stays the cell's own).
    """

    def __init__(self, spec, variables, trap=None, residual=False):
        self.spec = spec
        self.residual = residual
        self.trap = trap if trap in TF1_CELL_TRAPS else None
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
        unclipped = c
        if self.cell_clip is not None:
            c = np.clip(c, -self.cell_clip, self.cell_clip)
        if self.peepholes:
            peep = {"peephole_o_on_c_prev": c_prev, "peephole_o_on_unclipped_c": unclipped}.get(self.trap, c)
            h = sigmoid(o + self.w_o * peep) * self.act(c)
        else:
            h = sigmoid(o) * self.act(c)
        if self.num_proj is not None:
            if self.trap == "clip_before_projection" and self.proj_clip is not None:
                h = np.clip(h, -self.proj_clip, self.proj_clip) @ self.projection
            else:
                h = h @ self.projection
                if self.proj_clip is not None:
                    h = np.clip(h, -self.proj_clip, self.proj_clip)
        return h, (c, h)

    def zero_state(self, batch):
        return (np.zeros((batch, self.units)), np.zeros((batch, self.num_proj or self.units)))


TF1_WRAPPERS = ("DropoutWrapper", "ResidualWrapper")


def tf1_unwrap(cell_spec):
    """[(LSTM cell spec, residual)] of a cell spec, first layer first (docs/semantics.md §3.8-§3.9).

    A DropoutWrapper must have every keep probability 1.0 (the identity)."""
    if cell_spec["class"] == "MultiRNNCell":
        return [layer for c in cell_spec["cells"] for layer in tf1_unwrap(c)]
    if cell_spec["class"] == "DropoutWrapper":
        keeps = [cell_spec[k] for k in ("input_keep_prob", "output_keep_prob", "state_keep_prob")]
        if keeps != [1.0, 1.0, 1.0]:
            raise AssertionError(f"DropoutWrapper keep probabilities {keeps}: only 1.0 is reproducible")
        return tf1_unwrap(cell_spec["cell"])
    if cell_spec["class"] == "ResidualWrapper":
        inner = tf1_unwrap(cell_spec["cell"])
        if len(inner) != 1 or inner[0][1]:
            raise AssertionError("ResidualWrapper around one plain LSTM cell only")
        return [(inner[0][0], True)]
    return [(cell_spec, False)]


def tf1_layers(cell_spec, variables, trap=None):
    return [Tf1Cell(spec, variables, trap, residual) for spec, residual in tf1_unwrap(cell_spec)]


def state_groups(cell_spec, prefix):
    """[(native name, [(layer, "c" | "h"), ...])]: the tensors of TF's state nest, flattened, and the
    per-layer parts each concatenates (docs/semantics.md §3.6). A state tuple gives `<prefix>/<layer>/c`
    and `/h`; a cell with state_is_tuple=False one `<prefix>/<layer>` = [c, h]; a
    MultiRNNCell(state_is_tuple=False) one `<prefix>` = [c0, h0, c1, h1, ...]."""
    if cell_spec["class"] == "MultiRNNCell" and cell_spec.get("state_is_tuple") is False:
        layers = tf1_unwrap(cell_spec)
        return [(prefix, [(index, part) for index in range(len(layers)) for part in ("c", "h")])]
    cells = cell_spec["cells"] if cell_spec["class"] == "MultiRNNCell" else [cell_spec]
    groups = []
    for index, cell in enumerate(cells):
        spec = tf1_unwrap(cell)[0][0]
        if spec.get("state_is_tuple") is False:
            groups.append((f"{prefix}/{index}", [(index, "c"), (index, "h")]))
        else:
            groups += [(f"{prefix}/{index}/{part}", [(index, part)]) for part in ("c", "h")]
    return groups


def state_widths(cell_spec):
    """{(layer, "c" | "h"): width}."""
    widths = {}
    for index, (spec, _) in enumerate(tf1_unwrap(cell_spec)):
        widths[index, "c"] = spec["num_units"]
        widths[index, "h"] = spec.get("num_proj") or spec["num_units"]
    return widths


def join_states(cell_spec, per_layer, prefix):
    """{native name: array} from {(layer, part): array}, concatenated as TF's state nest holds them."""
    return {name: np.concatenate([per_layer[key] for key in parts], axis=1) if len(parts) > 1 else per_layer[parts[0]]
            for name, parts in state_groups(cell_spec, prefix)}


def split_states(cell_spec, named, prefix):
    """{(layer, part): array} from native state tensors (the inverse of `join_states`); None if absent."""
    groups = state_groups(cell_spec, prefix)
    if not any(name in named for name, _ in groups):
        return None
    widths = state_widths(cell_spec)
    per_layer = {}
    for name, parts in groups:
        offset = 0
        for key in parts:
            per_layer[key] = named[name][:, offset:offset + widths[key]]
            offset += widths[key]
        if offset != named[name].shape[1]:
            raise AssertionError(f"{name}: width {named[name].shape[1]} != {offset}")
    return per_layer


BIDIRECTIONAL_APIS = ("bidirectional_dynamic_rnn", "static_bidirectional_rnn")


def tf1_run(layers, x, states, lengths, trap=None):
    """Run stacked TF1 cells over time-major `x` [time, batch, input] from `states`.

    Past a row's `lengths` (None: no lengths) the output is zero and the state is
    carried (docs/semantics.md §4.2). Returns (outputs [time, batch, out], final states,
    per-step states: a list over time of per-layer (c, h)).
    """
    outputs, trace = [], []
    for t in range(x.shape[0]):
        value = x[t]
        new_states = []
        for layer, state in zip(layers, states):
            output, new_state = layer.step(value, state)
            value = value + output if layer.residual else output
            new_states.append(new_state)
        if lengths is not None:  # past a row's length: zero output, carried state
            done = (t >= lengths)[:, None]
            if trap == "output_carried_past_length":
                value = np.where(done, outputs[-1] if outputs else 0.0, value)
            else:
                value = np.where(done, 0.0, value)
            if trap != "state_not_carried":
                new_states = [tuple(np.where(done, old, new) for old, new in zip(o, n))
                              for o, n in zip(states, new_states)]
        states = new_states
        outputs.append(value)
        trace.append(states)
    width = layers[-1].num_proj or layers[-1].units
    out = np.stack(outputs) if outputs else np.zeros((0, x.shape[1], width))
    return out, states, trace


def _initial_states(layers, inputs, prefix, batch, cell_spec):
    given = split_states(cell_spec, inputs, prefix)
    if given is None:
        return [layer.zero_state(batch) for layer in layers]
    return [(given[index, "c"], given[index, "h"]) for index in range(len(layers))]


def _final_states(cell_spec, states, prefix):
    return join_states(cell_spec, {(index, part): state[k] for index, state in enumerate(states)
                                   for k, part in ((0, "c"), (1, "h"))}, prefix)


def _trace_arrays(layers, trace, batch, prefix=""):
    """Per-layer batch-major [batch, steps, units] arrays of a tf1_run trace."""
    result = {}
    for index, layer in enumerate(layers):
        for k, name, size in ((0, "c", layer.units), (1, "h", layer.num_proj or layer.units)):
            steps = [step[index][k] for step in trace]
            result[f"{prefix}trace/{index}/{name}"] = np.stack(steps, axis=1) if steps else np.zeros((batch, 0, size))
    return result


def reverse_sequence(x, lengths):
    """tf.reverse_sequence on time-major x: each row's first lengths[b] steps reversed, padding kept."""
    out = x.copy()
    for b, length in enumerate(lengths):
        out[:length, b] = x[:length, b][::-1]
    return out


def tf1_bidirectional_expected(model, variables, inputs, trap=None):
    """bidirectional_dynamic_rnn / static_bidirectional_rnn (docs/semantics.md §4.3), in float64.

    The backward trace is in processing order: step k read inputs[len-1-k].
    """
    api = model["api"]
    fw_layers = tf1_layers(model["cell"], variables, trap)
    bw_layers = tf1_layers(model["cell_bw"], variables, trap)
    x = inputs["inputs"]
    batch_major = api == "bidirectional_dynamic_rnn" and not model.get("time_major", False)
    if batch_major:
        x = np.transpose(x, (1, 0, 2))
    steps, batch = x.shape[0], x.shape[1]
    lengths = inputs.get("sequence_length")
    full = np.full(batch, steps) if lengths is None else lengths
    reverse = reverse_sequence
    if trap == "full_reverse":  # tf.reverse over the whole time axis: padding read first
        reverse = lambda a, _lengths: a[::-1].copy()  # noqa: E731
    fw_out, fw_states, fw_trace = tf1_run(fw_layers, x, _initial_states(fw_layers, inputs, "initial_state_fw", batch, model["cell"]),
                                          lengths, trap)
    bw_out, bw_states, bw_trace = tf1_run(bw_layers, reverse(x, full),
                                          _initial_states(bw_layers, inputs, "initial_state_bw", batch, model["cell_bw"]),
                                          lengths, trap)
    bw_out = reverse(bw_out, full)  # back into input time order, as TF returns it
    result = {}
    if api == "bidirectional_dynamic_rnn":
        if batch_major:
            fw_out, bw_out = np.transpose(fw_out, (1, 0, 2)), np.transpose(bw_out, (1, 0, 2))
        result["outputs_fw"], result["outputs_bw"] = fw_out, bw_out
    else:
        pair = [bw_out, fw_out] if trap == "concat_bw_fw" else [fw_out, bw_out]
        result["outputs"] = np.concatenate(pair, axis=2)
    for direction, key, layers, states, trace in (("fw", "cell", fw_layers, fw_states, fw_trace),
                                                  ("bw", "cell_bw", bw_layers, bw_states, bw_trace)):
        result.update(_final_states(model[key], states, f"{direction}/state"))
        result.update(_trace_arrays(layers, trace, batch, prefix=f"{direction}/"))
    return result


def tf1_expected(model, variables, inputs, trap=None):
    """All outputs of a tf1 case, in float64 (`trap`: a named wrong implementation, canaries only)."""
    if model["api"] in BIDIRECTIONAL_APIS:
        return tf1_bidirectional_expected(model, variables, inputs, trap)
    layers = tf1_layers(model["cell"], variables, trap)
    api = model["api"]
    x = inputs["inputs"]
    if api == "cell_call":
        x = x[None]  # one time step, time-major
    elif api == "dynamic_rnn" and not model.get("time_major", False):
        x = np.transpose(x, (1, 0, 2))
    batch = x.shape[1]
    out, states, trace = tf1_run(layers, x, _initial_states(layers, inputs, "initial_state", batch, model["cell"]),
                                 inputs.get("sequence_length"), trap)
    result = {}
    if api == "cell_call":
        result["output"] = out[0]
    elif api == "dynamic_rnn" and not model.get("time_major", False):
        result["outputs"] = np.transpose(out, (1, 0, 2))
    else:
        result["outputs"] = out
    result.update(_final_states(model["cell"], states, "state"))
    result.update(_trace_arrays(layers, trace, batch))
    return result


# ---------------------------------------------------------------- block ops


BLOCK_OPS = ("LSTMBlockCell", "BlockLSTM", "BlockLSTMV2")


def block_effective(model):
    """(forget_bias, cell_clip) as the kernel uses them: V2 has forget_bias 0; an unpassed
    cell_clip is the op default (3.0; 0.0 for V2); clip <= 0 means none (returned as None)."""
    v2 = model["op"] == "BlockLSTMV2"
    forget_bias = 0.0 if v2 else model["forget_bias"]
    clip = model["cell_clip"]
    if clip is None:
        clip = 0.0 if v2 else 3.0
    return forget_bias, (clip if clip > 0 else None)


def block_expected(model, variables, inputs, trap=None):
    """All outputs of a block case (docs/semantics.md §5), in float64.

    Gate layout ICFO (LSTMBlockCell, BlockLSTM) or IFCO (BlockLSTMV2); peepholes i, f on
    cs_prev and o on the new (clipped) cs. Sequence ops run seq_len_max steps: cs and h
    are zero from there on, i, f, o, ci, co are cut to seq_len_max steps.
    """
    op = model["op"]
    if op not in BLOCK_OPS:
        raise AssertionError(f"unknown block op {op}")
    w, b = variables["w"], variables["b"]
    wci, wcf, wco = variables["wci"], variables["wcf"], variables["wco"]
    units = b.shape[0] // 4
    forget_bias, clip = block_effective(model)
    peephole = model["use_peephole"]
    ifco = op == "BlockLSTMV2"
    cell = op == "LSTMBlockCell"
    x = inputs["x"][None] if cell else inputs["x"]
    steps = 1 if cell else int(inputs["seq_len_max"])
    cs, h = inputs["cs_prev"], inputs["h_prev"]
    batch = cs.shape[0]
    names = ("i", "cs", "f", "o", "ci", "co", "h")
    per_step = {name: [] for name in names}
    for t in range(steps):
        z = np.concatenate([x[t], h], axis=1) @ w + b
        zi, z1, z2, zo = np.split(z, 4, axis=1)
        zf, zc = (z1, z2) if ifco else (z2, z1)
        i = sigmoid(zi + wci * cs) if peephole else sigmoid(zi)
        f = sigmoid(zf + forget_bias + wcf * cs) if peephole else sigmoid(zf + forget_bias)
        ci = np.tanh(zc)
        cs_prev, cs = cs, i * ci + f * cs
        unclipped = cs
        if clip is not None:
            cs = np.clip(cs, -clip, clip)
        co = np.tanh(cs)
        peep = {"peephole_o_on_cs_prev": cs_prev, "peephole_o_on_unclipped_cs": unclipped}.get(trap, cs)
        o = sigmoid(zo + wco * peep) if peephole else sigmoid(zo)
        h = o * co
        for name, value in zip(names, (i, cs, f, o, ci, co, h)):
            per_step[name].append(value)
    stacked = {name: np.stack(v) if v else np.zeros((0, batch, units)) for name, v in per_step.items()}
    if cell:
        result = {name: value[0] for name, value in stacked.items()}
    else:
        result = dict(stacked)
        time = x.shape[0]
        for name in ("cs", "h"):  # the op zeroes cs and h at steps >= seq_len_max
            full = np.zeros((time, batch, units))
            full[:steps] = stacked[name]
            result[name] = full
    result["trace/0/c"] = np.transpose(stacked["cs"], (1, 0, 2))
    result["trace/0/h"] = np.transpose(stacked["h"], (1, 0, 2))
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
    elif manifest["dialect"] == "block":
        ours = block_expected(manifest["model"], variables, inputs)
    else:
        raise AssertionError(f"{case_dir}: unknown dialect {manifest['dialect']}")
    return compare(case_dir, ours, expected, "TF")


def compare(case_dir, ours, expected, framework):
    """Check NumPy's float64 outputs `ours` against a case's recorded ones (from `framework`);
    raise AssertionError naming case and output on mismatch.

    Returns (max relative float64 error vs the framework, max abs float32-vs-float64 distance of it).
    """
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
            raise AssertionError(f"{case_dir}: {name}: NumPy float64 differs from {framework} float64 by "
                                 f"{rel64:.3g} (rel)")
        if rel32 > FLOAT32_SANITY_REL:
            raise AssertionError(f"{case_dir}: {name}: {framework} float32 differs from {framework} float64 by "
                                 f"{rel32:.3g} (rel)")
        worst64 = max(worst64, rel64)
        worst32 = max(worst32, float(np.max(np.abs(tf32 - tf64), initial=0.0)))
    return worst64, worst32


def check_suite(suite_dir, check=check_case, label="tf"):
    """Check every case in a suite folder with `check`; print one summary line; return the number of cases."""
    suite_dir = pathlib.Path(suite_dir)
    cases = sorted(p.parent for p in suite_dir.glob("*/case.json"))
    if not cases:
        raise AssertionError(f"{suite_dir}: no cases")
    worst64 = worst32 = 0.0
    for case_dir in cases:
        rel64, abs32 = check(case_dir)
        worst64, worst32 = max(worst64, rel64), max(worst32, abs32)
    print(f"numpy check {suite_dir.name}: {len(cases)} cases ok; max rel |numpy64 - {label}64| = {worst64:.3g}, "
          f"max |{label}32 - {label}64| = {worst32:.3g}")
    return len(cases)
