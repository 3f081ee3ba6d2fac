"""Render measurements: time, achieved rates, utilization against datasheet and measured roofs; the plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jaxcost.reports.plots import Roof, RooflinePoint, plot_roofline
from jaxcost.reports.text import format_bytes, format_rate, format_seconds, table

if TYPE_CHECKING:
    from jaxcost.measure.timing import Measurement


def _percent(fraction: float | None) -> str:
    """A share; one above 100 % is starred, and ``notes`` says why."""
    if fraction is None:
        return "?"
    return f"{fraction:.1%}" + ("*" if fraction > 1 else "")


def measurements_table(measurements: Sequence[Measurement]) -> str:
    """One row per program: median time, spread, FLOP/s, bytes/s, utilizations, speed of light, bound."""
    rows = []
    for index, m in enumerate(measurements, 1):
        datasheet, measured = m.utilization, m.measured_utilization
        rows.append([f"{index}. {m.label}", format_seconds(m.seconds_median), f"{m.spread:.1%}",
                     format_rate(m.flops_per_second), format_bytes(m.bytes_per_second) + "/s",
                     f"{datasheet.intensity:.1f}", _percent(datasheet.compute_utilization),
                     _percent(measured.compute_utilization), _percent(datasheet.memory_utilization),
                     _percent(measured.memory_utilization), _percent(m.speed_of_light), m.bound or "?",
                     "cache" if m.cache_warning else ""])
    headers = ["program", "median", "spread", "achieved", "bandwidth", "FLOPs/B", "of peak", "of measured",
               "BW of peak", "BW of measured", "of roofline", "bound", "note"]
    return table(headers, rows, align="l" + "r" * 11 + "l")


def notes(measurements: Sequence[Measurement]) -> list[str]:
    """In words: which programs are overhead-bound and why, and the reason behind every share above 100 %."""
    lines = []
    for index, m in enumerate(measurements, 1):
        label = f"{index}. {m.label}"
        if m.bound == "overhead":
            source = (f"the device idle between kernels ({format_seconds(m.seconds_device)} of kernels per call)"
                      if m.seconds_device is not None else
                      f"a call that does next to nothing takes {format_seconds(m.seconds_floor)} here")
            lines.append(f"{label}: overhead-bound: {m.overhead_share:.0%} of each call is fixed cost ({source}); "
                         "its size does not set its speed: give it more work per call (a larger batch)")
        shares = (m.compute_utilization, m.measured_utilization.compute_utilization, m.memory_utilization,
                  m.measured_utilization.memory_utilization, m.speed_of_light)
        if any(share is not None and share > 1 for share in shares):
            why = m.cache_warning or ("the roof is a measured ceiling or an estimate that this program beats: "
                                      "it is no hard limit")
            lines.append(f"{label}: * above 100 %: {why}")
        elif m.cache_warning:
            lines.append(f"{label}: {m.cache_warning}")
        if m.clocks is not None:
            adjusted = m.clock_adjusted_utilization
            share = f"; {_percent(adjusted.compute_utilization)} of the clock-adjusted {m.precision} peak " \
                    f"({format_rate(adjusted.peak_flops_per_second)})" if adjusted.peak_flops_per_second else ""
            lines.append(f"{label}: {m.clocks}{share}")
        if m.trace is not None:
            lines.append(f"{label}: sustained {m.seconds_sustained:.2f} s of back-to-back calls; a traced burst of "
                         f"{m.trace.calls} calls: kernels {format_seconds(m.seconds_device)} and span "
                         f"{format_seconds(m.seconds_device_span)} per call")
    return lines


def measurement_text(measurement: Measurement) -> str:
    """What ``print(measurement)`` shows: its row, the peak it is held against, and how it was timed."""
    clocks = [] if measurement.clocks else [f"clocks: {measurement.clocks_reason}"]
    return "\n".join([measurements_table([measurement]), *notes([measurement]), *clocks,
                      f"held against {measurement.precision}: {measurement.precision_reason}",
                      f"timed {measurement.method}"])


def ceilings_text(matmul: Measurement, triad: Measurement) -> str:
    return (f"measured ceilings: {matmul.label}: {format_rate(matmul.flops_per_second)}"
            f" ({_percent(matmul.compute_utilization)} of peak); {triad.label}: "
            f"{format_bytes(triad.bytes_per_second)}/s" + (f" ({_percent(triad.memory_utilization)} of datasheet)"
                                                         if triad.peak_bytes_per_second else ""))


def roofs_of(measurements: Sequence[Measurement], ceilings: tuple[float, float] | None) -> list[Roof]:
    """One roof per precision that ran (datasheet, or estimate on a CPU), and the measured roof."""
    peaks = measurements[0].peaks
    bandwidth = peaks.bytes_per_second or (ceilings[1] if ceilings else None)
    source = "estimated" if peaks.estimate else "datasheet"
    roofs = []
    for precision in dict.fromkeys(m.precision for m in measurements):
        peak = peaks.peak(precision)
        if peak:
            note = " (measured bandwidth)" if not peaks.bytes_per_second and ceilings else ""
            roofs.append(Roof(f"{source} {precision}{note}", precision, peak, bandwidth))
    if ceilings:
        roofs.append(Roof("measured matmul and triad", "measured", ceilings[0], ceilings[1]))
    return roofs


def write_roofline(measurements: Sequence[Measurement], path: str | Path, ceilings: tuple[float, float] | None,
                   title: str = "") -> list[Path]:
    """The roofline plot of the measurements, PNG and SVG: a roof per precision that ran, the measured roof,
    numbered points with their key."""
    points = [RooflinePoint(m.label, m.utilization.intensity, m.flops_per_second) for m in measurements]
    return plot_roofline(points, roofs_of(measurements, ceilings), path,
                         title or f"roofline on {measurements[0].peaks.name}")
