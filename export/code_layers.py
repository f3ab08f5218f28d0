"""Lambda layers: Python code inside a .keras file, which Keras runs only when told the file is trusted.

A Lambda of a Python lambda saves the lambda's bytecode (and the plain values
it closes over), not the names it reads from around it: one that calls
`ops.exp` or `K.random_normal` saves fine and fails once loaded. A Lambda of
a named function saves only the function's name, found again like a custom
layer's (--custom-objects). The first kind is exported only when the caller
trusts its code (unsafe=True, `vae-gen export --trust-code`), and only when
it could run once loaded.
"""

from __future__ import annotations

import builtins
import dis
import types
from collections.abc import Iterator

import keras

from .convert import ExportError

#: What a saved lambda may read besides its arguments, once loaded: Python's builtins.
BUILTIN_NAMES = frozenset(dir(builtins))
#: The advice of every refusal of a lambda's code.
REWRITE = "write it as a named function (passed with --custom-objects FILE.py) or a custom layer"


def lambda_layers(model: keras.Model | None) -> Iterator[keras.layers.Lambda]:
    """Every Lambda layer of `model`, looking into nested models."""
    layers = list(model.layers) if model is not None else []
    while layers:
        layer = layers.pop()
        if isinstance(layer, keras.layers.Lambda):
            yield layer
        layers.extend(getattr(layer, "layers", ()))


def python_lambdas(layer: keras.layers.Lambda) -> list[types.FunctionType]:
    """The Python lambdas a Lambda layer saves as code: its function, and its output shape or mask when given so."""
    candidates = (layer.function, getattr(layer, "_output_shape", None), layer.mask)
    return [f for f in candidates if isinstance(f, types.FunctionType) and f.__name__ == "<lambda>"]


def refuse_code_layers(model: keras.Model | None, name: str) -> None:
    """In-memory models whose Lambda layers hold Python lambdas are exported only when their code is trusted: their
    .keras files, copied into the folder, load again (for `vae-gen parity`) only with --trust-code."""
    for layer in lambda_layers(model):
        if python_lambdas(layer):
            raise ExportError(f"{name} contains the Lambda layer {layer.name!r}; its Python code runs when the .keras "
                              "file is loaded, so re-checks need --trust-code: pass unsafe=True (vae-gen export "
                              "--trust-code) if you trust it, or use a named function or a registered custom layer")  # fmt: skip


def refuse_unsaved_names(model: keras.Model | None, name: str) -> None:
    """A lambda that reads names other than its arguments, Python's builtins and plain values it closes over fails
    once its .keras file is loaded (or runs on whatever Keras's own module holds by those names): refused, naming
    them."""
    for layer in lambda_layers(model):
        for function in python_lambdas(layer):
            missing = unsaved_names(function)
            if missing:
                raise ExportError(f"{name}'s Lambda layer {layer.name!r} reads {', '.join(missing)} from the code "
                                  "around it, which a .keras file does not keep (only the lambda's own code): "
                                  f"{REWRITE}")  # fmt: skip


def unsaved_names(function: types.FunctionType) -> list[str]:
    """The names a lambda reads that its saved code will not have: globals other than builtins, and closed-over
    values that are not plain data (Keras saves a closure's values in the model's JSON)."""
    names = global_names(function.__code__) - BUILTIN_NAMES
    for variable, cell in zip(function.__code__.co_freevars, function.__closure__ or (), strict=True):
        if not _plain(cell.cell_contents):
            names.add(variable)
    return sorted(names)


def _plain(value: object) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, (bool, int, float, str))


def global_names(code: types.CodeType) -> set[str]:
    """The global names a code object (and the code nested in it: comprehensions, inner lambdas) reads."""
    names = {str(i.argval) for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= global_names(constant)
    return names
