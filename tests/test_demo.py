"""The demo (backdoor_curves.demo) and the command line (backdoor_curves.cli).

The robust region, the report's text and atomic writing have their own tests (test_robust.py,
test_report.py, test_io.py); the full demo here checks that they come together.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import backdoor_curves
from backdoor_curves import DegenerateKKTError
from backdoor_curves import demo as demo_module
from backdoor_curves.cli import build_parser, main
from backdoor_curves.demo import (
    CURVE_TABLE_COLUMNS,
    GRID_COLUMNS,
    LearnerSpec,
    compute_curves,
    compute_grid,
    run_demo,
)
from backdoor_curves.study import point as point_module

FIGURES = [
    "curves.png",
    "slope_vs_accuracy.png",
    "accuracy_vs_regularization.png",
    "deviation.png",
    "taylor.png",
]


# ---------------------------------------------------------------------------- command line
def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"backdoor-curves {backdoor_curves.__version__}"


def test_demo_parser_defaults():
    args = build_parser().parse_args(["demo"])
    assert (args.command, args.out, args.n_jobs, args.no_progress) == (
        "demo", "demo_output", 1, False,
    )  # fmt: skip
    args = build_parser().parse_args(["demo", "--out", "x", "--n-jobs", "-1", "--no-progress"])
    assert (args.out, args.n_jobs, args.no_progress) == ("x", -1, True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["plot"], "invalid choice: 'plot'"),
        (["demo", "--n-jobs", "0"], "argument --n-jobs: expected a non-zero integer"),
        (["demo", "--n-jobs", "two"], "argument --n-jobs: expected a non-zero integer"),
        (["demo", "--out"], "argument --out: expected one argument"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_argparse_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: backdoor-curves" in err
    assert message in err


def test_help_lists_the_demo_options(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--out DIR", "--n-jobs N", "--no-progress", "demo_output"):
        assert option in out


def test_out_that_is_a_file_fails_cleanly(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    assert main(["demo", "--out", str(target), "--no-progress"]) == 1
    assert "is not a directory" in capsys.readouterr().err
    assert target.read_text() == "not a directory"


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "backdoor_curves", "--version"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"backdoor-curves {backdoor_curves.__version__}"
    result = subprocess.run(
        [sys.executable, "-m", "backdoor_curves", "demo", "--n-jobs", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--n-jobs" in result.stderr


# ---------------------------------------------------------------------------- run_demo checks
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_jobs": 0}, ValueError, "n_jobs must be a non-zero int"),
        ({"n_jobs": 1.5}, TypeError, "n_jobs must be an int"),
        ({"n_jobs": True}, TypeError, "n_jobs must be an int"),
    ],
)
def test_run_demo_validates_before_working(tmp_path, kwargs, error, match):
    out = tmp_path / "out"
    with pytest.raises(error, match=match):
        run_demo(out, progress=False, verbose=False, **kwargs)
    assert not out.exists()


def test_run_demo_rejects_non_path(tmp_path):
    with pytest.raises(TypeError, match="out_dir must be a path"):
        run_demo(3, progress=False)


def test_learner_spec_maps_C_to_each_learner():
    assert LearnerSpec("ridge", 1e-3).make().alpha == pytest.approx(500.0)
    ridge = LearnerSpec("ridge", 1e-3).columns()
    assert ridge["alpha"] == pytest.approx(500.0) and ridge["lambda"] == pytest.approx(1000.0)
    rbf = LearnerSpec("RBF SVM", 100.0, 5e-3).make()
    assert (rbf.C, rbf.gamma) == (100.0, 5e-3)
    assert LearnerSpec("logistic", 0.1).make().regularization == pytest.approx(10.0)
    assert np.isnan(LearnerSpec("linear SVM", 1.0).columns()["gamma"])
    with pytest.raises(ValueError, match="learner must be"):
        LearnerSpec("tree", 1.0).make()


def test_demo_grid_and_curve_settings_are_the_papers():
    grid = pd.DataFrame([s.columns() for s in demo_module.GRID_SPECS])
    assert grid.groupby("learner", sort=False).size().to_dict() == {
        "linear SVM": 10, "logistic": 10, "ridge": 10, "RBF SVM": 10,
    }  # fmt: skip
    np.testing.assert_allclose(
        grid.loc[grid["learner"] == "logistic", "C"], np.geomspace(1e-4, 100, 10)
    )
    np.testing.assert_allclose(
        grid.loc[grid["learner"] == "RBF SVM", "C"], np.geomspace(0.1, 100, 10)
    )
    assert (grid.loc[grid["learner"] == "RBF SVM", "gamma"] == 5e-3).all()
    curves = {(s.learner, strength): s.C for strength, s in demo_module.CURVE_SPECS}
    assert curves == {
        ("linear SVM", "strong"): 1e-2, ("linear SVM", "weak"): 10.0,
        ("logistic", "strong"): 0.1, ("logistic", "weak"): 100.0,
        ("ridge", "strong"): 1e-3, ("ridge", "weak"): 1.0,
        ("RBF SVM", "strong"): 1.0, ("RBF SVM", "weak"): 100.0,
    }  # fmt: skip


# ---------------------------------------------------------------------------- units of work
SPECS = [
    LearnerSpec("logistic", 0.01),
    LearnerSpec("ridge", 1.0),
    LearnerSpec("linear SVM", 1.0),
    LearnerSpec("RBF SVM", 10.0, 5e-3),
]


def test_grid_rows_match_direct_calls(tiny):
    grid = compute_grid(tiny, SPECS)
    assert list(grid.columns) == list(GRID_COLUMNS)
    assert grid["learner"].tolist() == [s.learner for s in SPECS]
    for (_, row), spec in zip(grid.iterrows(), SPECS, strict=True):
        slope = backdoor_curves.backdoor_slope(spec.make(), tiny)
        curve = backdoor_curves.learning_curve(spec.make(), tiny, betas=[1.0])
        assert row["score"] == pytest.approx(slope.score)
        assert row["derivative"] == pytest.approx(slope.derivative)
        assert row["backdoor_loss_0"] == pytest.approx(slope.backdoor_loss)
        assert row["clean_accuracy"] == curve["clean_accuracy"][0]
        assert row["backdoor_accuracy"] == curve["backdoor_accuracy"][0]
        assert row["lambda"] == pytest.approx(1.0 / spec.C)
        assert row["error"] == "" and row["seconds"] > 0


def test_failed_slope_keeps_its_row_with_the_error(tiny, monkeypatch):
    def fail(model, data, learner=None):
        raise DegenerateKKTError("no margin support vector at beta = 0")

    monkeypatch.setattr(point_module, "slope_of_clean_model", fail)
    grid = compute_grid(tiny, SPECS[:2])
    assert len(grid) == 2
    for _, row in grid.iterrows():
        assert row["error"] == "slope: DegenerateKKTError: no margin support vector at beta = 0"
        assert np.isnan(row["score"]) and np.isnan(row["derivative"])
        assert 0.0 <= row["clean_accuracy"] <= 1.0  # the beta = 1 fit still ran
        assert np.isfinite(row["backdoor_accuracy"])


def test_degenerate_slope_is_explained_in_one_line():
    grid = pd.DataFrame(
        {"error": ["", "slope: DegenerateKKTError: the SVM fitted on the clean set has no margin"]}
    )
    note = demo_module._error_notes(grid)
    assert note.count("\n") == 1 and note.endswith("\n")
    assert note.startswith("slope: DegenerateKKTError means")
    assert "no margin support vector" in note and "undefined" in note
    assert "learning curves are still exact" in note
    assert demo_module._error_notes(grid.iloc[:1]) == ""
    assert demo_module._error_notes(pd.DataFrame({"error": [np.nan, "fit at beta=1: X"]})) == ""


def test_failed_fit_keeps_its_row_and_other_points_survive(tiny):
    specs = [LearnerSpec("logistic", 0.01), LearnerSpec("ridge", -1.0)]  # C < 0 is invalid
    grid = compute_grid(tiny, specs)
    assert len(grid) == 2
    assert grid.loc[0, "error"] == "" and np.isfinite(grid.loc[0, "score"])
    error = grid.loc[1, "error"]
    # InvalidParameterError is a ValueError (and a TypeError), as scikit-learn's is
    assert error.startswith("fit at beta=0: InvalidParameterError: alpha must be")
    assert "; fit at beta=1: InvalidParameterError" in error
    assert grid.loc[1, ["score", "clean_accuracy", "backdoor_accuracy"]].isna().all()


def test_same_numbers_whatever_n_jobs(tiny):
    serial = compute_grid(tiny, SPECS, n_jobs=1)
    parallel = compute_grid(tiny, SPECS, n_jobs=2)
    numbers = ["derivative", "score", "clean_accuracy", "backdoor_accuracy", "rho_ratio_1"]
    np.testing.assert_allclose(parallel[numbers], serial[numbers], rtol=1e-7)
    assert parallel["learner"].tolist() == serial["learner"].tolist()


def test_units_start_costliest_first_and_return_in_task_order():
    started = []

    def unit(k):
        started.append(k)
        return 10 * k

    tasks = [(unit, (k,)) for k in range(5)]
    results = demo_module._run_units(tasks, 1, False, costs=[0.0, 2.0, math.inf, 2.0, 1.0])
    assert results == [0, 10, 20, 30, 40]
    assert started == [2, 1, 3, 4, 0]  # ties in task order
    started.clear()
    assert demo_module._run_units(tasks, 1, False) == [0, 10, 20, 30, 40]
    assert started == [0, 1, 2, 3, 4]


def test_compute_curves_and_table(tiny):
    specs = [("strong", LearnerSpec("logistic", 0.1)), ("weak", LearnerSpec("logistic", 10.0))]
    curves, status = compute_curves(tiny, specs, betas=[0.0, 0.1, 1.0])
    assert status["error"].tolist() == ["", ""]
    table = demo_module.curves_table(curves, status)
    assert list(table.columns) == list(CURVE_TABLE_COLUMNS)
    assert len(table) == 2 * 3
    assert table["strength"].tolist() == ["strong"] * 3 + ["weak"] * 3
    np.testing.assert_allclose(table["lambda"], [10.0] * 3 + [0.1] * 3)
    np.testing.assert_allclose(table["backdoor_loss"][3:], curves[1]["backdoor_loss"])


# ---------------------------------------------------------------------------- the full demo
@pytest.mark.slow
def test_full_demo_through_the_cli(tmp_path, capsys):
    out = tmp_path / "demo"
    open_figures = plt.get_fignums()
    assert main(["demo", "--out", str(out), "--n-jobs", "2", "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    assert plt.get_fignums() == open_figures  # every figure saved was closed

    expected = {*FIGURES, "curves.csv", "grid.csv", "report.md"}
    assert set(os.listdir(out)) == expected  # and no temporary files
    for name in FIGURES:
        content = (out / name).read_bytes()
        assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 20_000

    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == list(CURVE_TABLE_COLUMNS)
    assert len(curves) == 8 * 21
    assert curves.groupby(["learner", "lambda"]).size().tolist() == [21] * 8
    assert sorted(curves.loc[curves["learner"] == "ridge", "alpha"].unique()) == [0.5, 500.0]
    first = curves[curves["beta"] == 0.0]
    np.testing.assert_allclose(first["nu"], 0.0, atol=1e-9)
    np.testing.assert_allclose(first["rho_ratio"], 1.0, rtol=1e-9)

    grid = pd.read_csv(out / "grid.csv", keep_default_na=False, na_values=[""])
    grid["error"] = grid["error"].fillna("")
    assert list(grid.columns) == list(GRID_COLUMNS)
    assert len(grid) == 40
    assert grid.groupby("learner").size().to_dict() == {
        "RBF SVM": 10, "linear SVM": 10, "logistic": 10, "ridge": 10,
    }  # fmt: skip
    np.testing.assert_allclose(grid["lambda"], 1.0 / grid["C"])
    ridge = grid[grid["learner"] == "ridge"]
    np.testing.assert_allclose(ridge["alpha"], 1.0 / (2.0 * ridge["C"]))
    failed = grid["error"] != ""
    assert grid.loc[failed, "score"].isna().all()
    assert grid.loc[~failed, ["score", "derivative", "clean_accuracy"]].notna().all().all()
    assert grid[["clean_accuracy", "backdoor_accuracy"]].notna().all().all()
    assert grid["seconds"].gt(0).all()

    # the science the demo is about: weak regularization learns the backdoor, strong resists it
    for _, group in grid.groupby("learner"):
        weakest = group.loc[group["lambda"].idxmin()]
        strongest = group.loc[group["lambda"].idxmax()]
        assert weakest["backdoor_accuracy"] >= 0.9
        assert strongest["backdoor_accuracy"] <= 0.1
        assert group["clean_accuracy"].min() >= 0.9
    ok = grid[~failed]
    assert ok["score"].corr(ok["backdoor_accuracy"], method="spearman") > 0.5

    report = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", report)
    assert sorted(links) == sorted(FIGURES)
    assert all((out / link).is_file() for link in links)  # relative links that resolve
    for heading in ("## Setup", "## Summary", "## Figures", "## Reading", "## Run time"):
        assert heading in report
    assert "robust region" in report
    assert report.count("\n| linear SVM |") == 10 + 2  # 10 grid rows + 2 curve rows

    assert "learner" in stdout and "backdoor_acc" in stdout and "Wall time" in stdout
    degenerate = grid["error"].str.contains("DegenerateKKTError").any()
    assert ("slope: DegenerateKKTError means" in stdout) == degenerate
    assert len([line for line in stdout.splitlines() if line.strip().startswith("ridge")]) == 10
    assert Path(out).is_dir()
