"""How often each module runs in a traced program (its jaxpr): the scans around its operations multiply
(``nn.scan``, ``nnx.scan``, ``lax.scan``, ``fori_loop`` with static bounds; nested scans multiply), a
``while_loop`` runs an unknown number of times. A module's calls are counted by its signature operation
(a Dense layer's ``dot_general``, a norm's ``rsqrt``, ...) in the forward pass, so a module traced twice
(flax traces a scanned body twice) or called from several places (remat, jit) is counted as it runs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: Scopes of a training step that are not the forward pass: the backward (``transpose``) and the forward
#: recomputed inside it (``rematted_computation``).
NOT_FORWARD = ("transpose(", "rematted_computation")


@dataclass
class Runs:
    """Per module (row key): forward calls counted by signature, the most any of its operations runs, and the
    modules with operations inside a loop of unknown trip count."""

    calls: Counter = field(default_factory=Counter)
    most: dict[str, int] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    #: Elements of a module's first signature operation's result, as the program computes it: inside a vmap around
    #: a scan, the whole batch's (the body was traced on one example).
    signature_elements: dict[str, int] = field(default_factory=dict)


def _sub_jaxprs(params: dict[str, Any]) -> Iterator[Any]:
    """The jaxprs an equation calls (a scan's body, a cond's branches, a remat's or a nested jit's body)."""
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            inner = getattr(item, "jaxpr", item)  # a ClosedJaxpr holds its Jaxpr
            if hasattr(inner, "eqns"):
                yield inner


def _elements(variable: Any) -> int:
    """Elements of a jaxpr variable's array (0 when it is not an array)."""
    shape = getattr(getattr(variable, "aval", None), "shape", None)
    return int(math.prod(shape)) if shape is not None else 0


def module_runs(jaxpr: Any, module_of: Callable[[str], str | None],
                signature_of: Callable[[str], tuple[str, int] | None]) -> Runs:
    """How often each module runs in one run of ``jaxpr`` (a Jaxpr or ClosedJaxpr). ``module_of`` maps an
    operation's name (name stack and primitive, as in an op_name) to its module's row key or None;
    ``signature_of`` gives a module's signature primitive and how many of it one call issues (or None)."""
    runs = Runs()

    def visit(jaxpr: Any, prefix: str, times: int | None) -> None:
        for equation in jaxpr.eqns:
            stack = "/".join(part for part in (prefix, str(equation.source_info.name_stack)) if part)
            name = equation.primitive.name
            module = module_of(f"{stack}/{name}")
            if module is not None:
                if times is None:
                    runs.unknown.add(module)
                else:
                    runs.most[module] = max(runs.most.get(module, 0), times)
                    signature = signature_of(module)
                    if signature and signature[0] == name and not any(scope in stack for scope in NOT_FORWARD):
                        runs.calls[module] += times
                        runs.signature_elements.setdefault(module, _elements(equation.outvars[0]))
            inner_times = times
            if name == "scan" and times is not None:
                inner_times = times * equation.params["length"]
            elif name == "while":
                inner_times = None
            for inner in _sub_jaxprs(equation.params):
                visit(inner, stack, inner_times)

    visit(getattr(jaxpr, "jaxpr", jaxpr), "", 1)
    return runs
