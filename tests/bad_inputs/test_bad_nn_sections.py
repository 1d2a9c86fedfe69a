"""Bad inputs of the attack-comparison sections of an nn configuration (``[[attack]]``,
``[dynamics]``, ``[convex]``, read by :func:`parse_nn_config` / :func:`load_nn_config`) and of
the attack table (:func:`attack_table`, :func:`convex_attack_scores`).

The convex baseline poisons the embedded MNIST 7-vs-1 pair and fits one logistic regression
(about a second); its bad inputs are refused before the data are loaded.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from bad_input_catalogue import (  # noqa: E402
    Case,
    Edit,
    EntryPoint,
    Map,
    Set,
    check_python,
    register,
    rename_in,
    set_in,
    toml_text,
)

from backdoor_curves.nn.config import load_nn_config, parse_nn_config  # noqa: E402
from backdoor_curves.nn.sections import ConvexSpec  # noqa: E402
from backdoor_curves.nn_comparison import attack_table, convex_attack_scores  # noqa: E402

NAN, INF = math.nan, math.inf


# ---------------------------------------------------------------------------- the sections
def sections_doc(ctx=None) -> dict:
    return {
        "data": {"n_train": 100, "n_test": 20, "pool": 2, "fraction": 0.1},
        "model": {"kind": "small_cnn", "width": 2},
        "train": {"epochs": 2, "batch_size": 50},
        "attack": [
            {"trigger": "badnets", "size": 2},
            {"name": "Blend", "trigger": "blend", "alpha": 0.2},
        ],
        "dynamics": {
            "layer": "conv2",
            "checkpoints": [0, 1, 2],
            "phases": [1, 2],
            "noise_std": 0.1,
            "max_samples": 20,
            "classes": [1, 2],
            "pca_components": 8,
            "y_hat": "logits",
            "negatives": 8,
            "critic_epochs": 5,
            "random_state": 0,
        },
        "convex": {
            "digits": [7, 1],
            "learner": "logistic",
            "C": [0.1, 1.0],
            "at": 1.0,
            "fraction": 0.1,
            "max_backdoor_accuracy": 0.1,
            "clean_drop": 0.02,
        },
    }


def _attack(i, key, value):
    return set_in(("attack", i, key), value)


def _dyn(key, value):
    return set_in(("dynamics", key), value)


def _cvx(key, value):
    return set_in(("convex", key), value)


SECTION_CASES = [
    # [[attack]]
    Case("toml_misspelled_key", "attack[1].alhpa", rename_in(("attack", 1, "alpha"), "alhpa")),
    Case("toml_misspelled_key", "attack[0].trigger", rename_in(("attack", 0, "trigger"), "trigge")),
    Case("toml_misspelled_key", "attack[0].nmae", _attack(0, "nmae", "BadNets")),
    Case("toml_wrong_type", "attack[0].size", _attack(0, "size", "2")),
    Case("toml_wrong_type", "attack[1].alpha", _attack(1, "alpha", "0.2")),
    Case("toml_wrong_type", "attack[1].name", _attack(1, "name", 3)),
    Case("toml_wrong_type", "attack[0]", set_in(("attack", 0), 3)),
    Case("unknown_option", "attack[0].trigger", _attack(0, "trigger", "refool")),
    Case("trigger_too_large", "attack[0].size", _attack(0, "size", 15)),
    Case("out_of_range", "attack[1].alpha", _attack(1, "alpha", 2.0)),
    Case("nonfinite_param", "attack[1].alpha", _attack(1, "alpha", NAN)),
    Case("out_of_range", "attack[1].name", _attack(1, "name", "badnets"), label="duplicate"),
    Case("empty", "attack", set_in(("attack",), [])),
    Case("toml_misspelled_key", "data.size", set_in(("data", "size"), 3), label="clash"),
    # [dynamics]
    Case(
        "toml_misspelled_key",
        "dynamics.checkpoint",
        rename_in(("dynamics", "checkpoints"), "checkpoint"),
    ),
    Case("toml_misspelled_key", "dynamics.noise", rename_in(("dynamics", "noise_std"), "noise")),
    Case("toml_misspelled_key", "dynamics.layers", rename_in(("dynamics", "layer"), "layers")),
    Case("toml_wrong_type", "dynamics.layer", _dyn("layer", 2)),
    Case("toml_wrong_type", "dynamics.layer", _dyn("layer", ""), label="empty_string"),
    Case("toml_wrong_type", "dynamics.checkpoints", _dyn("checkpoints", "0, 1")),
    Case("toml_wrong_type", "dynamics.checkpoints", _dyn("checkpoints", [0, 1.5]), label="float"),
    Case("toml_wrong_type", "dynamics.noise_std", _dyn("noise_std", "0.1")),
    Case("toml_wrong_type", "dynamics.max_samples", _dyn("max_samples", 20.0)),
    Case("toml_wrong_type", "dynamics.classes", _dyn("classes", "1")),
    Case("toml_wrong_type", "dynamics.pca_components", _dyn("pca_components", True)),
    Case("toml_wrong_type", "dynamics.y_hat", _dyn("y_hat", 1)),
    Case("toml_wrong_type", "dynamics", set_in(("dynamics",), [1])),
    Case("nonfinite_param", "dynamics.noise_std", _dyn("noise_std", NAN), label="nan"),
    Case("nonfinite_param", "dynamics.noise_std", _dyn("noise_std", INF), label="inf"),
    Case("negative_param", "dynamics.noise_std", _dyn("noise_std", -0.1)),
    Case("negative_param", "dynamics.checkpoints", _dyn("checkpoints", [-1, 2])),
    Case("negative_param", "dynamics.random_state", _dyn("random_state", -1)),
    Case("negative_param", "dynamics.pca_components", _dyn("pca_components", -1)),
    Case("out_of_range", "dynamics.checkpoints", _dyn("checkpoints", [0])),
    Case("out_of_range", "dynamics.phases", _dyn("phases", [3])),
    Case("out_of_range", "dynamics.critic_epochs", _dyn("critic_epochs", 4)),
    Case("out_of_range", "dynamics.negatives", _dyn("negatives", 0)),
    Case("out_of_range", "dynamics.max_samples", _dyn("max_samples", 1)),
    Case("out_of_range", "dynamics.classes", _dyn("classes", [1, 12])),
    Case("empty", "dynamics.classes", _dyn("classes", [])),
    Case("empty", "dynamics.checkpoints", _dyn("checkpoints", [])),
    Case("unknown_option", "dynamics.y_hat", _dyn("y_hat", "probs")),
    Case(
        "three_classes",
        "dynamics.classes",
        _dyn("classes", [0, 1]),
        label="target",
    ),
    Case(
        "out_of_range",
        "dynamics",
        Edit(lambda doc: {**doc, "data": {**doc["data"], "mode": "all-to-all"}}),
        label="all_to_all",
    ),
    # [convex]
    Case("toml_misspelled_key", "convex.c", rename_in(("convex", "C"), "c")),
    Case("toml_misspelled_key", "convex.learners", rename_in(("convex", "learner"), "learners")),
    Case("toml_wrong_type", "convex.C", _cvx("C", 1.0)),
    Case("toml_wrong_type", "convex.C[0]", _cvx("C", ["0.1", 1.0])),
    Case("toml_wrong_type", "convex.digits", _cvx("digits", "71")),
    Case("toml_wrong_type", "convex.fraction", _cvx("fraction", "0.1")),
    Case("toml_wrong_type", "convex.clean_drop", _cvx("clean_drop", "0.02")),
    Case("toml_wrong_type", "convex.learner", _cvx("learner", 1)),
    Case("toml_wrong_type", "convex", set_in(("convex",), "logistic")),
    Case("nonfinite_param", "convex.C[1]", _cvx("C", [0.1, NAN])),
    Case("nonfinite_param", "convex.C[1]", _cvx("C", [0.1, INF]), label="inf"),
    Case("nonfinite_param", "convex.at", _cvx("at", NAN)),
    Case("nonfinite_param", "convex.max_backdoor_accuracy", _cvx("max_backdoor_accuracy", NAN)),
    Case("negative_param", "convex.C[0]", _cvx("C", [-0.1, 1.0])),
    Case("negative_param", "convex.clean_drop", _cvx("clean_drop", -0.02)),
    Case("out_of_range", "convex.C[0]", _cvx("C", [0.0, 1.0]), label="zero"),
    Case("out_of_range", "convex.C", _cvx("C", [1.0, 1.0]), label="repeated"),
    Case("out_of_range", "convex.at", _cvx("at", 10.0)),
    Case("out_of_range", "convex.max_backdoor_accuracy", _cvx("max_backdoor_accuracy", 1.5)),
    Case("out_of_range", "convex.digits", _cvx("digits", [7, 12])),
    Case("one_class", "convex.digits", _cvx("digits", [7, 7])),
    Case("three_classes", "convex.digits", _cvx("digits", [7, 1, 3])),
    Case("fraction_bounds", "convex.fraction", _cvx("fraction", 1.0)),
    Case("fraction_bounds", "convex.fraction", _cvx("fraction", 0.0), label="0"),
    Case("unknown_option", "convex.learner", _cvx("learner", "mlp")),
    Case("empty", "convex.C", _cvx("C", [])),
]


_COUNTER = itertools.count()


def load_from_doc(ctx, doc):
    return load_nn_config(ctx.file(f"sections{next(_COUNTER)}.toml", toml_text(doc)))


# ---------------------------------------------------------------------------- the attack table
def _summary() -> pd.DataFrame:
    rows = []
    for attack, epochs in itertools.product(("badnets", "Blend"), (1, 2)):
        rows.append({
            "attack": attack, "model": "small_cnn", "epochs": epochs,
            "clean_accuracy_1": 0.9, "backdoor_accuracy_1": 0.8, "exact_score": -0.3,
            "exact_derivative": 0.5, "score_h=0.1": -0.2, "derivative_h=0.1": 0.3,
            "stealth": 0.5,
        })  # fmt: skip
    return pd.DataFrame(rows)


TABLE_CASES = [
    Case("wrong_type", "summary", Map(lambda s: s.to_dict("list"))),
    Case("wrong_type", "summary", None, label="none"),
    Case("empty", "summary", Map(lambda s: s.iloc[:0])),
    Case("wrong_dimensions", "summary", Map(lambda s: s.drop(columns="attack")), label="attack"),
    Case("wrong_dimensions", "summary", Map(lambda s: s.drop(columns="epochs")), label="epochs"),
    Case("wrong_dimensions", "summary", Map(lambda s: s.drop(columns="model")), label="model"),
]


def convex_baseline(ctx):
    return {
        "spec": ConvexSpec(C=(1.0,), at=1.0),
        "data_keys": {"trigger": "badnets", "size": 3},
        "fraction": 0.1,
        "random_state": 0,
    }


CONVEX_CASES = [
    Case("wrong_type", "spec", Set({"C": [1.0]})),
    Case("wrong_type", "spec", None, label="none"),
    Case("wrong_type", "data_keys", Set(("badnets", 3))),
    Case("empty", "data_keys", Set({})),
    Case(
        "unknown_option",
        "data_keys",
        Set({"trigger": "badnets", "size": 3, "sizee": 2}),
        error=TypeError,
        names="sizee",
    ),
    Case("unknown_option", "data_keys", Set({"trigger": "refool"}), names="trigger"),
    Case("string", "data_keys", Set({"trigger": "badnets", "size": "3"}), names="size"),
    Case("negative_param", "data_keys", Set({"trigger": "badnets", "size": -3}), names="size"),
    Case("trigger_too_large", "data_keys", Set({"trigger": "badnets", "size": 29}), names="size"),
    Case("fraction_bounds", "fraction", 1.0),
    Case("nan", "fraction", NAN),
    Case("string", "fraction", "0.1"),
    Case("negative_param", "random_state", -1),
    Case("wrong_type", "random_state", 0.5),
]


ENTRIES = [
    EntryPoint(
        "parse_nn_config[attack,dynamics,convex]",
        sections_doc,
        lambda ctx, doc: parse_nn_config(doc),
        SECTION_CASES,
    ),
    EntryPoint(
        "load_nn_config[attack,dynamics,convex]",
        sections_doc,
        load_from_doc,
        [c for c in SECTION_CASES if c.kind.startswith("toml_")],
    ),
    EntryPoint(
        "attack_table",
        lambda ctx: {"summary": _summary()},
        lambda ctx, kw: attack_table(**kw),
        TABLE_CASES,
    ),
    EntryPoint(
        "convex_attack_scores",
        convex_baseline,
        lambda ctx, kw: convex_attack_scores(**kw),
        CONVEX_CASES,
    ),
]

BASELINES, CASES = register(ENTRIES)


@pytest.mark.parametrize("entry", BASELINES)
def test_baseline_is_valid(ctx, entry):
    """The valid call each case spoils runs (so every failure below is the bad input's)."""
    out = entry.call(ctx, entry.baseline(ctx))
    if entry.name == "attack_table":
        assert list(out["epochs"]) == [2, 2] and np.allclose(out["slope_score"], -0.3)


@pytest.mark.parametrize("entry, case", CASES)
def test_bad_input(ctx, entry, case):
    check_python(ctx, entry, case)
