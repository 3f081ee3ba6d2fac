"""LAPACK calls (XLA:CPU's linear algebra) recounted: each count against its published formula, written out here
apart from the code (LAPACK Working Note 41 and LAPACK's timing code dopla.f; Golub & Van Loan for the SVD), and
``compare`` of jnp.linalg programs on the CPU: the recount knows every call, XLA's -1 for each is an ``xla`` item.
"""

from fractions import Fraction

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import pytest

import jaxcost as jc
from jaxcost.hlo import library_calls
from jaxcost.hlo.library_calls import (
    geqrf_counts,
    gesdd_flops,
    getrf_counts,
    lapack_flops,
    orgqr_counts,
    potrf_counts,
    syevd_flops,
    trsm_counts,
)

pytestmark = pytest.mark.cpu  # compiles jnp.linalg to the CPU's LAPACK calls


def total(counts) -> Fraction:
    multiplications, additions = counts
    return multiplications + additions


@pytest.mark.parametrize("n", [1, 2, 7, 64, 100])
def test_square_counts_are_lawn_41s(n):
    """getrf: 2/3·n³ - 1/2·n² + 5/6·n; potrf: 1/3·n³ + 1/2·n² + 1/6·n; geqrf (m = n): 4/3·n³ + 2n² + 14/3·n."""
    n_ = Fraction(n)
    assert total(getrf_counts(n_, n_)) == Fraction(2, 3) * n ** 3 - Fraction(1, 2) * n ** 2 + Fraction(5, 6) * n
    assert total(potrf_counts(n_)) == Fraction(1, 3) * n ** 3 + Fraction(1, 2) * n ** 2 + Fraction(1, 6) * n
    assert total(geqrf_counts(n_, n_)) == Fraction(4, 3) * n ** 3 + 2 * n ** 2 + Fraction(14, 3) * n


@pytest.mark.parametrize(("m", "n"), [(80, 64), (64, 80), (5, 8), (8, 5), (1000, 3)])
def test_rectangular_counts_are_lawn_41s(m, n):
    """getrf of m×n, k = min(m, n), l = max: l·k² - k³/3 - k²/2 + 5k/6; geqrf, m >= n: 2mn² - 2n³/3 + mn + n² + 14n/3,
    m < n: 2nm² - 2m³/3 + 3nm - m² + 14m/3; trsm: m²n on the left, mn² on the right."""
    m_, n_ = Fraction(m), Fraction(n)
    k, longer = min(m_, n_), max(m_, n_)
    assert total(getrf_counts(m_, n_)) == longer * k ** 2 - k ** 3 / 3 - k ** 2 / 2 + 5 * k / 6
    expected = (2 * m_ * n_ ** 2 - 2 * n_ ** 3 / 3 + m_ * n_ + n_ ** 2 + 14 * n_ / 3 if m >= n else
                2 * n_ * m_ ** 2 - 2 * m_ ** 3 / 3 + 3 * n_ * m_ - m_ ** 2 + 14 * m_ / 3)
    assert total(geqrf_counts(m_, n_)) == expected
    assert total(trsm_counts(m_, n_, left=True)) == m * m * n
    assert total(trsm_counts(m_, n_, left=False)) == m * n * n


@pytest.mark.parametrize(("m", "n", "k"), [(80, 64, 64), (8, 8, 5), (64, 64, 64)])
def test_orgqr_count_is_lawn_41s(m, n, k):
    """orgqr (m×n Q of k reflectors): 4mnk - 2(m + n)k² + 4k³/3 + 3nk - mk - k² - 4k/3."""
    expected = (4 * m * n * k - 2 * (m + n) * k ** 2 + Fraction(4, 3) * k ** 3 + 3 * n * k - m * k - k ** 2
                - Fraction(4, 3) * k)
    assert total(orgqr_counts(Fraction(m), Fraction(n), Fraction(k))) == expected


def test_complex_arithmetic_weighs_a_multiplication_6_and_an_addition_2():
    """cgetrf of n×n: 6·(n³/3 + 2n/3) multiplications + 2·(n³/3 - n²/2 + n/6) additions = 8n³/3 - n² + 13n/3."""
    n = 64
    assert lapack_flops("c", *getrf_counts(Fraction(n), Fraction(n))) == Fraction(8, 3) * n ** 3 - n ** 2 + Fraction(
        13, 3) * n
    assert lapack_flops("z", Fraction(1), Fraction(1)) == 8 and lapack_flops("d", Fraction(1), Fraction(1)) == 2


def test_svd_estimate_is_golub_and_van_loans_table():
    """Golub-Reinsch, m >= n: values 4mn² - 4n³/3; thin U, V 14mn² + 8n³; full U, V 4m²n + 8mn² + 9n³."""
    m, n = 80, 64
    assert gesdd_flops("s", m, n, "N") == round(4 * m * n ** 2 - Fraction(4, 3) * n ** 3)
    assert gesdd_flops("s", m, n, "S") == 14 * m * n ** 2 + 8 * n ** 3
    assert gesdd_flops("s", m, n, "A") == 4 * m ** 2 * n + 8 * m * n ** 2 + 9 * n ** 3
    assert gesdd_flops("s", n, m, "A") == gesdd_flops("s", m, n, "A")  # a wide matrix: its transpose
    assert gesdd_flops("c", m, n, "S") == 4 * gesdd_flops("s", m, n, "S")


