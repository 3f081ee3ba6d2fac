"""Where devices sit in a mesh: each device id's coordinates, and the mesh axes a group of devices spans
(the axes along which its members differ). Pure Python."""

from __future__ import annotations

import math
from collections.abc import Sequence


def coordinates(device_ids: Sequence[int], shape: dict[str, int]) -> dict[int, tuple[int, ...]]:
    """Each device id's coordinates in a mesh whose devices, in row-major order, are ``device_ids``."""
    sizes = list(shape.values())
    if len(device_ids) != math.prod(sizes):
        raise ValueError(f"device_ids: a mesh of {shape} holds {math.prod(sizes)} devices, got {len(device_ids)}")
    found = {}
    for flat, device in enumerate(device_ids):
        coordinate, rest = [], flat
        for size in reversed(sizes):
            rest, index = divmod(rest, size)
            coordinate.append(index)
        found[device] = tuple(reversed(coordinate))
    return found


def spanned_axes(group: Sequence[int], where: dict[int, tuple[int, ...]], names: Sequence[str]) -> tuple[str, ...]:
    """The mesh axes along which the devices of ``group`` differ, in mesh order."""
    points = [where[device] for device in group]
    return tuple(name for axis, name in enumerate(names) if len({point[axis] for point in points}) > 1)
