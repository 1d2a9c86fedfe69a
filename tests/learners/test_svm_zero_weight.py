"""Linear SVMs whose optimum is w = 0 (a constant decision function f = b).

Where duals in their boxes can balance the classes' feature sums (sum_i y_i a_i x_i = 0; e.g.
classes with the same weighted mean), w = 0 is optimal for every C. With unequal class totals
S_+ > S_- (S = sum of the boxes C s_i) the optimum is w = 0, b = +1, objective 2 C sum_{y=-1} s_i
(every point of the lighter class at its bound with y f = -1, the heavier class on the margin).
libsvm never settles there (its working pairs trade duals along the face of optimal duals), so
the fit used to run LIBSVM_MAX_ITER iterations and raise SVMConvergenceError when the KKT polish
could not certify the last iterate. Oracles: that closed form, the duality gap of the returned
duals, scikit-learn's SVC with sample weights where libsvm does finish, and a slope in closed form.
"""

import numpy as np
import pytest
from sklearn.svm import SVC

import backdoor_curves as bc
from backdoor_curves import BackdoorData, DegenerateKKTError, LinearSVMLearner
from backdoor_curves.learners import svm

EPS = np.finfo(float).eps


def _balanced_means(seed, weighted, n_heavy=15, n_light=10, d=5):
    """Points in pairs x, -x: each class sums to exactly 0 (with equal weights on a pair).
    Class +1 is the heavier: weights in [1, 2] against [0.5, 1] (or all 1, 30 points vs 20)."""
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_heavy, d)), rng.normal(size=(n_light, d))
    X = np.r_[U, -U, V, -V]
    y = np.r_[np.ones(2 * n_heavy), -np.ones(2 * n_light)]
    if not weighted:
        return X, y, np.ones(len(y))
    su, sv = rng.uniform(1.0, 2.0, n_heavy), rng.uniform(0.5, 1.0, n_light)
    return X, y, np.r_[su, su, sv, sv]


#: (seed, weighted, C): with a budget of 1e5 libsvm iterations the fit used to raise
#: SVMConvergenceError on the first four here (which ones depends on libsvm's trajectory), and
#: with the default 1e7 it ran 3 s before raising or before the polish certified the last iterate
ZERO_W_CASES = [(0, False, 10.0), (0, True, 1.0), (3, True, 0.1), (4, False, 0.1), (2, True, 10.0)]


@pytest.mark.parametrize(("seed", "weighted", "C"), ZERO_W_CASES)
def test_an_optimum_with_w_zero_is_fitted_not_refused(monkeypatch, seed, weighted, C):
    monkeypatch.setattr(svm, "LIBSVM_MAX_ITER", 100_000)  # no long run to fall back on
    X, y, sw = _balanced_means(seed, weighted)
    model = LinearSVMLearner(C).fit(X, y, sw)
    a, cap = model.alpha_, C * sw
    assert model.polished_
    # closed form: w = 0, b = +1 (to the round-off of the sum w = sum_i y_i a_i x_i)
    roundoff = 64 * EPS * np.sum(a * np.linalg.norm(X, axis=1))
    assert np.linalg.norm(model.coef_) <= roundoff
    assert model.intercept_ == pytest.approx(1.0, abs=roundoff * np.abs(X).max() + EPS)
    # the returned duals are feasible and have no duality gap with the closed-form primal
    assert np.all(a >= 0) and np.all(a <= cap)
    assert abs(y @ a) <= len(y) * EPS * a.sum()
    w = X.T @ (y * a)
    dual = a.sum() - 0.5 * w @ w
    primal = 2.0 * C * sw[y < 0].sum()  # J(w = 0, b = 1)
    assert dual == pytest.approx(primal, rel=len(y) * EPS)
    np.testing.assert_array_equal(model.predict(X), np.ones(len(y)))


def test_w_zero_matches_svc_with_sample_weights():
    """Small integer data on which libsvm does finish: the same constant classifier as SVC."""
    X = np.array([[1.0, 1], [-1, 1], [0, -2], [2, 0], [-2, 0], [0, 1], [0, -1]])
    y = np.array([1, 1, 1, 1, 1, 0, 0])
    sw = np.array([1.0, 1.0, 1.0, 0.5, 0.5, 1.5, 1.5])  # S_+ = 4 > S_- = 3: b = +1
    for C in (0.1, 3.0):
        ours = LinearSVMLearner(C).fit(X, y, sw)
        ref = SVC(kernel="linear", C=C, tol=1e-12).fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(ref.coef_[0], 0.0, atol=1e-12)  # the closed form, for SVC
        np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-12)
        np.testing.assert_allclose(ours.coef_, 0.0, atol=1e-12)
        assert ours.intercept_ == pytest.approx(1.0, abs=1e-12)


