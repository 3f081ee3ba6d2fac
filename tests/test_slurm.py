"""Sweeps on a real SLURM cluster: a single-node cluster started from the system's SLURM (``slurm_cluster.py``)
runs the job array of docs/clusters.md as written there, and a task cancelled, a task past its time limit and
two arrays into the same files at once lose nothing and count nothing twice.

Without SLURM, or without root to start it, the tests are skipped with one line; where
``JAXCOST_REQUIRE_SLURM`` is set (``.ci/run``), that fails them instead. The jobs run this interpreter's
``jaxcost``: its folder comes first on their PATH.
"""

import fcntl
import json
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from jaxcost.sweep import ResultsFile, check_grid
from tests.slurm_cluster import REQUIRE, SlurmCluster, SlurmUnavailable, check_installed, documented_script, required

if not required():  # SLURM missing, or no root to start it: one line for the module (where it must run, each fails)
    try:
        check_installed()
    except SlurmUnavailable as missing:
        pytest.skip(f"no SLURM cluster: {missing}", allow_module_level=True)

#: 24 count-only configurations of small dense layers: each compiles in a tenth of a second.
GRID = {"layer": "dense", "base": {"input_shape": [1, 64]},
        "axes": {"features": [8, 16, 32, 64, 128, 256], "batch": [1, 2, 4, 8]}}
#: The longest a job of these tests may take.
SECONDS_LONGEST_JOB = 150.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A single-node SLURM cluster for this module; its jobs find this interpreter's ``jaxcost`` first on PATH."""
    try:
        started = SlurmCluster(tmp_path_factory.mktemp("slurm"), path_first=[str(Path(sys.executable).parent)])
        started.start()
    except SlurmUnavailable as error:
        if required():
            pytest.fail(f"{REQUIRE} is set and SLURM cannot run here: {error}", pytrace=False)
        pytest.skip(f"no SLURM cluster: {error}")
    yield started
    started.stop()


def script_for(shards: int) -> str:
    """The documented script with only its number of shards changed: the array's size and the shard count."""
    script = documented_script()
    documented = re.search(r"--array=1-([0-9]+)", script).group(1)
    script, arrays = re.subn(rf"--array=1-{documented}\b", f"--array=1-{shards}", script)
    script, counts = re.subn(rf'--shard "\$SLURM_ARRAY_TASK_ID/{documented}"',
                             f'--shard "$SLURM_ARRAY_TASK_ID/{shards}"', script)
    assert (arrays, counts) == (1, 1), "the documented script should name its shard count in --array and --shard"
    return script


def merge_command(script: str) -> str:
    """The merge command the script's last comment gives."""
    return re.search(r"^# afterwards, once: (.+)$", script, re.M).group(1)


@dataclass
class Sweep:
    """A folder with a grid and the documented script for it, submitted to the cluster from there."""

    cluster: SlurmCluster
    folder: Path
    grid: dict
    shards: int

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "grid.json").write_text(json.dumps(self.grid))
        self.script = script_for(self.shards)
        (self.folder / "sweep.sh").write_text(self.script)

    def submit(self, *options: str) -> str:
        """``sbatch [options] sweep.sh`` (one CPU a task unless the options say otherwise); the job's id."""
        return self.cluster.sbatch("sweep.sh", "--cpus-per-task=1", *options, cwd=self.folder)

    def part(self, task: int) -> Path:
        return self.folder / "results" / f"part{task}.jsonl"

    def log(self, job: str, task: int) -> str:
        return (self.folder / f"slurm-{job}_{task}.out").read_text()

    def merge(self) -> list[dict]:
        """Run the script's merge command; the merged records."""
        result = subprocess.run(["bash", "-c", merge_command(self.script)], cwd=self.folder, capture_output=True,
                                text=True, env=self.cluster.environment, timeout=120)
        assert result.returncode == 0, result.stderr
        return list(ResultsFile(self.folder / "results.jsonl").records())


