"""jaxcost: what a JAX/Flax layer costs on paper, to the XLA compiler, and on the device, and why they differ.

Specs, formulas and units load without JAX; the compiler-facing names, ``models``, ``hlo``, ``measure``
and ``reports`` load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from jaxcost.formulas import CONVENTION_RULES, Cost, TrainingCost, analytic, conventions
from jaxcost.reports.text import format_bytes, format_count, format_rate
from jaxcost.specs import Conv, Dense, dense, depthwise_conv, group_conv, reference_suite, standard_conv

#: Public names that need JAX, and the module each comes from.
_LAZY = {
    "compiled": "jaxcost.compiler",
    "CompilerCost": "jaxcost.compiler",
    "compare": "jaxcost.comparison",
    "Comparison": "jaxcost.comparison",
    "Delta": "jaxcost.comparison",
    "recount": "jaxcost.hlo.program",
    "Recount": "jaxcost.hlo.program",
    "analyze": "jaxcost.models.analysis",
    "ModelReport": "jaxcost.models.analysis",
    "benchmark": "jaxcost.measure.timing",
    "measure_ceilings": "jaxcost.measure.timing",
    "Measurement": "jaxcost.measure.timing",
    "DevicePeaks": "jaxcost.measure.hardware",
    "device_peaks": "jaxcost.measure.hardware",
    "flax_module": "jaxcost.modules",
    "read_trace": "jaxcost.measure.trace",
    "profile": "jaxcost.measure.profile",
    "ModelProfile": "jaxcost.measure.profile",
    "DeviceTrace": "jaxcost.measure.trace",
    "start_quietly": "jaxcost.backends",
    "memory": "jaxcost.models.memory",
    "MemoryReport": "jaxcost.models.memory",
}
#: Subpackages reachable as attributes after ``import jaxcost``.
_SUBPACKAGES = ("hlo", "measure", "mesh", "models", "operations", "reports", "targets")

__all__ = [
    "CONVENTION_RULES", "Comparison", "CompilerCost", "Conv", "Cost", "Delta", "Dense", "DevicePeaks", "DeviceTrace",
    "Measurement", "MemoryReport", "ModelProfile",
    "ModelReport", "Recount", "TrainingCost", "analytic", "analyze", "benchmark", "compare", "compiled",
    "conventions", "dense", "depthwise_conv", "device_peaks", "flax_module", "format_bytes", "format_count",
    "format_rate", "group_conv", "measure_ceilings", "memory", "profile", "read_trace", "recount", "reference_suite",
    "standard_conv", "start_quietly",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"jaxcost.{name}")
    raise AttributeError(f"module 'jaxcost' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBPACKAGES})
