"""backdoor_curves.nn.exact: the forward-mode derivative of a training run along beta.

Oracles: the trainer itself (:func:`train`, whose parameters the functional replay must
reproduce), central finite differences of the functional run in float64 (beta = +-h), and
forward finite differences (L(h) - L(0)) / h of ordinary ``train`` runs, whose error must shrink
linearly with h.

Two kinds of model. ``SmallCNN`` (ReLU, max-pool) makes the trained network a *piecewise* smooth
function of beta: an activation that switches sign, or a max-pool arg-max that moves, at some
step of the run is a kink of L(beta). On the tiny data of these tests such kinks lie within
1e-3 of beta = 0 (the central difference at h = 1e-3 is 8 % off the derivative in float64, the
forward difference at h = 0.003 43 %, at h = 3e-4 and below it converges linearly), so the
finite-difference checks run on SmallCNN at h <= 1e-4 in float64, and on a smooth network
(tanh, average pooling) at the spec's h = 1e-3 and with the trainer's h = 0.1, 0.03, 0.01.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backdoor_curves.attacks.multiclass import poison_multiclass  # noqa: E402
from backdoor_curves.datasets.mnist import load_mnist_multiclass  # noqa: E402
from backdoor_curves.nn.exact import (  # noqa: E402
    PointDerivatives,
    TrainingDerivative,
    _functional_run,
    _scores,
    point_derivatives,
    training_derivative,
)
from backdoor_curves.nn.train import (  # noqa: E402
    TrainConfig,
    deterministic,
    evaluate,
    init_model,
    train,
)


def smooth_cnn(dtype=torch.float32):
    """A differentiable CNN (tanh, average pooling): L(beta) is smooth, no kinks."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 7 * 7, 10),
    ).to(dtype)  # fmt: skip


