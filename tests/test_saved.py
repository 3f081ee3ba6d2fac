"""What a transformer block keeps for its backward pass, beside Korthikanti et al.'s formula, every difference
itemized: GPT-2 small's training step, batch 8, sequence 1024, bfloat16, compiled for the CPU."""

import jax
import jax.numpy as jnp
import pytest

from jaxcost.hlo.text import parse_shape
from jaxcost.models import build
from jaxcost.models.memory import memory
from jaxcost.models.saved import KORTHIKANTI, compare_block, formula_bytes, transformer_dimensions
from jaxcost.reports.memory import comparison_lines

pytestmark = pytest.mark.cpu
SEQUENCE, BATCH, HIDDEN, HEADS = 1024, 8, 768, 12


def test_the_formula_by_hand():
    sbh = SEQUENCE * BATCH * HIDDEN
    assert formula_bytes(SEQUENCE, BATCH, HIDDEN, HEADS) == sbh * (34 + 5 * HEADS * SEQUENCE // HIDDEN)
    # without dropout: no masks (1 byte each, sbh twice and as^2b once), no dropout output (2as^2b)
    assert formula_bytes(SEQUENCE, BATCH, HIDDEN, HEADS, dropout=False) == sbh * (32 + 2 * HEADS * SEQUENCE // HIDDEN)
    # the terms: attention 11sbh + 5as^2b, MLP 19sbh, LayerNorms 4sbh, as the paper's section 4.1 adds them
    assert sum(term.count * term.width for term in KORTHIKANTI if term.size == "sbh") == 18
    assert sum(term.count * term.width for term in KORTHIKANTI if term.size == "4sbh") == 4
    assert sum(term.count * term.width for term in KORTHIKANTI if term.size == "as2b") == 5


@pytest.fixture(scope="module")
def gpt2_training():
    model = build("gpt2_small", dtype="bfloat16")
    tokens = jax.ShapeDtypeStruct((BATCH, SEQUENCE), jnp.int32)
    return model, tokens, memory(model, tokens, mode="train")


def test_every_block_is_itemized_to_the_byte(gpt2_training):
    model, tokens, report = gpt2_training
    dimensions = transformer_dimensions(model, (tokens,))
    assert dimensions == {"sequence": SEQUENCE, "batch": BATCH, "hidden": HIDDEN, "heads": HEADS, "depth": 12}
    del dimensions["depth"]
    for index in range(12):
        comparison = compare_block(report, f"block{index}", **dimensions)
        items = comparison.items()
        assert comparison.saved_bytes - comparison.formula_bytes == sum(amount for _, amount in items)
        assert comparison.saved_bytes == sum(value.bytes for value in report.saved
                                                if value.row.startswith(f"block{index}/") or
                                                value.row == f"block{index}")
        # the model has no dropout: the formula's four dropout tensors are said absent, each
        assert sum("absent" in name for name, _ in items) == 4
        # the softmax output is kept at 16 bits at least once (the formula's 2as^2b)
        attention = next(line for line in comparison.lines if line.size == "as2b")
        assert attention.widths[2] >= 1
        # what is of no size of the formula's: a norm's statistics (a value per token) and the softmax's (a value
        # per token and head), nothing else
        for value in comparison.others:
            elements = parse_shape(value.shape).elements
            assert elements in (BATCH * SEQUENCE, BATCH * SEQUENCE * HEADS), value


def test_jaxs_residuals_of_every_block_are_itemized_too(gpt2_training):
    """What JAX's autodiff saves for a block (before XLA recomputes, widens or lays out anything) beside the same
    formula: every block saves the same, the items add up, and the three levels print side by side."""
    model, tokens, report = gpt2_training
    dimensions = transformer_dimensions(model, (tokens,))
    del dimensions["depth"]
    blocks = [compare_block(report, f"block{index}", **dimensions, level="JAX saves") for index in range(12)]
    assert len({comparison.saved_bytes for comparison in blocks}) == 1
    for comparison in blocks:
        assert comparison.saved_bytes - comparison.formula_bytes == sum(amount for _, amount in comparison.items())
    # JAX's rules keep the block's activations at the model's 16 bits or wider, never narrower but for masks
    mlp = next(line for line in blocks[6].lines if line.size == "4sbh")
    assert set(mlp.widths) == {2}
    text = "\n".join(comparison_lines([blocks[6], compare_block(report, "block6", **dimensions)]))
    header = next(line for line in text.splitlines() if line.strip().startswith("tensors"))
    assert header.split()[1:] == ["formula", "JAX", "saves", "XLA", "keeps"]
    assert f"JAX saves {blocks[6].saved_bytes:,} B" in text and "XLA keeps " in text


def test_the_block_saved_bytes_add_up_to_the_report(gpt2_training):
    _, _, report = gpt2_training
    in_blocks = sum(value.bytes for value in report.saved if value.row.startswith("block"))
    outside = sum(value.bytes for value in report.saved if not value.row.startswith("block"))
    assert in_blocks + outside == report.saved_bytes
    assert sum(report.saved_by_row().values()) == report.saved_bytes
    # outside the blocks, the tied logits' product keeps at least its input (a token's hidden state, 16-bit)
    assert outside >= BATCH * SEQUENCE * HIDDEN * 2


def test_other_models_have_no_transformer_dimensions():
    assert transformer_dimensions(build("mobilenet_v2"), (jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),)) is None
    vit = transformer_dimensions(build("vit_b16"), (jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32),))
    assert vit == {"sequence": 197, "batch": 2, "hidden": 768, "heads": 12, "depth": 12}
