"""Keras model -> ONNX graph with tf2onnx, with fixed tensor names.

We convert a `tf.function` with a named input signature rather than call
`tf2onnx.convert.from_keras`, which with Keras 3 needs the signature anyway
and guesses output names. Returning a dict names the ONNX outputs. The
function may reshape or pick among a model's outputs (export.keras_vae):
TensorFlow prunes what the named outputs do not need, so a sampling branch
the encoder computes beside z_mean and z_log_var never reaches the graph,
and check_graph refuses any random op that does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import onnx
import tensorflow as tf
import tf2onnx

# The rules every exported graph passes live in graph_rules (TensorFlow-free); re-exported here.
from .graph_rules import OPSET as OPSET
from .graph_rules import RANDOM_OPS as RANDOM_OPS
from .graph_rules import ExportError as ExportError
from .graph_rules import check_graph as check_graph
from .graph_rules import graph_op_types as graph_op_types


def to_onnx(
    call: Callable[..., Sequence[tf.Tensor]],
    inputs: Sequence[tuple[str, Sequence[int]]],
    output_names: Sequence[str],
) -> onnx.ModelProto:
    """Convert `call` (float32 inputs named and shaped [batch, *shape] as `inputs` says, in that order; outputs in
    `output_names` order) with a dynamic batch."""
    signature = [tf.TensorSpec([None, *shape], tf.float32, name=name) for name, shape in inputs]

    @tf.function(input_signature=signature)
    def forward(*tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        return dict(zip(output_names, call(*tensors), strict=True))

    proto, _ = tf2onnx.convert.from_function(forward, input_signature=signature, opset=OPSET)
    # Outputs of a dict come back in key order; put them in the order we promise.
    by_name = {output.name: output for output in proto.graph.output}
    if sorted(by_name) != sorted(output_names):
        raise ExportError(f"tf2onnx produced outputs {sorted(by_name)}, expected {list(output_names)}")
    ordered = [by_name[name] for name in output_names]
    del proto.graph.output[:]
    proto.graph.output.extend(ordered)
    check_graph(proto, [name for name, _ in inputs])
    return proto
