"""Models for the neural-network adapter: a small CNN for digits and torchvision ResNets.

Any ``torch.nn.Module`` that maps a float32 batch of shape (n, C, H, W) (pixel values in [0, 1],
channels first) to logits of shape (n, n_classes) works with the trainer; these are the two the
experiments use:

- :class:`SmallCNN`: conv-relu-maxpool twice and a linear head, a few thousand parameters, for
  28x28 or 14x14 digits on the CPU (the default of the CPU experiment);
- :func:`resnet`: torchvision's ResNet-18 / ResNet-50 with a new ``n_classes`` head, from random
  weights or from pretrained ImageNet weights read offline
  (:func:`backdoor_curves.nn.weights.resolve_weights`: never downloaded).

This module imports torch when it is imported (it defines ``torch.nn.Module`` subclasses);
``backdoor_curves.nn`` imports it only when one of its names is first used.
"""

from __future__ import annotations

from .._validation import check_int
from ..utils import require_torch, require_torchvision
from .weights import load_weights, resolve_weights

torch = require_torch()

__all__ = ["MODEL_KINDS", "RESNETS", "SmallCNN", "resnet"]

#: The ResNets :func:`resnet` builds.
RESNETS = ("resnet18", "resnet50")
#: ImageNet channel means and standard deviations (torchvision's preprocessing).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SmallCNN(torch.nn.Module):
    """A small convolutional network for 28x28 or 14x14 digits.

    ``conv1`` (3x3, ``width`` channels, padding 1) - ReLU - 2x2 max-pool - ``conv2`` (3x3,
    ``2 width`` channels, padding 1) - ReLU - 2x2 max-pool - adaptive average pool to 3x3 -
    flatten - ``fc`` (linear, ``18 width`` -> ``n_classes``). The adaptive pool makes the head
    the same for 28x28 inputs (7x7 maps averaged to 3x3) and 14x14 inputs (3x3 maps, unchanged),
    so the parameter count does not depend on the image size: 2,698 at ``width=8`` with one
    input channel and ten classes. Initialisation is PyTorch's default for each layer; seed it
    by building the model under :func:`backdoor_curves.nn.train.init_model`.

    Parameters
    ----------
    n_classes : int, default=10
        Number of outputs (logits), at least 2.
    in_channels : int, default=1
        Channels of the input images (1 for grayscale digits, 3 for colour).
    width : int, default=8
        Channels of ``conv1``; ``conv2`` has twice as many.

    Raises
    ------
    TypeError, ValueError
        Naming the argument when ``n_classes`` < 2, ``in_channels`` < 1 or ``width`` < 1, or
        when one is not an int.

    Examples
    --------
    >>> import torch
    >>> model = SmallCNN(n_classes=10, width=8)
    >>> model(torch.zeros(5, 1, 28, 28)).shape
    torch.Size([5, 10])
    >>> sum(p.numel() for p in model.parameters())
    2698
    """

    def __init__(self, n_classes: int = 10, in_channels: int = 1, width: int = 8):
        super().__init__()
        self.n_classes = check_int(n_classes, "n_classes", 2)
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.width = check_int(width, "width", 1)
        self.conv1 = torch.nn.Conv2d(self.in_channels, self.width, kernel_size=3, padding=1)
        self.conv2 = torch.nn.Conv2d(self.width, 2 * self.width, kernel_size=3, padding=1)
        self.fc = torch.nn.Linear(2 * self.width * 9, self.n_classes)

    def forward(self, x):
        """Logits of a batch of images.

        Parameters
        ----------
        x : torch.Tensor of shape (n, in_channels, H, W)
            Float images, H and W at least 4 (28 or 14 for digits).

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            The logits (unnormalised log-probabilities).
        """
        F = torch.nn.functional
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.adaptive_avg_pool2d(x, 3)
        return self.fc(torch.flatten(x, 1))


def _normalize_input(module, args):
    """Forward pre-hook of :func:`resnet`: grayscale to 3 channels, ImageNet normalisation."""
    (x,) = args
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return ((x - module.input_mean) / module.input_std,)


