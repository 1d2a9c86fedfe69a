"""Property-based tests of the four learners' curves, slopes and SVM path events.

Problems are drawn as a seed plus sizes (|D| 16..48, |P| 2..min(10, |D| / 4), |V| = |V_t|
6..20, 2..6 features) for :func:`random_data.random_backdoor_data` (two overlapping Gaussian
classes with unit-scale features, both classes in every set, P and V_t shifted on the last
feature and relabelled), and C log-uniform in [0.1, 10] (ridge: alpha = 1 / (2 C)). The
oracle is scikit-learn re-fitted with sample weights 1 on D and beta on P, with the estimators
and settings of ``oracle.learner_and_estimator``.

Tolerances, and why:

- ridge and logistic re-fits are exact to round-off (Cholesky; Newton to tol 1e-13): curves
  agree to 1e-10 and 1e-8 relative;
- libsvm stops improving at about 1e-6 relative (README: SVC's curve is within 7.9e-7 linear
  and 1.5e-6 RBF of ours): SVM curves are compared with ``SVC`` to ten times
  :func:`svc_error`, and with this package's own re-fits (libsvm, then the exact KKT polish)
  to 1e-9 relative;
- accuracies are compared only where no decision value of the re-fit lies within
  :data:`BORDER` of 0 (otherwise the sign is a floating-point borderline);
- smooth slopes against one-sided second-order differences of re-fits at two steps: the
  measured O(h^2) term bounds the error (see :func:`_assert_within_measured_h2_error`);
- SVM slopes: the curve is piecewise linear in beta, with kinks at the path's events and where a
  test point crosses y f = 1; inside the first linear piece [0, h] the path's own difference
  (L(h) - L(0)) / h equals the KKT right-derivative to round-off, and ``SVC``'s difference to
  within its accuracy divided by h;
- SVM events: on either side of an event at least 1e-3 from its neighbours (a third of that
  gap away), the path's curve equals ``SVC``'s and ``SVC``'s duals put the moving point in
  the sets the event names.

Draws that are ill-posed for a property are skipped with ``assume`` (see :class:`Skips`); each
test counts them and fails if they are more than a quarter of the draws. Betas are 0 or at
least :data:`MIN_BETA` (``SVC`` hangs where C * beta underflows to 0; see the two tests at the
end, of a bug found here).
"""

from __future__ import annotations

import collections
import functools
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st
from oracle import GAMMA, learner_and_estimator, losses
from random_data import random_backdoor_data
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import rbf_kernel

from backdoor_curves import (
    BackdoorData,
    LinearSVMLearner,
    RBFSVMLearner,
    backdoor_slope,
    learning_curve,
)
from backdoor_curves.learners.svm import DegenerateKKTError, SVMConvergenceError
from backdoor_curves.measures.deviation import DegenerateDeviationWarning
from backdoor_curves.paths.svm import SVMPathWarning

KINDS = ("logistic", "ridge", "linear_svm", "rbf_svm")
SMOOTH, SVMS = KINDS[:2], KINDS[2:]


def svc_error(value: float) -> float:
    """Accuracy of an ``SVC`` re-fit's mean hinge loss or norm ``value``: libsvm stops
    improving at about 1e-6 relative (measured on these problems: at most 8e-6 relative, and
    1.4e-7 absolute on a loss of 1.6e-3)."""
    return 5e-6 * abs(value) + 5e-7


#: Decision values closer to 0 than this make an accuracy comparison a borderline: skipped.
BORDER = 1e-5
#: Duals within this fraction of their box from 0 (or from the box) are at 0 (or bound).
SET_TOL = 1e-8
#: An iteration cap for the oracle's ``SVC`` (these problems need at most a few thousand).
SVC_MAX_ITER = 10**7
#: Betas are 0 or at least this: ``SVC`` never returns when C * beta underflows to 0 (libsvm
#: without an iteration cap; see ``test_a_weight_whose_box_underflows_*`` below).
MIN_BETA = 1e-9
#: Step of the smooth learners' finite differences.
H = 2e-5
#: Absolute accuracy of a smooth re-fit's mean loss, per unit of loss (Newton to tol 1e-13).
REFIT_ATOL = 1e-13


def _settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None)


