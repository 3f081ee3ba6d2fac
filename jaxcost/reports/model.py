"""Render a model report: a table with depth control and repeated blocks collapsed, totals, JSON, CSV, pandas."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jaxcost.reports.text import format_bytes, format_count, format_si, table

if TYPE_CHECKING:
    from jaxcost.compiler import CompilerCost
    from jaxcost.models.analysis import ModelReport, Row

CSV_COLUMNS = ("path", "kind", "calls", "input_shape", "output_shape", "params", "macs", "flops", "textbook_macs",
               "bytes_accessed", "intensity", "compiler_flops", "compiler_bytes", "share")


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
    for row in report.layers:
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


def render(report: ModelReport, depth: int | None = None, collapse: bool = True) -> str:
    """The per-layer table in SI units: Conv/Dense rows (grouped to `depth` path components, identical
    neighbours collapsed as ``×n``), then the other rows by kind, then totals."""
    groups = _groups(report, depth)
    if collapse:
        groups = _collapse(groups)
    total = report.compiler_flops or 1
    rows = []
    for group in groups:
        first = group.rows[0]
        single = len(group.rows) == 1
        rows.append([
            group.label + (f"  (x{group.repeats})" if group.repeats > 1 else ""),
            first.kind if single else f"{len(group.rows)} layers",
            "x".join(map(str, first.input_shape)) if single else "",
            "x".join(map(str, first.output_shape)) if single else "",
            *(_count(group.total(name)) for name in ("params", "macs", "textbook_macs", "flops", "compiler_flops")),
            format_bytes(group.total("compiler_bytes")), f"{group.total('compiler_flops') / total:.1%}"])
    for row in report.rows:
        if not row.is_layer and (row.compiler_flops or row.compiler_bytes or row.params):
            rows.append([f"({row.kind})", "other", "", "", _count(row.params) if row.params else "", "", "", "",
                         _count(row.compiler_flops),
                         format_bytes(row.compiler_bytes), f"{row.share:.1%}"])
    rows.append(["total", "", "", "", *(_count(getattr(report, name)) for name in (
        "params", "macs", "textbook_macs", "flops", "compiler_flops")), format_bytes(report.compiler_bytes), "100.0%"])
    headers = ["layer", "type", "input", "output", "params", "MACs", "textbook MACs", "FLOPs", "compiler FLOPs",
               "compiler bytes", "share"]
    return table(headers, rows, align="llll" + "r" * 7)


def _reproduction(compiler: CompilerCost) -> str:
    """How the recount meets XLA's figures: equal, or equal once summed in float32 as XLA sums."""
    if (compiler.xla_flops, compiler.xla_bytes_accessed) == (compiler.flops, compiler.bytes_accessed):
        return "; reproduced exactly"
    return "; reproduced exactly when summed in float32 as XLA sums: the integers here are exact"


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
    for name, count in report.collections.items():
        lines.append(f"  {name}: {count:,} values beside the params (state, not trained)")
    if compiler.unknown:
        lines.append("  unknown: " + "; ".join(compiler.unknown))
    return "\n".join(lines)


def to_records(report: ModelReport) -> list[dict[str, Any]]:
    """One dict per row (layers, then the other rows), JSON-ready."""
    return [{**row.as_dict(), "input_shape": list(row.input_shape or ()), "output_shape": list(row.output_shape or ())}
            for row in report.rows]


def to_json(report: ModelReport) -> str:
    compiler = report.compiler
    return json.dumps({
        "name": report.name, "mode": report.mode, "params": report.params, "macs": report.macs,
        "textbook_macs": report.textbook_macs, "flops": report.flops, "compiler_flops": compiler.flops,
        "compiler_bytes": compiler.bytes_accessed, "collections": report.collections, "xla": compiler.xla,
        "unknown": compiler.unknown,
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
