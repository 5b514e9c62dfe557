"""Run and record the Keras cases with Keras itself: Keras 3 (`keras`) or tf-keras (`tf_keras`).

The caller imports its Keras (the two need different TF_USE_LEGACY_KERAS
settings, so they live in different processes) and hands the module in:
`KerasRunner(keras, tf, "3")` or `KerasRunner(tf_keras, tf, "2")`.
`KerasRecorder` records the keras3 and tfkeras suites (recorder.py) with it;
scripts/record_keras_model.py records a user's model with it.

A case spec (lstm_record/keras_cases.py) describes the model in layer terms:

  cell   {"slot", "units", "activation", "recurrent_activation", "use_bias", "dropout",
          "recurrent_dropout", "unit_forget_bias", "bias_from_keras"}
  LSTM / RNN   {"layer", "cells", "return_sequences", "return_state", "go_backwards",
                "zero_output_for_mask", "unroll", "stateful", "implementation",
                "time_major", "rnn_form" ("stacked" | "list"), "name"}
  Bidirectional {"layer", "forward": <LSTM>, "backward": <LSTM>, "backward_given",
                 "merge_mode", "name"}
  Sequential   {"layer", "layers": [<LSTM | Bidirectional>], "name"}
  top level also: "masking": null | mask_value

`run(case, dtype)` builds the model in `dtype` ("float32" or "float64"), assigns
the case's float32 weights (widened) by cell slot, calls it, and returns
(outputs by reference name, {(slot, role): variable path}). Per-step traces come
from Keras too: each recurrent layer's own cell object is wrapped in a
pass-through cell whose output is [output, h0, c0, h1, c1, ...] and run through
`keras.layers.RNN` with the layer's go_backwards, unroll, time_major, mask and
initial state; its output part is checked against the layer's output and its
last step against the returned states.

Reduced-precision runs (lstm_record/reduced.py) use the same code with `dtype`
a dtype policy: "mixed_float16" / "mixed_bfloat16" (float32 variables holding the
case's values, cast to the 16-bit type at use; float32 inputs autocast by the
layers; initial states cast with tf.cast), or "float16" (every layer built with
dtype="float16": float16 variables and inputs). See REDUCED_RUNS.
"""

import sys

import numpy as np

from lstm_record import keras_cases, keras_numpy, recorder, reduced
from lstm_record.numpy_lstm import compare

KERNEL_ROLES = ("kernel", "recurrent_kernel", "bias")

# run dtype (a layer's `dtype` argument) -> (compute dtype, variable dtype, dtype of the fed inputs)
REDUCED_RUNS = {
    "mixed_float16": ("float16", "float32", "float32"),
    "mixed_bfloat16": ("bfloat16", "float32", "float32"),
    "float16": ("float16", "float16", "float16"),
}


def compute_dtype(dtype):
    """The numpy dtype of the results of a run in `dtype` (bfloat16: ml_dtypes' type, as TF returns it)."""
    name = REDUCED_RUNS[dtype][0] if dtype in REDUCED_RUNS else dtype
    if name == "bfloat16":
        import tensorflow as tf
        return np.dtype(tf.bfloat16.as_numpy_dtype)
    return np.dtype(name)


def variable_dtype(dtype):
    return REDUCED_RUNS[dtype][1] if dtype in REDUCED_RUNS else dtype


def feed_dtype(dtype):
    return REDUCED_RUNS[dtype][2] if dtype in REDUCED_RUNS else dtype


def cell_names(count):
    """Keras's own default names in a fresh session: lstm_cell, lstm_cell_1, ..."""
    return ["lstm_cell"] + [f"lstm_cell_{i}" for i in range(1, count)]


def processing_mask(mask, go_backwards):
    if mask is None:
        return None
    return mask[:, ::-1] if go_backwards else mask


