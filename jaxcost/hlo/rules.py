"""Cost rules per HLO opcode, two ways: by XLA's own rules (HloCostAnalysis) and the true count.

By XLA's rules a library custom call is -1 and a loop's body counts once; the true count recounts
library calls from their attributes (``library_calls``) and multiplies loop bodies by their known
trip counts. Each instruction's bytes are split into what it reads from each operand and what it
writes. Rules are registered per opcode, one small function each: adding an opcode is one function.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from jaxcost.hlo.convolution import convolution_flops, reduce_window_count, window
from jaxcost.hlo.library_calls import COSTED_BY_XLA, backend_config, custom_call_target, library_cost
from jaxcost.hlo.opcodes import DEFAULT, ELEMENTWISE, FREE, TRANSCENDENTAL, UNKNOWN
from jaxcost.hlo.registry import registrar
from jaxcost.hlo.roles import flop_role
from jaxcost.hlo.text import AboutInstruction, Computation, Instruction, Module, Shape


@dataclass
class OpCost:
    """What one instruction costs. ``flops_by_opcode`` says what the flops are for (opcode or role)."""

    flops: int = 0
    transcendentals: int = 0
    bytes_read: list[int] = field(default_factory=list)
    bytes_written: int = 0
    bytes_other: int = 0
    flops_by_opcode: Counter = field(default_factory=Counter)
    flops_by_source: Counter = field(default_factory=Counter)
    #: The flops of products (dots, convolutions) by the op_name of the instruction that computes them.
    products_by_source: Counter = field(default_factory=Counter)
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bounds: list[str] = field(default_factory=list)

    @property
    def bytes_accessed(self) -> int:
        return sum(self.bytes_read) + self.bytes_written + self.bytes_other

    def absorb(self, other: OpCost, times: int = 1, with_bytes: bool = True, role: str = "", scope: str = "") -> None:
        """Add another cost (a called computation's), `times` over.

        `role` relabels its flops (converts stay) and keeps them on the absorbing op's own source. `scope` is
        the calling instruction's op_name: sources named relative to the called function (a nested ``jit`` in
        the program as written: ``lt`` inside ``jit(_take)``) are put under it.
        """
        self.flops += other.flops * times
        self.transcendentals += other.transcendentals * times
        for opcode, flops in other.flops_by_opcode.items():
            self.flops_by_opcode[role if role and opcode != "convert" else opcode] += flops * times
        if not role:
            for mine, theirs in ((self.flops_by_source, other.flops_by_source),
                                 (self.products_by_source, other.products_by_source)):
                for source, flops in theirs.items():
                    mine[_scoped(scope, source)] += flops * times
        self.unknown.extend(other.unknown)
        self.notes.extend(other.notes)
        self.bounds.extend(other.bounds)
        if with_bytes:
            self.bytes_other += other.bytes_accessed * times


#: The roles of flops that are products: what a layer's multiply-adds become.
PRODUCTS = ("dot", "convolution")


def _own_source(by_source: Counter, flops: int, op_name: str) -> None:
    """Files under ``op_name`` the flops of ``flops`` that no called computation filed under a source of its own."""
    unattributed = flops - sum(by_source.values())
    if unattributed:
        by_source[op_name] += unattributed


def _scoped(scope: str, source: str) -> str:
    """``source`` under the op_name ``scope`` of its caller, unless it is already named from the same root."""
    if not scope or not source or source.startswith(scope.partition("/")[0] + "/"):
        return source
    return f"{scope}/{source}"


@dataclass
class OpRecord(AboutInstruction):
    """One top-level instruction and its cost."""

    instruction: Instruction
    cost: OpCost

    def __repr__(self) -> str:
        return (f"OpRecord({self.name!r}, {self.opcode}, flops={self.cost.flops:,}, "
                f"bytes_accessed={self.cost.bytes_accessed:,})")


Rule = Callable[["Analyzer", Instruction, Computation, OpCost], None]
_RULES: dict[str, Rule] = {}


#: ``@rule("opcode", ...)`` registers a cost rule; it adjusts the default cost (operands read, output written).
rule = registrar(_RULES)


def registered_opcodes() -> frozenset[str]:
    """The opcodes that have a rule of their own."""
    return frozenset(_RULES)


class Analyzer:
    """Costs instructions of one module, by XLA's rules or the true count; memoizes called computations."""

    def __init__(self, module: Module, xla_rules: bool, biases: dict[str, set[str]]):
        self.module = module
        self.xla_rules = xla_rules
        self._computation_costs: dict[str, OpCost] = {}
        self.bias_parameters = biases

    def operand_shapes(self, instruction: Instruction, computation: Computation) -> list[Shape]:
        by_name = computation.by_name()
        return [by_name[name].shape for name in instruction.operands]

    def cost(self, instruction: Instruction, computation: Computation) -> OpCost:
        """Cost of one instruction: the default rule, adjusted by the opcode's registered rule."""
        operand_shapes = self.operand_shapes(instruction, computation)
        cost = OpCost(bytes_read=[s.bytes for s in operand_shapes], bytes_written=instruction.shape.bytes)
        opcode = instruction.opcode
        if opcode in FREE:
            cost.bytes_read = [0] * len(operand_shapes)
            cost.bytes_written = 0
        elif opcode in ELEMENTWISE:
            elements = instruction.shape.elements
            if opcode in TRANSCENDENTAL:
                cost.transcendentals = elements
            else:
                cost.flops = elements
                role = flop_role(instruction, computation, self.bias_parameters.get(computation.name, set()))
                cost.flops_by_opcode[role] = elements
        elif opcode in _RULES:
            _RULES[opcode](self, instruction, computation, cost)
        elif opcode not in DEFAULT and not self.xla_rules:
            known = "no rule" if opcode in UNKNOWN else "not in XLA's opcode list"
            cost.unknown.append(f"{instruction.name} ({opcode}: {known}; its bytes by XLA's default, its flops not "
                                "counted)")
        _own_source(cost.flops_by_source, cost.flops, instruction.op_name)
        _own_source(cost.products_by_source, sum(cost.flops_by_opcode[role] for role in PRODUCTS), instruction.op_name)
        return cost

    def computation_cost(self, name: str) -> OpCost:
        """Summed cost of a called computation (memoized: a computation costs the same wherever called)."""
        if name not in self._computation_costs:
            computation = self.module.computations[name]
            total = OpCost()
            for instruction in computation.instructions:
                cost = self.cost(instruction, computation)
                total.absorb(cost, with_bytes=False)
                total.bytes_other += cost.bytes_accessed
            self._computation_costs[name] = total
        return self._computation_costs[name]


