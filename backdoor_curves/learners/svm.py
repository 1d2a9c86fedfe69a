"""Support vector machines (linear and RBF kernels) and the KKT derivative of their dual.

Objective (DESIGN §3), exactly ``sklearn.svm.SVC(kernel=..., C=C)`` with sample weights:

    min  C * sum_i s_i max(0, 1 - y_i f(x_i)) + 1/2 ||w||^2,   f(x) = sum_k y_k a_k K(x_k, x) + b

solved in the dual (0 <= a_i <= C s_i, sum_i y_i a_i = 0) on the precomputed kernel matrix
(:func:`solve_svm_dual`; the SVM path reuses the same matrix) by a compiled SMO (:mod:`._smo`,
libsvm's working-set rule) that stops early, at a maximal KKT violation of 1e-3 (then tighter,
:data:`WARM_EPS`), and is then *polished*: with the margin set M = {0 < a_i < C s_i} and the
bound set B = {a_i = C s_i} read off its duals, the KKT equalities y_i f(x_i) = 1 (i in M) and
y^T a = 0 are a linear system whose solution is exact to round-off; it is kept when it satisfies
every KKT condition. A certified polish depends only on the sets, so any solver that finds them
gives the same answer; where SMO does not (within its iteration budget), libsvm
(``SVC(kernel="precomputed")``) solves the dual and its answer is polished (or kept as it is if
the polish is not certified). libsvm alone is accurate to about 1e-7 relative at moderate C and
only 1e-4 at C = 100 on MNIST (its incrementally updated gradient drifts), which is why the
polish exists.

Warm starts (``warm_start=True``, e.g. along a C grid): SMO starts from the previous duals,
scaled into the new boxes, instead of zero. Along the C grid of MNIST 7 vs 1 (750 points) this
takes a few hundred SMO steps per fit (4,000 at most) where libsvm takes up to 14,000 from
scratch.

An optimum with w = 0 (f = b, a constant): where the duals can balance the classes' feature sums,
sum_i y_i a_i phi(x_i) = 0 with every a_i in its box, w = 0 is optimal whatever C (e.g. classes with
the same weighted mean under the linear kernel). With unequal class totals S_+ != S_- (S = sum of
the boxes C s_i of a class) the intercept is b = sign(S_+ - S_-): the lighter class sits at its
bounds (y f = -1), the heavier one on the margin (y f = 1) with duals in a polytope of solutions.
libsvm does not finish there (its working pairs keep trading duals along that face: on 17 points
in 3 dimensions it had not stopped after 1e7 iterations, 2 s) and the polish's KKT system is
singular when more margin duals than dimensions + 1 are free. So a fit whose libsvm run stops at
:data:`LIBSVM_FIRST_ITER` unpolished checks that optimum directly (:func:`zero_weight_dual`: the
margin class's duals by bounded least squares, then the same KKT certificate) before it gives
libsvm the full budget. The slope at such an optimum is refused when the KKT system does not
determine it (see :func:`svm_kkt_slope`).

Parameters of the derivative (secml's convention): theta = (a_M, b), f depends on them through
df/da_k = y_k K(x_k, x) and df/db = 1, and the "Hessian" is the bordered KKT matrix

    H = [[Q_MM, y_M], [y_M^T, 0]],   Q_ik = y_i y_k K(x_i, x_k).
"""

from __future__ import annotations

import functools
import warnings
from numbers import Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import linear_kernel, rbf_kernel
from sklearn.svm import SVC

from .._identity import IdentityMemo
from .._memory import check_matrix_size
from .._param_validation import Interval
from .._validation import check_same_length
from ..data import BackdoorData
from ..linalg import LUSolver, SingularSystemError
from ..losses import HINGE
from .base import BaseLearner, SlopeTerms
from .pairwise import active_cache, memoized, take_rows
from .registry import register_learner

__all__ = [
    "LinearSVMLearner",
    "RBFSVMLearner",
    "DegenerateKKTError",
    "SVMConvergenceError",
    "polish_svm_dual",
    "solve_svm_dual",
    "zero_weight_dual",
    "kkt_matrix",
    "bordered_matrix",
    "dual_sets",
    "margin_tolerance",
    "svm_kkt_slope",
]

#: Relative tolerance (in units of the box C s_i) separating margin from bound / zero duals.
ALPHA_TOL = 1e-8
#: Tolerance on y f - 1 in the KKT check of a polished solution.
MARGIN_TOL = 1e-7
#: Round-off allowance of a KKT certificate, in units of eps * max K(x, x) * sum(a) (see
#: :func:`margin_tolerance`).
ROUNDOFF_FACTOR = 16.0
#: Most iterations libsvm may take in one fit (``SVC(max_iter=...)``). libsvm's coordinate steps
#: become tiny with a huge C on data that are not separable (1e6 on 46 points takes more than
#: 5e7 iterations), so it would seem to hang; past this budget its last iterate is polished and
#: kept if the KKT conditions certify it, else :class:`SVMConvergenceError` is raised. Ordinary
#: fits take far fewer (MNIST 7 vs 1, 750 points, C up to 1e5: at most 1.4e4).
LIBSVM_MAX_ITER = 10_000_000
#: libsvm iterations after which an unpolished fit first checks for an optimum with w = 0
#: (:func:`zero_weight_dual`), where libsvm never stops, before it continues to
#: :data:`LIBSVM_MAX_ITER` (from scratch: the same answer as one long run, for 1e5 iterations
#: more; ordinary fits stop far earlier, see :data:`LIBSVM_MAX_ITER`).
LIBSVM_FIRST_ITER = 100_000


class DegenerateKKTError(ArithmeticError):
    """The SVM's KKT system at beta = 0 does not determine the slope.

    Raised when there is no margin support vector (the message says how many support vectors
    sit at their bound, what usually causes it — a C so small, or features so small, that every
    support vector violates the margin; a kernel that cannot tell the points apart — and what
    to change), when a poisoning point lies exactly on the margin, and when the clean optimum
    has w = 0 with duals the KKT system leaves undetermined (the message says which, and that
    no C changes it).
    """


class SVMConvergenceError(RuntimeError):
    """libsvm stopped at :data:`LIBSVM_MAX_ITER` iterations without a certified optimum.

    Not raised for an optimum with w = 0, where libsvm never stops either: that one is
    certified directly (:func:`zero_weight_dual`).

    Raised instead of returning an unconverged dual (or running for hours): the message names
    C, the number of points and what to change (a smaller C, standardized features).
    """


def bordered_matrix(Q_MM: np.ndarray, y_M: np.ndarray) -> np.ndarray:
    """``[[Q_MM, y_M], [y_M^T, 0]]`` for a signed kernel block ``Q_MM`` (labels included).

    Parameters
    ----------
    Q_MM : ndarray of shape (m, m)
        ``Q_ik = y_i y_k K(x_i, x_k)`` on the margin set.
    y_M : ndarray of shape (m,)
        Labels in {-1, +1}.

    Returns
    -------
    ndarray of shape (m + 1, m + 1)
    """
    m = y_M.shape[0]
    H = np.zeros((m + 1, m + 1))
    H[:m, :m], H[:m, m], H[m, :m] = Q_MM, y_M, y_M
    return H


def kkt_matrix(K_MM: np.ndarray, y_M: np.ndarray) -> np.ndarray:
    """Bordered KKT matrix ``[[Q_MM, y_M], [y_M^T, 0]]`` with ``Q = (y y^T) * K``.

    Parameters
    ----------
    K_MM : ndarray of shape (m, m)
        Kernel matrix of the margin support vectors.
    y_M : ndarray of shape (m,)
        Their labels in {-1, +1}.

    Returns
    -------
    ndarray of shape (m + 1, m + 1)
    """
    return bordered_matrix((y_M[:, None] * y_M[None, :]) * K_MM, y_M)


