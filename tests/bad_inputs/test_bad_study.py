"""Bad inputs of the study API: grid studies, the robust region, result files, TOML configs."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
import pytest
from bad_input_catalogue import (
    Case,
    Edit,
    EntryPoint,
    Set,
    check_python,
    register,
    rename_in,
    set_in,
    toml_text,
)

import backdoor_curves as bc
from backdoor_curves.study.config import parse_config

NAN, INF = math.nan, math.inf
_GRID = "study/grid.py"


# ---------------------------------------------------------------------------- grid_study
def grid_baseline(ctx):
    return {
        "learners": bc.RidgeLearner(),
        "data": ctx.data,
        "param_grid": {"alpha": [1.0]},
        "n_jobs": 1,
        "backend": None,
        "betas": None,
        "random_state": 0,
        "recompute_changed": False,
    }


GRID_CASES = [
    Case("wrong_type", "learners", "ridge"),
    Case("wrong_type", "learners", bc.RidgeLearner, label="class"),
    Case("wrong_type", "data", Edit(lambda kw: {**kw, "data": (1, 2)})),
    Case("unknown_option", "param_grid", Set({"alpah": [1.0]}), names="alpah"),
    Case("empty", "param_grid", Set({"alpha": []})),
    Case("wrong_type", "param_grid", "alpha"),
    Case(
        "negative_param",
        "param_grid",
        Set({"alpha": [-1.0]}),
        names="alpha",
    ),
    Case(
        "nonfinite_param",
        "param_grid",
        Set({"alpha": [NAN]}),
        names="alpha",
    ),
    Case("out_of_range", "n_jobs", 0),
    Case("string", "n_jobs", "2"),
    Case("wrong_type", "n_jobs", 1.5),
    Case("unknown_option", "backend", "spark"),
    Case("beta_range", "betas", [0.0, 1.5]),
    Case("nan", "betas", [NAN]),
    Case("negative_param", "random_state", -1),
    Case("string", "random_state", "0"),
    Case("string", "recompute_changed", "yes"),
]


# ---------------------------------------------------------------------------- robust_region
def robust_baseline(ctx):
    table = pd.DataFrame(
        {
            "learner": ["a"] * 4,
            "C": [1.0, 1.0, 10.0, 10.0],
            "random_state": [0, 1, 0, 1],
            "clean_accuracy": [0.99, 0.98, 0.99, 0.99],
            "backdoor_accuracy": [0.02, 0.05, 0.04, 0.60],
        }
    )
    return {
        "table": table,
        "min_clean_accuracy": 0.95,
        "max_backdoor_accuracy": 0.1,
        "clean_drop": None,
        "seed_share": 1.0,
        "by": None,
    }


ROBUST_CASES = [
    Case("wrong_type", "table", Set({"learner": ["a"]})),
    Case("empty", "table", Set(pd.DataFrame())),
    Case("out_of_range", "min_clean_accuracy", 1.5),
    Case("nan", "min_clean_accuracy", NAN),
    Case("string", "min_clean_accuracy", "0.9"),
    Case("negative_param", "max_backdoor_accuracy", -0.1),
    Case("wrong_type", "max_backdoor_accuracy", None),
    Case("inf", "clean_drop", INF),
    Case("fraction_bounds", "seed_share", 0.0),
    Case("unknown_option", "by", ["gamma"]),
    Case("wrong_type", "by", "C"),
]


# ---------------------------------------------------------------------------- files
def _damaged_curves(ctx) -> str:
    lines = Path(ctx.curves_csv).read_text().splitlines()
    lines[1] = "# {not json"
    return ctx.file("damaged.csv", "\n".join(lines) + "\n")


def _file(kw: dict, name: str, content) -> str:
    """Write a file in the session's folder (the call carries the context as ``ctx``)."""
    return kw["ctx"].file(name, content)


def _curves_with(ctx, name: str, beta: str) -> str:
    return ctx.file(name, f"learner,beta,backdoor_loss\nridge,0.0,1.0\nridge,{beta},0.5\n")


