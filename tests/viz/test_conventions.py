"""matplotlib's conventions, checked for every figure function of viz.plots and viz.nn_plots and
for the ``plot`` methods of LearningCurve and BackdoorSlope.

- ``ax=`` is honoured: the function draws into it (and nowhere else) and returns its figure;
- without ``ax`` the new figure is managed by pyplot (``plt.show()`` shows it);
- ``**kwargs`` reach the main artist (lines, points, bars) and override the function's style;
- :func:`backdoor_curves.viz.save_figure` writes atomically and closes the figure;
- every public figure helper is importable from :mod:`backdoor_curves.viz`.

Small hand-made curves, slopes and tables: nothing is fitted here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from backdoor_curves import viz
from backdoor_curves.measures.results import BackdoorSlope, LearningCurve, slope_score
from backdoor_curves.viz import grid_plots, nn_plots, plots

BETAS = np.array([0.0, 0.01, 0.1, 0.5, 1.0])
RED = to_rgb("red")


def make_curve(learner: str = "logistic", lam: float = 0.1, shift: float = 0.0) -> LearningCurve:
    values = {
        "backdoor_loss": np.array([2.0, 1.8, 1.2, 0.5, 0.2]) + shift,
        "clean_loss": np.array([0.1, 0.1, 0.11, 0.12, 0.13]),
        "clean_accuracy": np.array([0.99, 0.99, 0.98, 0.98, 0.97]),
        "backdoor_accuracy": np.array([0.0, 0.05, 0.3, 0.8, 0.95]),
        "rho": np.array([3.0, 3.01, 3.1, 3.4, 3.8]),
        "rho_ratio": np.array([1.0, 1.003, 1.033, 1.133, 1.267]),
        "nu": np.array([0.0, 0.001, 0.01, 0.05, 0.1]),
    }
    return LearningCurve(BETAS.copy(), values, learner, lam, {"C": 1.0 / lam})


def make_slope(second_derivative: float = 300.0) -> BackdoorSlope:
    return BackdoorSlope(
        derivative=-20.0,
        score=float(slope_score(-20.0)),
        condition_number=10.0,
        backdoor_loss=2.0,
        second_derivative=second_derivative,
        regularization=0.1,
        learner="logistic",
    )


CURVES = [make_curve(), make_curve(lam=10.0, shift=0.3), make_curve("linear SVM", 1.0, 0.1)]
TABLE = pd.DataFrame(
    {
        "learner": ["logistic"] * 3 + ["linear SVM"] * 3,
        "lambda": [0.1, 1.0, 10.0] * 2,
        "score": [0.99, 0.8, 0.3, 0.95, 0.7, 0.2],
        "clean_accuracy": [0.99, 0.98, 0.95, 0.99, 0.97, 0.94],
        "backdoor_accuracy": [0.98, 0.6, 0.05, 0.97, 0.5, 0.02],
    }
)
SLOPES = pd.DataFrame(
    {
        "epochs": [1, 1, 1, 1, 2, 2, 2, 2],
        "seed": [0, 1, 0, 1, 0, 1, 0, 1],
        "h": [0.1, 0.1, 1.0, 1.0] * 2,
        "derivative": [-1.0, -1.2, -0.8, -0.9, -2.0, -2.1, -1.5, -1.6],
    }
)
EXACT = pd.DataFrame({"epochs": [1, 2], "derivative": [-1.1, -2.05]})
TRACKING = pd.DataFrame(
    {
        "epoch": [0, 1, 2],
        "isolation_precision": [0.1, 0.5, 0.7],
        "eta": [0.1] * 3,
        "auroc": [0.5, 0.8, 0.9],
        "delta": [0.0, 0.2, 0.1],
        "measured_delta": [0.0, 0.25, 0.12],
    }
)
LAYERS = pd.DataFrame(
    {
        "epoch": [1, 1],
        "layer": ["conv1", "fc"],
        "grad_cos_poisoned": [0.8, 0.7],
        "grad_cos_clean": [0.1, 0.2],
        "grad_cos_poisoned_clean": [0.0, -0.1],
    }
)
INFLUENCE = pd.DataFrame(
    {
        "group": ["poisoned"] * 3 + ["target_clean"] * 3 + ["other_clean"] * 3,
        "self_influence": [5.0, 6.0, 7.0, 1.0, 1.5, 2.0, 0.5, 0.7, 0.9],
    }
)


def _lines(ax) -> list:
    return list(ax.get_lines())


def _labelled(prefix: str) -> Callable:
    return lambda ax: [line for line in ax.get_lines() if line.get_label().startswith(prefix)]


@dataclass(frozen=True)
class Case:
    """A figure function: how to draw it (``draw(ax, **kwargs)``) and find its main artists."""

    name: str
    draw: Callable
    artists: Callable


CASES = [
    Case("plot_curves", lambda ax, **kw: plots.plot_curves(CURVES, ax, **kw), _lines),
    Case(
        "plot_deviation",
        lambda ax, **kw: plots.plot_deviation(CURVES, ax, **kw),
        lambda ax: [line for line in ax.get_lines() if len(line.get_xdata()) == len(BETAS)],
    ),
    Case(
        "plot_taylor",
        lambda ax, **kw: plots.plot_taylor(CURVES[0], make_slope(), ax, **kw),
        lambda ax: ax.get_lines()[:1],
    ),
    Case(
        "plot_slope",
        lambda ax, **kw: plots.plot_slope(make_slope(), ax, CURVES[0], **kw),
        _labelled("tangent"),
    ),
    Case(
        "plot_slope_vs_accuracy",
        lambda ax, **kw: plots.plot_slope_vs_accuracy(TABLE, ax, **kw),
        lambda ax: [c for c in ax.collections if isinstance(c, PathCollection)],
    ),
    Case(
        "plot_accuracy_vs_regularization",
        lambda ax, **kw: plots.plot_accuracy_vs_regularization(TABLE, ax, **kw),
        _lines,
    ),
    Case(
        "plot_fd_slopes",
        lambda ax, **kw: nn_plots.plot_fd_slopes(SLOPES, EXACT, ax, **kw),
        lambda ax: [container.lines[0] for container in ax.containers],
    ),
    Case(
        "plot_isolation_precision",
        lambda ax, **kw: nn_plots.plot_isolation_precision(TRACKING, ax, **kw),
        _labelled("isolation precision"),
    ),
    Case(
        "plot_loss_reduction",
        lambda ax, **kw: nn_plots.plot_loss_reduction(TRACKING, ax, **kw),
        _labelled("Delta predicted"),
    ),
    Case(
        "plot_synchronization",
        lambda ax, **kw: nn_plots.plot_synchronization(LAYERS, "grad", None, ax, **kw),
        lambda ax: list(ax.patches),
    ),
    Case(
        "plot_self_influence",
        lambda ax, **kw: nn_plots.plot_self_influence(INFLUENCE, 0.9, ax, **kw),
        lambda ax: list(ax.patches),
    ),
]
IDS = [case.name for case in CASES]


def _rgb(artist) -> tuple:
    """The colour of a line, or the face colour of a patch or of every point of a collection."""
    if isinstance(artist, Line2D):
        return to_rgb(artist.get_color())
    face = np.atleast_2d(artist.get_facecolor())
    rows = {tuple(np.round(row[:3], 6)) for row in face}
    assert len(rows) == 1, rows
    return rows.pop()


def _is_empty(ax: Axes) -> bool:
    return not (ax.get_lines() or ax.collections or ax.patches or ax.containers)


# ---------------------------------------------------------------------------- ax=
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_draws_on_the_given_axes_and_returns_their_figure(case):
    before = plt.get_fignums()
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert case.draw(right) is fig
    assert case.artists(right)
    assert _is_empty(left)
    assert plt.get_fignums() == before  # pyplot was not involved


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_axes_of_a_subfigure_return_the_root_figure(case):
    fig = Figure()
    sub = fig.subfigures(1, 2)[1]
    ax = sub.add_subplot()
    assert case.draw(ax) is fig
    assert case.artists(ax)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_without_axes_the_new_figure_is_managed_by_pyplot(case):
    fig = case.draw(None)
    assert isinstance(fig, Figure)
    assert fig.number in plt.get_fignums()
    assert plt.gcf() is fig  # the current figure: plt.show() / plt.savefig() act on it
    assert case.artists(fig.axes[0])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_kwargs_reach_the_main_artist(case):
    fig = Figure()
    ax = fig.add_subplot()
    case.draw(ax, color="red")
    artists = case.artists(ax)
    assert artists
    assert all(_rgb(artist) == pytest.approx(RED) for artist in artists)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_bad_keyword_reaches_matplotlib_and_is_refused(case):
    with pytest.raises((AttributeError, TypeError), match="not_a_property"):
        case.draw(None, not_a_property=1)


def test_line_aliases_override_the_default_style_without_clashing():
    fig = plots.plot_curves(CURVES, c="red", lw=3, ls=":")
    lines = fig.axes[0].get_lines()
    assert {to_rgb(line.get_color()) for line in lines} == {RED}
    assert {line.get_linewidth() for line in lines} == {3}
    assert {line.get_linestyle() for line in lines} == {":"}
    assert {line.get_marker() for line in lines} == {"o", "s"}  # the rest of the style stays


def test_kwargs_label_and_style_of_plot_curves():
    fig = plots.plot_curves(CURVES[:1], label="mine", marker="x")
    (line,) = fig.axes[0].get_lines()
    assert line.get_label() == "mine" and line.get_marker() == "x"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["mine"]


def test_scatter_colour_replaces_the_lambda_colours_and_the_colour_bar():
    by_lambda = plots.plot_slope_vs_accuracy(TABLE)
    assert len(by_lambda.axes) == 2  # the axes and the colour bar of log10(lambda)
    red = plots.plot_slope_vs_accuracy(TABLE, color="red", s=80, ec="blue")
    (ax,) = red.axes  # no colour bar: the colour no longer stands for lambda
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert all(_rgb(c) == pytest.approx(RED) for c in points)
    assert all(np.all(c.get_sizes() == 80) for c in points)
    assert all(to_rgb(tuple(c.get_edgecolor()[0])) == to_rgb("blue") for c in points)
    handles = ax.get_legend().legend_handles
    assert to_rgb(handles[0].get_markerfacecolor()) == RED


def test_deviation_end_markers_follow_the_colour_given():
    fig = plots.plot_deviation(CURVES, color="green")
    ends = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 1]
    ends = [line for line in ends if line.get_marker() == "s"]
    assert len(ends) == len(CURVES)
    assert {to_rgb(line.get_color()) for line in ends} == {to_rgb("green")}


def test_fd_slopes_exact_line_follows_the_colour_given():
    fig = nn_plots.plot_fd_slopes(SLOPES, EXACT, color="red")
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 2 and {to_rgb(line.get_color()) for line in dashed} == {RED}


# ---------------------------------------------------------------------------- methods
def test_learning_curve_plot_returns_the_axes_it_drew_on():
    curve = CURVES[0]
    fig = Figure()
    ax = fig.add_subplot()
    assert curve.plot(ax=ax, color="red") is ax
    (line,) = ax.get_lines()
    assert to_rgb(line.get_color()) == RED
    np.testing.assert_array_equal(line.get_ydata(), curve["backdoor_loss"])


def test_learning_curve_plot_without_axes_makes_a_pyplot_figure():
    ax = CURVES[0].plot(column="nu", label="nu path", linestyle="--")
    assert isinstance(ax, Axes)
    assert ax.figure.number in plt.get_fignums()
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), CURVES[0]["nu"])
    assert line.get_label() == "nu path" and line.get_linestyle() == "--"
    # several curves on one axes, pandas-style
    CURVES[1].plot(ax=ax, column="nu")
    assert len(ax.get_lines()) == 2


def test_backdoor_slope_plot_draws_the_tangent_and_second_order_over_the_curve():
    slope, curve = make_slope(), CURVES[0]
    fig = Figure()
    ax = fig.add_subplot()
    assert slope.plot(ax=ax, curve=curve, color="red") is ax
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0].startswith("exact curve (logistic, lambda=0.1)")
    (tangent,) = _labelled("tangent")(ax)
    assert "dL/dbeta = -20" in tangent.get_label() and "score 0.968" in tangent.get_label()
    assert to_rgb(tangent.get_color()) == RED
    x = tangent.get_xdata()
    assert x[0] == 0.0 and x[-1] == 1.0
    np.testing.assert_allclose(tangent.get_ydata(), 2.0 - 20.0 * x)  # L(0) + beta L'(0)
    (second,) = _labelled("2nd order")(ax)
    assert "d2L/dbeta2 = 300" in second.get_label()
    np.testing.assert_allclose(second.get_ydata(), slope.taylor(second.get_xdata())["second"])
    low, high = ax.get_ylim()  # the curve sets the range: the tangent runs off below
    assert low <= curve["backdoor_loss"].min() and high >= curve["backdoor_loss"].max()
    assert low > -1.0
    assert ax.get_xscale() == "symlog"


def test_backdoor_slope_plot_alone_and_without_second_derivative():
    ax = make_slope(second_derivative=0.0).plot()  # an SVM: its first piece is linear
    assert ax.figure.number in plt.get_fignums()
    assert len(_labelled("tangent")(ax)) == 1
    assert not _labelled("2nd order")(ax)
    assert not _labelled("exact curve")(ax)
    low, high = ax.get_ylim()
    assert -0.5 < low < 0.0 and high > 2.0  # from L(0) = 2 down to 0, not to L(0) + L'(0)
    with pytest.raises(TypeError, match="curve must be a LearningCurve|curves\\[0\\]"):
        make_slope().plot(curve="not a curve")


def test_plot_slope_rejects_a_non_slope():
    with pytest.raises(TypeError, match="slope must be a BackdoorSlope"):
        plots.plot_slope(CURVES[0])


# ---------------------------------------------------------------------------- save_figure
@pytest.mark.parametrize(("name", "magic"), [("f.png", b"\x89PNG"), ("f.pdf", b"%PDF"),
                                             ("f.svg", b"<?xml")])  # fmt: skip
def test_save_figure_writes_by_suffix_closes_and_leaves_no_temporary_file(tmp_path, name, magic):
    fig = plots.plot_curves(CURVES)
    assert fig.number in plt.get_fignums()
    path = viz.save_figure(fig, tmp_path / name)
    assert path == tmp_path / name
    assert path.read_bytes().startswith(magic)
    assert os.listdir(tmp_path) == [name]
    assert fig.number not in plt.get_fignums()  # closed


def test_save_figure_png_resolution_and_savefig_kwargs(tmp_path):
    fig = plt.figure(figsize=(2, 1))
    viz.save_figure(fig, str(tmp_path / "a.png"))  # a str path too
    fig = plt.figure(figsize=(2, 1))
    viz.save_figure(fig, tmp_path / "b.png", dpi=50)
    a, b = (tmp_path / "a.png").read_bytes(), (tmp_path / "b.png").read_bytes()
    width = int.from_bytes(a[16:20], "big"), int.from_bytes(b[16:20], "big")
    assert width == (260, 100)  # 130 dpi by default, as the project's PNGs


def test_save_figure_failure_keeps_the_old_file_and_still_closes(tmp_path, monkeypatch):
    target = tmp_path / "f.png"
    target.write_bytes(b"old")
    fig = plots.plot_curves(CURVES)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        viz.save_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.png"]
    assert fig.number not in plt.get_fignums()
    fig = plt.figure()
    with pytest.raises(FileNotFoundError):
        viz.save_figure(fig, tmp_path / "missing" / "f.png")
    assert fig.number not in plt.get_fignums()


def test_save_figure_rejects_bad_arguments_before_writing(tmp_path):
    fig = plt.figure()
    with pytest.raises(ValueError, match=r"path must end with the suffix .*'.*f\.txt'"):
        viz.save_figure(fig, tmp_path / "f.txt")
    with pytest.raises(ValueError, match="path must end with the suffix"):
        viz.save_figure(fig, tmp_path / "noext")
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        viz.save_figure(fig, 3)
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        viz.save_figure(fig.add_subplot(), tmp_path / "f.png")
    assert os.listdir(tmp_path) == []
    assert fig.number in plt.get_fignums()  # nothing was done, so the figure stays open
    viz.save_figure(fig, tmp_path / "noext", format="png")
    assert (tmp_path / "noext").read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------------------- one module
def test_viz_exports_every_public_figure_helper():
    public = set(viz.__all__)
    for module in (plots, grid_plots, nn_plots):
        missing = set(module.__all__) - public
        assert not missing, f"{module.__name__} helpers not exported by backdoor_curves.viz"
        for name in module.__all__:
            assert getattr(viz, name) is getattr(module, name)
    assert "save_figure" in public
