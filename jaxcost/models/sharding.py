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


def parse_mesh(text: str) -> dict[str, int]:
    """``"data=2,model=4"`` as ``{"data": 2, "model": 4}`` (axes in that order)."""
    axes: dict[str, int] = {}
    for part in text.split(","):
        name, equals, size = part.strip().partition("=")
        if not equals or not size.strip().isdigit() or int(size) < 1:
            raise ValueError(f"mesh: each axis is NAME=SIZE with a positive size, like data=2,model=4; got {text!r}")
        if name.strip() not in AXES:
            raise ValueError(f"mesh: unknown axis {name.strip()!r}; the axes are data (data parallel), fsdp "
                             "(parameters sharded too) and model (tensor parallel)")
        if name.strip() in axes:
            raise ValueError(f"mesh: axis {name.strip()!r} given twice in {text!r}")
        axes[name.strip()] = int(size)
    return axes


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


def _key_name(key: Any) -> str:
    return str(getattr(key, "key", getattr(key, "name", getattr(key, "idx", key))))


def shard_params(params: Any, mesh: Mesh) -> Any:
    """Every parameter (an abstract pytree) with its sharding over ``mesh`` (see the module docstring)."""
    def place(path: tuple, leaf: Any) -> jax.ShapeDtypeStruct:
        names = tuple(_key_name(key) for key in path)
        spec: list[str | None] = [None] * len(leaf.shape)
        if "model" in mesh.shape:
            spec = _tensor_parallel(names, tuple(leaf.shape), mesh.shape["model"])
        if "fsdp" in mesh.shape:
            spec = _fully_sharded(tuple(leaf.shape), spec, mesh.shape["fsdp"])
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=NamedSharding(mesh, PartitionSpec(*spec)))

    return jax.tree_util.tree_map_with_path(place, params)


def replicated(tree: Any, mesh: Mesh) -> Any:
    """Every leaf of an abstract pytree replicated over ``mesh``."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding), tree)
