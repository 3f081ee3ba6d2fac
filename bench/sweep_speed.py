"""A 200-configuration sweep (analytic + compiler, no timing) on this machine: how long it takes.

Run: python bench/sweep_speed.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from jaxcost.sweep import configurations, run_sweep

GRID = {"layer": "conv", "base": {"input_shape": [1, 28, 28, 16], "kernel_size": 3},
        "axes": {"features": [16, 32, 48, 64, 80], "groups": [1, 2, 4, 16], "size": [7, 14, 28, 56, 112],
                 "dtype": ["float32", "bfloat16"]}}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "results.jsonl"
        start = time.perf_counter()
        counts = run_sweep(GRID, out)
        seconds = time.perf_counter() - start
    total = len(configurations(GRID))
    print(f"{total} configurations: {counts['ok']} ok, {counts['failed']} failed, in {seconds:.1f} s "
          f"({seconds / total * 1e3:.0f} ms each)")


if __name__ == "__main__":
    main()
