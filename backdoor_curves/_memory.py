"""The memory budget: the most bytes one dense matrix of the toolkit may take.

Kernel matrices (n x n), pairwise products shared by a grid study (all points x training points)
and Hessians (p x p) are dense. Before one is allocated, :func:`check_matrix_size` compares its
size with the budget and raises :class:`MemoryBudgetError` (its size and the budget in the message)
instead of leaving a too large problem to the operating system's out-of-memory killer. Caches
that only save time (:mod:`backdoor_curves.learners.pairwise`) stay off when they would not fit.

The budget defaults to :data:`DEFAULT_FRACTION` of the machine's physical memory. Set it for the
whole process with :func:`set_memory_budget`, or for a block with :func:`memory_budget_context`;
:func:`backdoor_curves.study.grid.grid_study` hands the budget in force to its workers.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from numbers import Real

__all__ = [
    "DEFAULT_FRACTION",
    "MemoryBudgetError",
    "check_matrix_size",
    "format_bytes",
    "memory_budget",
    "memory_budget_context",
    "set_memory_budget",
]

#: Share of the physical memory one dense matrix may take by default.
DEFAULT_FRACTION = 0.25

_BUDGET: contextvars.ContextVar[int | None] = contextvars.ContextVar("memory_budget", default=None)
_PROCESS_BUDGET: list[int | None] = [None]


class MemoryBudgetError(ValueError):
    """A dense matrix would exceed the memory budget (:func:`memory_budget`)."""


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps the number at least 1, e.g. "1.5 GiB".

    Parameters
    ----------
    n : float
        A number of bytes.

    Returns
    -------
    str
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _check_budget(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number of bytes (int), got {type(value).__name__}")
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"{name} must be a positive, finite number of bytes, got {value}")
    return int(value)


def memory_budget() -> int:
    """The memory budget in force, in bytes.

    Returns
    -------
    int
        The innermost :func:`memory_budget_context`, else the process budget of
        :func:`set_memory_budget`, else :data:`DEFAULT_FRACTION` of the physical memory.
    """
    value = _BUDGET.get()
    if value is None:
        value = _PROCESS_BUDGET[0]
    if value is None:
        value = int(DEFAULT_FRACTION * _physical_memory())
    return value


def set_memory_budget(n_bytes: int | None) -> None:
    """Set the memory budget of this process (None: back to the default).

    Parameters
    ----------
    n_bytes : int or None
        The most bytes one dense matrix may take.

    Raises
    ------
    TypeError, ValueError
        If ``n_bytes`` is not a positive number.
    """
    _PROCESS_BUDGET[0] = None if n_bytes is None else _check_budget(n_bytes, "n_bytes")


@contextlib.contextmanager
def memory_budget_context(n_bytes: int | None) -> Iterator[int]:
    """Use ``n_bytes`` as the memory budget inside the ``with`` block (None: leave it).

    Parameters
    ----------
    n_bytes : int or None
        The most bytes one dense matrix may take inside the block.

    Yields
    ------
    int
        The budget in force inside the block.

    Raises
    ------
    TypeError, ValueError
        If ``n_bytes`` is not a positive number.
    """
    if n_bytes is None:
        yield memory_budget()
        return
    token = _BUDGET.set(_check_budget(n_bytes, "memory_budget"))
    try:
        yield memory_budget()
    finally:
        _BUDGET.reset(token)


def check_matrix_size(shape: tuple[int, ...], what: str, itemsize: int = 8) -> None:
    """Raise :class:`MemoryBudgetError` when a dense array of ``shape`` would exceed the budget.

    Parameters
    ----------
    shape : tuple of int
        The array's shape.
    what : str
        What the array is (named in the message), e.g. "the kernel matrix K(X, X)".
    itemsize : int, default=8
        Bytes per entry (8 for float64).

    Raises
    ------
    MemoryBudgetError
        With the array's shape, its size and the budget.
    """
    size = itemsize
    for n in shape:
        size *= int(n)
    budget = memory_budget()
    if size > budget:
        dims = " x ".join(str(int(n)) for n in shape)
        raise MemoryBudgetError(
            f"{what} ({dims}) needs {format_bytes(size)}, over the memory budget of "
            f"{format_bytes(budget)}; use fewer points (or features), or raise the budget with "
            "backdoor_curves.set_memory_budget(n_bytes)"
        )
