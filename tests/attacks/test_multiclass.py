"""Tests of backdoor_curves.attacks.multiclass.poison_multiclass: k-class poisoning in place."""

import math

import numpy as np
import pytest

import backdoor_curves
from backdoor_curves import attacks
from backdoor_curves.attacks.multiclass import poison_multiclass
from backdoor_curves.attacks.poisoning import flip_labels
from backdoor_curves.attacks.triggers import BadNetsPatch, InvisibleGrid
from backdoor_curves.data import ImageBackdoorData
from backdoor_curves.datasets import load_mnist_multiclass

K = 4


@pytest.fixture
def toy():
    """60 random 6x6 float32 training images, 15 per class of 4 (shuffled), 20 test images."""
    rng = np.random.default_rng(11)
    X = rng.random((60, 6, 6)).astype(np.float32)
    y = rng.permutation(np.arange(60) % K)
    X_te = rng.random((20, 6, 6)).astype(np.float32)
    y_te = rng.permutation(np.arange(20) % K)
    return X, y, X_te, y_te


def _same(a: ImageBackdoorData, b: ImageBackdoorData) -> None:
    for name in ("X_train", "y_train", "poisoned", "y_source", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.X_test_bd, b.X_test_bd)
    np.testing.assert_array_equal(a.y_test_bd, b.y_test_bd)
    assert (a.n_classes, a.target, a.mode) == (b.n_classes, b.target, b.mode)


def test_exported():
    assert backdoor_curves.poison_multiclass is poison_multiclass
    assert attacks.poison_multiclass is poison_multiclass
    assert backdoor_curves.ImageBackdoorData is ImageBackdoorData


# ---------------------------------------------------------------------------- all-to-one
@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.7])
def test_all_to_one_sizes_mask_and_labels(toy, fraction):
    X, y, X_te, y_te = toy
    data = poison_multiclass(X, y, X_te, y_te, target=2, fraction=fraction, size=2)
    assert isinstance(data, ImageBackdoorData)
    assert (data.mode, data.target, data.n_classes) == ("all-to-one", 2, K)
    assert data.X_train.shape == X.shape and data.X_train.dtype == np.float32
    assert data.poisoned.dtype == np.bool_ and data.y_train.dtype == np.int64
    # |P| = floor(fraction * n) of the whole training set (0.7 * 60 = 42 exactly)
    assert data.n_poison == math.floor(fraction * 60 + 1e-9) == data.poisoned.sum()
    assert data.poison_rate == data.n_poison / 60
    # y_source is the input; clean rows keep it, poisoned rows carry the target
    np.testing.assert_array_equal(data.y_source, y)
    np.testing.assert_array_equal(data.y_train[~data.poisoned], y[~data.poisoned])
    assert np.all(data.y_train[data.poisoned] == 2)
    # exclude_target: no target-class point was poisoned, so every poisoned label changed
    assert np.all(data.y_source[data.poisoned] != 2)


def test_all_to_one_fraction_is_of_the_whole_set_with_exclude_target(toy):
    X, y, X_te, y_te = toy
    # 45 non-target points: 0.75 * 60 = 45 still fits, every one of them is poisoned
    data = poison_multiclass(X, y, X_te, y_te, target=1, fraction=0.75, size=2)
    np.testing.assert_array_equal(data.poisoned, y != 1)


def test_all_to_one_choice_is_the_seeded_choice_among_eligible_points(toy):
    X, y, X_te, y_te = toy
    eligible = np.flatnonzero(y != 3)
    for seed in (0, 7):
        data = poison_multiclass(X, y, X_te, y_te, target=3, fraction=0.2, random_state=seed)
        chosen = np.random.default_rng(seed).choice(eligible.size, size=12, replace=False)
        np.testing.assert_array_equal(np.flatnonzero(data.poisoned), np.sort(eligible[chosen]))


