"""Run and record the tf1 cases (lstm_record/tf1_cases.py) with TensorFlow's TF1 cells.

Imported after the environment is set (TF_USE_LEGACY_KERAS=1, see
recorder.py): `tf.compat.v1.nn.rnn_cell.{BasicLSTMCell, LSTMCell, MultiRNNCell}`
with a direct cell call, `tf.compat.v1.nn.dynamic_rnn`, `static_rnn`,
`bidirectional_dynamic_rnn` or `static_bidirectional_rnn`, in graph mode.

Every case is built twice, as a float32 graph and as a float64 graph, with the
same float32-valued weights (widened exactly for float64). Weights are assigned
to the real TF variables, found by name in `trainable_variables()`. Per-step
states come from TF: the same cell objects are wrapped in `_TraceCell`, whose
output is `[output, c0, h0, c1, h1, ...]`, and run through the same API with the
variables reused (the wrapper adds no variable scope; the variable list is
checked to be unchanged). Past a row's sequence_length TF zeroes that output,
so there the trace is filled with TF's final state of the row (the carried
state), as reference/README.md asks. The backward trace of a bidirectional
runner is put into processing order (TF returns it re-reversed).
"""

import contextlib
import pathlib

import numpy as np
import tensorflow as tf

from lstm_record import SCRIPTS_DIR, determinism, numpy_lstm, recorder, reduced, traps
from lstm_record.notebook_print import notebook003_printed
from lstm_record.tf1_cases import (
    BIDIRECTIONAL_APIS, all_cases, check_bites, grid_coverage, layer_specs, out_size, state_width)

v1 = tf.compat.v1
DIRECTIONS = (("fw", "cell"), ("bw", "cell_bw"))


def make_tf_cell(spec):
    tuple_state = spec.get("state_is_tuple", True)
    if spec["class"] == "BasicLSTMCell":
        return v1.nn.rnn_cell.BasicLSTMCell(spec["num_units"], forget_bias=spec["forget_bias"],
                                            activation=spec["activation"], state_is_tuple=tuple_state)
    return v1.nn.rnn_cell.LSTMCell(
        spec["num_units"], forget_bias=spec["forget_bias"], activation=spec["activation"],
        use_peepholes=spec["use_peepholes"], cell_clip=spec["cell_clip"], num_proj=spec["num_proj"],
        proj_clip=spec["proj_clip"], state_is_tuple=tuple_state)


def build_cell(spec):
    """(the TF cell of a spec, its LSTM cells first to last): MultiRNNCell, wrappers, LSTM cells."""
    if spec["class"] == "MultiRNNCell":
        parts = [build_cell(c) for c in spec["cells"]]
        top = v1.nn.rnn_cell.MultiRNNCell([cell for cell, _ in parts],
                                          state_is_tuple=spec.get("state_is_tuple", True))
        return top, [lstm_cell for _, cells in parts for lstm_cell in cells]
    if spec["class"] == "ResidualWrapper":
        inner, cells = build_cell(spec["cell"])
        return v1.nn.rnn_cell.ResidualWrapper(inner), cells
    if spec["class"] == "DropoutWrapper":
        inner, cells = build_cell(spec["cell"])
        return v1.nn.rnn_cell.DropoutWrapper(
            inner, input_keep_prob=spec["input_keep_prob"], output_keep_prob=spec["output_keep_prob"],
            state_keep_prob=spec["state_keep_prob"], seed=spec["seed"]), cells
    cell = make_tf_cell(spec)
    return cell, [cell]


def initial_nest(cell_spec, ph, prefix):
    """The initial state as TF's nest for `cell_spec` from placeholders (numpy_lstm.state_groups names), or None."""
    groups = numpy_lstm.state_groups(cell_spec, prefix)
    if not any(name in ph for name, _ in groups):
        return None
    if len(groups) == 1:  # MultiRNNCell(state_is_tuple=False): one tensor for the stack
        return ph[groups[0][0]]
    per_layer = {}
    for name, parts in groups:
        if len(parts) == 1:
            per_layer.setdefault(parts[0][0], {})[parts[0][1]] = ph[name]
        else:
            per_layer[parts[0][0]] = ph[name]
    states = tuple(v1.nn.rnn_cell.LSTMStateTuple(s["c"], s["h"]) if isinstance(s, dict) else s
                   for _, s in sorted(per_layer.items()))
    return states if cell_spec["class"] == "MultiRNNCell" else states[0]


