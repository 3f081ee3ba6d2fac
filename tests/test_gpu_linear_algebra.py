"""Linear algebra compiled on an NVIDIA H200 (jax 0.11.2, tests/fixtures/library_programs_gpu_jax0112.json.gz, written
by bench/capture_library_programs.py), recounted here without a GPU: every cuSOLVER and cuBLAS call of jnp.linalg and
jax.scipy.linalg against its published count, written out here apart from the code (LAPACK Working Note 41; Golub &
Van Loan for the estimates of the iterative methods), XLA's -1 for each call itemized and its totals reproduced; the
battery of jnp and lax programs compiled there, reproduced by XLA's rules; the calls no stored program makes, written
in XLA's syntax; and on the CPU the LAPACK routines the GPU programs brought in (geev, gees, ormqr).
"""

import gzip
import json
import math
from collections import Counter
from fractions import Fraction
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import pytest

import jaxcost as jc
from jaxcost.comparison import explain
from jaxcost.compiler import CompilerCost, pointer_bytes_of
from jaxcost.hlo.library_calls import custom_call_target
from tests.test_library_calls import module

FIXTURE = json.loads(gzip.decompress(
    (Path(__file__).parent / "fixtures" / "library_programs_gpu_jax0112.json.gz").read_bytes()))
COMPILED = [entry for entry in FIXTURE["linear_algebra"] if "error" not in entry]
#: A tuple's pointer table on the GPU: 8 bytes an element (``test_the_gpu_sizes_a_tuple_pointer_at_8_bytes``).
POINTER_BYTES = 8


def stored(entry: dict) -> CompilerCost:
    return CompilerCost(xla=entry["xla"], recount=jc.recount(entry["hlo_optimized"], POINTER_BYTES), memory={},
                        hlo_text=entry["hlo_optimized"], platform="gpu", seconds_compile=0.0)


def custom_calls(compiler: CompilerCost) -> list[str]:
    """The target of every custom call of the program, top level or inside a fusion."""
    return [custom_call_target(instruction) for computation in compiler.recount.module.computations.values()
            for instruction in computation.instructions if instruction.opcode == "custom-call"]


def test_the_fixture_is_an_h200s_and_the_gpu_sizes_a_tuple_pointer_at_8_bytes():
    assert FIXTURE["meta"] == {"jax": "0.11.2", "platform": "gpu", "device_kind": "NVIDIA H200"}
    (sort,) = [entry for entry in FIXTURE["battery"] if entry["name"] == "sort"]  # its result is a pair
    assert pointer_bytes_of(sort["hlo_optimized"], sort["xla"]["bytes accessed"]) == POINTER_BYTES


def test_hessenberg_and_schur_have_no_gpu_lowering():
    failed = [entry for entry in FIXTURE["linear_algebra"] if "error" in entry]
    assert sorted(entry["name"] for entry in failed) == ["hessenberg"] * 4 + ["schur"] * 4
    assert all("not found for platform cuda" in entry["error"] for entry in failed)


# ---- the published counts, written out (LAWN 41: multiplications M and additions A of an m×n matrix)

COMPLEX = ("complex64", "complex128")


def weighted(dtype: str, multiplications: Fraction, additions: Fraction) -> int:
    """LAWN 41: a multiplication and an addition are a flop each in real arithmetic, 6 and 2 in complex."""
    if dtype in COMPLEX:
        return round(6 * multiplications + 2 * additions)
    return round(multiplications + additions)


def getrf(dtype: str, n: int) -> int:
    """xGETRF, n×n: M = n³/3 + 2n/3, A = n³/3 - n²/2 + n/6."""
    n_ = Fraction(n)
    return weighted(dtype, n_ ** 3 / 3 + 2 * n_ / 3, n_ ** 3 / 3 - n_ ** 2 / 2 + n_ / 6)


