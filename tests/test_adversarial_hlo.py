"""An adversarial battery (issue #25): HLO programs no rule of jaxcost was tuned on, each costed by jaxcost's recount
(by XLA's rules, summed as XLA sums them: ``Recount.as_xla_sums``) and by the installed XLA (jaxlib 0.10.2's own cost
analysis of the same text, module totals), which must agree exactly, or differ by a named difference asserted to the
byte.

The programs (``tests/hlo_programs.py``): 147 hand-written modules over XLA's opcodes with odd shapes and element
types (every elementwise opcode; variadic reduce and reduce-window; padded, dilated and strided windows;
select-and-scatter; scatter and gather with odd dimensions; pads with negative and interior padding; convolutions with
batch and feature groups, window reversal, lhs and rhs dilation and odd dimension labels; dots with several batch and
contracting dimensions; sorts of several operands; fft; while loops, conditionals, calls and maps; fusions of each kind
with shared, sliced, tuple-typed and updated operands; collectives on one replica, tuples of tuples, dynamic shapes)
and 43 jnp/lax functions with seeded random shapes, each as written (``Lowered.as_text(dialect="hlo")``) and as compiled
(``Compiled.as_text()``): 233 programs. 132 hand-written programs again with every result shape XLA's parser can infer
left out check the shapes jaxcost's parser infers against XLA's.

Named differences, where jaxcost keeps its own rule:

- ``TUPLE_RESULTS``: the installed XLA counts a tuple-shaped result by its arrays, where jaxcost counts its pointer
  table, as older XLA does and XLA's own unit test asserts (``ReduceWindowVariadic``: test_xla_oracle's
  ``VERSION_DIFFERENCES``; DESIGN.md, "XLA's own cost-analysis tests against jaxcost"): variadic reduce and
  reduce-window (argmax), rng-bit-generator, opt-barrier, copy-start, collective-permute-start, recv-done, tuple-shaped
  reduce-scatter and all-gather, topk, batch-norm-training, a copy of a tuple. The difference is the arrays' bytes less
  the table's, for each such result (``tuple_result_bytes``).
- ``WITHOUT_RULES``: cholesky and triangular-solve have no rule in jaxcost (``opcodes.UNKNOWN``; on the CPU jax calls
  LAPACK for them, recounted in ``library_calls``); XLA's HandleCholesky and HandleTriangularSolve estimate them.

Loops: the installed XLA counts a while loop's body and condition once each, whether its trip count is known
(``known_trip_count``) or not, as the rules jaxcost reproduces do; jaxcost's true count runs the body trips times and
the condition trips + 1 times (``test_loops``).

What the battery found in jaxcost, now XLA's: the inverse and hyperbolic functions (acos, acosh, asin, asinh, atanh,
cosh, sinh) are transcendentals; an array of dynamic shape (``f32[<=10]``) carries 4 bytes a dimension for its sizes; a
shape written without a layout has the default one (a transpose can then be a bitcast); and the parser now reads what
XLA's reads: an indented module, an instruction over several lines or several on a line, a computation written inline
(``calls={...}``), a result shape left out (inferred as XLA infers it) and a module's tables of source locations.
"""

from __future__ import annotations

import functools
import re
from textwrap import dedent, indent

import jax
import pytest

from jaxcost.compiler import normalize_cost_analysis
from jaxcost.hlo.loops import loop_trips
from jaxcost.hlo.program import Recount, recount
from jaxcost.hlo.text import Computation, Instruction, parse_module, parse_shape
from tests import test_xla_oracle as oracle
from tests.hlo_programs import HAND_WRITTEN, jax_functions, without_result_shapes
from tests.installed_xla import KEYS, installed_xla, pointer_bytes

pytestmark = pytest.mark.cpu  # the installed XLA is the CPU client's

POINTER_BYTES = pointer_bytes()  # as the installed XLA's CPU client sizes a tuple's pointer table


#: What XLA's total of an instruction sums over: the computations it calls, each once.
SUMMED_OVER = {"call": ("to_apply",), "while": ("body", "condition")}


