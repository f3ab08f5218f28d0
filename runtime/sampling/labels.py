"""Class labels of a conditional model: what a caller asks for, as the rows the graphs take.

A conditional model's decoder and encoder take a second input, `label`,
float32 [batch, classes]: a one-hot row asks for one class, a row of
non-negative weights summing to 1 asks for a blend. Callers say which with a
label spec, resolved here against the model's class names:

    "Sneaker" or 7        every image of that class (a name, or its index)
    "all"                 image i of class i mod K: any count is balanced
    {"Shirt": 0.5, "Dress": 0.5}
                          every image a blend of those classes
    ["Bag", 3, ...]       one spec per image (API only)
    float array [n, K]    the label rows themselves, one per image (API only)

Image i's row depends only on the spec and i, never on batching, so bulk runs,
shards and resumes stay byte-identical. Every refusal is an
InvalidArgumentError naming the bad value and the model's classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from ..core.checks import shown
from ..errors import InvalidArgumentError

#: The spec that cycles through the classes: image i gets class i mod K.
ALL_CLASSES = "all"
#: How far a blend's weights may sum from 1 (they are rescaled to sum to 1 exactly).
WEIGHT_SUM_TOLERANCE = 1e-6

OneLabel: TypeAlias = "str | int | Mapping[str, float] | Mapping[int, float] | Mapping[str | int, float]"
LabelSpec: TypeAlias = "OneLabel | Sequence[OneLabel] | np.ndarray"


@dataclass(frozen=True)
class Labels:
    """A label spec resolved for one model and one range of images [start, start + n).

    `spec` is the canonical form (a class name, "all", a mapping of names to
    weights, or per-image rows); `rows(lo, hi)` gives the float32 label rows
    of images [lo, hi) (absolute indices).
    """

    classes: tuple[str, ...]
    spec: str | dict[str, float] | None
    #: Per-image rows [n, K] of images [start, start + n), for a per-image spec; else None.
    per_image: np.ndarray | None = None
    start: int = 0

    @property
    def cycles(self) -> bool:
        """True for "all": image i of class i mod K (unless a class is itself called "all")."""
        return self.spec == ALL_CLASSES and ALL_CLASSES not in self.classes

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """float32 [hi - lo, K]: the label rows of images lo..hi-1."""
        k = len(self.classes)
        if self.per_image is not None:
            # Rows before `start` (an aligned batch decoded whole and trimmed) are never shown: repeat the first.
            picks = np.clip(np.arange(lo, hi) - self.start, 0, len(self.per_image) - 1)
            return self.per_image[picks]
        if self.cycles:
            out: np.ndarray = np.eye(k, dtype=np.float32)[np.arange(lo, hi) % k]
            return out
        return np.repeat(_row(self.spec, self.classes)[None], hi - lo, axis=0)

    def names(self, lo: int, hi: int) -> list[str]:
        """What each image of lo..hi-1 was asked to be: its class name, or a blend written "A:0.5,B:0.5"."""
        if self.cycles:
            return [self.classes[i % len(self.classes)] for i in range(lo, hi)]
        if isinstance(self.spec, str):
            return [self.spec] * (hi - lo)
        if isinstance(self.spec, dict):
            return [blend_text(self.spec)] * (hi - lo)
        return [row_text(row, self.classes) for row in self.rows(lo, hi)]

    def indices(self, lo: int, hi: int) -> np.ndarray:
        """int64 [hi - lo]: each image's class index, for specs that ask for one class per image; -1 for a blend."""
        rows = self.rows(lo, hi)
        one_hot = (rows.max(axis=1) == 1.0) & (np.count_nonzero(rows, axis=1) == 1)
        return np.where(one_hot, rows.argmax(axis=1), -1).astype(np.int64)


