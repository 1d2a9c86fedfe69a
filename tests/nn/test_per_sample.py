"""Per-sample losses and gradients (torch.func) against a per-sample loop of ordinary backward
passes."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backdoor_curves.nn.per_sample import (  # noqa: E402
    iter_per_sample_grads,
    per_sample_grads,
    per_sample_losses,
    select_parameters,
)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the trainer uses (two threads on two busy cores are much slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TinyCNN(torch.nn.Module):
    """A few hundred parameters, with BatchNorm (the eval-mode case) and named layers."""

    def __init__(self, n_classes=4):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.conv2 = torch.nn.Conv2d(4, 6, 3, stride=2)
        self.fc = torch.nn.Linear(6, n_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv1(x)))
        x = torch.relu(self.conv2(x)).mean(dim=(2, 3))
        return self.fc(x)


def make_model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    model = TinyCNN().to(dtype)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model


def make_inputs(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 14, 14)).astype(np.float32), rng.integers(0, 4, n)


def loop_grads(model, X, y):
    """The oracle: one ordinary backward pass per sample, eval mode, on a copy."""
    model = copy.deepcopy(model).eval()
    dtype = next(model.parameters()).dtype
    out = {name: [] for name, _ in model.named_parameters()}
    for i in range(len(X)):
        model.zero_grad()
        x = torch.as_tensor(X[i : i + 1]).to(dtype)
        loss = torch.nn.functional.cross_entropy(model(x), torch.as_tensor(y[i : i + 1]))
        loss.backward()
        for name, p in model.named_parameters():
            out[name].append(p.grad.clone())
    return {k: torch.stack(v) for k, v in out.items()}


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_vmap_grads_equal_a_per_sample_loop(dtype, tol):
    model = make_model(dtype)
    model.train()  # per_sample_grads must switch to eval mode itself
    X, y = make_inputs()
    got = per_sample_grads(model, X, y, batch_size=8)
    expected = loop_grads(model, X, y)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].shape == (len(X), *dict(model.named_parameters())[name].shape)
        assert torch.allclose(got[name], expected[name], rtol=0, atol=tol), name
    assert model.training  # mode restored


def test_grads_do_not_depend_on_the_chunk_size_and_leave_the_model_alone():
    model = make_model()
    X, y = make_inputs()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.fc.weight.grad = torch.full_like(model.fc.weight, 7.0)
    a = per_sample_grads(model, X, y, batch_size=1)
    b = per_sample_grads(model, X, y, batch_size=64)
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6)
    for k, v in model.state_dict().items():  # BatchNorm running statistics untouched
        assert torch.equal(v, before[k]), k
    assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 7.0))
    assert model.conv1.weight.grad is None


def test_layer_selection_and_flattening():
    model = make_model()
    X, y = make_inputs(12)
    full = per_sample_grads(model, X, y)
    some = per_sample_grads(model, X, y, params=["fc", "conv1.bias"])
    assert list(some) == ["conv1.bias", "fc.weight", "fc.bias"]
    for name in some:
        assert torch.equal(some[name], full[name])
    flat = per_sample_grads(model, X, y, params="fc", flatten=True)
    assert flat.shape == (12, 4 * 6 + 4)
    expected = torch.cat([full["fc.weight"].reshape(12, -1), full["fc.bias"]], dim=1)
    assert torch.equal(flat, expected)
    assert select_parameters(model, "conv2") == ["conv2.weight", "conv2.bias"]


def test_iter_yields_chunks_in_order():
    model = make_model()
    X, y = make_inputs(10)
    starts = [start for start, g in iter_per_sample_grads(model, X, y, "fc", batch_size=4)]
    assert starts == [0, 4, 8]


def test_per_sample_losses_match_cross_entropy_in_eval_mode():
    model = make_model().train()
    X, y = make_inputs(25)
    got = per_sample_losses(model, X, y, batch_size=7)
    assert model.training
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(
            ref(torch.as_tensor(X)), torch.as_tensor(y), reduction="none"
        )
    assert got.dtype == np.float64 and got.shape == (25,)
    assert np.allclose(got, expected.numpy(), atol=1e-6)


def test_bad_inputs_name_the_argument():
    model = make_model()
    X, y = make_inputs(6)
    with pytest.raises(ValueError, match="params"):
        per_sample_grads(model, X, y, params=["conv3"])
    with pytest.raises(TypeError, match="params"):
        per_sample_grads(model, X, y, params=[3])
    with pytest.raises(ValueError, match="X and y"):
        per_sample_grads(model, X, y[:5])
    with pytest.raises(ValueError, match="X and y"):
        per_sample_losses(model, X[:4], y)
    with pytest.raises(ValueError, match="batch_size"):
        per_sample_grads(model, X, y, batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        per_sample_losses(model, X, y, batch_size=2.0)
    with pytest.raises(TypeError, match="model"):
        per_sample_grads(lambda x: x, X, y)
    with pytest.raises(TypeError, match="y"):
        per_sample_losses(model, X, y.astype(float))
    with pytest.raises(ValueError, match="y"):
        per_sample_grads(model, X, np.full(6, 9))
    with pytest.raises(ValueError, match="y"):
        per_sample_losses(model, X, np.full(6, 9))

    class Flat(torch.nn.Module):  # output not 2-D
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x * self.w

    with pytest.raises(ValueError, match="2-D"):
        per_sample_grads(Flat(), X, y)
    with pytest.raises(ValueError, match="2-D"):
        per_sample_losses(Flat(), X, y)
