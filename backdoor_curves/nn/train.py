"""Beta-weighted training of a torch classifier on poisoned images (DESIGN §4 and §7).

Every training point i gets the weight w_i = 1 on a clean row and w_i = beta on a poisoned row
(:meth:`~backdoor_curves.data.ImageBackdoorData.sample_weight`), and a batch B of the training set
contributes the loss

    L_B(theta) = (1/|B|) sum_{i in B} w_i CE(f_theta(x_i), y_i)          (natural log)

with |B| the batch's size (poisoned rows included, whatever beta): beta = 1 is ordinary training
with ``F.cross_entropy``'s mean and beta = 0 ignores the poison. One optimizer step per batch, in
this order (plain PyTorch, nothing fused)::

    optimizer.zero_grad(set_to_none=True)
    loss = weighted_loss(model(X[B]), y[B], w[B])
    loss.backward()
    optimizer.step()

With the default SGD (``torch.optim.SGD(lr, momentum, weight_decay)``, dampening 0, no Nesterov;
PyTorch's single-tensor update on the CPU) every parameter p with gradient g is updated as

    d = g + weight_decay * p                      (coupled L2 weight decay)
    m = d                   on the first step     (the momentum buffer starts as d, not 0)
    m = momentum * m + d    afterwards
    p = p - lr * m

Reproducibility: the model is built by its factory under ``torch.manual_seed(seed)``
(:func:`init_model`), the batches are drawn before training from numpy's Generator
(:func:`batch_order`: a permutation per epoch, the same for every beta), and the training runs
under :func:`deterministic` (``torch.use_deterministic_algorithms(True)``, a fixed number of CPU
threads), so on the CPU the same seed gives the same parameters bit for bit. A checkpoint after
every epoch (model, optimizer, torch's random state, history; written atomically) lets an
interrupted run resume and end with the parameters of an uninterrupted one.

torch is imported when a function runs (``import backdoor_curves.nn.train`` does not import it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._io import atomic_write
from .._validation import check_int, check_seed
from ..data import ImageBackdoorData
from ..utils import require_torch, resolve_device
from ._modes import eval_mode
from .callbacks import TrainState

__all__ = [
    "CHECKPOINT_FILE",
    "OPTIMIZERS",
    "TrainConfig",
    "TrainResult",
    "batch_order",
    "check_beta",
    "deterministic",
    "evaluate",
    "init_model",
    "make_optimizer",
    "training_seed",
    "train",
    "weighted_loss",
]

#: Optimizers :class:`TrainConfig` knows by name (any other: a callable ``params -> Optimizer``).
OPTIMIZERS = ("sgd", "adam", "adamw")
#: The checkpoint's file name inside ``checkpoint_dir``.
CHECKPOINT_FILE = "checkpoint.pt"
_CHECKPOINT_FORMAT = 1
#: The columns of :attr:`TrainResult.history`.
HISTORY_COLUMNS = ("epoch", "train_loss", "seconds")


def _check_real(value, name: str, low: float, high: float, *, open_high=False, open_low=False):
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    inside = (low < value if open_low else low <= value) and (
        value < high if open_high else value <= high
    )
    if not (math.isfinite(value) and inside):
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return value


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: epochs, batches, optimizer, seed and device.

    Attributes
    ----------
    epochs : int, default=3
        Passes over the training set, at least 1.
    batch_size : int, default=64
        Images per optimizer step (the last batch of an epoch may be smaller), at least 1.
    lr : float, default=0.01
        Learning rate, > 0.
    momentum : float, default=0.9
        Momentum of SGD in [0, 1) (ignored by Adam and AdamW).
    weight_decay : float, default=5e-4
        L2 coefficient, >= 0: SGD and Adam add ``weight_decay * p`` to the gradient (coupled),
        AdamW decays the weights directly.
    optimizer : {"sgd", "adam", "adamw"} or callable, default="sgd"
        By name: ``torch.optim.SGD(params, lr, momentum, weight_decay)``,
        ``torch.optim.Adam(params, lr, weight_decay=weight_decay)`` or ``torch.optim.AdamW``
        likewise. A callable ``params -> torch.optim.Optimizer`` (e.g. a ``functools.partial``
        of an optimizer class) is called with the model's parameter list and then sets its own
        learning rate and decay (``lr``, ``momentum`` and ``weight_decay`` are not passed).
    seed : int, default=0
        Seeds the initial weights (:func:`init_model`), the batch order (:func:`batch_order`)
        and torch's random draws during training (dropout); a non-negative int.
    device : str or torch.device, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available); checked when
        training starts (:func:`backdoor_curves.utils.resolve_device`).
    threads : int, default=1
        torch's CPU threads during training (``torch.set_num_threads``), at least 1.

    Raises
    ------
    TypeError, ValueError
        Naming the field whose value has the wrong type or lies outside its range, or an
        unknown optimizer name.
    """

    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: str | Callable = "sgd"
    seed: int = 0
    device: Any = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        put("epochs", check_int(self.epochs, "epochs", 1))
        put("batch_size", check_int(self.batch_size, "batch_size", 1))
        put("lr", _check_real(self.lr, "lr", 0.0, math.inf, open_low=True, open_high=True))
        put("momentum", _check_real(self.momentum, "momentum", 0.0, 1.0, open_high=True))
        put(
            "weight_decay",
            _check_real(self.weight_decay, "weight_decay", 0.0, math.inf, open_high=True),
        )
        if isinstance(self.optimizer, str):
            if self.optimizer.lower() not in OPTIMIZERS:
                raise ValueError(
                    f"optimizer must be one of {list(OPTIMIZERS)} or a callable "
                    f"params -> torch.optim.Optimizer, got {self.optimizer!r}"
                )
            put("optimizer", self.optimizer.lower())
        elif not callable(self.optimizer):
            raise TypeError(
                f"optimizer must be one of {list(OPTIMIZERS)} or a callable "
                f"params -> torch.optim.Optimizer, got {type(self.optimizer).__name__}"
            )
        put("seed", check_seed(self.seed, "seed"))
        if not isinstance(self.device, str) and type(self.device).__module__.split(".")[0] != (
            "torch"
        ):
            raise TypeError(
                "device must be 'cpu', 'cuda', 'cuda:N', 'auto' or a torch.device, got "
                f"{type(self.device).__name__}"
            )
        put("threads", check_int(self.threads, "threads", 1))

    def describe(self) -> dict:
        """The configuration as a flat dict of plain values (for tables and checkpoints).

        Returns
        -------
        dict
            Every field; ``optimizer`` as its name, or the callable's qualified name (with the
            arguments of a ``functools.partial``), ``device`` as a string.
        """
        out = dataclasses.asdict(self)
        out["optimizer"] = _describe_callable(self.optimizer)
        out["device"] = str(self.device)
        return out


