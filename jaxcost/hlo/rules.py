"""The cost rule of each opcode that has one, by XLA's rules (HloCostAnalysis) and the true count: one small
function each, registered by ``@rule``; ``engine.Analyzer.cost`` calls it to adjust the default cost it starts from.

By XLA's rules a library custom call is -1 and a loop's body counts once; the true count recounts library calls
from their attributes (``library_calls``) and multiplies loop bodies by their known trip counts (``loops``).
Each instruction's bytes are split into what it reads from each operand and what it writes (a fusion's by
``fusions``).

Adding a rule for an opcode touches three files:

1. ``opcodes.py``: take the opcode out of its class (``DEFAULT``, ``UNKNOWN``, ``FREE``, ``ELEMENTWISE`` or
   ``TRANSCENDENTAL``, part of ``ELEMENTWISE``), or add it to ``XLA_OPCODES`` / ``TPU_OPCODES`` if it is new. A
   rule for an opcode left in ``FREE`` or ``ELEMENTWISE`` raises at import (``Analyzer.cost`` costs those before
   it looks up a rule); one left in ``DEFAULT`` or ``UNKNOWN`` fails
   ``test_every_xla_opcode_has_a_rule_or_is_named_unknown`` (every opcode in exactly one class).
2. Here: ``@rule("opcode")`` on ``def _name(analyzer, instruction, computation, cost) -> None``, which adjusts
   ``cost`` (operands read, output written, no flops) in place. An opcode registered twice raises at import.
3. ``tests/test_vocabulary.py``: a function whose CPU program keeps the opcode in ``RULE_PROGRAMS``
   (``test_each_rule_reproduces_xla`` checks XLA's three totals are reproduced), or, for an opcode the CPU never
   emits, its name in ``MULTI_DEVICE_RULES``, ``NOT_EMITTED_ON_THE_CPU`` or ``TPU_RULES`` and a test on such a
   program; ``test_every_rule_is_checked_against_xla_or_said_why_not`` fails until one is done.

A custom-call target is recounted in ``library_calls`` (``@target``), not here.
"""

from __future__ import annotations

import math

from jaxcost.hlo.convolution import convolution_flops, reduce_window_count, window
from jaxcost.hlo.engine import PRODUCTS, Analyzer, OpCost, OpRecord, Rule, registered_opcodes, rule
from jaxcost.hlo.fusions import fusion_output_bytes, fusion_parameter_read_bytes, indexed_access
from jaxcost.hlo.library_calls import costed_by_xla, custom_call_target, library_cost
from jaxcost.hlo.loops import counted_trips, loop_trips, trip_count
from jaxcost.hlo.text import Computation, Instruction, Shape

#: Re-exported, so ``from jaxcost.hlo.rules import ...`` reaches the engine (with every rule registered) and the
#: loop and fusion helpers.
__all__ = ["PRODUCTS", "Analyzer", "OpCost", "OpRecord", "Rule", "counted_trips", "fusion_parameter_read_bytes",
           "indexed_access", "loop_trips", "registered_opcodes", "rule", "trip_count"]


