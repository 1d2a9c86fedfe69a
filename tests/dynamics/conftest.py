"""Fixtures of the dynamics tests: a tiny ten-class poisoned digit set and a tiny CNN.

300 embedded MNIST digits average-pooled to 14x14, BadNets all-to-one (target 0) on 10 % of
them (the data of tests/nn), and SmallCNN(width=2).
"""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("torch")

from backdoor_curves.attacks.multiclass import poison_multiclass  # noqa: E402
from backdoor_curves.datasets.mnist import load_mnist_multiclass  # noqa: E402
from backdoor_curves.nn.models import SmallCNN  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """300 training / 100 test digits (ten classes, 14x14), BadNets all-to-one on 10 %."""
    X_train, y_train, X_test, y_test = load_mnist_multiclass(
        n_train=300, n_test=100, random_state=0, pool=2
    )
    return poison_multiclass(
        X_train, y_train, X_test, y_test, mode="all-to-one", target=0, fraction=0.1,
        random_state=0,
    )  # fmt: skip


@pytest.fixture(scope="session")
def tiny_cnn():
    """Factory of SmallCNN(n_classes=10, width=2)."""
    return functools.partial(SmallCNN, n_classes=10, in_channels=1, width=2)
