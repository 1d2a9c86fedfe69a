"""BLAS thread control for the small dense problems this package solves.

On 2-core machines shared with other work, OpenBLAS with 2 threads was measured 50-100x slower
than with 1 thread on a 785 x 785 Cholesky factorization (1.0 s vs 0.010-0.018 s) whenever the
other core was busy, and no faster when it was idle. The package's own heavy computations
therefore run inside :func:`blas_limit`, which limits BLAS to ``BLAS_THREADS`` threads (default 1;
override with the environment variable ``BACKDOOR_CURVES_BLAS_THREADS``, where 0 means "leave BLAS
alone"). Parallelism comes from joblib across independent points instead.

The limit is shared between threads. Each thread that enters sets it; nested calls in one thread
cost nothing more. The limits found by the first thread to enter are restored when the last thread
inside leaves, whatever the order in which threads leave, so a thread still computing is never
un-pinned by another one's exit, and no limit of the package outlives its calls.

Where the count lives depends on the BLAS build. OpenBLAS with its own (pthreads) thread pool, as
numpy's and scipy's wheels ship it, has one process-wide count, whichever thread sets it. OpenBLAS
built with OpenMP keeps it per thread (``omp_set_num_threads``), so each thread that enters pins
itself (a thread that left while another was still inside keeps the limit in its own setting).

threadpoolctl 3.8 lets only one "controlling" thread change a process-wide OpenBLAS count: the first
thread that set it, until that thread leaves a ``threadpool_limits`` block or dies; calls from any
other thread are silently ignored. The main thread usually holds that role for good, so, without
care, a limit set from a joblib ``threading`` worker did nothing: BLAS ran with every core inside
the package's computations in pool threads, and a grid table computed on threads differed from the
sequential one in the last bits (OpenBLAS's reductions split differently over 2 threads). So every
change of the count here is made under this module's lock with the controlling thread cleared
before and after (:func:`_release_openblas`): the thread that sets it is heard, and no thread keeps
the role afterwards (a user's own ``threadpool_limits`` block then still restores its limits).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator

import threadpoolctl
from threadpoolctl import ThreadpoolController

__all__ = ["BLAS_THREADS", "blas_limit"]

BLAS_THREADS = int(os.environ.get("BACKDOOR_CURVES_BLAS_THREADS", "1"))

_lock = threading.Lock()
_active = 0  # threads currently inside blas_limit()
_first = None  # the first entrant's threadpoolctl limiter: it restores the limits found then
_local = threading.local()  # per thread: nesting depth


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    # scanning the loaded libraries costs ~3 ms; a cached controller's limit() costs ~0.04 ms
    return ThreadpoolController()


def _release_openblas() -> None:
    """Clear threadpoolctl's controlling thread of OpenBLAS (threadpoolctl >= 3.8; else no-op).

    Called under ``_lock`` around each change of the limits, so that the calling thread's change
    takes effect (see the module docstring).
    """
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    clear = getattr(controller, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


@contextlib.contextmanager
def blas_limit() -> Iterator[None]:
    """Run the body with BLAS limited to ``BLAS_THREADS`` threads (no-op when it is 0).

    Re-entrant and thread-safe: the limits in force before the first thread entered are
    restored when the last thread inside leaves. Effective from any thread, also where
    threadpoolctl would ignore a thread that does not control OpenBLAS (see the module
    docstring).

    Yields
    ------
    None
    """
    global _active, _first
    if BLAS_THREADS <= 0 or getattr(_local, "depth", 0):  # off, or nested in this thread
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            yield
        finally:
            _local.depth -= 1
        return
    with _lock:
        _release_openblas()
        limiter = _controller().limit(limits=BLAS_THREADS, user_api="blas")
        _release_openblas()
        if _active == 0:
            _first = limiter
        _active += 1
    _local.depth = 1
    try:
        yield
    finally:
        _local.depth = 0
        with _lock:
            _active -= 1
            if _active == 0:
                _release_openblas()
                _first.restore_original_limits()
                _release_openblas()
                _first = None
