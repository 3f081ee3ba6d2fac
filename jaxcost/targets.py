"""Compile targets other than this machine's devices: a TPU slice named by its topology (``tpu:v5e:2x2``,
``tpu:v6e:4x4``, ``tpu:v5p:2x2x1``, ``tpu:v4:2x2x1``), compiled on any machine by libtpu (the ``tpu``
extra: ``pip install 'jaxcost[tpu]'``); nothing runs there.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import lzma
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

from jaxcost.backends import libtpu_quiet
from jaxcost.hlo.text import Sizes
from jaxcost.measure import hardware

INSTALL = "pip install 'jaxcost[tpu]' (it brings JAX's matching libtpu, about 140 MB)"
_CURRENT: contextvars.ContextVar[Target | None] = contextvars.ContextVar("jaxcost_target", default=None)


@dataclass(frozen=True)
class Target:
    """A TPU slice: its topology name and its (abstract) devices."""

    name: str
    topology: str
    devices: tuple[Any, ...]

    @property
    def device_kind(self) -> str:
        return self.devices[0].device_kind

    @property
    def platform(self) -> str:
        return "tpu"

    @property
    def devices_per_chip(self) -> int:
        """Devices that share a chip: 2 for v4, whose topology shows each chip's two TensorCores as devices of their
        own (no megacore); 1 for v5e, v5p and v6e."""
        return max(Counter(tuple(device.coords) for device in self.devices).values())

    @property
    def peaks(self) -> hardware.DevicePeaks | None:
        """One device's datasheet peaks (None for a chip not in the table): the table's are a chip's, shared by the
        devices on it, and a program compiled for the target runs on one device."""
        chip = hardware.lookup(self.device_kind)
        return chip.shared(self.devices_per_chip, "TensorCores, each a device") if chip else None

    def __str__(self) -> str:
        return f"{self.name}: {len(self.devices)} x {self.device_kind} (compiled here, not run)"


def __getattr__(name: str) -> dict[str, Sizes]:
    """``SIZES``, read from the device table when asked: each TPU's sizes (``hardware.DeviceRecord.tpu_sizes``) by the
    device kinds JAX reports for it."""
    if name == "SIZES":
        return {kind: record.tpu_sizes for record in hardware.DEVICES if record.tpu_sizes
                for kind in record.device_kinds}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sizes(device_kind: str) -> Sizes:
    """How XLA:TPU's cost analysis sizes tuples and untiled scalars for ``device_kind``, from its record in the device
    table; kinds not measured yet take v5e's."""
    for kind in (device_kind, "TPU v5 lite"):
        record = hardware.device_record(kind)
        if record is not None and record.tpu_sizes is not None:
            return record.tpu_sizes
    raise LookupError("device table: TPU v5 lite, whose sizes the kinds not measured yet take, has no tpu_sizes")


#: The TPU generations jaxcost compiles for (``SIZES`` has their counting rules), with a slice of each.
GENERATIONS = {"v4": "2x2x1", "v5e": "2x2", "v5p": "2x2x1", "v6e": "4x4"}
_EXAMPLES = ", ".join(f"tpu:{name}:{shape}" for name, shape in GENERATIONS.items())


def parse_target(text: str) -> str:
    """The topology of ``tpu:<generation>:<shape>`` (``v5e:2x2``), its generation and the form of its shape checked
    (libtpu decides which shapes it makes)."""
    platform, _, topology = text.partition(":")
    if platform != "tpu" or ":" not in topology:
        raise ValueError(f"target: must be tpu:GENERATION:TOPOLOGY, like {_EXAMPLES}; got {text!r}")
    generation, _, shape = topology.partition(":")
    if generation not in GENERATIONS:
        raise ValueError(f"target: {text}: no TPU generation {generation!r}; the generations are "
                         f"{', '.join(GENERATIONS)}, like {_EXAMPLES}")
    sizes = shape.split("x")
    if len(sizes) not in (2, 3) or not all(size.isdigit() and int(size) > 0 for size in sizes):
        raise ValueError(f"target: {text}: a topology is 2 or 3 chip counts joined by x, like {_EXAMPLES}; "
                         f"got {shape!r}")
    return topology


@functools.cache
def target(text: str) -> Target:
    """The TPU slice ``text`` names (``tpu:v5e:2x2``), its devices from libtpu; a one-line ValueError when the
    name is wrong or libtpu is missing."""
    topology = parse_target(text)
    from jax.experimental import topologies

    # compiling only: other processes (sweep workers, another jaxcost) may load libtpu beside this one
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    try:
        with libtpu_quiet():  # its probe for a TPU of this machine, where libtpu starts first
            description = topologies.get_topology_desc(topology_name=topology, platform="tpu")
    except Exception as error:  # libtpu missing, or its own errors (a shape it does not make)
        if "not installed" in str(error):
            raise ValueError(f"target: compiling for {text} needs libtpu: {INSTALL}") from None
        raise ValueError(f"target: {text}: {str(error).splitlines()[0]} (slices like {_EXAMPLES})") from None
    return Target(text, topology, tuple(description.devices))


def placed(args: tuple, where: Target) -> tuple:
    """Abstract arguments on the target: those that name no sharding of their own go where the others are (the
    mesh of the first sharded argument, replicated over it), or else on the target's first device."""
    given = [leaf.sharding for leaf in jax.tree_util.tree_leaves(args)
             if isinstance(leaf, jax.ShapeDtypeStruct) and isinstance(leaf.sharding, NamedSharding)]
    mesh = given[0].mesh if given else jax.sharding.Mesh(list(where.devices[:1]), ("device",))
    sharding = NamedSharding(mesh, PartitionSpec())

    def place(leaf: Any) -> Any:
        if not hasattr(leaf, "shape") or (isinstance(leaf, jax.ShapeDtypeStruct) and leaf.sharding is not None):
            return leaf  # a sharding over the target's devices, given by the caller
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)

    return jax.tree_util.tree_map(place, args)


def stored_programs(folder: str | os.PathLike) -> list[dict]:
    """The programs bench/capture_tpu_programs.py stored in ``folder`` (a ``<generation>.json.xz`` each): their
    name, mode, target, device kind, optimized HLO and XLA:TPU's cost analysis (``compiler.replayed`` recounts
    one)."""
    return [entry for path in sorted(Path(folder).glob("*.json.xz"))
            for entry in json.loads(lzma.decompress(path.read_bytes()))["programs"]]


def current() -> Target | None:
    """The target programs are compiled for now (None: this machine's default device)."""
    return _CURRENT.get()


@contextlib.contextmanager
def compiling_for(name: str | None) -> Iterator[Target | None]:
    """Every program compiled inside is compiled for the target ``name`` (``tpu:v5e:2x2``); None changes
    nothing."""
    if name is None:
        yield current()
        return
    token = _CURRENT.set(target(name))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