def norm_net(dtype=torch.float32):
    """Batch norm (exponential and cumulative running averages), dropout, a frozen layer."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.Tanh(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Dropout(0.2),
        torch.nn.Linear(4 * 7 * 7, 16), torch.nn.BatchNorm1d(16, momentum=None), torch.nn.Tanh(),
        torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10),
    )  # fmt: skip
    net[9].requires_grad_(False)  # held fixed: torch.optim.SGD skips parameters without grad
    return net.to(dtype)


def float64(factory):
    return lambda: factory().double()


def functional_loss(factory, data, beta, config) -> float:
    """L(V_t) of the functional primal run at any real beta (also negative)."""
    with deterministic(config):
        run = _functional_run(factory, data, beta, config, tangent=False)
        return _scores(run, data)["backdoor_loss"]


def central_difference(factory, data, config, h) -> float:
    plus = functional_loss(factory, data, h, config)
    minus = functional_loss(factory, data, -h, config)
    return (plus - minus) / (2 * h)


def assert_params_close(model, reference, atol) -> None:
    for (name, a), b in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=atol, msg=name)


# ------------------------------------------------------------------------------- the primal run


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_functional_run_reproduces_the_trainer(nn_digits, small_cnn, fast_config, beta):
    # Tolerance 1e-6 (absolute, parameters of order 0.1-1): the same float32 operations in
    # the same order, but the gradient of the differentiated run comes out of a
    # forward-over-reverse pass whose kernels may round differently in the last bit; over the
    # 20 steps the parameters drift by a few ulps (measured: 6e-8 at most). The run without
    # tangents (torch.func.grad only) is the trainer's, bit for bit today, and held to the
    # same tolerance.
    reference = train(small_cnn, nn_digits, beta, fast_config).model
    for tangent in (True, False):
        with deterministic(fast_config):
            run = _functional_run(small_cnn, nn_digits, beta, fast_config, tangent=tangent)
        assert run.n_steps == 20 and not run.model.training
        assert_params_close(run.model, reference, atol=1e-6)


def test_result_describes_the_model_trained_at_beta_zero(nn_digits, small_cnn, fast_config):
    result = training_derivative(small_cnn, nn_digits, fast_config)
    assert isinstance(result, TrainingDerivative)
    reference = train(small_cnn, nn_digits, 0.0, fast_config).model
    assert_params_close(result.model, reference, atol=1e-6)
    expected = evaluate(reference, nn_digits)
    for key in ("backdoor_loss", "clean_loss"):
        assert getattr(result, key) == pytest.approx(expected[key], rel=1e-6)
    for key in ("clean_accuracy", "backdoor_accuracy"):
        assert getattr(result, key) == expected[key]
    assert result.n_steps == 20 and result.seconds > 0.0 and result.config is fast_config
    assert result.score == pytest.approx(-2.0 / np.pi * np.arctan(result.derivative))
    # the poison lowers the backdoor loss of the tiny CNN: a negative derivative
    assert result.derivative < 0.0 < result.score < 1.0


@pytest.mark.parametrize(
    "optimizer",
    [
        functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        functools.partial(torch.optim.SGD, lr=0.05, momentum=0.5, dampening=0.3),
    ],
    ids=["nesterov", "dampening"],
)
def test_batch_norm_dropout_and_sgd_variants(nn_digits, optimizer):
    config = TrainConfig(epochs=1, batch_size=50, optimizer=optimizer)
    reference = train(norm_net, nn_digits, 0.5, config).model
    with deterministic(config):
        run = _functional_run(norm_net, nn_digits, 0.5, config, tangent=True)
    # the running statistics are averaged by our own formula (not the batch-norm kernel's):
    # float32 rounding of a different summation order, hence 1e-5
    assert_params_close(run.model, reference, atol=1e-5)
    for (name, a), b in zip(run.model.named_buffers(), reference.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)
    initial = init_model(norm_net, config.seed)
    assert torch.equal(run.model[9].weight, initial[9].weight)  # frozen: never moved

    factory = float64(norm_net)
    exact = training_derivative(factory, nn_digits, config).derivative
    fd = central_difference(factory, nn_digits, config, 1e-3)
    assert exact == pytest.approx(fd, rel=1e-4)


def test_momentum_zero_and_no_weight_decay(nn_digits):
    config = TrainConfig(epochs=1, batch_size=64, lr=0.1, momentum=0.0, weight_decay=0.0)
    factory = float64(smooth_cnn)
    exact = training_derivative(factory, nn_digits, config).derivative
    assert exact == pytest.approx(central_difference(factory, nn_digits, config, 1e-3), rel=1e-4)


# ------------------------------------------------------------------------------- the derivative


def test_derivative_equals_a_central_difference_in_float64(nn_digits, small_cnn, fast_config):
    # float64: in float32 the rounding of L (~1e-7) over 2h would swamp 1e-4 relative.
    smooth = float64(smooth_cnn)
    exact = training_derivative(smooth, nn_digits, fast_config).derivative
    fd = central_difference(smooth, nn_digits, fast_config, 1e-3)
    assert abs(fd - exact) <= 1e-4 * abs(exact)  # measured 5e-7

    # SmallCNN: kinks within 1e-3 of beta = 0 (see the module's docstring), smooth below 1e-4
    cnn = float64(small_cnn)
    exact64 = training_derivative(cnn, nn_digits, fast_config).derivative
    fd = central_difference(cnn, nn_digits, fast_config, 1e-5)
    assert abs(fd - exact64) <= 1e-6 * abs(exact64)  # measured 4e-11
    # the float32 derivative is accurate: rounding does not grow along the tangent recursion
    exact32 = training_derivative(small_cnn, nn_digits, fast_config).derivative
    assert exact32 == pytest.approx(exact64, rel=1e-5)  # measured 2e-8


def test_forward_differences_of_the_trainer_converge_to_the_derivative(nn_digits, fast_config):
    exact = training_derivative(smooth_cnn, nn_digits, fast_config).derivative
    base = evaluate(train(smooth_cnn, nn_digits, 0.0, fast_config).model, nn_digits)
    errors = []
    for h in (0.1, 0.03, 0.01):
        at = evaluate(train(smooth_cnn, nn_digits, h, fast_config).model, nn_digits)
        errors.append(abs((at["backdoor_loss"] - base["backdoor_loss"]) / h - exact))
    # first order: the error shrinks like h (by 3.3 per step of h; measured 3.2 and 3.0)
    assert errors[0] > 2.0 * errors[1] > 4.0 * errors[2] > 0.0, errors


def test_small_cnn_differences_converge_below_its_kinks(nn_digits, small_cnn, fast_config):
    cnn = float64(small_cnn)
    exact = training_derivative(cnn, nn_digits, fast_config).derivative
    base = functional_loss(cnn, nn_digits, 0.0, fast_config)
    errors = [
        abs((functional_loss(cnn, nn_digits, h, fast_config) - base) / h - exact)
        for h in (1e-4, 3e-5, 1e-5)
    ]
    assert errors[0] > 2.0 * errors[1] > 4.0 * errors[2] > 0.0, errors  # measured 3.3 and 3.0


def test_same_seed_same_derivative(nn_digits, small_cnn, fast_config):
    a = training_derivative(small_cnn, nn_digits, fast_config)
    b = training_derivative(small_cnn, nn_digits, fast_config)
    assert a.derivative == b.derivative and a.backdoor_loss == b.backdoor_loss
    c = training_derivative(small_cnn, nn_digits, dataclasses.replace(fast_config, seed=1))
    assert c.derivative != a.derivative


def test_progress_bar_runs(nn_digits, small_cnn, capsys):
    training_derivative(small_cnn, nn_digits, TrainConfig(epochs=1, batch_size=150), progress=True)
    assert "d/dbeta" in capsys.readouterr().err


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "optimizer",
    ["adam", "adamw", functools.partial(torch.optim.Adam, lr=1e-3),
     functools.partial(torch.optim.SGD, lr=0.1, maximize=True)],
    ids=["adam", "adamw", "Adam-callable", "sgd-maximize"],
)  # fmt: skip
def test_optimizers_other_than_sgd_are_refused(nn_digits, small_cnn, optimizer):
    with pytest.raises(ValueError, match=r"config\.optimizer"):
        training_derivative(small_cnn, nn_digits, TrainConfig(epochs=1, optimizer=optimizer))


def test_instance_norm_with_running_statistics_is_refused(nn_digits):
    def factory():
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 2, 3), torch.nn.InstanceNorm2d(2, track_running_stats=True),
            torch.nn.Flatten(), torch.nn.Linear(2 * 12 * 12, 10),
        )  # fmt: skip

    with pytest.raises(ValueError, match=r"model_factory.*'1'.*InstanceNorm2d"):
        training_derivative(factory, nn_digits, TrainConfig(epochs=1))


def test_bad_models_are_refused(nn_digits):
    def frozen():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(196, 10)).requires_grad_(
            False
        )

    with pytest.raises(ValueError, match="model_factory.*no parameter"):
        training_derivative(frozen, nn_digits, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r"model_factory.*3 logits.*n_classes = 10"):
        training_derivative(
            lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(196, 3)),
            nn_digits,
            TrainConfig(epochs=1),
        )
    with pytest.raises(ValueError, match=r"model_factory.*\(n, n_classes\)"):
        training_derivative(
            lambda: torch.nn.Sequential(torch.nn.Flatten(0), torch.nn.Linear(300 * 196, 10)),
            nn_digits,
            TrainConfig(epochs=1, batch_size=300),
        )


def test_bad_arguments_are_named(nn_digits, small_cnn):
    with pytest.raises(TypeError, match="model_factory"):
        training_derivative(small_cnn(), nn_digits)  # a model, not a factory
    with pytest.raises(TypeError, match="model_factory"):
        training_derivative("SmallCNN", nn_digits)
    with pytest.raises(TypeError, match="data"):
        training_derivative(small_cnn, {"X_train": nn_digits.X_train})
    with pytest.raises(TypeError, match="config"):
        training_derivative(small_cnn, nn_digits, {"epochs": 1})
    with pytest.raises(TypeError, match="progress"):
        training_derivative(small_cnn, nn_digits, progress="yes")


def test_importing_the_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, backdoor_curves.nn.exact; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------- per-point derivatives


def test_point_derivatives_sum_to_the_total_derivative(nn_digits, small_cnn, fast_config):
    # Linearity in the weights' tangent: sum_j dL/dw_j over the poisoned rows = dL/dbeta. The
    # two sides are different float64 computations of the same linear map (30 batched tangents
    # in chunks of 16 vs one tangent), so they differ by rounding only: each term carries
    # relative errors of order 1e-16 times the growth along 20 steps, bounded here by 1e-12
    # times the sum of the terms' magnitudes (the sum partly cancels). Measured: 4e-17.
    cnn = float64(small_cnn)
    total = training_derivative(cnn, nn_digits, fast_config).derivative
    points = point_derivatives(cnn, nn_digits, fast_config, chunk_size=16)
    assert isinstance(points, PointDerivatives)
    np.testing.assert_array_equal(points.rows, np.flatnonzero(nn_digits.poisoned))
    assert points.poisoned.all() and points.n_steps == 20 and points.chunk_size == 16
    scale = np.abs(points.derivatives).sum()
    assert abs(points.derivatives.sum() - total) <= 1e-12 * scale
    # the per-point values are not all alike (the test would pass trivially for d_j = total/30)
    assert points.derivatives.std() > 0.1 * abs(points.derivatives.mean())


def test_point_derivatives_with_batch_norm_and_dropout(nn_digits):
    # batched tangents through batch-norm running statistics and a dropout layer (vmap with
    # randomness="same": one mask per step, the trainer's stream): linearity as above, same
    # bound and reasoning (measured: 0)
    factory = float64(norm_net)
    config = TrainConfig(epochs=1, batch_size=50, lr=0.05)
    total = training_derivative(factory, nn_digits, config).derivative
    points = point_derivatives(factory, nn_digits, config, chunk_size=16)
    assert abs(points.derivatives.sum() - total) <= 1e-12 * np.abs(points.derivatives).sum()


def test_point_derivative_along_a_direction_and_a_clean_row(nn_digits, small_cnn, fast_config):
    # the vmapped path (chunk of two rows) against the single-tangent path (direction = e_j),
    # for a poisoned and a clean row (weight 1 at beta = 0): the same linear map in float64
    cnn = float64(small_cnn)
    j = int(np.flatnonzero(nn_digits.poisoned)[3])
    c = int(np.flatnonzero(~nn_digits.poisoned)[5])
    points = point_derivatives(cnn, nn_digits, fast_config, rows=[j, c])
    assert points.poisoned.tolist() == [True, False]
    for row, value in zip((j, c), points.derivatives, strict=True):
        e = np.zeros(nn_digits.n_train)
        e[row] = 1.0
        single = training_derivative(cnn, nn_digits, fast_config, direction=e).derivative
        assert value == pytest.approx(single, rel=1e-10, abs=1e-15)


class _ToFloat64(torch.nn.Module):
    def forward(self, x):
        return x.to(torch.float64)


def test_point_derivative_equals_retraining_with_one_row_reweighted(nn_digits, fast_config):
    # The oracle: train() with only one row's weight changed. train() weighs every poisoned row
    # by beta, so the data are rebuilt with a single poisoned row (the same digits, fraction
    # 1/300); its weight is beta, every other row keeps weight 1. Smooth network in float64;
    # Richardson-extrapolated forward differences 2 D(h/2) - D(h) of train() runs (error
    # O(h^2); float64 rounding of L, ~1e-16, divided by h stays below 1e-12).
    X_train, y_train, X_test, y_test = load_mnist_multiclass(
        n_train=300, n_test=100, random_state=0, pool=2
    )
    one = poison_multiclass(
        X_train, y_train, X_test, y_test, mode="all-to-one", target=0, fraction=1 / 300,
        random_state=0,
    )  # fmt: skip
    assert one.n_poison == 1
    (j,) = np.flatnonzero(one.poisoned)

    def smooth():  # float64 network that casts train()'s float32 images itself
        return torch.nn.Sequential(_ToFloat64(), smooth_cnn(torch.float64))

    exact = point_derivatives(smooth, one, fast_config, rows=[j]).derivatives[0]

    def loss(beta):
        return evaluate(train(smooth, one, beta, fast_config).model, one)["backdoor_loss"]

    base, h = loss(0.0), 1e-3
    d_h, d_h2 = (loss(h) - base) / h, (loss(h / 2) - base) / (h / 2)
    richardson = 2.0 * d_h2 - d_h
    # measured: 1.1e-10 (Richardson), 2e-5 (the plain forward difference at h = 1e-3)
    assert abs(richardson - exact) <= 1e-7 * abs(exact), (richardson, exact, d_h)
    assert abs(d_h - exact) > abs(richardson - exact)  # the extrapolation did something


def test_point_derivatives_refuse_bad_arguments(nn_digits, small_cnn):
    config = TrainConfig(epochs=1)
    with pytest.raises(TypeError, match="rows"):
        point_derivatives(small_cnn, nn_digits, config, rows=nn_digits.poisoned)
    for rows in ([], [-1], [nn_digits.n_train], [1, 1]):
        with pytest.raises(ValueError, match="rows"):
            point_derivatives(small_cnn, nn_digits, config, rows=rows)
    with pytest.raises(ValueError, match="chunk_size"):
        point_derivatives(small_cnn, nn_digits, config, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        point_derivatives(small_cnn, nn_digits, config, chunk_size=2.0)
    with pytest.raises(ValueError, match="direction"):
        training_derivative(small_cnn, nn_digits, config, direction=np.ones(3))
    with pytest.raises(ValueError, match="direction"):
        training_derivative(
            small_cnn, nn_digits, config, direction=np.full(nn_digits.n_train, np.nan)
        )
    with pytest.raises(TypeError, match="direction"):
        training_derivative(small_cnn, nn_digits, config, direction=nn_digits.poisoned)
