#!/usr/bin/env python3
"""Run PyTorch's `nn.LSTM` on an lstm-parity gate export and write the
outputs `lstm-parity check` reads (the contract is in docs/gate.md).

    torch.py EXPORT_DIR OUT_DIR
    lstm-parity check --outputs OUT_DIR [--expectations FILE]

Run by `scripts/gates/run torch` (by hand, not in CI: PyTorch's PyPI wheel
pulls about 3 GB of CUDA wheels). Last run with PyTorch 2.15.0 on the CPU:
107 of the 109 exported cases pass; the other 2 are PyTorch's refusals
listed in torch.expectations.toml. The report is
scripts/gates/results/torch.torch.json.

EXPORT_DIR is `lstm-parity export --layout torch` (batch-major: x is
[batch, time, input], y is [batch, time, hidden]). Per exported step, one
`nn.LSTM(num_layers=1, batch_first=True, proj_size=...)` per layer of the
step's stack, each layer reading the previous one's outputs, with the
exported `weight_ih_l<k>`, `weight_hh_l<k>`, `bias_ih_l<k>`, `bias_hh_l<k>`
(each holding half of the bias: both must be used) and `weight_hr_l<k>`.

* Per-row lengths (`sequence_lengths`) run as packed sequences; outputs
  past a row's length are zero, as `pad_packed_sequence` pads. PyTorch
  refuses length 0, so such rows are left out of the packed run: their
  outputs are zero and their final state is the initial state, as the
  contract says for a row that never computes.
* PyTorch has no reverse-only direction. A reverse step runs forward on
  each row's valid prefix reversed (`reverse_sequence`); its outputs are
  then in processing order, shifted right by the row's padding (a reverse
  step meets the padded steps first, and outputs zeros there).
* Two single-layer steps of one case that read the same inputs in
  opposite directions (Keras `Bidirectional`) run as one
  `nn.LSTM(bidirectional=True)`; the backward half of its output is in
  input time order and is flipped into processing order.
* No traces are written (nn.LSTM returns no per-step cell states).

A step PyTorch refuses gets error.txt with its message. Exit status 0, or 2
when the export cannot be read.
"""

import os
import sys
from importlib.metadata import version

# The shared part of the adapters, from this folder, before the folder
# leaves the import path: this file is named like the package it drives,
# and `import torch` would otherwise import this script.
from gate_io import StepFolder, layer_arrays, read_export, run_export  # noqa: E402  (first, see above)

_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402


class StepData(StepFolder):
    """One exported step, read from its folder."""

    def __init__(self, export_dir, entry):
        super().__init__(export_dir, entry)
        s = self.spec
        if s["time_major"]:
            raise ValueError("expected a batch-major (torch) export")
        self.x = self.array(s["inputs"]["x"])  # [B, T, I], input time order
        self.batch, self.time = self.x.shape[0], self.x.shape[1]
        if "sequence_lengths" in s["inputs"]:
            self.lengths = self.array(s["inputs"]["sequence_lengths"]).astype(np.int64)
        elif "mask" in s["inputs"]:
            raise ValueError("the step has a mask that is not a length mask (the torch layout exports none)")
        else:
            self.lengths = None
        self.layers = []
        for k, layer in enumerate(s["layers"]):
            w, init = layer_arrays(s, k, layer, self.array)
            self.layers.append(
                {
                    "index": k,
                    "hidden": layer["options"]["hidden_size"],
                    "proj": layer["options"]["proj_size"],
                    "out": layer["output_size"],
                    "weights": w,
                    "initial": init,
                }
            )


def torch_dtype(x):
    return torch.float32 if x.dtype == np.float32 else torch.float64


def make_lstm(layers, input_size, dtype):
    """One nn.LSTM layer; two layer dicts make it bidirectional (forward, backward)."""
    first = layers[0]
    lstm = torch.nn.LSTM(
        input_size=input_size,
        hidden_size=first["hidden"],
        num_layers=1,
        bias=True,
        batch_first=True,
        bidirectional=len(layers) == 2,
        proj_size=first["proj"],
    ).to(dtype)
    state = {}
    for suffix, layer in zip(["", "_reverse"], layers):
        k = layer["index"]
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
            exported = f"{name}_l{k}"
            if exported in layer["weights"]:
                state[f"{name}_l0{suffix}"] = torch.from_numpy(layer["weights"][exported])
    lstm.load_state_dict(state, strict=True)
    lstm.eval()
    return lstm


def reverse_sequence(x, lengths):
    """Reverse the first lengths[b] steps of each row of [B, T, ...]; leave the rest."""
    out = x.copy()
    for b, n in enumerate(lengths):
        out[b, :n] = x[b, :n][::-1]
    return out


