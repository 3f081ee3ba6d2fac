"""Whole models: published figures reproduced, per-layer rows that add up exactly, user-defined models."""

import csv
import io
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost.models import ZOO, build
from jaxcost.models.analysis import analyze
from jaxcost.reports.model import render, summary, to_csv, to_json

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU

IMAGE_224 = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
#: The convolutional networks of the zoo (the Transformers have their own tests, tests/test_transformers.py).
CNNS = ("mobilenet_v1", "mobilenet_v2", "resnet50", "resnet50_v1")


@pytest.fixture(scope="module")
def reports_224():
    with jax.default_device(jax.devices("cpu")[0]):  # module fixtures run before the cpu marker's fixture
        return {name: analyze(build(name), IMAGE_224, name=name) for name in CNNS}


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "resnet50"])
def test_published_figures_within_one_percent(reports_224, name):
    report, published = reports_224[name], ZOO[name].published
    assert abs(report.textbook_macs / published.macs - 1) < 0.01
    assert abs(report.params / published.params - 1) < 0.01


def test_exact_parameter_counts(reports_224):
    assert reports_224["mobilenet_v1"].params == 4_231_976  # Keras MobileNet 1.0 trainable parameters
    assert reports_224["mobilenet_v2"].params == 3_504_872  # torchvision mobilenet_v2
    assert reports_224["resnet50"].params == reports_224["resnet50_v1"].params == 25_557_032  # torchvision
    for report in reports_224.values():  # every parameter is in a row: normalization scales and biases too
        assert sum(row.params for row in report.rows) == report.params
        # a BatchNorm holds a scale and a bias per channel, and a mean and a variance beside them
        assert report.collections["batch_stats"] == sum(row.params for row in report.rows
                                                        if row.module_type == "BatchNorm")


def test_resnet_v1_5_moves_work_into_the_3x3_convs(reports_224):
    assert reports_224["resnet50"].textbook_macs > reports_224["resnet50_v1"].textbook_macs


@pytest.mark.parametrize("name", CNNS)
def test_rows_add_up_to_the_compiler_total_forward_224(reports_224, name):
    report = reports_224[name]
    compiler = report.compiler
    assert compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")
    assert sum(row.compiler_flops for row in report.rows) == compiler.flops
    assert sum(row.compiler_bytes for row in report.rows) == compiler.bytes_accessed
    # on the CPU every Conv/Dense layer costs in the compiled program exactly what the formula says
    assert [row.path for row in report.layers if row.compiler_flops != row.flops] == []
    # fused chains split their bytes: no layer doing work shows none (all of a chain's went to its last op)
    assert [row.path for row in report.layers if not row.compiler_bytes] == []
    # every module is a row, parents before children; a parent's inclusive figures hold its children's
    paths = [row.path for row in report.modules]
    assert all(path.rsplit("/", 1)[0] in paths[:index] for index, path in enumerate(paths) if "/" in path)
    tops = {path for path in paths if "/" not in path}
    assert sum(report.inclusive(path) for path in tops) + sum(row.compiler_flops for row in report.rows
                                                              if not row.is_module) == compiler.flops
    assert report.textbook_macs - report.macs > 0  # padding taps the textbook formula counts


TRAINING_CASES = [(name, 64) for name in CNNS] + [(name, 224) for name in ("mobilenet_v1", "mobilenet_v2", "resnet50")]


@pytest.mark.parametrize(("name", "resolution"), TRAINING_CASES)
def test_rows_add_up_in_training(name, resolution):
    image = jax.ShapeDtypeStruct((1, resolution, resolution, 3), jnp.float32)
    report = analyze(build(name), image, mode="train", train=True)
    compiler = report.compiler
    assert compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")
    assert compiler.unknown == []
    assert sum(row.compiler_flops for row in report.rows) == compiler.flops
    assert sum(row.compiler_bytes for row in report.rows) == compiler.bytes_accessed
    norms = [row for row in report.modules if row.module_type == "BatchNorm"]  # their training formulas
    assert report.flops == sum(jc.analytic(row.spec, "train").flops * row.calls for row in report.layers) + sum(
        row.flops for row in norms)
    assert [row.path for row in norms if not row.formula or row.flops != report.written_flops(row.path)] == []


def test_width_multiplier_and_resolution_scale_the_mobilenets():
    half = analyze(build("mobilenet_v1", alpha=0.5), jax.ShapeDtypeStruct((1, 160, 160, 3), jnp.float32))
    # Howard et al. Table 7: 0.50 MobileNet-160, 77 M mult-adds, 1.32 M parameters
    assert abs(half.textbook_macs / 77e6 - 1) < 0.01
    assert abs(half.params / 1.32e6 - 1) < 0.01


