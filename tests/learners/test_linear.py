"""Logistic and ridge learners against scikit-learn, closed forms and finite differences."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, RidgeClassifier

from backdoor_curves import LogisticLearner, RidgeLearner
from backdoor_curves.learners.linear import (
    SINGLE_PRECISION_MAX_COND,
    DualHessianSolver,
    _factorize_hessian,
    augment,
    newton_fit,
    smooth_gradient,
    smooth_hessian,
    smooth_objective,
)
from backdoor_curves.losses import LOGISTIC, SQUARED


def _problem(seed, n=150, d=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.where(X @ rng.normal(size=d) + 0.7 * rng.normal(size=n) > 0, "b", "a")
    sw = rng.uniform(0.0, 3.0, n)
    sw[rng.choice(n, 15, replace=False)] = 0.0
    return X, y, sw


def _sk_logistic(C, X, y, sw):
    return LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(
        X, y, sample_weight=sw
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("C", [1e-3, 1.0, 300.0])
def test_logistic_matches_sklearn_with_sample_weights(seed, C):
    X, y, sw = _problem(seed)
    ours = LogisticLearner(C).fit(X, y, sw)
    ref = _sk_logistic(C, X, y, sw)
    np.testing.assert_allclose(ours.coef_, ref.coef_[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.regularization == pytest.approx(1 / C)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [1e-3, 1.0, 500.0])
def test_ridge_matches_sklearn_closed_form(seed, alpha):
    X, y, sw = _problem(seed)
    ours = RidgeLearner(alpha).fit(X, y, sw)
    ref = RidgeClassifier(alpha=alpha, solver="cholesky").fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, np.ravel(ref.coef_), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, np.ravel(ref.intercept_)[0], rtol=1e-8, atol=1e-12)
    # the closed form itself: [X 1]^T S [X 1] theta + alpha [w, 0] = [X 1]^T S y
    Xa, ypm = augment(X), np.where(y == "b", 1.0, -1.0)
    A = Xa.T @ (Xa * sw[:, None])
    A[np.arange(6), np.arange(6)] += alpha
    np.testing.assert_allclose(np.linalg.solve(A, Xa.T @ (sw * ypm)), ours.params_, rtol=1e-9)
    assert ours.regularization == pytest.approx(2 * alpha)


@pytest.mark.parametrize("make", [lambda: LogisticLearner(2.0), lambda: RidgeLearner(0.3)])
def test_sample_weight_equivalence(make):
    """An integer weight equals repeating the sample; a zero weight equals removing it."""
    X, y, _ = _problem(5, n=60)
    w = np.ones(60)
    w[:5], w[5:10] = 2.0, 0.0
    weighted = make().fit(X, y, w)
    repeated = make().fit(np.vstack([X[10:], X[:5], X[:5]]), np.r_[y[10:], y[:5], y[:5]])
    np.testing.assert_allclose(weighted.params_, repeated.params_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss", [LOGISTIC, SQUARED], ids=["logistic", "squared"])
def test_gradient_and_hessian_against_finite_differences(loss):
    X, y, sw = _problem(7, n=40, d=4)
    Xa, ypm = augment(X), np.where(y == "b", 1.0, -1.0)
    theta = np.random.default_rng(0).normal(size=5) * 0.3
    C, eps = 1.7, 1e-6
    grad = smooth_gradient(theta, Xa, ypm, sw, C, loss)
    hess = smooth_hessian(theta, Xa, ypm, sw, C, loss)
    E = np.eye(5) * eps
    num_grad = [
        (
            smooth_objective(theta + e, Xa, ypm, sw, C, loss)
            - smooth_objective(theta - e, Xa, ypm, sw, C, loss)
        )
        / (2 * eps)
        for e in E
    ]
    num_hess = np.array(
        [
            (
                smooth_gradient(theta + e, Xa, ypm, sw, C, loss)
                - smooth_gradient(theta - e, Xa, ypm, sw, C, loss)
            )
            / (2 * eps)
            for e in E
        ]
    )
    np.testing.assert_allclose(grad, num_grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hess, num_hess, rtol=1e-6, atol=1e-6)
    assert hess[-1, -1] == pytest.approx(C * np.sum(sw * loss.d2(ypm, Xa @ theta)))  # no penalty


def test_learner_gradient_is_per_sample_loss_derivative():
    X, y, sw = _problem(3, n=50, d=3)
    model = LogisticLearner(0.8).fit(X, y, sw)
    G = model.gradient(X[:4], y[:4])
    assert G.shape == (4, 4)
    theta, eps = model.params_, 1e-6
    for k in range(4):
        e = np.eye(4)[k] * eps
        up = LOGISTIC.value(model.encode(y[:4]), augment(X[:4]) @ (theta + e))
        down = LOGISTIC.value(model.encode(y[:4]), augment(X[:4]) @ (theta - e))
        np.testing.assert_allclose(G[:, k], (up - down) / (2 * eps), rtol=1e-6, atol=1e-9)
    # at the optimum the weighted gradients plus the regularizer vanish
    total = model.C * (sw[:, None] * model.gradient(X, y)).sum(0) + np.r_[model.coef_, 0.0]
    np.testing.assert_allclose(total, 0.0, atol=1e-8)
    H = model.hessian(X, y, sw)
    np.testing.assert_allclose(H, H.T)
    assert np.all(np.linalg.eigvalsh(H) > 0)


def test_loss_per_sample_is_natural_log_loss():
    X, y, sw = _problem(4)
    model = LogisticLearner(1.0).fit(X, y, sw)
    p = model.predict_proba(X)[np.arange(len(y)), (y == "b").astype(int)]
    np.testing.assert_allclose(model.loss_per_sample(X, y), -np.log(p), rtol=1e-10)


def test_warm_start_gives_the_same_optimum_in_fewer_steps():
    X, y, sw = _problem(6)
    cold = LogisticLearner(50.0).fit(X, y, sw)
    warm = LogisticLearner(50.0, warm_start=True).fit(X, y, sw * 1.01)
    warm.fit(X, y, sw)
    np.testing.assert_allclose(warm.params_, cold.params_, rtol=1e-9, atol=1e-10)
    assert warm.n_iter_ < cold.n_iter_


def test_a_warm_start_at_another_C_predicts_along_the_path():
    """theta(C') ~ theta(C) + log(C'/C) H^{-1} [w, 0]: the tangent of the optimum in log C."""
    from backdoor_curves.learners.linear import augment, c_tangent, hessian_solver

    X, y, sw = _problem(7, n=200, d=8)
    model = LogisticLearner(1.0, warm_start=True).fit(X, y, sw)
    theta, ypm = model.params_, model.encode(y)
    solver = hessian_solver(augment(X), sw * LOGISTIC.d2(ypm, augment(X) @ theta))
    tangent = c_tangent(theta, solver)
    h = 1e-5  # against a central difference of cold fits in log C
    up, down = (LogisticLearner(np.exp(s * h)).fit(X, y, sw).params_ for s in (1, -1))
    np.testing.assert_allclose(tangent, (up - down) / (2 * h), rtol=1e-5, atol=1e-8)
    steps = {}
    for C in (3.6, 13.0):  # the warm chain reaches the cold optimum, in fewer steps
        cold = LogisticLearner(C).fit(X, y, sw)
        model.set_params(C=C).fit(X, y, sw)
        np.testing.assert_allclose(model.params_, cold.params_, rtol=1e-9, atol=1e-10)
        steps[C] = (model.n_iter_, cold.n_iter_)
    assert all(warm < cold for warm, cold in steps.values()), steps
    other = model.set_params(C=20.0).fit(X[:-1], y[:-1], sw[:-1])  # other rows: no prediction
    np.testing.assert_allclose(
        other.params_,
        LogisticLearner(20.0).fit(X[:-1], y[:-1], sw[:-1]).params_,
        rtol=1e-9,
        atol=1e-10,
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LogisticLearner(C=0.0), "C must be"),
        (lambda: LogisticLearner(C=-1), "C must be"),
        (lambda: LogisticLearner(C="1"), "C must be"),
        (lambda: RidgeLearner(alpha=np.inf), "alpha must be"),
        (lambda: LogisticLearner(max_iter=0), "max_iter"),
    ],
)
def test_bad_parameters(make, match):
    X, y, _ = _problem(0, n=20)
    with pytest.raises((TypeError, ValueError), match=match):
        make().fit(X, y)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("C", [1e-2, 1.0, 1e3])
def test_newton_converges_to_round_off(seed, C):
    """The optimality condition grad J = 0 holds to round-off, not just to a line-search stall."""
    X, y, sw = _problem(seed)
    model = LogisticLearner(C).fit(X, y, sw)
    keep = sw > 0
    Xa, ypm = augment(X[keep]), np.where(y[keep] == "b", 1.0, -1.0)
    g = smooth_gradient(model.params_, Xa, ypm, sw[keep], C, LOGISTIC)
    scale = C * np.abs(Xa).T @ sw[keep] + np.abs(np.r_[model.coef_, 0.0])  # size of the terms
    assert np.all(np.abs(g) <= 1e-11 * (1.0 + scale))


@pytest.mark.parametrize("C", [0.1, 1.0, 1e4])
def test_single_precision_newton_reaches_the_same_optimum(C, mnist_small):
    """Single-precision Hessians change the steps, not the optimum; ill-conditioned: double."""
    data = mnist_small
    Xa, y = augment(data.X_train), data.encode(data.y_train)
    sw = data.sample_weight(0.3)
    double, _ = newton_fit(Xa, y, sw, C, LOGISTIC)
    single, _, solver = newton_fit(Xa, y, sw, C, LOGISTIC, return_solver=True, single=True)
    np.testing.assert_allclose(single, double, rtol=1e-8, atol=1e-10 * np.abs(double).max())
    # single precision only while the Hessian is well-conditioned
    if solver.inner.single:
        assert solver.inner.condition_number <= SINGLE_PRECISION_MAX_COND


def test_ill_conditioned_hessian_is_factorized_in_double_precision(mnist_small):
    data = mnist_small
    Xa, y = augment(data.X_train), data.encode(data.y_train)
    Xa = Xa[:, Xa.any(axis=0)]
    sw = data.sample_weight(0.3)
    zero = np.zeros(Xa.shape[1])  # at 0 every l'' = 1/4: H = C/4 Xa^T Xa + I
    solver, again = _factorize_hessian(zero, Xa, y, sw, 1e4, LOGISTIC, True)
    assert not solver.single and not again
    assert solver.condition_number > SINGLE_PRECISION_MAX_COND
    solver, again = _factorize_hessian(zero, Xa, y, sw, 1e-3, LOGISTIC, True)
    assert solver.single and again


def test_dual_hessian_solver_matches_the_primal_hessian():
    """More features than samples: solves through the n x n system equal H^{-1} r."""
    rng = np.random.default_rng(5)
    n, p, C = 30, 80, 1.3
    Xa = augment(rng.normal(size=(n, p)) + 0.3)
    y = rng.choice([-1.0, 1.0], n)
    sw = rng.uniform(0.0, 2.0, n)
    sw[:4] = 0.0  # zero-weight rows (e.g. P at beta = 0) have no curvature
    theta = 0.1 * rng.normal(size=p + 1)
    H = smooth_hessian(theta, Xa, y, sw, C, LOGISTIC)
    solver = DualHessianSolver(Xa, C * sw * LOGISTIC.d2(y, Xa @ theta))
    r = rng.normal(size=p + 1)
    np.testing.assert_allclose(solver.solve(r), np.linalg.solve(H, r), rtol=1e-10, atol=1e-12)
    assert solver.reusable_gram(Xa.copy()) is solver.gram
    assert solver.reusable_gram(Xa[1:]) is None


@pytest.mark.parametrize("C", [0.1, 10.0])
def test_logistic_with_more_features_than_samples_matches_sklearn(C):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 120)) + 0.2
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=40) > 0.2, "b", "a")
    sw = rng.uniform(0.5, 1.5, 40)
    ours = LogisticLearner(C).fit(X, y, sw)
    ref = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-13, max_iter=1000)
    ref.fit(X, y, sample_weight=sw)
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(ours.coef_, ref.coef_[0], rtol=1e-7, atol=1e-9 * scale)
    assert ours.intercept_ == pytest.approx(ref.intercept_[0], rel=1e-7, abs=1e-9 * scale)


def test_a_warm_start_that_newton_cannot_leave_is_restarted_cold():
    """From the separable clean fit with effective C = 1e16 (features of scale 1e8), the
    poisoned fit's Newton steps are unresolvable: the fit restarts cold, silently, exactly."""
    import warnings

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    X = 1e8 * (rng.normal(size=(40, 5)) + 0.9 * (2 * y[:, None] - 1))  # barely separable
    Xp = 1e8 * (rng.normal(size=(6, 5)) + np.r_[np.zeros(4), 2.5])
    Xall, yall = np.vstack([X, Xp]), np.r_[y, rng.integers(0, 2, 6)]
    sw = np.r_[np.ones(40), np.full(6, 0.5)]
    warm = LogisticLearner(warm_start=True).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warm.fit(Xall, yall, sw)
    cold = LogisticLearner().fit(Xall, yall, sw)
    np.testing.assert_allclose(
        warm.decision_function(Xall), cold.decision_function(Xall), rtol=1e-8, atol=1e-8
    )