def make_trace_cell(K, tf, version):
    class TraceCell(K.layers.Layer):
        """Pass-through wrapper around an already built cell: output = [output] + flattened states."""

        def __init__(self, inner, dtype, **kwargs):
            super().__init__(dtype=dtype, **kwargs)
            self.inner = inner
            self.state_size = inner.state_size
            self.output_size = inner.output_size + sum(tf.nest.flatten(inner.state_size))
            self.built = True

        def call(self, inputs, states, training=False):
            output, new_states = self.inner(inputs, states, training=training)
            return tf.concat([output] + tf.nest.flatten(new_states), axis=-1), new_states

        def get_initial_state(self, *args, **kwargs):
            return self.inner.get_initial_state(*args, **kwargs)

    return TraceCell


class ArrayInitializer:
    """A bias initializer returning fixed float32 arrays by shape (Keras concatenates the
    unit_forget_bias ones in between itself)."""

    def __init__(self, tf, parts):
        self.tf = tf
        self.parts = parts  # {shape tuple: float32 array}

    def __call__(self, shape, dtype=None, **kwargs):
        return self.tf.constant(self.parts[tuple(shape)], dtype=dtype or "float32")


def close(a, b, dtype):
    """Agreement of two runs of the same arithmetic by different Keras code paths (16-bit: 4 ULP at 1)."""
    tol = {"float32": 1e-6, "float64": 1e-13, "float16": 4 * 2.0 ** -10,
           "bfloat16": 4 * 2.0 ** -7}[compute_dtype(dtype).name]
    b = b.astype(np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a.astype(np.float64) - b) <= tol * np.maximum(1.0, np.abs(b))))


