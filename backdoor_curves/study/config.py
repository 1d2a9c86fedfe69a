"""Grid-study configuration files (TOML): parsing, validation and the data they name.

A configuration names the data, the trigger, the learners and the grids::

    [study]                      # optional
    title = "MNIST 7 vs 1: regularization grid"
    betas = 21                   # optional: also the whole curve (n: default_betas(n), or a list)

    [data]
    dataset = "mnist"            # default; or "mnist-full", "cifar10", "imagenette" (torch extra)
    digits = [7, 1]
    trigger = "badnets"          # a name of attacks.TRIGGERS: badnets, invisible, blend, ...
    size = 3                     # the trigger's keys: attacks.trigger_params("badnets")
    fraction = 0.1
    random_state = 0             # poisoning seed (default 0)

    [grid]                       # optional: data parameters swept for every learner
    fraction = [0.01, 0.1, 0.2]
    digits = [[7, 1], [3, 0]]    # class pairs (a list of pairs)

    [[learner]]
    kind = "logistic"            # logistic | ridge | linear_svm | rbf_svm
    C = { geomspace = [1e-4, 100, 10] }

    [[learner]]
    kind = "rbf_svm"
    C = { geomspace = [0.1, 100, 10] }
    gamma = [5e-4, 5e-3]

A learner parameter or a ``[grid]`` entry is a number (or string), a list of them, or a table
``{ geomspace | linspace | logspace = [start, stop, num] }`` (numpy's functions).

A configuration is validated completely when it is read, before any point runs: types, ranges
and combinations. Every learner parameter value goes through the learner's own
``validate_params()`` (as ``fit`` runs it); the ``[data]`` table, combined with every
combination of the ``[grid]`` values, goes through
:func:`~backdoor_curves.study.loaders.check_data_params` (the keys the dataset's loader takes,
``fraction`` in (0, 1) and large enough to poison a point, two different ``digits``, a trigger
with its own parameters that fits the image, ...), without loading any data. Every error is a
``ValueError`` naming the key: ``config key 'learner[0].C': C must be a real number in (0, inf),
got -1 ...``, ``config key 'data.fraction': ...``, ``config key 'grid.fraction': ... (with
size=2)``.

``dataset`` names a data loader of :mod:`backdoor_curves.study.loaders`, which gets, as keyword
arguments, the whole ``[data]`` table with the point's swept values and ``random_state``.
``"mnist"`` (built in) uses the embedded MNIST digits (:func:`backdoor_curves.load_mnist_pair` and
:func:`backdoor_curves.poison`); the ``extractors`` package registers ``"mnist-full"``,
``"cifar10"`` and ``"imagenette"`` (its ``load_backdoor_data``, which needs the ``torch`` extra).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._config import check_known_keys, load_toml
from .._config import config_error as _fail
from .._validation import check_seed
from ..attacks.triggers import trigger_params
from ..data import BackdoorData
from ..learners import LEARNER_KINDS
from ..learners.base import BaseLearner
from ..measures.results import default_betas
from .loaders import DataParameterError, check_data_params, data_keys, get_data_loader

__all__ = ["GridConfig", "load_config", "parse_config", "make_data"]

_STUDY_KEYS = {"title", "betas"}
_SPACES = {"geomspace": np.geomspace, "linspace": np.linspace, "logspace": np.logspace}


@dataclass(frozen=True)
class GridConfig:
    """A validated grid-study configuration.

    Attributes
    ----------
    learners : dict of str -> BaseLearner
        One learner per ``[[learner]]`` entry, by name.
    param_grid : list of dict
        One grid per learner: ``learner`` (its name), its parameters, and the ``[grid]`` data
        parameters — as :func:`backdoor_curves.study.grid.grid_study` takes it.
    data : dict
        The ``[data]`` table with defaults filled in (``dataset``; ``random_state`` excluded).
    random_state : int
        ``[data] random_state`` (the poisoning seed of points that do not sweep it).
    betas : ndarray or None
        Betas of the per-point curves (None: no curves).
    title : str
        ``[study] title`` (default "Grid study").
    source : str
        Where the configuration was read from (the file path; empty when parsed from a dict).
        Not compared by ``==``.
    """

    learners: dict[str, BaseLearner]
    param_grid: list[dict]
    data: dict
    random_state: int = 0
    betas: np.ndarray | None = None
    title: str = "Grid study"
    source: str = field(default="", compare=False)

    def data_factory(self):
        """The picklable data factory ``make_data`` with this config's ``[data]`` table bound.

        Returns
        -------
        functools.partial
            ``make_data(**data)``; call it with the swept data parameters and ``random_state``
            to get a :class:`~backdoor_curves.data.BackdoorData`.
        """
        return functools.partial(make_data, **self.data)

    def run(self, **kwargs):
        """Run :func:`backdoor_curves.study.grid.grid_study` on this configuration.

        Parameters
        ----------
        **kwargs
            Further keyword arguments of ``grid_study``: ``n_jobs``, ``backend``, ``scheduler``,
            ``store``, ``progress`` (the learners, data, grid, betas and seed come from the
            configuration).

        Returns
        -------
        pandas.DataFrame
            The grid table, one row per point (see ``grid_study``).

        Raises
        ------
        ValueError
            Before any point runs, if no data loader has the dataset's name.
        ImportError
            Before any point runs, if the dataset's loader cannot be imported (for the image data
            sets: ``extractors.load_backdoor_data``, the ``torch`` extra).
        """
        from .grid import grid_study

        get_data_loader(self.data["dataset"])  # fail fast, before any point runs
        return grid_study(
            self.learners,
            self.data_factory(),
            self.param_grid,
            betas=self.betas,
            random_state=self.random_state,
            **kwargs,
        )


# ---------------------------------------------------------------------------- the data
def make_data(*, random_state: int = 0, dataset: str = "mnist", **table) -> BackdoorData:
    """The poisoned data set a ``[data]`` table describes.

    Parameters
    ----------
    random_state : int, default=0
        The poisoning seed (which training points are poisoned; the BadNets patch).
    dataset : str, default="mnist"
        A name of :func:`backdoor_curves.study.loaders.data_loader_names`, whose loader is
        called as ``loader(dataset=..., random_state=..., **table)``. ``"mnist"``: the embedded
        MNIST digits (:func:`~backdoor_curves.study.loaders.make_mnist_data`); the image data
        sets: ``extractors.load_backdoor_data`` (the ``torch`` extra).
    **table
        The other ``[data]`` keys, those the dataset's loader takes (for ``"mnist"``, the keys
        of :func:`~backdoor_curves.study.loaders.make_mnist_data` and their defaults).

    Returns
    -------
    BackdoorData
        The poisoned data set.

    Raises
    ------
    ValueError
        For an unknown dataset name, an unknown ``[data]`` key of ``"mnist"``, or a value the
        loader or :func:`~backdoor_curves.attacks.poisoning.poison` rejects.
    ImportError
        If the dataset's loader cannot be imported (for the image data sets:
        ``extractors.load_backdoor_data``, the ``torch`` extra).
    """
    return get_data_loader(dataset)(dataset=dataset, random_state=random_state, **table)


# ---------------------------------------------------------------------------- parsing
def load_config(path) -> GridConfig:
    """Read and validate a TOML configuration file (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        The ``.toml`` file.

    Returns
    -------
    GridConfig
        The validated configuration; its ``source`` is ``str(path)``.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like.
    OSError
        If the file cannot be read.
    ValueError
        If it is not valid TOML, or for any error of :func:`parse_config`.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path must be a str or path-like (a .toml file), got {type(path).__name__}"
        )
    return load_toml(path, parse_config)


