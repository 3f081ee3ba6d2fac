"""What JAX's autodiff saves for the backward pass (its residuals, read from the training step's jaxpr) beside what
XLA keeps: by hand for a two-layer MLP, against JAX's own ``saved_residuals``, per layer (a Dense or Conv layer's
gradient reads its input), under ``nn.remat``, and for a transformer block beside Korthikanti et al.'s formula."""

from collections import Counter
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxcost.hlo.text import parse_shape
from jaxcost.models.memory import memory
from jaxcost.models.residuals import aval_bytes, hlo_shape, is_backward
from jaxcost.models.saved import compare_block
from jaxcost.models.transformer import GPT2
from jaxcost.operations import ACTIVATIONS

pytestmark = pytest.mark.cpu
BATCH, FEATURES, HIDDEN, CLASSES = 64, 784, 512, 10


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(CLASSES, name="fc2")(nn.relu(nn.Dense(HIDDEN, name="fc1")(x)))


class Tower(nn.Module):
    """Dense, LayerNorm, tanh and a convolution: rules that keep inputs, outputs and statistics."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(8, (3, 3), name="conv1")(x)
        x = nn.LayerNorm(name="norm")(nn.gelu(x))
        x = nn.Conv(8, (3, 3), feature_group_count=8, name="depthwise")(jnp.tanh(x))
        return nn.Dense(CLASSES, name="head")(x.reshape(x.shape[0], -1))


def test_a_two_layer_mlp_by_hand():
    """JAX's relu keeps the mask x > 0 (a byte an element) and fc2's kernel gradient reads relu's output (4 bytes):
    5 bytes an element of the hidden layer. XLA keeps fc1's output instead of the mask (the backward's fusion
    compares it again) and relu's output: 8 bytes an element."""
    report = memory(MLP(), jax.ShapeDtypeStruct((BATCH, FEATURES), jnp.float32), mode="train")
    hidden = BATCH * HIDDEN
    assert sorted((value.shape, value.row) for value in report.residuals) == [
        (f"f32[{BATCH},{HIDDEN}]", "activation"), (f"pred[{BATCH},{HIDDEN}]", "activation")]
    assert report.residuals_bytes == hidden * 1 + hidden * 4
    assert report.saved_bytes == hidden * 4 + hidden * 4


def check_against_jax(ours: list, function, *arguments, parameters: object = None) -> None:
    """``ours`` (a report's residuals) are what ``jax.ad_checkpoint.saved_residuals`` lists for ``function``, shape
    for shape, but for the values JAX saves that are computed from no input: a broadcast constant (the zeros beside
    relu's mask, the ones of a sum's gradient), a scalar made from shapes alone (``jnp.var``'s count), a parameter
    reshaped (a LayerNorm's scale; the parameters are held anyway)."""
    import jax.ad_checkpoint

    saved_residuals = getattr(jax.ad_checkpoint, "saved_residuals", None)
    if saved_residuals is None:  # jax 0.10 keeps it private; print_saved_residuals is its public face
        from jax._src.ad_checkpoint import saved_residuals
    parameter_elements = {leaf.size for leaf in jax.tree_util.tree_leaves(parameters)}
    computed, from_no_input = Counter(), Counter()
    with jax.disable_jit():  # jitted functions inlined: each value named by the operation that made it
        listed = saved_residuals(function, *arguments)
    for aval, source in listed:
        if source.startswith(("from the argument", "from a literal", "from a constant")):
            continue
        shape = hlo_shape(aval)
        computed[shape] += 1
        if (source.startswith("output of broadcast_in_dim") or not aval.shape
                or (source.startswith("output of reshape") and aval.size in parameter_elements)):
            from_no_input[shape] += 1
    found = Counter(value.shape for value in ours)
    assert found <= computed, found - computed
    assert computed - found <= from_no_input, computed - found


@pytest.mark.parametrize("model, shape", [(MLP(), (BATCH, FEATURES)), (Tower(), (2, 8, 8, 3))],
                         ids=["mlp", "tower"])
