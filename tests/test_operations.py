"""The operation formulas (norms, activations, pooling, softmax, embedding lookups, transposed convolutions)
against XLA: each equals XLA's own count of the program as JAX writes it, and in a model's rows the compiled
program's difference from it is itemized by source operation with nothing left over."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from jaxcost import operations
from jaxcost.hlo.rewrites import NAMELESS
from jaxcost.models.analysis import analyze
from jaxcost.models.paper import transpose_pads

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU

KEY = jax.random.PRNGKey(0)


def written(function, *args) -> tuple[int, int]:
    """XLA's flops and transcendentals of the program as JAX writes it (before optimization)."""
    costs = jax.jit(function).lower(*args).cost_analysis()
    costs = costs[0] if isinstance(costs, list) else costs
    return int(costs.get("flops", 0)), int(costs.get("transcendentals", 0))


def module_written(module, x, **kwargs) -> tuple[int, int]:
    mutable = ["batch_stats"] if isinstance(module, nn.BatchNorm) and not module.use_running_average else False
    variables = jax.eval_shape(lambda x: module.init(KEY, x), x)
    return written(lambda v, x: module.apply(v, x, mutable=mutable, **kwargs), variables, x)


def as_pair(cost: operations.OpsCost) -> tuple[int, int]:
    return cost.flops, cost.transcendentals


SHAPES = [(8, 128), (4, 16, 768), (2, 7, 7, 96), (3, 5, 5, 5, 12)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale, bias, fast", [(True, True, True), (False, False, True), (True, False, False),
                                               (False, True, False)])
def test_layer_norm_equals_xla_on_the_written_program(shape, scale, bias, fast):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    module = nn.LayerNorm(use_scale=scale, use_bias=bias, use_fast_variance=fast)
    assert as_pair(operations.layer_norm(shape, 1, scale, bias, fast)) == module_written(module, x)


