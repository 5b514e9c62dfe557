"""Record the `tfkeras` reference suite: tf-keras (Keras 2) LSTM layers run by tf-keras itself.

tf-keras 2 as `tf.keras` (TF_USE_LEGACY_KERAS=1), so a separate process from
record_keras3.py. Cases (lstm_record/keras_cases.py, model "keras": "2"):
canaries, quirks and a seeded grid, run in float32 and float64 models by
lstm_record/keras_runner.py and re-checked by the float64 NumPy model
lstm_record/keras_numpy.py.

Usage: record_tfkeras.py --out ROOT [--only TEXT] [--verbose] [--jobs N]   (writes ROOT/tfkeras/<case>/)
"""

from lstm_record import recorder

if __name__ == "__main__":
    recorder.main("tfkeras", __doc__)
