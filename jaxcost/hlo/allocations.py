"""XLA's buffer assignment of a compiled program, read from the files ``xla_dump_to`` writes for it: every
allocation and the values it holds (``*-buffer-assignment.txt``), and when each value is live
(``*-live-range.txt``).

An allocation is a block of device memory the program needs: a parameter (the caller's buffer), an
output, a constant, a thread-local scratch or the preallocated temporary block that holds the program's
intermediate values at their offsets. A value is one array an instruction defines (a tuple has one per
element, and its pointer table); its live range is the span of the instruction sequence in which it must
be kept.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_ALLOCATION = re.compile(r"^allocation (\d+): size (\d+)(.*):$")
_VALUE = re.compile(r"^ value: <(\d+) (\S+?)(\{[\d,]*\})?( \(phi\))?(?: @(\d+))?> "
                    r"\(size=(\d+),offset=(\d+)\): (.*)$")
_PARAMETER = re.compile(r"parameter (\d+), shape \|.*\| at ShapeIndex (\{[\d,]*\})")
_COLOR = re.compile(r"color (\d+)")
_SEQUENCE = re.compile(r"^    (\d+):(\S+)$")
_RANGE = re.compile(r"^    (\S+\{[\d,]*\}):(\d+)-(\d+)$")
_PEAK = re.compile(r"^  Live ranges at (\d+) \(peak\):$")
_PEAK_VALUE = re.compile(r"^    (\S+\{[\d,]*\}): (\d+) bytes")

#: What an allocation is for, from the flags XLA prints after its size.
KINDS = ("parameter", "output", "constant", "thread-local", "temporary")


@dataclass(frozen=True)
class Value:
    """One array (or tuple table) an instruction defines, where XLA placed it."""

    id: int
    instruction: str
    index: str
    phi: bool
    color: int
    bytes: int
    offset: int
    shape: str
    allocation: int

    @property
    def key(self) -> str:
        """The value's name in the live-range file: its instruction and shape index (``while.3{1}``)."""
        return f"{self.instruction}{self.index}"


@dataclass(frozen=True)
class Allocation:
    """A block of memory: its size, what it is for and the values placed in it.

    ``parameter`` is the entry parameter's number for a parameter's block (else None); ``live_out`` says
    that the block outlives the program (an output, or a parameter an output aliases).
    """

    index: int
    bytes: int
    kind: str
    color: int
    live_out: bool
    parameter: int | None
    parameter_index: str
    values: tuple[Value, ...]

    @property
    def is_aliased(self) -> bool:
        """A parameter's block that an output reuses (a donated argument)."""
        return self.parameter is not None and self.live_out


def _kind(flags: str) -> str:
    if "parameter " in flags:
        return "parameter"
    if "constant" in flags:
        return "constant"
    if "thread-local" in flags:
        return "thread-local"
    if "maybe-live-out" in flags:
        return "output"
    return "temporary"


def _value(match: re.Match, allocation: int) -> Value:
    ident, name, index, phi, color, size, offset, shape = match.groups()
    return Value(int(ident), name, index or "{}", bool(phi), int(color or 0), int(size), int(offset), shape,
                 allocation)


def parse_buffer_assignment(text: str) -> list[Allocation]:
    """The allocations of a ``*-buffer-assignment.txt`` file (or its ``BufferAssignment:`` part), in its order."""
    allocations: list[Allocation] = []
    header: re.Match | None = None
    values: list[Value] = []

    def close() -> None:
        if header is not None:
            number, size, flags = header.groups()
            parameter = _PARAMETER.search(flags)
            color = _COLOR.search(flags)
            allocations.append(Allocation(
                int(number), int(size), _kind(flags), int(color.group(1)) if color else 0, "maybe-live-out" in flags,
                int(parameter.group(1)) if parameter else None, parameter.group(2) if parameter else "",
                tuple(values)))

    for line in text.splitlines():
        match = _ALLOCATION.match(line)
        if match:
            close()
            header, values = match, []
            continue
        match = _VALUE.match(line)
        if match and header is not None:
            values.append(_value(match, int(header.group(1))))
        elif header is not None and line and not line.startswith(" "):
            break
    close()
    if not allocations:
        raise ValueError("buffer assignment: no 'allocation N: size B' line found")
    return allocations


