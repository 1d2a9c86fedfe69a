"""Backdoor learning curves and finite-difference slopes of neural networks (DESIGN §4).

A point of the curve is a training run: the model trained with weight beta on the poisoned
samples (:func:`backdoor_curves.nn.train.train`), evaluated on the clean test set V and the
backdoor test set V_t. Every beta starts from the same initial weights and sees the same batches
in the same order (the seed of the configuration fixes both), so the curve's differences come
from beta alone. The slope is paper 001's Eq. 7, a finite difference of the backdoor loss
between two such runs,

    derivative(h) = (L(V_t, theta(h)) - L(V_t, theta(0))) / h,
    score(h)      = -(2/pi) arctan(derivative(h))                       in (-1, 1),

for several steps h (small steps and the secant h = 1) and several seeds. The independent
trainings of a curve or a slope may run in parallel processes (joblib, ``n_jobs``); each is
deterministic on its own, so the numbers do not depend on ``n_jobs``.

torch is imported when a function runs (``import backdoor_curves.nn.curves`` does not import it).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from .._validation import check_betas, check_n_jobs, check_seed
from ..data import ImageBackdoorData
from ..measures.curves import SCORE_COLUMNS
from ..measures.deviation import parameter_deviation
from ..measures.results import LearningCurve, default_betas, slope_score
from ..utils import require_torch
from .train import TrainConfig, _check_config, deterministic, evaluate, train

__all__ = ["DEFAULT_H", "NNBackdoorSlope", "nn_backdoor_slope", "nn_learning_curve"]

#: The default finite-difference steps of :func:`nn_backdoor_slope`: two small ones and the secant.
DEFAULT_H = (0.01, 0.1, 1.0)


def _check_common(model_factory, data, checkpoint_dir, label, progress):
    if not callable(model_factory):
        raise TypeError(
            "model_factory must be a callable returning a fresh torch.nn.Module, got "
            f"{type(model_factory).__name__}"
        )
    if not isinstance(data, ImageBackdoorData):
        raise TypeError(
            "data must be an ImageBackdoorData (see backdoor_curves.attacks.multiclass."
            f"poison_multiclass), got {type(data).__name__}"
        )
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, str | Path):
        raise TypeError(
            f"checkpoint_dir must be None or a path, got {type(checkpoint_dir).__name__}"
        )
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be None or a str, got {type(label).__name__}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")


def _run_dir(checkpoint_dir, seed: int, beta: float) -> Path | None:
    if checkpoint_dir is None:
        return None
    return Path(checkpoint_dir) / f"seed={seed}" / f"beta={beta!r}"


def _train_point(model_factory, data, beta, config, run_dir, progress, with_vector):
    """Train at one beta and evaluate; the worker of the curve's and the slope's trainings."""
    torch = require_torch()
    with deterministic(config):
        result = train(model_factory, data, beta, config, checkpoint_dir=run_dir, progress=progress)
        scores = evaluate(result.model, data)
    vector = None
    if with_vector:
        with torch.no_grad():
            vector = torch.cat([p.detach().reshape(-1) for p in result.model.parameters()])
            vector = vector.to("cpu", torch.float64).numpy()
    return scores, vector, type(result.model).__name__


def _trainings(tasks, n_jobs: int):
    """Run ``_train_point(*task)`` for each task, in order (a generator of results)."""
    if n_jobs == 1:
        return (_train_point(*task) for task in tasks)
    return Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_train_point)(*task) for task in tasks
    )


def _regularization(config: TrainConfig) -> float:
    return config.weight_decay if isinstance(config.optimizer, str) else math.nan


def nn_learning_curve(
    model_factory: Callable[[], Any],
    data: ImageBackdoorData,
    betas=None,
    config: TrainConfig | None = None,
    *,
    label: str | None = None,
    checkpoint_dir=None,
    n_jobs: int = 1,
    progress: bool = False,
) -> LearningCurve:
    """The backdoor learning curve of a neural network: one training run per beta.

    Each beta (and beta = 0, the reference of the parameter deviation, always) is trained by
    :func:`~backdoor_curves.nn.train.train` with the same configuration, hence the same initial
    weights and the same batch order, and evaluated by
    :func:`~backdoor_curves.nn.train.evaluate`.

    Parameters
    ----------
    model_factory : callable
        Returns a fresh ``torch.nn.Module`` (e.g. ``functools.partial(SmallCNN, width=8)``);
        picklable when ``n_jobs`` is not 1.
    data : ImageBackdoorData
        The poisoned data set.
    betas : array-like of float in [0, 1], optional
        Weights of the poisoned samples, in the order wanted (repeats allowed, each trained
        once); default ``default_betas(11)``: 0 and ten log-spaced values from 0.01 to 1.
    config : TrainConfig, optional
        The training configuration (epochs, batches, optimizer, seed, device, threads);
        ``TrainConfig()`` when omitted.
    label : str, optional
        The curve's display label (:attr:`LearningCurve.learner`); the model's class name
        (e.g. ``"SmallCNN"``, ``"ResNet"``) when omitted.
    checkpoint_dir : str or Path, optional
        Root of the runs' checkpoints, one sub-directory ``seed=<seed>/beta=<beta>`` per beta:
        a re-run resumes unfinished trainings and reads finished ones back without training.
    n_jobs : int, default=1
        Trainings run in parallel (joblib processes; -1: all CPUs). Each training is
        deterministic on its own with ``config.threads`` threads, so the curve does not depend
        on ``n_jobs``.
    progress : bool, default=False
        Show each training's progress bar (with ``n_jobs=1``).

    Returns
    -------
    LearningCurve
        One value per requested beta: ``backdoor_loss`` (mean cross-entropy in nats on V_t
        against the attacker's labels), ``clean_loss`` (on V), ``clean_accuracy``,
        ``backdoor_accuracy`` (attack success rate), and the deviation of all the model's
        parameters flattened into one vector w relative to w(0): ``rho`` = ||w(beta)||_2,
        ``rho_ratio`` = rho / ||w(0)||_2, ``nu`` = (1 - cos(w(0), w(beta))) / 2 in [0, 1]
        (buffers such as batch-norm statistics are not parameters). ``regularization`` is the
        optimizer's weight decay (``config.weight_decay``, the L2 coefficient, not 1/C), or NaN
        when ``config.optimizer`` is a callable whose decay is unknown; ``params`` holds the
        configuration (:meth:`TrainConfig.describe`) and the number of parameters.

    Raises
    ------
    TypeError
        Naming ``model_factory``, ``data``, ``config``, ``checkpoint_dir``, ``label``,
        ``n_jobs`` or ``progress`` of the wrong kind.
    ValueError
        Naming ``betas`` if a beta is outside [0, 1]; naming ``model_factory`` if the model's
        output is not (n, data.n_classes); naming ``checkpoint_dir`` if it holds the checkpoints
        of another training.
    """
    _check_common(model_factory, data, checkpoint_dir, label, progress)
    config = _check_config(config)
    betas = default_betas(11) if betas is None else check_betas(betas)
    n_jobs = check_n_jobs(n_jobs)
    unique = np.unique(np.r_[0.0, betas])  # sorted: beta = 0 comes first
    show = progress and n_jobs == 1
    tasks = [
        (model_factory, data, b, config, _run_dir(checkpoint_dir, config.seed, b), show, True)
        for b in map(float, unique)
    ]
    rows: dict[float, dict] = {}
    w0 = None
    names = set()
    for beta, (scores, vector, name) in zip(unique, _trainings(tasks, n_jobs), strict=True):
        names.add(name)
        if w0 is None:
            w0 = vector
        deviation = parameter_deviation(vector[None, :], w0)
        rows[float(beta)] = {**scores, **{key: float(v[0]) for key, v in deviation.items()}}
    columns = (*SCORE_COLUMNS, "rho", "rho_ratio", "nu")
    values = {c: np.array([rows[float(b)][c] for b in betas]) for c in columns}
    model_name = ", ".join(sorted(names))
    params = {**config.describe(), "model": model_name, "n_parameters": int(w0.size)}
    return LearningCurve(
        betas,
        values,
        label if label is not None else model_name,
        _regularization(config),
        params=params,
    )


def _check_steps(h) -> np.ndarray:
    if isinstance(h, numbers.Real) and not isinstance(h, bool):
        h = (h,)
    if isinstance(h, str) or not isinstance(h, Sequence | np.ndarray):
        raise TypeError(f"h must be a float or a sequence of floats in (0, 1], got {h!r}")
    steps = []
    for value in h:
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise TypeError(f"h must hold real numbers in (0, 1], got {value!r}")
        if not (math.isfinite(value) and 0.0 < value <= 1.0):
            raise ValueError(f"h must lie in (0, 1] (a step of beta from 0), got {value!r}")
        steps.append(float(value))
    if not steps:
        raise ValueError("h must hold at least one step")
    if len(set(steps)) != len(steps):
        raise ValueError(f"h must not repeat a step, got {list(h)}")
    return np.array(steps)


def _check_seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = (seeds,)
    if isinstance(seeds, str) or not isinstance(seeds, Sequence | np.ndarray):
        raise TypeError(f"seeds must be a sequence of non-negative ints, got {seeds!r}")
    out = tuple(check_seed(s, "seeds") for s in seeds)
    if not out:
        raise ValueError("seeds must hold at least one seed")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must not repeat a seed, got {list(out)}")
    return out


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size >= 2 else math.nan


@dataclass(frozen=True)
class NNBackdoorSlope:
    """Finite-difference backdoor learning slopes of a neural network, per step and seed.

    Attributes
    ----------
    h : ndarray of shape (n_h,)
        The steps of beta, in the order requested.
    seeds : tuple of int
        The seeds (each fixes the initial weights and the batch order of its trainings).
    table : pandas.DataFrame
        One row per (seed, h), seeds outermost: ``seed``, ``h``, ``backdoor_loss_0`` (L(0),
        mean cross-entropy in nats on V_t of the model trained at beta = 0), ``backdoor_loss_h``
        (L(h)), ``derivative`` ((L(h) - L(0)) / h, nats per unit of beta; negative when the
        poison lowers the backdoor loss), ``score`` (-(2/pi) arctan(derivative), in (-1, 1),
        positive when the backdoor is being learned), and ``clean_loss``, ``clean_accuracy``,
        ``backdoor_accuracy`` at beta = 0 (suffix ``_0``) and at beta = h (suffix ``_h``).
    derivative : ndarray of shape (n_h,)
        Mean over the seeds of the derivative at each step.
    derivative_std : ndarray of shape (n_h,)
        Their sample standard deviation (ddof = 1; NaN for a single seed).
    score : ndarray of shape (n_h,)
        Mean over the seeds of the per-seed scores (not the score of the mean derivative).
    score_std : ndarray of shape (n_h,)
        Their sample standard deviation (ddof = 1; NaN for a single seed).
    backdoor_loss : float
        L(0) averaged over the seeds (one training at beta = 0 per seed, shared by every h).
    learner : str
        Display label of the model (its class name unless given).
    regularization : float
        The optimizer's weight decay (``config.weight_decay``), NaN for a callable optimizer.
    params : dict
        The training configuration (:meth:`TrainConfig.describe`, without the seed) and the
        model's class name.
    """

    h: np.ndarray
    seeds: tuple
    table: pd.DataFrame = field(repr=False)
    derivative: np.ndarray
    derivative_std: np.ndarray
    score: np.ndarray
    score_std: np.ndarray
    backdoor_loss: float
    learner: str
    regularization: float
    params: dict = field(default_factory=dict, repr=False)

    def summary(self) -> pd.DataFrame:
        """One row per step h with the mean and spread over the seeds.

        Returns
        -------
        pandas.DataFrame
            Columns ``h``, ``derivative``, ``derivative_std``, ``score``, ``score_std``,
            ``n_seeds``.
        """
        return pd.DataFrame(
            {
                "h": self.h,
                "derivative": self.derivative,
                "derivative_std": self.derivative_std,
                "score": self.score,
                "score_std": self.score_std,
                "n_seeds": len(self.seeds),
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """The per-(seed, h) table (a copy of :attr:`table`).

        Returns
        -------
        pandas.DataFrame
            One row per seed and step; ``attrs`` holds the learner and the regularization.
        """
        frame = self.table.copy()
        frame.attrs.update(learner=self.learner, regularization=self.regularization)
        return frame


def nn_backdoor_slope(
    model_factory: Callable[[], Any],
    data: ImageBackdoorData,
    config: TrainConfig | None = None,
    h=DEFAULT_H,
    seeds=(0,),
    *,
    label: str | None = None,
    checkpoint_dir=None,
    n_jobs: int = 1,
    progress: bool = False,
) -> NNBackdoorSlope:
    """The finite-difference backdoor learning slope (L(h) - L(0)) / h of a neural network.

    For each seed, the model is trained once at beta = 0 and once at each beta = h, all from
    the same initial weights and with the same batches (``dataclasses.replace(config,
    seed=seed)``), and L is the mean backdoor loss on V_t (:func:`~backdoor_curves.nn.train.
    evaluate`). Small h approximate the derivative of the training run at beta = 0; h = 1 is the
    secant between clean and ordinary poisoned training (paper 001, Eq. 7 and Table 1).

    Parameters
    ----------
    model_factory : callable
        Returns a fresh ``torch.nn.Module``; picklable when ``n_jobs`` is not 1.
    data : ImageBackdoorData
        The poisoned data set.
    config : TrainConfig, optional
        The training configuration; its ``seed`` is replaced by each of ``seeds``.
        ``TrainConfig()`` when omitted.
    h : float or sequence of float in (0, 1], default=(0.01, 0.1, 1.0)
        The steps of beta, distinct.
    seeds : int or sequence of int, default=(0,)
        Distinct non-negative seeds; the spread over them is reported.
    label : str, optional
        Display label; the model's class name when omitted.
    checkpoint_dir : str or Path, optional
        Root of the runs' checkpoints (``seed=<seed>/beta=<beta>``, the layout of
        :func:`nn_learning_curve`, so the two share finished trainings).
    n_jobs : int, default=1
        Trainings run in parallel (joblib processes); the result does not depend on it.
    progress : bool, default=False
        Show each training's progress bar (with ``n_jobs=1``).

    Returns
    -------
    NNBackdoorSlope
        The per-(seed, h) table and, per h, the mean and standard deviation over the seeds of
        the derivative and of the score.

    Raises
    ------
    TypeError
        Naming ``model_factory``, ``data``, ``config``, ``h``, ``seeds``, ``checkpoint_dir``,
        ``label``, ``n_jobs`` or ``progress`` of the wrong kind.
    ValueError
        Naming ``h`` if a step is not in (0, 1] or repeats, ``seeds`` if one is negative or
        repeats or none is given; naming ``model_factory`` if the model's output is not
        (n, data.n_classes).
    """
    _check_common(model_factory, data, checkpoint_dir, label, progress)
    config = _check_config(config)
    steps = _check_steps(h)
    seeds = _check_seeds(seeds)
    n_jobs = check_n_jobs(n_jobs)
    show = progress and n_jobs == 1
    tasks, keys = [], []
    for seed in seeds:
        cfg = dataclasses.replace(config, seed=seed)
        for beta in (0.0, *map(float, steps)):
            run_dir = _run_dir(checkpoint_dir, seed, beta)
            tasks.append((model_factory, data, beta, cfg, run_dir, show, False))
            keys.append((seed, beta))
    results = {}
    names = set()
    for key, (scores, _, name) in zip(keys, _trainings(tasks, n_jobs), strict=True):
        results[key] = scores
        names.add(name)
    rows = []
    for seed in seeds:
        base = results[(seed, 0.0)]
        for step in steps:
            at = results[(seed, float(step))]
            derivative = (at["backdoor_loss"] - base["backdoor_loss"]) / step
            rows.append(
                {
                    "seed": seed,
                    "h": step,
                    "backdoor_loss_0": base["backdoor_loss"],
                    "backdoor_loss_h": at["backdoor_loss"],
                    "derivative": derivative,
                    "score": float(slope_score(derivative)),
                    "clean_loss_0": base["clean_loss"],
                    "clean_accuracy_0": base["clean_accuracy"],
                    "backdoor_accuracy_0": base["backdoor_accuracy"],
                    "clean_loss_h": at["clean_loss"],
                    "clean_accuracy_h": at["clean_accuracy"],
                    "backdoor_accuracy_h": at["backdoor_accuracy"],
                }
            )
    table = pd.DataFrame(rows)
    by_h = [table[table["h"] == step] for step in steps]
    model_name = ", ".join(sorted(names))
    params = {**config.describe(), "model": model_name}
    params.pop("seed")
    return NNBackdoorSlope(
        h=steps,
        seeds=seeds,
        table=table,
        derivative=np.array([part["derivative"].mean() for part in by_h]),
        derivative_std=np.array([_std(part["derivative"].to_numpy()) for part in by_h]),
        score=np.array([part["score"].mean() for part in by_h]),
        score_std=np.array([_std(part["score"].to_numpy()) for part in by_h]),
        backdoor_loss=float(np.mean([results[(s, 0.0)]["backdoor_loss"] for s in seeds])),
        learner=label if label is not None else model_name,
        regularization=_regularization(config),
        params=params,
    )
