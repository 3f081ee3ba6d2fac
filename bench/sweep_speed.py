"""A 400-configuration count-only sweep (analytic + compiler, no timing) with one worker and with two:
how long each takes, their ratio, and whether they recorded the same results.

The two are run in turn, ``--rounds`` times each (default 2), and each keeps its fastest run: on a shared
machine, time taken by other tenants only ever adds, so the minimum is the estimate least disturbed.

Run: python bench/sweep_speed.py [--jobs N] [--rounds R]   (the second uses N workers; default 2)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from jaxcost.sweep import ResultsFile, check_grid, run_sweep, same_records

GRID = {"layer": "conv", "base": {"input_shape": [1, 28, 28, 16], "kernel_size": 3},
        "axes": {"features": [16, 32, 48, 64, 80], "groups": [1, 2, 4, 16], "size": [7, 14, 28, 56, 112],
                 "dtype": ["float32", "bfloat16"], "use_bias": [True, False]}}


def timed_run(jobs: int, folder: Path) -> tuple[float, list[dict]]:
    out = folder / f"jobs{jobs}.jsonl"
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    summary = run_sweep(GRID, out, jobs=jobs)
    seconds = time.perf_counter() - start
    print(f"--jobs {jobs}: {summary}")
    return seconds, list(ResultsFile(out).records())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    total = len(check_grid(GRID).configurations())
    times: dict[int, list[float]] = {1: [], args.jobs: []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for jobs in times:
                seconds, records = timed_run(jobs, Path(folder))
                times[jobs].append(seconds)
                if jobs == 1:
                    records_one = records
                else:
                    records_many = records
    seconds_one, seconds_many = min(times[1]), min(times[args.jobs])
    print(f"{total} configurations, fastest of {args.rounds}: {seconds_one:.1f} s with 1 worker, {seconds_many:.1f} s "
          f"with {args.jobs}: {seconds_one / seconds_many:.2f}x faster; same records: "
          f"{same_records(records_one, records_many)}")


if __name__ == "__main__":
    main()
