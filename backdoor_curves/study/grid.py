"""Hyperparameter grid studies: slope, accuracies and losses for every point of a grid.

:func:`grid_study` evaluates every point of a parameter grid — learner parameters (C, alpha,
gamma, ...) crossed with data parameters (poisoning fraction, trigger size, seed, ...) — and
returns a tidy table with one row per point, each computed by
:func:`backdoor_curves.study.point.evaluate_point` (one clean fit shared by the slope and the
deviation reference, one poisoned fit at beta = 1, optionally the whole curve).

Points are independent and run through joblib (processes by default, or a Dask cluster through
joblib's Dask backend). Every number depends only on the point (its parameters and its seed),
never on the worker that computed it, so the table is the same whatever ``n_jobs`` and backend;
only the ``seconds`` column (wall time) differs between runs. BLAS is limited to one thread
(``BACKDOOR_CURVES_BLAS_THREADS``, default 1) inside every task, the data factory and the hash of
its arrays included (:func:`backdoor_curves._threads.blas_limit`), so parallel workers do not
oversubscribe and no number depends on how many BLAS threads a computation got (OpenBLAS's
multi-threaded kernels sum in another order than its single-threaded ones: the last bits differ).
This holds for the "threading" backend too: OpenBLAS as numpy's wheels ship it (pthreads build) has
one process-wide thread count, which ``blas_limit`` sets from the first pool thread to enter and
restores when the last one leaves, so every worker thread computes with one BLAS thread, as a
sequential run does. (threadpoolctl 3.8 ignores a limit set from a thread that does not "control"
OpenBLAS, usually the main thread; ``blas_limit`` clears that role around its own changes. Before it
did, pool threads ran BLAS on every core and a threaded table differed from the sequential one in
the last bits.) Not covered: a BLAS whose single-threaded results depend on more than the thread
count (MKL's kernels may depend on the arrays' memory alignment unless ``MKL_CBWR`` fixes them).

With a ``store`` (:class:`backdoor_curves.study.store.GridStore`) every finished point is
committed to disk at once and a re-run skips it.

Study identity: what a stored row was computed from, and how a re-run checks it. Names do not
identify a study: two lambdas share a qualified name, and a factory whose body was edited between
two runs (another trigger size, another class pair) keeps its name. So the store records, besides
the grid's points, seeds and betas (which must match exactly), the *content* of each result:

- per data set (data parameters and seed; one for a fixed ``BackdoorData``): the SHA-256 of all
  its arrays (``BackdoorData.ARRAYS``: values, dtypes and shapes). A worker hashes the data set it
  builds (once per process and data set) and returns the hash with the rows of its segment; both
  are committed in one transaction;
- per point: the learner it built, in full: its name, class and ``get_params(deep=False)`` with
  every value (defaults included, which ``repr`` hides), as plain JSON.

On a re-run with finished points, before anything is scheduled, every data set that has
finished points is built once and hashed, and every point's learner is built in the main process
(it is anyway, to order the chains). Where the data sets are built: with Dask, by tasks on the
cluster's workers (the data may exist there only); with ``n_jobs > 1``, several data sets to
check and points left to compute, by tasks of the study's joblib backend (its workers start
anyway); else in the main process, so that resuming a finished study starts no worker (with
``n_jobs=1`` or threads the main process computes the points too and keeps the data sets in
its cache for them). The cost is one data-factory call and one hash per data set with finished
points — what a worker pays anyway before its first fit of that data set (SHA-256 hashes about
0.8 GB/s on one core; no model is fitted). A data set whose hash differs from the stored one, or
a point whose learner differs (name, class or a parameter), is then reported in a ``ValueError``
that says what differs and how to proceed. With ``recompute_changed=True`` the store first
forgets those points (and the changed data sets' hashes), in one transaction, and they are
computed again with the missing points; the other finished points are kept. A segment (see
:data:`SEGMENT`) is computed whole, each fit warm-started from the previous point, so the points
of a segment that holds a changed point are recomputed too, as a fresh run computes them: the
table equals a fresh run's.

A data factory must be deterministic given its parameters and ``random_state``: rows of a data
set whose arrays differ from the hash already recorded in the same run are refused by the store.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid
from tqdm.auto import tqdm

from .._memory import memory_budget, memory_budget_context
from .._threads import blas_limit
from .._validation import check_betas, check_n_jobs, check_seed
from ..data import BackdoorData
from ..learners import learner_label
from ..learners.base import BaseLearner, refuse_learner_class
from ..learners.pairwise import PairwiseCache, make_cache, shared_pairwise
from ..measures.results import LearningCurve
from .point import (
    CURVE_VALUE_COLUMNS,
    RESULT_COLUMNS,
    WarmStart,
    describe_error,
    evaluate_point,
)
from .store import GridStore, dumps

__all__ = [
    "RESULT_COLUMNS",
    "CURVE_VALUE_COLUMNS",
    "grid_study",
    "grid_points",
    "evaluate_point",
    "curves_frame",
    "grid_curves",
]

BACKENDS = ("loky", "threading", "dask")


def _plain(value):
    """numpy scalars -> Python scalars (JSON- and table-friendly); tuples for sequences."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(_plain(v) for v in value)
    return value


