"""experiments/features/*.toml: valid [data] tables that fail fast without pretrained weights."""

from __future__ import annotations

import time
from pathlib import Path

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
