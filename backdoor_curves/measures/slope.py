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

Numerics: every slope carries the 1-norm condition number of the matrix it factorized, and an
:class:`~backdoor_curves.linalg.IllConditionedWarning` is issued when it exceeds
:data:`~backdoor_curves.linalg.ILL_CONDITIONED` (1e12). Nothing is damped or pseudo-inverted:
a matrix that cannot be factorized raises, naming the cause. Exact reductions are reported in
``details``: duplicated training rows of an SVM are merged (``duplicates_merged``); Hessians
and KKT matrices are solved after an exact diagonal scaling (features of scale 1e8 next to the
intercept), which changes no number but the digits kept.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from .._threads import blas_limit
from ..data import BackdoorData, check_backdoor_data
from ..learners import learner_label
from ..learners.base import BaseLearner, check_learner
from .results import BackdoorSlope, slope_score

__all__ = ["backdoor_slope", "slope_of_clean_model"]


def backdoor_slope(learner: BaseLearner, data: BackdoorData) -> BackdoorSlope:
    """Compute the backdoor learning slope of ``learner`` on ``data``.

    The learner is cloned and fitted on the clean set D only (beta = 0); nothing is re-trained
    on the poisoning set. Cost: one fit plus one factorization of the Hessian (or KKT matrix).

    Parameters
    ----------
    learner : BaseLearner
        An unfitted or fitted learner (it is cloned; the argument is not modified).
    data : BackdoorData
        The poisoned data set: the clean model is fitted on D; P and V_t enter the derivative.

    Returns
    -------
    BackdoorSlope
        The derivative dL(V_t)/dbeta at beta = 0 (negative when the backdoor is being learned),
        its score in (-1, 1), the condition number and the second derivative.

    Raises
    ------
    TypeError
        If ``learner`` is not a learner of this package or ``data`` not a BackdoorData.
    backdoor_curves.linalg.SingularSystemError
        If H0 / the KKT matrix cannot be factorized (singular in floating point).
    backdoor_curves.learners.svm.DegenerateKKTError
        If an SVM has no margin support vector at beta = 0, or a poisoning point lies exactly
        on its margin; the message says why and what to change.
    backdoor_curves.learners.svm.SVMConvergenceError
        If libsvm cannot fit the clean set within its iteration budget (a huge C on data that
        are not separable).

    Warns
    -----
    backdoor_curves.linalg.IllConditionedWarning
        When the condition number exceeds :data:`~backdoor_curves.linalg.ILL_CONDITIONED`
        (1e12); the result still carries it.
    """
    check_learner(learner)
    check_backdoor_data(data)
    with blas_limit():
        model = clone(learner).fit(data.X_clean, data.y_clean)
        return slope_of_clean_model(model, data, learner)


def slope_of_clean_model(
    model: BaseLearner, data: BackdoorData, learner: BaseLearner | None = None
) -> BackdoorSlope:
    """The backdoor slope from a learner already fitted on the clean set D (beta = 0).

    Lets a caller that also needs the clean model (e.g. a grid study) fit it once.

    Parameters
    ----------
    model : BaseLearner
        A learner fitted on ``data.X_clean, data.y_clean`` without sample weights; nothing
        checks this.
    data : BackdoorData
        The poisoned data set ``model`` was fitted on the clean part of.
    learner : BaseLearner, optional
        The configuration reported in the result (label and ``params``); default ``model``.

    Returns
    -------
    BackdoorSlope
        As :func:`backdoor_slope`.

    Raises
    ------
    backdoor_curves.linalg.SingularSystemError
        If H0 / the KKT matrix cannot be factorized.
    backdoor_curves.learners.svm.DegenerateKKTError
        If an SVM has no margin support vector at beta = 0, or a poisoning point lies exactly
        on its margin.

    Warns
    -----
    backdoor_curves.linalg.IllConditionedWarning
        When the condition number exceeds :data:`~backdoor_curves.linalg.ILL_CONDITIONED`
        (1e12).
    """
    learner = model if learner is None else learner
    with blas_limit():
        terms = model.slope_terms(data)
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
        learner=learner_label(learner),
        params=learner.get_params(),
        details=dict(terms),
    )
