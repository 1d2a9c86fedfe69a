"""Two-class image subproblems of full MNIST, CIFAR-10 and Imagenette (DESIGN §6, paper 001 §3).

Every loader returns ``images, labels`` for *one* split (``"train"`` or ``"test"``) restricted to
two classes, optionally subsampled:

- images: float32 in [0, 1]; MNIST ``(n, 28, 28)``, CIFAR-10 ``(n, 32, 32, 3)``, Imagenette
  ``(n, 224, 224, 3)`` (each image resized so that its shorter side is 256 px, then centre-cropped
  to 224 x 224, as in the paper);
- labels: the digit (int64) for MNIST, the class name (str) for CIFAR-10 and Imagenette.

Classes are given by name or by index in the dataset's class list (:data:`CLASS_NAMES`);
Imagenette also accepts WordNet ids. The subsample (:func:`stratified_subsample`) draws ``n``
images with the two classes in the proportions of the full split, seeded. The paper uses 1,500
training and 500 test images per pair, drawn from the official train and test splits (Imagenette:
``train`` and ``val``).

Data come through torchvision (``datasets.MNIST``, ``datasets.CIFAR10``, ``datasets.Imagenette``
for the download; Imagenette's ``imagenette2-320`` folder layout is read directly). Where the files
are missing and ``download=True``, the download is attempted with a socket timeout; any failure
raises :class:`DatasetUnavailableError` at once, saying which files to put where. torch and
torchvision (the ``torch`` extra) are imported only when a loader runs.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from .._validation import check_seed, show_value
from ..utils import require_torchvision

__all__ = [
    "CLASS_NAMES",
    "DatasetUnavailableError",
    "IMAGENETTE_WNIDS",
    "load_cifar10",
    "load_imagenette",
    "load_mnist_full",
    "resolve_classes",
    "stratified_subsample",
]

IMAGENETTE_WNIDS = (
    "n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
    "n03394916", "n03417042", "n03425413", "n03445777", "n03888257",
)  # fmt: skip
CLASS_NAMES = {
    "mnist-full": tuple(str(d) for d in range(10)),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ),
    "imagenette": (
        "tench", "English springer", "cassette player", "chain saw", "church", "French horn",
        "garbage truck", "gas pump", "golf ball", "parachute",
    ),
}  # fmt: skip
_SOURCES = {
    "mnist-full": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte",
    ),
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (the extracted archive)",
    ),
    "imagenette": (
        "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz",
        "imagenette2-320/{train,val}/<wnid>/*.JPEG (the extracted archive)",
    ),
}
DOWNLOAD_TIMEOUT = 20.0  # seconds per socket operation while downloading


class DatasetUnavailableError(FileNotFoundError):
    """The data set's files are not on disk and could not be downloaded."""


def _unavailable(dataset: str, root: Path, cause: BaseException | None) -> DatasetUnavailableError:
    url, layout = _SOURCES[dataset]
    why = f" ({type(cause).__name__}: {str(cause).strip()[:300]})" if cause else ""
    return DatasetUnavailableError(
        f"{dataset} is not available{why}. Put the files at {root / layout} (download "
        f"{url} on a machine with network access), then load with root={str(root)!r}."
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _check_root(root) -> Path:
    if root is None or not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path to the data folder, got {root!r}")
    return Path(root).expanduser()


def _check_request(n, random_state, download) -> None:
    """The subsample size, its seed and ``download``, checked before any file is touched."""
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"n must be an int or None, got {show_value(n)}")
        if n < 2:
            raise ValueError(f"n must be at least 2 (one image per class), got {n}")
    check_seed(random_state, "random_state", allow_none=True)
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {show_value(download)}")


def _check_split(split) -> bool:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split == "train"


def resolve_classes(classes, dataset: str) -> tuple[int, int]:
    """Indices into ``CLASS_NAMES[dataset]`` of a pair of class names or indices.

    Names are matched case-insensitively; MNIST digits may be ints or strings; Imagenette also
    takes WordNet ids (``"n01440764"``).

    Parameters
    ----------
    classes : pair of str or int
        Two different classes, each a name (or WordNet id) or an index into the class list.
    dataset : {"mnist-full", "cifar10", "imagenette"}
        A key of :data:`CLASS_NAMES`.

    Returns
    -------
    tuple of (int, int)
        The two class indices, in the order given.

    Raises
    ------
    TypeError, ValueError
        Naming ``classes``: not a pair, an unknown name (the valid names are listed), an index out
        of range, or the same class twice.
    """
    names = CLASS_NAMES[dataset]
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
        raise TypeError(f"classes must be a pair of class names or indices, got {classes!r}")
    if len(classes) != 2:
        raise ValueError(f"classes must hold exactly two classes, got {len(classes)}: {classes!r}")
    lookup = {n.lower(): i for i, n in enumerate(names)}
    if dataset == "imagenette":
        lookup.update({w: i for i, w in enumerate(IMAGENETTE_WNIDS)})
    out = []
    for c in classes:
        if isinstance(c, numbers.Integral) and not isinstance(c, (bool, np.bool_)):
            if not 0 <= c < len(names):
                raise ValueError(f"classes: index {c} is out of range 0..{len(names) - 1}")
            out.append(int(c))
        elif isinstance(c, str) and c.strip().lower() in lookup:
            out.append(lookup[c.strip().lower()])
        else:
            raise ValueError(f"classes: {c!r} is not a class of {dataset}; valid: {list(names)}")
    if out[0] == out[1]:
        raise ValueError(f"classes must be two different classes, got {classes!r}")
    return out[0], out[1]


