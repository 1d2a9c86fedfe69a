"""Figures of backdoor learning curves, slopes, accuracies and parameter deviation.

One function per kind of figure, with matplotlib's conventions:

- ``ax=None``: each function draws on the axes it is given, or on new axes of a new figure
  made with :func:`matplotlib.pyplot.subplots`, so that pyplot manages it (``plt.show()``
  shows it, ``plt.close(fig)`` or :func:`save_figure` releases it);
- ``**kwargs`` go to the function's main artist (the lines of :meth:`Axes.plot
  <matplotlib.axes.Axes.plot>`, the points of :meth:`Axes.scatter
  <matplotlib.axes.Axes.scatter>`) and override the function's own style: ``color="red"``,
  ``linestyle="--"``, ``label="mine"`` ...;
- each returns the :class:`matplotlib.figure.Figure` holding the axes (``ax.figure`` when an
  ``ax`` is given).

Under a non-interactive backend (``Agg``) nothing is shown. In threads or a server, pass axes of
a :class:`~matplotlib.figure.Figure` made directly (``Figure().add_subplot()``), which pyplot
never sees. :func:`save_figure` writes a figure atomically and closes it.

Conventions shared by the figures:

- lambda = 1/C is the regularization axis shared by every learner (ridge: lambda = 2 alpha);
- curves are drawn against beta on a ``symlog`` axis, linear on [0, 0.01] and logarithmic above,
  so that beta = 0 (the clean model) and the log-spaced betas near it are both visible;
- each learner keeps one colour (or one marker) across figures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import cbook
from matplotlib.axes import Axes
from matplotlib.collections import Collection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._io import FIGURE_DPI, atomic_write
from ..learners import LEARNER_KINDS, display_name

__all__ = [
    "plot_curves",
    "plot_slope_vs_accuracy",
    "plot_accuracy_vs_regularization",
    "plot_deviation",
    "plot_taylor",
    "plot_slope",
    "mark_region",
    "format_number",
    "save_figure",
]

#: Linear range of the symlog beta axis: beta in [0, BETA_LINTHRESH] is drawn linearly.
BETA_LINTHRESH = 1e-2

#: The attributes of a learning curve the figures read (see :func:`_is_curve`).
_CURVE_FIELDS = ("betas", "values", "learner", "regularization")
_FALLBACK_COLORS = ["tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_Y_LABELS = {
    "backdoor_loss": "backdoor loss L(V_t)\n(mean of the learner's own loss)",
    "clean_loss": "clean test loss L(V)\n(mean of the learner's own loss)",
    "clean_accuracy": "clean accuracy on V",
    "backdoor_accuracy": "backdoor accuracy on V_t\n(attack success rate)",
    "rho": "rho = ||w(beta)||",
    "rho_ratio": "rho ratio ||w(beta)|| / ||w(0)||",
    "nu": "nu = (1 - cos(w(0), w(beta))) / 2",
}
_TITLES = {
    "backdoor_loss": "Backdoor learning curves",
    "clean_loss": "Clean test loss along beta",
    "clean_accuracy": "Clean accuracy along beta",
    "backdoor_accuracy": "Attack success along beta",
    "rho": "Weight norm along beta",
    "rho_ratio": "Weight-norm ratio along beta",
    "nu": "Change of direction along beta",
}


# ---------------------------------------------------------------------------- helpers
def format_number(x: float) -> str:
    """Format a number with three significant digits for labels (``0.01``, ``2150``).

    Parameters
    ----------
    x : float
        Any real number (converted with ``float``).

    Returns
    -------
    str
        Without an exponent for 1e-4 <= |x| < 1e6 (``123456`` -> ``"123000"``), with one outside
        (``"1e+06"``, ``"9.99e-05"``); ``"nan"``, ``"inf"`` or ``"-inf"`` for non-finite values.
    """
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    return f"{float(f'{x:.3g}'):g}"


def _base_name(label: str) -> str:
    return label.split(" (", 1)[0]


def _color_map(labels: Sequence[str]) -> dict[str, str]:
    """A colour per distinct label: its learner kind's colour, then unused fallback colours."""
    kind_colors = {kind.label: kind.color for kind in LEARNER_KINDS.values() if kind.color}
    colors: dict[str, str] = {}
    fallback = iter(_FALLBACK_COLORS * 4)
    used: set[str] = set()
    for label in labels:
        if label in colors:
            continue
        color = kind_colors.get(_base_name(label))
        if color is None or color in used:
            color = next(fallback)
        colors[label] = color
        used.add(color)
    return colors


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its root Figure, or new axes on a new pyplot-managed Figure.

    The ``ax=`` convention of every plotting function of the package (here, in
    :mod:`~backdoor_curves.viz.nn_plots` and :mod:`~backdoor_curves.dynamics.plots`).

    Parameters
    ----------
    ax : matplotlib Axes or None
        Axes to draw on (possibly inside a SubFigure), or None for new ones.
    figsize : tuple of float
        Size in inches of the new figure when ``ax`` is None.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The root Figure of ``ax`` (climbing out of SubFigures), or the new one.
    ax : matplotlib.axes.Axes

    Raises
    ------
    TypeError
        If ``ax`` is neither None nor an Axes.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    fig = ax.figure
    while not isinstance(fig, Figure):  # an Axes inside a SubFigure: climb to the root Figure
        fig = fig.figure
    return fig, ax


