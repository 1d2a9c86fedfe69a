"""Reading a grid study back (backdoor_curves.study.results_io): a real grid_study on MNIST digits,
written to its store and to CSV files as ``backdoor-curves grid`` writes them, read back equal."""

from __future__ import annotations

import functools
import sqlite3

import numpy as np
import pandas as pd
import pytest

from backdoor_curves import LogisticLearner, RBFSVMLearner
from backdoor_curves.study.config import make_data
from backdoor_curves.study.grid import curves_frame, grid_curves, grid_study
from backdoor_curves.study.results_io import read_study
from backdoor_curves.study.robust import robust_region

#: 120 training / 60 test MNIST 7 vs 1 digits, BadNets 3x3 on the poisoned fraction.
DATA = functools.partial(make_data, n_train=120, n_test=60, size=3)
#: Two learners with different parameters (gamma is NaN for the logistic rows), a data parameter
#: (fraction), a text parameter (trigger) and two seeds.
GRID = [
    {"learner": ["rbf"], "C": [0.1, 10.0], "gamma": [0.001, 0.01], "random_state": [0, 1]},
    {
        "learner": ["logistic"],
        "C": [0.01, 1.0],
        "fraction": [0.1, 0.2],
        "trigger": ["badnets"],
        "random_state": [0, 1],
    },
]
LEARNERS = {"rbf": RBFSVMLearner(), "logistic": LogisticLearner()}
CRITERIA = {"min_clean_accuracy": 0.9, "max_backdoor_accuracy": 0.2, "seed_share": 0.5}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """(table, store path, output directory with table.csv and curves.csv)."""
    out = tmp_path_factory.mktemp("grid_out")
    store = out / "study.sqlite"
    table = grid_study(LEARNERS, DATA, GRID, betas=[0.0, 0.1, 1.0], store=store)
    write_like_the_cli(table, out)
    return table, store, out


def write_like_the_cli(table: pd.DataFrame, out) -> None:
    """table.csv and curves.csv as backdoor_curves.grid_run writes them."""
    flat = table[[c for c in table.columns if not c.startswith("curve_")]]
    flat.to_csv(out / "table.csv", index=False)
    curves_frame(table).to_csv(out / "curves.csv", index=False)


def assert_same_region(a: pd.DataFrame, b: pd.DataFrame) -> None:
    ra, rb = robust_region(a, **CRITERIA), robust_region(b, **CRITERIA)
    pd.testing.assert_frame_equal(ra.settings, rb.settings)
    pd.testing.assert_frame_equal(ra.points, rb.points)
    pd.testing.assert_frame_equal(ra.summary, rb.summary)
    pd.testing.assert_series_equal(ra.recommended, rb.recommended)
    assert ra.criteria == rb.criteria


def test_the_study_is_real(stored):
    table, _, _ = stored
    assert len(table) == 16 and (table["error"] == "").all()
    assert np.isnan(table["gamma"].iloc[-1]) and table["trigger"].iloc[-1] == "badnets"
    region = robust_region(table, **CRITERIA)
    assert len(region.settings) == 8 and region.settings["n_seeds"].eq(2).all()


def test_store_round_trip(stored):
    """Every column, seconds included: grid_study's rows are the rows the store holds."""
    table, store, _ = stored
    back = read_study(store)
    pd.testing.assert_frame_equal(back, table, check_exact=True)
    assert back.attrs == table.attrs == {"betas": (0.0, 0.1, 1.0)}
    assert_same_region(back, table)
    curves = grid_curves(back)
    assert np.array_equal(curves[3].values["backdoor_loss"], table.loc[3, "curve_backdoor_loss"])


def test_csv_round_trip(stored):
    """table.csv + curves.csv: floats written with their shortest repr read back exactly."""
    table, _, out = stored
    back = read_study(out / "table.csv")  # curves.csv next to it is read too
    pd.testing.assert_frame_equal(back, table, check_exact=True)
    assert back.attrs == table.attrs
    assert_same_region(back, table)


