"""Buffer traffic of a program's entry computation: for each buffer, the bytes moved to and from it
against the fully fused ideal (an argument read once, a result written once, nothing else touched).

A buffer is named by the instruction that defines it; bitcasts, tuple elements and transposes that
move nothing are the same buffer as their operand (its alias root). Bytes an instruction moves inside
a called computation (a loop body, a fusion's constants, a tuple's pointer table) belong to no entry
buffer and are listed apart.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from jaxcost.hlo.rules import OpRecord
from jaxcost.hlo.text import AboutInstruction, Computation, Instruction


@dataclass(frozen=True)
class BufferTraffic(AboutInstruction):
    """Bytes moved to and from one buffer of the entry computation, against the ideal.

    ``users`` are the top-level instructions that read or wrote it, in program order;
    ``writer_roles`` what the flops of the instruction that wrote it are for (empty for an argument
    or a constant); ``reader_roles`` the same for every instruction that read it.
    """

    instruction: Instruction
    bytes_moved: int
    bytes_ideal: int
    users: tuple[str, ...]
    writer_roles: frozenset[str]
    reader_roles: frozenset[str]

    @property
    def bytes_excess(self) -> int:
        """Moved minus ideal: positive when read back or re-read, negative when only partly read."""
        return self.bytes_moved - self.bytes_ideal

    @property
    def is_argument_or_result(self) -> bool:
        return self.bytes_ideal > 0

    @property
    def readers(self) -> tuple[str, ...]:
        return tuple(name for name in self.users if name != self.name)


@dataclass(frozen=True)
class InnerTraffic:
    """Bytes one top-level instruction moves that belong to no entry buffer.

    ``source`` is ``tuple`` (a tuple's pointer table), ``constants`` (read inside a fusion),
    ``library`` (an unknown custom call) or ``called`` (traffic inside a loop body or called computation).
    """

    op: str
    opcode: str
    source: str
    bytes: int


def alias_root(instruction: Instruction, by_name: dict[str, Instruction], records: dict[str, OpRecord]) -> str:
    """The instruction whose buffer ``instruction`` is: through bitcasts, tuple elements and free transposes."""
    while True:
        record = records.get(instruction.name)
        passes_through = instruction.opcode in ("bitcast", "get-tuple-element") or (
            instruction.opcode == "transpose" and record is not None and record.cost.bytes_accessed == 0)
        if not passes_through or instruction.operands[0] not in by_name:
            return instruction.name
        instruction = by_name[instruction.operands[0]]


def _roles(record: OpRecord | None) -> frozenset[str]:
    return frozenset(record.cost.flops_by_opcode) if record is not None else frozenset()


def entry_buffers(entry: Computation, ops: list[OpRecord]) -> list[BufferTraffic]:
    """Every buffer that is touched or is an argument or result, in program order."""
    by_name = entry.by_name()
    records = {op.name: op for op in ops}
    moved: Counter = Counter()
    users: dict[str, list[str]] = defaultdict(list)
    for op in ops:
        if op.cost.bytes_written:
            moved[op.name] += op.cost.bytes_written
            users[op.name].append(op.name)
        for operand, read in zip(op.instruction.operands, op.cost.bytes_read):
            if read:
                buffer = alias_root(by_name[operand], by_name, records)
                moved[buffer] += read
                users[buffer].append(op.name)
    ideal: Counter = Counter()
    for parameter in entry.parameters():
        ideal[parameter.name] += parameter.shape.bytes
    for output in entry.outputs():
        ideal[alias_root(output, by_name, records)] += output.shape.bytes
    position = {name: index for index, name in enumerate(by_name)}
    result = []
    for name in sorted(set(moved) | set(ideal), key=position.__getitem__):
        readers = [reader for reader in users[name] if reader != name]
        reader_roles = frozenset().union(*(_roles(records.get(reader)) for reader in readers))
        writer = records.get(name) if by_name[name].opcode not in ("parameter", "constant") else None
        result.append(BufferTraffic(by_name[name], moved[name], ideal[name], tuple(users[name]), _roles(writer),
                                    reader_roles))
    return result


_INNER_SOURCE = {"tuple": "tuple", "fusion": "constants", "custom-call": "library"}


def traffic_inside(ops: list[OpRecord]) -> list[InnerTraffic]:
    """What each top-level instruction moves beyond its own operands and result."""
    return [InnerTraffic(op.name, op.opcode, _INNER_SOURCE.get(op.opcode, "called"), op.cost.bytes_other)
            for op in ops if op.cost.bytes_other]
