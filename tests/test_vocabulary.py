"""The compiler's whole vocabulary: every XLA opcode has a rule or is named unknown, each rule reproduces XLA's
figures on the CPU, sub-byte types are packed as XLA packs them, and random programs composed from jnp/lax
operations have XLA's three totals reproduced with nothing silently zero."""

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax import lax

import jaxcost as jc
from jaxcost.hlo import opcodes
from jaxcost.hlo.rules import registered_opcodes
from jaxcost.hlo.text import parse_shape
from jaxcost.reports.layer import comparison_dict

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU

CLASSES = {"free": opcodes.FREE, "elementwise": opcodes.ELEMENTWISE, "rule": registered_opcodes(),
           "default": opcodes.DEFAULT, "unknown": opcodes.UNKNOWN}
KEYS = ("flops", "transcendentals", "bytes_accessed")


def runs_every_example(examples: int):
    """A hypothesis test that fails unless its body ran ``examples`` times, counted as it runs and checked once
    hypothesis is done: a lowered setting or profile, or a strategy that runs out of distinct examples, would
    otherwise pass in silence with fewer. Put it above ``@settings`` and ``@given``; each test checks itself, so
    it holds whatever the order and the ``-k`` selection."""
    def decorate(test):
        inner, calls = test.hypothesis.inner_test, []

        def counted(*args, **kwargs):
            calls.append(None)
            return inner(*args, **kwargs)

        test.hypothesis.inner_test = counted  # hypothesis's documented hook for wrapping the body

        @functools.wraps(test)
        def checked(*args, **kwargs):
            calls.clear()
            test(*args, **kwargs)
            assert len(calls) == examples, f"{test.__name__} ran {len(calls)} examples, not {examples}"

        return checked
    return decorate


def test_a_random_test_that_runs_fewer_examples_than_it_should_fails():
    @runs_every_example(6)
    @settings(max_examples=5, deadline=None, derandomize=True, database=None)
    @given(st.integers())
    def five(number):
        pass

    with pytest.raises(AssertionError, match="^five ran 5 examples, not 6\n"):
        five()
    runs_every_example(5)(settings(max_examples=5, derandomize=True, database=None)(given(st.integers())(
        lambda number: None)))()


def test_every_xla_opcode_has_a_rule_or_is_named_unknown():
    for name in opcodes.ALL_OPCODES:
        homes = [label for label, names in CLASSES.items() if name in names]
        assert len(homes) == 1, (name, homes)


def test_no_rule_for_a_name_xla_does_not_print():
    assert set().union(*CLASSES.values()) <= set(opcodes.ALL_OPCODES)


def _reproduced(function, *args):
    compiler = jc.compiled(function, *args)
    for key in KEYS:
        assert compiler.xla_reproduced(key), (key, compiler.xla, compiler.recount.xla_rule_total(key))
    xla = {"flops": compiler.xla_flops, "transcendentals": compiler.xla_transcendentals,
           "bytes_accessed": compiler.xla_bytes_accessed}
    recount = {"flops": compiler.flops, "transcendentals": compiler.transcendentals,
               "bytes_accessed": compiler.bytes_accessed}
    for key in KEYS:  # nothing silently zero
        assert not (xla[key] > 0 and recount[key] == 0 and not compiler.unknown), key
    return compiler


X = jnp.linspace(0.1, 0.9, 640, dtype=jnp.float32).reshape(10, 64)
INTS = jnp.arange(640, dtype=jnp.int32).reshape(10, 64)


@pytest.mark.parametrize(("function", "argument", "transcendentals"), [
    (jnp.sin, X, 640), (jnp.cos, X, 640), (jnp.tan, X, 640), (jnp.exp, X, 640), (jnp.log1p, X, 640),
    (lambda a: lax.fori_loop(0, 14, lambda i, z: jnp.cos(z), a), X, 14 * 640)])
def test_transcendentals_as_hlo_spells_them(function, argument, transcendentals):
    assert _reproduced(function, argument).transcendentals == transcendentals


def test_count_leading_zeros_is_one_flop_per_element():
    assert _reproduced(lax.clz, INTS).flops == 640


@pytest.mark.parametrize(("function", "argument", "flops"), [
    (jnp.fft.fft, jnp.ones((64, 128), jnp.complex64), 2 * 4 * 7 * 64 * 128),
    (jnp.fft.rfft, jnp.ones((64, 128), jnp.float32), 2 * 4 * 7 * 64 * 128),
    (jnp.fft.irfft, jnp.ones((64, 65), jnp.complex64), 2 * 4 * 7 * 64 * 65),
    (jnp.fft.fft2, jnp.ones((16, 32, 64), jnp.complex64), 2 * 4 * (5 * 6) * 16 * 32 * 64)])
