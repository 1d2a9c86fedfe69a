"""backdoor_curves.datasets.images: two-class loaders on small real images written in
torchvision's layouts during the test (the writers are shared with tests/extractors)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from extractor_helpers import (  # noqa: F401
    cifar_like,
    empty_torch_home,
    offline,
    write_cifar,
    write_idx,
    write_imagenette,
)

from backdoor_curves.datasets.images import (
    DatasetUnavailableError,
    resolve_classes,
    stratified_subsample,
)


# ---------------------------------------------------------------------------- pure helpers
@pytest.mark.parametrize(
    ("classes", "dataset", "expected"),
    [
        (("airplane", "frog"), "cifar10", (0, 6)),
        (("Bird", 5), "cifar10", (2, 5)),
        ((7, "1"), "mnist-full", (7, 1)),
        (("cassette player", "church"), "imagenette", (2, 4)),
        (("n01440764", "parachute"), "imagenette", (0, 9)),
    ],
)
def test_resolve_classes(classes, dataset, expected):
    assert resolve_classes(classes, dataset) == expected


@pytest.mark.parametrize(
    ("classes", "error", "match"),
    [
        (("airplane", "zebra"), ValueError, "zebra.*valid"),
        ((0, 10), ValueError, "out of range"),
        (("frog", 6), ValueError, "different"),
        (("frog",), ValueError, "two"),
        ("frog", TypeError, "pair"),
        ((True, 1), ValueError, "True"),
    ],
)
def test_resolve_classes_errors(classes, error, match):
    with pytest.raises(error, match=match):
        resolve_classes(classes, "cifar10")


def test_stratified_subsample():
    y = np.r_[np.zeros(300), np.ones(100)]
    idx = stratified_subsample(y, 40, random_state=3)
    assert len(idx) == 40 and np.all(np.diff(idx) > 0)
    assert np.sum(y[idx] == 1) == 10  # 1:3 kept
    np.testing.assert_array_equal(idx, stratified_subsample(y, 40, random_state=3))
    assert not np.array_equal(idx, stratified_subsample(y, 40, random_state=4))
    np.testing.assert_array_equal(stratified_subsample(y, None), np.arange(400))
    with pytest.raises(ValueError, match="n=401"):
        stratified_subsample(y, 401)
    with pytest.raises(ValueError, match="n=1"):
        stratified_subsample(y, 1)


# ---------------------------------------------------------------------------- torchvision
tv = pytest.importorskip("torchvision")

from backdoor_curves.datasets import load_cifar10, load_imagenette, load_mnist_full  # noqa: E402


def test_mnist_full_from_idx_files(tmp_path):
    train_x, train_y, _ = write_idx(tmp_path)
    images, labels = load_mnist_full(tmp_path, (7, 1), split="train", download=False)
    mask = np.isin(train_y, [7, 1])
    assert images.shape == (mask.sum(), 28, 28) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, train_y[mask])
    np.testing.assert_allclose(images, train_x[mask] / 255.0, rtol=1e-6)
    sub, sub_y = load_mnist_full(tmp_path, (7, 1), split="test", n=20, random_state=1)
    assert sub.shape == (20, 28, 28) and sorted(np.unique(sub_y).tolist()) == [1, 7]
    assert np.sum(sub_y == 7) in (9, 10, 11)


@pytest.mark.usefixtures("offline")
def test_mnist_full_offline_fails_fast(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError, match="MNIST/raw") as info:
        load_mnist_full(tmp_path / "empty", download=True)
    assert time.perf_counter() - start < 10
    assert "ossci-datasets" in str(info.value)
    with pytest.raises(DatasetUnavailableError, match=str(tmp_path / "empty")):
        load_mnist_full(tmp_path / "empty", download=False)


def test_cifar10_from_pickle_batches(tmp_path, monkeypatch):
    write_cifar(tmp_path, per_batch=40)
    # torchvision checks the official archive's md5 sums; our batches are genuine in layout only.
    monkeypatch.setattr(tv.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv.datasets.cifar, "check_integrity", lambda *a, **k: True)
    images, labels = load_cifar10(tmp_path, ("airplane", 6), split="test", download=False)
    x, y = cifar_like(40, offset=200)  # the test batch
    mask = np.isin(y, [0, 6])
    assert images.shape == (mask.sum(), 32, 32, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, np.where(y[mask] == 0, "airplane", "frog"))
    np.testing.assert_allclose(images, x[mask] / 255.0, rtol=1e-6)


@pytest.mark.usefixtures("offline")
def test_cifar10_offline_or_corrupted_fails_fast(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path, download=True)
    assert time.perf_counter() - start < 10
    write_cifar(tmp_path)  # md5 sums do not match the official files -> not trusted
    with pytest.raises(DatasetUnavailableError, match="corrupted"):
        load_cifar10(tmp_path, download=False)


def test_imagenette_from_folder_layout(tmp_path):
    write_imagenette(tmp_path, per_class=6)
    images, labels = load_imagenette(tmp_path, ("tench", 6), split="train", download=False)
    assert images.shape == (12, 224, 224, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert sorted(set(labels.tolist())) == ["garbage truck", "tench"]
    sub, sub_y = load_imagenette(tmp_path / "imagenette2-320", ("tench", 6), split="test", n=4)
    assert sub.shape == (4, 224, 224, 3) and np.sum(sub_y == "tench") == 2


def test_imagenette_resize_and_centre_crop(tmp_path):
    from PIL import Image

    folder = tmp_path / "imagenette2-320" / "val" / "n01440764"
    folder.mkdir(parents=True)
    other = tmp_path / "imagenette2-320" / "val" / "n03888257"
    other.mkdir(parents=True)
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[:, 160:] = 255  # right half white
    for f in (folder / "a.JPEG", other / "b.JPEG"):
        Image.fromarray(rgb).save(f, quality=100)
    images, _ = load_imagenette(tmp_path, ("tench", "parachute"), split="test", download=False)
    # shorter side 240 -> 256: width 341; centre crop 224 keeps columns 58..281 of 341,
    # so the white half starts near column 341 / 2 - 58 = 112.
    row = images[0, 112].mean(axis=-1)
    assert row[:105].max() < 0.1 and row[120:].min() > 0.9


@pytest.mark.usefixtures("offline")
def test_imagenette_missing_class_and_offline(tmp_path):
    write_imagenette(tmp_path, per_class=2)
    with pytest.raises(ValueError, match="church"):
        load_imagenette(tmp_path, ("tench", "church"), download=False)
    with pytest.raises(DatasetUnavailableError, match="imagenette2-320"):
        load_imagenette(tmp_path / "nowhere", download=False)
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError, match="fast-ai-imageclas"):
        load_imagenette(tmp_path / "nowhere", download=True)
    assert time.perf_counter() - start < 10


def test_bad_split_and_root(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist_full(tmp_path, split="val")
    with pytest.raises(TypeError, match="root"):
        load_cifar10(None)
