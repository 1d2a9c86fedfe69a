"""BLAS thread control for the small dense problems this package solves.

On 2-core machines shared with other work, OpenBLAS with 2 threads was measured 50-100x slower
than with 1 thread on a 785 x 785 Cholesky factorization (1.0 s vs 0.010-0.018 s) whenever the
other core was busy, and no faster when it was idle. The public entry points therefore run their
linear algebra with BLAS limited to ``BLAS_THREADS`` threads (default 1; override with the
environment variable ``BACKDOOR_CURVES_BLAS_THREADS``, where 0 means "leave BLAS alone").
Parallelism comes from joblib across independent points instead.
"""

from __future__ import annotations

import contextlib
import functools
import os

from threadpoolctl import ThreadpoolController

__all__ = ["BLAS_THREADS", "blas_limit"]

BLAS_THREADS = int(os.environ.get("BACKDOOR_CURVES_BLAS_THREADS", "1"))


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    # scanning the loaded libraries costs ~3 ms; a cached controller's limit() costs ~0.04 ms
    return ThreadpoolController()


def blas_limit():
    """Context manager limiting BLAS to ``BLAS_THREADS`` threads (no-op when it is 0)."""
    if BLAS_THREADS <= 0:
        return contextlib.nullcontext()
    return _controller().limit(limits=BLAS_THREADS, user_api="blas")
