#!/usr/bin/env python3
"""Run LiteRT (TensorFlow Lite) on an lstm-parity gate export: each step
becomes a tf-keras model, converted by TFLiteConverter and run by the
TF Lite interpreter; the outputs are what `lstm-parity check` reads (the
contract is in docs/gate.md).

    litert.py [--dynamic-range] [--interpreter tf|litert] [--from-keras-model] EXPORT_DIR OUT_DIR
    lstm-parity check --outputs OUT_DIR [--expectations FILE]

Run by `scripts/gates/run litert` and `scripts/gates/run litert-dynamic`
(the second with --dynamic-range).

EXPORT_DIR is `lstm-parity export --layout keras` (batch-major). Per step,
one tf-keras model (TF_USE_LEGACY_KERAS=1): the inputs `x`, the `mask`
when the step has one and each layer's initial states when it has them,
then one `LSTM(return_sequences=True)` per layer of the stack, each reading
the previous one's outputs, with the exported `kernel`, `recurrent_kernel`
and `bias` and the step's activations. tf-keras computes Keras 2's
`hard_sigmoid` (clip(0.2 x + 0.5, 0, 1)); a step that asks for Keras 3's
gets `relu6(x + 3) / 6` as a custom activation.

* Reverse: the first layer has `go_backwards=True`, so its outputs are in
  processing order; the layers after it run forward over them, reading the
  mask flipped into processing order (a model input of its own).
* Masked steps: `zero_output_for_mask` is the step's `masked_output`
  ("zero": True, "repeat_previous": False, Keras' default).
* Bidirectional pairs (two one-layer steps reading the same inputs in
  opposite directions) run as one model: a forward and a `go_backwards`
  layer reading the same inputs (what Keras' `Bidirectional` computes
  before it merges), each with its step's own masking rule.
* Final states: the converter turns a Keras LSTM into TF Lite's fused
  `UNIDIRECTIONAL_SEQUENCE_LSTM` op when Keras runs it through its
  backend-selecting function (tanh and sigmoid: tf_keras lstm.py,
  `_could_use_gpu_kernel`), it has no mask and nothing reads its returned
  states (tensorflow/compiler/mlir/lite/transforms/
  prepare_composite_functions_tf.cc, CheckFusableKerasLstm). Those layers
  are built without `return_state`, as deployed models are, and their
  final h and c are read from the fused op's state operands (18 and 19:
  variable tensors the op updates in place). Every other layer has
  `return_state=True`; the converter lowers it to a `WHILE` loop either
  way. The adapter checks that exactly the layers it built for the fused
  op were fused.

Conversion: `TFLiteConverter.from_keras_model(model)` saves the model as a
Keras SavedModel, tracing every layer's functions for Keras' own
serialization (about 8 s a model), then converts the SavedModel's serving
signature. The adapter traces that same signature
(`saving_utils.trace_model_call`, which the Keras SavedModel calls), saves
it with the model's variables in a plain `tf.Module` and converts it
through the same SavedModel import (`from_concrete_functions` with the
module), in about 1 s: the flatbuffer is the same, byte for byte, but for
the conversion metadata's model type (KERAS_MODEL or
TF_CONCRETE_FUNCTIONS). `--from-keras-model` converts with
from_keras_model itself. With `--dynamic-range`: `optimizations =
[Optimize.DEFAULT]` (int8 weights where a weight matrix has 1024 elements
or more).

Running: a fresh interpreter per model, invoked once (the fused op's state
tensors keep their values from one invocation to the next), with the
default op resolver and one thread, through the model's signature. Both
`tf.lite.Interpreter` and ai-edge-litert's Interpreter run every
flatbuffer; the summary names the models where their outputs differ, and
`--interpreter` says whose are written (default: tf). No traces are
written.

A step the converter or the interpreter refuses gets error.txt with its
message. Exit status 0, or 2 when the export cannot be read or a model is
not converted as this adapter expects.
"""

import argparse
import os
import sys
import time
import warnings
from importlib.metadata import version

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from gate_io import StepFolder, fail, layer_arrays, read_export, run_export  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter  # noqa: E402
from tf_keras.src.saving.legacy import saving_utils  # noqa: E402

