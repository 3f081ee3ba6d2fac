#!/usr/bin/env bash
# The GPU checks, prepared to run once on a lent accelerator (about 2 minutes on an H100):
#   PYTHONPATH=. bash bench/gpu_checks.sh
# Everything lands in $OUT (or bench/results/gpu when OUT is unset); commit the fixtures it
# writes under tests/fixtures/ and the tables under bench/results/.
set -euo pipefail
out="${OUT:-bench/results/gpu}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python -c "import jax; print(jax.__version__, jax.devices())" | tee "$out/device.txt"
python bench/layer_suite.py --out "$out" --fixtures "$out" 2>&1 | tee "$out/layer_suite.log"
OUT="$out" python bench/capture_hlo_fixtures.py 2>&1 | tee "$out/capture.log"
python bench/gpu_perf.py --out "$out" 2>&1 | tee "$out/gpu_perf.log"
python bench/timing_methods.py --dtype bfloat16 --input 128,56,56,256 --features 256 2>&1 | tee "$out/timing_methods.txt"
