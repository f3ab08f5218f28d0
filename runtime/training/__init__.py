"""Training runs without TensorFlow: their settings, checked before anything heavy loads, and folders."""