def kkt_solver(H: np.ndarray) -> LUSolver:
    """The LU factorization of a bordered KKT matrix ``H`` (:func:`kkt_matrix`).

    Inside a :func:`~backdoor_curves.learners.pairwise.shared_pairwise` block it is memoized by
    the matrix's content: the polish of the clean fit and the slope of the same grid point
    solve with the same margin set, so the slope reuses the polish's factors (bit for bit the
    matrix it would have built). Each call gets its own condition number, estimated (and
    warned about) on first access.

    Parameters
    ----------
    H : ndarray of shape (m + 1, m + 1)
        The KKT matrix.

    Returns
    -------
    LUSolver

    Raises
    ------
    backdoor_curves.linalg.SingularSystemError
        If ``H`` is singular (exactly, or numerically after equilibration).
    """

    def factorize(H):
        return LUSolver(H, "SVM KKT matrix", estimate_condition=False)

    return memoized("kkt_solver", (H,), factorize).named("SVM KKT matrix")


def dual_sets(alpha: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Margin (0 < a_i < c_i) and bound (a_i = c_i > 0) duals, to ALPHA_TOL of their scale.

    A dual counts as zero below ``ALPHA_TOL * min(c_i, a_max)``, a_max the largest dual:
    relative to its box or, when every dual is a tiny fraction of its box (a huge C on separable
    data: hard-margin duals of order 1 under boxes of 1e8), to the duals themselves, so that the
    margin set does not depend on C's size. (Where some dual sits at its box, margin duals are
    of the box's order too, and a_max is a box.)

    Parameters
    ----------
    alpha : ndarray of shape (n,)
        Duals a_i >= 0.
    cap : ndarray of shape (n,)
        Their boxes c_i = C s_i >= 0.

    Returns
    -------
    margin : ndarray of bool, shape (n,)
        ``ALPHA_TOL min(c_i, max(a)) < a_i < (1 - ALPHA_TOL) c_i``.
    bound : ndarray of bool, shape (n,)
        ``a_i >= (1 - ALPHA_TOL) c_i`` with ``c_i > 0``. The rest (neither) are the zero duals.
    """
    largest = float(alpha.max(initial=0.0))
    margin = (alpha > ALPHA_TOL * np.minimum(cap, largest)) & (alpha < cap * (1.0 - ALPHA_TOL))
    bound = (cap > 0) & (alpha >= cap * (1.0 - ALPHA_TOL))
    return margin, bound


def margin_tolerance(alpha: np.ndarray, kernel_scale: float) -> float:
    """Tolerance on y f - 1 in a KKT certificate: :data:`MARGIN_TOL` plus f's round-off.

    f(x_i) = sum_j y_j a_j K_ij + b is computed with an error of about eps sum_j a_j |K_ij| <=
    eps max_k K_kk sum_j a_j (|K_ij| <= max_k K_kk for a positive semi-definite kernel), which
    exceeds MARGIN_TOL when C is huge (C = 1e8: duals of 1e8); below that, MARGIN_TOL rules.

    Parameters
    ----------
    alpha : ndarray of shape (n,)
        Duals a_i >= 0.
    kernel_scale : float
        ``max_k K(x_k, x_k)`` (1 for the RBF kernel).

    Returns
    -------
    float
        ``MARGIN_TOL + ROUNDOFF_FACTOR * eps * kernel_scale * sum(alpha)``.
    """
    eps = np.finfo(float).eps
    return MARGIN_TOL + ROUNDOFF_FACTOR * eps * float(kernel_scale) * float(np.sum(alpha))


def polish_svm_dual(
    K: np.ndarray, y: np.ndarray, cap: np.ndarray, alpha: np.ndarray, b: float
) -> tuple[np.ndarray, float, bool]:
    """Solve the KKT equalities on libsvm's active sets exactly.

    Parameters
    ----------
    K : ndarray of shape (n, n)
        Kernel matrix of the training points (all with positive weight).
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    cap : ndarray of shape (n,)
        Box constraints C s_i.
    alpha : ndarray of shape (n,)
        The approximate duals (e.g. libsvm's), from which the margin and bound sets are read.
    b : float
        The approximate intercept.

    Returns
    -------
    alpha : ndarray of shape (n,)
        The solution of the KKT equalities on those sets if it satisfies every KKT condition
        (to :func:`margin_tolerance`), else the input duals.
    b : float
        The matching intercept.
    polished : bool
        Whether the exact solution replaced the input (False also when there is no margin
        dual).
    """
    margin, bound = dual_sets(alpha, cap)
    if not margin.any():
        return alpha, b, False
    M = np.flatnonzero(margin)
    a_B = np.where(bound, cap, 0.0)
    # (Q a_B)_M = y_M (K_M. (y a_B)): the same products and sums as Q_M. a_B, signs flipped
    # exactly (y = +-1), without forming Q's rows
    rhs = np.r_[1.0 - y[M] * (K[M] @ (y * a_B)), -(y @ a_B)]
    H = kkt_matrix(K[np.ix_(M, M)], y[M])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an ill-conditioned solve is caught by the KKT check
            sol = kkt_solver(H).solve(rhs)
    except SingularSystemError:
        # e.g. duplicated margin points: any solution of the equalities that passes the KKT
        # check below is optimal, so the least-squares one is certified, not trusted blindly
        sol = np.linalg.lstsq(H, rhs, rcond=None)[0]
    new = a_B.copy()
    new[M] = sol[:-1]
    new_b = float(sol[-1])
    if np.any(new[M] <= 0) or np.any(new[M] >= cap[M]):
        return alpha, b, False
    if not _kkt_certified(K, y, new, new_b, margin, bound):
        return alpha, b, False
    return new, new_b, True


def _kkt_certified(
    K: np.ndarray, y: np.ndarray, alpha: np.ndarray, b: float, margin: np.ndarray, bound: np.ndarray
) -> bool:
    """Whether (alpha, b), feasible in its boxes, satisfies the KKT conditions of the SVM dual.

    y f = 1 on ``margin``, y f <= 1 on ``bound`` (a_i = C s_i), y f >= 1 on the rest (a_i = 0),
    each to :func:`margin_tolerance`, and y^T a = 0: sufficient for optimality (convex QP).
    """
    yf = y * (K @ (y * alpha) + b)
    zero = ~(margin | bound)
    tol = margin_tolerance(alpha, float(np.max(np.diagonal(K))))
    return not (
        np.any(np.abs(yf[margin] - 1) > tol)
        or np.any(yf[zero] < 1 - tol)
        or np.any(yf[bound] > 1 + tol)
        or abs(y @ alpha) > MARGIN_TOL * max(1.0, alpha.sum())
    )


def zero_weight_dual(
    K: np.ndarray, y: np.ndarray, cap: np.ndarray, factor: np.ndarray | None = None
) -> tuple[np.ndarray, float] | None:
    """An optimal dual with w = 0 (a constant decision function f = b), certified, or None.

    With S_+ and S_- the sums of the boxes c_i = C s_i of each class and S_+ != S_-, w = 0 is
    optimal exactly when some duals satisfy the KKT conditions with f = b = sign(S_+ - S_-) =: m:
    the lighter class at its boxes (y f = -1 < 1), the heavier class H on the margin (y f = 1)
    with 0 <= a_i <= c_i, sum_H a_i = S_min (y^T a = 0) and

        sum_{i in H} a_i phi(x_i) = sum_{j not in H} c_j phi(x_j)        (w = 0),

    a linear feasibility problem in the box, solved by bounded least squares
    (``scipy.optimize.lsq_linear``, BVLS) on a factor G G^T = K (so phi(x_i) -> row i of G), then
    refined by one least-squares step on K itself over the duals strictly inside their boxes
    (w to round-off: 1e-14 instead of 1e-12 at C = 10). The result is kept only if it passes
    the same KKT certificate as :func:`polish_svm_dual`. Equal
    totals (b anywhere in [-1, 1]: every dual at its box) are left to libsvm, which settles them.

    Parameters
    ----------
    K : ndarray of shape (n, n)
        Kernel matrix of the training points (all with positive box).
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    cap : ndarray of shape (n,)
        Boxes C s_i > 0.
    factor : ndarray of shape (n, r), optional
        A factor G with G G^T = K, e.g. the inputs themselves for the linear kernel (K = X X^T,
        r = p features: no O(n^3) eigendecomposition, 83 s at n = 7,200); default from
        ``eigh(K)``, its eigenvectors scaled by the roots of the eigenvalues above round-off.

    Returns
    -------
    (alpha, b) or None
        Duals (the lighter class at its boxes) and the intercept m = +-1; None when the class
        totals are equal or no dual in the box makes w = 0 (to the certificate's tolerance).
    """
    from scipy.optimize import lsq_linear

    totals = cap[y > 0].sum(), cap[y < 0].sum()
    if totals[0] == totals[1]:
        return None
    m = 1.0 if totals[0] > totals[1] else -1.0
    heavy, light = np.flatnonzero(y == m), np.flatnonzero(y != m)
    if factor is None:
        lam, V = np.linalg.eigh(K)
        keep = lam > len(y) * np.finfo(float).eps * max(float(lam[-1]), 0.0)
        G = V[:, keep] * np.sqrt(lam[keep])  # K = G G^T to round-off
    else:
        G = np.asarray(factor, dtype=float)
    scale = float(np.sqrt(np.max(np.diagonal(K))))  # |G_ij| <= sqrt(K_ii): the sum row alike
    A = np.vstack([G[heavy].T, np.full((1, heavy.size), scale)])
    rhs = np.r_[G[light].T @ cap[light], scale * cap[light].sum()]
    fit = lsq_linear(A, rhs, bounds=(np.zeros(heavy.size), cap[heavy]), method="bvls")
    alpha = cap.copy()
    alpha[heavy] = np.clip(fit.x, 0.0, cap[heavy])
    free = heavy[(alpha[heavy] > 0) & (alpha[heavy] < cap[heavy])]
    if free.size:  # one Gauss-Newton step on K itself: G is only as exact as eigh's vectors
        residual = np.r_[K @ (y * alpha), scale**2 * (y @ alpha)]  # [w's images; y^T a]
        J = m * np.vstack([K[:, free], np.full((1, free.size), scale**2)])
        a_F = alpha[free]  # the step s keeps a_F - s in the boxes
        step = lsq_linear(J, residual, bounds=(a_F - cap[free], a_F), method="bvls").x
        alpha[free] = np.clip(a_F - step, 0.0, cap[free])
    margin, bound = dual_sets(alpha, cap)
    if not _kkt_certified(K, y, alpha, m, margin, bound):
        return None
    return alpha, m


def solve_svm_dual(
    K: np.ndarray,
    y: np.ndarray,
    C: float,
    sample_weight: np.ndarray,
    tol: float,
    start: np.ndarray | None = None,
    factor: np.ndarray | None = None,
    from_zero: bool = False,
) -> tuple[np.ndarray, float, bool]:
    """The SVM dual from a precomputed kernel: SMO (else libsvm), then the KKT polish.

    Solves ``min 1/2 a^T Q a - 1^T a`` subject to ``0 <= a_i <= C s_i`` and ``y^T a = 0``
    (Q = (y y^T) * K), i.e. the dual of ``SVC(C=C)`` fitted with ``sample_weight=s``: SMO
    (:mod:`._smo`) from ``start`` (or, with ``from_zero``, from zero duals), polished
    (:func:`polish_svm_dual`) after each of its rounds; otherwise, or where no polish is
    certified within the SMO's budget, ``SVC(kernel="precomputed", tol=tol)`` followed by the
    polish. Rows whose box C s_i is 0 (a zero weight, or one so small that C s_i underflows:
    5e-324) are left out of the problem (their duals are 0), so indices stay those of ``K``.

    Parameters
    ----------
    K : ndarray of shape (n, n)
        Kernel matrix of the training points.
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    C : float
        The SVM's C > 0 (lambda = 1/C); the box of a_i is C s_i.
    sample_weight : ndarray of shape (n,)
        Non-negative weights s_i.
    tol : float
        libsvm's stopping tolerance.
    start : ndarray of shape (m,), optional
        Duals to warm-start from, laid over the rows of ``K`` (m <= n; rows past m start at 0),
        e.g. the duals of a neighbouring C. Scaled into the boxes, ``a0 = r start`` with
        ``r = min(1, min_i c_i / start_i)`` (which keeps y^T a0 = 0), and refused (the cold
        path) when y^T a0 is not 0 (to :data:`MARGIN_TOL` of sum(a0): labels changed), when it
        is longer than n or not finite and non-negative. From a0, SMO (:mod:`._smo`) runs to
        the maximal violation 1e-3, then the KKT polish; if that is not certified, SMO goes on
        down the tolerances :data:`WARM_EPS` and then ``tol``, polished after each; if none is
        certified (or SMO reaches :data:`SMO_MAX_ITER`), libsvm solves from scratch. A
        certified polish depends only on the margin and bound sets, so the answer is the same
        whatever the start (the same bits whenever both read the same sets; where the optimal
        duals are not unique, e.g. w = 0, another optimal dual with the same primal).
    factor : ndarray of shape (n, r), optional
        G with G G^T = K, for the search of an optimum with w = 0 (:func:`zero_weight_dual`;
        e.g. the inputs of the linear kernel); default from an eigendecomposition of K.
    from_zero : bool, default=False
        Without a usable ``start``, run the SMO the same way from zero duals (feasible), with
        the budget :data:`SMO_COLD_ITER_PER_POINT`, on up to :data:`SMO_COLD_MAX_POINTS`
        points, before libsvm: for the first fit of a chain of warm starts, which loads the
        compiled SMO anyway (loading it costs about 0.5 s in a fresh process, more than
        libsvm's fixed costs of one fit).

    Returns
    -------
    alpha : ndarray of shape (n,)
        Duals (zeros off the support and on zero-weight rows).
    b : float
        Intercept.
    polished : bool
        Whether the answer is an exact KKT solve (False only for libsvm's approximate
        duals, kept where no polish was certified).

    If libsvm stops unpolished at :data:`LIBSVM_FIRST_ITER` iterations, the optimum with w = 0
    is tried first (:func:`zero_weight_dual`; ``polished`` is then True: the duals are exact to
    round-off), and only then libsvm with the full budget :data:`LIBSVM_MAX_ITER`.

    Raises
    ------
    SVMConvergenceError
        If libsvm stops at :data:`LIBSVM_MAX_ITER` iterations and the KKT conditions do not
        certify its last iterate (a huge C on data that are not separable) nor an optimum with
        w = 0.
    """
    keep = np.flatnonzero(C * sample_weight > 0)  # a box that underflows to 0 holds a dual of 0
    K_keep = K if keep.size == K.shape[0] else K[np.ix_(keep, keep)]
    y_keep, cap = y[keep], C * sample_weight[keep]
    a0 = None if start is None else _feasible_start(start, K.shape[0], keep, y_keep, cap)
    if a0 is not None:
        budget = max(int(SMO_MAX_ITER), int(SMO_ITER_PER_POINT) * keep.size)
    elif from_zero and keep.size <= SMO_COLD_MAX_POINTS:  # all duals 0 (feasible)
        a0 = np.zeros(keep.size)
        budget = max(int(SMO_COLD_MIN_ITER), int(SMO_COLD_ITER_PER_POINT) * keep.size)
    smo = None if a0 is None else _warm_smo(K_keep, y_keep, cap, a0, tol, budget)
    if smo is not None:
        full = np.zeros(K.shape[0])
        full[keep] = smo[0]
        return full, smo[1], True
    max_iter = int(LIBSVM_MAX_ITER)
    budget = min(int(LIBSVM_FIRST_ITER), max_iter)
    alpha, b, n_iter = _libsvm(K_keep, y_keep, C, sample_weight[keep], tol, budget)
    alpha, b, polished = polish_svm_dual(K_keep, y_keep, cap, alpha, b)
    if not polished and n_iter >= budget:
        rows = factor if factor is None or keep.size == K.shape[0] else factor[keep]
        zero = zero_weight_dual(K_keep, y_keep, cap, rows)  # where libsvm never stops
        if zero is not None:
            (alpha, b), polished = zero, True
        elif budget < max_iter:
            alpha, b, n_iter = _libsvm(K_keep, y_keep, C, sample_weight[keep], tol, max_iter)
            alpha, b, polished = polish_svm_dual(K_keep, y_keep, cap, alpha, b)
    if not polished and n_iter >= max_iter:
        scale = float(np.max(np.abs(np.diagonal(K_keep)))) if keep.size else 0.0
        raise SVMConvergenceError(
            f"libsvm did not reach the SVM dual's optimum within {max_iter} iterations "
            f"(LIBSVM_MAX_ITER; C={C:g}, {keep.size} points with positive weight, largest "
            f"K(x, x) {scale:.3g}) and the KKT conditions certify neither its last iterate nor an "
            "optimum with w = 0 (a constant decision function). A "
            "huge C on data that are not separable makes libsvm's steps tiny (for the linear "
            "kernel C times the squared feature scale is what counts): use a smaller C or "
            "standardize the features"
        )
    full = np.zeros(K.shape[0])
    full[keep] = alpha
    return full, b, polished


#: SMO's stopping tolerances (maximal violation) of a warm-started fit, loosest first: after each
#: round the KKT polish is tried, and it only needs the margin and bound sets, which SMO usually
#: has right long before it converges (at 1e-3 on most fits along an MNIST C grid, 1e-4 or 1e-5
#: on the rest; one more round at the caller's ``tol`` ends the ladder, see
#: :func:`solve_svm_dual`).
WARM_EPS = (1e-3, 1e-4, 1e-5, 1e-6)
#: Most SMO iterations of a warm-started fit (all rounds together) before it gives up and the
#: cold path (libsvm) runs: this many, or :data:`SMO_ITER_PER_POINT` per training point if that
#: is more. Warm starts along a C grid on MNIST 7 vs 1 (750 points) take up to about 4,000 (most
#: a few hundred; libsvm takes up to 14,000 from scratch).
SMO_MAX_ITER = 20_000
#: ... per training point: a hard problem needs more iterations as n grows (digits 0-4 against
#: 5-9, 4,000 points, C = 1: libsvm from scratch needs 3 million), and an iteration of the
#: compiled SMO costs O(n) over the precomputed kernel (about 20 us at n = 4,000).
SMO_ITER_PER_POINT = 100
#: Largest number of points (with positive weight) fitted from scratch (duals 0, no usable
#: start) by the compiled SMO before libsvm; larger fits from scratch go to libsvm directly.
#: On small problems libsvm's fixed costs (its input checks and copy of the kernel: about 3 ms
#: a fit on MNIST 7 vs 1, 675 points) exceed the SMO's whole run (200 iterations at C = 0.001,
#: 1,500 at C = 0.46). On large ones those costs are small beside the fit, the SMO (without
#: libsvm's shrinking) costs more per iteration, and on a hard problem it would only add its
#: budget (80,000 iterations at 8,000 points, seconds) and failed polishes (each an O(|M|^3)
#: factorization) before libsvm. Not a measured crossover: the linear-SVM grid on 2,000
#: raw-pixel points took 2.5 s before and 1.75 s and 2.3 s in two runs with this and the other
#: changes of the same issue.
SMO_COLD_MAX_POINTS = 2_000
#: Most SMO iterations of a fit from scratch before libsvm takes over, per training point (at
#: least :data:`SMO_COLD_MIN_ITER`): a tenth of a warm start's budget.
SMO_COLD_ITER_PER_POINT = 10
#: ... and at least this many.
SMO_COLD_MIN_ITER = 2_000


def _feasible_start(
    start, n: int, keep: np.ndarray, y: np.ndarray, cap: np.ndarray
) -> np.ndarray | None:
    """``start`` padded to n rows, restricted to ``keep`` and scaled into the boxes, or None.

    ``a0 = min(r start, c)`` with ``r = min(1, min_i c_i / start_i)`` over start_i > 0 (the
    ``min`` only absorbs the rounding of r start_i); None when ``start`` is longer than n, not
    finite and non-negative, all zero, or y^T a0 is not 0 to :data:`MARGIN_TOL` of sum(a0).
    """
    start = np.asarray(start, dtype=float).ravel()
    if start.shape[0] > n or not np.all(np.isfinite(start)) or np.any(start < 0):
        return None
    full = np.zeros(n)
    full[: start.shape[0]] = start
    a = full[keep]
    positive = a > 0
    if not positive.any():
        return None
    r = min(1.0, float(np.min(cap[positive] / a[positive])))
    a0 = np.minimum(r * a, cap)
    if abs(float(y @ a0)) > MARGIN_TOL * max(1.0, float(a0.sum())):
        return None
    return a0


def _warm_smo(
    K: np.ndarray, y: np.ndarray, cap: np.ndarray, a0: np.ndarray, tol: float, budget: int
) -> tuple[np.ndarray, float] | None:
    """SMO from ``a0`` down the tolerances :data:`WARM_EPS` and ``tol``, polished after each
    round: the first certified polish (duals, intercept), or None (also when the rounds take
    more than ``budget`` iterations together).

    A round that ends on the margin and bound sets of a polish that failed is not polished
    again (the polish depends only on the sets: it would fail the same way)."""
    from ._smo import smo_gradient, smo_intercept, smo_iterate  # numba: compiled on first use

    # a block of a larger matrix whose rows are contiguous is read as it is (no copy of K)
    if K.dtype != np.float64 or K.strides[1] != K.itemsize:
        K = np.ascontiguousarray(K, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    cap = np.ascontiguousarray(cap, dtype=np.float64)
    alpha = np.array(a0, dtype=np.float64, copy=True)
    G = smo_gradient(K, y, alpha)
    budget = int(budget)
    ladder = sorted({max(float(e), float(tol)) for e in WARM_EPS} | {float(tol)}, reverse=True)
    failed = None  # the sets of the last polish that failed
    for eps in ladder:
        n_iter, converged = smo_iterate(K, y, cap, alpha, G, eps, budget)
        if not converged:
            return None
        budget -= n_iter
        sets = np.concatenate(dual_sets(alpha, cap))
        if failed is not None and np.array_equal(sets, failed):
            continue
        b = float(smo_intercept(y, cap, alpha, G))
        new, new_b, polished = polish_svm_dual(K, y, cap, alpha, b)
        if polished:
            return new, new_b
        failed = sets
    return None


def _libsvm(
    K: np.ndarray, y: np.ndarray, C: float, sample_weight: np.ndarray, tol: float, max_iter: int
) -> tuple[np.ndarray, float, int]:
    """libsvm's (duals, intercept, iterations) on a precomputed kernel, all weights positive."""
    svc = SVC(kernel="precomputed", C=C, tol=tol, cache_size=500, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the budget is checked by the caller
        svc.fit(K, y, sample_weight=sample_weight)
    alpha = np.zeros(len(y))
    # svc.support_ indexes the rows passed to it (all of them have positive weight here)
    alpha[svc.support_] = np.abs(svc.dual_coef_[0])
    return alpha, float(svc.intercept_[0]), int(np.max(svc.n_iter_))


def svm_kkt_slope(
    kernel,
    X_D: np.ndarray,
    y_D: np.ndarray,
    alpha_D: np.ndarray,
    b: float,
    margin: np.ndarray | None,
    X_P: np.ndarray,
    y_P: np.ndarray,
    X_t: np.ndarray,
    y_t: np.ndarray,
    C: float,
    *,
    cap_D: np.ndarray | None = None,
    products=None,
) -> SlopeTerms:
    """Right-derivative dL(V_t)/dbeta at beta = 0+ of an SVM fitted on D (DESIGN §4).

    At beta = 0+ every poisoning point with y_j f(x_j) < 1 enters as a bounded support vector,
    a_j = beta C, so da_j/dbeta = C. The margin support vectors M re-balance through

        [[Q_MM, y_M], [y_M^T, 0]] [da_M; db] = -[C Q_MA 1; C y_A^T 1],

    where A is that active part of P, and the test decision values move by

        df(x)/dbeta = sum_{k in M} y_k K(x, x_k) da_k + db + C sum_{j in A} y_j K(x, x_j).

    The mean hinge on V_t then moves by mean(-y df/dbeta over points with y f < 1); a test
    point exactly on the kink (y f = 1 up to the round-off of f, e.g. when f is constant)
    contributes its right-derivative max(0, -y df/dbeta).

    Duplicated training points: rows of ``X_D`` with the same input and the same label are one
    point of the objective (their hinge terms add up), so they are merged first, exactly: one
    dual (the sum of theirs) in one box (the sum of their boxes), the margin set read off the
    merged duals. Without the merge, duplicated margin vectors make the KKT matrix exactly
    singular, and a pair that the solver split as (C, 0) would hide a margin point. The
    number of rows merged is reported as ``duplicates_merged``. Identical inputs with opposite
    labels are distinct points and stay apart (they cannot both be on the margin).

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B) -> K(A, B)``, the learner's kernel.
    X_D : ndarray of shape (n_D, n_features)
        Training points of the clean fit with positive weight (all of them, so that duplicates
        with a zero dual are seen; or only its support vectors).
    y_D : ndarray of shape (n_D,)
        Their labels in {-1, +1}.
    alpha_D : ndarray of shape (n_D,)
        Their duals a_i >= 0 (0 off the support).
    b : float
        The intercept of the clean fit.
    margin : ndarray of bool, shape (n_D,) or None
        The margin support vectors M among the rows of ``X_D``; None to read them off
        ``alpha_D`` and ``cap_D`` (:func:`dual_sets`). Recomputed after a merge of duplicates.
    X_P : ndarray of shape (n_P, n_features)
        Poisoning inputs P.
    y_P : ndarray of shape (n_P,)
        The attacker's labels of P in {-1, +1}.
    X_t : ndarray of shape (n_t, n_features)
        Backdoor test inputs V_t.
    y_t : ndarray of shape (n_t,)
        The attacker's labels of V_t in {-1, +1}.
    C : float
        The SVM's C (lambda = 1/C).
    cap_D : ndarray of shape (n_D,), optional
        The boxes C s_i of the rows of ``X_D``; default C (unit weights, as a clean fit has).
    products : callable, optional
        ``products(A, B, v, with_scale=False)``: ``K(A, B) v`` and, with ``with_scale``, the
        scale of its round-off ``|K(A, B)| |v|`` as a second array (the contract of
        :meth:`_SVMLearner.kernel_products`); default through ``kernel``'s matrices. Decision
        values and their moves are computed through it, the KKT matrix through ``kernel``.

    Returns
    -------
    SlopeTerms
        ``derivative`` (mean hinge on V_t per unit of beta; negative when the backdoor is being
        learned), ``condition_number`` (1-norm, of the KKT matrix), ``second_derivative`` (0),
        ``dtheta_dbeta`` ([da_M; db]), ``n_margin``, ``n_poison_active`` (|A|) and
        ``duplicates_merged`` (rows of D merged into an identical one).

    Raises
    ------
    DegenerateKKTError
        If there is no margin support vector (the bordered system has no solution; the
        message says how many support vectors sit at their bound and what to change), or if a
        poisoning point lies exactly on the margin (y f = 1 up to round-off), where the KKT
        system at beta = 0 does not say whether it enters; or if the clean optimum has w = 0
        (f = b on every support vector, to :data:`MARGIN_TOL`) and its duals are not
        determined by the KKT system: a point of the margin class (all of it is on the
        margin, y b = 1) whose dual sits at 0 or at its box, or a singular KKT matrix (more
        margin vectors than the feature space has room for). An optimum with w = 0 whose
        margin class lies strictly inside its boxes with a regular KKT matrix has a unique
        dual and gets its slope.
    backdoor_curves.linalg.SingularSystemError
        If the KKT matrix is singular even after duplicates are merged: the margin vectors are
        linearly dependent in the kernel's feature space, so the KKT system does not determine
        the derivative; the message says why and what to change.

    Warns
    -----
    backdoor_curves.linalg.IllConditionedWarning
        If the KKT matrix's condition number exceeds
        :data:`~backdoor_curves.linalg.ILL_CONDITIONED` (1e12).
    """
    cap_D = np.full(len(y_D), float(C)) if cap_D is None else np.asarray(cap_D, dtype=float)
    # duplicates depend on the data only: found once per (read-only) training set
    groups = _DUPLICATES.get(
        X_D, lambda: _duplicate_groups(X_D, y_D), key=np.asarray(y_D, dtype=float).tobytes()
    )
    merged = 0
    if groups is not None:
        first, inverse = groups
        merged = len(y_D) - len(first)
        alpha_D = np.bincount(inverse, weights=alpha_D)
        cap_D = np.bincount(inverse, weights=cap_D)
        X_D, y_D = take_rows(X_D, first), y_D[first]
        margin = None
    if margin is None:
        margin = dual_sets(alpha_D, cap_D)[0]
    M = np.flatnonzero(margin)
    sv = alpha_D > 0
    X_sv, ya_sv = take_rows(X_D, sv), (y_D * alpha_D)[sv]
    # w = 0 is possible only where the margin vectors are of one class (f = b = y_M on them)
    constant = None
    if np.unique(y_D[M]).size <= 1:
        constant = _constant_decision(kernel, X_sv, ya_sv, alpha_D[sv])
    if M.size == 0:
        raise DegenerateKKTError(_no_margin_message(alpha_D, cap_D, C, constant))
    if products is None:
        products = functools.partial(_matrix_products, kernel)
    f_P, scale_P = products(X_P, X_sv, ya_sv, with_scale=True)
    yf_P = y_P * (f_P + b)
    on_kink = np.abs(yf_P - 1.0) <= _roundoff(scale_P, b)
    if on_kink.any():
        raise DegenerateKKTError(
            f"{int(on_kink.sum())} poisoning point(s) lie exactly on the clean SVM's margin "
            "(y f = 1 up to round-off, e.g. copies of margin support vectors or a decision "
            "function that is constant): at beta = 0+ each may enter as a bound or a margin "
            "vector or stay out, which the KKT system at beta = 0 does not decide, so the "
            "right-derivative is not defined by it. The learning curve follows it exactly "
            "(learning_curve(..., method='path'))"
        )
    active = yf_P < 1.0
    X_A, y_A = take_rows(X_P, active), y_P[active]
    X_M, y_M = take_rows(X_D, M), y_D[M]
    if constant is not None:
        # w = 0: f = b at every point, so every row of D of the margin class (y_i b = 1) is on
        # the margin; one whose dual sits at 0 or at its box may enter the margin set at 0+
        weak = (y_D == y_M[0]) & ~margin
        if weak.any():
            raise DegenerateKKTError(
                _zero_w_message(constant, b, y_M[0], int(weak.sum()), int(np.sum(y_D == y_M[0])))
            )
    try:
        solver = kkt_solver(kkt_matrix(kernel(X_M, X_M), y_M))
    except SingularSystemError as exc:
        if constant is not None:
            raise DegenerateKKTError(
                _zero_w_message(constant, b, y_M[0], 0, int(np.sum(y_D == y_M[0])), M.size)
            ) from None
        raise SingularSystemError(
            f"{exc}: the {M.size} margin support vectors (duplicates merged) are linearly "
            "dependent in the kernel's feature space, so the KKT system does not determine the "
            "derivative. Points the kernel cannot tell apart (tiny feature scales, a tiny RBF "
            "gamma) or more margin vectors than features + 1 with the linear kernel cause "
            "this; standardize the features or change C (or gamma)"
        ) from None
    if active.any():
        rhs = -C * np.r_[y_M * products(X_M, X_A, y_A), y_A.sum()]
        sol = solver.solve(rhs)
        df_t = products(X_t, X_M, y_M * sol[:-1]) + sol[-1] + C * products(X_t, X_A, y_A)
    else:
        sol = np.zeros(M.size + 1)
        df_t = np.zeros(X_t.shape[0])
    f_t, scale_t = products(X_t, X_sv, ya_sv, with_scale=True)
    yf_t, rate = y_t * (f_t + b), -y_t * df_t  # rate: d(1 - y f)/dbeta
    hinge_rate = np.where(yf_t < 1.0, rate, 0.0)
    # a test point on the hinge's kink (y f = 1 up to the round-off of f) moves into the
    # loss only if 1 - y f grows: its right-derivative is max(0, rate), whatever the last bit
    kink = np.abs(yf_t - 1.0) <= _roundoff(scale_t, b)
    hinge_rate[kink] = np.maximum(rate[kink], 0.0)
    derivative = float(np.mean(hinge_rate))
    return SlopeTerms(
        derivative=derivative,
        condition_number=solver.condition_number,
        # the dual path is linear in beta on its first piece and the hinge is linear in f
        # away from its kink, so the right second derivative at 0+ is exactly 0
        second_derivative=0.0,
        dtheta_dbeta=sol,
        n_margin=int(M.size),
        n_poison_active=int(active.sum()),
        duplicates_merged=int(merged),
    )


def _matrix_products(kernel, A, B, v, *, with_scale: bool = False):
    """``K(A, B) v`` (and ``|K(A, B)| |v|``) through the matrix ``kernel(A, B)``."""
    K = kernel(A, B)
    products = K @ v
    return (products, np.abs(K) @ np.abs(v)) if with_scale else products


def _roundoff(scale: np.ndarray, b: float) -> np.ndarray:
    """Round-off bound of f = K coef + b, row by row, from the products' scale ``|K| |coef|``
    (at least one ulp of 1)."""
    eps = np.finfo(float).eps
    return np.maximum(ROUNDOFF_FACTOR * eps * (scale + abs(b)), eps)


_DUPLICATES = IdentityMemo("duplicated training rows")
_ABSOLUTE = IdentityMemo("absolute values")


def _absolute(X: np.ndarray) -> np.ndarray:
    """``|X|``, kept per read-only array (e.g. the test rows of a data set, used at every grid
    point)."""
    return _ABSOLUTE.get(X, lambda: np.abs(X))


def _duplicate_groups(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows with the same input and label: (first row of each group, group of each row).

    Groups are numbered in the order of their first row; None when every row is unique.
    Inputs are compared bit for bit (after ``+ 0.0``, so that -0.0 equals 0.0). Candidates are
    found first by a fingerprint, one matrix-vector product with fixed positive weights,
    r_i = x_i . u + y_i v: equal rows have fingerprints equal up to the product's round-off
    (at most 4 (d + 1) eps (|x_i| . u + |y_i| v) <= 4 (d + 1) eps (||x_i|| ||u|| + v), d
    features), so when no two fingerprints are that close every row is unique; otherwise the
    rows themselves are compared (sorted as byte strings).
    """
    if len(y) < 2:
        return None
    X = np.asarray(X, dtype=float)
    u = np.random.default_rng(0x5EED).uniform(1.0, 2.0, size=X.shape[1] + 1)
    prints = X @ u[:-1] + np.asarray(y, dtype=float) * u[-1]
    norms = np.sqrt(np.einsum("ij,ij->i", X, X)) * float(np.linalg.norm(u[:-1]))
    bound = 4.0 * (X.shape[1] + 1) * np.finfo(float).eps * (norms + u[-1])
    order = np.argsort(prints, kind="stable")
    gaps = np.diff(prints[order])
    if not np.any(gaps <= np.maximum(bound[order[1:]], bound[order[:-1]])):
        return None
    rows = np.ascontiguousarray(np.column_stack([X + 0.0, y]))
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if first.size == len(y):
        return None
    order = np.argsort(first, kind="stable")
    renumber = np.empty_like(order)
    renumber[order] = np.arange(order.size)
    return first[order], renumber[np.ravel(inverse)]


def _constant_decision(kernel, X_sv: np.ndarray, ya_sv: np.ndarray, a_sv: np.ndarray):
    """max |f - b| over the support vectors if f is constant on them (then w = 0), else None.

    w = sum_k y_k a_k phi(x_k) with sum_k y_k a_k = 0 gives ||w||^2 = sum_k y_k a_k (f(x_k) - b):
    a constant f on the support vectors is w = 0. "Constant": within :func:`margin_tolerance`
    (the KKT tolerance of the fit, plus the round-off of f).
    """
    if not len(ya_sv):
        return None
    K = kernel(X_sv, X_sv)
    spread = float(np.max(np.abs(K @ ya_sv)))
    return spread if spread <= margin_tolerance(a_sv, float(np.max(np.diagonal(K)))) else None


def _zero_w_message(
    spread: float, b: float, label: float, n_weak: int, n_class: int, n_margin: int = 0
) -> str:
    """Why the slope of a clean SVM with w = 0 is not determined by its KKT system."""
    why = (
        f"{n_weak} of those {n_class} points have a dual at 0 or at its box, so each may "
        "enter the margin set at beta = 0+ or not"
        if n_weak
        else f"its {n_margin} margin vectors are linearly dependent in the kernel's feature "
        "space (the KKT matrix is singular), so their duals are not unique"
    )
    return (
        f"the SVM fitted on the clean set has w = 0: its decision function is the constant "
        f"b = {b:.17g} (it varies by {spread:.2g} over the support vectors), because duals in "
        "their boxes balance the classes' feature sums (sum_i y_i a_i phi(x_i) = 0; e.g. classes "
        "whose weighted means coincide under the linear kernel). Every point of the class "
        f"y = {label:+g} is then on the margin (y f = 1) and the other class at its bounds; "
        f"{why}, which the KKT system at beta = 0 does not decide, so it does not determine "
        "the right-derivative. No C changes this (w = 0 stays optimal); the learning curve "
        "follows it exactly by re-fits (learning_curve(..., method='refit'))"
    )


def _no_margin_message(
    alpha: np.ndarray, cap: np.ndarray, C: float, constant: float | None = None
) -> str:
    """Why the clean SVM has no margin support vector, and what to change."""
    margin, bound = dual_sets(alpha, cap)
    n_sv, n_bound = int(np.count_nonzero(alpha > 0)), int(np.count_nonzero(bound))
    zero_w = (
        ""
        if constant is None
        else (
            f". Here f is constant on the support vectors (to {constant:.2g}: w = 0 to the KKT "
            "tolerance): either the features are too small to tell the points apart, or duals "
            "at their boxes balance the classes' feature sums (e.g. equal weighted means), and "
            "then w = 0 for every C and b is anywhere in [-1, 1]"
        )
    )
    return (
        f"the SVM fitted on the clean set has no margin support vector (0 < a_i < C s_i): "
        f"{n_bound} of its {n_sv} support vectors sit at their bound (C={C:g}), none strictly "
        "inside it, so the intercept is not fixed by an equality and the KKT system that defines "
        "the slope is degenerate (the right-derivative depends on an arbitrary choice of b). "
        "It happens when every support vector violates the margin: C too small for the data, "
        "features of tiny scale (for the linear kernel C times the squared feature scale is "
        "what counts), or a kernel that cannot tell the points apart (a tiny RBF gamma); use a "
        f"larger C, standardized features or a larger gamma{zero_w}"
    )


def _shared_support(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``A`` and ``B`` without the features that are zero in every row of both.

    Such features add nothing to inner products or squared distances, so linear and RBF
    kernels computed without them are the same; on MNIST 31 % of the pixels are always 0.
    """
    if B is A:  # one copy, so that the kernel of A with itself is a symmetric product (syrk)
        used = np.flatnonzero(A.any(axis=0))
        A = A if used.size == A.shape[1] else A[:, used]
        return A, A
    used = np.flatnonzero(A.any(axis=0) | B.any(axis=0))
    if used.size == A.shape[1]:
        return A, B
    return A[:, used], B[:, used]


#: Largest round-off tolerated in the exponent gamma ||a - b||^2 of an RBF kernel value when the
#: squared distances are expanded as |a|^2 + |b|^2 - 2 a.b; past it they are computed from the
#: differences (see :meth:`RBFSVMLearner.kernel`).
RBF_EXPANSION_ERROR = 1e-10


def _expansion_error(A: np.ndarray, B: np.ndarray, gamma: float) -> float:
    """Bound of the round-off of gamma (|a|^2 + |b|^2 - 2 a.b) over the rows of A and B."""
    if not (A.size and B.size):
        return 0.0
    largest = float(np.max(np.einsum("ij,ij->i", A, A))) + float(
        np.max(np.einsum("ij,ij->i", B, B))
    )
    return 4.0 * np.finfo(float).eps * gamma * largest


def _squared_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """||a - b||^2 from the differences, in blocks of rows of A (about 32 MB each)."""
    out = np.empty((len(A), len(B)))
    step = max(1, (1 << 22) // max(1, B.size))
    for start in range(0, len(A), step):
        diff = A[start : start + step, None, :] - B[None, :, :]
        out[start : start + step] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


class _SVMLearner(BaseLearner):
    """Shared fit (libsvm + exact KKT polish) and derivatives of the SVM learners."""

    loss = HINGE

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "warm_start": ["boolean"],
    }

    def kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """The kernel matrix K(A, B).

        Parameters
        ----------
        A : ndarray of shape (n_a, n_features)
            First set of points (rows).
        B : ndarray of shape (n_b, n_features)
            Second set of points (rows).

        Returns
        -------
        ndarray of shape (n_a, n_b)
        """
        raise NotImplementedError

    def kernel_products(
        self, A: np.ndarray, B: np.ndarray, v: np.ndarray, *, with_scale: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """``K(A, B) v``, e.g. decision values ``f - b`` for dual coefficients ``v`` on ``B``.

        Parameters
        ----------
        A : ndarray of shape (n_a, n_features)
            The points where the products are wanted.
        B : ndarray of shape (n_b, n_features)
            The points ``v`` weighs.
        v : ndarray of shape (n_b,)
            The weights.
        with_scale : bool, default=False
            Also return the scale of the products' round-off, ``|K(A, B)| |v|`` (elementwise
            absolute values): the error of each product is a few eps times it.

        Returns
        -------
        ndarray of shape (n_a,), or a pair of them with ``with_scale``
            Through the kernel matrix :meth:`kernel` (the linear SVM goes through the weights
            instead, see :meth:`LinearSVMLearner.kernel_products`).
        """
        return _matrix_products(self.kernel, A, B, v, with_scale=with_scale)

    @property
    def loss_weight(self) -> float:
        """C, the weight of the hinge term."""
        return self.C

    def _kernel_factor(self, X: np.ndarray) -> np.ndarray | None:
        """G with G G^T = K(X, X) when it comes cheaper than an eigendecomposition, else None."""
        return None

    def _fit(self, X, y, sample_weight):
        # rows whose box C s_i is 0 (underflow included) hold a dual of 0: left out, like s_i = 0
        keep = np.flatnonzero(self.C * sample_weight > 0)
        if np.unique(y[keep]).size != 2:
            raise ValueError(
                f"sample_weight times C={self.C:g} underflows to 0 for every sample of one class "
                "(weights below about 1e-308 / C), so a single class is left"
            )
        # all rows, row-major (the layout a copy would have, so the same kernel bits): no copy
        whole = keep.size == X.shape[0] and X.flags.c_contiguous
        Xk = X if whole else take_rows(X, keep)
        yk, cap = y[keep], self.C * sample_weight[keep]
        alpha, b, self.polished_ = solve_svm_dual(
            self.kernel(Xk, Xk),
            yk,
            self.C,
            sample_weight[keep],
            self.tol,
            self._start(X, keep),
            factor=self._kernel_factor(Xk),
            from_zero=bool(getattr(self, "warm_start", False)),
        )
        margin, bound = dual_sets(alpha, cap)
        self.alpha_ = np.zeros(X.shape[0])
        self.alpha_[keep] = alpha
        self.dual_coef_full_ = np.zeros(X.shape[0])
        self.dual_coef_full_[keep] = yk * alpha
        self.intercept_ = b
        self.support_ = keep[alpha > 0]
        self.margin_ = keep[margin]
        self.bound_ = keep[bound]
        # the support vectors (as SVC keeps them) and, over them, labels, duals and margin set:
        # all the slope and derivatives need, so the training matrix is not kept
        sv = alpha > 0
        self.support_vectors_ = take_rows(Xk, sv)
        self._sv_y, self._sv_alpha, self._sv_margin = yk[sv], alpha[sv], margin[sv]
        self._sv_coef = self._sv_y * self._sv_alpha

    def _start(self, X, keep: np.ndarray) -> np.ndarray | None:
        """The previous fit's duals on the rows ``keep`` of ``X`` (padded with zeros past the
        rows it was fitted on), when ``warm_start`` is set and the learner was fitted; else None.
        A start that does not fit (more rows than ``X``, other labels) is refused by
        :func:`solve_svm_dual`, which then solves from scratch."""
        previous = getattr(self, "alpha_", None) if getattr(self, "warm_start", False) else None
        if previous is None:
            return None
        if previous.shape[0] > X.shape[0]:
            return previous  # longer than the rows: refused, a cold fit
        full = np.zeros(X.shape[0])
        full[: previous.shape[0]] = previous
        return full[keep]

    def _decision(self, X):
        return self.kernel(X, self.support_vectors_) @ self._sv_coef + self.intercept_

    def _dfdtheta(self, X):
        X_M, y_M = self.support_vectors_[self._sv_margin], self._sv_y[self._sv_margin]
        # without margin support vectors theta = (b,) alone
        K = self.kernel(X, X_M) if y_M.size else np.zeros((X.shape[0], 0))
        return np.hstack([K * y_M, np.ones((X.shape[0], 1))])

    @property
    def params_(self) -> np.ndarray:
        """theta = (a_M, b): duals of the margin support vectors and the intercept."""
        return np.r_[self._sv_alpha[self._sv_margin], self.intercept_]

    def hessian(self, X, y, sample_weight=None) -> np.ndarray:
        """Bordered KKT matrix ``[[Q_MM, y_M], [y_M^T, 0]]`` on the margin support vectors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows passed to ``fit``; the margin rows ``margin_`` enter.
        y : array-like of shape (n_samples,)
            Their labels, from ``classes_``.
        sample_weight : array-like of shape (n_samples,), optional
            Not needed: the margin set was fixed by the fit.

        Returns
        -------
        ndarray of shape (n_margin + 1, n_margin + 1)
            ``Q_ik = y_i y_k K(x_i, x_k)`` on the margin set, bordered by the labels (the
            "Hessian" of theta = (a_M, b); it is symmetric but indefinite).
        """
        X = self._check_X(X)
        y_pm = self.encode(y)
        check_same_length(X, y_pm, "X", "y")
        X_M = X[self.margin_]
        return kkt_matrix(self.kernel(X_M, X_M), y_pm[self.margin_])

    def slope_terms(self, data: BackdoorData) -> SlopeTerms:
        """Right-derivative dL(V_t)/dbeta at beta = 0+ (see :func:`svm_kkt_slope`).

        Parameters
        ----------
        data : BackdoorData
            The learner must have been fitted on ``data.X_clean, data.y_clean``.

        Returns
        -------
        SlopeTerms

        Raises
        ------
        DegenerateKKTError
            If there is no margin support vector.
        backdoor_curves.linalg.SingularSystemError
            If the margin support vectors are linearly dependent in the kernel's feature space
            (duplicated rows of D are merged first, so duplicates alone never cause it).
        """
        if self.alpha_.shape[0] == data.n_clean:  # fitted on D: all rows, duplicates seen
            rows = (data.X_clean, self.encode(data.y_clean, "y_clean"), self.alpha_, None)
        else:  # fitted on other rows (not the contract): its support vectors alone
            rows = (self.support_vectors_, self._sv_y, self._sv_alpha, self._sv_margin)
        return svm_kkt_slope(
            self.kernel,
            *rows[:3],
            self.intercept_,
            rows[3],
            data.X_poison,
            self.encode(data.y_poison, "y_poison"),
            data.X_test_bd,
            self.encode(data.y_test_bd, "y_test_bd"),
            self.C,
            products=self.kernel_products,
        )


@register_learner("linear_svm", label="linear SVM", color="tab:blue")
class LinearSVMLearner(_SVMLearner):
    """Linear SVM, exactly ``SVC(kernel="linear", C=C)`` (hinge loss, dual solver).

    Parameters
    ----------
    C : float, default=1.0
        Weight of the hinge term; lambda = 1/C.
    tol : float, default=1e-10
        libsvm's stopping tolerance before the exact KKT polish.
    warm_start : bool, default=False
        Start from the previous solution when refitting (along a C grid or a learning curve):
        SMO from the previous duals, then the exact KKT polish, so the optimum is the same as
        a cold fit's (see :func:`solve_svm_dual`). The first fit runs the same SMO from zero
        duals (up to 2,000 points), libsvm only where it gives up.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        w = sum_k y_k a_k x_k.
    intercept_ : float
        The intercept b.
    alpha_, dual_coef_full_ : ndarray of shape (n_samples,)
        Duals a_i and y_i a_i laid out over the rows passed to ``fit`` (zeros off the support and
        on zero-weight rows, unlike ``SVC.support_`` which re-indexes).
    support_, margin_, bound_ : ndarray of int
        Indices (into the rows passed to ``fit``) of the support, margin and bound vectors.
    polished_ : bool
        Whether the duals are the exact KKT solve (False only where libsvm's approximate duals
        were kept, no polish being certified).
    """

    def __init__(self, C: float = 1.0, *, tol: float = 1e-10, warm_start: bool = False):
        self.C = C
        self.tol = tol
        self.warm_start = warm_start

    def kernel(self, A, B):
        """The linear kernel ``A B^T``.

        Parameters
        ----------
        A : ndarray of shape (n_a, n_features)
            First set of points (rows).
        B : ndarray of shape (n_b, n_features)
            Second set of points (rows).

        Returns
        -------
        ndarray of shape (n_a, n_b)
            Inner products (for ``B is A``, features zero in every row are skipped: same
            values).
            Served from the current :func:`~backdoor_curves.learners.pairwise.shared_pairwise`
            cache when both sets are rows of its data set.

        Raises
        ------
        MemoryBudgetError
            If the matrix would exceed the memory budget.
        """
        cache = active_cache()
        if cache is not None and (K := cache.inner(A, B)) is not None:
            return K
        check_matrix_size((len(A), len(B)), "the linear kernel matrix")
        if B is A:  # a symmetric product over the used features
            return linear_kernel(*_shared_support(A, B))
        # e.g. test rows against support vectors: a small product, where selecting the used
        # features and scikit-learn's checks cost more than the product itself
        return np.asarray(A, dtype=float) @ np.asarray(B, dtype=float).T

    def kernel_products(
        self, A: np.ndarray, B: np.ndarray, v: np.ndarray, *, with_scale: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """``K(A, B) v = A (B^T v)``, through the weights ``B^T v``.

        O((n_a + n_b) p) work instead of the O(n_a n_b p) of the kernel matrix.

        Parameters
        ----------
        A : ndarray of shape (n_a, n_features)
            The points where the products are wanted.
        B : ndarray of shape (n_b, n_features)
            The points ``v`` weighs.
        v : ndarray of shape (n_b,)
            The weights.
        with_scale : bool, default=False
            Also return the scale of the round-off, ``|A| (|B|^T |v|)``: at least
            ``|A B^T| |v|``, and what bounds the error of the products computed in this order.

        Returns
        -------
        ndarray of shape (n_a,), or a pair of them with ``with_scale``
        """
        A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
        v = np.asarray(v, dtype=float)
        products = A @ (B.T @ v)
        if not with_scale:
            return products
        return products, _absolute(A) @ (_absolute(B).T @ np.abs(v))

    def _kernel_factor(self, X: np.ndarray) -> np.ndarray | None:
        # K = X X^T: the inputs are a factor, with fewer columns than an eigendecomposition's
        # when there are fewer features than points
        return X if X.shape[1] < X.shape[0] else None

    def _fit(self, X, y, sample_weight):
        super()._fit(X, y, sample_weight)
        self.coef_ = self.support_vectors_.T @ self._sv_coef

    def _decision(self, X):
        return X @ self.coef_ + self.intercept_

    def deviation_vector(self) -> np.ndarray:
        """The weights w = ``coef_`` (DESIGN §5).

        Returns
        -------
        ndarray of shape (n_features,)
        """
        return self.coef_


@register_learner("rbf_svm", label="RBF SVM", color="tab:red")
class RBFSVMLearner(_SVMLearner):
    """RBF-kernel SVM, exactly ``SVC(kernel="rbf", C=C, gamma=gamma)``.

    K(x, x') = exp(-gamma ||x - x'||^2).

    Parameters
    ----------
    C : float, default=1.0
        Weight of the hinge term; lambda = 1/C.
    gamma : float, default=0.01
        Kernel width (inverse squared length scale), > 0.
    tol : float, default=1e-10
        libsvm's stopping tolerance before the exact KKT polish.
    warm_start : bool, default=False
        Start from the previous solution when refitting (along a C grid or a learning curve):
        SMO from the previous duals, then the exact KKT polish, so the optimum is the same as
        a cold fit's (see :func:`solve_svm_dual`). The first fit runs the same SMO from zero
        duals (up to 2,000 points), libsvm only where it gives up.

    Attributes
    ----------
    intercept_ : float
        The intercept b.
    alpha_, dual_coef_full_ : ndarray of shape (n_samples,)
        Duals a_i and y_i a_i laid out over the rows passed to ``fit`` (zeros off the support and
        on zero-weight rows, unlike ``SVC.support_`` which re-indexes). The parameter deviation
        uses the RKHS norm of ``dual_coef_full_`` (there is no ``coef_``).
    support_, margin_, bound_ : ndarray of int
        Indices (into the rows passed to ``fit``) of the support, margin and bound vectors.
    support_vectors_ : ndarray of shape (n_support, n_features)
        The support vectors, the only training rows kept.
    polished_ : bool
        Whether the duals are the exact KKT solve (False only where libsvm's approximate duals
        were kept, no polish being certified).
    """

    _parameter_constraints: dict = {
        **_SVMLearner._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self, C: float = 1.0, *, gamma: float = 0.01, tol: float = 1e-10, warm_start: bool = False
    ):
        self.C = C
        self.gamma = gamma
        self.tol = tol
        self.warm_start = warm_start

    def kernel(self, A, B):
        """The RBF kernel ``exp(-gamma ||a - b||^2)``.

        Parameters
        ----------
        A : ndarray of shape (n_a, n_features)
            First set of points (rows).
        B : ndarray of shape (n_b, n_features)
            Second set of points (rows).

        Returns
        -------
        ndarray of shape (n_a, n_b)
            Kernel values in (0, 1]. Served from the current
            :func:`~backdoor_curves.learners.pairwise.shared_pairwise` cache when both sets are
            rows of its data set (``exp(-gamma S)`` of its squared distances S). Squared
            distances come from ``|a|^2 + |b|^2 - 2 a.b`` (BLAS), whose round-off is about eps
            (|a|^2 + |b|^2); where gamma times that exceeds :data:`RBF_EXPANSION_ERROR` (huge
            feature values: 1e8 makes even K(x, x) = 0.8) they are computed from the differences
            a - b instead, exactly and more slowly.

        Raises
        ------
        MemoryBudgetError
            If the matrix would exceed the memory budget.
        """
        if _expansion_error(A, B, float(self.gamma)) > RBF_EXPANSION_ERROR:
            check_matrix_size((len(A), len(B)), "the RBF kernel matrix")
            return np.exp(-float(self.gamma) * _squared_distances(*_shared_support(A, B)))
        cache = active_cache()
        if cache is not None:
            gamma = float(self.gamma)
            K = cache.kernel(("rbf", gamma), "sqdist", lambda S: np.exp(-gamma * S), A, B)
            if K is not None:
                return K
        check_matrix_size((len(A), len(B)), "the RBF kernel matrix")
        return rbf_kernel(*_shared_support(A, B), gamma=self.gamma)

    def deviation_vector(self) -> np.ndarray:
        """The signed duals y_i a_i over the rows passed to ``fit`` (DESIGN §5).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.dual_coef_full_

    def deviation_gram(self, X) -> np.ndarray:
        """The kernel matrix K(X, X): the RKHS inner product of the deviation.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The rows the dual vectors are laid out on (the training rows).

        Returns
        -------
        ndarray of shape (n_samples, n_samples)
        """
        return self.kernel(X, X)
