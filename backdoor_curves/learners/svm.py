"""Support vector machines (linear and RBF kernels) and the KKT derivative of their dual.

Objective (DESIGN §3), exactly ``sklearn.svm.SVC(kernel=..., C=C)`` with sample weights:

    min  C * sum_i s_i max(0, 1 - y_i f(x_i)) + 1/2 ||w||^2,   f(x) = sum_k y_k a_k K(x_k, x) + b

solved in the dual (0 <= a_i <= C s_i, sum_i y_i a_i = 0) by libsvm on the precomputed kernel
matrix (:func:`solve_svm_dual`; the SVM path reuses the same matrix), then *polished*: with the
margin set M = {0 < a_i < C s_i} and the bound set B = {a_i = C s_i} read off libsvm's answer,
the KKT equalities y_i f(x_i) = 1 (i in M) and y^T a = 0 are a linear system whose solution is
exact to round-off; it is kept when it satisfies every KKT condition (else libsvm's answer is).
libsvm alone is accurate to about 1e-7 relative at moderate C and only 1e-4 at C = 100 on MNIST
(its incrementally updated gradient drifts), which is why the polish exists.

Parameters of the derivative (secml's convention): theta = (a_M, b), f depends on them through
df/da_k = y_k K(x_k, x) and df/db = 1, and the "Hessian" is the bordered KKT matrix

    H = [[Q_MM, y_M], [y_M^T, 0]],   Q_ik = y_i y_k K(x_i, x_k).
"""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
from sklearn.metrics.pairwise import linear_kernel, rbf_kernel
from sklearn.svm import SVC

from .._memory import check_matrix_size
from .._param_validation import Interval
from .._validation import check_same_length
from ..data import BackdoorData
from ..linalg import LUSolver, SingularSystemError
from ..losses import HINGE
from .base import BaseLearner, SlopeTerms
from .pairwise import active_cache, take_rows
from .registry import register_learner

__all__ = [
    "LinearSVMLearner",
    "RBFSVMLearner",
    "DegenerateKKTError",
    "polish_svm_dual",
    "solve_svm_dual",
    "kkt_matrix",
    "bordered_matrix",
    "dual_sets",
    "svm_kkt_slope",
]

#: Relative tolerance (in units of the box C s_i) separating margin from bound / zero duals.
ALPHA_TOL = 1e-8
#: Tolerance on y f - 1 in the KKT check of a polished solution.
MARGIN_TOL = 1e-7


class DegenerateKKTError(ArithmeticError):
    """The SVM's KKT system at beta = 0 has no margin support vector; the slope is undefined."""


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


