"""jaxcost's collectives beside ``jax.experimental.roofline``'s ``ici_bytes`` for the same shard_map
program: roofline's rules (``jax/experimental/roofline/rooflines.py``) applied to the compiled program's
collectives reproduce its figure per mesh axis, and each difference from jaxcost's wire bytes is an item.

roofline estimates, per device and per collective: a ring per axis in phases, the shard divided among
the axes (all-gather, reduce-scatter; psum twice), the whole estimate under each axis it spans (the
busiest axis bounds the time); an all-to-all by the torus's bisection (``n·input / 2 / b``, ``b`` = 2 when
an axis is longer than 2); a permute by the most transfers that share one link on the torus, times the
payload. It counts a loop's body once. jaxcost counts one ring over the whole group (``hlo.collectives``),
one send per permute, and every trip of a loop.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from jaxcost.hlo.collectives import Collective
from jaxcost.mesh.axes import coordinates, spanned_axes
from jaxcost.reports.text import table


@dataclass(frozen=True)
class IciItem:
    """One collective: roofline's estimate (its body once) against jaxcost's wire bytes per step."""

    name: str
    kind: str
    axes: tuple[str, ...]
    roofline_bytes: int
    jaxcost_bytes: int
    reason: str

    @property
    def bytes_delta(self) -> int:
        return self.jaxcost_bytes - self.roofline_bytes


@dataclass(frozen=True)
class RooflineComparison:
    """roofline's ``ici_bytes`` per axis, reproduced from the collectives, and jaxcost's figure itemized."""

    roofline_ici_bytes: dict[str, int]
    reproduced_ici_bytes: dict[str, int]
    items: list[IciItem]

    @property
    def reproduced(self) -> bool:
        """roofline's rules on the compiled program's collectives give its figures, axis by axis."""
        return {axis: value for axis, value in self.roofline_ici_bytes.items() if value} == \
            {axis: value for axis, value in self.reproduced_ici_bytes.items() if value}

    @property
    def jaxcost_bytes(self) -> int:
        return sum(item.jaxcost_bytes for item in self.items)

    @property
    def roofline_bytes(self) -> int:
        """roofline's estimate summed over collectives (a collective over two axes counted once)."""
        return sum(item.roofline_bytes for item in self.items)

    def __str__(self) -> str:
        rows = [[item.name, item.kind, ",".join(item.axes), f"{item.roofline_bytes:,}", f"{item.jaxcost_bytes:,}",
                 f"{item.bytes_delta:+,}", item.reason] for item in self.items]
        verdict = "reproduced" if self.reproduced else f"NOT reproduced (rules give {self.reproduced_ici_bytes})"
        return "\n".join([
            table(["collective", "kind", "axes", "roofline", "jaxcost", "delta", "why"], rows),
            f"roofline ici_bytes {self.roofline_ici_bytes}: {verdict}; jaxcost {self.jaxcost_bytes:,} B per device "
            f"per step = roofline {self.roofline_bytes:,} {self.jaxcost_bytes - self.roofline_bytes:+,} (the items)",
        ])


def _ring(input_bytes: float, sizes: list[int], reduce: bool) -> int:
    """roofline's ring in phases, one per axis, longest first."""
    shard = input_bytes / math.prod(sizes) if reduce else input_bytes
    shard //= len(sizes)
    total = 0.0
    for size in sorted(sizes, reverse=True):
        total += shard * (size - 1)
        shard *= size
    return int(total)


def _all_to_all(input_bytes: int, sizes: list[int]) -> int:
    smallest = min(sizes)
    bisection = smallest ** (len(sizes) - 1) * (2 if smallest > 2 else 1)
    return int(input_bytes * math.prod(sizes) / 2 / bisection)


def _permute(record: Collective, where: dict[int, tuple[int, ...]], names: Sequence[str],
             shape: dict[str, int]) -> int:
    """The payload times the most transfers sharing one link, each taking the shorter way round each axis."""
    sharing: Counter = Counter()
    for source, target in record.groups:
        position, goal = list(where[source]), where[target]
        for axis, name in enumerate(names):
            size = shape[name]
            forward = (goal[axis] - position[axis]) % size
            step = 1 if forward <= (position[axis] - goal[axis]) % size else -1
            while position[axis] != goal[axis]:
                here = tuple(position)
                position[axis] = (position[axis] + step) % size
                sharing[tuple(sorted((here, tuple(position))))] += 1
    return record.payload_bytes * max(sharing.values(), default=0)


def _rule(record: Collective, axes: tuple[str, ...], where: dict[int, tuple[int, ...]],
          shape: dict[str, int]) -> tuple[int, str]:
    """roofline's estimate of one collective, and why jaxcost's figure differs from it."""
    sizes = [shape[axis] for axis in axes]
    n = math.prod(sizes)
    why = "one ring over the whole group; roofline: a phase per axis" if len(axes) > 1 else ""
    if record.kind == "all-reduce" and record.reducer in ("maximum", "minimum"):
        element = record.payload_bytes // record.elements if record.elements else record.payload_bytes
        return _ring(element, sizes, reduce=False), (  # pmax, pmin
            "roofline costs a maximum or minimum as one element; the compiled all-reduce sends the whole buffer")
    if record.kind == "all-reduce":
        return 2 * _ring(record.payload_bytes, sizes, reduce=True), why
    if record.kind == "all-gather":
        return _ring(record.payload_bytes / n, sizes, reduce=False), why
    if record.kind == "reduce-scatter":
        return _ring(record.payload_bytes, sizes, reduce=True), why
    if record.kind == "all-to-all":
        return _all_to_all(record.payload_bytes, sizes), (
            "each device sends (n-1)/n of its input; roofline: half of all the data across the torus's bisection")
    if record.kind == "collective-permute":
        return _permute(record, where, list(shape), shape), (
            "each device sends its payload once; roofline: the payload times the transfers sharing the busiest "
            "link (shifts of more than one hop share links)")
    return 0, "roofline has no rule for this collective"


def versus_roofline(records: Sequence[Collective], shape: dict[str, int],
                    roofline_ici_bytes: dict[str, int]) -> RooflineComparison:
    """Set a shard_map program's collectives, on a mesh of ``shape``, against roofline's ``ici_bytes`` for it.
    The compiled program names devices by their place in the mesh (row-major), whatever their ids."""
    where = coordinates(range(math.prod(shape.values())), shape)
    names = list(shape)
    per_axis: dict[str, int] = defaultdict(int)
    items = []
    for record in records:
        spans = {axis for group in record.groups for axis in spanned_axes(group, where, names)} \
            if record.kind == "collective-permute" else set(spanned_axes(record.groups[0], where, names))
        axes = tuple(name for name in names if name in spans)
        estimate, why = _rule(record, axes, where, shape) if record.count is not None else (
            0, "in a conditional's branch or a loop of unknown trip count: roofline does not look inside; jaxcost "
               "counts it once")
        for axis in axes:
            per_axis[axis] += estimate
        total = record.wire_bytes_total
        ours = total if total is not None else record.wire_bytes
        reasons = [why] if why and ours != estimate else []
        if record.count and record.count > 1:
            reasons.append(f"run {record.count} times by a loop; roofline counts the body once")
        if not reasons and ours != estimate:
            reasons.append("fractions of a byte: jaxcost rounds up, roofline down")
        items.append(IciItem(record.name, record.kind, axes, estimate, ours, "; ".join(reasons) or "the same"))
    return RooflineComparison(dict(roofline_ici_bytes), dict(per_axis), items)
