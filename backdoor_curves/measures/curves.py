"""Backdoor learning curves: beta -> L(V_t, theta*(beta)) for beta in [0, 1] (DESIGN §3).

theta*(beta) minimises the learner's objective with sample weight 1 on the clean set D and
``beta`` on the poisoning set P; beta = 0 is the clean model (P removed), beta = 1 ordinary
training on the poisoned set. Every point is an exact optimum (to solver tolerance) — the same model
scikit-learn's estimator returns for those sample weights — whether it comes from a warm-started
re-fit or from following the exact path (:mod:`backdoor_curves.paths.smooth`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from tqdm.auto import tqdm

from .._threads import blas_limit
from .._validation import check_betas, check_choice
from ..data import BackdoorData
from ..learners.base import BaseLearner
from ..learners.linear import augment
from ..learners.svm import solve_svm_dual
from ..paths.smooth import logistic_path, ridge_path
from ..paths.svm import svm_path
from .deviation import parameter_deviation
from .slope import _check_data, _check_learner

__all__ = ["LearningCurve", "learning_curve", "default_betas", "CURVE_COLUMNS", "METHODS"]

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
    """0 followed by ``n - 1`` log-spaced values from 0.01 to 1 (both ends of [0, 1] included)."""
    if not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    return np.r_[0.0, np.geomspace(0.01, 1.0, n - 1)]


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
        The learner's repr.
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
        """One row per beta with the columns of :data:`CURVE_COLUMNS`."""
        frame = pd.DataFrame({"beta": self.betas, **self.values}, columns=list(CURVE_COLUMNS))
        frame.attrs.update(learner=self.learner, regularization=self.regularization)
        return frame

    def plot(self, ax=None, **kwargs):
        """Plot the backdoor loss against beta (see
        :func:`backdoor_curves.viz.plots.plot_curves`)."""
        from ..viz.plots import plot_curves

        return plot_curves([self], ax=ax, **kwargs)


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
    betas : array-like of float in [0, 1], optional
        Weights of the poisoning set; default :func:`default_betas` (21 points, 0 and 1 included).
    method : {"auto", "path", "refit"}, default="auto"
        "refit" fits the learner at every beta (warm-started); "path" follows the exact path
        without re-fitting (ridge: closed form; logistic: predictor-corrector, see
        :mod:`backdoor_curves.paths.smooth`; SVMs: the piecewise-linear dual path event by event,
        see
        :mod:`backdoor_curves.paths.svm`); "auto" picks "path" where the learner has one, else
        "refit". Every method returns the same optima to solver tolerance.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    LearningCurve
    """
    _check_learner(learner)
    _check_data(data)
    betas = default_betas() if betas is None else check_betas(betas)
    method = check_choice(method, "method", METHODS)
    path = getattr(learner, "_path_kind", None)
    if method == "path" and path is None:
        raise ValueError(
            f"method='path' is not available for {type(learner).__name__} yet; "
            "use method='refit' (or 'auto')"
        )
    model = clone(learner)
    unique = np.unique(np.r_[0.0, betas])  # beta = 0 is always computed: deviation reference
    with blas_limit():
        gram = model._deviation_gram(data.X_train)  # None: Euclidean (linear models)
        if method == "refit" or path is None:
            fits, events = _refit(model, data, unique, progress), []
        else:
            fits, events = _follow_path(model, data, unique, path, gram)
        return _assemble(model, learner, data, betas, fits, events, gram)


def _refit(model, data, unique, progress) -> dict:
    """beta -> (f on V_t, f on V, deviation vector), one warm-started fit per beta."""
    if "warm_start" in model.get_params():
        model.set_params(warm_start=True)
    X, y = data.X_train, data.y_train
    fits = {}
    for beta in tqdm(unique, desc=type(model).__name__, disable=not progress, leave=False):
        model.fit(X, y, sample_weight=data.sample_weight(beta))
        fits[beta] = (
            model.decision_function(data.X_test_bd),
            model.decision_function(data.X_test),
            np.array(model._deviation_vector(), copy=True),
        )
    return fits