def line_style(defaults: dict, kwargs: dict) -> dict:
    """``defaults`` overridden by the caller's :class:`~matplotlib.lines.Line2D` ``kwargs``.

    Aliases are resolved first (``c`` -> ``color``, ``ls`` -> ``linestyle``, ``lw``,
    ``ms`` ...), so ``c="red"`` replaces a default ``color`` instead of clashing with it.

    Parameters
    ----------
    defaults : dict
        The function's own style of a line.
    kwargs : dict
        The caller's keyword arguments for ``Axes.plot``.

    Returns
    -------
    dict
        Keyword arguments for ``Axes.plot``.
    """
    return {**cbook.normalize_kwargs(defaults, Line2D), **cbook.normalize_kwargs(kwargs, Line2D)}


#: Keyword arguments of ``Axes.scatter`` that set the points' colour (they replace ``c``).
_SCATTER_COLOR_KEYS = ("c", "color", "facecolor")


def _scatter_style(defaults: dict, kwargs: dict) -> dict:
    """As :func:`line_style`, for ``Axes.scatter``: a colour given drops ``c``/``cmap``."""
    user = cbook.normalize_kwargs(kwargs, Collection)
    style = cbook.normalize_kwargs(defaults, Collection)
    if any(key in user for key in _SCATTER_COLOR_KEYS):
        for key in (*_SCATTER_COLOR_KEYS, "cmap", "norm"):
            style.pop(key, None)
    return {**style, **user}


def _is_curve(obj) -> bool:
    """Whether ``obj`` reads like a :class:`~backdoor_curves.measures.results.LearningCurve`.

    Read from the object, not checked by class: the result types reach this module from their
    ``plot`` methods, so this module does not import them (no import cycle).
    """
    return all(hasattr(obj, name) for name in _CURVE_FIELDS) and hasattr(obj, "__getitem__")


def _check_curves(curves) -> list:
    if _is_curve(curves):
        curves = [curves]
    if isinstance(curves, (str, bytes)) or not isinstance(curves, Sequence):
        raise TypeError(f"curves must be a list of LearningCurve, got {type(curves).__name__}")
    curves = list(curves)
    if not curves:
        raise ValueError("curves is empty: pass at least one LearningCurve")
    for i, curve in enumerate(curves):
        if not _is_curve(curve):
            raise TypeError(f"curves[{i}] must be a LearningCurve, got {type(curve).__name__}")
    return curves


def _check_labels(labels, curves: list) -> list[str]:
    """One legend label per curve; default "<learner>, lambda=<1/C>"."""
    if labels is None:
        return [f"{c.learner}, lambda={format_number(c.regularization)}" for c in curves]
    if isinstance(labels, str) or len(labels) != len(curves):
        raise ValueError(
            f"labels must be a list with one label per curve ({len(curves)}), got {labels!r}"
        )
    return [str(label) for label in labels]


