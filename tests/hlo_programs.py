"""HLO programs that no rule of jaxcost was tuned on, for ``test_adversarial_hlo``: hand-written texts over XLA's
opcodes with odd shapes and element types (``HAND_WRITTEN``), and the programs jax emits for a seeded set of jnp
and lax functions, as written and as compiled (``jax_functions``).

Each hand-written text is a whole module; ``module`` builds one from the entry's lines and the computations it
calls. Shapes carry no layout unless the program is about one: XLA's parser gives every array the default layout.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass


def module(*lines: str, computations: str = "") -> str:
    """A module whose entry computation is ``lines`` (the last the root unless one says ROOT), after
    ``computations``."""
    body = "\n".join("  " + line for line in lines)
    return f"HloModule m\n\n{computations}\nENTRY e {{\n{body}\n}}\n"


def scalar_computation(name: str, opcode: str, dtype: str = "f32") -> str:
    """``name``: a binary scalar computation applying ``opcode`` (a reducer)."""
    return f"""{name} {{
  x = {dtype}[] parameter(0)
  y = {dtype}[] parameter(1)
  ROOT r = {dtype}[] {opcode}(x, y)
}}
"""


ADD = scalar_computation("add", "add")
MAX = scalar_computation("max", "maximum")
ADD_BF16 = scalar_computation("add_bf16", "add", "bf16")
MAX_U8 = scalar_computation("max_u8", "maximum", "u8")
ADD_S32 = scalar_computation("add_s32", "add", "s32")
ADD_C64 = scalar_computation("add_c64", "add", "c64")
GE = """ge {
  x = f32[] parameter(0)
  y = f32[] parameter(1)
  ROOT r = pred[] compare(x, y), direction=GE
}
"""
#: argmax's reducer: (value, index) pairs, the larger value (the smaller index on ties)
ARGMAX = """argmax {
  v0 = f32[] parameter(0)
  i0 = s32[] parameter(1)
  v1 = f32[] parameter(2)
  i1 = s32[] parameter(3)
  greater = pred[] compare(v0, v1), direction=GT
  equal = pred[] compare(v0, v1), direction=EQ
  lower = pred[] compare(i0, i1), direction=LT
  tie = pred[] and(equal, lower)
  keep = pred[] or(greater, tie)
  v = f32[] select(keep, v0, v1)
  i = s32[] select(keep, i0, i1)
  ROOT r = (f32[], s32[]) tuple(v, i)
}
"""
#: three operands reduced at once: a sum, a max and a count
SUM_MAX_COUNT = """sum_max_count {
  a0 = f32[] parameter(0)
  b0 = bf16[] parameter(1)
  c0 = s32[] parameter(2)
  a1 = f32[] parameter(3)
  b1 = bf16[] parameter(4)
  c1 = s32[] parameter(5)
  a = f32[] add(a0, a1)
  b = bf16[] maximum(b0, b1)
  c = s32[] add(c0, c1)
  ROOT r = (f32[], bf16[], s32[]) tuple(a, b, c)
}
"""
LESS = """less {
  x = f32[] parameter(0)
  y = f32[] parameter(1)
  ROOT r = pred[] compare(x, y), direction=LT
}
"""
#: a sort's comparator over three operands: by the first, the others carried along
LESS_OF_THREE = """less3 {
  x0 = f32[] parameter(0)
  y0 = f32[] parameter(1)
  x1 = s32[] parameter(2)
  y1 = s32[] parameter(3)
  x2 = bf16[] parameter(4)
  y2 = bf16[] parameter(5)
  ROOT r = pred[] compare(x0, y0), direction=LT
}
"""
#: a scatter that overwrites: the update replaces the target (no arithmetic)
ASSIGN = """assign {
  x = f32[] parameter(0)
  ROOT y = f32[] parameter(1)
}
"""
SIGMOID_F16 = """sigmoid_f16 {
  x = f16[] parameter(0)
  one = f16[] constant(1)
  neg = f16[] negate(x)
  exp = f16[] exponential(neg)
  den = f16[] add(one, exp)
  ROOT r = f16[] divide(one, den)
}
"""
AXPY = """axpy {
  x = f32[] parameter(0)
  y = f32[] parameter(1)
  two = f32[] constant(2)
  ax = f32[] multiply(two, x)
  ROOT r = f32[] add(ax, y)
}
"""

EXP_ADD = """exp_add {
  x = f32[] parameter(0)
  y = f32[] parameter(1)
  e = f32[] exponential(y)
  ROOT r = f32[] add(x, e)
}
"""
EXP_LESS = """exp_less {
  x = f32[] parameter(0)
  y = f32[] parameter(1)
  e = f32[] exponential(x)
  ROOT r = pred[] compare(e, y), direction=LT
}
"""
EXP_GE = EXP_LESS.replace("exp_less", "exp_ge").replace("LT", "GE")

UNARY_FLOAT = ("abs", "negate", "exponential", "exponential-minus-one", "log", "log-plus-one", "logistic", "sqrt",
               "rsqrt", "cbrt", "tanh", "sine", "cosine", "tan", "erf", "floor", "ceil", "sign",
               "round-nearest-afz", "round-nearest-even", "acos", "acosh", "asin", "asinh", "atanh", "cosh", "sinh")
BINARY_FLOAT = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "remainder", "atan2")
INTEGER_OPS = ("and", "or", "xor", "shift-left", "shift-right-logical", "shift-right-arithmetic", "add", "subtract",
               "multiply", "divide", "remainder", "maximum", "minimum")
INTEGER_UNARY = ("not", "popcnt", "count-leading-zeros", "negate", "abs", "sign")


def unary_chain(dtype: str, dims: str, opcodes: tuple[str, ...]) -> str:
    """Each unary opcode applied to the one parameter, its results added up in a chain."""
    lines = [f"p = {dtype}[{dims}] parameter(0)"]
    lines += [f"y{i} = {dtype}[{dims}] {op}(p)" for i, op in enumerate(opcodes)]  # not u1 or s1: names of types
    last = "y0"
    for i in range(1, len(opcodes)):
        lines.append(f"z{i} = {dtype}[{dims}] add({last}, y{i})")
        last = f"z{i}"
    lines[-1] = "ROOT " + lines[-1]
    return module(*lines)


def binary_each(dtype: str, dims: str, opcodes: tuple[str, ...]) -> str:
    """Each binary opcode applied to two parameters; the results gathered in a tuple."""
    lines = [f"a = {dtype}[{dims}] parameter(0)", f"b = {dtype}[{dims}] parameter(1)"]
    lines += [f"r{i} = {dtype}[{dims}] {op}(a, b)" for i, op in enumerate(opcodes)]
    names = ", ".join(f"r{i}" for i in range(len(opcodes)))
    shapes = ", ".join(f"{dtype}[{dims}]" for _ in opcodes)
    lines.append(f"ROOT t = ({shapes}) tuple({names})")
    return module(*lines)


HAND_WRITTEN: dict[str, str] = {
    # ---- elementwise: every unary and binary opcode, odd shapes, each element type
    "unary_f16": unary_chain("f16", "3,5,7", UNARY_FLOAT),
    "unary_f64_scalar": unary_chain("f64", "", UNARY_FLOAT[:12]),
    "unary_bf16_zero_sized": unary_chain("bf16", "0,9", ("abs", "exponential", "negate")),
    "binary_bf16": binary_each("bf16", "1,13,1", BINARY_FLOAT),
    "binary_f64": binary_each("f64", "17", BINARY_FLOAT[:6]),
    "integer_s8": binary_each("s8", "5,3", INTEGER_OPS),
    "integer_u32": binary_each("u32", "31", INTEGER_OPS),
    "integer_unary_s32": unary_chain("s32", "4,4,2", INTEGER_UNARY),
    "predicates": module(
        "a = pred[6,2] parameter(0)", "b = pred[6,2] parameter(1)", "x = f32[6,2] parameter(2)",
        "c = pred[6,2] and(a, b)", "d = pred[6,2] or(c, a)", "e = pred[6,2] xor(d, b)", "f = pred[6,2] not(e)",
        "ROOT s = f32[6,2] select(f, x, x)"),
    "compare_each_direction": module(
        "a = s16[9] parameter(0)", "b = s16[9] parameter(1)",
        *(f"c{i} = pred[9] compare(a, b), direction={d}" for i, d in enumerate(("EQ", "NE", "LT", "LE", "GT", "GE"))),
        "x0 = pred[9] xor(c0, c1)", "x1 = pred[9] xor(c2, c3)", "x2 = pred[9] xor(c4, c5)",
        "ROOT t = (pred[9], pred[9], pred[9]) tuple(x0, x1, x2)"),
    "complex_c64": module(
        "re = f32[4,3] parameter(0)", "im = f32[4,3] parameter(1)", "z = c64[4,3] complex(re, im)",
        "w = c64[4,3] multiply(z, z)", "e = c64[4,3] exponential(w)", "q = c64[4,3] divide(e, z)",
        "s = c64[4,3] sqrt(q)", "n = c64[4,3] negate(s)", "a = f32[4,3] abs(n)", "r = f32[4,3] real(n)",
        "i = f32[4,3] imag(n)", "ar = f32[4,3] add(a, r)", "ROOT out = f32[4,3] add(ar, i)"),
    "complex_c128_log": module("z = c128[7] parameter(0)", "l = c128[7] log(z)", "ROOT t = c128[7] tanh(l)"),
    "converts": module(
        "p = s8[3,11] parameter(0)", "f = f32[3,11] convert(p)", "b = bf16[3,11] convert(f)",
        "h = f16[3,11] convert(b)", "d = f64[3,11] convert(h)", "u = u32[3,11] convert(d)",
        "q = pred[3,11] convert(u)", "ROOT c = c64[3,11] convert(q)"),
    "bitcast_converts": module(
        "p = f32[5,4] parameter(0)", "i = s32[5,4] bitcast-convert(p)", "b = u8[5,4,4] bitcast-convert(i)",
        "d = f64[3] parameter(1)", "w = u32[3,2] bitcast-convert(d)",
        "h = u16[6] parameter(2)", "f = f32[3] bitcast-convert(h)",
        "ROOT t = (u8[5,4,4], u32[3,2], f32[3]) tuple(b, w, f)"),
    "reduce_precision": module(
        "p = f32[2,3,5] parameter(0)", "ROOT r = f32[2,3,5] reduce-precision(p), exponent_bits=5, mantissa_bits=2"),
    "clamp_scalar_bounds": module(
        "lo = f32[] parameter(0)", "x = f32[12,3] parameter(1)", "hi = f32[] parameter(2)",
        "ROOT c = f32[12,3] clamp(lo, x, hi)"),
    "clamp_s8_full": module(
        "lo = s8[7] parameter(0)", "x = s8[7] parameter(1)", "hi = s8[7] parameter(2)",
        "ROOT c = s8[7] clamp(lo, x, hi)"),
    "iota_and_compare": module(
        "i = s32[10,4] iota(), iota_dimension=0", "j = s32[10,4] iota(), iota_dimension=1",
        "ROOT e = pred[10,4] compare(i, j), direction=EQ"),
    "rng_uniform_and_normal": module(
        "lo = f32[] constant(0)", "hi = f32[] constant(1)",
        "u = f32[3,7] rng(lo, hi), distribution=rng_uniform", "n = f32[3,7] rng(lo, hi), distribution=rng_normal",
        "ROOT s = f32[3,7] add(u, n)"),
    "rng_bit_generator": module(
        "state = u64[2] parameter(0)",
        "ROOT r = (u64[2], u32[5,3]) rng-bit-generator(state), algorithm=rng_philox"),
    "rng_bit_generator_used": module(
        "state = u64[3] parameter(0)",
        "r = (u64[3], u32[17]) rng-bit-generator(state), algorithm=rng_three_fry",
        "bits = u32[17] get-tuple-element(r), index=1", "ROOT f = f32[17] convert(bits)"),
    # ---- reductions
    "reduce_two_of_three_dims": module(
        "p = f32[7,11,13] parameter(0)", "z = f32[] constant(0)",
        "ROOT r = f32[11] reduce(p, z), dimensions={0,2}, to_apply=add", computations=ADD),
    "reduce_to_scalar_bf16": module(
        "p = bf16[5,3] parameter(0)", "z = bf16[] constant(0)",
        "ROOT r = bf16[] reduce(p, z), dimensions={0,1}, to_apply=add_bf16", computations=ADD_BF16),
    "reduce_max_u8": module(
        "p = u8[4,9,2] parameter(0)", "z = u8[] constant(0)",
        "ROOT r = u8[4,2] reduce(p, z), dimensions={1}, to_apply=max_u8", computations=MAX_U8),
    "reduce_nothing": module(
        "p = f32[6,5] parameter(0)", "z = f32[] constant(0)",
        "ROOT r = f32[6,5] reduce(p, z), dimensions={}, to_apply=add", computations=ADD),
    "reduce_argmax": module(
        "v = f32[9,17] parameter(0)", "i = s32[9,17] iota(), iota_dimension=1",
        "ninf = f32[] constant(-inf)", "zero = s32[] constant(0)",
        "r = (f32[9], s32[9]) reduce(v, i, ninf, zero), dimensions={1}, to_apply=argmax",
        "ROOT index = s32[9] get-tuple-element(r), index=1", computations=ARGMAX),
    "reduce_argmax_tuple_root": module(
        "v = f32[9,17] parameter(0)", "i = s32[9,17] parameter(1)",
        "ninf = f32[] constant(-inf)", "zero = s32[] constant(0)",
        "ROOT r = (f32[17], s32[17]) reduce(v, i, ninf, zero), dimensions={0}, to_apply=argmax", computations=ARGMAX),
    "reduce_three_operands": module(
        "a = f32[8,3] parameter(0)", "b = bf16[8,3] parameter(1)", "c = s32[8,3] parameter(2)",
        "za = f32[] constant(0)", "zb = bf16[] constant(-inf)", "zc = s32[] constant(0)",
        "ROOT r = (f32[3], bf16[3], s32[3]) reduce(a, b, c, za, zb, zc), dimensions={0}, to_apply=sum_max_count",
        computations=SUM_MAX_COUNT),
    "reduce_window_padded_dilated": module(
        "p = f32[2,17,13,3] parameter(0)", "z = f32[] constant(-inf)",
        "ROOT r = f32[2,8,8,3] reduce-window(p, z), window={size=1x3x2x1 stride=1x2x2x1 pad=0_0x1_1x2_1x0_0 "
        "rhs_dilate=1x2x1x1}, to_apply=max", computations=MAX),
    "reduce_window_base_dilated": module(
        "p = f32[5,7] parameter(0)", "z = f32[] constant(0)",
        "ROOT r = f32[9,14] reduce-window(p, z), window={size=2x3 stride=1x1 pad=1_0x2_1 lhs_dilate=2x2}, "
        "to_apply=add", computations=ADD),
    "reduce_window_cumulative": module(
        "p = f32[37,5] parameter(0)", "z = f32[] constant(0)",
        "ROOT r = f32[37,5] reduce-window(p, z), window={size=37x1 pad=36_0x0_0}, to_apply=add", computations=ADD),
    "reduce_window_broadcast_case": module(
        "p = f32[3,9] parameter(0)", "z = f32[] constant(0)",
        "ROOT r = f32[3,9] reduce-window(p, z), window={size=1x17 pad=0_0x8_8}, to_apply=add", computations=ADD),
    "reduce_window_variadic_argmax": module(
        "v = f32[12] parameter(0)", "i = s32[12] iota(), iota_dimension=0",
        "ninf = f32[] constant(-inf)", "zero = s32[] constant(0)",
        "ROOT r = (f32[5], s32[5]) reduce-window(v, i, ninf, zero), window={size=4 stride=2}, to_apply=argmax",
        computations=ARGMAX),
    "select_and_scatter_padded": module(
        "operand = f32[1,9,7,2] parameter(0)", "source = f32[1,5,4,2] parameter(1)", "zero = f32[] constant(0)",
        "ROOT s = f32[1,9,7,2] select-and-scatter(operand, source, zero), window={size=1x3x3x1 stride=1x2x2x1 "
        "pad=0_0x1_1x1_1x0_0}, select=ge, scatter=add", computations=GE + "\n" + ADD),
    "select_and_scatter_overlapping": module(
        "operand = f32[10] parameter(0)", "source = f32[8] parameter(1)", "zero = f32[] constant(0)",
        "ROOT s = f32[10] select-and-scatter(operand, source, zero), window={size=3 stride=1}, select=ge, "
        "scatter=add", computations=GE + "\n" + ADD),
    # ---- indexing
    "scatter_two_window_dims": module(
        "operand = f32[6,5,4] parameter(0)", "indices = s32[3,1] parameter(1)", "updates = f32[3,5,4] parameter(2)",
        "ROOT s = f32[6,5,4] scatter(operand, indices, updates), update_window_dims={1,2}, inserted_window_dims={0}, "
        "scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add", computations=ADD),
    "scatter_2d_indices_assign": module(
        "operand = f32[7,9] parameter(0)", "indices = s32[4,2] parameter(1)", "updates = f32[4] parameter(2)",
        "ROOT s = f32[7,9] scatter(operand, indices, updates), update_window_dims={}, inserted_window_dims={0,1}, "
        "scatter_dims_to_operand_dims={0,1}, index_vector_dim=1, to_apply=assign", computations=ASSIGN),
    "scatter_index_vector_first": module(
        "operand = s32[5,8] parameter(0)", "indices = s32[1,3] parameter(1)", "updates = s32[3,8] parameter(2)",
        "ROOT s = s32[5,8] scatter(operand, indices, updates), update_window_dims={1}, inserted_window_dims={0}, "
        "scatter_dims_to_operand_dims={0}, index_vector_dim=0, to_apply=add_s32", computations=ADD_S32),
    "gather_rows_odd": module(
        "operand = f32[11,6,3] parameter(0)", "indices = s32[4,2] parameter(1)",
        "ROOT g = f32[4,2,3] gather(operand, indices), offset_dims={1,2}, collapsed_slice_dims={0}, "
        "start_index_map={0,1}, index_vector_dim=1, slice_sizes={1,2,3}"),
    "gather_scalar_indices": module(
        "operand = bf16[13,5] parameter(0)", "indices = s32[7] parameter(1)",
        "ROOT g = bf16[7,5] gather(operand, indices), offset_dims={1}, collapsed_slice_dims={0}, "
        "start_index_map={0}, index_vector_dim=1, slice_sizes={1,5}"),
    "dynamic_slice_3d": module(
        "p = f32[9,8,7] parameter(0)", "i = s32[] parameter(1)", "j = s32[] parameter(2)", "k = s32[] constant(1)",
        "ROOT d = f32[2,3,7] dynamic-slice(p, i, j, k), dynamic_slice_sizes={2,3,7}"),
    "dynamic_update_slice_3d": module(
        "p = u8[9,8,7] parameter(0)", "u = u8[4,1,5] parameter(1)", "i = s32[] parameter(2)",
        "ROOT d = u8[9,8,7] dynamic-update-slice(p, u, i, i, i)"),
    "slice_strided": module(
        "p = f32[10,20,3] parameter(0)", "ROOT s = f32[4,5,1] slice(p), slice={[1:9:2], [0:20:4], [2:3]}"),
    "pad_negative_interior": module(
        "p = f32[6,5] parameter(0)", "z = f32[] constant(0)",
        "ROOT q = f32[12,12] pad(p, z), padding=-2_3_1x1_-2_2"),
    "pad_all_negative": module(
        "p = s8[9,9] parameter(0)", "z = s8[] constant(0)", "ROOT q = s8[5,7] pad(p, z), padding=-1_-3x-2_0"),
    "concatenate_three": module(
        "a = f32[2,3] parameter(0)", "b = f32[5,3] parameter(1)", "c = f32[1,3] parameter(2)",
        "ROOT k = f32[8,3] concatenate(a, b, c), dimensions={0}"),
    "reshape_transpose_broadcast_reverse": module(
        "p = f32[6,4] parameter(0)", "r = f32[2,3,4] reshape(p)", "t = f32[4,2,3] transpose(r), dimensions={2,0,1}",
        "b = f32[5,4,2,3] broadcast(t), dimensions={1,2,3}", "v = f32[5,4,2,3] reverse(b), dimensions={0,3}",
        "ROOT c = f32[5,4,2,3] copy(v)"),
    "transpose_identity_without_layouts": module(
        "p = f32[3,5] parameter(0)", "ROOT t = f32[3,5] transpose(p), dimensions={0,1}"),
    "transpose_half_laid_out": module(
        "p = f32[3,8]{0,1} parameter(0)", "ROOT t = f32[8,3] transpose(p), dimensions={1,0}"),
    "transpose_with_layouts": module(
        "p = f32[3,8]{1,0} parameter(0)", "ROOT t = f32[8,3]{0,1} transpose(p), dimensions={1,0}"),
    # ---- convolutions
    "conv_batch_group_count": module(
        "lhs = f32[8,5,5,3] parameter(0)", "rhs = f32[3,3,3,4] parameter(1)",
        "ROOT c = f32[2,3,3,4] convolution(lhs, rhs), window={size=3x3}, dim_labels=b01f_01io->b01f, "
        "batch_group_count=4"),
    "conv_feature_groups_strided": module(
        "lhs = f32[2,6,11,11] parameter(0)", "rhs = f32[9,2,3,3] parameter(1)",
        "ROOT c = f32[2,9,5,5] convolution(lhs, rhs), window={size=3x3 stride=2x2 pad=0_0x0_0}, "
        "dim_labels=bf01_oi01->bf01, feature_group_count=3"),
    "conv_window_reversal": module(
        "lhs = f32[1,7,7,2] parameter(0)", "rhs = f32[3,3,2,5] parameter(1)",
        "ROOT c = f32[1,7,7,5] convolution(lhs, rhs), window={size=3x3 pad=1_1x1_1 rhs_reversal=1x1}, "
        "dim_labels=b01f_01io->b01f"),
    "conv_lhs_and_rhs_dilation": module(
        "lhs = f32[2,6,5,3] parameter(0)", "rhs = f32[2,3,3,4] parameter(1)",
        "ROOT c = f32[2,11,4,4] convolution(lhs, rhs), window={size=2x3 pad=1_1x2_1 lhs_dilate=2x1 rhs_dilate=2x2}, "
        "dim_labels=b01f_01io->b01f"),
    "conv_odd_labels_1d": module(
        "lhs = f32[9,3,4] parameter(0)", "rhs = f32[2,4,6] parameter(1)",
        "ROOT c = f32[6,8,3] convolution(lhs, rhs), window={size=2}, dim_labels=0bf_0io->f0b"),
    "conv_3d_bf16": module(
        "lhs = bf16[1,5,6,7,2] parameter(0)", "rhs = bf16[2,2,3,2,3] parameter(1)",
        "ROOT c = bf16[1,4,5,5,3] convolution(lhs, rhs), window={size=2x2x3}, dim_labels=b012f_012io->b012f"),
    "conv_int8": module(
        "lhs = s8[1,4,4,2] parameter(0)", "rhs = s8[2,2,2,3] parameter(1)",
        "ROOT c = s32[1,3,3,3] convolution(lhs, rhs), window={size=2x2}, dim_labels=b01f_01io->b01f"),
    # ---- dots
    "dot_two_batch_two_contracting": module(
        "a = f32[2,3,4,5,6] parameter(0)", "b = f32[3,2,6,5,7] parameter(1)",
        "ROOT d = f32[2,3,4,7] dot(a, b), lhs_batch_dims={0,1}, rhs_batch_dims={1,0}, "
        "lhs_contracting_dims={3,4}, rhs_contracting_dims={3,2}"),
    "dot_vector_vector": module(
        "a = f64[33] parameter(0)", "b = f64[33] parameter(1)",
        "ROOT d = f64[] dot(a, b), lhs_contracting_dims={0}, rhs_contracting_dims={0}"),
    "dot_matrix_vector_bf16_to_f32": module(
        "a = bf16[17,9] parameter(0)", "b = bf16[9] parameter(1)",
        "ROOT d = f32[17] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}"),
    "dot_int8_to_s32": module(
        "a = s8[5,8] parameter(0)", "b = s8[8,3] parameter(1)",
        "ROOT d = s32[5,3] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}"),
    "dot_complex": module(
        "a = c64[4,6] parameter(0)", "b = c64[6,2] parameter(1)",
        "ROOT d = c64[4,2] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}"),
    # ---- sorts
    "sort_one_operand": module(
        "p = f32[5,33] parameter(0)", "ROOT s = f32[5,33] sort(p), dimensions={1}, to_apply=less",
        computations=LESS),
    "sort_three_operands_stable": module(
        "a = f32[6,7,2] parameter(0)", "b = s32[6,7,2] parameter(1)", "c = bf16[6,7,2] parameter(2)",
        "ROOT s = (f32[6,7,2], s32[6,7,2], bf16[6,7,2]) sort(a, b, c), dimensions={0}, is_stable=true, "
        "to_apply=less3", computations=LESS_OF_THREE),
    "sort_one_element": module(
        "p = f32[1] parameter(0)", "ROOT s = f32[1] sort(p), dimensions={0}, to_apply=less", computations=LESS),
    # ---- fft
    "fft_complex_odd": module(
        "p = c64[3,12] parameter(0)", "ROOT f = c64[3,12] fft(p), fft_type=FFT, fft_length={12}"),
    "rfft_2d": module(
        "p = f32[2,6,10] parameter(0)", "ROOT f = c64[2,6,6] fft(p), fft_type=RFFT, fft_length={6,10}"),
    "irfft": module(
        "p = c64[4,5] parameter(0)", "ROOT f = f32[4,8] fft(p), fft_type=IRFFT, fft_length={8}"),
    # ---- called computations
    "map_sigmoid_f16": module(
        "p = f16[4,7] parameter(0)", "ROOT m = f16[4,7] map(p), dimensions={0,1}, to_apply=sigmoid_f16",
        computations=SIGMOID_F16),
    "map_binary": module(
        "x = f32[13] parameter(0)", "y = f32[13] parameter(1)",
        "ROOT m = f32[13] map(x, y), dimensions={0}, to_apply=axpy", computations=AXPY),
    "call_twice": module(
        "x = f32[13] parameter(0)", "y = f32[13] parameter(1)", "c = f32[13] call(x, y), to_apply=body",
        "ROOT d = f32[13] call(c, y), to_apply=body",
        computations="body {\n  x = f32[13] parameter(0)\n  y = f32[13] parameter(1)\n"
                     "  m = f32[13] multiply(x, y)\n  ROOT e = f32[13] exponential(m)\n}\n"),
    "conditional_pred": module(
        "p = pred[] parameter(0)", "x = f32[8,8] parameter(1)",
        "ROOT c = f32[8,8] conditional(p, x, x), true_computation=heavy, false_computation=light",
        computations="heavy {\n  x = f32[8,8] parameter(0)\n  ROOT d = f32[8,8] dot(x, x), "
                     "lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n"
                     "light {\n  x = f32[8,8] parameter(0)\n  ROOT e = f32[8,8] exponential(x)\n}\n"),
    "conditional_three_branches": module(
        "i = s32[] parameter(0)", "x = f32[5] parameter(1)", "y = bf16[3] parameter(2)",
        "ROOT c = f32[5] conditional(i, x, y, x), branch_computations={b0, b1, b2}",
        computations="b0 {\n  x = f32[5] parameter(0)\n  ROOT l = f32[5] log(x)\n}\n"
                     "b1 {\n  y = bf16[3] parameter(0)\n  s = bf16[3] sqrt(y)\n  ROOT z = f32[5] constant({1,2,3,4,5})"
                     "\n}\n"
                     "b2 {\n  x = f32[5] parameter(0)\n  a = f32[5] add(x, x)\n  m = f32[5] multiply(a, x)\n"
                     "  ROOT n = f32[5] negate(m)\n}\n"),
    # ---- fusions
    "fusion_loop_shared_operand": module(
        "a = f32[6,10] parameter(0)", "b = f32[6,10] parameter(1)",
        "ROOT f = f32[6,10] fusion(a, b, a), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[6,10] parameter(0)\n  p1 = f32[6,10] parameter(1)\n"
                     "  p2 = f32[6,10] parameter(2)\n  m = f32[6,10] multiply(p0, p1)\n"
                     "  e = f32[6,10] exponential(p0)\n  s = f32[6,10] subtract(m, e)\n"
                     "  ROOT r = f32[6,10] add(s, p2)\n}\n"),
    "fusion_input_reduce": module(
        "a = f32[16,9] parameter(0)", "z = f32[] constant(0)",
        "ROOT f = f32[16] fusion(a, z), kind=kInput, calls=fused",
        computations=ADD + "\nfused {\n  p0 = f32[16,9] parameter(0)\n  p1 = f32[] parameter(1)\n"
                     "  sq = f32[16,9] multiply(p0, p0)\n"
                     "  ROOT r = f32[16] reduce(sq, p1), dimensions={1}, to_apply=add\n}\n"),
    "fusion_output_dot_bias": module(
        "a = f32[8,4] parameter(0)", "w = f32[4,6] parameter(1)", "bias = f32[6] parameter(2)",
        "ROOT f = f32[8,6] fusion(a, w, bias), kind=kOutput, calls=fused",
        computations="fused {\n  p0 = f32[8,4] parameter(0)\n  p1 = f32[4,6] parameter(1)\n"
                     "  p2 = f32[6] parameter(2)\n"
                     "  d = f32[8,6] dot(p0, p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
                     "  b = f32[8,6] broadcast(p2), dimensions={1}\n  ROOT r = f32[8,6] add(d, b)\n}\n"),
    "fusion_multi_output_sliced": module(
        "a = f32[20] parameter(0)",
        "f = (f32[5], f32[20]) fusion(a), kind=kLoop, calls=fused",
        "x = f32[5] get-tuple-element(f), index=0", "y = f32[20] get-tuple-element(f), index=1",
        "ROOT t = (f32[5], f32[20]) tuple(x, y)",
        computations="fused {\n  p0 = f32[20] parameter(0)\n  s = f32[5] slice(p0), slice={[3:8]}\n"
                     "  n = f32[5] negate(s)\n  ROOT r = (f32[5], f32[20]) tuple(n, p0)\n}\n"),
    "fusion_in_place_update": module(
        "a = f32[10,4] parameter(0)", "u = f32[2,4] parameter(1)", "i = s32[] parameter(2)",
        "ROOT f = f32[10,4] fusion(a, u, i), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[10,4] parameter(0)\n  p1 = f32[2,4] parameter(1)\n"
                     "  p2 = s32[] parameter(2)\n  z = s32[] constant(0)\n  e = f32[2,4] exponential(p1)\n"
                     "  ROOT d = f32[10,4] dynamic-update-slice(p0, e, p2, z)\n}\n"),
    "fusion_broadcast_and_constant": module(
        "a = f32[3] parameter(0)",
        "ROOT f = f32[4,3] fusion(a), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[3] parameter(0)\n  c = f32[4,3] constant({{1,2,3},{4,5,6},{7,8,9},"
                     "{1,1,1}})\n  b = f32[4,3] broadcast(p0), dimensions={1}\n  ROOT r = f32[4,3] multiply(b, c)\n"
                     "}\n"),
    "fusion_nested": module(
        "a = f32[6,6] parameter(0)", "b = f32[6,6] parameter(1)",
        "ROOT f = f32[6,6] fusion(a, b), kind=kLoop, calls=outer",
        computations="inner {\n  q0 = f32[6,6] parameter(0)\n  ROOT t = f32[6,6] tanh(q0)\n}\n\n"
                     "outer {\n  p0 = f32[6,6] parameter(0)\n  p1 = f32[6,6] parameter(1)\n"
                     "  n = f32[6,6] fusion(p0), kind=kLoop, calls=inner\n  ROOT r = f32[6,6] add(n, p1)\n}\n"),
    "fusion_dynamic_slice_of_parameter": module(
        "a = f32[64,8] parameter(0)", "i = s32[] parameter(1)",
        "ROOT f = f32[4,8] fusion(a, i), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[64,8] parameter(0)\n  p1 = s32[] parameter(1)\n  z = s32[] constant(0)\n"
                     "  d = f32[4,8] dynamic-slice(p0, p1, z), dynamic_slice_sizes={4,8}\n"
                     "  ROOT r = f32[4,8] sqrt(d)\n}\n"),
    # ---- loops
    "while_known_trip_count": module(
        "x = f32[16,16] parameter(0)", "zero = s32[] constant(0)", "init = (s32[], f32[16,16]) tuple(zero, x)",
        'w = (s32[], f32[16,16]) while(init), condition=cond, body=body, backend_config={"known_trip_count":{"n":"6"}}',
        "ROOT out = f32[16,16] get-tuple-element(w), index=1",
        computations="cond {\n  s = (s32[], f32[16,16]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  n = s32[] constant(6)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\n"
                     "body {\n  s = (s32[], f32[16,16]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  x = f32[16,16] get-tuple-element(s), index=1\n  one = s32[] constant(1)\n"
                     "  j = s32[] add(i, one)\n"
                     "  d = f32[16,16] dot(x, x), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
                     "  ROOT t = (s32[], f32[16,16]) tuple(j, d)\n}\n"),
    "while_counted_from_three": module(
        "x = f32[9] parameter(0)", "three = s32[] constant(3)", "init = (s32[], f32[9]) tuple(three, x)",
        "w = (s32[], f32[9]) while(init), condition=cond, body=body",
        "ROOT out = f32[9] get-tuple-element(w), index=1",
        computations="cond {\n  s = (s32[], f32[9]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  n = s32[] constant(11)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\n"
                     "body {\n  s = (s32[], f32[9]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  x = f32[9] get-tuple-element(s), index=1\n  one = s32[] constant(1)\n"
                     "  j = s32[] add(i, one)\n  e = f32[9] exponential(x)\n"
                     "  ROOT t = (s32[], f32[9]) tuple(j, e)\n}\n"),
    "while_data_dependent": module(
        "x = f32[4] parameter(0)", "w = f32[4] while(x), condition=cond, body=body",
        "ROOT out = f32[4] negate(w)",
        computations=ADD + "\ncond {\n  s = f32[4] parameter(0)\n  z = f32[] constant(0)\n"
                     "  r = f32[] reduce(s, z), dimensions={0}, to_apply=add\n  big = f32[] constant(100)\n"
                     "  ROOT lt = pred[] compare(r, big), direction=LT\n}\n\n"
                     "body {\n  s = f32[4] parameter(0)\n  ROOT m = f32[4] multiply(s, s)\n}\n"),
    # ---- collectives on one replica, tuples, the rest
    "all_reduce_one_replica": module(
        "p = f32[7,3] parameter(0)", "ROOT a = f32[7,3] all-reduce(p), replica_groups={}, to_apply=add",
        computations=ADD),
    "all_reduce_tuple": module(
        "p = f32[7,3] parameter(0)", "q = bf16[5] parameter(1)",
        "ROOT a = (f32[7,3], bf16[5]) all-reduce(p, q), replica_groups={{0}}, to_apply=add", computations=ADD),
    "all_gather_one_replica": module(
        "p = f32[7,3] parameter(0)",
        "ROOT a = f32[7,3] all-gather(p), replica_groups={{0}}, dimensions={0}"),
    "tuple_of_tuples": module(
        "a = f32[3] parameter(0)", "b = s8[4,4] parameter(1)", "c = bf16[2] parameter(2)",
        "inner = (f32[3], s8[4,4]) tuple(a, b)", "outer = ((f32[3], s8[4,4]), bf16[2]) tuple(inner, c)",
        "g = (f32[3], s8[4,4]) get-tuple-element(outer), index=0", "h = f32[3] get-tuple-element(g), index=0",
        "n = f32[3] negate(h)", "ROOT t = (((f32[3], s8[4,4]), bf16[2]), f32[3]) tuple(outer, n)"),
    "tuple_parameter": module(
        "p = (f32[5], (s32[2], f16[3])) parameter(0)", "a = f32[5] get-tuple-element(p), index=0",
        "q = (s32[2], f16[3]) get-tuple-element(p), index=1", "h = f16[3] get-tuple-element(q), index=1",
        "e = f16[3] exponential(h)", "ROOT t = (f32[5], f16[3]) tuple(a, e)"),
    "opt_barrier": module(
        "a = f32[6] parameter(0)", "b = s32[2] parameter(1)", "t = (f32[6], s32[2]) tuple(a, b)",
        "o = (f32[6], s32[2]) opt-barrier(t)", "ROOT x = f32[6] get-tuple-element(o), index=0"),
    "ids_and_tokens": module(
        "r = u32[] replica-id()", "p = u32[] partition-id()", "s = u32[] add(r, p)",
        "t = token[] after-all()", "x = f32[3] parameter(0)", "d = f32[3] add-dependency(x, t)",
        "c = f32[] convert(s)", "b = f32[3] broadcast(c), dimensions={}", "ROOT a = f32[3] add(d, b)"),
    "get_dimension_size": module(
        "p = f32[5,9] parameter(0)", "s = s32[] get-dimension-size(p), dimensions={1}",
        "ROOT m = s32[] multiply(s, s)"),
    "custom_call_unknown": module(
        "p = f32[4,4] parameter(0)", 'c = f32[4,4] custom-call(p), custom_call_target="some$kernel"',
        "ROOT a = f32[4,4] add(c, p)"),
    "cholesky_and_triangular_solve": module(
        "a = f32[6,6] parameter(0)", "b = f32[6,2] parameter(1)", "l = f32[6,6] cholesky(a), lower=true",
        "ROOT x = f32[6,2] triangular-solve(l, b), left_side=true, lower=true, transpose_a=NO_TRANSPOSE"),
    "batch_norm_training": module(
        "x = f32[2,5,3] parameter(0)", "scale = f32[3] parameter(1)", "offset = f32[3] parameter(2)",
        "ROOT b = (f32[2,5,3], f32[3], f32[3]) batch-norm-training(x, scale, offset), epsilon=0.001, "
        "feature_index=2"),
    "topk": module(
        "x = f32[4,20] parameter(0)", "ROOT t = (f32[4,3], s32[4,3]) topk(x), k=3, largest=true"),
    # ---- fusions whose parameters are read in several ways
    "fusion_parameter_sliced_and_used": module(
        "a = f32[30] parameter(0)", "ROOT f = f32[5] fusion(a), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[30] parameter(0)\n  s = f32[5] slice(p0), slice={[0:5]}\n"
                     "  t = f32[5] slice(p0), slice={[10:15]}\n  r = f32[30] reverse(p0), dimensions={0}\n"
                     "  u = f32[5] slice(r), slice={[2:7]}\n  a = f32[5] add(s, t)\n  ROOT m = f32[5] multiply(a, u)\n"
                     "}\n"),
    "fusion_parameter_reshaped_and_broadcast": module(
        "a = f32[12] parameter(0)", "ROOT f = f32[2,3,4] fusion(a), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[12] parameter(0)\n  r = f32[3,4] reshape(p0)\n"
                     "  b = f32[2,3,4] broadcast(r), dimensions={1,2}\n  c = f32[2,12] broadcast(p0), dimensions={1}\n"
                     "  q = f32[2,3,4] reshape(c)\n  ROOT m = f32[2,3,4] multiply(b, q)\n}\n"),
    "fusion_dot_of_one_parameter": module(
        "a = f32[7,7] parameter(0)", "ROOT f = f32[7,7] fusion(a), kind=kOutput, calls=fused",
        computations="fused {\n  p0 = f32[7,7] parameter(0)\n"
                     "  d = f32[7,7] dot(p0, p0), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
                     "  ROOT r = f32[7,7] add(d, p0)\n}\n"),
    "fusion_multi_output_update": module(
        "a = f32[10,4] parameter(0)", "u = f32[1,4] parameter(1)", "i = s32[] parameter(2)",
        "ROOT f = (f32[10,4], f32[1,4]) fusion(a, u, i), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[10,4] parameter(0)\n  p1 = f32[1,4] parameter(1)\n"
                     "  p2 = s32[] parameter(2)\n  z = s32[] constant(0)\n  n = f32[1,4] negate(p1)\n"
                     "  d = f32[10,4] dynamic-update-slice(p0, n, p2, z)\n"
                     "  ROOT t = (f32[10,4], f32[1,4]) tuple(d, n)\n}\n"),
    "fusion_parameters_out_of_order": module(
        "a = f32[4] parameter(0)", "b = s32[4] parameter(1)",
        "ROOT f = f32[4] fusion(b, a), kind=kLoop, calls=fused",
        computations="fused {\n  q = f32[4] parameter(1)\n  p = s32[4] parameter(0)\n  c = f32[4] convert(p)\n"
                     "  ROOT m = f32[4] multiply(c, q)\n}\n"),
    "fusion_tuple_parameter": module(
        "a = f32[3,2] parameter(0)", "b = s32[5] parameter(1)", "t = (f32[3,2], s32[5]) tuple(a, b)",
        "ROOT f = f32[3,2] fusion(t), kind=kLoop, calls=fused",
        computations="fused {\n  p = (f32[3,2], s32[5]) parameter(0)\n  g = f32[3,2] get-tuple-element(p), index=0\n"
                     "  ROOT e = f32[3,2] exponential(g)\n}\n"),
    "fusion_custom_gather": module(
        "operand = f32[40,6] parameter(0)", "indices = s32[9] parameter(1)",
        "ROOT f = f32[9,6] fusion(operand, indices), kind=kCustom, calls=fused",
        computations="fused {\n  p0 = f32[40,6] parameter(0)\n  p1 = s32[9] parameter(1)\n"
                     "  g = f32[9,6] gather(p0, p1), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0}, "
                     "index_vector_dim=1, slice_sizes={1,6}\n  ROOT n = f32[9,6] negate(g)\n}\n"),
    "fusion_shared_by_two_callers": module(
        "a = f32[8] parameter(0)", "f = f32[8] fusion(a), kind=kLoop, calls=fused",
        "ROOT g = f32[8] fusion(f), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[8] parameter(0)\n  e = f32[8] exponential(p0)\n"
                     "  ROOT m = f32[8] multiply(e, p0)\n}\n"),
    # ---- structure: dead code, repeated operands, roots that compute nothing
    "dead_code_is_counted": module(
        "a = f32[10] parameter(0)", "dead = f32[10] exponential(a)", "also_dead = f32[10] add(dead, a)",
        "ROOT r = f32[10] negate(a)"),
    "operand_read_twice": module(
        "a = f32[6,6] parameter(0)", "m = f32[6,6] multiply(a, a)", "ROOT s = f32[6,6] add(m, m)"),
    "root_is_a_parameter": module("a = f32[6] parameter(0)", "b = f32[6] negate(a)", "ROOT r = f32[6] parameter(1)"),
    "root_is_a_constant": module("ROOT c = s32[3] constant({1, 2, 3})"),
    "big_shapes_float32_sums": module(
        "a = f32[3001,2999] parameter(0)", "b = f32[3001,2999] parameter(1)", "c = f32[3001,2999] add(a, b)",
        "d = f32[3001,2999] multiply(c, a)", "e = f32[3001,2999] exponential(d)", "f = f32[3001,2999] subtract(e, b)",
        "z = f32[] constant(0)", "ROOT g = f32[3001] reduce(f, z), dimensions={1}, to_apply=add", computations=ADD),
    "sub_byte_and_fp8": module(
        "a = s4[64]{0:E(4)} parameter(0)", "b = u4[64]{0:E(4)} parameter(1)", "c = s4[64]{0:E(4)} convert(b)",
        "d = s4[64]{0:E(4)} add(a, c)", "e = f8e4m3fn[64] convert(d)", "f = f8e5m2[64] convert(e)",
        "ROOT g = bf16[64] convert(f)"),
    "layouts_column_major": module(
        "a = f32[5,7]{0,1} parameter(0)", "b = f32[5,7]{1,0} copy(a)",
        "c = f32[7,5]{1,0} transpose(b), dimensions={1,0}",
        "z = f32[] constant(0)", "ROOT r = f32[7]{0} reduce(c, z), dimensions={1}, to_apply=add", computations=ADD),
    "bitcast_and_copy": module(
        "a = f32[4,6]{1,0} parameter(0)", "b = f32[24]{0} bitcast(a)", "c = f32[24]{0} copy(b)",
        "ROOT d = f32[2,12]{1,0} bitcast(c)"),
    # ---- async and collective forms
    "async_call": module(
        "a = f32[16] parameter(0)",
        "s = ((f32[16]), f32[16], s32[]) async-start(a), calls=work",
        "ROOT d = f32[16] async-done(s)",
        computations="work {\n  p = f32[16] parameter(0)\n  ROOT e = f32[16] exponential(p)\n}\n"),
    "copy_start_done": module(
        "a = f32[32] parameter(0)", "s = (f32[32], f32[32], u32[]) copy-start(a)",
        "ROOT d = f32[32] copy-done(s)"),
    "collective_permute_self": module(
        "a = f32[9,2] parameter(0)",
        "ROOT p = f32[9,2] collective-permute(a), source_target_pairs={{0,0}}"),
    "reduce_scatter_one_replica": module(
        "a = f32[8,3] parameter(0)",
        "ROOT r = f32[8,3] reduce-scatter(a), replica_groups={{0}}, dimensions={0}, to_apply=add", computations=ADD),
    "all_to_all_tuple": module(
        "a = f32[4,3] parameter(0)", "b = f32[4,3] parameter(1)",
        "ROOT t = (f32[4,3], f32[4,3]) all-to-all(a, b), replica_groups={{0}}"),
    "domain_and_set_dimension_size": module(
        "a = f32[10] parameter(0)", "n = s32[] constant(6)", "s = f32[<=10] set-dimension-size(a, n), dimensions={0}",
        "d = f32[<=10] domain(s), domain={kind=\"sharding\", entry={maximal device=0}, exit={maximal device=0}}",
        "ROOT g = s32[] get-dimension-size(d), dimensions={0}"),
    "stochastic_convert": module(
        "a = f32[20] parameter(0)", "r = u32[20] parameter(1)", "ROOT s = bf16[20] stochastic-convert(a, r)"),
    "while_with_fusion_and_conditional_body": module(
        "x = f32[12] parameter(0)", "zero = s32[] constant(0)", "init = (s32[], f32[12]) tuple(zero, x)",
        "w = (s32[], f32[12]) while(init), condition=cond, body=body",
        "ROOT out = f32[12] get-tuple-element(w), index=1",
        computations="fused {\n  q = f32[12] parameter(0)\n  e = f32[12] exponential(q)\n"
                     "  ROOT m = f32[12] multiply(e, q)\n}\n\n"
                     "odd {\n  v = f32[12] parameter(0)\n  ROOT n = f32[12] negate(v)\n}\n\n"
                     "even {\n  v = f32[12] parameter(0)\n  ROOT f = f32[12] fusion(v), kind=kLoop, calls=fused\n}\n\n"
                     "cond {\n  s = (s32[], f32[12]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  n = s32[] constant(5)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\n"
                     "body {\n  s = (s32[], f32[12]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  x = f32[12] get-tuple-element(s), index=1\n  one = s32[] constant(1)\n"
                     "  j = s32[] add(i, one)\n  two = s32[] constant(2)\n  r = s32[] remainder(i, two)\n"
                     "  y = f32[12] conditional(r, x, x), branch_computations={even, odd}\n"
                     "  ROOT t = (s32[], f32[12]) tuple(j, y)\n}\n"),
    "nested_while": module(
        "x = f32[6,6] parameter(0)", "zero = s32[] constant(0)", "init = (s32[], f32[6,6]) tuple(zero, x)",
        "w = (s32[], f32[6,6]) while(init), condition=outer_cond, body=outer_body",
        "ROOT out = f32[6,6] get-tuple-element(w), index=1",
        computations="inner_cond {\n  s = (s32[], f32[6,6]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  n = s32[] constant(4)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\n"
                     "inner_body {\n  s = (s32[], f32[6,6]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  x = f32[6,6] get-tuple-element(s), index=1\n  one = s32[] constant(1)\n"
                     "  j = s32[] add(i, one)\n"
                     "  d = f32[6,6] dot(x, x), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
                     "  ROOT t = (s32[], f32[6,6]) tuple(j, d)\n}\n\n"
                     "outer_cond {\n  s = (s32[], f32[6,6]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  n = s32[] constant(3)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\n"
                     "outer_body {\n  s = (s32[], f32[6,6]) parameter(0)\n  i = s32[] get-tuple-element(s), index=0\n"
                     "  x = f32[6,6] get-tuple-element(s), index=1\n  one = s32[] constant(1)\n"
                     "  j = s32[] add(i, one)\n  zero = s32[] constant(0)\n  t0 = (s32[], f32[6,6]) tuple(zero, x)\n"
                     "  w = (s32[], f32[6,6]) while(t0), condition=inner_cond, body=inner_body\n"
                     "  y = f32[6,6] get-tuple-element(w), index=1\n"
                     "  ROOT t = (s32[], f32[6,6]) tuple(j, y)\n}\n"),
    "copy_of_a_tuple": module(
        "a = f32[6] parameter(0)", "b = s8[10] parameter(1)", "t = (f32[6], s8[10]) tuple(a, b)",
        "ROOT c = (f32[6], s8[10]) copy(t)"),
    "reduce_pred_and": module(
        "p = pred[5,6] parameter(0)", "t = pred[] constant(true)",
        "ROOT r = pred[6] reduce(p, t), dimensions={0}, to_apply=and",
        computations="and {\n  x = pred[] parameter(0)\n  y = pred[] parameter(1)\n  ROOT r = pred[] and(x, y)\n}\n"),
    "dot_empty_contraction": module(
        "a = f32[4,0] parameter(0)", "b = f32[0,3] parameter(1)",
        "ROOT d = f32[4,3] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}"),
    "concatenate_with_empty": module(
        "a = s64[3,0] parameter(0)", "b = s64[3,4] parameter(1)",
        "ROOT c = s64[3,4] concatenate(a, b), dimensions={1}"),
    "dot_c128_batched": module(
        "a = c128[2,3,4] parameter(0)", "b = c128[2,4,5] parameter(1)",
        "ROOT d = c128[2,3,5] dot(a, b), lhs_batch_dims={0}, rhs_batch_dims={0}, lhs_contracting_dims={2}, "
        "rhs_contracting_dims={1}"),
    "fusion_variadic_reduce": module(
        "v = f32[7,5] parameter(0)", "i = s32[7,5] parameter(1)",
        "ROOT f = (f32[5], s32[5]) fusion(v, i), kind=kInput, calls=fused", computations=ARGMAX +
        "\nfused {\n  p0 = f32[7,5] parameter(0)\n  p1 = s32[7,5] parameter(1)\n  ninf = f32[] constant(-inf)\n"
        "  zero = s32[] constant(0)\n  a = f32[7,5] abs(p0)\n"
        "  ROOT r = (f32[5], s32[5]) reduce(a, p1, ninf, zero), dimensions={0}, to_apply=argmax\n}\n"),
    "fusion_returns_its_parameter": module(
        "a = f32[9] parameter(0)", "ROOT f = (f32[9], f32[9]) fusion(a), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[9] parameter(0)\n  n = f32[9] negate(p0)\n"
                     "  ROOT t = (f32[9], f32[9]) tuple(n, p0)\n}\n"),
    "fusion_update_and_read": module(
        "a = f32[8,3] parameter(0)", "u = f32[1,3] parameter(1)", "i = s32[] parameter(2)",
        "ROOT f = (f32[8,3], f32[8,3]) fusion(a, u, i), kind=kLoop, calls=fused",
        computations="fused {\n  p0 = f32[8,3] parameter(0)\n  p1 = f32[1,3] parameter(1)\n  p2 = s32[] parameter(2)\n"
                     "  z = s32[] constant(0)\n  d = f32[8,3] dynamic-update-slice(p0, p1, p2, z)\n"
                     "  e = f32[8,3] exponential(p0)\n  ROOT t = (f32[8,3], f32[8,3]) tuple(d, e)\n}\n"),
    "while_body_with_call_and_tuple_parameter": module(
        "x = (f32[4], s32[]) parameter(0)",
        "w = (f32[4], s32[]) while(x), condition=cond, body=body",
        "ROOT g = f32[4] get-tuple-element(w), index=0",
        computations="twice {\n  v = f32[4] parameter(0)\n  ROOT a = f32[4] add(v, v)\n}\n\n"
                     "cond {\n  s = (f32[4], s32[]) parameter(0)\n  i = s32[] get-tuple-element(s), index=1\n"
                     "  n = s32[] constant(9)\n  ROOT lt = pred[] compare(i, n), direction=LT\n}\n\n"
                     "body {\n  s = (f32[4], s32[]) parameter(0)\n  v = f32[4] get-tuple-element(s), index=0\n"
                     "  i = s32[] get-tuple-element(s), index=1\n  c = f32[4] call(v), to_apply=twice\n"
                     "  one = s32[] constant(1)\n  j = s32[] add(i, one)\n  ROOT t = (f32[4], s32[]) tuple(c, j)\n}\n"),
    # ---- called computations with costs of their own, everywhere one is applied
    "reduce_with_exp": module(
        "p = f32[5,7] parameter(0)", "z = f32[] constant(0)",
        "ROOT r = f32[5] reduce(p, z), dimensions={1}, to_apply=exp_add", computations=EXP_ADD),
    "sort_exp_comparator": module(
        "p = f32[6,9] parameter(0)", "ROOT s = f32[6,9] sort(p), dimensions={1}, to_apply=exp_less",
        computations=EXP_LESS),
    "scatter_exp_combiner": module(
        "o = f32[6,4] parameter(0)", "i = s32[3,1] parameter(1)", "u = f32[3,4] parameter(2)",
        "ROOT s = f32[6,4] scatter(o, i, u), update_window_dims={1}, inserted_window_dims={0}, "
        "scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=exp_add", computations=EXP_ADD),
    "select_and_scatter_exp": module(
        "o = f32[8] parameter(0)", "s = f32[4] parameter(1)", "z = f32[] constant(0)",
        "ROOT r = f32[8] select-and-scatter(o, s, z), window={size=2 stride=2}, select=exp_ge, scatter=exp_add",
        computations=EXP_GE + "\n" + EXP_ADD),
    "reduce_window_exp": module(
        "p = f32[9] parameter(0)", "z = f32[] constant(0)",
        "ROOT r = f32[7] reduce-window(p, z), window={size=3}, to_apply=exp_add", computations=EXP_ADD),
    "map_calling": module(
        "p = f32[5] parameter(0)", "ROOT m = f32[5] map(p), dimensions={0}, to_apply=outer",
        computations="inner {\n  x = f32[] parameter(0)\n  ROOT e = f32[] exponential(x)\n}\n\n"
                     "outer {\n  x = f32[] parameter(0)\n  c = f32[] call(x), to_apply=inner\n"
                     "  ROOT a = f32[] add(c, x)\n}\n"),
    "conditional_max_per_property": module(
        "p = pred[] parameter(0)", "x = f32[64] parameter(1)",
        "ROOT c = f32[64] conditional(p, x, x), true_computation=one, false_computation=three",
        computations="one {\n  x = f32[64] parameter(0)\n  ROOT e = f32[64] exponential(x)\n}\n\n"
                     "three {\n  x = f32[64] parameter(0)\n  m = f32[64] multiply(x, x)\n  n = f32[64] negate(m)\n"
                     "  ROOT s = f32[64] sine(n)\n}\n"),
    "while_condition_transcendental": module(
        "x = f32[4] parameter(0)", "w = f32[4] while(x), condition=cond, body=body", "ROOT o = f32[4] copy(w)",
        computations=ADD + "\ncond {\n  s = f32[4] parameter(0)\n  e = f32[4] exponential(s)\n"
                           "  z = f32[] constant(0)\n  r = f32[] reduce(e, z), dimensions={0}, to_apply=add\n"
                           "  b = f32[] constant(100)\n  ROOT lt = pred[] compare(r, b), direction=LT\n}\n\n"
                           "body {\n  s = f32[4] parameter(0)\n  ROOT a = f32[4] add(s, s)\n}\n"),
    "fusion_output_kind_tuple": module(
        "a = f32[4,6] parameter(0)", "w = f32[6,5] parameter(1)",
        "ROOT f = (f32[4,5], f32[4]) fusion(a, w), kind=kOutput, calls=fused",
        computations=ADD + "\nfused {\n  p0 = f32[4,6] parameter(0)\n  p1 = f32[6,5] parameter(1)\n"
                           "  d = f32[4,5] dot(p0, p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
                           "  z = f32[] constant(0)\n  r = f32[4] reduce(d, z), dimensions={1}, to_apply=add\n"
                           "  ROOT t = (f32[4,5], f32[4]) tuple(d, r)\n}\n"),
    # ---- more collectives, asynchronous pairs and odd attributes
    "reduce_scatter_and_all_gather_tuples": module(
        "p = f32[8,3] parameter(0)", "q = f32[8,3] parameter(1)",
        "r = (f32[8,3], f32[8,3]) reduce-scatter(p, q), replica_groups={{0}}, dimensions={0}, to_apply=add",
        "g = (f32[8,3], f32[8,3]) all-gather(p, q), replica_groups={{0}}, dimensions={0}",
        "ROOT t = ((f32[8,3], f32[8,3]), (f32[8,3], f32[8,3])) tuple(r, g)", computations=ADD),
    "collective_permute_start_done": module(
        "p = f32[9] parameter(0)",
        "s = (f32[9], f32[9], u32[], u32[]) collective-permute-start(p), source_target_pairs={{0,0}}",
        "ROOT d = f32[9] collective-permute-done(s)"),
    "all_reduce_start_done": module(
        "p = f32[9] parameter(0)", "s = f32[9] all-reduce-start(p), replica_groups={{0}}, to_apply=add",
        "ROOT d = f32[9] all-reduce-done(s)", computations=ADD),
    "send_and_recv": module(
        "t = token[] after-all()", "p = f32[5] parameter(0)", "s = (f32[5], u32[], token[]) send(p, t), channel_id=1",
        "sd = token[] send-done(s), channel_id=1", "r = (f32[5], u32[], token[]) recv(t), channel_id=2",
        "rd = (f32[5], token[]) recv-done(r), channel_id=2", "ROOT g = f32[5] get-tuple-element(rd), index=0"),
    "custom_call_tuple": module(
        "p = f32[4] parameter(0)", 'c = (f32[4], s8[16]) custom-call(p), custom_call_target="some$kernel"',
        "ROOT g = f32[4] get-tuple-element(c), index=0"),
    "dot_precision_config": module(
        "a = f32[3,4] parameter(0)", "b = f32[4,5] parameter(1)",
        "ROOT d = f32[3,5] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}, "
        "operand_precision={highest,highest}"),
    "iota_s64_and_elided_constant": module(
        "i = s64[20] iota(), iota_dimension=0", "c = s64[20] constant({...})", "ROOT a = s64[20] add(i, c)"),
    "xla_printed_module": """HloModule jit_f, is_scheduled=true, entry_computation_layout={(f32[4,3]{1,0}, f32[3]{0})->f32[4,3]{1,0}}

