"""Layer specs: what a layer is, validated, with its output shape. Pure Python, no JAX.

Argument names follow ``flax.linen.Conv`` and ``flax.linen.Dense``. Inputs are channels-last:
a convolution takes ``(N, *spatial, C)`` with one to three spatial dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PaddingLike = str | int | Sequence[int] | Sequence[Sequence[int]]

#: Bytes per element of each dtype jaxcost counts in.
DTYPE_ITEMSIZE: dict[str, int] = {
    "float32": 4,
    "bfloat16": 2,
    "float16": 2,
    "int8": 1,
    "float64": 8,
}

_OUT_OF_SCOPE_PADDING = ("CIRCULAR", "CAUSAL", "REFLECT")


def dtype_name(dtype: Any) -> str:
    """Canonical dtype name ("float32", "bfloat16", ...) for a string or a numpy/JAX dtype."""
    if isinstance(dtype, str):
        name = dtype.lower()
    else:
        name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
        name = str(name).lower()
    if name not in DTYPE_ITEMSIZE:
        raise ValueError(f"dtype: unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_ITEMSIZE)}")
    return name


def is_flax_module(value: Any) -> bool:
    """Whether ``value`` is a flax Module (linen or nnx), told from its class names: no flax import here."""
    return any(base.__module__.startswith("flax") and base.__name__ == "Module" for base in type(value).__mro__)


def describe_value(value: Any) -> str:
    """What a wrong argument is, for an error message: ``function 'f'``, ``a flax Module (Conv)``, ``list [1, 2]``."""
    kind = type(value)
    if callable(value) and hasattr(value, "__name__") and not isinstance(value, type):
        return f"{kind.__name__} {value.__name__!r}"
    if is_flax_module(value):
        return f"a flax Module ({kind.__name__})"
    text = repr(value)
    return f"{kind.__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    return value


def positive_tuple(name: str, value: Any, rank: int) -> tuple[int, ...]:
    """An int or a sequence of `rank` positive ints, as a tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * rank
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name}: must be an int or a sequence of {rank} ints, got {value!r}") from None
    if len(items) != rank:
        raise ValueError(f"{name}: needs {rank} entries, one per spatial dimension, got {len(items)} ({value!r})")
    for item in items:
        positive_int(name, item)
    return items


def _shape(name: str, value: Any, min_rank: int) -> tuple[int, ...]:
    try:
        shape = tuple(value)
    except TypeError:
        raise ValueError(f"{name}: must be a sequence of positive ints, got {value!r}") from None
    if len(shape) < min_rank:
        raise ValueError(f"{name}: needs at least {min_rank} dimensions, got {len(shape)} ({value!r})")
    for size in shape:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"{name}: every dimension must be a positive integer, got {value!r}")
    return shape


