"""Five back-to-back `jaxcost bench` runs of a mid-size conv: how far apart are their medians?

Each run is a fresh process (compile, warm-up, K calls per repeat, median of the repeats). Prints
the five medians, their spread, and the largest deviation from the median of medians (target: 5%).

Run: python bench/timing_stability.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

COMMAND = ["bench", "conv", "--input", "8,56,56,64", "--features", "128", "--kernel", "3", "--no-ceilings", "--json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "jaxcost"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "jaxcost.cli"]
    medians = []
    for run in range(args.runs):
        output = subprocess.run(command + COMMAND, check=True, capture_output=True, text=True).stdout
        (measurement,) = json.loads(output)
        medians.append(measurement["seconds_median"])
        print(f"run {run + 1}: median {measurement['seconds_median'] * 1e3:.3f} ms "
              f"(spread within the run {measurement['spread']:.1%}, {measurement['calls_per_repeat']} calls x "
              f"{measurement['repeats']} repeats), {measurement['flops_per_second'] / 1e9:.1f} GFLOP/s")
    center = statistics.median(medians)
    worst = max(abs(m - center) / center for m in medians)
    print(f"medians of {args.runs} runs: largest deviation from their median {worst:.1%} (target: within 5%); "
          f"max/min {max(medians) / min(medians):.3f}")


if __name__ == "__main__":
    main()
