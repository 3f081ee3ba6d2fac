"""Render comparisons: the side-by-side table, the itemized explanation, and JSON-ready dicts."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from jaxcost.comparison import Comparison, Delta
from jaxcost.formulas import TrainingCost, conventions
from jaxcost.reports.text import format_bytes, format_count, table

#: Reference layers for ``jaxcost report``: the four classic layer types at the sizes papers quote.
REFERENCE_INPUT = (1, 56, 56, 64)


def reference_suite() -> list[Any]:
    """Standard (stride 1 and 2, SAME and VALID), group (g=4), depthwise and dense layers."""
    from jaxcost.specs import dense, depthwise_conv, group_conv, standard_conv

    return [
        standard_conv(REFERENCE_INPUT, 128, 3, strides=1, padding="SAME"),
        standard_conv(REFERENCE_INPUT, 128, 3, strides=2, padding="SAME"),
        standard_conv(REFERENCE_INPUT, 128, 3, strides=1, padding="VALID"),
        standard_conv(REFERENCE_INPUT, 128, 1, strides=1, padding="SAME"),
        group_conv(REFERENCE_INPUT, 128, 4, 3, strides=1, padding="SAME"),
        depthwise_conv(REFERENCE_INPUT, 3, strides=1, padding="SAME"),
        depthwise_conv(REFERENCE_INPUT, 3, strides=2, padding="SAME"),
        standard_conv(REFERENCE_INPUT, 128, 3, padding="SAME", dtype="bfloat16"),
        dense((1, 2048), 1000),
    ]


def _figure(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def side_by_side(comparison: Comparison) -> str:
    """Analytic, XLA's own figure and the op-by-op recount for one layer, with units."""
    compiler = comparison.compiler
    rows: list[list[str]] = []
    if comparison.cost is not None:
        cost = comparison.cost
        rows += [["params", f"{cost.params:,}", "", "", "count"],
                 ["MACs (exact taps)", f"{cost.macs:,}", "", "", "multiply-adds"],
                 ["MACs (textbook)", f"{cost.textbook_macs:,}", "", "", "multiply-adds"]]
        if isinstance(cost, TrainingCost):
            rows += [["FLOPs forward", f"{cost.flops_forward:,}", "", "", "FLOPs"],
                     ["FLOPs grad input", f"{cost.flops_grad_input:,}", "", "", "FLOPs"],
                     ["FLOPs grad weights", f"{cost.flops_grad_weights:,}", "", "", "FLOPs"],
                     ["FLOPs grad bias", f"{cost.grad_bias_adds:,}", "", "", "FLOPs"],
                     ["3x forward (rule)", f"{cost.rule_of_thumb_flops:,}", "", "", "FLOPs"]]
    rows += [
        ["FLOPs", f"{comparison.analytic_flops:,}", _figure(compiler.xla_flops), f"{compiler.flops:,}",
         format_count(comparison.analytic_flops)],
        ["bytes accessed", f"{comparison.analytic_bytes:,}", _figure(compiler.xla_bytes_accessed),
         f"{compiler.bytes_accessed:,}", format_bytes(comparison.analytic_bytes)],
        ["transcendentals", "0", _figure(compiler.xla_transcendentals), f"{compiler.transcendentals:,}", "count"],
    ]
    if comparison.analytic_bytes:
        rows.append(["intensity", f"{comparison.analytic_flops / comparison.analytic_bytes:.2f}",
                     f"{compiler.xla_flops / compiler.xla_bytes_accessed:.2f}" if compiler.xla_bytes_accessed > 0
                     else "?", f"{compiler.flops / max(compiler.bytes_accessed, 1):.2f}", "FLOPs/byte"])
    return table(["", "analytic", "XLA reports", "jaxcost recount", "units"], rows)


def _delta_line(delta: Delta, indent: str) -> str:
    amounts = []
    if delta.flops:
        amounts.append(f"{delta.flops:+,} FLOPs")
    if delta.bytes:
        amounts.append(f"{delta.bytes:+,} B")
    ops = f" [{', '.join(delta.ops)}]" if delta.ops else ""
    return f"{indent}{delta.kind:<11} {' '.join(amounts):<26} {delta.description}{ops}"


def explanation(comparison: Comparison, indent: str = "  ") -> str:
    """The itemized deltas in their two stages, what stays unknown, the remainder and the verdict."""
    lines = [_delta_line(d, indent) for d in comparison.deltas if d.stage == "program"]
    xla_stage = [_delta_line(d, indent) for d in comparison.deltas if d.stage == "xla"]
    if xla_stage:
        lines.append(f"{indent}then, from the program's true count to the figure XLA reports:")
        lines += xla_stage
    for unknown in comparison.compiler.unknown:
        lines.append(f"{indent}{'unknown':<11} {'':<26} {unknown}")
    lines.append(f"{indent}remainder   FLOPs {_figure(comparison.flops_remainder)}, bytes "
                 f"{_figure(comparison.bytes_remainder)}   verdict: {comparison.verdict} "
                 f"(flops {comparison.flops_verdict}, bytes {comparison.bytes_verdict})")
    return "\n".join(lines)


def ops_table(comparison: Comparison, top: int = 10) -> str:
    """The compiled program's costliest instructions, by flops and by bytes, with their source."""
    records = [r for r in comparison.compiler.recount.ops if r.cost.flops or r.cost.bytes_accessed]
    by_flops = sorted(records, key=lambda r: -r.cost.flops)[:top]
    by_bytes = sorted(records, key=lambda r: -r.cost.bytes_accessed)[:top]
    chosen = list({r.name: r for r in by_flops + by_bytes}.values())
    rows = [[r.name, r.opcode, str(r.instruction.shape), f"{r.cost.flops:,}", f"{r.cost.bytes_accessed:,}",
             r.instruction.op_name or "-"] for r in chosen]
    return table(["instruction", "opcode", "shape", "FLOPs", "bytes", "source (op_name)"], rows, align="lllrrl")


def conventions_table(spec: Any) -> str:
    """What each common tool prints for this layer."""
    from jaxcost.formulas import CONVENTION_RULES

    rows = [[name, f"{value:,}", CONVENTION_RULES[name].split(";")[0]] for name, value in conventions(spec).items()]
    return table(["convention", "count", "what it counts"], rows, align="lrl")


def suite_table(comparisons: Sequence[Comparison]) -> str:
    """One row per layer: shape, params, MACs, FLOPs and bytes (analytic | XLA), intensity, verdict."""
    rows = []
    for index, comparison in enumerate(comparisons, 1):
        spec, cost, compiler = comparison.spec, comparison.cost, comparison.compiler
        rows.append([
            f"{index}. {comparison.label}", "x".join(map(str, spec.output_shape)) if spec else "",
            f"{cost.params:,}" if cost else "", format_count(cost.macs).replace("FLOPs", "MACs") if cost else "",
            format_count(comparison.analytic_flops), format_count(compiler.xla_flops),
            format_bytes(comparison.analytic_bytes), format_bytes(compiler.xla_bytes_accessed),
            f"{comparison.analytic_flops / comparison.analytic_bytes:.1f}", comparison.verdict])
    headers = ["layer", "output", "params", "MACs", "FLOPs analytic", "FLOPs XLA", "bytes analytic", "bytes XLA",
               "FLOPs/B", "verdict"]
    return table(headers, rows, align="ll" + "r" * 7 + "l")


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
