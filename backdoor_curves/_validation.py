"""Input checks shared by every public entry point.

Each check raises a ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad value)
whose message starts with the argument's name, so a user sees at once which argument to fix.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_matrix",
    "check_vector",
    "check_same_length",
    "check_positive",
    "check_betas",
    "check_fraction",
    "check_real_array",
    "check_choice",
    "check_random_state",
]


def check_real_array(X, name: str, what: str) -> np.ndarray:
    """Return ``np.asarray(X)`` if it holds real numbers (integers, floats or booleans).

    Raises a TypeError naming ``name``: ``"{name} must be {what}, got None"`` for None,
    ``"{name} must hold real numbers, got dtype ..."`` otherwise. Shape and value checks are the
    caller's.
    """
    if X is None:
        raise TypeError(f"{name} must be {what}, got None")
    arr = np.asarray(X)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def check_matrix(X, name: str, *, n_features: int | None = None, allow_empty: bool = False):
    """Return ``X`` as a finite 2-D float64 array, or raise naming ``name``."""
    if X is None:
        raise TypeError(f"{name} must be a 2-D array of numbers, got None")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # pragma: no cover - numpy raises many kinds
        raise TypeError(f"{name} must be a 2-D array of numbers: {exc}") from None
    if (
        arr.dtype == object
        or np.issubdtype(arr.dtype, np.complexfloating)
        or not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_))
    ):
        raise TypeError(f"{name} must be a 2-D array of numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got an array of shape {arr.shape}"
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must contain at least one sample, got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature, got shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64)  # a copy: callers may keep mutating their input
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, expected {n_features}")
    return arr


def check_vector(y, name: str, *, allow_empty: bool = False):
    """Return ``y`` as a 1-D array (labels or weights), or raise naming ``name``."""
    if y is None:
        raise TypeError(f"{name} must be a 1-D array, got None")
    arr = np.asarray(y)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a 1-D array of numbers or strings, got dtype object")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got an array of shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must contain at least one sample")
    if np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_same_length(a, b, name_a: str, name_b: str) -> None:
    """Raise if ``a`` and ``b`` do not have the same number of rows."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} have different lengths ({len(a)} != {len(b)})")


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def check_betas(betas, name: str = "betas") -> np.ndarray:
    """Return ``betas`` as a sorted-as-given 1-D float array inside [0, 1]."""
    if isinstance(betas, numbers.Real) and not isinstance(betas, bool):
        betas = [betas]
    arr = check_vector(betas, name)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.any(arr < 0) or np.any(arr > 1):
        bad = arr[(arr < 0) | (arr > 1)][0]
        raise ValueError(f"{name} must lie in [0, 1], got {bad!r}")
    return arr


def check_fraction(value, name: str = "fraction") -> float:
    """Return ``value`` if it is a real number strictly inside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in (0, 1), got {type(value).__name__}")
    value = float(value)
    if not (0.0 < value < 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return value


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(choices)}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_random_state(seed, name: str = "random_state") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from ``None``, an int or a Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be None, an int or a numpy Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed}")
    return np.random.default_rng(int(seed))
