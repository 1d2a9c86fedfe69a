"""Neural-network study configuration files (TOML) for ``backdoor-curves nn``.

A configuration names the data, the attack, the model(s), the training, and what to measure::

    [study]
    title = "MNIST digits, BadNets all-to-one"

    [data]
    dataset = "mnist"            # the embedded digits, all ten classes; "imagenette", "cifar10"
    n_train = 4000               # training images (default: every image not in the test set)
    n_test = 1000                # test images (mnist default 1000; imagenette default: all)
    pool = 2                     # mnist only: average-pool 2x2 (28x28 -> 14x14)
    split_seed = 0               # seed of the train/test split and subsample
    mode = "all-to-one"          # or "all-to-all" (c -> c + 1)
    target = 0                   # all-to-one target class
    fraction = 0.1               # poisoned fraction of the training set
    trigger = "badnets"          # a name of attacks.TRIGGERS: badnets, invisible, blend, ...
    size = 3                     # the trigger's keys: attacks.trigger_params("badnets")
    exclude_target = true        # all-to-one: poison only images of other classes
    random_state = 0             # poisoning seed

    [grid]                       # optional: [data] keys swept, each a non-empty list
    fraction = [0.05, 0.15]

    [model]                      # or several [[model]] tables
    kind = "small_cnn"           # a key of backdoor_curves.nn.models.MODEL_KINDS
    width = 16                   # the kind's settings (resnet18/resnet50: weights, normalize)
    name = "SmallCNN"            # optional display name (default: the kind)

    [train]                      # TrainConfig fields; epochs may list several budgets
    epochs = [2, 5]
    batch_size = 32
    lr = 0.02

    [curve]
    betas = [0.0, 0.01, 0.1, 1.0]   # or n: default_betas(n)

    [slope]                      # optional: finite-difference slopes
    h = [0.01, 0.1, 1.0]
    seeds = [0, 1, 2]            # default: [train.seed]
    exact = true                 # also the exact derivative of the training run (SGD only)

    [tracking]                   # optional: one tracked training at beta = 1
    budget = 1000                # samples whose per-sample gradients are taken
    epochs = 5                   # length of the tracked run (default: the largest budget)
    eta = 0.1                    # isolated fraction of IP (default: the poison rate)
    layers = ["conv1", "conv2", "fc"]
    loss_samples = 4000          # rank all samples' losses when n_train <= this (default 2 budget)
    random_state = 0             # seed of the budget subset

``dataset = "cifar10"`` reads all ten CIFAR-10 classes (32 x 32 RGB) from
``root``/``cifar-10-batches-py/`` through :func:`backdoor_curves.datasets.images.load_cifar10`
(five pairs of classes; ``n_train`` and ``n_test`` split evenly over them; ``download`` as for
Imagenette).

``dataset = "imagenette"`` reads all ten classes of ``imagenette2-320`` from ``root`` (the folder
that holds ``imagenette2-320/``; relative paths are relative to the current directory), each
image resized to 256 px on its shorter side and centre-cropped to 224 x 224, through
:func:`backdoor_curves.datasets.images.load_imagenette` (five pairs of classes; ``n_train`` and
``n_test`` split evenly over the pairs). ``download = true`` lets torchvision fetch it; the
default ``false`` never touches the network. :meth:`NNConfig.check_available` (run first by
``backdoor-curves nn``) stops within seconds, naming every missing data folder and weight file.
Pretrained ResNet weights (``weights = "imagenet"``) are read from torchvision's cache only
(:func:`backdoor_curves.nn.weights.resolve_weights`); ``weights = "none"`` (the default) is a
random initialisation, a path a local state dict.

Every error (an unknown section or key, a wrong type, a value out of range) is a ``ValueError``
naming the key, as for the grid configurations (:mod:`backdoor_curves.study.config`).

torch is imported when a configuration is parsed (to check the model kinds), not when this
module is imported.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._config import check_known_keys, load_toml
from .._config import config_error as _fail
from ..attacks.multiclass import poison_multiclass
from ..attacks.triggers import TRIGGERS, check_trigger_fits, make_trigger
from ..attacks.triggers import trigger_params as trigger_config_params
from ..data import MODES, ImageBackdoorData
from ..measures.results import default_betas
from ._toml import int_list as _int_list
from ._toml import is_int as _is_int
from ._toml import is_number as _is_number
from ._toml import table as _table
from ._toml import typed as _typed
from .sections import AttackSpec, ConvexSpec, DynamicsSpec, parse_convex, parse_dynamics
from .train import OPTIMIZERS, TrainConfig

__all__ = [
    "DATASETS",
    "ModelSpec",
    "NNConfig",
    "SlopeSpec",
    "TrackingSpec",
    "load_nn_config",
    "make_nn_data",
    "parse_nn_config",
]

#: The data sets an nn configuration can name (all ten classes of each).
DATASETS = ("mnist", "imagenette", "cifar10")
_SECTIONS = (
    "study", "data", "grid", "attack", "model", "train", "curve", "slope", "tracking",
    "dynamics", "convex",
)  # fmt: skip
#: ``[data]`` keys by data set, with their types (float accepts ints; "path" a string).
_DATA_TYPES: dict[str, type | str] = {
    "dataset": str,
    "n_train": int,
    "n_test": int,
    "split_seed": int,
    "mode": str,
    "target": int,
    "fraction": float,
    "trigger": str,
    "exclude_target": bool,
    "random_state": int,
    "pool": int,
    "root": "path",
    "download": bool,
    # the triggers' parameters (size, intensity, alpha, ...), read from the registry
    **trigger_config_params(),
}
_DATASET_KEYS = {
    "mnist": set(_DATA_TYPES) - {"root", "download"},
    "imagenette": set(_DATA_TYPES) - {"pool"},
    "cifar10": set(_DATA_TYPES) - {"pool"},
}
_TRAIN_TYPES: dict[str, type] = {
    "batch_size": int,
    "lr": float,
    "momentum": float,
    "weight_decay": float,
    "optimizer": str,
    "seed": int,
    "device": str,
    "threads": int,
}
_TRACKING_KEYS = ("budget", "epochs", "eta", "layers", "loss_samples", "random_state")
#: Side in pixels of the Imagenette images (centre-cropped to 224 x 224).
_IMAGENETTE_SIDE = 224
_DATA_DEFAULTS = {
    "mode": "all-to-one",
    "target": 0,
    "fraction": 0.1,
    "trigger": "badnets",
    "exclude_target": True,
    "random_state": 0,
    "split_seed": 0,
}


# ------------------------------------------------------------------------------ the specs


@dataclass(frozen=True)
class ModelSpec:
    """One ``[model]`` table: a model kind of the registry and its settings.

    Attributes
    ----------
    name : str
        Display name and output label (default: the kind).
    kind : str
        A key of :data:`backdoor_curves.nn.models.MODEL_KINDS`.
    params : dict
        The kind's settings (keyword arguments of its builder), e.g. ``{"width": 16}``.
    """

    name: str
    kind: str
    params: dict = field(default_factory=dict)

    def factory(self, data: ImageBackdoorData):
        """A picklable model factory for the data's classes and channels.

        Parameters
        ----------
        data : ImageBackdoorData
            Gives ``n_classes`` and the input channels (1 for grayscale (n, H, W) images, C for
            (n, H, W, C)).

        Returns
        -------
        functools.partial
            ``MODEL_KINDS[kind](n_classes=..., in_channels=..., **params)``; calling it builds a
            fresh model (imports torch).
        """
        from .models import MODEL_KINDS

        in_channels = 1 if data.X_train.ndim == 3 else int(data.X_train.shape[-1])
        return functools.partial(
            MODEL_KINDS[self.kind],
            n_classes=data.n_classes,
            in_channels=in_channels,
            **self.params,
        )

    def weights(self):
        """The pretrained weights this model loads, or None.

        Returns
        -------
        str or None
            The ``weights`` setting unless it means random weights (absent, ``"none"`` or
            ``"random"``).
        """
        weights = self.params.get("weights")
        if weights is None or (isinstance(weights, str) and weights.lower() in ("none", "random")):
            return None
        return weights


@dataclass(frozen=True)
class SlopeSpec:
    """The ``[slope]`` table: finite-difference steps, seeds, and the exact derivative.

    Attributes
    ----------
    h : tuple of float
        Steps of beta in (0, 1], distinct, in the order given.
    seeds : tuple of int
        Training seeds (each fixes the initial weights and the batch order).
    exact : bool
        Also compute the exact derivative of the training run per seed
        (:func:`backdoor_curves.nn.exact.training_derivative`).
    """

    h: tuple
    seeds: tuple
    exact: bool = False


@dataclass(frozen=True)
class TrackingSpec:
    """The ``[tracking]`` table: one training at beta = 1 with per-sample tracking.

    Attributes
    ----------
    budget : int
        Largest number of training samples whose per-sample gradients are taken.
    epochs : int
        Epochs of the tracked training (IP, Delta, synchronization recorded after each).
    eta : float or None
        Isolated fraction of the isolation precision (None: the data's poison rate).
    layers : tuple of str or None
        Layers whose synchronization is tracked (None: every module owning parameters).
    loss_samples : int or None
        Rank the losses of all training samples when there are at most this many (None: twice
        the budget).
    random_state : int
        Seed of the budget subset.
    """

    budget: int = 1000
    epochs: int = 1
    eta: float | None = None
    layers: tuple | None = None
    loss_samples: int | None = None
    random_state: int = 0

    def tracker(self):
        """A fresh :class:`~backdoor_curves.nn.tracking.Tracker` with these settings.

        Returns
        -------
        Tracker
            Records every epoch, the untrained model included (epoch 0).
        """
        from .tracking import Tracker

        return Tracker(
            self.budget,
            eta=self.eta,
            layers=None if self.layers is None else list(self.layers),
            loss_samples=self.loss_samples,
            random_state=self.random_state,
        )


@dataclass(frozen=True)
class NNConfig:
    """A validated neural-network study configuration (see the module docstring).

    Attributes
    ----------
    data : dict
        The ``[data]`` table with its defaults filled in.
    models : tuple of ModelSpec
        The models, in the order given.
    train : TrainConfig
        The training configuration; its ``epochs`` is the largest budget.
    epochs : tuple of int
        The epoch budgets, increasing.
    betas : tuple of float
        Betas of the learning curves, in the order given.
    grid : dict
        ``[grid]``: data keys swept -> tuple of values (empty: one data setting).
    slope : SlopeSpec or None
        ``[slope]``, or None for no slopes.
    tracking : TrackingSpec or None
        ``[tracking]``, or None for no tracked training.
    attacks : tuple of AttackSpec
        ``[[attack]]`` tables (empty: the ``[data]`` trigger); each data setting of the grid is
        run with each attack.
    dynamics : DynamicsSpec or None
        ``[dynamics]``, or None for no information dynamics.
    convex : ConvexSpec or None
        ``[convex]``, or None for no convex grid per attack.
    title : str
        ``[study] title``.
    source : str
        The file read (empty when parsed from a dict); not compared by ``==``.
    """

    data: dict
    models: tuple
    train: TrainConfig
    epochs: tuple
    betas: tuple
    grid: dict = field(default_factory=dict)
    slope: SlopeSpec | None = None
    tracking: TrackingSpec | None = None
    attacks: tuple = ()
    dynamics: DynamicsSpec | None = None
    convex: ConvexSpec | None = None
    title: str = "Neural-network study"
    source: str = field(default="", compare=False)

    def settings(self) -> list[dict]:
        """The data settings of the grid: one dict of swept values per point.

        Returns
        -------
        list of dict
            The Cartesian product of the ``[grid]`` values, in order (the last key fastest);
            ``[{}]`` without a grid. With ``[[attack]]`` tables, each point once per attack
            (attacks fastest), its name under ``"attack"``.
        """
        points = _grid_points(self.grid)
        if not self.attacks:
            return points
        return [{**point, "attack": attack.name} for point in points for attack in self.attacks]

    def attack(self, name: str) -> AttackSpec:
        """The ``[[attack]]`` table of that name.

        Parameters
        ----------
        name : str
            An attack's name.

        Returns
        -------
        AttackSpec

        Raises
        ------
        KeyError
            If there is no such attack.
        """
        for attack in self.attacks:
            if attack.name == name:
                return attack
        raise KeyError(f"no attack named {name!r}; attacks: {[a.name for a in self.attacks]}")

    def data_table(self, setting: Mapping | None = None) -> dict:
        """The ``[data]`` table with a setting's swept values applied.

        Parameters
        ----------
        setting : mapping, optional
            Swept values (an element of :meth:`settings`).

        Returns
        -------
        dict
            Keyword arguments of :func:`make_nn_data` (an ``"attack"`` in the setting is
            replaced by its trigger and parameters).
        """
        setting = dict(setting or {})
        name = setting.pop("attack", None)
        out = {**self.data, **setting}
        if name is not None:
            out.update(self.attack(name).data_keys())
        return out

    def make_data(self, setting: Mapping | None = None) -> ImageBackdoorData:
        """Load and poison the data of one setting.

        Parameters
        ----------
        setting : mapping, optional
            Swept values (an element of :meth:`settings`).

        Returns
        -------
        ImageBackdoorData
            The poisoned ten-class data set.

        Raises
        ------
        ValueError, TypeError
            As :func:`make_nn_data`.
        FileNotFoundError
            When the data set's files are missing (see :meth:`check_available`).
        """
        return make_nn_data(**self.data_table(setting))

    def train_config(self, epochs: int, seed: int | None = None) -> TrainConfig:
        """The training configuration of one budget (and seed).

        Parameters
        ----------
        epochs : int
            The epoch budget.
        seed : int, optional
            Replaces ``train.seed``.

        Returns
        -------
        TrainConfig
            ``train`` with ``epochs`` (and ``seed``) replaced.
        """
        changes: dict[str, Any] = {"epochs": epochs}
        if seed is not None:
            changes["seed"] = seed
        return dataclasses.replace(self.train, **changes)

    def check_available(self) -> None:
        """Fail fast when data files or pretrained weights are missing (nothing is trained).

        The embedded digits are always there. For ``"imagenette"`` two images of each split
        are read (the folders must exist; with ``download = true`` a download is tried); for
        each ResNet with pretrained weights the file is looked up in torchvision's cache
        (nothing is downloaded). Takes seconds.

        Raises
        ------
        FileNotFoundError
            Naming every missing data folder and weight file, and where to put it.
        ImportError
            When torch / torchvision (needed for these) is not installed.
        """
        problems = []
        if self.data["dataset"] in ("imagenette", "cifar10"):
            from ..datasets.images import load_cifar10, load_imagenette

            load = load_imagenette if self.data["dataset"] == "imagenette" else load_cifar10
            root = Path(self.data["root"]).expanduser().absolute()
            for split in ("train", "test"):
                try:
                    load(
                        root,
                        classes=(0, 1),
                        split=split,
                        n=2,
                        download=self.data.get("download", False),
                    )
                except FileNotFoundError as exc:
                    problems.append(f"data ({split} split): {exc}")
                    break
        for spec in self.models:
            weights = spec.weights()
            if weights is None:
                continue
            from .weights import resolve_weights

            try:
                resolve_weights(spec.kind, weights)
            except FileNotFoundError as exc:
                problems.append(f"model {spec.name!r}: {exc}")
        if problems:
            where = f" ({self.source})" if self.source else ""
            raise FileNotFoundError(
                f"not available offline{where}:\n" + "\n".join(f"- {p}" for p in problems)
            )


# ------------------------------------------------------------------------------ the data


def make_nn_data(
    *,
    dataset: str = "mnist",
    n_train: int | None = None,
    n_test: int | None = None,
    split_seed: int = 0,
    pool: int = 1,
    root=None,
    download: bool = False,
    mode: str = "all-to-one",
    target: int = 0,
    fraction: float = 0.1,
    trigger: str = "badnets",
    exclude_target: bool = True,
    random_state: int = 0,
    **trigger_params,
) -> ImageBackdoorData:
    """The poisoned ten-class data set a ``[data]`` table describes.

    Parameters
    ----------
    dataset : {"mnist", "imagenette", "cifar10"}, default="mnist"
        ``"mnist"``: the 5,000 embedded digits
        (:func:`~backdoor_curves.datasets.mnist.load_mnist_multiclass`, no download);
        ``"imagenette"``: ``imagenette2-320`` under ``root``, all ten classes, 224 x 224 RGB;
        ``"cifar10"``: ``cifar-10-batches-py`` under ``root``, all ten classes, 32 x 32 RGB.
    n_train : int, optional
        Training images (None: all; imagenette: split evenly over five pairs of classes).
    n_test : int, optional
        Test images (None: 1000 for mnist, all of the ``val`` split for imagenette).
    split_seed : int, default=0
        Seed of the train/test split and of the subsamples.
    pool : int, default=1
        mnist: side of the average pooling (2: 14 x 14 images).
    root : str or path-like, optional
        imagenette / cifar10: the folder holding ``imagenette2-320/`` /
        ``cifar-10-batches-py/`` (required).
    download : bool, default=False
        imagenette: let torchvision download the files when missing.
    mode : {"all-to-one", "all-to-all"}, default="all-to-one"
        The attack.
    target : int, default=0
        The target class (all-to-one).
    fraction : float, default=0.1
        Poisoned fraction of the training set.
    trigger : str, default="badnets"
        A name of :data:`~backdoor_curves.attacks.triggers.TRIGGERS`.
    exclude_target : bool, default=True
        All-to-one: poison only images of the other classes.
    random_state : int, default=0
        The poisoning seed.
    **trigger_params
        The trigger's parameters (:func:`~backdoor_curves.attacks.triggers.trigger_params`,
        e.g. ``size`` for BadNets, ``alpha`` for Blend).

    Returns
    -------
    ImageBackdoorData
        The data set poisoned in place (:func:`~backdoor_curves.attacks.multiclass.
        poison_multiclass`).

    Raises
    ------
    ValueError, TypeError
        Naming the argument, from the loaders and the poisoning; an unknown ``dataset``;
        imagenette without ``root``.
    FileNotFoundError
        When imagenette's files are missing (the message says which files to put where).
    """
    if dataset == "mnist":
        from ..datasets.mnist import load_mnist_multiclass

        X_train, y_train, X_test, y_test = load_mnist_multiclass(
            n_train=n_train,
            n_test=1000 if n_test is None else n_test,
            random_state=split_seed,
            pool=pool,
        )
    elif dataset == "imagenette":
        if root is None:
            raise ValueError("root must name the folder holding imagenette2-320/ (data.root)")
        root = Path(root).expanduser().absolute()
        X_train, y_train = _imagenette_ten(root, "train", n_train, split_seed, download)
        X_test, y_test = _imagenette_ten(root, "test", n_test, split_seed, download)
    elif dataset == "cifar10":
        if root is None:
            raise ValueError("root must name the folder holding cifar-10-batches-py/ (data.root)")
        root = Path(root).expanduser().absolute()
        X_train, y_train = _ten_classes("cifar10", root, "train", n_train, split_seed, download)
        X_test, y_test = _ten_classes("cifar10", root, "test", n_test, split_seed, download)
    else:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {dataset!r}")
    return poison_multiclass(
        X_train,
        y_train,
        X_test,
        y_test,
        mode=mode,
        target=target if mode == "all-to-one" else None,
        fraction=fraction,
        trigger=trigger,
        exclude_target=exclude_target,
        random_state=random_state,
        **trigger_params,
    )


def _imagenette_ten(root, split, n, seed, download):
    """All ten Imagenette classes, as five pairs of :func:`load_imagenette` (n split evenly)."""
    return _ten_classes("imagenette", root, split, n, seed, download)


def _ten_classes(dataset, root, split, n, seed, download):
    """All ten classes of Imagenette or CIFAR-10, as five pairs of the two-class loaders of
    :mod:`backdoor_curves.datasets.images` (n split evenly over the pairs)."""
    from ..datasets.images import CLASS_NAMES, load_cifar10, load_imagenette

    load = load_imagenette if dataset == "imagenette" else load_cifar10
    names = list(CLASS_NAMES[dataset])
    images, labels = [], []
    for i, pair in enumerate(zip(names[0::2], names[1::2], strict=True)):
        n_pair = None if n is None else n // 5 + (1 if i < n % 5 else 0)
        X, y = load(root, pair, split=split, n=n_pair, random_state=seed, download=download)
        images.append(X)
        labels.append(np.array([names.index(v) for v in y], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


# ------------------------------------------------------------------------------ parsing


def load_nn_config(path) -> NNConfig:
    """Read and validate an nn configuration file (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        The ``.toml`` file.

    Returns
    -------
    NNConfig
        The validated configuration; its ``source`` is ``str(path)``.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like.
    OSError
        If the file cannot be read.
    ValueError
        If it is not valid TOML, or for any error of :func:`parse_nn_config`.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path must be a str or path-like (a .toml file), got {type(path).__name__}"
        )
    return load_toml(path, parse_nn_config)


