#!/usr/bin/env python3
"""TF Lite's converter gives a fused LSTM's state operand and another
LSTM's zero initial state one tensor, so the second LSTM starts from the
first one's final state.

A tf-keras LSTM with tanh and sigmoid whose states nobody reads becomes the
fused UNIDIRECTIONAL_SEQUENCE_LSTM op. Its state operands (18: h, 19: c)
are variable tensors, updated in place; their zero initial value is a
constant. A Keras LSTM with other activations becomes a WHILE loop whose
initial h and c are zero constants of the same shape. The converter merges
identical constants and then splits them again only between *stateful*
operands (tensorflow/compiler/mlir/lite/transforms/tflite_passes/
split_merged_operands_pass.cc, DuplicateValueIfNeeded: a value is
duplicated only when another stateful operand has already used it), so the
fused op's h operand stays the WHILE loop's initial h and c. When the
fused op runs first, the loop starts from its final h instead of zeros:
always in a stack, and for two LSTMs on the same input when the fused one
is scheduled first (the converter orders them by layer name here).

    python litert_shared_zero_state.py     (needs tensorflow, tf-keras, numpy)

Two models, each converted with TFLiteConverter.from_keras_model and run
once with tf.lite.Interpreter, against the Keras model itself:

* a stack, LSTM(4) then LSTM(4, activation="relu");
* two LSTMs on the same input, LSTM(4) and LSTM(4, activation="relu")
  (the layers named so that the fused one runs first).

For each it prints the largest difference of the relu LSTM's outputs from
Keras, from Keras with that layer started at (h, h) = the first layer's
final h, and whether the loop's initial-state inputs are the fused op's
state tensor. Exits 1 while TF Lite's outputs differ from Keras.
"""

import os
import sys
import warnings

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

L = keras.layers
BATCH, TIME, INPUT, UNITS = 2, 5, 3, 4


def build(stacked, started_from_first):
    """[y of the tanh LSTM, y of the relu LSTM]; the relu LSTM reads the
    first one's outputs (stacked) or x, from zeros or from (h, h) of the
    first one's final h."""
    x = keras.Input((TIME, INPUT), batch_size=BATCH, name="x")
    first = L.LSTM(UNITS, return_sequences=True, return_state=started_from_first, name="lstm_a")(x)
    y1, state = (first[0], [first[1], first[1]]) if started_from_first else (first, None)
    second = L.LSTM(UNITS, activation="relu", return_sequences=True, name="lstm_b")
    y2 = second(y1 if stacked else x, initial_state=state)
    return keras.Model(x, [y1, y2])


def main():
    warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
    bug = False
    for stacked in (True, False):
        rng = np.random.default_rng(0)
        model = build(stacked, started_from_first=False)
        model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
        shifted = build(stacked, started_from_first=True)
        shifted.set_weights(model.get_weights())
        x = rng.standard_normal((BATCH, TIME, INPUT)).astype(np.float32)

        flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=1)
        got = interpreter.get_signature_runner()(x=x)
        y1, y2 = np.array(got[model.output_names[0]]), np.array(got[model.output_names[1]])

        ops = interpreter._get_ops_details()
        fused_h = [op["inputs"][18] for op in ops if op["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
        loop_inputs = [set(op["inputs"]) for op in ops if op["op_name"] == "WHILE"]
        shared = bool(fused_h and loop_inputs and fused_h[0] in loop_inputs[0])

        want = [np.array(t) for t in model(x)]
        want_shifted = np.array(shifted(x)[1])
        off = float(np.abs(y2 - want[1]).max())
        print(
            f"tensorflow {tf.__version__}, {'stack' if stacked else 'same input'}: "
            f"ops {' '.join(op['op_name'] for op in ops)}; "
            f"tanh LSTM max |tflite - keras| = {np.abs(y1 - want[0]).max():.2e}; "
            f"relu LSTM max |tflite - keras| = {off:.2e}, "
            f"against keras started at the tanh LSTM's final h = {np.abs(y2 - want_shifted).max():.2e}; "
            f"the loop's initial state is the fused op's h operand: {shared}"
        )
        bug |= off > 1e-5
    sys.exit(1 if bug else 0)


if __name__ == "__main__":
    main()
