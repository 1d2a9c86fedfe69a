"""Warm-started SVM duals: compiled SMO from a feasible start, then the exact KKT polish.

Oracles: the cold solve (SMO from zero duals, else libsvm, + polish: :func:`solve_svm_dual`
without ``start``), whose certified answer depends only on the margin and bound sets; libsvm's
answer polished; the maximal KKT violation m(a) - M(a)
computed directly from its definition; grid tables of cold fits.
"""

import numpy as np
import pytest

from backdoor_curves import LinearSVMLearner, RBFSVMLearner
from backdoor_curves.learners import svm
from backdoor_curves.learners._smo import smo_gradient, smo_iterate, smo_solve
from backdoor_curves.learners.svm import dual_sets, polish_svm_dual, solve_svm_dual
from backdoor_curves.study.grid import grid_study
from backdoor_curves.study.point import RESULT_COLUMNS

GAMMA = 0.02
#: C along a chain. Where every support vector is at its bound (no margin vector: nothing for the
#: polish to certify) a fit falls back to libsvm: the RBF kernel (gamma = 0.02) below C = 0.3, the
#: linear one at C = 1e-3 on D and P.
C_CHAIN = {"linear": np.geomspace(1e-3, 100.0, 7), "rbf": np.geomspace(0.3, 100.0, 7)}
#: Fits of a warm-started chain from scratch (zero duals) at most: the clean fit starting each of
#: its two segments, and the poisoned fit after a clean one without a margin vector (linear,
#: C = 1e-3: libsvm's duals are not polished, and its start is refused).
COLD_FITS = {"linear": 3, "rbf": 2}
TABLE_COLUMNS = list(RESULT_COLUMNS)


@pytest.fixture
def libsvm_calls(monkeypatch):
    """A list that gets a 1 for each libsvm fit (libsvm still runs)."""
    calls = []
    libsvm = svm._libsvm

    def counted(*args):
        calls.append(1)
        return libsvm(*args)

    monkeypatch.setattr(svm, "_libsvm", counted)
    return calls


def _kernel(kind, X):
    if kind == "linear":
        return X @ X.T
    sq = np.einsum("ij,ij->i", X, X)
    return np.exp(-GAMMA * np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0))


def _problem(data, kind, poisoned=True):
    X = data.X_train if poisoned else data.X_clean
    y = data.encode(data.y_train if poisoned else data.y_clean)
    return np.ascontiguousarray(_kernel(kind, X)), y


def _violation(G, y, cap, a):
    """m(a) - M(a) from the definitions: max over I_up, min over I_low of -y G."""
    v = -y * G
    up = np.where(y > 0, a < cap, a > 0)
    low = np.where(y > 0, a > 0, a < cap)
    return v[up].max() - v[low].min()


def _assert_same_optimum(got, ref, cap):
    """Bits where the margin and bound sets agree, else 1e-10 relative."""
    (a, b), (a_ref, b_ref) = got, ref
    same_sets = all(
        np.array_equal(s, t) for s, t in zip(dual_sets(a, cap), dual_sets(a_ref, cap), strict=True)
    )
    if same_sets:
        np.testing.assert_array_equal(a, a_ref)
        assert b == b_ref
    else:
        np.testing.assert_allclose(a, a_ref, rtol=1e-10, atol=1e-10 * a_ref.max())
        np.testing.assert_allclose(b, b_ref, rtol=1e-10)
    return same_sets


