"""Analytic costs of the operations between the layers: normalizations, activations, pooling and embedding
lookups, counted on the operations flax and JAX write for them. Pure Python ints, no JAX.

Counted as XLA's cost analysis counts an HLO program: one flop per output element of an elementwise
arithmetic op (a comparison, a select and a max included), ``inputs - outputs`` flops for a reduction,
``window - 1`` flops per output for a pooling window (taps on padding included), one transcendental and no
flop per element of ``exp``, ``tanh``, ``rsqrt`` and ``log``. Data movement (broadcasts, reshapes) costs
no flops. Each formula equals XLA's count of the program as JAX writes it (``jax.jit(f).lower(...)
.cost_analysis()``); the optimized program may differ by XLA's rewrites (``jaxcost.rewrites`` lists them).

``mode="train"`` counts a training step as ``jaxcost.analytic`` does: the forward pass, then the pullback of an
output gradient w.r.t. the input and the parameters (``jax.vjp``), as JAX differentiates each primitive; the
derivatives of forward values (``1 - tanh``, ``2x``) are computed in the forward pass. Free in the program as
written: dead code JAX drops when it lowers (a derivative a ``stop_gradient`` discards), and ``x + 0``, ``x - 0``
and ``x · 1`` against a constant, folded when JAX's StableHLO becomes HLO. Its traffic: inputs, parameters and
output gradient read once; outputs and gradients written once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

from jaxcost.formulas import Mode, check_mode
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


def _normalize_gradient(elements: int, factors: int, scaled: int, features: int, use_scale: bool, use_bias: bool,
                        statistics: bool) -> int:
    """Flops of the gradient of ``(x - mean) · factor + bias``, ``factor = rsqrt(var + ε) · scale``: ``factors``
    values of the rsqrt, ``scaled`` of the factor, ``features`` of scale and bias. ``statistics``: mean and
    variance are the input's (differentiated), not running averages (constants)."""
    flops = elements  # the centred input's gradient: g · factor
    if use_scale or statistics:  # the factor's: g · (x - mean), summed to the factor's shape
        flops += elements + (elements - scaled)
    if use_bias:  # g summed over everything but the features
        flops += elements - features
    if use_scale:  # rsqrt · g_factor, summed to the scale's shape
        flops += scaled + (scaled - features)
    if statistics:
        if use_scale:  # the rsqrt's gradient: g_factor · scale, summed to one per factor
            flops += scaled + (scaled - factors)
        flops += 3 * factors  # rsqrt'(v) = -½·rsqrt(v)/v: a divide and a product in the forward pass; times it
    return flops


def _statistics_gradient(elements: int, statistics: int, factors: int, fast_variance: bool,
                         use_mean: bool = True) -> int:
    """Flops of the gradient of ``statistics`` means and variances (``factors`` after their broadcast) back to
    the input: as ``_statistics`` computes them, and through the centring ``x - mean``. ``use_mean=False``:
    RMSNorm's ``mean(x²)`` alone."""
    flops = (factors - statistics) * (1 + use_mean)  # the broadcast statistics' gradients, summed per statistic
    if not use_mean:  # 2x in the forward pass; g_var / count, times 2x, added to the input's gradient
        return flops + statistics + 3 * elements
    flops += elements + (elements - factors)  # the centring's gradient of the mean: -g summed per factor
    if fast_variance:
        # in the forward pass: 2x, 2·mean, and max(0, ·)'s mask (ties split in half)
        forward_side = elements + statistics + max_mask_flops() * statistics
        variance = 4 * statistics  # g_var times that mask; into mean²: negated, times 2·mean, added
        means = 2 * statistics + 3 * elements  # mean(x) and mean(x²): a divide each, then times 2x, both added
        return flops + forward_side + variance + means
    forward_side = elements  # 2(x - mean), on x - mean computed again for the variance
    variance = statistics + elements  # g_var / count, times 2(x - mean)
    centred = elements + elements + (elements - statistics)  # added to the input's gradient; negated, summed
    means = 2 * statistics + elements  # added to the mean's gradient, / count, added to the input's
    return flops + forward_side + variance + centred + means


