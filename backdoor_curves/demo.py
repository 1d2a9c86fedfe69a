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

This module holds the demo's configuration, its units of work, their joblib run and
:func:`run_demo`; the text is rendered by :mod:`backdoor_curves.viz.report`, the robust region
selected by :mod:`backdoor_curves.study.robust`, the figures saved (and closed) by
:func:`backdoor_curves.viz.save_figure` and the tables written by :mod:`backdoor_curves._io`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ._io import atomic_write, output_dir
from ._validation import check_n_jobs
from .attacks.poisoning import poison
from .data import BackdoorData, check_backdoor_data
from .datasets.mnist import load_mnist_pair
from .learners import DegenerateKKTError, LogisticLearner, RidgeLearner, learner_kind
from .learners.base import BaseLearner
from .measures.curves import learning_curve
from .measures.results import CURVE_COLUMNS, LearningCurve, default_betas
from .measures.slope import backdoor_slope
from .study.point import RESULT_COLUMNS, describe_error, evaluate_point, warning_text
from .study.robust import robust_summary
from .viz.plots import (
    format_number,
    plot_accuracy_vs_regularization,
    plot_curves,
    plot_deviation,
    plot_slope_vs_accuracy,
    plot_taylor,
    save_figure,
)
from .viz.report import ReportSetup, build_report, console_summary, summary_table

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

FIGURES = {
    "curves": "curves.png",
    "slope_vs_accuracy": "slope_vs_accuracy.png",
    "accuracy_vs_regularization": "accuracy_vs_regularization.png",
    "deviation": "deviation.png",
    "taylor": "taylor.png",
}
TABLES = {"curves_csv": "curves.csv", "grid_csv": "grid.csv", "report": "report.md"}
#: What the report's Setup section states about the configuration above.
REPORT_SETUP = ReportSetup(
    DIGITS, FRACTION, POISON_SEED, TRIGGER_SIZE, LINEAR_C_GRID, RBF_C_GRID, RBF_GAMMA
)

SPEC_COLUMNS = ("learner", "C", "alpha", "gamma", "lambda")
#: Columns of ``grid.csv``, one row per grid point (NaN where a quantity could not be computed).
GRID_COLUMNS = (*SPEC_COLUMNS, *RESULT_COLUMNS, "error", "warning", "seconds")
#: Columns of ``curves.csv``, one row per (curve, beta).
CURVE_TABLE_COLUMNS = (*SPEC_COLUMNS, "strength", *CURVE_COLUMNS)


# ---------------------------------------------------------------------------- what is computed
@dataclass(frozen=True)
class LearnerSpec:
    """One learner configuration of the demo.

    Parameters
    ----------
    learner : str
        A registered learner kind's label (:data:`~backdoor_curves.learners.LEARNER_KINDS`), e.g.
        "logistic" or "RBF SVM".
    C : float
        Weight of the data term; lambda = 1/C. For ridge, alpha = 1/(2C).
    gamma : float, optional
        RBF kernel width (RBF SVM only).
    """

    learner: str
    C: float
    gamma: float | None = None

    def make(self) -> BaseLearner:
        """The (unfitted) learner of the registered kind labelled ``learner``.

        Returns
        -------
        BaseLearner

        Raises
        ------
        ValueError
            If ``learner`` is not a registered kind's label.
        """
        kind = learner_kind(self.learner)
        params = {"alpha": self.alpha} if kind.regularization == "alpha" else {"C": self.C}
        if self.gamma is not None:
            params["gamma"] = self.gamma
        return kind.cls(**params)

    @property
    def alpha(self) -> float:
        """Ridge penalty alpha = 1/(2C) (NaN for learners regularized by C)."""
        if learner_kind(self.learner).regularization == "alpha":
            return 1.0 / (2.0 * self.C)
        return float("nan")

    def columns(self) -> dict:
        """The identifying columns of a table row.

        Returns
        -------
        dict
            ``learner``, ``C``, ``alpha`` (NaN unless the learner is regularized by alpha),
            ``gamma`` (NaN when not set) and ``lambda`` = 1/C, as floats (``learner`` a str).
        """
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
    """MNIST 7 vs 1 with 10% of the training set poisoned by a 3 x 3 BadNets patch.

    Returns
    -------
    BackdoorData
        The embedded digits (split seed 999), poisoned in place with seed 0.
    """
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
def _curve_unit(spec: LearnerSpec, data: BackdoorData, betas: np.ndarray) -> dict:
    """One learning curve; an error is returned, not raised."""
    start = time.perf_counter()
    curve, slope, error = None, None, ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            curve = learning_curve(spec.make(), data, betas=betas)
        except Exception as exc:  # recorded in the report instead of stopping the demo
            error = describe_error(exc)
        try:  # for the Taylor figure; a failure only leaves that panel out
            slope = backdoor_slope(spec.make(), data)
        except Exception:  # noqa: BLE001 - the grid reports slope errors
            slope = None
    return {
        "curve": curve,
        "slope": slope,
        "error": error,
        "warning": warning_text(caught),
        "seconds": time.perf_counter() - start,
    }


