"""benchmarks/subpixel.py: the ConvTranspose rewrite it measures gives the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytestmark = pytest.mark.tensorflow  # onnx comes with the train extra

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from subpixel import phase_taps, rewrite_transposed_convolutions  # noqa: E402


def transposed_conv_graph(c_in, c_out, kernel, stride, pads, relu, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((c_in, c_out, kernel, kernel)).astype(np.float32)
    inputs = ["x", "w"] + (["b"] * bias)
    initializers = [numpy_helper.from_array(weight, "w")]
    if bias:
        initializers.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32), "b"))
    nodes = [helper.make_node("ConvTranspose", inputs, ["t"], kernel_shape=[kernel, kernel], strides=[stride, stride], pads=pads)]
    if relu:
        nodes.append(helper.make_node("Relu", ["t"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", ["t"], ["y"]))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, c_in, 5, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, c_out, None, None])], initializers,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run(proto, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize(
    ("kernel", "stride", "pads"),
    [
        (3, 2, [0, 0, 1, 1]),  # Keras Conv2DTranspose(3, strides=2, padding="same"), as tf2onnx writes it
        (4, 2, [1, 1, 1, 1]),
        (2, 2, [0, 0, 0, 0]),
        (3, 3, [0, 0, 0, 0]),
        (5, 2, [2, 2, 1, 1]),
        (5, 3, [1, 0, 1, 2]),
    ],
)
@pytest.mark.parametrize("relu", [True, False])
def test_rewrite_matches_conv_transpose(kernel, stride, pads, relu):
    proto = transposed_conv_graph(3, 4, kernel, stride, pads, relu)
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 6)).astype(np.float32)
    expected = run(proto, x)
    assert rewrite_transposed_convolutions(proto) == 1
    onnx.checker.check_model(proto)
    ops = [n.op_type for n in proto.graph.node]
    assert "ConvTranspose" not in ops and "DepthToSpace" in ops
    if relu:  # the Relu moved before the interleave, next to the Conv
        assert ops[:3] == ["Conv", "Relu", "DepthToSpace"]
    got = run(proto, x)
    assert got.shape == expected.shape == (2, 4, 5 * stride, 6 * stride)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_without_bias_and_unrewritable_nodes_left_alone():
    proto = transposed_conv_graph(2, 2, 3, 2, [0, 0, 1, 1], relu=False, bias=False)
    x = np.random.default_rng(2).standard_normal((1, 2, 5, 6)).astype(np.float32)
    expected = run(proto, x)
    assert rewrite_transposed_convolutions(proto) == 1
    np.testing.assert_allclose(run(proto, x), expected, atol=1e-4)

    # output 2H + 1 (kernel 3, no padding) is not a whole number of phases: left as ConvTranspose
    proto = transposed_conv_graph(2, 2, 3, 2, [0, 0, 0, 0], relu=True)
    before = proto.SerializeToString()
    assert rewrite_transposed_convolutions(proto) == 0
    assert proto.SerializeToString() == before


def test_phase_taps_of_keras_same_padding():
    # out[2q] = in[q] w0 + in[q-1] w2; out[2q+1] = in[q] w1: a 2-tap kernel padded 1 before
    pad, taps = phase_taps(stride=2, kernel=3, pad_begin=0)
    assert pad == 1
    assert taps == [[(0, 1), (2, 0)], [(1, 1)]]
