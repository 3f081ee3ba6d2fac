"""Sweeps: every configuration recorded once, kills survived, failures recorded with their reason."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxcost.cli import main
from jaxcost.sweep import ResultsFile, configurations, load_grid, run_sweep, spec_of

GRID_200 = {"layer": "conv", "base": {"input_shape": [1, 12, 12, 8], "kernel_size": 3},
            "axes": {"features": [8, 16, 24, 32, 40], "groups": [1, 2, 4, 8], "kernel": [1, 3],
                     "batch": [1, 2, 3, 4, 5]}}


def jaxcost_command() -> list[str]:
    script = Path(sys.executable).parent / "jaxcost"
    return [str(script)] if script.exists() else [sys.executable, "-m", "jaxcost.cli"]


def test_grid_has_200_configurations():
    assert len(configurations(GRID_200)) == 5 * 4 * 2 * 5
    assert len({json.dumps(c, sort_keys=True) for c in configurations(GRID_200)}) == 200


def test_killed_sweep_resumes_to_exactly_200_records(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(GRID_200))
    out = tmp_path / "results.jsonl"
    process = subprocess.Popen(jaxcost_command() + ["sweep", str(grid), "--out", str(out), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 60:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sweep finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first = out.read_text().count("\n")
    assert 60 <= first < 200
    result = subprocess.run(jaxcost_command() + ["sweep", str(grid), "--out", str(out), "--quiet"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    records = list(ResultsFile(out).records())
    assert len(records) == 200
    assert len({record["key"] for record in records}) == 200
    assert all(record["status"] == "ok" for record in records)
    assert f"{first} already there" in result.stdout


@pytest.mark.cpu
def test_failures_are_recorded_and_the_exit_status_says_so(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('layer = "conv"\n[base]\ninput_shape = [1, 6, 6, 6]\n[axes]\n'
                    'features = [6, 8]\ngroups = [1, 4]\nkernel = [3, 9]\npadding = ["VALID"]\n')
    out = tmp_path / "results.csv"
    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 1
    records = list(ResultsFile(out).records())
    assert len(records) == 8
    failed = [r for r in records if r["status"] == "failed"]
    reasons = {r["reason"].split(":")[1].strip() for r in failed}
    assert reasons == {"feature_group_count", "kernel_size"}  # groups not dividing, kernel 9 > 6 (VALID)
    ok = [r for r in records if r["status"] == "ok"]
    assert ok and all(r["compiler_flops"] == r["xla_flops"] for r in ok)
    assert "2 ok, 6 failed" in capsys.readouterr().out


def test_torn_last_line_is_dropped_on_resume(tmp_path):
    grid = {"layer": "dense", "base": {"input_shape": [4, 8]}, "axes": {"features": [1, 2, 3]}}
    out = tmp_path / "results.jsonl"
    run_sweep(grid, out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # a crash mid-write
    counts = run_sweep(grid, out)
    assert counts == {"ok": 1, "failed": 0, "skipped": 2}
    assert len(list(ResultsFile(out).records())) == 3


def test_timing_and_plot_along_an_axis(tmp_path):
    grid = {"layer": "depthwise", "base": {"input_shape": [1, 8, 8, 4]},
            "axes": {"multiplier": [1, 2], "size": [8, 16]}, "timing": True}
    out = tmp_path / "results.jsonl"
    assert run_sweep(grid, out)["ok"] == 4
    assert all(r["seconds_median"] > 0 for r in ResultsFile(out).records())
    from jaxcost.sweep import plot_axis

    written = plot_axis(out, "size", tmp_path / "by_size")
    assert all(path.stat().st_size > 1000 for path in written)


@pytest.mark.parametrize(("grid", "message"), [
    ({"layer": "pool", "axes": {"a": [1]}}, "layer must be"),
    ({"layer": "conv", "axes": {}}, "axes must"),
    ({"layer": "conv", "axes": {"features": []}}, "non-empty list"),
    ({"layer": "conv", "axes": {"features": [1]}, "mode": "eval"}, "mode must"),
])
def test_bad_grids(tmp_path, grid, message):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid))
    with pytest.raises(ValueError, match=f"^grid: .*{message}"):
        load_grid(path)


def test_spec_shorthands():
    spec = spec_of("conv", {"input_shape": [1, 8, 8, 4], "features": 8, "batch": 3, "size": 10, "channels": 6,
                            "kernel": 5, "stride": 2, "groups": 2})
    assert spec.input_shape == (3, 10, 10, 6) and spec.kernel_size == (5, 5) and spec.feature_group_count == 2
