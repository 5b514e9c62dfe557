"""Write one reference case: `case.json` plus `.npy` files (reference/README.md).

The case is assembled in memory, written into a hidden sibling folder and
renamed into place, so a half-written case never appears under its id. Output
is bit-stable: no timestamps, `json.dump(indent=1, sort_keys=True)` with a
trailing newline, `.npy` in C order and little-endian.

File names are derived from native names with `/` replaced by `.`:
variables `var.<name>.npy`, inputs `<name>.npy`, expected outputs
`<name>.f32.npy` / `<name>.f64.npy`. A case with reduced-precision runs
(lstm_record/reduced.py) also gets `reduced.json` and `<name>.f16.npy` /
`<name>.bf16.npy`, which case.json does not mention.
"""

import json
import os
import pathlib
import shutil

import numpy as np

FORMAT_VERSION = 1

# dtype kind -> the one on-disk dtype reference/README.md allows for it
_DISK_DTYPES = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("|b1"),
}


def _disk_array(array, dtype):
    array = np.asarray(array)
    if array.dtype != np.dtype(dtype):
        raise TypeError(f"expected {dtype} array, got {array.dtype}")
    # reshape: ascontiguousarray turns a 0-d array (seq_len_max) into shape (1,)
    return np.ascontiguousarray(array, dtype=_DISK_DTYPES[dtype]).reshape(array.shape)


def file_stem(native_name):
    stem = native_name.replace("/", ".")
    if not stem or stem.startswith(".") or any(ch in stem for ch in "\\:*?\"<>| "):
        raise ValueError(f"name {native_name!r} does not give a plain file name")
    return stem


class Case:
    """One case under construction: add arrays, then `write(suite_dir)`."""

    def __init__(self, name, description, dialect, model, provenance):
        if "\n" in description:
            raise ValueError("description must be one line")
        self.name = name
        self.manifest = {
            "format_version": FORMAT_VERSION,
            "description": description,
            "dialect": dialect,
            "model": model,
            "tolerance": "default",
            "variables": {},
            "inputs": {},
            "expected": {},
            "provenance": provenance,
        }
        self.files = {}  # file name -> array in its on-disk dtype
        self.reduced = None  # the reduced.json sidecar (reduced.add_sidecar), or None

    def _add_file(self, file_name, array):
        if file_name in self.files or file_name in ("case.json", "reduced.json"):
            raise ValueError(f"case {self.name}: file name {file_name} used twice")
        self.files[file_name] = array
        return file_name

    def variable(self, name, values):
        """A float32 variable under its native name (the float64 run widened it)."""
        array = _disk_array(values, "float32")
        file_name = self._add_file(f"var.{file_stem(name)}.npy", array)
        self.manifest["variables"][name] = {"file": file_name, "shape": list(array.shape)}

    def input(self, name, values):
        """A float32 input (widened for the float64 run), an int32 input such as sequence_length or a bool mask."""
        values = np.asarray(values)
        dtype = values.dtype.name if values.dtype in (np.int32, np.bool_) else "float32"
        array = _disk_array(values, dtype)
        file_name = self._add_file(f"{file_stem(name)}.npy", array)
        self.manifest["inputs"][name] = {"file": file_name, "shape": list(array.shape)}

    def expected(self, name, float32_values, float64_values):
        """An output of the float32 run and the same output of the float64 run."""
        a32 = _disk_array(float32_values, "float32")
        a64 = _disk_array(float64_values, "float64")
        if a32.shape != a64.shape:
            raise ValueError(f"case {self.name}: {name} has shapes {a32.shape} and {a64.shape}")
        stem = file_stem(name)
        self.manifest["expected"][name] = {
            "shape": list(a32.shape),
            "float32": self._add_file(f"{stem}.f32.npy", a32),
            "float64": self._add_file(f"{stem}.f64.npy", a64),
        }

    def arrays(self, variables, inputs, out32, out64):
        """Add the variables ({native name: float32}), the inputs and the outputs of both runs; return self."""
        for name in sorted(variables):
            self.variable(name, variables[name])
        for name in sorted(inputs):
            self.input(name, inputs[name])
        for name in sorted(out32):
            self.expected(name, out32[name], out64[name])
        return self

    def extra_array(self, file_name, array, dtype):
        """A further array file (referenced from an extra manifest key)."""
        return self._add_file(file_name, _disk_array(array, dtype))

    def sidecar_array(self, file_name, array):
        """An array of the reduced.json sidecar, already in its on-disk dtype (<f2 or <f4)."""
        if np.asarray(array).dtype not in (np.dtype("<f2"), np.dtype("<f4")):
            raise TypeError(f"sidecar array {file_name} is {np.asarray(array).dtype}")
        return self._add_file(file_name, array)

    def write(self, suite_dir):
        suite_dir = pathlib.Path(suite_dir)
        suite_dir.mkdir(parents=True, exist_ok=True)
        final = suite_dir / self.name
        if final.exists():
            raise FileExistsError(f"{final} exists; record into a fresh folder")
        staging = suite_dir / f".writing-{self.name}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        for file_name, array in sorted(self.files.items()):
            with open(staging / file_name, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
        with open(staging / "case.json", "w", encoding="utf-8") as handle:
            json.dump(self.manifest, handle, indent=1, sort_keys=True, allow_nan=False)
            handle.write("\n")
        if self.reduced is not None:
            with open(staging / "reduced.json", "w", encoding="utf-8") as handle:
                json.dump(self.reduced, handle, indent=1, sort_keys=True, allow_nan=False)
                handle.write("\n")
        os.rename(staging, final)
        return final
