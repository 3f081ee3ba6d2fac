"""Recount library calls that XLA cannot cost (it reports -1): cuDNN convolutions, cuBLAS gemms, LAPACK's linear
algebra on the CPU, XLA:TPU's in-place concatenation and its in-bounds promise for gather indices.

Each is recounted from its own attributes: window, padding, dilation, ``dim_labels`` and
``feature_group_count`` for convolutions, ``dot_dimension_numbers`` and the epilogue for gemms,
the matrix shapes and FFI attributes (``side``, ``mode``) for LAPACK calls, and the operand and result
shapes (a trailing ``u8`` workspace in the result tuple is skipped).
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

#: One attribute of an FFI call's backend_config, as XLA prints it: ``{side = 76 : ui8, uplo = 85 : ui8}``.
_FFI_ATTRIBUTE = re.compile(r"([A-Za-z_]\w*)\s*=\s*(-?\d+)\s*:\s*\w+")


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
    """The instruction's ``backend_config`` as a dict: its JSON, or an FFI call's attributes (``{side = 76 : ui8}``:
    ``{"side": 76}``, a character's code); {} when absent or unreadable."""
    text = instruction.attribute("backend_config")
    if not text.startswith("{"):
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {name: int(value) for name, value in _FFI_ATTRIBUTE.findall(text)}


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


# LAPACK, as XLA:CPU calls it for jnp.linalg and jax.scipy.linalg (``lapack_sgetrf_ffi``: s, d, c, z for float32,
# float64, complex64, complex128), batched over the leading dimensions of its matrices.
#
# The convention: the multiplications plus the additions of the blocked algorithm, independent of the data, as LAPACK
# Working Note 41 (Blackford & Dongarra, "Installation Guide for LAPACK", appendix "Operation counts for the BLAS and
# LAPACK") and LAPACK's own timing code (TIMING/LIN/dopla.f; dopbl3.f for trsm) count them (the two agree but for
# getrf, where LAWN 41's form is used); in complex arithmetic a multiplication is 6 real flops and an addition 2
# (dopla's MULFAC, ADDFAC). The symmetric eigensolver and the SVD iterate until they converge: their counts are
# estimates, and their ``what`` says so. geev and gees (jnp.linalg.eig, jax.scipy.linalg.schur) have no count: unknown.

_LAPACK_TARGET = re.compile(r"lapack_([sdcz])([a-z]+)_ffi")


def lapack_targets(*routines: str) -> tuple[str, ...]:
    """The FFI targets of LAPACK routines in every precision (``getrf``: ``lapack_sgetrf_ffi`` ... ``_zgetrf_``);
    ``orgqr/ungqr`` names a routine whose real and complex forms are named apart."""
    names = []
    for routine in routines:
        real, _, complex_ = routine.partition("/")
        names += [f"lapack_{letter}{real if letter in 'sd' else complex_ or real}_ffi" for letter in "sdcz"]
    return tuple(names)


def lapack_flops(precision: str, multiplications: Fraction, additions: Fraction) -> int:
    """LAWN 41's weighting: each multiplication and addition 1 flop in real arithmetic (``precision`` s or d); 6 and
    2 in complex (c or z). Rounded to a whole count (the published forms are exact integers for integer sizes)."""
    complex_ = precision in "cz"
    return round(multiplications * (6 if complex_ else 1) + additions * (2 if complex_ else 1))


def _lapack_cost(instruction: Instruction, operands: list[Shape], what: str, flops_one: int) -> LibraryCost:
    """A LAPACK call's cost: ``flops_one`` for one matrix, times the batch (the leading dimensions of the first
    operand); every operand read and every result written (LAPACK works in place, the buffers alias)."""
    precision, routine = _lapack_routine(instruction)
    batch = math.prod(operands[0].dims[:-2])
    batched = f", {batch} matrices" if batch > 1 else ""
    return LibraryCost(f"LAPACK {precision}{routine}: {what}{batched}", Counter({routine: batch * flops_one}),
                       [shape.bytes for shape in operands], sum(leaf.bytes for leaf in instruction.shape.leaves()))


def _lapack_routine(instruction: Instruction) -> tuple[str, str]:
    """The precision letter (s, d, c or z) and the routine of a LAPACK call's target (``lapack_sgetrf_ffi``)."""
    name = custom_call_target(instruction)
    match = _LAPACK_TARGET.fullmatch(name)
    if match is None:
        raise ValueError(f"{instruction.name}: {name!r} is not a LAPACK target")
    return match.group(1), match.group(2)


def _precision(instruction: Instruction) -> str:
    return _lapack_routine(instruction)[0]


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


@target(*lapack_targets("getrf"))
def _getrf(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    m, n = _matrix(operands[0])
    return _lapack_cost(instruction, operands, f"LU factorization of {m}×{n}",
                        lapack_flops(_precision(instruction), *getrf_counts(m, n)))


@target(*lapack_targets("trsm"))
def _trsm(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    m, n = _matrix(operands[1])
    left = config.get("side", ord("L")) == ord("L")
    what = f"triangular solve, {'left' if left else 'right'} side, {m}×{n} right-hand side"
    return _lapack_cost(instruction, operands, what, lapack_flops(_precision(instruction), *trsm_counts(m, n, left)))


@target(*lapack_targets("potrf"))
def _potrf(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    _, n = _matrix(operands[0])
    return _lapack_cost(instruction, operands, f"Cholesky factorization of {n}×{n}",
                        lapack_flops(_precision(instruction), *potrf_counts(n)))


@target(*lapack_targets("geqrf"))
def _geqrf(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    m, n = _matrix(operands[0])
    return _lapack_cost(instruction, operands, f"Householder QR of {m}×{n}",
                        lapack_flops(_precision(instruction), *geqrf_counts(m, n)))


@target(*lapack_targets("orgqr/ungqr"))
def _orgqr(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    m, n = _matrix(operands[0])
    k = Fraction(operands[1].dims[-1])
    return _lapack_cost(instruction, operands, f"{m}×{n} Q of {k} Householder reflectors",
                        lapack_flops(_precision(instruction), *orgqr_counts(m, n, k)))


@target(*lapack_targets("gehrd"))
def _gehrd(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    _, n = _matrix(operands[0])
    return _lapack_cost(instruction, operands, f"Hessenberg reduction of {n}×{n}",
                        lapack_flops(_precision(instruction), *gehrd_counts(n)))


@target(*lapack_targets("syevd/heevd"))
def _syevd(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    n = operands[0].dims[-1]
    vectors = config.get("mode", ord("V")) == ord("V")
    what = (f"{'eigenvalues and eigenvectors' if vectors else 'eigenvalues'} of a {n}×{n} symmetric matrix "
            "(an estimate: divide and conquer without deflation)")
    return _lapack_cost(instruction, operands, what, syevd_flops(_precision(instruction), n, vectors))


@target(*lapack_targets("gesdd"))
def _gesdd(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    m, n = operands[0].dims[-2:]
    mode = chr(config.get("mode", ord("A")))
    factors = {"N": "singular values", "S": "thin SVD", "A": "full SVD"}.get(mode, "full SVD")
    what = f"{factors} of {m}×{n} (an estimate: Golub-Reinsch phase counts)"
    return _lapack_cost(instruction, operands, what,
                        gesdd_flops(_precision(instruction), m, n, mode if mode in "NSA" else "A"))


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
#: jax 0.10.2: TopK and the LAPACK calls are -1), nor does XLA:GPU (measured on an H100: cuDNN and cuBLAS are -1).
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
