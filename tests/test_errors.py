"""Bad input, API and command line: one line that names the argument and says what to pass, and the exit
status the README documents (2 bad argument, 1 a model's own error, 130 Ctrl-C, 141 a reader gone away)."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost import commands
from jaxcost.cli import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, main

SPEC = jc.standard_conv((1, 8, 8, 4), 8)
X = jax.ShapeDtypeStruct((2, 8), jnp.float32)


def _matmul(x):
    return x @ jnp.ones((x.shape[-1], 3))


API_CASES = [
    (lambda: jc.analytic(_matmul), "spec: analytic() takes a jaxcost.Conv or jaxcost.Dense, got function '_matmul'"),
    (lambda: jc.analytic(SPEC, mode="fwd"), "mode: must be 'forward' or 'train'"),
    (lambda: jc.conventions("conv3x3"), "spec: analytic() takes"),
    (lambda: jc.compare(nn.Dense(3), X), "spec_or_function: got a flax Module (Dense)"),
    (lambda: jc.compiled(nn.Conv(3, (3, 3)), X), "jaxcost.analyze(module, x)"),
    (lambda: jc.compare(_matmul, [[1.0, 2.0], [3.0, 4.0]]), "args[0]: a Python list of numbers where an array goes"),
    (lambda: jc.compiled(_matmul, (1.0, 2.0)), "args[0]: a Python tuple of numbers"),
    (lambda: jc.compiled(_matmul, "x"), "args[0]: a string where an array goes"),
    (lambda: jc.compiled(42), "spec_or_function: expected a jaxcost.Conv/Dense or a function, got int 42"),
    (lambda: jc.compiled(SPEC, X), "args: a layer spec brings its own arguments"),
    (lambda: jc.compare(SPEC, mode="eval"), "mode: must be 'forward' or 'train'"),
    (lambda: jc.analyze(nn.Dense(3)), "inputs: analyze(model, *inputs) needs the model's inputs"),
    (lambda: jc.analyze(nn.Dense(3), [1.0, 2.0]), "inputs[0]: a Python list of numbers"),
    (lambda: jc.analyze("resnet50", X), "model: expected a flax.linen or flax.nnx Module or a function, got str"),
    (lambda: jc.analyze(SPEC, X), "model: got a jaxcost layer spec; use jaxcost.compare(spec)"),
    (lambda: jc.analyze(nn.Dense, X), "model: got the class Dense; pass an instance, Dense(...)"),
    (lambda: jc.analyze(nn.Dense(3), X, mode="backward"), "mode: must be 'forward' or 'train'"),
    (lambda: jc.benchmark(SPEC, repeats=0), "repeats: must be a positive integer"),
    (lambda: jc.benchmark(_matmul, [1.0]), "args[0]: a Python list of numbers"),
    (lambda: jc.benchmark(nn.Dense(3), X), "spec_or_function: got a flax Module"),
    (lambda: jc.Conv((1, 8, 8, 6), 8, feature_group_count=4), "feature_group_count: 4 groups must divide the 6"),
    (lambda: jc.Conv((1, 4, 4, 3), 8, 5, padding="VALID"), "kernel_size: dilated kernel 5 is larger"),
    (lambda: jc.Conv("1,8,8,3", 8), "input_shape:"),
    (lambda: jc.Conv((1, 8, 8, 3), 8, dtype="float8"), "dtype: unknown dtype 'float8'"),
    (lambda: jc.Conv((1, 8, 8, 3), 8, padding="CIRCULAR"), "padding: 'CIRCULAR' is not supported"),
    (lambda: jc.Dense((8, 0), 4), "input_shape: every dimension must be a positive integer"),
    (lambda: jc.Dense((8, 4), 2.5), "features: must be a positive integer"),
    (lambda: jc.models.build("vgg16"), "model: unknown model 'vgg16'"),
    (lambda: jc.models.build("resnet50", alpha=0.5), "alpha: resnet50 has no width multiplier"),
]


@pytest.mark.parametrize(("call", "message"), API_CASES)
def test_api_errors_are_one_line_naming_the_argument(call, message):
    with pytest.raises(ValueError) as raised:
        call()
    text = str(raised.value)
    assert "\n" not in text and message in text
    assert text.split(":")[0].split("[")[0].replace("_", "").isalnum()  # it starts with the argument's name


BAD_GRID = {"layer": "conv", "base": {"input_shape": [1, 8, 8, 4], "features": 8}, "axes": {"features": [4, 8]}}

CLI_CASES = [
    (["layer", "conv", "--input", "1,8,8,6", "--features", "8", "--groups", "4"], EXIT_USAGE, "feature_group_count:"),
    (["layer", "conv", "--input", "1,4,4,3", "--features", "8", "--kernel", "5", "--padding", "VALID"], EXIT_USAGE,
     "kernel_size:"),
    (["layer", "conv", "--input", "1,8,8,3", "--features", "8", "--dtype", "float8"], EXIT_USAGE, "dtype:"),
    (["layer", "conv", "--input", "1,8,8,3", "--features", "8", "--padding", "FULL"], EXIT_USAGE, "padding:"),
    (["layer", "conv", "--input", "1,x,8,3", "--features", "8"], EXIT_USAGE, "--input"),
    (["layer", "dense", "--input", "8,16", "--features", "-1"], EXIT_USAGE, "features: must be a positive integer"),
    (["layer", "pool", "--input", "1,8,8,3"], EXIT_USAGE, "invalid choice"),
    (["bogus"], EXIT_USAGE, "invalid choice"),
    (["model", "vgg16"], EXIT_USAGE, "model: unknown model 'vgg16'"),
    (["model", "mobilenet_v2", "--batch", "0"], EXIT_USAGE, "--batch: must be a positive integer"),
    (["model", "no.such.module:Factory"], EXIT_USAGE, "name: cannot import 'no.such.module'"),
    (["model", "/no/such/file.py:Net"], EXIT_USAGE, "name: no such file '/no/such/file.py'"),
    (["model", "json:nothing_here"], EXIT_USAGE, "name: 'json' has no attribute 'nothing_here'"),
    (["bench", "conv", "--input", "1,8,8,3", "--features", "8", "--repeats", "0"], EXIT_USAGE, "repeats:"),
    (["bench", "conv", "--input", "1,8,8,3", "--features", "8", "--plot", "/no/such/dir/roof"], EXIT_USAGE,
     "--plot: the folder '/no/such/dir' does not exist"),
    (["model", "mobilenet_v1", "--kwarg", "train=yes"], EXIT_USAGE,
     "--kwarg: 'train=yes' is ambiguous: write true or false (True, False) for a boolean"),
    (["model", "mobilenet_v1", "--kwarg", "train=FALSE"], EXIT_USAGE, "--kwarg: 'train=FALSE' is ambiguous"),
    (["devices", "--peaks", "/no/such/peaks.json"], EXIT_USAGE, "peaks: cannot read overrides"),
    (["sweep", "/no/such/grid.json"], EXIT_USAGE, "grid: cannot read"),
    (["report", "--no-timing", "--batch", "0"], EXIT_USAGE, "--batch: must be a positive integer, got 0"),
]


@pytest.mark.parametrize(("argv", "status", "message"), CLI_CASES)
def test_cli_errors_are_one_line_with_the_documented_status(argv, status, message, capsys):
    assert main(argv) == status
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err and captured.err.startswith("jaxcost: ")
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(("name", "text", "argv", "message"), [
    ("grid.json", "[1, 2]", ["sweep"], "grid: must be a table with layer, base and axes, got a list"),
    ("grid.ini", "layer = conv", ["sweep"], "grid: '{path}' must be a .json, .toml or .yaml file"),
    ("grid.json", '{"layer": "conv", "axes": {"featurs": [1]}}', ["sweep"],
     "grid: axes.featurs is not a field of a conv layer"),
    ("peaks.json", "[1, 2]", ["devices", "--peaks"], "peaks: '{path}' must hold a JSON object"),
])
def test_malformed_files_are_one_line_errors(name, text, argv, message, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(text)
    assert main([*argv, str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(path=path) in err and "Traceback" not in err


def test_sweep_plot_axis_is_checked_before_the_sweep(tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(BAD_GRID))
    assert main(["sweep", str(grid), "--plot", "nosuchaxis", "--quiet"]) == EXIT_USAGE
    assert "--plot: 'nosuchaxis' is not an axis of the grid; its axes are features" in capsys.readouterr().err
    assert not (tmp_path / "grid.jsonl").exists()  # nothing ran


def test_the_statuses_are_documented_in_help_and_the_docs():
    """``--help`` lists them, and the errors page is generated from the same text (``cli.EXIT_STATUSES``)."""
    help_text = main.__globals__["build_parser"]().format_help()
    root = Path(__file__).parents[1]
    for status in (EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE):
        assert f"  {status} " in help_text
    assert "```{jaxcost-exit-statuses}" in (root / "docs" / "errors.md").read_text()
    assert "(docs/errors.md)" in (root / "README.md").read_text()


USER_MODEL = textwrap.dedent("""
    import flax.linen as nn


    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(4)(x).reshape(3, -1, 7)


    def Factory():
        return Net()
