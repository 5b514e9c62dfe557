"""Record the `keras3` reference suite: Keras 3 LSTM layers run by Keras itself.

Keras 3 on the TensorFlow backend (TF_USE_LEGACY_KERAS unset). Cases
(lstm_record/keras_cases.py): the notebook-002 and hand-picked random cases
(nb002-*, rand-*), canaries, quirks and a seeded grid, run in float32 and
float64 models by lstm_record/keras_runner.py and re-checked by the float64
NumPy model lstm_record/keras_numpy.py.

Usage: record_keras3.py --out ROOT [--only TEXT] [--verbose] [--jobs N]   (writes ROOT/keras3/<case>/)
"""

from lstm_record import recorder

if __name__ == "__main__":
    recorder.main("keras3", __doc__)