def grid_points(param_grid, random_state: int = 0) -> list[dict]:
    """The points of ``param_grid`` in a fixed order, each with its ``random_state``.

    Parameters
    ----------
    param_grid : dict of str -> sequence, or list of such dicts
        As :class:`sklearn.model_selection.ParameterGrid`: the Cartesian product of each dict's
        values (keys in sorted order), dicts one after another.
    random_state : int, default=0
        The seed of every point whose parameters do not name ``random_state`` themselves.

    Returns
    -------
    list of dict
        One dict per point with Python scalars (tuples for sequence values).

    Raises
    ------
    TypeError
        If ``param_grid`` is not a dict or list of dicts of str -> list of values, or a seed is
        not an int.
    ValueError
        If a list of values is empty, the grid has no point, or a seed is negative.
    """
    if isinstance(param_grid, Mapping):
        param_grid = [param_grid]
    if not isinstance(param_grid, Sequence) or isinstance(param_grid, str):
        raise TypeError(
            f"param_grid must be a dict of name -> list of values or a list of such dicts, "
            f"got {type(param_grid).__name__}"
        )
    for k, grid in enumerate(param_grid):
        if not isinstance(grid, Mapping):
            raise TypeError(f"param_grid[{k}] must be a dict, got {type(grid).__name__}")
        for name, values in grid.items():
            if not isinstance(name, str):
                raise TypeError(f"param_grid keys must be str, got {name!r}")
            if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
                raise TypeError(
                    f"param_grid[{name!r}] must be a list of values, got {type(values).__name__}"
                )
            if len(values) == 0:
                raise ValueError(f"param_grid[{name!r}] is empty: give at least one value")
    seed = check_seed(random_state, "random_state")
    points = []
    for point in ParameterGrid(list(param_grid)):
        point = {k: _plain(v) for k, v in point.items()}
        point.setdefault("random_state", seed)
        check_seed(point["random_state"], "param_grid['random_state']")
        points.append(point)
    if not points:
        raise ValueError("param_grid has no point")
    return points


def _keywords(func: Callable) -> tuple[set[str], bool]:
    """Named keyword parameters of ``func`` and whether it takes ``**kwargs``."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: accept anything
        return set(), True
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


class _Resolver:
    """Splits a point's parameters between the learner and the data, and builds both."""

    def __init__(self, learners, data):
        refuse_learner_class(learners, "learners")
        if isinstance(learners, BaseLearner):
            self.kind, self.learners = "one", {learner_label(learners): learners}
        elif isinstance(learners, Mapping):
            if not learners:
                raise ValueError("learners is an empty dict: give at least one learner")
            for name, est in learners.items():
                if not isinstance(name, str) or not isinstance(est, BaseLearner):
                    raise TypeError(
                        "learners must map names (str) to backdoor_curves learners, got "
                        f"{name!r}: {type(est).__name__}"
                    )
            self.kind, self.learners = "dict", dict(learners)
        elif callable(learners):
            self.kind, self.learners = "factory", learners
        else:
            raise TypeError(
                "learners must be a learner, a dict of name -> learner or a factory "
                f"(callable returning a learner), got {type(learners).__name__}"
            )
        if isinstance(data, BackdoorData):
            self.data_kind = "fixed"
        elif callable(data):
            self.data_kind = "factory"
            names, var = _keywords(data)
            if not var and "random_state" not in names:
                raise TypeError("a data factory must accept the keyword argument random_state")
            self.data_names, self.data_var = names, var
        else:
            raise TypeError(
                "data must be a BackdoorData or a factory (callable taking the data "
                f"parameters and random_state, returning a BackdoorData), got {type(data).__name__}"
            )
        self.data = data
        # the content of a fixed data set, hashed once in the main process when a store needs
        # it (see grid_study); it travels with the resolver to the workers
        self.fixed_hash: str | None = None
        # identifies this study's data factory in the per-process cache of every worker
        self.token = uuid.uuid4().hex

    def _learner_template(self, point: dict):
        if self.kind == "one":
            return next(iter(self.learners.values()))
        if self.kind == "dict":
            if "learner" not in point and len(self.learners) == 1:
                return next(iter(self.learners.values()))
            name = point.get("learner")
            if name not in self.learners:
                raise ValueError(
                    f"param_grid['learner'] must name one of {sorted(self.learners)}, got {name!r}"
                )
            return self.learners[name]
        return None

    def split(self, point: dict) -> tuple[dict, dict]:
        """(learner parameters, data parameters) of a point; unknown keys raise ValueError."""
        template = self._learner_template(point)
        if template is not None:
            names, var = set(template.get_params()), False
        else:
            names, var = _keywords(self.learners)
        learner_params, data_params = {}, {}
        for key, value in point.items():
            if key == "random_state":
                continue
            if key == "learner" and self.kind == "dict":
                continue
            if key in names or (var and self.data_kind == "fixed"):
                learner_params[key] = value
            elif self.data_kind == "factory" and (key in self.data_names or self.data_var):
                data_params[key] = value
            else:
                raise ValueError(
                    f"param_grid key {key!r} is neither a parameter of the learner "
                    f"({sorted(names)}) nor of the data"
                    + (" factory" if self.data_kind == "factory" else " (a fixed BackdoorData)")
                )
        return learner_params, data_params

    def name(self, point: dict) -> str:
        if self.kind == "dict":
            return point.get("learner", next(iter(self.learners)))
        if self.kind == "one":
            return next(iter(self.learners))
        return str(point.get("learner", getattr(self.learners, "__name__", "learner")))

    def learner(self, point: dict) -> BaseLearner:
        learner_params, _ = self.split(point)
        template = self._learner_template(point)
        if template is not None:
            return clone(template).set_params(**learner_params)
        learner = self.learners(**learner_params)
        if not isinstance(learner, BaseLearner):
            raise TypeError(f"the learner factory returned {type(learner).__name__}, not a learner")
        return learner

    def description(self) -> dict:
        """JSON description of the learners and the data by name, quoted in messages only
        (the store compares contents: data set hashes and learner parameters)."""
        if self.kind == "factory":
            learners = _callable_name(self.learners)
        else:
            learners = {k: repr(v) for k, v in self.learners.items()}
        data = "fixed BackdoorData" if self.data_kind == "fixed" else _callable_name(self.data)
        return {"learners": learners, "data": data}


