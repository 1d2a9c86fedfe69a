"""Bad inputs of the neural-network adapter (tiny CNN on 14 x 14 digits) and its TOML config."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

pytest.importorskip("torch")

from bad_input_catalogue import (  # noqa: E402
    Case,
    Edit,
    EntryPoint,
    Map,
    Set,
    as_complex,
    as_object,
    as_strings,
    check_python,
    empty,
    extra_axis,
    one_sample,
    register,
    rename_in,
    set_in,
    shorter,
    third_class,
    toml_text,
    with_inf,
    with_nan,
)

from backdoor_curves.nn import (  # noqa: E402
    TrainConfig,
    evaluate,
    nn_backdoor_slope,
    nn_learning_curve,
    train,
    training_derivative,
)
from backdoor_curves.nn.config import load_nn_config, parse_nn_config  # noqa: E402
from backdoor_curves.nn.metrics import isolation_precision, poison_auroc  # noqa: E402
from backdoor_curves.nn.models import SmallCNN  # noqa: E402
from backdoor_curves.nn.per_sample import (  # noqa: E402
    per_sample_grads,
    per_sample_losses,
    select_parameters,
)

NAN, INF = math.nan, math.inf
THREE_CLASS_CNN = functools.partial(SmallCNN, n_classes=3, in_channels=1, width=2)


# ---------------------------------------------------------------------------- training
TRAIN_CONFIG_CASES = [
    Case("out_of_range", "epochs", 0),
    Case("string", "epochs", "3"),
    Case("negative_param", "batch_size", -1),
    Case("wrong_type", "batch_size", 32.0),
    Case("nonfinite_param", "lr", NAN, label="nan"),
    Case("nonfinite_param", "lr", INF, label="inf"),
    Case("negative_param", "lr", -0.1),
    Case("string", "lr", "0.1"),
    Case("out_of_range", "momentum", 1.0),
    Case("negative_param", "weight_decay", -1e-4),
    Case("nan", "weight_decay", NAN),
    Case("unknown_option", "optimizer", "sgdd"),
    Case("wrong_type", "optimizer", 3),
    Case("negative_param", "seed", -1),
    Case("out_of_range", "threads", 0),
    Case("wrong_type", "device", 3),
]


def train_baseline(ctx):
    return {
        "model_factory": ctx.cnn_factory,
        "data": ctx.nn_data,
        "beta": 1.0,
        "config": ctx.train_config,
        "callbacks": (),
        "checkpoint_dir": None,
        "progress": False,
    }


BETA_CASES = [
    Case("beta_range", "beta", 1.5),
    Case("beta_range", "beta", -0.1, label="negative"),
    Case("nan", "beta", NAN),
    Case("inf", "beta", INF),
    Case("string", "beta", "1"),
]

COMMON_CASES = [
    Case("wrong_type", "data", Map(lambda d: (d.X_train, d.y_train)), label="tuple"),
    Case("wrong_type", "model_factory", 3),
    Case("wrong_type", "config", Set({"epochs": 1})),
]

TRAIN_CASES = [
    *BETA_CASES,
    *COMMON_CASES,
    Case("out_of_range", "model_factory", Set(THREE_CLASS_CNN), label="three_outputs"),
    Case("wrong_type", "callbacks", 3),
    Case("string", "progress", "yes"),
    Case("wrong_type", "checkpoint_dir", 3),
]


def evaluate_baseline(ctx):
    return {"model": ctx.cnn, "data": ctx.nn_data, "batch_size": 64}


EVALUATE_CASES = [
    Case("wrong_type", "model", "cnn"),
    Case(
        "out_of_range",
        "model",
        Edit(lambda kw: {**kw, "model": THREE_CLASS_CNN()}),
        label="three_outputs",
    ),
    Case("wrong_type", "data", Map(lambda d: (d.X_test, d.y_test))),
    Case("out_of_range", "batch_size", 0),
    Case("string", "batch_size", "64"),
]


def curve_baseline(ctx):
    return {**train_baseline(ctx), "betas": [0.0, 1.0], "label": None, "n_jobs": 1}


def nn_curve(ctx, kw):
    kw = dict(kw)
    for key in ("beta", "callbacks"):
        kw.pop(key)
    return nn_learning_curve(**kw)


NN_CURVE_CASES = [
    *COMMON_CASES,
    Case("beta_range", "betas", [0.0, 1.5]),
    Case("nan", "betas", [0.0, NAN]),
    Case("empty", "betas", []),
    Case("string", "betas", ["0", "1"]),
    Case("wrong_dimensions", "betas", [[0.0, 1.0]]),
    Case("out_of_range", "n_jobs", 0),
    Case("wrong_type", "label", 3),
]


def slope_baseline(ctx):
    return {
        "model_factory": ctx.cnn_factory,
        "data": ctx.nn_data,
        "config": ctx.train_config,
        "h": [1.0],
        "seeds": [0],
    }


NN_SLOPE_CASES = [
    *COMMON_CASES,
    Case("out_of_range", "h", 0.0),
    Case("beta_range", "h", 1.5),
    Case("nan", "h", NAN),
    Case("out_of_range", "h", [0.1, 0.1], label="repeated"),
    Case("string", "h", "0.1"),
    Case("empty", "h", []),
    Case("negative_param", "seeds", [-1]),
    Case("out_of_range", "seeds", [0, 0], label="repeated"),
    Case("string", "seeds", "0"),
    Case("empty", "seeds", []),
]

DERIVATIVE_CASES = [*COMMON_CASES, Case("string", "progress", "yes")]


# ---------------------------------------------------------------------------- per-sample
def per_sample_baseline(ctx):
    X, y = ctx.nn_batch
    return {"model": ctx.cnn, "X": X, "y": y, "batch_size": 8}


PER_SAMPLE_CASES = [
    Case("nan", "X", Map(with_nan)),
    Case("inf", "X", Map(with_inf)),
    Case("empty", "X", Map(empty)),
    Case("wrong_dimensions", "X", Map(lambda X: X[:, 0]), label="one_fewer"),
    Case("wrong_dimensions", "X", Map(extra_axis), label="one_more"),
    Case("wrong_dimensions", "X", Map(one_sample), label="one_sample", names="y"),
    Case("string", "X", Map(as_strings)),
    Case("complex", "X", Map(as_complex), error=TypeError),
    Case("object", "X", Map(as_object)),
    Case("wrong_type", "X", None),
    Case("mismatched_length", "y", Map(shorter)),
    Case("wrong_type", "y", Map(lambda y: y.astype(float))),
    Case("three_classes", "y", Map(lambda y: third_class(y, 12))),
    Case("negative_param", "y", Map(lambda y: third_class(y, -1))),
    Case("wrong_dimensions", "y", Map(extra_axis)),
    Case("string", "y", Map(as_strings)),
    Case("out_of_range", "batch_size", 0),
    Case("string", "batch_size", "8"),
    Case("wrong_type", "model", "cnn"),
]

GRADS_CASES = [
    Case("nan", "X", Map(with_nan)),
    Case("wrong_dimensions", "X", Map(lambda X: X[:, 0])),
    Case("mismatched_length", "y", Map(shorter)),
    Case("three_classes", "y", Map(lambda y: third_class(y, 12))),
    Case("unknown_option", "params", ["nope"]),
    Case("wrong_type", "params", [3]),
    Case("empty", "params", []),
    Case("out_of_range", "batch_size", 0),
]

SELECT_CASES = [
    Case("unknown_option", "params", ["conv3"]),
    Case("wrong_type", "params", [3]),
    Case("empty", "params", []),
    Case("wrong_type", "model", "cnn"),
]


# ---------------------------------------------------------------------------- metrics
def detection_baseline(ctx):
    rng = np.random.default_rng(0)
    poisoned = np.zeros(20, dtype=bool)
    poisoned[:3] = True
    return {"losses": rng.random(20), "poisoned": poisoned, "eta": 0.1}


DETECTION_CASES = [
    Case("nan", "losses", Map(with_nan)),
    Case("inf", "losses", Map(with_inf)),
    Case("empty", "losses", Map(empty)),
    Case("string", "losses", Map(as_strings)),
    Case("complex", "losses", Map(as_complex), error=TypeError),
    Case("wrong_dimensions", "losses", Map(extra_axis)),
    Case("mismatched_length", "poisoned", Map(shorter)),
    Case("wrong_type", "poisoned", Map(lambda m: m.astype(float))),
    Case("out_of_range", "poisoned", Map(lambda m: m.astype(int) * 2)),
    Case("beta_range", "eta", 1.5),
    Case("nan", "eta", NAN),
    Case("string", "eta", "0.1"),
]

AUROC_CASES = [
    Case("nan", "scores", Map(with_nan)),
    Case("empty", "scores", Map(empty)),
    Case("mismatched_length", "poisoned", Map(shorter)),
    Case("one_class", "poisoned", Map(lambda m: np.zeros_like(m))),
]


# ---------------------------------------------------------------------------- the nn config
def nn_doc(ctx=None) -> dict:
    return {
        "study": {"title": "bad inputs"},
        "data": {"n_train": 100, "n_test": 20, "pool": 2, "size": 2, "fraction": 0.1},
        "grid": {"fraction": [0.1, 0.2]},
        "model": {"kind": "small_cnn", "width": 2},
        "train": {"epochs": [1, 2], "batch_size": 50, "lr": 0.05},
        "curve": {"betas": [0.0, 0.5, 1.0]},
        "slope": {"h": [0.1, 1.0], "seeds": [0, 1], "exact": True},
        "tracking": {"budget": 20, "eta": 0.1, "layers": ["conv1"]},
    }


def _rename_section(old, new):
    def edit(doc):
        doc[new] = doc.pop(old)
        return doc

    return Edit(edit)


NN_CONFIG_CASES = [
    Case("toml_misspelled_key", "train.epoch", rename_in(("train", "epochs"), "epoch")),
    Case("toml_misspelled_key", "data.fractoin", rename_in(("data", "fraction"), "fractoin")),
    Case("toml_misspelled_key", "grid.fractoin", rename_in(("grid", "fraction"), "fractoin")),
    Case("toml_misspelled_key", "model.widht", rename_in(("model", "width"), "widht")),
    Case("toml_misspelled_key", "slope.hh", rename_in(("slope", "h"), "hh")),
    Case("toml_misspelled_key", "tracking.bugdet", rename_in(("tracking", "budget"), "bugdet")),
    Case("toml_misspelled_key", "curve.beta", rename_in(("curve", "betas"), "beta")),
    Case("toml_misspelled_key", "trian", _rename_section("train", "trian")),
    Case("toml_wrong_type", "train.lr", set_in(("train", "lr"), "0.05")),
    Case("toml_wrong_type", "train.batch_size", set_in(("train", "batch_size"), 50.0)),
    Case("toml_wrong_type", "data.n_train", set_in(("data", "n_train"), "100")),
    Case("toml_wrong_type", "data.exclude_target", set_in(("data", "exclude_target"), "yes")),
    Case("toml_wrong_type", "model.width", set_in(("model", "width"), 2.5)),
    Case("toml_wrong_type", "slope.exact", set_in(("slope", "exact"), "yes")),
    Case("toml_wrong_type", "tracking.layers", set_in(("tracking", "layers"), "conv1")),
    Case("toml_wrong_type", "curve.betas", set_in(("curve", "betas"), "3")),
    Case("toml_wrong_type", "data", set_in(("data",), [1])),
    Case("nonfinite_param", "train.lr", set_in(("train", "lr"), NAN), label="nan"),
    Case("nonfinite_param", "train.lr", set_in(("train", "lr"), INF), label="inf"),
    Case("nonfinite_param", "train.weight_decay", set_in(("train", "weight_decay"), NAN)),
    Case("nonfinite_param", "slope.h", set_in(("slope", "h"), [NAN])),
    Case("negative_param", "train.lr", set_in(("train", "lr"), -0.1)),
    Case("negative_param", "train.weight_decay", set_in(("train", "weight_decay"), -1.0)),
    Case("negative_param", "data.size", set_in(("data", "size"), -1)),
    Case("negative_param", "model.width", set_in(("model", "width"), -1)),
    Case("negative_param", "data.random_state", set_in(("data", "random_state"), -1)),
    Case("fraction_bounds", "data.fraction", set_in(("data", "fraction"), 0.0), label="0"),
    Case("fraction_bounds", "data.fraction", set_in(("data", "fraction"), 1.0), label="1"),
    Case("fraction_bounds", "grid.fraction", set_in(("grid", "fraction"), [0.1, 1.0])),
    Case("fraction_bounds", "tracking.eta", set_in(("tracking", "eta"), 1.0)),
    Case("beta_range", "curve.betas", set_in(("curve", "betas"), [0.0, 1.5])),
    Case("beta_range", "slope.h", set_in(("slope", "h"), [1.5])),
    Case("out_of_range", "slope.h", set_in(("slope", "h"), [0.0]), label="zero"),
    Case("trigger_too_large", "data.size", set_in(("data", "size"), 15)),
    Case("trigger_too_large", "grid.size", set_in(("grid", "size"), [2, 15])),
    Case("unknown_option", "model.kind", set_in(("model", "kind"), "cnn")),
    Case("unknown_option", "data.mode", set_in(("data", "mode"), "one-to-all")),
    Case("unknown_option", "train.optimizer", set_in(("train", "optimizer"), "sgdd")),
    Case("unknown_option", "data.dataset", set_in(("data", "dataset"), "cifar")),
    Case("unknown_option", "data.trigger", set_in(("data", "trigger"), "badnet")),
    Case("out_of_range", "data.target", set_in(("data", "target"), 12)),
    Case("out_of_range", "data.pool", set_in(("data", "pool"), 3)),
    Case("out_of_range", "train.epochs", set_in(("train", "epochs"), 0)),
    Case("out_of_range", "train.momentum", set_in(("train", "momentum"), 1.0)),
    Case("out_of_range", "data.n_train", set_in(("data", "n_train"), 5)),
    Case("out_of_range", "curve.betas", set_in(("curve", "betas"), 1)),
    Case("empty", "grid.fraction", set_in(("grid", "fraction"), [])),
    Case("empty", "train.epochs", set_in(("train", "epochs"), [])),
    Case("empty", "slope.seeds", set_in(("slope", "seeds"), [])),
    Case("empty", "tracking.layers", set_in(("tracking", "layers"), [])),
    Case("empty", "model", set_in(("model",), [])),
]

_COUNTER = itertools.count()


def load_nn_from_doc(ctx, doc):
    return load_nn_config(ctx.file(f"nn{next(_COUNTER)}.toml", toml_text(doc)))


LOAD_NN_PATH_CASES = [
    Case("wrong_type", "path", 3),
    Case(
        "bad_file",
        "path",
        "/nonexistent/nn.toml",
        error=FileNotFoundError,
        names="/nonexistent/nn.toml",
        label="missing",
    ),
]


ENTRIES = [
    EntryPoint(
        "TrainConfig", lambda ctx: {}, lambda ctx, kw: TrainConfig(**kw), TRAIN_CONFIG_CASES
    ),
    EntryPoint("nn.train", train_baseline, lambda ctx, kw: train(**kw), TRAIN_CASES),
    EntryPoint("nn.evaluate", evaluate_baseline, lambda ctx, kw: evaluate(**kw), EVALUATE_CASES),
    EntryPoint("nn_learning_curve", curve_baseline, nn_curve, NN_CURVE_CASES),
    EntryPoint(
        "nn_backdoor_slope",
        slope_baseline,
        lambda ctx, kw: nn_backdoor_slope(**kw),
        NN_SLOPE_CASES,
    ),
    EntryPoint(
        "training_derivative",
        lambda ctx: {
            **{k: v for k, v in slope_baseline(ctx).items() if k not in ("h", "seeds")},
            "progress": False,
        },
        lambda ctx, kw: training_derivative(**kw),
        DERIVATIVE_CASES,
    ),
    EntryPoint(
        "per_sample_losses",
        per_sample_baseline,
        lambda ctx, kw: per_sample_losses(**kw),
        PER_SAMPLE_CASES,
    ),
    EntryPoint(
        "per_sample_grads",
        lambda ctx: {**per_sample_baseline(ctx), "params": ["fc"]},
        lambda ctx, kw: per_sample_grads(**kw),
        GRADS_CASES,
    ),
    EntryPoint(
        "select_parameters",
        lambda ctx: {"model": ctx.cnn, "params": ["conv1"]},
        lambda ctx, kw: select_parameters(**kw),
        SELECT_CASES,
    ),
    EntryPoint(
        "SmallCNN",
        lambda ctx: {"n_classes": 10, "in_channels": 1, "width": 2},
        lambda ctx, kw: SmallCNN(**kw),
        [
            Case("out_of_range", "n_classes", 1),
            Case("negative_param", "width", -2),
            Case("string", "in_channels", "1"),
            Case("wrong_type", "width", 2.5),
        ],
    ),
    EntryPoint(
        "isolation_precision",
        detection_baseline,
        lambda ctx, kw: isolation_precision(**kw),
        DETECTION_CASES,
    ),
    EntryPoint(
        "poison_auroc",
        lambda ctx: (
            {k: v for k, v in detection_baseline(ctx).items() if k != "eta"}
            | {"scores": detection_baseline(ctx)["losses"]}
        ),
        lambda ctx, kw: poison_auroc(kw["scores"], kw["poisoned"]),
        AUROC_CASES,
    ),
    EntryPoint("parse_nn_config", nn_doc, lambda ctx, doc: parse_nn_config(doc), NN_CONFIG_CASES),
    EntryPoint(
        "load_nn_config",
        nn_doc,
        load_nn_from_doc,
        [c for c in NN_CONFIG_CASES if c.kind.startswith("toml_")],
    ),
    EntryPoint(
        "load_nn_config(path)",
        lambda ctx: {"path": ctx.file("nn_valid.toml", toml_text(nn_doc()))},
        lambda ctx, kw: load_nn_config(**kw),
        LOAD_NN_PATH_CASES,
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
