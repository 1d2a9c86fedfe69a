"""Run a grid-study configuration file and write its outputs (``backdoor-curves grid``).

Outputs in the output directory, each written atomically:

- ``study.sqlite`` — the resumable store (re-running the same config resumes it); a partial run
  (``max_points`` / ``where``) keeps its own store, ``study-part-<hash>.sqlite``, named after
  the points it runs, so that it neither refuses nor spoils the whole study's;
- ``table.csv`` — one row per grid point (the ``curve_*`` columns go to ``curves.csv``, one row
  per point and beta, when the config asks for curves);
- figures: ``slope_vs_accuracy.png`` (Fig. 5-7), ``accuracy_vs_regularization.png``,
  ``heatmaps_<learner>.png`` for learners swept over C and gamma (Fig. 8), and with curves
  ``curves_<learner>.png`` (Fig. 2, 4) and ``deviation_<learner>.png`` (Fig. 9-11); the robust
  region is marked on each; points whose setup failed (no lambda) are left out of them;
- ``report.md`` — the setup, the robust region and recommended setting, failed points (with
  their seeds), the compute time, figures.

The tables are written before the figures, so a figure that cannot be drawn costs no number.

Nothing is written outside the output directory: a ``[data]`` value that names where to write
(:data:`OUTPUT_PATH_KEYS`: the feature cache's ``cache_dir``) is taken relative to it, and one that
leads out of it (absolute elsewhere, or ``..``) is refused before any point runs
(:func:`outputs_inside`). Paths to read from (``root``, a weights file) may be anywhere.

Ctrl-C stops the run: the workers are stopped, every point finished so far stays in the store,
and :class:`~backdoor_curves._io.Interrupted` (a ``KeyboardInterrupt``) says how many.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import Interrupted, atomic_write, output_dir, output_path
from .learners import LEARNER_KINDS
from .study.config import GridConfig, load_config
from .study.grid import curves_frame, grid_points
from .study.robust import RobustRegion, robust_region
from .study.store import dumps
from .viz.grid_plots import plot_accuracy_heatmaps, plot_grid_curves, plot_grid_deviation
from .viz.plots import (
    format_number,
    plot_accuracy_vs_regularization,
    plot_slope_vs_accuracy,
    save_figure,
)
from .viz.report import failure_lines, format_setting, markdown_table, setting_parameters

__all__ = [
    "run_grid_config",
    "select_points",
    "grid_figures",
    "grid_report",
    "failed_points",
    "outputs_inside",
    "OUTPUT_PATH_KEYS",
]

STORE_NAME = "study.sqlite"
#: The keyword arguments of :func:`~backdoor_curves.study.robust.robust_region` that a run
#: passes on (``criteria`` of :func:`run_grid_config`).
CRITERIA = ("min_clean_accuracy", "max_backdoor_accuracy", "clean_drop", "seed_share")
#: ``[data]`` (and ``[grid]``) keys whose value is a path the run writes to.
OUTPUT_PATH_KEYS = ("cache_dir",)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "learner"


def failed_points(table: pd.DataFrame) -> pd.Series:
    """Which rows of a grid table failed: their ``error`` is not empty.

    Parameters
    ----------
    table : pandas.DataFrame
        A grid table (column ``error``: empty for a point that succeeded).

    Returns
    -------
    pandas.Series of bool
        True for a failed point, indexed like ``table``.
    """
    return table["error"].fillna("").astype(str) != ""


def _number(value) -> str:
    """A Markdown cell: three significant digits, empty when missing."""
    return "" if pd.isna(value) else format_number(float(value))


def _plottable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows with a finite positive lambda (a point whose setup failed has none)."""
    lam = pd.to_numeric(table["lambda"], errors="coerce")
    return table[np.isfinite(lam) & (lam > 0)]


def _learner_region(region: RobustRegion | None, name) -> RobustRegion | None:
    if region is None:
        return None
    if hasattr(region, "for_learner"):
        return region.for_learner(name)
    best = region.recommended  # a region without settings (built by hand from points)
    best = best if best is not None and best["learner"] == name else None
    return replace(region, points=region.points[region.points["learner"] == name], recommended=best)


