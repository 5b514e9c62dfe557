"""The cases of the `block` suite, as data: raw-op attrs, weights, inputs.

No TensorFlow here (lstm_record/block_runner.py runs the cases). A case is a
dict: `name`, `op` (LSTMBlockCell, BlockLSTM, BlockLSTMV2), its attrs
`forget_bias` (None for V2), `cell_clip` (None: not passed) and `use_peephole`,
`weights` (w, b, wci, wcf, wco), `inputs` (x, cs_prev, h_prev, seq_len_max),
`description`, `notes`, and checks: `bites` (the cell clip must be reached) and
`traps` (wrong implementations a canary must catch, see traps.py).

The ops have no float64 kernel; the float64 expectation is TF in float64 on an
equivalent TF1 LSTMCell (`equivalent_lstm_cell`), as each case's notes say.

Sections: the float64 equivalent; cases; canaries (one per known trap); the
seeded grid (grid-NNN-<tags>).
"""

import collections
import functools

import numpy as np

from lstm_record import numpy_lstm, traps
from lstm_record.tf1_cases import lstm
from lstm_record.weights import Generator, assert_coverage, grid_size, shrink_to_cap

OPS = numpy_lstm.BLOCK_OPS
IFCO_TO_ICFO = (0, 2, 1, 3)  # block k of the ICFO array is block IFCO_TO_ICFO[k] of the IFCO array
PEEPHOLE_ROLES = {"wci": "w_i_diag", "wcf": "w_f_diag", "wco": "w_o_diag"}


# ------------------------------------------------------------------ the float64 equivalent

def equivalent_lstm_cell(case):
    """The TF1 LSTMCell spec and weights that compute what the op computes."""
    weights = case["weights"]
    units = weights["b"].shape[0] // 4
    forget_bias, cell_clip = numpy_lstm.block_effective(model_json(case))
    kernel, bias = weights["w"], weights["b"]
    if case["op"] == "BlockLSTMV2":
        kernel, bias = traps.permute_blocks(kernel, IFCO_TO_ICFO), traps.permute_blocks(bias, IFCO_TO_ICFO)
    spec = lstm(units, forget_bias=forget_bias, use_peepholes=case["use_peephole"], cell_clip=cell_clip)
    cell_weights = {(0, "kernel"): kernel, (0, "bias"): bias}
    if case["use_peephole"]:
        cell_weights.update({(0, role): weights[name] for name, role in PEEPHOLE_ROLES.items()})
    return spec, cell_weights


FLOAT64_NOTE = (
    "float64: the block ops have no float64 kernel, so the float64 expectation is TF in float64 on the same "
    "(widened) weights: cs, h and the traces from a tf.compat.v1 {cell} run by dynamic_rnn (time-major, "
    "{steps}, initial state (cs_prev, h_prev)) with kernel/bias = w/b{reorder}{peepholes}; i, f, o, ci, co from "
    "tf.sigmoid/tf.tanh in float64 on the float64 pre-activations [x_t, h_(t-1)] @ w + b built from those "
    "states (peepholes: i, f on c_(t-1), o on the new c_t). Checked at record time: f*c_prev + i*ci (clipped) "
    "and o*co reproduce the LSTMCell's cs and h to 1e-14, and the float64 NumPy LSTM of "
    "scripts/lstm_record/numpy_lstm.py agrees to 1e-12."
)


