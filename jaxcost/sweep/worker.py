"""A sweep's worker process (``python -m jaxcost.sweep.worker``): reads tasks, one JSON line each, from
stdin and answers each with its record on stdout; the first line out says where it runs.

Anything else that writes to stdout (a library's print) is sent to stderr, so the answers stay whole.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import traceback
from typing import Any

from jaxcost.sweep.grid import spec_of
from jaxcost.sweep.results import MEASURED_FIELDS

#: prctl's option that sends the worker a signal when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def environment() -> dict[str, Any]:
    """The versions and the device a record is made with."""
    from importlib.metadata import PackageNotFoundError, version

    import jax
    import jaxlib

    from jaxcost.compiler import default_device

    try:
        jaxcost_version = version("jaxcost")
    except PackageNotFoundError:  # run from a source tree that is not installed
        jaxcost_version = "unknown"
    device = default_device()
    return {"jaxcost": jaxcost_version, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "platform": device.platform, "device_kind": device.device_kind}


def evaluate(task: dict[str, Any]) -> dict[str, Any]:
    """One configuration's record: analytic and compiler counts (compiled for the task's ``target`` when it
    names one), and its measured time when asked.

    An invalid configuration or a compiler error is a ``failed`` record with its reason.
    """
    from jaxcost.comparison import compare

    try:
        spec = spec_of(task["layer"], task["config"])
    except ValueError as error:
        return {"status": "failed", "reason": f"invalid: {error}"}
    try:
        comparison = compare(spec, mode=task["mode"], target=task.get("target"))
        compiler = comparison.compiler
        record: dict[str, Any] = {
            "status": "ok", "kind": spec.kind, "output_shape": list(spec.output_shape),
            "params": comparison.cost.params, "macs": comparison.cost.macs,
            "textbook_macs": comparison.cost.textbook_macs, "flops": comparison.analytic_flops,
            "bytes_accessed": comparison.analytic_bytes, "compiler_flops": compiler.flops,
            "compiler_bytes": compiler.bytes_accessed, "xla_flops": compiler.xla_flops,
            "xla_bytes": compiler.xla_bytes_accessed, "verdict": comparison.verdict}
        if task.get("target"):
            record.update(platform=compiler.platform, device_kind=compiler.device_kind)
        if task["timing"]:
            from jaxcost.measure.timing import benchmark

            measured = benchmark(spec, mode=task["mode"], repeats=task["repeats"], precision=task["precision"],
                                 seconds_budget=5.0).as_dict()
            record.update({name: measured[name] for name in MEASURED_FIELDS})
        return record
    except MemoryError:
        return {"status": "failed", "reason": "out of memory"}
    except Exception as error:  # the compiler or the device refused it: the sweep records why and goes on
        first_line = str(error).splitlines()[0] if str(error) else ""
        return {"status": "failed", "reason": f"{type(error).__name__}: {first_line}",
                "traceback": traceback.format_exc(limit=3)}


def _die_with_the_sweep() -> None:
    """On Linux, have the kernel kill this worker when the sweep that started it dies (even by SIGKILL),
    so that no configuration goes on running for nobody."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the worker ends when its input closes
        return
    if os.getppid() == 1:  # the sweep died before the request took effect
        sys.exit(0)


def warm_up() -> None:
    """Load what every configuration needs and compile once, so that a configuration's time limit is
    spent on that configuration, not on the process's first imports and compile."""
    import jaxcost.measure.timing  # noqa: F401

    evaluate({"layer": "dense", "config": {"input_shape": [1, 1], "features": 1}, "mode": "forward",
              "timing": False})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxcost.sweep.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--cores", help="the cores to run on, comma-separated (before JAX starts its threads)")
    args = parser.parse_args(argv)
    _die_with_the_sweep()
    if args.cores:
        os.sched_setaffinity(0, {int(core) for core in args.cores.split(",")})
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    warm_up()
    answers.write(json.dumps({"ready": environment()}) + "\n")
    answers.flush()
    for line in sys.stdin:
        if line.strip():
            answers.write(json.dumps(evaluate(json.loads(line))) + "\n")
            answers.flush()


if __name__ == "__main__":
    main()
