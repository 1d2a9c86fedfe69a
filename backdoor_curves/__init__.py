"""backdoor-curves: how fast a classifier learns a backdoor.

Exact backdoor learning curves, the backdoor learning slope (influence-function derivative at
beta = 0) and parameter deviation for convex learners that match scikit-learn with sample weights.
"""

from ._memory import (
    MemoryBudgetError,
    memory_budget,
    memory_budget_context,
    set_memory_budget,
)
from ._version import __version__
from .attacks.blend import SIG, Blend
from .attacks.dba import DeepBackdoorTrigger
from .attacks.multiclass import poison_multiclass
from .attacks.poisoning import poison
from .attacks.triggers import BadNetsPatch, InvisibleGrid, make_trigger
from .attacks.warping import WaNet
from .data import BackdoorData, ImageBackdoorData
from .datasets.mnist import load_mnist_digits, load_mnist_pair
from .learners import (
    BaseLearner,
    LinearSVMLearner,
    LogisticLearner,
    RBFSVMLearner,
    RidgeLearner,
)
from .learners.svm import DegenerateKKTError, SVMConvergenceError
from .linalg import IllConditionedWarning, SingularSystemError
from .measures.curves import learning_curve
from .measures.deviation import DegenerateDeviationWarning, parameter_deviation
from .measures.results import (
    CURVE_COLUMNS,
    BackdoorSlope,
    LearningCurve,
    default_betas,
    read_curves,
    slope_score,
    write_curves,
)
from .measures.slope import backdoor_slope
from .study.config import GridConfig, load_config
from .study.grid import curves_frame, grid_study
from .study.point import evaluate_point
from .study.results_io import read_study
from .study.robust import RobustRegion, robust_region

__all__ = [
    "BackdoorData",
    "BadNetsPatch",
    "Blend",
    "DeepBackdoorTrigger",
    "InvisibleGrid",
    "SIG",
    "WaNet",
    "BackdoorSlope",
    "BaseLearner",
    "CURVE_COLUMNS",
    "DegenerateDeviationWarning",
    "DegenerateKKTError",
    "GridConfig",
    "ImageBackdoorData",
    "IllConditionedWarning",
    "LearningCurve",
    "LinearSVMLearner",
    "MemoryBudgetError",
    "LogisticLearner",
    "RBFSVMLearner",
    "RidgeLearner",
    "RobustRegion",
    "SVMConvergenceError",
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
    "memory_budget",
    "memory_budget_context",
    "poison",
    "poison_multiclass",
    "parameter_deviation",
    "read_curves",
    "read_study",
    "robust_region",
    "set_memory_budget",
    "slope_score",
    "write_curves",
    "__version__",
]
