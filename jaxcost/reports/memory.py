"""Render a memory report: the peak and its parts, what is live at the peak by row and by role, and the
largest values there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jaxcost.reports.text import table

if TYPE_CHECKING:
    from jaxcost.models.fit import Fit
    from jaxcost.models.memory import MemoryReport
    from jaxcost.models.saved import BlockComparison


def format_gib(bytes_count: float) -> str:
    """Bytes in binary units (KiB, MiB, GiB), as device memory is sold and reported."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(bytes_count) >= size:
            return f"{bytes_count / size:.2f} {unit}"
    return f"{bytes_count:.0f} B"


def peak_lines(report: MemoryReport) -> list[str]:
    """The peak in words: its parts, XLA's own figures beside them, and what is live at the peak."""
    lines = [
        f"  peak: {report.peak_bytes:,} B ({format_gib(report.peak_bytes)}) per device = arguments "
        f"{report.arguments_bytes:,} + outputs {report.outputs_bytes:,} + temporaries {report.temp_bytes:,} "
        f"- aliased {report.aliased_bytes:,}",
    ]
    if report.xla:
        implied = _implied(report.xla)
        same = "the same" if implied == report.peak_bytes else f"{report.peak_bytes - implied:+,} B apart"
        lines.append(f"  XLA's memory_analysis(): {implied:,} B ({same})")
    if report.temp_unassigned_bytes > 0:
        lines.append(f"  of XLA's temporaries, {report.temp_unassigned_bytes:,} B are reserved beside the buffer "
                     "assignment (backend scratch: no value is placed in them)")
    elif report.temp_unassigned_bytes < 0:
        lines.append(f"  XLA's memory_analysis() leaves out {-report.temp_unassigned_bytes:,} B of temporaries the "
                     "buffer assignment places; the peak counts them")
    if report.generated_code_bytes:
        lines.append(f"  the program's code, also in device memory: {report.generated_code_bytes:,} B; required "
                     f"{report.required_bytes:,} B ({format_gib(report.required_bytes)})")
    if report.constants_bytes:
        lines.append(f"  constants and thread-local scratch outside the device heap: {report.constants_bytes:,} B")
    lines.append(f"  live at the peak (step {report.peak_step}, {report.peak_instruction}): "
                 f"{report.live_peak_bytes:,} B ({format_gib(report.live_peak_bytes)}); held but not live then: "
                 f"{report.held_not_live_bytes:,} B")
    roles = report.bytes_by_role()
    lines.append("  by role: " + ", ".join(f"{role} {format_gib(amount)}" for role, amount in roles.most_common()))
    devices = report.model.compiler.devices
    whole = report.formulas.get("parameters")
    if devices > 1 and whole:
        share = roles["parameters"] / whole
        lines.append(f"  over {devices} devices, each holds {roles['parameters']:,} B of the parameters' {whole:,} B "
                     f"({share:.0%}: {'replicated' if share > 0.99 else 'sharded'})")
    if report.mode == "train":
        on_chip = (f", {report.saved_on_chip_bytes:,} B of it in on-chip memory" if report.saved_on_chip_bytes
                   else "")
        lines.append(f"  saved for the backward pass: {report.saved_bytes:,} B ({format_gib(report.saved_bytes)})"
                     + on_chip)
        global_note = f", the whole step's over {devices} devices" if devices > 1 else ""
        lines.append(f"  JAX's autodiff saves {report.residuals_bytes:,} B ({format_gib(report.residuals_bytes)}, "
                     f"{len(report.residuals)} values{global_note}) before XLA recomputes, widens or lays out any")
    return lines


def _implied(xla: dict[str, int]) -> int:
    return (xla.get("argument_size_in_bytes", 0) + xla.get("output_size_in_bytes", 0)
            + xla.get("temp_size_in_bytes", 0) - xla.get("alias_size_in_bytes", 0))


def rows_table(report: MemoryReport, most: int = 20) -> str:
    """Live bytes at the peak by module row, with the bytes each keeps for the backward pass (training): what XLA
    keeps and what JAX's autodiff saves."""
    by_row = report.bytes_by_row()
    saved, residuals = report.saved_by_row(), report.residuals_by_row()
    rows: list[Any] = []
    for row, amount in by_row.most_common(most):
        rows.append([row, f"{amount:,}", f"{amount / (report.live_peak_bytes or 1):.1%}", f"{saved[row]:,}",
                     f"{residuals[row]:,}"])
    headers = ["row", "live at peak (B)", "share", "saved for backward (B)", "JAX saves (B)"]
    if report.mode != "train":
        headers, rows = headers[:3], [cells[:3] for cells in rows]
    text = table(headers, rows, "l" + "r" * (len(headers) - 1))
    if len(by_row) > most:
        rest = sum(amount for _, amount in by_row.most_common()[most:])
        text += f"\n  and {len(by_row) - most} more rows ({rest:,} B)"
    return text


def values_table(report: MemoryReport, most: int = 12) -> str:
    """The largest values live at the peak."""
    rows = [[value.instruction + (value.index if value.index != "{}" else ""), value.shape.split("{")[0],
             f"{value.bytes:,}", value.role, value.row] for value in report.live[:most]]
    return table(["value", "shape", "bytes", "role", "row"], rows, "llrll")


