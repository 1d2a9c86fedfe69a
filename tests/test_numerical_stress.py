"""Numerical stress (issue #12, item 4): every learner and entry point on degenerate data.

One table, :data:`TABLE`, says what each (case, learner, entry point) gives; a cell it does not
list is :data:`OK`. The outcomes:

- ``OK``: finite numbers that agree with an independent oracle, the condition number reported,
  and none of the package's warnings;
- ``Warns(categories, match)``: exactly those warnings (the message of the first matching
  ``match``) and finite numbers that agree with the oracle;
- ``Raises(exception, match)``: a clear error whose message names the cause and what to do;
- grid rows: ``Row(error=..., warning=...)``, what the row's ``error`` and ``warning`` columns
  start with / contain (a failed part never drops the row).

The oracles are not the code under test:

- an optimum is *certified* here from the objective of DESIGN §3: the gradient of J vanishes
  relative to the size of its terms (smooth learners), or the SVM dual's duality gap is zero
  with feasible duals (weak duality makes that a proof of optimality). The reference optimum
  at a beta is scikit-learn re-fitted with the sample weights when it converges (it hangs on
  the SVMs with a huge C and fails on features of scale 1e8), else this package's own fit or
  exact SVM path, each only once certified;
- curves and deviation: losses, accuracies, norms and angles recomputed from those optima;
- slopes: finite differences of the reference curve (smooth: second order, with a step inside
  the Taylor radius |L'/L''|; SVMs: the secant on the first linear piece of the path);
- grid rows: a one-point ``grid_study`` against ``backdoor_slope`` and the optimum at beta = 1.

No test may hang: a watchdog (:func:`faulthandler.dump_traceback_later`) ends the process with a
traceback after :data:`WATCHDOG` seconds (pytest-timeout is not installed), and libsvm's
iteration budget is lowered to :data:`TEST_LIBSVM_MAX_ITER` so that its refusals are quick
(:func:`test_default_libsvm_budget_refuses_in_bounded_time` runs one at the default budget).
"""

from __future__ import annotations

import faulthandler
import functools
import re
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from oracle import GAMMA, learner_and_estimator, losses
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import backdoor_curves as bc
from backdoor_curves.learners import svm as svm_module
from backdoor_curves.learners.svm import (
    DegenerateKKTError,
    SVMConvergenceError,
    dual_sets,
)
from backdoor_curves.linalg import ILL_CONDITIONED, IllConditionedWarning
from backdoor_curves.measures.deviation import (
    ZERO_NORM,
    DegenerateDeviationWarning,
    parameter_deviation,
)
from backdoor_curves.paths.svm import SVMPathWarning, svm_path
from backdoor_curves.study.grid import grid_study

#: Seconds after which a hung test ends the whole run with a traceback.
WATCHDOG = 120
#: libsvm's iteration budget in these tests (the default is 1e7: seconds per refusal).
TEST_LIBSVM_MAX_ITER = 200_000
KINDS = ("logistic", "ridge", "linear_svm", "rbf_svm")
BETAS = (0.0, 0.5, 1.0)
#: The sample weight of P in the ``fit`` entry point.
FIT_BETA = 0.5
#: The package's warnings: an entry point emits exactly those its cell declares.
OWN_WARNINGS = (
    IllConditionedWarning,
    SVMPathWarning,
    DegenerateDeviationWarning,
    ConvergenceWarning,
)


@pytest.fixture(autouse=True)
def _no_hang(monkeypatch):
    monkeypatch.setattr(svm_module, "LIBSVM_MAX_ITER", TEST_LIBSVM_MAX_ITER)
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---------------------------------------------------------------------------- the cases
def _draw(rng, n, d, sep):
    y = rng.integers(0, 2, n)
    y[: min(n, 2)] = [0, 1][: min(n, 2)]
    return rng.normal(size=(n, d)) + sep * (2 * y[:, None] - 1), y


def _arrays(n_clean=40, n_poison=6, n_test=20, d=5, sep=0.9, seed=0) -> dict:
    """Two Gaussian classes; the trigger adds 2.5 to the last feature, P and V_t are flipped."""
    rng = np.random.default_rng(seed)
    Xc, yc = _draw(rng, n_clean, d, sep)
    Xp, yp = _draw(rng, n_poison, d, sep)
    Xt, yt = _draw(rng, n_test, d, sep)
    shift = np.r_[np.zeros(d - 1), 2.5]
    return dict(Xc=Xc, yc=yc, Xp=Xp + shift, yp=1 - yp, Xt=Xt, yt=yt, Xb=Xt + shift, yb=1 - yt)


def _data(a: dict) -> bc.BackdoorData:
    return bc.BackdoorData(a["Xc"], a["yc"], a["Xp"], a["yp"], a["Xt"], a["yt"], a["Xb"], a["yb"])


