"""Flax modules built from layer specs, and abstract arguments to compile them with."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxcost.specs import Conv, Spec


def jax_dtype(name: str) -> Any:
    """The JAX dtype for a spec dtype name; float64 needs ``jax_enable_x64``."""
    # jax's Config sets its options as attributes at run time (declared for pytype, not for mypy)
    if name == "float64" and not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
        raise ValueError("dtype: float64 needs JAX's x64 mode (jax.config.update('jax_enable_x64', True))")
    return jnp.dtype(name)


def _integer_init(key: Any, shape: Any, dtype: Any = jnp.int8) -> Any:
    """Small random integers: flax's initializers draw floats and cannot make int8 weights."""
    return jax.random.randint(key, shape, -8, 8).astype(dtype)


class IntegerLayer(nn.Module):
    """A Conv or Dense layer in an integer dtype, end to end (flax's own layers refuse integer dtypes).

    Same parameter names and shapes as the flax layer; computes with ``lax`` directly.
    """

    spec: Spec

    @nn.compact
    def __call__(self, x: Any) -> Any:
        spec, dtype = self.spec, jnp.dtype(self.spec.dtype)
        kernel = self.param("kernel", _integer_init, spec.kernel_shape, dtype)
        if isinstance(spec, Conv):
            batch_feature = (0, spec.rank + 1)
            spatial = tuple(range(1, spec.rank + 1))
            numbers = lax.ConvDimensionNumbers(lhs_spec=batch_feature + spatial,
                                               rhs_spec=(spec.rank + 1, spec.rank) + tuple(range(spec.rank)),
                                               out_spec=batch_feature + spatial)
            y = lax.conv_general_dilated(x, kernel, spec.strides, spec.pads, spec.input_dilation,
                                         spec.kernel_dilation, numbers, spec.feature_group_count)
        else:
            y = lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))
        if spec.use_bias:
            y = y + self.param("bias", _integer_init, (spec.features,), dtype)
        return y


def flax_module(spec: Spec) -> nn.Module:
    """The ``flax.linen`` module for a spec (``nn.Conv`` / ``nn.Dense``; a ``lax`` layer for integer dtypes),
    computing and storing parameters in the spec's dtype."""
    dtype = jax_dtype(spec.dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        return IntegerLayer(spec)
    common = dict(features=spec.features, use_bias=spec.use_bias, dtype=dtype, param_dtype=dtype)
    if isinstance(spec, Conv):
        return nn.Conv(kernel_size=spec.kernel_size, strides=spec.strides, padding=spec.pads,
                       input_dilation=spec.input_dilation, kernel_dilation=spec.kernel_dilation,
                       feature_group_count=spec.feature_group_count, **common)
    return nn.Dense(**common)


def abstract_arguments(spec: Spec) -> tuple[Any, jax.ShapeDtypeStruct]:
    """Parameter tree and input as ``jax.ShapeDtypeStruct`` s: compiling needs no memory or initialisation."""
    dtype = jax_dtype(spec.dtype)
    params: dict[str, Any] = {"kernel": jax.ShapeDtypeStruct(spec.kernel_shape, dtype)}
    if spec.use_bias:
        params["bias"] = jax.ShapeDtypeStruct((spec.features,), dtype)
    return {"params": params}, jax.ShapeDtypeStruct(spec.input_shape, dtype)


def forward_function(spec: Spec) -> Any:
    """``f(variables, x)``: the layer's forward pass."""
    return flax_module(spec).apply


def training_function(spec: Spec) -> Any:
    """``f(variables, x, dy) -> (y, (dvariables, dx))``: forward, then the pullback of an output gradient."""
    forward = forward_function(spec)

    def step(variables: Any, x: Any, output_gradient: Any) -> Any:
        y, pullback = jax.vjp(forward, variables, x)
        return y, pullback(output_gradient)

    return step


def training_arguments(spec: Spec) -> tuple[Any, jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
    """Abstract parameters, input and output gradient for ``training_function``."""
    variables, x = abstract_arguments(spec)
    return variables, x, jax.ShapeDtypeStruct(spec.output_shape, x.dtype)
