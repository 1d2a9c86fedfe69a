"""Figures and reports: curves, slopes and deviation (:mod:`.plots`), grid figures
(:mod:`.grid_plots`), figures of the neural-network results (:mod:`.nn_plots`) and the Markdown
report of the demo (:mod:`.report`).

Every plotting function draws on the axes it is given (``ax``) or on a new Figure, and returns the
Figure.
"""

from .grid_plots import plot_accuracy_heatmaps, plot_grid_curves, plot_grid_deviation
from .nn_plots import (
    plot_fd_slopes,
    plot_isolation_precision,
    plot_loss_reduction,
    plot_self_influence,
    plot_synchronization,
)
from .plots import (
    plot_accuracy_vs_regularization,
    plot_curves,
    plot_deviation,
    plot_slope_vs_accuracy,
    plot_taylor,
)

__all__ = [
    "plot_accuracy_heatmaps",
    "plot_accuracy_vs_regularization",
    "plot_curves",
    "plot_deviation",
    "plot_fd_slopes",
    "plot_grid_curves",
    "plot_grid_deviation",
    "plot_isolation_precision",
    "plot_loss_reduction",
    "plot_self_influence",
    "plot_slope_vs_accuracy",
    "plot_synchronization",
    "plot_taylor",
]
