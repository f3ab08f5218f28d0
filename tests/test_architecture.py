"""The runtime's layers (docs/architecture.md): every module belongs to one, and imports point down or sideways,
never up. A new module must be placed here, which is the moment to decide where it belongs."""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"

#: Bottom to top: each layer's subpackages and top-level modules. The package's __init__ (the public API) may
#: import from any layer; the other top-level modules are public entry points that sit in one.
LAYERS: dict[str, set[str]] = {
    "core": {"core", "errors"},
    "model": {"model", "models"},
    "sampling": {"sampling"},
    "output": {"output", "training", "bulk", "scale_out"},
    "interface": {"cli", "serve", "console", "__main__"},
}
#: Modules outside the runtime that only the training commands reach (behind the train extra).
TRAINING_SIDE = ("train", "export")


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for rank, members in enumerate(LAYERS.values()):
        if top in members:
            return rank
    raise AssertionError(f"runtime module {module!r} has no layer: add it to LAYERS and docs/architecture.md")


def runtime_modules() -> dict[str, Path]:
    found = {}
    for path in sorted(RUNTIME.rglob("*.py")):
        parts = path.relative_to(RUNTIME).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name or "__init__"] = path
    return found


def imported(module: str, path: Path) -> set[str]:
    """The vae_gen modules `module` imports (names relative to vae_gen), however it spells them."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                if node.module:
                    names.add(".".join([*base, node.module]))
                else:
                    names.update(".".join([*base, alias.name]) for alias in node.names)
            elif node.module and node.module.startswith("vae_gen."):
                names.add(node.module.removeprefix("vae_gen."))
        elif isinstance(node, ast.Import):
            names.update(a.name.removeprefix("vae_gen.") for a in node.names if a.name.startswith("vae_gen."))
    return {name for name in names if name and name != "__version__"}


def test_every_runtime_module_has_a_layer():
    for module in runtime_modules():
        if module != "__init__":
            layer_of(module)


def test_imports_point_down_never_up():
    upward = []
    for module, path in runtime_modules().items():
        if module == "__init__":
            continue
        for target in imported(module, path):
            if target.split(".")[0] in TRAINING_SIDE:
                assert module == "cli.training", f"{module} imports {target}: only cli.training reaches train/export"
                continue
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} ({list(LAYERS)[layer_of(module)]}) imports {target} ({list(LAYERS)[layer_of(target)]})")
    assert not upward, "imports from a layer above:\n" + "\n".join(upward)


def test_the_layer_test_sees_an_upward_import(tmp_path):
    """The check itself: a core module importing the generator would be caught."""
    fake = tmp_path / "errors.py"
    fake.write_text("from .sampling.generator import Generator\n")
    assert imported("errors", fake) == {"sampling.generator"} and layer_of("sampling.generator") > layer_of("errors")


def test_every_subpackage_is_installed_and_the_top_level_is_the_public_api():
    import tomllib

    packages = tomllib.loads((RUNTIME.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    subpackages = {path.parent.name for path in RUNTIME.glob("*/__init__.py")}
    assert {f"vae_gen.{name}" for name in subpackages} <= set(packages), "add the subpackage to pyproject.toml"
    diagram = (RUNTIME.parent / "docs" / "architecture.md").read_text()
    assert all(f" {name}/ " in diagram for name in subpackages), "draw the subpackage in docs/architecture.md"
    top_level = {path.stem for path in RUNTIME.glob("*.py")}
    assert top_level == {"__init__", "__main__", "console", "errors", "bulk", "scale_out"}, (
        "a module at the top of runtime/ is public API; put internals in the subpackage of their layer"
    )


def test_one_bulk_request_enters_each_module_at_most_once_on_the_way_down():
    """benchmarks/request_walk.py's trace of generate_to_array down to session.run: no module twice on one call
    stack, no call into a higher layer (the request is checked at the edge and passed down whole)."""
    import sys

    sys.path.insert(0, str(RUNTIME.parent / "benchmarks"))
    from request_walk import counts, walk

    stacks = walk(images=64, batch_size=32)
    figures = counts(stacks)
    assert figures["deepest repeat"] == 1 and figures["climbs"] == 0, figures
    called = {function for stack in stacks for _, function in stack}
    request_checks = {"check_seed", "check_count", "check_start", "check_temperature", "check_guidance",
                      "check_batch_size", "check_integer", "resolve", "Sampling.checked"}  # fmt: skip
    assert "ModelSessions.decode" in called and not called & request_checks, sorted(called)


def test_modules_and_functions_stay_small_enough_to_read():
    """Issue 28's bounds: no runtime file over 300 lines, no function over 60 (docstring included)."""
    too_long = []
    for module, path in runtime_modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 300:
            too_long.append(f"{module}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, "split these:\n" + "\n".join(too_long)
