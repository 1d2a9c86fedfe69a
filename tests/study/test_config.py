"""Grid-study configuration files (backdoor_curves.study.config): validation naming the key, the
data they name, the extractors hand-off, and every shipped experiment configuration."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

import backdoor_curves as bc
from backdoor_curves.study.config import load_config, make_data, parse_config

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def minimal(**extra):
    raw = {"data": {"n_train": 120, "n_test": 60}, "learner": [{"kind": "logistic", "C": [1.0]}]}
    raw.update(extra)
    return raw


def test_parse_fills_grids_and_defaults():
    cfg = parse_config(
        minimal(
            study={"betas": 5, "title": "t"},
            grid={"fraction": [0.1, 0.2], "random_state": [1, 2]},
            learner=[
                {"kind": "rbf_svm", "C": {"geomspace": [0.1, 10, 3]}, "gamma": 0.01},
                {"kind": "ridge", "name": "rc", "alpha": [1, 2]},
            ],
        )
    )
    assert list(cfg.learners) == ["RBF SVM", "rc"]
    assert cfg.param_grid[0]["C"] == pytest.approx([0.1, 1.0, 10.0])
    assert cfg.param_grid[0]["gamma"] == [0.01] and cfg.param_grid[1]["alpha"] == [1, 2]
    assert cfg.param_grid[1]["fraction"] == [0.1, 0.2] and cfg.param_grid[1]["learner"] == ["rc"]
    assert np.array_equal(cfg.betas, bc.default_betas(5))
    assert cfg.data == {"n_train": 120, "n_test": 60, "dataset": "mnist"} and cfg.random_state == 0


@pytest.mark.parametrize(
    "raw, key",
    [
        (minimal(extra={}), "'extra'"),
        (minimal(study={"bogus": 1}), "'study.bogus'"),
        (minimal(study={"betas": 1}), "'study.betas'"),
        (minimal(study={"betas": [0.5, 2.0]}), "'study.betas'"),
        ({"data": {"fraction": "ten"}, "learner": [{"kind": "logistic"}]}, "'data.fraction'"),
        ({"data": {"colour": 1}, "learner": [{"kind": "logistic"}]}, "'data.colour'"),
        ({"data": {"digits": [7]}, "learner": [{"kind": "logistic"}]}, "'data.digits'"),
        ({"data": {"random_state": -1}, "learner": [{"kind": "logistic"}]}, "'data.random_state'"),
        (minimal(grid={"fraction": []}), "'grid.fraction'"),
        (minimal(grid={"size": [3, "6"]}), "'grid.size\\[1\\]'"),
        (minimal(grid={"dataset": ["mnist"]}), "'grid.dataset'"),
        (minimal(grid={"digits": [7, 1]}), "'grid.digits\\[0\\]'"),
        (minimal(grid={"digits": []}), "'grid.digits'"),
        (minimal(grid={"gamma": [1.0]}), "'grid.gamma'"),
        (minimal(learner=[]), "'learner'"),
        ({"data": {}}, "'learner'"),
        (minimal(learner=[{"kind": "forest"}]), "'learner\\[0\\].kind'"),
        (minimal(learner=[{"kind": "logistic", "gamma": 1.0}]), "'learner\\[0\\].gamma'"),
        (minimal(learner=[{"kind": "logistic", "C": []}]), "'learner\\[0\\].C'"),
        (minimal(learner=[{"kind": "logistic", "C": "big"}]), "'learner\\[0\\].C'"),
        (minimal(learner=[{"kind": "logistic", "C": {"geomspace": [1, 2]}}]), "'learner\\[0\\].C'"),
        (minimal(learner=[{"kind": "logistic", "C": {"range": [1, 2, 3]}}]), "'learner\\[0\\].C'"),
        (minimal(learner=[{"kind": "ridge"}, {"kind": "ridge"}]), "'learner\\[1\\].name'"),
        # values, through the learners' own validate_params() and the data checks (issue #14)
        (minimal(learner=[{"kind": "logistic", "C": [-1, 1]}]), "'learner\\[0\\].C'"),
        (minimal(learner=[{"kind": "logistic", "max_iter": 2.5}]), "'learner\\[0\\].max_iter'"),
        (minimal(learner=[{"kind": "rbf_svm", "gamma": 0.0}]), "'learner\\[0\\].gamma'"),
        (minimal(learner=[{"kind": "ridge", "alpha": float("inf")}]), "'learner\\[0\\].alpha'"),
        ({"data": {"fraction": 0}, "learner": [{"kind": "logistic"}]}, "'data.fraction'"),
        ({"data": {"fraction": 1.0}, "learner": [{"kind": "logistic"}]}, "'data.fraction'"),
        ({"data": {"digits": [7, 7]}, "learner": [{"kind": "logistic"}]}, "'data.digits'"),
        ({"data": {"digits": [7, 10]}, "learner": [{"kind": "logistic"}]}, "'data.digits'"),
        ({"data": {"size": 0}, "learner": [{"kind": "logistic"}]}, "'data.size'"),
        ({"data": {"size": 29}, "learner": [{"kind": "logistic"}]}, "'data.size'"),
        ({"data": {"trigger": "refool"}, "learner": [{"kind": "logistic"}]}, "'data.trigger'"),
        ({"data": {"trigger": "invisible", "size": 3}, "learner": [{"kind": "logistic"}]},
         "'data.size'"),
        ({"data": {"intensity": 2.0, "trigger": "invisible"}, "learner": [{"kind": "logistic"}]},
         "'data.intensity'"),
        ({"data": {"n_train": 751}, "learner": [{"kind": "logistic"}]}, "'data.n_train'"),
        ({"data": {"test_size": 0.9995}, "learner": [{"kind": "logistic"}]}, "'data.test_size'"),
        ({"data": {"split_seed": -3}, "learner": [{"kind": "logistic"}]}, "'data.split_seed'"),
        ({"data": {"n_train": 20, "fraction": 0.01}, "learner": [{"kind": "logistic"}]},
         "'data.fraction'"),
        (minimal(grid={"fraction": [0.1, 0.001]}), "'grid.fraction'"),
        (minimal(grid={"random_state": [1, -1]}), "'grid.random_state'"),
        (minimal(grid={"digits": [[7, 1], [3, 3]]}), "'grid.digits'"),
        (minimal(data={"trigger": "invisible"}, grid={"size": [2, 3]}), "'grid.size'"),
        ({"data": {"dataset": "svhn"}, "learner": [{"kind": "logistic"}]}, "'data.dataset'"),
        ({"data": {"dataset": 3}, "learner": [{"kind": "logistic"}]}, "'data.dataset'"),
    ],
)  # fmt: skip
def test_bad_configs_name_the_key(raw, key):
    with pytest.raises(ValueError, match=f"config key {key}"):
        parse_config(raw)


def test_class_pairs_can_be_swept():
    cfg = parse_config(
        {
            "data": {"n_train": 100, "n_test": 40, "size": 2},
            "grid": {"digits": [[7, 1], [3, 0]]},
            "learner": [{"kind": "ridge", "alpha": [1.0]}],
        }
    )
    table = cfg.run()
    assert table["digits"].tolist() == [(7, 1), (3, 0)] and (table["error"] == "").all()
    for (_, row), pair in zip(table.iterrows(), [(7, 1), (3, 0)], strict=True):
        data = make_data(random_state=0, digits=pair, n_train=100, n_test=40, size=2)
        slope = bc.backdoor_slope(bc.RidgeLearner(alpha=1.0), data)
        assert row["derivative"] == slope.derivative


def test_load_config_reads_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nn_train = 120\n[[learner]]\nkind = "linear_svm"\nC = [0.1, 1]\n')
    cfg = load_config(path)
    assert cfg.source == str(path) and list(cfg.learners) == ["linear SVM"]
    path.write_text("[data\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(path)


def test_make_data_is_the_embedded_mnist_pair():
    data = make_data(random_state=4, n_train=100, n_test=30, size=2, fraction=0.2)
    X_train, y_train, X_test, y_test = bc.load_mnist_pair((7, 1))
    expected = bc.poison(
        X_train[:100], y_train[:100], X_test[:30], y_test[:30],
        trigger="badnets", fraction=0.2, random_state=4, size=2,
    )  # fmt: skip
    for name in ("X_clean", "y_clean", "X_poison", "y_poison", "X_test_bd", "y_test_bd"):
        assert np.array_equal(getattr(data, name), getattr(expected, name))
    assert data.n_poison == 20
    with pytest.raises(ValueError, match="unknown \\[data\\] key"):
        make_data(random_state=0, colour="red")


def test_other_datasets_go_to_extractors(monkeypatch, tiny):
    calls = []

    def load_backdoor_data(**table):
        calls.append(table)
        return tiny

    monkeypatch.setitem(
        sys.modules, "extractors", types.SimpleNamespace(load_backdoor_data=load_backdoor_data)
    )
    raw = {
        "data": {"dataset": "cifar10", "pair": [0, 9], "size": 8},
        "grid": {"fraction": [0.1]},
        "learner": [{"kind": "logistic", "C": [1.0]}],
    }
    table = parse_config(raw).run(n_jobs=1)
    assert calls == [{"dataset": "cifar10", "pair": [0, 9], "size": 8, "fraction": 0.1,
                      "random_state": 0}]  # fmt: skip
    assert table["error"].tolist() == [""]


@pytest.mark.parametrize("module", [None, types.SimpleNamespace()], ids=["missing", "no-loader"])
def test_other_datasets_need_the_torch_extra(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "extractors", module)
    cfg = parse_config({"data": {"dataset": "imagenette"}, "learner": [{"kind": "ridge"}]})
    with pytest.raises(ImportError, match="torch extra"):
        cfg.run(n_jobs=1)


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.toml")), ids=lambda p: p.name)
def test_experiment_configs_are_valid(path):
    cfg = load_config(path)
    assert cfg.learners and cfg.data["dataset"] == "mnist"
    assert path.name in (EXPERIMENTS / "README.md").read_text()


def test_a_grid_value_error_names_the_other_swept_values():
    raw = minimal(data={"n_train": 50}, grid={"size": [2, 3], "fraction": [0.1, 0.01]})
    with pytest.raises(ValueError, match=r"'grid.fraction'.*poisoning set would be empty.*size=2"):
        parse_config(raw)


def test_image_datasets_check_their_own_keys_and_classes():
    # the loader's keys are its named keyword parameters (extractors.load_backdoor_data takes
    # **unknown only to refuse them): digits is an MNIST key, not a CIFAR-10 one
    pytest.importorskip("extractors")
    base = {"dataset": "cifar10", "root": "data"}
    with pytest.raises(ValueError, match=r"config key 'data.digits': unknown key.*'classes'"):
        parse_config({"data": {**base, "digits": [7, 1]}, "learner": [{"kind": "ridge"}]})
    with pytest.raises(ValueError, match="config key 'grid.digits'"):
        parse_config({"data": base, "grid": {"digits": [[7, 1]]}, "learner": [{"kind": "ridge"}]})
    with pytest.raises(ValueError, match=r"config key 'data.classes'.*two different"):
        parse_config(
            {"data": {**base, "classes": ["frog", "frog"]}, "learner": [{"kind": "ridge"}]}
        )
    with pytest.raises(ValueError, match="config key 'data.fraction'"):
        parse_config({"data": {**base, "fraction": 0}, "learner": [{"kind": "ridge"}]})
    cfg = parse_config(
        {"data": {**base, "classes": ["airplane", "frog"]}, "learner": [{"kind": "ridge"}]}
    )
    assert cfg.data["classes"] == ["airplane", "frog"]


def test_validation_reads_no_digit(monkeypatch):
    # every check runs on the table alone: the embedded digits are not read at load time
    from backdoor_curves.datasets import mnist

    def refuse(*args, **kwargs):
        raise AssertionError("the digits were read while validating")

    monkeypatch.setattr(mnist, "_read_mnist_5k", refuse)
    cfg = parse_config(minimal(grid={"fraction": [0.05, 0.2], "digits": [[7, 1], [3, 8]]}))
    assert len(cfg.param_grid[0]["digits"]) == 2


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("features/*.toml")), ids=lambda p: p.name)
def test_feature_configs_are_valid(path):
    # validated against extractors.load_backdoor_data's keys and the class names, unloaded
    pytest.importorskip("extractors")
    cfg = load_config(path)
    assert cfg.data["dataset"] in ("cifar10", "imagenette") and len(cfg.learners) == 4
