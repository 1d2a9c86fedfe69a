"""Backdoor attacks: triggers stamped on images and the poisoning of a training set with them."""

from .blend import SIG, Blend
from .dba import DeepBackdoorTrigger
from .multiclass import poison_multiclass
from .poisoning import PoisonedImages, poison, poison_images
from .triggers import (
    TRIGGERS,
    BadNetsPatch,
    InvisibleGrid,
    Trigger,
    make_trigger,
    trigger_params,
)
from .warping import WaNet

__all__ = [
    "TRIGGERS",
    "BadNetsPatch",
    "Blend",
    "DeepBackdoorTrigger",
    "InvisibleGrid",
    "PoisonedImages",
    "SIG",
    "Trigger",
    "WaNet",
    "make_trigger",
    "poison",
    "poison_images",
    "poison_multiclass",
    "trigger_params",
]
