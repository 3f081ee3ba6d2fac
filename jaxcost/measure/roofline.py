"""Utilization on the roofline: achieved FLOP/s and bytes/s against the peaks (the arithmetic; the plot is in
``reports.plots``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class RoofFigure(NamedTuple):
    """One roof's figure (FLOP/s or bytes/s) and where it comes from: ``datasheet``, ``estimate`` or ``measured``;
    both None where there is no such roof."""

    per_second: float | None
    source: str | None


def pick_roof(datasheet: float | None, datasheet_source: str, measured: float | None) -> RoofFigure:
    """The datasheet's figure (its source ``datasheet`` or ``estimate``) where it has one, else the measured
    ceiling, else no roof."""
    if datasheet:
        return RoofFigure(datasheet, datasheet_source)
    return RoofFigure(measured, "measured") if measured else RoofFigure(None, None)


@dataclass(frozen=True)
class Utilization:
    """What a run achieved against a roof of ``peak_flops_per_second`` and ``peak_bytes_per_second``.

    Rates come from flops (2 per multiply-add, plus the rest) and bytes, never from MACs.
    Utilizations are fractions; ``None`` where the roof is unknown.
    """

    flops: int
    bytes_accessed: int
    seconds: float
    peak_flops_per_second: float | None
    peak_bytes_per_second: float | None

    @property
    def flops_per_second(self) -> float:
        return self.flops / self.seconds

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_accessed / self.seconds

    @property
    def intensity(self) -> float:
        """FLOPs per byte."""
        return self.flops / self.bytes_accessed if self.bytes_accessed else float("inf")

    @property
    def ridge(self) -> float | None:
        """The intensity at which the roof turns from memory- to compute-bound."""
        if not self.peak_flops_per_second or not self.peak_bytes_per_second:
            return None
        return self.peak_flops_per_second / self.peak_bytes_per_second

    @property
    def bound(self) -> str | None:
        """``compute`` or ``memory``: which roof the intensity puts it under."""
        ridge = self.ridge
        if ridge is None:
            return None
        return "memory" if self.intensity < ridge else "compute"

    @property
    def compute_utilization(self) -> float | None:
        return self.flops_per_second / self.peak_flops_per_second if self.peak_flops_per_second else None

    @property
    def memory_utilization(self) -> float | None:
        return self.bytes_per_second / self.peak_bytes_per_second if self.peak_bytes_per_second else None

    @property
    def roofline_seconds(self) -> float | None:
        """The least time the roofs allow: the larger of flops / peak FLOP/s and bytes / peak bandwidth; None
        unless both roofs are known (one roof alone is no roofline)."""
        if not self.peak_flops_per_second or not self.peak_bytes_per_second:
            return None
        return max(self.flops / self.peak_flops_per_second, self.bytes_accessed / self.peak_bytes_per_second)

    @property
    def attainable_flops_per_second(self) -> float | None:
        """The roofline at this intensity: min(peak FLOP/s, intensity x peak bandwidth)."""
        if not self.peak_flops_per_second or not self.peak_bytes_per_second:
            return None
        return min(self.peak_flops_per_second, self.intensity * self.peak_bytes_per_second)

    @property
    def roofline_fraction(self) -> float | None:
        """Share of the attainable roofline bound achieved."""
        attainable = self.attainable_flops_per_second
        return self.flops_per_second / attainable if attainable else None


def mac_trap(macs: int, seconds: float) -> str:
    """The figure a common mistake reports (MACs divided by time, called FLOP/s), labelled as such."""
    return f"{macs / seconds:.4g} MAC/s: MACs divided by time is NOT FLOP/s (a FLOP/s figure counts 2 per MAC)"
