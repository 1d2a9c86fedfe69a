"""Property-based tests of the resumable grid store (backdoor_curves.study.grid and .store).

Any interleaving of kills and resumes yields the uninterrupted table. A *kill* stops a study
in the middle of its work: the learner factory :func:`killable_logistic` raises
``KeyboardInterrupt`` on its k-th call, or ends the process with ``os._exit`` (no exception,
no clean-up; in a subprocess). The factory is called while the study plans and once per point
as the point starts, so k lands anywhere from before the first point to inside the last
segment. Drawn: the grid (C values, one or two data sets, a point whose learner cannot be
built and keeps its row with the error) and where each of up to three successive runs on one
store is killed (or not). The final resumed table must equal an uninterrupted run in every
column but ``seconds``, exactly, and along the way:

- the store holds whole segments only (a chain of points differing only in C, ordered from
  the strongest regularization, cut every ``SEGMENT`` points: a segment is committed whole);
- a finished point is never recomputed: its row, ``seconds`` included, is the stored one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import event, given, settings
from hypothesis import strategies as st
from random_data import random_backdoor_data

from backdoor_curves import LogisticLearner
from backdoor_curves.study.grid import SEGMENT, grid_points, grid_study

#: Calls of :func:`killable_logistic` so far, the call that kills (None: never), and how:
#: KeyboardInterrupt, or ``os._exit`` (no clean-up at all: no ``finally``, no store closed).
_KILL: dict = {"calls": 0, "at": None, "exit": False}
#: The exit status of a process killed by :func:`killable_logistic`.
EXIT_STATUS = 3


def killable_logistic(C: float) -> LogisticLearner:
    """A logistic learner factory that kills the study on call ``_KILL["at"]``; a negative C
    raises ValueError (that point fails, and keeps its row with the error)."""
    _KILL["calls"] += 1
    if _KILL["at"] is not None and _KILL["calls"] >= _KILL["at"]:
        if _KILL["exit"]:
            os._exit(EXIT_STATUS)
        raise KeyboardInterrupt(f"killed at call {_KILL['calls']}")
    if C < 0:
        raise ValueError(f"no learner for C={C}")
    return LogisticLearner(C=C)


def small_data(n_poison: int, random_state: int):
    """A small random two-class problem (the data factory of the studies)."""
    return random_backdoor_data(random_state, n_clean=30, n_poison=n_poison, n_test=12, d=3)


def _run(grid, store=None, kill_at=None) -> tuple[pd.DataFrame | None, bool]:
    """(table, killed): the study run with the factory killing it at call ``kill_at``."""
    _KILL.update(calls=0, at=kill_at)
    try:
        table = grid_study(killable_logistic, small_data, grid, store=store, n_jobs=1)
    except KeyboardInterrupt:
        return None, True
    finally:
        _KILL.update(at=None)
    return table, False


def _segments(grid) -> list[set[int]]:
    """The study's segments, written out from the docstrings: points of one data set (one
    ``n_poison`` and seed) differing only in C form a chain, ordered by decreasing lambda = 1/C
    (a point whose learner cannot be built goes last), cut every SEGMENT points."""
    chains = defaultdict(list)
    for i, point in enumerate(grid_points(grid)):
        key = (point["n_poison"], point["random_state"])
        chains[key].append((-1.0 / point["C"], i))
    return [
        {i for _, i in chain[k : k + SEGMENT]}
        for chain in (sorted(c) for c in chains.values())
        for k in range(0, len(chain), SEGMENT)
    ]


def _stored(store) -> dict[int, dict]:
    with sqlite3.connect(store) as db:
        return {
            point: json.loads(row) for point, row in db.execute("SELECT point, row FROM points")
        }


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal in every column but the wall time, floats bit for bit."""
    pd.testing.assert_frame_equal(
        a.drop(columns="seconds"), b.drop(columns="seconds"), check_exact=True
    )


