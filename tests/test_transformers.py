"""Transformers, module by module: a row for every module (attention and each of its projections, norms,
MLPs), analytic products for Dense, DenseGeneral, attention and tied logits checked against the compiler,
ViT-B/16 and GPT-2 small with their published parameter counts, training FLOPs per token against 6·N and
PaLM's formula, and the transforms (scan, remat) that wrap modules."""

import dataclasses
import json
import re
from collections import Counter

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost import operations
from jaxcost.cli import main
from jaxcost.formulas import attention_macs, einsum_macs
from jaxcost.hlo.program import recount
from jaxcost.models import ZOO, build
from jaxcost.models.analysis import analyze, attribute
from jaxcost.models.scaling import token_flops
from jaxcost.reports.model import to_json

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU

IMAGE_224 = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
TOKENS_1024 = jax.ShapeDtypeStruct((1, 1024), jnp.int32)


@pytest.fixture(scope="module")
def zoo_reports():
    with jax.default_device(jax.devices("cpu")[0]):  # module fixtures run before the cpu marker's fixture
        return {(name, mode): analyze(build(name), TOKENS_1024 if ZOO[name].tokens else IMAGE_224, mode=mode)
                for name in ("vit_b16", "gpt2_small") for mode in ("forward", "train")}


def named_share(report) -> float:
    return sum(row.compiler_flops for row in report.rows if row.is_module) / report.compiler_flops


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("name", ["vit_b16", "gpt2_small"])
def test_published_parameters_and_every_flop_in_a_module_row(zoo_reports, name, mode):
    report = zoo_reports[name, mode]
    assert report.params == ZOO[name].published.params == {"vit_b16": 86_567_656, "gpt2_small": 124_439_808}[name]
    assert sum(row.params for row in report.rows) == report.params
    assert named_share(report) >= 0.999
    assert sum(row.compiler_flops for row in report.rows) == report.compiler_flops
    assert sum(row.compiler_bytes for row in report.rows) == report.compiler_bytes
    assert not [row.path for row in report.rows if "outside modules" in row.path and row.compiler_flops]