def run_layer(lstm, x, lengths, h0, c0):
    """Run one (uni- or bidirectional) layer on [B, T, I] numpy input.

    Rows of length 0 are not run: output 0, final state = initial state.
    Returns (y [B, T, dirs*out], h_n [dirs, B, out], c_n [dirs, B, U]).
    """
    dtype = torch_dtype(x)
    batch, time = x.shape[0], x.shape[1]
    dirs = 2 if lstm.bidirectional else 1
    out_size = lstm.proj_size or lstm.hidden_size
    h_n = h0.copy()
    c_n = c0.copy()
    y = np.zeros((batch, time, dirs * out_size), dtype=x.dtype)
    rows = np.arange(batch) if lengths is None else np.nonzero(lengths > 0)[0]
    if len(rows) == 0:
        return y, h_n, c_n
    xs = torch.from_numpy(np.ascontiguousarray(x[rows])).to(dtype)
    h = torch.from_numpy(np.ascontiguousarray(h0[:, rows])).to(dtype)
    c = torch.from_numpy(np.ascontiguousarray(c0[:, rows])).to(dtype)
    with torch.no_grad():
        if lengths is None:
            out, (hn, cn) = lstm(xs, (h, c))
            out = out.numpy()
        else:
            packed = pack_padded_sequence(xs, torch.from_numpy(lengths[rows]), batch_first=True, enforce_sorted=False)
            out, (hn, cn) = lstm(packed, (h, c))
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=time)
            out = out.numpy()
    y[rows] = out
    h_n[:, rows] = hn.numpy()
    c_n[:, rows] = cn.numpy()
    return y, h_n, c_n


def initial(layer, batch, dtype):
    if layer["initial"] is None:
        return np.zeros((batch, layer["out"]), dtype), np.zeros((batch, layer["hidden"]), dtype)
    return layer["initial"]


def run_step(step):
    """One step's stack. Returns (y [B, T, H] in processing order, [(h_n, c_n)] per layer)."""
    x, lengths = step.x, step.lengths
    T = step.time
    if step.reverse:
        # Work on each row's valid prefix reversed (the whole row without lengths).
        full = np.full(step.batch, T) if lengths is None else lengths
        x = reverse_sequence(x, full)
    finals = []
    for layer in step.layers:
        lstm = make_lstm([layer], x.shape[2], torch_dtype(step.x))
        h0, c0 = initial(layer, step.batch, step.x.dtype)
        x, h_n, c_n = run_layer(lstm, x, lengths, h0[None], c0[None])
        finals.append((h_n[0], c_n[0]))
    y = x
    if step.reverse and lengths is not None:
        # Processing order: a row of length n sees T - n padded steps first (outputs 0).
        shifted = np.zeros_like(y)
        for b, n in enumerate(lengths):
            shifted[b, T - n :] = y[b, :n]
        y = shifted
    return y, finals


def bidirectional_pair(steps):
    """Two single-layer steps that read the same inputs in opposite directions."""
    for a in steps:
        for b in steps:
            if a is b or a.reverse or not b.reverse:
                continue
            la, lb = a.layers, b.layers
            if len(la) != 1 or len(lb) != 1:
                continue
            if (la[0]["hidden"], la[0]["proj"]) != (lb[0]["hidden"], lb[0]["proj"]):
                continue
            if not np.array_equal(a.x, b.x):
                continue
            if (a.lengths is None) != (b.lengths is None) or (
                a.lengths is not None and not np.array_equal(a.lengths, b.lengths)
            ):
                continue
            return a, b
    return None


def run_pair(fw, bw):
    """One bidirectional nn.LSTM for a forward and a reverse step."""
    lf, lb = fw.layers[0], bw.layers[0]
    lstm = make_lstm([lf, lb], fw.x.shape[2], torch_dtype(fw.x))
    (hf, cf), (hb, cb) = initial(lf, fw.batch, fw.x.dtype), initial(lb, bw.batch, bw.x.dtype)
    y, h_n, c_n = run_layer(lstm, fw.x, fw.lengths, np.stack([hf, hb]), np.stack([cf, cb]))
    out = lf["out"]
    y_fw = y[:, :, :out]
    y_bw = np.flip(y[:, :, out:], axis=1)  # input time order -> processing order
    return (y_fw, [(h_n[0], c_n[0])]), (y_bw, [(h_n[1], c_n[1])])


def main(argv):
    export_dir, out_dir, index = read_export(argv, ("torch",))
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    run_export(export_dir, out_dir, index, sys.modules[__name__], f"PyTorch {version('torch')} nn.LSTM (CPU)", "PyTorch")


if __name__ == "__main__":
    main(sys.argv)
