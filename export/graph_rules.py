"""What every exported ONNX graph must be, whatever built it: opset, no random op, named inputs, a dynamic batch.

TensorFlow-free (onnx only), so that graphs built directly with onnx.helper
(the Gaussian-mixture prior, export.prior_gmm) pass the same checks as the
ones tf2onnx converts (export.convert).
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from vae_gen.errors import VaeGenError

#: The ONNX opset of every exported graph (recorded in model.json).
OPSET = 17
#: Op types that draw random numbers; none may appear in an exported graph.
RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"})


class ExportError(VaeGenError):
    """A model that cannot be exported as the runtime needs it."""


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