def _explicit_padding(padding: Any, rank: int) -> tuple[tuple[int, int], ...]:
    """Explicit (lo, hi) pairs from an int, a sequence of ints or a sequence of pairs."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        pairs: list[Any] = [(padding, padding)] * rank
    else:
        try:
            pairs = list(padding)
        except TypeError:
            raise ValueError(f"padding: must be 'SAME', 'VALID', an int or (lo, hi) pairs, got {padding!r}") from None
        pairs = [(p, p) if isinstance(p, int) and not isinstance(p, bool) else p for p in pairs]
    if len(pairs) != rank:
        raise ValueError(f"padding: needs {rank} (lo, hi) pairs, one per spatial dimension, got {len(pairs)}")
    result = []
    for pair in pairs:
        try:
            lo, hi = pair
        except (TypeError, ValueError):
            raise ValueError(f"padding: each entry must be an int or a (lo, hi) pair, got {pair!r}") from None
        for side in (lo, hi):
            if isinstance(side, bool) or not isinstance(side, int) or side < 0:
                raise ValueError(f"padding: amounts must be non-negative integers, got {pair!r}")
        result.append((lo, hi))
    return tuple(result)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """lax's "SAME" padding for one dimension: output ceil(size / stride), extra on the high side."""
    size_out = -(-size // stride)
    total = max((size_out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _factors(values: tuple[int, ...]) -> str:
    """One factor per spatial dimension, written once when they are all equal: ``2`` or ``2x1``."""
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


class _Layer:
    """What Conv and Dense share: channels-last input, a dtype and a bias flag.

    The Flax module for a spec is ``jaxcost.flax_module(spec)``: specs stay pure Python.
    """

    input_shape: tuple[int, ...]
    features: int
    use_bias: bool
    dtype: Any

    def _check_common(self) -> None:
        object.__setattr__(self, "features", positive_int("features", self.features))
        if not isinstance(self.use_bias, bool):
            raise ValueError(f"use_bias: must be True or False, got {self.use_bias!r}")
        object.__setattr__(self, "dtype", dtype_name(self.dtype))

    @property
    def in_features(self) -> int:
        return self.input_shape[-1]

    @property
    def _dtype_suffix(self) -> str:
        """`` bfloat16`` for a label, so that a layer in another dtype never reads like the float32 one."""
        return "" if self.dtype == "float32" else f" {self.dtype}"

    @property
    def itemsize(self) -> int:
        """Bytes per element of the spec's dtype."""
        return DTYPE_ITEMSIZE[self.dtype]


@dataclass(frozen=True)
class Conv(_Layer):
    """An N-d convolution layer, channels last, as ``flax.linen.Conv`` builds it.

    ``padding`` keeps what was given; ``pads`` holds the explicit (lo, hi) pairs it resolves to.
    ``transposed`` says the layer is a transposed convolution written as the convolution
    ``lax.conv_transpose`` computes (its input dilated by the transposed strides); it changes the textbook
    count, not the computation. Left out (None), it is decided from ``input_dilation``: any factor above 1
    makes the spec transposed (and False is refused then), since a ``Conv`` built with input dilation is the
    same computation; a stride-1 transposed convolution has no input dilation and says True itself.
    """

    input_shape: tuple[int, ...]
    features: int
    kernel_size: Any = 3
    strides: Any = 1
    padding: PaddingLike = "SAME"
    input_dilation: Any = 1
    kernel_dilation: Any = 1
    feature_group_count: int = 1
    use_bias: bool = True
    dtype: Any = "float32"
    transposed: bool | None = None
    pads: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = _shape("input_shape", self.input_shape, 3)
        rank = len(shape) - 2
        if rank > 3:
            raise ValueError(f"input_shape: (N, *spatial, C) with 1 to 3 spatial dimensions, got {len(shape)} dims")
        _set = object.__setattr__
        _set(self, "input_shape", shape)
        self._check_common()
        _set(self, "kernel_size", positive_tuple("kernel_size", self.kernel_size, rank))
        _set(self, "strides", positive_tuple("strides", self.strides, rank))
        _set(self, "input_dilation", positive_tuple("input_dilation", self.input_dilation, rank))
        _set(self, "kernel_dilation", positive_tuple("kernel_dilation", self.kernel_dilation, rank))
        _set(self, "feature_group_count", positive_int("feature_group_count", self.feature_group_count))
        dilated = any(d > 1 for d in self.input_dilation)
        if self.transposed is None:
            _set(self, "transposed", dilated)
        elif not isinstance(self.transposed, bool):
            raise ValueError(f"transposed: must be True, False or None, got {self.transposed!r}")
        elif dilated and not self.transposed:
            raise ValueError(f"transposed: a convolution with input_dilation {self.input_dilation} is a transposed "
                             "one; leave transposed out or set it True")
        groups = self.feature_group_count
        if self.in_features % groups:
            raise ValueError(
                f"feature_group_count: {groups} groups must divide the {self.in_features} input channels")
        if self.features % groups:
            raise ValueError(f"feature_group_count: {groups} groups must divide the {self.features} output features")
        _set(self, "pads", self._resolve_padding())
        for dim, (size, kernel) in enumerate(zip(self.dilated_input_spatial, self.dilated_kernel_size)):
            if kernel > size:
                raise ValueError(
                    f"kernel_size: dilated kernel {kernel} is larger than the padded input {size} in spatial "
                    f"dimension {dim} (kernel {self.kernel_size}, kernel_dilation {self.kernel_dilation}, "
                    f"padding {self.pads}); the output would be empty")

    def _resolve_padding(self) -> tuple[tuple[int, int], ...]:
        padding = self.padding
        if isinstance(padding, str):
            mode = padding.upper()
            if mode in _OUT_OF_SCOPE_PADDING:
                raise ValueError(
                    f"padding: {padding!r} is not supported; use 'SAME', 'VALID', an int or (lo, hi) pairs")
            if mode not in ("SAME", "VALID"):
                raise ValueError(f"padding: unknown padding {padding!r}; use 'SAME', 'VALID', an int or (lo, hi) pairs")
            if any(d != 1 for d in self.input_dilation):
                raise ValueError(
                    f"padding: string padding {padding!r} cannot be combined with input_dilation "
                    f"{self.input_dilation} (flax refuses it); give explicit (lo, hi) pairs")
            object.__setattr__(self, "padding", mode)
            if mode == "VALID":
                return ((0, 0),) * self.rank
            return tuple(
                same_padding(size, kernel, stride)
                for size, kernel, stride in zip(self.spatial_shape, self.dilated_kernel_size, self.strides))
        pads = _explicit_padding(padding, self.rank)
        object.__setattr__(self, "padding", pads)
        return pads

    @property
    def rank(self) -> int:
        """Number of spatial dimensions."""
        return len(self.input_shape) - 2

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.input_shape[1:-1]

    @property
    def dilated_kernel_size(self) -> tuple[int, ...]:
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.kernel_dilation))

    @property
    def dilated_input_spatial(self) -> tuple[int, ...]:
        """Spatial extent after input dilation and padding: what the kernel slides over."""
        return tuple((size - 1) * dil + 1 + lo + hi
                     for size, dil, (lo, hi) in zip(self.spatial_shape, self.input_dilation, self.pads))

    @property
    def output_spatial(self) -> tuple[int, ...]:
        sizes = zip(self.dilated_input_spatial, self.dilated_kernel_size, self.strides)
        return tuple((size - kernel) // stride + 1 for size, kernel, stride in sizes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Output shape, exactly as ``flax.linen.Conv`` produces it."""
        return (self.batch, *self.output_spatial, self.features)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """Flax's kernel shape: ``(*kernel_size, in_features // groups, features)``."""
        return (*self.kernel_size, self.in_features // self.feature_group_count, self.features)

    @property
    def kind(self) -> str:
        """"transposed" (of any groups), "standard", "pointwise", "group" or "depthwise"."""
        if self.transposed:
            return "transposed"
        return self._grouping or ("pointwise" if math.prod(self.kernel_size) == 1 else "standard")

    @property
    def _grouping(self) -> str | None:
        """"depthwise" (one group per input channel), "group" (several groups) or None (one group)."""
        groups = self.feature_group_count
        if groups == 1:
            return None
        return "depthwise" if groups == self.in_features else "group"

    def describe(self) -> str:
        """A one-line human description, e.g. ``conv3x3 64->128 s1 SAME``, or ``convT3x3 32->64 s1 in-dil2 pad[...]``
        for a transposed one (the dtype added when not float32)."""
        kernel = "x".join(map(str, self.kernel_size))
        padding = self.padding if isinstance(self.padding, str) else "pad" + str(list(self.pads))
        extra = {"group": f" g{self.feature_group_count}",
                 "depthwise": f" dw(m={self.features // self.in_features})"}.get(self._grouping or "", "")
        dilation = f" in-dil{_factors(self.input_dilation)}" if self.transposed else ""
        return (f"conv{'T' if self.transposed else ''}{kernel} {self.in_features}->{self.features}{extra} "
                f"s{_factors(self.strides)}{dilation} {padding}{self._dtype_suffix}")


@dataclass(frozen=True)
class Dense(_Layer):
    """A dense layer over the last axis, as ``flax.linen.Dense`` builds it."""

    input_shape: tuple[int, ...]
    features: int
    use_bias: bool = True
    dtype: Any = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", _shape("input_shape", self.input_shape, 1))
        self._check_common()

    @property
    def rows(self) -> int:
        """Number of input vectors: the product of all but the last input dimension."""
        return math.prod(self.input_shape[:-1])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (*self.input_shape[:-1], self.features)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return (self.in_features, self.features)

    @property
    def kind(self) -> str:
        return "dense"

    def describe(self) -> str:
        return f"dense {self.in_features}->{self.features}{self._dtype_suffix}"


Spec = Conv | Dense


def standard_conv(input_shape: Sequence[int], features: int, kernel_size: Any = 3, **kwargs: Any) -> Conv:
    """A standard convolution (one group)."""
    return Conv(tuple(input_shape), features, kernel_size, feature_group_count=1, **kwargs)


def group_conv(input_shape: Sequence[int], features: int, groups: int, kernel_size: Any = 3,
               **kwargs: Any) -> Conv:
    """A grouped convolution: `groups` must divide both channel counts."""
    return Conv(tuple(input_shape), features, kernel_size, feature_group_count=groups, **kwargs)


def depthwise_conv(input_shape: Sequence[int], kernel_size: Any = 3, depth_multiplier: int = 1,
                   **kwargs: Any) -> Conv:
    """A depthwise convolution: one group per input channel, `depth_multiplier` outputs each."""
    positive_int("depth_multiplier", depth_multiplier)
    channels = _shape("input_shape", input_shape, 3)[-1]
    return Conv(tuple(input_shape), channels * depth_multiplier, kernel_size, feature_group_count=channels, **kwargs)


def dense(input_shape: Sequence[int], features: int, **kwargs: Any) -> Dense:
    """A dense (fully connected) layer."""
    return Dense(tuple(input_shape), features, **kwargs)


#: Reference layers for ``jaxcost report``: the four classic layer types at the sizes papers quote.
REFERENCE_SPATIAL, REFERENCE_CHANNELS = (56, 56), 64


def reference_suite(batch: int = 1) -> list[Spec]:
    """Standard (stride 1 and 2, SAME and VALID), group (g=4), depthwise and dense layers, ``batch`` images."""
    image = (positive_int("batch", batch), *REFERENCE_SPATIAL, REFERENCE_CHANNELS)
    return [
        standard_conv(image, 128, 3, strides=1, padding="SAME"),
        standard_conv(image, 128, 3, strides=2, padding="SAME"),
        standard_conv(image, 128, 3, strides=1, padding="VALID"),
        standard_conv(image, 128, 1, strides=1, padding="SAME"),
        group_conv(image, 128, 4, 3, strides=1, padding="SAME"),
        depthwise_conv(image, 3, strides=1, padding="SAME"),
        depthwise_conv(image, 3, strides=2, padding="SAME"),
        standard_conv(image, 128, 3, padding="SAME", dtype="bfloat16"),
        dense((batch, 2048), 1000),
    ]
