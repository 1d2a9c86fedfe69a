"""backdoor_curves.study.loaders: data loaders by ``[data] dataset`` name, "mnist" built in,
the others found through the entry-point group ``backdoor_curves.data_loaders``."""

from __future__ import annotations

import subprocess
import sys
import types
from importlib import metadata

import numpy as np
import pytest

from backdoor_curves.study import loaders as registry
from backdoor_curves.study.config import make_data
from backdoor_curves.study.loaders import (
    DATA_LOADER_GROUP,
    MNIST_KEYS,
    DataParameterError,
    check_data_params,
    data_keys,
    data_loader_names,
    get_data_loader,
    make_mnist_data,
)


def fake_entry_points(monkeypatch, **values):
    points = {
        name: metadata.EntryPoint(name=name, value=value, group=DATA_LOADER_GROUP)
        for name, value in values.items()
    }
    monkeypatch.setattr(registry, "_entry_points", lambda: points)


def test_mnist_is_built_in_and_the_image_sets_are_registered():
    # the image data sets come from this distribution's pyproject.toml entry points
    # (after editing them: pip install -e . to refresh the installed metadata)
    assert {"mnist", "mnist-full", "cifar10", "imagenette"} <= set(data_loader_names())
    assert get_data_loader("mnist") is make_mnist_data


def test_listing_the_names_imports_neither_extractors_nor_torch():
    code = (
        "import sys, backdoor_curves; "
        "from backdoor_curves.study.loaders import data_loader_names; "
        "assert 'cifar10' in data_loader_names(); "
        "print(sorted(m for m in ('extractors', 'torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"dataset = 'svhn' is not a known data set.*'mnist'"):
        get_data_loader("svhn")


def test_a_registered_plugin_is_imported_when_asked_for(monkeypatch, tiny):
    calls = []
    module = types.ModuleType("fake_svhn_plugin")

    def load(**table):
        calls.append(table)
        return tiny

    module.load = load
    monkeypatch.setitem(sys.modules, "fake_svhn_plugin", module)
    fake_entry_points(monkeypatch, svhn="fake_svhn_plugin:load")
    assert data_loader_names() == ("mnist", "svhn")
    assert get_data_loader("svhn") is load
    assert make_data(dataset="svhn", random_state=3, size=2) is tiny
    assert calls == [{"dataset": "svhn", "random_state": 3, "size": 2}]


@pytest.mark.parametrize("value", ["no_such_module_for_the_test:load", "types:no_such_loader"])
def test_a_plugin_that_cannot_be_imported_names_the_key_and_the_extra(monkeypatch, value):
    fake_entry_points(monkeypatch, cifar10=value)
    with pytest.raises(ImportError, match=rf"dataset = 'cifar10' needs {value}.*torch extra"):
        get_data_loader("cifar10")


def test_make_mnist_data_checks_its_keys():
    data = make_mnist_data(random_state=1, n_train=60, n_test=20, size=2, fraction=0.2)
    assert (data.n_clean, data.n_poison, data.image_shape) == (48, 12, (28, 28))
    assert np.all(np.isin(data.classes, [1, 7]))
    with pytest.raises(ValueError, match=r"unknown \[data\] key\(s\) \['colour'\]"):
        make_mnist_data(colour="red")
    with pytest.raises(ValueError, match="dataset='cifar10'"):
        make_mnist_data(dataset="cifar10")


# ---------------------------------------------------------------------------- checks
def test_check_data_params_names_the_key():
    ok = {"digits": [3, 8], "fraction": 0.2, "size": 4, "n_train": 100, "random_state": 2}
    check_data_params("mnist", ok)  # nothing is read
    cases = {
        "fraction": {"fraction": 0.0},
        "digits": {"digits": (7, 7)},
        "size": {"trigger": "invisible", "size": 3},
        "trigger": {"trigger": "refool"},
        "n_test": {"n_test": 300},
        "random_state": {"random_state": -1},
        "colour": {"colour": "red"},
    }
    for key, table in cases.items():
        with pytest.raises(DataParameterError, match=f"^{key}") as info:
            check_data_params("mnist", table)
        assert info.value.key == key
        assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    # a fraction too small for the training points: the same rule as poison()
    with pytest.raises(DataParameterError, match=r"0.01 of 60 training points is 0.6 < 1"):
        check_data_params("mnist", {"fraction": 0.01, "n_train": 60})


def test_make_mnist_data_checks_before_reading(monkeypatch):
    from backdoor_curves.datasets import mnist

    def refuse(*args, **kwargs):
        raise AssertionError("read")

    monkeypatch.setattr(mnist, "_read_mnist_5k", refuse)
    with pytest.raises(ValueError, match="fraction must lie strictly between 0 and 1"):
        make_mnist_data(fraction=0)
    with pytest.raises(ValueError, match="digits must be two different digits"):
        make_mnist_data(digits=[7, 7])


def test_data_keys_follow_the_loader(monkeypatch, tiny):
    module = types.ModuleType("fake_loader_plugin")

    def named(*, dataset, random_state=0, root=None, fraction=0.1, **unknown):
        return tiny

    def anything(**table):
        return tiny

    def declared(**table):
        return tiny

    declared.data_keys = ("root", "colour")
    module.named, module.anything, module.declared = named, anything, declared
    monkeypatch.setitem(sys.modules, "fake_loader_plugin", module)
    fake_entry_points(
        monkeypatch,
        a="fake_loader_plugin:named",
        b="fake_loader_plugin:anything",
        c="fake_loader_plugin:declared",
    )
    assert data_keys("a") == {"dataset", "random_state", "root", "fraction"}
    assert data_keys("b") is None
    assert data_keys("c") == {"dataset", "random_state", "root", "colour"}
    assert data_keys("mnist") == MNIST_KEYS
    with pytest.raises(DataParameterError, match="size is not a key of dataset 'a'"):
        check_data_params("a", {"size": 3})
    check_data_params("b", {"whatever": 1, "fraction": 0.5})
    with pytest.raises(DataParameterError, match="^fraction"):
        check_data_params("b", {"fraction": 1.5})  # the poisoning keys mean the same everywhere
    with pytest.raises(ValueError, match="not a known data set"):
        check_data_params("svhn", {})


def test_a_loader_that_cannot_be_imported_is_checked_without_its_keys(monkeypatch):
    fake_entry_points(monkeypatch, cifar10="no_such_module_for_the_test:load")
    check_data_params("cifar10", {"anything": 1})  # get_data_loader raises it when asked for
    with pytest.raises(DataParameterError, match="^fraction"):
        check_data_params("cifar10", {"fraction": 0})
