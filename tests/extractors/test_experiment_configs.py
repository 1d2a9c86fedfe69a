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
    assert {learner["kind"] for learner in config["learner"]} == {
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


@pytest.mark.usefixtures("offline")
def test_cifar_study_fails_fast_from_the_cli_without_weights(tmp_path, capsys, monkeypatch):
    """``backdoor-curves grid`` on the airplane/frog config stops at once, naming the file."""
    pytest.importorskip("torchvision")
    from backdoor_curves.cli import main

    monkeypatch.chdir(tmp_path)  # the config's root and cache_dir are relative
    start = time.perf_counter()
    status = main(["grid", str(CONFIGS[0]), "--out", "out", "--no-progress"])
    assert time.perf_counter() - start < 5
    assert status == 1
    assert "alexnet-owt-7be5be79.pth" in capsys.readouterr().err
    assert not (tmp_path / "out" / "table.csv").exists()


@pytest.mark.usefixtures("offline")
def test_cifar_study_runs_end_to_end_from_the_cli_with_cached_weights(tmp_path, monkeypatch):
    """The same command with weights in the cache and the data on disk writes the study: a
    ResNet-18 stand-in 'pretrained' file instead of the 233 MB AlexNet one, few images, a small
    grid; otherwise the airplane/frog configuration as committed."""
    import os

    import pandas as pd

    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    from extractor_helpers import write_cifar

    from backdoor_curves.cli import main

    folder = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(0)  # the stand-in weights, hence the features, are the same every run
    torch.save(tv.models.resnet18(weights=None).state_dict(), folder / "resnet18-f37072fd.pth")
    write_cifar(tmp_path / "data", per_batch=40)
    monkeypatch.setattr(tv.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv.datasets.cifar, "check_integrity", lambda *a, **k: True)
    text = CONFIGS[0].read_text()
    data = text[text.index("[data]") : text.index("[[learner]]")]
    data = data.replace('extractor = "alexnet"', 'extractor = "resnet18"')
    data = data.replace("n_train = 1500", "n_train = 16").replace("n_test = 500", "n_test = 8")
    config = tmp_path / "study.toml"
    config.write_text(
        data + '[[learner]]\nkind = "ridge"\nalpha = [1.0, 100.0]\n\n'
        '[[learner]]\nkind = "logistic"\nC = [0.1]\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["grid", str(config), "--out", "out", "--no-progress"]) == 0
    table = pd.read_csv(tmp_path / "out" / "table.csv", keep_default_na=False)
    assert len(table) == 3
    assert (table["error"] == "").all()
    assert np.isfinite(table["score"].astype(float)).all()
    assert (tmp_path / "out" / "study.sqlite").exists()
    # features were cached for the next study, inside --out (nothing is written outside it)
    assert (tmp_path / "out" / "feature_cache").is_dir()
    assert not (tmp_path / "feature_cache").exists()
