"""backdoor-curves: how fast a classifier learns a backdoor.

Exact backdoor learning curves, the backdoor learning slope (influence-function derivative at
beta = 0) and parameter deviation for convex learners that match scikit-learn with sample weights.
"""

from importlib.metadata import PackageNotFoundError, version

from .config import GridConfig, load_config
from .curves import CURVE_COLUMNS, LearningCurve, default_betas, learning_curve
from .data import BackdoorData
from .deviation import parameter_deviation
from .grid import curves_frame, grid_study
from .learners import (
    BaseLearner,
    LinearSVMLearner,
    LogisticLearner,
    RBFSVMLearner,
    RidgeLearner,
)
from .learners.svm import DegenerateKKTError
from .linalg import IllConditionedWarning, SingularSystemError
from .mnist import load_mnist_digits, load_mnist_pair
from .point import evaluate_point
from .poisoning import poison
from .robust import RobustRegion, robust_region
from .slope import BackdoorSlope, backdoor_slope, slope_score
from .triggers import BadNetsPatch, InvisibleGrid, make_trigger

try:
    __version__ = version("backdoor-curves")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BackdoorData",
    "BadNetsPatch",
    "InvisibleGrid",
    "BackdoorSlope",
    "BaseLearner",
    "CURVE_COLUMNS",
    "DegenerateKKTError",
    "GridConfig",
    "IllConditionedWarning",
    "LearningCurve",
    "LinearSVMLearner",
    "LogisticLearner",
    "RBFSVMLearner",
    "RidgeLearner",
    "RobustRegion",
    "SingularSystemError",
    "backdoor_slope",
    "curves_frame",
    "default_betas",
    "evaluate_point",
    "grid_study",
    "learning_curve",
    "load_config",
    "load_mnist_digits",
    "load_mnist_pair",
    "make_trigger",
    "poison",
    "parameter_deviation",
    "robust_region",
    "slope_score",
    "__version__",
]
