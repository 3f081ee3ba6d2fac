"""Plots: matplotlib, headless, one way to save a figure (PNG and SVG side by side), and the roofline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaxcost.reports.text import format_bytes, format_rate


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (ImportError with the fix when absent)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib (or jaxcost[plot])") from None
    return plt


def save(figure: Any, path: str | Path, dpi: int = 130) -> list[Path]:
    """Write ``path`` with .png and .svg suffixes, close the figure, return both paths."""
    base = Path(path)
    if base.suffix.lower() in (".png", ".svg"):
        base = base.with_suffix("")
    written = [Path(f"{base}.png"), Path(f"{base}.svg")]  # "results.size" keeps its ".size"
    for target in written:
        figure.savefig(target, dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)
    return written


@dataclass(frozen=True)
class RooflinePoint:
    """One program on the roofline: its intensity (FLOPs/byte) and achieved FLOP/s."""

    label: str
    intensity: float
    flops_per_second: float


@dataclass(frozen=True)
class Roof:
    """One roof: its legend text, the short tag written on the line, peak FLOP/s and bytes/s (None: flat)."""

    label: str
    tag: str
    flops_per_second: float
    bytes_per_second: float | None


#: Offsets (points) tried in turn for a point's number, so that no two numbers overlap.
_NUMBER_OFFSETS = [(4, 3), (4, -10), (-4, 3), (-4, -10), (4, 12), (4, -19), (-4, 12), (-4, -19), (12, -3), (-12, -3)]


def _roof_text(roof: Roof) -> str:
    bandwidth = f", {format_bytes(roof.bytes_per_second)}/s" if roof.bytes_per_second else ""
    return f"{roof.label}: {format_rate(roof.flops_per_second)}{bandwidth}"


def _place_numbers(axes: Any, points: Sequence[RooflinePoint], points_per_pixel: float) -> None:
    """Write each point's number beside it at the first offset whose box meets no number placed before."""
    placed: list[tuple[float, float, float, float]] = []
    for number, point in enumerate(points, 1):
        x, y = axes.transData.transform((point.intensity, point.flops_per_second)) * points_per_pixel
        width, height = 5.5 * len(str(number)) + 2, 9.0
        for dx, dy in _NUMBER_OFFSETS:
            left = x + dx if dx >= 0 else x + dx - width
            box = (left, y + dy, left + width, y + dy + height)
            if not any(box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]
                       for other in placed):
                break
        placed.append(box)
        axes.annotate(str(number), (point.intensity, point.flops_per_second), xytext=(dx, dy),
                      textcoords="offset points", fontsize=7, ha="left" if dx >= 0 else "right")


def plot_roofline(points: Sequence[RooflinePoint], roofs: Sequence[Roof], path: str | Path,
                  title: str = "") -> list[Path]:
    """Log-log roofline: each roof drawn and tagged on its line, each point numbered, the key beside the plot.

    Writes ``path`` with .png and .svg suffixes and returns both paths (needs matplotlib).
    """
    plt = pyplot()
    intensities = [p.intensity for p in points if p.intensity > 0] or [1.0]
    ridges = [roof.flops_per_second / roof.bytes_per_second for roof in roofs if roof.bytes_per_second]
    low = min(min(intensities) / 4, 0.1)
    high = max(max(intensities) * 4, max(ridges, default=10) * 10)
    figure, axes = plt.subplots(figsize=(11, 6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xs = [low * (high / low) ** (i / 200) for i in range(201)]
    for index, roof in enumerate(roofs):
        ys = [min(roof.flops_per_second, x * roof.bytes_per_second) if roof.bytes_per_second
              else roof.flops_per_second for x in xs]
        style = ("-", "--", ":", "-.")[index % 4]
        axes.plot(xs, ys, style, color="black" if index == 0 else colors[index % len(colors)], linewidth=1.3,
                  label=_roof_text(roof))
        ridge = roof.flops_per_second / roof.bytes_per_second if roof.bytes_per_second else low
        tag_x = min(max(ridge * 1.6, high / 2.4 ** (index + 1)), high / 1.3)
        axes.annotate(roof.tag, (tag_x, roof.flops_per_second), xytext=(0, 3), textcoords="offset points",
                      ha="center", fontsize=8, fontweight="bold")
    for number, point in enumerate(points, 1):
        axes.plot(point.intensity, point.flops_per_second, "o", markersize=5, color=colors[(number - 1) % len(colors)],
                  label=f"{number}. {point.label}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(low, high)
    axes.set_xlabel("arithmetic intensity (FLOPs / byte)")
    axes.set_ylabel("achieved FLOP/s")
    axes.set_title(title or "roofline")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    figure.tight_layout()
    figure.canvas.draw()
    _place_numbers(axes, points, 72.0 / figure.dpi)
    return save(figure, path)
