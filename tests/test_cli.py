"""The jaxcost command: layer and report, tables and JSON, one-line errors with exit status 2."""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcost import commands, loading
from jaxcost.cli import main
from jaxcost.specs import reference_suite


def test_layer_table(capsys):
    assert main(["layer", "conv", "--input", "1,56,56,64", "--features", "128", "--kernel", "3"]) == 0
    out = capsys.readouterr().out
    assert "451,878,912" in out  # 2 * exact MACs + bias adds, analytic and XLA alike
    assert "verdict:" in out and "fvcore" in out and "MFLOPs" in out


def test_layer_json_matches_the_api(capsys):
    argv = ["layer", "depthwise", "--input", "2,9,9,4", "--multiplier", "2", "--strides", "2", "--padding", "1:0,0:1",
            "--no-bias", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["spec"]["kind"] == "depthwise"
    assert data["spec"]["output_shape"] == [2, 4, 4, 8]  # (9 + 1 - 3) // 2 + 1
    assert data["analytic"]["flops"] + sum(d["flops"] for d in data["deltas"]) == data["xla"]["flops"]
    assert data["flops_remainder"] == 0 and data["bytes_remainder"] == 0


def test_dense_layer(capsys):
    assert main(["layer", "dense", "--input", "8,2048", "--features", "1000", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["analytic"]["flops"] == 32_776_000
    assert data["conventions"]["ptflops"] == 2_049_000  # per sample: (8*2048*1000 + 8*1000) // 8


@pytest.mark.cpu
def test_report_covers_the_reference_suite(tmp_path, capsys):
    assert main(["report", "--plot", str(tmp_path / "roofline")]) == 0
    out = capsys.readouterr().out
    assert "measured ceilings" in out and "of measured" in out
    assert (tmp_path / "roofline.png").exists()
    for spec in reference_suite():
        assert spec.describe() in out
    assert "unexplained" not in out and "remainder   FLOPs 0, bytes 0" in out
    assert "FLOPs/B" in out and "device: cpu" in out


def test_report_takes_a_batch(capsys):
    assert main(["report", "--no-timing", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("jaxcost report: the classic layer types, analytic against the XLA compiler\n")  # unmeasured
    assert "batch 2\n" in out and "2x56x56x128" in out and "2x1000" in out
    assert "remainder   FLOPs 0, bytes 0" in out and "unexplained" not in out


def test_report_json(capsys):
    assert main(["report", "--json", "--no-timing"]) == 0
    rows = json.loads(capsys.readouterr().out)
    kinds = {row["spec"]["kind"] for row in rows}
    assert kinds == {"standard", "pointwise", "group", "depthwise", "dense"}
    assert all(row["flops_remainder"] == 0 and row["bytes_remainder"] == 0 for row in rows)


def test_console_script_points_at_main():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'jaxcost = "jaxcost.__main__:main"' in pyproject  # the command line, Ctrl-C caught from its imports on
    for module in ("jaxcost", "jaxcost.cli"):
        result = subprocess.run([sys.executable, "-m", module, "layer", "conv", "--input", "1,4,4,2", "--features",
                                 "0"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert result.stderr.strip() == "jaxcost: error: features: must be a positive integer, got 0"


def test_layer_training_step_with_ops_table(capsys):
    argv = ["layer", "conv", "--input", "2,16,16,8", "--features", "16", "--train", "--ops", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3x forward (rule)" in out and "FLOPs grad weights" in out
    assert "costliest instructions" in out and "jvp(Conv)/conv_general_dilated" in out
    assert "remainder   FLOPs 0, bytes 0" in out


def test_layer_training_json(capsys):
    assert main(["layer", "dense", "--input", "4,16", "--features", "8", "--train", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["analytic"]["flops"] == 3 * 2 * 4 * 16 * 8 + (2 * 4 - 1) * 8
    assert data["analytic"]["rule_of_thumb_flops"] == 3 * (2 * 4 * 16 * 8 + 4 * 8)
    assert data["flops_remainder"] == 0
    assert all(op["flops"] >= 0 for op in data["ops"])


def test_model_command_table(capsys):
    assert main(["model", "mobilenet_v1", "--resolution", "96", "--alpha", "0.25", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "block1_dw" in out and "BatchNorm" not in out and "textbook - exact" in out  # grouped to depth 1
    assert out.count("\ntotal ") == 1


def test_model_command_json_and_csv(capsys):
    assert main(["model", "resnet50", "--resolution", "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 25_557_032
    assert sum(row["compiler_flops"] for row in data["rows"]) == data["compiler_flops"]
    assert main(["model", "mobilenet_v2", "--resolution", "64", "--csv", "--train"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("path,kind,module_type,depth,calls")


def test_model_command_loads_a_user_factory(capsys):
    assert main(["model", "tests.test_models:UserModel", "--resolution", "12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {row["path"] for row in data["rows"]} >= {"stem", "Block_0/conv", "head"}


@pytest.mark.parametrize(("argv", "message"), [
    (["model", "vgg16"], "model: unknown model"),
    (["model", "mobilenet_v2", "--alpha", "-1"], "alpha:"),
    (["model", "mobilenet_v2", "--batch", "0"], "batch:"),
    (["model", "mobilenet_v2", "--dtype", "float8"], "dtype:"),
    (["model", "no.such.module:Factory"], "name: cannot import"),
    (["model", "json:loads"], "name: 'json:loads' must be a Module or take no arguments"),
    (["model", "json:dumps"], "name: 'json:dumps' must be a Module or take no arguments"),
])
def test_model_command_bad_arguments(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.mark.cpu
def test_bench_one_layer_json(capsys):
    argv = ["bench", "conv", "--input", "1,12,12,8", "--features", "8", "--repeats", "3", "--no-ceilings", "--json"]
    assert main(argv) == 0
    (measurement,) = json.loads(capsys.readouterr().out)
    from jaxcost import analytic, standard_conv

    assert measurement["flops"] == analytic(standard_conv((1, 12, 12, 8), 8, 3)).flops  # recounted, not MACs
    assert measurement["seconds_median"] > 0 and measurement["precision"] == "fp32"
    assert "back-to-back" in measurement["method"]


def test_bench_table_with_ceilings_and_plot(tmp_path, capsys):
    argv = ["bench", "depthwise", "--input", "1,16,16,8", "--repeats", "3", "--plot", str(tmp_path / "roof")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "measured ceilings: matmul" in out and "of measured" in out and "roofline:" in out
    assert (tmp_path / "roof.png").exists() and (tmp_path / "roof.svg").exists()


@pytest.mark.cpu
def test_devices(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu:0") and "estimate" in out and "float32 is held against fp32" in out


def test_bench_bad_arguments(capsys):
    assert main(["bench", "conv", "--input", "1,8,8,3", "--features", "4", "--repeats", "0", "--no-ceilings"]) == 2
    assert "repeats:" in capsys.readouterr().err
    assert main(["devices", "--peaks", "/no/such/file.json"]) == 2
    assert "peaks: cannot read" in capsys.readouterr().err


def test_kwarg_values_in_json_or_python_spellings():
    argv = ["train=False", "dropout=True", "mask=None", "deterministic=false", "cache=null", "depth=4",
            "name=text", "quoted=\"yes\"", "scale=0.5"]
    assert loading.model_keywords(argparse.Namespace(kwarg=argv)) == {
        "train": False, "dropout": True, "mask": None, "deterministic": False, "cache": None, "depth": 4,
        "name": "text", "quoted": "yes", "scale": 0.5}
    for ambiguous in ("TRUE", "none", "Null", "yes", "off"):
        with pytest.raises(ValueError, match=rf"^--kwarg: 'train={ambiguous}' is ambiguous: write true or false"):
            loading.model_keywords(argparse.Namespace(kwarg=[f"train={ambiguous}"]))


def test_a_conv_input_of_three_numbers_says_it_is_read_as_one_dimensional(capsys):
    assert main(["layer", "conv", "--input", "56,56,64", "--features", "8", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ("jaxcost: --input 56x56x64 read as (N=56, W=56, C=64): a 1-D convolution; give 4 "
                            "numbers, N,H,W,C, for a 2-D one\n")
    assert json.loads(captured.out)["spec"]["output_shape"] == [56, 56, 8]
    assert main(["layer", "depthwise", "--input", "1,4,6,6,2", "--json"]) == 0
    assert "(N=1, D=4, H=6, W=6, C=2): a 3-D convolution" in capsys.readouterr().err
    assert main(["layer", "conv", "--input", "1,8,8,4", "--features", "8", "--json"]) == 0
    assert capsys.readouterr().err == ""  # N,H,W,C: nothing to say


@pytest.mark.parametrize("argv", [
    ["bench", "dense", "--input", "2,8", "--features", "4", "--no-ceilings"],
    ["report"],
])
def test_an_unwritable_plot_folder_is_refused_before_anything_is_measured(argv, tmp_path, monkeypatch, capsys):
    def measured(*args, **kwargs):
        raise AssertionError("measured before --plot was checked")

    monkeypatch.setattr(commands, "_measure", measured)
    assert main([*argv, "--plot", str(tmp_path / "missing" / "roof")]) == 2
    assert capsys.readouterr().err == f"jaxcost: error: --plot: the folder '{tmp_path / 'missing'}' does not exist\n"


@pytest.mark.cpu  # the widths of what the CPU's program gives
def test_a_model_table_on_a_terminal_fits_it_and_says_what_it_left_out(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["model", "mobilenet_v2", "--resolution", "32", "--depth", "1"]) == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # rich's bold headers and totals
    table = out[:out.index("\ntotal")].splitlines()[1:]
    assert table[0].split() == ["module", "params", "FLOPs", "compiler", "FLOPs", "share"]
    assert max(map(len, table)) <= 80
    assert "left out to fit 80 columns: type, input, output, MACs, textbook MACs, compiler bytes" in " ".join(
        out.split())  # wrapped to the terminal too
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)  # a file or a pipe gets every column
    assert main(["model", "mobilenet_v2", "--resolution", "32", "--depth", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:4] == ["module", "type", "input", "output"]


@pytest.mark.cpu  # the widths of what the CPU's program gives
def test_a_layers_explanation_and_conventions_fit_a_hundred_columns_in_a_file(capsys):
    assert main(["layer", "depthwise", "--input", "1,56,56,64", "--dtype", "bfloat16", "--ops", "0"]) == 0
    out = capsys.readouterr().out
    explained = out[out.index("Why analytic"):out.index("What other tools")].splitlines()
    conventions = out[out.index("What other tools"):].splitlines()
    assert max(map(len, explained + conventions)) <= 100
    assert any(line.startswith(" " * 41 + "element (602,176 flops)") for line in explained)  # under its description


@pytest.mark.cpu  # the widths of what the CPU's program gives
def test_the_report_on_a_terminal_narrows_its_suite_table_to_it(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["report", "--no-timing"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("layer "))
    table = lines[start:start + 11]
    assert max(map(len, table)) <= 100 and table[0].split()[0] == "layer" and "verdict" in table[0]
    assert lines[start + 11].startswith("left out to fit 100 columns: ") and "MACs" in lines[start + 11]
    assert max(len(line) for line in lines[start + 11:start + 13]) <= 100


def test_a_subcommand_is_declared_once_and_the_parser_and_dispatch_follow():
    from jaxcost import cli

    names = [subcommand.name for subcommand in cli.SUBCOMMANDS]
    choices = cli.build_parser()._subparsers._group_actions[0].choices
    assert list(choices) == names and set(cli.COMMANDS) == set(names)
    assert cli.ON_THIS_DEVICE == ("layer", "bench", "devices", "model", "report", "fit")  # a sweep's is in workers
