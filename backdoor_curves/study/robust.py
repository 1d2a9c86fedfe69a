"""The robust region of a grid: settings that stay accurate on clean data yet resist the backdoor.

A grid *row* (one point of a grid table, e.g. from :func:`backdoor_curves.study.grid.grid_study`)
*holds* when the backdoor accuracy (attack success rate on V_t) of the model trained on the
poisoned set (beta = 1) is at most ``max_backdoor_accuracy``, and its clean accuracy on V is at
least ``min_clean_accuracy`` (absolute) and/or at most ``clean_drop`` below its learner's best
clean accuracy on the grid (relative). A *failed* row never holds: a missing clean or backdoor
accuracy or slope score, or an ``error`` from any part of the point but its optional learning
curve (``setup``, ``fit at beta=0``, ``slope``, ``fit at beta=1``).

A *setting* is the learner plus the grid's parameters except the seed ``random_state``: the rows
of one setting differ only in their seed (data parameters such as ``fraction`` are part of the
setting). A setting is *robust* when the share of its seeds that hold is at least ``seed_share``
(by default all of them). Its *border distance* says how deep inside the region it lies:

    border_distance = min over settings s' that are not robust, or were not evaluated, of
                      max_k |i_k - i'_k|

the Chebyshev distance on grid indices i_k along the numeric axes swept for that learner
(index steps, not value differences, so log-spaced grids count every step alike). Cells beyond
the edge of the grid count as not evaluated, so a robust setting on the edge has distance 1. A
setting at distance d has every setting within d - 1 steps along all axes at once robust.

The recommended setting is the robust one deepest inside the region (largest border distance),
then the most accurate on clean data, then the least backdoored (seed means); a setting with a
failed seed is never recommended.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import distance_transform_cdt

from .point import RESULT_COLUMNS

__all__ = [
    "ROBUST_CLEAN_DROP",
    "ROBUST_BACKDOOR_MAX",
    "RobustRegion",
    "failed_rows",
    "robust_points",
    "robust_region",
    "robust_summary",
    "setting_columns",
]

#: Default accuracy criterion: clean accuracy at most this far below the learner's best ...
ROBUST_CLEAN_DROP = 0.02
#: ... and default robustness criterion: backdoor accuracy at beta = 1 at most this.
ROBUST_BACKDOOR_MAX = 0.10

#: Columns of a grid table that are results or bookkeeping, never part of a setting.
_NOT_SETTINGS = frozenset(
    {"learner", "random_state", "estimator", "lambda", "error", "warning", "seconds"}
) | frozenset(RESULT_COLUMNS)
#: The part of a grid point whose failure leaves the region's quantities intact.
_OPTIONAL_PART = "curve"
_PART = re.compile(r"; (?=[a-z][\w =.-]*: )")


def _check(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def _check_table(table) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in ("learner", "clean_accuracy", "backdoor_accuracy") if c not in table]
    if missing:
        raise ValueError(f"table lacks the column(s) {missing}")
    return table


def _criteria(min_clean_accuracy, max_backdoor_accuracy, clean_drop) -> dict:
    low = _check(min_clean_accuracy, "min_clean_accuracy")
    high = _check(max_backdoor_accuracy, "max_backdoor_accuracy")
    drop = _check(clean_drop, "clean_drop")
    if high is None:
        raise TypeError("max_backdoor_accuracy must be a number in [0, 1], got None")
    if low is None and drop is None:
        drop = ROBUST_CLEAN_DROP
    return {"min_clean_accuracy": low, "clean_drop": drop, "max_backdoor_accuracy": high}


def _check_seed_share(seed_share) -> float:
    if isinstance(seed_share, bool) or not isinstance(
        seed_share, int | float | np.integer | np.floating
    ):
        raise TypeError(f"seed_share must be a number in (0, 1], got {seed_share!r}")
    if not 0.0 < float(seed_share) <= 1.0:
        raise ValueError(f"seed_share must be in (0, 1], got {seed_share!r}")
    return float(seed_share)


def _numbers(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(np.nan, index=table.index, dtype=float)
    return pd.to_numeric(table[column], errors="coerce").astype(float)


def _error_fails(error) -> bool:
    """Whether an ``error`` entry names a failure of a part other than the optional curve."""
    if not isinstance(error, str) or not error:
        return False
    return any(not piece.startswith(_OPTIONAL_PART + ": ") for piece in _PART.split(error))


def failed_rows(table: pd.DataFrame) -> pd.Series:
    """Which rows of a grid table failed in a part the robust region needs.

    A row failed when its clean accuracy, backdoor accuracy or (if the table has the column)
    slope ``score`` is missing, or its ``error`` names a failure of any part of the point other
    than its optional learning curve (``"curve: ..."``).

    Parameters
    ----------
    table : DataFrame
        A grid table with the columns ``clean_accuracy`` and ``backdoor_accuracy`` (``score``
        and ``error`` optional).

    Returns
    -------
    pandas.Series of bool
        True for a failed row, indexed like ``table``.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame.
    ValueError
        If ``table`` lacks ``learner``, ``clean_accuracy`` or ``backdoor_accuracy``.
    """
    table = _check_table(table)
    failed = _numbers(table, "clean_accuracy").isna() | _numbers(table, "backdoor_accuracy").isna()
    if "score" in table:
        failed |= _numbers(table, "score").isna()
    if "error" in table:
        failed |= table["error"].map(_error_fails).astype(bool)
    return failed.astype(bool)


def _holds(table: pd.DataFrame, criteria: dict) -> pd.Series:
    clean = _numbers(table, "clean_accuracy")
    ok = _numbers(table, "backdoor_accuracy") <= criteria["max_backdoor_accuracy"]
    if criteria["min_clean_accuracy"] is not None:
        ok &= clean >= criteria["min_clean_accuracy"]
    if criteria["clean_drop"] is not None:
        best = clean.groupby(table["learner"], sort=False, dropna=False).transform("max")
        ok &= clean >= best - criteria["clean_drop"] - 1e-12
    return (ok.fillna(False).astype(bool) & ~failed_rows(table)).astype(bool)


def robust_points(
    table: pd.DataFrame,
    *,
    min_clean_accuracy: float | None = None,
    max_backdoor_accuracy: float = ROBUST_BACKDOOR_MAX,
    clean_drop: float | None = None,
) -> pd.DataFrame:
    """The rows of ``table`` that stay accurate yet resist the backdoor (one seed each).

    Parameters
    ----------
    table : DataFrame
        Columns ``learner``, ``clean_accuracy``, ``backdoor_accuracy`` (accuracies at beta = 1;
        ``score`` and ``error`` optional, see :func:`failed_rows`).
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
        The qualifying rows, in table order with their original index; failed rows
        (:func:`failed_rows`) never qualify.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame or a threshold is not a number (``max_backdoor_accuracy``
        may not be None).
    ValueError
        If ``table`` lacks a required column or a threshold is outside [0, 1].

    See Also
    --------
    robust_region : Aggregates the rows over seeds into settings.
    """
    table = _check_table(table)
    criteria = _criteria(min_clean_accuracy, max_backdoor_accuracy, clean_drop)
    return table[_holds(table, criteria)]


def setting_columns(table: pd.DataFrame, by: Sequence[str] | None = None) -> list[str]:
    """The columns that name a setting of a grid table: ``learner`` and its parameters.

    Parameters
    ----------
    table : DataFrame
        A grid table.
    by : sequence of str, optional
        The parameter columns; default: inferred. In a table of
        :func:`~backdoor_curves.study.grid.grid_study` they are the columns between ``learner``
        and ``random_state`` (learner and data parameters alike); otherwise every column that is
        not a result or bookkeeping column (``lambda``, ``error``, the accuracies, ...), or
        ``lambda`` when no other column is left.

    Returns
    -------
    list of str
        ``"learner"`` followed by the parameter columns, in table order for the inferred ones,
        in the given order for ``by``.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame or ``by`` is not a sequence of str.
    ValueError
        If ``table`` lacks ``learner``, or a column of ``by`` is not in ``table``.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if "learner" not in table:
        raise ValueError("table lacks the column 'learner'")
    columns = list(table.columns)
    if by is not None:
        if isinstance(by, str) or not isinstance(by, Sequence | pd.Index):
            raise TypeError(f"by must be a list of column names, got {type(by).__name__}")
        bad = [c for c in by if not isinstance(c, str)]
        if bad:
            raise TypeError(f"by must be a list of column names (str), got {bad!r}")
        missing = [c for c in by if c not in table]
        if missing:
            raise ValueError(f"by names column(s) {missing} that table lacks")
        params = [c for c in dict.fromkeys(by) if c != "learner"]
    elif "random_state" in table and columns.index("learner") < columns.index("random_state"):
        params = columns[columns.index("learner") + 1 : columns.index("random_state")]
    else:
        params = [
            c
            for c in columns
            if c not in _NOT_SETTINGS
            and not str(c).startswith("curve_")
            and not str(c).endswith(("accuracy", "_mean", "_std"))
        ]
        if not params and "lambda" in table:
            params = ["lambda"]
    return ["learner", *params]