def test_fft(function, argument, flops):
    assert _reproduced(function, argument).flops == flops


def test_sorts_of_several_operands_write_every_operand():
    keys_and_values = _reproduced(lambda a, b: lax.sort((a, b), num_keys=1), X, X)
    assert keys_and_values.bytes_accessed == 4 * X.size * 4  # two operands read, two results written
    _reproduced(jnp.argsort, X[0])


@pytest.mark.parametrize(("dtype", "bits"), [(jnp.int4, 4), (jnp.uint4, 4), (jnp.int2, 2), (jnp.uint2, 2)])
def test_sub_byte_types_are_packed(dtype, bits):
    compiler = _reproduced(lambda a: a * a, jnp.ones((7, 33), dtype))
    assert compiler.bytes_accessed == 2 * -(-7 * 33 * bits // 8)


def test_a_packed_layout_is_read():
    assert parse_shape("s4[64,33]{1,0:E(4)}").bytes == 64 * 33 // 2
    assert parse_shape("s4[3]{0}").bytes == 3  # no element size in the layout: one byte each, as XLA sizes it
    assert parse_shape("f8e4m3fn[10]{0}").bytes == 10


def test_an_opcode_without_a_rule_is_named():
    text = """HloModule m
ENTRY %main (a: f32[8,8]) -> f32[8,8] {
  %a = f32[8,8]{1,0} parameter(0)
  ROOT %chol = f32[8,8]{1,0} cholesky(%a), lower=true
}
"""
    program = jc.recount(text)
    assert program.unknown == ["chol (cholesky: no rule; its bytes by XLA's default, its flops not counted)"]
    assert program.bytes_accessed == 2 * 8 * 8 * 4


UNARY = [jnp.sin, jnp.cos, jnp.tanh, jnp.exp, jnp.negative, jnp.abs,
         jnp.floor, jnp.sign, lambda a: jnp.sqrt(jnp.abs(a)), lambda a: jnp.log1p(jnp.abs(a)), jax.nn.sigmoid,
         jax.nn.relu, lambda a: a * 2.0 + 1.0]
BINARY = [jnp.add, jnp.multiply, jnp.subtract, jnp.maximum, lambda a, b: a / (jnp.abs(b) + 1.0)]
SHAPED = [
    lambda a: a.sum(axis=-1, keepdims=True) + a,
    lambda a: a.max(axis=0) + a,
    lambda a: jnp.cumsum(a, axis=-1),
    lambda a: jnp.sort(a, axis=-1),
    lambda a: a @ jnp.swapaxes(a, -1, -2) @ a,
    lambda a: jnp.take(a, jnp.array([0, 2, 1]) % a.shape[-1], axis=-1).sum() + a,
    lambda a: a.at[..., 0].add(1.0),
    lambda a: lax.fori_loop(0, 3, lambda i, z: jnp.sin(z) + z, a),
    lambda a: lax.cond(a.sum() > 0, jnp.exp, jnp.negative, a),
    lambda a: jnp.where(a > 0, a, 0.1 * a),
    lambda a: jnp.flip(a, axis=-1) * a,
    lambda a: jnp.pad(a, ((0, 0),) * (a.ndim - 1) + ((1, 1),))[..., 1:-1],
]
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]


@st.composite
def programs(draw):
    steps = draw(st.lists(st.one_of(
        st.tuples(st.just("unary"), st.integers(0, len(UNARY) - 1)),
        st.tuples(st.just("binary"), st.integers(0, len(BINARY) - 1)),
        st.tuples(st.just("shaped"), st.integers(0, len(SHAPED) - 1))), min_size=1, max_size=4))
    shape = tuple(draw(st.lists(st.integers(2, 9), min_size=2, max_size=3)))
    return steps, shape, draw(st.sampled_from(DTYPES))


def _build(steps):
    def program(a):
        for kind, index in steps:
            if kind == "unary":
                a = UNARY[index](a)
            elif kind == "binary":
                a = BINARY[index](a, jnp.flip(a, axis=0))
            else:
                a = SHAPED[index](a)
        return a
    return program


@runs_every_example(300)
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_programs_are_reproduced_with_nothing_silently_zero(program):
    steps, shape, dtype = program
    _reproduced(_build(steps), jax.ShapeDtypeStruct(shape, dtype))


def test_a_data_dependent_conditional_is_an_upper_bound():
    def alternate(a):
        step = lambda carry, k: (lax.cond(k % 2 == 0, lambda z: z @ z, lambda z: z + 1.0, carry), None)  # noqa: E731
        return lax.scan(step, a, jnp.arange(6))[0]

    comparison = jc.compare(alternate, jnp.ones((32, 32)))
    compiler = comparison.compiler
    assert all(compiler.xla_reproduced(key) for key in KEYS)
    assert comparison.verdict == "upper bound" and comparison.flops_remainder == 0
    assert len(compiler.bounds) == 1 and "the costliest is counted each time" in compiler.bounds[0]
    assert "upper bound" in str(comparison)
    assert comparison_dict(comparison)["bounds"] == compiler.bounds


