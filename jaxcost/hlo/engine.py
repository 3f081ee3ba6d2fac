"""The cost engine: what an instruction costs (``OpCost``, ``OpRecord``) and ``Analyzer``, which costs each one by
its opcode's class (``opcodes``) or the rule registered for it (``@rule``; the rules themselves are in ``rules``).

A rule for a free or elementwise opcode would never run (``Analyzer.cost`` costs those first): registering one
raises, as registering an opcode twice does. Import ``jaxcost.hlo.rules`` (not this module) to cost with the rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from jaxcost.hlo.opcodes import DEFAULT, ELEMENTWISE, FREE, TRANSCENDENTAL, UNKNOWN
from jaxcost.hlo.registry import registrar
from jaxcost.hlo.roles import flop_role
from jaxcost.hlo.text import AboutInstruction, Computation, Instruction, Module, Shape


@dataclass
class OpCost:
    """What one instruction costs. ``flops_by_opcode`` says what the flops are for (opcode or role)."""

    flops: int = 0
    transcendentals: int = 0
    bytes_read: list[int] = field(default_factory=list)
    bytes_written: int = 0
    bytes_other: int = 0
    flops_by_opcode: Counter = field(default_factory=Counter)
    flops_by_source: Counter = field(default_factory=Counter)
    #: The flops of products (dots, convolutions) by the op_name of the instruction that computes them.
    products_by_source: Counter = field(default_factory=Counter)
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bounds: list[str] = field(default_factory=list)

    @property
    def bytes_accessed(self) -> int:
        return sum(self.bytes_read) + self.bytes_written + self.bytes_other

    def absorb(self, other: OpCost, times: int = 1, with_bytes: bool = True, role: str = "", scope: str = "") -> None:
        """Add another cost (a called computation's), `times` over.

        `role` relabels its flops (converts stay) and keeps them on the absorbing op's own source. `scope` is
        the calling instruction's op_name: sources named relative to the called function (a nested ``jit`` in
        the program as written: ``lt`` inside ``jit(_take)``) are put under it.
        """
        self.flops += other.flops * times
        self.transcendentals += other.transcendentals * times
        for opcode, flops in other.flops_by_opcode.items():
            self.flops_by_opcode[role if role and opcode != "convert" else opcode] += flops * times
        if not role:
            for mine, theirs in ((self.flops_by_source, other.flops_by_source),
                                 (self.products_by_source, other.products_by_source)):
                for source, flops in theirs.items():
                    mine[_scoped(scope, source)] += flops * times
        self.unknown.extend(other.unknown)
        self.notes.extend(other.notes)
        self.bounds.extend(other.bounds)
        if with_bytes:
            self.bytes_other += other.bytes_accessed * times


#: The roles of flops that are products: what a layer's multiply-adds become.
PRODUCTS = ("dot", "convolution")


def _own_source(by_source: Counter, flops: int, op_name: str) -> None:
    """Files under ``op_name`` the flops of ``flops`` that no called computation filed under a source of its own."""
    unattributed = flops - sum(by_source.values())
    if unattributed:
        by_source[op_name] += unattributed


def _scoped(scope: str, source: str) -> str:
    """``source`` under the op_name ``scope`` of its caller, unless it is already named from the same root."""
    if not scope or not source or source.startswith(scope.partition("/")[0] + "/"):
        return source
    return f"{scope}/{source}"


@dataclass
class OpRecord(AboutInstruction):
    """One top-level instruction and its cost."""

    instruction: Instruction
    cost: OpCost

    def __repr__(self) -> str:
        return (f"OpRecord({self.name!r}, {self.opcode}, flops={self.cost.flops:,}, "
                f"bytes_accessed={self.cost.bytes_accessed:,})")


Rule = Callable[["Analyzer", Instruction, Computation, OpCost], None]
_RULES: dict[str, Rule] = {}


def _never_dispatched(opcode: str) -> str | None:
    """Why ``Analyzer.cost`` would never call a rule for ``opcode``, or None: it costs free and elementwise
    opcodes without looking for one."""
    for name, opcodes in (("FREE", FREE), ("ELEMENTWISE", ELEMENTWISE)):
        if opcode in opcodes:
            return (f"it is in opcodes.{name}, which Analyzer.cost costs before it looks up a rule (take it out of "
                    f"{name} to give it a rule)")
    return None


#: ``@rule("opcode", ...)`` registers a cost rule; it adjusts the default cost (operands read, output written).
rule = registrar(_RULES, "rule for opcode", _never_dispatched)


def registered_opcodes() -> frozenset[str]:
    """The opcodes that have a rule of their own."""
    return frozenset(_RULES)


class Analyzer:
    """Costs instructions of one module, by XLA's rules or the true count; memoizes called computations."""

    def __init__(self, module: Module, xla_rules: bool, biases: dict[str, set[str]]):
        self.module = module
        self.xla_rules = xla_rules
        self._computation_costs: dict[str, OpCost] = {}
        self.bias_parameters = biases

    def operand_shapes(self, instruction: Instruction, computation: Computation) -> list[Shape]:
        by_name = computation.by_name()
        return [by_name[name].shape for name in instruction.operands]

    def cost(self, instruction: Instruction, computation: Computation) -> OpCost:
        """Cost of one instruction: the default rule, adjusted by the opcode's registered rule."""
        operand_shapes = self.operand_shapes(instruction, computation)
        cost = OpCost(bytes_read=[s.bytes for s in operand_shapes], bytes_written=instruction.shape.bytes)
        opcode = instruction.opcode
        if opcode in FREE:
            cost.bytes_read = [0] * len(operand_shapes)
            cost.bytes_written = 0
        elif opcode in ELEMENTWISE:
            elements = instruction.shape.elements
            if opcode in TRANSCENDENTAL:
                cost.transcendentals = elements
            else:
                cost.flops = elements
                role = flop_role(instruction, computation, self.bias_parameters.get(computation.name, set()))
                cost.flops_by_opcode[role] = elements
        elif opcode in _RULES:
            _RULES[opcode](self, instruction, computation, cost)
        elif opcode not in DEFAULT and not self.xla_rules:
            known = "no rule" if opcode in UNKNOWN else "not in XLA's opcode list"
            cost.unknown.append(f"{instruction.name} ({opcode}: {known}; its bytes by XLA's default, its flops not "
                                "counted)")
        _own_source(cost.flops_by_source, cost.flops, instruction.op_name)
        _own_source(cost.products_by_source, sum(cost.flops_by_opcode[role] for role in PRODUCTS), instruction.op_name)
        return cost

    def computation_cost(self, name: str) -> OpCost:
        """Summed cost of a called computation (memoized: a computation costs the same wherever called)."""
        if name not in self._computation_costs:
            computation = self.module.computations[name]
            total = OpCost()
            for instruction in computation.instructions:
                cost = self.cost(instruction, computation)
                total.absorb(cost, with_bytes=False)
                total.bytes_other += cost.bytes_accessed
            self._computation_costs[name] = total
        return self._computation_costs[name]