def _describe_callable(obj) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, functools.partial):
        args = [repr(a) for a in obj.args] + [f"{k}={v!r}" for k, v in obj.keywords.items()]
        return f"partial({_describe_callable(obj.func)}, {', '.join(args)})"
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"


def _check_config(config) -> TrainConfig:
    if config is None:
        return TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
    return config


def check_beta(beta) -> float:
    """Return ``beta`` as a float if it is a real number in [0, 1].

    Parameters
    ----------
    beta : float
        Weight of the poisoned samples in the batch loss.

    Returns
    -------
    float
        ``beta``.

    Raises
    ------
    TypeError
        Naming ``beta`` if it is not a real number (a bool is refused).
    ValueError
        Naming ``beta`` if it is NaN, infinite or outside [0, 1].
    """
    return _check_real(beta, "beta", 0.0, 1.0)


def _check_data(data) -> ImageBackdoorData:
    if not isinstance(data, ImageBackdoorData):
        raise TypeError(
            "data must be an ImageBackdoorData (see backdoor_curves.attacks.multiclass."
            f"poison_multiclass), got {type(data).__name__}"
        )
    return data


# -------------------------------------------------------------------------------- determinism


@contextlib.contextmanager
def deterministic(config: TrainConfig | None = None) -> Iterator[Any]:
    """Run the body with torch's deterministic algorithms and a fixed number of CPU threads.

    Inside: ``torch.use_deterministic_algorithms(True)`` (with ``warn_only=True`` on CUDA, where
    some operations used by common models, e.g. the backward of ``AdaptiveAvgPool2d`` and
    ``NLLLoss``, have no deterministic kernel: they warn instead of failing, and CUDA results may
    differ in the last bits between runs), ``torch.set_num_threads(config.threads)`` and
    ``torch.backends.cudnn.benchmark = False``. On CUDA the environment variable
    ``CUBLAS_WORKSPACE_CONFIG`` is set to ``:4096:8`` when unset (it is left set). Everything else
    is restored on exit, also after an error. Nested use is allowed.

    Parameters
    ----------
    config : TrainConfig, optional
        Its ``threads`` and ``device`` are used; the default configuration when omitted.

    Yields
    ------
    torch.device
        The device of the configuration (:func:`backdoor_curves.utils.resolve_device`).

    Raises
    ------
    ValueError
        Naming ``device`` when the configuration asks for CUDA on a machine without it.
    """
    torch = require_torch()
    config = _check_config(config)
    device = resolve_device(config.device)
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.get_num_threads(),
        torch.backends.cudnn.benchmark,
    )
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    torch.set_num_threads(config.threads)
    torch.backends.cudnn.benchmark = False
    try:
        yield device
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.set_num_threads(saved[2])
        torch.backends.cudnn.benchmark = saved[3]


