"""benchmarks/nn_peers/conventions.py: the peers' scores mapped to dL(V_t)/dw_j (numpy only).

Oracle: re-fitting. A multinomial logistic regression (softmax over a linear map, every
parameter under weight decay like SGD's) minimising the benchmark's objective

    J(theta; w) = (1/n) sum_i w_i CE_i(theta) + (lambda_wd / 2) ||theta||^2

is convex, so the influence function is the exact derivative of its optimum: scores built the
way kronfluence and dattri define them (+g_t^T (H_c + lambda I)^{-1} g_j, H_c the mean Hessian
over the clean rows, lambda the mapped damping) and converted by the helpers must equal central
finite differences of re-fits with one row's weight changed (and, summed over the poisoned
rows, with all their weights changed: dL/dbeta). TRAK's conversion is checked against its own
definition (scores from projected *margin* gradients, normalised by c) through the chain rule
grad CE = -(1 - p) grad margin, computed independently from the cross-entropy's gradient.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "nn_peers" / "conventions.py"
_spec = importlib.util.spec_from_file_location("nn_peers_conventions", _PATH)
cv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cv)

K, D = 3, 4  # classes, features (plus an intercept column)
WD = 0.05


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _aug(X):
    return np.hstack([X, np.ones((len(X), 1))])


def _per_sample(theta, X, y):
    """CE_i, its gradients (n, K(D+1)) and Hessians (n, P, P) of the linear softmax model."""
    A = _aug(X)
    W = theta.reshape(K, D + 1)
    p = _softmax(A @ W.T)
    ce = -np.log(p[np.arange(len(y)), y])
    r = p.copy()
    r[np.arange(len(y)), y] -= 1.0
    grads = (r[:, :, None] * A[:, None, :]).reshape(len(y), -1)
    S = np.einsum("nk,kl->nkl", p, np.eye(K)) - p[:, :, None] * p[:, None, :]
    hess = np.einsum("nkl,ni,nj->nkilj", S, A, A).reshape(len(y), K * (D + 1), K * (D + 1))
    return ce, grads, hess, p


def _fit(X, y, w):
    """Newton's method on J(theta; w) to machine precision."""
    theta = np.zeros(K * (D + 1))
    n = len(y)
    for _ in range(100):
        _, g, H, _ = _per_sample(theta, X, y)
        grad = (w @ g) / n + WD * theta
        hess = np.einsum("n,nij->ij", w, H) / n + WD * np.eye(theta.size)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-15:
            break
    return theta


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    n, n_test = 40, 15
    X = rng.normal(size=(n, D))
    y = rng.integers(0, K, size=n)
    X[:, 0] += y  # some signal
    poisoned = np.zeros(n, bool)
    poisoned[rng.choice(n, 5, replace=False)] = True
    y[poisoned] = 0  # the attacker's label
    X[poisoned, -1] += 3.0  # the "trigger"
    Xt = rng.normal(size=(n_test, D))
    Xt[:, -1] += 3.0
    yt = np.zeros(n_test, int)
    w0 = (~poisoned).astype(float)
    theta = _fit(X, y, w0)
    return X, y, poisoned, Xt, yt, w0, theta


def _test_loss(X, y, Xt, yt, w):
    return _per_sample(_fit(X, y, w), Xt, yt)[0].mean()


def test_mean_hessian_scores_map_to_the_refit_derivative(problem):
    X, y, poisoned, Xt, yt, w0, theta = problem
    n, clean = len(y), ~poisoned
    n_c = int(clean.sum())
    _, g, H, _ = _per_sample(theta, X, y)
    g_t = _per_sample(theta, Xt, yt)[1].mean(axis=0)
    lam = cv.mapped_damping(WD, n, n_c)
    assert lam == pytest.approx(WD * n / n_c)
    H_c = H[clean].mean(axis=0)
    rows = np.flatnonzero(poisoned)
    # a library's scores: +g_t^T (H_c + lam I)^-1 g_j per test point, shape (n_test, m)
    g_tests = _per_sample(theta, Xt, yt)[1]
    solved = np.linalg.solve(H_c + lam * np.eye(H_c.shape[0]), g[rows].T)  # (P, m)
    scores = g_tests @ solved
    mapped = cv.from_mean_hessian_scores(scores, n_c)
    # the same from test-averaged scores (a library handed the mean test loss)
    np.testing.assert_allclose(cv.from_mean_hessian_scores(g_t @ solved, n_c), mapped, rtol=1e-12)

    h = 1e-4  # central differences of re-fits: error O(h^2) ~ 1e-8 relative
    for k, j in enumerate(rows):
        e = np.zeros(n)
        e[j] = h
        fd = (_test_loss(X, y, Xt, yt, w0 + e) - _test_loss(X, y, Xt, yt, w0 - e)) / (2 * h)
        assert mapped[k] == pytest.approx(fd, rel=1e-6)
    e = h * poisoned
    slope = (_test_loss(X, y, Xt, yt, w0 + e) - _test_loss(X, y, Xt, yt, w0 - e)) / (2 * h)
    assert mapped.sum() == pytest.approx(slope, rel=1e-6)
    assert slope < 0.0  # the poison lowers the backdoor loss: the sign is not a coincidence


def test_trak_scores_map_to_minus_g_t_M_inv_g_j(problem):
    X, y, poisoned, Xt, yt, _, theta = problem
    rows = np.flatnonzero(poisoned)
    A, At = _aug(X), _aug(Xt)
    W = theta.reshape(K, D + 1)

    def margin_grads(Aset, labels):
        p = _softmax(Aset @ W.T)
        out = []
        for a, t, pi in zip(Aset, labels, p, strict=True):
            # f = z_t - logsumexp_{k != t} z_k: df/dz = e_t - softmax over the other classes
            others = np.delete(np.arange(K), t)
            q = np.zeros(K)
            q[others] = pi[others] / pi[others].sum()
            dz = -q
            dz[t] = 1.0
            out.append(np.outer(dz, a).ravel())
        return np.array(out), p[np.arange(len(labels)), labels]

    phi, p_train = margin_grads(A, y)
    phi_t, p_test = margin_grads(At, yt)
    lam = 0.7
    M = phi.T @ phi + lam * np.eye(phi.shape[1])  # TRAK's X^T X + lambda_reg I
    M_inv = np.linalg.inv(M)
    c = np.abs(M_inv).mean()
    tau = (phi[rows] @ (M_inv / c) @ phi_t.T) * (1.0 - p_train[rows])[:, None]  # (m, n_test)
    mapped = cv.from_trak_scores(tau, p_test, xtx_inv_scale=c)
    # independent: gradients of the cross-entropy itself
    g = _per_sample(theta, X, y)[1][rows]
    g_t = _per_sample(theta, Xt, yt)[1].mean(axis=0)
    np.testing.assert_allclose(mapped, -(g @ M_inv @ g_t), rtol=1e-10)


def test_relative_error_is_signed():
    assert cv.relative_error(-1.5, -1.0) == pytest.approx(-0.5)
    assert cv.relative_error(0.5, -1.0) == pytest.approx(1.5)
