"""Convention mapping of influence libraries to dL(V_t)/dw_j of a training run (pure numpy).

The quantity (DESIGN §4): L(V_t) the *mean* cross-entropy on the backdoor test set; the
training run minimises, on average over an epoch, the weighted mean loss

    J(theta; w) = (1/n) sum_{i=1}^{n} w_i l_i(theta) + (lambda_wd / 2) ||theta||^2,

n = all training rows (poisoned rows included: they count in every batch size |B|), w_i = 1 on
clean rows and beta on poisoned rows (0 at beta = 0), lambda_wd SGD's coupled weight decay. At
an optimum theta*(w) the implicit-function theorem gives the influence-function value of the
per-row derivative,

    dL/dw_j = -(1/n) g_t^T H^{-1} g_j,      H = (1/n) sum_{i clean} nabla^2 l_i + lambda_wd I,

g_t = grad L(V_t), g_j = grad l_j. Writing H_c = (1/n_c) sum_{i clean} nabla^2 l_i (the mean
Hessian over the n_c clean rows, what a library fits when handed the clean rows),

    H = (n_c / n) (H_c + lambda I),   lambda = lambda_wd n / n_c,
    dL/dw_j = -(1/n_c) g_t^T (H_c + lambda I)^{-1} g_j                               (1)

and with the *summed* Hessian H_s = sum_{i clean} nabla^2 l_i (TRAK's X^T X convention),

    dL/dw_j = -g_t^T (H_s + n lambda_wd I)^{-1} g_j.                                 (2)

The slope dL/dbeta is the sum of (1) over the poisoned rows (linearity in the weights).

The functions below turn each library's raw scores into (1) or (2); they import nothing but
numpy, so the test suite checks them (tests/nn/test_nn_peers_conventions.py) without the peers.
"""

from __future__ import annotations

import numpy as np


def mapped_damping(weight_decay: float, n_train: int, n_clean: int) -> float:
    """lambda of (1): the damping added to the mean clean Hessian H_c, lambda_wd n / n_c."""
    return weight_decay * n_train / n_clean


def from_mean_hessian_scores(scores: np.ndarray, n_clean: int) -> np.ndarray:
    """(1) from scores s_tj = +g_t^T (H_c + lambda I)^{-1} g_j (kronfluence, dattri).

    Both libraries return the preconditioned inner product without a sign (positive: the
    training point lowers the test loss when upweighted, Koh and Liang's I_up,loss = -s) over
    per-sample losses, with H_c the mean over the points they were fitted on. ``scores`` has
    shape (n_test, m) or (m,) (already averaged over the test points); the mean over test
    points is taken here.

    Returns
    -------
    ndarray of shape (m,)
        dL(V_t)/dw_j = -(1/n_c) mean_t s_tj.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2:
        s = s.mean(axis=0)
    return -s / n_clean


def from_trak_scores(
    scores: np.ndarray, p_test: np.ndarray, xtx_inv_scale: float = 1.0
) -> np.ndarray:
    """(2) from TRAK scores tau_jt (shape (m, n_test), TRAK's layout: train x targets).

    TRAK (traker 0.3.2) uses the margin f = log(p / (1 - p)) of the labelled class, for which
    grad CE = -(1 - p) grad f, and returns tau_jt = phi_t^T (X^T X + lambda_reg I)^{-1} phi_j
    (1 - p_j) / c, phi = P^T grad f (projected), X the stacked phi of the training rows (a
    *summed* Gauss-Newton proxy without the p(1 - p) weights), c = mean |(X^T X + lambda_reg
    I)^{-1}| (TRAK divides by it "to avoid numerical issues"; ``xtx_inv_scale`` = c restores
    the scale). Since (1 - p_j) phi_j = -P^T g_j and g_t = -(1 - p_t) grad f_t,

        dL_t/dw_j = -g_t^T H_s^{-1} g_j = -(1 - p_t) tau_jt c,

    averaged over the targets t of V_t (``p_test`` = p_t, the softmax probability of the
    attacker's label).

    Returns
    -------
    ndarray of shape (m,)
        dL(V_t)/dw_j.
    """
    tau = np.asarray(scores, dtype=np.float64)
    q = 1.0 - np.asarray(p_test, dtype=np.float64)
    return -(tau * q[None, :]).mean(axis=1) * xtx_inv_scale


def relative_error(estimate: float, exact: float) -> float:
    """Signed (estimate - exact) / |exact|."""
    return float((estimate - exact) / abs(exact))