def test_vit_b16_multiply_adds_by_hand(zoo_reports):
    tokens, width, hidden, heads = 197, 768, 3072, 12
    block = tokens * width * 3 * width + tokens * width * width + 2 * tokens * width * hidden  # qkv, out, MLP
    attention = 2 * heads * tokens * tokens * (width // heads)  # scores and the weighted sum of values
    macs = 196 * width * (16 * 16 * 3) + 12 * (block + attention) + width * 1000
    report = zoo_reports["vit_b16", "forward"]
    assert report.macs == report.textbook_macs == macs == 17_563_828_224
    assert abs(macs / ZOO["vit_b16"].published.macs - 1) < 0.001  # torchvision: 17.56 GFLOPS (multiply-adds)
    # on the CPU every product layer costs in the compiled program exactly what its formula says
    assert [row.path for row in report.layers if row.compiler_flops != row.flops] == []
    assert report.inclusive("block3") == report.inclusive("block4")


def test_gpt2_small_multiply_adds_by_hand(zoo_reports):
    width, heads, context, vocabulary = 768, 12, 1024, 50257
    blocks = 12 * (width * 3 * width + width * width + 2 * width * 4 * width)  # qkv, out, MLP; per token
    attention = 12 * 2 * heads * context * (width // heads)  # every score computed, then masked
    per_token = blocks + attention + width * vocabulary  # the logits, from the tied token embedding
    report = zoo_reports["gpt2_small", "forward"]
    assert report.macs == context * per_token == 145_824_153_600
    assert [row.path for row in report.layers if row.compiler_flops != row.flops] == []


def test_gpt2_small_training_flops_per_token(zoo_reports):
    report = zoo_reports["gpt2_small", "train"]
    flops = token_flops(report, tokens=1024, layers=12, heads=12, head_features=64, context=1024)
    assert flops.six_n == 6 * 124_439_808
    assert flops.palm == 6 * 124_439_808 + 12 * 12 * 12 * 64 * 1024
    assert sum(flops.items.values()) == report.compiler_flops - 6 * report.params * 1024  # itemized exactly
    items = list(flops.items.values())
    assert items[0] == 12 * 12 * 12 * 64 * 1024 * 1024  # the attention rows' products: PaLM's term, exactly
    assert items[1] == 0  # every weight of a product (the tied logits too) costs 6 per token
    assert items[4] == -6 * 1024 * 768 * 1024  # the position embedding is a lookup
    assert 0 < items[5] < 0.01 * report.compiler_flops  # elementwise work neither formula counts
    assert abs(flops.per_token / flops.palm - 1) < 0.01
    text = str(flops)
    assert "6·N + 12·L·H·Q·T (PaLM)" in text and "859,885,056" in text
    tied = {row.path: row for row in report.rows}["tokens"]
    assert tied.calls == 2 and tied.macs == 3 * 1024 * 768 * 50257  # the lookup, and the logits (3 passes)
    with pytest.raises(ValueError, match="^report: per-token training FLOPs need a training step"):
        token_flops(zoo_reports["gpt2_small", "forward"], 1024, 12, 12, 64, 1024)


def products_by_row(report) -> Counter:
    """The compiler's product flops (dots, convolutions) in each row, as the report placed them."""
    by_row: Counter = Counter()
    for op in report.compiler.recount.ops:
        for source, flops in op.cost.products_by_source.items():
            by_row[report.placement.row(source, op.name)] += flops
    return by_row


class BertBlock(nn.Module):
    heads: int = 4

    @nn.compact
    def __call__(self, x, mask, train):
        y = nn.MultiHeadDotProductAttention(num_heads=self.heads, dropout_rate=0.1, deterministic=not train)(
            nn.LayerNorm()(x), mask=mask)
        x = x + y
        y = nn.Dense(x.shape[-1])(nn.gelu(nn.Dense(4 * x.shape[-1])(nn.LayerNorm()(x))))
        return x + nn.Dropout(0.1, deterministic=not train)(y)


class Bert(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        mask = nn.make_attention_mask(jnp.ones(x.shape[:2]), jnp.ones(x.shape[:2]))
        for _ in range(2):
            x = BertBlock()(x, mask, train)
        return x


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("tokens", [64, 96, 128, 256])
def test_attention_products_stay_in_their_rows_when_the_sequence_is_as_long_as_the_model_is_wide(tokens, mode):
    # at 128 tokens of width 128 the attention's weighted sum of values (a dot XLA leaves without metadata) has
    # the sizes and multiply-adds of a projection: only the dataflow tells them apart
    width, passes = 128, 3 if mode == "train" else 1
    report = analyze(Bert(), jax.ShapeDtypeStruct((1, tokens, width), jnp.float32), mode=mode, train=True,
                     rngs={"dropout": 0})
    products, rows = products_by_row(report), {row.path: row for row in report.rows}
    for block in ("BertBlock_0", "BertBlock_1"):
        attention = f"{block}/MultiHeadDotProductAttention_0"
        assert 2 * rows[attention].macs == products[attention] == passes * 2 * 2 * tokens * tokens * width
        for projection in ("query", "key", "value", "out"):
            row = rows[f"{attention}/{projection}"]
            assert products[row.path] == passes * 2 * tokens * width * width
            if mode == "forward":
                assert row.compiler_flops == row.flops == 2 * tokens * width * width + tokens * width
    assert all(products[row.path] == 2 * row.macs and not row.notes for row in report.rows)
    assert sum(products.values()) == sum(2 * row.macs for row in report.rows)


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("name", ["vit_b16", "gpt2_small"])
def test_every_product_of_the_zoo_transformers_is_in_the_row_of_its_formula(zoo_reports, name, mode):
    report = zoo_reports[name, mode]
    products = products_by_row(report)
    rows = {row.path: row for row in report.rows if row.is_module}
    if (name, mode) == ("vit_b16", "train"):
        # the classifier's weight gradient at batch 1 is an outer product (768 x 1000): XLA multiplies, no dot
        head = rows.pop("head")
        assert products["head"] == 2 * 2 * 768 * 1000 and 2 * head.macs == 3 * 2 * 768 * 1000
        assert head.compiler_flops == products["head"] + 768 * 1000 + 1000  # and the forward bias add
    assert all(products[path] == 2 * row.macs for path, row in rows.items())
    assert not [note for row in report.rows for note in row.notes]


class Twins(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(64, name="left")(x) + nn.Dense(64, name="right")(x)


def test_a_product_two_rows_could_equally_hold_is_said_to_be_ambiguous_in_both():
    x = jax.ShapeDtypeStruct((8, 64), jnp.float32)
    compiled = analyze(Twins(), x).compiler
    # two layers alike, reading the same input and summed: without metadata nothing tells their products apart
    text = re.sub(r', metadata=\{[^}]*/(left|right)/[^}]*\}', "", compiled.hlo_text)
    assert "/left/" not in text and "/right/" not in text
    report = attribute(Twins(), x, compiler=dataclasses.replace(compiled, hlo_text=text, recount=recount(text)))
    products, rows = products_by_row(report), {row.path: row for row in report.rows}
    assert products["left"] == products["right"] == 2 * 8 * 64 * 64
    assert [len(rows[name].notes) for name in ("left", "right")] == [1, 1]
    assert "right as likely" in rows["left"].notes[0] and "placed in left; as likely" in rows["right"].notes[0]
    assert "ambiguous: left: 65,536 product FLOPs of " in str(report)
    assert json.loads(to_json(report))["rows"][0]["notes"] == rows["left"].notes


class EncoderBlock(nn.Module):
    heads: int = 4

    @nn.compact
    def __call__(self, x):
        y = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(y, y)
        y = nn.LayerNorm()(x)
        return x + nn.Dense(x.shape[-1])(nn.gelu(nn.Dense(4 * x.shape[-1])(y)))


@pytest.mark.parametrize("heads", [1, 4, 8])
@pytest.mark.parametrize("mode", ["forward", "train"])
def test_an_encoder_block_row_by_row(heads, mode):
    batch, tokens, width = 2, 16, 64
    report = analyze(EncoderBlock(heads), jax.ShapeDtypeStruct((batch, tokens, width), jnp.float32), mode=mode)
    rows = {row.path: row for row in report.rows}
    attention = rows["MultiHeadDotProductAttention_0"]
    passes = 3 if mode == "train" else 1
    assert attention.macs == passes * attention_macs(batch, heads, tokens, tokens, width // heads)
    assert attention.macs == passes * 2 * batch * tokens * tokens * width  # heads x head width = width
    for projection in ("query", "key", "value", "out"):
        row = rows[f"MultiHeadDotProductAttention_0/{projection}"]
        assert row.kind == "dense" and row.module_type == "DenseGeneral" and row.params == width * width + width
        assert row.flops == jc.analytic(jc.Dense((batch, tokens, width), width), mode).flops
        if mode == "forward":
            assert row.compiler_flops == row.flops
    # the attention's own row: its two products, and the softmax, scaling and masking around them
    assert attention.compiler_flops > attention.flops
    assert {"LayerNorm_0", "LayerNorm_1", "Dense_0", "Dense_1"} <= set(rows)
    assert named_share(report) > 0.97  # the GELU between the two Dense layers is the block's own
    assert sum(row.compiler_flops for row in report.rows) == report.compiler_flops


class Step(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        return nn.Dense(x.shape[-1])(x), None


class Scanned(nn.Module):
    @nn.compact
    def __call__(self, x):
        x, _ = nn.scan(Step, variable_axes={"params": 0}, split_rngs={"params": True}, length=6)()(x, None)
        return x


class Rematted(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.remat(nn.Dense)(16)(nn.relu(nn.remat(nn.Dense)(16)(x)))


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_a_scanned_layer_is_counted_once_per_step(mode):
    """flax traces the scanned body twice; the row counts the layer's formula once per step of the scan's
    length (6, from the traced program), as the compiled loop runs it."""
    x = jax.ShapeDtypeStruct((4, 32), jnp.float32)
    report = analyze(Scanned(), x, mode=mode)
    row = {row.path: row for row in report.rows}["ScanStep_0/Dense_0"]
    per_step = jc.analytic(jc.Dense((4, 32), 32), mode).flops
    assert row.is_layer and row.calls == 6 and row.flops == 6 * per_step
    assert row.compiler_flops == row.flops  # the loop's six trips, from the recount's trip count
    assert row.params == 6 * (32 * 32 + 32)  # one set per step, stacked


class Step2(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        x, _ = nn.scan(Step, variable_axes={"params": 0}, split_rngs={"params": True}, length=2)()(x, None)
        return x, None


class NestedScans(nn.Module):
    @nn.compact
    def __call__(self, x):
        x, _ = nn.scan(Step2, variable_axes={"params": 0}, split_rngs={"params": True}, length=3)()(x, None)
        return x


class Vmapped(nn.Module):
    @nn.compact
    def __call__(self, x):
        dense = nn.vmap(nn.Dense, in_axes=0, out_axes=0, variable_axes={"params": None},
                        split_rngs={"params": False})
        return nn.jit(nn.Dense)(8)(dense(16)(x))


class WhileLoop(nn.Module):
    def setup(self):
        self.layer = nn.Dense(8)

    def __call__(self, x):
        def body(module, carry):
            return module.layer(carry[0]), carry[1] + 1

        def more(module, carry):
            return carry[1] < (carry[0][0, 0] > 0) + 2  # two or three trips, as the data says

        if self.is_initializing():  # the loop reads the params; they are made before it
            self.layer(x)
        return nn.while_loop(more, body, self, (x, 0))[0]


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_nested_scans_multiply_and_vmap_counts_the_whole_batch(mode):
    """A layer in a scan of 2 inside a scan of 3 runs 6 times; a vmapped Dense sees one example of the 5 but
    costs the whole batch; nn.jit changes nothing. Each formula equals the compiled program's row."""
    x = jax.ShapeDtypeStruct((5, 32), jnp.float32)
    rows = {row.path: row for row in analyze(NestedScans(), x, mode=mode).modules}
    inner = rows["ScanStep2_0/ScanStep_0/Dense_0"]
    assert (inner.calls, rows["ScanStep2_0/ScanStep_0"].calls, rows["ScanStep2_0"].calls) == (6, 3, 3)
    assert inner.flops == 6 * jc.analytic(jc.Dense((5, 32), 32), mode).flops == inner.compiler_flops
    rows = {row.path: row for row in analyze(Vmapped(), x, mode=mode).modules}
    vmapped, jitted = rows["VmapDense_0"], rows["JitDense_0"]
    assert vmapped.input_shape == (5, 32) and vmapped.spec == jc.Dense((5, 32), 16)
    assert vmapped.flops == jc.analytic(jc.Dense((5, 32), 16), mode).flops
    assert jitted.flops == jc.analytic(jc.Dense((5, 16), 8), mode).flops
    if mode == "forward":
        assert (vmapped.flops, jitted.flops) == (vmapped.compiler_flops, jitted.compiler_flops)


class NormedCell(nn.Module):
    @nn.compact
    def __call__(self, carry, x):
        h = nn.LayerNorm()(nn.Dense(16)(carry) + x)
        return h, h


class CellScan(nn.Module):
    """A cell scanned over 4 steps, over the whole batch (``vmapped=False``) or vmapped over its 5 examples."""

    vmapped: bool

    @nn.compact
    def __call__(self, xs):
        scan = nn.scan(NormedCell, variable_broadcast="params", split_rngs={"params": False}, length=4)
        if self.vmapped:
            scan = nn.vmap(scan, in_axes=(0, 1), out_axes=(0, 1), variable_axes={"params": None},
                           split_rngs={"params": False})
        return scan()(jnp.zeros((xs.shape[1], 16)), xs)[1]


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_a_vmap_around_a_scan_costs_the_whole_batch(mode):
    """Inside nn.vmap(nn.scan(...)) a layer is traced on one example (the scan's body); its row costs the whole
    batch, as the same scan over the batch does: the Dense's spec gains the batch, its calls are the scan's trips;
    the norm's formula is the examples' (in the forward pass); the compiled rows are the same program's."""
    xs = jax.ShapeDtypeStruct((4, 5, 16), jnp.float32)
    vmapped, plain = ({row.path.split("/", 1)[1]: row for row in analyze(CellScan(vmapped), xs, mode=mode).modules
                       if "/" in row.path} for vmapped in (True, False))
    assert vmapped["Dense_0"].spec == plain["Dense_0"].spec == jc.Dense((5, 16), 16)
    assert (vmapped["Dense_0"].calls, vmapped["Dense_0"].input_shape) == (4, (5, 16))
    assert vmapped["Dense_0"].flops == plain["Dense_0"].flops == 4 * jc.analytic(jc.Dense((5, 16), 16), mode).flops
    if mode == "forward":
        norm = 4 * 5 * operations.layer_norm((16,)).flops
        assert vmapped["LayerNorm_0"].flops == plain["LayerNorm_0"].flops == norm
    for row in ("Dense_0", "LayerNorm_0"):
        assert vmapped[row].compiler_flops == plain[row].compiler_flops, row


def test_a_layer_in_a_while_loop_has_no_formula():
    """A while loop's trip count is known only when it runs: the row keeps the compiler's figures (its body once,
    as the recount says) and no analytic ones."""
    report = analyze(WhileLoop(), jax.ShapeDtypeStruct((4, 8), jnp.float32))
    row = {row.path: row for row in report.modules}["layer"]
    assert row.flops == 0 and row.compiler_flops > 0


class RematMlp(nn.Module):
    @nn.compact
    def __call__(self, x):
        class Mlp(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(8)(nn.gelu(nn.Dense(32)(x)))

        return nn.remat(Mlp)()(x)


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_rematerialized_layers_keep_their_rows(mode):
    report = analyze(Rematted(), jax.ShapeDtypeStruct((4, 8), jnp.float32), mode=mode)
    rows = {row.path: row for row in report.rows if row.is_module}
    assert {"CheckpointDense_0", "CheckpointDense_1"} <= set(rows)
    for path in ("CheckpointDense_0", "CheckpointDense_1"):
        assert rows[path].flops == jc.analytic(rows[path].spec, mode).flops > 0
    assert named_share(report) > 0.9


def test_remat_recomputation_is_its_own_item():
    """In a training step the backward recomputes the rematerialized forward: in the program as written, the
    first Dense's product and bias once more (the second Dense needs the GELU of its output); the compiled
    rows say how much of it the compiler kept, and the analytic figures count none."""
    from jaxcost.hlo.rewrites import flops_by_source
    from jaxcost.models.rows import RECOMPUTATION

    report = analyze(RematMlp(), jax.ShapeDtypeStruct((4, 8), jnp.float32), mode="train")
    rows = {row.path: row for row in report.modules}
    first = rows["CheckpointMlp_0/Dense_1"]  # built second, called first
    written = sum(flops for name, flops in flops_by_source(report.compiler.written).items()
                  if RECOMPUTATION in name and name.endswith(("Dense_1/dot_general", "Dense_1/add")))
    assert written == jc.analytic(first.spec).flops  # one forward pass of the layer, again
    assert first.flops == jc.analytic(first.spec, "train").flops
    assert sum(row.recompute_flops for row in report.rows) > 0
    assert "recomputed by remat" in str(report)
    assert all(row.recompute_flops == 0 for row in analyze(RematMlp(), jax.ShapeDtypeStruct((4, 8), jnp.float32)).rows)


def test_subclasses_and_general_contractions_get_formulas():
    class Wide(nn.Dense):
        pass

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = Wide(12)(x)
            x = nn.DenseGeneral((3, 4), axis=-1)(x)  # 12 -> 3x4
            x = nn.DenseGeneral(5, axis=(-2, -1))(x)  # 3x4 -> 5
            return nn.Einsum((5, 7), "bf,fo->bo")(x)

    report = analyze(Net(), jax.ShapeDtypeStruct((2, 6), jnp.float32))
    rows = {row.path: row for row in report.rows}
    assert rows["Wide_0"].is_layer and rows["Wide_0"].flops == jc.analytic(jc.Dense((2, 6), 12)).flops
    assert rows["DenseGeneral_0"].flops == jc.analytic(jc.Dense((2, 12), 12)).flops
    assert rows["DenseGeneral_1"].flops == jc.analytic(jc.Dense((2, 12), 5)).flops
    assert rows["Einsum_0"].module_type == "Einsum" and rows["Einsum_0"].macs == 2 * 5 * 7  # b, f, o
    assert rows["Einsum_0"].compiler_flops == 2 * 2 * 5 * 7 + 2 * 7  # its products, then its bias
    assert rows["Wide_0"].params_bytes == 4 * (6 * 12 + 12)
    for path in ("Wide_0", "DenseGeneral_0", "DenseGeneral_1"):
        assert rows[path].compiler_flops == rows[path].flops


def test_token_models_from_the_zoo_on_the_command_line(capsys):
    assert main(["model", "gpt2_small", "--input", "1,64:int32", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "gpt2_small (forward): 124,439,808 params" in out and "block1 .. block11  (x11)" in out
    assert main(["model", "gpt2_small", "--resolution", "64"]) == 2
    assert "--resolution: gpt2_small takes tokens, not images" in capsys.readouterr().err


def test_tables_sorted_by_operator_and_for_a_terminal(zoo_reports, capsys):
    import io

    from rich.console import Console

    from jaxcost.reports.model import by_operator, render, rich_table, to_json

    report = zoo_reports["vit_b16", "forward"]
    lines = render(report, depth=1, sort="compiler_flops").splitlines()[2:]
    flops_shares = [float(line.split()[-1].rstrip("%")) for line in lines if line.startswith("block")]
    assert flops_shares == sorted(flops_shares, reverse=True) and len(flops_shares) >= 1
    with pytest.raises(ValueError, match="^sort: must be one of"):
        render(report, sort="speed")
    operators = by_operator(report).splitlines()
    assert operators[2].split()[0] == "dot" and operators[-1].split()[0] == "total"
    screen = io.StringIO()
    Console(file=screen, width=250, force_terminal=True).print(rich_table(report, depth=1))
    assert "block0" in screen.getvalue() and "compiler FLOPs" in screen.getvalue()
    row = next(row for row in __import__("json").loads(to_json(report))["rows"] if row["path"] == "block0/attention")
    assert row["module_type"] == "MultiHeadDotProductAttention" and row["depth"] == 2 and row["macs"] > 0
    assert main(["model", "vit_b16", "--by", "op"]) == 0
    assert capsys.readouterr().out.splitlines()[3].split()[0] == "dot"


def test_every_nnx_module_is_a_row_with_its_params():
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.norm = nnx.LayerNorm(16, rngs=rngs)
            self.up = nnx.Linear(16, 32, rngs=rngs)
            self.down = nnx.Linear(32, 16, rngs=rngs)

        def __call__(self, x):
            return x + self.down(nnx.relu(self.up(self.norm(x))))

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.blocks = nnx.List([Block(rngs) for _ in range(2)])
            self.head = nnx.Linear(16, 4, rngs=rngs)

        def __call__(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    for mode in ("forward", "train"):
        report = analyze(Net(nnx.Rngs(0)), jax.ShapeDtypeStruct((8, 16), jnp.float32), mode=mode)
        rows = {row.path: row for row in report.modules}
        assert list(rows) == ["blocks/0", "blocks/0/norm", "blocks/0/up", "blocks/0/down", "blocks/1",
                              "blocks/1/norm", "blocks/1/up", "blocks/1/down", "head"]
        assert rows["blocks/1/norm"].module_type == "LayerNorm" and rows["blocks/1/norm"].params == 32
        assert rows["blocks/0/up"].flops == jc.analytic(jc.Dense((8, 16), 32), mode).flops
        assert sum(row.params for row in report.rows) == report.params == 2 * (32 + 544 + 528) + 68
        assert named_share(report) == 1.0
    assert nnx.LayerNorm.__call__.__qualname__.startswith("LayerNorm")  # the recording wrappers are gone
    assert report.collections == {}

    class Normed(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(16, 16, rngs=rngs)
            self.norm = nnx.BatchNorm(16, rngs=rngs)

        def __call__(self, x):
            return self.norm(self.linear(x))

    normed = analyze(Normed(nnx.Rngs(0)), jax.ShapeDtypeStruct((8, 16), jnp.float32))
    assert normed.collections == {"batch_stats": 2 * 16}  # running mean and variance, beside the params
    assert {row.path: row.params for row in normed.rows}["norm"] == 2 * 16


class Looped(nn.Module):
    @nn.compact
    def __call__(self, x):
        dense = nn.Dense(x.shape[-1])
        return jax.lax.fori_loop(0, 5, lambda _, y: dense(y), x)


class Mapped(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.vmap(nn.Dense, variable_axes={"params": None}, split_rngs={"params": False})(8)(x)


class Jitted(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.jit(nn.Dense)(8)(x)


@pytest.mark.parametrize(("model", "path", "passes"), [
    (Looped(), "Dense_0", 5), (Mapped(), "VmapDense_0", 1), (Jitted(), "JitDense_0", 1)])
def test_loops_and_transforms_inside_a_module(model, path, passes):
    x = jax.ShapeDtypeStruct((3, 4, 8), jnp.float32)
    report = analyze(model, x)
    row = {row.path: row for row in report.rows}[path]
    assert row.compiler_flops == passes * jc.analytic(jc.Dense((3, 4, 8), 8)).flops
    assert named_share(report) > 0.99  # a loop's counter and its condition are outside every module


def test_the_contraction_formula():
    assert einsum_macs("bf,fo->bo", (2, 5), (5, 7)) == 2 * 5 * 7
    assert einsum_macs("bqhd,bkhd->bhqk", (2, 3, 4, 8), (2, 6, 4, 8)) == 2 * 3 * 4 * 8 * 6
    for equation, shapes, message in (("bf,fo", ((2, 5), (5, 7)), "must contract"),
                                      ("...f,fo->...o", ((2, 5), (5, 7)), "must contract"),
                                      ("bf,fo->bo", ((2, 5), (6, 7)), "index 'f' is 5 and 6"),
                                      ("bfx,fo->bo", ((2, 5), (5, 7)), "does not index a shape of rank 2")):
        with pytest.raises(ValueError, match=f"^equation: .*{message}"):
            einsum_macs(equation, *shapes)


def test_nnx_scan_and_remat_keep_the_module_rows():
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(16, 16, rngs=rngs)

        def __call__(self, x):
            return nnx.relu(self.linear(x))

    class Scanned(nnx.Module):
        def __init__(self, rngs):
            @nnx.split_rngs(splits=4)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def make(rngs):
                return Block(rngs)
            self.blocks = make(rngs)

        def __call__(self, x):
            @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
            def step(x, block):
                return block(x)
            return step(x, self.blocks)

    class Rematted(nnx.Module):
        def __init__(self, rngs):
            self.block = Block(rngs)

        def __call__(self, x):
            return nnx.remat(lambda block, y: block(y))(self.block, x)

    x = jax.ShapeDtypeStruct((8, 16), jnp.float32)
    per_step = jc.analytic(jc.Dense((8, 16), 16)).flops
    scanned = {row.path: row for row in analyze(Scanned(nnx.Rngs(0)), x).rows}
    assert scanned["blocks/linear"].compiler_flops == 4 * per_step and scanned["blocks/linear"].params == 4 * 272
    assert scanned["blocks/linear"].flops == 4 * per_step and scanned["blocks/linear"].calls == 4
    model = Rematted(nnx.Rngs(0))
    for mode in ("forward", "train"):
        rematted = analyze(model, x, mode=mode)
        rows = {row.path: row for row in rematted.rows}
        assert rows["block/linear"].compiler_flops >= jc.analytic(jc.Dense((8, 16), 16), mode).flops
        assert named_share(rematted) > 0.95
    assert not hasattr(model.block, "_jaxcost_path")  # the paths the trace used are taken off the model again


@pytest.mark.parametrize(("argv", "message"), [
    (["mobilenet_v2", "--resolution", "32", "--kwarg", "foo=1"],
     "--kwarg: MobileNetV2.__call__() got an unexpected keyword argument 'foo'"),
    (["mobilenet_v2", "--dtype", "int8"], "dtype: the zoo's models compute in a floating-point dtype"),
    (["gpt2_small", "--input", "1,64:float32"], "--input: gpt2_small takes integer token ids"),
    (["gpt2_small", "--input", "1,2048:int32"], "LENGTH at most its context of 1024, got '1,2048:int32'"),
    (["resnet50", "--by", "op", "--json"], "--by op: shapes the table; --json and --csv carry every row"),
    (["resnet50", "--sort", "params", "--csv"], "--sort: shapes the table"),
    (["resnet50", "--depth", "0"], "--depth: must be a positive integer, got 0"),
    (["models/mine.py"], "a model of your own is path/to/file.py:Factory"),
])
def test_zoo_command_line_mistakes_are_one_line(argv, message, capsys):
    assert main(["model", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_attention_projection_rows_keep_the_shapes_flax_gives(zoo_reports):
    rows = {row.path: row for row in zoo_reports["vit_b16", "forward"].rows}
    assert rows["block0/attention/query"].input_shape == (1, 197, 768)
    assert rows["block0/attention/query"].output_shape == (1, 197, 12, 64)  # heads split, as flax returns it
    assert rows["block0/attention/out"].input_shape == (1, 197, 12, 64)


class NormedBlock(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.LayerNorm(name="ln")(nn.Dense(x.shape[-1], name="fc")(x))


@pytest.mark.parametrize("wrap", [lambda block: block, nn.remat, nn.jit])
def test_a_wrapped_module_called_three_times_counts_three_calls(wrap):
    """Calls are counted as the program runs them (by each module's signature operation, here its product and
    its rsqrt), whatever the transform around it and however often flax traces it."""
    class Thrice(nn.Module):
        @nn.compact
        def __call__(self, x):
            block = wrap(NormedBlock)(name="b")
            return block(block(block(x)))

    rows = {row.path: row for row in analyze(Thrice(), jax.ShapeDtypeStruct((4, 16), jnp.float32)).modules}
    assert (rows["b/fc"].calls, rows["b/ln"].calls) == (3, 3)
    assert rows["b/fc"].flops == 3 * jc.analytic(jc.Dense((4, 16), 16)).flops
    assert rows["b/ln"].flops == 3 * operations.layer_norm((4, 16)).flops


def test_an_ensemble_costs_every_member():
    """nn.vmap over stacked parameters with a shared input: the Dense sees the shared (4, 5) input but runs once
    per member; its formula counts all three."""
    class Ensemble(nn.Module):
        @nn.compact
        def __call__(self, x):
            members = nn.vmap(NormedBlock, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=None,
                              axis_size=3)
            return members(name="members")(x)

    rows = {row.path: row for row in analyze(Ensemble(), jax.ShapeDtypeStruct((4, 5), jnp.float32)).modules}
    assert rows["members/fc"].flops == jc.analytic(jc.Dense((3, 4, 5), 5)).flops
    assert rows["members/ln"].flops == operations.layer_norm((3, 4, 5)).flops


def test_a_scanned_norm_equals_its_formula_in_the_program_as_written():
    """The loop JAX writes for a scan has its trip count in its condition (the compiler's annotation comes later):
    the written row counts every step, as the formula does."""
    class Steps(nn.Module):
        @nn.compact
        def __call__(self, x):
            step = nn.scan(lambda module, carry, _: (module(carry), None), variable_axes={"params": 0},
                           split_rngs={"params": True}, length=7)
            return step(NormedBlock(name="cell"), x, None)[0]

    report = analyze(Steps(), jax.ShapeDtypeStruct((4, 16), jnp.float32))
    rows = {row.path: row for row in report.modules}
    norm = next(row for path, row in rows.items() if path.endswith("ln"))
    assert norm.calls == 7 and norm.flops == 7 * operations.layer_norm((4, 16)).flops
    assert report.written_flops(norm.path) == norm.flops
