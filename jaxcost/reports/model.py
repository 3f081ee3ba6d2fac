"""Render a model report: a table with depth control and repeated blocks collapsed, totals, JSON, CSV, pandas."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jaxcost.reports.program import grouped, padding_line
from jaxcost.reports.text import (
    format_bytes,
    format_count,
    format_rate,
    format_seconds,
    format_si,
    narrowed,
    shortened,
    table,
    table_width,
)

if TYPE_CHECKING:
    from jaxcost.compiler import CompilerCost
    from jaxcost.models.analysis import ModelReport, Row

@dataclass
class _Group:
    """Rows shown as one line of the table: the rows under one path prefix (``repeats`` > 1 when identical
    neighbouring groups were collapsed), one row of work outside every module, or all rows (the total)."""

    label: str
    rows: list[Row]
    repeats: int = 1
    place: str = "modules"  # "modules", "outside" (work no module issued) or "total"

    def total(self, name: str) -> int:
        return sum(getattr(row, name) for row in self.rows) * self.repeats

    @property
    def signature(self) -> tuple:
        return tuple((row.kind, row.input_shape, row.output_shape, row.flops, row.compiler_flops) for row in self.rows)


def _count(value: int) -> str:
    """A count in SI units (``3.50 M``); the exact integers are in the summary, JSON and CSV."""
    return format_si(value, "")


def _shape(shape: tuple[int, ...] | None, dtype: str) -> str:
    """``1x56x56x64``, with the dtype when it is not float32."""
    if shape is None:
        return ""
    return "x".join(map(str, shape)) + (f" {dtype}" if dtype and dtype != "float32" else "")


#: The row of a profiled step's time that the device spent waiting.
IDLE = "device idle"
#: Shown in a formula's column where no row of the line has a formula (a module without one, or none for
#: this mode): nothing known, which is not zero work.
NO_FORMULA = "–"


@dataclass(frozen=True)
class Column:
    """One figure of a model report's rows, declared once. ``name`` is the ``Row`` attribute it reads, and its key
    in JSON, CSV and ``Row.as_dict``; a column with a ``header`` is in the table too, where a line shows the sum
    of its rows (``show`` formats it) unless ``cell`` says otherwise. ``paper``: a formula's figure, blank outside
    modules and ``NO_FORMULA`` where no row has a formula. ``sortable``: a ``--sort`` key, largest first.
    ``quiet_zero``: a zero outside modules is left blank. ``per_device``: a compiler figure, of one device when the
    program is sharded (its header says so then, beside the whole model's analytic figures). ``keep``: how long
    the column stays when the table must narrow to fit a terminal (higher stays longer). ``timed``: a measured
    figure, in the table of a profiled report only. ``memory``: device memory, in the table of a report whose
    memory was read (``jaxcost.memory``) only."""

    name: str
    header: str = ""
    align: str = "r"
    show: Callable[[Any], str] = _count
    paper: bool = False
    sortable: bool = False
    quiet_zero: bool = False
    per_device: bool = False
    timed: bool = False
    memory: bool = False
    keep: int = 0
    cell: Callable[[_Group, ModelReport], str] | None = None

    def title(self, devices: int = 1) -> str:
        """The header, for a program over ``devices`` devices."""
        return f"{self.header}/device" if self.per_device and devices > 1 else self.header

    def text(self, group: _Group, report: ModelReport) -> str:
        """This column's cell in the table line of ``group``."""
        if self.cell is not None:
            return self.cell(group, report)
        value = group.total(self.name)
        if group.place == "outside" and (self.paper or self.quiet_zero and not value):
            return ""
        if self.paper and not any(row.formula for row in group.rows):
            return NO_FORMULA
        return self.show(value)


def _label(group: _Group, report: ModelReport) -> str:
    if group.place == "outside":
        return f"({group.rows[0].kind})"
    return group.label + (f"  (x{group.repeats})" if group.repeats > 1 else "")


def _type(group: _Group, report: ModelReport) -> str:
    if group.place != "modules":
        return "other" if group.place == "outside" else ""
    return group.rows[0].kind if len(group.rows) == 1 else f"{len(group.rows)} modules"


def _shape_cell(side: str) -> Callable[[_Group, ModelReport], str]:
    """The cell of a module's input or output shape (``side``), for a line of one module."""
    def cell(group: _Group, report: ModelReport) -> str:
        row = group.rows[0]
        single = group.place == "modules" and len(group.rows) == 1
        return _shape(getattr(row, f"{side}_shape"), getattr(row, f"{side}_dtype")) if single else ""
    return cell


def _share(group: _Group, report: ModelReport) -> str:
    return f"{group.total('compiler_flops') / (report.compiler_flops or 1):.1%}"


def _measured(group: _Group, name: str) -> float | None:
    """The sum of a measured figure over a line's rows (``repeats`` times), None where none was measured."""
    values = [getattr(row, name) for row in group.rows if getattr(row, name) is not None]
    return sum(values) * group.repeats if values else None


def _seconds(group: _Group, report: ModelReport) -> str:
    seconds = _measured(group, "seconds")
    return "" if seconds is None else format_seconds(seconds)


def _time_share(group: _Group, report: ModelReport) -> str:
    share = _measured(group, "time_share")
    return "" if share is None else f"{share:.1%}"


def _memory(name: str) -> Callable[[_Group, ModelReport], str]:
    """The cell of a memory figure: the line's bytes, blank where its rows hold none."""
    def cell(group: _Group, report: ModelReport) -> str:
        held = _measured(group, name)
        return format_bytes(held) if held else ""
    return cell


def _rate(work: str, show: Callable[[float], str]) -> Callable[[_Group, ModelReport], str]:
    """The cell of a line's ``work`` (its compiler flops or bytes) over its measured seconds."""
    def cell(group: _Group, report: ModelReport) -> str:
        seconds = _measured(group, "seconds")
        return show(group.total(work) / seconds) if seconds and group.total(work) else ""
    return cell


def _speed_of_light(group: _Group, report: ModelReport) -> str:
    seconds = _measured(group, "seconds")
    if not seconds or not group.total("compiler_flops") + group.total("compiler_bytes"):
        return ""
    if any(row.seconds and row.roofline_seconds is None for row in group.rows):
        return "?"  # a row without both roofs: no roofline time
    roofline_seconds = _measured(group, "roofline_seconds")
    if roofline_seconds is None:
        return ""
    ratio = roofline_seconds / seconds
    return f"{ratio:.1%}*" if ratio > 1 else f"{ratio:.1%}"  # starred above the roof: the notes say why


def _bound(group: _Group, report: ModelReport) -> str:
    """The regime of the line's row that took the most time; ``?`` where it has none (no roofline's ridge)."""
    timed = [row for row in group.rows if row.seconds and row.is_module or row.compiler_flops]
    slowest = max(timed, key=lambda row: row.seconds or 0.0, default=None)
    return "" if slowest is None or not slowest.seconds else slowest.bound or "?"


#: A model report's columns, in order: the table shows those with a header, exports carry them all.
COLUMNS: tuple[Column, ...] = (
    Column("path", "module", "l", cell=_label, keep=9),
    Column("kind", "type", "l", cell=_type, keep=5),
    Column("module_type"), Column("depth"), Column("calls"),
    Column("input_shape", "input", "l", cell=_shape_cell("input"), keep=2), Column("input_dtype"),
    Column("output_shape", "output", "l", cell=_shape_cell("output"), keep=3), Column("output_dtype"),
    Column("params", "params", sortable=True, quiet_zero=True, keep=6), Column("params_bytes"),
    Column("macs", "MACs", paper=True, sortable=True, keep=4),
    Column("textbook_macs", "textbook MACs", paper=True, keep=1), Column("cropped_macs", paper=True),
    Column("flops", "FLOPs", paper=True, sortable=True, keep=7),
    Column("bytes_accessed", paper=True), Column("intensity"), Column("formula"), Column("formula_error"),
    Column("compiler_flops", "compiler FLOPs", sortable=True, quiet_zero=True, per_device=True, keep=8),
    Column("compiler_bytes", "compiler bytes", show=format_bytes, sortable=True, quiet_zero=True, per_device=True,
           keep=5),
    Column("recompute_flops"),
    Column("share", "share", cell=_share, keep=7),
    Column("memory_bytes", "live at peak", sortable=True, per_device=True, memory=True, cell=_memory("memory_bytes"),
           keep=7),
    Column("saved_bytes", "saved", sortable=True, per_device=True, memory=True, cell=_memory("saved_bytes"), keep=5),
    # JAX's residuals are of the whole step (the jaxpr's global shapes), not of one device
    Column("residual_bytes", "JAX saves", sortable=True, memory=True, cell=_memory("residual_bytes"), keep=4),
    Column("seconds", "time", sortable=True, timed=True, cell=_seconds, keep=8),
    Column("time_share", "time share", timed=True, cell=_time_share, keep=7),
    Column("flops_per_second", "FLOP/s", timed=True, cell=_rate("compiler_flops", format_rate), keep=4),
    Column("bytes_per_second", "bytes/s", timed=True, cell=_rate("compiler_bytes", lambda rate: format_bytes(rate)
                                                                   + "/s"), keep=3),
    Column("roofline_seconds"),
    Column("speed_of_light", "of roofline", timed=True, cell=_speed_of_light, keep=5),
    Column("bound", "bound", "l", timed=True, cell=_bound, keep=6),
)


def table_columns(report: ModelReport | None = None) -> list[Column]:
    """The columns the table of ``report`` shows, in order: the measured ones too where it was profiled."""
    timed = report is not None and any(row.seconds is not None for row in report.rows)
    read = report is not None and any(row.memory_bytes is not None for row in report.rows)
    return [column for column in COLUMNS if column.header and (timed or not column.timed)
            and (read or not column.memory)]


def export_names() -> tuple[str, ...]:
    """A row's fields in exports (JSON, CSV, DataFrame, ``Row.as_dict``), in order."""
    return tuple(column.name for column in COLUMNS)


def sort_keys() -> tuple[str, ...]:
    """What ``--sort`` orders the table by, largest first."""
    return tuple(column.name for column in COLUMNS if column.sortable)


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


def _after_common_prefix(path: str, other: str) -> str:
    """``path`` less the leading names it shares with ``other`` (``a/b/value`` after ``a/b/query`` is ``value``)."""
    names, others = path.split("/"), other.split("/")
    shared = 0
    while shared < min(len(names), len(others)) - 1 and names[shared] == others[shared]:
        shared += 1
    return "/".join(names[shared:])


def _collapse(groups: list[_Group]) -> list[_Group]:
    collapsed: list[_Group] = []
    for group in groups:
        last = collapsed[-1] if collapsed else None
        if last is not None and last.signature == group.signature:
            last.repeats += 1
            last.label = f"{last.label.split(' .. ')[0]} .. {_after_common_prefix(group.label, last.label)}"
        else:
            collapsed.append(_Group(group.label, list(group.rows)))
    return collapsed


def table_rows(report: ModelReport, depth: int | None = None, collapse: bool = True,
               sort: str | None = None) -> list[list[str]]:
    """The cells of the per-module table: a line per module in call order (grouped to `depth` path
    components, identical neighbours collapsed as ``×n``; or largest first by ``sort``), then the work
    outside modules by kind, then totals."""
    if sort is not None and sort not in sort_keys():
        raise ValueError(f"sort: must be one of {', '.join(sort_keys())}, got {sort!r}")
    columns = table_columns(report)
    if sort is not None and sort not in {column.name for column in columns}:
        if next(column.memory for column in COLUMNS if column.name == sort):
            raise ValueError(f"sort: {sort} is device memory, and this report's was not read (jaxcost.memory, or "
                             "--memory)")
        raise ValueError(f"sort: {sort} is measured, and this report was not profiled (jaxcost.profile, or --time)")
    groups = _groups(report, depth)
    if collapse:
        groups = _collapse(groups)
    if sort:
        groups.sort(key=lambda group: -(_measured(group, sort) or 0.0))
    groups += [_Group(row.kind, [row], place="outside") for row in report.rows
               if not row.is_module and (row.compiler_flops or row.compiler_bytes or row.params or row.seconds
                                         or row.memory_bytes)]
    groups.append(_Group("total", list(report.rows), place="total"))
    return [[column.text(group, report) for column in columns] for group in groups]


def headers(columns: list[Column], devices: int = 1) -> list[str]:
    """The headers of ``columns``, for a program over ``devices`` devices."""
    return [column.title(devices) for column in columns]


def alignment(columns: list[Column]) -> str:
    return "".join(column.align for column in columns)


def fitted(rows: list[list[str]], columns: list[Column], width: int,
           devices: int = 1) -> tuple[list[Column], list[list[str]], list[str]]:
    """The table narrowed to ``width`` characters, as a terminal shows it: columns left out, least kept first
    (``Column.keep``, ``reports.text.narrowed``); then the module names shortened in the middle. Returns the columns
    kept, their cells, and the headers left out."""
    titles = headers(columns, devices)
    kept = narrowed(titles, rows, [column.keep for column in columns], width)
    cells = [[row[i] for i in kept] for row in rows]
    excess = table_width([titles[i] for i in kept], cells) - width
    if excess > 0:
        longest = max(len(row[0]) for row in cells)
        cells = [[shortened(row[0], max(longest - excess, 12)), *row[1:]] for row in cells]
    return [columns[i] for i in kept], cells, [title for index, title in enumerate(titles) if index not in kept]


def render(report: ModelReport, depth: int | None = None, collapse: bool = True, sort: str | None = None) -> str:
    """The per-module table as plain text (see ``table_rows``)."""
    columns = table_columns(report)
    return table(headers(columns, report.compiler.devices), table_rows(report, depth, collapse, sort),
                 align=alignment(columns))


def rich_table(report: ModelReport, depth: int | None = None, collapse: bool = True,
               sort: str | None = None) -> Any:
    """The per-module table as a ``rich`` Table, for a terminal (flax brings rich)."""
    return rich_grid(table_rows(report, depth, collapse, sort), table_columns(report), report.compiler.devices)


def rich_grid(rows: list[list[str]], columns: list[Column], devices: int = 1) -> Any:
    """``table_rows`` cells (of ``columns``) as a ``rich`` Table, the totals in bold below a rule."""
    from rich.table import Table

    grid = Table(box=None, header_style="bold", pad_edge=False)
    for header, side in zip(headers(columns, devices), alignment(columns)):
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
        if by_opcode:  # an instruction without arithmetic (a copy, a bitcast, a tuple) leads no operator's FLOPs
            count[opcode] = count.get(opcode, 0) + 1
    total = report.compiler_flops or 1
    names = sorted(set(flops) | set(moved), key=lambda name: (-flops.get(name, 0), -moved.get(name, 0), name))
    rows = [[name, str(count.get(name, "")), _count(flops.get(name, 0)), f"{flops.get(name, 0) / total:.1%}",
             format_bytes(moved.get(name, 0))] for name in names if flops.get(name) or moved.get(name)]
    rows.append(["total", str(sum(count.values())), _count(report.compiler_flops), "100.0%",
                 format_bytes(report.compiler_bytes)])
    return table(["operator", "instructions led (with FLOPs)", "compiler FLOPs", "share", "bytes of those"], rows,
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
    cropped_macs = sum(row.cropped_macs for row in report.rows)
    padding_macs = report.textbook_macs - report.macs - cropped_macs
    reproduced = compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")
    lines = [
        f"{report.name} ({report.mode}): {report.params:,} params; {format_count(report.macs).replace('FLOPs', 'MACs')}"
        f" exact, {format_count(report.textbook_macs).replace('FLOPs', 'MACs')} textbook",
        f"  textbook - exact = {padding_macs + cropped_macs:,} multiply-adds that the textbook formula counts and no "
        f"compiler performs: {padding_macs:,} on padding"
        + (f", {cropped_macs:,} that a transposed conv's padding crops off" if cropped_macs else ""),
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
    lines.extend(f"  no formula: {row.path}: {row.formula_error}" for row in report.rows if row.formula_error)
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
    names = export_names()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for record in to_records(report):
        writer.writerow({name: record[name] for name in names})
    return buffer.getvalue()


def to_dataframe(report: ModelReport) -> Any:
    """A pandas DataFrame of the rows (pandas must be installed)."""
    try:
        import pandas
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from None
    return pandas.DataFrame(to_records(report), columns=export_names())
