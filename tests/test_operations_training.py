"""The training forms of the operation formulas (``mode="train"``) against XLA: each equals XLA's count of a
training step as JAX writes it (the forward pass, then the pullback of an output gradient w.r.t. the input and the
parameters, as ``analyze(..., mode="train")`` builds it) for every option, and fills the rows of norms and lookups
in a model's training step."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from jaxcost import operations
from jaxcost.models.analysis import analyze

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU

KEY = jax.random.PRNGKey(0)


def _counted(lowered) -> tuple[int, int]:
    costs = lowered.cost_analysis()
    costs = costs[0] if isinstance(costs, list) else costs
    return int(costs.get("flops", 0)), int(costs.get("transcendentals", 0))


def step_written(function, x) -> tuple[int, int]:
    """XLA's flops and transcendentals of a training step of ``function`` as JAX writes it (before optimization):
    the forward pass, then the pullback of an output gradient."""
    def step(output_gradient, x):
        y, pullback = jax.vjp(function, x)
        return y, pullback(output_gradient)

    return _counted(jax.jit(step).lower(jax.eval_shape(function, x), x))


def module_step_written(module, x) -> tuple[int, int]:
    """As ``step_written``, w.r.t. the module's parameters and input; its other collections (a BatchNorm's running
    averages) are state, updated and returned, not differentiated."""
    variables = jax.eval_shape(lambda x: module.init(KEY, x), x)
    params = variables.get("params", {})
    state = {name: value for name, value in variables.items() if name != "params"}
    mutable = list(state) or False

    def forward(params, state, x):
        out = module.apply({"params": params, **state}, x, mutable=mutable)
        return out if mutable else (out, {})

    def step(params, state, output_gradient, x):
        y, pullback, updates = jax.vjp(lambda p, x: forward(p, state, x), params, x, has_aux=True)
        return y, updates, pullback(output_gradient)

    output = jax.eval_shape(forward, params, state, x)[0]
    return _counted(jax.jit(step).lower(params, state, output, x))


def as_pair(cost: operations.OpsCost) -> tuple[int, int]:
    return cost.flops, cost.transcendentals


SHAPES = [(8, 128), (4, 16, 768), (2, 7, 7, 96), (3, 5, 5, 5, 12), (3, 1, 5), (5, 1)]
OPTIONS = [(True, True, True), (True, True, False), (True, False, True), (False, True, True), (False, False, False),
           (False, True, False)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale, bias, fast", OPTIONS)
def test_layer_norm_training_step_equals_xla(shape, scale, bias, fast):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    module = nn.LayerNorm(use_scale=scale, use_bias=bias, use_fast_variance=fast)
    assert as_pair(operations.layer_norm(shape, 1, scale, bias, fast, mode="train")) == module_step_written(module, x)
    if len(shape) > 2:
        module = nn.LayerNorm(reduction_axes=(-2, -1), feature_axes=(-2, -1), use_scale=scale, use_bias=bias,
                              use_fast_variance=fast)
        cost = operations.layer_norm(shape, 2, scale, bias, fast, mode="train")
        assert as_pair(cost) == module_step_written(module, x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [True, False])
def test_rms_norm_training_step_equals_xla(shape, scale):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert as_pair(operations.rms_norm(shape, 1, scale, mode="train")) == module_step_written(
        nn.RMSNorm(use_scale=scale), x)
    if len(shape) > 2:
        module = nn.RMSNorm(use_scale=scale, reduction_axes=(-2, -1), feature_axes=(-2, -1))
        assert as_pair(operations.rms_norm(shape, 2, scale, mode="train")) == module_step_written(module, x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("train", [True, False], ids=["batch statistics", "running averages"])
@pytest.mark.parametrize("scale, bias, fast", OPTIONS)
def test_batch_norm_training_step_equals_xla(shape, train, scale, bias, fast):
    """With batch statistics the gradient goes through them; with running averages (constants) only through
    the scale, the bias and the centred input."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    module = nn.BatchNorm(use_running_average=not train, use_scale=scale, use_bias=bias, use_fast_variance=fast)
    cost = operations.batch_norm(shape, train, scale, bias, fast, mode="train")
    assert as_pair(cost) == module_step_written(module, x)


