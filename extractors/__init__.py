"""ImageNet CNN features for the convex learners: extractors, feature cache, the data pipeline.

Importing this package does not import torch; torch and torchvision (the ``torch`` extra:
``pip install "backdoor-curves[torch]"``) are imported when an extractor or loader runs.

- :class:`AlexNetFeatures`, :class:`ResNetFeatures`: scikit-learn transformers, images -> features.
- :class:`FeatureCache`: self-checking on-disk cache of extracted features.
- :func:`load_backdoor_data`: load, poison the images, extract, return a ``BackdoorData``; the
  data loader of ``[data] dataset = "mnist-full" | "cifar10" | "imagenette"`` in a study's
  configuration (registered in the entry-point group ``backdoor_curves.data_loaders``, see
  :mod:`backdoor_curves.study.loaders`).

The image data sets themselves (:func:`~backdoor_curves.datasets.load_mnist_full`,
:func:`~backdoor_curves.datasets.load_cifar10`, :func:`~backdoor_curves.datasets.load_imagenette`)
live in :mod:`backdoor_curves.datasets`.
"""

from .cache import CacheCorruptionWarning, FeatureCache
from .features import AlexNetFeatures, ResNetFeatures, make_extractor
from .pipeline import DATA_KEYS, DATASETS, load_backdoor_data
from .weights import resolve_weights, weights_file_name

__all__ = [
    "AlexNetFeatures",
    "CacheCorruptionWarning",
    "DATASETS",
    "DATA_KEYS",
    "FeatureCache",
    "ResNetFeatures",
    "load_backdoor_data",
    "make_extractor",
    "resolve_weights",
    "weights_file_name",
]
