"""Round trips of the result types (backdoor_curves.measures.results): curves <-> tables and CSV
files, slopes <-> dicts and JSON; exact equality of results."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from backdoor_curves import LinearSVMLearner, LogisticLearner, backdoor_slope, learning_curve
from backdoor_curves.demo import LearnerSpec, compute_curves, curves_table
from backdoor_curves.measures import (
    CURVE_COLUMNS,
    BackdoorSlope,
    LearningCurve,
    read_curves,
    write_curves,
)

BETAS = [0.0, 0.01, 0.1, 0.5, 1.0]


@pytest.fixture(scope="module")
def logistic_curve(tiny):
    return learning_curve(LogisticLearner(C=0.1), tiny, betas=BETAS)


@pytest.fixture(scope="module")
def svm_curve(tiny):
    curve = learning_curve(LinearSVMLearner(C=1.0), tiny, betas=BETAS)
    assert len(curve.events) > 5  # a path with events to keep
    return curve


def awkward_curve() -> LearningCurve:
    """Floats that a careless writer rounds or loses, and a label that needs quoting."""
    rng = np.random.default_rng(0)
    betas = np.r_[0.0, np.sort(rng.random(5))]
    values = {
        c: rng.standard_normal(6) * 10.0 ** rng.integers(-300, 300, 6) for c in CURVE_COLUMNS[1:]
    }
    values["nu"][1:4] = [np.nan, np.inf, -np.inf]
    values["rho"][:3] = [5e-324, -0.0, 1 / 3]
    events = pd.DataFrame(
        {"beta": [0.1, 0.2], "index": [3, 7], "from": ["zero", "margin"], "to": ["margin", "bound"]}
    )
    params = {"C": 0.1, "tol": 1e-10, "max_iter": 100, "warm_start": False, "name": None}
    return LearningCurve(betas, values, 'my "learner", é; x=nan', float("nan"), params, events)


# ---------------------------------------------------------------------------- equality
def test_curves_compare_exactly(logistic_curve, svm_curve):
    assert logistic_curve == logistic_curve
    assert logistic_curve != svm_curve
    assert logistic_curve != "a curve"
    changed = LearningCurve(
        logistic_curve.betas,
        {**logistic_curve.values, "nu": logistic_curve["nu"] + 1e-16},
        logistic_curve.learner,
        logistic_curve.regularization,
        logistic_curve.params,
        logistic_curve.events,
    )
    assert not changed.equals(logistic_curve)
    assert awkward_curve() == awkward_curve()  # NaN equals NaN


# ---------------------------------------------------------------------------- frames
def test_from_frame_is_the_inverse_of_to_frame(logistic_curve, svm_curve):
    for curve in (logistic_curve, svm_curve):
        frame = curve.to_frame()
        back = LearningCurve.from_frame(frame, params=curve.params, events=curve.events)
        assert back == curve
        bare = LearningCurve.from_frame(frame)  # label and lambda from frame.attrs
        assert (bare.learner, bare.regularization) == (curve.learner, curve.regularization)
        np.testing.assert_array_equal(bare["backdoor_loss"], curve["backdoor_loss"])
        assert bare.params == {} and bare.events.empty
    # a frame without attrs (e.g. read from a file) names them explicitly
    frame = pd.DataFrame(logistic_curve.to_frame().to_dict("list"))
    back = LearningCurve.from_frame(frame, learner="logistic", regularization=10.0)
    np.testing.assert_array_equal(back.betas, BETAS)
    back.values["nu"][0] = 99.0  # copies: the frame is not changed through the curve
    assert frame["nu"].iloc[0] != 99.0


def test_from_frame_rejects_bad_input(logistic_curve):
    frame = logistic_curve.to_frame()
    plain = pd.DataFrame(frame.to_dict("list"))
    with pytest.raises(TypeError, match="frame must be a pandas DataFrame"):
        LearningCurve.from_frame(frame.to_dict())
    with pytest.raises(ValueError, match=r"frame lacks the column\(s\) \['nu'\]"):
        LearningCurve.from_frame(frame.drop(columns="nu"))
    with pytest.raises(ValueError, match="learner must be given"):
        LearningCurve.from_frame(plain, regularization=1.0)
    with pytest.raises(ValueError, match="regularization must be given"):
        LearningCurve.from_frame(plain, learner="x")
    with pytest.raises(TypeError, match="regularization must be a real number"):
        LearningCurve.from_frame(plain, learner="x", regularization="1")
    with pytest.raises(TypeError, match="learner must be a str"):
        LearningCurve.from_frame(plain, learner=1, regularization=1.0)
    with pytest.raises(ValueError, match=r"frame\['beta'\] must lie in \[0, 1\]"):
        LearningCurve.from_frame(frame.assign(beta=frame["beta"] + 1))
    with pytest.raises(ValueError, match=r"frame\['nu'\] must hold numbers"):
        LearningCurve.from_frame(frame.assign(nu="a"))


# ---------------------------------------------------------------------------- CSV files
def test_to_csv_read_csv_round_trip_is_exact(tmp_path, logistic_curve, svm_curve):
    for k, curve in enumerate((logistic_curve, svm_curve, awkward_curve())):
        path = curve.to_csv(tmp_path / f"c{k}.csv")
        assert path == tmp_path / f"c{k}.csv"
        back = LearningCurve.read_csv(path)
        assert back == curve
        assert back.events.dtypes.tolist() == curve.events.dtypes.tolist()
        assert type(back.params["C"]) is type(curve.params["C"])
    assert sorted(os.listdir(tmp_path)) == ["c0.csv", "c1.csv", "c2.csv"]  # no temporary file


def test_the_file_is_a_plain_table_after_its_comment_lines(tmp_path, svm_curve):
    path = svm_curve.to_csv(tmp_path / "c.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "# backdoor-curves learning curves, format 1"
    header = json.loads(lines[1][2:])
    assert header["learner"] == "linear SVM" and header["params"] == svm_curve.params
    assert len(header["events"]["data"][0]) == len(svm_curve.events)
    table = pd.read_csv(path, comment="#")
    assert list(table.columns) == ["curve", "learner", "lambda", *CURVE_COLUMNS]
    np.testing.assert_array_equal(table["backdoor_loss"], svm_curve["backdoor_loss"])


def test_several_curves_in_one_file(tmp_path, logistic_curve, svm_curve):
    curves = [logistic_curve, svm_curve, awkward_curve()]
    path = write_curves(curves, tmp_path / "curves.csv")
    back = read_curves(path)
    assert isinstance(back, list) and len(back) == 3
    assert all(a == b for a, b in zip(back, curves, strict=True))
    with pytest.raises(ValueError, match=r"holds 3 curves, not one: read them with .*read_curves"):
        LearningCurve.read_csv(path)
    assert read_curves(write_curves(logistic_curve, tmp_path / "one.csv")) == [logistic_curve]
    assert read_curves(write_curves([], tmp_path / "none.csv")) == []


def test_read_curves_reads_the_demo_curves_csv(tmp_path, tiny):
    specs = [("strong", LearnerSpec("logistic", 0.1)), ("weak", LearnerSpec("RBF SVM", 10.0, 5e-3))]
    curves, status = compute_curves(tiny, specs, betas=BETAS)
    path = tmp_path / "curves.csv"
    curves_table(curves, status).to_csv(path, index=False)  # as run_demo writes it
    back = read_curves(path)
    assert len(back) == 2
    for read, curve, (_, spec) in zip(back, curves, specs, strict=True):
        np.testing.assert_array_equal(read.betas, curve.betas)
        assert read.values.keys() == curve.values.keys()
        for column in read.values:
            np.testing.assert_array_equal(read[column], curve[column])  # exact
        assert read.learner == spec.learner  # the file's learner column
        assert read.regularization == curve.regularization
    assert back[0].params == {"C": 0.1, "strength": "strong"}
    assert back[1].params == {"C": 10.0, "gamma": 5e-3, "strength": "weak"}
    with pytest.raises(ValueError, match="holds 2 curves"):
        LearningCurve.read_csv(path)


def test_read_curves_of_a_plain_table(tmp_path, logistic_curve):
    path = tmp_path / "plain.csv"
    logistic_curve.to_frame().to_csv(path, index=False)
    (curve,) = read_curves(path)
    np.testing.assert_array_equal(curve["backdoor_loss"], logistic_curve["backdoor_loss"])
    assert curve.learner == "" and np.isnan(curve.regularization)
    nn_like = logistic_curve.to_frame()
    nn_like.insert(0, "model", "small_cnn")
    nn_like.insert(1, "epochs", 2)
    nn_like.to_csv(path, index=False)
    (curve,) = read_curves(path)
    assert curve.learner == "model=small_cnn, epochs=2"
    assert curve.params == {"model": "small_cnn", "epochs": 2}


def test_csv_errors_name_the_argument(tmp_path, logistic_curve):
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        logistic_curve.to_csv(3)
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        read_curves(None)
    with pytest.raises(TypeError, match=r"curves\[1\] must be a LearningCurve"):
        write_curves([logistic_curve, "x"], tmp_path / "x.csv")
    with pytest.raises(TypeError, match="curves must be a list of LearningCurve"):
        write_curves("x", tmp_path / "x.csv")
    odd = LearningCurve(
        logistic_curve.betas, logistic_curve.values, "x", 1.0, {"kernel": np.linalg.norm}
    )
    with pytest.raises(TypeError, match=r"curves\[0\]\.params\['kernel'\] must be a number"):
        write_curves([odd], tmp_path / "x.csv")
    assert os.listdir(tmp_path) == []
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="has no 'beta' column"):
        read_curves(tmp_path / "other.csv")
    damaged = logistic_curve.to_csv(tmp_path / "damaged.csv")
    lines = damaged.read_text().splitlines()
    damaged.write_text("\n".join([lines[0], lines[1][:40], *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match="header line 2 is not valid JSON"):
        read_curves(damaged)


# ---------------------------------------------------------------------------- slopes
@pytest.mark.parametrize("learner", [LogisticLearner(C=0.1), LinearSVMLearner(C=1.0)],
                         ids=["logistic", "linear_svm"])  # fmt: skip
def test_slope_to_dict_from_dict_round_trip_through_json(tiny, learner):
    slope = backdoor_slope(learner, tiny)
    data = slope.to_dict()
    for key in ("derivative", "score", "condition_number", "backdoor_loss_0", "lambda"):
        assert data[key] == getattr(slope, {"backdoor_loss_0": "backdoor_loss",
                                            "lambda": "regularization"}.get(key, key))  # fmt: skip
    assert data["learner"] == slope.learner and data["params"] == slope.params
    assert isinstance(data["dtheta_dbeta"], list)
    back = BackdoorSlope.from_dict(json.loads(json.dumps(data)))
    assert back == slope
    assert isinstance(back.details["dtheta_dbeta"], np.ndarray)
    if "n_margin" in slope.details:
        assert back.details["n_margin"] == slope.details["n_margin"]


def test_slope_from_dict_checks_its_input():
    data = {
        "derivative": -2.0, "condition_number": 10.0, "backdoor_loss_0": 1.0,
        "second_derivative": 0.5, "lambda": 0.1, "learner": "logistic",
    }  # fmt: skip
    slope = BackdoorSlope.from_dict(data)
    assert slope.score == pytest.approx(-2.0 / np.pi * np.arctan(-2.0))  # computed when missing
    assert slope.params == {} and slope.details == {}
    with pytest.raises(TypeError, match="data must be a dict"):
        BackdoorSlope.from_dict([1, 2])
    with pytest.raises(ValueError, match=r"data lacks the key\(s\) \['lambda'\]"):
        BackdoorSlope.from_dict({k: v for k, v in data.items() if k != "lambda"})
    with pytest.raises(TypeError, match=r"data\['derivative'\] must be a real number"):
        BackdoorSlope.from_dict({**data, "derivative": "steep"})
    with pytest.raises(TypeError, match=r"data\['params'\] must be a dict"):
        BackdoorSlope.from_dict({**data, "params": [1]})
    assert slope != BackdoorSlope.from_dict({**data, "derivative": -2.5})