def potrf(dtype: str, n: int) -> int:
    """xPOTRF, n×n: M = n³/6 + n²/2 + n/3, A = n³/6 - n/6."""
    n_ = Fraction(n)
    return weighted(dtype, n_ ** 3 / 6 + n_ ** 2 / 2 + n_ / 3, n_ ** 3 / 6 - n_ / 6)


def geqrf(dtype: str, m: int, n: int) -> int:
    """xGEQRF, m >= n: M = mn² - n³/3 + mn + n²/2 + 23n/6, A = mn² - n³/3 + n²/2 + 5n/6;
    m < n: M = nm² - m³/3 + 2nm - m²/2 + 23m/6, A = nm² - m³/3 + nm - m²/2 + 5m/6."""
    m_, n_ = Fraction(m), Fraction(n)
    if m >= n:
        return weighted(dtype, m_ * n_ ** 2 - n_ ** 3 / 3 + m_ * n_ + n_ ** 2 / 2 + 23 * n_ / 6,
                        m_ * n_ ** 2 - n_ ** 3 / 3 + n_ ** 2 / 2 + 5 * n_ / 6)
    return weighted(dtype, n_ * m_ ** 2 - m_ ** 3 / 3 + 2 * n_ * m_ - m_ ** 2 / 2 + 23 * m_ / 6,
                    n_ * m_ ** 2 - m_ ** 3 / 3 + n_ * m_ - m_ ** 2 / 2 + 5 * m_ / 6)


def orgqr(dtype: str, m: int, n: int, k: int) -> int:
    """xORGQR, m×n Q of k reflectors: M = 2mnk - (m + n)k² + 2k³/3 + 2nk - k² - 5k/3,
    A = 2mnk - (m + n)k² + 2k³/3 + nk - mk + k/3."""
    k_ = Fraction(k)
    common = 2 * m * n * k_ - (m + n) * k_ ** 2 + 2 * k_ ** 3 / 3
    return weighted(dtype, common + 2 * n * k_ - k_ ** 2 - 5 * k_ / 3, common + n * k_ - m * k_ + k_ / 3)


def ormqr(dtype: str, m: int, n: int, k: int) -> int:
    """xORMQR, k reflectors from the left on m×n: M = kn(2m + 2 - k), A = kn(2m + 1 - k)."""
    return weighted(dtype, Fraction(k * n * (2 * m + 2 - k)), Fraction(k * n * (2 * m + 1 - k)))


def trsm(dtype: str, m: int, n: int) -> int:
    """xTRSM, left side, m×n right-hand side: M = nm(m + 1)/2, A = nm(m - 1)/2."""
    return weighted(dtype, Fraction(n * m * (m + 1), 2), Fraction(n * m * (m - 1), 2))


def eigh(dtype: str, n: int) -> int:
    """The estimate with eigenvectors: xSYTRD (M = 2n³/3 + 5n²/2 - n/6 - 15, A = 2n³/3 + n² - 8n/3 - 4), divide and
    conquer without deflation (4n³/3, real) and the back-transformation by n - 1 reflectors (xORMQR on n - 1 × n)."""
    n_ = Fraction(n)
    reduction = weighted(dtype, 2 * n_ ** 3 / 3 + 5 * n_ ** 2 / 2 - n_ / 6 - 15, 2 * n_ ** 3 / 3 + n_ ** 2
                         - 8 * n_ / 3 - 4)
    return reduction + round(4 * n_ ** 3 / 3) + ormqr(dtype, n - 1, n, n - 1)


def svd(dtype: str, m: int, n: int, mode: str) -> int:
    """Golub-Reinsch, m >= n (Golub & Van Loan): values 4mn² - 4n³/3; thin U, V 14mn² + 8n³; full U, V
    4m²n + 8mn² + 9n³; complex 4x."""
    real = {"N": 4 * m * n ** 2 - Fraction(4, 3) * n ** 3, "S": Fraction(14 * m * n ** 2 + 8 * n ** 3),
            "A": Fraction(4 * m ** 2 * n + 8 * m * n ** 2 + 9 * n ** 3)}[mode]
    return round(real * (4 if dtype in COMPLEX else 1))