def mark_region(ax: Axes, table: pd.DataFrame, region, x: str, y: str) -> list[Line2D]:
    """Ring the robust points of ``table`` at (``x``, ``y``) and star the recommended one.

    Parameters
    ----------
    ax : matplotlib Axes
        Axes to draw on.
    table : pandas.DataFrame
        The grid table the figure shows; only robust points whose index is in ``table.index`` are
        drawn.
    region : RobustRegion or None
        A :class:`~backdoor_curves.study.robust.RobustRegion` of ``table``; None draws nothing.
    x, y : str
        Columns of the region's points giving the marker positions (e.g. ``"score"`` and
        ``"backdoor_accuracy"``).

    Returns
    -------
    list of matplotlib.lines.Line2D
        Legend handles of what was drawn ("robust region", "recommended"); empty when nothing was.
    """
    if region is None:
        return []
    handles = []
    points = region.points[region.points.index.isin(table.index)]
    if len(points):
        ax.scatter(
            pd.to_numeric(points[x]),
            pd.to_numeric(points[y]),
            s=170,
            facecolors="none",
            edgecolors="crimson",
            linewidths=1.6,
            zorder=4,
        )
        handles.append(
            Line2D([], [], linestyle="none", marker="o", markerfacecolor="none",
                   markeredgecolor="crimson", markersize=10, label="robust region")
        )  # fmt: skip
    best = region.recommended
    if best is not None and best.name in table.index:
        ax.scatter(
            [float(best[x])], [float(best[y])], marker="*", s=320, color="gold",
            edgecolors="black", linewidths=0.8, zorder=5,
        )  # fmt: skip
        handles.append(
            Line2D([], [], linestyle="none", marker="*", color="gold", markeredgecolor="black",
                   markersize=13, label="recommended")
        )  # fmt: skip
    return handles


def _check_table(table, required: Sequence[str]) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(
            f"table lacks the column(s) {missing}; it needs {list(required)} "
            "(one row per grid point, as in run_demo's grid table)"
        )
    if len(table) == 0:
        raise ValueError("table is empty: nothing to plot")
    lam = pd.to_numeric(table["lambda"], errors="coerce").to_numpy(float)
    if np.any(~np.isfinite(lam) | (lam <= 0)):
        raise ValueError("table['lambda'] must hold finite positive numbers (lambda = 1/C)")
    return table


def _group_labels(table: pd.DataFrame) -> pd.Series:
    """Display label of each row: the learner, plus gamma when the table has one for it."""
    labels = table["learner"].astype(str).map(display_name)
    if "gamma" in table.columns:
        gamma = pd.to_numeric(table["gamma"], errors="coerce")
        has = gamma.notna() & ~labels.str.contains("gamma=", regex=False)
        labels = labels.where(
            ~has, labels + " (gamma=" + gamma.map(lambda g: format_number(g)) + ")"
        )
    return labels


def _curve_styles(curves: list, labels: list[str]):
    """Each curve with its default line style: its learner's colour; the k-th curve of one
    learner gets the k-th line style and marker."""
    colors = _color_map([c.learner for c in curves])
    seen: dict[str, int] = {}
    for curve, label in zip(curves, labels, strict=True):
        k = seen.get(curve.learner, 0)
        seen[curve.learner] = k + 1
        yield (
            curve,
            {
                "color": colors[curve.learner],
                "linestyle": ["-", "--", ":", "-."][k % 4],
                "marker": _MARKERS[k % len(_MARKERS)],
                "markersize": 3.5,
                "label": label,
            },
        )


def _set_beta_axis(ax: Axes) -> None:
    ax.set_xscale("symlog", linthresh=BETA_LINTHRESH, linscale=0.5)
    ax.set_xlim(0.0, 1.0)
    ticks = [0.0, 0.01, 0.1, 1.0]
    ax.set_xticks(ticks, ["0", "0.01", "0.1", "1"])
    ax.set_xlabel("beta (weight of the poisoning set P; 1 = ordinary training)")


