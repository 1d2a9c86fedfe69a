"""Lazy access to the optional ``torch`` extra, shared by the package and ``extractors``.

``import backdoor_curves`` never imports torch: the code that needs torch or torchvision (the image
data sets, the ``extractors`` package, the neural-network adapter) calls :func:`require_torch` or
:func:`require_torchvision` when it runs, and gets a ``ModuleNotFoundError`` saying how to install
the extra when it is missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["INSTALL_TORCH", "require_torch", "require_torchvision"]

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
