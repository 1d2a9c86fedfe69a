"""On-disk feature cache: one self-checking file per (extractor, weights, input images).

File layout (``<cache_dir>/<key>.feat``)::

    8 bytes   magic  b"BCFEAT01"
    8 bytes   header length h, little-endian unsigned
    h bytes   JSON header: {"key", "shape", "dtype", "sha256" (of the payload), "meta"}
    payload   the C-ordered array bytes

Files are written through :func:`backdoor_curves._io.atomic_write` (temporary file + rename), so a
crash never leaves a half-written file under the final name. On reading, the magic, the header,
the key, the payload length and its SHA-256 are all checked; a file that fails any check is
reported with a :class:`CacheCorruptionWarning`, deleted and treated as a miss, never trusted.
Reading parses JSON and raw array bytes only (no pickle, and no object dtype: such a header is
refused like a damaged one), so a cache directory from elsewhere cannot run code. Keys are
single file-name components (letters, digits, ``_``, ``-``, ``.``; not starting with ``.``), so
a key never leads outside the cache directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from backdoor_curves._io import atomic_write

__all__ = ["CacheCorruptionWarning", "FeatureCache", "cache_key"]

_MAGIC = b"BCFEAT01"
_LEN = struct.Struct("<Q")
_MAX_HEADER = 1 << 20
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


class CacheCorruptionWarning(UserWarning):
    """A cache file was unreadable or failed its checksum; it is deleted and rebuilt."""


def cache_key(meta: dict[str, Any], images: np.ndarray) -> str:
    """SHA-256 (hex) of ``meta`` (JSON, sorted keys) and of the images' shape, dtype and bytes.

    Parameters
    ----------
    meta : dict
        What identifies the computation: extractor name, weights identity, preprocessing.
    images : ndarray
        The exact input array (its bytes are hashed, C order).

    Returns
    -------
    str
        64 hexadecimal digits; equal keys mean equal ``meta`` and byte-identical images.
    """
    images = np.ascontiguousarray(images)
    h = hashlib.sha256()
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    h.update(json.dumps([list(images.shape), images.dtype.str]).encode())
    h.update(memoryview(images).cast("B"))
    return h.hexdigest()


class FeatureCache:
    """A directory of feature files keyed by :func:`cache_key`.

    Parameters
    ----------
    directory : str or Path
        Created on first write if missing.

    Attributes
    ----------
    directory : Path
        ``directory``.

    Examples
    --------
    >>> import tempfile
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> cache.save("k", np.ones((2, 3), np.float32), meta={"model": "demo"})
    >>> cache.load("k").shape
    (2, 3)
    """

    def __init__(self, directory):
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        """The file that holds (or would hold) the features of ``key``.

        Parameters
        ----------
        key : str
            A cache key (:func:`cache_key`).

        Returns
        -------
        Path
            ``<directory>/<key>.feat``.

        Raises
        ------
        ValueError
            If ``key`` is not a single file-name component (see the module docstring).
        """
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                "key must be letters, digits, '_', '-' or '.' (not first), e.g. a cache_key(), "
                f"got {key!r}"
            )
        return self.directory / f"{key}.feat"

    def save(self, key: str, features: np.ndarray, *, meta: dict[str, Any] | None = None) -> None:
        """Write ``features`` under ``key`` atomically (replacing any previous file).

        Parameters
        ----------
        key : str
            A cache key (:func:`cache_key`); it is also stored in the file's header.
        features : ndarray
            The array to store (any shape and dtype; written in C order).
        meta : dict, optional
            JSON-serializable description stored in the header (not used when loading).

        Raises
        ------
        TypeError
            If ``features`` has an object dtype (its bytes would be pointers).
        ValueError
            If ``key`` is not a valid key (see :meth:`path`).
        """
        arr = np.ascontiguousarray(features)
        if arr.dtype.hasobject:
            raise TypeError(f"features must not have an object dtype, got {arr.dtype}")
        path = self.path(key)
        payload = memoryview(arr).cast("B")
        header = json.dumps(
            {
                "key": key,
                "shape": list(arr.shape),
                "dtype": arr.dtype.str,
                "sha256": hashlib.sha256(payload).hexdigest(),
                "meta": meta or {},
            },
            sort_keys=True,
            default=str,
        ).encode()
        self.directory.mkdir(parents=True, exist_ok=True)

        def write(f):
            f.write(_MAGIC)
            f.write(_LEN.pack(len(header)))
            f.write(header)
            f.write(payload)

        atomic_write(path, write, binary=True)

    def load(self, key: str) -> np.ndarray | None:
        """The cached features of ``key``, or None on a miss or a corrupted file (deleted).

        Parameters
        ----------
        key : str
            A cache key (:func:`cache_key`).

        Returns
        -------
        ndarray or None
            A new array with the stored shape and dtype; None when there is no file, or when
            the file fails a check (magic, header, key, length, SHA-256) and has been deleted.

        Raises
        ------
        ValueError
            If ``key`` is not a valid key (see :meth:`path`).

        Warns
        -----
        CacheCorruptionWarning
            When a file fails a check (an object dtype in its header included).
        """
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return self._parse(blob, key)
        except ValueError as exc:
            warnings.warn(
                f"feature cache file {path} is corrupted ({exc}); deleting it and recomputing",
                CacheCorruptionWarning,
                stacklevel=3,
            )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None

    @staticmethod
    def _parse(blob: bytes, key: str) -> np.ndarray:
        start = len(_MAGIC) + _LEN.size
        if len(blob) < start or blob[: len(_MAGIC)] != _MAGIC:
            raise ValueError("bad magic number")
        (n_header,) = _LEN.unpack_from(blob, len(_MAGIC))
        if n_header > _MAX_HEADER or start + n_header > len(blob):
            raise ValueError("truncated header")
        try:
            header = json.loads(blob[start : start + n_header])
            shape = tuple(int(s) for s in header["shape"])
            dtype = np.dtype(header["dtype"])
            digest, stored_key = header["sha256"], header["key"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable header: {exc}") from None
        if dtype.hasobject:
            raise ValueError(f"header names the object dtype {dtype}")
        if stored_key != key:
            raise ValueError("header key does not match the file name")
        payload = blob[start + n_header :]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(payload) != expected:
            raise ValueError(f"payload has {len(payload)} bytes, expected {expected}")
        if hashlib.sha256(payload).hexdigest() != digest:
            raise ValueError("payload checksum mismatch")
        return np.frombuffer(payload, dtype=dtype).reshape(shape).copy()
