"""Programs stored by bench/layer_suite.py on any backend (tests/fixtures/layer_suite_<platform>.json):
the recount reproduces XLA's reported figures, and every difference from the analytic count is itemized."""

import gzip
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost.comparison import compare_spec
from jaxcost.compiler import CompilerCost, pointer_bytes_of
from jaxcost.models.analysis import attribute

FIXTURE_FILES = sorted((Path(__file__).parent / "fixtures").glob("layer_suite_*.json"))
ENTRIES = [(path.stem, entry) for path in FIXTURE_FILES for entry in json.loads(path.read_text())["entries"]]


def spec_from(fields: dict):
    fields = dict(fields)
    kind = fields.pop("type")
    if "padding" in fields:
        fields["padding"] = tuple(tuple(pair) for pair in fields["padding"])
    return {"Conv": jc.Conv, "Dense": jc.Dense}[kind](**fields)


def test_fixtures_are_present():
    assert {path.stem for path in FIXTURE_FILES} >= {"layer_suite_cpu", "layer_suite_gpu"}  # gpu: an NVIDIA H200


@pytest.mark.parametrize(("source", "entry"), ENTRIES, ids=[f"{s}:{e['name']}:{e['mode']}" for s, e in ENTRIES])
def test_stored_program_is_explained_exactly(source, entry):
    spec = spec_from(entry["spec"])
    compiler = CompilerCost(xla=entry["xla"], recount=jc.recount(entry["hlo_optimized"]), memory={},
                            hlo_text=entry["hlo_optimized"], platform=source, seconds_compile=0.0)
    for key in ("flops", "bytes_accessed", "transcendentals"):
        assert compiler.xla_reproduced(key), key
    assert compiler.unknown == []  # every library call recounted, every loop's trip count known
    comparison = compare_spec(spec, compiler, mode=entry["mode"])
    assert comparison.flops_remainder == 0 and comparison.bytes_remainder == 0
    assert all(delta.ops or delta.kind == "rounding" for delta in comparison.deltas)


#: Programs of other compilers (``bench/capture_programs.py``): another JAX version, another backend.
PROGRAM_FILES = sorted((Path(__file__).parent / "fixtures").glob("programs_*.json.gz"))
PROGRAMS = {path.name.split(".json")[0]: json.loads(gzip.decompress(path.read_bytes())) for path in PROGRAM_FILES}


def _pointer_bytes(name: str) -> int:
    probe = PROGRAMS[name]["probe"]
    return pointer_bytes_of(probe["hlo_optimized"], probe["xla"].get("bytes accessed"))


def _compiler(name: str, entry: dict, pointer_bytes: int) -> CompilerCost:
    return CompilerCost(xla=entry["xla"], recount=jc.recount(entry["hlo_optimized"], pointer_bytes), memory={},
                        hlo_text=entry["hlo_optimized"], platform=PROGRAMS[name]["meta"]["platform"],
                        seconds_compile=0.0)


def test_the_cpu_of_jax_0_11_sizes_a_tuple_pointer_at_4_bytes():
    assert {"programs_cpu_jax0112", "programs_gpu_jax0112"} <= set(PROGRAMS)
    assert _pointer_bytes("programs_cpu_jax0112") == 4
    assert _pointer_bytes("programs_gpu_jax0112") == 8
    entry = PROGRAMS["programs_cpu_jax0112"]["entries"][0]  # its result is a tuple of three gradients
    assert not _compiler("programs_cpu_jax0112", entry, 8).xla_reproduced("bytes_accessed")


PROGRAM_CASES = [(name, entry) for name in PROGRAMS for entry in PROGRAMS[name]["entries"] + PROGRAMS[name]["models"]]


@pytest.mark.parametrize(("name", "entry"), PROGRAM_CASES, ids=[f"{n}:{e['name']}" for n, e in PROGRAM_CASES])
def test_other_compilers_programs_are_reproduced_and_explained(name, entry):
    compiler = _compiler(name, entry, _pointer_bytes(name))
    for key in ("flops", "bytes_accessed", "transcendentals"):
        assert compiler.xla_reproduced(key), key
    assert compiler.unknown == []
    if "spec" in entry:
        comparison = compare_spec(spec_from(entry["spec"]), compiler, mode=entry["mode"])
        assert comparison.flops_remainder == 0 and comparison.bytes_remainder == 0