def _group_ids(table: pd.DataFrame, key: list[str]) -> np.ndarray:
    """One integer per row, equal for rows of the same setting, numbered by first appearance."""
    if len(table) == 0 or not key:
        return np.zeros(len(table), dtype=int)
    codes = []
    for column in key:
        values = table[column].map(lambda v: repr(v) if isinstance(v, list | dict) else v)
        codes.append(pd.factorize(values, use_na_sentinel=False)[0])
    combined = pd.factorize(pd.Series(list(zip(*codes, strict=True))))[0]
    return combined


def _is_number(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values) or values.isna().any():
        return False
    return bool(
        values.map(
            lambda v: (
                isinstance(v, int | float | np.integer | np.floating)
                and not isinstance(v, bool | np.bool_)
            )
        ).all()
    )


def _border_distances(settings: pd.DataFrame, key: list[str]) -> np.ndarray:
    """Chebyshev distance on grid indices of each robust setting to the nearest non-robust,
    missing or off-grid cell of its learner's grid (0 for a non-robust setting)."""
    out = np.zeros(len(settings), dtype=int)
    settings = settings.reset_index(drop=True)  # positions, whatever the table's index
    for _, group in settings.groupby(_group_ids(settings, ["learner"]), sort=False, dropna=False):
        params = [c for c in key[1:] if group[c].map(repr).nunique() > 1]
        axes = [c for c in params if _is_number(group[c])]
        slices = [c for c in params if c not in axes]
        grids = {c: np.unique(group[c].to_numpy(float)) for c in axes}
        shape = tuple(len(grids[c]) + 2 for c in axes)  # padded: off-grid cells count as missing
        for _, part in group.groupby(_group_ids(group, slices), sort=False):
            index = tuple(np.searchsorted(grids[c], part[c].to_numpy(float)) + 1 for c in axes)
            robust = part["robust"].to_numpy(bool)
            if not axes:
                out[part.index.to_numpy()] = robust.astype(int)
                continue
            cells = np.zeros(shape, dtype=bool)
            cells[index] = robust
            distance = distance_transform_cdt(cells, metric="chessboard")
            out[part.index.to_numpy()] = np.where(robust, distance[index], 0)
    return out