READ_STUDY_CASES = [
    Case("wrong_type", "path", 3),
    Case(
        "bad_file",
        "path",
        Edit(lambda kw: {**kw, "path": "/nonexistent/study.sqlite"}),
        error=FileNotFoundError,
        label="missing",
    ),
    Case("empty", "path", Edit(lambda kw: {**kw, "path": kw["ctx"].file("empty.csv", "")})),
    Case(
        "bad_file",
        "path",
        Edit(lambda kw: {**kw, "path": _file(kw, "bin.csv", b"\xff" * 9)}),
        label="binary",
    ),
    Case(
        "bad_file",
        "path",
        Edit(lambda kw: {**kw, "path": _file(kw, "nol.csv", "a,b\n1,2\n")}),
        label="no_learner_column",
    ),
    Case("bad_file", "path", Edit(lambda kw: {**kw, "path": kw["ctx"].empty_dir}), label="dir"),
    Case("wrong_type", "curves", 3),
    Case(
        "bad_file",
        "curves",
        Edit(
            lambda kw: {
                **kw,
                "path": kw["ctx"].study_csv,
                "curves": kw["ctx"].file("nofit.csv", "curve,beta\n0,0.0\n"),
            }
        ),
        label="not_fitting",
    ),
]

READ_CURVES_CASES = [
    Case("wrong_type", "path", 3),
    Case(
        "bad_file",
        "path",
        Edit(lambda kw: {**kw, "path": "/nonexistent/curves.csv"}),
        error=FileNotFoundError,
        names="/nonexistent/curves.csv",
        label="missing",
    ),
    Case("empty", "path", Edit(lambda kw: {**kw, "path": kw["ctx"].file("empty.csv", "")})),
    Case(
        "bad_file",
        "path",
        Edit(lambda kw: {**kw, "path": _file(kw, "bin.csv", b"\xff" * 9)}),
        label="binary",
    ),
    Case(
        "bad_file",
        "path",
        Edit(lambda kw: {**kw, "path": _file(kw, "nob.csv", "a,b\n1,2\n")}),
        label="no_beta_column",
    ),
    Case(
        "bad_file",
        "path",
        Edit(lambda kw: {**kw, "path": _damaged_curves(kw["ctx"])}),
        label="damaged_header",
    ),
    Case(
        "beta_range",
        "path",
        Edit(lambda kw: {**kw, "path": _curves_with(kw["ctx"], "b15.csv", "1.5")}),
        names="beta",
    ),
    Case(
        "nan",
        "path",
        Edit(lambda kw: {**kw, "path": _curves_with(kw["ctx"], "bnan.csv", "nan")}),
        names="beta",
    ),
]

WRITE_CURVES_CASES = [
    Case("wrong_type", "curves", "curve"),
    Case("wrong_type", "curves", Set([3]), names="curves[0]", label="item"),
    Case("wrong_type", "path", 3),
]


# ---------------------------------------------------------------------------- TOML configs
def grid_doc(ctx=None) -> dict:
    return {
        "study": {"title": "bad inputs", "betas": 3},
        "data": {"n_train": 60, "n_test": 20, "size": 2, "fraction": 0.1, "digits": [7, 1]},
        "grid": {"fraction": [0.1, 0.2]},
        "learner": [
            {"kind": "logistic", "C": [1.0, 10.0]},
            {"kind": "ridge", "alpha": 1.0},
            {"kind": "rbf_svm", "C": 1.0, "gamma": {"geomspace": [0.001, 0.01, 2]}},
        ],
    }


def _unswept(key: str, value) -> Edit:
    """Set ``data.<key>`` and drop the ``[grid]`` sweep of it (which would override it)."""

    def edit(doc):
        doc["data"][key] = value
        doc["grid"].pop(key, None)
        return doc

    return Edit(edit)


def _drop(key):
    def edit(doc):
        doc.pop(key)
        return doc

    return Edit(edit)


def _rename_section(old, new):
    def edit(doc):
        doc[new] = doc.pop(old)
        return doc

    return Edit(edit)


