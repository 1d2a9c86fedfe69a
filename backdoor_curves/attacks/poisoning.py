"""Poison a two-class image data set in place and build the four sets D, P, V, V_t (DESIGN §3).

Given n training images and a poisoning fraction p, ``n_poison = floor(p * n)`` of them are chosen
uniformly at random without replacement. Those points *leave* the clean set: D keeps the other
``n - n_poison`` points in their original order, and P holds the chosen points with the trigger
applied (source class = their true label) and the *other* class's label, in increasing index order.
Hence ``|P| = p (|D| + |P|)`` up to the floor. The clean test set V is the test set as given;
the backdoor test set V_t is every test image triggered and relabelled to the other class.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .._validation import check_fraction, check_random_state, check_same_length, check_vector
from ..data import BackdoorData
from .triggers import Trigger, check_images, make_trigger

__all__ = ["poison", "flip_labels", "choose_poison_indices", "n_poison_points"]

_FLOOR_SLACK = 1e-9  # so that e.g. 0.1 * 30 = 3.0000000000000004 -> 3 and 0.7 * 10 -> 7, not 6


# ---------------------------------------------------------------------------- pure helpers
def n_poison_points(fraction: float, n: int) -> int:
    """Number of poisoned points, ``floor(fraction * n + 1e-9)``.

    The tiny slack absorbs floating-point error in products such as ``0.7 * 10 = 6.999...``.
    """
    return int(math.floor(fraction * n + _FLOOR_SLACK))


def choose_poison_indices(n: int, n_poison: int, random_state=0) -> np.ndarray:
    """Sorted indices of ``n_poison`` distinct points out of ``n``, uniformly at random.

    Uses ``np.random.default_rng(random_state).choice(n, n_poison, replace=False)``, so the same
    seed always poisons the same points.

    Returns
    -------
    ndarray of int64, shape (n_poison,), strictly increasing
    """
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n, size=n_poison, replace=False)).astype(np.int64)


def flip_labels(y, classes) -> np.ndarray:
    """Swap the two classes: ``classes[0] -> classes[1]`` and ``classes[1] -> classes[0]``.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels, each one of ``classes``.
    classes : array-like of shape (2,)
        The two labels.

    Returns
    -------
    ndarray of shape (n,), same dtype as ``classes``
    """
    y = np.asarray(y)
    classes = np.asarray(classes)
    return np.where(y == classes[0], classes[1], classes[0])


def _check_image_shape(image_shape) -> tuple[int, ...] | None:
    if image_shape is None:
        return None
    try:
        shape = tuple(image_shape)
    except TypeError:
        raise TypeError(
            f"image_shape must be a tuple (H, W) or (H, W, C), got {type(image_shape).__name__}"
        ) from None
    if len(shape) not in (2, 3):
        raise ValueError(f"image_shape must be (H, W) or (H, W, C), got {shape}")
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"image_shape must hold ints, got {shape}")
        if s < 1:
            raise ValueError(f"image_shape must hold positive ints, got {shape}")
    return tuple(int(s) for s in shape)


def _as_images(X, name: str, image_shape: tuple[int, ...] | None) -> np.ndarray:
    """``X`` as a new float64 image array (n, H, W) or (n, H, W, C) with values in [0, 1]."""
    if image_shape is None:
        arr = np.asarray(X) if X is not None else None
        if arr is not None and arr.ndim == 2:
            raise ValueError(
                f"{name} is 2-D (n_samples, n_features) with shape {arr.shape}: pass image_shape "
                "(H, W) or (H, W, C) to say how to unflatten it"
            )
        return check_images(X, name)
    if X is None:
        raise TypeError(f"{name} must be an array of images, got None")
    arr = np.asarray(X)
    n_pix = int(np.prod(image_shape))
    if arr.ndim == 2:
        if arr.shape[1] != n_pix:
            raise ValueError(
                f"{name} has {arr.shape[1]} features, but image_shape {image_shape} holds {n_pix}"
            )
        arr = arr.reshape((arr.shape[0], *image_shape))
    elif arr.shape[1:] != image_shape:
        raise ValueError(
            f"{name} has shape {arr.shape}, which does not match image_shape {image_shape}"
        )
    return check_images(arr, name)


def _check_trigger(trigger, trigger_params: dict[str, Any]) -> Trigger:
    if isinstance(trigger, str):
        return make_trigger(trigger, **trigger_params)
    if not callable(getattr(trigger, "apply", None)):
        raise TypeError(
            "trigger must be a trigger name or an object with an "
            f"apply(images, source_labels, classes) method, got {type(trigger).__name__}"
        )
    if trigger_params:
        key = next(iter(trigger_params))
        raise TypeError(
            f"{key} is a trigger parameter, accepted only with a trigger name; "
            f"got a trigger object {trigger!r}"
        )
    return trigger


def _triggered(trigger: Trigger, images, labels, classes, what: str) -> np.ndarray:
    out = np.asarray(trigger.apply(images, labels, classes))
    if out.shape != images.shape:
        raise ValueError(
            f"trigger returned shape {out.shape} for the {what} images of shape {images.shape}"
        )
    return out


# ---------------------------------------------------------------------------- entry point
def poison(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    trigger: str | Trigger = "badnets",
    fraction: float = 0.1,
    random_state: int | np.random.Generator | None = 0,
    image_shape: tuple[int, ...] | None = None,
    return_indices: bool = False,
    **trigger_params: Any,
) -> BackdoorData | tuple[BackdoorData, np.ndarray]:
    """Poison a fraction of a two-class training set in place and build D, P, V and V_t.

    Parameters
    ----------
    X_train : array-like of shape (n, H, W), (n, H, W, C) or (n, n_features)
        Training images with pixel intensities in [0, 1]; 2-D only together with ``image_shape``.
    y_train : array-like of shape (n,)
        Training labels: exactly two distinct values of any type (ints, strings, ...).
    X_test, y_test : array-like
        Test images (same image shape) and labels (each one of ``y_train``'s classes).
    trigger : str or trigger object, default="badnets"
        A name for :func:`~backdoor_curves.attacks.triggers.make_trigger` ("badnets", "invisible")
        or an
        object with ``apply(images, source_labels, classes)``.
    fraction : float, default=0.1
        Poisoning fraction p in (0, 1); ``n_poison = floor(p * n + 1e-9)`` points are poisoned.
    random_state : int, Generator or None, default=0
        Seed of ``np.random.default_rng`` that chooses the poisoned points.
    image_shape : tuple of int, optional
        ``(H, W)`` or ``(H, W, C)``; required when the images are given flattened.
    return_indices : bool, default=False
        Also return the (sorted) indices into ``X_train`` of the poisoned points.
    **trigger_params
        Passed to :func:`~backdoor_curves.attacks.triggers.make_trigger` (e.g. ``size``,
        ``intensity``)
        when ``trigger`` is a name.

    Returns
    -------
    data : BackdoorData
        D = the ``n - n_poison`` untouched points (original order); P = the poisoned points
        triggered and relabelled to the other class (increasing index order); V = the clean test
        set; V_t = every test point triggered and relabelled. Features are flattened pixels
        (``n_features = H * W * C``) and ``data.image_shape`` is set.
    poison_indices : ndarray of int64, shape (n_poison,)
        Only when ``return_indices`` is true.

    Raises
    ------
    ValueError
        Naming the argument: images with NaN/inf, values outside [0, 1] or inconsistent shapes,
        mismatched lengths, ``y_train`` without exactly two classes, test labels outside them,
        ``fraction`` outside (0, 1) or so small that P would be empty, or a trigger larger than
        the image.
    TypeError
        For arguments of the wrong kind and unknown trigger parameters.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.random((20, 5, 5)), np.repeat(["a", "b"], 10)
    >>> data, idx = poison(X, y, X[:4], y[:4], fraction=0.25, size=2, return_indices=True)
    >>> data.n_clean, data.n_poison, data.image_shape
    (15, 5, (5, 5))
    """
    image_shape = _check_image_shape(image_shape)
    images = _as_images(X_train, "X_train", image_shape)
    test_images = _as_images(X_test, "X_test", image_shape)
    if test_images.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"X_test images have shape {test_images.shape[1:]}, but X_train images have shape "
            f"{images.shape[1:]}"
        )
    if images.shape[0] == 0:
        raise ValueError("X_train must contain at least one image")
    if test_images.shape[0] == 0:
        raise ValueError("X_test must contain at least one image")

    y = check_vector(y_train, "y_train")
    check_same_length(images, y, "X_train", "y_train")
    classes = np.unique(y)
    if classes.size != 2:
        raise ValueError(
            f"y_train must contain exactly two classes (binary task), got {classes.size}: "
            f"{classes.tolist()[:10]}"
        )
    y_te = check_vector(y_test, "y_test")
    check_same_length(test_images, y_te, "X_test", "y_test")
    unknown = ~np.isin(y_te, classes)
    if np.any(unknown):
        raise ValueError(
            f"y_test has labels {np.unique(y_te[unknown]).tolist()[:10]} that are not among "
            f"y_train's classes {classes.tolist()}"
        )

    fraction = check_fraction(fraction, "fraction")
    n = images.shape[0]
    n_poison = n_poison_points(fraction, n)
    if n_poison == 0:
        raise ValueError(
            f"fraction={fraction!r} of {n} training points is {fraction * n:.3g} < 1: the "
            "poisoning set would be empty"
        )
    trig = _check_trigger(trigger, trigger_params)
    idx = choose_poison_indices(n, n_poison, random_state)
    keep = np.ones(n, dtype=bool)
    keep[idx] = False
    missing = np.setdiff1d(classes, y[keep])
    if missing.size:
        raise ValueError(
            f"fraction={fraction!r} poisons every training point of class {missing.tolist()}: "
            "the clean set D needs both classes"
        )

    X_poison = _triggered(trig, images[idx], y[idx], classes, "poisoned training")
    X_test_bd = _triggered(trig, test_images, y_te, classes, "test")
    flat = int(np.prod(images.shape[1:]))
    data = BackdoorData(
        images[keep].reshape(-1, flat),
        y[keep],
        X_poison.reshape(-1, flat),
        flip_labels(y[idx], classes),
        test_images.reshape(-1, flat),
        y_te.copy(),
        X_test_bd.reshape(-1, flat),
        flip_labels(y_te, classes),
        image_shape=images.shape[1:],
    )
    if return_indices:
        return data, idx
    return data
