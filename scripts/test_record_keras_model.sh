#!/usr/bin/env bash
# End-to-end test of scripts/record_keras_model.py ("bring your own Keras model"):
# builds a small Keras 3 model (Masking + LSTM + Dense, saved as .keras) and a small
# tf-keras model (Bidirectional(LSTM), saved as .h5) in a temp folder, records both
# with record_keras_model.py, and checks them with the Rust side:
#     cargo run --release -q -- run --reference TMP/reference
# or, with LSTM_PARITY_BIN set, with that lstm-parity binary:
#     $LSTM_PARITY_BIN run --reference TMP/reference
#
#   scripts/test_record_keras_model.sh [PYTHON]
#
# PYTHON defaults to the venv scripts/regenerate uses (~/.cache/lstm-parity/venv-<hash>,
# or $LSTM_PARITY_VENV); it is not created here. Exit status non-zero on any failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${1:-}"
if [[ -z "$python" ]]; then
    hash="$(sha256sum "$repo/scripts/requirements.txt" | cut -c1-12)"
    python="${LSTM_PARITY_VENV:-$HOME/.cache/lstm-parity/venv-$hash}/bin/python"
fi
command -v "$python" >/dev/null 2>&1 || {
    echo "test_record_keras_model: no interpreter $python (pass one, or run scripts/regenerate --check once)" >&2
    exit 2
}
export TF_DETERMINISTIC_OPS=1 TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0
export KERAS_BACKEND=tensorflow PYTHONDONTWRITEBYTECODE=1

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$repo"

echo "test_record_keras_model: building the models in $tmp" >&2
env -u TF_USE_LEGACY_KERAS "$python" - "$tmp" <<'PY'
import sys
import numpy as np
import keras

tmp = sys.argv[1]
keras.utils.set_random_seed(7)
model = keras.Sequential([
    keras.Input(shape=(6, 3)),
    keras.layers.Masking(mask_value=0.0),
    keras.layers.LSTM(4, return_sequences=True, recurrent_activation="hard_sigmoid"),
    keras.layers.Dense(2),
], name="keras3_masked_lstm")
model.save(f"{tmp}/keras3_masked_lstm.keras")
x = np.random.default_rng(7).uniform(-1, 1, (3, 6, 3)).astype(np.float32)
x[0, 4:] = 0.0   # right padding
x[1, :2] = 0.0   # left padding
x[2, 2] = 0.0    # a gap
np.save(f"{tmp}/keras3_input.npy", x)
PY
TF_USE_LEGACY_KERAS=1 "$python" - "$tmp" <<'PY'
import sys
import numpy as np
import tf_keras

tmp = sys.argv[1]
tf_keras.utils.set_random_seed(8)
inputs = tf_keras.Input(shape=(5, 2))
outputs = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(3, return_sequences=True), merge_mode="ave")(inputs)
model = tf_keras.Model(inputs, outputs, name="tfkeras_bidi_lstm")
model.save(f"{tmp}/tfkeras_bidi_lstm.h5")
np.save(f"{tmp}/tfkeras_input.npy", np.random.default_rng(8).uniform(-1, 1, (2, 5, 2)).astype(np.float32))
PY

echo "test_record_keras_model: recording" >&2
"$python" scripts/record_keras_model.py "$tmp/keras3_masked_lstm.keras" "$tmp/keras3_input.npy" "$tmp/reference"
"$python" scripts/record_keras_model.py "$tmp/tfkeras_bidi_lstm.h5" "$tmp/tfkeras_input.npy" "$tmp/reference"
for case in keras3_masked_lstm tfkeras_bidi_lstm; do
    [[ -f "$tmp/reference/$case/case.json" ]] || { echo "test_record_keras_model: $case not written" >&2; exit 1; }
done

echo "test_record_keras_model: checking with lstm-parity" >&2
if [[ -n "${LSTM_PARITY_BIN:-}" ]]; then
    "$LSTM_PARITY_BIN" run --reference "$tmp/reference"
else
    cargo run --release -q -- run --reference "$tmp/reference"
fi
echo "test_record_keras_model: OK" >&2