def _grid_unit(spec: LearnerSpec, data: BackdoorData) -> dict:
    """One grid point: the slope at beta = 0 and the accuracies at beta = 1.

    Computed by :func:`backdoor_curves.study.point.evaluate_point` (one beta = 0 fit shared by the
    slope and the deviation reference). The parts fail independently: a failed slope (e.g.
    ``DegenerateKKTError`` for an SVM without margin support vectors) still leaves the
    accuracies, and vice versa. Every failure is described in ``error``; warnings (e.g.
    ill-conditioned Hessians) in ``warning``.
    """
    start = time.perf_counter()
    row = {**spec.columns(), **evaluate_point(spec.make(), data)}
    row["seconds"] = time.perf_counter() - start
    return {c: row[c] for c in GRID_COLUMNS}


def _indexed(i: int, func: Callable, args: tuple):
    return i, func(*args)


def _run_units(
    tasks: list[tuple[Callable, tuple]], n_jobs: int, progress: bool, *, costs=None
) -> list:
    """Run ``func(*args)`` for each task through joblib; results in task order.

    With ``costs`` (one number per task), the costliest tasks are started first (ties in task
    order), so the workers finish together.
    """
    order = range(len(tasks))
    if costs is not None:
        order = sorted(order, key=lambda i: -costs[i])
    results: list = [None] * len(tasks)
    jobs = (delayed(_indexed)(i, *tasks[i]) for i in order)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    with tqdm(
        total=len(tasks), desc="backdoor-curves demo", unit="unit", disable=not progress
    ) as bar:
        for i, result in parallel(jobs):
            results[i] = result
            bar.update()
    return results


def _expected_cost(spec: LearnerSpec) -> float:
    """Rough relative cost of a grid point (logistic fits grow with C), for scheduling only."""
    cls = learner_kind(spec.learner).cls
    if issubclass(cls, LogisticLearner):
        return 2.0 + np.log10(spec.C)
    return 0.0 if issubclass(cls, RidgeLearner) else 0.5


def compute_curves(
    data: BackdoorData, specs=None, *, betas=None, n_jobs: int = 1, progress: bool = False
) -> tuple[list[LearningCurve | None], pd.DataFrame]:
    """Learning curves for ``specs`` (default: the demo's eight settings).

    Parameters
    ----------
    data : BackdoorData
        The poisoned data set (e.g. :func:`load_demo_data`).
    specs : list of (str, LearnerSpec), optional
        ``(strength, spec)`` pairs, strength "strong" or "weak"; default :data:`CURVE_SPECS`.
    betas : array-like of float in [0, 1], optional
        Betas of every curve; default :func:`~backdoor_curves.measures.default_betas`.
    n_jobs : int, default=1
        joblib workers, one curve per task (-1: all CPUs).
    progress : bool, default=False
        Show a progress bar over the curves.

    Returns
    -------
    curves : list of LearningCurve or None
        None where the curve failed.
    status : DataFrame
        One row per spec: its columns, ``strength``, ``error``, ``warning``, ``seconds``.

    Raises
    ------
    TypeError
        If ``data`` is not a BackdoorData or ``n_jobs`` not an int.
    ValueError
        If ``n_jobs`` is 0.
    """
    check_backdoor_data(data)
    n_jobs = check_n_jobs(n_jobs)
    specs = CURVE_SPECS if specs is None else list(specs)
    betas = default_betas() if betas is None else np.asarray(betas, dtype=float)
    results = _run_units([(_curve_unit, (s, data, betas)) for _, s in specs], n_jobs, progress)
    return _curve_results(specs, results)