CONFIG_CASES = [
    # misspelled keys
    Case("toml_misspelled_key", "learner[0].c", rename_in(("learner", 0, "C"), "c")),
    Case("toml_misspelled_key", "learner[2].gama", rename_in(("learner", 2, "gamma"), "gama")),
    Case("toml_misspelled_key", "learner[1].aplha", rename_in(("learner", 1, "alpha"), "aplha")),
    Case("toml_misspelled_key", "data.fractoin", rename_in(("data", "fraction"), "fractoin")),
    Case("toml_misspelled_key", "grid.fractoin", rename_in(("grid", "fraction"), "fractoin")),
    Case("toml_misspelled_key", "study.titel", rename_in(("study", "title"), "titel")),
    Case("toml_misspelled_key", "learners", _rename_section("learner", "learners")),
    Case("toml_misspelled_key", "learner", _drop("learner"), label="missing"),
    # wrong types
    Case("toml_wrong_type", "learner[0].C", set_in(("learner", 0, "C"), "ten")),
    Case(
        "toml_wrong_type",
        "learner[0].C",
        set_in(("learner", 0, "C"), [1.0, "ten"]),
        label="in_list",
    ),
    Case("toml_wrong_type", "learner[0].C", set_in(("learner", 0, "C"), True), label="bool"),
    Case("toml_wrong_type", "data.fraction", set_in(("data", "fraction"), "0.1")),
    Case("toml_wrong_type", "data.digits", set_in(("data", "digits"), 7)),
    Case("toml_wrong_type", "data.size", set_in(("data", "size"), 2.5)),
    Case("toml_wrong_type", "data.n_train", set_in(("data", "n_train"), "60")),
    Case("toml_wrong_type", "study.title", set_in(("study", "title"), 3)),
    Case("toml_wrong_type", "study.betas", set_in(("study", "betas"), "21")),
    Case("toml_wrong_type", "grid.fraction", set_in(("grid", "fraction"), "0.1")),
    Case("toml_wrong_type", "learner", set_in(("learner",), {"kind": "logistic"})),
    Case("toml_wrong_type", "data", set_in(("data",), [1, 2])),
    # values
    Case("nonfinite_param", "learner[0].C", set_in(("learner", 0, "C"), NAN), label="nan"),
    Case("nonfinite_param", "learner[0].C", set_in(("learner", 0, "C"), INF), label="inf"),
    Case("nonfinite_param", "learner[2].gamma", set_in(("learner", 2, "gamma"), NAN)),
    Case("nonfinite_param", "learner[1].alpha", set_in(("learner", 1, "alpha"), INF)),
    Case("negative_param", "learner[0].C", set_in(("learner", 0, "C"), -1.0)),
    Case("negative_param", "learner[1].alpha", set_in(("learner", 1, "alpha"), -1.0)),
    Case("negative_param", "learner[2].gamma", set_in(("learner", 2, "gamma"), -0.01)),
    Case("negative_param", "data.size", set_in(("data", "size"), -2)),
    Case(
        "out_of_range",
        "learner[0].C",
        set_in(("learner", 0, "C"), {"geomspace": [0, 1, 3]}),
        label="geomspace_zero",
    ),
    Case(
        "out_of_range",
        "learner[2].gamma",
        set_in(("learner", 2, "gamma"), {"geomspace": [0.001, 0.01, 0]}),
        label="num_0",
    ),
    Case("out_of_range", "data.random_state", set_in(("data", "random_state"), -1)),
    Case("out_of_range", "study.betas", set_in(("study", "betas"), 1)),
    Case("nan", "data.fraction", _unswept("fraction", NAN)),
    Case("inf", "data.fraction", _unswept("fraction", INF)),
    Case("fraction_bounds", "data.fraction", _unswept("fraction", 0.0), label="0"),
    Case("fraction_bounds", "data.fraction", _unswept("fraction", 1.0), label="1"),
    Case("fraction_bounds", "grid.fraction", set_in(("grid", "fraction"), [0.1, 1.0])),
    Case("beta_range", "study.betas", set_in(("study", "betas"), [0.0, 1.5])),
    Case("beta_range", "study.betas", set_in(("study", "betas"), [-0.1, 1.0]), label="negative"),
    Case("trigger_too_large", "data.size", set_in(("data", "size"), 29)),
    Case("one_class", "data.digits", set_in(("data", "digits"), [7, 7])),
    Case("three_classes", "data.digits", set_in(("data", "digits"), [7, 1, 3])),
    Case("unknown_option", "learner[0].kind", set_in(("learner", 0, "kind"), "svm")),
    Case("unknown_option", "data.trigger", set_in(("data", "trigger"), "badnet")),
    Case("unknown_option", "data.dataset", set_in(("data", "dataset"), "mnist2")),
    Case("unknown_option", "grid.C", set_in(("grid", "C"), [1.0])),
    Case("empty", "learner[0].C", set_in(("learner", 0, "C"), [])),
    Case("empty", "learner", set_in(("learner",), [])),
    Case("empty", "grid.fraction", set_in(("grid", "fraction"), [])),
    Case("empty", "study.betas", set_in(("study", "betas"), [])),
]

