"""The backdoor learning slope against finite differences of scikit-learn re-fits."""

import numpy as np
import pytest
from oracle import learner_and_estimator, refit
from random_data import random_backdoor_data

from backdoor_curves import (
    BackdoorData,
    LogisticLearner,
    RidgeLearner,
    backdoor_slope,
    learning_curve,
    slope_score,
)
from backdoor_curves.learners.linear import augment, smooth_hessian
from backdoor_curves.losses import LOGISTIC

SMOOTH_CASES = [("logistic", 0.05), ("logistic", 3.0), ("ridge", 0.01), ("ridge", 2.0)]
SVM_CASES = [("linear_svm", 0.05), ("linear_svm", 1.0), ("rbf_svm", 0.5), ("rbf_svm", 5.0)]


def _sk_loss(kind, est, data, beta):
    return refit(kind, est, data, beta)["backdoor_loss"]


def _smooth_fd(kind, est, data, h):
    """Second-order one-sided difference (-3 L(0) + 4 L(h) - L(2h)) / (2h), Richardson-refined."""

    def fd(step):
        L0, L1, L2 = (_sk_loss(kind, est, data, b) for b in (0.0, step, 2 * step))
        return (-3 * L0 + 4 * L1 - L2) / (2 * step)

    return (4 * fd(h / 2) - fd(h)) / 3  # error O(h^3) instead of O(h^2)


def _first_linear_piece(learner, data):
    """The largest step h on which our exact SVM curve is still linear (inside the first piece)."""
    for h in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5):
        L = learning_curve(learner, data, betas=[0.0, h / 2, h])["backdoor_loss"]
        if abs(2 * (L[1] - L[0]) - (L[2] - L[0])) <= 1e-9 * max(abs(L[2] - L[0]), 1e-300):
            return h
    pytest.fail("no linear first piece found down to beta = 1e-5")


@pytest.mark.parametrize(("kind", "C"), SMOOTH_CASES)
@pytest.mark.parametrize("which", ["random", "mnist"])
def test_smooth_slope_matches_finite_differences_of_sklearn_refits(kind, C, which, mnist_small):
    data = random_backdoor_data(11) if which == "random" else mnist_small
    learner, est = learner_and_estimator(kind, C)
    result = backdoor_slope(learner, data)
    expected = _smooth_fd(kind, est, data, h=1e-5)
    assert result.derivative == pytest.approx(expected, rel=1e-4)
    assert result.score == pytest.approx(-2 / np.pi * np.arctan(expected), rel=1e-4)
    assert result.backdoor_loss == pytest.approx(_sk_loss(kind, est, data, 0.0), rel=1e-9)


@pytest.mark.parametrize(("kind", "C"), SVM_CASES)
@pytest.mark.parametrize("which", ["random", "mnist"])
def test_svm_slope_matches_finite_differences_inside_the_first_piece(kind, C, which, mnist_small):
    data = random_backdoor_data(12) if which == "random" else mnist_small
    learner, est = learner_and_estimator(kind, C)
    result = backdoor_slope(learner, data)
    h = _first_linear_piece(learner, data)
    expected = (_sk_loss(kind, est, data, h) - _sk_loss(kind, est, data, 0.0)) / h
    assert result.derivative == pytest.approx(expected, rel=1e-4)
    assert result.details["n_margin"] > 0


@pytest.mark.parametrize("seed", range(3))
def test_slope_on_arbitrary_arrays(seed):
    """Any BackdoorData built from arrays (string labels, random sizes) agrees with re-fitting."""
    rng = np.random.default_rng(100 + seed)
    data = random_backdoor_data(
        seed + 20, n_clean=int(rng.integers(60, 150)), n_poison=int(rng.integers(3, 20)),
        d=int(rng.integers(2, 12)), labels=("no", "yes"),
    )  # fmt: skip
    learner, est = learner_and_estimator("logistic", float(rng.uniform(0.1, 5)))
    expected = _smooth_fd("logistic", est, data, h=1e-5)
    assert backdoor_slope(learner, data).derivative == pytest.approx(expected, rel=1e-4)


def test_condition_number_and_hessian_are_from_the_clean_training_set(mnist_small):
    data = mnist_small
    result = backdoor_slope(LogisticLearner(1.0), data)
    model = LogisticLearner(1.0).fit(data.X_clean, data.y_clean)
    H0 = smooth_hessian(
        model.params_, augment(data.X_clean), data.encode(data.y_clean),
        np.ones(data.n_clean), 1.0, LOGISTIC,
    )  # fmt: skip
    np.testing.assert_allclose(model.hessian(data.X_clean, data.y_clean), H0)
    exact = np.linalg.cond(H0, 1)
    assert exact / 3 <= result.condition_number <= exact * 1.0001
    # the derivative is the closed form with that H0 (explicit solve here as a check only)
    y_p, y_t = data.encode(data.y_poison), data.encode(data.y_test_bd)
    Xp, Xt = augment(data.X_poison), augment(data.X_test_bd)
    g_p = Xp.T @ LOGISTIC.d1(y_p, Xp @ model.params_)
    g_t = Xt.T @ LOGISTIC.d1(y_t, Xt @ model.params_) / len(y_t)
    assert result.derivative == pytest.approx(-g_t @ np.linalg.solve(H0, g_p), rel=1e-10)


