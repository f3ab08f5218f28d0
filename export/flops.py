"""Floating-point operations per image of a Keras decoder.

2 x the multiply-accumulates of its Dense, Conv2D and Conv2DTranspose
layers, plus one addition per output element for their biases; activations
and reshapes are not counted. This is the usual convention (fvcore,
ptflops), and the figure the performance benchmark divides by a matrix
product's FLOP rate.
"""

from __future__ import annotations

import math

import keras


def _elements(shape) -> int:
    """Elements of one sample: the product of a shape without its batch dimension."""
    return math.prod(int(d) for d in shape[1:])


def layer_flops(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.layers.Dense):
        fan_in = int(layer.kernel.shape[0])
    elif isinstance(layer, keras.layers.Conv2DTranspose):
        kh, kw, c_out, _ = (int(d) for d in layer.kernel.shape)
        # Each input element scatters a kh x kw x c_out patch.
        return 2 * kh * kw * c_out * _elements(layer.input.shape) + _elements(layer.output.shape)
    elif isinstance(layer, keras.layers.Conv2D):
        kh, kw, c_in, _ = (int(d) for d in layer.kernel.shape)
        fan_in = kh * kw * c_in
    else:
        return 0  # Input, Reshape, Flatten: data movement only
    return (2 * fan_in + 1) * _elements(layer.output.shape)


def model_flops(model: keras.Model) -> int:
    """FLOPs to run `model` on one input, counting through the models nested in it (a Sequential in a Model)."""
    return sum(model_flops(layer) if isinstance(layer, keras.Model) else layer_flops(layer) for layer in model.layers)