FUSED_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
# Operand indices of TF Lite's LSTM ops (lite/kernels/lstm_shared.h).
INPUT_TO_FORGET_WEIGHTS, OUTPUT_STATE, CELL_STATE = 2, 18, 19


def hard_sigmoid_keras3(x):
    """Keras 3's hard_sigmoid (tf-keras' own is Keras 2's 0.2 x + 0.5)."""
    return tf.nn.relu6(x + 3.0) / 6.0


def activation(name, hard_sigmoid):
    return hard_sigmoid_keras3 if (name, hard_sigmoid) == ("hard_sigmoid", "keras3") else name


class StepData(StepFolder):
    """One exported step, read from its folder."""

    def __init__(self, export_dir, entry):
        super().__init__(export_dir, entry)
        s = self.spec
        if s["time_major"]:
            raise ValueError("expected a batch-major (keras) export")
        self.x = self.array(s["inputs"]["x"])  # [N, T, I], input time order
        self.mask = self.array(s["inputs"]["mask"]) if "mask" in s["inputs"] else None
        self.zero_masked = s["masked_output"] == "zero"
        self.layers = []
        for k, layer in enumerate(s["layers"]):
            w, init = layer_arrays(s, k, layer, self.array)
            o = layer["options"]
            self.layers.append(
                {
                    "units": o["units"],
                    "activation": activation(o["activation"], o["hard_sigmoid"]),
                    "recurrent_activation": activation(o["recurrent_activation"], o["hard_sigmoid"]),
                    "weights": [w["kernel"], w["recurrent_kernel"], w["bias"]],
                    "initial": init,
                    # What Keras runs through its backend-selecting function
                    # and the converter fuses (see the module docstring).
                    "fused": (o["activation"], o["recurrent_activation"]) == ("tanh", "sigmoid")
                    and self.mask is None,
                }
            )


class Model:
    """The tf-keras model of one step or a bidirectional pair, and what to
    feed it and read back."""

    def __init__(self, steps):
        keras.backend.clear_session()
        self.feed = {}
        self.layers = {}  # (step, layer) -> its exported weights, for the fused ops
        inputs, outputs, self.reads = [], [], []  # reads[i]: (step, "y" | ("h"|"c", layer)) of outputs[i]

        def model_input(name, array):
            inputs.append(keras.Input(array.shape[1:], batch_size=array.shape[0], dtype=array.dtype.name, name=name))
            self.feed[name] = array
            return inputs[-1]

        first = steps[0]  # a pair reads the same x and mask
        x = model_input("x", first.x)
        mask = None if first.mask is None else model_input("mask", first.mask)
        for s, step in enumerate(steps):
            seq, m = x, mask
            for k, layer in enumerate(step.layers):
                if k == 1 and step.reverse and mask is not None:
                    m = model_input(f"s{s}_mask_processing_order", np.flip(step.mask, axis=1))
                kwargs = {} if m is None else {"mask": m}
                if layer["initial"] is not None:
                    h0, c0 = layer["initial"]
                    kwargs["initial_state"] = [model_input(f"s{s}_h{k}", h0), model_input(f"s{s}_c{k}", c0)]
                lstm = keras.layers.LSTM(
                    layer["units"],
                    activation=layer["activation"],
                    recurrent_activation=layer["recurrent_activation"],
                    return_sequences=True,
                    return_state=not layer["fused"],
                    go_backwards=step.reverse and k == 0,
                    zero_output_for_mask=step.zero_masked,
                    dtype=step.x.dtype.name,
                    name=f"s{s}_l{k}",
                )
                out = lstm(seq, **kwargs)
                lstm.set_weights(layer["weights"])
                self.layers[(s, k)] = layer
                if layer["fused"]:
                    seq = out
                else:
                    seq, h, c = out
                    outputs += [h, c]
                    self.reads += [(s, ("h", k)), (s, ("c", k))]
            outputs.append(seq)
            self.reads.append((s, "y"))
        self.keras = keras.Model(inputs, outputs)
        # The interpreter's signature names each output as the Keras model does.
        self.names = list(self.keras.output_names)