@pytest.mark.parametrize("shape, groups", [((8, 128), 32), ((2, 8, 8, 16), 4), ((2, 7, 7, 96), 32),
                                           ((1, 4, 4, 4, 6), 3), ((3, 10, 12), 1), ((3, 10, 12), 12), ((1, 1, 4), 2)])
@pytest.mark.parametrize("scale, bias, fast", OPTIONS)
def test_group_norm_training_step_equals_xla(shape, groups, scale, bias, fast):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    module = nn.GroupNorm(num_groups=groups, use_scale=scale, use_bias=bias, use_fast_variance=fast)
    cost = operations.group_norm(shape, groups, scale, bias, fast, mode="train")
    assert as_pair(cost) == module_step_written(module, x)


def test_layer_norm_training_step_by_hand():
    """8 rows of 128 (n = 1,024 elements, R = 8 rows, F = 128 features): the forward 7n + 4R; the gradient of the
    bias and the scale (a sum over rows each, less F), of the factor rsqrt · scale, of the centring and of both
    means back to the input: 13n − 2F + 13R. No transcendental more: rsqrt's derivative reuses rsqrt."""
    n, rows, features = 1024, 8, 128
    assert as_pair(operations.layer_norm((8, 128), mode="train")) == (20 * n + 17 * rows - 2 * features, rows)


POOLS = [((2, 7, 7, 96), (3, 3), (2, 2), "VALID"), ((2, 7, 7, 96), (3, 3), (2, 2), "SAME"),
         ((1, 10, 8), (2,), (2,), "SAME"), ((2, 6, 6, 6, 4), (2, 3, 2), (1, 2, 2), "VALID"),
         ((1, 9, 9, 3), (3, 3), (1, 1), ((1, 1), (2, 0))), ((1, 5, 5, 2), (5, 5), (1, 1), "VALID"),
         ((1, 5, 5, 2), (2, 2), (3, 3), ((4, 4), (0, 3))), ((2, 4, 4, 1), (1, 1), (1, 1), "SAME")]