@pytest.mark.parametrize(
    "kind, C", [(k, C) for k in ("linear", "rbf") for C in C_CHAIN[k][[1, 3, 6]]]
)
def test_smo_from_zero_reaches_the_cold_optimum(mnist_small, kind, C):
    K, y = _problem(mnist_small, kind)
    cap = np.full(len(y), C)
    a, b, n_iter, converged = smo_solve(K, y, cap, np.zeros(len(y)), 1e-10, 10**6)
    assert converged and n_iter > 0
    assert np.all(a >= 0) and np.all(a <= cap) and abs(y @ a) <= 1e-12 * a.sum()
    # the same iteration, step by step: its stopping rule re-checked from the definitions
    a2 = np.zeros(len(y))
    G = smo_gradient(K, y, a2)
    assert smo_iterate(K, y, cap, a2, G, 1e-10, 10**6) == (n_iter, True)
    np.testing.assert_array_equal(a2, a)
    assert _violation(G, y, cap, a) <= 1e-10
    new, new_b, polished = polish_svm_dual(K, y, cap, a, b)
    assert polished
    ref, ref_b, _ = solve_svm_dual(K, y, C, np.ones(len(y)), 1e-10)
    _assert_same_optimum((new, new_b), (ref, ref_b), cap)
    assert abs(b - ref_b) <= 1e-6 * max(1.0, abs(ref_b))  # libsvm's intercept rule, unpolished


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_warm_starts_along_c_give_the_cold_optimum(mnist_small, kind):
    K, y = _problem(mnist_small, kind)
    w = np.ones(len(y))
    previous = None
    bits = 0
    for C in C_CHAIN[kind]:
        ref = solve_svm_dual(K, y, C, w, 1e-10)
        starts = [] if previous is None else [previous, 3.0 * previous]  # scaled into the boxes
        for start in starts:
            got = solve_svm_dual(K, y, C, w, 1e-10, start=start)
            assert got[2]
            bits += _assert_same_optimum(got[:2], ref[:2], C * w)
        previous = ref[0]
    assert bits >= len(C_CHAIN[kind])  # the sets agree on most of them: identical bits


def test_the_smo_rounds_resume_where_they_stopped(mnist_small):
    """A loose round followed by a tight one is the same iteration as one tight round."""
    K, y = _problem(mnist_small, "linear")
    cap = np.full(len(y), 0.05)
    a1 = np.zeros(len(y))
    G1 = smo_gradient(K, y, a1)
    n1, _ = smo_iterate(K, y, cap, a1, G1, 1e-3, 10**6)
    n2, _ = smo_iterate(K, y, cap, a1, G1, 1e-10, 10**6)
    a2, _, n, _ = smo_solve(K, y, cap, np.zeros(len(y)), 1e-10, 10**6)
    assert n1 + n2 == n and n1 < n
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(G1, y * (K @ (y * a1)) - 1.0, atol=1e-9)  # updated gradient


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_warm_chain_grid_equals_cold_fits(mnist_small, kind, monkeypatch, libsvm_calls):
    learner = LinearSVMLearner() if kind == "linear" else RBFSVMLearner(gamma=GAMMA)
    grid = {"C": list(C_CHAIN[kind])}
    scratch = []  # per SMO run: from zero duals?
    warm_smo = svm._warm_smo

    def smo_spy(K, y, cap, a0, tol, budget):
        scratch.append(not np.any(a0))
        return warm_smo(K, y, cap, a0, tol, budget)

    monkeypatch.setattr(svm, "_warm_smo", smo_spy)
    warm = grid_study(learner, mnist_small, grid)
    n_scratch, n_libsvm = sum(scratch), len(libsvm_calls)
    assert len(scratch) == 2 * len(C_CHAIN[kind])  # one SMO run per fit
    assert 2 <= n_scratch <= COLD_FITS[kind]
    monkeypatch.setattr(svm, "_feasible_start", lambda *args: None)  # every fit from scratch
    cold = grid_study(learner, mnist_small, grid)
    assert sum(scratch) - n_scratch == 2 * len(C_CHAIN[kind])
    assert n_libsvm <= len(libsvm_calls) - n_libsvm  # the fallback: no more often warm than cold
    assert (warm["error"] == cold["error"]).all()
    np.testing.assert_allclose(
        warm[TABLE_COLUMNS].to_numpy(float), cold[TABLE_COLUMNS].to_numpy(float), rtol=1e-10
    )


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_warm_refits_over_zero_weights_and_new_rows(mnist_small, kind):
    """alpha_ over all rows, zeros on the zero-weight rows; a start shorter than X is padded."""
    data = mnist_small
    make = (lambda: LinearSVMLearner(0.05)) if kind == "linear" else lambda: RBFSVMLearner(2.0)
    model = make().set_params(warm_start=True).fit(data.X_clean, data.y_clean)
    for beta in (0.0, 0.3, 1.0):
        w = data.sample_weight(beta)
        model.fit(data.X_train, data.y_train, sample_weight=w)
        cold = make().fit(data.X_train, data.y_train, sample_weight=w)
        assert model.polished_ and cold.polished_
        cap = model.C * w[w > 0]
        _assert_same_optimum(
            (model.alpha_[w > 0], model.intercept_), (cold.alpha_[w > 0], cold.intercept_), cap
        )
        assert np.all(model.alpha_[w == 0] == 0)


