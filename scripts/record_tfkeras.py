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

from lstm_record import determinism

determinism.configure_environment(legacy_keras=True)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from lstm_record import keras_cases, keras_suite  # noqa: E402
from lstm_record.keras_runner import KerasRunner  # noqa: E402

SCRIPT = "scripts/record_tfkeras.py"
SUITE = "tfkeras"
GRID_CASES = 80


def all_cases():
    return (keras_cases.canary_cases("2", 41000) + keras_cases.quirk_cases("2", 42000)
            + keras_cases.grid_cases("2", GRID_CASES, 43000))


def versions():
    return {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "numpy": np.__version__}


def check_environment():
    if not tf_keras.__version__.startswith("2.") or tf.keras.__name__.split(".")[0] != "tf_keras":
        return (f"need tf-keras 2.x as tf.keras (TF_USE_LEGACY_KERAS=1), got {tf_keras.__version__} / "
                f"{tf.keras.__name__}")
    return None


def runner():
    return KerasRunner(tf_keras, tf, "2")


def configure():
    determinism.configure_tensorflow(tf)


RECORDER = keras_suite.Recorder(suite=SUITE, script=SCRIPT, runner=runner, all_cases=all_cases,
                                versions=versions, configure=configure, check_environment=check_environment)


if __name__ == "__main__":
    keras_suite.main(RECORDER, __doc__.splitlines()[0])