def stratified_subsample(y, n: int | None, random_state: int | None = 0) -> np.ndarray:
    """Sorted indices of a seeded, stratified subsample of ``n`` of the labels ``y``.

    The class proportions of ``y`` are kept (``sklearn.model_selection.train_test_split`` with
    ``stratify=y``). ``n=None`` or ``n == len(y)`` keeps everything.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The labels.
    n : int or None
        Size of the subsample; None keeps every index.
    random_state : int or None, default=0
        Seed of the draw.

    Returns
    -------
    ndarray of int, shape (n,)
        Increasing indices into ``y``.

    Raises
    ------
    TypeError
        If ``n`` is neither an int nor None.
    ValueError
        Naming ``n`` if it exceeds ``len(y)`` or is below the number of classes.
    """
    y = np.asarray(y)
    if n is None or n == len(y):
        return np.arange(len(y))
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int or None, got {n!r}")
    n_classes = np.unique(y).size
    if n > len(y):
        raise ValueError(f"n={n} is larger than the {len(y)} images available")
    if n < n_classes:
        raise ValueError(f"n={n} cannot hold one image of each of the {n_classes} classes")
    idx, _ = train_test_split(
        np.arange(len(y)), train_size=int(n), stratify=y, random_state=random_state
    )
    return np.sort(idx)


def _pick(labels: np.ndarray, pair: tuple[int, int], dataset: str) -> np.ndarray:
    keep = np.flatnonzero(np.isin(labels, pair))
    for c in pair:
        if not np.any(labels[keep] == c):
            raise ValueError(
                f"classes: {CLASS_NAMES[dataset][c]!r} has no image in this split of {dataset}"
            )
    return keep


def _torchvision_pair(dataset, cls_name, root, classes, split, n, random_state, download):
    """Images (float32 in [0, 1]) and class indices of the subsampled pair (torchvision set)."""
    root = _check_root(root)
    pair = resolve_classes(classes, dataset)
    train = _check_split(split)
    _check_request(n, random_state, download)
    tv = require_torchvision()
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT):
            ds = getattr(tv.datasets, cls_name)(str(root), train=train, download=download)
    except (RuntimeError, OSError) as exc:
        raise _unavailable(dataset, root, exc) from None
    labels = np.asarray(ds.targets, dtype=np.int64)
    keep = _pick(labels, pair, dataset)
    keep = keep[stratified_subsample(labels[keep], n, random_state)]
    return np.asarray(ds.data)[keep].astype(np.float32) / 255.0, labels[keep]


def load_mnist_full(
    root,
    classes=(7, 1),
    *,
    split: str = "train",
    n: int | None = None,
    random_state: int | None = 0,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Two digits of the full MNIST (60,000 train / 10,000 test) through ``torchvision.datasets``.

    Parameters
    ----------
    root : str or path-like
        The folder that holds (or receives) ``MNIST/raw/``.
    classes : pair of int or str, default=(7, 1)
        The two digits.
    split : {"train", "test"}, default="train"
        The official split.
    n : int, optional
        Size of the seeded stratified subsample (:func:`stratified_subsample`); None keeps all
        the images of the two classes.
    random_state : int or None, default=0
        Seed of the subsample.
    download : bool, default=True
        Download the missing files through torchvision (with a socket timeout).

    Returns
    -------
    images : ndarray of float32, shape (n, 28, 28)
        ``raw / 255`` in [0, 1].
    labels : ndarray of int64, shape (n,)
        The digits.

    Raises
    ------
    DatasetUnavailableError
        If the files are missing and cannot be downloaded; the message says which files to put
        where.
    TypeError, ValueError
        Naming the argument, before any file is read: ``root`` not a path, an unknown split,
        bad ``classes``, ``n`` below 2 or not an int, a negative ``random_state``, a
        ``download`` that is not a bool; after reading: ``n`` larger than the images.
    """
    images, labels = _torchvision_pair(
        "mnist-full", "MNIST", root, classes, split, n, random_state, download
    )
    return images, labels


def load_cifar10(
    root,
    classes=("airplane", "frog"),
    *,
    split: str = "train",
    n: int | None = None,
    random_state: int | None = 0,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of CIFAR-10 (50,000 train / 10,000 test) through ``torchvision.datasets``.

    Parameters
    ----------
    root : str or path-like
        The folder that holds (or receives) ``cifar-10-batches-py/``.
    classes : pair of str or int, default=("airplane", "frog")
        Two class names or indices of :data:`CLASS_NAMES` ``["cifar10"]``.
    split : {"train", "test"}, default="train"
        The official split.
    n : int, optional
        Size of the seeded stratified subsample (:func:`stratified_subsample`); None keeps all
        the images of the two classes.
    random_state : int or None, default=0
        Seed of the subsample.
    download : bool, default=True
        Download the missing files through torchvision (with a socket timeout).

    Returns
    -------
    images : ndarray of float32, shape (n, 32, 32, 3)
        RGB, ``raw / 255`` in [0, 1].
    labels : ndarray of str, shape (n,)
        Class names, e.g. ``"airplane"``.

    Raises
    ------
    DatasetUnavailableError
        If the files are missing and cannot be downloaded; the message says which files to put
        where.
    TypeError, ValueError
        Naming the argument, before any file is read: ``root`` not a path, an unknown split,
        bad ``classes``, ``n`` below 2 or not an int, a negative ``random_state``, a
        ``download`` that is not a bool; after reading: ``n`` larger than the images.
    """
    images, labels = _torchvision_pair(
        "cifar10", "CIFAR10", root, classes, split, n, random_state, download
    )
    return images, np.asarray(CLASS_NAMES["cifar10"])[labels]


def _imagenette_folder(root: Path, train: bool, download: bool) -> Path:
    """``root/imagenette2-320/{train,val}``; ``root`` may also be the ``imagenette2-320`` folder."""
    sub = "train" if train else "val"
    base = root if root.name == "imagenette2-320" else root / "imagenette2-320"
    if (base / sub).is_dir():
        return base / sub
    if download:
        tv = require_torchvision()
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT):
                tv.datasets.Imagenette(str(base.parent), split=sub, size="320px", download=True)
        except (RuntimeError, OSError, KeyError) as exc:
            raise _unavailable("imagenette", base.parent, exc) from None
        if (base / sub).is_dir():
            return base / sub
    raise _unavailable("imagenette", base.parent, None)


