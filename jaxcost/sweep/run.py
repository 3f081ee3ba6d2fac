"""Running a grid: what the results file lacks for this grid (and this shard) is computed by worker
processes and appended record by record; what it holds already is counted, failures included.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaxcost.sweep.grid import Grid, check_grid, shard_keys
from jaxcost.sweep.pool import Pool, Setup, Task, WorkerError
from jaxcost.sweep.results import ResultsFile, check_path, check_writable

#: Workers for a count-only sweep at most: compiles are single-threaded, each worker holds a JAX runtime.
MOST_JOBS = 8


@dataclass
class SweepSummary:
    """What a run did, and what the results file already held for this grid."""

    path: Path
    done: Counter = field(default_factory=Counter)
    already_ok: int = 0
    already_failed: int = 0
    jobs: int = 0
    #: Why that many workers: ``SLURM_CPUS_PER_TASK=4``, ``2 usable cores``, ``jobs=3``, ...
    jobs_source: str = ""
    seconds: float = 0.0
    #: The keys of this grid (and shard) on this machine's device: what its results are.
    keys: set[str] = field(default_factory=set)
    #: Each configuration whose result is a failure, from this run or an earlier one: its settings of the
    #: grid's axes and the record's one-line reason.
    failures: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.done["ok"]

    @property
    def failed(self) -> int:
        return sum(self.done.values()) - self.ok

    @property
    def any_failed(self) -> bool:
        """Whether any configuration of this grid has a failed result, from this run or an earlier one."""
        return bool(self.failed or self.already_failed)

    def __str__(self) -> str:
        kinds = [f"{count} {status}" for status, count in sorted(self.done.items()) if status not in ("ok", "failed")]
        text = f"{self.path}: {self.ok} ok, {self.failed} failed" + (f" ({', '.join(kinds)})" if kinds else "")
        text += f", {self.already_ok + self.already_failed} already there"
        if self.already_failed:
            text += f" ({self.already_failed} of them failed: --retry-failed runs them again)"
        workers = f"{self.jobs} worker{'s' if self.jobs != 1 else ''}"
        if self.jobs and self.jobs_source:
            workers += f" ({self.jobs_source})"
        return text + f" ({self.seconds:.1f} s, {workers})"

    def failure_lines(self, most: int = 5) -> list[str]:
        """The first ``most`` failures, each its configuration and reason, then how many more and where."""
        lines = [", ".join(f"{name}={json.dumps(value)}" for name, value in settings.items()) + f": {reason}"
                 for settings, reason in self.failures[:most]]
        if len(self.failures) > most:
            lines.append(f"and {len(self.failures) - most} more; see {self.path}")
        return lines


def cores() -> list[int]:
    """The cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


#: SLURM's counts of a task's CPUs, first found first: ``--cpus-per-task``, then, for a job of one task (a batch
#: script), the CPUs it was given on this node.
SLURM_CPU_COUNTS = ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE")


def usable_cores() -> tuple[int, str]:
    """How many cores this process may keep busy, and where that number comes from: the cores it may run on
    (its affinity) or, inside a SLURM allocation, the CPUs SLURM gave it when fewer (``SLURM_CPUS_PER_TASK``;
    in a job of one task without it, ``SLURM_CPUS_ON_NODE``). A node that does not bind tasks to their CPUs
    (``TaskPlugin=task/none``) lets a task run on every core, so the affinity alone would overrun the job."""
    available = len(cores())
    for name in SLURM_CPU_COUNTS:
        if name == "SLURM_CPUS_ON_NODE" and os.environ.get("SLURM_NTASKS", "1").strip() != "1":
            break  # the CPUs of several tasks: not this one's
        text = os.environ.get(name, "").strip()
        if text.isdigit() and int(text) > 0:
            if int(text) <= available:
                return int(text), f"{name}={int(text)}"
            break  # more than this process may run on: its affinity is the smaller
    return available, f"{available} usable core{'s' if available != 1 else ''}"


@dataclass(frozen=True)
class Devices:
    """What the workers will run on: the default JAX platform here, its device kind and device count."""

    platform: str
    device_kind: str
    count: int


