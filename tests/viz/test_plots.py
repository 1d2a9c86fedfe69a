"""Figures of backdoor_curves.viz.plots on small real curves (120 poisoned MNIST 7-vs-1 digits)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from backdoor_curves import (
    LinearSVMLearner,
    LogisticLearner,
    RBFSVMLearner,
    learning_curve,
)
from backdoor_curves.demo import LearnerSpec, compute_grid
from backdoor_curves.viz.plots import (
    format_number,
    plot_accuracy_vs_regularization,
    plot_curves,
    plot_deviation,
    plot_slope_vs_accuracy,
)

BETAS = [0.0, 0.01, 0.1, 0.5, 1.0]


@pytest.fixture(scope="module")
def curves(tiny):
    learners = [
        LogisticLearner(C=0.1),
        LogisticLearner(C=10.0),
        LinearSVMLearner(C=1.0),
        RBFSVMLearner(C=10.0, gamma=5e-3),
    ]
    return [learning_curve(learner, tiny, betas=BETAS) for learner in learners]


@pytest.fixture(scope="module")
def table(tiny):
    specs = [
        LearnerSpec("logistic", 0.01),
        LearnerSpec("logistic", 10.0),
        LearnerSpec("linear SVM", 0.01),
        LearnerSpec("linear SVM", 1.0),
        LearnerSpec("RBF SVM", 1.0, 5e-3),
        LearnerSpec("RBF SVM", 10.0, 5e-3),
    ]
    grid = compute_grid(tiny, specs)
    assert (grid["error"] == "").all(), grid["error"].tolist()
    return grid


def _png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


# ---------------------------------------------------------------------------- helpers
@pytest.mark.parametrize(
    ("value", "text"),
    [(0.01, "0.01"), (100.0, "100"), (2154.43469, "2150"), (1e4, "10000"), (0.000464, "0.000464")],
)
def test_format_number(value, text):
    assert format_number(value) == text


# ---------------------------------------------------------------------------- plot_curves
def test_plot_curves_draws_each_curve_against_beta(curves):
    fig = plot_curves(curves)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == len(curves)
    for line, curve in zip(lines, curves, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), BETAS)
        np.testing.assert_allclose(line.get_ydata(), curve["backdoor_loss"])
    assert ax.get_xscale() == "symlog"
    assert ax.get_xlim() == pytest.approx((0.0, 1.0))
    assert "backdoor loss" in ax.get_ylabel()
    assert "beta" in ax.get_xlabel()
    texts = _legend_texts(ax)
    assert texts == [
        "logistic, lambda=10",
        "logistic, lambda=0.1",
        "linear SVM, lambda=1",
        "RBF SVM (gamma=0.005), lambda=0.1",
    ]
    # the same learner at two lambdas: same colour, different line style
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    assert _png_bytes(fig).startswith(b"\x89PNG")


def test_plot_curves_beta_zero_is_visible_and_separated_from_small_betas(curves):
    fig = plot_curves(curves[:1])
    ax = fig.axes[0]
    to_axes = ax.transAxes.inverted()
    x0, _ = to_axes.transform(ax.transData.transform((0.0, 1.0)))
    x1, _ = to_axes.transform(ax.transData.transform((0.01, 1.0)))
    x2, _ = to_axes.transform(ax.transData.transform((0.1, 1.0)))
    x3, _ = to_axes.transform(ax.transData.transform((1.0, 1.0)))
    assert x0 == pytest.approx(0.0, abs=1e-9)  # beta = 0 on the left edge, inside the axes
    assert x3 == pytest.approx(1.0, abs=1e-9)
    # 0 -> 0.01 is a visible step, and the log decades above keep equal widths
    assert x1 - x0 > 0.1
    assert x2 - x1 == pytest.approx(x3 - x2, rel=1e-9)


def test_plot_curves_on_given_axes_with_column_and_labels(curves):
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    out = plot_curves(curves[:2], ax=ax2, column="backdoor_accuracy", labels=["a", "b"])
    assert out is fig
    assert not ax1.get_lines()
    assert len(ax2.get_lines()) == 2
    np.testing.assert_allclose(ax2.get_lines()[1].get_ydata(), curves[1]["backdoor_accuracy"])
    assert _legend_texts(ax2) == ["a", "b"]
    assert "attack success" in ax2.get_ylabel()
    lo, hi = ax2.get_ylim()
    assert lo < 0 < 1 < hi <= 1.05


def test_learning_curve_plot_method(curves):
    ax = curves[2].plot(column="nu")  # returns the Axes, as pandas' plot does
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), curves[2]["nu"])
    assert line.get_ydata()[0] == pytest.approx(0.0, abs=1e-12)  # nu(0) = 0


def test_plot_curves_rejects_bad_input(curves):
    with pytest.raises(ValueError, match="curves is empty"):
        plot_curves([])
    with pytest.raises(ValueError, match="column must be one of"):
        plot_curves(curves, column="accuracy")
    with pytest.raises(ValueError, match="labels"):
        plot_curves(curves, labels=["only one"])
    with pytest.raises(TypeError, match=r"curves\[1\] must be a LearningCurve"):
        plot_curves([curves[0], "not a curve"])
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot_curves(curves, ax="left")


# ---------------------------------------------------------------------------- slope vs accuracy
def test_plot_slope_vs_accuracy_one_marker_per_learner_coloured_by_lambda(table):
    fig = plot_slope_vs_accuracy(table)
    assert isinstance(fig, Figure)
    ax, cbar_ax = fig.axes  # the main axes and the colour bar
    assert "log10(lambda)" in cbar_ax.get_ylabel()
    collections = [c for c in ax.collections if isinstance(c, PathCollection)]
    learners = ["logistic", "linear SVM", "RBF SVM"]
    assert len(collections) == len(learners)
    paths = set()
    for coll, name in zip(collections, learners, strict=True):
        rows = table[table["learner"] == name]
        np.testing.assert_allclose(
            coll.get_offsets(), rows[["score", "backdoor_accuracy"]].to_numpy()
        )
        np.testing.assert_allclose(coll.get_array(), np.log10(rows["lambda"].to_numpy()))
        paths.add(tuple(map(tuple, coll.get_paths()[0].vertices.round(6))))
    assert len(paths) == len(learners)  # distinct marker shapes
    # one colour scale shared by every learner
    norms = {(c.norm.vmin, c.norm.vmax) for c in collections}
    assert norms == {(np.log10(table["lambda"]).min(), np.log10(table["lambda"]).max())}
    assert _legend_texts(ax) == ["logistic", "linear SVM", "RBF SVM (gamma=0.005)"]
    assert "slope score" in ax.get_xlabel() and "backdoor accuracy" in ax.get_ylabel()
    assert _png_bytes(fig).startswith(b"\x89PNG")


def test_plot_slope_vs_accuracy_skips_and_counts_failed_points(table):
    failed = table.copy()
    failed.loc[0, ["score", "derivative"]] = np.nan
    failed.loc[0, "error"] = "slope: DegenerateKKTError: no margin support vector"
    fig = plot_slope_vs_accuracy(failed)
    ax = fig.axes[0]
    n_drawn = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert n_drawn == len(table) - 1
    assert "1 failed point(s) not shown" in _legend_texts(ax)


def test_table_plots_reject_bad_tables(table):
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['score'\]"):
        plot_slope_vs_accuracy(table.drop(columns="score"))
    with pytest.raises(ValueError, match="table is empty"):
        plot_accuracy_vs_regularization(table.iloc[:0])
    with pytest.raises(TypeError, match="pandas DataFrame"):
        plot_slope_vs_accuracy(table.to_dict())
    bad = table.copy()
    bad.loc[0, "lambda"] = 0.0
    with pytest.raises(ValueError, match="lambda"):
        plot_accuracy_vs_regularization(bad)


# ---------------------------------------------------------------------------- accuracy vs lambda
def test_plot_accuracy_vs_regularization_two_lines_per_learner(table):
    fig = plot_accuracy_vs_regularization(table)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    lines = ax.get_lines()
    assert len(lines) == 2 * 3
    labels = [line.get_label() for line in lines]
    assert labels[:2] == ["logistic: clean accuracy", "logistic: backdoor accuracy"]
    rows = table[table["learner"] == "linear SVM"].sort_values("lambda")
    clean, backdoor = lines[2], lines[3]
    np.testing.assert_allclose(clean.get_xdata(), rows["lambda"])
    np.testing.assert_allclose(clean.get_ydata(), rows["clean_accuracy"])
    np.testing.assert_allclose(backdoor.get_ydata(), rows["backdoor_accuracy"])
    assert clean.get_color() == backdoor.get_color()
    assert clean.get_linestyle() == "-" and backdoor.get_linestyle() == "--"
    # the legend sits outside the axes, so it cannot hide data
    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1
    assert "lambda" in ax.get_xlabel()


def test_plot_accuracy_vs_regularization_separates_gammas(table):
    other = table[table["learner"] == "RBF SVM"].assign(gamma=5e-4)
    fig = plot_accuracy_vs_regularization(pd.concat([table, other], ignore_index=True))
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "RBF SVM (gamma=0.005): clean accuracy" in labels
    assert "RBF SVM (gamma=0.0005): clean accuracy" in labels
    assert len(labels) == 2 * 4


# ---------------------------------------------------------------------------- deviation
def test_plot_deviation_paths_start_at_the_clean_model(curves):
    fig = plot_deviation(curves)
    (ax,) = fig.axes
    paths = [line for line in ax.get_lines() if len(line.get_xdata()) == len(BETAS)]
    assert len(paths) == len(curves)
    for line, curve in zip(paths, curves, strict=True):
        np.testing.assert_allclose(line.get_xdata(), curve["nu"])
        np.testing.assert_allclose(line.get_ydata(), curve["rho_ratio"])
        assert line.get_xdata()[0] == pytest.approx(0.0, abs=1e-9)
        assert line.get_ydata()[0] == pytest.approx(1.0)
    labels = [line.get_label() for line in paths]
    assert labels[0] == "logistic, lambda=10" and labels[3] == "RBF SVM (gamma=0.005), lambda=0.1"
    # end points at beta = 1, in the colour of their path
    ends = [line for line in ax.get_lines() if line.get_marker() == "s" and len(line.get_xdata())]
    ends = [line for line in ends if len(line.get_xdata()) == 1]
    assert len(ends) == len(curves)
    assert [e.get_color() for e in ends] == [p.get_color() for p in paths]
    assert "nu" in ax.get_xlabel() and "rho" in ax.get_ylabel()
    assert _png_bytes(fig).startswith(b"\x89PNG")


def test_plot_deviation_single_curve_and_given_axes(curves):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_deviation(curves[0], ax=ax) is fig
    assert "beta = 0 (clean model)" in _legend_texts(ax)


def test_plot_taylor_draws_exact_first_and_second_order(tiny):
    from backdoor_curves import LogisticLearner, backdoor_slope, learning_curve
    from backdoor_curves.viz.plots import plot_taylor

    learner = LogisticLearner(C=0.01)
    curve = learning_curve(learner, tiny, BETAS)
    slope = backdoor_slope(learner, tiny)
    fig = plot_taylor(curve, slope)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["exact curve", "1st order (influence function)", "2nd order"]
    exact, first, second = ax.get_lines()
    np.testing.assert_allclose(exact.get_ydata(), curve["backdoor_loss"])
    # both predictions start at L(0) with slope L'(0)
    assert first.get_ydata()[0] == pytest.approx(slope.backdoor_loss)
    np.testing.assert_allclose(first.get_ydata(), slope.taylor(first.get_xdata())["first"])
    np.testing.assert_allclose(second.get_ydata(), slope.taylor(second.get_xdata())["second"])
    low, high = ax.get_ylim()
    assert low <= curve["backdoor_loss"].min() and high >= curve["backdoor_loss"].max()
    with pytest.raises(TypeError, match="slope must be a BackdoorSlope"):
        plot_taylor(curve, 1.0)
