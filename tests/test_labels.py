"""Labels of any kind at every entry point (issue 14): one conversion, results in the user's values.

A test matrix over label types x entry points: the labels of a small problem are given as numpy
strings, integers, floats and booleans, object arrays, lists and pandas Series (the ``str`` dtype
of pandas 3, ``object``, ``string``, ``category``, ``bool``/``boolean``, ``Int64``), and each
entry point must give exactly the result it gives with plain numpy labels (same decision values,
same curves, same poisoned arrays), reported in the user's own values (``classes_``,
``predict``, ``BackdoorData.classes``, ``ImageBackdoorData.classes``). Labels of no single kind
(strings and numbers mixed, missing values, bytes, dates) are refused with an error naming the
argument (a TypeError; a ValueError for NaN). Also here: unknown labels (``BackdoorData.encode``,
``flip_labels``, ``score``), numpy scalars in messages, a learner class given for an instance, and
``BackdoorData.training_set`` for scikit-learn's cross-validation.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from random_data import random_backdoor_data
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import KFold, cross_val_score

import backdoor_curves as bc
from backdoor_curves._validation import (
    check_betas,
    check_labels,
    check_positive,
    check_random_state,
    check_seed,
    encode_labels,
    show_value,
)
from backdoor_curves.attacks.multiclass import poison_multiclass
from backdoor_curves.attacks.poisoning import flip_labels
from backdoor_curves.data import BackdoorData, ImageBackdoorData

NEG, POS = "cat", "dog"  # the reference labels: sorted, so "dog" is classes[1] (+1)


def _typed(values, dtype=None):
    """The converter of a label type: reference labels (numpy str) -> labels of that type."""

    def convert(y):
        y = np.asarray(y)
        out = np.where(y == POS, values[1], values[0])
        return out if dtype is None else out.astype(dtype)

    return convert


#: label type -> (converter from the reference str labels, the user's (negative, positive) values)
BINARY = {
    "numpy_str": (lambda y: np.asarray(y), (NEG, POS)),
    "numpy_object_str": (lambda y: np.asarray(y).astype(object), (NEG, POS)),
    "list_str": (lambda y: np.asarray(y).tolist(), (NEG, POS)),
    "pandas_str": (lambda y: pd.Series(np.asarray(y)), (NEG, POS)),  # pandas 3: dtype "str"
    "pandas_object": (lambda y: pd.Series(np.asarray(y), dtype=object), (NEG, POS)),
    "pandas_string": (lambda y: pd.Series(np.asarray(y), dtype="string"), (NEG, POS)),
    "pandas_category": (lambda y: pd.Series(np.asarray(y), dtype="category"), (NEG, POS)),
    # categories in another order: classes are still sorted by value, as in scikit-learn
    "pandas_category_reordered": (
        lambda y: pd.Series(pd.Categorical(np.asarray(y), categories=[POS, NEG])),
        (NEG, POS),
    ),
    "dataframe_column": (lambda y: pd.DataFrame({"label": np.asarray(y)})["label"], (NEG, POS)),
    "numpy_int": (_typed((0, 1)), (0, 1)),
    "numpy_int_1_7": (_typed((1, 7)), (1, 7)),
    "numpy_uint8": (_typed((3, 9), np.uint8), (3, 9)),
    "numpy_float": (_typed((-1.0, 1.0)), (-1.0, 1.0)),
    "numpy_bool": (_typed((False, True)), (False, True)),
    "numpy_object_int": (lambda y: _typed((0, 1))(y).astype(object), (0, 1)),
    "list_int": (lambda y: _typed((0, 1))(y).tolist(), (0, 1)),
    "pandas_bool": (lambda y: pd.Series(_typed((False, True))(y)), (False, True)),
    "pandas_boolean": (
        lambda y: pd.Series(_typed((False, True))(y), dtype="boolean"),
        (False, True),
    ),
    "pandas_int": (lambda y: pd.Series(_typed((1, 7))(y)), (1, 7)),
    "pandas_Int64": (lambda y: pd.Series(_typed((1, 7))(y), dtype="Int64"), (1, 7)),
    "pandas_int_category": (lambda y: pd.Series(_typed((1, 7))(y), dtype="category"), (1, 7)),
}
KINDS = list(BINARY)


def _user(reference_labels, values) -> list:
    """The reference str labels in the user's values (Python objects, for exact comparisons)."""
    neg, pos = values
    return [pos if v == POS else neg for v in np.asarray(reference_labels).tolist()]


