"""Gaussian noise injection into chosen layers and the tracked representation T of a layer.

Paper 000 adds N(0, gamma^2) noise to the output of every residual block and to the pooled
features before the head, in train and in eval mode, so that I(X; T) of a deterministic network
stays finite. Here the noise is a forward hook on each chosen module: the module's output o
(a tensor) is replaced by o + gamma * e, e ~ N(0, I) drawn from a ``torch.Generator`` owned by
the hook (seeded, independent of torch's global random state), whatever the module's mode.

- :class:`GaussianNoise`: the hook itself (a callable object; deep-copying a model copies it
  with its generator's state, so a copy draws the same noise without advancing the original's);
- :func:`add_noise_hooks`: register it on named modules, returning the handles;
- :func:`noise_injection`: the same as a context manager (hooks removed on exit);
- :func:`remove_noise_hooks`: take every GaussianNoise hook off a model;
- :func:`layer_representation`: the output of a named module for a batch of inputs, globally
  average-pooled over the spatial axes when 4-D, with the model's logits.

torch is imported when a function runs.
"""

from __future__ import annotations

import contextlib
import copy
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._validation import check_positive, check_seed
from ..utils import require_torch

__all__ = [
    "GaussianNoise",
    "add_noise_hooks",
    "layer_representation",
    "noise_injection",
    "pool_representation",
    "remove_noise_hooks",
    "resolve_modules",
]


class GaussianNoise:
    """A forward hook adding N(0, std^2) noise to a module's output, in train and eval mode.

    Parameters
    ----------
    std : float
        The noise's standard deviation gamma, >= 0 (0 leaves the output unchanged and draws
        nothing).
    generator : torch.Generator
        The source of the noise, on the device of the outputs.

    Raises
    ------
    TypeError, ValueError
        Naming ``std`` when it is not a finite real >= 0, ``generator`` when it is not a
        ``torch.Generator``.
    """

    def __init__(self, std: float, generator: Any):
        torch = require_torch()
        self.std = check_positive(std, "std", allow_zero=True)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.generator = generator

    def __call__(self, module, inputs, output):
        """Return ``output + std * e`` with e ~ N(0, I) drawn from the generator.

        Parameters
        ----------
        module : torch.nn.Module
            The hooked module (unused).
        inputs : tuple
            Its inputs (unused).
        output : torch.Tensor
            Its output.

        Returns
        -------
        torch.Tensor
            The noisy output (the output itself when ``std`` is 0).

        Raises
        ------
        TypeError
            If the module's output is not a floating-point tensor.
        """
        torch = require_torch()
        if not (isinstance(output, torch.Tensor) and output.is_floating_point()):
            raise TypeError(
                f"GaussianNoise needs a floating-point tensor output, got {type(output).__name__}"
            )
        if self.std == 0.0:
            return output
        noise = torch.randn(
            output.shape, generator=self.generator, dtype=output.dtype, device=output.device
        )
        return output + self.std * noise

    def __deepcopy__(self, memo):
        torch = require_torch()
        generator = torch.Generator(device=self.generator.device)
        generator.set_state(self.generator.get_state())
        return GaussianNoise(self.std, generator)


def resolve_modules(model, names, *, name: str = "layers") -> dict:
    """Module name -> module for named submodules of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    names : str or sequence of str
        Names as in ``model.named_modules()`` (e.g. ``"conv2"``, ``"layer4.1"``).
    name : str, default="layers"
        The caller's argument name, used in the error messages.

    Returns
    -------
    dict
        The modules, in the order given.

    Raises
    ------
    TypeError
        Naming ``model`` if it is not a ``torch.nn.Module``, ``name`` if ``names`` is not a
        string or a sequence of strings.
    ValueError
        Naming ``name`` if ``names`` is empty or names a module the model does not have.
    """
    if not callable(getattr(model, "named_modules", None)):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Sequence):
        raise TypeError(f"{name} must be a module name or a list of them, got {names!r}")
    if not names:
        raise ValueError(f"{name} must be a non-empty sequence of module names, got {names!r}")
    out = {}
    for module in names:
        if not isinstance(module, str):
            raise TypeError(f"{name} must hold module names (strings), got {module!r}")
        if not module or module not in modules:
            known = [n for n in modules if n]
            raise ValueError(f"{name}: unknown layer {module!r}; the model's modules are {known}")
        out[module] = modules[module]
    return out


