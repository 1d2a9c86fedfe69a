"""ImageNet CNN feature extractors as scikit-learn transformers (DESIGN §6).

- :class:`AlexNetFeatures`: torchvision AlexNet up to the ReLU after fc7 (``classifier[5]``),
  4096 non-negative features per image.
- :class:`ResNetFeatures`: torchvision ResNet-18 / ResNet-50 up to the global average pool (the
  input of ``fc``), 512 / 2048 features per image.

Preprocessing of every image, in this order: grayscale is repeated to 3 channels; the image is
resized to ``resize x resize`` pixels (bilinear, anti-aliased when shrinking; the aspect ratio is
not kept, so crop non-square images first); each channel is normalized with the ImageNet mean
(0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225). The network runs in
``eval()`` mode under ``torch.inference_mode()`` in batches of ``batch_size`` images.

``__init__`` only stores its arguments; ``fit`` checks them, finds the weights (failing at once,
without downloading, when a pretrained file is missing) and picks the device; the network is
built at the first ``transform`` that is not served from the feature cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from backdoor_curves._validation import check_int, check_seed
from backdoor_curves.utils import require_torch, require_torchvision

from ._torch import resolve_device
from .cache import FeatureCache, cache_key
from .images import as_image_batch
from .weights import load_weights, resolve_weights

__all__ = ["AlexNetFeatures", "ResNetFeatures", "make_extractor", "EXTRACTORS"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_N_FEATURES = {"alexnet": 4096, "resnet18": 512, "resnet50": 2048}
_LAYER = {"alexnet": "classifier.5 (ReLU after fc7)", "resnet18": "avgpool", "resnet50": "avgpool"}
_MIN_SIZE = {"alexnet": 63, "resnet18": 32, "resnet50": 32}
_CACHE_FORMAT = 1


class _TorchvisionFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery; subclasses fix the architecture through :meth:`_arch`."""

    def __init__(
        self,
        weights="imagenet",
        *,
        device="cpu",
        batch_size: int = 64,
        resize: int | None = 224,
        normalize: bool = True,
        image_shape=None,
        cache_dir=None,
        random_state: int = 0,
    ):
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        self.resize = resize
        self.normalize = normalize
        self.image_shape = image_shape
        self.cache_dir = cache_dir
        self.random_state = random_state

    def _arch(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    # ------------------------------------------------------------------ fit
    def fit(self, X=None, y=None):
        """Check the parameters, locate the weights and choose the device.

        Parameters
        ----------
        X : array-like of images, optional
            Ignored apart from validation (the extractor is not trained).
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        self

        Raises
        ------
        FileNotFoundError
            Pretrained weights not in torchvision's cache (the message names the file and the
            directory); nothing is downloaded.
        ValueError, TypeError
            Naming the offending parameter (``batch_size``, ``resize``, ``device``, ...).
        """
        arch = self._arch()
        check_int(self.batch_size, "batch_size", 1)
        if self.resize is not None:
            check_int(self.resize, "resize", _MIN_SIZE[arch])
        if not isinstance(self.normalize, bool):
            raise TypeError(f"normalize must be a bool, got {type(self.normalize).__name__}")
        check_seed(self.random_state, "random_state")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, Path)):
            raise TypeError(
                f"cache_dir must be None or a path, got {type(self.cache_dir).__name__}"
            )
        if X is not None:
            as_image_batch(X, "X", self.image_shape)
        self.device_ = resolve_device(self.device)
        resolved = resolve_weights(arch, self.weights, self.random_state)
        self.weights_path_ = resolved.path
        self.weights_id_ = resolved.identity
        self._n_features_out = _N_FEATURES[arch]
        self.n_features_out_ = _N_FEATURES[arch]
        self._model = None
        return self

    # ------------------------------------------------------------------ model
    def _build_model(self):
        torch = require_torch()
        tv = require_torchvision()
        arch = self._arch()
        builder = getattr(tv.models, arch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            model = builder(weights=None)
        if self.weights_path_ is not None:
            load_weights(model, self.weights_path_, arch)
        if arch == "alexnet":
            model.classifier = model.classifier[:6]  # Dropout, fc6, ReLU, Dropout, fc7, ReLU
        else:
            model.fc = torch.nn.Identity()
        return model.eval().to(self.device_)

    def feature_map(self):
        """The extractor as a differentiable torch module phi: images -> features.

        The same preprocessing and network as :meth:`transform` (the features are the same
        numbers), as a ``torch.nn.Module`` whose output carries gradients to its input: e.g.
        ``input_gradient_map(learner, image, feature_map=extractor.feature_map())`` shows
        where a convex learner trained on these features looks in the image (paper 001,
        Fig. 12), by grad_x f(phi(x)) = J_phi(x)^T grad_phi f. See
        :class:`extractors.feature_map.ImageFeatureMap` for the input layouts.

        Returns
        -------
        extractors.feature_map.ImageFeatureMap
            In ``eval()`` mode on the extractor's device, float32, parameters frozen; one
            module per fitted extractor (later calls return the same object).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the extractor has not been fitted.
        """
        check_is_fitted(self, "weights_id_")
        if getattr(self, "_model", None) is None:
            from .feature_map import ImageFeatureMap

            self._model = ImageFeatureMap(
                self._build_model(),
                self.resize,
                IMAGENET_MEAN if self.normalize else None,
                IMAGENET_STD if self.normalize else None,
            ).to(self.device_)
        return self._model

    def _extract(self, images: np.ndarray) -> np.ndarray:
        """Features of a validated float32 (n, C, H, W) batch, shape (n, n_features_out_)."""
        torch = require_torch()
        phi = self.feature_map()
        out = np.empty((images.shape[0], self.n_features_out_), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, images.shape[0], self.batch_size):
                feats = phi.features_of(torch.from_numpy(images[start : start + self.batch_size]))
                out[start : start + feats.shape[0]] = feats.float().cpu().numpy()
        return out

    def _cache_meta(self) -> dict:
        return {
            "format": _CACHE_FORMAT,
            "extractor": self._arch(),
            "layer": _LAYER[self._arch()],
            "weights": self.weights_id_,
            "resize": self.resize,
            "normalize": self.normalize,
        }

    # ------------------------------------------------------------------ transform
    def transform(self, X) -> np.ndarray:
        """Features of a batch of images.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, C, H, W) or (n, H*W*C)
            Pixel intensities in [0, 1]; C in {1, 3}; 2-D input needs ``image_shape``.

        Returns
        -------
        ndarray of float32, shape (n, n_features_out_)
            The features; when ``cache_dir`` is set they are read from (or written to) the
            feature cache keyed by extractor, weights, preprocessing and the images' bytes.
        """
        check_is_fitted(self, "weights_id_")
        images = as_image_batch(X, "X", self.image_shape)
        if self.cache_dir is None:
            return self._extract(images)
        cache = FeatureCache(self.cache_dir)
        meta = self._cache_meta()
        key = cache_key(meta, images)
        features = cache.load(key)
        if features is None or features.shape != (images.shape[0], self.n_features_out_):
            features = self._extract(images)
            cache.save(key, features, meta=meta)
        return features


_DOC_PARAMS = """
    weights : "imagenet", torchvision weight name, None or path, default="imagenet"
        ``"imagenet"``: torchvision's ImageNet-1k weights (``IMAGENET1K_V1``), which must already
        be in ``$TORCH_HOME/hub/checkpoints/`` (see :mod:`extractors.weights`; never downloaded).
        ``None``: random weights seeded by ``random_state`` (for tests). A path: a local state
        dict (``.pth``) of the full torchvision model.
    device : str or torch.device, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available). Asking for CUDA
        on a machine without it raises ``ValueError`` in ``fit``.
    batch_size : int, default=64
        Images per forward pass.
    resize : int or None, default=224
        Side, in pixels, the images are resized to before the network (None: keep their size).
    normalize : bool, default=True
        Subtract the ImageNet channel means and divide by the standard deviations.
    image_shape : tuple of int, optional
        ``(H, W)`` or ``(H, W, C)`` to unflatten 2-D input (flattened pixels).
    cache_dir : str or Path, optional
        Directory of the on-disk feature cache (:class:`extractors.cache.FeatureCache`); None
        disables caching.
    random_state : int, default=0
        Seed of the random weights when ``weights=None``.
"""


class AlexNetFeatures(_TorchvisionFeatures):
    __doc__ = (
        """AlexNet features: the 4096 activations of the ReLU after fc7.

    torchvision's ``alexnet`` with ``classifier`` cut after its index 5 (Dropout, fc6, ReLU,
    Dropout, fc7, ReLU; dropout is inactive in eval mode). The features are non-negative.

    Parameters
    ----------"""
        + _DOC_PARAMS
        + """
    Attributes
    ----------
    n_features_out_ : int
        4096.
    weights_id_ : str
        Identity of the weights (file name, content hash or ``random:<seed>``).
    device_ : torch.device
        The device the network runs on.

    Examples
    --------
    >>> import numpy as np
    >>> ext = AlexNetFeatures(weights=None, resize=64).fit()  # doctest: +SKIP
    >>> ext.transform(np.zeros((2, 28, 28))).shape  # doctest: +SKIP
    (2, 4096)
    """
    )

    def _arch(self) -> str:
        return "alexnet"


class ResNetFeatures(_TorchvisionFeatures):
    __doc__ = (
        """ResNet features: the globally average-pooled output of the last block (input of fc).

    Parameters
    ----------
    arch : {"resnet18", "resnet50"}, default="resnet18"
        512 features for ResNet-18, 2048 for ResNet-50."""
        + _DOC_PARAMS
        + """
    Attributes
    ----------
    n_features_out_ : int
        512 or 2048.
    weights_id_ : str
        Identity of the weights (file name, content hash or ``random:<seed>``).
    device_ : torch.device
        The device the network runs on.
    """
    )

    def __init__(
        self,
        arch: str = "resnet18",
        weights="imagenet",
        *,
        device="cpu",
        batch_size: int = 64,
        resize: int | None = 224,
        normalize: bool = True,
        image_shape=None,
        cache_dir=None,
        random_state: int = 0,
    ):
        self.arch = arch
        super().__init__(
            weights, device=device, batch_size=batch_size, resize=resize, normalize=normalize,
            image_shape=image_shape, cache_dir=cache_dir, random_state=random_state,
        )  # fmt: skip

    def _arch(self) -> str:
        if self.arch not in ("resnet18", "resnet50"):
            raise ValueError(f"arch must be 'resnet18' or 'resnet50', got {self.arch!r}")
        return self.arch


EXTRACTORS = ("alexnet", "resnet18", "resnet50")


def make_extractor(name: str, **params) -> AlexNetFeatures | ResNetFeatures:
    """Build an extractor by name: ``"alexnet"``, ``"resnet18"`` or ``"resnet50"``.

    Parameters
    ----------
    name : {"alexnet", "resnet18", "resnet50"}
        The architecture (see :data:`EXTRACTORS`).
    **params
        Keyword arguments of the extractor's class (``weights``, ``device``, ``batch_size``,
        ``resize``, ``cache_dir``, ...).

    Returns
    -------
    AlexNetFeatures or ResNetFeatures
        The unfitted extractor.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is not one of :data:`EXTRACTORS`.
    """
    if not isinstance(name, str):
        raise TypeError(f"extractor must be one of {list(EXTRACTORS)}, got {name!r}")
    if name == "alexnet":
        return AlexNetFeatures(**params)
    if name in ("resnet18", "resnet50"):
        return ResNetFeatures(name, **params)
    raise ValueError(f"extractor must be one of {list(EXTRACTORS)} or 'none', got {name!r}")