def _follow_path(model, data, unique, kind: str, gram) -> tuple[dict, list]:
    """beta -> (f on V_t, f on V, deviation vector) from the exact path, without re-fitting."""
    model._check_params()  # no fit needed: the path computes every optimum itself
    if kind == "svm":
        return _follow_svm_path(model, data, unique, gram)
    Xa_D, Xa_P = augment(data.X_clean), augment(data.X_poison)
    y_D, y_P = data.encode(data.y_clean), data.encode(data.y_poison)
    if kind == "ridge":
        thetas = ridge_path(Xa_D, y_D, Xa_P, y_P, model._C, unique)
    else:
        thetas, _ = logistic_path(
            Xa_D, y_D, Xa_P, y_P, model._C, unique, tol=model.tol, max_iter=model.max_iter
        )
    F_bd = augment(data.X_test_bd) @ thetas.T
    F_cl = augment(data.X_test) @ thetas.T
    return {b: (F_bd[:, k], F_cl[:, k], thetas[k, :-1]) for k, b in enumerate(unique)}, []


def _follow_svm_path(model, data, unique, gram) -> tuple[dict, list]:
    """The SVM dual path; ``gram`` is the deviation Gram matrix (RBF: the kernel; else None)."""
    X = data.X_train
    y = data.encode(data.y_train)
    K = model._kernel(X, X) if gram is None else gram  # RBF: the Gram matrix is the kernel

    def refit(beta):  # libsvm + KKT polish on the kernel the path already holds
        alpha, b, _ = solve_svm_dual(K, y, model.C, data.sample_weight(beta), model.tol)
        return alpha, b

    alpha0, b0 = refit(0.0)
    alphas, bs, events, _ = svm_path(K, y, data.n_clean, model.C, unique, alpha0, b0, refit)
    coef = alphas * y  # signed duals y_i a_i over D u P, one row per beta
    if gram is None:  # linear: w(beta) = X^T coef, so f = X w + b without a test kernel
        vectors = coef @ X
        F_bd = data.X_test_bd @ vectors.T + bs
        F_cl = data.X_test @ vectors.T + bs
    else:  # one test kernel, on the points that are support vectors at some beta
        vectors = coef
        used = np.flatnonzero(np.any(coef != 0.0, axis=0))
        tests = np.vstack([data.X_test_bd, data.X_test])
        F = model._kernel(tests, X[used]) @ coef[:, used].T + bs
        F_bd, F_cl = F[: len(data.X_test_bd)], F[len(data.X_test_bd) :]
    return {b: (F_bd[:, k], F_cl[:, k], vectors[k]) for k, b in enumerate(unique)}, events


def _assemble(model, learner, data, betas, fits, events, gram) -> LearningCurve:
    y_bd, y_cl = data.encode(data.y_test_bd), data.encode(data.y_test)
    rows = {}
    for beta, (f_bd, f_cl, _) in fits.items():
        rows[beta] = (
            float(np.mean(model.loss.value(y_bd, f_bd))),
            float(np.mean(model.loss.value(y_cl, f_cl))),
            float(np.mean(np.where(f_cl > 0, 1.0, -1.0) == y_cl)),
            float(np.mean(np.where(f_bd > 0, 1.0, -1.0) == y_bd)),
        )
    deviation = parameter_deviation(np.array([fits[b][2] for b in betas]), fits[0.0][2], gram)
    table = np.array([rows[b] for b in betas]).reshape(len(betas), 4)
    values = {
        "backdoor_loss": table[:, 0],
        "clean_loss": table[:, 1],
        "clean_accuracy": table[:, 2],
        "backdoor_accuracy": table[:, 3],
        **deviation,
    }
    return LearningCurve(
        betas,
        values,
        repr(learner),
        model.regularization,
        params=learner.get_params(),
        events=pd.DataFrame(events, columns=["beta", "index", "from", "to"]),
    )