def _callable_name(func) -> str:
    if isinstance(func, functools.partial):
        keywords = dumps(_jsonable(func.keywords))
        return f"partial({_callable_name(func.func)}, {func.args!r}, {keywords})"
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _jsonable(value):
    """A learner parameter as plain JSON: scalars as they are, sequences as lists, estimators
    as their class and parameters, callables by name, anything else by its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "get_params") and not isinstance(value, type):
        return {"class": _class_name(type(value)), "params": _jsonable(value.get_params(False))}
    if callable(value):
        return {"callable": _callable_name(value)}
    text = repr(value)
    # an object's default repr holds its address, which differs in every run: use its type
    return {"object": _class_name(type(value)) if " at 0x" in text else text}


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _learner_identity(name: str, learner: BaseLearner) -> dict:
    """What a point's learner is, in full: its name in the table, class and every parameter."""
    return {
        "name": name,
        "class": _class_name(type(learner)),
        "params": _jsonable(learner.get_params(deep=False)),
    }


def _fingerprint(data: BackdoorData) -> str:
    """``"sha256:<hex>"`` of a data set's arrays: names, dtypes, shapes and values (object
    arrays by the repr of their values). The bytes are hashed in place, without a copy."""
    import hashlib

    h = hashlib.sha256()
    for name in BackdoorData.ARRAYS:
        a = np.ascontiguousarray(getattr(data, name))
        h.update(f"{name}{a.dtype.str}{a.shape}".encode())
        h.update(repr(a.tolist()).encode() if a.dtype == object else a.reshape(-1).view(np.uint8))
    return "sha256:" + h.hexdigest()


#: Per process: the data sets of the last few data keys (with the hashes of their arrays), and
#: the pairwise cache of the most recent one (points are scheduled grouped by data set, so one
#: cache per process suffices).
_DATA_CACHE: OrderedDict[str, BackdoorData] = OrderedDict()
_DATA_HASH: dict[str, str] = {}
_PAIRWISE: dict[str, PairwiseCache | None] = {}


def _data_key(resolver: _Resolver, point: dict) -> str:
    """Identifies the point's data set: the same key, the same arrays."""
    if resolver.data_kind == "fixed":
        return resolver.token
    _, data_params = resolver.split(point)
    return dumps([resolver.token, data_params, point["random_state"]])


def _store_key(resolver: _Resolver, point: dict) -> str:
    """The point's data set as the store records it: its data parameters and seed (canonical
    JSON), or ``"fixed"``. Unlike :func:`_data_key`, the same in every run."""
    if resolver.data_kind == "fixed":
        return "fixed"
    _, data_params = resolver.split(point)
    return dumps({**data_params, "random_state": point["random_state"]})


def _describe_data_set(key: str) -> str:
    """A store key for messages: ``fraction=0.1, random_state=0`` or ``the fixed BackdoorData``."""
    if key == "fixed":
        return "the fixed BackdoorData"
    try:
        params = json.loads(key)
    except (TypeError, ValueError):
        return repr(key)
    return "{" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + "}"


def _point_data(resolver: _Resolver, point: dict) -> BackdoorData:
    """The point's data: the fixed set, or the factory's output (cached per process)."""
    if resolver.data_kind == "fixed":
        return resolver.data
    key = _data_key(resolver, point)
    if key not in _DATA_CACHE:
        data = _make_data(resolver, point)
        if len(_DATA_CACHE) >= 4:  # a few data sets per worker
            evicted, _ = _DATA_CACHE.popitem(last=False)
            _DATA_HASH.pop(evicted, None)
        _DATA_CACHE[key] = data
        _DATA_HASH.pop(key, None)
    else:
        _DATA_CACHE.move_to_end(key)
    return _DATA_CACHE[key]


def _make_data(resolver: _Resolver, point: dict) -> BackdoorData:
    """The data factory's output for the point (not cached)."""
    _, data_params = resolver.split(point)
    data = resolver.data(**data_params, random_state=point["random_state"])
    if not isinstance(data, BackdoorData):
        raise TypeError(f"the data factory returned {type(data).__name__}, not a BackdoorData")
    return data


def _point_hash(resolver: _Resolver, point: dict, data: BackdoorData) -> str:
    """The hash of the point's data set (computed once per process and data set)."""
    if resolver.data_kind == "fixed":
        return resolver.fixed_hash
    key = _data_key(resolver, point)
    if key not in _DATA_HASH:
        _DATA_HASH[key] = _fingerprint(data)
    return _DATA_HASH[key]


