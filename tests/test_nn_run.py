"""The nn CLI (``backdoor-curves nn``): the whole pipeline on a tiny configuration, resuming, the
fail-fast path of the GPU configuration, and the figures of :mod:`backdoor_curves.viz.nn_plots`.

The tiny run (200 digits of 14x14, SmallCNN of width 4, budgets of 1 and 2 epochs, 3 betas, 2
steps h, the exact derivative, a tracked run with a budget of 64 samples) takes a few seconds.
"""

from __future__ import annotations

import os
import pickle
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from backdoor_curves._io import read_record  # noqa: E402
from backdoor_curves.cli import main  # noqa: E402
from backdoor_curves.nn.tracking import LAYER_COLUMNS, TRACKER_COLUMNS  # noqa: E402
from backdoor_curves.viz.nn_plots import (  # noqa: E402
    plot_fd_slopes,
    plot_isolation_precision,
    plot_loss_reduction,
    plot_self_influence,
    plot_synchronization,
)

ROOT = Path(__file__).resolve().parents[1]
GPU_CONFIG = ROOT / "experiments" / "nn" / "imagenette_resnet_table1.toml"

TINY = """
[study]
title = "tiny nn study"

[data]
n_train = 200
n_test = 100
pool = 2
size = 3
fraction = 0.1

[model]
kind = "small_cnn"
width = 4

[train]
epochs = [1, 2]
batch_size = 32
lr = 0.05

[curve]
betas = [0.0, 0.1, 1.0]

[slope]
h = [0.1, 1.0]
exact = true

[tracking]
budget = 64
"""

CURVE_COLUMNS = [
    "model", "epochs", "beta", "backdoor_loss", "clean_loss", "clean_accuracy",
    "backdoor_accuracy", "rho", "rho_ratio", "nu",
]  # fmt: skip
SLOPE_COLUMNS = [
    "model", "epochs", "seed", "h", "backdoor_loss_0", "backdoor_loss_h", "derivative", "score",
    "clean_loss_0", "clean_accuracy_0", "backdoor_accuracy_0", "clean_loss_h",
    "clean_accuracy_h", "backdoor_accuracy_h",
]  # fmt: skip
EXACT_COLUMNS = [
    "model", "epochs", "seed", "derivative", "score", "backdoor_loss", "clean_loss",
    "clean_accuracy", "backdoor_accuracy", "n_steps", "seconds", "fd_h", "fd_derivative",
    "fd_relative_difference",
]  # fmt: skip
FIGURES = [
    "curves.png", "slopes.png", "isolation_precision.png", "loss_reduction.png",
    "synchronization.png", "self_influence.png",
]  # fmt: skip
TABLES = [
    "curves.csv", "slopes.csv", "exact.csv", "tracking.csv", "layers.csv",
    "self_influence.csv", "summary.csv",
]  # fmt: skip


def read_tables(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in TABLES}


