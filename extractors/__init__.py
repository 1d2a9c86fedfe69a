"""ImageNet CNN features for the convex learners: extractors, feature cache, image data sets.

Importing this package does not import torch; torch and torchvision (the ``torch`` extra:
``pip install "backdoor-curves[torch]"``) are imported when an extractor or loader runs.

- :class:`AlexNetFeatures`, :class:`ResNetFeatures`: scikit-learn transformers, images -> features.
- :class:`FeatureCache`: self-checking on-disk cache of extracted features.
- :func:`load_mnist_full`, :func:`load_cifar10`, :func:`load_imagenette`: two-class subproblems.
- :func:`load_backdoor_data`: load, poison the images, extract, return a ``BackdoorData``.
"""

from .cache import CacheCorruptionWarning, FeatureCache
from .datasets import (
    CLASS_NAMES,
    DatasetUnavailableError,
    load_cifar10,
    load_imagenette,
    load_mnist_full,
    stratified_subsample,
)
from .features import AlexNetFeatures, ResNetFeatures, make_extractor
from .pipeline import DATA_KEYS, DATASETS, load_backdoor_data
from .weights import resolve_weights, weights_file_name

__all__ = [
    "AlexNetFeatures",
    "CLASS_NAMES",
    "CacheCorruptionWarning",
    "DATASETS",
    "DATA_KEYS",
    "DatasetUnavailableError",
    "FeatureCache",
    "ResNetFeatures",
    "load_backdoor_data",
    "load_cifar10",
    "load_imagenette",
    "load_mnist_full",
    "make_extractor",
    "resolve_weights",
    "stratified_subsample",
    "weights_file_name",
]
