"""TPU targets compiled on this machine (libtpu, the tpu extra): tiled layouts and their padding read from the
HLO, XLA:TPU's flops, transcendentals and bytes reproduced on four generations for the layer suite and the zoo
(stored programs, replayed without libtpu), the per-layer table of a zoo model for a v5e slice; and without
libtpu, one line that says what to install."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcost as jc
from jaxcost import targets
from jaxcost.cli import main
from jaxcost.compiler import CompilerCost, replayed
from jaxcost.hlo.text import Sizes, parse_shape
from jaxcost.models import ZOO

HAS_LIBTPU = importlib.util.find_spec("libtpu") is not None
needs_libtpu = pytest.mark.skipif(not HAS_LIBTPU, reason="libtpu is not installed (the tpu extra, in the test extra)")
GENERATIONS = {"tpu:v5e:2x2": "TPU v5 lite", "tpu:v5p:2x2x1": "TPU v5", "tpu:v6e:2x2": "TPU v6 lite",
               "tpu:v4:2x2x1": "TPU v4"}


@pytest.mark.parametrize("text, stored_bytes, padding_bytes", [
    ("bf16[64,3]{0,1:T(4,128)(2,1)}", 4 * 128 * 2, 4 * 128 * 2 - 64 * 3 * 2),  # 3 -> 4 rows, 64 -> 128 lanes
    ("f32[1000,100]{0,1:T(8,128)}", 104 * 1024 * 4, (104 * 1024 - 100_000) * 4),
    ("f32[2,3,17,200]{3,0,2,1:T(2,128)}", 3 * 17 * 2 * 256 * 4, (3 * 17 * 2 * 256 - 20_400) * 4),
    ("s8[130,5]{0,1:T(8,128)(4,1)}", 8 * 256, 8 * 256 - 650),
    ("f32[]{:T(128)}", 512, 508),  # a scalar takes a whole tile
    ("bf16[1024,1024]{1,0:T(8,128)(2,1)S(1)}", 2**21, 0),  # divides the tile; in memory space 1
    ("f32[8,3]{1,0}", 96, 0),  # no tiles: the CPU's and GPU's layouts
])
def test_tiled_layouts_pad_to_whole_tiles(text, stored_bytes, padding_bytes):
    """The first tile pads the minor dimensions, in the layout's order; later tiles subdivide it."""
    shape = parse_shape(text)
    assert (shape.bytes, shape.padding_bytes) == (stored_bytes, padding_bytes)


FIXTURES = Path(__file__).parent / "fixtures" / "tpu"
#: Every program bench/capture_tpu_programs.py compiled, by generation: the layer suite and the zoo, forward and
#: training, and a few small programs the tests below name.
STORED = targets.stored_programs(FIXTURES)


def _stored(name: str, target: str) -> dict:
    return next(entry for entry in STORED if entry["name"] == name and entry["target"] == target)


def test_every_generation_and_program_is_stored():
    """Four generations, each with the layer suite and the zoo forward and as a training step."""
    assert {entry["target"] for entry in STORED} == set(GENERATIONS)
    for target in GENERATIONS:
        modes = {(entry["name"], entry["mode"]) for entry in STORED if entry["target"] == target}
        for model in ZOO:
            assert {(f"{model} bf16", "forward"), (f"{model} bf16", "train")} <= modes
        assert len(modes) == len(STORED) // len(GENERATIONS) == 4 + 2 * 16 + 2 * len(ZOO)


@pytest.mark.parametrize("entry", STORED, ids=lambda entry: f"{entry['target']} {entry['mode']} {entry['name']}")
def test_stored_tpu_programs_replayed(entry):
    """Programs compiled for TPU slices, replayed without libtpu: XLA:TPU's flops, transcendentals and bytes
    exactly, instruction by instruction summed as XLA sums them."""
    compiler = replayed(entry)
    assert compiler.flops == compiler.xla_flops or compiler.xla_reproduced("flops")
    for key in ("flops", "transcendentals", "bytes_accessed"):
        assert compiler.xla_reproduced(key), key
    assert not compiler.unknown