def checkpoint_times(out: Path) -> dict[str, int]:
    return {
        str(p.relative_to(out)): p.stat().st_mtime_ns
        for p in (out / "checkpoints").rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny configuration run once through the CLI: (config path, out dir, seconds)."""
    base = tmp_path_factory.mktemp("nn_run")
    config = base / "tiny.toml"
    config.write_text(TINY)
    out = base / "out"
    open_figures = plt.get_fignums()
    start = time.perf_counter()
    assert main(["nn", str(config), "--out", str(out), "--no-progress"]) == 0
    seconds = time.perf_counter() - start
    assert plt.get_fignums() == open_figures  # every figure saved was closed
    return config, out, seconds


def test_cli_nn_writes_tables_figures_report(tiny_run, capsys):
    _, out, seconds = tiny_run
    assert seconds < 60
    names = {p.name for p in out.iterdir()}
    assert set(TABLES) | set(FIGURES) | {"report.md", "checkpoints"} <= names
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == CURVE_COLUMNS
    assert len(curves) == 6  # (epochs, beta) pairs
    assert sorted(curves["epochs"].unique()) == [1, 2]
    slopes = pd.read_csv(out / "slopes.csv")
    assert list(slopes.columns) == SLOPE_COLUMNS and len(slopes) == 4
    # the slope shares the curve's trainings: L(0) and L(1) are the curve's values
    for epochs in (1, 2):
        c = curves[curves["epochs"] == epochs].set_index("beta")["backdoor_loss"]
        s = slopes[(slopes["epochs"] == epochs) & (slopes["h"] == 1.0)].iloc[0]
        assert s["backdoor_loss_0"] == c[0.0] and s["backdoor_loss_h"] == c[1.0]
        assert s["derivative"] == pytest.approx(c[1.0] - c[0.0])
    exact = pd.read_csv(out / "exact.csv")
    assert list(exact.columns) == EXACT_COLUMNS and len(exact) == 2
    assert (exact["fd_h"] == 0.1).all()
    # the exact derivative's primal run is the trainer's beta = 0 run (up to float rounding)
    for _, row in exact.iterrows():
        c = curves[(curves["epochs"] == row["epochs"]) & (curves["beta"] == 0.0)].iloc[0]
        assert row["backdoor_loss"] == pytest.approx(c["backdoor_loss"], rel=1e-5)
    tracking = pd.read_csv(out / "tracking.csv")
    assert list(tracking.columns) == ["model", *TRACKER_COLUMNS]
    assert tracking["epoch"].tolist() == [0, 1, 2]
    layers = pd.read_csv(out / "layers.csv")
    assert list(layers.columns) == ["model", *LAYER_COLUMNS]
    assert set(layers["layer"]) == {"conv1", "conv2", "fc"}
    influence = pd.read_csv(out / "self_influence.csv")
    assert list(influence.columns) == ["model", "sample", "group", "poisoned", "self_influence"]
    assert len(influence) == 64 and abs(influence["poisoned"].sum() - 64 * 0.1) <= 1
    summary = pd.read_csv(out / "summary.csv")
    assert summary["epochs"].tolist() == [1, 2]
    assert {"score_h=0.1", "score_h=1", "exact_derivative", "clean_accuracy_1"} <= set(summary)
    report = (out / "report.md").read_text()
    assert report.startswith("# tiny nn study")
    for heading in ("## Summary", "### Learning curves", "### Backdoor slope", "### Early fitting"):
        assert heading in report
    for name in FIGURES:
        assert f"![{name}]({name})" in report


def test_second_run_resumes_and_gives_identical_tables(tiny_run, capsys):
    config, out, _ = tiny_run
    before, stamps = read_tables(out), checkpoint_times(out)
    assert main(["nn", str(config), "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""  # --quiet
    assert read_tables(out) == before
    assert checkpoint_times(out) == stamps  # nothing trained, nothing rewritten


def test_interrupted_budget_resumes_from_the_shorter_budget(tiny_run, tmp_path):
    config, out, _ = tiny_run
    before = read_tables(out)
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    # lose the whole 2-epoch budget and the tracked run: they are recomputed, the 2-epoch
    # trainings starting from the 1-epoch checkpoints
    shutil.rmtree(copy / "checkpoints" / "small_cnn" / "default" / "epochs=2")
    (copy / "checkpoints" / "small_cnn" / "default" / "tracking.npz").unlink()
    assert main(["nn", str(config), "--out", str(copy), "--no-progress"]) == 0
    after = read_tables(copy)
    timed = ("exact.csv", "tracking.csv")  # recomputed: their seconds differ
    for name in TABLES:
        if name not in timed:
            assert after[name] == before[name], name
    for name in timed:
        first = pd.read_csv(out / name).drop(columns="seconds")
        pd.testing.assert_frame_equal(first, pd.read_csv(copy / name).drop(columns="seconds"))


def test_finished_results_are_records_read_without_pickle(tiny_run):
    """tracking.npz and exact/seed=N.npz: arrays and JSON, read back exactly (the CSVs hold the
    same numbers, labelled)."""
    _, out, _ = tiny_run
    unit = out / "checkpoints" / "small_cnn" / "default"
    assert not list(out.rglob("*.pkl"))
    header, tracked = read_record(unit / "tracking.npz")
    assert header["format"] == 2 and len(header["fingerprint"]) == 16
    assert set(tracked) == {"tracking", "layers", "self_influence"}
    assert tracked["self_influence"]["group"].dtype == "category"
    for name, frame in tracked.items():
        written = pd.read_csv(out / f"{name}.csv").drop(columns="model")
        pd.testing.assert_frame_equal(
            frame.astype({c: str for c in frame.select_dtypes(exclude="number").columns}),
            written.astype({c: str for c in written.select_dtypes(exclude="number").columns}),
            check_dtype=False,
            check_exact=True,
        )
    exact = pd.read_csv(out / "exact.csv")
    for epochs in (1, 2):
        _, result = read_record(unit / f"epochs={epochs}" / "exact" / "seed=0.npz")
        assert type(result["n_steps"]) is int and type(result["derivative"]) is float
        assert result["derivative"] == exact.loc[exact["epochs"] == epochs, "derivative"].item()


class _Payload:
    """Unpickling it creates ``path``: what a malicious pickle in an --out from elsewhere does."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_pickled_results_are_refused_and_never_loaded(tiny_run, tmp_path, capsys):
    config, out, _ = tiny_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    unit = copy / "checkpoints" / "small_cnn" / "default"
    marker = tmp_path / "code_ran"
    # an earlier version's pickle, beside (or instead of) the record: refused, naming it
    (unit / "tracking.pkl").write_bytes(pickle.dumps({"value": _Payload(marker)}))
    assert main(["nn", str(config), "--out", str(copy), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "pickle files" in err and str(unit / "tracking.pkl") in err and "delete them" in err
    (unit / "tracking.pkl").unlink()
    # a record whose arrays need pickle: refused by numpy, nothing unpickled
    np.savez(unit / "tracking.npz", manifest=np.array([_Payload(marker)], dtype=object))
    assert main(["nn", str(config), "--out", str(copy), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "tracking.npz is not a readable result record" in err and "delete it" in err
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload is live: loading it runs code
    assert marker.exists()


def test_changed_config_is_refused(tiny_run, tmp_path, capsys):
    _, out, _ = tiny_run
    changed = tmp_path / "changed.toml"
    changed.write_text(TINY.replace("lr = 0.05", "lr = 0.04"))
    assert main(["nn", str(changed), "--out", str(out), "--no-progress"]) == 1
    assert "another" in capsys.readouterr().err


def test_grid_and_two_models_label_rows_and_figures(tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text(
        TINY.split("[model]")[0]
        + """
[grid]
fraction = [0.05, 0.1]

[[model]]
kind = "small_cnn"
width = 2
name = "narrow"

[[model]]
kind = "small_cnn"
width = 4
name = "wide"

[train]
epochs = 1
batch_size = 64

[curve]
betas = [0.0, 1.0]
"""
    )
    out = tmp_path / "out"
    assert main(["nn", str(config), "--out", str(out), "--quiet"]) == 0
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns[:4]) == ["model", "fraction", "epochs", "beta"]
    assert len(curves) == 2 * 2 * 2
    assert set(zip(curves["model"], curves["fraction"], strict=True)) == {
        ("narrow", 0.05), ("narrow", 0.1), ("wide", 0.05), ("wide", 0.1),
    }  # fmt: skip
    names = {p.name for p in out.iterdir()}
    assert "curves_narrow_fraction=0.05.png" in names and "curves_wide_fraction=0.1.png" in names
    assert not (out / "slopes.csv").exists() and not (out / "tracking.csv").exists()
    assert len(pd.read_csv(out / "summary.csv")) == 4


def test_gpu_config_fails_fast_naming_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.chdir(tmp_path)  # data/imagenette is resolved against the working directory
    out = tmp_path / "out"
    start = time.perf_counter()
    assert main(["nn", str(GPU_CONFIG), "--out", str(out), "--no-progress"]) == 1
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err
    assert err.startswith("backdoor-curves: error: not available offline")
    assert str(tmp_path / "data" / "imagenette" / "imagenette2-320") in err
    assert "imagenette2-320.tgz" in err
    assert "resnet18-f37072fd.pth" in err and "resnet50-0676ba61.pth" in err
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in err
    assert not out.exists()  # nothing written


def test_cli_nn_errors_and_interrupt(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace("width = 4", "width = 'wide'"))
    assert main(["nn", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "config key 'model.width'" in capsys.readouterr().err
    assert main(["nn", str(tmp_path / "missing.toml")]) == 1
    assert main(["nn"]) == 2  # usage error: the configuration is required
    import backdoor_curves.nn_run as nn_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nn_run, "run_nn_config", interrupted)
    good = tmp_path / "good.toml"
    good.write_text(TINY)
    argv = ["nn", str(good), "--out", str(tmp_path / "o")]
    capsys.readouterr()
    assert main(argv) == 130
    assert capsys.readouterr().err == (
        "backdoor-curves: interrupted: it stopped before computing anything; to resume, run: "
        f"{shlex.join(['backdoor-curves', *argv])}\n"
    )


def test_help_does_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "from backdoor_curves.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as f:\n"
        "    assert main(['--help']) == 0 and main(['nn', '--help']) == 0\n"
        "assert 'nn CONFIG.toml' in f.getvalue() or 'CONFIG.toml' in f.getvalue()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


# ------------------------------------------------------------------------------ the figures


def test_nn_figures_draw_the_written_tables(tiny_run):
    _, out, _ = tiny_run
    slopes, exact = pd.read_csv(out / "slopes.csv"), pd.read_csv(out / "exact.csv")
    tracking, layers = pd.read_csv(out / "tracking.csv"), pd.read_csv(out / "layers.csv")
    influence = pd.read_csv(out / "self_influence.csv")
    fig = plot_fd_slopes(slopes, exact)
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_xscale() == "log"
    assert len([line for line in ax.get_lines() if line.get_linestyle() == "--"]) == 2  # exact
    fig = plot_isolation_precision(tracking)
    eta = tracking["eta"].iloc[0]
    assert any(list(line.get_ydata()) == [eta, eta] for line in fig.axes[0].get_lines())
    assert isinstance(plot_loss_reduction(tracking), Figure)
    fig = plot_synchronization(layers, "act")
    assert "epoch 1" in fig.axes[0].get_title()
    assert len(fig.axes[0].patches) == 3 * 3  # three layers x three pairs
    fig = plot_self_influence(influence, auroc=0.75)
    assert "AUROC 0.750" in fig.axes[0].get_title()
    shared = Figure()
    ax = shared.add_subplot()
    assert plot_loss_reduction(tracking, ax=ax) is shared


def test_nn_figures_reject_bad_tables():
    with pytest.raises(TypeError, match="slopes must be a pandas DataFrame"):
        plot_fd_slopes([1, 2])
    with pytest.raises(ValueError, match=r"tracking lacks the column\(s\) \['eta'\]"):
        plot_isolation_precision(pd.DataFrame({"epoch": [0], "isolation_precision": [0.1]}))
    with pytest.raises(ValueError, match="kind must be 'grad' or 'act'"):
        plot_synchronization(pd.DataFrame(), kind="weights")
    frame = pd.DataFrame(
        {"epoch": [1], "layer": ["fc"], "grad_cos_poisoned": [0.5], "grad_cos_clean": [0.1],
         "grad_cos_poisoned_clean": [0.0]}
    )  # fmt: skip
    with pytest.raises(ValueError, match="epoch 3 has no rows"):
        plot_synchronization(frame, epoch=3)
    with pytest.raises(ValueError, match="self_influence is empty"):
        plot_self_influence(pd.DataFrame({"group": [], "self_influence": []}))