# ---------------------------------------------------------------------------- figures
def plot_curves(
    curves,
    ax: Axes | None = None,
    column: str = "backdoor_loss",
    labels: Sequence[str] | None = None,
    **kwargs,
) -> Figure:
    """Backdoor learning curves: ``column`` against beta, one line per curve.

    Parameters
    ----------
    curves : LearningCurve or list of LearningCurve
        The curves to draw, e.g. from :func:`~backdoor_curves.measures.curves.learning_curve`.
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    column : str, default="backdoor_loss"
        Which curve column to draw (one of :data:`~backdoor_curves.measures.results.CURVE_COLUMNS`
        but ``beta``): the mean backdoor loss L(V_t) by default.
    labels : list of str, optional
        Legend labels, one per curve; default "<learner>, lambda=<1/C>".
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for every curve, over this function's
        style (one colour per learner, one line style and marker per regularization), e.g.
        ``color="red"`` or ``linewidth=2``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``. The x axis is symlog (linear on [0, 0.01]) from 0 to 1, so the
        clean model at beta = 0 is drawn.

    Raises
    ------
    TypeError
        If ``curves`` is not a LearningCurve or a list of them, or ``ax`` is not an Axes.
    ValueError
        If ``curves`` is empty, ``column`` is not a curve column, or ``labels`` does not have one
        label per curve.
    """
    curves = _check_curves(curves)
    if not isinstance(column, str) or any(column not in curve.values for curve in curves):
        raise ValueError(f"column must be one of {list(curves[0].values)}, got {column!r}")
    labels = _check_labels(labels, curves)
    fig, ax = new_axes(ax, (6.0, 4.0))
    for curve, style in _curve_styles(curves, labels):
        order = np.argsort(curve.betas, kind="stable")
        ax.plot(
            np.asarray(curve.betas)[order],
            np.asarray(curve[column])[order],
            **line_style(style, kwargs),
        )
    _set_beta_axis(ax)
    ax.set_ylabel(_Y_LABELS.get(column, column))
    if column.endswith("accuracy"):
        ax.set_ylim(-0.03, 1.03)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best", framealpha=0.85)
    if not ax.get_title():
        ax.set_title(_TITLES.get(column, column))
    return fig


