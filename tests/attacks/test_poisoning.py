"""Tests of backdoor_curves.attacks.poisoning: in-place poisoning into D, P, V, V_t (DESIGN §3)."""

import math

import numpy as np
import pytest

from backdoor_curves.attacks.poisoning import flip_labels, n_poison_points, poison
from backdoor_curves.attacks.triggers import BadNetsPatch, InvisibleGrid
from backdoor_curves.data import BackdoorData
from backdoor_curves.datasets.mnist import load_mnist_pair


@pytest.fixture(scope="module")
def mnist():
    return load_mnist_pair((7, 1))


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    X = rng.random((30, 6, 6))
    y = np.repeat(["cat", "dog"], 15)
    rng.shuffle(y)
    X_te = rng.random((8, 6, 6))
    y_te = np.array(["cat", "dog"] * 4)
    return X, y, X_te, y_te


# ---------------------------------------------------------------------------- sizes and sets
@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.1, 0.3, 0.7, 0.99])
def test_sizes_follow_floor_of_fraction(mnist, fraction):
    X_tr, y_tr, X_te, y_te = mnist
    data = poison(X_tr, y_tr, X_te, y_te, fraction=fraction)
    n = len(y_tr)
    assert data.n_poison == math.floor(fraction * n + 1e-9)
    assert data.n_clean + data.n_poison == n
    assert len(data.y_test) == len(data.y_test_bd) == len(y_te)
    assert data.n_features == 784 and data.image_shape == (28, 28)
    assert data.classes.tolist() == [1, 7]


def test_floor_is_robust_to_rounding():
    assert n_poison_points(0.7, 10) == 7  # 0.7 * 10 = 6.999999999999999
    assert n_poison_points(0.1, 30) == 3
    assert n_poison_points(0.29, 10) == 2


def test_poison_labels_flipped_and_points_triggered_copies(mnist):
    X_tr, y_tr, X_te, y_te = mnist
    trig = BadNetsPatch(size=3, random_state=4)
    data, idx = poison(X_tr, y_tr, X_te, y_te, trigger=trig, fraction=0.1, return_indices=True)
    assert np.all(np.diff(idx) > 0) and len(idx) == data.n_poison
    # labels flipped to the other class
    np.testing.assert_array_equal(data.y_poison, np.where(y_tr[idx] == 1, 7, 1))
    # P is the triggered copies in sorted index order, flattened
    expected = trig.apply(X_tr[idx], y_tr[idx], [1, 7]).reshape(len(idx), -1)
    np.testing.assert_array_equal(data.X_poison, expected)
    # D keeps the rest in the original order
    keep = np.setdiff1d(np.arange(len(y_tr)), idx)
    np.testing.assert_array_equal(data.X_clean, X_tr[keep].reshape(len(keep), -1))
    np.testing.assert_array_equal(data.y_clean, y_tr[keep])


def test_D_plus_P_is_a_permutation_of_the_training_set(mnist):
    X_tr, y_tr, X_te, y_te = mnist
    trig = InvisibleGrid(0.2)
    data, idx = poison(
        X_tr, y_tr, X_te, y_te, trigger=trig, fraction=0.2, random_state=5, return_indices=True
    )
    # undo the poisoning on P (un-trigger by position, un-flip the labels) and compare as multisets
    untriggered = X_tr[idx].reshape(len(idx), -1)
    recon_X = np.vstack([data.X_clean, untriggered])
    recon_y = np.concatenate([data.y_clean, flip_labels(data.y_poison, data.classes)])
    order = np.concatenate([np.setdiff1d(np.arange(len(y_tr)), idx), idx])
    assert sorted(order.tolist()) == list(range(len(y_tr)))
    np.testing.assert_array_equal(recon_X, X_tr.reshape(len(y_tr), -1)[order])
    np.testing.assert_array_equal(recon_y, y_tr[order])
    # and P really is the triggered version of those points (not the originals)
    np.testing.assert_array_equal(
        data.X_poison, trig.apply(X_tr[idx], y_tr[idx], [1, 7]).reshape(len(idx), -1)
    )
    assert not np.array_equal(data.X_poison, untriggered)