def test_all_to_one_without_exclude_target_draws_from_every_class(toy):
    X, y, X_te, y_te = toy
    data = poison_multiclass(
        X, y, X_te, y_te, target=0, fraction=0.5, exclude_target=False, random_state=3, size=2
    )
    chosen = np.random.default_rng(3).choice(60, size=30, replace=False)
    np.testing.assert_array_equal(np.flatnonzero(data.poisoned), np.sort(chosen))
    # some target-class points are poisoned: triggered, label unchanged, but in the poisoned group
    hit = data.poisoned & (y == 0)
    assert hit.any()
    assert np.all(data.y_train[hit] == 0) and np.all(data.groups()[hit] == 0)
    assert np.all(data.y_train[data.poisoned] == 0)


def test_all_to_one_trigger_applied_exactly_to_the_masked_rows(toy):
    X, y, X_te, y_te = toy
    data = poison_multiclass(X, y, X_te, y_te, target=1, fraction=0.3, size=2, random_state=4)
    m = data.poisoned
    expected = BadNetsPatch(size=2).apply(X[m], y[m], np.arange(K)).astype(np.float32)
    np.testing.assert_array_equal(data.X_train[m], expected)
    np.testing.assert_array_equal(data.X_train[~m], X[~m])
    assert not np.array_equal(data.X_train[m], X[m])  # the patch did change them
    # each poisoned image carries the patch of its *source* class (one patch per class)
    trig = BadNetsPatch(size=2)
    for i in np.flatnonzero(m):
        np.testing.assert_array_equal(data.X_train[i, -2:, -2:], trig.patch(int(y[i])).astype("f4"))


def test_all_to_one_backdoor_test_set(toy):
    X, y, X_te, y_te = toy
    data = poison_multiclass(X, y, X_te, y_te, target=1, fraction=0.2, trigger="invisible")
    np.testing.assert_array_equal(data.X_test, X_te)
    np.testing.assert_array_equal(data.y_test, y_te)
    keep = y_te != 1
    assert data.X_test_bd.shape == (keep.sum(), 6, 6) and data.X_test_bd.dtype == np.float32
    expected = InvisibleGrid().apply(X_te[keep], y_te[keep], np.arange(K)).astype(np.float32)
    np.testing.assert_array_equal(data.X_test_bd, expected)
    np.testing.assert_array_equal(data.y_test_bd, np.full(keep.sum(), 1))


def test_groups_of_an_all_to_one_set(toy):
    X, y, X_te, y_te = toy
    data = poison_multiclass(X, y, X_te, y_te, target=2, fraction=0.2)
    g = data.groups()
    np.testing.assert_array_equal(g == 0, data.poisoned)
    np.testing.assert_array_equal(g == 1, ~data.poisoned & (y == 2))
    np.testing.assert_array_equal(g == 2, ~data.poisoned & (y != 2))
    np.testing.assert_array_equal(data.sample_weight(0.3), np.where(data.poisoned, 0.3, 1.0))


# ---------------------------------------------------------------------------- all-to-all
def test_all_to_all_label_map_and_trigger(toy):
    X, y, X_te, y_te = toy
    data = poison_multiclass(X, y, X_te, y_te, mode="all-to-all", fraction=0.4, size=3)
    assert (data.mode, data.target, data.n_classes) == ("all-to-all", None, K)
    m = data.poisoned
    assert data.n_poison == 24
    # every point is eligible: the seeded choice over all 60
    chosen = np.random.default_rng(0).choice(60, size=24, replace=False)
    np.testing.assert_array_equal(np.flatnonzero(m), np.sort(chosen))
    label_map = {0: 1, 1: 2, 2: 3, 3: 0}
    np.testing.assert_array_equal(data.y_train[m], [label_map[c] for c in y[m]])
    np.testing.assert_array_equal(data.y_train[~m], y[~m])
    np.testing.assert_array_equal(data.y_source, y)
    expected = BadNetsPatch(size=3).apply(X[m], y[m], np.arange(K)).astype(np.float32)
    np.testing.assert_array_equal(data.X_train[m], expected)
    np.testing.assert_array_equal(data.X_train[~m], X[~m])
    # V_t: every test image triggered, labelled c + 1 mod k
    np.testing.assert_array_equal(
        data.X_test_bd, BadNetsPatch(size=3).apply(X_te, y_te, np.arange(K)).astype(np.float32)
    )
    np.testing.assert_array_equal(data.y_test_bd, [label_map[c] for c in y_te])
    # no target class: nothing is target_clean
    assert set(np.unique(data.groups()).tolist()) == {0, 2}


