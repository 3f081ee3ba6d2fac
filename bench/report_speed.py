"""How long `jaxcost report` takes, and what the analysis adds on top of compiling.

Prints, for the reference suite on the default device:
- the wall time of the whole `jaxcost report` command (a fresh process: imports, counts, timing and
  the roofline plot included), against its one-minute budget;
- per layer, jaxcost.compare(spec) against a bare jax.jit(...).lower(...).compile() of the same layer,
  measured in the same run, as a ratio.

Run: .venv/bin/python bench/report_speed.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

import jaxcost as jc
from jaxcost.modules import abstract_arguments, forward_function
from jaxcost.specs import reference_suite

BUDGET_SECONDS = 60.0
REPEATS = 5


def seconds_bare_compile(spec) -> float:
    start = time.perf_counter()
    jax.jit(forward_function(spec)).lower(*abstract_arguments(spec)).compile()
    return time.perf_counter() - start


def seconds_compare(spec) -> float:
    start = time.perf_counter()
    jc.compare(spec)
    return time.perf_counter() - start


def main() -> None:
    jc.start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    script = Path(sys.executable).parent / "jaxcost"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "jaxcost.cli"]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run(command + ["report", "--plot", f"{folder}/roofline"], check=True, capture_output=True)
        seconds_report = time.perf_counter() - start
    print(f"jaxcost report, fresh process: {seconds_report:.2f} s "
          f"({seconds_report / BUDGET_SECONDS:.1%} of the {BUDGET_SECONDS:.0f} s budget)")
    print()
    print(f"{'layer':<34} {'bare compile ms':>16} {'compare ms':>11} {'ratio':>6}")
    ratios = []
    for spec in reference_suite():
        bare = statistics.median(seconds_bare_compile(spec) for _ in range(REPEATS))
        full = statistics.median(seconds_compare(spec) for _ in range(REPEATS))
        ratios.append(full / bare)
        print(f"{spec.describe():<34} {bare * 1e3:16.1f} {full * 1e3:11.1f} {full / bare:6.2f}")
    print(f"median ratio compare / bare compile: {statistics.median(ratios):.2f} "
          f"(medians of {REPEATS} runs each, same process, {jax.devices()[0].platform})")


if __name__ == "__main__":
    main()
