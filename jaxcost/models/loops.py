"""How often each module runs in a traced program: the lengths of the scans around its operations in the
jaxpr (``nn.scan``, ``nnx.scan``, ``lax.scan``, ``fori_loop`` with static bounds), multiplied through nested
loops. A ``while_loop`` has no length until it runs: the modules inside it run an unknown number of times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

#: The number of executions of a module inside a loop of unknown trip count.
UNKNOWN = None


def _sub_jaxprs(params: dict[str, Any]) -> Iterator[Any]:
    """The jaxprs an equation calls (a scan's body, a cond's branches, a remat's or a nested jit's body)."""
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            inner = getattr(item, "jaxpr", item)  # a ClosedJaxpr holds its Jaxpr
            if hasattr(inner, "eqns"):
                yield inner


def module_executions(jaxpr: Any, module_of: Callable[[str], str | None]) -> dict[str, int | None]:
    """Executions per module for one run of ``jaxpr`` (a Jaxpr or ClosedJaxpr): the most any of its operations
    runs; ``UNKNOWN`` inside a ``while`` loop. ``module_of`` maps an operation's name (its name stack and
    primitive, as in an op_name) to its module's row key, or None."""
    executions: dict[str, int | None] = {}

    def visit(jaxpr: Any, prefix: str, times: int | None) -> None:
        for equation in jaxpr.eqns:
            stack = "/".join(part for part in (prefix, str(equation.source_info.name_stack)) if part)
            module = module_of(f"{stack}/{equation.primitive.name}")
            if module is not None:
                known = executions.get(module, 0)
                executions[module] = UNKNOWN if times is UNKNOWN or known is UNKNOWN else max(known, times)
            name = equation.primitive.name
            inner_times = times
            if name == "scan" and times is not UNKNOWN:
                inner_times = times * equation.params["length"]
            elif name == "while":
                inner_times = UNKNOWN
            for inner in _sub_jaxprs(equation.params):
                visit(inner, stack, inner_times)

    visit(getattr(jaxpr, "jaxpr", jaxpr), "", 1)
    return executions