def test_the_residuals_are_jaxs_own(model, shape):
    """The step's residuals are those JAX's own ``saved_residuals`` lists for the model's function, less the values
    computed from no input."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    report = memory(model, x, mode="train")
    params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    check_against_jax(report.residuals, lambda p, inputs: model.apply({"params": p}, inputs), params,
                      jnp.zeros(shape), parameters=params)


def test_a_gradient_taken_inside_the_forward_pass_is_forward():
    """A gradient penalty's pullback runs in the forward pass: what it computes is saved like any forward value."""
    def penalized(x):
        return jnp.sin(jax.grad(lambda y: jnp.sum(jnp.sin(y) * y))(jnp.sin(x)))

    report = memory(penalized, jax.ShapeDtypeStruct((8, 16), jnp.float32), mode="train")
    assert sorted(value.instruction for value in report.residuals) == ["cos", "cos", "cos", "cos", "mul", "sin"]
    check_against_jax(report.residuals, penalized, jnp.zeros((8, 16)))


#: Operations of a model with their own differentiation rules, each applied to a value computed from the input (so
#: that what the rule keeps of its input is a residual, not the step's argument).
OPERATIONS = {
    **{name: getattr(jax.nn, name) for name in ACTIVATIONS if hasattr(jax.nn, name)},
    "gelu exact": lambda x: jax.nn.gelu(x, approximate=False),
    "softmax": jax.nn.softmax, "log_softmax": jax.nn.log_softmax,
    "layer norm": lambda x: (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-5),
    "max pool": lambda x: nn.max_pool(x[..., None], (2, 2), (2, 2)),
    "avg pool": lambda x: nn.avg_pool(x[..., None], (2, 2), (2, 2)),
    "dot": lambda x: x @ x.T,
    # the mask drawn from a key computed from the input, as a model's key is an argument of its step
    "dropout mask": lambda x: jnp.where(jax.random.bernoulli(jax.random.key(x.sum().astype(jnp.int32)), 0.9,
                                                             x.shape), x / 0.9, 0.0),
    "logsumexp": lambda x: jax.nn.logsumexp(x, axis=-1),
}


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_each_operations_rule_saves_what_jax_says(name):
    """For every activation, norm, softmax, pool and product, what the step's jaxpr says JAX saves is what JAX's own
    ``saved_residuals`` lists, less values made from no input."""
    operation = OPERATIONS[name]
    x = jax.ShapeDtypeStruct((8, 16), jnp.float32)
    report = memory(lambda inputs: operation(jnp.sin(inputs)), x, mode="train")
    assert report.residuals
    check_against_jax(report.residuals, lambda inputs: operation(jnp.sin(inputs)), jnp.zeros(x.shape))


def test_a_layers_gradient_reads_its_input():
    """Every Dense and Conv row after the first: its input, as the operation before it made it and at its dtype, is
    among what JAX saves (the kernel's gradient is the input against the output gradient)."""
    x = jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32)
    report = memory(Tower(), x, mode="train")
    made_by = {"depthwise": "tanh", "head": "reshape"}  # the operation that makes each layer's input
    layers = [row for row in report.model.rows if row.is_layer and row.path != "conv1"]
    assert [row.path for row in layers] == list(made_by)
    for row in layers:
        shape = hlo_shape(jax.ShapeDtypeStruct(row.input_shape, jnp.dtype(row.input_dtype)))
        assert any(value.shape == shape and value.instruction == made_by[row.path] for value in report.residuals)
    norm = 4 * (3 * 2 * 8 * 8 * 8 + 4 * 2 * 8 * 8)  # three float32 tensors of the input's size, four statistics
    assert {row.path: row.residual_bytes for row in report.model.rows}["norm"] == norm


