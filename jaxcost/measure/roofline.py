"""Utilization on the roofline: achieved FLOP/s and bytes/s against the peaks, and the plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jaxcost.reports.plots import pyplot, save


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


@dataclass(frozen=True)
class RooflinePoint:
    label: str
    intensity: float
    flops_per_second: float


def plot_roofline(points: Sequence[RooflinePoint], roofs: Sequence[tuple[str, float, float]], path: str | Path,
                  title: str = "") -> list[Path]:
    """Log-log roofline with one labelled point per layer; ``roofs`` are (label, peak FLOP/s, peak bytes/s).

    Writes ``path`` with .png and .svg suffixes and returns both paths (needs matplotlib).
    """
    plt = pyplot()
    intensities = [p.intensity for p in points if p.intensity > 0] or [1.0]
    low = min(min(intensities) / 4, 0.1)
    high = max(max(intensities) * 4, max((f / b for _, f, b in roofs if b), default=10) * 4)
    figure, axes = plt.subplots(figsize=(9, 6))
    styles = ["-", "--", ":", "-."]
    for index, (label, peak_flops, peak_bytes) in enumerate(roofs):
        xs = [low * (high / low) ** (i / 200) for i in range(201)]
        ys = [min(peak_flops, x * peak_bytes) if peak_bytes else peak_flops for x in xs]
        axes.plot(xs, ys, styles[index % len(styles)], color="black", linewidth=1.2)
        axes.annotate(f"{label}: {peak_flops / 1e12:.3g} TFLOP/s" + (f", {peak_bytes / 1e9:.3g} GB/s" if peak_bytes
                                                                     else ""),
                      (xs[-1], ys[-1]), xytext=(-4, 4 + 12 * index), textcoords="offset points", ha="right",
                      fontsize=8)
    for point in points:
        axes.plot(point.intensity, point.flops_per_second, "o", markersize=5)
        axes.annotate(point.label, (point.intensity, point.flops_per_second), xytext=(5, -3),
                      textcoords="offset points", fontsize=7)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (FLOPs / byte)")
    axes.set_ylabel("achieved FLOP/s")
    axes.set_title(title or "roofline")
    axes.grid(True, which="both", alpha=0.3)
    return save(figure, path)