def grid_figures(table: pd.DataFrame, region: RobustRegion | None = None) -> dict:
    """The figures of a grid table by file name (see the module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`backdoor_curves.study.grid.grid_study` (with ``curve_*`` columns for the
        curve and deviation figures). Rows without a finite positive ``lambda`` (points whose
        setup failed) are left out.
    region : RobustRegion, optional
        Marked on every figure (on a learner's heat maps, only that learner's points).

    Returns
    -------
    dict of str -> matplotlib.figure.Figure
        File name (``"slope_vs_accuracy.png"``, ``"heatmaps_<learner>.png"``, ...) -> figure; a
        figure is left out when the table has nothing for it (e.g. every slope failed).
    """
    figures = {}
    table = _plottable(table)
    if not len(table):
        return figures
    if len(table.dropna(subset=["score", "backdoor_accuracy"])):
        figures["slope_vs_accuracy.png"] = plot_slope_vs_accuracy(table, region=region)
    if table["clean_accuracy"].notna().any():
        figures["accuracy_vs_regularization.png"] = plot_accuracy_vs_regularization(
            table, region=region
        )
    has_curves = "curve_backdoor_loss" in table.columns
    for name, rows in table.groupby("learner", sort=False):
        slug = _slug(str(name))
        if {"C", "gamma"} <= set(rows.columns) and (
            rows["C"].nunique() > 1 and rows["gamma"].nunique() > 1
        ):
            figures[f"heatmaps_{slug}.png"] = plot_accuracy_heatmaps(
                rows, region=_learner_region(region, name)
            )
        if has_curves and rows["curve_backdoor_loss"].map(lambda v: isinstance(v, tuple)).any():
            figures[f"curves_{slug}.png"] = plot_grid_curves(rows)
            figures[f"deviation_{slug}.png"] = plot_grid_deviation(rows)
    return figures


def _timing_text(table: pd.DataFrame, seconds: float, resumed: int) -> str:
    compute = float(pd.to_numeric(table["seconds"], errors="coerce").fillna(0).sum())
    text = f"compute time {compute:.1f} s (sum of the points' `seconds`"
    if resumed >= len(table):
        return text + "; resumed: every point was computed by an earlier run)"
    if resumed:
        earlier = f"resumed: {resumed} of them computed by an earlier run"
        return text + f"; {earlier}), wall time of this run {seconds:.1f} s"
    return text + f"), wall time {seconds:.1f} s"


