"""What XLA's optimizations changed in a program's arithmetic: flops per source operation (the ``op_name``
JAX gives each operation: module path and primitive), in the program as JAX wrote it and as XLA compiled it.

Fusion copies a cheap producer into each consumer it feeds (an elementwise chain before two reductions is
computed twice); the algebraic simplifier folds or merges operations (``min(max(x, 0), 6)`` becomes one
``clamp``); a reduction may be split in two stages. The rewrites add up exactly to the difference between
the two programs' flops.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from jaxcost.hlo.program import Recount
from jaxcost.hlo.rules import OpRecord


@dataclass(frozen=True)
class Rewrite:
    """The flops of one source operation before and after XLA's optimizations."""

    op_name: str
    flops_written: int
    flops_compiled: int

    @property
    def flops_delta(self) -> int:
        return self.flops_compiled - self.flops_written

    @property
    def explanation(self) -> str:
        written, compiled = self.flops_written, self.flops_compiled
        if not compiled:
            return "removed: folded into another operation or simplified away"
        if not written:
            return "added by the compiler" + (": instructions of its own, such as a reduction split in two "
                                              "stages" if self.op_name == NAMELESS else "")
        if compiled > written:
            times = f"{compiled // written} times" if compiled % written == 0 else f"{compiled / written:.3g}x"
            return f"computed {times} as often as written: copied into each fusion that consumes it"
        return f"reduced to {compiled / written:.3g}x of what is written: simplified by the compiler"

    def __str__(self) -> str:
        return f"{self.op_name}: {self.flops_delta:+,} flops ({self.explanation})"


#: The source of flops that no operation of the program as written issued, and whose instruction has no
#: metadata (a reduction the compiler splits in two stages, say).
NAMELESS = "(no metadata)"


def flops_by_source(program: Recount, keep: Callable[[OpRecord, str], bool] | None = None) -> Counter:
    """The program's flops by the ``op_name`` of the operation that issued them: an instruction inside a
    fusion that lost its metadata counts under the fusion's (``NAMELESS`` where neither has one). ``keep``
    (top-level instruction, source) chooses which flops count."""
    flops: Counter = Counter()
    for op in program.ops:
        for source, amount in op.cost.flops_by_source.items():
            if keep is None or keep(op, source):
                flops[source or op.instruction.op_name or NAMELESS] += amount
    return flops


def rewrites(written: Counter, compiled: Counter) -> list[Rewrite]:
    """Each source operation whose flops differ between the program as written and as compiled (flops by
    source, as ``flops_by_source`` gives them), largest change first; their deltas add up to the difference
    of the two totals."""
    changed = [Rewrite(name, written[name], compiled[name]) for name in set(written) | set(compiled)
               if written[name] != compiled[name]]
    return sorted(changed, key=lambda rewrite: (-abs(rewrite.flops_delta), rewrite.op_name))
