"""Backdoor attacks: triggers stamped on images and the poisoning of a training set with them."""

from .multiclass import poison_multiclass
from .poisoning import PoisonedImages, poison, poison_images
from .triggers import TRIGGERS, BadNetsPatch, InvisibleGrid, Trigger, make_trigger

__all__ = [
    "TRIGGERS",
    "BadNetsPatch",
    "InvisibleGrid",
    "PoisonedImages",
    "Trigger",
    "make_trigger",
    "poison",
    "poison_images",
    "poison_multiclass",
]
