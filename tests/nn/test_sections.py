"""The attack-comparison sections of an nn configuration: ``[[attack]]``, ``[dynamics]``,
``[convex]``: what they parse to, and errors that name the key."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("torch")

from backdoor_curves.nn.config import parse_nn_config  # noqa: E402
from backdoor_curves.nn.sections import AttackSpec, ConvexSpec, DynamicsSpec  # noqa: E402

BASE = {"data": {"n_train": 200, "n_test": 100, "pool": 2}, "model": {"kind": "small_cnn"}}
ATTACKS = [
    {"trigger": "badnets", "size": 3},
    {"name": "Blend", "trigger": "blend", "alpha": 0.3},
    {"trigger": "dba", "lr": 0.01, "alpha": 0.2},
]


def config(**sections):
    return parse_nn_config({**BASE, **sections})


def test_attacks_are_a_sweep_dimension_with_their_own_trigger_keys():
    cfg = config(attack=ATTACKS, grid={"fraction": [0.05, 0.1]})
    assert cfg.attacks == (
        AttackSpec("badnets", "badnets", {"size": 3}),
        AttackSpec("Blend", "blend", {"alpha": 0.3}),
        AttackSpec("dba", "dba", {"lr": 0.01, "alpha": 0.2}),
    )
    settings = cfg.settings()
    assert [s["attack"] for s in settings] == ["badnets", "Blend", "dba"] * 2
    assert [s["fraction"] for s in settings] == [0.05] * 3 + [0.1] * 3
    table = cfg.data_table(settings[1])
    assert table["trigger"] == "blend" and table["alpha"] == 0.3 and "attack" not in table
    assert "size" not in table  # the data table holds no other attack's keys
    assert cfg.data_table(settings[2])["trigger"] == "dba"


def test_without_attacks_nothing_changes():
    cfg = config()
    assert cfg.attacks == () and cfg.settings() == [{}] and cfg.data_table()["trigger"] == "badnets"


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"attack": [{"size": 3}]}, "attack[0].trigger"),
        ({"attack": [{"trigger": "refool"}]}, "attack[0].trigger"),
        ({"attack": [{"trigger": "blend", "size": 3}]}, "attack[0].size"),
        ({"attack": [{"trigger": "blend", "alpha": 2.0}]}, "attack[0].alpha"),
        ({"attack": [{"trigger": "blend", "colour": 1}]}, "attack[0].colour"),
        ({"attack": [{"trigger": "blend"}, {"trigger": "blend"}]}, "attack[1].name"),
        ({"attack": [{"trigger": "badnets", "size": 15}]}, "attack[0].size"),  # > 14 px
        ({"attack": [{"trigger": "blend"}], "data": {"pool": 2, "size": 3}}, "data.size"),
        ({"attack": [{"trigger": "blend"}], "grid": {"trigger": ["sig"]}}, "grid.trigger"),
        ({"attack": []}, "attack"),
        ({"dynamics": {}}, "dynamics.layer"),
        ({"dynamics": {"layer": "conv2", "checkpoints": [0]}}, "dynamics.checkpoints"),
        ({"dynamics": {"layer": "conv2", "checkpoints": [1, 2], "phases": [3]}}, "dynamics.phases"),
        ({"dynamics": {"layer": "conv2", "noise_std": -1}}, "dynamics.noise_std"),
        ({"dynamics": {"layer": "conv2", "negatives": 0}}, "dynamics.negatives"),
        ({"dynamics": {"layer": "conv2", "critic_epochs": 4}}, "dynamics.critic_epochs"),
        ({"dynamics": {"layer": "conv2", "classes": [3, 12]}}, "dynamics.classes"),
        ({"dynamics": {"layer": "conv2", "y_hat": "probs"}}, "dynamics.y_hat"),
        ({"dynamics": {"layer": "conv2", "critic": 3}}, "dynamics.critic"),
        ({"convex": {"digits": [7, 7]}}, "convex.digits"),
        ({"convex": {"learner": "mlp"}}, "convex.learner"),
        ({"convex": {"C": [1.0, -1.0]}}, "convex.C[1]"),
        ({"convex": {"C": [1.0, 2.0], "at": 3.0}}, "convex.at"),
        ({"convex": {"fraction": 1.0}}, "convex.fraction"),
        ({"convex": {"clean_drop": 2}}, "convex.clean_drop"),
        ({"dynamics": {"layer": "conv2"}, "data": {"pool": 2, "mode": "all-to-all"}}, "dynamics"),
    ],
)
def test_errors_name_the_key(sections, key):
    raw = {**BASE, **sections}
    raw["data"] = {**BASE["data"], **sections.get("data", {})}
    with pytest.raises(ValueError, match=re.escape(f"'{key}'")) as info:
        parse_nn_config(raw)
    assert "\n" not in str(info.value)


def test_dynamics_and_convex_defaults():
    cfg = config(dynamics={"layer": "conv2", "checkpoints": [4, 0, 1]}, convex={})
    assert cfg.dynamics == DynamicsSpec("conv2", (0, 1, 4), (1, 4))
    assert cfg.dynamics.epochs == 4
    callback = cfg.dynamics.callback()
    assert callback.layer == "conv2" and callback.checkpoints == (0, 1, 4)
    assert callback.xt_options["n_negatives"] == cfg.dynamics.negatives
    assert cfg.convex == ConvexSpec()
    assert cfg.convex.at in cfg.convex.C
    ridge = ConvexSpec(learner="ridge").make_learner(0.5)
    assert ridge.get_params()["alpha"] == 0.5


# ------------------------------------------------------------------------- shipped configs
EXPERIMENTS = __import__("pathlib").Path(__file__).resolve().parents[2] / "experiments" / "nn"


def test_the_attack_experiments_parse():
    from backdoor_curves.nn.config import load_nn_config

    cpu = load_nn_config(EXPERIMENTS / "mnist_attacks_cpu.toml")
    assert [a.trigger for a in cpu.attacks] == ["badnets", "blend", "wanet", "dba"]
    assert cpu.dynamics is not None and cpu.convex is not None and cpu.slope.exact
    gpu = load_nn_config(EXPERIMENTS / "cifar10_resnet18_dynamics.toml")
    assert gpu.data["dataset"] == "cifar10" and gpu.dynamics.phases == (5, 40, 100)
    assert gpu.dynamics.layer == "layer4" and gpu.train.device == "cuda"


def test_cifar10_ten_classes_from_the_batches(tmp_path, monkeypatch):
    tv = pytest.importorskip("torchvision")
    from extractor_helpers import cifar_like, write_cifar

    from backdoor_curves.nn.config import make_nn_data

    write_cifar(tmp_path, per_batch=40)
    monkeypatch.setattr(tv.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv.datasets.cifar, "check_integrity", lambda *a, **k: True)
    data = make_nn_data(dataset="cifar10", root=str(tmp_path), fraction=0.1,
                        trigger="blend", alpha=0.2)  # fmt: skip
    assert data.X_train.shape[1:] == (32, 32, 3) and data.n_classes == 10
    _, y_test = cifar_like(40, offset=200)  # the test batch: every image of the ten classes
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=10),
                                  np.bincount(y_test, minlength=10))  # fmt: skip
    assert data.n_train == 200  # the five training batches
    assert data.n_poison == round(0.1 * data.n_train)


def test_cifar10_config_fails_fast_naming_the_folder(tmp_path, monkeypatch):
    from backdoor_curves.nn.config import load_nn_config

    monkeypatch.chdir(tmp_path)
    config = load_nn_config(EXPERIMENTS / "cifar10_resnet18_dynamics.toml")
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        config.check_available()
    with pytest.raises(ValueError, match=re.escape("'data.root'")):
        parse_nn_config({"data": {"dataset": "cifar10"}, "model": {"kind": "small_cnn"}})