class Affine(nn.Module):
    """A custom submodule with its own parameter and arithmetic (no Conv or Dense)."""

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        return x * scale


class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        return Affine()(nn.Conv(8, (3, 3), name="conv")(x)) + x


class UserModel(nn.Module):
    @nn.compact
    def __call__(self, x):
        block = Block()
        x = block(block(nn.Conv(8, (1, 1), name="stem")(x)))  # one module called twice: shared parameters
        shared = nn.Dense(8, name="head")
        x = x.mean(axis=(1, 2))
        return shared(nn.relu(shared(x)))  # and a Dense called twice


def test_user_model_with_shared_parameters_and_repeated_calls():
    x = jax.ShapeDtypeStruct((2, 12, 12, 3), jnp.float32)
    report = analyze(UserModel(), x)
    rows = {row.path: row for row in report.layers}
    assert set(rows) == {"stem", "Block_0/conv", "head"}
    assert rows["Block_0/conv"].calls == 2 and rows["head"].calls == 2
    conv = jc.Conv((2, 12, 12, 8), 8, (3, 3))
    assert rows["Block_0/conv"].flops == 2 * jc.analytic(conv).flops
    assert rows["Block_0/conv"].compiler_flops == rows["Block_0/conv"].flops
    assert rows["head"].compiler_flops == rows["head"].flops == 2 * jc.analytic(jc.Dense((2, 8), 8)).flops
    # params are counted once, however often a module runs
    assert report.params == (3 * 8 + 8) + (9 * 8 * 8 + 8) + 8 + (8 * 8 + 8)
    assert rows["Block_0/conv"].params == 9 * 8 * 8 + 8
    assert sum(row.compiler_flops for row in report.rows) == report.compiler.flops
    assert report.compiler.xla_reproduced("flops")


def test_concrete_inputs_and_given_variables_work_too():
    model = UserModel()
    x = jnp.ones((1, 6, 6, 3))
    variables = model.init(jax.random.PRNGKey(1), x)
    report = analyze(model, x, variables=variables)
    assert report.params == analyze(model, jax.ShapeDtypeStruct(x.shape, x.dtype)).params


def test_render_collapses_repeated_blocks_and_exports(reports_224):
    report = reports_224["mobilenet_v2"]
    text = render(report, depth=1)
    assert "block4 .. block5  (x2)" in text and "block7 .. block9  (x3)" in text
    assert text.splitlines()[-1].startswith("total")
    line = next(line for line in render(report).splitlines() if line.startswith("block1/depthwise/BatchNorm_0 "))
    assert line.split()[1:4] == ["BatchNorm", "1x56x56x96", "1x56x56x96"]  # every module is a row
    assert "multiply-adds that the textbook formula counts and no compiler performs: " in summary(report)
    data = json.loads(to_json(report))
    assert sum(row["compiler_flops"] for row in data["rows"]) == data["compiler_flops"]
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert len(rows) == len(report.rows) and rows[0]["path"] == "stem" and rows[1]["path"] == "stem/Conv_0"
    assert rows[1]["module_type"] == "Conv" and rows[1]["depth"] == "2" and rows[1]["input_dtype"] == "float32"


def test_unknown_zoo_model_and_bad_alpha():
    with pytest.raises(ValueError, match="^model: unknown model"):
        build("vgg16")
    with pytest.raises(ValueError, match="^alpha:"):
        build("mobilenet_v2", alpha=0)
    with pytest.raises(ValueError, match="^alpha:"):
        build("resnet50", alpha=0.5)


def test_one_rule_says_which_zoo_models_train_with_batch_statistics():
    """A training step calls a network whose call takes ``train`` (batch norm) with ``train=True``; the command line
    and the TPU fixtures' capture both ask the one helper."""
    from pathlib import Path

    from jaxcost.models import training_keywords

    assert {name: training_keywords(build(name), "train") for name in ZOO} == {
        "mobilenet_v1": {"train": True}, "mobilenet_v2": {"train": True}, "resnet50": {"train": True},
        "resnet50_v1": {"train": True}, "vit_b16": {}, "gpt2_small": {}}
    assert [training_keywords(build(name), "forward") for name in ZOO] == [{}] * len(ZOO)
    assert training_keywords(nn.Dense(3), "train") == {}
    root = Path(__file__).parents[1]
    for path in ("jaxcost/commands.py", "bench/capture_tpu_programs.py"):
        source = (root / path).read_text()
        assert "training_keywords(" in source and "inspect.signature" not in source, path


