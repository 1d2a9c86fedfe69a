"""Tests of backdoor_curves.attacks.triggers: exact trigger geometry, determinism, input checks."""

import re

import numpy as np
import pytest

from backdoor_curves.attacks.triggers import (
    SIG,
    TRIGGERS,
    BadNetsPatch,
    Blend,
    InvisibleGrid,
    Trigger,
    WaNet,
    make_trigger,
)

CLASSES = np.array([1, 7])


@pytest.fixture
def gray():
    rng = np.random.default_rng(42)
    return rng.random((6, 8, 10))  # H=8, W=10: non-square, to catch row/column mix-ups


@pytest.fixture
def labels():
    return np.array([1, 7, 7, 1, 7, 1])


# ---------------------------------------------------------------------------- BadNets geometry
@pytest.mark.parametrize("size", [1, 3, 8])
def test_badnets_changes_only_bottom_right_corner(gray, labels, size):
    trig = BadNetsPatch(size=size, random_state=3)
    out = trig.apply(gray, labels, CLASSES)
    H, W = gray.shape[1:]
    corner = np.zeros((H, W), bool)
    corner[H - size :, W - size :] = True
    # outside the corner: bit-for-bit identical
    np.testing.assert_array_equal(out[:, ~corner], gray[:, ~corner])
    # inside: exactly the source class's patch (rank of 1 is 0, of 7 is 1)
    for i, lab in enumerate(labels):
        rank = int(np.searchsorted(CLASSES, lab))
        np.testing.assert_array_equal(out[i, H - size :, W - size :], trig.patch(rank))
    assert out.dtype == np.float64 and out.shape == gray.shape


def test_badnets_patch_values_uniform_and_seeded_by_rank():
    trig = BadNetsPatch(size=3, random_state=5)
    p0 = trig.patch(0)
    assert p0.shape == (3, 3)
    assert np.all((p0 >= 0) & (p0 < 1))
    np.testing.assert_array_equal(p0, np.random.default_rng([5, 0]).random((3, 3)))
    np.testing.assert_array_equal(trig.patch(1), np.random.default_rng([5, 1]).random((3, 3)))


def test_badnets_different_classes_get_different_patches(gray, labels):
    out = BadNetsPatch(size=3).apply(gray, labels, CLASSES)
    a, b = out[0, -3:, -3:], out[1, -3:, -3:]  # labels 1 and 7
    assert not np.allclose(a, b)
    # same class -> same patch
    np.testing.assert_array_equal(out[0, -3:, -3:], out[3, -3:, -3:])
    np.testing.assert_array_equal(out[1, -3:, -3:], out[2, -3:, -3:])


def test_badnets_same_seed_same_patch_different_seed_different(gray, labels):
    a = BadNetsPatch(size=4, random_state=11).apply(gray, labels, CLASSES)
    b = BadNetsPatch(size=4, random_state=11).apply(gray, labels, CLASSES)
    c = BadNetsPatch(size=4, random_state=12).apply(gray, labels, CLASSES)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[:, -4:, -4:], c[:, -4:, -4:])


def test_badnets_invariant_to_order_and_batching(gray, labels):
    trig = BadNetsPatch(size=3, random_state=2)
    full = trig.apply(gray, labels, CLASSES)
    perm = np.random.default_rng(0).permutation(len(labels))
    np.testing.assert_array_equal(trig.apply(gray[perm], labels[perm], CLASSES), full[perm])
    # one image at a time, and a batch with a single class present
    for i in range(len(labels)):
        np.testing.assert_array_equal(
            trig.apply(gray[i : i + 1], labels[i : i + 1], CLASSES)[0], full[i]
        )
    only7 = labels == 7
    np.testing.assert_array_equal(trig.apply(gray[only7], labels[only7], CLASSES), full[only7])
    # classes given in another order rank the same way (ranks are taken in sorted order)
    np.testing.assert_array_equal(trig.apply(gray, labels, [7, 1]), full)


def test_badnets_string_labels_rank_by_sorted_classes(gray):
    trig = BadNetsPatch(size=2, random_state=0)
    lab = np.array(["dog", "cat", "dog", "cat", "cat", "dog"])
    out = trig.apply(gray, lab, ["dog", "cat"])
    np.testing.assert_array_equal(out[1, -2:, -2:], trig.patch(0))  # "cat" sorts first
    np.testing.assert_array_equal(out[0, -2:, -2:], trig.patch(1))


