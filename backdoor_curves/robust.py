"""The robust region of a regularization grid: points that stay accurate yet resist the backdoor."""

from __future__ import annotations

import pandas as pd

__all__ = ["ROBUST_CLEAN_DROP", "ROBUST_BACKDOOR_MAX", "robust_points", "robust_region"]

#: A grid point is in the robust region when its clean accuracy is at most this far below the
#: learner's best clean accuracy on the grid ...
ROBUST_CLEAN_DROP = 0.02
#: ... and its backdoor accuracy (attack success rate at beta = 1) is at most this.
ROBUST_BACKDOOR_MAX = 0.10


def robust_points(
    grid: pd.DataFrame,
    *,
    clean_drop: float = ROBUST_CLEAN_DROP,
    backdoor_max: float = ROBUST_BACKDOOR_MAX,
) -> pd.DataFrame:
    """The rows of ``grid`` that stay accurate yet resist the backdoor.

    A point qualifies when its clean accuracy is at most ``clean_drop`` (absolute) below its
    learner's best clean accuracy on the grid and its backdoor accuracy at beta = 1 is at most
    ``backdoor_max``. Rows with missing accuracies never qualify.
    """
    best = grid.groupby("learner", sort=False)["clean_accuracy"].transform("max")
    ok = (grid["clean_accuracy"] >= best - clean_drop - 1e-12) & (
        grid["backdoor_accuracy"] <= backdoor_max
    )
    return grid[ok.fillna(False).astype(bool)]


def robust_region(
    grid: pd.DataFrame,
    *,
    clean_drop: float = ROBUST_CLEAN_DROP,
    backdoor_max: float = ROBUST_BACKDOOR_MAX,
) -> pd.DataFrame:
    """Per learner, the extent of the robust region (see :func:`robust_points`).

    Returns
    -------
    DataFrame
        One row per learner: ``best_clean_accuracy``, ``n_points``, ``n_robust``, the lambda
        range of the robust points (NaN when none), their lowest clean accuracy, highest backdoor
        accuracy and highest slope score.
    """
    robust = robust_points(grid, clean_drop=clean_drop, backdoor_max=backdoor_max)
    rows = []
    for name, group in grid.groupby("learner", sort=False):
        mine = robust[robust["learner"] == name]
        rows.append(
            {
                "learner": name,
                "best_clean_accuracy": group["clean_accuracy"].max(),
                "n_points": len(group),
                "n_robust": len(mine),
                "lambda_min": mine["lambda"].min(),
                "lambda_max": mine["lambda"].max(),
                "clean_accuracy_min": mine["clean_accuracy"].min(),
                "backdoor_accuracy_max": mine["backdoor_accuracy"].max(),
                "score_max": mine["score"].max(),
            }
        )
    return pd.DataFrame(rows)