def _check_data_table(data: dict, where: str = "data") -> dict:
    dataset = data.get("dataset", "mnist")
    if dataset not in DATASETS:
        raise _fail(f"{where}.dataset", f"must be one of {list(DATASETS)}, got {dataset!r}")
    out = {"dataset": dataset, **_DATA_DEFAULTS}
    allowed = _DATASET_KEYS[dataset]
    for key, value in data.items():
        if key not in allowed:
            raise _fail(
                f"{where}.{key}", f"unknown key for dataset {dataset!r}; allowed: {sorted(allowed)}"
            )
        out[key] = _typed(value, _DATA_TYPES[key], f"{where}.{key}")
    _check_data_values(out, where)
    return out


def _check_data_values(data: dict, where: str = "data", swept: Mapping | None = None) -> None:
    """Values that can be checked without loading the data (the loaders check the rest)."""

    def key(name):
        return f"grid.{name}" if swept and name in swept else f"{where}.{name}"

    if data["mode"] not in MODES:
        raise _fail(key("mode"), f"must be one of {list(MODES)}, got {data['mode']!r}")
    if not 0.0 < data["fraction"] < 1.0:
        raise _fail(key("fraction"), f"must lie strictly between 0 and 1, got {data['fraction']}")
    if not 0 <= data["target"] <= 9:
        raise _fail(key("target"), f"must be a class 0..9, got {data['target']}")
    for name in ("random_state", "split_seed"):
        if data[name] < 0:
            raise _fail(key(name), f"must be a non-negative int (a seed), got {data[name]}")
    for name in ("n_train", "n_test"):
        if name in data and data[name] < 10:
            raise _fail(key(name), f"must be an int >= 10 (one image per class), got {data[name]}")
    if data["dataset"] == "mnist":
        pool = data.get("pool", 1)
        if pool < 1 or 28 % pool:
            raise _fail(key("pool"), f"must divide 28 (1, 2, 4, 7, 14 or 28), got {pool}")
    elif "root" not in data and data["dataset"] == "imagenette":
        raise _fail(
            f"{where}.root",
            "missing: the folder that holds imagenette2-320/{train,val}/<wnid>/*.JPEG "
            "(download https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz)",
        )
    elif "root" not in data:
        raise _fail(
            f"{where}.root",
            "missing: the folder that holds cifar-10-batches-py/ (download "
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it there)",
        )
    _check_trigger(data, key)


