"""Input checks shared by every learner: each bad input is an error that names the argument."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from backdoor_curves import LinearSVMLearner, LogisticLearner, RBFSVMLearner, RidgeLearner

LEARNERS = [LogisticLearner(1.0), RidgeLearner(1.0), LinearSVMLearner(1.0), RBFSVMLearner(1.0)]
IDS = ["logistic", "ridge", "linear_svm", "rbf_svm"]


def _xy(n=30, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.where(X[:, 0] > 0, "pos", "neg")


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
class TestBadInput:
    def test_nan_and_inf(self, learner):
        X, y = _xy()
        for bad in (np.nan, np.inf):
            Xb = X.copy()
            Xb[3, 1] = bad
            with pytest.raises(ValueError, match="X contains NaN or infinity"):
                clone(learner).fit(Xb, y)

    def test_mismatched_lengths(self, learner):
        X, y = _xy()
        with pytest.raises(ValueError, match="X and y have different lengths"):
            clone(learner).fit(X, y[:-1])
        with pytest.raises(ValueError, match="sample_weight has 29 entries"):
            clone(learner).fit(X, y, np.ones(29))

    def test_wrong_dimensions(self, learner):
        X, y = _xy()
        with pytest.raises(ValueError, match="X must be 2-D"):
            clone(learner).fit(X[:, 0], y)
        with pytest.raises(ValueError, match="y must be 1-D"):
            clone(learner).fit(X, np.c_[y, y])
        model = clone(learner).fit(X, y)
        with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3 features"):
            model.decision_function(X[:, :2])

    def test_more_than_two_classes(self, learner):
        X, _ = _xy()
        with pytest.raises(ValueError, match="more than two classes"):
            clone(learner).fit(X, np.arange(30) % 3)
        with pytest.raises(ValueError, match="a single class"):
            clone(learner).fit(X, np.zeros(30))

    def test_bad_sample_weight(self, learner):
        X, y = _xy()
        with pytest.raises(ValueError, match="sample_weight must be non-negative"):
            clone(learner).fit(X, y, -np.ones(30))
        with pytest.raises(ValueError, match="sample_weight must have at least one positive"):
            clone(learner).fit(X, y, np.zeros(30))
        w = np.where(y == "pos", 1.0, 0.0)
        with pytest.raises(ValueError, match="only one class with a positive weight"):
            clone(learner).fit(X, y, w)

    def test_wrong_types(self, learner):
        X, y = _xy()
        with pytest.raises(TypeError, match="X must be a 2-D array of numbers"):
            clone(learner).fit(np.array([["a", "b"]] * 30), y)
        with pytest.raises(TypeError, match="X must be a 2-D array"):
            clone(learner).fit(None, y)

    def test_not_fitted_and_unknown_labels(self, learner):
        X, y = _xy()
        with pytest.raises(NotFittedError):
            clone(learner).decision_function(X)
        model = clone(learner).fit(X, y)
        with pytest.raises(ValueError, match="y has labels"):
            model.loss_per_sample(X, np.where(y == "pos", "other", "neg"))


@pytest.mark.parametrize("learner", LEARNERS, ids=IDS)
def test_sklearn_estimator_conventions(learner):
    """__init__ only stores parameters; clone/get_params work; predict returns the labels."""
    params = learner.get_params()
    assert clone(learner).get_params() == params
    X, y = _xy(seed=1)
    model = clone(learner).fit(X, y)
    assert set(model.predict(X)) <= {"neg", "pos"}
    assert model.score(X, y) > 0.8
    assert model.n_features_in_ == 3
    assert model.classes_.tolist() == ["neg", "pos"]
    assert model.regularization == pytest.approx(1 / model.loss_weight)
