"""The results of the measures: a backdoor learning curve and a backdoor learning slope.

Frozen dataclasses holding numbers, with the names of the curve columns, the default grid of betas
and the bounded slope score. Nothing here fits a model or draws a figure, so any stage may read
these types (study, viz, report) without importing the solvers; :meth:`LearningCurve.plot` reaches
:mod:`backdoor_curves.viz.plots` only when called, and that module does not import this one.

    score(derivative) = -(2/pi) * arctan(derivative)                            in (-1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._validation import check_betas

__all__ = ["CURVE_COLUMNS", "BackdoorSlope", "LearningCurve", "default_betas", "slope_score"]

#: The columns of a learning curve, in the order of :meth:`LearningCurve.to_frame`.
CURVE_COLUMNS = (
    "beta",
    "backdoor_loss",
    "clean_loss",
    "clean_accuracy",
    "backdoor_accuracy",
    "rho",
    "rho_ratio",
    "nu",
)


def default_betas(n: int = 21) -> np.ndarray:
    """0 followed by ``n - 1`` log-spaced values from 0.01 to 1.

    Parameters
    ----------
    n : int, default=21
        Number of betas, at least 2.

    Returns
    -------
    ndarray of shape (n,)
        ``[0, 0.01, ..., 1]``: both ends of [0, 1] included, log-spaced above 0.

    Raises
    ------
    ValueError
        If ``n`` is not an int >= 2.
    """
    if not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    return np.r_[0.0, np.geomspace(0.01, 1.0, n - 1)]


def slope_score(derivative: float | np.ndarray) -> float | np.ndarray:
    """The paper's bounded slope score ``-(2/pi) arctan(derivative)``.

    Parameters
    ----------
    derivative : float or ndarray
        dL(V_t)/dbeta at beta = 0 (:attr:`BackdoorSlope.derivative`).

    Returns
    -------
    float or ndarray
        The score in (-1, 1): near 1 when the backdoor loss collapses at once, near 0 when it
        barely moves, negative when it rises.
    """
    return -2.0 / np.pi * np.arctan(derivative)


@dataclass(frozen=True)
class LearningCurve:
    """A backdoor learning curve with clean metrics and parameter deviation.

    Attributes
    ----------
    betas : ndarray of shape (n_betas,)
        Weights of the poisoning set, in the order requested.
    values : dict of str -> ndarray
        One array per column of :data:`CURVE_COLUMNS` (besides ``beta``): mean losses (the
        learner's own loss) on V_t and V, accuracies on V and V_t (the latter is the attack
        success rate), and the deviation rho, rho_ratio, nu relative to beta = 0.
    learner : str
        The learner's display label (:func:`~backdoor_curves.learners.learner_label`); ``params``
        holds all its parameters.
    regularization : float
        lambda = 1/C.
    params : dict
        The learner's ``get_params()`` (all parameters, defaults included).
    events : pandas.DataFrame
        For an SVM path: one row per event (``beta``, ``index`` of the point in D followed by
        P, and the sets it moves ``from`` and ``to``: zero, margin or bound); between events the
        dual solution is linear in beta. Empty for other methods.
    """

    betas: np.ndarray
    values: dict = field(repr=False)
    learner: str
    regularization: float
    params: dict = field(default_factory=dict, repr=False)
    events: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def __getitem__(self, column: str) -> np.ndarray:
        if column == "beta":
            return self.betas
        return self.values[column]

    def to_frame(self) -> pd.DataFrame:
        """The curve as a table.

        Returns
        -------
        pandas.DataFrame
            One row per beta with the columns of :data:`CURVE_COLUMNS`; ``attrs`` holds the
            learner and the regularization.
        """
        frame = pd.DataFrame({"beta": self.betas, **self.values}, columns=list(CURVE_COLUMNS))
        frame.attrs.update(learner=self.learner, regularization=self.regularization)
        return frame

    def plot(self, ax=None, **kwargs):
        """Plot the backdoor loss (or another column) against beta.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new Figure is created when omitted.
        **kwargs
            ``column`` and ``labels`` of :func:`backdoor_curves.viz.plots.plot_curves`.

        Returns
        -------
        matplotlib.figure.Figure
            The figure holding ``ax``.
        """
        from ..viz.plots import plot_curves  # matplotlib only when a figure is asked for

        return plot_curves([self], ax=ax, **kwargs)


@dataclass(frozen=True)
class BackdoorSlope:
    """Backdoor learning slope of one learner on one poisoned data set.

    Attributes
    ----------
    derivative : float
        dL(V_t)/dbeta at beta = 0 (right-derivative for SVMs); negative when the backdoor is
        being learned.
    score : float
        ``-(2/pi) * arctan(derivative)`` in (-1, 1) (:func:`slope_score`).
    condition_number : float
        1-norm condition number of the factorized Hessian H0 (or SVM KKT matrix). With more
        features than training points H0 is solved through the n x n dual matrix I + A A^T
        (:class:`~backdoor_curves.learners.linear.DualHessianSolver`) and that matrix's condition
        number is reported.
    backdoor_loss : float
        L(V_t, theta0), the mean backdoor loss of the clean model.
    second_derivative : float
        d^2 L(V_t)/dbeta^2 at beta = 0 (0 for SVMs: their curve is linear on its first piece).
    regularization : float
        lambda = 1/C of the learner.
    learner : str
        The learner's display label (:func:`~backdoor_curves.learners.learner_label`, e.g.
        ``"RBF SVM (gamma=0.005)"``); ``params`` holds all its parameters.
    params : dict
        The learner's ``get_params()`` (all parameters, defaults included).
    details : dict
        Learner-specific diagnostics (e.g. ``n_margin`` and ``n_poison_active`` for SVMs,
        ``dtheta_dbeta``).
    """

    derivative: float
    score: float
    condition_number: float
    backdoor_loss: float
    second_derivative: float
    regularization: float
    learner: str
    params: dict = field(default_factory=dict, repr=False)
    details: dict = field(default_factory=dict, repr=False)

    def taylor(self, betas) -> dict[str, np.ndarray]:
        """First- and second-order Taylor predictions of the curve from beta = 0.

            first(beta)  = L(0) + beta L'(0)                      (the influence function)
            second(beta) = L(0) + beta L'(0) + beta^2 / 2 L''(0)

        Where they leave the exact curve is where the influence function stops explaining it.

        Parameters
        ----------
        betas : array-like of float in [0, 1]
            Where to predict.

        Returns
        -------
        dict of str -> ndarray
            ``"first"`` and ``"second"``, one prediction per beta.
        """
        betas = check_betas(betas)
        first = self.backdoor_loss + betas * self.derivative
        return {"first": first, "second": first + 0.5 * betas**2 * self.second_derivative}

    def to_dict(self) -> dict:
        """The scalar fields as a flat dict (for tables).

        Returns
        -------
        dict
            ``derivative``, ``score``, ``condition_number``, ``backdoor_loss_0``,
            ``second_derivative``, ``lambda`` and the scalar ``details``.
        """
        out = {
            "derivative": self.derivative,
            "score": self.score,
            "condition_number": self.condition_number,
            "backdoor_loss_0": self.backdoor_loss,
            "second_derivative": self.second_derivative,
            "lambda": self.regularization,
        }
        out.update({k: v for k, v in self.details.items() if np.isscalar(v)})
        return out
