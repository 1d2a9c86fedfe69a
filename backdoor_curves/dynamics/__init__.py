"""Training dynamics of deep models: mutual-information (information-bottleneck) signatures per
group and the dynamics-based stealthiness score (paper 000). torch is imported lazily:
``import backdoor_curves.dynamics`` does not import it.

- :mod:`~backdoor_curves.dynamics.infonce`: :func:`estimate_mi`, the InfoNCE estimate of I(A; B)
  with an MLP critic (bounded by log(K + 1)), :func:`pca_reduce`;
- :mod:`~backdoor_curves.dynamics.noise`: Gaussian noise injection on chosen layers
  (:func:`add_noise_hooks`, :func:`noise_injection`) and the tracked representation T
  (:func:`layer_representation`);
- :mod:`~backdoor_curves.dynamics.callback`: :class:`InformationDynamics`, the training callback
  estimating I(X; T) and I(T; Y_hat) per group at chosen epochs;
- :mod:`~backdoor_curves.dynamics.stealth`: :func:`stealth_score`, the dynamics-based
  stealthiness score S;
- :mod:`~backdoor_curves.dynamics.plots`: :func:`plot_information_plane`,
  :func:`plot_mi_by_epoch`.
"""

from .callback import (
    DEFAULT_TY_OPTIONS,
    DEFAULT_XT_OPTIONS,
    DYNAMICS_COLUMNS,
    TARGET_GROUPS,
    InformationDynamics,
    class_group,
)
from .infonce import MIEstimate, estimate_mi, pca_reduce, standardize_columns
from .noise import (
    GaussianNoise,
    add_noise_hooks,
    layer_representation,
    noise_injection,
    pool_representation,
    remove_noise_hooks,
    resolve_modules,
)
from .plots import plot_information_plane, plot_mi_by_epoch
from .stealth import StealthScore, stealth_score

__all__ = [
    "DEFAULT_TY_OPTIONS",
    "DEFAULT_XT_OPTIONS",
    "DYNAMICS_COLUMNS",
    "GaussianNoise",
    "InformationDynamics",
    "MIEstimate",
    "StealthScore",
    "TARGET_GROUPS",
    "add_noise_hooks",
    "class_group",
    "estimate_mi",
    "layer_representation",
    "noise_injection",
    "pca_reduce",
    "plot_information_plane",
    "plot_mi_by_epoch",
    "pool_representation",
    "remove_noise_hooks",
    "resolve_modules",
    "standardize_columns",
    "stealth_score",
]
