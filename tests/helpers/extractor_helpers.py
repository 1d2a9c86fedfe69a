"""Helpers of the extractor tests (imported: a conftest.py here would shadow tests/conftest).

Fixtures: an empty TORCH_HOME (no weights, so no download) and a network that refuses every
connection. Writers: small real image sets (the embedded MNIST digits) in the layouts torchvision
reads.
"""

from __future__ import annotations

import pickle
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

from backdoor_curves import load_mnist_digits

IMAGENETTE_PAIR = {"n01440764": 0, "n03417042": 6}  # tench, garbage truck


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path_factory, monkeypatch) -> Path:
    """Every extractor test sees an empty torchvision weight cache."""
    home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def offline(monkeypatch):
    """Make every network connection fail at once, as on a machine without network."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 embedded digits as uint8 in a fixed shuffled order (the file is sorted)."""
    images, labels = load_mnist_digits()
    order = np.random.default_rng(0).permutation(len(labels))
    return (images[order] * 255).round().astype(np.uint8), labels[order]


def write_idx(root: Path, train_n: int = 600, test_n: int = 400) -> tuple[np.ndarray, ...]:
    """Write ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (IDX, big-endian)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    images, labels = _digits()
    parts = {"train": slice(0, train_n), "t10k": slice(train_n, train_n + test_n)}
    for prefix, sl in parts.items():
        x, y = images[sl], labels[sl].astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, len(x), 28, 28) + x.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, len(y)) + y.tobytes()
        )
    return images[parts["train"]], labels[parts["train"]], images[parts["t10k"]]


def cifar_like(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n real digits padded to 32 x 32 and coloured per class: uint8 (n, 32, 32, 3), labels 0..9."""
    images, labels = _digits()
    x = np.zeros((n, 32, 32, 3), dtype=np.uint8)
    tint = np.linspace(0.3, 1.0, 10)
    for c in range(3):
        x[:, 2:30, 2:30, c] = (
            images[offset : offset + n] * tint[(labels[offset : offset + n] + c) % 10, None, None]
        )
    return x, labels[offset : offset + n]


def write_cifar(root: Path, per_batch: int = 40) -> Path:
    """Write the python-pickle batch layout ``root/cifar-10-batches-py`` (5 train + 1 test)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        x, y = cifar_like(per_batch, offset=k * per_batch)
        entry = {"data": x.transpose(0, 3, 1, 2).reshape(per_batch, -1), "labels": y.tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck"]}  # fmt: skip
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def write_imagenette(root: Path, per_class: int = 6) -> Path:
    """Write ``root/imagenette2-320/{train,val}/<wnid>/*.JPEG``: digits as 320 x 240 RGB JPEGs."""
    from PIL import Image

    images, labels = _digits()
    base = root / "imagenette2-320"
    for split, offset in (("train", 0), ("val", 1000)):
        for wnid, digit in IMAGENETTE_PAIR.items():
            folder = base / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            picks = np.flatnonzero(labels[offset:] == digit)[:per_class] + offset
            for i in picks:
                img = Image.fromarray(images[i]).convert("RGB").resize((320, 240))
                img.save(folder / f"{wnid}_{i}.JPEG", quality=95)
    return base
