"""Lazy access to torch / torchvision and the choice of device.

``import extractors`` (and ``import backdoor_curves``) never imports torch: every function that
needs it calls :func:`require_torch` or :func:`require_torchvision` at run time.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["require_torch", "require_torchvision", "resolve_device"]

_INSTALL_HINT = 'pip install "backdoor-curves[torch]"'


def require_torch() -> ModuleType:
    """Import and return ``torch``, or raise ``ModuleNotFoundError`` saying how to install it."""
    try:
        return importlib.import_module("torch")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the feature extractors need torch and torchvision: run `{_INSTALL_HINT}`"
        ) from exc


def require_torchvision() -> ModuleType:
    """Import and return ``torchvision`` (after torch), or raise saying how to install it."""
    require_torch()
    try:
        return importlib.import_module("torchvision")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the feature extractors and image loaders need torchvision: run `{_INSTALL_HINT}`"
        ) from exc


def resolve_device(device: Any) -> Any:
    """Return a ``torch.device`` for ``device``.

    Parameters
    ----------
    device : {"cpu", "cuda", "cuda:N", "auto"} or torch.device
        ``"auto"`` picks CUDA when available, else the CPU.

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
