"""backdoor_curves.nn.train: the weighted batch loss, determinism, checkpoints, evaluation.

Oracles: ordinary PyTorch training loops written here (``F.cross_entropy`` + ``torch.optim.SGD``
on the same batches from the same initial weights), a per-sample numpy log-softmax, and runs of
the trainer itself (determinism, resume).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from backdoor_curves.data import ImageBackdoorData  # noqa: E402
from backdoor_curves.nn.train import (  # noqa: E402
    CHECKPOINT_FILE,
    TrainConfig,
    batch_order,
    deterministic,
    evaluate,
    init_model,
    make_optimizer,
    train,
    weighted_loss,
)


def params_of(model) -> list:
    return [p.detach().clone() for p in model.parameters()]


def assert_same_params(a, b) -> None:
    a, b = list(a), list(b)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y), float((x - y).abs().max())


def reference_training(factory, data, config, batch_loss):
    """Plain PyTorch: same initial weights and batches, ``batch_loss(logits, y, rows)``."""
    with deterministic(config):
        model = init_model(factory, config.seed)
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        X = torch.from_numpy(ImageBackdoorData.to_nchw(data.X_train))
        y = torch.from_numpy(data.y_train)
        model.train()
        for epoch in batch_order(data.n_train, config.batch_size, config.epochs, config.seed):
            for rows in epoch:
                index = torch.from_numpy(rows)
                optimizer.zero_grad()
                loss = batch_loss(model(X[index]), y[index], rows)
                loss.backward()
                optimizer.step()
    return model


# ------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("epochs", 0, ValueError),
        ("epochs", 1.5, TypeError),
        ("batch_size", 0, ValueError),
        ("lr", 0.0, ValueError),
        ("lr", float("nan"), ValueError),
        ("momentum", 1.0, ValueError),
        ("momentum", -0.1, ValueError),
        ("weight_decay", -1e-4, ValueError),
        ("optimizer", "rmsprop", ValueError),
        ("optimizer", 3, TypeError),
        ("seed", -1, ValueError),
        ("seed", 1.0, TypeError),
        ("device", 0, TypeError),
        ("threads", 0, ValueError),
    ],
)
def test_config_errors_name_the_field(field, value, error):
    with pytest.raises(error, match=field):
        TrainConfig(**{field: value})


def test_config_defaults_are_paper_001s_sgd():
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.lr) == (3, 64, 0.01)
    assert (config.momentum, config.weight_decay, config.optimizer) == (0.9, 5e-4, "sgd")
    assert config.describe()["optimizer"] == "sgd"
    factory = functools.partial(torch.optim.Adam, lr=1e-3)
    assert "Adam" in TrainConfig(optimizer=factory).describe()["optimizer"]


def test_make_optimizer_by_name_and_by_factory(small_cnn):
    model = small_cnn()
    sgd = make_optimizer(model, TrainConfig(lr=0.2, momentum=0.5, weight_decay=0.1))
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.2, 0.5, 0.1)
    assert (group["dampening"], group["nesterov"]) == (0, False)
    assert isinstance(make_optimizer(model, TrainConfig(optimizer="AdamW")), torch.optim.AdamW)
    adam = make_optimizer(model, TrainConfig(optimizer=functools.partial(torch.optim.Adam, lr=3.0)))
    assert adam.param_groups[0]["lr"] == 3.0
    with pytest.raises(TypeError, match="optimizer"):
        make_optimizer(model, TrainConfig(optimizer=lambda params: "not an optimizer"))


# ------------------------------------------------------------------------------- blocks


def test_batch_order_partitions_each_epoch_and_is_seeded():
    order = batch_order(10, 4, 3, seed=7)
    assert len(order) == 3
    for epoch in order:
        assert [len(b) for b in epoch] == [4, 4, 2]
        assert sorted(np.concatenate(epoch).tolist()) == list(range(10))
        assert all(b.dtype == np.int64 for b in epoch)
    again = batch_order(10, 4, 5, seed=7)  # a longer run starts like the shorter one
    for a, b in zip(order, again[:3], strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(np.concatenate(order[0]), np.concatenate(order[1]))
    other = batch_order(10, 4, 1, seed=8)
    assert not np.array_equal(np.concatenate(order[0]), np.concatenate(other[0]))
    with pytest.raises(ValueError, match="batch_size"):
        batch_order(10, 0, 1, 0)
    with pytest.raises(ValueError, match="n"):
        batch_order(0, 4, 1, 0)


def test_init_model_is_seeded_and_leaves_the_global_rng(small_cnn):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = init_model(small_cnn, 5)
    assert torch.equal(torch.rand(3), expected_next)
    b = init_model(small_cnn, 5)
    c = init_model(small_cnn, 6)
    assert_same_params(a.parameters(), b.parameters())
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    with pytest.raises(TypeError, match="model_factory"):
        init_model(small_cnn(), 0)  # a model, not a factory
    with pytest.raises(TypeError, match="model_factory"):
        init_model(lambda: "no module", 0)


def test_weighted_loss_equals_a_per_sample_numpy_sum():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=gen)
    y = torch.tensor([0, 3, 1, 1, 2, 0, 3])
    w = torch.tensor([1.0, 0.3, 1.0, 0.0, 1.0, 0.3, 1.0])
    z = logits.double().numpy()
    # the natural-log cross-entropy of each sample: log-sum-exp minus the label's logit
    per_sample = [np.log(np.exp(z[i]).sum()) - z[i, y[i]] for i in range(7)]
    expected = sum(w[i].item() * per_sample[i] for i in range(7)) / 7  # divided by B, not sum w
    assert weighted_loss(logits, y, w).item() == pytest.approx(expected, rel=1e-6)


def test_weighted_loss_with_unit_weights_has_cross_entropys_gradient_bit_for_bit():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(33, 10, generator=gen, requires_grad=True)
    y = torch.randint(0, 10, (33,), generator=gen)
    (g_ours,) = torch.autograd.grad(weighted_loss(logits, y, torch.ones(33)), logits)
    (g_ref,) = torch.autograd.grad(F.cross_entropy(logits, y), logits)
    assert torch.equal(g_ours, g_ref)


def test_weighted_loss_checks_shapes():
    with pytest.raises(ValueError, match="logits"):
        weighted_loss(torch.zeros(3), torch.zeros(3, dtype=torch.int64), torch.ones(3))
    with pytest.raises(ValueError, match="w must"):
        weighted_loss(torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64), torch.ones(4))


# ------------------------------------------------------------------------------- training


def test_beta_one_is_ordinary_training_bit_for_bit(nn_digits, small_cnn, fast_config):
    ours = train(small_cnn, nn_digits, 1.0, fast_config)
    ref = reference_training(
        small_cnn, nn_digits, fast_config, lambda logits, y, rows: F.cross_entropy(logits, y)
    )
    assert_same_params(ours.model.parameters(), ref.parameters())
    assert list(ours.history.columns) == ["epoch", "train_loss", "seconds"]
    assert ours.history["epoch"].tolist() == [1, 2] and ours.resumed_from == 0
    assert not ours.model.training


def test_beta_zero_ignores_the_poisoned_rows_bit_for_bit(nn_digits, small_cnn, fast_config):
    poisoned = torch.from_numpy(nn_digits.poisoned)

    def zeroed(logits, y, rows):
        per_sample = F.cross_entropy(logits, y, reduction="none")
        per_sample = torch.where(poisoned[torch.from_numpy(rows)], 0.0, per_sample)
        return per_sample.sum() / len(rows)  # still divided by the whole batch's size

    ours = train(small_cnn, nn_digits, 0.0, fast_config)
    ref = reference_training(small_cnn, nn_digits, fast_config, zeroed)
    assert_same_params(ours.model.parameters(), ref.parameters())
    poisoned_run = train(small_cnn, nn_digits, 1.0, fast_config)
    assert not torch.equal(ours.model.fc.weight, poisoned_run.model.fc.weight)


def test_intermediate_beta_weights_the_poisoned_rows(nn_digits, small_cnn, fast_config):
    beta = 0.3
    weights = torch.where(torch.from_numpy(nn_digits.poisoned), beta, 1.0)

    def weighted(logits, y, rows):
        per_sample = F.cross_entropy(logits, y, reduction="none")
        return (per_sample * weights[torch.from_numpy(rows)]).mean()

    ours = train(small_cnn, nn_digits, beta, fast_config)
    ref = reference_training(small_cnn, nn_digits, fast_config, weighted)
    for a, b in zip(ours.model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_training_is_deterministic_and_restores_torch_settings(nn_digits, small_cnn):
    config = TrainConfig(epochs=1, batch_size=32, lr=0.05, seed=3, threads=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.manual_seed(99)
    expected_next = torch.rand(2)
    torch.manual_seed(99)
    try:
        a = train(small_cnn, nn_digits, 0.5, config)
        assert torch.get_num_threads() == 2
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.equal(torch.rand(2), expected_next)  # the global RNG was forked
        b = train(small_cnn, nn_digits, 0.5, config)
        assert_same_params(a.model.parameters(), b.model.parameters())
        c = train(small_cnn, nn_digits, 0.5, dataclasses.replace(config, seed=4))
        assert not torch.equal(a.model.fc.weight, c.model.fc.weight)
    finally:
        torch.set_num_threads(threads)


def test_dropout_models_are_deterministic_too(nn_digits):
    def factory():
        return torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(196, 16), torch.nn.ReLU(),
            torch.nn.Dropout(0.5), torch.nn.Linear(16, 10),
        )  # fmt: skip

    config = TrainConfig(epochs=1, batch_size=50, lr=0.05)
    a, b = (train(factory, nn_digits, 1.0, config) for _ in range(2))
    assert_same_params(a.model.parameters(), b.model.parameters())


class Recorder:
    def __init__(self, stop_after=None):
        self.calls = []
        self.stop_after = stop_after

    def on_train_begin(self, state):
        self.calls.append(("begin", state.epoch, state.step))

    def on_epoch_end(self, state):
        self.calls.append(("epoch", state.epoch, state.step))
        assert state.model.training and state.lr == state.config.lr
        if state.epoch == self.stop_after:
            raise KeyboardInterrupt("simulated interruption")

    def on_train_end(self, state):
        self.calls.append(("end", state.epoch, state.step))


class Sampler:
    """A callback drawing from torch's global generator (as a tracker choosing samples might)."""

    def on_train_begin(self, state):
        torch.rand(10)

    def on_epoch_end(self, state):
        torch.randperm(50)


