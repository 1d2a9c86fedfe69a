"""The backdoor learning slope: dL(V_t)/dbeta at beta = 0 (DESIGN §4, paper 001 Eq. 2-5).

    derivative = - grad_theta L(V_t, theta0)^T  H0^{-1}  grad_theta [C sum_{j in P} l(y_j, f(x_j))]
    score      = -(2/pi) * arctan(derivative)                                   in (-1, 1)

theta0 is the optimum on the clean set D (beta = 0), H0 the Hessian of the training objective on
D with its regularizer (smooth learners, one Cholesky factorization), L(V_t) the *mean* loss on
the backdoor test set. For SVMs the derivative is the right-derivative of the piecewise-linear
dual path, from the bordered KKT system on the margin support vectors.

Units: the derivative is "mean backdoor loss per unit of beta", where beta = 1 gives every
poisoning point the weight of a clean point. A score near 1 means the backdoor loss collapses as
soon as any poison is seen; near 0, it barely moves; negative, it rises.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

from .._threads import blas_limit
from .._validation import check_betas
from ..data import BackdoorData
from ..learners.base import BaseLearner

__all__ = ["BackdoorSlope", "backdoor_slope", "slope_of_clean_model", "slope_score"]


def slope_score(derivative: float | np.ndarray) -> float | np.ndarray:
    """The paper's bounded slope score ``-(2/pi) arctan(derivative)`` in (-1, 1)."""
    return -2.0 / np.pi * np.arctan(derivative)


@dataclass(frozen=True)
class BackdoorSlope:
    """Backdoor learning slope of one learner on one poisoned data set.

    Attributes
    ----------
    derivative : float
        dL(V_t)/dbeta at beta = 0 (right-derivative for SVMs); negative when the backdoor is
        being learned.
    score : float
        ``-(2/pi) * arctan(derivative)`` in (-1, 1).
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
        The learner's repr.
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
        """
        betas = check_betas(betas)
        first = self.backdoor_loss + betas * self.derivative
        return {"first": first, "second": first + 0.5 * betas**2 * self.second_derivative}

    def to_dict(self) -> dict:
        """The scalar fields as a flat dict (for tables)."""
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


def _check_learner(learner) -> None:
    if not isinstance(learner, BaseLearner):
        raise TypeError(
            "learner must be one of backdoor_curves' learners (LogisticLearner, RidgeLearner, "
            f"LinearSVMLearner, RBFSVMLearner), got {type(learner).__name__}"
        )


def _check_data(data) -> None:
    if not isinstance(data, BackdoorData):
        raise TypeError(f"data must be a BackdoorData, got {type(data).__name__}")


def backdoor_slope(learner: BaseLearner, data: BackdoorData) -> BackdoorSlope:
    """Compute the backdoor learning slope of ``learner`` on ``data``.

    The learner is cloned and fitted on the clean set D only (beta = 0); nothing is re-trained
    on the poisoning set. Cost: one fit plus one factorization of the Hessian (or KKT matrix).

    Parameters
    ----------
    learner : BaseLearner
        An unfitted or fitted learner (it is cloned; the argument is not modified).
    data : BackdoorData

    Returns
    -------
    BackdoorSlope

    Raises
    ------
    backdoor_curves.linalg.SingularSystemError
        If H0 / the KKT matrix cannot be factorized.
    backdoor_curves.learners.svm.DegenerateKKTError
        If an SVM has no margin support vector at beta = 0.
    """
    _check_learner(learner)
    _check_data(data)
    with blas_limit():
        model = clone(learner).fit(data.X_clean, data.y_clean)
        return slope_of_clean_model(model, data, learner)


def slope_of_clean_model(
    model: BaseLearner, data: BackdoorData, learner: BaseLearner | None = None
) -> BackdoorSlope:
    """The backdoor slope from a learner already fitted on the clean set D (beta = 0).

    Lets a caller that also needs the clean model (e.g. a grid study) fit it once. ``model``
    must have been fitted on ``data.X_clean, data.y_clean`` without sample weights; nothing
    checks this. ``learner`` (default: ``model``) is the configuration reported in the result.
    """
    learner = model if learner is None else learner
    with blas_limit():
        y_p = model.encode(data.y_poison, "y_poison")
        y_t = model.encode(data.y_test_bd, "y_test_bd")
        terms = model._slope_terms(data.X_poison, y_p, data.X_test_bd, y_t)
        backdoor_loss = float(np.mean(model.loss_per_sample(data.X_test_bd, data.y_test_bd)))
    derivative = terms.pop("derivative")
    cond = terms.pop("condition_number")
    second = terms.pop("second_derivative")
    return BackdoorSlope(
        derivative=derivative,
        score=float(slope_score(derivative)),
        condition_number=cond,
        backdoor_loss=backdoor_loss,
        second_derivative=second,
        regularization=model.regularization,
        learner=repr(learner),
        params=learner.get_params(),
        details=dict(terms),
    )
