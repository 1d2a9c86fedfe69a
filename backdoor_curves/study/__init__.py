"""Grid studies: one point (:mod:`.point`), the grid and its workers (:mod:`.grid`), the resumable
SQLite store (:mod:`.store`), TOML configurations (:mod:`.config`) and the robust regularization
region (:mod:`.robust`). The CLI run that writes a study's files and figures sits on top, beside the
demo (:mod:`backdoor_curves.grid_run`)."""

from .config import GridConfig, load_config
from .grid import curves_frame, grid_study
from .point import evaluate_point
from .robust import RobustRegion, robust_region

__all__ = [
    "GridConfig",
    "RobustRegion",
    "curves_frame",
    "evaluate_point",
    "grid_study",
    "load_config",
    "robust_region",
]