def _op(compiler: CompilerCost, opcode: str):
    return next(op for op in compiler.recount.ops if op.opcode == opcode)


@pytest.mark.parametrize("target, table_bytes", [("tpu:v5e:2x2", 512), ("tpu:v4:2x2x1", 512),
                                                 ("tpu:v5p:2x2x1", 32), ("tpu:v6e:2x2", 32)])
def test_a_cross_program_prefetch(target, table_bytes):
    """A matmul's operand prefetched into on-chip memory: copy-start reads it and writes both copies and a 4 KiB
    sync flag; copy-done reads the tuple's table (4 B a pointer, rounded up to 512 B or 32 B by generation) and
    writes the on-chip copy."""
    compiler = replayed(_stored("matmul 1024 bf16", target))
    start, done = _op(compiler, "copy-start"), _op(compiler, "copy-done")
    operand = 1024 * 1024 * 2
    assert (start.cost.bytes_read, start.cost.bytes_written) == ([operand], 2 * operand + 4096)
    assert (done.cost.bytes_read, done.cost.bytes_written) == ([table_bytes], operand)


def test_an_embedding_lookup_reads_whole_tiles():
    """jnp.take of 1024 rows of a 50257x768 bfloat16 table on a v5e: the gather fusion reads each 768-wide row in
    whole (8, 128) tiles, eight rows' worth (12.6 MB for 1.6 MB of rows), as XLA:TPU counts it."""
    compiler = replayed(_stored("embedding lookup 50257x768 bf16", "tpu:v5e:2x2"))
    gather = next(op for op in compiler.recount.ops if op.name.startswith("gather_fusion"))
    rows = 1024 * 768 * 2
    assert gather.cost.bytes_read == [8 * rows, 4096] and gather.cost.bytes_written == rows
    assert compiler.xla_reproduced("bytes_accessed")


def test_a_split_layout_is_sized_as_its_first_piece():
    """XLA:TPU splits some on-chip arrays (``SC(0:1024)``: dimension 0 at 1024) and sizes them as the first
    piece: a batch norm's 1280 scales in on-chip memory count 4 KiB, not 8."""
    split = parse_shape("f32[1280]{0:T(1024)S(1)SC(0:1024)}")
    assert (split.split, split.memory_space, split.bytes, split.padding_bytes) == ((0, 1024), 1, 4096, 0)
    assert parse_shape("f32[1280]{0:T(1024)S(1)}").bytes == 8192


def test_sizes_by_generation():
    """A tuple's table: 4 B a pointer, rounded up to 512 B on v4 and v5e and to 32 B on v5p and v6e; a scalar
    without tiles (in scalar memory, a sync flag, a constant): 4 KiB."""
    sizes = {kind: targets.sizes(kind) for kind in GENERATIONS.values()}
    assert sizes == {"TPU v5 lite": Sizes(4, 512, 4096), "TPU v4": Sizes(4, 512, 4096),
                     "TPU v5": Sizes(4, 32, 4096), "TPU v6 lite": Sizes(4, 32, 4096)}
    for elements, v5e, v6e in ((3, 512, 32), (9, 512, 64), (100, 512, 416), (200, 1024, 800)):
        text = "(" + ", ".join(["f32[8]{0:T(128)}"] * elements) + ")"
        v5e_table, v6e_table = parse_shape(text, sizes["TPU v5 lite"]), parse_shape(text, sizes["TPU v6 lite"])
        assert (v5e_table.bytes, v6e_table.bytes) == (v5e, v6e)
    for untiled in ("u32[]{:S(2)}", "u32[]{:S(6)}", "u32[]"):
        assert parse_shape(untiled, sizes["TPU v5"]).bytes == 4096 and parse_shape(untiled).bytes == 4
    assert parse_shape("bf16[2,15,15,3]{3,2,1,0}", sizes["TPU v5"]).bytes == 2700  # an untiled array: its own size
    assert parse_shape("u32[]{:T(128)S(6)}", sizes["TPU v5"]).bytes == 512  # a tiled scalar: its tile


