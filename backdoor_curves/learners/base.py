"""The public learner contract: what every learner provides to the curves, slopes and studies.

A learner minimises (DESIGN §3)

    J(theta) = C * sum_i s_i * l(y_i, f(x_i; theta)) + 1/2 ||w||^2,

with sample weights ``s_i`` (1 on the clean set D and ``beta`` on the poisoning set P in a curve),
labels encoded as y in {-1, +1} (``classes_[1]`` -> +1) and the intercept unpenalized.

The contract (public methods of :class:`BaseLearner`; the measures, paths and studies call
nothing else):

- configuration: ``loss`` (a :class:`~backdoor_curves.losses.Loss`), ``loss_weight`` (C) and
  ``regularization`` (lambda = 1/C);
- ``fit(X, y, sample_weight)``, ``decision_function``, ``predict``, ``encode`` (labels to
  {-1, +1}), ``loss_per_sample`` and its parameter derivatives ``gradient`` (per sample) and
  ``hessian(X, y, sample_weight)`` (of J, regularizer included; SVMs: the bordered KKT matrix);
- ``slope_terms(data)``: dL(V_t)/dbeta at beta = 0 for a learner fitted on ``data``'s clean set;
- ``deviation_vector()`` and ``deviation_gram(X)``: the vector and inner product of the
  parameter deviation (DESIGN §5).

How a learner's exact path in beta is followed is registered per class in
:func:`backdoor_curves.paths.exact_path`; its kind (config key, display label) in
:mod:`backdoor_curves.learners.registry`. A fitted learner keeps no training matrix: methods that
need the training data (``hessian``) take it as arguments; SVMs keep their support vectors.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import check_is_fitted

from .._param_validation import validate_parameter_constraints
from .._threads import blas_limit
from .._validation import (
    check_binary_labels,
    check_labels,
    check_matrix,
    check_same_length,
    check_sample_weight,
    encode_signs,
)
from ..data import BackdoorData
from ..losses import Loss
from .pairwise import same_rows

__all__ = ["BaseLearner", "SlopeTerms", "check_learner", "refuse_learner_class"]


class SlopeTerms(dict):
    """Result of a learner's backdoor-derivative computation (a plain dict with a name).

    Keys: ``derivative`` (dL(V_t)/dbeta at beta = 0, raw), ``condition_number`` (1-norm, of the
    Hessian or KKT matrix that was factorized; an
    :class:`~backdoor_curves.linalg.IllConditionedWarning` is issued above
    :data:`~backdoor_curves.linalg.ILL_CONDITIONED` = 1e12) and learner-specific diagnostics
    (e.g. ``duplicates_merged`` for SVMs). No solve is damped, so there is no damping to report.
    """


class BaseLearner(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the binary convex learners.

    Subclasses define ``loss`` (a :class:`~backdoor_curves.losses.Loss`), ``loss_weight`` and
    the abstract methods below; see the module docstring for the contract.
    """

    loss: Loss

    # ------------------------------------------------------------------ configuration
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` parameters, read from its signature once per class.

        scikit-learn's ``get_params`` (which ``clone`` and ``set_params`` call) inspects the
        signature on every call: about 80 us, 26 times per point of a grid study, a tenth of a
        linear-SVM point on MNIST. The signature of a class does not change.
        """
        names = cls.__dict__.get("_param_names_cache")
        if names is None:
            names = super()._get_param_names()
            cls._param_names_cache = names
        return list(names)

    @property
    @abstractmethod
    def loss_weight(self) -> float:
        """C, the weight of the loss term in J (ridge: C = 1 / (2 alpha))."""

    @property
    def regularization(self) -> float:
        """lambda = 1 / C, the axis shared by grids over different learners."""
        return 1.0 / self.loss_weight

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, sample_weight=None):
        """Fit on ``X, y`` with per-sample weights (1 by default).

        Rows whose weight is exactly 0 are removed before fitting (scikit-learn's sample-weight
        equivalence: a zero weight equals removing the sample), but the fitted per-sample
        quantities keep the layout of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs (dense, finite).
        y : array-like of shape (n_samples,)
            Exactly two distinct labels of any kind scikit-learn accepts: numbers, booleans or
            strings, in numpy arrays (object arrays of str included), pandas Series (``str``,
            ``object``, ``string``, ``category``, ``bool``, integers) or lists; ``classes_``
            keeps them, sorted, in the user's own values.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative finite weights (1 on D and beta on P along a learning curve).

        Returns
        -------
        self
            The fitted learner.

        Raises
        ------
        TypeError, ValueError
            Naming the argument or parameter: invalid constructor parameters, sparse or
            non-numeric ``X``, NaN/inf, mismatched lengths, labels of mixed kinds or with
            missing values, not exactly two classes in ``y``, negative weights, or weights that
            leave a single class with positive weight.
        """
        self.validate_params()
        X = same_rows(check_matrix(X, "X"), X)
        if y is None:
            raise ValueError(
                f"y is required: {type(self).__name__} requires y to be passed, but the target "
                "y is None"
            )
        y = check_labels(y, "y", warn_column=True)
        check_same_length(X, y, "X", "y")
        sw = check_sample_weight(sample_weight, len(y))
        classes = check_binary_labels(y, "y")
        y_pm = np.where(y == classes[1], 1.0, -1.0)
        if np.unique(y_pm[sw > 0]).size != 2:
            raise ValueError("sample_weight leaves only one class with a positive weight")
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        with blas_limit():
            self._fit(X, y_pm, sw)
        return self

    #: Constructor parameter -> list of allowed forms (see
    #: :mod:`backdoor_curves._param_validation`); subclasses declare every ``__init__`` parameter.
    _parameter_constraints: dict = {}

    def validate_params(self) -> None:
        """Check the constructor parameters against the class's ``_parameter_constraints``.

        Called by ``fit``, and by code that reads the parameters without fitting (the exact
        paths). Raises :class:`~backdoor_curves._param_validation.InvalidParameterError` (a
        ``ValueError`` and a ``TypeError``) naming the parameter and its expected form.
        """
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    def _validate_params(self) -> None:
        """scikit-learn's parameter-validation hook: the check of :meth:`validate_params`."""
        self.validate_params()

    def __sklearn_tags__(self):
        """scikit-learn estimator tags: binary targets only, dense finite real input."""
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # y must hold exactly two classes
        tags.input_tags.sparse = False  # sparse X raises a TypeError
        tags.input_tags.allow_nan = False  # NaN/inf in X raise a ValueError
        tags.input_tags.positive_only = False  # any real X
        tags.target_tags.required = True
        return tags

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> None:
        """Fit on encoded labels y in {-1, +1}."""

    # ------------------------------------------------------------------ predictions
    def _check_X(self, X, name: str = "X") -> np.ndarray:
        check_is_fitted(self, "classes_")
        checked = check_matrix(
            X, name, n_features=self.n_features_in_, estimator_name=type(self).__name__
        )
        return same_rows(checked, X)

    def encode(self, y, name: str = "y") -> np.ndarray:
        """Map labels from ``classes_`` to {-1.0, +1.0}; unknown labels raise ``ValueError``.

        Parameters
        ----------
        y : array-like of shape (n,)
            Labels in any array-like form ``fit`` accepts (e.g. strings in an object array or a
            pandas column).
        name : str, default="y"
            Argument name used in error messages.

        Returns
        -------
        ndarray of float64, shape (n,)
            +1.0 where ``y == classes_[1]``, -1.0 where ``y == classes_[0]``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            If ``y`` holds a label that is not in ``classes_``.
        """
        check_is_fitted(self, "classes_")
        return encode_signs(
            y, self.classes_, name, f"classes_ {self.classes_.tolist()}", allow_empty=False
        )

    @abstractmethod
    def _decision(self, X: np.ndarray) -> np.ndarray:
        """Decision values f(X) on validated input."""

    def decision_function(self, X) -> np.ndarray:
        """Decision values f(x); positive means ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs with the features seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
            f(x) = w.x + b for linear models, sum_i y_i a_i K(x_i, x) + b for kernel SVMs.
        """
        return self._decision(self._check_X(X))

    def predict(self, X) -> np.ndarray:
        """Predicted labels: ``classes_[1]`` where f(x) > 0, else ``classes_[0]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs with the features seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_`` (same dtype).
        """
        positive = self.decision_function(X) > 0  # first: raises NotFittedError before fit
        return self.classes_[positive.astype(int)]

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y``, for labels of any kind ``fit`` takes.

        scikit-learn's classifier score, with ``y`` checked as ``fit`` checks it: object arrays
        of numbers (which scikit-learn's metrics call "unknown") and pandas columns are
        accepted; labels of mixed kinds or outside ``classes_`` are refused, naming ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs with the features seen in ``fit``.
        y : array-like of shape (n_samples,)
            Their true labels, from ``classes_``, in any form ``fit`` accepts.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights of the samples in the mean (1 by default).

        Returns
        -------
        float
            The (weighted) fraction of samples whose predicted label equals ``y``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        TypeError, ValueError
            Naming the argument: invalid ``X`` or ``sample_weight``, labels of mixed kinds,
            mismatched lengths, or a label of ``y`` that is not in ``classes_``.
        """
        predicted = self.predict(X)
        y_pm = self.encode(y)  # checks y; unknown labels raise, naming them
        check_same_length(predicted, y_pm, "X", "y")
        sw = None if sample_weight is None else check_sample_weight(sample_weight, len(y_pm))
        return float(accuracy_score(y_pm, self.encode(predicted), sample_weight=sw))

    def loss_per_sample(self, X, y) -> np.ndarray:
        """The learner's own loss l(y_i, f(x_i)) for each sample (natural log for logistic).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,)
            Their labels, from ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Unweighted per-sample losses (no factor C); their mean over V_t is the backdoor loss
            L(V_t) of a learning curve.
        """
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

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,)
            Their labels, from ``classes_``.

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
    def hessian(self, X, y, sample_weight=None) -> np.ndarray:
        """Hessian of the training objective J at the fitted parameters, over ``X, y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training data the learner was fitted on (the rows passed to ``fit``).
        y : array-like of shape (n_samples,)
            Their labels, from ``classes_``.
        sample_weight : array-like of shape (n_samples,), optional
            The weights passed to ``fit`` (1 by default).

        Returns
        -------
        ndarray of shape (n_params, n_params)
            Smooth learners: ``C Xa^T diag(s l'') Xa + diag(1, ..., 1, 0)``; SVMs: the bordered
            KKT matrix of the margin support vectors.
        """

    @property
    @abstractmethod
    def params_(self) -> np.ndarray:
        """The fitted parameter vector theta."""

    @abstractmethod
    def slope_terms(self, data: BackdoorData) -> SlopeTerms:
        """dL(V_t)/dbeta at beta = 0 for this learner, fitted on ``data``'s clean set D.

        Parameters
        ----------
        data : BackdoorData
            The data set; the learner must have been fitted on ``data.X_clean, data.y_clean``
            without sample weights (nothing checks this).

        Returns
        -------
        SlopeTerms
            ``derivative`` (mean backdoor loss per unit of beta; negative when the backdoor is
            being learned), ``condition_number`` (1-norm, of the factorized Hessian or KKT
            matrix), ``second_derivative`` and learner-specific diagnostics.
        """

    @abstractmethod
    def deviation_vector(self) -> np.ndarray:
        """The vector whose norm and angle define the parameter deviation (DESIGN §5).

        Returns
        -------
        ndarray
            Linear models: the weights w (no intercept); kernel SVMs: the signed duals y_i a_i
            over the rows passed to ``fit``.
        """

    def deviation_gram(self, X) -> np.ndarray | None:
        """Gram matrix of the deviation's inner product over the rows of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The rows the deviation vectors are laid out on (the training rows).

        Returns
        -------
        ndarray of shape (n_samples, n_samples) or None
            None for the Euclidean inner product (linear models); the kernel matrix for kernel
            SVMs (the RKHS inner product).
        """
        return None


def check_learner(learner) -> BaseLearner:
    """Refuse anything but a learner of this package with a ``TypeError`` naming ``learner``.

    Parameters
    ----------
    learner : object
        The value passed as ``learner``.

    Returns
    -------
    BaseLearner
        ``learner`` itself.

    Raises
    ------
    TypeError
        If ``learner`` is not a :class:`BaseLearner` (the message lists the registered kinds),
        or is a learner class rather than an instance (the message says how to make one).
    """
    refuse_learner_class(learner, "learner")
    if not isinstance(learner, BaseLearner):
        from .registry import LEARNER_KINDS

        names = ", ".join(kind.cls.__name__ for kind in LEARNER_KINDS.values())
        got = type(learner).__name__
        if isinstance(learner, type):  # a class, whose type (a metaclass) would say nothing
            got = f"the class {learner.__name__}"
        raise TypeError(f"learner must be one of backdoor_curves' learners ({names}), got {got}")
    return learner


def refuse_learner_class(value, name: str = "learner"):
    """Refuse a learner class given where a learner instance is expected, naming ``name``.

    ``LogisticLearner`` instead of ``LogisticLearner()`` is a common slip; a class is callable,
    so a learner factory argument would otherwise take it silently. A mapping (learners by
    name) is checked value by value.

    Parameters
    ----------
    value : object
        The value passed as ``name``: a learner, a mapping of names to learners, a factory...
    name : str, default="learner"
        Argument name used in the message.

    Returns
    -------
    object
        ``value`` itself, when it is no learner class and (a mapping) holds none.

    Raises
    ------
    TypeError
        ``"{name} must be a learner instance, got the class LogisticLearner; pass an instance,
        e.g. LogisticLearner()"`` (``{name}['key']`` for a value of a mapping).

    Examples
    --------
    >>> from backdoor_curves import LogisticLearner
    >>> refuse_learner_class(LogisticLearner(), "learner")
    LogisticLearner()
    >>> refuse_learner_class(LogisticLearner, "learner")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: learner must be a learner instance, got the class LogisticLearner; pass an ...
    """
    items = value.items() if isinstance(value, Mapping) else [(None, value)]
    for key, item in items:
        if isinstance(item, type) and issubclass(item, BaseLearner):
            where = name if key is None else f"{name}[{key!r}]"
            cls = item.__name__
            raise TypeError(
                f"{where} must be a learner instance, got the class {cls}; pass an instance, "
                f"e.g. {cls}()"
            )
    return value