def plot_slope_vs_accuracy(
    table: pd.DataFrame, ax: Axes | None = None, region=None, **kwargs
) -> Figure:
    """Backdoor slope score against backdoor accuracy at beta = 1 (paper 001, Fig. 5-7).

    One point per grid point, coloured by log10(lambda), one marker per learner. Rows whose score
    or backdoor accuracy is missing (failed grid points) are not drawn; their number is given in
    the legend.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``learner``, ``lambda``, ``score``, ``backdoor_accuracy`` (optionally ``gamma``,
        shown in the learner's legend entry).
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    region : RobustRegion, optional
        From :func:`backdoor_curves.study.robust.robust_region` on ``table``: its points are ringed
        and the recommended setting starred.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.scatter` for every learner's points, over this
        function's style (e.g. ``s=80``, ``alpha=0.5``). A colour (``color``, ``c`` or
        ``facecolor``) replaces the colouring by lambda, and the colour bar is then left out.

    Returns
    -------
    matplotlib.figure.Figure
        With a colour bar of log10(lambda) next to ``ax`` (unless ``kwargs`` set a colour).

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame or ``ax`` is not an Axes.
    ValueError
        If ``table`` is empty, lacks a required column, or has a ``lambda`` that is not finite and
        positive.
    """
    table = _check_table(table, ["learner", "lambda", "score", "backdoor_accuracy"])
    fig, ax = new_axes(ax, (6.5, 4.5))
    groups = _group_labels(table)
    log_lam = np.log10(pd.to_numeric(table["lambda"]).to_numpy(float))
    norm = Normalize(vmin=log_lam.min(), vmax=max(log_lam.max(), log_lam.min() + 1e-12))
    score = pd.to_numeric(table["score"], errors="coerce").to_numpy(float)
    acc = pd.to_numeric(table["backdoor_accuracy"], errors="coerce").to_numpy(float)
    ok = np.isfinite(score) & np.isfinite(acc)
    user = cbook.normalize_kwargs(kwargs, Collection)
    by_lambda = not any(key in user for key in _SCATTER_COLOR_KEYS)
    mappable = None
    handles = []
    for k, name in enumerate(dict.fromkeys(groups)):
        rows = (groups == name).to_numpy() & ok
        style = _scatter_style(
            {
                "c": log_lam[rows],
                "cmap": "viridis",
                "norm": norm,
                "marker": _MARKERS[k % len(_MARKERS)],
                "s": 46,
                "edgecolor": "black",
                "linewidth": 0.5,
                "label": name,
                "zorder": 3,
            },
            kwargs,
        )
        mappable = ax.scatter(score[rows], acc[rows], **style)
        face = "0.6"  # the legend's marker: grey when the colour stands for lambda
        if not by_lambda and len(mappable.get_facecolor()):
            face = mappable.get_facecolor()[0]
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker=style["marker"],
                markerfacecolor=face,
                markeredgecolor="black",
                markersize=7,
                label=style["label"],
            )
        )
    handles += mark_region(ax, table, region, "score", "backdoor_accuracy")
    n_failed = int((~ok).sum())
    if n_failed:
        handles.append(
            Line2D([], [], linestyle="none", label=f"{n_failed} failed point(s) not shown")
        )
    if by_lambda:
        cbar = ax.figure.colorbar(mappable, ax=ax, pad=0.02)
        cbar.set_label("log10(lambda)   (lambda = 1/C; larger = more regularized)")
    ax.set_xlabel("backdoor slope score -(2/pi) arctan(dL(V_t)/dbeta at beta=0)")
    ax.set_ylabel("backdoor accuracy at beta = 1\n(attack success rate on V_t)")
    ax.set_xlim(min(-0.03, np.nanmin(score, initial=0.0) - 0.03), 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, fontsize="small", loc="upper left", framealpha=0.85)
    if not ax.get_title():
        ax.set_title("Backdoor slope vs attack success")
    return fig


def plot_accuracy_vs_regularization(
    table: pd.DataFrame, ax: Axes | None = None, region=None, **kwargs
) -> Figure:
    """Clean and backdoor accuracy at beta = 1 against lambda (log scale), per learner.

    Solid lines with circles: clean accuracy on V; dashed lines with crosses: backdoor accuracy on
    V_t (attack success). The robust region is where the solid line stays high and the dashed one
    low. Rows with a missing accuracy are left out of their line.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``learner``, ``lambda``, ``clean_accuracy``, ``backdoor_accuracy`` (optionally
        ``gamma``).
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    region : RobustRegion, optional
        The robust region of ``table``: its points are ringed (at their clean accuracy) and the
        recommended setting starred.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for every line (clean and backdoor
        accuracy of each learner), over this function's style, e.g. ``linewidth=2``; a
        ``color`` applies to every learner.

    Returns
    -------
    matplotlib.figure.Figure
        Legends (learner colours, line meaning) sit outside the axes, on the right.

    Raises
    ------
    TypeError
        If ``table`` is not a DataFrame or ``ax`` is not an Axes.
    ValueError
        If ``table`` is empty, lacks a required column, or has a ``lambda`` that is not finite and
        positive.
    """
    table = _check_table(table, ["learner", "lambda", "clean_accuracy", "backdoor_accuracy"])
    fig, ax = new_axes(ax, (8.0, 4.5))
    groups = _group_labels(table)
    names = list(dict.fromkeys(groups))
    colors = _color_map(names)
    lam = pd.to_numeric(table["lambda"]).to_numpy(float)
    for name in names:
        rows = (groups == name).to_numpy()
        order = np.argsort(lam[rows], kind="stable")
        for column, style, marker in [
            ("clean_accuracy", "-", "o"),
            ("backdoor_accuracy", "--", "x"),
        ]:
            y = pd.to_numeric(table[column], errors="coerce").to_numpy(float)[rows][order]
            x = lam[rows][order]
            good = np.isfinite(y)
            own_style = {
                "color": colors[name],
                "linestyle": style,
                "marker": marker,
                "markersize": 5,
                "label": f"{name}: {column.replace('_', ' ')}",
            }
            (line,) = ax.plot(x[good], y[good], **line_style(own_style, kwargs))
            colors[name] = line.get_color()  # the legend shows a colour given in kwargs
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("lambda = 1/C (regularization strength; ridge: 2 alpha)")
    ax.set_ylabel("accuracy at beta = 1")
    ax.grid(True, alpha=0.3)
    learner_handles = [Line2D([], [], color=colors[n], linewidth=2.5, label=n) for n in names]
    style_handles = [
        Line2D([], [], color="black", linestyle="-", marker="o", label="clean accuracy (V)"),
        Line2D([], [], color="black", linestyle="--", marker="x", label="backdoor accuracy (V_t)"),
    ]
    style_handles += mark_region(ax, table, region, "lambda", "clean_accuracy")
    spacer = Line2D([], [], linestyle="none", label=" ")
    ax.legend(
        handles=[*learner_handles, spacer, *style_handles],
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
    )
    if not ax.get_title():
        ax.set_title("Accuracy vs regularization")
    return fig


