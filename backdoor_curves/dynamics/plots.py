"""Figures of information dynamics: information-plane trajectories and MI by epoch.

They read :meth:`InformationDynamics.history` (columns ``epoch``, ``group``, ``mi_xt``,
``mi_ty``) and follow the project's matplotlib conventions (:mod:`backdoor_curves.viz`): each
draws on the axes it is given (``ax``) or on new axes of a figure made with
:func:`matplotlib.pyplot.subplots` (so ``plt.show()`` shows it), passes ``**kwargs`` to its main
artists (one :class:`~matplotlib.lines.Line2D` per group) over its own style, and returns the
:class:`~matplotlib.figure.Figure`. Target groups are drawn in warm colours, clean classes in
cool greys and blues.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from ..viz.plots import line_style, new_axes

__all__ = ["plot_information_plane", "plot_mi_by_epoch"]

_TARGET_STYLE = {
    "target_all": {"color": "tab:red", "marker": "o"},
    "target_poisoned": {"color": "tab:orange", "marker": "^"},
    "target_clean": {"color": "tab:purple", "marker": "s"},
}
_CLEAN_COLORS = ["tab:blue", "tab:cyan", "tab:gray", "tab:olive", "tab:green", "tab:brown"]
_LABELS = {"mi_xt": "I(X;T)  [nats]", "mi_ty": "I(T;Y)  [nats]"}


def _check_history(history, columns) -> pd.DataFrame:
    if not isinstance(history, pd.DataFrame):
        raise TypeError(f"history must be a pandas DataFrame, got {type(history).__name__}")
    missing = [c for c in ("epoch", "group", *columns) if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks the column(s) {missing}")
    if len(history) == 0:
        raise ValueError("history is empty: nothing to plot")
    return history


def _groups(history: pd.DataFrame, groups) -> list:
    present = list(dict.fromkeys(history["group"]))
    if groups is None:
        return present
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, Sequence) or not groups:
        raise ValueError(f"groups must be a non-empty list of group names, got {groups!r}")
    absent = [g for g in groups if g not in present]
    if absent:
        raise ValueError(f"groups: {absent} not in the history (groups {present})")
    return list(groups)


def _style(groups: list) -> dict:
    out, k = {}, 0
    for g in groups:
        if g in _TARGET_STYLE:
            out[g] = dict(_TARGET_STYLE[g])
        else:
            out[g] = {"color": _CLEAN_COLORS[k % len(_CLEAN_COLORS)], "marker": "."}
            k += 1
    return out


def plot_information_plane(
    history: pd.DataFrame, ax=None, *, groups=None, annotate: bool = True, **kwargs
) -> Figure:
    """Information-plane trajectories: x = I(X;T), y = I(T;Y) per group, in epoch order.

    Each group is a line through its checkpoints with a marker per checkpoint and an arrow on
    every segment pointing to the later epoch; with ``annotate`` the first and last points are
    labelled with their epoch.

    Parameters
    ----------
    history : pandas.DataFrame
        Columns ``epoch``, ``group``, ``mi_xt``, ``mi_ty``.
    ax : matplotlib Axes, optional
        Axes to draw on; new axes of a new figure when omitted.
    groups : sequence of str, optional
        The groups drawn, in this order (None: all, in the order of the history).
    annotate : bool, default=True
        Write the epoch next to each trajectory's first and last point.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for every group's line, over its style
        (e.g. ``color="red"``; the arrows take the line's colour).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    TypeError
        If ``history`` is not a DataFrame, ``ax`` not an Axes or ``annotate`` not a bool.
    ValueError
        If a column or a group is missing, or the history is empty.
    """
    if not isinstance(annotate, bool):
        raise TypeError(f"annotate must be a bool, got {type(annotate).__name__}")
    history = _check_history(history, ("mi_xt", "mi_ty"))
    chosen = _groups(history, groups)
    fig, ax = new_axes(ax, (6.0, 4.5))
    styles = _style(chosen)
    for g in chosen:
        part = history[history["group"] == g].sort_values("epoch")
        x, y = part["mi_xt"].to_numpy(float), part["mi_ty"].to_numpy(float)
        (line,) = ax.plot(x, y, **line_style({**styles[g], "label": g}, kwargs))
        color = line.get_color()
        for k in range(len(x) - 1):
            ax.annotate(
                "",
                xy=(x[k + 1], y[k + 1]),
                xytext=(x[k], y[k]),
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.0},
            )
        if annotate and len(x):
            epochs = part["epoch"].to_numpy()
            for k in sorted({0, len(x) - 1}):
                ax.annotate(f"e{epochs[k]}", (x[k], y[k]), textcoords="offset points",
                            xytext=(4, 4), fontsize="x-small", color=color)  # fmt: skip
    ax.set_xlabel(_LABELS["mi_xt"])
    ax.set_ylabel(_LABELS["mi_ty"])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best", framealpha=0.85)
    if not ax.get_title():
        ax.set_title("Information plane per group (arrows: later epochs)")
    return fig


def plot_mi_by_epoch(
    history: pd.DataFrame, measure: str = "mi_xt", ax=None, *, groups=None, **kwargs
) -> Figure:
    """One MI measure against the epoch, a line per group.

    Parameters
    ----------
    history : pandas.DataFrame
        Columns ``epoch``, ``group`` and ``measure``.
    measure : str, default="mi_xt"
        The column drawn (``"mi_xt"`` or ``"mi_ty"``, or any numeric column).
    ax : matplotlib Axes, optional
        Axes to draw on; new axes of a new figure when omitted.
    groups : sequence of str, optional
        The groups drawn (None: all).
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for every group's line, over its style.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    TypeError
        If ``history`` is not a DataFrame, ``measure`` not a string or ``ax`` not an Axes.
    ValueError
        If a column or a group is missing, or the history is empty.
    """
    if not isinstance(measure, str):
        raise TypeError(f"measure must be a column name (str), got {type(measure).__name__}")
    history = _check_history(history, (measure,))
    chosen = _groups(history, groups)
    fig, ax = new_axes(ax, (6.0, 4.0))
    styles = _style(chosen)
    for g in chosen:
        part = history[history["group"] == g].sort_values("epoch")
        ax.plot(part["epoch"], part[measure], **line_style({**styles[g], "label": g}, kwargs))
    ax.set_xlabel("epoch (0 = before training)")
    ax.set_ylabel(_LABELS.get(measure, measure))
    ax.set_xticks(sorted(history["epoch"].unique()))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best", framealpha=0.85)
    if not ax.get_title():
        ax.set_title(f"{_LABELS.get(measure, measure).split()[0]} by epoch per group")
    return fig