def named_states(cell_spec, flat, prefix):
    """({native name: array}, {prefix/<layer>/<c|h>: array}) from TF's flattened final state."""
    groups = numpy_lstm.state_groups(cell_spec, prefix)
    if len(flat) != len(groups):
        raise AssertionError(f"{len(flat)} state tensors for {len(groups)} names")
    named = {name: value for (name, _), value in zip(groups, flat)}
    per_layer = numpy_lstm.split_states(cell_spec, named, prefix)
    return named, {f"{prefix}/{index}/{part}": value for (index, part), value in per_layer.items()}


def check_residual_refusal():
    """TF refuses a ResidualWrapper whose cell's output size differs from its input size (graph build time)."""
    graph = tf.Graph()
    with graph.as_default():
        cell = v1.nn.rnn_cell.ResidualWrapper(v1.nn.rnn_cell.LSTMCell(5))
        try:
            v1.nn.dynamic_rnn(cell, v1.placeholder(tf.float32, (2, 3, 4)), dtype=tf.float32)
        except ValueError as error:
            return str(error)
    raise AssertionError("ResidualWrapper(LSTMCell(5)) on 4 input features was accepted")


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


REDUCED_DTYPES = (tf.float16, tf.bfloat16)  # reduced-precision runs (lstm_record/reduced.py)


def _placeholders(case, dtype):
    """Placeholders of the case's inputs and their feeds.

    float32/float64: float inputs fed in `dtype`. float16/bfloat16: fed as the case's float32
    values and cast in the graph with tf.cast (round to nearest even). int32 inputs as they are.
    """
    feeds, ph = {}, {}
    for name, value in case["inputs"].items():
        if value.dtype == np.int32:
            ph[name] = v1.placeholder(tf.int32, value.shape, name=name.replace("/", "_"))
            feeds[ph[name]] = value
        elif dtype in REDUCED_DTYPES:
            fed = v1.placeholder(tf.float32, value.shape, name=name.replace("/", "_"))
            feeds[fed] = value.astype(np.float32)
            ph[name] = tf.cast(fed, dtype)
        else:
            ph[name] = v1.placeholder(dtype, value.shape, name=name.replace("/", "_"))
            feeds[ph[name]] = value.astype(dtype.as_numpy_dtype)
    return ph, feeds


def _variables(case, cells_by_prefix):
    """({key prefix + (layer, role): native name}, {native name: variable}), checked against the case's weights."""
    names = {}
    for prefix, cells in cells_by_prefix:
        for index, cell in enumerate(cells):
            for variable in cell.trainable_weights:
                names[(*prefix, index, variable_role(variable, cell))] = variable.name[: -len(":0")]
    by_name = {v.name[: -len(":0")]: v for v in v1.trainable_variables()}
    if set(by_name) != set(names.values()) or set(names) != set(case["weights"]):
        raise AssertionError(f"{case['name']}: variables {sorted(by_name)} vs roles {sorted(names)}")
    return names, by_name


def _traced(case, run_api, tops):
    """Run the API again on the trace-wrapped cells, reusing (never adding) variables."""
    variables_before = [v.name for v in v1.trainable_variables()]
    with v1.variable_scope(v1.get_variable_scope(), reuse=True):
        trace_outputs, _ = run_api(*(_TraceCell(top) for top in tops))
    if [v.name for v in v1.trainable_variables()] != variables_before:
        raise AssertionError(f"{case['name']}: the trace wrapper created or renamed variables")
    return trace_outputs


def _run_session(graph, names, by_name, case, dtype, fetches, feeds, grappler=True):
    """Assign every variable its case value in one session run, then fetch in a second.

    One run for all assignments and one for the outputs (which also reads the
    variables back to check them) keeps recording fast: each new fetch signature
    costs the session a graph optimisation. float16/bfloat16 variables are assigned
    the case's float32 values cast with tf.cast. `grappler=False` turns Grappler's
    meta optimizer off (only to measure what it changes in a reduced-precision run).
    """
    values = {native: case["weights"][key].astype(dtype.as_numpy_dtype) for key, native in names.items()}
    assign_feeds, assigns = {}, []
    for key, native in names.items():
        fed_dtype = tf.float32 if dtype in REDUCED_DTYPES else dtype
        value = case["weights"][key].astype(fed_dtype.as_numpy_dtype)
        placeholder = v1.placeholder(fed_dtype, value.shape, name="assign_" + native.replace("/", "_"))
        assign_feeds[placeholder] = value
        assigns.append(v1.assign(by_name[native], tf.cast(placeholder, dtype) if fed_dtype != dtype else placeholder))
    assign = tf.group(*assigns)
    config = determinism.session_config(tf)
    if not grappler:
        config.graph_options.rewrite_options.disable_meta_optimizer = True
    with v1.Session(graph=graph, config=config) as session:
        session.run(assign, feed_dict=assign_feeds)
        result = session.run({"fetches": fetches, "variables": by_name}, feed_dict=feeds)
    for native, value in values.items():
        if not np.array_equal(result["variables"][native], value):
            raise AssertionError(f"variable {native} does not hold its assigned value")
    return result["fetches"]