class KerasRunner:
    def __init__(self, K, tf, version):
        if version not in ("2", "3"):
            raise ValueError(version)
        self.K, self.tf, self.version = K, tf, version
        self.TraceCell = make_trace_cell(K, tf, version)
        self.inexact_trace_checks = 0  # trace vs layer agreeing only within `close` (tf-keras fused path)

    # ------------------------------------------------------------ helpers

    def path(self, variable):
        return variable.path if self.version == "3" else variable.name.rsplit(":", 1)[0]

    def numpy(self, tensor):
        if self.version == "3":
            return self.K.ops.convert_to_numpy(tensor)
        return np.asarray(tensor)

    def reset(self, dtype):
        """Fresh Keras state per run (auto-generated names such as RNN([cells])'s
        stacked_rnn_cells start again), fixed seeds, and the global float type set to
        the run's: RNN([cells]) creates its StackedRNNCells with the global dtype
        policy, so with the default float32 a float64 model would round its states
        to float32 inside the stack. A mixed policy becomes the global policy
        (floatx stays float32); every other run clears a global policy a previous
        run set (tf-keras: global policy None, i.e. floatx)."""
        mixed = dtype.startswith("mixed_")
        if self.version == "3":
            self.K.backend.clear_session(free_memory=False)  # its gc.collect() costs ~0.3 s a run
            self.K.config.set_dtype_policy(dtype)
        else:
            self.K.backend.clear_session()
            self.K.mixed_precision.set_global_policy(dtype if mixed else None)
            self.K.backend.set_floatx("float32" if mixed else dtype)
        self.K.utils.set_random_seed(0)

    def feed(self, array, dtype):
        """A float32 case array as fed to a run in `dtype` (16-bit: rounded by tf.cast)."""
        target = feed_dtype(dtype)
        if target in ("float16", "bfloat16"):
            return self.numpy(self.tf.cast(self.tf.constant(array.astype(np.float32)), target))
        return array.astype(target)

    def state_tensor(self, array, dtype):
        """An initial state of a run in `dtype`: in the compute dtype (16-bit: tf.cast of the float32 values)."""
        target = compute_dtype(dtype)
        if target.itemsize == 2:
            return self.tf.cast(self.tf.constant(array.astype(np.float32)), target.name)
        return self.tf.constant(array.astype(target))

    def same(self, got, want, what, dtype):
        if np.array_equal(got, want):
            return
        if close(got, want, dtype):
            self.inexact_trace_checks += 1
            return
        raise AssertionError(f"{what}: max |diff| {np.max(np.abs(got.astype(np.float64) - want)):.3g}")

    # ------------------------------------------------------------ building

    def _cell_kwargs(self, spec):
        kwargs = {"activation": spec["activation"], "recurrent_activation": spec["recurrent_activation"],
                  "use_bias": spec["use_bias"]}
        if not spec.get("unit_forget_bias", True):
            kwargs["unit_forget_bias"] = False
        if spec.get("dropout", 0.0):
            kwargs["dropout"] = spec["dropout"]
        if spec.get("recurrent_dropout", 0.0):
            kwargs["recurrent_dropout"] = spec["recurrent_dropout"]
        if spec.get("bias_from_keras"):
            kwargs["bias_initializer"] = ArrayInitializer(self.tf, spec["bias_parts"])
        return kwargs

    def build_rnn(self, spec, dtype, name):
        K = self.K
        common = {"return_sequences": spec["return_sequences"], "return_state": spec["return_state"],
                  "go_backwards": spec["go_backwards"], "dtype": dtype, "name": name}
        for key in ("zero_output_for_mask", "unroll", "stateful", "time_major"):
            if spec.get(key, False):
                common[key] = True
        if spec.get("time_major") and self.version != "2":
            raise AssertionError("time_major is tf-keras only")
        if spec["layer"] == "LSTM":
            (cell,) = spec["cells"]
            kwargs = self._cell_kwargs(cell)
            if spec.get("implementation") is not None:
                kwargs["implementation"] = spec["implementation"]
            layer = K.layers.LSTM(cell["units"], **kwargs, **common)
            self.cells[cell["slot"]] = layer.cell
            return layer
        cells = []
        for cell, cell_name in zip(spec["cells"], cell_names(len(spec["cells"]))):
            kwargs = self._cell_kwargs(cell)
            if spec.get("implementation") is not None:
                kwargs["implementation"] = spec["implementation"]
            cells.append(K.layers.LSTMCell(cell["units"], name=cell_name, dtype=dtype, **kwargs))
            self.cells[cell["slot"]] = cells[-1]
        if spec.get("rnn_form", "stacked") == "stacked":
            stacked = K.layers.StackedRNNCells(cells, name="stacked_rnn_cells", dtype=dtype)
        else:
            stacked = cells
        return K.layers.RNN(stacked, **common)

    def build_bidi(self, spec, dtype, name):
        forward = self.build_rnn(spec["forward"], dtype, "lstm")
        backward = self.build_rnn(spec["backward"], dtype, "reverse_lstm") if spec["backward_given"] else None
        layer = self.K.layers.Bidirectional(forward, merge_mode=spec["merge_mode"], backward_layer=backward,
                                            dtype=dtype, name=name)
        # Bidirectional keeps or re-creates the layers: bind slots to the cells it really runs
        (fw_cell,), (bw_cell,) = spec["forward"]["cells"], spec["backward"]["cells"]
        self.cells[fw_cell["slot"]] = layer.forward_layer.cell
        self.cells[bw_cell["slot"]] = layer.backward_layer.cell
        if layer.backward_layer.go_backwards == layer.forward_layer.go_backwards:
            raise AssertionError("Bidirectional directions")
        return layer

    def build_layer(self, spec, dtype, name):
        if spec["layer"] == "Bidirectional":
            return self.build_bidi(spec, dtype, name)
        return self.build_rnn(spec, dtype, name)

    def build(self, case, dtype, input_shape):
        spec = case["spec"]
        K = self.K
        self.cells = {}
        self.masking = None
        if spec.get("masking") is not None:
            self.masking = K.layers.Masking(mask_value=spec["masking"], dtype=dtype, name="masking")
        if spec["layer"] == "Sequential":
            layers = [K.Input(shape=input_shape[1:], batch_size=input_shape[0], dtype=feed_dtype(dtype))]
            if self.masking is not None:
                layers.append(self.masking)
            for sub in spec["layers"]:
                layers.append(self.build_layer(sub, dtype, sub["name"]))
            return K.Sequential(layers, name=spec["name"])
        layer = self.build_layer(spec, dtype, spec["name"])
        layer.build(tuple(input_shape))
        return layer

    def assign(self, case, model, dtype):
        """Assign the case's weights (drawing Keras-initialised biases on the float32 run)."""
        dtype = variable_dtype(dtype)  # mixed policies: float32 variables
        paths = {}
        for slot, cell in self.cells.items():
            spec = case["cell_specs"][slot]
            if self.version == "2" and "implementation" in spec:
                if cell.implementation != spec["implementation"]:
                    raise AssertionError(f"{case['name']}: cell {slot} runs implementation {cell.implementation}")
            for variable in cell.weights:
                role = self.path(variable).rsplit("/", 1)[1]
                if role not in KERNEL_ROLES:
                    raise AssertionError(f"{case['name']}: unexpected variable {self.path(variable)}")
                paths[slot, role] = self.path(variable)
                if variable.dtype != dtype:
                    raise AssertionError(f"{case['name']}: {self.path(variable)} is {variable.dtype}, not {dtype}")
                initial = self.numpy(variable)
                if role == "bias" and spec.get("bias_from_keras"):
                    if (slot, role) not in case["weights"]:
                        if dtype != "float32":
                            raise AssertionError("Keras-initialised biases are taken from the float32 run")
                        case["weights"][slot, role] = initial.astype(np.float32)
                    if not np.array_equal(initial, case["weights"][slot, role].astype(dtype)):
                        raise AssertionError(f"{case['name']}: Keras initialised {self.path(variable)} differently")
                    units = spec["units"]
                    forget = initial[units:2 * units]
                    if spec.get("unit_forget_bias", True) != bool(np.all(forget == 1.0)):
                        raise AssertionError(f"{case['name']}: forget block {forget} vs unit_forget_bias")
                value = case["weights"][slot, role].astype(dtype)
                variable.assign(value)
                if not np.array_equal(self.numpy(variable), value):
                    raise AssertionError(f"{case['name']}: assigning {self.path(variable)} failed")
        roles = {key for key in case["weights"]}
        if set(paths) != roles:
            raise AssertionError(f"{case['name']}: Keras variables {sorted(paths)} vs case weights {sorted(roles)}")
        model_paths = {self.path(v) for v in model.weights if self.path(v).rsplit("/", 1)[1] in KERNEL_ROLES}
        if model_paths != set(paths.values()):
            raise AssertionError(f"{case['name']}: model variables {sorted(model_paths)} vs {sorted(paths.values())}")
        return paths

    # ------------------------------------------------------------ tracing

    def trace(self, layer, specs, x_in, mask, initial, dtype, prefix):
        """Per-step (h, c) of an LSTM/RNN layer from Keras (see the module docstring).

        x_in and mask in the layer's own layout; mask is a numpy bool [batch, time] array or None.
        Returns (names -> arrays, the trace RNN's output part [B, T, out] in processing order,
        repeat-previous-output semantics).
        """
        K = self.K
        time_major = bool(getattr(layer, "time_major", False))
        kwargs = {"return_sequences": True, "go_backwards": layer.go_backwards, "unroll": layer.unroll,
                  "dtype": dtype, "name": "trace_rnn"}
        if time_major:
            kwargs["time_major"] = True
        tracer = K.layers.RNN(self.TraceCell(layer.cell, dtype), **kwargs)
        call = {}
        if mask is not None:
            call["mask"] = self.tf.constant(mask.T if time_major else mask)
        if initial is not None:
            call["initial_state"] = initial
        trace = self.numpy(tracer(x_in, **call))
        if tracer.weights and {self.path(v) for v in tracer.weights} != {self.path(v) for v in layer.weights}:
            raise AssertionError("the trace wrapper owns other variables")
        if trace.dtype != compute_dtype(dtype):
            raise AssertionError(f"trace computed in {trace.dtype}")
        if time_major:
            trace = np.transpose(trace, (1, 0, 2))
        units_out = specs[-1]["units"]
        out = trace[..., :units_out]
        named, offset = {}, units_out
        started = None
        if mask is not None:  # steps before a row's first computed step carry the initial state
            started = np.logical_or.accumulate(processing_mask(mask, layer.go_backwards), axis=1)
        flat_initial = None if initial is None else [self.numpy(t) for t in self.tf.nest.flatten(initial)]
        for index, spec in enumerate(specs):
            for k, name in enumerate(("h", "c")):
                values = trace[..., offset:offset + spec["units"]].copy()
                offset += spec["units"]
                if started is not None:
                    fill = (np.zeros((values.shape[0], spec["units"]), compute_dtype(dtype)) if flat_initial is None
                            else flat_initial[2 * index + k])
                    values = np.where(started[:, :, None], values, fill[:, None, :])
                named[f"{prefix}trace/{index}/{name}"] = values
        return named, out

    def expected_from_trace(self, out, mask, layer, return_sequences):
        """The layer's output as Keras's backend.rnn derives it from the repeat-previous-output chain."""
        if mask is None or not getattr(layer, "zero_output_for_mask", False):
            seq, last = out, out[:, -1]
        else:
            direct = np.where(processing_mask(mask, layer.go_backwards)[:, :, None], out, 0)
            last = direct[:, -1]
            # the unrolled loop zeroes with the mask in input order (wrong positions with go_backwards)
            seq = np.where(mask[:, :, None], out, 0) if layer.unroll else direct
        return seq if return_sequences else last

    # ------------------------------------------------------------ running

    def initial_structure(self, spec, inputs, dtype):
        if spec["layer"] == "Bidirectional":
            if "initial_state/fw/0/h" not in inputs:
                return None
            return [self.state_tensor(inputs[f"initial_state/{d}/0/{k}"], dtype) for d in ("fw", "bw")
                    for k in ("h", "c")]
        if "initial_state/0/h" not in inputs:
            return None
        per_layer = [[self.state_tensor(inputs[f"initial_state/{i}/{k}"], dtype) for k in ("h", "c")]
                     for i in range(len(spec["cells"]))]
        return per_layer[0] if spec["layer"] == "LSTM" else per_layer

    def run(self, case, dtype):
        self.reset(dtype)
        spec = case["spec"]
        inputs = case["inputs"]
        tf = self.tf
        if spec.get("stateful"):
            return self.run_stateful(case, dtype)
        x_np = self.feed(inputs["inputs"], dtype)
        model = self.build(case, dtype, x_np.shape)
        paths = self.assign(case, model, dtype)
        x = tf.constant(x_np)
        mask = inputs.get("mask")
        mask_t = None if mask is None else tf.constant(mask)
        if spec["layer"] == "Sequential":
            named = self.run_sequential(case, model, x, mask, dtype)
            return self.check_dtypes(named, dtype), paths
        time_major = spec.get("time_major", False)
        layer_in, layer_mask = x, mask  # layer_mask: numpy, batch-major
        if self.masking is not None:
            layer_in = self.masking(x)
            computed = self.numpy(self.masking.compute_mask(x))
            layer_mask = computed.T if time_major else computed
            expected_mask = np.any(x_np != np.asarray(spec["masking"], feed_dtype(dtype)), axis=-1)
            if not np.array_equal(computed, expected_mask):
                raise AssertionError(f"{case['name']}: Masking computed another mask")
        initial = self.initial_structure(spec, inputs, dtype)
        if self.masking is not None and initial is not None and self.version == "3":
            layer_mask = None  # Keras 3 drops the Masking layer's mask when initial_state is passed
        call = {}
        if mask_t is not None:
            call["mask"] = mask_t
        if initial is not None:
            call["initial_state"] = initial
        result = model(layer_in, **call)  # with Masking: the mask travels on the tensor (_keras_mask)
        flat = [self.numpy(t) for t in tf.nest.flatten(result)]
        if spec["layer"] == "Bidirectional":
            named = self.bidi_outputs(case, model, flat, layer_in, layer_mask, initial, dtype)
        else:
            named = self.rnn_outputs(case, model, flat, layer_in, layer_mask, initial, dtype)
        return self.check_dtypes(named, dtype), paths

    def check_dtypes(self, named, dtype):
        for name, array in named.items():
            if array.dtype != compute_dtype(dtype):
                raise AssertionError(f"{name}: Keras computed {array.dtype} in a {dtype} model")
        return named

    def rnn_outputs(self, case, layer, flat, layer_in, mask, initial, dtype):
        spec = case["spec"]
        named = {"output": flat[0]}
        if spec["return_state"]:
            if len(flat) != 1 + 2 * len(spec["cells"]):
                raise AssertionError(f"{case['name']}: the layer returned {len(flat)} tensors")
            for index in range(len(spec["cells"])):
                named[f"state/{index}/h"], named[f"state/{index}/c"] = flat[1 + 2 * index], flat[2 + 2 * index]
        elif len(flat) != 1:
            raise AssertionError(f"{case['name']}: the layer returned {len(flat)} tensors")
        traces, out = self.trace(layer, spec["cells"], layer_in, mask, initial, dtype, "")
        named.update(traces)
        derived = self.expected_from_trace(out, mask, layer, spec["return_sequences"])
        got = named["output"]
        if getattr(layer, "time_major", False) and spec["return_sequences"]:
            got = np.transpose(got, (1, 0, 2))
        self.same(derived, got, f"{case['name']}: trace output vs layer output", dtype)
        if spec["return_state"]:
            for index in range(len(spec["cells"])):
                for name in ("h", "c"):
                    self.same(named[f"trace/{index}/{name}"][:, -1], named[f"state/{index}/{name}"],
                              f"{case['name']}: last trace step vs state/{index}/{name}", dtype)
        return named

    def bidi_outputs(self, case, layer, flat, layer_in, mask, initial, dtype, spec=None, prefix=""):
        spec = spec or case["spec"]
        fw_spec, bw_spec = spec["forward"], spec["backward"]
        sequences, state = fw_spec["return_sequences"], fw_spec["return_state"]
        named, halves = {}, []
        halves_initial = (None, None) if initial is None else (initial[:2], initial[2:])
        for tag, sub_layer, sub_spec, init in (("fw", layer.forward_layer, fw_spec, halves_initial[0]),
                                               ("bw", layer.backward_layer, bw_spec, halves_initial[1])):
            traces, out = self.trace(sub_layer, sub_spec["cells"], layer_in, mask, init, dtype, f"{prefix}{tag}/")
            named.update(traces)
            halves.append(self.expected_from_trace(out, mask, sub_layer, sequences))
        y, y_rev = halves
        if sequences:
            y_rev = y_rev[:, ::-1]
        mode = spec["merge_mode"]
        if flat is None:
            return named
        count = 2 if mode is None else 1
        outputs = flat[:count]
        if mode is None:
            named["output/0"], named["output/1"] = outputs
            derived = [y, y_rev]
        else:
            named["output"] = outputs[0]
            derived = [{"concat": lambda: np.concatenate([y, y_rev], -1), "sum": lambda: y + y_rev,
                        "mul": lambda: y * y_rev, "ave": lambda: (y + y_rev) / 2}[mode]()]
        for got, want in zip(outputs, derived):
            self.same(want, got, f"{case['name']}: traces vs Bidirectional output", dtype)
        if state:
            states = flat[count:]
            if len(states) != 4:
                raise AssertionError(f"{case['name']}: Bidirectional returned {len(states)} states")
            for tag, (h, c) in (("fw", states[0:2]), ("bw", states[2:4])):
                named[f"{tag}/state/0/h"], named[f"{tag}/state/0/c"] = h, c
                self.same(named[f"{tag}/trace/0/h"][:, -1], h, f"{case['name']}: {tag} last trace step vs h", dtype)
                self.same(named[f"{tag}/trace/0/c"][:, -1], c, f"{case['name']}: {tag} last trace step vs c", dtype)
        elif len(flat) != count:
            raise AssertionError(f"{case['name']}: Bidirectional returned {len(flat)} tensors")
        return named

    def run_sequential(self, case, model, x, mask, dtype):
        tf = self.tf
        spec = case["spec"]
        result = model(x) if mask is None else model(x, mask=tf.constant(mask))
        output = self.numpy(result)
        # the same chain layer by layer, with Keras's own masks, for the traces
        h, m = x, (None if mask is None else tf.constant(mask))
        if self.masking is not None:
            m = self.masking.compute_mask(x)
            h = self.masking(x)
        layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Masking")]
        if len(layers) != len(spec["layers"]):
            raise AssertionError(f"{case['name']}: Sequential has {len(layers)} recurrent layers")
        named = {}
        for index, (layer, sub) in enumerate(zip(layers, spec["layers"])):
            m_np = None if m is None else self.numpy(m)
            prefix = f"layers/{index}/"
            if sub["layer"] == "Bidirectional":
                named.update(self.bidi_outputs(case, layer, None, h, m_np, None, dtype, spec=sub, prefix=prefix))
            else:
                traces, _ = self.trace(layer, sub["cells"], h, m_np, None, dtype, prefix)
                named.update(traces)
            h_next = layer(h) if m is None else layer(h, mask=m)
            m = layer.compute_mask(h, m)
            h = h_next
        if not np.array_equal(self.numpy(h), output):
            raise AssertionError(f"{case['name']}: layer-by-layer chain differs from the Sequential's output")
        named["output"] = output
        return named

    def run_stateful(self, case, dtype):
        spec = case["spec"]
        inputs = case["inputs"]
        calls = sorted(int(k.split("/")[1]) for k in inputs if k.startswith("inputs/"))
        first = self.feed(inputs["inputs/0"], dtype)
        layer = self.build(case, dtype, first.shape)
        paths = self.assign(case, layer, dtype)
        named = {}
        returned = None
        for k in calls:
            result = layer(self.tf.constant(self.feed(inputs[f"inputs/{k}"], dtype)))
            flat = [self.numpy(t) for t in self.tf.nest.flatten(result)]
            named[f"output/{k}"] = flat[0]
            returned = flat[1:]
        states = [self.numpy(v) for v in self.tf.nest.flatten(layer.states)]
        if dtype in REDUCED_RUNS:  # mixed policies keep the states in float32 variables: 16-bit values, widened
            narrow = [state.astype(compute_dtype(dtype)) for state in states]
            if not all(np.array_equal(a.astype(np.float64), b.astype(np.float64)) for a, b in zip(narrow, states)):
                raise AssertionError(f"{case['name']}: a {dtype} layer state is not a {compute_dtype(dtype)} value")
            states = narrow
        if len(states) != 2 * len(spec["cells"]):
            raise AssertionError(f"{case['name']}: {len(states)} state variables")
        for index in range(len(spec["cells"])):
            named[f"state/{index}/h"], named[f"state/{index}/c"] = states[2 * index], states[2 * index + 1]
        if spec["return_state"]:
            for got, want in zip(returned, states):
                if not np.array_equal(got, want):
                    raise AssertionError(f"{case['name']}: returned states differ from layer.states")
        return self.check_dtypes(named, dtype), paths


