"""Sweeps: every configuration recorded once per grid, in worker processes that may time out or crash
without taking the sweep down; resumable, shardable, mergeable; grids checked before any work."""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jaxcost.cli import main
from jaxcost.sweep import (
    ResultsFile,
    check_grid,
    load_grid,
    merge,
    parse_shard,
    plot_axis,
    run_sweep,
    same_records,
    shard_keys,
    spec_of,
)
from jaxcost.sweep import run as sweep_run
from jaxcost.sweep.run import probe, usable_cores, worker_setups
from tests.slurm_cluster import documented_script

GRID_200 = {"layer": "conv", "base": {"input_shape": [1, 12, 12, 8], "kernel_size": 3},
            "axes": {"features": [8, 16, 24, 32, 40], "groups": [1, 2, 4, 8], "kernel": [1, 3],
                     "batch": [1, 2, 3, 4, 5]}}
SMALL = {"layer": "dense", "base": {"input_shape": [4, 8]}, "axes": {"features": [1, 2, 3], "use_bias": [True, False]}}
#: With failures: 4 groups do not divide 6 channels, a 9-wide kernel does not fit 6 pixels unpadded.
WITH_FAILURES = {"layer": "conv", "base": {"input_shape": [1, 6, 6, 6], "padding": "VALID"},
                 "axes": {"features": [6, 8], "groups": [1, 4], "kernel": [3, 9]}}
#: Timed, one configuration quick and one far past a second on the CPU.
SLOW = {"layer": "conv", "base": {"input_shape": [1, 8, 8, 64], "features": 64}, "axes": {"size": [8, 1024]},
        "timing": True, "repeats": 1}


def jaxcost_command() -> list[str]:
    script = Path(sys.executable).parent / "jaxcost"
    return [str(script)] if script.exists() else [sys.executable, "-m", "jaxcost.cli"]


