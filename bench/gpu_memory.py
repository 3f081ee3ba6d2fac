"""Device memory on an accelerator, predicted and measured: GPT-2 small's training step (batch 8, 1024 tokens,
bfloat16, adam), the same with its blocks rematerialized, and ResNet-50's (batch 64, bfloat16, momentum), each
costed by ``jaxcost.memory`` (XLA's buffer assignment) and then run once, the allocator's peak read before and after.
Each workload runs in a process of its own (the allocator's peak is per process). Writes, per workload, the report's
figures and the measurement (NAME.json), its table (NAME.txt) and XLA's dump files of the compile (NAME-dump.tgz:
the fixtures of the tests that read a GPU's buffer assignment).

Run on the lent machine: PYTHONPATH=. python bench/gpu_memory.py --out "$OUT/memory"
Smoke-test on the CPU first: python bench/gpu_memory.py --out /tmp/memory --small
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

#: name -> (model, remat, input shape, input dtype, compute dtype, optimizer, call keywords)
WORKLOADS = {
    "gpt2_small_train_adam": ("gpt2_small", False, (8, 1024), "int32", "bfloat16", "adam", {}),
    "gpt2_small_remat_train_adam": ("gpt2_small", True, (8, 1024), "int32", "bfloat16", "adam", {}),
    "resnet50_train_momentum": ("resnet50", False, (64, 224, 224, 3), "bfloat16", "bfloat16", "momentum",
                                {"train": True}),
}
SMALL = {"gpt2_small_train_adam": (1, 32), "gpt2_small_remat_train_adam": (1, 32),
         "resnet50_train_momentum": (2, 32, 32, 3)}
#: The dump files the tests read (the rest, PTX and LLVM IR, stay behind).
KEPT = ("after_optimizations.txt", "after_optimizations-buffer-assignment.txt", "after_optimizations-live-range.txt",
        "after_optimizations-memory-usage-report.txt")


def one(name: str, shape: tuple, out: Path) -> None:
    """Cost one workload's step, run it once, and write what both say."""
    import jax
    import jax.numpy as jnp
    import optax

    import jaxcost as jc
    from jaxcost.compiler import runnable
    from jaxcost.measure.timing import executable_arguments
    from jaxcost.models import build

    model_name, remat, _, input_dtype, dtype, optimizer_name, keywords = WORKLOADS[name]
    model = build(model_name, dtype=dtype)
    if remat:
        model = model.clone(remat=True)
    optimizer = optax.adam(1e-3) if optimizer_name == "adam" else optax.sgd(0.1, momentum=0.9)
    x = jax.ShapeDtypeStruct(shape, jnp.dtype(input_dtype))
    device = jax.devices()[0]
    record: dict = {"name": name, "jax": jax.__version__, "device_kind": device.device_kind, "shape": shape}
    folder = tempfile.mkdtemp(prefix=f"{name}-")
    try:
        with runnable():
            report = jc.memory(model, x, mode="train", optimizer=optimizer, dump_to=folder, **keywords)
        (out / f"{name}.txt").write_text(str(report) + "\n")
        record["report"] = {
            "peak_bytes": report.peak_bytes, "arguments_bytes": report.arguments_bytes,
            "outputs_bytes": report.outputs_bytes, "aliased_bytes": report.aliased_bytes,
            "temp_bytes": report.temp_bytes, "constants_bytes": report.constants_bytes,
            "generated_code_bytes": report.generated_code_bytes, "live_peak_bytes": report.live_peak_bytes,
            "peak_step": report.peak_step, "peak_instruction": report.peak_instruction,
            "saved_bytes": report.saved_bytes, "bytes_by_role": dict(report.bytes_by_role()),
            "xla": report.xla, "formulas": report.formulas, "seconds": report.seconds}
        executable = report.model.compiler.executable
        arguments = executable_arguments(executable)
        jax.block_until_ready(arguments)
        before = device.memory_stats() or {}
        start = time.perf_counter()
        jax.block_until_ready(executable(*arguments))
        seconds_first_call = time.perf_counter() - start
        after = device.memory_stats() or {}
        record["measured"] = {"before": before, "after": after, "seconds_first_call": seconds_first_call}
        print(f"{name}: predicted peak {report.peak_bytes:,} B, allocator peak {after.get('peak_bytes_in_use')} B "
              f"(in use before the call {before.get('bytes_in_use')} B)")
    except Exception as error:  # the dump is kept whatever failed: it is what the tests need
        record["error"] = f"{type(error).__name__}: {error}"
        print(f"{name}: FAILED {record['error'][:2000]}")
    finally:
        (out / f"{name}.json").write_text(json.dumps(record, indent=1, default=str))
        with tarfile.open(out / f"{name}-dump.tgz", "w:gz") as archive:
            for path in sorted(Path(folder).iterdir()):
                if path.name.endswith(KEPT):
                    archive.add(path, arcname=path.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--small", action="store_true", help="tiny inputs, for a smoke test on the CPU")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's workload
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.one:
        from jaxcost import start_quietly

        start_quietly()
        one(args.one, SMALL[args.one] if args.small else WORKLOADS[args.one][2], out)
        return
    environment = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}  # the allocator's peak is the step's
    children = [subprocess.Popen([sys.executable, __file__, "--out", str(out), "--one", name,
                                  *(["--small"] if args.small else [])], env=environment) for name in WORKLOADS]
    for child in children:
        child.wait()


if __name__ == "__main__":
    main()