def _features(a: dict, f) -> dict:
    return {k: f(v) if k.startswith("X") else v for k, v in a.items()}


def _duplicate_rows(flip: bool) -> dict:
    a = _arrays()
    a["Xc"] = np.vstack([a["Xc"], a["Xc"][:10]])
    a["yc"] = np.r_[a["yc"], 1 - a["yc"][:10] if flip else a["yc"][:10]]
    return a


def _one_sided_test() -> dict:
    a = _arrays()
    a["yt"], a["yb"] = np.zeros_like(a["yt"]), np.ones_like(a["yb"])
    return a


def _constant_clean_set() -> dict:
    a = _arrays()
    a["Xc"] = np.full_like(a["Xc"], 2.0)
    a["Xc"][:, 0] = 0.0  # an all-zero column next to constant non-zero ones
    return a


#: name -> (arrays, C). Ridge takes alpha = 1 / (2 C), the RBF SVM gamma = oracle.GAMMA.
CASES = {
    "p_much_greater_n": (lambda: _arrays(n_clean=15, n_poison=4, d=300, sep=0.3), 1.0),
    "duplicated_features": (
        lambda: _features(_arrays(), lambda X: np.column_stack([X, X[:, :2]])),
        1.0,
    ),
    "zero_feature": (
        lambda: _features(_arrays(), lambda X: np.column_stack([np.zeros(len(X)), X])),
        1.0,
    ),
    "constant_feature": (
        lambda: _features(_arrays(), lambda X: np.column_stack([np.full(len(X), 3.0), X])),
        1.0,
    ),
    "clean_set_constant": (_constant_clean_set, 1.0),
    "duplicated_rows_same_label": (lambda: _duplicate_rows(flip=False), 1.0),
    "duplicated_rows_opposite_label": (lambda: _duplicate_rows(flip=True), 1.0),
    "separable_C1e6": (lambda: _arrays(sep=3.0), 1e6),
    "separable_C1e8": (lambda: _arrays(sep=3.0), 1e8),
    "feature_scale_1e-8": (lambda: _features(_arrays(), lambda X: 1e-8 * X), 1.0),
    "feature_scale_1e8": (lambda: _features(_arrays(), lambda X: 1e8 * X), 1.0),
    "single_poisoned_point": (lambda: _arrays(n_poison=1), 1.0),
    "test_points_on_one_side": (_one_sided_test, 1.0),
}

#: Cases whose features are those of another case times a factor: (unscaled arrays, factor).
RESCALED = {"feature_scale_1e8": (_arrays, 1e8)}

#: (case, kind) pairs on which scikit-learn's SVC runs for minutes (libsvm, huge effective C).
SKLEARN_HANGS = {
    ("separable_C1e6", "linear_svm"),
    ("separable_C1e8", "linear_svm"),
    ("feature_scale_1e8", "linear_svm"),
}


# ---------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Warns:
    """Finite numbers agreeing with the oracle, with exactly these package warnings."""

    categories: tuple = ()
    match: str = ""


@dataclass(frozen=True)
class Raises:
    """A clear error: this type, its message matching ``match`` (cause and remedy)."""

    exception: type
    match: str


@dataclass(frozen=True)
class Row:
    """A grid row: its ``error`` column matches ``error`` (empty: no error), its ``warning``
    column names ``warnings`` (and only package warnings among them)."""

    error: str = ""
    warnings: tuple = ()


OK = Warns()
NO_MARGIN = Raises(DegenerateKKTError, r"no margin support vector .*larger C, standardized")
ON_MARGIN = Raises(DegenerateKKTError, r"poisoning point\(s\) lie exactly on .*method='path'")
LIBSVM_STALLS = Raises(SVMConvergenceError, r"LIBSVM_MAX_ITER; C=.*use a smaller C or standardize")
ILL = Warns((IllConditionedWarning,), r"condition number .* > 1e\+12.*standardize")
PATH_REFITS = Warns((SVMPathWarning,), r"re-fitting there")
ZERO_W0 = Warns((DegenerateDeviationWarning,), r"w\(0\) is the zero vector to round-off")