def lines_parse(path: Path) -> list[dict]:
    """Every line of a results file, each a whole JSON record."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def configurations(grid: dict) -> list[str]:
    """The grid's configurations, each as sorted JSON, in order."""
    return sorted(json.dumps(config, sort_keys=True) for config in check_grid(grid).configurations())


def assert_each_configuration_once(grid: dict, records: list[dict]) -> None:
    assert sorted(json.dumps(record["config"], sort_keys=True) for record in records) == configurations(grid)
    assert all(record["status"] == "ok" for record in records)


def wait_for_records(path: Path, count: int, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().count("\n") >= count):
        assert time.monotonic() < deadline, f"{path} has fewer than {count} records after {seconds:.0f} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def two_arrays(cluster, tmp_path_factory):
    """Two arrays of the documented script over one grid into the same files, held until both are queued and
    then released together, one task of each at a time: task K of both runs at once on the node's two CPUs."""
    sweep = Sweep(cluster, tmp_path_factory.mktemp("two-arrays"), GRID, 2)
    jobs = [sweep.submit("--hold", "--array=1-2%1") for _ in range(2)]
    cluster.run(["scontrol", "release", *jobs])
    for job in jobs:
        cluster.wait(job, SECONDS_LONGEST_JOB)
    return sweep, jobs


def test_two_arrays_into_the_same_files_at_once_corrupt_nothing(cluster, two_arrays):
    sweep, jobs = two_arrays
    assert set(cluster.states(jobs[0]).values()) == set(cluster.states(jobs[1]).values()) == {"COMPLETED"}
    written = [record for task in (1, 2) for record in lines_parse(sweep.part(task))]  # every line whole
    assert len(written) > len(configurations(GRID))  # both arrays computed some configurations: they overlapped
    assert_each_configuration_once(sweep.grid, sweep.merge())


@dataclass
class Overtime:
    """A task submitted with --time=1, held up until SLURM ends it, and the lock that holds it up."""

    sweep: Sweep
    job: str
    lock: IO[str]


@pytest.fixture(scope="module")
def overtime(cluster, two_arrays, tmp_path_factory):
    """A task that runs past its time limit (a minute: SLURM ends it 60 to 90 s after it started), started after
    the two arrays, which need both CPUs, and before the tests that run meanwhile on the node's other CPU
    (slurmctld checks limits every 30 s from its start: a task started in its first 30 s ends at its 90th).

    A task held up by its file system is the kind that overruns however fast the node: once the task has
    written a few records, this test locks its results file, so that the next record waits (idle) until SLURM
    ends the task. How far a busy task gets in a minute depends too much on the machine to size a grid by."""
    grid = {**GRID, "axes": {"batch": list(range(1, 11)), "features": GRID["axes"]["features"]}}
    sweep = Sweep(cluster, tmp_path_factory.mktemp("overtime"), grid, 1)
    job = sweep.submit("--time=1")
    wait_for_records(sweep.part(1), 3)
    with open(sweep.part(1)) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Overtime(sweep, job, lock)


def test_the_documented_job_array_runs_every_configuration_once(cluster, overtime, tmp_path):
    """(Beside the task past its time limit, ``overtime``, on the node's other CPU.)"""
    sweep = Sweep(cluster, tmp_path, GRID, 4)
    job = sweep.submit()
    cluster.wait(job, SECONDS_LONGEST_JOB)
    assert cluster.states(job) == {f"{job}_{task}": "COMPLETED" for task in range(1, 5)}
    parts = [lines_parse(sweep.part(task)) for task in range(1, 5)]
    assert sorted(map(len, parts)) == [6, 6, 6, 6]  # 24 configurations in 4 shards
    for task in range(1, 5):  # the allocation, not the node's cores, sets the workers
        assert ", 1 worker (SLURM_CPUS_PER_TASK=1))" in sweep.log(job, task)
    assert_each_configuration_once(sweep.grid, sweep.merge())


