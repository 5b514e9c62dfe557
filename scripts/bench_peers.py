#!/usr/bin/env python3
"""Time the LSTMs people would use instead of lstm-parity, at the same shapes.

    scripts/bench_peers.py [--json] [--shapes B64-T50-H512,...] [--threads N] [--repeats N]

Peers (float32, CPU), each a one-layer LSTM with input size = hidden size,
returning the whole output sequence, inputs and weights random:

* ``keras3``          Keras 3 ``layers.LSTM(H, return_sequences=True)`` on TensorFlow,
                      called inside a ``tf.function`` (graph mode, no Python per step)
* ``tf.BlockLSTMV2``  ``tf.raw_ops.BlockLSTMV2`` (TensorFlow's fused LSTM op), in a ``tf.function``
* ``onnxruntime``     an ONNX ``LSTM`` node (opset 14) built with ``onnx.helper``, run by onnxruntime
* ``torch``           ``torch.nn.LSTM`` when PyTorch is installed (skipped with a note otherwise)

Each shape: warm-up runs, then repeats until a minimum count and time; the
reported time is the median. FLOPs: ``2 * T * B * 4H * (I + H)``, as
``lstm-parity bench`` counts them. ``--json`` prints one object per line:
``{"impl": "onnxruntime", "shape": "B64-T50-H512", "dtype": "float32", "ms": ..., "gflops": ..., "threads": N}``.

Threads: by default every framework uses its own default (all cores);
``--threads N`` sets TensorFlow's intra-op pool, onnxruntime's
``intra_op_num_threads`` and ``torch.set_num_threads`` to N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

SHAPES = ["B64-T50-H512", "B128-T25-H1024", "B16-T100-H256", "B1-T200-H128"]


def parse_shape(text: str) -> tuple[int, int, int]:
    parts = text.strip().split("-")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: expected B64-T50-H512")
    values = []
    for part, prefix in zip(parts, "bth"):
        part = part.strip().lower()
        values.append(int(part[1:] if part.startswith(prefix) else part))
    return tuple(values)  # type: ignore[return-value]


def shape_name(b: int, t: int, h: int) -> str:
    return f"B{b}-T{t}-H{h}"


def flops(b: int, t: int, h: int) -> float:
    return 2.0 * t * b * 4 * h * (h + h)


def timed(fn, warmup: int, min_runs: int, min_time: float, max_runs: int = 200) -> tuple[float, int]:
    """Median seconds of `fn()` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - started < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def weights(rng, h: int):
    """Canonical weights (gate blocks i, f, g, o), uniform in ±1/sqrt(H)."""
    import numpy as np

    s = 1.0 / np.sqrt(h)
    w_x = rng.uniform(-s, s, (h, 4 * h)).astype(np.float32)
    w_h = rng.uniform(-s, s, (h, 4 * h)).astype(np.float32)
    bias = rng.uniform(-s, s, (4 * h,)).astype(np.float32)
    return w_x, w_h, bias


class Peer:
    name = ""

    def prepare(self, b: int, t: int, h: int):
        """Return a zero-argument callable that runs the LSTM once and waits for it."""
        raise NotImplementedError


class Keras3(Peer):
    name = "keras3"

    def __init__(self, threads: int | None):
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        import keras  # noqa: F401  (after the threading setup)

        self.tf = tf
        self.keras = keras

    def prepare(self, b, t, h):
        import numpy as np

        tf, keras = self.tf, self.keras
        rng = np.random.default_rng(0)
        layer = keras.layers.LSTM(h, return_sequences=True)
        layer.build((b, t, h))
        w_x, w_h, bias = weights(rng, h)  # Keras' gate order is i, f, c, o: the canonical one
        layer.set_weights([w_x, w_h, bias])
        x = tf.constant(rng.uniform(-1, 1, (b, t, h)).astype(np.float32))

        @tf.function
        def call(x):
            return layer(x)

        return lambda: call(x).numpy()


