"""Reading a grid study back from disk: its store, its output directory or its table CSV.

:func:`read_study` returns the table :func:`backdoor_curves.study.grid.grid_study` returned — same
columns, dtypes, values and ``attrs["betas"]`` — so that
:func:`~backdoor_curves.study.robust.robust_region`, the heat maps and
:func:`~backdoor_curves.study.grid.grid_curves` take it as they take a fresh table.

Sources, from the most to the least complete:

- the SQLite store (:class:`backdoor_curves.study.store.GridStore`): lossless. It holds every
  finished row as exact JSON and the study definition (the grid's points, hence the parameter
  columns, and the curve's betas). It is opened read-only
  (:meth:`~backdoor_curves.study.store.GridStore.open_readonly`, which reads stores of every
  schema version, those of older toolkit versions included), so a study still running may be
  read: the unfinished points are then missing (the table's index keeps the position of each
  point in the grid, and a warning says how many are missing);
- an output directory of ``backdoor-curves grid`` (:mod:`backdoor_curves.grid_run`): its store
  ``study.sqlite``, or else its ``table.csv`` and ``curves.csv``;
- a table CSV as ``backdoor-curves grid`` writes it (``DataFrame.to_csv(index=False)`` without
  the ``curve_*`` columns) and, optionally, the long curves CSV
  (:func:`~backdoor_curves.study.grid.curves_frame`) that restores the ``curve_*`` tuples and the
  betas. Floats are written by pandas with the shortest repr that round-trips and read back with
  :class:`float`, so the numbers are exact. Each cell is parsed as grid_study's rows hold it:
  ``learner``, ``estimator``, ``error`` and ``warning`` stay text ("" included), the result
  columns are floats (an empty cell is NaN), and a parameter cell is an int, a float, a bool,
  a tuple (``"(7, 1)"``) or else text; the DataFrame is then built from those rows as
  grid_study builds it, so the dtypes agree. What a CSV cannot tell apart: a parameter None
  from NaN, a text parameter that reads as a number ("1") from the number, and — when every
  curve failed, so ``curves.csv`` is empty — the betas.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .grid import _table
from .point import CURVE_VALUE_COLUMNS, RESULT_COLUMNS
from .store import GridStore

__all__ = ["read_study", "STORE_FILE", "TABLE_FILE", "CURVES_FILE"]

#: File names in an output directory of ``backdoor-curves grid`` (see
#: :mod:`backdoor_curves.grid_run`, which sits above this package and writes them).
STORE_FILE = "study.sqlite"
TABLE_FILE = "table.csv"
CURVES_FILE = "curves.csv"

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Columns of a grid table that hold text ("" when empty), and that hold floats (NaN when empty).
_TEXT = frozenset({"learner", "estimator", "error", "warning"})
_FLOAT = frozenset(RESULT_COLUMNS) | {"lambda", "seconds"}
_INT = re.compile(r"[+-]?\d+")


def read_study(path, *, curves=None) -> pd.DataFrame:
    """The grid table of a study on disk, as grid_study returned it.

    Parameters
    ----------
    path : str or path-like
        A grid store (the SQLite file of ``grid_study(..., store=path)``), an output directory
        of ``backdoor-curves grid`` (its ``study.sqlite`` is read, or else its ``table.csv``
        with ``curves.csv``), or a table CSV.
    curves : str or path-like, optional
        With a table CSV: the long curves CSV (one row per point and beta) that restores the
        ``curve_*`` columns and ``attrs["betas"]``. Default: ``curves.csv`` next to a table
        CSV named ``table.csv``, if there is one.

    Returns
    -------
    pandas.DataFrame
        One row per (finished) point, in grid order, with the columns, dtypes and values of
        grid_study's table and ``attrs["betas"]`` (None without curves). From a store of an
        unfinished study, only the finished points, indexed by their position in the grid.

    Raises
    ------
    TypeError
        If ``path`` or ``curves`` is not a str or path-like.
    FileNotFoundError
        If ``path`` or ``curves`` does not exist.
    ValueError
        If ``path`` is neither a grid store, nor a directory with ``study.sqlite`` or
        ``table.csv``, nor a CSV with a ``learner`` column; the store was written by a newer
        version of the toolkit (a schema this one does not know); or the curves CSV does not
        fit the table.

    Warns
    -----
    UserWarning
        When the store holds fewer points than its grid (the study is unfinished), or the
        betas of a table CSV's curves cannot be recovered (every curve failed).

    See Also
    --------
    backdoor_curves.study.robust.robust_region : Takes the table read.

    Examples
    --------
    >>> table = read_study("results/rbf_heatmap")  # doctest: +SKIP
    >>> region = robust_region(table, seed_share=0.8)  # doctest: +SKIP
    """
    path = _check_path(path, "path")
    if curves is not None:
        curves = _check_path(curves, "curves")
    if path.is_dir():
        if _is_sqlite(path / STORE_FILE):
            return _read_store(path / STORE_FILE)
        if (path / TABLE_FILE).is_file():
            default = path / CURVES_FILE
            return _read_csv(path / TABLE_FILE, curves or (default if default.is_file() else None))
        raise ValueError(
            f"path {str(path)!r} is a directory without {STORE_FILE} or {TABLE_FILE}: give the "
            "output directory of `backdoor-curves grid`, a grid store or a table CSV"
        )
    if _is_sqlite(path):
        return _read_store(path)
    if curves is None and path.name == TABLE_FILE and (path.parent / CURVES_FILE).is_file():
        curves = path.parent / CURVES_FILE
    return _read_csv(path, curves)


def _check_path(path, name: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name} must be a str or path-like, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name} {str(path)!r} does not exist")
    return path


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


# ---------------------------------------------------------------------------- the store
def _read_store(path: Path) -> pd.DataFrame:
    """The table of a grid store, opened read-only (a running study may be read)."""
    with GridStore.open_readonly(path) as db:  # ValueError: not a grid store, or too new
        try:
            definition, rows = db.definition, db.finished()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"path {str(path)!r} is not a readable grid store: {exc}") from exc
    points, betas = definition["points"], definition.get("betas")
    order = sorted(rows)
    table = _table([rows[i] for i in order], points, betas)
    if len(order) < len(points):
        table.index = pd.Index(order, dtype="int64")
        warnings.warn(
            f"store {str(path)!r} holds {len(order)} of the {len(points)} points of its grid "
            "(the study is unfinished); the table has the finished points, indexed by their "
            "position in the grid",
            UserWarning,
            stacklevel=3,
        )
    return table


# ---------------------------------------------------------------------------- CSV files
def _read_rows(path: Path, name: str) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} {str(path)!r} is not a text CSV file: {exc}") from exc
    lines = [line for line in lines if line]
    if not lines:
        return [], []
    header, body = lines[0], lines[1:]
    bad = [k for k, line in enumerate(body, start=2) if len(line) != len(header)]
    if bad:
        raise ValueError(f"{name} {str(path)!r}: line {bad[0]} has not {len(header)} fields")
    return header, body


def _parameter(text: str):
    """A parameter cell as grid_study's rows hold it: int, float, bool, tuple or text."""
    if text == "":
        return np.nan
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        pass
    if text in ("True", "False"):
        return text == "True"
    if text[:1] in "([" and text[-1:] in ")]":
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        return tuple(value) if isinstance(value, list | tuple) else value
    return text