@rule("tuple")
def _tuple(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """XLA's HandleTuple: only the table of pointers is written (its output); its elements are not read."""
    cost.bytes_read = [0] * len(cost.bytes_read)


@rule("copy-start", "collective-permute-start")
def _async_start(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """On a TPU (sync flags in memory space 2 among its results), the result counts as its buffers and its flags
    (each an untiled scalar, 4 KiB), not as a tuple's table; elsewhere XLA's default (the table)."""
    leaves = instruction.shape.leaves()
    if any(leaf.memory_space == 2 for leaf in leaves):
        cost.bytes_written = sum(leaf.bytes for leaf in leaves)


@rule("slice-start")
def _slice_start(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """XLA:TPU's asynchronous slice into on-chip memory, ``((operand), slice, flag) slice-start(operand)``: like
    a slice, it reads and writes the slice (its done reads the tuple's table and writes the slice again)."""
    destination = instruction.shape.element(1).bytes
    cost.bytes_read = [destination] * len(cost.bytes_read)
    cost.bytes_written = destination


@rule("slice")
def _slice(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read = [instruction.shape.bytes]


@rule("dynamic-slice")
def _dynamic_slice(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    reads = [0] * len(cost.bytes_read)
    reads[0] = instruction.shape.bytes
    reads[1] = cost.bytes_read[1]
    cost.bytes_read = reads


@rule("dynamic-update-slice")
def _dynamic_update_slice(analyzer: Analyzer, instruction: Instruction, computation: Computation,
                          cost: OpCost) -> None:
    reads = [0] * len(cost.bytes_read)
    reads[1], reads[2] = cost.bytes_read[1], cost.bytes_read[2]
    cost.bytes_read = reads
    cost.bytes_written = reads[1]


@rule("gather")
def _gather(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """A gather reads the slices it gathers (the output's size), not its whole operand. With tiles (a TPU), each
    slice is read in whole tiles (a row of a ``T(8,128)`` table costs eight), once for every index as the
    output stores them (its batch dimensions padded to its own tiles)."""
    operand = analyzer.operand_shapes(instruction, computation)[0]
    read = instruction.shape.bytes
    if operand.tiles:
        read = _windows_bytes(operand, tuple(instruction.ints("slice_sizes")), instruction.shape,
                              set(instruction.ints("offset_dims")))
    cost.bytes_read = [read, cost.bytes_read[1]] + [0] * (len(cost.bytes_read) - 2)


def _windows_bytes(target: Shape, window: tuple[int, ...], indexed: Shape, window_dims: set[int]) -> int:
    """Bytes of ``target`` a gather or scatter touches: each window (of shape ``window``) in whole tiles of the
    target's layout, once for every index that ``indexed`` (the gather's output, the scatter's updates) stores
    outside its ``window_dims``."""
    # a window of one dimension is read as XLA:TPU lays out a 1-D array, in tiles of 1024, whatever the target's
    tiles = ((1024,),) if len(window) == 1 else target.tiles
    one_window = Shape(target.dtype, window, target.minor_to_major, element_bits=target.element_bits, tiles=tiles)
    indices = math.prod(size for axis, size in enumerate(indexed.stored_dims) if axis not in window_dims)
    return indices * one_window.bytes


@rule("transpose")
def _transpose(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """A transpose whose layouts make it a bitcast moves nothing (XLA's IsEffectiveBitcast); a shape written
    without a layout has the default one (major to minor), as XLA's parser gives it."""
    operand = analyzer.operand_shapes(instruction, computation)[0]
    permutation = instruction.ints("dimensions")
    layout_out, layout_in = (shape.minor_to_major if shape.minor_to_major is not None else
                             tuple(reversed(range(len(shape.dims)))) for shape in (instruction.shape, operand))
    if [permutation[d] for d in layout_out] == list(layout_in):
        cost.bytes_read, cost.bytes_written = [0], 0


@rule("dot")
def _dot(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    lhs = analyzer.operand_shapes(instruction, computation)[0]
    contracting = instruction.ints("lhs_contracting_dims")
    cost.flops = 2 * instruction.shape.elements * math.prod(lhs.dims[d] for d in contracting)
    cost.flops_by_opcode["dot"] = cost.flops


@rule("convolution")
def _convolution(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    lhs, rhs = analyzer.operand_shapes(instruction, computation)[:2]
    cost.flops = convolution_flops(instruction, lhs, rhs)
    cost.flops_by_opcode["convolution"] = cost.flops


@rule("fusion")
def _fusion(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    called = analyzer.module.computations[instruction.called("calls")[0]]
    indexed = indexed_access(instruction, called)
    if indexed is not None:
        _costed_as(analyzer, indexed, called, cost)
        return
    cost.absorb(analyzer.computation_cost(called.name), with_bytes=False)
    cost.bytes_written = fusion_output_bytes(instruction, called)
    cost.bytes_other = sum(i.shape.bytes for i in called.instructions
                           if i.opcode == "constant" and i.shape.elements > 1)
    cost.bytes_read = [fusion_parameter_read_bytes(analyzer, param, called) for param in called.parameters()]


def _costed_as(analyzer: Analyzer, inner: Instruction, called: Computation, cost: OpCost) -> None:
    """A fusion costed as one instruction inside it: its bytes (each read put on the fusion operand it comes
    from), and by XLA's rules its flops alone; the true count keeps every flop the fusion does."""
    inner_cost = analyzer.cost(inner, called)
    by_name = called.by_name()
    slots = len(cost.bytes_read)
    cost.bytes_read = [0] * slots
    for position, (operand, read) in enumerate(zip(inner.operands, inner_cost.bytes_read)):
        source = by_name[operand]
        while source.opcode != "parameter" and len(source.operands) == 1:
            source = by_name[source.operands[0]]
        slot = int(source.attribute("_number")) if source.opcode == "parameter" else min(position, slots - 1)
        cost.bytes_read[slot] += read
    cost.bytes_written, cost.bytes_other = inner_cost.bytes_written, inner_cost.bytes_other
    cost.absorb(inner_cost if analyzer.xla_rules else analyzer.computation_cost(called.name), with_bytes=False)


@rule("while")
def _while(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
    body = analyzer.computation_cost(instruction.called("body")[0])
    condition = analyzer.computation_cost(instruction.called("condition")[0])
    trips = loop_trips(analyzer.module, instruction, computation)
    if analyzer.xla_rules:
        cost.absorb(body)
        cost.absorb(condition)
    elif trips is None:
        cost.absorb(body)
        cost.absorb(condition)
        cost.unknown.append(f"{instruction.name} (while loop of unknown trip count: one iteration counted)")
    else:
        cost.absorb(body, trips)
        cost.absorb(condition, trips + 1)
        cost.notes.append(f"{instruction.name}: loop body counted {trips} times, its condition {trips + 1}")


@rule("call", "async-start", "call-start")
def _call(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
    key = "to_apply" if "to_apply" in instruction.attributes else "calls"
    cost.absorb(analyzer.computation_cost(instruction.called(key)[0]), scope=instruction.op_name)


@rule("conditional")
def _conditional(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    names = instruction.called("branch_computations") or \
        instruction.called("true_computation") + instruction.called("false_computation")
    branches = [analyzer.computation_cost(name) for name in names]
    cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
    cost.flops = max(b.flops for b in branches)
    cost.transcendentals = max(b.transcendentals for b in branches)
    cost.bytes_other = max(b.bytes_accessed for b in branches)
    cost.flops_by_opcode["conditional"] = cost.flops
    if not analyzer.xla_rules:
        per_branch = ", ".join(f"{name}: {branch.flops:,} flops" for name, branch in zip(names, branches))
        cost.bounds.append(f"{instruction.name}: which branch runs depends on data; the costliest is counted each "
                           f"time ({per_branch}): an upper bound")


@rule("reduce", "reduce-window", "map", "scatter", "select-and-scatter")
def _applied(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """Ops that apply a scalar computation many times: its flops, times the application count."""
    operands = analyzer.operand_shapes(instruction, computation)
    out = instruction.shape.element(0) if instruction.shape.is_tuple else instruction.shape
    opcode = instruction.opcode
    if opcode == "reduce":
        times = operands[0].elements - out.elements
    elif opcode == "reduce-window":
        times = reduce_window_count(instruction, out)
    elif opcode == "map":
        times = instruction.shape.elements
    elif opcode == "scatter":
        count = len(operands) // 2  # targets, the indices, updates
        rows = [_scattered_rows_bytes(instruction, target, update)
                for target, update in zip(operands[:count], operands[count + 1:])]
        # as XLA files them: each target's rows it touches, the indices, each update whole
        cost.bytes_read = [*rows, operands[count].bytes, *(update.bytes for update in operands[count + 1:])]
        cost.bytes_written = sum(rows)
        times = operands[count + 1].elements
    else:
        select = analyzer.computation_cost(instruction.called("select")[0])
        window_elements = math.prod(window(instruction)["size"])
        cost.absorb(select, operands[1].elements * (window_elements - 1), with_bytes=False, role=opcode)
        times = operands[1].elements
    key = "to_apply" if opcode != "select-and-scatter" else "scatter"
    cost.absorb(analyzer.computation_cost(instruction.called(key)[0]), times, with_bytes=False, role=opcode)


def _scattered_rows_bytes(scatter: Instruction, target: Shape, update: Shape) -> int:
    """Bytes of ``target`` a scatter reads and writes: the updates' size, or with tiles (a TPU) each update window
    in whole tiles of the target (a row of a ``T(8,128)`` table costs eight), once for every update as stored."""
    if not target.tiles:
        return update.bytes
    inserted = set(scatter.ints("inserted_window_dims"))
    window_dims = scatter.ints("update_window_dims")
    sizes = iter(update.dims[d] for d in window_dims)
    window = tuple(1 if axis in inserted else next(sizes, 1) for axis in range(len(target.dims)))
    return _windows_bytes(target, window, update, set(window_dims))


@rule("sort")
def _sort(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """n log2(n) comparisons; a sort of several operands writes each of them (its tuple counted by its leaves)."""
    elements = analyzer.operand_shapes(instruction, computation)[0].elements
    cost.flops = elements * max(elements - 1, 0).bit_length()
    cost.flops_by_opcode["sort"] = cost.flops
    cost.bytes_written = sum(leaf.bytes for leaf in instruction.shape.leaves())


@rule("all-to-all")
def _all_to_all(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """No arithmetic; a tuple-shaped result is counted by its leaves."""
    cost.bytes_written = sum(leaf.bytes for leaf in instruction.shape.leaves())


@rule("fft")
def _fft(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """XLA's count: 2 flops per FMA x 4 FMAs per complex multiply x the product of floor(log2(length)) over the
    transformed dimensions x the input's elements (checked on FFT, RFFT, IRFFT and 2-D transforms)."""
    lengths = instruction.ints("fft_length")
    operand = analyzer.operand_shapes(instruction, computation)[0]
    cost.flops = 2 * 4 * math.prod(max(length, 1).bit_length() - 1 for length in lengths) * operand.elements
    cost.flops_by_opcode["fft"] = cost.flops


@rule("rng", "rng-bit-generator")
def _rng(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.transcendentals = sum(leaf.elements for leaf in instruction.shape.leaves())


@rule("all-reduce", "all-reduce-start")
def _all_reduce(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.flops = sum(leaf.elements for leaf in instruction.shape.leaves())
    cost.bytes_written = sum(leaf.bytes for leaf in instruction.shape.leaves())
    cost.flops_by_opcode["all-reduce"] = cost.flops


@rule("infeed")
def _infeed(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """XLA's HandleInfeed: the arrays it brings in are written (its result's leaves, a token none); its token
    operand is not read."""
    cost.bytes_read = [0] * len(cost.bytes_read)
    cost.bytes_written = sum(leaf.bytes for leaf in instruction.shape.leaves())


@rule("outfeed")
def _outfeed(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """XLA's HandleOutfeed: the arrays it sends are read (its data operand's leaves); it writes only a token."""
    data = analyzer.operand_shapes(instruction, computation)[0]
    cost.bytes_read = [sum(leaf.bytes for leaf in data.leaves())] + [0] * (len(cost.bytes_read) - 1)
    cost.bytes_written = 0


@rule("custom-call")
def _custom_call(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    called = custom_call_target(instruction)
    label = f"{instruction.name} (custom-call {called})"
    known = library_cost(instruction, analyzer.operand_shapes(instruction, computation))
    if analyzer.xla_rules and not costed_by_xla(instruction):
        cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
        cost.flops, cost.bytes_other = -1, -1
        cost.unknown.append(label)
    elif known is None:  # by XLA's rules too where XLA counts it itself, as nothing (a kernel without an estimate)
        cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
        if not analyzer.xla_rules:
            cost.unknown.append(label)
    else:
        cost.flops_by_opcode.update(known.flops_by_role)
        cost.flops = sum(known.flops_by_role.values())
        cost.transcendentals = known.transcendentals
        cost.bytes_read, cost.bytes_written, cost.bytes_other = known.bytes_read, known.bytes_written, known.bytes_other
        cost.notes.append(f"{instruction.name}: {known.what}, recounted from its attributes")