def memory_text(report: MemoryReport) -> str:
    """The whole report as text."""
    title = f"{report.name} ({report.mode}) on {report.device_kind or report.platform}: device memory of one step"
    return "\n".join([title, *peak_lines(report), "", rows_table(report), "", values_table(report)])


def memory_json(report: MemoryReport) -> dict[str, Any]:
    """The report as plain data."""
    return {
        "name": report.name, "mode": report.mode, "platform": report.platform, "device_kind": report.device_kind,
        "peak_bytes": report.peak_bytes, "arguments_bytes": report.arguments_bytes,
        "outputs_bytes": report.outputs_bytes, "aliased_bytes": report.aliased_bytes,
        "temp_bytes": report.temp_bytes, "constants_bytes": report.constants_bytes,
        "live_peak_bytes": report.live_peak_bytes, "peak_step": report.peak_step,
        "peak_instruction": report.peak_instruction, "saved_bytes": report.saved_bytes,
        "by_row": dict(report.bytes_by_row()), "by_role": dict(report.bytes_by_role()),
        "saved_by_row": dict(report.saved_by_row()), "residuals_bytes": report.residuals_bytes,
        "residuals_by_row": dict(report.residuals_by_row()), "xla_memory_analysis": report.xla,
        "devices": report.model.compiler.devices, "formulas": report.formulas,
        "generated_code_bytes": report.generated_code_bytes, "required_bytes": report.required_bytes,
        "temp_unassigned_bytes": report.temp_unassigned_bytes,
        "live": [{"instruction": value.instruction, "index": value.index, "shape": value.shape, "bytes": value.bytes,
                  "row": value.row, "role": value.role} for value in report.live],
    }


def comparison_lines(comparisons: list[BlockComparison]) -> list[str]:
    """One block's saved bytes beside Korthikanti et al.'s formula: the tensors of each size and width the formula
    counts (its dropout tensors too, as published), JAX's autodiff saves and XLA keeps (one column per comparison),
    then each level's difference from the formula item by item."""
    first = comparisons[0]
    lines = [f"{first.block}: saved for the backward pass beside Korthikanti et al. 2022, sbh(34 + 5as/h) = "
             f"{first.formula_bytes:,} B"]
    rows: list[list[str]] = []
    for index, line in enumerate(first.lines):
        published = first.formula_widths(line.size, published=True)
        widths = sorted(set(published).union(*(comparison.lines[index].widths for comparison in comparisons)))
        rows += [[f"{line.size}, {8 * width}-bit", str(published[width]),
                  *(str(comparison.lines[index].widths[width]) for comparison in comparisons)] for width in widths]
    rows.append(["other sizes (B)", "0", *(f"{sum(value.bytes for value in comparison.others):,}"
                                          for comparison in comparisons)])
    rows.append(["bytes", f"{first.formula_bytes:,}", *(f"{comparison.saved_bytes:,}" for comparison in comparisons)])
    text = table(["tensors", "formula", *(comparison.level for comparison in comparisons)], rows,
                 "l" + "r" * (1 + len(comparisons)))
    lines += ["  " + line for line in text.splitlines()]
    for comparison in comparisons:
        difference = comparison.saved_bytes - comparison.formula_bytes
        lines.append(f"{comparison.level} {comparison.saved_bytes:,} B, {difference:+,} B from the formula:")
        lines += [f"  {amount:+,} B  {name}" for name, amount in comparison.items()]
    return lines


def fit_lines(fit: Fit, name: str, source: str) -> list[str]:
    """The fit search in words: the largest batch, its peak and the next one's, what a sample adds."""
    lines = [f"{name}: fitting in {fit.capacity_bytes:,} B ({format_gib(fit.capacity_bytes)}, {source}); "
             f"{fit.compiles} compiles"]
    for batch, report in sorted(fit.reports.items()):
        verdict = "fits" if report.fits(fit.capacity_bytes) else "does not fit"
        lines.append(f"  batch {batch}: {report.required_bytes:,} B ({format_gib(report.required_bytes)}) {verdict}")
    if fit.batch is None:
        first = min(fit.reports)
        lines.append(f"does not fit even at batch {first}: its step needs "
                     f"{format_gib(fit.reports[first].required_bytes)}")
        return lines
    best = fit.reports[fit.batch]
    lines.append(f"largest batch that fits: {fit.batch} ({format_gib(best.required_bytes)} of "
                 f"{format_gib(fit.capacity_bytes)})")
    following = fit.next_batch()
    if following is not None:
        lines.append(f"  batch {following} needs {format_gib(fit.reports[following].required_bytes)}"
                     + ("" if fit.exact else f"; the batches between were not compiled ({fit.compiles} compiles: "
                                              "--compiles allows more)"))
    elif not fit.exact:
        lines.append(f"  every batch compiled fits; --most raises the largest batch tried ({fit.compiles} compiles)")
    if len(fit.reports) > 1:
        roles = best.bytes_by_role()
        lines.append(f"  each {fit.unit if fit.unit > 1 else ''}{' ' if fit.unit > 1 else ''}sample adds "
                     f"{format_gib(fit.bytes_per_unit)}; at the peak: "
                     + ", ".join(f"{role} {format_gib(amount)}" for role, amount in roles.most_common(4)))
    return lines


__all__ = ["comparison_lines", "fit_lines", "format_gib", "memory_json", "memory_text", "peak_lines", "rows_table",
           "values_table"]
