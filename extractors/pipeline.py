"""``load -> poison images -> extract features -> BackdoorData`` in one call (issue #5, item 5).

The trigger is stamped on the *images*, and only then are features extracted, so the extractor
sits between poisoning and learning (paper 001, transfer-learning setting). Poisoning is
:func:`backdoor_curves.attacks.poison_images`, the implementation behind
:func:`backdoor_curves.poison`: ``floor(fraction * n)`` training images, chosen by
``random_state``, leave the clean set, are triggered and relabelled to the other class; every test
image is triggered and relabelled for the backdoor test set. Triggered images keep the loader's
dtype (float64 for the embedded MNIST, float32 for the torchvision / Imagenette loaders). With
``extractor="none"`` the result equals ``backdoor_curves.poison`` on the same images.
"""

from __future__ import annotations

import numbers
from typing import Any

from backdoor_curves._validation import check_choice, check_fraction, check_seed
from backdoor_curves.attacks import TRIGGERS, make_trigger, poison_images
from backdoor_curves.attacks import trigger_params as trigger_config_params
from backdoor_curves.data import BackdoorData
from backdoor_curves.datasets import (
    load_cifar10,
    load_imagenette,
    load_mnist_full,
    load_mnist_pair,
    resolve_classes,
    stratified_subsample,
)

from .features import EXTRACTORS, make_extractor

__all__ = ["DATA_KEYS", "DATASETS", "load_backdoor_data"]

DATASETS = ("mnist", "mnist-full", "cifar10", "imagenette")
_LOADERS = {"mnist-full": load_mnist_full, "cifar10": load_cifar10, "imagenette": load_imagenette}
_DEFAULT_CLASSES = {
    "mnist": (7, 1),
    "mnist-full": (7, 1),
    "cifar10": ("airplane", "frog"),
    "imagenette": ("tench", "garbage truck"),
}
_PAPER_SIZES = (1500, 500)  # training / test images per pair (paper 001)
_TRIGGER_CHUNK = 256  # images triggered at a time (bounds the float64 copies for Imagenette)

#: The keys of the TOML ``[data]`` table, i.e. the keyword arguments of :func:`load_backdoor_data`:
#: its named parameters, then every trigger's parameters (``size``, ``intensity``, ``alpha``, ...)
#: from the registry :data:`backdoor_curves.attacks.TRIGGERS`.
DATA_KEYS = (
    "dataset", "classes", "root", "extractor", "weights", "trigger", "trigger_seed", "fraction",
    "n_train", "n_test", "random_state", "cache_dir", "device", "batch_size", "download",
    *trigger_config_params(),
)  # fmt: skip


