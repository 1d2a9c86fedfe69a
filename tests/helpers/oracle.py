"""The independent oracle: scikit-learn estimators re-fitted with sample weights 1 on D, beta on P.

Nothing here calls backdoor_curves' learners; the losses are written out again from DESIGN §3.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from backdoor_curves import (
    LinearSVMLearner,
    LogisticLearner,
    RBFSVMLearner,
    RidgeLearner,
)

GAMMA = 0.05


def learner_and_estimator(kind: str, reg: float):
    """Our learner and the scikit-learn estimator with the same objective (reg = C)."""
    if kind == "logistic":
        return LogisticLearner(reg), LogisticRegression(
            C=reg, solver="newton-cholesky", tol=1e-13, max_iter=1000
        )
    if kind == "ridge":
        alpha = 1.0 / (2.0 * reg)
        return RidgeLearner(alpha), RidgeClassifier(alpha=alpha, solver="cholesky")
    if kind == "linear_svm":
        return LinearSVMLearner(reg), SVC(kernel="linear", C=reg, tol=1e-12)
    if kind == "rbf_svm":
        return RBFSVMLearner(reg, gamma=GAMMA), SVC(kernel="rbf", C=reg, gamma=GAMMA, tol=1e-12)
    raise ValueError(kind)


def losses(kind: str, y_pm: np.ndarray, f: np.ndarray) -> np.ndarray:
    if kind == "logistic":
        return np.log1p(np.exp(-y_pm * f))
    if kind == "ridge":
        return (y_pm - f) ** 2
    return np.maximum(0.0, 1.0 - y_pm * f)


def refit(kind: str, estimator, data, beta: float) -> dict:
    """Fit the scikit-learn estimator at weight beta on P and measure everything a curve reports."""
    from sklearn.base import clone

    X = np.vstack([data.X_clean, data.X_poison])
    y = np.concatenate([data.y_clean, data.y_poison])
    sw = np.r_[np.ones(len(data.y_clean)), np.full(len(data.y_poison), beta)]
    est = clone(estimator).fit(X, y, sample_weight=sw)
    pos = est.classes_[1]
    out = {}
    for name, Xs, ys in [
        ("backdoor", data.X_test_bd, data.y_test_bd),
        ("clean", data.X_test, data.y_test),
    ]:
        f = est.decision_function(Xs)
        y_pm = np.where(ys == pos, 1.0, -1.0)
        out[f"{name}_loss"] = float(np.mean(losses(kind, y_pm, f)))
        out[f"{name}_accuracy"] = float(np.mean(est.predict(Xs) == ys))
    if kind == "rbf_svm":
        # dual coefficients laid out over D u P; SVC.support_ indexes the positive-weight rows
        keep = np.flatnonzero(sw > 0)
        vec = np.zeros(len(y))
        vec[keep[est.support_]] = est.dual_coef_[0]
        out["vector"] = vec
        out["gram"] = rbf_kernel(X, X, gamma=GAMMA)
    else:
        out["vector"] = np.ravel(est.coef_)
    return out
