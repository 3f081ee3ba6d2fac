"""What each flax module costs on paper, from its attributes and the shapes it was called with: the layer
spec of a Conv, Dense, DenseGeneral or ConvTranspose, the multiply-adds of attention and einsum products,
and the operation formulas of normalizations and embedding lookups (``jaxcost.operations``). linen and
nnx modules alike, subclasses included: a module takes the formula of the nearest class in its MRO that has one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import numpy as np
from flax import nnx

from jaxcost import operations
from jaxcost.formulas import attention_macs, einsum_macs
from jaxcost.operations import OpsCost
from jaxcost.specs import Conv, Dense, Spec


@dataclass(frozen=True)
class Paper:
    """One module call on paper: a layer spec (analytic formulas of ``jaxcost.analytic``), the multiply-adds
    of products without a spec, or an operation formula (its forward pass, and its training step where known);
    or why its formula failed."""

    spec: Spec | None = None
    macs: int = 0
    ops: OpsCost | None = None
    #: The operation's training step (``mode="train"`` of ``jaxcost.operations``); without one a training step's
    #: row has no formula.
    training_ops: OpsCost | None = None
    #: The primitive one call issues, and how many of it: how its calls are counted in a traced program.
    signature: tuple[str, int] | None = None
    #: Elements of the first signature operation's result in one call (``signature_elements``), or None.
    signature_elements: int | None = None
    #: How often a training step performs the products of ``macs``: the forward pass and one pass per operand
    #: the gradient is taken of: 3 for two differentiated operands (weights and activations, or two activations;
    #: tied logits, ``Embed.attend``, take this default).
    training_passes: int = 3
    #: Why the module's formula failed (its ``ValueError``); empty when it gave figures or has none.
    error: str = ""


DOT = ("dot_general", 1)
CONVOLUTION = ("conv_general_dilated", 1)
RSQRT = ("rsqrt", 1)
GATHER = ("gather", 1)


@dataclass(frozen=True)
class Traced:
    """A module call as traced: the module, its first input and output arrays, and its arguments."""

    module: Any
    x: Any
    y: Any
    args: tuple = ()
    kwargs: dict | None = None


_FORMULAS: list[tuple[tuple[type, ...], Callable[[Traced], Paper | None]]] = []


def formula(*classes: type) -> Callable:
    """Registers the paper cost of the modules of ``classes`` and of their subclasses, unless a subclass has a
    formula of its own (``formula_of``)."""
    def register(function: Callable[[Traced], Paper | None]) -> Callable[[Traced], Paper | None]:
        _FORMULAS.append((classes, function))
        return function
    return register


def formula_of(module: Any) -> Callable[[Traced], Paper | None] | None:
    """The formula of ``module``: the one registered for the class nearest to its own in its MRO (for one class
    registered twice, the first), whatever the order of registration; None for a module without one."""
    mro = type(module).__mro__
    distances = [(min(mro.index(cls) for cls in classes if cls in mro), index)
                 for index, (classes, _) in enumerate(_FORMULAS) if any(cls in mro for cls in classes)]
    return _FORMULAS[min(distances)[1]][1] if distances else None


def paper_cost(call: Traced) -> Paper:
    """The paper cost of one module call; empty for a module without a formula or a configuration the
    formulas do not cover, and for a formula that raises a ``ValueError`` its reason (``Paper.error``); the
    compiler figures of its row still count."""
    function = formula_of(call.module)
    if function is None:
        return Paper()
    try:
        return function(call) or Paper()
    except ValueError as error:
        return Paper(error=str(error) or type(error).__name__)


def _tuple(value: int | tuple) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


def _per_dim(value: int | tuple | None, rank: int) -> tuple[int, ...]:
    """A stride or dilation per spatial dimension (None and an int broadcast, as flax does)."""
    value = 1 if value is None else value
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _itemsize(array: Any) -> int:
    return array.dtype.itemsize


def _operation(cost: Callable[..., OpsCost], *args: Any, signature: tuple[str, int]) -> Paper:
    """An operation formula of ``jaxcost.operations`` for one call: its forward pass and its training step."""
    return Paper(ops=cost(*args), training_ops=cost(*args, mode="train"), signature=signature)


def signature_elements(paper: Paper, y: Any) -> int | None:
    """Elements of the first signature operation's result in one call: a product's or a lookup's is the output
    (``y``), a norm's ``rsqrt`` gives one value per statistic (its formula's transcendentals); None for the
    others (attention's first product is its scores)."""
    if paper.signature == RSQRT and paper.ops is not None:
        return paper.ops.transcendentals
    if paper.signature in (DOT, CONVOLUTION, GATHER) and y is not None:
        return math.prod(y.shape)
    return None


def _flat_batch(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """``shape`` with every axis before the last ``rank + 1`` flattened into one batch axis."""
    return (math.prod(shape[:-rank - 1]) if len(shape) > rank + 1 else 1, *shape[-rank - 1:])


def conv_spec(module: Any, x: Any, features: int, dtype: Any) -> Conv | None:
    """The spec of one call of a linen or nnx Conv (their attributes share names), batch dims flattened.

    None for padding jaxcost does not count (CIRCULAR, CAUSAL, ...).
    """
    kernel = _tuple(module.kernel_size)
    padding = module.padding
    if isinstance(padding, str) and padding.upper() not in ("SAME", "VALID"):
        return None
    return Conv(_flat_batch(tuple(x.shape), len(kernel)), features, kernel, strides=module.strides or 1,
                padding=padding, input_dilation=module.input_dilation or 1,
                kernel_dilation=module.kernel_dilation or 1, feature_group_count=module.feature_group_count,
                use_bias=module.use_bias, dtype=dtype)


def transpose_pads(kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(lo, hi) padding of the dilated-input convolution that ``lax.conv_transpose`` computes for SAME or VALID
    (``kernel`` is the dilated kernel size)."""
    if padding == "SAME":
        total = kernel + stride - 2
        lo = kernel - 1 if stride > kernel - 1 else -(-total // 2)
    else:
        total = kernel + stride - 2 + max(kernel - stride, 0)
        lo = kernel - 1
    return lo, total - lo


def conv_transpose_spec(module: Any, x: Any, y: Any, features: int) -> Conv | None:
    """A transposed convolution as the convolution it computes, marked ``transposed`` (even at stride 1): the
    input dilated by the strides, the padding of ``lax.conv_transpose``. None for other padding, or when the
    spec's output is not the traced one (a flax or JAX version that pads differently)."""
    kernel = _tuple(module.kernel_size)
    padding = module.padding.upper() if isinstance(module.padding, str) else None
    if padding not in ("SAME", "VALID"):
        return None
    strides, dilation = _per_dim(module.strides, len(kernel)), _per_dim(module.kernel_dilation, len(kernel))
    pads = [transpose_pads((k - 1) * d + 1, s, padding) for k, s, d in zip(kernel, strides, dilation)]
    spec = Conv(_flat_batch(tuple(x.shape), len(kernel)), features, kernel, strides=1, padding=pads,
                input_dilation=strides, kernel_dilation=dilation, use_bias=module.use_bias, dtype=y.dtype,
                transposed=True)
    return spec if spec.output_spatial == tuple(y.shape[-len(kernel) - 1:-1]) else None


@formula(nn.Dense)
def _dense(call: Traced) -> Paper:
    return Paper(Dense(tuple(call.x.shape), call.module.features, use_bias=call.module.use_bias,
                       dtype=call.y.dtype), signature=DOT)


@formula(nnx.Linear)
def _linear(call: Traced) -> Paper:
    return Paper(Dense(tuple(call.x.shape), call.module.out_features, use_bias=call.module.use_bias,
                       dtype=call.y.dtype), signature=DOT)


@formula(nn.DenseGeneral)
def _dense_general(call: Traced) -> Paper | None:
    """A DenseGeneral that contracts the input's last axes is a Dense layer on those axes flattened (the
    same products and parameters); one with batch axes or inner contracted axes has no formula."""
    module, x = call.module, call.x
    contracted = sorted(axis % x.ndim for axis in _tuple(module.axis))
    if module.batch_dims or contracted != list(range(x.ndim - len(contracted), x.ndim)):
        return None
    inputs = (*x.shape[:-len(contracted)], math.prod(x.shape[-len(contracted):]))
    return Paper(Dense(inputs, math.prod(_tuple(module.features)), use_bias=module.use_bias, dtype=call.y.dtype),
                 signature=DOT)


@formula(nn.Conv)
def _conv(call: Traced) -> Paper:
    return Paper(conv_spec(call.module, call.x, call.module.features, call.y.dtype), signature=CONVOLUTION)


@formula(nnx.Conv)
def _nnx_conv(call: Traced) -> Paper:
    return Paper(conv_spec(call.module, call.x, call.module.out_features, call.y.dtype), signature=CONVOLUTION)


@formula(nn.ConvTranspose)
def _conv_transpose(call: Traced) -> Paper:
    return Paper(conv_transpose_spec(call.module, call.x, call.y, call.module.features), signature=CONVOLUTION)


@formula(nnx.ConvTranspose)
def _nnx_conv_transpose(call: Traced) -> Paper:
    return Paper(conv_transpose_spec(call.module, call.x, call.y, call.module.out_features), signature=CONVOLUTION)


def _attention(call: Traced, head_features: int) -> Paper:
    """The multiply-adds of one attention call's two products, from its heads and its query and key lengths
    (its projections are Dense rows of their own)."""
    x, kwargs = call.x, call.kwargs or {}
    keys = call.args[1] if len(call.args) > 1 and call.args[1] is not None else kwargs.get(
        "inputs_k", kwargs.get("inputs_kv"))
    keys = x if keys is None else keys
    return Paper(macs=attention_macs(math.prod(x.shape[:-2]), call.module.num_heads, x.shape[-2], keys.shape[-2],
                                     head_features), signature=("dot_general", 2),  # the scores, the weighted sum
                 training_passes=3)  # each product differentiated w.r.t. both operands (query, key; weights, value)


@formula(nn.MultiHeadDotProductAttention)
def _linen_attention(call: Traced) -> Paper:
    return _attention(call, (call.module.qkv_features or call.x.shape[-1]) // call.module.num_heads)


@formula(nnx.MultiHeadAttention)
def _nnx_attention(call: Traced) -> Paper:
    return _attention(call, call.module.head_dim)


@formula(nn.Einsum)
def _einsum(call: Traced) -> Paper | None:
    if not call.module.einsum_str:
        return None
    return Paper(macs=einsum_macs(call.module.einsum_str, tuple(call.x.shape), tuple(call.module.shape)),
                 signature=DOT, training_passes=3)  # differentiated w.r.t. the input and the kernel


def _trailing_axes(axes: Any, rank: int) -> int | None:
    """How many trailing axes ``axes`` names, or None when they are not the last ones."""
    named = sorted(axis % rank for axis in _tuple(axes))
    return len(named) if named == list(range(rank - len(named), rank)) else None


def _float32(call: Traced) -> bool:
    """The norm formulas count a float32 computation without a mask: other dtypes (of the input, the output,
    the parameters or the computation) add conversions they do not count, and a mask its own arithmetic."""
    module = call.module
    dtypes = (call.x.dtype, call.y.dtype, getattr(module, "param_dtype", "float32"), getattr(module, "dtype", None))
    masked = call.kwargs and call.kwargs.get("mask") is not None
    return all(dtype is None or str(np.dtype(dtype)) == "float32" for dtype in dtypes) and not masked


def _normalized_axes(call: Traced) -> int | None:
    """How many trailing axes a LayerNorm or RMSNorm normalizes, in float32, with its scale on the same axes;
    None for any other configuration (no formula)."""
    module, x = call.module, call.x
    axes = _trailing_axes(module.reduction_axes, x.ndim)
    if not axes or _trailing_axes(module.feature_axes, x.ndim) != axes or not _float32(call):
        return None
    return axes


@formula(nn.LayerNorm, nnx.LayerNorm)
def _layer_norm(call: Traced) -> Paper | None:
    axes, module = _normalized_axes(call), call.module
    if not axes:
        return None
    return _operation(operations.layer_norm, tuple(call.x.shape), axes, module.use_scale, module.use_bias,
                      module.use_fast_variance, _itemsize(call.x), signature=RSQRT)


@formula(nn.RMSNorm, nnx.RMSNorm)
def _rms_norm(call: Traced) -> Paper | None:
    axes = _normalized_axes(call)
    return _operation(operations.rms_norm, tuple(call.x.shape), axes, call.module.use_scale, _itemsize(call.x),
                      signature=RSQRT) if axes else None


@formula(nn.BatchNorm, nnx.BatchNorm)
def _batch_norm(call: Traced) -> Paper | None:
    module, x = call.module, call.x
    if _tuple(module.axis) not in ((-1,), (x.ndim - 1,)) or not _float32(call):
        return None
    given = call.args[1] if len(call.args) > 1 else (call.kwargs or {}).get("use_running_average")
    running = module.use_running_average if given is None else given
    return _operation(operations.batch_norm, tuple(x.shape), not running, module.use_scale, module.use_bias,
                      module.use_fast_variance, _itemsize(x), signature=RSQRT)


@formula(nn.GroupNorm, nnx.GroupNorm)
def _group_norm(call: Traced) -> Paper | None:
    module, x = call.module, call.x
    if module.reduction_axes is not None or not _float32(call):
        return None
    channels = x.shape[-1]
    groups = channels // module.group_size if module.group_size else module.num_groups
    return _operation(operations.group_norm, tuple(x.shape), groups, module.use_scale, module.use_bias,
                      module.use_fast_variance, _itemsize(x), signature=RSQRT)


@formula(nn.Embed, nnx.Embed)
def _embed(call: Traced) -> Paper | None:
    """A table looked up with int32 ids in its own dtype (another computation dtype converts the whole table
    first, other ids are converted too)."""
    table = np.dtype(call.module.param_dtype)
    computed = table if call.module.dtype is None else np.dtype(call.module.dtype)
    if str(call.x.dtype) != "int32" or not table == computed == np.dtype(call.y.dtype):
        return None
    return _operation(operations.embedding_lookup, tuple(call.x.shape) or (1,), call.y.shape[-1], _itemsize(call.y),
                      _itemsize(call.x), signature=GATHER)
