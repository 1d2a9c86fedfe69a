"""Run a grid-study configuration file and write its outputs (``backdoor-curves grid``).

Outputs in the output directory, each written atomically:

- ``study.sqlite`` — the resumable store (re-running the same config resumes it);
- ``table.csv`` — one row per grid point (the ``curve_*`` columns go to ``curves.csv``, one row
  per point and beta, when the config asks for curves);
- figures: ``slope_vs_accuracy.png`` (Fig. 5-7), ``accuracy_vs_regularization.png``,
  ``heatmaps_<learner>.png`` for learners swept over C and gamma (Fig. 8), and with curves
  ``curves_<learner>.png`` (Fig. 2, 4) and ``deviation_<learner>.png`` (Fig. 9-11); the robust
  region is marked on each;
- ``report.md`` — the setup, the robust region and recommended setting, failed points, figures.
"""

from __future__ import annotations

import re
import time

import pandas as pd

from ._io import atomic_write, output_dir, save_figure
from .study.config import GridConfig, load_config
from .study.grid import curves_frame
from .study.robust import RobustRegion, robust_region
from .viz.grid_plots import plot_accuracy_heatmaps, plot_grid_curves, plot_grid_deviation
from .viz.plots import format_number, plot_accuracy_vs_regularization, plot_slope_vs_accuracy
from .viz.report import markdown_table

__all__ = ["run_grid_config", "grid_figures", "grid_report"]

STORE_NAME = "study.sqlite"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "learner"


def grid_figures(table: pd.DataFrame, region: RobustRegion | None = None) -> dict:
    """The figures of a grid table by file name (see the module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`backdoor_curves.study.grid.grid_study` (with ``curve_*`` columns for the
        curve and deviation figures).
    region : RobustRegion, optional
        Marked on every figure (on a learner's heat maps, only that learner's points).

    Returns
    -------
    dict of str -> matplotlib.figure.Figure
        File name (``"slope_vs_accuracy.png"``, ``"heatmaps_<learner>.png"``, ...) -> figure; a
        figure is left out when the table has nothing for it (e.g. every slope failed).
    """
    figures = {}
    ok = table.dropna(subset=["score", "backdoor_accuracy"])
    if len(ok):
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
            sub = None
            if region is not None:
                pts = region.points[region.points["learner"] == name]
                best = region.recommended
                best = best if best is not None and best["learner"] == name else None
                sub = RobustRegion(pts, best, region.summary, region.criteria)
            figures[f"heatmaps_{slug}.png"] = plot_accuracy_heatmaps(rows, region=sub)
        if has_curves and rows["curve_backdoor_loss"].map(lambda v: isinstance(v, tuple)).any():
            figures[f"curves_{slug}.png"] = plot_grid_curves(rows)
            figures[f"deviation_{slug}.png"] = plot_grid_deviation(rows)
    return figures


