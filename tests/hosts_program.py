"""One program over a 4-device mesh, run either by two processes of 2 CPU devices each joined by ``jax.distributed``
(``python tests/hosts_program.py PORT PROCESS [cost|time]``: process 0 prints what it gathered as JSON), or by one
process of 4 devices (``python tests/hosts_program.py``).

``cost`` (the default): a Transformer MLP's training step on data=2 x model=2, costed by every process and gathered.
``time``: a data-parallel (data=4) MLP training step timed by both processes at once, its inputs placed with the
program's shardings, beside the step-time model on this CPU's peaks.
"""

from __future__ import annotations

import json
import os
import sys
import time

DISTRIBUTED = len(sys.argv) >= 3
WHAT = sys.argv[3] if len(sys.argv) > 3 else "cost"
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={2 if DISTRIBUTED else 4}"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

if DISTRIBUTED:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{sys.argv[1]}", num_processes=2,
                               process_id=int(sys.argv[2]), initialization_timeout=60)

import jax.numpy as jnp  # noqa: E402

from jaxcost.compiler import runnable  # noqa: E402
from jaxcost.measure.hardware import cpu_peaks, with_overrides  # noqa: E402
from jaxcost.measure.step import step_time  # noqa: E402
from jaxcost.measure.timing import measure_ceilings  # noqa: E402
from jaxcost.mesh.hosts import gather, local_figures  # noqa: E402
from jaxcost.mesh.timing import placed_arguments, time_across_processes  # noqa: E402
from jaxcost.models.analysis import analyze  # noqa: E402
from jaxcost.models.transformer import Mlp  # noqa: E402


def timed() -> dict:
    """Both processes time the data-parallel step; process 0 returns every process's figures and how the input was
    placed."""
    with runnable():
        report = analyze(Mlp(256), jax.ShapeDtypeStruct((64, 128), jnp.float32), mode="train", mesh={"data": 4})
    executable = report.compiler.executable
    arguments = placed_arguments(executable)
    batch = jax.tree_util.tree_leaves(arguments)[-1]
    _, triad = measure_ceilings(matmul_size=256, triad_elements=2**20, seconds_budget=0.3)
    peaks = with_overrides(cpu_peaks(), {"bytes_per_second": triad.bytes_per_second})
    started = time.perf_counter()  # this process's own clock around the whole timing: a witness of its repeats
    timing = time_across_processes(executable, arguments, repeats=4, seconds_per_repeat=0.05,
                                   predicted=step_time(report.compiler, peaks, precision="fp32"))
    wall_seconds = time.perf_counter() - started
    return {"processes": [{"process": t.process, "calls": t.calls, "seconds_per_call": list(t.seconds_per_call),
                           "seconds_median": t.seconds_median} for t in timing.processes],
            "seconds_step": timing.seconds_step, "slowest": timing.slowest, "text": str(timing),
            "wall_seconds": wall_seconds,
            "input": {"shape": list(batch.shape), "spec": str(batch.sharding.spec),
                      "placed_as_compiled": batch.sharding == jax.tree_util.tree_leaves(
                          executable.input_shardings[0])[-1],
                      "fully_addressable": batch.is_fully_addressable,
                      "local_shards": [list(shard.data.shape) for shard in batch.addressable_shards]}}


if WHAT == "time":
    result = timed()
    if jax.process_index() == 0:
        print(json.dumps(result))
    jax.distributed.shutdown()
elif DISTRIBUTED:
    report = analyze(Mlp(256), jax.ShapeDtypeStruct((8, 64), jnp.float32), mode="train", mesh={"data": 2, "model": 2})
    gathered = gather(report.compiler)
    if gathered is not None:
        print(json.dumps({"processes": gathered.processes, "consistent": gathered.consistent, "text": str(gathered)}))
    jax.distributed.shutdown()
else:
    report = analyze(Mlp(256), jax.ShapeDtypeStruct((8, 64), jnp.float32), mode="train", mesh={"data": 2, "model": 2})
    print(json.dumps(local_figures(report.compiler)))
