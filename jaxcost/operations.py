"""Analytic costs of the operations between the layers: normalizations, activations, pooling and embedding
lookups, counted on the operations flax and JAX write for them. Pure Python ints, no JAX.

Counted as XLA's cost analysis counts an HLO program: one flop per output element of an elementwise
arithmetic op (a comparison, a select and a max included), ``inputs - outputs`` flops for a reduction,
``window - 1`` flops per output for a pooling window (taps on padding included), one transcendental and no
flop per element of ``exp``, ``tanh``, ``rsqrt`` and ``log``. Data movement (broadcasts, reshapes) costs
no flops. Each formula equals XLA's count of the program as JAX writes it (``jax.jit(f).lower(...)
.cost_analysis()``); the optimized program may differ by XLA's rewrites (``jaxcost.rewrites`` lists them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from jaxcost.specs import describe_value, positive_int, positive_tuple


@dataclass(frozen=True)
class OpsCost:
    """Analytic cost of an operation: flops, transcendentals and its minimal memory traffic (inputs and
    parameters read once, outputs written once)."""

    flops: int
    transcendentals: int = 0
    bytes_accessed: int = 0

    def __add__(self, other: OpsCost) -> OpsCost:
        return OpsCost(self.flops + other.flops, self.transcendentals + other.transcendentals,
                       self.bytes_accessed + other.bytes_accessed)

    def __mul__(self, times: int) -> OpsCost:
        return OpsCost(self.flops * times, self.transcendentals * times, self.bytes_accessed * times)

    def __repr__(self) -> str:
        return (f"OpsCost(flops={self.flops:,}, transcendentals={self.transcendentals:,}, "
                f"bytes_accessed={self.bytes_accessed:,})")


def _elements(shape: Sequence[int], argument: str = "shape") -> int:
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"{argument}: must be a sequence of positive ints, got {describe_value(shape)}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims):
        raise ValueError(f"{argument}: must be a non-empty sequence of positive ints, got {shape!r}")
    return math.prod(dims)


def _rows(shape: Sequence[int], axes: int, itemsize: int) -> tuple[int, int, int]:
    """Elements, rows and features of a normalization over the last ``axes`` axes of ``shape``."""
    elements = _elements(shape)
    positive_int("itemsize", itemsize)
    if isinstance(axes, bool) or not isinstance(axes, int) or not 1 <= axes <= len(tuple(shape)):
        raise ValueError(f"axes: must be how many trailing axes are normalized, 1 to {len(tuple(shape))}, "
                         f"got {axes!r}")
    features = math.prod(tuple(shape)[-axes:])
    return elements, elements // features, features


def _channels_last(shape: Sequence[int], itemsize: int) -> tuple[int, int]:
    """Elements and channels (the last axis) of a batch-and-channels input of rank 2 or more."""
    elements = _elements(shape)
    positive_int("itemsize", itemsize)
    if len(tuple(shape)) < 2:
        raise ValueError(f"shape: needs a batch axis and a channel axis at least, got {tuple(shape)}")
    return elements, tuple(shape)[-1]


def _statistics(elements: int, groups: int, fast_variance: bool) -> int:
    """Flops of a mean and a variance over ``groups`` equal groups of ``elements`` in all.

    Fast: ``mean(x)``, ``mean(x²)`` (two reductions, two divides), then ``max(0, mean(x²) - mean²)``.
    Otherwise: ``mean(x)``, then ``mean((x - mean)²)`` (a subtract and a square per element, no max).
    """
    reductions = 2 * (elements - groups) + 2 * groups  # two sums and their divides
    if fast_variance:
        return reductions + elements + 3 * groups  # x², then mean², subtract, max per group
    return reductions + 2 * elements


def _bytes(itemsize: int, *element_counts: int) -> int:
    return itemsize * sum(element_counts)


def layer_norm(shape: Sequence[int], axes: int = 1, use_scale: bool = True, use_bias: bool = True,
               fast_variance: bool = True, itemsize: int = 4) -> OpsCost:
    """``flax LayerNorm`` over the last ``axes`` axes: statistics per row, ``(x - mean)``, ``rsqrt(var + ε)``
    per row (one transcendental), times the scale (a product per element, the scale broadcast over rows),
    times the centred input, plus the bias."""
    elements, rows, features = _rows(shape, axes, itemsize)
    flops = _statistics(elements, rows, fast_variance) + elements + rows  # centre, add ε
    flops += elements * (1 + use_scale + use_bias)
    params = features * (use_scale + use_bias)
    return OpsCost(flops, rows, _bytes(itemsize, 2 * elements, params))


def rms_norm(shape: Sequence[int], axes: int = 1, use_scale: bool = True, itemsize: int = 4) -> OpsCost:
    """``flax RMSNorm``: ``mean(x²)`` per row, ``rsqrt(· + ε)`` (one transcendental per row), times the scale
    (broadcast over rows), times the input."""
    elements, rows, features = _rows(shape, axes, itemsize)
    flops = elements + (elements - rows) + rows + rows  # x², sum, divide, add ε
    flops += elements * (1 + use_scale)
    return OpsCost(flops, rows, _bytes(itemsize, 2 * elements, features * use_scale))


def batch_norm(shape: Sequence[int], train: bool = False, use_scale: bool = True, use_bias: bool = True,
               fast_variance: bool = True, itemsize: int = 4) -> OpsCost:
    """``flax BatchNorm`` over the last axis (features): with running averages, ``(x - mean)`` and
    ``rsqrt(var + ε) · scale`` per feature, times, plus the bias. Training: the batch statistics per
    feature first, and both running averages updated (``m·avg + (1 - m)·stat``: three flops per feature
    each); the running averages are read and written."""
    elements, features = _channels_last(shape, itemsize)
    flops = elements + features + elements  # centre, add ε, multiply by the factor
    flops += features * use_scale + elements * use_bias
    moved = 2 * elements + features * (use_scale + use_bias)
    if train:
        flops += _statistics(elements, features, fast_variance) + 6 * features
        moved += 2 * 2 * features  # running mean and variance, read and written
    else:
        moved += 2 * features  # running mean and variance, read
    return OpsCost(flops, features, _bytes(itemsize, moved))


def group_norm(shape: Sequence[int], groups: int, use_scale: bool = True, use_bias: bool = True,
               fast_variance: bool = True, itemsize: int = 4) -> OpsCost:
    """``flax GroupNorm`` on ``(N, ..., C)``: statistics per (example, group), broadcast to one value per
    (example, channel); there ``rsqrt(var + ε)`` (an add and a transcendental) and the scale's product; then
    per element ``(x - mean)``, times the factor, plus the bias."""
    elements, features = _channels_last(shape, itemsize)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0 or features % groups:
        raise ValueError(f"groups: must be a positive int that divides the {features} features, got {groups!r}")
    examples = tuple(shape)[0]
    factors = examples * features  # one normalizing factor per example and channel
    flops = _statistics(elements, examples * groups, fast_variance)
    flops += factors * (1 + use_scale) + elements * (2 + use_bias)  # add ε, scale; centre, multiply, bias
    params = features * (use_scale + use_bias)
    return OpsCost(flops, factors, _bytes(itemsize, 2 * elements, params))


def pooling(kind: str, shape: Sequence[int], window: Sequence[int], strides: Sequence[int] | None = None,
            padding: str | Sequence[tuple[int, int]] = "VALID", count_include_pad: bool = True,
            itemsize: int = 4) -> OpsCost:
    """``nn.max_pool`` / ``nn.avg_pool`` on a channels-last input ``(N, *spatial, C)``: ``window - 1`` maxima
    or sums per output (every tap, padding included), and for the average one divide per output. With
    ``count_include_pad=False`` the divisor is itself a windowed sum, over ones of one image and one channel."""
    if kind not in ("max", "avg"):
        raise ValueError(f"kind: must be 'max' or 'avg', got {kind!r}")
    elements, _ = _channels_last(shape, itemsize)
    spatial = tuple(shape)[1:-1]
    window = positive_tuple("window", window, len(spatial))
    strides = positive_tuple("strides", 1 if strides is None else strides, len(spatial))
    pads = _pool_pads(padding, spatial, window, strides)
    out_spatial = [(size + lo + hi - w) // s + 1 for size, w, s, (lo, hi) in zip(spatial, window, strides, pads)]
    if any(size <= 0 for size in out_spatial):
        raise ValueError(f"window: {window} is larger than the padded input {spatial}")
    outputs = shape[0] * math.prod(out_spatial) * shape[-1]
    flops = (math.prod(window) - 1) * outputs
    if kind == "avg":  # a divide per output; the divisor without padding is a window sum over ones
        flops += outputs + (0 if count_include_pad else (math.prod(window) - 1) * math.prod(out_spatial))
    return OpsCost(flops, 0, _bytes(itemsize, elements, outputs))


def _pool_pads(padding: str | Sequence[tuple[int, int]], spatial: tuple[int, ...], window: tuple[int, ...],
               strides: tuple[int, ...]) -> list[tuple[int, int]]:
    """(lo, hi) padding per spatial dimension, as ``lax.padtype_to_pads`` resolves SAME and VALID."""
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return [(0, 0)] * len(spatial)
        if padding.upper() != "SAME":
            raise ValueError(f"padding: must be 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}")
        pads = []
        for size, w, s in zip(spatial, window, strides):
            total = max((-(-size // s) - 1) * s + w - size, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    try:
        pairs = [tuple(pair) for pair in padding]
    except TypeError:
        raise ValueError(f"padding: must be 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}") from None
    if len(pairs) != len(spatial) or any(len(pair) != 2 or any(isinstance(side, bool) or not isinstance(side, int)
                                                               or side < 0 for side in pair) for pair in pairs):
        raise ValueError(f"padding: needs {len(spatial)} (lo, hi) pairs of non-negative ints, got {padding!r}")
    return [(lo, hi) for lo, hi in pairs]


def embedding_lookup(indices: Sequence[int], features: int, itemsize: int = 4, index_itemsize: int = 4) -> OpsCost:
    """``nn.Embed``: a gather, no multiply-add. ``jnp.take`` as flax calls it does index arithmetic: negative
    indices wrapped (a compare, an add, a select per index), indices out of range detected (two compares and
    an ``and`` per index) and each output element selected between its row and the NaN fill: 6 flops per
    index, 1 per output element. The table rows it takes are read (one per index), the indices read, the
    output written."""
    lookups = _elements(indices, "indices")
    for name, value in (("features", features), ("itemsize", itemsize), ("index_itemsize", index_itemsize)):
        positive_int(name, value)
    return OpsCost(6 * lookups + lookups * features, 0, lookups * (2 * features * itemsize + index_itemsize))


def softmax(shape: Sequence[int], axis_length: int | None = None, log: bool = False) -> OpsCost:
    """``nn.softmax`` over one axis (the last by default): the row maximum (a reduction and a ``max`` with
    ``-inf``), ``x - max``, ``exp``, the row sum, a divide. ``log_softmax``: ``x - max``, ``exp``, the row
    sum, its ``log`` and a subtract."""
    elements = _elements(shape)
    length = tuple(shape)[-1] if axis_length is None else positive_int("axis_length", axis_length)
    if length not in tuple(shape):
        raise ValueError(f"axis_length: must be the length of one axis of {tuple(shape)}, got {axis_length!r}")
    rows = elements // length
    flops = 2 * (elements - rows) + rows + 2 * elements  # two reductions, max(-inf), subtract, divide
    return OpsCost(flops, elements + (rows if log else 0), 0)


#: Flops and transcendentals per element of each activation, as ``jax.nn`` writes it.
ACTIVATIONS: dict[str, tuple[int, int]] = {
    "relu": (1, 0),          # max(x, 0)
    "relu6": (2, 0),         # min(max(x, 0), 6)
    "sigmoid": (3, 1),       # logistic, written 1 / (1 + exp(-x)): negate, exp, add, divide
    "tanh": (0, 1),
    "silu": (4, 1),          # x · sigmoid(x)
    "swish": (4, 1),
    "gelu": (8, 1),          # tanh form: x³ (two products), ·c, +x, ·√(2/π), tanh, +1, ·0.5, ·x
    "leaky_relu": (3, 0),    # where(x ≥ 0, x, slope · x): compare, product, select
    "hard_sigmoid": (4, 0),  # relu6(x + 3) / 6
    "hard_swish": (5, 0),    # x · hard_sigmoid(x)
    "softplus": (6, 2),      # logaddexp(x, 0)
    "mish": (7, 3),          # x · tanh(softplus(x))
}


def activation(name: str, shape: Sequence[int]) -> OpsCost:
    """An activation function applied to every element of ``shape`` (``ACTIVATIONS`` lists them)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"name: unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    elements = _elements(shape)
    flops, transcendentals = ACTIVATIONS[name]
    return OpsCost(flops * elements, transcendentals * elements, 0)