def _curve_results(specs, results) -> tuple[list[LearningCurve | None], pd.DataFrame]:
    """The curves and their status table from the results of :func:`_curve_unit`."""
    status = pd.DataFrame(
        [
            {
                **spec.columns(),
                "strength": strength,
                "error": r["error"],
                "warning": r["warning"],
                "seconds": r["seconds"],
            }
            for (strength, spec), r in zip(specs, results, strict=True)
        ]
    )
    return [r["curve"] for r in results], status


def compute_grid(
    data: BackdoorData, specs=None, *, n_jobs: int = 1, progress: bool = False
) -> pd.DataFrame:
    """The grid table: slope at beta = 0 and accuracies at beta = 1, one row per spec.

    Parameters
    ----------
    data : BackdoorData
        The poisoned data set (e.g. :func:`load_demo_data`).
    specs : list of LearnerSpec, optional
        The grid points; default :data:`GRID_SPECS` (the demo's 40 points).
    n_jobs : int, default=1
        joblib workers, one point per task (-1: all CPUs).
    progress : bool, default=False
        Show a progress bar over the points.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GRID_COLUMNS`, rows in ``specs`` order. Failed points keep their row with
        NaN values and the ``error``.

    Raises
    ------
    TypeError
        If ``data`` is not a BackdoorData or ``n_jobs`` not an int.
    ValueError
        If ``n_jobs`` is 0.
    """
    check_backdoor_data(data)
    n_jobs = check_n_jobs(n_jobs)
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


# ---------------------------------------------------------------------------- figures
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


def _taylor_figure(curves, slopes, status: pd.DataFrame) -> Figure | None:
    """Exact curve vs first/second-order predictions, one panel per strongly regularized learner."""
    pairs = [
        (c, s)
        for c, s, strength in zip(curves, slopes, status["strength"], strict=True)
        if c is not None and s is not None and strength == "strong"
    ]
    if not pairs:
        return None
    fig = Figure(figsize=(5.0 * len(pairs), 4.4), layout="constrained")
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (curve, slope) in zip(axes, pairs, strict=True):
        plot_taylor(curve, slope, ax=ax)
        ax.set_title(f"{curve.learner}, lambda={format_number(curve.regularization)}")
    fig.suptitle(
        "Beyond the influence function: exact curve vs its 1st/2nd-order Taylor predictions "
        "(strong regularization)"
    )
    return fig


def _figures(
    curves: list[LearningCurve | None], status: pd.DataFrame, grid, slopes=None
) -> dict[str, Figure]:
    """The demo's figures by name (the curve figures only when at least one curve exists)."""
    figures = {}
    taylor = _taylor_figure(curves, slopes or [None] * len(curves), status)
    if taylor is not None:
        figures["taylor"] = taylor
    if any(c is not None for c in curves):
        figures["curves"] = _curves_figure(curves, status)
        figures["deviation"] = plot_deviation([c for c in curves if c is not None])
        figures["deviation"].set_size_inches(9.5, 5.0)
    figures["slope_vs_accuracy"] = plot_slope_vs_accuracy(grid)
    figures["slope_vs_accuracy"].set_size_inches(7.5, 5.0)
    figures["accuracy_vs_regularization"] = plot_accuracy_vs_regularization(grid)
    figures["accuracy_vs_regularization"].set_size_inches(9.0, 4.8)
    return figures