def _aggregate(table: pd.DataFrame, holds: pd.Series, key: list[str], seed_share: float):
    failed = failed_rows(table)
    ids = _group_ids(table, key)
    clean = _numbers(table, "clean_accuracy")
    backdoor = _numbers(table, "backdoor_accuracy")
    score = _numbers(table, "score")
    lam = _numbers(table, "lambda") if "lambda" in table and "lambda" not in key else None
    first = pd.Series(np.arange(len(table))).groupby(ids, sort=False).first().to_numpy()
    settings = table.iloc[first][key].copy()
    if lam is not None:
        settings["lambda"] = lam.groupby(ids, sort=False).first().to_numpy()

    def per(values: pd.Series, how: str, **kw) -> np.ndarray:
        return getattr(values.groupby(ids, sort=False), how)(**kw).to_numpy(float)

    settings["n_seeds"] = np.bincount(ids, minlength=len(first)).astype(int)
    settings["n_hold"] = holds.groupby(ids, sort=False).sum().to_numpy(int)
    settings["n_failed"] = failed.groupby(ids, sort=False).sum().to_numpy(int)
    settings["share"] = settings["n_hold"] / settings["n_seeds"]
    for name, values in (("clean_accuracy", clean), ("backdoor_accuracy", backdoor)):
        settings[f"{name}_mean"] = per(values, "mean")
        settings[f"{name}_min"] = per(values, "min")
        settings[f"{name}_max"] = per(values, "max")
    settings["score_mean"] = per(score, "mean")
    settings["score_std"] = per(score, "std", ddof=1)
    # the seed means again under the grid table's names: the settings are a grid table too
    settings["clean_accuracy"] = settings["clean_accuracy_mean"]
    settings["backdoor_accuracy"] = settings["backdoor_accuracy_mean"]
    settings["score"] = settings["score_mean"]
    settings["robust"] = (settings["share"] >= seed_share - 1e-12) & (settings["n_hold"] > 0)
    settings["border_distance"] = _border_distances(settings, key)
    return settings


