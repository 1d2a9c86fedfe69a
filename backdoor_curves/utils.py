"""Lazy access to the optional ``torch`` extra, shared by the package and ``extractors``.

``import backdoor_curves`` never imports torch: the code that needs torch or torchvision (the image
data sets, the ``extractors`` package, the neural-network adapter) calls :func:`require_torch` or
:func:`require_torchvision` when it runs, and gets a ``ModuleNotFoundError`` saying how to install
the extra when it is missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["INSTALL_TORCH", "require_torch", "require_torchvision", "resolve_device"]

#: The command that installs the ``torch`` extra (torch and torchvision).
INSTALL_TORCH = 'pip install "backdoor-curves[torch]"'


def require_torch() -> ModuleType:
    """Import and return ``torch``.

    Returns
    -------
    module
        The ``torch`` module.

    Raises
    ------
    ModuleNotFoundError
        If torch is not installed; the message gives the command that installs the extra.
    """
    try:
        return importlib.import_module("torch")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "the feature extractors, image data sets and neural networks need torch and "
            f"torchvision (the torch extra): run `{INSTALL_TORCH}`"
        ) from exc


def require_torchvision() -> ModuleType:
    """Import and return ``torchvision`` (after torch).

    Returns
    -------
    module
        The ``torchvision`` module.

    Raises
    ------
    ModuleNotFoundError
        If torch or torchvision is not installed; the message gives the command that installs
        the extra.
    """
    require_torch()
    try:
        return importlib.import_module("torchvision")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "the feature extractors and image data sets need torchvision (the torch extra): "
            f"run `{INSTALL_TORCH}`"
        ) from exc


def resolve_device(device: Any) -> Any:
    """Return a ``torch.device`` for ``device``.

    Parameters
    ----------
    device : {"cpu", "cuda", "cuda:N", "auto"} or torch.device
        ``"auto"`` picks CUDA when available, else the CPU.

    Returns
    -------
    torch.device
        The device; a CUDA device only when ``torch.cuda.is_available()``.

    Raises
    ------
    TypeError
        If ``device`` is neither a string nor a ``torch.device``.
    ValueError
        Naming ``device`` if the string is not a device, or if CUDA is asked for but not
        available on this machine (or the index is out of range).
    """
    torch = require_torch()
    if isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ValueError(
                f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}"
            ) from None
    elif isinstance(device, torch.device):
        dev = device
    else:
        raise TypeError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'auto' or a torch.device, "
            f"got {type(device).__name__}"
        )
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"device must be 'cpu' or 'cuda' (got {device!r}): no other backend")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but torch.cuda.is_available() is False on this "
            "machine (no GPU or a CPU-only torch build); use device='cpu'"
        )
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return dev
