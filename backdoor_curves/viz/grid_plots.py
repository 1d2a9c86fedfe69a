"""Figures of grid-study tables (one function per kind; each returns its Figure).

- :func:`backdoor_curves.viz.plots.plot_slope_vs_accuracy` (paper 001, Fig. 5-7) and
  :func:`backdoor_curves.viz.plots.plot_accuracy_vs_regularization` take a grid table directly and
  mark a robust region (``region=``);
- :func:`plot_accuracy_heatmap`: one C x gamma map of clean or backdoor accuracy, and
  :func:`plot_accuracy_heatmaps`: both side by side (Fig. 8), with the robust region outlined;
- :func:`plot_grid_curves`: learning curves of several settings — regularizations, poisoning
  fractions, trigger sizes (Fig. 2, 4);
- :func:`plot_grid_deviation`: their parameter-deviation paths (Fig. 9-11).

matplotlib's conventions, as in :mod:`backdoor_curves.viz.plots`: a function draws on the axes it
is given (``ax``; ``axes``, a pair, for the two maps) or on a new figure made with
:func:`matplotlib.pyplot.subplots`, passes ``**kwargs`` to its main artist (the image of
:meth:`~matplotlib.axes.Axes.imshow`, the lines of the curves) and returns the Figure.

A heat map's colour scale fits its data: from the smallest value rounded down to the largest
rounded up, at the decimal step of their spread (clean accuracies from 0.943 to 1.0 span 0.94 to
1.00), so that differences of a few points stay visible; ``vmin``/``vmax`` override it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ..study.grid import grid_curves
from .plots import format_number, plot_curves, plot_deviation

__all__ = [
    "plot_accuracy_heatmap",
    "plot_accuracy_heatmaps",
    "plot_grid_curves",
    "plot_grid_deviation",
    "setting_labels",
]

#: The accuracies a heat map shows, with their colour map and title.
_HEATMAP_COLUMNS = {
    "clean_accuracy": ("Greens", "clean accuracy on V"),
    "backdoor_accuracy": ("Reds", "backdoor accuracy on V_t"),
}
#: Style of the robust region's outline and of the recommended setting's star.
_OUTLINE = {"colors": "blue", "linewidths": 2.4, "capstyle": "projecting"}
_STAR = {"marker": "*", "markersize": 15, "color": "gold", "markeredgecolor": "black"}


def _check_grid_table(table) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if len(table) == 0:
        raise ValueError("table is empty: nothing to plot")
    return table


def _root_figure(ax) -> Figure:
    fig = ax.figure
    while not isinstance(fig, Figure):  # an Axes inside a SubFigure: climb to the root Figure
        fig = fig.figure
    return fig


def _colour_limits(values) -> tuple[float, float]:
    """Colour limits that fit ``values``: the extremes rounded outwards at their decimal step.

    Parameters
    ----------
    values : array-like of float
        The values shown (NaN and infinities ignored).

    Returns
    -------
    (float, float)
        ``(vmin, vmax)``: the smallest value rounded down and the largest rounded up to a
        multiple of 10**floor(log10(spread)) (0.01 when all values are equal), kept within
        [0, 1] when the values are; (0, 1) when no value is finite. E.g. 0.943 ... 1.0 gives
        (0.94, 1.0); 0.02 ... 0.98 gives (0.0, 1.0).
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    step = 10.0 ** math.floor(math.log10(hi - lo)) if hi > lo else 0.01
    vmin = math.floor(lo / step + 1e-9) * step
    vmax = math.ceil(hi / step - 1e-9) * step
    if vmax <= vmin:
        vmax = vmin + step
    if lo >= 0.0 and hi <= 1.0:  # accuracies: stay within [0, 1]
        vmin, vmax = max(vmin, 0.0), min(vmax, 1.0)
        if vmax <= vmin:
            vmin = vmax - step
    return round(vmin, 12), round(vmax, 12)


