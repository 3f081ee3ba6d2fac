"""Sharding a model over a device mesh, chosen by the names of the mesh's axes:

* ``data``: data parallel. The batch (each input's first axis) is split; parameters are replicated, so a
  training step all-reduces their gradients.
* ``fsdp``: fully sharded data parallel. The batch is split too, and every parameter along its largest axis
  that the axis size divides; the compiler gathers each layer's parameters where they are used and
  reduce-scatters their gradients.
* ``model``: tensor parallel, Megatron-style (Shoeybi et al. 2019): an MLP's first Dense (``fc1``) and the
  query, key and value projections split by output columns (heads), its second Dense (``fc2``) and the
  attention's output projection by input rows; one all-reduce after each pair in the forward pass.

Axes of other names are an error. Shapes are abstract (``jax.ShapeDtypeStruct`` with a ``NamedSharding``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXES = ("data", "fsdp", "model")
#: Parameter names split by columns (their output features or heads), and by rows.
COLUMN_PARALLEL = ("fc1", "query", "key", "value")
ROW_PARALLEL = ("fc2", "out")


#: The most simulated devices a mesh may ask for.
MOST_DEVICES = 4096


def parse_mesh(text: str) -> dict[str, int]:
    """``"data=2,model=4"`` as ``{"data": 2, "model": 4}`` (axes in that order)."""
    axes: dict[str, int] = {}
    for part in text.split(","):
        name, equals, size = part.strip().partition("=")
        if not equals or not size.strip().isdigit():
            raise ValueError(f"mesh: each axis is NAME=SIZE with a positive size, like data=2,model=4; got {text!r}")
        if name.strip() in axes:
            raise ValueError(f"mesh: axis {name.strip()!r} given twice in {text!r}")
        axes[name.strip()] = int(size)
    return check_mesh(axes)


def check_mesh(axes: dict) -> dict[str, int]:
    """The axes of a mesh, checked: known names (``AXES``), positive integer sizes, at most ``MOST_DEVICES``."""
    if not isinstance(axes, dict) or not axes:
        raise ValueError(f"mesh: give axis sizes like {{'data': 8}} or 'data=2,model=4', got {axes!r}")
    for name, size in axes.items():
        if name not in AXES:
            raise ValueError(f"mesh: unknown axis {name!r}; the axes are data (data parallel), fsdp "
                             "(parameters sharded too) and model (tensor parallel)")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"mesh: the size of {name!r} must be a positive integer, got {size!r}")
    if math.prod(axes.values()) > MOST_DEVICES:
        raise ValueError(f"mesh: {axes} needs {math.prod(axes.values()):,} devices; at most {MOST_DEVICES:,}")
    return dict(axes)


def make_mesh(axes: dict[str, int], devices: list[Any] | None = None) -> Mesh:
    """A mesh of ``axes`` over the first devices of ``devices`` (JAX's devices by default)."""
    devices = jax.devices() if devices is None else devices
    needed = math.prod(axes.values())
    if needed > len(devices):
        raise ValueError(f"mesh: {dict(axes)} needs {needed} devices; {len(devices)} are available")
    return Mesh(np.array(devices[:needed]).reshape(tuple(axes.values())), tuple(axes))


def _batch_axes(mesh: Mesh) -> tuple[str, ...]:
    return tuple(name for name in ("data", "fsdp") if name in mesh.shape)


def shard_batch(value: Any, mesh: Mesh) -> jax.ShapeDtypeStruct:
    """An input split along its first axis over the mesh's batch axes (``data``, ``fsdp``)."""
    axes = _batch_axes(mesh)
    ways = math.prod(mesh.shape[name] for name in axes)
    if value.ndim == 0 or (axes and value.shape[0] % ways):
        raise ValueError(f"inputs: a batch of {value.shape[0] if value.ndim else 'none'} does not split over "
                         f"{' x '.join(axes)} = {ways} devices")
    spec = PartitionSpec(axes or None) if axes else PartitionSpec()
    return jax.ShapeDtypeStruct(value.shape, value.dtype, sharding=NamedSharding(mesh, spec))


def _tensor_parallel(path: tuple[str, ...], shape: tuple[int, ...], size: int) -> list[str | None]:
    """The ``model`` axis's place in one parameter's spec (Megatron-style), or nowhere."""
    spec: list[str | None] = [None] * len(shape)
    owner = path[-2] if len(path) > 1 else ""
    leaf = path[-1]
    if owner in COLUMN_PARALLEL:  # kernel (in, out) or (in, heads, head); bias (out,) or (heads, head)
        axis = 1 if leaf == "kernel" else 0
    elif owner in ROW_PARALLEL and leaf == "kernel":  # kernel (in, out) or (heads, head, out); bias replicated
        axis = 0
    else:
        return spec
    if axis < len(shape) and shape[axis] % size == 0:
        spec[axis] = "model"
    return spec


def _fully_sharded(shape: tuple[int, ...], spec: list[str | None], size: int) -> list[str | None]:
    """``fsdp`` on the largest axis it divides that is not split already."""
    free = [axis for axis in range(len(shape)) if spec[axis] is None and shape[axis] % size == 0]
    if free:
        spec[max(free, key=lambda axis: shape[axis])] = "fsdp"
    return spec


def key_name(key: Any) -> str:
    return str(getattr(key, "key", getattr(key, "name", getattr(key, "idx", key))))


def shard_params(params: Any, mesh: Mesh) -> Any:
    """Every parameter (an abstract pytree) with its sharding over ``mesh`` (see the module docstring). A
    ``model`` or ``fsdp`` axis that splits no parameter is an error: the mesh would only replicate the work."""
    split: set[str] = set()

    def place(path: tuple, leaf: Any) -> jax.ShapeDtypeStruct:
        names = tuple(key_name(key) for key in path)
        spec: list[str | None] = [None] * len(leaf.shape)
        if "model" in mesh.shape:
            spec = _tensor_parallel(names, tuple(leaf.shape), mesh.shape["model"])
        if "fsdp" in mesh.shape:
            spec = _fully_sharded(tuple(leaf.shape), spec, mesh.shape["fsdp"])
        split.update(axis for axis in spec if axis)
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=NamedSharding(mesh, PartitionSpec(*spec)))

    placed = jax.tree_util.tree_map_with_path(place, params)
    for axis in ("model", "fsdp"):
        if mesh.shape.get(axis, 1) > 1 and axis not in split:
            what = ("fc1, fc2 and attention's query, key, value and out projections (Megatron-style)" if axis == "model"
                    else "an axis of any parameter")
            raise ValueError(f"mesh: {axis}={mesh.shape[axis]} splits no parameter of this model: it splits "
                             f"{what} whose sizes it divides")
    return placed


def replicated(tree: Any, mesh: Mesh) -> Any:
    """Every leaf of an abstract pytree replicated over ``mesh``."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding), tree)
