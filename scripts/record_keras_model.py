"""Record a reference case from your own Keras model ("bring your own Keras model").

Usage:
  record_keras_model.py MODEL INPUT.npy OUT_DIR [--keras {2,3}] [--name NAME]

  MODEL      a Keras 3 `.keras` file (recorded with Keras 3), or a tf-keras `.h5`
             file (recorded with tf-keras: this process sets TF_USE_LEGACY_KERAS=1
             before TensorFlow is imported); --keras overrides the choice.
  INPUT.npy  the input batch, float, [batch, time, features] ([time, batch, features]
             for a tf-keras time_major model); it is stored as float32.
  OUT_DIR    the case is written to OUT_DIR/<name>/ (name: --name or the model's
             name), so that `lstm-parity run --reference OUT_DIR` checks it.

Supported layers, in a chain from the model input: an optional `Masking` first,
then `LSTM`, `Bidirectional(LSTM)` and `RNN` of `LSTMCell`s (or of
`StackedRNNCells` of them). The first other layer (Dense, Dropout, ...) ends the
case: the case's `output` is the output of the last supported layer, and
provenance.notes and stderr say which layers were left out. One recurrent layer
gives an `LSTM` / `RNN` / `Bidirectional` case, several a `Sequential` case.

How it is recorded: the loaded model's own layers compute the float32 result of
the supported part (a Keras sub-model ending at the last supported layer). The
same architecture is then rebuilt from the layers' configs twice, with dtype
float32 and float64 (lstm_record/keras_runner.py), the model's weights are
copied in (stored once, as float32), and both are run by Keras; per-step traces
come from Keras too. The rebuilt float32 result must equal the loaded model's,
and the float64 result must match the float64 NumPy model
(lstm_record/keras_numpy.py) to 1e-12.
"""

import argparse
import pathlib
import re
import sys
import time

from lstm_record import determinism

SCRIPT = "scripts/record_keras_model.py"
ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear", "hard_sigmoid")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=pathlib.Path, help=".keras (Keras 3) or .h5 (tf-keras) model file")
    parser.add_argument("input", type=pathlib.Path, help="input batch (.npy)")
    parser.add_argument("out", type=pathlib.Path, help="reference folder; the case goes to OUT/<name>/")
    parser.add_argument("--keras", choices=("2", "3"), help="2 = tf-keras, 3 = Keras 3 (default: by file type)")
    parser.add_argument("--name", help="case name (default: the model's name)")
    args = parser.parse_args()
    if args.keras is None:
        suffix = args.model.suffix.lower()
        if suffix == ".keras":
            args.keras = "3"
        elif suffix in (".h5", ".hdf5"):
            args.keras = "2"
        else:
            parser.error(f"cannot tell Keras 3 from tf-keras by the file type {suffix!r}: pass --keras")
    return args


def fail(message):
    print(f"record_keras_model: {message}", file=sys.stderr)
    sys.exit(2)


class Unsupported(Exception):
    pass