def geev(dtype: str, n: int) -> int:
    """The estimate with right eigenvectors: the Schur form T and Q (25n³, Golub & Van Loan), the eigenvectors of T
    by substitution (Σ (k-1)²) and turned back by Q (Σ 2n(k-1)); complex 4x."""
    real = 25 * n ** 3 + sum((k - 1) ** 2 + 2 * n * (k - 1) for k in range(1, n + 1))
    return real * (4 if dtype in COMPLEX else 1)


# ---- what each program calls on the GPU, with its count

GETRF, PERMUTATION, TRSM = "cusolver_getrf_ffi", "cu_lu_pivots_to_permutation", "__cublas$triangularSolve"
POTRF, GEQRF, ORGQR = "cusolver_potrf_ffi", "cusolver_geqrf_ffi", "cusolver_orgqr_ffi"
SYEVD, GESVDJ, GEEV = "cusolver_syevd_ffi", "cusolver_gesvdj_ffi", "cusolver_geev_ffi"


def lu_solve(dtype: str, a: list[int], b: list[int]) -> list[tuple[str, str, int]]:
    """LU, the pivots made a permutation, two triangular solves (unit lower, upper)."""
    batch, n = math.prod(a[:-2]), a[-1]
    return [(GETRF, "getrf", batch * getrf(dtype, n)), (PERMUTATION, "", 0),
            *[(TRSM, "trsm", batch * trsm(dtype, n, b[-1]))] * 2]


#: Each program's library calls as (target, routine, flops), from its argument shapes; matrix products (the cuBLAS
#: gemms of a complex lstsq and pinv) are left to test_library_calls.
EXPECTED = {
    "solve": lu_solve,
    "solve_batched": lu_solve,
    "inv": lambda dtype, a: lu_solve(dtype, a, a),
    "cholesky": lambda dtype, a: [(POTRF, "potrf", math.prod(a[:-2]) * potrf(dtype, a[-1]))],
    "cholesky_batched": lambda dtype, a: [(POTRF, "potrf", math.prod(a[:-2]) * potrf(dtype, a[-1]))],
    "qr_tall": lambda dtype, a: [(GEQRF, "geqrf", geqrf(dtype, *a)), (ORGQR, "orgqr/ungqr", orgqr(dtype, *a, a[1]))],
    "qr_wide": lambda dtype, a: [(GEQRF, "geqrf", geqrf(dtype, *a)),
                                 (ORGQR, "orgqr/ungqr", orgqr(dtype, a[0], a[0], a[0]))],
    "qr_complete": lambda dtype, a: [(GEQRF, "geqrf", geqrf(dtype, *a)),
                                     (ORGQR, "orgqr/ungqr", orgqr(dtype, a[0], a[0], a[1]))],
    "qr_r": lambda dtype, a: [(GEQRF, "geqrf", geqrf(dtype, *a))],
    # eigenvectors always (jaxlib asks for them); Jacobi (syevj) up to 32×32, divide and conquer (syevd) above
    "eigh": lambda dtype, a: [(SYEVD, "syevd/heevd", eigh(dtype, a[-1]))],
    "eigh_batched": lambda dtype, a: [(SYEVD, "syevj/heevj", math.prod(a[:-2]) * eigh(dtype, a[-1]))],
    "eigvalsh": lambda dtype, a: [(SYEVD, "syevd/heevd", eigh(dtype, a[-1]))],
    # the thin SVD only where both sides exceed 32 (gesvdjBatched has no thin form; jax slices the full one)
    "svd": lambda dtype, a: [(GESVDJ, "gesvdj", svd(dtype, *a, "A"))],
    "svd_reduced": lambda dtype, a: [(GESVDJ, "gesvdj", svd(dtype, *a, "S"))],
    "svd_values": lambda dtype, a: [(GESVDJ, "gesvdj", svd(dtype, *a, "N"))],
    "svd_large": lambda dtype, a: [(GESVDJ, "gesvdj", svd(dtype, *a, "S"))],
    "lstsq": lambda dtype, a, b: [(GESVDJ, "gesvdj", svd(dtype, *a, "A"))],
    "pinv": lambda dtype, a: [(GESVDJ, "gesvdj", svd(dtype, *a, "A"))],
    "norm_2": lambda dtype, a: [(GESVDJ, "gesvdj", svd(dtype, *a, "N"))],
    "matrix_rank": lambda dtype, a: [(GESVDJ, "gesvdj", svd(dtype, *a, "N"))],
    "det": lambda dtype, a: [(GETRF, "getrf", getrf(dtype, a[-1]))],
    "slogdet": lambda dtype, a: [(GETRF, "getrf", getrf(dtype, a[-1]))],
    "lu": lambda dtype, a: [(GETRF, "getrf", getrf(dtype, a[-1])), (PERMUTATION, "", 0)],
    "lu_factor": lambda dtype, a: [(GETRF, "getrf", getrf(dtype, a[-1]))],
    "cho_solve": lambda dtype, a, b: [(POTRF, "potrf", potrf(dtype, a[-1])),
                                      *[(TRSM, "trsm", trsm(dtype, a[-1], b[-1]))] * 2],
    "solve_triangular_lower": lambda dtype, a, b: [(TRSM, "trsm", trsm(dtype, a[-1], b[-1]))],
    "solve_triangular_upper_t": lambda dtype, a, b: [(TRSM, "trsm", trsm(dtype, a[-1], b[-1]))],
    "solve_triangular_batched": lambda dtype, a, b: [(TRSM, "trsm", math.prod(a[:-2]) * trsm(dtype, a[-1], b[-1]))],
    "eig": lambda dtype, a: [(GEEV, "geev", geev(dtype, a[-1]))],
}
MATRIX_PRODUCTS = ("__cublas$lt$matmul", "__cublas$gemm")


