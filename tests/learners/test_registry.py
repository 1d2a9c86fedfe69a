"""The one registry of learner kinds: keys, labels, colours, and who reads it."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from backdoor_curves import learners
from backdoor_curves.learners import (
    LEARNER_KINDS,
    BaseLearner,
    LinearSVMLearner,
    LogisticLearner,
    RBFSVMLearner,
    RidgeLearner,
    display_name,
    learner_kind,
    learner_label,
    register_learner,
)
from backdoor_curves.study.config import parse_config


def test_every_learner_class_is_registered_once_with_distinct_keys_labels_and_colours():
    classes = [LogisticLearner, RidgeLearner, LinearSVMLearner, RBFSVMLearner]
    assert [k.cls for k in LEARNER_KINDS.values()] == classes
    assert list(LEARNER_KINDS) == ["logistic", "ridge", "linear_svm", "rbf_svm"]
    labels = [k.label for k in LEARNER_KINDS.values()]
    colors = [k.color for k in LEARNER_KINDS.values()]
    assert len(set(labels)) == len(labels) and len(set(colors)) == len(colors)
    for kind in LEARNER_KINDS.values():
        assert issubclass(kind.cls, BaseLearner)
        assert kind.regularization in kind.cls().get_params()
    # every concrete learner exported by the subpackage is registered
    exported = [getattr(learners, n) for n in learners.__all__]
    concrete = [c for c in exported if isinstance(c, type) and issubclass(c, BaseLearner)]
    assert {c for c in concrete if c is not BaseLearner} == set(classes)


@pytest.mark.parametrize(
    ("learner", "label"),
    [
        (LogisticLearner(C=0.1), "logistic"),
        (RidgeLearner(alpha=500), "ridge"),
        (LinearSVMLearner(), "linear SVM"),
        (RBFSVMLearner(C=1, gamma=0.005), "RBF SVM (gamma=0.005)"),
        (RBFSVMLearner(C=1, gamma=np.geomspace(0.005, 1, 3)[0]), "RBF SVM (gamma=0.005)"),
        (LogisticLearner(C=2, max_iter=7, warm_start=True), "logistic (max_iter=7)"),
    ],
)
def test_learner_label_leaves_out_the_regularization_and_defaults(learner, label):
    assert learner_label(learner) == label


def test_an_unregistered_learner_is_labelled_by_its_class_name():
    class MyLearner(BaseEstimator):
        def __init__(self, C=1.0, depth=2):
            self.C, self.depth = C, depth

    assert learner_label(MyLearner(C=2, depth=3)) == "My (depth=3)"
    with pytest.raises(TypeError, match="MyLearner is not a registered learner kind"):
        learner_kind(MyLearner())


def test_learner_kind_by_instance_class_key_or_label():
    assert learner_kind(RBFSVMLearner()).key == "rbf_svm"
    assert learner_kind(RidgeLearner).label == "ridge"
    assert learner_kind("rbf_svm") is learner_kind("RBF SVM") is LEARNER_KINDS["rbf_svm"]
    with pytest.raises(ValueError, match="learner must be a registered kind's key or label"):
        learner_kind("forest")
    assert display_name("linear_svm") == "linear SVM"
    assert display_name("LinearSVMLearner") == "linear SVM"
    assert display_name("my model") == "my model"


def test_registering_a_taken_key_or_label_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_learner("logistic", label="another")(type("Other", (), {}))
    with pytest.raises(ValueError, match="already registered"):
        register_learner("other", label="RBF SVM")(type("Other", (), {}))
    with pytest.raises(ValueError, match="key must be an identifier"):
        register_learner("two words", label="x")
    assert "other" not in LEARNER_KINDS


def test_config_kinds_and_default_names_come_from_the_registry():
    raw = {"learner": [{"kind": key, **({"alpha": [1.0]} if key == "ridge" else {"C": [1.0]})}
                       for key in LEARNER_KINDS]}  # fmt: skip
    config = parse_config(raw)
    assert list(config.learners) == [k.label for k in LEARNER_KINDS.values()]
    assert [type(m) for m in config.learners.values()] == [k.cls for k in LEARNER_KINDS.values()]
