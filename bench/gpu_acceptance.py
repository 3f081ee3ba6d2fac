"""The accelerator checks, with PyTorch beside jaxcost on the same shapes and the same data, in one run.

- 8192^3 bf16 matmul: the loop median against the device span of the same calls (target within 3 %),
  and against torch.matmul (target within 3 %);
- 3x3 conv 128x56x56x256 -> 256 bf16: compute-bound at >= 60 % of the clock-adjusted peak; beside
  torch's cuDNN conv2d (channels_last, benchmark mode);
- 3x3 depthwise 128x112x112x128 bf16: memory-bound at >= 45 % of the datasheet bandwidth; beside torch;
- the reference suite at batch 1: every layer overhead-bound.

Writes acceptance.txt and acceptance.json under --out. Run: python bench/gpu_acceptance.py --out DIR
(--smoke: small sizes, to check the script on a CPU; the targets are then not judged).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxcost as jc
from jaxcost.reports.performance import measurements_table, notes

CONV_NUMBERS = ("NHWC", "HWIO", "NHWC")


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _loop(call, wait, calls: int) -> float:
    """K calls back to back and one wait: seconds per call (jaxcost's method)."""
    start = time.perf_counter()
    for _ in range(calls):
        result = call()
    wait(result)
    return (time.perf_counter() - start) / calls


def _calls(call, wait, seconds_per_repeat: float) -> int:
    wait(call())
    return max(1, round(seconds_per_repeat / _loop(call, wait, 3)))


def torch_seconds(torch, call, seconds_per_repeat: float = 0.2, repeats: int = 9) -> float:
    """The same method as jaxcost's loop for a torch call: median of repeats of K calls and one synchronize."""
    def wait(_):
        torch.cuda.synchronize()
    calls = _calls(call, wait, seconds_per_repeat)
    return statistics.median(_loop(call, wait, calls) for _ in range(repeats))


def interleaved_seconds(torch, jax_call, torch_call, seconds_per_repeat: float = 0.2,
                        repeats: int = 9) -> tuple[float, float]:
    """JAX and torch timed in alternating repeats, so that both see the same clocks and temperatures."""
    def torch_wait(_):
        torch.cuda.synchronize()
    sides = [(jax_call, jax.block_until_ready), (torch_call, torch_wait)]
    calls = [_calls(call, wait, seconds_per_repeat) for call, wait in sides]
    times: list[list[float]] = [[], []]
    for _ in range(repeats):
        for index, (call, wait) in enumerate(sides):
            times[index].append(_loop(call, wait, calls[index]))
    return statistics.median(times[0]), statistics.median(times[1])


def random(shape: tuple[int, ...], seed: int) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32), jnp.bfloat16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/gpu")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    jc.start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size, batch, depthwise_batch = (256, 2, 2) if args.smoke else (8192, 128, 128)
    torch = _torch()
    device = jax.devices()[0]
    lines = [f"device: {device.device_kind}, jax {jax.__version__}" + (f", torch {torch.__version__}" if torch else
                                                                       ", no torch with CUDA here")]
    results: dict = {"device": device.device_kind, "jax": jax.__version__, "checks": {}}

    def check(name: str, passed: bool, detail: str) -> None:
        results["checks"][name] = {"passed": bool(passed), "detail": detail}
        lines.append(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")

    a, b = random((size, size), 0), random((size, size), 1)
    matmul = jc.benchmark(jnp.matmul, a, b, label=f"matmul {size}^3 bf16")
    x, w = random((batch, 56, 56, 256), 2), random((3, 3, 256, 256), 3)
    conv = jc.benchmark(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=CONV_NUMBERS),
                        x, w, label=f"conv3x3 {batch}x56x56x256->256 bf16")
    xd, wd = random((depthwise_batch, 112, 112, 128), 4), random((3, 3, 1, 128), 5)
    depthwise = jc.benchmark(lambda x, w: lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=CONV_NUMBERS, feature_group_count=128), xd, wd,
        label=f"depthwise3x3 {depthwise_batch}x112x112x128 bf16")
    suite = [jc.benchmark(spec) for spec in jc.reference_suite(1)]
    measured = [matmul, conv, depthwise, *suite]
    lines += [str(matmul.peaks), measurements_table(measured), *notes(measured)]
    results["measurements"] = [m.as_dict() for m in measured]
    if not args.smoke:
        span = matmul.seconds_device_span
        check("matmul loop vs device span", span is not None and abs(matmul.seconds_median / span - 1) <= 0.03,
              f"loop {matmul.seconds_median * 1e3:.4f} ms, span {span * 1e3 if span else float('nan'):.4f} ms")
        adjusted = conv.clock_adjusted_utilization
        share = adjusted.compute_utilization if adjusted else conv.compute_utilization
        check("conv compute-bound at >= 60 % of the clock-adjusted peak",
              conv.bound == "compute" and share >= 0.60,
              f"bound {conv.bound}, {share:.1%} of the {'clock-adjusted' if adjusted else 'datasheet'} peak")
        check("depthwise memory-bound at >= 45 % of datasheet bandwidth",
              depthwise.bound == "memory" and depthwise.memory_utilization >= 0.45,
              f"bound {depthwise.bound}, {depthwise.bytes_per_second / 1e12:.2f} TB/s = "
              f"{depthwise.memory_utilization:.1%}")
        check("batch-1 reference layers overhead-bound", all(m.bound == "overhead" for m in suite),
              ", ".join(f"{m.label}: {m.bound}" for m in suite))
    if torch is not None:
        torch.backends.cudnn.benchmark = True
        ta, tb = torch.from_dlpack(a), torch.from_dlpack(b)
        torch_matmul = torch_seconds(torch, lambda: torch.matmul(ta, tb))
        tx = torch.from_dlpack(x).permute(0, 3, 1, 2)  # NCHW view of NHWC data: channels_last
        tw = torch.from_dlpack(w).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        torch_conv = torch_seconds(torch, lambda: torch.nn.functional.conv2d(tx, tw, padding=1))
        txd = torch.from_dlpack(xd).permute(0, 3, 1, 2)
        twd = torch.from_dlpack(wd).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        torch_depthwise = torch_seconds(torch, lambda: torch.nn.functional.conv2d(txd, twd, padding=1, groups=128))
        for name, ours, theirs in (("matmul", matmul, torch_matmul), ("conv", conv, torch_conv),
                                   ("depthwise", depthwise, torch_depthwise)):
            rate = f"{ours.flops / theirs / 1e12:.1f} TFLOP/s" if name != "depthwise" else \
                f"{ours.bytes_accessed / theirs / 1e12:.2f} TB/s"
            lines.append(f"torch {name}: {theirs * 1e3:.4f} ms = {rate} at jaxcost's count; jaxcost "
                         f"{ours.seconds_median * 1e3:.4f} ms ({theirs / ours.seconds_median:.3f}x torch's speed)")
            results[f"torch_{name}_seconds"] = theirs
        jax_matmul = jax.jit(jnp.matmul)
        ours, theirs = interleaved_seconds(torch, lambda: jax_matmul(a, b), lambda: torch.matmul(ta, tb))
        results["interleaved_matmul_seconds"] = {"jax": ours, "torch": theirs}
        if not args.smoke:
            check("matmul TFLOP/s within 3 % of torch.matmul (alternating repeats)", abs(theirs / ours - 1) <= 0.03,
                  f"jax {matmul.flops / ours / 1e12:.1f}, torch {matmul.flops / theirs / 1e12:.1f} TFLOP/s; "
                  f"jaxcost's own loop before them {matmul.flops_per_second / 1e12:.1f}")
    text = "\n".join(lines)
    print(text)
    (out / "acceptance.txt").write_text(text + "\n")
    (out / "acceptance.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
