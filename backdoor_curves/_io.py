"""File output: atomic writes, output paths kept inside ``--out``, safe result records.

- :func:`atomic_write`: a file is replaced whole or not at all, never seen half-written (a
  temporary file in the same directory, then :func:`os.replace`); Ctrl-C during the write is
  held until the file is in place.
- :func:`output_path`: a path a configuration names for output (e.g. a feature cache), checked to
  stay inside the run's output directory.
- :func:`write_record` / :func:`read_record`: a dict of DataFrames, arrays and scalars in one
  ``.npz`` file (a JSON manifest beside the raw arrays), read back exactly (float bits, dtypes,
  column order, index) with ``allow_pickle=False``: unlike pickle, reading a file from elsewhere
  cannot run code.
- :class:`Interrupted`: the ``KeyboardInterrupt`` a run raises after Ctrl-C, saying what it kept.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Interrupted",
    "atomic_write",
    "output_dir",
    "output_path",
    "read_record",
    "save_figure",
    "write_record",
]

#: Resolution of the PNG figures written by :func:`save_figure`.
FIGURE_DPI = 130


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run; ``kept`` says, in one sentence, what the run kept on disk.

    A ``KeyboardInterrupt`` (so code that catches Ctrl-C catches it), raised by the run commands
    (:func:`~backdoor_curves.grid_run.run_grid_config`, :func:`~backdoor_curves.nn_run.
    run_nn_config`) from the original interrupt once their workers are stopped.
    """

    def __init__(self, kept: str):
        super().__init__(kept)
        self.kept = kept


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) during the block and deliver it when the block ends.

    Only in the main thread (where Python runs signal handlers) and when a Python handler is
    installed (the default one raises KeyboardInterrupt); elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN, SIG_DFL or a handler installed outside Python
        yield
        return
    held: list = []
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: held.append((signum, frame)))
    except ValueError:  # pragma: no cover - not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            previous(*held[0])


def atomic_write(path, write: Callable[[IO], object], *, binary: bool = False) -> Path:
    """Write ``path`` through a temporary file in the same directory, then ``os.replace``.

    ``write(fileobj)`` fills the file (text mode, UTF-8, unless ``binary``). On any error the
    temporary file is removed and ``path`` is left as it was, so a reader never sees a
    half-written file. Ctrl-C during the write is held until the file is in place (then raised),
    so an interrupted run leaves no temporary file either. The written file gets mode 0o644.
    Returns ``path`` as a Path.
    """
    path = Path(path)
    with _interrupts_held():
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


def output_path(value, key: str, out=None) -> Path:
    """A path a configuration names for output (``key`` = ``value``), kept inside ``out``.

    A run writes only into its output directory: a relative ``value`` is taken relative to
    ``out``; an absolute one must lie inside ``out``; either may not climb out of it with
    ``..``. Paths to read from (a data set's root, a weights file) are inputs and are not
    checked.

    Parameters
    ----------
    value : str or path-like
        The configuration's value.
    key : str
        Its key, as the error names it (``"data.cache_dir"``).
    out : str or path-like, optional
        The output directory. Without it (a configuration checked as it is read, before the
        output directory is known) ``value`` must be relative and stay below where it is taken
        from.

    Returns
    -------
    Path
        ``out / value`` normalized (``value`` normalized without ``out``).

    Raises
    ------
    TypeError
        If ``value`` is not a str or path-like.
    ValueError
        If ``value`` is empty or leads outside ``out``: ``config key 'data.cache_dir': ...``.
    """
    if not isinstance(value, str | os.PathLike):
        raise TypeError(
            f"config key {key!r}: must be a path (a string), got {type(value).__name__}"
        )
    text = os.fspath(value)
    if not text:
        raise ValueError(f"config key {key!r}: must be a non-empty path, got ''")
    path = Path(text).expanduser()
    where = "the output directory" if out is None else f"the output directory {str(out)!r}"
    outside = ValueError(
        f"config key {key!r}: {text!r} is outside {where}; a run writes only there: give a "
        "path relative to it (without '..')"
    )
    if out is None:
        if path.is_absolute() or os.path.normpath(path).split(os.sep)[0] == os.pardir:
            raise outside
        return Path(os.path.normpath(path))
    base = Path(os.path.normpath(Path(out).expanduser().absolute()))
    full = Path(os.path.normpath(path if path.is_absolute() else base / path))
    if full != base and base not in full.parents:
        raise outside
    return full


def save_figure(fig: Figure, path) -> Path:
    """Save ``fig`` as a PNG (:data:`FIGURE_DPI` dpi) at ``path``, atomically."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=FIGURE_DPI), binary=True)


# ---------------------------------------------------------------------------- result records
#: The manifest's ``format``: what :func:`read_record` reads.
RECORD_FORMAT = "backdoor-curves record 1"
_MANIFEST = "manifest"


class _Arrays:
    """The arrays of a record, named ``a0``, ``a1``, ... in the order they are added."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, array: np.ndarray) -> str:
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise TypeError(f"cannot store an array of dtype {array.dtype} without pickle")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = array
        return name


