"""The registry of module formulas (``jaxcost.models.paper``): the most derived class's formula wins, a formula that
raises says why in its row, and a formula says how many passes a training step makes of its products."""

import csv
import io
import json
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxcost.models import paper
from jaxcost.models.analysis import analyze
from jaxcost.models.paper import DOT, Paper, Traced
from jaxcost.reports.model import NO_FORMULA, render, summary, to_csv, to_json

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU

INPUTS = jax.ShapeDtypeStruct((2, 8), jnp.float32)


class BiaslessDense(nn.Dense):
    """A Dense layer whose own formula counts its products only (no spec)."""

    use_bias: bool = False


def _biasless_dense(call: Traced) -> Paper:
    return Paper(macs=math.prod(call.x.shape) * call.module.features, signature=DOT)


class BrokenDense(nn.Dense):
    """A Dense layer whose formula raises."""


def _broken_dense(call: Traced) -> Paper:
    raise ValueError("a kernel this formula does not cover")


class ConstantProduct(nn.Module):
    """A product with a constant matrix: a training step takes its gradient w.r.t. the input only."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ jnp.full((x.shape[-1], self.features), 0.5, x.dtype)


def _constant_product(call: Traced) -> Paper:
    # forward, and the gradient w.r.t. the input: the constant operand has none
    return Paper(macs=math.prod(call.x.shape) * call.module.features, signature=DOT, training_passes=2)


class Net(nn.Module):
    layer: type

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return self.layer(4)(nn.Dense(6)(x))


def _registered(monkeypatch: pytest.MonkeyPatch, cls: type, function, first: bool) -> None:
    """``function`` registered for ``cls`` before or after every existing formula, until the test ends."""
    existing = list(paper._FORMULAS)
    monkeypatch.setattr(paper, "_FORMULAS", [] if first else existing)
    paper.formula(cls)(function)
    if first:
        paper._FORMULAS.extend(existing)


@pytest.mark.parametrize("first", [True, False], ids=["registered first", "registered last"])
def test_a_subclass_formula_wins_over_its_base_whatever_the_registration_order(first):
    with pytest.MonkeyPatch.context() as patch:
        _registered(patch, BiaslessDense, _biasless_dense, first)
        assert paper.formula_of(BiaslessDense(4)) is _biasless_dense
        assert paper.formula_of(nn.Dense(4)) is paper._dense
        row = {row.path: row for row in analyze(Net(BiaslessDense), INPUTS).rows}["BiaslessDense_0"]
        assert row.spec is None and row.formula and row.macs == 2 * 6 * 4 == row.compiler_flops // 2
    assert paper.formula_of(BiaslessDense(4)) is paper._dense  # the registry restored


def test_a_formula_that_raises_says_why_in_its_row_the_summary_and_the_exports(monkeypatch):
    _registered(monkeypatch, BrokenDense, _broken_dense, first=False)
    reason = "a kernel this formula does not cover"
    assert paper.paper_cost(Traced(BrokenDense(4), None, None)) == Paper(error=reason)
    report = analyze(Net(BrokenDense), INPUTS)
    rows = {row.path: row for row in report.rows}
    broken = rows["BrokenDense_0"]
    assert broken.formula_error == reason and not broken.formula
    assert (broken.macs, broken.flops, broken.bytes_accessed) == (0, 0, 0) and broken.compiler_flops > 0
    assert rows["Dense_0"].formula and not rows["Dense_0"].formula_error
    line = next(line for line in render(report).splitlines() if line.startswith("BrokenDense_0 ")).split()
    assert line.count(NO_FORMULA) == 3  # MACs, textbook MACs, FLOPs
    assert f"  no formula: BrokenDense_0: {reason}" in summary(report).splitlines()
    records = {record["path"]: record for record in csv.DictReader(io.StringIO(to_csv(report)))}
    assert records["BrokenDense_0"]["formula_error"] == reason and records["Dense_0"]["formula_error"] == ""
    assert {row["path"]: row["formula_error"] for row in json.loads(to_json(report))["rows"]}["BrokenDense_0"] == reason


def test_training_passes_come_from_the_formula(monkeypatch):
    _registered(monkeypatch, ConstantProduct, _constant_product, first=False)
    macs = 2 * 6 * 4
    forward, train = ({row.path: row for row in analyze(Net(ConstantProduct), INPUTS, mode=mode).rows}
                      ["ConstantProduct_0"] for mode in ("forward", "train"))
    assert (forward.macs, forward.flops) == (macs, 2 * macs) and forward.compiler_flops == forward.flops
    assert (train.macs, train.textbook_macs, train.flops) == (2 * macs, 2 * macs, 2 * 2 * macs)
    assert train.compiler_flops == train.flops  # the compiler's two products: forward, gradient w.r.t. the input