# ---------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """A drawn problem: the learner kind, C and the arguments of ``random_backdoor_data`` (its
    repr is what a failing example shows, enough to rebuild the data)."""

    kind: str
    C: float
    seed: int
    n_clean: int
    n_poison: int
    n_test: int
    d: int
    labels: tuple

    @functools.cached_property
    def data(self) -> BackdoorData:
        return random_backdoor_data(
            self.seed, n_clean=self.n_clean, n_poison=self.n_poison, n_test=self.n_test,
            d=self.d, labels=self.labels,
        )  # fmt: skip


@st.composite
def problems(draw, kinds=KINDS) -> Problem:
    """A random well-posed two-class problem and a learner kind (at most 20 % poisoned)."""
    n_clean = draw(st.integers(16, 48))
    return Problem(
        kind=draw(st.sampled_from(kinds)),
        C=10.0 ** draw(st.floats(-1.0, 1.0)),
        seed=draw(st.integers(0, 2**32 - 1)),
        n_clean=n_clean,
        n_poison=draw(st.integers(2, min(10, n_clean // 4))),
        n_test=draw(st.integers(6, 20)),
        d=draw(st.integers(2, 6)),
        labels=draw(st.sampled_from([("cat", "dog"), (0, 1), (-1, 1)])),
    )


def _sklearn(kind: str, estimator, data, beta: float) -> dict:
    """The re-fitted estimator at weight beta on P: losses, accuracies, smallest |f|, rho, and
    (SVMs) the dual sets of every training row (0 zero, 1 margin, 2 bound)."""
    X, y = data.X_train, data.y_train
    sw = data.sample_weight(beta)
    est = clone(estimator)
    if kind in SVMS:  # libsvm has no iteration cap by default: stop, not hang
        est.set_params(max_iter=SVC_MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            est.fit(X, y, sample_weight=sw)
        except ConvergenceWarning as exc:
            raise IllPosed(f"{type(estimator).__name__} does not converge") from exc
    pos = est.classes_[1]
    out = {"border": np.inf}
    for name, Xs, ys in [
        ("backdoor", data.X_test_bd, data.y_test_bd),
        ("clean", data.X_test, data.y_test),
    ]:
        f = est.decision_function(Xs)
        out[f"{name}_loss"] = float(np.mean(losses(kind, np.where(ys == pos, 1.0, -1.0), f)))
        out[f"{name}_accuracy"] = float(np.mean(est.predict(Xs) == ys))
        out["border"] = min(out["border"], float(np.abs(f).min()))
    if kind == "rbf_svm":  # dual coefficients over D u P (support_ indexes positive weights)
        coef = np.zeros(len(y))
        coef[np.flatnonzero(sw > 0)[est.support_]] = est.dual_coef_[0]
        out["rho"] = float(np.sqrt(coef @ rbf_kernel(X, X, gamma=GAMMA) @ coef))
    else:
        out["rho"] = float(np.linalg.norm(est.coef_))
    if kind in SVMS:
        sets = np.zeros(len(y), dtype=int)
        support = np.flatnonzero(sw > 0)[est.support_]
        alpha, box = np.abs(est.dual_coef_[0]), estimator.C * sw[support]
        # libsvm leaves round-off (e.g. 1e-16) on a dual that has reached 0: relative to the box
        sets[support] = np.where(
            alpha >= box * (1 - SET_TOL), 2, np.where(alpha > SET_TOL * box, 1, 0)
        )
        out["sets"] = sets
    return out


def _path(learner, data, betas, method="auto"):
    """The learning curve. Warnings ignored: an SVM path may re-fit a degenerate point, and the
    optimum may be w = 0 (a constant classifier: every point of one class on the margin, when
    the poison cancels the clean signal), where nu is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SVMPathWarning)
        warnings.simplefilter("ignore", DegenerateDeviationWarning)
        try:
            return learning_curve(learner, data, betas, method=method)
        except SVMConvergenceError as exc:
            raise IllPosed("libsvm does not converge") from exc


def _curve(learner, data, betas, method="auto"):
    """The learning curve as a table."""
    return _path(learner, data, betas, method).to_frame()


class IllPosed(Exception):
    """The draw is ill-posed for the property (the message says why)."""