class KerasRecorder(recorder.Recorder):
    """The keras3 suite (Keras 3 on the TensorFlow backend) or the tfkeras suite (tf-keras 2 as tf.keras).

    Every case is run twice, models built with dtype "float32" and "float64",
    with the same float32-valued weights; it is re-checked against the float64
    NumPy model (keras_numpy) in memory, then written, then re-checked from disk.
    """

    dialect = "keras"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--only", help="record only cases whose id contains this (development)")
        parser.add_argument("--verbose", action="store_true", help="print each case id once recorded")

    def __init__(self, suite, args):
        super().__init__(suite, args)
        K, tf = self.keras, self.tf
        self.version = "2" if recorder.SUITES[suite][2] else "3"
        if self.version == "3" and (not K.__version__.startswith("3.") or K.backend.backend() != "tensorflow"):
            sys.exit(f"need Keras 3 on the TensorFlow backend, got {K.__version__} / {K.backend.backend()}")
        if self.version == "2" and (not K.__version__.startswith("2.") or tf.keras.__name__.split(".")[0] != "tf_keras"):
            sys.exit(f"need tf-keras 2.x as tf.keras (TF_USE_LEGACY_KERAS=1), got {K.__version__} / {tf.keras.__name__}")
        self.runner = KerasRunner(K, tf, self.version)

    def cases(self):
        return keras_cases.suite_cases(self.version)

    def record(self, case, suite_dir):
        """Record one case; its "inexact": trace checks that agreed only within `close`."""
        before = self.runner.inexact_trace_checks
        out32, paths = self.runner.run(case, "float32")
        out64, paths64 = self.runner.run(case, "float64")
        if paths != paths64:
            raise AssertionError(f"{case['name']}: float32 and float64 models name their variables differently")
        model = keras_cases.model_json(case["spec"], paths, self.version)
        if "description" not in case:
            case["description"] = keras_cases.describe(case["spec"], self.version, case["inputs"],
                                                       case["description_extra"])
        notes = case.get("notes") or keras_cases.notes_for(case["spec"], case["inputs"], case["notes_base"])
        variables = {paths[k]: case["weights"][k] for k in paths}
        variables64 = {name: value.astype(np.float64) for name, value in variables.items()}
        inputs = {k: (v if v.dtype == np.bool_ else v.astype(np.float64)) for k, v in case["inputs"].items()}
        expected = {name: {"float32": out32[name], "float64": out64[name]} for name in out64}
        compare(case["name"], keras_numpy.keras_outputs(model, variables64, inputs), expected, "Keras")
        if case["generator"] in ("grid", "canary", "quirk"):
            largest = max(float(np.max(np.abs(v), initial=0.0)) for v in out64.values())
            if largest > 100.0:
                raise AssertionError(f"{case['name']}: outputs reach {largest:.3g}: tame the draw")
        for label, traps, minimum in case["traps"]:
            wrong = keras_numpy.keras_outputs(model, variables64, inputs, traps)
            distance = max(float(np.max(np.abs(wrong[n] - out64[n]), initial=0.0)) if n in wrong else np.inf
                           for n in out64)
            if not distance >= minimum:
                raise AssertionError(f"{case['name']}: the trap '{label}' lands only {distance:.3g} away")
            notes += f" Trap '{label}': a NumPy model making this mistake is {distance:.3g} away (max abs)."
        writer = self.writer(case, model, notes, variables, out32, out64)
        if self.wants_reduced(case):
            self.add_reduced(writer, *self.run_reduced(case, paths, out64))
        writer.write(suite_dir)
        return {"inexact": self.runner.inexact_trace_checks - before}

    def run_reduced(self, case, paths, out64):
        """(runs, notes) of the case's reduced-precision sidecar: mixed_float16 and mixed_bfloat16 policies.

        The float16 run is repeated with every layer built with dtype="float16" (float16 variables);
        `how` says whether it gives the same bits, the notes give the largest ULP distance if not.
        """
        keras = "Keras 3" if self.version == "3" else "tf-keras"
        runs, notes, outputs = {}, [], {}
        try:
            for policy in ("mixed_float16", "mixed_bfloat16", "float16"):
                outputs[policy], reduced_paths = self.runner.run(case, policy)
                if reduced_paths != paths or set(outputs[policy]) != set(out64):
                    raise AssertionError(f"{case['name']}: the {policy} model differs from the float32 one")
        finally:
            self.runner.reset("float32")  # no policy may leak into the next case
        for policy, precision in (("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")):
            how = (f"{keras} {policy} policy (global and every layer's): float32 variables holding the case's "
                   f"values, cast to {precision} at use; float32 inputs autocast by the layers; initial states "
                   f"cast with tf.cast")
            if precision == "float16":
                worst = max(reduced.ulp16(outputs["float16"][n], outputs[policy][n], "float16") for n in out64)
                if worst == 0:
                    how += "; a model built with dtype=\"float16\" (float16 variables) gives the same bits"
                else:
                    notes.append(f"A model built with dtype=\"float16\" (float16 variables) differs from this "
                                 f"mixed_float16 run by up to {worst} ULP.")
            runs[precision] = {"how": how, "outputs": outputs[policy]}
        if case["spec"].get("stateful"):
            notes.append("Stateful: under a mixed policy layer.states are float32 variables; the state/* outputs "
                         "are their values, each exactly a 16-bit value (checked), stored as such.")
        notes.append("Not run with dtype=\"bfloat16\" layers: with them TF refuses the default orthogonal "
                     "recurrent initializer (no bfloat16 Qr kernel); the mixed_bfloat16 policy keeps float32 "
                     "variables and is unaffected.")
        return runs, " ".join(notes)

    def check_suite(self, suite_dir):
        keras_numpy.check_suite(suite_dir)

    def summary(self, cases, results, seconds):
        inexact = sum(result["inexact"] for result in results.values())
        return [f"{self.suite}: recorded {len(cases)} cases in {seconds:.1f} s "
                f"({inexact} trace checks agreed within 1e-6/1e-13 rather than exactly)"]