def test_callbacks_do_not_change_the_training(nn_digits):
    def factory():
        return torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(196, 10)
        )

    config = TrainConfig(epochs=2, batch_size=100, lr=0.05)
    plain = train(factory, nn_digits, 1.0, config)
    watched = train(factory, nn_digits, 1.0, config, callbacks=[Sampler()])
    assert_same_params(plain.model.parameters(), watched.model.parameters())


def test_callbacks_are_called_in_order(nn_digits, small_cnn):
    config = TrainConfig(epochs=2, batch_size=100)  # 3 steps per epoch
    recorder = Recorder()
    train(small_cnn, nn_digits, 0.2, config, callbacks=[recorder])
    assert recorder.calls == [("begin", 0, 0), ("epoch", 1, 3), ("epoch", 2, 6), ("end", 2, 6)]
    with pytest.raises(TypeError, match="callbacks"):
        train(small_cnn, nn_digits, 0.2, config, callbacks=[object()])


def test_interrupted_run_resumes_to_the_uninterrupted_parameters(nn_digits, tmp_path):
    def factory():  # dropout: the resumed run must also restore torch's random state
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Dropout(0.3), torch.nn.Linear(4 * 12 * 12, 10),
        )  # fmt: skip

    config = TrainConfig(epochs=3, batch_size=64, lr=0.05)
    whole = train(factory, nn_digits, 0.7, config)
    with pytest.raises(KeyboardInterrupt):
        train(factory, nn_digits, 0.7, config, checkpoint_dir=tmp_path,
              callbacks=[Recorder(stop_after=1)])  # fmt: skip
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the error too
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]  # no temporary file
    recorder = Recorder()
    resumed = train(factory, nn_digits, 0.7, config, checkpoint_dir=tmp_path, callbacks=[recorder])
    assert resumed.resumed_from == 1
    assert [c[:2] for c in recorder.calls] == [("begin", 1), ("epoch", 2), ("epoch", 3), ("end", 3)]
    assert_same_params(resumed.model.parameters(), whole.model.parameters())
    assert resumed.history["epoch"].tolist() == [1, 2, 3]
    assert np.allclose(resumed.history["train_loss"], whole.history["train_loss"], rtol=0, atol=0)
    # a finished checkpoint is read back without training
    recorder = Recorder()
    again = train(factory, nn_digits, 0.7, config, checkpoint_dir=tmp_path, callbacks=[recorder])
    assert again.resumed_from == 3 and [c[0] for c in recorder.calls] == ["begin", "end"]
    assert_same_params(again.model.parameters(), whole.model.parameters())


