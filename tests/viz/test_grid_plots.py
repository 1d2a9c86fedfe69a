"""The grid figures (backdoor_curves.viz.grid_plots): heat maps with fitted colour scales and the
robust region outlined, and matplotlib's ax= / **kwargs conventions, on hand-built tables (the
Agg backend and closing the figures: tests/viz/conftest.py)."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from backdoor_curves.study.robust import RobustRegion, robust_region
from backdoor_curves.viz.grid_plots import (
    plot_accuracy_heatmap,
    plot_accuracy_heatmaps,
    plot_grid_curves,
    plot_grid_deviation,
)

CS = [0.01, 0.1, 1.0, 10.0]
GAMMAS = [0.001, 0.01, 0.1, 1.0]


def heat_table(robust: np.ndarray, seeds=(0, 1)) -> pd.DataFrame:
    """A 4 x 4 C x gamma grid of one learner: clean accuracy 0.943 ... 1.0, backdoor accuracy 0.02
    where ``robust[i, j]`` (gamma i, C j), else 0.9 + 0.02 * j."""
    rows = []
    for (i, gamma), (j, c), seed in itertools.product(enumerate(GAMMAS), enumerate(CS), seeds):
        rows.append(
            {
                "learner": "RBF SVM",
                "C": c,
                "gamma": gamma,
                "random_state": seed,
                "lambda": 1.0 / c,
                "score": 0.1 * j,
                "clean_accuracy": 0.943 + 0.019 * j,
                "backdoor_accuracy": 0.02 if robust[i, j] else 0.9 + 0.02 * j,
                "error": "",
            }
        )
    return pd.DataFrame(rows)


def outline(ax) -> LineCollection:
    found = [c for c in ax.collections if c.get_gid() == "robust-region"]
    assert len(found) == 1, "one outline per heat map"
    return found[0]


def edges(collection: LineCollection) -> set:
    return {
        tuple(sorted((tuple(np.round(p, 6)) for p in segment), key=tuple))
        for segment in collection.get_segments()
    }


L_SHAPE = np.array(
    [
        [True, True, False, False],
        [True, True, False, False],
        [True, False, False, False],
        [False, False, False, False],
    ]
)


def test_colour_scale_fits_the_data():
    table = heat_table(L_SHAPE)
    fig = plot_accuracy_heatmaps(table)
    clean, backdoor = fig.axes[0].images[0], fig.axes[1].images[0]
    assert clean.get_clim() == pytest.approx((0.94, 1.0))  # 0.943 ... 1.0, not 0 ... 1
    assert backdoor.get_clim() == pytest.approx((0.0, 1.0))  # 0.02 ... 0.96
    narrow = table.assign(backdoor_accuracy=0.5)
    image = plot_accuracy_heatmap(narrow, "backdoor_accuracy").axes[0].images[0]
    assert image.get_clim() == pytest.approx((0.5, 0.51))  # one value: one step of 0.01
    # imshow's own keywords win
    image = plot_accuracy_heatmap(table, vmin=0.0, cmap="viridis").axes[0].images[0]
    assert image.get_clim() == pytest.approx((0.0, 1.0)) and image.get_cmap().name == "viridis"


def test_cells_are_seed_means():
    table = heat_table(L_SHAPE)
    table.loc[table["random_state"] == 1, "clean_accuracy"] -= 0.01
    grid = plot_accuracy_heatmap(table).axes[0].images[0].get_array()
    assert grid.shape == (4, 4)
    assert grid[2, 3] == pytest.approx(0.943 + 0.019 * 3 - 0.005)
    assert "mean of 2 rows" in plt.gcf().axes[0].get_title()


def test_region_outlined_along_its_outer_edge_and_recommended_starred():
    table = heat_table(L_SHAPE)
    region = robust_region(table, min_clean_accuracy=0.9, max_backdoor_accuracy=0.1)
    assert region.settings["robust"].sum() == 5
    fig = plot_accuracy_heatmaps(table, region=region)
    for ax in fig.axes[:2]:
        segments = edges(outline(ax))
        # the L of five cells (i = gamma row, j = C column; cell (i, j) spans j +- 0.5, i +- 0.5)
        # has a perimeter of 10 cell sides; no side between two robust cells is drawn
        assert len(segments) == 10
        assert ((0.5, -0.5), (0.5, 0.5)) not in segments  # between (0, 0) and (0, 1)
        assert ((-0.5, 2.5), (0.5, 2.5)) in segments  # top of (2, 0)
        assert ((0.5, 1.5), (1.5, 1.5)) in segments  # top of (1, 1), below nothing robust
        stars = [line for line in ax.get_lines() if line.get_gid() == "recommended"]
        assert len(stars) == 1
        best = region.recommended
        x, y = stars[0].get_data()
        assert (x[0], round(y[0])) == (CS.index(best["C"]), GAMMAS.index(best["gamma"]))
    # the recommended setting: deepest inside the L (all at distance 1: edge of the grid), then
    # the most accurate on clean data: C = 0.1 (j = 1), at gamma 0.001 or 0.01
    assert region.recommended["C"] == 0.1


def test_region_of_a_larger_table_and_a_hand_built_region():
    table = heat_table(L_SHAPE)
    other = table.assign(learner="logistic", backdoor_accuracy=0.01)
    region = robust_region(pd.concat([table, other], ignore_index=True), min_clean_accuracy=0.9)
    fig = plot_accuracy_heatmap(table, region=region)  # only RBF SVM's settings are drawn
    assert len(edges(outline(fig.axes[0]))) == 10
    # a region without settings (built by hand from points): the cells of its points
    points = table[(table["C"] == 0.01) & (table["gamma"] == 0.001)]
    by_hand = RobustRegion(points, None, region.summary, region.criteria)
    fig = plot_accuracy_heatmap(table, region=by_hand)
    assert len(edges(outline(fig.axes[0]))) == 4
    # a cell stands for several settings (fractions): outlined only when all of them are robust
    two = pd.concat(
        [table.assign(fraction=0.1), table.assign(fraction=0.2, backdoor_accuracy=0.9)],
        ignore_index=True,
    )
    first = ["learner", "C", "gamma", "fraction"]
    two = two[[*first, *two.columns.drop(first)]]
    region = robust_region(two, min_clean_accuracy=0.9)
    fig = plot_accuracy_heatmap(two, region=region)
    assert not [c for c in fig.axes[0].collections if c.get_gid() == "robust-region"]
    fig = plot_accuracy_heatmap(two[two["fraction"] == 0.1], region=region)
    assert len(edges(outline(fig.axes[0]))) == 10


def test_ax_and_axes_conventions():
    table = heat_table(L_SHAPE)
    fig = plot_accuracy_heatmaps(table)
    assert isinstance(fig, Figure) and plt.fignum_exists(fig.number)  # made through pyplot
    assert len(fig.axes) == 4  # two maps, two colour bars
    mine, axes = plt.subplots(2, 2)
    assert plot_accuracy_heatmaps(table, axes=axes[1]) is mine
    assert axes[1, 0].images and axes[1, 1].images and not axes[0, 0].images
    assert axes[1, 0].images[0].get_cmap().name == "Greens"
    assert axes[1, 1].images[0].get_cmap().name == "Reds"
    other, ax = plt.subplots()
    assert plot_accuracy_heatmap(table, "backdoor_accuracy", ax=ax) is other
    assert plot_accuracy_heatmap(table, ax=ax, alpha=0.5).axes[0].images[-1].get_alpha() == 0.5


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda t: plot_accuracy_heatmap(t, "score"), ValueError, "column"),
        (lambda t: plot_accuracy_heatmap(t, x="C", y="C"), ValueError, "x and y"),
        (lambda t: plot_accuracy_heatmap(t.drop(columns="gamma")), ValueError, "gamma"),
        (lambda t: plot_accuracy_heatmap(t.iloc[:0]), ValueError, "empty"),
        (lambda t: plot_accuracy_heatmap(t, ax="here"), TypeError, "ax"),
        (lambda t: plot_accuracy_heatmaps(t, axes=[plt.figure().add_subplot()]), TypeError, "axes"),
        (lambda t: plot_accuracy_heatmaps(t.values), TypeError, "table"),
        (
            lambda t: plot_accuracy_heatmaps(pd.concat([t, t.assign(learner="x")])),
            ValueError,
            "several learners",
        ),
    ],
)
def test_heatmap_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(heat_table(L_SHAPE))


def curve_table() -> pd.DataFrame:
    betas = (0.0, 0.5, 1.0)
    table = pd.DataFrame(
        {
            "learner": ["logistic", "logistic"],
            "C": [0.1, 10.0],
            "random_state": [0, 0],
            "lambda": [10.0, 0.1],
            "curve_backdoor_loss": [(1.0, 0.9, 0.8), (1.0, 0.5, 0.2)],
            "curve_clean_loss": [(0.3, 0.3, 0.3)] * 2,
            "curve_clean_accuracy": [(1.0, 1.0, 1.0)] * 2,
            "curve_backdoor_accuracy": [(0.0, 0.1, 0.2)] * 2,
            "curve_rho": [(1.0, 1.1, 1.2)] * 2,
            "curve_rho_ratio": [(1.0, 1.1, 1.2)] * 2,
            "curve_nu": [(0.0, 0.01, 0.02), (0.0, 0.1, 0.2)],
        }
    )
    table.attrs["betas"] = betas
    return table


def test_grid_curves_pass_kwargs_to_the_lines():
    fig = plot_grid_curves(curve_table(), color="red", linewidth=3)
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 3]
    assert len(lines) == 2
    assert all(line.get_color() == "red" and line.get_linewidth() == 3 for line in lines)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["C=0.1", "C=10"]
    _, ax = plt.subplots()
    assert plot_grid_deviation(curve_table(), ax=ax, color="blue") is ax.figure
