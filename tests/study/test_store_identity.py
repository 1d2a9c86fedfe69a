"""Study identity in grid stores (backdoor_curves.study.store and .grid): a re-run whose data
factory produces other arrays (another lambda of the same name, a factory edited between runs), or
whose learners have other parameters (a changed default that ``repr`` hides), is refused before
its rows are mixed with the stored ones, or recomputed exactly where it changed; real MNIST 7 vs 1
digits throughout."""

from __future__ import annotations

import importlib
import sqlite3
import sys

import numpy as np
import pandas as pd
import pytest
from grid_helpers import TINY_DATA

import backdoor_curves as bc
from backdoor_curves.study.grid import _callable_name, _fingerprint, grid_study
from backdoor_curves.study.results_io import read_study
from backdoor_curves.study.store import SCHEMA, GridStore

#: Two data sets (seeds 0 and 1), two points each.
GRID = {"C": [0.1, 1.0], "fraction": [0.1], "random_state": [0, 1]}


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Tables equal in every column but the wall time, floats bit for bit."""
    pd.testing.assert_frame_equal(
        a.drop(columns="seconds"), b.drop(columns="seconds"), check_exact=True
    )


def _hashes(store) -> dict:
    with GridStore.open_readonly(store) as db:
        return db.datasets()


def test_two_lambdas_of_one_name_are_refused(tmp_path):
    store = tmp_path / "s.sqlite"
    first = lambda fraction, random_state: TINY_DATA(  # noqa: E731
        fraction=fraction, random_state=random_state
    )
    other = lambda fraction, random_state: TINY_DATA(  # noqa: E731
        fraction=fraction, random_state=random_state, size=4
    )
    assert _callable_name(first) == _callable_name(other)  # what the store used to compare
    table = grid_study(bc.LogisticLearner(), first, GRID, store=store)
    stored = _hashes(store)
    assert set(stored) == {'{"fraction":0.1,"random_state":0}', '{"fraction":0.1,"random_state":1}'}
    new = _fingerprint(other(fraction=0.1, random_state=1))
    with pytest.raises(ValueError) as info:
        grid_study(bc.LogisticLearner(), other, GRID, store=store)
    message = str(info.value)
    assert "data set {fraction=0.1, random_state=1}: arrays of hash " in message
    assert stored['{"fraction":0.1,"random_state":1}'] in message and new in message
    assert "recompute_changed=True" in message and "these 4 points" in message
    # nothing was mixed in: the store still holds the first study alone
    pd.testing.assert_frame_equal(read_study(store), table, check_exact=True)
    assert _hashes(store) == stored


@pytest.mark.slow
def test_worker_processes_check_the_data_sets(tmp_path):
    """With worker processes and points left to compute, the workers hash the data sets."""
    store = tmp_path / "s.sqlite"
    first = lambda fraction, random_state: TINY_DATA(  # noqa: E731
        fraction=fraction, random_state=random_state
    )
    other = lambda fraction, random_state: TINY_DATA(  # noqa: E731
        fraction=fraction, random_state=random_state, size=4
    )
    grid_study(bc.LogisticLearner(), first, GRID, store=store)
    with sqlite3.connect(store) as db:
        db.execute("DELETE FROM points WHERE point = 3")
    with pytest.raises(ValueError, match="data set \\{fraction=0.1, random_state=0\\}"):
        grid_study(bc.LogisticLearner(), other, GRID, store=store, n_jobs=2)
    recomputed = grid_study(
        bc.LogisticLearner(), other, GRID, store=store, n_jobs=2, recompute_changed=True
    )
    _same(recomputed, grid_study(bc.LogisticLearner(), other, GRID))


#: A data factory in a module of its own, edited between two runs. ``{size1}``: the trigger size
#: of the data sets of seed 1 (those of seed 0 keep size 3).
FACTORY = """
from backdoor_curves.study.config import make_data


def make(*, fraction, random_state):
    size = 3 if random_state == 0 else {size1}
    return make_data(
        n_train=120, n_test=60, digits={digits}, size=size, fraction=fraction,
        random_state=random_state,
    )
