"""Itemized explanations: each item names its HLO ops and its exact count."""

import os
import subprocess
import sys
from collections import Counter

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost.comparison import compare_spec
from jaxcost.compiler import CompilerCost
from tests.conftest import CPU_ONLY_ENVIRONMENT

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU


def kinds(comparison):
    return sorted(delta.kind for delta in comparison.deltas)


def test_float32_conv_without_bias_is_exact():
    comparison = jc.compare(jc.standard_conv((1, 56, 56, 64), 128, 3, use_bias=False))
    assert comparison.verdict == "exact"
    assert comparison.deltas == []
    assert comparison.compiler.xla_flops == comparison.analytic_flops == 451_477_504
    assert comparison.compiler.xla_bytes_accessed == comparison.analytic_bytes == 2_703_360


def test_unfused_bias_add_costs_the_intermediate_twice():
    spec = jc.standard_conv((1, 10, 10, 8), 16, 3)
    comparison = jc.compare(spec)
    assert comparison.flops_verdict == "exact"  # the bias add's flops are in the analytic count
    (delta,) = comparison.deltas
    assert delta.kind == "unfused" and "bias add" in delta.description
    assert delta.bytes == 2 * 10 * 10 * 16 * 4  # the conv writes its output, the bias add reads it back
    assert len(delta.ops) == 2
    assert comparison.verdict == "explained"


def test_bfloat16_conv_itemizes_every_convert():
    spec = jc.Conv((1, 5, 5, 4), 8, 3, dtype="bfloat16")
    comparison = jc.compare(spec)
    converts = [d for d in comparison.deltas if d.kind == "convert" and d.flops]
    # input (100) and kernel (288) converted up; output converted down, up again and down (3 x 200);
    # the bias converted up (8)
    assert sum(d.flops for d in converts) == 100 + 288 + 3 * 200 + 8
    assert all(len(d.ops) == 1 for d in converts)
    assert comparison.flops_remainder == 0 and comparison.bytes_remainder == 0


def test_one_by_one_depthwise_conv_is_a_multiply_at_one_flop_per_mac():
    spec = jc.depthwise_conv((1, 7, 7, 16), 1, use_bias=False)
    comparison = jc.compare(spec)
    macs = 7 * 7 * 16
    assert comparison.compiler.xla_flops == macs  # not 2 * macs
    rewrites = [d for d in comparison.deltas if d.kind == "rewrite" and d.flops]
    assert sum(d.flops for d in rewrites) == -macs
    assert all(d.ops for d in rewrites)
    assert kinds(comparison) == ["rewrite"] * len(comparison.deltas)


def test_function_with_activation():
    x = jax.ShapeDtypeStruct((32, 256), jnp.float32)
    w = jax.ShapeDtypeStruct((256, 128), jnp.float32)
    comparison = jc.compare(lambda x, w: jax.nn.relu(x @ w), x, w, label="relu_dense")
    assert comparison.label == "relu_dense"
    assert comparison.analytic_flops == 2 * 32 * 256 * 128
    assert comparison.analytic_bytes == (32 * 256 + 256 * 128 + 32 * 128) * 4
    activation = [d for d in comparison.deltas if d.kind == "activation"]
    assert [d.flops for d in activation] == [32 * 128]
    assert comparison.flops_remainder == 0 and comparison.bytes_remainder == 0


def test_flax_module_function_with_bias_and_gelu():
    module = nn.Conv(16, (3, 3))
    x = jax.ShapeDtypeStruct((2, 12, 12, 8), jnp.float32)
    params = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
    comparison = jc.compare(lambda p, x: nn.gelu(module.apply(p, x)), params, x)
    assert [d.flops for d in comparison.deltas if d.kind == "bias"] == [2 * 12 * 12 * 16]
    assert comparison.compiler.transcendentals == 2 * 12 * 12 * 16  # tanh, counted apart from flops
    assert comparison.flops_remainder == 0 and comparison.bytes_remainder == 0


@pytest.mark.parametrize("spec", [
    jc.Conv((1, 6, 6, 4), 8, 3, dtype="float16"),
    jc.Conv((2, 7, 5, 4), 8, (3, 2), strides=2, dtype="int8"),
    jc.depthwise_conv((2, 5, 5, 4), 3, dtype="int8"),
    jc.Dense((3, 7), 5, dtype="int8"),
    jc.Conv((1, 1, 1, 2), 4, (4, 1), padding=((3, 3), (0, 0)), use_bias=False),
    jc.Conv((1, 9, 3), 6, 2, padding=((1, 2),), input_dilation=3, kernel_dilation=2, feature_group_count=3),
])
def test_other_dtypes_and_odd_layers_are_explained_exactly(spec):
    comparison = jc.compare(spec)
    assert comparison.flops_remainder == 0 and comparison.bytes_remainder == 0
    assert comparison.flops_explained == comparison.compiler.xla_flops
    assert all(delta.ops for delta in comparison.deltas)