@needs_libtpu
@pytest.mark.parametrize("name", sorted(GENERATIONS))
def test_tuple_tables_as_the_compiler_counts_them(name):
    """The table sizes above, checked against XLA:TPU itself: a program returning nine arrays."""
    compiler = jc.compiled(lambda x: tuple(x * i for i in range(1, 10)), jax.ShapeDtypeStruct((8, 128), jnp.float32),
                           target=name)
    assert compiler.xla_reproduced("bytes_accessed")


@pytest.mark.parametrize("name, message", [
    ("gpu:h100", "target: must be tpu:GENERATION:TOPOLOGY"),
    ("tpu", "target: must be tpu:GENERATION:TOPOLOGY"),
])
def test_a_malformed_target_is_one_line(name, message, capsys):
    assert main(["layer", "dense", "--input", "2,8", "--features", "4", "--target", name]) == 2
    assert capsys.readouterr().err.strip().startswith(f"jaxcost: error: {message}")


def test_a_target_cannot_be_timed():
    """benchmark runs programs on this machine: for a target it says where the counts are instead."""
    from jaxcost.measure.timing import benchmark

    with pytest.raises(ValueError, match=r"^target: tpu:v5e:2x2 is compiled here and nothing runs there"):
        benchmark(jc.dense((2, 8), 4), target="tpu:v5e:2x2")


def test_without_libtpu_a_tpu_target_says_what_to_install(monkeypatch, capsys):
    """What JAX raises when libtpu is missing becomes one line naming the extra; exit status 2."""
    from jax.experimental import topologies

    def missing(**_):
        raise RuntimeError("JAX TPU support not installed; cannot generate TPU topology.")

    monkeypatch.setattr(topologies, "get_topology_desc", missing)
    targets.target.cache_clear()
    try:
        assert main(["model", "mobilenet_v2", "--target", "tpu:v5e:2x2"]) == 2
        error = capsys.readouterr().err.strip()
        assert error == ("jaxcost: error: target: compiling for tpu:v5e:2x2 needs libtpu: pip install "
                         "'jaxcost[tpu]' (it brings JAX's matching libtpu, about 140 MB)")
        with pytest.raises(ValueError, match=r"^target: compiling for tpu:v6e:2x2 needs libtpu"):
            jc.compiled(jc.dense((2, 8), 4), target="tpu:v6e:2x2")
    finally:
        targets.target.cache_clear()


@needs_libtpu
@pytest.mark.parametrize("name", sorted(GENERATIONS))
def test_a_convolution_compiled_for_each_generation(name):
    """A 3x3 convolution, 8x56x56x64 -> 128 in bfloat16, no bias: XLA:TPU's flops are the exact taps (with
    the padding taps skipped), and its bytes are reproduced exactly once the layouts' tiles are read."""
    spec = jc.Conv((8, 56, 56, 64), 128, (3, 3), padding="SAME", use_bias=False, dtype="bfloat16")
    compiler = jc.compiled(spec, target=name)
    assert (compiler.platform, compiler.device_kind) == ("tpu", GENERATIONS[name])
    assert compiler.flops == 2 * jc.analytic(spec).macs == compiler.xla_flops
    assert compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")


