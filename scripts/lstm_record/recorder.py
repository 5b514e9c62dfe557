"""The recorder every suite shares; `scripts/record_<suite>.py` only names its suite.

A suite is one case family recorded with one Keras flavour:

  suite     family  runner module  TF_USE_LEGACY_KERAS
  tf1       tf1     tf1_runner     1 (TF1 cells come with tf-keras)
  block     block   block_runner   1 (the float64 equivalent runs TF1 cells)
  keras3    keras   keras_runner   unset (Keras 3)
  tfkeras   keras   keras_runner   1 (tf-keras)

The runner module of a family holds a `Recorder` subclass that lists the
suite's cases (from the family's `*_cases.py`), records one case with
TensorFlow and checks the written suite with the family's NumPy reference
(numpy_lstm for tf1 and block, keras_numpy for keras). This module does the
rest: the command line, the environment (set before TensorFlow is imported),
the output folder, the loop over the cases in `--jobs` spawned workers (each
builds the suite's cases once and records by case name), the canary margins,
the provenance of every written case and which cases also get reduced-precision
runs (lstm_record/reduced.py: `self.reduced_names`; the runner records them).
Nothing here imports TensorFlow at module level, so that a worker can set its
environment first.
"""

import argparse
import functools
import importlib
import pathlib
import sys
import time

from lstm_record import determinism, parallel, reduced
from lstm_record.case_writer import Case

# suite: (runner module, its Recorder subclass, TF_USE_LEGACY_KERAS=1)
SUITES = {
    "tf1": ("tf1_runner", "Tf1Recorder", True),
    "block": ("block_runner", "BlockRecorder", True),
    "keras3": ("keras_runner", "KerasRecorder", False),
    "tfkeras": ("keras_runner", "KerasRecorder", True),
}


class Recorder:
    """One suite's recording; a family's subclass provides `cases`, `record` and `summary`."""

    dialect = None  # the case.json dialect of the family
    default_jobs = staticmethod(parallel.default_jobs)
    jobs_help = "worker processes (default: one per CPU, at most 4); the recording does not depend on it"

    def __init__(self, suite, args):
        import numpy as np
        import tensorflow as tf

        self.suite, self.args, self.tf = suite, args, tf
        self.script = f"scripts/record_{suite}.py"
        if SUITES[suite][2]:
            import tf_keras as keras
            self.versions = {"tensorflow": tf.__version__, "tf_keras": keras.__version__, "numpy": np.__version__}
        else:
            import keras
            self.versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
        self.keras = keras
        self.reduced_names = set()  # cases with float16/bfloat16 runs (set by `load`, reduced.wants_reduced)
        determinism.configure_tensorflow(tf)

    @classmethod
    def add_arguments(cls, parser):
        """Options of this suite beyond --out and --jobs."""

    def cases(self):
        """Every case dict of the suite, in recording order (built from seeds: the same in every process)."""
        raise NotImplementedError

    def record(self, case, suite_dir):
        """Record and write one case; return a picklable dict ("margins": canary margins, or suite statistics)."""
        raise NotImplementedError

    def check_suite(self, suite_dir):
        """Re-check every written case from disk with the family's NumPy reference."""
        raise NotImplementedError

    def summary(self, cases, results, seconds):
        """The closing report lines (`results`: case name -> what `record` returned)."""
        raise NotImplementedError

    def writer(self, case, model, notes, variables, out32, out64):
        """The Case of a recorded case: its arrays, and a provenance naming script, generator and seed."""
        provenance = {"script": self.script, "generator": case.get("generator", "notebook"),
                      "notebook": case.get("notebook"), "seed": case["seed"], "versions": self.versions,
                      "notes": notes}
        writer = Case(case["name"], case["description"], self.dialect, model, provenance)
        return writer.arrays(variables, case["inputs"], out32, out64)

    def wants_reduced(self, case):
        return case["name"] in self.reduced_names

    def add_reduced(self, writer, runs, notes):
        """The case's reduced.json sidecar (lstm_record/reduced.py) with this suite's provenance."""
        reduced.add_sidecar(writer, runs, self.script, self.versions, notes)


def recorder_class(suite):
    """Set the suite's environment, then import its runner module (and so TensorFlow)."""
    module, name, legacy_keras = SUITES[suite]
    determinism.configure_environment(legacy_keras=legacy_keras)
    return getattr(importlib.import_module(f"lstm_record.{module}"), name)


_LOADED = {}  # suite -> (Recorder, {case name: case}), once per process


def load(suite, args):
    if suite not in _LOADED:
        recorder = recorder_class(suite)(suite, args)
        cases = recorder.cases()
        by_name = {case["name"]: case for case in cases}
        if len(by_name) != len(cases):
            raise AssertionError("duplicate case names")
        recorder.reduced_names = {name for name in by_name if reduced.wants_reduced(suite, name, by_name)}
        _LOADED[suite] = recorder, by_name
    return _LOADED[suite]


def record_named(suite, args, suite_dir, name):
    """Record the case `name` (in a worker or in the main process)."""
    recorder, by_name = load(suite, args)
    return recorder.record(by_name[name], pathlib.Path(suite_dir))


def main(suite, doc):
    cls = recorder_class(suite)
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help=f"reference root to write <root>/{suite} into")
    cls.add_arguments(parser)
    parser.add_argument("--jobs", type=int, default=cls.default_jobs(), help=cls.jobs_help)
    args = parser.parse_args()
    recorder, by_name = load(suite, args)
    started = time.time()
    suite_dir = args.out / suite
    if suite_dir.exists() and any(suite_dir.iterdir()):
        sys.exit(f"{suite_dir} is not empty; record into a fresh folder")
    only = getattr(args, "only", None)
    names = [name for name in by_name if not only or only in name]
    task = functools.partial(record_named, suite, args, str(suite_dir.resolve()))
    results = {}
    for name, result in parallel.map_cases(task, names, args.jobs, functools.partial(load, suite, args)):
        results[name] = result
        margins = result.get("margins")
        if margins:
            label = min(margins, key=margins.get)
            print(f"{name}: {len(margins)} wrong variant(s) fail it; smallest margin {margins[label]:.3g} ({label})")
        if getattr(args, "verbose", False):
            print(name, file=sys.stderr, flush=True)
    recorder.check_suite(suite_dir)
    for line in recorder.summary([by_name[name] for name in names], results, time.time() - started):
        print(line)