def write_grid(folder: Path, grid: dict, name: str = "grid.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(grid))
    return path


def test_grid_has_200_configurations_with_distinct_keys():
    grid = check_grid(GRID_200)
    assert len(grid.configurations()) == 5 * 4 * 2 * 5
    assert len({grid.key(config, "cpu") for config in grid.configurations()}) == 200


def test_a_key_holds_the_settings_and_the_device_that_change_a_result():
    config = {"input_shape": [4, 8], "features": 2}
    keys = {check_grid({**SMALL, **settings}).key(config, "cpu") for settings in (
        {}, {"mode": "train"}, {"timing": True}, {"timing": True, "repeats": 9},
        {"timing": True, "precision": "highest"},
        {"layer": "conv", "base": {"input_shape": [1, 4, 4, 8]}})}
    assert len(keys) == 6
    # the compiled program, and so every compiler figure, depends on the backend
    assert check_grid(SMALL).key(config, "NVIDIA H200") != check_grid(SMALL).key(config, "cpu")
    # a time limit decides only whether a run finishes, not what it records
    assert check_grid({**SMALL, "seconds_limit": 5}).key(config, "cpu") == check_grid(SMALL).key(config, "cpu")


def test_killed_sweep_resumes_to_exactly_200_records(tmp_path):
    grid = write_grid(tmp_path, GRID_200)
    out = tmp_path / "results.jsonl"
    process = subprocess.Popen(jaxcost_command() + ["sweep", str(grid), "--out", str(out), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 60:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sweep finished before it could be killed"
    worker = _worker_of(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first = out.read_text().count("\n")
    assert 60 <= first < 200
    result = subprocess.run(jaxcost_command() + ["sweep", str(grid), "--out", str(out), "--quiet"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    records = list(ResultsFile(out).records())
    assert len(records) == 200 and len({record["key"] for record in records}) == 200
    assert all(record["status"] == "ok" for record in records)
    assert f"{first} already there" in result.stdout
    if worker is not None:  # Linux: the killed sweep's workers died with it
        assert not _alive(worker)


def test_two_sweeps_writing_one_file_lose_nothing_and_tear_no_line(tmp_path):
    grid = write_grid(tmp_path, {**GRID_200, "axes": {**GRID_200["axes"], "batch": [1, 2]}})
    out = tmp_path / "results.csv"
    command = jaxcost_command() + ["sweep", str(grid), "--out", str(out), "--quiet", "--jobs", "1"]
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    lines = out.read_text().splitlines()
    assert lines.count(lines[0]) == 1  # one header: the second writer saw the first's
    records = list(ResultsFile(out).records())
    assert all(record["status"] == "ok" and record["compiler_flops"] > 0 for record in records)
    assert len({record["key"] for record in records}) == 80


@pytest.mark.cpu
def test_failures_are_recorded_and_the_exit_status_says_so_on_every_rerun(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('layer = "conv"\n[base]\ninput_shape = [1, 6, 6, 6]\npadding = "VALID"\n[axes]\n'
                    'features = [6, 8]\ngroups = [1, 4]\nkernel = [3, 9]\n')
    out = tmp_path / "results.csv"
    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 1
    records = list(ResultsFile(out).records())
    assert len(records) == 8
    failed = [r for r in records if r["status"] == "failed"]
    reasons = {r["reason"].split(":")[1].strip() for r in failed}
    assert reasons == {"feature_group_count", "kernel_size"}  # groups not dividing, kernel 9 > 6 (VALID)
    ok = [r for r in records if r["status"] == "ok"]
    assert ok and all(r["compiler_flops"] == r["xla_flops"] for r in ok)
    printed = capsys.readouterr().out
    assert "2 ok, 6 failed" in printed
    assert_failures_listed(printed, out)
    # nothing changed: nothing runs, and the failures recorded earlier still set the exit status (and are listed)
    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "0 ok, 0 failed, 8 already there (6 of them failed: --retry-failed" in printed
    assert_failures_listed(printed, out)
    assert main(["sweep", str(grid), "--out", str(out), "--quiet", "--retry-failed"]) == 1
    assert "0 ok, 6 failed, 2 already there" in capsys.readouterr().out
    assert len(list(ResultsFile(out).records())) == 14 and len(ResultsFile(out).latest()) == 8


def assert_failures_listed(printed: str, out: Path) -> None:
    """The sweep printed five of the six failures of WITH_FAILURES, each its axes and reason, then where the rest is."""
    listed = [line for line in printed.splitlines() if line.startswith("  ")]
    assert len(listed) == 6 and listed[-1] == f"  and 1 more; see {out}"
    pattern = r"  features=[68], groups=[14], kernel=[39]: invalid: (feature_group_count|kernel_size): \S.*"
    assert all(re.fullmatch(pattern, line) for line in listed[:5])


def test_a_retried_failure_that_now_succeeds_clears_the_exit_status(tmp_path):
    out = tmp_path / "results.jsonl"
    grid = check_grid(SMALL)
    config = grid.configurations()[0]
    key = grid.key(config, probe().device_kind)
    ResultsFile(out).append({"key": key, "config": config, "status": "timeout", "reason": "timeout"})
    assert run_sweep(SMALL, out).any_failed
    summary = run_sweep(SMALL, out, retry_failed=True)
    assert (summary.ok, summary.failed, summary.already_ok, summary.any_failed) == (1, 0, 5, False)


def test_a_changed_mode_or_timing_computes_the_new_records_beside_the_old(tmp_path):
    out = tmp_path / "results.jsonl"
    assert run_sweep(SMALL, out).ok == 6
    summary = run_sweep({**SMALL, "mode": "train"}, out)
    assert (summary.ok, summary.already_ok) == (6, 0)
    latest = ResultsFile(out).latest().values()
    forward = {json.dumps(r["config"], sort_keys=True): r for r in latest if r["mode"] == "forward"}
    train = {json.dumps(r["config"], sort_keys=True): r for r in latest if r["mode"] == "train"}
    assert forward.keys() == train.keys() and len(forward) == 6
    for config, record in forward.items():  # a training step: forward, input gradient and weight gradient
        assert train[config]["flops"] > 2 * record["flops"]
    assert run_sweep({**SMALL, "mode": "train"}, out).already_ok == 6
    timed = run_sweep({**SMALL, "axes": {"features": [1]}, "timing": True}, out)
    assert timed.ok == 1
    (record,) = [r for r in ResultsFile(out).latest().values() if r["timing"]]
    assert record["seconds_median"] > 0 and record["config"]["features"] == 1


def test_records_say_where_and_with_what_they_were_made(tmp_path):
    import jax

    out = tmp_path / "results.jsonl"
    run_sweep({**SMALL, "axes": {"features": [2]}}, out)
    (record,) = ResultsFile(out).records()
    assert record["jax"] == jax.__version__ and record["jaxcost"] and record["device_kind"]
    assert record["platform"] in ("cpu", "gpu", "tpu") and record["seconds"] > 0


def test_more_workers_record_the_same_results(tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    grid = {**WITH_FAILURES, "axes": {**WITH_FAILURES["axes"], "features": [6, 8, 12]}}
    assert run_sweep(grid, one, jobs=1).jobs == 1
    assert run_sweep(grid, two, jobs=2).jobs == 2
    first, second = list(ResultsFile(one).records()), list(ResultsFile(two).records())
    assert len(first) == 12 and same_records(first, second)
    assert not same_records(first, second[1:])


def test_shards_partition_the_grid_and_merge_back_to_the_unsharded_sweep(tmp_path):
    whole = tmp_path / "whole.jsonl"
    run_sweep(WITH_FAILURES, whole)
    shards = [tmp_path / f"shard{k}.jsonl" for k in (1, 2, 3)]
    for index, path in enumerate(shards, 1):
        run_sweep(WITH_FAILURES, path, shard=(index, 3))
    sizes = [len(list(ResultsFile(path).records())) for path in shards]
    assert sum(sizes) == 8
    merged = merge([*shards, shards[0]], tmp_path / "merged.jsonl")  # a shard given twice: duplicates dropped
    assert (merged.records, merged.duplicates) == (8, sizes[0])
    assert same_records(list(ResultsFile(merged.path).records()), list(ResultsFile(whole).records()))


def test_shards_are_even_and_do_not_depend_on_the_order_of_the_grid_file():
    reordered = {"layer": "conv", "axes": {"batch": [5, 4, 3, 2, 1], "kernel": [3, 1], "groups": [8, 4, 2, 1],
                                           "features": [40, 32, 24, 16, 8]},
                 "base": {"kernel_size": 3, "input_shape": [1, 12, 12, 8]}}
    shares = []
    for grid in (GRID_200, reordered):
        grid = check_grid(grid)
        keys = [grid.key(config, "cpu") for config in grid.configurations()]
        shares.append([shard_keys(keys, (k, 3)) for k in (1, 2, 3)])
    assert shares[0] == shares[1]
    assert sorted(map(len, shares[0])) == [66, 67, 67] and set.union(*shares[0]) == set(keys)
    assert not shares[0][0] & shares[0][1]
    # the large and the small configurations are spread over the shards, not one shard's lot
    batches = [sorted(json.loads(key)["config"]["batch"] for key in share) for share in shares[0]]
    assert all(batch.count(5) >= 5 for batch in batches)


def test_a_success_is_kept_over_a_failure_by_merge_and_by_the_sweep_alike(tmp_path):
    grid = check_grid(SMALL)
    configs = grid.configurations()
    key = grid.key(configs[0], probe().device_kind)
    good = {"key": key, "config": configs[0], "status": "ok", "flops": 64}
    bad = {**good, "status": "timeout", "flops": None}
    ResultsFile(tmp_path / "a.jsonl").append(good)
    ResultsFile(tmp_path / "b.jsonl").append(bad)
    merge([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], tmp_path / "a.jsonl")  # out may be a source
    assert list(ResultsFile(tmp_path / "a.jsonl").records()) == [good]
    both = tmp_path / "both.jsonl"  # two writers: one succeeded, the other timed out after
    for record in (good, bad):
        ResultsFile(both).append(record)
    summary = run_sweep({**SMALL, "axes": {"features": [configs[0]["features"]], "use_bias": [True]}}, both)
    assert (summary.already_ok, summary.any_failed) == (1, False)


def test_a_torn_shard_still_merges(tmp_path):
    shard = tmp_path / "shard.jsonl"
    run_sweep(SMALL, shard)
    text = shard.read_text()
    shard.write_text(text + text.splitlines()[0][:40])  # a machine crash mid-write
    assert merge([shard], tmp_path / "merged.jsonl").records == 6


def test_merge_from_the_command_line(tmp_path, capsys):
    run_sweep(SMALL, tmp_path / "a.jsonl", shard=(1, 2))
    run_sweep(SMALL, tmp_path / "b.jsonl", shard=(2, 2))
    out = tmp_path / "all.csv"
    assert main(["sweep", "merge", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--out", str(out)]) == 0
    assert f"{out}: 6 records (0 duplicates dropped)" in capsys.readouterr().out
    assert main(["sweep", "merge", str(tmp_path / "a.jsonl")]) == 2
    assert "--out: 'jaxcost sweep merge A B ... --out R' needs" in capsys.readouterr().err


def test_csv_cells_are_plain_and_pandas_reads_them(tmp_path):
    import pandas  # in the test extra: the check always runs
    out = tmp_path / "results.csv"
    run_sweep(WITH_FAILURES, out)
    frame = pandas.read_csv(out)
    assert set(frame["status"]) == {"ok", "failed"}
    assert frame["compiler_flops"].dtype.kind in "if" and frame["params"].isna().sum() == 6
    assert frame.loc[frame["status"] == "failed", "reason"].str.startswith("invalid: ").all()
    assert not frame.isin(["null", '"ok"']).any().any()
    first = next(record for record in ResultsFile(out).records() if record["status"] == "ok")
    assert isinstance(first["config"], dict) and isinstance(first["timing"], bool)
    assert first["status"] == "ok" and first["reason"] is None and isinstance(first["compiler_flops"], int)


def test_a_csv_file_with_other_columns_is_refused(tmp_path):
    out = tmp_path / "results.csv"
    out.write_text("key,config,status\n")
    with pytest.raises(ValueError, match="^results: .* holds other columns"):
        run_sweep(SMALL, out)


def test_torn_last_line_is_dropped_on_resume(tmp_path):
    out = tmp_path / "results.jsonl"
    run_sweep({**SMALL, "axes": {"features": [1, 2, 3]}}, out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # a crash mid-write
    summary = run_sweep({**SMALL, "axes": {"features": [1, 2, 3]}}, out)
    assert (summary.ok, summary.failed, summary.already_ok) == (1, 0, 2)
    assert len(list(ResultsFile(out).records())) == 3


def test_timing_and_plot_along_an_axis(tmp_path):
    grid = {"layer": "depthwise", "base": {"input_shape": [1, 8, 8, 4]},
            "axes": {"multiplier": [1, 2], "size": [8, 16]}, "timing": True}
    out = tmp_path / "results.jsonl"
    assert run_sweep(grid, out).ok == 4
    assert all(r["seconds_median"] > 0 for r in ResultsFile(out).records())
    written = plot_axis(out, "size", tmp_path / "by_size")
    assert all(path.stat().st_size > 1000 for path in written)


@pytest.mark.cpu
def test_a_time_limit_kills_the_slow_configuration_ten_runs_in_a_row(tmp_path):
    for run in range(10):
        out = tmp_path / f"run{run}.jsonl"
        summary = run_sweep({**SLOW, "seconds_limit": 1}, out)
        assert (summary.ok, summary.done["timeout"]) == (1, 1), list(ResultsFile(out).records())
        slow = [r for r in ResultsFile(out).records() if r["config"]["size"] == 1024][0]
        assert slow["reason"] == "timeout: over 1 s" and 1 <= slow["seconds"] < 5


def _worker_of(pid: int) -> int | None:
    """The pid of a sweep worker started by process ``pid``."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"jaxcost.sweep.worker" in command:
            return int(entry.name)
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"


@pytest.mark.cpu
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker through /proc (Linux)")
def test_a_worker_that_crashes_costs_its_configuration_only(tmp_path):
    grid = write_grid(tmp_path, {**SLOW, "axes": {"size": [8, 1024, 4]}})
    out = tmp_path / "results.jsonl"
    process = subprocess.Popen(jaxcost_command() + ["sweep", str(grid), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and out.read_text().strip()):
        time.sleep(0.05)
    time.sleep(0.3)  # the worker is timing the 1024x1024 configuration now
    os.kill(_worker_of(process.pid), signal.SIGSEGV)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    records = {r["config"]["size"]: r for r in ResultsFile(out).records()}
    assert [records[size]["status"] for size in (8, 1024, 4)] == ["ok", "crashed", "ok"]
    assert records[1024]["reason"].startswith("crashed: killed by SIGSEGV")
    assert "2 ok, 1 failed (1 crashed), 0 already there" in stdout


def test_progress_is_silent_when_stderr_is_not_a_terminal(tmp_path, capsys):
    grid = write_grid(tmp_path, SMALL)
    assert main(["sweep", str(grid)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "6 ok, 0 failed" in captured.out


def test_the_progress_bar_counts_and_says_failures():
    import io

    from jaxcost.sweep.progress import ProgressBar

    stream = io.StringIO()
    with ProgressBar(stream) as bar:
        for done, status in enumerate(["ok", "failed", "ok"], 1):
            bar(done, 3, status)
        assert bar.progress.tasks[0].completed == 3 and bar.failed == 1


BAD_GRIDS = [
    ([1, 2], "must be a table with layer, base and axes, got a list"),
    ({"layer": "pool", "axes": {"a": [1]}}, "layer must be"),
    ({"layer": "conv", "axes": {}}, "axes must"),
    ({"layer": "conv", "axes": {"features": []}}, "axis 'features' needs a non-empty list"),
    ({"axes": {"features": [1]}, "base": {"input_shape": [1, 4, 4, 2]}, "mode": "eval"}, "mode must"),
    ({"axes": {"features": [1]}, "modes": "train"}, "unknown setting 'modes'"),
    ({"axes": {"featurs": [1]}}, "axes.featurs is not a field of a conv layer"),
    ({"layer": "dense", "base": {"kernel_size": 3}, "axes": {"features": [1]}},
     "base.kernel_size is not a field of a dense layer"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"kernel": [3]}}, "a conv layer needs features"),
    ({"axes": {"features": [8]}}, "a conv layer needs input_shape"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8, "16"]}},
     'axes.features\\[1\\] must be an integer, got "16"'),
    ({"base": {"input_shape": "1,4,4,2"}, "axes": {"features": [8]}}, "base.input_shape must be a list of integers"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8], "use_bias": ["yes"]}},
     "axes.use_bias\\[0\\] must be true or false"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8], "kernel": [[3, "a"]]}},
     "axes.kernel\\[0\\] must be an integer or a list of integers"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8, 16, 8]}}, "axes.features lists 8 twice"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8]}, "seconds_limit": -5},
     "seconds_limit must be a positive number of seconds, got -5"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8]}, "seconds_limit": True}, "seconds_limit must"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8]}, "repeats": 0}, "repeats must be a positive"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8]}, "timing": "yes"}, "timing must be true"),
    ({"base": {"input_shape": [1, 4, 4, 2]}, "axes": {"features": [8]}, "precision": "max"}, "precision must be"),
]


@pytest.mark.parametrize(("grid", "message"), BAD_GRIDS)
def test_bad_grids_are_refused_before_any_work(tmp_path, grid, message):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid))
    with pytest.raises(ValueError, match=f"^grid: .*{message}"):
        load_grid(path)


def test_yaml_grids_when_pyyaml_is_there_and_a_clear_line_when_not(tmp_path, monkeypatch):
    path = tmp_path / "grid.yaml"
    path.write_text("layer: dense\nbase:\n  input_shape: [4, 8]\naxes:\n  features: [1, 2]\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        pass
    else:
        assert load_grid(path).axes == {"features": [1, 2]}
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ValueError, match=r"^grid: reading a \.yaml grid needs PyYAML \(pip install pyyaml\)"):
        load_grid(path)


def test_command_line_arguments_are_checked_before_any_work(tmp_path, capsys):
    grid = write_grid(tmp_path, SMALL)
    for argv, message in ((["--shard", "4/3"], "--shard: K/N needs 1 ≤ K ≤ N, got '4/3'"),
                          (["--shard", "one"], "--shard: must be K/N"),
                          (["--jobs", "0"], "--jobs: must be a positive integer, got 0"),
                          (["--out", "results.txt"], "--out: results go to a .jsonl or .csv file"),
                          ([str(grid)], "grid: one grid file per sweep, got 2 files")):
        assert main(["sweep", str(grid), *argv]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "grid.jsonl").exists()
    timed = write_grid(tmp_path, {**SMALL, "timing": True}, "timed.json")
    assert main(["sweep", str(timed), "--jobs", "8"]) == 2  # more timed workers than devices to time on
    assert "--jobs: timed configurations" in capsys.readouterr().err
    assert main(["sweep"]) == 2 and "required: grid\n" in capsys.readouterr().err


def test_parse_shard():
    assert parse_shard("2/3") == (2, 3)


def test_spec_shorthands():
    spec = spec_of("conv", {"input_shape": [1, 8, 8, 4], "features": 8, "batch": 3, "size": 10, "channels": 6,
                            "kernel": 5, "stride": 2, "groups": 2})
    assert spec.input_shape == (3, 10, 10, 6) and spec.kernel_size == (5, 5) and spec.feature_group_count == 2


def test_a_sweep_in_a_thread_of_a_process_with_jax_loaded(tmp_path):
    """Workers are new processes, not forks: a sweep started where JAX already runs threads is safe."""
    import jax.numpy as jnp

    jnp.ones(3).block_until_ready()
    results = {}
    thread = threading.Thread(target=lambda: results.update(summary=run_sweep(SMALL, tmp_path / "r.jsonl", jobs=2)))
    thread.start()
    thread.join(timeout=120)
    assert results["summary"].ok == 6


def test_a_file_that_is_not_a_sweeps_results_is_refused_untouched(tmp_path, capsys):
    grid = write_grid(tmp_path, SMALL)
    for name, text in (("notes.jsonl", "my notes\nline two without newline"), ("data.csv", "name,value"),
                       ("list.jsonl", "[1, 2]\n")):
        path = tmp_path / name
        path.write_text(text)
        assert main(["sweep", str(grid), "--out", str(path)]) == 2
        assert "holds other" in capsys.readouterr().err
        assert path.read_text() == text


def test_the_output_folder_is_checked_before_any_work(tmp_path, capsys):
    grid = write_grid(tmp_path, SMALL)
    assert main(["sweep", str(grid), "--out", str(tmp_path / "no" / "r.jsonl")]) == 2
    assert "--out: the folder" in capsys.readouterr().err
    assert main(["sweep", "merge", str(grid), "--out", str(tmp_path / "no" / "m.jsonl")]) == 2


@pytest.mark.parametrize(("text", "message"), [
    ('layer = "dense"\n[base]\ninput_shape = [4, 8]\n[axes]\nfeatures = [1979-05-27]\n',
     "grid: axes.features\\[0\\] must be text, a number, true/false, a list or a table, got a date"),
    ('seconds_limit = inf\n[base]\ninput_shape = [1, 4, 4, 2]\n[axes]\nfeatures = [2]\n',
     "grid: seconds_limit must be a finite number, got inf"),
    ('[base]\ninput_shape = [1, 4, 4, 2]\n[axes]\nfeatures = [2]\nkernel = [1]\nkernel_size = [3]\n',
     "grid: axes gives kernel and kernel_size, the same field; give one of them"),
])
def test_what_toml_holds_and_json_does_not_is_refused(tmp_path, text, message):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{message}"):
        load_grid(path)


def test_a_time_limit_of_weeks_is_a_limit_like_any_other(tmp_path):
    assert run_sweep({**SMALL, "seconds_limit": 1e12}, tmp_path / "r.jsonl").ok == 6


def test_plot_an_axis_of_sizes_in_a_file_shared_with_another_grid(tmp_path, capsys):
    grid = write_grid(tmp_path, {"layer": "conv", "base": {"input_shape": [1, 8, 8, 4], "features": 4},
                                 "axes": {"kernel": [3, [1, 3], 1]}})
    out = tmp_path / "shared.jsonl"
    run_sweep(SMALL, out)  # another grid's records first
    assert main(["sweep", str(grid), "--out", str(out), "--plot", "kernel"]) == 0
    assert f"plot: {tmp_path / 'shared.kernel.png'}" in capsys.readouterr().out
    failing = write_grid(tmp_path, {**WITH_FAILURES, "axes": {"groups": [4], "features": [6]}}, "failing.json")
    assert main(["sweep", str(failing), "--out", str(out), "--plot", "groups"]) == 1  # the sweep's status
    assert "jaxcost: plot: no configuration succeeded: nothing to plot" in capsys.readouterr().err


def test_a_plot_without_matplotlib_is_skipped_as_report_skips_it(tmp_path, monkeypatch, capsys):
    grid = write_grid(tmp_path, SMALL)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed, in this process (the plotter)
    assert main(["sweep", str(grid), "--plot", "features", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "plot skipped: plots need matplotlib: pip install matplotlib" in captured.out
    assert "Traceback" not in captured.err and not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("settings, message", [
    ({"target": 5}, "grid: target must be a TPU slice like 'tpu:v5e:2x2', got 5"),
    ({"target": "gpu:h100"}, "grid: target: must be tpu:GENERATION:TOPOLOGY"),
    ({"target": "tpu:v5e:2x2", "timing": True}, "grid: timing must be false with a target: tpu:v5e:2x2 is compiled "
                                                "here, nothing runs"),
])
def test_a_target_is_checked_with_the_grid(settings, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        check_grid({**SMALL, **settings})


def test_a_target_is_part_of_the_key():
    config = {"input_shape": [4, 8], "features": 1, "use_bias": True}
    assert check_grid({**SMALL, "target": "tpu:v5e:2x2"}).key(config, "tpu:v5e:2x2") != \
        check_grid(SMALL).key(config, "tpu:v5e:2x2")


def test_a_target_without_libtpu_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "libtpu" else
                        real(name, *rest))
    with pytest.raises(ValueError, match=r"^grid: target tpu:v6e:2x2 needs libtpu: pip install 'jaxcost\[tpu\]'"):
        run_sweep({**SMALL, "target": "tpu:v6e:2x2"}, tmp_path / "results.jsonl")


@pytest.mark.skipif(importlib.util.find_spec("libtpu") is None, reason="libtpu is not installed (the tpu extra)")
def test_a_sweep_compiled_for_a_tpu_slice(tmp_path):
    """Counts only, for a v5e slice: each record is the target's (its platform and device kind), XLA:TPU's
    figures beside the recount's, which reproduces them; the results file keys them apart from the CPU's."""
    out = tmp_path / "results.csv"
    grid = {**SMALL, "axes": {"features": [128, 130]}, "target": "tpu:v5e:2x2"}
    assert run_sweep(grid, out, jobs=1).ok == 2
    records = ResultsFile(out).records()
    assert {(r["target"], r["platform"], r["device_kind"]) for r in records} == {("tpu:v5e:2x2", "tpu", "TPU v5 lite")}
    for record in records:
        assert record["compiler_flops"] == record["xla_flops"] == record["flops"]
        assert record["compiler_bytes"] == record["xla_bytes"]
    assert run_sweep(grid, out).already_ok == 2


def test_the_command_line_compiles_a_grid_for_a_target(tmp_path, capsys):
    """``--target`` gives a grid a target; a malformed one is a one-line error (exit status 2)."""
    grid = write_grid(tmp_path, {**SMALL, "axes": {"features": [4]}})
    assert main(["sweep", str(grid), "--target", "tpu:v5e", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().startswith("jaxcost: error: grid: target: must be tpu:GENERATION:TOPOLOGY")
    if importlib.util.find_spec("libtpu") is not None:
        assert main(["sweep", str(grid), "--target", "tpu:v6e:2x2", "--quiet", "--jobs", "1"]) == 0
        (record,) = ResultsFile(grid.with_suffix(".jsonl")).records()
        assert (record["target"], record["device_kind"]) == ("tpu:v6e:2x2", "TPU v6 lite")


@pytest.fixture
def outside_slurm(monkeypatch):
    """No SLURM allocation in the environment (the suite itself may run in a SLURM job), and four usable cores."""
    for name in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sweep_run, "cores", lambda: [0, 1, 2, 3])
    return monkeypatch


@pytest.mark.parametrize(("environment", "expected"), [
    ({}, (4, "4 usable cores")),
    ({"SLURM_CPUS_PER_TASK": "2"}, (2, "SLURM_CPUS_PER_TASK=2")),
    ({"SLURM_CPUS_PER_TASK": "4"}, (4, "SLURM_CPUS_PER_TASK=4")),
    ({"SLURM_CPUS_PER_TASK": "16"}, (4, "4 usable cores")),  # more than it may run on: the affinity is smaller
    ({"SLURM_CPUS_PER_TASK": "16", "SLURM_CPUS_ON_NODE": "1"}, (4, "4 usable cores")),
    ({"SLURM_CPUS_ON_NODE": "1"}, (1, "SLURM_CPUS_ON_NODE=1")),  # a batch script without --cpus-per-task
    ({"SLURM_CPUS_ON_NODE": "2", "SLURM_NTASKS": "2"}, (4, "4 usable cores")),  # the node's CPUs of two tasks
    ({"SLURM_CPUS_PER_TASK": "1", "SLURM_NTASKS": "3"}, (1, "SLURM_CPUS_PER_TASK=1")),
    ({"SLURM_CPUS_PER_TASK": "two"}, (4, "4 usable cores")),
    ({"SLURM_CPUS_PER_TASK": "0"}, (4, "4 usable cores")),
])
def test_the_usable_cores_are_the_affinity_or_the_slurm_allocation_whichever_is_smaller(outside_slurm, environment,
                                                                                      expected):
    for name, value in environment.items():
        outside_slurm.setenv(name, value)
    assert usable_cores() == expected


def test_the_default_workers_follow_the_allocation_and_say_why(outside_slurm):
    grid = check_grid(SMALL)
    setups, source = worker_setups(grid, None, 100, None)
    assert (len(setups), source) == (4, "4 usable cores")
    assert [setup.cores for setup in setups] == [(0,), (1,), (2,), (3,)]  # a core each
    outside_slurm.setenv("SLURM_CPUS_PER_TASK", "2")
    setups, source = worker_setups(grid, None, 100, None)
    assert (len(setups), source) == (2, "SLURM_CPUS_PER_TASK=2")
    assert [setup.cores for setup in setups] == [None, None]  # which two of the four are its own is not known
    assert worker_setups(grid, 3, 100, None)[1] == "jobs=3"
    assert worker_setups(grid, None, 1, None)[1] == "1 configuration"
    outside_slurm.setattr(sweep_run, "cores", lambda: list(range(32)))
    outside_slurm.delenv("SLURM_CPUS_PER_TASK")
    setups, source = worker_setups(grid, None, 100, None)
    assert (len(setups), source) == (8, "at most 8; 32 usable cores")


def test_the_summary_says_where_the_number_of_workers_came_from(tmp_path, outside_slurm, capsys):
    grid = write_grid(tmp_path, SMALL)
    outside_slurm.setenv("SLURM_CPUS_PER_TASK", "1")
    assert main(["sweep", str(grid), "--quiet"]) == 0
    assert ", 1 worker (SLURM_CPUS_PER_TASK=1))\n" in capsys.readouterr().out
    assert main(["sweep", str(grid), "--quiet", "--retry-failed"]) == 0  # nothing left: no workers, no reason
    assert capsys.readouterr().out.endswith(", 0 workers)\n")


def slurm_script(tmp_path: Path, monkeypatch, capsys, *arguments: str) -> str:
    """What ``jaxcost sweep grid.json ... --slurm ...`` prints, run in ``tmp_path`` with this jaxcost first on PATH."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    write_grid(tmp_path, SMALL)
    assert main(["sweep", "grid.json", *arguments]) == 0
    return capsys.readouterr().out


def test_slurm_prints_the_documented_job_array(tmp_path, monkeypatch, capsys):
    script = slurm_script(tmp_path, monkeypatch, capsys, "--out", "results.jsonl", "--slurm", "8",
                          "--sbatch-arg=--cpus-per-task=8", "--sbatch-arg=--time=04:00:00")
    assert script == documented_script()  # docs/clusters.md's, to the byte
    assert not (tmp_path / "results").exists()  # printed, not run


def test_slurm_passes_the_sweeps_options_on_and_quotes_its_paths(tmp_path, monkeypatch, capsys):
    script = slurm_script(tmp_path, monkeypatch, capsys, "--out", 'my "runs"/r$x.csv', "--slurm", "3", "--jobs", "2",
                          "--retry-failed")
    assert script.startswith("#!/bin/bash\n#SBATCH --job-name=jaxcost-sweep --array=1-3\nmkdir -p ")
    sweep_line = script.splitlines()[3]
    words = subprocess.run(["bash", "-c", f'jaxcost() {{ printf "%s\\n" "$@"; }}; {sweep_line}'],
                           env={**os.environ, "SLURM_ARRAY_TASK_ID": "2"}, capture_output=True, text=True, check=True)
    assert words.stdout.splitlines() == ["sweep", "grid.json", "--shard", "2/3", "--out", 'my "runs"/r$x/part2.csv',
                                         "--jobs", "2", "--retry-failed", "--quiet"]
    merge_line = script.splitlines()[-1].removeprefix("# afterwards, once: ")
    folder = tmp_path / 'my "runs"' / "r$x"
    folder.mkdir(parents=True)
    for task in (1, 2, 3):
        (folder / f"part{task}.csv").touch()
    words = subprocess.run(["bash", "-c", f'jaxcost() {{ printf "%s\\n" "$@"; }}; {merge_line}'], cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    assert words.stdout.splitlines() == ["sweep", "merge", *(f'my "runs"/r$x/part{task}.csv' for task in (1, 2, 3)),
                                         "--out", 'my "runs"/r$x.csv']


def fake_sbatch(folder: Path, monkeypatch, status: int = 0) -> Path:
    """An ``sbatch`` first on PATH that keeps the script it is given and answers as ``sbatch --parsable`` does."""
    (folder / "bin").mkdir()
    sbatch = folder / "bin" / "sbatch"
    answer = 'echo 4242' if status == 0 else 'echo "sbatch: error: Batch job submission failed: Invalid account" >&2'
    sbatch.write_text(f'#!/bin/bash\necho "$@" > "{folder}/options"\ncat > "{folder}/submitted"\n{answer}\n'
                      f"exit {status}\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin")
    return sbatch


def test_submit_hands_the_script_to_sbatch_and_says_how_to_merge(tmp_path, monkeypatch, capsys):
    fake_sbatch(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    write_grid(tmp_path, SMALL)
    assert main(["sweep", "grid.json", "--slurm", "2", "--sbatch-arg=--time=10", "--submit"]) == 0
    assert capsys.readouterr().out == ("submitted job array 4242: 2 tasks, task K writing grid/partK.jsonl\n"
                                       "once every task has ended: jaxcost sweep merge grid/part*.jsonl --out "
                                       "grid.jsonl\n")
    assert (tmp_path / "options").read_text().split() == ["--parsable"]
    submitted = (tmp_path / "submitted").read_text()
    assert "#SBATCH --time=10\n" in submitted and '--shard "$SLURM_ARRAY_TASK_ID/2"' in submitted


def test_a_job_array_sbatch_refuses_is_an_error_with_its_reason(tmp_path, monkeypatch, capsys):
    fake_sbatch(tmp_path, monkeypatch, status=1)
    monkeypatch.chdir(tmp_path)
    write_grid(tmp_path, SMALL)
    assert main(["sweep", "grid.json", "--slurm", "2", "--submit"]) == 1
    assert capsys.readouterr().err == ("jaxcost: error: sbatch refused the job array: sbatch: error: Batch job "
                                       "submission failed: Invalid account\n")


@pytest.mark.parametrize(("arguments", "message"), [
    (["--slurm", "0"], "--slurm: the number of shards (array tasks) must be a positive integer, got 0"),
    (["--slurm", "-2"], "--slurm: the number of shards (array tasks) must be a positive integer, got -2"),
    (["--slurm", "two"], "argument --slurm: invalid int value: 'two'"),
    (["--slurm", "2", "--submit"], "--submit: sbatch is not on PATH; print the script without --submit"),
    (["--submit"], "--submit: goes with --slurm N"),
    (["--sbatch-arg=--time=10"], "--sbatch-arg: goes with --slurm N"),
    (["--slurm", "2", "--sbatch-arg=time=10"], "--sbatch-arg: must be one sbatch option such as --time=1:00:00"),
    (["--slurm", "2", "--shard", "1/2"], "--shard: --slurm N runs every shard K/N"),
    (["--slurm", "2", "--plot", "features"], "--plot: plot once the shards are merged"),
])
def test_bad_slurm_arguments_are_one_line_errors(tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    grid = write_grid(tmp_path, SMALL)
    assert main(["sweep", str(grid), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"jaxcost: error: {message}") and error.count("\n") == 1


def test_merge_is_no_job_array(tmp_path, capsys):
    assert main(["sweep", "merge", str(tmp_path / "a.jsonl"), "--out", str(tmp_path / "b.jsonl"), "--slurm", "2"]) == 2
    assert capsys.readouterr().err == ("jaxcost: error: --slurm: a job array runs a grid; give the grid file, "
                                       "not 'merge'\n")
