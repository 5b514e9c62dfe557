"""Record the `tf1` reference suite: TF1 LSTM cells run by TensorFlow itself.

Cases (lstm_record/tf1_cases.py): the notebook scenarios, hand-picked random
cases (rand-*), one canary per known trap (canary-*: lstm_record.traps proves
that each named wrong implementation fails it by far more than any tolerance)
and a seeded grid (grid-NNN-<tags>) over the options and sizes, run in float32
and float64 graphs by lstm_record/tf1_runner.py (with TF_USE_LEGACY_KERAS=1)
and re-checked by the float64 NumPy LSTM (lstm_record/numpy_lstm.py).

Usage: record_tf1.py --out ROOT [--seeds DIR] [--jobs N]   (writes ROOT/tf1/<case>/)
"""

from lstm_record import recorder

if __name__ == "__main__":
    recorder.main("tf1", __doc__)
