"""Recount library calls that XLA cannot cost (it reports -1): cuDNN convolutions, cuBLAS gemms, linear algebra
(LAPACK on the CPU, cuSOLVER and cuBLAS triangular solves on NVIDIA GPUs), XLA:TPU's in-place concatenation and its
in-bounds promise for gather indices.

Each is recounted from its own attributes: window, padding, dilation, ``dim_labels`` and
``feature_group_count`` for convolutions, ``dot_dimension_numbers`` and the epilogue for gemms,
the matrix shapes and FFI attributes (``side``, ``mode``, ``compute_uv``, ``full_matrices``) for linear algebra,
and the operand and result shapes (a trailing ``u8`` workspace in the result tuple is skipped).
A custom call not listed here stays unknown: it is named, never counted as -1 or 0.
Which calls XLA costs itself depends on the backend that compiled the program (``costed_by_xla``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from jaxcost.hlo.convolution import convolution_flops
from jaxcost.hlo.registry import registrar
from jaxcost.hlo.roles import BIAS_ADD
from jaxcost.hlo.text import Instruction, Shape

#: One integer or boolean attribute of an FFI call's backend_config, as XLA prints it:
#: ``{side = 76 : ui8, uplo = 85 : ui8}``, ``{compute_uv = true, full_matrices = false}``.
_FFI_ATTRIBUTE = re.compile(r"([A-Za-z_]\w*)\s*=\s*(?:(true|false)|(-?\d+)\s*:\s*\w+)")


@dataclass
class LibraryCost:
    """The recounted cost of one library call, with what each flop is for."""

    what: str
    flops_by_role: Counter = field(default_factory=Counter)
    bytes_read: list[int] = field(default_factory=list)
    bytes_written: int = 0
    transcendentals: int = 0
    #: Bytes not said per operand (a kernel's own estimate of all it moves).
    bytes_other: int = 0


Recounter = Callable[[Instruction, list[Shape], dict], LibraryCost | None]
_TARGETS: dict[str, Recounter] = {}


#: ``@target("__cudnn$...", ...)`` registers the recount of custom-call targets (a target registered twice raises).
target = registrar(_TARGETS, "custom-call target")


def result_shape(instruction: Instruction) -> Shape:
    """The call's real result: the first tuple element when the result carries a workspace."""
    return instruction.shape.element(0) if instruction.shape.is_tuple else instruction.shape


def backend_config(instruction: Instruction) -> dict:
    """The instruction's ``backend_config`` as a dict: its JSON, or an FFI call's integer and boolean attributes
    (``{side = 76 : ui8, lower = true}``: ``{"side": 76, "lower": True}``, a character as its code); {} when absent
    or unreadable."""
    text = instruction.attribute("backend_config")
    if not text.startswith("{"):
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {name: boolean == "true" if boolean else int(integer)
                for name, boolean, integer in _FFI_ATTRIBUTE.findall(text)}


def _traffic(operands: list[Shape], result: Shape, what: str) -> LibraryCost:
    return LibraryCost(what, Counter(), [shape.bytes for shape in operands], result.bytes)


