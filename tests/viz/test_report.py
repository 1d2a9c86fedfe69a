"""Text rendering of the demo's results (backdoor_curves.viz.report), on small hand-made tables."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from random_data import random_backdoor_data

from backdoor_curves import LearningCurve
from backdoor_curves.study.robust import robust_summary
from backdoor_curves.viz.report import (
    ReportSetup,
    build_report,
    console_summary,
    format_summary,
    markdown_table,
    reading,
    summary_table,
)

BOTH_FAILED = "slope: DegenerateKKTError: no margin\nSV; fit at beta=1: ValueError: bad C"


@pytest.fixture
def grid():
    nan = np.nan
    return pd.DataFrame(
        {
            "learner": ["a", "a", "a", "a", "b", "b"],
            "C": [10.0, 1.0, 0.1, 0.01, 1.0, 0.1],
            "lambda": [0.1, 1.0, 10.0, 100.0, 1.0, 10.0],
            "score": [0.99, 0.9, 0.3, 0.1, 0.9, nan],
            "derivative": [-100.0, -10.0, -0.5, -0.16, -10.0, nan],
            "condition_number": [1e4, 1e3, 100.0, 10.0, 1e3, nan],
            "clean_accuracy": [0.99, 0.99, 0.975, 0.90, 0.95, nan],
            "backdoor_accuracy": [0.98, 0.50, 0.05, 0.02, 0.9, nan],
            "error": ["", "", "", "", "", BOTH_FAILED],
            "warning": ["", "IllConditionedWarning: cond", "", "", "", ""],
        }
    )


def _curve(losses, rho_last) -> LearningCurve:
    betas = np.array([0.0, 0.1, 1.0])
    values = {
        "backdoor_loss": np.array(losses),
        "backdoor_accuracy": np.array([0.0, 0.5, 0.9]),
        "clean_accuracy": np.array([0.99, 0.99, 0.98]),
        "nu": np.array([0.0, 0.1, 0.2]),
        "rho_ratio": np.array([1.0, 1.0, rho_last]),
    }
    return LearningCurve(betas=betas, values=values, learner="a", regularization=1.0)


@pytest.fixture
def curves():
    """Learner a: a strong and a weak curve; learner b: a failed curve."""
    status = pd.DataFrame(
        {
            "learner": ["a", "a", "b"],
            "C": [0.01, 10.0, 1.0],
            "alpha": [np.nan] * 3,
            "gamma": [np.nan, np.nan, 5e-3],
            "lambda": [100.0, 0.1, 1.0],
            "strength": ["strong", "weak", "strong"],
            "error": ["", "", "ValueError: boom"],
            "warning": ["", "", ""],
            "seconds": [1.0, 2.0, 0.5],
        }
    )
    return [_curve([1.0, 0.95, 0.8], 1.1), _curve([1.0, 0.6, 0.2], 2.0), None], status


TIMINGS = {
    "data": 0.25, "compute": 10.0, "curves_cpu": 6.0, "grid_cpu": 4.0,
    "figures": 2.0, "write": 0.04, "total": 12.3,
}  # fmt: skip
SETUP = ReportSetup(
    digits=(7, 1), fraction=0.1, poison_seed=0, trigger_size=3,
    linear_C_grid=(1e-4, 100.0, 10), rbf_C_grid=(0.1, 100.0, 10), rbf_gamma=5e-3,
)  # fmt: skip


def test_markdown_table_formats_and_escapes():
    frame = pd.DataFrame({"name": ["a|b", "c\nd"], "x": [0.000123456, np.nan], "n": [3, 4]})
    assert markdown_table(frame, {"n": lambda v: f"<{v}>"}) == (
        "| name | x | n |\n|---|---|---|\n| a\\|b | 0.000123 | <3> |\n| c d |  | <4> |"
    )


def test_summary_names_what_failed(grid):
    summary = summary_table(grid)
    assert list(summary.columns) == [
        "learner", "lambda", "score", "clean_acc", "backdoor_acc", "error",
    ]  # fmt: skip
    assert summary["error"].tolist() == [""] * 5 + [
        "slope: DegenerateKKTError; fit at beta=1: ValueError"
    ]
    assert (
        summary_table(grid.assign(error=["", "", "", "", "", "out of memory"]))["error"].iloc[5]
        == "out of memory"
    )  # not from a unit: kept as it is
    lines = format_summary(summary).splitlines()
    assert len(lines) == 1 + len(grid)
    assert lines[3].split() == ["a", "10", "0.300", "0.975", "0.050"]
    assert lines[6].split()[:5] == ["b", "10", "NaN", "NaN", "NaN"]


def test_console_summary_reports_failed_curves(grid, curves):
    _, status = curves
    text = console_summary(summary_table(grid), status, TIMINGS, "out/dir")
    lines = text.splitlines()
    assert text.endswith("\n")
    assert lines[0].startswith("Backdoor slope and accuracy at beta = 1")
    assert lines[-2] == "curve b lambda=1 failed: ValueError: boom"
    assert lines[-1].startswith("Wall time 12.3 s (data 0.2 s, computation 10.0 s")
    assert lines[-1].endswith("outputs in out/dir")


def test_reading_is_generated_from_the_numbers(grid, curves):
    objects, status = curves
    text = reading(grid, robust_summary(grid), status, objects, fraction=0.1)
    for sentence in [
        "With 10% of the training digits poisoned, every learner learns the backdoor when it is "
        "weakly regularized: at its smallest lambda the attack succeeds on 90%-98% of the "
        "triggered test digits, while clean accuracy stays at 0.950-0.990.",
        "the robust region is: a with lambda = 10 (clean accuracy >= 0.975, backdoor accuracy "
        "<= 0.050, slope score <= 0.30).",
        "No grid point of b meets both criteria",
        "(Spearman correlation 0.97 over 5 points)",
        "From beta = 0 to 1 the backdoor loss falls to 20% of its clean-model value under weak "
        "regularization but only to 80% under strong regularization; by beta = 0.1 the weakly "
        "regularized models have covered 50% of their fall, the strongly regularized ones 25%. "
        "For 1 of 1 learners the weight norm grows more when the weakly regularized model "
        "learns the backdoor (rho ratio at beta = 1: 2.00 vs 1.10).",
        "1 grid point(s) recorded an error instead of a value (column `error`), e.g. b at "
        "lambda = 10: slope: DegenerateKKTError; fit at beta=1: ValueError.",
    ]:
        assert sentence in text
    assert "Here every robust point" not in text  # a's lambda = 100 scores lower than 0.3

    weak_attack = grid.assign(backdoor_accuracy=[0.3, 0.2, 0.05, 0.02, 0.9, np.nan])
    text = reading(weak_attack, robust_summary(weak_attack), status.iloc[:0], [], fraction=0.25)
    assert text.startswith(
        "With 25% of the training digits poisoned, weakly regularized learners learn the "
        "backdoor to different degrees"
    )
    assert "The curves tell" not in text


def _report(grid, curves, **kwargs) -> str:
    objects, status = curves
    data = random_backdoor_data(0)
    region = robust_summary(grid)
    return build_report(data, grid, region, status, objects, TIMINGS, setup=SETUP, **kwargs)


def test_report_sections_tables_and_links(grid, curves):
    report = _report(
        grid, curves, n_jobs=2, figures={"deviation": "dev.png", "curves": "curves.png"}
    )
    headings = re.findall(r"^#+ .*$", report, flags=re.M)
    assert headings == [
        "# Backdoor learning curves and slopes: MNIST 7 vs 1",
        "## Setup", "## Summary", "## Figures", "## Reading", "## Run time",
    ]  # fmt: skip
    assert re.findall(r"!\[[^\]]+\]\(([^)]+)\)", report) == ["curves.png", "dev.png"]
    for fragment in [
        # setup: the data, the attack and the settings
        "134 training and 40 test images",
        "(seed 0) with a 3x3 BadNets patch",
        "|D| = 120, |P| = 14",
        "(a) Curves: 3 betas (0, then log-spaced from 0.1 to 1); a C in {0.01, 10}; ",
        "b C in {1} with gamma = 0.005.",
        "C = geomspace(0.0001, 100, 10) for the linear SVM",
        "C = geomspace(0.1, 100, 10) for the RBF SVM (gamma = 0.005)",
        # tables: a failed curve and a failed grid point keep their rows
        "\n| b | 1 | strong |",
        "| ValueError: boom |",
        "| b | 0.1 | 10 |  |  |  |  |  | slope: DegenerateKKTError; fit at beta=1: ValueError |",
        "| a | 0.1 | 10 | 0.300 | -0.5 | 100 | 0.975 | 0.050 |  |",
        "raised at 1 grid point(s) (column `warning` of grid.csv) and in 0 curve(s)",
        "Spearman",
    ]:
        assert fragment in report
    assert report.count("\n| a |") == 4 + 2  # 4 grid rows + 2 curve rows
    assert report.endswith(
        "Wall time 12.3 s with n_jobs = 2: data 0.2 s, computation 10.0 s (curves 6.0 s and "
        "grid 4.0 s of worker time), figures 2.0 s, tables and report 0.0 s.\n"
    )

    report = _report(grid.assign(warning=""), curves, n_jobs=1, figures={})
    assert "Warnings" not in report and "![" not in report