@st.composite
def grids(draw) -> dict:
    n_C = draw(st.integers(1, 7))
    Cs = np.geomspace(0.05, 20.0, 7)[:n_C].tolist()
    if draw(st.booleans()):
        Cs.append(-1.0)  # the factory fails: the point keeps its row with the error
    n_poison, seeds = draw(st.sampled_from([([3], [0]), ([6], [1]), ([3, 6], [0]), ([3], [0, 1])]))
    return {"C": Cs, "n_poison": n_poison, "random_state": seeds}  # one or two data sets


_UNINTERRUPTED: dict[str, tuple[pd.DataFrame, int]] = {}


def _uninterrupted(grid) -> tuple[pd.DataFrame, int]:
    """The uninterrupted table, and how many times the study calls the factory before its
    first point starts (all its calls but one per point)."""
    key = json.dumps(grid, sort_keys=True)
    if key not in _UNINTERRUPTED:
        table, _ = _run(grid)
        _UNINTERRUPTED[key] = table, _KILL["calls"] - len(table)
    return _UNINTERRUPTED[key]


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(
    grid=grids(),
    kills=st.lists(st.integers(-1, 109), min_size=1, max_size=3),
)
def test_any_interleaving_of_kills_and_resumes_gives_the_uninterrupted_table(
    tmp_path_factory, grid, kills
):
    expected, planning = _uninterrupted(grid)
    n = len(expected)
    segments = _segments(grid)
    store = tmp_path_factory.mktemp("store") / "study.sqlite"  # a new store per example
    finished: dict[int, dict] = {}
    for q in kills:
        # the factory is called while the study plans, then once per point as it starts:
        # q = -1 kills while planning, 0 <= q < 100 as the point q % of the way through the
        # points left starts, q >= 100 lets the run finish (a plain resume)
        todo = sum(len(s) for s in segments if not s <= finished.keys())
        at = 1 if q < 0 else planning + 1 + (q * todo // 100 if q < 100 else todo)
        table, killed = _run(grid, store, kill_at=at)
        event("run killed" if killed else "run finished")
        if store.exists():
            now = _stored(store)
            # only whole segments; what was finished stays, unchanged
            assert all(s <= now.keys() or not (s & now.keys()) for s in segments)
            assert all(now[i] == row for i, row in finished.items())
            if killed:
                event(f"killed with {len(now)} of {n} points stored")
            finished = now
        if not killed:
            _same(table, expected)
    resumed, killed = _run(grid, store)
    assert not killed and set(_stored(store)) == set(range(n))
    _same(resumed, expected)
    # a point finished before the last resume was read back, not recomputed
    for i, row in finished.items():
        assert resumed["seconds"][i] == row["seconds"]
        assert resumed["error"][i] == row["error"]
    if -1.0 in grid["C"]:
        assert resumed.loc[resumed["C"] == -1.0, "error"].str.len().gt(0).all()


_HARD_EXIT = """
import sys
sys.path[:0] = [{helpers!r}, {here!r}]
import test_store_properties as t
t._KILL.update(at={at}, exit=True)
t.grid_study(t.killable_logistic, t.small_data, {grid!r}, store={store!r}, n_jobs=1)
"""


@settings(max_examples=3, deadline=None, derandomize=True, database=None)
@given(grid=grids(), q=st.integers(0, 99))
def test_a_hard_exit_then_resume_gives_the_uninterrupted_table(tmp_path_factory, grid, q):
    """The same in a subprocess that ends with ``os._exit`` as the point q % of the way through
    the points starts (no exception, no clean-up), resumed here."""
    expected, planning = _uninterrupted(grid)
    n = len(expected)
    store = tmp_path_factory.mktemp("store") / "study.sqlite"
    here = Path(__file__).resolve().parent
    script = _HARD_EXIT.format(
        helpers=str(here.parent / "helpers"), here=str(here), at=planning + 1 + q * n // 100,
        grid=grid, store=str(store),
    )  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == EXIT_STATUS, proc.stderr[-2000:]
    stored = _stored(store) if store.exists() else {}
    assert all(s <= stored.keys() or not (s & stored.keys()) for s in _segments(grid))
    event(f"exited with {len(stored)} of {n} points stored")
    resumed, killed = _run(grid, store)
    assert not killed
    _same(resumed, expected)
    for i, row in stored.items():
        assert resumed["seconds"][i] == row["seconds"]
