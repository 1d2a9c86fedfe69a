"""Influence of single training points on a test loss, and the slope split point by point.

The influence of training point z_i = (x_i, y_i) on the loss of test points T is the derivative of
their mean loss with respect to *up-weighting* z_i, with the slope's sign and scale (DESIGN §4):
the model minimises

    J(theta; eps) = C sum_k s_k l(y_k, f(x_k)) + eps C l(y_i, f(x_i)) + 1/2 ||w||^2,

(s_k = 1 on the clean set D, beta on the poisoning set P) and

    I_i = d/d eps  mean_{t in T} l(y_t, f(x_t; theta*(eps)))  at eps = 0.

Units: test loss per unit of sample weight, where a weight of 1 is one ordinary training point.
Negative: adding weight to z_i lowers the test loss (z_i *helps* the prediction of y_t);
positive: it raises it (z_i *harms* it). At beta = 0 the influences of the points of P on the
mean loss of the backdoor test set V_t add up to the backdoor learning slope (Eq. 4):
sum_{j in P} I_j = dL(V_t)/dbeta at 0.

Smooth learners (logistic, ridge), implicit function theorem on grad J = 0:

    I_i = - C g_T^T H^{-1} g_i,    g_i = grad_theta l(y_i, f(x_i)),  g_T = mean_t grad_theta l_t,

H the Hessian of J at theta*, regularizer included (one factorization and one solve, v = H^{-1}
g_T, serve every training point: I = -C G v with G the rows g_i).

SVMs (hinge, theta = (a_M, b) over the margin support vectors M), the KKT conditions: a point
with y_i f(x_i) < 1 that is not on the margin is (or, with weight 0, enters as) a bounded support
vector with a_i = C s_i, so up-weighting it moves a_i at rate C; the margin re-balances through
the bordered KKT matrix H = [[Q_MM, y_M], [y_M^T, 0]], d theta / d eps = C H^{-1} g_i (g_i =
-y_i df(x_i)/dtheta), and the test decision values move by df/dtheta . d theta/d eps + C y_i
K(x, x_i). Hence

    I_i = C g_T^T H^{-1} g_i + C y_i mean_t(l'_t K(x_t, x_i))    for y_i f(x_i) < 1, i not in M,

and I_i = 0 otherwise (margin points and points beyond the margin: a small up-weighting changes
neither their dual nor the solution). This is the one-sided derivative (eps -> 0+), the SVM
path being piecewise linear in eps.

Everything is computed from the learners' public contract (``gradient``, ``hessian``,
``decision_function``, ``kernel``, ``margin_``, ``loss``, ``loss_weight``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from .._threads import blas_limit
from .._validation import check_choice, check_labels, check_matrix, check_same_length
from ..data import BackdoorData, check_backdoor_data
from ..learners import LogisticLearner, RidgeLearner, learner_label
from ..learners.base import BaseLearner, check_learner
from ..learners.linear import augment, hessian_solver
from ..learners.svm import DegenerateKKTError
from ..linalg import CholeskySolver, LUSolver

__all__ = [
    "TrainingInfluence",
    "InfluentialPoints",
    "PoisoningContributions",
    "training_influence",
    "influential_points",
    "poisoning_contributions",
    "influence_of_fitted",
]

#: How :func:`influential_points` ranks the training points.
ORDERS = ("abs", "helpful", "harmful")


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TrainingInfluence:
    """Influence of every training point (D, then P) on the mean loss of some test points.

    Attributes
    ----------
    influence : ndarray of shape (n_clean + n_poison,)
        I_i = d mean_t l(y_t, f(x_t)) / d eps_i (see the module docstring), laid out as
        ``data.X_train`` (D first, P last). Negative: up-weighting the point lowers the test loss.
    poisoned : ndarray of bool, shape (n_clean + n_poison,)
        True on the rows of P (the triggered points).
    labels : ndarray of shape (n_clean + n_poison,)
        The training labels, in the user's own values (the attacker's labels on P).
    sample_weight : ndarray of shape (n_clean + n_poison,)
        The weights of the fit that is explained (1 on D, beta on P).
    test_loss : float
        The mean loss of the test points at the fitted model.
    beta : float
        Weight of P in the explained fit (0: the clean model; 1: ordinary training on D and P).
    condition_number : float
        1-norm condition number of the factorized Hessian (SVMs: of the KKT matrix; with more
        features than points, of the n x n dual matrix).
    learner : str
        Display label of the learner.
    params : dict
        Its parameters (``get_params()``).
    """

    influence: np.ndarray
    poisoned: np.ndarray
    labels: np.ndarray
    sample_weight: np.ndarray
    test_loss: float
    beta: float
    condition_number: float
    learner: str
    params: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per training point.

        Returns
        -------
        pandas.DataFrame
            Columns ``index`` (row of ``data.X_train``), ``poisoned``, ``label``,
            ``sample_weight`` and ``influence``.
        """
        return pd.DataFrame(
            {
                "index": np.arange(self.influence.shape[0]),
                "poisoned": self.poisoned,
                "label": self.labels,
                "sample_weight": self.sample_weight,
                "influence": self.influence,
            }
        )


