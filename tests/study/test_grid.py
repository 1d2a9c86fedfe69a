"""Grid studies (backdoor_curves.study.grid and .store): numbers against scikit-learn re-fits, the
same table whatever n_jobs and backend, failed points kept, and a store that survives SIGKILL."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from grid_helpers import KILL_GRID, TINY_DATA, slow_logistic
from oracle import learner_and_estimator, refit

import backdoor_curves as bc
from backdoor_curves.measures.deviation import parameter_deviation
from backdoor_curves.study.grid import (
    RESULT_COLUMNS,
    curves_frame,
    evaluate_point,
    grid_points,
    grid_study,
)

LEARNERS = {
    "logistic": bc.LogisticLearner(),
    "linear_svm": bc.LinearSVMLearner(),
    "ridge": bc.RidgeLearner(),
    "rbf_svm": bc.RBFSVMLearner(gamma=0.05),
}
GRID = [
    {"learner": ["logistic", "linear_svm"], "C": [0.05, 5.0]},
    {"learner": ["ridge"], "alpha": [0.1, 10.0]},
    {"learner": ["rbf_svm"], "C": [0.5, 5.0]},
]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Tables equal in every column but the wall time (floats bit for bit)."""
    pd.testing.assert_frame_equal(
        a.drop(columns="seconds"), b.drop(columns="seconds"), rtol=0, atol=0
    )


@pytest.fixture(scope="module")
def table(mnist_small):
    return grid_study(LEARNERS, mnist_small, GRID, n_jobs=1)


def test_rows_match_scikit_learn_refits(table, mnist_small):
    assert len(table) == 8 and (table["error"] == "").all()
    for _, row in table.iterrows():
        kind = row["learner"]
        reg = row["C"] if kind != "ridge" else 1.0 / (2.0 * row["alpha"])
        learner, estimator = learner_and_estimator(kind, reg)
        if kind == "rbf_svm":
            learner.set_params(gamma=0.05)
        assert row["lambda"] == pytest.approx(1.0 / reg, rel=1e-12)
        at0 = refit(kind, estimator, mnist_small, 0.0)
        at1 = refit(kind, estimator, mnist_small, 1.0)
        assert row["clean_accuracy"] == at1["clean_accuracy"]
        assert row["backdoor_accuracy"] == at1["backdoor_accuracy"]
        assert row["backdoor_loss_1"] == pytest.approx(at1["backdoor_loss"], rel=1e-4)
        assert row["backdoor_loss_0"] == pytest.approx(at0["backdoor_loss"], rel=1e-4)
        dev = parameter_deviation(at1["vector"][None, :], at0["vector"], at1.get("gram"))
        assert row["nu_1"] == pytest.approx(dev["nu"][0], rel=1e-4, abs=1e-7)
        assert row["rho_ratio_1"] == pytest.approx(dev["rho_ratio"][0], rel=1e-4)
        slope = bc.backdoor_slope(learner, mnist_small)  # itself checked against re-fits
        if kind == "ridge":
            assert row["derivative"] == slope.derivative
            assert row["score"] == slope.score
        else:
            # the grid warm-starts each fit from its neighbour along C (logistic: Newton stops
            # within tol of the optimum from another start) and serves kernels from the data
            # set's shared pairwise products (SVMs: another summation order): the same
            # numbers to rounding or the solver's tolerance
            assert row["derivative"] == pytest.approx(slope.derivative, rel=1e-9)
            assert row["score"] == pytest.approx(slope.score, rel=1e-9)
        assert row["condition_number"] == pytest.approx(slope.condition_number, rel=1e-9)