def tuple_result_bytes(program: Recount, computation: Computation | None = None) -> int:
    """Bytes the installed XLA counts beyond jaxcost's rules for tuple-shaped results: for every instruction of the
    entry and of the computations its calls and loops run (once each, as XLA sums them; a tuple aside, which writes
    its table in both) whose result is a tuple and whose bytes written by XLA's rules are its pointer table, the
    bytes of its arrays less the table's."""
    computation = computation or program.module.entry
    total = 0
    for instruction in computation.instructions:
        for key in SUMMED_OVER.get(instruction.opcode, ()):
            total += tuple_result_bytes(program, program.module.computations[instruction.called(key)[0]])
        shape = instruction.shape
        if shape.is_tuple and instruction.opcode not in ("tuple", *SUMMED_OVER) and \
                program.xla_rules.cost(instruction, computation).bytes_written == shape.bytes:
            total += sum(leaf.bytes for leaf in shape.leaves()) - shape.bytes
    return total


#: The programs with a tuple-shaped result jaxcost sizes by its table, and the bytes that makes (the installed XLA's
#: figure minus jaxcost's): each result's arrays less its table (a pointer an array, ``POINTER_BYTES`` each).
TUPLE_RESULTS = {name: arrays - POINTER_BYTES * pointers for name, (arrays, pointers) in {
    "rng_bit_generator": (16 + 4 * 5 * 3, 2),  # (u64[2], u32[5,3])
    "rng_bit_generator_used": (24 + 4 * 17, 2),  # (u64[3], u32[17])
    "reduce_argmax": (2 * 4 * 9, 2),  # (f32[9], s32[9])
    "reduce_argmax_tuple_root": (2 * 4 * 17, 2),  # (f32[17], s32[17])
    "reduce_three_operands": (12 + 6 + 12, 3),  # (f32[3], bf16[3], s32[3])
    "reduce_window_variadic_argmax": (2 * 4 * 5, 2),  # (f32[5], s32[5])
    "opt_barrier": (24 + 8, 2),  # (f32[6], s32[2])
    "batch_norm_training": (4 * (30 + 3 + 3), 3),  # (f32[2,5,3], f32[3], f32[3])
    "topk": (2 * 4 * 12, 2),  # (f32[4,3], s32[4,3])
    "copy_start_done": (2 * 128 + 4, 3),  # (f32[32], f32[32], u32[])
    "copy_of_a_tuple": (24 + 10, 2),  # (f32[6], s8[10])
    "reduce_scatter_and_all_gather_tuples": (2 * 2 * 96, 4),  # two (f32[8,3], f32[8,3])
    "collective_permute_start_done": (2 * 36 + 2 * 4, 4),  # (f32[9], f32[9], u32[], u32[])
    "send_and_recv": (20, 2),  # recv-done's (f32[5], token[]); send's and recv's three arrays make their table's
}.items()}
#: The programs jax emits with such a result (their shapes are drawn): argmax's variadic reduce and top_k's topk, as
#: written (compiled, the reduce is fused and top_k a TopK custom call).
JAX_TUPLE_RESULTS = {"argmax/written", "top_k/written"}

WITHOUT_SHAPES_SUFFIX = "/without_shapes"

