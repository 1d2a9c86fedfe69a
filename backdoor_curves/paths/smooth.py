"""Exact parameter paths theta*(beta) without re-fitting from scratch (smooth linear learners).

Both functions return the optimum of

    J(theta; beta) = C sum_{i in D} l(y_i, Xa_i theta) + beta C sum_{j in P} l(y_j, Xa_j theta)
                     + 1/2 ||w||^2

at every requested beta, to the same tolerance as a re-fit.

Ridge (squared loss) — closed form. The Hessian is H(beta) = H0 + 2C beta Xa_P^T Xa_P with
H0 = 2C Xa_D^T Xa_D + diag(1, .., 1, 0), and theta(beta) = H(beta)^{-1} (b_D + beta b_P),
b_D = 2C Xa_D^T y_D, b_P = 2C Xa_P^T y_P. With T = H0^{-1} Xa_P^T, u_D = H0^{-1} b_D,
u_P = H0^{-1} b_P and one eigen-decomposition of the small |P| x |P| matrix
Xa_P T = V diag(s) V^T, the Woodbury identity gives, with z = u_D + beta u_P,

    theta(beta) = z - T V diag(2C beta / (1 + 2C beta s)) V^T Xa_P z,

so any number of betas costs |P| + 2 solves with H0 plus O(p |P|) per beta (p = n_features + 1).
H0 is factorized in the primal (a p x p Cholesky) when p - 1 <= |D|, else in the dual
(:class:`~backdoor_curves.learners.linear.DualHessianSolver`: the intercept is eliminated by
centring D, and Woodbury needs only a |D| x |D| Cholesky, O(|D|^2 p) instead of O(p^3): 4096
AlexNet features, 675 points).

Logistic — predictor-corrector path following. From the optimum at the previous beta the
tangent d theta / d beta = -H^{-1} grad [C sum_P l] (reusing the last factorization) or, on
dense grids, the polynomial through the last six optima predicts the next point;
simplified-Newton steps with that factorization correct it while they contract, full Newton
steps with the closed-form Hessian otherwise (factorized in single precision while it is
well-conditioned, through the n x n dual system when there are more features than points),
always to the re-fit's tolerance. Points are visited in increasing beta.
"""

from __future__ import annotations

import numpy as np

from ..learners.linear import active_columns, hessian_solver, newton_fit, smooth_objective
from ..losses import LOGISTIC

__all__ = ["ridge_path", "logistic_path"]


def ridge_path(
    Xa_D: np.ndarray,
    y_D: np.ndarray,
    Xa_P: np.ndarray,
    y_P: np.ndarray,
    C: float,
    betas: np.ndarray,
) -> np.ndarray:
    """Ridge optima theta(beta) for every beta, in closed form.

    Parameters
    ----------
    Xa_D : ndarray of shape (n_D, p)
        Clean training inputs D with the intercept column (ones) appended last
        (:func:`~backdoor_curves.learners.linear.augment`).
    y_D : ndarray of shape (n_D,)
        Labels of D in {-1, +1}.
    Xa_P : ndarray of shape (n_P, p)
        Poisoning inputs P, intercept column appended last.
    y_P : ndarray of shape (n_P,)
        The attacker's labels of P in {-1, +1}.
    C : float
        Loss weight C > 0 (ridge: C = 1 / (2 alpha)).
    betas : ndarray of shape (n_betas,)
        Weights of P, any order, in [0, 1] (not checked).

    Returns
    -------
    ndarray of shape (n_betas, p)
        theta(beta) = [w, b] for each beta, in the order given.
    """
    betas = np.asarray(betas, dtype=float)
    active = active_columns(np.vstack([Xa_D, Xa_P]))
    if not active.all():  # w_j = 0 where D and P are both zero: drop those columns
        thetas = np.zeros((len(betas), Xa_D.shape[1]))
        thetas[:, active] = ridge_path(Xa_D[:, active], y_D, Xa_P[:, active], y_P, C, betas)
        return thetas
    n_P = Xa_P.shape[0]
    rhs = np.column_stack([Xa_P.T, 2.0 * C * (Xa_D.T @ y_D), 2.0 * C * (Xa_P.T @ y_P)])
    # H0 = Xa_D^T (2C I) Xa_D + diag(1, .., 1, 0): squared loss, l'' = 2
    solved = hessian_solver(Xa_D, np.full(Xa_D.shape[0], 2.0 * C), "ridge Hessian H0").solve(rhs)
    T, u_D, u_P = solved[:, :n_P], solved[:, n_P], solved[:, n_P + 1]
    G = Xa_P @ T
    s, V = np.linalg.eigh(0.5 * (G + G.T))  # symmetric PSD up to round-off
    s = np.maximum(s, 0.0)
    TV, XV = T @ V, Xa_P.T @ V
    Z = u_D[:, None] + u_P[:, None] * betas[None, :]
    shrink = 2.0 * C * betas[None, :] / (1.0 + 2.0 * C * s[:, None] * betas[None, :])
    return (Z - TV @ (shrink * (XV.T @ Z))).T


