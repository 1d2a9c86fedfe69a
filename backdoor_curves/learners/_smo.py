"""Sequential minimal optimization of the SVM dual from a feasible start, compiled (numba).

The problem (libsvm's C-SVC dual with per-sample boxes):

    min_a  F(a) = 1/2 a^T Q a - 1^T a   subject to  0 <= a_i <= c_i,  y^T a = 0,

with Q = (y y^T) * K, K a positive semi-definite kernel matrix and y in {-1, +1}^n. Its gradient
is G = Q a - 1. From a feasible start a0 (e.g. the duals of a neighbouring C, scaled into the
boxes) G is computed once, G_k = y_k sum_{i: a0_i != 0} y_i a0_i K_ik - 1 (only the rows of the
nonzero duals), and kept up to date afterwards.

Optimality (Keerthi et al.; Fan, Chen & Lin 2005). With the index sets

    I_up(a)  = {t : y_t = +1, a_t < c_t} u {t : y_t = -1, a_t > 0},
    I_low(a) = {t : y_t = +1, a_t > 0}   u {t : y_t = -1, a_t < c_t},

    m(a) = max_{t in I_up} -y_t G_t,     M(a) = min_{t in I_low} -y_t G_t,

a feasible a is optimal iff m(a) <= M(a); the iteration stops at the "maximal violation"
m(a) - M(a) <= eps (libsvm's stopping rule, its ``-e``), or after ``max_iter`` steps.

Working set (WSS3 of Fan, Chen & Lin 2005, libsvm's second-order rule): i = argmax_{I_up} -y_t G_t
(the maximal violator), then, over t in I_low with b_it = m(a) + y_t G_t > 0,

    j = argmin_t  -b_it^2 / a_it,     a_it = K_ii + K_tt - 2 K_it   (a_it <= 0 replaced by tau),

the pair whose exact minimization along the feasible direction decreases F the most under a
second-order model; tau = 1e-12 (libsvm's TAU) keeps the step finite on a flat direction.

Two-variable update. Moving a_i by +y_i t and a_j by -y_j t keeps y^T a; F along t is
F(a) - b_ij t + a_ij t^2 / 2, minimized at t* = b_ij / a_ij > 0 (a_ij floored at tau), then
clipped so that both duals stay in their boxes:

    t = min(t*, room_i, room_j),  room_i = c_i - a_i (y_i = +1) or a_i (y_i = -1),
                                  room_j = a_j (y_j = +1) or c_j - a_j (y_j = -1);

the variable whose room binds is set exactly to its bound (so that the sets I_up, I_low read it
as bounded), the other is moved by t (and kept in its box against round-off). The gradient moves
by two rows of K: G_k += y_k (y_i K_ik da_i + y_j K_jk da_j). Ties in either choice go to the
smallest index.

Intercept (libsvm's): at the optimum b = -y_t G_t on every free dual (0 < a_t < c_t), so b is
their mean; with no free dual, any b in [m(a), M(a)] satisfies the KKT conditions and b is the
midpoint (m(a) + M(a)) / 2.

Kernel rows are read from the dense matrix (no cache, no shrinking): one pass over a row of K
for the choice of j, one over two rows for the update and one over G for the next i, O(n) per
iteration (1.5 us at n = 750; libsvm, which shrinks, takes about 1 us). The module imports
numba; :mod:`backdoor_curves.learners.svm` imports it on the first warm-started fit, so that
``import backdoor_curves`` does not.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["TAU", "smo_gradient", "smo_intercept", "smo_iterate", "smo_solve"]

#: Floor of the curvature a_ij of a working pair (libsvm's TAU).
TAU = 1e-12


@numba.njit(cache=True, nogil=True)
def smo_gradient(K, y, alpha):  # pragma: no cover (compiled)
    """G = Q a - 1 with Q = (y y^T) * K, from the rows of K of the nonzero duals only.

    Parameters
    ----------
    K : ndarray of shape (n, n)
        Symmetric kernel matrix (C-contiguous: its rows are read).
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    alpha : ndarray of shape (n,)
        Duals.

    Returns
    -------
    ndarray of shape (n,)
    """
    n = y.shape[0]
    s = np.zeros(n)  # sum_i y_i a_i K_i.
    for i in range(n):
        w = y[i] * alpha[i]
        if w != 0.0:
            for k in range(n):
                s[k] += w * K[i, k]
    G = np.empty(n)
    for k in range(n):
        G[k] = y[k] * s[k] - 1.0
    return G


@numba.njit(cache=True, nogil=True)
def _up_mask(y, cap, alpha, t):  # pragma: no cover (compiled)
    """0.0 if t is in I_up (y_t = +1 below its box, or y_t = -1 above 0), else -inf."""
    inside = alpha[t] < cap[t] if y[t] > 0.0 else alpha[t] > 0.0
    return 0.0 if inside else -np.inf


@numba.njit(cache=True, nogil=True)
def _violator(y, G, up):  # pragma: no cover (compiled)
    """(i, m(a)): argmax over I_up of -y_t G_t and its value (-1, -inf when I_up is empty).

    ``up`` is 0 on I_up and -inf elsewhere. Four interleaved running maxima (independent
    chains of comparisons, about 2.5x faster than one); ties go to the smallest index.
    """
    n = y.shape[0]
    m0 = m1 = m2 = m3 = -np.inf
    i0 = i1 = i2 = i3 = -1
    n4 = n - n % 4
    for k in range(0, n4, 4):
        v = up[k] - y[k] * G[k]
        if v > m0:
            m0, i0 = v, k
        v = up[k + 1] - y[k + 1] * G[k + 1]
        if v > m1:
            m1, i1 = v, k + 1
        v = up[k + 2] - y[k + 2] * G[k + 2]
        if v > m2:
            m2, i2 = v, k + 2
        v = up[k + 3] - y[k + 3] * G[k + 3]
        if v > m3:
            m3, i3 = v, k + 3
    for k in range(n4, n):
        v = up[k] - y[k] * G[k]
        if v > m0:
            m0, i0 = v, k
    best, who = m0, i0
    for m, i in ((m1, i1), (m2, i2), (m3, i3)):
        if i >= 0 and (m > best or (m == best and (who < 0 or i < who))):
            best, who = m, i
    return who, best


@numba.njit(cache=True, nogil=True)
def smo_iterate(K, y, cap, alpha, G, eps, max_iter):  # pragma: no cover (compiled)
    """Run SMO (WSS3) on ``alpha`` and ``G`` in place until m(a) - M(a) <= eps or max_iter.

    Parameters
    ----------
    K : ndarray of shape (n, n)
        Symmetric positive semi-definite kernel matrix, C-contiguous.
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    cap : ndarray of shape (n,)
        Boxes c_i > 0.
    alpha : ndarray of shape (n,)
        Feasible duals (updated in place).
    G : ndarray of shape (n,)
        The gradient Q a - 1 at ``alpha`` (updated in place).
    eps : float
        Stopping tolerance on the maximal violation m(a) - M(a).
    max_iter : int
        Most iterations.

    Returns
    -------
    n_iter : int
        Iterations taken.
    converged : bool
        Whether m(a) - M(a) <= eps at the end.
    """
    n = y.shape[0]
    QD = np.empty(n)  # the diagonal, read contiguously
    up = np.empty(n)  # 0 on I_up, -inf elsewhere
    for t in range(n):
        QD[t] = K[t, t]
        up[t] = _up_mask(y, cap, alpha, t)
    i, m = _violator(y, G, up)
    n_iter = 0
    while True:
        if i < 0:
            return n_iter, True
        # j: second-order choice over I_low; M(a) computed alongside
        low = np.inf
        j, best = -1, np.inf
        Kii = QD[i]
        Ki = K[i]
        for t in range(n):
            if y[t] > 0.0:
                if not alpha[t] > 0.0:
                    continue
            elif not alpha[t] < cap[t]:
                continue
            v = -y[t] * G[t]
            if v < low:
                low = v
            diff = m - v
            if diff > 0.0:
                quad = Kii + QD[t] - 2.0 * Ki[t]
                if quad <= 0.0:
                    quad = TAU
                gain = -(diff * diff) / quad
                if gain < best:
                    best, j = gain, t
        if m - low <= eps or j < 0:
            return n_iter, True
        if n_iter >= max_iter:
            return n_iter, False
        n_iter += 1
        quad = Kii + QD[j] - 2.0 * Ki[j]
        if quad <= 0.0:
            quad = TAU
        step = (m + y[j] * G[j]) / quad
        # room: how far t may go before a_i or a_j leaves its box
        room_i = cap[i] - alpha[i] if y[i] > 0.0 else alpha[i]
        room_j = alpha[j] if y[j] > 0.0 else cap[j] - alpha[j]
        old_i, old_j = alpha[i], alpha[j]
        if step >= room_i and room_i <= room_j:
            step = room_i
            alpha[i] = cap[i] if y[i] > 0.0 else 0.0
            alpha[j] = min(max(old_j - y[j] * step, 0.0), cap[j])
        elif step >= room_j:
            step = room_j
            alpha[j] = 0.0 if y[j] > 0.0 else cap[j]
            alpha[i] = min(max(old_i + y[i] * step, 0.0), cap[i])
        else:
            alpha[i] = min(max(old_i + y[i] * step, 0.0), cap[i])
            alpha[j] = min(max(old_j - y[j] * step, 0.0), cap[j])
        wi = y[i] * (alpha[i] - old_i)
        wj = y[j] * (alpha[j] - old_j)
        up[i] = _up_mask(y, cap, alpha, i)
        up[j] = _up_mask(y, cap, alpha, j)
        Kj = K[j]
        for k in range(n):
            G[k] += y[k] * (wi * Ki[k] + wj * Kj[k])
        i, m = _violator(y, G, up)


@numba.njit(cache=True, nogil=True)
def smo_intercept(y, cap, alpha, G):  # pragma: no cover (compiled)
    """libsvm's intercept: mean of -y_t G_t over free duals, else the midpoint (m + M) / 2.

    Parameters
    ----------
    y, cap, alpha, G : ndarray of shape (n,)
        Labels, boxes, duals and gradient Q a - 1.

    Returns
    -------
    float
    """
    total, count = 0.0, 0
    up, low = -np.inf, np.inf  # m(a) over I_up, M(a) over I_low
    for t in range(y.shape[0]):
        v = -y[t] * G[t]
        if 0.0 < alpha[t] < cap[t]:
            total += v
            count += 1
        in_up = alpha[t] < cap[t] if y[t] > 0.0 else alpha[t] > 0.0
        in_low = alpha[t] > 0.0 if y[t] > 0.0 else alpha[t] < cap[t]
        if in_up and v > up:
            up = v
        if in_low and v < low:
            low = v
    if count:
        return total / count
    if not np.isfinite(up):
        return low if np.isfinite(low) else 0.0
    if not np.isfinite(low):
        return up
    return 0.5 * (up + low)


def smo_solve(
    K: np.ndarray,
    y: np.ndarray,
    cap: np.ndarray,
    start: np.ndarray,
    eps: float,
    max_iter: int,
) -> tuple[np.ndarray, float, int, bool]:
    """The SVM dual by SMO from the feasible start ``start``.

    Parameters
    ----------
    K : ndarray of shape (n, n)
        Symmetric positive semi-definite kernel matrix.
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    cap : ndarray of shape (n,)
        Boxes c_i > 0.
    start : ndarray of shape (n,)
        Feasible duals: 0 <= a_i <= c_i and y^T a = 0 (not checked; zeros are a cold start).
    eps : float
        Stopping tolerance on the maximal violation m(a) - M(a) (libsvm's ``tol``).
    max_iter : int
        Most iterations.

    Returns
    -------
    alpha : ndarray of shape (n,)
        The duals.
    b : float
        The intercept (:func:`smo_intercept`).
    n_iter : int
        Iterations taken.
    converged : bool
        Whether the maximal violation fell to ``eps``.
    """
    K = np.ascontiguousarray(K, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    cap = np.ascontiguousarray(cap, dtype=np.float64)
    alpha = np.array(start, dtype=np.float64, copy=True)
    G = smo_gradient(K, y, alpha)
    n_iter, converged = smo_iterate(K, y, cap, alpha, G, float(eps), int(max_iter))
    return alpha, float(smo_intercept(y, cap, alpha, G)), int(n_iter), bool(converged)