def _device_of(model):
    torch = require_torch()
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def add_noise_hooks(model, layers, std: float, *, seed: int = 0) -> list:
    """Register :class:`GaussianNoise` on the output of each named module.

    All hooks share one ``torch.Generator`` on the model's device, seeded with ``seed``, so a
    forward pass draws the same noise for the same seed and sequence of calls. Works in a
    model factory (the noise is then part of training, as in paper 000).

    Parameters
    ----------
    model : torch.nn.Module
        The model; its modules get the hooks.
    layers : str or sequence of str
        Module names (:func:`resolve_modules`).
    std : float
        gamma >= 0.
    seed : int, default=0
        Seed of the hooks' generator.

    Returns
    -------
    list of torch.utils.hooks.RemovableHandle
        One per layer; ``handle.remove()`` takes the noise out.

    Raises
    ------
    TypeError, ValueError
        Naming ``layers``, ``std`` or ``seed``.
    """
    torch = require_torch()
    modules = resolve_modules(model, layers)
    std = check_positive(std, "std", allow_zero=True)
    generator = torch.Generator(device=_device_of(model))
    generator.manual_seed(check_seed(seed, "seed"))
    hook = GaussianNoise(std, generator)
    return [module.register_forward_hook(hook) for module in modules.values()]


@contextlib.contextmanager
def noise_injection(model, layers, std: float, *, seed: int = 0) -> Iterator[list]:
    """Gaussian noise on the named modules' outputs for the body of a ``with`` block.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    layers : str or sequence of str
        Module names.
    std : float
        gamma >= 0.
    seed : int, default=0
        Seed of the noise.

    Yields
    ------
    list of torch.utils.hooks.RemovableHandle
        The hooks (removed on exit, also after an error).
    """
    handles = add_noise_hooks(model, layers, std, seed=seed)
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()


def remove_noise_hooks(model) -> int:
    """Remove every :class:`GaussianNoise` forward hook from the model's modules.

    Parameters
    ----------
    model : torch.nn.Module
        The model (changed in place).

    Returns
    -------
    int
        The number of hooks removed.
    """
    removed = 0
    for module in model.modules():
        hooks = module._forward_hooks  # torch's registry of forward hooks (an ordered dict)
        for key in [k for k, hook in hooks.items() if isinstance(hook, GaussianNoise)]:
            del hooks[key]
            removed += 1
    return removed


def pool_representation(output) -> Any:
    """A layer's output as one vector per sample: 4-D (n, C, H, W) averaged over H and W.

    Parameters
    ----------
    output : torch.Tensor
        The output of a module for a batch: (n, d), (n, C, H, W) or any (n, ...).

    Returns
    -------
    torch.Tensor of shape (n, d)
        (n, d) unchanged; (n, C, H, W) globally average-pooled to (n, C); any other shape
        flattened from the second axis.

    Raises
    ------
    TypeError
        If ``output`` is not a tensor with a batch axis.
    """
    torch = require_torch()
    if not isinstance(output, torch.Tensor) or output.ndim < 1:
        raise TypeError(f"a layer's output must be a tensor (n, ...), got {type(output).__name__}")
    if output.ndim == 4:
        return output.mean(dim=(2, 3))
    if output.ndim == 1:
        return output[:, None]
    return output.flatten(1)