def named(routine: str, dtype: str) -> str:
    """``orgqr/ungqr``: the real name, or the complex one."""
    real, _, complex_ = routine.partition("/")
    return complex_ if dtype in COMPLEX and complex_ else real


def test_every_compiled_program_has_its_calls_written_out_here():
    assert {entry["name"] for entry in COMPILED} == set(EXPECTED)
    assert Counter(entry["dtype"] for entry in COMPILED) == dict.fromkeys(
        ("float32", "complex64", "float64", "complex128"), len(EXPECTED))


@pytest.mark.parametrize("entry", COMPILED, ids=[f"{entry['name']}-{entry['dtype']}" for entry in COMPILED])
def test_gpu_linear_algebra_is_recounted_by_the_published_counts(entry):
    """Every call known, each routine's flops its published count; XLA's -1 for each call is named, and its totals
    are reproduced by XLA's rules."""
    compiler = stored(entry)
    calls = EXPECTED[entry["name"]](entry["dtype"], *entry["shapes"])
    assert compiler.unknown == []
    assert sorted(target for target in custom_calls(compiler) if target not in MATRIX_PRODUCTS) == sorted(
        target for target, _, _ in calls)
    routines = {named(routine, entry["dtype"]) for _, routine, _ in calls if routine}
    flops = sum((Counter({routine: flops for routine, flops in op.cost.flops_by_opcode.items() if routine in routines})
                 for op in compiler.recount.ops), Counter())
    assert flops == sum((Counter({named(routine, entry["dtype"]): count}) for _, routine, count in calls if routine),
                        Counter())
    assert len(compiler.recount.xla_unknown) == len(custom_calls(compiler))  # each -1 in XLA's totals
    for key in ("flops", "bytes_accessed", "transcendentals"):
        assert compiler.xla_reproduced(key), key
    assert compiler.flops > compiler.xla_flops


