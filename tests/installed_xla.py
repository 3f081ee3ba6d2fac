"""The second witness of the recount tests: the XLA inside the installed jaxlib, costing HLO text with its CPU client
(``hlo_module_cost_analysis``), and the sizes it gives what jaxcost must size alike: a tuple's pointer table (8 bytes
a pointer in jaxlib 0.10, 4 in 0.11) and a tiled scalar (its element in 0.10, its tiles in 0.11)."""

from __future__ import annotations

import functools

import pytest

from jaxcost.compiler import pointer_bytes_of

KEYS = ("flops", "transcendentals", "bytes_accessed")

_POINTER_PROBE = """HloModule probe

ENTRY e {
  p = f32[] parameter(0)
  ROOT t = (f32[], f32[]) tuple(p, p)
}
"""
_TILED_SCALAR_PROBE = """HloModule probe

ENTRY e {
  p = s32[]{:T(128)} parameter(0)
  ROOT c = s32[]{:T(128)} copy(p)
}
"""


def installed_xla(text: str) -> dict[str, float]:
    """Module totals by the installed jaxlib's own XLA (CPU client) for the HLO text."""
    import jax

    hlo = pytest.importorskip("jaxlib._hlo")
    xla = pytest.importorskip("jaxlib._jax")
    if not hasattr(hlo, "hlo_module_from_text") or not hasattr(xla, "hlo_module_cost_analysis"):
        pytest.skip("this jaxlib cannot cost HLO text")
    costs = xla.hlo_module_cost_analysis(jax.devices("cpu")[0].client, hlo.hlo_module_from_text(text))
    return {key: costs.get(key.replace("_", " "), 0.0) for key in KEYS}


@functools.cache
def pointer_bytes() -> int:
    """The bytes a pointer of a tuple's table takes in the installed XLA's cost analysis (the recount's parameter)."""
    return pointer_bytes_of(_POINTER_PROBE, installed_xla(_POINTER_PROBE)["bytes_accessed"])


@functools.cache
def tiled_scalar_bytes() -> int:
    """What the installed XLA counts for one ``s32[]{:T(128)}``: 4 (its element) or 512 (its tiles, as XLA:TPU)."""
    return int(installed_xla(_TILED_SCALAR_PROBE)["bytes_accessed"]) // 2