#: XLA's estimates for the opcodes jaxcost has no rule for (``opcodes.UNKNOWN``: costed by XLA's default, no flops),
#: as the installed XLA's figure minus jaxcost's.
WITHOUT_RULES = {
    "cholesky_and_triangular_solve": {
        # cholesky of f32[6,6] (144 bytes): XLA n * elements / 3 flops, half the matrix read and half written; the
        # default reads and writes it all. triangular-solve of a f32[6,6], b f32[6,2] (48 bytes): XLA 2 * n *
        # elements(b) flops, the result, half of a and all of b; the default all of a, b and the result.
        "flops": 6 * 36 // 3 + 2 * 6 * 12,
        "bytes_accessed": (144 // 2 + 144 // 2) - (144 + 144) + (48 + 144 // 2 + 48) - (144 + 48 + 48),
    },
}


def expected_difference(name: str, program: Recount) -> dict[str, int]:
    """The installed XLA's figures minus jaxcost's for a program (a hand-written one's name stands for its text
    without result shapes too), by the named differences: none, zero. A program has a tuple-shaped result jaxcost
    sizes by its table exactly when it is named for it, and, hand-written, makes the bytes named."""
    named = name.removesuffix(WITHOUT_SHAPES_SUFFIX)
    tuples = tuple_result_bytes(program)
    assert bool(tuples) == (named in TUPLE_RESULTS or named in JAX_TUPLE_RESULTS), (name, tuples)
    assert tuples == TUPLE_RESULTS.get(named, tuples)
    difference = dict(WITHOUT_RULES.get(named, {}))
    difference["bytes_accessed"] = difference.get("bytes_accessed", 0) + tuples
    return difference


def assert_costs_as_the_installed_xla(name: str, text: str) -> dict[str, float]:
    """jaxcost's totals by XLA's rules, plus the named differences, are the installed XLA's; returns XLA's."""
    program = recount(text, POINTER_BYTES)
    witness = installed_xla(text)
    difference = expected_difference(name, program)
    assert witness == {key: program.as_xla_sums(key) + difference.get(key, 0) for key in KEYS}
    return witness


@pytest.mark.parametrize("name", list(HAND_WRITTEN))
def test_hand_written_program(name):
    assert_costs_as_the_installed_xla(name, HAND_WRITTEN[name])


# ---- programs jax emits, as written and as compiled

JAX_PROGRAMS = {program.name: program for program in jax_functions()}


@functools.cache
def lowered_and_compiled(name: str) -> dict[str, tuple[str, dict]]:
    """The program's HLO text and JAX's cost analysis of it, as written and as compiled."""
    program = JAX_PROGRAMS[name]
    lowered = jax.jit(program.function).lower(*program.arguments)
    compiled = lowered.compile()
    return {"written": (lowered.as_text(dialect="hlo"), lowered.cost_analysis()),
            "compiled": (compiled.as_text(), compiled.cost_analysis())}


@pytest.mark.parametrize("stage", ["written", "compiled"])
@pytest.mark.parametrize("name", list(JAX_PROGRAMS))
def test_jax_program(name, stage):
    """jaxcost and the installed XLA cost the text alike; and the installed XLA's figures for the text are JAX's own
    ``cost_analysis()`` of the lowered or compiled program (the witness is what JAX reports)."""
    text, reported = lowered_and_compiled(name)[stage]
    witness = assert_costs_as_the_installed_xla(f"{name}/{stage}", text)
    reported = normalize_cost_analysis(reported)
    assert witness == {key: reported.get(key.replace("_", " "), 0.0) for key in KEYS}


def test_top_k_on_the_cpu_is_a_library_call_xla_counts_as_minus_one():
    """Compiled on the CPU, top_k is a TopK custom call: XLA's -1, summed into its totals (reproduced above); the true
    count recounts it as a compare of every element with each of the k kept (library_calls)."""
    text = lowered_and_compiled("top_k")["compiled"][0]
    rows, length = JAX_PROGRAMS["top_k"].arguments[0].shape
    program = recount(text, POINTER_BYTES)
    (call,) = [op for op in program.ops if op.opcode == "custom-call"]
    (xla_call,) = [op for op in program.xla_ops if op.opcode == "custom-call"]
    assert (call.cost.flops, xla_call.cost.flops) == (rows * length * 3, -1)


# ---- loops: XLA counts a body and a condition once each

def test_loops():
    """The installed XLA's flops for a loop are its body's and its condition's, once each, known trip count or not;
    the true count runs the body ``trips`` times and the condition ``trips + 1`` times."""
    expected = {  # program: (the installed XLA's flops, transcendentals; the true count's flops, transcendentals)
        # 16x16 matmul (8192) and the counter's add per trip, a compare per test; known_trip_count 6
        "while_known_trip_count": ((8192 + 1) + 1, 0, 6 * (8192 + 1) + 7 * 1, 0),
        # the counter runs from 3 below 11: 8 trips of an add and an exponential of f32[9]
        "while_counted_from_three": (1 + 1, 9, 8 * 1 + 9 * 1, 8 * 9),
        # a conditional per trip costs its costliest branch (a fusion: 12 multiplies, 12 exponentials); 5 trips
        "while_with_fusion_and_conditional_body": ((2 + 12) + 1, 12, 5 * (2 + 12) + 6 * 1, 5 * 12),
        # 3 outer trips of an add and a 4-trip inner loop of a 6x6 matmul (432) and an add
        "nested_while": ((1 + (432 + 1) + 1) + 1, 0, 3 * (1 + 4 * (432 + 1) + 5 * 1) + 4 * 1, 0),
        # trip counts jaxcost cannot know (data-dependent; a loop state from a parameter): one trip counted, and said
        "while_data_dependent": (4 + 3 + 1 + 4, 0, 4 + 3 + 1 + 4, 0),
        "while_body_with_call_and_tuple_parameter": (4 + 1 + 1, 0, 4 + 1 + 1, 0),
    }
    for name, (xla_flops, xla_transcendentals, true_flops, true_transcendentals) in expected.items():
        program = recount(HAND_WRITTEN[name], POINTER_BYTES)
        witness = installed_xla(HAND_WRITTEN[name])
        assert (witness["flops"], witness["transcendentals"]) == (xla_flops, xla_transcendentals), name
        assert (program.flops, program.transcendentals) == (true_flops, true_transcendentals), name
        assert bool(program.unknown) == (xla_flops == true_flops), name


def loops_run(program: Recount, computation: Computation) -> list[tuple[Instruction, Computation]]:
    """The while loops a computation runs, itself or through the calls it makes (XLA:CPU wraps a loop in a call),
    each with the computation that holds it."""
    found = []
    for instruction in computation.instructions:
        if instruction.opcode == "while":
            found.append((instruction, computation))
        elif instruction.opcode == "call":
            found += loops_run(program, program.module.computations[instruction.called("to_apply")[0]])
    return found


@pytest.mark.parametrize("stage", ["written", "compiled"])
@pytest.mark.parametrize("name", ["scan_matmul", "fori_loop", "vmap_scan", "while_until"])
def test_loops_jax_writes(name, stage):
    """Each loop of a jax program: by XLA's rules (the installed XLA's, reproduced above) its body and its condition
    once; the true count adds the body trips - 1 more times and the condition trips more times, where the trip count
    is known (scan and fori_loop); a while_loop's is not, and is said so."""
    program = recount(lowered_and_compiled(name)[stage][0], POINTER_BYTES)
    loops = loops_run(program, program.module.entry)
    assert len(loops) == 1
    for key in KEYS:
        more = 0
        for loop, computation in loops:
            body, condition = (getattr(program.xla_rules.computation_cost(loop.called(part)[0]), key)
                               for part in ("body", "condition"))
            assert getattr(program.xla_rules.cost(loop, computation), key) == body + condition
            trips = loop_trips(program.module, loop, computation)
            assert (trips is None) == (name == "while_until") == bool(program.unknown)
            more += 0 if trips is None else (trips - 1) * body + trips * condition
        assert getattr(program, key) - program.xla_rule_total(key) == more, key


# ---- what XLA's parser reads: result shapes left out, indented modules, lines broken or shared, inline computations

#: Hand-written programs whose text without its inferable shapes XLA's own parser rejects: its shape inference wants
#: two parameters of a variadic reduce-window's reducer (four here), and an array operand of an opt-barrier.
XLA_CANNOT_INFER = {"reduce_window_variadic_argmax", "opt_barrier"}
WITHOUT_SHAPES = [name for name, text in HAND_WRITTEN.items()
                  if without_result_shapes(text) != text and name not in XLA_CANNOT_INFER]


def _shapes(module_text: str) -> dict[tuple[str, str], tuple[str, tuple[int, ...] | None]]:
    """Each instruction's shape (and a transpose's layout) by computation and name; XLA uniquifies a name that
    repeats across computations (``r`` becomes ``r.1``): the suffix is dropped."""
    shapes = {}
    for computation in parse_module(module_text, POINTER_BYTES).computations.values():
        for instruction in computation.instructions:
            layout = instruction.shape.minor_to_major if instruction.opcode == "transpose" else None
            name = re.sub(r"\.\d+$", "", instruction.name)
            shapes[(computation.name, name)] = (str(instruction.shape), layout)
    return shapes


@pytest.mark.parametrize("name", WITHOUT_SHAPES)
def test_result_shapes_left_out_are_inferred_as_xla_infers_them(name):
    """Every shape jaxcost infers is the one XLA's parser infers (read from the module XLA prints back), a transpose's
    layout too (XLA lays its result out so that it is a bitcast); and the costs agree."""
    from jaxlib import _hlo

    text = without_result_shapes(HAND_WRITTEN[name])
    printed = _hlo.hlo_module_from_text(text).to_string()
    inferred, xla = _shapes(text), _shapes(printed)
    computations = {computation for computation, _ in xla}
    compared = {where: shape for where, shape in inferred.items() if where[0] in computations}
    assert compared == {where: xla[where] for where in compared}
    assert_costs_as_the_installed_xla(name + WITHOUT_SHAPES_SUFFIX, text)


def test_without_shapes_covers_the_battery():
    assert (len(WITHOUT_SHAPES), len(XLA_CANNOT_INFER)) == (132, 2)


def test_a_shape_xla_cannot_infer_must_be_written():
    """convert's result type is not in its operand: XLA's parser rejects it left out, and so does jaxcost's."""
    from jaxlib import _hlo

    text = "HloModule m\n\nENTRY e {\n  p = f32[3] parameter(0)\n  ROOT c = convert(p)\n}\n"
    with pytest.raises(Exception, match="cannot infer shape"):
        _hlo.hlo_module_from_text(text)
    with pytest.raises(ValueError, match="the result shape of convert must be written"):
        parse_module(text)


def test_a_broadcast_left_unshaped_puts_its_dimensions_first():
    """XLA's InferBroadcastShape reads a broadcast's ``dimensions`` as sizes put before the operand's."""
    text = dedent("""\
        HloModule m

        ENTRY e {
          p = f32[3] parameter(0)
          ROOT b = broadcast(p), dimensions={2,5}
        }
        """)
    assert str(parse_module(text).entry.root.shape) == "f32[2,5,3]"
    assert installed_xla(text)["bytes_accessed"] == recount(text, POINTER_BYTES).as_xla_sums("bytes_accessed") == \
        4 * 3 + 4 * 2 * 5 * 3


PLAIN = dedent("""\
    HloModule m

    add {
      x = f32[] parameter(0)
      y = f32[] parameter(1)
      ROOT r = f32[] add(x, y)
    }

    ENTRY e {
      p = f32[4,5] parameter(0)
      q = f32[5,6] parameter(1)
      z = f32[] constant(0)
      d = f32[4,6] dot(p, q), lhs_contracting_dims={1}, rhs_contracting_dims={0}
      e = f32[4,6] exponential(d)
      ROOT s = f32[4] reduce(e, z), dimensions={1}, to_apply=add
    }
    """)
RESPELLED = {
    "indented": indent(PLAIN, "    "),
    "lines_broken": dedent("""\
        HloModule m

        add {
          x = f32[] parameter(0)
          y = f32[] parameter(1)
          ROOT r = f32[] add(x, y)
        }

        ENTRY e {
          p = f32[4,5] parameter(0)
          q = f32[5,6] parameter(1)
          z = f32[] constant(0)
          d = f32[4,6] dot(p, q),
              lhs_contracting_dims={1}
              , rhs_contracting_dims={0}
          e = f32[4,6]
              exponential(d)
          ROOT s = f32[4] reduce(e,
                                 z), dimensions={1}, to_apply=
            add
        }
        """),
    "lines_shared": dedent("""\
        HloModule m

        add { x = f32[] parameter(0) y = f32[] parameter(1) ROOT r = f32[] add(x, y) }

        ENTRY e { p = f32[4,5] parameter(0) q = f32[5,6] parameter(1) z = f32[] constant(0)
          d = f32[4,6] dot(p, q), lhs_contracting_dims={1}, rhs_contracting_dims={0} e = f32[4,6] exponential(d)
          ROOT s = f32[4] reduce(e, z), dimensions={1}, to_apply=add }
        """),
    "inline": dedent("""\
        HloModule m

        ENTRY e {
          p = f32[4,5] parameter(0)
          q = f32[5,6] parameter(1)
          z = f32[] constant(0)
          d = f32[4,6] dot(p, q), lhs_contracting_dims={1}, rhs_contracting_dims={0}
          e = f32[4,6] exponential(d)
          ROOT s = f32[4] reduce(e, z), dimensions={1}, to_apply={
            x = f32[] parameter(0)
            y = f32[] parameter(1)
            ROOT r = f32[] add(x, y)
          }
        }
        """),
    "inline_on_one_line": PLAIN.replace("to_apply=add", "to_apply={ x = f32[] parameter(0) y = f32[] parameter(1) "
                                                         "ROOT r = f32[] add(x, y) }").replace(
        "add {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT r = f32[] add(x, y)\n}\n", ""),
    "shapes_left_out": PLAIN.replace("d = f32[4,6] dot", "d = dot").replace("e = f32[4,6] exponential",
                                                                             "e = exponential").replace(
        "ROOT s = f32[4] reduce", "ROOT s = reduce"),
    "commented": PLAIN.replace("dot(p, q)", "dot(p, /*index=1*/q)"),
}


def _structure(text: str) -> list[tuple]:
    """The entry's instructions as jaxcost reads them: names, shapes, opcodes, operands and attributes, with the
    computation each calls read through its name (named or inline)."""
    module = parse_module(text, POINTER_BYTES)
    called = {name: [(i.name, str(i.shape), i.opcode, i.operands) for i in computation.instructions]
              for name, computation in module.computations.items()}
    return [(i.name, str(i.shape), i.opcode, i.operands, i.is_root,
             {key: (called[value] if key == "to_apply" else value) for key, value in i.attributes.items()})
            for i in module.entry.instructions]


@pytest.mark.parametrize("spelling", list(RESPELLED))
def test_text_xla_reads_jaxcost_reads(spelling):
    """Each respelling of one program: XLA's parser accepts it, jaxcost's reads the same instructions, and both
    cost it as the plain text."""
    text = RESPELLED[spelling]
    assert text != PLAIN
    assert _structure(text) == _structure(PLAIN)
    plain = recount(PLAIN, POINTER_BYTES)
    respelled = recount(text, POINTER_BYTES)
    assert installed_xla(text) == installed_xla(PLAIN) == {key: plain.as_xla_sums(key) for key in KEYS}
    assert {key: respelled.as_xla_sums(key) for key in KEYS} == {key: plain.as_xla_sums(key) for key in KEYS}


def test_xlas_own_test_texts_as_they_are_spelled():
    """The texts of XLA's own cost-analysis tests that test_xla_oracle respells for the parser jaxcost had (inline
    computations and typed operands; a tuple's shape left out and a call over several lines; indented modules),
    read as XLA's tests spell them: jaxcost costs each as its respelling, instruction by instruction."""
    pairs = [(oracle.original_nested_fusion(divided), oracle.nested_fusion_multiple_users(divided))
             for divided in ("tmp_1", "tmp_0")]
    pairs.append((oracle.ORIGINAL_CONV_CUSTOM_CALL, oracle.CONV_CUSTOM_CALL))
    pairs += [(indent(case.hlo, "    "), case.hlo) for case in oracle.ALL_CASES]
    for original, respelled in pairs:
        first, second = recount(original, oracle.POINTER_SIZE), recount(respelled, oracle.POINTER_SIZE)
        for ops in ("ops", "xla_ops"):
            assert [(op.name, op.cost.flops, op.cost.transcendentals, op.cost.bytes_accessed)
                    for op in getattr(first, ops)] == [(op.name, op.cost.flops, op.cost.transcendentals,
                                                        op.cost.bytes_accessed) for op in getattr(second, ops)]


def test_tables_of_source_locations_are_skipped():
    """A module lowered with ``debug_info`` carries tables of file names and stack frames before its computations."""
    text = jax.jit(lambda x: x * 2.0).lower(jax.ShapeDtypeStruct((3,), "float32")).as_text(dialect="hlo",
                                                                                             debug_info=True)
    assert "FileLocations" in text
    program = recount(text, POINTER_BYTES)
    assert installed_xla(text) == {key: program.as_xla_sums(key) for key in KEYS}
    assert [op.opcode for op in program.ops if op.opcode != "parameter"] == ["constant", "broadcast", "multiply"]


def test_a_dynamic_shape_carries_its_sizes():
    """XLA:CPU and XLA:GPU size an array of dynamic shape with an s32 for each of its dimensions."""
    assert parse_shape("f32[<=10]{0}").bytes == 4 * 10 + 4
    assert parse_shape("s8[<=3,5]{1,0}").bytes == 3 * 5 + 2 * 4
    assert parse_shape("f32[3,5]{1,0}").bytes == 4 * 15


def test_the_battery():
    """The programs the battery holds, and how many differ from the installed XLA by a named difference."""
    assert (len(HAND_WRITTEN), len(JAX_PROGRAMS)) == (147, 43)
    assert (len(TUPLE_RESULTS), len(JAX_TUPLE_RESULTS), len(WITHOUT_RULES)) == (14, 2, 1)