def robust_summary(
    table: pd.DataFrame, *, seed_share: float = 1.0, by: Sequence[str] | None = None, **criteria
) -> pd.DataFrame:
    """Per learner, the extent of the robust region (criteria as in :func:`robust_region`).

    Parameters
    ----------
    table : DataFrame
        A grid table with the columns ``learner``, ``lambda``, ``clean_accuracy`` and
        ``backdoor_accuracy`` (and ``score``, optional).
    seed_share : float in (0, 1], default=1.0
        A setting is robust when at least this share of its seeds hold.
    by : sequence of str, optional
        The columns that make a setting besides ``learner`` (see :func:`setting_columns`).
    **criteria
        ``min_clean_accuracy``, ``max_backdoor_accuracy``, ``clean_drop``: the keyword arguments
        of :func:`robust_points` (the same defaults).

    Returns
    -------
    DataFrame
        One row per learner: ``best_clean_accuracy``, ``n_points``, ``n_robust`` (rows that
        hold), the lambda range of those rows (NaN when none), their lowest clean accuracy,
        highest backdoor accuracy and highest slope score, then ``n_settings`` and
        ``n_robust_settings`` (settings robust over their seeds).

    Raises
    ------
    TypeError, ValueError
        As :func:`robust_region`.
    """
    return robust_region(table, seed_share=seed_share, by=by, **criteria).summary


