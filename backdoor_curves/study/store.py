"""A resumable on-disk store for grid studies: one SQLite file, one committed row per point.

Each finished grid point is written in its own transaction as soon as it completes (SQLite in
WAL mode with ``synchronous=FULL``), so a run stopped at any moment — SIGKILL included — keeps
every point it finished and no half-written one. Re-opening the store with the same study skips
the finished points. The store also records the study definition (parameters, seeds, data and
learner identity) and the toolkit version that made it; opening it for a different study raises
``ValueError`` instead of mixing two studies in one table.

Rows are kept as JSON (floats written with ``repr``, NaN allowed), which round-trips every float
exactly: a table read back from the store equals the one computed.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

__all__ = ["GridStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    point INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    row TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


def dumps(value) -> str:
    """Canonical JSON (sorted keys, NaN allowed) used for keys, definitions and rows."""
    return json.dumps(value, sort_keys=True, allow_nan=True, separators=(",", ":"))


class GridStore:
    """The SQLite store of one grid study.

    Parameters
    ----------
    path : str or path-like
        The store file (created with its parent directory if missing).
    definition : dict
        JSON-serializable description of the study (every point's parameters and seed, the
        learners, the data, the curve's betas, the toolkit version). A new store records it; an
        existing store must hold the same one, else ``ValueError``.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like.
    ValueError
        If ``path`` is a directory, or the existing store holds a different study (the message
        names the keys of ``definition`` that differ).

    Notes
    -----
    Only the process that runs the study writes to the store (workers return their rows to it),
    so there is a single writer; readers may open the file concurrently (WAL mode).
    """

    def __init__(self, path, definition: dict):
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"store must be a path (str or os.PathLike), got {type(path).__name__}")
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise ValueError(f"store {str(self.path)!r} is a directory; give a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._check_definition(definition)
        except Exception:
            self._db.close()
            raise

    def _check_definition(self, definition: dict) -> None:
        text = dumps(definition)
        found = self._db.execute("SELECT value FROM meta WHERE key = 'definition'").fetchone()
        if found is None:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO meta VALUES ('definition', ?), ('version', ?)",
                    (text, str(definition.get("version", ""))),
                )
            return
        if found[0] != text:
            old = json.loads(found[0])
            diff = sorted(
                k
                for k in set(old) | set(definition)
                if dumps(old.get(k)) != dumps(definition.get(k))
            )
            raise ValueError(
                f"store {str(self.path)!r} holds a different study (differs in: "
                f"{', '.join(diff)}); use a new store path or delete this one to start over"
            )

    @property
    def definition(self) -> dict:
        """The study definition recorded in the store."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'definition'").fetchone()
        return json.loads(row[0])

    def finished(self) -> dict[int, dict]:
        """The finished points: point index -> its row (a dict).

        Returns
        -------
        dict of int -> dict
            Position of the point in the study's grid -> its row as written by :meth:`write`,
            in point order.
        """
        rows = self._db.execute("SELECT point, row FROM points ORDER BY point")
        return {point: json.loads(row) for point, row in rows}

    def write(self, point: int, key: str, row: dict) -> dict:
        """Commit one finished point in its own transaction.

        Parameters
        ----------
        point : int
            Position of the point in the study's grid.
        key : str
            Canonical JSON of the point's parameters (unique per point).
        row : dict
            The point's result row (JSON-serializable: Python scalars, lists, NaN allowed).

        Returns
        -------
        dict
            The row as read back from its JSON (floats round-trip exactly, tuples become lists),
            so a computed table equals one resumed from the store.
        """
        text = dumps(row)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO points (point, key, row) VALUES (?, ?, ?)",
                (point, key, text),
            )
        return json.loads(text)

    def write_many(self, items: list[tuple[int, str, dict]]) -> list[tuple[int, dict]]:
        """Commit several finished points in one transaction (all of them or none).

        Parameters
        ----------
        items : list of (int, str, dict)
            ``(point, key, row)`` as for :meth:`write`.

        Returns
        -------
        list of (int, dict)
            Each point with its row as read back from its JSON.
        """
        texts = [(point, key, dumps(row)) for point, key, row in items]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO points (point, key, row) VALUES (?, ?, ?)", texts
            )
        return [(point, json.loads(text)) for point, _, text in texts]

    def close(self) -> None:
        """Close the connection (the file stays)."""
        self._db.close()

    def __enter__(self) -> GridStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
