"""Figures of explanations: influential training points, input-gradient maps, slope shares.

matplotlib's conventions, as in :mod:`backdoor_curves.viz`: each function draws on the axes it
is given (``ax=`` / ``axes=``) or on new axes of a new figure made with
:func:`matplotlib.pyplot.subplots` (so ``plt.show()`` shows it and ``plt.close(fig)`` releases
it); ``**kwargs`` go to the main artist (:meth:`~matplotlib.axes.Axes.imshow` for images,
:meth:`~matplotlib.axes.Axes.bar` for bars) and override the function's own style; each returns
the :class:`~matplotlib.figure.Figure` holding the axes.

The functions read the result objects of :mod:`backdoor_curves.explain.influence` by their
attributes (this module imports nothing from it). Poisoned points (members of P, which carry
the trigger and the attacker's label) are framed in red, clean points in grey.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "plot_influential_points",
    "plot_input_gradients",
    "plot_poisoning_contributions",
    "POISON_COLOR",
    "CLEAN_COLOR",
]

#: Frame colour of poisoned (triggered) points.
POISON_COLOR = "tab:red"
#: Frame colour of clean points.
CLEAN_COLOR = "0.6"


def _axes_list(axes, n: int, figsize) -> tuple[Figure, list]:
    if axes is None:
        fig, ax = plt.subplots(1, n, figsize=figsize, squeeze=False)
        return fig, list(ax.ravel())
    flat = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(flat) < n:
        raise ValueError(f"axes must hold at least {n} axes, got {len(flat)}")
    return flat[0].figure, flat[:n]


def _as_image(row: np.ndarray, image_shape) -> np.ndarray:
    if image_shape is None:
        side = int(round(np.sqrt(row.size)))
        if side * side != row.size:
            raise ValueError(
                f"image_shape is needed to draw {row.size} features as an image (not a square)"
            )
        image_shape = (side, side)
    return np.clip(np.asarray(row, dtype=float).reshape(tuple(image_shape)), 0.0, 1.0)


def _frame(ax, color: str, width: float = 3.0) -> None:
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(color)
        spine.set_linewidth(width)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_influential_points(points, axes=None, *, image_shape=None, **kwargs) -> Figure:
    """Draw the explained test point and its k most influential training points as images.

    Panel 0 shows the test input with its label and loss; panels 1..k the training points,
    most influential first, titled with their label, their influence I_i (derivative of the
    test loss with respect to up-weighting the point; negative helps the prediction) and
    whether they carry the trigger (poisoned: red frame) or not (clean: grey frame).

    Parameters
    ----------
    points : InfluentialPoints
        The result of :func:`~backdoor_curves.explain.influential_points`.
    axes : sequence of matplotlib Axes, optional
        At least k + 1 axes to draw into; new ones in one row of a new figure otherwise.
    image_shape : tuple of int, optional
        Shape of one image; default ``points.image_shape`` (else a square).
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.imshow` (default ``cmap="gray"``, ``vmin=0``,
        ``vmax=1``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    TypeError
        If ``points`` is not an InfluentialPoints.
    ValueError
        If fewer than k + 1 axes are given or the images cannot be shaped.
    """
    if not all(hasattr(points, a) for a in ("indices", "influence", "poisoned", "X", "x")):
        raise TypeError(f"points must be an InfluentialPoints, got {type(points).__name__}")
    shape = image_shape if image_shape is not None else points.image_shape
    k = points.indices.shape[0]
    fig, axs = _axes_list(axes, k + 1, (1.6 * (k + 1), 2.2))
    style = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0, **kwargs}
    axs[0].imshow(_as_image(points.x, shape), **style)
    axs[0].set_title(f"test: y={points.y}\nloss {points.test_loss:.3g}", fontsize=8)
    _frame(axs[0], "black")
    for rank, ax in enumerate(axs[1:], start=1):
        i = rank - 1
        poisoned = bool(points.poisoned[i])
        ax.imshow(_as_image(points.X[i], shape), **style)
        kind = "poisoned" if poisoned else "clean"
        ax.set_title(
            f"#{rank} y={points.labels[i]} ({kind})\nI={points.influence[i]:.3g}", fontsize=8
        )
        _frame(ax, POISON_COLOR if poisoned else CLEAN_COLOR)
    return fig


def plot_input_gradients(
    maps: Mapping[str, np.ndarray], image=None, axes=None, *, image_shape=None, **kwargs
) -> Figure:
    """Draw input-gradient maps side by side (e.g. the clean and the poisoned model).

    The maps share one symmetric colour scale (``vmin = -vmax``, vmax = the largest absolute
    value over all maps), so a map that grew (the poisoned model's weights on the trigger)
    looks brighter; red pushes towards ``classes_[1]``, blue towards ``classes_[0]``.

    Parameters
    ----------
    maps : mapping of str to ndarray
        Panel title -> map of shape (H, W) (e.g. :func:`clean_and_poisoned_maps`'s result).
    image : array-like, optional
        The input image, drawn first in gray (flat inputs need ``image_shape``).
    axes : sequence of matplotlib Axes, optional
        ``len(maps)`` (+ 1 with ``image``) axes to draw into; new ones otherwise.
    image_shape : tuple of int, optional
        Shape of ``image`` and of flat maps.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.imshow` of the maps (default ``cmap="RdBu_r"``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ValueError
        If ``maps`` is empty or too few axes are given.
    """
    if not isinstance(maps, Mapping) or not maps:
        raise ValueError("maps must be a non-empty mapping of titles to gradient maps")
    arrays = {}
    for name, m in maps.items():
        m = np.asarray(m, dtype=float)
        if m.ndim == 1:
            m = _as_image(m, image_shape) if image_shape is None else m.reshape(image_shape)
        arrays[name] = m
    n = len(arrays) + (image is not None)
    fig, axs = _axes_list(axes, n, (2.6 * n, 2.8))
    if image is not None:
        img = np.asarray(image, dtype=float)
        if img.ndim == 1:
            img = _as_image(img, image_shape)
        axs[0].imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        axs[0].set_title("input", fontsize=9)
        _frame(axs[0], "black", 1.0)
        axs = axs[1:]
    vmax = max(float(np.max(np.abs(m))) for m in arrays.values()) or 1.0
    style = {"cmap": "RdBu_r", "vmin": -vmax, "vmax": vmax, **kwargs}
    image_artist = None
    for ax, (name, m) in zip(axs, arrays.items(), strict=False):
        image_artist = ax.imshow(m, **style)
        ax.set_title(f"{name}\nmax |grad| {np.max(np.abs(m)):.3g}", fontsize=9)
        _frame(ax, "black", 1.0)
    if image_artist is not None:
        fig.colorbar(image_artist, ax=list(axs), shrink=0.8, label="df/dx")
    return fig


def plot_poisoning_contributions(contributions, ax=None, *, sort: bool = True, **kwargs) -> Figure:
    """Bar chart of the poisoning points' contributions to the backdoor slope.

    Parameters
    ----------
    contributions : PoisoningContributions
        The result of :func:`~backdoor_curves.explain.poisoning_contributions`.
    ax : matplotlib Axes, optional
        Axes to draw into; new ones of a new figure otherwise.
    sort : bool, default=True
        Sort the bars from the most negative contribution (the point that teaches the
        backdoor most) up; otherwise in the order of ``data.X_poison``.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.bar` (default colour: the poison colour).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    TypeError
        If ``contributions`` is not a PoisoningContributions.
    """
    if not all(hasattr(contributions, a) for a in ("contributions", "derivative", "learner")):
        raise TypeError(
            f"contributions must be a PoisoningContributions, got {type(contributions).__name__}"
        )
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3))
    else:
        fig = ax.figure
    values = contributions.contributions
    order = np.argsort(values, kind="stable") if sort else np.arange(values.size)
    style = {"color": POISON_COLOR, **kwargs}
    ax.bar(np.arange(values.size), values[order], **style)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("poisoning point" + (" (sorted)" if sort else " (row of X_poison)"))
    ax.set_ylabel("dL(V_t)/d eps_j")
    ax.set_title(
        f"{contributions.learner}: contributions sum to the slope {contributions.derivative:.4g}",
        fontsize=9,
    )
    return fig
