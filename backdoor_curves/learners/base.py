"""What every learner shares: input checks, label encoding, prediction and per-sample losses.

A learner minimises (DESIGN §3)

    J(theta) = C * sum_i s_i * l(y_i, f(x_i; theta)) + 1/2 ||w||^2,

with sample weights ``s_i`` (1 on the clean set D and ``beta`` on the poisoning set P in a curve),
labels encoded as y in {-1, +1} (``classes_[1]`` -> +1) and the intercept unpenalized. Subclasses
implement the fit, the decision function, the derivatives and the backdoor derivative at beta = 0.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .._threads import blas_limit
from .._validation import check_matrix, check_same_length, check_vector
from ..losses import Loss

__all__ = ["BaseLearner", "SlopeTerms"]


class SlopeTerms(dict):
    """Result of a learner's backdoor-derivative computation (a plain dict with a name).

    Keys: ``derivative`` (dL(V_t)/dbeta at beta = 0, raw), ``condition_number`` (of the Hessian
    or KKT matrix that was factorized) and learner-specific diagnostics.
    """


class BaseLearner(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the binary convex learners.

    Subclasses define ``loss`` (a :class:`~backdoor_curves.losses.Loss`) and ``_C``.
    """

    loss: Loss

    # ------------------------------------------------------------------ configuration
    @property
    @abstractmethod
    def _C(self) -> float:
        """The loss weight C of the objective."""

    @property
    def regularization(self) -> float:
        """lambda = 1 / C, the axis shared by grids over different learners."""
        return 1.0 / self._C

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, sample_weight=None):
        """Fit on ``X, y`` with per-sample weights (1 by default).

        Rows whose weight is exactly 0 are removed before fitting (scikit-learn's sample-weight
        equivalence: a zero weight equals removing the sample), but the fitted per-sample
        quantities keep the layout of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Exactly two distinct labels.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative finite weights.

        Returns
        -------
        self
        """
        self._check_params()
        X = check_matrix(X, "X")
        y = check_vector(y, "y")
        check_same_length(X, y, "X", "y")
        sw = self._check_sample_weight(sample_weight, len(y))
        classes = np.unique(y)
        if classes.size != 2:
            kind = "more than two classes" if classes.size > 2 else "a single class"
            raise ValueError(
                f"y must contain exactly two classes (binary learner), got {kind}: "
                f"{classes.tolist()[:10]}"
            )
        y_pm = np.where(y == classes[1], 1.0, -1.0)
        if np.unique(y_pm[sw > 0]).size != 2:
            raise ValueError("sample_weight leaves only one class with a positive weight")
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        with blas_limit():
            self._fit(X, y_pm, sw)
        return self

    @staticmethod
    def _check_sample_weight(sample_weight, n: int) -> np.ndarray:
        if sample_weight is None:
            return np.ones(n)
        sw = check_vector(sample_weight, "sample_weight")
        if not np.issubdtype(sw.dtype, np.number) or np.issubdtype(sw.dtype, np.bool_):
            raise TypeError(f"sample_weight must hold real numbers, got dtype {sw.dtype}")
        if sw.shape[0] != n:
            raise ValueError(f"sample_weight has {sw.shape[0]} entries, expected {n}")
        sw = sw.astype(np.float64)
        if np.any(sw < 0):
            raise ValueError("sample_weight must be non-negative")
        if not np.any(sw > 0):
            raise ValueError("sample_weight must have at least one positive entry")
        return sw

    def _check_params(self) -> None:
        """Validate the constructor parameters (subclasses extend)."""

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> None:
        """Fit on encoded labels y in {-1, +1}."""

    # ------------------------------------------------------------------ predictions
    def _check_X(self, X, name: str = "X") -> np.ndarray:
        check_is_fitted(self, "classes_")
        return check_matrix(X, name, n_features=self.n_features_in_)

    def encode(self, y, name: str = "y") -> np.ndarray:
        """Map labels from ``classes_`` to {-1.0, +1.0}; unknown labels raise ``ValueError``."""
        check_is_fitted(self, "classes_")
        y = check_vector(y, name)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"{name} has labels {unknown.tolist()[:10]} not in {self.classes_}")
        return np.where(y == self.classes_[1], 1.0, -1.0)

    @abstractmethod
    def _decision(self, X: np.ndarray) -> np.ndarray:
        """Decision values f(X) on validated input."""

    def decision_function(self, X) -> np.ndarray:
        """Decision values f(x); positive means ``classes_[1]``."""
        return self._decision(self._check_X(X))

    def predict(self, X) -> np.ndarray:
        """Predicted labels: ``classes_[1]`` where f(x) > 0, else ``classes_[0]``."""
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def loss_per_sample(self, X, y) -> np.ndarray:
        """The learner's own loss l(y_i, f(x_i)) for each sample (natural log for logistic)."""
        X = self._check_X(X)
        y_pm = self.encode(y)
        check_same_length(X, y_pm, "X", "y")
        return self.loss.value(y_pm, self._decision(X))

    # ------------------------------------------------------------------ derivatives
    @abstractmethod
    def _dfdtheta(self, X: np.ndarray) -> np.ndarray:
        """Rows df(x_i)/dtheta, shape (n_samples, n_params)."""

    def gradient(self, X, y) -> np.ndarray:
        """Per-sample gradients dl(y_i, f(x_i))/dtheta at the fitted parameters.

        Returns
        -------
        ndarray of shape (n_samples, n_params)
            Row i is ``l'(y_i, f(x_i)) * df(x_i)/dtheta`` (no factor C, no regularizer).
        """
        X = self._check_X(X)
        y_pm = self.encode(y)
        check_same_length(X, y_pm, "X", "y")
        return self.loss.d1(y_pm, self._decision(X))[:, None] * self._dfdtheta(X)

    @abstractmethod
    def hessian(self) -> np.ndarray:
        """Hessian of the training objective (or KKT matrix) at the fitted parameters."""

    @property
    @abstractmethod
    def params_(self) -> np.ndarray:
        """The fitted parameter vector theta."""

    @abstractmethod
    def _slope_terms(
        self, X_p: np.ndarray, y_p: np.ndarray, X_t: np.ndarray, y_t: np.ndarray
    ) -> SlopeTerms:
        """dL(V_t)/dbeta at beta = 0 for a learner fitted on D (encoded labels)."""

    @abstractmethod
    def _deviation_vector(self) -> np.ndarray:
        """The vector whose norm and angle define the parameter deviation (DESIGN §5)."""

    def _deviation_gram(self, X: np.ndarray) -> np.ndarray | None:
        """Gram matrix of the deviation's inner product over the rows of ``X`` (None: Euclidean)."""
        return None
