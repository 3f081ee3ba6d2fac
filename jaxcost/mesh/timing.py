"""Timing a sharded step that spans processes (``jax.distributed``, one process per host): every process runs the
same number of calls of the same program, its inputs placed with the program's shardings; each process's time is
kept, and the slowest sets the step time (a step ends on every device only when the last process is done).

The processes agree before they time: on the calls per repeat (the most any process's calibration asks for) and on
the repeats (a fixed count, never a deadline that a faster process would meet later than a slower one); a barrier
over all devices starts each repeat. A process that dispatched one call fewer than another would leave the others
waiting in a collective until XLA's rendezvous gives up.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from jaxcost.measure.timing import host_values, run_calls
from jaxcost.reports.text import table

if TYPE_CHECKING:
    from jaxcost.measure.step import StepTime

#: Calls of the calibration that sets how many calls a repeat makes.
CALIBRATION_CALLS = 3


@dataclass(frozen=True)
class ProcessTiming:
    """One process's repeats of ``calls`` back-to-back calls, in seconds per call."""

    process: int
    calls: int
    seconds_per_call: tuple[float, ...]

    @property
    def seconds_median(self) -> float:
        return statistics.median(self.seconds_per_call)

    @property
    def seconds_spread(self) -> float:
        """The slowest repeat over the fastest, less one."""
        return max(self.seconds_per_call) / min(self.seconds_per_call) - 1


@dataclass(frozen=True)
class HostsTiming:
    """Every process's timing of the same sharded step, and the step-time model's prediction beside it."""

    processes: tuple[ProcessTiming, ...]
    devices: int
    predicted: StepTime | None = None

    @property
    def seconds_step(self) -> float:
        """The step time: the slowest process's median."""
        return max(timing.seconds_median for timing in self.processes)

    @property
    def slowest(self) -> int:
        return max(self.processes, key=lambda timing: timing.seconds_median).process

    def __str__(self) -> str:
        rows = [[str(timing.process), f"{timing.calls:,} x {len(timing.seconds_per_call)}",
                 _milliseconds(timing.seconds_median), f"{timing.seconds_spread:.1%}"] for timing in self.processes]
        lines = [table(["process", "calls x repeats", "median", "spread"], rows),
                 f"step time over {len(self.processes)} processes, {self.devices} devices: "
                 f"{_milliseconds(self.seconds_step)} (process {self.slowest}, the slowest)"]
        if self.predicted is not None:
            best, worst = self.predicted.lower_bound_seconds, self.predicted.upper_bound_seconds
            model = f"{_milliseconds(best)}" + (f" to {_milliseconds(worst)}" if worst is not None else " at least")
            mfu = self.predicted.mfu(self.seconds_step)
            lines.append(f"step-time model: {model} ({self.predicted.dominant}-bound); measured "
                         f"{self.seconds_step / best:.1f}x its lower bound; MFU {mfu:.1%}")
        return "\n".join(lines)


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def placed_arguments(executable: Any, seed: int = 0) -> tuple:
    """Arguments for a compiled sharded ``executable``, each a global array placed with the sharding the program
    takes it in: every process makes the same values (drawn from ``seed``) and puts its own devices' shards of
    them (``measure.timing.host_values``)."""
    _check_executable(executable)
    shardings = jax.tree_util.tree_leaves(executable.input_shardings[0])
    infos, structure = jax.tree_util.tree_flatten(executable.args_info[0])
    leaves = []
    for number, (info, sharding) in enumerate(zip(infos, shardings)):
        values = host_values(info.shape, info.dtype, np.random.default_rng([seed, number]))
        leaves.append(jax.make_array_from_callback(info.shape, sharding, _shard_of(values)))
    return tuple(jax.tree_util.tree_unflatten(structure, leaves))


def _check_executable(executable: Any) -> None:
    if not hasattr(executable, "input_shardings") or not hasattr(executable, "args_info"):
        raise ValueError("executable: a compiled program, as jax.jit(f).lower(...).compile() or a report's "
                         "compiler.executable under jaxcost.compiler.runnable(); got "
                         f"{type(executable).__name__}")


def _shard_of(values: np.ndarray) -> Callable[[Any], np.ndarray]:
    """The callback that gives a device its shard (an index into ``values``)."""
    return lambda index: values[index]


def agreed_most(value: int) -> int:
    """The largest of every process's ``value`` (each process calls it with its own)."""
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.array([value], dtype=np.int64))))


def time_across_processes(executable: Any, arguments: tuple | None = None, repeats: int = 5,
                          seconds_per_repeat: float = 0.1, predicted: StepTime | None = None) -> HostsTiming:
    """Time a compiled sharded step on every process at once; call it on every process, as for any collective.
    ``arguments`` default to ``placed_arguments(executable)``; each process's figures come back to all of them."""
    from jax.experimental import multihost_utils

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: must be a positive integer, got {repeats!r}")
    if isinstance(seconds_per_repeat, bool) or not isinstance(seconds_per_repeat, (int, float)) or \
            not seconds_per_repeat > 0:
        raise ValueError(f"seconds_per_repeat: must be a positive number of seconds, got {seconds_per_repeat!r}")
    _check_executable(executable)
    arguments = placed_arguments(executable) if arguments is None else arguments
    jax.block_until_ready(executable(*arguments))  # compiled, warm, every shard resident
    one_call = run_calls(executable, [arguments], CALIBRATION_CALLS) / CALIBRATION_CALLS
    calls = agreed_most(max(1, min(100_000, math.ceil(seconds_per_repeat / max(one_call, 1e-7)))))
    run_calls(executable, [arguments], calls)  # one untimed repeat: caches, clocks and thread pools settle
    seconds = []
    for repeat in range(repeats):
        multihost_utils.sync_global_devices(f"jaxcost timing repeat {repeat}")
        seconds.append(run_calls(executable, [arguments], calls) / calls)
    rows = np.asarray(multihost_utils.process_allgather(np.array([calls, *seconds], dtype=np.float64)))
    rows = rows.reshape(jax.process_count(), repeats + 1)
    processes = tuple(ProcessTiming(process, int(row[0]), tuple(float(value) for value in row[1:]))
                      for process, row in enumerate(rows))
    return HostsTiming(processes, jax.device_count(), predicted)

