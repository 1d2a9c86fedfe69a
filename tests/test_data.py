"""Tests of backdoor_curves.data.BackdoorData: the D, P, V, V_t container and its checks."""

import numpy as np
import pytest

from backdoor_curves.data import BackdoorData, ImageBackdoorData


def _sets(labels=(0, 1), d=3):
    rng = np.random.default_rng(0)
    a, b = labels
    X_clean = rng.normal(size=(10, d))
    y_clean = np.array([a, b] * 5)
    X_poison = rng.normal(size=(3, d))
    y_poison = np.array([b, b, a])
    X_test = rng.normal(size=(4, d))
    y_test = np.array([a, b, a, b])
    X_test_bd = X_test + 1.0
    y_test_bd = np.array([b, a, b, a])
    return dict(
        X_clean=X_clean,
        y_clean=y_clean,
        X_poison=X_poison,
        y_poison=y_poison,
        X_test=X_test,
        y_test=y_test,
        X_test_bd=X_test_bd,
        y_test_bd=y_test_bd,
    )


def test_string_labels_sorted_and_encoded():
    data = BackdoorData(**_sets(("dog", "cat")))
    assert data.classes.tolist() == ["cat", "dog"]
    np.testing.assert_array_equal(data.encode(["cat", "dog", "dog"]), [-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(data.encode(data.y_clean), np.tile([1.0, -1.0], 5))
    assert data.encode(data.y_poison).dtype == np.float64


def test_integer_labels_second_sorted_is_plus_one():
    data = BackdoorData(**_sets((7, 1)))
    assert data.classes.tolist() == [1, 7]
    np.testing.assert_array_equal(data.encode([7, 1]), [1.0, -1.0])


def test_sizes_and_stacked_training_set():
    s = _sets()
    data = BackdoorData(**s)
    assert (data.n_clean, data.n_poison, data.n_features) == (10, 3, 3)
    np.testing.assert_array_equal(data.X_train, np.vstack([s["X_clean"], s["X_poison"]]))
    np.testing.assert_array_equal(data.y_train, np.r_[s["y_clean"], s["y_poison"]])
    np.testing.assert_array_equal(data.poison_mask, [False] * 10 + [True] * 3)
    assert data.X_train.dtype == np.float64
    assert "n_clean=10" in repr(data) and "n_poison=3" in repr(data)


@pytest.mark.parametrize("beta", [0.0, 0.25, 1.0])
def test_sample_weight(beta):
    data = BackdoorData(**_sets())
    w = data.sample_weight(beta)
    assert w.shape == (13,)
    np.testing.assert_array_equal(w[:10], 1.0)
    np.testing.assert_array_equal(w[10:], beta)
    np.testing.assert_array_equal(w[data.poison_mask], beta)


def test_image_shape_and_list_input():
    s = _sets(d=4)
    s = {k: v.tolist() for k, v in s.items()}
    data = BackdoorData(**s, image_shape=(2, 2))
    assert data.image_shape == (2, 2)
    assert isinstance(data.X_clean, np.ndarray) and data.X_clean.dtype == np.float64
    with pytest.raises(ValueError, match=r"^image_shape \(3, 3\) does not hold 4 features"):
        BackdoorData(**_sets(d=4), image_shape=(3, 3))


@pytest.mark.parametrize("name", ["X_clean", "X_poison", "X_test", "X_test_bd"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_features(name, bad):
    s = _sets()
    s[name] = s[name].copy()
    s[name][1, 2] = bad
    with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity"):
        BackdoorData(**s)


def test_nan_in_float_labels():
    s = _sets()
    s["y_poison"] = np.array([1.0, np.nan, 0.0])
    s["y_clean"] = s["y_clean"].astype(float)
    with pytest.raises(ValueError, match="^y_poison contains NaN or infinity"):
        BackdoorData(**s)


@pytest.mark.parametrize(
    ("xname", "yname"),
    [
        ("X_clean", "y_clean"),
        ("X_poison", "y_poison"),
        ("X_test", "y_test"),
        ("X_test_bd", "y_test_bd"),
    ],
)
def test_mismatched_lengths(xname, yname):
    s = _sets()
    s[yname] = s[yname][:-1]
    with pytest.raises(ValueError, match=f"^{xname} and {yname} have different lengths"):
        BackdoorData(**s)


@pytest.mark.parametrize("name", ["X_clean", "X_poison", "X_test", "X_test_bd"])
def test_wrong_dims(name):
    s = _sets()
    s[name] = s[name][:, 0]
    with pytest.raises(ValueError, match=f"^{name} must be 2-D"):
        BackdoorData(**s)


@pytest.mark.parametrize("name", ["X_poison", "X_test", "X_test_bd"])
def test_feature_count_mismatch(name):
    s = _sets()
    s[name] = s[name][:, :2]
    with pytest.raises(ValueError, match=f"^{name} has 2 features, expected 3"):
        BackdoorData(**s)


def test_wrong_label_dims_and_types():
    s = _sets()
    s["y_test"] = np.zeros((4, 2))
    with pytest.raises(ValueError, match="^y_test must be 1-D"):
        BackdoorData(**s)
    s = _sets()
    s["X_clean"] = np.full((10, 3), "a")
    with pytest.raises(TypeError, match="^X_clean must be a 2-D array of numbers"):
        BackdoorData(**s)
    s = _sets()
    s["X_test"] = None
    with pytest.raises(TypeError, match="^X_test"):
        BackdoorData(**s)


def test_column_vector_labels_are_accepted():
    s = _sets()
    s["y_clean"] = s["y_clean"][:, None]
    data = BackdoorData(**s)
    assert data.y_clean.shape == (10,)


@pytest.mark.parametrize("name", ["y_poison", "y_test", "y_test_bd"])
def test_third_class(name):
    s = _sets()
    s[name] = s[name].copy()
    s[name][0] = 5
    with pytest.raises(ValueError, match=rf"^{name} has labels \[5\] not in y_clean's classes"):
        BackdoorData(**s)


def test_three_classes_in_y_clean():
    s = _sets()
    s["y_clean"] = np.arange(10) % 3
    with pytest.raises(ValueError, match="^y_clean must contain exactly two classes.*got 3"):
        BackdoorData(**s)


def test_single_class_y_clean():
    s = _sets()
    s["y_clean"] = np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match="^y_clean must contain exactly two classes.*got 1"):
        BackdoorData(**s)


def test_empty_poisoning_set():
    s = _sets()
    s["X_poison"] = np.zeros((0, 3))
    s["y_poison"] = np.zeros(0, dtype=int)
    with pytest.raises(ValueError, match="^X_poison is empty"):
        BackdoorData(**s)


def test_empty_clean_or_test_set():
    s = _sets()
    s["X_test"] = np.zeros((0, 3))
    s["y_test"] = np.zeros(0, dtype=int)
    with pytest.raises(ValueError, match="^X_test must contain at least one sample"):
        BackdoorData(**s)


# ---------------------------------------------------------------------------- ImageBackdoorData
def _image_sets(mode="all-to-one"):
    """A valid k = 3 container by hand: 8 training images (rows 1, 4, 6 poisoned), 4 test images."""
    rng = np.random.default_rng(3)
    X = rng.random((8, 5, 5)).astype(np.float32)
    y_source = np.array([0, 1, 2, 0, 2, 1, 1, 0])
    poisoned = np.zeros(8, bool)
    poisoned[[1, 4, 6]] = True
    y_test = np.array([0, 1, 2, 1])
    if mode == "all-to-one":
        y_train = np.where(poisoned, 0, y_source)
        target, X_test_bd, y_test_bd = 0, np.ones((3, 5, 5)), np.zeros(3, int)
    else:
        y_train = np.where(poisoned, (y_source + 1) % 3, y_source)
        target, X_test_bd, y_test_bd = None, np.ones((4, 5, 5)), (y_test + 1) % 3
    return dict(
        X_train=X, y_train=y_train, poisoned=poisoned, y_source=y_source,
        X_test=rng.random((4, 5, 5)), y_test=y_test, X_test_bd=X_test_bd, y_test_bd=y_test_bd,
        n_classes=3, target=target, mode=mode,
    )  # fmt: skip


def test_image_data_fields_sizes_and_dtypes():
    s = _image_sets()
    data = ImageBackdoorData(**s)
    assert data.X_train is s["X_train"]  # float32 input is kept, not copied
    assert data.X_test.dtype == data.X_test_bd.dtype == np.float32  # float64 input converted
    np.testing.assert_array_equal(data.X_test, s["X_test"].astype(np.float32))
    for name in ("y_train", "y_source", "y_test", "y_test_bd"):
        assert getattr(data, name).dtype == np.int64
        assert not np.shares_memory(getattr(data, name), s[name])
    assert data.poisoned.dtype == np.bool_ and not np.shares_memory(data.poisoned, s["poisoned"])
    assert (data.n_train, data.n_poison, data.poison_rate) == (8, 3, 3 / 8)
    assert data.image_shape == (5, 5)
    assert (data.n_classes, data.target, data.mode) == (3, 0, "all-to-one")
    assert repr(data) == (
        "ImageBackdoorData(mode='all-to-one', target=0, n_classes=3, n_train=8, n_poison=3, "
        "n_test=4, n_test_bd=3, image_shape=(5, 5))"
    )


def test_image_data_is_frozen():
    import dataclasses

    data = ImageBackdoorData(**_image_sets())
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.target = 1


def test_image_data_sample_weight():
    data = ImageBackdoorData(**_image_sets())
    for beta in (0, 0.25, 1.0, np.float32(0.5)):
        w = data.sample_weight(beta)
        assert w.dtype == np.float64 and w.shape == (8,)
        np.testing.assert_array_equal(w, [1, beta, 1, 1, beta, 1, beta, 1])


@pytest.mark.parametrize(
    ("beta", "exc", "msg"),
    [
        (-0.1, ValueError, r"beta must lie in \[0, 1\]"),
        (1.5, ValueError, r"beta must lie in \[0, 1\]"),
        (np.nan, ValueError, "beta contains NaN"),
        ("0.5", TypeError, "beta must be a real number"),
        (True, TypeError, "beta must be a real number"),
        ([0.5], TypeError, "beta must be a real number"),
    ],
)
def test_image_data_bad_beta(beta, exc, msg):
    data = ImageBackdoorData(**_image_sets())
    with pytest.raises(exc, match=f"^{msg}"):
        data.sample_weight(beta)


def test_image_data_groups():
    assert ImageBackdoorData.GROUPS == ("poisoned", "target_clean", "other_clean")
    g = ImageBackdoorData(**_image_sets()).groups()
    assert g.dtype == np.int8
    # y_source [0, 1, 2, 0, 2, 1, 1, 0], poisoned rows 1, 4, 6, target 0
    np.testing.assert_array_equal(g, [1, 0, 2, 1, 0, 2, 0, 1])
    g = ImageBackdoorData(**_image_sets("all-to-all")).groups()
    np.testing.assert_array_equal(g, [2, 0, 2, 2, 0, 2, 0, 2])  # no target_clean group


def test_image_data_all_to_one_poisoned_target_rows_are_poisoned_group():
    s = _image_sets()
    s["poisoned"] = s["poisoned"].copy()
    s["poisoned"][0] = True  # a target-class image triggered (exclude_target=False): label stays 0
    data = ImageBackdoorData(**s)
    assert data.groups()[0] == 0 and data.n_poison == 4


def test_to_nchw():
    rng = np.random.default_rng(0)
    gray = rng.random((3, 4, 5))
    out = ImageBackdoorData.to_nchw(gray)
    assert out.shape == (3, 1, 4, 5) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out[:, 0], gray.astype(np.float32))
    colour = rng.random((3, 4, 5, 2)).astype(np.float32)
    out = ImageBackdoorData.to_nchw(colour)
    assert out.shape == (3, 2, 4, 5) and out.flags.c_contiguous
    for c in range(2):
        np.testing.assert_array_equal(out[:, c], colour[..., c])
    data = ImageBackdoorData(**_image_sets())
    assert data.to_nchw(data.X_train).shape == (8, 1, 5, 5)
    with pytest.raises(ValueError, match=r"^X must have shape \(n, H, W\)"):
        ImageBackdoorData.to_nchw(gray[0])
    with pytest.raises(TypeError, match="^X must"):
        ImageBackdoorData.to_nchw(None)


def _with(mode="all-to-one", **changes):
    s = _image_sets(mode)
    s.update(changes)
    return s


def _image_errors():
    s = _image_sets()
    y_train, y_source, poisoned = s["y_train"], s["y_source"], s["poisoned"]
    y_wrong = y_train.copy()
    y_wrong[1] = 2
    y_src_wrong = y_source.copy()
    y_src_wrong[0] = 1
    X_nan = s["X_train"].copy()
    X_nan[0, 0, 0] = np.nan
    a2a = _image_sets("all-to-all")
    a2a_wrong = a2a["y_train"].copy()
    a2a_wrong[1] = 0
    return [
        (_with(mode="bogus"), ValueError, r"mode must be one of \['all-to-one', 'all-to-all'\]"),
        (_with(mode=None), TypeError, "mode must be one of"),
        (_with(n_classes=1), ValueError, "n_classes must be an int >= 2"),
        (_with(n_classes=3.0), TypeError, "n_classes must be an int"),
        (_with(target=3), ValueError, r"target=3 is not a class: the classes are 0\.\.2"),
        (_with(target=None), TypeError, "target must be an int"),
        (_with(target=-1), ValueError, "target must be an int >= 0"),
        (_with("all-to-all", target=0), ValueError, "target must be None in all-to-all mode"),
        (_with(X_train=s["X_train"] * 2), ValueError, r"X_train must hold pixel intensities"),
        (_with(X_train=X_nan), ValueError, "X_train contains NaN"),
        (_with(X_train=s["X_train"][0]), ValueError, "X_train must have shape"),
        (_with(X_train=s["X_train"][:7]), ValueError, "X_train and y_train have different"),
        (_with(X_test=s["X_test"][:, :4]), ValueError, r"X_test images have shape \(4, 5\)"),
        (_with(X_test_bd=-s["X_test_bd"]), ValueError, "X_test_bd must hold pixel intensities"),
        (_with(y_test=s["y_test"][:3]), ValueError, "X_test and y_test have different lengths"),
        (_with(y_train=y_train.astype(float)), TypeError, "y_train must hold integer class"),
        (_with(y_train=np.where(poisoned, 0, 3)), ValueError, r"y_train must hold class labels in"),
        (_with(y_test=[0, 1, 5, 1]), ValueError, r"y_test must hold class labels in 0\.\.2"),
        (_with(y_train=y_wrong), ValueError, r"y_train must carry the attacker's label \(the tar"),
        (_with("all-to-all", y_train=a2a_wrong), ValueError, r"y_train must carry.*\(y_source \+"),
        (_with(y_source=y_src_wrong), ValueError, "y_source must equal y_train on every clean row"),
        (_with(y_source=y_source[:7]), ValueError, "y_train and y_source have different lengths"),
        (_with(y_test_bd=[0, 1, 0]), ValueError, "y_test_bd must be the target 0 everywhere"),
        (_with(y_test_bd=[0, 0]), ValueError, "X_test_bd and y_test_bd have different lengths"),
        (_with(poisoned=np.flatnonzero(poisoned)), TypeError, "poisoned must be a boolean mask"),
        (_with(poisoned=None), TypeError, "poisoned must be a boolean mask"),
        (_with(poisoned=poisoned[:7]), ValueError, "poisoned and y_train have different lengths"),
        (_with(poisoned=poisoned[None]), ValueError, "poisoned must be 1-D"),
        (_with(poisoned=np.zeros(8, bool)), ValueError, "poisoned marks no training row"),
        (_with(poisoned=np.ones(8, bool)), ValueError, "poisoned marks every training row"),
    ]


@pytest.mark.parametrize("case", range(30))
def test_image_data_bad_fields(case):
    cases = _image_errors()
    assert len(cases) == 30
    fields, exc, msg = cases[case]
    with pytest.raises(exc, match=f"^{msg}"):
        ImageBackdoorData(**fields)


def test_x_train_is_stacked_once_read_only_and_not_pickled(mnist_small):
    import copy as copy_module
    import pickle

    fresh = copy_module.copy(mnist_small)
    fresh.__dict__.pop("_X_train", None)
    before = len(pickle.dumps(fresh))
    X = fresh.X_train
    assert fresh.X_train is X and not X.flags.writeable
    np.testing.assert_array_equal(X, np.vstack([fresh.X_clean, fresh.X_poison]))
    assert len(pickle.dumps(fresh)) == before  # the stacked copy stays home
    fresh.X_poison = fresh.X_poison[:1]  # another array: stacked again
    assert fresh.X_train.shape[0] == fresh.n_clean + 1
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(mnist_small)).X_train, X)


