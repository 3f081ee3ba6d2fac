"""Compiled programs of this machine's JAX, stored as a test fixture: training steps of a few layers and two
zoo models, and the probe that says how XLA's cost analysis sizes a tuple here. The tests then check the
recount against this compiler's figures on any machine (another JAX version, another backend).

Run: python bench/capture_programs.py [--models] [--fixtures tests/fixtures]
(JAX_PLATFORMS=cpu captures the CPU backend of a machine that has a GPU).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import jax
import jax.numpy as jnp
from layer_suite import scrub_paths, spec_fields

import jaxcost as jc
from jaxcost.compiler import POINTER_PROBE, default_device, normalize_cost_analysis

LAYERS = [jc.Dense((1, 1), 1, use_bias=False), jc.Conv((1, 1, 1), 1, 1, use_bias=False),
          jc.standard_conv((4, 28, 28, 32), 64, 3), jc.Dense((4, 16), 8), jc.depthwise_conv((2, 9, 9, 8), 3)]
MODELS = ("mobilenet_v1", "resnet50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", action="store_true", help="also the training steps of two zoo models at 64x64")
    parser.add_argument("--fixtures", default="tests/fixtures")
    args = parser.parse_args()
    jc.start_quietly()  # JAX started without libtpu's probe for a TPU on stderr
    function, argument = POINTER_PROBE
    probe = jax.jit(function).lower(argument).compile()
    entries = []
    for spec in LAYERS:
        compiler = jc.compiled(spec, mode="train")
        entries.append({"name": spec.describe(), "mode": "train", "spec": spec_fields(spec), "xla": compiler.xla,
                        "hlo_optimized": scrub_paths(compiler.hlo_text)})
    models = []
    for name in MODELS if args.models else ():
        image = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
        report = jc.analyze(jc.models.build(name), image, mode="train", train=True)
        compiler = report.compiler
        models.append({"name": name, "xla": compiler.xla, "hlo_optimized": scrub_paths(compiler.hlo_text)})
    device = default_device()
    meta = {"jax": jax.__version__, "platform": device.platform, "device_kind": device.device_kind}
    probe_record = {"hlo_optimized": probe.as_text(), "xla": normalize_cost_analysis(probe.cost_analysis())}
    data = {"meta": meta, "probe": probe_record, "entries": entries, "models": models}
    path = Path(args.fixtures, f"programs_{device.platform}_jax{jax.__version__.replace('.', '')}.json.gz")
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    print(f"{path}: {len(entries)} layers, {len(models)} models")


if __name__ == "__main__":
    main()
