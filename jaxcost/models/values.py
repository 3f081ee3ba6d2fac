"""One value held in device memory: what defined it, its size, and the module row and role it has. The values XLA's
buffer assignment places (``models.memory``) and those JAX's autodiff saves (``models.residuals``) are both these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveValue:
    """One value held in memory: the instruction that defined it, its size, the row it belongs to and its role."""

    instruction: str
    index: str
    shape: str
    bytes: int
    row: str
    role: str
    op_name: str
    #: The kind of XLA allocation it is placed in (``temporary``, ``output``, ...); ``jaxpr`` for a value JAX's
    #: autodiff saves, which no allocation holds yet.
    allocation: str
    #: The memory space: 0 is the device's memory (HBM); a TPU's on-chip memories are 1 and up.
    color: int = 0


__all__ = ["LiveValue"]
