"""Pairwise products of one data set's rows, computed once and shared by every kernel on it.

Every kernel a grid point evaluates — the training kernel of the clean and the poisoned fit, the
KKT blocks of the slope, the test kernels of the accuracies and losses, the path's kernel — is a
block of the same two matrices over the data set's rows Z = [D; P; V; V_t] and its training rows
T = [D; P]:

    G = Z T^T                                   (inner products: the linear kernel)
    S_ij = ||z_i||^2 + ||t_j||^2 - 2 G_ij       (squared distances, clipped at 0; 0 on a row with
                                                 itself: the RBF kernel exp(-gamma S) for any gamma)

A :class:`PairwiseCache` computes G once (over the features some row uses; the training block
T T^T as a symmetric product, V T^T and V_t T^T each when first needed) and S from it on first
use, and hands out blocks for row subsets of Z and T: a grid that sweeps C and gamma on one data
set builds them once instead of once per kernel call. Per-parameter kernels (e.g. the RBF
kernel of one gamma) are memoized on top (:meth:`PairwiseCache.kernel`), least recently used
first out.

Rows are found by content: a 64-bit key per row (a wrap-around integer combination of the float
bits) locates candidates, and the rows are then compared exactly (``==``), so a block is only
served for rows equal to rows of the data set; anything else (new points, other dtypes) is left
to the caller's own computation. An array found once is remembered by identity while it lives
(arrays must not be modified in place while a cache is current: the toolkit never does). Blocks
are the same whichever order points run in and whichever
worker runs them, so grid tables stay identical across ``n_jobs`` and backends. They agree with a
kernel computed directly from the two sets to rounding (about 1e-15 relative): the product's
summation order differs.

:func:`shared_pairwise` makes a cache current for a ``with`` block (a context variable, like
scikit-learn's ``config_context``); the SVM learners' ``kernel`` consults :func:`active_cache`.
The cache stays off (``None``) when G would exceed the memory budget
(:func:`backdoor_curves._memory.memory_budget`) — the kernels are then computed per call as
without it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator

import numpy as np

from .._memory import memory_budget

__all__ = [
    "PairwiseCache",
    "active_cache",
    "make_cache",
    "memoized",
    "same_rows",
    "shared_pairwise",
    "take_rows",
]

_ACTIVE: contextvars.ContextVar[PairwiseCache | None] = contextvars.ContextVar(
    "pairwise_cache", default=None
)


@functools.lru_cache(maxsize=16)
def _key_weights(n_features: int) -> np.ndarray:
    """Odd 64-bit multipliers, the same in every process (fixed seed); read-only, kept for the
    last few sizes (memo keys of a grid point ask for the same few sizes over and over)."""
    rng = np.random.default_rng(0x5EED)
    u = rng.integers(0, 2**63, size=n_features, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    u.flags.writeable = False
    return u


class PairwiseCache:
    """Inner products and squared distances between a data set's rows and its training rows.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_features)
        Every row kernels may be asked for (Z): the training rows first.
    n_train : int
        The first ``n_train`` rows are the training rows T (the kernels' second argument).
    groups : sequence of int, default=()
        Where groups of the other rows begin (e.g. V_t after V): the inner products of a group
        with the training rows are computed when one of its rows is first asked for.
    max_kernels : int, default=8
        Per-parameter kernels kept by :meth:`kernel` (least recently used first out); fewer when
        they would not fit in the memory budget together.

    Attributes
    ----------
    nbytes : int
        Bytes of one full block (``n_rows x n_train`` float64).
    hits, misses : int
        Kernel blocks served, and requests left to the caller.
    """

    def __init__(self, rows: np.ndarray, n_train: int, *, groups=(), max_kernels: int = 8):
        self.rows = np.ascontiguousarray(rows, dtype=np.float64)
        self.n_train = int(n_train)
        self.nbytes = self.rows.shape[0] * self.n_train * 8
        self._weights = _key_weights(self.rows.shape[1])
        keys = self._keys(self.rows)
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]
        self._inner = self._sqdist = self._used_rows = None
        splits = sorted({int(k) for k in groups if self.n_train < k < self.rows.shape[0]})
        self._group_bounds = np.array([self.n_train, *splits, self.rows.shape[0]])
        self._group_done = np.zeros(len(self._group_bounds) - 1, dtype=bool)
        self._kernels: OrderedDict = OrderedDict()
        self.max_kernels = max(0, min(int(max_kernels), memory_budget() // max(self.nbytes, 1) - 2))
        self.hits = self.misses = 0
        self._seen: dict[int, tuple[weakref.ref, np.ndarray | None]] = {}
        self._memo: OrderedDict = OrderedDict()

    def _keys(self, A: np.ndarray) -> np.ndarray:
        # integer products wrap around modulo 2**64 (numpy's integer matmul does not check)
        return A.view(np.uint64) @ self._weights

    def locate(self, A: np.ndarray, train: bool = False) -> np.ndarray | None:
        """Row indices of ``A`` in Z (in T with ``train``), or None if a row is not there.

        Parameters
        ----------
        A : ndarray of shape (n, n_features)
            Rows to find (compared exactly, ``==``).
        train : bool, default=False
            Only accept training rows.

        Returns
        -------
        ndarray of int or None
        """
        if (
            not isinstance(A, np.ndarray)
            or A.dtype != np.float64
            or A.ndim != 2
            or A.shape[1] != self.rows.shape[1]
        ):
            return None
        seen = self._seen.get(id(A))
        if seen is not None and seen[0]() is A:
            index = seen[1]
        else:
            index = self._find(A)
            with contextlib.suppress(TypeError):  # remember arrays by identity while they live
                self._seen[id(A)] = (weakref.ref(A, self._forget(id(A))), index)
        if index is not None and train and np.any(index >= self.n_train):
            # equal keys keep Z's order and searchsorted finds the first, so a row that is also
            # a training row resolves to its training index: this row is not a training row
            return None
        return index

    def derive(self, child: np.ndarray, parent: np.ndarray, rows) -> None:
        """Record that ``child`` is ``parent[rows]`` (locating ``parent`` if needed).

        Parameters
        ----------
        child : ndarray
            The subset (its index is remembered while it lives).
        parent : ndarray
            The array it was taken from.
        rows : array-like of int or bool
            The rows taken.
        """
        if id(child) in self._seen:
            return
        parent_index = self.locate(parent)  # remembered, or looked up once
        index = None if parent_index is None else parent_index[rows]
        with contextlib.suppress(TypeError):
            self._seen[id(child)] = (weakref.ref(child, self._forget(id(child))), index)

    def _forget(self, key: int):
        def forget(_ref, seen=self._seen):
            seen.pop(key, None)

        return forget

    def _find(self, A: np.ndarray) -> np.ndarray | None:
        A = np.ascontiguousarray(A)
        if A.shape[0] == 0:
            return np.zeros(0, dtype=np.intp)
        block = self._find_block(A)
        if block is not None:
            return block
        keys = self._keys(A)
        pos = np.searchsorted(self._sorted, keys)
        pos[pos == self._sorted.size] = 0
        if not np.array_equal(self._sorted[pos], keys):
            return None
        index = self._order[pos]
        if not np.array_equal(self.rows[index], A):  # a 64-bit key collision: not the same rows
            return None
        return index

    def _find_block(self, A: np.ndarray) -> np.ndarray | None:
        """Indices of ``A`` when it is a run of consecutive rows of Z (D, D + P, V, V_t, or a
        copy of one): one key and one comparison, no gather."""
        pos = int(np.searchsorted(self._sorted, self._keys(A[:1])[0]))
        if pos == self._sorted.size or self._sorted[pos] != self._keys(A[:1])[0]:
            return None
        start = int(self._order[pos])
        stop = start + A.shape[0]
        if stop <= self.rows.shape[0] and np.array_equal(self.rows[start:stop], A):
            return np.arange(start, stop)
        return None

    def _blocks(self, A, B):
        ia = self.locate(A)
        if B is A and ia is not None:
            ib = ia if np.all(ia < self.n_train) else None
        else:
            ib = None if ia is None else self.locate(B, train=True)
        if ib is None:  # K(A, B) = K(B, A)^T when A is the training side
            ib2 = self.locate(B)
            ia2 = None if ib2 is None else self.locate(A, train=True)
            if ia2 is None:
                return None
            return ib2, ia2, True
        return ia, ib, False

    def _full_inner(self, rows: np.ndarray | None = None) -> np.ndarray:
        """G = Z T^T, filled where needed: the training block first, each group of other rows
        (e.g. V, V_t) by one product of its own when one of its rows (``rows``: indices into Z;
        None: all) is first asked for. A block has the same bits whatever the order."""
        # over the features some row uses (31 % of MNIST's pixels are 0 in every row), the
        # training block as a symmetric product (syrk: half the work, exactly symmetric)
        if self._inner is None:
            used = np.flatnonzero(self.rows.any(axis=0))
            self._used_rows = self.rows if used.size == self.rows.shape[1] else self.rows[:, used]
            T = self._used_rows[: self.n_train]
            G = np.empty((self.rows.shape[0], self.n_train))
            np.matmul(T, T.T, out=G[: self.n_train])  # numpy calls syrk for T T^T
            self._inner = G
        bounds = self._group_bounds
        if rows is None:
            wanted = np.flatnonzero(~self._group_done)
        else:
            other = rows[rows >= self.n_train]
            wanted = np.unique(np.searchsorted(bounds, other, side="right") - 1)
            wanted = wanted[~self._group_done[wanted]]
        Z, n = self._used_rows, self.n_train
        for g in wanted:
            start, stop = bounds[g], bounds[g + 1]
            np.matmul(Z[start:stop], Z[:n].T, out=self._inner[start:stop])
            self._group_done[g] = True
        return self._inner

    def _full_sqdist(self) -> np.ndarray:
        if self._sqdist is None:
            G = self._full_inner()
            norms = np.einsum("ij,ij->i", self.rows, self.rows)
            S = norms[:, None] + norms[None, : self.n_train] - 2.0 * G
            np.maximum(S, 0.0, out=S)
            diag = np.arange(self.n_train)
            S[diag, diag] = 0.0
            self._sqdist = S
        return self._sqdist

    def _take(self, full: np.ndarray, A, B) -> np.ndarray | None:
        found = self._blocks(A, B)
        if found is None:
            self.misses += 1
            return None
        ia, ib, transposed = found
        self.hits += 1
        return _gather(full, ia, ib, transposed)

    def inner(self, A: np.ndarray, B: np.ndarray) -> np.ndarray | None:
        """``A B^T`` from the cache, or None when ``A`` or ``B`` is not made of its rows.

        Parameters
        ----------
        A, B : ndarray of shape (n_a, n_features), (n_b, n_features)
            Row sets; one of them must be made of training rows.

        Returns
        -------
        ndarray of shape (n_a, n_b) or None
        """
        found = self._blocks(A, B)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        return _gather(self._full_inner(found[0]), *found)

    def sqdist(self, A: np.ndarray, B: np.ndarray) -> np.ndarray | None:
        """Squared Euclidean distances ``||a - b||^2``, or None (as :meth:`inner`).

        Parameters
        ----------
        A, B : ndarray of shape (n_a, n_features), (n_b, n_features)
            Row sets; one of them must be made of training rows.

        Returns
        -------
        ndarray of shape (n_a, n_b) or None
        """
        return self._take(self._full_sqdist(), A, B)

    def kernel(
        self, key, base: str, transform: Callable[[np.ndarray], np.ndarray], A, B
    ) -> np.ndarray | None:
        """A block of the kernel ``transform(base matrix)``, memoized under ``key``.

        Parameters
        ----------
        key : hashable
            Identifies the kernel, e.g. ``("rbf", gamma)``.
        base : {"inner", "sqdist"}
            The matrix the kernel is an elementwise function of.
        transform : callable
            ``ndarray -> ndarray``, elementwise (e.g. ``lambda S: np.exp(-gamma * S)``).
        A, B : ndarray
            Row sets, as in :meth:`inner`.

        Returns
        -------
        ndarray of shape (n_a, n_b) or None
        """
        if base not in ("inner", "sqdist"):
            raise ValueError(f"base must be 'inner' or 'sqdist', got {base!r}")
        found = self._blocks(A, B)
        if found is None:
            self.misses += 1
            return None
        ia, ib, transposed = found
        full = self._kernels.get(key)
        if full is None:
            source = self._full_inner() if base == "inner" else self._full_sqdist()
            if self.max_kernels == 0:  # no room to keep it: transform the block only
                self.hits += 1
                return transform(_gather(source, ia, ib, transposed))
            full = transform(source)
            self._kernels[key] = full
            while len(self._kernels) > self.max_kernels:
                self._kernels.popitem(last=False)
        else:
            self._kernels.move_to_end(key)
        self.hits += 1
        return _gather(full, ia, ib, transposed)

    def memoize(
        self, name: str, arrays: tuple[np.ndarray, ...], compute: Callable[..., np.ndarray]
    ) -> np.ndarray:
        """``compute(*arrays)``, kept for later calls with equal arrays (compared exactly).

        For matrices that depend only on the data, not on the learner's parameters, e.g. the
        weighted Gram matrix ``Xa^T diag(s) Xa`` of a quadratic loss, which every ridge fit and
        slope of a grid on this data set shares. At most four results are kept (least recently
        used first out), none larger than a quarter of the memory budget. The result is shared:
        callers must not modify it.

        Parameters
        ----------
        name : str
            What is computed (part of the key).
        arrays : tuple of ndarray
            The inputs (part of the key, by content).
        compute : callable
            ``compute(*arrays)``: an ndarray, or an object with an ``nbytes`` attribute (e.g. a
            :class:`~backdoor_curves.linalg.CholeskySolver`).

        Returns
        -------
        ndarray or object
        """
        key = (name, *(_content_key(a) for a in arrays))
        found = self._memo.get(key)
        if found is not None and all(
            a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(found[0], arrays, strict=True)
        ):
            self._memo.move_to_end(key)
            self.hits += 1
            return found[1]
        result = compute(*arrays)
        if result.nbytes + sum(a.nbytes for a in arrays) <= memory_budget() // 4:
            self._memo[key] = (arrays, result)
            while len(self._memo) > 4:
                self._memo.popitem(last=False)
        return result


def _content_key(a: np.ndarray) -> tuple:
    """A hashable digest of an array's shape, dtype and contents (not a proof of equality).

    A float64 matrix is digested as ``u^T A v`` over its bits as 64-bit integers (wrapping
    around), with fixed odd multipliers u and v: the same value for a C- or a Fortran-ordered
    layout (e.g. ``Xa[:, active]``), computed through whichever of A or A^T is C-ordered, so
    no copy is made.
    """
    if a.ndim == 2 and a.dtype == np.float64 and a.size:
        u, v = _key_weights(a.shape[0]), _key_weights(a.shape[1])
        if a.flags.f_contiguous and not a.flags.c_contiguous:
            digest = v @ (a.T.view(np.uint64) @ u)
        else:
            digest = u @ (np.ascontiguousarray(a).view(np.uint64) @ v)
        return (a.shape, a.dtype.str, int(digest))
    return (a.shape, a.dtype.str, hash(np.ascontiguousarray(a).tobytes()))


def _span(index: np.ndarray) -> slice | None:
    """The slice equal to ``index`` when it is a run of consecutive integers, else None."""
    if index.size and index[-1] - index[0] == index.size - 1 and np.all(np.diff(index) == 1):
        return slice(int(index[0]), int(index[-1]) + 1)
    return None


def _gather(full: np.ndarray, ia: np.ndarray, ib: np.ndarray, transposed: bool) -> np.ndarray:
    """``full[ia][:, ib]`` (transposed if asked): a read-only view when both index sets are runs
    (e.g. the training kernel of a fit, K[D, D] or K[D + P, D + P]: up to 5 MB not copied per
    fit; its rows are contiguous, its row stride may be longer than a row), else a fresh
    C-contiguous copy. Blocks are never modified by their callers."""
    ra, rb = _span(ia), _span(ib)
    if ra is not None and rb is not None and not transposed:
        view = full[ra, rb]
        view.flags.writeable = False
        return view
    rows = full[ra] if ra is not None else full.take(ia, axis=0)
    block = rows[:, rb] if rb is not None else rows.take(ib, axis=1)
    if transposed:
        block = block.T
    return np.array(block, order="C", copy=True) if block.base is not None else block


def take_rows(X: np.ndarray, rows) -> np.ndarray:
    """``X[rows]``, with its place in the current cache's rows derived from ``X``'s (no search).

    Learners take support vectors, margin sets and weighted subsets of arrays the cache has
    already located; this records where the subset's rows are, so that kernels on it are
    served without looking its rows up again.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        An array of rows.
    rows : array-like of int or bool
        The rows to take (an index or a mask).

    Returns
    -------
    ndarray
        ``X[rows]`` (a copy, as numpy's fancy indexing makes).
    """
    sub = X[rows]
    cache = _ACTIVE.get()
    if cache is not None:
        cache.derive(sub, X, rows)
    return sub


def same_rows(copy: np.ndarray, original) -> np.ndarray:
    """Return ``copy``, a validated copy of ``original``, noting that its rows are the same.

    Input validation copies arrays; this lets the current cache (if any) find the copy's rows
    where it found, or finds, the original's.

    Parameters
    ----------
    copy : ndarray
        The validated copy.
    original : object
        What the caller passed (only an ndarray of the same shape is used).

    Returns
    -------
    ndarray
        ``copy``.
    """
    cache = _ACTIVE.get()
    if (
        cache is not None
        and isinstance(original, np.ndarray)
        and original.shape == copy.shape
        and original.dtype == copy.dtype
    ):
        cache.derive(copy, original, slice(None))
    return copy


def active_cache() -> PairwiseCache | None:
    """The cache of the innermost :func:`shared_pairwise` block, or None.

    Returns
    -------
    PairwiseCache or None
    """
    return _ACTIVE.get()


def memoized(name: str, arrays: tuple[np.ndarray, ...], compute: Callable):
    """``compute(*arrays)``, memoized by the current cache, if there is one.

    Inside a :func:`shared_pairwise` block the cache's :meth:`PairwiseCache.memoize` keeps it;
    outside one it is computed afresh.

    Parameters
    ----------
    name : str
        What is computed (part of the key).
    arrays : tuple of ndarray
        The inputs (part of the key, by content).
    compute : callable
        ``compute(*arrays)``.

    Returns
    -------
    ndarray or object
        Shared when memoized: callers must not modify it.
    """
    cache = active_cache()
    if cache is None:
        return compute(*arrays)
    return cache.memoize(name, arrays, compute)


def pairwise_rows(data) -> tuple[np.ndarray, int]:
    """(Z, n_train): a data set's training rows D and P, then its test rows V and V_t.

    Parameters
    ----------
    data : BackdoorData
        The data set.

    Returns
    -------
    tuple of (ndarray, int)
        V_t begins at row ``n_train + len(data.X_test)``.
    """
    X_train = np.asarray(data.X_train, dtype=np.float64)
    rows = np.vstack(
        [X_train, np.asarray(data.X_test, dtype=np.float64), np.asarray(data.X_test_bd, float)]
    )
    return rows, X_train.shape[0]


@contextlib.contextmanager
def shared_pairwise(data, cache: PairwiseCache | None = None) -> Iterator[PairwiseCache | None]:
    """Serve every kernel on ``data``'s rows from one :class:`PairwiseCache` inside the block.

    Parameters
    ----------
    data : BackdoorData or None
        The data set whose rows the kernels will be evaluated on (ignored when ``cache`` is given).
    cache : PairwiseCache, optional
        A cache made before (e.g. kept across the grid points of one data set).

    Yields
    ------
    PairwiseCache or None
        The cache in force; None when its inner products would exceed the memory budget.
    """
    if cache is None:
        cache = make_cache(data)
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def make_cache(data) -> PairwiseCache | None:
    """A :class:`PairwiseCache` over ``data``'s rows, or None when it would exceed the budget.

    Parameters
    ----------
    data : BackdoorData
        The data set.

    Returns
    -------
    PairwiseCache or None
        None also for data sets with non-float features.
    """
    n_rows = data.X_train.shape[0] + data.X_test.shape[0] + data.X_test_bd.shape[0]
    # G and the squared distances, plus one kernel, must fit next to each other
    if 3 * n_rows * data.X_train.shape[0] * 8 > memory_budget():
        return None
    rows, n_train = pairwise_rows(data)
    return PairwiseCache(rows, n_train, groups=(n_train + len(data.X_test),))
