"""The robust region of a grid (backdoor_curves.study.robust): rows, settings over seeds, the
border distance and the recommendation, on hand-built tables with hand-computed answers."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from backdoor_curves.study.robust import (
    failed_rows,
    robust_points,
    robust_region,
    robust_summary,
    setting_columns,
)


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
    assert region[["n_settings", "n_robust_settings"]].values.tolist() == [[4, 1], [2, 0]]


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
    # without a seed or parameter column each row is a setting along the lambda axis; lambda 10
    # has robust neighbours on both sides (distance 2), lambda 1 and 100 border the region
    assert region.settings["border_distance"].tolist() == [0, 1, 2, 1, 0, 0]
    assert region.recommended.name == 2
    assert region.criteria == {
        "min_clean_accuracy": 0.9,
        "clean_drop": None,
        "max_backdoor_accuracy": 0.5,
        "seed_share": 1.0,
        "by": ("learner", "lambda"),
    }
    # both criteria at once: absolute and relative
    both = robust_region(grid, min_clean_accuracy=0.9, clean_drop=0.01, max_backdoor_accuracy=0.5)
    assert both.points.index.tolist() == [1]


def test_recommendation_ties_and_empty(grid):
    tie = grid.assign(clean_accuracy=[0.99, 0.99, 0.99, 0.5, 0.5, 0.5])
    region = robust_region(tie, min_clean_accuracy=0.9, max_backdoor_accuracy=0.6)
    # lambda 1 and 10 are both one step from the border, equally accurate on clean data:
    # the lower backdoor accuracy wins
    assert region.settings.loc[[1, 2], "border_distance"].tolist() == [1, 1]
    assert region.recommended.name == 2
    none = robust_region(grid, min_clean_accuracy=0.999)
    assert none.points.empty and none.recommended is None
    assert none.summary["n_robust"].tolist() == [0, 0]
    assert not none.settings["robust"].any()
    assert (none.settings["border_distance"] == 0).all()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"min_clean_accuracy": 1.5}, "min_clean_accuracy"),
        ({"max_backdoor_accuracy": -0.1}, "max_backdoor_accuracy"),
        ({"max_backdoor_accuracy": None}, "max_backdoor_accuracy"),
        ({"clean_drop": "x"}, "clean_drop"),
        ({"seed_share": 0.0}, "seed_share"),
        ({"seed_share": 1.5}, "seed_share"),
        ({"seed_share": True}, "seed_share"),
        ({"seed_share": "all"}, "seed_share"),
        ({"by": "C"}, "by"),
        ({"by": ["C", 3]}, "by"),
        ({"by": ["no_such_column"]}, "by"),
    ],
)
def test_bad_arguments_named(grid, kwargs, error):
    with pytest.raises((ValueError, TypeError), match=error):
        robust_region(grid, **kwargs)


def test_table_checked():
    with pytest.raises(TypeError, match="table"):
        robust_region([1, 2])
    with pytest.raises(ValueError, match="backdoor_accuracy"):
        robust_region(pd.DataFrame({"learner": ["a"], "clean_accuracy": [1.0]}))


# ---------------------------------------------------------------------------- seeds
def seeded_table() -> pd.DataFrame:
    """Two learners laid out as grid_study lays them out: learner, parameters, random_state."""
    rows = [
        # learner, C, gamma, fraction, seed, clean, backdoor, score, error
        ("rbf", 1.0, 0.1, 0.1, 0, 0.96, 0.05, 0.25, ""),
        ("rbf", 1.0, 0.1, 0.1, 1, 0.98, 0.03, 0.75, ""),
        ("rbf", 1.0, 0.1, 0.1, 2, 0.94, 0.20, 0.50, ""),  # resists less
        ("rbf", 10.0, 0.1, 0.1, 0, 0.99, 0.08, 0.5, ""),
        ("rbf", 10.0, 0.1, 0.1, 1, 0.99, 0.02, 0.5, "curve: ValueError: only the curve"),
        ("logistic", 1.0, np.nan, 0.1, 0, 0.97, 0.01, 0.5, ""),
        ("logistic", 1.0, np.nan, 0.1, 1, np.nan, np.nan, np.nan, "fit at beta=1: boom"),
        ("logistic", 1.0, np.nan, 0.2, 0, 0.97, 0.02, 0.5, ""),
        ("logistic", 1.0, np.nan, 0.2, 1, 0.97, 0.04, 0.5, ""),
    ]
    columns = [
        "learner", "C", "gamma", "fraction", "random_state", "clean_accuracy",
        "backdoor_accuracy", "score", "error",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    table.insert(5, "lambda", 1.0 / table["C"])
    return table


def test_settings_aggregate_over_seeds():
    table = seeded_table()
    assert setting_columns(table) == ["learner", "C", "gamma", "fraction"]
    region = robust_region(table, min_clean_accuracy=0.9, max_backdoor_accuracy=0.1)
    s = region.settings
    # one row per setting, in order of first appearance, labelled by its first row
    assert s.index.tolist() == [0, 3, 5, 7]
    assert s["learner"].tolist() == ["rbf", "rbf", "logistic", "logistic"]
    assert s["fraction"].tolist() == [0.1, 0.1, 0.1, 0.2]
    assert s["lambda"].tolist() == [1.0, 0.1, 1.0, 1.0]
    assert s["n_seeds"].tolist() == [3, 2, 2, 2]
    assert s["n_hold"].tolist() == [2, 2, 1, 2]
    assert s["n_failed"].tolist() == [0, 0, 1, 0]  # a failed curve alone is no failure
    assert s["share"].tolist() == pytest.approx([2 / 3, 1.0, 0.5, 1.0])
    assert s["robust"].tolist() == [False, True, False, True]
    first = s.loc[0]
    assert first["clean_accuracy_mean"] == pytest.approx(0.96)
    assert (first["clean_accuracy_min"], first["clean_accuracy_max"]) == (0.94, 0.98)
    assert first["backdoor_accuracy_mean"] == pytest.approx(0.28 / 3)
    assert (first["backdoor_accuracy_min"], first["backdoor_accuracy_max"]) == (0.03, 0.20)
    assert first["score_mean"] == 0.5 and first["score_std"] == 0.25  # sample std (ddof=1)
    assert s.loc[3, "score_std"] == 0.0
    # statistics skip the failed seed; the grid table's names hold the means too
    assert s.loc[5, "clean_accuracy_mean"] == 0.97 and np.isnan(s.loc[5, "score_std"])
    assert (s["clean_accuracy"] == s["clean_accuracy_mean"]).all()
    assert (s["score"] == s["score_mean"]).all()
    assert s["robust"].dtype == bool and s["border_distance"].dtype.kind == "i"
    # points keep meaning the rows that hold, seed by seed
    assert region.points.index.tolist() == [0, 1, 3, 4, 5, 7, 8]
    assert region.recommended.name == 3  # rbf C=10 (logistic fraction 0.2: lower clean mean)
    summary = region.summary.set_index("learner")
    assert summary.loc["rbf", ["n_settings", "n_robust_settings"]].tolist() == [2, 1]


def test_seed_share():
    table = seeded_table()
    kwargs = {"min_clean_accuracy": 0.9, "max_backdoor_accuracy": 0.1}
    assert robust_region(table, seed_share=0.6, **kwargs).settings["robust"].tolist() == [
        True, True, False, True,
    ]  # fmt: skip
    assert robust_region(table, seed_share=0.7, **kwargs).settings["robust"].tolist() == [
        False, True, False, True,
    ]  # fmt: skip
    half = robust_region(table, seed_share=0.5, **kwargs)
    # logistic fraction 0.1 holds on half its seeds but one failed: robust, never recommended
    assert half.settings.loc[5, "robust"] and half.settings.loc[5, "n_failed"] == 1
    best = half.settings[half.settings["robust"]].sort_values(
        "clean_accuracy_mean", ascending=False
    )
    assert best.index[0] == 3 and half.recommended.name == 3
    only_failed = table.drop(index=[0, 1, 2, 3, 4, 7, 8])
    alone = robust_region(only_failed, seed_share=0.5, **kwargs)
    assert alone.settings["robust"].tolist() == [True] and alone.recommended is None


def test_failed_rows_never_hold():
    table = seeded_table()
    table.loc[3, "error"] = "slope: LinAlgError: no margin support vectors"
    table.loc[3, "score"] = np.nan
    table.loc[4, "error"] = "curve: ValueError: x; slope: ValueError: y"  # a later part failed
    assert failed_rows(table).tolist() == [False] * 3 + [True, True, False, True, False, False]
    region = robust_region(table, min_clean_accuracy=0.9, max_backdoor_accuracy=0.1)
    assert 3 not in region.points.index and 4 not in region.points.index
    assert region.settings.loc[3, ["n_hold", "n_failed", "robust"]].tolist() == [0, 2, False]
    # the most accurate setting failed: the recommendation is the next robust one
    assert region.recommended.name == 7
    assert np.isfinite(region.recommended["score_mean"])
    # a NaN score without an error counts as failed too
    no_errors = table.drop(columns="error")
    assert failed_rows(no_errors).tolist() == [False] * 3 + [True, False, False, True] + [False] * 2


def test_explicit_by():
    table = seeded_table()
    region = robust_region(table, min_clean_accuracy=0.9, max_backdoor_accuracy=0.1, by=["C"])
    s = region.settings
    assert region.criteria["by"] == ("learner", "C")
    assert s["n_seeds"].tolist() == [3, 2, 4]  # logistic C=1 pools both fractions
    assert s["n_hold"].tolist() == [2, 2, 3]
    assert "fraction" not in s and "gamma" not in s


# ---------------------------------------------------------------------------- border distance
GAMMAS = [0.001, 0.01, 0.1, 1.0]
CS = [0.01, 0.1, 1.0, 10.0]


def square(robust: np.ndarray, clean: np.ndarray | None = None, seeds=(0,)) -> pd.DataFrame:
    """A 4 x 4 C x gamma grid; ``robust[i, j]`` (gamma i, C j) decides backdoor accuracy."""
    rows = []
    for (i, gamma), (j, c), seed in itertools.product(enumerate(GAMMAS), enumerate(CS), seeds):
        rows.append(
            {
                "learner": "rbf",
                "C": c,
                "gamma": gamma,
                "random_state": seed,
                "clean_accuracy": 0.95 if clean is None else clean[i, j],
                "backdoor_accuracy": 0.01 if robust[i, j] else 0.9,
                "score": 0.1,
                "error": "",
            }
        )
    return pd.DataFrame(rows)


def distances(region) -> np.ndarray:
    s = region.settings
    out = np.full((4, 4), -1)
    for _, row in s.iterrows():
        out[GAMMAS.index(row["gamma"]), CS.index(row["C"])] = row["border_distance"]
    return out


def test_border_distance_is_chebyshev_on_grid_steps():
    robust = np.ones((4, 4), dtype=bool)
    robust[3, 3] = False
    region = robust_region(square(robust), min_clean_accuracy=0.9)
    # off-grid cells count as missing (distance 1 on the edge); (2, 2) touches (3, 3) diagonally:
    # Chebyshev distance 1 (L1 would say 2)
    expected = [
        [1, 1, 1, 1],
        [1, 2, 2, 1],
        [1, 2, 1, 1],
        [1, 1, 1, 0],
    ]
    assert distances(region).tolist() == expected
    # all robust: the centre 2 x 2 block is two steps deep
    full = robust_region(square(np.ones((4, 4), dtype=bool)), min_clean_accuracy=0.9)
    assert distances(full).tolist() == [[1, 1, 1, 1], [1, 2, 2, 1], [1, 2, 2, 1], [1, 1, 1, 1]]


def test_border_distance_counts_missing_settings():
    robust = np.ones((4, 4), dtype=bool)
    table = square(robust)
    gone = table[(table["C"] == 0.1) & (table["gamma"] == 0.001)].index  # cell (0, 1)
    region = robust_region(table.drop(index=gone), min_clean_accuracy=0.9)
    d = distances(region)
    assert d[0, 1] == -1  # not evaluated
    assert d[1, 1] == 1 and d[1, 2] == 1  # next to the missing cell
    assert d[2, 1] == 2 and d[2, 2] == 2


def test_recommendation_prefers_depth_then_clean_accuracy():
    robust = np.ones((4, 4), dtype=bool)
    robust[3, 3] = False
    clean = np.full((4, 4), 0.95)
    clean[0, 0] = 0.99  # most accurate, but on the edge of the grid (distance 1)
    clean[1, 2] = 0.97  # the most accurate of the distance-2 cells (1, 1), (1, 2), (2, 1)
    clean[2, 1] = 0.96
    region = robust_region(square(robust, clean, seeds=(0, 1)), min_clean_accuracy=0.9)
    best = region.recommended
    assert (best["C"], best["gamma"], best["border_distance"]) == (1.0, 0.01, 2)
    assert best["n_seeds"] == 2 and best["clean_accuracy_mean"] == 0.97


def test_border_distance_per_slice_and_learner():
    """A second learner and a text parameter: each has its own grid; a text parameter splits
    the grid into slices instead of being an axis."""
    a = square(np.ones((4, 4), dtype=bool)).assign(trigger="badnets")
    b = a.assign(trigger="blend")
    b.loc[b["C"] == 10.0, "backdoor_accuracy"] = 0.9  # blend: the C = 10 column is not robust
    c = a.assign(learner="other").iloc[:2]
    table = pd.concat([a, b, c], ignore_index=True)
    first = ["learner", "C", "gamma", "trigger"]
    table = table[[*first, *table.columns.drop(first)]]
    region = robust_region(table, min_clean_accuracy=0.9)
    s = region.settings
    blend = s[(s["trigger"] == "blend") & (s["gamma"] == 0.01)]
    assert blend["border_distance"].tolist() == [1, 2, 1, 0]
    badnets = s[(s["trigger"] == "badnets") & (s["gamma"] == 0.01)]
    assert badnets["border_distance"].tolist() == [1, 2, 2, 1]
    # "other" was evaluated at two cells of one gamma row: a 1 x 2 grid along C
    assert s[s["learner"] == "other"]["border_distance"].tolist() == [1, 1]


def test_for_learner():
    region = robust_region(seeded_table(), min_clean_accuracy=0.9, max_backdoor_accuracy=0.1)
    rbf = region.for_learner("rbf")
    assert set(rbf.settings["learner"]) == {"rbf"} and set(rbf.points["learner"]) == {"rbf"}
    assert rbf.recommended is region.recommended
    logistic = region.for_learner("logistic")
    assert logistic.recommended is None and logistic.summary["learner"].tolist() == ["logistic"]
    assert logistic.criteria == region.criteria
