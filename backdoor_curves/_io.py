"""Atomic file output: a file is replaced whole or not at all, never seen half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["atomic_write", "output_dir", "save_figure"]

#: Resolution of the PNG figures written by :func:`save_figure`.
FIGURE_DPI = 130


def atomic_write(path, write: Callable[[IO], object], *, binary: bool = False) -> Path:
    """Write ``path`` through a temporary file in the same directory, then ``os.replace``.

    ``write(fileobj)`` fills the file (text mode, UTF-8, unless ``binary``). On any error the
    temporary file is removed and ``path`` is left as it was, so a reader never sees a
    half-written file. The written file gets mode 0o644. Returns ``path`` as a Path.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
        ) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def output_dir(out_dir) -> Path:
    """``out_dir`` as a Path, created if missing (TypeError / ValueError naming ``out_dir``)."""
    if not isinstance(out_dir, str | os.PathLike):
        raise TypeError(
            f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__}"
        )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_figure(fig: Figure, path) -> Path:
    """Save ``fig`` as a PNG (:data:`FIGURE_DPI` dpi) at ``path``, atomically."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=FIGURE_DPI), binary=True)
