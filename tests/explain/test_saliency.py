"""Input-gradient maps against the fitted weights and finite differences of scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import learner_and_estimator
from random_data import random_backdoor_data
from sklearn.svm import SVC

import backdoor_curves as bc
from backdoor_curves.explain import (
    clean_and_poisoned_maps,
    decision_gradient,
    input_gradient_map,
    reduce_channels,
)


@pytest.mark.parametrize("kind", ["logistic", "ridge", "linear_svm"])
def test_linear_saliency_is_the_weights(kind, mnist_small):
    data = mnist_small
    learner, est = learner_and_estimator(kind, 0.5)
    learner.fit(data.X_train, data.y_train)
    est.fit(data.X_train, data.y_train)
    for x in (data.X_test_bd[0], data.X_test[5]):
        grad = input_gradient_map(learner, x, image_shape=data.image_shape)
        assert grad.shape == data.image_shape
        np.testing.assert_array_equal(grad, learner.coef_.reshape(data.image_shape))
        # and the weights are scikit-learn's
        np.testing.assert_allclose(grad.ravel(), np.ravel(est.coef_), rtol=1e-4, atol=1e-6)


def test_rbf_saliency_matches_finite_differences_of_svc(mnist_small):
    data = mnist_small
    gamma, C = 0.05, 5.0
    learner = bc.RBFSVMLearner(C, gamma=gamma).fit(data.X_train, data.y_train)
    svc = SVC(kernel="rbf", C=C, gamma=gamma, tol=1e-12).fit(data.X_train, data.y_train)
    X = data.X_test_bd[:3]
    grads = decision_gradient(learner, X)
    h = 1e-5
    for x, g in zip(X, grads, strict=True):
        E = np.eye(x.size) * h
        fd = (svc.decision_function(x + E) - svc.decision_function(x - E)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())
        flat = input_gradient_map(learner, x)
        np.testing.assert_allclose(flat, g, rtol=1e-12, atol=1e-14)


def test_colour_maps_take_the_channel_maximum():
    rng = np.random.default_rng(0)
    g = rng.normal(size=4 * 5 * 3)
    cube = g.reshape(4, 5, 3)
    np.testing.assert_array_equal(reduce_channels(g, (4, 5, 3)), np.abs(cube).max(axis=-1))
    np.testing.assert_array_equal(reduce_channels(g, (4, 5, 3), "max"), cube.max(axis=-1))
    np.testing.assert_array_equal(reduce_channels(g, (4, 5, 3), "none"), cube)
    np.testing.assert_array_equal(reduce_channels(g, (12, 5)), g.reshape(12, 5))
    with pytest.raises(ValueError, match="image_shape"):
        reduce_channels(g, (4, 4, 3))
    with pytest.raises(ValueError, match="channels"):
        reduce_channels(g, (4, 5, 3), "mean")
    # a linear model on colour images: the map is max_c |w| per pixel
    data = random_backdoor_data(0, d=4 * 5 * 3)
    learner = bc.LogisticLearner(1.0).fit(data.X_clean, data.y_clean)
    got = input_gradient_map(learner, data.X_test[0], image_shape=(4, 5, 3))
    np.testing.assert_array_equal(got, np.abs(learner.coef_.reshape(4, 5, 3)).max(axis=-1))


def test_poisoned_model_looks_at_the_trigger(mnist_small):
    """Paper 001 Fig. 12: the poisoned linear model puts weight on the trigger's corner."""
    data = mnist_small
    x = data.X_test_bd[0]
    corner = (data.X_test_bd != data.X_test).any(axis=0).reshape(data.image_shape)
    assert corner.any()
    for learner in (bc.LinearSVMLearner(0.05), bc.LogisticLearner(1.0)):
        maps = clean_and_poisoned_maps(learner, data, x)
        assert set(maps) == {"clean", "poisoned"}
        assert np.abs(maps["poisoned"][corner]).mean() > 2 * np.abs(maps["clean"][corner]).mean()
        clean = learner.__class__(**learner.get_params()).fit(data.X_clean, data.y_clean)
        np.testing.assert_array_equal(maps["clean"].ravel(), clean.coef_)


def test_gradient_through_a_torch_feature_map():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 6, 6)),
        torch.nn.Conv2d(1, 3, 3),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
    ).double()  # float64 so that the finite differences below resolve 1e-6

    def phi(batch):
        return net(batch.reshape(batch.shape[0], -1).double())

    rng = np.random.default_rng(1)
    images = rng.uniform(size=(80, 6, 6))
    with torch.no_grad():
        feats = phi(torch.tensor(images)).numpy()
    y = np.where(feats[:, 0] + feats[:, 5] > np.median(feats[:, 0] + feats[:, 5]), "a", "b")
    for learner in (bc.LogisticLearner(1.0), bc.RBFSVMLearner(2.0, gamma=0.5)):
        learner.fit(feats, y)
        x = images[0]
        got = input_gradient_map(learner, x, feature_map=phi)
        assert got.shape == (6, 6)

        def f(img, learner=learner):
            with torch.no_grad():
                return learner.decision_function(phi(torch.tensor(img[None])).numpy())[0]

        h = 1e-6
        fd = np.array(
            [
                (f(x + h * e.reshape(6, 6)) - f(x - h * e.reshape(6, 6))) / (2 * h)
                for e in np.eye(36)
            ]
        ).reshape(6, 6)
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-8 * np.abs(fd).max())


def test_bad_arguments(mnist_small):
    data = mnist_small
    learner = bc.LogisticLearner().fit(data.X_clean, data.y_clean)
    with pytest.raises(ValueError, match="x"):
        input_gradient_map(learner, data.X_test[0][:-1])
    with pytest.raises(ValueError, match="finite"):
        input_gradient_map(learner, np.full(data.n_features, np.nan))
    with pytest.raises(TypeError, match="learner"):
        input_gradient_map("logistic", data.X_test[0])
    with pytest.raises(ValueError, match="beta"):
        clean_and_poisoned_maps(bc.LogisticLearner(), data, data.X_test[0], beta=0.0)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        input_gradient_map(bc.LogisticLearner(), data.X_test[0])