def _same_values(got, expected: list) -> None:
    """Equal labels of the same Python type (so True is not 1 and "1" is not 1)."""
    got = np.asarray(got).tolist()
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


@pytest.fixture(scope="module")
def ref() -> BackdoorData:
    """A small random two-class problem with the reference labels "cat" / "dog"."""
    return random_backdoor_data(0, n_clean=60, n_poison=8, n_test=24, d=4, labels=(NEG, POS))


def _converted(data: BackdoorData, convert, **kwargs) -> BackdoorData:
    return BackdoorData(
        data.X_clean, convert(data.y_clean), data.X_poison, convert(data.y_poison),
        data.X_test, convert(data.y_test), data.X_test_bd, convert(data.y_test_bd), **kwargs,
    )  # fmt: skip


def test_check_labels_keeps_the_users_values():
    assert check_labels(np.array(["a", "b"]), "y").dtype.kind == "U"
    assert check_labels(["a", "b"], "y").dtype.kind == "U"
    assert check_labels(np.array(["a", "b"], dtype=object), "y").dtype == object
    assert check_labels(pd.Series(["a", "b"], dtype="category"), "y").tolist() == ["a", "b"]
    assert check_labels(np.array([1, 2.5], dtype=object), "y").dtype == np.float64
    assert check_labels(np.array([True, False], dtype=object), "y").dtype == np.bool_
    assert check_labels([], "y", allow_empty=True).shape == (0,)
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        assert check_labels(np.array([[1], [0]]), "y", warn_column=True).tolist() == [1, 0]
    with pytest.raises(TypeError, match=r"^y must hold strings or real numbers of one kind"):
        check_labels(["a", 1], "y")  # numpy alone would make "1" of the 1
    with pytest.raises(TypeError, match=r"^y must hold strings or real numbers of one kind"):
        check_labels([True, 2], "y")  # and 1 of the True
    with pytest.raises(ValueError, match=r"^y must contain at least one sample"):
        check_labels([], "y")
    with pytest.raises(ValueError, match=r"^y must be 1-D"):
        check_labels(np.zeros((2, 2)), "y")


def test_pandas_3_default_string_dtype_is_covered():
    """The matrix's "pandas_str" case is the dtype the issue reports (pandas 3: "str")."""
    series = pd.Series(["a", "b"])
    if int(pd.__version__.split(".")[0]) >= 3:
        assert str(series.dtype) == "str"
    assert check_labels(series, "y").tolist() == ["a", "b"]


# ---------------------------------------------------------------------------- learners
LEARNERS = {
    "logistic": bc.LogisticLearner(C=2.0),
    "ridge": bc.RidgeLearner(alpha=0.5),
    "linear_svm": bc.LinearSVMLearner(C=0.5),
    "rbf_svm": bc.RBFSVMLearner(C=1.0, gamma=0.3),
}


@pytest.mark.parametrize("learner", LEARNERS.values(), ids=LEARNERS.keys())
@pytest.mark.parametrize("kind", KINDS)
def test_learner_fit_predict_score(ref, learner, kind):
    convert, values = BINARY[kind]
    X, y, X_te, y_te = ref.X_train, ref.y_train, ref.X_test, ref.y_test
    reference = clone(learner).fit(X, y)
    model = clone(learner).fit(X, convert(y))
    _same_values(model.classes_, list(values))
    np.testing.assert_allclose(
        model.decision_function(X_te), reference.decision_function(X_te), rtol=1e-12, atol=1e-12
    )
    _same_values(model.predict(X_te), _user(reference.predict(X_te), values))
    assert model.score(X_te, convert(y_te)) == reference.score(X_te, y_te)
    np.testing.assert_array_equal(model.encode(convert(y_te)), reference.encode(y_te))
    np.testing.assert_allclose(
        model.loss_per_sample(X_te, convert(y_te)), reference.loss_per_sample(X_te, y_te)
    )