def run_tf(case, dtype, grappler=True):
    """Build and run one case in `dtype`; return (outputs, {(layer, role): native name})."""
    specs = layer_specs(case["cell"])
    api = case["api"]
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        ph, feeds = _placeholders(case, dtype)
        top, layer_cells = build_cell(case["cell"])
        if case.get("unused_multi_rnn_cell"):
            # notebook-000 as written: MultiRNNCell([LSTMCell(4), LSTMCell(4)]) is built but the
            # last LSTMCell alone goes to dynamic_rnn (the MultiRNNCell is never called).
            v1.nn.rnn_cell.MultiRNNCell([make_tf_cell(specs[0]), top])
        if case.get("initial_state_as_list"):
            initial = [ph["initial_state/0/c"], ph["initial_state/0/h"]]  # notebook-003: [initial_ltm, initial_stm]
        elif case.get("initial_state_as_tuple"):
            initial = (ph["initial_state/0/c"], ph["initial_state/0/h"])  # notebook-000/1/4: state = (zeros, zeros)
        else:
            initial = initial_nest(case["cell"], ph, "initial_state")
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
        fetches = {"outputs": outputs, "state": tf.nest.flatten(final_state)}  # state: [c0, h0, c1, h1, ...]
        if api != "cell_call":
            fetches["trace"] = _traced(case, run_api, [top])
        names, by_name = _variables(case, [((), layer_cells)])
        result = _run_session(graph, names, by_name, case, dtype, fetches, feeds, grappler)
    return collect_outputs(case, result), names


def _fill_traces(case, named, finals, trace, lengths, specs, prefix="", reverse=False):
    """Split the trace wrapper's batch-major states into {prefix}trace/<layer>/<c|h>.

    `reverse`: the backward runner's trace, in input order, is put into processing order.
    Past a row's length the trace holds TF's final state of the row (the carried state).
    """
    if reverse:
        trace = trace.copy()
        for row in range(trace.shape[0]):
            trace[row, :lengths[row]] = trace[row, :lengths[row]][::-1]
    offset = out_size(specs[-1])
    for index, spec in enumerate(specs):
        for name, size in (("c", spec["num_units"]), ("h", out_size(spec))):
            per_step = trace[..., offset:offset + size].copy()
            final = finals[f"{prefix}state/{index}/{name}"]
            for row in range(trace.shape[0]):
                if lengths[row] > 0 and not np.array_equal(per_step[row, lengths[row] - 1], final[row]):
                    raise AssertionError(f"{case['name']}: {prefix}trace at the last valid step != final state")
                per_step[row, lengths[row]:] = final[row]  # carried state past the row's length
            named[f"{prefix}trace/{index}/{name}"] = per_step
            offset += size


def _lengths(case, trace):
    lengths = case["inputs"].get("sequence_length")
    return np.full(trace.shape[0], trace.shape[1]) if lengths is None else lengths


def _check_trace_output(case, trace, outputs, width, what=""):
    if not np.array_equal(trace[..., :width], outputs):
        raise AssertionError(f"{case['name']}: {what}trace wrapper output differs from the API's outputs")


def collect_outputs(case, result):
    """Turn raw fetches into the case's named outputs (batch-major traces, carried-state fill)."""
    specs = layer_specs(case["cell"])
    api, batch_major = case["api"], case["api"] == "dynamic_rnn" and not case["time_major"]
    named, finals = named_states(case["cell"], result["state"], "state")
    if api == "cell_call":
        named["output"] = result["outputs"]
        for index in range(len(specs)):
            for name in ("c", "h"):
                named[f"trace/{index}/{name}"] = finals[f"state/{index}/{name}"][:, None, :]
        return named
    named["outputs"] = result["outputs"]
    trace = result["trace"] if batch_major else np.transpose(result["trace"], (1, 0, 2))
    outputs_bm = result["outputs"] if batch_major else np.transpose(result["outputs"], (1, 0, 2))
    _check_trace_output(case, trace, outputs_bm, out_size(specs[-1]))
    _fill_traces(case, named, finals, trace, _lengths(case, trace), specs)
    return named