def grid_report(
    config: GridConfig,
    table: pd.DataFrame,
    region: RobustRegion,
    figures,
    seconds: float,
    *,
    resumed: int = 0,
    n_total: int | None = None,
    figure_errors: Mapping[str, str] | None = None,
) -> str:
    """A short Markdown report of a grid study.

    Parameters
    ----------
    config : GridConfig
        The configuration that was run (title, source, data).
    table : pandas.DataFrame
        Its grid table.
    region : RobustRegion
        The robust region of ``table``: its criteria, per-learner summary and recommended
        setting (every setting parameter named) are stated.
    figures : iterable of str
        File names of the figures written next to the report (linked relative to it).
    seconds : float
        Wall time of this run, in seconds.
    resumed : int, default=0
        Points read back from the store rather than computed by this run; the report states the
        compute time as the sum of the points' ``seconds`` (so a resumed run does not report the
        few seconds it took to read them).
    n_total : int, optional
        The number of points of the whole grid, when this run computed only part of it.
    figure_errors : dict of str -> str, optional
        Figures that could not be drawn -> why.

    Returns
    -------
    str
        The report in Markdown, ending with a newline; failed points are listed with their
        setting, seeds and error.
    """
    failed = failed_points(table)
    part = (
        f" (part of the grid's {n_total} points)"
        if n_total is not None and n_total != len(table)
        else ""
    )
    lines = [
        f"# {config.title}",
        "",
        f"Configuration: `{config.source or '(in memory)'}`. {len(table)} grid points{part}, "
        f"{int(failed.sum())} failed; {_timing_text(table, seconds, resumed)}.",
        "",
        "Data: " + ", ".join(f"{k} = {v}" for k, v in config.data.items())
        + f", random_state = {config.random_state}.",
        "",
        "## Robust region",
        "",
    ]  # fmt: skip
    crit = region.criteria
    text = []
    if crit.get("min_clean_accuracy") is not None:
        text.append(f"clean accuracy >= {crit['min_clean_accuracy']:g}")
    if crit.get("clean_drop") is not None:
        text.append(f"clean accuracy within {crit['clean_drop']:g} of the learner's best")
    text.append(f"backdoor accuracy <= {crit['max_backdoor_accuracy']:g} (at beta = 1)")
    lines.append("A point holds when " + ", ".join(text) + ".")
    share = crit.get("seed_share")
    if share is not None:
        seeds = "every seed" if share >= 1 else f"at least {share:.0%} of its seeds"
        lines.append(f"A setting is robust when it holds for {seeds}.")
    lines.append("")
    summary = region.summary
    columns = [
        c
        for c in ("learner", "n_points", "n_robust", "n_settings", "n_robust_settings")
        + ("lambda_min", "lambda_max")
        if c in summary
    ]
    formats = dict.fromkeys(("lambda_min", "lambda_max"), _number)
    lines.append(markdown_table(summary[columns], formats))
    lines.append("")
    best = region.recommended
    if best is None:
        lines.append("No setting is robust under these criteria.")
    else:
        setting = format_setting(best, setting_parameters(table, region), learner=False)
        seeds = ""
        if "n_seeds" in best.index and best["n_seeds"] > 1:
            seeds = f" (means over {int(best['n_seeds'])} seeds)"
        lines.append(
            f"**Recommended setting**: {best['learner']} {setting}; clean accuracy "
            f"{best['clean_accuracy']:.3f}, backdoor accuracy {best['backdoor_accuracy']:.3f}, "
            f"slope score {best['score']:.3f}{seeds}."
        )
    if failed.any():
        lines += ["", "## Failed points", ""]
        lines += [f"- {line}" for line in failure_lines(table, setting_parameters(table))]
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({name})" for name in figures]
    if not figures:
        lines.append("None: no point has the numbers a figure needs.")
    for name, why in (figure_errors or {}).items():
        lines.append(f"- {name} could not be drawn: {why}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- part of a grid
def _parse_filter(where) -> dict[str, list]:
    if where is None:
        return {}
    if isinstance(where, Mapping):
        items = where.items()
    else:
        items = []
        for text in where:
            key, sep, value = str(text).partition("=")
            if not sep or not key.strip():
                raise ValueError(f"where: expected KEY=VALUE, got {text!r}")
            items.append((key.strip(), value.strip()))
    out: dict[str, list] = {}
    for key, value in items:
        values = list(value) if isinstance(value, list | tuple) else [value]
        out.setdefault(key, []).extend(values)
    return out


def _same(value, wanted, key: str, config: GridConfig) -> bool:
    if key == "learner":
        kind = LEARNER_KINDS.get(str(wanted))
        learner = config.learners.get(value)
        return value == wanted or (kind is not None and isinstance(learner, kind.cls))
    if isinstance(value, tuple):
        parts = wanted if isinstance(wanted, list | tuple) else str(wanted).split(",")
        return len(parts) == len(value) and all(
            _same(v, w, key, config) for v, w in zip(value, parts, strict=True)
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return math.isclose(float(value), float(wanted), rel_tol=1e-9, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return str(value) == str(wanted)


def select_points(
    config: GridConfig, *, max_points: int | None = None, where=None
) -> tuple[GridConfig, int]:
    """The configuration restricted to part of its grid: filtered, then the first points.

    Parameters
    ----------
    config : GridConfig
        The whole study.
    max_points : int, optional
        Keep at most this many points (the first, in grid order, after ``where``).
    where : dict of str -> value(s), or list of "KEY=VALUE" str, optional
        Keep the points whose KEY (``learner``, a learner parameter, a data parameter or
        ``random_state``) equals VALUE; a key given several values matches any of them, several
        keys must all match. Numbers compare as floats (relative tolerance 1e-9), class pairs
        as "7,1", a learner by its name or kind ("rbf_svm").

    Returns
    -------
    config : GridConfig
        ``config`` itself when nothing is left out, else a copy whose ``param_grid`` lists the
        kept points one by one (each with its ``random_state``).
    n_total : int
        The number of points of the whole grid.

    Raises
    ------
    ValueError
        If ``max_points`` is not a positive int, a ``where`` item is not KEY=VALUE or names a
        key no point has, or no point is left.
    """
    if max_points is not None and (
        isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1
    ):
        raise ValueError(f"max_points must be a positive int, got {max_points!r}")
    wanted = _parse_filter(where)
    points = grid_points(config.param_grid, config.random_state)
    keys = {k for p in points for k in p}
    for key in wanted:
        if key not in keys:
            raise ValueError(f"where: no grid point has the key {key!r}; keys: {sorted(keys)}")
    kept = [
        p
        for p in points
        if all(k in p and any(_same(p[k], w, k, config) for w in ws) for k, ws in wanted.items())
    ]
    if not kept:
        shown = ", ".join(f"{k}={'|'.join(map(str, ws))}" for k, ws in wanted.items())
        raise ValueError(f"where: no grid point matches {shown}")
    if max_points is not None:
        kept = kept[:max_points]
    if len(kept) == len(points):
        return config, len(points)
    grid = [{k: [v] for k, v in p.items()} for p in kept]
    return replace(config, param_grid=grid), len(points)


def _stored_points(path: Path) -> int:
    """Points in a study store (0 if there is none). Only read, through a read-write
    connection all the same: its close folds SQLite's write-ahead log back into the file, where
    a read-only one would leave the ``-wal`` and ``-shm`` files beside it."""
    if not path.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return int(db.execute("SELECT COUNT(*) FROM points").fetchone()[0])
    except sqlite3.Error:
        return 0


def outputs_inside(config: GridConfig, out) -> GridConfig:
    """``config`` with its output paths (:data:`OUTPUT_PATH_KEYS`) inside ``out``.

    Parameters
    ----------
    config : GridConfig
        A configuration.
    out : str or path-like
        The run's output directory.

    Returns
    -------
    GridConfig
        ``config`` itself when it names no output path, else a copy whose ``[data]`` (and
        ``[grid]``) output paths are taken relative to ``out``.

    Raises
    ------
    ValueError
        Naming the key (``data.cache_dir``, ``grid.cache_dir``) of a path outside ``out``:
        absolute elsewhere, or climbing out with ``..``.
    """
    data = dict(config.data)
    for key in OUTPUT_PATH_KEYS:
        if data.get(key) is not None:
            data[key] = str(output_path(data[key], f"data.{key}", out))
    grid = []
    for entry in config.param_grid:
        entry = dict(entry)
        for key in OUTPUT_PATH_KEYS:
            if key in entry:
                entry[key] = [
                    v if v is None else str(output_path(v, f"grid.{key}", out)) for v in entry[key]
                ]
        grid.append(entry)
    if data == config.data and grid == config.param_grid:
        return config
    return replace(config, data=data, param_grid=grid)


def _check_criteria(criteria: Mapping | None) -> dict:
    """The robust-region thresholds, checked by robust_region itself before any point runs."""
    criteria = {k: v for k, v in dict(criteria or {}).items() if v is not None}
    unknown = sorted(set(criteria) - set(CRITERIA))
    if unknown:
        raise ValueError(f"criteria: unknown key(s) {unknown}; allowed: {list(CRITERIA)}")
    empty = pd.DataFrame(
        {"learner": pd.Series(dtype=object), "clean_accuracy": [], "backdoor_accuracy": []}
    )
    robust_region(empty, **criteria)
    return criteria


def run_grid_config(
    config,
    out_dir,
    *,
    n_jobs: int = 1,
    scheduler=None,
    progress: bool = True,
    max_points: int | None = None,
    where=None,
    criteria: Mapping | None = None,
    recompute_changed: bool = False,
) -> dict:
    """Run a configuration (path or :class:`GridConfig`) and write its outputs into ``out_dir``.

    Re-running with the same ``out_dir`` resumes the study from ``study.sqlite``. The
    configuration, the selection and the thresholds are checked before any point runs.

    Parameters
    ----------
    config : str, path-like or GridConfig
        A TOML configuration file (read with :func:`~backdoor_curves.study.config.load_config`)
        or a configuration already parsed.
    out_dir : str or path-like
        Output directory (created if missing); the outputs of the module docstring go there,
        and nothing anywhere else.
    n_jobs : int, default=1
        Parallel workers (-1: all CPUs); ignored with ``scheduler``.
    scheduler : str, dask Client or cluster, optional
        A Dask scheduler address ("tcp://host:8786"), client or cluster: the points run on that
        cluster (joblib's Dask backend). Default: local joblib processes.
    progress : bool, default=True
        Show a progress bar over the points.
    max_points : int, optional
        Run only the first points of the grid (after ``where``), see :func:`select_points`.
    where : dict or list of "KEY=VALUE" str, optional
        Run only the matching points, see :func:`select_points`.
    criteria : dict, optional
        Thresholds of the robust region, keyword arguments of
        :func:`~backdoor_curves.study.robust.robust_region`: ``min_clean_accuracy``,
        ``max_backdoor_accuracy``, ``clean_drop``, ``seed_share`` (None values: the default).
    recompute_changed : bool, default=False
        When the store holds points of a data set or learner that has changed since (an edited
        data factory, another default parameter), recompute those points instead of refusing
        (see :func:`~backdoor_curves.study.grid.grid_study`).

    Returns
    -------
    dict
        ``table`` (DataFrame, the grid table with its ``curve_*`` columns), ``region``
        (RobustRegion under ``criteria``), ``paths`` (file name -> Path of every file written,
        and ``"store"``), ``n_failed`` (points with an error), ``n_total`` (points of the whole
        grid), ``resumed`` (points read back from the store), ``seconds`` (wall time of this
        run), ``compute_seconds`` (sum of the points' ``seconds``) and ``figure_errors``
        (figure -> why it could not be drawn).

    Raises
    ------
    ValueError
        If the configuration, the selection or a threshold is invalid, an output path of the
        configuration lies outside ``out_dir`` (:func:`outputs_inside`), or the store in
        ``out_dir`` holds a different study.
    Interrupted
        On Ctrl-C (a ``KeyboardInterrupt``), once the workers are stopped; its ``kept`` says how
        many points the store keeps for the next run.
    """
    if not isinstance(config, GridConfig):
        config = load_config(config)
    if not isinstance(out_dir, str | os.PathLike):
        raise TypeError(
            f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__}"
        )
    criteria = _check_criteria(criteria)
    selected, n_total = select_points(config, max_points=max_points, where=where)
    name = STORE_NAME
    if selected is not config:  # part of the grid: a store of its own, named by its points
        digest = hashlib.sha256(dumps(selected.param_grid).encode()).hexdigest()[:10]
        name = f"study-part-{digest}.sqlite"
    config = outputs_inside(selected, out_dir)
    out = output_dir(out_dir)
    store = out / name
    resumed = _stored_points(store)
    start = time.perf_counter()
    backend = "dask" if scheduler is not None else None
    try:
        table = config.run(
            n_jobs=n_jobs,
            backend=backend,
            scheduler=scheduler,
            store=store,
            progress=progress,
            recompute_changed=recompute_changed,
        )
        seconds = time.perf_counter() - start
        return _write_outputs(config, table, out, store, criteria, seconds, resumed, n_total)
    except KeyboardInterrupt as exc:  # Ctrl-C: the workers are stopped, finished points kept
        n_points = len(grid_points(config.param_grid, config.random_state))
        kept = f"{_stored_points(store)} of {n_points} grid points are kept in {store}"
        raise Interrupted(kept) from exc


def _write_outputs(
    config: GridConfig,
    table: pd.DataFrame,
    out: Path,
    store: Path,
    criteria: dict,
    seconds: float,
    resumed: int,
    n_total: int,
) -> dict:
    """Write the table(s), figures and report of a finished run; the result of
    :func:`run_grid_config`."""
    resumed = min(resumed, len(table))
    paths = {}
    flat = table[[c for c in table.columns if not c.startswith("curve_")]]
    paths["table.csv"] = atomic_write(out / "table.csv", lambda f: flat.to_csv(f, index=False))
    if config.betas is not None:
        long = curves_frame(table)
        paths["curves.csv"] = atomic_write(
            out / "curves.csv", lambda f: long.to_csv(f, index=False)
        )
    region = robust_region(table, **criteria)
    figures, figure_errors = {}, {}
    try:
        figures = grid_figures(table, region)
    except (TypeError, ValueError) as exc:
        figure_errors["figures"] = f"{type(exc).__name__}: {exc}"
    for name, fig in figures.items():
        try:
            paths[name] = save_figure(fig, out / name)
        except (OSError, ValueError) as exc:
            figure_errors[name] = f"{type(exc).__name__}: {exc}"
    written = [name for name in figures if name in paths]
    report = grid_report(
        config, table, region, written, seconds,
        resumed=resumed, n_total=n_total, figure_errors=figure_errors,
    )  # fmt: skip
    paths["report.md"] = atomic_write(out / "report.md", lambda f: f.write(report))
    paths["store"] = store
    return {
        "table": table,
        "region": region,
        "paths": paths,
        "n_failed": int(failed_points(table).sum()),
        "n_total": n_total,
        "resumed": resumed,
        "seconds": seconds,
        "compute_seconds": float(pd.to_numeric(table["seconds"], errors="coerce").sum()),
        "figure_errors": figure_errors,
    }
