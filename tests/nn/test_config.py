"""backdoor_curves.nn.config: the TOML configurations of ``backdoor-curves nn``.

Every shipped configuration parses; every kind of error is a ValueError naming the key; the
parsed configuration builds the data, the models and the training configurations it describes.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backdoor_curves.data import ImageBackdoorData  # noqa: E402
from backdoor_curves.nn.config import (  # noqa: E402
    NNConfig,
    load_nn_config,
    parse_nn_config,
)
from backdoor_curves.nn.models import MODEL_KINDS, SmallCNN  # noqa: E402
from backdoor_curves.nn.train import TrainConfig  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments" / "nn"
SHIPPED = sorted(EXPERIMENTS.glob("*.toml"))

BASE = {
    "study": {"title": "t"},
    "data": {"n_train": 200, "n_test": 100, "pool": 2, "size": 3},
    "model": {"kind": "small_cnn", "width": 4},
    "train": {"epochs": [1, 2], "batch_size": 32, "lr": 0.05},
    "curve": {"betas": [0.0, 0.5, 1.0]},
    "slope": {"h": [0.1, 1.0], "seeds": [0, 1], "exact": True},
    "tracking": {"budget": 64, "layers": ["conv1", "fc"]},
}


def with_change(path: str, value, *, delete: bool = False) -> dict:
    """BASE with ``value`` at the dotted ``path`` (or that key deleted)."""
    raw = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    if delete:
        node.pop(last, None)
    else:
        node[last] = value
    return raw


def test_shipped_configs_exist_and_parse():
    assert {p.name for p in SHIPPED} >= {
        "mnist_badnets_cpu.toml",
        "imagenette_resnet_table1.toml",
    }
    for path in SHIPPED:
        config = load_nn_config(path)
        assert isinstance(config, NNConfig) and config.source == str(path)
        assert config.models and config.epochs == tuple(sorted(config.epochs))


def test_cpu_config_is_the_issue_experiment():
    config = load_nn_config(EXPERIMENTS / "mnist_badnets_cpu.toml")
    data = config.data
    assert data["dataset"] == "mnist" and data["mode"] == "all-to-one"
    assert data["trigger"] == "badnets" and data["fraction"] == 0.1
    assert len(config.epochs) == 2 and len(config.slope.h) == 3 and config.slope.exact
    assert config.tracking.budget == 1000 and config.tracking.epochs >= 5
    assert config.train.optimizer == "sgd"


def test_gpu_config_is_table_1_layout():
    config = load_nn_config(EXPERIMENTS / "imagenette_resnet_table1.toml")
    assert [m.kind for m in config.models] == ["resnet18", "resnet50"]
    assert all(m.weights() == "imagenet" for m in config.models)
    assert config.grid == {"fraction": (0.05, 0.15)}
    assert config.epochs == (10, 50) and len(config.slope.h) >= 3
    assert [s["fraction"] for s in config.settings()] == [0.05, 0.15]


def test_parse_fills_defaults_and_builds_the_parts():
    config = parse_nn_config(BASE, source="mem")
    assert config.title == "t" and config.source == "mem"
    assert config.data["mode"] == "all-to-one" and config.data["target"] == 0
    assert config.data["random_state"] == 0 and config.data["exclude_target"] is True
    assert config.epochs == (1, 2) and config.train == TrainConfig(epochs=2, batch_size=32, lr=0.05)
    assert config.betas == (0.0, 0.5, 1.0)
    assert config.slope.h == (0.1, 1.0) and config.slope.seeds == (0, 1)
    assert config.tracking.epochs == 2  # default: the largest budget
    assert config.tracking.layers == ("conv1", "fc")
    assert config.settings() == [{}]
    assert config.train_config(1, seed=3) == TrainConfig(epochs=1, batch_size=32, lr=0.05, seed=3)
    data = config.make_data()
    assert isinstance(data, ImageBackdoorData)
    assert data.X_train.shape == (200, 14, 14) and data.n_classes == 10
    assert data.n_poison == 20 and data.target == 0
    factory = config.models[0].factory(data)
    model = factory()
    assert isinstance(model, SmallCNN) and model.width == 4 and model.in_channels == 1
    assert model(torch.zeros(2, 1, 14, 14)).shape == (2, 10)
    config.check_available()  # the embedded digits: nothing to fetch


def test_defaults_without_optional_sections():
    config = parse_nn_config({"model": {"kind": "small_cnn"}})
    assert config.slope is None and config.tracking is None and config.grid == {}
    assert config.models[0].name == "small_cnn" and config.models[0].params == {}
    assert config.epochs == (3,) and len(config.betas) == 6
    assert parse_nn_config({**BASE, "curve": {"betas": 4}}).betas[0] == 0.0


def test_grid_and_several_models():
    raw = copy.deepcopy(BASE)
    raw["grid"] = {"fraction": [0.05, 0.2], "random_state": [0, 1]}
    raw["model"] = [
        {"kind": "small_cnn", "width": 4, "name": "narrow"},
        {"kind": "small_cnn", "width": 8, "name": "wide"},
    ]
    config = parse_nn_config(raw)
    assert [m.name for m in config.models] == ["narrow", "wide"]
    assert config.settings() == [
        {"fraction": 0.05, "random_state": 0},
        {"fraction": 0.05, "random_state": 1},
        {"fraction": 0.2, "random_state": 0},
        {"fraction": 0.2, "random_state": 1},
    ]
    assert config.data_table(config.settings()[3])["fraction"] == 0.2


def test_model_kinds_registry():
    assert {"small_cnn", "resnet18", "resnet50"} <= set(MODEL_KINDS)
    model = MODEL_KINDS["small_cnn"](n_classes=3, in_channels=2, width=2)
    assert model(torch.zeros(1, 2, 14, 14)).shape == (1, 3)
    with pytest.raises(ValueError, match="in_channels"):
        MODEL_KINDS["resnet18"](n_classes=10, in_channels=2)


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        ("extra", {}, "extra"),
        ("study.subtitle", "x", "study.subtitle"),
        ("study.title", 3, "study.title"),
        ("data.dataset", "svhn", "data.dataset"),
        ("data.colour", 1, "data.colour"),
        ("data.fraction", "0.1", "data.fraction"),
        ("data.fraction", 1.5, "data.fraction"),
        ("data.n_train", 2.5, "data.n_train"),
        ("data.n_test", 3, "data.n_test"),
        ("data.pool", 3, "data.pool"),
        ("data.target", 10, "data.target"),
        ("data.mode", "some-to-one", "data.mode"),
        ("data.trigger", "refool", "data.trigger"),
        ("data.intensity", 0.3, "data.intensity"),  # not a BadNets parameter
        ("data.size", 0, "data.size"),
        ("data.exclude_target", 1, "data.exclude_target"),
        ("data.random_state", -1, "data.random_state"),
        ("data.root", "x", "data.root"),  # only for imagenette
        ("grid.dataset", ["mnist"], "grid.dataset"),
        ("grid.fraction", 0.1, "grid.fraction"),
        ("grid.fraction", [0.1, 2.0], "grid.fraction"),
        ("grid.size", [3, "4"], "grid.size[1]"),
        ("model.kind", "vgg", "model.kind"),
        ("model.depth", 3, "model.depth"),
        ("model.width", "8", "model.width"),
        ("model.width", 0, "model.width"),
        ("model.name", "", "model.name"),
        ("train.epochs", [], "train.epochs"),
        ("train.epochs", [2, 2], "train.epochs"),
        ("train.epochs", 0, "train.epochs"),
        ("train.lr", -1.0, "train.lr"),
        ("train.lr", "fast", "train.lr"),
        ("train.momentum", 1.0, "train.momentum"),
        ("train.batch_size", 0, "train.batch_size"),
        ("train.optimizer", "lbfgs", "train.optimizer"),
        ("train.schedule", "cos", "train.schedule"),
        ("curve.betas", [0.0, 1.5], "curve.betas"),
        ("curve.betas", 1, "curve.betas"),
        ("curve.betas", [0.0, 0.0], "curve.betas"),
        ("curve.points", 3, "curve.points"),
        ("slope.h", [0.0, 1.0], "slope.h"),
        ("slope.h", [0.1, 0.1], "slope.h"),
        ("slope.seeds", [-1], "slope.seeds"),
        ("slope.seeds", [], "slope.seeds"),
        ("slope.exact", "yes", "slope.exact"),
        ("slope.step", 0.1, "slope.step"),
        ("tracking.budget", 0, "tracking.budget"),
        ("tracking.epochs", 1.5, "tracking.epochs"),
        ("tracking.eta", 1.0, "tracking.eta"),
        ("tracking.layers", "conv1", "tracking.layers"),
        ("tracking.layers", [], "tracking.layers"),
        ("tracking.loss_samples", -1, "tracking.loss_samples"),
        ("tracking.every", 2, "tracking.every"),
    ],
)
def test_errors_name_the_key(path, value, key):
    with pytest.raises(ValueError, match="config key " + re.escape(repr(key))):
        parse_nn_config(with_change(path, value))


def test_structural_errors_name_the_key():
    with pytest.raises(ValueError, match="config key 'model'"):
        parse_nn_config(with_change("model", None, delete=True))
    with pytest.raises(ValueError, match="config key 'data'"):
        parse_nn_config({**BASE, "data": [1, 2]})
    raw = copy.deepcopy(BASE)
    raw["model"] = [{"kind": "small_cnn"}, {"kind": "small_cnn"}]
    with pytest.raises(ValueError, match=r"config key 'model\[1\].name'.*duplicate"):
        parse_nn_config(raw)
    raw["model"] = [{"kind": "small_cnn"}, {"kind": "nope"}]
    with pytest.raises(ValueError, match=r"config key 'model\[1\].kind'"):
        parse_nn_config(raw)
    raw = with_change("train.optimizer", "adam")
    with pytest.raises(ValueError, match="config key 'slope.exact'.*sgd"):
        parse_nn_config(raw)
    raw = with_change("data", {"dataset": "imagenette"})
    with pytest.raises(ValueError, match="config key 'data.root'.*imagenette2-320"):
        parse_nn_config(raw)
    raw = with_change("data", {"dataset": "imagenette", "root": "x", "pool": 2})
    with pytest.raises(ValueError, match="config key 'data.pool'"):
        parse_nn_config(raw)


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model\nkind = 1\n")
    with pytest.raises(ValueError, match="bad.toml: not valid TOML"):
        load_nn_config(path)


def test_unknown_layer_fails_when_tracking_starts():
    config = parse_nn_config(with_change("tracking.layers", ["conv9"]))
    data = config.make_data()
    from backdoor_curves.nn.train import train

    tracker = config.tracking.tracker()
    with pytest.raises(ValueError, match="conv9"):
        train(
            config.models[0].factory(data), data, 1.0, config.train_config(1), callbacks=[tracker]
        )


def test_imagenette_missing_files_fail_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    raw = {
        "data": {"dataset": "imagenette", "root": str(tmp_path / "nothing")},
        "model": [
            {"kind": "resnet18", "weights": "imagenet"},
            {"kind": "resnet50", "weights": "none"},
        ],
    }
    config = parse_nn_config(raw)
    assert config.models[1].weights() is None
    with pytest.raises(FileNotFoundError) as info:
        config.check_available()
    message = str(info.value)
    assert "imagenette2-320" in message and str(tmp_path / "nothing") in message
    assert "resnet18-f37072fd.pth" in message and "resnet50" not in message
    with pytest.raises(FileNotFoundError, match="imagenette2-320"):
        config.make_data()


def test_all_to_all_and_invisible_trigger():
    raw = with_change("data", {"n_train": 200, "n_test": 100, "pool": 2, "mode": "all-to-all",
                               "trigger": "invisible", "intensity": 0.2})  # fmt: skip
    data = parse_nn_config(raw).make_data()
    assert data.mode == "all-to-all" and data.target is None
    assert np.array_equal(data.y_train[data.poisoned], (data.y_source[data.poisoned] + 1) % 10)
