"""Randomly drawn valid layers: shapes and params match Flax, flops match a brute-force tap count,
and analytic + itemized deltas equal XLA's flops and bytes exactly, with nothing left over."""

import itertools
import math

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jaxcost as jc

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU

SETTINGS = settings(max_examples=220, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def brute_force_flops(spec: jc.Conv) -> int:
    """Walk every output position and every kernel tap; count the taps that land on a real input."""
    taps = 0
    for position in itertools.product(*(range(n) for n in spec.output_spatial)):
        for tap in itertools.product(*(range(k) for k in spec.kernel_size)):
            inside = True
            for d in range(spec.rank):
                dilated_index = position[d] * spec.strides[d] - spec.pads[d][0] + tap[d] * spec.kernel_dilation[d]
                real_index, hole = divmod(dilated_index, spec.input_dilation[d])
                if hole or not 0 <= real_index < spec.spatial_shape[d]:
                    inside = False
                    break
            taps += inside
    macs = spec.batch * taps * (spec.in_features // spec.feature_group_count) * spec.features
    bias_adds = spec.batch * math.prod(spec.output_spatial) * spec.features if spec.use_bias else 0
    return 2 * macs + bias_adds


@st.composite
def conv_specs(draw) -> jc.Conv:
    rank = draw(st.integers(1, 3))
    small = st.integers(1, 9 if rank < 3 else 5)
    spatial = tuple(draw(small) for _ in range(rank))
    kind = draw(st.sampled_from(["standard", "group", "depthwise"]))
    if kind == "depthwise":
        channels = draw(st.integers(1, 6))
        groups, features = channels, channels * draw(st.integers(1, 3))
    else:
        groups = 1 if kind == "standard" else draw(st.integers(2, 4))
        channels = groups * draw(st.integers(1, 3))
        features = groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    input_dilation = 1
    padding_kind = draw(st.sampled_from(["SAME", "VALID", "explicit", "int"]))
    if padding_kind == "explicit":
        padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(rank))
        input_dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    elif padding_kind == "int":
        padding = draw(st.integers(0, 2))
    else:
        padding = padding_kind
    try:
        return jc.Conv(
            input_shape=(draw(st.integers(1, 2)), *spatial, channels), features=features, kernel_size=kernel,
            strides=tuple(draw(st.integers(1, 3)) for _ in range(rank)), padding=padding,
            input_dilation=input_dilation, kernel_dilation=tuple(draw(st.integers(1, 2)) for _ in range(rank)),
            feature_group_count=groups, use_bias=draw(st.booleans()),
            dtype=draw(st.sampled_from(["float32", "bfloat16"])))
    except ValueError:
        assume(False)


def flax_shape_and_params(spec) -> tuple[tuple[int, ...], int]:
    module = jc.flax_module(spec)
    x = jax.ShapeDtypeStruct(spec.input_shape, jnp.dtype(spec.dtype))
    variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
    params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables))
    return jax.eval_shape(module.apply, variables, x).shape, params


def assert_explained_exactly(comparison: jc.Comparison) -> None:
    compiler = comparison.compiler
    assert compiler.xla_known
    assert comparison.flops_remainder == 0, comparison.deltas
    assert comparison.bytes_remainder == 0, comparison.deltas
    assert comparison.flops_explained == compiler.xla_flops
    assert comparison.bytes_explained == compiler.xla_bytes_accessed
    for delta in comparison.deltas:
        assert delta.kind in jc.comparison.KINDS
        assert delta.ops or delta.kind == "rounding", delta


@SETTINGS
@given(conv_specs())
def test_random_convs(spec):
    shape, params = flax_shape_and_params(spec)
    assert spec.output_shape == shape
    cost = jc.analytic(spec)
    assert cost.params == params
    assert cost.flops == brute_force_flops(spec)
    assert cost.macs <= cost.textbook_macs
    comparison = jc.compare(spec)
    assert_explained_exactly(comparison)
    if spec.dtype == "float32" and not spec.use_bias:
        assert all(delta.kind in ("rewrite", "layout") for delta in comparison.deltas), comparison.deltas


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=3), st.integers(1, 64), st.booleans(),
       st.sampled_from(["float32", "bfloat16"]))
def test_random_dense_layers(shape, features, use_bias, dtype):
    spec = jc.Dense(tuple(shape), features, use_bias=use_bias, dtype=dtype)
    flax_shape, params = flax_shape_and_params(spec)
    assert spec.output_shape == flax_shape
    cost = jc.analytic(spec)
    assert cost.params == params
    assert cost.flops == 2 * math.prod(shape) * features + (math.prod(shape[:-1]) * features if use_bias else 0)
    comparison = jc.compare(spec)
    assert_explained_exactly(comparison)
    if dtype == "float32" and not use_bias:
        assert all(delta.kind in ("rewrite", "layout") for delta in comparison.deltas), comparison.deltas


@settings(max_examples=110, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(conv_specs())
def test_random_conv_training_steps(spec):
    comparison = jc.compare(spec, mode="train")
    cost = comparison.cost
    forward = jc.analytic(spec)
    assert cost.flops == 3 * brute_force_flops(spec) - 2 * forward.bias_adds + cost.grad_bias_adds
    assert cost.bytes_accessed == 2 * forward.bytes_accessed
    assert_explained_exactly(comparison)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 7), min_size=2, max_size=3), st.integers(1, 32), st.booleans())
def test_random_dense_training_steps(shape, features, use_bias):
    spec = jc.Dense(tuple(shape), features, use_bias=use_bias)
    comparison = jc.compare(spec, mode="train")
    assert_explained_exactly(comparison)
    rows = math.prod(shape[:-1])
    assert comparison.cost.flops == 3 * 2 * rows * shape[-1] * features + (2 * rows - 1) * features * use_bias
