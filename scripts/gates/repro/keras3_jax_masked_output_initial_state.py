#!/usr/bin/env python3
"""Keras 3 on the JAX backend: a masked LSTM given an initial state outputs
that initial h at the masked time steps before a row's first computed
step, where Keras (the TensorFlow and PyTorch backends, and JAX itself with
`unroll=True`) outputs zeros there.

Keras masking keeps the state at a masked step and outputs the row's
previous output, zeros before its first computed step. The JAX backend's
rolled loop (keras/src/backend/jax/rnn.py, `rnn`, the `_step` of
`lax.scan` with a mask) takes the previous output from the state
(`output_tm1 = states[0]`), which is the initial h until the row computes;
its unrolled loop starts from `jnp.zeros_like(output)`, as the TensorFlow
backend's `prev_output` does.

    KERAS_BACKEND=jax python keras3_jax_masked_output_initial_state.py   (needs keras, jax, numpy)

Prints, per `unroll`, the largest difference from NumPy and the row whose
first step is masked; exits 1 while the rolled loop differs from NumPy
(the bug is present), 0 when it matches.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def numpy_lstm(x, mask, kernel, recurrent, bias, h0, c0):
    """Keras's LSTM (gates i, f, c, o; sigmoid, tanh) with Keras masking."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h, c = h0, c0
    out = np.zeros_like(h0)  # the previous output: zeros before a row computes
    ys = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4, axis=1)
        c_new = sig(f) * c + sig(i) * np.tanh(g)
        h_new = sig(o) * np.tanh(c_new)
        m = mask[:, t : t + 1]
        h, c = np.where(m, h_new, h), np.where(m, c_new, c)
        out = np.where(m, h_new, out)
        ys.append(out)
    return np.stack(ys, axis=1)


def main():
    rng = np.random.default_rng(0)
    batch, time, inputs, units = 2, 4, 3, 2
    x = rng.standard_normal((batch, time, inputs)).astype(np.float32)
    mask = np.array([[True, True, True, True], [False, True, True, False]])
    kernel = (rng.standard_normal((inputs, 4 * units)) * 0.5).astype(np.float32)
    recurrent = (rng.standard_normal((units, 4 * units)) * 0.5).astype(np.float32)
    bias = (rng.standard_normal(4 * units) * 0.5).astype(np.float32)
    h0 = rng.standard_normal((batch, units)).astype(np.float32)
    c0 = rng.standard_normal((batch, units)).astype(np.float32)
    want = numpy_lstm(x, mask, kernel, recurrent, bias, h0, c0)

    differs = {}
    for unroll in (False, True):
        layer = keras.layers.LSTM(units, return_sequences=True, unroll=unroll)
        layer.build(x.shape)
        layer.set_weights([kernel, recurrent, bias])
        got = keras.ops.convert_to_numpy(layer(x, mask=mask, initial_state=[h0, c0]))
        err = np.abs(got - want).max()
        differs[unroll] = err > 1e-5
        print(
            f"Keras {keras.__version__} ({keras.backend.backend()}), unroll={unroll}: "
            f"max |keras - numpy| = {err:.3e}; row 1 (step 0 masked), step 0: "
            f"got {got[1, 0].tolist()}, expected {want[1, 0].tolist()} (initial h {h0[1].tolist()})"
        )
    sys.exit(1 if differs[False] else 0)


if __name__ == "__main__":
    main()