@dataclass(frozen=True)
class LiveRanges:
    """When each value is live: the instruction sequence XLA scheduled, and each value's first and last step
    (both included), by ``Value.key``. ``stated_peak`` is XLA's own peak step (or -1 when it printed none)."""

    sequence: tuple[str, ...]
    ranges: dict[str, tuple[int, int]]
    stated_peak: int
    stated_peak_values: tuple[str, ...]


def parse_live_ranges(text: str) -> LiveRanges:
    """A ``*-live-range.txt`` file."""
    sequence: list[str] = []
    ranges: dict[str, tuple[int, int]] = {}
    peak, peak_values = -1, []
    for line in text.splitlines():
        if match := _PEAK.match(line):
            peak = int(match.group(1))
        elif peak >= 0 and (match := _PEAK_VALUE.match(line)):
            peak_values.append(match.group(1))
        elif match := _RANGE.match(line):
            ranges[match.group(1)] = (int(match.group(2)), int(match.group(3)))
        elif match := _SEQUENCE.match(line):
            sequence.append(match.group(2))
    if not ranges:
        raise ValueError("live ranges: no 'name{index}:start-end' line found")
    return LiveRanges(tuple(sequence), ranges, peak, tuple(peak_values))


@dataclass(frozen=True)
class BufferAssignment:
    """A compiled program's allocations and its values' live ranges."""

    allocations: tuple[Allocation, ...]
    live: LiveRanges

    @property
    def values(self) -> list[Value]:
        return [value for allocation in self.allocations for value in allocation.values]

    @property
    def total_bytes(self) -> int:
        """Every allocation's size: XLA's 'Total bytes used'."""
        return sum(allocation.bytes for allocation in self.allocations)

    def bytes_by_kind(self, color: int = 0) -> Counter:
        """Allocated bytes in one memory space by what they are for (``KINDS``); ``aliased`` counts a
        parameter's block that an output reuses (it is also under ``parameter``)."""
        by_kind: Counter = Counter()
        for allocation in self.allocations:
            if allocation.color == color:
                by_kind[allocation.kind] += allocation.bytes
                by_kind["aliased"] += allocation.bytes if allocation.is_aliased else 0
                by_kind["live_out"] += allocation.bytes if allocation.live_out else 0
        return by_kind

    def live_bytes(self, color: int = 0) -> list[int]:
        """Bytes of one memory space held by live values at each step of the sequence. Values in the same block
        of an allocation (same offset and size: a loop's state and its result, an operation done in place) hold it
        once."""
        steps = max((end for _, end in self.live.ranges.values()), default=-1) + 1
        starting: list[list[tuple[int, int, int]]] = [[] for _ in range(steps + 1)]
        ending: list[list[tuple[int, int, int]]] = [[] for _ in range(steps + 1)]
        for value in self.values:
            if value.color == color and value.key in self.live.ranges:
                start, end = self.live.ranges[value.key]
                block = (value.allocation, value.offset, value.bytes)
                starting[start].append(block)
                ending[end + 1].append(block)
        holders: Counter = Counter()
        total, live = 0, []
        for step in range(steps):
            for block in ending[step]:
                holders[block] -= 1
                total -= block[2] if holders[block] == 0 else 0
            for block in starting[step]:
                total += block[2] if holders[block] == 0 else 0
                holders[block] += 1
            live.append(total)
        return live

    def peak_step(self, color: int = 0) -> int:
        """The first step at which the live bytes of one memory space are highest."""
        live = self.live_bytes(color)
        return live.index(max(live)) if live else -1

    def live_at(self, step: int, color: int = 0) -> list[Value]:
        """The values of one memory space live at ``step``, largest first."""
        live = [value for value in self.values if value.color == color and value.key in self.live.ranges
                and self.live.ranges[value.key][0] <= step <= self.live.ranges[value.key][1]]
        return sorted(live, key=lambda value: (-value.bytes, value.id))


def read_dump(folder: str | Path) -> BufferAssignment:
    """The buffer assignment of the one optimized program XLA dumped into ``folder``."""
    folder = Path(folder)
    found = sorted(folder.glob("*after_optimizations-buffer-assignment.txt"))
    if len(found) != 1:
        raise ValueError(f"dump: expected one '*after_optimizations-buffer-assignment.txt' in {folder}, "
                         f"found {len(found)}")
    live = found[0].with_name(found[0].name.replace("-buffer-assignment.txt", "-live-range.txt"))
    return BufferAssignment(tuple(parse_buffer_assignment(found[0].read_text())),
                            parse_live_ranges(live.read_text()))