# ---------------------------------------------------------------------------- entry point
#: What a recorded error means, printed under the summary when a grid point has it.
_ERROR_NOTES = {
    DegenerateKKTError.__name__: (
        "slope: DegenerateKKTError means the SVM trained on the clean set (beta = 0) has no "
        "margin support vector (0 < alpha_i < C), so its slope dL/dbeta at beta = 0 is "
        "undefined; that point's accuracies and the learning curves are still exact."
    ),
}


def _error_notes(grid: pd.DataFrame) -> str:
    """One line explaining each kind of error of ``_ERROR_NOTES`` that ``grid`` records.

    Parameters
    ----------
    grid : pandas.DataFrame
        A grid table with an ``error`` column (as :func:`compute_grid` returns).

    Returns
    -------
    str
        The explanations, one line each, ending with a newline; empty when no error of a known
        kind occurred.
    """
    errors = grid["error"].fillna("").astype(str)
    found = [kind for kind in _ERROR_NOTES if errors.str.contains(kind, regex=False).any()]
    return "".join(_ERROR_NOTES[kind] + "\n" for kind in found)


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
    dict
        ``curves`` (DataFrame, the rows of ``curves.csv``), ``grid`` (DataFrame, ``grid.csv``),
        ``summary`` (the printed table), ``robust_region`` (DataFrame, see
        :func:`backdoor_curves.study.robust.robust_summary`), ``curve_objects`` (list of
        LearningCurve, None where one failed), ``curve_status`` (DataFrame), ``timings`` (dict of
        seconds) and ``paths`` (dict of name -> Path of every written file).

    Raises
    ------
    OSError
        If ``out_dir`` cannot be created or written.
    TypeError
        If ``out_dir`` is not a str or path-like, or ``n_jobs`` not an int.
    ValueError
        If ``out_dir`` exists and is not a directory, or ``n_jobs`` is 0.
    """
    n_jobs = check_n_jobs(n_jobs)
    out = output_dir(out_dir)

    t0 = time.perf_counter()
    data = load_demo_data()
    t_data = time.perf_counter()

    betas = default_betas()
    tasks = [(_curve_unit, (s, data, betas)) for _, s in CURVE_SPECS]
    tasks += [(_grid_unit, (s, data)) for s in GRID_SPECS]
    # the longest units first: the curves, then the costly grid points
    costs = [math.inf] * len(CURVE_SPECS) + [_expected_cost(s) for s in GRID_SPECS]
    results = _run_units(tasks, n_jobs, progress, costs=costs)
    curves, status = _curve_results(CURVE_SPECS, results[: len(CURVE_SPECS)])
    slopes = [r["slope"] for r in results[: len(CURVE_SPECS)]]
    grid = pd.DataFrame(results[len(CURVE_SPECS) :], columns=list(GRID_COLUMNS))
    t_compute = time.perf_counter()

    figures = _figures(curves, status, grid, slopes)
    paths = {name: save_figure(fig, out / FIGURES[name]) for name, fig in figures.items()}
    t_figures = time.perf_counter()

    curve_frame = curves_table(curves, status)
    paths["curves_csv"] = atomic_write(
        out / TABLES["curves_csv"], lambda f: curve_frame.to_csv(f, index=False)
    )
    paths["grid_csv"] = atomic_write(
        out / TABLES["grid_csv"], lambda f: grid.to_csv(f, index=False)
    )
    region = robust_summary(grid)
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
    report = build_report(
        data,
        grid,
        region,
        status,
        curves,
        timings,
        n_jobs=n_jobs,
        figures={name: FIGURES[name] for name in figures},
        setup=REPORT_SETUP,
    )
    paths["report"] = atomic_write(out / TABLES["report"], lambda f: f.write(report))
    # the report states the time up to its own writing; the returned timings include it
    timings["write"] = time.perf_counter() - t_figures
    timings["total"] = time.perf_counter() - t0

    if verbose:
        text = console_summary(summary, status, timings, out) + _error_notes(grid)
        print(text, end="", flush=True)

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
