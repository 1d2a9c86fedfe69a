"""Figures of grid-study tables (one function per kind; each returns its Figure).

- :func:`backdoor_curves.viz.plots.plot_slope_vs_accuracy` (paper 001, Fig. 5-7) and
  :func:`backdoor_curves.viz.plots.plot_accuracy_vs_regularization` take a grid table directly and
  mark a robust region (``region=``);
- :func:`plot_accuracy_heatmaps`: C x gamma maps of clean and backdoor accuracy (Fig. 8);
- :func:`plot_grid_curves`: learning curves of several settings — regularizations, poisoning
  fractions, trigger sizes (Fig. 2, 4);
- :func:`plot_grid_deviation`: their parameter-deviation paths (Fig. 9-11).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..study.grid import grid_curves
from .plots import format_number, plot_curves, plot_deviation

__all__ = ["plot_accuracy_heatmaps", "plot_grid_curves", "plot_grid_deviation", "setting_labels"]


def _check_grid_table(table) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if len(table) == 0:
        raise ValueError("table is empty: nothing to plot")
    return table


def plot_accuracy_heatmaps(
    table: pd.DataFrame, region=None, x: str = "C", y: str = "gamma"
) -> Figure:
    """Clean and backdoor accuracy at beta = 1 over a C x gamma grid (paper 001, Fig. 8).

    Two panels (clean accuracy on V, backdoor accuracy on V_t), one cell per (x, y) pair with its
    value written in it; cells of failed points are blank. Where several rows share a cell (other
    parameters swept too, e.g. seeds), the cell shows their mean.

    Parameters
    ----------
    table : pandas.DataFrame
        A grid table of one learner with columns ``x``, ``y``, ``clean_accuracy`` and
        ``backdoor_accuracy``.
    region : RobustRegion, optional
        Robust cells are outlined and the recommended one starred.
    x, y : str, default "C", "gamma"
        The two swept parameters (both drawn on log-spaced categorical axes).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure with the two panels and their colour bars.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame.
    ValueError
        If ``table`` is empty or lacks one of the columns ``x``, ``y``, ``clean_accuracy``,
        ``backdoor_accuracy``.
    """
    table = _check_grid_table(table)
    missing = [c for c in (x, y, "clean_accuracy", "backdoor_accuracy") if c not in table]
    if missing:
        raise ValueError(f"table lacks the column(s) {missing} needed for the heat maps")
    xs = np.sort(pd.to_numeric(table[x]).dropna().unique())
    ys = np.sort(pd.to_numeric(table[y]).dropna().unique())
    fig = Figure(figsize=(5.2 * 2 + 1.0, 0.45 * len(ys) + 2.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, column, cmap in zip(
        axes, ("clean_accuracy", "backdoor_accuracy"), ("Greens", "Reds"), strict=True
    ):
        grid = (
            table.pivot_table(index=y, columns=x, values=column, aggfunc="mean", dropna=False)
            .reindex(index=ys, columns=xs)
            .to_numpy(float)
        )
        image = ax.imshow(grid, origin="lower", cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
        if region is not None:
            cells = {(float(r[x]), float(r[y])) for _, r in region.points.iterrows()}
            for cx, cy in cells:
                j, i = int(np.searchsorted(xs, cx)), int(np.searchsorted(ys, cy))
                ax.add_patch(_cell_box(j, i))
            best = region.recommended
            if best is not None and x in best and y in best:
                j = int(np.searchsorted(xs, float(best[x])))
                i = int(np.searchsorted(ys, float(best[y])))
                ax.scatter([j], [i + 0.3], marker="*", s=120, color="gold", edgecolors="black")
        ax.set_xticks(range(len(xs)), [format_number(v) for v in xs], rotation=60)
        ax.set_yticks(range(len(ys)), [format_number(v) for v in ys])
        ax.set_xlabel(f"{x} (lambda = 1/{x})" if x == "C" else x)
        ax.set_title(column.replace("_", " ") + " at beta = 1")
        fig.colorbar(image, ax=ax, shrink=0.9)
    axes[0].set_ylabel(y)
    if region is not None:
        fig.suptitle("outlined: robust region; star: recommended setting", fontsize=9)
    return fig


def _cell_box(j: int, i: int):
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="blue", linewidth=2)


def setting_labels(table: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """Legend labels "k1=v1, k2=v2" of each row from the columns ``by``.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per label.
    by : sequence of str
        Columns of ``table`` to name, in this order; numbers are written with three significant
        digits (:func:`~backdoor_curves.viz.plots.format_number`).

    Returns
    -------
    list of str
        One label per row of ``table``, in row order.
    """
    labels = []
    for _, row in table.iterrows():
        parts = []
        for key in by:
            value = row[key]
            if isinstance(value, float | int | np.number) and not isinstance(value, bool):
                value = format_number(value)
            parts.append(f"{key}={value}")
        labels.append(", ".join(parts))
    return labels


def _varying(table: pd.DataFrame) -> list[str]:
    """The parameter columns that take more than one value in ``table``."""
    skip = {"estimator", "error", "warning", "seconds", "lambda"}
    cols = []
    for column in table.columns:
        if column in skip or column.startswith("curve_") or column == "derivative":
            continue
        if column in ("score", "condition_number") or column.endswith(("accuracy", "_0", "_1")):
            continue
        if table[column].astype(str).nunique() > 1:
            cols.append(column)
    return cols


def _curves_and_labels(table, by):
    table = _check_grid_table(table)
    curves = grid_curves(table)
    keep = [i for i, c in enumerate(curves) if c is not None]
    if not keep:
        raise ValueError("every curve of the table failed: nothing to plot")
    by = _varying(table) if by is None else list(by)
    labels = setting_labels(table.iloc[keep], by) if by else None
    return [curves[i] for i in keep], labels


def plot_grid_curves(
    table: pd.DataFrame, by: Sequence[str] | None = None, column: str = "backdoor_loss", ax=None
) -> Figure:
    """The learning curves of a grid table's rows, one line each (paper 001, Fig. 2 and 4).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`backdoor_curves.study.grid.grid_study` with ``betas``; select the rows to
        compare (e.g. one learner, several C; or several fractions or trigger sizes). Rows whose
        curve failed are left out.
    by : list of str, optional
        Columns naming each line in the legend; default: the parameters that vary in ``table``.
    column : str, default="backdoor_loss"
        The curve column drawn against beta.
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.

    Returns
    -------
    matplotlib.figure.Figure
        As :func:`backdoor_curves.viz.plots.plot_curves`.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame.
    ValueError
        If ``table`` is empty, has no curves (made without ``betas``), or every curve failed.
    """
    curves, labels = _curves_and_labels(table, by)
    return plot_curves(curves, ax=ax, column=column, labels=labels)


def plot_grid_deviation(table: pd.DataFrame, by: Sequence[str] | None = None, ax=None) -> Figure:
    """Parameter-deviation paths (nu, rho_ratio) of a grid table's rows (paper 001, Fig. 9-11).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`backdoor_curves.study.grid.grid_study` with ``betas``; the rows to compare.
        Rows whose curve failed are left out.
    by : list of str, optional
        Columns naming each path in the legend; default: the parameters that vary in ``table``.
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.

    Returns
    -------
    matplotlib.figure.Figure
        As :func:`backdoor_curves.viz.plots.plot_deviation`.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame.
    ValueError
        If ``table`` is empty, has no curves (made without ``betas``), or every curve failed.
    """
    curves, labels = _curves_and_labels(table, by)
    return plot_deviation(curves, ax=ax, labels=labels)