@pytest.mark.parametrize("shape", SHAPES[1:])
def test_layer_norm_over_two_axes(shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    module = nn.LayerNorm(reduction_axes=(-2, -1), feature_axes=(-2, -1))
    assert as_pair(operations.layer_norm(shape, 2)) == module_written(module, x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [True, False])
def test_rms_norm_equals_xla(shape, scale):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert as_pair(operations.rms_norm(shape, 1, scale)) == module_written(nn.RMSNorm(use_scale=scale), x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("scale, bias, fast", [(True, True, True), (False, False, False)])
def test_batch_norm_equals_xla_in_both_modes(shape, train, scale, bias, fast):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    module = nn.BatchNorm(use_running_average=not train, use_scale=scale, use_bias=bias, use_fast_variance=fast)
    assert as_pair(operations.batch_norm(shape, train, scale, bias, fast)) == module_written(module, x)


@pytest.mark.parametrize("shape, groups", [((8, 128), 32), ((2, 8, 8, 16), 4), ((2, 7, 7, 96), 32),
                                           ((1, 4, 4, 4, 6), 3), ((3, 10, 12), 1), ((3, 10, 12), 12)])
@pytest.mark.parametrize("scale, bias, fast", [(True, True, True), (False, True, False)])
def test_group_norm_equals_xla(shape, groups, scale, bias, fast):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    module = nn.GroupNorm(num_groups=groups, use_scale=scale, use_bias=bias, use_fast_variance=fast)
    assert as_pair(operations.group_norm(shape, groups, scale, bias, fast)) == module_written(module, x)


def test_layer_norm_by_hand():
    """8 rows of 128: x², two sums of 127 adds per row, two divides, mean², subtract, max, add ε per row;
    x − mean, × scale, × factor, + bias per element: 7·1024 + 4·8; one rsqrt per row."""
    assert as_pair(operations.layer_norm((8, 128))) == (7 * 1024 + 4 * 8, 8)


ACTIVATION_FUNCTIONS = {
    "relu": nn.relu, "relu6": nn.relu6, "sigmoid": nn.sigmoid, "tanh": nn.tanh, "silu": nn.silu, "swish": nn.swish,
    "gelu": nn.gelu, "leaky_relu": nn.leaky_relu, "hard_sigmoid": nn.hard_sigmoid, "hard_swish": nn.hard_swish,
    "softplus": nn.softplus, "mish": jax.nn.mish,
}


def test_every_activation_is_checked():
    assert set(ACTIVATION_FUNCTIONS) == set(operations.ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(operations.ACTIVATIONS))
@pytest.mark.parametrize("shape", [(16, 64), (2, 3, 5, 7)])
def test_activations_equal_xla(name, shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert as_pair(operations.activation(name, shape)) == written(ACTIVATION_FUNCTIONS[name], x)


@pytest.mark.parametrize("shape", [(16, 64), (2, 8, 10), (3, 1, 5)])
def test_softmax_and_log_softmax_equal_xla(shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert as_pair(operations.softmax(shape)) == written(nn.softmax, x)
    assert as_pair(operations.softmax(shape, log=True)) == written(nn.log_softmax, x)
    length = shape[-2]
    assert as_pair(operations.softmax(shape, length)) == written(lambda x: nn.softmax(x, axis=-2), x)


POOLS = [((2, 7, 7, 96), (3, 3), (2, 2), "VALID"), ((2, 7, 7, 96), (3, 3), (2, 2), "SAME"),
         ((1, 10, 8), (2,), (2,), "SAME"), ((2, 6, 6, 6, 4), (2, 3, 2), (1, 2, 2), "VALID"),
         ((1, 9, 9, 3), (3, 3), (1, 1), ((1, 1), (2, 0))), ((1, 5, 5, 2), (5, 5), (1, 1), "VALID")]


@pytest.mark.parametrize("shape, window, strides, padding", POOLS)
def test_pooling_equals_xla(shape, window, strides, padding):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert as_pair(operations.pooling("max", shape, window, strides, padding)) == written(
        lambda x: nn.max_pool(x, window, strides, padding), x)
    assert as_pair(operations.pooling("avg", shape, window, strides, padding)) == written(
        lambda x: nn.avg_pool(x, window, strides, padding), x)
    assert as_pair(operations.pooling("avg", shape, window, strides, padding, count_include_pad=False)) == written(
        lambda x: nn.avg_pool(x, window, strides, padding, count_include_pad=False), x)


def test_pooling_by_hand():
    """3×3 windows, stride 2, on 7×7: 3×3 outputs per image and channel, 8 maxima each; the average adds a
    divide per output."""
    outputs = 2 * 3 * 3 * 96
    assert operations.pooling("max", (2, 7, 7, 96), (3, 3), (2, 2)).flops == 8 * outputs
    assert operations.pooling("avg", (2, 7, 7, 96), (3, 3), (2, 2)).flops == 9 * outputs


class One(nn.Module):
    """A model of one module, so that the module has a row of its own."""

    layer: nn.Module

    def __call__(self, x):
        return self.layer(x)


@pytest.mark.parametrize("tokens, vocabulary, features, dtype", [((2, 16), 100, 32, jnp.float32),
                                                                 ((7,), 50, 8, jnp.bfloat16),
                                                                 ((3, 4, 5), 11, 6, jnp.float32)])
def test_embedding_lookup_is_a_gather_and_index_arithmetic(tokens, vocabulary, features, dtype):
    """No multiply-add; the index arithmetic of jnp.take as XLA counts it; the bytes by hand: the rows taken (not
    the whole table), the indices, the output."""
    module = nn.Embed(vocabulary, features, dtype=dtype, param_dtype=dtype)
    ids = jax.ShapeDtypeStruct(tokens, jnp.int32)
    lookups, itemsize = math.prod(tokens), jnp.dtype(dtype).itemsize
    cost = operations.embedding_lookup(tokens, features, itemsize)
    assert as_pair(cost) == module_written(module, ids) == (6 * lookups + lookups * features, 0)
    assert cost.bytes_accessed == lookups * features * itemsize * 2 + lookups * 4
    report = analyze(One(module), ids)
    (row,) = report.modules
    assert (row.macs, row.flops, row.bytes_accessed) == (0, cost.flops, cost.bytes_accessed)


CONV_TRANSPOSES = [((2, 8, 8, 16), 8, (3, 3), (2, 2), "SAME", 1), ((2, 8, 8, 16), 8, (3, 3), (2, 2), "VALID", 1),
                   ((1, 9, 5), 4, (4,), (3,), "SAME", 1), ((1, 5, 5, 3), 6, (2, 2), (1, 1), "VALID", 1),
                   ((1, 6, 6, 4), 4, (3, 3), (2, 2), "SAME", 2), ((2, 3, 4, 5, 2), 3, (2, 3, 2), (2, 1, 3), "VALID", 1),
                   ((1, 7, 7, 2), 2, (5, 5), (2, 2), "SAME", (1, 2))]


@pytest.mark.parametrize("shape, features, kernel, strides, padding, dilation", CONV_TRANSPOSES)
@pytest.mark.parametrize("use_bias", [False, True])
def test_conv_transpose_is_a_convolution_of_the_dilated_input(shape, features, kernel, strides, padding, dilation,
                                                              use_bias):
    """flax's output shape, and XLA's flops of the compiled program exactly (valid taps only: the holes the
    strides leave in the input are not multiplied)."""
    module = nn.ConvTranspose(features, kernel, strides, padding, kernel_dilation=dilation, use_bias=use_bias)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    report = analyze(One(module), x)
    (row,) = report.layers
    assert row.spec.output_shape == row.output_shape == jax.eval_shape(
        lambda x: module.init_with_output(KEY, x)[0], x).shape
    assert row.flops == report.written_flops(row.path)
    if not use_bias:  # a bias add may be fused into several consumers; without one the program is the layer
        assert row.flops == report.compiler_flops == report.compiler.xla_flops


def test_transpose_padding_by_hand():
    """lax.conv_transpose's SAME for kernel 3, stride 2: 3 + 2 - 2 = 3 in all, 2 before; VALID: 2 before, 3 after
    (k + s - 2 + max(k - s, 0)); stride above the kernel: k - 1 before."""
    assert transpose_pads(3, 2, "SAME") == (2, 1)
    assert transpose_pads(3, 2, "VALID") == (2, 2)
    assert transpose_pads(2, 4, "SAME") == (1, 3)


class Normed(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(16, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(x)
        x = nn.GroupNorm(num_groups=4)(x)
        x = nn.ConvTranspose(8, (3, 3), strides=(2, 2))(x)
        x = nn.LayerNorm()(x)
        x = nn.RMSNorm()(x)
        tokens = nn.Embed(10, 8)((x[:, 0, 0, 0] > 1e9).astype(jnp.int32))  # traced ids, not constants
        return x + tokens[:, None, None, :]


@pytest.mark.parametrize("train", [False, True])
def test_norm_rows_equal_their_formulas_and_the_compiled_rows_are_explained(train):
    """Each norm row's analytic flops are its formula, equal to the row in the program as written; the
    compiled row differs by XLA's rewrites, each named (fusion copies a producer into each consumer), and they
    add up to the difference exactly."""
    report = analyze(Normed(), jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32), train=train)
    rows = {row.module_type: row for row in report.modules}
    n = 2 * 16 * 16 * 8
    assert rows["LayerNorm"].flops == operations.layer_norm((2, 16, 16, 8)).flops == 7 * n + 4 * (n // 8)
    assert rows["BatchNorm"].flops == operations.batch_norm((2, 8, 8, 16), train=train).flops
    assert rows["Embed"].macs == 0 and rows["Embed"].bytes_accessed == 2 * (2 * 8 * 4 + 4)
    for row in rows.values():
        if row.module_type in ("LayerNorm", "RMSNorm", "BatchNorm", "GroupNorm", "Embed"):
            assert row.flops == report.written_flops(row.path), row.path
        found = report.rewrites(row.path)
        assert row.compiler_flops - report.written_flops(row.path) == sum(r.flops_delta for r in found), row.path
    assert sum(r.flops_delta for r in report.rewrites()) == report.compiler_flops - report.compiler.written.flops
    for rewrite in report.rewrites(rows["LayerNorm"].path):  # nothing removed: copies into several fusions
        assert rewrite.flops_compiled > rewrite.flops_written and "copied into each fusion" in str(rewrite)


def test_a_layer_norm_compiled_on_the_cpu_computes_its_mean_twice():
    """XLA fuses the row means into two consumers (the variance and the centring): 8 divides more than written;
    and it splits the row sums in two stages whose first has no metadata (1,984 of the 2,032 adds move there)."""
    report = analyze(One(nn.LayerNorm()), jax.ShapeDtypeStruct((8, 128), jnp.float32))
    (row,) = report.modules
    assert report.written_flops(row.path) == row.flops == 7 * 1024 + 4 * 8
    found = {(rewrite.op_name.rpartition("/")[2], rewrite.flops_delta) for rewrite in report.rewrites()}
    assert found == {("div", 8), ("reduce_sum", -1984), (NAMELESS, 1984)}  # and the sums split in two stages
    assert row.compiler_flops == row.flops + 8


@pytest.mark.parametrize("make, x, masked", [
    (lambda: nn.LayerNorm(name="norm"), (4, 6, 8), True),
    (lambda: nn.RMSNorm(name="norm"), (4, 6, 8), True),
    (lambda: nn.GroupNorm(num_groups=2, name="norm"), (4, 6, 8), True),
    (lambda: nn.LayerNorm(param_dtype=jnp.bfloat16, name="norm"), (2, 6, 12), False),
    (lambda: nn.BatchNorm(use_running_average=True, param_dtype=jnp.bfloat16, name="norm"), (2, 6, 12), False),
    (lambda: nn.LayerNorm(dtype=jnp.bfloat16, name="norm"), (2, 6, 12), False),
])
def test_configurations_the_formulas_do_not_cover_get_none(make, x, masked):
    """A mask adds its own arithmetic, bfloat16 parameters or computation add conversions: no formula, rather
    than a wrong one (the compiler's figures stay)."""
    class Masked(nn.Module):
        @nn.compact
        def __call__(self, inputs):
            extra = {"mask": inputs > 0} if masked else {}
            return make()(inputs, **extra)

    report = analyze(Masked(), jax.ShapeDtypeStruct(x, jnp.float32))
    (row,) = report.modules
    assert row.flops == 0 and row.compiler_flops > 0


@pytest.mark.parametrize("dtype, ids", [(jnp.bfloat16, jnp.int32), (None, jnp.int16)])
def test_an_embedding_that_converts_has_no_formula(dtype, ids):
    """A float32 table computed in bfloat16 is converted whole; int16 ids are converted first."""
    report = analyze(One(nn.Embed(20, 8, dtype=dtype)), jax.ShapeDtypeStruct((3, 7), ids))
    (row,) = report.modules
    assert row.flops == 0 and row.compiler_flops > 0


def test_an_nnx_batch_norm_updating_its_statistics_keeps_the_updates():
    """nnx keeps the running averages as state: the program returns them, so their updates (6 flops a feature)
    are compiled, and the row in the program as written equals the training formula."""
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(12, 12, rngs=rngs)
            self.bn = nnx.BatchNorm(12, use_running_average=False, rngs=rngs)

        def __call__(self, x):
            return self.bn(self.lin(x))

    report = analyze(Net(nnx.Rngs(0)), jax.ShapeDtypeStruct((2, 5, 12), jnp.float32))
    row = {row.path: row for row in report.modules}["bn"]
    assert row.flops == operations.batch_norm((2, 5, 12), train=True).flops == report.written_flops("bn")


def test_norms_in_other_dtypes_have_no_formula():
    """bfloat16 norms compute their statistics in float32: the conversions are the compiler's to count."""
    report = analyze(One(nn.LayerNorm()), jax.ShapeDtypeStruct((4, 64), jnp.bfloat16))
    (row,) = report.modules
    assert row.flops == 0 and row.compiler_flops > 0


def test_nnx_norms_get_the_same_formulas():
    class Block(nnx.Module):
        def __init__(self, rngs):
            self.norm = nnx.LayerNorm(32, rngs=rngs)
            self.rms = nnx.RMSNorm(32, rngs=rngs)
            self.batch = nnx.BatchNorm(32, use_running_average=True, rngs=rngs)
            self.tokens = nnx.Embed(10, 32, rngs=rngs)

        def __call__(self, x):
            return self.batch(self.rms(self.norm(x))) + self.tokens((x[:, 0] > 1e9).astype(jnp.int32))

    report = analyze(Block(nnx.Rngs(0)), jax.ShapeDtypeStruct((4, 32), jnp.float32))
    flops = {row.path: row.flops for row in report.modules}
    assert flops == {"norm": operations.layer_norm((4, 32)).flops, "rms": operations.rms_norm((4, 32)).flops,
                     "batch": operations.batch_norm((4, 32)).flops,
                     "tokens": operations.embedding_lookup((4,), 32).flops}


@pytest.mark.parametrize("call, message", [
    (lambda: operations.group_norm((2, 16), 3), "groups: must be a positive int that divides the 16 features"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), (5, 5)), "window: (5, 5) is larger than the padded input"),
    (lambda: operations.pooling("min", (1, 4, 4, 2), (2, 2)), "kind: must be 'max' or 'avg'"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), (2,)), "window: needs 2 entries"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), (2, 2), padding="FULL"), "padding: must be 'SAME', 'VALID'"),
    (lambda: operations.activation("gelu_new", (4,)), "name: unknown activation 'gelu_new'"),
    (lambda: operations.layer_norm((4, 0)), "shape: must be a non-empty sequence of positive ints"),
    (lambda: operations.layer_norm(7), "shape: must be a sequence of positive ints"),
    (lambda: operations.embedding_lookup((2, -1), 8), "indices: must be a non-empty sequence of positive ints"),
    (lambda: operations.embedding_lookup((2, 3), 0), "features: must be a positive integer"),
    (lambda: operations.layer_norm((4, 8), axes=0), "axes: must be how many trailing axes are normalized, 1 to 2"),
    (lambda: operations.rms_norm((4, 8), axes=3), "axes: must be how many trailing axes"),
    (lambda: operations.layer_norm((4, 8), itemsize=0), "itemsize: must be a positive integer"),
    (lambda: operations.batch_norm((8,)), "shape: needs a batch axis and a channel axis"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), (0, 2)), "window: must be a positive integer"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), (2, 2), (0, 1)), "strides: must be a positive integer"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), (2, 2), (1,)), "strides: needs 2 entries"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), (2, 2), padding=((1, 1, 1), (0, 0))), "padding: needs 2"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), (2, 2), padding=((-1, 0), (0, 0))), "padding: needs 2"),
    (lambda: operations.pooling("max", (1, 4, 4, 2), None), "window: must be an int or a sequence of 2 ints"),
    (lambda: operations.softmax((4, 8), axis_length=3), "axis_length: must be the length of one axis"),
])
def test_bad_arguments_name_the_argument(call, message):
    with pytest.raises(ValueError, match=None) as error:
        call()
    assert message in str(error.value)