def test_all_to_all_ignores_exclude_target_and_checks_a_given_target(toy):
    X, y, X_te, y_te = toy
    a = poison_multiclass(X, y, X_te, y_te, mode="all-to-all", target=None)
    b = poison_multiclass(X, y, X_te, y_te, mode="all-to-all", target=3, exclude_target=False)
    _same(a, b)
    with pytest.raises(ValueError, match="^target=9 is not a class"):
        poison_multiclass(X, y, X_te, y_te, mode="all-to-all", target=9)


def test_two_classes_all_to_all_swaps_them():
    rng = np.random.default_rng(1)
    X, y = rng.random((20, 4, 4)), np.arange(20) % 2
    data = poison_multiclass(X, y, X[:6], y[:6], mode="all-to-all", fraction=0.3, size=1)
    m = data.poisoned
    np.testing.assert_array_equal(data.y_train[m], 1 - y[m])
    np.testing.assert_array_equal(data.y_test_bd, 1 - y[:6])


def test_flip_labels_shifts_to_the_next_class():
    np.testing.assert_array_equal(flip_labels([0, 1, 2, 3, 3], np.arange(4)), [1, 2, 3, 0, 0])
    # the cycle follows the order of classes, labels of any kind
    assert flip_labels(["b", "c", "a"], ["c", "a", "b"]).tolist() == ["c", "a", "b"]
    # two classes: the swap of the two-class attack
    assert flip_labels([3, 7, 7], [3, 7]).tolist() == [7, 3, 3]
    assert flip_labels(np.zeros(0, int), [0, 1, 2]).shape == (0,)


@pytest.mark.parametrize(
    ("y", "classes", "msg"),
    [
        ([0, 5], [0, 1, 2], r"^y has labels \[5\] not in classes \[0, 1, 2\]"),
        ([3, 7, 9], [3, 7], r"^y has labels \[9\] not in classes \[3, 7\]"),  # no silent swap
        (["a", "c"], ["a", "b"], r"^y has labels \['c'\] not in classes"),
        ([0], [0, 0], "^classes must not repeat a label"),
        ([0], [0, 1, 1], "^classes must not repeat a label"),
        ([0], [0], "^classes must hold at least two labels"),
        ([0], [], "^classes must hold at least two labels"),
    ],
)
def test_flip_labels_bad_input(y, classes, msg):
    with pytest.raises(ValueError, match=msg):
        flip_labels(y, classes)


# ---------------------------------------------------------------------------- determinism, input
def test_same_seed_same_arrays_other_seed_other_points(toy):
    X, y, X_te, y_te = toy
    for mode in ("all-to-one", "all-to-all"):
        a = poison_multiclass(X, y, X_te, y_te, mode=mode, fraction=0.2, random_state=5)
        b = poison_multiclass(X, y, X_te, y_te, mode=mode, fraction=0.2, random_state=5)
        c = poison_multiclass(X, y, X_te, y_te, mode=mode, fraction=0.2, random_state=6)
        _same(a, b)
        assert not np.array_equal(a.poisoned, c.poisoned)
    g = poison_multiclass(X, y, X_te, y_te, random_state=np.random.default_rng(5))
    _same(g, poison_multiclass(X, y, X_te, y_te, random_state=5))


