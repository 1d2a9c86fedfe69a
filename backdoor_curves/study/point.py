"""One grid point: the slope, accuracies, losses and deviation of one learner on one data set.

:func:`evaluate_point` fits the clean model theta0 once, on D (beta = 0): it gives the backdoor
slope (derivative, score, condition number;
:func:`backdoor_curves.measures.slope.slope_of_clean_model`) and the backdoor loss at beta = 0.
The poisoned model theta*(1) is fitted on D and P (beta = 1; warm-started from theta0 where the
learner supports it): it gives the clean and backdoor accuracy, the backdoor loss at beta = 1 and
the parameter deviation rho_ratio and nu from theta0 to theta*(1). Optionally the whole learning
curve. A quantity that cannot be computed is NaN and its
error is recorded, never raised: :func:`backdoor_curves.study.grid.grid_study` runs this per point.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np
from sklearn.base import clone

from .._threads import blas_limit
from ..data import BackdoorData
from ..learners.base import BaseLearner
from ..measures.curves import learning_curve, score_decisions
from ..measures.deviation import parameter_deviation
from ..measures.results import CURVE_COLUMNS
from ..measures.slope import slope_of_clean_model

__all__ = [
    "RESULT_COLUMNS",
    "CURVE_VALUE_COLUMNS",
    "CONDITION_DIGITS",
    "describe_error",
    "evaluate_point",
    "WarmStart",
    "warning_text",
]

#: Result columns of a grid table (NaN where a quantity could not be computed; see ``error``).
RESULT_COLUMNS = (
    "derivative",
    "score",
    "condition_number",
    "backdoor_loss_0",
    "clean_accuracy",
    "backdoor_accuracy",
    "backdoor_loss_1",
    "rho_ratio_1",
    "nu_1",
)
#: Curve columns stored per point (as tuples, one value per beta) when ``betas`` is given.
CURVE_VALUE_COLUMNS = tuple(c for c in CURVE_COLUMNS if c != "beta")


# ---------------------------------------------------------------------------- one point
def describe_error(exc: BaseException) -> str:
    """``"<ExceptionType>: <message>"`` on one line, as a table's ``error`` column records it.

    Parameters
    ----------
    exc : BaseException
        The exception caught.

    Returns
    -------
    str
        Its type name and message, newlines replaced by spaces.
    """
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def warning_text(caught) -> str:
    """The distinct messages of recorded warnings, ``"<Category>: <message>"`` joined by "; ".

    Parameters
    ----------
    caught : list of warnings.WarningMessage
        From ``warnings.catch_warnings(record=True)``.

    Returns
    -------
    str
    """
    messages = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    return "; ".join(m.replace("\n", " ") for m in messages)


#: Significant digits kept of the condition-number estimate (see :func:`_reproducible`).
CONDITION_DIGITS = 10


def _reproducible(estimate: float) -> float:
    """A LAPACK condition-number estimate to :data:`CONDITION_DIGITS` significant digits.

    ``dpocon``/``dgecon`` estimate the 1-norm condition number iteratively through OpenBLAS
    kernels whose summation order depends on the memory alignment of their work arrays: the
    same matrix gives estimates that differ in the last one or two bits from one process to
    another (measured: up to 3e-16 relative). The estimate is only meant to within a small
    factor, so ten significant digits keep all its information and make the tables the same
    whatever the worker.
    """
    return float(f"{float(estimate):.{CONDITION_DIGITS - 1}e}")


def _poisoned_scores(model: BaseLearner, data: BackdoorData) -> dict:
    """Accuracies and mean backdoor loss of a fitted model (the formulas of a learning curve)."""
    scores = score_decisions(
        model.loss,
        data.encode(data.y_test_bd),
        model.decision_function(data.X_test_bd),
        data.encode(data.y_test),
        model.decision_function(data.X_test),
    )
    return {
        "clean_accuracy": scores["clean_accuracy"],
        "backdoor_accuracy": scores["backdoor_accuracy"],
        "backdoor_loss_1": scores["backdoor_loss"],
    }


def _deviation_reference(model0: BaseLearner, data: BackdoorData, gram) -> np.ndarray:
    """theta0's deviation vector laid out like a model fitted on D followed by P.

    theta0 is fitted on D only; a kernel model's dual vector then covers D alone and P's
    entries are 0 (what a fit with weight 0 on P returns).
    """
    v0 = np.array(model0.deviation_vector(), dtype=float, copy=True)
    if gram is not None and v0.shape[0] == data.n_clean:
        v0 = np.r_[v0, np.zeros(data.n_poison)]
    return v0


class WarmStart:
    """The fitted models of the previous grid point of a chain, to warm-start the next one.

    A chain holds the points of one data set and learner that differ only in the
    regularization; :func:`evaluate_point` starts each fit from the previous point's models.

    Attributes
    ----------
    clean, poisoned : BaseLearner or None
        The previous point's model fitted on D (beta = 0) and on D and P (beta = 1).
    """

    def __init__(self):
        self.clean = self.poisoned = None


def _warm_model(previous: BaseLearner | None, learner: BaseLearner) -> BaseLearner | None:
    """``previous`` re-configured as ``learner`` with ``warm_start=True`` (None: no warm start)."""
    if previous is None or "warm_start" not in learner.get_params():
        return None
    if type(previous) is not type(learner):
        return None
    return previous.set_params(**learner.get_params()).set_params(warm_start=True)


def evaluate_point(
    learner: BaseLearner, data: BackdoorData, betas=None, *, warm: WarmStart | None = None
) -> dict:
    """Slope, accuracies, losses and deviation of one learner on one poisoned data set.

    The clean model (beta = 0, fitted on D) is fitted once and serves both the slope and the
    deviation reference; the poisoned model (beta = 1) is warm-started from it where the learner
    has ``warm_start``. Each part fails on its own: a failed slope (e.g. an SVM without margin
    support vectors) still leaves the accuracies, and vice versa.

    Parameters
    ----------
    learner : BaseLearner
        The configured learner (cloned; not modified).
    data : BackdoorData
        The poisoned data set: D and P for training, V and V_t for the test quantities.
    betas : array-like of float in [0, 1], optional
        Also compute the learning curve at these betas
        (:func:`~backdoor_curves.measures.curves.learning_curve` with ``method="auto"``: a
        separate exact path from beta = 0).
    warm : WarmStart, optional
        The previous point of a chain along the regularization (a grid sweeping C on the same
        data): where the learner has ``warm_start`` (the logistic learner and the SVMs), both
        fits start from that point's models, and ``warm`` receives this point's. The answers
        are the same optimum, reached in fewer steps: to the solver's tolerance for the logistic
        learner (Newton stops where its step is below ``tol``); for the SVMs, SMO from the
        previous duals (scaled into the new boxes) followed by the exact KKT polish, which
        depends only on the margin and bound sets, so a certified warm fit is the cold fit's
        optimum (the same bits where both read the same sets) and an uncertified one is
        replaced by the cold fit (:func:`~backdoor_curves.learners.svm.solve_svm_dual`).

    Returns
    -------
    dict
        The :data:`RESULT_COLUMNS` (floats, NaN where not computed), ``error`` (empty string, or
        "<part>: <ExceptionType>: <message>" joined by "; "), ``warning`` (messages of the
        warnings raised, joined by "; ") and, with ``betas``, ``curve_<column>`` tuples for each
        of :data:`CURVE_VALUE_COLUMNS` (None when the curve failed). Errors are recorded here,
        never raised.
    """
    row: dict[str, Any] = dict.fromkeys(RESULT_COLUMNS, math.nan)
    errors = []
    can_warm = "warm_start" in learner.get_params()
    with warnings.catch_warnings(record=True) as caught, blas_limit():
        warnings.simplefilter("always")
        model0 = v0 = gram = None
        try:
            fitting = _warm_model(warm and warm.clean, learner)
            if fitting is None:
                fitting = clone(learner)
                if warm is not None and can_warm:  # a chain's first fit: the chain's solver
                    fitting.set_params(warm_start=True)
            model0 = fitting.fit(data.X_clean, data.y_clean)
            gram = model0.deviation_gram(data.X_train)
            v0 = _deviation_reference(model0, data, gram)
            row["backdoor_loss_0"] = float(
                np.mean(model0.loss_per_sample(data.X_test_bd, data.y_test_bd))
            )
        except Exception as exc:  # recorded per point, never dropped
            errors.append("fit at beta=0: " + describe_error(exc))
        if warm is not None:
            warm.clean = model0
        if model0 is not None:
            try:
                slope = slope_of_clean_model(model0, data, learner)
            except Exception as exc:
                errors.append("slope: " + describe_error(exc))
            else:
                row.update(
                    derivative=float(slope.derivative),
                    score=float(slope.score),
                    condition_number=_reproducible(slope.condition_number),
                )
        try:
            model1 = _warm_model(warm and warm.poisoned, learner)
            if model1 is None and model0 is not None and can_warm:
                model1 = copy.deepcopy(model0).set_params(warm_start=True)
            if model1 is None:
                model1 = clone(learner)
            model1.fit(data.X_train, data.y_train, sample_weight=data.sample_weight(1.0))
            row.update(_poisoned_scores(model1, data))
            if v0 is not None:
                v1 = np.asarray(model1.deviation_vector(), dtype=float)
                dev = parameter_deviation(v1[None, :], v0, gram)
                row.update(rho_ratio_1=float(dev["rho_ratio"][0]), nu_1=float(dev["nu"][0]))
        except Exception as exc:
            errors.append("fit at beta=1: " + describe_error(exc))
            model1 = None
        if warm is not None:
            warm.poisoned = model1
        if betas is not None:
            try:
                curve = learning_curve(learner, data, betas=betas)
            except Exception as exc:
                errors.append("curve: " + describe_error(exc))
                row.update({f"curve_{c}": None for c in CURVE_VALUE_COLUMNS})
            else:
                row.update({f"curve_{c}": tuple(map(float, curve[c])) for c in CURVE_VALUE_COLUMNS})
    row["error"] = "; ".join(errors)
    row["warning"] = warning_text(caught)
    return row


# ---------------------------------------------------------------------------- the grid
