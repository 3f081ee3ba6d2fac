"""Render measurements: time, achieved rates, utilization against datasheet and measured roofs; the plot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jaxcost.reports.plots import Roof, RooflinePoint, plot_roofline
from jaxcost.reports.text import WIDTH, fitted_table, format_bytes, format_known, format_rate, format_seconds, wrap

if TYPE_CHECKING:
    from jaxcost.measure.timing import Measurement


def _percent(fraction: float | None) -> str:
    """A share; one above 100 % is starred, and ``notes`` says why."""
    if fraction is None:
        return "?"
    return f"{fraction:.1%}" + ("*" if fraction > 1 else "")


#: How long each of ``measurements_table``'s columns stays on a narrow terminal (``reports.text.narrowed``).
MEASUREMENTS_KEEP = (9, 9, 3, 8, 7, 4, 6, 5, 5, 4, 7, 8, 2)


def measurements_table(measurements: Sequence[Measurement], width: int | None = None) -> str:
    """One row per program: median time, spread, FLOP/s, bytes/s, utilizations, speed of light, bound; narrowed to
    ``width`` (a terminal's) where one is given."""
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
    return fitted_table(headers, rows, "l" + "r" * 11 + "l", MEASUREMENTS_KEEP, width)


def _peak_reason(m: Measurement) -> str:
    """Why a compute share of the datasheet (or estimated) peak is above 100 %."""
    kind, why = (("estimated", "the estimate is low (a clock or FLOPs per cycle under-read)") if m.peaks.estimate
                 else ("datasheet", f"it is not the peak this ran at ({m.precision_reason})"))
    peak = format_known(m.peak_flops_per_second, format_rate)
    return (f"the {kind} {m.precision} peak ({peak}) is below what this reached "
            f"({format_rate(m.flops_per_second)}): {why}")


def _ceiling_reason(m: Measurement) -> str:
    """Why a compute share of the measured matmul ceiling is above 100 %."""
    ceiling = format_known(m.measured_flops_per_second, format_rate)
    return (f"the measured matmul ceiling ({ceiling}) is below what this reached "
            f"({format_rate(m.flops_per_second)}): the ceiling under-measures this device's compute, it is no hard "
            "limit")


def _cache_reason(m: Measurement) -> str:
    """Why a bandwidth share is above 100 %: the bytes came from cache, said against the last-level cache's size."""
    copies = f" in {m.rotate} input copies" if m.rotate > 1 else ""
    working_set = f"the working set ({format_bytes(m.working_set_bytes * m.rotate)}{copies})"
    cache = m.peaks.last_level_cache_bytes
    if cache is None or m.fits_in_cache is None:
        return (f"the bytes were served from cache, not memory: {working_set} against a last-level cache of "
                "unknown size; benchmark with rotate=N input copies")
    cache_size = f"the last-level cache ({format_bytes(cache)})"
    if m.fits_in_cache:
        return (f"{working_set} fits in {cache_size}: the bytes were served from cache, not memory; benchmark with "
                "rotate=N input copies")
    return (f"{working_set} exceeds {cache_size}, yet bytes moved faster than the roof: what one instruction writes "
            "and the next reads was served from cache")


def _starred(m: Measurement) -> dict[str, list[str]]:
    """Each reason behind a share above 100 %, with the cells it explains; the roofline's share takes the
    reason of the roof it exceeds."""
    datasheet, measured, roofline = m.utilization, m.measured_utilization, m.roofline
    roofline_compute_reason = _ceiling_reason if m.compute_roof.source == "measured" else _peak_reason
    shares: list[tuple[str, float | None, float | None, Callable[[Measurement], str]]] = [
        ("of peak", datasheet.compute_utilization, datasheet.compute_utilization, _peak_reason),
        ("of measured", measured.compute_utilization, measured.compute_utilization, _ceiling_reason),
        ("BW of peak", datasheet.memory_utilization, datasheet.memory_utilization, _cache_reason),
        ("BW of measured", measured.memory_utilization, measured.memory_utilization, _cache_reason)]
    if m.speed_of_light is not None:  # the cell is the larger of the roofline's two shares
        shares += [("of roofline", roofline.compute_utilization, m.speed_of_light, roofline_compute_reason),
                   ("of roofline", roofline.memory_utilization, m.speed_of_light, _cache_reason)]
    starred: dict[str, list[str]] = {}
    for column, share, cell, reason in shares:
        if share is not None and share > 1:
            starred.setdefault(reason(m), []).append(f"{column} {_percent(cell)}")
    return starred


def _roofs_text(m: Measurement) -> str:
    """Where the roofline's two roofs come from, or why there is no roofline time."""
    compute, memory = m.compute_roof, m.memory_roof
    compute_rate = format_known(compute.per_second, format_rate)
    memory_rate = format_known(memory.per_second, format_bytes)
    if compute.source == "measured":
        compute_text = f"the measured matmul ceiling {compute_rate} (no {m.precision} peak)"
    elif compute.source:
        kind = "estimated" if compute.source == "estimate" else "datasheet"
        compute_text = f"the {kind} {m.precision} peak {compute_rate}"
    else:
        compute_text = f"none (no {m.precision} peak, no measured matmul ceiling)"
    if memory.source == "measured":
        memory_text = f"the measured bandwidth ceiling {memory_rate}/s (the datasheet has none)"
    elif memory.source:
        memory_text = f"the datasheet bandwidth {memory_rate}/s"
    else:
        memory_text = "none (no datasheet bandwidth, no measured ceiling)"
    missing = "" if m.roofline_seconds is not None else " is ?, a roofline time needs both roofs"
    return f"{missing}: compute roof {compute_text}; memory roof {memory_text}"


def notes(measurements: Sequence[Measurement]) -> list[str]:
    """In words: where each roofline's roofs come from, which programs are overhead-bound and why, and the
    reason behind every share above 100 %."""
    rows_by_roofs: dict[str, list[str]] = {}
    for index, m in enumerate(measurements, 1):
        rows_by_roofs.setdefault(_roofs_text(m), []).append(str(index))
    lines = [f"of roofline{'' if len(rows_by_roofs) == 1 else ' (rows ' + ', '.join(rows) + ')'}{roofs}"
             for roofs, rows in rows_by_roofs.items()]
    for index, m in enumerate(measurements, 1):
        label = f"{index}. {m.label}"
        if m.bound == "overhead":
            source = (f"the device idle between kernels ({format_seconds(m.seconds_device)} of kernels per call)"
                      if m.seconds_device is not None else
                      f"a call that does next to nothing takes {format_known(m.seconds_floor, format_seconds)} here")
            lines.append(f"{label}: overhead-bound: {m.overhead_share:.0%} of each call is fixed cost ({source}); "
                         "its size does not set its speed: give it more work per call (a larger batch)")
        starred = _starred(m)
        for reason, cells in starred.items():
            lines.append(f"{label}: {', '.join(cells)} above 100 %: {reason}")
        if m.cache_warning and _cache_reason(m) not in starred:
            lines.append(f"{label}: {m.cache_warning}")
        adjusted = m.clock_adjusted_utilization  # None where the clocks were not sampled
        if m.clocks is not None and adjusted is not None:
            share = f"; {_percent(adjusted.compute_utilization)} of the clock-adjusted {m.precision} peak " \
                    f"({format_rate(adjusted.peak_flops_per_second)})" if adjusted.peak_flops_per_second else ""
            lines.append(f"{label}: {m.clocks}{share}")
        if m.trace is not None:
            lines.append(f"{label}: sustained {m.seconds_sustained:.2f} s of back-to-back calls; a traced burst of "
                         f"{m.trace.calls} calls: kernels {format_known(m.seconds_device, format_seconds)} and span "
                         f"{format_known(m.seconds_device_span, format_seconds)} per call")
    return lines


def notes_text(measurements: Sequence[Measurement], width: int = WIDTH) -> str:
    """The ``notes``, each on lines of its own after ``note:``, wrapped to ``width`` characters."""
    return "\n".join(wrap(f"note: {line}", width, " " * len("note: ")) for line in notes(measurements))


def measurement_text(measurement: Measurement, width: int = WIDTH) -> str:
    """What ``print(measurement)`` shows: its row, the peak it is held against, and how it was timed; the lines
    under the row wrapped to ``width`` characters."""
    clocks = [] if measurement.clocks else [f"clocks: {measurement.clocks_reason}"]
    lines = [*notes([measurement]), *clocks, f"held against {measurement.precision}: {measurement.precision_reason}",
             f"timed {measurement.method}"]
    return "\n".join([measurements_table([measurement]), *(wrap(line, width, "  ") for line in lines)])


def ceilings_text(matmul: Measurement, triad: Measurement, width: int = WIDTH) -> str:
    """The measured matmul and bandwidth ceilings, against the datasheet where it has them; wrapped to ``width``."""
    return wrap(f"measured ceilings: {matmul.label}: {format_rate(matmul.flops_per_second)}"
                f" ({_percent(matmul.compute_utilization)} of peak); {triad.label}: "
                f"{format_bytes(triad.bytes_per_second)}/s" + (f" ({_percent(triad.memory_utilization)} of datasheet)"
                                                             if triad.peak_bytes_per_second else ""), width, "  ")


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