def float64_note(case):
    spec, _ = equivalent_lstm_cell(case)
    options = [f"{spec['num_units']}", f"forget_bias={spec['forget_bias']:g}"]
    if spec["use_peepholes"]:
        options.append("use_peepholes=True")
    options.append(f"cell_clip={spec['cell_clip']!r}")
    if case["cell_clip"] is None:
        clip = "not passed: the op default " + ("0.0" if case["op"] == "BlockLSTMV2" else "3.0")
    else:
        clip = f"{case['cell_clip']:g}"
    steps = "1 step" if case["op"] == "LSTMBlockCell" else "seq_len_max steps of x"
    return (FLOAT64_NOTE.format(
        cell=f"LSTMCell({', '.join(options)})", steps=steps,
        reorder=" with the IFCO gate blocks reordered to TF1's i, j, f, o" if case["op"] == "BlockLSTMV2"
        else " (ICFO is TF1's i, j, f, o)",
        peepholes="; w_i_diag, w_f_diag, w_o_diag = wci, wcf, wco" if case["use_peephole"] else "")
        + f" cell_clip attr {clip}; forget_bias "
        + ("none (V2: 0)." if case["op"] == "BlockLSTMV2" else f"attr {case['forget_bias']:g}."))


# ------------------------------------------------------------------ cases


def model_json(case):
    model = {"op": case["op"], "cell_clip": case["cell_clip"], "use_peephole": case["use_peephole"]}
    if case["op"] != "BlockLSTMV2":
        model["forget_bias"] = case["forget_bias"]
    return model


def build_case(name, *, seed, generator, op, units, batch, depth, steps=1, seq_len_max=None, forget_bias=1.0,
               cell_clip=None, use_peephole=False, initial_state=False, scale=1.0, input_range=1.0,
               bias_offsets=None, tweak=None, bites=False, traps_=(), notes=""):
    """A block case: x, then w, b, peepholes, then the initial state, all from default_rng(seed)."""
    for value in (forget_bias, cell_clip):
        assert value is None or float(np.float32(value)) == value, "use float32-exact attrs"
    assert op in OPS
    gen = Generator(seed)
    cell = op == "LSTMBlockCell"
    inputs = {"x": gen.uniform((batch, depth) if cell else (steps, batch, depth), -input_range, input_range)}
    weights = {"w": gen.weight((depth + units, 4 * units), scale, gates=4), "b": gen.weight((4 * units,), scale, gates=4)}
    for role in ("wci", "wcf", "wco"):  # zeros without peepholes, as the ops require them anyway
        weights[role] = gen.weight((units,), scale) if use_peephole else np.zeros(units, np.float32)
    if bias_offsets is not None:  # per gate block, in the op's own layout
        weights["b"] = (weights["b"] + np.repeat(np.asarray(bias_offsets, np.float32), units)).astype(np.float32)
    for part in ("cs_prev", "h_prev"):
        inputs[part] = gen.uniform((batch, units)) if initial_state else np.zeros((batch, units), np.float32)
    if not cell:
        seq_len_max = steps if seq_len_max is None else seq_len_max
        assert 0 <= seq_len_max <= steps, "seq_len_max > time crashes the op"
        inputs["seq_len_max"] = np.asarray(seq_len_max, dtype=np.int32)
    if tweak is not None:
        tweak(weights, inputs)
    case = {"name": name, "seed": seed, "generator": generator, "op": op, "use_peephole": use_peephole,
            "forget_bias": None if op == "BlockLSTMV2" else float(forget_bias),
            "cell_clip": None if cell_clip is None else float(cell_clip), "weights": weights, "inputs": inputs,
            "bites": bites, "traps": list(traps_)}
    shape = f"x [{batch}, {depth}]" if cell else f"x [{steps}, {batch}, {depth}], seq_len_max {inputs['seq_len_max']}"
    attrs = [] if op == "BlockLSTMV2" else [f"forget_bias={forget_bias:g}"]
    attrs.append("cell_clip not passed" if cell_clip is None else f"cell_clip={cell_clip:g}")
    attrs.append(f"use_peephole={use_peephole}")
    case["description"] = (f"tf.raw_ops.{op}({', '.join(attrs)}) with {units} units on {shape}, "
                           + ("random" if initial_state else "zero") + " initial state")
    case["notes"] = (f"Seeded {generator} case: weights uniform [-0.5, 0.5] * {scale:g}"
                     + (f" plus per-gate bias offsets in the op's layout {tuple(float(v) for v in bias_offsets)}"
                        if bias_offsets is not None else "")
                     + f", inputs uniform [-{input_range:g}, {input_range:g}] (float32), drawn with numpy "
                     f"default_rng({seed}) in the order x, w, b, peepholes, initial state. "
                     + (notes.rstrip() + " " if notes else "") + float64_note(case)
                     + ("" if cell else " i, f, o, ci, co are cut to seq_len_max steps (the op leaves later steps "
                        "uninitialised); cs and h keep all steps (zero from seq_len_max on, as the op writes them)."))
    return case


