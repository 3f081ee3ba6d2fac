"""The op-by-op recount reproduces XLA's own totals, on stored programs and on live ones."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost.compiler import normalize_cost_analysis, normalize_memory_analysis
from jaxcost.hlo.text import parse_instruction, parse_shape

FIXTURES = Path(__file__).parent / "fixtures"
CPU_ENTRIES = json.loads((FIXTURES / "cpu_hlo_fixtures.json").read_text())["entries"]


@pytest.mark.parametrize("entry", CPU_ENTRIES, ids=[e["name"] for e in CPU_ENTRIES])
def test_recount_of_stored_cpu_programs_equals_xla(entry):
    program = jc.recount(entry["hlo_optimized"])
    xla = entry["compiled_cost_analysis"]
    assert program.as_xla_sums("flops") == xla.get("flops", 0.0)
    assert program.as_xla_sums("bytes_accessed") == xla.get("bytes accessed", 0.0)
    assert program.as_xla_sums("transcendentals") == xla.get("transcendentals", 0.0)
    assert not program.unknown


def test_exact_sum_differs_from_xla_only_by_its_float32_rounding():
    entry = next(e for e in CPU_ENTRIES if e["name"] == "dense_4096x4096x4096_bfloat16")
    program = jc.recount(entry["hlo_optimized"])
    exact = 2 * 4096**3 + 4096 * 4096 + 3 * 4096 * 4096 + 4096 + 2 * 4096 * 4096  # dot, bias add, converts
    assert program.flops == exact == 137_539_620_864
    assert entry["compiled_cost_analysis"]["flops"] == 137_539_616_768  # float32 nearest


def test_stored_conv_flops_are_the_exact_taps_formula():
    entry = next(e for e in CPU_ENTRIES if e["name"] == "conv_dilated2_f32")
    spec = jc.Conv((1, 30, 30, 16), 32, 3, kernel_dilation=2, use_bias=False)
    assert jc.recount(entry["hlo_optimized"]).flops == jc.analytic(spec).flops


@pytest.mark.parametrize(("name", "trips"), [("fori10_matmul512", 10), ("scan7_matmul512", 7)])
def test_stored_loops_multiply_their_body_where_xla_counts_it_once(name, trips):
    entry = next(e for e in CPU_ENTRIES if e["name"] == name)
    program = jc.recount(entry["hlo_optimized"])
    matmul = 2 * 512**3
    assert program.xla_rule_total("flops") == matmul + 2  # one trip: the matmul, the counter add and compare
    assert program.flops == trips * (matmul + 1) + (trips + 1)  # body n times, condition n + 1 times
    assert program.unknown == []


def loop_program(trips_outer: int, trips_inner: int):
    def inner(c, a):
        return jax.lax.fori_loop(0, trips_inner, lambda j, d: d @ a, c)

    return lambda a: jax.lax.fori_loop(0, trips_outer, lambda i, c: inner(c, a), a)


def body_flops(result) -> int:
    """Flops of the matmuls alone: the recount's dot flops."""
    return sum(op.cost.flops_by_opcode["dot"] for op in result.recount.ops)


@pytest.mark.parametrize(("function", "trips"), [
    (lambda a: jax.lax.fori_loop(0, 10, lambda i, c: c @ a, a), 10),
    (lambda a: jax.lax.scan(lambda c, _: (c @ a, None), a, None, length=7)[0], 7),
    (loop_program(3, 5), 15),
])
def test_live_loops_report_their_trip_counts(function, trips):
    result = jc.compiled(function, jax.ShapeDtypeStruct((128, 128), jnp.float32))
    assert body_flops(result) == trips * 2 * 128**3
    assert result.xla_reproduced("flops") and result.xla_reproduced("bytes_accessed")
    assert result.xla_flops < result.flops  # XLA counts every loop body once
    assert result.unknown == []


def test_loop_of_unknown_trip_count_is_reported_as_such():
    def until_large(a):
        return jax.lax.while_loop(lambda c: c[0, 0] < 1e6, lambda c: c @ a, a)

    result = jc.compiled(until_large, jax.ShapeDtypeStruct((64, 64), jnp.float32))
    assert len(result.unknown) == 1 and "unknown trip count" in result.unknown[0]
    assert body_flops(result) == 2 * 64**3  # one iteration, labelled as such


