"""load_backdoor_data: load -> poison images -> extract -> BackdoorData, and its key checks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from extractor_helpers import (  # noqa: F401
    empty_torch_home,
    offline,
    write_idx,
    write_imagenette,
)

import backdoor_curves as bc
from extractors import DATA_KEYS, load_backdoor_data


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="'colour'.*valid keys"):
        load_backdoor_data(dataset="mnist", colour="red")


def test_data_keys_match_the_signature():
    import inspect

    from backdoor_curves.attacks import trigger_params

    params = inspect.signature(load_backdoor_data).parameters
    named = tuple(p for p in params if p != "trigger_params")
    assert (*named, *trigger_params()) == DATA_KEYS and load_backdoor_data.data_keys == DATA_KEYS


@pytest.mark.parametrize("trigger", ["badnets", "invisible"])
def test_pixels_equal_poison(trigger):
    """extractor='none' on the embedded MNIST reproduces backdoor_curves.poison exactly."""
    params = {"size": 4, "trigger_seed": 2} if trigger == "badnets" else {"intensity": 0.2}
    data = load_backdoor_data(
        dataset="mnist", classes=(3, 0), trigger=trigger, fraction=0.2, random_state=5, **params
    )
    trig = bc.BadNetsPatch(4, 2) if trigger == "badnets" else bc.InvisibleGrid(0.2)
    ref = bc.poison(*bc.load_mnist_pair((3, 0)), trigger=trig, fraction=0.2, random_state=5)
    for name in ("X_clean", "y_clean", "X_poison", "y_poison", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(data, name), getattr(ref, name))
    np.testing.assert_array_equal(data.X_test_bd, ref.X_test_bd)
    np.testing.assert_array_equal(data.y_test_bd, ref.y_test_bd)
    assert data.image_shape == (28, 28)


def test_mnist_digits_as_strings():
    a = load_backdoor_data(dataset="mnist", classes=("3", "0"), n_train=40, n_test=10)
    b = load_backdoor_data(dataset="mnist", classes=(3, 0), n_train=40, n_test=10)
    np.testing.assert_array_equal(a.X_poison, b.X_poison)
    assert a.classes.tolist() == [0, 3]


def test_subsample_sizes_and_seed():
    data = load_backdoor_data(dataset="mnist", n_train=100, n_test=40, fraction=0.1)
    assert (data.n_clean, data.n_poison, len(data.y_test)) == (90, 10, 40)
    assert np.sum(data.y_test == 7) == 20
    again = load_backdoor_data(dataset="mnist", n_train=100, n_test=40, fraction=0.1)
    np.testing.assert_array_equal(data.X_poison, again.X_poison)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dataset": "svhn"}, ValueError, "dataset"),
        ({"extractor": "vgg"}, ValueError, "extractor"),
        ({"trigger": "refool"}, ValueError, "trigger"),
        ({"trigger": "invisible", "size": 3}, ValueError, "size"),
        ({"trigger_seed": 3, "trigger": "invisible"}, ValueError, "trigger_seed"),
        ({"trigger_seed": -1}, ValueError, "^trigger_seed must be a non-negative int"),
        ({"random_state": True}, TypeError, "^random_state must be a non-negative int"),
        ({"fraction": 0.0}, ValueError, "fraction"),
        ({"fraction": 0.001, "n_train": 100}, ValueError, "fraction"),
        ({"n_train": 5000}, ValueError, "n=5000"),
        ({"classes": (7, 7)}, ValueError, "different"),
        ({"dataset": "cifar10"}, ValueError, "root"),
        ({"n_train": 10.5}, TypeError, "n_train"),
        ({"n_test": 1}, ValueError, "n_test"),
        ({"classes": ("7", "eight")}, ValueError, "eight"),
    ],
)
def test_bad_keys(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_backdoor_data(**kwargs)


torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")


@pytest.mark.usefixtures("offline")
def test_missing_weights_fail_before_loading_data(tmp_path):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        load_backdoor_data(dataset="cifar10", classes=("airplane", "frog"), root=tmp_path)
    assert time.perf_counter() - start < 5


def test_features_of_embedded_mnist_with_cache(tmp_path, monkeypatch):
    kw = {
        "dataset": "mnist", "extractor": "resnet18", "weights": None, "n_train": 30,
        "n_test": 6, "fraction": 0.2, "cache_dir": tmp_path, "batch_size": 16,
    }  # fmt: skip
    data = load_backdoor_data(**kw)
    assert (data.n_clean, data.n_poison, data.n_features) == (24, 6, 512)
    assert data.X_test_bd.shape == (6, 512) and data.image_shape is None
    assert len(list(tmp_path.glob("*.feat"))) == 4  # D, P, V, V_t

    from extractors.features import ResNetFeatures

    def boom(self, images):
        raise AssertionError("recomputed")

    monkeypatch.setattr(ResNetFeatures, "_extract", boom)
    again = load_backdoor_data(**kw)
    np.testing.assert_array_equal(again.X_poison, data.X_poison)
    # the learners run on the features with the same API as on pixels
    slope = bc.backdoor_slope(bc.RidgeLearner(alpha=10.0), data)
    assert np.isfinite(slope.derivative)


def test_mnist_full_and_imagenette_pipelines(tmp_path):
    write_idx(tmp_path)
    data = load_backdoor_data(
        dataset="mnist-full", root=tmp_path, n_train=40, n_test=10, download=False
    )
    assert data.n_features == 784 and data.n_poison == 4 and set(data.classes) == {1, 7}
    write_imagenette(tmp_path, per_class=5)
    data = load_backdoor_data(
        dataset="imagenette", root=tmp_path, extractor="alexnet", weights=None, n_train=10,
        n_test=4, fraction=0.2, trigger="badnets", size=20, download=False,
    )  # fmt: skip
    assert (data.n_clean, data.n_poison, data.n_features) == (8, 2, 4096)
    assert data.classes.tolist() == ["garbage truck", "tench"]
    assert np.all(data.X_clean >= 0)