class Skips:
    """Counts the draws of a property and those skipped as ill-posed.

    Ill-posed: no margin support vector at beta = 0 (the SVM slope is undefined), a first
    linear piece shorter than 1e-6, no event far enough from its neighbours to be told apart
    by re-fits, or an SVM dual so degenerate (e.g. the optimum w = 0, every point of one class
    on the margin) that libsvm does not converge in 1e7 iterations.
    """

    def __init__(self):
        self.run = self.skipped = 0
        self.why: collections.Counter = collections.Counter()

    def __call__(self, prop):
        """Count the draws of ``prop`` (below ``@given``); an IllPosed draw is skipped."""

        @functools.wraps(prop)
        def counted(*args, **kwargs):
            self.run += 1
            try:
                prop(*args, **kwargs)
            except IllPosed as exc:
                self.skip_if(True, str(exc))

        return counted

    def skip_if(self, condition: bool, why: str) -> None:
        if condition:
            self.skipped += 1
            self.why[why] += 1
            event(f"skipped: {why}")
        assume(not condition)

    def check(self) -> None:
        """Fewer than a quarter of the draws were skipped."""
        assert self.run > 0 and self.skipped <= self.run / 4, (self.skipped, self.run, self.why)


# ---------------------------------------------------------------------------- curves
_CURVES = Skips()


@_settings(80)
@given(
    problem=problems(),
    betas=st.lists(st.just(0.0) | st.floats(MIN_BETA, 1.0), min_size=1, max_size=3, unique=True),
)
# found by this property: between two events no margin dual is left (the intercept is not
# unique), except the one that joined the margin at 0.8947 with a dual of 0 plus round-off
# (5.6e-17); that dual must count as 0, so that the path re-fits (libsvm's intercept)
@example(
    problem=Problem("rbf_svm", 1.0, seed=6, n_clean=31, n_poison=6, n_test=6, d=2, labels=(0, 1)),
    betas=[0.9],
)
@_CURVES
def _curve_equals_refits(problem, betas):
    kind, C, data = problem.kind, problem.C, problem.data
    learner, estimator = learner_and_estimator(kind, C)
    betas = np.array(betas)
    frame = _curve(learner, data, betas)  # method="auto": the exact path
    np.testing.assert_array_equal(frame["beta"], betas)
    rtol = {"logistic": 1e-8, "ridge": 1e-10}.get(kind)
    compared = 0
    for k, beta in enumerate(betas):
        expected = _sklearn(kind, estimator, data, beta)
        for col in ("backdoor_loss", "clean_loss", "rho"):
            tol = rtol * abs(expected[col]) + 1e-12 if rtol else 10 * svc_error(expected[col])
            assert abs(frame[col][k] - expected[col]) <= tol, (col, beta, expected[col])
        if expected["border"] > BORDER:
            compared += 1
            for col in ("clean_accuracy", "backdoor_accuracy"):
                assert frame[col][k] == expected[col], (col, beta)
        if frame["rho"][k] > 1e-6 * frame["rho"].max():  # else w = 0: no direction, nu NaN
            assert 0.0 <= frame["nu"][k] <= 1.0
    event(f"accuracies compared at {compared} of {len(betas)} betas")
    if kind in SVMS:  # and the package's own re-fits (libsvm + exact KKT polish), tightly
        ours = _curve(learner, data, betas, method="refit")
        for col in ("backdoor_loss", "clean_loss", "rho", "rho_ratio", "nu"):
            np.testing.assert_allclose(frame[col], ours[col], rtol=1e-9, atol=1e-12, err_msg=col)


def test_curves_equal_sklearn_refits_at_drawn_betas():
    _curve_equals_refits()
    _CURVES.check()


# ---------------------------------------------------------------------------- smooth slopes
_SMOOTH = Skips()


@_settings(60)
@given(problem=problems(kinds=SMOOTH))
@_SMOOTH
def _smooth_slope_equals_finite_differences(problem):
    kind, C, data = problem.kind, problem.C, problem.data
    learner, estimator = learner_and_estimator(kind, C)
    slope = backdoor_slope(learner, data)
    d = slope.derivative
    betas = (0.0, H / 2, H, 2 * H)
    L = [_sklearn(kind, estimator, data, b)["backdoor_loss"] for b in betas]
    _assert_within_measured_h2_error(d, L)
    assert slope.backdoor_loss == pytest.approx(L[0], rel=1e-9)
    assert -1 < slope.score < 1 and np.sign(slope.score) == -np.sign(d)
    # the curve from the exact path has the same derivative at 0
    _assert_within_measured_h2_error(d, _curve(learner, data, betas)["backdoor_loss"])