@needs_libtpu
def test_a_v4_device_is_one_of_its_chips_two_tensorcores_and_has_half_its_peaks():
    """libtpu's v4 topology shows each chip's two TensorCores as devices of their own (no megacore), v5e's, v5p's and
    v6e's one device a chip; a program compiled for the target runs on one device, so the chip's peaks (the table's)
    are shared by the devices on it: the step-time model of a sharded v4 program holds it against half the chip."""
    import argparse

    from jaxcost import commands
    from jaxcost.measure.hardware import lookup

    v4, chip = targets.target("tpu:v4:2x2x1"), lookup("TPU v4")
    assert (len(v4.devices), v4.devices_per_chip) == (8, 2)
    assert v4.peaks.flops_per_second == {key: value / 2 for key, value in chip.flops_per_second.items()}
    assert v4.peaks.peak("bf16") == 137.5e12 and v4.peaks.bytes_per_second == chip.bytes_per_second / 2 == 0.6e12
    assert "2 devices a chip" in v4.peaks.name and "TensorCore" in v4.peaks.source
    for name in ("tpu:v5e:2x2", "tpu:v5p:2x2x1", "tpu:v6e:2x2"):
        one = targets.target(name)
        assert one.devices_per_chip == 1 and one.peaks == lookup(one.device_kind)
    options = argparse.Namespace(hardware=None, target="tpu:v4:2x2x1", mesh="data=8", json=False, csv=False,
                                 dtype="bfloat16")
    peaks, _, precision = commands._hardware(options)
    assert (peaks, precision) == (v4.peaks, "bf16")


@needs_libtpu
def test_padding_is_counted_where_tiles_do_not_fit():
    """f32[1000,100] + 1 on a v5e: laid out with 1000 on the lanes, 100 rows padded to 104 and 1000 lanes to
    1024: the read and the write each move 425,984 B, 25,984 B of it padding; XLA's figure to the byte."""
    compiler = jc.compiled(lambda a: a + 1, jax.ShapeDtypeStruct((1000, 100), jnp.float32), target="tpu:v5e:2x2")
    assert compiler.bytes_accessed == int(compiler.xla_bytes_accessed) == 2 * 104 * 1024 * 4
    assert [padding for _, _, padding in compiler.recount.padding] == [(104 * 1024 - 100_000) * 4] * 2  # in and out
    assert "layout padding: the tiles add" in str(compiler)


def test_compare_itemizes_the_padding_of_arguments_and_results():
    """A 3x3 convolution on 64 channels for a v5e, replayed: its input's 64 channels fill half of the 128 lanes,
    which is the layout padding item; the kernel's prefetch into on-chip memory is itemized; with them the
    bytes are explained to the byte."""
    entry = _stored("conv3x3 8x56x56x64->128 bf16", "tpu:v5e:2x2")
    from jaxcost.comparison import compare_spec

    comparison = compare_spec(jc.Conv((8, 56, 56, 64), 128, (3, 3), padding="SAME", use_bias=False,
                                      dtype="bfloat16"), compiler=replayed(entry))
    (padding,) = [delta for delta in comparison.deltas if delta.kind == "padding"]
    assert padding.bytes == 8 * 56 * 56 * 64 * 2  # the input doubled to 128 lanes (bfloat16)
    kernel = 3 * 3 * 64 * 128 * 2
    prefetch = [delta.bytes for delta in comparison.deltas if delta.kind == "prefetch"]
    # copy-start: both copies and the 4 KiB flag, copy-done's 512 B table; the on-chip copy written and read
    assert prefetch == [2 * kernel + 4096 + 512, 2 * kernel]
    assert padding.description.startswith("layout padding: tiles pad the arguments and results")
    assert comparison.bytes_remainder == 0 and comparison.flops_remainder == 0


