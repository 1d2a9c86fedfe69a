"""Every place that names triggers reads the registry TRIGGERS: poison(), poison_multiclass(),
the nn and grid-study configurations, the study loaders, the extractors pipeline and the CLI
accept each registered trigger with its parameters, and check those parameters naming the key.

Oracle: the poisoned images equal the trigger, built by name, applied to the chosen images."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import backdoor_curves as bc
from backdoor_curves.attacks import TRIGGERS, make_trigger, trigger_params

#: Each new trigger with non-default configuration parameters (TOML-expressible values only).
NEW = {
    "blend": {"alpha": 0.3, "pattern": "noise"},
    "sig": {"delta": 0.1, "frequency": 3, "combine": "blend"},
    "wanet": {"k": 3, "strength": 2.0, "noise_mode": True},
}
#: ...and every registered trigger (badnets and invisible too).
ALL = {"badnets": {"size": 2}, "invisible": {"intensity": 0.2}, **NEW}


def test_every_registered_trigger_is_exercised_here():
    """A trigger added to the registry (e.g. "dba") must be added to this module's tables."""
    assert set(TRIGGERS) <= set(ALL) | {"dba"}


# ---------------------------------------------------------------------------- poisoning
@pytest.fixture(scope="module")
def pair():
    X_train, y_train, X_test, y_test = bc.load_mnist_pair((7, 1))
    return X_train[:60], y_train[:60], X_test[:20], y_test[:20]


@pytest.mark.parametrize("name", sorted(ALL))
def test_poison_accepts_each_name(pair, name):
    X, y, X_te, y_te = pair
    data, idx = bc.poison(
        X, y, X_te, y_te, trigger=name, fraction=0.2, random_state=1, return_indices=True,
        **ALL[name],
    )  # fmt: skip
    trig = make_trigger(name, **ALL[name])
    classes = np.unique(y)
    expected_p = trig.apply(X[idx], y[idx], classes).reshape(len(idx), -1)
    np.testing.assert_array_equal(data.X_poison, expected_p)
    np.testing.assert_array_equal(data.X_test_bd, trig.apply(X_te, y_te, classes).reshape(20, -1))
    assert np.all(data.y_poison != y[idx])  # relabelled to the other class


@pytest.mark.parametrize("name", sorted(ALL))
def test_poison_multiclass_accepts_each_name(name):
    from backdoor_curves.datasets.mnist import load_mnist_multiclass

    X, y, X_te, y_te = load_mnist_multiclass(n_train=100, n_test=30, random_state=0, pool=2)
    data = bc.poison_multiclass(
        X, y, X_te, y_te, target=0, fraction=0.1, trigger=name, random_state=2, **ALL[name]
    )
    trig = make_trigger(name, **ALL[name])
    rows = data.poisoned
    X32 = X.astype(np.float32)
    expected = trig.apply(X32[rows], y[rows], np.arange(10)).astype(np.float32)
    np.testing.assert_array_equal(data.X_train[rows], expected)
    np.testing.assert_array_equal(data.X_train[~rows], X32[~rows])
    keep = y_te != 0
    expected_bd = trig.apply(X_te.astype(np.float32)[keep], y_te[keep], np.arange(10))
    np.testing.assert_array_equal(data.X_test_bd, expected_bd.astype(np.float32))


# ---------------------------------------------------------------------------- key sets
def test_config_key_sets_include_every_trigger_parameter():
    from backdoor_curves.nn import config as nn_config
    from backdoor_curves.study import config as study_config
    from backdoor_curves.study import loaders

    keys = set(trigger_params())
    assert keys <= set(nn_config._DATA_TYPES) and keys <= set(study_config._MNIST_TYPES)
    assert keys <= loaders.MNIST_KEYS and keys <= set(loaders.POISON_KEYS)
    for key, kind in trigger_params().items():
        assert nn_config._DATA_TYPES[key] is kind and study_config._MNIST_TYPES[key] is kind


def test_trigger_parameters_do_not_shadow_other_data_keys():
    """A trigger parameter named like another [data] key (mode, target, ...) would be read twice."""
    from backdoor_curves.nn import config as nn_config
    from backdoor_curves.study import loaders

    keys = set(trigger_params())
    nn_own = set(nn_config._DATA_TYPES) - keys
    study_own = loaders.MNIST_KEYS - keys
    try:  # the named keys of the extractors pipeline (batch_size, device, ...)
        import inspect

        from extractors import load_backdoor_data

        params = inspect.signature(load_backdoor_data).parameters.values()
        extractors_own = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    except ImportError:
        extractors_own = set()
    assert not keys & (nn_own | study_own | extractors_own)


