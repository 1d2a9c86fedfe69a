"""AlexNetFeatures / ResNetFeatures: geometry, dtype, preprocessing, sklearn API, errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from extractor_helpers import empty_torch_home, offline  # noqa: F401

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from extractors import AlexNetFeatures, ResNetFeatures, make_extractor  # noqa: E402

DIMS = {"alexnet": 4096, "resnet18": 512, "resnet50": 2048}


def small(name, **kw):
    """Random-weight extractor at 64 px (fast; AlexNet needs >= 63 px)."""
    return make_extractor(name, weights=None, resize=64, **kw)


@pytest.fixture(scope="module")
def fitted():
    return {name: small(name).fit() for name in DIMS}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("name", list(DIMS))
@pytest.mark.parametrize("layout", ["gray", "hwc", "chw", "hw1"])
def test_geometry_and_dtype(fitted, rng, name, layout):
    shapes = {
        "gray": (3, 20, 24),
        "hwc": (3, 20, 24, 3),
        "chw": (3, 3, 20, 24),
        "hw1": (3, 20, 24, 1),
    }
    F = fitted[name].transform(rng.random(shapes[layout]))
    assert F.shape == (3, DIMS[name])
    assert F.dtype == np.float32
    assert np.all(np.isfinite(F))
    assert fitted[name].n_features_out_ == DIMS[name]
    if name == "alexnet":
        assert F.min() >= 0.0  # ReLU after fc7


@pytest.mark.parametrize("name", list(DIMS))
def test_default_resize_224_two_images(rng, name):
    ext = make_extractor(name, weights=None).fit()
    F = ext.transform(rng.random((2, 32, 32, 3)))
    assert F.shape == (2, DIMS[name]) and F.dtype == np.float32


def test_grayscale_is_repeated_and_layouts_agree(fitted, rng):
    ext = fitted["resnet18"]
    gray = rng.random((2, 16, 16))
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    np.testing.assert_allclose(ext.transform(gray), ext.transform(rgb), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        ext.transform(rgb), ext.transform(rgb.transpose(0, 3, 1, 2)), rtol=1e-6
    )


def test_flattened_input_with_image_shape(rng):
    X = rng.random((2, 16, 16, 3))
    a = small("resnet18").fit().transform(X)
    b = small("resnet18", image_shape=(16, 16, 3)).fit().transform(X.reshape(2, -1))
    np.testing.assert_array_equal(a, b)


def test_batching_does_not_change_features(rng):
    X = rng.random((5, 16, 16))
    one = small("resnet18", batch_size=1).fit().transform(X)
    many = small("resnet18", batch_size=4).fit().transform(X)
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-5)


def test_matches_torchvision_by_hand(rng):
    """Random weights seeded like ours, the truncation and the ImageNet normalization by hand."""
    import torchvision

    X = rng.random((2, 64, 64, 3)).astype(np.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        net = torchvision.models.alexnet(weights=None).eval()
    t = torch.from_numpy(X).permute(0, 3, 1, 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        h = torch.flatten(net.avgpool(net.features((t - mean) / std)), 1)
        expected = net.classifier[:6](h).numpy()
    F = AlexNetFeatures(weights=None, resize=64, random_state=3).fit().transform(X)
    np.testing.assert_allclose(F, expected, rtol=1e-5, atol=1e-5)


def test_random_spelled_as_a_string():
    assert AlexNetFeatures(weights="random").fit().weights_id_ == "random:0"
    assert ResNetFeatures(weights="none", random_state=4).fit().weights_id_ == "random:4"


def test_random_state_controls_random_weights(rng):
    X = rng.random((2, 16, 16))
    a = small("resnet18", random_state=1).fit().transform(X)
    b = small("resnet18", random_state=1).fit().transform(X)
    c = small("resnet18", random_state=2).fit().transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_sklearn_pipeline_and_clone(rng):
    X = rng.random((12, 28 * 28))
    y = np.repeat([0, 1], 6)
    ext = ResNetFeatures("resnet18", weights=None, resize=32, image_shape=(28, 28))
    pipe = make_pipeline(ext, LogisticRegression(max_iter=2000)).fit(X, y)
    assert pipe.predict(X).shape == (12,)
    params = clone(ext).get_params()
    assert params["arch"] == "resnet18" and params["image_shape"] == (28, 28)
    names = pipe[0].get_feature_names_out()
    assert len(names) == 512 and names[0] == "resnetfeatures0"


def test_local_pth_path(tmp_path, rng):
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "my_resnet18.pth"
    torch.save(state, path)
    ext = ResNetFeatures("resnet18", weights=str(path), resize=32).fit()
    assert ext.weights_id_.startswith("sha256:")
    X = rng.random((2, 16, 16))
    ref = ResNetFeatures("resnet18", weights=None, resize=32, random_state=7).fit().transform(X)
    np.testing.assert_array_equal(ext.transform(X), ref)


def test_local_pth_of_another_architecture_is_rejected(tmp_path, rng):
    import torchvision

    path = tmp_path / "wrong.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    ext = ResNetFeatures("resnet50", weights=path, resize=32).fit()
    with pytest.raises(ValueError, match="not a state dict of torchvision's resnet50"):
        ext.transform(rng.random((1, 16, 16)))


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("alexnet", "alexnet-owt-7be5be79.pth"),
        ("resnet18", "resnet18-f37072fd.pth"),
        ("resnet50", "resnet50-0676ba61.pth"),
    ],
)
@pytest.mark.usefixtures("offline")
def test_missing_pretrained_weights_fail_fast(name, file):
    torch_home = Path(os.environ["TORCH_HOME"])
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        make_extractor(name).fit()
    assert time.perf_counter() - start < 5
    msg = str(info.value)
    assert file in msg and str(torch_home / "hub" / "checkpoints") in msg


@pytest.mark.usefixtures("offline")
def test_pretrained_weights_read_from_cache_without_network(rng):
    torch_home = Path(os.environ["TORCH_HOME"])
    import torchvision

    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        torch.save(
            torchvision.models.resnet18(weights=None).state_dict(), folder / "resnet18-f37072fd.pth"
        )
    ext = ResNetFeatures("resnet18", weights="imagenet", resize=32).fit()
    assert ext.weights_id_ == "resnet18-f37072fd.pth"
    X = rng.random((2, 16, 16))
    ref = ResNetFeatures("resnet18", weights=None, resize=32, random_state=11).fit().transform(X)
    np.testing.assert_array_equal(ext.transform(X), ref)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"resize": 32}, "resize"),  # AlexNet needs >= 63 px
        ({"device": "tpu"}, "device"),
        ({"device": 3}, "device"),
        ({"weights": "IMAGENET1K_V9"}, "weights"),
        ({"weights": 3}, "weights"),
        ({"normalize": "yes"}, "normalize"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AlexNetFeatures(**{"weights": None, **params}).fit()


def test_cuda_asked_but_absent():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device='cuda'.*not available|is_available"):
        small("resnet18", device="cuda").fit()


def test_unknown_arch_and_extractor():
    with pytest.raises(ValueError, match="arch"):
        ResNetFeatures("resnet101", weights=None).fit()
    with pytest.raises(ValueError, match="extractor"):
        make_extractor("vgg16")


def test_transform_before_fit():
    with pytest.raises(NotFittedError):
        small("resnet18").transform(np.zeros((1, 8, 8)))


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.full((1, 8, 8), np.nan), "NaN"),
        (np.full((1, 8, 8), 255.0), "255"),
        (np.zeros((1, 8, 8, 5)), "channel"),
        (np.zeros((2, 64)), "image_shape"),
        (np.zeros((0, 8, 8)), "at least one"),
        (np.zeros(8), "shape"),
    ],
)
def test_bad_images(fitted, X, match):
    with pytest.raises(ValueError, match=match):
        fitted["resnet18"].transform(X)


def test_non_numeric_images(fitted):
    with pytest.raises(TypeError, match="X"):
        fitted["resnet18"].transform(np.array([[["a"]]]))
    with pytest.raises(TypeError, match="X"):
        fitted["resnet18"].transform(None)
