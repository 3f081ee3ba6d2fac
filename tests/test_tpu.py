"""TPU targets compiled on this machine (libtpu, the tpu extra): tiled layouts and their padding read from the
HLO, XLA:TPU's flops reproduced on four generations and its bytes where tiles are all there is to it, the
per-layer table of a zoo model for a v5e slice; and without libtpu, one line that says what to install."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost import targets
from jaxcost.cli import main
from jaxcost.compiler import CompilerCost
from jaxcost.hlo.text import parse_shape

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


STORED = json.loads((Path(__file__).parent / "fixtures" / "tpu_programs.json").read_text())["programs"]


def _replayed(entry: dict) -> CompilerCost:
    hlo_text, xla = entry["hlo_optimized"], entry["compiled_cost_analysis"]
    return CompilerCost(xla=xla, recount=jc.recount(hlo_text, *targets.tuple_table(entry["device_kind"])),
                        memory={}, hlo_text=hlo_text, platform="tpu", seconds_compile=0.0,
                        device_kind=entry["device_kind"])


@pytest.mark.parametrize("entry", STORED, ids=lambda entry: f"{entry['name']} {entry['target']}")
def test_stored_tpu_programs_replayed(entry):
    """Programs compiled for TPU slices (bench/capture_tpu_programs.py), replayed without libtpu: XLA:TPU's
    flops, transcendentals and bytes exactly."""
    compiler = _replayed(entry)
    assert compiler.flops == compiler.xla_flops
    for key in ("flops", "transcendentals", "bytes_accessed"):
        assert compiler.xla_reproduced(key), key


@pytest.mark.parametrize("name, message", [
    ("gpu:h100", "target: must be tpu:GENERATION:TOPOLOGY"),
    ("tpu", "target: must be tpu:GENERATION:TOPOLOGY"),
])
def test_a_malformed_target_is_one_line(name, message, capsys):
    assert main(["layer", "dense", "--input", "2,8", "--features", "4", "--target", name]) == 2
    assert capsys.readouterr().err.strip().startswith(f"jaxcost: error: {message}")


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
def test_padding_is_counted_where_tiles_do_not_fit():
    """f32[1000,100] + 1 on a v5e: laid out with 1000 on the lanes, 100 rows padded to 104 and 1000 lanes to
    1024: the read and the write each move 425,984 B, 25,984 B of it padding; XLA's figure to the byte."""
    compiler = jc.compiled(lambda a: a + 1, jax.ShapeDtypeStruct((1000, 100), jnp.float32), target="tpu:v5e:2x2")
    assert compiler.bytes_accessed == int(compiler.xla_bytes_accessed) == 2 * 104 * 1024 * 4
    assert [padding for _, _, padding in compiler.recount.padding] == [(104 * 1024 - 100_000) * 4] * 2  # in and out
    assert "layout padding: the tiles add" in str(compiler)


def test_compare_itemizes_the_padding_of_arguments_and_results():
    """A 3x3 convolution on 64 channels for a v5e, replayed: its input's 64 channels fill half of the 128 lanes,
    which is the layout padding item; with it the bytes are explained to the byte."""
    entry = next(entry for entry in STORED if entry["target"] == "tpu:v5e:2x2" and entry["name"].startswith("conv"))
    from jaxcost.comparison import compare_spec

    comparison = compare_spec(jc.Conv((8, 56, 56, 64), 128, (3, 3), padding="SAME", use_bias=False,
                                      dtype="bfloat16"), compiler=_replayed(entry))
    (padding,) = [delta for delta in comparison.deltas if delta.kind == "padding"]
    assert padding.bytes == 8 * 56 * 56 * 64 * 2  # the input doubled to 128 lanes (bfloat16)
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