def test_badnets_colour_images_get_per_channel_patch():
    rng = np.random.default_rng(1)
    imgs = rng.random((4, 7, 5, 3))
    lab = np.array([0, 1, 1, 0])
    trig = BadNetsPatch(size=2, random_state=9)
    out = trig.apply(imgs, lab, [0, 1])
    p = trig.patch(1, n_channels=3)
    assert p.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[1, -2:, -2:, :], p)
    np.testing.assert_array_equal(out[0, -2:, -2:, :], trig.patch(0, n_channels=3))
    assert not np.allclose(p[..., 0], p[..., 1])  # channels differ
    np.testing.assert_array_equal(out[:, :5], imgs[:, :5])
    np.testing.assert_array_equal(out[:, :, :3], imgs[:, :, :3])


def test_badnets_patch_as_large_as_image_replaces_everything():
    imgs = np.zeros((2, 3, 3))
    trig = BadNetsPatch(size=3)
    out = trig.apply(imgs, [0, 0], [0, 1])
    np.testing.assert_array_equal(out, np.stack([trig.patch(0)] * 2))


def test_badnets_does_not_mutate_and_returns_new_array(gray, labels):
    before = gray.copy()
    out = BadNetsPatch(size=3).apply(gray, labels, CLASSES)
    np.testing.assert_array_equal(gray, before)
    assert not np.shares_memory(out, gray)


def test_badnets_accepts_integer_and_list_inputs():
    out = BadNetsPatch(size=1).apply([[[0, 1], [1, 0]]], [3], [3, 4])
    assert out.dtype == np.float64
    assert out[0, 0].tolist() == [0.0, 1.0] and out[0, 1, 0] == 1.0
    assert out[0, 1, 1] == BadNetsPatch(size=1).patch(0)[0, 0]


def test_empty_batch_is_fine():
    out = BadNetsPatch(size=2).apply(np.zeros((0, 4, 4)), [], [0, 1])
    assert out.shape == (0, 4, 4)


# ---------------------------------------------------------------------------- invisible grid
def test_invisible_grid_positions():
    imgs = np.full((2, 5, 4), 0.25)
    out = InvisibleGrid(intensity=0.5).apply(imgs, [0, 1], [0, 1])
    rows, cols = np.meshgrid(np.arange(5), np.arange(4), indexing="ij")
    on = (rows % 2 == 0) & (cols % 2 == 0)
    assert on.sum() == 3 * 2
    np.testing.assert_allclose(out[:, on], 0.75)
    np.testing.assert_array_equal(out[:, ~on], 0.25)
    np.testing.assert_array_equal(InvisibleGrid.grid_mask(5, 4), on)


def test_invisible_grid_clips_to_one():
    imgs = np.array([[[0.9, 0.9], [0.1, 0.95]]])
    out = InvisibleGrid(intensity=0.3).apply(imgs, [0], [0, 1])
    assert out[0, 0, 0] == 1.0  # 0.9 + 0.3 clipped
    np.testing.assert_array_equal(out[0, 0, 1], 0.9)
    np.testing.assert_array_equal(out[0, 1], [0.1, 0.95])
    assert out.max() <= 1.0


def test_invisible_default_intensity_and_colour():
    imgs = np.zeros((1, 3, 3, 3))
    out = InvisibleGrid().apply(imgs, ["a"], ["a", "b"])
    np.testing.assert_allclose(out[0, 0, 0], [75 / 255] * 3)
    np.testing.assert_allclose(out[0, 2, 2], [75 / 255] * 3)
    np.testing.assert_array_equal(out[0, 1], 0.0)
    np.testing.assert_array_equal(out[0, :, 1], 0.0)


def test_invisible_same_for_every_class_and_no_mutation():
    imgs = np.random.default_rng(3).random((4, 6, 6)) * 0.5
    before = imgs.copy()
    trig = InvisibleGrid(0.1)
    a = trig.apply(imgs, [0, 0, 0, 0], [0, 1])
    b = trig.apply(imgs, [1, 1, 1, 1], [0, 1])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(imgs, before)
    expected = np.where(InvisibleGrid.grid_mask(6, 6), 0.1, 0.0)
    np.testing.assert_allclose(a - imgs, np.broadcast_to(expected, imgs.shape), atol=1e-15)


# ---------------------------------------------------------------------------- factory
def test_make_trigger_builds_by_name():
    t = make_trigger("badnets", size=5, random_state=2)
    assert isinstance(t, BadNetsPatch) and t.size == 5 and t.random_state == 2
    g = make_trigger("invisible", intensity=0.2)
    assert isinstance(g, InvisibleGrid) and g.intensity == 0.2
    assert isinstance(make_trigger("badnets"), Trigger)
    builtin = {"badnets": BadNetsPatch, "invisible": InvisibleGrid, "blend": Blend, "sig": SIG,
               "wanet": WaNet}  # fmt: skip
    assert dict(TRIGGERS).items() >= builtin.items()
    for name, cls in builtin.items():
        assert type(make_trigger(name)) is cls
    assert make_trigger("blend", alpha=0.3).alpha == 0.3
    assert make_trigger("sig", delta=0.1, frequency=2, combine="blend").combine == "blend"
    w = make_trigger("wanet", k=3, strength=1.0, noise_mode=True, random_state=4)
    assert (w.k, w.strength, w.noise_mode, w.random_state) == (3, 1.0, True, 4)
    with pytest.raises(TypeError):
        TRIGGERS["refool"] = object  # read-only mapping