#: (case, kind) -> {entry point: outcome}; entry points: fit, path, refit, slope, deviation,
#: grid. Unlisted cells are OK.
TABLE = {
    ("p_much_greater_n", "rbf_svm"): {"path": PATH_REFITS},
    ("clean_set_constant", "logistic"): {"path": ZERO_W0, "refit": ZERO_W0, "deviation": ZERO_W0,
                                         "grid": Row(warnings=(DegenerateDeviationWarning,))},
    ("clean_set_constant", "ridge"): {"path": ZERO_W0, "refit": ZERO_W0, "deviation": ZERO_W0,
                                      "grid": Row(warnings=(DegenerateDeviationWarning,))},
    ("clean_set_constant", "linear_svm"): {
        "path": Warns((SVMPathWarning, DegenerateDeviationWarning), "re-fitting there"),
        "refit": ZERO_W0, "deviation": ZERO_W0, "slope": ON_MARGIN,
        "grid": Row("slope: DegenerateKKTError", (DegenerateDeviationWarning,)),
    },
    ("clean_set_constant", "rbf_svm"): {
        "path": Warns((SVMPathWarning, DegenerateDeviationWarning), "re-fitting there"),
        "refit": ZERO_W0, "deviation": ZERO_W0, "slope": ON_MARGIN,
        "grid": Row("slope: DegenerateKKTError", (DegenerateDeviationWarning,)),
    },
    ("duplicated_rows_same_label", "linear_svm"): {
        "path": Warns((SVMPathWarning,), "singular: e.g. duplicated training points")
    },
    ("duplicated_rows_same_label", "rbf_svm"): {
        "path": Warns((SVMPathWarning,), "singular: e.g. duplicated training points")
    },
    ("separable_C1e6", "linear_svm"): {
        "fit": LIBSVM_STALLS, "refit": LIBSVM_STALLS,
        "grid": Row("fit at beta=1: SVMConvergenceError: libsvm did not reach"),
    },
    ("separable_C1e8", "linear_svm"): {
        "fit": LIBSVM_STALLS, "refit": LIBSVM_STALLS,
        "grid": Row("fit at beta=1: SVMConvergenceError: libsvm did not reach"),
    },
    ("feature_scale_1e-8", "linear_svm"): {"path": PATH_REFITS, "slope": NO_MARGIN,
                                           "grid": Row("slope: DegenerateKKTError: the SVM")},
    ("feature_scale_1e-8", "rbf_svm"): {
        # K(x, x') rounds to 1: the RKHS norms of the deviation are below their round-off
        "path": Warns((SVMPathWarning, DegenerateDeviationWarning), "re-fitting there"),
        "refit": ZERO_W0, "deviation": ZERO_W0, "slope": NO_MARGIN,
        "grid": Row("slope: DegenerateKKTError: the SVM", (DegenerateDeviationWarning,)),
    },
    ("feature_scale_1e8", "logistic"): {"slope": ILL,
                                        "grid": Row(warnings=(IllConditionedWarning,))},
    ("feature_scale_1e8", "ridge"): {"path": ILL, "slope": ILL,
                                     "grid": Row(warnings=(IllConditionedWarning,))},
    ("feature_scale_1e8", "linear_svm"): {
        "fit": LIBSVM_STALLS, "path": LIBSVM_STALLS, "refit": LIBSVM_STALLS,
        "deviation": LIBSVM_STALLS,
        # the slope is computed, loudly: the KKT matrix holds kernel values of 1e16 next to
        # labels of 1 (cond 1e18), the exact derivative is 0 and round-off leaves O(10)
        "slope": Warns((IllConditionedWarning,), r"SVM KKT matrix is ill-conditioned"),
        "grid": Row("fit at beta=1: SVMConvergenceError", (IllConditionedWarning,)),
    },
}  # fmt: skip


def outcome(case: str, kind: str, entry: str):
    return TABLE.get((case, kind), {}).get(entry, Row() if entry == "grid" else OK)


def cells(entry: str):
    return [
        pytest.param(case, kind, outcome(case, kind, entry), id=f"{case}-{kind}")
        for case in CASES
        for kind in KINDS
    ]


# ---------------------------------------------------------------------------- reference optima
@functools.cache
def case_data(case: str) -> tuple[bc.BackdoorData, float]:
    arrays, C = CASES[case]
    return _data(arrays()), C


def learner(case: str, kind: str):
    return learner_and_estimator(kind, case_data(case)[1])[0]


@dataclass(frozen=True)
class Optimum:
    """A certified optimum: decision values on V_t and V, and the deviation vector."""

    f_bd: np.ndarray
    f_cl: np.ndarray
    vector: np.ndarray
    source: str


def _stationarity(kind, C, X, y, sw, w, b) -> float:
    """max_j |dJ/dtheta_j| / (sum of the magnitudes of its terms): 0 at the optimum."""
    keep = sw > 0
    Xa, y, sw = np.column_stack([X[keep], np.ones(keep.sum())]), y[keep], sw[keep]
    f = Xa[:, :-1] @ w + b
    d1 = -y * expit(-y * f) if kind == "logistic" else 2.0 * (f - y)
    g = C * (Xa.T @ (sw * d1))
    g[:-1] += w
    scale = C * (np.abs(Xa).T @ np.abs(sw * d1))
    scale[:-1] += np.abs(w)
    return float(np.max(np.abs(g) / np.maximum(scale, 1e-300)))


