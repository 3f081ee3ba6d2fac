"""TPU programs compiled here with libtpu (the tpu extra), stored with XLA:TPU's cost analysis as a fixture
that the tests replay without libtpu: a 3x3 convolution on each generation, an elementwise program whose
tensors do not fit the tiles, and a matmul with a cross-program prefetch.

Run: JAX_PLATFORMS=cpu python bench/capture_tpu_programs.py [--out tests/fixtures/tpu_programs.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
from layer_suite import scrub_paths  # beside this script

import jaxcost as jc

CONVOLUTION = jc.Conv((8, 56, 56, 64), 128, (3, 3), padding="SAME", use_bias=False, dtype="bfloat16")


def programs() -> list[dict]:
    """Each program's target, name, optimized HLO and XLA:TPU's figures."""
    made = []
    for target in ("tpu:v4:2x2x1", "tpu:v5e:2x2", "tpu:v5p:2x2x1", "tpu:v6e:2x2"):
        made.append(("conv3x3 bf16", target, jc.compiled(CONVOLUTION, target=target)))
    made.append(("f32[1000,100] + 1", "tpu:v5e:2x2",
                 jc.compiled(lambda a: a + 1, jax.ShapeDtypeStruct((1000, 100), jnp.float32), target="tpu:v5e:2x2")))
    square = jax.ShapeDtypeStruct((1024, 1024), jnp.bfloat16)
    made.append(("matmul 1024 bf16", "tpu:v5e:2x2", jc.compiled(lambda a, b: a @ b, square, square,
                                                                 target="tpu:v5e:2x2")))
    return [{"name": name, "target": target, "device_kind": compiler.device_kind,
             "hlo_optimized": scrub_paths(compiler.hlo_text), "compiled_cost_analysis": compiler.xla}
            for name, target, compiler in made]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="tests/fixtures/tpu_programs.json")
    args = parser.parse_args()
    Path(args.out).write_text(json.dumps({"jax": jax.__version__, "programs": programs()}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
