"""Value ranges, declared next to the key in its schema and checked in one place.

    epochs: int = field(default=MISSING, metadata=at_least(1))
    lr: float = field(default=MISSING, metadata=above(0))
    dropout: list[float] = field(default_factory=..., metadata=between(0, 1, high_open=True))

`check(node, schema, prefix)` walks a config node against its dataclass schema (nested
schemas included) and fails on the first value out of range, with one message that names
the key, the value and what is allowed. A list is checked element by element. Torch-free:
the command line checks every range before anything heavy is imported.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from dlrun.errors import DlrunError

KEY = "dlrun.range"


@dataclasses.dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    null: str | None = None  # what null means, when the key may be null

    def allows(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def text(self) -> str:
        """`>= 1`, `> 0`, `0 <= x < 1`."""
        low = None if self.low is None else f"{_number(self.low)} {'<' if self.low_open else '<='}"
        high = (
            None if self.high is None else f"{'<' if self.high_open else '<='} {_number(self.high)}"
        )
        if low and high:
            return f"{low} x {high}"
        if low:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        return f"{'<' if self.high_open else '<='} {_number(self.high)}"


def at_least(low: float, null: str | None = None) -> dict[str, Range]:
    return {KEY: Range(low=low, null=null)}


def above(low: float) -> dict[str, Range]:
    return {KEY: Range(low=low, low_open=True)}


def between(
    low: float, high: float, low_open: bool = False, high_open: bool = False
) -> dict[str, Range]:
    return {KEY: Range(low, high, low_open, high_open)}


def check(node: Mapping[str, Any], schema: type, prefix: str) -> None:
    """Raise a DlrunError for the first value of `node` outside its field's declared range."""
    if not dataclasses.is_dataclass(schema):
        return
    for spec in dataclasses.fields(schema):
        if spec.name not in node:
            continue
        value, key = node[spec.name], f"{prefix}.{spec.name}" if prefix else spec.name
        nested = field_dataclass(spec.type, schema)
        if nested is not None and isinstance(value, Mapping):
            check(value, nested, key)
        allowed = spec.metadata.get(KEY)
        if allowed is None or value is None:
            continue
        if isinstance(value, Sequence) and not isinstance(value, str):
            bad = [v for v in value if isinstance(v, int | float) and not allowed.allows(v)]
            if bad:
                listed = f"{key}={list(value)} has {bad[0]}, which"
                raise DlrunError(out_of_range(listed, allowed, key))
        elif isinstance(value, int | float) and not allowed.allows(value):
            raise DlrunError(out_of_range(f"{key}={value}", allowed, key))


def out_of_range(what: str, allowed: Range, key: str) -> str:
    use = allowed.text().replace(" x ", f" {key.rsplit('.', 1)[-1]} ")
    if allowed.null is not None:
        use = f"null ({allowed.null}) or {use}"
    return f"{what} is out of range: use {use}."


def field_dataclass(annotation: Any, owner: type) -> type | None:
    """The dataclass a field of `owner` holds, when its annotation (a string, as these
    modules postpone annotations) names one, optional (`X | None`) or not."""
    if isinstance(annotation, str):
        name = annotation.removesuffix(" | None")
        annotation = vars(sys.modules[owner.__module__]).get(name)
    return annotation if dataclasses.is_dataclass(annotation) else None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