def numpy_preview(case):
    variables = {name: value.astype(np.float64) for name, value in case["weights"].items()}
    inputs = {name: value if value.dtype == np.int32 else value.astype(np.float64)
              for name, value in case["inputs"].items()}
    return numpy_lstm.block_expected(model_json(case), variables, inputs)


def clip_bites(case, outputs):
    _, clip = numpy_lstm.block_effective(model_json(case))
    return clip is not None and bool(np.any(np.abs(outputs["trace/0/c"]) == clip))


# ------------------------------------------------------------------ canaries

wrong_block = functools.partial(traps.wrong, numpy_lstm.block_expected)


def set_model(**changes):
    def change(model):
        model.update(changes)
        if model["op"] == "BlockLSTMV2":
            model.pop("forget_bias", None)
    return change


def permute_gates(order):
    def change(model, variables):
        return traps.permuted_variables(variables, ["w", "b"], order)
    return change


def v2_read_as_v1(forget_bias):
    """A BlockLSTMV2 case run as BlockLSTM (ICFO, a forget_bias) with the right weights and clip."""
    def wrong(model, variables, inputs):
        _, clip = numpy_lstm.block_effective(model)
        model.update({"op": "BlockLSTM", "forget_bias": forget_bias, "cell_clip": -1.0 if clip is None else clip})
        variables = traps.permuted_variables(variables, ["w", "b"], IFCO_TO_ICFO)
        return numpy_lstm.block_expected(model, variables, inputs)
    return wrong


def scale_weight(name, factor):
    def tweak(weights, inputs):
        weights[name] = (weights[name] * np.float32(factor)).astype(np.float32)
    return tweak


def scale_input(name, factor):
    def tweak(weights, inputs):
        inputs[name] = (inputs[name] * np.float32(factor)).astype(np.float32)
    return tweak


