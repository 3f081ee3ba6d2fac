"""The layer suite on this machine's default device: XLA's figure, jaxcost's recount and the analytic count.

For each reference layer, in float32 and bfloat16, forward and as a training step, it prints what
XLA reports (-1 included, as XLA gives it), the recount of the compiled program (library calls
recounted, loops multiplied) and the analytic count, with the verdict. It also stores every
compiled program with XLA's figures as a fixture, so CPU tests can check the recount against
programs compiled on other backends.

Run: python bench/layer_suite.py [--out bench/results] [--fixtures tests/fixtures]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from pathlib import Path

import jax

import jaxcost as jc
from jaxcost.reports.text import table
from jaxcost.specs import reference_suite


def scrub_paths(hlo_text: str) -> str:
    """Drop machine paths from stack-frame metadata, keeping ``site-packages/...`` or the base name."""
    hlo_text = re.sub(r'"/[^"]*/(site-packages/[^"]*)"', r'"\1"', hlo_text)
    return re.sub(r'"/(?:[^"/]+/)+([^"/]+)"', r'"\1"', hlo_text)


def spec_fields(spec) -> dict:
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.init}
    if "padding" in fields:
        fields["padding"] = [list(pair) for pair in spec.pads]
    return {"type": type(spec).__name__, **fields}


def suite() -> list:
    """Every reference layer in float32 and bfloat16 (the bfloat16 reference entry only once)."""
    specs = []
    for spec in reference_suite():
        specs.append(dataclasses.replace(spec, dtype="float32"))
        specs.append(dataclasses.replace(spec, dtype="bfloat16"))
    return list({repr(s): s for s in specs}.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results", help="folder for the printed table")
    parser.add_argument("--fixtures", default="tests/fixtures", help="folder for the stored programs")
    args = parser.parse_args()
    jc.start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    device = jax.devices()[0]
    rows, entries = [], []
    start = time.perf_counter()
    for spec in suite():
        for mode in ("forward", "train"):
            comparison = jc.compare(spec, mode=mode)
            compiler = comparison.compiler
            rows.append([comparison.label, spec.dtype, f"{compiler.xla_flops:,.0f}", f"{compiler.flops:,}",
                         f"{comparison.analytic_flops:,}", f"{compiler.xla_bytes_accessed:,.0f}",
                         f"{compiler.bytes_accessed:,}", f"{comparison.analytic_bytes:,}", comparison.verdict,
                         "; ".join(compiler.xla_unknown)[:60]])
            entries.append({"name": f"{comparison.label} {spec.dtype}", "mode": mode, "spec": spec_fields(spec),
                            "xla": compiler.xla, "hlo_optimized": scrub_paths(compiler.hlo_text)})
    headers = ["layer", "dtype", "XLA FLOPs", "recount FLOPs", "analytic FLOPs", "XLA bytes", "recount bytes",
               "analytic bytes", "verdict", "XLA unknowns"]
    text = (f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}\n\n"
            + table(headers, rows, align="ll" + "r" * 6 + "ll")
            + f"\n\n{len(rows)} programs in {time.perf_counter() - start:.1f} s\n")
    print(text)
    platform = device.platform
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, f"layer_suite_{platform}.txt").write_text(text)
    Path(args.fixtures).mkdir(parents=True, exist_ok=True)
    meta = {"jax": jax.__version__, "device_kind": device.device_kind, "platform": platform}
    Path(args.fixtures, f"layer_suite_{platform}.json").write_text(json.dumps({"meta": meta, "entries": entries}))


if __name__ == "__main__":
    main()
