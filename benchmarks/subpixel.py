"""Experiment: each strided ConvTranspose of a decoder rewritten as Conv + DepthToSpace.

A transposed convolution with stride s computes each of the s x s output
phases (even/odd rows and columns, for s = 2) as an ordinary convolution of
the input with a subset of the kernel's taps. Stacking the phases as
s*s*C output channels of one Conv and interleaving them with DepthToSpace
("sub-pixel convolution", Shi et al. 2016) gives the same numbers, up to
float summation order.

Why try: onnxruntime's CPU ConvTranspose is a generic GEMM + col2im that
runs outside its blocked (NCHWc) convolution kernels. Profiling the conv16
decoder at batch 1024, its two ConvTranspose nodes took 47 % of the time
for 27 % of the multiply-adds. As Conv they run in the fast kernels, fused
with the following Relu, although the zero taps add multiply-adds
(2x2 phase kernels, 16 per output pixel group instead of 9).

What happened: the convolutions did get about twice as fast, but
onnxruntime's DepthToSpace (a 6-D transpose) and the layout reorders
around it cost as much again, so the exporter does not use the rewrite.
This script keeps the measurement rerunnable:

    python benchmarks/subpixel.py [--model NAME] [--runs 5]

Only what the rewrite can reproduce exactly is rewritten: 2-D, group 1,
no dilation, equal strides, explicit pads, constant weights and bias, and
an output exactly `stride` times the input; tests/test_subpixel.py checks
it against onnxruntime's ConvTranspose.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

import vae_gen


def phase_taps(stride: int, kernel: int, pad_begin: int) -> tuple[int, list[list[tuple[int, int]]]]:
    """One axis: (pad of the phase convolution, [for each phase: (kernel tap, phase-kernel index)]).

    ConvTranspose writes input i through tap k to output o = i*stride + k - pad_begin.
    For output o = q*stride + p, the taps that reach it are those with
    (p + pad_begin - k) divisible by stride, reading input q + d with
    d = (p + pad_begin - k) // stride. A convolution with kernel size
    d_max - d_min + 1 and pad -d_min reads exactly those inputs.
    """
    offsets = [
        [(k, (p + pad_begin - k) // stride) for k in range(kernel) if (p + pad_begin - k) % stride == 0]
        for p in range(stride)
    ]
    all_d = [d for taps in offsets for _, d in taps] + [0]
    d_min = min(all_d)
    return -d_min, [[(k, d - d_min) for k, d in taps] for taps in offsets]


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _rewritable(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> bool:
    attrs = _attributes(node)
    if node.op_type != "ConvTranspose" or len(node.input) < 2 or node.input[1] not in constants:
        return False
    if len(node.input) == 3 and node.input[2] not in constants:
        return False
    weight = constants[node.input[1]]
    strides = list(attrs.get("strides", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    kernel = list(attrs.get("kernel_shape", weight.shape[2:]))
    return (
        weight.ndim == 4
        and attrs.get("group", 1) == 1
        and list(attrs.get("dilations", [1, 1])) == [1, 1]
        and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
        and "output_shape" not in attrs
        and not any(attrs.get("output_padding", [0, 0]))
        and strides[0] == strides[1] > 1
        and kernel == list(weight.shape[2:])
        # output size s*(H-1) + k - pads == s*H for both axes
        and all(kernel[a] - pads[a] - pads[a + 2] == strides[a] for a in range(2))
    )


def _phase_weights(weight: np.ndarray, bias: np.ndarray, stride: int, pads: list[int]):
    """Conv weight [s*s*Cout, Cin, Ky', Kx'], bias [s*s*Cout] and pads for DepthToSpace's DCR order."""
    c_in, c_out = weight.shape[:2]
    pad_y, taps_y = phase_taps(stride, weight.shape[2], pads[0])
    pad_x, taps_x = phase_taps(stride, weight.shape[3], pads[1])
    size_y = 1 + max([j for taps in taps_y for _, j in taps] + [pad_y])
    size_x = 1 + max([j for taps in taps_x for _, j in taps] + [pad_x])
    conv = np.zeros((stride * stride * c_out, c_in, size_y, size_x), weight.dtype)
    for py in range(stride):
        for px in range(stride):
            block = slice((py * stride + px) * c_out, (py * stride + px + 1) * c_out)
            for ky, jy in taps_y[py]:
                for kx, jx in taps_x[px]:
                    # ConvTranspose weights are [Cin, Cout, ky, kx]; Conv wants [Cout, Cin, ky, kx].
                    conv[block, :, jy, jx] = weight[:, :, ky, kx].T
    conv_pads = [pad_y, pad_x, size_y - 1 - pad_y, size_x - 1 - pad_x]
    return conv, np.tile(bias, stride * stride), conv_pads