def resolve(
    label: LabelSpec | None, classes: Sequence[str], model: str, n: int | None = None, start: int = 0
) -> Labels | None:
    """Check `label` against the model's `classes`; None for an unconditional model asked for no label.

    n: the number of images a per-image sequence must cover (None: sequences refused, as for a bulk run).
    """
    classes = tuple(classes)
    if not classes:
        if label is not None:
            raise InvalidArgumentError(f"model {model!r} is not class-conditional, so it takes no label; got {shown(label)}")
        return None
    if label is None:
        raise InvalidArgumentError(
            f"model {model!r} is class-conditional: give label= one of {_listed(classes)}, an index 0-{len(classes) - 1}, "
            f"{ALL_CLASSES!r} (image i of class i mod {len(classes)}) or a blend of classes with weights summing to 1"
        )
    if isinstance(label, np.ndarray) and label.ndim == 0:
        label = label.item()  # a 0-d array is one value
    if isinstance(label, np.integer):
        label = int(label)
    if isinstance(label, (str, int, Mapping)) and not isinstance(label, bool):
        return Labels(classes, canonical(label, classes, model))
    if isinstance(label, bool) or not isinstance(label, (Sequence, np.ndarray)):
        raise InvalidArgumentError(_unknown(label, classes, model))
    if n is None:
        raise InvalidArgumentError(
            f"label must be one class, {ALL_CLASSES!r} or a blend here, got a sequence; per-image labels are for "
            "Generator.generate and decode"
        )
    if isinstance(label, np.ndarray) and label.ndim == 2:
        return Labels(classes, None, _checked_rows(label, classes, n), start)
    if isinstance(label, np.ndarray) and label.ndim == 1 and np.issubdtype(label.dtype, np.integer) and len(label) == n:
        # Class indices per image (a test set's labels): checked and turned into rows at once.
        bad = label[(label < 0) | (label >= len(classes))]
        if len(bad):
            canonical(int(bad[0]), classes, model)  # raises, naming the first bad index
        return Labels(classes, None, np.eye(len(classes), dtype=np.float32)[label], start)
    items = list(label)
    if len(items) != n:
        raise InvalidArgumentError(f"label holds {len(items)} per-image labels for {n} images; give one per image")
    per_image = np.stack([_row(canonical(item, classes, model), classes) for item in items]) if items else None
    return Labels(classes, None, per_image, start)


def canonical(label: object, classes: tuple[str, ...], model: str) -> str | dict[str, float]:
    """One label as a class name, "all", or a {name: weight} blend whose weights sum to 1."""
    if isinstance(label, np.integer):
        label = int(label)
    if isinstance(label, str):
        if label in classes or label == ALL_CLASSES:
            return label
        raise InvalidArgumentError(_unknown(label, classes, model))
    if isinstance(label, int) and not isinstance(label, bool):
        if 0 <= label < len(classes):
            return classes[label]
        raise InvalidArgumentError(f"class index {label} is out of range for model {model!r}: 0-{len(classes) - 1} "
                                   f"({_listed(classes)})")  # fmt: skip
    if isinstance(label, Mapping):
        return _blend(label, classes, model)
    raise InvalidArgumentError(_unknown(label, classes, model))


def parse_label_text(text: str, classes: Sequence[str]) -> str | int | dict[str | int, float]:
    """Command-line or URL text as a label: a class name, an index, "all", or "Shirt:0.5,Dress:0.5" (a blend).

    A class name wins over every other reading, so a class called "7" or "all" is still asked for by name.
    """
    if text in classes or text == ALL_CLASSES:
        return text
    if _is_index(text):
        return int(text)
    if ":" in text:
        weights: dict[str, float] = {}
        for part in text.split(","):
            name, sep, weight = part.rpartition(":")
            try:
                if not sep:
                    raise ValueError
                value = float(weight)
            except ValueError:
                raise InvalidArgumentError(
                    f"class {shown(text)}: a blend is NAME:WEIGHT,NAME:WEIGHT,... (weights >= 0 summing to 1), got {shown(part)}"
                ) from None
            if name in weights:
                raise InvalidArgumentError(f"class {shown(text)}: {shown(name)} appears twice in the blend")
            weights[name] = value
        # A part that is not a class name but an index names the class by its index, as a lone label does.
        return {(int(name) if name not in classes and _is_index(name) else name): value for name, value in weights.items()}
    return text