@dataclass(frozen=True)
class InfluentialPoints:
    """The k training points with the largest influence on the loss of one test point.

    Attributes
    ----------
    indices : ndarray of int, shape (k,)
        Rows of ``data.X_train`` (D first, P last), most influential first.
    influence : ndarray of shape (k,)
        Their influences I_i on the test loss l(y, f(x)) (negative: the point helps the model
        predict ``y`` for ``x``).
    poisoned : ndarray of bool, shape (k,)
        Whether each point belongs to P (carries the trigger and the attacker's label).
    labels : ndarray of shape (k,)
        Their training labels.
    X : ndarray of shape (k, n_features)
        The points themselves.
    x : ndarray of shape (n_features,)
        The explained test input.
    y : object
        Its label (for a triggered input, usually the attacker's target).
    test_loss : float
        l(y, f(x)) at the fitted model.
    beta : float
        Weight of P in the explained fit.
    order : str
        The ranking: ``"abs"`` (largest ``|I_i|``), ``"helpful"`` (most negative) or
        ``"harmful"`` (most positive).
    condition_number : float
        Of the factorized Hessian or KKT matrix.
    learner : str
        Display label of the learner.
    image_shape : tuple of int or None
        Shape of one image, for plots (``data.image_shape``).
    all_influence : TrainingInfluence or None
        The influences of every training point.
    """

    indices: np.ndarray
    influence: np.ndarray
    poisoned: np.ndarray
    labels: np.ndarray
    X: np.ndarray
    x: np.ndarray
    y: Any
    test_loss: float
    beta: float
    order: str
    condition_number: float
    learner: str
    image_shape: tuple | None = None
    all_influence: TrainingInfluence | None = field(default=None, repr=False)

    @property
    def fraction_poisoned(self) -> float:
        """Fraction of the k points that belong to P."""
        return float(np.mean(self.poisoned))

    def to_frame(self) -> pd.DataFrame:
        """One row per influential point, most influential first.

        Returns
        -------
        pandas.DataFrame
            Columns ``rank`` (1 = most influential), ``index`` (row of ``data.X_train``),
            ``poisoned``, ``label`` and ``influence``.
        """
        return pd.DataFrame(
            {
                "rank": np.arange(1, self.indices.shape[0] + 1),
                "index": self.indices,
                "poisoned": self.poisoned,
                "label": self.labels,
                "influence": self.influence,
            }
        )

    def plot(self, axes=None, **kwargs):
        """Draw the test point and the influential points as images.

        Parameters
        ----------
        axes : sequence of matplotlib Axes, optional
            k + 1 axes to draw into; new ones of a new figure otherwise.
        **kwargs
            Passed to :meth:`matplotlib.axes.Axes.imshow`.

        Returns
        -------
        matplotlib.figure.Figure
            See :func:`backdoor_curves.explain.plot_influential_points`.
        """
        from .plots import plot_influential_points

        return plot_influential_points(self, axes=axes, **kwargs)


