"""The neural-network adapter (torch models): beta-weighted training, finite-difference slopes,
per-sample gradient tracking.

torch is imported lazily: ``import backdoor_curves.nn`` (and ``import backdoor_curves``) never
imports it. The training and curve functions import torch when they run; the models
(:class:`SmallCNN`, :func:`resnet`), which subclass ``torch.nn.Module``, are imported on first
access to their names (``from backdoor_curves.nn import SmallCNN`` imports torch then).

- :mod:`~backdoor_curves.nn.train`: :class:`TrainConfig`, :func:`train` (weighted batch loss,
  seeded and bit-deterministic on the CPU, per-epoch checkpoints), :func:`evaluate`.
- :mod:`~backdoor_curves.nn.curves`: :func:`nn_learning_curve`, :func:`nn_backdoor_slope`.
- :mod:`~backdoor_curves.nn.exact`: :func:`training_derivative`, the exact dL(V_t)/dbeta at
  beta = 0 of the training run, by forward-mode differentiation through every optimizer step,
  and :func:`point_derivatives`, its per-training-point parts dL(V_t)/dw_j.
- :mod:`~backdoor_curves.nn.models`: :class:`SmallCNN`, :func:`resnet`.
- :mod:`~backdoor_curves.nn.callbacks`: the training callback protocol.
- :mod:`~backdoor_curves.nn.weights`: the offline lookup of pretrained torchvision weights.

``backdoor_curves.nn.train`` is the function; the module of the same name is
``importlib.import_module("backdoor_curves.nn.train")`` (``from backdoor_curves.nn.train import
...`` works as usual).
"""

import importlib

from .callbacks import Callback, TrainState
from .curves import NNBackdoorSlope, nn_backdoor_slope, nn_learning_curve
from .exact import PointDerivatives, TrainingDerivative, point_derivatives, training_derivative
from .train import TrainConfig, TrainResult, evaluate, train

#: Names served by a submodule that imports torch, imported on first access.
_LAZY = {"SmallCNN": "models", "resnet": "models"}

__all__ = [
    "Callback",
    "NNBackdoorSlope",
    "PointDerivatives",
    "SmallCNN",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "TrainingDerivative",
    "evaluate",
    "nn_backdoor_slope",
    "nn_learning_curve",
    "point_derivatives",
    "resnet",
    "train",
    "training_derivative",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