def plot_deviation(
    curves, ax: Axes | None = None, labels: Sequence[str] | None = None, **kwargs
) -> Figure:
    """Parameter deviation paths: nu (x) against rho_ratio (y) along beta (paper 001, Fig. 9-11).

    Each curve is a path from beta = 0 (nu = 0, rho_ratio = 1; the common start, marked by a
    star) to beta = 1 (a filled square). nu measures the change of direction of w, the ratio
    ||w(beta)|| / ||w(0)|| its growth (RKHS norm for kernel SVMs). Colour: learner; line style
    and marker: regularization, in the order the curves are given.

    Parameters
    ----------
    curves : LearningCurve or list of LearningCurve
        The curves whose ``nu`` and ``rho_ratio`` columns are drawn.
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    labels : list of str, optional
        Legend labels, one per curve; default "<learner>, lambda=<1/C>".
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for every path, over this function's
        style, e.g. ``color="red"``; the end square of a path takes its colour.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``; the legend sits outside the axes, on the right.

    Raises
    ------
    TypeError
        If ``curves`` is not a LearningCurve or a list of them, or ``ax`` is not an Axes.
    ValueError
        If ``curves`` is empty or ``labels`` does not have one label per curve.
    """
    curves = _check_curves(curves)
    labels = _check_labels(labels, curves)
    fig, ax = new_axes(ax, (8.5, 4.5))
    for curve, style in _curve_styles(curves, labels):
        order = np.argsort(curve.betas, kind="stable")
        nu = np.asarray(curve["nu"])[order]
        ratio = np.asarray(curve["rho_ratio"])[order]
        (path,) = ax.plot(nu, ratio, **line_style(style, kwargs))
        ax.plot(
            nu[-1:],
            ratio[-1:],
            linestyle="none",
            marker="s",
            markersize=7,
            color=path.get_color(),
            markeredgecolor="black",
        )
    ax.plot(
        [0.0],
        [1.0],
        linestyle="none",
        marker="*",
        markersize=12,
        color="black",
        label="beta = 0 (clean model)",
        zorder=4,
    )
    ax.plot(
        [],
        [],
        linestyle="none",
        marker="s",
        color="0.6",
        markeredgecolor="black",
        label="beta = 1 (end of path)",
    )
    ax.set_xlabel("nu = (1 - cos(w(0), w(beta))) / 2   (change of direction)")
    ax.set_ylabel("rho ratio ||w(beta)|| / ||w(0)||\n(change of norm)")
    ax.set_xlim(left=-0.01)
    ax.grid(True, alpha=0.3)
    # outside the axes: the paths fan out from the common start and may fill any corner
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if not ax.get_title():
        ax.set_title("Parameter deviation along beta")
    return fig


