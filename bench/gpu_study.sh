#!/usr/bin/env bash
# The accelerator study: the acceptance checks (bench/gpu_acceptance.py, PyTorch beside jaxcost) and a timed sweep
# of standard, grouped and depthwise 3x3 convolutions and dense layers (bench/study/*.json: batch 1 to 256,
# channels 32 to 1024, bf16 and fp32). Run from the repository root on the accelerator:
#   PYTHONPATH=. bash bench/gpu_study.sh            (results in $OUT, default bench/results/<device>)
set -uo pipefail
device=$(python -c "import jax; print(jax.devices()[0].device_kind.lower().replace(' ', '-'))")
out="${OUT:-bench/results/$device}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
timeout 150 python bench/gpu_acceptance.py --out "$out" > "$out/acceptance.log" 2>&1
grep -E "^(PASS|FAIL)" "$out/acceptance.txt"
for grid in conv group depthwise dense; do
  timeout 60 python -m jaxcost.cli sweep "bench/study/$grid.json" --out "$out/study_$grid.jsonl" --quiet 2>&1 | tail -1
done