def test_a_start_that_does_not_fit_falls_back_to_the_cold_solve(mnist_small):
    K, y = _problem(mnist_small, "linear")
    n, C, w = len(y), 0.1, np.ones(len(y))
    ref = solve_svm_dual(K, y, C, w, 1e-10)
    changed = y.copy()
    changed[:7] *= -1  # the labels the start was fitted with
    start = solve_svm_dual(K, changed, C, w, 1e-10)[0]
    assert abs(y @ start) > 1e-3
    bad = [
        start,  # y^T a != 0 for these labels
        np.r_[ref[0], 0.0],  # longer than the rows
        np.where(np.arange(n) == 3, np.nan, ref[0]),
        -ref[0],
        np.zeros(n),
    ]
    for s in bad:
        got = solve_svm_dual(K, y, C, w, 1e-10, start=s)
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1:] == ref[1:]


def test_the_learner_falls_back_for_other_labels_and_fewer_rows(mnist_small):
    data = mnist_small
    X, y = data.X_train, data.y_train
    flipped = y.copy()
    flipped[:9] = np.where(flipped[:9] == data.classes[0], data.classes[1], data.classes[0])
    for X2, y2 in [(X, flipped), (X[:150], y[:150])]:
        warm = LinearSVMLearner(0.2, warm_start=True).fit(X, y).fit(X2, y2)
        cold = LinearSVMLearner(0.2).fit(X2, y2)
        np.testing.assert_array_equal(warm.alpha_, cold.alpha_)
        assert warm.intercept_ == cold.intercept_


@pytest.mark.parametrize("budget", [0, 3])
def test_an_exhausted_smo_budget_falls_back_to_libsvm(
    mnist_small, monkeypatch, libsvm_calls, budget
):
    K, y = _problem(mnist_small, "rbf")
    w = np.ones(len(y))
    start = solve_svm_dual(K, y, 0.3, w, 1e-10)[0]
    ref = solve_svm_dual(K, y, 3.0, w, 1e-10)
    calls = libsvm_calls
    monkeypatch.setattr(svm, "SMO_MAX_ITER", budget)
    monkeypatch.setattr(svm, "SMO_ITER_PER_POINT", 0)
    got = solve_svm_dual(K, y, 3.0, w, 1e-10, start=start)
    assert calls  # the cold path ran
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1:] == ref[1:]
    monkeypatch.setattr(svm, "SMO_MAX_ITER", 10**6)
    calls.clear()
    warm = solve_svm_dual(K, y, 3.0, w, 1e-10, start=start)
    assert not calls and warm[2]
    _assert_same_optimum(warm[:2], ref[:2], 3.0 * w)


@pytest.mark.parametrize("kind", ["linear", "rbf"])
@pytest.mark.parametrize("C", [0.05, 3.0])
def test_a_fit_from_scratch_is_libsvms_optimum_without_libsvm(mnist_small, kind, C, monkeypatch):
    """No start: SMO from zero duals, polished; the same optimum as libsvm's answer polished."""
    K, y = _problem(mnist_small, kind)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    cap = C * w
    a_lib, b_lib, _ = svm._libsvm(K, y, C, w, 1e-10, 10**6)
    ref = polish_svm_dual(K, y, cap, a_lib, b_lib)
    assert ref[2]  # libsvm's sets are certified

    def refused(*args):
        raise AssertionError("libsvm ran")

    monkeypatch.setattr(svm, "_libsvm", refused)
    got = solve_svm_dual(K, y, C, w, 1e-10, from_zero=True)
    assert got[2]
    _assert_same_optimum(got[:2], ref[:2], cap)
    # a learner with warm_start fits from scratch the same way (no libsvm)
    model = LinearSVMLearner(C) if kind == "linear" else RBFSVMLearner(C, gamma=GAMMA)
    model.set_params(warm_start=True)
    model.fit(mnist_small.X_train, mnist_small.y_train, sample_weight=w)
    assert model.polished_