@pytest.mark.parametrize("kind", ["numpy_str", "pandas_str", "pandas_category", "pandas_int"])
def test_learner_with_dataframe_X_and_weights(ref, kind):
    """X as a pandas DataFrame and sample weights as a Series keep working, as in scikit-learn."""
    convert, values = BINARY[kind]
    X, y = ref.X_train, ref.y_train
    w = ref.sample_weight(0.3)
    reference = bc.LogisticLearner().fit(X, y, w)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = bc.LogisticLearner().fit(frame, convert(y), pd.Series(w))
    np.testing.assert_allclose(model.decision_function(frame), reference.decision_function(X))
    _same_values(model.predict(frame), _user(reference.predict(X), values))
    assert model.score(frame, convert(y), sample_weight=w) == reference.score(X, y, w)


# ---------------------------------------------------------------------------- data and measures
@pytest.mark.parametrize("kind", KINDS)
def test_backdoor_data_reports_user_values(ref, kind):
    convert, values = BINARY[kind]
    data = _converted(ref, convert)
    _same_values(data.classes, list(values))
    for name in BackdoorData.ARRAYS[1::2]:
        _same_values(getattr(data, name), _user(getattr(ref, name), values))
        np.testing.assert_array_equal(
            data.encode(getattr(data, name)), ref.encode(getattr(ref, name))
        )
    _same_values(data.y_train, _user(ref.y_train, values))
    X, y, w = data.training_set(beta=0.5, random_state=3)
    X_ref, y_ref, w_ref = ref.training_set(beta=0.5, random_state=3)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(w, w_ref)
    _same_values(y, _user(y_ref, values))


@pytest.mark.parametrize("learner", [bc.LogisticLearner(C=2.0), bc.LinearSVMLearner(C=0.5)])
@pytest.mark.parametrize("kind", KINDS)
def test_curve_and_slope_through_data(ref, learner, kind):
    """learning_curve and backdoor_slope see the labels only through BackdoorData: same numbers."""
    convert, _ = BINARY[kind]
    data = _converted(ref, convert)
    betas = np.linspace(0, 1, 5)
    expected = bc.learning_curve(learner, ref, betas).to_frame()
    pd.testing.assert_frame_equal(bc.learning_curve(learner, data, betas).to_frame(), expected)
    got, want = bc.backdoor_slope(learner, data), bc.backdoor_slope(learner, ref)
    assert got.derivative == want.derivative and got.backdoor_loss == want.backdoor_loss


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.random((n, 5, 5))


@pytest.mark.parametrize("kind", KINDS)
def test_poison(kind):
    convert, values = BINARY[kind]
    X, X_te = _images(24, 0), _images(8, 1)
    y = np.tile([NEG, POS, POS], 8)
    y_te = np.tile([POS, NEG], 4)
    reference, idx = bc.poison(X, y, X_te, y_te, fraction=0.25, size=2, return_indices=True)
    data, idx2 = bc.poison(
        X, convert(y), X_te, convert(y_te), fraction=0.25, size=2, return_indices=True
    )
    np.testing.assert_array_equal(idx2, idx)
    _same_values(data.classes, list(values))
    for name in BackdoorData.ARRAYS:
        got, want = getattr(data, name), getattr(reference, name)
        if name.startswith("X"):
            np.testing.assert_array_equal(got, want)
        else:
            _same_values(got, _user(want, values))


@pytest.mark.parametrize("kind", KINDS)
def test_flip_labels(kind):
    convert, values = BINARY[kind]
    y, flipped = np.array([NEG, POS, POS, NEG]), np.array([POS, NEG, NEG, POS])
    _same_values(flip_labels(convert(y), np.asarray(values)), _user(flipped, values))


# ---------------------------------------------------------------------------- k classes
NAMES = np.array(["bird", "cat", "dog"])  # sorted: class i is NAMES[i]

