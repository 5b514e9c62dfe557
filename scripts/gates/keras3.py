#!/usr/bin/env python3
"""Run Keras 3's `keras.layers.LSTM` on an lstm-parity gate export and write
the outputs `lstm-parity check` reads (the contract is in docs/gate.md).

    keras3.py --backend jax|torch EXPORT_DIR OUT_DIR

Run by `scripts/gates/run keras-jax` (in CI) and `scripts/gates/run
keras-torch` (by hand: PyTorch's PyPI wheel pulls about 3 GB of CUDA
wheels). EXPORT_DIR is `lstm-parity export --layout keras`. The backend is
chosen before Keras is imported, and runs on the CPU, with one thread
where the backend allows (XLA_FLAGS on JAX, `torch.set_num_threads(1)`).

Per exported step, a functional `keras.Model` with one
`keras.layers.LSTM(return_sequences=True, return_state=True)` per layer of
the step's stack, in the export's dtype, loaded with the exported
`kernel`, `recurrent_kernel` and `bias`, and run once with
`predict_on_batch` (on JAX: one jitted program per step, the compilation
being most of the run time):

* `activation` and `recurrent_activation` by Keras's own names. Keras 3's
  `hard_sigmoid` is `relu6(x + 3) / 6`; a step recorded with Keras 2's
  (`clip(0.2 x + 0.5, 0, 1)`, `"hard_sigmoid": "keras2"`) gets that
  function as a custom activation.
* The mask is the call's `mask` argument and the initial states its
  `initial_state`; `masked_output: "zero"` is the layer's
  `zero_output_for_mask=True`, `"repeat_previous"` its default.
* A reverse step runs its first layer with `go_backwards=True`, whose
  outputs are in processing order; the layers above it read those outputs
  forward, with the mask flipped to the same order (the stack reverses the
  sequence once, not once per layer).
* A time-major step is transposed to batch-major for Keras and back.
* Two single-layer steps of one case that read the same inputs in opposite
  directions run as one `keras.layers.Bidirectional(merge_mode=None)` when
  their masked outputs are zeros (Bidirectional forces
  `zero_output_for_mask` on its layers when they return sequences); its
  backward outputs are flipped from input time order into processing order.
* No traces are written (the layer returns no per-step cell states).
* A float64 export sets Keras's floatx (and JAX's x64 mode). Keras's own
  type promotion maps float64 to float32 on every backend but TensorFlow
  (keras/src/backend/common/dtypes.py, `BIT64_TO_BIT32_DTYPE`), so
  `ops.tanh` on JAX and `ops.matmul` on PyTorch compute in float32 there:
  float64 results hold float32 precision, and on JAX a `tanh`
  recurrent activation is refused (the scan's carry changes dtype).

A step Keras refuses gets error.txt with its message. Exit status 0, or 2
when the export cannot be read.
"""

import os
import sys
import time
from importlib.metadata import version

from gate_io import StepFolder, fail, layer_arrays, read_export, run_export

# This folder holds torch.py, the PyTorch adapter: it leaves the import path
# before Keras imports the real torch.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import numpy as np  # noqa: E402

BACKENDS = ("jax", "torch")
keras = None  # imported by main() once the backend is chosen


class StepData(StepFolder):
    """One exported step, read from its folder, batch-major."""

    def __init__(self, export_dir, entry):
        super().__init__(export_dir, entry)
        s = self.spec
        self.time_major = s["time_major"]
        self.masked_output = s["masked_output"]
        x = self.array(s["inputs"]["x"])
        self.x = x.swapaxes(0, 1) if self.time_major else x  # [N, T, I], input time order
        self.mask = None
        if "mask" in s["inputs"]:
            mask = self.array(s["inputs"]["mask"]).astype(bool)
            self.mask = mask.T if self.time_major else mask  # [N, T]
        self.layers = []
        for k, layer in enumerate(s["layers"]):
            w, init = layer_arrays(s, k, layer, self.array)
            self.layers.append({"options": layer["options"], "weights": w, "initial": init})


def keras2_hard_sigmoid(x):
    """Keras 2's hard_sigmoid; Keras 3 has only relu6(x + 3) / 6."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def activation(name, hard_sigmoid):
    if name == "hard_sigmoid" and hard_sigmoid == "keras2":
        return keras2_hard_sigmoid
    if name == "hard_sigmoid" and hard_sigmoid != "keras3":
        raise ValueError(f"hard_sigmoid version {hard_sigmoid!r}")
    return name


def placeholder(shape, dtype=None):
    """The initializer of every weight until `set_weights` loads the
    exported ones: NumPy zeros, so that building a layer runs (and, on
    JAX, compiles) nothing."""
    return np.zeros(shape, dtype)


def make_lstm(layer, dtype, masked_output, go_backwards):
    o = layer["options"]
    return keras.layers.LSTM(
        o["units"],
        activation=activation(o["activation"], o["hard_sigmoid"]),
        recurrent_activation=activation(o["recurrent_activation"], o["hard_sigmoid"]),
        kernel_initializer=placeholder,
        recurrent_initializer=placeholder,
        bias_initializer=placeholder,
        unit_forget_bias=False,  # the exported bias has the forget bias folded in
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        zero_output_for_mask=masked_output == "zero",
        dtype=dtype,
    )


def weights(layer):
    w = layer["weights"]
    return [w["kernel"], w["recurrent_kernel"], w["bias"]]


class Graph:
    """A functional model under construction: its inputs, and the arrays
    they are fed."""

    def __init__(self):
        self.inputs, self.feed = [], []

    def input(self, array):
        tensor = keras.Input(array.shape[1:], batch_size=array.shape[0], dtype=str(array.dtype))
        self.inputs.append(tensor)
        self.feed.append(array)
        return tensor

    def initial_state(self, layer):
        return None if layer["initial"] is None else [self.input(a) for a in layer["initial"]]

    def run(self, outputs):
        """One `predict_on_batch` of the model (a single jitted program on JAX)."""
        return [np.asarray(o) for o in keras.Model(self.inputs, outputs).predict_on_batch(self.feed)]


def output(step, y):
    """y [N, T, H] back into the step's own layout."""
    return y.swapaxes(0, 1) if step.time_major else y