def _built_data(resolver: _Resolver, point: dict) -> tuple[BackdoorData | None, Exception | None]:
    """(the point's data, None), or (None, the error of the data factory); OSError and
    ImportError (the environment lacks the data or a package) propagate."""
    try:
        return _point_data(resolver, point), None
    except (OSError, ImportError):
        raise
    except Exception as exc:
        return None, exc


def _point_pairwise(resolver: _Resolver, point: dict, data: BackdoorData) -> PairwiseCache | None:
    """The pairwise cache of the point's data set (made on first use, one per process)."""
    key = _data_key(resolver, point)
    if key not in _PAIRWISE:
        _PAIRWISE.clear()  # the previous data set's products are no longer needed
        _PAIRWISE[key] = make_cache(data)
    return _PAIRWISE[key]


def _run_point(
    index: int,
    resolver: _Resolver,
    point: dict,
    betas,
    budget: int | None = None,
    warm: WarmStart | None = None,
    built: tuple[BackdoorData | None, Exception | None] | None = None,
) -> tuple[int, dict, dict | None]:
    """Worker task: ``(index, row, learner)`` of one point, ``learner`` the identity of the
    learner it built (None if it could not be built); errors go to ``error``, except OSError and
    ImportError while getting the data (an environment without the data, weights or packages),
    which stop the study. ``built``: the data set (or its factory's error) when the caller got
    it already."""
    start = time.perf_counter()
    row: dict[str, Any] = {"learner": resolver.name(point), **point}
    identity = None
    with memory_budget_context(budget):
        try:
            learner = resolver.learner(point)
            identity = _learner_identity(row["learner"], learner)
            row["estimator"] = repr(learner)
            row["lambda"] = float(learner.regularization)
            if built is None:
                data = _point_data(resolver, point)
            else:
                data, error = built
                if error is not None:
                    raise error
            cache = _point_pairwise(resolver, point, data)
        except (OSError, ImportError):
            # missing data files, weights or packages: every point would fail the same way, so
            # the study stops (finished points stay in the store) instead of filling rows with it
            raise
        except Exception as exc:
            row.update(dict.fromkeys(RESULT_COLUMNS, math.nan))
            row.update(estimator="", error="setup: " + describe_error(exc), warning="")
            row.setdefault("lambda", math.nan)
            if betas is not None:
                row.update({f"curve_{c}": None for c in CURVE_VALUE_COLUMNS})
        else:
            with shared_pairwise(data, cache) if cache is not None else contextlib.nullcontext():
                row.update(evaluate_point(learner, data, betas, warm=warm))
    row["seconds"] = time.perf_counter() - start
    return index, row, identity


#: Points per task: a chain (one data set and learner, the regularization swept) is cut into
#: segments of at most this many points, each warm-started along its chain and committed to the
#: store in one transaction. Fixed, so that the table does not depend on n_jobs.
SEGMENT = 5


def _run_segment(
    indices: list[int], resolver: _Resolver, points: list[dict], betas, budget: int | None
) -> tuple[list[tuple[int, dict, dict | None]], str, str | None]:
    """Worker task: the rows of one segment of a chain, each point warm-started from the one
    before it, with the segment's data set: ``(rows, data set key, hash of its arrays)`` (the
    hash is None when the data factory failed; the rows then hold its error)."""
    with blas_limit():  # the whole task, data factory included
        with memory_budget_context(budget):
            built = _built_data(resolver, points[0])  # one data set per segment
        digest = None if built[0] is None else _point_hash(resolver, points[0], built[0])
        warm = WarmStart()
        rows = [
            _run_point(i, resolver, point, betas, budget, warm, built)
            for i, point in zip(indices, points, strict=True)
        ]
    return rows, _store_key(resolver, points[0]), digest


def _dataset_hash(
    resolver: _Resolver, point: dict, budget: int | None, cache: bool = True
) -> str | None:
    """Task of a resume check: the hash of the point's data set (None when the data factory
    fails). With ``cache``, the data set stays in the process's cache for the points that
    follow (a worker, or the main process when it computes the points itself)."""
    with memory_budget_context(budget), blas_limit():  # the data as a task builds it
        try:
            data = _point_data(resolver, point) if cache else _make_data(resolver, point)
        except (OSError, ImportError):
            raise
        except Exception:
            return None
    return _point_hash(resolver, point, data) if cache else _fingerprint(data)


def _segments(resolver: _Resolver, points: list[dict], lambdas: list[float]) -> list[list[int]]:
    """The study's tasks: point indices grouped by data set, then by chain, in segments.

    A chain holds the points that differ only in the learner's regularization (``C`` or
    ``alpha``), ordered from the strongest regularization to the weakest; data sets and chains
    come in the order of their first point in the grid. ``lambdas``: each point's
    regularization (see :func:`_learners`).
    """
    chains: dict[str, list[tuple[float, int]]] = {}
    rank: dict[str, tuple[int, int]] = {}  # (first point of its data set, its own first point)
    data_first: dict[str, int] = {}
    for i, point in enumerate(points):
        data_key = _data_key(resolver, point)
        data_first.setdefault(data_key, i)
        learner_params, _ = resolver.split(point)
        swept = next((k for k in ("C", "alpha") if k in learner_params), None)
        rest = {k: v for k, v in learner_params.items() if k != swept}
        key = dumps([data_key, resolver.name(point), rest])
        rank.setdefault(key, (data_first[data_key], i))
        chains.setdefault(key, []).append((lambdas[i], i))
    ordered = sorted(chains.items(), key=lambda kv: rank[kv[0]])
    segments = []
    for _, chain in ordered:
        order = [i for _, i in sorted(chain, key=lambda t: (-t[0], t[1]))]
        segments += [order[k : k + SEGMENT] for k in range(0, len(order), SEGMENT)]
    return segments


