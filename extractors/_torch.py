"""The choice of torch device for the extractors.

torch is imported lazily, through :func:`backdoor_curves.utils.require_torch`, so ``import
extractors`` (like ``import backdoor_curves``) never imports it.
"""

from __future__ import annotations

from typing import Any

from backdoor_curves.utils import require_torch

__all__ = ["resolve_device"]


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