def run_tf_bidirectional(case, dtype, grappler=True):
    """bidirectional_dynamic_rnn / static_bidirectional_rnn in `dtype`.

    Returns (outputs, {(direction, layer, role): native name}).
    """
    api = case["api"]
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        ph, feeds = _placeholders(case, dtype)
        cells, tops, initial = {}, {}, {}
        for direction, key in DIRECTIONS:
            tops[direction], cells[direction] = build_cell(case[key])
            initial[direction] = initial_nest(case[key], ph, f"initial_state_{direction}")
        seq_len = ph.get("sequence_length")

        def run_api(cell_fw, cell_bw):
            if api == "bidirectional_dynamic_rnn":
                outputs, states = v1.nn.bidirectional_dynamic_rnn(
                    cell_fw, cell_bw, ph["inputs"], sequence_length=seq_len, initial_state_fw=initial["fw"],
                    initial_state_bw=initial["bw"], dtype=dtype, time_major=case["time_major"])
                return list(outputs), states
            outputs, state_fw, state_bw = v1.nn.static_bidirectional_rnn(
                cell_fw, cell_bw, tf.unstack(ph["inputs"]), initial_state_fw=initial["fw"],
                initial_state_bw=initial["bw"], dtype=dtype, sequence_length=seq_len)
            return tf.stack(outputs), (state_fw, state_bw)

        outputs, (state_fw, state_bw) = run_api(tops["fw"], tops["bw"])
        fetches = {"outputs": outputs, "trace": _traced(case, run_api, [tops["fw"], tops["bw"]]),
                   "fw_state": tf.nest.flatten(state_fw), "bw_state": tf.nest.flatten(state_bw)}
        names, by_name = _variables(case, [((d,), cells[d]) for d, _ in DIRECTIONS])
        result = _run_session(graph, names, by_name, case, dtype, fetches, feeds, grappler)
    return collect_bidirectional(case, result), names


def collect_bidirectional(case, result):
    """Named outputs of a bidirectional case: batch-major traces, bw in processing order, carried fill."""
    api = case["api"]
    specs = {direction: layer_specs(case[key]) for direction, key in DIRECTIONS}
    width = {direction: out_size(specs[direction][-1]) for direction in specs}
    batch_major = api == "bidirectional_dynamic_rnn" and not case["time_major"]

    def to_batch_major(array):
        return array if batch_major else np.transpose(array, (1, 0, 2))

    named, finals = {}, {}
    for direction, key in DIRECTIONS:
        native, per_layer = named_states(case[key], result[f"{direction}_state"], f"{direction}/state")
        named.update(native)
        finals.update(per_layer)
    if api == "bidirectional_dynamic_rnn":
        named["outputs_fw"], named["outputs_bw"] = result["outputs"]
        outs = {"fw": to_batch_major(result["outputs"][0]), "bw": to_batch_major(result["outputs"][1])}
        traces = {"fw": to_batch_major(result["trace"][0]), "bw": to_batch_major(result["trace"][1])}
    else:
        named["outputs"] = result["outputs"]
        outs_bm, trace_bm = to_batch_major(result["outputs"]), to_batch_major(result["trace"])
        outs = {"fw": outs_bm[..., :width["fw"]], "bw": outs_bm[..., width["fw"]:]}
        split = width["fw"] + state_width(case["cell"])
        traces = {"fw": trace_bm[..., :split], "bw": trace_bm[..., split:]}
    lengths = _lengths(case, traces["fw"])
    for direction in ("fw", "bw"):
        _check_trace_output(case, traces[direction], outs[direction], width[direction], f"{direction} ")
        _fill_traces(case, named, finals, traces[direction], lengths, specs[direction], f"{direction}/",
                     direction == "bw")
    return named


