"""The command line (issue #14): single questions (``curve``, ``slope``), validation before work,
one-line errors, the grid's partial runs and robust-region flags, and nothing written outside
``--out``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backdoor_curves as bc
from backdoor_curves.cli import main
from backdoor_curves.study import loaders

SMALL = ["--n-train", "120", "--n-test", "60"]
ROOT = Path(__file__).resolve().parents[1]


def listing(path) -> set[str]:
    return {
        os.path.relpath(os.path.join(root, name), path)
        for root, dirs, files in os.walk(path)
        for name in dirs + files
    }


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """A fresh working directory; the test checks that nothing but --out appears in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_error_line(err: str) -> str:
    """The one line a failing command prints on stderr."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("backdoor-curves: error: "), err
    return lines[0]


def error_line(capsys) -> str:
    return one_error_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------- curve / slope
def test_curve_writes_figure_csv_report_and_nothing_else(cwd, capsys):
    argv = ["curve", "--learner", "logistic", "--C", "1", "--digits", "7", "1"]
    argv += ["--fraction", "0.1", "--size", "3", "--seed", "0", *SMALL, "--betas", "6"]
    assert main([*argv, "--out", "out"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("curve logistic C=1 on mnist digits=(7, 1)")
    assert "3 files -> out (curve.csv, curve.png, report.md)" in printed
    assert listing(cwd) == {"out", "out/curve.csv", "out/curve.png", "out/report.md"}
    # the numbers are the public API's on the same data
    data = bc.study.config.make_data(
        digits=[7, 1], fraction=0.1, size=3, random_state=0, n_train=120, n_test=60
    )
    expected = bc.learning_curve(bc.LogisticLearner(C=1.0), data, bc.default_betas(6)).to_frame()
    written = pd.read_csv(cwd / "out" / "curve.csv")
    pd.testing.assert_frame_equal(written, expected, check_exact=False, rtol=1e-12)
    report = (cwd / "out" / "report.md").read_text()
    assert report.startswith("# Backdoor learning curve: logistic C=1 on mnist")
    assert "|D| = 108 clean and |P| = 12 poisoned" in report and "![" in report


def test_slope_from_a_config_file_with_flags_over_it(cwd, capsys):
    (cwd / "setting.toml").write_text(
        '[data]\nn_train = 120\nn_test = 60\nsize = 2\nfraction = 0.2\n'
        '[grid]\nfraction = [0.1, 0.2]\n'
        '[[learner]]\nkind = "rbf_svm"\nC = [1, 10]\ngamma = 0.01\n'
        '[[learner]]\nkind = "ridge"\nalpha = 1.0\n'
    )  # fmt: skip
    before = listing(cwd)
    argv = ["slope", "--config", "setting.toml", "--learner", "rbf_svm", "--C", "10"]
    assert main([*argv, "--fraction", "0.1", "--betas", "5", "--out", "s"]) == 0
    assert "slope RBF SVM C=10, gamma=0.01 on mnist" in capsys.readouterr().out
    assert listing(cwd) - before == {"s", "s/slope.csv", "s/slope.png", "s/report.md"}
    row = pd.read_csv(cwd / "s" / "slope.csv").iloc[0]
    data = bc.study.config.make_data(n_train=120, n_test=60, size=2, fraction=0.1, random_state=0)
    slope = bc.backdoor_slope(bc.RBFSVMLearner(C=10.0, gamma=0.01), data)
    assert row["learner"] == "RBF SVM" and row["fraction"] == 0.1 and row["C"] == 10.0
    assert row["derivative"] == pytest.approx(slope.derivative, rel=1e-12)
    assert row["score"] == pytest.approx(slope.score, rel=1e-12)
    assert "Taylor predictions" in (cwd / "s" / "report.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--learner", "logistic", "--C", "-1"], "argument --C: C must be a real number in (0,"),
        (["--learner", "logistic", "--fraction", "0"], "argument --fraction: fraction must lie"),
        (["--learner", "logistic", "--digits", "7", "7"], "argument --digits: digits must be two"),
        (["--learner", "logistic", "--size", "40"], "argument --size: size=40 is larger"),
        (["--learner", "ridge", "--gamma", "0.1"], "argument --gamma: unknown parameter of ridge"),
        (["--learner", "logistic", "--param", "tol=-1"], "argument --tol: tol must be"),
        (["--learner", "forest"], "argument --learner: unknown learner 'forest'"),
        ([], "--learner is required"),
        (["--learner", "logistic", "--betas", "1"], "argument --betas: must be an int >= 2"),
        (["--config", "missing.toml"], "missing.toml"),
    ],
)  # fmt: skip
def test_single_errors_are_one_line_before_any_work(cwd, capsys, argv, message):
    assert main(["curve", *argv, "--out", "o"]) == 1
    assert message in error_line(capsys)
    assert listing(cwd) == set()  # validated before the output directory is made


def test_single_needs_one_point(cwd, capsys):
    (cwd / "grid.toml").write_text(
        '[data]\nfraction = 0.1\n[grid]\nrandom_state = [0, 1]\n'
        '[[learner]]\nkind = "logistic"\nC = [0.1, 1]\n'
        '[[learner]]\nkind = "ridge"\nname = "r"\n'
    )  # fmt: skip
    assert main(["curve", "--config", "grid.toml", "--out", "o"]) == 1
    assert "grid.toml has 2 [[learner]] tables (logistic, r): choose one" in one_error_line(
        capsys.readouterr().err
    )
    assert main(["curve", "--config", "grid.toml", "--learner", "logistic", "--out", "o"]) == 1
    line = error_line(capsys)
    assert (
        "the setting has 4 points (learner[0].C (2 values), grid.random_state (2 values))" in line
    )
    assert "backdoor-curves grid" in line
    # a key of the file keeps its place in the message
    (cwd / "bad.toml").write_text(
        '[[learner]]\nkind = "ridge"\n[[learner]]\nkind = "logistic"\nC = 0\n'
    )
    assert main(["curve", "--config", "bad.toml", "--learner", "logistic", "--out", "o"]) == 1
    assert "config key 'learner[1].C': C must be a real number" in one_error_line(
        capsys.readouterr().err
    )


# ---------------------------------------------------------------------------- grid
CONFIG = """
[data]
n_train = 120
n_test = 60
size = 3

