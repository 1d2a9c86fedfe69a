"""Where the pretrained weights come from: torchvision's cache, a local file, or nowhere.

The lookup lives in :mod:`backdoor_curves.nn.weights` (one copy, shared with the neural-network
adapter's ResNets); this module re-exports it under its historical name. Nothing downloads:
``weights="imagenet"`` reads torchvision's cache ``$TORCH_HOME/hub/checkpoints/`` and fails at once
with a ``FileNotFoundError`` naming the file, the directory and the URL when the file is missing.
"""

from __future__ import annotations

from backdoor_curves.nn.weights import (
    ARCHITECTURES,
    ResolvedWeights,
    checkpoint_dir,
    load_weights,
    resolve_weights,
    weights_file_name,
)

__all__ = [
    "ARCHITECTURES",
    "ResolvedWeights",
    "checkpoint_dir",
    "load_weights",
    "resolve_weights",
    "weights_file_name",
]