def _check_trigger(data: dict, key) -> None:
    """The trigger and its parameters: a registered name, its own keys and checks, a fit."""
    trigger = data["trigger"]
    if trigger not in TRIGGERS:
        raise _fail(key("trigger"), f"must be one of {sorted(TRIGGERS)}, got {trigger!r}")
    accepted = trigger_config_params(trigger)
    params = {name: data[name] for name in trigger_config_params() if name in data}
    for name in params:
        if name not in accepted:
            raise _fail(
                key(name),
                f"not a parameter of the {trigger!r} trigger (it takes {sorted(accepted)})",
            )

    def named(exc: Exception) -> str:  # the parameter the trigger's message starts with
        return key(next((p for p in params if re.match(rf"{p}\b", str(exc))), "trigger"))

    try:
        trig = make_trigger(trigger, **params)
    except (TypeError, ValueError) as exc:
        raise _fail(named(exc), str(exc)) from None
    if data["dataset"] == "imagenette":
        shape, where = (_IMAGENETTE_SIDE, _IMAGENETTE_SIDE, 3), ""
    elif data["dataset"] == "cifar10":
        shape, where = (32, 32, 3), ""
    else:
        side = 28 // data.get("pool", 1)
        shape, where = (side, side), f" (pool={data.get('pool', 1)})"
    try:  # the trigger's own check that it fits the (pooled) image
        check_trigger_fits(trig, shape)
    except ValueError as exc:
        raise _fail(named(exc), f"{exc}{where}") from None