@target("__cudnn$convForward", "__cudnn$convBiasActivationForward")
def _conv_forward(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    result = result_shape(instruction)
    cost = _traffic(operands, result, "cuDNN forward convolution")
    cost.flops_by_role["convolution"] = convolution_flops(instruction, operands[0], operands[1], result)
    conv_config = config.get("cudnn_conv_backend_config", {})
    elements = result.elements
    if len(operands) > 2:
        cost.flops_by_role[BIAS_ADD] += elements
    activation = conv_config.get("activation_mode", "kNone")
    if activation not in ("kNone", "0", 0):
        cost.flops_by_role["maximum" if activation == "kRelu" else activation.lstrip("k").lower()] += elements
        cost.what += f" + {activation.lstrip('k')}"
    if float(conv_config.get("conv_result_scale", 1)) != 1:
        cost.flops_by_role["multiply"] += elements
    if len(operands) > 3 and float(conv_config.get("side_input_scale", 0)) != 0:
        cost.flops_by_role["add"] += 2 * elements
    return cost


@target("__cudnn$convBackwardInput")
def _conv_backward_input(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # The attributes describe the forward convolution: its input is this call's result.
    result = result_shape(instruction)
    cost = _traffic(operands, result, "cuDNN convolution gradient w.r.t. input")
    cost.flops_by_role["convolution"] = convolution_flops(instruction, result, operands[1], operands[0])
    return cost


@target("__cudnn$convBackwardFilter")
def _conv_backward_filter(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # The attributes describe the forward convolution: its kernel is this call's result.
    result = result_shape(instruction)
    cost = _traffic(operands, result, "cuDNN convolution gradient w.r.t. filter")
    cost.flops_by_role["convolution"] = convolution_flops(instruction, operands[0], result, operands[1])
    return cost


_EPILOGUE_ROLES = {"RELU": "maximum", "GELU": "gelu", "SILU": "silu"}


@target("__cublas$gemm", "__cublas$lt$matmul", "__cublas$lt$matmul$f8")
def _gemm(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    result = result_shape(instruction)
    gemm = config.get("gemm_backend_config", {})
    numbers = gemm.get("dot_dimension_numbers", {})
    contracting = [int(d) for d in numbers.get("lhs_contracting_dimensions", [])]
    cost = _traffic(operands, result, "cuBLAS gemm")
    cost.flops_by_role["dot"] = 2 * result.elements * math.prod(operands[0].dims[d] for d in contracting)
    epilogue = str(gemm.get("epilogue", "DEFAULT"))
    if "BIAS" in epilogue:
        cost.flops_by_role[BIAS_ADD] += result.elements
    for name, role in _EPILOGUE_ROLES.items():
        if name in epilogue:
            cost.flops_by_role[role] += result.elements
    if float(gemm.get("beta", 0)) != 0:
        cost.flops_by_role["add"] += result.elements
    if epilogue != "DEFAULT":
        cost.what += f" + epilogue {epilogue}"
    return cost


# Linear algebra: LAPACK, as XLA:CPU calls it for jnp.linalg and jax.scipy.linalg (``lapack_sgetrf_ffi``: s, d, c, z
# for float32, float64, complex64, complex128), and cuSOLVER as XLA:GPU calls it (``cusolver_getrf_ffi``, the
# precision that of the matrix; jaxlib's GPU solver kernels), with cuBLAS's triangular solve, which XLA:GPU calls
# itself; each batched over the leading dimensions of its matrices.
#
# The convention: the multiplications plus the additions of the blocked algorithm, independent of the data, as LAPACK
# Working Note 41 (Blackford & Dongarra, "Installation Guide for LAPACK", appendix "Operation counts for the BLAS and
# LAPACK") and LAPACK's own timing code (TIMING/LIN/dopla.f; dopbl3.f for trsm) count them (the two agree but for
# getrf, where LAWN 41's form is used); in complex arithmetic a multiplication is 6 real flops and an addition 2
# (dopla's MULFAC, ADDFAC). A routine counts the same on either library, whatever algorithm the library picks for the
# shape (cuBLAS's getrfBatched for a batch, cuSOLVER's Jacobi syevj and gesvdj): the count of the operation, as a
# convolution's is its taps whatever cuDNN's algorithm. The eigensolvers and the SVD iterate until they converge:
# their counts are estimates of the standard algorithms' phases, and their ``what`` says so.

_LAPACK_TARGET = re.compile(r"lapack_([sdcz])([a-z]+)_ffi")

#: The precision letter of an element type, as LAPACK and cuSOLVER name their routines.
_PRECISION_OF = {"f32": "s", "f64": "d", "c64": "c", "c128": "z"}


def _routine_name(precision: str, routine: str) -> str:
    """The routine's name in ``precision``: ``orgqr/ungqr`` names a routine whose real (s, d) and complex (c, z)
    forms are named apart."""
    real, _, complex_ = routine.partition("/")
    return real if precision in "sd" else complex_ or real


def lapack_targets(*routines: str) -> tuple[str, ...]:
    """The FFI targets of LAPACK routines in every precision (``getrf``: ``lapack_sgetrf_ffi`` ... ``_zgetrf_``;
    ``orgqr/ungqr``: ``lapack_sorgqr_ffi`` ... ``lapack_zungqr_ffi``)."""
    return tuple(f"lapack_{letter}{_routine_name(letter, routine)}_ffi" for routine in routines for letter in "sdcz")


def lapack_flops(precision: str, multiplications: Fraction, additions: Fraction) -> int:
    """LAWN 41's weighting: each multiplication and addition 1 flop in real arithmetic (``precision`` s or d); 6 and
    2 in complex (c or z). Rounded to a whole count (the published forms are exact integers for integer sizes)."""
    complex_ = precision in "cz"
    return round(multiplications * (6 if complex_ else 1) + additions * (2 if complex_ else 1))


def _precision(instruction: Instruction, operands: list[Shape]) -> str:
    """The precision letter (s, d, c or z): a LAPACK target's own (``lapack_sgetrf_ffi``), else that of the first
    operand's element type."""
    match = _LAPACK_TARGET.fullmatch(custom_call_target(instruction))
    if match is not None:
        return match.group(1)
    if operands[0].dtype not in _PRECISION_OF:
        raise ValueError(f"{instruction.name}: no linear algebra in {operands[0].dtype}")
    return _PRECISION_OF[operands[0].dtype]


def _solver_cost(instruction: Instruction, operands: list[Shape], routine: str, what: str, flops_one: int,
                 unwritten: tuple[int, ...] = ()) -> LibraryCost:
    """A linear-algebra call's cost: ``flops_one`` for one matrix, times the batch (the leading dimensions of the
    first operand); every operand read and every result written (the libraries work in place, the buffers alias) but
    the results at ``unwritten`` (a workspace, or factors the call was told not to compute)."""
    precision = _precision(instruction, operands)
    name = _routine_name(precision, routine)
    called = custom_call_target(instruction)
    library = "LAPACK" if called.startswith("lapack_") else "cuBLAS" if called.startswith("__cublas") else "cuSOLVER"
    batch = math.prod(operands[0].dims[:-2])
    batched = f", {batch} matrices" if batch > 1 else ""
    written = sum(leaf.bytes for index, leaf in enumerate(instruction.shape.leaves()) if index not in unwritten)
    return LibraryCost(f"{library} {precision}{name}: {what}{batched}", Counter({name: batch * flops_one}),
                       [shape.bytes for shape in operands], written)


def _matrix(shape: Shape) -> tuple[Fraction, Fraction]:
    """Rows and columns of the (last two dimensions of) ``shape``, as exact numbers for the published forms."""
    return Fraction(shape.dims[-2]), Fraction(shape.dims[-1])


def getrf_counts(m: Fraction, n: Fraction) -> tuple[Fraction, Fraction]:
    """LU with partial pivoting of an m×n matrix (LAWN 41, xGETRF, m >= n; for m < n, as LAPACK++'s flops.hh, the
    same form with m and n swapped): multiplications (the n reciprocals of the pivots among them) and additions.
    LAPACK's dopla.f counts n fewer multiplications."""
    rows, columns = max(m, n), min(m, n)
    multiplications = (rows * columns ** 2 / 2 - columns ** 3 / 6 + rows * columns / 2 - columns ** 2 / 2
                       + Fraction(2, 3) * columns)
    return multiplications, rows * columns ** 2 / 2 - columns ** 3 / 6 - rows * columns / 2 + columns / 6


def trsm_counts(m: Fraction, n: Fraction, left: bool) -> tuple[Fraction, Fraction]:
    """A triangular solve with an m×n right-hand side (dopbl3.f, xTRSM; LAWN 41): the triangle is m×m on the left,
    n×n on the right."""
    order, other = (m, n) if left else (n, m)
    return other * order * (order + 1) / 2, other * order * (order - 1) / 2


def potrf_counts(n: Fraction) -> tuple[Fraction, Fraction]:
    """Cholesky of an n×n matrix (dopla.f, xPOTRF; LAWN 41)."""
    return n * (Fraction(1, 3) + n * (Fraction(1, 2) + n / 6)), n * (n * n - 1) / 6


def geqrf_counts(m: Fraction, n: Fraction) -> tuple[Fraction, Fraction]:
    """Householder QR of an m×n matrix (dopla.f, xGEQRF; LAWN 41)."""
    if m >= n:
        return (n * (Fraction(23, 6) + m + n / 2 + n * (m - n / 3)),
                n * (Fraction(5, 6) + n * (Fraction(1, 2) + m - n / 3)))
    return (m * (Fraction(23, 6) + 2 * n - m / 2 + m * (n - m / 3)),
            m * (Fraction(5, 6) + n - m / 2 + m * (n - m / 3)))


def orgqr_counts(m: Fraction, n: Fraction, k: Fraction) -> tuple[Fraction, Fraction]:
    """The m×n matrix Q of k Householder reflectors (dopla.f, xORGQR / xUNGQR; LAWN 41)."""
    common = 2 * m * n + k * (Fraction(2, 3) * k - m - n)
    return k * (Fraction(-5, 3) + 2 * n - k + common), k * (Fraction(1, 3) + n - m + common)


def ormqr_left_counts(m: Fraction, n: Fraction, k: Fraction) -> tuple[Fraction, Fraction]:
    """k Householder reflectors applied from the left to an m×n matrix (dopla.f, xORMQR, SIDE = 'L'; LAWN 41)."""
    return k * n * (2 * m + 2 - k), k * n * (2 * m + 1 - k)


def sytrd_counts(n: Fraction) -> tuple[Fraction, Fraction]:
    """Householder reduction of a symmetric n×n matrix to tridiagonal form (dopla.f, xSYTRD / xHETRD; LAWN 41)."""
    if n <= 1:
        return Fraction(0), Fraction(0)
    return (-15 + n * (Fraction(-1, 6) + n * (Fraction(5, 2) + n * Fraction(2, 3))),
            -4 + n * (Fraction(-8, 3) + n * (1 + n * Fraction(2, 3))))


def gehrd_counts(n: Fraction) -> tuple[Fraction, Fraction]:
    """Householder reduction of an n×n matrix to upper Hessenberg form (dopla.f, xGEHRD; LAWN 41)."""
    if n <= 1:
        return Fraction(0), Fraction(0)
    return (-13 + n * (Fraction(-7, 6) + n * (Fraction(1, 2) + n * Fraction(5, 3))),
            -8 + n * (Fraction(-2, 3) + n * (-1 + n * Fraction(5, 3))))


def syevd_flops(precision: str, n: int, vectors: bool) -> int:
    """An estimate of the symmetric (Hermitian) eigensolver by divide and conquer, phase by phase: the reduction to
    tridiagonal form (xSYTRD, LAWN 41), with vectors the tridiagonal divide and conquer without deflation, its worst
    case (a merge multiplies the halves' eigenvectors, n³ flops; T(n) = 2T(n/2) + n³ = 4n³/3, Demmel, "Applied
    Numerical Linear Algebra" §5.3.3; deflation makes it less) in real arithmetic, and the back-transformation by the
    n-1 reflectors (xORMTR, as xORMQR on the last n-1 rows). Without vectors the tridiagonal eigenvalues' O(n²)
    iteration is not counted."""
    size = Fraction(n)
    flops = lapack_flops(precision, *sytrd_counts(size))
    if vectors and n > 1:
        back_transformation = ormqr_left_counts(size - 1, size, size - 1)
        flops += round(Fraction(4, 3) * size ** 3) + lapack_flops(precision, *back_transformation)
    return flops


def gesdd_flops(precision: str, m: int, n: int, mode: str) -> int:
    """An estimate of the SVD of an m×n matrix: the Golub-Reinsch counts of Golub & Van Loan, "Matrix Computations"
    (4th ed., Figure 8.6.1; 3rd ed. §5.4.5), which sum the standard phases (bidiagonalization, the bidiagonal SVD,
    the back-transformations), for the singular values only (mode N: 4mn² - 4n³/3), with the thin U and V (mode S:
    14mn² + 8n³) or the full U and V (mode A: 4m²n + 8mn² + 9n³), m >= n (else of the transpose). LAPACK's gesdd
    computes the bidiagonal SVD by divide and conquer instead of QR iteration. Complex: 4x (LAWN 41's weights, a
    complex multiply-add 8 real flops against 2)."""
    rows, columns = max(m, n), min(m, n)
    real_by_mode: dict[str, int | Fraction] = {
        "N": 4 * rows * columns ** 2 - Fraction(4, 3) * columns ** 3,
        "S": 14 * rows * columns ** 2 + 8 * columns ** 3,
        "A": 4 * rows ** 2 * columns + 8 * rows * columns ** 2 + 9 * columns ** 3}
    return round(real_by_mode[mode] * (4 if precision in "cz" else 1))


def schur_flops(precision: str, n: int, vectors: bool) -> int:
    """An estimate of the Schur decomposition of an n×n matrix by the practical QR algorithm (the Hessenberg
    reduction, then Francis double-shift steps, two an eigenvalue on average): 10n³ for T alone, 25n³ for T and the
    orthogonal Q (Golub & Van Loan, "Matrix Computations", §7.5 "The Practical QR Algorithm", the overall process).
    Complex: 4x, as ``gesdd_flops``."""
    return (25 if vectors else 10) * n ** 3 * (4 if precision in "cz" else 1)


def geev_flops(precision: str, n: int, sides: int) -> int:
    """An estimate of the eigenvalues of a general n×n matrix with its eigenvectors on ``sides`` sides (0, 1 or 2):
    the Schur decomposition (``schur_flops``, with Q when eigenvectors are wanted), then on each side the
    eigenvectors of the triangular T, the k-th by substitution in a triangular system of order k-1 ((k-1)² flops,
    LAWN 41's xTRSM with one right-hand side), each turned back by Q (2n(k-1) flops, a matrix-vector product, as
    LAPACK's xTREVC with HOWMNY = 'B'). Complex: 4x."""
    per_side = (n - 1) * n * (2 * n - 1) // 6 + n * n * (n - 1)
    return schur_flops(precision, n, sides > 0) + sides * per_side * (4 if precision in "cz" else 1)


@target(*lapack_targets("getrf"), "cusolver_getrf_ffi")
def _getrf(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    m, n = _matrix(operands[0])
    return _solver_cost(instruction, operands, "getrf", f"LU factorization of {m}×{n}",
                        lapack_flops(_precision(instruction, operands), *getrf_counts(m, n)))


def _triangular_solve(instruction: Instruction, operands: list[Shape], left: bool,
                      unwritten: tuple[int, ...] = ()) -> LibraryCost:
    """A triangular solve of (a, b): the count depends on b's shape and the side alone (not on the triangle, its
    transposition or a unit diagonal)."""
    m, n = _matrix(operands[1])
    what = f"triangular solve, {'left' if left else 'right'} side, {m}×{n} right-hand side"
    return _solver_cost(instruction, operands, "trsm", what,
                        lapack_flops(_precision(instruction, operands), *trsm_counts(m, n, left)), unwritten)


@target(*lapack_targets("trsm"))
def _trsm(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    return _triangular_solve(instruction, operands, config.get("side", ord("L")) == ord("L"))


@target("__cublas$triangularSolve")
def _cublas_trsm(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # XLA:GPU's own call (``left_side``, ``lower``, ``transpose_a``, ``unit_diagonal``); its workspace unwritten
    return _triangular_solve(instruction, operands, bool(config.get("left_side", True)), unwritten=(1,))


@target(*lapack_targets("potrf"), "cusolver_potrf_ffi")
def _potrf(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    _, n = _matrix(operands[0])
    return _solver_cost(instruction, operands, "potrf", f"Cholesky factorization of {n}×{n}",
                        lapack_flops(_precision(instruction, operands), *potrf_counts(n)))


@target(*lapack_targets("geqrf"), "cusolver_geqrf_ffi")
def _geqrf(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    m, n = _matrix(operands[0])
    return _solver_cost(instruction, operands, "geqrf", f"Householder QR of {m}×{n}",
                        lapack_flops(_precision(instruction, operands), *geqrf_counts(m, n)))


@target(*lapack_targets("orgqr/ungqr"), "cusolver_orgqr_ffi")
def _orgqr(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    m, n = _matrix(operands[0])
    k = Fraction(operands[1].dims[-1])
    return _solver_cost(instruction, operands, "orgqr/ungqr", f"{m}×{n} Q of {k} Householder reflectors",
                        lapack_flops(_precision(instruction, operands), *orgqr_counts(m, n, k)))


@target(*lapack_targets("ormqr/unmqr"), "cusolver_ormqr_ffi")
def _ormqr(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # (reflectors, taus, c): from the right, the reflectors act on c's rows as from the left on its transpose's
    # columns (dopla.f's SIDE = 'R' form is the left one with m and n swapped)
    m, n = _matrix(operands[2])
    k = Fraction(operands[1].dims[-1])
    left = bool(config.get("left", True))
    order, other = (m, n) if left else (n, m)
    what = f"{k} Householder reflectors applied from the {'left' if left else 'right'} to {m}×{n}"
    return _solver_cost(instruction, operands, "ormqr/unmqr", what,
                        lapack_flops(_precision(instruction, operands), *ormqr_left_counts(order, other, k)))


@target(*lapack_targets("gehrd"))
def _gehrd(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    _, n = _matrix(operands[0])
    return _solver_cost(instruction, operands, "gehrd", f"Hessenberg reduction of {n}×{n}",
                        lapack_flops(_precision(instruction, operands), *gehrd_counts(n)))


_EIGH_ESTIMATE = "an estimate: divide and conquer without deflation"


@target(*lapack_targets("syevd/heevd"))
def _syevd(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    n = operands[0].dims[-1]
    vectors = config.get("mode", ord("V")) == ord("V")
    what = (f"{'eigenvalues and eigenvectors' if vectors else 'eigenvalues'} of a {n}×{n} symmetric matrix "
            f"({_EIGH_ESTIMATE})")
    return _solver_cost(instruction, operands, "syevd/heevd", what,
                        syevd_flops(_precision(instruction, operands), n, vectors))


#: jaxlib's ``algorithm`` attribute of its GPU symmetric eigensolver: 0 lets it choose, 2 asks for Jacobi.
_DEFAULT, _JACOBI = 0, 2


@target("cusolver_syevd_ffi")
def _cusolver_syevd(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # jaxlib always asks for the eigenvectors; it runs Jacobi rotations (syevj, syevjBatched) when told to or, by
    # default, for a matrix up to 32×32, divide and conquer (syevd) otherwise
    n = operands[0].dims[-1]
    algorithm = config.get("algorithm", _DEFAULT)
    jacobi = algorithm == _JACOBI or (algorithm == _DEFAULT and n <= 32)
    method = "; cuSOLVER's Jacobi sweeps, as many as the data needs, do other work" if jacobi else ""
    what = f"eigenvalues and eigenvectors of a {n}×{n} symmetric matrix ({_EIGH_ESTIMATE}{method})"
    return _solver_cost(instruction, operands, "syevj/heevj" if jacobi else "syevd/heevd", what,
                        syevd_flops(_precision(instruction, operands), n, vectors=True))


_SVD_FACTORS = {"N": "singular values", "S": "thin SVD", "A": "full SVD"}


def _svd(instruction: Instruction, operands: list[Shape], routine: str, mode: str, method: str = "",
         unwritten: tuple[int, ...] = ()) -> LibraryCost:
    """An SVD of the first operand's matrices, computing what ``mode`` says (N, S or A: ``gesdd_flops``)."""
    m, n = operands[0].dims[-2:]
    what = f"{_SVD_FACTORS[mode]} of {m}×{n} (an estimate: Golub-Reinsch phase counts{method})"
    return _solver_cost(instruction, operands, routine, what,
                        gesdd_flops(_precision(instruction, operands), m, n, mode), unwritten)


@target(*lapack_targets("gesdd"))
def _gesdd(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    mode = chr(config.get("mode", ord("A")))
    return _svd(instruction, operands, "gesdd", mode if mode in _SVD_FACTORS else "A")


#: How each of cuSOLVER's SVDs gets there, beside the Golub-Reinsch count (gesvd is Golub-Reinsch's QR iteration).
_CUSOLVER_SVD_METHODS = {
    "cusolver_gesvd_ffi": "",
    "cusolver_gesvdj_ffi": "; cuSOLVER's one-sided Jacobi sweeps, as many as the data needs, do other work",
    "cusolver_gesvdp_ffi": "; cuSOLVER's polar decomposition, its iterations as many as the data needs, does other "
                           "work",
}


@target(*_CUSOLVER_SVD_METHODS)
def _cusolver_svd(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # results (a, s, u, v or vt, info); without ``compute_uv`` u and v are not computed; ``full_matrices`` false is
    # the thin SVD (jaxlib asks gesvdj for the full one where the matrix has a side up to 32: gesvdjBatched has no
    # thin form); gesvd's ``transposed`` factors the transpose of a wide matrix, the same count
    called = custom_call_target(instruction)
    vectors = bool(config.get("compute_uv", True))
    mode = "A" if vectors and config.get("full_matrices", True) else "S" if vectors else "N"
    routine = called.removeprefix("cusolver_").removesuffix("_ffi")
    unwritten = () if vectors else (2, 3)
    return _svd(instruction, operands, routine, mode, _CUSOLVER_SVD_METHODS[called], unwritten)


_SCHUR_ESTIMATE = "an estimate: Francis QR steps, two an eigenvalue"


@target(*lapack_targets("gees"))
def _gees(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    n = operands[0].dims[-1]
    vectors = config.get("mode", ord("V")) == ord("V")
    what = f"Schur decomposition of {n}×{n}{' with its Schur vectors' if vectors else ''} ({_SCHUR_ESTIMATE})"
    return _solver_cost(instruction, operands, "gees", what, schur_flops(_precision(instruction, operands), n, vectors))


@target(*lapack_targets("geev"), "cusolver_geev_ffi")
def _geev(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # LAPACK's ``compute_left``/``compute_right`` ('V' or 'N'), cuSOLVER's ``left``/``right``; the results end with
    # the left and right eigenvectors and the info, the vectors not asked for unwritten
    lapack = custom_call_target(instruction).startswith("lapack_")
    left, right = (config.get(f"compute_{side}", ord("N")) == ord("V") if lapack else bool(config.get(side, False))
                   for side in ("left", "right"))
    n = operands[0].dims[-1]
    results = len(instruction.shape.leaves())
    unwritten = tuple(index for index, wanted in ((results - 3, left), (results - 2, right)) if not wanted)
    sides = " and ".join(side for side, wanted in (("left", left), ("right", right)) if wanted)
    vectors = f" and {sides} eigenvectors" if sides else ""
    substitution = ", the eigenvectors by substitution" if sides else ""
    what = f"eigenvalues{vectors} of a general {n}×{n} matrix ({_SCHUR_ESTIMATE}{substitution})"
    return _solver_cost(instruction, operands, "geev", what,
                        geev_flops(_precision(instruction, operands), n, left + right), unwritten)


@target("cu_lu_pivots_to_permutation")
def _lu_pivots_to_permutation(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # jaxlib's kernel applies the pivots' row swaps in turn to the identity permutation: integer moves, no arithmetic
    return LibraryCost("LU pivots to a permutation: index swaps, no arithmetic", Counter(),
                       [shape.bytes for shape in operands], instruction.shape.bytes)


#: XLA:TPU custom calls that compute and move nothing, and what each is.
_MOVING_NOTHING = {
    "ConcatBitcast": "TPU concatenation in place (a bitcast: nothing moves)",
    "AssumeGatherIndicesInBound": "gather indices assumed in bounds (nothing computed)",
    "GatherScatterIndicesBitpacked": "gather/scatter indices packed inside a fusion (nothing computed)",
    "AllocateBuffer": "buffer allocated (nothing moves)",
    "PrepareAsyncCallStart": "an asynchronous call prepared (nothing moves)",
    "PrepareAsyncCallDone": "an asynchronous call prepared (nothing moves)",
}


@target(*_MOVING_NOTHING)
def _moving_nothing(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # concatenations of slices that already lie side by side, promises about indices jnp.take clamped, index
    # packing, a scan's uninitialized output buffer, the handshake of a call offloaded to the SparseCore
    return LibraryCost(_MOVING_NOTHING[custom_call_target(instruction)], Counter(), [0] * len(operands), 0)


@target("TopK")
def _top_k(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # the k largest of each row: a compare of every element with each of the k kept (XLA:TPU's own count; XLA:CPU's
    # partial sort does fewer, as many as the data needs, and reports -1)
    values = instruction.shape.element(0) if instruction.shape.is_tuple else instruction.shape
    kept = values.dims[-1] if values.dims else 1
    return LibraryCost(f"TopK: the top {kept} of each row, {kept} compares an element",
                       Counter({"top-k compare": operands[0].elements * kept}),
                       [shape.bytes for shape in operands], sum(leaf.bytes for leaf in instruction.shape.leaves()))


@target("tpu_custom_call")
def _pallas_kernel(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost | None:
    # a Pallas kernel: XLA:TPU takes the kernel's own cost_estimate (0 without one, where nothing is known)
    estimate = config.get("custom_call_config", {}).get("cost_estimate")
    if not estimate:
        return None
    return LibraryCost("Pallas kernel, by its own cost_estimate", Counter({"pallas kernel": int(estimate["flops"])}),
                       [0] * len(operands), 0, transcendentals=int(estimate.get("transcendentals", 0)),
                       bytes_other=int(estimate.get("bytes_accessed", 0)))


TPU, OTHER = "tpu", "cpu or gpu"

#: The custom calls XLA's cost analysis costs itself, by the backend that compiled the program; it reports every
#: other as -1 (HloCostAnalysis::HandleCustomCall). XLA:TPU costs TopK (n·k compares), AllocateBuffer (nothing) and
#: a Pallas kernel (its own estimate; 0 without one, where the recount knows nothing). XLA:CPU costs none (measured,
#: jax 0.10.2: TopK and the LAPACK calls are -1), nor does XLA:GPU (measured on an H100: cuDNN and cuBLAS are -1; on
#: an H200, jax 0.11.2: cuSOLVER, cuBLAS's triangular solve and cu_lu_pivots_to_permutation are -1).
COSTED_BY_XLA_ON = {TPU: frozenset({"AllocateBuffer", "TopK", "tpu_custom_call"}), OTHER: frozenset()}


def backend_of(instruction: Instruction) -> str:
    """``TPU`` when the program was compiled by XLA:TPU (its shapes carry tiles, or are sized by a TPU's rules:
    ``Sizes.untiled_scalar_bytes``), else ``OTHER`` (XLA:CPU and XLA:GPU cost custom calls alike)."""
    shape = instruction.shape
    tiled = any(leaf.tiles for leaf in shape.leaves())
    return TPU if tiled or shape.sizes.untiled_scalar_bytes else OTHER


def costed_by_xla(instruction: Instruction) -> bool:
    """Whether XLA's cost analysis costs this custom call itself on the backend that compiled its program
    (``COSTED_BY_XLA_ON``), rather than reporting -1."""
    return custom_call_target(instruction) in COSTED_BY_XLA_ON[backend_of(instruction)]


def custom_call_target(instruction: Instruction) -> str:
    """The call's ``custom_call_target``."""
    return instruction.attribute("custom_call_target").strip('"')


def library_cost(instruction: Instruction, operands: list[Shape]) -> LibraryCost | None:
    """The recounted cost of a known library call, or None for a call jaxcost does not know."""
    recounter = _TARGETS.get(custom_call_target(instruction))
    if recounter is None:
        return None
    return recounter(instruction, operands, backend_config(instruction))