#: label type -> (converter from class indices, the classes reported, target of the same class 2)
MULTI = {
    "numpy_int": (lambda y: np.asarray(y), [0, 1, 2], 2),
    "numpy_uint8": (lambda y: np.asarray(y).astype(np.uint8), [0, 1, 2], 2),
    "list_int": (lambda y: np.asarray(y).tolist(), [0, 1, 2], 2),
    "numpy_object_int": (lambda y: np.asarray(y).astype(object), [0, 1, 2], 2),
    "pandas_int": (lambda y: pd.Series(y), [0, 1, 2], 2),
    "pandas_Int64": (lambda y: pd.Series(y, dtype="Int64"), [0, 1, 2], 2),
    "pandas_int_category": (lambda y: pd.Series(y, dtype="category"), [0, 1, 2], 2),
    "numpy_str": (lambda y: NAMES[y], NAMES.tolist(), "dog"),
    "numpy_object_str": (lambda y: NAMES[y].astype(object), NAMES.tolist(), "dog"),
    "list_str": (lambda y: NAMES[y].tolist(), NAMES.tolist(), "dog"),
    "pandas_str": (lambda y: pd.Series(NAMES[y]), NAMES.tolist(), "dog"),
    "pandas_category": (lambda y: pd.Series(NAMES[y], dtype="category"), NAMES.tolist(), "dog"),
    "numpy_float": (lambda y: np.asarray(y) / 2, [0.0, 0.5, 1.0], 1.0),
}


@pytest.fixture(scope="module")
def multi():
    rng = np.random.default_rng(4)
    X, X_te = rng.random((30, 6, 6)).astype(np.float32), rng.random((9, 6, 6)).astype(np.float32)
    return X, rng.permutation(np.arange(30) % 3), X_te, np.arange(9) % 3


def _same_image_data(a: ImageBackdoorData, b: ImageBackdoorData) -> None:
    for name in ("X_train", "y_train", "poisoned", "y_source", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.X_test_bd, b.X_test_bd)
    np.testing.assert_array_equal(a.y_test_bd, b.y_test_bd)
    assert (a.n_classes, a.target, a.mode) == (b.n_classes, b.target, b.mode)


@pytest.mark.parametrize("mode", ["all-to-one", "all-to-all"])
@pytest.mark.parametrize("kind", MULTI)
def test_poison_multiclass(multi, kind, mode):
    convert, classes, target = MULTI[kind]
    X, y, X_te, y_te = multi
    kw = {"mode": mode, "fraction": 0.2, "size": 2, "random_state": 1}
    reference = poison_multiclass(X, y, X_te, y_te, target=2, **kw)
    data = poison_multiclass(X, convert(y), X_te, convert(y_te), target=target, **kw)
    _same_image_data(data, reference)  # class indices, the same arrays
    _same_values(data.classes, classes)  # reported in the user's values
    _same_values(data.classes[data.y_source], np.asarray(convert(y)).tolist())
    if mode == "all-to-one":
        assert data.classes[data.target] == target


@pytest.mark.parametrize("kind", ["numpy_int", "list_int", "numpy_object_int", "pandas_int",
                                  "pandas_Int64", "pandas_int_category"])  # fmt: skip
def test_image_backdoor_data_label_containers(multi, kind):
    convert, _, _ = MULTI[kind]
    ref = poison_multiclass(*multi, target=2, fraction=0.2, size=2)
    fields = {name: getattr(ref, name) for name in ("X_train", "poisoned", "X_test", "X_test_bd")}
    labels = {name: convert(getattr(ref, name)) for name in ("y_train", "y_source", "y_test",
                                                             "y_test_bd")}  # fmt: skip
    data = ImageBackdoorData(**fields, **labels, n_classes=3, target=2, mode="all-to-one")
    _same_image_data(data, ref)
    assert data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.classes, np.arange(3))


