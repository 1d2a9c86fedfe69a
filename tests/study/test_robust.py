"""The robust region of a regularization grid (backdoor_curves.study.robust)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backdoor_curves.study.robust import robust_points, robust_region, robust_summary


@pytest.fixture
def grid():
    return pd.DataFrame(
        {
            "learner": ["a", "a", "a", "a", "b", "b"],
            "lambda": [0.1, 1.0, 10.0, 100.0, 1.0, 10.0],
            "score": [0.99, 0.9, 0.3, 0.1, 0.9, np.nan],
            "clean_accuracy": [0.99, 0.99, 0.975, 0.90, 0.95, np.nan],
            "backdoor_accuracy": [0.98, 0.50, 0.05, 0.02, 0.9, np.nan],
        }
    )


def test_robust_summary_criteria(grid):
    assert robust_points(grid).index.tolist() == [2]  # 100: clean accuracy dropped too far
    region = robust_summary(grid).set_index("learner")
    assert region.loc["a", ["n_robust", "lambda_min", "lambda_max"]].tolist() == [1, 10.0, 10.0]
    assert region.loc["b", "n_robust"] == 0 and np.isnan(region.loc["b", "lambda_min"])


def test_thresholds_are_parameters(grid):
    assert robust_points(grid, clean_drop=0.1).index.tolist() == [2, 3]
    assert robust_points(grid, clean_drop=0.1, max_backdoor_accuracy=0.03).index.tolist() == [3]
    region = robust_summary(grid, clean_drop=0.1).set_index("learner")
    assert region.loc["a", ["n_robust", "lambda_min", "lambda_max"]].tolist() == [2, 10.0, 100.0]
    assert region.loc["a", "clean_accuracy_min"] == 0.90
    assert region.loc["a", "backdoor_accuracy_max"] == 0.05
    assert region.loc["a", "score_max"] == 0.3
    assert region["n_points"].tolist() == [4, 2]
    assert region["best_clean_accuracy"].tolist()[0] == 0.99


def test_absolute_criteria_and_recommendation(grid):
    region = robust_region(grid, min_clean_accuracy=0.9, max_backdoor_accuracy=0.5)
    # a at lambda 1, 10, 100 qualify (b fails on backdoor accuracy; its NaN row never qualifies)
    assert region.points.index.tolist() == [1, 2, 3]
    assert region.recommended.name == 1  # the most accurate on clean data among those that resist
    assert region.criteria == {
        "min_clean_accuracy": 0.9,
        "clean_drop": None,
        "max_backdoor_accuracy": 0.5,
    }
    # both criteria at once: absolute and relative
    both = robust_region(grid, min_clean_accuracy=0.9, clean_drop=0.01, max_backdoor_accuracy=0.5)
    assert both.points.index.tolist() == [1]


def test_recommendation_ties_and_empty(grid):
    tie = grid.assign(clean_accuracy=[0.99, 0.99, 0.99, 0.5, 0.5, 0.5])
    region = robust_region(tie, min_clean_accuracy=0.9, max_backdoor_accuracy=0.6)
    assert region.recommended.name == 2  # equal clean accuracy: the lower backdoor accuracy
    none = robust_region(grid, min_clean_accuracy=0.999)
    assert none.points.empty and none.recommended is None
    assert none.summary["n_robust"].tolist() == [0, 0]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"min_clean_accuracy": 1.5}, "min_clean_accuracy"),
        ({"max_backdoor_accuracy": -0.1}, "max_backdoor_accuracy"),
        ({"clean_drop": "x"}, "clean_drop"),
    ],
)
def test_bad_thresholds_named(grid, kwargs, error):
    with pytest.raises((ValueError, TypeError), match=error):
        robust_region(grid, **kwargs)