def _cell_values(table: pd.DataFrame, column: str, x: str, y: str):
    """(grid of cell means, x values, y values): rows y, columns x, both sorted."""
    for name in (x, y):
        values = pd.to_numeric(table[name], errors="coerce")
        if values.isna().any():
            raise ValueError(
                f"column {name!r} must hold numbers in every row to be a heat-map axis"
            )
    xs = np.sort(pd.to_numeric(table[x]).unique())
    ys = np.sort(pd.to_numeric(table[y]).unique())
    values = pd.to_numeric(table[column], errors="coerce")
    grid = (
        values.groupby([pd.to_numeric(table[y]), pd.to_numeric(table[x])])
        .mean()
        .unstack()
        .reindex(index=ys, columns=xs)
        .to_numpy(float)
    )
    return grid, xs, ys


def _key(value):
    """A hashable, NaN-safe stand-in for a cell value (NaN and None compare equal)."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return tuple(value)
    return value


def _region_cells(table: pd.DataFrame, region, x: str, y: str):
    """(set of robust (x, y) cells, recommended (x, y) or None) of ``region`` within ``table``."""
    settings = getattr(region, "settings", None)
    best = region.recommended
    if settings is None:  # a region built by hand from points: the cells of its points
        points = region.points[region.points.index.isin(table.index)]
        cells = {(float(r[x]), float(r[y])) for _, r in points.iterrows()}
        star = None
        if best is not None and best.name in table.index and x in best and y in best:
            star = (float(best[x]), float(best[y]))
        return cells, star
    by = [c for c in region.criteria.get("by", ("learner",)) if c in table and c in settings]
    if x not in settings or y not in settings:
        return set(), None
    shown = {tuple(_key(v) for v in row) for row in table[by].itertuples(index=False)}
    mine = [tuple(_key(v) for v in row) in shown for row in settings[by].itertuples(index=False)]
    settings = settings[np.asarray(mine, dtype=bool)]
    robust = settings.groupby([settings[x].astype(float), settings[y].astype(float)])[
        "robust"
    ].all()
    cells = {(float(cx), float(cy)) for (cx, cy), ok in robust.items() if ok}
    star = None
    if best is not None and best.name in settings.index:
        star = (float(best[x]), float(best[y]))
    return cells, star


def _outline(cells: set, xs: np.ndarray, ys: np.ndarray) -> list:
    """Segments of the outer edge of the union of ``cells`` on the image grid (centres at
    integer positions j = index of x, i = index of y): a cell side is drawn when the cell
    across it is not in the region."""
    inside = np.zeros((len(ys) + 2, len(xs) + 2), dtype=bool)
    for cx, cy in cells:
        j, i = int(np.searchsorted(xs, cx)), int(np.searchsorted(ys, cy))
        inside[i + 1, j + 1] = True
    segments = []
    for i, j in zip(*np.nonzero(inside), strict=True):
        ci, cj = i - 1, j - 1  # image coordinates of the cell centre
        if not inside[i - 1, j]:
            segments.append([(cj - 0.5, ci - 0.5), (cj + 0.5, ci - 0.5)])
        if not inside[i + 1, j]:
            segments.append([(cj - 0.5, ci + 0.5), (cj + 0.5, ci + 0.5)])
        if not inside[i, j - 1]:
            segments.append([(cj - 0.5, ci - 0.5), (cj - 0.5, ci + 0.5)])
        if not inside[i, j + 1]:
            segments.append([(cj + 0.5, ci - 0.5), (cj + 0.5, ci + 0.5)])
    return segments


def _draw_region(ax: Axes, table, region, x, y, xs, ys) -> None:
    cells, star = _region_cells(table, region, x, y)
    segments = _outline(cells, xs, ys)
    if segments:
        ax.add_collection(
            LineCollection(
                segments, label="robust region", gid="robust-region", clip_on=False, **_OUTLINE
            )
        )
    if star is not None:
        j, i = int(np.searchsorted(xs, star[0])), int(np.searchsorted(ys, star[1]))
        ax.plot([j], [i + 0.28], linestyle="none", label="recommended", gid="recommended", **_STAR)


def _check_heatmap_args(table, column, x, y) -> pd.DataFrame:
    table = _check_grid_table(table)
    if column not in _HEATMAP_COLUMNS:
        raise ValueError(f"column must be one of {list(_HEATMAP_COLUMNS)}, got {column!r}")
    if not isinstance(x, str) or not isinstance(y, str) or x == y:
        raise ValueError(f"x and y must name two different columns, got {x!r} and {y!r}")
    missing = [c for c in (x, y, column) if c not in table]
    if missing:
        raise ValueError(f"table lacks the column(s) {missing} needed for the heat map")
    if "learner" in table and table["learner"].nunique(dropna=False) > 1:
        raise ValueError(
            "table holds several learners "
            f"({sorted(map(str, table['learner'].unique()))}); a heat map shows one: pass "
            "table[table['learner'] == name]"
        )
    return table


def _heatmap(ax: Axes, table, column, region, x, y, kwargs) -> None:
    """Draw one heat map with its colour bar on ``ax`` (arguments already checked)."""
    grid, xs, ys = _cell_values(table, column, x, y)
    cmap, title = _HEATMAP_COLUMNS[column]
    style = {"origin": "lower", "cmap": cmap, "aspect": "auto", "interpolation": "nearest"}
    if "norm" not in kwargs:
        vmin, vmax = _colour_limits(grid)
        style.update(vmin=vmin, vmax=vmax)
    style.update(kwargs)
    image = ax.imshow(grid, **style)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            r, g, b, _ = image.cmap(image.norm(value))
            ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=ink)
    if region is not None:
        _draw_region(ax, table, region, x, y, xs, ys)
    ax.set_xticks(range(len(xs)), [format_number(v) for v in xs], rotation=60)
    ax.set_yticks(range(len(ys)), [format_number(v) for v in ys])
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    ax.set_xlabel(f"{x} (lambda = 1/{x})" if x == "C" else x)
    ax.set_ylabel(y)
    per_cell = table.groupby([table[y], table[x]]).size().max()
    ax.set_title(title + " at beta = 1" + (f"\n(mean of {per_cell} rows)" if per_cell > 1 else ""))
    _root_figure(ax).colorbar(image, ax=ax, shrink=0.9)


def plot_accuracy_heatmap(
    table: pd.DataFrame,
    column: str = "clean_accuracy",
    ax: Axes | None = None,
    region=None,
    x: str = "C",
    y: str = "gamma",
    **kwargs,
) -> Figure:
    """Clean or backdoor accuracy at beta = 1 over an x by y grid, one cell per pair.

    Each cell shows the mean of the rows of that (x, y) pair (several when other parameters or
    seeds vary too), written in it; cells of failed points are blank. The colour scale fits the
    values (see the module docstring). The robust region is outlined along its outer edge and the
    recommended setting starred.

    Parameters
    ----------
    table : pandas.DataFrame
        A grid table of one learner with the columns ``x``, ``y`` and ``column``.
    column : {"clean_accuracy", "backdoor_accuracy"}, default="clean_accuracy"
        The accuracy shown.
    ax : matplotlib Axes, optional
        Axes to draw on (a colour bar is added next to it); a new figure is made with
        :func:`matplotlib.pyplot.subplots` when omitted.
    region : RobustRegion, optional
        From :func:`~backdoor_curves.study.robust.robust_region` (on this table or a larger one):
        the cells of its robust settings shown in ``table`` are outlined (a cell that stands for
        several settings counts when all of them are robust) and the recommended one is starred.
        A region without ``settings`` outlines the cells of its ``points``.
    x, y : str, default "C", "gamma"
        The two swept parameters (categorical axes, one step per distinct value).
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.imshow`, overriding the defaults (``cmap``,
        ``vmin``, ``vmax``, ``norm`` ...).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax`` (new when ``ax`` is None). The outline is a
        :class:`~matplotlib.collections.LineCollection` labelled "robust region", the star a
        line labelled "recommended".

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame or ``ax`` not an Axes.
    ValueError
        If ``table`` is empty, holds several learners, lacks ``x``, ``y`` or ``column``, has
        a missing ``x`` or ``y``, or ``column`` is not an accuracy.
    """
    table = _check_heatmap_args(table, column, x, y)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.2, 0.45 * table[y].nunique() + 2.6), layout="constrained")
    elif not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    _heatmap(ax, table, column, region, x, y, kwargs)
    return _root_figure(ax)


def plot_accuracy_heatmaps(
    table: pd.DataFrame, region=None, x: str = "C", y: str = "gamma", axes=None, **kwargs
) -> Figure:
    """Clean and backdoor accuracy at beta = 1 over a C x gamma grid, side by side (Fig. 8).

    Two panels of :func:`plot_accuracy_heatmap` (clean accuracy on V, backdoor accuracy on V_t),
    each with its own colour bar fitted to its values.

    Parameters
    ----------
    table : pandas.DataFrame
        A grid table of one learner with columns ``x``, ``y``, ``clean_accuracy`` and
        ``backdoor_accuracy``.
    region : RobustRegion, optional
        Robust cells are outlined and the recommended one starred, in both panels.
    x, y : str, default "C", "gamma"
        The two swept parameters (categorical axes).
    axes : pair of matplotlib Axes, optional
        Where to draw the clean and the backdoor map; a new figure with two panels is made with
        :func:`matplotlib.pyplot.subplots` when omitted.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.imshow` of both maps.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the panels (new when ``axes`` is None).

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame or ``axes`` is not two Axes.
    ValueError
        As :func:`plot_accuracy_heatmap`.
    """
    table = _check_heatmap_args(table, "clean_accuracy", x, y)
    _check_heatmap_args(table, "backdoor_accuracy", x, y)
    made = axes is None
    if made:
        fig, axes = plt.subplots(
            1, 2, figsize=(11.4, 0.45 * table[y].nunique() + 2.6), layout="constrained"
        )
    axes = list(np.ravel(np.asarray(axes, dtype=object))) if not isinstance(axes, Axes) else [axes]
    if len(axes) != 2 or not all(isinstance(a, Axes) for a in axes):
        raise TypeError("axes must be a pair of matplotlib Axes (clean, backdoor) or None")
    for ax, column in zip(axes, _HEATMAP_COLUMNS, strict=True):
        _heatmap(ax, table, column, region, x, y, kwargs)
    fig = _root_figure(axes[0])
    if made and region is not None:
        fig.suptitle("outlined: robust region; star: recommended setting", fontsize=9)
    return fig


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
    table: pd.DataFrame,
    by: Sequence[str] | None = None,
    column: str = "backdoor_loss",
    ax: Axes | None = None,
    **kwargs,
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
        Axes to draw on; a new figure is made when omitted.
    **kwargs
        Passed to the lines (:func:`backdoor_curves.viz.plots.plot_curves`).

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
    return plot_curves(curves, ax=ax, column=column, labels=labels, **kwargs)


def plot_grid_deviation(
    table: pd.DataFrame, by: Sequence[str] | None = None, ax: Axes | None = None, **kwargs
) -> Figure:
    """Parameter-deviation paths (nu, rho_ratio) of a grid table's rows (paper 001, Fig. 9-11).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`backdoor_curves.study.grid.grid_study` with ``betas``; the rows to compare.
        Rows whose curve failed are left out.
    by : list of str, optional
        Columns naming each path in the legend; default: the parameters that vary in ``table``.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is made when omitted.
    **kwargs
        Passed to the paths (:func:`backdoor_curves.viz.plots.plot_deviation`).

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
    return plot_deviation(curves, ax=ax, labels=labels, **kwargs)
