"""Smooth linear learners: logistic regression and ridge, fitted by Newton's method.

Objective (DESIGN §3), theta = [w, b], f(x) = w.x + b, labels y in {-1, +1}:

    J(theta) = C * sum_i s_i l(y_i, f(x_i)) + 1/2 ||w||^2

    grad J   = C * Xa^T (s * l')  + [w, 0]
    Hess J   = C * Xa^T diag(s * l'') Xa + diag(1, ..., 1, 0)

with ``Xa = [X, 1]``. Logistic regression (l = log(1 + exp(-y f))) is exactly
``sklearn.linear_model.LogisticRegression(C)``; ridge (l = (y - f)^2, C = 1/(2 alpha)) is exactly
``sklearn.linear_model.RidgeClassifier(alpha)``, whose objective ``sum s_i (y_i - f_i)^2 +
alpha ||w||^2`` is J multiplied by 2 alpha. Newton's method with the closed-form Hessian and a
backtracking line search converges quadratically; for the squared loss one step is exact.
"""

from __future__ import annotations

import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from .._identity import IdentityMemo
from .._memory import check_matrix_size
from .._param_validation import Interval
from .._validation import check_same_length, check_sample_weight
from ..data import BackdoorData
from ..linalg import BlockIdentitySolver, CholeskySolver, SingularSystemError
from ..losses import LOGISTIC, SQUARED, Loss
from .base import BaseLearner, SlopeTerms
from .pairwise import memoized
from .registry import register_learner

__all__ = [
    "LogisticLearner",
    "RidgeLearner",
    "augment",
    "smooth_objective",
    "smooth_gradient",
    "smooth_hessian",
    "curvature_hessian",
    "hessian_solver",
    "quadratic_solver",
    "DualHessianSolver",
    "newton_fit",
    "smooth_slope",
]


def augment(X: np.ndarray) -> np.ndarray:
    """Append the intercept column: ``[X, 1]``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs.

    Returns
    -------
    ndarray of shape (n_samples, n_features + 1)
        ``Xa``: ``X`` with a last column of ones, so that f = Xa theta with theta = [w, b].
        For a read-only ``X`` (a :class:`~backdoor_curves.data.BackdoorData` array) it is
        built once while ``X`` lives and shared, read-only.
    """
    return _AUGMENTED.get(X, lambda: np.hstack([X, np.ones((X.shape[0], 1))]))


_AUGMENTED = IdentityMemo("inputs with an intercept column")
_ROWS = IdentityMemo("rows of positive weight")
_ACTIVE = IdentityMemo("active columns")


