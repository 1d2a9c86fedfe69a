"""backdoor_curves.nn.metrics against hand-computed cases and brute force (no torch needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from backdoor_curves.nn.metrics import (
    SelfInfluence,
    early_fitting_gap,
    isolation_precision,
    loss_reduction_terms,
    mean_cosine_from_sums,
    mean_pairwise_cosine,
    poison_auroc,
    self_influence,
)

# -- isolation precision ------------------------------------------------------------------------


def test_isolation_precision_hand_cases():
    losses = [0.5, 0.1, 0.9, 0.2, 0.3, 0.8, 0.7, 0.05, 0.6, 1.0]
    poisoned = [False, True, False, False, True, False, False, True, False, False]
    # lowest 3: indices 7 (0.05, P), 1 (0.1, P), 3 (0.2, C) -> 2/3
    assert isolation_precision(losses, poisoned, 0.3) == pytest.approx(2 / 3)
    # lowest 2: 7 and 1, both poisoned
    assert isolation_precision(losses, poisoned, 0.2) == 1.0
    # highest 2 (self-influence tail): 9 (1.0) and 2 (0.9), both clean
    assert isolation_precision(losses, poisoned, 0.2, lower_is_poisoned=False) == 0.0


def test_isolation_precision_breaks_ties_by_index():
    losses = np.zeros(6)
    assert isolation_precision(losses, [1, 1, 0, 0, 0, 0], 0.34) == 1.0  # k = 2: indices 0, 1
    assert isolation_precision(losses, [0, 0, 1, 1, 0, 0], 0.34) == 0.0
    assert isolation_precision(losses, [1, 0, 0, 0, 0, 0], 0.17, lower_is_poisoned=False) == 1.0


def test_isolation_precision_floor_is_guarded_against_round_off():
    assert 0.29 * 100 < 29  # the float product ABL's int(N * eta) truncates to 28
    losses = np.arange(100.0)
    poisoned = np.zeros(100, bool)
    poisoned[28] = True  # the 29th lowest loss: isolated only when k = 29
    assert isolation_precision(losses, poisoned, 0.29) == pytest.approx(1 / 29)


def test_isolation_precision_matches_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(5, 60))
        losses = rng.integers(0, 5, n).astype(float)  # many ties
        poisoned = rng.random(n) < 0.3
        eta = float(rng.uniform(0.1, 0.9))
        k = math.floor(eta * n + 1e-9)
        if k < 1:
            continue
        chosen = sorted(range(n), key=lambda i: (losses[i], i))[:k]
        expected = sum(poisoned[i] for i in chosen) / k
        assert isolation_precision(losses, poisoned, eta) == pytest.approx(expected), trial


def test_isolation_precision_of_a_random_mask_is_eta_on_average():
    rng = np.random.default_rng(1)
    losses = rng.gamma(2.0, size=300)
    n_p = 30
    values = []
    for _ in range(400):
        poisoned = np.zeros(300, bool)
        poisoned[rng.choice(300, n_p, replace=False)] = True
        values.append(isolation_precision(losses, poisoned, 0.1))
    # hypergeometric: mean n_p / N = 0.1, sd of one draw ~ 0.052; standard error ~ 0.0026
    assert abs(np.mean(values) - 0.1) < 4 * np.std(values) / math.sqrt(len(values))


@pytest.mark.parametrize("eta", [0.0, 1.0, -0.1, 1.5])
def test_isolation_precision_rejects_eta_outside_open_interval(eta):
    with pytest.raises(ValueError, match="eta"):
        isolation_precision([0.1, 0.2], [True, False], eta)


def test_isolation_precision_bad_inputs():
    with pytest.raises(TypeError, match="eta"):
        isolation_precision([0.1, 0.2], [True, False], True)
    with pytest.raises(ValueError, match="losses and poisoned"):
        isolation_precision([0.1, 0.2, 0.3], [True, False], 0.5)
    with pytest.raises(ValueError, match="eta"):  # floor(0.1 * 5) = 0
        isolation_precision(np.ones(5), [True, False, False, False, False], 0.1)
    with pytest.raises(ValueError, match="losses"):
        isolation_precision([0.1, np.nan], [True, False], 0.5)
    with pytest.raises(TypeError, match="poisoned"):
        isolation_precision([0.1, 0.2], [0.5, 0.2], 0.5)
    with pytest.raises(ValueError, match="poisoned"):
        isolation_precision([0.1, 0.2], [2, 0], 0.5)


# -- AUROC and early-fitting gap ----------------------------------------------------------------


def test_poison_auroc_matches_sklearn_and_pair_counting():
    rng = np.random.default_rng(2)
    losses = rng.integers(0, 6, 80).astype(float)
    poisoned = rng.random(80) < 0.25
    got = poison_auroc(losses, poisoned)
    assert got == pytest.approx(roc_auc_score(poisoned, -losses))
    # Mann-Whitney: share of (poisoned, clean) pairs where the poisoned loss is lower, ties 1/2
    lp, lc = losses[poisoned][:, None], losses[~poisoned][None, :]
    assert got == pytest.approx(np.mean((lp < lc) + 0.5 * (lp == lc)))
    assert poison_auroc(losses, poisoned, lower_is_poisoned=False) == pytest.approx(1 - got)


def test_poison_auroc_extremes_and_errors():
    assert poison_auroc([0.1, 0.2, 3.0, 4.0], [True, True, False, False]) == 1.0
    assert poison_auroc([5.0, 6.0, 3.0, 4.0], [True, True, False, False]) == 0.0
    with pytest.raises(ValueError, match="poisoned"):
        poison_auroc([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="scores and poisoned"):
        poison_auroc([0.1, 0.2], [True, False, True])


def test_early_fitting_gap_sign_and_inputs():
    losses = np.array([0.2, 1.0, 2.0, 0.4, 3.0])
    codes = np.array([0, 1, 2, 0, 2], dtype=np.int8)
    expected = np.mean([1.0, 2.0, 3.0]) - np.mean([0.2, 0.4])
    assert early_fitting_gap(losses, codes) == pytest.approx(expected)
    assert expected > 0  # poison fitted faster -> positive
    assert early_fitting_gap(losses, codes == 0) == pytest.approx(expected)
    with pytest.raises(ValueError, match="groups"):
        early_fitting_gap(losses, np.array([0, 1, 3, 0, 2]))
    with pytest.raises(ValueError, match="groups"):
        early_fitting_gap(losses, np.ones(5, int))
    with pytest.raises(ValueError, match="losses and groups"):
        early_fitting_gap(losses, codes[:4])


# -- the loss-reduction decomposition -----------------------------------------------------------


def test_loss_reduction_terms_hand_case():
    t = loss_reduction_terms([1.0, 2.0], [3.0, -1.0], lr=0.5, eta=0.2)
    assert t["r_bb"] == pytest.approx(0.5 * 5)
    assert t["r_cc"] == pytest.approx(0.5 * 10)
    assert t["r_bc"] == pytest.approx(0.5 * 1)
    assert t["delta"] == pytest.approx(0.2 * 2.5 - 0.8 * 5 + 0.6 * 0.5)
    assert t["delta"] == pytest.approx(t["predicted_poisoned"] - t["predicted_clean"])


def test_loss_reduction_terms_match_the_pairwise_definition():
    # r_xy as the lr-scaled mean over all ordered pairs of per-sample gradient products, and the
    # predicted group decreases as lr <g_group_mean, step direction>, from per-sample gradients
    rng = np.random.default_rng(3)
    Gb, Gc = rng.normal(size=(7, 5)) + 1.0, rng.normal(size=(23, 5))
    lr, beta = 0.05, 0.4
    eta = 7 / 30
    t = loss_reduction_terms(Gb.mean(0), Gc.mean(0), lr, eta, beta=beta)
    assert t["r_bb"] == pytest.approx(lr * np.mean(Gb @ Gb.T))
    assert t["r_cc"] == pytest.approx(lr * np.mean(Gc @ Gc.T))
    assert t["r_bc"] == pytest.approx(lr * np.mean(Gb @ Gc.T))
    step = (beta * Gb.sum(0) + Gc.sum(0)) / 30  # gradient of (1/N) sum_i w_i l_i
    assert t["predicted_poisoned"] == pytest.approx(lr * Gb.mean(0) @ step)
    assert t["predicted_clean"] == pytest.approx(lr * Gc.mean(0) @ step)
    theorem = loss_reduction_terms(Gb.mean(0), Gc.mean(0), lr, eta)  # beta = 1
    assert theorem["delta"] == pytest.approx(
        eta * theorem["r_bb"] - (1 - eta) * theorem["r_cc"] + (1 - 2 * eta) * theorem["r_bc"]
    )


def test_loss_reduction_terms_errors():
    with pytest.raises(ValueError, match="eta"):
        loss_reduction_terms([1.0], [1.0], 0.1, 1.0)
    with pytest.raises(ValueError, match="lr"):
        loss_reduction_terms([1.0], [1.0], 0.0, 0.1)
    with pytest.raises(ValueError, match="beta"):
        loss_reduction_terms([1.0], [1.0], 0.1, 0.1, beta=1.5)
    with pytest.raises(ValueError, match="g_b and g_c"):
        loss_reduction_terms([1.0, 2.0], [1.0], 0.1, 0.1)


# -- synchronization ----------------------------------------------------------------------------


def _explicit_cosines(A, B=None):
    def unit(M):
        M = np.asarray(M, float)
        M = M[np.linalg.norm(M, axis=1) > 0]
        return M / np.linalg.norm(M, axis=1, keepdims=True)

    U = unit(A)
    if B is None:
        C = U @ U.T
        return C[~np.eye(len(U), dtype=bool)].mean()
    return (U @ unit(B).T).mean()


def test_mean_pairwise_cosine_identity_matches_the_explicit_matrix():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(40, 6)) + 0.5
    B = rng.normal(size=(15, 6))
    assert mean_pairwise_cosine(A) == pytest.approx(_explicit_cosines(A), abs=1e-12)
    assert mean_pairwise_cosine(A, B) == pytest.approx(_explicit_cosines(A, B), abs=1e-12)
    assert mean_pairwise_cosine([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]) == pytest.approx(1 / 3)
    assert mean_pairwise_cosine([[1.0, 1.0], [2.0, 2.0]]) == pytest.approx(1.0)
    assert mean_pairwise_cosine([[1.0, 0.0]], [[-2.0, 0.0]]) == pytest.approx(-1.0)


def test_mean_pairwise_cosine_drops_zero_rows_and_handles_no_pair():
    A = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    assert mean_pairwise_cosine(A) == pytest.approx(_explicit_cosines(A))
    assert math.isnan(mean_pairwise_cosine([[1.0, 2.0]]))
    assert math.isnan(mean_pairwise_cosine([[0.0, 0.0]], [[1.0, 2.0]]))


def test_mean_pairwise_cosine_large_n_without_a_matrix():
    rng = np.random.default_rng(5)
    n = 30_000  # an n x n float64 matrix would be 7.2 GB
    A = rng.normal(size=(n, 4)) + np.array([2.0, 0, 0, 0])
    U = A / np.linalg.norm(A, axis=1, keepdims=True)
    s = U.sum(0)
    assert mean_pairwise_cosine(A) == pytest.approx((s @ s - n) / (n * (n - 1)))
    # against an explicit matrix on a random block of pairs: same mean up to sampling noise
    idx = rng.choice(n, 1500, replace=False)
    assert mean_pairwise_cosine(A) == pytest.approx(_explicit_cosines(A[idx]), abs=0.02)


def test_mean_cosine_from_sums_and_errors():
    rng = np.random.default_rng(6)
    A = rng.normal(size=(9, 3))
    U = A / np.linalg.norm(A, axis=1, keepdims=True)
    assert mean_cosine_from_sums(U.sum(0), 9) == pytest.approx(_explicit_cosines(A))
    assert mean_cosine_from_sums(U[:4].sum(0), 4, U[4:].sum(0), 5) == pytest.approx(
        _explicit_cosines(A[:4], A[4:])
    )
    with pytest.raises(ValueError, match="sum_a and sum_b"):
        mean_cosine_from_sums(np.ones(3), 2, np.ones(2), 2)
    with pytest.raises(TypeError, match="n_b"):
        mean_cosine_from_sums(np.ones(3), 2, np.ones(3), None)
    with pytest.raises(ValueError, match="A and B"):
        mean_pairwise_cosine(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="A"):
        mean_pairwise_cosine(np.ones(3))
    with pytest.raises(ValueError, match="A"):
        mean_pairwise_cosine(np.empty((0, 3)))


# -- self-influence -----------------------------------------------------------------------------


def test_self_influence_sum_and_accumulator():
    rng = np.random.default_rng(7)
    sq = rng.gamma(1.0, size=(3, 12))
    lrs = np.array([0.1, 0.05, 0.01])
    expected = sum(lrs[t] * sq[t] for t in range(3))
    assert np.allclose(self_influence(sq, lrs), expected)
    acc = SelfInfluence(12)
    for t in range(3):
        acc.update(sq[t], lrs[t])
    assert acc.n_checkpoints == 3
    assert np.allclose(acc.scores, expected)
    poisoned = np.zeros(12, bool)
    poisoned[np.argsort(-expected)[:2]] = True  # the two highest self-influences
    assert acc.precision(poisoned, 2 / 12) == 1.0
    assert acc.auroc(poisoned) == 1.0
    assert acc.auroc(poisoned) == pytest.approx(roc_auc_score(poisoned, expected))


def test_self_influence_errors():
    with pytest.raises(ValueError, match="lrs"):
        self_influence(np.ones((2, 3)), [0.1])
    with pytest.raises(ValueError, match="sq_grad_norms"):
        self_influence(-np.ones((1, 3)), [0.1])
    acc = SelfInfluence(3)
    with pytest.raises(ValueError, match="sq_grad_norms"):
        acc.update(np.ones(4), 0.1)
    with pytest.raises(ValueError, match="lr"):
        acc.update(np.ones(3), 0.0)
    with pytest.raises(ValueError, match="n"):
        SelfInfluence(0)
