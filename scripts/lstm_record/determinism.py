"""Deterministic setup for a recording process.

`configure_environment` must run before TensorFlow is imported (it sets the
environment variables TF reads at import time); `configure_tensorflow` runs
right after the import, before any op executes.
"""

import os
import random
import warnings

# Every knob a recording depends on, in one place (also set by scripts/regenerate).
FIXED_ENVIRONMENT = {
    "TF_DETERMINISTIC_OPS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "CUDA_VISIBLE_DEVICES": "",
    "PYTHONHASHSEED": "0",
}


def configure_environment(legacy_keras):
    """Set TF's environment; `legacy_keras` selects tf-keras (TF1 cells) or Keras 3."""
    for key, value in FIXED_ENVIRONMENT.items():
        os.environ[key] = value
    if legacy_keras:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    else:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
        os.environ["KERAS_BACKEND"] = "tensorflow"


def configure_tensorflow(tf, seed=0):
    """One thread, no TF32, deterministic ops, fixed global seeds."""
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_tensor_float_32_execution(False)
    tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(seed)
    random.seed(seed)
    # deprecation chatter of the TF1 APIs we use on purpose
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", module=r"(tensorflow|tf_keras|keras)(\.|$)")
    warnings.filterwarnings("ignore", message=r".*is deprecated", category=UserWarning)


def session_config(tf):
    """A TF1 session config with one intra-op and one inter-op thread."""
    return tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=1,
        inter_op_parallelism_threads=1,
        device_count={"GPU": 0},
    )