"""


@pytest.fixture
def factory_module(tmp_path, monkeypatch, request):
    """``(module, edit)``: an importable module with ``make``; ``edit(**fields)`` rewrites its
    body and reloads it."""
    name = (
        f"edited_factory_{request.node.name}".replace("[", "_").replace("]", "").replace("-", "_")
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no stale .pyc on reload
    path = tmp_path / f"{name}.py"
    fields = {"size1": 3, "digits": (7, 1)}
    path.write_text(FACTORY.format(**fields))
    module = importlib.import_module(name)

    def edit(**changes):
        path.write_text(FACTORY.format(**{**fields, **changes}))
        return importlib.reload(module)

    yield module, edit
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "change",
    [{"size1": 4, "digits": (7, 1)}, {"size1": 3, "digits": (3, 0)}],
    ids=["size", "classes"],
)
def test_an_edited_factory_is_refused_then_recomputed(tmp_path, factory_module, change):
    module, edit = factory_module
    store = tmp_path / "s.sqlite"
    first = grid_study(bc.LogisticLearner(), module.make, GRID, store=store)
    stored = _hashes(store)
    module = edit(**change)  # same module, same function name, another body
    changed = [s for s in (0, 1) if change["digits"] != (7, 1) or s == 1]
    with pytest.raises(ValueError) as info:
        grid_study(bc.LogisticLearner(), module.make, GRID, store=store)
    message = str(info.value)
    for seed in changed:
        key = f'{{"fraction":0.1,"random_state":{seed}}}'
        new = _fingerprint(module.make(fraction=0.1, random_state=seed))
        assert new != stored[key]
        assert (
            f"data set {{fraction=0.1, random_state={seed}}}: arrays of hash {stored[key]} "
            f"in the store, {new} now"
        ) in message
    assert ("random_state=0}" in message) == (0 in changed)
    pd.testing.assert_frame_equal(read_study(store), first, check_exact=True)  # nothing mixed

    recomputed = grid_study(
        bc.LogisticLearner(), module.make, GRID, store=store, recompute_changed=True
    )
    fresh = grid_study(bc.LogisticLearner(), module.make, GRID)
    _same(recomputed, fresh)
    assert not np.array_equal(recomputed["derivative"], first["derivative"])  # it did change
    # the points of an unchanged data set were kept (their wall times are the stored ones)
    kept = first["random_state"].isin({0, 1} - set(changed)).to_numpy()
    assert (recomputed["seconds"][kept] == first["seconds"][kept]).all()
    assert (recomputed["seconds"][~kept] != first["seconds"][~kept]).all()
    # the store now holds the new study, consistently: a re-run recomputes nothing
    assert _hashes(store) == {
        k: _fingerprint(module.make(fraction=0.1, random_state=s))
        for k, s in zip(sorted(stored), (0, 1), strict=True)
    }
    pd.testing.assert_frame_equal(
        grid_study(bc.LogisticLearner(), module.make, GRID, store=store), recomputed
    )
    pd.testing.assert_frame_equal(read_study(store), recomputed, check_exact=True)


def test_a_changed_learner_default_is_refused_then_recomputed(tmp_path, monkeypatch, tiny):
    store = tmp_path / "s.sqlite"
    grid = [
        {"learner": ["logistic"], "C": [0.1, 1.0, 10.0]},
        {"learner": ["ridge"], "alpha": [1.0]},
    ]
    first = grid_study(
        {"logistic": bc.LogisticLearner(), "ridge": bc.RidgeLearner()}, tiny, grid, store=store
    )
    with GridStore.open_readonly(store) as db:
        _, learner = db.identities()[0]
    assert learner == {
        "name": "logistic",
        "class": "backdoor_curves.learners.linear.LogisticLearner",
        "params": {"C": 0.1, "max_iter": 100, "tol": 1e-10, "warm_start": False},
    }
    # a new default tolerance: repr (what the store used to compare) does not show it
    defaults = bc.LogisticLearner.__init__.__kwdefaults__
    monkeypatch.setattr(bc.LogisticLearner.__init__, "__kwdefaults__", {**defaults, "tol": 1e-4})
    learners = {"logistic": bc.LogisticLearner(), "ridge": bc.RidgeLearner()}
    assert repr(learners["logistic"]) == "LogisticLearner()" and learners["logistic"].tol == 1e-4
    with pytest.raises(ValueError) as info:
        grid_study(learners, tiny, grid, store=store)
    message = str(info.value)
    assert (
        "learner parameter 'tol' of 'logistic': 1e-10 in the store, 0.0001 now "
        "(3 finished points, e.g. point 0: C=0.1, learner='logistic', random_state=0)"
    ) in message
    assert "these 3 points" in message and "ridge" not in message
    recomputed = grid_study(learners, tiny, grid, store=store, recompute_changed=True)
    _same(recomputed, grid_study(learners, tiny, grid))
    assert recomputed["seconds"].iloc[3] == first["seconds"].iloc[3]  # ridge kept
    assert (recomputed["seconds"].iloc[:3] != first["seconds"].iloc[:3]).all()
    # a learner factory whose learners changed: refused the same way
    factory_store = tmp_path / "factory.sqlite"
    grid_study(
        lambda C: bc.LogisticLearner(C=C, max_iter=50), tiny, {"C": [1.0]}, store=factory_store
    )
    with pytest.raises(ValueError, match="learner parameter 'max_iter' of '<lambda>': 50 in the"):
        grid_study(lambda C: bc.LogisticLearner(C=C), tiny, {"C": [1.0]}, store=factory_store)
    with pytest.raises(ValueError, match="learner class: 'backdoor_curves.learners.linear.Logi"):
        grid_study(lambda C: bc.LinearSVMLearner(C=C), tiny, {"C": [1.0]}, store=factory_store)


def test_a_changed_fixed_data_set(tmp_path, tiny):
    store = tmp_path / "s.sqlite"
    first = grid_study(bc.LogisticLearner(), tiny, {"C": [0.1, 1.0]}, store=store)
    assert _hashes(store) == {"fixed": _fingerprint(tiny)}
    arrays = [getattr(tiny, n) for n in bc.BackdoorData.ARRAYS]
    other = bc.BackdoorData(*arrays[:2], arrays[2][::-1], *arrays[3:])  # other poisoning inputs
    with pytest.raises(ValueError) as info:
        grid_study(bc.LogisticLearner(), other, {"C": [0.1, 1.0]}, store=store)
    assert (
        f"data set the fixed BackdoorData: arrays of hash {_fingerprint(tiny)} in the store, "
        f"{_fingerprint(other)} now (2 finished points)"
    ) in str(info.value)
    recomputed = grid_study(
        bc.LogisticLearner(), other, {"C": [0.1, 1.0]}, store=store, recompute_changed=True
    )
    _same(recomputed, grid_study(bc.LogisticLearner(), other, {"C": [0.1, 1.0]}))
    assert not np.array_equal(recomputed["derivative"], first["derivative"])
    assert _hashes(store) == {"fixed": _fingerprint(other)}


def test_resume_check_builds_each_data_set_once_and_fits_nothing(tmp_path, monkeypatch):
    calls, fits = [], []

    def factory(*, fraction, random_state):
        calls.append(random_state)
        return TINY_DATA(fraction=fraction, random_state=random_state)

    store = tmp_path / "s.sqlite"
    first = grid_study(bc.LogisticLearner(), factory, GRID, store=store)
    assert sorted(calls) == [0, 1]
    fit = bc.BaseLearner.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(self)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(bc.BaseLearner, "fit", counting_fit)
    calls.clear()
    again = grid_study(bc.LogisticLearner(), factory, GRID, store=store)
    pd.testing.assert_frame_equal(again, first)  # seconds included: nothing recomputed
    assert sorted(calls) == [0, 1] and fits == []  # one factory call per data set, no fit
    # a point lost: the check's data set (n_jobs=1: built in this process) serves its segment
    with sqlite3.connect(store) as db:
        db.execute("DELETE FROM points WHERE point = 3")
    calls.clear()
    resumed = grid_study(bc.LogisticLearner(), factory, GRID, store=store)
    assert sorted(calls) == [0, 1] and len(fits) == 4  # the segment of seed 1: 2 points x 2 fits
    _same(resumed, first)


def test_a_failing_factory_is_recorded_and_resumed(tmp_path):
    store = tmp_path / "s.sqlite"
    grid = {"C": [1.0], "fraction": [0.001, 0.1], "random_state": [0]}
    first = grid_study(bc.LogisticLearner(), TINY_DATA, grid, store=store)
    assert first["error"].iloc[0].startswith("setup: DataParameterError")
    hashes = _hashes(store)
    assert hashes['{"fraction":0.001,"random_state":0}'] is None
    assert hashes['{"fraction":0.1,"random_state":0}'].startswith("sha256:")
    pd.testing.assert_frame_equal(
        grid_study(bc.LogisticLearner(), TINY_DATA, grid, store=store), first
    )


def _schema_one_copy(store, old) -> None:
    """The store's study in the layout of schema 1 (no datasets table, no schema in meta)."""
    with sqlite3.connect(store) as src:
        meta = src.execute("SELECT key, value FROM meta WHERE key IN ('definition', 'version')")
        meta = meta.fetchall()
        rows = src.execute("SELECT point, key, row FROM points").fetchall()
    with sqlite3.connect(old) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE points (point INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, "
            "row TEXT NOT NULL, finished_at TEXT NOT NULL DEFAULT 'x');"
        )
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta)
        db.executemany("INSERT INTO points (point, key, row) VALUES (?, ?, ?)", rows)


