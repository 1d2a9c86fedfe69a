"""Paper 001's qualitative findings, checked on the embedded MNIST 7 vs 1 with the experiment
configurations of ``experiments/`` (first 400 training / 200 test digits, to stay fast).

How steep a backdoor learning curve is, is measured twice: at beta = 0 by the slope (the
derivative dL(V_t)/dbeta, more negative = steeper; the score is a monotone transform of it), and
over the whole curve by ``steepness = mean over the curve's betas of 1 - L(V_t, beta) / L(V_t, 0)``
(0 for a flat curve; the betas are log-spaced, so how early the backdoor loss falls dominates).
The loss at beta = 1 alone is not a measure of steepness: curves that both learn the backdoor
end on similar plateaus.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from backdoor_curves.study.config import parse_config
from backdoor_curves.study.robust import robust_points, robust_region

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def run_experiment(name: str, grid=None, **study):
    """The experiment's table on the first 400 / 200 digits (``study`` overrides ``[study]``,
    ``grid`` entries of ``[grid]``)."""
    with open(EXPERIMENTS / name, "rb") as f:
        raw = tomllib.load(f)
    raw["data"].update(n_train=400, n_test=200)
    raw.setdefault("study", {}).update(study)
    raw.setdefault("grid", {}).update(grid or {})
    table = parse_config(raw).run(n_jobs=1)
    assert (table["error"] == "").all(), table["error"].tolist()
    return table


def steepness(row) -> float:
    """Mean relative drop of the backdoor loss over the curve (see the module docstring)."""
    loss = np.asarray(row["curve_backdoor_loss"])
    return float(np.mean(1.0 - loss[1:] / loss[0]))


@pytest.fixture(scope="module")
def regularization():
    return run_experiment("mnist_curves_regularization.toml", betas=11)


def test_stronger_regularization_flattens_the_curve_and_lowers_the_score(regularization):
    checked = 0
    for (learner, gamma), rows in regularization.groupby(
        ["learner", regularization["gamma"].fillna(0)]
    ):
        strong, weak = rows.sort_values("lambda", ascending=False).iloc[[0, -1]].iterrows()
        strong, weak = strong[1], weak[1]
        assert strong["lambda"] > weak["lambda"]
        assert strong["score"] < weak["score"], learner
        assert steepness(strong) < steepness(weak), (learner, gamma)
        loss = (strong["curve_backdoor_loss"], weak["curve_backdoor_loss"])
        assert loss[0][0] - loss[0][-1] < loss[1][0] - loss[1][-1], learner  # smaller total drop
        # the parameters move less, too (paper Fig. 9-11)
        assert strong["nu_1"] < weak["nu_1"], learner
        checked += 1
    assert checked == 5  # linear SVM, logistic, ridge, RBF SVM at two gammas


def test_smaller_gamma_flattens_the_rbf_curve(regularization):
    rbf = regularization[regularization["learner"] == "RBF SVM"]
    for _, rows in rbf.groupby("C"):
        small, large = (r for _, r in rows.sort_values("gamma").iterrows())
        assert small["gamma"] < large["gamma"]
        assert small["derivative"] > large["derivative"]
        assert small["score"] < large["score"]
        assert steepness(small) < steepness(large)


def test_larger_poisoning_fraction_steepens_the_curve():
    table = run_experiment("mnist_curves_fraction.toml", betas=11)
    for learner, rows in table.groupby("learner"):
        rows = rows.sort_values("fraction")
        assert rows["fraction"].tolist() == [0.01, 0.1, 0.2]
        assert np.all(np.diff(rows["derivative"]) < 0), learner
        assert np.all(np.diff([steepness(r) for _, r in rows.iterrows()]) > 0), learner
        assert np.all(np.diff(rows["backdoor_accuracy"]) >= 0), learner


def test_larger_trigger_steepens_the_curve():
    table = run_experiment("mnist_curves_trigger.toml", betas=11)
    for learner, rows in table.groupby("learner"):
        small, large = (r for _, r in rows.sort_values("size").iterrows())
        assert (small["size"], large["size"]) == (3, 6)
        assert small["derivative"] > large["derivative"], learner
        assert steepness(small) < steepness(large), learner


@pytest.mark.slow
def test_a_robust_region_exists():
    table = run_experiment("mnist_rbf_heatmap.toml")
    region = robust_region(table, min_clean_accuracy=0.97, max_backdoor_accuracy=0.1)
    best = region.recommended
    assert best is not None and len(region.points) >= 3
    assert best["clean_accuracy"] >= 0.97 and best["backdoor_accuracy"] <= 0.1
    assert best["clean_accuracy"] == region.points["clean_accuracy"].max()
    # not trivially robust: the least regularized, widest kernels learn the backdoor
    assert table["backdoor_accuracy"].max() > 0.9


@pytest.mark.slow
def test_a_larger_trigger_shrinks_the_robust_region():
    table = run_experiment("mnist_slope_pairs_triggers.toml", grid={"digits": [[7, 1]]})
    counts = {size: len(robust_points(rows)) for size, rows in table.groupby("size")}
    assert 0 < counts[6] < counts[3], counts