GPU_PROGRAMS = json.loads((Path(__file__).parent / "fixtures" / "gpu_hlo_fixtures.json").read_text())["entries"]


@pytest.mark.parametrize("entry", GPU_PROGRAMS, ids=[entry["name"] for entry in GPU_PROGRAMS])
def test_gpu_programs_are_reproduced_by_xlas_rules(entry):
    """Compiled on an NVIDIA H200: cuDNN and cuBLAS calls, loops, fusions."""
    compiler = CompilerCost(xla=entry["compiled_cost_analysis"], recount=jc.recount(entry["hlo_optimized"]),
                            memory={}, hlo_text=entry["hlo_optimized"], platform="gpu", seconds_compile=0.0)
    for key in ("flops", "bytes_accessed", "transcendentals"):
        assert compiler.xla_reproduced(key), key
    assert compiler.unknown == []
    assert compiler.flops >= compiler.xla_flops  # XLA's figure misses what its -1s and single loop bodies hide


ZOO_GPU = json.loads(gzip.decompress((Path(__file__).parent / "fixtures" / "zoo_gpu.json.gz").read_bytes()))["models"]


@pytest.mark.parametrize("model", ZOO_GPU, ids=[f"{m['name']}-{m['mode']}" for m in ZOO_GPU])
def test_zoo_models_compiled_for_the_gpu_recount_as_they_did_there(model):
    compiler = CompilerCost(xla=model["xla"], recount=jc.recount(model["hlo_optimized"]), memory={},
                            hlo_text=model["hlo_optimized"], platform="gpu", seconds_compile=0.0)
    for key in ("flops", "bytes_accessed", "transcendentals"):
        assert compiler.xla_reproduced(key), key
    assert (compiler.flops, compiler.bytes_accessed) == (model["recount_flops"], model["recount_bytes"])
    assert compiler.unknown == model["unknown"] == []
    assert sum(row["compiler_flops"] for row in model["rows"]) == compiler.flops
    assert sum(row["compiler_bytes"] for row in model["rows"]) == compiler.bytes_accessed
    assert compiler.xla_unknown and compiler.xla_flops < compiler.flops / 10  # each cuDNN/cuBLAS call is -1 there


@pytest.mark.parametrize("model", ZOO_GPU, ids=[f"{m['name']}-{m['mode']}" for m in ZOO_GPU])
def test_todays_attribution_of_the_gpu_programs_adds_up_and_keeps_the_stored_layer_flops(model):
    compiler = CompilerCost(xla=model["xla"], recount=jc.recount(model["hlo_optimized"]), memory={},
                            hlo_text=model["hlo_optimized"], platform="gpu", seconds_compile=0.0)
    image = jax.ShapeDtypeStruct(tuple(model["input"]), jnp.float32)
    kwargs = {"train": True} if model["mode"] == "train" else {}
    report = attribute(jc.models.build(model["name"]), image, compiler=compiler, mode=model["mode"], **kwargs)
    assert sum(row.compiler_flops for row in report.rows) == compiler.flops
    assert sum(row.compiler_bytes for row in report.rows) == compiler.bytes_accessed
    # each Conv/Dense layer keeps the flops the attribution gave it on the GPU machine, but for the flops of
    # fusions the compiler left without metadata: they went to the first neighbouring layer, and now to the
    # innermost module their neighbours share (ResNet-50's stem pooling: the ConvBN "stem", not its Conv),
    # exactly that much and no more; bytes have moved since: a fusion's bytes are split by its modules' flops
    stored = {row["path"]: row["compiler_flops"] for row in model["rows"]}
    without_metadata = [op for op in compiler.recount.ops
                        if not op.instruction.op_name and not {"convolution", "dot"} & set(op.cost.flops_by_opcode)]
    placed_by_neighbours = sum(op.cost.flops_by_source.get("", 0) for op in without_metadata)
    moved = sum(stored[row.path] - row.compiler_flops for row in report.layers)
    assert moved == placed_by_neighbours == {"resnet50-train": 17_661_952}.get(f"{model['name']}-{model['mode']}", 0)
    assert all(row.compiler_flops <= stored[row.path] for row in report.layers)
    assert all(row.compiler_bytes > 0 for row in report.layers)
