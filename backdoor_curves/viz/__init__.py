"""Figures and reports: curves, slopes and deviation (:mod:`.plots`), grid figures
(:mod:`.grid_plots`), figures of the neural-network results (:mod:`.nn_plots`) and the Markdown
report of the demo (:mod:`.report`).

Every figure helper is importable from here (``from backdoor_curves.viz import plot_curves,
save_figure``). The ``plot_*`` functions follow matplotlib's conventions: they draw on the axes
they are given (``ax``) or on a new pyplot-managed figure (so ``plt.show()`` shows it), pass
``**kwargs`` to their main artist (``color=``, ``linestyle=``, ``label=`` ...), and return the
:class:`~matplotlib.figure.Figure`. :func:`save_figure` writes a figure atomically and closes it.
"""

from .grid_plots import (
    plot_accuracy_heatmap,
    plot_accuracy_heatmaps,
    plot_grid_curves,
    plot_grid_deviation,
    setting_labels,
)
from .nn_plots import (
    plot_fd_slopes,
    plot_isolation_precision,
    plot_loss_reduction,
    plot_self_influence,
    plot_synchronization,
)
from .plots import (
    format_number,
    mark_region,
    plot_accuracy_vs_regularization,
    plot_curves,
    plot_deviation,
    plot_slope,
    plot_slope_vs_accuracy,
    plot_taylor,
    save_figure,
)

__all__ = [
    "format_number",
    "mark_region",
    "plot_accuracy_heatmap",
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
    "plot_slope",
    "plot_slope_vs_accuracy",
    "plot_synchronization",
    "plot_taylor",
    "save_figure",
    "setting_labels",
]
