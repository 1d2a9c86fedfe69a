"""The dynamics-based stealthiness score on hand-made histories with hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backdoor_curves.dynamics import stealth_score

GROUPS = ["target_all", "target_poisoned", "target_clean", "class_1", "class_2"]


def history(values: dict) -> pd.DataFrame:
    """``values[(epoch, group)] = (mi_xt, mi_ty)`` as a history frame."""
    rows = [
        {"epoch": e, "group": g, "mi_xt": xt, "mi_ty": ty} for (e, g), (xt, ty) in values.items()
    ]
    return pd.DataFrame(rows)


def test_target_evolving_like_the_clean_classes_scores_zero():
    # every group equal at each epoch (min = max: all normalized to 0), then the target groups
    # at the clean classes' mean (1 and 3 around 2): |v~_g - mean_c v~_c| = 0 both times
    values = {(1, g): (0.5, 2.0) for g in GROUPS}
    values.update({(2, g): (2.0, 2.0) for g in ("target_all", "target_poisoned", "target_clean")})
    values.update({(2, "class_1"): (1.0, 1.0), (2, "class_2"): (3.0, 3.0)})
    result = stealth_score(history(values))
    assert result.score == 0.0
    assert result.phases == (1, 2)
    assert len(result.terms) == 4 and (result.terms["D"] == 0).all()


def test_hand_computed_score():
    values = {
        (1, "target_clean"): (0.0, 5.0),
        (1, "target_all"): (4.0, 5.0),
        (1, "class_1"): (1.0, 5.0),
        (1, "class_2"): (2.0, 5.0),
        (2, "target_clean"): (2.0, 1.0),
        (2, "target_all"): (2.0, 0.0),
        (2, "class_1"): (1.0, 2.0),
        (2, "class_2"): (3.0, 2.0),
    }
    # mi_xt, target_clean: e1 {0,1,2} -> 0, .5, 1: |0 - .75| = .75; e2 {2,1,3} -> .5, 0, 1: 0
    #   D = .375
    # mi_xt, target_all:   e1 {4,1,2} -> 1, 0, 1/3: |1 - 1/6| = 5/6; e2 as above: 0
    #   D = 5/12
    # mi_ty, target_clean: e1 all 5 -> 0; e2 {1,2,2} -> 0, 1, 1: |0 - 1| = 1;  D = .5
    # mi_ty, target_all:   e1 0;       e2 {0,2,2} -> 0, 1, 1: 1;             D = .5
    result = stealth_score(history(values))
    terms = result.terms.set_index(["measure", "group"])["D"]
    assert terms[("mi_xt", "target_clean")] == pytest.approx(0.375)
    assert terms[("mi_xt", "target_all")] == pytest.approx(5 / 12)
    assert terms[("mi_ty", "target_clean")] == pytest.approx(0.5)
    assert terms[("mi_ty", "target_all")] == pytest.approx(0.5)
    assert result.score == pytest.approx(0.375 + 5 / 12 + 1.0)
    # only the first checkpoint as the phase: .75 + 5/6 + 0 + 0
    assert stealth_score(history(values), phases=[1]).score == pytest.approx(0.75 + 5 / 6)
    # one measure and one target group
    one = stealth_score(history(values), measures="mi_xt", target_groups="target_clean")
    assert one.score == pytest.approx(0.375)
    per = one.per_checkpoint
    assert per["difference"].tolist() == pytest.approx([0.75, 0.0])


def test_largest_score_and_invariance_to_affine_rescaling():
    # target groups far from two equal clean classes: normalized 1 vs 0 at every epoch -> S = 4
    values = {}
    for e in (1, 2, 3):
        values.update({(e, "target_all"): (9.0, 9.0), (e, "target_clean"): (0.0, 7.0)})
        values.update({(e, "class_1"): (3.0, 1.0), (e, "class_2"): (3.0, 1.0)})
    frame = history(values)
    assert stealth_score(frame).score == pytest.approx(4.0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"epoch": np.repeat([1, 2], 4), "group": ["target_all", "target_clean", "class_1",
                                                   "class_2"] * 2,
         "mi_xt": rng.uniform(0, 3, 8), "mi_ty": rng.uniform(0, 3, 8)}
    )  # fmt: skip
    base = stealth_score(frame).score
    scaled = frame.assign(mi_xt=2.5 * frame["mi_xt"] + 1.0, mi_ty=0.1 * frame["mi_ty"] - 4.0)
    assert stealth_score(scaled).score == pytest.approx(base)
    assert 0.0 <= base <= 4.0


def test_clean_groups_default_to_the_class_groups_and_can_be_chosen():
    values = {
        (1, "target_clean"): (0.0, 0.0),
        (1, "target_all"): (0.0, 0.0),
        (1, "class_1"): (1.0, 1.0),
        (1, "class_2"): (2.0, 2.0),
    }
    # against class_1 alone: target 0, class 1 -> 0 vs 1: d = 1 for all four terms
    assert stealth_score(history(values), clean_groups=["class_1"]).score == pytest.approx(4.0)
    # against both: 0 vs (.5 + 1) / 2 -> .75 each
    assert stealth_score(history(values)).score == pytest.approx(3.0)


def test_bad_histories_are_refused():
    values = {(1, g): (1.0, 1.0) for g in ("target_all", "target_clean", "class_1")}
    frame = history(values)
    with pytest.raises(TypeError, match="history must be a pandas DataFrame"):
        stealth_score(values)
    with pytest.raises(ValueError, match="lacks the column"):
        stealth_score(frame.drop(columns="mi_ty"))
    with pytest.raises(ValueError, match="phases: epoch 5"):
        stealth_score(frame, phases=[5])
    with pytest.raises(ValueError, match="repeats"):
        stealth_score(pd.concat([frame, frame]))
    with pytest.raises(ValueError, match="no clean-class group"):
        stealth_score(frame[frame["group"] != "class_1"])
    with pytest.raises(ValueError, match="no row for epoch 1"):
        stealth_score(frame, target_groups=["target_poisoned"])
    with pytest.raises(ValueError, match="not finite"):
        stealth_score(frame.assign(mi_xt=np.nan))
