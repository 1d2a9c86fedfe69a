"""The trainer's callback protocol: what a training callback (per-sample tracking, information
dynamics, checkpoints) is given and when it is called.

A callback is any object with some of the methods of :class:`Callback` (all optional). The
trainer (:func:`backdoor_curves.nn.train`) calls, in order, ``on_train_begin(state)`` once before
the first step, ``on_epoch_end(state)`` after every epoch (``state.epoch`` counts finished epochs,
from 1) and ``on_train_end(state)`` once. The state is read-only by convention: a callback must
not change the model's parameters or the optimizer (it may run forward and backward passes of
its own, on copies or under ``torch.no_grad`` / ``torch.func``, and must leave gradients as it
found them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Callback", "TrainState"]


@dataclass
class TrainState:
    """What a callback sees of a running training.

    Attributes
    ----------
    model : torch.nn.Module
        The model being trained (in train mode during training; a callback that evaluates should
        switch to eval mode and back).
    data : ImageBackdoorData
        The poisoned data set (numpy arrays; the trainer holds tensor copies).
    beta : float
        The weight of the poisoned samples in the batch loss (1/B) sum_i w_i l_i.
    config : TrainConfig
        The training configuration.
    epoch : int
        Finished epochs (0 in ``on_train_begin``).
    step : int
        Optimizer steps taken so far.
    lr : float
        The learning rate of the next step (the schedule's current value).
    optimizer : torch.optim.Optimizer
        The optimizer (read-only for a callback: do not step it or change its state).
    device : torch.device
        The device the model and the batches are on.
    """

    model: Any
    data: Any
    beta: float
    config: Any
    epoch: int
    step: int
    lr: float
    optimizer: Any
    device: Any


@runtime_checkable
class Callback(Protocol):
    """The methods a training callback may define (each optional)."""

    def on_train_begin(self, state: TrainState) -> None:  # pragma: no cover - protocol
        """Called once before the first optimizer step.

        Parameters
        ----------
        state : TrainState
            The training's state (``epoch`` and ``step`` are 0).
        """

    def on_epoch_end(self, state: TrainState) -> None:  # pragma: no cover - protocol
        """Called after every epoch.

        Parameters
        ----------
        state : TrainState
            The training's state; ``state.epoch`` is the number of finished epochs (from 1).
        """

    def on_train_end(self, state: TrainState) -> None:  # pragma: no cover - protocol
        """Called once after the last epoch.

        Parameters
        ----------
        state : TrainState
            The training's final state.
        """
