"""The dynamics-based stealthiness score of paper 000 (its ``mi.py``; definitions §A6-(i)).

From a history of MI estimates per checkpoint and group (:meth:`InformationDynamics.history`),
for each measure m in {``mi_xt``, ``mi_ty``} and each target group g in {``target_clean``,
``target_all``}, with C the clean-class groups:

1. at each phase checkpoint e, min-max normalize the values of g and of the groups of C
   *together*: v~ = (v - min) / (max - min), min and max over {v_g(e)} and {v_c(e), c in C};
   when max = min every v~ is 0 (the reference adds 1e-8 to the denominator instead, which
   changes the values by a relative 1e-8 / (max - min));
2. d_m,g(e) = | mean_{c in C} (v~_g(e) - v~_c(e)) | = | v~_g(e) - mean_c v~_c(e) |;
3. D_m,g = mean over the phase checkpoints of d_m,g(e).

The score is S = sum over m and g of D_m,g (four terms by default; each D >= 0, so the paper's
|D| is D). S lies in [0, 4]; lower means the target class's MI evolves like a clean class's
(more stealthy at the model level). Paper 000 takes the checkpoints 5, 40 and 100 of a 120-epoch
run as the initial, compression and convergence phases; here they are ``phases`` (default:
every checkpoint of the history). The normalization makes S invariant to a common affine
rescaling a v + b (a > 0) of one measure at one checkpoint.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["StealthScore", "stealth_score"]


@dataclass(frozen=True)
class StealthScore:
    """The dynamics-based stealthiness score and its terms.

    Attributes
    ----------
    score : float
        S, the sum of the terms D (>= 0; lower = stealthier).
    terms : pandas.DataFrame
        One row per measure and target group: ``measure``, ``group``, ``D``.
    per_checkpoint : pandas.DataFrame
        ``epoch``, ``measure``, ``group``, ``difference`` (d(e), before the mean over epochs).
    phases : tuple of int
        The checkpoints averaged over.
    """

    score: float
    terms: pd.DataFrame
    per_checkpoint: pd.DataFrame
    phases: tuple


def _names(value, name: str) -> list:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a name or a list of names, got {value!r}")
    if not value:
        raise ValueError(f"{name} must be a non-empty list, got {value!r}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold names (strings), got {item!r}")
    return list(value)


def _epochs(phases) -> list:
    if isinstance(phases, str) or not isinstance(phases, Sequence | np.ndarray):
        raise TypeError(f"phases must be a list of epochs (ints), got {phases!r}")
    for e in phases:
        if isinstance(e, bool | np.bool_) or not isinstance(e, numbers.Integral):
            raise TypeError(f"phases must hold epochs (ints), got {e!r}")
    return sorted({int(e) for e in phases})


def stealth_score(
    history: pd.DataFrame,
    *,
    phases: Sequence[int] | None = None,
    target_groups: Sequence[str] = ("target_clean", "target_all"),
    clean_groups: Sequence[str] | None = None,
    measures: Sequence[str] = ("mi_xt", "mi_ty"),
) -> StealthScore:
    """S = sum over measures and target groups of D (see the module docstring).

    Parameters
    ----------
    history : pandas.DataFrame
        Columns ``epoch``, ``group`` and the ``measures``; one row per checkpoint and group.
    phases : sequence of int, optional
        The checkpoints to average over (None: every epoch of ``history``).
    target_groups : sequence of str, default=("target_clean", "target_all")
        The groups compared with the clean classes.
    clean_groups : sequence of str, optional
        The reference groups (None: every group whose name starts with ``"class_"``).
    measures : sequence of str, default=("mi_xt", "mi_ty")
        The columns scored.

    Returns
    -------
    StealthScore
        The score, its terms D and the per-checkpoint differences.

    Raises
    ------
    TypeError
        If ``history`` is not a DataFrame or a measure column holds no numbers; naming
        ``phases``, ``target_groups``, ``clean_groups`` or ``measures`` if they are not lists of
        ints (names).
    ValueError
        If a column is missing, a phase epoch or a group has no row, a (epoch, group) pair is
        repeated, a value is not finite, or there is no clean group.
    """
    if not isinstance(history, pd.DataFrame):
        raise TypeError(f"history must be a pandas DataFrame, got {type(history).__name__}")
    measures = _names(measures, "measures")
    target_groups = _names(target_groups, "target_groups")
    missing = [c for c in ("epoch", "group", *measures) if c not in history.columns]
    if missing:
        raise ValueError(
            f"history lacks the column(s) {missing} (epoch, group and measures {measures})"
        )
    for measure in measures:
        if not pd.api.types.is_numeric_dtype(history[measure]) or pd.api.types.is_bool_dtype(
            history[measure]
        ):
            raise TypeError(
                f"history: column {measure!r} must hold numbers, got dtype {history[measure].dtype}"
            )
    if history.duplicated(["epoch", "group"]).any():
        raise ValueError("history repeats an (epoch, group) pair")
    groups = set(history["group"])
    if clean_groups is None:
        clean_groups = sorted(g for g in groups if str(g).startswith("class_"))
        if not clean_groups:
            raise ValueError("history has no clean-class group (named 'class_<c>')")
    clean_groups = _names(clean_groups, "clean_groups")
    epochs = sorted(set(history["epoch"]))
    phases = epochs if phases is None else _epochs(phases)
    if not phases:
        raise ValueError("phases is empty")
    for e in phases:
        if e not in epochs:
            raise ValueError(f"phases: epoch {e} is not in the history (epochs {epochs})")
    table = history.set_index(["epoch", "group"])
    rows = []
    for measure in measures:
        for group in target_groups:
            for e in phases:
                keys = [(e, g) for g in [group, *clean_groups]]
                absent = [g for (_, g) in keys if (e, g) not in table.index]
                if absent:
                    which = "target_groups" if group in absent else "clean_groups"
                    raise ValueError(
                        f"{which}: history has no row for epoch {e} and group(s) {absent}"
                    )
                values = table.loc[keys, measure].to_numpy(dtype=np.float64)
                if not np.all(np.isfinite(values)):
                    raise ValueError(f"history: {measure} is not finite at epoch {e}")
                low, span = values.min(), values.max() - values.min()
                scaled = (values - low) / span if span > 0 else np.zeros_like(values)
                difference = abs(float(np.mean(scaled[0] - scaled[1:])))
                rows.append((e, measure, group, difference))
    per = pd.DataFrame(rows, columns=["epoch", "measure", "group", "difference"])
    terms = (
        per.groupby(["measure", "group"], sort=False)["difference"].mean().rename("D").reset_index()
    )
    return StealthScore(float(terms["D"].sum()), terms, per, tuple(phases))