def test_image_backdoor_data_classes_field(multi):
    data = poison_multiclass(*multi, target=2, fraction=0.2, size=2)
    named = ImageBackdoorData(**{f: getattr(data, f) for f in (
        "X_train", "y_train", "poisoned", "y_source", "X_test", "y_test", "X_test_bd",
        "y_test_bd", "n_classes", "target", "mode")}, classes=pd.Series(NAMES))  # fmt: skip
    assert named.classes.tolist() == NAMES.tolist()
    assert "classes=['bird', 'cat', 'dog']" in repr(named) and "classes=[" not in repr(data)
    base = {f: getattr(data, f) for f in ("X_train", "y_train", "poisoned", "y_source", "X_test",
                                          "y_test", "X_test_bd", "y_test_bd")}  # fmt: skip
    with pytest.raises(ValueError, match=r"^classes must hold one label per class, n_classes=3"):
        ImageBackdoorData(**base, n_classes=3, target=2, mode="all-to-one", classes=["a", "b"])
    with pytest.raises(ValueError, match="^classes must not repeat a label"):
        ImageBackdoorData(**base, n_classes=3, target=2, mode="all-to-one", classes=[1, 1, 2])
    with pytest.raises(TypeError, match="^classes must hold strings or real numbers of one"):
        ImageBackdoorData(**base, n_classes=3, target=2, mode="all-to-one", classes=["a", 1, 2])


def test_poison_multiclass_named_labels_errors(multi):
    X, y, X_te, y_te = multi
    names, names_te = NAMES[y], NAMES[y_te]
    with pytest.raises(
        ValueError, match=r"^target=0 is not a class of y_train: its classes are \['bird'"
    ):
        poison_multiclass(X, names, X_te, names_te)  # the default target 0 is no label
    with pytest.raises(ValueError, match="^target='cow' is not a class of y_train"):
        poison_multiclass(X, names, X_te, names_te, target="cow")
    with pytest.raises(TypeError, match="^target must be one of y_train's labels"):
        poison_multiclass(X, names, X_te, names_te, target=None)
    with pytest.raises(ValueError, match=r"^y_test has labels \['cow'\] not in y_train's classes"):
        poison_multiclass(X, names, X_te, np.where(y_te == 0, "cow", names_te), target="dog")
    with pytest.raises(
        ValueError, match=r"^y_train must contain at least two classes, got only \['cat'\]"
    ):
        poison_multiclass(X, np.full(30, "cat"), X_te, np.full(9, "cat"), target="cat")
    with pytest.raises(ValueError, match="^y_test holds only the target class 'dog'"):
        poison_multiclass(X, names, X_te, np.full(9, "dog"), target="dog")
    # all-to-all: the default target 0 is not used, so not checked against the labels
    data = poison_multiclass(X, names, X_te, names_te, mode="all-to-all", fraction=0.2, size=2)
    assert data.target is None and data.classes.tolist() == NAMES.tolist()


# ---------------------------------------------------------------------------- refused labels
def _mixed(y):
    out = np.asarray(y).astype(object)
    out[0] = 1
    return out


def _bool_and_int(y):
    out = (np.asarray(y) == POS).astype(object)
    out[0] = 2
    return out


def _none(y):
    out = np.asarray(y).astype(object)
    out[0] = None
    return out


BAD = {
    "mixed_str_int": (_mixed, TypeError, "must hold strings or real numbers of one kind"),
    "mixed_list": (
        lambda y: [1, *np.asarray(y).tolist()[1:]],
        TypeError,
        "must hold strings or real",
    ),
    "bool_and_int": (
        _bool_and_int,
        TypeError,
        r"must hold .* of one kind, got entries of types \['bool', 'int'\]",
    ),
    "none": (_none, TypeError, "must hold .*missing values are not allowed"),
    "pandas_str_missing": (
        lambda y: pd.Series([None, *np.asarray(y).tolist()[1:]]),
        TypeError,
        "must hold .*missing values are not allowed",
    ),
    "pandas_NA": (
        lambda y: pd.Series([pd.NA, *np.asarray(y).tolist()[1:]], dtype="string"),
        TypeError,
        "must hold .*missing values are not allowed",
    ),
    "Int64_NA": (
        lambda y: pd.Series(
            [None, *(np.asarray(y) == POS).astype(int).tolist()[1:]], dtype="Int64"
        ),
        ValueError,
        "contains NaN or infinity",
    ),
    "bytes": (
        lambda y: np.char.encode(np.asarray(y)),
        TypeError,
        r"must hold class labels .*got dtype \|S3",
    ),
    "dates": (
        lambda y: np.where(
            np.asarray(y) == POS, np.datetime64("2020-01-01"), np.datetime64("2021-01-01")
        ),
        TypeError,
        "must hold class labels",
    ),
}


