"""Layer specs: validation messages name the argument and the rule; shapes match Flax."""

import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc


@pytest.mark.parametrize(("kwargs", "argument", "rule"), [
    (dict(input_shape=(1, 8, 8, 6), features=8, feature_group_count=4), "feature_group_count", "divide the 6 input"),
    (dict(input_shape=(1, 8, 8, 8), features=6, feature_group_count=4), "feature_group_count", "divide the 6 output"),
    (dict(input_shape=(1, 8, 8, 3), features=0), "features", "positive integer"),
    (dict(input_shape=(1, 8, 8, 3), features=-4), "features", "positive integer"),
    (dict(input_shape=(1, 0, 8, 3), features=4), "input_shape", "positive integer"),
    (dict(input_shape=(1, 8, 8, 3), features=4, kernel_size=0), "kernel_size", "positive integer"),
    (dict(input_shape=(1, 8, 8, 3), features=4, strides=(1, 0)), "strides", "positive integer"),
    (dict(input_shape=(1, 8, 8, 3), features=4, kernel_dilation=-1), "kernel_dilation", "positive integer"),
    (dict(input_shape=(1, 8, 8, 3), features=4, input_dilation=0), "input_dilation", "positive integer"),
    (dict(input_shape=(1, 8, 8, 3), features=4, feature_group_count=0), "feature_group_count", "positive integer"),
    (dict(input_shape=(1, 4, 4, 3), features=4, kernel_size=5, padding="VALID"), "kernel_size", "larger than"),
    (dict(input_shape=(1, 4, 4, 3), features=4, kernel_size=3, kernel_dilation=3, padding="VALID"), "kernel_size",
     "larger than the padded input"),
    (dict(input_shape=(1, 4, 4, 3), features=4, kernel_size=7, padding=1), "kernel_size", "output would be empty"),
    (dict(input_shape=(1, 8, 8, 3), features=4, padding="FULL"), "padding", "unknown padding"),
    (dict(input_shape=(1, 8, 8, 3), features=4, padding="CIRCULAR"), "padding", "not supported"),
    (dict(input_shape=(1, 8, 8, 3), features=4, padding=-1), "padding", "non-negative"),
    (dict(input_shape=(1, 8, 8, 3), features=4, padding=((1, 1),)), "padding", "needs 2"),
    (dict(input_shape=(1, 8, 8, 3), features=4, padding="SAME", input_dilation=2), "padding", "input_dilation"),
    (dict(input_shape=(1, 8, 8, 3), features=4, dtype="float8"), "dtype", "unknown dtype"),
    (dict(input_shape=(1, 8, 8, 3), features=4, dtype="complex64"), "dtype", "unknown dtype"),
    (dict(input_shape=(8, 3), features=4), "input_shape", "at least 3"),
    (dict(input_shape=(1, 2, 2, 2, 2, 3), features=4), "input_shape", "1 to 3 spatial"),
    (dict(input_shape=(1, 8, 8, 3), features=4, kernel_size=(3, 3, 3)), "kernel_size", "needs 2 entries"),
    (dict(input_shape="1,8,8,3", features=4), "input_shape", "positive integer"),
    (dict(input_shape=(1, 8, 8, 3), features=4, use_bias="yes"), "use_bias", "True or False"),
    (dict(input_shape=(1, 8, 8, 3), features=2.5), "features", "positive integer"),
])
def test_invalid_conv_names_argument_and_rule(kwargs, argument, rule):
    with pytest.raises(ValueError) as error:
        jc.Conv(**kwargs)
    message = str(error.value)
    assert message.startswith(argument + ":"), message
    assert rule in message, message


@pytest.mark.parametrize(("kwargs", "argument"), [
    (dict(input_shape=(), features=4), "input_shape"),
    (dict(input_shape=(4, 0), features=4), "input_shape"),
    (dict(input_shape=(4, 8), features=0), "features"),
    (dict(input_shape=(4, 8), features=4, dtype="int4"), "dtype"),
])
def test_invalid_dense_names_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"^{argument}:"):
        jc.Dense(**kwargs)


def test_depthwise_multiplier_must_be_positive():
    with pytest.raises(ValueError, match="^depth_multiplier:"):
        jc.depthwise_conv((1, 8, 8, 4), 3, depth_multiplier=0)


def test_float64_without_x64_is_a_clear_error():
    spec = jc.Conv((1, 4, 4, 2), 2, 3, dtype="float64")
    with pytest.raises(ValueError, match="^dtype: float64 needs JAX's x64"):
        jc.compiled(spec)


def test_dtype_objects_are_accepted():
    assert jc.Conv((1, 4, 4, 2), 2, dtype=jnp.bfloat16).dtype == "bfloat16"
    assert jc.Dense((2, 3), 4, dtype=jnp.float16).dtype == "float16"


def test_named_helpers_build_the_four_classic_layers():
    assert jc.standard_conv((1, 8, 8, 4), 16).kind == "standard"
    assert jc.standard_conv((1, 8, 8, 4), 16, 1).kind == "pointwise"
    grouped = jc.group_conv((1, 8, 8, 8), 16, groups=4)
    assert (grouped.kind, grouped.feature_group_count, grouped.kernel_shape) == ("group", 4, (3, 3, 2, 16))
    depthwise = jc.depthwise_conv((1, 8, 8, 8), 3, depth_multiplier=2)
    assert (depthwise.kind, depthwise.features, depthwise.kernel_shape) == ("depthwise", 16, (3, 3, 1, 16))
    assert jc.dense((4, 8), 16).kind == "dense"


def test_same_padding_is_resolved_like_lax():
    spec = jc.Conv((1, 7, 8, 1), 1, (3, 4), strides=(2, 1), padding="SAME")
    # out = ceil(in / stride); total pad = (out - 1) * stride + k - in, the extra on the high side
    assert spec.output_spatial == (4, 8)
    assert spec.pads == ((1, 1), (1, 2))


@pytest.mark.parametrize("spec", [
    jc.Conv((2, 9, 3), 5, 4, strides=2, padding="SAME"),
    jc.Conv((1, 5, 6, 7, 2), 3, (2, 3, 1), padding="VALID", kernel_dilation=(2, 1, 1)),
    jc.Conv((1, 6, 6, 4), 8, 3, padding=((2, 0), (1, 3)), input_dilation=2, feature_group_count=2),
    jc.Conv((3, 1, 1, 2), 4, (4, 1), padding=((3, 3), (0, 0))),
    jc.Dense((2, 3, 5), 7),
    jc.Dense((5,), 7, use_bias=False),
])
def test_output_shape_and_module_match_flax(spec):
    module = jc.flax_module(spec)
    x = jax.ShapeDtypeStruct(spec.input_shape, jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
    assert jax.eval_shape(module.apply, variables, x).shape == spec.output_shape
    assert sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables)) == jc.analytic(spec).params


@pytest.mark.parametrize("spec", [jc.Conv((1, 5, 5, 2), 4, 3, dtype="int8"), jc.Dense((3, 5), 4, dtype="int8")])
def test_int8_layers_initialize_and_run_in_int8(spec):
    module = jc.flax_module(spec)
    variables = module.init(jax.random.PRNGKey(0), jnp.ones(spec.input_shape, jnp.int8))
    assert variables["params"]["kernel"].dtype == jnp.int8
    assert variables["params"]["kernel"].shape == spec.kernel_shape
    y = module.apply(variables, jnp.ones(spec.input_shape, jnp.int8))
    assert (y.shape, y.dtype) == (spec.output_shape, jnp.int8)
