"""Factorizations used by the slopes: Cholesky for Hessians, LU for KKT systems.

No explicit inverse, no pseudo-inverse and no damping: a matrix that cannot be factorized raises
a :class:`SingularSystemError` that says so, and an ill-conditioned one triggers an
:class:`IllConditionedWarning` carrying its condition number. The threshold is
:data:`ILL_CONDITIONED` = 1e12, stated here once: a warning is issued when the 1-norm condition
number of the matrix exceeds it (or is not finite), i.e. when a solve may have lost more than 12
of the 16 significant digits of double precision.

Condition numbers are LAPACK's 1-norm estimates (``dpocon`` / ``dgecon``) computed from the same
factorization, so they cost O(n^2) on top of the O(n^3) factorization; they agree with
``numpy.linalg.cond(A, 1)`` to within a small factor (usually exactly).

A symmetric positive definite matrix is factorized after a symmetric diagonal (Jacobi) scaling,
``D A D`` with ``D = diag(A)^{-1/2}``: an exact change of variables, not a damping, which makes
the solve as accurate as the scaled matrix is well-conditioned. Features on very different
scales (1e-8 next to 1e8, or next to the intercept column of ones) then cost no digits. The
condition number reported and compared with the threshold is still that of ``A`` itself (its
Cholesky factor is the scaled one with its columns multiplied back), so a badly scaled problem
is reported as such; :attr:`CholeskySolver.scaled_condition_number` says what the solve lost.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

__all__ = [
    "IllConditionedWarning",
    "SingularSystemError",
    "CholeskySolver",
    "BlockIdentitySolver",
    "LUSolver",
    "ILL_CONDITIONED",
]

#: The one threshold of the package: an :class:`IllConditionedWarning` is issued when the 1-norm
#: condition number of a factorized Hessian or KKT matrix exceeds it (or is not finite), as a
#: solve may then lose more than 12 of the 16 significant digits of double precision. Slopes and
#: grid rows report the condition number whatever its size.
ILL_CONDITIONED = 1e12


class IllConditionedWarning(UserWarning):
    """The Hessian or KKT matrix is close to singular; derivatives may be inaccurate.

    Issued when the 1-norm condition number exceeds :data:`ILL_CONDITIONED` (1e12) or is not
    finite; the message carries the condition number and the threshold.
    """


class SingularSystemError(np.linalg.LinAlgError):
    """The Hessian or KKT matrix could not be factorized (singular or not positive definite)."""


def _warn_if_ill_conditioned(cond: float, what: str, hint: str = "", stacklevel: int = 3) -> None:
    if not np.isfinite(cond) or cond > ILL_CONDITIONED:
        warnings.warn(
            f"{what} is ill-conditioned (1-norm condition number {cond:.3g} > "
            f"{ILL_CONDITIONED:.0e}); derivatives computed from it may have lost most of their "
            "digits" + (f"; {hint}" if hint else ""),
            IllConditionedWarning,
            stacklevel=stacklevel,
        )


#: What usually makes a Hessian ill-conditioned, appended to the warning.
_HESSIAN_HINT = (
    "features on very different scales (standardize them), duplicated or constant features "
    "with a huge C, or a huge C on (nearly) separable data usually cause this"
)


def _absolute_columns(A: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(|A|, its column sums), or SingularSystemError naming ``what`` for NaN or infinite
    entries: the sums are finite exactly when the entries are (up to an overflow of the sum,
    told apart by a second look at the entries), so one pass gives the 1-norm and the check."""
    absA = np.abs(A)
    columns = absA.sum(axis=0)
    if not np.all(np.isfinite(columns)) and not np.all(np.isfinite(A)):
        raise SingularSystemError(
            f"{what} has NaN or infinite entries (an overflow: features or C too large); "
            "no pseudo-inverse is substituted"
        )
    return absA, columns


class _SharedFactorization:
    """A factorization that several callers may share, each under its own name."""

    what: str

    def _forget_conditions(self) -> None:
        raise NotImplementedError

    def named(self, what: str):
        """This factorization under another name (``what``), for a caller that reuses it.

        Parameters
        ----------
        what : str
            The name in messages.

        Returns
        -------
        same type as self
            A shallow copy sharing the factors, whose condition numbers are estimated (and
            warned about, under the new name) on its first access: each caller of a shared
            factorization gets its own diagnosis.
        """
        other = copy.copy(self)
        other.what = what
        other._forget_conditions()
        return other