def rewrite_transposed_convolutions(proto: onnx.ModelProto) -> int:
    """Rewrite in place every ConvTranspose `_rewritable` accepts; returns how many were rewritten.

    When a Relu is a rewritten node's only consumer, it moves before the
    DepthToSpace (a Relu commutes with a permutation), where onnxruntime
    fuses it into the convolution.
    """
    graph = proto.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}

    new_nodes: list[onnx.NodeProto] = []
    dropped: set[str] = set()  # outputs of the Relus moved into a rewrite
    rewritten = 0
    for node in graph.node:
        if node.output[0] in dropped:
            continue
        if not _rewritable(node, constants):
            new_nodes.append(node)
            continue
        attrs = _attributes(node)
        weight = constants[node.input[1]]
        bias = constants[node.input[2]] if len(node.input) == 3 else np.zeros(weight.shape[1], weight.dtype)
        stride = int(attrs["strides"][0])
        conv_weight, conv_bias, conv_pads = _phase_weights(weight, bias, stride, list(attrs.get("pads", [0, 0, 0, 0])))
        prefix = f"{node.name or node.output[0]}/subpixel"
        graph.initializer.extend([
            numpy_helper.from_array(conv_weight, f"{prefix}/weight"),
            numpy_helper.from_array(conv_bias, f"{prefix}/bias"),
        ])  # fmt: skip
        users = consumers.get(node.output[0], [])
        relu = users[0] if len(users) == 1 and users[0].op_type == "Relu" and node.output[0] not in graph_outputs else None
        phases = f"{prefix}/phases"
        new_nodes.append(helper.make_node(
            "Conv", [node.input[0], f"{prefix}/weight", f"{prefix}/bias"], [phases], name=f"{prefix}/conv",
            kernel_shape=list(conv_weight.shape[2:]), pads=conv_pads, strides=[1, 1],
        ))  # fmt: skip
        if relu is not None:
            new_nodes.append(helper.make_node("Relu", [phases], [f"{prefix}/relu"], name=f"{prefix}/relu"))
            phases, final_output = f"{prefix}/relu", relu.output[0]
            dropped.add(relu.output[0])
        else:
            final_output = node.output[0]
        new_nodes.append(helper.make_node(
            "DepthToSpace", [phases], [final_output], name=f"{prefix}/interleave", blocksize=stride, mode="DCR",
        ))  # fmt: skip
        rewritten += 1

    used = {name for node in new_nodes for name in node.input}
    kept_initializers = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers)
    return rewritten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or folder (default: the default model)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure; the median is reported")
    args = parser.parse_args()

    import onnxruntime

    sys.path.insert(0, str(Path(__file__).parent))
    from compare import BATCHES, images_per_second, median_of

    folder = vae_gen.resolve_model(args.model)
    card = vae_gen.ModelCard.load(folder)
    exported = onnx.load(str(folder / card.decoder.file))
    rewritten = onnx.load(str(folder / card.decoder.file))
    count = rewrite_transposed_convolutions(rewritten)
    sessions = {
        name: onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        for name, proto in (("ConvTranspose (as exported)", exported), ("Conv + DepthToSpace", rewritten))
    }
    rng = np.random.default_rng(0)
    latents = {b: rng.standard_normal((b, card.latent_dim)).astype(np.float32) for b in BATCHES}
    outputs = [s.run(None, {card.decoder.inputs[0]: latents[64]})[0] for s in sessions.values()]
    feed = card.decoder.inputs[0]
    speed = {
        name: {
            b: median_of(args.runs, lambda s=s, b=b: images_per_second(lambda z: s.run(None, {feed: z}), latents[b]))
            for b in BATCHES
        }
        for name, s in sessions.items()
    }  # fmt: skip
    print(f"{card.name}: {count} ConvTranspose rewritten; max |difference| {np.abs(outputs[0] - outputs[1]).max():.2e}")
    print(f"{'images/s, medians of ' + str(args.runs):32}" + "".join(f"{f'batch {b}':>18}" for b in BATCHES))
    base = speed["ConvTranspose (as exported)"]
    for name, row in speed.items():
        print(f"{name:32}" + "".join(f"{row[b]:>10,.0f} (x{row[b] / base[b]:.2f})" for b in BATCHES))


if __name__ == "__main__":
    main()