def run_step(step):
    """One step's stack. Returns (y in processing order, [(h_n, c_n)] per layer)."""
    keras.backend.clear_session(free_memory=False)
    dtype = str(step.x.dtype)
    g = Graph()
    y = g.input(step.x)
    mask = None if step.mask is None else g.input(step.mask)
    states = []
    for k, layer in enumerate(step.layers):
        lstm = make_lstm(layer, dtype, step.masked_output, go_backwards=step.reverse and k == 0)
        y, h, c = lstm(y, mask=mask, initial_state=g.initial_state(layer))
        lstm.set_weights(weights(layer))
        states += [h, c]
        if lstm.go_backwards and mask is not None:
            mask = keras.ops.flip(mask, axis=1)  # the layers above read in processing order
    y, *states = g.run([y] + states)
    return output(step, y), list(zip(states[::2], states[1::2]))


def bidirectional_pair(steps):
    """Two single-layer steps that read the same inputs, with the same mask
    (zeros where masked, as Bidirectional computes) and the same options,
    in opposite directions."""
    for a in steps:
        for b in steps:
            if a is b or a.reverse or not b.reverse:
                continue
            if len(a.layers) != 1 or len(b.layers) != 1:
                continue
            if a.masked_output == "repeat_previous" or a.masked_output != b.masked_output:
                continue
            if (a.layers[0]["initial"] is None) != (b.layers[0]["initial"] is None):
                continue
            if a.layers[0]["options"] != b.layers[0]["options"] or a.time_major != b.time_major:
                continue
            if not np.array_equal(a.x, b.x):
                continue
            if (a.mask is None) != (b.mask is None) or (a.mask is not None and not np.array_equal(a.mask, b.mask)):
                continue
            return a, b
    return None


def run_pair(fw, bw):
    """One Bidirectional layer for a forward and a reverse step."""
    keras.backend.clear_session(free_memory=False)
    dtype = str(fw.x.dtype)
    lf, lb = fw.layers[0], bw.layers[0]
    g = Graph()
    x = g.input(fw.x)
    mask = None if fw.mask is None else g.input(fw.mask)
    init = None if lf["initial"] is None else g.initial_state(lf) + g.initial_state(lb)
    bidi = keras.layers.Bidirectional(
        make_lstm(lf, dtype, fw.masked_output, go_backwards=False),
        backward_layer=make_lstm(lb, dtype, bw.masked_output, go_backwards=True),
        merge_mode=None,
        dtype=dtype,
    )
    outputs = bidi(x, mask=mask, initial_state=init)
    bidi.set_weights(weights(lf) + weights(lb))
    y_fw, y_bw, h_fw, c_fw, h_bw, c_bw = g.run(list(outputs))
    y_bw = np.flip(y_bw, axis=1)  # input time order -> processing order
    return (output(fw, y_fw), [(h_fw, c_fw)]), (output(bw, y_bw), [(h_bw, c_bw)])


def set_up(backend, dtype):
    """Choose the backend, one CPU thread, before Keras is imported."""
    global keras
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        os.environ["JAX_PLATFORMS"] = "cpu"
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
        import jax

        # JAX computes float64 only when asked to; a float32 export runs as Keras's default.
        jax.config.update("jax_enable_x64", dtype == "float64")
        engine = f"JAX {version('jax')}"
    else:
        import torch

        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        engine = f"PyTorch {version('torch')}"
    import keras as k

    if k.backend.backend() != backend:
        fail(f"Keras runs on {k.backend.backend()}, not {backend}")
    keras = k
    # The layers' dtype, and the one predict_on_batch casts float inputs to.
    keras.config.set_floatx(dtype)
    # Bidirectional rebuilds its layers from their configs, which name these.
    for function in (keras2_hard_sigmoid, placeholder):
        keras.saving.register_keras_serializable(package="lstm_parity")(function)
    return f"Keras {version('keras')} keras.layers.LSTM on {engine} (CPU)"


def main(argv):
    if len(argv) != 5 or argv[1] != "--backend" or argv[2] not in BACKENDS:
        fail(f"usage: {os.path.basename(argv[0])} --backend {'|'.join(BACKENDS)} EXPORT_DIR OUT_DIR")
    backend = argv[2]
    export_dir, out_dir, index = read_export([argv[0], argv[3], argv[4]], ("keras",))
    implementation = set_up(backend, index["dtype"])
    started = time.monotonic()
    run_export(export_dir, out_dir, index, sys.modules[__name__], implementation, f"Keras ({backend})")
    print(f"{os.path.basename(argv[0])}: {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)