""")


def test_a_user_models_own_error_names_where_it_came_from(tmp_path, capsys):
    path = tmp_path / "my_model.py"
    path.write_text(USER_MODEL)
    assert main(["model", f"{path}:Factory", "--resolution", "8"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"tracing the model '{path}:Factory' raised TypeError" in err
    assert "(at my_model.py:8 in __call__)" in err and "--debug for the traceback" in err
    assert main(["model", f"{path}:Factory", "--resolution", "8", "--debug"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith("jaxcost: error:")


TEXT_MODEL = textwrap.dedent("""
    import flax.linen as nn


    class Embedder(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            return nn.Embed(100, 8)(tokens)


    class Masked(nn.Module):
        @nn.compact
        def __call__(self, tokens, mask):
            return nn.Dense(4)(tokens) * mask
""")


@pytest.mark.parametrize(("model", "error"), [
    ("Embedder", "raised ValueError: Input type must be an integer"),
    ("Masked", "raised TypeError: Masked.__call__() missing 1 required positional argument: 'mask'"),
])
def test_a_text_model_without_input_hears_what_jaxcost_passed_it(model, error, tmp_path, capsys):
    path = tmp_path / "text_model.py"
    path.write_text(TEXT_MODEL)
    assert main(["model", f"{path}:{model}"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and error in err
    assert "; jaxcost passed it one 1x224x224x3 float32 image, having no --input: give the model's inputs with " \
           "--input SHAPE[:DTYPE], once each (e.g. --input 1,128:int32); --debug for the traceback" in err
    assert main(["model", f"{path}:Embedder", "--input", "2,16:float32"]) == EXIT_FAILED  # inputs given: no hint
    assert "jaxcost passed" not in capsys.readouterr().err


def test_a_user_module_that_fails_to_import_is_a_model_error(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text("import numpy\nraise RuntimeError('no GPU here')\n")
    assert main(["model", f"{path}:Net"]) == EXIT_FAILED
    assert "loading '" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(main.__globals__["COMMANDS"], "layer", interrupted)
    assert main(["layer", "dense", "--input", "2,8", "--features", "4"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "jaxcost: interrupted\n"


def test_a_reader_gone_away_is_status_141_without_a_traceback(monkeypatch, capsys):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["layer", "dense", "--input", "2,8", "--features", "4"]) == EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


def _jaxcost(*argv):
    return [sys.executable, "-c", "import sys; from jaxcost.cli import main; sys.exit(main())", *argv]


def test_piping_into_a_closed_reader_prints_no_traceback():
    process = subprocess.Popen(_jaxcost("layer", "dense", "--input", "2,8", "--features", "4"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first line
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_BROKEN_PIPE and err == b""


def test_ctrl_c_during_a_sweep_keeps_what_finished(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({**BAD_GRID, "axes": {"features": list(range(1, 41))}}))
    out = tmp_path / "grid.jsonl"
    process = subprocess.Popen(_jaxcost("sweep", str(grid), "--quiet"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or not out.read_text().strip()):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED
    assert err.decode().strip().splitlines() == [f"jaxcost: interrupted; every finished configuration is in {out}: "
                                                 "run the same command to resume"]
    assert all(json.loads(line)["status"] == "ok" for line in out.read_text().splitlines())


#: The console script as pip writes it, run with one import held up so that Ctrl-C can land while it runs.
INTERRUPTED_IMPORT = """
import importlib.abc, sys, time

class HeldUp(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {held!r}:
            print("importing", flush=True)
            time.sleep(120)
        return None

sys.meta_path.insert(0, HeldUp())
from {module} import {function}
sys.exit({function}())
"""


@pytest.mark.parametrize(("held", "argv"), [("jaxcost.commands", ["--help"]), ("jax", ["devices"])])
def test_ctrl_c_while_the_command_imports_is_one_line_and_status_130(held, argv):
    """The installed command from its first import on: Ctrl-C while its own modules load, or JAX, ends the same
    way as Ctrl-C later does."""
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    module, function = re.search(r'^jaxcost = "([\w.]+):(\w+)"$', pyproject, re.MULTILINE).groups()
    code = INTERRUPTED_IMPORT.format(held=held, module=module, function=function)
    process = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert process.stdout.readline() == b"importing\n"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err.decode()) == (EXIT_INTERRUPTED, "jaxcost: interrupted\n")


def test_model_errors_keep_the_original(tmp_path):
    error = commands.ModelError("x.py:Net", "tracing the model", ZeroDivisionError("division by zero"))
    assert str(error) == "tracing the model 'x.py:Net' raised ZeroDivisionError: division by zero"
    assert isinstance(error.error, ZeroDivisionError)