def _check_slope(slope) -> None:
    if not all(hasattr(slope, name) for name in ("taylor", "derivative", "backdoor_loss")):
        raise TypeError(f"slope must be a BackdoorSlope, got {type(slope).__name__}")


#: Where the Taylor predictions are drawn: 0 and 300 log-spaced betas up to 1.
_DENSE_BETAS = np.r_[0.0, np.geomspace(1e-4, 1.0, 300)]


def plot_taylor(curve, slope, ax: Axes | None = None, **kwargs) -> Figure:
    """The exact backdoor curve with its first- and second-order Taylor predictions from 0.

    The first-order line L(0) + beta L'(0) is the influence function's prediction; where the
    curves part is where it stops explaining how the backdoor is learned (paper 001's theme).
    The y range follows the exact curve, so predictions that run off it are clipped.

    Parameters
    ----------
    curve : LearningCurve
        The exact curve (its ``backdoor_loss`` column is drawn against beta).
    slope : BackdoorSlope
        From :func:`backdoor_curves.backdoor_slope` on the same learner and data; its
        :meth:`~backdoor_curves.measures.results.BackdoorSlope.taylor` gives the predictions.
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for the exact curve, over its style
        (black, circles), e.g. ``color="green"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``, titled with the learner and its lambda = 1/C.

    Raises
    ------
    TypeError
        If ``curve`` is not a LearningCurve, ``slope`` not a BackdoorSlope or ``ax`` not an Axes.

    See Also
    --------
    plot_slope : The tangent alone, labelled with the slope's value.
    """
    (curve,) = _check_curves([curve])
    _check_slope(slope)
    fig, ax = new_axes(ax, (6.4, 4.2))
    order = np.argsort(curve.betas)
    betas, exact = curve.betas[order], curve["backdoor_loss"][order]
    taylor = slope.taylor(_DENSE_BETAS)
    style = {"color": "black", "marker": "o", "label": "exact curve", "zorder": 3}
    ax.plot(betas, exact, **line_style(style, kwargs))
    ax.plot(
        _DENSE_BETAS,
        taylor["first"],
        "--",
        color="tab:blue",
        label="1st order (influence function)",
    )
    ax.plot(_DENSE_BETAS, taylor["second"], ":", color="tab:red", lw=2, label="2nd order")
    low, high = float(np.min(exact)), float(np.max(exact))
    pad = 0.1 * max(high - low, 1e-12)
    ax.set_ylim(low - pad, high + pad)
    _set_beta_axis(ax)
    ax.set_ylabel(_Y_LABELS["backdoor_loss"])
    label = curve.learner
    ax.set_title(f"{label}, lambda={format_number(curve.regularization)}: beyond first order")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def plot_slope(slope, ax: Axes | None = None, curve=None, **kwargs) -> Figure:
    """The backdoor slope as the tangent of the learning curve at beta = 0.

    Draws the first-order Taylor line L(0) + beta dL/dbeta (the tangent at beta = 0, the
    influence function's prediction) labelled with the derivative and its score, the
    second-order line L(0) + beta L'(0) + beta^2 / 2 L''(0) when the slope has a finite, non-zero
    second derivative (an SVM reports 0: its curve is linear on its first piece, so the two
    lines would coincide), and the exact curve under them when ``curve`` is given.

    Parameters
    ----------
    slope : BackdoorSlope
        From :func:`backdoor_curves.backdoor_slope`.
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    curve : LearningCurve, optional
        The exact curve of the same learner and data; its ``backdoor_loss`` is drawn in black
        and sets the y range (predictions that run off it are clipped).
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for the tangent line, over its style
        (dashed blue), e.g. ``color="red"`` or ``label="logistic"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``; beta on the symlog axis of :func:`plot_curves`. Without a
        curve the y range is the tangent's on [0, 1], not below 0 (a loss is not negative).

    Raises
    ------
    TypeError
        If ``slope`` is not a BackdoorSlope, ``curve`` not a LearningCurve or ``ax`` not an
        Axes.

    See Also
    --------
    plot_taylor : The exact curve with both predictions.
    """
    _check_slope(slope)
    if curve is not None:
        (curve,) = _check_curves([curve])
    fig, ax = new_axes(ax, (6.4, 4.2))
    taylor = slope.taylor(_DENSE_BETAS)
    loss0 = float(slope.backdoor_loss)
    if curve is not None:
        order = np.argsort(curve.betas, kind="stable")
        exact = np.asarray(curve["backdoor_loss"])[order]
        ax.plot(
            np.asarray(curve.betas)[order],
            exact,
            color="black",
            marker="o",
            markersize=4,
            label=f"exact curve ({curve.learner}, lambda={format_number(curve.regularization)})",
            zorder=3,
        )
    style = {
        "color": "tab:blue",
        "linestyle": "--",
        "label": f"tangent at beta = 0: dL/dbeta = {format_number(slope.derivative)} "
        f"(score {format_number(slope.score)})",
    }
    ax.plot(_DENSE_BETAS, taylor["first"], **line_style(style, kwargs))
    second = float(slope.second_derivative)
    if np.isfinite(second) and second != 0.0:
        ax.plot(
            _DENSE_BETAS,
            taylor["second"],
            color="tab:red",
            linestyle=":",
            linewidth=2,
            label=f"2nd order: d2L/dbeta2 = {format_number(second)}",
        )
    ax.plot(
        [0.0],
        [loss0],
        linestyle="none",
        marker="*",
        markersize=11,
        color="black",
        label=f"L(0) = {format_number(loss0)} (clean model)",
        zorder=4,
        clip_on=False,
    )
    if curve is not None:
        low, high = min(float(np.nanmin(exact)), loss0), max(float(np.nanmax(exact)), loss0)
    else:  # the tangent's range, not below 0 (a loss is not negative)
        tangent = taylor["first"][np.isfinite(taylor["first"])]
        low = max(float(tangent.min()), min(0.0, loss0)) if tangent.size else loss0
        high = float(tangent.max()) if tangent.size else loss0
    pad = 0.08 * max(high - low, 1e-12)
    ax.set_ylim(low - pad, high + pad)
    _set_beta_axis(ax)
    ax.set_ylabel(_Y_LABELS["backdoor_loss"])
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
    if not ax.get_title():
        ax.set_title(
            f"Backdoor slope of {slope.learner}, lambda={format_number(slope.regularization)}"
        )
    return fig


