"""The information-plane and MI-by-epoch figures draw, and follow the project's conventions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from backdoor_curves.dynamics import plot_information_plane, plot_mi_by_epoch  # noqa: E402

GROUPS = ["target_all", "target_poisoned", "target_clean", "class_1", "class_2"]
HISTORY = pd.DataFrame(
    {
        "epoch": np.repeat([0, 1, 3], len(GROUPS)),
        "group": GROUPS * 3,
        "mi_xt": np.linspace(0.5, 3.0, 15),
        "mi_ty": np.linspace(0.1, 2.0, 15)[::-1],
    }
)
DRAW = {
    "plane": lambda ax=None, **kw: plot_information_plane(HISTORY, ax, **kw),
    "xt": lambda ax=None, **kw: plot_mi_by_epoch(HISTORY, "mi_xt", ax, **kw),
    "ty": lambda ax=None, **kw: plot_mi_by_epoch(HISTORY, "mi_ty", ax, **kw),
}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", DRAW)
def test_draws_on_the_given_axes_and_returns_their_figure(name):
    before = plt.get_fignums()
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert DRAW[name](right) is fig
    assert len(right.get_lines()) == len(GROUPS)
    assert not left.get_lines()
    assert plt.get_fignums() == before


@pytest.mark.parametrize("name", DRAW)
def test_without_axes_the_figure_is_managed_by_pyplot_and_kwargs_reach_the_lines(name):
    fig = DRAW[name](color="red", linewidth=3)
    assert fig.number in plt.get_fignums() and plt.gcf() is fig
    lines = fig.axes[0].get_lines()
    assert {to_rgb(line.get_color()) for line in lines} == {to_rgb("red")}
    assert {line.get_linewidth() for line in lines} == {3}
    with pytest.raises((AttributeError, TypeError), match="not_a_property"):
        DRAW[name](not_a_property=1)


def test_plane_trajectories_follow_the_epochs_with_arrows():
    fig = plot_information_plane(HISTORY, groups=["target_clean", "class_1"])
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["target_clean", "class_1"]
    part = HISTORY[HISTORY["group"] == "target_clean"].sort_values("epoch")
    np.testing.assert_array_equal(lines[0].get_xdata(), part["mi_xt"])
    np.testing.assert_array_equal(lines[0].get_ydata(), part["mi_ty"])
    arrows = [t for t in ax.texts if t.arrow_patch is not None]
    assert len(arrows) == 2 * 2  # two segments per group
    assert {t.get_text() for t in ax.texts if t.get_text()} == {"e0", "e3"}


def test_bad_inputs():
    with pytest.raises(TypeError, match="history must be a pandas DataFrame"):
        plot_information_plane({"epoch": [1]})
    with pytest.raises(ValueError, match="lacks the column"):
        plot_mi_by_epoch(HISTORY.drop(columns="mi_ty"), "mi_ty")
    with pytest.raises(ValueError, match="groups"):
        plot_information_plane(HISTORY, groups=["class_9"])
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot_mi_by_epoch(HISTORY, "mi_xt", ax="nope")