@pytest.mark.parametrize("shape, window, strides, padding", POOLS)
def test_pooling_training_step_equals_xla(shape, window, strides, padding):
    """Padding beyond the window (4 before a window of 2) and strides beyond it (3) included."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert as_pair(operations.pooling("max", shape, window, strides, padding, mode="train")) == step_written(
        lambda x: nn.max_pool(x, window, strides, padding), x)
    assert as_pair(operations.pooling("avg", shape, window, strides, padding, mode="train")) == step_written(
        lambda x: nn.avg_pool(x, window, strides, padding), x)
    cost = operations.pooling("avg", shape, window, strides, padding, count_include_pad=False, mode="train")
    assert as_pair(cost) == step_written(lambda x: nn.avg_pool(x, window, strides, padding, count_include_pad=False), x)


def test_pooling_gradients_by_hand():
    """3×3 windows, stride 2, SAME on 7×7 (2 images, 96 channels): 4×4 outputs per image and channel. The maximum's
    gradient is one select-and-scatter: 8 compares and 1 add per output; the average's a divide per output and 8
    adds per input element (the output gradient's window sums)."""
    outputs, elements = 2 * 4 * 4 * 96, 2 * 7 * 7 * 96
    shape, window, strides = (2, 7, 7, 96), (3, 3), (2, 2)
    forward, train = (operations.pooling("max", shape, window, strides, "SAME", mode=mode).flops
                      for mode in ("forward", "train"))
    assert train - forward == 9 * outputs
    forward, train = (operations.pooling("avg", shape, window, strides, "SAME", mode=mode).flops
                      for mode in ("forward", "train"))
    assert train - forward == outputs + 8 * elements


@pytest.mark.parametrize("shape", [(16, 64), (2, 8, 10), (3, 1, 5), (2, 3, 4, 5, 6)])
def test_softmax_and_log_softmax_training_steps_equal_xla(shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert as_pair(operations.softmax(shape, mode="train")) == step_written(nn.softmax, x)
    assert as_pair(operations.softmax(shape, log=True, mode="train")) == step_written(nn.log_softmax, x)
    assert as_pair(operations.softmax(shape, shape[-2], mode="train")) == step_written(
        lambda x: nn.softmax(x, axis=-2), x)
    assert as_pair(operations.softmax(shape, shape[0], log=True, mode="train")) == step_written(
        lambda x: nn.log_softmax(x, axis=0), x)


def test_softmax_gradient_by_hand():
    """16 rows of 64 (n = 1,024, R = 16): 6n + 2R for softmax, 4n for log_softmax; the maximum has none."""
    n, rows = 1024, 16
    for log, gradient in ((False, 6 * n + 2 * rows), (True, 4 * n)):
        forward, train = (operations.softmax((16, 64), log=log, mode=mode) for mode in ("forward", "train"))
        assert (train.flops - forward.flops, train.transcendentals) == (gradient, forward.transcendentals)


ACTIVATION_FUNCTIONS = {
    "relu": nn.relu, "relu6": nn.relu6, "sigmoid": nn.sigmoid, "tanh": nn.tanh, "silu": nn.silu, "swish": nn.swish,
    "gelu": nn.gelu, "leaky_relu": nn.leaky_relu, "hard_sigmoid": nn.hard_sigmoid, "hard_swish": nn.hard_swish,
    "softplus": nn.softplus, "mish": jax.nn.mish,
}


def test_every_activation_has_a_gradient_and_is_checked():
    assert set(ACTIVATION_FUNCTIONS) == set(operations.ACTIVATIONS) == set(operations.ACTIVATION_GRADIENTS)


@pytest.mark.parametrize("name", sorted(operations.ACTIVATIONS))
@pytest.mark.parametrize("shape", [(16, 64), (2, 3, 5, 7)])
def test_activation_training_steps_equal_xla(name, shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert as_pair(operations.activation(name, shape, mode="train")) == step_written(ACTIVATION_FUNCTIONS[name], x)


@pytest.mark.parametrize("tokens, vocabulary, features", [((2, 16), 100, 32), ((7,), 50, 8), ((3, 4, 5), 11, 6)])
def test_embedding_training_step_adds_a_scatter_of_the_output_gradient(tokens, vocabulary, features):
    """The table's gradient: the output gradient's rows added into zeros, one add per element; the integer ids have
    none. The bytes by hand: ids, the rows taken, the output; the output gradient and the gradient rows."""
    ids = jax.ShapeDtypeStruct(tokens, jnp.int32)
    lookups = math.prod(tokens)
    cost = operations.embedding_lookup(tokens, features, mode="train")
    assert as_pair(cost) == module_step_written(nn.Embed(vocabulary, features), ids)
    assert cost.flops == operations.embedding_lookup(tokens, features).flops + lookups * features
    assert cost.bytes_accessed == lookups * features * 4 * 4 + lookups * 4


def test_training_bytes_read_and_write_each_gradient_once():
    """The input, parameters and output gradient read; the output and the input's and parameters' gradients
    written: twice the forward's traffic, but a BatchNorm's running averages (state, without gradients)."""
    n, features = 8 * 128, 128
    assert operations.layer_norm((8, 128), mode="train").bytes_accessed == 4 * (4 * n + 2 * 2 * features)
    assert operations.rms_norm((8, 128), itemsize=2, mode="train").bytes_accessed == 2 * (4 * n + 2 * features)
    assert operations.batch_norm((8, 128), train=True, mode="train").bytes_accessed == 4 * (
        4 * n + 2 * 2 * features + 4 * features)
    assert operations.batch_norm((8, 128), mode="train").bytes_accessed == 4 * (4 * n + 2 * 2 * features + 2 * features)
    for function, args in ((operations.pooling, ("max", (2, 8, 8, 4), (2, 2), (2, 2))),
                           (operations.softmax, ((8, 128),)), (operations.activation, ("gelu", (8, 128), 2))):
        assert function(*args, mode="train").bytes_accessed == 2 * function(*args).bytes_accessed


def test_softmax_and_activations_carry_their_bytes():
    """The input read and the output written, 4 bytes an element unless ``itemsize`` says otherwise."""
    assert operations.softmax((8, 128)).bytes_accessed == 2 * 1024 * 4
    assert operations.softmax((8, 128), log=True, itemsize=2).bytes_accessed == 2 * 1024 * 2
    assert operations.activation("relu", (8, 128)).bytes_accessed == 2 * 1024 * 4
    assert operations.activation("tanh", (8, 128), itemsize=2).bytes_accessed == 2 * 1024 * 2


@pytest.mark.parametrize("function, args", [
    (operations.layer_norm, ((4, 8),)), (operations.rms_norm, ((4, 8),)), (operations.batch_norm, ((4, 8),)),
    (operations.group_norm, ((4, 8), 2)), (operations.pooling, ("max", (1, 4, 4, 2), (2, 2))),
    (operations.softmax, ((4, 8),)), (operations.activation, ("relu", (4, 8))),
    (operations.embedding_lookup, ((4,), 8)),
])
def test_mode_is_forward_by_default_or_train(function, args):
    assert function(*args) == function(*args, mode="forward") != function(*args, mode="train")
    with pytest.raises(ValueError, match="^mode: must be 'forward' or 'train', got 'backward'$"):
        function(*args, mode="backward")


class Normed(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(16, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.GroupNorm(num_groups=4)(nn.relu(x))
        x = nn.ConvTranspose(8, (3, 3), strides=(2, 2))(nn.max_pool(x, (2, 2), (2, 2)))
        x = nn.RMSNorm()(nn.gelu(nn.LayerNorm(use_fast_variance=False)(x)))
        x = nn.avg_pool(x, (3, 3), padding="SAME")
        tokens = nn.Embed(10, 8)((x[:, 0, 0, 0] > 1e9).astype(jnp.int32))  # traced ids, not constants
        return x + tokens[:, None, None, :]


@pytest.mark.parametrize("train", [False, True], ids=["running averages", "batch statistics"])
def test_a_training_step_gives_norm_and_lookup_rows_their_training_formulas(train):
    """Each row's analytic flops and bytes are its operation's training step, equal to the row in the step's
    program as written."""
    report = analyze(Normed(), jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32), mode="train", train=train)
    rows = {row.module_type: row for row in report.modules}
    expected = {
        "BatchNorm": operations.batch_norm((2, 8, 8, 16), train, mode="train"),
        "GroupNorm": operations.group_norm((2, 8, 8, 16), 4, mode="train"),
        "LayerNorm": operations.layer_norm((2, 8, 8, 8), fast_variance=False, mode="train"),
        "RMSNorm": operations.rms_norm((2, 8, 8, 8), mode="train"),
        "Embed": operations.embedding_lookup((2,), 8, mode="train"),
    }
    for module_type, cost in expected.items():
        row = rows[module_type]
        assert row.formula and (row.flops, row.bytes_accessed) == (cost.flops, cost.bytes_accessed), module_type
        assert row.flops == report.written_flops(row.path), module_type


def test_nnx_norms_get_their_training_formulas_a_batch_norm_reading_running_averages_too():
    """An nnx model's training step differentiates its parameters and inputs, as a linen model's: a BatchNorm that
    reads its running averages gives them no gradient, and its row equals its training formula too."""
    class Block(nnx.Module):
        def __init__(self, rngs):
            self.norm = nnx.LayerNorm(12, rngs=rngs)
            self.rms = nnx.RMSNorm(12, rngs=rngs)
            self.groups = nnx.GroupNorm(12, num_groups=3, rngs=rngs)
            self.batch = nnx.BatchNorm(12, use_running_average=False, rngs=rngs)
            self.running = nnx.BatchNorm(12, use_running_average=True, rngs=rngs)

        def __call__(self, x):
            return self.running(self.batch(self.groups(self.rms(self.norm(x)))))

    shape = (2, 5, 12)
    report = analyze(Block(nnx.Rngs(0)), jax.ShapeDtypeStruct(shape, jnp.float32), mode="train")
    rows = {row.path: row for row in report.modules}
    assert {path: rows[path].flops for path in ("norm", "rms", "groups", "batch", "running")} == {
        "norm": operations.layer_norm(shape, mode="train").flops, "rms": operations.rms_norm(shape, mode="train").flops,
        "groups": operations.group_norm(shape, 3, mode="train").flops,
        "batch": operations.batch_norm(shape, train=True, mode="train").flops,
        "running": operations.batch_norm(shape, train=False, mode="train").flops}
    assert all(rows[path].flops == report.written_flops(path) for path in ("norm", "rms", "groups", "batch", "running"))
