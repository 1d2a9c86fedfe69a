"""Declarative parameter validation, in the style of scikit-learn's ``_parameter_constraints``.

A learner class declares, for each constructor parameter, the list of forms it may take::

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "solver": [StrOptions({"newton", "lbfgs"})],
    }

and :func:`validate_parameter_constraints` checks the values against them. A value is valid if it
satisfies at least one constraint of its list. A constraint is one of

- an :class:`Interval` (a real or integral number inside bounds),
- an :class:`Options` / :class:`StrOptions` (one of a set of values),
- a type (``isinstance`` check; e.g. ``numbers.Integral`` or ``str``),
- the string ``"boolean"`` (``bool`` or ``numpy.bool_``),
- ``None`` (the value ``None``).

The string ``"no_validation"`` in place of the list turns the check off for that parameter.

Errors are :class:`InvalidParameterError`, a subclass of both ``ValueError`` and ``TypeError``
(like scikit-learn's own), whose message starts with the parameter's name and states the expected
form, e.g. ``C must be a real number in (0, inf), got -1.0 (parameter of LogisticLearner)``.

Unlike scikit-learn, an Interval's missing bound (``None``) is an infinite bound that obeys
``closed``: ``Interval(Real, 0, None, closed="neither")`` is (0, inf) and refuses ``inf`` (and
NaN is never inside an interval). Booleans are not numbers here: ``True`` is not in an Interval.
This module does not import scikit-learn's private ``sklearn.utils._param_validation``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from ._validation import show_value

__all__ = [
    "InvalidParameterError",
    "Interval",
    "Options",
    "StrOptions",
    "describe_constraints",
    "validate_parameter_constraints",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter has the wrong type or value (a ``ValueError`` and a ``TypeError``)."""


_CLOSED = ("left", "right", "both", "neither")


class Interval:
    """Numbers of ``type`` between ``left`` and ``right``.

    Parameters
    ----------
    type : {numbers.Real, numbers.Integral}
        ``Integral`` accepts Python and numpy integers only; ``Real`` accepts any real number
        (integers included). Booleans are refused by both.
    left, right : float or int or None
        Bounds; ``None`` is -inf (left) or +inf (right).
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval. An infinite bound belongs to it only if closed
        (so ``inf`` is refused by ``Interval(Real, 0, None, closed="left")``).
    """

    def __init__(self, type, left, right, *, closed: str):
        if type not in (numbers.Real, numbers.Integral):
            raise TypeError(f"type must be numbers.Real or numbers.Integral, got {type!r}")
        if closed not in _CLOSED:
            raise ValueError(f"closed must be one of {list(_CLOSED)}, got {closed!r}")
        if left is not None and right is not None and right < left:
            raise ValueError(f"right must be >= left, got left={left!r}, right={right!r}")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def _type_ok(self, value) -> bool:
        if isinstance(value, bool | np.bool_):
            return False
        return isinstance(value, self.type)

    def is_satisfied_by(self, value) -> bool:
        """Whether ``value`` is a number of the right type inside the interval."""
        if not self._type_ok(value):
            return False
        if isinstance(value, numbers.Integral):
            value = int(value)  # exact comparison for large integers
        elif math.isnan(value):
            return False
        lo = -math.inf if self.left is None else self.left
        hi = math.inf if self.right is None else self.right
        left_ok = value >= lo if self.closed in ("left", "both") else value > lo
        right_ok = value <= hi if self.closed in ("right", "both") else value < hi
        return bool(left_ok and right_ok)

    def __str__(self) -> str:
        kind = "an int" if self.type is numbers.Integral else "a real number"
        lo = "-inf" if self.left is None else f"{self.left!r}"
        hi = "inf" if self.right is None else f"{self.right!r}"
        lb = "[" if self.closed in ("left", "both") else "("
        rb = "]" if self.closed in ("right", "both") else ")"
        return f"{kind} in {lb}{lo}, {hi}{rb}"

    def __repr__(self) -> str:
        name = "Integral" if self.type is numbers.Integral else "Real"
        return f"Interval({name}, {self.left!r}, {self.right!r}, closed={self.closed!r})"


class Options:
    """One of a fixed set of values of ``type``.

    Parameters
    ----------
    type : type
        The values' type (e.g. ``str``).
    options : set
        The allowed values.
    """

    def __init__(self, type, options):
        self.type = type
        self.options = frozenset(options)

    def is_satisfied_by(self, value) -> bool:
        """Whether ``value`` is of ``type`` and one of the options."""
        if not isinstance(value, self.type):
            return False
        try:
            return value in self.options
        except TypeError:  # unhashable
            return False

    def __str__(self) -> str:
        listed = ", ".join(repr(o) for o in sorted(self.options, key=str))
        return f"one of {{{listed}}}"

    def __repr__(self) -> str:
        return f"Options({self.type.__name__}, {set(self.options)!r})"


class StrOptions(Options):
    """One of a fixed set of strings."""

    def __init__(self, options):
        super().__init__(str, options)

    def __repr__(self) -> str:
        return f"StrOptions({set(self.options)!r})"


def _is_satisfied(constraint, value) -> bool:
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, bool | np.bool_)
    if isinstance(constraint, Interval | Options):
        return constraint.is_satisfied_by(value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    raise TypeError(f"unknown parameter constraint {constraint!r}")


def _describe(constraint) -> str:
    if constraint is None:
        return "None"
    if constraint == "boolean":
        return "a bool"
    if isinstance(constraint, Interval | Options):
        return str(constraint)
    names = {numbers.Integral: "an int", numbers.Real: "a real number", str: "a str"}
    return names.get(constraint, f"an instance of {constraint.__name__}")


def describe_constraints(constraints) -> str:
    """The expected form of a value, e.g. ``"a real number in (0, inf) or None"``."""
    parts = [_describe(c) for c in constraints]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _shown(value) -> str:
    text = show_value(value)  # np.float64(-1.0) as -1.0
    if len(text) > 60:
        text = text[:57] + "..."
    kind = type(value).__name__
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return text
    return f"{text} ({kind})" if kind not in ("str", "NoneType") else text


def validate_parameter_constraints(
    constraints: Mapping[str, list | str], params: Mapping[str, object], caller_name: str
) -> None:
    """Check each parameter in ``params`` against its list of ``constraints``.

    Parameters
    ----------
    constraints : mapping
        Parameter name -> list of constraints (see the module docstring), or
        ``"no_validation"``. Parameters without an entry are not checked.
    params : mapping
        Parameter name -> value (e.g. ``estimator.get_params(deep=False)``).
    caller_name : str
        Named in the message (e.g. the estimator's class name).

    Raises
    ------
    InvalidParameterError
        For the first parameter that satisfies none of its constraints, with a message
        ``"{name} must be {expected form}, got {value} (parameter of {caller_name})"``.
    """
    for name, value in params.items():
        allowed = constraints.get(name)
        if allowed is None or (isinstance(allowed, str) and allowed == "no_validation"):
            continue
        if any(_is_satisfied(c, value) for c in allowed):
            continue
        raise InvalidParameterError(
            f"{name} must be {describe_constraints(allowed)}, got {_shown(value)} "
            f"(parameter of {caller_name})"
        )
