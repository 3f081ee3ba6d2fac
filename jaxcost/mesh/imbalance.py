"""Load imbalance of a model sharded over a mesh, tensor by tensor and row by row: which arguments (parameters,
inputs) and module outputs every device holds whole or split unevenly, and the work each row adds over one device's.

A tensor of ``bytes`` split into ``T`` tiles on ``D`` devices is held ``R = D/T`` times, each device holding one
tile of ``bytes_per_device`` (rounded up where a dimension does not divide: the last tile is padded). Over all the
devices it adds ``D·bytes_per_device − bytes`` to an even split: ``(R−1)·bytes`` of copies and
``R·(T·bytes_per_device − bytes)`` of padding. A row adds ``D·flops_per_device − flops on one device``; the rows add
up to what the sharding adds to the whole program exactly, as a report's rows add up to its program.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import jax
from jax.sharding import NamedSharding, PartitionSpec

from jaxcost import targets
from jaxcost.compiler import CompilerCost, compile_function
from jaxcost.hlo.collectives import parse_groups
from jaxcost.hlo.text import NUMPY_NAMES, PRIMITIVE_BYTES, Instruction, parse_module
from jaxcost.mesh.axes import coordinates, spanned_axes
from jaxcost.models.rows import PATH_STEP
from jaxcost.reports.text import format_bytes, table

if TYPE_CHECKING:
    import flax.linen as nn

    from jaxcost.models.analysis import ModelReport

Held = Literal["replicated", "partly replicated", "padded", "split evenly"]
#: An HLO sharding's tiles (``devices=[1,4,2]``) and their devices: listed, or in the iota form ``<=[2,4]T(1,0)``.
_TILED = re.compile(r"devices=\[([\d,]+)\]((?:<=\[[\d,]+\](?:T\([\d,]+\))?)|[\d,]+)")
#: Entries each table shows before it says how many it left out.
MOST_SHOWN = 10


@dataclass(frozen=True)
class Tensor:
    """One tensor of a sharded program: its whole ``shape``, how the mesh splits it (``spec``, by axis name;
    ``tiles``, the pieces along each dimension) over ``devices``, and ``item_bytes`` an element."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    spec: PartitionSpec
    tiles: tuple[int, ...]
    devices: int
    item_bytes: int

    def __repr__(self) -> str:
        return (f"Tensor({self.name!r}, {self.dtype}{list(self.shape)}, {self.spec}, {self.held}, "
                f"bytes_per_device={self.bytes_per_device:,}, added_bytes={self.added_bytes:+,})")

    @property
    def shard_shape(self) -> tuple[int, ...]:
        """The tile one device holds (the padded one where a dimension does not divide)."""
        return tuple(-(-size // tiles) for size, tiles in zip(self.shape, self.tiles))

    @property
    def bytes(self) -> int:
        """The whole tensor's bytes, held once."""
        return math.prod(self.shape) * self.item_bytes

    @property
    def bytes_per_device(self) -> int:
        return math.prod(self.shard_shape) * self.item_bytes

    @property
    def even_bytes_per_device(self) -> float:
        """An even split: the whole tensor's bytes over the devices."""
        return self.bytes / self.devices

    @property
    def copies(self) -> int:
        """How many devices hold each tile."""
        return self.devices // math.prod(self.tiles)

    @property
    def padding_bytes(self) -> int:
        """Bytes of padding over all the devices: every copy of the tiles that pad a dimension."""
        return self.copies * (math.prod(self.tiles) * self.bytes_per_device - self.bytes)

    @property
    def added_bytes(self) -> int:
        """Bytes over all the devices beyond an even split: the copies beyond one, and the padding."""
        return self.devices * self.bytes_per_device - self.bytes

    @property
    def held(self) -> Held:
        if math.prod(self.tiles) == 1:
            return "replicated"
        if self.padding_bytes:
            return "padded"
        return "partly replicated" if self.copies > 1 else "split evenly"


@dataclass(frozen=True)
class RowWork:
    """One row's compiler FLOPs and bytes per device on the mesh beside the same row's on one device; FLOPs of
    the row's all-reduces (one per element reduced) among them."""

    path: str
    devices: int
    flops_per_device: int
    single_flops: int
    bytes_per_device: int
    single_bytes: int
    collective_flops_per_device: int = 0

    def __repr__(self) -> str:
        return f"RowWork({self.path!r}, added_flops={self.added_flops:+,}, added_bytes={self.added_bytes:+,})"

    @property
    def added_flops(self) -> int:
        """FLOPs over all the devices beyond the one device's: work every device repeats, padded shards, the
        collectives' own adds (negative where the sharded program does less)."""
        return self.devices * self.flops_per_device - self.single_flops

    @property
    def added_bytes(self) -> int:
        """Bytes accessed over all the devices beyond the one device's."""
        return self.devices * self.bytes_per_device - self.single_bytes


@dataclass
class Imbalance:
    """What sharding a model adds, tensor by tensor (``arguments``: parameters and inputs as the compiled program
    takes them; ``outputs``: each module call's output) and row by row (``rows``, adding up to ``added_flops``)."""

    devices: int
    arguments: list[Tensor]
    outputs: list[Tensor]
    rows: list[RowWork]

    def __repr__(self) -> str:
        return (f"Imbalance(devices={self.devices}, {len(self.arguments)} arguments, {len(self.outputs)} outputs, "
                f"{len(self.rows)} rows, added_flops={self.added_flops:+,})")

    def __str__(self) -> str:
        return "\n".join([tensor_table(self.arguments + self.outputs), "", row_table(self.rows)])

    @property
    def added_flops(self) -> int:
        """FLOPs the sharding adds over all the devices: the whole program's on the mesh less one device's."""
        return sum(row.added_flops for row in self.rows)

    @property
    def argument_bytes_per_device(self) -> int:
        """The bytes of the program's arguments on each device (the parameters, the inputs)."""
        return sum(tensor.bytes_per_device for tensor in self.arguments)


def imbalance(sharded: ModelReport, single: ModelReport, mesh: dict[str, int],
              outputs: Sequence[Tensor] = ()) -> Imbalance:
    """The load imbalance of ``sharded`` (``analyze(..., mesh=mesh)``) against ``single`` (the same model on one
    device): its arguments from the compiled program, its rows against ``single`` 's, and ``outputs`` (from
    ``module_outputs``) as given."""
    arguments = argument_tensors(sharded.compiler, mesh, ("params", *sharded.collections))
    return Imbalance(sharded.compiler.devices, arguments, list(outputs), row_work(sharded, single))


def argument_tensors(compiler: CompilerCost, mesh: dict[str, int],
                     collections: Sequence[str] = ("params",)) -> list[Tensor]:
    """Every argument of a sharded program as its entry computation takes it, named by its pytree path
    (``params/block0/mlp/fc1/kernel``, ``inputs/0``; an argument that holds variable ``collections`` by theirs
    alone). JAX splits an argument only where the mesh divides it, so the whole shape is the shard's times its
    tiles."""
    tensors = []
    for parameter in parse_module(compiler.hlo_text).entry.parameters():
        if parameter.shape.is_tuple:
            continue
        dtype, dims = parameter.shape.dtype, parameter.shape.dims
        tiles, spec = _tiling(parameter.attribute("sharding"), len(dims), mesh)
        shape = tuple(size * count for size, count in zip(dims, tiles))
        tensors.append(Tensor(_argument_name(parameter, collections), shape, NUMPY_NAMES.get(dtype, dtype), spec,
                              tiles, compiler.devices, PRIMITIVE_BYTES[dtype]))
    return tensors


def module_outputs(model: nn.Module, *inputs: Any, mesh: dict[str, int], variables: Any = None, rngs: Any = None,
                   target: str | None = None, **kwargs: Any) -> list[Tensor]:
    """The output of every module call in ``model``'s forward pass split over ``mesh`` as ``analyze`` splits it,
    sharded as the compiler shards it there: the forward pass compiled once more, each output inspected where it is
    made (``jax.debug.inspect_array_sharding``; where a dimension does not divide, the compiler pads its tiles).
    Named by module path (a method other than ``__call__`` after a dot: ``tokens.attend``; a later call of the
    same module ``(call 2)``; the model's own output ``output``)."""
    from flax import linen as nn

    from jaxcost.models.analysis import random_keys, sharded_arguments

    found: list[Tensor] = []

    def record(label: str, leaf: Any, sharding: Any) -> None:
        found.append(_inspected(label, leaf, sharding))

    def inspect(next_fun: Any, args: tuple, call_kwargs: dict, context: Any) -> Any:
        out = next_fun(*args, **call_kwargs)
        path = "/".join(context.module.path) or "output"
        name = path if context.method_name == "__call__" else f"{path}.{context.method_name}"
        leaves = [leaf for leaf in jax.tree_util.tree_leaves(out) if hasattr(leaf, "shape")]
        for index, leaf in enumerate(leaves):
            label = f"{name}[{index}]" if len(leaves) > 1 else name
            jax.debug.inspect_array_sharding(leaf, callback=functools.partial(record, label, leaf))
        return out

    keys = random_keys(rngs)
    with targets.compiling_for(target) as where:
        inputs, variables = sharded_arguments(model, inputs, variables, kwargs, keys, mesh,
                                     list(where.devices) if where else None)
        with nn.intercept_methods(inspect):  # a callback runs for each output the compiled program keeps
            compile_function(lambda v, k, *xs: model.apply(v, *xs, rngs=k or None, mutable=True, **kwargs),
                             variables, keys, *inputs)
    calls: Counter = Counter()
    for index, tensor in enumerate(found):
        calls[tensor.name] += 1
        if calls[tensor.name] > 1:
            found[index] = replace(tensor, name=f"{tensor.name} (call {calls[tensor.name]})")
    return found


def row_work(sharded: ModelReport, single: ModelReport) -> list[RowWork]:
    """Each row of ``sharded`` beside the same row of ``single`` (a row only one of them has: nothing in the
    other), in ``sharded`` 's order."""
    collective_flops: Counter = Counter()  # an all-reduce's FLOPs: one per element, each time it runs
    for collective in sharded.compiler.collectives:
        if collective.kind == "all-reduce" and collective.count is not None and sharded.placement is not None:
            row = sharded.placement.row(collective.op_name, collective.name)
            collective_flops[row] += collective.elements * collective.count
    alone = {row.path: row for row in single.rows}
    mine = {row.path: row for row in sharded.rows}
    work = []
    for path in [*mine, *(path for path in alone if path not in mine)]:
        on_mesh, by_itself = mine.get(path), alone.get(path)
        work.append(RowWork(path, sharded.compiler.devices, on_mesh.compiler_flops if on_mesh else 0,
                            by_itself.compiler_flops if by_itself else 0, on_mesh.compiler_bytes if on_mesh else 0,
                            by_itself.compiler_bytes if by_itself else 0, collective_flops[path]))
    return work


def tensor_table(tensors: Sequence[Tensor], most: int = MOST_SHOWN) -> str:
    """The tensors that add the most bytes beyond an even split, heaviest first; how many are left out."""
    ranked = sorted(tensors, key=lambda tensor: (-tensor.added_bytes, -tensor.bytes))
    devices = tensors[0].devices if tensors else 1
    rows = [[tensor.name, f"{tensor.dtype}[{','.join(map(str, tensor.shape))}]", _spec_text(tensor.spec),
             tensor.held, format_bytes(tensor.bytes_per_device), format_bytes(tensor.even_bytes_per_device),
             f"+{format_bytes(tensor.added_bytes / devices)}"] for tensor in ranked[:most]]
    lines = [f"bytes a device holds beyond an even split over {devices} devices, tensor by tensor:",
             table(["tensor", "shape", "spec", "held", "per device", "even split", "adds/device"], rows,
                   align="llllrrr")]
    rest = ranked[most:]
    if rest:
        added = sum(tensor.added_bytes for tensor in rest) / devices
        lines.append(f"{len(rest)} more left out, adding {format_bytes(added)} a device"
                     f"{' (all split evenly)' if not added else ''}")
    return "\n".join(lines)


def row_table(rows: Sequence[RowWork], most: int = MOST_SHOWN) -> str:
    """The rows whose work the sharding adds to most, heaviest first; how many are left out; what they add up to."""
    ranked = sorted(rows, key=lambda row: -row.added_flops)
    devices = rows[0].devices if rows else 1
    shown = [[row.path, f"{row.flops_per_device:,}", f"{row.single_flops:,}", f"{row.added_flops:+,}",
              f"{devices * row.collective_flops_per_device:,}", f"{row.added_bytes:+,}"] for row in ranked[:most]]
    lines = [f"work the sharding adds over all {devices} devices, row by row (FLOPs per device x {devices} less one "
             "device's):",
             table(["row", "FLOPs/device", "one device", "FLOPs added", "all-reduce FLOPs", "bytes added"], shown)]
    rest = ranked[most:]
    if rest:
        lines.append(f"{len(rest)} more rows left out, adding {sum(row.added_flops for row in rest):+,} FLOPs")
    total = sum(row.added_flops for row in rows)
    reduced = devices * sum(row.collective_flops_per_device for row in rows)
    lines.append(f"the rows add up to {total:+,} FLOPs, all the sharding adds (all-reduces' own: {reduced:,})")
    return "\n".join(lines)


def _argument_name(parameter: Instruction, collections: Sequence[str]) -> str:
    """An argument's pytree path as JAX names it in the program (``params['fc1']['kernel']``, or
    ``v['params']['fc1']['kernel']`` in an argument of collections), as a path: ``params/fc1/kernel``."""
    op_name = parameter.op_name
    keys = [key or index for key, index in PATH_STEP.findall(op_name)]
    head = [] if keys and keys[0] in collections else [op_name.split("[", 1)[0]]
    return "/".join(head + keys) or parameter.name


def _tiling(sharding: str, rank: int, mesh: dict[str, int]) -> tuple[tuple[int, ...], PartitionSpec]:
    """The tiles along each of ``rank`` dimensions of an HLO sharding (``{devices=[1,4,2]<=[8]
    last_tile_dim_replicate}``; any other, ``{replicated}``, is one tile), and the mesh axes that split each
    dimension, found from the devices along it."""
    tiled = _TILED.search(sharding)
    if not tiled:
        return (1,) * rank, PartitionSpec()
    dims = [int(size) for size in tiled.group(1).split(",")]
    assignment = tiled.group(2)
    ids = ([device for group in parse_groups(f"[{tiled.group(1)}]{assignment}") for device in group]
           if assignment.startswith("<=") else [int(device) for device in assignment.split(",")])
    where = coordinates(list(range(math.prod(mesh.values()))), mesh)
    spec: list[Any] = []
    for axis in range(rank):
        stride = math.prod(dims[axis + 1:])
        axes = spanned_axes([ids[step * stride] for step in range(dims[axis])], where, list(mesh))
        spec.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    return tuple(dims[:rank]), _trimmed(spec)


def _inspected(name: str, leaf: Any, sharding: Any) -> Tensor:
    """A module output as the compiler shards it (``sharding``, a NamedSharding over the mesh)."""
    if not isinstance(sharding, NamedSharding):
        raise ValueError(f"{name}: the compiler gave a {type(sharding).__name__}, not a NamedSharding over the mesh")
    spec = list(sharding.spec) + [None] * (len(leaf.shape) - len(sharding.spec))
    tiles = tuple(math.prod(sharding.mesh.shape[axis] for axis in _axes(entry)) for entry in spec)
    return Tensor(name, tuple(leaf.shape), str(leaf.dtype), _trimmed(spec), tiles, sharding.mesh.size,
                  leaf.dtype.itemsize)


def _axes(entry: Any) -> tuple[str, ...]:
    """The mesh axes of one entry of a PartitionSpec (None, a name, or a tuple of names)."""
    return () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)


def _trimmed(entries: list[Any]) -> PartitionSpec:
    """A PartitionSpec without the trailing dimensions it leaves whole."""
    while entries and entries[-1] is None:
        entries = entries[:-1]
    return PartitionSpec(*entries)


def _spec_text(spec: PartitionSpec) -> str:
    return "P(" + ", ".join("None" if entry is None else repr(entry) for entry in spec) + ")"
