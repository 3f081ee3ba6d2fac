"""Bytes XLA's cost analysis counts an instruction reading that its kernel never reads from memory: a fused operand
read only by gathers or slices (counted whole), the input of a fusion whose output is a slice of what it computes,
and the input of a convolution whose window strides past some of it. A rate measured above the memory roof is
explained by them, or else by the cache."""

from __future__ import annotations

from fractions import Fraction

from jaxcost.hlo.convolution import window
from jaxcost.hlo.library_calls import custom_call_target
from jaxcost.hlo.text import Computation, Instruction, Module
from jaxcost.reports.text import format_bytes

#: What reads only part of its first operand, and how to say so.
PARTIAL_READERS = {"gather": "a gather reads only the rows it indexes", "slice": "a slice reads only what it keeps",
                   "dynamic-slice": "a dynamic slice reads only what it keeps"}
#: Library convolutions whose first operand is the input their window strides over.
STRIDED_INPUT_CALLS = ("__cudnn$convForward", "__cudnn$convBiasActivationForward", "__cudnn$convBackwardFilter")


def unread_bytes(instruction: Instruction, bytes_read: list[int], module: Module) -> tuple[int, str]:
    """Of the bytes XLA counts an instruction reading (``bytes_read``, an operand's each), those its kernel does
    not read, and why: a fused operand read only by gathers or slices, or by a fusion whose output is a slice of what
    it computes, is counted whole; so is the input of a convolution whose window skips some (1x1, stride 2).
    (0, "") where none of these holds."""
    if instruction.opcode == "fusion":
        return _fusion_unread(module.computations[instruction.called("calls")[0]], bytes_read)
    if instruction.opcode == "convolution" or custom_call_target(instruction) in STRIDED_INPUT_CALLS:
        return _convolution_unread(instruction, bytes_read[0])
    return 0, ""


def _fusion_unread(called: Computation, bytes_read: list[int]) -> tuple[int, str]:
    """What a fusion's kernel does not read of the bytes counted for its parameters."""
    root = called.root
    sliced = called.by_name()[root.operands[0]].shape if root.opcode == "slice" else None
    unread, whys = 0, []
    for parameter, counted in zip(called.parameters(), bytes_read):
        readers = _readers(parameter)
        if readers and all(reader.opcode in PARTIAL_READERS and first for reader, first in readers):
            unread += max(counted - sum(reader.shape.bytes for reader, _ in readers), 0)
            whys.append(f"{PARTIAL_READERS[readers[0][0].opcode]} of its {parameter.shape} operand "
                        f"({format_bytes(counted)} counted whole)")
        elif sliced is not None and parameter.shape.elements >= sliced.elements:
            kept = Fraction(root.shape.elements, sliced.elements)
            unread += int(counted * (1 - kept))
            whys.append(f"its output is a slice: the kernel computes, and reads, {kept} of its {parameter.shape} "
                        f"operand ({format_bytes(counted)} counted whole)")
    return unread, "; ".join(whys)


def _convolution_unread(instruction: Instruction, bytes_input: int) -> tuple[int, str]:
    """What a convolution does not read of its input when its window strides past some of it."""
    geometry = window(instruction)
    if any(factor != 1 for factor in geometry["lhs_dilate"] + geometry["rhs_dilate"]):
        return 0, ""
    kept = Fraction(1)
    for size, stride in zip(geometry["size"], geometry["stride"]):
        kept *= Fraction(min(size, stride), stride)
    if kept == 1:
        return 0, ""
    return (int(bytes_input * (1 - kept)),
            f"a {'x'.join(map(str, geometry['size']))} window at stride {'x'.join(map(str, geometry['stride']))} "
            f"reads {kept} of its input ({format_bytes(bytes_input)} counted whole)")


def _readers(parameter: Instruction) -> list[tuple[Instruction, bool]]:
    """What reads a fused parameter, past the bitcasts that only re-view it, each with whether it reads it as its
    first operand."""
    readers, pending = [], [parameter]
    while pending:
        value = pending.pop()
        for user in value.users:
            if user.opcode == "bitcast":
                pending.append(user)
            else:
                readers.append((user, bool(user.operands) and user.operands[0] == value.name))
    return readers
