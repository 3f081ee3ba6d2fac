"""The recount of a whole program: every top-level instruction of the entry computation costed, the
true counts and XLA's rules side by side, and XLA's float32 totals reproduced.

Summed as XLA sums (float32, in its visiting order), the costs by XLA's rules reproduce XLA's reported
totals exactly; the true counts are what the program really does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from jaxcost.hlo.buffers import BufferTraffic, InnerTraffic, entry_buffers, traffic_inside
from jaxcost.hlo.roles import bias_parameters
from jaxcost.hlo.rules import Analyzer, OpCost, OpRecord
from jaxcost.hlo.text import POINTER_BYTES, Computation, Instruction, Module, Sizes, parse_module
from jaxcost.hlo.xla_sums import XlaSums
from jaxcost.reports.program import ops_table


def _sum(records: list[OpRecord], key: str) -> int:
    return sum(getattr(record.cost, key) for record in records)


class OpRecords(list[OpRecord]):
    """A program's records, in program order; its repr gives each its own line."""

    def __repr__(self) -> str:
        return "[" + ",\n ".join(map(repr, self)) + "]"


@dataclass
class Recount:
    """The op-by-op recount of a program's entry computation: true counts, and XLA's rules beside them.

    ``ops`` hold the true counts (library calls recounted, loops times their trip counts);
    ``xla_ops`` the same instructions costed by XLA's rules (-1 for library calls, loop bodies once).
    """

    module: Module
    ops: OpRecords
    xla_rules: Analyzer = field(repr=False)

    def __repr__(self) -> str:
        return (f"Recount({len(self.ops)} instructions, flops={self.flops:,}, "
                f"transcendentals={self.transcendentals:,}, bytes_accessed={self.bytes_accessed:,})")

    def __str__(self) -> str:
        moving = sum(1 for op in self.ops if op.cost.flops or op.cost.bytes_accessed)
        return f"{self!r}; the {moving} that compute or move data:\n{ops_table(self.ops)}"

    @cached_property
    def _xla_costs(self) -> dict[tuple[str, str], OpCost]:
        """Each instruction's cost by XLA's rules, worked out once for the entry's records and all three sums."""
        return {}

    def _xla_cost(self, instruction: Instruction, computation: Computation) -> OpCost:
        where = (computation.name, instruction.name)
        if where not in self._xla_costs:
            self._xla_costs[where] = self.xla_rules.cost(instruction, computation)
        return self._xla_costs[where]

    @cached_property
    def xla_ops(self) -> OpRecords:
        entry = self.module.entry
        return OpRecords(OpRecord(i, self._xla_cost(i, entry)) for i in entry.instructions)

    @cached_property
    def xla_sums(self) -> XlaSums:
        return XlaSums(self.module.computations,
                       lambda instruction, computation, key: getattr(self._xla_cost(instruction, computation), key))

    @cached_property
    def buffers(self) -> list[BufferTraffic]:
        """Each entry buffer's bytes moved against the fully fused ideal, in program order."""
        return entry_buffers(self.module.entry, self.ops)

    @property
    def inner_traffic(self) -> list[InnerTraffic]:
        """Bytes top-level instructions move inside called computations, tuples and fusions' constants."""
        return traffic_inside(self.ops)

    @property
    def flops(self) -> int:
        return _sum(self.ops, "flops")

    @property
    def transcendentals(self) -> int:
        return _sum(self.ops, "transcendentals")

    @property
    def bytes_accessed(self) -> int:
        return _sum(self.ops, "bytes_accessed")

    @property
    def bytes_arguments_and_results(self) -> int:
        """Every argument read once and every result written once: the fully fused minimum of traffic."""
        entry = self.module.entry
        return sum(p.shape.bytes for p in entry.parameters()) + sum(o.shape.bytes for o in entry.outputs())

    @cached_property
    def padding(self) -> list[tuple[str, str, int]]:
        """Tile padding (TPU layouts) in the program's tensors, its parameters and what its instructions produce:
        (instruction, shape, padding bytes) for each that carries some, largest first; none without tiles."""
        found = [(instruction.name, str(leaf), leaf.padding_bytes) for instruction in self.module.entry.instructions
                 if instruction.opcode not in ("bitcast", "get-tuple-element", "tuple")
                 for leaf in instruction.shape.leaves() if leaf.padding_bytes]
        return sorted(found, key=lambda item: -item[2])

    @property
    def unknown(self) -> list[str]:
        """What even the recount does not know: unknown custom calls, loops of unknown trip count."""
        return [name for op in self.ops for name in op.cost.unknown]

    @property
    def xla_unknown(self) -> list[str]:
        """The instructions XLA counts as -1 (custom calls), whose -1 it adds into its totals."""
        return [name for op in self.xla_ops for name in op.cost.unknown]

    @property
    def bounds(self) -> list[str]:
        """Where the executed work depends on data and the recount takes the most it can be (conditionals)."""
        return [bound for op in self.ops for bound in op.cost.bounds]

    @property
    def notes(self) -> list[str]:
        return [note for op in self.ops for note in op.cost.notes]

    def xla_rule_total(self, key: str) -> int:
        """The exact sum by XLA's rules (-1 per library call, loop bodies once)."""
        return _sum(self.xla_ops, key)

    def as_xla_sums(self, key: str) -> float:
        """The total as XLA accumulates it: float32 values, summed in XLA's own visiting order."""
        return float(self.xla_sums.total(self.module.entry, key))




def recount(module: Module | str, sizes: Sizes | int = POINTER_BYTES) -> Recount:
    """Cost every top-level instruction of a module (or its HLO text): true counts and XLA's rules. Shapes are
    sized by ``sizes`` (``targets.sizes`` for a TPU; an int: the pointer bytes of a CPU's or GPU's tuple table)."""
    if isinstance(module, str):
        module = parse_module(module, sizes)
    entry = module.entry
    biases = bias_parameters(module)
    true = Analyzer(module, xla_rules=False, biases=biases)
    return Recount(module, OpRecords(OpRecord(i, true.cost(i, entry)) for i in entry.instructions),
                   Analyzer(module, xla_rules=True, biases=biases))