def _entry_points(ref):
    """entry point -> (argument name, call with bad labels)."""
    X, y = ref.X_train, ref.y_train
    fitted = bc.LogisticLearner().fit(X, y)
    images, y_img = _images(12, 0), np.tile([NEG, POS], 6)

    def data(bad, name):
        arrays = {n: getattr(ref, n) for n in BackdoorData.ARRAYS}
        arrays[name] = bad(arrays[name])
        return BackdoorData(**arrays)

    return {
        "fit": ("y", lambda bad: bc.LogisticLearner().fit(X, bad(y))),
        "score": ("y", lambda bad: fitted.score(X, bad(y))),
        "encode": ("y", lambda bad: fitted.encode(bad(y))),
        "BackdoorData.y_clean": ("y_clean", lambda bad: data(bad, "y_clean")),
        "BackdoorData.y_test_bd": ("y_test_bd", lambda bad: data(bad, "y_test_bd")),
        "BackdoorData.encode": ("labels", lambda bad: ref.encode(bad(ref.y_test), "labels")),
        "poison.y_train": ("y_train", lambda bad: bc.poison(images, bad(y_img), images, y_img)),
        "poison.y_test": ("y_test", lambda bad: bc.poison(images, y_img, images, bad(y_img))),
        "poison_multiclass": (
            "y_train",
            lambda bad: poison_multiclass(images, bad(y_img), images, y_img, target=POS),
        ),
        "flip_labels": ("y", lambda bad: flip_labels(bad(y), [NEG, POS])),
    }


ENTRIES = [
    "fit",
    "score",
    "encode",
    "BackdoorData.y_clean",
    "BackdoorData.y_test_bd",
    "BackdoorData.encode",
    "poison.y_train",
    "poison.y_test",
    "poison_multiclass",
    "flip_labels",
]


def test_entry_points_are_all_in_the_matrix(ref):
    assert list(_entry_points(ref)) == ENTRIES


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("entry", ENTRIES)
def test_labels_of_no_kind_are_refused_naming_the_argument(ref, entry, bad):
    name, call = _entry_points(ref)[entry]
    convert, exc, msg = BAD[bad]
    with pytest.raises(exc, match=f"^{name} {msg}"):
        call(convert)


# ---------------------------------------------------------------------------- unknown labels
def test_backdoor_data_encode_refuses_unknown_labels(ref):
    np.testing.assert_array_equal(ref.encode([NEG, POS]), [-1.0, 1.0])
    assert ref.encode([]).shape == (0,)
    with pytest.raises(
        ValueError, match=r"^y has labels \['cow'\] not in classes \['cat', 'dog'\]"
    ):
        ref.encode([NEG, "cow", POS])
    with pytest.raises(ValueError, match=r"^y_new has labels \[0, 1\] not in classes"):
        ref.encode(pd.Series([0, 1, 1]), "y_new")  # numbers for string classes


def test_flip_labels_refuses_unknown_labels():
    with pytest.raises(
        ValueError, match=r"^y has labels \['cow', 'pig'\] not in classes \['cat', 'dog'\]"
    ):
        flip_labels(["cat", "cow", "pig", "cow"], ["cat", "dog"])
    with pytest.raises(ValueError, match=r"^y has labels \[9\] not in classes \[3, 7\]"):
        flip_labels([3, 9], np.array([3, 7]))


