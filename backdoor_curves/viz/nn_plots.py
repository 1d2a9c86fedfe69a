"""Figures of the neural-network adapter's results: slopes, early fitting, synchronization.

Each function reads the tidy tables that ``backdoor-curves nn`` writes (``slopes.csv``,
``exact.csv``, ``tracking.csv``, ``layers.csv``, ``self_influence.csv``; the same columns as
:class:`~backdoor_curves.nn.curves.NNBackdoorSlope`'s table and
:class:`~backdoor_curves.nn.tracking.Tracker`'s frames) and follows the conventions of
:mod:`backdoor_curves.viz.plots`: it draws on the axes it is given (``ax``) or on a new
pyplot-managed figure, passes ``**kwargs`` to its main artist, and returns the
:class:`~matplotlib.figure.Figure`. The learning curves themselves are drawn by
:func:`~backdoor_curves.viz.plots.plot_curves`. Nothing here imports torch or the ``nn``
subpackage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .plots import format_number, line_style, new_axes

__all__ = [
    "plot_fd_slopes",
    "plot_isolation_precision",
    "plot_loss_reduction",
    "plot_self_influence",
    "plot_synchronization",
]

_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
_GROUP_COLORS = {"poisoned": "tab:red", "target_clean": "tab:blue", "other_clean": "tab:gray"}


def _frame(table, name: str, required: Sequence[str]) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {missing}; it needs {list(required)}")
    if len(table) == 0:
        raise ValueError(f"{name} is empty: nothing to plot")
    return table


def _budgets(table: pd.DataFrame) -> list:
    return sorted(table["epochs"].unique()) if "epochs" in table.columns else [None]


def _rows(table: pd.DataFrame, epochs) -> pd.DataFrame:
    return table if epochs is None else table[table["epochs"] == epochs]


def _epoch_axis(ax, tracking: pd.DataFrame, ylabel: str) -> None:
    """Label the axes of a per-epoch line plot, one tick per tracked epoch."""
    ax.set_xlabel("epoch (0 = before training)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(sorted(tracking["epoch"].unique()))


def _finish(fig: Figure, ax, title: str | None, grid_axis: str = "both") -> Figure:
    """Grid, legend and (unless ``ax`` has one, or ``title`` is None) the title; return ``fig``."""
    ax.grid(True, axis=grid_axis, alpha=0.3)
    ax.legend(fontsize="small", loc="best", framealpha=0.85)
    if title is not None and not ax.get_title():
        ax.set_title(title)
    return fig


def plot_fd_slopes(
    slopes: pd.DataFrame, exact: pd.DataFrame | None = None, ax=None, **kwargs
) -> Figure:
    """Finite-difference slopes (L(h) - L(0)) / h against h, the exact derivative as a line.

    One line per epoch budget: the mean over the seeds at each h, with the seeds' standard
    deviation as error bars (when there are several). The exact derivative of the training run
    at beta = 0 (mean over seeds) is a dashed horizontal line of the same colour: the finite
    differences should approach it as h -> 0.

    Parameters
    ----------
    slopes : pandas.DataFrame
        Columns ``h`` and ``derivative`` (nats per unit of beta), optionally ``epochs`` (one
        line per budget) and ``seed``.
    exact : pandas.DataFrame, optional
        Column ``derivative`` (and ``epochs`` to match the lines).
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.errorbar` for every budget's line of finite
        differences, over its style (e.g. ``color="red"``; the exact line takes the same
        colour).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``; h on a log axis.

    Raises
    ------
    TypeError
        If a table is not a DataFrame or ``ax`` is not an Axes.
    ValueError
        If a table lacks a needed column or is empty.
    """
    slopes = _frame(slopes, "slopes", ("h", "derivative"))
    if exact is not None:
        exact = _frame(exact, "exact", ("derivative",))
    fig, ax = new_axes(ax, (6.0, 4.0))
    for i, epochs in enumerate(_budgets(slopes)):
        color = _COLORS[i % len(_COLORS)]
        part = _rows(slopes, epochs)
        stats = part.groupby("h")["derivative"].agg(["mean", "std", "count"]).sort_index()
        label = "finite difference" if epochs is None else f"finite difference, {epochs} epochs"
        yerr = stats["std"].where(stats["count"] > 1)
        style = {"color": color, "marker": "o", "capsize": 3, "label": label}
        line = ax.errorbar(
            stats.index,
            stats["mean"],
            yerr=None if yerr.isna().all() else yerr.fillna(0.0),
            **line_style(style, kwargs),
        ).lines[0]
        color = line.get_color()
        if exact is not None:
            ex = _rows(exact, epochs) if "epochs" in exact.columns else exact
            if len(ex):
                value = float(ex["derivative"].mean())
                ax.axhline(
                    value,
                    color=color,
                    linestyle="--",
                    linewidth=1.2,
                    label=f"exact d/dbeta{'' if epochs is None else f', {epochs} epochs'} "
                    f"({format_number(value)})",
                )
    ax.set_xscale("log")
    ax.set_xlabel("step h of beta")
    ax.set_ylabel("(L(h) - L(0)) / h   [nats per unit of beta]")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    return _finish(fig, ax, "Backdoor slope: finite differences vs the exact derivative")


def plot_isolation_precision(tracking: pd.DataFrame, ax=None, **kwargs) -> Figure:
    """Isolation precision IP(e) and the loss AUROC by epoch, with eta as the chance level.

    IP(e) is the fraction of poisoned samples among the floor(eta n) lowest-loss training
    samples after epoch e (ABL's isolation); a detector that does not see the poison scores
    eta, so IP well above the dotted line means the poison is fitted early.

    Parameters
    ----------
    tracking : pandas.DataFrame
        Columns ``epoch``, ``isolation_precision`` and ``eta``, optionally ``auroc``
        (:attr:`~backdoor_curves.nn.tracking.Tracker.history`).
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for the line of IP(e), over its style
        (red, circles).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``.

    Raises
    ------
    TypeError
        If ``tracking`` is not a DataFrame or ``ax`` is not an Axes.
    ValueError
        If it lacks a needed column or is empty.
    """
    tracking = _frame(tracking, "tracking", ("epoch", "isolation_precision", "eta"))
    fig, ax = new_axes(ax, (6.0, 4.0))
    style = {"marker": "o", "color": "tab:red", "label": "isolation precision IP(e)"}
    ax.plot(tracking["epoch"], tracking["isolation_precision"], **line_style(style, kwargs))
    if "auroc" in tracking.columns:
        ax.plot(
            tracking["epoch"],
            tracking["auroc"],
            marker="s",
            linestyle="--",
            color="tab:blue",
            label="AUROC of the loss as a poison detector",
        )
        ax.axhline(0.5, color="tab:blue", linestyle=":", linewidth=0.8, alpha=0.6)
    eta = float(tracking["eta"].iloc[0])
    ax.axhline(eta, color="black", linestyle=":", label=f"eta = {format_number(eta)} (chance IP)")
    ax.set_ylim(-0.03, 1.03)
    _epoch_axis(ax, tracking, "fraction")
    return _finish(fig, ax, "Early fitting: poisoned samples among the lowest losses")


def plot_loss_reduction(tracking: pd.DataFrame, ax=None, **kwargs) -> Figure:
    """Delta predicted from group-mean gradients against the measured one-step change, by epoch.

    Delta = eta r_bb - (1 - eta) r_cc + (1 - 2 eta) r_bc (first order) is the predicted
    decrease of the mean poisoned loss minus that of the mean clean loss over one SGD step;
    the measured value takes the step. Positive: the step lowers the poisoned loss more.

    Parameters
    ----------
    tracking : pandas.DataFrame
        Columns ``epoch``, ``delta`` and ``measured_delta`` (nats).
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` for the line of the predicted Delta,
        over its style (purple, circles).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``.

    Raises
    ------
    TypeError
        If ``tracking`` is not a DataFrame or ``ax`` is not an Axes.
    ValueError
        If it lacks a needed column or is empty.
    """
    tracking = _frame(tracking, "tracking", ("epoch", "delta", "measured_delta"))
    fig, ax = new_axes(ax, (6.0, 4.0))
    style = {"marker": "o", "color": "tab:purple", "label": "Delta predicted (first order)"}
    ax.plot(tracking["epoch"], tracking["delta"], **line_style(style, kwargs))
    ax.plot(
        tracking["epoch"],
        tracking["measured_delta"],
        marker="x",
        linestyle="--",
        color="black",
        label="measured one-step change",
    )
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    _epoch_axis(ax, tracking, "poisoned minus clean loss decrease\nover one SGD step [nats]")
    return _finish(fig, ax, "Loss-reduction gap Delta: predicted vs measured")


_SYNC_PAIRS = (
    ("poisoned", "within poisoned", "tab:red"),
    ("clean", "within clean", "tab:gray"),
    ("poisoned_clean", "poisoned vs clean", "tab:olive"),
)


def plot_synchronization(
    layers: pd.DataFrame, kind: str = "grad", epoch=None, ax=None, **kwargs
) -> Figure:
    """Per-layer synchronization within and across groups at one epoch (grouped bars).

    For each layer, the mean pairwise cosine of per-sample gradients (``kind="grad"``) or of
    pooled activations (``kind="act"``) within the poisoned samples, within the clean samples
    and across the two. Poisoned samples that "synchronize" have a within-poisoned cosine well
    above the others.

    Parameters
    ----------
    layers : pandas.DataFrame
        Columns ``epoch``, ``layer`` and ``{kind}_cos_poisoned``, ``{kind}_cos_clean``,
        ``{kind}_cos_poisoned_clean`` (:attr:`~backdoor_curves.nn.tracking.Tracker.
        layer_history`).
    kind : {"grad", "act"}, default="grad"
        Gradients or activations.
    epoch : int, optional
        The epoch shown; default the first epoch after training started (the smallest
        positive one, else 0).
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.bar` for every group of bars, over its style
        (one colour per pair of groups), e.g. ``alpha=0.7`` or ``edgecolor="black"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``.

    Raises
    ------
    TypeError
        If ``layers`` is not a DataFrame or ``ax`` is not an Axes.
    ValueError
        If ``kind`` is not "grad" or "act", ``epoch`` has no rows, or a column is missing.
    """
    if kind not in ("grad", "act"):
        raise ValueError(f"kind must be 'grad' or 'act', got {kind!r}")
    columns = [f"{kind}_cos_{pair}" for pair, _, _ in _SYNC_PAIRS]
    layers = _frame(layers, "layers", ("epoch", "layer", *columns))
    epochs = sorted(layers["epoch"].unique())
    if epoch is None:
        positive = [e for e in epochs if e > 0]
        epoch = positive[0] if positive else epochs[0]
    part = layers[layers["epoch"] == epoch]
    if not len(part):
        raise ValueError(f"epoch {epoch!r} has no rows in layers; epochs present: {epochs}")
    fig, ax = new_axes(ax, (6.0, 4.0))
    x = np.arange(len(part))
    width = 0.8 / len(_SYNC_PAIRS)
    for i, ((_, label, color), column) in enumerate(zip(_SYNC_PAIRS, columns, strict=True)):
        style = {"color": color, "label": label, **kwargs}
        ax.bar(x + (i - 1) * width, part[column].to_numpy(float), width, **style)
    ax.set_xticks(x, part["layer"].astype(str).tolist())
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    what = "per-sample gradients" if kind == "grad" else "pooled activations"
    ax.set_ylabel(f"mean pairwise cosine of {what}")
    ax.set_xlabel("layer")
    return _finish(fig, ax, f"Synchronization by layer ({what}, epoch {epoch})", grid_axis="y")


def plot_self_influence(self_influence: pd.DataFrame, auroc=None, ax=None, **kwargs) -> Figure:
    """Distribution of self-influence by group, its AUROC as a poison detector in the title.

    Self-influence SI_i = sum_t lr_t ||grad l_i(theta_t)||^2 over the tracked checkpoints;
    histograms (log-spaced bins when every value is positive) of the poisoned, target-class
    clean and other clean samples, each as the fraction of its group per bin.

    Parameters
    ----------
    self_influence : pandas.DataFrame
        Columns ``group`` and ``self_influence``
        (:attr:`~backdoor_curves.nn.tracking.Tracker.self_influence`).
    auroc : float, optional
        The AUROC of SI as a poison detector, shown in the title.
    ax : matplotlib Axes, optional
        Axes to draw on; a new Figure is created when omitted.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.hist` for every group's histogram, over its
        style (filled steps, one colour per group), e.g. ``histtype="step"`` or ``alpha=0.8``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``.

    Raises
    ------
    TypeError
        If ``self_influence`` is not a DataFrame or ``ax`` is not an Axes.
    ValueError
        If it lacks a needed column or is empty.
    """
    table = _frame(self_influence, "self_influence", ("group", "self_influence"))
    values = table["self_influence"].to_numpy(float)
    finite = values[np.isfinite(values)]
    fig, ax = new_axes(ax, (6.0, 4.0))
    log = finite.size > 0 and bool(np.all(finite > 0))
    if finite.size == 0:
        bins = 10
    elif log:
        low, high = finite.min(), finite.max()
        bins = np.geomspace(low, high if high > low else low * 10, 31)
    else:
        bins = np.linspace(finite.min(), max(finite.max(), finite.min() + 1e-12), 31)
    groups = table["group"].astype(str)
    for name in [g for g in _GROUP_COLORS if (groups == g).any()] + sorted(
        set(groups) - set(_GROUP_COLORS)
    ):
        part = values[(groups == name).to_numpy()]
        part = part[np.isfinite(part)]
        if part.size:
            style = {
                "histtype": "stepfilled",
                "alpha": 0.45,
                "color": _GROUP_COLORS.get(name, "tab:green"),
                "label": f"{name} (n = {part.size})",
                **kwargs,
            }
            ax.hist(part, bins=bins, weights=np.full(part.size, 1.0 / part.size), **style)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("self-influence sum_t lr_t ||grad l_i||^2")
    ax.set_ylabel("fraction of the group")
    if not ax.get_title():  # the AUROC is formatted only for a title of ours
        score = "" if auroc is None or not np.isfinite(auroc) else f" (AUROC {auroc:.3f})"
        ax.set_title(f"Self-influence by group{score}")
    return _finish(fig, ax, None)