def test_an_exhausted_budget_from_scratch_falls_back_to_libsvm(
    mnist_small, monkeypatch, libsvm_calls
):
    K, y = _problem(mnist_small, "linear")
    w = np.ones(len(y))
    ref = solve_svm_dual(K, y, 0.3, w, 1e-10)  # libsvm, polished
    calls = libsvm_calls
    calls.clear()
    monkeypatch.setattr(svm, "SMO_COLD_MIN_ITER", 5)
    monkeypatch.setattr(svm, "SMO_COLD_ITER_PER_POINT", 0)
    got = solve_svm_dual(K, y, 0.3, w, 1e-10, from_zero=True)
    assert calls == [1] and got[2]
    _assert_same_optimum(got[:2], ref[:2], 0.3 * w)
    # without from_zero, or with more points than SMO_COLD_MAX_POINTS: libsvm, no SMO run
    monkeypatch.setattr(svm, "SMO_COLD_MIN_ITER", 10**6)

    def no_smo(*args):
        raise AssertionError("SMO ran")

    monkeypatch.setattr(svm, "_warm_smo", no_smo)
    got = solve_svm_dual(K, y, 0.3, w, 1e-10)
    monkeypatch.setattr(svm, "SMO_COLD_MAX_POINTS", len(y) - 1)
    again = solve_svm_dual(K, y, 0.3, w, 1e-10, from_zero=True)
    assert calls == [1, 1, 1] and got[2] and again[2]
    for answer in (got, again):
        _assert_same_optimum(answer[:2], ref[:2], 0.3 * w)


@pytest.mark.parametrize(("seed", "C"), [(0, 1.0), (2, 10.0)])
def test_a_warm_start_reaches_an_optimum_with_w_zero(monkeypatch, seed, C):
    """Classes with equal (weighted) means: w = 0 and b = +1 at every C (closed form), where the
    duals are not unique (libsvm never stops there); the warm fit is a certified optimum with
    that primal, without libsvm."""
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(15, 5)), rng.normal(size=(10, 5))
    X, y = np.r_[U, -U, V, -V], np.r_[np.ones(30), -np.ones(20)]
    su, sv = rng.uniform(1.0, 2.0, 15), rng.uniform(0.5, 1.0, 10)
    sw = np.r_[su, su, sv, sv]
    model = LinearSVMLearner(C / 3, warm_start=True).fit(X, y, sw)

    def refused(*args):
        raise AssertionError("libsvm ran")

    monkeypatch.setattr(svm, "_libsvm", refused)
    model.set_params(C=C).fit(X, y, sw)
    a = model.alpha_
    roundoff = 64 * np.finfo(float).eps * np.sum(a * np.linalg.norm(X, axis=1))
    assert model.polished_
    assert np.linalg.norm(model.coef_) <= roundoff
    assert model.intercept_ == pytest.approx(1.0, abs=roundoff * np.abs(X).max() + 1e-15)
    assert np.all(a >= 0) and np.all(a <= C * sw)
    dual = a.sum() - 0.5 * model.coef_ @ model.coef_
    assert dual == pytest.approx(2.0 * C * sw[y < 0].sum(), rel=1e-13)  # = J(w = 0, b = 1)


def test_the_smo_budget_grows_with_the_training_set(mnist_small, monkeypatch):
    """At least SMO_ITER_PER_POINT iterations per point, so a large hard fit is not cut off."""
    from backdoor_curves.learners import _smo

    K, y = _problem(mnist_small, "rbf")
    w = np.ones(len(y))
    start = solve_svm_dual(K, y, 0.3, w, 1e-10)[0]
    budgets, iterate = [], _smo.smo_iterate

    def spy(*args):
        budgets.append(args[-1])
        return iterate(*args)

    monkeypatch.setattr(svm, "SMO_MAX_ITER", 10)
    monkeypatch.setattr(_smo, "smo_iterate", spy)
    assert solve_svm_dual(K, y, 3.0, w, 1e-10, start=start)[2]
    assert budgets[0] == svm.SMO_ITER_PER_POINT * len(y) > 10
