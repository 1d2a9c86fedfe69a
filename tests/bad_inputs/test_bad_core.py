"""Bad inputs of the core API: learners, data containers, poisoning, triggers, curves, slopes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from bad_input_catalogue import (
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
    fewer_features,
    negative,
    one_class,
    one_sample,
    register,
    shorter,
    third_class,
    times_255,
    with_inf,
    with_nan,
)

import backdoor_curves as bc
from backdoor_curves.attacks.triggers import BadNetsPatch, InvisibleGrid

NAN, INF = math.nan, math.inf


def array_cases(arg: str, *, complex_error=ValueError, image=False, none=True) -> list[Case]:
    """NaN, inf, empty, wrong dimensions, strings, complex, object and None for an array."""
    cases = [
        Case("nan", arg, Map(with_nan)),
        Case("inf", arg, Map(with_inf)),
        Case("empty", arg, Map(empty)),
        Case("wrong_dimensions", arg, Map(one_sample), label="one_fewer"),
        Case("wrong_dimensions", arg, Map(extra_axis), label="one_more"),
        Case("string", arg, Map(as_strings)),
        Case("complex", arg, Map(as_complex), error=complex_error),
        Case("object", arg, Map(as_object)),
    ]
    if none:
        cases.append(Case("wrong_type", arg, Set(None)))
    if image:
        cases.append(Case("image_range", arg, Map(times_255)))
        cases.append(Case("image_range", arg, Map(negative), label="negative"))
    return cases


# ---------------------------------------------------------------------------- learners
LEARNERS = {
    "LogisticLearner": {"C": 1.0},
    "RidgeLearner": {"alpha": 1.0},
    "LinearSVMLearner": {"C": 1.0},
    "RBFSVMLearner": {"C": 1.0, "gamma": 0.01},
}


def fit_cases() -> list[Case]:
    return [
        *array_cases("X"),
        Case("mismatched_length", "X", Map(shorter)),
        Case("one_class", "y", Map(one_class)),
        Case("three_classes", "y", Map(third_class)),
        Case("mismatched_length", "y", Map(shorter)),
        Case("empty", "y", Map(empty)),
        Case("wrong_dimensions", "y", Map(extra_axis)),
        Case("nan", "y", Map(with_nan)),
        Case("complex", "y", Map(as_complex)),
        Case("object", "y", Map(as_object)),
        Case("wrong_type", "y", Set(None), error=ValueError),  # scikit-learn: "y is required"
        Case("nan", "sample_weight", Map(with_nan)),
        Case("inf", "sample_weight", Map(with_inf)),
        Case("negative_param", "sample_weight", Map(negative)),
        Case("mismatched_length", "sample_weight", Map(shorter)),
        Case("empty", "sample_weight", Map(empty)),
        Case("wrong_dimensions", "sample_weight", Map(extra_axis)),
        Case("string", "sample_weight", Map(as_strings)),
        Case("complex", "sample_weight", Map(as_complex)),
    ]


def param_cases(params: dict) -> list[Case]:
    cases = []
    for p in params:
        cases += [
            Case("nonfinite_param", p, NAN, label="nan"),
            Case("nonfinite_param", p, INF, label="inf"),
            Case("negative_param", p, -1.0),
            Case("out_of_range", p, 0.0, label="zero"),
            Case("string", p, "1"),
            Case("wrong_type", p, None),
        ]
    first = next(iter(params))
    cases.append(
        Case(
            "unknown_option",
            first + "_",
            Edit(lambda kw, k=first: {**kw, k + "_": 1.0}),
        )
    )
    return cases


def predict_cases() -> list[Case]:
    return [*array_cases("X"), Case("wrong_dimensions", "X", Map(fewer_features), label="features")]


def score_cases() -> list[Case]:
    return [
        Case("nan", "X", Map(with_nan)),
        Case("wrong_dimensions", "X", Map(fewer_features)),
        Case("three_classes", "y", Map(third_class)),
        Case("mismatched_length", "y", Map(shorter)),
        Case("object", "y", Map(as_object)),
        Case("wrong_dimensions", "y", Map(extra_axis)),
        Case("negative_param", "sample_weight", Map(negative)),
        Case("mismatched_length", "sample_weight", Map(shorter)),
        Case("nan", "sample_weight", Map(with_nan)),
    ]


def learner_entries(name: str, params: dict) -> list[EntryPoint]:
    cls = getattr(bc, name)

    def fit_baseline(ctx):
        d = ctx.data
        return {"X": d.X_clean, "y": d.y_clean, "sample_weight": np.ones(d.n_clean)}

    def set_params_fit(ctx, kw):
        return cls().set_params(**kw).fit(ctx.data.X_clean, ctx.data.y_clean)

    def method(which):
        return lambda ctx, kw: getattr(ctx.fitted(name), which)(**kw)

    def test_set(ctx):
        return {"X": ctx.data.X_test}

    def score_set(ctx):
        d = ctx.data
        return {"X": d.X_test, "y": d.y_test, "sample_weight": np.ones(len(d.y_test))}

    return [
        EntryPoint(f"{name}.fit", fit_baseline, lambda ctx, kw: cls().fit(**kw), fit_cases()),
        EntryPoint(
            f"{name}.set_params+fit", lambda ctx: dict(params), set_params_fit, param_cases(params)
        ),
        EntryPoint(f"{name}.predict", test_set, method("predict"), predict_cases()),
        EntryPoint(
            f"{name}.decision_function", test_set, method("decision_function"), predict_cases()
        ),
        EntryPoint(f"{name}.score", score_set, method("score"), score_cases()),
    ]


# ---------------------------------------------------------------------------- BackdoorData
def backdoor_data_baseline(ctx):
    d = ctx.data
    return {**{a: getattr(d, a) for a in bc.BackdoorData.ARRAYS}, "image_shape": (14, 14)}


BACKDOOR_DATA_CASES = [
    *array_cases("X_clean"),
    Case("empty", "X_poison", Map(empty)),
    Case("nan", "X_poison", Map(with_nan)),
    Case("wrong_dimensions", "X_poison", Map(fewer_features)),
    Case("wrong_dimensions", "X_test", Map(fewer_features)),
    Case("inf", "X_test_bd", Map(with_inf)),
    Case("string", "X_test_bd", Map(as_strings)),
    Case("one_class", "y_clean", Map(one_class)),
    Case("three_classes", "y_clean", Map(third_class)),
    Case("mismatched_length", "y_clean", Map(shorter)),
    Case("object", "y_clean", Map(as_object)),
    Case("wrong_dimensions", "y_clean", Map(extra_axis)),
    Case("complex", "y_clean", Map(as_complex)),
    Case("three_classes", "y_poison", Map(third_class)),
    Case("mismatched_length", "y_poison", Map(shorter)),
    Case("nan", "y_test", Map(with_nan)),
    Case("mismatched_length", "y_test", Map(shorter)),
    Case("three_classes", "y_test_bd", Map(lambda y: third_class(y, 3))),
    Case("wrong_dimensions", "image_shape", (13, 13)),
    Case("string", "image_shape", ("a", "b")),
    Case("negative_param", "image_shape", (-14, -14)),
]


def image_data_baseline(ctx):
    d = ctx.nn_data
    return {f.name: getattr(d, f.name) for f in dataclasses.fields(bc.ImageBackdoorData)}


IMAGE_DATA_CASES = [
    Case("nan", "X_train", Map(with_nan)),
    Case("inf", "X_train", Map(with_inf)),
    Case("image_range", "X_train", Map(times_255)),
    Case("wrong_dimensions", "X_train", Map(one_sample)),
    Case("string", "X_train", Map(as_strings)),
    Case("complex", "X_train", Map(as_complex), error=TypeError),
    Case("object", "X_train", Map(as_object)),
    Case("wrong_type", "X_train", Set(None)),
    Case("mismatched_length", "y_train", Map(shorter)),
    Case("three_classes", "y_train", Map(lambda y: third_class(y, 12))),
    Case("string", "y_train", Map(as_strings)),
    Case("wrong_type", "y_train", Map(lambda y: np.asarray(y, dtype=float))),
    Case("wrong_type", "poisoned", Map(np.flatnonzero)),
    Case("empty", "poisoned", Map(lambda m: np.zeros_like(m))),
    Case("mismatched_length", "poisoned", Map(shorter)),
    Case("mismatched_length", "y_source", Map(shorter)),
    Case("wrong_dimensions", "X_test", Map(lambda X: X[:, :-1])),
    Case("image_range", "X_test", Map(negative)),
    Case("mismatched_length", "y_test", Map(shorter)),
    Case("nan", "X_test_bd", Map(with_nan)),
    Case("mismatched_length", "y_test_bd", Map(shorter)),
    Case("out_of_range", "n_classes", 1),
    Case("string", "n_classes", "10"),
    Case("out_of_range", "target", 12),
    Case("negative_param", "target", -1),
    Case("unknown_option", "mode", "one-to-all"),
    Case("mismatched_length", "classes", Set(np.arange(9))),
]


def _sample_weight_cases() -> list[Case]:
    return [
        Case("beta_range", "beta", 1.5),
        Case("beta_range", "beta", -0.1, label="negative"),
        Case("nan", "beta", NAN),
        Case("inf", "beta", INF),
        Case("string", "beta", "0.5"),
    ]


# ---------------------------------------------------------------------------- poisoning
def poison_baseline(ctx):
    X_train, y_train, X_test, y_test = ctx.images
    return {
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "y_test": y_test,
        "trigger": "badnets",
        "fraction": 0.1,
        "random_state": 0,
        "size": 2,
    }


def image_array_cases(arg: str) -> list[Case]:
    return [
        Case("nan", arg, Map(with_nan)),
        Case("inf", arg, Map(with_inf)),
        Case("image_range", arg, Map(times_255)),
        Case("image_range", arg, Map(negative), label="negative"),
        Case("wrong_dimensions", arg, Map(one_sample)),
        Case("string", arg, Map(as_strings)),
        Case("complex", arg, Map(as_complex), error=TypeError),
        Case("object", arg, Map(as_object)),
        Case("wrong_type", arg, Set(None)),
    ]


POISON_CASES = [
    *image_array_cases("X_train"),
    Case("empty", "X_train", Map(empty)),
    Case("wrong_dimensions", "X_test", Map(lambda X: X[:, :-1])),
    Case("empty", "X_test", Map(empty)),
    Case("one_class", "y_train", Map(one_class)),
    Case("three_classes", "y_train", Map(third_class)),
    Case("mismatched_length", "y_train", Map(shorter)),
    Case("object", "y_train", Map(as_object)),
    Case("three_classes", "y_test", Map(lambda y: third_class(y, 3))),
    Case("mismatched_length", "y_test", Map(shorter)),
    Case("fraction_bounds", "fraction", 0.0, label="0"),
    Case("fraction_bounds", "fraction", 1.0, label="1"),
    Case("fraction_bounds", "fraction", 1.5, label="above"),
    Case("nan", "fraction", NAN),
    Case("out_of_range", "fraction", 0.001, label="empty_P"),
    Case("string", "fraction", "0.1"),
    Case("unknown_option", "trigger", "badnet"),
    Case("wrong_type", "trigger", 3),
    Case("trigger_too_large", "size", 15),
    Case("negative_param", "size", -2),
    Case("string", "size", "2"),
    Case(
        "unknown_option", "sise", Edit(lambda kw: {**kw, "sise": kw.pop("size")}), error=TypeError
    ),
    Case("negative_param", "random_state", -1),
    Case("string", "random_state", "0"),
    Case(
        "wrong_dimensions",
        "image_shape",
        Edit(lambda kw: {**kw, "X_train": kw["X_train"].reshape(60, -1), "image_shape": (13, 13)}),
    ),
]


def multiclass_baseline(ctx):
    X_train, y_train, X_test, y_test = ctx.nn_images
    return {
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "y_test": y_test,
        "mode": "all-to-one",
        "target": 0,
        "fraction": 0.1,
        "size": 2,
        "chunk_size": None,
        "exclude_target": True,
    }


MULTICLASS_CASES = [
    *image_array_cases("X_train"),
    Case("wrong_dimensions", "X_test", Map(lambda X: X[:, :-1])),
    Case("one_class", "y_train", Map(lambda y: np.zeros_like(y))),
    Case("mismatched_length", "y_train", Map(shorter)),
    Case("object", "y_train", Map(as_object)),
    Case("three_classes", "y_test", Map(lambda y: third_class(y, 12))),
    Case("mismatched_length", "y_test", Map(shorter)),
    Case("unknown_option", "mode", "one-to-all"),
    Case("out_of_range", "target", 12),
    Case("string", "target", "0"),
    Case("fraction_bounds", "fraction", 0.0, label="0"),
    Case("fraction_bounds", "fraction", 1.0, label="1"),
    Case("nan", "fraction", NAN),
    Case("trigger_too_large", "size", 15),
    Case("out_of_range", "chunk_size", 0),
    Case("string", "exclude_target", "yes"),
    Case("unknown_option", "trigger", "badnet"),
    Case(
        "unknown_option", "sise", Edit(lambda kw: {**kw, "sise": kw.pop("size")}), error=TypeError
    ),
]


# ---------------------------------------------------------------------------- triggers
MAKE_TRIGGER_CASES = [
    Case("unknown_option", "name", "badnet", names="trigger"),
    Case("wrong_type", "name", None, names="trigger"),
    Case("negative_param", "size", -3),
    Case("out_of_range", "size", 0),
    Case("string", "size", "3"),
    Case("wrong_type", "size", 2.5),
    Case("negative_param", "random_state", -1),
    Case("unknown_option", "sise", Edit(lambda kw: {**kw, "sise": 3}), error=TypeError),
]

INTENSITY_CASES = [
    Case("nonfinite_param", "intensity", NAN, label="nan"),
    Case("nonfinite_param", "intensity", INF, label="inf"),
    Case("negative_param", "intensity", -0.1),
    Case("out_of_range", "intensity", 1.5),
    Case("string", "intensity", "0.3"),
]


def trigger_apply_baseline(ctx):
    _, _, X_test, y_test = ctx.images
    return {"images": X_test, "source_labels": y_test, "classes": [1, 7]}


def badnets_apply(ctx, kw):
    kw = dict(kw)
    return BadNetsPatch(size=kw.pop("size", 3)).apply(**kw)


APPLY_CASES = [
    Case("nan", "images", Map(with_nan)),
    Case("image_range", "images", Map(times_255)),
    Case("wrong_dimensions", "images", Map(one_sample)),
    Case("empty", "images", Map(lambda X: X[:, :0])),
    Case("string", "images", Map(as_strings)),
    Case("complex", "images", Map(as_complex), error=TypeError),
    Case("mismatched_length", "source_labels", Map(shorter)),
    Case("three_classes", "source_labels", Map(lambda y: third_class(y, 3))),
]


# ---------------------------------------------------------------------------- curves and slopes
def curve_baseline(ctx):
    return {
        "learner": bc.RidgeLearner(alpha=1.0),
        "data": ctx.data,
        "betas": [0.0, 0.5, 1.0],
        "method": "auto",
    }


LEARNER_ARG_CASES = [
    Case("wrong_type", "learner", "ridge"),
    Case("wrong_type", "learner", bc.RidgeLearner, label="class"),
    Case("negative_param", "learner", Set(bc.RidgeLearner(alpha=-1.0)), names="alpha"),
    Case("nonfinite_param", "learner", Set(bc.LogisticLearner(C=NAN)), names="C"),
    Case("nonfinite_param", "learner", Set(bc.RBFSVMLearner(gamma=INF)), names="gamma"),
    Case("wrong_type", "data", Map(lambda d: (d.X_clean, d.y_clean))),
]

CURVE_CASES = [
    *LEARNER_ARG_CASES,
    Case("beta_range", "betas", [0.0, 1.5]),
    Case("beta_range", "betas", [-0.1, 0.5], label="negative"),
    Case("nan", "betas", [0.0, NAN]),
    Case("inf", "betas", [0.0, INF]),
    Case("empty", "betas", []),
    Case("wrong_dimensions", "betas", [[0.0, 0.5], [0.7, 1.0]]),
    Case("string", "betas", ["0", "1"]),
    Case("complex", "betas", [0.5j]),
    Case("unknown_option", "method", "exact"),
    Case("wrong_type", "method", 1),
]


def deviation_baseline(ctx):
    rng = np.random.default_rng(0)
    return {"W": rng.normal(size=(3, 5)), "w0": rng.normal(size=5), "gram": np.eye(5)}


DEVIATION_CASES = [
    Case("nan", "W", Map(with_nan)),
    Case("inf", "w0", Map(with_inf)),
    Case(
        "string",
        "W",
        Map(as_strings),
    ),
    Case(
        "complex",
        "W",
        Map(as_complex),
    ),
    Case("mismatched_length", "w0", Map(shorter)),
    Case("empty", "w0", Map(empty)),
    Case(
        "wrong_dimensions",
        "gram",
        Map(lambda G: G[:-1, :-1]),
    ),
    Case(
        "wrong_dimensions",
        "W",
        Map(extra_axis),
    ),
]


# ---------------------------------------------------------------------------- small helpers
MISC_ENTRIES = [
    EntryPoint(
        "default_betas",
        lambda ctx: {"n": 5},
        lambda ctx, kw: bc.default_betas(**kw),
        [
            Case("out_of_range", "n", 1),
            Case("string", "n", "5"),
            Case("wrong_type", "n", 5.5),
            Case("nan", "n", NAN, error=TypeError),
        ],
    ),
    EntryPoint(
        "slope_score",
        lambda ctx: {"derivative": -0.5},
        lambda ctx, kw: bc.slope_score(**kw),
        [
            Case("string", "derivative", "-0.5"),
            Case("wrong_type", "derivative", None),
            Case("complex", "derivative", 0.5j, error=TypeError),
        ],
    ),
    EntryPoint(
        "set_memory_budget",
        lambda ctx: {"n_bytes": 2**30},
        lambda ctx, kw: bc.set_memory_budget(**kw) or bc.set_memory_budget(None),
        [
            Case("negative_param", "n_bytes", -1),
            Case("nan", "n_bytes", NAN),
            Case("inf", "n_bytes", INF),
            Case("string", "n_bytes", "1GB"),
        ],
    ),
]


ENTRIES = [
    *(e for name, params in LEARNERS.items() for e in learner_entries(name, params)),
    EntryPoint(
        "BackdoorData",
        backdoor_data_baseline,
        lambda ctx, kw: bc.BackdoorData(**kw),
        BACKDOOR_DATA_CASES,
    ),
    EntryPoint(
        "BackdoorData.sample_weight",
        lambda ctx: {"beta": 0.5},
        lambda ctx, kw: ctx.data.sample_weight(**kw),
        _sample_weight_cases(),
    ),
    EntryPoint(
        "BackdoorData.training_set",
        lambda ctx: {"beta": 0.5, "shuffle": True, "random_state": 0},
        lambda ctx, kw: ctx.data.training_set(**kw),
        [
            Case("beta_range", "beta", 1.5),
            Case("string", "shuffle", "yes"),
            Case("negative_param", "random_state", -1),
        ],
    ),
    EntryPoint(
        "ImageBackdoorData",
        image_data_baseline,
        lambda ctx, kw: bc.ImageBackdoorData(**kw),
        IMAGE_DATA_CASES,
    ),
    EntryPoint(
        "ImageBackdoorData.sample_weight",
        lambda ctx: {"beta": 0.5},
        lambda ctx, kw: ctx.nn_data.sample_weight(**kw),
        _sample_weight_cases(),
    ),
    EntryPoint("poison", poison_baseline, lambda ctx, kw: bc.poison(**kw), POISON_CASES),
    EntryPoint(
        "poison_multiclass",
        multiclass_baseline,
        lambda ctx, kw: bc.poison_multiclass(**kw),
        MULTICLASS_CASES,
    ),
    EntryPoint(
        "make_trigger('badnets')",
        lambda ctx: {"name": "badnets", "size": 3, "random_state": 0},
        lambda ctx, kw: bc.make_trigger(**kw),
        MAKE_TRIGGER_CASES,
    ),
    EntryPoint(
        "make_trigger('invisible')",
        lambda ctx: {"name": "invisible", "intensity": 0.3},
        lambda ctx, kw: bc.make_trigger(**kw),
        INTENSITY_CASES,
    ),
    EntryPoint(
        "BadNetsPatch",
        lambda ctx: {"size": 3, "random_state": 0},
        lambda ctx, kw: BadNetsPatch(**kw),
        MAKE_TRIGGER_CASES[2:7],
    ),
    EntryPoint(
        "InvisibleGrid",
        lambda ctx: {"intensity": 0.3},
        lambda ctx, kw: InvisibleGrid(**kw),
        INTENSITY_CASES,
    ),
    EntryPoint(
        "BadNetsPatch.apply",
        trigger_apply_baseline,
        badnets_apply,
        [*APPLY_CASES, Case("trigger_too_large", "size", Edit(lambda kw: {**kw, "size": 15}))],
    ),
    EntryPoint(
        "InvisibleGrid.apply",
        trigger_apply_baseline,
        lambda ctx, kw: InvisibleGrid(0.3).apply(**kw),
        APPLY_CASES,
    ),
    EntryPoint(
        "learning_curve", curve_baseline, lambda ctx, kw: bc.learning_curve(**kw), CURVE_CASES
    ),
    EntryPoint(
        "backdoor_slope",
        lambda ctx: {"learner": bc.RidgeLearner(alpha=1.0), "data": ctx.data},
        lambda ctx, kw: bc.backdoor_slope(**kw),
        LEARNER_ARG_CASES,
    ),
    EntryPoint(
        "parameter_deviation",
        deviation_baseline,
        lambda ctx, kw: bc.parameter_deviation(**kw),
        DEVIATION_CASES,
    ),
    *MISC_ENTRIES,
]

BASELINES, CASES = register(ENTRIES)


@pytest.mark.parametrize("entry", BASELINES)
def test_baseline_is_valid(ctx, entry):
    """The valid call each case spoils runs (so every failure below is the bad input's)."""
    entry.call(ctx, entry.baseline(ctx))


@pytest.mark.parametrize("entry, case", CASES)
def test_bad_input(ctx, entry, case):
    check_python(ctx, entry, case)