def dual_sets(alpha: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Margin (0 < a_i < c_i) and bound (a_i = c_i > 0) duals, to ALPHA_TOL of the box.

    Parameters
    ----------
    alpha : ndarray of shape (n,)
        Duals a_i >= 0.
    cap : ndarray of shape (n,)
        Their boxes c_i = C s_i >= 0.

    Returns
    -------
    margin : ndarray of bool, shape (n,)
        ``ALPHA_TOL c_i < a_i < (1 - ALPHA_TOL) c_i``.
    bound : ndarray of bool, shape (n,)
        ``a_i >= (1 - ALPHA_TOL) c_i`` with ``c_i > 0``. The rest (neither) are the zero duals.
    """
    margin = (alpha > ALPHA_TOL * cap) & (alpha < cap * (1.0 - ALPHA_TOL))
    bound = (cap > 0) & (alpha >= cap * (1.0 - ALPHA_TOL))
    return margin, bound


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
        (to :data:`MARGIN_TOL`), else the input duals.
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
    Q_rows = (y[M, None] * y[None, :]) * K[M]
    rhs = np.r_[1.0 - Q_rows @ a_B, -(y @ a_B)]
    H = kkt_matrix(K[np.ix_(M, M)], y[M])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an ill-conditioned solve is caught by the KKT check
            sol = LUSolver(H, "SVM KKT matrix").solve(rhs)
    except SingularSystemError:
        # e.g. duplicated margin points: any solution of the equalities that passes the KKT
        # check below is optimal, so the least-squares one is certified, not trusted blindly
        sol = np.linalg.lstsq(H, rhs, rcond=None)[0]
    new = a_B.copy()
    new[M] = sol[:-1]
    new_b = float(sol[-1])
    if np.any(new[M] <= 0) or np.any(new[M] >= cap[M]):
        return alpha, b, False
    yf = y * (K @ (y * new) + new_b)
    zero = ~(margin | bound)
    if (
        np.any(np.abs(yf[M] - 1) > MARGIN_TOL)
        or np.any(yf[zero] < 1 - MARGIN_TOL)
        or np.any(yf[bound] > 1 + MARGIN_TOL)
        or abs(y @ new) > MARGIN_TOL * max(1.0, new.sum())
    ):
        return alpha, b, False
    return new, new_b, True


def solve_svm_dual(
    K: np.ndarray, y: np.ndarray, C: float, sample_weight: np.ndarray, tol: float
) -> tuple[np.ndarray, float, bool]:
    """The SVM dual from a precomputed kernel: libsvm, then the exact KKT polish.

    Solves ``min 1/2 a^T Q a - 1^T a`` subject to ``0 <= a_i <= C s_i`` and ``y^T a = 0``
    (Q = (y y^T) * K), i.e. the dual of ``SVC(C=C)`` fitted with ``sample_weight=s``, with
    ``SVC(kernel="precomputed", tol=tol)`` followed by :func:`polish_svm_dual`. Rows with zero
    weight are left out of libsvm's problem (their duals are 0), so indices stay those of ``K``.

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

    Returns
    -------
    alpha : ndarray of shape (n,)
        Duals (zeros off the support and on zero-weight rows).
    b : float
        Intercept.
    polished : bool
        Whether the exact KKT solve replaced libsvm's approximate solution.
    """
    keep = np.flatnonzero(sample_weight > 0)
    K_keep = K if keep.size == K.shape[0] else K[np.ix_(keep, keep)]
    svc = SVC(kernel="precomputed", C=C, tol=tol, cache_size=500)
    svc.fit(K_keep, y[keep], sample_weight=sample_weight[keep])
    alpha = np.zeros(keep.size)
    # svc.support_ indexes the rows passed to it (all of them have positive weight here)
    alpha[svc.support_] = np.abs(svc.dual_coef_[0])
    alpha, b, polished = polish_svm_dual(
        K_keep, y[keep], C * sample_weight[keep], alpha, float(svc.intercept_[0])
    )
    full = np.zeros(K.shape[0])
    full[keep] = alpha
    return full, b, polished


def svm_kkt_slope(
    kernel,
    X_D: np.ndarray,
    y_D: np.ndarray,
    alpha_D: np.ndarray,
    b: float,
    margin: np.ndarray,
    X_P: np.ndarray,
    y_P: np.ndarray,
    X_t: np.ndarray,
    y_t: np.ndarray,
    C: float,
) -> SlopeTerms:
    """Right-derivative dL(V_t)/dbeta at beta = 0+ of an SVM fitted on D (DESIGN §4).

    At beta = 0+ every poisoning point with y_j f(x_j) < 1 enters as a bounded support vector,
    a_j = beta C, so da_j/dbeta = C. The margin support vectors M re-balance through

        [[Q_MM, y_M], [y_M^T, 0]] [da_M; db] = -[C Q_MA 1; C y_A^T 1],

    where A is that active part of P, and the test decision values move by

        df(x)/dbeta = sum_{k in M} y_k K(x, x_k) da_k + db + C sum_{j in A} y_j K(x, x_j).

    The mean hinge on V_t then moves by mean(-y df/dbeta over points with y f < 1).

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B) -> K(A, B)``, the learner's kernel.
    X_D : ndarray of shape (n_D, n_features)
        Training points of the clean fit with positive weight (or only its support vectors).
    y_D : ndarray of shape (n_D,)
        Their labels in {-1, +1}.
    alpha_D : ndarray of shape (n_D,)
        Their duals a_i >= 0 (0 off the support).
    b : float
        The intercept of the clean fit.
    margin : ndarray of bool, shape (n_D,)
        The margin support vectors M among the rows of ``X_D``.
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

    Returns
    -------
    SlopeTerms
        ``derivative`` (mean hinge on V_t per unit of beta; negative when the backdoor is being
        learned), ``condition_number`` (1-norm, of the KKT matrix), ``second_derivative`` (0),
        ``dtheta_dbeta`` ([da_M; db]), ``n_margin`` and ``n_poison_active`` (|A|).

    Raises
    ------
    DegenerateKKTError
        If there is no margin support vector (the bordered system has no solution).
    backdoor_curves.linalg.SingularSystemError
        If the KKT matrix is singular (e.g. duplicated margin support vectors).
    """
    M = np.flatnonzero(margin)
    if M.size == 0:
        raise DegenerateKKTError(
            "the SVM fitted on the clean set has no margin support vector (0 < a_i < C), so the "
            "KKT system that defines the slope is degenerate"
        )
    sv = alpha_D > 0
    X_sv, ya_sv = take_rows(X_D, sv), (y_D * alpha_D)[sv]
    f_P = kernel(X_P, X_sv) @ ya_sv + b
    active = y_P * f_P < 1.0
    X_A, y_A = take_rows(X_P, active), y_P[active]
    X_M, y_M = take_rows(X_D, M), y_D[M]
    solver = LUSolver(kkt_matrix(kernel(X_M, X_M), y_M), "SVM KKT matrix")
    if active.any():
        K_MA = kernel(X_M, X_A)
        rhs = -C * np.r_[y_M * (K_MA @ y_A), y_A.sum()]
        sol = solver.solve(rhs)
        df_t = kernel(X_t, X_M) @ (y_M * sol[:-1]) + sol[-1] + C * (kernel(X_t, X_A) @ y_A)
    else:
        sol = np.zeros(M.size + 1)
        df_t = np.zeros(X_t.shape[0])
    f_t = kernel(X_t, X_sv) @ ya_sv + b
    derivative = float(np.mean(HINGE.d1(y_t, f_t) * df_t))
    return SlopeTerms(
        derivative=derivative,
        condition_number=solver.condition_number,
        # the dual path is linear in beta on its first piece and the hinge is linear in f
        # away from its kink, so the right second derivative at 0+ is exactly 0
        second_derivative=0.0,
        dtheta_dbeta=sol,
        n_margin=int(M.size),
        n_poison_active=int(active.sum()),
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


class _SVMLearner(BaseLearner):
    """Shared fit (libsvm + exact KKT polish) and derivatives of the SVM learners."""

    loss = HINGE

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="neither")],
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

    @property
    def loss_weight(self) -> float:
        """C, the weight of the hinge term."""
        return self.C

    def _fit(self, X, y, sample_weight):
        keep = np.flatnonzero(sample_weight > 0)
        Xk, yk, cap = take_rows(X, keep), y[keep], self.C * sample_weight[keep]
        alpha, b, self.polished_ = solve_svm_dual(
            self.kernel(Xk, Xk), yk, self.C, sample_weight[keep], self.tol
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
        """
        return svm_kkt_slope(
            self.kernel,
            self.support_vectors_,
            self._sv_y,
            self._sv_alpha,
            self.intercept_,
            self._sv_margin,
            data.X_poison,
            self.encode(data.y_poison, "y_poison"),
            data.X_test_bd,
            self.encode(data.y_test_bd, "y_test_bd"),
            self.C,
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
        Whether the exact KKT solve replaced libsvm's approximate solution.
    """

    def __init__(self, C: float = 1.0, *, tol: float = 1e-10):
        self.C = C
        self.tol = tol

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
            Inner products (features zero in every row of both are skipped: same values).
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
        return linear_kernel(*_shared_support(A, B))

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
        Whether the exact KKT solve replaced libsvm's approximate solution.
    """

    _parameter_constraints: dict = {
        **_SVMLearner._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, C: float = 1.0, *, gamma: float = 0.01, tol: float = 1e-10):
        self.C = C
        self.gamma = gamma
        self.tol = tol

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
            rows of its data set (``exp(-gamma S)`` of its squared distances S).

        Raises
        ------
        MemoryBudgetError
            If the matrix would exceed the memory budget.
        """
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