@rule("tuple")
def _tuple(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read = [0] * len(cost.bytes_read)
    cost.bytes_other, cost.bytes_written = cost.bytes_written, 0


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
    destination = instruction.shape.elements_of[1].bytes
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
    operand = analyzer.operand_shapes(instruction, computation)[0]
    permutation = instruction.ints("dimensions")
    layout_out, layout_in = instruction.shape.minor_to_major, operand.minor_to_major
    if layout_out is not None and layout_in is not None and \
            [permutation[d] for d in layout_out] == list(layout_in):
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
    cost.bytes_written = _fusion_output_bytes(instruction, called)
    cost.bytes_other = sum(i.shape.bytes for i in called.instructions
                           if i.opcode == "constant" and i.shape.elements > 1)
    cost.bytes_read = [fusion_parameter_read_bytes(analyzer, param, called) for param in called.parameters()]


def indexed_access(fusion: Instruction, called: Computation) -> Instruction | None:
    """The gather or scatter a custom fusion (``kind=kCustom``: XLA:TPU's gather fusions) is costed as: XLA's
    HandleFusion costs such a fusion as its first gather or scatter alone."""
    if fusion.attribute("kind") != "kCustom":
        return None
    return next((i for i in called.instructions if i.opcode in ("gather", "scatter")), None)


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


def trip_count(instruction: Instruction) -> int | None:
    """A while loop's trip count, as the compiler recorded it (``known_trip_count``), or None."""
    count = backend_config(instruction).get("known_trip_count", {}).get("n")
    return int(count) if count is not None else None


def _integer(instruction: Instruction | None) -> int | None:
    """The value of an integer scalar constant, or None."""
    if instruction is None or instruction.opcode != "constant" or instruction.shape.dims:
        return None
    try:
        return int(instruction.attribute("_literal"))
    except ValueError:
        return None


def _through_copies(computation: Computation, name: str) -> Instruction | None:
    """The instruction ``name`` copies, through any chain of copies (XLA:TPU copies a loop's counter between
    memories), or ``name`` itself."""
    instruction = computation.by_name().get(name)
    while instruction is not None and instruction.opcode == "copy":
        instruction = computation.by_name().get(instruction.operands[0])
    return instruction


def counted_trips(module: Module, instruction: Instruction, computation: Computation) -> int | None:
    """The trip count of a loop in the form JAX writes a scan or a ``fori_loop`` with static bounds, read from
    the program as written, or as XLA:TPU compiles it (neither records ``known_trip_count``): the loop state's
    element ``k`` starts at a constant ``a``, the body adds 1 to it, and the condition is ``element k < b``
    (copies between them allowed): ``b - a`` trips. None for any other loop."""
    condition = module.computations.get(instruction.called("condition")[0])
    body = module.computations.get(instruction.called("body")[0])
    if condition is None or body is None or not instruction.operands:
        return None
    test = condition.root
    if test.opcode != "compare" or test.attribute("direction") != "LT" or len(test.operands) != 2:
        return None
    counter, bound = (condition.by_name().get(name) for name in test.operands)
    if counter is None or counter.opcode != "get-tuple-element" or _integer(bound) is None:
        return None
    index = int(counter.attribute("index"))
    state = computation.by_name().get(instruction.operands[0])
    if state is None or state.opcode != "tuple" or index >= len(state.operands):
        return None
    start = _integer(_through_copies(computation, state.operands[index]))
    step = body.root
    if start is None or step.opcode != "tuple" or index >= len(step.operands):
        return None
    increment = body.by_name().get(step.operands[index])
    if increment is None or increment.opcode != "add":
        return None
    parts = [_through_copies(body, name) for name in increment.operands]
    ones = [part for part in parts if _integer(part) == 1]
    counters = [part for part in parts if part is not None and part.opcode == "get-tuple-element"
                and part.attribute("index") == str(index)]
    return max(_integer(bound) - start, 0) if ones and counters else None


def loop_trips(module: Module, instruction: Instruction, computation: Computation) -> int | None:
    """A while loop's trip count: as the compiler recorded it, or as JAX wrote the loop; None when unknown."""
    recorded = trip_count(instruction)
    return recorded if recorded is not None else counted_trips(module, instruction, computation)


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
    out = instruction.shape.elements_of[0] if instruction.shape.is_tuple else instruction.shape
    opcode = instruction.opcode
    if opcode == "reduce":
        times = operands[0].elements - out.elements
    elif opcode == "reduce-window":
        times = reduce_window_count(instruction, out)
    elif opcode == "map":
        times = instruction.shape.elements
    elif opcode == "scatter":
        count = len(operands) // 2
        update_bytes = sum(s.bytes for s in operands[count + 1:])
        rows_bytes = sum(_scattered_rows_bytes(instruction, target, update)
                         for target, update in zip(operands[:count], operands[count + 1:]))
        cost.bytes_read = [0] * len(operands)
        cost.bytes_read[count] = operands[count].bytes
        cost.bytes_other = rows_bytes + update_bytes
        cost.bytes_written = rows_bytes
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


@rule("custom-call")
def _custom_call(analyzer: Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    called = custom_call_target(instruction)
    label = f"{instruction.name} (custom-call {called})"
    known = library_cost(instruction, analyzer.operand_shapes(instruction, computation))
    if analyzer.xla_rules and called not in COSTED_BY_XLA:
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


def _fusion_output_bytes(fusion: Instruction, called: Computation) -> int:
    """Bytes a fusion writes: each array output, only the update of an in-place dynamic-update-slice."""
    root = called.root
    by_name = called.by_name()
    if not fusion.shape.is_tuple:
        outputs = [(fusion.shape, root)]
    else:
        outputs = []
        for index, element in enumerate(fusion.shape.elements_of):
            producer = by_name[root.operands[index]] if root.opcode == "tuple" else root
            outputs.append((element, producer))
    total = 0
    for shape, producer in outputs:
        if shape.is_tuple:
            continue
        if producer.opcode == "dynamic-update-slice":
            total += by_name[producer.operands[1]].shape.bytes
        else:
            total += shape.bytes
    return total


def fusion_parameter_read_bytes(analyzer: Analyzer, parameter: Instruction, called: Computation) -> int:
    """Bytes a fusion reads through one parameter, by XLA's rules (slices read only what they keep)."""
    if parameter.shape.is_tuple:
        by_name = called.by_name()
        return sum(fusion_parameter_read_bytes(analyzer, user, called) for user in parameter.users
                   if user.opcode == "get-tuple-element" and user.name in by_name)
    size = parameter.shape.bytes
    total = 0
    seen_plain_user = False
    for user in parameter.users:
        opcode = user.opcode
        if opcode == "fusion":
            total += _nested_fusion_read_bytes(analyzer, parameter, user)
        elif opcode == "slice":
            total += user.shape.bytes
        elif opcode == "dynamic-slice":
            if user.operands[0] == parameter.name:
                total += user.shape.bytes
            elif not seen_plain_user:
                seen_plain_user, total = True, total + size
        elif opcode == "dynamic-update-slice":
            if user.operands[0] != parameter.name and not seen_plain_user:
                seen_plain_user, total = True, total + size
        elif opcode in ("broadcast", "reshape"):
            total += size
        elif not seen_plain_user:
            seen_plain_user, total = True, total + size
    return total


def _nested_fusion_read_bytes(analyzer: Analyzer, parameter: Instruction, fusion: Instruction) -> int:
    inner = analyzer.module.computations[fusion.called("calls")[0]]
    inner_params = inner.parameters()
    root = inner.root
    total = 0
    for index, operand in enumerate(fusion.operands):
        if operand != parameter.name:
            continue
        simple = not root.operands or inner_params[index].name == root.operands[0]
        seen_plain_user = False
        for user in fusion.users:
            if simple and user.opcode == "slice":
                total += user.shape.bytes
            elif simple and user.opcode == "dynamic-slice":
                if user.operands[0] == fusion.name:
                    total += user.shape.bytes
                elif not seen_plain_user:
                    seen_plain_user, total = True, total + fusion.shape.bytes
            elif simple and user.opcode == "dynamic-update-slice":
                if user.operands[0] != fusion.name and not seen_plain_user:
                    seen_plain_user, total = True, total + fusion.shape.bytes
            elif not seen_plain_user:
                seen_plain_user = True
                total += fusion_parameter_read_bytes(analyzer, inner_params[index], inner)
    return total
