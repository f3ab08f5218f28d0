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

from vae_gen.errors import VaeGenError

#: The ONNX opset of every exported graph (recorded in model.json).
OPSET = 17
#: Op types that draw random numbers; none may appear in an exported graph.
RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"})


class ExportError(VaeGenError):
    """A model that cannot be exported as the runtime needs it."""


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


def graph_op_types(proto: onnx.ModelProto) -> set[str]:
    """Every op type in the graph, subgraphs included."""
    types: set[str] = set()

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            types.add(node.op_type)
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g)
                for subgraph in attribute.graphs:
                    walk(subgraph)

    walk(proto.graph)
    return types


def check_graph(proto: onnx.ModelProto, input_names: Sequence[str]) -> None:
    """Refuse graphs with random ops, wrong inputs, or a fixed batch size."""
    onnx.checker.check_model(proto)
    random_ops = graph_op_types(proto) & RANDOM_OPS
    if random_ops:
        raise ExportError(f"exported graph contains random ops {sorted(random_ops)}; sampling belongs in numpy")
    inputs = [i.name for i in proto.graph.input]
    if inputs != list(input_names):
        raise ExportError(f"exported graph has inputs {inputs}, expected {list(input_names)}")
    for graph_input in proto.graph.input:
        batch = graph_input.type.tensor_type.shape.dim[0]
        if batch.HasField("dim_value"):
            raise ExportError(f"exported graph input {graph_input.name!r} has a fixed batch size {batch.dim_value}; "
                              "it must be dynamic")  # fmt: skip
