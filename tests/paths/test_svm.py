"""The SVM's piecewise-linear dual path against re-fits, event by event."""

import re
import warnings

import numpy as np
import pytest
from oracle import learner_and_estimator, refit
from random_data import random_backdoor_data

from backdoor_curves import (
    BackdoorData,
    LinearSVMLearner,
    RBFSVMLearner,
    default_betas,
    learning_curve,
    load_mnist_pair,
    poison,
)
from backdoor_curves.paths.svm import SVMPathWarning

CASES = [("linear_svm", 0.02), ("linear_svm", 1.0), ("rbf_svm", 0.5), ("rbf_svm", 10.0)]


@pytest.mark.parametrize(("kind", "C"), CASES)
@pytest.mark.parametrize("which", ["random", "mnist"])
def test_svm_path_equals_refit(kind, C, which, mnist_small):
    data = random_backdoor_data(9) if which == "random" else mnist_small
    learner, est = learner_and_estimator(kind, C)
    betas = np.r_[default_betas(), 0.37, 1e-3]
    path = learning_curve(learner, data, betas, method="path")
    ours = learning_curve(learner, data, betas, method="refit").to_frame()
    frame = path.to_frame()
    for col in ("backdoor_loss", "clean_loss", "rho", "rho_ratio"):
        np.testing.assert_allclose(frame[col], ours[col], rtol=1e-6)
    np.testing.assert_allclose(frame["nu"], ours["nu"], rtol=1e-6, atol=1e-12)
    for col in ("clean_accuracy", "backdoor_accuracy"):
        np.testing.assert_array_equal(frame[col], ours[col])
    # and against scikit-learn's SVC at a few betas (its own accuracy limits the tolerance)
    for k in (0, 10, len(betas) - 1):
        expected = refit(kind, est, data, betas[k])
        assert frame["backdoor_loss"][k] == pytest.approx(expected["backdoor_loss"], rel=1e-4)
    assert len(path.events) > 0
    assert set(path.events["from"]) | set(path.events["to"]) <= {"zero", "margin", "bound"}
    assert path.events["beta"].is_monotonic_increasing


@pytest.mark.parametrize("learner", [LinearSVMLearner(0.5), RBFSVMLearner(2.0, gamma=0.05)])
def test_events_match_refits_on_either_side(learner, mnist_small):
    """A point the path says changes set at beta_e is in the old set just before, new just after."""
    data = mnist_small
    events = learning_curve(learner, data, [1.0], method="path").events
    betas = np.r_[0.0, events["beta"].to_numpy(), 1.0]
    checked = 0
    for k, event in events.iterrows():
        gap = min(betas[k + 1] - betas[k], betas[k + 2] - betas[k + 1])
        if gap < 1e-6:
            continue  # too close to its neighbours to separate by re-fitting
        states = []
        for beta in (event["beta"] - gap / 3, event["beta"] + gap / 3):
            model = LinearSVMLearner if isinstance(learner, LinearSVMLearner) else RBFSVMLearner
            fitted = model(**learner.get_params()).fit(
                data.X_train, data.y_train, data.sample_weight(beta)
            )
            i = event["index"]
            state = "bound" if i in fitted.bound_ else "margin" if i in fitted.margin_ else "zero"
            states.append(state)
        assert states == [event["from"], event["to"]], (event.to_dict(), states)
        checked += 1
        if checked == 8:
            break
    assert checked >= 3


@pytest.mark.parametrize("max_changes", [3, 24])
def test_margin_system_updates_match_a_direct_solve(max_changes):
    """Adding and removing points through the Schur complement equals solving afresh."""
    from sklearn.metrics.pairwise import rbf_kernel

    from backdoor_curves.learners.svm import bordered_matrix
    from backdoor_curves.paths.svm import _MarginSystem

    rng = np.random.default_rng(3)
    n = 40
    y = rng.choice([-1.0, 1.0], n)
    Q = np.outer(y, y) * rbf_kernel(rng.normal(size=(n, 5)), gamma=0.3)
    members = set(rng.choice(n, 12, replace=False).tolist())
    system = _MarginSystem(Q, y, np.array(sorted(members)), max_changes=max_changes)
    for _ in range(60):
        if len(members) > 2 and rng.random() < 0.5:
            i = int(rng.choice(sorted(members)))
            system.remove(i)
            members.discard(i)
        else:
            i = int(rng.choice(sorted(set(range(n)) - members)))
            system.add(i)
            members.add(i)
        assert sorted(system.members().tolist()) == sorted(members)
        r, r_b = rng.normal(size=n), rng.normal()
        x, x_b = system.solve(r, r_b)
        M = np.array(sorted(members))
        expected = np.linalg.solve(bordered_matrix(Q[np.ix_(M, M)], y[M]), np.r_[r[M], r_b])
        np.testing.assert_allclose(x[M], expected[:-1], rtol=1e-9, atol=1e-9)
        assert x_b == pytest.approx(expected[-1], rel=1e-9, abs=1e-9)
        assert np.all(np.delete(x, M) == 0.0)
        # the rows it owns, in slot order: Q's rows of its points, zeros on a removal's slot
        # (never stale memory: 0 * NaN is NaN), so x @ rows = Q[:, M] x_M
        xs, _ = system.solve_slots(r, r_b)
        m, n_slots = system.base.size, xs.size
        slots = system.ids[:n_slots]
        live = system.live[:n_slots] > 0
        removals = ~live & (np.arange(n_slots) >= m)
        np.testing.assert_array_equal(system.rows[:n_slots][~removals], Q[slots[~removals]])
        assert np.all(system.rows[:n_slots][removals] == 0.0)
        np.testing.assert_allclose(xs @ system.rows[:n_slots], Q[:, M] @ x[M], atol=1e-9)