def _lambda_of(learner: BaseLearner) -> float:
    try:
        value = float(learner.regularization)
    except Exception:
        return -math.inf
    return value if not math.isnan(value) else -math.inf


def _refuse_invalid(resolver: _Resolver, point: dict, learner: BaseLearner) -> None:
    """Refuse a point whose learner parameters are invalid (C <= 0, NaN gamma, ...) before any
    point runs, naming the grid key."""
    try:
        learner.validate_params()
    except (TypeError, ValueError) as exc:
        learner_params, _ = resolver.split(point)
        bad = [k for k in learner_params if str(exc).startswith(f"{k} ")] or sorted(learner_params)
        keys = ", ".join(f"param_grid[{k!r}]" for k in bad)
        raise type(exc)(f"{keys}: {exc} (point {dumps(point)})") from None


def _learners(resolver: _Resolver, points: list[dict]) -> tuple[list[dict | None], list[float]]:
    """Each point's learner built once in the main process: its identity (None when it cannot
    be built: a learner factory that raises is left to its point) and its regularization (for
    the order of the chains). Invalid learner parameters are refused here (ValueError or
    TypeError naming the ``param_grid`` key)."""
    identities, lambdas = [], []
    for point in points:
        try:
            learner = resolver.learner(point)
            identity = _learner_identity(resolver.name(point), learner)
        except Exception:
            identities.append(None)
            lambdas.append(-math.inf)
            continue
        _refuse_invalid(resolver, point, learner)
        identities.append(identity)
        lambdas.append(_lambda_of(learner))
    return identities, lambdas


def _parallel_context(backend, scheduler, n_jobs, resolver=None):
    """(context manager, n_jobs for Parallel, cleanup) for the chosen backend.

    With Dask, ``resolver`` (which holds a fixed data set) is scattered to every worker once;
    the tasks refer to it instead of carrying their own copy.
    """
    if backend is None:
        backend = "loky"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)} or None, got {backend!r}")
    if backend != "dask":
        if scheduler is not None:
            raise ValueError("scheduler is only used with backend='dask'")
        return parallel_config(backend=backend, n_jobs=n_jobs), n_jobs, contextlib.nullcontext()
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='dask' needs dask.distributed: pip install 'backdoor-curves[dask]'"
        ) from exc
    stack = contextlib.ExitStack()
    if scheduler is None:
        workers = n_jobs if n_jobs > 0 else None
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
        )
        client = stack.enter_context(Client(cluster))
    elif isinstance(scheduler, str):
        client = stack.enter_context(Client(scheduler))
    elif isinstance(scheduler, Client):
        client = scheduler
    elif hasattr(scheduler, "scheduler_address"):  # a cluster object, e.g. LocalCluster
        client = stack.enter_context(Client(scheduler))
    else:
        raise TypeError(
            "scheduler must be a scheduler address (str), a dask Client or a cluster "
            f"(e.g. LocalCluster), got {type(scheduler).__name__}"
        )
    del client  # joblib's dask backend uses the current client
    scatter = None if resolver is None else [resolver]
    return parallel_config(backend="dask", scatter=scatter), -1, stack


def _definition(resolver: _Resolver, points: list[dict], betas, random_state: int) -> dict:
    """What must match exactly for a store to be resumed: the grid, the seeds, the betas, the
    toolkit version and the kind of data. The data's and learners' contents are checked per
    data set and per point (:func:`_check_resume`)."""
    from .._version import __version__

    return {
        "version": __version__,
        "data": resolver.data_kind,
        "points": points,
        "random_state": random_state,
        "betas": None if betas is None else [float(b) for b in betas],
    }