def test_test_sets(mnist):
    X_tr, y_tr, X_te, y_te = mnist
    trig = BadNetsPatch(size=4, random_state=1)
    data = poison(X_tr, y_tr, X_te, y_te, trigger=trig, fraction=0.05)
    n_te = len(y_te)
    np.testing.assert_array_equal(data.X_test, X_te.reshape(n_te, -1))
    np.testing.assert_array_equal(data.y_test, y_te)
    # V_t: every test point triggered (source = its true label) and relabelled
    np.testing.assert_array_equal(data.y_test_bd, np.where(y_te == 1, 7, 1))
    assert np.all(data.y_test_bd != y_te)
    np.testing.assert_array_equal(data.X_test_bd, trig.apply(X_te, y_te, [1, 7]).reshape(n_te, -1))
    corner = data.X_test_bd.reshape(n_te, 28, 28)[:, -4:, -4:]
    for i in range(n_te):
        np.testing.assert_array_equal(corner[i], trig.patch(0 if y_te[i] == 1 else 1))


def test_trigger_by_name_with_params_matches_object(mnist):
    X_tr, y_tr, X_te, y_te = mnist
    a = poison(X_tr, y_tr, X_te, y_te, trigger="badnets", size=5, random_state=3)
    b = poison(X_tr, y_tr, X_te, y_te, trigger=BadNetsPatch(size=5), random_state=3)
    np.testing.assert_array_equal(a.X_poison, b.X_poison)
    c = poison(X_tr, y_tr, X_te, y_te, trigger="invisible", intensity=0.1)
    d = poison(X_tr, y_tr, X_te, y_te, trigger=InvisibleGrid(0.1))
    np.testing.assert_array_equal(c.X_test_bd, d.X_test_bd)
    assert not np.array_equal(a.X_test_bd, c.X_test_bd)


def test_default_trigger_is_badnets_3(mnist):
    X_tr, y_tr, X_te, y_te = mnist
    data = poison(X_tr, y_tr, X_te, y_te)
    np.testing.assert_array_equal(
        data.X_test_bd, BadNetsPatch(3, 0).apply(X_te, y_te, [1, 7]).reshape(len(y_te), -1)
    )
    assert data.n_poison == 75


# ---------------------------------------------------------------------------- determinism
def test_determinism_by_seed(toy):
    X, y, X_te, y_te = toy
    a, ia = poison(X, y, X_te, y_te, fraction=0.3, random_state=7, return_indices=True)
    b, ib = poison(X, y, X_te, y_te, fraction=0.3, random_state=7, return_indices=True)
    _, ic = poison(X, y, X_te, y_te, fraction=0.3, random_state=8, return_indices=True)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(ia, ic)
    expected = np.sort(np.random.default_rng(7).choice(30, size=9, replace=False))
    np.testing.assert_array_equal(ia, expected)


def test_input_not_mutated_and_not_shared(toy):
    X, y, X_te, y_te = toy
    copies = [a.copy() for a in toy]
    data = poison(X, y, X_te, y_te, fraction=0.3, trigger="invisible", intensity=1.0)
    for a, b in zip(toy, copies, strict=True):
        np.testing.assert_array_equal(a, b)
    for arr in (data.X_clean, data.X_poison, data.X_test, data.X_test_bd):
        assert not np.shares_memory(arr, X) and not np.shares_memory(arr, X_te)
    assert not np.shares_memory(data.y_test, y_te)


