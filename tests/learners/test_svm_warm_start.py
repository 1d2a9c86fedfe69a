"""Warm starts of the SVM learners (active-set iteration from a neighbour's margin and bound
sets): the same certified solution as a cold libsvm fit, bit for bit on the same sets."""

from __future__ import annotations

import numpy as np
import pytest

import backdoor_curves as bc
from backdoor_curves.learners.svm import active_set_dual, dual_sets

LEARNERS = [bc.LinearSVMLearner(), bc.RBFSVMLearner(gamma=0.05)]


@pytest.mark.parametrize("template", LEARNERS, ids=lambda est: type(est).__name__)
def test_warm_start_along_C_equals_cold_fits(mnist_small, template):
    X, y = mnist_small.X_train, mnist_small.y_train
    sw = mnist_small.sample_weight(1.0)
    warm = type(template)(**{**template.get_params(), "warm_start": True})
    settled = 0
    for C in np.geomspace(0.05, 50.0, 7):
        warm.set_params(C=C).fit(X, y, sample_weight=sw)
        cold = type(template)(**{**template.get_params(), "C": C}).fit(X, y, sample_weight=sw)
        assert cold.n_iter_ == 0
        settled += warm.n_iter_ > 0
        np.testing.assert_array_equal(warm.margin_, cold.margin_)
        np.testing.assert_array_equal(warm.bound_, cold.bound_)
        if cold.polished_:  # both solved the same KKT equalities on the same sets
            np.testing.assert_array_equal(warm.alpha_, cold.alpha_)
            assert warm.intercept_ == cold.intercept_
        else:
            np.testing.assert_allclose(warm.alpha_, cold.alpha_, rtol=1e-6, atol=1e-9 * C)
        np.testing.assert_array_equal(
            warm.decision_function(mnist_small.X_test) > 0,
            cold.decision_function(mnist_small.X_test) > 0,
        )
    assert settled >= 5  # the warm start did the work, not libsvm


def test_clean_fit_warm_starts_the_poisoned_fit(mnist_small):
    """D comes first in D + P: the clean fit's sets are a guess for the poisoned fit."""
    model = bc.RBFSVMLearner(C=2.0, gamma=0.05, warm_start=True)
    model.fit(mnist_small.X_clean, mnist_small.y_clean)
    model.fit(mnist_small.X_train, mnist_small.y_train, sample_weight=mnist_small.sample_weight(1))
    cold = bc.RBFSVMLearner(C=2.0, gamma=0.05).fit(
        mnist_small.X_train, mnist_small.y_train, sample_weight=mnist_small.sample_weight(1)
    )
    assert model.n_iter_ > 0
    np.testing.assert_array_equal(model.alpha_, cold.alpha_)


def test_a_wrong_guess_costs_time_not_accuracy(mnist_small, tiny):
    model = bc.LinearSVMLearner(C=1.0, warm_start=True).fit(tiny.X_train, tiny.y_train)
    model.fit(mnist_small.X_train, mnist_small.y_train)  # other data, rows unrelated
    cold = bc.LinearSVMLearner(C=1.0).fit(mnist_small.X_train, mnist_small.y_train)
    np.testing.assert_allclose(model.alpha_, cold.alpha_, rtol=1e-9, atol=1e-12)


def test_active_set_dual_gives_up_without_a_margin_set():
    K = np.eye(4)
    y = np.array([1.0, 1.0, -1.0, -1.0])
    cap = np.full(4, 2.0)  # the optimum: every dual 1, strictly inside its box, b = 0
    none = np.zeros(4, bool)
    assert active_set_dual(K, y, cap, none, none) is None
    solved = active_set_dual(K, y, cap, ~none, none)
    assert solved is not None
    alpha, b, _ = solved
    margin, bound = dual_sets(alpha, cap)
    f = K @ (y * alpha) + b
    assert np.all(np.abs(y[margin] * f[margin] - 1) < 1e-12)
    assert abs(y @ alpha) < 1e-12
    np.testing.assert_array_equal(alpha, np.ones(4))
    assert b == 0.0
    # from a wrong guess (everything at the bound) it moves the duals back to the margin
    assert active_set_dual(K, y, cap, none, ~none) is None  # no margin set to solve on
    solved = active_set_dual(K, y, cap, np.array([True, False, True, False]), none)
    np.testing.assert_allclose(solved[0], np.ones(4), atol=1e-15)
