"""Factorizations: solves, condition numbers, and loud failures instead of pseudo-inverses."""

import warnings

import numpy as np
import pytest

from backdoor_curves.linalg import (
    CholeskySolver,
    IllConditionedWarning,
    LUSolver,
    SingularSystemError,
)


def test_cholesky_solves_many_right_hand_sides_and_estimates_cond():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(60, 20))
    H = A.T @ A + 0.1 * np.eye(20)
    B = rng.normal(size=(20, 4))
    solver = CholeskySolver(H)
    np.testing.assert_allclose(H @ solver.solve(B), B, atol=1e-10)
    exact = np.linalg.cond(H, 1)
    assert exact / 3 <= solver.condition_number <= exact * 1.0001


def test_not_positive_definite_raises():
    with pytest.raises(SingularSystemError, match="not positive definite"):
        CholeskySolver(np.diag([1.0, -1.0]))


def test_ill_conditioned_warns():
    with pytest.warns(IllConditionedWarning, match="condition number"):
        CholeskySolver(np.diag([1.0, 1e-14]))


def test_lu_indefinite_and_singular():
    K = np.array([[2.0, 1.0, 1.0], [1.0, 3.0, -1.0], [1.0, -1.0, 0.0]])  # bordered, indefinite
    b = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(K @ LUSolver(K).solve(b), b, atol=1e-12)
    with pytest.raises(SingularSystemError, match="singular"):
        LUSolver(np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))


def test_single_precision_cholesky_solves_to_its_precision():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(80, 30))
    H = A.T @ A + 0.5 * np.eye(30)
    b = rng.normal(size=30)
    solver = CholeskySolver(H, single=True)
    x = solver.solve(b)
    assert x.dtype == np.float64
    exact = np.linalg.solve(H, b)
    error = np.linalg.norm(x - exact) / np.linalg.norm(exact)
    assert 0 < error <= 10 * np.finfo(np.float32).eps * solver.condition_number
    assert np.linalg.cond(H, 1) / 3 <= solver.condition_number <= np.linalg.cond(H, 1) * 1.01


def test_the_warning_states_the_threshold():
    from backdoor_curves.linalg import ILL_CONDITIONED

    assert ILL_CONDITIONED == 1e12
    with pytest.warns(IllConditionedWarning, match=r"number 1e\+14 > 1e\+12"):
        CholeskySolver(np.diag([1.0, 1e-14]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CholeskySolver(np.diag([1.0, 1e-11]))  # below the threshold: silent


def test_cholesky_scaling_keeps_the_digits_of_badly_scaled_matrices():
    """D A D with D over 16 orders of magnitude: exact through the Jacobi scaling."""
    rng = np.random.default_rng(2)
    B = rng.normal(size=(40, 8))
    A = B.T @ B / 40 + 0.1 * np.eye(8)  # well-conditioned
    d = 10.0 ** np.linspace(-8, 8, 8)
    H = A * d[:, None] * d[None, :]
    b = rng.normal(size=8)
    with pytest.warns(IllConditionedWarning):
        solver = CholeskySolver(H)
    exact = np.linalg.solve(A, b / d) / d  # H^{-1} b = D^{-1} A^{-1} D^{-1} b
    np.testing.assert_allclose(solver.solve(b), exact, rtol=1e-12)
    assert solver.condition_number > 1e30  # that of H itself, reported as is
    assert solver.scaled_condition_number < 100  # what the solve lost
    R = solver.upper_factor()
    np.testing.assert_allclose(R.T @ R, H, rtol=1e-12, atol=0)


def test_lu_equilibration_solves_kernels_bordered_by_labels():
    """[[Q, y], [y^T, 0]] with Q of size 1e16: solved, no longer refused as singular."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(4, 6)), np.array([1.0, -1.0, 1.0, -1.0])

    def bordered(scale):
        Q = np.outer(y, y) * ((scale * X) @ (scale * X).T)
        H = np.zeros((5, 5))
        H[:4, :4], H[:4, 4], H[4, :4] = Q, y, y
        return H

    rhs = np.r_[rng.normal(size=4), 0.0]
    at_one = np.linalg.solve(bordered(1.0), rhs)
    with pytest.warns(IllConditionedWarning):
        solver = LUSolver(bordered(1e8))
    # scaling X by s scales the duals by 1 / s^2 and leaves b (rhs with y^T a = 0)
    np.testing.assert_allclose(solver.solve(rhs), np.r_[at_one[:4] / 1e16, at_one[4]], rtol=1e-12)
    assert solver.scaled_condition_number < 1e3 < 1e12 < solver.condition_number


def test_lu_condition_number_is_that_of_the_matrix():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(12, 12)) * (10.0 ** rng.uniform(-3, 3, 12))[:, None]
    solver = LUSolver(A)
    exact = np.linalg.cond(A, 1)
    assert exact / 3 <= solver.condition_number <= exact * 1.0001
    b = rng.normal(size=(12, 2))
    np.testing.assert_allclose(A @ solver.solve(b), b, atol=1e-10 * np.abs(b).max() * exact)


def test_non_finite_matrices_are_refused():
    for factorize in (CholeskySolver, LUSolver):
        with pytest.raises(SingularSystemError, match="NaN or infinite entries"):
            factorize(np.array([[1.0, np.inf], [np.inf, 1.0]]))


def test_condition_numbers_can_wait_until_asked():
    """estimate_condition=False: the same estimates (and the warning) on first access."""
    A = np.diag([1.0, 1e-14])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing estimated, so nothing to warn about yet
        lazy = CholeskySolver(A, "H", estimate_condition=False)
    with pytest.warns(IllConditionedWarning, match="H is ill-conditioned"):
        eager = CholeskySolver(A, "H")
    with pytest.warns(IllConditionedWarning, match="H is ill-conditioned"):
        assert lazy.condition_number == eager.condition_number == pytest.approx(1e14)
    assert lazy.scaled_condition_number == eager.scaled_condition_number
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # estimated once
        assert lazy.condition_number == eager.condition_number


def test_a_renamed_solver_shares_its_factor_and_warns_under_its_new_name():
    A = np.diag([1.0, 1e-14])
    solver = CholeskySolver(A, "Hessian", estimate_condition=False)
    renamed = solver.named("Hessian H0")
    assert renamed.upper_factor() is not None and renamed._factor is solver._factor
    np.testing.assert_array_equal(renamed.solve(np.ones(2)), solver.solve(np.ones(2)))
    with pytest.warns(IllConditionedWarning, match="Hessian H0 is ill-conditioned"):
        assert renamed.condition_number == pytest.approx(1e14)
    # each caller of a shared factorization is warned, even under the same name
    with pytest.warns(IllConditionedWarning, match="Hessian H0 is ill-conditioned"):
        assert renamed.named("Hessian H0").condition_number == pytest.approx(1e14)


def test_a_shared_kkt_factorization_warns_every_caller():
    from backdoor_curves.learners.pairwise import PairwiseCache, shared_pairwise
    from backdoor_curves.learners.svm import kkt_solver

    rows = np.array([[1.0, 0.0], [0.0, 1.0]])
    H = np.diag([1.0, 1e-14])  # condition number 1e14 (1 after equilibration)
    with shared_pairwise(None, cache=PairwiseCache(rows, n_train=2)):
        first, second = kkt_solver(H), kkt_solver(H)
        assert first._factor is second._factor  # factorized once
        for solver in (first, second):
            with pytest.warns(IllConditionedWarning, match="SVM KKT matrix is ill-conditioned"):
                assert solver.condition_number > 1e12