class CholeskySolver(_SharedFactorization):
    """Factorize a symmetric positive definite matrix once; solve for many right-hand sides.

    Parameters
    ----------
    A : ndarray of shape (n, n)
        Symmetric positive definite matrix (only its upper triangle is read).
    what : str, default="Hessian"
        Name used in messages ("Hessian", ...).
    single : bool, default=False
        Factorize in single precision (about 1.6x faster for a 540 x 540 Hessian), e.g. for
        the steps of an iteration whose convergence is checked in double precision. Solves
        then carry a relative error of about 6e-8 times the condition number, and no
        ill-conditioning warning is issued (the caller decides from ``condition_number``).
    estimate_condition : bool, default=True
        Estimate the condition numbers now (and warn now). With False they are estimated on
        first access of ``condition_number`` or ``scaled_condition_number`` (and the warning is
        issued then): for factorizations whose conditioning may never be read, such as the
        steps of a Newton fit, where the two estimates would cost as much as a third of the
        factorization (557 x 557: 2.8 ms next to 2.3 ms).

    Attributes
    ----------
    condition_number : float
        1-norm condition number estimate of ``A`` (inf when LAPACK reports it singular); an
        :class:`IllConditionedWarning` is issued above :data:`ILL_CONDITIONED` (1e12) when it
        is estimated.
    scaled_condition_number : float
        1-norm condition number estimate of the Jacobi-scaled matrix ``D A D`` that is
        factorized (``D = diag(A)^{-1/2}``): what governs the accuracy of the solves. About
        ``condition_number`` when ``A`` is well scaled, far smaller when its diagonal spans
        many orders of magnitude.
    anorm : float
        1-norm of ``A`` (its largest absolute column sum).
    n : int
        Order of ``A``.
    single : bool
        Whether the factor is single precision.
    what : str
        The matrix's name in messages.
    nbytes : int
        Memory held by the factor (bytes).

    Raises
    ------
    SingularSystemError
        If ``A`` is not positive definite in floating point, or has NaN or infinite entries
        (no pseudo-inverse and no damping is substituted).

    Warns
    -----
    IllConditionedWarning
        In double precision, when the condition number exceeds :data:`ILL_CONDITIONED` (1e12)
        or is not finite.
    """

    def __init__(
        self,
        A: np.ndarray,
        what: str = "Hessian",
        *,
        single: bool = False,
        estimate_condition: bool = True,
    ):
        A = np.asarray(A, dtype=np.float32 if single else np.float64)
        absA, columns = _absolute_columns(A, what)
        diag = A.diagonal()
        # Jacobi scaling D A D with D = diag(A)^(-1/2): an exact change of variables
        scale = (1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))).astype(A.dtype, copy=False)
        scaled = A * scale[:, None]
        scaled *= scale[None, :]
        # the column sums of |D A D| are d_j (|A|^T d)_j: a product, not another pass over A
        scaled_norm = float((scale * (absA.T @ scale)).max())
        del absA
        try:
            # upper on a C-ordered array is LAPACK's lower on its Fortran view: no transpose copy
            self._factor = sla.cho_factor(scaled, lower=False, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError as exc:
            raise SingularSystemError(
                f"{what} is not positive definite and cannot be Cholesky-factorized ({exc}); "
                "it is singular in floating point (e.g. every curvature weight is 0 or "
                "underflowed, so the intercept has no curvature); no pseudo-inverse and no "
                "damping is substituted: a smaller C or standardized features avoid it"
            ) from None
        self._scale = scale
        self._scaled_norm = scaled_norm
        self.anorm = float(columns.max())  # 1-norm: the largest column sum
        self.n = A.shape[0]
        self.single = single
        self.what = what
        self._conditions: tuple[float, float] | None = None
        if estimate_condition:
            self._estimate_conditions()

    def _estimate_conditions(self) -> tuple[float, float]:
        """(condition_number, scaled_condition_number), estimated once; warns when ill."""
        if self._conditions is None:
            pocon = lapack.spocon if self.single else lapack.dpocon
            scaled = _rcond_inverse(pocon(self._factor[0], self._scaled_norm, uplo="U"))
            # the Cholesky factor of A itself is R D^(-1): its columns multiplied back
            cond = _rcond_inverse(pocon(self.upper_factor(), self.anorm, uplo="U"))
            self._conditions = (cond, scaled)
            if not self.single:
                _warn_if_ill_conditioned(cond, self.what, _HESSIAN_HINT, stacklevel=4)
        return self._conditions

    @property
    def condition_number(self) -> float:
        """1-norm condition number estimate of ``A`` (see the class docstring)."""
        return self._estimate_conditions()[0]

    @property
    def scaled_condition_number(self) -> float:
        """1-norm condition number estimate of the Jacobi-scaled ``D A D`` that is factorized."""
        return self._estimate_conditions()[1]

    @property
    def nbytes(self) -> int:
        """Bytes held by the factor and the scaling."""
        return int(self._factor[0].nbytes + self._scale.nbytes)

    def _forget_conditions(self) -> None:
        self._conditions = None

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Return ``A^{-1} b`` for a vector or a matrix of right-hand sides.

        Parameters
        ----------
        b : ndarray of shape (n,) or (n, k)
            Right-hand side(s), one per column.

        Returns
        -------
        ndarray of float64, same shape as ``b``
            The solution(s), from the stored factor (in single precision when ``single``).
        """
        b = np.asarray(b, dtype=np.float32 if self.single else np.float64)
        scale = self._scale if b.ndim == 1 else self._scale[:, None]
        x = sla.cho_solve(self._factor, scale * b, check_finite=False)
        x *= scale
        return x.astype(np.float64, copy=False)

    def upper_factor(self) -> np.ndarray:
        """The Cholesky factor of ``A``.

        Returns
        -------
        ndarray of shape (n, n)
            The upper-triangular R with ``A = R^T R`` (float32 when ``single``): the factor of
            the scaled matrix with its columns multiplied back by ``diag(A)^{1/2}``.
        """
        return np.triu(self._factor[0]) / self._scale[None, :]


def _rcond_inverse(result) -> float:
    """1 / rcond from LAPACK's ``(rcond, info)``; inf when it reports a singular matrix."""
    rcond, info = result
    return float(np.inf if rcond == 0 or info != 0 else 1.0 / rcond)


class BlockIdentitySolver:
    """Solve with ``A = blkdiag(A_active, I)`` (up to a permutation) from a solver of ``A_active``.

    A feature that is zero in every training sample only meets the regularizer 1/2 w_j^2, so its
    rows and columns of the Hessian are those of the identity; solving the active block alone is
    exact and cheaper (MNIST 7 vs 1: 538 of 785 columns are active).

    Parameters
    ----------
    solver : CholeskySolver or another solver with ``solve`` and ``condition_number``
        Factorization of the active block.
    active : bool ndarray of shape (n,)
        Which rows/columns form the active block.

    Attributes
    ----------
    condition_number : float
        1-norm condition number estimate of ``A``: the active block's, widened to account for
        the identity block (norm 1, inverse norm 1) when the inner solver knows its 1-norm.
    inner : solver
        ``solver``.
    active : bool ndarray of shape (n,)
        ``active``.
    """

    def __init__(self, solver, active: np.ndarray):
        self._solver = solver
        self._active = active
        self.inner, self.active = solver, active

    @property
    def condition_number(self) -> float:
        """1-norm condition number estimate of ``A`` (see the class docstring)."""
        solver = self._solver
        if not hasattr(solver, "anorm") or self._active.all():  # e.g. a dual solver's own
            return solver.condition_number
        anorm = max(solver.anorm, 1.0)
        inv_norm = max(solver.condition_number / solver.anorm, 1.0)
        return float(anorm * inv_norm)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Return ``A^{-1} b``: the inner solve on the active rows, ``b`` itself on the others.

        Parameters
        ----------
        b : ndarray of shape (n,) or (n, k)
            Right-hand side(s), one per column.

        Returns
        -------
        ndarray of float64, same shape as ``b``
            The solution(s) (a new array).
        """
        out = np.array(b, dtype=float, copy=True)
        out[self._active] = self._solver.solve(b[self._active])
        return out


class LUSolver(_SharedFactorization):
    """Factorize a square (possibly indefinite) matrix once by LU with partial pivoting.

    Used for the bordered KKT systems of the SVMs, which are symmetric but indefinite. The
    matrix is first equilibrated symmetrically, ``D A D`` with a positive diagonal D chosen so
    that every row's largest entry is about 1 (Ruiz's iteration; a few passes), an exact change
    of variables: a kernel of entries 1e16 bordered by labels of size 1 then costs no digits.

    Parameters
    ----------
    A : ndarray of shape (n, n)
        The matrix (finite).
    what : str, default="KKT matrix"
        Name used in messages.
    estimate_condition : bool, default=True
        Estimate the condition number of ``A`` now (and warn now), else on first access of
        ``condition_number``: for a factorization whose solution is certified otherwise (the
        SVM polish's KKT check), where the estimate would cost a third of the work. The
        equilibrated matrix's estimate is always made: it decides numerical singularity.

    Attributes
    ----------
    condition_number : float
        1-norm condition number estimate of ``A`` itself; an :class:`IllConditionedWarning` is
        issued above :data:`ILL_CONDITIONED` (1e12) when it is estimated.
    scaled_condition_number : float
        1-norm condition number estimate of the equilibrated ``D A D`` that is factorized: what
        governs the accuracy of the solves.

    Raises
    ------
    SingularSystemError
        If ``A`` is exactly singular (a zero pivot) or numerically singular (the equilibrated
        matrix's condition number above 1e15, or infinite); no pseudo-inverse is substituted.

    Warns
    -----
    IllConditionedWarning
        When the condition number of ``A`` exceeds :data:`ILL_CONDITIONED` (1e12).
    """

    def __init__(self, A: np.ndarray, what: str = "KKT matrix", *, estimate_condition: bool = True):
        A = np.asarray(A, dtype=float)
        columns = _absolute_columns(A, what)[1]
        scale = _symmetric_equilibration(A)
        scaled = A * scale[:, None] * scale[None, :]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sla.LinAlgWarning)
            lu, piv = sla.lu_factor(scaled, check_finite=False)
        if np.any(np.diag(lu) == 0):
            raise SingularSystemError(
                f"{what} is exactly singular; no pseudo-inverse is substituted"
            )
        self._factor = (lu, piv)
        self._scale = scale
        scaled_norm = float(np.abs(scaled).sum(axis=0).max())
        self.scaled_condition_number = _rcond_inverse(lapack.dgecon(lu, scaled_norm, norm="1"))
        if self.scaled_condition_number > 1e15:
            raise SingularSystemError(
                f"{what} is numerically singular (1-norm condition number "
                f"{self.scaled_condition_number:.3g} after equilibration); no pseudo-inverse is "
                "substituted"
            )
        self.anorm = float(columns.max())  # 1-norm: the largest column sum
        self.what = what
        self._condition: float | None = None
        if estimate_condition:
            self._estimate_condition()

    def _estimate_condition(self) -> float:
        """The condition number of ``A``, estimated once; warns when it is ill-conditioned."""
        if self._condition is None:
            lu, piv = self._factor
            self._condition = _rcond_inverse(
                lapack.dgecon(_unscaled_lu(lu, piv, self._scale), self.anorm, norm="1")
            )
            _warn_if_ill_conditioned(self._condition, self.what, stacklevel=4)
        return self._condition

    @property
    def condition_number(self) -> float:
        """1-norm condition number estimate of ``A`` itself (see the class docstring)."""
        return self._estimate_condition()

    @property
    def nbytes(self) -> int:
        """Bytes held by the factors and the scaling."""
        lu, piv = self._factor
        return int(lu.nbytes + piv.nbytes + self._scale.nbytes)

    def _forget_conditions(self) -> None:
        self._condition = None

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Return ``A^{-1} b`` for a vector or a matrix of right-hand sides.

        Parameters
        ----------
        b : ndarray of shape (n,) or (n, k)
            Right-hand side(s), one per column.

        Returns
        -------
        ndarray of shape (n,) or (n, k)
            The solution(s).
        """
        b = np.asarray(b, dtype=float)
        scale = self._scale if b.ndim == 1 else self._scale[:, None]
        x = sla.lu_solve(self._factor, scale * b, check_finite=False)
        x *= scale
        return x


#: Passes of :func:`_symmetric_equilibration` at most (each halves the rows' log-imbalance).
_EQUILIBRATION_PASSES = 12


def _symmetric_equilibration(A: np.ndarray) -> np.ndarray:
    """A positive diagonal D (as a vector) with every row of ``D |A| D`` of largest entry ~ 1.

    Ruiz's iteration, symmetric: D <- D / sqrt(max_j |D A D|_ij), each pass halving the spread
    of the rows' maxima in the log; powers of 2, so the scaling itself is exact. Zero rows keep
    the scale 1.
    """
    scale = np.ones(A.shape[0])
    absA = np.abs(A)
    for _ in range(_EQUILIBRATION_PASSES):
        rows = (absA * scale[None, :]).max(axis=1) * scale
        step = np.round(0.5 * np.log2(np.where(rows > 0, rows, 1.0)))
        if not step.any():  # every row's maximum in [1/2, 2]: a fixed point, passes are done
            break
        scale = scale * np.exp2(-step)
    return scale


def _unscaled_lu(lu: np.ndarray, piv: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The LU factors of A (same pivoting) from those of ``D A D`` (D = diag(scale)).

    With ``(D A D)[perm] = L U``, ``A[perm] = (E L E^-1)(E U D^-1)``, E = diag(1/scale[perm]):
    a unit lower and an upper triangular factor, packed as LAPACK packs them.
    """
    perm = np.arange(lu.shape[0])
    for i, p in enumerate(piv):
        perm[i], perm[p] = perm[p], perm[i]
    e = 1.0 / scale[perm]
    lower = np.tril(lu, -1) * e[:, None] / e[None, :]
    upper = np.triu(lu) * e[:, None] / scale[None, :]
    return lower + upper
