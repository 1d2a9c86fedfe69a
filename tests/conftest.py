"""Shared fixtures: small real problems built at test time (random arrays and real MNIST digits)."""

from __future__ import annotations

import pytest
from random_data import random_backdoor_data

from backdoor_curves import BackdoorData, load_mnist_pair, poison


@pytest.fixture(params=[0, 1], ids=lambda s: f"seed{s}")
def random_data(request) -> BackdoorData:
    return random_backdoor_data(request.param)


@pytest.fixture(scope="session")
def mnist_small() -> BackdoorData:
    """Real MNIST 7 vs 1 (embedded digits), 2x2-average-pooled to 14x14, 200 train / 80 test,
    BadNets 2x2 patch on 10% of the training points."""
    X_train, y_train, X_test, y_test = load_mnist_pair((7, 1), random_state=3)

    def pool(X):
        return X.reshape(len(X), 14, 2, 14, 2).mean(axis=(2, 4))

    return poison(
        pool(X_train[:200]), y_train[:200], pool(X_test[:80]), y_test[:80],
        trigger="badnets", fraction=0.1, random_state=5, size=2,
    )  # fmt: skip


@pytest.fixture(scope="session")
def tiny() -> BackdoorData:
    """Real MNIST 7 vs 1 at full resolution, 120 train / 60 test, BadNets 3x3 on 10%."""
    X_train, y_train, X_test, y_test = load_mnist_pair((7, 1))
    return poison(
        X_train[:120], y_train[:120], X_test[:60], y_test[:60],
        trigger="badnets", fraction=0.1, random_state=0, size=3,
    )  # fmt: skip


@pytest.fixture(scope="session")
def nn_digits():
    """300 training / 100 test digits (ten classes, 14x14), BadNets all-to-one on 10 %: the data
    of the neural-network and dynamics tests (numpy only)."""
    from backdoor_curves.attacks.multiclass import poison_multiclass
    from backdoor_curves.datasets.mnist import load_mnist_multiclass

    X_train, y_train, X_test, y_test = load_mnist_multiclass(
        n_train=300, n_test=100, random_state=0, pool=2
    )
    return poison_multiclass(
        X_train, y_train, X_test, y_test, mode="all-to-one", target=0, fraction=0.1,
        random_state=0,
    )  # fmt: skip
