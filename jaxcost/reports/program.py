"""Render a compiled program: XLA's figures beside the recount, and its costliest instructions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jaxcost.reports.text import WIDTH, format_bytes, format_count, format_si, table, wrap

if TYPE_CHECKING:
    from jaxcost.compiler import CompilerCost
    from jaxcost.hlo.collectives import Collective
    from jaxcost.hlo.rules import OpRecord


def grouped(names: Sequence[str]) -> list[str]:
    """Unknown instructions said once per reason: ``slice-start.1 (slice-start: ...)`` and its like become
    ``slice-start x4 (slice-start: ...)``."""
    by_reason: dict[str, list[str]] = {}
    for name in names:
        instruction, _, reason = name.partition(" (")
        by_reason.setdefault(reason, []).append(instruction)
    return [instructions[0] + (f" x{len(instructions)}" if len(instructions) > 1 else "") + (f" ({reason}" if reason
                                                                                             else "")
            for reason, instructions in by_reason.items()]


def figure(value: float | None) -> str:
    """An exact figure with thousands separators ('?' when unknown; XLA's -1 stays visible)."""
    if value is None:
        return "?"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def ops_table(ops: Sequence[OpRecord], top: int = 10) -> str:
    """The costliest instructions, by flops and by bytes, with their shape and source (``op_name``)."""
    records = [r for r in ops if r.cost.flops or r.cost.bytes_accessed]
    by_flops = sorted(records, key=lambda r: -r.cost.flops)[:top]
    by_bytes = sorted(records, key=lambda r: -r.cost.bytes_accessed)[:top]
    chosen = list({r.name: r for r in by_flops + by_bytes}.values())
    rows = [[r.name, r.opcode, str(r.instruction.shape), f"{r.cost.flops:,}", format_count(r.cost.flops),
             f"{r.cost.bytes_accessed:,}", format_bytes(r.cost.bytes_accessed), r.instruction.op_name or "-"]
            for r in chosen]
    return table(["instruction", "opcode", "shape", "FLOPs", "", "bytes", "", "source (op_name)"], rows,
                 align="lllrrrrl")


def collectives_table(records: Sequence[Collective], width: int = WIDTH) -> str:
    """The collectives, those alike (kind, groups, payload, runs) on one line with how many there are: bytes per
    device (payload, and wire by its algorithm) and runs per step; the note under it wrapped to ``width``."""
    alike: dict[tuple, list[Collective]] = {}
    for record in records:
        alike.setdefault((record.kind, record.groups, record.payload_bytes, record.count), []).append(record)
    rows = []
    for (kind, groups, payload, count), members in alike.items():
        first = members[0]
        total = first.wire_bytes_total
        rows.append([first.name + (f" (x{len(members)})" if len(members) > 1 else ""), kind,
                     f"{len(groups)} x {len(groups[0])}", format_bytes(payload), format_bytes(first.wire_bytes),
                     "?" if count is None else f"{count:,}",
                     "?" if total is None else format_bytes(total * len(members))])
    known = [record.wire_bytes_total for record in records if record.wire_bytes_total is not None]
    per_step = format_bytes(sum(known)) if len(known) == len(records) else \
        "unknown (a loop of unknown trip count, or a branch)"
    note = f"wire bytes per device per step: {per_step} (ring algorithms: jaxcost.hlo.collectives gives the sources)"
    return "\n".join([table(["collective", "kind", "groups", "payload", "wire", "runs", "wire per step"], rows),
                      wrap(note, width, "  ")])


def padding_line(padding: Sequence[tuple[str, str, int]], largest: int = 3) -> str:
    """How many bytes tiled layouts add to the program's tensors, and the largest cases."""
    total = sum(bytes_added for _, _, bytes_added in padding)
    examples = ", ".join(f"{shape} +{format_bytes(bytes_added)}" for _, shape, bytes_added in padding[:largest])
    return (f"layout padding: the tiles add {format_bytes(total)} to the program's tensors, each read and written at "
            f"its padded size (largest: {examples})")


def compiler_table(compiler: CompilerCost, width: int = WIDTH) -> str:
    """XLA's three totals beside the recount's, and what stays unknown; the lines under the table wrapped to
    ``width`` characters."""
    rows = [
        ["FLOPs", figure(compiler.xla_flops), f"{compiler.flops:,}", format_count(compiler.flops)],
        ["transcendentals", figure(compiler.xla_transcendentals), f"{compiler.transcendentals:,}",
         format_si(compiler.transcendentals, "ops")],
        ["bytes accessed", figure(compiler.xla_bytes_accessed), f"{compiler.bytes_accessed:,}",
         format_bytes(compiler.bytes_accessed)],
    ]
    notes = []
    if compiler.devices > 1:
        notes.append(f"per device, on each of {compiler.devices} devices (the program's total: "
                     f"{compiler.flops * compiler.devices:,} FLOPs)")
    if compiler.collectives:
        notes.append(collectives_table(compiler.collectives, width))
    if compiler.recount.padding:
        notes.append(wrap(padding_line(compiler.recount.padding), width, "  "))
    notes += [wrap(f"XLA does not know: {name}", width, "  ") for name in compiler.xla_unknown]
    notes += [wrap(f"unknown to the recount: {name}", width, "  ") for name in grouped(compiler.unknown)]
    return "\n".join([table(["", "XLA reports", "jaxcost recount", "units"], rows), *notes])
