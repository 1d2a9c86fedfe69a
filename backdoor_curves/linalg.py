"""Factorizations used by the slopes: Cholesky for Hessians, LU for KKT systems.

No explicit inverse and no pseudo-inverse: a matrix that cannot be factorized raises a
:class:`SingularSystemError` that says so, and an ill-conditioned one triggers an
:class:`IllConditionedWarning` carrying its condition number.

Condition numbers are LAPACK's 1-norm estimates (``dpocon`` / ``dgecon``) computed from the same
factorization, so they cost O(n^2) on top of the O(n^3) factorization; they agree with
``numpy.linalg.cond(A, 1)`` to within a small factor (usually exactly).
"""

from __future__ import annotations

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

#: Condition number above which a warning is issued (about 1/sqrt(machine epsilon) squared-ish:
#: a solve then loses more than 12 of the 16 significant digits).
ILL_CONDITIONED = 1e12


class IllConditionedWarning(UserWarning):
    """The Hessian or KKT matrix is close to singular; derivatives may be inaccurate."""


class SingularSystemError(np.linalg.LinAlgError):
    """The Hessian or KKT matrix could not be factorized (singular or not positive definite)."""


def _warn_if_ill_conditioned(cond: float, what: str) -> None:
    if not np.isfinite(cond) or cond > ILL_CONDITIONED:
        warnings.warn(
            f"{what} is ill-conditioned (1-norm condition number {cond:.3g}); "
            "derivatives computed from it may have lost most of their digits",
            IllConditionedWarning,
            stacklevel=3,
        )


class CholeskySolver:
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

    Attributes
    ----------
    condition_number : float
        1-norm condition number estimate of ``A`` (inf when LAPACK reports it singular).
    anorm : float
        1-norm of ``A`` (its largest absolute column sum).
    n : int
        Order of ``A``.
    single : bool
        Whether the factor is single precision.

    Raises
    ------
    SingularSystemError
        If ``A`` is not positive definite (no pseudo-inverse is substituted).

    Warns
    -----
    IllConditionedWarning
        In double precision, when the condition number exceeds :data:`ILL_CONDITIONED` or is
        not finite.
    """

    def __init__(self, A: np.ndarray, what: str = "Hessian", *, single: bool = False):
        if single:
            A = A.astype(np.float32)
        anorm = float(np.abs(A).sum(axis=0).max())  # 1-norm: max column sum (A symmetric)
        try:
            # upper on a C-ordered array is LAPACK's lower on its Fortran view: no transpose copy
            self._factor = sla.cho_factor(A, lower=False, check_finite=True)
        except np.linalg.LinAlgError as exc:
            raise SingularSystemError(
                f"{what} is not positive definite and cannot be Cholesky-factorized ({exc}); "
                "no pseudo-inverse is substituted"
            ) from None
        self.anorm = anorm
        self.n = A.shape[0]
        self.single = single
        pocon = lapack.spocon if single else lapack.dpocon
        rcond, info = pocon(self._factor[0], anorm, uplo="U")
        self.condition_number = float(np.inf if rcond == 0 or info != 0 else 1.0 / rcond)
        if not single:
            _warn_if_ill_conditioned(self.condition_number, what)

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
        if self.single:
            b = np.asarray(b, dtype=np.float32)
        return sla.cho_solve(self._factor, b, check_finite=False).astype(np.float64, copy=False)

    def upper_factor(self) -> np.ndarray:
        """The Cholesky factor of ``A``.

        Returns
        -------
        ndarray of shape (n, n)
            The upper-triangular R with ``A = R^T R`` (float32 when ``single``).
        """
        return np.triu(self._factor[0])


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
        if not hasattr(solver, "anorm") or active.all():  # e.g. a dual solver: its own estimate
            self.condition_number = solver.condition_number
        else:
            anorm = max(solver.anorm, 1.0)
            inv_norm = max(solver.condition_number / solver.anorm, 1.0)
            self.condition_number = float(anorm * inv_norm)

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


class LUSolver:
    """Factorize a square (possibly indefinite) matrix once by LU with partial pivoting.

    Used for the bordered KKT systems of the SVMs, which are symmetric but indefinite.

    Parameters
    ----------
    A : ndarray of shape (n, n)
        The matrix (finite).
    what : str, default="KKT matrix"
        Name used in messages.

    Attributes
    ----------
    condition_number : float
        1-norm condition number estimate of ``A``.

    Raises
    ------
    SingularSystemError
        If ``A`` is exactly singular (a zero pivot) or numerically singular (condition number
        above 1e15); no pseudo-inverse is substituted.

    Warns
    -----
    IllConditionedWarning
        When the condition number exceeds :data:`ILL_CONDITIONED`.
    """

    def __init__(self, A: np.ndarray, what: str = "KKT matrix"):
        anorm = float(np.abs(A).sum(axis=0).max())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sla.LinAlgWarning)
            lu, piv = sla.lu_factor(A, check_finite=True)
        if np.any(np.diag(lu) == 0):
            raise SingularSystemError(
                f"{what} is exactly singular; no pseudo-inverse is substituted"
            )
        self._factor = (lu, piv)
        rcond, info = lapack.dgecon(lu, anorm, norm="1")
        self.condition_number = float(np.inf if rcond == 0 or info != 0 else 1.0 / rcond)
        if self.condition_number > 1e15:
            raise SingularSystemError(
                f"{what} is numerically singular (1-norm condition number "
                f"{self.condition_number:.3g}); no pseudo-inverse is substituted"
            )
        _warn_if_ill_conditioned(self.condition_number, what)

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
        return sla.lu_solve(self._factor, b, check_finite=False)