def _refits(caught) -> dict[float, str]:
    """beta -> reason of each re-fit the SVM path warned about (its SVMPathWarning messages)."""
    messages = [str(w.message) for w in caught if issubclass(w.category, SVMPathWarning)]
    found = [re.fullmatch(r".*near beta=(\S+) \((.*)\); re-fitting there", m) for m in messages]
    assert all(found), messages
    return {float(m.group(1)): m.group(2) for m in found}


def test_a_non_unique_intercept_is_libsvms_choice_on_both_methods():
    """With no margin dual strictly inside its box, every b in an interval is optimal.

    A problem built so that the borderline is exact in floating point (integer and dyadic
    inputs, C = 4, dyadic betas: every kernel entry, dual, rate, margin and the event time that
    ends each step is a dyadic rational of a few bits, so no BLAS kernel can round it). Linear
    SVM in one feature, D = {p = (1, +1), q = (-1, -1)}, P = {(-1/2, +1)}. By hand: on [0, 1/2]
    both points of D are margin vectors (w = 1, b = 0, a_p = 1/2 - beta, a_q = 1/2 + 3 beta), at
    beta = 1/2 a_p reaches 0 (the one event), then the equality constraint alone sets a_q = 4
    beta (w = 2 beta, b = 2 beta - 1), which reaches its box C exactly at beta = 1. There no
    margin dual is left and every b in [1, 2] is optimal; the walk's own b is the end b = 1 (q
    still on its margin), libsvm takes the midpoint. The path must re-fit there, so "path" and
    "refit" agree: with the walk's b the backdoor point -5/8 is misclassified and the losses
    differ (0.875 against 0.375 on V_t, 0 against 0.25 on V).
    """
    data = BackdoorData(
        [[1.0], [-1.0]], [1, 0], [[-0.5]], [1], [[1.0], [-1.0]], [1, 0], [[-0.625], [-0.25]], [1, 1]
    )
    learner = LinearSVMLearner(4.0)
    betas = np.array([0.0, 0.25, 0.75, 1.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curve = learning_curve(learner, data, betas, method="path")
    assert curve.events.to_dict("records") == [
        {"beta": 0.5, "index": 0, "from": "margin", "to": "zero"}
    ]
    assert _refits(caught) == {1.0: "no margin dual inside its box, so the intercept is not unique"}
    fitted = LinearSVMLearner(4.0).fit(data.X_train, data.y_train, data.sample_weight(1.0))
    assert fitted.margin_.size == 0 and 1.0 < fitted.intercept_ < 2.0  # inside [1, 2]
    path, refit = curve.to_frame(), learning_curve(learner, data, betas, method="refit").to_frame()
    for col in ("clean_accuracy", "backdoor_accuracy"):
        np.testing.assert_array_equal(path[col], refit[col])
    for col in ("backdoor_loss", "clean_loss"):
        np.testing.assert_allclose(path[col], refit[col], rtol=1e-9)


def test_mnist_path_refits_its_degenerate_optima_and_equals_refit():
    """The MNIST case of the regression above (7 vs 1, RBF, C = 0.01), as an invariant.

    At C = 0.01 nearly every point is a bound vector. At beta = 1 all weights are equal and the
    equality constraint is met by bound duals alone, so no margin dual is left and the intercept
    is not unique (libsvm's midpoint changed 12 of 250 backdoor predictions against the walk's
    end of the interval). The walk's last margin dual reaches its box within round-off of beta = 1:
    whether it is met just before (then "no margin support vector") or just after ("intercept is
    not unique") depends on the CPU's BLAS kernel, so only what holds either way is asserted: the
    path re-fits beta = 1 (and beta = 0, where D alone has no margin dual either) with an
    SVMPathWarning, and it equals the re-fit.
    """
    X_train, y_train, X_test, y_test = load_mnist_pair((7, 1))
    data = poison(
        X_train, y_train, X_test, y_test, trigger="badnets", fraction=0.1, random_state=0, size=3
    )
    learner = RBFSVMLearner(0.01, gamma=5e-3)
    betas = np.r_[default_betas(), 0.37, 1e-3]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = learning_curve(learner, data, betas, method="path").to_frame()
    assert {0.0, 1.0} <= set(_refits(caught))  # either reason
    refit = learning_curve(learner, data, betas, method="refit").to_frame()
    for col in ("clean_accuracy", "backdoor_accuracy"):
        np.testing.assert_array_equal(path[col], refit[col])
    np.testing.assert_allclose(path["backdoor_loss"], refit["backdoor_loss"], rtol=1e-9)


def test_changes_per_base_grow_with_the_margin_set():
    from backdoor_curves.paths.svm import changes_per_base

    assert changes_per_base(10) == changes_per_base(200) == 32  # small sets: the old rule
    assert changes_per_base(1500) == round(0.5 * 1500**0.75)  # about 120: fewer O(m^3) bases
    sizes = [changes_per_base(m) for m in range(1, 5000, 7)]
    assert sizes == sorted(sizes)
