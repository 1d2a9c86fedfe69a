"""Work shared per data set in grid studies: pairwise products built once per data set and
worker, Dask workers receive a fixed data set once, points of one data set run together."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from grid_helpers import TINY_DATA, UNPICKLE_LOG, CountingLogistic

import backdoor_curves as bc
from backdoor_curves.learners import pairwise
from backdoor_curves.study import grid as grid_module
from backdoor_curves.study.grid import grid_study


def test_one_pairwise_cache_per_data_set(mnist_small, monkeypatch):
    made = []
    real = grid_module.make_cache

    def counting(data):
        made.append(data)
        return real(data)

    monkeypatch.setattr(grid_module, "make_cache", counting)
    grid_module._PAIRWISE.clear()
    table = grid_study(
        bc.RBFSVMLearner(), mnist_small, {"C": [0.5, 5.0], "gamma": [0.01, 0.05]}, n_jobs=1
    )
    assert (table["error"] == "").all() and len(made) == 1
    # a data factory swept over two seeds, listed seed-fastest: still one cache per data set
    made.clear()
    grid_module._PAIRWISE.clear()
    table = grid_study(
        bc.RBFSVMLearner(gamma=0.05), TINY_DATA, {"C": [0.5, 5.0], "random_state": [0, 1]}
    )
    assert len(made) == 2 and (table["error"] == "").all()
    # ridge shares the data's weighted Gram matrix through it: once per data set as well
    made.clear()
    grid_module._PAIRWISE.clear()
    grid_study(bc.RidgeLearner(), mnist_small, {"alpha": [0.5, 5.0, 50.0]})
    assert len(made) == 1


def test_grid_rows_match_single_points_under_the_cache(mnist_small):
    table = grid_study(bc.RBFSVMLearner(), mnist_small, {"C": [0.5, 5.0], "gamma": [0.01, 0.05]})
    for _, row in table.iterrows():
        learner = bc.RBFSVMLearner(C=row["C"], gamma=row["gamma"])
        with pairwise.shared_pairwise(mnist_small):
            alone = bc.study.point.evaluate_point(learner, mnist_small)
        for column in ("derivative", "clean_accuracy", "backdoor_accuracy", "nu_1"):
            assert row[column] == alone[column]  # the same products: the same bits
        direct = bc.study.point.evaluate_point(learner, mnist_small)  # kernels per call
        assert row["derivative"] == pytest.approx(direct["derivative"], rel=1e-10)
        assert row["clean_accuracy"] == direct["clean_accuracy"]


def test_dask_workers_receive_a_fixed_data_set_once(mnist_small, tmp_path, monkeypatch):
    from dask.distributed import LocalCluster

    log = tmp_path / "unpickled.txt"
    monkeypatch.setenv(UNPICKLE_LOG, str(log))  # the worker processes inherit it
    grid = {"C": list(np.geomspace(0.01, 10.0, 8))}
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        table = grid_study(CountingLogistic(), mnist_small, grid, backend="dask", scheduler=cluster)
        workers = {w.pid for w in cluster.workers.values() if hasattr(w, "pid")}
    assert (table["error"] == "").all() and len(table) == 8
    # unpickled in the workers (the client process may unpickle its own copies too)
    pids = [int(p) for p in Path(log).read_text().split() if int(p) != os.getpid()]
    # one copy per worker (the study's learners travel with the data), not one per point
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids)
    assert set(pids) <= workers


def test_the_memory_budget_reaches_the_workers(mnist_small):
    from backdoor_curves._memory import memory_budget_context

    grid = {"C": [0.5, 5.0]}
    shared = grid_study(bc.RBFSVMLearner(gamma=0.05), mnist_small, grid)
    n = len(mnist_small.X_train)
    # room for one training kernel, not for the shared products: kernels are computed per call
    with memory_budget_context(3 * n * n * 8):
        alone = grid_study(bc.RBFSVMLearner(gamma=0.05), mnist_small, grid, n_jobs=2)
    assert (alone["error"] == "").all()
    for column in ("derivative", "clean_accuracy", "backdoor_accuracy", "backdoor_loss_1"):
        np.testing.assert_allclose(alone[column], shared[column], rtol=1e-10)
    # no room for a kernel: every point records the refusal (in the worker processes too)
    with memory_budget_context(1000):
        refused = grid_study(bc.RBFSVMLearner(gamma=0.05), mnist_small, grid, n_jobs=2)
    assert refused["error"].str.contains("MemoryBudgetError: the RBF kernel matrix").all()
