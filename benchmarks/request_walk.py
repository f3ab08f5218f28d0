"""Follow one bulk request from `generate_to_array` down to onnxruntime's `session.run`, and count the walk.

Traces every call into a vae_gen function while one run of 64 images of the default model is written to a .npy
file (progress and batch callbacks off, so only the library's own calls count), and prints:

- stops: calls into vae_gen functions, in order;
- modules: the distinct modules they are in;
- climbs: calls from a module into one of a higher layer (docs/architecture.md);
- re-entries: calls into a module that the walk had entered and left before (not returns);
- deepest repeat: the most times one module appears on a single call stack (1: each module entered at most
  once on the way down).

    python benchmarks/request_walk.py [--images 64] [--batch-size 32] [--calls]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

LAYERS = ("core", "model", "sampling", "output", "interface")
LAYER_OF_TOP = {"errors": "core", "models": "model", "training": "output", "bulk": "output", "scale_out": "output",
                "cli": "interface", "serve": "interface", "console": "interface"}  # fmt: skip


def layer(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else module
    return LAYERS.index(LAYER_OF_TOP.get(top, top))


def walk(images: int, batch_size: int) -> list[list[tuple[str, str]]]:
    """For every call into a vae_gen function while the request runs: the vae_gen frames on the stack at that
    moment, outermost first, as (module, function)."""
    import vae_gen
    from vae_gen.output.array_file import generate_to_array
    from vae_gen.output.run_layout import RunSpec

    generator = vae_gen.load()
    spec = RunSpec.for_generator(generator, seed=0, count=images, batch_size=batch_size)
    stacks: list[list[tuple[str, str]]] = []

    def profile(frame, event, arg):
        if event != "call" or not frame.f_globals.get("__name__", "").startswith("vae_gen."):
            return
        if frame.f_code.co_name.startswith("<") or frame.f_code.co_name == "__init__":
            return  # comprehensions and dataclass constructors: not a stop of their own
        stack, f = [], frame
        while f is not None and f.f_code is not walk.__code__:
            module = f.f_globals.get("__name__", "")
            if module.startswith("vae_gen."):
                stack.append((module, f.f_code.co_qualname))
            f = f.f_back
        stacks.append(stack[::-1])

    with tempfile.TemporaryDirectory() as folder:
        sys.setprofile(profile)
        try:
            generate_to_array(generator, Path(folder) / "images.npy", spec)
        finally:
            sys.setprofile(None)
    return stacks


def counts(stacks: list[list[tuple[str, str]]]) -> dict[str, int]:
    """The walk's figures (see the module docstring)."""
    climbs = reentries = deepest = 0
    entered: set[str] = set()
    previous: list[str] = []
    for stack in stacks:
        modules = [module for module, _ in stack]
        callee, caller = modules[-1], (modules[-2] if len(modules) > 1 else None)
        if caller is not None and callee != caller and layer(callee) > layer(caller):
            climbs += 1
        if callee != caller and callee in entered and callee not in modules[:-1] and callee not in previous:
            reentries += 1
        entered.add(callee)
        collapsed = [m for i, m in enumerate(modules) if i == 0 or modules[i - 1] != m]
        deepest = max(deepest, max(collapsed.count(m) for m in collapsed))
        previous = modules
    return {"stops": len(stacks), "modules": len({s[-1][0] for s in stacks}), "climbs": climbs,
            "re-entries": reentries, "deepest repeat": deepest}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--calls", action="store_true", help="also list every call, indented by depth")
    args = parser.parse_args(argv)
    stacks = walk(args.images, args.batch_size)
    if args.calls:
        for stack in stacks:
            module, function = stack[-1]
            print(f"{'  ' * (len(stack) - 1)}{module.removeprefix('vae_gen.')}.{function}")
    print("| figure | value |\n|---|---|")
    for name, value in counts(stacks).items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
