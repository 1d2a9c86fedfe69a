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

import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from .._validation import check_positive
from ..linalg import BlockIdentitySolver, CholeskySolver, SingularSystemError
from ..losses import LOGISTIC, SQUARED, Loss
from .base import BaseLearner, SlopeTerms

__all__ = [
    "LogisticLearner",
    "RidgeLearner",
    "augment",
    "smooth_objective",
    "smooth_gradient",
    "smooth_hessian",
    "curvature_hessian",
    "hessian_solver",
    "DualHessianSolver",
    "newton_fit",
    "smooth_slope",
]


def augment(X: np.ndarray) -> np.ndarray:
    """Append the intercept column: ``[X, 1]``."""
    return np.hstack([X, np.ones((X.shape[0], 1))])


def active_columns(Xa: np.ndarray) -> np.ndarray:
    """Columns of ``Xa`` that are non-zero in some sample (the intercept column always is).

    For the others w_j = 0 at every optimum and their Hessian block is the identity.
    """
    active = np.any(Xa != 0, axis=0)
    active[-1] = True
    return active


def smooth_objective(theta, Xa, y, sw, C: float, loss: Loss) -> float:
    """J(theta) = C sum_i s_i l(y_i, Xa_i theta) + 1/2 ||w||^2 (intercept unpenalized)."""
    return _objective(theta, Xa @ theta, y, sw, C, loss)


def smooth_gradient(theta, Xa, y, sw, C: float, loss: Loss) -> np.ndarray:
    """grad J(theta) = C Xa^T (s * l') + [w, 0]."""
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
    """``Xa^T diag(d) Xa + diag(1, ..., 1, 0)`` for curvature weights d >= 0, in Xa's dtype."""
    A = Xa * np.sqrt(d)[:, None]
    H = A.T @ A  # numpy recognises A.T @ A and calls the symmetric rank-k update (syrk)
    idx = np.arange(Xa.shape[1] - 1)
    H[idx, idx] += 1.0
    return H


def smooth_hessian(theta, Xa, y, sw, C: float, loss: Loss) -> np.ndarray:
    """Hess J(theta) = C Xa^T diag(s * l'') Xa + diag(1, ..., 1, 0)."""
    # d >= 0 for convex losses and non-negative weights
    return curvature_hessian(Xa, C * sw * loss.d2(y, Xa @ theta))


def hessian_solver(Xa: np.ndarray, d: np.ndarray, what: str = "Hessian"):
    """A solver (``.solve``, ``.condition_number``) for ``H = Xa^T diag(d) Xa + diag(1,..,1,0)``.

    A Cholesky factorization of H when there are at most as many features as samples, else
    :class:`DualHessianSolver` (an n x n factorization). Both are exact; ``what`` names the
    matrix in messages.
    """
    n, p = Xa.shape
    if p - 1 > n:
        return DualHessianSolver(Xa, d, what=what)
    return CholeskySolver(curvature_hessian(Xa, d), what)


