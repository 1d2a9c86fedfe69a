"""Exact paths theta*(beta) for beta in [0, 1], without re-fitting.

- :mod:`.smooth`: ridge in closed form (Woodbury on the poisoning block) and logistic regression by
  predictor-corrector Newton continuation.
- :mod:`.svm`: the piecewise-linear dual path of the SVMs, event by event (its event scan is
  compiled by numba in :mod:`._svm_step`).
- :mod:`.follow`: :func:`exact_path`, which learner class follows which path (one registration
  per class).
"""

from .follow import PathFits, exact_path, has_exact_path
from .smooth import logistic_path, ridge_path
from .svm import SVMPathWarning, svm_path

__all__ = [
    "PathFits",
    "SVMPathWarning",
    "exact_path",
    "has_exact_path",
    "logistic_path",
    "ridge_path",
    "svm_path",
]