_COUNTER = itertools.count()


def load_config_from_doc(ctx, doc):
    return bc.load_config(ctx.file(f"config{next(_COUNTER)}.toml", toml_text(doc)))


LOAD_CONFIG_PATH_CASES = [
    Case("wrong_type", "path", 3),
    Case(
        "bad_file",
        "path",
        "/nonexistent/config.toml",
        error=FileNotFoundError,
        names="/nonexistent/config.toml",
        label="missing",
    ),
    Case(
        "bad_file",
        "path",
        Edit(lambda kw: {**kw, "path": kw["ctx"].file("bad.toml", "[data\n")}),
        names="bad.toml",
        label="not_toml",
    ),
    Case(
        "empty",
        "path",
        Edit(lambda kw: {**kw, "path": kw["ctx"].file("empty.toml", "")}),
        names="learner",
    ),
]


def with_ctx(baseline):
    """A baseline whose call also carries the context (for cases that write files)."""
    return lambda ctx: {**baseline(ctx), "ctx": ctx}


def without_ctx(func):
    return lambda ctx, kw: func(**{k: v for k, v in kw.items() if k != "ctx"})


ENTRIES = [
    EntryPoint("grid_study", grid_baseline, lambda ctx, kw: bc.grid_study(**kw), GRID_CASES),
    EntryPoint(
        "robust_region",
        robust_baseline,
        lambda ctx, kw: bc.robust_region(kw.pop("table"), **kw),
        ROBUST_CASES,
    ),
    EntryPoint(
        "read_study",
        with_ctx(lambda ctx: {"path": ctx.study_store, "curves": None}),
        without_ctx(bc.read_study),
        READ_STUDY_CASES,
    ),
    EntryPoint(
        "read_curves",
        with_ctx(lambda ctx: {"path": ctx.curves_csv}),
        without_ctx(bc.read_curves),
        READ_CURVES_CASES,
    ),
    EntryPoint(
        "write_curves",
        lambda ctx: {"curves": ctx.ridge_curve, "path": str(ctx.tmp / "written.csv")},
        lambda ctx, kw: bc.write_curves(**kw),
        WRITE_CURVES_CASES,
    ),
    EntryPoint("parse_config", grid_doc, lambda ctx, doc: parse_config(doc), CONFIG_CASES),
    EntryPoint(
        "load_config",
        grid_doc,
        load_config_from_doc,
        [c for c in CONFIG_CASES if c.kind.startswith("toml_") or c.kind == "nonfinite_param"],
    ),
    EntryPoint(
        "load_config(path)",
        with_ctx(lambda ctx: {"path": ctx.file("valid.toml", toml_text(grid_doc()))}),
        without_ctx(bc.load_config),
        LOAD_CONFIG_PATH_CASES,
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
