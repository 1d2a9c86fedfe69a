"""Bad inputs of the exact derivatives of a training run (``backdoor_curves.nn.exact``):
:func:`point_derivatives` and the ``direction`` argument of :func:`training_derivative`.

The run is the shared context's: SmallCNN(width=2) on 100 ten-class 14 x 14 digits, one epoch of
two batches; every bad input is refused before (or at the first step of) the replay.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

from bad_input_catalogue import (  # noqa: E402
    Case,
    EntryPoint,
    Map,
    Set,
    as_complex,
    as_object,
    as_strings,
    check_python,
    empty,
    extra_axis,
    register,
    shorter,
    with_inf,
    with_nan,
)

from backdoor_curves.nn import TrainConfig, training_derivative  # noqa: E402
from backdoor_curves.nn.exact import point_derivatives  # noqa: E402

NAN, INF = math.nan, math.inf


def _adam(params):
    import torch

    return torch.optim.Adam(params, lr=0.01)


def points_baseline(ctx):
    return {
        "model_factory": ctx.cnn_factory,
        "data": ctx.nn_data,
        "config": ctx.train_config,
        "rows": [0, 1],
        "chunk_size": 2,
        "progress": False,
    }


POINT_CASES = [
    Case("out_of_range", "rows", Map(lambda r: [0, 100]), label="n_train"),
    Case("negative_param", "rows", [-1, 0]),
    Case("out_of_range", "rows", [1, 1], label="repeated"),
    Case("empty", "rows", []),
    Case("wrong_type", "rows", [0.0, 1.0], label="float"),
    Case("wrong_type", "rows", Set(np.ones(100, dtype=bool)), label="mask"),
    Case("string", "rows", ["0", "1"]),
    Case("complex", "rows", Map(as_complex), error=TypeError),
    Case("object", "rows", Map(as_object)),
    Case("wrong_dimensions", "rows", [[0, 1]]),
    Case("out_of_range", "chunk_size", 0),
    Case("negative_param", "chunk_size", -2),
    Case("wrong_type", "chunk_size", 2.0),
    Case("string", "chunk_size", "2"),
    Case(
        "unknown_option",
        "config",
        Set(TrainConfig(epochs=1, optimizer="adam")),
        label="adam",
        names="config.optimizer",
    ),
    Case(
        "unknown_option",
        "config",
        Set(TrainConfig(epochs=1, optimizer=_adam)),
        label="adam_callable",
        names="config.optimizer",
    ),
    Case("wrong_type", "config", Set({"epochs": 1})),
    Case("wrong_type", "data", Map(lambda d: (d.X_train, d.y_train))),
    Case("wrong_type", "model_factory", 3),
    Case("string", "progress", "yes"),
]


def direction_baseline(ctx):
    n = ctx.nn_data.n_train
    direction = np.zeros(n)
    direction[:3] = 1.0
    return {
        "model_factory": ctx.cnn_factory,
        "data": ctx.nn_data,
        "config": ctx.train_config,
        "direction": direction,
        "progress": False,
    }


DIRECTION_CASES = [
    Case("mismatched_length", "direction", Map(shorter)),
    Case("nan", "direction", Map(with_nan)),
    Case("inf", "direction", Map(with_inf)),
    Case("empty", "direction", Map(empty)),
    Case("wrong_dimensions", "direction", Map(extra_axis)),
    Case("wrong_dimensions", "direction", 1.0, label="scalar"),
    Case("string", "direction", Map(as_strings)),
    Case("complex", "direction", Map(as_complex), error=TypeError),
    Case("object", "direction", Map(as_object)),
    Case("wrong_type", "direction", Map(lambda d: d.astype(bool)), label="mask"),
    Case("wrong_type", "direction", Set({"rows": [0]}), label="dict"),
]


ENTRIES = [
    EntryPoint(
        "point_derivatives", points_baseline, lambda ctx, kw: point_derivatives(**kw), POINT_CASES
    ),
    EntryPoint(
        "training_derivative(direction)",
        direction_baseline,
        lambda ctx, kw: training_derivative(**kw),
        DIRECTION_CASES,
    ),
]

BASELINES, CASES = register(ENTRIES)


@pytest.mark.parametrize("entry", BASELINES)
def test_baseline_is_valid(ctx, entry):
    """The valid call each case spoils runs (so every failure below is the bad input's)."""
    entry.call(ctx, entry.baseline(ctx))


@pytest.mark.parametrize("entry, case", CASES)
def test_bad_input(ctx, entry, case):
    check_python(ctx, entry, case)