def load_imagenette(
    root,
    classes=("tench", "garbage truck"),
    *,
    split: str = "train",
    n: int | None = None,
    random_state: int | None = 0,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of Imagenette (``imagenette2-320``: ``train`` / ``val`` folders per WordNet id).

    Only the subsampled images are decoded: each is read with PIL as RGB, resized so that its
    shorter side is 256 px (bilinear) and centre-cropped to 224 x 224. ``split="test"`` reads the
    ``val`` folder.

    Parameters
    ----------
    root : str or path-like
        The folder that holds (or receives) ``imagenette2-320/``, or that folder itself.
    classes : pair of str or int, default=("tench", "garbage truck")
        Two class names, WordNet ids or indices of :data:`CLASS_NAMES` ``["imagenette"]``.
    split : {"train", "test"}, default="train"
        The official split (``"test"`` reads ``val``).
    n : int, optional
        Size of the seeded stratified subsample (:func:`stratified_subsample`); None keeps all
        the images of the two classes.
    random_state : int or None, default=0
        Seed of the subsample.
    download : bool, default=True
        Download ``imagenette2-320`` through torchvision when the folder is missing.

    Returns
    -------
    images : ndarray of float32, shape (n, 224, 224, 3)
        RGB in [0, 1].
    labels : ndarray of str, shape (n,)
        Class names, e.g. ``"tench"``.

    Raises
    ------
    DatasetUnavailableError
        If the files are missing and cannot be downloaded; the message says which files to put
        where.
    TypeError, ValueError
        Naming the argument, before any file is read: ``root`` not a path, an unknown split,
        bad ``classes``, ``n`` below 2 or not an int, a negative ``random_state``, a
        ``download`` that is not a bool; after reading: ``n`` larger than the images, a class
        without a folder or an image.
    """
    root = _check_root(root)
    pair = resolve_classes(classes, "imagenette")
    train = _check_split(split)
    _check_request(n, random_state, download)
    folder = _imagenette_folder(root, train, download)
    require_torchvision()
    from torchvision import transforms
    from torchvision.datasets.folder import default_loader, make_dataset

    wnids = {IMAGENETTE_WNIDS[c]: c for c in pair}
    samples = []
    for wnid, c in wnids.items():
        if not (folder / wnid).is_dir():
            raise ValueError(
                f"classes: {CLASS_NAMES['imagenette'][c]!r} has no folder {folder / wnid}"
            )
        try:
            samples += make_dataset(str(folder), {wnid: c}, extensions=(".jpeg", ".jpg", ".png"))
        except FileNotFoundError:
            raise ValueError(
                f"classes: {CLASS_NAMES['imagenette'][c]!r} has no image in {folder / wnid}"
            ) from None
    labels = np.array([c for _, c in samples], dtype=np.int64)
    keep = stratified_subsample(labels, n, random_state)
    prep = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    images = np.empty((len(keep), 224, 224, 3), dtype=np.float32)
    for row, i in enumerate(keep):
        images[row] = np.asarray(prep(default_loader(samples[i][0])), dtype=np.float32) / 255.0
    names = np.asarray(CLASS_NAMES["imagenette"])
    return images, names[labels[keep]]