def _label(value, what: str):
    """A column or index name: str, int or None (kept as JSON)."""
    if (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_))
    ):
        return None if value is None else (value if isinstance(value, str) else int(value))
    raise TypeError(f"{what} must be a str, an int or None to be stored, got {value!r}")


def _encode_strings(values, arrays: _Arrays) -> dict:
    """Strings (None / NaN / NA missing) as UTF-8 bytes, their lengths and a missing mask."""
    missing = np.asarray(pd.isna(np.asarray(values, dtype=object)), dtype=bool).reshape(-1)
    parts = []
    for value, gone in zip(values, missing, strict=True):
        if gone:
            parts.append(b"")
        elif isinstance(value, str):
            parts.append(value.encode("utf-8", "surrogatepass"))
        else:
            raise TypeError(f"cannot store {type(value).__name__} {value!r} in a string column")
    return {
        "bytes": arrays.add(np.frombuffer(b"".join(parts), dtype=np.uint8)),
        "lengths": arrays.add(np.array([len(p) for p in parts], dtype=np.int64)),
        "missing": arrays.add(missing),
    }


def _decode_strings(spec: dict, arrays) -> list:
    blob = arrays[spec["bytes"]].tobytes()
    ends = np.cumsum(arrays[spec["lengths"]])
    starts = ends - arrays[spec["lengths"]]
    return [
        None if gone else blob[a:b].decode("utf-8", "surrogatepass")
        for a, b, gone in zip(starts.tolist(), ends.tolist(), arrays[spec["missing"]], strict=True)
    ]


def _encode_column(values, arrays: _Arrays, what: str) -> dict:
    """A column's (or an index's) values: numpy numbers, strings or categories."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return {
            "type": "category",
            "codes": arrays.add(np.asarray(values.codes)),
            "categories": _encode_column(dtype.categories, arrays, what),
            "ordered": bool(dtype.ordered),
        }
    if isinstance(dtype, pd.StringDtype):
        na = dtype.na_value
        return {
            "type": "string",
            "storage": dtype.storage,
            "na": "nan" if isinstance(na, float) and math.isnan(na) else "NA",
            **_encode_strings(list(values), arrays),
        }
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        return {"type": "numpy", "array": arrays.add(np.asarray(values))}
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        spec = _encode_strings(list(values), arrays)
        if arrays.arrays[spec["missing"]].any():
            raise TypeError(f"cannot store {what}: an object column with a missing value")
        return {"type": "object_str", **spec}
    raise TypeError(f"cannot store {what} of dtype {dtype} (numbers, strings or categories)")


def _decode_column(spec: dict, arrays):
    kind = spec["type"]
    if kind == "numpy":
        return arrays[spec["array"]]
    if kind == "category":
        categories = pd.Index(_decode_column(spec["categories"], arrays))
        dtype = pd.CategoricalDtype(categories, ordered=spec["ordered"])
        return pd.Categorical.from_codes(arrays[spec["codes"]], dtype=dtype)
    if kind == "string":
        na = math.nan if spec["na"] == "nan" else pd.NA
        dtype = pd.StringDtype(storage=spec["storage"], na_value=na)
        return pd.array(_decode_strings(spec, arrays), dtype=dtype)
    if kind == "object_str":
        values = _decode_strings(spec, arrays)
        if any(v is None for v in values):
            raise ValueError("an object column holds a missing value")
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    raise ValueError(f"unknown column type {kind!r}")


def _encode_index(index: pd.Index, arrays: _Arrays, what: str) -> dict:
    if isinstance(index, pd.MultiIndex):
        raise TypeError(f"cannot store {what}: a MultiIndex")
    name = _label(index.name, f"the name of {what}")
    if type(index) is pd.RangeIndex:
        return {"type": "range", "start": index.start, "stop": index.stop, "step": index.step,
                "name": name}  # fmt: skip
    return {"type": "index", "values": _encode_column(index, arrays, what), "name": name}


def _decode_index(spec: dict, arrays) -> pd.Index:
    if spec["type"] == "range":
        return pd.RangeIndex(spec["start"], spec["stop"], spec["step"], name=spec["name"])
    values = _decode_column(spec["values"], arrays)
    return pd.Index(values, dtype=getattr(values, "dtype", None), name=spec["name"])


def _column_values(column: pd.Series):
    """A column's values: its pandas array for an extension dtype, else its numpy array."""
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        return column.array
    return column.to_numpy()


