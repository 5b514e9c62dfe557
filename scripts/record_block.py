"""Record the `block` reference suite: TensorFlow's fused LSTM kernels as raw ops.

`tf.raw_ops.LSTMBlockCell`, `BlockLSTM` and `BlockLSTMV2` (cases:
lstm_record/block_cases.py, canaries and a seeded grid). The float32
expectation is the op's own output; the ops have no float64 kernel, so the
float64 one is an equivalent float64 TensorFlow computation on TF1 cells
(lstm_record/block_runner.py, with TF_USE_LEGACY_KERAS=1). Every case is
re-checked by the float64 NumPy LSTM (lstm_record/numpy_lstm.py).

Usage: record_block.py --out ROOT [--jobs N]   (writes ROOT/block/<case>/)
"""

from lstm_record import recorder

if __name__ == "__main__":
    recorder.main("block", __doc__)