def test_string_labels_and_return_type(toy):
    X, y, X_te, y_te = toy
    data = poison(X, y, X_te, y_te, fraction=0.2)
    assert isinstance(data, BackdoorData)
    assert data.classes.tolist() == ["cat", "dog"]
    assert data.n_poison == 6
    assert set(data.y_poison.tolist()) <= {"cat", "dog"}
    out = poison(X, y, X_te, y_te, fraction=0.2, return_indices=True)
    assert isinstance(out, tuple) and len(out) == 2
    data2, idx = out
    np.testing.assert_array_equal(data2.y_poison, flip_labels(y[idx], ["cat", "dog"]))
    assert idx.dtype == np.int64


def test_flattened_input_with_image_shape(toy):
    X, y, X_te, y_te = toy
    flat = poison(X.reshape(30, -1), y, X_te.reshape(8, -1), y_te, image_shape=(6, 6))
    img = poison(X, y, X_te, y_te)
    np.testing.assert_array_equal(flat.X_train, img.X_train)
    np.testing.assert_array_equal(flat.X_test_bd, img.X_test_bd)
    assert flat.image_shape == img.image_shape == (6, 6)


def test_colour_images():
    rng = np.random.default_rng(2)
    X = rng.random((20, 5, 4, 3))
    y = np.array([0, 1] * 10)
    data, idx = poison(X, y, X[:6], y[:6], fraction=0.25, size=2, return_indices=True)
    assert data.image_shape == (5, 4, 3) and data.n_features == 60
    P = data.X_poison.reshape(-1, 5, 4, 3)
    trig = BadNetsPatch(size=2)
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(P[k, -2:, -2:], trig.patch(int(y[i]), n_channels=3))
        np.testing.assert_array_equal(P[k, :3], X[i, :3])
    flat = poison(
        X.reshape(20, -1),
        y,
        X[:6].reshape(6, -1),
        y[:6],
        fraction=0.25,
        size=2,
        image_shape=(5, 4, 3),
    )
    np.testing.assert_array_equal(flat.X_poison, data.X_poison)


def test_custom_trigger_object_gets_source_labels_and_classes(toy):
    X, y, X_te, y_te = toy
    seen = []

    class Spy:
        def apply(self, images, source_labels, classes):
            seen.append((np.asarray(source_labels).copy(), list(classes)))
            return np.zeros_like(images)

    data, idx = poison(X, y, X_te, y_te, trigger=Spy(), fraction=0.2, return_indices=True)
    np.testing.assert_array_equal(seen[0][0], y[idx])
    np.testing.assert_array_equal(seen[1][0], y_te)
    assert seen[0][1] == ["cat", "dog"]
    assert np.all(data.X_poison == 0) and np.all(data.X_test_bd == 0)


# ---------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_fraction_outside_open_interval(toy, fraction):
    X, y, X_te, y_te = toy
    with pytest.raises(ValueError, match="^fraction must lie strictly between 0 and 1"):
        poison(X, y, X_te, y_te, fraction=fraction)


def test_fraction_wrong_type(toy):
    with pytest.raises(TypeError, match="^fraction"):
        poison(*toy, fraction="0.1")


def test_empty_poisoning_set(toy):
    X, y, X_te, y_te = toy
    with pytest.raises(ValueError, match="^fraction=0.02 .*poisoning set would be empty"):
        poison(X, y, X_te, y_te, fraction=0.02)


def test_fraction_that_empties_a_class_from_D():
    X = np.zeros((4, 3, 3))
    y = np.array([0, 0, 0, 1])
    # 3 of 4 points are poisoned; pick a seed whose choice includes the single class-1 point
    seed = next(s for s in range(100) if 3 in np.random.default_rng(s).choice(4, 3, replace=False))
    with pytest.raises(
        ValueError, match=r"^fraction=0.75 poisons every training point of class \[1\]"
    ):
        poison(X, y, X[:2], y[:2], fraction=0.75, size=1, random_state=seed)


def test_y_train_needs_two_classes(toy):
    X, y, X_te, y_te = toy
    with pytest.raises(ValueError, match="^y_train must contain exactly two classes.*got 3"):
        poison(X, np.arange(30) % 3, X_te, y_te)
    with pytest.raises(ValueError, match="^y_train must contain exactly two classes.*got 1"):
        poison(X, np.zeros(30), X_te, np.zeros(8))


