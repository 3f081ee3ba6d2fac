"""What an instruction's flops are for: a bias add, or its plain opcode."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from jaxcost.hlo.text import Computation, Instruction, Module

#: The role an add plays when one operand is a broadcast: adding a bias along the feature axis.
BIAS_ADD = "add(bias)"


def flop_role(instruction: Instruction, computation: Computation,
              bias_parameters: AbstractSet[str] = frozenset()) -> str:
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