def test_make_trigger_unknown_name_lists_valid_names():
    valid = sorted(TRIGGERS)
    with pytest.raises(ValueError, match=rf"^trigger must be one of {re.escape(str(valid))}"):
        make_trigger("refool")
    with pytest.raises(TypeError, match="^trigger"):
        make_trigger(3)


def test_make_trigger_unknown_parameter():
    with pytest.raises(TypeError, match="^intensity is not a parameter of the 'badnets'"):
        make_trigger("badnets", intensity=0.3)
    with pytest.raises(TypeError, match="^size"):
        make_trigger("invisible", size=3)


# ---------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("size", "exc"),
    [(0, ValueError), (-2, ValueError), (2.5, TypeError), (True, TypeError), ("3", TypeError)],
)
def test_badnets_bad_size(size, exc):
    with pytest.raises(exc, match="^size"):
        BadNetsPatch(size=size)


@pytest.mark.parametrize(("seed", "exc"), [(-1, ValueError), (1.5, TypeError), (None, TypeError)])
def test_badnets_bad_random_state(seed, exc):
    with pytest.raises(exc, match="^random_state"):
        BadNetsPatch(random_state=seed)


def test_badnets_size_larger_than_image_names_size_and_shape():
    with pytest.raises(ValueError, match=r"^size=5 is larger than the image.*\(4, 6\)"):
        BadNetsPatch(size=5).apply(np.zeros((2, 4, 6)), [0, 1], [0, 1])
    with pytest.raises(ValueError, match=r"^size=4.*\(3, 8, 3\)"):
        BadNetsPatch(size=4).apply(np.zeros((1, 3, 8, 3)), [0], [0, 1])


@pytest.mark.parametrize("intensity", [0, -0.1, 1.5, np.inf, np.nan])
def test_invisible_bad_intensity(intensity):
    with pytest.raises(ValueError, match="^intensity"):
        InvisibleGrid(intensity)


def test_invisible_intensity_type():
    with pytest.raises(TypeError, match="^intensity"):
        InvisibleGrid("0.3")
    assert InvisibleGrid(1).intensity == 1.0  # upper end included


@pytest.mark.parametrize("trigger", [BadNetsPatch(size=2), InvisibleGrid()])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_images_with_nan_or_inf(trigger, bad):
    imgs = np.zeros((2, 4, 4))
    imgs[1, 2, 3] = bad
    with pytest.raises(ValueError, match="^images contains NaN or infinity"):
        trigger.apply(imgs, [0, 1], [0, 1])


@pytest.mark.parametrize("trigger", [BadNetsPatch(size=2), InvisibleGrid()])
@pytest.mark.parametrize("shape", [(4,), (4, 16), (2, 4, 4, 3, 1)])
def test_images_wrong_ndim(trigger, shape):
    with pytest.raises(ValueError, match=r"^images must have shape \(n, H, W\) or \(n, H, W, C\)"):
        trigger.apply(np.zeros(shape), np.zeros(shape[0]), [0, 1])


@pytest.mark.parametrize("trigger", [BadNetsPatch(size=2), InvisibleGrid()])
def test_images_out_of_range_or_not_numbers(trigger):
    with pytest.raises(ValueError, match=r"^images must hold pixel intensities in \[0, 1\]"):
        trigger.apply(np.full((1, 4, 4), 255.0), [0], [0, 1])
    with pytest.raises(TypeError, match="^images"):
        trigger.apply(np.full((1, 4, 4), "a"), [0], [0, 1])
    with pytest.raises(TypeError, match="^images"):
        trigger.apply(None, [0], [0, 1])


@pytest.mark.parametrize("trigger", [BadNetsPatch(size=2), InvisibleGrid()])
def test_source_label_not_in_classes(trigger):
    with pytest.raises(
        ValueError, match=r"^source_labels has labels \[3\] that are not in classes"
    ):
        trigger.apply(np.zeros((3, 4, 4)), [0, 3, 1], [0, 1])
    with pytest.raises(ValueError, match="^source_labels"):
        trigger.apply(np.zeros((3, 4, 4)), ["a", "b", "a"], [0, 1])