def grid_study(
    learners,
    data,
    param_grid,
    *,
    n_jobs: int = 1,
    backend: str | None = None,
    scheduler=None,
    store=None,
    betas=None,
    random_state: int = 0,
    progress: bool = False,
    recompute_changed: bool = False,
) -> pd.DataFrame:
    """Evaluate every point of a hyperparameter grid; one table row per point.

    Parameters
    ----------
    learners : BaseLearner, dict of str -> BaseLearner, or callable
        A learner whose parameters the grid sets (``set_params``), learners by name (the grid's
        ``learner`` key chooses; the name fills the ``learner`` column), or a factory called
        with the point's learner parameters (its named keyword arguments) returning a learner.
    data : BackdoorData or callable
        A fixed poisoned data set, or a factory ``data(**data_params, random_state=seed)``
        returning one (data parameters: the grid keys the learner does not take, e.g.
        ``fraction``, ``size``). A factory runs in the workers, cached per process.
    param_grid : dict of str -> list, or list of such dicts
        As :class:`sklearn.model_selection.ParameterGrid`. The key ``random_state`` sweeps the
        seed handed to the data factory; points without it get ``random_state``.
    n_jobs : int, default=1
        Parallel workers (-1: all CPUs; with ``backend="dask"`` and no ``scheduler``, the
        number of workers of the local cluster started for the study).
    backend : {"loky", "threading", "dask"}, optional
        joblib backend (default "loky", processes). "dask" runs the points on a Dask cluster
        through joblib's Dask backend. "threading" runs them in threads of this process, with
        BLAS pinned process-wide to one thread while any of them computes (OpenBLAS's thread
        count is shared by all threads; see the module docstring). Every backend and ``n_jobs``
        gives the same table, bit for bit (but ``seconds``).
    scheduler : str, dask Client or cluster, optional
        With ``backend="dask"``: a scheduler address ("tcp://host:8786"), a Client, or a
        cluster such as ``LocalCluster``; default: a LocalCluster with ``n_jobs`` single-threaded
        worker processes, closed afterwards.
    store : str or path-like, optional
        SQLite file (:class:`backdoor_curves.study.store.GridStore`): every finished point is
        committed as it completes, with the hash of its data set's arrays and its learner's
        parameters; re-running with the same store computes only the missing points. A store
        made by a different study (grid, seeds, betas, toolkit version, or a fixed data set
        instead of a factory) raises ``ValueError``. Before resuming, each data set with
        finished points is built once and hashed (one data-factory call per data set, no fit)
        and each learner is built: a data set whose arrays changed (an edited factory, another
        lambda), or a point whose learner changed (name, class or any parameter, defaults
        included), raises ``ValueError`` unless ``recompute_changed``.
    betas : array-like of float in [0, 1], optional
        Also compute each point's learning curve at these betas (``curve_*`` columns).
    random_state : int, default=0
        Seed of the points that do not sweep ``random_state``. Each point carries its own seed,
        so the numbers do not depend on the worker or on ``n_jobs``.
    progress : bool, default=False
        Show a tqdm progress bar over the points.
    recompute_changed : bool, default=False
        With ``store``: instead of raising when finished points were computed from other data
        or another learner, forget them and compute them again (with the segments of warm-started
        points they belong to, so the table equals a fresh run's); the other finished points are
        kept. No effect without ``store``.

    Returns
    -------
    pandas.DataFrame
        One row per point, in grid order: ``learner``, the grid's parameters, ``random_state``,
        ``estimator`` (the learner's repr), ``lambda`` (1/C), :data:`RESULT_COLUMNS` (slope
        derivative and score at beta = 0, condition number (to ten significant digits), backdoor
        loss at beta = 0; clean and backdoor accuracy, backdoor loss, rho_ratio and nu at beta =
        1), ``error`` (empty when the point succeeded; a failed point keeps its row with NaN
        values), ``warning``, ``seconds`` (wall time of the point, the only column that varies
        between runs) and, with ``betas``, ``curve_*`` tuples (see :func:`curves_frame`).
        ``table.attrs["betas"]`` holds the betas.

    Raises
    ------
    TypeError, ValueError
        Before any point runs: for an argument of the wrong type or value (``learners``,
        ``data``, ``param_grid``, ``n_jobs``, ``backend``, ``scheduler``, ``betas``,
        ``random_state``, ``recompute_changed``), a grid key that neither the learner nor the
        data takes, duplicate points, or a ``store`` made by a different study, by an older
        version of the toolkit (store schema 1, which cannot be checked; read it with
        :func:`~backdoor_curves.study.results_io.read_study`), or whose finished points were
        computed from other data or learners (without ``recompute_changed``; the message names
        each data set, with its stored and new hashes, and each learner parameter, with its
        stored and new values). Errors of a single point are recorded in its ``error`` column
        instead.
    OSError, ImportError
        When a point's data cannot be had at all (missing data files or pretrained weights, a
        missing package): the study stops at once rather than record the same failure for
        every point. Points finished before are kept in ``store``.
    """
    n_jobs = check_n_jobs(n_jobs)
    seed = check_seed(random_state, "random_state")
    if not isinstance(recompute_changed, bool | np.bool_):
        raise TypeError(
            f"recompute_changed must be True or False, got {type(recompute_changed).__name__}"
        )
    resolver = _Resolver(learners, data)
    points = grid_points(param_grid, seed)
    for point in points:  # fail fast on keys that neither the learner nor the data takes
        resolver.split(point)
    if betas is not None:
        betas = check_betas(betas)
    keys = [dumps(p) for p in points]
    if len(set(keys)) != len(keys):
        raise ValueError("param_grid has duplicate points")
    identities, lambdas = _learners(resolver, points)  # each learner built once, here
    db = None if store is None else GridStore(store, _definition(resolver, points, betas, seed))
    if db is not None and resolver.data_kind == "fixed":
        resolver.fixed_hash = _fingerprint(resolver.data)
    try:
        context, parallel_jobs, cleanup = _parallel_context(backend, scheduler, n_jobs, resolver)
        budget = memory_budget()
        with cleanup, context:
            rows = {}
            if db is not None:
                rows = _check_resume(
                    db,
                    resolver,
                    points,
                    identities,
                    (backend or "loky", parallel_jobs),
                    budget,
                    recompute_changed,
                )
            # tasks: segments of chains along the regularization, grouped by data set, so that
            # a worker builds each data set and its pairwise products once and warm-starts each
            # fit from its neighbour; a segment is computed and committed whole, so a resumed
            # study recomputes exactly the segments an interruption cut (the table is in grid
            # order)
            todo = [
                seg
                for seg in _segments(resolver, points, lambdas)
                if any(i not in rows for i in seg)
            ]
            with tqdm(
                total=len(points),
                initial=len(points) - sum(len(seg) for seg in todo),
                desc="grid",
                unit="point",
                disable=not progress,
            ) as bar:
                tasks = (
                    delayed(_run_segment)(seg, resolver, [points[i] for i in seg], betas, budget)
                    for seg in todo
                )
                results = (
                    Parallel(n_jobs=parallel_jobs, return_as="generator_unordered")(tasks)
                    if todo
                    else []
                )
                with warnings.catch_warnings():
                    # after Ctrl-C joblib says it cancelled the tasks in flight: the interrupt
                    # message (what is kept, how to resume) already says all of it
                    warnings.filterwarnings(
                        "ignore", message=".*still being processed by the workers have been "
                        "cancelled", category=UserWarning,
                    )  # fmt: skip
                    try:
                        for segment, data_set, digest in results:
                            if db is None:
                                done = [(i, _to_storable(row)) for i, row, _ in segment]
                            else:
                                done = db.write_many(
                                    [
                                        (i, keys[i], _to_storable(row), data_set, learner)
                                        for i, row, learner in segment
                                    ],
                                    datasets={data_set: digest},
                                )
                            rows.update(done)
                            bar.update(len(done))
                    finally:
                        if hasattr(results, "close"):
                            results.close()  # cancel what is in flight inside the filter
    finally:
        if db is not None:
            db.close()
    return _table([rows[i] for i in range(len(points))], points, betas)


