"""Results kept per read-only array, by identity, while the array lives.

A :class:`~backdoor_curves.data.BackdoorData` holds its arrays read-only, and a grid point
asks the same questions of them many times (are they finite, what are the labels' signs, the
inputs with an intercept column). :func:`is_immutable` says whether an array can still change;
an :class:`IdentityMemo` keeps one result per such array (and per extra key) until the array
is garbage-collected. Writable arrays are never remembered: the caller computes every time.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

__all__ = ["IdentityMemo", "is_immutable"]


def is_immutable(a: Any) -> bool:
    """Whether ``a`` is an ndarray which, and every array its memory comes from, is read-only.

    Parameters
    ----------
    a : object
        Anything; only numpy arrays can be immutable here.

    Returns
    -------
    bool
        False for a read-only view of a writable array, or an array over foreign memory (e.g.
        a memory map, whose file may change).
    """
    if not isinstance(a, np.ndarray):
        return False
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return a is None


class IdentityMemo:
    """Results per immutable array (and key), dropped when the array is collected.

    Parameters
    ----------
    name : str
        What is kept (for ``repr``).
    max_keys : int, default=4
        Results kept per array (the oldest key's dropped first).
    """

    def __init__(self, name: str, max_keys: int = 4):
        self.name = name
        self.max_keys = max_keys
        self._table: dict[int, tuple[weakref.ref, dict]] = {}

    def __repr__(self) -> str:
        return f"IdentityMemo({self.name!r}, {len(self._table)} arrays)"

    def get(self, a: Any, compute: Callable[[], Any], key: Hashable = None) -> Any:
        """``compute()`` for ``a``, remembered while ``a`` lives if it is immutable.

        Parameters
        ----------
        a : object
            The array the result belongs to; anything but an immutable ndarray (see
            :func:`is_immutable`) is not remembered.
        compute : callable
            ``() -> result``; called when nothing is remembered for ``(a, key)``.
        key : hashable, optional
            What else the result depends on (e.g. the classes of an encoding).

        Returns
        -------
        object
            The result. A remembered ndarray result is made read-only: it is shared.
        """
        if not is_immutable(a):
            return compute()
        ident = id(a)
        found = self._table.get(ident)
        if found is not None and found[0]() is a:
            results = found[1]
            if key in results:
                return results[key]
        else:
            table = self._table
            try:
                ref = weakref.ref(a, lambda _ref, ident=ident: table.pop(ident, None))
            except TypeError:  # pragma: no cover - ndarrays support weak references
                return compute()
            results = {}
            table[ident] = (ref, results)
        result = compute()
        if isinstance(result, np.ndarray):
            result.flags.writeable = False
        results[key] = result
        while len(results) > self.max_keys:
            del results[next(iter(results))]
        return result
