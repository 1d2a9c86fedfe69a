"""Binary convex learners matching their scikit-learn counterparts with sample weights.

:class:`BaseLearner` states the public contract the measures, paths and studies rely on;
:mod:`.registry` names every kind of learner once (config key, display label, colour).
"""

from .base import BaseLearner, SlopeTerms
from .linear import LogisticLearner, RidgeLearner
from .registry import (
    LEARNER_KINDS,
    LearnerKind,
    display_name,
    learner_kind,
    learner_label,
    register_learner,
)
from .svm import DegenerateKKTError, LinearSVMLearner, RBFSVMLearner

__all__ = [
    "BaseLearner",
    "DegenerateKKTError",
    "LEARNER_KINDS",
    "LearnerKind",
    "LinearSVMLearner",
    "LogisticLearner",
    "RBFSVMLearner",
    "RidgeLearner",
    "SlopeTerms",
    "display_name",
    "learner_kind",
    "learner_label",
    "register_learner",
]