def grid_report(
    config: GridConfig, table: pd.DataFrame, region: RobustRegion, figures, seconds: float
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
        setting are stated.
    figures : iterable of str
        File names of the figures written next to the report (linked relative to it).
    seconds : float
        Wall time of the study, in seconds.

    Returns
    -------
    str
        The report in Markdown, ending with a newline; failed points are listed with their error.
    """
    failed = table[table["error"] != ""]
    lines = [
        f"# {config.title}",
        "",
        f"Configuration: `{config.source or '(in memory)'}`. {len(table)} grid points, "
        f"{len(failed)} failed, {seconds:.1f} s.",
        "",
        "Data: " + ", ".join(f"{k} = {v}" for k, v in config.data.items())
        + f", random_state = {config.random_state}.",
        "",
        "## Robust region",
        "",
    ]  # fmt: skip
    crit = region.criteria
    text = []
    if crit["min_clean_accuracy"] is not None:
        text.append(f"clean accuracy >= {crit['min_clean_accuracy']:g}")
    if crit["clean_drop"] is not None:
        text.append(f"clean accuracy within {crit['clean_drop']:g} of the learner's best")
    text.append(f"backdoor accuracy <= {crit['max_backdoor_accuracy']:g} (at beta = 1)")
    lines.append("A point is robust when " + ", ".join(text) + ".")
    lines.append("")
    summary = region.summary
    lines.append(
        markdown_table(
            summary[["learner", "n_points", "n_robust", "lambda_min", "lambda_max"]],
            {c: format_number for c in ("lambda_min", "lambda_max")},
        )
    )
    lines.append("")
    best = region.recommended
    if best is None:
        lines.append("No grid point is robust under these criteria.")
    else:
        params = [c for c in table.columns if c in best.index and c in _param_columns(table)]
        setting = ", ".join(
            f"{c} = {format_number(best[c]) if isinstance(best[c], float) else best[c]}"
            for c in params
            if pd.notna(best[c])
        )
        lines.append(
            f"**Recommended setting** (most accurate on clean data among the robust points): "
            f"{setting}; clean accuracy {best['clean_accuracy']:.3f}, backdoor accuracy "
            f"{best['backdoor_accuracy']:.3f}, slope score {best['score']:.3f}."
        )
    if len(failed):
        lines += ["", "## Failed points", ""]
        lines += [f"- {r['learner']} {r['estimator']}: {r['error']}" for _, r in failed.iterrows()]
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def _param_columns(table: pd.DataFrame) -> list[str]:
    end = list(table.columns).index("estimator")
    return list(table.columns[:end])


def run_grid_config(
    config, out_dir, *, n_jobs: int = 1, scheduler=None, progress: bool = True
) -> dict:
    """Run a configuration (path or :class:`GridConfig`) and write its outputs into ``out_dir``.

    Re-running with the same ``out_dir`` resumes the study from ``study.sqlite``.

    Parameters
    ----------
    config : str, path-like or GridConfig
        A TOML configuration file (read with :func:`~backdoor_curves.study.config.load_config`)
        or a configuration already parsed.
    out_dir : str or path-like
        Output directory (created if missing); the outputs of the module docstring go there.
    n_jobs : int, default=1
        Parallel workers (-1: all CPUs); ignored with ``scheduler``.
    scheduler : str, dask Client or cluster, optional
        A Dask scheduler address ("tcp://host:8786"), client or cluster: the points run on that
        cluster (joblib's Dask backend). Default: local joblib processes.
    progress : bool, default=True
        Show a progress bar over the points.

    Returns
    -------
    dict
        ``table`` (DataFrame, the grid table with its ``curve_*`` columns), ``region``
        (RobustRegion with the default criteria) and ``paths`` (file name -> Path of every file
        written, and ``"store"``).

    Raises
    ------
    ValueError
        If the configuration is invalid, or ``study.sqlite`` in ``out_dir`` holds a different
        study.
    """
    if not isinstance(config, GridConfig):
        config = load_config(config)
    out = output_dir(out_dir)
    start = time.perf_counter()
    backend = "dask" if scheduler is not None else None
    table = config.run(
        n_jobs=n_jobs, backend=backend, scheduler=scheduler, store=out / STORE_NAME,
        progress=progress,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    region = robust_region(table)
    figures = grid_figures(table, region)
    paths = {name: save_figure(fig, out / name) for name, fig in figures.items()}
    flat = table[[c for c in table.columns if not c.startswith("curve_")]]
    paths["table.csv"] = atomic_write(out / "table.csv", lambda f: flat.to_csv(f, index=False))
    if config.betas is not None:
        long = curves_frame(table)
        paths["curves.csv"] = atomic_write(
            out / "curves.csv", lambda f: long.to_csv(f, index=False)
        )
    report = grid_report(config, table, region, figures, seconds)
    paths["report.md"] = atomic_write(out / "report.md", lambda f: f.write(report))
    paths["store"] = out / STORE_NAME
    return {"table": table, "region": region, "paths": paths}
