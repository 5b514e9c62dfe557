"""Record the `tfkeras` reference suite: tf-keras (Keras 2) LSTM layers run by tf-keras itself.

Run WITH TF_USE_LEGACY_KERAS=1 (set here before TensorFlow is imported), so
that `tf.keras` is tf-keras 2.x; the layers come from `import tf_keras`. This
must be a separate process from record_keras3.py (Keras 3 needs the variable
unset). Cases (lstm_record/keras_cases.py), model "keras": "2":

  canary-<trap>     one trap each (Keras 2 hard_sigmoid 0.2x+0.5, go_backwards order,
                    mask repeat vs zero, unit_forget_bias, gate order, ...)
  quirk-<what>      tf-keras behaviours reference/README.md does not describe
  grid-NNN-<tags>   seeded random cases over every option: LSTM / LSTMCell options,
                    implementation 1 and 2, time_major, masks and Masking,
                    RNN(StackedRNNCells) and RNN([cells]), Bidirectional (all merge
                    modes, backward_layer), Sequential stacks, stateful, unroll,
                    initial states, dropout at inference

Every case is run twice, models built with dtype "float32" and "float64", with
the same float32-valued weights; per-step states come from tf-keras
(lstm_record/keras_runner.py); every case is re-checked against the float64
NumPy model lstm_record/keras_numpy.py.

Usage: record_tfkeras.py --out ROOT   (writes ROOT/tfkeras/<case>/)
"""

import argparse
import functools
import pathlib
import sys
import time

from lstm_record import determinism

determinism.configure_environment(legacy_keras=True)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from lstm_record import keras_cases, keras_numpy, parallel  # noqa: E402
from lstm_record.keras_runner import KerasRunner  # noqa: E402

SCRIPT = "scripts/record_tfkeras.py"
SUITE = "tfkeras"
GRID_CASES = 80


def all_cases():
    return (keras_cases.canary_cases("2", 41000) + keras_cases.quirk_cases("2", 42000)
            + keras_cases.grid_cases("2", GRID_CASES, 43000))


def versions():
    return {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "numpy": np.__version__}


def worker_init():
    determinism.configure_tensorflow(tf)


_WORKER = {}


def record_named(suite_dir, name):
    """Record one case by id (in this process or a spawned worker); returns the runner's count of
    trace checks that agreed only within tolerance."""
    if "runner" not in _WORKER:
        _WORKER["runner"] = KerasRunner(tf_keras, tf, "2")
        _WORKER["cases"] = {c["name"]: c for c in all_cases()}
    runner = _WORKER["runner"]
    before = runner.inexact_trace_checks
    keras_cases.record_case(runner, _WORKER["cases"][name], pathlib.Path(suite_dir), versions(), SCRIPT)
    return runner.inexact_trace_checks - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="reference root to write <root>/tfkeras into")
    parser.add_argument("--only", help="record only cases whose id contains this (development)")
    parser.add_argument("--verbose", action="store_true", help="print each case id once recorded")
    parser.add_argument("--jobs", type=int, default=parallel.default_jobs(),
                        help="worker processes (default: one per CPU, at most 4; the result does not depend on it)")
    args = parser.parse_args()
    if not tf_keras.__version__.startswith("2.") or tf.keras.__name__.split(".")[0] != "tf_keras":
        sys.exit(f"need tf-keras 2.x as tf.keras (TF_USE_LEGACY_KERAS=1), got {tf_keras.__version__} / "
                 f"{tf.keras.__name__}")
    determinism.configure_tensorflow(tf)
    started = time.time()
    suite_dir = args.out / SUITE
    if suite_dir.exists() and any(suite_dir.iterdir()):
        sys.exit(f"{suite_dir} is not empty; record into a fresh folder")
    names = [c["name"] for c in all_cases()]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate case names")
    if args.only:
        names = [n for n in names if args.only in n]
    inexact = 0
    for name, count in parallel.map_cases(functools.partial(record_named, str(suite_dir)), names, args.jobs,
                                          initializer=worker_init):
        inexact += count
        if args.verbose:
            print(name, file=sys.stderr, flush=True)
    keras_numpy.check_suite(suite_dir)
    print(f"tfkeras: recorded {len(names)} cases in {time.time() - started:.1f} s "
          f"({inexact} trace checks agreed within 1e-6/1e-13 rather than exactly)")


if __name__ == "__main__":
    main()
