"""Models with state and randomness, and models that take other inputs than one image: BatchNorm with
``train=True`` in both modes, dropout with ``rngs``, every parameter in a row, token models and models with
several inputs from the command line."""

import json
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxcost.cli import main
from jaxcost.models.analysis import analyze
from jaxcost.reports.model import summary, to_json

pytestmark = pytest.mark.cpu  # asserts what XLA does on the CPU

IMAGES = jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32)


class Net(nn.Module):
    """Conv, BatchNorm, relu, Dropout, Dense: state that updates in training, and a random stream."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(16, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(x)
        x = nn.Dropout(0.1, deterministic=not train)(x)
        return nn.Dense(10)(x.mean((1, 2)))


NET_PARAMS = (3 * 3 * 3 * 16 + 16) + (16 + 16) + (16 * 10 + 10)  # conv, BatchNorm scale and bias, dense


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_batchnorm_in_training_mode_updates_its_statistics_in_both_modes(mode):
    evaluating = analyze(Net(), IMAGES, mode=mode)
    training = analyze(Net(), IMAGES, mode=mode, train=True, rngs={"dropout": 0})
    for report in (evaluating, training):
        assert report.params == NET_PARAMS == sum(row.params for row in report.rows)
        assert report.collections == {"batch_stats": 2 * 16}  # mean and variance per channel
        assert sum(row.compiler_flops for row in report.rows) == report.compiler_flops
        assert sum(row.compiler_bytes for row in report.rows) == report.compiler_bytes
    norm_evaluating, norm_training = (next(row for row in report.rows if row.path == "BatchNorm_0")
                                      for report in (evaluating, training))
    assert norm_evaluating.params == norm_training.params == 32
    # batch statistics: a sum and a sum of squares over 2x16x16 values per channel, on top of normalizing
    extra = 2 * 2 * 16 * 16 * 16 if mode == "forward" else 1
    assert norm_training.compiler_flops >= norm_evaluating.compiler_flops + extra
    # the updated statistics are outputs of the compiled step: written once more
    assert training.compiler.bytes_accessed > evaluating.compiler.bytes_accessed
    assert "batch_stats: 32 values beside the params (state, not trained)" in summary(training)
    assert json.loads(to_json(training))["collections"] == {"batch_stats": 32}


def test_dropout_needs_its_stream_and_says_so():
    with pytest.raises(ValueError, match=r"^rngs: the model draws random numbers from the 'dropout' stream; "
                                         r"pass rngs=\{'dropout': 0\} \(on the command line: --rng dropout\)"):
        analyze(Net(), IMAGES, train=True)
    seeded = analyze(Net(), IMAGES, train=True, rngs={"dropout": 3})
    # the random bits come from a loop that XLA counts once; the summary says so, not "float32 sums"
    assert seeded.compiler_flops > seeded.compiler.xla_flops
    assert "XLA counts each loop body once" in summary(seeded)
    keyed = analyze(Net(), IMAGES, train=True, rngs={"dropout": jax.random.PRNGKey(3)})
    assert seeded.compiler_flops == keyed.compiler_flops
    rows = {row.path: row for row in seeded.rows}
    assert rows["Dropout_0"].compiler_flops > 0  # random bits drawn for every element: not free
    assert rows["Dropout_0"].module_type == "Dropout" and rows["Dropout_0"].output_shape == (2, 16, 16, 16)
    assert "Dropout_0" not in {row.path for row in analyze(Net(), IMAGES).rows if row.compiler_flops}
    with pytest.raises(ValueError, match="^rngs: must map stream names to keys or integer seeds"):
        analyze(Net(), IMAGES, rngs=[0])
    with pytest.raises(ValueError, match="^rngs: only a flax.linen model takes rngs"):
        analyze(lambda x: x * 2, IMAGES, rngs={"dropout": 0})


MODEL_FILE = '''
import flax.linen as nn
from blocks import Mlp  # a neighbour of this file: importable without PYTHONPATH

class Pair(nn.Module):
    vocabulary: int = 1000

    @nn.compact
    def __call__(self, tokens, segments, train: bool = False):
        x = nn.Embed(self.vocabulary, 64)(tokens) + nn.Embed(2, 64)(segments)
        x = nn.LayerNorm()(x)
        x = nn.Dropout(0.1, deterministic=not train)(x)
        return Mlp()(x)

def build():
    return Pair()
'''
BLOCKS_FILE = '''
import flax.linen as nn

class Mlp(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(64)(nn.gelu(nn.Dense(256)(x)))
'''
NNX_FILE = '''
from flax import nnx

class Mlp(nnx.Module):
    def __init__(self, rngs):
        self.up = nnx.Linear(16, 32, rngs=rngs)
        self.down = nnx.Linear(32, 4, rngs=rngs)

    def __call__(self, x):
        return self.down(nnx.relu(self.up(x)))

def build():
    return Mlp(nnx.Rngs(0))
'''


@pytest.fixture
def model_files(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    for name, text in (("pair.py", MODEL_FILE), ("blocks.py", BLOCKS_FILE), ("small_nnx.py", NNX_FILE)):
        (folder / name).write_text(textwrap.dedent(text))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.syspath_prepend(str(elsewhere))  # undone after the test, like the folder the loader adds
    return folder


def test_a_token_model_with_two_inputs_from_a_file(model_files, capsys):
    model = str(model_files / "pair.py") + ":build"
    assert main(["model", model, "--input", "2,128:int32", "--input", "2,128:int32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    embeddings = 1000 * 64 + 2 * 64
    dense = (64 * 256 + 256) + (256 * 64 + 64)
    assert data["params"] == embeddings + 2 * 64 + dense == sum(row["params"] for row in data["rows"])
    rows = {row["path"]: row for row in data["rows"]}
    assert rows["Mlp_0/Dense_1"]["flops"] == 2 * 2 * 128 * 64 * 256 + 2 * 128 * 256  # MACs twice, then the bias
    assert rows["Mlp_0/Dense_1"]["input_shape"] == [2, 128, 64]
    assert (rows["Embed_0"]["params"], rows["Embed_1"]["params"]) == (1000 * 64, 2 * 64)
    assert rows["Embed_0"]["input_dtype"] == "int32" and rows["Embed_0"]["output_shape"] == [2, 128, 64]
    assert sum(row["compiler_flops"] for row in data["rows"]) == data["compiler_flops"]


def test_model_keywords_and_random_streams_from_the_command_line(model_files, capsys):
    model = str(model_files / "pair.py") + ":build"
    inputs = ["--input", "1,16:int32", "--input", "1,16:int32"]
    assert main(["model", model, *inputs, "--kwarg", "train=true"]) == 2
    assert "jaxcost: error: rngs: the model draws random numbers from the 'dropout' stream" in capsys.readouterr().err
    assert main(["model", model, *inputs, "--kwarg", "train=true", "--rng", "dropout", "--train", "--json"]) == 0
    training = json.loads(capsys.readouterr().out)
    assert main(["model", model, *inputs, "--train", "--json"]) == 0
    evaluating = json.loads(capsys.readouterr().out)
    assert training["mode"] == "train" and training["compiler_flops"] > evaluating["compiler_flops"]


def test_an_nnx_factory_from_a_file(model_files, capsys):
    assert main(["model", str(model_files / "small_nnx.py") + ":build", "--input", "8,16", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == (16 * 32 + 32) + (32 * 4 + 4)
    assert {row["path"] for row in data["rows"]} >= {"up", "down"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--input", "8,x"], "--input: '8,x' must be positive sizes, comma-separated"),
    (["--input", "8,0"], "--input: '8,0' must be positive sizes"),
    (["--input", "8,16:int5"], "--input: '8,16:int5': unknown dtype 'int5'"),
    (["--input", "8,16", "--batch", "2"], "--input: gives the input shapes; drop --batch"),
    (["--input", "8,16", "--kwarg", "3=4"], "--kwarg: '3=4' must be NAME=VALUE"),
    (["--input", "8,16", "--kwarg", "train"], "--kwarg: 'train' must be NAME=VALUE"),
])
def test_bad_inputs_and_keywords(model_files, argv, message, capsys):
    assert main(["model", str(model_files / "small_nnx.py") + ":build", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
