"""backdoor_curves.nn.curves: learning curves and finite-difference slopes of a tiny CNN.

Oracle: the trainer and the evaluation called directly at each beta (a curve point is one
training run), and the deviation / score formulas computed here from the raw parameters.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backdoor_curves.measures.results import CURVE_COLUMNS, LearningCurve  # noqa: E402
from backdoor_curves.nn.curves import NNBackdoorSlope, nn_backdoor_slope, nn_learning_curve  # noqa: E402
from backdoor_curves.nn.train import TrainConfig, deterministic, evaluate, train  # noqa: E402


def direct(factory, data, beta, config):
    with deterministic(config):
        result = train(factory, data, beta, config)
        return evaluate(result.model, data), result.model


def flat(model) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()


class CountingFactory:
    """A model factory that counts the models it builds (one per training)."""

    def __init__(self, factory):
        self.factory = factory
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.factory()


def test_curve_points_are_independent_trainings(nn_digits, small_cnn, fast_config):
    betas = [0.5, 0.0, 1.0, 0.5]  # order kept, repeats allowed
    curve = nn_learning_curve(small_cnn, nn_digits, betas, fast_config)
    assert isinstance(curve, LearningCurve)
    assert list(curve.to_frame().columns) == list(CURVE_COLUMNS)
    assert curve.learner == "SmallCNN" and curve.regularization == fast_config.weight_decay
    assert curve.params["n_parameters"] == 1066 and curve.params["lr"] == fast_config.lr
    scores0, model0 = direct(small_cnn, nn_digits, 0.0, fast_config)
    w0 = flat(model0)
    for k, beta in enumerate(betas):
        scores, model = direct(small_cnn, nn_digits, beta, fast_config)
        for column, value in scores.items():
            assert curve[column][k] == value, (beta, column)
        w = flat(model)
        assert curve["rho"][k] == pytest.approx(np.linalg.norm(w), rel=1e-12)
        assert curve["rho_ratio"][k] == pytest.approx(np.linalg.norm(w) / np.linalg.norm(w0))
        cos = w @ w0 / (np.linalg.norm(w) * np.linalg.norm(w0))
        assert curve["nu"][k] == pytest.approx((1 - cos) / 2, abs=1e-12)
    assert curve["nu"][1] == 0.0 and curve["rho_ratio"][1] == pytest.approx(1.0, rel=1e-14)
    assert curve["nu"][2] > 0.0  # the poison moved the parameters
    assert np.array_equal(curve["backdoor_loss"][[0]], curve["backdoor_loss"][[3]])


def test_curve_is_read_back_from_its_checkpoints(nn_digits, small_cnn, tmp_path):
    config = TrainConfig(epochs=1, batch_size=50, lr=0.05, seed=2)
    betas = [0.0, 0.1, 1.0]
    first = nn_learning_curve(small_cnn, nn_digits, betas, config, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "seed=2").iterdir()) == [
        "beta=0.0", "beta=0.1", "beta=1.0",
    ]  # fmt: skip
    files = sorted(tmp_path.rglob("checkpoint.pt"))
    stamps = [f.stat().st_mtime_ns for f in files]
    reread = nn_learning_curve(small_cnn, nn_digits, betas, config, checkpoint_dir=tmp_path)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read back, not trained again
    for column in CURVE_COLUMNS[1:]:
        assert np.array_equal(first[column], reread[column]), column


@pytest.mark.slow  # two joblib worker processes import torch: ~10 s on a loaded 2-core machine
def test_curve_does_not_depend_on_n_jobs(nn_digits, small_cnn):
    config = TrainConfig(epochs=1, batch_size=50, lr=0.05, seed=2)
    betas = [0.0, 1.0]
    serial = nn_learning_curve(small_cnn, nn_digits, betas, config)
    parallel = nn_learning_curve(small_cnn, nn_digits, betas, config, n_jobs=2)
    for column in CURVE_COLUMNS[1:]:
        assert np.array_equal(serial[column], parallel[column]), column


def test_curve_labels_and_regularization_of_a_callable_optimizer(nn_digits, small_cnn):
    config = TrainConfig(epochs=1, batch_size=100, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    curve = nn_learning_curve(small_cnn, nn_digits, [1.0], config, label="tiny CNN")
    assert curve.learner == "tiny CNN" and math.isnan(curve.regularization)
    assert curve.betas.tolist() == [1.0] and curve["nu"].shape == (1,)


def test_default_betas_are_eleven_from_zero_to_one(nn_digits, small_cnn, monkeypatch):
    seen = []
    import backdoor_curves.nn.curves as curves

    monkeypatch.setattr(
        curves, "_train_point", lambda *task: seen.append(task[2]) or ({}, np.ones(2), "M")
    )
    with pytest.raises(KeyError):  # the fake trainings return no scores
        curves.nn_learning_curve(small_cnn, nn_digits)
    assert len(seen) == 11 and seen[0] == 0.0 and seen[-1] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "name", "error"),
    [
        ({"betas": [0.0, 1.2]}, "betas", ValueError),
        ({"betas": [-0.5]}, "betas", ValueError),
        ({"n_jobs": 0}, "n_jobs", ValueError),
        ({"label": 3}, "label", TypeError),
        ({"config": {"epochs": 1}}, "config", TypeError),
        ({"checkpoint_dir": 1}, "checkpoint_dir", TypeError),
    ],
)
def test_curve_rejects_bad_arguments(nn_digits, small_cnn, kwargs, name, error):
    with pytest.raises(error, match=name):
        nn_learning_curve(small_cnn, nn_digits, **kwargs)


def test_curve_rejects_bad_model_and_data(nn_digits, small_cnn):
    with pytest.raises(TypeError, match="data"):
        nn_learning_curve(small_cnn, nn_digits.X_train, [1.0])
    with pytest.raises(TypeError, match="model_factory"):
        nn_learning_curve("SmallCNN", nn_digits, [1.0])
    wrong = lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(196, 3))  # noqa: E731
    with pytest.raises(ValueError, match="model_factory.*n_classes = 10"):
        nn_learning_curve(wrong, nn_digits, [1.0], TrainConfig(epochs=1))


# ------------------------------------------------------------------------------- slopes


def test_slope_is_the_finite_difference_of_direct_trainings(nn_digits, small_cnn, fast_config):
    steps, seeds = (0.05, 1.0), (0, 1)
    factory = CountingFactory(small_cnn)
    slope = nn_backdoor_slope(factory, nn_digits, fast_config, h=steps, seeds=seeds)
    assert factory.calls == len(seeds) * (1 + len(steps))  # L(0) trained once per seed
    assert isinstance(slope, NNBackdoorSlope) and slope.seeds == seeds
    table = slope.to_frame()
    assert len(table) == 4 and table[["seed", "h"]].values.tolist() == [
        [0, 0.05], [0, 1.0], [1, 0.05], [1, 1.0],
    ]  # fmt: skip
    derivatives = {}
    for seed in seeds:
        config = dataclasses.replace(fast_config, seed=seed)
        base, _ = direct(small_cnn, nn_digits, 0.0, config)
        for h in steps:
            at, _ = direct(small_cnn, nn_digits, h, config)
            row = table[(table["seed"] == seed) & (table["h"] == h)].iloc[0]
            expected = (at["backdoor_loss"] - base["backdoor_loss"]) / h
            assert row["backdoor_loss_0"] == base["backdoor_loss"]
            assert row["backdoor_loss_h"] == at["backdoor_loss"]
            assert row["derivative"] == pytest.approx(expected, rel=1e-12)
            assert row["score"] == pytest.approx(-2 / np.pi * np.arctan(expected), rel=1e-12)
            assert row["clean_accuracy_h"] == at["clean_accuracy"]
            derivatives.setdefault(h, []).append(expected)
    for k, h in enumerate(steps):
        d = np.array(derivatives[h])
        assert slope.derivative[k] == pytest.approx(d.mean(), rel=1e-12)
        assert slope.derivative_std[k] == pytest.approx(d.std(ddof=1), rel=1e-9)
        scores = -2 / np.pi * np.arctan(d)
        assert slope.score[k] == pytest.approx(scores.mean(), rel=1e-12)
        assert slope.score_std[k] == pytest.approx(scores.std(ddof=1), rel=1e-9)
    assert slope.backdoor_loss == pytest.approx(table["backdoor_loss_0"].mean())
    summary = slope.summary()
    assert summary["h"].tolist() == list(steps) and (summary["n_seeds"] == 2).all()
    # the secant h = 1: poisoned training lowers the backdoor loss here
    assert slope.derivative[1] < 0 < slope.score[1]


def test_slope_of_one_seed_has_no_spread_and_shares_checkpoints(nn_digits, small_cnn, tmp_path):
    config = TrainConfig(epochs=1, batch_size=100, lr=0.05)
    curve = nn_learning_curve(small_cnn, nn_digits, [0.0, 1.0], config, checkpoint_dir=tmp_path)
    slope = nn_backdoor_slope(small_cnn, nn_digits, config, h=1.0, checkpoint_dir=tmp_path)
    assert np.isnan(slope.derivative_std).all() and np.isnan(slope.score_std).all()
    assert slope.backdoor_loss == curve["backdoor_loss"][0]
    assert slope.derivative[0] == curve["backdoor_loss"][1] - curve["backdoor_loss"][0]
    assert slope.learner == "SmallCNN" and "seed" not in slope.params


@pytest.mark.parametrize(
    ("kwargs", "name", "error"),
    [
        ({"h": 0.0}, "h", ValueError),
        ({"h": (0.1, -0.1)}, "h", ValueError),
        ({"h": 1.5}, "h", ValueError),
        ({"h": ()}, "h", ValueError),
        ({"h": (0.1, 0.1)}, "h", ValueError),
        ({"h": "0.1"}, "h", TypeError),
        ({"h": (True,)}, "h", TypeError),
        ({"seeds": ()}, "seeds", ValueError),
        ({"seeds": (-1,)}, "seeds", ValueError),
        ({"seeds": (0, 0)}, "seeds", ValueError),
        ({"seeds": (0.5,)}, "seeds", TypeError),
    ],
)
def test_slope_rejects_bad_steps_and_seeds(nn_digits, small_cnn, kwargs, name, error):
    with pytest.raises(error, match=name):
        nn_backdoor_slope(small_cnn, nn_digits, TrainConfig(epochs=1), **kwargs)
