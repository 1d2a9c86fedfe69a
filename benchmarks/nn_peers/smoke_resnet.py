"""CPU smoke run of the ResNet18 / CIFAR-10 path of ``bench_nn_peers.py`` without CIFAR-10.

Writes CIFAR-like batches in torchvision's python-pickle layout (``cifar-10-batches-py``: five
training batches and one test batch of ``--per-batch`` images each, the embedded MNIST digits
padded to 32 x 32 and tinted per class in three channels, labels 0..9 with CIFAR's class names;
the layout of ``tests/helpers/extractor_helpers.write_cifar``) into a temporary folder, turns off
torchvision's MD5 check of those files *in this process only* (the fake files cannot match
CIFAR's checksums; the benchmark itself never bypasses it), and runs ``bench_nn_peers.main``
with ``--dataset cifar10 --model resnet18 --root <folder>`` plus the remaining arguments::

    benchmarks/nn_peers/.venv/bin/python benchmarks/nn_peers/smoke_resnet.py \\
        --n-train 200 --n-test 50 --epochs 1 --points 4 --lr 0.002 \\
        --peers kronfluence_ekfac trak dattri_cg --trak-proj-dim 64 --cg-iter 20 \\
        --out benchmarks/results/nn_peers_resnet_smoke.json

``--n-train`` and ``--n-test`` are split evenly over five pairs of classes; a pair holds about
``--per-batch`` fake training images and ``--per-batch`` / 5 test images (digits are not exactly
balanced), so n / 5 must stay below those.

The numbers test that the path runs end to end (data, model, exact derivatives, finite
differences, peers, JSON and Markdown); on fake images they say nothing about CIFAR-10.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]  # fmt: skip


def write_fake_cifar(root: Path, per_batch: int) -> Path:
    """``root/cifar-10-batches-py``: 6 batches of ``per_batch`` tinted 32 x 32 digits each."""
    from backdoor_curves import load_mnist_digits

    images, labels = load_mnist_digits()
    order = np.random.default_rng(0).permutation(len(labels))
    images = (images[order] * 255).round().astype(np.uint8)
    labels = labels[order]
    if 6 * per_batch > len(labels):
        raise ValueError(f"per_batch must be at most {len(labels) // 6}, got {per_batch}")
    tint = np.linspace(0.3, 1.0, 10)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        sl = slice(k * per_batch, (k + 1) * per_batch)
        x = np.zeros((per_batch, 32, 32, 3), dtype=np.uint8)
        for c in range(3):
            x[:, 2:30, 2:30, c] = images[sl] * tint[(labels[sl] + c) % 10, None, None]
        entry = {"data": x.transpose(0, 3, 1, 2).reshape(per_batch, -1),
                 "labels": labels[sl].tolist()}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES}))
    return folder


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], allow_abbrev=False)
    p.add_argument("--per-batch", type=int, default=100, help="images per fake batch")
    args, rest = p.parse_known_args(argv)
    import bench_nn_peers
    import torchvision

    # the fake batches cannot pass CIFAR-10's MD5 check: skip it in this process only
    torchvision.datasets.CIFAR10._check_integrity = lambda self: True
    torchvision.datasets.cifar.check_integrity = lambda *a, **k: True
    note = (f"smoke run on FAKE CIFAR-10 batches ({args.per_batch} images per batch: embedded "
            "MNIST digits padded to 32x32 and tinted per class), written by "
            "benchmarks/nn_peers/smoke_resnet.py; it tests the path, not CIFAR-10")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        write_fake_cifar(Path(tmp), args.per_batch)
        return bench_nn_peers.main(["--dataset", "cifar10", "--root", tmp, "--model", "resnet18",
                                    "--note", note, *rest])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
