"""experiments/features/*.toml: valid [data] tables that fail fast without pretrained weights."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from extractor_helpers import empty_torch_home, offline  # noqa: F401

from extractors import DATA_KEYS, load_backdoor_data

tomllib = pytest.importorskip("tomllib")
CONFIGS = sorted((Path(__file__).parents[2] / "experiments" / "features").glob("*.toml"))


def test_configs_exist():
    assert len(CONFIGS) == 6


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
@pytest.mark.usefixtures("offline")
def test_config_data_table(path, tmp_path):
    pytest.importorskip("torchvision")
    config = tomllib.loads(path.read_text())
    assert set(config["data"]) <= set(DATA_KEYS)
    assert {learner["kind"] for learner in config["learners"]} == {
        "logistic", "ridge", "linear_svm", "rbf_svm",
    }  # fmt: skip
    data = {**config["data"], "root": tmp_path, "cache_dir": tmp_path / "cache"}
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        load_backdoor_data(**data)
    assert time.perf_counter() - start < 5


@pytest.mark.usefixtures("offline")
def test_cifar_config_end_to_end_with_cached_weights(tmp_path, monkeypatch):
    """The airplane/frog [data] table runs offline once weights and data are on disk (ResNet-18
    with a stand-in 'pretrained' file instead of the 233 MB AlexNet one, and a few images)."""
    import os

    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    from extractor_helpers import write_cifar

    import backdoor_curves as bc

    folder = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(tv.models.resnet18(weights=None).state_dict(), folder / "resnet18-f37072fd.pth")
    write_cifar(tmp_path, per_batch=40)
    monkeypatch.setattr(tv.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv.datasets.cifar, "check_integrity", lambda *a, **k: True)
    config = tomllib.loads((CONFIGS[0].parent / "cifar10_airplane_frog.toml").read_text())
    overrides = {"root": tmp_path, "cache_dir": tmp_path / "cache", "extractor": "resnet18"}
    data = load_backdoor_data(**{**config["data"], **overrides, "n_train": 16, "n_test": 4})
    assert data.n_features == 512 and data.n_poison == 1
    assert data.classes.tolist() == ["airplane", "frog"]
    slope = bc.backdoor_slope(bc.RidgeLearner(alpha=10.0), data)
    assert np.isfinite(slope.score)