def _rng_devices(torch) -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


# -------------------------------------------------------------------------------- building blocks


def batch_order(n: int, batch_size: int, epochs: int, seed: int) -> list[list[np.ndarray]]:
    """The batches of every epoch: a seeded permutation of the rows per epoch, cut in order.

    Epoch e uses the e-th permutation drawn from ``numpy.random.default_rng(seed)``, so the
    order does not depend on beta, and the first epochs of a longer run are those of a
    shorter one.

    Parameters
    ----------
    n : int
        Number of training rows, at least 1.
    batch_size : int
        Rows per batch, at least 1; the last batch of an epoch holds the ``n % batch_size``
        remaining rows when that is not 0 (no row is dropped).
    epochs : int
        Number of epochs, at least 1.
    seed : int
        Seed of the generator, a non-negative int.

    Returns
    -------
    list of list of ndarray of int64
        ``order[e][b]``: the row indices of batch b of epoch e (0-based); each epoch's batches
        partition ``range(n)``.

    Raises
    ------
    TypeError, ValueError
        Naming the argument that is not an int in its range.
    """
    n = check_int(n, "n", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    epochs = check_int(epochs, "epochs", 1)
    rng = np.random.default_rng(check_seed(seed, "seed"))
    order = []
    for _ in range(epochs):
        perm = rng.permutation(n).astype(np.int64)
        order.append([perm[start : start + batch_size] for start in range(0, n, batch_size)])
    return order


def training_seed(seed: int) -> int:
    """The seed of torch's random draws during training (dropout), derived from ``seed``.

    Distinct from the stream :func:`init_model` draws the initial weights from, so that the
    weights do not depend on whether the model has dropout.

    Parameters
    ----------
    seed : int
        The run's seed (``TrainConfig.seed``).

    Returns
    -------
    int
    """
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def init_model(model_factory: Callable[[], Any], seed: int):
    """Build a model with seeded initial weights.

    The factory runs under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``, so the
    same seed gives the same initial weights (for every beta) and torch's global random state
    is left as it was.

    Parameters
    ----------
    model_factory : callable
        Called without arguments; returns a fresh ``torch.nn.Module`` (e.g. ``SmallCNN`` or
        ``functools.partial(SmallCNN, width=4)``).
    seed : int
        A non-negative int.

    Returns
    -------
    torch.nn.Module
        The model built by the factory.

    Raises
    ------
    TypeError
        Naming ``model_factory`` if it is not callable or does not return a ``torch.nn.Module``
        (passing a model instead of a factory is refused: its weights could not be re-drawn),
        naming ``seed`` if it is not an int.
    ValueError
        Naming ``seed`` if it is negative.
    """
    torch = require_torch()
    seed = check_seed(seed, "seed")
    if isinstance(model_factory, torch.nn.Module) or not callable(model_factory):
        raise TypeError(
            "model_factory must be a callable returning a fresh torch.nn.Module (e.g. SmallCNN "
            f"or functools.partial(SmallCNN, width=4)), got {type(model_factory).__name__}"
        )
    with torch.random.fork_rng(devices=_rng_devices(torch)):
        torch.manual_seed(seed)
        model = model_factory()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model_factory must return a torch.nn.Module, got {type(model).__name__}")
    return model


def make_optimizer(model, config: TrainConfig | None = None):
    """The optimizer of ``config`` over the model's parameters.

    Parameters
    ----------
    model : torch.nn.Module
        The model; every parameter (``model.parameters()``, in that order) is optimized.
    config : TrainConfig, optional
        ``optimizer``, ``lr``, ``momentum`` and ``weight_decay``; the default configuration
        (SGD with momentum 0.9 and weight decay 5e-4) when omitted.

    Returns
    -------
    torch.optim.Optimizer
        ``SGD(params, lr, momentum, weight_decay)`` (dampening 0, no Nesterov),
        ``Adam(params, lr, weight_decay=...)``, ``AdamW(params, lr, weight_decay=...)``, or what
        the configuration's callable returns.

    Raises
    ------
    TypeError
        Naming ``optimizer`` if the callable does not return a ``torch.optim.Optimizer``.
    """
    torch = require_torch()
    config = _check_config(config)
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    optimizer = config.optimizer(params)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            "optimizer (a callable) must return a torch.optim.Optimizer, got "
            f"{type(optimizer).__name__}"
        )
    return optimizer