def _duality_gap(K, y, cap, a, b) -> float:
    """Relative duality gap of the SVM dual at feasible duals ``a`` (inf if infeasible), beyond
    what the round-off of f allows (each hinge term is known to cap_i * 16 eps |f_i|'s terms)."""
    if a.min() < -1e-12 * cap.max() or np.any(a > cap * (1 + 1e-9)):
        return np.inf
    if abs(y @ a) > 1e-9 * max(1.0, a.sum()):
        return np.inf
    v = y * a
    Kv = K @ v
    quad = float(v @ Kv)
    hinge = cap @ np.maximum(0.0, 1.0 - y * (Kv + b))
    gap = quad + hinge - a.sum()  # primal - dual
    roundoff = cap @ (16 * np.finfo(float).eps * (np.abs(K) @ a + abs(b) + 1.0))
    return float(max(gap - roundoff, 0.0) / max(abs(quad) + hinge + a.sum(), 1e-300))


def _kernel(kind, A, B):
    """The kernel from its definition (RBF: distances from the differences, exact)."""
    if kind == "linear_svm":
        return A @ B.T
    return np.exp(-GAMMA * ((A[:, None, :] - B[None, :, :]) ** 2).sum(axis=2))


def _certify(kind, C, data, sw, w=None, b=None, alpha=None) -> float:
    y = data.encode(data.y_train)
    if kind in ("logistic", "ridge"):
        return _stationarity(kind, C, data.X_train, y, sw, w, b)
    K = _kernel(kind, data.X_train, data.X_train)
    return _duality_gap(K, y, C * sw, alpha, b)


#: Certificates accepted: stationarity of J (smooth) and relative duality gap (SVMs).
CERTIFIED = {"logistic": 1e-7, "ridge": 1e-9, "linear_svm": 1e-7, "rbf_svm": 1e-7}


def _optimum(kind, data, w=None, b=None, alpha=None, source="") -> Optimum:
    if alpha is None:
        f_bd, f_cl, vector = data.X_test_bd @ w + b, data.X_test @ w + b, w
    else:
        v = data.encode(data.y_train) * alpha
        f_bd = _kernel(kind, data.X_test_bd, data.X_train) @ v + b
        f_cl = _kernel(kind, data.X_test, data.X_train) @ v + b
        vector = data.X_train.T @ v if kind == "linear_svm" else v
    return Optimum(f_bd, f_cl, vector, source)