def main():
    args = parse_args()
    determinism.configure_environment(legacy_keras=args.keras == "2")

    import numpy as np
    import tensorflow as tf

    if args.keras == "3":
        import keras as K
        version_info = {"keras": K.__version__}
        if not K.__version__.startswith("3."):
            fail(f"need Keras 3, got {K.__version__}")
    else:
        import tf_keras as K
        version_info = {"tf_keras": K.__version__}
    from lstm_record import keras_cases, keras_numpy
    from lstm_record.case_writer import Case
    from lstm_record.keras_runner import KerasRunner
    from lstm_record.numpy_lstm import compare

    determinism.configure_tensorflow(tf)
    started = time.time()
    runner = KerasRunner(K, tf, args.keras)
    flavour = keras_cases.KERAS_NAME[args.keras]

    if not args.model.is_file():
        fail(f"no model file {args.model}")
    try:
        loaded = K.models.load_model(args.model, compile=False)
    except Exception as error:  # noqa: BLE001 (report any loading problem plainly)
        fail(f"{flavour} could not load {args.model}: {type(error).__name__}: {error}")
    raw = np.load(args.input, allow_pickle=False)
    if raw.ndim != 3 or raw.dtype.kind != "f":
        fail(f"{args.input}: need a float array [batch, time, features], got {raw.dtype}{raw.shape}")
    x = raw.astype(np.float32)
    notes = []
    if raw.dtype != np.float32 and not np.array_equal(x.astype(raw.dtype), raw):
        notes.append(f"The {raw.dtype} input was rounded to float32 (cases store inputs as float32).")
    name = args.name or loaded.name
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        fail(f"case name {name!r}: use letters, digits, '_', '.', '-' (pass --name)")

    # ---------------------------------------------------------------- the supported prefix
    layers = [layer for layer in loaded.layers if type(layer).__name__ != "InputLayer"]
    masking, recurrent, stop = None, [], None

    def cell_spec(cell):
        if type(cell).__name__ != "LSTMCell":
            raise Unsupported(f"cell {type(cell).__name__}")
        cfg = cell.get_config()
        for key in ("activation", "recurrent_activation"):
            if cfg[key] not in ACTIVATIONS:
                raise Unsupported(f"{key}={cfg[key]!r}")
        spec = keras_cases.cell(cfg["units"], cfg["activation"], cfg["recurrent_activation"], cfg["use_bias"],
                                dropout=float(cfg.get("dropout", 0.0)),
                                recurrent_dropout=float(cfg.get("recurrent_dropout", 0.0)),
                                unit_forget_bias=bool(cfg.get("unit_forget_bias", True)))
        spec["source"] = cell
        return spec

    def rnn_spec(layer):
        kind = type(layer).__name__
        if layer.stateful:
            raise Unsupported("stateful=True (a single recorded call could not show it)")
        if kind == "LSTM":
            cells = [cell_spec(layer.cell)]
        elif kind == "RNN":
            inner = layer.cell
            if type(inner).__name__ == "StackedRNNCells":
                cells = [cell_spec(c) for c in inner.cells]
            else:  # RNN(LSTMCell(...)) computes what LSTM(...) computes: recorded as LSTM
                cells = [cell_spec(inner)]
                kind = "LSTM"
        else:
            raise Unsupported(kind)
        spec = keras_cases.rnn_layer(kind, cells, bool(layer.return_sequences), bool(layer.return_state),
                                     bool(layer.go_backwards),
                                     zero_output_for_mask=bool(getattr(layer, "zero_output_for_mask", False)),
                                     unroll=bool(layer.unroll), time_major=bool(getattr(layer, "time_major", False)))
        if args.keras == "2":
            values = {c["source"].implementation for c in cells}
            if len(values) == 1:
                spec["implementation"] = values.pop()
        spec["name"] = layer.name
        return spec

    def layer_spec(layer):
        kind = type(layer).__name__
        if kind == "Bidirectional":
            fw, bw = layer.forward_layer, layer.backward_layer
            if type(fw).__name__ != "LSTM" or type(bw).__name__ != "LSTM":
                raise Unsupported(f"Bidirectional({type(fw).__name__}, {type(bw).__name__})")
            spec = keras_cases.bidi_layer(rnn_spec(fw), layer.merge_mode, rnn_spec(bw))
            spec["backward"]["name"] = "reverse_lstm"
            spec["name"] = layer.name
            return spec
        if kind in ("LSTM", "RNN"):
            return rnn_spec(layer)
        raise Unsupported(kind)

    for index, layer in enumerate(layers):
        kind = type(layer).__name__
        if kind == "Masking" and index == 0:
            masking = layer
            continue
        try:
            spec = layer_spec(layer)
            for _, c, _ in keras_cases.walk_cells(spec):
                c["owner"] = layer.name
            recurrent.append((layer, spec))
        except Unsupported as why:
            stop = (index, layer, str(why))
            break
    if not recurrent:
        what = f"{type(stop[1]).__name__} '{stop[1].name}' ({stop[2]})" if stop else "nothing"
        fail(f"the model must start with [Masking,] LSTM / Bidirectional(LSTM) / RNN(LSTMCell...) layers; "
             f"found {what}")
    if stop is not None:
        left_out = ", ".join(f"{type(layer).__name__} '{layer.name}'" for layer in layers[stop[0]:])
        message = (f"The case stops at the last supported layer '{recurrent[-1][0].name}': the model's later "
                   f"layers are not recorded ({left_out}; the first is unsupported: {stop[2]}).")
        print(f"record_keras_model: note: {message}", file=sys.stderr)
        notes.append(message)
    specs = [spec for _, spec in recurrent]
    if len(specs) == 1:
        spec = specs[0]
    else:
        for sub in specs:
            if sub["return_state"]:
                fail(f"layer '{sub['name']}' returns states inside a stack: only a single recurrent layer may")
            if sub.get("time_major"):
                fail(f"layer '{sub['name']}': time_major inside a stack is not supported")
        for sub in specs[:-1]:
            if not sub["return_sequences"]:
                fail(f"layer '{sub['name']}' has return_sequences=False but feeds another recurrent layer")
        if any(s["layer"] == "Bidirectional" and s["merge_mode"] is None for s in specs[:-1]):
            fail("a Bidirectional with merge_mode=None inside a stack is not supported")
        names = [s["name"] for s in specs]
        spec = keras_cases.sequential(specs)
        for sub, layer_name in zip(specs, names):
            sub["name"] = layer_name
    if masking is not None:
        spec["masking"] = float(masking.mask_value)

    # ---------------------------------------------------------------- weights, by cell slot
    weights, cell_specs = keras_cases.draw_weights(spec, NoDraw(), x.shape[-1])
    weights.clear()
    source_paths = {}
    for slot, cell in cell_specs.items():
        for variable in cell["source"].weights:
            path = runner.path(variable)
            role = path.rsplit("/", 1)[1]
            if not path.startswith(cell["owner"] + "/"):  # a loaded Keras 3 model's paths may omit the layer
                path = f"{cell['owner']}/{path}"
            value = np.asarray(runner.numpy(variable))
            stored = value.astype(np.float32)
            if value.dtype != np.float32 and not np.array_equal(stored.astype(value.dtype), value):
                notes.append(f"{path} was rounded from {value.dtype} to float32.")
            weights[slot, role] = stored
            source_paths[slot, role] = path
    for c in cell_specs.values():
        del c["source"], c["owner"]
    if len(set(source_paths.values())) != len(source_paths):
        fail("the model's variable paths are not unique")

    case = {"name": name, "generator": "keras-model", "seed": None, "notebook": None, "spec": spec,
            "inputs": {"inputs": x}, "weights": weights, "cell_specs": cell_specs, "traps": []}

    # ---------------------------------------------------------------- the loaded model's own float32 result
    last_layer = recurrent[-1][0]
    try:
        own = K.Model(loaded.inputs, last_layer.output)(tf.constant(x))
    except Exception as error:  # noqa: BLE001
        fail(f"could not run the model's supported part: {type(error).__name__}: {error}")
    own = [np.asarray(runner.numpy(t)) for t in tf.nest.flatten(own)]

    out32, paths = runner.run(case, "float32")
    out64, paths64 = runner.run(case, "float64")
    if paths != paths64:
        fail("float32 and float64 rebuilds name their variables differently")
    rebuilt = [out32[n] for n in (["output/0", "output/1"] if "output/0" in out32 else ["output"])]
    if spec["layer"] == "Bidirectional":
        rebuilt += [out32[f"{d}/state/0/{k}"] for d in ("fw", "bw") for k in ("h", "c") if f"{d}/state/0/{k}" in out32]
    elif spec["layer"] != "Sequential":
        rebuilt += [out32[f"state/{i}/{k}"] for i in range(len(spec["cells"])) for k in ("h", "c")
                    if f"state/{i}/{k}" in out32]
    if len(own) != len(rebuilt) or any(a.shape != b.shape for a, b in zip(own, rebuilt)):
        fail(f"the loaded model returns {[a.shape for a in own]}, the rebuilt one {[b.shape for b in rebuilt]}")
    worst = max(float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0)) for a, b in zip(own, rebuilt))
    if worst > 1e-6:
        fail(f"the rebuilt float32 model differs from the loaded one (max |diff| {worst:.3g}): "
             "an option this script does not carry over?")
    if worst > 0:
        notes.append(f"The rebuilt float32 model agrees with the loaded one within {worst:.3g} (not bit-exact).")

    # the case names the model's own variables
    paths = {key: source_paths[key] for key in paths}
    model_json = keras_cases.model_json(spec, paths, args.keras)
    variables = {paths[k]: weights[k] for k in paths}
    ours = keras_numpy.keras_outputs(model_json, {k: v.astype(np.float64) for k, v in variables.items()},
                                     {"inputs": x.astype(np.float64)})
    try:
        compare(name, ours, {k: {"float32": out32[k], "float64": out64[k]} for k in out64}, "Keras")
    except AssertionError as error:
        fail(f"the float64 NumPy model disagrees with Keras: {error}")

    summary = keras_cases.describe(spec, args.keras, case["inputs"])[len(flavour) + 1:]
    case["description"] = f"{flavour} model '{loaded.name}' from {args.model.name}: {summary}"
    base = (f"Recorded from the user's model file {args.model.name} with input {args.input.name}. The loaded "
            "model's own float32 result of the recorded part equals the rebuilt float32 model's; the float64 "
            "run is the same architecture rebuilt with dtype float64 and the same (float32) weights. "
            + " ".join(notes))
    case["notes"] = keras_cases.notes_for(spec, case["inputs"], base)
    versions = {"tensorflow": tf.__version__, "numpy": np.__version__, **version_info}
    out_dir = args.out
    if (out_dir / name).exists():
        fail(f"{out_dir / name} exists")
    provenance = {"script": SCRIPT, "generator": "keras-model", "notebook": None, "seed": None,
                  "versions": versions, "notes": case["notes"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    Case(name, case["description"], "keras", model_json, provenance).arrays(
        variables, case["inputs"], out32, out64).write(out_dir)
    keras_numpy.check_case(out_dir / name)
    print(f"record_keras_model: wrote {out_dir / name} ({flavour}, {len(recurrent)} recurrent layer(s), "
          f"{time.time() - started:.1f} s)")


class NoDraw:
    """A stand-in generator for draw_weights (which assigns the cell slots): the weights come from the model."""

    def weight(self, shape, scale=1.0, gates=None):
        import numpy as np

        return np.ones(shape, dtype=np.float32)


if __name__ == "__main__":
    main()
