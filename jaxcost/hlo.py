"""Cost every instruction of an optimized HLO program by XLA's own rules (HloCostAnalysis).

The recount is op by op: each top-level instruction of the entry computation gets its flops,
transcendentals and bytes, with bytes split into what it reads from each operand and what it
writes. Its totals equal XLA's wherever XLA knows them; where XLA does not (custom calls), the
instruction is flagged as unknown instead of being counted as -1.

Rules are registered per opcode, one small function each: adding an opcode is one function.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from jaxcost.hlo_text import Computation, Instruction, Module, Shape, parse_module

#: Opcodes HloCostAnalysis counts as transcendentals, one per output element.
TRANSCENDENTAL = frozenset({
    "acosh", "erf", "exp", "log", "logistic", "power", "sqrt", "cbrt", "rsqrt", "tanh", "sin", "cos",
    "exponential", "exponential-minus-one", "expm1", "log-plus-one", "log1p", "atan2", "tan",
})
#: Opcodes counted as one flop per output element.
ELEMENTWISE = frozenset({
    "abs", "add", "and", "ceil", "clamp", "clz", "compare", "complex", "convert", "divide", "floor", "imag",
    "is-finite", "maximum", "minimum", "multiply", "negate", "not", "or", "popcnt", "real", "reduce-precision",
    "remainder", "round-nearest-afz", "round-nearest-even", "select", "shift-left", "shift-right-arithmetic",
    "shift-right-logical", "sign", "stochastic-convert", "subtract", "xor", "bitcast-convert", "erf-inv",
}) | TRANSCENDENTAL
#: Opcodes that touch no memory and do no arithmetic.
FREE = frozenset({"parameter", "constant", "get-tuple-element", "bitcast", "after-all", "add-dependency", "domain"})
#: Opcodes that pass a buffer through without a copy (for attributing reads to the buffer's producer).
ALIASING = frozenset({"bitcast", "get-tuple-element", "tuple", "add-dependency", "optimization-barrier"})


@dataclass
class OpCost:
    """What one instruction costs. ``flops_by_opcode`` says which (fused) opcodes did the arithmetic."""

    flops: int = 0
    transcendentals: int = 0
    bytes_read: list[int] = field(default_factory=list)
    bytes_written: int = 0
    bytes_other: int = 0
    flops_by_opcode: Counter = field(default_factory=Counter)
    unknown: list[str] = field(default_factory=list)

    @property
    def bytes_accessed(self) -> int:
        return sum(self.bytes_read) + self.bytes_written + self.bytes_other

    def absorb(self, other: OpCost, times: int = 1, with_bytes: bool = True) -> None:
        """Add another cost (a called computation's), `times` over."""
        self.flops += other.flops * times
        self.transcendentals += other.transcendentals * times
        for opcode, flops in other.flops_by_opcode.items():
            self.flops_by_opcode[opcode] += flops * times
        self.unknown.extend(other.unknown)
        if with_bytes:
            self.bytes_other += other.bytes_accessed * times


@dataclass
class OpRecord:
    """One top-level instruction and its cost."""

    instruction: Instruction
    cost: OpCost

    @property
    def name(self) -> str:
        return self.instruction.name

    @property
    def opcode(self) -> str:
        return self.instruction.opcode


@dataclass
class Recount:
    """The op-by-op recount of a program's entry computation."""

    module: Module
    ops: list[OpRecord]

    @property
    def flops(self) -> int:
        return sum(op.cost.flops for op in self.ops)

    @property
    def transcendentals(self) -> int:
        return sum(op.cost.transcendentals for op in self.ops)

    @property
    def bytes_accessed(self) -> int:
        return sum(op.cost.bytes_accessed for op in self.ops)

    @property
    def unknown(self) -> list[str]:
        """Names of instructions whose cost XLA does not know (it reports -1 for them)."""
        return [name for op in self.ops for name in op.cost.unknown]

    def as_xla_sums(self, key: str) -> float:
        """The total as XLA accumulates it: per-op values in float32, summed in float32, -1 per unknown op."""
        total = np.float32(0)
        for op in self.ops:
            value = getattr(op.cost, key)
            if key != "transcendentals":
                value -= len(op.cost.unknown)
            total = np.float32(total + np.float32(value))
        return float(total)


Rule = Callable[["_Analyzer", Instruction, Computation, OpCost], None]
_RULES: dict[str, Rule] = {}


def rule(*opcodes: str) -> Callable[[Rule], Rule]:
    """Register a cost rule for opcodes; it adjusts the default cost (operands read, output written)."""
    def register(function: Rule) -> Rule:
        for opcode in opcodes:
            _RULES[opcode] = function
        return function
    return register


class _Analyzer:
    def __init__(self, module: Module):
        self.module = module
        self._computation_costs: dict[str, OpCost] = {}
        self.bias_parameters = bias_parameters(module)

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
def _tuple(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read = [0] * len(cost.bytes_read)
    cost.bytes_other, cost.bytes_written = cost.bytes_written, 0


@rule("slice")
def _slice(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read = [instruction.shape.bytes]


@rule("dynamic-slice")
def _dynamic_slice(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    reads = [0] * len(cost.bytes_read)
    reads[0] = instruction.shape.bytes
    reads[1] = cost.bytes_read[1]
    cost.bytes_read = reads


@rule("dynamic-update-slice")
def _dynamic_update_slice(analyzer: _Analyzer, instruction: Instruction, computation: Computation,
                          cost: OpCost) -> None:
    reads = [0] * len(cost.bytes_read)
    reads[1], reads[2] = cost.bytes_read[1], cost.bytes_read[2]
    cost.bytes_read = reads
    cost.bytes_written = reads[1]


@rule("gather")
def _gather(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read = [instruction.shape.bytes, cost.bytes_read[1]] + [0] * (len(cost.bytes_read) - 2)


@rule("transpose")
def _transpose(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    operand = analyzer.operand_shapes(instruction, computation)[0]
    permutation = [int(d) for d in instruction.attribute("dimensions").strip("{}").split(",") if d]
    layout_out, layout_in = instruction.shape.minor_to_major, operand.minor_to_major
    if layout_out is not None and layout_in is not None and \
            [permutation[d] for d in layout_out] == list(layout_in):
        cost.bytes_read, cost.bytes_written = [0], 0


@rule("dot")
def _dot(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    lhs = analyzer.operand_shapes(instruction, computation)[0]
    contracting = [int(d) for d in instruction.attribute("lhs_contracting_dims").strip("{}").split(",") if d]
    cost.flops = 2 * instruction.shape.elements * math.prod(lhs.dims[d] for d in contracting)
    cost.flops_by_opcode["dot"] = cost.flops


@rule("convolution")
def _convolution(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    lhs, rhs = analyzer.operand_shapes(instruction, computation)[:2]
    cost.flops = convolution_flops(instruction, lhs, rhs)
    cost.flops_by_opcode["convolution"] = cost.flops


@rule("fusion")
def _fusion(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    called = analyzer.module.computations[instruction.called("calls")[0]]
    cost.absorb(analyzer.computation_cost(called.name), with_bytes=False)
    cost.bytes_written = _fusion_output_bytes(instruction, called)
    cost.bytes_other = sum(i.shape.bytes for i in called.instructions
                           if i.opcode == "constant" and i.shape.elements > 1)
    cost.bytes_read = [fusion_parameter_read_bytes(analyzer, param, called) for param in called.parameters()]


@rule("while")
def _while(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
    for key in ("body", "condition"):
        cost.absorb(analyzer.computation_cost(instruction.called(key)[0]))


@rule("call", "async-start")
def _call(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
    key = "to_apply" if "to_apply" in instruction.attributes else "calls"
    cost.absorb(analyzer.computation_cost(instruction.called(key)[0]))


@rule("conditional")
def _conditional(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    names = instruction.called("branch_computations") or \
        instruction.called("true_computation") + instruction.called("false_computation")
    branches = [analyzer.computation_cost(name) for name in names]
    cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
    cost.flops = max(b.flops for b in branches)
    cost.transcendentals = max(b.transcendentals for b in branches)
    cost.bytes_other = max(b.bytes_accessed for b in branches)
    cost.flops_by_opcode["conditional"] = cost.flops


@rule("reduce", "reduce-window", "map", "scatter", "select-and-scatter")
def _applied(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    """Ops that apply a scalar computation many times: its flops, times the application count."""
    operands = analyzer.operand_shapes(instruction, computation)
    out = instruction.shape.elements_of[0] if instruction.shape.is_tuple else instruction.shape
    opcode = instruction.opcode
    if opcode == "reduce":
        times = operands[0].elements - out.elements
    elif opcode == "reduce-window":
        times = _reduce_window_count(instruction, out)
    elif opcode == "map":
        times = instruction.shape.elements
    elif opcode == "scatter":
        count = len(operands) // 2
        update_bytes = sum(s.bytes for s in operands[count + 1:])
        cost.bytes_read = [0] * len(operands)
        cost.bytes_read[count] = operands[count].bytes
        cost.bytes_other = 2 * update_bytes
        cost.bytes_written = update_bytes
        times = operands[count + 1].elements
    else:
        select = analyzer.computation_cost(instruction.called("select")[0])
        window = math.prod(_window(instruction)["size"])
        cost.absorb(select, operands[1].elements * (window - 1), with_bytes=False)
        times = operands[1].elements
    key = "to_apply" if opcode != "select-and-scatter" else "scatter"
    cost.absorb(analyzer.computation_cost(instruction.called(key)[0]), times, with_bytes=False)


@rule("sort")
def _sort(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    elements = analyzer.operand_shapes(instruction, computation)[0].elements
    cost.flops = elements * max(elements - 1, 0).bit_length()
    cost.flops_by_opcode["sort"] = cost.flops


@rule("rng", "rng-bit-generator")
def _rng(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.transcendentals = sum(leaf.elements for leaf in instruction.shape.leaves())


@rule("all-reduce", "all-reduce-start")
def _all_reduce(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.flops = sum(leaf.elements for leaf in instruction.shape.leaves())
    cost.bytes_written = sum(leaf.bytes for leaf in instruction.shape.leaves())
    cost.flops_by_opcode["all-reduce"] = cost.flops


@rule("custom-call")
def _custom_call(analyzer: _Analyzer, instruction: Instruction, computation: Computation, cost: OpCost) -> None:
    cost.bytes_read, cost.bytes_written = [0] * len(cost.bytes_read), 0
    target = instruction.attribute("custom_call_target").strip('"')
    cost.unknown.append(f"{instruction.name} (custom-call {target})")


#: The role an add plays when one operand is a broadcast: adding a bias along the feature axis.
BIAS_ADD = "add(bias)"


def flop_role(instruction: Instruction, computation: Computation, bias_parameters: set[str] = frozenset()) -> str:
    """What an elementwise op's flops are for: its opcode, or ``add(bias)`` for a bias add.

    An add is a bias add when one operand is, through converts and reshapes, a broadcast of a
    non-constant vector, or a parameter known to hold a bias (a batch-1 dense layer's bias is only
    bitcast, never broadcast). Adding a broadcast scalar or constant (inside GELU, say) is not.
    """
    if instruction.opcode != "add":
        return instruction.opcode
    by_name = computation.by_name()

    def source(name: str) -> Instruction | None:
        producer = by_name.get(name)
        while producer is not None and producer.opcode in ("convert", "bitcast", "reshape", "copy"):
            producer = by_name.get(producer.operands[0])
        return producer

    for operand in instruction.operands:
        producer = source(operand)
        if producer is None:
            continue
        if producer.name in bias_parameters:
            return BIAS_ADD
        if producer.opcode == "broadcast":
            broadcast = source(producer.operands[0])
            if broadcast is not None and broadcast.opcode != "constant" and broadcast.shape.dims:
                return BIAS_ADD
    return instruction.opcode


def _is_bias_parameter(instruction: Instruction) -> bool:
    """A Flax bias parameter, by its metadata (``variables['params']['bias']``, ``p['params']['Conv_0']['bias']``)."""
    return instruction.opcode == "parameter" and instruction.op_name.replace("\\", "").endswith("['bias']")


def bias_parameters(module: Module) -> dict[str, set[str]]:
    """Per computation, the parameters that carry a Flax bias: entry parameters, and fused ones fed by them."""
    entry = module.entry
    found = {entry.name: {i.name for i in entry.parameters() if _is_bias_parameter(i)}}
    pending = [entry]
    while pending:
        computation = pending.pop()
        by_name = computation.by_name()
        for instruction in computation.instructions:
            if instruction.opcode != "fusion":
                continue
            called = module.computations[instruction.called("calls")[0]]
            params = called.parameters()
            for index, operand in enumerate(instruction.operands):
                source = by_name[operand]
                while source.opcode in ("bitcast", "convert", "copy") and source.operands:
                    source = by_name[source.operands[0]]
                if source.name in found[computation.name]:
                    found.setdefault(called.name, set()).add(params[index].name)
            found.setdefault(called.name, set())
            pending.append(called)
    return found


def _window(instruction: Instruction) -> dict[str, list[int]]:
    """Parse ``window={size=3x3 stride=2x2 pad=1_1x0_1 lhs_dilate=.. rhs_dilate=..}`` per dimension."""
    fields: dict[str, list] = {}
    for item in instruction.attribute("window").strip("{}").split():
        key, _, value = item.partition("=")
        fields[key] = value.split("x")
    rank = len(fields.get("size", []))
    window: dict[str, list] = {"size": [int(v) for v in fields.get("size", [])]}
    for key in ("stride", "lhs_dilate", "rhs_dilate"):
        window[key] = [int(v) for v in fields.get(key, ["1"] * rank)]
    pads = [tuple(int(p) for p in v.split("_")) for v in fields.get("pad", ["0_0"] * rank)]
    window["pad_lo"] = [lo for lo, _ in pads]
    window["pad_hi"] = [hi for _, hi in pads]
    return window


def _reduce_window_count(instruction: Instruction, out: Shape) -> int:
    window = _window(instruction)
    window_elements = math.prod(window["size"])
    count = (window_elements - 1) * out.elements
    reducing = [d for d, size in enumerate(window["size"]) if size != 1]
    padded = [d for d in range(len(window["size"])) if window["pad_lo"][d] or window["pad_hi"][d]]
    if len(reducing) == 1 and len(padded) == 1 and not instruction.shape.is_tuple:
        for d, size in enumerate(window["size"]):
            lo, hi = window["pad_lo"][d], window["pad_hi"][d]
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
    window = _window(instruction)
    spatial = [c for c in lhs_labels if c.isdigit()]
    valid_counts = []
    for d, axis in enumerate(spatial):
        size_in = lhs.dims[lhs_labels.index(axis)]
        size_k = rhs.dims[rhs_labels.index(axis)]
        size_out = result.dims[out_labels.index(axis)]
        valid_counts.append(_valid_positions(size_in, size_k, size_out, window["stride"][d], window["pad_lo"][d],
                                             window["pad_hi"][d], window["lhs_dilate"][d], window["rhs_dilate"][d]))
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


def fusion_parameter_read_bytes(analyzer: _Analyzer, parameter: Instruction, called: Computation) -> int:
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


def _nested_fusion_read_bytes(analyzer: _Analyzer, parameter: Instruction, fusion: Instruction) -> int:
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


def recount(module: Module | str) -> Recount:
    """Cost every top-level instruction of a module (or its HLO text) by XLA's rules."""
    if isinstance(module, str):
        module = parse_module(module)
    analyzer = _Analyzer(module)
    entry = module.entry
    return Recount(module, [OpRecord(i, analyzer.cost(i, entry)) for i in entry.instructions])