def weighted_loss(logits, y, w):
    """The weighted batch loss ``(1/B) sum_i w_i CE(logits_i, y_i)``.

    Parameters
    ----------
    logits : torch.Tensor of shape (B, n_classes)
        The model's outputs on the batch.
    y : torch.Tensor of int64, shape (B,)
        Labels in ``0..n_classes-1``.
    w : torch.Tensor of shape (B,)
        Per-sample weights (1 on clean rows, beta on poisoned rows), of the logits' dtype.

    Returns
    -------
    torch.Tensor
        A scalar: the cross-entropy (natural log) of each sample, weighted, summed and divided
        by the batch size B (not by the sum of the weights). With every weight 1 its gradient
        is that of ``F.cross_entropy(logits, y)`` (mean reduction), bit for bit.

    Raises
    ------
    ValueError
        Naming ``logits`` if it is not 2-D, ``y`` or ``w`` if its shape is not (B,).
    """
    torch = require_torch()
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (B, n_classes), got shape {tuple(logits.shape)}")
    batch = logits.shape[0]
    if tuple(y.shape) != (batch,):
        raise ValueError(f"y must have shape ({batch},), got {tuple(y.shape)}")
    if tuple(w.shape) != (batch,):
        raise ValueError(f"w must have shape ({batch},), got {tuple(w.shape)}")
    per_sample = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    return (per_sample * w).sum() / batch


def _check_logits(logits, batch: int, n_classes: int, what: str) -> None:
    if logits.ndim != 2 or logits.shape[0] != batch:
        raise ValueError(
            f"{what} must output logits of shape (n, n_classes) = ({batch}, {n_classes}) for "
            f"a batch of {batch} images, got shape {tuple(logits.shape)}"
        )
    if logits.shape[1] != n_classes:
        raise ValueError(
            f"{what} outputs {logits.shape[1]} logits per image but the data have "
            f"data.n_classes = {n_classes} classes (labels 0..{n_classes - 1}): give the model "
            f"{n_classes} outputs"
        )


# -------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainResult:
    """A trained model and its training history.

    Attributes
    ----------
    model : torch.nn.Module
        The trained model, in eval mode, on the configuration's device.
    history : pandas.DataFrame
        One row per epoch with ``epoch`` (from 1), ``train_loss`` (the mean over the epoch's
        batches of the weighted batch loss, each batch weighted by its size: (1/n) sum_i w_i
        l_i accumulated while the parameters move; natural log) and ``seconds`` (wall time of
        the epoch's steps). Epochs read from a checkpoint keep the values of the run that
        trained them.
    beta : float
        The weight of the poisoned samples.
    config : TrainConfig
        The training configuration.
    resumed_from : int
        Epochs read from a checkpoint instead of trained (0: trained from scratch).
    """

    model: Any
    history: pd.DataFrame
    beta: float
    config: TrainConfig
    resumed_from: int = 0