@functools.cache
def max_mask_flops() -> int:
    """Flops per element of the mask by which JAX's gradient of ``max(a, b)`` splits a tie in half, as the installed
    JAX writes it: two compares, two selects and a divide up to jax 0.10; one flop fewer from jax 0.11 (every
    fast-variance statistic of LayerNorm, GroupNorm and BatchNorm counts one flop fewer in XLA's count of jax
    0.11.2's training step)."""
    try:
        major, minor = (int(part) for part in metadata.version("jax").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return 5
    return 5 if (major, minor) < (0, 11) else 4


def _bytes(itemsize: int, *element_counts: int) -> int:
    return itemsize * sum(element_counts)


def layer_norm(shape: Sequence[int], axes: int = 1, use_scale: bool = True, use_bias: bool = True,
               fast_variance: bool = True, itemsize: int = 4, mode: Mode = "forward") -> OpsCost:
    """``flax LayerNorm`` over the last ``axes`` axes: statistics per row, ``(x - mean)``, ``rsqrt(var + ε)``
    per row (one transcendental), times the scale (a product per element, the scale broadcast over rows),
    times the centred input, plus the bias. ``mode="train"``: and its gradient, through the statistics."""
    training = check_mode(mode) == "train"
    elements, rows, features = _rows(shape, axes, itemsize)
    flops = _statistics(elements, rows, fast_variance) + elements + rows  # centre, add ε
    flops += elements * (1 + use_scale + use_bias)
    params = features * (use_scale + use_bias)
    if not training:
        return OpsCost(flops, rows, _bytes(itemsize, 2 * elements, params))
    scaled = elements if use_scale else rows  # rsqrt per row times the scale per feature: one factor an element
    flops += _normalize_gradient(elements, rows, scaled, features, use_scale, use_bias, statistics=True)
    flops += _statistics_gradient(elements, rows, rows, fast_variance)
    return OpsCost(flops, rows, _bytes(itemsize, 4 * elements, 2 * params))


def rms_norm(shape: Sequence[int], axes: int = 1, use_scale: bool = True, itemsize: int = 4,
             mode: Mode = "forward") -> OpsCost:
    """``flax RMSNorm``: ``mean(x²)`` per row, ``rsqrt(· + ε)`` (one transcendental per row), times the scale
    (broadcast over rows), times the input. flax writes ``x - 0`` first, folded before XLA counts (no flop).
    ``mode="train"``: and its gradient, through ``mean(x²)``."""
    training = check_mode(mode) == "train"
    elements, rows, features = _rows(shape, axes, itemsize)
    flops = elements + (elements - rows) + rows + rows  # x², sum, divide, add ε
    flops += elements * (1 + use_scale)
    params = features * use_scale
    if not training:
        return OpsCost(flops, rows, _bytes(itemsize, 2 * elements, params))
    scaled = elements if use_scale else rows
    flops += _normalize_gradient(elements, rows, scaled, features, use_scale, False, statistics=True)
    flops += _statistics_gradient(elements, rows, rows, fast_variance=True, use_mean=False)
    return OpsCost(flops, rows, _bytes(itemsize, 4 * elements, 2 * params))


def batch_norm(shape: Sequence[int], train: bool = False, use_scale: bool = True, use_bias: bool = True,
               fast_variance: bool = True, itemsize: int = 4, mode: Mode = "forward") -> OpsCost:
    """``flax BatchNorm`` over the last axis (features): with running averages, ``(x - mean)`` and
    ``rsqrt(var + ε) · scale`` per feature, times, plus the bias. ``train`` (flax's ``use_running_average=False``):
    the batch statistics per feature first, and both running averages updated (``m·avg + (1 - m)·stat``: three
    flops per feature each); the running averages are read and written. ``mode="train"``: and the gradient,
    through the batch statistics with ``train``; the running averages are constants, not differentiated."""
    training = check_mode(mode) == "train"
    elements, features = _channels_last(shape, itemsize)
    flops = elements + features + elements  # centre, add ε, multiply by the factor
    flops += features * use_scale + elements * use_bias
    params = features * (use_scale + use_bias)
    state = 2 * 2 * features if train else 2 * features  # running mean and variance, read (and written)
    if train:
        flops += _statistics(elements, features, fast_variance) + 6 * features
    if not training:
        return OpsCost(flops, features, _bytes(itemsize, 2 * elements, params, state))
    flops += _normalize_gradient(elements, features, features, features, use_scale, use_bias, statistics=train)
    if train:
        flops += _statistics_gradient(elements, features, features, fast_variance)
    return OpsCost(flops, features, _bytes(itemsize, 4 * elements, 2 * params, state))


def group_norm(shape: Sequence[int], groups: int, use_scale: bool = True, use_bias: bool = True,
               fast_variance: bool = True, itemsize: int = 4, mode: Mode = "forward") -> OpsCost:
    """``flax GroupNorm`` on ``(N, ..., C)``: statistics per (example, group), broadcast to one value per
    (example, channel); there ``rsqrt(var + ε)`` (an add and a transcendental) and the scale's product; then
    per element ``(x - mean)``, times the factor, plus the bias. ``mode="train"``: and its gradient, through the
    statistics (their gradients per channel summed per group)."""
    training = check_mode(mode) == "train"
    elements, features = _channels_last(shape, itemsize)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0 or features % groups:
        raise ValueError(f"groups: must be a positive int that divides the {features} features, got {groups!r}")
    examples = tuple(shape)[0]
    factors = examples * features  # one normalizing factor per example and channel
    flops = _statistics(elements, examples * groups, fast_variance)
    flops += factors * (1 + use_scale) + elements * (2 + use_bias)  # add ε, scale; centre, multiply, bias
    params = features * (use_scale + use_bias)
    if not training:
        return OpsCost(flops, factors, _bytes(itemsize, 2 * elements, params))
    flops += _normalize_gradient(elements, factors, factors, features, use_scale, use_bias, statistics=True)
    flops += _statistics_gradient(elements, examples * groups, factors, fast_variance)
    return OpsCost(flops, factors, _bytes(itemsize, 4 * elements, 2 * params))


def pooling(kind: str, shape: Sequence[int], window: Sequence[int], strides: Sequence[int] | None = None,
            padding: str | Sequence[tuple[int, int]] = "VALID", count_include_pad: bool = True,
            itemsize: int = 4, mode: Mode = "forward") -> OpsCost:
    """``nn.max_pool`` / ``nn.avg_pool`` on a channels-last input ``(N, *spatial, C)``: ``window - 1`` maxima
    or sums per output (every tap, padding included), and for the average one divide per output. With
    ``count_include_pad=False`` the divisor is itself a windowed sum, over ones of one image and one channel.

    ``mode="train"``: and the gradient. The maximum's is one ``select-and-scatter`` of the output gradient:
    per output, ``window - 1`` compares find the maximum and one add scatters to it. The average's: a divide
    per output, then the window sum transposed: the output gradient padded (``stride - 1`` zeros between
    elements), summed over every window at stride 1, ``window - 1`` adds per input element."""
    if kind not in ("max", "avg"):
        raise ValueError(f"kind: must be 'max' or 'avg', got {kind!r}")
    training = check_mode(mode) == "train"
    elements, _ = _channels_last(shape, itemsize)
    spatial = tuple(shape)[1:-1]
    window = positive_tuple("window", window, len(spatial))
    strides = positive_tuple("strides", 1 if strides is None else strides, len(spatial))
    pads = _pool_pads(padding, spatial, window, strides)
    out_spatial = [(size + lo + hi - w) // s + 1 for size, w, s, (lo, hi) in zip(spatial, window, strides, pads)]
    if any(size <= 0 for size in out_spatial):
        raise ValueError(f"window: {window} is larger than the padded input {spatial}")
    outputs = shape[0] * math.prod(out_spatial) * shape[-1]
    taps = math.prod(window)
    flops = (taps - 1) * outputs
    if kind == "avg":  # a divide per output; the divisor without padding is a window sum over ones
        flops += outputs + (0 if count_include_pad else (taps - 1) * math.prod(out_spatial))
    if not training:
        return OpsCost(flops, 0, _bytes(itemsize, elements, outputs))
    flops += taps * outputs if kind == "max" else outputs + (taps - 1) * elements
    return OpsCost(flops, 0, _bytes(itemsize, 2 * elements, 2 * outputs))


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


def embedding_lookup(indices: Sequence[int], features: int, itemsize: int = 4, index_itemsize: int = 4,
                     mode: Mode = "forward") -> OpsCost:
    """``nn.Embed``: a gather, no multiply-add. ``jnp.take`` as flax calls it does index arithmetic: negative
    indices wrapped (a compare, an add, a select per index), indices out of range detected (two compares and
    an ``and`` per index) and each output element selected between its row and the NaN fill: 6 flops per
    index, 1 per output element. The table rows it takes are read (one per index), the indices read, the
    output written. ``mode="train"``: the gather's gradient, a scatter-add of the output gradient's rows into a
    table of zeros (1 flop per output element; the integer indices have none); the output gradient read and the
    gradient rows written."""
    training = check_mode(mode) == "train"
    lookups = _elements(indices, "indices")
    for name, value in (("features", features), ("itemsize", itemsize), ("index_itemsize", index_itemsize)):
        positive_int(name, value)
    flops = 6 * lookups + lookups * features
    moved = 2 * lookups * features  # the rows taken, the output
    if training:  # the scatter-add; the output gradient read, the gradient rows written
        flops += lookups * features
        moved += 2 * lookups * features
    return OpsCost(flops, 0, moved * itemsize + lookups * index_itemsize)


def softmax(shape: Sequence[int], axis_length: int | None = None, log: bool = False, itemsize: int = 4,
            mode: Mode = "forward") -> OpsCost:
    """``nn.softmax`` over one axis (the last by default): the row maximum (a reduction and a ``max`` with
    ``-inf``), ``x - max``, ``exp``, the row sum, a divide. ``log_softmax``: ``x - max``, ``exp``, the row
    sum, its ``log`` and a subtract. The input read, the output written, at ``itemsize`` bytes an element.

    ``mode="train"``: and the gradient (none through the maximum, a ``stop_gradient``). Softmax, ``e / s``:
    ``1 / s²`` per row (a square, a divide), the output gradient times it and times ``e``, summed per row and
    negated; the output gradient over ``s``; the two added, times ``exp``'s derivative ``e``. ``log_softmax``:
    the output gradient negated and summed per row, over ``s``, times ``e``, added to the output gradient."""
    training = check_mode(mode) == "train"
    elements = _elements(shape)
    positive_int("itemsize", itemsize)
    length = tuple(shape)[-1] if axis_length is None else positive_int("axis_length", axis_length)
    if length not in tuple(shape):
        raise ValueError(f"axis_length: must be the length of one axis of {tuple(shape)}, got {axis_length!r}")
    rows = elements // length
    flops = 2 * (elements - rows) + rows + 2 * elements  # two reductions, max(-inf), subtract, divide
    if training and log:  # -g, summed per row; / s; times e; added to g
        flops += elements + (elements - rows) + rows + elements + elements
    elif training:  # 1 / s²: a square, a divide; g times it, times e, summed per row, negated; g / s; added; times e
        flops += 2 * rows + 2 * elements + (elements - rows) + rows + elements + elements + elements
    moved = 4 * elements if training else 2 * elements
    return OpsCost(flops, elements + (rows if log else 0), _bytes(itemsize, moved))


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

#: Flops and transcendentals per element that a training step adds to each activation: its derivative on the
#: forward values (in the forward pass) and the output gradient ``g`` through it, as JAX differentiates it.
ACTIVATION_GRADIENTS: dict[str, tuple[int, int]] = {
    "relu": (2, 0),          # x > 0; select(g, 0)
    "relu6": (4, 0),         # x > 0, x < 6, and; select(g, 0)
    "sigmoid": (3, 0),       # 1 - σ, σ·(1 - σ); g times it
    "tanh": (4, 0),          # 1 - t; g·(1 - t), times t, the two added: g·(1 - t)(1 + t)
    "silu": (6, 0),          # 1 - σ, σ·(1 - σ); g·x, g·σ, (g·x)·σ(1 - σ), added
    "swish": (6, 0),
    "gelu": (14, 0),         # 3x² (a square, a product), 1 - t; g·x, g·cdf, ·0.5, ·(1 - t), ·t, added,
                             # ·√(2/π), added, ·c, ·3x², added
    "leaky_relu": (4, 0),    # select(g, 0) and select(0, g), the second times the slope, added
    "hard_sigmoid": (5, 0),  # relu6's mask: x + 3 > 0, x + 3 < 6, and; g / 6, select(·, 0)
    "hard_swish": (8, 0),    # the mask (3); g·x, g·hard_sigmoid, / 6, select, added
    "softplus": (6, 1),      # exp(x - softplus(x)), ±inf replaced first: two compares with inf, two
                             # selects, a subtract, exp; g times it
    "mish": (13, 1),         # softplus's derivative (5, 1), 1 - tanh; g·x, g·tanh, ·(1 - tanh), ·tanh,
                             # added, ·softplus', added
}


def activation(name: str, shape: Sequence[int], itemsize: int = 4, mode: Mode = "forward") -> OpsCost:
    """An activation function applied to every element of ``shape`` (``ACTIVATIONS`` lists them), the input
    read and the output written at ``itemsize`` bytes an element. ``mode="train"``: and its gradient
    (``ACTIVATION_GRADIENTS``)."""
    training = check_mode(mode) == "train"
    if name not in ACTIVATIONS:
        raise ValueError(f"name: unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    elements = _elements(shape)
    positive_int("itemsize", itemsize)
    flops, transcendentals = ACTIVATIONS[name]
    if training:
        flops += ACTIVATION_GRADIENTS[name][0]
        transcendentals += ACTIVATION_GRADIENTS[name][1]
    moved = 4 * elements if training else 2 * elements
    return OpsCost(flops * elements, transcendentals * elements, _bytes(itemsize, moved))