def _check_table(raw, key: str) -> dict:
    if not isinstance(raw, Mapping):
        raise _fail(key, f"must be a table, got {type(raw).__name__}")
    return dict(raw)


def _scalar(value, key: str):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(key, f"must be a number or a string, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(key, f"must be finite, got {value!r}")
    return value


def _values(value, key: str) -> list:
    """A grid entry: scalar, non-empty list, or {geomspace|linspace|logspace = [a, b, n]}."""
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in _SPACES:
            raise _fail(
                key, f"a table value must be one of {{{', '.join(_SPACES)} = [start, stop, num]}}"
            )
        ((name, spec),) = value.items()
        if (
            not isinstance(spec, list)
            or len(spec) != 3
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in spec)
            or not isinstance(spec[2], int)
            or spec[2] < 1
        ):
            raise _fail(
                key, f"{name} needs [start, stop, num] with num a positive int, got {spec!r}"
            )
        try:
            values = _SPACES[name](spec[0], spec[1], spec[2])
        except ValueError as exc:
            raise _fail(key, f"{name}{tuple(spec)}: {exc}") from exc
        return [float(v) for v in values]
    if isinstance(value, list):
        if not value:
            raise _fail(key, "is an empty grid: give at least one value")
        return [_scalar(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return [_scalar(value, key)]


def _learner(entry, index: int) -> tuple[str, BaseLearner, dict]:
    where = f"learner[{index}]"
    entry = _check_table(entry, where)
    kind = entry.pop("kind", None)
    if kind not in LEARNER_KINDS:
        raise _fail(f"{where}.kind", f"must be one of {sorted(LEARNER_KINDS)}, got {kind!r}")
    cls = LEARNER_KINDS[kind].cls
    name = entry.pop("name", LEARNER_KINDS[kind].label)
    if not isinstance(name, str) or not name:
        raise _fail(f"{where}.name", f"must be a non-empty string, got {name!r}")
    allowed = set(cls().get_params()) - {"warm_start"}
    grid = {}
    for key, value in entry.items():
        if key not in allowed:
            raise _fail(
                f"{where}.{key}", f"unknown parameter of {kind}; allowed: {sorted(allowed)}"
            )
        values = _values(value, f"{where}.{key}")
        for v in values:  # the learner's own parameter validation, as fit() runs it
            try:
                cls(**{key: v}).validate_params()
            except (TypeError, ValueError) as exc:
                raise _fail(f"{where}.{key}", str(exc)) from None
        grid[key] = values
    return name, cls(), grid


def parse_config(raw: Mapping, *, source: str = "") -> GridConfig:
    """Validate a parsed TOML document (a dict) into a :class:`GridConfig`.

    Parameters
    ----------
    raw : Mapping
        The document: tables ``study`` and ``data`` (optional), ``grid`` (optional) and the
        array of tables ``learner``, as in the module docstring.
    source : str, default=""
        Where the document came from, kept as ``GridConfig.source``.

    Returns
    -------
    GridConfig
        The validated configuration, one grid per learner.

    Raises
    ------
    ValueError
        Naming the key: unknown sections or keys, wrong types, empty grids, unknown learner
        kinds or parameters, a parameter value the learner's ``validate_params()`` rejects,
        duplicate learner names, an unknown dataset, a ``[grid]`` key that is not a data key,
        or a data value (alone or combined with the ``[grid]`` values) that
        :func:`~backdoor_curves.study.loaders.check_data_params` rejects.
    """
    raw = _check_table(raw, "<root>")
    unknown = sorted(set(raw) - {"study", "data", "grid", "learner"})
    if unknown:
        raise _fail(unknown[0], "unknown section; allowed: study, data, grid, learner")
    study = _check_table(raw.get("study", {}), "study")
    check_known_keys(study, _STUDY_KEYS, "study")
    title = study.get("title", "Grid study")
    if not isinstance(title, str):
        raise _fail("study.title", f"must be a string, got {title!r}")
    betas = _betas(study.get("betas"))

    data = _check_table(raw.get("data", {}), "data")
    data.setdefault("dataset", "mnist")
    dataset = data["dataset"]
    if not isinstance(dataset, str):
        raise _fail("data.dataset", f"must be a string, got {dataset!r}")
    try:
        allowed = data_keys(dataset)
    except ValueError as exc:  # not a known data set
        raise _fail("data.dataset", str(exc).removeprefix("[data] ")) from None
    except ImportError:  # its loader cannot be imported: GridConfig.run() says so first
        allowed = None
    unknown = [key for key in data if allowed is not None and key not in allowed]
    if unknown:
        message = f"unknown key for dataset {dataset!r}; allowed: {sorted(allowed)}"
        raise _fail(f"data.{unknown[0]}", message)
    if dataset == "mnist":
        _check_mnist(data)
    try:
        seed = check_seed(data.pop("random_state", 0), "data.random_state")
    except (TypeError, ValueError) as exc:  # a config's errors are all ValueErrors naming the key
        raise _fail("data.random_state", str(exc).removeprefix("data.random_state ")) from None

    data_grid = {}
    for key, value in _check_table(raw.get("grid", {}), "grid").items():
        if key == "dataset" or (allowed is not None and key not in allowed):
            raise _fail(f"grid.{key}", "not a data parameter that can be swept")
        if key == "digits" and dataset == "mnist":  # class pairs: a list of pairs
            if not isinstance(value, list) or not value:
                raise _fail("grid.digits", f"must be a non-empty list of pairs, got {value!r}")
            values = value
        else:
            values = _values(value, f"grid.{key}")
        if dataset == "mnist":
            for i, v in enumerate(values):
                _check_mnist({key: v}, f"grid.{key}[{i}]")
        data_grid[key] = values
    _check_data_values(data, data_grid, seed)

    entries = raw.get("learner")
    if entries is None:
        raise _fail("learner", "missing: give at least one [[learner]] table")
    if not isinstance(entries, list) or not entries:
        raise _fail("learner", "must be a non-empty array of tables ([[learner]])")
    learners, grids = {}, []
    for i, entry in enumerate(entries):
        name, learner, grid = _learner(entry, i)
        if name in learners:
            raise _fail(
                f"learner[{i}].name", f"duplicate learner name {name!r}; set distinct names"
            )
        learners[name] = learner
        grids.append({"learner": [name], **grid, **data_grid})
    return GridConfig(learners, grids, data, seed, betas, title, source)


def _betas(value):
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 2:
            raise _fail("study.betas", f"an int must be >= 2 (number of betas), got {value}")
        return default_betas(value)
    if isinstance(value, list) and value:
        if any(
            isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1 for v in value
        ):
            raise _fail("study.betas", f"must hold numbers in [0, 1], got {value!r}")
        return np.asarray(value, dtype=float)
    raise _fail("study.betas", f"must be an int >= 2 or a non-empty list of numbers, got {value!r}")


_MNIST_TYPES: dict[str, Any] = {
    "digits": list,
    "split_seed": int,
    "test_size": float,
    "n_train": int,
    "n_test": int,
    "trigger": str,
    "fraction": float,
    "random_state": int,
    # the triggers' parameters (size, intensity, alpha, ...), read from the registry
    **trigger_params(),
}


def _check_mnist(table: dict, where: str | None = None) -> None:
    """Types of the MNIST ``[data]`` keys (values: :func:`_check_data_values`)."""
    for key, value in table.items():
        name = where or f"data.{key}"
        if key == "dataset":
            continue
        expected = _MNIST_TYPES[key]
        if expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected is bool:
            ok = isinstance(value, bool)
        elif expected is list:
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            )
        else:
            ok = isinstance(value, str)
        if not ok:
            what = {
                list: "a pair of ints",
                int: "an int",
                float: "a number",
                bool: "true or false",
                str: "a string",
            }[expected]
            raise _fail(name, f"must be {what}, got {value!r}")


#: Data-grid combinations checked at most (each check takes microseconds; none is loaded).
_MAX_DATA_CHECKS = 100_000


def _check_data_values(data: dict, data_grid: dict, seed: int) -> None:
    """Every ``[data]`` table the study will hand its loader, through the loader's checks.

    :func:`~backdoor_curves.study.loaders.check_data_params` runs on ``[data]`` combined with
    every combination of the ``[grid]`` values (the poisoning seed included), so a value that
    fails only with another (``fraction`` too small for ``n_train``, ``size`` with an invisible
    trigger) is found before any point runs. The error names the ``[grid]`` key when the value
    came from the grid (and the combination), else the ``[data]`` key.
    """
    dataset = data["dataset"]
    keys = list(data_grid)
    combos = itertools.product(*(data_grid[k] for k in keys))
    for combo in itertools.islice(combos, _MAX_DATA_CHECKS):
        point = dict(zip(keys, combo, strict=True))
        table = {**data, "random_state": seed, **point}
        try:
            check_data_params(dataset, table)
        except DataParameterError as exc:
            if exc.key in point:
                others = ", ".join(f"{k}={v!r}" for k, v in point.items() if k != exc.key)
                where = f" (with {others})" if others else ""
                raise _fail(f"grid.{exc.key}", f"{exc}{where}") from None
            raise _fail(f"data.{exc.key}", str(exc)) from None
