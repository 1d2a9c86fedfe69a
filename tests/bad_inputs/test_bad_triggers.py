"""Bad inputs of the Blend, SIG and WaNet triggers (issue #16): their constructors, ``apply``,
``make_trigger`` by name, and their keys in the grid-study, nn and extractors ``[data]`` tables."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from bad_input_catalogue import (
    Case,
    Edit,
    EntryPoint,
    Map,
    as_complex,
    as_strings,
    check_python,
    one_sample,
    register,
    rename_in,
    set_in,
    shorter,
    third_class,
    times_255,
    toml_text,
    with_nan,
)

import backdoor_curves as bc
from backdoor_curves.study.config import parse_config

NAN, INF = math.nan, math.inf


# ---------------------------------------------------------------------------- constructors
BLEND_CASES = [
    Case("nonfinite_param", "alpha", NAN, label="nan"),
    Case("nonfinite_param", "alpha", INF, label="inf"),
    Case("negative_param", "alpha", -0.2),
    Case("out_of_range", "alpha", 1.5),
    Case("out_of_range", "alpha", 0.0, label="zero"),
    Case("string", "alpha", "0.2"),
    Case("unknown_option", "pattern", "kitty"),
    Case("wrong_type", "pattern", None),
    Case("wrong_dimensions", "pattern", np.zeros(14)),
    Case("image_range", "pattern", np.full((14, 14), 255.0)),
    Case("nan", "pattern", np.full((14, 14), NAN)),
    Case("string", "pattern", np.full((2, 2), "a")),
    Case("empty", "pattern", np.zeros((0, 14))),
    Case("negative_param", "random_state", -1),
]

SIG_CASES = [
    Case("nonfinite_param", "delta", NAN, label="nan"),
    Case("nonfinite_param", "frequency", INF, label="inf"),
    Case("negative_param", "delta", -0.1),
    Case("negative_param", "frequency", -6.0),
    Case("out_of_range", "delta", 2.0),
    Case("out_of_range", "frequency", 0.0),
    Case("string", "frequency", "6"),
    Case("unknown_option", "combine", "multiply"),
    Case("wrong_type", "combine", 1),
]

WANET_CASES = [
    Case("negative_param", "k", -4),
    Case("out_of_range", "k", 1),
    Case("wrong_type", "k", 2.5),
    Case("string", "k", "4"),
    Case("nonfinite_param", "strength", NAN, label="nan"),
    Case("nonfinite_param", "strength", INF, label="inf"),
    Case("negative_param", "strength", -0.5),
    Case("string", "strength", "0.5"),
    Case("wrong_type", "noise_mode", "yes"),
    Case("wrong_type", "noise_mode", 1, label="int"),
    Case("negative_param", "random_state", -1),
]

MAKE_TRIGGER_CASES = [
    Case("unknown_option", "name", "refool", names="trigger"),
    Case("unknown_option", "alhpa", Edit(lambda kw: {**kw, "alhpa": 0.2}), error=TypeError),
    Case("unknown_option", "size", Edit(lambda kw: {**kw, "size": 3}), error=TypeError),
]


# ---------------------------------------------------------------------------- apply
def apply_baseline(ctx):
    _, _, X_test, y_test = ctx.images  # 20 digits, 14 x 14
    return {"images": X_test, "source_labels": y_test, "classes": [1, 7]}


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


def blend_apply(ctx, kw):
    kw = dict(kw)
    return bc.Blend(pattern=kw.pop("pattern", "noise")).apply(**kw)


def wanet_apply(ctx, kw):
    kw = dict(kw)
    return bc.WaNet(k=kw.pop("k", 4), noise_mode=True).apply(**kw)


# ---------------------------------------------------------------------------- [data] tables
def study_doc(ctx=None) -> dict:
    return {
        "data": {"n_train": 60, "n_test": 20, "trigger": "wanet", "k": 4, "noise_mode": True},
        "grid": {"strength": [0.5, 1.0]},
        "learner": [{"kind": "ridge", "alpha": 1.0}],
    }


def with_trigger(name: str, **params) -> Edit:
    """The study document with another trigger and its parameters (the WaNet keys removed)."""

    def edit(doc):
        for key in ("k", "noise_mode"):
            doc["data"].pop(key)
        doc.pop("grid")
        doc["data"].update(trigger=name, **params)
        return doc

    return Edit(edit)


STUDY_CASES = [
    Case("toml_misspelled_key", "data.nosie_mode", rename_in(("data", "noise_mode"), "nosie_mode")),
    Case("toml_misspelled_key", "grid.strenght", rename_in(("grid", "strength"), "strenght")),
    Case("toml_wrong_type", "data.k", set_in(("data", "k"), 2.5)),
    Case("toml_wrong_type", "data.noise_mode", set_in(("data", "noise_mode"), "yes")),
    Case(
        "toml_wrong_type",
        "grid.strength",
        set_in(("grid", "strength"), [0.5, "1"]),
        names="grid.strength",
    ),  # fmt: skip
    Case("trigger_too_large", "data.k", set_in(("data", "k"), 29)),
    Case("out_of_range", "data.k", set_in(("data", "k"), 1)),
    Case("negative_param", "grid.strength", set_in(("grid", "strength"), [0.5, -1.0])),
    Case("nonfinite_param", "grid.strength", set_in(("grid", "strength"), [INF])),
    Case("out_of_range", "data.alpha", with_trigger("blend", alpha=1.5)),
    Case("unknown_option", "data.pattern", with_trigger("blend", pattern="kitty")),
    Case("unknown_option", "data.combine", with_trigger("sig", combine="multiply")),
    Case("out_of_range", "data.delta", with_trigger("sig", delta=2.0)),
    Case("unknown_option", "data.alpha", with_trigger("badnets", alpha=0.2)),
]


def nn_doc(ctx=None) -> dict:
    return {
        "study": {"title": "bad inputs"},
        "data": {"n_train": 100, "n_test": 20, "pool": 2, "trigger": "blend", "alpha": 0.2},
        "model": {"kind": "small_cnn", "width": 2},
        "train": {"epochs": [1], "batch_size": 50, "lr": 0.05},
        "curve": {"betas": [0.0, 1.0]},
    }


NN_CASES = [
    Case("toml_misspelled_key", "data.alhpa", rename_in(("data", "alpha"), "alhpa")),
    Case("toml_wrong_type", "data.alpha", set_in(("data", "alpha"), "0.2")),
    Case("out_of_range", "data.alpha", set_in(("data", "alpha"), 1.5)),
    Case("unknown_option", "data.pattern", set_in(("data", "pattern"), "kitty")),
    Case("unknown_option", "data.k", set_in(("data", "k"), 4)),  # not a Blend parameter
    Case("trigger_too_large", "data.k", Edit(lambda doc: _wanet_nn(doc, k=15))),
    Case("trigger_too_large", "grid.k", Edit(lambda doc: _wanet_nn(doc, grid={"k": [2, 15]}))),
    Case("toml_wrong_type", "data.noise_mode", Edit(lambda doc: _wanet_nn(doc, noise_mode=1))),
]


def _wanet_nn(doc, grid=None, **params):
    doc["data"].pop("alpha")
    doc["data"].update(trigger="wanet", **params)
    if grid:
        doc["grid"] = grid
    return doc


def parse_nn(ctx, doc):
    pytest.importorskip("torch")
    from backdoor_curves.nn.config import parse_nn_config

    return parse_nn_config(doc)


_COUNTER = itertools.count()


def load_study_from_doc(ctx, doc):
    return bc.load_config(ctx.file(f"trigger_config{next(_COUNTER)}.toml", toml_text(doc)))


def extractors_baseline(ctx):
    return {"dataset": "mnist", "n_train": 40, "n_test": 10, "trigger": "sig", "delta": 0.1}


def extractors_call(ctx, kw):
    extractors = pytest.importorskip("extractors")
    return extractors.load_backdoor_data(**kw)


EXTRACTORS_CASES = [
    Case("out_of_range", "delta", 2.0),
    Case("unknown_option", "combine", "multiply"),
    Case("unknown_option", "alhpa", Edit(lambda kw: {**kw, "alhpa": 0.2})),
    Case("unknown_option", "alpha", Edit(lambda kw: {**kw, "alpha": 0.2})),  # not a SIG key
    Case(
        "trigger_too_large",
        "k",
        Edit(lambda kw: {**kw, "trigger": "wanet", "k": 40, "delta": None}),
    ),  # fmt: skip
]


ENTRIES = [
    EntryPoint("Blend", lambda ctx: {"alpha": 0.2}, lambda ctx, kw: bc.Blend(**kw), BLEND_CASES),
    EntryPoint("SIG", lambda ctx: {"delta": 0.1}, lambda ctx, kw: bc.SIG(**kw), SIG_CASES),
    EntryPoint("WaNet", lambda ctx: {"k": 4}, lambda ctx, kw: bc.WaNet(**kw), WANET_CASES),
    EntryPoint(
        "make_trigger('blend')",
        lambda ctx: {"name": "blend", "alpha": 0.3},
        lambda ctx, kw: bc.make_trigger(**kw),
        MAKE_TRIGGER_CASES,
    ),
    EntryPoint(
        "Blend.apply",
        apply_baseline,
        blend_apply,
        [
            *APPLY_CASES,
            Case(
                "wrong_dimensions", "pattern", Edit(lambda kw: {**kw, "pattern": np.zeros((4, 4))})
            ),
        ],
    ),
    EntryPoint("SIG.apply", apply_baseline, lambda ctx, kw: bc.SIG().apply(**kw), APPLY_CASES),
    EntryPoint(
        "WaNet.apply",
        apply_baseline,
        wanet_apply,
        [*APPLY_CASES, Case("trigger_too_large", "k", Edit(lambda kw: {**kw, "k": 15}))],
    ),
    EntryPoint("parse_config(trigger)", study_doc, lambda ctx, doc: parse_config(doc), STUDY_CASES),
    EntryPoint(
        "load_config(trigger)",
        study_doc,
        load_study_from_doc,
        [c for c in STUDY_CASES if c.kind.startswith("toml_")],
    ),
    EntryPoint("parse_nn_config(trigger)", nn_doc, parse_nn, NN_CASES),
    EntryPoint(
        "load_backdoor_data(trigger)", extractors_baseline, extractors_call, EXTRACTORS_CASES
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
