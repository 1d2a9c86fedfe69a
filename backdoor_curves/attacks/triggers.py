"""Backdoor triggers: functions of an image batch that stamp the attacker's pattern (DESIGN §6).

Every trigger works on images with pixel values in [0, 1] (dimensionless intensities, 1 = white),
laid out as ``(n, H, W)`` (grayscale) or ``(n, H, W, C)`` (channels last). Row 0 is the top row,
column 0 the left column.

A trigger exposes one method, ``apply(images, source_labels, classes)``, which returns a *new*
float64 array of the same shape and never mutates its input. ``source_labels`` are the true labels
of the images before any relabelling; a trigger may depend on them (BadNets uses one patch per
source class) or not (the invisible grid is the same for every class).

- :class:`BadNetsPatch` (Gu et al.): a seeded uniform-random ``t x t`` patch replaces the
  bottom-right corner, one patch per source class.
- :class:`InvisibleGrid` (Zhong et al.): add a small intensity ``b`` at every pixel with even row
  and even column index, then clip to [0, 1].

Use :func:`make_trigger` to build one by name.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._validation import check_positive, check_real_array, check_seed, check_vector

__all__ = [
    "Trigger",
    "BadNetsPatch",
    "InvisibleGrid",
    "TRIGGERS",
    "make_trigger",
    "check_images",
    "source_ranks",
]


@runtime_checkable
class Trigger(Protocol):
    """Anything with an ``apply(images, source_labels, classes) -> ndarray`` method."""

    def apply(self, images, source_labels, classes) -> np.ndarray:  # pragma: no cover
        """Return triggered copies of ``images``.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            Pixel intensities in [0, 1]; never modified.
        source_labels : array-like of shape (n,)
            True label of each image, before any relabelling.
        classes : array-like of shape (n_classes,)
            All class labels of the task.

        Returns
        -------
        ndarray of float64, same shape as ``images``
            A new array with values in [0, 1].
        """
        ...


# ---------------------------------------------------------------------------- pure helpers
def check_images(images, name: str = "images") -> np.ndarray:
    """Return ``images`` as a new finite float64 array of shape (n, H, W) or (n, H, W, C).

    Parameters
    ----------
    images : array-like
        Pixel intensities in [0, 1]; ``n`` may be 0, ``H``, ``W`` and ``C`` must be >= 1.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray of float64
        A copy: the caller's array is never shared.

    Raises
    ------
    TypeError
        If ``images`` is not an array of real numbers.
    ValueError
        If it has the wrong number of dimensions, an empty image axis, NaN/inf, or values outside
        [0, 1] (e.g. 0..255 integers, which must be divided by 255 first).
    """
    arr = check_real_array(images, name, "an array of shape (n, H, W) or (n, H, W, C)")
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must have shape (n, H, W) or (n, H, W, C), got an array of shape {arr.shape}"
        )
    if any(s == 0 for s in arr.shape[1:]):
        raise ValueError(f"{name} has an empty image axis: shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(
            f"{name} must hold pixel intensities in [0, 1], got values in "
            f"[{arr.min():g}, {arr.max():g}] (divide 8-bit images by 255)"
        )
    return arr


def source_ranks(source_labels, classes, n: int) -> np.ndarray:
    """Rank of each source label among the sorted ``classes`` (0 for the smallest class).

    Parameters
    ----------
    source_labels : array-like of shape (n,)
        True labels of the images before relabelling.
    classes : array-like of shape (n_classes,)
        The distinct class labels (any order; they are sorted here).
    n : int
        Expected number of labels (the number of images).

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    ValueError
        Naming ``source_labels`` if its length is not ``n`` or a label is not in ``classes``;
        naming ``classes`` if it is empty or has repeated values.
    """
    labels = check_vector(source_labels, "source_labels", allow_empty=True)
    cls = check_vector(classes, "classes")
    sorted_cls = np.unique(cls)
    if sorted_cls.size != cls.size:
        raise ValueError(f"classes must not repeat a label, got {cls.tolist()}")
    if labels.shape[0] != n:
        raise ValueError(f"source_labels has {labels.shape[0]} labels but there are {n} images")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    known = np.isin(labels, sorted_cls)
    if not np.all(known):
        bad = np.unique(labels[~known]).tolist()[:10]
        raise ValueError(
            f"source_labels has labels {bad} that are not in classes {sorted_cls.tolist()}"
        )
    return np.searchsorted(sorted_cls, labels).astype(np.int64)


def _check_int(value, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


# ---------------------------------------------------------------------------- BadNets
class BadNetsPatch:
    """BadNets trigger: a seeded random ``size x size`` patch replaces the bottom-right corner.

    For an image ``x`` of height ``H`` and width ``W`` whose true (source) class has rank ``r``
    among the sorted classes, the triggered image is

        x'[i, j, c] = patch_r[i - (H - t), j - (W - t), c]   if i >= H - t and j >= W - t,
        x'[i, j, c] = x[i, j, c]                             otherwise,

    with ``t = size`` and ``patch_r ~ U[0, 1)`` drawn from ``np.random.default_rng([random_state,
    r])``. The patch therefore depends only on ``random_state`` and ``r`` (never on the order or
    the batching of the images), and colour images get an independent value per channel.

    Parameters
    ----------
    size : int, default=3
        Side ``t`` of the square patch, in pixels.
    random_state : int, default=0
        Non-negative seed of the patches.

    Raises
    ------
    TypeError
        If ``size`` or ``random_state`` is not an int.
    ValueError
        If ``size`` < 1 or ``random_state`` < 0.

    Examples
    --------
    >>> import numpy as np
    >>> trig = BadNetsPatch(size=2, random_state=0)
    >>> out = trig.apply(np.zeros((1, 4, 4)), [5], classes=[3, 5])
    >>> bool(np.all(out[0, 2:, 2:] == trig.patch(1))), float(out[0, :2].sum())
    (True, 0.0)
    """

    def __init__(self, size: int = 3, random_state: int = 0):
        self.size = _check_int(size, "size", minimum=1)
        self.random_state = check_seed(random_state, "random_state")

    def __repr__(self) -> str:
        return f"BadNetsPatch(size={self.size}, random_state={self.random_state})"

    def patch(self, rank: int, n_channels: int | None = None) -> np.ndarray:
        """The patch of the class with the given rank among the sorted classes.

        Parameters
        ----------
        rank : int
            Position (0-based) of the source class in the sorted class list.
        n_channels : int or None
            ``None`` for grayscale (shape ``(size, size)``), else ``C`` (shape ``(size, size, C)``).

        Returns
        -------
        ndarray of float64 with values in [0, 1)
            Uniform draws of ``np.random.default_rng([random_state, rank])``: the same for the
            same ``rank`` and ``n_channels``, whatever the images.

        Raises
        ------
        TypeError
            If ``rank`` or ``n_channels`` is not an int.
        ValueError
            If ``rank`` < 0 or ``n_channels`` < 1.
        """
        rank = _check_int(rank, "rank", minimum=0)
        rng = np.random.default_rng([self.random_state, rank])
        if n_channels is None:
            return rng.random((self.size, self.size))
        n_channels = _check_int(n_channels, "n_channels", minimum=1)
        return rng.random((self.size, self.size, n_channels))

    def apply(self, images, source_labels, classes) -> np.ndarray:
        """Stamp each image with the patch of its source class.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            Pixel intensities in [0, 1].
        source_labels : array-like of shape (n,)
            True label of each image (before relabelling); must be in ``classes``.
        classes : array-like of shape (n_classes,)
            All class labels; a class's patch is chosen by its rank in ``sorted(classes)``.

        Returns
        -------
        ndarray of float64, same shape as ``images``
            A new array; ``images`` is not modified.

        Raises
        ------
        ValueError
            If the patch is larger than the images.
        TypeError, ValueError
            As :func:`check_images` and :func:`source_ranks` (bad images, labels outside
            ``classes``).
        """
        out = check_images(images)
        height, width = out.shape[1:3]
        t = self.size
        if t > height or t > width:
            raise ValueError(
                f"size={t} is larger than the image: images have shape {out.shape[1:]} "
                f"(H={height}, W={width})"
            )
        ranks = source_ranks(source_labels, classes, out.shape[0])
        n_channels = out.shape[3] if out.ndim == 4 else None
        for rank in np.unique(ranks):
            out[ranks == rank, height - t :, width - t :] = self.patch(int(rank), n_channels)
        return out


# ---------------------------------------------------------------------------- invisible grid
class InvisibleGrid:
    """Zhong et al.'s invisible grid trigger: a faint lattice of brightened pixels.

    For every image, channel ``c`` and pixel ``(i, j)``

        x'[i, j, c] = min(1, x[i, j, c] + b)   if i and j are both even (0, 2, 4, ...),
        x'[i, j, c] = x[i, j, c]               otherwise,

    with ``b = intensity`` (an intensity in pixel units of [0, 1]; the paper's b = 75 on the
    0..255 scale is the default 75/255). The trigger is the same for every source class.

    Parameters
    ----------
    intensity : float, default=75/255
        Added brightness ``b``, in (0, 1].

    Raises
    ------
    TypeError
        If ``intensity`` is not a real number.
    ValueError
        If ``intensity`` is not in (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> out = InvisibleGrid(0.5).apply(np.full((1, 3, 3), 0.7), [0], classes=[0, 1])
    >>> out[0].tolist()
    [[1.0, 0.7, 1.0], [0.7, 0.7, 0.7], [1.0, 0.7, 1.0]]
    """

    def __init__(self, intensity: float = 75 / 255):
        intensity = check_positive(intensity, "intensity")
        if intensity > 1.0:
            raise ValueError(f"intensity must lie in (0, 1] (pixel units), got {intensity!r}")
        self.intensity = intensity

    def __repr__(self) -> str:
        return f"InvisibleGrid(intensity={self.intensity!r})"

    @staticmethod
    def grid_mask(height: int, width: int) -> np.ndarray:
        """Boolean mask of the pixels the grid brightens.

        Parameters
        ----------
        height, width : int
            Image size in pixels.

        Returns
        -------
        ndarray of bool, shape (height, width)
            True where the row and the column index are both even.
        """
        rows = np.arange(height) % 2 == 0
        cols = np.arange(width) % 2 == 0
        return rows[:, None] & cols[None, :]

    def apply(self, images, source_labels, classes) -> np.ndarray:
        """Add the grid to every image and clip to [0, 1].

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            Pixel intensities in [0, 1].
        source_labels : array-like of shape (n,)
            True label of each image; checked against ``classes`` but otherwise unused.
        classes : array-like of shape (n_classes,)
            All class labels.

        Returns
        -------
        ndarray of float64, same shape as ``images``
            A new array; ``images`` is not modified.

        Raises
        ------
        TypeError, ValueError
            As :func:`check_images` and :func:`source_ranks` (bad images, labels outside
            ``classes``).
        """
        out = check_images(images)
        source_ranks(source_labels, classes, out.shape[0])
        grid = out[:, ::2, ::2]  # a view: even rows and even columns, all channels
        grid += self.intensity
        np.clip(out, 0.0, 1.0, out=out)
        return out


# ---------------------------------------------------------------------------- factory
TRIGGERS: Mapping[str, type] = MappingProxyType(
    {"badnets": BadNetsPatch, "invisible": InvisibleGrid}
)
"""Trigger names accepted by :func:`make_trigger`, mapped to their classes (read-only)."""


def make_trigger(name: str, **params: Any) -> BadNetsPatch | InvisibleGrid:
    """Build a trigger by name.

    Parameters
    ----------
    name : {"badnets", "invisible"}
        Which trigger (see :data:`TRIGGERS`).
    **params
        Keyword arguments of the trigger's class, e.g. ``size`` and ``random_state`` for
        ``"badnets"``, ``intensity`` for ``"invisible"``.

    Returns
    -------
    BadNetsPatch or InvisibleGrid
        The trigger, an instance of ``TRIGGERS[name]``.

    Raises
    ------
    TypeError
        If ``name`` is not a string, or naming a parameter the trigger does not accept.
    ValueError
        Naming ``trigger`` if the name is unknown (the message lists the valid names).

    Examples
    --------
    >>> make_trigger("badnets", size=4)
    BadNetsPatch(size=4, random_state=0)
    """
    valid = sorted(TRIGGERS)
    if not isinstance(name, str):
        raise TypeError(f"trigger must be one of {valid}, got {type(name).__name__}")
    if name not in TRIGGERS:
        raise ValueError(f"trigger must be one of {valid}, got {name!r}")
    cls = TRIGGERS[name]
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    for key in params:
        if key not in accepted:
            raise TypeError(
                f"{key} is not a parameter of the {name!r} trigger; it accepts {accepted}"
            )
    return cls(**params)
