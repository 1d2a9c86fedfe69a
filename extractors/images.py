"""Validate image batches and bring them to one layout: float32 ``(n, C, H, W)``, C in {1, 3}."""

from __future__ import annotations

import numbers

import numpy as np

from backdoor_curves._validation import check_real_array

__all__ = ["as_image_batch"]


def _check_image_shape(image_shape) -> tuple[int, ...]:
    try:
        shape = tuple(image_shape)
    except TypeError:
        raise TypeError(
            f"image_shape must be a tuple (H, W) or (H, W, C), got {image_shape!r}"
        ) from None
    if len(shape) not in (2, 3) or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(f"image_shape must be (H, W) or (H, W, C) of positive ints, got {shape}")
    return tuple(int(s) for s in shape)


def as_image_batch(X, name: str = "X", image_shape=None) -> np.ndarray:
    """Return ``X`` as a C-contiguous float32 array of shape ``(n, C, H, W)`` with C in {1, 3}.

    Parameters
    ----------
    X : array-like
        Pixel intensities in [0, 1], one of
        ``(n, H, W)`` (grayscale, C = 1), ``(n, H, W, C)`` (channels last, C in {1, 3}),
        ``(n, C, H, W)`` (channels first, C in {1, 3}; used only when the last axis is not a
        channel axis), or ``(n, n_features)`` together with ``image_shape``.
    name : str
        Argument name used in error messages.
    image_shape : tuple of int, optional
        ``(H, W)`` or ``(H, W, C)`` to unflatten 2-D input (e.g. ``BackdoorData.X_clean`` and
        ``BackdoorData.image_shape``).

    Returns
    -------
    ndarray of float32, shape (n, C, H, W)
        C-contiguous, C in {1, 3}; it may share memory with ``X`` when no conversion was needed.

    Raises
    ------
    TypeError
        If ``X`` is None or not an array of real numbers.
    ValueError
        Naming ``X``: wrong number of dimensions, no channel axis of size 1 or 3, no image,
        NaN/inf, values outside [0, 1] (8-bit images must be divided by 255 first).
    """
    arr = check_real_array(X, name, "an array of images")
    if arr.ndim == 2:
        if image_shape is None:
            raise ValueError(
                f"{name} is 2-D with shape {arr.shape}: pass image_shape (H, W) or (H, W, C) to "
                "unflatten it"
            )
        shape = _check_image_shape(image_shape)
        if arr.shape[1] != int(np.prod(shape)):
            raise ValueError(
                f"{name} has {arr.shape[1]} features, but image_shape {shape} holds "
                f"{int(np.prod(shape))}"
            )
        arr = arr.reshape((arr.shape[0], *shape))
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4:
        if arr.shape[-1] in (1, 3):
            arr = arr.transpose(0, 3, 1, 2)
        elif arr.shape[1] not in (1, 3):
            raise ValueError(
                f"{name} has shape {arr.shape}: a 4-D batch needs a channel axis of size 1 or 3, "
                "last (n, H, W, C) or second (n, C, H, W)"
            )
    else:
        raise ValueError(
            f"{name} must have shape (n, H, W), (n, H, W, C) or (n, C, H, W), got {arr.shape}"
        )
    if arr.shape[0] == 0 or any(s == 0 for s in arr.shape[2:]):
        raise ValueError(f"{name} must contain at least one non-empty image, got {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or infinity")
    lo, hi = float(out.min()), float(out.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must hold pixel intensities in [0, 1], got values in [{lo:g}, {hi:g}] "
            "(divide 8-bit images by 255)"
        )
    return out