def _check_inputs(torch, X):
    """``X`` as a tensor of real numbers of shape (n, C, H, W), n >= 1, finite."""
    if X is None:
        raise TypeError("X must be images of shape (n, C, H, W), got None")
    if not isinstance(X, torch.Tensor):
        arr = np.asarray(X)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"X must hold real numbers, got dtype {arr.dtype}")
        X = torch.as_tensor(np.ascontiguousarray(arr))
    if X.is_complex() or X.dtype == torch.bool:
        raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 4 or len(X) == 0:
        raise ValueError(
            f"X must be images of shape (n, C, H, W) with n >= 1, got shape {tuple(X.shape)}"
        )
    if X.is_floating_point() and not bool(torch.isfinite(X).all()):
        raise ValueError("X contains NaN or infinity")
    return X


def layer_representation(
    model,
    X,
    layer: str,
    *,
    batch_size: int = 256,
    noise_std: float = 0.0,
    noise_layers=None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The tracked representation T at ``layer`` and the logits, for every row of ``X``.

    Runs a deep copy of the model (so the model itself, its gradients, hooks' generators and
    torch's global random state are untouched) in eval mode under ``torch.no_grad``, with
    :class:`GaussianNoise` of ``noise_std`` on ``noise_layers`` (the model's own GaussianNoise
    hooks are removed from the copy first, so only this noise is on). T is the output of
    ``layer`` after its noise, pooled by :func:`pool_representation`.

    Parameters
    ----------
    model : torch.nn.Module
        The model (not changed).
    X : array-like or torch.Tensor of shape (n, C, H, W)
        Inputs, channels first, as the model takes them.
    layer : str
        Name of the module whose output is T.
    batch_size : int, default=256
        Samples per forward pass, >= 1.
    noise_std : float, default=0.0
        gamma >= 0 of the noise (0: no noise).
    noise_layers : str or sequence of str, optional
        Modules that get the noise; None for ``[layer]``.
    seed : int, default=0
        Seed of the noise.

    Returns
    -------
    T : ndarray of float64, shape (n, d)
        The pooled representation.
    logits : ndarray of float64, shape (n, k)
        The model's outputs (with the noise of every noisy layer).

    Raises
    ------
    TypeError, ValueError
        Naming the argument of the wrong kind or value, or ``layer`` when unknown.
    """
    torch = require_torch()
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module name (str), got {type(layer).__name__}")
    resolve_modules(model, [layer], name="layer")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size}")
    noise_std = check_positive(noise_std, "noise_std", allow_zero=True)
    noise_layers = [layer] if noise_layers is None else noise_layers
    resolve_modules(model, noise_layers, name="noise_layers")
    X = _check_inputs(torch, X)
    with torch.no_grad():
        twin = copy.deepcopy(model)
    for p in twin.parameters():
        p.grad = None
        p.requires_grad_(False)
    twin.eval()
    remove_noise_hooks(twin)
    device = _device_of(twin)
    Xt = X.to(dtype=next(twin.parameters()).dtype)
    captured = []
    handles = add_noise_hooks(twin, noise_layers, noise_std, seed=seed) if noise_std > 0 else []
    modules = resolve_modules(twin, [layer])
    handles.append(
        modules[layer].register_forward_hook(
            lambda m, i, o: captured.append(pool_representation(o))
        )
    )
    reps, outs = [], []
    try:
        with torch.no_grad():
            for start in range(0, len(Xt), batch_size):
                captured.clear()
                try:
                    out = twin(Xt[start : start + batch_size].to(device))
                except RuntimeError as exc:  # a shape the model does not take
                    if isinstance(exc, torch.OutOfMemoryError) or start > 0:
                        raise
                    raise ValueError(
                        f"X of shape {tuple(Xt.shape)} does not fit the model: {exc}"
                    ) from exc
                reps.append(captured[-1].double().cpu())
                outs.append(out.double().cpu())
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat(reps).numpy(), torch.cat(outs).numpy()