def _is_index(text: str) -> bool:
    """ASCII digits only: "²" and "٢" are digits to str.isdigit, but not indices."""
    stripped = text.strip()
    return stripped.isascii() and stripped.isdecimal()


def blend_text(weights: Mapping[str, float]) -> str:
    """{"Shirt": 0.5, "Dress": 0.5} -> "Shirt:0.5,Dress:0.5" (what parse_label_text reads back): 9 significant
    digits, which give back a float32 weight exactly, so the text names the very row the image was decoded with."""
    return ",".join(f"{name}:{weight:.9g}" for name, weight in weights.items())


def row_text(row: np.ndarray, classes: tuple[str, ...]) -> str:
    """A label row as the class it asks for, or its blend's text."""
    nonzero = np.flatnonzero(row)
    if len(nonzero) == 1 and row[nonzero[0]] == 1.0:
        return classes[int(nonzero[0])]
    return blend_text({classes[int(i)]: float(row[i]) for i in nonzero})


def _checked_rows(rows: np.ndarray, classes: tuple[str, ...], n: int) -> np.ndarray:
    """Label rows given as an array: float [n, K], each row non-negative weights summing to 1."""
    if rows.shape != (n, len(classes)) or not np.issubdtype(rows.dtype, np.floating):
        raise InvalidArgumentError(
            f"label rows must be floats of shape [{n}, {len(classes)}] (one row of class weights per image), "
            f"got {rows.dtype} {list(rows.shape)}"
        )
    sums = rows.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(sums) | (rows.min(axis=1) < 0) | (np.abs(sums - 1.0) > WEIGHT_SUM_TOLERANCE))
    if len(bad):
        raise InvalidArgumentError(f"label row {bad[0]} must be finite weights >= 0 summing to 1, got {rows[bad[0]].tolist()}")
    out: np.ndarray = (rows / sums[:, None]).astype(np.float32)
    return out


def _blend(label: Mapping[object, object], classes: tuple[str, ...], model: str) -> dict[str, float]:
    if not label:
        raise InvalidArgumentError(f"a blend needs at least one class with its weight, got {{}}; classes: {_listed(classes)}")
    weights: dict[str, float] = {}
    for key, value in label.items():
        name = canonical(key, classes, model) if isinstance(key, (str, int)) else None
        if name is None:
            raise InvalidArgumentError(_unknown(key, classes, model))
        if not isinstance(name, str) or (name == ALL_CLASSES and ALL_CLASSES not in classes):
            raise InvalidArgumentError(f"{ALL_CLASSES!r} cannot be part of a blend; name classes: {_listed(classes)}")
        ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
        try:
            ok = ok and math.isfinite(float(value)) and float(value) >= 0  # type: ignore[arg-type]
        except OverflowError:  # an int too large for a float
            ok = False
        if not ok:
            raise InvalidArgumentError(f"blend weight of {name!r} must be a finite number >= 0, got {shown(value)}")
        if name in weights:
            raise InvalidArgumentError(f"class {name!r} appears twice in the blend")
        weights[name] = float(value)  # type: ignore[arg-type]
    total = math.fsum(weights.values())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise InvalidArgumentError(f"blend weights must sum to 1, got {total:g} ({blend_text(weights)})")
    return {name: weight for name, weight in weights.items() if weight > 0}


def _row(spec: str | dict[str, float] | None, classes: tuple[str, ...]) -> np.ndarray:
    row = np.zeros(len(classes), np.float32)
    if isinstance(spec, str) and spec in classes:
        row[classes.index(spec)] = 1.0
    elif isinstance(spec, dict):
        for name, weight in spec.items():
            row[classes.index(name)] = weight
        row /= row.sum(dtype=np.float32)
    else:  # "all" inside a per-image sequence has no single row
        raise InvalidArgumentError(f"{ALL_CLASSES!r} cannot be one image's label; give a class or a blend")
    return row


def _unknown(label: object, classes: tuple[str, ...], model: str) -> str:
    return f"unknown class {shown(label)} for model {model!r}; classes: {_listed(classes)} (or an index 0-{len(classes) - 1})"


def _listed(classes: tuple[str, ...]) -> str:
    return ", ".join(classes)
