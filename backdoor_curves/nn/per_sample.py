"""Per-sample losses and per-sample gradients of a torch classifier, chunked over the samples.

The gradients come from :mod:`torch.func`: ``vmap(grad(loss))`` over a
:func:`torch.func.functional_call` of the model, so a chunk of samples costs one vectorized
backward pass instead of a Python loop over the samples; chunking bounds the memory at
``batch_size x (number of parameters)`` floats for the gradients.

Every pass runs the model in **eval mode** (restored afterwards): in train mode a BatchNorm layer
normalizes with the statistics of the batch (so one sample's loss would depend on the other
samples of the chunk, and a per-sample gradient would not be the gradient of that sample's
loss) and updates its running statistics in place (which ``vmap`` forbids and which would
change the model); Dropout would draw random masks. In eval mode every sample's loss is a
function of that sample and the parameters only.

torch is imported when a function runs (:func:`backdoor_curves.utils.require_torch`).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..utils import require_torch
from ._modes import eval_mode

__all__ = [
    "iter_per_sample_grads",
    "per_sample_grads",
    "per_sample_losses",
    "select_parameters",
]


def _check_batch_size(batch_size, name: str = "batch_size") -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"{name} must be >= 1, got {batch_size}")
    return int(batch_size)


def _check_model(model):
    torch = require_torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    try:
        first = next(model.parameters())
    except StopIteration:
        raise ValueError("model has no parameters") from None
    return first


def _as_tensor(value, name: str, what: str, kinds: str):
    """``value`` as a tensor; a TypeError naming ``name`` for a numpy dtype not in ``kinds``."""
    torch = require_torch()
    if value is None:
        raise TypeError(f"{name} must be an array or tensor of {what}, got None")
    if isinstance(value, torch.Tensor):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must hold {what}, got dtype {arr.dtype}")
    return torch.as_tensor(arr)


def _as_inputs(X, y, model):
    """X as a tensor of the model's floating dtype (on CPU) and y as int64, lengths checked."""
    torch = require_torch()
    first = _check_model(model)
    Xt = _as_tensor(X, "X", "real numbers", "biufc")  # complex: refused below, naming X
    if not (Xt.is_floating_point() or Xt.dtype in (torch.uint8, torch.int64, torch.int32)):
        raise TypeError(f"X must hold real numbers, got dtype {Xt.dtype}")
    if Xt.ndim < 1 or Xt.shape[0] == 0:
        raise ValueError(f"X must hold at least one sample, got shape {tuple(Xt.shape)}")
    if Xt.is_floating_point() and not bool(torch.isfinite(Xt).all()):
        raise ValueError("X contains NaN or infinity")
    if first.is_floating_point():
        Xt = Xt.to(dtype=first.dtype)
    yt = _as_tensor(y, "y", "integer class labels", "biufc")
    if yt.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {tuple(yt.shape)}")
    if yt.dtype.is_floating_point or yt.dtype == torch.bool or yt.is_complex():
        raise TypeError(f"y must hold integer class labels, got dtype {yt.dtype}")
    yt = yt.to(torch.int64)
    if len(yt) != len(Xt):
        raise ValueError(f"X and y have different lengths ({len(Xt)} != {len(yt)})")
    if (yt < 0).any():
        raise ValueError("y must hold class labels >= 0")
    return Xt.detach(), yt.detach(), first.device


def _first_logits(model, xb, shape):
    """The model's output on the first chunk; a model that cannot take inputs of X's shape
    raises a ValueError naming X (torch's RuntimeError is kept as the cause)."""
    torch = require_torch()
    try:
        return model(xb)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        raise ValueError(
            f"X of shape {tuple(shape)} does not fit the model (inputs in its layout, e.g. "
            f"(n, C, H, W) for a CNN): {str(exc).splitlines()[0]}"
        ) from exc


def _check_logits(out, y) -> None:
    if out.ndim != 2:
        raise ValueError(
            f"model must return 2-D logits (samples, classes), got shape {tuple(out.shape)}"
        )
    if len(y) and int(y.max()) >= out.shape[1]:
        raise ValueError(f"y holds label {int(y.max())} but the model has {out.shape[1]} classes")