def _check_resume(
    db: GridStore,
    resolver: _Resolver,
    points: list[dict],
    identities: list[dict | None],
    parallel: tuple[str, int],
    budget: int | None,
    recompute_changed: bool,
) -> dict[int, dict]:
    """The store's finished rows that the study would compute alike.

    Every data set with finished points is built once and hashed; each finished point's stored
    learner is compared with ``identities``. What differs raises ``ValueError`` or, with
    ``recompute_changed``, is forgotten by the store (and left out of the rows returned) before
    anything is computed. ``parallel``: (backend, n_jobs) of the study. The data sets are built
    by tasks of the study's backend with Dask (the data may exist on the cluster only) and when
    several data sets are checked and points remain to compute (the workers start anyway);
    else in the main process, which spares starting workers to resume a finished study (and,
    when it computes the points itself, keeps them cached).
    """
    rows = db.finished()
    if rows:
        stored_points, stored_hashes = db.identities(), db.datasets()
        members: dict[str, list[int]] = {}
        for i in rows:
            members.setdefault(_store_key(resolver, points[i]), []).append(i)
        backend, n_jobs = parallel
        firsts = [points[group[0]] for group in members.values()]
        if resolver.data_kind == "fixed":
            found = [resolver.fixed_hash] * len(firsts)
        elif backend == "dask" or (n_jobs != 1 and len(firsts) > 1 and len(rows) < len(points)):
            found = Parallel(n_jobs=n_jobs)(
                delayed(_dataset_hash)(resolver, point, budget) for point in firsts
            )
        else:  # the main process caches them when it is the (only) worker
            cache = n_jobs == 1 or backend == "threading"
            found = [_dataset_hash(resolver, point, budget, cache) for point in firsts]
        new_hashes = dict(zip(members, found, strict=True))
        changes: dict[str, list[int]] = {}  # what differs -> the finished points it affects
        changed_sets = []
        for key, group in members.items():
            old = stored_hashes.get(key, "(none recorded)")
            if old != new_hashes[key] or any(stored_points[i][0] != key for i in group):
                changed_sets.append(key)
                text = (
                    f"data set {_describe_data_set(key)}: arrays of hash {_hash_text(old)} in "
                    f"the store, {_hash_text(new_hashes[key])} now"
                )
                changes[text] = list(group)
        for i in rows:
            for text in _learner_differences(stored_points[i][1], identities[i]):
                changes.setdefault(text, []).append(i)
        if changes:
            affected = sorted({i for group in changes.values() for i in group})
            if not recompute_changed:
                raise ValueError(
                    _changes_message(db, resolver, points, changes, affected, changed_sets)
                )
            db.forget(affected, changed_sets)
            for i in affected:
                del rows[i]
    db.describe(resolver.description())
    return rows


def _hash_text(digest) -> str:
    return "(none: the data factory failed)" if digest is None else str(digest)


def _value_text(value) -> str:
    return "(absent)" if value is _ABSENT else dumps(value)


_ABSENT = object()


def _learner_differences(old: dict | None, new: dict | None) -> list[str]:
    """What differs between a stored learner identity and a new one, one text per difference."""
    if dumps(old) == dumps(new):
        return []
    if old is None:
        return ["learner: could not be built in the stored run, can be now"]
    if new is None:
        return ["learner: was built in the stored run, cannot be now"]
    out = []
    for what in ("name", "class"):
        if old.get(what) != new.get(what):
            out.append(f"learner {what}: {old.get(what)!r} in the store, {new.get(what)!r} now")
    old_params, new_params = old.get("params", {}), new.get("params", {})
    for name in sorted(set(old_params) | set(new_params)):
        a, b = old_params.get(name, _ABSENT), new_params.get(name, _ABSENT)
        if a is _ABSENT or b is _ABSENT or dumps(a) != dumps(b):
            out.append(
                f"learner parameter {name!r} of {new.get('name', old.get('name'))!r}: "
                f"{_value_text(a)} in the store, {_value_text(b)} now"
            )
    return out


