"""Programs stored by bench/layer_suite.py on any backend (tests/fixtures/layer_suite_<platform>.json):
the recount reproduces XLA's reported figures, and every difference from the analytic count is itemized."""

import json
from pathlib import Path

import pytest

import jaxcost as jc
from jaxcost.comparison import compare_spec
from jaxcost.compiler import CompilerCost

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
