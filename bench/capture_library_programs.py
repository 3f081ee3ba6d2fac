"""Compiled programs of linear algebra and of the adversarial battery, on this machine's default backend, stored as a
test fixture: ``jnp.linalg`` / ``jax.scipy.linalg`` functions in float32 and complex64 (and float64 and complex128
in a child process with x64 on), and the battery's jnp/lax functions (``tests/hlo_programs.jax_functions``), each
with its optimized HLO and XLA's cost analysis. On a GPU the linear algebra compiles to cuSOLVER and cuBLAS calls:
the tests recount them from the fixture on any machine.

Run: PYTHONPATH=. python bench/capture_library_programs.py [--fixtures tests/fixtures]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from layer_suite import scrub_paths

from jaxcost import start_quietly
from jaxcost.compiler import default_device, normalize_cost_analysis

#: name -> (function, argument shapes); each is compiled in every dtype of its process.
LINEAR_ALGEBRA = {
    "solve": (jnp.linalg.solve, [(64, 64), (64, 3)]),
    "solve_batched": (jnp.linalg.solve, [(8, 32, 32), (8, 32, 2)]),
    "cholesky": (jnp.linalg.cholesky, [(64, 64)]),
    "cholesky_batched": (jnp.linalg.cholesky, [(4, 16, 16)]),
    "qr_tall": (jnp.linalg.qr, [(80, 64)]),
    "qr_wide": (jnp.linalg.qr, [(48, 64)]),
    "qr_complete": (lambda a: jnp.linalg.qr(a, mode="complete"), [(80, 64)]),
    "qr_r": (lambda a: jnp.linalg.qr(a, mode="r"), [(80, 64)]),
    "eigh": (jnp.linalg.eigh, [(64, 64)]),
    "eigh_batched": (jnp.linalg.eigh, [(4, 32, 32)]),
    "eigvalsh": (jnp.linalg.eigvalsh, [(64, 64)]),
    "svd": (jnp.linalg.svd, [(80, 64)]),
    "svd_reduced": (lambda a: jnp.linalg.svd(a, full_matrices=False), [(80, 64)]),
    "svd_values": (lambda a: jnp.linalg.svd(a, compute_uv=False), [(80, 64)]),
    "svd_large": (lambda a: jnp.linalg.svd(a, full_matrices=False), [(512, 256)]),
    "inv": (jnp.linalg.inv, [(4, 32, 32)]),
    "det": (jnp.linalg.det, [(32, 32)]),
    "slogdet": (jnp.linalg.slogdet, [(32, 32)]),
    "lstsq": (lambda a, b: jnp.linalg.lstsq(a, b)[0], [(64, 32), (64, 2)]),
    "pinv": (jnp.linalg.pinv, [(64, 32)]),
    "lu": (jsl.lu, [(32, 32)]),
    "lu_factor": (jsl.lu_factor, [(48, 48)]),
    "cho_solve": (lambda a, b: jsl.cho_solve(jsl.cho_factor(a), b), [(32, 32), (32, 4)]),
    "solve_triangular_lower": (lambda a, b: jsl.solve_triangular(a, b, lower=True), [(32, 32), (32, 4)]),
    "solve_triangular_upper_t": (lambda a, b: jsl.solve_triangular(a, b, trans=1), [(32, 32), (32, 4)]),
    "solve_triangular_batched": (lambda a, b: jsl.solve_triangular(a, b, lower=True), [(4, 64, 64), (4, 64, 8)]),
    "eig": (jnp.linalg.eig, [(16, 16)]),
    "hessenberg": (jsl.hessenberg, [(16, 16)]),
    "schur": (jsl.schur, [(16, 16)]),
    "norm_2": (lambda a: jnp.linalg.norm(a, 2), [(32, 32)]),
    "matrix_rank": (jnp.linalg.matrix_rank, [(32, 32)]),
}


def compiled(function, shapes: list, dtype) -> dict:
    """One program's optimized HLO and XLA's cost analysis, or why it did not compile."""
    try:
        executable = jax.jit(function).lower(*(jax.ShapeDtypeStruct(s, dtype) for s in shapes)).compile()
    except Exception as error:  # a function this backend lacks (eig and schur on a GPU) is recorded as such
        return {"error": f"{type(error).__name__}: {str(error)[:500]}"}
    return {"hlo_optimized": scrub_paths(executable.as_text()),
            "xla": normalize_cost_analysis(executable.cost_analysis())}


def linear_algebra(dtypes: tuple[str, ...]) -> list[dict]:
    return [{"name": name, "dtype": dtype, "shapes": shapes, **compiled(function, shapes, jnp.dtype(dtype))}
            for dtype in dtypes for name, (function, shapes) in LINEAR_ALGEBRA.items()]


def battery() -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.hlo_programs import jax_functions

    entries = []
    for program in jax_functions():
        try:
            executable = jax.jit(program.function).lower(*program.arguments).compile()
        except Exception as error:
            entries.append({"name": program.name, "error": f"{type(error).__name__}: {str(error)[:500]}"})
            continue
        entries.append({"name": program.name, "hlo_optimized": scrub_paths(executable.as_text()),
                        "xla": normalize_cost_analysis(executable.cost_analysis())})
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", default="tests/fixtures")
    parser.add_argument("--x64", help=argparse.SUPPRESS)  # the child process: its entries as JSON into this file
    args = parser.parse_args()
    start_quietly()
    Path(args.fixtures).mkdir(parents=True, exist_ok=True)
    if args.x64:
        Path(args.x64).write_text(json.dumps(linear_algebra(("float64", "complex128"))))
        return
    wide = Path(args.fixtures, "linear_algebra_x64.json")
    subprocess.run([sys.executable, __file__, "--x64", str(wide)], check=True,
                   env={**os.environ, "JAX_ENABLE_X64": "1"})
    entries = linear_algebra(("float32", "complex64")) + json.loads(wide.read_text())
    wide.unlink()
    device = default_device()
    data = {"meta": {"jax": jax.__version__, "platform": device.platform, "device_kind": device.device_kind},
            "linear_algebra": entries, "battery": battery()}
    path = Path(args.fixtures, f"library_programs_{device.platform}_jax{jax.__version__.replace('.', '')}.json.gz")
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    failed = [f"{entry['name']}/{entry.get('dtype', '')}" for entry in entries + data["battery"] if "error" in entry]
    print(f"{path}: {len(entries)} linear algebra programs, {len(data['battery'])} battery programs; "
          f"not compiled: {', '.join(failed) or 'none'}")


if __name__ == "__main__":
    main()
