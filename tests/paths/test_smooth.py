"""Exact paths (closed form for ridge, predictor-corrector for logistic) against re-fits."""

import numpy as np
import pytest
from random_data import random_backdoor_data
from sklearn.linear_model import LogisticRegression

from backdoor_curves import (
    LinearSVMLearner,
    LogisticLearner,
    RidgeLearner,
    default_betas,
    learning_curve,
)
from backdoor_curves.learners.linear import augment, hessian_solver, newton_fit, smooth_hessian
from backdoor_curves.losses import LOGISTIC, SQUARED
from backdoor_curves.paths.smooth import _extrapolate, logistic_path, ridge_path

DENSE = np.r_[0.0, np.geomspace(1e-4, 1.0, 200)]


@pytest.mark.parametrize(
    "learner",
    [LogisticLearner(0.01), LogisticLearner(1.0), LogisticLearner(100.0),
     RidgeLearner(500.0), RidgeLearner(0.5), RidgeLearner(1e-3)],
    ids=lambda m: repr(m),
)  # fmt: skip
@pytest.mark.parametrize("which", ["random", "mnist"])
def test_path_equals_refit(learner, which, mnist_small):
    data = random_backdoor_data(7) if which == "random" else mnist_small
    betas = np.r_[default_betas(), 0.5, 1e-3]  # both ends, unsorted extras
    path = learning_curve(learner, data, betas, method="path").to_frame()
    refit = learning_curve(learner, data, betas, method="refit").to_frame()
    for col in ("backdoor_loss", "clean_loss", "rho", "rho_ratio"):
        np.testing.assert_allclose(path[col], refit[col], rtol=1e-6)
    np.testing.assert_allclose(path["nu"], refit["nu"], rtol=1e-6, atol=1e-12)
    for col in ("clean_accuracy", "backdoor_accuracy"):
        np.testing.assert_array_equal(path[col], refit[col])


def test_ridge_path_is_the_closed_form_at_every_beta():
    data = random_backdoor_data(8)
    Xa_D, Xa_P = augment(data.X_clean), augment(data.X_poison)
    y_D, y_P = data.encode(data.y_clean), data.encode(data.y_poison)
    C = 0.7
    thetas = ridge_path(Xa_D, y_D, Xa_P, y_P, C, DENSE)
    for k in (0, 1, 57, 200):
        sw = np.r_[np.ones(len(y_D)), np.full(len(y_P), DENSE[k])]
        Xa, y = np.vstack([Xa_D, Xa_P]), np.r_[y_D, y_P]
        H = 2 * C * Xa.T @ (Xa * sw[:, None]) + np.diag(np.r_[np.ones(Xa.shape[1] - 1), 0.0])
        np.testing.assert_allclose(
            thetas[k], np.linalg.solve(H, 2 * C * Xa.T @ (sw * y)), rtol=1e-9
        )
        theta, _ = newton_fit(Xa, y, sw, C, SQUARED)
        np.testing.assert_allclose(thetas[k], theta, rtol=1e-9, atol=1e-12)


def test_logistic_path_corrects_every_point_and_predicts_well(mnist_small):
    data = mnist_small
    Xa_D, Xa_P = augment(data.X_clean), augment(data.X_poison)
    y_D, y_P = data.encode(data.y_clean), data.encode(data.y_poison)
    thetas, n_iter = logistic_path(Xa_D, y_D, Xa_P, y_P, 5.0, DENSE)
    assert thetas.shape == (201, Xa_D.shape[1])
    refit = LogisticLearner(5.0).fit(data.X_train, data.y_train, data.sample_weight(DENSE[120]))
    np.testing.assert_allclose(thetas[120], refit.params_, rtol=1e-8, atol=1e-10)
    # the tangent d theta/d beta = -H^{-1} grad [C sum_P l] predicts the next point far better
    # than the previous point does, which is what makes few corrector steps enough
    Xa, y = np.vstack([Xa_D, Xa_P]), np.r_[y_D, y_P]
    for k in (50, 120, 200):
        theta, step = thetas[k - 1], DENSE[k] - DENSE[k - 1]
        H = smooth_hessian(theta, Xa, y, data.sample_weight(DENSE[k - 1]), 5.0, LOGISTIC)
        grad_P = 5.0 * Xa_P.T @ LOGISTIC.d1(y_P, Xa_P @ theta)
        predicted = theta - step * np.linalg.solve(H, grad_P)
        error = np.linalg.norm(predicted - thetas[k])
        assert error <= 0.05 * np.linalg.norm(theta - thetas[k])
    assert np.all(n_iter[1:] >= 1)


def test_dense_curve(mnist_small):
    curve = learning_curve(LogisticLearner(10.0), mnist_small, DENSE)
    loss = curve["backdoor_loss"]
    assert loss.shape == (201,) and np.all(np.isfinite(loss))
    assert loss[-1] < loss[0]


