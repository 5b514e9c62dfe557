"""Shared code of the reference recorders (scripts/record_*.py).

Modules:
  determinism   environment and TensorFlow settings for bit-stable recordings
  weights       the seeded weight and input generator
  case_writer   writes one case folder (case.json + .npy) as reference/README.md says
  numpy_lstm    a float64 NumPy re-implementation that re-checks written cases
  tf1_cases     the tf1 suite's cases as data (specs, weights, inputs, canaries, grid)
  traps         canary checks: a wrong implementation must visibly fail a canary case
  parallel      records cases in spawned worker processes (same result for any job count)
  notebook_print  parses numbers that a seed notebook printed

Nothing here imports TensorFlow at module level: the TF1 (tf-keras) and Keras 3
recorders must run in separate processes and pick their own imports.
"""

import pathlib

SCRIPTS_DIR = pathlib.Path(__file__).resolve().parent.parent
REPO_ROOT = SCRIPTS_DIR.parent
