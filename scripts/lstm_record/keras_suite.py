"""The driver both Keras recorders share (record_keras3.py, record_tfkeras.py).

Each recorder script imports its own Keras (the two need different
environments, so they run as separate processes) and hands this module a
`Recorder`: module-level functions of the script, which spawned workers find
again by re-importing the script. Nothing here imports TensorFlow or Keras.
"""

import argparse
import dataclasses
import functools
import pathlib
import sys
import time
from typing import Callable

from lstm_record import keras_cases, keras_numpy, parallel


@dataclasses.dataclass(frozen=True)
class Recorder:
    suite: str  # the folder under the reference root, e.g. "keras3"
    script: str  # recorded into each case as its generator
    runner: Callable[[], object]  # a fresh KerasRunner
    all_cases: Callable[[], list]  # every case spec of the suite
    versions: Callable[[], dict]  # library versions recorded into each case
    configure: Callable[[], None]  # TensorFlow determinism (each process)
    check_environment: Callable[[], str | None]  # an error message, or None


_WORKER = {}


def record_named(recorder, suite_dir, name):
    """Record one case by id (in this process or a spawned worker); returns the runner's count of
    trace checks that agreed only within tolerance."""
    if "runner" not in _WORKER:
        _WORKER["runner"] = recorder.runner()
        _WORKER["cases"] = {c["name"]: c for c in recorder.all_cases()}
    runner = _WORKER["runner"]
    before = runner.inexact_trace_checks
    keras_cases.record_case(runner, _WORKER["cases"][name], pathlib.Path(suite_dir), recorder.versions(),
                            recorder.script)
    return runner.inexact_trace_checks - before


def main(recorder, description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, type=pathlib.Path,
                        help=f"reference root to write <root>/{recorder.suite} into")
    parser.add_argument("--only", help="record only cases whose id contains this (development)")
    parser.add_argument("--verbose", action="store_true", help="print each case id once recorded")
    parser.add_argument("--jobs", type=int, default=parallel.default_jobs(),
                        help="worker processes (default: one per CPU, at most 4; the result does not depend on it)")
    args = parser.parse_args()
    problem = recorder.check_environment()
    if problem:
        sys.exit(problem)
    recorder.configure()
    started = time.time()
    suite_dir = args.out / recorder.suite
    if suite_dir.exists() and any(suite_dir.iterdir()):
        sys.exit(f"{suite_dir} is not empty; record into a fresh folder")
    names = [c["name"] for c in recorder.all_cases()]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate case names")
    if args.only:
        names = [n for n in names if args.only in n]
    inexact = 0
    for name, count in parallel.map_cases(functools.partial(record_named, recorder, str(suite_dir)), names,
                                          args.jobs, initializer=recorder.configure):
        inexact += count
        if args.verbose:
            print(name, file=sys.stderr, flush=True)
    keras_numpy.check_suite(suite_dir)
    print(f"{recorder.suite}: recorded {len(names)} cases in {time.time() - started:.1f} s "
          f"({inexact} trace checks agreed within 1e-6/1e-13 rather than exactly)")