def _check_size(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, got {value!r}")
    if value < 2:
        raise ValueError(f"{name} must be at least 2 (one image per class), got {value}")
    return int(value)


def _load_images(dataset, classes, root, n_train, n_test, random_state, download):
    n_train, n_test = _check_size(n_train, "n_train"), _check_size(n_test, "n_test")
    if dataset == "mnist":
        X_tr, y_tr, X_te, y_te = load_mnist_pair(resolve_classes(classes, "mnist-full"))
        i_tr = stratified_subsample(y_tr, n_train, random_state)
        i_te = stratified_subsample(y_te, n_test, random_state)
        return X_tr[i_tr], y_tr[i_tr], X_te[i_te], y_te[i_te]
    load = _LOADERS[dataset]
    n_train = _PAPER_SIZES[0] if n_train is None else n_train
    n_test = _PAPER_SIZES[1] if n_test is None else n_test
    kw = {"n": None, "random_state": random_state, "download": download}
    X_tr, y_tr = load(root, classes, split="train", **{**kw, "n": n_train})
    X_te, y_te = load(root, classes, split="test", **{**kw, "n": n_test})
    return X_tr, y_tr, X_te, y_te


def load_backdoor_data(
    *,
    dataset: str = "mnist",
    classes=None,
    root=None,
    extractor: str | None = None,
    weights: Any = "imagenet",
    trigger: str = "badnets",
    trigger_seed: int | None = None,
    fraction: float = 0.1,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int = 0,
    cache_dir=None,
    device: str = "cpu",
    batch_size: int = 64,
    download: bool = True,
    **trigger_params: Any,
) -> BackdoorData:
    """Load a two-class image problem, poison it, extract features and build a BackdoorData.

    The keyword arguments are exactly the keys of a study's TOML ``[data]`` table
    (:data:`DATA_KEYS`).

    Parameters
    ----------
    dataset : {"mnist", "mnist-full", "cifar10", "imagenette"}, default="mnist"
        ``"mnist"``: the embedded 5,000 digits (:func:`backdoor_curves.load_mnist_pair`, 750
        train / 250 test per pair, no ``root``); the others need ``root``
        (see :mod:`backdoor_curves.datasets.images`).
    classes : pair of names or indices, optional
        Default: (7, 1) for MNIST, ("airplane", "frog") for CIFAR-10, ("tench", "garbage truck")
        for Imagenette.
    root : str or Path
        Data folder (required except for ``"mnist"``).
    extractor : {"alexnet", "resnet18", "resnet50", "none"}, optional
        ``"none"``: flattened pixels. Default: ``"none"`` for both MNIST data sets, ``"alexnet"``
        otherwise (the paper's settings).
    weights : "imagenet", None, "random" or path, default="imagenet"
        Extractor weights (:func:`extractors.weights.resolve_weights`); never downloaded.
        ``"random"`` (TOML has no null) is the same as None: seeded random weights.
    trigger : str, default="badnets"
        The trigger stamped on the images: a name of :data:`backdoor_curves.attacks.TRIGGERS`
        (:func:`backdoor_curves.attacks.triggers.make_trigger`).
    trigger_seed : int, optional
        The trigger's ``random_state`` (default 0): the BadNets patches, the Blend noise, the
        WaNet field; refused for a trigger without a seed.
    fraction : float, default=0.1
        Poisoning fraction p in (0, 1) of the training images.
    n_train, n_test : int, optional
        Stratified, seeded subsample sizes. Default: 1,500 and 500 (the paper's) for the full
        data sets, all 750 and 250 images for ``"mnist"``.
    random_state : int, default=0
        Seed of the subsample and of the choice of poisoned images.
    cache_dir : str or Path, optional
        Feature cache directory (:class:`extractors.cache.FeatureCache`); None: no cache.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    batch_size : int, default=64
        Images per forward pass of the extractor.
    download : bool, default=True
        Try to download missing data sets (with a timeout; failure raises at once).
    **trigger_params
        The trigger's parameters (:func:`backdoor_curves.attacks.trigger_params`), e.g. ``size``
        (BadNets patch side in pixels, default 3, of the *original* image before resizing),
        ``intensity`` (invisible grid), ``alpha`` (Blend); None means the default. Any other key
        is refused with a ``ValueError`` naming it (a typo in the ``[data]`` table).

    Returns
    -------
    BackdoorData
        Features of D, P, V and V_t (float64 after BackdoorData's checks): 4096 columns for
        AlexNet, 512 / 2048 for ResNet-18/50, H*W*C pixels (with ``image_shape``) for ``"none"``.
        Labels: digits (int) for MNIST, class names (str) otherwise.

    Raises
    ------
    ValueError
        Naming the key: an unknown key, an unknown dataset / extractor / trigger / class, a
        fraction outside (0, 1) or leaving P empty, sizes larger than the data.
    TypeError
        Naming the key: a value of the wrong type (a fraction, size or seed that is not a
        number, a ``download`` that is not a bool).
    FileNotFoundError
        Missing data files (:class:`backdoor_curves.datasets.DatasetUnavailableError`) or missing
        pretrained weights; the message says which file to put where.
    """
    unknown = set(trigger_params) - set(DATA_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key(s) {sorted(unknown)} in the [data] table; valid keys: {list(DATA_KEYS)}"
        )
    check_choice(dataset, "dataset", DATASETS)
    classes = _DEFAULT_CLASSES[dataset] if classes is None else classes
    if root is None and dataset != "mnist":
        raise ValueError(f"root is required for dataset={dataset!r}: the data folder")
    if extractor is None:  # the paper's settings: pixels for MNIST, AlexNet fc7 otherwise
        extractor = "none" if dataset in ("mnist", "mnist-full") else "alexnet"
    check_choice(extractor, "extractor", (*EXTRACTORS, "none"))
    fraction = check_fraction(fraction, "fraction")
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}")
    trigger_seed = check_seed(trigger_seed, "trigger_seed", allow_none=True)
    random_state = check_seed(random_state, "random_state")
    params = {k: v for k, v in trigger_params.items() if v is not None}
    if trigger_seed is not None:
        params["random_state"] = trigger_seed
    check_choice(trigger, "trigger", tuple(TRIGGERS))
    try:
        trig = make_trigger(trigger, **params)
    except TypeError as exc:
        raise ValueError(str(exc).replace("random_state", "trigger_seed")) from None
    if extractor != "none":  # fail fast on missing weights / bad device before loading data
        ext = make_extractor(
            extractor, weights=weights, device=device, batch_size=batch_size, cache_dir=cache_dir
        ).fit()

    X_tr, y_tr, X_te, y_te = _load_images(
        dataset, classes, root, n_train, n_test, random_state, download
    )
    sets = poison_images(
        X_tr, y_tr, X_te, y_te,
        trigger=trig, fraction=fraction, random_state=random_state, chunk_size=_TRIGGER_CHUNK,
    )  # fmt: skip
    return sets.to_backdoor_data(None if extractor == "none" else ext.transform)


#: The ``[data]`` keys a study may give this loader (its signature names only the fixed ones; the
#: trigger parameters come through ``**trigger_params``): read by
#: :func:`backdoor_curves.study.loaders.data_keys`.
load_backdoor_data.data_keys = DATA_KEYS
