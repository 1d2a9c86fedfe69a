"""Bad inputs of the information-dynamics tools (``backdoor_curves.dynamics``): the InfoNCE
estimate, the PCA, the noise hooks, the training callback, the stealthiness score and the plots.

The torch cases run a SmallCNN(width=2) on the ten-class 14 x 14 digits of the shared context and
an InfoNCE critic of 4 hidden units for 5 epochs on 12 pairs: milliseconds per call.
"""

from __future__ import annotations

import functools
import math
import types

import numpy as np
import pandas as pd
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
    empty,
    extra_axis,
    one_sample,
    register,
    shorter,
    with_inf,
    with_nan,
)

from backdoor_curves.dynamics import (  # noqa: E402
    InformationDynamics,
    add_noise_hooks,
    estimate_mi,
    layer_representation,
    noise_injection,
    pca_reduce,
    plot_information_plane,
    plot_mi_by_epoch,
    standardize_columns,
    stealth_score,
)
from backdoor_curves.nn.models import SmallCNN  # noqa: E402

NAN, INF = math.nan, math.inf


def _cnn():
    import torch

    torch.manual_seed(0)
    return SmallCNN(n_classes=10, in_channels=1, width=2).eval()


# ---------------------------------------------------------------------------- arrays
def _pairs():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 2))
    return a, a + 0.1 * rng.normal(size=(12, 2))


def mi_baseline(ctx):
    a, b = _pairs()
    return {
        "a": a,
        "b": b,
        "n_negatives": 4,
        "epochs": 5,
        "batch_size": 6,
        "hidden": 4,
        "average_last": 5,
        "random_state": 0,
    }


def _matrix_cases(arg: str) -> list[Case]:
    return [
        Case("nan", arg, Map(with_nan)),
        Case("inf", arg, Map(with_inf)),
        Case("empty", arg, Map(empty)),
        Case("wrong_dimensions", arg, Map(extra_axis)),
        Case("string", arg, Map(as_strings)),
        Case("complex", arg, Map(as_complex), error=(TypeError, ValueError)),
        Case("object", arg, Map(as_object), error=(TypeError, ValueError)),
        Case("wrong_type", arg, None),
    ]


ESTIMATE_MI_CASES = [
    *_matrix_cases("a"),
    Case("nan", "b", Map(with_nan)),
    Case("wrong_dimensions", "b", Map(extra_axis)),
    Case("mismatched_length", "b", Map(shorter)),
    Case("out_of_range", "a", Edit(lambda kw: {**kw, "a": kw["a"][:1], "b": kw["b"][:1]})),
    Case("out_of_range", "n_negatives", 0),
    Case("string", "n_negatives", "4"),
    Case("wrong_type", "n_negatives", 4.0),
    Case("out_of_range", "epochs", 4, label="below_average_last"),
    Case("out_of_range", "average_last", 0),
    Case("out_of_range", "batch_size", 1),
    Case("out_of_range", "hidden", 0),
    Case("nonfinite_param", "lr", NAN, label="nan"),
    Case("nonfinite_param", "lr", INF, label="inf"),
    Case("negative_param", "lr", -0.1),
    Case("string", "lr", "0.1"),
    Case("negative_param", "weight_decay", -1e-4),
    Case("out_of_range", "clip", 0.0),
    Case("out_of_range", "pca_a", 0),
    Case("string", "pca_b", "2"),
    Case("string", "standardize", "yes"),
    Case("negative_param", "random_state", -1),
    Case("out_of_range", "threads", 0),
    Case("unknown_option", "device", "tpu"),
]

PCA_CASES = [
    *_matrix_cases("x"),
    Case("out_of_range", "n_components", 0),
    Case("wrong_type", "n_components", 1.5),
    Case("string", "n_components", "2"),
    Case("negative_param", "random_state", -1),
]

STANDARDIZE_CASES = [
    Case("nan", "x", Map(with_nan)),
    Case("inf", "x", Map(with_inf)),
    Case("empty", "x", Map(empty)),
    Case("wrong_dimensions", "x", Map(extra_axis)),
    Case("wrong_dimensions", "x", Map(lambda x: x[:, 0]), label="one_fewer"),
    Case("string", "x", Map(as_strings)),
    Case("complex", "x", Map(as_complex), error=(TypeError, ValueError)),
    Case("object", "x", Map(as_object)),
    Case("wrong_type", "x", None),
]


# ---------------------------------------------------------------------------- the callback
def dynamics_baseline(ctx):
    return {"layer": "conv2", "checkpoints": [2], "max_samples": 4, "pca_components": 3}


