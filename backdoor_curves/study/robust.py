"""The robust region of a grid: points that stay accurate on clean data yet resist the backdoor.

A grid point (one row of a grid table, e.g. from :func:`backdoor_curves.study.grid.grid_study`)
*resists* when the backdoor accuracy (attack success rate on V_t) of the model trained on the
poisoned set (beta = 1) is at most ``max_backdoor_accuracy``, and stays *accurate* when its clean
accuracy on V is at least ``min_clean_accuracy`` (absolute) and/or at most ``clean_drop`` below its
learner's best clean accuracy on the grid (relative). Rows with a missing accuracy (failed
points) never qualify.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ROBUST_CLEAN_DROP",
    "ROBUST_BACKDOOR_MAX",
    "RobustRegion",
    "robust_points",
    "robust_region",
    "robust_summary",
]

#: Default accuracy criterion: clean accuracy at most this far below the learner's best ...
ROBUST_CLEAN_DROP = 0.02
#: ... and default robustness criterion: backdoor accuracy at beta = 1 at most this.
ROBUST_BACKDOOR_MAX = 0.10


def _check(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def robust_points(
    table: pd.DataFrame,
    *,
    min_clean_accuracy: float | None = None,
    max_backdoor_accuracy: float = ROBUST_BACKDOOR_MAX,
    clean_drop: float | None = None,
) -> pd.DataFrame:
    """The rows of ``table`` that stay accurate yet resist the backdoor.

    Parameters
    ----------
    table : DataFrame
        Columns ``learner``, ``clean_accuracy``, ``backdoor_accuracy`` (accuracies at beta = 1).
    min_clean_accuracy : float in [0, 1], optional
        Absolute criterion: clean accuracy >= this.
    max_backdoor_accuracy : float in [0, 1], default=0.10
        Backdoor accuracy <= this.
    clean_drop : float in [0, 1], optional
        Relative criterion: clean accuracy >= (the learner's best on the grid) - ``clean_drop``.
        When neither ``min_clean_accuracy`` nor ``clean_drop`` is given, ``clean_drop`` is
        :data:`ROBUST_CLEAN_DROP`.

    Returns
    -------
    DataFrame
        The qualifying rows, in table order with their original index; rows with a missing
        accuracy never qualify.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame or a threshold is not a number (``max_backdoor_accuracy``
        may not be None).
    ValueError
        If ``table`` lacks a required column or a threshold is outside [0, 1].
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in ("learner", "clean_accuracy", "backdoor_accuracy") if c not in table]
    if missing:
        raise ValueError(f"table lacks the column(s) {missing}")
    low = _check(min_clean_accuracy, "min_clean_accuracy")
    high = _check(max_backdoor_accuracy, "max_backdoor_accuracy")
    drop = _check(clean_drop, "clean_drop")
    if high is None:
        raise TypeError("max_backdoor_accuracy must be a number in [0, 1], got None")
    if low is None and drop is None:
        drop = ROBUST_CLEAN_DROP
    clean = pd.to_numeric(table["clean_accuracy"], errors="coerce")
    ok = pd.to_numeric(table["backdoor_accuracy"], errors="coerce") <= high
    if low is not None:
        ok &= clean >= low
    if drop is not None:
        best = clean.groupby(table["learner"], sort=False).transform("max")
        ok &= clean >= best - drop - 1e-12
    return table[ok.fillna(False).astype(bool)]


def robust_summary(table: pd.DataFrame, **criteria) -> pd.DataFrame:
    """Per learner, the extent of the robust region (criteria as in :func:`robust_points`).

    Parameters
    ----------
    table : DataFrame
        A grid table with the columns ``learner``, ``lambda``, ``clean_accuracy`` and
        ``backdoor_accuracy`` (and ``score``, optional).
    **criteria
        ``min_clean_accuracy``, ``max_backdoor_accuracy``, ``clean_drop``: the keyword arguments
        of :func:`robust_points` (the same defaults).

    Returns
    -------
    DataFrame
        One row per learner: ``best_clean_accuracy``, ``n_points``, ``n_robust``, the lambda
        range of the robust points (NaN when none), their lowest clean accuracy, highest backdoor
        accuracy and highest slope score.
    """
    robust = robust_points(table, **criteria)
    rows = []
    for name, group in table.groupby("learner", sort=False):
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
                "score_max": mine["score"].max() if "score" in mine else np.nan,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class RobustRegion:
    """The robust region of a grid table.

    Attributes
    ----------
    points : DataFrame
        The qualifying rows (original index kept).
    recommended : pandas.Series or None
        The recommended setting: the qualifying row with the highest clean accuracy (ties: the
        lowest backdoor accuracy, then the first in table order); None when no row qualifies.
    summary : DataFrame
        Per learner, see :func:`robust_summary`.
    criteria : dict
        The thresholds in force (``min_clean_accuracy``, ``clean_drop``,
        ``max_backdoor_accuracy``; None where not used).
    """

    points: pd.DataFrame
    recommended: pd.Series | None
    summary: pd.DataFrame
    criteria: dict


def robust_region(
    table: pd.DataFrame,
    *,
    min_clean_accuracy: float | None = None,
    max_backdoor_accuracy: float = ROBUST_BACKDOOR_MAX,
    clean_drop: float | None = None,
) -> RobustRegion:
    """The points that stay accurate yet resist the backdoor, and a recommended setting.

    Parameters
    ----------
    table : DataFrame
        A grid table with the columns ``learner``, ``lambda``, ``clean_accuracy`` and
        ``backdoor_accuracy`` (accuracies at beta = 1; ``score`` optional), e.g. from
        :func:`backdoor_curves.study.grid.grid_study`.
    min_clean_accuracy : float in [0, 1], optional
        Absolute criterion: clean accuracy >= this.
    max_backdoor_accuracy : float in [0, 1], default=0.10
        Backdoor accuracy (attack success rate on V_t) <= this.
    clean_drop : float in [0, 1], optional
        Relative criterion: clean accuracy >= (the learner's best on the grid) - ``clean_drop``.
        When neither ``min_clean_accuracy`` nor ``clean_drop`` is given, ``clean_drop`` is
        :data:`ROBUST_CLEAN_DROP`.

    Returns
    -------
    RobustRegion
        The qualifying points, the recommended one, the per-learner summary and the criteria.

    Raises
    ------
    TypeError, ValueError
        As :func:`robust_points`.
    """
    if min_clean_accuracy is None and clean_drop is None:
        clean_drop = ROBUST_CLEAN_DROP
    criteria = {
        "min_clean_accuracy": min_clean_accuracy,
        "clean_drop": clean_drop,
        "max_backdoor_accuracy": max_backdoor_accuracy,
    }
    points = robust_points(table, **criteria)
    recommended = None
    if len(points):
        order = np.lexsort(
            (
                np.arange(len(points)),
                points["backdoor_accuracy"].to_numpy(float),
                -points["clean_accuracy"].to_numpy(float),
            )
        )
        recommended = points.iloc[order[0]]
    return RobustRegion(points, recommended, robust_summary(table, **criteria), criteria)
