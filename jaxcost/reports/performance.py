"""Render measurements: time, achieved rates, utilization against datasheet and measured roofs; the plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxcost.measure.hardware import DevicePeaks, precision_for
from jaxcost.measure.roofline import RooflinePoint, plot_roofline
from jaxcost.measure.timing import Measurement
from jaxcost.reports.text import format_bytes, format_rate, table

DTYPES = ("float32", "bfloat16", "float16", "int8")


def _percent(fraction: float | None) -> str:
    return f"{fraction:.1%}" if fraction is not None else "?"


def measurements_table(measurements: Sequence[Measurement]) -> str:
    """One row per program: median time, spread, FLOP/s, bytes/s, utilizations, bound."""
    rows = []
    for index, m in enumerate(measurements, 1):
        datasheet, measured = m.utilization, m.measured_utilization
        rows.append([f"{index}. {m.label}", f"{m.seconds_median * 1e3:.3f}", f"{m.spread:.1%}",
                     format_rate(m.flops_per_second), format_bytes(m.bytes_per_second) + "/s",
                     f"{datasheet.intensity:.1f}", _percent(datasheet.compute_utilization),
                     _percent(measured.compute_utilization), _percent(datasheet.memory_utilization),
                     _percent(measured.memory_utilization), m.bound or "?",
                     "cache" if m.cache_warning else ""])
    headers = ["program", "ms median", "spread", "achieved", "bandwidth", "FLOPs/B", "of peak", "of measured",
               "BW of peak", "BW of measured", "bound", "note"]
    return table(headers, rows, align="l" + "r" * 10 + "l")


def peaks_text(peaks: DevicePeaks) -> str:
    """The roofs that apply, their source, and which peak each dtype is held against."""
    lines = [f"peaks: {peaks.name} ({'estimate' if peaks.estimate else 'datasheet'}): {peaks.source}"]
    for key, value in sorted(peaks.flops_per_second.items()):
        lines.append(f"  {key:<5} {format_rate(value)}")
    bandwidth = format_bytes(peaks.bytes_per_second) + "/s" if peaks.bytes_per_second else "unknown (use measured)"
    lines.append(f"  memory bandwidth {bandwidth}")
    if peaks.last_level_cache_bytes:
        lines.append(f"  last-level cache {peaks.last_level_cache_bytes / 2**20:.0f} MiB")
    if peaks.flops_per_second:
        for dtype in DTYPES:
            key, why = precision_for(peaks, dtype)
            lines.append(f"  {dtype} is held against {key}: {why}")
    return "\n".join(lines)


def ceilings_text(matmul: Measurement, triad: Measurement) -> str:
    return (f"measured ceilings: {matmul.label}: {format_rate(matmul.flops_per_second)}"
            f" ({_percent(matmul.compute_utilization)} of peak); {triad.label}: "
            f"{format_bytes(triad.bytes_per_second)}/s" + (f" ({_percent(triad.memory_utilization)} of datasheet)"
                                                         if triad.peak_bytes_per_second else ""))


def write_roofline(measurements: Sequence[Measurement], path: str | Path, ceilings: tuple[float, float] | None,
                   title: str = "") -> list[Path]:
    """The roofline plot of the measurements: datasheet roof (where known) and measured roof, PNG and SVG."""
    peaks = measurements[0].peaks
    precision = measurements[0].precision
    roofs: list[tuple[str, float, Any]] = []
    if peaks.peak(precision):
        label = f"{'estimated' if peaks.estimate else 'datasheet'} {precision}"
        if not peaks.bytes_per_second and ceilings:
            label += " (measured bandwidth)"
        roofs.append((label, peaks.peak(precision), peaks.bytes_per_second or (ceilings[1] if ceilings else None)))
    if ceilings:
        roofs.append(("measured", ceilings[0], ceilings[1]))
    points = [RooflinePoint(m.label, m.utilization.intensity, m.flops_per_second) for m in measurements]
    return plot_roofline(points, roofs, path, title or f"roofline on {peaks.name}")