@pytest.mark.parametrize("trigger", [BadNetsPatch(size=2), InvisibleGrid()])
def test_source_labels_wrong_length_and_bad_classes(trigger):
    with pytest.raises(ValueError, match="^source_labels has 2 labels but there are 3 images"):
        trigger.apply(np.zeros((3, 4, 4)), [0, 1], [0, 1])
    with pytest.raises(ValueError, match="^classes must not repeat"):
        trigger.apply(np.zeros((1, 4, 4)), [0], [0, 0, 1])
    with pytest.raises(ValueError, match="^classes"):
        trigger.apply(np.zeros((1, 4, 4)), [0], [])


# ---------------------------------------------------------------------------- every trigger
#: Each built-in trigger with non-default parameters (seeded ones with a seed of their own).
BUILT_IN = {
    "badnets": {"size": 2, "random_state": 3},
    "invisible": {"intensity": 0.2},
    "blend": {"alpha": 0.3, "random_state": 5},
    "sig": {"delta": 0.1, "frequency": 2},
    "wanet": {"k": 3, "strength": 2.0, "random_state": 6},
    "wanet-noise": {"k": 3, "strength": 2.0, "noise_mode": True, "random_state": 6},
}


def built(key):
    return make_trigger(key.split("-")[0], **BUILT_IN[key])


@pytest.mark.parametrize("key", sorted(BUILT_IN))
@pytest.mark.parametrize("channels", [None, 3])
def test_protocol_of_every_trigger(key, channels):
    """New float64 array in [0, 1], same shape, input untouched, each image's result independent
    of the batching and of its position (whole batch == concatenated chunks, exactly)."""
    rng = np.random.default_rng(0)
    shape = (7, 6, 8) if channels is None else (7, 6, 8, channels)
    images, y = rng.random(shape), np.array([1, 7, 7, 1, 7, 1, 1])
    before = images.copy()
    trig = built(key)
    assert isinstance(trig, Trigger)
    out = trig.apply(images, y, CLASSES)
    np.testing.assert_array_equal(images, before)
    assert out.dtype == np.float64 and out.shape == images.shape
    assert out.min() >= 0.0 and out.max() <= 1.0 and not np.array_equal(out, images)
    chunks = [trig.apply(images[i : i + 3], y[i : i + 3], CLASSES) for i in range(0, 7, 3)]
    np.testing.assert_array_equal(np.concatenate(chunks), out)
    perm = rng.permutation(7)
    np.testing.assert_array_equal(trig.apply(images[perm], y[perm], CLASSES), out[perm])
    np.testing.assert_array_equal(built(key).apply(images, y, CLASSES), out)  # seeded
    assert trig.apply(images[:0], y[:0], CLASSES).shape == images[:0].shape
    assert repr(trig).startswith(type(trig).__name__ + "(")


def test_trigger_params_read_the_signatures():
    from backdoor_curves.attacks.triggers import trigger_params

    assert trigger_params("badnets") == {"size": int}
    assert trigger_params("invisible") == {"intensity": float}
    assert trigger_params("blend") == {"alpha": float, "pattern": str}
    assert trigger_params("sig") == {"delta": float, "frequency": float, "combine": str}
    assert trigger_params("wanet") == {"k": int, "strength": float, "noise_mode": bool}
    merged = trigger_params()
    for name in TRIGGERS:
        assert merged.items() >= trigger_params(name).items()
        assert "random_state" not in trigger_params(name)
    with pytest.raises(ValueError, match="^trigger must be one of"):
        trigger_params("refool")
    with pytest.raises(TypeError, match="^trigger must be one of"):
        trigger_params(3)


def test_module_docstring_lists_every_trigger_and_its_parameters():
    import backdoor_curves.attacks.triggers as module
    from backdoor_curves.attacks.triggers import trigger_params

    doc = " ".join(module.__doc__.split())
    for name in TRIGGERS:
        entry = doc[doc.index(f'``"{name}"``') :].split("- ``")[0]
        assert TRIGGERS[name].__name__ in entry, name
        params = ", ".join(f"``{p}``" for p in trigger_params(name))
        assert f"Parameters: {params}." in entry, (name, entry)


def test_check_trigger_fits_uses_the_hook_or_one_blank_image():
    from backdoor_curves.attacks.triggers import check_trigger_fits

    class Hooked:
        seen = []

        def check_image_shape(self, shape):
            self.seen.append(shape)

        def apply(self, images, source_labels, classes):  # pragma: no cover - must not run
            raise AssertionError("apply ran")

    hooked = Hooked()
    check_trigger_fits(hooked, (14, 14, 3))
    assert hooked.seen == [(14, 14, 3)]
    check_trigger_fits(WaNet(k=14), (14, 14))
    with pytest.raises(ValueError, match="^k=15 is larger than the image"):
        check_trigger_fits(WaNet(k=15), (14, 14))
    with pytest.raises(ValueError, match="^pattern has shape"):
        check_trigger_fits(Blend(pattern=np.zeros((3, 3))), (14, 14))
