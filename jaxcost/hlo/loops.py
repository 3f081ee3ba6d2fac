"""Trip-count discovery: how many times a while loop runs, as the compiler recorded it (``known_trip_count``) or as
JAX wrote the loop (a counter from a constant, plus one a trip, below a constant); None when neither says.
"""

from __future__ import annotations

from jaxcost.hlo.library_calls import backend_config
from jaxcost.hlo.text import Computation, Instruction, Module


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
    limit = _integer(bound)
    if counter is None or counter.opcode != "get-tuple-element" or limit is None:
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
    return max(limit - start, 0) if ones and counters else None


def loop_trips(module: Module, instruction: Instruction, computation: Computation) -> int | None:
    """A while loop's trip count: as the compiler recorded it, or as JAX wrote the loop; None when unknown."""
    recorded = trip_count(instruction)
    return recorded if recorded is not None else counted_trips(module, instruction, computation)
