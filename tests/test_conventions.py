"""Every figure in ``conventions()`` equals what the tool itself printed, for batched and N-d layers.

``fixtures/peer_conventions.json`` holds the tools' own output (fvcore, thop, ptflops with both backends,
torchinfo, torch's FlopCounterMode, calflops) for PyTorch layers with and without bias, written by
``bench/peer_conventions.py``. Each PyTorch layer is rebuilt here as a jaxcost spec (channels last).
"""

import json
from pathlib import Path

import pytest

import jaxcost as jc

RECORDS = json.loads((Path(__file__).parent / "fixtures" / "peer_conventions.json").read_text())

#: The tool's record name -> the convention jaxcost renders for it.
TOOL_CONVENTION = {"fvcore": "fvcore", "thop": "thop", "ptflops-pytorch": "ptflops", "ptflops-aten": "ptflops-aten",
                   "torchinfo": "torchinfo", "torch": "torch", "calflops-flops": "calflops"}

#: The PyTorch layers of the fixture (input NCHW) as jaxcost specs (input NHWC).
LAYERS = {
    "L1": lambda bias: jc.Dense((8, 64), 32, use_bias=bias),
    "L2": lambda bias: jc.Dense((4, 5, 64), 32, use_bias=bias),
    "L3": lambda bias: jc.Dense((2, 3, 4, 64), 32, use_bias=bias),
    "L4": lambda bias: jc.Dense((1, 64), 32, use_bias=bias),
    "L5": lambda bias: jc.Dense((64,), 32, use_bias=bias),
    "C1": lambda bias: jc.Conv((2, 10, 10, 16), 32, 3, padding=1, use_bias=bias),
    "C2": lambda bias: jc.Conv((3, 11, 9, 16), 32, 3, strides=2, padding=1, feature_group_count=4, use_bias=bias),
    "C3": lambda bias: jc.Conv((2, 8, 8, 16), 16, 3, padding=1, feature_group_count=16, use_bias=bias),
    "C4": lambda bias: jc.Conv((2, 12, 12, 16), 32, 3, padding=0, kernel_dilation=2, use_bias=bias),
    "C5": lambda bias: jc.Conv((3, 20, 8), 12, 5, padding=2, use_bias=bias),
    "C6": lambda bias: jc.Conv((2, 5, 6, 7, 4), 8, 3, padding=1, use_bias=bias),
    "C7": lambda bias: jc.Conv((4, 7, 7, 16), 32, 1, padding=0, use_bias=bias),
}


def _cases():
    return [pytest.param(record, id=f"{record['layer']}-{'bias' if record['bias'] else 'nobias'}-{record['tool']}")
            for record in RECORDS if record["tool"] in TOOL_CONVENTION]


def test_the_fixture_covers_every_tool_and_layer():
    assert {r["tool"] for r in RECORDS} >= set(TOOL_CONVENTION)
    assert {r["layer"] for r in RECORDS} == set(LAYERS)
    assert len(_cases()) == len(LAYERS) * 2 * len(TOOL_CONVENTION)


@pytest.mark.parametrize("record", _cases())
def test_convention_equals_what_the_tool_printed(record):
    spec = LAYERS[record["layer"]](record["bias"])
    shape = tuple(record["input_shape"])
    assert spec.input_shape == (shape if isinstance(spec, jc.Dense) else (shape[0], *shape[2:], shape[1]))
    assert jc.conventions(spec)[TOOL_CONVENTION[record["tool"]]] == record["value"]


def test_calflops_macs_are_the_textbook_macs():
    for record in RECORDS:
        if record["tool"] == "calflops-macs":
            assert jc.analytic(LAYERS[record["layer"]](record["bias"])).textbook_macs == record["value"]


def test_every_convention_has_its_rule():
    assert set(jc.conventions(jc.Dense((2, 8), 4))) == set(jc.CONVENTION_RULES)
