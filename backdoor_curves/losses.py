"""Per-sample losses l(y, f) with labels y in {-1, +1} and decision values f.

Each loss gives its value and its first and second derivatives with respect to the decision value
f (``d1 = dl/df``, ``d2 = d^2 l / df^2``, ``d3``). Natural logarithms throughout.

============  =========================  =====================  =========================
loss          l(y, f)                    dl/df                  d^2 l/df^2
============  =========================  =====================  =========================
logistic      log(1 + exp(-y f))         -y sigma(-y f)          sigma(y f) sigma(-y f)
squared       (y - f)^2                  2 (f - y)              2
hinge         max(0, 1 - y f)            -y [y f < 1]           0 (almost everywhere)
============  =========================  =====================  =========================

The hinge's derivative is the right/left-consistent one away from the kink y f = 1; at the kink
it returns 0 (the one-sided derivative seen by a point that just left the margin).

The logistic loss and its derivatives keep full relative accuracy (a few ulps) at every margin
m = y f where the result is a normal float (|m| up to about 708), which matters because the
curvature of confidently classified points, about exp(-|m|), weights the Hessian: l is
``logaddexp(0, -m)``, dl/df = -y sigma(-m), d^2 l/df^2 = sigma(m) sigma(-m) (never s (1 - s),
whose 1 - s rounds to 0 for m > ~37), d^3 l/df^3 = -y sigma(m) sigma(-m) tanh(m / 2) (never
1 - 2 s, which cancels near m = 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = ["Loss", "LOGISTIC", "SQUARED", "HINGE", "LOSSES"]


@dataclass(frozen=True)
class Loss:
    """A margin loss with its derivatives in the decision value.

    Every function takes labels ``y`` in {-1, +1} and decision values ``f`` (arrays that
    broadcast together) and returns an array of the broadcast shape, one value per sample.

    Attributes
    ----------
    name : str
        "logistic", "squared" or "hinge" (its key in :data:`LOSSES`).
    value : callable
        ``value(y, f)``: the per-sample loss l(y, f) (natural logarithms).
    d1 : callable
        ``d1(y, f)``: dl/df.
    d2 : callable
        ``d2(y, f)``: d^2 l/df^2 (0 for the hinge, its value almost everywhere).
    d3 : callable or None, default=None
        ``d3(y, f)``: d^3 l/df^3, which enters the second derivative of the learning curve at
        beta = 0; None when not available.
    smooth : bool, default=True
        Whether l is twice differentiable in f (False for the hinge, whose learners follow the
        KKT conditions instead of a Hessian).
    quadratic : bool, default=False
        Whether l is quadratic in f (the squared loss): one Newton step is then exact.
    """

    name: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]
    d1: Callable[[np.ndarray, np.ndarray], np.ndarray]
    d2: Callable[[np.ndarray, np.ndarray], np.ndarray]
    d3: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    smooth: bool = True
    quadratic: bool = False


def _logistic(y, f):
    # log1p(exp(-|m|)) + max(0, -m): no overflow, full relative accuracy at either sign
    return np.logaddexp(0.0, -y * f)


def _logistic_d1(y, f):
    return -y * expit(-y * f)


def _logistic_d2(y, f):
    # sigma(m) sigma(-m), m = y f (y^2 = 1): both factors are computed to full relative
    # accuracy, unlike s (1 - s), whose 1 - s rounds to 0 past m ~ 37 (true value ~exp(-m))
    m = y * f
    return expit(m) * expit(-m)


def _logistic_d3(y, f):
    # y sigma(m) sigma(-m) (sigma(-m) - sigma(m)) with sigma(-m) - sigma(m) = -tanh(m / 2):
    # the difference of sigmoids cancels near m = 0 (relative error eps / |m|), tanh does not
    m = y * f
    return -y * (expit(m) * expit(-m)) * np.tanh(0.5 * m)


def _squared(y, f):
    return (y - f) ** 2


def _squared_d1(y, f):
    return 2.0 * (f - y)


def _squared_d2(y, f):
    return np.full(np.broadcast(y, f).shape, 2.0)


def _zero(y, f):
    return np.zeros(np.broadcast(y, f).shape)


def _hinge(y, f):
    return np.maximum(0.0, 1.0 - y * f)


def _hinge_d1(y, f):
    return np.where(y * f < 1.0, -y, 0.0) * np.ones_like(f)


def _hinge_d2(y, f):
    return np.zeros(np.broadcast(y, f).shape)


LOGISTIC = Loss("logistic", _logistic, _logistic_d1, _logistic_d2, _logistic_d3)
SQUARED = Loss("squared", _squared, _squared_d1, _squared_d2, _zero, quadratic=True)
HINGE = Loss("hinge", _hinge, _hinge_d1, _hinge_d2, _zero, smooth=False)
LOSSES = {loss.name: loss for loss in (LOGISTIC, SQUARED, HINGE)}
