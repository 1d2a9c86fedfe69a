"""The one registry of learner kinds: config key, display label, plot colour, regularization.

Every kind of learner is named here and only here. Configuration files (``[[learner]] kind =
"rbf_svm"``), the demo, grid tables, figures and reports read the registry::

    >>> from backdoor_curves.learners import learner_kind, learner_label, RBFSVMLearner
    >>> learner_kind(RBFSVMLearner()).key
    'rbf_svm'
    >>> learner_label(RBFSVMLearner(C=10, gamma=0.005))
    'RBF SVM (gamma=0.005)'

A learner class joins with the :func:`register_learner` class decorator (the neural-network
adapter and user-defined learners use the same one).
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = [
    "LearnerKind",
    "LEARNER_KINDS",
    "register_learner",
    "learner_kind",
    "learner_label",
    "display_name",
]


@dataclass(frozen=True)
class LearnerKind:
    """One registered kind of learner.

    Attributes
    ----------
    key : str
        Its name in configuration files and on the command line, e.g. ``"rbf_svm"``.
    label : str
        Its display name in tables, figures and reports, e.g. ``"RBF SVM"``.
    cls : type
        The learner class.
    regularization : str
        The constructor parameter that sets the regularization (``"C"``, or ``"alpha"`` for
        ridge); labels leave it out because figures show lambda = 1/C separately.
    color : str or None
        A fixed matplotlib colour, the same in every figure (None: a fallback colour).
    """

    key: str
    label: str
    cls: type
    regularization: str = "C"
    color: str | None = None


_KINDS: dict[str, LearnerKind] = {}
#: Registered learner kinds by key (read-only view, in registration order).
LEARNER_KINDS: Mapping[str, LearnerKind] = MappingProxyType(_KINDS)


def register_learner(key: str, *, label: str, regularization: str = "C", color: str | None = None):
    """Class decorator registering a learner class under ``key`` with a display ``label``.

    Parameters
    ----------
    key : str
        Name of the kind in configuration files (an identifier, e.g. ``"logistic"``).
    label : str
        Display name in tables and figures (e.g. ``"logistic"``, ``"RBF SVM"``).
    regularization : str, default="C"
        The constructor parameter that sets the regularization strength.
    color : str, optional
        A matplotlib colour used for this kind in every figure.

    Returns
    -------
    callable
        The decorator; it returns the class unchanged.

    Raises
    ------
    ValueError
        If ``key`` or ``label`` is already taken by another class, or ``key`` is not an
        identifier.
    """
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"key must be an identifier string, got {key!r}")
    if not isinstance(label, str) or not label:
        raise ValueError(f"label must be a non-empty string, got {label!r}")

    def decorate(cls: type) -> type:
        for kind in _KINDS.values():
            if kind.cls is not cls and (kind.key == key or kind.label == label):
                raise ValueError(
                    f"learner kind {key!r} ({label!r}) is already registered for "
                    f"{kind.cls.__qualname__}"
                )
        _KINDS[key] = LearnerKind(key, label, cls, regularization, color)
        return cls

    return decorate


def learner_kind(learner) -> LearnerKind:
    """The registered kind of a learner instance or class, or of a kind's key or label.

    Parameters
    ----------
    learner : learner instance, learner class, or str
        An instance or class is looked up by its exact class (a subclass is not its parent's
        kind); a string as a key (``"rbf_svm"``) or a label (``"RBF SVM"``).

    Returns
    -------
    LearnerKind
        The registered kind.

    Raises
    ------
    TypeError
        If the learner's class is not registered (see :func:`register_learner`).
    ValueError
        If a string is neither a registered key nor a label (the message lists them).
    """
    if isinstance(learner, str):
        for kind in _KINDS.values():
            if learner in (kind.key, kind.label):
                return kind
        raise ValueError(
            f"learner must be a registered kind's key or label, one of "
            f"{[k.key for k in _KINDS.values()]} or {[k.label for k in _KINDS.values()]}, "
            f"got {learner!r}"
        )
    cls = learner if isinstance(learner, type) else type(learner)
    for kind in _KINDS.values():
        if kind.cls is cls:
            return kind
    raise TypeError(
        f"{cls.__qualname__} is not a registered learner kind; registered: "
        f"{[k.cls.__name__ for k in _KINDS.values()]} (see register_learner)"
    )


def learner_label(learner) -> str:
    """Display label of a learner: its kind's label and its non-default parameters.

    ``LogisticLearner(C=0.1)`` -> ``"logistic"``; ``RBFSVMLearner(C=1, gamma=0.005)`` ->
    ``"RBF SVM (gamma=0.005)"``. The regularization (C / alpha) is left out, since figures show
    lambda separately. An unregistered learner is labelled by its class name without the
    ``Learner`` suffix.

    Parameters
    ----------
    learner : estimator
        A learner instance (scikit-learn's ``get_params`` protocol).

    Returns
    -------
    str
        ``"<label>"`` or ``"<label> (k1=v1, k2=v2)"``; ``warm_start`` is never shown.
    """
    cls = type(learner)
    try:
        kind = learner_kind(cls)
    except TypeError:
        name, skip = cls.__name__.removesuffix("Learner") or cls.__name__, {"C", "alpha"}
    else:
        name, skip = kind.label, {kind.regularization}
    params = learner.get_params(deep=False)
    defaults = _init_defaults(cls)
    extra = [
        f"{k}={_format(v)}"
        for k, v in params.items()
        if k not in skip and k != "warm_start" and not _same(v, defaults.get(k))
    ]
    return f"{name} ({', '.join(extra)})" if extra else name


@functools.cache
def _init_defaults(cls: type) -> MappingProxyType:
    """The default values of ``cls.__init__``'s parameters (a class's signature is fixed)."""
    return MappingProxyType(
        {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not p.empty
        }
    )


def display_name(name: str) -> str:
    """The display label for a registered key or class name (``"rbf_svm"`` -> ``"RBF SVM"``).

    Parameters
    ----------
    name : str
        A kind's key (``"rbf_svm"``) or a registered class's name (``"RBFSVMLearner"``).

    Returns
    -------
    str
        The kind's label; any other string is returned unchanged.
    """
    for kind in _KINDS.values():
        if name in (kind.key, kind.cls.__name__):
            return kind.label
    return name


def _format(value) -> str:
    """``0.005`` for a Python or numpy float alike (numpy 2's repr would say np.float64(...))."""
    if isinstance(value, bool | np.bool_):
        return repr(bool(value))
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return repr(value)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b
