"""Measured performance on an accelerator, prepared to run in one go (bench/gpu_checks.sh calls it).

- the 8192^3 bfloat16 matmul: achieved TFLOP/s, share of the datasheet peak (target on an H100:
  at least 88% of 989 TFLOP/s), and the loop time against the device-trace time (target: within 3%);
- the reference layer suite in bfloat16 and float32 (float32 held against the TF32 peak, as it runs);
- a depthwise layer large enough to be memory-bound, reported as such;
- the roofline plot of all of it.

Run: python bench/gpu_perf.py --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp

import jaxcost as jc
from jaxcost.measure.timing import benchmark, measure_ceilings
from jaxcost.reports.performance import ceilings_text, measurements_table, write_roofline
from jaxcost.reports.text import format_bytes
from jaxcost.specs import reference_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/gpu")
    parser.add_argument("--smoke", action="store_true", help="small sizes, to check the script on a CPU")
    args = parser.parse_args()
    jc.start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    size, batch = (1024, 2) if args.smoke else (8192, 128)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}"]
    matrix = jax.ShapeDtypeStruct((size, size), jnp.bfloat16)
    matmul = benchmark(jnp.matmul, matrix, matrix, dtype="bfloat16", label=f"matmul {size}^3 bf16")
    lines.append(f"{matmul.label}: {matmul.flops_per_second / 1e12:.1f} TFLOP/s, "
                 f"{matmul.compute_utilization:.1%} of {matmul.peak_flops_per_second / 1e12:.1f} (target >= 88%)")
    if matmul.seconds_device:
        lines.append(f"  loop {matmul.seconds_median * 1e3:.3f} ms vs device trace "
                     f"{matmul.seconds_device * 1e3:.3f} ms: "
                     f"{matmul.seconds_median / matmul.seconds_device - 1:+.1%} (target within 3%)")
    ceiling_matmul, ceiling_triad = measure_ceilings("bfloat16", matmul_size=size)
    ceilings = (ceiling_matmul.flops_per_second, ceiling_triad.bytes_per_second)
    lines += [str(matmul.peaks), ceilings_text(ceiling_matmul, ceiling_triad)]
    specs = [dataclasses.replace(spec, dtype=dtype) for dtype in ("bfloat16", "float32")
             for spec in reference_suite() if spec.dtype == "float32"]
    specs.append(jc.depthwise_conv((batch, 112, 112, 128), 3, dtype="bfloat16"))
    measurements = [benchmark(spec, ceilings=ceilings, label=f"{spec.describe()} {spec.dtype}") for spec in specs]
    lines.append(measurements_table([matmul, *measurements]))
    depthwise = measurements[-1]
    lines.append(f"depthwise {batch}x112x112x128 bf16: {format_bytes(depthwise.bytes_per_second)}/s, "
                 f"bound: {depthwise.bound}")
    text = "\n".join(lines)
    print(text)
    (out / "gpu_perf.txt").write_text(text + "\n")
    write_roofline([matmul, *measurements], out / "roofline", ceilings)


if __name__ == "__main__":
    main()