def test_feature_matrices_are_read_only_copies_shared_without_copying():
    import pickle

    from backdoor_curves._validation import check_matrix

    sets = _sets()
    data = BackdoorData(**sets)
    for name in ("X_clean", "X_poison", "X_test", "X_test_bd"):
        X = getattr(data, name)
        assert not X.flags.writeable and not np.shares_memory(X, sets[name])
        assert check_matrix(X, name) is X  # nobody can change it: no second copy
        with pytest.raises(ValueError, match="read-only"):
            X[0, 0] = 1.0
        assert not getattr(pickle.loads(pickle.dumps(data)), name).flags.writeable
    sets["X_clean"][0, 0] = 99.0  # the user's array stays theirs
    assert data.X_clean[0, 0] != 99.0

    # a read-only view of a writable array, or a read-only int array, is still copied
    base = np.arange(6.0).reshape(3, 2)
    view = base[:]
    view.flags.writeable = False
    assert not np.shares_memory(check_matrix(view, "X"), base)
    ints = np.arange(6).reshape(3, 2)
    ints.flags.writeable = False
    assert check_matrix(ints, "X").dtype == np.float64
    # a read-only array is checked for NaN the first time it is seen (then remembered)
    bad = np.array([[1.0, np.nan]])
    bad.flags.writeable = False
    for _ in range(2):
        with pytest.raises(ValueError, match="^X contains NaN"):
            check_matrix(bad, "X")
