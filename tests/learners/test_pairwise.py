"""Shared pairwise products (backdoor_curves.learners.pairwise): blocks equal to the kernels
computed directly, rows found bit for bit or not at all, fresh copies, the memory budget."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel

import backdoor_curves as bc
from backdoor_curves._memory import MemoryBudgetError, check_matrix_size, memory_budget_context
from backdoor_curves.learners.pairwise import (
    PairwiseCache,
    active_cache,
    make_cache,
    pairwise_rows,
    shared_pairwise,
)


@pytest.fixture
def cache(mnist_small):
    rows, n_train = pairwise_rows(mnist_small)
    return PairwiseCache(rows, n_train)


def test_blocks_equal_direct_kernels(mnist_small, cache):
    X, V, Vt = mnist_small.X_train, mnist_small.X_test, mnist_small.X_test_bd
    rng = np.random.default_rng(0)
    sub = X[np.sort(rng.choice(len(X), 37, replace=False))]
    for A, B in [(X, X), (V, X), (Vt, sub), (sub, sub), (X, Vt), (sub, V)]:
        np.testing.assert_allclose(cache.inner(A, B), A @ B.T, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            cache.sqdist(A, B), euclidean_distances(A, B, squared=True), rtol=1e-9, atol=1e-9
        )
        K = cache.kernel(("rbf", 0.05), "sqdist", lambda S: np.exp(-0.05 * S), A, B)
        np.testing.assert_allclose(K, rbf_kernel(A, B, gamma=0.05), rtol=1e-12, atol=1e-15)
    assert cache.misses == 0 and cache.hits == 18
    # a row with itself is at distance exactly 0, its RBF kernel exactly 1
    assert np.all(np.diag(cache.sqdist(X, X)) == 0.0)


def test_rows_not_in_the_data_are_left_to_the_caller(mnist_small, cache):
    X, V = mnist_small.X_train, mnist_small.X_test
    changed = X[:5].copy()
    changed[0, 0] = np.nextafter(changed[0, 0], 2.0)  # one bit off
    assert cache.inner(changed, X) is None
    assert cache.inner(V, V) is None  # neither side is made of training rows
    assert cache.inner(X[:, :10], X[:, :10]) is None  # other features
    assert cache.inner(X.astype(np.float32), X) is None  # other dtype
    assert cache.misses == 4
    negzero = X[:3].copy()
    negzero[negzero == 0.0] = -0.0  # equal values, other bits: served or not, never wrong
    served = cache.inner(negzero, X)
    if served is not None:
        np.testing.assert_array_equal(served, cache.inner(X[:3], X))
    assert cache.inner(X[:0], X).shape == (0, len(X))


def test_duplicate_rows_resolve_to_the_training_row():
    rng = np.random.default_rng(1)
    T = rng.random((6, 4))
    rows = np.vstack([T, T[2:3], rng.random((2, 4))])  # a test row equal to training row 2
    cache = PairwiseCache(rows, 6)
    np.testing.assert_array_equal(cache.locate(rows[6:7], train=True), [2])
    assert cache.locate(rows[7:9], train=True) is None
    np.testing.assert_array_equal(cache.locate(rows[7:9]), [7, 8])


def test_blocks_cannot_corrupt_the_cache(mnist_small, cache):
    """A block is a fresh copy, or a read-only view (a whole run of rows and columns)."""
    X = mnist_small.X_train
    for block in (
        cache.kernel(("rbf", 0.1), "sqdist", lambda S: np.exp(-0.1 * S), X, X),
        cache.inner(X, X),
    ):
        assert not np.shares_memory(block, X)
        with pytest.raises(ValueError, match="read-only"):
            block[:] = -1.0
    assert np.all(cache.kernel(("rbf", 0.1), "sqdist", lambda S: np.exp(-0.1 * S), X, X) > 0)
    # the clean block K[D, D] of the training products: a view whose rows are contiguous (row
    # stride n_train), not a copy, and read-only as well
    D = mnist_small.X_clean
    block = cache.inner(D, D)
    assert not block.flags.c_contiguous and block.strides == (8 * len(X), 8)
    assert np.shares_memory(block, cache.inner(X, X))
    with pytest.raises(ValueError, match="read-only"):
        block[0, 0] = -1.0
    np.testing.assert_allclose(block, D @ D.T, rtol=1e-12, atol=1e-12)
    picked = cache.inner(X[[3, 1, 2]], X)  # not a run of rows: a copy, free to modify
    picked[:] = 0.0
    np.testing.assert_allclose(cache.inner(X[[3]], X), X[[3]] @ X.T, rtol=1e-13)


@pytest.mark.parametrize(
    "learner", [bc.LinearSVMLearner(C=2.0), bc.RBFSVMLearner(C=2.0, gamma=0.05)], ids=repr
)
def test_learners_under_a_shared_cache_match_direct_kernels(mnist_small, learner):
    direct = bc.backdoor_slope(learner, mnist_small)
    curve = bc.learning_curve(learner, mnist_small, betas=[0.0, 0.5, 1.0])
    assert active_cache() is None
    with shared_pairwise(mnist_small) as cache:
        assert active_cache() is cache
        shared = bc.backdoor_slope(learner, mnist_small)
        shared_curve = bc.learning_curve(learner, mnist_small, betas=[0.0, 0.5, 1.0])
    assert active_cache() is None
    assert cache.hits > 0 and cache.misses == 0
    assert shared.derivative == pytest.approx(direct.derivative, rel=1e-10)
    for column in ("backdoor_loss", "clean_accuracy", "backdoor_accuracy"):
        np.testing.assert_allclose(shared_curve[column], curve[column], rtol=1e-10)


def test_memory_budget(mnist_small):
    with memory_budget_context(10_000):
        assert make_cache(mnist_small) is None  # the cache only saves time: it stays off
        with pytest.raises(MemoryBudgetError, match=r"needs .* over the memory budget of 9\.8 KiB"):
            bc.RBFSVMLearner().fit(mnist_small.X_train, mnist_small.y_train)
        with pytest.raises(MemoryBudgetError, match=r"the Hessian \(2000 x 2000\) needs 30\.5 MiB"):
            check_matrix_size((2000, 2000), "the Hessian")
    with pytest.raises(ValueError, match="memory_budget must be a positive"):
        memory_budget_context(-1).__enter__()
    with pytest.raises(TypeError, match="memory_budget must be a number"):
        memory_budget_context("1GB").__enter__()


def test_copies_and_subsets_are_found_without_a_search(mnist_small, cache, monkeypatch):
    from backdoor_curves.learners import pairwise

    X = mnist_small.X_train
    n_clean = mnist_small.n_clean
    # copies of whole blocks (D + P, D, V_t) are runs of consecutive rows
    np.testing.assert_array_equal(cache.locate(X.copy()), np.arange(len(X)))
    np.testing.assert_array_equal(cache.locate(mnist_small.X_clean.copy()), np.arange(n_clean))
    start = len(X) + len(mnist_small.X_test)
    np.testing.assert_array_equal(
        cache.locate(mnist_small.X_test_bd.copy()),
        np.arange(start, start + len(mnist_small.X_test_bd)),
    )
    # subsets taken with take_rows (and validated copies, same_rows) inherit their parent's rows
    searches = []
    real = pairwise.PairwiseCache._keys

    def counting(self, A):
        searches.append(len(A))
        return real(self, A)

    with shared_pairwise(mnist_small, cache):
        rows = np.array([5, 3, 150, 7])
        sub = pairwise.take_rows(X, rows)
        monkeypatch.setattr(pairwise.PairwiseCache, "_keys", counting)
        np.testing.assert_array_equal(cache.locate(sub), rows)
        copy = pairwise.same_rows(sub.copy(), sub)
        np.testing.assert_array_equal(cache.locate(copy), rows)
    assert searches == []


def test_memoize_shares_a_result_for_equal_inputs(cache):
    rng = np.random.default_rng(2)
    A, w = rng.random((30, 5)), rng.random(30)
    calls = []

    def gram(A, w):
        calls.append(1)
        return (A * w[:, None]).T @ A

    first = cache.memoize("gram", (A, w), gram)
    again = cache.memoize("gram", (A.copy(), w.copy()), gram)  # equal contents: shared
    assert again is first and len(calls) == 1
    w2 = w.copy()
    w2[0] = np.nextafter(w2[0], 2.0)
    other = cache.memoize("gram", (A, w2), gram)  # one bit off: computed again
    assert len(calls) == 2 and other is not first


def test_hessians_respect_the_memory_budget(mnist_small):
    # the Hessian of the 141 pixels that are not 0 everywhere needs 155 KiB
    hessian = r"the Hessian \(141 x 141\) needs 155\.3 KiB"
    with memory_budget_context(100_000), pytest.raises(MemoryBudgetError, match=hessian):
        bc.LogisticLearner().fit(mnist_small.X_train, mnist_small.y_train)
    with memory_budget_context(400_000):  # enough: the same numbers as without a budget
        fitted = bc.LogisticLearner().fit(mnist_small.X_train, mnist_small.y_train)
    reference = bc.LogisticLearner().fit(mnist_small.X_train, mnist_small.y_train)
    np.testing.assert_array_equal(fitted.coef_, reference.coef_)


def test_memo_keys_do_not_depend_on_the_memory_layout(mnist_small):
    """A Fortran-ordered copy (e.g. ``Xa[:, active]``) finds what a C-ordered one memoized."""
    X = np.ascontiguousarray(mnist_small.X_clean[:, 100:300])
    calls = []

    def gram(A):
        calls.append(1)
        return A.T @ A

    with shared_pairwise(mnist_small) as cache:
        first = cache.memoize("gram", (X,), gram)
        again = cache.memoize("gram", (np.asfortranarray(X),), gram)
        other = cache.memoize("gram", (np.asfortranarray(X[::-1]),), gram)
    assert again is first and len(calls) == 2  # the reversed rows are another matrix
    np.testing.assert_allclose(other, first, rtol=1e-13)  # the same Gram, summed in another order


def test_groups_of_test_rows_are_filled_when_needed_with_the_same_bits(mnist_small):
    rows, n_train = pairwise_rows(mnist_small)
    split = n_train + len(mnist_small.X_test)
    X, V, Vt = mnist_small.X_train, mnist_small.X_test, mnist_small.X_test_bd
    lazy = PairwiseCache(rows, n_train, groups=(split,))
    whole = PairwiseCache(rows, n_train)
    first = lazy.inner(Vt, X)  # V_t's group alone
    assert lazy._group_done.tolist() == [False, True]
    np.testing.assert_array_equal(first, whole.inner(Vt, X))
    np.testing.assert_array_equal(lazy.inner(V, X[:7]), whole.inner(V, X[:7]))
    assert lazy._group_done.all()
    np.testing.assert_array_equal(lazy.sqdist(V, X), whole.sqdist(V, X))
