"""Fixtures of the dynamics tests: a tiny ten-class poisoned digit set and a tiny CNN.

300 embedded MNIST digits average-pooled to 14x14, BadNets all-to-one (target 0) on 10 % of
them (the data of tests/nn), and SmallCNN(width=2).
"""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("torch")

from backdoor_curves.nn.models import SmallCNN  # noqa: E402


@pytest.fixture(scope="session")
def digits(nn_digits):
    """300 training / 100 test digits (ten classes, 14x14), BadNets all-to-one on 10 %."""
    return nn_digits


@pytest.fixture(scope="session")
def tiny_cnn():
    """Factory of SmallCNN(n_classes=10, width=2)."""
    return functools.partial(SmallCNN, n_classes=10, in_channels=1, width=2)
