"""The learners follow scikit-learn's estimator conventions.

scikit-learn's own ``check_estimator`` suite runs on the four learners with no expected failures:
the only limit, binary targets, is declared in the estimator tags (``multi_class=False``), which
makes scikit-learn binarize the targets of its checks and add the check that multiclass targets
are refused. The other tests cover what the suite does not: the declarative parameter
validation (every parameter declared, every bad value named), labels from pandas and object
arrays, and the messages of the input checks.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from backdoor_curves import LinearSVMLearner, LogisticLearner, RBFSVMLearner, RidgeLearner
from backdoor_curves._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

# LinearSVMLearner's default tol=1e-10 makes libsvm run ~6e7 iterations (10 s, as long as
# SVC(kernel="linear", tol=1e-10)) on the random non-separable data of check_dtype_object; the
# exact KKT polish after libsvm makes tol=1e-8 give the same optimum, in a fraction of a second.
CHECKED = [LogisticLearner(), RidgeLearner(), LinearSVMLearner(tol=1e-8), RBFSVMLearner()]
# gamma=0.5: on the data below the default gamma leaves no margin support vector (so no
# gradient parameters)
LEARNERS = [LogisticLearner(), RidgeLearner(), LinearSVMLearner(), RBFSVMLearner(gamma=0.5)]
IDS = ["logistic", "ridge", "linear_svm", "rbf_svm"]


@parametrize_with_checks(CHECKED)
def test_sklearn_check_estimator(estimator, check):
    """scikit-learn's estimator checks, with no expected failures."""
    check(estimator)


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_tags_declare_the_binary_limit(learner):
    tags = get_tags(learner)
    assert tags.classifier_tags.multi_class is False
    assert tags.input_tags.sparse is False
    assert tags.input_tags.allow_nan is False
    assert tags.target_tags.required is True


