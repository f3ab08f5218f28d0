"""Export of trained Keras models to ONNX model folders (needs the `train` extra)."""

import os

from vae_gen.core.extras import require_train_extra

# TensorFlow logs C++ chatter at import; keep it to errors unless the user asks.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

require_train_extra("vae_gen.export")