def canary_cases():
    def orders(letters):
        return [(f"gate blocks read in order {''.join(letters[k] for k in order)}", wrong_block(variables_change=permute_gates(order)))
                for order in traps.gate_permutations()]

    growing = (2.0, 2.0, 3.0, 1.0)  # ICFO offsets: i open, ci near 1, f near 1: c grows by ~0.8 per step
    table = [
        ("gate-order-icfo", "LSTMBlockCell/BlockLSTM gate layout i, c, f, o (ICFO): the blocks get clearly "
         "different biases, so any other order (IFCO of V2, Keras, ...) fails",
         dict(op="BlockLSTM", units=5, batch=3, depth=4, steps=6, cell_clip=-1.0, scale=2.0,
              bias_offsets=(1.5, 1.0, -1.5, 0.5)), orders("icfo"),
         "the w and b gate blocks read in each of the 23 other orders"),
        ("v2-order-ifco", "BlockLSTMV2 gate layout i, f, c, o (IFCO), unlike BlockLSTM",
         dict(op="BlockLSTMV2", units=5, batch=3, depth=4, steps=6, scale=2.0, bias_offsets=(1.5, -1.5, 1.0, 0.5)),
         orders("ifco"), "the w and b gate blocks read in each of the 23 other orders (ICFO among them)"),
        ("default-clip", "BlockLSTM called WITHOUT cell_clip clips the cell state at the op default 3.0 (|c| grows "
         "past 3: bias offsets open i and f and push ci to 1)",
         dict(op="BlockLSTM", units=4, batch=2, depth=3, steps=12, forget_bias=1.0, bias_offsets=growing, bites=True),
         [("unpassed cell_clip read as no clip", wrong_block(set_model(cell_clip=-1.0))),
          ("unpassed cell_clip read as 0.0 (V2 default)", wrong_block(set_model(cell_clip=0.0)))], None),
        ("cell-default-clip", "LSTMBlockCell called WITHOUT cell_clip clips at 3.0 (cs_prev scaled to |c| up to 6, "
         "forget gate open)",
         dict(op="LSTMBlockCell", units=4, batch=3, depth=3, forget_bias=1.0, initial_state=True,
              bias_offsets=growing, tweak=scale_input("cs_prev", 6.0), bites=True),
         [("unpassed cell_clip read as no clip", wrong_block(set_model(cell_clip=-1.0)))], None),
        ("clip-zero-no-clip", "BlockLSTM with cell_clip=0.0 does NOT clip (<= 0 means none; LSTMCell would clip "
         "to 0), with |c| growing past 3",
         dict(op="BlockLSTM", units=4, batch=2, depth=3, steps=10, cell_clip=0.0, bias_offsets=growing),
         [("cell_clip 0.0 read as clip to 0 (the LSTMCell rule)", wrong_block(set_model(cell_clip=1e-30))),
          ("cell_clip 0.0 read as not passed (default 3.0)", wrong_block(set_model(cell_clip=None)))], None),
        ("v2-default-no-clip", "BlockLSTMV2 called without cell_clip does not clip (its default is 0.0), with |c| "
         "growing past 3",
         dict(op="BlockLSTMV2", units=4, batch=2, depth=3, steps=10, bias_offsets=(2.0, 3.0, 2.0, 1.0)),
         [("BlockLSTM's default 3.0 applied", wrong_block(set_model(cell_clip=3.0)))], None),
        ("forget-bias-1", "forget_bias=1.0 is added at run time to the forget pre-activation (LSTMBlockCell, "
         "random cs_prev)",
         dict(op="LSTMBlockCell", units=4, batch=3, depth=3, forget_bias=1.0, cell_clip=-1.0, initial_state=True,
              scale=2.0, tweak=scale_input("cs_prev", 3.0)),
         [("forget_bias dropped (0)", wrong_block(set_model(forget_bias=0.0))),
          ("forget_bias added twice (2)", wrong_block(set_model(forget_bias=2.0)))], None),
        ("forget-bias-2.5", "forget_bias=2.5 is added at run time to the forget pre-activation (BlockLSTM)",
         dict(op="BlockLSTM", units=4, batch=2, depth=3, steps=8, forget_bias=2.5, cell_clip=-1.0,
              initial_state=True, scale=2.0),
         [("forget_bias 1.0 (default) used", wrong_block(set_model(forget_bias=1.0))),
          ("forget_bias dropped (0)", wrong_block(set_model(forget_bias=0.0)))], None),
        ("v2-no-forget-bias", "BlockLSTMV2 has no forget_bias: nothing is added to the forget pre-activation",
         dict(op="BlockLSTMV2", units=4, batch=2, depth=3, steps=8, initial_state=True, scale=2.0),
         [("forget_bias 1.0 added (V1 default)", v2_read_as_v1(1.0))], None),
        ("peephole-new-cs", "use_peephole with a cell_clip that bites: the output gate peeks at the NEW, clipped "
         "cs (wco scaled by 6)",
         dict(op="BlockLSTM", units=4, batch=2, depth=3, steps=6, cell_clip=0.5, use_peephole=True, scale=2.0,
              input_range=3.0, tweak=scale_weight("wco", 6.0), bites=True),
         [("output peephole on cs_prev", wrong_block(trap="peephole_o_on_cs_prev")),
          ("output peephole on the unclipped cs", wrong_block(trap="peephole_o_on_unclipped_cs")),
          ("cell_clip ignored", wrong_block(set_model(cell_clip=-1.0)))], None),
        ("seq-len-max", "seq_len_max well short of the time axis: every row runs exactly seq_len_max steps, cs and h "
         "are zero after them",
         dict(op="BlockLSTM", units=4, batch=2, depth=3, steps=10, seq_len_max=4, cell_clip=-1.0, scale=2.0),
         [("all time steps run", wrong_block(inputs_change=lambda i: i.update(
             seq_len_max=np.asarray(i["x"].shape[0], np.int32))))], None),
    ]
    cases = []
    for number, (trap, guards, options, variants, summary) in enumerate(table):
        summary = summary or "; ".join(label for label, _ in variants)
        case = build_case(f"canary-{trap}", seed=4000 + number, generator="canary", traps_=variants,
                          notes=f"Canary: {guards}. Wrong implementations that must fail it by more than "
                                f"{traps.MIN_MARGIN:g} (checked at record time with the NumPy LSTM): {summary}.",
                          **options)
        case["description"] = f"canary {trap}: " + case["description"]
        cases.append(case)
    return cases


