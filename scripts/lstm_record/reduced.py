"""Reduced-precision runs of a case: TensorFlow itself in float16 and bfloat16 (issue 18).

For a subset of cases (`wants_reduced`, the one place that decides which) the
family's runner also runs TF with the case's own variables and inputs in
float16 and in bfloat16, and the results are written beside the case in a
sidecar, `reduced.json` plus its arrays (reference/README.md, "Reduced-precision
runs"). `case.json` and the case's other files are not touched by this: the
sidecar is an addition to the case folder.

On disk: a float16 result is saved as TF computed it (`<f2`, `<name>.f16.npy`);
a bfloat16 result is widened exactly to float32 (`<f4`, `<name>.bf16.npy`),
every value a bfloat16 (the low 16 bits of each float32 are zero).

This module does not import TensorFlow.
"""

import numpy as np

from lstm_record.case_writer import file_stem

FORMAT = "lstm-parity-reduced-precision"
VERSION = 1
PRECISIONS = ("float16", "bfloat16")
SUFFIX = {"float16": "f16", "bfloat16": "bf16"}
GRID_PREFIX_COUNT = 12  # block and tfkeras (no rand-* cases): the first 12 grid-* cases by name


def wants_reduced(suite, name, all_names):
    """Whether case `name` of `suite` gets reduced-precision runs (the ONE selection rule).

    Every suite: every notebook case (`nb*`) and every canary (`canary-*`).
    tf1 and keras3: also every `rand-*` case. block and tfkeras, which have no
    `rand-*` cases: the first 12 `grid-*` cases in name order (`all_names`: every
    case name of the suite, so the rule does not depend on `--only`).
    """
    if name.startswith("nb") or name.startswith("canary-"):
        return True
    if suite in ("tf1", "keras3"):
        return name.startswith("rand-")
    if suite in ("block", "tfkeras") and name.startswith("grid-"):
        return name in sorted(n for n in all_names if n.startswith("grid-"))[:GRID_PREFIX_COUNT]
    return False


def to_disk(array, precision):
    """TF's 16-bit result as it is stored: float16 as is (<f2), bfloat16 widened exactly to float32 (<f4)."""
    array = np.asarray(array)
    if precision == "float16":
        if array.dtype != np.float16:
            raise TypeError(f"a float16 run returned {array.dtype}")
        return np.ascontiguousarray(array, dtype="<f2").reshape(array.shape)
    if array.dtype.name != "bfloat16":
        raise TypeError(f"a bfloat16 run returned {array.dtype}")
    wide = np.ascontiguousarray(array.astype(np.float32), dtype="<f4").reshape(array.shape)
    if np.any(wide.view(np.uint32) & np.uint32(0xFFFF)):
        raise AssertionError("a bfloat16 result widened to float32 has nonzero low 16 bits")
    return wide


def ulp16(a, b, precision):
    """Largest distance in units in the last place of `precision` between two same-shaped 16-bit arrays."""
    def ordered(x):
        if precision == "float16":
            bits = np.asarray(x).astype(np.float16).view(np.int16).astype(np.int64)
        else:
            bits = (np.asarray(x).astype(np.float32).view(np.int32).astype(np.int64) >> 16)
        return np.where(bits < 0, -(bits & 0x7FFF), bits)
    if np.size(a) == 0:
        return 0
    return int(np.max(np.abs(ordered(a) - ordered(b))))


def add_sidecar(writer, runs, script, versions, notes):
    """Add `reduced.json` and its arrays to a case under construction (case_writer.Case).

    runs: {precision: {"how": one line, "outputs": {output name: TF's 16-bit array}}}, only the
    precisions TF ran. Every output must be an expected output of the case with its shape; one that
    is missing must be explained in `notes`.
    """
    expected = writer.manifest["expected"]
    manifest_runs = {}
    for precision in PRECISIONS:
        if precision not in runs:
            continue
        run = runs[precision]
        if "\n" in run["how"]:
            raise ValueError("how must be one line")
        files = {}
        for name in sorted(run["outputs"]):
            if name not in expected:
                raise AssertionError(f"{writer.name}: {precision} output {name} is not an expected output")
            array = to_disk(run["outputs"][name], precision)
            if list(array.shape) != expected[name]["shape"]:
                raise AssertionError(f"{writer.name}: {precision} {name} has shape {list(array.shape)}, "
                                     f"case.json says {expected[name]['shape']}")
            files[name] = writer.sidecar_array(f"{file_stem(name)}.{SUFFIX[precision]}.npy", array)
        missing = sorted(set(expected) - set(files))
        if missing and "not produced" not in notes:
            raise AssertionError(f"{writer.name}: {precision} run lacks {missing} and the notes do not say why")
        manifest_runs[precision] = {"how": run["how"], "expected": files}
    writer.reduced = {
        "format": FORMAT,
        "version": VERSION,
        "runs": manifest_runs,
        "provenance": {"script": script, "versions": versions, "notes": notes},
    }
