"""A tutorial's figures judged against where one dlrun run lands, over a configuration's seeds.

A tutorial's figure comes from one run. So it is set against the 95% prediction interval for
one more dlrun run (seeds.prediction_interval: mean +- t(n - 1) s sqrt(1 + 1/n)), not against
the interval of the mean, which narrows with every seed added:

    test_acc: the tutorial printed 0.78; one dlrun run lands in 0.778 to 0.822 (5 seeds),
    and 0.78 is within it.

A number is within that interval or not; a range (0.80-0.90, "about 1.0-1.1") overlaps it or
not; a per-epoch list is judged at every epoch, and the sentence names the last one; text
("tiny", "about 0.10 (chance)") is shown beside ours, not judged. With one seed there is no
spread to judge by, and the sentence says so. The figures come from each run's summary.json
(reporting/reference.py put them there), so any folder of runs can be judged later.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlrun.reporting.seeds import prediction_interval

if TYPE_CHECKING:
    from rich.console import Console

PER_EPOCH = "_per_epoch"
# "0.80-0.90", "about 1.0-1.1", "11.6-13.4 (other builds up to 15.1)"
RANGE = re.compile(r"^\s*(?:about\s+)?(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)(?:\s*\(.*\))?\s*$")


@dataclass
class ReferenceCheck:
    """One figure of one configuration: the tutorial's value and ours in each run."""

    config: str  # "" when the runs are all one configuration
    figure: str
    reference: Any
    ours: list[Any] = field(default_factory=list)

    def sentence(self) -> str:
        head = f"{self.config}: {self.figure}" if self.config else self.figure
        if self.figure.endswith(PER_EPOCH) and _numbers(self.reference):
            return _per_epoch(head.removesuffix(PER_EPOCH) + " per epoch", self)
        values = _numbers(self.ours)
        found = bounds(self.reference)
        if found is None or not values or len(values) < len(self.ours):
            return f"{head}: the tutorial says {_text(self.reference)}; ours {_spread(self.ours)}."
        printed = f"{head}: the tutorial printed {_text(self.reference)}"
        if len(values) == 1:
            return f"{printed}; our one run gave {values[0]:.3g}: a spread needs seeds."
        low, high = prediction_interval(values)
        landed = f"{printed}; one dlrun run lands in {low:.3g} to {high:.3g} ({len(values)} seeds)"
        if found[0] == found[1]:
            inside = "within" if low <= found[0] <= high else "outside"
            return f"{landed}, and {_text(self.reference)} is {inside} it."
        overlap = "overlap" if found[0] <= high and low <= found[1] else "do not overlap"
        return f"{landed}: the two ranges {overlap}."


def reference_checks(
    runs: Iterable[tuple[str, Mapping[str, Any] | None]],
) -> tuple[list[str], list[ReferenceCheck]]:
    """The references' sources, and one check per configuration and figure, from each run's
    (configuration, summary.json); runs that did not complete are left out."""
    sources: dict[str, None] = {}
    checks: dict[tuple[str, str], ReferenceCheck] = {}
    for config, summary in runs:
        reference = (summary or {}).get("reference")
        if not reference or (summary or {}).get("status") != "completed":
            continue
        sources[str(reference.get("source", ""))] = None
        for row in reference.get("figures") or []:
            key = (config, row["figure"])
            check = checks.setdefault(key, ReferenceCheck(config, row["figure"], row["reference"]))
            if row.get("ours") is not None:
                check.ours.append(row["ours"])
    named = len({config for config, _ in checks}) > 1
    found = [check for check in checks.values() if check.ours]
    for check in found:
        check.config = check.config if named else ""
    return [source for source in sources if source], found


def _per_epoch(head: str, check: ReferenceCheck) -> str:
    """Judged at each epoch both have; the sentence names the last of them."""
    runs = [run for run in check.ours if isinstance(run, list)]
    epochs = min(len(check.reference), max((len(run) for run in runs), default=0))
    if epochs == 0:
        return f"{head}: the tutorial printed {_text(check.reference)}; ours has no epochs."
    inside, last = 0, None
    for epoch in range(epochs):
        values = _numbers([run[epoch] for run in runs if len(run) > epoch])
        last = (check.reference[epoch], values)
        interval = prediction_interval(values)
        inside += interval is not None and interval[0] <= check.reference[epoch] <= interval[1]
    value, values = last
    printed = f"{head}: at epoch {epochs} the tutorial printed {value:.3g}"
    if len(values) < 2:
        return f"{printed}; our one run gave {values[0]:.3g} there: a spread needs seeds."
    low, high = prediction_interval(values)
    return (
        f"{printed}; one dlrun run lands in {low:.3g} to {high:.3g} there ({len(values)} "
        f"seeds), and the tutorial's figure is within it at {inside} of {epochs} epochs."
    )


def bounds(reference: Any) -> tuple[float, float] | None:
    """A number as (it, it), a range as (low, high); None for text and lists."""
    if isinstance(reference, bool):
        return None
    if isinstance(reference, int | float):
        return float(reference), float(reference)
    match = RANGE.match(reference) if isinstance(reference, str) else None
    return (float(match[1]), float(match[2])) if match else None


def _numbers(values: Any) -> list[float]:
    """The finite numbers of a list (bools and text are not numbers here)."""
    if not isinstance(values, list):
        return []
    return [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _spread(values: list[Any]) -> str:
    """Our values, as text: one run's, or the lowest and highest of several."""
    numbers = _numbers(values)
    if len(values) == 1 or len(numbers) < len(values):
        return ", ".join(_text(v) for v in values)
    low, high = f"{min(numbers):.3g}", f"{max(numbers):.3g}"
    return f"{low}{'' if low == high else ' to ' + high} ({len(numbers)} seeds)"


def print_references(console: Console, sources: list[str], checks: list[ReferenceCheck]) -> None:
    """The tutorial's source, and one sentence per configuration and figure."""
    from rich.markup import escape

    if not checks:
        return
    console.print(f"Reference: {escape('; '.join(sources))}", soft_wrap=True)
    for check in checks:
        console.print(escape(check.sentence()), soft_wrap=True)
