"""Render a model profile: the model's table with its time columns, then where the step's time went."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from jaxcost.reports.model import render, summary, to_json
from jaxcost.reports.text import format_bytes, format_count, format_rate, format_seconds, table

if TYPE_CHECKING:
    from jaxcost.measure.profile import ModelProfile, OverRoof
    from jaxcost.models.rows import Row


def profile_lines(profile: ModelProfile) -> list[str]:
    """The step's time in words: the loop's step, the traced busy and idle time, MFU and HFU against the peak."""
    compute, memory = profile.roofs
    lines = [
        f"  time per step: {format_seconds(profile.seconds_step)} (the benchmark loop's median) = "
        f"{format_seconds(profile.seconds_busy)} busy + {format_seconds(profile.seconds_idle)} idle, as "
        f"{profile.calls_traced} traced calls share it out (traced, a step took "
        f"{format_seconds(profile.seconds_traced)}: {profile.trace_ratio:.2f}x the loop's, the profiler's own cost)",
        f"  roofs: compute {_roof(compute, format_rate)}; memory {_roof(memory, _bandwidth)}",
    ]
    peak = profile.peak_flops_per_second
    if peak is not None and profile.mfu is not None:
        lines.append(f"  MFU {profile.mfu:.1%} (the model's {profile.model_flops:,} analytic FLOPs a step), HFU "
                     f"{profile.hfu:.1%} (the program's {profile.report.compiler_flops:,}), against "
                     f"{format_rate(peak)} {profile.precision} ({compute.source})")
    if profile.unattributed:
        lines.append(f"  not in the program: {', '.join(profile.unattributed[:5])} "
                     f"({format_seconds(profile.seconds_unattributed)} a step, a row of its own)")
    return lines + over_roofline_lines(profile)


#: Rows named at most in a line of the notes on rows above 100 % of their roofline.
OVER_ROOFLINE_ROWS = 4


def over_roofline_lines(profile: ModelProfile) -> list[str]:
    """Why rows measured faster than their roofline allows (their ``of roofline`` starred), rows with the same
    reason together: bytes XLA counts that their instructions' kernels do not read from memory, or reads the cache
    served; a compute rate above the peak, the peak's precision."""
    compute, memory = profile.roofs
    rows = {row.path: row for row in profile.rows}
    by_reason: dict[str, list[tuple[Row, OverRoof]]] = {}
    above_peak = []
    for path, instructions in profile.rows_over_roofline().items():
        if instructions:
            by_reason.setdefault(instructions[0].reason, []).append((rows[path], instructions[0]))
        if compute.per_second and (rows[path].flops_per_second or 0.0) > compute.per_second:
            above_peak.append(rows[path])
    lines = []
    for reason, found in by_reason.items():
        fastest = max((instruction for _, instruction in found), key=lambda instruction: instruction.bytes_per_second)
        lines.append(f"  {_named(row for row, _ in found)}: up to "
                     f"{_bandwidth(max(row.bytes_per_second or 0.0 for row, _ in found))} against the "
                     f"{_bandwidth(memory.per_second or 0.0)} memory roof; {fastest.name} "
                     f"({format_bytes(fastest.bytes_accessed)} counted in {format_seconds(fastest.seconds)}): {reason}")
    if above_peak:
        lines.append(f"  {_named(above_peak)}: FLOP/s above the {profile.precision} peak "
                     f"({format_rate(compute.per_second or 0.0)}): it is not the precision they ran at")
    return ["  of roofline above 100 % (starred), and why:", *lines] if lines else []


def _named(rows: Iterable[Row]) -> str:
    """Rows as the table names them, the first ``OVER_ROOFLINE_ROWS`` of them, and how many more."""
    listed = [row.path if row.is_module else f"({row.kind})" for row in rows]
    more = len(listed) - OVER_ROOFLINE_ROWS
    return ", ".join(listed[:OVER_ROOFLINE_ROWS]) + (f" and {more} more" if more > 0 else "")


def _bandwidth(bytes_per_second: float) -> str:
    return format_bytes(bytes_per_second) + "/s"


def _roof(roof: Any, show: Callable[[float], str]) -> str:
    per_second, source = roof
    return f"{show(per_second)} ({source})" if per_second else "none (no datasheet figure, none measured)"


def profile_text(profile: ModelProfile, depth: int | None = None, sort: str | None = None) -> str:
    """The model's table with its time columns, its summary, and the step's time."""
    return "\n".join([render(profile.report, depth=depth, sort=sort), "", summary(profile.report),
                      *profile_lines(profile)])


def instruction_table(profile: ModelProfile, limit: int = 40) -> str:
    """The op profile: the compiled program's top-level instructions by time per call, slowest first, with their
    row, true flops and bytes, and rates (the first ``limit``; the rest summed in one line)."""
    report = profile.report
    ops = {op.name: op for op in report.compiler.recount.ops}
    busy = profile.seconds_busy or 1.0
    names = sorted(profile.instruction_seconds, key=lambda name: -profile.instruction_seconds[name])
    rows = []
    for name in names[:limit]:
        seconds, op = profile.instruction_seconds[name], ops.get(name)
        flops, moved = (op.cost.flops, op.cost.bytes_accessed) if op else (0, 0)
        row = report.placement.op_rows.get(name, "") if report.placement else ""
        rows.append([name, op.opcode if op else "", row, format_seconds(seconds), f"{seconds / busy:.1%}",
                     format_count(flops), format_bytes(moved), format_rate(flops / seconds) if flops else ""])
    rest = names[limit:]
    if rest:
        seconds = sum(profile.instruction_seconds[name] for name in rest)
        rows.append([f"({len(rest)} more)", "", "", format_seconds(seconds), f"{seconds / busy:.1%}", "", "", ""])
    return table(["instruction", "opcode", "row", "time", "of busy", "FLOPs", "bytes", "FLOP/s"], rows,
                 align="lllrrrrr")


def profile_json(profile: ModelProfile) -> str:
    """The model report's JSON (every row with its measured fields) and the step's time under ``profile``."""
    compute, memory = profile.roofs
    data = json.loads(to_json(profile.report))
    data["profile"] = {
        "seconds_step": profile.seconds_step, "seconds_busy": profile.seconds_busy,
        "seconds_idle": profile.seconds_idle, "seconds_traced": profile.seconds_traced,
        "trace_ratio": profile.trace_ratio, "calls_traced": profile.calls_traced, "precision": profile.precision,
        "compute_roof_flops_per_second": compute.per_second, "compute_roof_source": compute.source,
        "memory_roof_bytes_per_second": memory.per_second, "memory_roof_source": memory.source,
        "model_flops": profile.model_flops, "mfu": profile.mfu, "hfu": profile.hfu,
        "seconds_unattributed": profile.seconds_unattributed,
        "instruction_seconds": dict(profile.instruction_seconds),
        "over_memory_roof": [{"instruction": over.name, "bytes_accessed": over.bytes_accessed,
                              "seconds": over.seconds, "bytes_unread": over.bytes_unread, "reason": over.reason}
                             for over in profile.over_roof()]}
    return json.dumps(data, indent=2)