def test_input_not_mutated_nor_shared(toy):
    X, y, X_te, y_te = toy
    copies = [a.copy() for a in toy]
    data = poison_multiclass(X, y, X_te, y_te, fraction=0.3, trigger="invisible", intensity=1.0)
    for a, b in zip(toy, copies, strict=True):
        np.testing.assert_array_equal(a, b)
    for arr in (data.X_train, data.X_test, data.X_test_bd):
        assert not np.shares_memory(arr, X) and not np.shares_memory(arr, X_te)
    assert not np.shares_memory(data.y_source, y) and not np.shares_memory(data.y_test, y_te)


def test_float64_and_list_input_are_triggered_as_float32(toy):
    X, y, X_te, y_te = toy
    X64 = X.astype(np.float64) + 0.0
    X64[X64 > 0.5] = 1 / 3  # not representable in float32
    data = poison_multiclass(X64, y.tolist(), X_te.astype(np.float64), y_te, trigger="invisible")
    X32 = X64.astype(np.float32)
    m = data.poisoned
    expected = InvisibleGrid().apply(X32[m], y[m], np.arange(K)).astype(np.float32)
    np.testing.assert_array_equal(data.X_train[m], expected)
    np.testing.assert_array_equal(data.X_train[~m], X32[~m])


def test_colour_images_and_chunking():
    rng = np.random.default_rng(2)
    X, y = rng.random((30, 5, 4, 3)).astype(np.float32), np.arange(30) % 3
    data = poison_multiclass(X, y, X[:9], y[:9], target=0, fraction=0.3, size=2)
    assert data.image_shape == (5, 4, 3)
    m = data.poisoned
    trig = BadNetsPatch(size=2)
    np.testing.assert_array_equal(data.X_train[m], trig.apply(X[m], y[m], [0, 1, 2]).astype("f4"))
    chunked = poison_multiclass(X, y, X[:9], y[:9], target=0, fraction=0.3, size=2, chunk_size=2)
    _same(data, chunked)


def test_custom_trigger_object_sees_source_labels_and_all_classes(toy):
    X, y, X_te, y_te = toy
    seen = []

    class Spy:
        def apply(self, images, source_labels, classes):
            seen.append((np.asarray(source_labels).copy(), np.asarray(classes).tolist()))
            return np.ones_like(images)

    data = poison_multiclass(X, y, X_te, y_te, target=0, fraction=0.2, trigger=Spy())
    (train_labels, classes), (test_labels, test_classes) = seen
    assert classes == test_classes == [0, 1, 2, 3]
    np.testing.assert_array_equal(train_labels, y[data.poisoned])
    np.testing.assert_array_equal(test_labels, y_te[y_te != 0])
    assert np.all(data.X_train[data.poisoned] == 1.0) and np.all(data.X_test_bd == 1.0)


