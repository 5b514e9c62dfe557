"""Shared code of the reference recorders (scripts/record_*.py).

One shape for every case family (tf1, block, keras): `<family>_cases.py` says
what to record (case dicts built from seeds, no TensorFlow), `<family>_runner.py`
runs a case with TensorFlow and holds the family's `Recorder` subclass, and one
float64 NumPy reference per family re-checks every written case.

Modules:
  recorder        the recorder base and the suite table: command line, environment, output folder,
                  the loop over cases in worker processes, canary margins, provenance
  tf1_cases       the tf1 suite's cases (notebooks, rand-*, canaries, grid)
  tf1_runner      runs them with TF1 cells in graph mode (Tf1Recorder)
  block_cases     the block suite's cases (canaries, grid) and their float64 TF1 equivalent
  block_runner    runs them as raw ops, and the equivalent in float64 (BlockRecorder)
  keras_cases     the keras3 and tfkeras suites' cases (nb002-*, rand-*, canaries, quirks, grid)
  keras_runner    runs them with Keras 3 or tf-keras (KerasRunner, KerasRecorder)
  numpy_lstm      NumPy reference of tf1 and block; reads a case back and compares (every family)
  keras_numpy     NumPy reference of keras
  traps           canary checks: a wrong implementation must visibly fail a canary case
  case_writer     writes one case folder (case.json + .npy) as reference/README.md says
  reduced         which cases also get float16/bfloat16 runs, and their reduced.json sidecar
  weights         the seeded weight and input generator, grid sizes and coverage
  determinism     environment and TensorFlow settings for bit-stable recordings
  parallel        records cases in spawned worker processes (same result for any job count)
  notebook_print  the seed notebooks' shared input and the numbers a notebook printed

Only the runner modules import TensorFlow, and only once recorder.py (or
record_keras_model.py) has set the environment: the TF1 (tf-keras) and Keras 3
suites must run in separate processes and pick their own imports.
"""

import pathlib

SCRIPTS_DIR = pathlib.Path(__file__).resolve().parent.parent
