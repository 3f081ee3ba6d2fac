"""jaxcost's per-layer model report against flax's ``tabulate(compute_flops=True)``, in the same run.

Both analyse each model (MobileNetV2 1.0/224 and ViT-B/16 by default) at batch 1 on this machine's default
device. Printed, per model:
- wall time of each (median of several runs, JAX already warm), and their ratio;
- the same with JAX's persistent compilation cache warm, for jaxcost;
- for every Conv/Dense/DenseGeneral layer where flax gives flops, whether flax's figure equals jaxcost's.

flax compiles every submodule call on its own (lowered, unoptimized cost analysis); jaxcost compiles
the whole model once and attributes the optimized program to layers through HLO metadata.

Run: python bench/vs_tabulate.py [--repeats 3] [--model vit_b16 ...] [--resolution 224]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen import summary as flax_summary
from jax.experimental.compilation_cache.compilation_cache import reset_cache

from jaxcost import start_quietly
from jaxcost.models import build
from jaxcost.models.analysis import analyze


def seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flax_layer_flops(model: nn.Module, x: jax.Array) -> dict[str, int]:
    """flax's per-module flops, from the table tabulate renders (flax.linen.summary internals)."""
    rows = flax_summary._get_module_table(model, depth=None, show_repeated=True, compute_flops=True,
                                         compute_vjp_flops=False)(jax.random.PRNGKey(0), x)
    return {"/".join(row.path): row.flops for row in rows
            if row.path and isinstance(row.module_copy, (nn.Conv, nn.Dense, nn.DenseGeneral))}


#: The speed target: analyze at least this many times faster than tabulate(compute_flops=True).
TARGET_RATIO = 4.0


def compare(name: str, repeats: int, resolution: int = 224) -> list[str]:
    """Both tools on one zoo model, printed; what missed the target (the ratio, a layer's flops)."""
    model = build(name)
    x = jnp.ones((1, resolution, resolution, 3), jnp.float32)
    abstract = jax.ShapeDtypeStruct(x.shape, x.dtype)
    print(f"== {name}")
    seconds_flax = seconds(lambda: nn.tabulate(model, jax.random.PRNGKey(0), compute_flops=True)(x), repeats)
    seconds_jaxcost = seconds(lambda: analyze(model, abstract), repeats)
    print(f"flax tabulate(compute_flops=True): {seconds_flax:.2f} s")
    print(f"jaxcost analyze (one compile):     {seconds_jaxcost:.2f} s")
    print(f"ratio flax / jaxcost: {seconds_flax / seconds_jaxcost:.1f}x (target: at least 4x)")

    report = analyze(model, abstract)
    ours = {row.path: row.flops for row in report.layers}
    theirs = flax_layer_flops(model, x)
    compared = [path for path in ours if theirs.get(path)]
    differing = [(path, theirs[path], ours[path]) for path in compared if theirs[path] != ours[path]]
    print(f"layers where flax gives flops: {len(compared)} of {len(ours)}; equal to jaxcost's: "
          f"{len(compared) - len(differing)}")
    for path, flax_flops, jaxcost_flops in differing:
        print(f"  differs: {path}: flax {flax_flops:,}, jaxcost {jaxcost_flops:,}")
    failures = [f"{name}: {path} flops differ" for path, _, _ in differing]
    if seconds_flax / seconds_jaxcost < TARGET_RATIO:
        failures.append(f"{name}: {seconds_flax / seconds_jaxcost:.1f}x, under the {TARGET_RATIO:.0f}x target")

    with tempfile.TemporaryDirectory() as cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        analyze(model, abstract)  # fills the cache
        seconds_warm = seconds(lambda: analyze(model, abstract), repeats)
        jax.config.update("jax_compilation_cache_dir", None)
        reset_cache()  # else later compiles go on writing to the folder, gone once this block ends
    print(f"jaxcost analyze, warm compilation cache: {seconds_warm:.2f} s "
          f"(ratio {seconds_flax / seconds_warm:.1f}x)")
    return failures


def main() -> int:
    """Exit status 1 when a model misses the speed target or a layer's flops differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", action="append", help="zoo image models (default: mobilenet_v2 and vit_b16)")
    parser.add_argument("--resolution", type=int, default=224, help="image height and width (a quick run: 32)")
    args = parser.parse_args()
    start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    analyze(build("mobilenet_v1", alpha=0.25), jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))  # warm JAX up
    names = args.model or ["mobilenet_v2", "vit_b16"]
    failures = [failure for name in names for failure in compare(name, args.repeats, args.resolution)]
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
