"""Binary convex learners matching their scikit-learn counterparts with sample weights."""

from .base import BaseLearner
from .linear import LogisticLearner, RidgeLearner
from .svm import LinearSVMLearner, RBFSVMLearner

__all__ = ["BaseLearner", "LogisticLearner", "RidgeLearner", "LinearSVMLearner", "RBFSVMLearner"]