def test_a_longer_run_extends_a_checkpoint(nn_digits, small_cnn, tmp_path):
    short = TrainConfig(epochs=1, batch_size=64, lr=0.05)
    long = dataclasses.replace(short, epochs=2)
    train(small_cnn, nn_digits, 1.0, short, checkpoint_dir=tmp_path)
    extended = train(small_cnn, nn_digits, 1.0, long, checkpoint_dir=tmp_path)
    assert extended.resumed_from == 1
    assert_same_params(
        extended.model.parameters(), train(small_cnn, nn_digits, 1.0, long).model.parameters()
    )
    with pytest.raises(ValueError, match="config.epochs"):
        train(small_cnn, nn_digits, 1.0, short, checkpoint_dir=tmp_path)


def test_a_checkpoint_of_another_training_is_refused(nn_digits, small_cnn, tmp_path):
    config = TrainConfig(epochs=1, batch_size=100)
    train(small_cnn, nn_digits, 1.0, config, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="checkpoint_dir.*beta"):
        train(small_cnn, nn_digits, 0.5, config, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="checkpoint_dir.*config"):
        train(small_cnn, nn_digits, 1.0, dataclasses.replace(config, lr=0.5),
              checkpoint_dir=tmp_path)  # fmt: skip


def test_progress_bar_runs(nn_digits, small_cnn, capsys):
    train(small_cnn, nn_digits, 1.0, TrainConfig(epochs=1, batch_size=150), progress=True)
    assert "beta=1" in capsys.readouterr().err


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("beta", "error"), [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                        (True, TypeError), ("1", TypeError)],
)  # fmt: skip
def test_beta_outside_the_unit_interval_is_refused(nn_digits, small_cnn, beta, error):
    with pytest.raises(error, match="beta"):
        train(small_cnn, nn_digits, beta, TrainConfig(epochs=1))


