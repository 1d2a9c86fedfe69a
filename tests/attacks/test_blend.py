"""Tests of backdoor_curves.attacks.blend: Blend and SIG against their per-pixel closed forms."""

import numpy as np
import pytest

from backdoor_curves.attacks.blend import SIG, Blend

CLASSES = [0, 1]


@pytest.fixture
def gray():
    return np.random.default_rng(7).random((5, 6, 8))  # H=6, W=8: rows and columns differ


@pytest.fixture
def color():
    return np.random.default_rng(8).random((4, 6, 8, 3))


def labels(n):
    return np.arange(n) % 2


# ---------------------------------------------------------------------------- Blend
def test_blend_noise_closed_form(gray):
    """x' = (1 - alpha) x + alpha p with p = default_rng(seed).random((H, W)), per pixel."""
    out = Blend(alpha=0.3, random_state=4).apply(gray, labels(5), CLASSES)
    p = np.random.default_rng(4).random((6, 8))
    for n in range(5):
        for i in range(6):
            for j in range(8):
                expected = 0.7 * gray[n, i, j] + 0.3 * p[i, j]
                assert out[n, i, j] == pytest.approx(expected, rel=0, abs=1e-15)
    assert out.dtype == np.float64 and out.shape == gray.shape


def test_blend_exact_on_dyadic_values():
    """alpha = 1/4, x and p multiples of 1/4: every value is exact in binary floating point."""
    x = np.array([[[0.0, 0.25], [0.5, 1.0]]])
    p = np.array([[1.0, 0.0], [0.5, 0.75]])
    out = Blend(alpha=0.25, pattern=p).apply(x, [0], CLASSES)
    assert out[0].tolist() == [[0.25, 0.1875], [0.5, 0.9375]]


def test_blend_noise_pattern_is_shared_by_channels(color):
    trig = Blend(alpha=0.5, random_state=1)
    out = trig.apply(color, labels(4), CLASSES)
    p = trig.pattern_for(6, 8)
    np.testing.assert_allclose(out - 0.5 * color, np.broadcast_to(0.5 * p[..., None], out.shape))
    np.testing.assert_array_equal(p, np.random.default_rng(1).random((6, 8)))


def test_blend_channel_pattern(color):
    p = np.random.default_rng(3).random((6, 8, 3))
    out = Blend(alpha=0.2, pattern=p).apply(color, labels(4), CLASSES)
    np.testing.assert_allclose(out, 0.8 * color + 0.2 * p[None], rtol=0, atol=1e-15)


def test_blend_alpha_one_is_the_pattern(gray):
    p = np.random.default_rng(0).random((6, 8))
    out = Blend(alpha=1.0, pattern=p).apply(gray, labels(5), CLASSES)
    np.testing.assert_array_equal(out, np.broadcast_to(p, gray.shape))


def test_blend_noise_depends_on_seed_and_size_only(gray):
    a = Blend(random_state=2).apply(gray, labels(5), CLASSES)
    b = Blend(random_state=2).apply(gray[::-1], labels(5)[::-1], CLASSES)
    np.testing.assert_array_equal(a, b[::-1])
    c = Blend(random_state=3).apply(gray, labels(5), CLASSES)
    assert not np.allclose(a, c)


def test_blend_does_not_mutate_and_takes_float32(gray):
    before = gray.copy()
    trig = Blend()
    out = trig.apply(gray, labels(5), CLASSES)
    np.testing.assert_array_equal(gray, before)
    out32 = trig.apply(gray.astype(np.float32), labels(5), CLASSES)
    assert out32.dtype == np.float64
    np.testing.assert_allclose(out32, out, atol=1e-7)


def test_blend_array_pattern_is_copied_and_read_only():
    p = np.full((3, 3), 0.5)
    trig = Blend(pattern=p)
    p[:] = 1.0
    assert np.all(trig.pattern == 0.5) and not trig.pattern.flags.writeable


@pytest.mark.parametrize(
    ("pattern", "image_shape"),
    [((6, 7), (6, 8)), ((7, 8), (6, 8)), ((6, 8, 3), (6, 8)), ((6, 8, 2), (6, 8, 3))],
)
def test_blend_pattern_that_does_not_fit_names_pattern(pattern, image_shape):
    trig = Blend(pattern=np.zeros(pattern))
    with pytest.raises(ValueError, match="^pattern has shape"):
        trig.apply(np.zeros((2, *image_shape)), [0, 1], CLASSES)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"alpha": 0}, ValueError, "^alpha"),
        ({"alpha": -0.1}, ValueError, "^alpha"),
        ({"alpha": 1.5}, ValueError, r"^alpha must lie in \(0, 1\]"),
        ({"alpha": np.nan}, ValueError, "^alpha"),
        ({"alpha": "0.2"}, TypeError, "^alpha"),
        ({"alpha": True}, TypeError, "^alpha"),
        ({"pattern": "kitty"}, ValueError, r"^pattern must be one of \['noise'\]"),
        ({"pattern": 3}, TypeError, "^pattern"),
        ({"pattern": None}, TypeError, "^pattern"),
        ({"pattern": np.zeros(4)}, ValueError, "^pattern"),
        ({"pattern": np.zeros((2, 2, 2, 2))}, ValueError, "^pattern"),
        ({"pattern": np.zeros((0, 3))}, ValueError, "^pattern"),
        ({"pattern": np.full((2, 2), 2.0)}, ValueError, r"^pattern must hold .*\[0, 1\]"),
        ({"pattern": np.full((2, 2), np.nan)}, ValueError, "^pattern contains NaN"),
        ({"pattern": [["a", "b"]]}, TypeError, "^pattern"),
        ({"random_state": -1}, ValueError, "^random_state"),
        ({"random_state": 0.5}, TypeError, "^random_state"),
    ],
)
def test_blend_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Blend(**kwargs)


