"""Backdoor learning curves against scikit-learn re-fits at every beta."""

import numpy as np
import pytest
from oracle import learner_and_estimator, refit
from random_data import random_backdoor_data

from backdoor_curves import (
    CURVE_COLUMNS,
    LogisticLearner,
    RBFSVMLearner,
    default_betas,
    learning_curve,
    parameter_deviation,
)

CASES = [
    ("logistic", 0.1),
    ("logistic", 20.0),
    ("ridge", 0.05),
    ("ridge", 5.0),
    ("linear_svm", 0.02),
    ("linear_svm", 1.0),
    ("rbf_svm", 0.5),
    ("rbf_svm", 10.0),
]


def _oracle_curve(kind, est, data, betas):
    rows = [refit(kind, est, data, b) for b in betas]
    gram = rows[0].get("gram")
    vectors = np.array([r["vector"] for r in rows])
    ref0 = refit(kind, est, data, 0.0)["vector"]
    # deviation written out again: rho = ||w||_K, nu = (1 - cos) / 2
    K = np.eye(vectors.shape[1]) if gram is None else gram
    rho = np.sqrt(np.einsum("ij,jk,ik->i", vectors, K, vectors))
    rho0 = np.sqrt(ref0 @ K @ ref0)
    nu = 0.5 * (1 - (vectors @ K @ ref0) / (rho * rho0))
    return rows, rho, rho / rho0, nu


