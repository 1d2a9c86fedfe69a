"""Tests of backdoor_curves.data.BackdoorData: the D, P, V, V_t container and its checks."""

import numpy as np
import pytest

from backdoor_curves.data import BackdoorData


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
