"""Fusion byte accounting by XLA's rules: what a fusion writes (an in-place update only its update), what it reads
through each parameter (slices only what they keep), and the one instruction a custom fusion is costed as.
"""

from __future__ import annotations

from jaxcost.hlo.engine import Analyzer
from jaxcost.hlo.text import Computation, Instruction


def indexed_access(fusion: Instruction, called: Computation) -> Instruction | None:
    """The gather or scatter a custom fusion (``kind=kCustom``: XLA:TPU's gather fusions) is costed as: XLA's
    HandleFusion costs such a fusion as its first gather or scatter alone."""
    if fusion.attribute("kind") != "kCustom":
        return None
    return next((i for i in called.instructions if i.opcode in ("gather", "scatter")), None)


def fusion_output_bytes(fusion: Instruction, called: Computation) -> int:
    """Bytes a fusion writes: each array output, only the update of an in-place dynamic-update-slice."""
    root = called.root
    by_name = called.by_name()
    if fusion.shape.elements_of is None:
        outputs = [(fusion.shape, root)]
    else:
        outputs = []
        for index, element in enumerate(fusion.shape.elements_of):
            producer = by_name[root.operands[index]] if root.opcode == "tuple" else root
            outputs.append((element, producer))
    total = 0
    for shape, producer in outputs:
        if shape.is_tuple:  # an output that is itself a tuple: its arrays
            total += sum(leaf.bytes for leaf in shape.leaves())
        elif producer.opcode == "dynamic-update-slice":
            total += by_name[producer.operands[1]].shape.bytes
        else:
            total += shape.bytes
    return total


def fusion_parameter_read_bytes(analyzer: Analyzer, parameter: Instruction, called: Computation) -> int:
    """Bytes a fusion reads through one parameter, by XLA's rules (slices read only what they keep)."""
    if parameter.shape.is_tuple:
        return _tuple_read_bytes(analyzer, parameter, called)
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


def _tuple_read_bytes(analyzer: Analyzer, parameter: Instruction, called: Computation) -> int:
    """A tuple-typed fused parameter (or a get-tuple-element of one): what each get-tuple-element reading it reads;
    and, for every array under an element that none reads, the tuple's own table (XLA walks each array down the
    get-tuple-elements and, where the walk stops, charges what the tuple itself is read for: its table)."""
    elements = parameter.shape.elements_of
    if elements is None:
        raise ValueError(f"{parameter.name}: not a tuple-typed parameter")
    by_name = called.by_name()
    readers = [user for user in parameter.users if user.opcode == "get-tuple-element" and user.name in by_name]
    read = {int(user.attribute("index", "-1")) for user in readers}
    table = parameter.shape.bytes if parameter.users else 0
    unread_arrays = sum(len(element.leaves()) for index, element in enumerate(elements) if index not in read)
    return sum(fusion_parameter_read_bytes(analyzer, user, called) for user in readers) + table * unread_arrays


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
