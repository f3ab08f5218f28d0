"""onnxruntime session options against the runtime's defaults, on the default model's decoder.

Each row changes one thing from what vae_gen.Generator does (all cores,
ORT_ENABLE_ALL, spinning worker threads, float32 output converted to uint8
in numpy) and reports images/s to uint8 at batch 1, 64 and 1024, medians
of --runs, with the ratio to the default row:

    python benchmarks/session_options.py [--model NAME] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper

import vae_gen

sys.path.insert(0, str(Path(__file__).parent))
from compare import BATCHES, images_per_second, median_of, to_uint8


def with_uint8_output(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The decoder with x -> uint8(clip(round(x * 255))) appended, so the conversion runs inside onnxruntime."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = proto.graph
    output = graph.output[0]
    name = output.name
    graph.initializer.extend([
        helper.make_tensor("uint8/scale", TensorProto.FLOAT, [], [255.0]),
        helper.make_tensor("uint8/low", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("uint8/high", TensorProto.FLOAT, [], [255.0]),
    ])  # fmt: skip
    for node in graph.node:  # rename the float output so the new uint8 one can take its name
        node.output[:] = [f"{name}/float" if o == name else o for o in node.output]
    graph.node.extend([
        helper.make_node("Mul", [f"{name}/float", "uint8/scale"], ["uint8/scaled"]),
        helper.make_node("Round", ["uint8/scaled"], ["uint8/rounded"]),
        helper.make_node("Clip", ["uint8/rounded", "uint8/low", "uint8/high"], ["uint8/clipped"]),
        helper.make_node("Cast", ["uint8/clipped"], [name], to=TensorProto.UINT8),
    ])  # fmt: skip
    output.type.tensor_type.elem_type = TensorProto.UINT8
    return proto


def session(proto: onnx.ModelProto, **changes) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = changes.pop("threads", os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = changes.pop("level", onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL)
    for key, value in changes.items():
        options.add_session_config_entry(key, value)
    return onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or folder (default: the default model)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure; the median is reported")
    args = parser.parse_args()

    folder = vae_gen.resolve_model(args.model)
    card = vae_gen.ModelCard.load(folder)
    proto = onnx.load(str(folder / card.decoder.file))
    z_name = card.decoder.inputs[0]
    levels = onnxruntime.GraphOptimizationLevel
    float_rows = {
        "default (as vae_gen runs it)": session(proto),
        "1 thread": session(proto, threads=1),
        "no spinning threads": session(proto, **{"session.intra_op.allow_spinning": "0"}),
        "ORT_ENABLE_EXTENDED (no NCHWc)": session(proto, level=levels.ORT_ENABLE_EXTENDED),
        "ORT_ENABLE_BASIC": session(proto, level=levels.ORT_ENABLE_BASIC),
        "denormals as zero": session(proto, **{"session.set_denormal_as_zero": "1"}),
    }
    decoders = {name: (lambda z, s=s: to_uint8(s.run(None, {z_name: z})[0])) for name, s in float_rows.items()}
    in_graph = session(with_uint8_output(proto))
    decoders["uint8 conversion in the graph"] = lambda z: in_graph.run(None, {z_name: z})[0][..., 0]

    rng = np.random.default_rng(0)
    latents = {b: rng.standard_normal((b, card.latent_dim)).astype(np.float32) for b in BATCHES}
    reference = decoders["default (as vae_gen runs it)"](latents[64])
    for name, decode in decoders.items():
        difference = np.abs(decode(latents[64]).astype(int) - reference).max()
        if difference > 1:
            raise SystemExit(f"{name}: differs from the default by {difference} gray levels; not comparable")

    speed = {
        name: {b: median_of(args.runs, lambda d=d, b=b: images_per_second(d, latents[b])) for b in BATCHES}
        for name, d in decoders.items()
    }
    base = speed["default (as vae_gen runs it)"]
    print(f"{card.name}: images/s to uint8, {os.cpu_count()} cores, medians of {args.runs}, ratio to the default")
    print(f"{'':34}" + "".join(f"{f'batch {b}':>18}" for b in BATCHES))
    for name, row in speed.items():
        print(f"{name:34}" + "".join(f"{row[b]:>10,.0f} (x{row[b] / base[b]:.2f})" for b in BATCHES))


if __name__ == "__main__":
    main()
