"""The attack table (issue 16): the convex columns against direct fits, the table built from a
summary, and a whole nn run with ``[[attack]]``, ``[tracking]``, ``[dynamics]`` and ``[convex]``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backdoor_curves as bc
from backdoor_curves.nn.sections import ConvexSpec
from backdoor_curves.nn_comparison import ATTACK_COLUMNS, attack_table, convex_attack_scores


def test_convex_scores_agree_with_direct_fits():
    spec = ConvexSpec(C=(0.01, 1.0), at=1.0, max_backdoor_accuracy=0.5, clean_drop=0.05)
    got = convex_attack_scores(spec, {"trigger": "blend", "alpha": 0.2}, fraction=0.1,
                               random_state=3)  # fmt: skip
    X_train, y_train, X_test, y_test = bc.load_mnist_pair((7, 1))
    data = bc.poison(X_train, y_train, X_test, y_test, trigger="blend", alpha=0.2,
                     fraction=0.1, random_state=3)  # fmt: skip
    rows = []
    for C in spec.C:
        model = bc.LogisticLearner(C=C).fit(data.X_train, data.y_train,
                                            sample_weight=data.sample_weight(1.0))  # fmt: skip
        rows.append((C, model.score(data.X_test, data.y_test),
                     model.score(data.X_test_bd, data.y_test_bd)))  # fmt: skip
    slope = bc.backdoor_slope(bc.LogisticLearner(C=1.0), data)
    assert got["convex_score"] == pytest.approx(slope.score, rel=1e-9)
    _, clean_at, attack_at = rows[1]
    assert got["convex_clean_accuracy"] == pytest.approx(clean_at)
    assert got["convex_attack_success"] == pytest.approx(attack_at)
    best = max(clean for _, clean, _ in rows)
    robust = [bd <= 0.5 and clean >= best - 0.05 for _, clean, bd in rows]
    assert got["convex_robust_share"] == pytest.approx(sum(robust) / len(rows))
    assert list(got["convex_table"]["C"]) == list(spec.C)


def test_attack_table_prefers_the_exact_score_at_the_largest_budget():
    summary = pd.DataFrame(
        {
            "model": ["m"] * 4,
            "attack": ["a", "a", "b", "b"],
            "epochs": [1, 3, 1, 3],
            "clean_accuracy_1": [0.5, 0.9, 0.4, 0.8],
            "backdoor_accuracy_1": [0.1, 0.95, 0.2, 0.3],
            "score_h=0.1": [0.2, 0.3, 0.4, 0.5],
            "score_h=0.01": [0.6, 0.7, 0.8, 0.9],
            "exact_score": [0.11, 0.12, math.nan, math.nan],
            "exact_derivative": [-0.2, -0.25, math.nan, math.nan],
            "derivative_h=0.01": [-5.0, -6.0, -7.0, -8.0],
            "derivative_h=0.1": [-1.0, -2.0, -3.0, -4.0],
            "stealth": [1.0, 1.5, 2.0, 2.5],
        }
    )
    table = attack_table(summary)
    assert list(table.columns) == ["attack", "model", "epochs", *ATTACK_COLUMNS]
    assert table["attack"].tolist() == ["a", "b"] and table["epochs"].tolist() == [3, 3]
    assert table["slope_score"].tolist() == [0.12, 0.9]  # exact, else the smallest h
    assert table["slope_derivative"].tolist() == [-0.25, -8.0]
    assert table["clean_accuracy"].tolist() == [0.9, 0.8]
    assert table["attack_success"].tolist() == [0.95, 0.3]
    assert table["stealth"].tolist() == [1.5, 2.5]
    assert table["isolation_precision"].isna().all() and table["convex_score"].isna().all()
    with pytest.raises(ValueError, match="attack"):
        attack_table(summary.drop(columns="attack"))


CONFIG = """
[study]
title = "tiny attack comparison"

[data]
n_train = 300
n_test = 100
pool = 2
fraction = 0.1