def _fingerprint(model, data: ImageBackdoorData, beta: float, config: TrainConfig) -> dict:
    """What a checkpoint must match to be resumed (everything but the number of epochs)."""
    digest = hashlib.sha256()
    for arr in (data.X_train, data.y_train, data.poisoned):
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(np.ascontiguousarray(arr).data)
    described = config.describe()
    described.pop("epochs")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return {
        "beta": repr(float(beta)),
        "config": repr(sorted(described.items())),
        "data": digest.hexdigest(),
        "model": f"{type(model).__module__}.{type(model).__qualname__} {shapes!r}",
    }


def _load_checkpoint(path: Path, fingerprint: dict, model, optimizer, config) -> dict | None:
    torch = require_torch()
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint_dir holds {path}, not a checkpoint of this trainer (format "
            f"{state.get('format')!r}); delete it or use another checkpoint_dir"
        )
    for key, value in fingerprint.items():
        if state["fingerprint"].get(key) != value:
            raise ValueError(
                f"checkpoint_dir holds {path}, a checkpoint of another training (its {key} "
                f"differs: {state['fingerprint'].get(key)!r:.200} vs {value!r:.200}); delete it "
                "or use another checkpoint_dir"
            )
    if state["epoch"] > config.epochs:
        raise ValueError(
            f"checkpoint_dir holds {path} after {state['epoch']} epochs, more than "
            f"config.epochs = {config.epochs}; use another checkpoint_dir"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state


def _save_checkpoint(path: Path, fingerprint, model, optimizer, epoch, step, history) -> None:
    torch = require_torch()
    state = {
        "format": _CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "epoch": epoch,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if _rng_devices(torch) else [],
        "history": [dict(row) for row in history],
    }
    atomic_write(path, lambda f: torch.save(state, f), binary=True)


def _check_callbacks(callbacks) -> tuple:
    if callbacks is None:
        return ()
    if not isinstance(callbacks, Sequence) or isinstance(callbacks, str):
        callbacks = (callbacks,)
    hooks = ("on_train_begin", "on_epoch_end", "on_train_end")
    for cb in callbacks:
        if not any(callable(getattr(cb, hook, None)) for hook in hooks):
            raise TypeError(
                f"callbacks must hold objects with some of the methods {list(hooks)} "
                f"(backdoor_curves.nn.callbacks.Callback), got {type(cb).__name__}"
            )
    return tuple(callbacks)


def _call(callbacks, hook: str, state: TrainState) -> None:
    """Call ``hook`` of each callback; torch's random state is restored after each, so a
    callback that draws random numbers does not change the training's draws (dropout)."""
    torch = require_torch()
    for cb in callbacks:
        method = getattr(cb, hook, None)
        if method is not None:
            with torch.random.fork_rng(devices=_rng_devices(torch)):
                method(state)


def train(
    model_factory: Callable[[], Any],
    data: ImageBackdoorData,
    beta: float,
    config: TrainConfig | None = None,
    *,
    callbacks: Sequence = (),
    checkpoint_dir=None,
    progress: bool = False,
) -> TrainResult:
    """Train a fresh model on the poisoned data with weight ``beta`` on the poisoned samples.

    The model comes from ``init_model(model_factory, config.seed)``; the batches from
    ``batch_order(data.n_train, config.batch_size, config.epochs, config.seed)``; each step
    minimises :func:`weighted_loss` with w = ``data.sample_weight(beta)`` (see the module's
    docstring for the update order). The whole run is inside :func:`deterministic`, and torch's
    global random state (dropout) is forked and seeded from ``config.seed``, so it is restored
    afterwards.

    Parameters
    ----------
    model_factory : callable
        Returns a fresh ``torch.nn.Module`` mapping float32 images (n, C, H, W) in [0, 1] to
        logits (n, data.n_classes).
    data : ImageBackdoorData
        The poisoned training set (its test sets are not used).
    beta : float
        Weight of the poisoned samples in [0, 1]: 0 ignores them, 1 is ordinary training.
    config : TrainConfig, optional
        Epochs, batch size, optimizer, seed, device, threads; ``TrainConfig()`` when omitted.
    callbacks : sequence of Callback, default=()
        Objects with some of ``on_train_begin``, ``on_epoch_end``, ``on_train_end``
        (:mod:`backdoor_curves.nn.callbacks`), called in order with a
        :class:`~backdoor_curves.nn.callbacks.TrainState`. ``on_epoch_end`` runs after the
        epoch's checkpoint is written, so an exception raised there interrupts a run that can
        resume from that epoch. When a run resumes, ``on_train_begin`` sees the resumed epoch
        and step, and ``on_epoch_end`` is called for the remaining epochs only. torch's random
        state is restored after every call, so a callback's own random draws do not change the
        training.
    checkpoint_dir : str or os.PathLike, optional
        Directory (created if missing) of the run's checkpoint, :data:`CHECKPOINT_FILE`,
        rewritten atomically after every epoch. When it already holds a checkpoint of the same
        training (same beta, configuration apart from ``epochs``, training data and model
        architecture) the run resumes after its last epoch, and ends with the parameters of an
        uninterrupted run; a checkpoint of ``config.epochs`` epochs is returned without
        training. A longer run may resume a shorter one (the batch order of the first epochs is
        the same).
    progress : bool, default=False
        Show a tqdm progress bar over the optimizer steps.

    Returns
    -------
    TrainResult
        The trained model (eval mode) and the per-epoch history.

    Raises
    ------
    TypeError
        Naming ``data`` if it is not an ImageBackdoorData, ``model_factory`` if it is not a
        factory of ``torch.nn.Module``, ``config``, ``callbacks`` or ``beta`` of the wrong kind.
    ValueError
        Naming ``beta`` outside [0, 1]; naming ``model_factory`` when the model's output is not
        2-D (n, data.n_classes) (so labels would fall outside its classes); naming
        ``checkpoint_dir`` when it holds the checkpoint of another training; naming ``device``
        when CUDA is asked for but not available.
    """
    torch = require_torch()
    config = _check_config(config)
    data = _check_data(data)
    beta = check_beta(beta)
    callbacks = _check_callbacks(callbacks)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")
    ckpt_path = None
    if checkpoint_dir is not None:
        if not isinstance(checkpoint_dir, str | os.PathLike):
            raise TypeError(
                f"checkpoint_dir must be None or a path, got {type(checkpoint_dir).__name__}"
            )
        ckpt_path = Path(checkpoint_dir) / CHECKPOINT_FILE

    n, k = data.n_train, data.n_classes
    X = torch.from_numpy(ImageBackdoorData.to_nchw(data.X_train))
    y = torch.from_numpy(data.y_train)
    with deterministic(config) as device:
        model = init_model(model_factory, config.seed).to(device)
        w = torch.from_numpy(data.sample_weight(beta))
        w = w.to(next(model.parameters(), torch.empty(0)).dtype)
        optimizer = make_optimizer(model, config)
        order = batch_order(n, config.batch_size, config.epochs, config.seed)
        epoch, step, history = 0, 0, []
        fingerprint = saved = None
        if ckpt_path is not None:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            fingerprint = _fingerprint(model, data, beta, config)
            saved = _load_checkpoint(ckpt_path, fingerprint, model, optimizer, config)
            if saved is not None:
                epoch, step, history = saved["epoch"], saved["step"], list(saved["history"])
        resumed_from = epoch
        first_epoch = epoch
        state = TrainState(
            model=model,
            data=data,
            beta=beta,
            config=config,
            epoch=epoch,
            step=step,
            lr=optimizer.param_groups[0]["lr"],
            optimizer=optimizer,
            device=device,
        )
        with torch.random.fork_rng(devices=_rng_devices(torch)):
            torch.manual_seed(training_seed(config.seed))
            if saved is not None:
                torch.set_rng_state(saved["rng_cpu"])
                if saved["rng_cuda"] and _rng_devices(torch):
                    torch.cuda.set_rng_state_all(saved["rng_cuda"])
            _call(callbacks, "on_train_begin", state)
            model.train()
            remaining = sum(len(batches) for batches in order[first_epoch:])
            with tqdm(
                total=remaining, desc=f"beta={beta:g}", disable=not progress, leave=False
            ) as bar:
                for epoch in range(first_epoch, config.epochs):
                    start = time.perf_counter()
                    total = torch.zeros((), dtype=torch.float64, device=device)
                    for rows in order[epoch]:
                        index = torch.from_numpy(rows)
                        xb, yb, wb = (t[index].to(device) for t in (X, y, w))
                        optimizer.zero_grad(set_to_none=True)
                        logits = model(xb)
                        _check_logits(logits, len(rows), k, "model_factory's model")
                        loss = weighted_loss(logits, yb, wb)
                        loss.backward()
                        optimizer.step()
                        total += loss.detach().double() * len(rows)
                        step += 1
                        bar.update()
                    history.append(
                        {
                            "epoch": epoch + 1,
                            "train_loss": float(total) / n,
                            "seconds": time.perf_counter() - start,
                        }
                    )
                    if ckpt_path is not None:
                        _save_checkpoint(
                            ckpt_path, fingerprint, model, optimizer, epoch + 1, step, history
                        )
                    state.epoch, state.step = epoch + 1, step
                    state.lr = optimizer.param_groups[0]["lr"]
                    _call(callbacks, "on_epoch_end", state)
            _call(callbacks, "on_train_end", state)
    model.eval()
    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    return TrainResult(model, frame, beta, config, resumed_from)


# -------------------------------------------------------------------------------- evaluation


def evaluate(model, data: ImageBackdoorData, batch_size: int = 256) -> dict[str, float]:
    """The four curve quantities of a trained model on the clean and backdoor test sets.

    The model runs in eval mode under ``torch.no_grad()`` on the device of its parameters, in
    batches of ``batch_size`` images; its train/eval mode is restored afterwards. Losses are
    summed in float64.

    Parameters
    ----------
    model : torch.nn.Module
        Maps float32 images (n, C, H, W) in [0, 1] to logits (n, data.n_classes).
    data : ImageBackdoorData
        Its clean test set V (``X_test``, ``y_test``) and backdoor test set V_t
        (``X_test_bd``, ``y_test_bd``, the attacker's labels).
    batch_size : int, default=256
        Images per forward pass, at least 1.

    Returns
    -------
    dict of str -> float
        ``backdoor_loss``: mean cross-entropy (natural log, nats) on V_t against the attacker's
        labels (it falls as the backdoor is learned); ``clean_loss``: mean cross-entropy on V;
        ``clean_accuracy``: fraction of V predicted right, in [0, 1]; ``backdoor_accuracy``:
        fraction of V_t predicted as the attacker's label (the attack success rate), in [0, 1].
        A prediction is the arg-max of the logits.

    Raises
    ------
    TypeError
        Naming ``model`` if it is not a ``torch.nn.Module``, ``data`` if it is not an
        ImageBackdoorData, ``batch_size`` if it is not an int.
    ValueError
        Naming ``model`` if its output is not (n, data.n_classes); ``batch_size`` below 1.
    """
    torch = require_torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    data = _check_data(data)
    batch_size = check_int(batch_size, "batch_size", 1)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    F = torch.nn.functional
    out = {}
    with eval_mode(model), torch.no_grad():
        for name, X_set, y_set in (
            ("backdoor", data.X_test_bd, data.y_test_bd),
            ("clean", data.X_test, data.y_test),
        ):
            X = torch.from_numpy(ImageBackdoorData.to_nchw(X_set))
            y = torch.from_numpy(y_set)
            loss = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            for start in range(0, len(y), batch_size):
                xb = X[start : start + batch_size].to(device)
                yb = y[start : start + batch_size].to(device)
                logits = model(xb)
                _check_logits(logits, len(yb), data.n_classes, "model")
                loss += F.cross_entropy(logits, yb, reduction="none").double().sum()
                correct += (logits.argmax(dim=1) == yb).sum()
            out[f"{name}_loss"] = float(loss) / len(y)
            out[f"{name}_accuracy"] = int(correct) / len(y)
    return {
        key: out[key]
        for key in ("backdoor_loss", "clean_loss", "clean_accuracy", "backdoor_accuracy")
    }