def test_extractors_pipeline_reads_the_registry(pair):
    extractors = pytest.importorskip("extractors")
    from backdoor_curves.study.loaders import data_keys

    assert set(trigger_params()) <= set(extractors.DATA_KEYS)
    assert extractors.load_backdoor_data.data_keys == extractors.DATA_KEYS
    assert set(trigger_params()) <= data_keys("cifar10")


@pytest.mark.parametrize("name", sorted(NEW))
def test_extractors_pipeline_pixels_equal_poison(name):
    extractors = pytest.importorskip("extractors")
    data = extractors.load_backdoor_data(
        dataset="mnist", classes=(3, 0), n_train=60, n_test=20, trigger=name, fraction=0.2,
        random_state=5, trigger_seed=None if name == "sig" else 2, **NEW[name],
    )  # fmt: skip
    seed = {} if name == "sig" else {"random_state": 2}
    trig = make_trigger(name, **NEW[name], **seed)
    X_tr, y_tr, X_te, y_te = bc.load_mnist_pair((3, 0))
    every = trig.apply(X_tr, y_tr, [0, 3]).reshape(len(X_tr), -1)  # every training image
    assert data.n_poison == 12
    for i, row in enumerate(data.X_poison):  # each poisoned image: a training image, triggered
        assert (every == row).all(axis=1).any(), f"poisoned image {i} is not a triggered image"
    every_test = trig.apply(X_te, y_te, [0, 3]).reshape(len(X_te), -1)
    for row in data.X_test_bd:
        assert (every_test == row).all(axis=1).any()


def test_extractors_pipeline_refuses_a_parameter_of_another_trigger():
    extractors = pytest.importorskip("extractors")
    with pytest.raises(ValueError, match="alpha"):
        extractors.load_backdoor_data(dataset="mnist", trigger="sig", alpha=0.3)
    with pytest.raises(ValueError, match="'colour'.*valid keys"):
        extractors.load_backdoor_data(dataset="mnist", colour="red")


def test_cli_help_names_every_trigger():
    from backdoor_curves.cli import build_parser

    curve = build_parser()._subparsers._group_actions[0].choices["curve"]
    text = curve.format_help()
    for name in TRIGGERS:
        assert name in text


# ---------------------------------------------------------------------------- study config
def study_raw(**data):
    return {"data": {"n_train": 120, "n_test": 60, **data}, "learner": [{"kind": "ridge"}]}


@pytest.mark.parametrize("name", sorted(NEW))
def test_study_config_with_each_new_trigger(name):
    from backdoor_curves.study.config import parse_config

    cfg = parse_config(study_raw(trigger=name, **NEW[name]))
    data = cfg.data_factory()(random_state=3)
    X_train, y_train, X_test, y_test = bc.load_mnist_pair((7, 1))
    expected = bc.poison(
        X_train[:120], y_train[:120], X_test[:60], y_test[:60], trigger=name, fraction=0.1,
        random_state=3, **NEW[name],
    )  # fmt: skip
    np.testing.assert_array_equal(data.X_poison, expected.X_poison)
    np.testing.assert_array_equal(data.X_test_bd, expected.X_test_bd)


@pytest.mark.parametrize(
    ("data", "grid", "key"),
    [
        ({"trigger": "blend", "alpha": 1.5}, None, "data.alpha"),
        ({"trigger": "blend", "alpha": "0.2"}, None, "data.alpha"),
        ({"trigger": "blend", "pattern": "kitty"}, None, "data.pattern"),
        ({"trigger": "blend", "pattern": 3}, None, "data.pattern"),
        ({"trigger": "badnets", "alpha": 0.2}, None, "data.alpha"),
        ({"trigger": "sig", "delta": 0.0}, None, "data.delta"),
        ({"trigger": "sig", "frequency": -1}, None, "data.frequency"),
        ({"trigger": "sig", "combine": "mul"}, None, "data.combine"),
        ({"trigger": "wanet", "k": 29}, None, "data.k"),
        ({"trigger": "wanet", "k": 1}, None, "data.k"),
        ({"trigger": "wanet", "k": 2.5}, None, "data.k"),
        ({"trigger": "wanet", "strength": -1.0}, None, "data.strength"),
        ({"trigger": "wanet", "noise_mode": "yes"}, None, "data.noise_mode"),
        ({"trigger": "wanet", "noise_mode": 1}, None, "data.noise_mode"),
        ({"trigger": "blend"}, {"alpha": [0.2, 2.0]}, "grid.alpha"),
        ({"trigger": "wanet"}, {"k": [2, 30]}, "grid.k"),
    ],
)
def test_study_config_checks_trigger_keys(data, grid, key):
    from backdoor_curves.study.config import parse_config

    raw = study_raw(**data)
    if grid:
        raw["grid"] = grid
    with pytest.raises(ValueError, match=f"config key '{key}'"):
        parse_config(raw)


