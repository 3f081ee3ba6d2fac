#!/usr/bin/env bash
# One lent GPU's checks in one command (about 7 minutes on an H200), every part kept whatever another does:
#   the whole-model profiles (alone on the device: they time), then at once the memory of three training steps
#   predicted and measured, the linear-algebra and battery programs compiled for the GPU, and the test suite with
#   the GPU as JAX's default device. Outputs land in $OUT as at most 8 files.
# Run from the repository root: PYTHONPATH=. bash bench/gpu_session.sh  (.gpu_wheels/: pytest-xdist, if carried;
# TESTS=tests/test_specs.py: a part of the suite, for a smoke test)
set -uo pipefail
out="$(mkdir -p "${OUT:-gpu-out}" && cd "${OUT:-gpu-out}" && pwd)"
mkdir -p "$out/profile" "$out/memory" "$out/programs"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
ls .gpu_wheels/*.whl >/dev/null 2>&1 && pip install -q --no-index --no-deps .gpu_wheels/*.whl
{ python -c "import jax, flax; print(jax.__version__, flax.__version__, jax.devices())"; nvidia-smi -q | head -40; } \
  > "$out/device.txt" 2>&1
timeout 210 python bench/gpu_profile.py --out "$out/profile" > "$out/profile/log.txt" 2>&1
echo "profile exit status $?" >> "$out/profile/log.txt"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # from here processes share the device
(timeout 240 python bench/gpu_memory.py --out "$out/memory" > "$out/memory/log.txt" 2>&1
 echo "memory exit status $?" >> "$out/memory/log.txt") &
(cd bench && timeout 200 python capture_library_programs.py --fixtures "$out/programs" > "$out/programs/log.txt" 2>&1
 echo "capture exit status $?" >> "$out/programs/log.txt") &
workers=()
python -c "import xdist" 2>/dev/null && workers=(-n 12)
timeout 270 python -m pytest -p no:cacheprovider -v "${workers[@]}" --ignore=tests/test_notebooks.py -rf \
  ${TESTS:-tests} > "$out/pytest_gpu.log" 2>&1
echo "pytest exit status $?" >> "$out/pytest_gpu.log"
wait
tar czf "$out/profile.tgz" -C "$out" profile && rm -r "$out/profile"
tar czf "$out/memory.tgz" -C "$out" memory && rm -r "$out/memory"
tar czf "$out/programs.tgz" -C "$out" programs && rm -r "$out/programs"
gzip "$out/pytest_gpu.log"
tail -c 600 "$out/device.txt"; ls -la "$out"