def test_whole_curve_columns(mnist_small):
    betas = [0.0, 0.1, 1.0]
    tab = grid_study(bc.LogisticLearner(), mnist_small, {"C": [0.1, 10.0]}, betas=betas)
    curve = bc.learning_curve(bc.LogisticLearner(C=10.0), mnist_small, betas=betas)
    assert tab.loc[1, "curve_backdoor_loss"] == tuple(curve["backdoor_loss"])
    long = curves_frame(tab)
    assert len(long) == 6 and long["beta"].tolist() == betas * 2
    # the curve's end agrees with the separately fitted beta = 1 model
    assert long["backdoor_loss"].iloc[-1] == pytest.approx(tab.loc[1, "backdoor_loss_1"], rel=1e-6)


@pytest.mark.slow
def test_same_table_for_n_jobs_and_dask(table, mnist_small):
    from dask.distributed import LocalCluster

    _same(table, grid_study(LEARNERS, mnist_small, GRID, n_jobs=2))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on_dask = grid_study(LEARNERS, mnist_small, GRID, backend="dask", scheduler=cluster)
        by_address = grid_study(
            LEARNERS, mnist_small, GRID[:1], backend="dask", scheduler=cluster.scheduler_address
        )
    _same(table, on_dask)
    _same(table.iloc[:4][by_address.columns], by_address)


def test_failed_points_keep_their_row(mnist_small):
    # invalid learner parameters are refused before any point runs, naming the grid key
    with pytest.raises(ValueError, match=r"param_grid\['gamma'\]: gamma must be"):
        grid_study(
            LEARNERS, mnist_small, {"learner": ["rbf_svm"], "C": [1.0], "gamma": [-1.0, 0.05]}
        )

    # a learner factory that fails for one point: the point keeps its row with a setup error
    def factory(C):
        if C > 1.0:
            raise RuntimeError("no learner for this C")
        return bc.LogisticLearner(C=C)

    tab = grid_study(factory, mnist_small, {"C": [0.5, 5.0]})
    good, bad = tab.iloc[0], tab.iloc[1]
    assert bad["error"] == "setup: RuntimeError: no learner for this C"
    assert all(math.isnan(bad[c]) for c in RESULT_COLUMNS)
    assert good["error"] == "" and 0.5 < good["clean_accuracy"] <= 1.0
    # a data factory that fails for one point: the point keeps its row with a setup error
    tab = grid_study(bc.LogisticLearner(), TINY_DATA, {"fraction": [0.001, 0.1]})
    assert (
        tab["error"].iloc[0].startswith("setup: DataParameterError")
        and "fraction" in tab["error"].iloc[0]
    )
    assert tab["error"].iloc[1] == "" and np.isfinite(tab["score"].iloc[1])


def test_data_factories_are_told_apart(mnist_small, tiny):
    # two factories of the same (lambda) name in one process: each study gets its own data
    first = grid_study(bc.LogisticLearner(), lambda random_state: mnist_small, {"C": [1.0]})
    second = grid_study(bc.LogisticLearner(), lambda random_state: tiny, {"C": [1.0]})
    assert (
        first.loc[0, "derivative"]
        == bc.backdoor_slope(bc.LogisticLearner(), mnist_small).derivative
    )
    assert second.loc[0, "derivative"] == bc.backdoor_slope(bc.LogisticLearner(), tiny).derivative


def test_points_and_seeds():
    points = grid_points({"C": np.array([1.0, 2.0]), "random_state": [3]}, random_state=7)
    assert points == [{"C": 1.0, "random_state": 3}, {"C": 2.0, "random_state": 3}]
    assert type(points[0]["C"]) is float
    assert grid_points({"C": [1.0]}, random_state=7) == [{"C": 1.0, "random_state": 7}]


@pytest.mark.parametrize(
    "grid, error",
    [
        ({"C": []}, "param_grid\\['C'\\] is empty"),
        ({"C": 1.0}, "param_grid\\['C'\\] must be a list"),
        ({"bogus": [1]}, "param_grid key 'bogus'"),
        ({"C": [1.0, 1.0]}, "duplicate points"),
        ({"learner": ["logistic"], "C": [1.0]}, "param_grid key 'learner'"),
    ],
)
def test_bad_grids_named(mnist_small, grid, error):
    with pytest.raises((ValueError, TypeError), match=error):
        grid_study(bc.LogisticLearner(), mnist_small, grid)