def test_a_ridge_slope_reuses_the_fit_s_factorization(mnist_small):
    """In a shared-pairwise block the slope's H0 is the fit's factor: nothing refactorized.

    Outside the block the slope rebuilds H0 from another copy of the same rows; OpenBLAS's
    Gram product can round differently with the copy's memory alignment, so the two agree to
    round-off, not bit for bit.
    """
    from backdoor_curves.learners.pairwise import shared_pairwise

    alone = RidgeLearner(alpha=0.3).fit(mnist_small.X_clean, mnist_small.y_clean)
    expected = alone.slope_terms(mnist_small)
    with shared_pairwise(mnist_small) as cache:
        model = RidgeLearner(alpha=0.3).fit(mnist_small.X_clean, mnist_small.y_clean)
        hits = cache.hits
        terms = model.slope_terms(mnist_small)
        assert cache.hits == hits + 1  # the memoized factor of H0
    np.testing.assert_allclose(model.coef_, alone.coef_, rtol=1e-12, atol=1e-15)
    assert terms["derivative"] == pytest.approx(expected["derivative"], rel=1e-12)
    assert terms["condition_number"] == pytest.approx(expected["condition_number"], rel=1e-12)
    np.testing.assert_allclose(
        terms["dtheta_dbeta"], expected["dtheta_dbeta"], rtol=1e-10, atol=1e-14
    )


def test_parameter_names_are_read_once_per_class():
    from backdoor_curves import LinearSVMLearner, RBFSVMLearner

    names = LogisticLearner._get_param_names()
    names.append("spoiled")  # a copy: the kept list is not changed
    assert LogisticLearner._get_param_names() == ["C", "max_iter", "tol", "warm_start"]
    assert RidgeLearner._get_param_names() == ["alpha", "max_iter", "tol"]
    assert set(RBFSVMLearner().get_params()) - set(LinearSVMLearner().get_params()) == {"gamma"}