def _cell(column: str, text: str):
    if column in _TEXT:
        return text
    if column in _FLOAT:
        return np.nan if text == "" else float(text)
    return _parameter(text)


def _read_csv(path: Path, curves: Path | None) -> pd.DataFrame:
    header, body = _read_rows(path, "path")
    if "learner" not in header:
        raise ValueError(
            f"path {str(path)!r} is neither a grid store nor a grid table CSV (no 'learner' "
            "column in its first line)"
        )
    records = [{c: _cell(c, text) for c, text in zip(header, line, strict=True)} for line in body]
    columns = list(header)
    betas = None
    if curves is not None:
        betas, values = _read_curves(curves, len(records))
        columns += [f"curve_{c}" for c in CURVE_VALUE_COLUMNS]
        for k, record in enumerate(records):
            record.update(values.get(k, dict.fromkeys(columns[len(header) :])))
    table = pd.DataFrame(records, columns=columns)
    table.attrs["betas"] = betas
    return table


def _read_curves(path: Path, n_points: int) -> tuple[tuple | None, dict]:
    """(betas, point position -> {curve column: tuple}) of a long curves CSV."""
    header, body = _read_rows(path, "curves")
    if not body:
        warnings.warn(
            f"curves {str(path)!r} has no rows (every curve failed): the betas are unknown, "
            "attrs['betas'] is None",
            UserWarning,
            stacklevel=4,
        )
        return None, {}
    needed = ["point", "beta", *CURVE_VALUE_COLUMNS]
    missing = [c for c in needed if c not in header]
    if missing:
        raise ValueError(f"curves {str(path)!r} lacks the column(s) {missing}")
    at = {c: header.index(c) for c in needed}
    per_point: dict[int, dict[str, list]] = {}
    for line in body:
        point = int(line[at["point"]])
        if not 0 <= point < n_points:
            raise ValueError(
                f"curves {str(path)!r} has a point {point} outside the table's {n_points} rows"
            )
        entry = per_point.setdefault(point, {c: [] for c in ("beta", *CURVE_VALUE_COLUMNS)})
        for c in ("beta", *CURVE_VALUE_COLUMNS):
            text = line[at[c]]
            entry[c].append(np.nan if text == "" else float(text))
    betas = tuple(next(iter(per_point.values()))["beta"])
    values = {}
    for point, entry in per_point.items():
        if tuple(entry["beta"]) != betas:
            raise ValueError(f"curves {str(path)!r}: point {point} has other betas than the first")
        values[point] = {f"curve_{c}": tuple(entry[c]) for c in CURVE_VALUE_COLUMNS}
    return betas, values
