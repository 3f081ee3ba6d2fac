"""cuDNN and cuBLAS custom calls, in the form XLA's GPU backend emits them, recounted from their attributes.

The modules are written here in XLA's own HLO syntax (operand order, result tuples with a
workspace, ``dim_labels`` that describe the forward convolution for the backward calls), so the
recount is checked exactly against the analytic count on the CPU.
"""

import json

import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc


def module(*lines: str) -> str:
    body = "\n".join("  " + line for line in lines)
    return f"HloModule library_calls\n\nENTRY %main {{\n{body}\n}}\n"


def shape(dims) -> str:
    return "f32[" + ",".join(map(str, dims)) + "]"


def window(spec: jc.Conv) -> str:
    size = "x".join(map(str, spec.kernel_size))
    parts = [f"size={size}"]
    if any(s != 1 for s in spec.strides):
        parts.append("stride=" + "x".join(map(str, spec.strides)))
    parts.append("pad=" + "x".join(f"{lo}_{hi}" for lo, hi in spec.pads))
    if any(d != 1 for d in spec.kernel_dilation):
        parts.append("rhs_dilate=" + "x".join(map(str, spec.kernel_dilation)))
    return "window={" + " ".join(parts) + "}"


def cudnn_call(spec: jc.Conv, kind: str, bias_relu: bool = False) -> str:
    """One cuDNN call for a 2-D spec, kernel laid out OHWI as XLA's GPU backend chooses."""
    groups = spec.feature_group_count
    kernel = (spec.features, *spec.kernel_size, spec.in_features // groups)
    x, w, y = shape(spec.input_shape), shape(kernel), shape(spec.output_shape)
    operands, result, target = {
        "forward": ([("x", x), ("w", w)], y, "__cudnn$convForward"),
        "input": ([("dy", y), ("w", w)], x, "__cudnn$convBackwardInput"),
        "filter": ([("x", x), ("dy", y)], w, "__cudnn$convBackwardFilter"),
    }[kind]
    config = ""
    if bias_relu:
        operands.append(("b", shape((spec.features,))))
        target = "__cudnn$convBiasActivationForward"
        config = ', backend_config={"cudnn_conv_backend_config":{"activation_mode":"kRelu",' \
                 '"conv_result_scale":1,"side_input_scale":0}}'
    groups_attribute = f", feature_group_count={groups}" if groups > 1 else ""
    params = [f"%{name} = {dims} parameter({i})" for i, (name, dims) in enumerate(operands)]
    names = ", ".join(f"%{name}" for name, _ in operands)
    return module(
        *params,
        f"%call = ({result}, u8[0]) custom-call({names}), {window(spec)}, dim_labels=b01f_o01i->b01f"
        f'{groups_attribute}, custom_call_target="{target}"{config}',
        f"ROOT %out = {result} get-tuple-element(%call), index=0")


SPECS = [
    jc.standard_conv((1, 56, 56, 64), 128, 3),
    jc.standard_conv((2, 33, 29, 24), 40, 3, strides=2, padding="VALID"),
    jc.Conv((1, 30, 30, 16), 32, 3, kernel_dilation=2),
    jc.group_conv((1, 56, 56, 64), 128, 4, 3, strides=2),
    jc.depthwise_conv((8, 112, 112, 32), 3, strides=2),
    jc.depthwise_conv((1, 14, 14, 8), 5, depth_multiplier=2, padding=((2, 1), (0, 3))),
    jc.standard_conv((8, 28, 28, 128), 512, 1),
]


@pytest.mark.parametrize("spec", SPECS, ids=[s.describe() for s in SPECS])
@pytest.mark.parametrize("kind", ["forward", "input", "filter"])
def test_cudnn_convolutions_recount_to_the_analytic_count(spec, kind):
    program = jc.recount(cudnn_call(spec, kind))
    assert program.flops == 2 * jc.analytic(spec).macs
    assert program.unknown == []
    assert program.xla_rule_total("flops") == -1  # what XLA itself says
    assert program.as_xla_sums("flops") == -1.0


@pytest.mark.parametrize("spec", SPECS[:4], ids=[s.describe() for s in SPECS[:4]])
def test_cudnn_bias_relu_fusion_counts_conv_bias_and_activation(spec):
    program = jc.recount(cudnn_call(spec, "forward", bias_relu=True))
    cost = jc.analytic(spec)
    outputs = cost.bias_adds
    assert program.flops == cost.flops + outputs  # the ReLU: one per output element
    (call,) = [op for op in program.ops if op.opcode == "custom-call"]
    assert call.cost.flops_by_opcode["maximum"] == outputs
    assert call.cost.bytes_accessed == cost.bytes_accessed  # input, kernel, bias read; output written


def gemm_call(rows: int, depth: int, features: int, epilogue: str = "DEFAULT", target="__cublas$lt$matmul",
              batch: int = 0) -> str:
    config = {"gemm_backend_config": {
        "alpha_real": 1, "alpha_imag": 0, "beta": 0, "epilogue": epilogue,
        "dot_dimension_numbers": {
            "lhs_contracting_dimensions": ["2" if batch else "1"],
            "rhs_contracting_dimensions": ["1" if batch else "0"],
            "lhs_batch_dimensions": ["0"] if batch else [], "rhs_batch_dimensions": ["0"] if batch else []}}}
    lead = (batch,) if batch else ()
    x, w, y = shape((*lead, rows, depth)), shape((*lead, depth, features)), shape((*lead, rows, features))
    operands = [f"%x = {x} parameter(0)", f"%w = {w} parameter(1)"]
    names = "%x, %w"
    if "BIAS" in epilogue:
        operands.append(f"%b = {shape((features,))} parameter(2)")
        names += ", %b"
    return module(
        *operands,
        f"%gemm = ({y}, s8[4194304]) custom-call({names}), custom_call_target=\"{target}\", "
        f"backend_config={json.dumps(config)}",
        f"ROOT %out = {y} get-tuple-element(%gemm), index=0")


@pytest.mark.parametrize(("epilogue", "extra"), [("DEFAULT", 0), ("BIAS", 1), ("BIAS_RELU", 2), ("RELU", 1)])
def test_cublas_gemm_recounts_from_its_dimension_numbers(epilogue, extra):
    program = jc.recount(gemm_call(8, 2048, 1000, epilogue))
    assert program.flops == 2 * 8 * 2048 * 1000 + extra * 8 * 1000
    assert program.xla_rule_total("flops") == -1
    dense = jc.dense((8, 2048), 1000, use_bias="BIAS" in epilogue)
    if epilogue in ("DEFAULT", "BIAS"):
        assert program.flops == jc.analytic(dense).flops


def test_batched_cublas_gemm():
    program = jc.recount(gemm_call(64, 32, 16, target="__cublas$gemm", batch=12))
    assert program.flops == 2 * 12 * 64 * 32 * 16


def test_unknown_library_call_is_listed_by_name():
    text = cudnn_call(SPECS[0], "forward").replace("__cudnn$convForward", "__cudnn$fmhaSoftmax")
    program = jc.recount(text)
    assert program.unknown == ["call (custom-call __cudnn$fmhaSoftmax)"]
    assert program.flops == 0 and program.bytes_accessed == 0


def _top_k(x):
    return jax.lax.top_k(x, 5)[0]


@pytest.mark.cpu
def test_top_k_on_the_cpu_is_minus_one_by_xlas_rules_and_recounted():
    """XLA:CPU reports -1 for TopK (only XLA:TPU costs it): XLA's figures reproduced, the -1 an ``xla`` item, the
    true count the n·k compares, and the tuple the call writes beyond the result it returns named by the call."""
    comparison = jc.compare(_top_k, jax.ShapeDtypeStruct((32, 1000), jnp.float32))
    compiler = comparison.compiler
    assert compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")
    assert compiler.recount.xla_rule_total("flops") == -1 and compiler.flops == 32 * 1000 * 5
    assert "custom-call (custom-call TopK)" in compiler.xla_unknown and compiler.unknown == []
    (library,) = [d for d in comparison.deltas if d.kind == "library"]
    assert "TopK" in library.description and library.flops == 160_000
    (minus_one,) = [d for d in comparison.deltas if d.stage == "xla"]
    assert minus_one.kind == "unknown" and minus_one.flops == -1 - 160_000
    (output,) = [d for d in comparison.deltas if d.kind == "unfused"]
    assert "custom-call writes 1,280 B" in output.description and " by  " not in str(comparison)
    assert comparison.verdict == "explained"


def test_which_custom_calls_xla_costs_depends_on_the_backend():
    """TopK is costed by XLA:TPU only: a program with TPU sizes or tiled layouts is a TPU's."""
    from jaxcost.hlo.library_calls import OTHER, TPU, backend_of, costed_by_xla
    from jaxcost.hlo.text import Sizes, parse_instruction

    line = '%t = (f32[8,5]{1,0}, s32[8,5]{1,0}) custom-call(%x), custom_call_target="TopK"'
    tpu_sizes = Sizes(pointer_bytes=4, table_align=32, untiled_scalar_bytes=4096)
    assert backend_of(parse_instruction(line)) == OTHER
    assert backend_of(parse_instruction(line, tpu_sizes)) == TPU
    assert backend_of(parse_instruction(line.replace("{1,0}", "{1,0:T(8,128)}"))) == TPU
    assert costed_by_xla(parse_instruction(line, tpu_sizes)) and not costed_by_xla(parse_instruction(line))
    cudnn = line.replace('"TopK"', '"__cudnn$convForward"')
    assert not costed_by_xla(parse_instruction(cudnn, tpu_sizes)) and not costed_by_xla(parse_instruction(cudnn))