def weighted_rows(X: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``augment(X)[keep]``: the augmented rows a fit uses (shared while a read-only X lives).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs.
    keep : ndarray of bool, shape (n,)
        The rows of positive weight.

    Returns
    -------
    ndarray of shape (keep.sum(), d + 1)
    """
    if keep.all():
        return augment(X)
    return _ROWS.get(X, lambda: augment(X[keep]), key=keep.tobytes())


def active_columns(Xa: np.ndarray) -> np.ndarray:
    """Columns of ``Xa`` that are non-zero in some sample (the intercept column always is).

    For the others w_j = 0 at every optimum and their Hessian block is the identity.
    """
    active = np.any(Xa != 0, axis=0)
    active[-1] = True
    return active


def active_block(Xa: np.ndarray, sw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`active_columns` over the rows of positive weight ``sw``, and ``Xa[:, active]``
    (``Xa`` itself when every column is active).

    Kept while a read-only ``Xa`` whose rows all have positive weight lives (e.g. from
    :func:`augment`): every fit and slope of a grid on one data set reduces the same matrix.
    """
    if sw.min() <= 0:
        active = active_columns(Xa[sw > 0])
        return active, Xa[:, active]

    def compute():
        active = active_columns(Xa)
        active.flags.writeable = False
        block = Xa if active.all() else Xa[:, active]
        return active, block

    return _ACTIVE.get(Xa, compute)


def smooth_objective(theta, Xa, y, sw, C: float, loss: Loss) -> float:
    """J(theta) = C sum_i s_i l(y_i, Xa_i theta) + 1/2 ||w||^2 (intercept unpenalized).

    Parameters
    ----------
    theta : ndarray of shape (p,)
        Parameters [w, b], intercept last.
    Xa : ndarray of shape (n, p)
        Inputs with the intercept column last (:func:`augment`).
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    sw : ndarray of shape (n,)
        Non-negative sample weights s_i.
    C : float
        Loss weight (lambda = 1/C).
    loss : Loss
        The per-sample loss l.

    Returns
    -------
    float
        The objective J(theta).
    """
    return _objective(theta, Xa @ theta, y, sw, C, loss)


def smooth_gradient(theta, Xa, y, sw, C: float, loss: Loss) -> np.ndarray:
    """grad J(theta) = C Xa^T (s * l') + [w, 0].

    Parameters
    ----------
    theta : ndarray of shape (p,)
        Parameters [w, b], intercept last.
    Xa : ndarray of shape (n, p)
        Inputs with the intercept column last (:func:`augment`).
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    sw : ndarray of shape (n,)
        Non-negative sample weights s_i.
    C : float
        Loss weight (lambda = 1/C).
    loss : Loss
        The per-sample loss l (``loss.d1`` is used).

    Returns
    -------
    ndarray of shape (p,)
        The gradient of J at ``theta``.
    """
    return _gradient(theta, Xa @ theta, Xa, y, sw, C, loss)


def _objective(theta, f, y, sw, C, loss) -> float:
    """J at theta, given its decision values ``f = Xa theta``."""
    w = theta[:-1]
    return float(C * (sw @ loss.value(y, f)) + 0.5 * (w @ w))


def _gradient(theta, f, Xa, y, sw, C, loss) -> np.ndarray:
    """grad J at theta, given ``f = Xa theta``."""
    g = C * (Xa.T @ (sw * loss.d1(y, f)))
    g[:-1] += theta[:-1]
    return g


def curvature_hessian(Xa: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``Xa^T diag(d) Xa + diag(1, ..., 1, 0)`` for curvature weights d >= 0, in Xa's dtype.

    Parameters
    ----------
    Xa : ndarray of shape (n, p)
        Inputs with the intercept column last.
    d : ndarray of shape (n,)
        Curvature weights C s_i l''_i >= 0 (their square roots are taken).

    Returns
    -------
    ndarray of shape (p, p)
        The Hessian of J: the regularizer adds 1 on the diagonal except for the intercept.
    """
    check_matrix_size((Xa.shape[1], Xa.shape[1]), "the Hessian")
    A = Xa * np.sqrt(d)[:, None]
    H = A.T @ A  # numpy recognises A.T @ A and calls the symmetric rank-k update (syrk)
    idx = np.arange(Xa.shape[1] - 1)
    H[idx, idx] += 1.0
    return H


def weighted_gram(Xa: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``Xa^T diag(w) Xa`` for weights w >= 0 (as ``A^T A`` with ``A = diag(sqrt(w)) Xa``).

    Parameters
    ----------
    Xa : ndarray of shape (n, p)
        Inputs (intercept column last).
    w : ndarray of shape (n,)
        Non-negative weights.

    Returns
    -------
    ndarray of shape (p, p)
    """
    check_matrix_size((Xa.shape[1], Xa.shape[1]), "the Hessian's Gram matrix")
    A = Xa * np.sqrt(w)[:, None]
    return A.T @ A  # numpy recognises A.T @ A and calls the symmetric rank-k update (syrk)


def quadratic_hessian(Xa: np.ndarray, base: np.ndarray, C: float) -> np.ndarray:
    """Hess J = C Xa^T diag(base) Xa + diag(1, ..., 1, 0) of a quadratic loss (ridge).

    The curvature of a quadratic loss does not depend on theta, so ``Xa^T diag(base) Xa``
    depends on the data alone: inside a
    :func:`~backdoor_curves.learners.pairwise.shared_pairwise` block it is computed once per
    data set and shared by every fit and slope of a grid along C (or alpha).

    Parameters
    ----------
    Xa : ndarray of shape (n, p)
        Inputs with the intercept column last.
    base : ndarray of shape (n,)
        ``s_i l''_i`` (sample weight times the loss's constant curvature), >= 0.
    C : float
        Loss weight (lambda = 1/C).

    Returns
    -------
    ndarray of shape (p, p)
    """
    H = C * memoized("weighted_gram", (Xa, base), weighted_gram)
    idx = np.arange(Xa.shape[1] - 1)
    H[idx, idx] += 1.0
    return H


def quadratic_solver(Xa: np.ndarray, base: np.ndarray, C: float, what: str = "Hessian"):
    """The factorization of a quadratic loss's Hessian (:func:`quadratic_hessian`).

    A Cholesky factorization of H, or with more features than rows :class:`DualHessianSolver`.

    Inside a :func:`~backdoor_curves.learners.pairwise.shared_pairwise` block it is memoized
    per data, weights and C: the fit at beta = 0 and the slope of the same grid point factorize
    the same matrix H0, so the slope reuses the fit's factor (bit for bit the matrix it would
    have built). The condition numbers are estimated on first access, under the name ``what``.

    Parameters
    ----------
    Xa : ndarray of shape (n, p)
        Inputs with the intercept column last.
    base : ndarray of shape (n,)
        ``s_i l''_i`` (sample weight times the loss's constant curvature), >= 0.
    C : float
        Loss weight (lambda = 1/C).
    what : str, default="Hessian"
        The matrix's name in messages.

    Returns
    -------
    CholeskySolver or DualHessianSolver

    Raises
    ------
    backdoor_curves.linalg.SingularSystemError
        If the Hessian (or its dual matrix) is not positive definite in floating point.
    """

    def factorize(Xa, base, c):
        if Xa.shape[1] - 1 > Xa.shape[0]:  # more features than rows: the n x n dual form
            return DualHessianSolver(Xa, float(c[0]) * base, what=what, estimate_condition=False)
        H = quadratic_hessian(Xa, base, float(c[0]))
        return CholeskySolver(H, what, estimate_condition=False)

    return memoized("quadratic_solver", (Xa, base, np.array([C])), factorize).named(what)


def smooth_hessian(theta, Xa, y, sw, C: float, loss: Loss) -> np.ndarray:
    """Hess J(theta) = C Xa^T diag(s * l'') Xa + diag(1, ..., 1, 0).

    Parameters
    ----------
    theta : ndarray of shape (p,)
        Parameters [w, b], intercept last.
    Xa : ndarray of shape (n, p)
        Inputs with the intercept column last (:func:`augment`).
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    sw : ndarray of shape (n,)
        Non-negative sample weights s_i.
    C : float
        Loss weight (lambda = 1/C).
    loss : Loss
        The per-sample loss l (``loss.d2`` is used; it must be convex).

    Returns
    -------
    ndarray of shape (p, p)
        The Hessian of J at ``theta``.
    """
    # d >= 0 for convex losses and non-negative weights
    return curvature_hessian(Xa, C * sw * loss.d2(y, Xa @ theta))


def hessian_solver(Xa: np.ndarray, d: np.ndarray, what: str = "Hessian"):
    """A solver (``.solve``, ``.condition_number``) for ``H = Xa^T diag(d) Xa + diag(1,..,1,0)``.

    A Cholesky factorization of H when there are at most as many features as samples, else
    :class:`DualHessianSolver` (an n x n factorization). Both are exact.

    Parameters
    ----------
    Xa : ndarray of shape (n, p)
        Inputs with the intercept column last.
    d : ndarray of shape (n,)
        Curvature weights C s_i l''_i >= 0.
    what : str, default="Hessian"
        Name of the matrix in messages.

    Returns
    -------
    CholeskySolver or DualHessianSolver
        With ``solve(r)`` (H^{-1} r) and ``condition_number`` (1-norm; of the n x n dual matrix
        for the dual solver).

    Raises
    ------
    backdoor_curves.linalg.SingularSystemError
        If H (or the dual matrix) cannot be factorized.
    """
    n, p = Xa.shape
    if p - 1 > n:
        return DualHessianSolver(Xa, d, what=what)
    return CholeskySolver(curvature_hessian(Xa, d), what)


#: Condition number up to which :func:`newton_fit` may factorize its Hessian in single precision.
SINGLE_PRECISION_MAX_COND = 1e5


def _dual_name(what: str) -> str:
    return f"dual matrix I + A A^T of the {what}"


def _rows_gram(X: np.ndarray) -> np.ndarray:
    """``X X^T``, memoized per data set inside a shared-pairwise block (shared: not modified)."""
    check_matrix_size((X.shape[0], X.shape[0]), "the dual Hessian's Gram matrix X X^T")
    return memoized("rows_gram", (X,), lambda X: X @ X.T)


class DualHessianSolver:
    """Solve with the Hessian of J through an n x n system, for more features than samples.

    H = [[I + X^T D X, X^T d], [d^T X, sum(d)]] with d = C s l'' (X without the intercept
    column). Eliminating the intercept centres X with the weights d (x_bar = X^T d / sum(d),
    Xc = X - 1 x_bar^T): the w-block is I + A^T A with A = D^{1/2} Xc, and by Woodbury

        (I + A^T A)^{-1} = I - A^T (I + A A^T)^{-1} A,

    one Cholesky factorization of the n x n matrix I + A A^T (O(n^3) instead of O(p^3)). A A^T
    comes from the Gram matrix K = X X^T (O(n^2 p), computed once and reused while the rows stay
    the same) as D^{1/2} (K - k 1^T - 1 k^T + |x_bar|^2 1 1^T) D^{1/2}, k = X x_bar = K d / sum(d).
    A solve costs three products with X.

    Parameters
    ----------
    Xa : ndarray of shape (n, p + 1)
        Inputs with the intercept column last.
    d : ndarray of shape (n,)
        Non-negative curvature weights C s_i l''_i (zero rows are allowed).
    gram : ndarray of shape (n, n), optional
        ``X X^T`` if already computed for these rows; else computed, or inside a
        :func:`~backdoor_curves.learners.pairwise.shared_pairwise` block taken from the data
        set's memo (every fit and slope of a grid on the same rows shares one).
    what : str, default="Hessian"
        Name of the matrix in messages.
    estimate_condition : bool, default=True
        Estimate the condition number now, else on first access (see
        :class:`~backdoor_curves.linalg.CholeskySolver`).

    Attributes
    ----------
    condition_number : float
        1-norm condition number estimate of the dual matrix I + A A^T (not of H itself).
    gram : ndarray of shape (n, n)
        ``X X^T``, reusable for the same rows (:meth:`reusable_gram`).

    Raises
    ------
    backdoor_curves.linalg.SingularSystemError
        If every curvature weight is 0 (the intercept block of H is zero).
    """

    single = False

    def __init__(
        self,
        Xa: np.ndarray,
        d: np.ndarray,
        gram: np.ndarray | None = None,
        *,
        what="Hessian",
        estimate_condition: bool = True,
    ):
        X = Xa[:, :-1]
        total = float(d.sum())
        if not total > 0:
            raise SingularSystemError(
                f"the {what}'s intercept block is zero: every curvature weight C s_i l''_i is 0 "
                "(they underflow when every margin y f is huge: separable data with a huge C), "
                "so the intercept has no curvature and the Hessian is singular; no "
                "pseudo-inverse and no damping is substituted: use a smaller C"
            )
        self.Xa, self.X, self.d, self.total = Xa, X, d, total
        self.n = Xa.shape[1]
        self.gram = _rows_gram(X) if gram is None else gram
        k = self.gram @ d / total
        root = np.sqrt(d)
        M = self.gram - k[:, None] - k[None, :] + (d @ k) / total
        M *= root[:, None] * root[None, :]
        M[np.diag_indices_from(M)] += 1.0
        self.inner = CholeskySolver(M, _dual_name(what), estimate_condition=estimate_condition)
        self.root, self.x_bar = root, X.T @ d / total

    @property
    def condition_number(self) -> float:
        """1-norm condition number estimate of the dual matrix I + A A^T (on first access)."""
        return self.inner.condition_number

    @property
    def nbytes(self) -> int:
        """Bytes held by the factor (the Gram matrix and X are shared with their owners)."""
        return self.inner.nbytes + self.root.nbytes + self.x_bar.nbytes

    def named(self, what: str) -> DualHessianSolver:
        """This factorization under another name (see :meth:`CholeskySolver.named`).

        Parameters
        ----------
        what : str
            The Hessian's name in messages.

        Returns
        -------
        DualHessianSolver
        """
        other = copy.copy(self)
        other.inner = self.inner.named(_dual_name(what))
        return other

    def reusable_gram(self, Xa: np.ndarray) -> np.ndarray | None:
        """This solver's ``X X^T`` if ``Xa`` has the same rows, else None.

        Parameters
        ----------
        Xa : ndarray of shape (n, p + 1)
            Inputs of the next factorization, intercept column last.

        Returns
        -------
        ndarray of shape (n, n) or None
            The stored Gram matrix when ``Xa`` equals the rows this solver was built on.
        """
        same = Xa.shape == self.Xa.shape and (Xa is self.Xa or np.array_equal(Xa, self.Xa))
        return self.gram if same else None

    def solve(self, r: np.ndarray) -> np.ndarray:
        """Return ``H^{-1} r`` by three products with X and one n x n Cholesky solve.

        Parameters
        ----------
        r : ndarray of shape (p + 1,) or (p + 1, k)
            Right-hand side(s), intercept entry last.

        Returns
        -------
        ndarray of the shape of ``r``
            The solution(s).
        """
        X, x_bar = self.X, self.x_bar[:, None]
        R = np.asarray(r, dtype=float).reshape(r.shape[0], -1)
        root = self.root[:, None]
        q = R[:-1] - x_bar * R[-1]
        Aq = root * (X @ q - x_bar.T @ q)
        v = root * self.inner.solve(Aq)
        u = q - (X.T @ v - x_bar * v.sum(axis=0))
        out = np.vstack([u, (R[-1] - self.d @ (X @ u)) / self.total])
        return out.reshape(r.shape)


def _factorize_hessian(theta, Xa, y, sw, C, loss, single: bool, previous=None, f=None):
    """Factorization of the Hessian: in the dual (:class:`DualHessianSolver`) when there are
    more features than samples, else a Cholesky factorization, in single precision if asked and
    well-conditioned. ``previous`` is the last solver (its Gram matrix may be reused).

    Returns the solver and whether single precision may be tried again.
    """
    n, p = Xa.shape
    d = C * sw * loss.d2(y, Xa @ theta if f is None else f)  # curvature weights
    if loss.quadratic:  # the curvature does not depend on theta: share the data's Gram matrix
        base = sw * loss.d2(y, Xa @ theta if f is None else f)
        return quadratic_solver(Xa, base, C), False
    if p - 1 > n:  # conditioning is reported by the slope, not here: estimated if asked
        gram = previous.reusable_gram(Xa) if isinstance(previous, DualHessianSolver) else None
        return DualHessianSolver(Xa, d, gram, estimate_condition=False), single
    if single:
        try:
            solver = CholeskySolver(
                curvature_hessian(Xa.astype(np.float32), d.astype(np.float32)), single=True
            )
            if solver.condition_number <= SINGLE_PRECISION_MAX_COND:
                return solver, True
        except SingularSystemError:
            pass
    # conditioning is reported by the slope, not here: estimated only if someone asks
    return CholeskySolver(curvature_hessian(Xa, d), estimate_condition=False), False


#: A cold Newton fit first runs L-BFGS until the gradient is this much smaller than at 0 ...
QUASI_NEWTON_REDUCTION = 1e-4
#: ... or for at most this many iterations.
QUASI_NEWTON_MAX_ITER = 200


def _quasi_newton_start(Xa, y, sw, C, loss) -> tuple[np.ndarray, int]:
    """A starting point for Newton from zero: L-BFGS until ``max|grad|`` falls 1e4-fold.

    Far from the optimum Newton's steps are damped and each costs a Hessian (O(n p^2)) and a
    factorization (O(p^3)); L-BFGS steps cost two products with ``Xa`` (O(n p)). On MNIST
    7 vs 1 this cuts a cold fit from 7 Hessians to 1 at C = 1 (24 to 4 at C = 100). Newton
    then converges to the same optimum: the start changes the work, not the answer.
    """

    def fun(theta):
        return (
            smooth_objective(theta, Xa, y, sw, C, loss),
            smooth_gradient(theta, Xa, y, sw, C, loss),
        )

    zero = np.zeros(Xa.shape[1])
    g0 = np.max(np.abs(fun(zero)[1]))
    result = minimize(
        fun, zero, jac=True, method="L-BFGS-B",
        options={"maxiter": QUASI_NEWTON_MAX_ITER, "gtol": QUASI_NEWTON_REDUCTION * g0,
                 "ftol": 0.0},
    )  # fmt: skip
    if not np.all(np.isfinite(result.x)):
        return zero, result.nit
    return result.x, result.nit


def newton_fit(
    Xa: np.ndarray,
    y: np.ndarray,
    sw: np.ndarray,
    C: float,
    loss: Loss,
    theta0: np.ndarray | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    return_solver: bool = False,
    solver0=None,
    single: bool = False,
):
    """Minimise J by Newton's method with a backtracking (Armijo) line search.

    Near the optimum a factorization is reused (simplified-Newton / chord steps: one gradient
    and two triangular solves each) for as long as the steps shrink at least 4-fold and J does
    not increase; otherwise the Hessian is rebuilt and factorized. Stops when a step ``p``
    satisfies ``max|p| <= tol * (1 + max|theta|)`` and takes it (from a fresh factorization, or
    after at least one verified contraction of the reused one). A warm start ``theta0`` whose
    line search fails far from the optimum (a start deep in the loss's linear region, e.g. the
    separable fit at beta = 0 with a huge C, where no step length resolves Newton's step) is
    abandoned once for a cold start; the Hessians are factorized after an exact diagonal
    scaling (:class:`~backdoor_curves.linalg.CholeskySolver`), nothing is damped.

    Parameters
    ----------
    Xa : ndarray of shape (n, p)
        Inputs with the intercept column last (:func:`augment`).
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    sw : ndarray of shape (n,)
        Non-negative sample weights s_i (a zero weight removes the row from J).
    C : float
        Loss weight (lambda = 1/C).
    loss : Loss
        The per-sample loss l (convex, twice differentiable).
    theta0 : ndarray of shape (p,), optional
        Starting point. By default zeros, improved by a few L-BFGS steps for non-quadratic
        losses (:func:`_quasi_newton_start`).
    tol : float, default=1e-10
        Stopping rule: a step ``p`` with ``max|p| <= tol * (1 + max|theta|)``.
    max_iter : int, default=100
        Maximum number of steps (chord steps included); a ``ConvergenceWarning`` when reached.
    return_solver : bool, default=False
        Also return the last factorization (e.g. for the tangent of a path predictor).
    solver0 : solver, optional
        A factorization of a nearby Hessian (e.g. at the previous beta of a path) to start with
        chord steps.
    single : bool, default=False
        Build and factorize the Hessian in single precision while its condition number is below
        :data:`SINGLE_PRECISION_MAX_COND` (a step is then accurate to about 1e-2, so Newton
        converges linearly at that rate; gradients, objective and the stopping rule stay in
        double precision, so the optimum is the same). Not for quadratic losses, whose single
        step must be exact.

    Returns
    -------
    theta : ndarray of shape (p,)
        The minimiser [w, b]; w_j is exactly 0 where column j of ``Xa`` is zero in every row of
        positive weight.
    n_iter : int
        Number of steps taken (L-BFGS warm-up iterations included).
    solver : CholeskySolver, DualHessianSolver or BlockIdentitySolver
        Only if ``return_solver``: the last factorization (not necessarily at the returned
        point).

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        When ``max_iter`` is reached or the line search fails far from the optimum.
    """
    if single and getattr(getattr(solver0, "inner", solver0), "single", True) is False:
        single = False  # the previous fit of a path needed double precision: so will this one
    active, Xa_active = active_block(Xa, sw)
    if not active.all():  # w_j = 0 exactly on all-zero columns: solve the active block only
        inner0 = None
        if isinstance(solver0, BlockIdentitySolver) and np.array_equal(solver0.active, active):
            inner0 = solver0.inner
        out = newton_fit(
            Xa_active, y, sw, C, loss, None if theta0 is None else theta0[active],
            tol=tol, max_iter=max_iter, return_solver=return_solver, solver0=inner0,
            single=single,
        )  # fmt: skip
        theta = np.zeros(Xa.shape[1])
        theta[active] = out[0]
        if return_solver:
            return theta, out[1], BlockIdentitySolver(out[2], active)
        return theta, out[1]
    if isinstance(solver0, BlockIdentitySolver) or (
        solver0 is not None and getattr(solver0, "n", Xa.shape[1]) != Xa.shape[1]
    ):
        solver0 = None
    warmup = 0  # L-BFGS iterations before Newton (counted in n_iter)
    warm = theta0 is not None and not loss.quadratic
    if theta0 is None and not loss.quadratic:
        theta0, warmup = _quasi_newton_start(Xa, y, sw, C, loss)
    theta = np.zeros(Xa.shape[1]) if theta0 is None else np.array(theta0, dtype=float)
    f = Xa @ theta  # decision values, kept with theta
    J = _objective(theta, f, y, sw, C, loss)
    solver, reuse, last = solver0, solver0 is not None, np.inf

    def done(theta, it):
        it += warmup
        return (theta, it, solver) if return_solver else (theta, it)

    for it in range(1, max_iter + 1):
        g = _gradient(theta, f, Xa, y, sw, C, loss)
        if reuse and not loss.quadratic:
            p = -solver.solve(g)
            size = np.max(np.abs(p))
            if size <= tol * (1.0 + np.max(np.abs(theta))) and np.isfinite(last):
                return done(theta + p, it)
            if size <= 0.25 * last or not np.isfinite(last):
                candidate = theta + p
                f_new = Xa @ candidate
                J_new = _objective(candidate, f_new, y, sw, C, loss)
                if np.isfinite(size) and J_new <= J + 1e-12 * abs(J):
                    theta, f, J, last = candidate, f_new, J_new, size
                    continue
        solver, single = _factorize_hessian(theta, Xa, y, sw, C, loss, single, solver, f)
        p = -solver.solve(g)
        size = np.max(np.abs(p))
        if loss.quadratic or size <= tol * (1.0 + np.max(np.abs(theta))):
            # a full step on a quadratic is exact; near the optimum the full Newton step leaves
            # an error of order |p|^2 (no line search: J no longer resolves such changes)
            return done(theta + p, it)
        step, slope = 1.0, g @ p
        if -slope <= 1e-10 * (1.0 + abs(J)):
            # Newton decrement below what J resolves: inside the quadratic-convergence region,
            # where a line search on J would only see round-off; take the full step
            theta = theta + p
            f = Xa @ theta
            J = _objective(theta, f, y, sw, C, loss)
            reuse, last = True, size
            continue
        Xp = Xa @ p
        while step >= 1e-10:
            candidate, f_new = theta + step * p, f + step * Xp
            J_new = _objective(candidate, f_new, y, sw, C, loss)
            if J_new <= J + 1e-4 * step * slope:
                break
            step *= 0.5
        else:  # no decrease along a descent direction
            if -slope <= 1e-6 * (1.0 + abs(J)):  # J at round-off level: converged
                return done(theta, it)
            if warm and it < max_iter:
                # a warm start deep in the loss's linear region (e.g. from a separable fit, with
                # a huge C) can give Newton steps no line search resolves: start again cold
                out = newton_fit(
                    Xa, y, sw, C, loss, None, tol=tol, max_iter=max_iter - it,
                    return_solver=return_solver, single=single,
                )  # fmt: skip
                return (out[0], out[1] + it + warmup, *out[2:])
            warnings.warn(
                f"Newton's line search failed far from the optimum (C={C:g}, Newton decrement "
                f"{-slope:.3g}); the returned point is not converged",
                ConvergenceWarning,
                stacklevel=2,
            )
            return done(theta, it)
        theta, f, J = candidate, f_new, J_new
        reuse, last = step == 1.0, step * size  # full steps: local regime, try the chord next
    warnings.warn(
        f"Newton's method did not converge in {max_iter} iterations (C={C:g}); increase max_iter",
        ConvergenceWarning,
        stacklevel=2,
    )
    return done(theta, max_iter)


def c_tangent(theta: np.ndarray, solver) -> np.ndarray:
    """``d theta / d log C = H^{-1} [w, 0]`` at an optimum theta = [w, b] of J.

    Differentiating the optimality condition ``C Xa^T (s l') + [w, 0] = 0`` in C gives
    ``Xa^T (s l') + H dtheta/dC = 0``, and ``Xa^T (s l') = -[w, 0] / C`` there. A warm start
    at C' from the fit at C begins at ``theta + log(C' / C) dtheta/dlog C``: on MNIST 7 vs 1
    (logistic, C 3.6-fold apart) one Newton factorization instead of two or three.

    Parameters
    ----------
    theta : ndarray of shape (p,)
        The optimum, intercept last.
    solver : CholeskySolver, DualHessianSolver or BlockIdentitySolver
        A factorization of the Hessian at (or near: it only predicts a start) ``theta``.

    Returns
    -------
    ndarray of shape (p,)
    """
    return solver.solve(np.r_[theta[:-1], 0.0])


def smooth_slope(
    theta: np.ndarray,
    Xa_D: np.ndarray,
    y_D: np.ndarray,
    sw_D: np.ndarray,
    Xa_P: np.ndarray,
    y_P: np.ndarray,
    Xa_t: np.ndarray,
    y_t: np.ndarray,
    C: float,
    loss: Loss,
) -> SlopeTerms:
    """Backdoor learning slope of a smooth linear model (DESIGN §4, Eq. 4).

        dL(V_t)/dbeta |_0 = - grad L(V_t, theta0)^T  H0^{-1}  grad [C sum_{j in P} l(y_j, f(x_j))]

    ``theta`` must be the optimum on D (weights ``sw_D``); H0 is the Hessian of J on D with the
    regularizer; L(V_t) is the *mean* loss over the backdoor test set. One Cholesky factorization:
    of H0, or with more features than points of the n x n dual matrix of
    :class:`DualHessianSolver` (whose condition number is then the one reported).

    Parameters
    ----------
    theta : ndarray of shape (p,)
        The optimum theta0 = [w, b] on D (beta = 0).
    Xa_D : ndarray of shape (n_D, p)
        Clean training inputs D, intercept column last.
    y_D : ndarray of shape (n_D,)
        Labels of D in {-1, +1}.
    sw_D : ndarray of shape (n_D,)
        Sample weights of D (ones in a backdoor study).
    Xa_P : ndarray of shape (n_P, p)
        Poisoning inputs P, intercept column last.
    y_P : ndarray of shape (n_P,)
        The attacker's labels of P in {-1, +1}.
    Xa_t : ndarray of shape (n_t, p)
        Backdoor test inputs V_t, intercept column last.
    y_t : ndarray of shape (n_t,)
        The attacker's labels of V_t in {-1, +1}.
    C : float
        Loss weight (lambda = 1/C); the poisoning gradient is C sum_P l', unit weight per point.
    loss : Loss
        The per-sample loss l (``d1``, ``d2`` and ``d3`` are used).

    Returns
    -------
    SlopeTerms
        ``derivative`` (dL(V_t)/dbeta at beta = 0: mean backdoor loss per unit of beta,
        negative when the backdoor is being learned), ``condition_number``,
        ``second_derivative`` (d^2 L(V_t)/dbeta^2 at 0, from the same factorization) and
        ``dtheta_dbeta`` (= -H0^{-1} grad_P).

    Raises
    ------
    backdoor_curves.linalg.SingularSystemError
        If H0 (or its dual matrix) cannot be factorized.
    """
    active, Xa_active = active_block(Xa_D, sw_D)  # all-zero columns of D: identity block of H0
    base = sw_D * loss.d2(y_D, Xa_active @ theta[active])
    if loss.quadratic:
        inner = quadratic_solver(Xa_active, base, C, "Hessian H0")
    else:
        inner = hessian_solver(Xa_active, C * base, "Hessian H0")
    solver = BlockIdentitySolver(inner, active)
    grad_P = C * (Xa_P.T @ loss.d1(y_P, Xa_P @ theta))
    grad_t = Xa_t.T @ loss.d1(y_t, Xa_t @ theta) / Xa_t.shape[0]
    dtheta = -solver.solve(grad_P)
    # second order (t = dtheta/dbeta): differentiating H(theta(beta), beta) t + grad_P = 0 at 0,
    #   H0 theta_bb = -(C Xa_D^T [s l3 (Xa_D t)^2] + 2 C Xa_P^T [l2 (Xa_P t)])
    #   L_bb(0)     = mean_t l2 (Xa_t t)^2 + grad_t^T theta_bb      (l2, l3: 2nd, 3rd derivatives)
    u_D, u_P, u_t = Xa_D @ dtheta, Xa_P @ dtheta, Xa_t @ dtheta
    rhs = C * (Xa_D.T @ (sw_D * loss.d3(y_D, Xa_D @ theta) * u_D**2))
    rhs += 2.0 * C * (Xa_P.T @ (loss.d2(y_P, Xa_P @ theta) * u_P))
    ddtheta = -solver.solve(rhs)
    second = np.mean(loss.d2(y_t, Xa_t @ theta) * u_t**2) + grad_t @ ddtheta
    return SlopeTerms(
        derivative=float(grad_t @ dtheta),
        condition_number=solver.condition_number,
        second_derivative=float(second),
        dtheta_dbeta=dtheta,
    )


class _SmoothLinearLearner(BaseLearner):
    """Shared fit and derivatives of the logistic and ridge learners."""

    tol: float
    max_iter: int

    _parameter_constraints: dict = {
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def _fit(self, X, y, sample_weight):
        keep = sample_weight > 0
        Xa, sw, C = weighted_rows(X, keep), sample_weight[keep], self.loss_weight
        theta0 = None
        warm = getattr(self, "warm_start", False) and hasattr(self, "coef_")
        if warm and self.coef_.shape[0] == X.shape[1]:
            theta0 = np.r_[self.coef_, self.intercept_]
            previous = getattr(self, "_c_tangent", None)
            if previous is not None and previous[0] != C and np.array_equal(previous[1], sw):
                # the same weighted data at another C (a grid's chain): predict along the path
                theta0 = theta0 + math.log(C / previous[0]) * previous[2]
        theta, self.n_iter_, solver = newton_fit(
            Xa, y[keep], sw, C, self.loss, theta0, tol=self.tol, max_iter=self.max_iter,
            return_solver=True,
        )  # fmt: skip
        self.coef_ = theta[:-1].copy()
        self.intercept_ = float(theta[-1])
        self._c_tangent = None
        if getattr(self, "warm_start", False) and not self.loss.quadratic:
            self._c_tangent = (C, sw, c_tangent(theta, solver))

    def _decision(self, X):
        return X @ self.coef_ + self.intercept_

    def _dfdtheta(self, X):
        return augment(X)

    @property
    def params_(self) -> np.ndarray:
        """theta = [coef_, intercept_]."""
        return np.r_[self.coef_, self.intercept_]

    def hessian(self, X, y, sample_weight=None) -> np.ndarray:
        """Hessian of J at the fitted theta over the training data ``X, y, sample_weight``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training inputs (the rows passed to ``fit``).
        y : array-like of shape (n_samples,)
            Their labels, from ``classes_``.
        sample_weight : array-like of shape (n_samples,), optional
            The weights passed to ``fit`` (1 by default).

        Returns
        -------
        ndarray of shape (n_features + 1, n_features + 1)
            ``C Xa^T diag(s l'') Xa + diag(1, ..., 1, 0)`` with ``Xa = [X, 1]`` (intercept last).
        """
        X = self._check_X(X)
        y_pm = self.encode(y)
        check_same_length(X, y_pm, "X", "y")
        sw = check_sample_weight(sample_weight, len(y_pm))
        return smooth_hessian(self.params_, augment(X), y_pm, sw, self.loss_weight, self.loss)

    def slope_terms(self, data: BackdoorData) -> SlopeTerms:
        """dL(V_t)/dbeta at beta = 0 (see :func:`smooth_slope` and the base class).

        Parameters
        ----------
        data : BackdoorData
            The learner must have been fitted on ``data.X_clean, data.y_clean``.

        Returns
        -------
        SlopeTerms
        """
        y_D = self.encode(data.y_clean, "y_clean")
        return smooth_slope(
            self.params_,
            augment(data.X_clean),
            y_D,
            np.ones_like(y_D),
            augment(data.X_poison),
            self.encode(data.y_poison, "y_poison"),
            augment(data.X_test_bd),
            self.encode(data.y_test_bd, "y_test_bd"),
            self.loss_weight,
            self.loss,
        )

    def deviation_vector(self) -> np.ndarray:
        """The weights w = ``coef_`` (intercept excluded; DESIGN §5).

        Returns
        -------
        ndarray of shape (n_features,)
        """
        return self.coef_


@register_learner("logistic", label="logistic", color="tab:orange")
class LogisticLearner(_SmoothLinearLearner):
    """L2-regularized logistic regression, exactly ``LogisticRegression(C=C)``.

    Minimises ``C * sum_i s_i log(1 + exp(-y_i f(x_i))) + 1/2 ||w||^2`` (natural log, intercept
    unpenalized) by Newton's method with the closed-form Hessian.

    Parameters
    ----------
    C : float, default=1.0
        Weight of the data term; lambda = 1/C.
    tol : float, default=1e-10
        Relative Newton-step size at which the fit stops.
    max_iter : int, default=100
        Maximum number of Newton steps.
    warm_start : bool, default=False
        Start from the previous solution when refitting (used along a learning curve).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The weights w.
    intercept_ : float
        The intercept b (unpenalized).
    classes_ : ndarray of shape (2,)
        The two labels, sorted; ``classes_[1]`` is encoded as +1.
    n_iter_ : int
        Steps of the last fit (L-BFGS warm-up iterations and Newton steps).
    """

    loss = LOGISTIC

    _parameter_constraints: dict = {
        **_SmoothLinearLearner._parameter_constraints,
        "C": [Interval(Real, 0, None, closed="neither")],
        "warm_start": ["boolean"],
    }

    def __init__(
        self, C: float = 1.0, *, tol: float = 1e-10, max_iter: int = 100, warm_start: bool = False
    ):
        self.C = C
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start

    @property
    def loss_weight(self) -> float:
        """C, the weight of the log-loss term."""
        return self.C

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            ``[1 - p, p]`` with p = 1 / (1 + exp(-f(x))) the probability of ``classes_[1]``.
        """
        f = self.decision_function(X)
        p1 = 1.0 / (1.0 + np.exp(-f))
        return np.column_stack([1.0 - p1, p1])


@register_learner("ridge", label="ridge", regularization="alpha", color="tab:green")
class RidgeLearner(_SmoothLinearLearner):
    """Ridge classifier, exactly ``RidgeClassifier(alpha=alpha)``.

    Minimises ``sum_i s_i (y_i - f(x_i))^2 + alpha ||w||^2``, i.e. J with C = 1/(2 alpha) and the
    squared loss, in closed form (one Newton step on a quadratic is exact).

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty; C = 1/(2 alpha) and lambda = 1/C = 2 alpha.
    tol : float, default=1e-10
        Kept for the shared Newton solver; the squared loss is solved by one exact Newton step,
        so it does not change the fit.
    max_iter : int, default=10
        Maximum number of Newton steps (one is taken).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The weights w.
    intercept_ : float
        The intercept b (unpenalized).
    classes_ : ndarray of shape (2,)
        The two labels, sorted; ``classes_[1]`` is encoded as +1.
    n_iter_ : int
        Newton steps taken (1).
    """

    loss = SQUARED

    _parameter_constraints: dict = {
        **_SmoothLinearLearner._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, alpha: float = 1.0, *, tol: float = 1e-10, max_iter: int = 10):
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter

    @property
    def loss_weight(self) -> float:
        """C = 1 / (2 alpha), the weight of the squared-loss term."""
        return 1.0 / (2.0 * self.alpha)
