"""Helpers shared by the triggers of this package: image and label checks (private module).

:mod:`~backdoor_curves.attacks.triggers` re-exports :func:`check_images` and
:func:`source_ranks`; the trigger modules (``blend``, ``warping``, ...) import them from here so
that the registry in ``triggers`` can import every trigger module without an import cycle.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_real_array, check_vector

__all__ = ["check_images", "source_ranks"]


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