def test_bad_arguments(mnist_small):
    with pytest.raises(TypeError, match="learners"):
        grid_study("logistic", mnist_small, {"C": [1.0]})
    with pytest.raises(TypeError, match="data"):
        grid_study(bc.LogisticLearner(), np.zeros(3), {"C": [1.0]})
    with pytest.raises(ValueError, match="n_jobs"):
        grid_study(bc.LogisticLearner(), mnist_small, {"C": [1.0]}, n_jobs=0)
    with pytest.raises(ValueError, match="backend"):
        grid_study(bc.LogisticLearner(), mnist_small, {"C": [1.0]}, backend="spark")


def test_store_skips_finished_points_and_refuses_another_study(tmp_path, mnist_small):
    store = tmp_path / "study.sqlite"
    first = grid_study(LEARNERS, mnist_small, GRID, store=store)
    again = grid_study(LEARNERS, mnist_small, GRID, store=store)
    # nothing recomputed: even the wall times are the stored ones
    pd.testing.assert_frame_equal(first, again)
    with sqlite3.connect(store) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        assert db.execute("SELECT count(*) FROM points").fetchone()[0] == 8
    assert meta["version"] == bc.__version__ and '"random_state":0' in meta["definition"]
    with pytest.raises(ValueError, match="different study.*points"):
        grid_study(LEARNERS, mnist_small, [*GRID[:2]], store=store)
    with pytest.raises(ValueError, match="data set the fixed BackdoorData: arrays of hash"):
        arrays = [getattr(mnist_small, n) for n in bc.BackdoorData.ARRAYS]
        other = bc.BackdoorData(*arrays[:-2], arrays[-2][::-1], arrays[-1][::-1])
        grid_study(LEARNERS, other, GRID, store=store)


_KILLED_RUN = """
import sys
sys.path.insert(0, {tests!r})
from grid_helpers import KILL_GRID, TINY_DATA, slow_logistic
from backdoor_curves.study.grid import grid_study
grid_study(slow_logistic, TINY_DATA, KILL_GRID, store={store!r}, n_jobs=1)
"""


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    store = tmp_path / "killed.sqlite"
    helpers = Path(__file__).resolve().parents[1] / "helpers"
    script = _KILLED_RUN.format(tests=str(helpers), store=str(store))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)])
    finished = 0
    deadline = time.monotonic() + 120
    try:
        while finished < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if store.exists():
                try:
                    with sqlite3.connect(store) as db:
                        finished = db.execute("SELECT count(*) FROM points").fetchone()[0]
                except sqlite3.OperationalError:  # the table is being created
                    pass
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(store) as db:
        done = db.execute("SELECT count(*) FROM points").fetchone()[0]
    assert 4 <= done < 16, "the run should have been killed half-way"
    resumed = grid_study(slow_logistic, TINY_DATA, KILL_GRID, store=store, n_jobs=2)
    uninterrupted = grid_study(slow_logistic, TINY_DATA, KILL_GRID, n_jobs=2)
    _same(resumed, uninterrupted)
    assert (resumed["error"] == "").all() and resumed["fraction"].tolist().count(0.2) == 8


def test_one_clean_fit_serves_slope_and_deviation(mnist_small, monkeypatch):
    calls = []
    fit = bc.BaseLearner.fit

    def counting_fit(self, X, y, sample_weight=None):
        calls.append(None if sample_weight is None else float(sample_weight[-1]))
        return fit(self, X, y, sample_weight)

    monkeypatch.setattr(bc.BaseLearner, "fit", counting_fit)
    row = evaluate_point(bc.LogisticLearner(C=1.0), mnist_small)
    assert calls == [None, 1.0]  # theta0 on D (slope + deviation reference), then beta = 1
    assert row["error"] == "" and np.isfinite(row["nu_1"]) and np.isfinite(row["derivative"])