def test_learner_score_checks_labels_as_fit_does(ref):
    """Object arrays of numbers (scikit-learn's metrics call them "unknown") score as numbers;
    labels outside classes_ are refused, naming them."""
    y01 = (ref.y_train == POS).astype(int)
    model = bc.LogisticLearner().fit(ref.X_train, y01.astype(object))
    assert model.score(ref.X_train, y01.astype(object)) == model.score(ref.X_train, y01)
    model = bc.LogisticLearner().fit(ref.X_train, ref.y_train)
    with pytest.raises(ValueError, match=r"^y has labels \['cow'\] not in classes_"):
        model.score(ref.X_test[:2], [NEG, "cow"])
    with pytest.raises(ValueError, match="^X and y have different lengths"):
        model.score(ref.X_test[:2], [NEG])
    with pytest.raises(ValueError, match="^sample_weight must be non-negative"):
        model.score(ref.X_test[:2], [NEG, POS], sample_weight=[1, -1])
    assert model.score(ref.X_test, ref.y_test, np.r_[1.0, np.zeros(23)]) in (0.0, 1.0)


def test_encode_labels():
    codes = encode_labels(np.array(["b", "a", "c", "b"]), ["c", "a", "b"], "y")
    assert codes.tolist() == [2, 1, 0, 2]
    assert encode_labels(np.zeros(0), [0, 1], "y").shape == (0,)
    many = np.arange(20)
    with pytest.raises(
        ValueError, match=r"^z has labels \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11\] not in my classes$"
    ):
        encode_labels(many, [0, 1], "z", "my classes")


# ------------------------------------------------------------------------- numpy scalars shown
def _image_data() -> ImageBackdoorData:
    return poison_multiclass(
        _images(6, 0), np.arange(6) % 2, _images(2, 1), [0, 1], size=2, fraction=0.5
    )


def test_show_value():
    assert show_value(np.float64(-0.1)) == "-0.1"
    assert show_value(np.float32(0.5)) == "0.5"
    assert show_value(np.int64(3)) == "3"
    assert show_value(np.bool_(True)) == "True"
    assert show_value(np.str_("a")) == "'a'"
    assert show_value(np.array([1.5, 2.0])) == "[1.5, 2.0]"
    assert show_value([1, "a"]) == "[1, 'a']" and show_value(None) == "None"


def _multiclass(**kwargs):
    return poison_multiclass(_images(6, 0), np.arange(6) % 2, _images(2, 1), [0, 1], **kwargs)


def _fit_logistic(C):
    return bc.LogisticLearner(C=C).fit(np.eye(2), [0, 1])


SEED = r"random_state must be a non-negative int \(a seed\)"
MESSAGES = {
    "betas": (
        lambda: check_betas(np.array([0.5, -0.1])),
        r"^betas must lie in \[0, 1\], got -0.1$",
    ),
    "beta": (lambda: check_betas(np.float64(1.5)), r"got 1.5$"),
    "seed": (lambda: check_seed(np.float64(1.5)), f"^{SEED}, got 1.5$"),
    "random_state": (lambda: check_random_state(np.float32(2.5)), r"got 2.5$"),
    "positive": (lambda: check_positive(np.float64(-2.0), "C"), r"got -2.0$"),
    "parameter": (
        lambda: _fit_logistic(np.float64(-1.0)),
        r"^C must be a real number in \(0, inf\), got -1.0 \(parameter of LogisticLearner\)$",
    ),
    "image_beta": (lambda: _image_data().sample_weight(np.str_("0.5")), r"got '0.5'$"),
    "target": (
        lambda: _multiclass(target=np.float64(1.0)),
        r"^target must be an int \(a class of y_train\), got 1.0$",
    ),
    "exclude_target": (
        lambda: _multiclass(exclude_target=np.int64(1)),
        r"^exclude_target must be a bool, got 1$",
    ),
    "chunk_size": (
        lambda: bc.poison(
            _images(10, 0), np.arange(10) % 2, _images(2, 1), [0, 1], chunk_size=np.float64(2.0)
        ),  # fmt: skip
        r"^chunk_size must be an int or None, got 2.0$",
    ),
    "curve_betas": (
        lambda: bc.learning_curve(bc.LogisticLearner(), random_backdoor_data(0), [np.float64(2)]),
        r"^betas must lie in \[0, 1\], got 2.0$",
    ),
}