class Flat(torch.nn.Module):
    def __init__(self, out_shape):
        super().__init__()
        self.lin = torch.nn.Linear(196, int(np.prod(out_shape)))
        self.out_shape = out_shape

    def forward(self, x):
        return self.lin(x.flatten(1)).reshape(len(x), *self.out_shape)


@pytest.mark.parametrize("out_shape", [(), (2, 5)], ids=["1-D", "3-D"])
def test_a_model_whose_output_is_not_2d_is_refused(nn_digits, out_shape):
    if out_shape == ():
        factory = lambda: torch.nn.Sequential(Flat((1,)), torch.nn.Flatten(0))  # noqa: E731
    else:
        factory = functools.partial(Flat, out_shape)
    with pytest.raises(ValueError, match=r"model_factory.*\(n, n_classes\)"):
        train(factory, nn_digits, 1.0, TrainConfig(epochs=1))


def test_labels_outside_the_models_classes_are_refused(nn_digits):
    # a 3-class model on ten-class data: labels 3..9 would have no logit
    with pytest.raises(ValueError, match="model_factory.*3 logits.*n_classes = 10"):
        train(functools.partial(Flat, (3,)), nn_digits, 1.0, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="model.*3 logits"):
        evaluate(Flat((3,)), nn_digits)


def test_other_bad_arguments_are_named(nn_digits, small_cnn):
    with pytest.raises(TypeError, match="data"):
        train(small_cnn, {"X_train": nn_digits.X_train}, 1.0)
    with pytest.raises(TypeError, match="config"):
        train(small_cnn, nn_digits, 1.0, {"epochs": 1})
    with pytest.raises(TypeError, match="checkpoint_dir"):
        train(small_cnn, nn_digits, 1.0, checkpoint_dir=3)
    with pytest.raises(ValueError, match="device"):
        if torch.cuda.is_available():
            pytest.skip("CUDA is available")
        train(small_cnn, nn_digits, 1.0, TrainConfig(device="cuda"))