%fused_add (param_0: f32[4,3], param_1.1: f32[3]) -> f32[4,3] {
  %param_0 = f32[4,3]{1,0} parameter(0)
  %param_1.1 = f32[3]{0} parameter(1)
  %broadcast.3 = f32[4,3]{1,0} broadcast(f32[3]{0} %param_1.1), dimensions={1}, metadata={op_name="jit(f)/add" source_file="a, {b}.py" source_line=3}
  ROOT %add.1 = f32[4,3]{1,0} add(f32[4,3]{1,0} %param_0, f32[4,3]{1,0} %broadcast.3), metadata={op_name="jit(f)/add"}
}

ENTRY %main.5 (Arg_0.1: f32[4,3], Arg_1.2: f32[3]) -> f32[4,3] {
  %Arg_0.1 = f32[4,3]{1,0} parameter(0), metadata={op_name="x"}
  %Arg_1.2 = f32[3]{0} parameter(1), metadata={op_name="b"}
  ROOT %add_fusion = f32[4,3]{1,0} fusion(f32[4,3]{1,0} %Arg_0.1, f32[3]{0} %Arg_1.2), kind=kLoop, calls=%fused_add, metadata={op_name="jit(f)/add"}, backend_config={"outer_dimension_partitions":["2"]}
}
""",  # noqa: E501
}


# ---- the same programs with the result shapes XLA's parser can infer left out

#: The opcodes whose result shape XLA's parser infers when the text leaves it out (hlo_parser.cc, CanInferShape),
#: but ``broadcast``, whose inferred shape puts its ``dimensions`` before the operand's as sizes (another program).
INFERABLE = frozenset("""
    abs add add-dependency after-all atan2 batch-norm-grad batch-norm-inference batch-norm-training call cbrt ceil
    cholesky clamp compare complex concatenate conditional convolution copy cosine count-leading-zeros divide domain
    dot erf exponential exponential-minus-one fft floor gather get-dimension-size get-tuple-element imag is-finite log
    log-plus-one logistic and not or xor map maximum minimum multiply negate opt-barrier pad partition-id popcnt
    power real reduce reduce-window remainder replica-id reverse round-nearest-afz round-nearest-even rsqrt scatter
    select select-and-scatter set-dimension-size shift-left shift-right-arithmetic shift-right-logical sign sine sort
    sqrt subtract tan tanh topk transpose triangular-solve tuple while""".split())
_WRITTEN_SHAPE = re.compile(r"^(\s*(?:ROOT\s+)?\S+ = )(\(.*?\)|[a-z0-9]+\[[^\]]*\](?:\{[^}]*\})?) ([a-z][a-z0-9\-]*)\(",
                            re.MULTILINE)


def without_result_shapes(text: str) -> str:
    """``text`` with the result shape of every instruction whose opcode is ``INFERABLE`` left out."""
    return _WRITTEN_SHAPE.sub(lambda found: found.group(1) + found.group(3) + "(" if found.group(3) in INFERABLE
                              else found.group(0), text)


# ---- programs jax emits

@dataclass(frozen=True)
class JaxProgram:
    """One jnp/lax function and its arguments' shapes and types."""

    name: str
    function: Callable
    arguments: tuple


