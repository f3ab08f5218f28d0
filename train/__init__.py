"""Training of the Keras 3 VAE on Fashion-MNIST (needs the `train` extra).

Importing this package checks for the extra without importing TensorFlow;
the modules that need it import it themselves.
"""

import os

from vae_gen.core.extras import require_train_extra

# TensorFlow logs C++ chatter at import; keep it to errors unless the user asks.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

require_train_extra("vae_gen.train")