def test_conditional_reports_each_branch():
    def branchy(x):
        return jax.lax.cond(x[0, 0] > 0, lambda y: y @ y, lambda y: y + 1.0, x)

    result = jc.compiled(branchy, jax.ShapeDtypeStruct((32, 32), jnp.float32))
    assert result.xla_reproduced("flops")
    (bound,) = result.bounds  # which branch runs depends on data: the count is an upper bound
    assert f"{2 * 32**3:,} flops" in bound and f"{32 * 32:,} flops" in bound and "upper bound" in bound


def test_parse_shapes():
    assert parse_shape("f32[1,56,56,64]{3,2,1,0}").bytes == 56 * 56 * 64 * 4
    assert parse_shape("bf16[]").bytes == 2
    assert parse_shape("(f32[4]{0}, u8[0]{0})").bytes == 16  # XLA sizes a tuple as its pointer table
    assert parse_shape("f32[8,128]{1,0:T(8,128)}").minor_to_major == (1, 0)


def test_parse_instruction_with_nested_attributes():
    line = ('%cudnn-conv.1 = (f32[1,56,56,128]{3,2,1,0}, u8[0]{0}) custom-call(%x.1, %w), window={size=3x3 '
            'pad=1_1x1_1}, dim_labels=b01f_o01i->b01f, custom_call_target="__cudnn$convForward", '
            'metadata={op_name="jit(f)/Conv/conv_general_dilated"}, backend_config={"a":{"b":"c,d"}}')
    instruction = parse_instruction(line)
    assert instruction.opcode == "custom-call"
    assert instruction.operands == ["x.1", "w"]
    assert instruction.attribute("dim_labels") == "b01f_o01i->b01f"
    assert instruction.op_name == "jit(f)/Conv/conv_general_dilated"
    assert instruction.shape.is_tuple


UNKNOWN_CALL = """HloModule m

ENTRY %main (x: f32[4,4]) -> f32[4,4] {
  %x = f32[4,4]{1,0} parameter(0)
  %m = f32[4,4]{1,0} custom-call(%x), custom_call_target="my$kernel"
  ROOT %a = f32[4,4]{1,0} add(%m, %x)
}
"""


def test_unknown_custom_call_is_named_never_counted_as_minus_one():
    program = jc.recount(UNKNOWN_CALL)
    assert program.unknown == ["m (custom-call my$kernel)"]
    assert program.flops == 16  # the add; the custom call adds nothing, not -1
    assert program.as_xla_sums("flops") == 15  # what XLA would report: the add plus its -1


@pytest.mark.parametrize(("value", "expected"), [
    (None, {}), ([], {}), ([{"flops": 3.0}], {"flops": 3.0}), ({"flops": 2, "bytes accessed": 5.0},
                                                               {"flops": 2.0, "bytes accessed": 5.0}),
])
def test_normalize_cost_analysis(value, expected):
    assert normalize_cost_analysis(value) == expected


def test_normalize_memory_analysis():
    class Stats:
        argument_size_in_bytes = 10
        output_size_in_bytes = 4
        name = "x"

    assert normalize_memory_analysis(Stats()) == {"argument_size_in_bytes": 10, "output_size_in_bytes": 4}
    assert normalize_memory_analysis(None) == {}


def test_compiled_function_reports_both_views():
    def gelu_plus_exp(x):
        return jax.nn.gelu(x) + jnp.exp(x)

    result = jc.compiled(gelu_plus_exp, jax.ShapeDtypeStruct((64, 32), jnp.float32))
    assert result.xla_known
    assert result.xla_reproduced("flops") and result.xla_reproduced("bytes_accessed")
    assert result.xla_reproduced("transcendentals")
    assert result.transcendentals == result.xla_transcendentals > 0
    assert result.memory["argument_size_in_bytes"] == 64 * 32 * 4


def test_program_without_arithmetic_has_zero_flops():
    result = jc.compiled(lambda x: x.T, jax.ShapeDtypeStruct((8, 4), jnp.float32))
    assert result.flops == 0
    assert result.xla_flops == 0.0  # XLA leaves the key out; absent means zero
    assert result.xla_reproduced("bytes_accessed")


@pytest.mark.parametrize("make", [
    lambda: (lambda a: jax.lax.fori_loop(0, 10, lambda i, c: c @ a, a), (512, 512)),
    lambda: (lambda x: jnp.sort(x, axis=-1), (16, 33)),
    lambda: (lambda x: jnp.cumsum(x, axis=0), (37, 5)),
    lambda: (lambda x: jax.nn.softmax(x) @ x.T, (24, 24)),
    lambda: (lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"),
             (2, 9, 9, 4)),
    lambda: (lambda x: x[::2, 1:5] * 2.0, (10, 10)),
    lambda: (lambda x: jnp.where(x > 0, x, 0.1 * x).sum(), (33, 17)),
])
def test_recount_of_live_programs_equals_xla(make):
    function, shape = make()
    result = jc.compiled(function, jax.ShapeDtypeStruct(shape, jnp.float32))
    for key in ("flops", "transcendentals", "bytes_accessed"):
        assert result.xla_reproduced(key), (key, result.recount.as_xla_sums(key), result.xla)