# ------------------------------------------------------------------ grid

GRID_COUNT = 60
GRID_SEED = 40000
GRID_ATTEMPTS = 30
GRID_FORGET_BIASES = (1.0, 1.0, 0.0, 0.5, 2.5, -1.0)
FORGET_BIAS_TAGS = {0.0: "fb0", 0.5: "fb05", 2.5: "fb25", -1.0: "fbm1"}
OP_TAGS = {"LSTMBlockCell": "cell", "BlockLSTM": "blstm", "BlockLSTMV2": "blstm2"}
GRID_SIZE_CAP = 150  # batch * max(time, 1) * units: keeps the folder small


def grid_cases(count=GRID_COUNT):
    cases = []
    for number in range(1, count + 1):
        seed = GRID_SEED + number
        pick = np.random.default_rng((seed, 1))
        op = OPS[(number - 1) % 3]
        tags = [OP_TAGS[op]]
        forget_bias = GRID_FORGET_BIASES[pick.integers(len(GRID_FORGET_BIASES))]
        if op != "BlockLSTMV2" and forget_bias in FORGET_BIAS_TAGS:
            tags.append(FORGET_BIAS_TAGS[forget_bias])
        r = pick.random()
        bites = False
        if r < 0.35:
            cell_clip = None
            tags.append("clipdef")
        elif r < 0.50:
            cell_clip = -1.0
            tags.append("clipm1")
        elif r < 0.60:
            cell_clip = 0.0
            tags.append("clip0")
        elif r < 0.85:
            cell_clip, bites = (0.25, 0.5, 1.0)[pick.integers(3)], True
            tags.append("clip")
        else:
            cell_clip = (5.0, 10.0)[pick.integers(2)]
            tags.append("clipwide")
        use_peephole = bool(pick.random() < 0.45)
        if use_peephole:
            tags.append("peep")
        units, depth = grid_size(pick), grid_size(pick)
        r = pick.random()
        batch = int(pick.integers(1, 5)) if r < 0.65 else int(pick.integers(5, 9)) if r < 0.9 else int(pick.integers(9, 17))
        steps, seq_len_max = 1, None
        if op != "LSTMBlockCell":
            r = pick.random()
            steps = 0 if r < 0.07 else int(pick.integers(1, 9)) if r < 0.6 else int(pick.integers(9, 21)) if r < 0.8 \
                else int(pick.integers(21, 41))
        mode = pick.random()  # a few long (time 30-40) and wide (batch 12-16) cases of narrow cells
        if mode < 0.15 and op != "LSTMBlockCell" and units <= 16:
            batch, steps = int(pick.integers(1, 3)), int(pick.integers(30, 41))
        elif mode > 0.93 and units <= 16:
            batch, steps = int(pick.integers(12, 17)), min(steps, 3)
        else:
            batch, steps = shrink_to_cap(batch, steps, units, GRID_SIZE_CAP)
        if op != "LSTMBlockCell":
            seq_len_max = steps if steps == 0 or pick.random() < 0.6 else int(pick.integers(0, steps))
        initial_state = bool(pick.random() < 0.5) or (op == "LSTMBlockCell" and bites)
        if initial_state:
            tags.append("init")
        if seq_len_max is not None and seq_len_max < steps:
            tags.append("slm")
        if steps == 0:
            tags.append("t0")
        if seq_len_max == 0 or steps == 0:
            bites = False
        widest = depth + units
        scale = 1.0 if widest <= 16 else round(4.0 / float(np.sqrt(widest)), 3)
        input_range = 1.0
        if bites:
            scale, input_range = scale * 2.0, 3.0
        name = "-".join([f"grid-{number:03d}"] + tags)
        if steps == 0:
            # A block op over 0 time steps has only empty outputs: such a
            # case would compare nothing, and a comparison of nothing is not
            # a pass. The draws above still happen, so every other grid case
            # keeps its number, sizes and values.
            continue
        for attempt in range(GRID_ATTEMPTS):
            value_seed = seed + 1000 * attempt
            notes = (f"Grid case {number}: options and sizes drawn with numpy default_rng(({seed}, 1)); "
                     + (f"values redrawn with seed {value_seed} (attempt {attempt + 1}) so that the clip bites; "
                        if attempt else "")
                     + ("the clip was checked to bite." if bites else "no clip is meant to bite."))
            case = build_case(name, seed=value_seed, generator="grid", op=op, units=units, batch=batch, depth=depth,
                              steps=steps, seq_len_max=seq_len_max, forget_bias=forget_bias, cell_clip=cell_clip,
                              use_peephole=use_peephole, initial_state=initial_state, scale=scale,
                              input_range=input_range, bites=bites, notes=notes)
            preview = numpy_preview(case)
            if not bites or clip_bites(case, preview):
                break
        else:
            raise AssertionError(f"{name}: no clip-biting values in {GRID_ATTEMPTS} attempts")
        worst = max((float(np.max(np.abs(v), initial=0.0)) for v in preview.values()), default=0.0)
        if not worst < 1e3:
            raise AssertionError(f"{name}: NumPy preview reaches {worst:.3g}")
        case["grid"] = {"tags": set(tags), "batch": batch, "steps": steps, "depth": depth, "units": units,
                        "seq_len_max": seq_len_max}
        cases.append(case)
    return cases


def grid_coverage(cases):
    counts = collections.Counter()

    def bump(key, n=1):
        counts[key] += n

    for case in cases:
        g = case["grid"]
        bump("op " + case["op"])
        for tag in g["tags"]:
            bump(tag)
        bump("seq_len_max 0", int(g["seq_len_max"] == 0))
        bump("time >= 30", int(g["steps"] >= 30))
        bump("batch >= 12", int(g["batch"] >= 12))
        bump("input >= 40", int(g["depth"] >= 40))
        bump("units >= 40", int(g["units"] >= 40))
    minimums = {"op LSTMBlockCell": 15, "op BlockLSTM": 15, "op BlockLSTMV2": 15, "clipdef": 10, "clipm1": 4,
                "clip0": 3, "clip": 8, "clipwide": 4, "peep": 15, "init": 15, "slm": 8, "fb0": 2, "fb05": 2,
                "fb25": 2, "fbm1": 2, "time >= 30": 2, "batch >= 12": 2, "input >= 40": 1,
                "units >= 40": 1}
    return assert_coverage(counts, minimums, "block")




def all_cases():
    """Every case in recording order, built deterministically from the seeds."""
    return canary_cases() + grid_cases()