@pytest.mark.parametrize("entry", COMPILED, ids=[f"{entry['name']}-{entry['dtype']}" for entry in COMPILED])
def test_each_call_is_a_library_item_and_each_minus_one_an_unknown_one(entry):
    """The comparison's items: every recounted call's flops a ``library`` item of the program (a call inside a fusion
    too: qr_wide's orgqr sits in a dynamic-slice fusion), every -1 of XLA's an ``unknown`` item of the xla stage."""
    compiler = stored(entry)
    deltas = explain(compiler, Counter())
    library_flops = sum(delta.flops for delta in deltas if delta.stage != "xla" and delta.kind == "library")
    calls = EXPECTED[entry["name"]](entry["dtype"], *entry["shapes"])
    routines = {named(routine, entry["dtype"]) for _, routine, _ in calls if routine}
    assert library_flops >= sum(op.cost.flops_by_opcode[routine] for op in compiler.recount.ops
                                for routine in routines if routine in op.cost.flops_by_opcode)
    xla_items = [delta for delta in deltas if delta.stage == "xla"]
    assert len(xla_items) == len(compiler.recount.xla_unknown)
    assert all(delta.kind == "unknown" and "XLA reports -1" in delta.description for delta in xla_items)


def test_an_svd_without_vectors_writes_no_vectors():
    """gesvdj without ``compute_uv``: U (80×80) and V (64×64) are results, but not written."""
    (entry,) = [entry for entry in COMPILED if (entry["name"], entry["dtype"]) == ("svd_values", "float32")]
    (call,) = [op for op in stored(entry).recount.ops if op.opcode == "custom-call"]
    matrix, values, info = 80 * 64 * 4, 64 * 4, 4
    assert call.cost.bytes_accessed == matrix + matrix + values + info
    assert "singular values of 80×64 (an estimate" in call.cost.notes[0]


BATTERY = [entry for entry in FIXTURE["battery"] if "error" not in entry]


def test_the_whole_battery_compiled_on_the_gpu():
    assert len(BATTERY) == len(FIXTURE["battery"]) == 43


@pytest.mark.parametrize("entry", BATTERY, ids=[entry["name"] for entry in BATTERY])
def test_gpu_battery_is_reproduced_by_xlas_rules(entry):
    """XLA's three totals reproduced (its -1 for cuDNN and cuBLAS calls among them); nothing unknown but the trip
    count of a while loop that runs until its data says stop."""
    compiler = stored(entry)
    for key in ("flops", "bytes_accessed", "transcendentals"):
        assert compiler.xla_reproduced(key), key
    if entry["name"] == "while_until":
        (loop,) = compiler.unknown
        assert "while loop of unknown trip count" in loop
    else:
        assert compiler.unknown == []


# ---- calls no stored program makes, in XLA:GPU's syntax

def ffi_call(result: str, operands: list[str], target: str, config: str) -> str:
    parameters = [f"%p{index} = {shape} parameter({index})" for index, shape in enumerate(operands)]
    names = ", ".join(f"%p{index}" for index in range(len(operands)))
    return module(*parameters, f'ROOT %call = {result} custom-call({names}), custom_call_target="{target}", '
                               f"api_version=API_VERSION_TYPED_FFI, backend_config={{{config}}}")


def call_flops(text: str) -> tuple[int, str]:
    program = jc.recount(text)
    assert program.unknown == []
    (call,) = [op for op in program.ops if op.opcode == "custom-call"]
    return call.cost.flops, call.cost.notes[0]


