"""Influences of single training points against re-fits of scikit-learn with sample weights.

The oracle (tests/helpers/oracle.py) re-fits the scikit-learn estimator with one training
point's weight raised by h and differentiates the test loss numerically: a Richardson-refined
one-sided difference for the smooth learners, a one-sided difference inside the first linear
piece for the SVMs (whose path in the weight is piecewise linear).
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import learner_and_estimator, losses
from random_data import random_backdoor_data
from scipy.stats import spearmanr
from sklearn.base import clone

import backdoor_curves as bc
from backdoor_curves.explain import (
    InfluentialPoints,
    influence_of_fitted,
    influential_points,
    poisoning_contributions,
    training_influence,
)

KINDS = [("logistic", 0.5), ("ridge", 1.0), ("linear_svm", 0.01), ("rbf_svm", 0.5)]
SMOOTH = ("logistic", "ridge")


def _data(seed: int = 0) -> bc.BackdoorData:
    # 30 features: enough that a linear SVM keeps fewer margin points than parameters (with
    # d + 1 margin points its primal solution is pinned and every influence is exactly 0)
    return random_backdoor_data(seed, n_clean=90, n_poison=12, n_test=20, d=30)


def _test_loss(kind, est, X, y, sw, X_t, y_t) -> float:
    fitted = clone(est).fit(X, y, sample_weight=sw)
    y_pm = np.where(y_t == fitted.classes_[1], 1.0, -1.0)
    return float(np.mean(losses(kind, y_pm, fitted.decision_function(X_t))))


class Oracle:
    """Numerical derivatives of the re-fitted test loss in the weight of one training point."""

    def __init__(self, kind, est, data, beta, X_t, y_t):
        self.kind, self.est = kind, est
        self.X, self.y, self.sw = data.X_train, data.y_train, data.sample_weight(beta)
        self.X_t, self.y_t = X_t, y_t
        self.L0 = self.loss(None, 0.0)

    def loss(self, i, h):
        sw = self.sw.copy()
        if i is not None:
            sw[i] += h
        return _test_loss(self.kind, self.est, self.X, self.y, sw, self.X_t, self.y_t)

    def precise(self, i) -> float:
        if self.kind in SMOOTH:  # (-3 L0 + 4 L(h) - L(2h)) / 2h, Richardson-refined: O(h^3)
            h = 1e-4
            L = {s: self.loss(i, s) for s in (h / 2, h, 2 * h)}
            d_h = (-3 * self.L0 + 4 * L[h] - L[2 * h]) / (2 * h)
            d_half = (-3 * self.L0 + 4 * L[h / 2] - L[h]) / h
            return (4 * d_half - d_h) / 3
        for h in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4):  # inside the first linear piece: two steps agree
            d1 = (self.loss(i, h) - self.L0) / h
            d2 = (self.loss(i, h / 2) - self.L0) / (h / 2)
            if abs(d1 - d2) <= 1e-5 * max(abs(d1), 1e-3):
                return d2
        return d2

    def rough(self, i) -> float:
        if self.kind not in SMOOTH:  # the first linear piece may be shorter than any fixed h
            return self.precise(i)
        return (self.loss(i, 1e-6) - self.L0) / 1e-6


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize(("kind", "C"), KINDS)
def test_single_point_influences_match_refits(kind, C, beta):
    data = _data()
    learner, est = learner_and_estimator(kind, C)
    x, y = data.X_test_bd[:1], data.y_test_bd[:1]
    result = training_influence(learner, data, x, y, beta=beta)
    I = result.influence
    assert I.shape == (data.n_clean + data.n_poison,)
    oracle = Oracle(kind, est, data, beta, x, y)
    assert result.test_loss == pytest.approx(oracle.L0, rel=1e-5)
    nonzero = np.flatnonzero(I)
    assert nonzero.size >= 5
    rng = np.random.default_rng(0)
    top = np.argsort(-np.abs(I))[:4]
    some = rng.choice(np.setdiff1d(nonzero, top), 3, replace=False)
    poisoned = np.flatnonzero(data.poison_mask & (I != 0))[:1]  # at least one point of P
    for i in np.unique(np.r_[top, some, poisoned]):
        assert I[i] == pytest.approx(oracle.precise(i), rel=1e-4, abs=1e-7 * np.abs(I).max())
    # every point: ranks agree; SVMs: points with zero influence do not move the re-fit either
    rough = np.array([oracle.rough(i) for i in range(I.size)])
    assert spearmanr(I[nonzero], rough[nonzero]).statistic >= 0.99
    zero = np.flatnonzero(I == 0)
    if zero.size:
        assert kind not in SMOOTH
        assert np.abs(rough[zero]).max() <= 1e-4 * np.abs(rough).max()


@pytest.mark.parametrize(("kind", "C"), KINDS)
def test_contributions_sum_to_the_slope(kind, C, mnist_small):
    for data in (_data(1), mnist_small):
        learner, _ = learner_and_estimator(kind, C)
        result = poisoning_contributions(learner, data)
        slope = bc.backdoor_slope(learner, data).derivative
        assert result.contributions.shape == (data.n_poison,)
        assert result.derivative == pytest.approx(slope, rel=1e-10, abs=1e-12)
        assert result.contributions.sum() == pytest.approx(slope, rel=1e-10, abs=1e-12)
        assert np.all(result.contributions[~result.active] == 0)
        frame = result.to_frame()
        assert frame["share"].sum() == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(("kind", "C"), [("logistic", 0.5), ("rbf_svm", 2.0)])
def test_contributions_match_refits_on_the_backdoor_test_set(kind, C):
    """Contribution j = derivative of the mean V_t loss in poisoning point j's weight at 0."""
    data = _data(2)
    learner, est = learner_and_estimator(kind, C)
    result = poisoning_contributions(learner, data)
    oracle = Oracle(kind, est, data, 0.0, data.X_test_bd, data.y_test_bd)
    for j in np.argsort(result.contributions)[:3]:
        expected = oracle.precise(data.n_clean + j)
        assert result.contributions[j] == pytest.approx(expected, rel=1e-4)


