"""The reference layer suite and the zoo compiled for TPU v5e, v5p and v6e slices on this machine (libtpu, the
tpu extra), side by side: FLOPs, bytes as XLA:TPU counts them and as jaxcost recounts them, the bytes tile
padding adds, intensity, and the roofline bound per chip from the datasheet peaks (bf16).

Run: JAX_PLATFORMS=cpu python bench/tpu_generations.py [--out bench/results/tpu_generations.txt]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import jaxcost as jc
from jaxcost.measure.hardware import lookup
from jaxcost.models import ZOO, build
from jaxcost.models.analysis import analyze
from jaxcost.reports.text import format_bytes, format_count, table
from jaxcost.specs import reference_suite

TARGETS = ("tpu:v5e:2x2", "tpu:v5p:2x2x1", "tpu:v6e:2x2")
ZOO_MODELS = ("mobilenet_v2", "resnet50", "vit_b16", "gpt2_small")


def programs(target: str) -> list[tuple[str, jc.CompilerCost]]:
    """The suite's layers forward in float32 and bfloat16, and the zoo's models forward in bfloat16."""
    made = []
    for spec in reference_suite():
        for dtype in ("float32", "bfloat16"):
            layer = dataclasses.replace(spec, dtype=dtype)
            name = layer.describe() if dtype in layer.describe() else f"{layer.describe()} {dtype}"
            made.append((name, jc.compiled(layer, target=target)))
    for name in ZOO_MODELS:
        shape = (1, ZOO[name].tokens) if ZOO[name].tokens else (1, 224, 224, 3)
        dtype = jnp.int32 if ZOO[name].tokens else jnp.bfloat16
        model = build(name, dtype="bfloat16")
        made.append((f"{name} bf16", analyze(model, jax.ShapeDtypeStruct(shape, dtype), target=target).compiler))
    return made


def row(name: str, compiler: jc.CompilerCost) -> list[str]:
    peaks = lookup(compiler.device_kind)
    flops, xla_bytes = compiler.flops, int(compiler.xla_bytes_accessed)
    padding = sum(bytes_added for _, _, bytes_added in compiler.recount.padding)
    seconds = max(flops / peaks.peak("bf16"), xla_bytes / peaks.bytes_per_second)
    bound = "compute" if flops / peaks.peak("bf16") >= xla_bytes / peaks.bytes_per_second else "memory"
    same = "=" if compiler.xla_reproduced("bytes_accessed") else "≠"
    return [name, peaks.name, format_count(flops), "=" if compiler.xla_reproduced("flops") else "≠",
            format_bytes(xla_bytes), f"{same} {format_bytes(compiler.bytes_accessed)}", format_bytes(padding),
            f"{flops / xla_bytes:.1f}", f"{seconds * 1e6:.2f} µs", bound]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench/results/tpu_generations.txt")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = [row(name, compiler) for target in TARGETS for name, compiler in programs(target)]
    text = "\n".join([
        f"TPU generations, compiled here with libtpu (jax {jax.__version__}); bytes and bound as XLA:TPU counts "
        "them ('=': the recount reproduces XLA's figure exactly, '≠': not yet, see the README)",
        table(["program", "chip", "FLOPs", "XLA", "bytes (XLA)", "recount", "tile padding", "FLOPs/B", "roofline",
               "bound"], rows),
        f"{len(rows)} programs in {time.perf_counter() - start:.0f} s",
    ])
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
