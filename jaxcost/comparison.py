"""Analytic against compiler: every difference itemized, each item naming the HLO ops it comes from.

For a layer spec the analytic side is ``analytic(spec)``: 2 flops per exact multiply-add plus the
bias adds, and the minimal traffic (inputs and weights read once, output written once). For any
other function it is the convolutions and dots of the program as written (counted exactly, before
the compiler changed anything), and the same minimal traffic: arguments read once, results written once.

Items come in two stages. ``program`` items lead from the analytic count to what the compiled
program really does (jaxcost's recount). ``xla`` items lead from that to the figure XLA reports
(a loop body XLA counts once, the -1 it reports for a library call, its float32 rounding). The
remainder, XLA's figure minus analytic and all items, is what no op explains.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from jaxcost import targets
from jaxcost.compiler import CompilerCost, compiled, program_of
from jaxcost.formulas import Mode, TrainingCost, analytic
from jaxcost.hlo.buffers import BufferTraffic
from jaxcost.hlo.opcodes import ALL_OPCODES
from jaxcost.hlo.program import Recount
from jaxcost.hlo.roles import BIAS_ADD
from jaxcost.hlo.rules import OpRecord
from jaxcost.reports.layer import comparison_text, delta_line
from jaxcost.specs import Dense, Spec

MAIN_OPCODES = ("convolution", "dot")
INTEGER_DTYPES = ("int8",)
ACTIVATION_OPCODES = frozenset({"maximum", "minimum", "clamp", "select", "compare", "sign", "abs"})
LAYOUT_OPCODES = frozenset({"copy", "transpose", "pad", "slice", "concatenate", "reverse", "reshape",
                            "broadcast", "dynamic-slice", "dynamic-update-slice", "gather"})
#: Roles of the ops that take over when the compiler rewrites a convolution or dot away.
REPLACING_ROLES = ("multiply", "add", "reduce", BIAS_ADD)
#: What explains one difference between the analytic count and the compiler's.
DeltaKind = Literal["bias", "activation", "convert", "unfused", "rewrite", "layout", "elementwise", "constant",
                    "loop", "tuple", "unknown", "rounding", "no gradient", "sharding", "padding", "prefetch", "library"]
KINDS: tuple[DeltaKind, ...] = get_args(DeltaKind)
#: ``program``: analytic to the compiled program's true count; ``xla``: the true count to XLA's reported figure.
Stage = Literal["program", "xla"]
#: Verdicts from weakest to strongest; ``upper bound``: explained, but the program's work depends on data.
Verdict = Literal["unknown", "unexplained", "upper bound", "explained", "exact"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)


@dataclass(frozen=True)
class Delta:
    """One explained difference, with the HLO instructions it comes from.

    ``kind`` is one of ``KINDS``; ``stage`` is ``program`` (analytic to the compiled program's true
    count) or ``xla`` (the true count to XLA's reported figure).
    """

    kind: DeltaKind
    description: str
    ops: tuple[str, ...]
    flops: int = 0
    bytes: int = 0
    stage: Stage = "program"

    def __str__(self) -> str:
        return delta_line(self)


@dataclass
class Comparison:
    """Analytic and compiler counts of one program side by side, with the itemized explanation."""

    label: str
    analytic_flops: int
    analytic_bytes: int
    compiler: CompilerCost
    deltas: list[Delta] = field(default_factory=list)
    cost: Any = None
    spec: Spec | None = None

    def __repr__(self) -> str:
        return (f"Comparison({self.label!r}, verdict={self.verdict!r}, analytic_flops={self.analytic_flops:,}, "
                f"xla_flops={self.compiler.xla_flops:,.0f}, recount_flops={self.compiler.flops:,})")

    def __str__(self) -> str:
        return comparison_text(self)

    @property
    def flops_explained(self) -> int:
        """Analytic plus every item: XLA's figure, when everything is explained."""
        return self.analytic_flops + sum(d.flops for d in self.deltas)

    @property
    def bytes_explained(self) -> int:
        return self.analytic_bytes + sum(d.bytes for d in self.deltas)

    @property
    def flops_remainder(self) -> int | None:
        """XLA's flops minus analytic and all items; None when XLA reported nothing."""
        if not self.compiler.xla:
            return None
        return int(self.compiler.xla_flops) - self.flops_explained

    @property
    def bytes_remainder(self) -> int | None:
        if not self.compiler.xla:
            return None
        return int(self.compiler.xla_bytes_accessed) - self.bytes_explained

    def _verdict(self, analytic_value: int, xla_value: float, remainder: int | None) -> Verdict:
        if remainder is None or self.compiler.unknown:
            return "unknown"
        if remainder:
            return "unexplained"
        if self.compiler.bounds:
            return "upper bound"
        return "exact" if analytic_value == xla_value else "explained"

    @property
    def flops_verdict(self) -> Verdict:
        return self._verdict(self.analytic_flops, self.compiler.xla_flops, self.flops_remainder)

    @property
    def bytes_verdict(self) -> Verdict:
        return self._verdict(self.analytic_bytes, self.compiler.xla_bytes_accessed, self.bytes_remainder)

    @property
    def verdict(self) -> Verdict:
        """``exact`` when analytic equals XLA for flops and bytes; else the weaker of the two verdicts.

        ``unknown`` when XLA reported nothing or the program holds something jaxcost cannot recount;
        ``upper bound`` when every difference is itemized but the work depends on data (a conditional).
        """
        return min(self.flops_verdict, self.bytes_verdict, key=VERDICTS.index)

    @property
    def analytic_matches_program(self) -> bool:
        """Whether the compiled program really does the analytic number of flops (the true recount)."""
        return self.analytic_flops == self.compiler.flops


def _flops_by_role(records: list[OpRecord]) -> tuple[Counter, dict[str, list[str]]]:
    totals: Counter = Counter()
    ops: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for role, flops in record.cost.flops_by_opcode.items():
            totals[role] += flops
            ops[role].append(record.name)
        other = record.cost.flops - sum(record.cost.flops_by_opcode.values())
        if other:
            totals[record.opcode] += other
            ops[record.opcode].append(record.name)
    return totals, ops


def _per_op(role: str, records: list[OpRecord], pass_flops: int) -> str:
    """Each op's share of a role's flops, as a multiple of one analytic pass where that is known."""
    parts = []
    for record in records:
        flops = record.cost.flops_by_opcode.get(role, 0)
        if flops:
            multiple = f" ({flops / pass_flops:.3g}x a pass)" if pass_flops and flops != pass_flops else ""
            parts.append(f"{record.name} {flops:,}{multiple}")
    return ", ".join(parts)


def _flop_deltas(expected: Counter, actual: Counter, ops: dict[str, list[str]],
                 records: list[OpRecord], pass_flops: int = 0) -> list[Delta]:
    """One item per role whose flops differ; roles the analytic count lacks get one item per op.

    ``pass_flops`` is one analytic pass of the main op (2 * MACs), to say which op does more.
    """
    loops = {record.name for record in records if record.opcode == "while"}
    rewritten = any(actual[main] != expected[main] and not (ops.get(main) and set(ops[main]) <= loops)
                    for main in MAIN_OPCODES)
    replacing = tuple(dict.fromkeys(name for role in (*MAIN_OPCODES, *REPLACING_ROLES)
                                    if not expected[role] for name in ops.get(role, ())))
    deltas = []
    for role in sorted(set(expected) | set(actual), key=lambda r: (r not in MAIN_OPCODES, r)):
        delta = actual[role] - expected[role]
        if not delta:
            continue
        if role in MAIN_OPCODES and expected[role]:
            if actual[role] == 0:
                what = f"{role} ({expected[role]:,} flops) rewritten by the compiler into other ops"
                deltas.append(Delta("rewrite", what, replacing, flops=delta))
            else:
                deltas.append(_changed_main_op(role, expected[role], actual[role], ops[role], records, pass_flops))
        elif expected[role]:
            what = f"{role}: {actual[role]:,} flops in the program against {expected[role]:,} analytic"
            deltas.append(Delta("bias" if role == BIAS_ADD else "elementwise", what, tuple(ops[role]), flops=delta))
        else:
            deltas.extend(_extra_op_deltas(role, records, rewritten))
    return deltas


def _changed_main_op(role: str, expected: int, actual: int, names: list[str], records: list[OpRecord],
                     pass_flops: int) -> Delta:
    """A main op whose flops differ: run by a loop more often than written, or changed by the compiler."""
    ratio = actual / expected
    loops = [record for record in records if record.opcode == "while" and record.name in names]
    if loops:
        trips = "; ".join(note for record in loops for note in record.cost.notes)
        what = (f"{role} counted {actual:,} flops against {expected:,} as written ({ratio:.3g}x): inside "
                f"{', '.join(r.name for r in loops)}, whose body the program as written counts once ({trips})")
        return Delta("loop", what, tuple(names), flops=actual - expected)
    what = (f"{role} counted {actual:,} flops against {expected:,} analytic ({ratio:.3g}x); "
            f"per op: {_per_op(role, records, pass_flops)}: the compiler changed the operation "
            "(a grouped or depthwise conv computed as a dense one, say)")
    return Delta("rewrite", what, tuple(names), flops=actual - expected)


def _extra_op_deltas(role: str, records: list[OpRecord], rewritten: bool) -> list[Delta]:
    """Items for flops of a role the analytic count does not have: one per op, with its count."""
    kind: DeltaKind
    if role == "convert":
        kind, what = "convert", "convert inserted by the backend: 1 flop per converted element"
    elif role == BIAS_ADD:
        kind, what = "bias", "bias add: 1 flop per output element"
    elif role in MAIN_OPCODES:
        kind, what = "rewrite", f"{role} replacing the rewritten main op: 2 flops per multiply-add"
    elif rewritten and role in REPLACING_ROLES:
        kind, what = "rewrite", f"{role} replacing the rewritten main op: 1 flop per multiply-add"
    elif rewritten and role in ("compare", "select", "and", "or", "reduce-window"):
        kind, what = "rewrite", f"{role} building the rewritten main op's operands: 1 flop per element"
    elif role in ACTIVATION_OPCODES:
        kind, what = "activation", f"activation ({role}): 1 flop per element"
    else:
        kind, what = "elementwise", f"{role}: 1 flop per element"
    deltas = []
    for record in records:
        flops = record.cost.flops_by_opcode.get(role, 0) if role in record.cost.flops_by_opcode else (
            record.cost.flops - sum(record.cost.flops_by_opcode.values()) if record.opcode == role else 0)
        library = record.opcode == "custom-call" or role not in ALL_OPCODES  # a routine's role, a fusion's call too
        if flops and kind == "elementwise" and library and record.cost.notes:  # a recounted library call
            deltas.append(Delta("library", f"{'; '.join(record.cost.notes)} ({role}: {flops:,} flops)",
                                (record.name,), flops=flops))
        elif flops and record.opcode == "while" and role not in MAIN_OPCODES:
            deltas.append(Delta("loop", f"{role} in {record.name}'s body and condition, its trip count times "
                                f"({flops:,} flops)", (record.name,), flops=flops))
        elif flops:
            deltas.append(Delta(kind, f"{what} ({flops:,} flops)", (record.name,), flops=flops))
    return deltas


_INNER: dict[str, tuple[DeltaKind, str]] = {
    "tuple": ("tuple", "tuple pointer table"), "constants": ("constant", "constants read inside the fusion"),
    "library": ("unknown", "unknown custom call")}


def _byte_deltas(program: Recount) -> list[Delta]:
    """Explain bytes buffer by buffer: each buffer ideally read once (inputs) or written once (outputs)."""
    deltas = []
    for inner in program.inner_traffic:
        kind, what = _INNER.get(inner.source, ("loop", f"traffic inside the called computation of {inner.opcode}"))
        deltas.append(Delta(kind, what, (inner.op,), bytes=inner.bytes))
    opcodes = {instruction.name: instruction.opcode for instruction in program.module.entry.instructions}
    return deltas + [_buffer_delta(buffer, opcodes) for buffer in program.buffers if buffer.bytes_excess]


def _named(name: str, opcode: str) -> str:
    """An instruction as an explanation names it: by its name, or by its opcode where it has none."""
    return name or f"an unnamed {opcode}"


def _no_arithmetic_readers(readers: tuple[str, ...], opcodes: dict[str, str]) -> tuple[DeltaKind, str]:
    """The kind and the words for the readers of a buffer that do no arithmetic, each named: ``layout`` where
    they re-lay it out (a copy, a transpose, a fusion without arithmetic), else ``unfused`` and what they are
    (an all-gather, a send)."""
    named = ", ".join(_named(reader, opcodes[reader]) for reader in readers)
    others = list(dict.fromkeys(opcodes[reader] for reader in readers
                                if opcodes[reader] not in LAYOUT_OPCODES | {"fusion", "bitcast"}))
    if not others:
        return "layout", f"re-laid out by {named} (its readers do no arithmetic)"
    what = ", ".join(f"{'an' if opcode[0] in 'aeiou' else 'a'} {opcode}" for opcode in others)
    return "unfused", f"read back by {named} ({what}: no arithmetic)"


def _buffer_delta(buffer: BufferTraffic, opcodes: dict[str, str]) -> Delta:
    delta, readers = buffer.bytes_excess, buffer.readers
    size = f"{buffer.shape} ({buffer.shape.bytes:,} B)"
    writer = _named(buffer.name, buffer.opcode)
    if buffer.opcode == "parameter":
        if delta < 0:
            return Delta("layout", f"input {buffer.name} {size} only partly read (sliced)", readers, bytes=delta)
        return Delta("unfused", f"input {buffer.name} {size} read by {len(readers)} ops instead of once", readers,
                     bytes=delta)
    if buffer.opcode == "constant":
        return Delta("constant", f"constant {buffer.name} {size} read by {', '.join(readers)}", readers, bytes=delta)
    roles = buffer.writer_roles
    names = (buffer.name, *readers)
    if buffer.opcode == "copy-start" and any(leaf.memory_space == 2 for leaf in buffer.shape.leaves()):
        copied = buffer.shape.leaves()[0]
        return Delta("prefetch", f"prefetch of {buffer.instruction.operands[0]} {copied} into on-chip memory: "
                     f"copy-start writes both copies and its sync flag, {', '.join(readers)} reads its table", names,
                     bytes=delta)
    if buffer.opcode == "copy-done" and buffer.shape.memory_space == 1:
        return Delta("prefetch", f"the on-chip copy {size} written by {buffer.name} and read by {', '.join(readers)}",
                     names, bytes=delta)
    if buffer.opcode in LAYOUT_OPCODES or (buffer.opcode == "fusion" and not roles):
        return Delta("layout", f"layout change: {writer} writes {size} that is read back", names, bytes=delta)
    if roles == {"convert"}:
        return Delta("convert", f"converted copy {buffer.name} {size} written and read back", names, bytes=delta)
    if buffer.is_argument_or_result and not readers:
        return Delta("unfused", f"output {buffer.name} {size}: {buffer.name} writes {buffer.bytes_moved:,} B, of "
                     f"which the program returns {buffer.bytes_ideal:,} B", names, bytes=delta)
    if buffer.is_argument_or_result:
        return Delta("unfused", f"output {buffer.name} {size} also read by {', '.join(readers)}", names, bytes=delta)
    if not readers:
        return Delta("layout", f"intermediate {size} written by {buffer.name} and read by no instruction of the entry "
                     "computation (an async pair's buffer, say)", names, bytes=delta)
    if not buffer.reader_roles:
        kind, read = _no_arithmetic_readers(readers, opcodes)
        return Delta(kind, f"intermediate {size} written by {writer} and {read}", names, bytes=delta)
    why = "bias add not fused into it" if BIAS_ADD in buffer.reader_roles else "not fused"
    return Delta("unfused", f"intermediate {size} written by {buffer.name} and read back by {', '.join(readers)} "
                 f"({why})", names, bytes=delta)


def _xla_stage_deltas(program: Recount) -> list[Delta]:
    """How XLA's rules differ from the true count, op by op: loops counted once, -1 for library calls."""
    deltas = []
    kind: DeltaKind
    for true_op, xla_op in zip(program.ops, program.xla_ops):
        flops = xla_op.cost.flops - true_op.cost.flops
        bytes_accessed = xla_op.cost.bytes_accessed - true_op.cost.bytes_accessed
        if not flops and not bytes_accessed:
            continue
        if xla_op.cost.unknown:  # a library call, or a fusion around one
            what = f"XLA reports -1 for {xla_op.cost.unknown[0]} instead of its cost"
            kind = "unknown"
        else:
            what = f"XLA counts the body of {true_op.opcode} {true_op.name} once"
            what += "; " + "; ".join(true_op.cost.notes) if true_op.cost.notes else ""
            kind = "loop"
        deltas.append(Delta(kind, what, (true_op.name,), flops, bytes_accessed, stage="xla"))
    return deltas


def _rounding_deltas(compiler: CompilerCost) -> list[Delta]:
    """XLA sums its figures in float32; where that rounding reproduces XLA's total, itemize it."""
    deltas = []
    for key, xla_value in (("flops", compiler.xla_flops), ("bytes_accessed", compiler.xla_bytes_accessed)):
        exact = compiler.recount.xla_rule_total(key)
        if compiler.xla and compiler.xla_reproduced(key) and int(xla_value) != exact:
            amount = int(xla_value) - exact
            what = f"XLA accumulates {key} in float32: it reports {int(xla_value):,}, the exact sum is {exact:,}"
            deltas.append(Delta("rounding", what, (), stage="xla", **{"flops" if key == "flops" else "bytes": amount}))
    return deltas


def _mark_rewrites(deltas: list[Delta]) -> list[Delta]:
    """Byte items that involve an op of a rewrite item are part of that rewrite."""
    rewritten_ops = {name for d in deltas if d.kind == "rewrite" for name in d.ops}
    return [Delta("rewrite", d.description, d.ops, d.flops, d.bytes)
            if d.kind in ("unfused", "layout") and rewritten_ops & set(d.ops) else d for d in deltas]


def explain(compiler: CompilerCost, expected_flops: Counter, pass_flops: int = 0) -> list[Delta]:
    """Itemized deltas between an analytic flop breakdown (by role) and the compiled program."""
    actual, ops = _flops_by_role(compiler.recount.ops)
    deltas = _flop_deltas(expected_flops, actual, ops, compiler.recount.ops, pass_flops)
    deltas += _padding_deltas(compiler.recount) + _byte_deltas(compiler.recount)
    return _mark_rewrites(deltas) + _xla_stage_deltas(compiler.recount) + _rounding_deltas(compiler)


def _padding_deltas(program: Recount) -> list[Delta]:
    """The bytes a tiled layout (TPU) adds to the program's arguments and results, each read or written once:
    the analytic count is of the arrays themselves."""
    entry = program.module.entry
    padded = [(buffer.name, buffer.shape) for buffer in [*entry.parameters(), *entry.outputs()]
              if buffer.shape.padding_bytes]
    if not padded:
        return []
    total = sum(shape.padding_bytes for _, shape in padded)
    largest = sorted(padded, key=lambda item: -item[1].padding_bytes)[:3]
    what = ", ".join(f"{name} {shape} +{shape.padding_bytes:,} B" for name, shape in largest)
    return [Delta("padding", f"layout padding: tiles pad the arguments and results by {total:,} B ({what})",
                  tuple(name for name, _ in padded), bytes=total)]


def compare_spec(spec: Spec, compiler: CompilerCost | None = None, mode: Mode = "forward") -> Comparison:
    """Analytic against compiler for one layer spec (compiled here unless a compiled program is given).

    ``mode="train"``: a training step, forward and gradients w.r.t. input and params.
    """
    cost = analytic(spec, mode)
    compiler = compiler or compiled(spec, mode=mode)
    main = "dot" if isinstance(spec, Dense) else "convolution"
    forward = cost.forward if isinstance(cost, TrainingCost) else cost
    expected = Counter({main: 2 * forward.macs, BIAS_ADD: forward.bias_adds})
    no_gradient: list[Delta] = []
    if isinstance(cost, TrainingCost) and spec.dtype in INTEGER_DTYPES:
        gradients = 2 * 2 * forward.macs + cost.grad_bias_adds
        zeros = math.prod(spec.input_shape) + forward.params  # JAX's zero cotangents, one boolean byte an element
        no_gradient.append(Delta(
            "no gradient", f"JAX takes no gradient through {spec.dtype} inputs and weights: the grad-input and "
            f"grad-weight passes and the bias gradient ({gradients:,} FLOPs) are not in the program, which reads no "
            f"output gradient and writes zero cotangents as booleans ({zeros:,} B) instead of gradients",
            (), flops=-gradients, bytes=zeros - forward.bytes_accessed))
    elif isinstance(cost, TrainingCost):
        expected += Counter({main: 2 * 2 * forward.macs, "reduce": cost.grad_bias_adds})
    deltas = no_gradient + explain(compiler, expected, pass_flops=2 * forward.macs)
    label = spec.describe() + (" train" if mode == "train" else "")
    return Comparison(label, cost.flops, cost.bytes_accessed, compiler, deltas, cost=cost, spec=spec)


def compare_function(function: Callable[..., Any], *args: Any, label: str = "") -> Comparison:
    """Analytic against compiler for any function: its convolutions and dots as written, its minimal traffic."""
    compiler = compiled(function, *args)
    written = compiler.written
    written_roles, _ = _flops_by_role(written.ops)
    expected = Counter({main: written_roles[main] for main in MAIN_OPCODES if written_roles[main]})
    name = label or getattr(function, "__name__", "function")
    analytic_flops = sum(expected.values())
    padding = sum(delta.bytes for delta in _padding_deltas(compiler.recount))  # itemized by explain()
    analytic_bytes = compiler.recount.bytes_arguments_and_results - padding
    sharding: list[Delta] = []
    if compiler.devices > 1:  # the program as written is the whole; the compiled one is one device's
        share = Counter({role: flops // compiler.devices for role, flops in expected.items()})
        sharding.append(Delta(
            "sharding", f"the program runs on {compiler.devices} devices and the compiler's figures are one "
            f"device's: 1/{compiler.devices} of the products as written, and its own arguments and results", (),
            flops=sum(share.values()) - analytic_flops, bytes=analytic_bytes - analytic_bytes * compiler.devices))
        expected = share
        analytic_bytes *= compiler.devices  # every device reads its arguments and writes its results
    return Comparison(name, analytic_flops, analytic_bytes, compiler, sharding + explain(compiler, expected))


def compare(spec_or_function: Spec | Callable[..., Any], *args: Any, label: str = "",
            mode: Mode = "forward", target: str | None = None) -> Comparison:
    """Analytic against compiler, side by side, with every difference itemized.

    For a spec, ``mode="train"`` compares a training step (forward, grad-input, grad-weights, grad-bias).
    ``target="tpu:v5e:2x2"`` compiles for a TPU slice on this machine (``jaxcost.targets``).
    """
    function, arguments, spec = program_of(spec_or_function, args, mode)
    with targets.compiling_for(target):
        if spec is not None:
            return compare_spec(spec, mode=mode)
        return compare_function(function, *arguments, label=label)
