"""Grid studies: one point (:mod:`.point`), the grid and its workers (:mod:`.grid`), the resumable
SQLite store (:mod:`.store`), TOML configurations (:mod:`.config`), the robust regularization
region over seeds (:mod:`.robust`) and reading a finished or running study back from its store or
CSV files (:mod:`.results_io`). The CLI run that writes a study's files and figures sits on top,
beside the demo (:mod:`backdoor_curves.grid_run`)."""

from .config import GridConfig, load_config
from .grid import curves_frame, grid_study
from .point import evaluate_point
from .results_io import read_study
from .robust import RobustRegion, robust_region

__all__ = [
    "GridConfig",
    "RobustRegion",
    "curves_frame",
    "evaluate_point",
    "grid_study",
    "load_config",
    "read_study",
    "robust_region",
]
