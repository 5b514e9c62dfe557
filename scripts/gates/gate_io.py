"""What every gate adapter shares (scripts/gates/onnxruntime.py, torch.py, ...):
reading an `lstm-parity export` folder, running each exported step (or a
bidirectional pair of steps) through the implementation, and writing the
outputs folder `lstm-parity check` reads. The file contract is in
docs/gate.md; the adapters supply only how a step is read and run.
"""

import json
import os
import sys

import numpy as np


def fail(message):
    """Exit 2 with a message naming the adapter script."""
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(2)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def read_export(argv, layouts):
    """`SCRIPT EXPORT_DIR OUT_DIR`: the two folders and the export's index,
    which must be a version-2 export in one of `layouts`."""
    if len(argv) != 3:
        fail(f"usage: {os.path.basename(argv[0])} EXPORT_DIR OUT_DIR")
    export_dir, out_dir = argv[1], argv[2]
    index = load_json(os.path.join(export_dir, "index.json"))
    if index.get("format") != "lstm-parity-gate-export" or index.get("version") != 2:
        fail(f"{export_dir}/index.json: not an lstm-parity gate export (version 2; export again with this build)")
    if index["layout"] not in layouts:
        fail(f"{export_dir}: layout {index['layout']!r}; this adapter reads the {' and '.join(layouts)} layout(s)")
    return export_dir, out_dir, index


class StepFolder:
    """One exported step's folder: its `step.json` (`spec`), name, folder
    relative to the export (`rel`), direction, and its arrays (`array`).
    Each adapter's step class adds what its implementation needs."""

    def __init__(self, export_dir, entry):
        self.name = entry["name"]
        self.rel = entry["dir"]
        self.dir = os.path.join(export_dir, entry["dir"])
        self.spec = load_json(os.path.join(self.dir, "step.json"))
        self.reverse = self.spec["direction"] == "reverse"

    def array(self, ref):
        """The array a file reference of the step names."""
        return np.load(os.path.join(self.dir, ref["file"]))


def layer_arrays(spec, k, layer, array):
    """Layer `k` of a step's `spec`: its weights by name, and its initial
    (h, c) or None; `array` reads one file reference of the step."""
    weights = {name: array(ref) for name, ref in layer["weights"].items()}
    initial = None
    if f"initial_h/{k}" in spec["inputs"]:
        initial = (array(spec["inputs"][f"initial_h/{k}"]), array(spec["inputs"][f"initial_c/{k}"]))
    return weights, initial


def write_npy(path, array):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


def write_step(out_dir, step, result):
    """A step's outputs (`result` = (y, [(h_n, c_n)] per layer), in the
    dtype of its inputs), or error.txt when the implementation refused it."""
    d = os.path.join(out_dir, step.rel)
    os.makedirs(d, exist_ok=True)
    if isinstance(result, Exception):
        with open(os.path.join(d, "error.txt"), "w") as f:
            f.write(f"{type(result).__name__}: {result}\n")
        return
    y, finals = result
    dt = step.x.dtype
    write_npy(os.path.join(d, "y.npy"), y.astype(dt, copy=False))
    for k, (h, c) in enumerate(finals):
        write_npy(os.path.join(d, f"h_n.{k}.npy"), h.astype(dt, copy=False))
        write_npy(os.path.join(d, f"c_n.{k}.npy"), c.astype(dt, copy=False))


def run_export(export_dir, out_dir, index, adapter, implementation, who):
    """Run every exported step of every case: a case's bidirectional pair
    (adapter.bidirectional_pair) as one run (adapter.run_pair), the other
    steps one by one (adapter.run_step); an exception from the
    implementation becomes the step's error.txt. Then outputs.json, and a
    summary line naming `who` refused how many steps."""
    os.makedirs(out_dir, exist_ok=True)
    ran = refused = 0
    for case in index["cases"]:
        if not case["exported"]:
            continue
        steps = []
        for entry in case["steps"]:
            try:
                steps.append(adapter.StepData(export_dir, entry))
            except (OSError, ValueError, KeyError) as e:
                fail(f"{case['id']} step {entry['name']}: {e}")
        pair = adapter.bidirectional_pair(steps)
        if pair is not None:
            fw, bw = pair
            try:
                r_fw, r_bw = adapter.run_pair(fw, bw)
            except Exception as e:  # implementations raise their own types
                r_fw = r_bw = e
                refused += 2
            write_step(out_dir, fw, r_fw)
            write_step(out_dir, bw, r_bw)
            steps = [s for s in steps if s is not fw and s is not bw]
            ran += 2
        for step in steps:
            try:
                result = adapter.run_step(step)
            except Exception as e:  # implementations raise their own types
                result = e
                refused += 1
            write_step(out_dir, step, result)
            ran += 1
    info = {
        "format": "lstm-parity-gate-outputs",
        "version": 1,
        "suite_fingerprint": index["suite_fingerprint"],
        "implementation": implementation,
        "export": os.path.abspath(export_dir),
    }
    with open(os.path.join(out_dir, "outputs.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    print(
        f"{os.path.basename(sys.argv[0])}: ran {ran} steps ({refused} refused by {who}) into {out_dir}",
        file=sys.stderr,
    )
