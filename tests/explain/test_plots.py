"""The explanation figures follow matplotlib's conventions (axes honoured, kwargs to the artist)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import backdoor_curves as bc  # noqa: E402
from backdoor_curves.explain import (  # noqa: E402
    clean_and_poisoned_maps,
    influential_points,
    plot_influential_points,
    plot_input_gradients,
    plot_poisoning_contributions,
    poisoning_contributions,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_influential_points_figure(mnist_small):
    data = mnist_small
    points = influential_points(bc.LogisticLearner(1.0), data, data.X_test_bd[0],
                                data.y_test_bd[0], k=4)  # fmt: skip
    fig = plot_influential_points(points, cmap="viridis")
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 5
    assert axes[1].images[0].get_cmap().name == "viridis"
    for ax, poisoned in zip(axes[1:], points.poisoned, strict=True):
        assert ("poisoned" in ax.get_title()) == bool(poisoned)
        edge = ax.spines["top"].get_edgecolor()
        assert (edge == matplotlib.colors.to_rgba("tab:red")) == bool(poisoned)
    # given axes are used, and nothing else
    fig2, given = plt.subplots(2, 3)
    out = points.plot(axes=given)
    assert out is fig2
    assert all(ax.images for ax in given.ravel()[:5]) and not given.ravel()[5].images
    with pytest.raises(ValueError, match="at least 5 axes"):
        plot_influential_points(points, axes=given.ravel()[:2])
    with pytest.raises(TypeError, match="InfluentialPoints"):
        plot_influential_points("points")


def test_input_gradients_figure(mnist_small):
    data = mnist_small
    maps = clean_and_poisoned_maps(bc.LinearSVMLearner(0.05), data, data.X_test_bd[0])
    fig = plot_input_gradients(maps, image=data.X_test_bd[0], image_shape=data.image_shape,
                               interpolation="nearest")  # fmt: skip
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 3
    vmax = max(np.abs(m).max() for m in maps.values())
    for ax in image_axes[1:]:
        im = ax.images[0]
        assert im.get_clim() == pytest.approx((-vmax, vmax))
        assert im.get_interpolation() == "nearest"
    fig2, ax = plt.subplots(1, 2)
    assert plot_input_gradients(maps, axes=ax) is fig2
    with pytest.raises(ValueError, match="non-empty"):
        plot_input_gradients({})


def test_contributions_figure(mnist_small):
    contrib = poisoning_contributions(bc.LogisticLearner(1.0), mnist_small)
    fig = plot_poisoning_contributions(contrib, color="green")
    (ax,) = fig.axes
    heights = [p.get_height() for p in ax.patches]
    assert heights == sorted(heights)
    assert sum(heights) == pytest.approx(contrib.derivative)
    assert matplotlib.colors.to_hex(ax.patches[0].get_facecolor()) == "#008000"
    fig2, ax2 = plt.subplots()
    assert plot_poisoning_contributions(contrib, ax=ax2, sort=False) is fig2