def test_slope_at_w_zero_with_unique_duals_is_the_closed_form():
    """D: (+-1, 0) of class +1, (0, 0) of class -1 (C = 1/2): w = 0, b = 1, a = (C/2, C/2, C),
    the two margin duals strictly inside their boxes, the KKT matrix regular. A poisoning point
    (0, 1) of class -1 enters at its bound beta C; the margin then forces a_1 = a_2 = C (1 + beta)
    / 2, b = 1 and w = (0, -beta C): f(x) = 1 - beta C x_2. On V_t (class -1) the hinge is
    2 - beta C x_2, so dL(V_t)/dbeta = -C mean(x_2)."""
    C = 0.5
    X_D, y_D = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]), np.array([1, 1, 0])
    X_P, y_P = np.array([[0.0, 1.0]]), np.array([0])
    X_t = np.array([[0.0, 2.0], [1.0, 1.0], [0.0, -1.0]])
    data = BackdoorData(X_D, y_D, X_P, y_P, X_t, np.ones(3, int), X_t, np.zeros(3, int))
    slope = bc.backdoor_slope(LinearSVMLearner(C), data)
    assert slope.derivative == pytest.approx(-C * X_t[:, 1].mean(), rel=1e-12)
    # the path it differentiates, by scikit-learn re-fits with sample weights
    for beta in (0.1, 0.4):
        ref = SVC(kernel="linear", C=C, tol=1e-12).fit(
            np.r_[X_D, X_P], np.r_[y_D, y_P], sample_weight=[1, 1, 1, beta]
        )
        np.testing.assert_allclose(ref.coef_[0], [0.0, -beta * C], atol=1e-9)
        assert ref.intercept_[0] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 2])
def test_slope_at_w_zero_with_undetermined_duals_is_refused(monkeypatch, seed):
    """30 points of class +1 on the margin in 5 dimensions: their duals are not unique (some at 0
    or at their box, or too many free ones for a regular KKT matrix), so the KKT system at beta
    = 0 does not give the slope: DegenerateKKTError saying so, not SVMConvergenceError (fit)
    nor SingularSystemError advising to standardize."""
    monkeypatch.setattr(svm, "LIBSVM_MAX_ITER", 100_000)
    X, y, _ = _balanced_means(seed, weighted=False)
    rng = np.random.default_rng(10 + seed)
    X_P, X_t = rng.normal(size=(4, 5)), rng.normal(size=(6, 5))
    y_t = np.where(rng.normal(size=6) > 0, 1.0, -1.0)
    data = BackdoorData(X, y, X_P, -np.ones(4), X_t, y_t, X_t, -np.ones(6))  # P: the light class
    with pytest.raises(DegenerateKKTError, match=r"has w = 0: its decision function is the const"):
        bc.backdoor_slope(LinearSVMLearner(10.0), data)


def test_balanced_w_zero_names_the_constant_decision_function():
    """Equal class totals and equal means: every dual at its box, no margin vector; the message
    keeps its advice and adds that f is constant (w = 0 for every C)."""
    X = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    y = np.array([1, 1, 0, 0])
    data = BackdoorData(X, y, X[:1] * 0.5, [0], X, y, X, 1 - y)
    with pytest.raises(DegenerateKKTError, match=r"no margin support vector.*larger C") as info:
        bc.backdoor_slope(LinearSVMLearner(1.0), data)
    assert "Here f is constant on the support vectors" in str(info.value)


def test_zero_weight_dual_refuses_where_w_zero_is_not_optimal():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    y[:2] = 1.0  # unequal totals
    assert svm.zero_weight_dual(X @ X.T, y, np.ones(30)) is None
    X, y, sw = _balanced_means(0, weighted=True)
    alpha, b = svm.zero_weight_dual(X @ X.T, y, 0.1 * sw)
    assert b == 1.0 and np.all(alpha[y < 0] == 0.1 * sw[y < 0])


@pytest.mark.parametrize("seed", [0, 2])
def test_zero_weight_dual_from_the_inputs_as_factor(seed):
    """The linear kernel's inputs as the factor G (K = X X^T) instead of eigh(K): a certified
    optimum with w = 0 (the same objective: the lighter class at its boxes, b = 1)."""
    X, y, sw = _balanced_means(seed, weighted=True)
    cap = 0.1 * sw
    K = X @ X.T
    ref = svm.zero_weight_dual(K, y, cap)
    got = svm.zero_weight_dual(K, y, cap, X)
    assert ref is not None and got is not None
    (alpha, b), (alpha_ref, b_ref) = got, ref
    assert b == b_ref == 1.0
    np.testing.assert_array_equal(alpha[y < 0], cap[y < 0])
    # both optimal: the same dual objective sum(a) - ||w||^2 / 2 = sum(a) = 2 S_light
    assert alpha.sum() == pytest.approx(alpha_ref.sum(), rel=1e-12)
    assert alpha.sum() == pytest.approx(2 * cap[y < 0].sum(), rel=1e-12)
    assert abs(y @ alpha) <= 1e-12 * alpha.sum()
    w = X.T @ (y * alpha)
    assert np.linalg.norm(w) <= 1e-12 * np.abs(X).max() * alpha.sum()
    # the learner passes its inputs: the same certified w = 0 from a fit
    model = LinearSVMLearner(0.1).fit(X, y, sw)
    assert model.polished_ and np.linalg.norm(model.coef_) <= 1e-12 * alpha.sum() * np.abs(X).max()
