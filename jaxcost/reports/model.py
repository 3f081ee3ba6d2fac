"""Render a model report: a table with depth control and repeated blocks collapsed, totals, JSON, CSV, pandas."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jaxcost.reports.program import grouped, padding_line
from jaxcost.reports.text import format_bytes, format_count, format_si, table

if TYPE_CHECKING:
    from jaxcost.compiler import CompilerCost
    from jaxcost.models.analysis import ModelReport, Row

#: A row's fields in exports (JSON, CSV, DataFrame), in order.
CSV_COLUMNS = ("path", "kind", "module_type", "depth", "calls", "input_shape", "input_dtype", "output_shape",
               "output_dtype", "params", "params_bytes", "macs", "flops", "textbook_macs", "bytes_accessed",
               "intensity", "compiler_flops", "compiler_bytes", "recompute_flops", "share")


@dataclass
class _Group:
    """Rows under one path prefix, summed; ``repeats`` > 1 when identical neighbouring groups were collapsed."""

    label: str
    rows: list[Row]
    repeats: int = 1

    def total(self, name: str) -> int:
        return sum(getattr(row, name) for row in self.rows) * self.repeats

    @property
    def signature(self) -> tuple:
        return tuple((row.kind, row.input_shape, row.output_shape, row.flops, row.compiler_flops) for row in self.rows)


def _groups(report: ModelReport, depth: int | None) -> list[_Group]:
    groups: list[_Group] = []
    for row in report.modules:
        parts = row.path.split("/")
        label = "/".join(parts[:depth]) if depth else row.path
        if groups and groups[-1].label == label:
            groups[-1].rows.append(row)
        else:
            groups.append(_Group(label, [row]))
    return groups


def _collapse(groups: list[_Group]) -> list[_Group]:
    collapsed: list[_Group] = []
    for group in groups:
        last = collapsed[-1] if collapsed else None
        if last is not None and last.signature == group.signature:
            last.repeats += 1
            last.label = f"{last.label.split(' .. ')[0]} .. {group.label}"
        else:
            collapsed.append(_Group(group.label, list(group.rows)))
    return collapsed


def _count(value: int) -> str:
    """A count in SI units (``3.50 M``); the exact integers are in the summary, JSON and CSV."""
    return format_si(value, "")


def _shape(shape: tuple[int, ...] | None, dtype: str) -> str:
    """``1x56x56x64``, with the dtype when it is not float32."""
    if shape is None:
        return ""
    return "x".join(map(str, shape)) + (f" {dtype}" if dtype and dtype != "float32" else "")


#: What ``--sort`` orders the rows by (largest first), and the group total it reads.
SORT_KEYS = {"flops": "flops", "compiler_flops": "compiler_flops", "compiler_bytes": "compiler_bytes",
             "params": "params", "macs": "macs"}
HEADERS = ["module", "type", "input", "output", "params", "MACs", "textbook MACs", "FLOPs", "compiler FLOPs",
           "compiler bytes", "share"]
ALIGN = "llll" + "r" * 7


def table_rows(report: ModelReport, depth: int | None = None, collapse: bool = True,
               sort: str | None = None) -> list[list[str]]:
    """The cells of the per-module table: a row per module in call order (grouped to `depth` path
    components, identical neighbours collapsed as ``×n``; or largest first by ``sort``), then the work
    outside modules by kind, then totals."""
    if sort is not None and sort not in SORT_KEYS:
        raise ValueError(f"sort: must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    groups = _groups(report, depth)
    if collapse:
        groups = _collapse(groups)
    if sort:
        groups.sort(key=lambda group: -group.total(SORT_KEYS[sort]))
    total = report.compiler_flops or 1
    rows = []
    for group in groups:
        first = group.rows[0]
        single = len(group.rows) == 1
        rows.append([
            group.label + (f"  (x{group.repeats})" if group.repeats > 1 else ""),
            first.kind if single else f"{len(group.rows)} modules",
            _shape(first.input_shape, first.input_dtype) if single else "",
            _shape(first.output_shape, first.output_dtype) if single else "",
            *(_count(group.total(name)) for name in ("params", "macs", "textbook_macs", "flops", "compiler_flops")),
            format_bytes(group.total("compiler_bytes")), f"{group.total('compiler_flops') / total:.1%}"])
    for row in report.rows:
        if not row.is_module and (row.compiler_flops or row.compiler_bytes or row.params):
            rows.append([f"({row.kind})", "other", "", "", _count(row.params) if row.params else "", "", "", "",
                         _count(row.compiler_flops),
                         format_bytes(row.compiler_bytes), f"{row.share:.1%}"])
    rows.append(["total", "", "", "", *(_count(getattr(report, name)) for name in (
        "params", "macs", "textbook_macs", "flops", "compiler_flops")), format_bytes(report.compiler_bytes), "100.0%"])
    return rows


def render(report: ModelReport, depth: int | None = None, collapse: bool = True, sort: str | None = None) -> str:
    """The per-module table as plain text (see ``table_rows``)."""
    return table(HEADERS, table_rows(report, depth, collapse, sort), align=ALIGN)


def rich_table(report: ModelReport, depth: int | None = None, collapse: bool = True,
               sort: str | None = None) -> Any:
    """The per-module table as a ``rich`` Table, for a terminal (flax brings rich)."""
    return rich_grid(table_rows(report, depth, collapse, sort))


def rich_grid(rows: list[list[str]]) -> Any:
    """``table_rows`` cells as a ``rich`` Table, the totals in bold below a rule."""
    from rich.table import Table

    grid = Table(box=None, header_style="bold", pad_edge=False)
    for header, side in zip(HEADERS, ALIGN):
        grid.add_column(header, justify="left" if side == "l" else "right", no_wrap=True)
    for index, cells in enumerate(rows):
        grid.add_row(*cells, style="bold" if index == len(rows) - 1 else None,
                     end_section=index == len(rows) - 2)
    return grid


def by_operator(report: ModelReport) -> str:
    """The compiled program by operator: FLOPs per HLO opcode (fused instructions included), and the bytes
    of each top-level instruction under the opcode that does most of its flops (a fusion of a convolution
    and its bias under ``convolution``; one without flops, or a copy, under its own opcode)."""
    flops: dict[str, int] = {}
    moved: dict[str, int] = {}
    count: dict[str, int] = {}
    for op in report.compiler.recount.ops:
        for opcode, amount in op.cost.flops_by_opcode.items():
            flops[opcode] = flops.get(opcode, 0) + amount
        by_opcode = op.cost.flops_by_opcode
        opcode = max(by_opcode, key=lambda name: by_opcode[name]) if by_opcode else op.instruction.opcode
        moved[opcode] = moved.get(opcode, 0) + op.cost.bytes_accessed
        count[opcode] = count.get(opcode, 0) + 1
    total = report.compiler_flops or 1
    names = sorted(set(flops) | set(moved), key=lambda name: (-flops.get(name, 0), -moved.get(name, 0), name))
    rows = [[name, str(count.get(name, "")), _count(flops.get(name, 0)), f"{flops.get(name, 0) / total:.1%}",
             format_bytes(moved.get(name, 0))] for name in names if flops.get(name) or moved.get(name)]
    rows.append(["total", str(sum(count.values())), _count(report.compiler_flops), "100.0%",
                 format_bytes(report.compiler_bytes)])
    return table(["operator", "instructions led", "compiler FLOPs", "share", "bytes of those"], rows,
                 align="lrrrr")


def _reproduction(compiler: CompilerCost) -> str:
    """How the recount meets XLA's figures: equal; or equal by XLA's rules, summed in float32 as XLA sums,
    and why the exact figures differ (float32 sums, loop bodies XLA counts once)."""
    if (compiler.xla_flops, compiler.xla_bytes_accessed) == (compiler.flops, compiler.bytes_accessed):
        return "; reproduced exactly"
    loops = sum("loop body counted" in note for note in compiler.recount.notes)
    why = (f"; XLA counts each loop body once, the figures here count it times its trips ({loops} loop"
           f"{'s' if loops != 1 else ''}, jc.compare itemizes them)" if loops else ": the integers here are exact")
    return "; reproduced exactly by XLA's rules, summed in float32 as XLA sums" + why


def summary(report: ModelReport) -> str:
    """Totals in words, with how the exact count differs from the textbook one and why."""
    compiler = report.compiler
    padding_macs = report.textbook_macs - report.macs
    reproduced = compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")
    lines = [
        f"{report.name} ({report.mode}): {report.params:,} params; {format_count(report.macs).replace('FLOPs', 'MACs')}"
        f" exact, {format_count(report.textbook_macs).replace('FLOPs', 'MACs')} textbook",
        f"  textbook - exact = {padding_macs:,} multiply-adds on padding that the textbook formula counts and no "
        "compiler performs",
        f"  compiler: {compiler.flops:,} FLOPs and {compiler.bytes_accessed:,} bytes in the compiled program "
        f"(XLA reports {compiler.xla_flops:,.0f} FLOPs, {compiler.xla_bytes_accessed:,.0f} bytes"
        f"{_reproduction(compiler) if reproduced else ''})",
        f"  rows add up to {sum(row.compiler_flops for row in report.rows):,} FLOPs and "
        f"{sum(row.compiler_bytes for row in report.rows):,} bytes",
    ]
    if compiler.devices > 1:
        lines.append(f"  sharded over {compiler.devices} devices: the compiler's figures and the rows' are per device "
                     f"(the program's total is {compiler.devices} times as much); analytic figures are the whole "
                     "model's")
    if compiler.recount.padding:
        lines.append("  " + padding_line(compiler.recount.padding))
    recomputed = [row for row in report.rows if row.recompute_flops]
    if recomputed:
        flops = sum(row.recompute_flops for row in recomputed)
        lines.append(f"  recomputed by remat: {flops:,} of the compiler FLOPs, the forward pass again inside the "
                     f"backward ({', '.join(row.path for row in recomputed[:4])}"
                     f"{', ...' if len(recomputed) > 4 else ''}); analytic FLOPs count no recomputation")
    lines.extend(f"  ambiguous: {row.path}: {note}" for row in report.rows for note in row.notes)
    for name, count in report.collections.items():
        lines.append(f"  {name}: {count:,} values beside the params (state, not trained)")
    if compiler.unknown:
        lines.append("  unknown: " + "; ".join(grouped(compiler.unknown)))
    return "\n".join(lines)


def to_records(report: ModelReport) -> list[dict[str, Any]]:
    """One dict per row (layers, then the other rows), JSON-ready."""
    return [{**row.as_dict(), "input_shape": list(row.input_shape or ()), "output_shape": list(row.output_shape or ()),
             "notes": row.notes} for row in report.rows]


def to_json(report: ModelReport) -> str:
    compiler = report.compiler
    return json.dumps({
        "name": report.name, "mode": report.mode, "params": report.params, "macs": report.macs,
        "textbook_macs": report.textbook_macs, "flops": report.flops, "compiler_flops": compiler.flops,
        "compiler_bytes": compiler.bytes_accessed, "collections": report.collections, "xla": compiler.xla,
        "unknown": compiler.unknown, "devices": compiler.devices, "device_kind": compiler.device_kind,
        "collectives": [record.as_dict() for record in compiler.collectives],
        "seconds": report.seconds, "rows": to_records(report)}, indent=2)


def to_csv(report: ModelReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in to_records(report):
        writer.writerow({name: record[name] for name in CSV_COLUMNS})
    return buffer.getvalue()


def to_dataframe(report: ModelReport) -> Any:
    """A pandas DataFrame of the rows (pandas must be installed)."""
    try:
        import pandas
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from None
    return pandas.DataFrame(to_records(report), columns=CSV_COLUMNS)
