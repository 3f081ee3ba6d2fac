"""TPU programs compiled here with libtpu (the tpu extra), stored with XLA:TPU's cost analysis as fixtures that
the tests replay without libtpu, one file a generation (``tests/fixtures/tpu/<generation>.json.xz``): the
reference layer suite in float32 and bfloat16, forward and as a training step; the zoo's models in bfloat16,
forward and training; and a few small programs the tests name (a 3x3 convolution, an elementwise program whose
tensors do not fit the tiles, a matmul with a cross-program prefetch, an embedding lookup).

A generation's file is written as soon as its programs are compiled, so a run stopped part way keeps the
generations it finished. ``bench/tpu_generations.py`` makes its report from these files.

Run: JAX_PLATFORMS=cpu python bench/capture_tpu_programs.py [--out tests/fixtures/tpu] [--targets tpu:v5e:2x2,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import lzma
import time
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
from layer_suite import scrub_paths  # beside this script

import jaxcost as jc
from jaxcost.models import ZOO, build, training_keywords
from jaxcost.models.analysis import analyze
from jaxcost.specs import reference_suite

TARGETS = ("tpu:v5e:2x2", "tpu:v5p:2x2x1", "tpu:v6e:2x2", "tpu:v4:2x2x1")
CONVOLUTION = jc.Conv((8, 56, 56, 64), 128, (3, 3), padding="SAME", use_bias=False, dtype="bfloat16")


def suite_layers() -> list[tuple[str, jc.Conv | jc.Dense]]:
    """The reference suite's distinct layers in float32 and bfloat16."""
    layers: dict[str, jc.Conv | jc.Dense] = {}
    for spec in reference_suite():
        for dtype in ("float32", "bfloat16"):
            layer = dataclasses.replace(spec, dtype=dtype)
            name = layer.describe() if dtype in layer.describe() else f"{layer.describe()} {dtype}"
            layers.setdefault(name, layer)
    return list(layers.items())


def zoo_program(name: str, target: str, mode: str) -> jc.CompilerCost:
    """A zoo model in bfloat16 at batch 1 (224x224 images, or its own sequence length), compiled for ``target``."""
    tokens = ZOO[name].tokens
    shape, dtype = ((1, tokens), jnp.int32) if tokens else ((1, 224, 224, 3), jnp.bfloat16)
    model = build(name, dtype="bfloat16")
    # as the command line does: a network with batch norm trains with batch statistics
    return analyze(model, jax.ShapeDtypeStruct(shape, dtype), target=target, mode=mode,
                   **training_keywords(model, mode)).compiler


def programs(target: str) -> Iterator[tuple[str, str, jc.CompilerCost]]:
    """(name, mode, compiled program) for every program of one target."""
    yield "conv3x3 8x56x56x64->128 bf16", "forward", jc.compiled(CONVOLUTION, target=target)
    yield "f32[1000,100] + 1", "forward", jc.compiled(lambda a: a + 1, jax.ShapeDtypeStruct((1000, 100), jnp.float32),
                                                      target=target)
    square = jax.ShapeDtypeStruct((1024, 1024), jnp.bfloat16)
    yield "matmul 1024 bf16", "forward", jc.compiled(lambda a, b: a @ b, square, square, target=target)
    table, ids = jax.ShapeDtypeStruct((50257, 768), jnp.bfloat16), jax.ShapeDtypeStruct((1, 1024), jnp.int32)
    yield "embedding lookup 50257x768 bf16", "forward", jc.compiled(lambda t, i: jnp.take(t, i, axis=0), table, ids,
                                                                    target=target)
    for mode in ("forward", "train"):
        for name, layer in suite_layers():
            yield name, mode, jc.compiled(layer, mode=mode, target=target)
        for name in ZOO:
            yield f"{name} bf16", mode, zoo_program(name, target, mode)


def capture(target: str) -> list[dict]:
    """Every program of ``target`` as a fixture entry, saying how long each took to compile."""
    entries = []
    for name, mode, compiler in programs(target):
        entries.append({"name": name, "mode": mode, "target": target, "device_kind": compiler.device_kind,
                        "hlo_optimized": scrub_paths(compiler.hlo_text), "compiled_cost_analysis": compiler.xla})
        same = all(compiler.xla_reproduced(key) for key in ("flops", "transcendentals", "bytes_accessed"))
        print(f"{target} {mode:7} {name:45} {compiler.seconds_compile:6.1f} s  {'=' if same else 'DIFFERS'}",
              flush=True)
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="tests/fixtures/tpu")
    parser.add_argument("--targets", default=",".join(TARGETS))
    args = parser.parse_args()
    jc.start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for target in args.targets.split(","):
        start = time.perf_counter()
        entries = capture(target)
        path = out / f"{target.split(':')[1]}.json.xz"
        document = {"jax": jax.__version__, "target": target, "programs": entries}
        path.write_bytes(lzma.compress(json.dumps(document).encode(), preset=9))
        print(f"wrote {path} ({len(entries)} programs, {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
