"""The attack table of an nn study: each attack ranked by several notions of stealth at once
(issue 16).

One row per attack and model (at the largest epoch budget), from the summary of
:func:`~backdoor_curves.nn_run.run_nn_config`:

- ``clean_accuracy``: clean test accuracy of the network trained on the poisoned set
  (beta = 1);
- ``attack_success``: its backdoor accuracy, the share of triggered test images classified as
  the target;
- ``isolation_precision``: the largest IP(e) over epochs 1-5 of the tracked training (paper
  002: the share of poisoned samples among the floor(eta n) lowest-loss samples; chance = eta;
  high means the early-fitting defense isolates the poison); ``ip_epoch_1`` ...
  ``ip_epoch_3``: IP after each of the first three epochs;
- ``slope_derivative``: the exact derivative dL(V_t)/dbeta at beta = 0 of the training run (or
  the finite difference at the smallest h without ``exact``), nats of mean backdoor loss per
  unit of beta (negative: the backdoor is being learned); ``slope_score`` = -(2/pi) arctan of
  it, in (-1, 1), higher means the backdoor is learned faster (paper 001; it saturates near 1
  once |derivative| >> 1: compare the derivatives then);
- ``stealth``: the dynamics-based stealthiness score S of paper 000
  (:func:`~backdoor_curves.dynamics.stealth.stealth_score`), in [0, 4], lower means the target
  class's mutual-information trajectory evolves like a clean class's; ``stealth_floor``: the
  same score with a clean class in the target's place, the estimator's noise floor;
- ``convex_score``, ``convex_robust_share``, ``convex_clean_accuracy``,
  ``convex_attack_success``: the same trigger on an embedded two-class MNIST problem with a
  convex learner (:func:`convex_attack_scores`): the exact slope score at the ``[convex] at``
  setting, the share of the regularization grid inside the robust region, and the accuracies at
  ``at``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._validation import check_fraction, check_seed
from .attacks.poisoning import poison
from .datasets.mnist import load_mnist_pair
from .learners import learner_kind
from .nn.sections import ConvexSpec
from .study.grid import grid_study
from .study.robust import robust_region

__all__ = ["ATTACK_COLUMNS", "attack_table", "convex_attack_scores"]

#: The columns of :func:`attack_table` after the labels.
ATTACK_COLUMNS = (
    "clean_accuracy",
    "attack_success",
    "isolation_precision",
    "ip_epoch_1",
    "ip_epoch_2",
    "ip_epoch_3",
    "slope_derivative",
    "slope_score",
    "stealth",
    "stealth_floor",
    "convex_score",
    "convex_robust_share",
    "convex_clean_accuracy",
    "convex_attack_success",
)


def convex_attack_scores(
    spec: ConvexSpec, data_keys: dict, *, fraction: float, random_state: int
) -> dict:
    """One attack on the two-class problem of ``spec``: slope score, robust share, accuracies.

    The pair of embedded MNIST digits (28 x 28, :func:`~backdoor_curves.datasets.mnist.
    load_mnist_pair`) is poisoned with the attack's trigger (:func:`~backdoor_curves.attacks.
    poisoning.poison`: the first digit's images relabelled as the second), and a grid study of
    ``spec.learner`` over ``spec.C`` computes each setting's exact slope and accuracies.

    Parameters
    ----------
    spec : ConvexSpec
        The ``[convex]`` table.
    data_keys : dict
        ``trigger`` and its parameters.
    fraction : float
        Poisoned fraction of the training set (used when ``spec.fraction`` is None).
    random_state : int
        The poisoning seed.

    Returns
    -------
    dict
        ``convex_score`` (the slope score at ``spec.at``), ``convex_robust_share`` (share of
        the grid in the robust region: backdoor accuracy <= ``spec.max_backdoor_accuracy`` and
        clean accuracy >= the grid's best - ``spec.clean_drop``), ``convex_clean_accuracy`` and
        ``convex_attack_success`` at ``spec.at``, and ``convex_table`` (a DataFrame of the
        grid's rows: regularization, accuracies, score, error).

    Raises
    ------
    TypeError
        Naming ``spec`` if it is not a ConvexSpec, ``data_keys`` if it is not a mapping, or a
        trigger parameter of the wrong type.
    ValueError
        Naming ``data_keys`` without ``trigger``, ``fraction`` outside (0, 1) (when
        ``spec.fraction`` is None), ``random_state`` if it is not a seed, or the trigger's
        name or parameter that :func:`~backdoor_curves.attacks.poisoning.poison` refuses.
    """
    if not isinstance(spec, ConvexSpec):
        raise TypeError(
            f"spec must be a ConvexSpec (the [convex] table), got {type(spec).__name__}"
        )
    if not isinstance(data_keys, Mapping):
        raise TypeError(
            f"data_keys must be a dict of 'trigger' and its parameters, got "
            f"{type(data_keys).__name__}"
        )
    if "trigger" not in data_keys:
        raise ValueError(f"data_keys must hold 'trigger', got keys {sorted(data_keys)}")
    if spec.fraction is None:
        check_fraction(fraction, "fraction")
    check_seed(random_state, "random_state")
    keys = dict(data_keys)
    trigger = keys.pop("trigger")
    X_train, y_train, X_test, y_test = load_mnist_pair(spec.digits)
    data = poison(
        X_train,
        y_train,
        X_test,
        y_test,
        trigger=trigger,
        fraction=spec.fraction if spec.fraction is not None else fraction,
        random_state=random_state,
        **keys,
    )
    learner = spec.make_learner(spec.at)
    param = learner_kind(learner).regularization  # "C", or "alpha" for ridge
    table = grid_study(learner, data, {param: list(spec.C)})
    region = robust_region(
        table,
        max_backdoor_accuracy=spec.max_backdoor_accuracy,
        clean_drop=spec.clean_drop,
    )
    at = table[np.isclose(table[param].astype(float), spec.at)].iloc[0]
    robust = 0 if region.points is None else len(region.points)
    columns = [param, "clean_accuracy", "backdoor_accuracy", "score", "error"]
    return {
        "convex_score": float(at["score"]),
        "convex_robust_share": robust / len(table),
        "convex_clean_accuracy": float(at["clean_accuracy"]),
        "convex_attack_success": float(at["backdoor_accuracy"]),
        "convex_table": table[[c for c in columns if c in table]].reset_index(drop=True),
    }


def attack_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The attack table: one row per attack and model at the largest epoch budget.

    Parameters
    ----------
    summary : DataFrame
        The nn run's summary (columns ``attack``, ``model``, ``epochs``, the accuracies at
        beta = 1, ``exact_score`` or ``score_h=...``, and, when computed,
        ``isolation_precision``, ``stealth`` and the ``convex_`` columns).

    Returns
    -------
    DataFrame
        ``attack``, ``model``, ``epochs`` and :data:`ATTACK_COLUMNS` (NaN where the run did not
        compute a column), in the order of the summary.

    Raises
    ------
    TypeError
        If ``summary`` is not a DataFrame.
    ValueError
        If ``summary`` has no ``attack`` column (the configuration had no ``[[attack]]``), no
        ``model`` or ``epochs`` column, or no row.
    """
    if not isinstance(summary, pd.DataFrame):
        raise TypeError(f"summary must be a pandas DataFrame, got {type(summary).__name__}")
    if "attack" not in summary.columns:
        raise ValueError("summary has no 'attack' column: give [[attack]] tables")
    missing = [c for c in ("model", "epochs") if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks the column(s) {missing}")
    if len(summary) == 0:
        raise ValueError("summary has no row")
    last = summary[summary["epochs"] == summary["epochs"].max()]
    fd = sorted(
        (c for c in summary.columns if c.startswith("score_h=")),
        key=lambda c: float(c.split("=", 1)[1]),
    )
    rows = []
    for _, row in last.iterrows():
        if "exact_score" in row and not _missing(row["exact_score"]):
            slope, derivative = float(row["exact_score"]), float(row["exact_derivative"])
        elif fd:  # the smallest step: score_h=... beside derivative_h=...
            slope = float(row[fd[0]])
            derivative = float(row["derivative" + fd[0][len("score") :]])
        else:
            slope = derivative = math.nan
        out = {
            "attack": row["attack"],
            "model": row["model"],
            "epochs": int(row["epochs"]),
            "clean_accuracy": row.get("clean_accuracy_1", math.nan),
            "attack_success": row.get("backdoor_accuracy_1", math.nan),
            "slope_derivative": derivative,
            "slope_score": slope,
        }
        for column in ATTACK_COLUMNS:
            out.setdefault(column, row.get(column, math.nan))
        rows.append(out)
    return pd.DataFrame(rows, columns=["attack", "model", "epochs", *ATTACK_COLUMNS])


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
