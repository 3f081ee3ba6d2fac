"""XLA's totals as XLA itself adds them up: float32 values, summed in XLA's visiting order.

HloCostAnalysis keeps every property as a float32 and accumulates instruction by instruction in a
post-order walk from each computation's root (unreachable roots first); a fusion's, loop's or
call's value is itself such a sum over its called computation. Above 2**24 the order and the
rounding decide the last bits of the reported total, so they are reproduced here exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from jaxcost.hlo.fusions import indexed_access
from jaxcost.hlo.text import Computation, Instruction

#: Opcodes whose value is a sum over called computations, and which attribute names them.
_CALLED = {"fusion": ("calls",), "while": ("body", "condition"), "call": ("to_apply",), "async-start": ("calls",),
          "call-start": ("to_apply",)}


def post_order(computation: Computation) -> Iterator[Instruction]:
    """XLA's visiting order: unreachable roots first, then the root; operands before users, in operand order."""
    by_name = computation.by_name()
    visited: set[str] = set()
    unreachable = [i for i in computation.instructions if not i.users and not i.is_root]
    for start in [*unreachable, computation.root]:
        stack: list[tuple[Instruction, bool]] = [(start, False)]
        while stack:
            instruction, expanded = stack.pop()
            if instruction.name in visited:
                continue
            if expanded:
                visited.add(instruction.name)
                yield instruction
                continue
            stack.append((instruction, True))
            for operand in reversed(instruction.operands):
                if operand in by_name and operand not in visited:
                    stack.append((by_name[operand], False))


class XlaSums:
    """Float32 totals of a module, reproducing XLA's accumulation; ``value`` gives one instruction's int value."""

    def __init__(self, computations: dict[str, Computation], value: Callable[[Instruction, Computation, str], int]):
        self.computations = computations
        self.value = value
        self._totals: dict[tuple[str, str], np.float32] = {}

    def total(self, computation: Computation, key: str) -> np.float32:
        cached = self._totals.get((computation.name, key))
        if cached is not None:
            return cached
        total = np.float32(0)
        for instruction in post_order(computation):
            total = np.float32(total + self._instruction(instruction, computation, key))
        self._totals[(computation.name, key)] = total
        return total

    def _instruction(self, instruction: Instruction, computation: Computation, key: str) -> np.float32:
        attributes = _CALLED.get(instruction.opcode, ())
        summed_over_calls = bool(attributes) and (key != "bytes_accessed" or instruction.opcode != "fusion")
        called = instruction.called("calls")
        if instruction.opcode == "fusion" and indexed_access(instruction, self.computations[called[0]]):
            summed_over_calls = False  # costed as its gather or scatter alone
        if instruction.opcode == "call" and "to_apply" not in instruction.attributes:
            attributes = ("calls",)
        if summed_over_calls:
            total = np.float32(0)
            for attribute in attributes:
                for name in instruction.called(attribute):
                    total = np.float32(total + self.total(self.computations[name], key))
            return total
        return np.float32(self.value(instruction, computation, key))