def test_nnx_module_layers_named_by_path():
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 8, (3, 3), strides=2, rngs=rngs)
            self.fc = nnx.Linear(8, 4, rngs=rngs)

        def __call__(self, x):
            return self.fc(nnx.relu(self.conv(x)).mean((1, 2)))

    x = jax.ShapeDtypeStruct((2, 9, 9, 3), jnp.float32)
    for mode in ("forward", "train"):
        report = analyze(Net(nnx.Rngs(0)), x, mode=mode)
        rows = {row.path: row for row in report.layers}
        assert set(rows) == {"conv", "fc"}
        assert rows["conv"].flops == jc.analytic(jc.Conv((2, 9, 9, 3), 8, 3, strides=2), mode).flops
        assert report.params == (9 * 3 * 8 + 8) + (8 * 4 + 4)
        assert sum(row.compiler_flops for row in report.rows) == report.compiler.flops
        assert report.compiler.xla_reproduced("flops")
    assert nnx.Conv.__call__.__qualname__.startswith("Conv")  # the recording wrapper is gone again


def test_plain_function_rows_by_kind():
    def mlp(x, w):
        return jax.nn.relu(x @ w)

    x, w = jax.ShapeDtypeStruct((4, 8), jnp.float32), jax.ShapeDtypeStruct((8, 3), jnp.float32)
    report = analyze(mlp, x, w)
    assert report.name == "mlp" and report.layers == []
    kinds = {row.kind: row.compiler_flops for row in report.rows}
    assert kinds["dot outside modules"] == 2 * 4 * 8 * 3
    assert sum(kinds.values()) == report.compiler.flops
    with pytest.raises(ValueError, match="^model:"):
        analyze(42, x)


def test_dataframe(reports_224):
    from jaxcost.reports.model import to_dataframe

    frame = to_dataframe(reports_224["resnet50"])
    assert frame["compiler_flops"].sum() == reports_224["resnet50"].compiler.flops
    assert list(frame.columns)[:5] == ["path", "kind", "module_type", "depth", "calls"]


def test_a_dataframe_without_pandas_says_what_to_install(reports_224, monkeypatch):
    from jaxcost.reports.model import to_dataframe

    monkeypatch.setitem(__import__("sys").modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ImportError, match=r"^to_dataframe needs pandas: pip install pandas$"):
        to_dataframe(reports_224["resnet50"])


class NormedMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(8)(nn.relu(nn.Dense(16)(nn.LayerNorm()(x))))


def _line(text: str, start: str) -> list[str]:
    return next(line for line in text.splitlines() if line.startswith(start + " ")).split()


def test_a_row_without_a_formula_shows_a_dash_and_a_formula_of_zero_work_shows_zero():
    x = jax.ShapeDtypeStruct((2, 8), jnp.float32)
    forward, train = (analyze(NormedMLP(), x, mode=mode) for mode in ("forward", "train"))
    # LayerNorm's operation formula: no multiply-adds, 120 flops forward, 338 in a training step
    assert _line(render(forward), "LayerNorm_0")[5:8] == ["0", "0", "120"]
    assert _line(render(train), "LayerNorm_0")[5:9] == ["0", "0", "338", "432"]
    # in bfloat16 it has no formula: unknown, not zero; its compiler figures stay
    train = analyze(NormedMLP(), jax.ShapeDtypeStruct((2, 8), jnp.bfloat16), mode="train")
    assert _line(render(train), "LayerNorm_0")[6:10] == ["–", "–", "–", "608"]
    rows = {row.path: row for row in train.rows}
    assert not rows["LayerNorm_0"].formula and rows["Dense_0"].formula and rows["LayerNorm_0"].compiler_flops == 608
    assert next(csv.DictReader(io.StringIO(to_csv(train))))["formula"] == "False"


def test_a_column_is_one_declaration_and_its_value(monkeypatch):
    """A new column reaches the table, its sort, CSV, JSON and ``Row.as_dict`` from one entry in ``COLUMNS``."""
    from jaxcost.cli import build_parser
    from jaxcost.models.rows import Row
    from jaxcost.reports import model

    monkeypatch.setattr(Row, "doubled_flops", property(lambda row: 2 * row.compiler_flops), raising=False)
    monkeypatch.setattr(model, "COLUMNS", (*model.COLUMNS, model.Column("doubled_flops", "2x compiler FLOPs",
                                                                        show=str, sortable=True)))
    report = analyze(NormedMLP(), jax.ShapeDtypeStruct((2, 8), jnp.float32))
    text = render(report, sort="doubled_flops")
    assert text.splitlines()[0].endswith("share  2x compiler FLOPs")
    assert _line(text, "Dense_1")[-1] == str(2 * 544) and text.splitlines()[2].startswith("Dense_1")
    assert _line(text, "total")[-1] == str(2 * report.compiler_flops)
    assert next(csv.DictReader(io.StringIO(to_csv(report))))["doubled_flops"] == str(2 * report.rows[0].compiler_flops)
    assert json.loads(to_json(report))["rows"][1]["doubled_flops"] == 2 * report.rows[1].compiler_flops
    assert report.rows[0].as_dict()["doubled_flops"] == 2 * report.rows[0].compiler_flops
    assert build_parser().parse_args(["model", "resnet50", "--sort", "doubled_flops"]).sort == "doubled_flops"