@needs_libtpu
def test_a_sharded_matmul_over_the_slice():
    """A matmul sharded by rows over a v5e 2x2 slice's four chips: each chip multiplies a quarter."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = targets.target("tpu:v5e:2x2").devices
    mesh = Mesh(list(devices), ("data",))
    rows = NamedSharding(mesh, PartitionSpec("data", None))
    whole = NamedSharding(mesh, PartitionSpec())
    a = jax.ShapeDtypeStruct((1024, 512), jnp.bfloat16, sharding=rows)
    b = jax.ShapeDtypeStruct((512, 256), jnp.bfloat16, sharding=whole)
    compiler = jc.compiled(jax.jit(lambda a, b: a @ b), a, b, target="tpu:v5e:2x2")
    assert compiler.devices == 4 and compiler.flops == 2 * 256 * 512 * 256 == compiler.xla_flops


@needs_libtpu
def test_the_zoo_on_a_v5e_slice_from_the_command_line():
    """The per-layer table of MobileNetV2 compiled for a v5e slice, with the tiles' padding said."""
    result = subprocess.run([sys.executable, "-m", "jaxcost.cli", "model", "mobilenet_v2", "--resolution", "64",
                             "--target", "tpu:v5e:2x2"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"}, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "target: tpu:v5e:2x2: 4 x TPU v5 lite (compiled here, not run)" in result.stdout
    assert "block0/depthwise/Conv_0" in result.stdout and "layout padding: the tiles add" in result.stdout


def test_unknown_instructions_are_said_once_per_reason():
    """A TPU program has several async slices XLA's opcode list does not have: one line for them all."""
    from jaxcost.reports.program import grouped

    names = ["slice-start (slice-start: not in XLA's opcode list)", "slice-start.1 (slice-start: not in XLA's "
             "opcode list)", "custom-call (custom-call ConcatBitcast)"]
    assert grouped(names) == ["slice-start x2 (slice-start: not in XLA's opcode list)",
                              "custom-call (custom-call ConcatBitcast)"]


def _shard_mapped(function, spec_in, spec_out, shape):
    """``function`` under shard_map over a v5e 2x2 slice's four chips (axis "x"), compiled for it."""
    from jax.sharding import Mesh, NamedSharding

    mesh = Mesh(list(targets.target("tpu:v5e:2x2").devices), ("x",))
    mapped = jax.shard_map(function, mesh=mesh, in_specs=spec_in, out_specs=spec_out)
    return jc.compiled(mapped, jax.ShapeDtypeStruct(shape, jnp.float32, sharding=NamedSharding(mesh, spec_in)),
                       target="tpu:v5e:2x2")


BATTERY = {
    "top_k": (lambda x: jax.lax.top_k(x, 5), [((16, 1000), jnp.float32)]),
    "scan stacking its outputs": (lambda h, xs: jax.lax.scan(lambda h, x: (jnp.tanh(h + x), h.sum()), h, xs),
                                  [((4, 100), jnp.float32), ((37, 4, 100), jnp.float32)]),
    "take with 4x33 ids": (lambda t, i: jnp.take(t, i, axis=0), [((1000, 64), jnp.float32), ((4, 33), jnp.int32)]),
    "point scatter": (lambda x, i, j, v: x.at[i, j].set(v), [((64, 64), jnp.float32), ((10,), jnp.int32),
                                                             ((10,), jnp.int32), ((10,), jnp.float32)]),
    "weight gradient as a convolution": (lambda x, g: jnp.einsum("bti,bthd->ihd", x, g),
                                         [((2, 9, 64), jnp.float32), ((2, 9, 4, 32), jnp.float32)]),
    "fori_loop": (lambda x: jax.lax.fori_loop(3, 13, lambda i, x: jnp.sin(x) * i, x), [((8, 128), jnp.float32)]),
    "gather from a 1-D table": (lambda a, i: jnp.take(a, i, mode="clip"),
                                [((257,), jnp.float32), ((13, 7), jnp.int32)]),
    "scatter into a 1-D table": (lambda a, i, v: a.at[i].set(v), [((16,), jnp.float32), ((8,), jnp.int32),
                                                                    ((8,), jnp.float32)]),
    "Pallas kernel with a cost estimate": (lambda x: _pallas_exp(x), [((8, 128), jnp.float32)]),
    "segment_sum on 1-D data": (lambda d, s: jax.ops.segment_sum(d, s, num_segments=100),
                                [((1000,), jnp.float32), ((1000,), jnp.int32)]),
    "a small constant returned": (lambda: jnp.asarray(np.arange(35).reshape(5, 7) % 7, jnp.float32), []),
}


def _pallas_exp(x):
    """2·exp(x) as a Pallas kernel that says its own cost: XLA:TPU takes the estimate as the call's cost."""
    from jax.experimental import pallas as pl

    def kernel(x_ref, o_ref):
        o_ref[...] = jnp.exp(x_ref[...]) * 2

    estimate = pl.CostEstimate(flops=1234, transcendentals=1024, bytes_accessed=8192)
    return pl.pallas_call(kernel, out_shape=x, cost_estimate=estimate)(x)


@needs_libtpu
@pytest.mark.parametrize("name", sorted(BATTERY))
@pytest.mark.parametrize("target", ["tpu:v5e:2x2", "tpu:v6e:2x2"])
def test_a_battery_of_programs_reproduced(name, target):
    """Programs that exercise XLA:TPU's own rules: top-k (a custom call XLA costs: n·k compares), a scan's
    buffer (AllocateBuffer: nothing), gathers and scatters whose index batch is padded to its tiles, rows of a
    1-D table (read in tiles of 1024), a weight gradient written as a convolution with its spatial labels out of
    order, a loop whose counter the compiler copies between memories (its trips found), a Pallas kernel (its
    own estimate), a 1-D segment sum (on a v6e a call to the SparseCore, costed as the scatter it calls)."""
    function, shapes = BATTERY[name]
    compiler = jc.compiled(function, *(jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in shapes), target=target)
    for key in ("flops", "transcendentals", "bytes_accessed"):
        assert compiler.xla_reproduced(key), key
    assert not compiler.unknown
    if name == "fori_loop":
        assert compiler.transcendentals == 10 * 8 * 128  # ten sines of the whole array; XLA counts the body once
    if name == "weight gradient as a convolution":
        assert compiler.flops == 2 * 2 * 9 * 64 * 4 * 32
    if name == "Pallas kernel with a cost estimate":
        assert (compiler.flops, compiler.transcendentals, compiler.bytes_accessed) == (1234, 1024, 8192)


@needs_libtpu
def test_collectives_with_sync_flags_and_scalars_in_scalar_memory():
    """A collective permute writes both its buffers and two 4 KiB sync flags; a psum_scatter's slice offset
    is computed in scalar memory from the replica and partition ids, each an untiled scalar of 4 KiB."""
    from jax.sharding import PartitionSpec as P

    permute = _shard_mapped(lambda a: jax.lax.ppermute(a, "x", [(0, 1)]), P("x"), P("x"), (32, 128))
    start = _op(permute, "collective-permute-start")
    assert start.cost.bytes_written == 2 * 8 * 128 * 4 + 2 * 4096
    scatter = _shard_mapped(lambda a: jax.lax.psum_scatter(a * 2, "x", tiled=True), P(), P("x"), (64,))
    for compiler in (permute, scatter):
        assert compiler.xla_reproduced("bytes_accessed") and compiler.xla_reproduced("flops")


@needs_libtpu
def test_the_report_for_a_target(capsys, monkeypatch):
    """``jaxcost report --target``: the reference suite (here its first and last layers, to be quick) compiled
    for a v6e slice, counts only, every layer's figures explained; a malformed target is one line and exit
    status 2."""
    from jaxcost import commands

    suite = commands.reference_suite
    monkeypatch.setattr(commands, "reference_suite", lambda batch: [suite(batch)[0], suite(batch)[-1]])
    assert main(["report", "--target", "tpu:v6e:2x2", "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "target: tpu:v6e:2x2: 4 x TPU v6 lite (compiled here, not run)" in out and "batch 1 (the default" in out
    assert out.count("explained") >= 2 and "unexplained" not in out and "Measured" not in out
    assert main(["report", "--target", "tpu:v6e"]) == 2


@pytest.mark.parametrize("name, message", [
    ("tpu:v9:2x2", "target: tpu:v9:2x2: no TPU generation 'v9'; the generations are v4, v5e, v5p, v6e, like "
                   "tpu:v4:2x2x1, tpu:v5e:2x2, tpu:v5p:2x2x1, tpu:v6e:4x4"),
    ("tpu:v5e:2y2", "target: tpu:v5e:2y2: a topology is 2 or 3 chip counts joined by x, like tpu:v4:2x2x1"),
    ("tpu:v5e:0x2", "target: tpu:v5e:0x2: a topology is 2 or 3 chip counts"),
])
def test_a_target_jaxcost_does_not_know_is_refused_with_the_ones_it_does(name, message, capsys):
    assert main(["layer", "dense", "--input", "2,8", "--features", "4", "--target", name]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"jaxcost: error: {message}") and "\n" not in error


@needs_libtpu
def test_a_shape_libtpu_does_not_make_is_said_with_the_slices_it_does(capsys):
    assert main(["layer", "dense", "--input", "2,8", "--features", "4", "--target", "tpu:v5e:3x3"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("jaxcost: error: target: tpu:v5e:3x3: ") and error.endswith(
        "(slices like tpu:v4:2x2x1, tpu:v5e:2x2, tpu:v5p:2x2x1, tpu:v6e:4x4)") and "\n" not in error


@needs_libtpu
def test_compiling_for_a_target_keeps_libtpu_out_of_the_command_line_output():
    """libtpu probes for a TPU on loading and writes what it did not find to stderr: not the command's output."""
    result = subprocess.run([sys.executable, "-m", "jaxcost.cli", "layer", "dense", "--input", "2,8", "--features",
                             "4", "--target", "tpu:v5e:2x2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == ""
    assert "target: tpu:v5e:2x2: 4 x TPU v5 lite (compiled here, not run)" in result.stdout


#: What libtpu writes to stderr when it looks for a TPU on a machine without one.
LIBTPU_PROBE = re.compile(r"TPU_WORKER_HOSTNAMES|Source Location Trace|Failed to find host bounds|InitGoogle|"
                          r"\b[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6}")


@needs_libtpu
def test_a_target_compiled_where_jax_starts_on_the_cpu_keeps_libtpu_quiet_unless_verbose():
    """With JAX_PLATFORMS=cpu JAX starts without libtpu; the target's topology starts it later, and its probe stays
    off stderr there too; --verbose lets it through."""
    command = [sys.executable, "-m", "jaxcost", "layer", "dense", "--input", "2,8", "--features", "4", "--target",
               "tpu:v5e:2x2"]
    environment = {**os.environ, "JAX_PLATFORMS": "cpu"}
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = subprocess.run([*command, "--verbose"], capture_output=True, text=True, timeout=300, env=environment)
    assert verbose.returncode == 0 and LIBTPU_PROBE.search(verbose.stderr)


@needs_libtpu
def test_a_bench_script_keeps_libtpu_quiet_and_its_compilation_cache_writes_nowhere_once_gone():
    """bench/vs_tabulate.py, quick: libtpu starts (beside any other process that holds it) and probes, off stderr;
    the persistent compilation cache it tries in a temporary folder is let go with the folder, so the next model's
    compiles write nothing there."""
    script = Path(__file__).parents[1] / "bench" / "vs_tabulate.py"
    environment = {**os.environ, "ALLOW_MULTIPLE_LIBTPU_LOAD": "1"}
    result = subprocess.run([sys.executable, str(script), "--model", "mobilenet_v1", "--model", "mobilenet_v1",
                             "--repeats", "1", "--resolution", "32"], capture_output=True, text=True, timeout=600,
                            env=environment)
    assert result.stdout.count("jaxcost analyze, warm compilation cache:") == 2, result.stderr[-2000:]
    assert not LIBTPU_PROBE.search(result.stderr), result.stderr[-2000:]
    assert "compilation cache" not in result.stderr, result.stderr[-2000:]