class BlockLSTMV2(Peer):
    name = "tf.BlockLSTMV2"

    def __init__(self, threads: int | None):
        import tensorflow as tf

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # already set by Keras3 in this process
        self.tf = tf

    def prepare(self, b, t, h):
        import numpy as np

        tf = self.tf
        rng = np.random.default_rng(0)
        w_x, w_h, bias = weights(rng, h)
        # BlockLSTMV2 gate order is i, c, f, o; time-major input.
        perm = np.concatenate([np.arange(0, h), np.arange(2 * h, 3 * h), np.arange(h, 2 * h), np.arange(3 * h, 4 * h)])
        w = tf.constant(np.concatenate([w_x, w_h], axis=0)[:, perm])
        bb = tf.constant(bias[perm])
        x = tf.constant(rng.uniform(-1, 1, (t, b, h)).astype(np.float32))
        zeros_state = tf.zeros((b, h), tf.float32)
        zeros_peep = tf.zeros((h,), tf.float32)
        seq_len_max = tf.constant(t, tf.int64)

        @tf.function
        def call(x):
            out = tf.raw_ops.BlockLSTMV2(
                seq_len_max=seq_len_max, x=x, cs_prev=zeros_state, h_prev=zeros_state, w=w,
                wci=zeros_peep, wcf=zeros_peep, wco=zeros_peep, b=bb, cell_clip=0.0, use_peephole=False,
            )
            return out.h

        return lambda: call(x).numpy()


class OnnxRuntime(Peer):
    name = "onnxruntime"

    def __init__(self, threads: int | None):
        import onnx  # noqa: F401
        import onnxruntime

        self.ort = onnxruntime
        self.threads = threads

    def prepare(self, b, t, h):
        import numpy as np
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        w_x, w_h, bias = weights(rng, h)
        # ONNX gate order is i, o, f, c; W is [dirs, 4H, I], R [dirs, 4H, H], B [dirs, 8H].
        blocks = [0, 3, 1, 2]
        order = np.concatenate([np.arange(k * h, (k + 1) * h) for k in blocks])
        W = w_x[:, order].T[None].copy()
        R = w_h[:, order].T[None].copy()
        B = np.concatenate([bias[order], np.zeros(4 * h, np.float32)])[None].copy()
        node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=h)
        graph = helper.make_graph(
            [node], "lstm",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [t, b, h])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [t, 1, b, h])],
            initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
                         numpy_helper.from_array(B, "B")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        model.ir_version = 8  # what every onnxruntime >= 1.10 reads
        options = self.ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        session = self.ort.InferenceSession(model.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        x = rng.uniform(-1, 1, (t, b, h)).astype(np.float32)
        return lambda: session.run(None, {"X": x})


class Torch(Peer):
    name = "torch"

    def __init__(self, threads: int | None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch

    def prepare(self, b, t, h):
        torch = self.torch
        lstm = torch.nn.LSTM(h, h, batch_first=True).eval()
        x = torch.rand(b, t, h) * 2 - 1

        def call():
            with torch.inference_mode():
                lstm(x)

        return call


PEERS = {"keras3": Keras3, "tf.BlockLSTMV2": BlockLSTMV2, "onnxruntime": OnnxRuntime, "torch": Torch}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--shapes", type=lambda s: [parse_shape(x) for x in s.split(",") if x.strip()],
                        default=[parse_shape(s) for s in SHAPES], help="B64-T50-H512,B1-T200-H128,...")
    parser.add_argument("--threads", type=int, default=None, help="threads for every peer (default: theirs)")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ", ".join(PEERS))
    parser.add_argument("--repeats", type=int, default=7, help="minimum timed runs (after warm-up; at least 1 s)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")

    peers = []
    for name in args.peers.split(","):
        name = name.strip()
        if name not in PEERS:
            print(f"bench_peers: unknown peer {name!r}", file=sys.stderr)
            return 2
        try:
            peers.append(PEERS[name](args.threads))
        except ImportError as e:
            print(f"bench_peers: skipping {name}: not installed ({e.name})", file=sys.stderr)

    if not args.json:
        print(f"{'impl':<16} {'shape':<14} {'dtype':<8} {'ms':>10} {'GFLOP/s':>9}")
    for b, t, h in args.shapes:
        for peer in peers:
            call = peer.prepare(b, t, h)
            seconds, runs = timed(call, warmup=2, min_runs=max(1, args.repeats), min_time=1.0)
            result = {"impl": peer.name, "shape": shape_name(b, t, h), "dtype": "float32",
                      "ms": seconds * 1e3, "gflops": flops(b, t, h) / seconds / 1e9,
                      "threads": args.threads or os.cpu_count(), "runs": runs}
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                print(f"{result['impl']:<16} {result['shape']:<14} {'float32':<8} "
                      f"{result['ms']:>10.3f} {result['gflops']:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
