"""A program that spans processes (``jax.distributed.initialize``, one process per host): each process costs
the program as compiled for its devices, and process 0 gathers every process's figures into one report.

SPMD: every process compiles the same per-device program, so the figures agree; the report says whether
they do, and gives the program's total over all devices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxcost.reports.text import format_bytes, format_count

if TYPE_CHECKING:
    from jaxcost.compiler import CompilerCost


def local_figures(compiler: CompilerCost) -> dict[str, Any]:
    """What this process's compiled program costs per device, and its collectives."""
    import jax

    return {
        "process": jax.process_index(), "local_devices": jax.local_device_count(), "devices": compiler.devices,
        "flops": compiler.flops, "transcendentals": compiler.transcendentals,
        "bytes_accessed": compiler.bytes_accessed,
        # without instruction names: processes compile the same program, named as each compiler names it
        "collectives": [{key: value for key, value in record.as_dict().items() if key != "name"}
                        for record in compiler.collectives],
    }


@dataclass(frozen=True)
class HostsReport:
    """Every process's figures for the same program, gathered on process 0."""

    processes: list[dict[str, Any]]

    @property
    def consistent(self) -> bool:
        """Every process compiled the same per-device program (same figures, same collectives)."""
        keys = ("devices", "flops", "transcendentals", "bytes_accessed", "collectives")
        return all({key: entry[key] for key in keys} == {key: self.processes[0][key] for key in keys}
                   for entry in self.processes)

    @property
    def devices(self) -> int:
        return self.processes[0]["devices"]

    def __str__(self) -> str:
        first = self.processes[0]
        wire = sum(item["wire_bytes"] * (item["count"] or 0) for item in first["collectives"])
        lines = [f"{len(self.processes)} processes, {self.devices} devices "
                 f"({', '.join(str(entry['local_devices']) for entry in self.processes)} local): "
                 f"{'the same program on every process' if self.consistent else 'processes DISAGREE'}",
                 f"per device: {format_count(first['flops'])}, {format_bytes(first['bytes_accessed'])} accessed, "
                 f"{len(first['collectives'])} collectives sending {format_bytes(wire)}",
                 f"the program over all devices: {format_count(first['flops'] * self.devices)}"]
        return "\n".join(lines)


def gather(compiler: CompilerCost) -> HostsReport | None:
    """Every process's figures on process 0 (None on the others). Call it on every process, as for any
    collective; it runs two small all-gathers over the processes."""
    import jax
    from jax.experimental import multihost_utils

    encoded = np.frombuffer(json.dumps(local_figures(compiler)).encode(), dtype=np.uint8)
    lengths = multihost_utils.process_allgather(np.array([len(encoded)], dtype=np.int32))
    padded = np.zeros(int(np.max(lengths)), dtype=np.uint8)
    padded[:len(encoded)] = encoded
    everyone = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(lengths.ravel()), -1)
    if jax.process_index() != 0:
        return None
    return HostsReport([json.loads(bytes(row[:int(length)]).decode()) for row, length in zip(everyone,
                                                                                              lengths.ravel())])