def convert(model, dynamic_range, from_keras_model):
    """The model's TF Lite flatbuffer (see the module docstring)."""
    if from_keras_model:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        module = tf.Module()
        module.variables_ = list(model.variables)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([saving_utils.trace_model_call(model)], module)
    if dynamic_range:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer = converter.convert()
    if converter.saved_model_dir is None:
        # The converter fell back to freezing the graph, which it does
        # silently when saving fails; that path converts differently.
        fail("the converter did not convert through the SavedModel import")
    return flatbuffer


def dequantized(interpreter, detail):
    q = interpreter.get_tensor(detail["index"])
    p = detail["quantization_parameters"]
    if q.dtype not in (np.int8, np.uint8):
        return q
    shape = [1] * q.ndim
    if len(p["scales"]) > 1:
        shape[p["quantized_dimension"]] = -1
    return (q.astype(np.float64) - p["zero_points"].reshape(shape)) * p["scales"].reshape(shape)


def fused_states(interpreter, model):
    """Final (h, c) of each fused layer, by (step, layer), read from its op's
    state tensors after the run. The op is matched to its layer by its
    input-to-forget weights (kernel[:, U:2U] transposed)."""
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    states = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] != FUSED_OP:
            continue
        w = dequantized(interpreter, details[op["inputs"][INPUT_TO_FORGET_WEIGHTS]])
        best, err = None, np.inf
        for key, layer in model.layers.items():
            u = layer["units"]
            kernel = layer["weights"][0][:, u : 2 * u].T
            if layer["fused"] and kernel.shape == w.shape and np.abs(kernel - w).max() < err:
                best, err = key, np.abs(kernel - w).max()
        if best is None or best in states:
            fail(f"a {FUSED_OP} op matches no layer built for it, or one already matched")
        states[best] = (
            interpreter.get_tensor(op["inputs"][OUTPUT_STATE]).copy(),
            interpreter.get_tensor(op["inputs"][CELL_STATE]).copy(),
        )
    built = {key for key, layer in model.layers.items() if layer["fused"]}
    if set(states) != built:
        fail(f"the converter fused layers {sorted(states)}, the adapter built {sorted(built)} for the fused op")
    return states


def invoke(flatbuffer, model, interpreter_class):
    """Run the flatbuffer once: its outputs (as model.reads lists them), the
    fused layers' final states, and the names of the model's top-level ops
    (a WHILE loop's body is a subgraph of its own)."""
    interpreter = interpreter_class(model_content=flatbuffer, num_threads=1)
    result = interpreter.get_signature_runner()(**model.feed)
    outputs = [np.array(result[name]) for name in model.names]
    ops = sorted({op["op_name"] for op in interpreter._get_ops_details()} - {"DELEGATE"})
    return outputs, fused_states(interpreter, model), ops


def step_results(model, steps, outputs, states):
    """Per step: (y, [(h_n, c_n)] per layer)."""
    results = []
    for s, step in enumerate(steps):
        got = {what: out for (t, what), out in zip(model.reads, outputs) if t == s}
        finals = [
            states[(s, k)] if (s, k) in states else (got[("h", k)], got[("c", k)]) for k in range(len(step.layers))
        ]
        results.append((got["y"], finals))
    return results


