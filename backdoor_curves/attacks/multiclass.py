"""Poison a k-class image training set in place: all-to-one and all-to-all backdoors (DESIGN §4).

Given n training images with labels in ``0..k-1`` (or labels of another kind, e.g. strings:
class i is then the i-th of the sorted labels, ``data.classes[i]``) and a poisoning fraction
p, ``n_poison = floor(p * n)`` of them (a fraction of the *whole* training set) are chosen
uniformly at random without replacement among the eligible points, and each is replaced by its
triggered copy with the attacker's label:

- **all-to-one** (target t): every poisoned point gets label t. With ``exclude_target`` (the
  default) only points whose true class is not t are eligible, so every poisoned point changes
  label; otherwise every point is eligible and a poisoned point of class t keeps its label but
  carries the trigger.
- **all-to-all**: a poisoned point of class c gets label ``(c + 1) % k``; every point is eligible.

The result is an :class:`~backdoor_curves.data.ImageBackdoorData`: one training array with the
boolean mask of the poisoned rows and the labels before poisoning, the clean test set V and the
backdoor test set V_t (all-to-one: the triggered test images whose true class is not t, labelled
t; all-to-all: every test image triggered and labelled ``(c + 1) % k``). The count, the seeded
choice of points, the label shift and the (chunked) triggering are those of
:mod:`~backdoor_curves.attacks.poisoning`, with the triggers of
:mod:`~backdoor_curves.attacks.triggers` (a trigger sees the true source labels and the classes
``0..k-1``, so BadNets stamps one patch per source class).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._validation import (
    check_choice,
    check_labels,
    check_same_length,
    encode_labels,
    show_value,
)
from ..data import MODES, ImageBackdoorData, check_class_labels
from .poisoning import (
    _check_image_sets,
    _check_poison_count,
    _check_trigger,
    _triggered,
    choose_poison_indices,
    flip_labels,
)
from .triggers import Trigger

__all__ = ["poison_multiclass"]


def _check_target(target, k: int) -> int:
    if isinstance(target, bool | np.bool_) or not isinstance(target, numbers.Integral):
        raise TypeError(f"target must be an int (a class of y_train), got {show_value(target)}")
    if not 0 <= target < k:
        raise ValueError(f"target={target} is not a class of y_train: its classes are 0..{k - 1}")
    return int(target)


def _check_target_label(target, classes: np.ndarray) -> int:
    """The index in ``classes`` (labels that are not class indices) of the label ``target``."""
    if isinstance(target, np.generic):
        target = target.item()
    if not isinstance(target, str | numbers.Real):
        raise TypeError(
            f"target must be one of y_train's labels {classes.tolist()[:20]}, got "
            f"{show_value(target)}"
        )
    labels = classes.tolist()
    if target not in labels:
        raise ValueError(
            f"target={show_value(target)} is not a class of y_train: its classes are {labels[:20]}"
        )
    return labels.index(target)


def _encode_train_labels(y_train, y_test):
    """Class indices of the training and test labels, k, and the classes' labels (None: the
    labels are the indices ``0..k-1`` themselves)."""
    labels = check_labels(y_train, "y_train")
    if np.issubdtype(labels.dtype, np.integer):
        y = check_class_labels(labels, "y_train")
        k = int(y.max()) + 1
        if k < 2:
            raise ValueError("y_train must contain at least two classes, got only class 0")
        missing = np.flatnonzero(np.bincount(y, minlength=k) == 0)
        if missing.size:
            raise ValueError(
                f"y_train must hold every class 0..{k - 1} (labels are class indices), but "
                f"classes {missing.tolist()[:10]} have no training point"
            )
        return y, check_class_labels(y_test, "y_test", k), k, None
    classes = np.unique(labels)  # strings, booleans, floats: class i is the i-th sorted label
    if classes.size < 2:
        raise ValueError(f"y_train must contain at least two classes, got only {classes.tolist()}")
    y = encode_labels(labels, classes, "y_train").astype(np.int64)
    what = f"y_train's classes {classes.tolist()[:20]}"
    y_te = encode_labels(check_labels(y_test, "y_test"), classes, "y_test", what)
    return y, y_te.astype(np.int64), int(classes.size), classes


def poison_multiclass(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    mode: str = "all-to-one",
    target: int | None = 0,
    fraction: float = 0.1,
    trigger: str | Trigger = "badnets",
    exclude_target: bool = True,
    random_state: int | np.random.Generator | None = 0,
    chunk_size: int | None = None,
    **trigger_params: Any,
) -> ImageBackdoorData:
    """Poison a fraction of a k-class image training set in place (all-to-one or all-to-all).

    The caller's arrays are not modified: the training images are copied to float32 and the
    chosen rows of the copy replaced by their triggered versions (the trigger is applied to the
    float32 images).

    Parameters
    ----------
    X_train : array-like of shape (n, H, W) or (n, H, W, C)
        Training images, channels last, with pixel intensities in [0, 1] (any real dtype).
    y_train : array-like of shape (n,)
        Training labels in any form scikit-learn accepts (numpy, pandas Series of any label
        dtype, lists). Integers are class indices ``0..k-1``, every class present (k =
        ``max(y_train) + 1`` >= 2). Labels of another kind (strings, booleans, floats) are
        class names: class i is the i-th of the k >= 2 sorted distinct labels, and the result's
        ``classes`` holds them.
    X_test : array-like of shape (n_test, H, W) or (n_test, H, W, C)
        Test images of the same image shape.
    y_test : array-like of shape (n_test,)
        Test labels: in ``0..k-1``, or among ``y_train``'s labels.
    mode : {"all-to-one", "all-to-all"}, default="all-to-one"
        The attack: every poisoned point to ``target``, or class c to ``(c + 1) % k``.
    target : int, str or None, default=0
        The target class (all-to-one): a class index, or one of the labels when they are not
        integers (e.g. ``"cat"``; the result's ``target`` is its index in ``classes``). Not used
        in all-to-all mode (the result's ``target`` is None), but checked when given (except
        the default 0 for labels that are not integers).
    fraction : float, default=0.1
        Poisoning fraction p in (0, 1) of the whole training set: ``n_poison = floor(p * n +
        1e-9)`` points are poisoned.
    trigger : str or trigger object, default="badnets"
        A name of :data:`~backdoor_curves.attacks.triggers.TRIGGERS` (built by
        :func:`~backdoor_curves.attacks.triggers.make_trigger`: "badnets", "invisible", "blend",
        ...) or an object with ``apply(images, source_labels, classes)``; it is called with the true
        labels of the images and ``classes = np.arange(k)``.
    exclude_target : bool, default=True
        All-to-one only: draw the poisoned points from the classes other than ``target``. False:
        from every class. Not used in all-to-all mode.
    random_state : int, Generator or None, default=0
        Seed of ``np.random.default_rng`` that chooses the poisoned points
        (:func:`~backdoor_curves.attacks.poisoning.choose_poison_indices` over the eligible
        points): the same seed gives the same arrays.
    chunk_size : int, optional
        Images passed to the trigger at a time (bounds the trigger's float64 copy for large
        images); None: all at once. The built-in triggers' result does not depend on it.
    **trigger_params
        Passed to :func:`~backdoor_curves.attacks.triggers.make_trigger` (e.g. ``size``,
        ``intensity``, ``alpha``) when ``trigger`` is a name.

    Returns
    -------
    ImageBackdoorData
        The poisoned training set (float32 images, the poisoned mask, the labels after and before
        poisoning), the clean test set (a float32 copy), the backdoor test set, ``n_classes`` = k,
        ``target`` (None in all-to-all mode), ``mode`` and ``classes``. Labels are class
        indices; ``classes[i]`` is the user's label of class i (``0..k-1`` for integer labels).

    Raises
    ------
    ValueError
        Naming the argument: images that are not (n, H, W) or (n, H, W, C) arrays in [0, 1] or
        whose test and training shapes differ; mismatched lengths; ``y_train`` with fewer than two
        classes or a class of ``0..k-1`` missing; ``y_test`` labels outside ``0..k-1`` or
        ``y_train``'s labels (naming them); an unknown ``mode`` or trigger name; a ``target``
        that is not a class; ``fraction`` outside (0, 1), so small that no point is poisoned or
        so large that there are not enough eligible points or no clean point is left; all-to-one
        test labels that are all the target (V_t would be empty); a ``chunk_size`` below 1; a
        trigger larger than the image.
    TypeError
        Naming the argument: images that do not hold numbers, labels of no label kind (mixed
        strings and numbers, missing values), a ``target`` that is not an int (integer labels)
        or a label, a ``chunk_size`` that is not an int, an ``exclude_target`` that is not a
        bool, a ``mode`` that is not a string, a bad ``random_state``, and unknown trigger
        parameters.

    See Also
    --------
    backdoor_curves.attacks.poisoning.poison_images : The two-class attack (D and P apart).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.random((30, 6, 6)).astype(np.float32), np.arange(30) % 3
    >>> data = poison_multiclass(X, y, X[:6], y[:6], target=2, fraction=0.2, size=2)
    >>> data.n_poison, sorted(set(data.y_source[data.poisoned].tolist())), data.y_test_bd.tolist()
    (6, [0, 1], [2, 2, 2, 2])
    >>> a2a = poison_multiclass(X, y, X[:6], y[:6], mode="all-to-all", fraction=0.2, size=2)
    >>> bool(np.all(a2a.y_train[a2a.poisoned] == (a2a.y_source[a2a.poisoned] + 1) % 3))
    True
    >>> names = np.array(["cat", "dog", "frog"])[y]
    >>> named = poison_multiclass(X, names, X[:6], names[:6], target="frog", fraction=0.2, size=2)
    >>> named.target, named.classes[named.y_test_bd].tolist()
    (2, ['frog', 'frog', 'frog', 'frog'])
    """
    images, test_images = _check_image_sets(X_train, X_test, chunk_size)
    mode = check_choice(mode, "mode", MODES)

    y, y_te, k, names = _encode_train_labels(y_train, y_test)
    check_same_length(images, y, "X_train", "y_train")
    check_same_length(test_images, y_te, "X_test", "y_test")
    if not isinstance(exclude_target, bool | np.bool_):
        raise TypeError(f"exclude_target must be a bool, got {show_value(exclude_target)}")
    if names is None and (mode == "all-to-one" or target is not None):
        target = _check_target(target, k)
    elif names is not None and (mode == "all-to-one" or not _is_default(target)):
        target = _check_target_label(target, names)
    if mode == "all-to-all":
        target = None
    shown = target if names is None or target is None else show_value(names[target])

    n = y.shape[0]
    fraction, n_poison = _check_poison_count(fraction, n)
    if target is not None and exclude_target:
        eligible = np.flatnonzero(y != target)
        if n_poison > eligible.size:
            raise ValueError(
                f"fraction={fraction!r} asks for {n_poison} poisoned points, but only "
                f"{eligible.size} training points are outside the target class {shown} "
                "(exclude_target=True)"
            )
    else:
        eligible = np.arange(n)
    if n_poison == n:
        raise ValueError(
            f"fraction={fraction!r} poisons all {n} training points: no clean point is left"
        )
    if target is None:
        test_rows = np.arange(y_te.shape[0])
    else:
        test_rows = np.flatnonzero(y_te != target)
        if test_rows.size == 0:
            raise ValueError(
                f"y_test holds only the target class {shown}: the backdoor test set (test "
                "images of the other classes) would be empty"
            )
    trig = _check_trigger(trigger, trigger_params)

    idx = eligible[choose_poison_indices(eligible.size, n_poison, random_state)]
    classes = np.arange(k)
    X = np.array(images, dtype=np.float32)  # a copy: the caller's images stay as they are
    X[idx] = _triggered(trig, X[idx], y[idx], classes, "poisoned training", chunk_size)
    y_new = y.copy()
    y_new[idx] = flip_labels(y[idx], classes) if target is None else target
    poisoned = np.zeros(n, dtype=bool)
    poisoned[idx] = True

    X_te = np.array(test_images, dtype=np.float32)
    X_test_bd = _triggered(trig, X_te[test_rows], y_te[test_rows], classes, "test", chunk_size)
    if target is None:
        y_test_bd = flip_labels(y_te, classes)
    else:
        y_test_bd = np.full(test_rows.size, target, dtype=np.int64)
    return ImageBackdoorData(
        X, y_new, poisoned, y,
        X_te, y_te, X_test_bd, y_test_bd,
        n_classes=k, target=target, mode=mode, classes=names,
    )  # fmt: skip


def _is_default(target) -> bool:
    """Whether ``target`` is the default 0 (or None): not checked in all-to-all mode against
    labels that are not integers."""
    if target is None:
        return True
    is_int = isinstance(target, numbers.Integral) and not isinstance(target, bool | np.bool_)
    return is_int and target == 0
