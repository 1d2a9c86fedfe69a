"""Backdoor learning curves: beta -> L(V_t, theta*(beta)) for beta in [0, 1] (DESIGN §3).

theta*(beta) minimises the learner's objective with sample weight 1 on the clean set D and
``beta`` on the poisoning set P; beta = 0 is the clean model (P removed), beta = 1 ordinary
training on the poisoned set. Every point is an exact optimum (to solver tolerance) — the same model
scikit-learn's estimator returns for those sample weights — whether it comes from a warm-started
re-fit or from following the exact path (:mod:`backdoor_curves.paths.smooth`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from tqdm.auto import tqdm

from .._threads import blas_limit
from .._validation import check_betas, check_choice
from ..data import BackdoorData, check_backdoor_data
from ..learners import learner_label
from ..learners.base import BaseLearner, check_learner
from ..paths import PathFits, exact_path, has_exact_path
from .deviation import parameter_deviation
from .results import LearningCurve, default_betas

__all__ = ["learning_curve", "score_decisions", "SCORE_COLUMNS", "METHODS"]

#: The columns :func:`score_decisions` computes from one model's decision values.
SCORE_COLUMNS = ("backdoor_loss", "clean_loss", "clean_accuracy", "backdoor_accuracy")
METHODS = ("auto", "path", "refit")


def learning_curve(
    learner: BaseLearner,
    data: BackdoorData,
    betas=None,
    *,
    method: str = "auto",
    progress: bool = False,
) -> LearningCurve:
    """Compute the backdoor learning curve of ``learner`` on ``data``.

    Parameters
    ----------
    learner : BaseLearner
        The learner (cloned; the argument is not modified).
    data : BackdoorData
        The poisoned data set: the learner is trained on D (weight 1) and P (weight beta) and
        evaluated on V and V_t.
    betas : array-like of float in [0, 1], optional
        Weights of the poisoning set; default :func:`default_betas` (21 points, 0 and 1 included).
    method : {"auto", "path", "refit"}, default="auto"
        "refit" fits the learner at every beta (warm-started); "path" follows the exact path
        without re-fitting (ridge: closed form; logistic: predictor-corrector, see
        :mod:`backdoor_curves.paths.smooth`; SVMs: the piecewise-linear dual path event by event,
        see :mod:`backdoor_curves.paths.svm`); "auto" picks "path" where the learner has one
        (:func:`backdoor_curves.paths.has_exact_path`), else "refit". Every method returns the
        same optima to solver tolerance.
    progress : bool, default=False
        Show a progress bar on stderr over the betas computed (0 included): one step per
        re-fit; an exact path is followed in one pass, so its bar is shown while the path runs
        and filled when it ends (with the number of SVM path events).

    Returns
    -------
    LearningCurve
        One value per requested beta, in the order given; beta = 0 is always computed as the
        reference of the parameter deviation.

    Raises
    ------
    TypeError
        If ``learner`` is not a learner of this package or ``data`` not a BackdoorData.
    ValueError
        If a beta is outside [0, 1], ``method`` is unknown, ``method="path"`` is asked of a
        learner without an exact path, or a learner parameter is invalid.
    """
    check_learner(learner).validate_params()  # before any kernel or path reads them
    check_backdoor_data(data)
    betas = default_betas() if betas is None else check_betas(betas)
    method = check_choice(method, "method", METHODS)
    follow = method != "refit" and has_exact_path(learner)
    if method == "path" and not follow:
        raise ValueError(
            f"method='path' is not available for {type(learner).__name__} yet; "
            "use method='refit' (or 'auto')"
        )
    model = clone(learner)
    unique = np.unique(np.r_[0.0, betas])  # beta = 0 is always computed: deviation reference
    with blas_limit():
        gram = model.deviation_gram(data.X_train)  # None: Euclidean (linear models)
        if follow:
            fits = _follow(model, data, unique, gram, progress)
        else:
            fits = _refit(model, data, unique, progress)
        return _assemble(model, learner, data, betas, fits, gram)


def score_decisions(loss, y_bd, f_bd, y_cl, f_cl) -> dict[str, float]:
    """Mean losses and accuracies of one model from its decision values on V_t and V.

    Parameters
    ----------
    loss : Loss
        The learner's own loss l(y, f).
    y_bd, f_bd : ndarray of shape (n_backdoor_test,)
        Encoded labels (attacker's, in {-1, +1}) and decision values on V_t.
    y_cl, f_cl : ndarray of shape (n_test,)
        Encoded labels and decision values on V.

    Returns
    -------
    dict of str -> float
        ``backdoor_loss`` (mean l on V_t), ``clean_loss`` (mean l on V), ``clean_accuracy``
        (on V) and ``backdoor_accuracy`` (attack success rate on V_t), each in [0, 1] for the
        accuracies; a prediction is +1 where f > 0.
    """
    return {
        "backdoor_loss": float(np.mean(loss.value(y_bd, f_bd))),
        "clean_loss": float(np.mean(loss.value(y_cl, f_cl))),
        "clean_accuracy": float(np.mean(np.where(f_cl > 0, 1.0, -1.0) == y_cl)),
        "backdoor_accuracy": float(np.mean(np.where(f_bd > 0, 1.0, -1.0) == y_bd)),
    }


def _follow(model, data, unique, gram, progress) -> PathFits:
    """The exact path at ``unique`` betas, with a bar that fills when the path is done."""
    with tqdm(
        total=len(unique),
        desc=f"{type(model).__name__} exact path",
        unit="beta",
        disable=not progress,
        leave=False,
    ) as bar:
        fits = exact_path(model, data, unique, gram)
        if fits.events:
            bar.set_postfix(events=len(fits.events), refresh=False)
        bar.update(len(unique))
        bar.refresh()  # the final count, however fast the path was
    return fits


def _refit(model, data, unique, progress) -> PathFits:
    """The optima at ``unique`` betas, one warm-started fit per beta."""
    if "warm_start" in model.get_params():
        model.set_params(warm_start=True)
    X, y = data.X_train, data.y_train
    F_bd, F_cl, vectors = [], [], []
    desc = f"{type(model).__name__} re-fits"
    for beta in tqdm(unique, desc=desc, unit="beta", disable=not progress, leave=False):
        model.fit(X, y, sample_weight=data.sample_weight(beta))
        F_bd.append(model.decision_function(data.X_test_bd))
        F_cl.append(model.decision_function(data.X_test))
        vectors.append(np.array(model.deviation_vector(), copy=True))
    return PathFits(unique, np.array(F_bd), np.array(F_cl), np.array(vectors))


def _assemble(model, learner, data, betas, fits: PathFits, gram) -> LearningCurve:
    y_bd, y_cl = data.encode(data.y_test_bd), data.encode(data.y_test)
    row = {float(b): k for k, b in enumerate(fits.betas)}
    scores = [
        score_decisions(model.loss, y_bd, fits.F_backdoor[row[b]], y_cl, fits.F_clean[row[b]])
        for b in betas
    ]
    vectors = np.array([fits.vectors[row[b]] for b in betas])
    deviation = parameter_deviation(vectors, fits.vectors[row[0.0]], gram)
    values = {c: np.array([s[c] for s in scores]) for c in SCORE_COLUMNS}
    return LearningCurve(
        betas,
        {**values, **deviation},
        learner_label(learner),
        model.regularization,
        params=learner.get_params(),
        events=pd.DataFrame(fits.events, columns=["beta", "index", "from", "to"]),
    )
