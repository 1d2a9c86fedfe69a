"""Tests of backdoor_curves.attacks.warping (WaNet): the identity, a pure sub-pixel shift in
closed form, and the reference code (torch's bicubic interpolate + grid_sample) as the oracle."""

import numpy as np
import pytest

from backdoor_curves.attacks.warping import WaNet, bicubic_matrix

CLASSES = [0, 1]


@pytest.fixture
def gray():
    return np.random.default_rng(11).random((4, 9, 12))  # H=9, W=12: rows and columns differ


@pytest.fixture
def color():
    return np.random.default_rng(12).random((3, 9, 12, 3))


def labels(n):
    return np.arange(n) % 2


def reference_wanet(images, control, strength, perturbation=None):
    """The reference code of paper 000 / Nguyen & Tran in torch (float64), given the control
    points: F.interpolate(bicubic, align_corners=True), identity + s * noise / (W, H), clamp,
    optional per-image noise, F.grid_sample(align_corners=True)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = torch.tensor(images if images.ndim == 4 else images[..., None]).permute(0, 3, 1, 2)
    n, _, H, W = x.shape
    ins = torch.tensor(control)[None]
    noise = F.interpolate(ins, size=(H, W), mode="bicubic", align_corners=True)
    noise = noise.permute(0, 2, 3, 1)  # (1, H, W, 2): x then y
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, H, dtype=torch.float64),
        torch.linspace(-1, 1, W, dtype=torch.float64),
        indexing="ij",
    )
    identity = torch.stack((xx, yy), 2)[None]
    size = torch.tensor([W, H], dtype=torch.float64)
    grid = torch.clamp(identity + strength * noise / size, -1, 1).repeat(n, 1, 1, 1)
    if perturbation is not None:  # (n, 2, H, W) in U[-1, 1)
        e = torch.tensor(perturbation).permute(0, 2, 3, 1)
        grid = torch.clamp(grid + e / size, -1, 1)
    out = F.grid_sample(x, grid, mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
    return out.numpy().reshape(images.shape)


# ---------------------------------------------------------------------------- identities
@pytest.mark.parametrize("noise_mode", [False, True])
def test_zero_strength_is_the_identity(gray, color, noise_mode):
    trig = WaNet(strength=0.0, noise_mode=False)
    for images in (gray, color):
        np.testing.assert_array_equal(trig.apply(images, labels(len(images)), CLASSES), images)
    if noise_mode:  # the perturbation alone moves pixels by less than one pixel step
        out = WaNet(strength=0.0, noise_mode=True).apply(gray, labels(4), CLASSES)
        assert not np.array_equal(out, gray) and out.shape == gray.shape


def test_constant_field_is_a_subpixel_shift(gray, monkeypatch):
    """Constant control points (c_x, c_y) give a constant field (bicubic rows sum to 1), i.e. a
    shift by s c (W - 1) / (2 W) pixels: bilinear interpolation of neighbours in closed form."""
    H, W = 9, 12
    s = 1.0
    # shift a quarter pixel right and half a pixel down
    cx, cy = 0.25 * 2 * W / (W - 1), 0.5 * 2 * H / (H - 1)
    control = np.stack([np.full((4, 4), cx), np.full((4, 4), cy)])
    monkeypatch.setattr(WaNet, "control_points", lambda self: control)
    out = WaNet(strength=s).apply(gray, labels(4), CLASSES)
    for i in range(H - 1):
        for j in range(W - 1):
            expected = (
                0.5 * 0.75 * gray[:, i, j] + 0.5 * 0.25 * gray[:, i, j + 1]
                + 0.5 * 0.75 * gray[:, i + 1, j] + 0.5 * 0.25 * gray[:, i + 1, j + 1]
            )  # fmt: skip
            np.testing.assert_allclose(out[:, i, j], expected, rtol=0, atol=1e-14)
    # past the last row / column the grid is clamped to the border
    np.testing.assert_allclose(out[:, H - 1, : W - 1],
                               0.75 * gray[:, H - 1, :-1] + 0.25 * gray[:, H - 1, 1:],
                               rtol=0, atol=1e-14)  # fmt: skip


def test_control_points_normalized_by_mean_abs():
    trig = WaNet(k=5, random_state=3)
    u = np.random.default_rng(3).random((2, 5, 5)) * 2 - 1
    np.testing.assert_allclose(trig.control_points(), u / np.mean(np.abs(u)), rtol=1e-15)
    assert np.mean(np.abs(trig.control_points())) == pytest.approx(1.0, rel=1e-14)


def keys_kernel(x, a=-0.75):
    """Keys' cubic convolution kernel (the textbook piecewise form)."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def test_bicubic_matrix_is_keys_convolution():
    M = bicubic_matrix(10, 4)  # sources at o * 3 / 9: nodes at o = 0, 3, 6, 9
    np.testing.assert_allclose(M.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(M[[0, 3, 6, 9]], np.eye(4), rtol=0, atol=1e-15)
    # o = 4: x = 4/3, neighbours 0..3 at distances 4/3, 1/3, 2/3, 5/3
    expected = [keys_kernel(4 / 3 - q) for q in range(4)]
    np.testing.assert_allclose(M[4], expected, rtol=0, atol=1e-14)
    # o = 1: x = 1/3, neighbour -1 clamped onto 0
    row = [keys_kernel(1 / 3 + 1) + keys_kernel(1 / 3), keys_kernel(2 / 3), keys_kernel(5 / 3), 0]
    np.testing.assert_allclose(M[1], row, rtol=0, atol=1e-14)
    assert bicubic_matrix(1, 4).tolist() == [[1.0, 0.0, 0.0, 0.0]]


# ---------------------------------------------------------------------------- torch oracle
@pytest.mark.parametrize("strength", [0.5, 4.0, 40.0])
@pytest.mark.parametrize("k", [2, 4])
def test_matches_reference_code(gray, color, strength, k):
    trig = WaNet(k=k, strength=strength, random_state=5)
    for images in (gray, color):
        ref = reference_wanet(images, trig.control_points(), strength)
        out = trig.apply(images, labels(len(images)), CLASSES)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_field_and_grid_match_torch(gray):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    trig = WaNet(k=4, strength=2.0, random_state=1)
    ins = torch.tensor(trig.control_points())[None]
    up = F.interpolate(ins, size=(9, 12), mode="bicubic", align_corners=True)[0].numpy()
    np.testing.assert_allclose(trig.field(9, 12), up, rtol=0, atol=1e-13)
    grid = torch.tensor(trig.grid(9, 12))[None].repeat(4, 1, 1, 1)
    x = torch.tensor(gray)[:, None]
    ref = F.grid_sample(x, grid, align_corners=True)[:, 0].numpy()
    np.testing.assert_allclose(trig.apply(gray, labels(4), CLASSES), ref, rtol=0, atol=1e-12)
    assert np.all(np.abs(trig.grid(9, 12)) <= 1.0)


def test_noise_mode_matches_reference_code(color):
    trig = WaNet(k=4, strength=0.5, noise_mode=True, random_state=2)
    e = np.stack([trig.perturbation(img) for img in color])
    ref = reference_wanet(color, trig.control_points(), 0.5, perturbation=e)
    np.testing.assert_allclose(trig.apply(color, labels(3), CLASSES), ref, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- batching
@pytest.mark.parametrize("noise_mode", [False, True])
def test_result_independent_of_batching(color, noise_mode):
    trig = WaNet(noise_mode=noise_mode, random_state=9)
    whole = trig.apply(color, labels(3), CLASSES)
    pieces = np.concatenate([trig.apply(color[i : i + 1], [i % 2], CLASSES) for i in range(3)])
    np.testing.assert_array_equal(whole, pieces)
    reordered = trig.apply(color[::-1], labels(3)[::-1], CLASSES)
    np.testing.assert_array_equal(reordered, whole[::-1])


def test_noise_mode_perturbation_is_a_function_of_the_image(gray):
    trig = WaNet(noise_mode=True, random_state=1)
    img32 = gray[0].astype(np.float32)  # the same values as float32 and as float64
    e0 = trig.perturbation(img32.astype(np.float64))
    np.testing.assert_array_equal(e0, trig.perturbation(img32))
    assert e0.shape == (2, 9, 12) and np.all((e0 >= -1) & (e0 < 1))
    assert not np.array_equal(e0, trig.perturbation(gray[1]))
    other_seed = WaNet(noise_mode=True, random_state=2).perturbation(img32)
    assert not np.array_equal(e0, other_seed)
    twice = trig.apply(np.stack([gray[0], gray[0]]), [0, 0], CLASSES)
    np.testing.assert_array_equal(twice[0], twice[1])


def test_range_shape_dtype_and_no_mutation(color):
    before = color.copy()
    out = WaNet(strength=100.0).apply(color.astype(np.float32), labels(3), CLASSES)
    np.testing.assert_array_equal(color, before)
    assert out.dtype == np.float64 and out.shape == color.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert WaNet().apply(np.zeros((0, 9, 12)), [], CLASSES).shape == (0, 9, 12)


# ---------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"k": 1}, ValueError, "^k must be an int >= 2"),
        ({"k": 2.5}, TypeError, "^k must be an int"),
        ({"k": True}, TypeError, "^k"),
        ({"strength": -0.1}, ValueError, "^strength"),
        ({"strength": np.inf}, ValueError, "^strength"),
        ({"strength": "0.5"}, TypeError, "^strength"),
        ({"noise_mode": 1}, TypeError, "^noise_mode must be True or False"),
        ({"noise_mode": "yes"}, TypeError, "^noise_mode"),
        ({"random_state": -1}, ValueError, "^random_state"),
    ],
)
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        WaNet(**kwargs)


def test_control_grid_larger_than_image_names_k():
    with pytest.raises(ValueError, match=r"^k=5 is larger than the image.*\(4, 6\)"):
        WaNet(k=5).apply(np.zeros((1, 4, 6)), [0], CLASSES)


def test_repr():
    assert repr(WaNet()) == "WaNet(k=4, strength=0.5, noise_mode=False, random_state=0)"
