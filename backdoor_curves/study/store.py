"""A resumable on-disk store for grid studies: one SQLite file, one committed row per point.

Finished grid points are written in transactions as soon as they complete (SQLite in WAL mode
with ``synchronous=FULL``), so a run stopped at any moment — SIGKILL included — keeps every point
it finished and no half-written one. Re-opening the store with the same study skips the finished
points.

What identifies a study, and what identifies each of its results:

- ``meta``: the study *definition* (every point's parameters and seed, the kind of data — a fixed
  data set or a factory —, the curve's betas, the toolkit version), the store's ``schema``
  version and a free-form ``description`` of the learners and data (names, for messages only).
  Opening the store for another definition raises ``ValueError`` instead of mixing two studies.
- ``datasets``: one row per data set (``key``: the data parameters and the seed, as canonical
  JSON, or ``"fixed"``), with ``hash``, the SHA-256 of the arrays the data factory produced
  (NULL when it failed). Names do not identify data: two lambdas, or a factory whose body was
  edited between two runs, produce other arrays, hence another hash.
- ``points``: one row per finished point: its result ``row``, the key of its ``dataset``, and
  ``learner``, the learner it built in full (name, class and every parameter of
  ``get_params(deep=False)``, defaults included, which a ``repr`` hides).

A segment's rows and its data set's hash are committed in one transaction, so every row in the
store is of arrays with the recorded hash. Writing rows of a data set whose recorded hash differs
raises ``ValueError`` (a factory that is not deterministic given its parameters and seed, or one
edited during the run). Comparing a resumed study with the store is the grid's part
(:func:`backdoor_curves.study.grid.grid_study`); the store answers what it recorded
(:meth:`GridStore.datasets`, :meth:`GridStore.identities`) and forgets what changed
(:meth:`GridStore.forget`).

Rows are kept as JSON (floats written with ``repr``, NaN allowed), which round-trips every float
exactly: a table read back from the store equals the one computed.

Schema versions (``meta.schema``; :data:`SCHEMA`): 1 (no ``schema`` key) had only ``meta`` and
``points(point, key, row)`` and identified data factories and learners by their names; 2 adds
``datasets`` and the ``dataset`` and ``learner`` columns. Stores of schema 1 can still be read
(:meth:`GridStore.open_readonly`, :func:`backdoor_curves.study.results_io.read_study`) but not
resumed: their rows cannot be checked against the data and learners of a new run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

__all__ = ["GridStore", "SCHEMA", "dumps"]

#: The schema version this module writes (``meta.schema``); 1 is read but not resumed.
SCHEMA = 2

_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE datasets (
    key TEXT PRIMARY KEY,
    hash TEXT,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE points (
    point INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    row TEXT NOT NULL,
    dataset TEXT,
    learner TEXT,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


def dumps(value) -> str:
    """Canonical JSON (sorted keys, NaN allowed) used for keys, definitions and rows.

    Parameters
    ----------
    value : object
        JSON-serializable (dicts, lists, tuples, str, numbers, bool, None; NaN allowed).

    Returns
    -------
    str
        Compact JSON with sorted keys: equal values give equal texts.
    """
    return json.dumps(value, sort_keys=True, allow_nan=True, separators=(",", ":"))


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _count(db: sqlite3.Connection, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    found = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if found is None else found[0]


class GridStore:
    """The SQLite store of one grid study (see the module docstring for its tables).

    Parameters
    ----------
    path : str or path-like
        The store file (created with its parent directory if missing).
    definition : dict
        JSON-serializable description of the study (every point's parameters and seed, the kind
        of data, the curve's betas, the toolkit version). A new store records it; an existing
        store must hold the same one, else ``ValueError``.

    Attributes
    ----------
    path : pathlib.Path
        The store file.
    schema : int
        The store's schema version (:data:`SCHEMA` for a store opened to write).
    readonly : bool
        True for a store opened with :meth:`open_readonly`.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like.
    ValueError
        If ``path`` is a directory or a file that is not a grid store (another SQLite database,
        another file), the store was written with another schema version (an older store cannot
        be resumed: the message says how to read it and start anew), or it holds a different
        study (the message names the keys of ``definition`` that differ).

    Notes
    -----
    Only the process that runs the study writes to the store (workers return their rows to it),
    so there is a single writer; readers may open the file concurrently (WAL mode,
    :meth:`open_readonly`).
    """

    def __init__(self, path, definition: dict):
        self.path = _check_path(path, "store")
        if self.path.exists() and self.path.is_dir():
            raise ValueError(f"store {str(self.path)!r} is a directory; give a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.readonly = False
        self._db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._open_for_writing(definition)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):  # e.g. locked by another writer
                raise
            raise ValueError(f"store {str(self.path)!r} is not a grid store: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open_readonly(cls, path) -> GridStore:
        """Open an existing store to read it, without checking or changing its study.

        The file is opened with SQLite's read-only mode, so a study that is still running may be
        read (its finished points), and stores of every known schema version (1 and
        :data:`SCHEMA`) are accepted.

        Parameters
        ----------
        path : str or path-like
            The store file.

        Returns
        -------
        GridStore
            A store whose reading methods work (:attr:`definition`, :meth:`finished`,
            :meth:`datasets`, :meth:`identities`); writing raises ``ValueError``.

        Raises
        ------
        TypeError
            If ``path`` is not a str or path-like.
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If ``path`` is not a grid store (not SQLite, or no study definition), or was
            written by a newer version of the toolkit (a schema above :data:`SCHEMA`).
        """
        path = _check_path(path, "path")
        if not path.exists():
            raise FileNotFoundError(f"path {str(path)!r} does not exist")
        self = cls.__new__(cls)
        self.path, self.readonly = path, True
        self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if "meta" not in _tables(self._db) or _meta(self._db, "definition") is None:
                raise ValueError(
                    f"path {str(path)!r} is not a grid store: it records no study definition"
                )
            self.schema = self._schema()
            if self.schema > SCHEMA:
                raise ValueError(self._newer_message())
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ValueError(f"path {str(path)!r} is not a grid store: {exc}") from exc
        except BaseException:
            self._db.close()
            raise
        return self

    # ------------------------------------------------------------------ opening
    def _schema(self) -> int:
        text = _meta(self._db, "schema")
        return 1 if text is None else int(text)

    def _newer_message(self) -> str:
        return (
            f"store {str(self.path)!r} was written by a newer version of backdoor-curves (store "
            f"schema {self.schema}; this version reads up to {SCHEMA}): upgrade backdoor-curves"
        )

    def _open_for_writing(self, definition: dict) -> None:
        text = dumps(definition)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # one writer sets up a new store
            tables = _tables(self._db)
            if "meta" not in tables or _meta(self._db, "definition") is None:
                leftover = tables & {"meta", "points", "datasets"}
                if tables - leftover or any(_count(self._db, t) for t in leftover):
                    raise ValueError(
                        f"store {str(self.path)!r} is an SQLite database but not a grid store "
                        f"(it has the tables {sorted(tables)}); give another path"
                    )
                for table in leftover:  # empty tables of a creation that did not finish
                    self._db.execute(f"DROP TABLE {table}")
                for statement in _TABLES.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("definition", text),
                        ("version", str(definition.get("version", ""))),
                        ("schema", str(SCHEMA)),
                    ],
                )
                self.schema = SCHEMA
                return
        self.schema = self._schema()
        if self.schema > SCHEMA:
            raise ValueError(self._newer_message())
        if self.schema < SCHEMA:
            raise ValueError(
                f"store {str(self.path)!r} was written by an older version of backdoor-curves "
                f"(store schema {self.schema}) that identified data factories and learners by "
                "their names only, so its rows cannot be checked against the data and learners "
                "of this run and it is not resumed. Its table can still be read with "
                "backdoor_curves.study.read_study(path); to run the study, give a new store path "
                "(or delete this file to start over)"
            )
        found = _meta(self._db, "definition")
        if found != text:
            old = json.loads(found)
            diff = sorted(
                k
                for k in set(old) | set(definition)
                if dumps(old.get(k)) != dumps(definition.get(k))
            )
            raise ValueError(
                f"store {str(self.path)!r} holds a different study (differs in: "
                f"{', '.join(diff)}); use a new store path or delete this one to start over"
            )

    # ------------------------------------------------------------------ reading
    @property
    def definition(self) -> dict:
        """The study definition recorded in the store."""
        return json.loads(_meta(self._db, "definition"))

    @property
    def description(self) -> dict | None:
        """The description of the learners and data of the last run (names; None if unset)."""
        text = _meta(self._db, "description")
        return None if text is None else json.loads(text)

    def finished(self) -> dict[int, dict]:
        """The finished points: point index -> its row (a dict).

        Returns
        -------
        dict of int -> dict
            Position of the point in the study's grid -> its row as written by
            :meth:`write_many`, in point order.
        """
        rows = self._db.execute("SELECT point, row FROM points ORDER BY point")
        return {point: json.loads(row) for point, row in rows}

    def identities(self) -> dict[int, tuple[str | None, dict | None]]:
        """What each finished point was computed from: its data set's key and its learner.

        Returns
        -------
        dict of int -> (str or None, dict or None)
            Position of the point -> ``(dataset, learner)``: the key of its data set in
            :meth:`datasets` and the learner it built (name, class and every parameter; None
            when the learner could not be built). Both None in a store of schema 1.
        """
        if self.schema < 2:
            return {point: (None, None) for point in self.finished()}
        rows = self._db.execute("SELECT point, dataset, learner FROM points ORDER BY point")
        return {
            point: (dataset, None if learner is None else json.loads(learner))
            for point, dataset, learner in rows
        }

    def datasets(self) -> dict[str, str | None]:
        """The data sets of the finished points and the hashes of their arrays.

        Returns
        -------
        dict of str -> str or None
            Data set key (canonical JSON of the data parameters and the seed, or ``"fixed"``)
            -> ``"sha256:<hex>"`` of its arrays, None when the data factory failed for it.
            Empty in a store of schema 1.
        """
        if self.schema < 2:
            return {}
        return dict(self._db.execute("SELECT key, hash FROM datasets ORDER BY key"))

    # ------------------------------------------------------------------ writing
    def _writable(self) -> None:
        if self.readonly:
            raise ValueError(f"store {str(self.path)!r} was opened read-only")

    def describe(self, description: dict) -> None:
        """Record the description of the learners and data of the current run.

        Parameters
        ----------
        description : dict
            JSON-serializable; informative only (quoted in messages, never compared).
        """
        self._writable()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('description', ?)", (dumps(description),)
            )

    def write(
        self, point: int, key: str, row: dict, dataset: str | None = None, learner=None
    ) -> dict:
        """Commit one finished point in its own transaction.

        Parameters
        ----------
        point : int
            Position of the point in the study's grid.
        key : str
            Canonical JSON of the point's parameters (unique per point).
        row : dict
            The point's result row (JSON-serializable: Python scalars, lists, NaN allowed).
        dataset : str, optional
            The key of the point's data set (its hash is recorded with :meth:`write_many`).
        learner : dict, optional
            The learner the point built: name, class and every parameter (JSON-serializable).

        Returns
        -------
        dict
            The row as read back from its JSON (floats round-trip exactly, tuples become lists),
            so a computed table equals one resumed from the store.
        """
        return self.write_many([(point, key, row, dataset, learner)])[0][1]

    def write_many(
        self, items: list[tuple], datasets: dict[str, str | None] | None = None
    ) -> list[tuple[int, dict]]:
        """Commit several finished points, and the hashes of their data sets, in one transaction.

        Parameters
        ----------
        items : list of tuple
            ``(point, key, row)`` or ``(point, key, row, dataset, learner)`` as for
            :meth:`write`. A point already stored is replaced.
        datasets : dict of str -> str or None, optional
            Data set key -> hash of its arrays (None: the factory failed), recorded with the
            rows. A data set already recorded must have the same hash.

        Returns
        -------
        list of (int, dict)
            Each point with its row as read back from its JSON.

        Raises
        ------
        ValueError
            If a data set of ``datasets`` is recorded with another hash (nothing is written),
            or the store was opened read-only.
        """
        self._writable()
        texts = []
        for item in items:
            point, key, row, dataset, learner = (*item, None, None) if len(item) == 3 else item
            learner = None if learner is None else dumps(learner)
            texts.append((point, key, dumps(row), dataset, learner))
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for name, digest in (datasets or {}).items():
                found = self._db.execute(
                    "SELECT hash FROM datasets WHERE key = ?", (name,)
                ).fetchone()
                if found is not None and found[0] != digest:
                    raise ValueError(
                        f"store {str(self.path)!r}: data set {name} is recorded with arrays of "
                        f"hash {found[0]}, the rows being written come from arrays of hash "
                        f"{digest}. A data factory must return the same arrays for the same "
                        "parameters and random_state (is it random without using random_state, "
                        "or was it edited during the run?); nothing of these rows was written"
                    )
                if found is None:
                    self._db.execute(
                        "INSERT INTO datasets (key, hash) VALUES (?, ?)", (name, digest)
                    )
            self._db.executemany(
                "INSERT OR REPLACE INTO points (point, key, row, dataset, learner) "
                "VALUES (?, ?, ?, ?, ?)",
                texts,
            )
        return [(point, json.loads(text)) for point, _, text, _, _ in texts]

    def forget(self, points=(), datasets=()) -> None:
        """Delete finished points and data set hashes, in one transaction.

        Used before recomputing what changed, so that a run interrupted at any moment leaves
        no row of the old data or learner behind.

        Parameters
        ----------
        points : iterable of int, default=()
            Positions of the points whose rows are deleted.
        datasets : iterable of str, default=()
            Keys of the data sets whose recorded hashes are deleted.
        """
        self._writable()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM points WHERE point = ?", [(int(p),) for p in points])
            self._db.executemany("DELETE FROM datasets WHERE key = ?", [(k,) for k in datasets])

    def close(self) -> None:
        """Close the connection (the file stays)."""
        self._db.close()

    def __enter__(self) -> GridStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_path(path, name: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}")
    return Path(path)
