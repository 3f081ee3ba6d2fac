"""Flax modules built from layer specs, and abstract arguments to compile them with."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcost.specs import Conv, Spec


def jax_dtype(name: str) -> Any:
    """The JAX dtype for a spec dtype name; float64 needs ``jax_enable_x64``."""
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype: float64 needs JAX's x64 mode (jax.config.update('jax_enable_x64', True))")
    return jnp.dtype(name)


def _integer_init(key: Any, shape: Any, dtype: Any = jnp.int8) -> Any:
    """Small random integers: flax's default initializers draw floats and cannot make int8 weights."""
    return jax.random.randint(key, shape, -8, 8).astype(dtype)


def linen_module(spec: Spec) -> nn.Module:
    """The ``flax.linen`` module for a spec, computing and storing parameters in the spec's dtype."""
    dtype = jax_dtype(spec.dtype)
    inits: dict[str, Any] = {}
    if jnp.issubdtype(dtype, jnp.integer):
        inits = {"kernel_init": _integer_init, "bias_init": _integer_init}
    common = dict(features=spec.features, use_bias=spec.use_bias, dtype=dtype, param_dtype=dtype, **inits)
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
    return linen_module(spec).apply