def test_method_choice_is_checked(mnist_small):
    with pytest.raises(ValueError, match="method must be one of"):
        learning_curve(LogisticLearner(), mnist_small, method="fast")
    with pytest.raises(TypeError, match="method must be one of"):
        learning_curve(LogisticLearner(), mnist_small, method=None)
    # every learner has an exact path, so "auto" never re-fits (the SVM path reports events)
    curve = learning_curve(LinearSVMLearner(0.1), mnist_small, [0.0, 1.0], method="auto")
    assert curve["backdoor_loss"].shape == (2,) and len(curve.events) > 0


@pytest.mark.parametrize("C", [1.0, 100.0, 1e4])
def test_logistic_path_survives_a_single_long_jump(C, mnist_small):
    """beta: 0 -> 1 in one step at weak regularization (the tangent overshoots wildly there)."""
    path = learning_curve(LogisticLearner(C), mnist_small, [1.0], method="path").to_frame()
    refit = learning_curve(LogisticLearner(C), mnist_small, [1.0], method="refit").to_frame()
    for col in ("backdoor_loss", "clean_loss", "rho"):
        np.testing.assert_allclose(path[col], refit[col], rtol=1e-6)
    assert path["clean_accuracy"].iloc[0] == refit["clean_accuracy"].iloc[0] > 0.9


@pytest.mark.parametrize("n_features", [12, 60])  # primal (p <= |D|) and dual (p > |D|) H0
def test_ridge_path_closed_form_in_primal_and_dual(n_features):
    rng = np.random.default_rng(n_features)
    n_D, n_P, C = 30, 6, 0.8
    X = rng.normal(size=(n_D + n_P, n_features)) + 0.5
    X[:, 3] = 0.0  # a column that is zero everywhere: w_3 = 0
    X[:n_D, 5] = 0.0  # zero in D only (like a trigger pixel): still estimated from P
    y = rng.choice([-1.0, 1.0], n_D + n_P)
    Xa = augment(X)
    H0 = 2 * C * Xa[:n_D].T @ Xa[:n_D] + np.diag(np.r_[np.ones(n_features), 0.0])
    R = rng.normal(size=(n_features + 1, 3))
    active = Xa.any(axis=0)
    np.testing.assert_allclose(
        hessian_solver(Xa[:n_D][:, active], np.full(n_D, 2 * C)).solve(R[active]),
        np.linalg.solve(H0[np.ix_(active, active)], R[active]),
        rtol=1e-9,
        atol=1e-12,
    )
    betas = np.array([0.0, 0.3, 1.0, 1e-3])
    thetas = ridge_path(Xa[:n_D], y[:n_D], Xa[n_D:], y[n_D:], C, betas)
    for k, beta in enumerate(betas):
        sw = np.r_[np.ones(n_D), np.full(n_P, beta)]
        H = 2 * C * Xa.T @ (Xa * sw[:, None]) + np.diag(np.r_[np.ones(n_features), 0.0])
        np.testing.assert_allclose(
            thetas[k], np.linalg.solve(H, 2 * C * Xa.T @ (sw * y)), rtol=1e-9, atol=1e-12
        )
    assert np.all(thetas[:, 3] == 0.0) and thetas[0, 5] == pytest.approx(0.0, abs=1e-14)


def test_extrapolating_predictor_is_exact_on_polynomials():
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(4, 3))  # a cubic in beta, vector-valued
    betas = [0.01, 0.02, 0.05, 0.1]
    history = [(b, coef.T @ b ** np.arange(4)) for b in betas]
    np.testing.assert_allclose(_extrapolate(history, 0.2), coef.T @ 0.2 ** np.arange(4))


def test_logistic_path_with_more_features_than_samples():
    """p > |D| + |P|: Newton solves through the dual system; the optima are those of re-fits."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(36, 90)) + 0.2
    y = np.where(X[:, 0] > 0.2, 1.0, -1.0)
    Xa = augment(X)
    betas = np.r_[0.0, 0.05, 0.5, 1.0]
    thetas, _ = logistic_path(Xa[:30], y[:30], Xa[30:], -y[30:], 2.0, betas)
    for k, beta in enumerate(betas):
        sw = np.r_[np.ones(30), np.full(6, beta)]
        y_all = np.r_[y[:30], -y[30:]]
        expected = LogisticRegression(
            C=2.0, solver="newton-cholesky", tol=1e-13, max_iter=1000
        ).fit(X[sw > 0], y_all[sw > 0], sample_weight=sw[sw > 0])
        np.testing.assert_allclose(
            thetas[k], np.r_[expected.coef_[0], expected.intercept_], rtol=1e-7, atol=1e-9
        )