@dataclass(frozen=True)
class PoisoningContributions:
    """The backdoor learning slope split into the contributions of the poisoning points.

    Attributes
    ----------
    contributions : ndarray of shape (n_poison,)
        I_j = d L(V_t) / d eps_j at beta = 0 for each point j of P (rows of ``data.X_poison``):
        the influence of up-weighting that single point on the mean backdoor test loss.
        Negative: the point teaches the backdoor.
    derivative : float
        Their sum, equal to the backdoor slope ``backdoor_slope(learner, data).derivative``
        (mean backdoor loss per unit of beta).
    active : ndarray of bool, shape (n_poison,)
        Points that contribute at all: every point for smooth learners; for SVMs those with
        y_j f(x_j) < 1 at the clean model (the others do not enter the solution at beta = 0+).
    condition_number : float
        Of the factorized Hessian H0 (SVMs: the KKT matrix) of the clean model.
    learner : str
        Display label of the learner.
    params : dict
        Its parameters.
    """

    contributions: np.ndarray
    derivative: float
    active: np.ndarray
    condition_number: float
    learner: str
    params: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per poisoning point.

        Returns
        -------
        pandas.DataFrame
            Columns ``index`` (row of ``data.X_poison``), ``active``, ``contribution`` and
            ``share`` (contribution / derivative; the shares add up to 1).
        """
        share = self.contributions / self.derivative if self.derivative != 0 else np.nan
        return pd.DataFrame(
            {
                "index": np.arange(self.contributions.shape[0]),
                "active": self.active,
                "contribution": self.contributions,
                "share": share,
            }
        )


# ---------------------------------------------------------------------------- the computation
def influence_of_fitted(
    model: BaseLearner, X_train, y_train, sample_weight, X_test, y_test
) -> tuple[np.ndarray, float]:
    """Influences of every training row on the mean test loss, for a model fitted on them.

    One factorization (of the Hessian, or of the SVM's KKT matrix) and one solve serve every
    training row; the cost is one product of the per-sample gradient matrix with a vector.

    Parameters
    ----------
    model : BaseLearner
        A learner fitted on ``X_train, y_train`` with ``sample_weight`` (nothing checks this).
    X_train : array-like of shape (n, n_features)
        The rows passed to ``fit``; rows with weight 0 are allowed (their influence is that of
        a point entering the training set).
    y_train : array-like of shape (n,)
        Their labels, from ``model.classes_``.
    sample_weight : array-like of shape (n,)
        The weights passed to ``fit``.
    X_test : array-like of shape (n_t, n_features)
        Test inputs whose mean loss is explained.
    y_test : array-like of shape (n_t,)
        Their labels.

    Returns
    -------
    influence : ndarray of shape (n,)
        I_i = d mean_t l(y_t, f(x_t)) / d eps_i (module docstring): negative when up-weighting
        row i lowers the test loss.
    condition_number : float
        Of the factorized matrix.

    Raises
    ------
    backdoor_curves.DegenerateKKTError
        For an SVM without margin support vectors.
    backdoor_curves.SingularSystemError
        If the Hessian or KKT matrix cannot be factorized.
    """
    X = check_matrix(X_train, "X_train")
    y = check_labels(y_train, "y_train")
    check_same_length(X, y, "X_train", "y_train")
    sw = np.asarray(sample_weight, dtype=float)
    Xt = check_matrix(X_test, "X_test", n_features=X.shape[1])
    yt = check_labels(y_test, "y_test")
    check_same_length(Xt, yt, "X_test", "y_test")
    C = model.loss_weight
    with blas_limit():
        g_T = model.gradient(Xt, yt).mean(axis=0)
        if model.loss.smooth:
            solver = _smooth_solver(model, X, y, sw)
            v = solver.solve(g_T)
            G = model.gradient(X, y)
            return -C * (G @ v), float(solver.condition_number)
        return _svm_influence(model, X, y, Xt, yt, g_T, C)


def _smooth_solver(model, X, y, sw):
    """A factorization of the Hessian of J at the fitted model: Cholesky or the dual system."""
    if isinstance(model, (LogisticLearner, RidgeLearner)):
        keep = sw > 0
        y_pm = model.encode(y[keep])
        f = model.decision_function(X[keep])
        d = model.loss_weight * sw[keep] * model.loss.d2(y_pm, f)
        return hessian_solver(augment(X[keep]), d, "Hessian")
    return CholeskySolver(model.hessian(X, y, sw), "Hessian")


def _svm_influence(model, X, y, Xt, yt, g_T, C):
    """Influences for the hinge: KKT system on the margin set plus the entering dual's term."""
    if model.margin_.size == 0:
        raise DegenerateKKTError(
            "the SVM has no margin support vector (0 < a_i < C s_i), so the KKT system that "
            "defines the influences is degenerate"
        )
    solver = LUSolver(model.hessian(X, y), "SVM KKT matrix")
    y_pm = model.encode(y)
    yf = y_pm * model.decision_function(X)
    active = yf < 1.0
    active[model.margin_] = False
    influence = np.zeros(X.shape[0])
    if active.any():
        v = solver.solve(g_T)
        G = model.gradient(X[active], y[active])  # rows -y_i df(x_i)/dtheta
        d1_t = model.loss.d1(model.encode(yt), model.decision_function(Xt))
        direct = (d1_t @ model.kernel(Xt, X[active])) / Xt.shape[0]
        influence[active] = C * (G @ v) + C * y_pm[active] * direct
    return influence, float(solver.condition_number)


def _fit(learner, data: BackdoorData, beta: float):
    sw = data.sample_weight(beta)
    model = clone(learner)
    with blas_limit():
        model.fit(data.X_train, data.y_train, sample_weight=sw)
    return model, sw


def _check_beta(beta) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"beta must be a number in [0, 1], got {type(beta).__name__}")
    beta = float(beta)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    return beta