def _grid(raw, data: dict) -> dict:
    grid = {}
    for key, value in _table(raw, "grid").items():
        if key in ("dataset", "root", "download") or key not in _DATASET_KEYS[data["dataset"]]:
            raise _fail(f"grid.{key}", "not a data parameter that can be swept")
        if not isinstance(value, list) or not value:
            raise _fail(f"grid.{key}", f"must be a non-empty list of values, got {value!r}")
        values = tuple(_typed(v, _DATA_TYPES[key], f"grid.{key}[{i}]") for i, v in enumerate(value))
        if len(set(values)) != len(values):
            raise _fail(f"grid.{key}", f"must not repeat a value, got {value!r}")
        grid[key] = values
    for swept in _grid_points(grid):
        _check_data_values({**data, **swept}, swept=swept)
    return grid


def _grid_points(grid: Mapping) -> list[dict]:
    """The Cartesian product of the ``[grid]`` values, in order (the last key fastest)."""
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def _attacks(raw: Mapping, data: dict, grid: dict) -> tuple:
    """The ``[[attack]]`` tables, each checked with every grid point (the trigger must fit)."""
    entries = raw["attack"] if isinstance(raw["attack"], list) else [raw["attack"]]
    if not entries:
        raise _fail("attack", "must hold at least one [[attack]] table")
    trigger_keys = {"trigger", *trigger_config_params()}
    for where, given in (("data", raw.get("data", {})), ("grid", raw.get("grid", {}))):
        clash = sorted(k for k in given if k in trigger_keys)
        if clash:
            raise _fail(
                f"{where}.{clash[0]}",
                "the trigger is set per attack in the [[attack]] tables, not in [data] or [grid]",
            )
    specs = []
    points = _grid_points(grid)
    for i, entry in enumerate(entries):
        where = f"attack[{i}]" if isinstance(raw["attack"], list) else "attack"
        entry = _table(entry, where)
        if "trigger" not in entry:
            raise _fail(f"{where}.trigger", f"missing: one of {sorted(TRIGGERS)}")
        name = entry.pop("name", entry["trigger"])
        if not isinstance(name, str) or not name:
            raise _fail(f"{where}.name", f"must be a non-empty string, got {name!r}")
        for key, value in entry.items():
            if key not in trigger_keys:
                raise _fail(f"{where}.{key}", f"unknown key; allowed: name, {sorted(trigger_keys)}")
            entry[key] = _typed(value, _DATA_TYPES[key], f"{where}.{key}")
        for point in points:
            _check_data_values({**data, **point, **entry}, where, swept=point)
        specs.append(AttackSpec(name, entry.pop("trigger"), entry))
    names = [s.name for s in specs]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise _fail(f"attack[{i}].name", f"duplicate attack name {name!r}; set distinct names")
    return tuple(specs)


