"""Poison a two-class image data set in place and build the four sets D, P, V, V_t (DESIGN §3).

Given n training images and a poisoning fraction p, ``n_poison = floor(p * n)`` of them are chosen
uniformly at random without replacement. Those points *leave* the clean set: D keeps the other
``n - n_poison`` points in their original order, and P holds the chosen points with the trigger
applied (source class = their true label) and the *other* class's label, in increasing index order.
Hence ``|P| = p (|D| + |P|)`` up to the floor. The clean test set V is the test set as given;
the backdoor test set V_t is every test image triggered and relabelled to the other class.

:func:`poison_images` does this once, on image arrays of any real dtype (float32 images stay
float32; nothing is converted to float64 as a whole, and the trigger can be applied in chunks), and
returns the four image sets (:class:`PoisonedImages`). :func:`poison` checks and converts its input,
calls it and flattens the images into a :class:`~backdoor_curves.data.BackdoorData`; the
``extractors`` package calls it too and extracts CNN features from the images instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import (
    check_fraction,
    check_labels,
    check_random_state,
    check_same_length,
    encode_labels,
    show_value,
)
from ..data import BackdoorData, check_image_array
from .triggers import Trigger, check_images, make_trigger

__all__ = [
    "poison",
    "poison_images",
    "PoisonedImages",
    "flip_labels",
    "choose_poison_indices",
    "n_poison_points",
]

_FLOOR_SLACK = 1e-9  # so that e.g. 0.1 * 30 = 3.0000000000000004 -> 3 and 0.7 * 10 -> 7, not 6


# ---------------------------------------------------------------------------- pure helpers
def n_poison_points(fraction: float, n: int) -> int:
    """Number of poisoned points, ``floor(fraction * n + 1e-9)``.

    The tiny slack absorbs floating-point error in products such as ``0.7 * 10 = 6.999...``.

    Parameters
    ----------
    fraction : float
        Poisoning fraction p (not checked here; :func:`poison` requires it in (0, 1)).
    n : int
        Number of training points.

    Returns
    -------
    int
        The number of points to poison; 0 when ``fraction * n < 1``.
    """
    return int(math.floor(fraction * n + _FLOOR_SLACK))


def choose_poison_indices(n: int, n_poison: int, random_state=0) -> np.ndarray:
    """Sorted indices of ``n_poison`` distinct points out of ``n``, uniformly at random.

    Uses ``np.random.default_rng(random_state).choice(n, n_poison, replace=False)``, so the same
    seed always poisons the same points.

    Parameters
    ----------
    n : int
        Number of points to choose from.
    n_poison : int
        Number of points to choose, 0 <= ``n_poison`` <= ``n``.
    random_state : int, Generator or None, default=0
        A non-negative seed, a Generator (used as it is, so its state advances) or None (fresh
        entropy: not reproducible).

    Returns
    -------
    ndarray of int64, shape (n_poison,)
        The chosen indices, strictly increasing.

    Raises
    ------
    TypeError
        If ``random_state`` is not None, an int or a Generator.
    ValueError
        If ``random_state`` is negative or ``n_poison`` exceeds ``n``.
    """
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n, size=n_poison, replace=False)).astype(np.int64)


def flip_labels(y, classes) -> np.ndarray:
    """Shift each label to the next class: ``classes[i] -> classes[(i + 1) % k]``.

    With two classes this swaps them (``classes[0] -> classes[1]`` and ``classes[1] ->
    classes[0]``), the two-class attack of :func:`poison`; with k classes it is the all-to-all
    attack ``c -> c + 1 mod k`` of :func:`~backdoor_curves.attacks.multiclass.poison_multiclass`
    (``classes = np.arange(k)``).

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels, each one of ``classes``, in any form
        :func:`~backdoor_curves._validation.check_labels` accepts (e.g. a pandas column).
    classes : array-like of shape (k,)
        The k >= 2 distinct labels, in the order of the cycle.

    Returns
    -------
    ndarray of shape (n,), same dtype as ``classes``
        The next class of each label.

    Raises
    ------
    TypeError
        Naming ``y`` or ``classes`` if it holds no labels (see ``check_labels``).
    ValueError
        Naming ``classes`` if it holds fewer than two labels or repeats one; naming ``y`` and
        the unknown labels if a label is not in ``classes``.

    Examples
    --------
    >>> flip_labels([3, 7, 7], [3, 7]).tolist()
    [7, 3, 3]
    >>> flip_labels([0, 1, 2, 2], [0, 1, 2]).tolist()
    [1, 2, 0, 0]
    """
    y = check_labels(y, "y", allow_empty=True)
    classes = check_labels(classes, "classes", allow_empty=True)
    if classes.size < 2:
        raise ValueError(f"classes must hold at least two labels, got {classes.tolist()}")
    k = classes.size
    if np.unique(classes).size != k:
        raise ValueError(f"classes must not repeat a label, got {classes.tolist()[:20]}")
    codes = encode_labels(y, classes, "y", f"classes {classes.tolist()[:20]}")
    return classes[(codes + 1) % k]


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


def _check_chunk_size(chunk_size) -> None:
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral)
    ):
        raise TypeError(f"chunk_size must be an int or None, got {show_value(chunk_size)}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")


def _check_same_image_shape(images: np.ndarray, test_images: np.ndarray) -> None:
    if test_images.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"X_test images have shape {test_images.shape[1:]}, but X_train images have shape "
            f"{images.shape[1:]}"
        )


def _check_image_sets(X_train, X_test, chunk_size) -> tuple[np.ndarray, np.ndarray]:
    """Training and test image arrays of one image shape, after checking ``chunk_size`` too."""
    images = check_image_array(X_train, "X_train")
    test_images = check_image_array(X_test, "X_test")
    _check_same_image_shape(images, test_images)
    _check_chunk_size(chunk_size)
    return images, test_images


def _check_poison_count(fraction, n: int) -> tuple[float, int]:
    """The checked ``fraction`` and the number of points it poisons out of ``n`` (at least 1)."""
    fraction = check_fraction(fraction, "fraction")
    n_poison = n_poison_points(fraction, n)
    if n_poison == 0:
        raise ValueError(
            f"fraction={fraction!r} of {n} training points is {fraction * n:.3g} < 1: the "
            "poisoning set would be empty"
        )
    return fraction, n_poison


def _triggered(
    trigger: Trigger, images, labels, classes, what: str, chunk_size: int | None
) -> np.ndarray:
    """``trigger`` applied to ``images``, ``chunk_size`` at a time, in the images' float dtype."""
    out = np.empty(images.shape, dtype=np.result_type(images.dtype, np.float32))
    step = len(images) if chunk_size is None else chunk_size
    for start in range(0, len(images), max(step, 1)):
        part = images[start : start + step]
        stamped = np.asarray(trigger.apply(part, labels[start : start + step], classes))
        if stamped.shape != part.shape:
            raise ValueError(
                f"trigger returned shape {stamped.shape} for the {what} images of shape "
                f"{part.shape}"
            )
        out[start : start + step] = stamped
    return out


