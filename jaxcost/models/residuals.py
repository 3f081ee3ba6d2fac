"""What JAX's autodiff saves for the backward pass, before XLA's optimizations: the forward values that a training
step's backward equations read (JAX's residuals, as its differentiation rules choose them), read from the step's
own jaxpr, each with its shape, dtype, bytes, the operation that made it and its module row.

Set beside what XLA keeps (``MemoryReport.saved``) they show what the compiler changes: a cheap elementwise value
recomputed in the backward pass rather than kept, a tensor kept at another width or in another layout. The rule of
what counts is the compiler side's: a value computed from the step's inputs (not from the parameters alone, nor
from the output gradient) that a gradient's equation reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from jaxcost.hlo.text import NUMPY_NAMES
from jaxcost.models.rows import JIT_SCOPE, Attribution
from jaxcost.models.values import LiveValue

#: The scope JAX gives the equations of a gradient (the transpose of the forward's linearization).
BACKWARD = "transpose("
#: HLO's element type names by numpy's: a residual's shape is written as the compiler's values are.
_HLO_NAMES = {numpy: hlo for hlo, numpy in NUMPY_NAMES.items()}
#: Calls whose results feed back into their operands: every result is taken to depend on every operand.
_LOOPS = frozenset(("scan", "while"))


def jax_residuals(jaxpr: Any, argument_kinds: list[str], attribution: Attribution) -> list[LiveValue]:
    """JAX's residuals of a training step's ``jaxpr`` (the ``ClosedJaxpr`` traced from the step), as
    ``LiveValue`` rows with role ``saved for backward``: each forward value computed from an argument that
    ``argument_kinds`` (one per flattened argument) calls ``"input"`` (the step's inputs and random keys), from no
    ``"output gradient"``, and read by an equation of the backward pass. Each is counted once, in the order they
    were made."""
    inner = getattr(jaxpr, "jaxpr", jaxpr)
    if len(inner.invars) != len(argument_kinds):
        raise ValueError(f"argument_kinds: one per argument of the step's jaxpr ({len(inner.invars)}), got "
                         f"{len(argument_kinds)}")
    activations = _reached(inner, {variable for variable, kind in zip(inner.invars, argument_kinds)
                                   if kind == "input"})
    activations -= _reached(inner, {variable for variable, kind in zip(inner.invars, argument_kinds)
                                    if kind == "output gradient"})
    producers = {variable: equation for equation in inner.eqns for variable in equation.outvars}
    read = {variable for equation in inner.eqns if _backward(equation)
            for variable in _variables(equation.invars)
            if variable in activations and variable in producers and not _backward(producers[variable])}
    values: list[LiveValue] = []
    for equation in inner.eqns:
        for variable in equation.outvars:
            if variable in read:
                op_name = _op_name(*_through_names(equation, variable, producers))
                values.append(LiveValue(op_name.rpartition("/")[2], "{}", hlo_shape(variable.aval),
                                        aval_bytes(variable.aval), attribution.row_key(op_name),
                                        "saved for backward", op_name, "jaxpr"))
    return values


def _through_names(equation: Any, variable: Any, producers: dict[Any, Any]) -> tuple[Any, Any]:
    """The equation that made ``variable``'s value, looking through the ``reduce_precision`` by which a checkpoint
    policy names what it saves (as ``jax.ad_checkpoint.print_saved_residuals`` does)."""
    while equation.primitive.name == "reduce_precision" and equation.invars[0] in producers:
        variable = equation.invars[0]
        equation = producers[variable]
    return equation, variable


def _op_name(equation: Any, variable: Any) -> str:
    """The op_name XLA gives the value ``equation`` makes as ``variable``: its scope, and inside a call (a jitted
    function, a custom derivative's function) the scope and primitive of the equation that makes it there, so that
    relu's mask reads ``jit(relu)/gt`` as in the compiled program."""
    scope = str(equation.source_info.name_stack)
    called = _called_jaxpr(equation)
    if called is not None:
        inner = called.outvars[equation.outvars.index(variable)]
        producer = next((candidate for candidate in called.eqns if inner in candidate.outvars), None)
        if producer is not None:
            name = equation.params.get("name")
            return "/".join(part for part in (scope, f"jit({name})" if name else "", _op_name(producer, inner))
                            if part)
    return f"{scope}/{equation.primitive.name}" if scope else equation.primitive.name


def _called_jaxpr(equation: Any) -> Any:
    """The jaxpr an equation calls whose results are the equation's (a jitted function, a custom derivative's
    function, a checkpointed one), or None."""
    for value in equation.params.values():
        called = getattr(value, "jaxpr", value)
        if hasattr(called, "eqns") and len(called.outvars) == len(equation.outvars):
            return called
    return None


def _reached(jaxpr: Any, start: set[Any]) -> set[Any]:
    """``start`` and every variable a forward equation computes from one of them. Inside a call (a jitted function,
    a custom derivative's) each result is followed on its own: ``jnp.where`` returns its mask beside its result, and
    the mask may come from no input; a loop's results are taken together."""
    reached = set(start)
    for equation in jaxpr.eqns:
        operands = [_is_variable(atom) and atom in reached for atom in equation.invars]
        if _backward(equation) or not any(operands):
            continue
        called = _called_jaxpr(equation)
        if called is None or equation.primitive.name in _LOOPS or len(called.invars) != len(operands):
            reached.update(equation.outvars)
            continue
        inside = _reached(called, {variable for variable, marked in zip(called.invars, operands) if marked})
        reached.update(variable for variable, result in zip(equation.outvars, called.outvars) if result in inside)
    return reached


def _backward(equation: Any) -> bool:
    return is_backward(str(equation.source_info.name_stack))


def is_backward(scope: str) -> bool:
    """Whether a scope (an equation's name stack, an instruction's op_name) is of the step's backward pass: its first
    scope past the jitted functions' is the transpose (``jit(step)/transpose(jvp(Net))/fc1/dot_general``). A gradient
    taken inside the forward pass (a gradient penalty) has the transpose deeper (``jvp(Net)/transpose(jvp(...))``)
    and is part of the forward."""
    for part in scope.split("/"):
        if not JIT_SCOPE.match(part):
            return part.startswith(BACKWARD)
    return False


def _variables(atoms: Iterable[Any]) -> list[Any]:
    """The variables among an equation's operands (literals left out)."""
    return [atom for atom in atoms if _is_variable(atom)]


def _is_variable(atom: Any) -> bool:
    return not hasattr(atom, "val")  # a literal carries its value


def aval_bytes(aval: Any) -> int:
    """Bytes of an abstract value: elements × item size."""
    return math.prod(aval.shape) * aval.dtype.itemsize


def hlo_shape(aval: Any) -> str:
    """An abstract value's shape as HLO writes it: ``bf16[8,1024,768]``."""
    name = str(aval.dtype)
    return f"{_HLO_NAMES.get(name, name)}[{','.join(str(size) for size in aval.shape)}]"


__all__ = ["BACKWARD", "aval_bytes", "hlo_shape", "is_backward", "jax_residuals"]