def _assert_within_measured_h2_error(d: float, L) -> None:
    """``d`` against the one-sided differences D(s) = (-3 L(0) + 4 L(s) - L(2s)) / (2s) of
    ``L`` at betas (0, H/2, H, 2H), s = H and H/2.

    D(s) = L'(0) - (s^2 / 3) L'''(0) + O(s^3): the error of D(H/2) is a third of the measured
    D(H) - D(H/2), so ``|d - D(H/2)| <= |D(H) - D(H/2)|`` holds with a factor 3 to spare (and
    fails by orders of magnitude for a wrong slope), plus the re-fits' own error amplified by
    the stencil, 8 REFIT_ATOL (1 + L(0)) / H. Capped at the README's 1e-4 relative.
    """
    L0, Lq, Lh, L2 = L
    coarse = (-3 * L0 + 4 * Lh - L2) / (2 * H)
    fine = (-3 * L0 + 4 * Lq - Lh) / H
    noise = 8 * REFIT_ATOL * (1 + abs(L0)) / H
    error = abs(d - fine)
    assert error <= abs(coarse - fine) + 1e-9 * abs(d) + noise, (d, fine, coarse)
    assert error <= 1e-4 * abs(d) + noise, (d, fine)


def test_smooth_slopes_equal_finite_differences_of_refits():
    _smooth_slope_equals_finite_differences()
    _SMOOTH.check()


# ---------------------------------------------------------------------------- SVM slopes
_SVM_SLOPE = Skips()


@_settings(60)
@given(problem=problems(kinds=SVMS))
@_SVM_SLOPE
def _svm_slope_equals_the_first_linear_piece(problem):
    kind, C, data = problem.kind, problem.C, problem.data
    learner, estimator = learner_and_estimator(kind, C)
    try:
        slope = backdoor_slope(learner, data)
    except DegenerateKKTError:  # no margin support vector at beta = 0: no slope
        slope = None
    _SVM_SLOPE.skip_if(slope is None, "no margin support vector")
    d = slope.derivative
    events = _path(learner, data, [0.1], method="path").events["beta"].to_numpy()
    # the first piece: up to half the first event, shrunk until no test point's kink is in it
    h = events[0] / 2 if events.size else 0.05
    for _ in range(8):
        L0, Lmid, Lh = _curve(learner, data, [0.0, h / 2, h])["backdoor_loss"]
        if abs(Lmid - (L0 + Lh) / 2) <= 1e-9 * (1 + L0):
            break
        h /= 4
    else:
        h = 0.0
    _SVM_SLOPE.skip_if(h < 1e-6, "first linear piece shorter than 1e-6")
    # the path's own one-sided difference: both exact, so to round-off
    assert d == pytest.approx((Lh - L0) / h, rel=1e-7, abs=1e-9 * (1 + L0) / h)
    # SVC's difference: within SVC's accuracy, divided by h
    S0, Sh = (_sklearn(kind, estimator, data, b)["backdoor_loss"] for b in (0.0, h))
    assert abs(d - (Sh - S0) / h) <= 1e-6 * abs(d) + 2 * (svc_error(S0) + svc_error(Sh)) / h
    assert slope.second_derivative == 0.0
    assert slope.details["n_margin"] > 0


def test_svm_slopes_equal_the_first_linear_piece():
    _svm_slope_equals_the_first_linear_piece()
    _SVM_SLOPE.check()


# ---------------------------------------------------------------------------- SVM events
_EVENTS = Skips()
_SET_NAMES = {0: "zero", 1: "margin", 2: "bound"}