[grid]
random_state = [0, 1]

[[learner]]
kind = "rbf_svm"
C = [1.0, 10.0]
gamma = [0.001, 0.01]
"""


@pytest.fixture
def config(cwd):
    path = cwd / "tiny.toml"
    path.write_text(CONFIG)
    return path


def test_grid_summary_names_gamma_and_a_resumed_run_its_compute_time(config, cwd, capsys):
    argv = ["grid", str(config), "--out", "g", "--no-progress", "--max-backdoor-accuracy", "0.5"]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()
    assert first[0] == "8 grid points (0 failed) -> g"
    recommended = next(line for line in first if line.startswith("recommended:"))
    assert recommended.startswith("recommended: RBF SVM C=") and ", gamma=" in recommended
    assert "means over 2 seeds" in recommended
    table = pd.read_csv(cwd / "g" / "table.csv")
    total = table["seconds"].sum()
    assert main(argv) == 0  # resumed: nothing recomputed, the stored compute time reported
    again = capsys.readouterr().out.splitlines()
    assert again[1] == f"compute time {total:.1f} s (resumed: every point was in the store)"
    report = (cwd / "g" / "report.md").read_text()
    assert f"compute time {total:.1f} s" in report and "resumed" in report
    assert "backdoor accuracy <= 0.5" in report
    assert {p.split("/")[0] for p in listing(cwd)} == {"tiny.toml", "g"}


def test_grid_thresholds_reach_the_robust_region(config, cwd, capsys):
    argv = ["grid", str(config), "--out", "g", "--no-progress", "--min-clean-accuracy", "0.99"]
    argv += ["--max-backdoor-accuracy", "0.3", "--seed-share", "0.5"]
    assert main(argv) == 0
    table = pd.read_csv(cwd / "g" / "table.csv")
    region = bc.robust_region(
        table, min_clean_accuracy=0.99, max_backdoor_accuracy=0.3, seed_share=0.5
    )
    printed = capsys.readouterr().out
    if region.recommended is None:
        assert "recommended: none" in printed
    else:
        assert f"C={bc.viz.plots.format_number(region.recommended['C'])}," in printed
    report = (cwd / "g" / "report.md").read_text()
    assert "clean accuracy >= 0.99" in report and "at least 50% of its seeds" in report


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--where", "colour=red"], "where: no grid point has the key 'colour'"),
        (["--where", "C=3"], "where: no grid point matches C=3"),
        (["--where", "C"], "expected KEY=VALUE"),
    ],
)
def test_grid_flags_are_checked_before_any_point(config, cwd, capsys, flags, message):
    assert main(["grid", str(config), "--out", "g", "--no-progress", *flags]) == 1
    assert message in error_line(capsys)
    assert not (cwd / "g").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seed-share", "0"], "argument --seed-share: expected a number in (0, 1], got 0"),
        (["--clean-drop", "2"], "argument --clean-drop: expected a number in [0, 1], got 2"),
    ],
)
def test_grid_thresholds_are_checked_by_the_parser(config, cwd, capsys, flags, message):
    assert main(["grid", str(config), "--out", "g", "--no-progress", *flags]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)
    assert not (cwd / "g").exists()


def test_grid_runs_part_of_the_grid_in_a_store_of_its_own(config, cwd, capsys):
    argv = ["grid", str(config), "--out", "g", "--no-progress"]
    assert main([*argv, "--where", "gamma=0.01", "--where", "random_state=1"]) == 0
    assert capsys.readouterr().out.startswith("2 grid points (0 failed) -> g (part: 2 of 8)")
    part = pd.read_csv(cwd / "g" / "table.csv")
    assert part["gamma"].tolist() == [0.01, 0.01] and part["random_state"].tolist() == [1, 1]
    assert main([*argv, "--max-points", "3", "--where", "learner=rbf_svm"]) == 0
    assert len(pd.read_csv(cwd / "g" / "table.csv")) == 3
    stores = sorted(p.name for p in (cwd / "g").glob("*.sqlite"))
    assert len(stores) == 2 and all(s.startswith("study-part-") for s in stores)
    assert main(argv) == 0  # the whole study is not refused for the parts run before
    whole = pd.read_csv(cwd / "g" / "table.csv")
    assert len(whole) == 8 and (cwd / "g" / "study.sqlite").exists()
    same = whole[(whole["gamma"] == 0.01) & (whole["random_state"] == 1)]
    assert np.array_equal(same["score"].to_numpy(), part["score"].to_numpy())


def test_grid_with_every_point_failed_exits_1(config, cwd, capsys, monkeypatch):
    def broken(**table):
        raise ValueError("no digits today")

    monkeypatch.setitem(loaders._BUILT_IN, "mnist", broken)
    assert main(["grid", str(config), "--out", "g", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("8 grid points (8 failed) -> g")
    # repeated failures share a line naming their seeds
    assert "failed: RBF SVM C=1, gamma=0.001 (random_state 0, 1): setup: ValueError: no digits" in (
        captured.out
    )
    line = one_error_line(captured.err)
    assert line.startswith("backdoor-curves: error: all 8 grid points failed (first: RBF SVM C=1")
    assert (cwd / "g" / "table.csv").exists() and (cwd / "g" / "report.md").exists()
    report = (cwd / "g" / "report.md").read_text()
    assert "- RBF SVM C=10, gamma=0.01 (random_state 0, 1): setup: ValueError" in report


@pytest.mark.parametrize(
    "text, key",
    [
        ('[[learner]]\nkind = "logistic"\nC = [-1, 1]\n', "learner[0].C"),
        ('[data]\nfraction = 0\n[[learner]]\nkind = "logistic"\n', "data.fraction"),
        ('[data]\ndigits = [7, 7]\n[[learner]]\nkind = "logistic"\n', "data.digits"),
    ],
)
def test_grid_config_errors_stop_before_any_point(cwd, capsys, text, key):
    (cwd / "bad.toml").write_text(text)
    assert main(["grid", "bad.toml", "--out", "g", "--no-progress"]) == 1
    assert f"config key '{key}'" in error_line(capsys)
    assert not (cwd / "g").exists()


def test_image_dataset_with_mnist_keys_is_refused_at_load(cwd, capsys):
    pytest.importorskip("extractors")
    (cwd / "c.toml").write_text(
        '[data]\ndataset = "cifar10"\nroot = "data"\ndigits = [7, 1]\n[[learner]]\nkind = "ridge"\n'
    )
    assert main(["grid", "c.toml", "--out", "g", "--no-progress"]) == 1
    assert "config key 'data.digits': unknown key for dataset 'cifar10'" in one_error_line(
        capsys.readouterr().err
    )


@pytest.mark.parametrize("where", ["/elsewhere/features", "../features", "a/../../features"])
@pytest.mark.parametrize("command", ["grid", "curve"])
def test_an_output_path_outside_out_is_refused_naming_its_key(cwd, capsys, where, command):
    """Nothing is written outside --out: a [data] cache_dir that leads out of it is refused
    before any work (a data root, read only, may be anywhere)."""
    pytest.importorskip("extractors")
    (cwd / "c.toml").write_text(
        f'[data]\ndataset = "cifar10"\nroot = "/data/elsewhere"\ncache_dir = "{where}"\n'
        '[[learner]]\nkind = "ridge"\n'
    )
    argv = ["grid", "c.toml"] if command == "grid" else ["curve", "--config", "c.toml"]
    assert main([*argv, "--out", "g", "--no-progress"]) == 1
    line = error_line(capsys)
    assert f"config key 'data.cache_dir': '{where}' is outside the output directory 'g'" in line
    assert listing(cwd) == {"c.toml"}


def test_output_paths_are_taken_inside_out(cwd):
    from backdoor_curves.grid_run import outputs_inside

    pytest.importorskip("extractors")
    config = bc.study.config.parse_config(
        {
            "data": {"dataset": "cifar10", "root": "/data", "cache_dir": "feature_cache"},
            "grid": {"cache_dir": ["a", str(cwd / "g" / "b")]},
            "learner": [{"kind": "ridge"}],
        }
    )
    inside = outputs_inside(config, "g")
    assert inside.data["cache_dir"] == str(cwd / "g" / "feature_cache")
    assert inside.data["root"] == "/data"  # an input: left alone
    assert inside.param_grid[0]["cache_dir"] == [str(cwd / "g" / "a"), str(cwd / "g" / "b")]
    plain = bc.study.config.parse_config({"learner": [{"kind": "ridge"}]})
    assert outputs_inside(plain, "g") is plain
    # the feature experiments cache inside --out
    for path in sorted((ROOT / "experiments" / "features").glob("*.toml")):
        inside = outputs_inside(bc.load_config(path), cwd / "o")
        assert inside.data["cache_dir"] == str(cwd / "o" / "feature_cache")


def test_help_texts(capsys):
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    assert "10% of the training set" in " ".join(text.split()) and "%%" not in text
    for command in ("curve", "slope"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "--betas N" in text and "--config FILE" in text and "%%" not in text
    assert main(["grid", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--max-points", "--where", "--max-backdoor-accuracy", "--min-clean-accuracy",
                 "--clean-drop", "--seed-share"):  # fmt: skip
        assert flag in text