def test_blend_repr():
    assert repr(Blend()) == "Blend(alpha=0.2, pattern='noise', random_state=0)"
    assert repr(Blend(0.5, np.zeros((3, 4)))) == (
        "Blend(alpha=0.5, pattern=<array of shape (3, 4)>, random_state=0)"
    )


# ---------------------------------------------------------------------------- SIG
def test_sig_closed_form(gray, color):
    """x' = clip(x + delta sin(2 pi j f / W), 0, 1), the same for every row and channel."""
    delta, f = 0.2, 1.5
    for images in (gray, color):
        out = SIG(delta=delta, frequency=f).apply(images, labels(len(images)), CLASSES)
        for j in range(8):
            v = delta * np.sin(2 * np.pi * j * f / 8)
            expected = np.clip(images[:, :, j] + v, 0.0, 1.0)
            np.testing.assert_allclose(out[:, :, j], expected, rtol=0, atol=1e-15)
        assert out.shape == images.shape and out.dtype == np.float64


def test_sig_quarter_periods_exact_values():
    """W = 4, f = 1: the signal is delta * (0, 1, 0, -1) at the columns."""
    out = SIG(delta=0.25, frequency=1).apply(np.full((2, 3, 4), 0.5), [0, 1], CLASSES)
    np.testing.assert_allclose(out, np.broadcast_to([0.5, 0.75, 0.5, 0.25], (2, 3, 4)), atol=1e-15)


def test_sig_blend_mode_closed_form(gray):
    """combine="blend": x' = clip(0.8 x + 0.2 v, 0, 1) (paper 002's signalTrigger)."""
    out = SIG(delta=20 / 255, frequency=6, combine="blend").apply(gray, labels(5), CLASSES)
    v = 20 / 255 * np.sin(2 * np.pi * np.arange(8) * 6 / 8)
    np.testing.assert_allclose(out, np.clip(0.8 * gray + 0.2 * v, 0, 1), rtol=0, atol=1e-15)


def test_sig_clips_to_unit_interval():
    out = SIG(delta=1.0, frequency=1).apply(np.stack([np.zeros((2, 4)), np.ones((2, 4))]), [0, 1],
                                            CLASSES)  # fmt: skip
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out[0, 0], [0.0, 1.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(out[1, 0], [1.0, 1.0, 1.0, 0.0], atol=1e-15)


def test_sig_is_periodic_with_period_w_over_f():
    s = SIG(frequency=3).signal(12)  # period 12 / 3 = 4 columns
    np.testing.assert_allclose(s[4:], s[:-4], rtol=0, atol=1e-15)
    assert np.max(np.abs(s)) == pytest.approx(20 / 255)


def test_sig_defaults_and_repr():
    trig = SIG()
    assert trig.delta == 20 / 255 and trig.frequency == 6.0 and trig.combine == "add"
    assert repr(SIG(0.1, 2)) == "SIG(delta=0.1, frequency=2.0, combine='add')"


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"delta": 0}, ValueError, "^delta"),
        ({"delta": 1.5}, ValueError, r"^delta must lie in \(0, 1\]"),
        ({"delta": np.inf}, ValueError, "^delta"),
        ({"delta": "0.1"}, TypeError, "^delta"),
        ({"frequency": 0}, ValueError, "^frequency"),
        ({"frequency": -1}, ValueError, "^frequency"),
        ({"frequency": np.nan}, ValueError, "^frequency"),
        ({"frequency": None}, TypeError, "^frequency"),
        ({"combine": "mul"}, ValueError, r"^combine must be one of \['add', 'blend'\]"),
        ({"combine": 1}, TypeError, "^combine"),
    ],
)
def test_sig_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SIG(**kwargs)


@pytest.mark.parametrize("trigger", [Blend(), SIG()])
def test_bad_images_and_labels(trigger):
    with pytest.raises(ValueError, match=r"^images must hold pixel intensities in \[0, 1\]"):
        trigger.apply(np.full((1, 4, 4), 255.0), [0], CLASSES)
    with pytest.raises(ValueError, match="^images must have shape"):
        trigger.apply(np.zeros((4, 4)), [0], CLASSES)
    with pytest.raises(ValueError, match="^source_labels has 2 labels but there are 1 images"):
        trigger.apply(np.zeros((1, 4, 4)), [0, 1], CLASSES)
    with pytest.raises(ValueError, match=r"^source_labels has labels \[5\]"):
        trigger.apply(np.zeros((1, 4, 4)), [5], CLASSES)
