"""Checks of TOML values shared by the nn configuration's sections: each error names the key."""

from __future__ import annotations

import math
from collections.abc import Mapping

from .._config import config_error as _fail

__all__ = ["int_list", "is_int", "is_number", "table", "typed"]


def table(raw, key: str) -> dict:
    """A copy of the TOML table ``raw``; a ``ValueError`` naming ``key`` if it is not a table."""
    if not isinstance(raw, Mapping):
        raise _fail(key, f"must be a table, got {raw!r}")
    return dict(raw)


def is_int(value) -> bool:
    """Whether ``value`` is an int (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """Whether ``value`` is a finite int or float (a bool is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def typed(value, expected, key: str):
    """``value`` checked against ``expected`` (float, int, bool, str or "path"); floats
    accept ints and are returned as float; a ``ValueError`` naming ``key`` otherwise."""
    if expected is float:
        ok = is_number(value)
    elif expected is int:
        ok = is_int(value)
    elif expected is bool:
        ok = isinstance(value, bool)
    else:  # str or "path"
        ok = isinstance(value, str) and bool(value)
    if not ok:
        names = {float: "a finite number", int: "an int", bool: "true or false", str: "a string"}
        raise _fail(key, f"must be {names.get(expected, 'a path (string)')}, got {value!r}")
    return float(value) if expected is float else value


def int_list(value, key: str, minimum: int) -> tuple:
    """An int or a list of distinct ints >= ``minimum``, as a tuple; else naming ``key``."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise _fail(key, "must not be empty")
    for v in values:
        if not is_int(v) or v < minimum:
            raise _fail(key, f"must be an int >= {minimum} or a list of them, got {value!r}")
    if len(set(values)) != len(values):
        raise _fail(key, f"must not repeat a value, got {value!r}")
    return tuple(values)