def test_csv_without_curves(stored, tmp_path):
    table, _, out = stored
    lone = tmp_path / "mine.csv"
    lone.write_bytes((out / "table.csv").read_bytes())
    back = read_study(lone)
    flat = table[[c for c in table.columns if not c.startswith("curve_")]]
    pd.testing.assert_frame_equal(back, flat, check_exact=True)
    assert back.attrs == {"betas": None}
    assert_same_region(back, flat)
    with_curves = read_study(lone, curves=out / "curves.csv")
    pd.testing.assert_frame_equal(with_curves, table, check_exact=True)


def test_output_directory(stored, tmp_path):
    table, _, out = stored
    pd.testing.assert_frame_equal(read_study(out), table, check_exact=True)
    # without the store: the CSV files
    csv_only = tmp_path / "csv_only"
    csv_only.mkdir()
    for name in ("table.csv", "curves.csv"):
        (csv_only / name).write_bytes((out / name).read_bytes())
    pd.testing.assert_frame_equal(read_study(str(csv_only)), table, check_exact=True)


class _FailsAtHugeC(LogisticLearner):
    """A logistic learner that cannot fit nor follow its path for C > 1e6 (a failed fit and a
    failed curve with valid parameters)."""

    @property
    def loss_weight(self) -> float:
        if self.C > 1e6:
            raise ArithmeticError("this test's learner does not fit at C > 1e6")
        return self.C

    @property
    def regularization(self) -> float:
        return 1.0 / self.C


def test_failed_points_and_curves_round_trip(tmp_path):
    """Failed points (a failed setup: empty estimator; failed fits) and failed curves (None)
    survive both ways."""
    grid = {"C": [1.0, 1e9], "fraction": [0.1, 1.5], "random_state": [0]}
    table = grid_study(_FailsAtHugeC(), DATA, grid, betas=[0.0, 1.0], store=tmp_path / "s.db")
    errors = table["error"].tolist()
    assert errors[0] == "" and errors[1].startswith("setup: ") and table["estimator"][1] == ""
    assert errors[2].startswith("fit at beta=0: ") and table["curve_nu"].iloc[2] is None
    pd.testing.assert_frame_equal(read_study(tmp_path / "s.db"), table, check_exact=True)
    write_like_the_cli(table, tmp_path)
    pd.testing.assert_frame_equal(read_study(tmp_path / "table.csv"), table, check_exact=True)


def test_tuple_and_bool_parameters(tmp_path):
    """A tuple parameter (digits) is written "(7, 1)" and read back as the tuple; a bool as
    True/False. (Without curves: curves_frame cannot lay out a tuple column yet.)"""
    grid = {"C": [1.0], "digits": [(7, 1), (3, 0)], "shuffle": [True], "random_state": [0]}

    def data(*, digits, shuffle, random_state):
        return DATA(digits=digits, random_state=random_state)

    table = grid_study(LogisticLearner(), data, grid, store=tmp_path / "s.db")
    assert table["digits"].tolist() == [(7, 1), (3, 0)] and table["shuffle"].dtype == bool
    pd.testing.assert_frame_equal(read_study(tmp_path / "s.db"), table, check_exact=True)
    table.to_csv(tmp_path / "table.csv", index=False)
    pd.testing.assert_frame_equal(read_study(tmp_path / "table.csv"), table, check_exact=True)


def test_unfinished_store_warns(stored, tmp_path):
    table, store, _ = stored
    partial = tmp_path / "partial.sqlite"
    with sqlite3.connect(store) as src, sqlite3.connect(partial) as dst:
        src.backup(dst)
    with sqlite3.connect(partial) as db:
        db.execute("DELETE FROM points WHERE point IN (2, 5)")
    with pytest.warns(UserWarning, match="14 of the 16 points"):
        back = read_study(partial)
    assert back.index.tolist() == [i for i in range(16) if i not in (2, 5)]
    pd.testing.assert_frame_equal(back, table.drop(index=[2, 5]), check_exact=True)


def test_bad_paths(tmp_path):
    with pytest.raises(TypeError, match="path"):
        read_study(3)
    with pytest.raises(FileNotFoundError, match="path"):
        read_study(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="directory without"):
        read_study(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="learner"):
        read_study(other)
    with pytest.raises(FileNotFoundError, match="curves"):
        read_study(other, curves=tmp_path / "nope.csv")
    db = tmp_path / "plain.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="not a grid store"):
        read_study(db)
