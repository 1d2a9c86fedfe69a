"""How each learner's exact path in beta is followed: one registration per learner class.

:func:`exact_path` is a :func:`functools.singledispatch` function: a learner class registers how
its optima theta*(beta) are computed along beta without re-fitting, and
:func:`backdoor_curves.learning_curve` calls it for ``method="path"`` (and ``"auto"``). A learner
without a registration is re-fitted at every beta. The neural-network adapter and user-defined
learners register the same way::

    @exact_path.register
    def _(learner: MyLearner, data, betas, gram):
        ...
        return PathFits(betas, F_backdoor, F_clean, vectors)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..data import BackdoorData
from ..learners import LinearSVMLearner, LogisticLearner, RBFSVMLearner, RidgeLearner
from ..learners.linear import augment
from ..learners.svm import solve_svm_dual
from .smooth import logistic_path, ridge_path
from .svm import svm_path

__all__ = ["PathFits", "exact_path", "has_exact_path"]


@dataclass(frozen=True)
class PathFits:
    """Decision values and deviation vectors of the optima at a sorted set of betas.

    Attributes
    ----------
    betas : ndarray of shape (n_betas,)
        Sorted, unique betas in [0, 1].
    F_backdoor : ndarray of shape (n_betas, n_backdoor_test)
        Decision values f(V_t) at each beta.
    F_clean : ndarray of shape (n_betas, n_test)
        Decision values f(V) at each beta.
    vectors : ndarray of shape (n_betas, n_dev)
        Deviation vectors (:meth:`~backdoor_curves.learners.BaseLearner.deviation_vector`).
    events : list of dict
        SVM paths: one dict per event with the keys ``beta``, ``index`` (row of D followed by
        P), ``from`` and ``to`` (set names: zero, margin, bound); empty otherwise.
    """

    betas: np.ndarray
    F_backdoor: np.ndarray
    F_clean: np.ndarray
    vectors: np.ndarray
    events: list = field(default_factory=list)


@functools.singledispatch
def exact_path(learner, data: BackdoorData, betas: np.ndarray, gram) -> PathFits:
    """The optima along beta of ``learner`` on ``data``, without re-fitting.

    Parameters
    ----------
    learner : BaseLearner
        The configured learner (its parameters are read; it is not fitted).
    data : BackdoorData
        The poisoned data set: D and P for the path, V and V_t for the decision values.
    betas : ndarray of shape (n_betas,)
        Sorted unique betas in [0, 1], 0 included.
    gram : ndarray of shape (n_train, n_train) or None
        The deviation's Gram matrix over ``data.X_train`` (kernel SVMs: the kernel), else None.

    Returns
    -------
    PathFits
        Decision values on V_t and V and deviation vectors at each beta (and the SVM events).

    Raises
    ------
    NotImplementedError
        If no exact path is registered for the learner's class.
    """
    raise NotImplementedError(f"no exact path is registered for {type(learner).__name__}")


def has_exact_path(learner) -> bool:
    """Whether an exact path is registered for ``learner``'s class.

    Parameters
    ----------
    learner : BaseLearner
        A learner instance; only its class is looked up (subclasses inherit registrations).

    Returns
    -------
    bool
        False when :func:`exact_path` would raise ``NotImplementedError`` (the learner is then
        re-fitted at every beta).
    """
    return exact_path.dispatch(type(learner)) is not exact_path.dispatch(object)


def _smooth_arrays(data: BackdoorData) -> tuple[np.ndarray, ...]:
    """``[X, 1]`` and encoded labels of D, then of P."""
    Xa_D, y_D = augment(data.X_clean), data.encode(data.y_clean)
    return Xa_D, y_D, augment(data.X_poison), data.encode(data.y_poison)


def _linear_fits(data: BackdoorData, betas, thetas: np.ndarray) -> PathFits:
    # (n_test, n_betas) products, then transposed: the order of the sums the curves were
    # computed with before PathFits, so every curve value stayed the same to the bit
    F_bd = augment(data.X_test_bd) @ thetas.T
    F_cl = augment(data.X_test) @ thetas.T
    return PathFits(betas, F_bd.T, F_cl.T, thetas[:, :-1])


@exact_path.register
def _ridge(learner: RidgeLearner, data: BackdoorData, betas, gram) -> PathFits:
    Xa_D, y_D, Xa_P, y_P = _smooth_arrays(data)
    return _linear_fits(data, betas, ridge_path(Xa_D, y_D, Xa_P, y_P, learner.loss_weight, betas))


@exact_path.register
def _logistic(learner: LogisticLearner, data: BackdoorData, betas, gram) -> PathFits:
    Xa_D, y_D, Xa_P, y_P = _smooth_arrays(data)
    thetas, _ = logistic_path(
        Xa_D, y_D, Xa_P, y_P, learner.loss_weight, betas, tol=learner.tol, max_iter=learner.max_iter
    )
    return _linear_fits(data, betas, thetas)


@exact_path.register(LinearSVMLearner)
@exact_path.register(RBFSVMLearner)
def _svm(learner, data: BackdoorData, betas, gram) -> PathFits:
    """The SVM dual path; ``gram`` is the deviation Gram matrix (RBF: the kernel; else None)."""
    X = data.X_train
    y = data.encode(data.y_train)
    K = learner.kernel(X, X) if gram is None else gram  # RBF: the Gram matrix is the kernel

    def refit(beta):  # libsvm + KKT polish on the kernel the path already holds
        alpha, b, _ = solve_svm_dual(K, y, learner.C, data.sample_weight(beta), learner.tol)
        return alpha, b

    alpha0, b0 = refit(0.0)
    alphas, bs, events, _ = svm_path(K, y, data.n_clean, learner.C, betas, alpha0, b0, refit)
    coef = alphas * y  # signed duals y_i a_i over D u P, one row per beta
    if gram is None:  # linear: w(beta) = X^T coef, so f = X w + b without a test kernel
        vectors = coef @ X
        F_bd = data.X_test_bd @ vectors.T + bs
        F_cl = data.X_test @ vectors.T + bs
    else:  # one test kernel, on the points that are support vectors at some beta
        vectors = coef
        used = np.flatnonzero(np.any(coef != 0.0, axis=0))
        tests = np.vstack([data.X_test_bd, data.X_test])
        F = learner.kernel(tests, X[used]) @ coef[:, used].T + bs
        F_bd, F_cl = F[: len(data.X_test_bd)], F[len(data.X_test_bd) :]
    return PathFits(betas, F_bd.T, F_cl.T, vectors, list(events))