@pytest.mark.parametrize("spec", [jc.standard_conv((1, 16, 16, 8), 16, 3, dtype="bfloat16"),
                                  jc.depthwise_conv((2, 9, 9, 4), 3, strides=2), jc.dense((1, 64), 10)])
@pytest.mark.parametrize("mode", ["forward", "train"])
def test_counting_compile_options_leave_the_optimized_program_unchanged(spec, mode):
    from jaxcost.compiler import counting_options
    from jaxcost.modules import abstract_arguments, forward_function, training_arguments, training_function

    function, args = ((forward_function(spec), abstract_arguments(spec)) if mode == "forward"
                      else (training_function(spec), training_arguments(spec)))
    default = jax.jit(function).lower(*args).compile().as_text()
    counting = jax.jit(function).lower(*args).compile(compiler_options=counting_options()).as_text()
    assert counting == default


def test_convolution_spatial_dimensions_follow_their_digits_not_their_order():
    """Window dimension d is spatial dimension d, wherever its digit sits in the labels (XLA:TPU writes weight
    gradients as ``1fb0_1i0o->b0f1``): 2 x 3 features x 7 outputs x 2 images x 13 x 6 valid taps."""
    from jaxcost.hlo.convolution import convolution_flops

    line = ("%c = f32[2,5,7,3]{3,2,1,0} convolution(f32[4,3,2,5]{3,2,1,0} %a, f32[2,3,3,7]{3,2,1,0} %b), "
            "window={size=3x2 pad=1_1x0_0}, dim_labels=1fb0_1i0o->b0f1")
    instruction = parse_instruction(line)
    lhs, rhs = parse_shape("f32[4,3,2,5]{3,2,1,0}"), parse_shape("f32[2,3,3,7]{3,2,1,0}")
    assert convolution_flops(instruction, lhs, rhs) == 2 * 3 * 7 * 2 * 13 * 6


SHORT_TUPLE_ELEMENTS = """HloModule m

ENTRY e {
  a = f32[4,8] parameter(0)
  b = f32[8,16] parameter(1)
  c = (f32[4,16], s8[1024]) custom-call(a, b), custom_call_target="__cublas$gemm"
  d = (f32[4,16], (s32[2], f32[3])) parameter(2)
  ROOT r = f32[4,16] add(%c#0, %d#0)
  s = f32[3] exponential(%d#1#1)
}
"""


def test_a_tuple_element_written_after_a_hash_is_a_get_tuple_element():
    """XLA's dump files write ``%c#0`` where the program holds ``get-tuple-element(c), index=0``: the same program."""
    from jaxcost.hlo.program import recount
    from jaxcost.hlo.text import parse_module

    explicit = (SHORT_TUPLE_ELEMENTS.replace("add(%c#0, %d#0)", "add(c0, d0)")
                .replace("exponential(%d#1#1)", "exponential(d11)")
                .replace("  ROOT r", "  c0 = f32[4,16] get-tuple-element(c), index=0\n"
                                     "  d0 = f32[4,16] get-tuple-element(d), index=0\n  ROOT r")
                .replace("  s = f32[3]", "  d1 = (s32[2], f32[3]) get-tuple-element(d), index=1\n"
                                         "  d11 = f32[3] get-tuple-element(d1), index=1\n  s = f32[3]"))
    short, written = (recount(text, 8) for text in (SHORT_TUPLE_ELEMENTS, explicit))
    for key in ("flops", "transcendentals", "bytes_accessed"):
        assert short.xla_rule_total(key) == written.xla_rule_total(key)
    entry = parse_module(SHORT_TUPLE_ELEMENTS).entry.by_name()
    assert entry["c#0"].opcode == "get-tuple-element" and entry["c#0"].shape.dims == (4, 16)
    assert entry["d#1#1"].shape.dims == (3,) and [user.name for user in entry["d#1"].users] == ["d#1#1"]
    assert [user.name for user in entry["c"].users] == ["c#0"]
    with pytest.raises(ValueError, match="c#2: c has 2 tuple elements"):
        parse_module(SHORT_TUPLE_ELEMENTS.replace("%c#0", "%c#2"))