@pytest.mark.parametrize("case", MESSAGES)
def test_messages_show_plain_numbers(case):
    call, text = MESSAGES[case]
    with pytest.raises((TypeError, ValueError), match=text) as info:
        call()
    assert "np." not in str(info.value)


# ---------------------------------------------------------------------- a class for an instance
CLASS_MESSAGE = (
    r"must be a learner instance, got the class LogisticLearner; pass an instance, "
    r"e.g\. LogisticLearner\(\)"
)


def test_learner_class_instead_of_instance(ref):
    with pytest.raises(TypeError, match=f"^learner {CLASS_MESSAGE}"):
        bc.learning_curve(bc.LogisticLearner, ref)
    with pytest.raises(TypeError, match=f"^learner {CLASS_MESSAGE}"):
        bc.backdoor_slope(bc.LogisticLearner, ref)
    with pytest.raises(TypeError, match=f"^learners {CLASS_MESSAGE}"):
        bc.grid_study(bc.LogisticLearner, ref, {"C": [1.0]})
    with pytest.raises(TypeError, match=re.escape("learners['lr'] must be a learner instance")):
        bc.grid_study({"lr": bc.LogisticLearner}, ref, {"C": [1.0]})
    # other classes are not learners either: named as classes, not as their metaclass
    with pytest.raises(TypeError, match=r"^learner must be one of .* got the class dict$"):
        bc.learning_curve(dict, ref)


# ---------------------------------------------------------------------------- cross-validation
def test_training_set_layout(ref):
    X, y, w = ref.training_set(beta=0.25, shuffle=False)
    np.testing.assert_array_equal(X, ref.X_train)
    np.testing.assert_array_equal(y, ref.y_train)
    np.testing.assert_array_equal(w, ref.sample_weight(0.25))
    X1, y1, w1 = ref.training_set(beta=0.25)
    order = np.random.default_rng(0).permutation(len(w))
    np.testing.assert_array_equal(X1, ref.X_train[order])
    np.testing.assert_array_equal(y1, ref.y_train[order])
    np.testing.assert_array_equal(w1, ref.sample_weight(0.25)[order])
    X2, _, _ = ref.training_set(beta=0.25, random_state=0)
    X3, _, _ = ref.training_set(beta=0.25, random_state=1)
    np.testing.assert_array_equal(X1, X2)  # seeded
    assert not np.array_equal(X1, X3)
    assert ref.training_set()[2].tolist() == [1.0] * len(w)  # beta = 1 by default


@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"),
    [
        ({"beta": 1.5}, ValueError, r"^beta must lie in \[0, 1\], got 1.5"),
        ({"shuffle": "yes"}, TypeError, "^shuffle must be a bool, got 'yes'"),
        ({"random_state": -1}, ValueError, "^random_state must be a non-negative int"),
        ({"random_state": 0.5}, TypeError, "^random_state must be None, an int or a numpy"),
    ],
)
def test_training_set_bad_arguments(ref, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        ref.training_set(**kwargs)


def test_training_set_for_cross_validation(tiny):
    """KFold(3) on training_set: every fold holds poisoned points (on X_train, only the last)."""
    beta = 0.5  # the weights mark the poisoned rows
    cv = KFold(3)
    X, y, w = tiny.training_set(beta)
    for _, test in cv.split(X):
        assert np.any(w[test] == beta)
        assert np.any(w[test] == 1.0)
    # the fixed layout of X_train is what training_set avoids: P ends up in the last fold only
    w_fixed = tiny.sample_weight(beta)
    held = [bool(np.any(w_fixed[test] == beta)) for _, test in cv.split(tiny.X_train)]
    assert held == [False, False, True]
    scores = cross_val_score(bc.LogisticLearner(C=10.0), X, y, cv=cv, params={"sample_weight": w})
    assert scores.shape == (3,) and np.all((scores > 0.5) & (scores <= 1.0))
