"""Exact parameter paths theta*(beta) without re-fitting from scratch (smooth linear learners).

Both functions return the optimum of

    J(theta; beta) = C sum_{i in D} l(y_i, Xa_i theta) + beta C sum_{j in P} l(y_j, Xa_j theta)
                     + 1/2 ||w||^2

at every requested beta, to the same tolerance as a re-fit.

Ridge (squared loss) — closed form. With H0 = 2C Xa_D^T Xa_D + diag(1, .., 1, 0) = R^T R
(one Cholesky factorization) and M = sqrt(2C) R^{-T} Xa_P^T, the Hessian is
H(beta) = R^T (I + beta M M^T) R. One eigen-decomposition M^T M = V diag(s) V^T of the small
|P| x |P| matrix gives, with Q = M V,

    (I + beta M M^T)^{-1} = I - Q diag(beta / (1 + beta s)) Q^T,
    theta(beta) = R^{-1} (I - Q diag(beta / (1 + beta s)) Q^T) R^{-T} (b_D + beta b_P),

so any number of betas costs one factorization plus O(p |P| + p^2) per beta (p = n_features + 1).

Logistic — predictor-corrector path following. From the optimum at the previous beta the
tangent d theta / d beta = -H^{-1} grad [C sum_P l] (reusing the last factorization) predicts
the next point; simplified-Newton steps with that factorization correct it while they contract,
full Newton steps with the closed-form Hessian otherwise, always to the re-fit's tolerance.
Points are visited in increasing beta.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from .learners.linear import newton_fit, smooth_objective
from .linalg import CholeskySolver
from .losses import LOGISTIC

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
    Xa_D, Xa_P : ndarray of shape (n_D, p), (n_P, p)
        Clean and poisoning inputs with the intercept column appended.
    y_D, y_P : ndarray
        Labels in {-1, +1}.
    C : float
        Loss weight (C = 1 / (2 alpha)).
    betas : ndarray of shape (n_betas,)
        Weights of P, any order, in [0, 1].

    Returns
    -------
    ndarray of shape (n_betas, p)
        theta(beta) = [w, b] for each beta, in the order given.
    """
    p = Xa_D.shape[1]
    H0 = 2.0 * C * (Xa_D.T @ Xa_D)
    H0[np.arange(p - 1), np.arange(p - 1)] += 1.0
    R = CholeskySolver(H0, "ridge Hessian H0").upper_factor()  # H0 = R^T R
    M = sla.solve_triangular(R, np.sqrt(2.0 * C) * Xa_P.T, trans="T")  # R^{-T} (p, n_P)
    s, V = np.linalg.eigh(M.T @ M)
    s = np.maximum(s, 0.0)  # M^T M is PSD; clip round-off
    Q = M @ V
    z0 = sla.solve_triangular(R, 2.0 * C * (Xa_D.T @ y_D), trans="T")
    zP = sla.solve_triangular(R, 2.0 * C * (Xa_P.T @ y_P), trans="T")
    betas = np.asarray(betas, dtype=float)
    Z = z0[:, None] + zP[:, None] * betas[None, :]
    shrink = betas[None, :] / (1.0 + s[:, None] * betas[None, :])
    U = Z - Q @ (shrink * (Q.T @ Z))
    return sla.solve_triangular(R, U).T


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

    Predictor: the tangent step ``theta - dbeta H^{-1} grad [C sum_P l]`` with the last
    factorized Hessian. Corrector: :func:`~backdoor_curves.learners.linear.newton_fit` started
    with that factorization, so it takes simplified-Newton steps (one gradient and two
    triangular solves each) while they contract fast and re-factorizes only when they do not.
    Every point is converged to the re-fit's criterion.

    Parameters
    ----------
    Xa_D, y_D, Xa_P, y_P, C, betas : as in :func:`ridge_path`.
    tol, max_iter : Newton corrector settings (those of a re-fit).

    Returns
    -------
    thetas : ndarray of shape (n_betas, p)
        theta(beta) in the order given.
    n_iter : ndarray of int, shape (n_betas,)
        Corrector steps per beta (simplified-Newton and full Newton steps).
    """
    betas = np.asarray(betas, dtype=float)
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
    for k in order:
        beta = betas[k]
        if beta != current:
            sw = np.r_[ones, np.full(len(y_P), beta)]
            grad_P = C * (Xa_P.T @ LOGISTIC.d1(y_P, Xa_P @ theta))
            predicted = theta - (beta - current) * solver.solve(grad_P)
            # a long step can overshoot far past the curve: keep the prediction only if it
            # is better than a plain warm start under the new weights
            if smooth_objective(predicted, Xa, y, sw, C, LOGISTIC) > smooth_objective(
                theta, Xa, y, sw, C, LOGISTIC
            ):
                predicted = theta
            theta, n_iter[k], solver = newton_fit(
                Xa, y, sw, C, LOGISTIC, predicted, tol=tol, max_iter=max_iter,
                return_solver=True, solver0=solver, single=True,
            )  # fmt: skip
            current = beta
        else:
            n_iter[k] = it0 if beta == 0.0 else 0
        thetas[k] = theta
    return thetas, n_iter