def test_stores_of_other_schema_versions(tmp_path):
    store, old = tmp_path / "s.sqlite", tmp_path / "old.sqlite"
    table = grid_study(bc.LogisticLearner(), TINY_DATA, GRID, store=store)
    _schema_one_copy(store, old)
    # read as before ...
    pd.testing.assert_frame_equal(read_study(old), table, check_exact=True)
    with GridStore.open_readonly(old) as db:
        assert db.schema == 1 and db.datasets() == {} and db.identities()[0] == (None, None)
    # ... but not resumed: its rows cannot be checked
    with pytest.raises(ValueError, match="older version of backdoor-curves \\(store schema 1\\)"):
        grid_study(bc.LogisticLearner(), TINY_DATA, GRID, store=old)
    with sqlite3.connect(store) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA + 1),))
    for call in (
        lambda: read_study(store),
        lambda: grid_study(bc.LogisticLearner(), TINY_DATA, GRID, store=store),
    ):
        with pytest.raises(ValueError, match=f"newer version.*schema {SCHEMA + 1}"):
            call()


def test_store_refuses_rows_of_other_arrays_and_other_files(tmp_path):
    path = tmp_path / "s.sqlite"
    with GridStore(path, {"points": [{"C": 1.0}]}) as db:
        db.write_many([(0, "a", {"x": 1.0}, "k", None)], datasets={"k": "sha256:1"})
        with pytest.raises(ValueError, match="data set k is recorded with arrays of hash sha256:1"):
            db.write_many([(0, "a", {"x": 2.0}, "k", None)], datasets={"k": "sha256:2"})
        assert db.finished() == {0: {"x": 1.0}}  # nothing written
        db.forget([0], ["k"])
        assert db.finished() == {} and db.datasets() == {}
    with GridStore.open_readonly(path) as db, pytest.raises(ValueError, match="read-only"):
        db.write(0, "a", {})
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="not a grid store"):
        GridStore(other, {})
    with sqlite3.connect(other) as conn:  # left as it was
        assert [n for (n,) in conn.execute("SELECT name FROM sqlite_master")] == ["t"]
    (tmp_path / "text.sqlite").write_text("not a database, but long enough to be read as one" * 4)
    with pytest.raises(ValueError, match="not a grid store"):
        GridStore(tmp_path / "text.sqlite", {})
    with pytest.raises(TypeError, match="recompute_changed"):
        grid_study(bc.LogisticLearner(), TINY_DATA, GRID, recompute_changed="yes")
