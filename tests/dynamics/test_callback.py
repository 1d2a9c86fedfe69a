"""The InformationDynamics callback: its groups, its table, and a training it leaves unchanged."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backdoor_curves.attacks.multiclass import poison_multiclass  # noqa: E402
from backdoor_curves.data import ImageBackdoorData  # noqa: E402
from backdoor_curves.datasets.mnist import load_mnist_multiclass  # noqa: E402
from backdoor_curves.dynamics import DYNAMICS_COLUMNS, InformationDynamics  # noqa: E402
from backdoor_curves.nn.callbacks import TrainState  # noqa: E402
from backdoor_curves.nn.train import TrainConfig, init_model, train  # noqa: E402

TINY = {"n_negatives": 16, "epochs": 5, "batch_size": 32, "hidden": 8, "lr": 3e-3}


def _callback(**kwargs):
    options = {"xt_options": TINY, "ty_options": TINY, "classes": [1, 2], "pca_components": 8}
    return InformationDynamics("conv2", **{**options, **kwargs})


def test_training_with_the_callback_ends_with_the_same_parameters(digits, tiny_cnn):
    config = TrainConfig(epochs=2, batch_size=32, lr=0.05)
    plain = train(tiny_cnn, digits, 1.0, config)
    dynamics = _callback(checkpoints=[0, 2], noise_std=0.4, max_samples=40)
    tracked = train(tiny_cnn, digits, 1.0, config, callbacks=[dynamics])
    for (name, p), q in zip(
        plain.model.named_parameters(), tracked.model.parameters(), strict=True
    ):
        assert torch.equal(p, q), name
    history = dynamics.history
    assert list(history.columns) == DYNAMICS_COLUMNS
    groups = ["target_all", "target_poisoned", "target_clean", "class_1", "class_2"]
    assert history["epoch"].tolist() == [0] * 5 + [2] * 5
    assert history["group"].tolist() == groups * 2
    bound = np.log(TINY["n_negatives"] + 1)
    assert np.all(np.isfinite(history[["mi_xt", "mi_ty"]].to_numpy()))
    assert np.all(history[["mi_xt", "mi_ty"]].to_numpy() <= bound)
    # each group: a sample of its rows, at most max_samples
    y, poisoned = digits.y_train, digits.poisoned
    members = {
        "target_all": y == 0,
        "target_poisoned": poisoned,
        "target_clean": (y == 0) & ~poisoned,
        "class_1": (y == 1) & ~poisoned,
        "class_2": (y == 2) & ~poisoned,
    }
    size = min(40, *(int(mask.sum()) for mask in members.values()))  # equal_size
    for group, mask in members.items():
        rows = dynamics.samples[group]
        assert len(rows) == size and mask[rows].all()
        assert history.loc[history["group"] == group, "n"].tolist() == [size] * 2
    assert len(dynamics.estimates) == 20  # fresh critic per group x checkpoint x MI


def test_a_checkpoint_leaves_model_gradients_and_random_states_as_found(digits, tiny_cnn):
    model = init_model(tiny_cnn, 0)
    model.train()
    X = torch.from_numpy(ImageBackdoorData.to_nchw(digits.X_train[:16]))
    model(X).sum().backward()
    params = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    state = TrainState(model, digits, 1.0, TrainConfig(), 1, 10, 0.05, None, torch.device("cpu"))
    dynamics = _callback(checkpoints=[1], noise_std=0.2, max_samples=20)
    torch_rng, np_rng = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    dynamics.on_train_begin(TrainState(**{**state.__dict__, "epoch": 0}))
    dynamics.on_epoch_end(state)
    assert len(dynamics.history) == 5
    assert torch.equal(torch_rng, torch.get_rng_state())
    now = np.random.get_state()  # noqa: NPY002 (numpy's legacy global state)
    np.testing.assert_array_equal(np_rng[1], now[1])
    assert np_rng[2] == now[2]
    assert model.training
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params, strict=True))
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    # the same seed gives the same estimates
    again = _callback(checkpoints=[1], noise_std=0.2, max_samples=20)
    again.on_train_begin(TrainState(**{**state.__dict__, "epoch": 0}))
    again.on_epoch_end(state)
    cols = ["mi_xt", "mi_ty"]
    np.testing.assert_array_equal(again.history[cols], dynamics.history[cols])


def test_bad_settings_are_named(digits, tiny_cnn):
    with pytest.raises(ValueError, match="checkpoints"):
        InformationDynamics("conv2", [])
    with pytest.raises(ValueError, match="checkpoints"):
        InformationDynamics("conv2", [-1])
    with pytest.raises(ValueError, match="y_hat"):
        InformationDynamics("conv2", [1], y_hat="probabilities")
    with pytest.raises(ValueError, match="xt_options must not set"):
        InformationDynamics("conv2", [1], xt_options={"random_state": 3})
    state = TrainState(init_model(tiny_cnn, 0), digits, 1.0, TrainConfig(), 0, 0, 0.1, None, "cpu")
    with pytest.raises(ValueError, match="classes: 0 is not a clean class"):
        InformationDynamics("conv2", [1], classes=[0]).on_train_begin(state)
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        InformationDynamics("conv9", [3]).on_train_begin(state)
    X_train, y_train, X_test, y_test = load_mnist_multiclass(
        n_train=100, n_test=20, random_state=0, pool=2
    )
    all_to_all = poison_multiclass(X_train, y_train, X_test, y_test, mode="all-to-all", target=None)
    with pytest.raises(ValueError, match="data has no target class"):
        InformationDynamics("conv2", [3]).on_train_begin(
            TrainState(**{**state.__dict__, "data": all_to_all})
        )


def test_labels_as_y_hat_carry_no_information_within_a_one_class_group(digits, tiny_cnn):
    # target_all, target_clean and class_1 hold one label each: I(T; Y) = 0. A critic that
    # sees a constant cannot tell a partner from a negative, so its score is <= 0 up to noise.
    state = TrainState(init_model(tiny_cnn, 0), digits, 1.0, TrainConfig(), 0, 0, 0.1, None, "cpu")
    dynamics = _callback(checkpoints=[0], classes=[1], y_hat="labels", max_samples=30)
    dynamics.on_train_begin(state)
    history = dynamics.history
    assert len(history) == 4
    assert (history["mi_ty"] < 0.05).all()
