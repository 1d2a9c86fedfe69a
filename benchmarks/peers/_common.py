"""Shared pieces of the peer benchmarks: data, thread pinning, the re-training reference.

Both peer scripts (``bench_torch_peers.py`` in the pyDVL/captum venv, ``bench_secml.py`` in the
secml venv) import this module and ``bench_core`` (the interleaved timer and the MNIST loader).

The quantity every peer is reduced to is the backdoor learning slope of DESIGN §4,

    dL(V_t)/dbeta |_0 = - grad L(V_t, theta0)^T  H0^{-1}  grad [C sum_{j in P} l(y_j, f(x_j))],

L(V_t) the *mean* natural log-loss on the backdoor test set, H0 the Hessian of
J = C sum_D l + 1/2 ||w||^2 (intercept unpenalized, scikit-learn's convention).

Two conventions are compared against re-training:

- ``"sklearn"``: the objective above, re-fitted with
  ``LogisticRegression(C, solver="newton-cholesky", tol=1e-13)``;
- ``"bias_reg"``: J + 1/2 b^2 (the intercept penalized like a weight, which is what the torch
  libraries' ``lambda * I`` and secml's liblinear fit do), re-fitted with the same estimator and
  ``fit_intercept=False`` on ``[X, 1]``.

The re-training derivative is a Richardson-extrapolated forward difference of tight re-fits,
``2 D(h/2) - D(h)`` with ``D(h) = (L(h) - L(0)) / h`` (error O(h^2)), at h = 1e-4, 1e-5, 1e-6;
the smallest step is the reference and its difference to the previous one estimates its error
(the curve bends sharply near beta = 0: at C = 1 a plain forward difference at h = 1e-4 is
still 2e-3 off, the Richardson value at h = 1e-4 1.4e-6).
"""

from __future__ import annotations

import os

# pin every thread pool before numpy / torch load their libraries
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import bench_core  # noqa: E402

import backdoor_curves as bc  # noqa: E402

CONVENTIONS = ("sklearn", "bias_reg")
RICHARDSON_STEPS = (1e-4, 1e-5, 1e-6)


def load_data():
    """MNIST 7 vs 1, BadNets 3x3 on 10 % (seed 0): 675 clean / 75 poison / 250 backdoor test."""
    return bench_core.load_mnist()


def encode(data, y) -> np.ndarray:
    """Labels -> {0, 1} with 1 = ``data.classes[1]`` (the +1 class)."""
    return (np.asarray(y) == data.classes[1]).astype(np.int64)


def _estimator(C: float, convention: str) -> LogisticRegression:
    return LogisticRegression(
        C=C,
        solver="newton-cholesky",
        tol=1e-13,
        max_iter=1000,
        fit_intercept=convention == "sklearn",
    )


class Refit:
    """Tight scikit-learn re-fits with sample weights 1 on D and beta on P, in one convention."""

    def __init__(self, data, C: float, convention: str):
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        self.data, self.C, self.convention = data, C, convention
        self.X = np.vstack([data.X_clean, data.X_poison])
        self.y = np.concatenate([data.y_clean, data.y_poison])
        self.y_bd = np.where(data.y_test_bd == data.classes[1], 1.0, -1.0)
        self.X_bd = data.X_test_bd
        if convention == "bias_reg":
            self.X = np.hstack([self.X, np.ones((self.X.shape[0], 1))])
            self.X_bd = np.hstack([self.X_bd, np.ones((self.X_bd.shape[0], 1))])

    def fit(self, beta: float) -> LogisticRegression:
        sw = np.r_[np.ones(self.data.n_clean), np.full(self.data.n_poison, beta)]
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("error")  # a ConvergenceWarning must not pass silently
            est = _estimator(self.C, self.convention).fit(self.X, self.y, sample_weight=sw)
        if list(est.classes_) != list(self.data.classes):
            raise AssertionError("class order differs between scikit-learn and the data")
        return est

    def theta0(self) -> tuple[np.ndarray, float]:
        """(w, b) at beta = 0."""
        est = self.fit(0.0)
        if self.convention == "bias_reg":
            return est.coef_.ravel()[:-1].copy(), float(est.coef_.ravel()[-1])
        return est.coef_.ravel().copy(), float(est.intercept_[0])

    def backdoor_loss(self, beta: float) -> float:
        f = self.fit(beta).decision_function(self.X_bd)
        return float(np.mean(np.logaddexp(0.0, -self.y_bd * f)))

    def derivative(self) -> dict:
        """Richardson-extrapolated forward differences of L(V_t) at beta = 0."""
        L0 = self.backdoor_loss(0.0)
        steps = []
        for h in RICHARDSON_STEPS:
            d_h = (self.backdoor_loss(h) - L0) / h
            d_h2 = (self.backdoor_loss(h / 2) - L0) / (h / 2)
            steps.append({"h": h, "forward": d_h, "richardson": 2.0 * d_h2 - d_h})
        ref = steps[-1]["richardson"]
        return {
            "convention": self.convention,
            "L0": L0,
            "steps": steps,
            "derivative": ref,
            "error_estimate": abs(steps[-2]["richardson"] - ref),
        }


def ours(data, C: float) -> dict:
    """Our two timed members: the full ``backdoor_slope`` (beta = 0 fit included) and the
    slope alone on an already fitted model (``slope_terms``: what a peer does with theta0)."""
    learner = bc.LogisticLearner(C=C)
    fitted = learner.fit(data.X_clean, data.y_clean)

    def ours_full():
        return bc.backdoor_slope(learner, data).derivative

    def ours_given_fit():
        with threadpool_limits(limits=1, user_api="blas"):
            return fitted.slope_terms(data)["derivative"]

    return {"ours": ours_full, "ours_given_fit": ours_given_fit}


def rel(a: float, b: float) -> float:
    """|a - b| / |b| (b is the reference)."""
    return abs(a - b) / max(abs(b), 1e-300)


def write_json(path: Path, obj) -> None:
    bench_core._write_text(path, json.dumps(obj, indent=2, default=bench_core._json_default) + "\n")
