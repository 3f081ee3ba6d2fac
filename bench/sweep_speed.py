"""A 400-configuration count-only sweep (analytic + compiler, no timing) with one worker and with two:
how long each takes, their ratio, and whether they recorded the same results.

Run: python bench/sweep_speed.py [--jobs N]   (the second run uses N workers; default 2)
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
    start = time.perf_counter()
    summary = run_sweep(GRID, out, jobs=jobs)
    seconds = time.perf_counter() - start
    print(f"--jobs {jobs}: {summary}")
    return seconds, list(ResultsFile(out).records())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    total = len(check_grid(GRID).configurations())
    with tempfile.TemporaryDirectory() as folder:
        seconds_one, records_one = timed_run(1, Path(folder))
        seconds_many, records_many = timed_run(args.jobs, Path(folder))
    print(f"{total} configurations: {seconds_one:.1f} s with 1 worker, {seconds_many:.1f} s with {args.jobs}: "
          f"{seconds_one / seconds_many:.2f}x faster; same records: {same_records(records_one, records_many)}")


if __name__ == "__main__":
    main()