def _models(raw) -> tuple:
    from .models import MODEL_KINDS

    entries = raw if isinstance(raw, list) else [raw]
    if not entries:
        raise _fail("model", "must hold at least one model table")
    specs = []
    for i, entry in enumerate(entries):
        where = "model" if not isinstance(raw, list) else f"model[{i}]"
        entry = _table(entry, where)
        kind = entry.pop("kind", None)
        if kind not in MODEL_KINDS:
            raise _fail(f"{where}.kind", f"must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
        name = entry.pop("name", kind)
        if not isinstance(name, str) or not name:
            raise _fail(f"{where}.name", f"must be a non-empty string, got {name!r}")
        signature = inspect.signature(MODEL_KINDS[kind]).parameters
        settings = {
            p.name: p.default
            for p in signature.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        params = {}
        for key, value in entry.items():
            if key not in settings:
                raise _fail(
                    f"{where}.{key}", f"unknown setting of {kind}; allowed: {sorted(settings)}"
                )
            default = settings[key]
            expected = str if default is None else type(default)
            params[key] = _typed(value, expected, f"{where}.{key}")
            if key == "width" and value < 1:
                raise _fail(f"{where}.width", f"must be an int >= 1, got {value}")
        specs.append(ModelSpec(name, kind, params))
    names = [s.name for s in specs]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise _fail(f"model[{i}].name", f"duplicate model name {name!r}; set distinct names")
    return tuple(specs)


def _train(raw) -> tuple[TrainConfig, tuple]:
    table = _table(raw, "train")
    check_known_keys(table, {"epochs", *_TRAIN_TYPES}, "train")
    epochs = tuple(sorted(_int_list(table.pop("epochs", 3), "train.epochs", 1)))
    kwargs = {}
    for key, value in table.items():
        kwargs[key] = _typed(value, _TRAIN_TYPES[key], f"train.{key}")
        if key == "optimizer" and value.lower() not in OPTIMIZERS:
            raise _fail("train.optimizer", f"must be one of {list(OPTIMIZERS)}, got {value!r}")
        try:
            TrainConfig(**{key: kwargs[key]})
        except (TypeError, ValueError) as exc:
            raise _fail(f"train.{key}", str(exc)) from None
    return TrainConfig(epochs=max(epochs), **kwargs), epochs


def _betas(raw) -> tuple:
    table = _table(raw, "curve")
    check_known_keys(table, {"betas"}, "curve")
    value = table.get("betas", 6)
    if _is_int(value):
        if value < 2:
            raise _fail("curve.betas", f"an int must be >= 2 (number of betas), got {value}")
        return tuple(float(b) for b in default_betas(value))
    if isinstance(value, list) and value and all(_is_number(v) and 0 <= v <= 1 for v in value):
        if len(set(value)) != len(value):
            raise _fail("curve.betas", f"must not repeat a beta, got {value!r}")
        return tuple(float(v) for v in value)
    raise _fail(
        "curve.betas",
        f"must be an int >= 2 or a non-empty list of numbers in [0, 1], got {value!r}",
    )


def _slope(raw, train: TrainConfig) -> SlopeSpec:
    table = _table(raw, "slope")
    check_known_keys(table, {"h", "seeds", "exact"}, "slope")
    h = table.get("h", [0.01, 0.1, 1.0])
    steps = h if isinstance(h, list) else [h]
    if not steps or not all(_is_number(v) and 0 < v <= 1 for v in steps):
        raise _fail("slope.h", f"must be a number in (0, 1] or a non-empty list of them, got {h!r}")
    if len(set(steps)) != len(steps):
        raise _fail("slope.h", f"must not repeat a step, got {h!r}")
    seeds = _int_list(table.get("seeds", [train.seed]), "slope.seeds", 0)
    exact = table.get("exact", False)
    if not isinstance(exact, bool):
        raise _fail("slope.exact", f"must be true or false, got {exact!r}")
    if exact and train.optimizer != "sgd":
        raise _fail(
            "slope.exact",
            f"the exact derivative needs train.optimizer = 'sgd', got {train.optimizer!r}",
        )
    return SlopeSpec(tuple(float(v) for v in steps), seeds, exact)


def _tracking(raw, epochs: tuple) -> TrackingSpec:
    table = _table(raw, "tracking")
    check_known_keys(table, _TRACKING_KEYS, "tracking")
    kwargs: dict[str, Any] = {"epochs": max(epochs)}
    for key in ("budget", "epochs"):
        if key in table:
            if not _is_int(table[key]) or table[key] < 1:
                raise _fail(f"tracking.{key}", f"must be an int >= 1, got {table[key]!r}")
            kwargs[key] = table[key]
    for key in ("loss_samples", "random_state"):
        if key in table:
            if not _is_int(table[key]) or table[key] < 0:
                raise _fail(f"tracking.{key}", f"must be an int >= 0, got {table[key]!r}")
            kwargs[key] = table[key]
    if "eta" in table:
        eta = table["eta"]
        if not _is_number(eta) or not 0 < eta < 1:
            raise _fail("tracking.eta", f"must be a number strictly between 0 and 1, got {eta!r}")
        kwargs["eta"] = float(eta)
    if "layers" in table:
        layers = table["layers"]
        if (
            not isinstance(layers, list)
            or not layers
            or not all(isinstance(v, str) and v for v in layers)
        ):
            raise _fail(
                "tracking.layers", f"must be a non-empty list of layer names, got {layers!r}"
            )
        kwargs["layers"] = tuple(layers)
    return TrackingSpec(**kwargs)


def parse_nn_config(raw: Mapping, *, source: str = "") -> NNConfig:
    """Validate a parsed TOML document (a dict) into an :class:`NNConfig`.

    Parameters
    ----------
    raw : Mapping
        The document: the tables of the module docstring (``model`` required, every other
        optional).
    source : str, default=""
        Where the document came from, kept as ``NNConfig.source``.

    Returns
    -------
    NNConfig
        The validated configuration.

    Raises
    ------
    ValueError
        Naming the key: unknown sections or keys, wrong types, values out of range, an unknown
        dataset, model kind or setting, duplicate model names, an exact derivative asked for
        with an optimizer other than SGD.
    """
    raw = _table(raw, "<root>")
    for key in raw:
        if key not in _SECTIONS:
            raise _fail(key, f"unknown section; allowed: {', '.join(_SECTIONS)}")
    study = _table(raw.get("study", {}), "study")
    check_known_keys(study, {"title"}, "study")
    title = study.get("title", "Neural-network study")
    if not isinstance(title, str):
        raise _fail("study.title", f"must be a string, got {title!r}")
    data = _check_data_table(_table(raw.get("data", {}), "data"))
    grid = _grid(raw.get("grid", {}), data)
    if "model" not in raw:
        raise _fail("model", "missing: give a [model] table (or several [[model]] tables)")
    models = _models(raw["model"])
    train, epochs = _train(raw.get("train", {}))
    betas = _betas(raw.get("curve", {}))
    slope = _slope(raw["slope"], train) if "slope" in raw else None
    tracking = _tracking(raw["tracking"], epochs) if "tracking" in raw else None
    attacks = _attacks(raw, data, grid) if "attack" in raw else ()
    dynamics = parse_dynamics(raw["dynamics"]) if "dynamics" in raw else None
    convex = parse_convex(raw["convex"]) if "convex" in raw else None
    if dynamics is not None and dynamics.classes and data["target"] in dynamics.classes:
        raise _fail(
            "dynamics.classes",
            f"must be clean classes, not the target class {data['target']} (data.target)",
        )
    if (dynamics is not None or convex is not None) and data["mode"] != "all-to-one":
        raise _fail(
            "dynamics" if dynamics is not None else "convex",
            "needs data.mode = 'all-to-one' (a target class to compare with the clean classes)",
        )
    return NNConfig(
        data=data,
        models=models,
        train=train,
        epochs=epochs,
        betas=betas,
        grid=grid,
        slope=slope,
        tracking=tracking,
        attacks=attacks,
        dynamics=dynamics,
        convex=convex,
        title=title,
        source=source,
    )