def test_study_loaders_check_trigger_keys():
    from backdoor_curves.study.loaders import DataParameterError, check_data_params

    with pytest.raises(DataParameterError, match="^k=29 is larger") as info:
        check_data_params("mnist", {"trigger": "wanet", "k": 29})
    assert info.value.key == "k"
    with pytest.raises(DataParameterError) as info:
        check_data_params("mnist", {"trigger": "invisible", "k": 3})
    assert info.value.key == "k"
    check_data_params("mnist", {"trigger": "wanet", "k": 28, "noise_mode": True})


# ---------------------------------------------------------------------------- nn config
NN_BASE = {
    "study": {"title": "t"},
    "data": {"n_train": 100, "n_test": 30, "pool": 2},
    "model": {"kind": "small_cnn", "width": 2},
    "train": {"epochs": [1], "batch_size": 32, "lr": 0.05},
    "curve": {"betas": [0.0, 1.0]},
}


def nn_raw(data=None, grid=None):
    raw = copy.deepcopy(NN_BASE)
    raw["data"].update(data or {})
    if grid:
        raw["grid"] = grid
    return raw


@pytest.mark.parametrize("name", sorted(NEW))
def test_nn_config_with_each_new_trigger(name):
    pytest.importorskip("torch")
    from backdoor_curves.datasets.mnist import load_mnist_multiclass
    from backdoor_curves.nn.config import parse_nn_config

    config = parse_nn_config(nn_raw({"trigger": name, **NEW[name]}))
    assert {k: config.data[k] for k in NEW[name]} == NEW[name]
    data = config.make_data()
    X, y, X_te, y_te = load_mnist_multiclass(n_train=100, n_test=30, random_state=0, pool=2)
    trig = make_trigger(name, **NEW[name])
    keep = y_te != 0
    expected = trig.apply(X_te.astype(np.float32)[keep], y_te[keep], np.arange(10))
    np.testing.assert_array_equal(data.X_test_bd, expected.astype(np.float32))


@pytest.mark.parametrize(
    ("data", "grid", "key"),
    [
        ({"trigger": "blend", "alpha": 1.5}, None, "data.alpha"),
        ({"trigger": "blend", "alpha": "0.2"}, None, "data.alpha"),
        ({"trigger": "blend", "pattern": "kitty"}, None, "data.pattern"),
        ({"trigger": "invisible", "alpha": 0.2}, None, "data.alpha"),
        ({"trigger": "sig", "delta": 2.0}, None, "data.delta"),
        ({"trigger": "sig", "combine": "mul"}, None, "data.combine"),
        ({"trigger": "sig", "frequency": True}, None, "data.frequency"),
        ({"trigger": "wanet", "k": 15}, None, "data.k"),  # 14 x 14 images (pool 2)
        ({"trigger": "wanet", "strength": -0.5}, None, "data.strength"),
        ({"trigger": "wanet", "noise_mode": "yes"}, None, "data.noise_mode"),
        ({"trigger": "wanet"}, {"k": [2, 15]}, "grid.k"),
        ({"trigger": "blend"}, {"alpha": [0.1, 0.0]}, "grid.alpha"),
    ],
)
def test_nn_config_checks_trigger_keys(data, grid, key):
    pytest.importorskip("torch")
    from backdoor_curves.nn.config import parse_nn_config

    with pytest.raises(ValueError, match=f"config key '{key}'"):
        parse_nn_config(nn_raw(data, grid))


def test_nn_config_wanet_k_fits_the_pooled_image():
    pytest.importorskip("torch")
    from backdoor_curves.nn.config import parse_nn_config

    parse_nn_config(nn_raw({"trigger": "wanet", "k": 14}))
    with pytest.raises(ValueError, match=r"config key 'data.k'.*larger than the image.*pool=2"):
        parse_nn_config(nn_raw({"trigger": "wanet", "k": 15}))