def test_a_loop_is_counted_by_its_trip_count_as_written_and_its_counter_is_a_loop_item():
    """fori_loop(0, 10) as JAX writes it compares its counter with 10: the analytic count is ten products; the
    compiled loop adds the counter's increments, one a trip, and its comparisons, one more than the trips."""
    comparison = jc.compare(lambda a, w: lax.fori_loop(0, 10, lambda i, z: z @ w, a), jnp.ones((32, 32)),
                            jnp.ones((32, 32)))
    assert comparison.analytic_flops == 10 * 2 * 32 ** 3
    program_items = [delta for delta in comparison.deltas if delta.stage == "program" and delta.flops]
    assert sorted((delta.kind, delta.flops) for delta in program_items) == [("loop", 10), ("loop", 11)]
    assert comparison.verdict == "explained"


def test_an_integer_training_step_says_no_gradient_was_taken():
    spec = jc.standard_conv((1, 8, 8, 4), 8, 3, dtype="int8")
    comparison = jc.compare(spec, mode="train")
    (item,) = [delta for delta in comparison.deltas if delta.kind == "no gradient"]
    forward = jc.analytic(spec)
    assert item.flops == -(2 * 2 * forward.macs + jc.analytic(spec, "train").grad_bias_adds)
    assert comparison.flops_remainder == 0 and not any(d.kind == "rewrite" and d.flops for d in comparison.deltas)
    assert comparison.bytes_remainder == 0 and comparison.verdict == "explained"


def test_xlas_minus_n_is_labelled_with_its_n_library_calls():
    compiler = jc.compiled(lambda a: jnp.linalg.inv(a) + jnp.linalg.det(a), jnp.eye(8) + 0.1)
    calls = len(compiler.recount.xla_unknown)
    assert calls > 1
    negative = [label for label in compiler.xla_unknown if label.startswith("XLA '")]
    assert negative and all(f"(-1 for each of {calls} library calls)" in label for label in negative)


ALL_TO_ALL = """
from functools import partial
import jax, jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P
try:
    from jax import shard_map
except ImportError:
    from jax.experimental.shard_map import shard_map
import jaxcost as jc

@partial(shard_map, mesh=Mesh(jax.devices(), ("x",)), in_specs=P("x"), out_specs=P("x"))
def exchange(a):
    return jax.lax.all_to_all(a, "x", 0, 0, tiled=True)

compiler = jc.compiled(jax.jit(exchange), jax.ShapeDtypeStruct((16, 8), jnp.float32))
(op,) = [op for op in compiler.recount.ops if op.opcode == "all-to-all"]
print(op.instruction.shape.is_tuple, op.cost.bytes_written,
      all(compiler.xla_reproduced(key) for key in ("flops", "bytes_accessed", "transcendentals")))

@partial(shard_map, mesh=Mesh(jax.devices(), ("x",)), in_specs=P("x"), out_specs=P())
def total(a):
    return jax.lax.psum(a, "x")

compiler = jc.compiled(jax.jit(total), jax.ShapeDtypeStruct((16, 8), jnp.float32))
opcodes = {i.opcode for c in compiler.recount.module.computations.values() for i in c.instructions}
print("all-reduce" in opcodes, all(compiler.xla_reproduced(key) for key in ("flops", "bytes_accessed",
                                                                             "transcendentals")))
"""


def test_an_all_to_all_writes_the_leaves_of_its_tuple_and_an_all_reduce_is_reproduced():
    """Four simulated devices in a fresh process: each sends and receives four f32[1,8] pieces; then a psum."""
    environment = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    result = subprocess.run([sys.executable, "-c", ALL_TO_ALL], capture_output=True, text=True, timeout=300,
                            env=environment, check=True)
    assert result.stdout.split() == ["True", str(4 * 8 * 4), "True", "True", "True"]


INTEGER = [jnp.add, jnp.multiply, jnp.maximum, jnp.bitwise_xor, jnp.bitwise_and,
           lambda a, b: lax.shift_left(a, jnp.ones_like(b)), lambda a, b: a + lax.clz(b),
           lambda a, b: a + lax.population_count(b), lambda a, b: a.sum(axis=-1, keepdims=True) + b,
           lambda a, b: jnp.sort(a, axis=-1) - b]
COMPLEX = [jnp.add, jnp.multiply, lambda a, b: jnp.exp(a) + b, lambda a, b: jnp.abs(a) * b,
           lambda a, b: jnp.conj(a) * b, lambda a, b: jnp.fft.fft(a, axis=-1) + b, lambda a, b: a @ b.T]