def logistic_path(
    Xa_D: np.ndarray,
    y_D: np.ndarray,
    Xa_P: np.ndarray,
    y_P: np.ndarray,
    C: float,
    betas: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Logistic optima theta(beta) by predictor-corrector path following.

    Predictor: whichever has the lowest objective at the new beta of the tangent step
    ``theta - dbeta H^{-1} grad [C sum_P l]`` (last factorized Hessian), the polynomial through
    the last six optima, and the previous optimum. Corrector:
    :func:`~backdoor_curves.learners.linear.newton_fit` started
    with that factorization, so it takes simplified-Newton steps (one gradient and two
    triangular solves each) while they contract fast and re-factorizes only when they do not.
    Every point is converged to the re-fit's criterion.

    Parameters
    ----------
    Xa_D : ndarray of shape (n_D, p)
        Clean training inputs D with the intercept column (ones) appended last.
    y_D : ndarray of shape (n_D,)
        Labels of D in {-1, +1}.
    Xa_P : ndarray of shape (n_P, p)
        Poisoning inputs P, intercept column appended last.
    y_P : ndarray of shape (n_P,)
        The attacker's labels of P in {-1, +1}.
    C : float
        Loss weight C > 0 (lambda = 1/C).
    betas : ndarray of shape (n_betas,)
        Weights of P, any order, in [0, 1] (not checked); visited in increasing order.
    tol : float, default=1e-10
        Corrector stopping rule, that of a re-fit: a Newton step ``p`` with
        ``max|p| <= tol * (1 + max|theta|)``.
    max_iter : int, default=100
        Maximum corrector steps per beta (a ``ConvergenceWarning`` when reached).

    Returns
    -------
    thetas : ndarray of shape (n_betas, p)
        theta(beta) in the order given.
    n_iter : ndarray of int, shape (n_betas,)
        Corrector steps per beta (simplified-Newton and full Newton steps).
    """
    betas = np.asarray(betas, dtype=float)
    active = active_columns(np.vstack([Xa_D, Xa_P]))
    if not active.all():  # w_j = 0 where D and P are both zero: drop those columns once
        thetas = np.zeros((len(betas), Xa_D.shape[1]))
        thetas[:, active], n_iter = logistic_path(
            Xa_D[:, active], y_D, Xa_P[:, active], y_P, C, betas, tol=tol, max_iter=max_iter
        )
        return thetas, n_iter
    order = np.argsort(betas, kind="stable")
    Xa = np.vstack([Xa_D, Xa_P])
    y = np.r_[y_D, y_P]
    ones = np.ones(len(y_D))
    thetas = np.empty((len(betas), Xa.shape[1]))
    n_iter = np.zeros(len(betas), dtype=int)
    theta, it0, solver = newton_fit(
        Xa_D, y_D, ones, C, LOGISTIC, tol=tol, max_iter=max_iter, return_solver=True,
        single=True,
    )  # fmt: skip
    current = 0.0
    history = [(0.0, theta)]  # the last _HISTORY optima, for the extrapolating predictor
    for k in order:
        beta = betas[k]
        if beta != current:
            sw = np.r_[ones, np.full(len(y_P), beta)]
            grad_P = C * (Xa_P.T @ LOGISTIC.d1(y_P, Xa_P @ theta))
            candidates = [theta, theta - (beta - current) * solver.solve(grad_P)]
            if len(history) == _HISTORY:
                candidates.append(_extrapolate(history, beta))
            # the candidate with the lowest objective under the new weights: the tangent (its
            # factorization may be stale), the polynomial through the last _HISTORY optima
            # (error O(dbeta^_HISTORY) on dense grids), or a plain warm start (a long step
            # can overshoot)
            predicted = min(candidates, key=lambda t: smooth_objective(t, Xa, y, sw, C, LOGISTIC))
            theta, n_iter[k], solver = newton_fit(
                Xa, y, sw, C, LOGISTIC, predicted, tol=tol, max_iter=max_iter,
                return_solver=True, solver0=solver, single=True,
            )  # fmt: skip
            current = beta
            history = [*history[-(_HISTORY - 1) :], (beta, theta)]
        else:
            n_iter[k] = it0 if beta == 0.0 else 0
        thetas[k] = theta
    return thetas, n_iter


#: Points of the extrapolating predictor (degree _HISTORY - 1).
_HISTORY = 6


def _extrapolate(history: list, beta: float) -> np.ndarray:
    """The polynomial (Lagrange) through the points ``(beta_i, theta_i)``, evaluated at ``beta``."""
    nodes = [b for b, _ in history]
    out = np.zeros_like(history[0][1])
    for i, (b_i, t_i) in enumerate(history):
        weight = np.prod([(beta - b_j) / (b_i - b_j) for j, b_j in enumerate(nodes) if j != i])
        out += weight * t_i
    return out
