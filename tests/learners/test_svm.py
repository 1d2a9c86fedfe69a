"""Linear and RBF SVM learners against scikit-learn's SVC and the KKT optimality certificate."""

import re

import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from backdoor_curves import BackdoorData, DegenerateKKTError, LinearSVMLearner, RBFSVMLearner
from backdoor_curves import backdoor_slope as slope_of
from backdoor_curves.learners.svm import ROUNDOFF_FACTOR, kkt_matrix, svm_kkt_slope

GAMMA = 0.15


def _problem(seed, n=120, d=5, zeros=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.where(X @ rng.normal(size=d) + 0.8 * rng.normal(size=n) > 0, 1, -1) * 4  # labels ±4
    sw = rng.uniform(0.2, 2.0, n)
    sw[rng.choice(n, zeros, replace=False)] = 0.0
    return X, y, sw


def _make(kind, C):
    return LinearSVMLearner(C) if kind == "linear" else RBFSVMLearner(C, gamma=GAMMA)


def _svc(kind, C, tol=1e-12):
    if kind == "linear":
        return SVC(kernel="linear", C=C, tol=tol)
    return SVC(kernel="rbf", C=C, gamma=GAMMA, tol=tol)


def _gram(kind, A, B):
    return A @ B.T if kind == "linear" else rbf_kernel(A, B, gamma=GAMMA)


@pytest.mark.parametrize("kind", ["linear", "rbf"])
@pytest.mark.parametrize("C", [0.01, 0.3, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_svc_with_sample_weights(kind, C, seed):
    X, y, sw = _problem(seed)
    ours = _make(kind, C).fit(X, y, sw)
    ref = _svc(kind, C).fit(X, y, sample_weight=sw)
    scale = np.max(np.abs(ref.decision_function(X)))
    np.testing.assert_allclose(
        ours.decision_function(X), ref.decision_function(X), atol=1e-6 * scale
    )
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


@pytest.mark.parametrize("kind", ["linear", "rbf"])
@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_solution_is_certified_optimal(kind, C):
    """Zero duality gap with feasible primal and dual points proves optimality, whatever solver."""
    X, y, sw = _problem(3)
    model = _make(kind, C).fit(X, y, sw)
    ypm, a, cap = np.where(y > 0, 1.0, -1.0), model.alpha_, C * sw
    assert np.all(a >= 0) and np.all(a <= cap * (1 + 1e-12))
    assert abs(ypm @ a) <= 1e-9 * max(1.0, a.sum())
    Q = (ypm[:, None] * ypm[None, :]) * _gram(kind, X, X)
    f = model.decision_function(X)
    primal = 0.5 * a @ Q @ a + C * np.sum(sw * np.maximum(0.0, 1.0 - ypm * f))
    dual = a.sum() - 0.5 * a @ Q @ a
    assert primal - dual <= 1e-9 * abs(primal)
    assert model.polished_


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_zero_weight_rows_keep_their_index(kind):
    """SVC.support_ re-indexes over the positive-weight rows; our indices refer to X itself."""
    X, y, sw = _problem(4, zeros=30)
    ours = _make(kind, 0.5).fit(X, y, sw)
    keep = np.flatnonzero(sw > 0)
    ref = _svc(kind, 0.5).fit(X, y, sample_weight=sw)
    assert ref.support_.max() < keep.size  # the scikit-learn behaviour this guards against
    np.testing.assert_array_equal(np.sort(ours.support_), np.sort(keep[ref.support_]))
    np.testing.assert_allclose(X[ours.support_], ours.support_vectors_)
    assert np.all(ours.alpha_[sw == 0] == 0) and np.all(ours.dual_coef_full_[sw == 0] == 0)
    # dual_coef_full_ holds y_i a_i over the rows of X, scikit-learn's dual_coef_ over its SVs
    full = np.zeros(len(y))
    full[keep[ref.support_]] = ref.dual_coef_[0]
    np.testing.assert_allclose(ours.dual_coef_full_, full, atol=1e-6 * np.abs(full).max())


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_sample_weight_equivalence(kind):
    X, y, _ = _problem(5, n=60)
    w = np.ones(60)
    w[:5], w[5:10] = 2.0, 0.0
    weighted = _make(kind, 0.7).fit(X, y, w)
    repeated = _make(kind, 0.7).fit(np.vstack([X[10:], X[:5], X[:5]]), np.r_[y[10:], y[:5], y[:5]])
    np.testing.assert_allclose(
        weighted.decision_function(X), repeated.decision_function(X), rtol=1e-8, atol=1e-10
    )


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_kkt_matrix_is_the_jacobian_of_the_kkt_residual(kind):
    """hessian() = d/d(a_M, b) of [y_M f(x_M) - 1 ; y^T a], checked by finite differences."""
    X, y, sw = _problem(6)
    model = _make(kind, 1.0).fit(X, y, sw)
    ypm = np.where(y > 0, 1.0, -1.0)
    M = model.margin_
    K = _gram(kind, X, X)

    def residual(theta):
        a = model.alpha_.copy()
        a[M] = theta[:-1]
        f = K[M] @ (ypm * a) + theta[-1]
        return np.r_[ypm[M] * f - 1.0, ypm @ a]

    theta = model.params_
    np.testing.assert_allclose(residual(theta), 0.0, atol=1e-9)
    eps = 1e-6
    J = np.column_stack(
        [(residual(theta + e) - residual(theta - e)) / (2 * eps) for e in np.eye(len(theta)) * eps]
    )
    H = model.hessian(X, y, sw)
    np.testing.assert_allclose(H, J, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(H, kkt_matrix(K[np.ix_(M, M)], ypm[M]))
    # gradient(): rows l'(y f) * [y_M K(x, x_M), 1]
    G = model.gradient(X[:7], y[:7])
    f = model.decision_function(X[:7])
    d1 = np.where(ypm[:7] * f < 1, -ypm[:7], 0.0)
    expected = d1[:, None] * np.hstack([K[:7][:, M] * ypm[M], np.ones((7, 1))])
    np.testing.assert_allclose(G, expected, atol=1e-12)


def test_linear_svm_coef_is_the_primal_weight():
    X, y, sw = _problem(7)
    model = LinearSVMLearner(0.4).fit(X, y, sw)
    np.testing.assert_allclose(model.coef_, X.T @ model.dual_coef_full_, atol=1e-12)


def test_no_margin_support_vector_is_reported():
    """Tiny C with balanced classes: every point sits at its bound, the KKT system is empty."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.repeat([0, 1], 20)
    data = BackdoorData(X[:30], np.r_[y[:15], y[20:35]], X[30:33], [1, 1, 1], X, y, X, 1 - y)
    with pytest.raises(DegenerateKKTError, match="no margin support vector") as info:
        slope_of(LinearSVMLearner(1e-5), data)
    # the message counts the bound duals and says what to change
    assert re.search(
        r"\d+ of its \d+ support vectors sit at their bound \(C=1e-05\)", str(info.value)
    )
    assert "use a larger C" in str(info.value)


def test_rbf_kernel_keeps_its_digits_at_huge_feature_scales():
    """|a|^2 + |b|^2 - 2 a.b loses everything at 1e8 (K(x, x) = 0.8): differences instead."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 4))
    model = RBFSVMLearner(gamma=GAMMA)
    np.testing.assert_array_equal(model.kernel(X, X[:3]), rbf_kernel(X, X[:3], gamma=GAMMA))
    big = 1e8 * X
    direct = np.exp(-GAMMA * ((big[:, None, :] - big[None, :3, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(model.kernel(big, big[:3]), direct, rtol=1e-12, atol=0)
    assert np.all(np.diagonal(model.kernel(big, big)) == 1.0)


def test_a_stalled_libsvm_is_refused_naming_c(monkeypatch):
    """A huge C on data that are not separable: a clear error after the iteration budget."""
    from backdoor_curves.learners import svm

    monkeypatch.setattr(svm, "LIBSVM_MAX_ITER", 20_000)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)  # random labels: not separable
    with pytest.raises(svm.SVMConvergenceError, match=r"within 20000 iterations.*C=1e\+08"):
        LinearSVMLearner(1e8).fit(X, y)


def test_dual_sets_scale_with_the_duals_under_a_huge_box():
    from backdoor_curves.learners.svm import dual_sets, margin_tolerance

    # hard margin under a box of 1e8: duals of order 1 are margin duals, round-off is zero
    margin, bound = dual_sets(np.array([0.0, 1e-13, 0.4, 2.0]), np.full(4, 1e8))
    assert margin.tolist() == [False, False, True, True] and not bound.any()
    # with a dual at its box the scale is the box (margin duals are then of its order)
    margin, bound = dual_sets(np.array([0.0, 0.5, 3e7, 1e8]), np.full(4, 1e8))
    assert margin.tolist() == [False, False, True, False] and bound.tolist() == [False] * 3 + [True]
    assert margin_tolerance(np.ones(3), 1.0) == pytest.approx(1e-7)  # MARGIN_TOL rules
    assert margin_tolerance(np.full(3, 1e8), 100.0) > 1e-5  # f's round-off rules


def test_bad_gamma():
    X, y, _ = _problem(0, n=20)
    with pytest.raises(ValueError, match="gamma must be"):
        RBFSVMLearner(gamma=-1.0).fit(X, y)
    with pytest.raises(TypeError, match="gamma must be"):
        RBFSVMLearner(gamma="scale").fit(X, y)


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_a_weight_whose_box_underflows_is_no_weight(kind):
    """C s_i = 0 in floating point (s_i = 5e-324): the row's dual is 0, as for s_i = 0."""
    X, y, _ = _problem(8, n=40, zeros=0)
    sw = np.ones(40)
    sw[:5] = 5e-324
    assert np.all(0.3 * sw[:5] == 0.0)
    tiny = _make(kind, 0.3).fit(X, y, sw)
    sw[:5] = 0.0
    zero = _make(kind, 0.3).fit(X, y, sw)
    assert tiny.polished_ and np.all(tiny.alpha_[:5] == 0.0)
    np.testing.assert_array_equal(tiny.decision_function(X), zero.decision_function(X))


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_kernel_products_and_their_roundoff_scale(kind):
    """K(A, B) v against the same sums in extended precision: within ROUNDOFF_FACTOR eps times
    the returned scale, which is at least |K(A, B)| |v|; the RBF SVM goes through its kernel
    matrix (the same bits), the linear SVM through the weights B^T v."""
    rng = np.random.default_rng(4)
    A, B = rng.normal(size=(30, 6)) * 1e3, rng.normal(size=(9, 6)) * 1e3
    v = rng.normal(size=9)
    model = _make(kind, 1.0)
    K = _gram(kind, A, B)
    products, scale = model.kernel_products(A, B, v, with_scale=True)
    np.testing.assert_array_equal(model.kernel_products(A, B, v), products)
    assert np.all(scale >= np.abs(K) @ np.abs(v) * (1 - 1e-12))
    if kind == "linear":
        exact = A.astype(np.longdouble) @ (B.astype(np.longdouble).T @ v.astype(np.longdouble))
    else:
        np.testing.assert_array_equal(products, K @ v)
        exact = K.astype(np.longdouble) @ v.astype(np.longdouble)
    error = np.abs(products.astype(np.longdouble) - exact)
    assert np.all(error <= ROUNDOFF_FACTOR * np.finfo(float).eps * scale)


def test_linear_slope_through_the_weights_equals_the_kernel_matrices(mnist_small):
    """The linear SVM's slope computes decision values as A (B^T v); through the kernel
    matrices (svm_kkt_slope's default) it is the same derivative to round-off."""
    model = LinearSVMLearner(C=0.5).fit(mnist_small.X_clean, mnist_small.y_clean)
    terms = model.slope_terms(mnist_small)
    assert terms["n_poison_active"] > 0  # the derivative has all its terms
    encode = model.encode
    matrices = svm_kkt_slope(
        model.kernel,
        mnist_small.X_clean,
        encode(mnist_small.y_clean),
        model.alpha_,
        model.intercept_,
        None,
        mnist_small.X_poison,
        encode(mnist_small.y_poison),
        mnist_small.X_test_bd,
        encode(mnist_small.y_test_bd),
        model.C,
    )
    assert terms["derivative"] != 0.0
    assert matrices["derivative"] == pytest.approx(terms["derivative"], rel=1e-10)
    np.testing.assert_allclose(matrices["dtheta_dbeta"], terms["dtheta_dbeta"], rtol=1e-10)
