"""What ``jaxcost.memory`` costs against one compile of the same step, in the same run.

GPT-2 small's training step (batch 8, sequence 1024, bfloat16 activations by default) on this machine's default
device: the fastest of ``--runs`` plain compiles of the step (from the model and the input's shape: the parameters'
and the output's shapes, then ``jax.jit(step).lower(...).compile()``), and the fastest of ``--runs`` calls of
``jaxcost.memory`` (one compile with XLA's dump of the buffer assignment, the dump read, the values attributed);
their ratio (target: at most 1.5).

Run: python bench/memory_speed.py [--runs 3] [--batch 8] [--length 1024] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from jaxcost.models import build
from jaxcost.models.analysis import abstract_variables, training_step
from jaxcost.models.memory import memory


def _plain_compile_seconds(model, tokens) -> float:
    """From the model and its input's shape to the compiled step, as a user compiles it: the parameters' shapes, the
    output's (the step's output gradient has its shape), then the step traced, lowered and compiled."""
    start = time.perf_counter()
    variables = abstract_variables(model, (tokens,), {}, {})
    params, others = variables["params"], {}
    forward, step = training_step(model.apply, others, {})
    output = jax.eval_shape(forward, params, others, {}, tokens)[0]
    jax.jit(step).lower(params, others, {}, output, tokens).compile()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    model = build("gpt2_small", dtype=args.dtype)
    tokens = jax.ShapeDtypeStruct((args.batch, args.length), jnp.int32)
    compile_seconds = min(_plain_compile_seconds(model, tokens) for _ in range(args.runs))
    memory_seconds, report = float("inf"), None
    for _ in range(args.runs):
        start = time.perf_counter()
        report = memory(model, tokens, mode="train")
        memory_seconds = min(memory_seconds, time.perf_counter() - start)
    device = jax.devices()[0]
    print(f"gpt2_small train, batch {args.batch} x {args.length} {args.dtype}, on {device.device_kind} "
          f"({args.runs} runs each, fastest)")
    print(f"  one compile of the step:  {compile_seconds:7.2f} s")
    print(f"  jaxcost.memory:           {memory_seconds:7.2f} s")
    print(f"  ratio: {memory_seconds / compile_seconds:.2f}x (target at most 1.5x)")
    print(f"  peak {report.peak_bytes:,} B, live at the peak {report.live_peak_bytes:,} B, "
          f"saved for backward {report.saved_bytes:,} B")


if __name__ == "__main__":
    main()
