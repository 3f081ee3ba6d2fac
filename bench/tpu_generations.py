"""The reference layer suite and the zoo on TPU v4, v5e, v5p and v6e, side by side, from the programs that
bench/capture_tpu_programs.py compiled with libtpu (tests/fixtures/tpu): FLOPs, bytes as XLA:TPU counts them
(and whether the recount reproduces them: '='), the bytes the same program would move at its tensors' logical
sizes (no tile padding), the share of the traffic that is padding, intensity, and the roofline bound per chip
from the datasheet peaks (bf16 matrix peak, HBM bandwidth).

Run: python bench/tpu_generations.py [--fixtures tests/fixtures/tpu] [--out bench/results/tpu_generations.txt]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import jaxcost as jc
from jaxcost import targets
from jaxcost.compiler import replayed
from jaxcost.hlo.text import TILES
from jaxcost.measure.hardware import lookup
from jaxcost.reports.text import format_bytes, format_count, table


def logical_bytes(hlo_text: str, device_kind: str) -> int:
    """The program's bytes by XLA's rules with every layout's tiles dropped: each tensor at its logical size."""
    logical = dataclasses.replace(targets.sizes(device_kind), untiled_scalar_bytes=0)  # a scalar: its own bytes
    return jc.recount(TILES.sub("", hlo_text), logical).xla_rule_total("bytes_accessed")


def row(entry: dict) -> list[str]:
    compiler = replayed(entry)
    peaks = lookup(compiler.device_kind)
    flops, xla_bytes = compiler.flops, int(compiler.xla_bytes_accessed)
    logical = logical_bytes(compiler.hlo_text, compiler.device_kind)
    seconds_compute, seconds_memory = flops / peaks.peak("bf16"), xla_bytes / peaks.bytes_per_second
    same = all(compiler.xla_reproduced(key) for key in ("flops", "transcendentals", "bytes_accessed"))
    return [entry["name"], entry["mode"], peaks.name, format_count(flops), format_bytes(xla_bytes),
            "=" if same else "≠", format_bytes(logical), f"{1 - logical / xla_bytes:.0%}",
            f"{flops / xla_bytes:.1f}", f"{max(seconds_compute, seconds_memory) * 1e6:.2f} µs",
            "compute" if seconds_compute >= seconds_memory else "memory"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fixtures", default="tests/fixtures/tpu")
    parser.add_argument("--out", default="bench/results/tpu_generations.txt")
    args = parser.parse_args()
    rows = [row(entry) for entry in targets.stored_programs(args.fixtures)]
    text = "\n".join([
        "TPU generations, compiled with libtpu by bench/capture_tpu_programs.py. "
        "'=': the recount reproduces XLA:TPU's flops, transcendentals and bytes exactly. 'logical': the same "
        "program's bytes with every tensor at its logical size; 'padding': the share of XLA's bytes that tiles add.",
        table(["program", "mode", "chip", "FLOPs", "bytes (XLA)", "", "logical", "padding", "FLOPs/B", "roofline",
               "bound"], rows),
        f"{len(rows)} programs, {sum(r[5] == '=' for r in rows)} reproduced exactly",
    ])
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
