"""Where the pretrained weights come from: torchvision's cache, a local file, or nowhere.

The one offline weight lookup of the project, shared by the neural-network adapter
(:func:`backdoor_curves.nn.models.resnet`) and the feature extractors (``extractors`` re-exports
it). Nothing here downloads. ``weights="imagenet"`` means torchvision's ImageNet-1k weights
(``IMAGENET1K_V1``) *as already present* in torchvision's cache directory
``$TORCH_HOME/hub/checkpoints/`` (``torch.hub.get_dir()/checkpoints``; ``TORCH_HOME`` defaults to
``~/.cache/torch``). When the file is missing the lookup fails at once with a
``FileNotFoundError`` naming the file, the directory and the URL to fetch it from:

=========  =====================================  =======
model      file                                   size
=========  =====================================  =======
alexnet    ``alexnet-owt-7be5be79.pth``           233 MB
resnet18   ``resnet18-f37072fd.pth``              45 MB
resnet50   ``resnet50-0676ba61.pth`` (V1)         98 MB
=========  =====================================  =======

``IMAGENET1K_V2`` (resnet50 only: ``resnet50-11ad3fa6.pth``) may be named explicitly.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..utils import require_torch, require_torchvision

__all__ = [
    "ARCHITECTURES",
    "ResolvedWeights",
    "checkpoint_dir",
    "load_weights",
    "resolve_weights",
    "weights_file_name",
]

#: torchvision builder name -> name of its weights enum.
ARCHITECTURES = {
    "alexnet": "AlexNet_Weights",
    "resnet18": "ResNet18_Weights",
    "resnet50": "ResNet50_Weights",
}
_ALIASES = {"imagenet": "IMAGENET1K_V1"}
_RANDOM = ("random", "none")  # spellings of weights=None for TOML, which has no null


@dataclass(frozen=True)
class ResolvedWeights:
    """Resolved weights: ``path`` to load (None for random weights) and a stable ``identity``.

    Attributes
    ----------
    path : Path or None
        The state-dict file to load; None for random weights.
    identity : str
        Enters the feature-cache key: the torchvision file name (which embeds a prefix of its
        SHA-256), ``sha256:<hex>`` of a local file's content, or ``random:<seed>``.
    """

    path: Path | None
    identity: str


def _enum_member(arch: str, name: str):
    tv = require_torchvision()
    enum = getattr(tv.models, ARCHITECTURES[arch])
    try:
        return enum[name]
    except KeyError:
        valid = ["imagenet", *enum.__members__]
        raise ValueError(
            f"weights={name!r} is not a pretrained weight set of {arch}; use one of {valid}, "
            "None (random weights) or a path to a .pth file"
        ) from None


def weights_file_name(arch: str, name: str = "imagenet") -> str:
    """File name torchvision caches the weights ``name`` of ``arch`` under.

    Parameters
    ----------
    arch : {"alexnet", "resnet18", "resnet50"}
        The architecture.
    name : str, default="imagenet"
        "imagenet" (``IMAGENET1K_V1``) or a member of the architecture's torchvision weights
        enum (e.g. "IMAGENET1K_V2").

    Returns
    -------
    str
        The file name, e.g. ``"alexnet-owt-7be5be79.pth"`` (the last part of the download URL).

    Raises
    ------
    ValueError
        If ``arch`` is not one of :data:`ARCHITECTURES`, or ``name`` is not a weight set of
        ``arch``.
    ImportError
        If torchvision is not installed.

    Examples
    --------
    >>> weights_file_name("alexnet")  # doctest: +SKIP
    'alexnet-owt-7be5be79.pth'
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
    member = _enum_member(arch, _ALIASES.get(name, name))
    return os.path.basename(urlparse(member.url).path)


def checkpoint_dir() -> Path:
    """torchvision's weight cache directory.

    Returns
    -------
    Path
        ``torch.hub.get_dir()/checkpoints`` (follows ``TORCH_HOME``; default
        ``~/.cache/torch/hub/checkpoints``). Not created.

    Raises
    ------
    ModuleNotFoundError
        If torch is not installed.
    """
    torch = require_torch()
    return Path(torch.hub.get_dir()) / "checkpoints"


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA_MEMO[key] = h.hexdigest()
    return _SHA_MEMO[key]


def resolve_weights(arch: str, weights, random_state: int = 0) -> ResolvedWeights:
    """Find the weights file for ``arch`` without downloading anything.

    Parameters
    ----------
    arch : {"alexnet", "resnet18", "resnet50"}
        The architecture.
    weights : "imagenet", a torchvision enum name such as "IMAGENET1K_V1", None, or a path
        ``None`` (or the strings ``"random"`` / ``"none"``, for TOML files, which have no null):
        random initialisation, seeded by ``random_state``. A path (``str`` containing a
        path separator or ending in ``.pth``/``.pt``, or a ``pathlib.Path``): a local state dict of
        the full torchvision model.
    random_state : int, default=0
        Seed of the random weights (only used when ``weights`` is None).

    Returns
    -------
    ResolvedWeights
        The file to load (None for random weights) and the identity that keys the cache.

    Raises
    ------
    FileNotFoundError
        When the pretrained file is not in torchvision's cache or the local path does not exist;
        the message names the file, the directory where to put it and the download URL.
    ValueError, TypeError
        Naming ``weights`` for an unknown weight set or a value of the wrong kind; naming
        ``arch`` for an unknown architecture.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
    if weights is None or (isinstance(weights, str) and weights.lower() in _RANDOM):
        return ResolvedWeights(None, f"random:{int(random_state)}")
    if isinstance(weights, str) and not (
        os.sep in weights or "/" in weights or weights.endswith((".pth", ".pt"))
    ):
        member = _enum_member(arch, _ALIASES.get(weights, weights))
        name = os.path.basename(urlparse(member.url).path)
        folder = checkpoint_dir()
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained {arch} weights ({member.name}) not found: expected the file {name} "
                f"in {folder} (torchvision's cache; set TORCH_HOME to use another one). Nothing "
                f"is downloaded automatically: fetch {member.url} and put it there, or pass "
                "weights=None (random weights) or weights=<path to a .pth file>"
            )
        return ResolvedWeights(path, name)
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
        return ResolvedWeights(path, f"sha256:{_file_sha256(path)}")
    raise TypeError(
        "weights must be 'imagenet', a torchvision weight name, None or a path to a .pth file, "
        f"got {type(weights).__name__}"
    )


def load_weights(model, path, arch: str) -> None:
    """Load a state-dict file into a torchvision model, in place.

    Parameters
    ----------
    model : torch.nn.Module
        The torchvision model of ``arch`` (its original head, before any replacement).
    path : str or Path
        The state-dict file (:attr:`ResolvedWeights.path`), read on the CPU with
        ``torch.load(weights_only=True)``.
    arch : str
        The architecture's name, for the error message.

    Raises
    ------
    ValueError
        If the file does not hold a state dict of ``arch`` (the message names the file, the
        architecture and the start of torch's error).
    ModuleNotFoundError
        If torch is not installed.
    """
    torch = require_torch()
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"weights file {path} is not a state dict of torchvision's {arch}: {str(exc)[:500]}"
        ) from None
