"""GPT-2 small's training step on one device of a TPU v5e slice (``tpu:v5e:2x2``, compiled here with libtpu): the
largest batch that fits a memory, found as ``jaxcost fit gpt2_small --target tpu:v5e:2x2 --train`` finds it, and
every compiled batch's report held against XLA's own ``memory_analysis()`` of it.

It fails (exit status 1, each broken rule printed) unless: the batch found fits and twice it does not; the search
took fewer than 10 compiles; every report's arguments, outputs and aliased bytes are XLA's, its peak is XLA's implied
peak (arguments + outputs + temporaries - aliased) plus the tuple tables XLA:TPU leaves out, and its live values,
rows and roles add up to the live peak. Six minutes of compiles on two CPU cores (bench/results/fit_gpt2_small_v5e.txt).

Run: python bench/fit_gpt2_v5e.py [--memory 6GiB]
"""

from __future__ import annotations

import argparse
import sys

from jaxcost.cli import build_parser
from jaxcost.memory_commands import memory_of
from jaxcost.models.fit import largest_batch, parse_size
from jaxcost.models.memory import MemoryReport
from jaxcost.reports.memory import fit_lines

#: The issue's bound on the search: fewer compiles than this.
MOST_COMPILES = 10


def broken_rules(report: MemoryReport) -> list[str]:
    """The relations to XLA's ``memory_analysis()`` and among its own figures that ``report`` breaks."""
    xla, broken = report.xla, []
    for figure, key in (("arguments_bytes", "argument_size_in_bytes"), ("outputs_bytes", "output_size_in_bytes"),
                        ("aliased_bytes", "alias_size_in_bytes")):
        if getattr(report, figure) != xla[key]:
            broken.append(f"{figure} {getattr(report, figure):,} != XLA's {key} {xla[key]:,}")
    implied = (xla["argument_size_in_bytes"] + xla["output_size_in_bytes"] + xla["temp_size_in_bytes"]
               - xla["alias_size_in_bytes"])
    if report.peak_bytes != implied + max(0, -report.temp_unassigned_bytes):
        broken.append(f"peak {report.peak_bytes:,} != XLA's implied {implied:,} + tables XLA leaves out "
                      f"{max(0, -report.temp_unassigned_bytes):,}")
    for name, total in (("values", sum(value.bytes for value in report.live)),
                        ("rows", sum(report.bytes_by_row().values())), ("roles", sum(report.bytes_by_role().values()))):
        if total != report.live_peak_bytes:
            broken.append(f"the live {name} add up to {total:,}, not the live peak {report.live_peak_bytes:,}")
    return broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", default="6GiB", help="the device memory to fit in (default 6GiB)")
    options = parser.parse_args()
    args = build_parser().parse_args(["fit", "gpt2_small", "--target", "tpu:v5e:2x2", "--train", "--memory",
                                      options.memory])
    capacity_bytes = parse_size(options.memory)
    found = largest_batch(lambda batch: memory_of(args, batch), capacity_bytes, max_compiles=MOST_COMPILES - 1)
    print("\n".join(fit_lines(found, "gpt2_small", "--memory")))
    broken = [f"batch {batch}: {rule}" for batch, report in sorted(found.reports.items())
              for rule in broken_rules(report)]
    if found.batch is None:
        broken.append("no batch fits")
    elif 2 * found.batch in found.reports and found.reports[2 * found.batch].fits(capacity_bytes):
        broken.append(f"twice the batch found ({2 * found.batch}) fits too")
    elif 2 * found.batch not in found.reports and found.next_batch() is None:
        broken.append(f"nothing above batch {found.batch} was compiled: twice it is not known not to fit")
    if found.compiles >= MOST_COMPILES:
        broken.append(f"{found.compiles} compiles, not fewer than {MOST_COMPILES}")
    print("\n".join(["", *broken]) if broken else "\nevery rule holds")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
