"""Shared fixtures of the neural-network tests: a tiny ten-class poisoned digit set and models.

Everything is small enough for the CPU in milliseconds per epoch: 300 embedded MNIST digits
average-pooled to 14x14, BadNets all-to-one (target 0) on 10 % of them (``nn_digits``, from
tests/conftest.py), and SmallCNN(width=4).
"""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("torch")

from backdoor_curves.nn.models import SmallCNN  # noqa: E402
from backdoor_curves.nn.train import TrainConfig  # noqa: E402


@pytest.fixture(scope="session")
def small_cnn():
    """Factory of the tiny CNN of the tests: SmallCNN(n_classes=10, width=4), 1,066 parameters."""
    return functools.partial(SmallCNN, n_classes=10, in_channels=1, width=4)


@pytest.fixture(scope="session")
def fast_config():
    """Two epochs of SGD with momentum and weight decay, batches of 32, a learning rate that
    moves the tiny CNN."""
    return TrainConfig(epochs=2, batch_size=32, lr=0.05)