# ---------------------------------------------------------------------------- image sets
@dataclass(frozen=True, eq=False)
class PoisonedImages:
    """The images of D, P, V and V_t, before they are flattened or turned into features.

    Returned by :func:`poison_images`. Images keep the input's float dtype (float32 stays float32;
    integer or boolean images become float32 or float64 as numpy promotes them with float32).

    Attributes
    ----------
    X_clean : ndarray of shape (n - n_poison, H, W) or (n - n_poison, H, W, C)
        D: the training images that were not poisoned, in their original order.
    y_clean : ndarray of shape (n - n_poison,)
        Their labels.
    X_poison : ndarray of shape (n_poison, H, W) or (n_poison, H, W, C)
        P: the poisoned training images, triggered, in increasing index order.
    y_poison : ndarray of shape (n_poison,)
        The other class of each poisoned image's true label.
    X_test : ndarray of shape (n_test, H, W) or (n_test, H, W, C)
        V: the test images as given (not copied).
    y_test : ndarray of shape (n_test,)
        Their labels.
    X_test_bd : ndarray of shape (n_test, H, W) or (n_test, H, W, C)
        V_t: every test image triggered.
    y_test_bd : ndarray of shape (n_test,)
        The other class of each test label.
    poison_indices : ndarray of int64, shape (n_poison,)
        Indices into the training set of the poisoned images, strictly increasing.
    """

    X_clean: np.ndarray
    y_clean: np.ndarray
    X_poison: np.ndarray
    y_poison: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_test_bd: np.ndarray
    y_test_bd: np.ndarray
    poison_indices: np.ndarray

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``(H, W)`` or ``(H, W, C)``."""
        return tuple(self.X_clean.shape[1:])

    def to_backdoor_data(self, features: Callable[[np.ndarray], Any] | None = None) -> BackdoorData:
        """The four sets as a BackdoorData: flattened pixels, or the features of the images.

        Parameters
        ----------
        features : callable, optional
            Maps an image array (n, H, W[, C]) to a feature matrix (n, n_features), e.g. a
            feature extractor's ``transform``; it is called on D, P, V and V_t, in that order.
            None: the flattened pixels (``n_features = H * W * C``).

        Returns
        -------
        BackdoorData
            With ``image_shape`` set for flattened pixels, None for features.
        """
        sets = (self.X_clean, self.X_poison, self.X_test, self.X_test_bd)
        if features is None:
            flat = int(np.prod(self.image_shape))
            X = [s.reshape(len(s), flat) for s in sets]
            image_shape = self.image_shape
        else:
            X = [features(s) for s in sets]
            image_shape = None
        return BackdoorData(
            X[0], self.y_clean, X[1], self.y_poison,
            X[2], self.y_test, X[3], self.y_test_bd,
            image_shape=image_shape,
        )  # fmt: skip


def poison_images(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    trigger: str | Trigger = "badnets",
    fraction: float = 0.1,
    random_state: int | np.random.Generator | None = 0,
    chunk_size: int | None = None,
    **trigger_params: Any,
) -> PoisonedImages:
    """Choose, trigger and relabel a fraction of a two-class image training set: D, P, V, V_t.

    The images are neither copied nor converted as a whole: D is a selection of ``X_train``, V is
    ``X_test`` itself, and only P and V_t are new arrays (the trigger's output in the images'
    float dtype). This is the one implementation of poisoning; :func:`poison` calls it.

    Parameters
    ----------
    X_train : array-like of shape (n, H, W) or (n, H, W, C)
        Training images with pixel intensities in [0, 1] (any real dtype).
    y_train : array-like of shape (n,)
        Training labels: exactly two distinct values of any type (ints, strings, ...).
    X_test : array-like of shape (n_test, H, W) or (n_test, H, W, C)
        Test images of the same image shape.
    y_test : array-like of shape (n_test,)
        Test labels, each one of ``y_train``'s classes.
    trigger : str or trigger object, default="badnets"
        A name of :data:`~backdoor_curves.attacks.triggers.TRIGGERS` (built by
        :func:`~backdoor_curves.attacks.triggers.make_trigger`: "badnets", "invisible", "blend",
        ...) or an object with ``apply(images, source_labels, classes)``.
    fraction : float, default=0.1
        Poisoning fraction p in (0, 1); ``n_poison = floor(p * n + 1e-9)`` points are poisoned.
    random_state : int, Generator or None, default=0
        Seed of ``np.random.default_rng`` that chooses the poisoned points.
    chunk_size : int, optional
        Images passed to ``trigger.apply`` at a time (the built-in triggers make a float64 copy of
        what they are given; chunks bound that memory for large images). None: all at once. The
        built-in triggers stamp each image on its own, so their result does not depend on it.
    **trigger_params
        Passed to :func:`~backdoor_curves.attacks.triggers.make_trigger` (e.g. ``size``,
        ``intensity``, ``alpha``) when ``trigger`` is a name.

    Returns
    -------
    PoisonedImages
        D, P, V and V_t as images with their labels, and the indices of the poisoned points.

    Raises
    ------
    ValueError
        Naming the argument: images with NaN/inf, values outside [0, 1] or inconsistent shapes,
        mismatched lengths, ``y_train`` without exactly two classes, test labels outside them,
        ``fraction`` outside (0, 1), so small that P would be empty or so large that D loses a
        class, a ``chunk_size`` below 1, or a trigger larger than the image.
    TypeError
        For arguments of the wrong kind and unknown trigger parameters.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.random((20, 5, 5)).astype(np.float32), np.repeat(["a", "b"], 10)
    >>> sets = poison_images(X, y, X[:4], y[:4], fraction=0.25, size=2, chunk_size=8)
    >>> sets.X_poison.shape, sets.X_poison.dtype, sets.poison_indices.tolist()
    ((5, 5, 5), dtype('float32'), [5, 6, 9, 10, 13])
    """
    images, test_images = _check_image_sets(X_train, X_test, chunk_size)

    y = check_labels(y_train, "y_train")
    check_same_length(images, y, "X_train", "y_train")
    classes = np.unique(y)
    if classes.size != 2:
        raise ValueError(
            f"y_train must contain exactly two classes (binary task), got {classes.size}: "
            f"{classes.tolist()[:10]}"
        )
    y_te = check_labels(y_test, "y_test")
    check_same_length(test_images, y_te, "X_test", "y_test")
    encode_labels(y_te, classes, "y_test", f"y_train's classes {classes.tolist()}")

    n = images.shape[0]
    fraction, n_poison = _check_poison_count(fraction, n)
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

    X_poison = _triggered(trig, images[idx], y[idx], classes, "poisoned training", chunk_size)
    X_test_bd = _triggered(trig, test_images, y_te, classes, "test", chunk_size)
    return PoisonedImages(
        images[keep], y[keep], X_poison, flip_labels(y[idx], classes),
        test_images, y_te.copy(), X_test_bd, flip_labels(y_te, classes),
        idx,
    )  # fmt: skip


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
        A name of :data:`~backdoor_curves.attacks.triggers.TRIGGERS` (built by
        :func:`~backdoor_curves.attacks.triggers.make_trigger`: "badnets", "invisible", "blend",
        ...) or an object with ``apply(images, source_labels, classes)``.
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
        ``intensity``, ``alpha``) when ``trigger`` is a name.

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
    _check_same_image_shape(images, test_images)
    if images.shape[0] == 0:
        raise ValueError("X_train must contain at least one image")
    if test_images.shape[0] == 0:
        raise ValueError("X_test must contain at least one image")
    sets = poison_images(
        images, y_train, test_images, y_test,
        trigger=trigger, fraction=fraction, random_state=random_state, **trigger_params,
    )  # fmt: skip
    data = sets.to_backdoor_data()
    if return_indices:
        return data, sets.poison_indices
    return data