def training_influence(learner, data, X, y, *, beta: float = 1.0) -> TrainingInfluence:
    """Influence of every training point of ``data`` on the mean loss of test points.

    The learner is cloned and fitted on D (weight 1) and P (weight ``beta``); then, for every
    training point i of D and P,

        I_i = d/d eps  mean_t l(y_t, f(x_t))   (point i's weight raised by eps, at eps = 0),

    from one factorization (module docstring): smooth learners I_i = -C g_T^T H^{-1} g_i; SVMs
    through the KKT system on the margin support vectors (one-sided derivative, 0 for points on
    or beyond the margin).

    Parameters
    ----------
    learner : BaseLearner
        A learner of this package (cloned; not modified).
    data : BackdoorData
        The training sets D and P.
    X : array-like of shape (n_t, n_features) or (n_features,)
        Test inputs (one point may be given as a vector).
    y : array-like of shape (n_t,) or a single label
        Their labels, from ``data.classes``.
    beta : float in [0, 1], default=1.0
        Weight of P in the explained fit: 1 explains the poisoned model (ordinary training on
        D and P); 0 the clean model, where P's influences add up to the backdoor slope.

    Returns
    -------
    TrainingInfluence
        Influences laid out as ``data.X_train`` (D first, P last).

    Raises
    ------
    TypeError, ValueError
        Naming the argument: not a learner or a BackdoorData, bad shapes, unknown labels,
        ``beta`` outside [0, 1].
    backdoor_curves.DegenerateKKTError
        For an SVM without margin support vectors.
    """
    check_learner(learner)
    check_backdoor_data(data)
    beta = _check_beta(beta)
    X_t, y_t = _check_test(X, y, data)
    model, sw = _fit(learner, data, beta)
    influence, cond = influence_of_fitted(model, data.X_train, data.y_train, sw, X_t, y_t)
    test_loss = float(np.mean(model.loss_per_sample(X_t, y_t)))
    return TrainingInfluence(
        influence=influence,
        poisoned=data.poison_mask,
        labels=data.y_train,
        sample_weight=sw,
        test_loss=test_loss,
        beta=beta,
        condition_number=cond,
        learner=learner_label(learner),
        params=learner.get_params(),
    )


def _check_test(X, y, data: BackdoorData) -> tuple[np.ndarray, np.ndarray]:
    """Test points as a matrix (a single point may be a vector) and their labels as an array."""
    if X is not None and not hasattr(X, "tocsr") and np.ndim(X) == 1:
        X = np.asarray(X).reshape(1, -1)
    X_t = check_matrix(X, "x", n_features=data.n_features)
    if np.ndim(y) == 0:
        y = np.array([y])
    y_t = check_labels(y, "y")
    check_same_length(X_t, y_t, "x", "y")
    data.encode(y_t, "y")  # unknown labels raise, naming y
    return X_t, y_t