def test_eigh_estimate_is_its_phases():
    """syevd with vectors: tridiagonal reduction (dopla's xSYTRD: 4/3·n³ + 7/2·n² - 17/6·n - 19), divide and
    conquer without deflation (4/3·n³) and the back-transformation (xORMQR of n-1 reflectors on n-1 × n rows:
    (n-1)·n·(n+1) + (n-1)·n·n); without vectors the reduction alone."""
    n = 64
    reduction = Fraction(4, 3) * n ** 3 + Fraction(7, 2) * n ** 2 - Fraction(17, 6) * n - 19
    assert syevd_flops("s", n, vectors=False) == reduction
    divide_and_conquer = round(Fraction(4, 3) * n ** 3)
    back_transformation = (n - 1) * n * (n + 1) + (n - 1) * n * n
    assert syevd_flops("s", n, vectors=True) == reduction + divide_and_conquer + back_transformation


def _lapack_ops(compiler) -> dict[str, int]:
    return {op.name: op.cost.flops for op in compiler.recount.ops if op.opcode == "custom-call"}


def _targets(compiler) -> list[str]:
    return [library_calls.custom_call_target(op.instruction) for op in compiler.recount.ops
            if op.opcode == "custom-call"]


def test_solve_recounts_its_lu_and_two_triangular_solves():
    n, rhs = 64, 3
    compiler = jc.compiled(jnp.linalg.solve, jax.ShapeDtypeStruct((n, n), jnp.float32),
                           jax.ShapeDtypeStruct((n, rhs), jnp.float32))
    assert sorted(_targets(compiler)) == ["lapack_sgetrf_ffi", "lapack_strsm_ffi", "lapack_strsm_ffi"]
    getrf = Fraction(2, 3) * n ** 3 - Fraction(1, 2) * n ** 2 + Fraction(5, 6) * n
    assert sorted(_lapack_ops(compiler).values()) == [n * n * rhs, n * n * rhs, getrf]
    assert compiler.unknown == []
    assert compiler.xla_reproduced("flops") and compiler.xla_reproduced("bytes_accessed")


def test_a_batch_counts_each_matrix():
    compiler = jc.compiled(jnp.linalg.cholesky, jax.ShapeDtypeStruct((2, 3, 16, 16), jnp.float32))
    (flops,) = _lapack_ops(compiler).values()
    n = 16
    assert flops == 6 * (Fraction(1, 3) * n ** 3 + Fraction(1, 2) * n ** 2 + Fraction(1, 6) * n)


def test_a_right_side_triangular_solve():
    compiler = jc.compiled(lambda a, b: jax.lax.linalg.triangular_solve(a, b, left_side=False, lower=True),
                           jax.ShapeDtypeStruct((6, 6), jnp.float32), jax.ShapeDtypeStruct((3, 6), jnp.float32))
    assert list(_lapack_ops(compiler).values()) == [3 * 6 * 6]


def test_float64_and_complex64_are_counted_in_their_own_precision():
    n = 32
    with jax.enable_x64(True):
        double = jc.compiled(jnp.linalg.cholesky, jax.ShapeDtypeStruct((n, n), jnp.float64))
    assert _targets(double) == ["lapack_dpotrf_ffi"] and double.unknown == []
    complex_ = jc.compiled(jnp.linalg.cholesky, jax.ShapeDtypeStruct((n, n), jnp.complex64))
    assert _targets(complex_) == ["lapack_cpotrf_ffi"]
    multiplications = Fraction(n ** 3, 6) + Fraction(n ** 2, 2) + Fraction(n, 3)
    additions = Fraction(n ** 3, 6) - Fraction(n, 6)
    assert list(_lapack_ops(complex_).values()) == [6 * multiplications + 2 * additions]


PROGRAMS = {
    "solve": (jnp.linalg.solve, [(64, 64), (64, 3)]),
    "cholesky": (jnp.linalg.cholesky, [(64, 64)]),
    "qr": (jnp.linalg.qr, [(80, 64)]),
    "eigh": (jnp.linalg.eigh, [(64, 64)]),
    "svd": (jnp.linalg.svd, [(80, 64)]),
    "inv": (jnp.linalg.inv, [(4, 32, 32)]),
    "solve_triangular": (lambda a, b: jsl.solve_triangular(a, b, lower=True), [(32, 32), (32, 4)]),
    "hessenberg": (jsl.hessenberg, [(16, 16)]),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_compare_of_linear_algebra_is_explained_with_xlas_minus_one_itemized(name):
    """The recount knows every LAPACK call; XLA reports -1 for each, an ``unknown`` item of the ``xla`` stage; every
    difference itemized, the verdict ``explained``."""
    function, shapes = PROGRAMS[name]
    comparison = jc.compare(function, *(jax.ShapeDtypeStruct(shape, jnp.float32) for shape in shapes), label=name)
    assert comparison.compiler.unknown == []
    calls = [name for name in comparison.compiler.xla_unknown if "(custom-call" in name]
    assert calls and all("(custom-call lapack_" in name for name in calls)
    minus_ones = [d for d in comparison.deltas if d.stage == "xla" and d.kind == "unknown"]
    assert len(minus_ones) == len(calls)
    library = [d for d in comparison.deltas if d.kind == "library"]
    assert library and all("LAPACK" in d.description for d in library)
    assert comparison.compiler.xla_reproduced("flops") and comparison.compiler.xla_reproduced("bytes_accessed")
    assert (comparison.flops_remainder, comparison.bytes_remainder) == (0, 0)
    assert comparison.verdict == "explained"