def save_figure(fig: Figure, path, **kwargs) -> Path:
    """Write ``fig`` to ``path`` atomically, then close it.

    The file is written to a temporary file in the same folder and moved onto ``path`` with
    :func:`os.replace`, so a reader never sees a half-written figure and a failed save leaves
    the old file (and no temporary one). The figure is then closed with
    :func:`matplotlib.pyplot.close`, also when the write fails, so a script or CLI that saves
    many figures does not keep them open; the ``fig`` object itself stays usable (it can be
    saved again). Invalid arguments raise before anything is written or closed.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, pyplot-managed or not.
    path : str or path-like
        The file to write; its suffix names the format (``.png``, ``.pdf``, ``.svg`` ... any
        format of ``fig.canvas.get_supported_filetypes()``) unless ``format`` is given. Its
        folder must exist.
    **kwargs
        Passed to :meth:`matplotlib.figure.Figure.savefig`; ``dpi`` defaults to 130 (the
        project's PNGs).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        If ``fig`` is not a Figure or ``path`` not a str or path-like.
    ValueError
        If the format (``path``'s suffix, or ``format``) is missing or not one matplotlib
        writes.
    OSError
        If the file cannot be written (e.g. the folder does not exist).
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    path = Path(path)
    fmt = kwargs.pop("format", None) or path.suffix.removeprefix(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"path must end with the suffix of a format matplotlib writes "
            f"({', '.join('.' + f for f in sorted(supported))}) or format= must name one; "
            f"got {str(path)!r}"
        )
    kwargs.setdefault("dpi", FIGURE_DPI)
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **kwargs), binary=True)
    finally:
        plt.close(fig)