def jax_functions(seed: int = 25) -> list[JaxProgram]:
    """~40 varied functions of jnp and lax, each with shapes chosen by a seeded random generator (reproducible)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    rng = random.Random(seed)

    def size(low: int = 2, high: int = 9) -> int:
        return rng.randint(low, high)

    def arg(*dims: int, dtype=jnp.float32):
        return jax.ShapeDtypeStruct(dims, dtype)

    m, k, n, b = size(), size(), size(), size(2, 4)
    h, w, c, f = size(5, 12), size(5, 12), size(1, 4), size(1, 5)
    length = size(5, 17)
    scan_length, fori_trips = size(2, 6), size(2, 9)  # drawn here, not when the function is traced
    programs = [
        JaxProgram("einsum_matmul", lambda x, y: jnp.einsum("ik,kj->ij", x, y), (arg(m, k), arg(k, n))),
        JaxProgram("einsum_batched", lambda x, y: jnp.einsum("bik,bkj->bij", x, y), (arg(b, m, k), arg(b, k, n))),
        JaxProgram("einsum_two_contractions", lambda x, y: jnp.einsum("abcd,cdb->ab", x, y),
                   (arg(m, b, k, n), arg(k, n, b))),
        JaxProgram("einsum_outer_and_trace", lambda x, y: jnp.einsum("ii,j->j", x, y), (arg(k, k), arg(n))),
        JaxProgram("einsum_bf16", lambda x, y: jnp.einsum("ij,jk->ik", x, y, preferred_element_type=jnp.float32),
                   (arg(m, k, dtype=jnp.bfloat16), arg(k, n, dtype=jnp.bfloat16))),
        JaxProgram("conv_nhwc_strided", lambda x, y: lax.conv_general_dilated(
            x, y, (2, 1), ((1, 0), (2, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")),
            (arg(b, h, w, c), arg(3, 2, c, f))),
        JaxProgram("conv_odd_dimension_numbers", lambda x, y: lax.conv_general_dilated(
            x, y, (1, 1), "SAME", rhs_dilation=(2, 1), dimension_numbers=("CHWN", "OIHW", "HNWC")),
            (arg(c, h, w, b), arg(f, c, 3, 3))),
        JaxProgram("conv_lhs_dilated_grouped", lambda x, y: lax.conv_general_dilated(
            x, y, (1, 1), ((1, 1), (0, 0)), lhs_dilation=(2, 2), feature_group_count=2,
            dimension_numbers=("NCHW", "OIHW", "NCHW")), (arg(b, 2 * c, h, w), arg(2 * f, c, 2, 2))),
        JaxProgram("conv_1d_bf16", lambda x, y: lax.conv_general_dilated(
            x, y, (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")),
            (arg(b, length, c, dtype=jnp.bfloat16), arg(3, c, f, dtype=jnp.bfloat16))),
        JaxProgram("conv_transpose", lambda x, y: lax.conv_transpose(
            x, y, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")), (arg(1, h, w, c), arg(3, 3, c, f))),
        JaxProgram("cumsum", lambda x: jnp.cumsum(x, axis=1), (arg(m, length),)),
        JaxProgram("cumprod_reverse", lambda x: lax.cumprod(x, axis=0, reverse=True), (arg(length, n),)),
        JaxProgram("cummax_int", lambda x: lax.cummax(x, axis=0), (arg(length, dtype=jnp.int32),)),
        JaxProgram("sort", lambda x: jnp.sort(x, axis=0), (arg(length, n),)),
        JaxProgram("argsort", lambda x: jnp.argsort(x, axis=-1), (arg(m, length),)),
        JaxProgram("sort_key_value", lambda x, y: lax.sort((x, y), num_keys=1),
                   (arg(length), arg(length, dtype=jnp.int32))),
        JaxProgram("argmax", lambda x: jnp.argmax(x, axis=1), (arg(m, length),)),
        JaxProgram("fft", lambda x: jnp.fft.fft(x), (arg(m, length, dtype=jnp.complex64),)),
        JaxProgram("rfft2_irfft2", lambda x: jnp.fft.irfft2(jnp.fft.rfft2(x)), (arg(b, 8, 6),)),
        JaxProgram("scan_matmul", lambda x: lax.scan(lambda carry, _: (jnp.tanh(carry @ x), None), x, None,
                                                     length=scan_length)[0], (arg(k, k),)),
        JaxProgram("fori_loop", lambda x: lax.fori_loop(0, fori_trips, lambda i, v: v * 1.5 + i, x), (arg(m, n),)),
        JaxProgram("while_until", lambda x: lax.while_loop(lambda v: v.sum() < 100.0, lambda v: v * 2.0 + 1.0, x),
                   (arg(n),)),
        JaxProgram("cond", lambda p, x: lax.cond(p, lambda v: jnp.sin(v) @ v.T, lambda v: v @ v.T + 1.0, x),
                   (arg(dtype=jnp.bool_), arg(m, k))),
        JaxProgram("switch", lambda i, x: lax.switch(i, [jnp.exp, jnp.log1p, lambda v: v * v], x),
                   (arg(dtype=jnp.int32), arg(length))),
        JaxProgram("vmap_cond", jax.vmap(lambda p, x: lax.cond(p > 0, jnp.exp, jnp.cos, x)), (arg(b), arg(b, n))),
        JaxProgram("vmap_scan", jax.vmap(lambda x: lax.scan(lambda c, v: (c + v, c * v), 0.0, x)[1]),
                   (arg(b, length),)),
        JaxProgram("grad_mlp", jax.grad(lambda w, x: jnp.sum(jnp.tanh(x @ w) ** 2)), (arg(k, n), arg(m, k))),
        JaxProgram("grad_softmax_xent", jax.grad(
            lambda logits, labels: -jnp.sum(labels * jax.nn.log_softmax(logits))), (arg(m, n), arg(m, n))),
        JaxProgram("value_and_grad_conv", jax.value_and_grad(lambda y, x: jnp.sum(lax.conv_general_dilated(
            x, y, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) ** 2)),
            (arg(3, 3, c, f), arg(1, h, w, c))),
        JaxProgram("softmax_bf16", lambda x: jax.nn.softmax(x, axis=-1), (arg(m, length, dtype=jnp.bfloat16),)),
        JaxProgram("layer_norm", lambda x: (x - x.mean(-1, keepdims=True)) * lax.rsqrt(x.var(-1, keepdims=True) + 1e-5),
                   (arg(b, m, length),)),
        JaxProgram("gather_take", lambda x, i: jnp.take(x, i, axis=0), (arg(length, n), arg(m, dtype=jnp.int32))),
        JaxProgram("scatter_add", lambda x, i, u: x.at[i].add(u),
                   (arg(length, n), arg(m, dtype=jnp.int32), arg(m, n))),
        JaxProgram("dynamic_update_slice", lambda x, u, i: lax.dynamic_update_slice(x, u, (i, 0)),
                   (arg(length, n), arg(2, n), arg(dtype=jnp.int32))),
        JaxProgram("pad_negative_interior", lambda x: lax.pad(x, 0.0, ((-1, 2, 1), (1, -1, 0))), (arg(m, n),)),
        JaxProgram("max_pool", lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                                            "SAME"), (arg(b, h, w, c),)),
        JaxProgram("avg_pool_dilated", lambda x: lax.reduce_window(x, 0.0, lax.add, (2, 2), (1, 1), "VALID",
                                                                    window_dilation=(2, 1)), (arg(h, w),)),
        JaxProgram("integer_bits", lambda x, y: (x >> 3) ^ (y & 7) | lax.population_count(x),
                   (arg(m, n, dtype=jnp.uint32), arg(m, n, dtype=jnp.uint32))),
        JaxProgram("complex_math", lambda z: jnp.abs(jnp.exp(z) * jnp.conj(z)) + jnp.angle(z),
                   (arg(length, dtype=jnp.complex64),)),
        JaxProgram("special_functions", lambda x: jax.scipy.special.erf(x) + jnp.arcsinh(x) + jnp.log1p(x ** 2)
                   + lax.lgamma(x + 3.0), (arg(m, n),)),
        JaxProgram("random_normal", lambda key: jax.random.normal(key, (m, n)), (arg(2, dtype=jnp.uint32),)),
        JaxProgram("top_k", lambda x: lax.top_k(x, 3)[0], (arg(m, length),)),
        JaxProgram("clip_round_sign", lambda x: jnp.sign(jnp.round(jnp.clip(x, -1.5, 2.5))) * jnp.floor(x),
                   (arg(length, m, dtype=jnp.float16),)),
    ]
    return programs
