"""The grid CLI (``backdoor-curves grid``), its outputs and the grid figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import backdoor_curves as bc
from backdoor_curves.cli import main
from backdoor_curves.viz.grid_plots import (
    plot_accuracy_heatmaps,
    plot_grid_curves,
    plot_grid_deviation,
)
from backdoor_curves.viz.plots import plot_slope_vs_accuracy

CONFIG = """
[study]
title = "tiny grid"
betas = [0.0, 0.5, 1.0]

[data]
n_train = 120
n_test = 60
size = 3

[[learner]]
kind = "rbf_svm"
C = [0.1, 10.0]
gamma = [0.001, 0.01]

[[learner]]
kind = "logistic"
C = [0.001, 10.0]
"""


def test_cli_grid_writes_table_store_figures_report(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["grid", str(config), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "6 grid points (0 failed)" in printed and "recommended:" in printed
    table = pd.read_csv(out / "table.csv", keep_default_na=False, na_values=[""])
    assert len(table) == 6 and table["learner"].tolist().count("RBF SVM") == 4
    curves = pd.read_csv(out / "curves.csv")
    assert len(curves) == 18 and sorted(curves["beta"].unique()) == [0.0, 0.5, 1.0]
    names = {p.name for p in out.iterdir()}
    expected = {
        "study.sqlite", "table.csv", "curves.csv", "report.md", "slope_vs_accuracy.png",
        "accuracy_vs_regularization.png", "heatmaps_rbf_svm.png", "curves_rbf_svm.png",
        "deviation_rbf_svm.png", "curves_logistic.png", "deviation_logistic.png",
    }  # fmt: skip
    assert expected <= names
    report = (out / "report.md").read_text()
    assert report.startswith("# tiny grid") and "**Recommended setting**" in report
    assert "![heatmaps_rbf_svm.png](heatmaps_rbf_svm.png)" in report
    # the CSV holds the numbers of the study (the store resumes to the same table)
    again = bc.load_config(config).run(store=out / "study.sqlite")
    assert np.allclose(again["score"], table["score"], rtol=1e-12)
    assert (again["seconds"].to_numpy() == table["seconds"].to_numpy()).all()  # not recomputed


def test_cli_grid_errors(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('[[learner]]\nkind = "logistic"\nC = []\n')
    assert main(["grid", str(config), "--out", str(tmp_path / "o")]) == 1
    assert "config key 'learner[0].C'" in capsys.readouterr().err
    assert main(["grid", str(tmp_path / "missing.toml")]) == 1
    assert main(["grid", str(config), "--n-jobs", "0"]) == 2


@pytest.fixture(scope="module")
def study(mnist_small):
    grid = {"C": [0.1, 1.0, 10.0], "gamma": [0.01, 0.1]}
    return bc.grid_study(bc.RBFSVMLearner(), mnist_small, grid, betas=[0.0, 0.1, 1.0])


def test_grid_figures_mark_the_robust_region(study):
    region = bc.robust_region(study, min_clean_accuracy=0.9, max_backdoor_accuracy=0.2)
    assert region.recommended is not None
    fig = plot_slope_vs_accuracy(study, region=region)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "robust region" in labels and "recommended" in labels
    heat = plot_accuracy_heatmaps(study, region=region)
    assert isinstance(heat, Figure) and len(heat.axes) == 4  # two maps, two colour bars
    image = heat.axes[0].images[0].get_array()
    assert image.shape == (2, 3)  # gamma x C
    row = study[(study["C"] == 10.0) & (study["gamma"] == 0.1)].iloc[0]
    assert image[1, 2] == pytest.approx(row["clean_accuracy"])


def test_grid_curve_and_deviation_figures(study):
    fig = plot_grid_curves(study[study["gamma"] == 0.1])
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    assert np.allclose(lines[2].get_ydata(), study.loc[5, "curve_backdoor_loss"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["C=0.1", "C=1", "C=10"]
    dev = plot_grid_deviation(study, by=["C", "gamma"])
    assert "C=10, gamma=0.1" in [t.get_text() for t in dev.axes[0].get_legend().get_texts()]


# ---------------------------------------------------------------------------- issue #14
def test_select_points_filters_then_cuts():
    from backdoor_curves.grid_run import select_points

    cfg = bc.study.config.parse_config(
        {
            "data": {"n_train": 120},
            "grid": {"digits": [[7, 1], [3, 8]], "random_state": [0, 1]},
            "learner": [
                {"kind": "rbf_svm", "C": [0.1, 10.0], "gamma": [0.01]},
                {"kind": "logistic", "name": "lr", "C": [1.0]},
            ],
        }
    )
    same, total = select_points(cfg)
    assert same is cfg and total == 12
    part, total = select_points(cfg, where=["learner=rbf_svm", "digits=3,8", "C=10"])
    assert total == 12
    points = bc.study.grid.grid_points(part.param_grid, part.random_state)
    assert [(p["C"], p["digits"], p["random_state"]) for p in points] == [
        (10.0, (3, 8), 0),
        (10.0, (3, 8), 1),
    ]
    part, _ = select_points(cfg, where={"learner": ["lr"], "random_state": [1]}, max_points=5)
    assert [p["learner"] for p in bc.study.grid.grid_points(part.param_grid)] == ["lr", "lr"]
    first, _ = select_points(cfg, max_points=3)
    assert len(bc.study.grid.grid_points(first.param_grid)) == 3
    with pytest.raises(ValueError, match="max_points must be a positive int"):
        select_points(cfg, max_points=0)
    with pytest.raises(ValueError, match="no grid point matches gamma=1"):
        select_points(cfg, where=["gamma=1"])


def test_report_names_failed_seeds_and_resumed_compute_time():
    from backdoor_curves.grid_run import grid_report

    table = pd.DataFrame(
        {
            "learner": ["RBF SVM"] * 4,
            "C": [1.0, 1.0, 10.0, 10.0],
            "gamma": [0.01] * 4,
            "random_state": [0, 1, 0, 1],
            "estimator": ["RBFSVMLearner()"] * 4,
            "lambda": [1.0, 1.0, 0.1, 0.1],
            "score": [0.2, np.nan, 0.1, 0.1],
            "clean_accuracy": [0.99, np.nan, 0.99, 0.98],
            "backdoor_accuracy": [0.05, np.nan, 0.02, 0.03],
            "error": ["", "fit at beta=1: ValueError: boom", "", ""],
            "warning": [""] * 4,
            "seconds": [1.5, 2.0, 3.0, 4.0],
        }
    )
    cfg = bc.study.config.parse_config({"learner": [{"kind": "rbf_svm"}]})
    region = bc.robust_region(table)
    text = grid_report(cfg, table, region, [], 0.01, resumed=4)
    assert "compute time 10.5 s (sum of the points' `seconds`; resumed" in text
    assert "0.0 s" not in text
    assert "- RBF SVM C=1, gamma=0.01 (random_state 1): fit at beta=1: ValueError: boom" in text
    assert "**Recommended setting**: RBF SVM C=10, gamma=0.01;" in text
    assert "None: no point has the numbers a figure needs." in text


def test_figures_leave_out_points_whose_setup_failed(study):
    from backdoor_curves.grid_run import grid_figures

    broken = study.copy()
    broken.loc[0, ["lambda", "score", "clean_accuracy", "backdoor_accuracy"]] = np.nan
    broken.loc[0, "error"] = "setup: ValueError: C must be a real number"
    figures = grid_figures(broken, bc.robust_region(broken))
    assert {"slope_vs_accuracy.png", "accuracy_vs_regularization.png"} <= set(figures)
    assert grid_figures(broken.iloc[:1]) == {}
    for fig in figures.values():
        plt.close(fig)