@pytest.mark.parametrize(("m", "n", "transposed"), [(1100, 64, False), (64, 1100, True)])
def test_gesvd_of_a_matrix_over_1024_is_golub_reinschs_count(m, n, transposed):
    """jax's default SVD of a matrix with a side over 1024: QR iteration (gesvd), a wide one as its transpose."""
    a = f"f32[{m},{n}]"
    u, vt = (f"f32[{n},{n}]", f"f32[{m},{n}]") if transposed else (f"f32[{m},{n}]", f"f32[{n},{n}]")
    config = f"compute_uv = true, full_matrices = false, transposed = {'true' if transposed else 'false'}"
    flops, what = call_flops(ffi_call(f"({a}, f32[64], {u}, {vt}, s32[])", [a], "cusolver_gesvd_ffi", config))
    assert flops == svd("float32", 1100, 64, "S")
    assert what.startswith("call: cuSOLVER sgesvd: thin SVD of")


def test_gesvdp_is_counted_as_the_svd_it_computes():
    a = "c64[3,40,40]"
    text = ffi_call(f"({a}, f32[3,40], {a}, {a}, s32[3])", [a], "cusolver_gesvdp_ffi",
                    "compute_uv = true, full_matrices = true")
    flops, what = call_flops(text)
    assert flops == 3 * svd("complex64", 40, 40, "A")
    assert "polar decomposition" in what and "3 matrices" in what


@pytest.mark.parametrize(("n", "algorithm", "routine"), [(16, 1, "ssyevd"), (64, 2, "ssyevj"), (16, 0, "ssyevj")])
def test_the_symmetric_eigensolver_names_the_algorithm_jaxlib_picks(n, algorithm, routine):
    a = f"f32[{n},{n}]"
    flops, what = call_flops(ffi_call(f"({a}, f32[{n}], s32[])", [a], "cusolver_syevd_ffi",
                                      f"algorithm = {algorithm} : ui8, lower = true"))
    assert flops == eigh("float32", n)
    assert what.startswith(f"call: cuSOLVER {routine}:") and ("Jacobi" in what) == routine.endswith("j")


@pytest.mark.parametrize("left", [True, False])
def test_ormqr_from_either_side(left):
    """jax.scipy.linalg.qr_multiply: 8 reflectors of length 16 applied to c (16×3 from the left, 3×16 from the
    right: the same work)."""
    c = "f32[16,3]" if left else "f32[3,16]"
    text = ffi_call(c, ["f32[16,8]", "f32[8]", c], "cusolver_ormqr_ffi",
                    f"left = {'true' if left else 'false'}, transpose = false")
    assert call_flops(text)[0] == ormqr("float32", 16, 3, 8)


# ---- on the CPU: the LAPACK routines these rules brought in

@pytest.mark.cpu
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_eig_schur_and_qr_multiply_on_the_cpu(dtype):
    """LAPACK geev (eig: right eigenvectors; eigvals: none), gees (schur, with its Schur vectors) and ormqr
    (qr_multiply), by the same counts as on the GPU; XLA's -1 for each reproduced."""
    n = 16
    matrix = jax.ShapeDtypeStruct((n, n), jnp.dtype(dtype))
    schur = 25 * n ** 3 * (4 if dtype in COMPLEX else 1)
    programs = [(jnp.linalg.eig, (matrix,), geev(dtype, n)),
                (jnp.linalg.eigvals, (matrix,), 10 * n ** 3 * (4 if dtype in COMPLEX else 1)),
                (jsl.schur, (matrix,), schur),
                (jsl.qr_multiply, (jax.ShapeDtypeStruct((16, 8), jnp.dtype(dtype)),
                                   jax.ShapeDtypeStruct((3, 16), jnp.dtype(dtype))),
                 geqrf(dtype, 16, 8) + ormqr(dtype, 16, 3, 8))]
    for function, args, flops in programs:
        compiler = jc.compiled(function, *args)
        assert compiler.unknown == []
        assert sum(op.cost.flops for op in compiler.recount.ops if op.opcode == "custom-call") == flops
        assert compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")