def _summary(table: pd.DataFrame, robust: pd.DataFrame, settings: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for name, group in table.groupby("learner", sort=False, dropna=False):
        mine = robust[robust["learner"] == name]
        sets = settings[settings["learner"] == name]
        rows.append(
            {
                "learner": name,
                "best_clean_accuracy": _numbers(group, "clean_accuracy").max(),
                "n_points": len(group),
                "n_robust": len(mine),
                "lambda_min": _numbers(mine, "lambda").min(),
                "lambda_max": _numbers(mine, "lambda").max(),
                "clean_accuracy_min": _numbers(mine, "clean_accuracy").min(),
                "backdoor_accuracy_max": _numbers(mine, "backdoor_accuracy").max(),
                "score_max": _numbers(mine, "score").max(),
                "n_settings": len(sets),
                "n_robust_settings": int(sets["robust"].sum()),
            }
        )
    columns = [
        "learner", "best_clean_accuracy", "n_points", "n_robust", "lambda_min", "lambda_max",
        "clean_accuracy_min", "backdoor_accuracy_max", "score_max", "n_settings",
        "n_robust_settings",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class RobustRegion:
    """The robust region of a grid table.

    Attributes
    ----------
    points : DataFrame
        The qualifying rows (each seed on its own; original index kept), see
        :func:`robust_points`.
    recommended : pandas.Series or None
        The recommended setting, a row of ``settings`` (its name is the index label, in the
        table, of the setting's first row): the robust setting with the largest
        ``border_distance``, then the highest mean clean accuracy, then the lowest mean backdoor
        accuracy, then the first in table order. A setting with a failed seed is never
        recommended. None when no setting qualifies.
    summary : DataFrame
        Per learner, see :func:`robust_summary`.
    criteria : dict
        The thresholds in force (``min_clean_accuracy``, ``clean_drop``,
        ``max_backdoor_accuracy``; None where not used), ``seed_share`` and ``by`` (the setting
        columns, ``learner`` first, as a tuple).
    settings : DataFrame or None
        One row per setting, in order of first appearance, indexed by the label of its first
        row in the table: the setting columns, ``lambda`` (when the table has it), ``n_seeds``,
        ``n_hold`` (seeds that hold), ``n_failed`` (failed seeds, see :func:`failed_rows`),
        ``share`` (``n_hold / n_seeds``), ``clean_accuracy_mean``, ``clean_accuracy_min``,
        ``clean_accuracy_max``, the same three of ``backdoor_accuracy``, ``score_mean``,
        ``score_std`` (sample standard deviation, NaN for one seed); ``clean_accuracy``,
        ``backdoor_accuracy`` and ``score`` (the means again under the grid table's names, so
        that the settings read like a grid table, one row per setting); ``robust`` (bool) and
        ``border_distance`` (int; see the module docstring: Chebyshev distance in grid steps to
        the nearest non-robust or missing setting, 0 when not robust). Statistics skip failed
        seeds. None only for a region built by hand from points.
    """

    points: pd.DataFrame
    recommended: pd.Series | None
    summary: pd.DataFrame
    criteria: dict
    settings: pd.DataFrame | None = None

    def for_learner(self, learner) -> RobustRegion:
        """The part of the region that concerns one learner.

        Parameters
        ----------
        learner : str
            A value of the ``learner`` column.

        Returns
        -------
        RobustRegion
            The learner's points, settings and summary row; ``recommended`` when it is this
            learner's (else None); the same criteria.
        """
        best = self.recommended
        if best is not None and best.get("learner") != learner:
            best = None
        settings = self.settings
        if settings is not None:
            settings = settings[settings["learner"] == learner]
        return RobustRegion(
            self.points[self.points["learner"] == learner],
            best,
            self.summary[self.summary["learner"] == learner],
            dict(self.criteria),
            settings,
        )


def robust_region(
    table: pd.DataFrame,
    *,
    min_clean_accuracy: float | None = None,
    max_backdoor_accuracy: float = ROBUST_BACKDOOR_MAX,
    clean_drop: float | None = None,
    seed_share: float = 1.0,
    by: Sequence[str] | None = None,
) -> RobustRegion:
    """The settings that stay accurate yet resist the backdoor over their seeds, and the best one.

    Parameters
    ----------
    table : DataFrame
        A grid table with the columns ``learner``, ``clean_accuracy`` and ``backdoor_accuracy``
        (accuracies at beta = 1; ``lambda``, ``score``, ``error`` and the grid's parameters
        optional), e.g. from :func:`backdoor_curves.study.grid.grid_study` or
        :func:`backdoor_curves.study.results_io.read_study`.
    min_clean_accuracy : float in [0, 1], optional
        Absolute criterion of a row: clean accuracy >= this.
    max_backdoor_accuracy : float in [0, 1], default=0.10
        Backdoor accuracy (attack success rate on V_t) <= this.
    clean_drop : float in [0, 1], optional
        Relative criterion: clean accuracy >= (the learner's best row on the grid) -
        ``clean_drop``. When neither ``min_clean_accuracy`` nor ``clean_drop`` is given,
        ``clean_drop`` is :data:`ROBUST_CLEAN_DROP`.
    seed_share : float in (0, 1], default=1.0
        A setting is robust when at least this share of its seeds hold (1.0: every seed;
        a failed seed counts as one that does not hold).
    by : sequence of str, optional
        The columns that make a setting besides ``learner``; default: the grid's parameter
        columns except ``random_state`` (see :func:`setting_columns`).

    Returns
    -------
    RobustRegion
        The qualifying rows, the settings over seeds with their border distance, the
        recommended setting, the per-learner summary and the criteria.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame, a threshold or ``seed_share`` is not a number, or
        ``by`` is not a list of str.
    ValueError
        If ``table`` lacks a required column or a column of ``by``, a threshold is outside
        [0, 1], or ``seed_share`` is outside (0, 1].

    See Also
    --------
    robust_points : The rows that hold, each seed on its own.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({
    ...     "learner": ["a"] * 4, "C": [1.0, 1.0, 10.0, 10.0], "random_state": [0, 1, 0, 1],
    ...     "clean_accuracy": [0.99, 0.98, 0.99, 0.99],
    ...     "backdoor_accuracy": [0.02, 0.05, 0.04, 0.60]})
    >>> region = robust_region(table, min_clean_accuracy=0.95)
    >>> region.settings[["C", "n_hold", "robust", "border_distance"]]
          C  n_hold  robust  border_distance
    0   1.0       2    True                1
    2  10.0       1   False                0
    >>> float(region.recommended["C"])
    1.0
    """
    table = _check_table(table)
    criteria = _criteria(min_clean_accuracy, max_backdoor_accuracy, clean_drop)
    share = _check_seed_share(seed_share)
    key = setting_columns(table, by)
    holds = _holds(table, criteria)
    points = table[holds]
    settings = _aggregate(table, holds, key, share)
    recommended = None
    candidates = settings[settings["robust"] & (settings["n_failed"] == 0)]
    if len(candidates):
        order = np.lexsort(
            (
                np.arange(len(candidates)),
                candidates["backdoor_accuracy_mean"].to_numpy(float),
                -candidates["clean_accuracy_mean"].to_numpy(float),
                -candidates["border_distance"].to_numpy(int),
            )
        )
        recommended = candidates.iloc[order[0]]
    criteria = {**criteria, "seed_share": share, "by": tuple(key)}
    return RobustRegion(points, recommended, _summary(table, points, settings), criteria, settings)