def select_parameters(model, params=None) -> list[str]:
    """Names of the parameters chosen by a list of parameter names or layer (module) names.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    params : str or sequence of str, optional
        None for every parameter that requires a gradient; otherwise names matched against
        ``model.named_parameters()``: a name selects the parameter of that exact name and every
        parameter under it as a prefix (``"conv1"`` selects ``conv1.weight`` and ``conv1.bias``,
        ``"layer1"`` the whole block).

    Returns
    -------
    list of str
        The selected parameter names, in the model's order, without repeats.

    Raises
    ------
    TypeError
        If ``model`` is not a module or ``params`` holds something else than strings.
    ValueError
        If ``model`` has no parameter, a name in ``params`` matches no parameter (the message
        lists the model's layers), or nothing is selected.
    """
    _check_model(model)
    named = [name for name, _ in model.named_parameters()]
    if params is None:
        chosen = [name for name, p in model.named_parameters() if p.requires_grad]
        if not chosen:
            raise ValueError("model has no parameter that requires a gradient; pass params")
        return chosen
    if isinstance(params, str):
        params = [params]
    try:
        items = list(params)
    except TypeError:
        raise TypeError(
            f"params must be None or a list of parameter / layer names, got {params!r}"
        ) from None
    if not items:
        raise ValueError("params is empty; pass None for every parameter")
    wanted = set()
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"params must hold strings (names), got {item!r}")
        hits = [name for name in named if name == item or name.startswith(item + ".")]
        if not hits:
            layers = sorted({name.rsplit(".", 1)[0] for name in named if "." in name})
            raise ValueError(
                f"params: {item!r} is neither a parameter nor a layer of the model; "
                f"its layers are {layers}"
            )
        wanted.update(hits)
    return [name for name in named if name in wanted]


def per_sample_losses(model, X, y, batch_size=256) -> np.ndarray:
    """Cross-entropy of every sample, in eval mode, without gradients.

    l_i = -log softmax(f(x_i))[y_i] in nats, computed in chunks of ``batch_size`` samples under
    ``torch.no_grad()`` with the model in eval mode (BatchNorm uses its running statistics, so
    l_i depends on sample i only; the mode is restored afterwards).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits of shape (batch, classes).
    X : array-like or torch.Tensor of shape (n, ...)
        Inputs in the layout the model expects (e.g. (n, C, H, W)); cast to the model's dtype
        and moved to its device chunk by chunk.
    y : array-like or torch.Tensor of shape (n,)
        Integer class labels.
    batch_size : int, default=256
        Samples per forward pass.

    Returns
    -------
    ndarray of shape (n,)
        The per-sample losses, float64, nats.

    Raises
    ------
    TypeError
        If ``model`` is not a module, ``X`` or ``y`` is None or of a wrong dtype, or
        ``batch_size`` is not an int.
    ValueError
        If ``X`` is empty, holds NaN/inf or has a shape the model cannot take, ``X`` and ``y``
        differ in length, ``batch_size`` < 1, the model does not return 2-D logits, or a label
        is out of the model's class range.
    """
    torch = require_torch()
    F = torch.nn.functional
    batch_size = _check_batch_size(batch_size)
    Xt, yt, device = _as_inputs(X, y, model)
    out = np.empty(len(Xt))
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(Xt), batch_size):
            xb = Xt[start : start + batch_size].to(device)
            yb = yt[start : start + batch_size].to(device)
            logits = _first_logits(model, xb, Xt.shape) if start == 0 else model(xb)
            _check_logits(logits, yb)
            loss = F.cross_entropy(logits, yb, reduction="none")
            out[start : start + len(xb)] = loss.double().cpu().numpy()
    return out


def _grad_fn(model, names):
    """vmap(grad(l)) over one sample, as a function of the selected parameters and a chunk."""
    torch = require_torch()
    from torch.func import functional_call, grad, vmap

    F = torch.nn.functional
    chosen = set(names)
    frozen = {k: v.detach() for k, v in model.named_parameters() if k not in chosen}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def sample_loss(params, x, t):
        logits = functional_call(model, (params, frozen, buffers), (x.unsqueeze(0),))
        if logits.ndim != 2:
            raise ValueError(
                f"model must return 2-D logits (samples, classes), got shape {tuple(logits.shape)}"
            )
        return F.cross_entropy(logits, t.unsqueeze(0))

    return vmap(grad(sample_loss), in_dims=(None, 0, 0))