def resnet(
    name: str = "resnet18",
    n_classes: int = 10,
    weights=None,
    *,
    normalize: bool = True,
):
    """torchvision's ResNet-18 or ResNet-50 with a new classification head.

    The network is built with random weights (PyTorch's default initialisation; seed it through
    :func:`backdoor_curves.nn.train.init_model`), the pretrained state dict is loaded when
    ``weights`` names one, and the last layer ``fc`` is replaced by a freshly initialised
    ``Linear(512 or 2048, n_classes)``. Nothing is downloaded: ``weights="imagenet"`` reads
    torchvision's cache (:func:`backdoor_curves.nn.weights.resolve_weights`).

    Parameters
    ----------
    name : {"resnet18", "resnet50"}, default="resnet18"
        The architecture.
    n_classes : int, default=10
        Number of outputs of the new head, at least 2.
    weights : None, "imagenet", a torchvision weight name or a path, default=None
        None: random weights. ``"imagenet"`` (``IMAGENET1K_V1``) or another member of the
        torchvision weights enum: the file in torchvision's cache. A path (str or Path): a
        state dict of the full torchvision model (its 1000-class ``fc`` included), read with
        ``torch.load(weights_only=True)``.
    normalize : bool, default=True
        Prepend the ImageNet preprocessing as a forward pre-hook: grayscale inputs are repeated
        to 3 channels and each channel is standardised with the ImageNet mean and standard
        deviation, so the model takes images in [0, 1] as the trainer gives them. The constants
        are non-persistent buffers ``input_mean`` / ``input_std`` (they follow ``.to(device)``
        and stay out of the state dict).

    Returns
    -------
    torchvision.models.ResNet
        The model, in train mode, on the CPU.

    Raises
    ------
    FileNotFoundError
        If pretrained weights are asked for and the file is not in torchvision's cache (the
        message names the file, the directory and the URL) or the path does not exist.
    ValueError
        Naming ``name`` for an unknown architecture, ``n_classes`` below 2, or ``weights``
        for an unknown weight set or a file that is not a state dict of the architecture.
    TypeError
        Naming the argument of the wrong kind (``weights``, ``n_classes``, ``normalize``).
    """
    if not isinstance(name, str) or name not in RESNETS:
        raise ValueError(f"name must be one of {list(RESNETS)}, got {name!r}")
    n_classes = check_int(n_classes, "n_classes", 2)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    resolved = resolve_weights(name, weights)
    tv = require_torchvision()
    model = getattr(tv.models, name)(weights=None)
    if resolved.path is not None:
        load_weights(model, resolved.path, name)
    model.fc = torch.nn.Linear(model.fc.in_features, n_classes)
    if normalize:
        model.register_buffer(
            "input_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        model.register_buffer(
            "input_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )
        model.register_forward_pre_hook(_normalize_input)
    return model


# -- the registry of model kinds (``[model] kind`` of an nn configuration file) ----------------


def _small_cnn(n_classes: int = 10, in_channels: int = 1, *, width: int = 8):
    return SmallCNN(n_classes=n_classes, in_channels=in_channels, width=width)


def _resnet_kind(name: str):
    def build(n_classes: int = 10, in_channels: int = 3, *, weights=None, normalize: bool = True):
        if in_channels != 3 and not (in_channels == 1 and normalize is True):
            raise ValueError(
                f"in_channels must be 3 (or 1 with normalize=True) for {name}, got {in_channels}"
            )
        return resnet(name, n_classes, weights, normalize=normalize)

    build.__name__ = build.__qualname__ = f"_{name}"
    return build


_resnet18 = _resnet_kind("resnet18")
_resnet50 = _resnet_kind("resnet50")

#: Model kinds by name: ``MODEL_KINDS[kind](n_classes, in_channels, **params)`` builds a fresh
#: model. The keyword-only parameters of a builder (with their defaults) are the kind's settings
#: (``width`` of ``"small_cnn"``; ``weights`` and ``normalize`` of the ResNets). Module-level
#: functions, so ``functools.partial(MODEL_KINDS[kind], ...)`` is a picklable model factory.
MODEL_KINDS = {"small_cnn": _small_cnn, "resnet18": _resnet18, "resnet50": _resnet50}