def test_empty_or_unpoisoned_data_cannot_reach_the_trainer(nn_digits):
    fields = {f.name: getattr(nn_digits, f.name) for f in dataclasses.fields(nn_digits)}
    with pytest.raises(ValueError, match="X_train"):
        ImageBackdoorData(**{**fields, "X_train": fields["X_train"][:0],
                             "y_train": fields["y_train"][:0], "poisoned": fields["poisoned"][:0],
                             "y_source": fields["y_source"][:0]})  # fmt: skip
    with pytest.raises(ValueError, match="poisoned"):
        ImageBackdoorData(**{**fields, "poisoned": np.zeros_like(fields["poisoned"])})


# ------------------------------------------------------------------------------- evaluation


def test_evaluate_matches_a_per_sample_oracle(nn_digits, small_cnn, fast_config):
    model = train(small_cnn, nn_digits, 1.0, fast_config).model
    model.train()
    scores = evaluate(model, nn_digits, batch_size=7)
    assert model.training  # mode restored
    assert set(scores) == {"backdoor_loss", "clean_loss", "clean_accuracy", "backdoor_accuracy"}
    model.eval()
    for X, y, name in (
        (nn_digits.X_test_bd, nn_digits.y_test_bd, "backdoor"),
        (nn_digits.X_test, nn_digits.y_test, "clean"),
    ):
        losses, hits = [], []
        for i in range(len(y)):  # one image at a time, natural-log cross-entropy in float64
            with torch.no_grad():
                z = model(torch.from_numpy(X[i][None, None])).double().numpy()[0]
            top = z.max()
            losses.append(top + np.log(np.exp(z - top).sum()) - z[y[i]])
            hits.append(int(np.argmax(z)) == y[i])
        assert scores[f"{name}_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
        assert scores[f"{name}_accuracy"] == np.mean(hits)
    assert scores["backdoor_loss"] > 0.0 and 0.0 <= scores["clean_accuracy"] <= 1.0


def test_evaluate_checks_its_arguments(nn_digits, small_cnn):
    with pytest.raises(TypeError, match="model"):
        evaluate(small_cnn, nn_digits)  # a factory, not a model
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(small_cnn(), nn_digits, batch_size=0)
    with pytest.raises(TypeError, match="data"):
        evaluate(small_cnn(), None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_training_runs(nn_digits, small_cnn, fast_config):
    result = train(small_cnn, nn_digits, 1.0, dataclasses.replace(fast_config, device="cuda"))
    assert next(result.model.parameters()).is_cuda
    assert set(evaluate(result.model, nn_digits)) >= {"backdoor_loss"}
