"""Run and record the block cases (lstm_record/block_cases.py): TensorFlow's fused LSTM kernels as raw ops.

`tf.raw_ops.LSTMBlockCell`, `BlockLSTM` and `BlockLSTMV2`, called with their
own inputs and attrs (reference/README.md, "Dialect block"; docs/semantics.md
§5). The float32 expectation is the op's own output. The ops have no
float64 kernel (TF 2.21 accepts only float16/float32), so the float64
expectation comes from an equivalent float64 TensorFlow computation:

* `cs`, `h` (and the traces): the same float32 weights, widened, in a TF1
  `LSTMCell` run by `dynamic_rnn` in float64 (time-major, `seq_len_max` steps,
  initial state `(cs_prev, h_prev)`), through `tf1_runner.run_tf`, whose trace
  wrapper gives the per-step states. Gate blocks: ICFO is already TF1's
  i, j, f, o; BlockLSTMV2's IFCO is reordered. forget_bias: the attr (V2: 0).
  cell_clip: the attr, or the op default when not passed (3.0; V2 0.0), and a
  clip <= 0 becomes `cell_clip=None`. Peepholes wci, wcf, wco become
  w_i_diag, w_f_diag, w_o_diag.
* `i`, `f`, `o`, `ci`, `co`: `tf.sigmoid` / `tf.tanh` in float64 on the
  float64 pre-activations `[x_t, h_{t-1}] @ w + b` built from those float64
  states (peepholes: i and f on c_{t-1}, o on the new c_t).

Imported after the environment is set (TF_USE_LEGACY_KERAS=1: the float64
equivalent uses the TF1 cells; see recorder.py).
"""

import numpy as np
import tensorflow as tf

from lstm_record import numpy_lstm, recorder, traps
from lstm_record.block_cases import all_cases, clip_bites, equivalent_lstm_cell, grid_coverage, model_json
from lstm_record.tf1_runner import run_tf

OUTPUT_NAMES = ("i", "cs", "f", "o", "ci", "co", "h")  # the ops' outputs, in op order
GATE_NAMES = ("i", "f", "o", "ci", "co")  # cut to seq_len_max steps (the op leaves later steps uninitialised)


# ------------------------------------------------------------------ float32: the op itself


def run_op(case, dtype=tf.float32):
    """The raw op in `dtype` (eager); outputs as reference/README.md names and cuts them.

    float32: the case's arrays as they are. float16 (a reduced-precision run): the float32
    weights and inputs cast with `tf.cast` (round to nearest even) and the op run on them.
    """
    op, weights, inputs = case["op"], case["weights"], case["inputs"]

    def tensor(value):
        return tf.cast(tf.constant(value), dtype) if dtype != tf.float32 else tf.constant(value)

    kwargs = {name: tensor(weights[name]) for name in ("w", "b", "wci", "wcf", "wco")}
    kwargs.update({name: tensor(inputs[name]) for name in ("x", "cs_prev", "h_prev")})
    kwargs["use_peephole"] = case["use_peephole"]
    if op != "BlockLSTMV2":
        kwargs["forget_bias"] = case["forget_bias"]
    if case["cell_clip"] is not None:  # None: the attr is not passed (the op default applies)
        kwargs["cell_clip"] = case["cell_clip"]
    if op != "LSTMBlockCell":
        kwargs["seq_len_max"] = tf.constant(int(inputs["seq_len_max"]), tf.int64)  # the op takes int64
    result = getattr(tf.raw_ops, op)(**kwargs)
    raw = {name: result[k].numpy() for k, name in enumerate(OUTPUT_NAMES)}
    if any(value.dtype != dtype.as_numpy_dtype for value in raw.values()):
        raise AssertionError(f"{case['name']}: the op returned {[v.dtype for v in raw.values()]}")
    if op == "LSTMBlockCell":
        named = dict(raw)
        named["trace/0/c"], named["trace/0/h"] = raw["cs"][:, None, :], raw["h"][:, None, :]
        return named
    steps = int(inputs["seq_len_max"])
    for name in ("cs", "h"):
        if np.any(raw[name][steps:] != 0):
            raise AssertionError(f"{case['name']}: the op did not zero {name} at steps >= seq_len_max")
    named = {name: raw[name][:steps] for name in GATE_NAMES}
    named["cs"], named["h"] = raw["cs"], raw["h"]
    named["trace/0/c"] = np.transpose(raw["cs"][:steps], (1, 0, 2))
    named["trace/0/h"] = np.transpose(raw["h"][:steps], (1, 0, 2))
    return named


# ------------------------------------------------------------------ float64: the equivalent TF computation


