"""Timing methods side by side on the same layer: per-call sync, back-to-back, and the device trace.

Per-call sync blocks after every call and so pays dispatch and synchronisation each time;
back-to-back dispatches K calls and blocks once per repeat (jaxcost's loop); the device trace
(GPU/TPU) reads the kernels' own time. Printed: each method's time per call and their ratios.

Run: python bench/timing_methods.py [--input 8,56,56,64 --features 128 --dtype float32]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

import jaxcost as jc
from jaxcost.measure.timing import benchmark, concrete_arguments, device_trace
from jaxcost.modules import abstract_arguments, forward_function


def per_call_sync_seconds(spec: jc.Conv, calls: int, repeats: int) -> float:
    executable = jax.jit(forward_function(spec)).lower(*abstract_arguments(spec)).compile()
    arguments = concrete_arguments(abstract_arguments(spec), jax.random.PRNGKey(0))
    jax.block_until_ready(executable(*arguments))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            jax.block_until_ready(executable(*arguments))
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="8,56,56,64")
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    jc.start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    spec = jc.standard_conv(tuple(int(d) for d in args.input.split(",")), args.features, 3, dtype=args.dtype)
    loop = benchmark(spec, repeats=7)
    sync = per_call_sync_seconds(spec, loop.calls_per_repeat, 7)
    print(f"{spec.describe()} {args.dtype}, input {args.input}, {jax.devices()[0].device_kind}")
    print(f"back-to-back ({loop.calls_per_repeat} calls, one block): {loop.seconds_median * 1e6:9.1f} us/call  "
          f"{loop.flops_per_second / 1e12:.3f} TFLOP/s")
    print(f"per-call sync:                        {sync * 1e6:9.1f} us/call  "
          f"{loop.flops / sync / 1e12:.3f} TFLOP/s   ratio sync / back-to-back {sync / loop.seconds_median:.3f}")
    if jax.devices()[0].platform != "cpu":
        executable = jax.jit(forward_function(spec)).lower(*abstract_arguments(spec)).compile()
        arguments = [concrete_arguments(abstract_arguments(spec), jax.random.PRNGKey(0))]
        trace = device_trace(executable, arguments, loop.calls_per_repeat)
        if trace:
            print(f"device trace, kernel busy:            {trace.busy_seconds_per_call * 1e6:9.1f} us/call  "
                  f"span {trace.span_seconds_per_call * 1e6:.1f} us/call; "
                  f"ratio back-to-back / span {loop.seconds_median / trace.span_seconds_per_call:.3f}")
    else:
        print("device trace: none on the CPU (the profiler records no device kernels there)")


if __name__ == "__main__":
    main()