def _encode_frame(frame: pd.DataFrame, arrays: _Arrays, what: str) -> dict:
    try:
        attrs = json.loads(json.dumps(frame.attrs))
    except (TypeError, ValueError):
        attrs = None
    if attrs != frame.attrs:
        raise TypeError(f"cannot store the attrs of {what}: they must be plain JSON")
    for name in frame.columns:
        _label(name, f"a column name of {what}")
    return {
        "kind": "frame",
        "columns": _encode_index(frame.columns, arrays, f"the columns of {what}"),
        "index": _encode_index(frame.index, arrays, f"the index of {what}"),
        "data": [
            _encode_column(_column_values(frame.iloc[:, i]), arrays, f"column {name!r} of {what}")
            for i, name in enumerate(frame.columns)
        ],
        "attrs": attrs,
    }


def _decode_frame(spec: dict, arrays) -> pd.DataFrame:
    index = _decode_index(spec["index"], arrays)
    columns = _decode_index(spec["columns"], arrays)
    data = {}
    for i, column in enumerate(spec["data"]):
        values = _decode_column(column, arrays)
        data[i] = pd.Series(values, index=index, dtype=values.dtype, copy=False)
    frame = pd.DataFrame(data, index=index, copy=False)
    frame.columns = columns
    frame.attrs = spec["attrs"]
    return frame


def _encode_value(value, arrays: _Arrays, what: str) -> dict:
    if isinstance(value, pd.DataFrame):
        return _encode_frame(value, arrays, what)
    if value is None or isinstance(value, bool | str):
        return {"kind": "json", "value": value}
    if isinstance(value, int):
        return {"kind": "int", "value": str(value)}
    if isinstance(value, float):
        return {"kind": "float", "array": arrays.add(np.array(value, dtype=np.float64))}
    if isinstance(value, np.generic | np.ndarray):
        kind = "numpy_scalar" if isinstance(value, np.generic) else "array"
        try:
            return {"kind": kind, "array": arrays.add(value)}
        except TypeError:
            pass
    raise TypeError(
        f"cannot store {what} of type {type(value).__name__} (a DataFrame, an array, a number, a "
        "str, a bool or None)"
    )


def _decode_value(spec: dict, arrays):
    kind = spec["kind"]
    if kind == "frame":
        return _decode_frame(spec, arrays)
    if kind == "json":
        return spec["value"]
    if kind == "int":
        return int(spec["value"])
    if kind == "float":
        return float(arrays[spec["array"]])
    if kind == "numpy_scalar":
        return arrays[spec["array"]][()]
    if kind == "array":
        return arrays[spec["array"]]
    raise ValueError(f"unknown value kind {kind!r}")


def write_record(path, values: dict[str, Any], header: dict | None = None) -> Path:
    """Write ``values`` (name -> DataFrame, array or scalar) and ``header`` to ``path`` (.npz).

    One uncompressed ``.npz`` file, written atomically: the raw arrays and a JSON manifest (the
    ``header``, each value's kind, each column's dtype, the index). Read it back with
    :func:`read_record`; nothing in it needs pickle.

    Parameters
    ----------
    path : str or path-like
        The file (its folder must exist).
    values : dict of str -> value
        DataFrames (columns of numpy numbers or bools, pandas strings, categories, or object
        columns of str; any index but a MultiIndex; plain-JSON ``attrs``), numpy arrays and
        scalars (not of object dtype), Python float, int, bool, str and None.
    header : dict, optional
        Plain-JSON description (e.g. what the values were computed from).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    TypeError
        Naming the first value that cannot be stored this way.
    """
    arrays = _Arrays()
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise TypeError("values must be a dict with str keys")
    specs = {name: _encode_value(v, arrays, f"values[{name!r}]") for name, v in values.items()}
    manifest = {"format": RECORD_FORMAT, "header": header or {}, "values": specs}
    text = json.dumps(manifest, allow_nan=False).encode()
    payload = {_MANIFEST: np.frombuffer(text, dtype=np.uint8), **arrays.arrays}
    return atomic_write(path, lambda f: np.savez(f, **payload), binary=True)


def read_record(path) -> tuple[dict, dict[str, Any]]:
    """``(header, values)`` of a file written by :func:`write_record`.

    Read with ``numpy.load(allow_pickle=False)`` and ``json``: a file from elsewhere cannot run
    code. Values come back as they were written: the same dtypes, float bits, column order and
    index.

    Raises
    ------
    ValueError
        Naming ``path`` when it is not such a file (another format, damaged).
    OSError
        When it cannot be opened.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        manifest = json.loads(arrays.pop(_MANIFEST).tobytes())
        if manifest.get("format") != RECORD_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {RECORD_FORMAT!r}")
        values = {name: _decode_value(spec, arrays) for name, spec in manifest["values"].items()}
        return manifest["header"], values
    except (ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path} is not a readable result record ({exc})") from None
