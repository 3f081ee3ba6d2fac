"""Interconnects: the bandwidth each device has to the others of its slice or node, per direction, with
its topology and source, read from the device table (``hardware.DEVICES``); user overrides as for peaks. No JAX at
import time.
"""

from __future__ import annotations

from dataclasses import replace

from jaxcost.measure import hardware
from jaxcost.measure.hardware import Interconnect, device_record


def __getattr__(name: str) -> list[tuple[str, Interconnect]]:
    """``INTERCONNECTS``, read from the device table when asked: (kind pattern, interconnect) per device."""
    if name == "INTERCONNECTS":
        return [(record.kind_pattern, record.interconnect) for record in hardware.DEVICES]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def interconnect(device_kind: str, overrides: dict | None = None) -> Interconnect | None:
    """The interconnect of a JAX ``device_kind``, or None for a device not in the table (a CPU). ``overrides``
    replace figures: ``{"bytes_per_second": 3.8e11, "name": "NVLink measured"}``."""
    if not isinstance(device_kind, str):
        raise ValueError(f"device_kind: must be a JAX device_kind string, got {device_kind!r}")
    record = device_record(device_kind)
    found = record.interconnect if record else None
    if not overrides:
        return found
    unknown = set(overrides) - {"bytes_per_second", "name", "topology"}
    if unknown:
        raise ValueError(f"overrides: unknown interconnect keys {sorted(unknown)}; use bytes_per_second, name, "
                         "topology")
    rate = overrides.get("bytes_per_second", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"overrides: bytes_per_second must be a positive number, got {rate!r}")
    base = found or Interconnect(device_kind, 0.0, "unknown", "")
    return replace(base, bytes_per_second=float(overrides.get("bytes_per_second", base.bytes_per_second)),
                   name=overrides.get("name", base.name), topology=overrides.get("topology", base.topology),
                   source=(base.source + "; " if base.source else "") + "user overrides")