@pytest.mark.parametrize(("kind", "C"), CASES)
@pytest.mark.parametrize("which", ["random", "mnist"])
def test_curve_equals_sklearn_refits(kind, C, which, mnist_small):
    data = random_backdoor_data(3) if which == "random" else mnist_small
    learner, est = learner_and_estimator(kind, C)
    betas = default_betas()
    frame = learning_curve(learner, data, betas).to_frame()
    rows, rho, rho_ratio, nu = _oracle_curve(kind, est, data, betas)
    assert list(frame.columns) == list(CURVE_COLUMNS)
    np.testing.assert_array_equal(frame["beta"], betas)
    for col in ("backdoor_loss", "clean_loss"):
        np.testing.assert_allclose(frame[col], [r[col] for r in rows], rtol=1e-4, atol=1e-10)
    for col in ("clean_accuracy", "backdoor_accuracy"):
        np.testing.assert_array_equal(frame[col], [r[col] for r in rows])
    np.testing.assert_allclose(frame["rho"], rho, rtol=1e-4)
    np.testing.assert_allclose(frame["rho_ratio"], rho_ratio, rtol=1e-4)
    np.testing.assert_allclose(frame["nu"], nu, rtol=1e-4, atol=1e-7)
    assert frame["nu"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert frame["rho_ratio"].iloc[0] == pytest.approx(1.0)


def test_default_betas_span_both_ends():
    betas = default_betas()
    assert betas.shape == (21,) and betas[0] == 0.0 and betas[-1] == 1.0
    assert np.all(np.diff(betas) > 0)
    assert default_betas(5).shape == (5,)
    with pytest.raises(ValueError, match="n must be"):
        default_betas(1)


def test_betas_in_any_order_and_without_zero(mnist_small):
    learner = LogisticLearner(1.0)
    full = learning_curve(learner, mnist_small, [0.0, 0.2, 0.7, 1.0]).to_frame()
    shuffled = learning_curve(learner, mnist_small, [1.0, 0.2, 0.7]).to_frame()
    np.testing.assert_array_equal(shuffled["beta"], [1.0, 0.2, 0.7])
    expected = full.set_index("beta").loc[[1.0, 0.2, 0.7]]
    np.testing.assert_allclose(
        shuffled.drop(columns="beta").to_numpy(), expected.to_numpy(), rtol=1e-9
    )


def test_backdoor_is_learned_along_the_curve(mnist_small):
    """Sanity of the physics: more poison weight, lower backdoor loss, higher attack success."""
    frame = learning_curve(LogisticLearner(10.0), mnist_small, [0.0, 1.0]).to_frame()
    assert frame["backdoor_loss"].iloc[1] < frame["backdoor_loss"].iloc[0]
    assert frame["backdoor_accuracy"].iloc[1] > frame["backdoor_accuracy"].iloc[0]
    assert frame["clean_accuracy"].min() > 0.9


def test_rbf_deviation_uses_the_rkhs_norm(mnist_small):
    curve = learning_curve(RBFSVMLearner(1.0, gamma=0.05), mnist_small, [0.0, 0.5])
    assert curve["nu"][1] > 0 and curve["rho"][1] > 0


def test_parameter_deviation_closed_form():
    w0 = np.array([1.0, 0.0])
    W = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    out = parameter_deviation(W, w0)
    np.testing.assert_allclose(out["rho"], [2, 3, 1])
    np.testing.assert_allclose(out["rho_ratio"], [2, 3, 1])
    np.testing.assert_allclose(out["nu"], [0.0, 0.5, 1.0], atol=1e-15)
    K = np.array([[2.0, 0.0], [0.0, 0.5]])
    out = parameter_deviation(W, w0, K)
    np.testing.assert_allclose(out["rho"], [np.sqrt(8), np.sqrt(4.5), np.sqrt(2)])
    with pytest.raises(ValueError, match="columns"):
        parameter_deviation(np.ones((2, 3)), w0)


@pytest.mark.parametrize(
    ("betas", "exc", "match"),
    [
        ([0.0, 1.5], ValueError, r"betas must lie in \[0, 1\]"),
        ([-0.1], ValueError, r"betas must lie in \[0, 1\]"),
        ([0.0, np.nan], ValueError, "betas contains NaN"),
        (["a"], TypeError, "betas must hold real numbers"),
        ([[0.1, 0.2], [0.3, 0.4]], ValueError, "betas must be 1-D"),
        ([], ValueError, "betas must contain"),
    ],
)
def test_bad_betas(betas, exc, match, mnist_small):
    with pytest.raises(exc, match=match):
        learning_curve(LogisticLearner(), mnist_small, betas)


def test_bad_learner_and_data(mnist_small):
    with pytest.raises(TypeError, match="learner must be"):
        learning_curve(object(), mnist_small)
    with pytest.raises(TypeError, match="data must be a BackdoorData"):
        learning_curve(LogisticLearner(), {"X": 1})


def test_results_carry_all_learner_parameters(mnist_small):
    from backdoor_curves import backdoor_slope

    learner = RBFSVMLearner(2.0)  # default gamma: absent from the repr, present in params
    curve = learning_curve(learner, mnist_small, [0.0, 1.0])
    slope = backdoor_slope(learner, mnist_small)
    assert curve.params == slope.params == learner.get_params()
    assert curve.params["gamma"] == 0.01 and "gamma" not in curve.learner


@pytest.mark.parametrize(
    ("learner", "method", "desc"),
    [
        (LogisticLearner(1.0), "path", "LogisticLearner exact path"),
        (RBFSVMLearner(1.0, gamma=0.05), "auto", "RBFSVMLearner exact path"),
        (LogisticLearner(1.0), "refit", "LogisticLearner re-fits"),
    ],
)
def test_progress_bar_for_every_method(mnist_small, capsys, learner, method, desc):
    betas = [0.0, 0.5, 1.0]
    quiet = learning_curve(learner, mnist_small, betas, method=method)
    assert capsys.readouterr().err == ""
    shown = learning_curve(learner, mnist_small, betas, method=method, progress=True)
    err = capsys.readouterr().err
    assert desc in err and "0/3" in err
    if method != "refit":
        assert "3/3" in err  # the path's bar is filled when the path ends
    if isinstance(learner, RBFSVMLearner):
        assert f"events={len(shown.events)}" in err
    np.testing.assert_array_equal(shown["backdoor_loss"], quiet["backdoor_loss"])