def _changes_message(db, resolver, points, changes, affected, changed_sets) -> str:
    """The error of a resume whose finished points were computed from other data or learners."""
    lines = []
    for text, group in list(changes.items())[:8]:
        count = f"{len(group)} finished point{'s' if len(group) > 1 else ''}"
        if not text.startswith("data set"):  # which points: the data set says it already
            example = ", ".join(f"{k}={v!r}" for k, v in points[group[0]].items())
            count += f", e.g. point {group[0]}: {example}"
        lines.append(f"  - {text} ({count})")
    if len(changes) > 8:
        lines.append(f"  - ... and {len(changes) - 8} more difference(s)")
    before = db.description or {}
    now = resolver.description()
    if changed_sets and before.get("data") not in (None, now["data"]):
        lines.append(f"  (the data factory was {before['data']}, it is {now['data']} now)")
    return (
        f"store {str(db.path)!r} holds finished points that this run would compute from other "
        "data or another learner:\n" + "\n".join(lines) + "\n"
        f"Pass recompute_changed=True (CLI: --recompute-changed) to recompute these "
        f"{len(affected)} point{'s' if len(affected) > 1 else ''} (with the warm-started segments "
        "they belong to) and keep the other finished points; or give a new store path (or delete "
        "this one) to start over."
    )


def _to_storable(row: dict) -> dict:
    """Tuples to lists and numpy scalars to Python: the row as JSON will hold it."""
    out = {}
    for k, v in row.items():
        v = _plain(v)
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def _table(rows: list[dict], points: list[dict], betas) -> pd.DataFrame:
    params = list(
        dict.fromkeys(k for p in points for k in p if k not in ("learner", "random_state"))
    )
    columns = [
        "learner",
        *params,
        "random_state",
        "estimator",
        "lambda",
        *RESULT_COLUMNS,
        "error",
        "warning",
        "seconds",
    ]
    if betas is not None:
        columns += [f"curve_{c}" for c in CURVE_VALUE_COLUMNS]
    records = []
    for row in rows:
        rec = {c: row.get(c, math.nan) for c in columns}
        for c in columns:
            if isinstance(rec[c], list):
                rec[c] = tuple(rec[c])
        records.append(rec)
    table = pd.DataFrame(records, columns=columns)
    table.attrs["betas"] = None if betas is None else tuple(float(b) for b in betas)
    return table


def curves_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The learning curves of a grid table in long form: one row per (point, beta).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`grid_study` with ``betas`` (its ``curve_*`` columns and
        ``table.attrs["betas"]``).

    Returns
    -------
    pandas.DataFrame
        Columns: the table's identifying columns (everything but results and curves), ``point``
        (the row's position), ``beta`` and :data:`CURVE_VALUE_COLUMNS`. Points whose curve failed
        have no rows; empty when every curve failed.

    Raises
    ------
    ValueError
        If ``table`` has no curves (``grid_study`` ran without ``betas``).
    """
    betas = table.attrs.get("betas")
    if betas is None or f"curve_{CURVE_VALUE_COLUMNS[0]}" not in table.columns:
        raise ValueError("table has no curves: run grid_study with betas=...")
    ident = [c for c in table.columns if not c.startswith("curve_") and c not in RESULT_COLUMNS]
    frames = []
    for pos, (_, row) in enumerate(table.iterrows()):
        if not isinstance(row[f"curve_{CURVE_VALUE_COLUMNS[0]}"], tuple):
            continue
        frame = pd.DataFrame({c: list(row[f"curve_{c}"]) for c in CURVE_VALUE_COLUMNS})
        frame.insert(0, "beta", list(betas))
        frame.insert(0, "point", pos)
        for k, c in enumerate(ident):
            frame.insert(k, c, [row[c]] * len(frame))  # a tuple value fills every row
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def grid_curves(table: pd.DataFrame) -> list[LearningCurve | None]:
    """The learning curve of each row of a grid table, for the plots of :mod:`backdoor_curves.viz`.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`grid_study` with ``betas`` (its ``curve_*`` columns and
        ``table.attrs["betas"]``).

    Returns
    -------
    list of LearningCurve or None
        One entry per row, in row order: None where the point or its curve failed. Each curve's
        ``learner`` is the row's ``learner`` (its display name) and its ``regularization`` the
        row's ``lambda``; ``params`` and ``events`` are empty.

    Raises
    ------
    ValueError
        If ``table`` has no curves (``grid_study`` ran without ``betas``).
    """
    betas = table.attrs.get("betas")
    if betas is None or f"curve_{CURVE_VALUE_COLUMNS[0]}" not in table.columns:
        raise ValueError("table has no curves: run grid_study with betas=...")
    curves = []
    for _, row in table.iterrows():
        if not isinstance(row[f"curve_{CURVE_VALUE_COLUMNS[0]}"], tuple):
            curves.append(None)
            continue
        values = {c: np.asarray(row[f"curve_{c}"], dtype=float) for c in CURVE_VALUE_COLUMNS}
        curves.append(
            LearningCurve(np.asarray(betas, dtype=float), values, row["learner"], row["lambda"])
        )
    return curves