[[attack]]
trigger = "badnets"
size = 3

[[attack]]
name = "DBA"
trigger = "dba"
steps = 3
lr = 0.01
alpha = 0.2

[model]
kind = "small_cnn"
width = 4

[train]
epochs = 2
batch_size = 32
lr = 0.05

[curve]
betas = [0.0, 1.0]

[slope]
h = [0.1]
exact = true

[tracking]
budget = 64
epochs = 2

[dynamics]
layer = "conv2"
checkpoints = [0, 2]
max_samples = 40
classes = [1, 2, 3]
negatives = 8
critic_epochs = 5
pca_components = 4

[convex]
C = [0.1, 1.0]
"""


@pytest.fixture(scope="module")
def attack_run(tmp_path_factory):
    pytest.importorskip("torch")
    from backdoor_curves.nn_run import run_nn_config

    root = tmp_path_factory.mktemp("attacks")
    config = root / "attacks.toml"
    config.write_text(CONFIG)
    paths = run_nn_config(config, root / "out", progress=False)
    return config, root / "out", paths


def test_attack_run_writes_the_table_and_the_information_plane(attack_run):
    _, out, paths = attack_run
    table = pd.read_csv(out / "attacks.csv")
    summary = pd.read_csv(out / "summary.csv")
    assert table["attack"].tolist() == ["badnets", "DBA"]
    for _, row in table.iterrows():
        s = summary[summary["attack"] == row["attack"]].iloc[-1]
        assert row["slope_score"] == pytest.approx(s["exact_score"])
        assert row["slope_derivative"] == pytest.approx(s["exact_derivative"])
        assert row["attack_success"] == pytest.approx(s["backdoor_accuracy_1"])
        assert 0 <= row["isolation_precision"] <= 1
        assert 0 <= row["stealth"] <= 4 and 0 <= row["stealth_floor"] <= 4
    tracking = pd.read_csv(out / "tracking.csv")
    first = tracking[(tracking["attack"] == "badnets") & tracking["epoch"].between(1, 5)]
    assert table["isolation_precision"].iloc[0] == first["isolation_precision"].max()
    epoch_1 = first[first["epoch"] == 1]["isolation_precision"].iloc[0]
    assert table["ip_epoch_1"].iloc[0] == epoch_1 and np.isnan(table["ip_epoch_3"].iloc[0])
    dynamics = pd.read_csv(out / "dynamics.csv")
    assert set(dynamics["group"]) == {"target_all", "target_poisoned", "target_clean",
                                      "class_1", "class_2", "class_3"}  # fmt: skip
    assert sorted(dynamics["epoch"].unique()) == [0, 2]
    assert (dynamics[["mi_xt", "mi_ty"]] <= np.log(9) + 1e-9).all().all()  # log(K + 1)
    from backdoor_curves.dynamics import stealth_score

    part = dynamics[dynamics["attack"] == "badnets"].drop(columns=["model", "attack"])
    assert table["stealth"].iloc[0] == pytest.approx(stealth_score(part, phases=[2]).score)
    direct = convex_attack_scores(ConvexSpec(C=(0.1, 1.0)), {"trigger": "badnets", "size": 3},
                                  fraction=0.1, random_state=0)  # fmt: skip
    assert table["convex_score"].iloc[0] == pytest.approx(direct["convex_score"], rel=1e-12)
    for name in ("information_plane_attack=badnets.png", "information_plane_attack=DBA.png"):
        assert Path(paths[name]).is_file()
    report = (out / "report.md").read_text()
    assert "## Attack table" in report and "Information dynamics" in report


def test_attack_run_resumes_to_identical_tables(attack_run):
    from backdoor_curves.nn_run import run_nn_config

    config, out, _ = attack_run
    before = {n: (out / n).read_bytes() for n in ("attacks.csv", "dynamics.csv", "summary.csv")}
    run_nn_config(config, out, progress=False)
    for name, data in before.items():
        assert (out / name).read_bytes() == data, name
