"""The rules of training settings: what values one setting allows, and how its command-line text is read.

A `Rule` checks a value from Python or JSON and normalizes it, and parses the
text of a command-line option; the constructors here (`integer`, `number`,
`one_of`, `flag`, ...) build the rules that `TrainSettings` declares with
`setting`, and `SettingError` is how a value outside its rule is refused. Like
the settings, this module imports neither TensorFlow nor numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidArgumentError


class SettingError(InvalidArgumentError):
    """A training setting with a value outside what it allows.

    `name` is the field (`latent_dim`), `problem` says what is wrong
    ("must be an integer >= 1, got 0"); the message joins them the way the
    caller spoke: the CLI names its option, a file its path and field.
    """

    def __init__(self, name: str, problem: str, where: str = "") -> None:
        self.name, self.problem, self.where = name, problem, where
        super().__init__(f"{where}{name} {problem}")


@dataclass(frozen=True)
class Rule:
    """What one setting allows, and how its command-line text is read."""

    #: Checks a value (from Python or JSON) and returns it normalized; raises ValueError(problem).
    check: Callable[[Any], Any]
    #: Turns command-line text into a value before `check`; raises ValueError(problem).
    parse: Callable[[str], Any]
    #: How --help shows the value.
    metavar: str | None = None


def parsing(convert: Callable[[str], Any], allowed: str) -> Callable[[str], Any]:
    """Command-line text -> a value by `convert`, or ValueError saying what is allowed."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError:
            raise ValueError(f"must be {allowed}, got {text!r}") from None

    return parse


def integer(minimum: int, maximum: int | None = None, optional: bool = False, null_means: str = "all") -> Rule:
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
    if optional:
        allowed += f" (or null: {null_means})"

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"must be {allowed}, got {value!r}")
        return value

    return Rule(check, parsing(int, allowed))


def number(minimum: float, inclusive: bool) -> Rule:
    allowed = f"a finite number {'>=' if inclusive else '>'} {minimum:g}"

    def check(value: Any) -> Any:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not (value >= minimum if inclusive else value > minimum):
            raise ValueError(f"must be {allowed}, got {value!r}")
        return float(value)

    return Rule(check, parsing(float, allowed))


def text() -> Rule:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise ValueError(f"must be a non-empty string, got {value!r}")
        return value

    return Rule(check, lambda text: text)


def fraction(default: float) -> Rule:
    """A number strictly between 0 and 1, or None (`default` applies)."""

    allowed = f"a number > 0 and < 1 (or null: {default:g})"

    def check(value: Any) -> Any:
        if value is None:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1
        if not ok:
            raise ValueError(f"must be {allowed}, got {value!r}")
        return float(value)

    return Rule(check, parsing(float, allowed), metavar="FRACTION")


def image_size(max_side: int) -> Rule:
    """(height, width), written HxW on the command line and [H, W] in JSON; or None (the images' own)."""
    allowed = f"HxW with integers from 1 to {max_side} (or null: the images' own size)"

    def check(value: Any) -> Any:
        if value is None:
            return None
        sides = list(value) if isinstance(value, (list, tuple)) else []
        if len(sides) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= max_side for s in sides):
            raise ValueError(f"must be {allowed}, got {value!r}")
        return (sides[0], sides[1])

    def parse(text: str) -> Any:
        try:
            height, width = (int(side) for side in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"must be {allowed}, got {text!r}") from None
        return (height, width)

    return Rule(check, parse, metavar="HxW")


def optional_text(meaning_of_null: str) -> Rule:
    """A non-empty string, or None (`meaning_of_null`)."""
    allowed = f"a non-empty string (or null: {meaning_of_null})"

    def check(value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"must be {allowed}, got {value!r}")
        return value

    return Rule(check, lambda text: text)


def one_of(*choices: str) -> Rule:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return Rule(check, lambda text: text, metavar="{" + ",".join(choices) + "}")


def integer_choice(*choices: int) -> Rule:
    """One of `choices`, or None (decided from the data)."""
    allowed = f"one of {', '.join(map(str, choices))} (or null: from the data)"

    def check(value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value not in choices):
            raise ValueError(f"must be {allowed}, got {value!r}")  # 3.0 too: it would reach numpy as a shape
        return value

    return Rule(check, parsing(int, allowed), metavar="{" + ",".join(map(str, choices)) + "}")


def flag() -> Rule:
    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value

    return Rule(check, lambda text: text)


def setting(default: Any, rule: Rule, help: str, option: str | None = None) -> Any:
    """A dataclass field with its rule, its help and its command-line option (default: --the-name)."""
    return field(default=default, metadata={"rule": rule, "help": help, "option": option})