def test_a_cancelled_task_resumes_its_shard_with_nothing_lost_or_twice(cluster, overtime, tmp_path):
    """(Beside the task past its time limit, ``overtime``, on the node's other CPU.)"""
    grid = {"layer": "dense", "base": {"input_shape": [1, 64]}, "axes": {"features": list(range(1, 41)),
                                                                         "batch": [1, 2]}}
    sweep = Sweep(cluster, tmp_path, grid, 2)
    job = sweep.submit()
    wait_for_records(sweep.part(1), 3)
    cluster.run(["scancel", f"{job}_1"])
    cluster.wait(job, SECONDS_LONGEST_JOB)
    assert cluster.states(job) == {f"{job}_1": "CANCELLED", f"{job}_2": "COMPLETED"}
    kept = len(lines_parse(sweep.part(1)))
    assert 3 <= kept < 40, "the task should have been cancelled part way through its 40 configurations"
    again = sweep.submit("--array=1")
    cluster.wait(again, SECONDS_LONGEST_JOB)
    assert cluster.states(again) == {f"{again}_1": "COMPLETED"}
    assert f"{40 - kept} ok, 0 failed, {kept} already there" in sweep.log(again, 1)
    for task in (1, 2):
        keys = Counter(record["key"] for record in lines_parse(sweep.part(task)))
        assert len(keys) == 40 and set(keys.values()) == {1}
    assert_each_configuration_once(sweep.grid, sweep.merge())


def test_submit_from_the_command_line(cluster, overtime, tmp_path):
    (tmp_path / "grid.json").write_text(json.dumps(GRID))
    result = subprocess.run(["jaxcost", "sweep", "grid.json", "--out", "results.jsonl", "--slurm", "2",
                             "--sbatch-arg=--cpus-per-task=1", "--submit"], cwd=tmp_path, capture_output=True,
                            text=True, env=cluster.environment, timeout=120)
    assert result.returncode == 0, result.stderr
    submitted, merge = result.stdout.splitlines()
    said = re.fullmatch(r"submitted job array ([0-9]+): 2 tasks, task K writing results/partK\.jsonl", submitted)
    assert said, submitted
    job = said[1]
    assert merge == "once every task has ended: jaxcost sweep merge results/part*.jsonl --out results.jsonl"
    cluster.wait(job, SECONDS_LONGEST_JOB)
    assert cluster.states(job) == {f"{job}_1": "COMPLETED", f"{job}_2": "COMPLETED"}
    assert ", 1 worker (SLURM_CPUS_PER_TASK=1))" in (tmp_path / f"slurm-{job}_1.out").read_text()
    merged = subprocess.run(["bash", "-c", merge.split(": ", 1)[1]], cwd=tmp_path, env=cluster.environment,
                            capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stderr
    assert_each_configuration_once(GRID, list(ResultsFile(tmp_path / "results.jsonl").records()))


def test_a_task_past_its_time_limit_says_so_and_resumes(cluster, overtime):
    sweep, count = overtime.sweep, len(configurations(overtime.sweep.grid))
    cluster.wait(overtime.job, SECONDS_LONGEST_JOB)
    fcntl.flock(overtime.lock, fcntl.LOCK_UN)
    assert cluster.states(overtime.job) == {f"{overtime.job}_1": "TIMEOUT"}
    assert "DUE TO TIME LIMIT" in sweep.log(overtime.job, 1)
    kept = lines_parse(sweep.part(1))  # every finished configuration, whole
    assert 3 <= len(kept) < count
    assert len({record["key"] for record in kept}) == len(kept) and all(r["status"] == "ok" for r in kept)
    again = sweep.submit("--array=1", "--cpus-per-task=2", "--time=10")  # the other tests are done: two CPUs
    cluster.wait(again, SECONDS_LONGEST_JOB)
    assert cluster.states(again) == {f"{again}_1": "COMPLETED"}
    log = sweep.log(again, 1)
    assert f"{len(kept)} already there" in log and ", 2 workers (SLURM_CPUS_PER_TASK=2))" in log
    keys = Counter(record["key"] for record in lines_parse(sweep.part(1)))
    assert len(keys) == count and set(keys.values()) == {1}
    assert_each_configuration_once(sweep.grid, sweep.merge())