def model_json(case, names):
    """The case.json model: the case's cell specs, each with its variables' native names."""
    def cell_json(cell, prefix):
        layers = iter(range(len(layer_specs(cell))))

        def walk(spec):
            if spec["class"] == "MultiRNNCell":
                return {**spec, "cells": [walk(c) for c in spec["cells"]]}
            if spec["class"] in numpy_lstm.TF1_WRAPPERS:
                return {**spec, "cell": walk(spec["cell"])}
            index = next(layers)
            entry = dict(spec)
            entry["variables"] = {key[-1]: native for key, native in names.items() if key[:-1] == (*prefix, index)}
            return entry
        return walk(cell)

    bidirectional = case["api"] in BIDIRECTIONAL_APIS
    model = {"api": case["api"], "cell": cell_json(case["cell"], ("fw",) if bidirectional else ())}
    if bidirectional:
        model["cell_bw"] = cell_json(case["cell_bw"], ("bw",))
    if case["api"] in ("dynamic_rnn", "bidirectional_dynamic_rnn"):
        model["time_major"] = case["time_major"]
    return model


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


REDUCED_HOW = ("TF1 {api} graph in {dtype} (Grappler on, the default session config; one thread): "
               "the cells create their variables in {dtype}, assigned the case's float32 values cast with "
               "tf.cast (round to nearest even); float inputs and initial states fed as float32 and cast "
               "with tf.cast; sequence_length int32 as it is")


class Tf1Recorder(recorder.Recorder):
    dialect = "tf1"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--seeds", type=pathlib.Path, default=SCRIPTS_DIR / "seeds",
                            help="folder with the seed notebooks (default scripts/seeds)")

    def cases(self):
        check_residual_refusal()
        cases = all_cases()
        self.coverage = grid_coverage([case for case in cases if case.get("generator") == "grid"])
        return cases

    def record(self, case, suite_dir):
        """Record one case; its "margins": {variant: max |wrong - tf64|} of a canary."""
        run = run_tf_bidirectional if case["api"] in BIDIRECTIONAL_APIS else run_tf
        out32, names = run(case, tf.float32)
        out64, names64 = run(case, tf.float64)
        assert names == names64, "float32 and float64 graphs name their variables differently"
        check_clip(case, out64)
        check_bites(case, out64)
        if case.get("generator") in ("canary", "grid"):
            worst = max((float(np.max(np.abs(v), initial=0.0)) for v in out64.values()), default=0.0)
            if not worst < 1e3:
                raise AssertionError(f"{case['name']}: outputs reach {worst:.3g}; keep the grid's values moderate")
        variables = {names[key]: case["weights"][key] for key in names}
        writer = self.writer(case, model_json(case, names), case["notes"], variables, out32, out64)
        if self.wants_reduced(case):
            self.add_reduced(writer, *self.run_reduced(case, run, names, out64))
        if case["name"] == "nb003-numpy-vs-static-rnn":
            printed = notebook003_printed((self.args.seeds / "notebook-003.txt").read_text(encoding="utf-8"))
            writer.manifest["notebook_printed"] = notebook003_section(writer, printed, out32)
        case_dir = writer.write(suite_dir)
        return {"margins": traps.assert_traps_bite(case_dir, case["traps"]) if case.get("traps") else {}}

    def run_reduced(self, case, run, names, out64):
        """(runs, notes) of the case's reduced-precision sidecar: the same graph in float16 and in bfloat16."""
        runs, notes = {}, []
        peepholes = any(spec.get("use_peepholes") for key in ("cell", "cell_bw") if key in case
                        for spec in layer_specs(case[key]))
        for dtype in REDUCED_DTYPES:
            outputs, reduced_names = run(case, dtype)
            if reduced_names != names or set(outputs) != set(out64):
                raise AssertionError(f"{case['name']}: the {dtype.name} graph differs from the float32 one")
            runs[dtype.name] = {"how": REDUCED_HOW.format(api=case["api"], dtype=dtype.name), "outputs": outputs}
            if peepholes:
                plain, _ = run(case, dtype, grappler=False)
                worst = max(reduced.ulp16(outputs[name], plain[name], dtype.name) for name in outputs)
                notes.append(f"{dtype.name}: with Grappler's meta optimizer off the peephole graph gives "
                             f"results up to {worst} ULP away from this default-config run.")
        return runs, " ".join(notes) or "Recorded with the default session config (Grappler on)."

    def check_suite(self, suite_dir):
        numpy_lstm.check_suite(suite_dir)

    def summary(self, cases, results, seconds):
        counts = {kind: sum(case.get("generator") == kind for case in cases) for kind in ("canary", "grid")}
        return ["tf1 grid coverage: " + ", ".join(f"{k} {v}" for k, v in sorted(self.coverage.items())),
                f"tf1: recorded {len(cases)} cases ({counts['canary']} canaries, {counts['grid']} grid) "
                f"in {seconds:.1f} s"]