def test_a_table_narrowed_to_a_terminal_leaves_out_the_least_kept_columns_and_says_which(reports_224):
    from jaxcost.reports.model import fitted, table_columns, table_rows

    rows, every = table_rows(reports_224["mobilenet_v2"], depth=1), table_columns(reports_224["mobilenet_v2"])
    columns, cells, dropped = fitted(rows, every, 80)
    assert max(len("  ".join(cell.ljust(len(column.header)) for cell, column in zip(line, columns)).rstrip())
               for line in cells) <= 80
    widths = [max(len(cell) for cell in [column.header, *column_cells]) for column, column_cells in
              zip(columns, zip(*cells))]
    assert sum(widths) + 2 * (len(widths) - 1) <= 80
    # least kept first: the textbook count, the shapes, MACs (half the FLOPs), then the type and the bytes
    assert dropped == ["type", "input", "output", "MACs", "textbook MACs", "compiler bytes"]
    assert fitted(rows, every, 100)[2] == ["input", "output", "MACs", "textbook MACs"]
    assert [column.header for column in columns][0] == "module" and "compiler FLOPs" in [c.header for c in columns]
    assert fitted(rows, every, 400) == (every, rows, [])  # room for everything: nothing changes


def test_a_collapsed_run_of_deep_modules_names_the_last_by_what_differs():
    from jaxcost.reports.model import _after_common_prefix

    assert _after_common_prefix("Block_0/Attention_0/value", "Block_0/Attention_0/query") == "value"
    assert _after_common_prefix("block5", "block4") == "block5"
    assert _after_common_prefix("a/b", "a/b") == "b"  # never nothing


@pytest.mark.cpu
def test_the_operator_table_counts_the_instructions_that_did_arithmetic():
    from jaxcost.reports.model import by_operator

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(8)(x).T.reshape(-1)

    report = jc.analyze(Net(), jax.ShapeDtypeStruct((4, 16), jnp.float32))
    lines = by_operator(report).splitlines()
    counts = {line.split()[0]: line.split()[1] for line in lines[2:]}
    total = int(counts.pop("total"))
    assert total == sum(int(count) for count in counts.values() if count.isdigit())
    assert total == sum(1 for op in report.compiler.recount.ops if op.cost.flops_by_opcode)


def test_a_prefetch_copy_of_a_parameter_is_its_module_s():
    """A TPU copies a weight into its on-chip memory ahead of use (copy-start, copy-done, no metadata): the copy is
    the row of the module that holds the weight, found through the copy's operand (the parameter's op_name is its
    pytree path, with the quotes escaped as XLA prints them)."""
    from jaxcost.hlo.text import parse_module
    from jaxcost.models.rows import Attribution, Call, _prefetched_module

    text = r"""HloModule m

ENTRY e {
  w = f32[64,64]{1,0} parameter(0), metadata={op_name="params[\'block0\'][\'Dense_0\'][\'kernel\']"}
  x = f32[8,64]{1,0} parameter(1), metadata={op_name="inputs[0]"}
  start = (f32[64,64]{1,0}, f32[64,64]{1,0}, u32[]) copy-start(w)
  done = f32[64,64]{1,0} copy-done(start)
  moved = f32[8,64]{1,0} copy(x)
  ROOT t = (f32[64,64]{1,0}, f32[8,64]{1,0}) tuple(done, moved)
}
"""
    by_name = parse_module(text).entry.by_name()
    attribution = Attribution([Call(("block0",), "Block", None, None, None),
                               Call(("block0", "Dense_0"), "Dense", None, None, None)], "Net")
    assert _prefetched_module(by_name["done"], by_name, attribution) == "block0/Dense_0"
    assert _prefetched_module(by_name["start"], by_name, attribution) == "block0/Dense_0"
    assert _prefetched_module(by_name["moved"], by_name, attribution) is None  # an input: no module holds it


@pytest.mark.parametrize("wrap", [nn.remat, nn.jit])
def test_a_wrapped_module_called_thrice_says_so(wrap):
    """A module lifted by nn.remat or nn.jit is traced once; its row counts the calls as its children's rows do."""
    class Sub(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(64, name="inner")(jnp.tanh(x))

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            sub = wrap(Sub)(name="sub")
            for _ in range(3):
                x = sub(x)
            return x

    report = jc.analyze(Net(), jax.ShapeDtypeStruct((4, 64), jnp.float32), mode="train")
    calls = {row.path: row.calls for row in report.rows if row.is_module}
    assert calls == {"sub": 3, "sub/inner": 3}
