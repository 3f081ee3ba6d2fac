"""The collectives of a compiled program: each all-reduce, all-gather, reduce-scatter, all-to-all and
collective-permute (sync, or an async ``-start``/``-done`` pair counted at its start, or wrapped in an
``async-start``), with its groups, the bytes it moves per device, and how often it runs (the trip counts of
the loops around it).

Per device, for a group of ``n`` devices, ``payload_bytes`` is the buffer a collective is about (the
reduced buffer of an all-reduce, the gathered output of an all-gather, the input of a reduce-scatter or
an all-to-all, the sent buffer of a permute) and ``wire_bytes`` what each device sends over its links
under the usual ring algorithms (NVIDIA nccl-tests, doc/PERFORMANCE.md, "bus bandwidth"): all-reduce
``2(n-1)/n`` of the payload (a reduce-scatter, then an all-gather), all-gather, reduce-scatter and all-to-all
``(n-1)/n`` (each device holds or keeps its own ``1/n``), collective-permute the whole payload (one send).
Fractions of a byte are rounded up.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from jaxcost.hlo.loops import loop_trips
from jaxcost.hlo.text import Computation, Instruction, Module

#: The collective of each opcode (an async pair's ``-start`` stands for the pair).
KINDS = {
    "all-reduce": "all-reduce", "all-reduce-start": "all-reduce",
    "all-gather": "all-gather", "all-gather-start": "all-gather",
    "reduce-scatter": "reduce-scatter",
    "all-to-all": "all-to-all", "ragged-all-to-all": "all-to-all",
    "collective-permute": "collective-permute", "collective-permute-start": "collective-permute",
    "collective-broadcast": "collective-broadcast",
}
#: The computations an instruction runs that may hold collectives (fusions and reducers hold none).
_CALLED = {"while": ("body", "condition"), "call": ("to_apply",), "async-start": ("calls",),
           "conditional": ("branch_computations", "true_computation", "false_computation")}
#: Wire bytes per payload byte for a group of n, as (numerator factor of (n-1), over n).
_RING_FACTOR = {"all-reduce": 2, "all-gather": 1, "reduce-scatter": 1, "all-to-all": 1}
#: Where each factor comes from.
WIRE_SOURCE = "NVIDIA nccl-tests doc/PERFORMANCE.md (bus bandwidth of ring algorithms)"


@dataclass(frozen=True)
class Collective:
    """One collective instruction of a program, per device."""

    name: str
    kind: str
    #: The device groups that run it together (replica groups, or a permute's source-target pairs).
    groups: tuple[tuple[int, ...], ...]
    payload_bytes: int
    #: Executions per run of the program: the trip counts of the loops around it (None inside a loop of unknown
    #: trip count or a conditional's branch, which runs only when taken).
    count: int | None
    op_name: str = ""
    #: What a reducing collective combines with (the opcode of its reducer: ``add``, ``maximum``, ...).
    reducer: str = ""
    #: Elements of the payload (its bytes over its element size).
    elements: int = 0

    @property
    def group_size(self) -> int:
        """Devices in each group (a permute: 2, a sender and a receiver)."""
        return 2 if self.kind == "collective-permute" else len(self.groups[0])

    @property
    def wire_bytes(self) -> int:
        """Bytes each device sends, per execution."""
        n = self.group_size
        if self.kind in _RING_FACTOR:
            return -(-_RING_FACTOR[self.kind] * (n - 1) * self.payload_bytes // n) if n > 1 else 0
        return self.payload_bytes

    @property
    def wire_bytes_total(self) -> int | None:
        """Bytes each device sends per run of the program (None inside a loop of unknown count)."""
        return self.wire_bytes * self.count if self.count is not None else None

    @property
    def payload_bytes_total(self) -> int | None:
        return self.payload_bytes * self.count if self.count is not None else None

    def as_dict(self) -> dict:
        """The record as JSON-ready values."""
        return {"name": self.name, "kind": self.kind, "groups": [list(group) for group in self.groups],
                "payload_bytes": self.payload_bytes, "wire_bytes": self.wire_bytes, "count": self.count}

    def __repr__(self) -> str:
        return (f"Collective({self.name!r}, {self.kind}, group_size={self.group_size}, "
                f"payload_bytes={self.payload_bytes:,}, wire_bytes={self.wire_bytes:,}, count={self.count})")


def parse_groups(text: str) -> tuple[tuple[int, ...], ...]:
    """Replica groups as HLO text prints them: ``{{0,1},{2,3}}``; the iota form ``[2,4]<=[8]`` and
    ``[2,4]<=[4,2]T(1,0)`` (the device ids 0..n-1 laid out as the second shape, transposed, reshaped to the
    first: one group per row); or the mesh form ``mesh['axis_0'=2,'axis_1'=4] {'axis_0'}`` (devices laid out
    row-major on the named axes; a group is the devices that differ only along the axes in braces). ``{}``
    (every device in one group) gives no groups."""
    text = text.strip()
    meshed = re.fullmatch(r"mesh\[([^\]]*)\]\s*\{([^}]*)\}", text)
    if meshed:
        axes = [(name, int(size)) for name, size in re.findall(r"'([^']+)'=(\d+)", meshed.group(1))]
        grouped = set(re.findall(r"'([^']+)'", meshed.group(2)))
        names = [name for name, _ in axes]
        order = [axis for axis, name in enumerate(names) if name not in grouped] + \
                [axis for axis, name in enumerate(names) if name in grouped]
        dims = [size for _, size in axes]
        ids = _transposed(list(range(math.prod(dims))), dims, order)
        size = math.prod(size for name, size in axes if name in grouped)
        return tuple(tuple(ids[start:start + size]) for start in range(0, len(ids), size))
    iota = re.fullmatch(r"\[([\d,]+)\]<=\[([\d,]+)\](?:T\(([\d,]+)\))?", text)
    if iota:
        shape = [int(d) for d in iota.group(1).split(",")]
        dims = [int(d) for d in iota.group(2).split(",")]
        order = [int(d) for d in iota.group(3).split(",")] if iota.group(3) else list(range(len(dims)))
        ids = _transposed(list(range(math.prod(dims))), dims, order)
        size = shape[-1]
        return tuple(tuple(ids[start:start + size]) for start in range(0, len(ids), size))
    return tuple(tuple(int(number) for number in group.split(",") if number.strip())
                 for group in re.findall(r"\{([\d,\s]*)\}", text) if group.strip())


def _transposed(values: list[int], dims: list[int], order: list[int]) -> list[int]:
    """``values`` laid out row-major in ``dims``, read back in the axis order ``order``."""
    strides = [math.prod(dims[axis + 1:]) for axis in range(len(dims))]
    shape = [dims[axis] for axis in order]
    result = []
    for flat in range(math.prod(shape)):
        index, rest = 0, flat
        for position in reversed(range(len(shape))):
            rest, coordinate = divmod(rest, shape[position])
            index += coordinate * strides[order[position]]
        result.append(values[index])
    return result


def _payload_bytes(kind: str, instruction: Instruction, computation: Computation) -> int:
    """The buffer the collective is about, per device (see the module docstring)."""
    by_name = computation.by_name()
    operands = [by_name[name].shape for name in instruction.operands if name in by_name]
    leaves = instruction.shape.leaves()
    if kind == "all-reduce":
        return sum(leaf.bytes for leaf in leaves)
    if kind == "all-gather":  # an async start's result holds its inputs, then its outputs
        outputs = leaves[len(leaves) // 2:] if instruction.opcode.endswith("-start") else leaves
        return sum(leaf.bytes for leaf in outputs)
    if kind == "collective-permute":  # further operands of an in-place permute are offsets
        return operands[0].bytes if operands else 0
    return sum(shape.bytes for shape in operands)


def _groups(instruction: Instruction) -> tuple[tuple[int, ...], ...]:
    if "source_target_pairs" in instruction.attributes:
        return parse_groups(instruction.attribute("source_target_pairs"))
    return parse_groups(instruction.attribute("replica_groups", "{}"))


def collectives(module: Module, devices: int = 1) -> list[Collective]:
    """Every collective of the program, in program order, with its count per run of the entry computation.
    A collective that names no groups runs over all ``devices`` of the program."""
    found: list[Collective] = []
    everyone = (tuple(range(devices)),)

    def visit(computation: Computation, times: int | None) -> None:
        for instruction in computation.instructions:
            kind = KINDS.get(instruction.opcode)
            if kind is not None:
                reducers = [module.computations[name].root.opcode for name in instruction.called("to_apply")
                            if name in module.computations]
                payload = _payload_bytes(kind, instruction, computation)
                leaf = instruction.shape.leaves()[-1]
                elements = payload * leaf.elements // leaf.bytes if leaf.bytes else 0
                found.append(Collective(instruction.name, kind, _groups(instruction) or everyone, payload, times,
                                        instruction.op_name, reducers[0] if reducers else "", elements))
                continue
            inner_times = times
            if instruction.opcode == "while":
                trips = loop_trips(module, instruction, computation)
                inner_times = times * trips if times is not None and trips is not None else None
            elif instruction.opcode == "conditional":
                inner_times = None  # a branch runs only when it is taken
            for key in _CALLED.get(instruction.opcode, ()):
                for name in instruction.called(key):
                    visit(module.computations[name], inner_times)

    visit(module.entry, 1)
    return found