SMALL = [jnp.add, jnp.multiply, jnp.maximum]
FAMILIES = {"integer": (INTEGER, [jnp.int8, jnp.int32, jnp.uint8]),
            "int4": (SMALL + [jnp.bitwise_xor], [jnp.int4, jnp.uint4]),  # JAX reduces and sorts no 4-bit type
            "complex": (COMPLEX, [jnp.complex64]),
            "fp8": (SMALL, [jnp.float8_e4m3fn, jnp.float8_e5m2])}


@runs_every_example(120)
@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FAMILIES)), st.lists(st.integers(0, 9), min_size=1, max_size=3),
       st.integers(0, 3), st.integers(2, 8), st.integers(2, 8))
def test_random_integer_complex_and_fp8_programs(family, choices, dtype_index, rows, columns):
    operations, dtypes = FAMILIES[family]
    dtype = dtypes[dtype_index % len(dtypes)]
    steps = [operations[choice % len(operations)] for choice in choices]
    if family == "complex":  # a @ b.T needs a square operand
        columns = rows

    def program(a):
        for step in steps:
            a = step(a, jnp.flip(a, axis=0)).astype(a.dtype)
        return a

    _reproduced(program, jax.ShapeDtypeStruct((rows, columns), dtype))


INDICES = jnp.array([3, 1, 4])
#: A program per registered rule, compiled here on the CPU, in whose optimized HLO the opcode appears.
RULE_PROGRAMS = {
    "tuple": (lambda a: (a + 1.0, a * 2.0), X),
    "slice": (lambda a: a[1:5] * 2.0, X),
    "dynamic-slice": (lambda a, i: lax.dynamic_slice(a, (i, 0), (2, 64)), X, 3),
    "dynamic-update-slice": (lambda a, b, i: lax.dynamic_update_slice(a, b, (i, 0)), X, X[:2], 3),
    "gather": (lambda a, i: a[i], X, INDICES),
    "transpose": (lambda a: jnp.transpose(a.reshape(10, 8, 8), (2, 0, 1)) + 1.0, X),
    "dot": (lambda a: a @ a.T, X),
    "convolution": (lambda a, w: lax.conv_general_dilated(a, w, (1, 1), "SAME", dimension_numbers=(
        "NHWC", "HWIO", "NHWC")), jnp.ones((1, 8, 8, 4)), jnp.ones((3, 3, 4, 8))),
    "fusion": (lambda a: jnp.sin(a) * 2.0 + 1.0, X),
    "while": (lambda a: lax.fori_loop(0, 3, lambda i, z: z * 2.0, a), X),
    "call": (lambda a: lax.map(jnp.sin, a), X),
    "conditional": (lambda a: lax.cond(a[0, 0] > 0, jnp.sin, jnp.cos, a), X),
    "reduce": (lambda a: a.sum(axis=0), X),
    "reduce-window": (lambda a: lax.reduce_window(a, -jnp.inf, lax.max, (2, 2), (1, 1), "VALID"), X),
    "scatter": (lambda a, i: a.at[i].add(1.0), X, INDICES),
    "sort": (jnp.sort, X),
    "custom-call": (jnp.linalg.inv, jnp.eye(8) + 0.1),
    "fft": (jnp.fft.fft, jnp.ones((8, 16), jnp.complex64)),
}
#: Checked in a process with simulated devices (test above).
MULTI_DEVICE_RULES = {"all-to-all", "all-reduce"}
#: Rules the CPU backend never leaves in a program (it expands or rewrites these ops, or runs collectives
#: synchronously); they follow HloCostAnalysis's handlers and the GPU programs' fixtures exercise the rest.
NOT_EMITTED_ON_THE_CPU = {"all-reduce-start", "async-start", "map", "rng", "rng-bit-generator", "select-and-scatter",
                          "infeed", "outfeed"}  # the last two: checked against XLA's own tests (test_xla_oracle.py)
#: Rules for what XLA:TPU emits (cross-program prefetch, async slices and permutes with sync flags): checked on
#: TPU programs (tests/test_tpu.py).
TPU_RULES = {"copy-start", "collective-permute-start", "slice-start", "call-start"}


def test_every_rule_is_checked_against_xla_or_said_why_not():
    assert set(RULE_PROGRAMS) | MULTI_DEVICE_RULES | NOT_EMITTED_ON_THE_CPU | TPU_RULES == registered_opcodes()


@pytest.mark.parametrize("opcode", sorted(RULE_PROGRAMS))
def test_each_rule_reproduces_xla(opcode):
    function, *args = RULE_PROGRAMS[opcode]
    compiler = _reproduced(function, *args)
    present = {i.opcode for computation in compiler.recount.module.computations.values()
               for i in computation.instructions}
    assert opcode in present
