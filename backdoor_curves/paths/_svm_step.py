"""One event of the SVM path, compiled: the first event from the current beta, and the move to it.

Between events every quantity of the path is linear in beta, so the next event is the smallest
non-negative time at which

- a zero point's margin g = y f - 1 falls to 0, or a bound point's rises to 0
  (time ``-g / dg``);
- a margin dual reaches 0 (rate ``dx < 0``, time ``-a / dx``) or its box, which grows at rate
  ``dcap`` (rate ``dx > dcap``, time ``(cap - a) / (dx - dcap)``).

In numpy this is some twenty calls over arrays of a few hundred entries per event, which made
the overhead the largest cost of a path; compiled it is one pass (about 100x faster). The module
is imported on the first SVM path, so numba's import and (cached) compilation are paid only there.
"""

from __future__ import annotations

import numba
import numpy as np

from ._codes import BOUND as _BOUND
from ._codes import MARGIN as _MARGIN
from ._codes import ZERO as _ZERO


@numba.njit(cache=True, nogil=True)
def event_step(dg, status, g, dx, ids, live, alpha, dcap, beta, C, remaining):  # pragma: no cover
    """Find the first event and move the duals and margins to it, or by ``remaining``.

    Parameters
    ----------
    dg, status, g : ndarray of shape (n,)
        Rates of the margins, the set of each point (zero, margin or bound) and the margins
        (updated in place).
    dx, ids, live : ndarray of shape (n_slots,)
        Rates of the margin duals in slot order, the point of each slot, and 1.0 where the slot
        holds a member of the margin set.
    alpha : ndarray of shape (n,)
        Duals (updated in place on the margin set).
    dcap : ndarray of shape (n,)
        Growth rate of each box (C on the poisoning points, 0 on the clean ones).
    beta, C : float
        Current beta and the clean points' box.
    remaining : float
        Distance to the requested beta.

    Returns
    -------
    t : float
        Time (in beta) to the first event, inf if there is none.
    step : float
        ``min(t, remaining)``, the distance moved.
    who : int
        The point of the event (-1 if none).
    to : int
        The set it moves to (0 zero, 1 margin, 2 bound).
    """
    best, who, to = np.inf, -1, _MARGIN
    for i in range(dg.shape[0]):
        if (status[i] == _BOUND and dg[i] > 0.0) or (status[i] == _ZERO and dg[i] < 0.0):
            t = -g[i] / dg[i]
            if t < best:
                best, who, to = t, i, _MARGIN
    for j in range(dx.shape[0]):
        if live[j] == 0.0:
            continue
        i = ids[j]
        if dx[j] < 0.0:
            t = -alpha[i] / dx[j]
            if t < best:
                best, who, to = t, i, _ZERO
        elif dx[j] > dcap[i]:
            cap = beta * dcap[i] if dcap[i] > 0.0 else C
            t = (cap - alpha[i]) / (dx[j] - dcap[i])
            if t < best:
                best, who, to = t, i, _BOUND
    best = max(best, 0.0)
    step = min(best, remaining)
    for j in range(dx.shape[0]):
        if live[j] != 0.0:
            alpha[ids[j]] += step * dx[j]
    for i in range(g.shape[0]):
        g[i] += step * dg[i]
    return best, step, who, to
