"""Tests of backdoor_curves.attacks.poisoning.poison_images: the one implementation of poisoning,
on image arrays of any float dtype, with the trigger applied in chunks."""

import numpy as np
import pytest

from backdoor_curves.attacks import PoisonedImages, poison, poison_images
from backdoor_curves.attacks.triggers import BadNetsPatch, InvisibleGrid


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    X = rng.random((30, 6, 6, 3)).astype(np.float32)
    y = np.repeat(["cat", "dog"], 15)
    rng.shuffle(y)
    X_te = rng.random((9, 6, 6, 3)).astype(np.float32)
    y_te = np.array(["cat", "dog", "dog"] * 3)
    return X, y, X_te, y_te


@pytest.mark.parametrize("trigger", [BadNetsPatch(2, random_state=1), InvisibleGrid(0.2)])
def test_chunks_do_not_change_the_result(toy, trigger):
    whole = poison_images(*toy, trigger=trigger, fraction=0.4, random_state=3)
    for chunk_size in (1, 4, 100):
        part = poison_images(
            *toy, trigger=trigger, fraction=0.4, random_state=3, chunk_size=chunk_size
        )
        for name in ("X_clean", "y_clean", "X_poison", "y_poison", "X_test_bd", "y_test_bd"):
            assert getattr(part, name).tobytes() == getattr(whole, name).tobytes(), name
        np.testing.assert_array_equal(part.poison_indices, whole.poison_indices)


def test_float32_stays_float32_and_nothing_is_copied_as_a_whole(toy):
    X, y, X_te, y_te = toy
    sets = poison_images(X, y, X_te, y_te, fraction=0.2, size=2)
    assert isinstance(sets, PoisonedImages) and sets.image_shape == (6, 6, 3)
    assert sets.X_clean.dtype == sets.X_poison.dtype == sets.X_test_bd.dtype == np.float32
    assert sets.X_test is X_te  # V is the caller's array
    assert sets.X_poison.shape == (6, 6, 6, 3) and sets.X_clean.shape == (24, 6, 6, 3)
    np.testing.assert_array_equal(sets.X_clean, np.delete(X, sets.poison_indices, axis=0))
    np.testing.assert_array_equal(
        sets.y_poison, np.where(y == "cat", "dog", "cat")[sets.poison_indices]
    )


def test_poison_is_poison_images_flattened(toy):
    X, y, X_te, y_te = (a.astype(np.float64) if a.dtype.kind == "f" else a for a in toy)
    ref, idx = poison(X, y, X_te, y_te, fraction=0.3, random_state=7, size=3, return_indices=True)
    data = poison_images(X, y, X_te, y_te, fraction=0.3, random_state=7, size=3).to_backdoor_data()
    for name in ref.ARRAYS:
        assert getattr(data, name).tobytes() == getattr(ref, name).tobytes(), name
    assert data.image_shape == ref.image_shape == (6, 6, 3)


def test_features_are_computed_on_D_P_V_Vt_in_order(toy):
    seen = []

    def features(images):
        seen.append(len(images))
        return images.reshape(len(images), -1)[:, :5] * 2

    sets = poison_images(*toy, fraction=0.2, size=2)
    data = sets.to_backdoor_data(features)
    assert seen == [24, 6, 9, 9]
    assert data.image_shape is None and data.n_features == 5
    np.testing.assert_allclose(data.X_poison, sets.X_poison.reshape(6, -1)[:, :5] * 2)


def test_a_custom_trigger_sees_each_chunk_with_its_labels(toy):
    calls = []

    class Mark:
        def apply(self, images, source_labels, classes):
            calls.append((len(images), tuple(source_labels), tuple(classes)))
            return np.zeros(images.shape)

    X, y, X_te, y_te = toy
    sets = poison_images(X, y, X_te, y_te, trigger=Mark(), fraction=0.5, chunk_size=4)
    assert [n for n, _, _ in calls] == [4, 4, 4, 3, 4, 4, 1]  # 15 poisoned, then 9 test images
    assert all(c == ("cat", "dog") for _, _, c in calls)
    assert sum((labels for _, labels, _ in calls[4:]), ()) == tuple(y_te)
    assert not sets.X_poison.any() and sets.X_poison.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"chunk_size": 0}, ValueError, "^chunk_size must be at least 1"),
        ({"chunk_size": 2.5}, TypeError, "^chunk_size must be an int"),
        ({"fraction": 0.01}, ValueError, "^fraction=0.01 .*poisoning set would be empty"),
        ({"trigger": "refool"}, ValueError, "^trigger must be one of"),
    ],
)
def test_argument_errors(toy, kwargs, error, match):
    with pytest.raises(error, match=match):
        poison_images(*toy, **kwargs)


def test_image_errors(toy):
    X, y, X_te, y_te = toy
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="^X_train contains NaN or infinity"):
        poison_images(bad, y, X_te, y_te)
    with pytest.raises(ValueError, match=r"^X_test must hold pixel intensities in \[0, 1\]"):
        poison_images(X, y, X_te * 255, y_te)
    with pytest.raises(ValueError, match="^X_train must have shape"):
        poison_images(X.reshape(30, -1), y, X_te, y_te)
    with pytest.raises(ValueError, match=r"^X_test images have shape \(6, 6\)"):
        poison_images(X, y, X_te[..., 0], y_te)
    with pytest.raises(ValueError, match="^X_test must contain at least one image"):
        poison_images(X, y, X_te[:0], y_te[:0])

    class Crop:
        def apply(self, images, source_labels, classes):
            return images[:, :2]

    with pytest.raises(ValueError, match="^trigger returned shape"):
        poison_images(X, y, X_te, y_te, trigger=Crop(), chunk_size=5)
