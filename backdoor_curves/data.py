"""The containers every curve, slope and study takes: clean, poisoning and test sets.

Notation (DESIGN §3): D is the clean training set, P the poisoning set (triggered inputs with the
attacker's labels), V the clean test set and V_t the backdoor test set (triggered test inputs with
the attacker's labels). The learners see D with sample weight 1 and P with weight ``beta``.

:class:`BackdoorData` holds a two-class task as feature matrices, D and P apart (the convex
learners). :class:`ImageBackdoorData` holds a k-class image task for neural networks: one training
array poisoned in place, with an explicit boolean mask of P (DESIGN §4 and §7).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._validation import (
    check_betas,
    check_choice,
    check_int,
    check_labels,
    check_matrix,
    check_random_state,
    check_real_array,
    check_same_length,
    encode_labels,
    encode_signs,
    show_value,
)

__all__ = ["BackdoorData", "ImageBackdoorData"]

#: The two multi-class attacks: every source class to one target, or each class c to c + 1 mod k.
MODES = ("all-to-one", "all-to-all")


_FEATURES = ("X_clean", "X_poison", "X_test", "X_test_bd")
_LABELS = ("y_clean", "y_poison", "y_test", "y_test_bd")


class BackdoorData:
    """Clean training set D, poisoning set P, clean test set V and backdoor test set V_t.

    Any two label values are accepted, in any form scikit-learn accepts: numpy arrays of numbers,
    booleans or strings, object arrays of strings, pandas Series (strings, ``category``,
    booleans, integers), lists. They are kept as given (``classes``, ``y_clean``, ... hold the
    user's own values); internally they are sorted, as scikit-learn does, and the second one is
    encoded as +1, the first as -1. The four feature matrices are kept as read-only float64
    copies, which fits, kernels and slopes then share without copying them again.

    Parameters
    ----------
    X_clean, y_clean : array-like of shape (n_clean, n_features), (n_clean,)
        Clean training set D. It must contain both classes.
    X_poison, y_poison : array-like of shape (n_poison, n_features), (n_poison,)
        Poisoning set P: triggered inputs with the attacker's labels. Must not be empty.
    X_test, y_test : array-like of shape (n_test, n_features), (n_test,)
        Clean test set V.
    X_test_bd, y_test_bd : array-like of shape (n_test_bd, n_features), (n_test_bd,)
        Backdoor test set V_t: triggered test inputs with the attacker's labels.
    image_shape : tuple of int, optional
        Shape of one image when the features are flattened pixels (for plots only).

    Attributes
    ----------
    classes : ndarray of shape (2,)
        The two labels, sorted; ``classes[1]`` is encoded as +1.
    n_clean, n_poison, n_features : int
        Sizes of D, P and the feature dimension.

    Raises
    ------
    TypeError
        Naming the argument, if an array is None, sparse, or not numbers (labels: numbers,
        booleans or strings of one kind, without missing values), or ``image_shape`` is not a
        tuple of ints.
    ValueError
        Naming the argument, for a wrong shape, NaN/inf, a feature count that differs from
        ``X_clean``'s, labels and inputs of different lengths, an empty P, ``y_clean`` without
        exactly two classes, a label outside ``y_clean``'s classes, or an ``image_shape`` that
        does not hold ``n_features`` values (or holds a size below 1).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = np.where(X[:, 0] > 0, "cat", "dog")
    >>> data = BackdoorData(X[:30], y[:30], X[30:35] + 2, np.full(5, "cat"),
    ...                     X[35:], y[35:], X[35:] + 2, np.full(5, "cat"))
    >>> data.classes.tolist(), data.n_clean, data.n_poison
    (['cat', 'dog'], 30, 5)
    """

    #: The eight arrays, in the constructor's order.
    ARRAYS = (
        "X_clean",
        "y_clean",
        "X_poison",
        "y_poison",
        "X_test",
        "y_test",
        "X_test_bd",
        "y_test_bd",
    )

    def __init__(
        self,
        X_clean,
        y_clean,
        X_poison,
        y_poison,
        X_test,
        y_test,
        X_test_bd,
        y_test_bd,
        *,
        image_shape: tuple[int, ...] | None = None,
    ):
        self.X_clean = check_matrix(X_clean, "X_clean")
        d = self.X_clean.shape[1]
        self.X_poison = check_matrix(X_poison, "X_poison", n_features=d, allow_empty=True)
        if self.X_poison.shape[0] == 0:
            raise ValueError("X_poison is empty: the poisoning set P needs at least one sample")
        self.X_test = check_matrix(X_test, "X_test", n_features=d)
        self.X_test_bd = check_matrix(X_test_bd, "X_test_bd", n_features=d)

        labels = {}
        for name, X, y in [
            ("y_clean", self.X_clean, y_clean),
            ("y_poison", self.X_poison, y_poison),
            ("y_test", self.X_test, y_test),
            ("y_test_bd", self.X_test_bd, y_test_bd),
        ]:
            y = check_labels(y, name)
            check_same_length(X, y, "X_" + name[2:], name)
            labels[name] = y

        classes = np.unique(labels["y_clean"])
        if classes.size != 2:
            raise ValueError(
                f"y_clean must contain exactly two classes (binary task), got {classes.size}: "
                f"{classes.tolist()[:10]}"
            )
        for name, y in labels.items():
            what = f"y_clean's classes {classes.tolist()}: more than two classes are not supported"
            encode_labels(y, classes, name, what)
        self.classes = classes
        for name, y in labels.items():
            setattr(self, name, np.array(y))  # our own copy: it is made read-only below
        self.image_shape = _check_image_shape(image_shape, d)
        self._freeze()

    def _freeze(self) -> None:
        """Make the eight arrays (our own copies) read-only: fits, kernels and encodings share
        them, and what is computed from them, without copies."""
        for name in (*_FEATURES, *_LABELS):
            getattr(self, name).flags.writeable = False

    def __getstate__(self) -> dict:
        """The attributes without the stacked X_train (a worker stacks its own once)."""
        state = dict(self.__dict__)
        state.pop("_X_train", None)
        state.pop("_y_train", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._freeze()

    def _stacked(self, key: str, first: np.ndarray, second: np.ndarray, stack) -> np.ndarray:
        """``stack([first, second])``, read-only, kept under ``key`` while both are the same."""
        cached = self.__dict__.get(key)
        if cached is None or cached[0] is not first or cached[1] is not second:
            both = stack([first, second])
            both.flags.writeable = False  # shared by every caller: stacked once per data set
            self.__dict__[key] = cached = (first, second, both)
        return cached[2]

    # ------------------------------------------------------------------ sizes and encodings
    @property
    def n_clean(self) -> int:
        return self.X_clean.shape[0]

    @property
    def n_poison(self) -> int:
        return self.X_poison.shape[0]

    @property
    def n_features(self) -> int:
        return self.X_clean.shape[1]

    def encode(self, y, name: str = "y") -> np.ndarray:
        """Map labels to {-1.0, +1.0} (``classes[1]`` -> +1, ``classes[0]`` -> -1).

        Parameters
        ----------
        y : array-like of shape (n,)
            Labels from ``classes``, in any form the constructor accepts (e.g. a pandas
            column).
        name : str, default="y"
            Argument name used in error messages.

        Returns
        -------
        ndarray of float64, shape (n,)
            +1.0 where ``y == classes[1]``, -1.0 where ``y == classes[0]``.

        Raises
        ------
        TypeError
            Naming ``name``, for labels of no label kind (see the constructor).
        ValueError
            Naming ``name`` and the unknown labels, if ``y`` holds a label outside ``classes``.
        """
        return encode_signs(y, self.classes, name, f"classes {self.classes.tolist()}")

    @property
    def X_train(self) -> np.ndarray:
        """D followed by P, shape (n_clean + n_poison, n_features).

        The order is fixed, D's rows first and P's last (``poison_mask`` marks them), because the
        exact paths and the deviation vectors are laid out on it. Do not cross-validate on it as
        it is: unshuffled K-fold would put every poisoned point in the last fold; use
        :meth:`training_set`, which shuffles. Stacked once and shared (read-only) while
        ``X_clean`` and ``X_poison`` are the same arrays.
        """
        return self._stacked("_X_train", self.X_clean, self.X_poison, np.vstack)

    @property
    def y_train(self) -> np.ndarray:
        """Labels of D followed by those of P (the fixed order of ``X_train``, P last).

        For cross-validation use :meth:`training_set`, which shuffles the rows.
        """
        return self._stacked("_y_train", self.y_clean, self.y_poison, np.concatenate)

    def training_set(self, beta: float = 1.0, *, shuffle: bool = True, random_state=0):
        """The training set D + P with its sample weights, shuffled, for scikit-learn tools.

        ``X_train`` keeps D first and P last; a ``KFold`` without shuffling would then put every
        poisoned point in the last fold. This returns the same rows in a seeded random order
        (``np.random.default_rng(random_state).permutation``), ready for ``cross_val_score``,
        ``GridSearchCV`` and the like (pass the weights as ``params={"sample_weight": w}``).

        Parameters
        ----------
        beta : float in [0, 1], default=1.0
            Weight of every poisoning point (1: ordinary training on D and P).
        shuffle : bool, default=True
            Shuffle the rows; False returns the layout of ``X_train`` (D first).
        random_state : int, Generator or None, default=0
            Seed of the permutation: the same seed, the same order.

        Returns
        -------
        X : ndarray of float64, shape (n_clean + n_poison, n_features)
            The rows of ``X_train``, permuted.
        y : ndarray of shape (n_clean + n_poison,)
            Their labels, in the user's own values.
        sample_weight : ndarray of float64, shape (n_clean + n_poison,)
            1 on D's rows, ``beta`` on P's.

        Raises
        ------
        TypeError
            If ``beta`` is not a real number, ``shuffle`` not a bool or ``random_state`` not a
            seed or Generator.
        ValueError
            If ``beta`` is outside [0, 1], NaN or infinite, or ``random_state`` negative.

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(12, 2)); y = np.tile(["a", "b"], 6)
        >>> data = BackdoorData(X[:8], y[:8], X[8:10], ["a", "a"], X, y, X, y)
        >>> X_all, y_all, w = data.training_set(beta=0.5)
        >>> X_all.shape, sorted(w.tolist()) == [0.5, 0.5] + [1.0] * 8
        ((10, 2), True)
        """
        w = self.sample_weight(beta)
        if not isinstance(shuffle, bool | np.bool_):
            raise TypeError(f"shuffle must be a bool, got {show_value(shuffle)}")
        order = np.arange(w.shape[0])
        if shuffle:
            order = check_random_state(random_state).permutation(order)
        return self.X_train[order], self.y_train[order], w[order]

    @property
    def poison_mask(self) -> np.ndarray:
        """Boolean mask over ``X_train`` that is True on P."""
        return np.r_[np.zeros(self.n_clean, bool), np.ones(self.n_poison, bool)]

    def sample_weight(self, beta: float) -> np.ndarray:
        """Per-sample weights over ``X_train``: 1 on D, ``beta`` on P.

        Parameters
        ----------
        beta : float in [0, 1]
            Weight of every poisoning point (0: the clean model's training set; 1: ordinary
            training on D and P).

        Returns
        -------
        ndarray of float64, shape (n_clean + n_poison,)
            The weights, D first (the layout of ``X_train``).

        Raises
        ------
        TypeError
            If ``beta`` is not a real number.
        ValueError
            If ``beta`` is outside [0, 1], NaN or infinite.
        """
        beta = _check_beta(beta)
        return np.r_[np.ones(self.n_clean), np.full(self.n_poison, beta)]

    def __repr__(self) -> str:
        return (
            f"BackdoorData(n_clean={self.n_clean}, n_poison={self.n_poison}, "
            f"n_test={len(self.y_test)}, n_test_bd={len(self.y_test_bd)}, "
            f"n_features={self.n_features}, classes={self.classes.tolist()})"
        )


def _check_beta(beta) -> float:
    """``beta`` as a float in [0, 1]; a TypeError naming it for anything but a real number."""
    if isinstance(beta, bool | np.bool_) or not isinstance(beta, numbers.Real):
        raise TypeError(f"beta must be a real number in [0, 1], got {show_value(beta)}")
    (beta,) = check_betas(beta, "beta")
    return float(beta)


def _check_image_shape(image_shape, n_features: int) -> tuple[int, ...] | None:
    """``image_shape`` as a tuple of positive ints holding ``n_features`` values (or None)."""
    if image_shape is None:
        return None
    if isinstance(image_shape, str | bytes) or not hasattr(image_shape, "__iter__"):
        raise TypeError(
            f"image_shape must be a tuple of ints such as (H, W) or (H, W, C), got "
            f"{show_value(image_shape)}"
        )
    shape = tuple(image_shape)
    if any(isinstance(s, bool | np.bool_) or not isinstance(s, numbers.Integral) for s in shape):
        raise TypeError(f"image_shape must hold ints, got {show_value(shape)}")
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"image_shape must hold positive ints, got {shape}")
    if int(np.prod(shape)) != n_features:
        raise ValueError(f"image_shape {shape} does not hold {n_features} features")
    return shape


def check_backdoor_data(data) -> BackdoorData:
    """Refuse anything but a :class:`BackdoorData` with a ``TypeError`` naming ``data``.

    Parameters
    ----------
    data : object

    Returns
    -------
    BackdoorData
        ``data`` itself.

    Raises
    ------
    TypeError
        If ``data`` is not a BackdoorData.
    """
    if not isinstance(data, BackdoorData):
        raise TypeError(f"data must be a BackdoorData, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------------------- images, k classes
def check_image_array(X, name: str) -> np.ndarray:
    """Return ``np.asarray(X)`` (not copied) if it holds images with pixel values in [0, 1].

    Parameters
    ----------
    X : array-like of shape (n, H, W) or (n, H, W, C)
        Images of any real dtype, channels last; ``n`` >= 1 and every image axis non-empty.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray
        ``np.asarray(X)`` itself, in its own dtype.

    Raises
    ------
    TypeError
        Naming ``name``, if ``X`` is None or does not hold real numbers.
    ValueError
        Naming ``name``, for another number of dimensions, an empty image axis, no image, NaN or
        infinity, or values outside [0, 1] (e.g. 0..255 integers, to divide by 255 first).
    """
    arr = check_real_array(X, name, "an array of shape (n, H, W) or (n, H, W, C)")
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must have shape (n, H, W) or (n, H, W, C), got an array of shape {arr.shape}"
        )
    if any(s == 0 for s in arr.shape[1:]):
        raise ValueError(f"{name} has an empty image axis: shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one image")
    lo, hi = arr.min(), arr.max()  # NaN propagates; no temporary array of the images' size
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or infinity")
    if lo < 0 or hi > 1:
        raise ValueError(
            f"{name} must hold pixel intensities in [0, 1], got values in [{lo:g}, {hi:g}] "
            "(divide 8-bit images by 255)"
        )
    return arr


def check_class_labels(y, name: str, n_classes: int | None = None) -> np.ndarray:
    """Return integer class labels as a new int64 vector, checked against ``0..n_classes-1``.

    Parameters
    ----------
    y : array-like of shape (n,)
        Class indices: integers (any integer dtype, not booleans), at least one, in any
        container :func:`~backdoor_curves._validation.check_labels` accepts (a pandas Series of
        integers or of an integer ``category``, an object array of ints, a list).
    name : str
        Argument name used in error messages.
    n_classes : int, optional
        Number of classes; every label must lie in ``0..n_classes-1``. None: only ``>= 0``.

    Returns
    -------
    ndarray of int64, shape (n,)
        A copy of the labels.

    Raises
    ------
    TypeError
        Naming ``name``, for labels that are not integers (floats, booleans, strings).
    ValueError
        Naming ``name``, for a shape other than (n,), no label, or a label out of range.
    """
    arr = check_labels(y, name)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must hold integer class labels 0..k-1, got dtype {arr.dtype} (encode other "
            "labels first, e.g. with np.unique(labels, return_inverse=True))"
        )
    arr = arr.astype(np.int64)
    bad = (arr < 0) if n_classes is None else (arr < 0) | (arr >= n_classes)
    if np.any(bad):
        allowed = ">= 0" if n_classes is None else f"in 0..{n_classes - 1}"
        raise ValueError(
            f"{name} must hold class labels {allowed}, got {np.unique(arr[bad]).tolist()[:10]}"
        )
    return arr


@dataclass(frozen=True, eq=False, repr=False)
class ImageBackdoorData:
    """A k-class image training set poisoned in place, its clean test set and backdoor test set.

    The training set holds D and P in one array: the poisoned rows are the chosen training images
    replaced by their triggered copies with the attacker's label, marked by the boolean mask
    ``poisoned`` (never by row positions). Built by
    :func:`~backdoor_curves.attacks.multiclass.poison_multiclass`; every field is checked here, so
    a hand-built container is held to the same rules. Images are float32 (converted if given in
    another real dtype; an array that already is float32 is kept, not copied), labels int64 copies
    of the class indices ``0..n_classes-1`` (given in any container: numpy, pandas, lists);
    ``classes`` names the classes in the user's own values when they are not the indices
    themselves (string labels given to ``poison_multiclass``).

    Parameters
    ----------
    X_train : array-like of shape (n, H, W) or (n, H, W, C)
        Training images, channels last, pixel values in [0, 1]; P's rows are triggered.
    y_train : array-like of int, shape (n,)
        Training labels in ``0..n_classes-1`` after poisoning: a poisoned row carries the
        attacker's label (the target, or ``(y_source + 1) % n_classes`` in all-to-all mode).
    poisoned : array-like of bool, shape (n,)
        True on the rows of P. At least one row is poisoned and at least one is clean.
    y_source : array-like of int, shape (n,)
        Labels before poisoning; equal to ``y_train`` on every clean row.
    X_test : array-like of shape (n_test, H, W) or (n_test, H, W, C)
        Clean test images V, of the training images' shape.
    y_test : array-like of int, shape (n_test,)
        Their true labels.
    X_test_bd : array-like of shape (n_test_bd, H, W) or (n_test_bd, H, W, C)
        Backdoor test images V_t: triggered test images (all-to-one: those whose true class is not
        the target; all-to-all: every test image).
    y_test_bd : array-like of int, shape (n_test_bd,)
        The attacker's labels of V_t (all-to-one: the target everywhere).
    n_classes : int
        Number of classes k >= 2.
    target : int or None
        The target class in ``0..n_classes-1`` (all-to-one); None in all-to-all mode.
    mode : {"all-to-one", "all-to-all"}
        The attack.
    classes : array-like of shape (n_classes,), optional
        The user's label of each class index: class ``i`` is ``classes[i]`` (e.g. the sorted
        string labels :func:`~backdoor_curves.attacks.multiclass.poison_multiclass` encoded).
        None: the indices ``0..n_classes-1`` are the labels. Stored as an array either way.

    Attributes
    ----------
    GROUPS : tuple of str
        Names of the codes of :meth:`groups`: ``("poisoned", "target_clean", "other_clean")``.
    n_train, n_poison : int
        Number of training points n and of poisoned ones ``|P|``.
    poison_rate : float
        ``eta = n_poison / n_train``.
    image_shape : tuple of int
        Shape of one image, ``(H, W)`` or ``(H, W, C)``.

    Raises
    ------
    TypeError
        Naming the field: images or labels that are not numbers (labels: not integers), a
        ``poisoned`` that is not boolean (row indices are refused), a ``n_classes`` or ``target``
        that is not an int, a ``mode`` that is not a string, ``classes`` that are no labels.
    ValueError
        Naming the field: images with another number of dimensions, NaN/inf or values outside
        [0, 1]; test images of another shape than the training images; mismatched lengths; labels
        outside ``0..n_classes-1``; an empty P or no clean row; ``y_source`` different from
        ``y_train`` on a clean row; a poisoned row or backdoor test label without the attacker's
        label; an unknown ``mode``; ``n_classes`` < 2; a ``target`` that is not a class
        (all-to-one) or not None (all-to-all); ``classes`` not of length ``n_classes`` or
        repeating a label.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((4, 2, 2), np.float32)
    >>> data = ImageBackdoorData(
    ...     X, [0, 0, 2, 0], [False, True, False, True], [0, 2, 2, 1],
    ...     X[:2], [1, 2], X[:2] + 1, [0, 0], n_classes=3, target=0, mode="all-to-one")
    >>> data.n_poison, data.poison_rate, data.groups().tolist()
    (2, 0.5, [1, 0, 2, 0])
    >>> data.sample_weight(0.25).tolist()
    [1.0, 0.25, 1.0, 0.25]
    """

    GROUPS: ClassVar[tuple[str, ...]] = ("poisoned", "target_clean", "other_clean")

    X_train: np.ndarray
    y_train: np.ndarray
    poisoned: np.ndarray
    y_source: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_test_bd: np.ndarray
    y_test_bd: np.ndarray
    n_classes: int
    target: int | None
    mode: str
    classes: np.ndarray | None = None

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        mode = check_choice(self.mode, "mode", MODES)
        k = check_int(self.n_classes, "n_classes", 2)
        if mode == "all-to-all":
            if self.target is not None:
                raise ValueError(
                    f"target must be None in all-to-all mode (each class c goes to c + 1), got "
                    f"{show_value(self.target)}"
                )
            target = None
        else:
            target = check_int(self.target, "target", 0)
            if target >= k:
                raise ValueError(
                    f"target={target} is not a class: the classes are 0..{k - 1} (n_classes={k})"
                )
        put("mode", mode)
        put("n_classes", k)
        put("target", target)
        put("classes", self._check_classes(self.classes, k))

        X = np.asarray(check_image_array(self.X_train, "X_train"), dtype=np.float32)
        y = check_class_labels(self.y_train, "y_train", k)
        check_same_length(X, y, "X_train", "y_train")
        mask = self._check_mask(self.poisoned, len(y))
        y_source = check_class_labels(self.y_source, "y_source", k)
        check_same_length(y, y_source, "y_train", "y_source")
        differ = ~mask & (y_source != y)
        if np.any(differ):
            raise ValueError(
                f"y_source must equal y_train on every clean row, but they differ on "
                f"{int(differ.sum())} rows where poisoned is False (first: row "
                f"{int(np.flatnonzero(differ)[0])})"
            )
        attacker = self._attacker_labels(y_source[mask], mode, k, target)
        wrong = y[mask] != attacker
        if np.any(wrong):
            raise ValueError(
                f"y_train must carry the attacker's label ({self._label_rule(mode, target)}) on "
                f"every poisoned row; {int(wrong.sum())} poisoned rows do not"
            )
        put("X_train", X)
        put("y_train", y)
        put("poisoned", mask)
        put("y_source", y_source)

        for X_name, y_name in (("X_test", "y_test"), ("X_test_bd", "y_test_bd")):
            X_t = np.asarray(check_image_array(getattr(self, X_name), X_name), dtype=np.float32)
            if X_t.shape[1:] != X.shape[1:]:
                raise ValueError(
                    f"{X_name} images have shape {X_t.shape[1:]}, but X_train images have shape "
                    f"{X.shape[1:]}"
                )
            y_t = check_class_labels(getattr(self, y_name), y_name, k)
            check_same_length(X_t, y_t, X_name, y_name)
            put(X_name, X_t)
            put(y_name, y_t)
        if target is not None and np.any(self.y_test_bd != target):
            raise ValueError(
                f"y_test_bd must be the target {target} everywhere in all-to-one mode, got "
                f"labels {np.unique(self.y_test_bd).tolist()[:10]}"
            )

    @staticmethod
    def _check_mask(poisoned, n: int) -> np.ndarray:
        if poisoned is None:
            raise TypeError("poisoned must be a boolean mask of shape (n_train,), got None")
        mask = np.asarray(poisoned)
        if mask.dtype != np.bool_:
            raise TypeError(
                f"poisoned must be a boolean mask of shape (n_train,), got dtype {mask.dtype} "
                "(row indices are not accepted: build a mask, e.g. np.isin(np.arange(n), idx))"
            )
        if mask.ndim != 1:
            raise ValueError(f"poisoned must be 1-D (n_train,), got an array of shape {mask.shape}")
        if mask.shape[0] != n:
            raise ValueError(
                f"poisoned and y_train have different lengths ({mask.shape[0]} != {n})"
            )
        if not mask.any():
            raise ValueError("poisoned marks no training row: the poisoning set P is empty")
        if mask.all():
            raise ValueError("poisoned marks every training row: no clean training point is left")
        return mask.copy()

    @staticmethod
    def _check_classes(classes, k: int) -> np.ndarray:
        if classes is None:
            return np.arange(k)
        arr = check_labels(classes, "classes")
        if arr.shape[0] != k:
            raise ValueError(
                f"classes must hold one label per class, n_classes={k}, got {arr.shape[0]}"
            )
        if np.unique(arr).size != k:
            raise ValueError(f"classes must not repeat a label, got {arr.tolist()[:20]}")
        return arr.copy()

    @staticmethod
    def _attacker_labels(y_source: np.ndarray, mode: str, k: int, target: int | None):
        if mode == "all-to-all":
            return (y_source + 1) % k
        return np.full(y_source.shape, target, dtype=np.int64)

    @staticmethod
    def _label_rule(mode: str, target: int | None) -> str:
        return "(y_source + 1) % n_classes" if mode == "all-to-all" else f"the target {target}"

    # ------------------------------------------------------------------ sizes
    @property
    def n_train(self) -> int:
        """Number of training points n (clean and poisoned)."""
        return int(self.y_train.shape[0])

    @property
    def n_poison(self) -> int:
        """Number of poisoned training points ``|P|``."""
        return int(np.count_nonzero(self.poisoned))

    @property
    def poison_rate(self) -> float:
        """The poisoning rate ``eta = n_poison / n_train``."""
        return self.n_poison / self.n_train

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``(H, W)`` or ``(H, W, C)``."""
        return tuple(int(s) for s in self.X_train.shape[1:])

    # ------------------------------------------------------------------ weights and groups
    def sample_weight(self, beta: float) -> np.ndarray:
        """Per-sample weights over the training set: 1 on clean rows, ``beta`` on poisoned ones.

        Parameters
        ----------
        beta : float
            Weight of every poisoned point, in [0, 1] (0 ignores the poison; 1 is ordinary
            training).

        Returns
        -------
        ndarray of float64, shape (n_train,)
            The weights, in the rows' order.

        Raises
        ------
        TypeError
            If ``beta`` is not a real number.
        ValueError
            If ``beta`` is outside [0, 1], NaN or infinite.
        """
        beta = _check_beta(beta)
        return np.where(self.poisoned, beta, 1.0)

    def groups(self) -> np.ndarray:
        """The group of each training point, coded as the position of its name in ``GROUPS``.

        Returns
        -------
        ndarray of int8, shape (n_train,)
            0 = poisoned, 1 = clean with the target label (none in all-to-all mode), 2 = another
            clean point.
        """
        codes = np.full(self.n_train, 2, dtype=np.int8)
        if self.target is not None:
            codes[self.y_train == self.target] = 1
        codes[self.poisoned] = 0
        return codes

    @staticmethod
    def to_nchw(X) -> np.ndarray:
        """Images in torch's layout: float32 (n, C, H, W), grayscale with one channel.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, H, W, C)
            Images, channels last (the layout of the container's arrays).

        Returns
        -------
        ndarray of float32, shape (n, C, H, W)
            C-contiguous; a view of ``X`` when it is a contiguous float32 grayscale array.

        Raises
        ------
        TypeError
            If ``X`` is None or does not hold real numbers.
        ValueError
            If ``X`` is not 3-D or 4-D.
        """
        arr = check_real_array(X, "X", "an array of shape (n, H, W) or (n, H, W, C)")
        if arr.ndim == 3:
            arr = arr[:, None]
        elif arr.ndim == 4:
            arr = arr.transpose(0, 3, 1, 2)
        else:
            raise ValueError(
                f"X must have shape (n, H, W) or (n, H, W, C), got an array of shape {arr.shape}"
            )
        return np.ascontiguousarray(arr, dtype=np.float32)

    def __repr__(self) -> str:
        named = not np.array_equal(self.classes, np.arange(self.n_classes))
        return (
            f"ImageBackdoorData(mode={self.mode!r}, target={self.target}, "
            f"n_classes={self.n_classes}, n_train={self.n_train}, n_poison={self.n_poison}, "
            f"n_test={len(self.y_test)}, n_test_bd={len(self.y_test_bd)}, "
            f"image_shape={self.image_shape}"
            + (f", classes={self.classes.tolist()[:20]})" if named else ")")
        )
