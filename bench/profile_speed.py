"""What ``jaxcost.profile`` costs and how far its trace is from the loop, in the same run.

Per model (MobileNetV2 and a ResNet-50 training step at a small resolution, GPT-2 small forward on a short
sequence, by default), on this machine's default device:
- wall time of ``analyze`` and ``benchmark`` of the same step (what counting and timing cost apart) and of
  ``profile`` (one compile for both, the loop and one traced burst), and their ratio (target: at most 1.5);
- over several profiles, the traced step's span against the loop's step (``trace_ratio``): the profiler's own cost,
  which the rows are scaled out of; and that the rows plus the idle row add up to the step;
- the time to read a trace of about 100,000 instruction events (target: under 2 s).

Run: python bench/profile_speed.py [--runs 3] [--model mobilenet_v2 ...]
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp

from jaxcost import start_quietly
from jaxcost.measure.profile import exclusive_seconds, profile
from jaxcost.measure.timing import benchmark
from jaxcost.measure.trace import instruction_events
from jaxcost.models import build
from jaxcost.models.analysis import analyze

#: What each model is profiled on: its input and mode.
WORKLOADS = {
    "mobilenet_v2": (jax.ShapeDtypeStruct((1, 96, 96, 3), jnp.float32), "forward"),
    "resnet50": (jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32), "train"),
    "gpt2_small": (jax.ShapeDtypeStruct((1, 64), jnp.int32), "forward"),
}


def wall_seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _keywords(model, mode: str) -> dict:
    """A zoo network with batch norm trains with batch statistics, as the command line runs it."""
    return {"train": True} if mode == "train" and "train" in inspect.signature(type(model).__call__).parameters else {}


def _step(model, x, mode: str, keywords: dict):
    """The step ``benchmark`` times on its own: the forward pass, or the gradient of a training step."""
    variables = jax.eval_shape(lambda inputs: model.init(jax.random.PRNGKey(0), inputs), x)
    if mode == "forward":
        return (lambda v, inputs: model.apply(v, inputs)), variables

    def step(v, inputs):
        def loss(params):
            out, _ = model.apply({**v, "params": params}, inputs, mutable=["batch_stats"], **keywords)
            return out.sum()
        return jax.grad(loss)(v["params"])
    return step, variables


def model_lines(name: str, runs: int) -> list[str]:
    x, mode = WORKLOADS[name]
    model = build(name)
    keywords = _keywords(model, mode)
    step, variables = _step(model, x, mode, keywords)
    counted_and_timed = wall_seconds(lambda: (analyze(model, x, mode=mode, **keywords),
                                              benchmark(step, variables, x)))
    profiled = wall_seconds(lambda: profile(model, x, mode=mode, **keywords))
    profiles = [profile(model, x, mode=mode, **keywords) for _ in range(runs)]
    ratios = [result.trace_ratio for result in profiles]
    sums = [sum(row.seconds for row in result.rows) / result.seconds_step for result in profiles]
    return [f"{name} ({mode}): analyze + benchmark {counted_and_timed:.1f} s, profile {profiled:.1f} s: "
            f"{profiled / counted_and_timed:.2f}x",
            f"  traced step / loop step over {runs} profiles: {', '.join(f'{ratio:.2f}' for ratio in ratios)} "
            f"(median {statistics.median(ratios):.2f}); rows + idle / step: "
            f"{', '.join(f'{total:.3f}' for total in sums)}"]


def reading_line() -> str:
    """A trace of about 100,000 instruction events (a small program called many times), read back."""
    function = jax.jit(lambda x: jnp.tanh(x) * 2.0 + 1.0)
    x = jnp.ones((8, 8))
    function(x).block_until_ready()
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(100_000):
                out = function(x)
            out.block_until_ready()
        start = time.perf_counter()
        events = instruction_events(folder)
        exclusive_seconds(events)
        seconds = time.perf_counter() - start
    return f"reading a trace of {len(events):,} instruction events and splitting their time: {seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", action="append", choices=sorted(WORKLOADS))
    args = parser.parse_args()
    start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for name in args.model or list(WORKLOADS):
        print("\n".join(model_lines(name, args.runs)))
    print(reading_line())


if __name__ == "__main__":
    main()