def probe() -> Devices:
    """The devices a worker gets, asked of a separate process so that this one neither loads JAX nor holds
    a device the workers need."""
    script = ("import json, jax; devices = jax.devices(); "
              "print(json.dumps([devices[0].platform, devices[0].device_kind, len(devices)]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
        raise WorkerError(f"JAX could not start in a sweep worker: {last[0]}")
    platform, device_kind, count = json.loads(result.stdout.strip().splitlines()[-1])
    return Devices(platform, device_kind, count)


def worker_setups(grid: Grid, jobs: int | None, tasks: int, devices: Devices | None) -> tuple[list[Setup], str]:
    """How to start each worker, for at most ``tasks`` configurations, and why that many (for the summary).
    Count-only: a worker per usable core (``usable_cores``, at most ``MOST_JOBS``) sharing the devices (no
    device memory preallocated). Timed: a worker per GPU, each on its own; one elsewhere, since timed runs
    must not share a device (``devices``, probed, says what there is). Several workers on no more than the
    cores here get a share each: the threads a compiler starts beside its main one then do not slow the
    other workers down."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs: must be a positive integer, got {jobs!r}")
    if not grid.timing:
        usable, source = usable_cores()
        if jobs is not None:
            source = f"jobs={jobs}"
        elif usable > MOST_JOBS:
            source = f"at most {MOST_JOBS}; {source}"
        wanted = jobs or min(usable, MOST_JOBS)
        # count-only workers share the machine's devices; libtpu, where installed, would let only one load it
        environments = [{"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "ALLOW_MULTIPLE_LIBTPU_LOAD": "1"}] \
            * min(wanted, max(tasks, 1))
    else:
        if devices is None:
            raise ValueError("devices: timed configurations need the devices probed, got None")
        if devices.platform != "gpu":
            if jobs not in (None, 1):
                raise ValueError(f"jobs: timed configurations on {devices.platform} share its one device and must "
                                 "run one at a time; use 1")
            return [Setup()], f"timed: one {devices.platform} device"
        if jobs is not None and jobs > devices.count:
            raise ValueError(f"jobs: timed configurations need a GPU each; this machine has {devices.count}, "
                             f"got {jobs}")
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(devices.count)))).split(",")
        wanted = jobs or devices.count
        source = f"jobs={jobs}" if jobs is not None else "timed: one per GPU"
        environments = [{"CUDA_VISIBLE_DEVICES": visible[slot]} for slot in range(min(wanted, max(tasks, 1)))]
    if len(environments) < wanted:  # no more workers than configurations
        source = _configurations(tasks)
    return [Setup(environment, share) for environment, share in zip(environments, core_shares(len(environments)))], \
        source


def _configurations(count: int) -> str:
    """``3 configurations``: why a sweep runs no more workers than that."""
    return f"{count} configuration{'s' if count != 1 else ''}"


def core_shares(workers: int) -> list[tuple[int, ...] | None]:
    """The cores each of ``workers`` workers runs on: disjoint shares when there are cores enough for
    more than one worker, otherwise no restriction; none either where SLURM gave this process fewer CPUs than
    it may run on (a node that does not bind tasks: which of its cores are this task's is not known)."""
    available = cores()
    if workers == 1 or workers > len(available) or usable_cores()[0] < len(available):
        return [None] * workers
    size, extra = divmod(len(available), workers)
    shares: list[tuple[int, ...] | None] = []
    start = 0
    for index in range(workers):
        end = start + size + (index < extra)
        shares.append(tuple(available[start:end]))
        start = end
    return shares


def run_sweep(grid: Grid | dict[str, Any], results: str | os.PathLike, *, jobs: int | None = None,
              shard: tuple[int, int] | None = None, retry_failed: bool = False,
              progress: Callable[[int, int, str], None] | None = None) -> SweepSummary:
    """Compute every configuration of ``grid`` (of shard K of N when ``shard`` is (K, N)) that ``results``
    lacks, in ``jobs`` worker processes, appending each record as it finishes.

    ``retry_failed`` runs the configurations whose last record failed again. ``progress(done, total,
    status)`` is called after each record.
    """
    grid = check_grid(grid)
    if grid.target and importlib.util.find_spec("libtpu") is None:
        from jaxcost.targets import INSTALL

        raise ValueError(f"grid: target {grid.target} needs libtpu: {INSTALL}")
    output = ResultsFile(check_path(results, "results"))
    start = time.perf_counter()
    output.repair()
    check_writable(output.path, "results")
    latest = output.latest()
    summary = SweepSummary(output.path)
    configurations = grid.configurations()
    most = len(configurations) if shard is None else -(-len(configurations) // shard[1])
    setups, summary.jobs_source = worker_setups(grid, jobs, most, probe() if grid.timing else None)
    tasks: list[Task] = []

    def failed(record: dict[str, Any]) -> None:
        """Keep a failed record's settings of the grid's axes and the first line of its reason."""
        reason = str(record.get("reason") or record["status"]).splitlines()[0]
        summary.failures.append(({name: record["config"][name] for name in grid.axes}, reason))

    def prepare(environment: dict[str, Any]) -> list[Task]:
        """What this run computes, once the workers say which device they run on (part of each key)."""
        device = grid.target or environment["device_kind"]  # a target's programs are the target's
        keyed = {grid.key(config, device): config for config in configurations}
        summary.keys = shard_keys(list(keyed), shard)
        for key, config in keyed.items():
            if key not in summary.keys:
                continue
            status = latest[key].get("status") if key in latest else None
            if status == "ok":
                summary.already_ok += 1
            elif status is not None and not retry_failed:
                summary.already_failed += 1
                failed(latest[key])
            else:
                tasks.append(Task(key, {"config": config, "layer": grid.layer, "mode": grid.mode,
                                        "timing": grid.timing, "repeats": grid.repeats, "precision": grid.precision,
                                        "target": grid.target}))
        return tasks

    for index, (task, answer) in enumerate(Pool(setups, grid.seconds_limit).run(prepare), 1):
        record = {"key": task.key, "layer": grid.layer, "mode": grid.mode, "timing": grid.timing,
                  **({"target": grid.target} if grid.target else {}), "config": task.payload["config"], **answer}
        output.append(record)
        summary.done[record["status"]] += 1
        if record["status"] != "ok":
            failed(record)
        if progress:
            progress(index, len(tasks), record["status"])
    summary.jobs = min(len(setups), len(tasks))
    if summary.jobs < len(setups):  # a resumed sweep with fewer configurations left than workers
        summary.jobs_source = _configurations(len(tasks)) + " to run"
    summary.seconds = time.perf_counter() - start
    return summary


def same_records(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> bool:
    """Whether two runs recorded the same results, whatever their order, their run times, and whether a
    missing figure is absent (``.jsonl``) or empty (``.csv``)."""
    def canonical(records: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps({k: v for k, v in record.items() if k != "seconds" and v is not None},
                                 sort_keys=True) for record in records)
    return canonical(first) == canonical(second)