def test_float64_with_x64():
    code = ("import jax; jax.config.update('jax_enable_x64', True); import jaxcost as jc; "
            "c = jc.compare(jc.Conv((1, 6, 6, 2), 4, 3, dtype='float64', use_bias=False)); "
            "print(c.verdict, c.analytic_bytes, c.compiler.xla_bytes_accessed)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, **CPU_ONLY_ENVIRONMENT})
    bytes_expected = (6 * 6 * 2 + 3 * 3 * 2 * 4 + 6 * 6 * 4) * 8
    assert result.stdout.split() == ["exact", str(bytes_expected), f"{bytes_expected}.0"]


GPU_CONV = """HloModule gpu_conv

ENTRY %main.1 (x.1: f32[1,56,56,64], w: f32[128,3,3,64], b: f32[128]) -> f32[1,56,56,128] {
  %x.1 = f32[1,56,56,64]{3,2,1,0} parameter(0)
  %w = f32[128,3,3,64]{3,2,1,0} parameter(1)
  %b = f32[128]{0} parameter(2)
  %cudnn-conv-bias-activation.3 = (f32[1,56,56,128]{3,2,1,0}, u8[0]{0}) custom-call(%x.1, %w, %b), \
window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_o01i->b01f, custom_call_target="__cudnn$convBiasActivationForward", \
backend_config={"cudnn_conv_backend_config":{"activation_mode":"kRelu","conv_result_scale":1,"side_input_scale":0}}
  ROOT %get-tuple-element = f32[1,56,56,128]{3,2,1,0} get-tuple-element(%cudnn-conv-bias-activation.3), index=0
}
"""


def test_library_call_is_recounted_and_xla_minus_one_itemized():
    # XLA reports -1 for a cuDNN call and folds it into its totals (tests/fixtures/h100_probe2.jsonl)
    xla = {"flops": -1.0, "bytes accessed": -1.0}
    compiler = CompilerCost(xla=xla, recount=jc.recount(GPU_CONV), memory={}, hlo_text=GPU_CONV,
                            platform="gpu", seconds_compile=0.0)
    assert not compiler.xla_known
    assert compiler.xla_unknown[-1] == "cudnn-conv-bias-activation.3 (custom-call __cudnn$convBiasActivationForward)"
    assert compiler.unknown == []
    assert compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")
    spec = jc.standard_conv((1, 56, 56, 64), 128, 3)
    cost = jc.analytic(spec)
    assert compiler.flops == cost.flops + 56 * 56 * 128  # conv, bias and the fused ReLU, no -1 anywhere
    assert compiler.bytes_accessed == cost.bytes_accessed
    comparison = compare_spec(spec, compiler)
    relu = [d for d in comparison.deltas if d.kind == "activation"]
    assert [(d.flops, d.ops) for d in relu] == [(56 * 56 * 128, ("cudnn-conv-bias-activation.3",))]
    (minus_one,) = [d for d in comparison.deltas if d.stage == "xla"]
    assert (minus_one.kind, minus_one.flops) == ("unknown", -1 - compiler.flops)
    assert comparison.flops_remainder == 0 and comparison.bytes_remainder == 0
    assert comparison.verdict == "explained" and not comparison.analytic_matches_program


def test_custom_call_jaxcost_does_not_know_makes_the_verdict_unknown():
    text = GPU_CONV.replace("__cudnn$convBiasActivationForward", "my$kernel")
    compiler = CompilerCost(xla={"flops": -1.0, "bytes accessed": -1.0}, recount=jc.recount(text), memory={},
                            hlo_text=text, platform="gpu", seconds_compile=0.0)
    assert compiler.unknown == ["cudnn-conv-bias-activation.3 (custom-call my$kernel)"]
    assert compiler.flops == 0
    comparison = compare_spec(jc.standard_conv((1, 56, 56, 64), 128, 3), compiler)
    assert comparison.verdict == "unknown"


def test_training_step_of_a_plain_conv_is_three_forward_convolutions():
    spec = jc.standard_conv((4, 28, 28, 32), 64, 3)
    comparison = jc.compare(spec, mode="train")
    cost = comparison.cost
    conv_flops = [op.cost.flops_by_opcode["convolution"] for op in comparison.compiler.recount.ops
                  if op.cost.flops_by_opcode["convolution"]]
    assert sorted(conv_flops) == [2 * cost.forward.macs] * 3  # forward, grad-input, grad-weight
    assert cost.grad_bias_adds == 4 * 28 * 28 * 64 - 64
    assert cost.rule_of_thumb_flops == 3 * cost.forward.flops
    assert cost.flops == 3 * 2 * cost.forward.macs + cost.forward.bias_adds + cost.grad_bias_adds
    assert comparison.flops_verdict == "exact"
    assert comparison.flops_remainder == 0 and comparison.bytes_remainder == 0


def test_depthwise_grad_weight_computed_as_a_dense_conv_is_named():
    spec = jc.depthwise_conv((1, 8, 8, 4), 3, use_bias=False)
    comparison = jc.compare(spec, mode="train")
    one_pass = 2 * jc.analytic(spec).macs
    (main,) = [d for d in comparison.deltas if d.kind == "rewrite" and "convolution counted" in d.description]
    assert main.flops == 4 * one_pass - one_pass  # grad-weight as a dense conv: Cin = 4 times a pass
    assert "4x a pass" in main.description
    assert comparison.flops_remainder == 0


def test_mode_must_be_forward_or_train():
    with pytest.raises(ValueError, match="^mode:"):
        jc.analytic(jc.dense((2, 3), 4), mode="backward")
    with pytest.raises(ValueError, match="^mode:"):
        jc.compare(jc.dense((2, 3), 4), mode="inference")


def test_an_int8_depthwise_conv_is_a_masked_dense_conv_and_a_grouped_one_steps_through_its_groups():
    # what the README says of int8 grouped convolutions on the CPU
    depthwise = jc.compare(jc.depthwise_conv((1, 8, 8, 64), 3, dtype="int8", use_bias=False))
    mask = 2 * 3 * 3 * 64 * 64  # a compare and a select an element of the dense kernel
    assert depthwise.compiler.flops == 64 * depthwise.analytic_flops + mask  # every channel pair, then masked
    assert {delta.kind for delta in depthwise.deltas} == {"rewrite"} and depthwise.flops_remainder == 0
    grouped = jc.compare(jc.Conv((1, 8, 8, 64), 128, 3, feature_group_count=4, dtype="int8", use_bias=False))
    assert "convolution-base-dilated" in grouped.compiler.hlo_text and "lhs_dilate=1x1x4" in grouped.compiler.hlo_text
    taps = (8 * 3 - 2) ** 2  # a 3x3 SAME window over 8x8: each row and column loses a tap at both edges
    assert grouped.compiler.flops == grouped.analytic_flops == 2 * taps * 16 * 128
    assert grouped.flops_remainder == 0 and not [delta for delta in grouped.deltas if delta.kind == "rewrite"]


READ_WITHOUT_ARITHMETIC = """HloModule m
ENTRY %main (a: f32[8,8]) -> f32[8,8] {
  %a = f32[8,8]{1,0} parameter(0)
  %sum = f32[8,8]{1,0} add(%a, %a)
  %copy.1 = f32[8,8]{0,1} copy(%sum)
  %twice = f32[8,8]{1,0} add(%a, %a)
  %gathered = f32[8,8]{1,0} all-gather(%twice), dimensions={0}, replica_groups={{0}}
  %both = f32[8,8]{1,0} multiply(%gathered, %copy.1)
  %NAME = f32[8,8]{0,1} copy(%both)
  ROOT %out = f32[8,8]{1,0} multiply(%NAME, %NAME)
}
"""


def test_an_intermediate_read_without_arithmetic_names_its_readers_and_what_they_do():
    """Re-laid out only by a layout op (a copy); an all-gather, which does no arithmetic either, reads it back."""
    name = "relaid"
    text = READ_WITHOUT_ARITHMETIC.replace("NAME", name)
    compiler = CompilerCost(xla={}, recount=jc.recount(text), memory={}, hlo_text=text, platform="cpu",
                            seconds_compile=0.0)
    deltas = {delta.ops[0]: delta for delta in jc.comparison.explain(compiler, Counter())
              if delta.ops and "intermediate" in delta.description}
    descriptions = {op: delta.description for op, delta in deltas.items()}
    assert (deltas["sum"].kind, deltas["twice"].kind, deltas["both"].kind) == ("layout", "unfused", "layout")
    assert descriptions["sum"].endswith("written by sum and re-laid out by copy.1 (its readers do no arithmetic)")
    assert "re-laid out" not in descriptions["twice"]
    assert descriptions["twice"].endswith("written by twice and read back by gathered (an all-gather: no arithmetic)")
    assert descriptions["both"].endswith(f"written by both and re-laid out by {name} (its readers do no arithmetic)")
    assert all(" by  " not in text and " by (" not in text for text in descriptions.values())


def test_an_instruction_without_a_name_is_named_by_its_opcode():
    """XLA names every instruction it prints; one without a name (HLO written by hand) is called by its opcode, never
    by an empty name."""
    from jaxcost.comparison import _named

    assert _named("", "copy") == "an unnamed copy"
    assert _named("copy.3", "copy") == "copy.3"