def _from_sklearn(case, kind, beta):
    data, C = case_data(case)
    est = clone(learner_and_estimator(kind, C)[1])
    sw = data.sample_weight(beta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(data.X_train, data.y_train, sample_weight=sw)
    if kind in ("logistic", "ridge"):
        w, b = np.ravel(est.coef_), float(np.ravel(est.intercept_)[0])
        return _certify(kind, C, data, sw, w=w, b=b), _optimum(kind, data, w, b, source="sklearn")
    keep = np.flatnonzero(sw > 0)
    alpha = np.zeros(len(sw))
    alpha[keep[est.support_]] = np.abs(est.dual_coef_[0])
    b = float(est.intercept_[0])
    return _certify(kind, C, data, sw, b=b, alpha=alpha), _optimum(
        kind, data, b=b, alpha=alpha, source="sklearn"
    )


def _from_ours(case, kind, beta):
    data, C = case_data(case)
    sw = data.sample_weight(beta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = clone(learner(case, kind)).fit(data.X_train, data.y_train, sample_weight=sw)
    if kind in ("logistic", "ridge"):
        w, b = model.coef_, model.intercept_
        return _certify(kind, C, data, sw, w=w, b=b), _optimum(kind, data, w, b, source="ours")
    alpha, b = model.alpha_, model.intercept_
    return _certify(kind, C, data, sw, b=b, alpha=alpha), _optimum(
        kind, data, b=b, alpha=alpha, source="ours"
    )


def _from_svm_path(case, kind, beta):
    """The exact SVM dual path from the clean fit (libsvm needs no convergence past beta = 0)."""
    data, C = case_data(case)
    y = data.encode(data.y_train)
    K = _kernel(kind, data.X_train, data.X_train)

    def refuse(beta):
        raise RuntimeError("the path needed a re-fit")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = clone(learner(case, kind)).fit(data.X_train, data.y_train, data.sample_weight(0))
        alphas, bs, _, _ = svm_path(
            K, y, data.n_clean, C, np.array([beta]), clean.alpha_, clean.intercept_, refuse
        )
    alpha, b = alphas[0], float(bs[0])
    return _certify(kind, C, data, data.sample_weight(beta), b=b, alpha=alpha), _optimum(
        kind, data, b=b, alpha=alpha, source="svm_path"
    )


@functools.cache
def candidates(case: str, kind: str, beta: float) -> dict:
    """Certified optima by source (sklearn, ours, svm_path): source -> (certificate, Optimum)."""
    makers = [] if (case, kind) in SKLEARN_HANGS else [_from_sklearn]
    makers += [_from_ours] + ([_from_svm_path] if kind.endswith("svm") else [])
    found = {}
    for make in makers:
        try:
            certificate, optimum = make(case, kind, beta)
        except Exception:
            continue
        if certificate <= CERTIFIED[kind]:
            found[optimum.source] = (certificate, optimum)
    return found


def reference(case: str, kind: str, beta: float) -> Optimum | None:
    """The best-certified optimum at ``beta`` (None if no candidate is certified)."""
    found = candidates(case, kind, beta)
    return min(found.values(), key=lambda c: c[0])[1] if found else None


def decision_roundoff(case: str, kind: str) -> float:
    """Round-off of a decision value: 16 eps times the size of its terms (C n max K(x, x))."""
    data, C = case_data(case)
    scale = 1.0 if kind == "rbf_svm" else float(np.max(np.sum(data.X_train**2, axis=1)))
    if kind in ("logistic", "ridge"):
        return 1e-12
    return 16 * np.finfo(float).eps * C * len(data.y_train) * scale


def reference_scores(case, kind, beta) -> dict:
    """Curve columns of the reference optimum (DESIGN §3: means of the learner's own loss)."""
    data, _ = case_data(case)
    opt = reference(case, kind, beta)
    assert opt is not None, f"no certified optimum at beta={beta}"
    y_bd, y_cl = data.encode(data.y_test_bd), data.encode(data.y_test)
    return {
        "backdoor_loss": float(np.mean(losses(kind, y_bd, opt.f_bd))),
        "clean_loss": float(np.mean(losses(kind, y_cl, opt.f_cl))),
        "clean_accuracy": float(np.mean(np.where(opt.f_cl > 0, 1.0, -1.0) == y_cl)),
        "backdoor_accuracy": float(np.mean(np.where(opt.f_bd > 0, 1.0, -1.0) == y_bd)),
    }


# ---------------------------------------------------------------------------- checking
def run(expected, call):
    """Call ``call()`` under ``expected``; return its value (None when it raised as expected)."""
    if isinstance(expected, Raises):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SVMPathWarning)  # a path may warn, then refuse
            with pytest.raises(expected.exception, match=expected.match):
                call()
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = call()
    own = [w for w in caught if issubclass(w.category, OWN_WARNINGS)]
    assert {w.category for w in own} == set(expected.categories), [str(w.message) for w in own]
    if expected.match:
        assert any(re.search(expected.match, str(w.message)) for w in own), [
            str(w.message) for w in own
        ]
    return value


def close(actual, expected, rtol, atol=0.0, what=""):
    assert np.isfinite(actual), f"{what}: {actual} is not finite"
    assert actual == pytest.approx(expected, rel=rtol, abs=atol), what


def check_scores(case, kind, values: dict, beta: float, rtol: float):
    ref = reference_scores(case, kind, beta)
    opt = reference(case, kind, beta)
    atol = max(1e-9, decision_roundoff(case, kind))
    for col in ("backdoor_loss", "clean_loss"):
        close(values[col], ref[col], rtol, atol, f"{col} at beta={beta} ({opt.source})")
    for col, f in (("clean_accuracy", opt.f_cl), ("backdoor_accuracy", opt.f_bd)):
        if np.min(np.abs(f)) > 1e-6 * max(np.max(np.abs(f)), 1e-300):  # no sign left to rounding
            assert values[col] == ref[col], f"{col} at beta={beta}"


def _tolerance(kind) -> float:
    # libsvm's own answers (when the polish does not apply) are accurate to ~1e-7 relative
    return 1e-5 if kind.endswith("svm") else 1e-6


# ---------------------------------------------------------------------------- the tests
@pytest.mark.parametrize(("case", "kind", "expected"), cells("fit"))
def test_fit(case, kind, expected):
    data, C = case_data(case)
    model = clone(learner(case, kind))
    sw = data.sample_weight(FIT_BETA)
    fitted = run(expected, lambda: model.fit(data.X_train, data.y_train, sample_weight=sw))
    if fitted is None:
        return
    if kind in ("logistic", "ridge"):
        certificate = _certify(kind, C, data, sw, w=fitted.coef_, b=fitted.intercept_)
    else:
        certificate = _certify(kind, C, data, sw, b=fitted.intercept_, alpha=fitted.alpha_)
    assert certificate <= CERTIFIED[kind], certificate
    found = candidates(case, kind, FIT_BETA)
    ref = found["sklearn"][1] if "sklearn" in found else reference(case, kind, FIT_BETA)
    f = fitted.decision_function(data.X_test)
    # margins are 1: decision values are accurate to the solvers' tolerance in those units
    scale = max(np.max(np.abs(ref.f_cl)), 1.0)
    np.testing.assert_allclose(f, ref.f_cl, rtol=0, atol=_tolerance(kind) * scale)


@pytest.mark.parametrize("method", ["path", "refit"])
@pytest.mark.parametrize("case, kind, expected", [*cells("path")])
def test_learning_curve(case, kind, expected, method):
    expected = outcome(case, kind, method)
    data, _ = case_data(case)
    curve = run(
        expected, lambda: bc.learning_curve(learner(case, kind), data, BETAS, method=method)
    )
    if curve is None:
        return
    for k, beta in enumerate(BETAS):
        check_scores(case, kind, {c: curve[c][k] for c in curve.values}, beta, _tolerance(kind))
    for col in ("rho", "backdoor_loss", "clean_loss", "clean_accuracy", "backdoor_accuracy"):
        assert np.all(np.isfinite(curve[col])), col


def _expected_deviation(case, kind):
    """rho, <w(beta), w(0)> and the round-off of rho^2 from the reference vectors."""
    data, _ = case_data(case)
    vectors = np.array([reference(case, kind, b).vector for b in BETAS])
    gram = _kernel(kind, data.X_train, data.X_train) if kind == "rbf_svm" else None
    G = np.eye(vectors.shape[1]) if gram is None else gram
    rho = np.sqrt(np.maximum(np.einsum("ij,ij->i", vectors, vectors @ G), 0.0))
    roundoff = 16 * np.finfo(float).eps * np.einsum("ij,ij->i", abs(vectors), abs(vectors) @ abs(G))
    return rho, vectors @ (G @ vectors[0]), roundoff


@pytest.mark.parametrize(("case", "kind", "expected"), cells("deviation"))
def test_parameter_deviation(case, kind, expected):
    """The deviation of a curve (method "auto": the exact path), so the path's warnings too."""
    path = outcome(case, kind, "path")
    if isinstance(expected, Warns) and isinstance(path, Warns):
        categories = tuple(dict.fromkeys(path.categories + expected.categories))
        expected = Warns(categories, expected.match or path.match)
    data, _ = case_data(case)
    curve = run(expected, lambda: bc.learning_curve(learner(case, kind), data, BETAS))
    if curve is None:
        return
    rho, cross, roundoff = _expected_deviation(case, kind)
    atol = np.sqrt(roundoff) + 1e-12 * rho.max()
    np.testing.assert_allclose(curve["rho"], rho, rtol=_tolerance(kind), atol=atol.max())
    if DegenerateDeviationWarning in expected.categories:  # w(0) = 0 to round-off: said so
        assert rho[0] <= max(ZERO_NORM * rho.max(), np.sqrt(roundoff[0]))
        assert np.all(np.isnan(curve["rho_ratio"])) and np.all(np.isnan(curve["nu"]))
        return
    np.testing.assert_allclose(curve["rho_ratio"], rho / rho[0], rtol=_tolerance(kind))
    nu = 0.5 * (1.0 - np.clip(cross / (rho * rho[0]), -1, 1))
    np.testing.assert_allclose(curve["nu"], nu, rtol=1e-4, atol=1e-7)
    assert np.all((curve["nu"] >= 0) & (curve["nu"] <= 1))


def _finite_difference(case, kind, slope) -> tuple[float, float]:
    """(finite difference of the reference curve at beta = 0, its absolute accuracy)."""
    L = functools.partial(lambda b: reference_scores(case, kind, b)["backdoor_loss"])
    L0 = L(0.0)
    if kind in ("logistic", "ridge"):
        # second-order one-sided difference with h well inside the Taylor radius |L'/L''|
        radius = abs(slope.derivative / slope.second_derivative) if slope.second_derivative else 1
        h = min(1e-5, 1e-3 * radius)
        fd = (-3.0 * L0 + 4.0 * L(h) - L(2.0 * h)) / (2.0 * h)
        return fd, 1e-11 * (1.0 + abs(L0)) / h + 1e-4 * abs(fd)
    # SVMs: the secant on the first linear piece (the curve is piecewise linear in beta)
    # (near beta = 0 the duals of P are beta C: no round-off of size C yet)
    noise = 1e-11 * (1.0 + abs(L0))
    for h in 10.0 ** -np.arange(3, 12):  # the first event comes at about 1/C
        rise, half = L(h) - L0, L(h / 2) - L0
        if abs(2.0 * half - rise) <= 1e-7 * abs(rise) + 4 * noise:
            return rise / h, 4 * noise / h + 1e-6 * abs(rise / h)
    pytest.fail("no linear first piece down to beta = 1e-11")


@pytest.mark.parametrize(("case", "kind", "expected"), cells("slope"))
def test_backdoor_slope(case, kind, expected):
    data, _ = case_data(case)
    slope = run(expected, lambda: bc.backdoor_slope(learner(case, kind), data))
    if slope is None:
        return
    assert np.isfinite(slope.derivative) and np.isfinite(slope.second_derivative)
    assert np.isfinite(slope.condition_number) and slope.condition_number >= 1.0
    assert slope.score == pytest.approx(-2 / np.pi * np.arctan(slope.derivative))
    if IllConditionedWarning in expected.categories:
        assert slope.condition_number > ILL_CONDITIONED
        if case in RESCALED and kind in ("logistic", "ridge"):
            # features scaled by s, C is the same problem as features of scale 1 and C s^2
            # (w -> s w): a well-conditioned one, whose slope the scaled one must reproduce
            unit, factor = RESCALED[case]
            equivalent = learner_and_estimator(kind, case_data(case)[1] * factor**2)[0]
            expected_slope = bc.backdoor_slope(equivalent, _data(unit()))
            assert expected_slope.condition_number < 1e3
            assert slope.derivative == pytest.approx(expected_slope.derivative, rel=1e-7)
        return  # SVM: the warning says the digits may be lost; the numbers are finite, reported
    assert slope.condition_number <= ILL_CONDITIONED
    fd, accuracy = _finite_difference(case, kind, slope)
    assert abs(slope.derivative - fd) <= accuracy, (slope.derivative, fd, accuracy)


@pytest.mark.parametrize(("case", "kind", "expected"), cells("grid"))
def test_one_point_grid(case, kind, expected):
    data, C = case_data(case)
    model = learner(case, kind)
    key, value = ("alpha", model.alpha) if kind == "ridge" else ("C", model.C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = grid_study({kind: model}, data, {"learner": [kind], key: [value]})
    row = table.iloc[0]
    if expected.error:
        assert row["error"].startswith(expected.error), row["error"]
        assert re.search(r"(use|try) a (smaller|larger) C|standardiz|method='path'", row["error"])
    else:
        assert row["error"] == "", row["error"]
    named = set(re.findall(r"(\w+Warning):", row["warning"]))
    own = {c.__name__ for c in OWN_WARNINGS}
    assert named & own == {c.__name__ for c in expected.warnings}, row["warning"]
    slope_outcome = outcome(case, kind, "slope")
    if isinstance(slope_outcome, Raises):
        assert np.isnan(row["derivative"]) and np.isnan(row["condition_number"])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            slope = bc.backdoor_slope(model, data)
        if kind.endswith("svm") and IllConditionedWarning in expected.warnings:
            # the exact derivative is 0 and what is reported is round-off (cond ~1e18): it
            # depends on the kernel's summation order (a grid's shared Gram matrix or the
            # point's own), so only the diagnosis must agree
            assert np.isfinite(row["derivative"]) and np.isfinite(slope.derivative)
            assert min(row["condition_number"], slope.condition_number) > ILL_CONDITIONED
        else:
            close(row["derivative"], slope.derivative, 1e-9, 1e-12, "derivative")
            close(row["condition_number"], slope.condition_number, 1e-9, 0, "condition_number")
    if not expected.error.startswith("fit at beta=1"):
        ref = reference_scores(case, kind, 1.0)
        close(row["backdoor_loss_1"], ref["backdoor_loss"], _tolerance(kind), 1e-9, "loss_1")
        for col in ("clean_accuracy", "backdoor_accuracy"):
            assert row[col] == ref[col] or abs(row[col] - ref[col]) <= 1.0 / len(data.y_test)
        if DegenerateDeviationWarning in expected.warnings:
            assert np.isnan(row["rho_ratio_1"]) and np.isnan(row["nu_1"])
        else:
            assert np.isfinite(row["rho_ratio_1"]) and 0 <= row["nu_1"] <= 1


def test_the_table_names_real_cells():
    entries = {"fit", "path", "refit", "slope", "deviation", "grid"}
    for (case, kind), row in TABLE.items():
        assert case in CASES and kind in KINDS and set(row) <= entries


# ---------------------------------------------------------------------------- details
def test_default_libsvm_budget_refuses_in_bounded_time(monkeypatch):
    """At the default budget a stalled libsvm is refused within seconds, not hours."""
    monkeypatch.setattr(svm_module, "LIBSVM_MAX_ITER", 10_000_000)
    assert svm_module.LIBSVM_MAX_ITER == 10_000_000
    data, C = case_data("separable_C1e6")
    start = time.perf_counter()
    with pytest.raises(SVMConvergenceError, match="within 10000000 iterations"):
        bc.LinearSVMLearner(C).fit(data.X_train, data.y_train, data.sample_weight(0.5))
    assert time.perf_counter() - start < 60


def test_huge_C_separable_svm_path_is_certified_where_libsvm_stalls():
    """The exact path continues from the clean fit event by event: every beta certified."""
    data, C = case_data("separable_C1e8")
    y = data.encode(data.y_train)
    K = data.X_train @ data.X_train.T
    clean = bc.LinearSVMLearner(C).fit(data.X_train, data.y_train, data.sample_weight(0))
    betas = np.array([0.0, 0.01, 0.5, 1.0])

    def refuse(beta):
        raise AssertionError(f"re-fit at beta={beta}")

    alphas, bs, events, _ = svm_path(
        K, y, data.n_clean, C, betas, clean.alpha_, clean.intercept_, refuse
    )
    for alpha, b, beta in zip(alphas, bs, betas, strict=True):
        assert _duality_gap(K, y, C * data.sample_weight(beta), alpha, b) <= 1e-9
    assert len(events) > 0


def test_dual_sets_do_not_depend_on_the_size_of_C():
    """A hard-margin dual is a tiny fraction of a huge C: still a margin dual."""
    margin, bound = dual_sets(np.array([0.0, 0.7, 3.0]), np.full(3, 1e8))
    assert margin.tolist() == [False, True, True] and not bound.any()
    # before, a dual counted as zero below 1e-8 of its box: 1 here, so no margin vector at all
    data, C = case_data("separable_C1e8")
    for kind in ("linear_svm", "rbf_svm"):
        slope = bc.backdoor_slope(learner("separable_C1e8", kind), data)
        assert slope.details["n_margin"] >= 2


def test_duplicated_margin_vectors_are_merged_exactly():
    """A duplicated D gives the slope of the weighted problem it equals (weights 2)."""
    arrays = _arrays()
    data = _data(arrays)
    doubled = dict(arrays, Xc=np.vstack([arrays["Xc"]] * 2), yc=np.r_[arrays["yc"], arrays["yc"]])
    for kind in ("linear_svm", "rbf_svm"):
        model, _ = learner_and_estimator(kind, 1.0)
        twice = bc.backdoor_slope(model, _data(doubled))
        assert twice.details["duplicates_merged"] == len(arrays["yc"])
        # J with every clean point twice = J with C doubled on D and P at weight beta / 2
        fitted = clone(model).set_params(C=2.0).fit(data.X_clean, data.y_clean)
        half = fitted.slope_terms(data)["derivative"] / 2.0
        assert twice.derivative == pytest.approx(half, rel=1e-9, abs=1e-12)


def test_zero_parameter_vectors_give_nan_and_a_warning():
    with pytest.warns(DegenerateDeviationWarning, match="w\\(0\\) is the zero vector"):
        out = parameter_deviation(np.array([[1.0, 2.0], [0.0, 0.0]]), np.zeros(2))
    assert np.all(np.isnan(out["rho_ratio"])) and np.all(np.isnan(out["nu"]))
    assert out["rho"].tolist() == [np.sqrt(5.0), 0.0]
    with pytest.warns(DegenerateDeviationWarning, match="1 row"):
        out = parameter_deviation(np.array([[1.0, 2.0], [1e-17, 0.0]]), np.array([1.0, 0.0]))
    assert np.isnan(out["nu"][1]) and np.isfinite(out["nu"][0])
    assert np.isfinite(out["rho_ratio"]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = parameter_deviation(np.array([[1.0, 2.0]]), np.array([2.0, 1.0]))
    assert np.isfinite(out["nu"]).all() and np.isfinite(out["rho_ratio"]).all()


def test_no_damping_anywhere():
    """No solve is regularized behind the user's back: no damping, jitter or pseudo-inverse."""
    import inspect

    from backdoor_curves import linalg
    from backdoor_curves.learners import linear
    from backdoor_curves.measures import slope
    from backdoor_curves.paths import smooth
    from backdoor_curves.paths import svm as path_svm

    for module in (linalg, linear, svm_module, smooth, path_svm, slope):
        source = inspect.getsource(module)
        assert not re.search(r"\bpinv\b|jitter|\+= *\d*\.?\d*e-\d+ *\* *np\.eye", source), module
        # the one least-squares solve (the polish of duplicated margin points) is certified
        assert source.count("lstsq") <= 1
