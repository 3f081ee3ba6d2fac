"""jaxcost: what a JAX/Flax layer costs on paper, to the XLA compiler, and why the two differ.

Specs and formulas load without JAX; the compiler-facing names load JAX on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from jaxcost.formulas import CONVENTION_RULES, Cost, analytic, conventions
from jaxcost.reports.text import format_bytes, format_count, format_rate
from jaxcost.specs import Conv, Dense, dense, depthwise_conv, group_conv, standard_conv

_LAZY = {
    "compiled": "jaxcost.compiler",
    "CompilerCost": "jaxcost.compiler",
    "compare": "jaxcost.comparison",
    "Comparison": "jaxcost.comparison",
    "Delta": "jaxcost.comparison",
    "recount": "jaxcost.hlo.program",
    "analyze": "jaxcost.models.analysis",
    "ModelReport": "jaxcost.models.analysis",
    "Recount": "jaxcost.hlo.program",
}

__all__ = [
    "CONVENTION_RULES", "Comparison", "CompilerCost", "Conv", "Cost", "Delta", "Dense", "ModelReport", "Recount",
    "analytic", "analyze",
    "compare", "compiled", "conventions", "dense", "depthwise_conv", "format_bytes", "format_count",
    "format_rate", "group_conv", "recount", "standard_conv",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jaxcost' has no attribute {name!r}")
