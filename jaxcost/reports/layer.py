"""Render layer comparisons: the side-by-side table, the itemized explanation, the reference-suite table and
JSON-ready dicts."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from jaxcost.formulas import CONVENTION_RULES, TrainingCost, conventions
from jaxcost.reports.program import figure, grouped
from jaxcost.reports.text import WIDTH, fitted_table, format_bytes, format_count, format_si, table, wrap

if TYPE_CHECKING:
    from jaxcost.comparison import Comparison, Delta

#: Characters an explanation's item gives its kind and its amounts; the description starts after them.
KIND_WIDTH, AMOUNTS_WIDTH = 11, 26


def _human(analytic_value: int, recount_value: int, format_value: Callable[[float], str]) -> str:
    """The analytic figure in human units, and the recount's beside it where the program differs."""
    text = format_value(analytic_value)
    return text if recount_value == analytic_value else f"{text}; recount {format_value(recount_value)}"


def side_by_side(comparison: Comparison) -> str:
    """Analytic, XLA's own figure and the op-by-op recount for one layer, exact, with human units."""
    compiler = comparison.compiler
    rows: list[list[str]] = []
    if comparison.cost is not None:
        cost = comparison.cost
        rows += [["params", f"{cost.params:,}", "", "", format_si(cost.params, "")],
                 ["MACs (exact taps)", f"{cost.macs:,}", "", "", format_si(cost.macs, "MACs")],
                 ["MACs (textbook)", f"{cost.textbook_macs:,}", "", "", format_si(cost.textbook_macs, "MACs")]]
        if isinstance(cost, TrainingCost):
            rows += [[name, f"{value:,}", "", "", format_count(value)] for name, value in (
                ("FLOPs forward", cost.flops_forward), ("FLOPs grad input", cost.flops_grad_input),
                ("FLOPs grad weights", cost.flops_grad_weights), ("FLOPs grad bias", cost.grad_bias_adds),
                ("3x forward (rule)", cost.rule_of_thumb_flops))]
    rows += [
        ["FLOPs", f"{comparison.analytic_flops:,}", figure(compiler.xla_flops), f"{compiler.flops:,}",
         _human(comparison.analytic_flops, compiler.flops, format_count)],
        ["bytes accessed", f"{comparison.analytic_bytes:,}", figure(compiler.xla_bytes_accessed),
         f"{compiler.bytes_accessed:,}", _human(comparison.analytic_bytes, compiler.bytes_accessed, format_bytes)],
        ["transcendentals", "0", figure(compiler.xla_transcendentals), f"{compiler.transcendentals:,}",
         _human(0, compiler.transcendentals, lambda value: format_si(value, "ops"))],
    ]
    if comparison.analytic_bytes:
        analytic_intensity = comparison.analytic_flops / comparison.analytic_bytes
        recount_intensity = compiler.flops / max(compiler.bytes_accessed, 1)
        xla_known = compiler.xla_bytes_accessed > 0 and compiler.xla_flops >= 0
        xla_intensity = f"{compiler.xla_flops / compiler.xla_bytes_accessed:.2f}" if xla_known else "?"
        rows.append(["intensity", f"{analytic_intensity:.2f}", xla_intensity, f"{recount_intensity:.2f}",
                     "FLOPs/byte"])
    return table(["", "analytic", "XLA reports", "jaxcost recount", "units"], rows)


def delta_line(delta: Delta, indent: str = "") -> str:
    """One itemized difference: kind, amounts, what it is and the HLO instructions it comes from."""
    amounts = []
    if delta.flops:
        amounts.append(f"{delta.flops:+,} FLOPs")
    if delta.bytes:
        amounts.append(f"{delta.bytes:+,} B")
    ops = f" [{', '.join(delta.ops)}]" if delta.ops else ""
    return f"{indent}{delta.kind:<{KIND_WIDTH}} {' '.join(amounts):<{AMOUNTS_WIDTH}} {delta.description}{ops}"


def explanation(comparison: Comparison, indent: str = "  ", width: int = WIDTH) -> str:
    """The itemized deltas in their two stages, what stays unknown, the remainder and the verdict; each item
    wrapped to ``width`` characters, its further lines under its description."""
    lines = [delta_line(d, indent) for d in comparison.deltas if d.stage == "program"]
    xla_stage = [delta_line(d, indent) for d in comparison.deltas if d.stage == "xla"]
    if xla_stage:
        lines.append(f"{indent}then, from the program's true count to the figure XLA reports:")
        lines += xla_stage
    for unknown in grouped(comparison.compiler.unknown):
        lines.append(f"{indent}{'unknown':<{KIND_WIDTH}} {'':<{AMOUNTS_WIDTH}} {unknown}")
    for bound in comparison.compiler.bounds:
        lines.append(f"{indent}{'bound':<{KIND_WIDTH}} {'':<{AMOUNTS_WIDTH}} {bound}")
    lines.append(f"{indent}{'remainder':<{KIND_WIDTH}} FLOPs {figure(comparison.flops_remainder)}, bytes "
                 f"{figure(comparison.bytes_remainder)}   verdict: {comparison.verdict} "
                 f"(flops {comparison.flops_verdict}, bytes {comparison.bytes_verdict})")
    description = " " * (len(indent) + KIND_WIDTH + AMOUNTS_WIDTH + 2)
    return "\n".join(wrap(line, width, description) for line in lines)


