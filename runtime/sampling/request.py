"""One request for images, checked once: which images (seed, start, count) and how (temperature, label, guidance).

`Sampling.checked` is called at the edge (an API call, a parsed command line,
an HTTP body, a run's spec) against one model's classes; everything below it
(the generator's batches, the PNG and array writers) takes the value as
checked and never checks it again. Image i of a request depends only on
(seed, i, temperature, its label, guidance) and the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.checks import check_integer
from .guidance import check_guidance
from .labels import Labels, LabelSpec, resolve
from .latents import check_seed, check_temperature

#: The upper bound of counts and indices; sizes beyond it are surely mistakes.
MAX_IMAGES = 2**40


@dataclass(frozen=True)
class Sampling:
    """Images [start, start + count) of `seed`, at `temperature`, labelled by `labels` (None for an unconditional
    model), with class `guidance` (0: the decoder's own output). Build it with `checked`."""

    seed: int
    start: int
    count: int
    temperature: float
    labels: Labels | None
    guidance: float

    @classmethod
    def checked(
        cls,
        classes: tuple[str, ...],
        model: str,
        count: object,
        *,
        seed: object = 0,
        start: object = 0,
        temperature: object = 1.0,
        label: LabelSpec | None = None,
        guidance: object = 0.0,
        one_label: bool = False,
    ) -> Sampling:
        """The request checked against a model named `model` with `classes`; a bad value raises
        InvalidArgumentError naming it and what is allowed. `one_label`: refuse per-image label sequences (a run
        record holds one label)."""
        checked_count, checked_start = check_count(count), check_start(start)
        checked_seed = check_seed(seed)
        labels = resolve(label, classes, model, None if one_label else checked_count, checked_start)
        return cls(checked_seed, checked_start, checked_count, check_temperature(temperature), labels,
                   check_guidance(guidance, classes, model))  # fmt: skip

    @property
    def stop(self) -> int:
        """One past the last image's index."""
        return self.start + self.count

    @property
    def label(self) -> LabelSpec | None:
        """The label as the caller named it (a class name, "all", a blend), for records; None without classes."""
        return None if self.labels is None else self.labels.spec

    def part(self, lo: int, hi: int) -> Sampling:
        """Images [lo, hi) of this request, within it (labels are indexed by image, so they carry over)."""
        if not self.start <= lo < hi <= self.stop:
            raise ValueError(f"[{lo}, {hi}) is not a non-empty part of [{self.start}, {self.stop})")
        return dataclasses.replace(self, start=lo, count=hi - lo)


def check_count(n: object) -> int:
    return check_integer(n, 1, MAX_IMAGES, "number of images")


def check_start(start: object) -> int:
    return check_integer(start, 0, MAX_IMAGES, "start index")
