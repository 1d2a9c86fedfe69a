"""Helpers shared by the TOML configuration parsers of the project.

:mod:`backdoor_curves.study.config` (convex grid studies) and :mod:`backdoor_curves.nn.config`
(neural-network runs) share their conventions: a file is read with :func:`load_toml`, and every
error is a ``ValueError`` naming the key (:func:`config_error`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["check_known_keys", "config_error", "load_toml"]

T = TypeVar("T")


def config_error(key: str, message: str) -> ValueError:
    """The error of a configuration key: ``ValueError("config key 'key': message")``."""
    return ValueError(f"config key {key!r}: {message}")


def check_known_keys(table: Mapping, allowed: Iterable[str], where: str) -> None:
    """Raise :func:`config_error` naming ``where.key`` for the first key not in ``allowed``."""
    allowed = set(allowed)
    for key in table:
        if key not in allowed:
            raise config_error(f"{where}.{key}", f"unknown key; allowed: {sorted(allowed)}")


def load_toml(path, parse: Callable[..., T]) -> T:
    """Read the TOML file ``path`` and return ``parse(document, source=str(path))``.

    Raises ``OSError`` if the file cannot be read and ``ValueError`` if it is not valid TOML
    (or whatever ``parse`` raises).
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    return parse(raw, source=str(path))
