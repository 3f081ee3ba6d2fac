"""Interconnects: the bandwidth each device has to the others of its slice or node, per direction, with
its topology and source; user overrides as for peaks. No JAX at import time.

Figures are per device (a GPU's NVLink ports together, a TPU chip's ICI links together), per direction:
what a ring collective's wire bytes (``hlo.collectives``) flow through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from jaxcost.measure.hardware import normalize_kind
from jaxcost.reports.text import format_bytes

G = 1e9


@dataclass(frozen=True)
class Interconnect:
    """A device's links: bytes per second each way (all its links together), and what they form."""

    name: str
    bytes_per_second: float
    topology: str
    source: str

    @property
    def bytes_per_second_bidirectional(self) -> float:
        return 2 * self.bytes_per_second

    def __str__(self) -> str:
        return (f"interconnect: {self.name}, {format_bytes(self.bytes_per_second)}/s per direction per device "
                f"({self.topology}); {self.source}")


NVLINK4 = "NVIDIA Hopper architecture: NVLink 4, 18 links, 900 GB/s bidirectional per GPU"
NVLINK3 = "NVIDIA A100 datasheet: NVLink 3, 12 links, 600 GB/s bidirectional per GPU"
PCIE = "PCI Express x16 per direction: Gen4 32 GB/s, Gen5 64 GB/s"
CLOUD_TPU = "Cloud TPU documentation, {0} page: bidirectional ICI bandwidth per chip"
SCALING_BOOK = "How to Scale Your Model (jax-ml/scaling-book), TPUs: ICI one-way bandwidth per link"

#: (pattern on the normalized device_kind, interconnect); first match wins.
INTERCONNECTS: list[tuple[str, Interconnect]] = [
    (r"h100.*pcie", Interconnect("PCIe Gen5 x16", 64 * G, "PCIe switch", PCIE)),
    (r"h100 nvl", Interconnect("NVLink 4 bridge", 300 * G, "pairs of GPUs", "NVIDIA H100 NVL datasheet: NVLink "
                                                                             "600 GB/s bidirectional")),
    (r"(?<![a-z])h100|(?<![a-z])h200", Interconnect("NVLink 4", 450 * G, "NVSwitch, all-to-all within the node",
                                                     NVLINK4)),
    (r"a100.*pcie", Interconnect("PCIe Gen4 x16", 32 * G, "PCIe switch", PCIE)),
    (r"a100", Interconnect("NVLink 3", 300 * G, "NVSwitch, all-to-all within the node", NVLINK3)),
    (r"\bl4\b", Interconnect("PCIe Gen4 x16", 32 * G, "PCIe switch", PCIE)),
    (r"tpu v6( lite|e)", Interconnect("ICI", 400 * G, "2D torus, 256-chip pod", CLOUD_TPU.format("v6e"))),
    (r"tpu v5( lite|e)", Interconnect("ICI", 200 * G, "2D torus, 256-chip pod", CLOUD_TPU.format("v5e"))),
    (r"tpu v5p?$|tpu v5p", Interconnect("ICI", 600 * G, "3D torus", CLOUD_TPU.format("v5p"))),
    (r"tpu v4(?! lite)", Interconnect("ICI", 6 * 45 * G, "3D torus, 6 links of 45 GB/s one way", SCALING_BOOK)),
]


def interconnect(device_kind: str, overrides: dict | None = None) -> Interconnect | None:
    """The interconnect of a JAX ``device_kind``, or None for a device not in the table (a CPU). ``overrides``
    replace figures: ``{"bytes_per_second": 3.8e11, "name": "NVLink measured"}``."""
    if not isinstance(device_kind, str):
        raise ValueError(f"device_kind: must be a JAX device_kind string, got {device_kind!r}")
    kind = normalize_kind(device_kind)
    found = next((link for pattern, link in INTERCONNECTS if re.search(pattern, kind)), None)
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