def comparison_text(comparison: Comparison, context: str = "", width: int = WIDTH) -> str:
    """What ``print(comparison)`` shows: the label, the side-by-side table and the itemized explanation, its
    items wrapped to ``width`` characters.

    ``context`` is a line printed under the label (the device, say)."""
    spec = comparison.spec
    header = comparison.label
    if spec is not None:
        header += f"   input {spec.input_shape} -> output {spec.output_shape}, {spec.dtype}"
    lines = [wrap(header, width, "  ")] + ([context] if context else [])
    return "\n".join([*lines, "", side_by_side(comparison), "", "Why analytic and compiler differ:",
                      explanation(comparison, width=width)])


def conventions_table(spec: Any, width: int = WIDTH) -> str:
    """What each common tool prints for this layer, what it counts wrapped to fit ``width`` characters."""
    rows = [[name, f"{value:,}", CONVENTION_RULES[name].split(";")[0]] for name, value in conventions(spec).items()]
    return table(["convention", "count", "what it counts"], rows, align="lrl", width=width)


#: How long each of ``suite_table``'s columns stays on a narrow terminal (``reports.text.narrowed``).
SUITE_KEEP = (9, 3, 4, 2, 8, 8, 6, 6, 5, 9)


def suite_table(comparisons: Sequence[Comparison], width: int | None = None) -> str:
    """One row per layer: shape, params, MACs, FLOPs and bytes (analytic | XLA), intensity, verdict; narrowed to
    ``width`` (a terminal's) where one is given."""
    rows = []
    for index, comparison in enumerate(comparisons, 1):
        spec, cost, compiler = comparison.spec, comparison.cost, comparison.compiler
        rows.append([
            f"{index}. {comparison.label}", "x".join(map(str, spec.output_shape)) if spec else "",
            f"{cost.params:,}" if cost else "", format_si(cost.macs, "MACs") if cost else "",
            format_count(comparison.analytic_flops), format_count(compiler.xla_flops),
            format_bytes(comparison.analytic_bytes), format_bytes(compiler.xla_bytes_accessed),
            f"{comparison.analytic_flops / comparison.analytic_bytes:.1f}", comparison.verdict])
    headers = ["layer", "output", "params", "MACs", "FLOPs analytic", "FLOPs XLA", "bytes analytic", "bytes XLA",
               "FLOPs/B", "verdict"]
    return fitted_table(headers, rows, "ll" + "r" * 7 + "l", SUITE_KEEP, width)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    """Everything a comparison holds, as JSON-ready data."""
    compiler = comparison.compiler
    result: dict[str, Any] = {
        "label": comparison.label,
        "platform": compiler.platform,
        "analytic": {"flops": comparison.analytic_flops, "bytes_accessed": comparison.analytic_bytes},
        "xla": compiler.xla,
        "recount": {"flops": compiler.flops, "transcendentals": compiler.transcendentals,
                    "bytes_accessed": compiler.bytes_accessed},
        "unknown": compiler.unknown,
        "bounds": compiler.bounds,
        "xla_unknown": compiler.xla_unknown,
        "notes": compiler.recount.notes,
        "ops": [{"name": r.name, "opcode": r.opcode, "shape": str(r.instruction.shape), "flops": r.cost.flops,
                 "bytes_accessed": r.cost.bytes_accessed, "op_name": r.instruction.op_name}
                for r in compiler.recount.ops if r.cost.flops or r.cost.bytes_accessed],
        "deltas": [dataclasses.asdict(delta) for delta in comparison.deltas],
        "flops_remainder": comparison.flops_remainder,
        "bytes_remainder": comparison.bytes_remainder,
        "verdict": comparison.verdict,
        "flops_verdict": comparison.flops_verdict,
        "bytes_verdict": comparison.bytes_verdict,
        "seconds_compile": compiler.seconds_compile,
    }
    if comparison.spec is not None:
        spec = comparison.spec
        result["spec"] = {"type": type(spec).__name__, "kind": spec.kind, "output_shape": list(spec.output_shape),
                          **{f.name: _plain(getattr(spec, f.name)) for f in dataclasses.fields(spec)}}
        result["analytic"] = comparison.cost.as_dict()
        result["conventions"] = conventions(spec)
    return result