#: Condition number up to which :func:`newton_fit` may factorize its Hessian in single precision.
SINGLE_PRECISION_MAX_COND = 1e5


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
        ``X X^T`` if already computed for these rows.
    """

    single = False

    def __init__(
        self, Xa: np.ndarray, d: np.ndarray, gram: np.ndarray | None = None, *, what="Hessian"
    ):
        X = Xa[:, :-1]
        total = float(d.sum())
        if not total > 0:
            raise SingularSystemError("the Hessian's intercept block is zero (all l'' = 0)")
        self.Xa, self.X, self.d, self.total = Xa, X, d, total
        self.n = Xa.shape[1]
        self.gram = X @ X.T if gram is None else gram
        k = self.gram @ d / total
        root = np.sqrt(d)
        M = self.gram - k[:, None] - k[None, :] + (d @ k) / total
        M *= root[:, None] * root[None, :]
        M[np.diag_indices_from(M)] += 1.0
        self.inner = CholeskySolver(M, f"dual matrix I + A A^T of the {what}")
        self.condition_number = self.inner.condition_number
        self.root, self.x_bar = root, X.T @ d / total

    def reusable_gram(self, Xa: np.ndarray) -> np.ndarray | None:
        """This solver's ``X X^T`` if ``Xa`` has the same rows, else None."""
        same = Xa.shape == self.Xa.shape and (Xa is self.Xa or np.array_equal(Xa, self.Xa))
        return self.gram if same else None

    def solve(self, r: np.ndarray) -> np.ndarray:
        """Return ``H^{-1} r`` for a vector of length p + 1 or a (p + 1, k) matrix of them."""
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
    if p - 1 > n:  # exact for any loss: a quadratic still converges in one step
        gram = previous.reusable_gram(Xa) if isinstance(previous, DualHessianSolver) else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # conditioning is reported by the slope, not here
            return DualHessianSolver(Xa, d, gram), single
    if single and not loss.quadratic:
        try:
            solver = CholeskySolver(
                curvature_hessian(Xa.astype(np.float32), d.astype(np.float32)), single=True
            )
            if solver.condition_number <= SINGLE_PRECISION_MAX_COND:
                return solver, True
        except SingularSystemError:
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # conditioning is reported by the slope, not here
        return CholeskySolver(curvature_hessian(Xa, d)), False


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
    after at least one verified contraction of the reused one).

    Parameters
    ----------
    Xa, y, sw, C, loss : the objective (intercept column last in ``Xa``, y in {-1, +1}).
    theta0 : ndarray, optional
        Starting point. By default zeros, improved by a few L-BFGS steps for non-quadratic
        losses (:func:`_quasi_newton_start`).
    tol, max_iter : stopping rule and maximum number of steps (chord steps included).
    return_solver : bool
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
    theta : ndarray of shape (n_features + 1,)
    n_iter : int
        Number of steps taken (L-BFGS warm-up iterations included).
    solver : only if ``return_solver``
        The last factorization (not necessarily at the returned point).
    """
    if single and getattr(getattr(solver0, "inner", solver0), "single", True) is False:
        single = False  # the previous fit of a path needed double precision: so will this one
    active = active_columns(Xa if sw.min() > 0 else Xa[sw > 0])
    if not active.all():  # w_j = 0 exactly on all-zero columns: solve the active block only
        inner0 = None
        if isinstance(solver0, BlockIdentitySolver) and np.array_equal(solver0.active, active):
            inner0 = solver0.inner
        out = newton_fit(
            Xa[:, active], y, sw, C, loss, None if theta0 is None else theta0[active],
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

    Returns
    -------
    SlopeTerms
        ``derivative``, ``condition_number``, ``second_derivative`` (d^2 L(V_t)/dbeta^2 at 0,
        from the same factorization) and ``dtheta_dbeta`` (= -H0^{-1} grad_P).
    """
    active = active_columns(Xa_D[sw_D > 0])  # all-zero columns of D: identity block of H0
    Xa_active = Xa_D[:, active]
    d = C * sw_D * loss.d2(y_D, Xa_active @ theta[active])
    solver = BlockIdentitySolver(hessian_solver(Xa_active, d, "Hessian H0"), active)
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

    def _fit(self, X, y, sample_weight):
        keep = sample_weight > 0
        Xa = augment(X[keep])
        theta0 = None
        warm = getattr(self, "warm_start", False) and hasattr(self, "coef_")
        if warm and self.coef_.shape[0] == X.shape[1]:
            theta0 = np.r_[self.coef_, self.intercept_]
        theta, self.n_iter_ = newton_fit(
            Xa, y[keep], sample_weight[keep], self._C, self.loss, theta0,
            tol=self.tol, max_iter=self.max_iter,
        )  # fmt: skip
        self.coef_ = theta[:-1].copy()
        self.intercept_ = float(theta[-1])
        self._train = (Xa, y[keep], sample_weight[keep])

    def _check_params(self) -> None:
        check_positive(self.tol, "tol")
        if not isinstance(self.max_iter, int | np.integer) or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")

    def _decision(self, X):
        return X @ self.coef_ + self.intercept_

    def _dfdtheta(self, X):
        return augment(X)

    @property
    def params_(self) -> np.ndarray:
        """theta = [coef_, intercept_]."""
        return np.r_[self.coef_, self.intercept_]

    def hessian(self) -> np.ndarray:
        """Hessian of J at the fitted theta over the training set it was fitted on.

        ``C Xa^T diag(s l'') Xa + diag(1, ..., 1, 0)``, shape (n_features + 1, n_features + 1).
        """
        Xa, y, sw = self._train
        return smooth_hessian(self.params_, Xa, y, sw, self._C, self.loss)

    def _slope_terms(self, X_p, y_p, X_t, y_t) -> SlopeTerms:
        Xa, y, sw = self._train
        return smooth_slope(
            self.params_, Xa, y, sw, augment(X_p), y_p, augment(X_t), y_t, self._C, self.loss
        )

    def _deviation_vector(self) -> np.ndarray:
        return self.coef_


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
    intercept_ : float
    classes_ : ndarray of shape (2,)
    n_iter_ : int
    """

    loss = LOGISTIC
    _path_kind = "logistic"

    def __init__(
        self, C: float = 1.0, *, tol: float = 1e-10, max_iter: int = 100, warm_start: bool = False
    ):
        self.C = C
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start

    @property
    def _C(self) -> float:
        return self.C

    def _check_params(self) -> None:
        check_positive(self.C, "C")
        super()._check_params()

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``."""
        f = self.decision_function(X)
        p1 = 1.0 / (1.0 + np.exp(-f))
        return np.column_stack([1.0 - p1, p1])


class RidgeLearner(_SmoothLinearLearner):
    """Ridge classifier, exactly ``RidgeClassifier(alpha=alpha)``.

    Minimises ``sum_i s_i (y_i - f(x_i))^2 + alpha ||w||^2``, i.e. J with C = 1/(2 alpha) and the
    squared loss, in closed form (one Newton step on a quadratic is exact).

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty; C = 1/(2 alpha) and lambda = 1/C = 2 alpha.
    tol, max_iter : see :class:`LogisticLearner` (the second step only confirms convergence).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    classes_ : ndarray of shape (2,)
    """

    loss = SQUARED
    _path_kind = "ridge"

    def __init__(self, alpha: float = 1.0, *, tol: float = 1e-10, max_iter: int = 10):
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter

    @property
    def _C(self) -> float:
        return 1.0 / (2.0 * self.alpha)

    def _check_params(self) -> None:
        check_positive(self.alpha, "alpha")
        super()._check_params()