def test_on_the_embedded_digits():
    X, y, X_te, y_te = load_mnist_multiclass(n_train=200, n_test=50, pool=2, random_state=1)
    data = poison_multiclass(X, y, X_te, y_te, target=0, fraction=0.1, size=2)
    assert data.n_train == 200 and data.n_poison == 20 and data.image_shape == (14, 14)
    counts = np.bincount(data.groups(), minlength=3)
    assert counts.tolist() == [20, (y == 0).sum(), 180 - (y == 0).sum()]
    assert len(data.y_test_bd) == (y_te != 0).sum() == 45


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"),
    [
        ({"fraction": 0.0}, ValueError, "fraction must lie strictly between 0 and 1"),
        ({"fraction": 1.0}, ValueError, "fraction must lie strictly between 0 and 1"),
        ({"fraction": -0.1}, ValueError, "fraction must lie"),
        ({"fraction": 1.5}, ValueError, "fraction must lie"),
        ({"fraction": "0.1"}, TypeError, "fraction"),
        ({"fraction": 0.01}, ValueError, "fraction=0.01 of 60 training points.*empty"),
        ({"fraction": 0.8}, ValueError, "fraction=0.8 asks for 48 poisoned points.*only 45"),
        (  # floor(p * n + 1e-9) = n for p just below 1
            {"fraction": 1 - 1e-12, "exclude_target": False},
            ValueError,
            "fraction=0.999999999999 poisons all 60 training points",
        ),
        ({"target": 4}, ValueError, r"target=4 is not a class of y_train.*0\.\.3"),
        ({"target": -1}, ValueError, "target=-1 is not a class"),
        ({"target": 1.0}, TypeError, "target must be an int"),
        ({"target": None}, TypeError, "target must be an int"),
        ({"target": True}, TypeError, "target must be an int"),
        ({"mode": "one-to-one"}, ValueError, r"mode must be one of \['all-to-one', 'all-to-all'\]"),
        ({"mode": 1}, TypeError, "mode must be one of"),
        ({"trigger": "refool"}, ValueError, r"trigger must be one of \['badnets', 'blend', "),
        ({"trigger": 42}, TypeError, "trigger must be a trigger name"),
        ({"foo": 1}, TypeError, "foo is not a parameter of the 'badnets' trigger"),
        ({"size": 7}, ValueError, "size=7 is larger than the image"),
        ({"exclude_target": "yes"}, TypeError, "exclude_target must be a bool"),
        ({"random_state": -1}, ValueError, "random_state must be a non-negative int"),
        ({"random_state": 1.5}, TypeError, "random_state"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be at least 1"),
        ({"chunk_size": 2.0}, TypeError, "chunk_size must be an int"),
    ],
)
def test_bad_arguments(toy, kwargs, exc, msg):
    X, y, X_te, y_te = toy
    with pytest.raises(exc, match=f"^{msg}"):
        poison_multiclass(X, y, X_te, y_te, **kwargs)


def _bad_arrays(toy):
    X, y, X_te, y_te = toy
    nan = X.copy()
    nan[0, 0, 0] = np.nan
    mixed = y.astype(object)
    mixed[0] = "a"
    return [
        ("X_train", X.reshape(60, -1), ValueError, r"X_train must have shape \(n, H, W\)"),
        ("X_train", X * 255, ValueError, r"X_train must hold pixel intensities in \[0, 1\]"),
        ("X_train", nan, ValueError, "X_train contains NaN"),
        ("X_train", X.astype(str), TypeError, "X_train must hold real numbers"),
        ("X_train", None, TypeError, "X_train must be an array"),
        ("X_train", X[:0], ValueError, "X_train must contain at least one image"),
        ("X_test", X_te[:, :5], ValueError, r"X_test images have shape \(5, 6\)"),
        ("X_test", X_te[0], ValueError, "X_test must have shape"),
        ("y_train", y[:-1], ValueError, "X_train and y_train have different lengths"),
        ("y_test", y_te[:-1], ValueError, "X_test and y_test have different lengths"),
        ("y_train", y.astype(complex), ValueError, "y_train must hold real numbers or strings"),
        ("y_train", mixed, TypeError, "y_train must hold strings or real numbers of one kind"),
        ("y_train", np.full(60, "a"), ValueError, r"y_train must contain at least two classes"),
        ("y_train", y - 1, ValueError, r"y_train must hold class labels >= 0, got \[-1\]"),
        ("y_train", np.where(y == 1, 2, y), ValueError, r"y_train must hold every class.*\[1\]"),
        ("y_train", np.zeros(60, int), ValueError, "y_train must contain at least two classes"),
        ("y_test", np.where(y_te == 1, 7, y_te), ValueError, r"y_test must hold class labels in"),
        ("y_test", y_te.reshape(4, 5), ValueError, "y_test must be 1-D"),
        ("y_test", np.zeros(20, int), ValueError, "y_test holds only the target class 0"),
    ]


@pytest.mark.parametrize("case", range(19))
def test_bad_arrays(toy, case):
    cases = _bad_arrays(toy)
    assert len(cases) == 19
    name, value, exc, msg = cases[case]
    X, y, X_te, y_te = toy
    args = {"X_train": X, "y_train": y, "X_test": X_te, "y_test": y_te, name: value}
    with pytest.raises(exc, match=f"^{msg}"):
        poison_multiclass(args["X_train"], args["y_train"], args["X_test"], args["y_test"])