def iter_per_sample_grads(model, X, y, params=None, *, batch_size=64):
    """Yield the per-sample gradients chunk by chunk (bounded memory).

    For each chunk of at most ``batch_size`` consecutive samples, the gradient of each sample's
    cross-entropy l_i = CE(f(x_i), y_i) with respect to the selected parameters, by
    ``torch.func.vmap(torch.func.grad(l))`` over a ``functional_call`` of the model in eval mode
    (see the module docstring for why eval mode). The model's mode is restored before each
    yield, and its ``.grad`` fields are never touched.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits of shape (batch, classes).
    X : array-like or torch.Tensor of shape (n, ...)
        Inputs in the model's layout.
    y : array-like or torch.Tensor of shape (n,)
        Integer class labels.
    params : str or sequence of str, optional
        Parameters to differentiate (see :func:`select_parameters`); None for all that require
        a gradient.
    batch_size : int, default=64
        Samples per vectorized pass; memory grows as ``batch_size x p``.

    Yields
    ------
    start : int
        Index of the chunk's first sample.
    grads : dict of str to torch.Tensor
        Parameter name -> gradients of shape (chunk, *param.shape), on the model's device, in
        loss units per parameter unit.

    Raises
    ------
    TypeError
        For a non-module ``model``, inputs of a wrong type, or a non-int ``batch_size``.
    ValueError
        For empty or mismatched inputs, NaN/inf in ``X`` or a shape the model cannot take, an
        unknown name in ``params``, ``batch_size`` < 1, a model whose output is not 2-D, or a
        label out of range.
    """
    torch = require_torch()
    batch_size = _check_batch_size(batch_size)
    names = select_parameters(model, params)
    Xt, yt, device = _as_inputs(X, y, model)
    named = dict(model.named_parameters())
    fn = _grad_fn(model, names)
    for start in range(0, len(Xt), batch_size):
        xb = Xt[start : start + batch_size].to(device)
        yb = yt[start : start + batch_size].to(device)
        with eval_mode(model):
            if start == 0:  # the output's shape and the class range, on one sample
                with torch.no_grad():
                    _check_logits(_first_logits(model, xb[:1], Xt.shape), yt)
            selected = {k: named[k].detach() for k in names}
            grads = fn(selected, xb, yb)
        yield start, {k: grads[k].detach() for k in names}


def per_sample_grads(model, X, y, params=None, *, batch_size=64, flatten=False):
    """Gradient of every sample's loss with respect to the chosen parameters (torch.func).

    g_i = d CE(f(x_i), y_i) / d theta for each sample i, computed by ``vmap(grad(...))`` in
    chunks of ``batch_size`` (:func:`iter_per_sample_grads`), never by a Python loop over the
    samples. The model runs in eval mode (BatchNorm uses its running statistics, so g_i is the
    gradient of sample i's loss alone; see the module docstring) and its mode is restored.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits of shape (batch, classes).
    X : array-like or torch.Tensor of shape (n, ...)
        Inputs in the model's layout (e.g. (n, C, H, W)).
    y : array-like or torch.Tensor of shape (n,)
        Integer class labels.
    params : str or sequence of str, optional
        None for every parameter that requires a gradient, otherwise parameter names or layer
        (module) name prefixes, e.g. ``["conv2", "fc"]`` (see :func:`select_parameters`).
    batch_size : int, default=64
        Samples per vectorized pass; bounds the memory of one pass to ``batch_size x p`` floats.
    flatten : bool, default=False
        Return one (n, p) tensor (the selected parameters flattened and concatenated in the
        model's order) instead of a dict.

    Returns
    -------
    dict of str to torch.Tensor, or torch.Tensor
        Parameter name -> tensor of shape (n, *param.shape), or with ``flatten`` a tensor of
        shape (n, p); detached, on the model's device, in the model's dtype.

    Raises
    ------
    TypeError
        For a non-module ``model``, inputs of a wrong type, or a non-int ``batch_size``.
    ValueError
        For empty or mismatched inputs, NaN/inf in ``X`` or a shape the model cannot take, an
        unknown name in ``params``, ``batch_size`` < 1, a model whose output is not 2-D, or a
        label out of range.
    """
    torch = require_torch()
    chunks = list(iter_per_sample_grads(model, X, y, params, batch_size=batch_size))
    names = list(chunks[0][1])
    out = {k: torch.cat([g[k] for _, g in chunks]) for k in names}
    if flatten:
        return torch.cat([out[k].reshape(out[k].shape[0], -1) for k in names], dim=1)
    return out