@_settings(40)
@given(problem=problems(kinds=SVMS), pick=st.randoms(use_true_random=False))
@_EVENTS
def _svm_events_agree_with_refits_on_either_side(problem, pick):
    kind, C, data = problem.kind, problem.C, problem.data
    learner, estimator = learner_and_estimator(kind, C)
    events = _path(learner, data, [1.0], method="path").events
    beta = events["beta"].to_numpy()
    edges = np.r_[0.0, beta, 1.0]
    gaps = np.minimum(np.diff(edges)[:-1], np.diff(edges)[1:])  # to the neighbours, per event
    separated = np.flatnonzero(gaps >= 1e-3)  # well apart: a re-fit can tell the two sides
    _EVENTS.skip_if(separated.size == 0, "no event 1e-3 away from its neighbours")
    chosen = sorted(pick.sample(separated.tolist(), min(3, separated.size)))
    sides = np.array([[beta[k] - gaps[k] / 3, beta[k] + gaps[k] / 3] for k in chosen])
    frame = _curve(learner, data, sides.ravel())
    for j, k in enumerate(chosen):
        row = events.iloc[k]
        refits = [_sklearn(kind, estimator, data, side) for side in sides[j]]
        for s, expected in enumerate(refits):
            for col in ("backdoor_loss", "clean_loss"):
                got = frame[col][2 * j + s]
                assert abs(got - expected[col]) <= 10 * svc_error(expected[col]), col
        # the point that moves: in the old set just before the event, the new one after, where
        # the duals are unique on both sides (else the sets are one optimum's among many)
        if all(_unique_duals(r, kind, data.n_features) for r in refits):
            states = [_SET_NAMES[int(r["sets"][int(row["index"])])] for r in refits]
            assert states == [row["from"], row["to"]], (row.to_dict(), sides[j], states)
            _STATES["checked"] += 1
        else:
            _STATES["not unique"] += 1
            event("an event between optima with duals that are not unique")
    event(f"{len(chosen)} events checked")


#: Events whose point's sets were checked, and those skipped (duals not unique).
_STATES = {"checked": 0, "not unique": 0}


def _unique_duals(refit: dict, kind: str, n_features: int) -> bool:
    """Whether the SVM's duals (and so its sets) are unique at a re-fit's optimum: some margin
    dual (else the intercept is not unique, and the path re-fits there) and, for the linear
    kernel, w != 0 and at most n_features + 1 margin duals (more margin points than that are
    affinely dependent, and at w = 0 every point of a class is on the margin: the duals are
    not determined)."""
    n_margin = int(np.sum(refit["sets"] == 1))
    if kind == "linear_svm":
        return 0 < n_margin <= n_features + 1 and refit["rho"] > 1e-6
    return n_margin > 0


def test_svm_path_events_agree_with_refits_on_either_side():
    _svm_events_agree_with_refits_on_either_side()
    _EVENTS.check()
    assert _STATES["checked"] >= 3 * _STATES["not unique"], _STATES


# ---------------------------------------------------------------------------- found here
# A weight so small that its box C * s underflows to 0 (C = 0.1, s = 5e-324): scikit-learn's
# SVC never returns (libsvm loops without an iteration cap, hence MIN_BETA), and this
# package's SVMs used to keep the row in libsvm's problem (its weight is positive) although
# its dual must be 0: the linear SVM raised SVMConvergenceError after LIBSVM_MAX_ITER
# iterations, the RBF SVM kept libsvm's unpolished answer (the zero set's check failed on a
# box-0 row with y f < 1). A box of 0 is no weight: the fit is the fit at beta = 0.


def test_a_weight_whose_box_underflows_is_no_weight_linear():
    data = random_backdoor_data(0, n_clean=16, n_poison=2, n_test=6, d=2, labels=(-1, 1))
    beta = 5e-324
    assert 0.1 * beta == 0.0
    fitted = LinearSVMLearner(0.1).fit(data.X_train, data.y_train, data.sample_weight(beta))
    clean = LinearSVMLearner(0.1).fit(data.X_train, data.y_train, data.sample_weight(0.0))
    np.testing.assert_allclose(fitted.coef_, clean.coef_, rtol=1e-12)
    assert fitted.intercept_ == pytest.approx(clean.intercept_, rel=1e-12, abs=1e-15)


def test_a_weight_whose_box_underflows_is_no_weight_rbf():
    data = random_backdoor_data(4294967294, n_clean=34, n_poison=9, n_test=9, d=4, labels=(-1, 1))
    C, beta = 0.15656387420026566, 5e-324
    assert C * beta == 0.0
    learner = RBFSVMLearner(C, gamma=GAMMA)
    clean = learner.fit(data.X_train, data.y_train, data.sample_weight(0.0))
    assert clean.polished_
    f0 = clean.decision_function(data.X_test)
    fitted = RBFSVMLearner(C, gamma=GAMMA).fit(data.X_train, data.y_train, data.sample_weight(beta))
    assert fitted.polished_
    np.testing.assert_allclose(fitted.decision_function(data.X_test), f0, rtol=1e-12, atol=1e-15)