INFORMATION_DYNAMICS_CASES = [
    Case("wrong_type", "layer", 3),
    Case("empty", "checkpoints", []),
    Case("negative_param", "checkpoints", [-1]),
    Case("string", "checkpoints", ["1"]),
    Case("wrong_type", "checkpoints", [1.5], label="float"),
    Case("nan", "noise_std", NAN),
    Case("negative_param", "noise_std", -0.1),
    Case("string", "noise_std", "0.1"),
    Case("out_of_range", "max_samples", 1),
    Case("string", "equal_size", "yes"),
    Case("negative_param", "classes", [-1]),
    Case("string", "classes", ["1"]),
    Case("out_of_range", "pca_components", 0),
    Case("unknown_option", "y_hat", "probs"),
    Case("wrong_type", "xt_options", 3),
    Case("unknown_option", "ty_options", {"random_state": 1}),
    Case("out_of_range", "batch_size", 0),
    Case("negative_param", "random_state", -1),
    Case("wrong_type", "noise_layers", [3]),
]


def begin_baseline(ctx):
    return {"callback": dynamics_baseline(ctx), "model": ctx.cnn, "data": ctx.nn_data, "epoch": 0}


def begin_call(ctx, kw):
    callback = InformationDynamics(**kw["callback"])
    state = types.SimpleNamespace(model=kw["model"], data=kw["data"], epoch=kw["epoch"])
    callback.on_train_begin(state)
    assert set(callback.samples) >= {"target_all", "target_poisoned", "target_clean"}


@functools.cache
def _all_to_all():
    """The context's digits poisoned all-to-all (no target class)."""
    from backdoor_curves.attacks.multiclass import poison_multiclass
    from backdoor_curves.datasets.mnist import load_mnist_multiclass

    images = load_mnist_multiclass(n_train=100, n_test=30, random_state=0, pool=2)
    return poison_multiclass(*images, mode="all-to-all", target=None, size=2, random_state=0)


def _set_callback(**options):
    return Edit(lambda kw: {**kw, "callback": {**kw["callback"], **options}})


ON_TRAIN_BEGIN_CASES = [
    Case("out_of_range", "data", Map(lambda d: _all_to_all()), label="all_to_all"),
    Case("three_classes", "classes", _set_callback(classes=[0, 1])),
    Case("three_classes", "classes", _set_callback(classes=[1, 12]), label="absent"),
    Case("unknown_option", "layer", _set_callback(layer="conv9")),
    Case("unknown_option", "noise_layers", _set_callback(noise_layers=["fc9"])),
    Case("wrong_type", "model", "cnn"),
]


# ---------------------------------------------------------------------------- noise hooks
def hooks_baseline(ctx):
    return {"model": _cnn(), "layers": ["conv1"], "std": 0.1, "seed": 0}


def add_hooks_call(ctx, kw):
    handles = add_noise_hooks(**kw)
    for handle in handles:
        handle.remove()


def injection_call(ctx, kw):
    with noise_injection(**kw):
        pass


HOOK_CASES = [
    Case("unknown_option", "layers", ["conv9"]),
    Case("empty", "layers", []),
    Case("wrong_type", "layers", [3]),
    Case("wrong_type", "layers", 3, label="int"),
    Case("nan", "std", NAN),
    Case("inf", "std", INF),
    Case("negative_param", "std", -0.1),
    Case("string", "std", "0.1"),
    Case("negative_param", "seed", -1),
    Case("string", "seed", "0"),
    Case("wrong_type", "model", "cnn"),
]


def representation_baseline(ctx):
    X, _ = ctx.nn_batch
    return {
        "model": ctx.cnn,
        "X": X[:6],
        "layer": "conv2",
        "batch_size": 4,
        "noise_std": 0.1,
        "noise_layers": None,
        "seed": 0,
    }


REPRESENTATION_CASES = [
    Case("nan", "X", Map(with_nan)),
    Case("inf", "X", Map(with_inf)),
    Case("empty", "X", Map(empty)),
    Case("wrong_dimensions", "X", Map(lambda X: X[:, 0]), label="one_fewer"),
    Case("wrong_dimensions", "X", Map(extra_axis), label="one_more"),
    Case("wrong_dimensions", "X", Map(one_sample), label="one_sample"),
    Case("wrong_dimensions", "X", Map(lambda X: np.concatenate([X, X], axis=1)), label="2ch"),
    Case("string", "X", Map(as_strings)),
    Case("complex", "X", Map(as_complex), error=(TypeError, ValueError)),
    Case("object", "X", Map(as_object)),
    Case("wrong_type", "X", None),
    Case("unknown_option", "layer", "conv9"),
    Case("wrong_type", "layer", 3),
    Case("out_of_range", "batch_size", 0),
    Case("string", "batch_size", "4"),
    Case("negative_param", "noise_std", -0.1),
    Case("nan", "noise_std", NAN),
    Case("unknown_option", "noise_layers", ["fc9"]),
    Case("negative_param", "seed", -1),
    Case("wrong_type", "model", "cnn"),
]


