#!/usr/bin/env bash
# The test suite and the report on a GPU machine (run from the repository root with PYTHONPATH=.):
# the suite must pass where JAX's default device is a GPU. Writes into $OUT (default: ./gpu-out).
set -uo pipefail
out="${OUT:-gpu-out}"
mkdir -p "$out"
export PYTHONPATH="${PYTHONPATH:-.}" XLA_PYTHON_CLIENT_PREALLOCATE=false
python -c "import jax, flax; print(jax.__version__, flax.__version__, jax.devices())" 2>&1 | tee "$out/device.txt"
ignore=()
python -c "import nbclient, nbformat, ipykernel" 2>/dev/null || ignore=(--ignore=tests/test_notebooks.py)
workers=()
python -c "import xdist" 2>/dev/null && workers=(-n 6)
timeout 360 python -m pytest -q -p no:cacheprovider "${workers[@]}" "${ignore[@]}" -rf > "$out/pytest_gpu.log" 2>&1
echo "pytest exit status $?" | tee -a "$out/pytest_gpu.log"
tail -3 "$out/pytest_gpu.log"
timeout 100 python -m jaxcost.cli report --plot "$out/report-roofline" > "$out/report.txt" 2>&1
echo "report exit status $?" >> "$out/report.txt"
timeout 40 python -m jaxcost.cli layer conv --input 8,56,56,64 --features 128 --dtype bfloat16 > "$out/layer.txt" 2>&1
tar czf "$out/gpu_suite.tgz" -C "$out" device.txt pytest_gpu.log report.txt layer.txt report-roofline.png 2>/dev/null
ls -la "$out"
