"""What the toolkit measures: backdoor learning curves, the backdoor learning slope and the
parameter deviation (paper 001, Eq. 1-6; DESIGN §3-5)."""

from .curves import learning_curve
from .deviation import parameter_deviation
from .results import (
    CURVE_COLUMNS,
    BackdoorSlope,
    LearningCurve,
    default_betas,
    read_curves,
    slope_score,
    write_curves,
)
from .slope import backdoor_slope, slope_of_clean_model

__all__ = [
    "CURVE_COLUMNS",
    "BackdoorSlope",
    "LearningCurve",
    "backdoor_slope",
    "default_betas",
    "learning_curve",
    "parameter_deviation",
    "read_curves",
    "slope_of_clean_model",
    "slope_score",
    "write_curves",
]