class Inner(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(CLASSES, name="fc2")(jnp.tanh(nn.Dense(HIDDEN, name="fc1")(x)))


class Checkpointed(nn.Module):
    """A sine, then two layers under ``nn.remat`` with a policy (or none: no remat)."""

    policy: Any = None
    remat: bool = True

    @nn.compact
    def __call__(self, x):
        block = nn.remat(Inner, policy=self.policy) if self.remat else Inner
        return block(name="inner")(jnp.sin(x))


def test_a_checkpoint_policy_changes_what_jax_saves():
    """Without remat JAX saves the sine and its cosine, tanh and 1 - tanh^2; under ``nn.remat`` only what lies
    outside the block; ``dots_saveable`` adds fc1's product; ``everything_saveable`` what no remat saves."""
    x = jax.ShapeDtypeStruct((BATCH, FEATURES), jnp.float32)
    policies = jax.checkpoint_policies
    saved = {name: memory(Checkpointed(**keywords), x, mode="train").residuals for name, keywords in (
        ("plain", {"remat": False}), ("remat", {}), ("dots", {"policy": policies.dots_saveable}),
        ("everything", {"policy": policies.everything_saveable}))}
    outside = [("sin", f"f32[{BATCH},{FEATURES}]"), ("cos", f"f32[{BATCH},{FEATURES}]")]
    hidden = f"f32[{BATCH},{HIDDEN}]"
    made = {name: [(value.instruction, value.shape) for value in values] for name, values in saved.items()}
    assert made["plain"] == [*outside, ("tanh", hidden), ("sub", hidden)]
    assert made["remat"] == outside
    assert made["dots"] == [*outside, ("dot_general", hidden)]
    assert [value.row for value in saved["dots"]][2] == "inner/fc1"
    assert made["everything"] == made["plain"]


@pytest.mark.parametrize("scope, backward", [
    ("jit(step)/transpose(jvp(Net))/fc1/dot_general", True), ("transpose(jvp(GPT2))/block1/attention", True),
    ("jit(train_step)/jit(inner)/transpose(jvp(Net))/mul", True), ("jit(step)/jvp(Net)/fc1/dot_general", False),
    ("jit(step)/jvp(Net)/transpose(jvp())/mul", False), ("jvp(transpose(jvp()))/mul", False), ("", False)])
def test_the_backward_pass_is_told_by_its_first_scope(scope, backward):
    """A gradient's scope starts (past jitted functions) with the transpose; a gradient taken inside the forward
    pass has it deeper, on both sides: equations' name stacks and instructions' op_names."""
    assert is_backward(scope) is backward


def test_aval_bytes():
    assert aval_bytes(jax.ShapeDtypeStruct((8, 1024, 768), jnp.bfloat16)) == 8 * 1024 * 768 * 2
    assert hlo_shape(jax.ShapeDtypeStruct((3, 4), jnp.bool_)) == "pred[3,4]"


def small_gpt2(remat: bool) -> GPT2:
    return GPT2(vocabulary=512, context=128, width=128, depth=2, heads=4, dtype=jnp.bfloat16, remat=remat)


@pytest.fixture(scope="module")
def gpt2_steps():
    tokens = jax.ShapeDtypeStruct((2, 128), jnp.int32)
    return {remat: memory(small_gpt2(remat), tokens, mode="train") for remat in (False, True)}


def test_remat_saves_only_each_blocks_input(gpt2_steps):
    """Under ``nn.remat`` JAX saves nothing inside a block: what a block needs is recomputed from its input, which
    the block before it (or the embeddings' sum) made; the last block's output is read by the final norm, which saves
    its own values. The token ids (for the embedding's gradient) are kept too."""
    plain, rematted = gpt2_steps[False], gpt2_steps[True]
    hidden = 2 * 128 * 128  # batch x sequence x width
    norm = 3 * 4 * hidden + 4 * 4 * 2 * 128 + 2 * hidden  # three float32 tensors, four statistics, its bf16 output
    assert dict(rematted.residuals_by_row()) == {"tokens": 2 * 128 * 4, "add": 2 * hidden, "block0": 2 * hidden,
                                                 "norm": norm}
    assert rematted.residuals_bytes < plain.residuals_bytes / 4


def test_a_blocks_residuals_beside_the_formula(gpt2_steps):
    """JAX's residuals of a block, sorted into the formula's sizes: the items add up to the difference exactly, the
    formula's dropout tensors are absent, and every residual of the block is one of the sizes or named. Here four
    heads over 128 tokens make as²b as large as 4sbh (a·s = 4h): the attention's tensors are told apart by their
    shape."""
    report = gpt2_steps[False]
    comparison = compare_block(report, "block1", sequence=128, batch=2, hidden=128, heads=4, level="JAX saves")
    items = comparison.items()
    assert comparison.saved_bytes - comparison.formula_bytes == sum(amount for _, amount in items)
    assert comparison.saved_bytes == sum(value.bytes for value in report.residuals
                                         if value.row == "block1" or value.row.startswith("block1/"))
    assert sum("absent" in name for name, _ in items) == 4
    lines = {line.size: line for line in comparison.lines}
    assert lines["4sbh"].widths == {2: 6}  # GeLU's input and output at 16 bits, two products, tanh and 1 - tanh^2
    assert lines["as2b"].widths == {2: 2}  # the softmax's exponentials and its output
    # what is of no size of the formula's: the norms' statistics (a value per token) and the softmax's (per token
    # and head)
    assert {parse_shape(value.shape).elements for value in comparison.others} == {2 * 128, 2 * 128 * 4}


def test_an_unknown_level_is_named():
    with pytest.raises(ValueError, match="level: one of"):
        compare_block(None, "block0", 1, 1, 1, 1, level="torch keeps")