# ---------------------------------------------------------------------- parameter validation
def _bad_values(constraint):
    """Values just outside an Interval, and non-finite values."""
    bad = [np.nan, True]
    lo, hi, closed = constraint.left, constraint.right, constraint.closed
    if lo is not None:
        bad.append(lo - 1)
        if closed in ("right", "neither"):
            bad.append(lo)
    else:
        bad.append(-np.inf)
    if hi is not None:
        bad.append(hi + 1)
        if closed in ("left", "neither"):
            bad.append(hi)
    elif closed in ("left", "neither"):
        bad.append(np.inf)
    if constraint.type is Integral:
        bad.append(float(lo if lo is not None else 0) + 1.5)
    return bad


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_every_parameter_is_declared(learner):
    assert set(learner._parameter_constraints) == set(learner.get_params(deep=False))
    learner.validate_params()  # the defaults are valid


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_bad_parameters_are_named(learner):
    """Each parameter, given a value of no valid type or outside its interval, is named."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = np.where(X[:, 0] > 0, "a", "b")
    bad_type = type("BadType", (), {})()
    for name, constraints in learner._parameter_constraints.items():
        values = [bad_type, "1"]
        for c in constraints:
            if isinstance(c, Interval):
                values += _bad_values(c)
        for value in values:
            model = clone(learner).set_params(**{name: value})
            with pytest.raises(InvalidParameterError, match=rf"^{name} must be .*, got "):
                model.fit(X, y)
            with pytest.raises(ValueError, match=rf"^{name} must be"):
                model.validate_params()  # the check the exact paths run without a fit
            with pytest.raises(TypeError, match=rf"{type(learner).__name__}"):
                model.validate_params()  # InvalidParameterError is a TypeError too


def test_parameter_message_states_the_expected_form():
    with pytest.raises(InvalidParameterError) as info:
        LogisticLearner(C=-1.0).validate_params()
    assert str(info.value) == (
        "C must be a real number in (0, inf), got -1.0 (parameter of LogisticLearner)"
    )
    with pytest.raises(InvalidParameterError) as info:
        LogisticLearner(max_iter=2.0).validate_params()
    assert str(info.value) == (
        "max_iter must be an int in [1, inf), got 2.0 (parameter of LogisticLearner)"
    )
    with pytest.raises(InvalidParameterError, match=r"warm_start must be a bool, got 'yes'"):
        LogisticLearner(warm_start="yes").validate_params()
    with pytest.raises(InvalidParameterError, match=r"gamma must be .*, got 'scale'"):
        RBFSVMLearner(gamma="scale").validate_params()


def test_numpy_scalars_are_valid_parameters():
    for model in (
        LogisticLearner(C=np.float32(2.0), max_iter=np.int64(5), warm_start=np.bool_(True)),
        RidgeLearner(alpha=np.int64(2)),
        RBFSVMLearner(C=3, gamma=np.float64(0.5), tol=1e-8),
    ):
        model.validate_params()


def test_interval_semantics():
    positive = Interval(Real, 0, None, closed="neither")
    assert positive.is_satisfied_by(1e-300) and positive.is_satisfied_by(3)
    for value in (0, 0.0, -1, np.inf, np.nan, True, "1", None):
        assert not positive.is_satisfied_by(value)
    unit = Interval(Real, 0, 1, closed="both")
    assert unit.is_satisfied_by(0) and unit.is_satisfied_by(1.0)
    assert str(unit) == "a real number in [0, 1]"
    whole = Interval(Integral, None, None, closed="both")
    assert whole.is_satisfied_by(-(10**30)) and not whole.is_satisfied_by(1.0)
    assert str(whole) == "an int in [-inf, inf]"
    with pytest.raises(ValueError, match="closed must be one of"):
        Interval(Integral, 0, 1, closed="open")
    with pytest.raises(ValueError, match="right must be >= left"):
        Interval(Integral, 2, 1, closed="both")


def test_options_and_other_constraints():
    constraints = {
        "solver": [StrOptions({"newton", "lbfgs"})],
        "k": [Options(int, {1, 2}), None],
        "flag": ["boolean"],
        "name": [str],
        "anything": "no_validation",
    }
    ok = {"solver": "lbfgs", "k": None, "flag": False, "name": "x", "anything": object()}
    validate_parameter_constraints(constraints, ok, "Caller")
    validate_parameter_constraints(constraints, {"undeclared": object()}, "Caller")
    with pytest.raises(
        InvalidParameterError,
        match=r"^solver must be one of \{'lbfgs', 'newton'\}, got 'sgd' \(parameter of Caller\)$",
    ):
        validate_parameter_constraints(constraints, {"solver": "sgd"}, "Caller")
    with pytest.raises(InvalidParameterError, match=r"^k must be one of \{1, 2\} or None, got 3"):
        validate_parameter_constraints(constraints, {"k": 3}, "Caller")
    with pytest.raises(InvalidParameterError, match=r"^k must be .*, got \[1\] \(list\)"):
        validate_parameter_constraints(constraints, {"k": [1]}, "Caller")  # unhashable
    with pytest.raises(InvalidParameterError, match=r"^flag must be a bool, got 1"):
        validate_parameter_constraints(constraints, {"flag": 1}, "Caller")
    with pytest.raises(InvalidParameterError, match=r"^name must be a str, got 1"):
        validate_parameter_constraints(constraints, {"name": 1}, "Caller")


# ---------------------------------------------------------------------- labels and input checks
def _xy(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.where(X[:, 0] + 0.3 * rng.normal(size=n) > 0, "pos", "neg")


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_labels_from_pandas_and_object_arrays(learner):
    """Strings in an object array, a pandas column or a categorical Series: same fit."""
    pd = pytest.importorskip("pandas")
    X, y = _xy()
    reference = clone(learner).fit(X, y)
    for labels in (
        y.astype(object),
        pd.Series(y),
        pd.Series(y, dtype="category"),
        pd.Series(y, dtype="string"),
        pd.DataFrame({"label": y})["label"],
    ):
        model = clone(learner).fit(pd.DataFrame(X), labels)
        assert model.classes_.tolist() == ["neg", "pos"]
        np.testing.assert_array_equal(model.predict(X), reference.predict(X))
        np.testing.assert_allclose(model.decision_function(X), reference.decision_function(X))
        np.testing.assert_array_equal(model.encode(labels), reference.encode(y))
        np.testing.assert_allclose(
            model.loss_per_sample(X, labels), reference.loss_per_sample(X, y)
        )
        np.testing.assert_allclose(model.gradient(X, labels), reference.gradient(X, y))
        assert model.score(X, labels) == reference.score(X, y)


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_object_arrays_of_numbers(learner):
    """Numbers in object arrays (X or y) are numbers: the same fit as numeric arrays."""
    X, y = _xy()
    y01 = (y == "pos").astype(int)
    reference = clone(learner).fit(X, y01)
    model = clone(learner).fit(X.astype(object), y01.astype(object))
    assert model.classes_.tolist() == [0, 1]
    np.testing.assert_allclose(model.decision_function(X), reference.decision_function(X))


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_bad_labels_are_named(learner):
    X, y = _xy()
    with pytest.raises(ValueError, match=r"^y must hold discrete class labels.*continuous"):
        clone(learner).fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"y must contain exactly two classes.*Only binary"):
        clone(learner).fit(X, np.arange(40) % 3)
    with pytest.raises(ValueError, match=r"y is required: .* the target y is None"):
        clone(learner).fit(X, None)
    mixed = y.astype(object)
    mixed[0] = 1
    with pytest.raises(TypeError, match=r"^y must hold strings or real numbers of one kind"):
        clone(learner).fit(X, mixed)
    missing = y.astype(object)
    missing[0] = None
    with pytest.raises(TypeError, match=r"^y must .*missing values are not allowed"):
        clone(learner).fit(X, missing)
    with pytest.raises(ValueError, match=r"^y must hold real numbers or strings: Complex"):
        clone(learner).fit(X, np.ones(40) + 1j)
    model = clone(learner).fit(X, y)
    with pytest.raises(ValueError, match=r"^y has labels \[1\] not in classes_"):
        model.encode(np.r_[1, 1])  # numbers for string classes


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_bad_X_is_named(learner):
    X, y = _xy()
    for container in (sparse.csr_matrix, sparse.csr_array):
        with pytest.raises(TypeError, match=r"^X is a scipy sparse .*sparse input is not"):
            clone(learner).fit(container(X), y)
    with pytest.raises(ValueError, match=r"^X must hold real numbers: Complex data not"):
        clone(learner).fit(X + 1j, y)
    bad = X.astype(object)
    bad[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match=r"^X must be a 2-D array of numbers; its dtype-object"):
        clone(learner).fit(bad, y)
    with pytest.raises(ValueError, match=r"^X must contain at least one sample: 0 sample"):
        clone(learner).fit(np.empty((0, 3)), [])
    with pytest.raises(ValueError, match=r"^X must have at least one feature: 0 feature"):
        clone(learner).fit(np.empty((40, 0)), y)
    model = clone(learner).fit(X, y)
    with pytest.raises(ValueError, match=r"^X must be 2-D .*Reshape your data"):
        model.predict(X[0])
    with pytest.raises(TypeError, match=r"^X is a scipy sparse"):
        model.decision_function(sparse.csr_matrix(X))


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_sample_weight_and_column_y(learner):
    X, y = _xy()
    with pytest.raises(ValueError, match=r"^sample_weight must have .*all weights are zero"):
        clone(learner).fit(X, y, np.zeros(40))
    reference = clone(learner).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = clone(learner).fit(X, y[:, None])
    assert any(issubclass(w.category, DataConversionWarning) for w in caught)
    np.testing.assert_allclose(model.decision_function(X), reference.decision_function(X))


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_not_fitted(learner):
    X, y = _xy()
    methods = ["predict", "decision_function", "score", "loss_per_sample", "gradient", "encode"]
    for method in methods:
        args = {"predict": (X,), "decision_function": (X,), "encode": (y,)}.get(method, (X, y))
        with pytest.raises(NotFittedError):
            getattr(clone(learner), method)(*args)
