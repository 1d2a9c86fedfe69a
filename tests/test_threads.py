"""BLAS pinning without side effects (backdoor_curves._threads): the package limits BLAS only
while its own computations run, and restores the user's limits whatever the order threads leave."""

import threading

import numpy as np
import pytest
import scipy.linalg  # noqa: F401  (loads scipy's BLAS before the controller scans)
from threadpoolctl import ThreadpoolController, threadpool_limits

from backdoor_curves import LogisticLearner, RBFSVMLearner, learning_curve
from backdoor_curves._threads import BLAS_THREADS, blas_limit

pytestmark = pytest.mark.skipif(BLAS_THREADS <= 0, reason="BLAS pinning switched off")


_CONTROLLER = ThreadpoolController()


def _blas_threads() -> set[int]:
    # one controller, made in the main thread after numpy/scipy loaded BLAS: threadpool_info()
    # called from another thread re-scans the libraries and has read stale counts here
    return {lib["num_threads"] for lib in _CONTROLLER.info() if lib["user_api"] == "blas"}


@pytest.fixture
def two_blas_threads():
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == {2}
        yield


def test_limit_holds_inside_and_the_users_setting_returns_after(two_blas_threads, random_data):
    with blas_limit():
        assert _blas_threads() == {BLAS_THREADS}
        with blas_limit():  # nested: still limited, and leaving it does not restore early
            pass
        assert _blas_threads() == {BLAS_THREADS}
    assert _blas_threads() == {2}
    LogisticLearner(C=1.0).fit(random_data.X_train, random_data.y_train)
    learning_curve(RBFSVMLearner(C=1.0, gamma=0.1), random_data, betas=[0.0, 0.5, 1.0])
    assert _blas_threads() == {2}


def test_threads_leaving_in_any_order_restore_the_users_limits(two_blas_threads):
    """Thread A enters first and leaves first while B is still inside; then B leaves. With a
    save/restore per call, A would restore 2 under B and B would then leave 1 behind for good.
    (Whether a limit set from one thread shows in another depends on the OpenBLAS build, so only
    the process-wide end state is asserted.)"""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a():
        with blas_limit():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with blas_limit():
            b_in.set()
            a_out.wait(5)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert _blas_threads() == {2}
    with blas_limit():  # and the next call still limits
        assert _blas_threads() == {BLAS_THREADS}
    assert _blas_threads() == {2}


def test_a_worker_thread_is_pinned_while_another_thread_controls_openblas(two_blas_threads):
    """threadpoolctl 3.8 lets only the thread that "controls" OpenBLAS change its (process-wide,
    pthreads build) thread count and ignores the others silently. Here the main thread controls
    it (the fixture's threadpool_limits block), as in a grid run on joblib's threading backend:
    the pin must hold inside a worker thread all the same, and afterwards no thread may keep the
    role (the main thread, with the worker still alive, can change and restore its limits)."""
    seen, done, release = [], threading.Event(), threading.Event()

    def worker():
        with blas_limit():
            seen.append(_blas_threads())
            np.linalg.cholesky(np.eye(300) * 2.0)  # some BLAS/LAPACK work under the pin
        seen.append(_blas_threads())
        done.set()
        release.wait(10)  # alive: threadpoolctl would hand the role to no one else

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert done.wait(10)
        assert seen == [{BLAS_THREADS}, {2}]
        other = 3 if BLAS_THREADS != 3 else 4  # neither the pin nor the fixture's 2
        with threadpool_limits(limits=other, user_api="blas"):
            assert _blas_threads() == {other}
        assert _blas_threads() == {2}
    finally:
        release.set()
        thread.join(10)


def test_a_fitted_learner_does_not_carry_its_training_matrix():
    rng = np.random.default_rng(0)
    sizes = []
    for n in (200, 2000):
        X = rng.normal(size=(n, 20))
        y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
        model = LogisticLearner(C=1.0).fit(X, y)
        assert not any(isinstance(v, np.ndarray) and v.size >= X.size for v in vars(model).values())
        sizes.append(len(__import__("pickle").dumps(model)))
    assert sizes[0] == sizes[1]