def influential_points(
    learner, data, x, y, k: int = 7, *, beta: float = 1.0, order: str = "abs"
) -> InfluentialPoints:
    """The k training points (clean and poisoned) most influential on the loss of (x, y).

    Influence as in :func:`training_influence`: I_i = d l(y, f(x)) / d eps_i, the derivative of
    the test point's loss with respect to up-weighting training point i (same sign and scale as
    the backdoor slope: negative means the point helps the model predict ``y`` for ``x``).
    All the influences come from one factorization of the Hessian (SVMs: the KKT matrix).

    Parameters
    ----------
    learner : BaseLearner
        A learner of this package (cloned; not modified).
    data : BackdoorData
        The training sets D and P.
    x : array-like of shape (n_features,)
        The test input, e.g. a triggered test image ``data.X_test_bd[i]``.
    y : label
        Its label, from ``data.classes`` (e.g. the attacker's target ``data.y_test_bd[i]``).
    k : int, default=7
        Number of points returned (the paper's Fig. 13-14 show seven).
    beta : float in [0, 1], default=1.0
        Weight of P in the explained fit (1: the poisoned model; 0: the clean model).
    order : {"abs", "helpful", "harmful"}, default="abs"
        Rank by ``|I_i|``, by the most negative I_i (points whose up-weighting lowers the loss
        most) or by the most positive.

    Returns
    -------
    InfluentialPoints
        The points, their influences, whether they carry the trigger, and every influence in
        ``all_influence``.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: ``x`` not a single point, ``y`` not one label of ``data.classes``,
        ``k`` not a positive int, unknown ``order``, ``beta`` outside [0, 1].
    """
    check_learner(learner)
    check_backdoor_data(data)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    order = check_choice(order, "order", ORDERS)
    X_t, y_t = _check_test(x, y, data)
    if X_t.shape[0] != 1:
        raise ValueError(f"x must be one point of shape (n_features,), got {X_t.shape[0]} rows")
    full = training_influence(learner, data, X_t, y_t, beta=beta)
    I = full.influence
    key = {"abs": -np.abs(I), "helpful": I, "harmful": -I}[order]
    idx = np.argsort(key, kind="stable")[: min(int(k), I.shape[0])]
    n_nonzero = int(np.count_nonzero(I))
    if n_nonzero < idx.shape[0]:
        warnings.warn(
            f"only {n_nonzero} of the {I.shape[0]} training points have a non-zero influence on "
            f"this test point (e.g. an SVM whose test point lies beyond the margin, or with no "
            f"bounded support vector); the other points returned have influence 0",
            UserWarning,
            stacklevel=2,
        )
    X_train = data.X_train
    return InfluentialPoints(
        indices=idx,
        influence=I[idx],
        poisoned=full.poisoned[idx],
        labels=full.labels[idx],
        X=X_train[idx],
        x=X_t[0],
        y=y_t[0],
        test_loss=full.test_loss,
        beta=full.beta,
        order=order,
        condition_number=full.condition_number,
        learner=full.learner,
        image_shape=data.image_shape,
        all_influence=full,
    )


def poisoning_contributions(learner, data) -> PoisoningContributions:
    """The backdoor learning slope split into one contribution per poisoning point.

    The clean model (fitted on D, beta = 0) is explained on the mean backdoor test loss L(V_t):
    the contribution of poisoning point j is its influence

        I_j = d L(V_t) / d eps_j = - C g_{V_t}^T H0^{-1} g_j          (smooth learners)

    (SVMs: the KKT form of the module docstring, 0 for points with y_j f(x_j) >= 1). Since the
    slope's right-hand side is C sum_{j in P} g_j, the contributions add up to the slope:
    sum_j I_j = dL(V_t)/dbeta at 0 = ``backdoor_slope(learner, data).derivative``.

    Parameters
    ----------
    learner : BaseLearner
        A learner of this package (cloned; not modified).
    data : BackdoorData
        The poisoned data set.

    Returns
    -------
    PoisoningContributions
        Per-point contributions (rows of ``data.X_poison``; negative: the point teaches the
        backdoor), their sum ``derivative`` and the SVM's active points.

    Raises
    ------
    TypeError
        If ``learner`` is not a learner of this package or ``data`` not a BackdoorData.
    backdoor_curves.DegenerateKKTError
        For an SVM without margin support vectors at beta = 0.
    """
    check_learner(learner)
    check_backdoor_data(data)
    model, sw = _fit(learner, data, 0.0)
    influence, cond = influence_of_fitted(
        model, data.X_train, data.y_train, sw, data.X_test_bd, data.y_test_bd
    )
    contributions = influence[data.n_clean :]
    if model.loss.smooth:
        active = np.ones(data.n_poison, bool)
    else:
        y_p = model.encode(data.y_poison, "y_poison")
        active = y_p * model.decision_function(data.X_poison) < 1.0
    return PoisoningContributions(
        contributions=contributions,
        derivative=float(contributions.sum()),
        active=active,
        condition_number=cond,
        learner=learner_label(learner),
        params=learner.get_params(),
    )
