"""The exact SVM path in beta: incremental (Cauwenberghs-Poggio) continuation of the dual.

Dual of the SVM with boxes 0 <= a_i <= c_i(beta), c_i = C on the clean set D and beta C on the
poisoning set P, and y^T a = 0. With the margin set M (0 < a_i < c_i, y_i f_i = 1), the bound set
B (a_i = c_i, y_i f_i <= 1) and the rest Z (a_i = 0, y_i f_i >= 1) fixed, the KKT equalities

    [[Q_MM, y_M], [y_M^T, 0]] [a_M; b] = [1 - Q_MB c_B(beta); -y_B^T c_B(beta)]

are linear in beta, so the solution is piecewise linear. The path moves from beta = 0 to each
requested beta, stopping at *events*: a margin dual reaching 0 (M -> Z) or its box (M -> B), or a
point of Z or B reaching the margin (-> M). Between events the duals, the intercept and the
margins move along their rates; the rates come from the bordered system, whose factorization is
updated as single points join or leave M (:class:`_MarginSystem`). At every requested beta the
duals are re-solved from the sets (so round-off does not accumulate along the path) and
certified by the full KKT conditions. Where the bordered matrix is singular (e.g. no margin
vector), a certificate fails, or no margin dual lies strictly inside its box (then every b in an
interval is optimal, and the re-fit takes libsvm's choice, the same as ``method="refit"``), the
point is re-fitted instead (the path starts again from there) and a warning says so.

Cost: one O(|M| n) product, one O(|M|^2) triangular-solve pair and one compiled O(n) scan
(:mod:`._svm_step`) per event, plus O(|M| k + k^3) for the k-th change of M since the last
factorization (an O(|M|^3) LU every max(32, |M|^(3/4) / 2) changes: :func:`changes_per_base`);
O(|M| n) per requested beta. Events grow with n and |M| with them, so a path costs between
O(n^2) and O(n^3) (benchmarks/results/scale.md). On MNIST 7 vs 1 (750 points, about 300 events
on [0, 1]) an event costs about 0.1 ms.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.linalg import lapack

from ..learners.svm import MARGIN_TOL, bordered_matrix, dual_sets, margin_tolerance
from ._codes import BOUND as _BOUND
from ._codes import MARGIN as _MARGIN
from ._codes import NAMES as _NAMES
from ._codes import ZERO as _ZERO

__all__ = ["svm_path", "SVMPathWarning"]


class SVMPathWarning(UserWarning):
    """Part of an SVM path was re-fitted because the incremental step was degenerate."""


class _Degenerate(Exception):
    pass


def _status(alpha, cap, g):
    """Set membership from duals (and margins for the zero-cap points of P at beta = 0)."""
    status = np.full(alpha.shape, _ZERO)
    margin, bound = dual_sets(alpha, cap)
    status[margin] = _MARGIN
    status[bound | ((cap == 0) & (g < 0))] = _BOUND  # a = cap = 0: it grows with beta
    return status


def _lu(A: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """LAPACK LU (``getrf``) that rejects exactly or numerically singular pivots.

    It runs many times along a path, so it skips the condition estimate of
    :class:`~backdoor_curves.linalg.LUSolver`; a rejected matrix makes the caller re-fit.
    """
    lu, piv, _ = lapack.dgetrf(A)
    pivots = np.abs(lu.diagonal())
    # NaN pivots fail the comparison as well
    if not pivots.min() > 1e-13 * max(pivots.max(), 1.0):
        raise _Degenerate(
            f"the {what} is singular: e.g. duplicated training points on the margin, or margin "
            "points the kernel cannot tell apart"
        )
    return lu, piv


def changes_per_base(m: int) -> int:
    """Changes of the margin set between two factorizations of its base: max(32, m^(3/4) / 2).

    A new base costs an O(m^3) LU; the k-th change since costs O(m^2) (a solve with the base
    LU) and O(k^3) (the LU of the k x k Schur complement). K changes per base balance m^3 / K
    against K^3 near K ~ m^(3/4). Measured on the RBF path at n = 4,000 points (m about 1,500):
    7.6 s with K = 32, 5.1 s with 128 (this rule: 120), 5.2 s with 256.

    Parameters
    ----------
    m : int
        Size of the base margin set.

    Returns
    -------
    int
    """
    return max(32, int(round(0.5 * m**0.75)))


class _MarginSystem:
    """The bordered KKT system of a margin set that changes one point at a time.

    ``[[Q_MM, y_M], [y_M^T, 0]] [x_M; x_b] = [r_M; r_b]`` is solved from the LU factorization
    of a *base* set M0's matrix H0 and a Schur complement of the changes since. With W the
    columns ``[Q_{M0,a}; y_a]`` of the points a added and the unit columns e_p of the base
    points p removed, and D holding Q_aa' between added points (0 elsewhere), the system of
    M is equivalent to

        [[H0, W], [W^T, D]] [x0; xk] = [r0; rk]

    (the row of a removed point forces its dual to 0 and its multiplier in xk frees its own
    equation). So ``x0 = z - Z xk`` with ``z = H0^{-1} r0``, ``Z = H0^{-1} W`` (kept; one
    triangular-solve pair per change) and ``S xk = rk - W^T z``, ``S = D - W^T Z`` (k x k). A
    change then costs O(m k) instead of an O(m^3) factorization; after ``max_changes`` changes
    (or if S is numerically singular) the current set becomes the new base and is factorized
    afresh; by default ``max_changes`` grows with the base (:func:`changes_per_base`). It is a
    direct method: its accuracy does not degrade along the path.

    The system also owns the rows of Q of its points, contiguous in *slot* order: the base
    points, then one slot per change (:attr:`ids`, :attr:`rows`; :attr:`live` is False for a
    removed base point and for the slot of a removal). :meth:`solve_slots` returns the solution
    in that order, so ``x @ rows`` is ``Q[:, M] x_M`` without gathering.
    """

    def __init__(self, Q: np.ndarray, y: np.ndarray, M: np.ndarray, max_changes: int | None = None):
        self.Q, self.y, self._fixed_changes = Q, y, max_changes
        self._rebase(M)

    def _rebase(self, M: np.ndarray) -> None:
        if M.size == 0:
            raise _Degenerate("no margin support vector")
        if self._fixed_changes is None:
            self.max_changes = changes_per_base(M.size)
        else:
            self.max_changes = self._fixed_changes
        m, cap, n = M.size, self.max_changes + 1, self.Q.shape[0]
        self.base = M
        self.position = {int(i): k for k, i in enumerate(M)}
        H = bordered_matrix(self.Q[np.ix_(M, M)], self.y[M])
        self.lu, self.piv = _lu(H, "bordered KKT matrix")
        self.changes, self.is_added = [], []  # W's columns: point, and whether it was added
        self.W, self.Z, self.S = (
            np.empty((m + 1, cap)),
            np.empty((m + 1, cap)),
            np.empty((cap, cap)),
        )
        self.S_lu = None
        self.rows = np.empty((m + cap, n))
        self.rows[:m] = self.Q[M]
        self.ids = np.empty(m + cap, dtype=np.intp)
        self.ids[:m] = M
        self.live = np.zeros(m + cap)  # 1.0 where the slot holds a member of M
        self.live[:m] = 1.0
        self._cache = (None, None)  # (key, z) of the last keyed solve

    @property
    def n_slots(self) -> int:
        return self.base.size + len(self.changes)

    def members(self) -> np.ndarray:
        """The current margin set."""
        n = self.n_slots
        return self.ids[:n][self.live[:n] > 0]

    def _append(self, i: int, added: bool) -> None:
        """Record change ``i`` whose column of W has been written to ``W[:, k]``."""
        k, m, slot = len(self.changes), self.base.size, self.n_slots
        w = self.W[:, k]
        z = lapack.dgetrs(self.lu, self.piv, w)[0]
        self.Z[:, k] = z
        s_col = -(self.W[:, :k].T @ z)
        if added and k:  # D: Q between added points, nothing involving a removed one
            s_col += self.Q[i, self.ids[m:slot]] * self.live[m:slot]
        self.S[k, :k] = self.S[:k, k] = s_col
        self.S[k, k] = (self.Q[i, i] if added else 0.0) - w @ z
        self.changes.append(i)
        self.is_added.append(added)
        self.ids[slot], self.live[slot] = i, float(added)
        # a removal's slot has weight 0 in every product with the rows: zeros, not stale memory
        # (0 * NaN would be NaN)
        self.rows[slot] = self.Q[i] if added else 0.0

    def _undo(self, i: int) -> None:
        k, n = self.changes.index(i), len(self.changes)
        m = self.base.size
        for A in (self.W, self.Z):
            A[:, k : n - 1] = A[:, k + 1 : n]
        self.S[k : n - 1, :n] = self.S[k + 1 : n, :n]
        self.S[:n, k : n - 1] = self.S[:n, k + 1 : n]
        for A in (self.rows, self.ids, self.live):
            A[m + k : m + n - 1] = A[m + k + 1 : m + n]
        if not self.is_added[k]:  # a removed base point is back
            self.live[self.position[i]] = 1.0
        del self.changes[k], self.is_added[k]

    def _refactor(self) -> None:
        k = len(self.changes)
        if k > self.max_changes:
            self._rebase(self.members())
            return
        self.S_lu = None
        if k:
            try:
                self.S_lu = _lu(self.S[:k, :k], "Schur complement")
            except _Degenerate:  # start again from the current set (raises if it is singular)
                self._rebase(self.members())

    def add(self, i: int) -> None:
        """Point ``i`` joins the margin set."""
        if i in self.changes:  # a removed base point comes back
            self._undo(i)
        else:  # W's column [Q_{M0,i}; y_i]; Q symmetric: a column of the base rows
            m, w = self.base.size, self.W[:, len(self.changes)]
            w[:m], w[m] = self.rows[:m, i], self.y[i]
            self._append(i, True)
        self._refactor()

    def remove(self, i: int) -> None:
        """Point ``i`` leaves the margin set."""
        if i in self.changes:  # an added point leaves again
            self._undo(i)
        else:
            p, w = self.position[i], self.W[:, len(self.changes)]
            w[:] = 0.0  # W's column e_p
            w[p] = 1.0
            self.live[p] = 0.0
            self._append(i, False)
        self._refactor()

    def solve_slots(self, r: np.ndarray, r_b: float, key=None) -> tuple[np.ndarray, float]:
        """Solve for right-hand sides ``r`` (an n-vector, read on M) and ``r_b``.

        Returns x in slot order (length :attr:`n_slots`, zero on dead slots) and x_b. A
        ``key`` names the right-hand side: while it and the set's factorization are unchanged,
        ``z = H0^{-1} r0`` is reused.
        """
        key_z, z = self._cache
        if key is None or key != key_z:
            z = lapack.dgetrs(self.lu, self.piv, np.append(r[self.base], r_b))[0]
            if key is not None:
                self._cache = (key, z)
        m, k = self.base.size, len(self.changes)
        x = np.empty(m + k)
        if k:
            slots = self.ids[m : m + k]
            rk = r[slots] * self.live[m : m + k]  # a removed point's equation: its dual is 0
            xk = lapack.dgetrs(*self.S_lu, rk - self.W[:, :k].T @ z)[0]
            x0 = z - self.Z[:, :k] @ xk
            x[m:] = xk
        else:
            x0 = z
        x[:m] = x0[:-1]
        x *= self.live[: m + k]
        return x, float(x0[-1])

    def solve(self, r: np.ndarray, r_b: float) -> tuple[np.ndarray, float]:
        """As :meth:`solve_slots`, with x as an n-vector (zero off M)."""
        xs, x_b = self.solve_slots(r, r_b)
        x = np.zeros(r.shape[0])
        live = self.live[: xs.size] > 0
        x[self.ids[: xs.size][live]] = xs[live]
        return x, x_b


class _Walker:
    """The dual along the path: sets, duals, intercept and margins, moved event by event.

    Between events the duals, the intercept and the margins g = y f - 1 are linear in beta, so
    they move by their rates instead of being recomputed. Per event: the new rates of the
    margin duals from the :class:`_MarginSystem` (in its slot order), one product with the
    system's rows of Q (O(|M| n)) and one compiled scan for the next event. The bound points of
    P (boxes growing at rate C) enter the rates only through ``v = Q[:, B_P] dcap[B_P]`` and
    ``s = y[B_P]^T dcap[B_P]``, and the bound points of D the requested betas' right-hand sides
    through ``u_D = C Q[:, B_D] 1``; both are updated as points join or leave B (each update
    adds one row of Q, so round-off grows by about one ulp per event). Duals are walked on M
    only: a point joining M from B starts at its box, and :meth:`settle` re-solves all duals
    from the sets at a requested beta, so round-off does not accumulate.
    """

    def __init__(self, Q, y, C, dcap, alpha, b, beta):
        self.Q, self.y, self.C, self.dcap = Q, y, C, dcap
        self.kernel_scale = float(np.max(np.diagonal(Q))) if Q.size else 1.0  # max K(x, x)
        self.beta = beta
        self.status = _status(alpha, self.cap(beta), self._margins(alpha, b))
        self.system = _MarginSystem(Q, y, np.flatnonzero(self.status == _MARGIN))
        self.version = 0  # of v and s, the rates' right-hand side (keys the system's cache)
        self.v = Q @ self._growing()
        self.u_D = Q @ np.where((self.status == _BOUND) & (dcap == 0), C, 0.0)
        self._set(alpha, b, self._margins(alpha, b))

    def cap(self, beta: float) -> np.ndarray:
        """Boxes c_i(beta): C on D, beta C on P."""
        return np.where(self.dcap > 0, beta * self.dcap, self.C)

    def _margins(self, alpha, b):
        """y f - 1 for every point (Q symmetric)."""
        return self.Q @ alpha + self.y * b - 1.0

    def _growing(self) -> np.ndarray:
        """Rates of the bound duals of P (their boxes), zero elsewhere."""
        return np.where((self.status == _BOUND) & (self.dcap > 0), self.dcap, 0.0)

    def _set(self, alpha, b, g):
        self.alpha, self.b, self.g = alpha, b, g
        self.s = float(self.y @ self._growing())
        self.version += 1

    def settle(self) -> None:
        """Re-solve the duals and intercept at the current beta from the sets; certify them.

        With the bound duals a_B (C on D, beta C on P), r = 1 - Q a_B = 1 - u_D - beta v, where
        u_D = C Q 1_{B_D} and v are kept up to date as points join or leave B (no product with
        all of Q); then g = Q a + y b - 1 = Q_M a_M - r + y b from the margin rows.
        """
        status, cap, system = self.status, self.cap(self.beta), self.system
        alpha = np.where(status == _BOUND, cap, 0.0)
        r = 1.0 - self.u_D - self.beta * self.v
        x, b = system.solve_slots(r, -float(self.y @ alpha))
        live = system.live[: x.size] > 0
        alpha[system.ids[: x.size][live]] = x[live]
        self._set(alpha, b, x @ system.rows[: x.size] - r + self.y * b)
        if not _certified(self.y, alpha, self.g, cap, self.kernel_scale):
            raise _Degenerate("the KKT certificate failed")
        if not dual_sets(alpha, cap)[0].any():  # every margin dual sits at 0 or its box
            # then any b in an interval is optimal: re-fit, which takes libsvm's choice
            raise _Degenerate("no margin dual inside its box, so the intercept is not unique")

    def _rates(self):
        """Rates of the margin duals (slot order), of b and of the margins g."""
        system = self.system
        dx, db = system.solve_slots(-self.v, -self.s, key=self.version)
        dg = dx @ system.rows[: dx.size] + self.v + self.y * db
        return dx, db, dg

    def _move(self, who: int, to: int) -> None:
        status, dcap = self.status, self.dcap
        if to == _ZERO:
            self.alpha[who] = 0.0
        elif _BOUND in (status[who], to):  # it reaches its box, or leaves it for M from there
            self.alpha[who] = self.beta * dcap[who] if dcap[who] > 0 else self.C
        if to == _MARGIN:
            self.g[who] = 0.0
            self.system.add(who)
        elif status[who] == _MARGIN:
            self.system.remove(who)
        if _BOUND in (status[who], to):  # a box joins or leaves B
            sign = 1.0 if to == _BOUND else -1.0
            if dcap[who] > 0:  # a growing one: it changes the rates
                self.v += sign * dcap[who] * self.Q[who]
                self.s += sign * dcap[who] * self.y[who]
                self.version += 1
            else:
                self.u_D += sign * self.C * self.Q[who]
        status[who] = to

    def advance(self, target: float, events: list, max_events: int) -> None:
        """Walk to ``target``, appending the events met to ``events``."""
        from ._svm_step import event_step  # numba: imported and compiled on the first path

        status, system = self.status, self.system
        while self.beta < target:
            if len(events) >= max_events:
                raise _Degenerate(f"more than {max_events} events")
            dx, db, dg = self._rates()
            n_slots, remaining = dx.size, target - self.beta
            t, step, who, to = event_step(
                dg, status, self.g, dx, system.ids[:n_slots], system.live[:n_slots],
                self.alpha, self.dcap, self.beta, self.C, remaining,
            )  # fmt: skip
            self.b += step * db
            if step == remaining and t >= step:
                self.beta = target
                break
            self.beta += step
            events.append(
                {
                    "beta": self.beta,
                    "index": who,
                    "from": _NAMES[status[who]],
                    "to": _NAMES[to],
                }
            )
            self._move(who, to)


def _certified(y, alpha, g, cap, kernel_scale: float = 1.0) -> bool:
    """The KKT conditions at the duals ``alpha`` with margins ``g = y f - 1``, to
    :func:`~backdoor_curves.learners.svm.margin_tolerance` (MARGIN_TOL plus f's round-off)."""
    margin, bound = dual_sets(alpha, cap)
    zero = ~(margin | bound)
    tol = margin_tolerance(np.maximum(alpha, 0.0), kernel_scale)
    return bool(
        np.all(alpha >= -1e-12 * max(cap.max(), 1.0))
        and np.all(alpha <= cap * (1 + 1e-12) + 1e-15)
        and abs(y @ alpha) <= MARGIN_TOL * max(1.0, alpha.sum())
        and np.all(np.abs(g[margin]) <= tol)
        and np.all(g[zero & (cap > 0)] >= -tol)
        and np.all(g[bound] <= tol)
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
        The SVM's C > 0: the box of a dual is C on D and beta C on P.
    betas : ndarray
        Increasing betas in [0, 1].
    alpha0 : ndarray of shape (n,)
        The dual optimum at beta = 0 (zeros on P), e.g. from
        :func:`~backdoor_curves.learners.svm.solve_svm_dual` with weight 0 on P.
    b0 : float
        The intercept at beta = 0.
    refit : callable ``beta -> (alpha, b)``
        Exact re-fit, used only where the incremental step is degenerate.
    max_events : int, optional
        Safety bound on the number of events (default 20 n).

    Returns
    -------
    alphas : ndarray of shape (n_betas, n)
        The duals a_i (>= 0, unsigned) over D followed by P at each requested beta.
    bs : ndarray of shape (n_betas,)
        The intercepts.
    events : list of dict
        ``beta``, ``index`` (row of D followed by P), ``from`` and ``to`` set names.
    refitted : list of float
        The betas that were re-fitted.
    """
    n = len(y)
    dcap = np.where(np.arange(n) >= n_clean, C, 0.0)
    Q = (y[:, None] * y[None, :]) * K
    max_events = 20 * n if max_events is None else max_events
    alphas, bs, events, refitted = np.zeros((len(betas), n)), np.zeros(len(betas)), [], []
    alpha, b, beta, walker = np.array(alpha0, dtype=float), float(b0), 0.0, None
    for k, target in enumerate(betas):
        try:
            if walker is None:
                walker = _Walker(Q, y, C, dcap, alpha, b, beta)
            walker.advance(target, events, max_events)
            walker.settle()
            alpha, b = walker.alpha.copy(), walker.b
        except _Degenerate as exc:
            warnings.warn(
                f"SVM path degenerate near beta={target:.4g} ({exc}); re-fitting there",
                SVMPathWarning,
                stacklevel=3,
            )
            alpha, b = refit(target)
            refitted.append(float(target))
            walker = None
        beta = target
        alphas[k], bs[k] = alpha, b
    return alphas, bs, events, refitted
