"""The exact SVM path in beta: incremental (Cauwenberghs-Poggio) continuation of the dual.

Dual of the SVM with boxes 0 <= a_i <= c_i(beta), c_i = C on the clean set D and beta C on the
poisoning set P, and y^T a = 0. With the margin set M (0 < a_i < c_i, y_i f_i = 1), the bound set
B (a_i = c_i, y_i f_i <= 1) and the rest Z (a_i = 0, y_i f_i >= 1) fixed, the KKT equalities

    [[Q_MM, y_M], [y_M^T, 0]] [a_M; b] = [1 - Q_MB c_B(beta); -y_B^T c_B(beta)]

are linear in beta, so the solution is piecewise linear. The path moves from beta = 0 to each
requested beta, stopping at *events*: a margin dual reaching 0 (M -> Z) or its box (M -> B), or a
point of Z or B reaching the margin (-> M). At every event and every requested beta the duals are
re-solved exactly from the sets (no drift) and, at requested betas, certified by the full KKT
conditions. Where the bordered matrix is singular (e.g. no margin vector) or a certificate fails,
the point is re-fitted instead (warm start of the path from there) and a warning says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla

from .learners.svm import ALPHA_TOL, MARGIN_TOL

__all__ = ["svm_path", "SVMPathWarning"]

_ZERO, _MARGIN, _BOUND = 0, 1, 2
_NAMES = {_ZERO: "zero", _MARGIN: "margin", _BOUND: "bound"}


class SVMPathWarning(UserWarning):
    """Part of an SVM path was re-fitted because the incremental step was degenerate."""


class _Degenerate(Exception):
    pass


def _status(alpha, cap, g):
    """Set membership from duals (and margins for the zero-cap points of P at beta = 0)."""
    status = np.full(alpha.shape, _ZERO)
    margin = (alpha > ALPHA_TOL * cap) & (alpha < cap * (1 - ALPHA_TOL))
    status[margin] = _MARGIN
    status[(cap > 0) & (alpha >= cap * (1 - ALPHA_TOL))] = _BOUND
    status[(cap == 0) & (g < 0)] = _BOUND  # a = cap = 0, will grow with beta
    return status


def _bordered(Q_MM: np.ndarray, y_M: np.ndarray) -> np.ndarray:
    """``[[Q_MM, y_M], [y_M^T, 0]]`` (Q = (y y^T) * K already includes the labels)."""
    m = y_M.shape[0]
    H = np.zeros((m + 1, m + 1))
    H[:m, :m], H[:m, m], H[m, :m] = Q_MM, y_M, y_M
    return H


def _factor(Q, y, M):
    """LU factorization of the bordered matrix on the margin set ``M``.

    It runs at every event, so it skips the condition estimate of
    :class:`~backdoor_curves.linalg.LUSolver` and only rejects exactly or numerically singular
    pivots (then the caller re-fits).
    """
    if M.size == 0:
        raise _Degenerate("no margin support vector")
    lu, piv = sla.lu_factor(_bordered(Q[np.ix_(M, M)], y[M]), check_finite=False)
    pivots = np.abs(np.diag(lu))
    if not np.all(np.isfinite(pivots)) or pivots.min() <= 1e-13 * max(pivots.max(), 1.0):
        raise _Degenerate("the bordered KKT matrix is singular")
    return lu, piv


def _solve(Q, y, status, cap, dcap):
    """Exact duals and intercept for fixed sets, and their rates d/dbeta (one LU, two RHS)."""
    M = np.flatnonzero(status == _MARGIN)
    B = np.flatnonzero(status == _BOUND)
    factor = _factor(Q, y, M)
    Q_MB = Q[np.ix_(M, B)]
    a_B, da_B = cap[B], dcap[B]
    rhs = np.column_stack(
        [np.r_[1.0 - Q_MB @ a_B, -(y[B] @ a_B)], -np.r_[Q_MB @ da_B, y[B] @ da_B]]
    )
    sol = sla.lu_solve(factor, rhs, check_finite=False)
    alpha, dalpha = np.zeros_like(cap), np.zeros_like(cap)
    alpha[B], dalpha[B] = a_B, da_B
    alpha[M], dalpha[M] = sol[:-1, 0], sol[:-1, 1]
    return alpha, float(sol[-1, 0]), dalpha, float(sol[-1, 1])


class _Walker:
    """Moves the dual along one stretch of the path, event by event, updating in place.

    Between events the duals, the intercept and the margins g = y f - 1 are linear in beta, so
    they are advanced by their rates instead of being recomputed: per event the cost is one LU
    factorization of the bordered matrix (for the new rates), one product of the margin rows
    of Q with the rates of their duals (O(|M| n)) and a few O(n) scans. The bound points of P
    (boxes growing at rate C) enter the rates only through ``v = Q[:, B_P] dcap[B_P]`` and
    ``s = y[B_P]^T dcap[B_P]``, which are updated as points join or leave that set. The caller
    re-solves the duals exactly at the end of the stretch, so round-off does not accumulate.
    """

    def __init__(self, Q, y, C, dcap, status, alpha, b, beta):
        self.Q, self.y, self.C, self.dcap = Q, y, C, dcap
        self.status = status  # updated in place
        self.alpha, self.b, self.beta = alpha.copy(), b, beta
        self.g = Q @ alpha + y * b - 1.0
        growing = np.flatnonzero((status == _BOUND) & (dcap > 0))
        self.v = dcap[growing] @ Q[growing]  # Q symmetric: rows instead of columns
        self.s = float(y[growing] @ dcap[growing])

    def _rates(self):
        Q, y, status = self.Q, self.y, self.status
        M = np.flatnonzero(status == _MARGIN)
        sol = sla.lu_solve(_factor(Q, y, M), -np.r_[self.v[M], self.s], check_finite=False)
        da_M, db = sol[:-1], float(sol[-1])
        dalpha = np.where(status == _BOUND, self.dcap, 0.0)
        dalpha[M] = da_M
        dg = da_M @ Q[M] + self.v + y * db
        return dalpha, db, dg

    def _move(self, who, to):
        status, dcap = self.status, self.dcap
        if to == _ZERO:
            self.alpha[who] = 0.0
        elif to == _MARGIN:
            self.g[who] = 0.0
        if dcap[who] > 0 and _BOUND in (status[who], to):  # a growing box joins or leaves B
            sign = 1.0 if to == _BOUND else -1.0
            self.v += sign * dcap[who] * self.Q[who]
            self.s += sign * dcap[who] * self.y[who]
        status[who] = to

    def advance(self, target, events, max_events):
        """Walk to ``target``, appending the events met to ``events``; returns ``target``."""
        status, alpha, g, dcap = self.status, self.alpha, self.g, self.dcap
        while self.beta < target:
            if len(events) >= max_events:
                raise _Degenerate(f"more than {max_events} events")
            dalpha, db, dg = self._rates()
            cap = np.where(dcap > 0, self.beta * dcap, self.C)
            margin = status == _MARGIN
            step, who, to = target - self.beta, -1, -1
            with np.errstate(divide="ignore", invalid="ignore"):
                candidates = (
                    (margin & (dalpha < 0), -alpha / dalpha, _ZERO),
                    (margin & (dalpha > dcap), (cap - alpha) / (dalpha - dcap), _BOUND),
                    ((status == _ZERO) & (dg < 0), -g / dg, _MARGIN),
                    ((status == _BOUND) & (dg > 0), -g / dg, _MARGIN),
                )
            for mask, t, new in candidates:
                if mask.any():
                    t = np.where(mask, np.maximum(t, 0.0), np.inf)
                    i = int(np.argmin(t))
                    if t[i] < step:
                        step, who, to = float(t[i]), i, new
            alpha += step * dalpha
            g += step * dg
            self.b += step * db
            if who < 0:
                self.beta = target
                break
            self.beta += step
            if to == _BOUND:
                alpha[who] = self.beta * dcap[who] if dcap[who] > 0 else self.C
            events.append(
                {"beta": self.beta, "index": who, "from": _NAMES[status[who]], "to": _NAMES[to]}
            )
            self._move(who, to)
        return target


def _certified(Q, y, alpha, b, cap) -> bool:
    g = Q @ alpha + y * b - 1.0  # y f - 1
    margin = (alpha > ALPHA_TOL * cap) & (alpha < cap * (1 - ALPHA_TOL))
    bound = (cap > 0) & (alpha >= cap * (1 - ALPHA_TOL))
    zero = ~(margin | bound)
    return bool(
        np.all(alpha >= -1e-12 * max(cap.max(), 1.0))
        and np.all(alpha <= cap * (1 + 1e-12) + 1e-15)
        and abs(y @ alpha) <= MARGIN_TOL * max(1.0, alpha.sum())
        and np.all(np.abs(g[margin]) <= MARGIN_TOL)
        and np.all(g[zero & (cap > 0)] >= -MARGIN_TOL)
        and np.all(g[bound] <= MARGIN_TOL)
    )


def svm_path(
    K: np.ndarray,
    y: np.ndarray,
    n_clean: int,
    C: float,
    betas: np.ndarray,
    alpha0: np.ndarray,
    b0: float,
    refit: Callable[[float], tuple[np.ndarray, float]],
    *,
    max_events: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict], list[float]]:
    """Follow the SVM dual from beta = 0 through the sorted ``betas``.

    Parameters
    ----------
    K : ndarray of shape (n, n)
        Kernel over D followed by P.
    y : ndarray of shape (n,)
        Labels in {-1, +1}.
    n_clean : int
        |D|; rows from ``n_clean`` on are the poisoning points.
    C : float
    betas : ndarray
        Increasing betas in [0, 1].
    alpha0, b0 : the optimum at beta = 0 (zeros on P).
    refit : callable ``beta -> (alpha, b)``
        Exact re-fit, used only where the incremental step is degenerate.
    max_events : int, optional
        Safety bound on the number of events (default 20 n).

    Returns
    -------
    alphas : ndarray of shape (n_betas, n)
    bs : ndarray of shape (n_betas,)
    events : list of dict
        ``beta``, ``index`` (row of D followed by P), ``from`` and ``to`` set names.
    refitted : list of float
        The betas that were re-fitted.
    """
    n = len(y)
    is_P = np.arange(n) >= n_clean
    dcap = np.where(is_P, C, 0.0)

    def cap(beta):
        return np.where(is_P, beta * C, C)

    Q = (y[:, None] * y[None, :]) * K
    max_events = 20 * n if max_events is None else max_events
    alpha, b, beta = np.array(alpha0, dtype=float), float(b0), 0.0
    status = _status(alpha, cap(0.0), Q @ alpha + y * b - 1.0)
    alphas, bs, events, refitted = np.zeros((len(betas), n)), np.zeros(len(betas)), [], []
    for k, target in enumerate(betas):
        try:
            if beta < target:
                walker = _Walker(Q, y, C, dcap, status, alpha, b, beta)
                beta = walker.advance(target, events, max_events)
            alpha, b, _, _ = _solve(Q, y, status, cap(target), dcap)
            beta = target
            if not _certified(Q, y, alpha, b, cap(target)):
                raise _Degenerate("the KKT certificate failed")
        except _Degenerate as exc:
            warnings.warn(
                f"SVM path degenerate near beta={target:.4g} ({exc}); re-fitting there",
                SVMPathWarning,
                stacklevel=3,
            )
            alpha, b = refit(target)
            beta = target
            refitted.append(float(target))
            status = _status(alpha, cap(target), Q @ alpha + y * b - 1.0)
        alphas[k], bs[k] = alpha, b
    return alphas, bs, events, refitted