def test_y_test_with_unknown_label(toy):
    X, y, X_te, y_te = toy
    bad = y_te.copy().astype("<U5")
    bad[0] = "bird"
    with pytest.raises(ValueError, match=r"^y_test has labels \['bird'\]"):
        poison(X, y, X_te, bad)


def test_mismatched_lengths(toy):
    X, y, X_te, y_te = toy
    with pytest.raises(ValueError, match="^X_train and y_train have different lengths"):
        poison(X, y[:-1], X_te, y_te)
    with pytest.raises(ValueError, match="^X_test and y_test have different lengths"):
        poison(X, y, X_te, y_te[:-1])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_images(toy, bad):
    X, y, X_te, y_te = toy
    X2 = X.copy()
    X2[3, 1, 1] = bad
    with pytest.raises(ValueError, match="^X_train contains NaN or infinity"):
        poison(X2, y, X_te, y_te)
    X3 = X_te.copy()
    X3[0, 0, 0] = bad
    with pytest.raises(ValueError, match="^X_test contains NaN or infinity"):
        poison(X, y, X3, y_te)


def test_images_out_of_range(toy):
    X, y, X_te, y_te = toy
    with pytest.raises(ValueError, match=r"^X_train must hold pixel intensities in \[0, 1\]"):
        poison(X * 255, y, X_te, y_te)


def test_shape_problems(toy):
    X, y, X_te, y_te = toy
    with pytest.raises(ValueError, match="^X_train is 2-D.*pass image_shape"):
        poison(X.reshape(30, -1), y, X_te, y_te)
    with pytest.raises(ValueError, match="^X_train has 36 features, but image_shape"):
        poison(X.reshape(30, -1), y, X_te.reshape(8, -1), y_te, image_shape=(5, 5))
    with pytest.raises(ValueError, match=r"^X_test images have shape \(5, 5\)"):
        poison(X, y, X_te[:, :5, :5], y_te)
    with pytest.raises(ValueError, match="^X_train must have shape"):
        poison(X[:, 0, 0], y, X_te, y_te)
    with pytest.raises(ValueError, match="^image_shape must be"):
        poison(X.reshape(30, -1), y, X_te.reshape(8, -1), y_te, image_shape=(36,))
    with pytest.raises(TypeError, match="^image_shape"):
        poison(X.reshape(30, -1), y, X_te.reshape(8, -1), y_te, image_shape=6)


def test_bad_trigger_arguments(toy):
    X, y, X_te, y_te = toy
    with pytest.raises(ValueError, match=r"^trigger must be one of \['badnets', 'blend', "):
        poison(X, y, X_te, y_te, trigger="refool")
    with pytest.raises(TypeError, match="^trigger must be a trigger name or an object"):
        poison(X, y, X_te, y_te, trigger=42)
    with pytest.raises(TypeError, match="^colour is not a parameter of the 'badnets' trigger"):
        poison(X, y, X_te, y_te, colour="red")
    with pytest.raises(TypeError, match="^size is a trigger parameter"):
        poison(X, y, X_te, y_te, trigger=BadNetsPatch(), size=3)
    with pytest.raises(ValueError, match="^size=7 is larger than the image"):
        poison(X, y, X_te, y_te, size=7)


def test_trigger_returning_wrong_shape(toy):
    class Bad:
        def apply(self, images, source_labels, classes):
            return images[:, :2]

    with pytest.raises(ValueError, match="^trigger returned shape"):
        poison(*toy, trigger=Bad())


def test_bad_random_state(toy):
    with pytest.raises(ValueError, match="^random_state"):
        poison(*toy, random_state=-3)
    with pytest.raises(TypeError, match="^random_state"):
        poison(*toy, random_state=0.5)