def test_score_transform():
    assert slope_score(0.0) == 0.0
    assert slope_score(-1.0) == pytest.approx(0.5)
    assert slope_score(1e12) == pytest.approx(-1.0)
    scores = slope_score(np.array([-1e6, -3.0, 2.0]))
    assert np.all((scores > -1) & (scores < 1))
    assert scores[0] > scores[1] > scores[2]


def test_learner_argument_is_not_modified(mnist_small):
    learner = LogisticLearner(2.0)
    backdoor_slope(learner, mnist_small)
    assert not hasattr(learner, "coef_")


def test_bad_arguments(mnist_small):
    with pytest.raises(TypeError, match="learner must be"):
        backdoor_slope("logistic", mnist_small)
    with pytest.raises(TypeError, match="data must be a BackdoorData"):
        backdoor_slope(LogisticLearner(), (mnist_small.X_clean, mnist_small.y_clean))


def test_poison_labels_outside_the_clean_classes_are_rejected():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="y_poison has labels"):
        BackdoorData(X, [0, 1] * 5, X[:2], [2, 2], X, [0, 1] * 5, X, [1, 0] * 5)


@pytest.mark.parametrize(("kind", "C"), SMOOTH_CASES)
def test_second_derivative_matches_finite_differences(kind, C, mnist_small):
    """d^2 L / dbeta^2 at 0 against one-sided differences of re-fits (second order, Richardson)."""
    learner, est = learner_and_estimator(kind, C)
    result = backdoor_slope(learner, mnist_small)

    def d2(h):
        L = [_sk_loss(kind, est, mnist_small, k * h) for k in range(4)]
        return (2 * L[0] - 5 * L[1] + 4 * L[2] - L[3]) / h**2

    # step well inside the curve's own scale |L'/L''| (ridge at C = 2 bends within 5e-3)
    h = min(2e-4, 0.02 * abs(result.derivative / result.second_derivative))
    expected = (4 * d2(h / 2) - d2(h)) / 3
    assert result.second_derivative == pytest.approx(expected, rel=1e-4)
    taylor = result.taylor([0.0, 1e-3])
    assert taylor["first"][0] == taylor["second"][0] == pytest.approx(result.backdoor_loss)
    assert taylor["second"][1] - taylor["first"][1] == pytest.approx(
        0.5e-6 * result.second_derivative
    )


def test_svm_second_derivative_is_zero_on_the_first_linear_piece(mnist_small):
    result = backdoor_slope(learner_and_estimator("rbf_svm", 0.5)[0], mnist_small)
    assert result.second_derivative == 0.0
    np.testing.assert_allclose(
        result.taylor([0.0, 0.5])["first"], result.taylor([0.0, 0.5])["second"]
    )


@pytest.mark.parametrize("make", [lambda: LogisticLearner(C=2.0), lambda: RidgeLearner(alpha=0.3)])
def test_slope_with_more_features_than_points_equals_the_primal_formula(make):
    """p > |D|: the slope solves through the dual system; it equals -g_t^T H0^{-1} g_P."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 70)) + 0.2
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=40) > 0.2, 1, 0)
    data = BackdoorData(X[:30], y[:30], X[30:34] + 1.0, 1 - y[30:34], X[34:], y[34:],
                        X[34:] + 1.0, 1 - y[34:])  # fmt: skip
    learner = make()
    slope = backdoor_slope(learner, data)
    model = make().fit(data.X_clean, data.y_clean)
    Xa_D, Xa_P, Xa_t = augment(data.X_clean), augment(data.X_poison), augment(data.X_test_bd)
    y_D, y_P, y_t = (data.encode(v) for v in (data.y_clean, data.y_poison, data.y_test_bd))
    theta, C, loss = model.params_, model.loss_weight, model.loss
    H0 = smooth_hessian(theta, Xa_D, y_D, np.ones(30), C, loss)
    g_P = C * Xa_P.T @ loss.d1(y_P, Xa_P @ theta)
    g_t = Xa_t.T @ loss.d1(y_t, Xa_t @ theta) / len(y_t)
    assert slope.derivative == pytest.approx(-g_t @ np.linalg.solve(H0, g_P), rel=1e-9)