def test_influential_points_ranks_and_reports(mnist_small):
    data = mnist_small
    learner = bc.LogisticLearner(1.0)
    x, y = data.X_test_bd[3], data.y_test_bd[3]
    points = influential_points(learner, data, x, y, k=5)
    assert isinstance(points, InfluentialPoints)
    full = points.all_influence.influence
    assert np.array_equal(points.indices, np.argsort(-np.abs(full), kind="stable")[:5])
    np.testing.assert_array_equal(points.influence, full[points.indices])
    np.testing.assert_array_equal(points.poisoned, data.poison_mask[points.indices])
    np.testing.assert_array_equal(points.X, data.X_train[points.indices])
    assert points.image_shape == data.image_shape
    assert points.fraction_poisoned == pytest.approx(points.poisoned.mean())
    helpful = influential_points(learner, data, x, y, k=3, order="helpful")
    assert np.all(helpful.influence <= np.sort(full)[2] + 0.0)
    harmful = influential_points(learner, data, x, y, k=3, order="harmful")
    assert np.all(harmful.influence >= np.sort(full)[-3])
    frame = points.to_frame()
    assert list(frame.columns) == ["rank", "index", "poisoned", "label", "influence"]
    # the same influences as a model fitted by hand at beta = 1
    model = bc.LogisticLearner(1.0).fit(data.X_train, data.y_train)
    by_hand, _ = influence_of_fitted(
        model, data.X_train, data.y_train, np.ones(len(data.y_train)), x[None], [y]
    )
    np.testing.assert_allclose(by_hand, full, rtol=1e-9, atol=1e-14)


def test_separable_svm_has_no_influential_point_and_says_so(mnist_small):
    """A hard-margin-like SVM (large C) keeps every point on or beyond the margin: up-weighting
    any of them changes nothing, so all influences are exactly 0 (with a warning)."""
    data = mnist_small
    learner = bc.LinearSVMLearner(100.0)
    with pytest.warns(UserWarning, match="non-zero influence"):
        points = influential_points(learner, data, data.X_test_bd[0], data.y_test_bd[0], k=3)
    if np.any(points.all_influence.influence != 0):  # pragma: no cover - depends on the data
        pytest.skip("this split is not separable at C=100")
    assert np.all(points.influence == 0)


@pytest.fixture(scope="module")
def mnist_7_vs_1() -> bc.BackdoorData:
    """MNIST 7 vs 1 as in the README and notebook (c): 750 digits, BadNets 3x3 on 10 %."""
    X, y, X_test, y_test = bc.load_mnist_pair((7, 1))
    return bc.poison(X, y, X_test, y_test, trigger="badnets", size=3, fraction=0.1, random_state=0)


def test_top_points_of_a_triggered_input(mnist_7_vs_1):
    """Paper 001 §3.3 (Fig. 13-14), measured exactly: which points drive a triggered input.

    For the clean model (beta = 0) the points that most lower the backdoor loss of a triggered
    test input are poisoned, for weak and strong regularization alike. For the poisoned model
    (beta = 1) the weakly regularized learner has fitted its poisoning points (their loss
    gradients vanish), so fewer of them remain among the most influential than for the strongly
    regularized one, which cannot fit them.
    """
    data = mnist_7_vs_1

    def share(learner, beta, order):
        sw = data.sample_weight(beta)
        model = clone(learner).fit(data.X_train, data.y_train, sample_weight=sw)
        fractions = []
        for i in range(8):
            x, y = data.X_test_bd[i : i + 1], data.y_test_bd[i : i + 1]
            I, _ = influence_of_fitted(model, data.X_train, data.y_train, sw, x, y)
            key = np.abs(I) if order == "abs" else -I
            top = np.argsort(-key, kind="stable")[:7]
            fractions.append(data.poison_mask[top].mean())
        return float(np.mean(fractions))

    weak, strong = bc.LogisticLearner(100.0), bc.LogisticLearner(1e-3)
    assert share(weak, 0.0, "helpful") > 0.5
    assert share(strong, 0.0, "helpful") > 0.5
    assert share(weak, 1.0, "abs") < share(strong, 1.0, "abs")


def test_bad_arguments(mnist_small):
    data, learner = mnist_small, bc.LogisticLearner()
    x, y = data.X_test_bd[0], data.y_test_bd[0]
    with pytest.raises(TypeError, match="learner"):
        influential_points("logistic", data, x, y)
    with pytest.raises(TypeError, match="data"):
        influential_points(learner, "data", x, y)
    with pytest.raises(ValueError, match="k must be"):
        influential_points(learner, data, x, y, k=0)
    with pytest.raises(ValueError, match="order"):
        influential_points(learner, data, x, y, order="largest")
    with pytest.raises(ValueError, match="beta"):
        influential_points(learner, data, x, y, beta=1.5)
    with pytest.raises(ValueError, match="x"):
        influential_points(learner, data, x[:-1], y)
    with pytest.raises(ValueError, match="x must be one point"):
        influential_points(learner, data, data.X_test_bd[:2], data.y_test_bd[:2])
    with pytest.raises(ValueError, match="y"):
        influential_points(learner, data, x, 5)
    with pytest.raises(ValueError, match="x"):
        training_influence(learner, data, np.full_like(x, np.nan), y)
