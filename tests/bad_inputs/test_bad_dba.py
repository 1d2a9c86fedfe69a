"""Bad inputs of the Deep Backdoor Attack trigger (``backdoor_curves.attacks.dba``): the trigger's
constructor and ``apply``, :func:`invert_neurons`, :func:`initial_triggers` and
:func:`clean_mnist_cnn`.

``tests/attacks/test_dba.py`` checks many of these errors too; here they are entry points of the
catalogue. The model is a SmallCNN(width=2) built here (conv2: 4 channels, a 3 x 3 map at 14 x 14
input), two descent steps on 4 digits of 14 x 14 pixels.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

pytest.importorskip("torch")

from bad_input_catalogue import (  # noqa: E402
    Case,
    Edit,
    EntryPoint,
    Map,
    as_complex,
    as_object,
    as_strings,
    check_python,
    negative,
    one_sample,
    register,
    shorter,
    third_class,
    times_255,
    with_inf,
    with_nan,
)

from backdoor_curves.attacks import dba  # noqa: E402
from backdoor_curves.attacks.dba import (  # noqa: E402
    DeepBackdoorTrigger,
    NeuronSelector,
    clean_mnist_cnn,
    initial_triggers,
    invert_neurons,
)
from backdoor_curves.nn.models import SmallCNN  # noqa: E402

NAN, INF = math.nan, math.inf


@functools.cache
def _cnn():
    """SmallCNN(width=2), seeded, ten classes: conv2 has 4 channels."""
    import torch

    torch.manual_seed(0)
    return SmallCNN(n_classes=10, in_channels=1, width=2).eval()


def _images(ctx):
    """Four 14 x 14 test digits of the context and their labels."""
    _, _, X_test, y_test = ctx.images
    return X_test[:4], y_test[:4]


# ---------------------------------------------------------------------------- the trigger
def trigger_baseline(ctx):
    return {
        "model": _cnn(),
        "layer": "conv2",
        "neurons": "multiple",
        "n_neurons": 2,
        "channel": 0,
        "position": None,
        "target_value": 1.0,
        "steps": 2,
        "lr": 0.5,
        "alpha": 0.2,
        "random_state": 0,
        "batch_size": 2,
        "threads": 1,
    }


TRIGGER_CASES = [
    Case("wrong_type", "model", "cnn"),
    Case("wrong_type", "model", Map(lambda m: m.state_dict()), label="state_dict"),
    Case("wrong_type", "layer", 3),
    Case("unknown_option", "layer", "conv9"),
    Case(
        "unknown_option",
        "layer",
        Edit(lambda kw: {**kw, "model": None, "layer": "conv9"}),
        label="default_model",
    ),
    Case("unknown_option", "neurons", "all"),
    Case("wrong_type", "neurons", 3),
    Case("out_of_range", "n_neurons", 0),
    Case("string", "n_neurons", "2"),
    Case("negative_param", "channel", -1),
    Case("wrong_type", "channel", 0.5),
    Case("wrong_dimensions", "position", (1,)),
    Case("negative_param", "position", (-1, 0)),
    Case("string", "position", "11"),
    Case("nan", "target_value", NAN),
    Case("inf", "target_value", INF),
    Case("string", "target_value", "1"),
    Case("out_of_range", "steps", 0),
    Case("wrong_type", "steps", 2.0),
    Case("nonfinite_param", "lr", NAN),
    Case("negative_param", "lr", -0.5),
    Case("out_of_range", "lr", 0.0, label="zero"),
    Case("out_of_range", "alpha", 0.0, label="zero"),
    Case("out_of_range", "alpha", 1.5),
    Case("nan", "alpha", NAN),
    Case("negative_param", "random_state", -1),
    Case("out_of_range", "batch_size", 0),
    Case("out_of_range", "threads", 0),
]


def apply_baseline(ctx):
    X, y = _images(ctx)
    return {"trigger": trigger_baseline(ctx), "images": X, "source_labels": y, "classes": [1, 7]}


def apply_call(ctx, kw):
    kw = dict(kw)
    trigger = DeepBackdoorTrigger(**kw.pop("trigger"))
    out = trigger.apply(**kw)
    assert out.shape == np.shape(kw["images"])


def _set_trigger(**options):
    return Edit(lambda kw: {**kw, "trigger": {**kw["trigger"], **options}})


APPLY_CASES = [
    Case("nan", "images", Map(with_nan)),
    Case("inf", "images", Map(with_inf)),
    Case("image_range", "images", Map(times_255)),
    Case("image_range", "images", Map(negative), label="negative"),
    Case("wrong_dimensions", "images", Map(one_sample)),
    Case("wrong_dimensions", "images", Map(lambda X: X[..., None, None]), label="five_axes"),
    Case("wrong_dimensions", "images", Map(lambda X: np.stack([X] * 3, axis=-1)), label="rgb"),
    Case("empty", "images", Map(lambda X: X[:, :0])),
    Case("string", "images", Map(as_strings)),
    Case("complex", "images", Map(as_complex), error=TypeError),
    Case("object", "images", Map(as_object)),
    Case("wrong_type", "images", None),
    Case("mismatched_length", "source_labels", Map(shorter)),
    Case("three_classes", "source_labels", Map(lambda y: third_class(y, 3))),
    Case("out_of_range", "channel", _set_trigger(neurons="single", channel=4)),
    Case("out_of_range", "n_neurons", _set_trigger(n_neurons=5)),
    Case("out_of_range", "position", _set_trigger(position=(7, 0))),
]


# ---------------------------------------------------------------------------- functions
def invert_baseline(ctx):
    X, _ = _images(ctx)
    return {
        "model": _cnn(),
        "starts": initial_triggers(X, 0),
        "selector": NeuronSelector("single", channel=1),
        "layer": "conv2",
        "target_value": 1.0,
        "steps": 2,
        "lr": 0.5,
        "batch_size": 2,
        "threads": 1,
    }


INVERT_CASES = [
    Case("wrong_type", "model", "cnn"),
    Case("nan", "starts", Map(with_nan)),
    Case("image_range", "starts", Map(times_255)),
    Case("wrong_dimensions", "starts", Map(one_sample)),
    Case("wrong_dimensions", "starts", Map(lambda X: np.stack([X] * 3, axis=-1)), label="rgb"),
    Case("string", "starts", Map(as_strings)),
    Case("wrong_type", "starts", None),
    Case("wrong_type", "selector", "single"),
    Case(
        "out_of_range",
        "channel",
        Edit(lambda kw: {**kw, "selector": NeuronSelector("single", channel=4)}),
    ),
    Case("unknown_option", "layer", "conv9"),
    Case("wrong_type", "layer", 3),
    Case("nan", "target_value", NAN),
    Case("out_of_range", "steps", 0),
    Case("negative_param", "lr", -0.5),
    Case("out_of_range", "batch_size", 0),
    Case("string", "threads", "1"),
]

INITIAL_CASES = [
    Case("nan", "images", Map(with_nan)),
    Case("image_range", "images", Map(times_255)),
    Case("wrong_dimensions", "images", Map(one_sample)),
    Case("empty", "images", Map(lambda X: X[:, :0])),
    Case("string", "images", Map(as_strings)),
    Case("complex", "images", Map(as_complex), error=TypeError),
    Case("wrong_type", "images", None),
    Case("negative_param", "random_state", -1),
    Case("wrong_type", "random_state", 0.5),
]

CLEAN_CNN_CASES = [
    Case("out_of_range", "epochs", 0),
    Case("string", "epochs", "1"),
    Case("out_of_range", "width", 0),
    Case("wrong_type", "width", 2.0),
    Case("negative_param", "seed", -1),
    Case("out_of_range", "pool", 3),
    Case("out_of_range", "pool", 0, label="zero"),
    Case("wrong_type", "pool", None),
]


def _clean_cnn_arguments_only(ctx, kw):
    """The baseline's arguments pass clean_mnist_cnn's checks (the training, seconds, replaced
    by a stub here; tests/attacks/test_dba.py trains the default model)."""
    calls = []
    original = dba._trained_mnist_cnn
    dba._trained_mnist_cnn = lambda *args: calls.append(args)
    try:
        clean_mnist_cnn(**kw)
    finally:
        dba._trained_mnist_cnn = original
    assert calls == [(1, 2, 0, 4)]


ENTRIES = [
    EntryPoint(
        "DeepBackdoorTrigger",
        trigger_baseline,
        lambda ctx, kw: DeepBackdoorTrigger(**kw),
        TRIGGER_CASES,
    ),
    EntryPoint("DeepBackdoorTrigger.apply", apply_baseline, apply_call, APPLY_CASES),
    EntryPoint(
        "invert_neurons", invert_baseline, lambda ctx, kw: invert_neurons(**kw), INVERT_CASES
    ),
    EntryPoint(
        "initial_triggers",
        lambda ctx: {"images": _images(ctx)[0], "random_state": 0},
        lambda ctx, kw: initial_triggers(**kw),
        INITIAL_CASES,
    ),
    EntryPoint(
        "clean_mnist_cnn",
        lambda ctx: {"epochs": 1, "width": 2, "seed": 0, "pool": 4},
        lambda ctx, kw: clean_mnist_cnn(**kw),
        CLEAN_CNN_CASES,
    ),
]
#: Baselines not run in full here (clean_mnist_cnn trains for seconds).
BASELINE_CHECKS = {"clean_mnist_cnn": _clean_cnn_arguments_only}

BASELINES, CASES = register(ENTRIES)


@pytest.mark.parametrize("entry", BASELINES)
def test_baseline_is_valid(ctx, entry):
    """The valid call each case spoils runs (so every failure below is the bad input's)."""
    check = BASELINE_CHECKS.get(entry.name, entry.call)
    check(ctx, entry.baseline(ctx))


@pytest.mark.parametrize("entry, case", CASES)
def test_bad_input(ctx, entry, case):
    check_python(ctx, entry, case)
