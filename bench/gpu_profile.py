"""Where the time goes on an accelerator: ResNet-50's training step (batch 128, bfloat16), GPT-2 small's forward
pass (batch 8, 1024 tokens) and its training step (the same tokens, bfloat16), profiled with ``jaxcost.profile``;
each one's table, its JSON, and, as fixtures for the tests, a trace of a few calls with the program's optimized HLO
(what ``jaxcost profile TRACE --hlo FILE`` reads).

Run on the lent machine: PYTHONPATH=. python bench/gpu_profile.py --out "$OUT"
Smoke-test on the CPU first: python bench/gpu_profile.py --out /tmp/profile --small
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxcost import start_quietly
from jaxcost.measure.profile import profile
from jaxcost.measure.timing import executable_arguments
from jaxcost.models import build
from jaxcost.reports.profile import profile_json, profile_text

#: name -> (model, input shape, input dtype, compute dtype, mode, call keywords); the small ones for a CPU smoke test.
WORKLOADS = {
    "resnet50_train": ("resnet50", (128, 224, 224, 3), "bfloat16", "bfloat16", "train", {"train": True}),
    "gpt2_small_forward": ("gpt2_small", (8, 1024), "int32", "float32", "forward", {}),
    "gpt2_small_train": ("gpt2_small", (8, 1024), "int32", "bfloat16", "train", {}),
}
SMALL = {"resnet50_train": (2, 32, 32, 3), "gpt2_small_forward": (1, 32), "gpt2_small_train": (1, 32)}


def run(name: str, shape: tuple, out: Path) -> None:
    model_name, _, dtype, compute_dtype, mode, keywords = WORKLOADS[name]
    model = build(model_name, dtype=compute_dtype)
    x = jax.ShapeDtypeStruct(shape, jnp.dtype(dtype if dtype == "int32" else compute_dtype))
    result = profile(model, x, mode=mode, **keywords)
    (out / f"{name}.txt").write_text(profile_text(result, depth=2) + "\n")
    (out / f"{name}.json").write_text(profile_json(result))
    executable = result.report.compiler.executable
    arguments = executable_arguments(executable)
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(5):
                outputs = executable(*arguments)
            jax.block_until_ready(outputs)
        trace = sorted(Path(folder).rglob("*.xplane.pb"))[-1]
        with trace.open("rb") as source, gzip.open(out / f"{name}.xplane.pb.gz", "wb") as target:
            shutil.copyfileobj(source, target)
    hlo = {"hlo_optimized": result.report.compiler.hlo_text, "calls": 5, "seconds_step": result.seconds_step,
           "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__}
    with gzip.open(out / f"{name}.hlo.json.gz", "wt") as target:
        json.dump(hlo, target)
    print(f"{name}: step {result.seconds_step * 1e3:.2f} ms, trace ratio {result.trace_ratio:.2f}, "
          f"MFU {result.mfu or 0:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--small", action="store_true", help="tiny inputs, for a smoke test on the CPU")
    args = parser.parse_args()
    start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for name, (_, shape, *_rest) in WORKLOADS.items():
        run(name, SMALL[name] if args.small else shape, out)


if __name__ == "__main__":
    main()
