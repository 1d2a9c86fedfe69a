"""Gaussian noise hooks and the tracked representation, against direct computations."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backdoor_curves.dynamics import (  # noqa: E402
    GaussianNoise,
    add_noise_hooks,
    layer_representation,
    noise_injection,
    pool_representation,
    remove_noise_hooks,
)


class Two(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.lin(x)))


def _model():
    torch.manual_seed(0)
    return Two()


def test_noise_is_the_seeded_gaussian_draw_in_train_and_eval_mode():
    model, x = _model(), torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    clean = model.lin(x).detach()
    for train in (True, False):
        model.train(train)
        with noise_injection(model, "lin", 0.4, seed=7):
            noisy = model.lin(x).detach()
        want = clean + 0.4 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(noisy, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.lin(x).detach(), clean, rtol=0, atol=0)  # hooks removed


def test_noise_has_the_asked_standard_deviation_and_zero_draws_nothing():
    ident = torch.nn.Sequential(torch.nn.Identity())
    handles = add_noise_hooks(ident, "0", 0.25, seed=3)
    sample = ident(torch.zeros(200_000))
    assert float(sample.std()) == pytest.approx(0.25, rel=0.01)  # 5 sigma = 0.8 %
    for h in handles:
        h.remove()
    with noise_injection(ident, ["0"], 0.0):
        assert torch.equal(ident(torch.ones(3)), torch.ones(3))


def test_deep_copy_draws_the_same_noise_without_advancing_the_original():
    model = _model()
    add_noise_hooks(model, "lin", 1.0, seed=2)
    twin = copy.deepcopy(model)
    x = torch.zeros(4, 3)
    a = twin(x)
    b = model(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert remove_noise_hooks(twin) == 1
    assert torch.equal(twin(x), twin(x))  # no noise left


def test_layer_representation_pools_the_layer_output_and_leaves_the_model_alone(tiny_cnn):
    torch.manual_seed(0)
    model = tiny_cnn()
    add_noise_hooks(model, "conv1", 0.3, seed=1)  # training noise: removed in the copy
    model.train()
    X = torch.rand(7, 1, 14, 14, generator=torch.Generator().manual_seed(0))
    model(X).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    params = [p.detach().clone() for p in model.parameters()]
    generator = next(iter(model.conv1._forward_hooks.values())).generator
    state, rng = generator.get_state(), torch.get_rng_state()
    T, logits = layer_representation(model, X, "conv2", batch_size=3)
    with torch.no_grad():  # the definition, without the noise hooks
        F = torch.nn.functional
        h = F.max_pool2d(
            F.relu(model.conv1._conv_forward(X, model.conv1.weight, model.conv1.bias)), 2
        )
        conv2 = model.conv2(h)
        pooled = conv2.mean(dim=(2, 3))
        head = model.fc(torch.flatten(F.adaptive_avg_pool2d(F.max_pool2d(F.relu(conv2), 2), 3), 1))
    np.testing.assert_allclose(T, pooled.double().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, head.double().numpy(), rtol=1e-5, atol=1e-6)
    assert model.training
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params, strict=True))
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    assert torch.equal(generator.get_state(), state) and torch.equal(torch.get_rng_state(), rng)


def test_layer_representation_with_noise_is_seeded(tiny_cnn):
    torch.manual_seed(0)
    model = tiny_cnn()
    X = torch.rand(6, 1, 14, 14, generator=torch.Generator().manual_seed(0))
    clean, _ = layer_representation(model, X, "conv2")
    a, la = layer_representation(model, X, "conv2", noise_std=0.5, seed=4)
    b, lb = layer_representation(model, X, "conv2", noise_std=0.5, seed=4)
    c, _ = layer_representation(model, X, "conv2", noise_std=0.5, seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.allclose(a, c) and not np.allclose(a, clean)


def test_pool_representation_shapes():
    assert pool_representation(torch.ones(2, 3, 4, 5)).shape == (2, 3)
    assert pool_representation(torch.ones(2, 3, 4)).shape == (2, 12)
    assert pool_representation(torch.ones(2, 6)).shape == (2, 6)


def test_bad_arguments_are_named():
    model = _model()
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        add_noise_hooks(model, "nope", 0.1)
    with pytest.raises(ValueError, match="std"):
        add_noise_hooks(model, "lin", -0.1)
    with pytest.raises(TypeError, match="generator"):
        GaussianNoise(0.1, generator=0)
    with pytest.raises(TypeError, match="layer must be a module name"):
        layer_representation(model, torch.zeros(2, 3), 3)