class Adapter:
    """What gate_io.run_export calls: StepData, bidirectional_pair, run_step, run_pair."""

    StepData = StepData

    def __init__(self, args):
        self.args = args
        self.interpreters = {"tf": tf.lite.Interpreter, "litert": LiteRTInterpreter}
        self.ops = {}  # sorted TF Lite op names of a model -> how many models
        self.differing = []  # (step, max |tf - litert|) where the two interpreters differ
        self.seconds = {"build": 0.0, "convert": 0.0, "run": 0.0}
        self.slowest = (0.0, None)  # (conversion seconds, step)

    def run(self, steps):
        started = time.perf_counter()
        model = Model(steps)
        built = time.perf_counter()
        flatbuffer = convert(model.keras, self.args.dynamic_range, self.args.from_keras_model)
        converted = time.perf_counter()
        runs = {name: invoke(flatbuffer, model, cls) for name, cls in self.interpreters.items()}
        self.seconds["build"] += built - started
        self.seconds["convert"] += converted - built
        self.seconds["run"] += time.perf_counter() - converted
        self.slowest = max(self.slowest, (converted - built, steps[0].rel))
        key = " ".join(runs["tf"][2])
        self.ops[key] = self.ops.get(key, 0) + 1
        self.compare(steps, runs)
        outputs, states, _ = runs[self.args.interpreter]
        return step_results(model, steps, outputs, states)

    def compare(self, steps, runs):
        (a, sa, _), (b, sb, _) = runs["tf"], runs["litert"]
        arrays = list(zip(a, b)) + [pair for key in sa for pair in zip(sa[key], sb[key])]
        if any(not np.array_equal(x, y) for x, y in arrays):
            diff = max(float(np.abs(x.astype(np.float64) - y).max()) for x, y in arrays)
            self.differing.append((steps[0].rel, diff))

    def bidirectional_pair(self, steps):
        """Two one-layer steps that read the same inputs in opposite directions."""
        for a in steps:
            for b in steps:
                if a.reverse or not b.reverse or len(a.layers) != 1 or len(b.layers) != 1:
                    continue
                if a.zero_masked != b.zero_masked or not np.array_equal(a.x, b.x):
                    continue
                if (a.mask is None) != (b.mask is None) or (a.mask is not None and not np.array_equal(a.mask, b.mask)):
                    continue
                return a, b
        return None

    def run_step(self, step):
        return self.run([step])[0]

    def run_pair(self, fw, bw):
        return tuple(self.run([fw, bw]))

    def summary(self):
        models = sum(self.ops.values())
        print(
            f"litert.py: {models} models: building {self.seconds['build']:.0f} s, converting "
            f"{self.seconds['convert']:.0f} s ({self.seconds['convert'] / max(models, 1):.2f} s a model, slowest "
            f"{self.slowest[0]:.1f} s: {self.slowest[1]}), running both interpreters {self.seconds['run']:.0f} s",
            file=sys.stderr,
        )
        for key, n in sorted(self.ops.items(), key=lambda kv: -kv[1]):
            print(f"litert.py: {n} models use the TF Lite ops {key}", file=sys.stderr)
        if self.differing:
            worst = max(d for _, d in self.differing)
            print(
                f"litert.py: tf.lite.Interpreter and ai-edge-litert differ on {len(self.differing)} models "
                f"(max |difference| {worst:.3g}), e.g. {self.differing[0][0]}",
                file=sys.stderr,
            )
        else:
            print("litert.py: tf.lite.Interpreter and ai-edge-litert agree bit for bit on every model", file=sys.stderr)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dynamic-range", action="store_true", help="dynamic-range quantization (int8 weights)")
    parser.add_argument("--interpreter", choices=("tf", "litert"), default="tf",
                        help="whose outputs are written: tf.lite.Interpreter (default) or ai-edge-litert's")
    parser.add_argument("--from-keras-model", action="store_true",
                        help="convert with TFLiteConverter.from_keras_model itself (the same flatbuffers, slower)")
    parser.add_argument("export_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv[1:])
    export_dir, out_dir, index = read_export([argv[0], args.export_dir, args.out_dir], ("keras",))

    warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
    tf.get_logger().setLevel("ERROR")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)

    adapter = Adapter(args)
    quantized = ", dynamic-range int8 weights" if args.dynamic_range else ""
    interpreter = "tf.lite.Interpreter"
    if args.interpreter == "litert":
        interpreter = f"ai-edge-litert {version('ai-edge-litert')} Interpreter"
    implementation = (
        f"TensorFlow Lite {tf.__version__} (tf-keras {version('tf-keras')} LSTM -> TFLiteConverter{quantized}"
        f" -> {interpreter}, CPU, 1 thread)"
    )
    run_export(export_dir, out_dir, index, adapter, implementation, "TF Lite")
    adapter.summary()


if __name__ == "__main__":
    main(sys.argv)
