"""The extractors' differentiable forward pass: the same features as ``transform``, and the
gradient of a learner on CNN features, taken through the network, against finite differences."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import backdoor_curves as bc  # noqa: E402
from backdoor_curves.explain import input_gradient_map  # noqa: E402
from extractors import make_extractor  # noqa: E402


@pytest.fixture(scope="module")
def resnet():
    """Random-weight ResNet-18 on 32 x 32 colour images (no resize: the smallest it takes)."""
    return make_extractor("resnet18", weights=None, resize=None).fit()


@pytest.mark.parametrize(
    ("name", "shape"),
    [("alexnet", (3, 40, 40, 3)), ("resnet18", (3, 40, 40)), ("resnet18", (3, 3, 40, 40))],
)
def test_feature_map_gives_the_features_of_transform(name, shape):
    extractor = make_extractor(name, weights=None, resize=64).fit()
    images = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    phi = extractor.feature_map()
    assert phi is extractor.feature_map() and not phi.training
    with torch.no_grad():
        got = phi(torch.from_numpy(images)).numpy()
    np.testing.assert_array_equal(got, extractor.transform(images))
    assert not any(p.requires_grad for p in phi.parameters())


def test_gradient_through_the_network_matches_finite_differences(resnet):
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(60, 32, 32, 3))
    feats = resnet.transform(images)
    score = feats[:, :8].sum(axis=1)
    y = np.where(score > np.median(score), 7, 1)
    learner = bc.LogisticLearner(C=1.0).fit(feats, y)
    phi64 = copy.deepcopy(resnet.feature_map()).double()  # float64 so differences resolve 1e-6

    def f(img):
        with torch.no_grad():
            return learner.decision_function(phi64(torch.tensor(img[None])).numpy())[0]

    x = images[0]
    grad = input_gradient_map(learner, x, feature_map=phi64, channels="none")
    assert grad.shape == (32, 32, 3)
    # ReLU and max pooling make f piecewise linear in x: a central difference is exact on a
    # linear piece (rounding error ~ eps |f| / h ~ 1e-10 relative at h = 1e-6)
    h = 1e-6
    for v in rng.standard_normal((3, 32, 32, 3)):
        fd = (f(x + h * v) - f(x - h * v)) / (2 * h)
        np.testing.assert_allclose(np.sum(grad * v), fd, rtol=1e-5)


def test_colour_map_is_reduced_by_the_channel_maximum(resnet):
    images = np.random.default_rng(2).uniform(size=(40, 32, 32, 3))
    feats = resnet.transform(images)
    y = np.where(feats[:, 0] > np.median(feats[:, 0]), "bd", "ok")
    learner = bc.LinearSVMLearner(C=1.0).fit(feats, y)
    phi = resnet.feature_map()
    full = input_gradient_map(learner, images[3], feature_map=phi, channels="none")
    reduced = input_gradient_map(learner, images[3], feature_map=phi)
    np.testing.assert_array_equal(reduced, np.abs(full).max(axis=-1))


def test_feature_map_refuses_images_without_a_channel_axis(resnet):
    with pytest.raises(ValueError, match="x must be images"):
        resnet.feature_map()(torch.zeros(2, 5, 32, 32))
    with pytest.raises(ValueError, match="x must be images"):
        resnet.feature_map()(torch.zeros(32, 32))


def test_feature_map_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_extractor("resnet18", weights=None).feature_map()
