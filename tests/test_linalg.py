"""Factorizations: solves, condition numbers, and loud failures instead of pseudo-inverses."""

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
