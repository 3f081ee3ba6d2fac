"""The largest batch whose step fits in a device's memory, found by compiling a few batches: the batch grows until
its step does not fit (guided by how the peak grew so far), then a bracket narrows to one batch."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from jaxcost.models.memory import MemoryReport

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgtp]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """A memory size: ``16GiB``, ``16 GB``, ``16e9``, ``512MiB``, ``1.5TiB`` (GB = 10^9 B, GiB = 2^30 B)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"--memory: not a size: {text!r} (write 16GiB, 16GB or 16e9)")
    number, prefix, binary = match.groups()
    power = "kmgtp".find(prefix.lower()) + 1 if prefix else 0
    value = float(number) * ((1024 if binary else 1000) ** power)
    if value < 1:
        raise ValueError(f"--memory: must be at least one byte, got {text!r}")
    return int(value)


@dataclass
class Fit:
    """The search's outcome: the largest fitting batch (None when not even the smallest fits) and every batch
    compiled on the way, with its report."""

    capacity_bytes: int
    unit: int
    batch: int | None
    reports: dict[int, MemoryReport] = field(default_factory=dict)

    @property
    def compiles(self) -> int:
        return len(self.reports)

    @property
    def bytes_per_unit(self) -> int:
        """How much the required bytes grow per ``unit`` of batch, from the two smallest batches compiled."""
        first, second = sorted(self.reports)[:2]
        step = (self.reports[second].required_bytes - self.reports[first].required_bytes)
        return step * self.unit // (second - first)

    def next_batch(self) -> int | None:
        """The smallest compiled batch above the answer (it does not fit)."""
        above = [batch for batch in self.reports if self.batch is None or batch > self.batch]
        return min(above) if above else None

    @property
    def exact(self) -> bool:
        """Whether the batch ``unit`` above the answer was compiled (and does not fit); else the search stopped at
        its compile budget, or at its largest batch, with a gap left."""
        following = self.next_batch()
        return self.batch is not None and following == self.batch + self.unit


def largest_batch(measure: Callable[[int], MemoryReport], capacity_bytes: int, unit: int = 1,
                  most: int = 1 << 20, max_compiles: int = 9) -> Fit:
    """The largest multiple of ``unit`` (up to ``most``) whose ``measure(batch).required_bytes`` fit in
    ``capacity_bytes``, found by compiling at most ``max_compiles`` batches. First the batch grows (where the line
    through the last two batches meets the capacity, eight times when they needed the same bytes; at least twice and
    at most 64 times the last) until one does not fit; then the bracket narrows until its ends are ``unit`` apart:
    where the line through its ends meets the capacity, or its middle when the same end moved twice running, or,
    below a top that needs the same bytes as the batch above it (padding to a tile), twice as far below each time.
    ``Fit.exact`` says whether they are."""
    fit = Fit(capacity_bytes, unit, None)

    def fits(batch: int) -> bool:
        if batch not in fit.reports:
            fit.reports[batch] = measure(batch)
        return fit.reports[batch].fits(capacity_bytes)

    if not fits(unit):
        return fit
    low, high = unit, None
    while high is None and low < most and fit.compiles < max_compiles:
        guess = _grown(fit, low, unit, most)
        low, high = (guess, None) if fits(guess) else (low, guess)
    moved: list[str] = []  # which end of the bracket each narrowing moved
    down = 0  # how far below the bracket's top to look next, when its top is a plateau
    while high is not None and high - low > unit and fit.compiles < max_compiles:
        if down:
            guess = max(low + unit, _rounded(high - down, unit))
        else:
            guess = _between(fit, low, high, unit, interpolate=moved[-2:] not in (["low", "low"], ["high", "high"]))
        if fits(guess):
            low, down = guess, 0
            moved.append("low")
            continue
        # the same bytes as the top: a plateau (padding to a tile); look below it, twice as far each time
        plateau = fit.reports[guess].required_bytes == fit.reports[high].required_bytes
        down = 2 * (high - guess) if plateau else 0
        high = guess
        moved.append("high")
    fit.batch = low
    return fit


def _rounded(batch: float, unit: int) -> int:
    return max(unit, int(batch) // unit * unit)


def _grown(fit: Fit, low: int, unit: int, most: int) -> int:
    """The next batch to try while every batch so far fits."""
    below = [batch for batch in sorted(fit.reports) if batch < low]
    guess: float = 2 * low
    if below:
        previous = below[-1]
        slope = (fit.reports[low].required_bytes - fit.reports[previous].required_bytes) / (low - previous)
        guess = low + (fit.capacity_bytes - fit.reports[low].required_bytes) / slope if slope > 0 else 8 * low
    return min(most, _rounded(min(max(guess, 2 * low), 64 * low), unit))


def _between(fit: Fit, low: int, high: int, unit: int, interpolate: bool) -> int:
    """The next batch inside the bracket: where the line through its ends meets the capacity, or its middle."""
    guess = (low + high) / 2
    if interpolate:
        rise = fit.reports[high].required_bytes - fit.reports[low].required_bytes
        if rise > 0:
            guess = low + (fit.capacity_bytes - fit.reports[low].required_bytes) * (high - low) / rise
    return min(max(_rounded(guess, unit), low + unit), high - unit)