def run_float64(case):
    """Every output in float64 from TF float64 ops (see the module docstring)."""
    inputs, weights = case["inputs"], case["weights"]
    cell = case["op"] == "LSTMBlockCell"
    x = inputs["x"][None] if cell else inputs["x"][: int(inputs["seq_len_max"])]
    spec, cell_weights = equivalent_lstm_cell(case)
    tf1_case = {"name": f"{case['name']} (float64 LSTMCell equivalent)", "api": "dynamic_rnn", "time_major": True,
                "cell": spec, "weights": cell_weights,
                "inputs": {"inputs": x, "initial_state/0/c": inputs["cs_prev"], "initial_state/0/h": inputs["h_prev"]}}
    states, _ = run_tf(tf1_case, tf.float64)
    c = np.transpose(states["trace/0/c"], (1, 0, 2))  # [steps, batch, units]
    h = np.transpose(states["trace/0/h"], (1, 0, 2))
    w64 = {name: weights[name].astype(np.float64) for name in weights}
    steps = c.shape[0]  # [:steps]: no step at all when seq_len_max is 0
    c_prev = np.concatenate([inputs["cs_prev"].astype(np.float64)[None], c[:-1]], axis=0)[:steps]
    h_prev = np.concatenate([inputs["h_prev"].astype(np.float64)[None], h[:-1]], axis=0)[:steps]
    xh = tf.concat([tf.constant(x.astype(np.float64)), tf.constant(h_prev)], axis=2)
    z = tf.einsum("tbk,kg->tbg", xh, tf.constant(w64["w"])) + tf.constant(w64["b"])
    z_i, z_1, z_2, z_o = tf.split(z, 4, axis=2)
    z_f, z_c = (z_1, z_2) if case["op"] == "BlockLSTMV2" else (z_2, z_1)
    forget_bias, cell_clip = numpy_lstm.block_effective(model_json(case))
    if case["use_peephole"]:
        i = tf.sigmoid(z_i + w64["wci"] * c_prev)
        f = tf.sigmoid(z_f + forget_bias + w64["wcf"] * c_prev)
        o = tf.sigmoid(z_o + w64["wco"] * c)
    else:
        i, f, o = tf.sigmoid(z_i), tf.sigmoid(z_f + forget_bias), tf.sigmoid(z_o)
    ci, co = tf.tanh(z_c), tf.tanh(tf.constant(c))
    gates = {"i": i.numpy(), "f": f.numpy(), "o": o.numpy(), "ci": ci.numpy(), "co": co.numpy()}
    # the gates and the LSTMCell's states must tell the same story
    new_c = gates["f"] * c_prev + gates["i"] * gates["ci"]
    if cell_clip is not None:
        new_c = np.clip(new_c, -cell_clip, cell_clip)
    for what, ours, theirs in (("cs", new_c, c), ("h", gates["o"] * gates["co"], h)):
        if ours.size and np.max(np.abs(ours - theirs)) > 1e-14 * max(1.0, float(np.max(np.abs(theirs)))):
            raise AssertionError(f"{case['name']}: float64 gates do not reproduce the LSTMCell's {what}")
    if cell:
        named = {name: value[0] for name, value in gates.items()}
        named["cs"], named["h"] = c[0], h[0]
    else:
        named = dict(gates)
        time_steps = inputs["x"].shape[0]
        for name, value in (("cs", c), ("h", h)):
            full = np.zeros((time_steps,) + value.shape[1:])
            full[: value.shape[0]] = value
            named[name] = full
    named["trace/0/c"], named["trace/0/h"] = states["trace/0/c"], states["trace/0/h"]
    return named


# ------------------------------------------------------------------ reduced precision

REDUCED_HOW = ("tf.raw_ops.{op} with T=float16: the case's float32 weights and inputs (x, cs_prev, h_prev) "
               "cast with tf.cast (round to nearest even); seq_len_max int64; the same attrs as the float32 run")


def run_reduced(case):
    """(runs, notes) of the case's reduced-precision sidecar: float16 only (no bfloat16 kernel)."""
    runs = {"float16": {"how": REDUCED_HOW.format(op=case["op"]), "outputs": run_op(case, tf.float16)}}
    try:
        run_op(case, tf.bfloat16)
    except tf.errors.InvalidArgumentError as error:
        refusal = " ".join(str(error).split())
    else:
        raise AssertionError(f"{case['name']}: {case['op']} ran in bfloat16; record it")
    notes = (f"No bfloat16 run: TensorFlow {tf.__version__} has no bfloat16 kernel for {case['op']} "
             f"(InvalidArgumentError: {refusal}).")
    return runs, notes


# ------------------------------------------------------------------ recording


class BlockRecorder(recorder.Recorder):
    dialect = "block"
    default_jobs = staticmethod(lambda: 1)
    jobs_help = ("worker processes (default 1: the block cases are cheap and a worker's start-up is not); "
                 "the recording does not depend on it")

    def cases(self):
        cases = all_cases()
        self.coverage = grid_coverage([case for case in cases if case["generator"] == "grid"])
        return cases

    def record(self, case, suite_dir):
        """Record one case; its "margins" (a canary's) and "worst32": max |op float32 - float64 equivalent|."""
        out32 = run_op(case)
        out64 = run_float64(case)
        if set(out32) != set(out64):
            raise AssertionError(f"{case['name']}: outputs {sorted(out32)} vs {sorted(out64)}")
        if case["bites"] and not clip_bites(case, out64):
            raise AssertionError(f"{case['name']}: the cell clip never bites")
        worst = 0.0
        for name in out32:
            if out32[name].shape != out64[name].shape:
                raise AssertionError(f"{case['name']}: {name} shapes {out32[name].shape} vs {out64[name].shape}")
            if out32[name].size:
                worst = max(worst, float(np.max(np.abs(out32[name] - out64[name]))))
        writer = self.writer(case, model_json(case), case["notes"], case["weights"], out32, out64)
        if self.wants_reduced(case):
            self.add_reduced(writer, *run_reduced(case))
        case_dir = writer.write(suite_dir)
        margins = traps.assert_traps_bite(case_dir, case["traps"]) if case["traps"] else {}
        return {"margins": margins, "worst32": worst}

    def check_suite(self, suite_dir):
        numpy_lstm.check_suite(suite_dir)

    def summary(self, cases, results, seconds):
        counts = {kind: sum(case["generator"] == kind for case in cases) for kind in ("canary", "grid")}
        worst32 = max((result["worst32"] for result in results.values()), default=0.0)
        return [f"block: max |op float32 - float64 equivalent| = {worst32:.3g}",
                "block grid coverage: " + ", ".join(f"{k} {v}" for k, v in sorted(self.coverage.items())),
                f"block: recorded {len(cases)} cases ({counts['canary']} canaries, {counts['grid']} grid) "
                f"in {seconds:.1f} s"]
