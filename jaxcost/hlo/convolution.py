"""Convolution geometry from HLO attributes: windows, dimension labels and XLA's exact flop count."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jaxcost.hlo.text import Instruction, Shape


def window(instruction: Instruction) -> dict[str, list[int]]:
    """Parse ``window={size=3x3 stride=2x2 pad=1_1x0_1 lhs_dilate=.. rhs_dilate=..}`` per dimension."""
    fields: dict[str, list] = {}
    for item in instruction.attribute("window").strip("{}").split():
        key, _, value = item.partition("=")
        fields[key] = value.split("x")
    rank = len(fields.get("size", []))
    geometry: dict[str, list] = {"size": [int(v) for v in fields.get("size", [])]}
    for key in ("stride", "lhs_dilate", "rhs_dilate"):
        geometry[key] = [int(v) for v in fields.get(key, ["1"] * rank)]
    pads = [tuple(int(p) for p in v.split("_")) for v in fields.get("pad", ["0_0"] * rank)]
    geometry["pad_lo"] = [lo for lo, _ in pads]
    geometry["pad_hi"] = [hi for _, hi in pads]
    return geometry


def reduce_window_count(instruction: Instruction, out: Shape) -> int:
    """How often a reduce-window applies its computation (XLA's count, with its reduce-then-broadcast case)."""
    geometry = window(instruction)
    window_elements = math.prod(geometry["size"])
    count = (window_elements - 1) * out.elements
    reducing = [d for d, size in enumerate(geometry["size"]) if size != 1]
    padded = [d for d in range(len(geometry["size"])) if geometry["pad_lo"][d] or geometry["pad_hi"][d]]
    if len(reducing) == 1 and len(padded) == 1 and not instruction.shape.is_tuple:
        for d, size in enumerate(geometry["size"]):
            lo, hi = geometry["pad_lo"][d], geometry["pad_hi"][d]
            if size != 1 and lo and hi and lo == hi and size == 2 * lo + 1:
                if lo == out.dims[d] - 1:
                    span = out.dims[d]
                    return out.elements // span + span - 1
                break
    return count


def dim_labels(instruction: Instruction) -> tuple[str, str, str]:
    """``b01f_01io->b01f`` as (input, kernel, output) label strings."""
    labels = instruction.attribute("dim_labels")
    inputs, _, output = labels.partition("->")
    lhs, _, rhs = inputs.partition("_")
    return lhs, rhs, output


def convolution_flops(instruction: Instruction, lhs: Shape, rhs: Shape, result: Shape | None = None) -> int:
    """XLA's convolution flops: 2 per multiply-add whose input tap is a real (not padded) element."""
    result = result or instruction.shape
    lhs_labels, rhs_labels, out_labels = dim_labels(instruction)
    geometry = window(instruction)
    spatial = sorted(c for c in lhs_labels if c.isdigit())  # window dimension d is spatial dimension d
    valid_counts = []
    for d, axis in enumerate(spatial):
        size_in = lhs.dims[lhs_labels.index(axis)]
        size_k = rhs.dims[rhs_labels.index(axis)]
        size_out = result.dims[out_labels.index(axis)]
        valid_counts.append(_valid_positions(
            size_in, size_k, size_out, geometry["stride"][d], geometry["pad_lo"][d], geometry["pad_hi"][d],
            geometry["lhs_dilate"][d], geometry["rhs_dilate"][d]))
    groups = int(instruction.attribute("feature_group_count", "1"))
    batch_groups = int(instruction.attribute("batch_group_count", "1"))
    features_in = lhs.dims[lhs_labels.index("f")]
    features_out = result.dims[out_labels.index("f")]
    batch = lhs.dims[lhs_labels.index("b")]
    return 2 * (features_in // groups) * features_out * (batch // batch_groups) * math.prod(valid_counts)


def _valid_positions(size_in: int, size_k: int, size_out: int, stride: int, pad_lo: int, pad_hi: int,
                     lhs_dilate: int, rhs_dilate: int) -> int:
    if (size_in == size_out == size_k == lhs_dilate and rhs_dilate == 1 and max(1, size_in - 1) == stride
            and pad_lo == 0 and pad_hi == 0):
        return size_in
    if (size_in == 1 and size_k == size_out and rhs_dilate == 1 and lhs_dilate == 1 and stride == 1
            and pad_lo == pad_hi == size_out - 1):
        return size_out
    count = 0
    for tap in range(size_k):
        for position in range(size_out):
            index = position * stride - pad_lo + tap * rhs_dilate
            if index % lhs_dilate == 0 and 0 <= index // lhs_dilate < size_in:
                count += 1
    return count