# ---------------------------------------------------------------------------- histories
GROUPS = ("target_clean", "target_all", "class_1", "class_2")


@functools.cache
def _history() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"epoch": e, "group": g, "mi_xt": rng.random(), "mi_ty": rng.random(), "n": 10}
        for e in (0, 1, 2)
        for g in GROUPS
    ]
    return pd.DataFrame(rows)


def history_baseline(ctx):
    return {"history": _history().copy()}


def _drop(column):
    return Map(lambda h: h.drop(columns=[column]))


def _nan_at(column):
    def spoil(h):
        h = h.copy()
        h.loc[h.index[0], column] = NAN
        return h

    return Map(spoil)


HISTORY_CASES = [
    Case("wrong_type", "history", Map(lambda h: h.to_dict("list"))),
    Case("wrong_type", "history", None, label="none"),
    Case("empty", "history", Map(lambda h: h.iloc[:0])),
    Case("wrong_dimensions", "history", _drop("mi_xt"), label="no_mi_xt"),
    Case("wrong_dimensions", "history", _drop("epoch"), label="no_epoch"),
]

STEALTH_CASES = [
    *HISTORY_CASES,
    Case("nan", "history", _nan_at("mi_ty")),
    Case("inf", "history", Map(lambda h: h.assign(mi_xt=np.inf))),
    Case("mismatched_length", "history", Map(lambda h: pd.concat([h, h.iloc[:1]])), label="dup"),
    Case("string", "history", Map(lambda h: h.assign(mi_xt=h["mi_xt"].astype(str)))),
    Case("unknown_option", "phases", [5]),
    Case("empty", "phases", []),
    Case("string", "phases", "12"),
    Case("wrong_type", "phases", [1.5]),
    Case("unknown_option", "target_groups", ["target_poisoned"]),
    Case("empty", "target_groups", []),
    Case("unknown_option", "clean_groups", ["class_9"]),
    Case("empty", "clean_groups", []),
    Case("wrong_type", "clean_groups", [3]),
    Case("unknown_option", "measures", ["mi_zz"]),
    Case("empty", "measures", []),
    Case("wrong_type", "measures", 3),
]


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def plane_call(ctx, kw):
    _close(plot_information_plane(**kw))


def by_epoch_call(ctx, kw):
    _close(plot_mi_by_epoch(**kw))


PLANE_CASES = [
    *HISTORY_CASES,
    Case("unknown_option", "groups", ["class_9"]),
    Case("empty", "groups", []),
    Case("wrong_type", "ax", "axes"),
    Case("string", "annotate", "yes"),
]

BY_EPOCH_CASES = [
    *HISTORY_CASES,
    Case("unknown_option", "measure", "mi_zz", names="history"),
    Case("wrong_type", "measure", 3),
    Case("unknown_option", "groups", ["class_9"]),
    Case("empty", "groups", []),
    Case("wrong_type", "ax", "axes"),
]


ENTRIES = [
    EntryPoint("estimate_mi", mi_baseline, lambda ctx, kw: estimate_mi(**kw), ESTIMATE_MI_CASES),
    EntryPoint(
        "pca_reduce",
        lambda ctx: {"x": _pairs()[0], "n_components": 1, "random_state": 0},
        lambda ctx, kw: pca_reduce(**kw),
        PCA_CASES,
    ),
    EntryPoint(
        "standardize_columns",
        lambda ctx: {"x": _pairs()[0]},
        lambda ctx, kw: standardize_columns(**kw),
        STANDARDIZE_CASES,
    ),
    EntryPoint(
        "InformationDynamics",
        dynamics_baseline,
        lambda ctx, kw: InformationDynamics(**kw),
        INFORMATION_DYNAMICS_CASES,
    ),
    EntryPoint(
        "InformationDynamics.on_train_begin", begin_baseline, begin_call, ON_TRAIN_BEGIN_CASES
    ),
    EntryPoint("add_noise_hooks", hooks_baseline, add_hooks_call, HOOK_CASES),
    EntryPoint("noise_injection", hooks_baseline, injection_call, HOOK_CASES),
    EntryPoint(
        "layer_representation",
        representation_baseline,
        lambda ctx, kw: layer_representation(**kw),
        REPRESENTATION_CASES,
    ),
    EntryPoint(
        "stealth_score",
        history_baseline,
        lambda ctx, kw: stealth_score(**kw),
        STEALTH_CASES,
    ),
    EntryPoint("plot_information_plane", history_baseline, plane_call, PLANE_CASES),
    EntryPoint(
        "plot_mi_by_epoch",
        lambda ctx: {**history_baseline(ctx), "measure": "mi_xt"},
        by_epoch_call,
        BY_EPOCH_CASES,
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
