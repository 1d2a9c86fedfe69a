"""Per-sample tracking of a torch classifier on a poisoned training set (early fitting, isolation
precision, the loss-reduction decomposition, per-layer synchronization, self-influence).

Functions over a model and arrays:

- :func:`group_mean_gradients`: g_b = grad mean_{i in B} l_i and g_c = grad mean_{i in C} l_i by
  two backward passes per chunk (no per-sample gradients);
- :func:`loss_reduction`: DBA's Theorem-1 terms r_bb, r_cc, r_bc and Delta from g_b, g_c, beside
  the *measured* one-step change of the mean poisoned and mean clean loss after one plain SGD
  step of size lr (taken on a functional copy of the parameters; the model is not changed);
- :func:`synchronization`: per layer, the mean pairwise cosine of per-sample gradients (the
  layer's parameters) and of global-average-pooled activations (the layer's output), within and
  across the groups;
- :func:`stratified_subset`: the seeded sample budget.

and a training callback, :class:`Tracker`, that records all of it per epoch as tidy DataFrames.

Every pass runs the model in eval mode (restored afterwards): with BatchNorm in train mode the
loss of a sample would depend on the rest of its batch, so neither per-sample quantities nor the
first-order identity behind Delta would hold. Groups follow ``ImageBackdoorData.GROUPS`` =
("poisoned", "target_clean", "other_clean") with codes 0, 1, 2; "clean" is codes 1 and 2.
torch is imported when a function runs.
"""

from __future__ import annotations

import math
import numbers
import time

import numpy as np
import pandas as pd

from .._validation import check_int, check_positive
from ..utils import require_torch
from ._modes import eval_mode
from .metrics import (
    SelfInfluence,
    _group_codes,
    _unit_interval,
    early_fitting_gap,
    isolation_precision,
    loss_reduction_terms,
    mean_cosine_from_sums,
    poison_auroc,
)
from .per_sample import (
    _as_inputs,
    _check_batch_size,
    _check_logits,
    iter_per_sample_grads,
    per_sample_losses,
    select_parameters,
)

__all__ = [
    "GROUP_NAMES",
    "LAYER_COLUMNS",
    "TRACKER_COLUMNS",
    "Tracker",
    "default_layers",
    "group_mean_gradients",
    "loss_reduction",
    "stratified_subset",
    "synchronization",
]

#: Group names by code, as ``ImageBackdoorData.GROUPS`` (0 poisoned, 1 and 2 clean).
GROUP_NAMES = ("poisoned", "target_clean", "other_clean")

#: The pairs whose mean cosine :func:`synchronization` reports: (column suffix, group codes of the
#: first set, group codes of the second set or None for distinct pairs within the first).
_PAIRS = (
    ("poisoned", (0,), None),
    ("target_clean", (1,), None),
    ("other_clean", (2,), None),
    ("clean", (1, 2), None),
    ("poisoned_clean", (0,), (1, 2)),
    ("poisoned_target_clean", (0,), (1,)),
)

#: Columns of :func:`synchronization`'s frame (one row per layer).
SYNC_COLUMNS = ["layer", "n_params"] + [
    f"{kind}_cos_{pair}" for kind in ("grad", "act") for pair, _, _ in _PAIRS
]

#: Columns of :attr:`Tracker.history` (one row per tracked epoch).
TRACKER_COLUMNS = [
    "epoch",
    "step",
    "lr",
    "losses_on",
    "n_losses",
    "eta",
    "isolation_precision",
    "auroc",
    "early_fitting_gap",
    *[f"loss_{stat}_{g}" for stat in ("mean", "median") for g in GROUP_NAMES],
    "r_bb",
    "r_cc",
    "r_bc",
    "delta",
    "predicted_poisoned",
    "predicted_clean",
    "measured_poisoned",
    "measured_clean",
    "measured_delta",
    "si_precision",
    "si_auroc",
    "seconds",
]

#: Columns of :attr:`Tracker.layer_history` (one row per tracked epoch and layer).
LAYER_COLUMNS = ["epoch", *SYNC_COLUMNS, "r_bb", "r_cc", "r_bc", "r_bb_share"]


# -- checks -------------------------------------------------------------------------------------


def _poisoned_mask(poisoned, n: int) -> np.ndarray:
    arr = np.asarray(poisoned) if poisoned is not None else None
    if arr is None or not (np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError("poisoned must be a boolean mask")
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"X and poisoned have different lengths ({n} != {np.size(arr)})")
    if arr.all() or not arr.any():
        raise ValueError("poisoned must mark some but not all samples (both groups needed)")
    return arr


def default_layers(model) -> list[str]:
    """The layers tracked by default: every named module that owns parameters directly.

    For ``SmallCNN`` this is ``["conv1", "conv2", "fc"]``; for a ResNet every convolution,
    BatchNorm and the head (pass coarser names such as ``"layer1"`` ... ``"layer4"`` to group
    them).

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    list of str
        Module names, in the model's order.

    Raises
    ------
    ValueError
        If no named module owns a parameter.
    """
    names = [
        name
        for name, module in model.named_modules()
        if name and any(True for _ in module.parameters(recurse=False))
    ]
    if not names:
        raise ValueError("model has no named module with parameters; pass layers explicitly")
    return names


def _resolve_layers(model, layers) -> dict:
    """Layer name -> (module, names of its parameters), checked against the model's modules."""
    require_torch()
    modules = dict(model.named_modules())
    if layers is None:
        layers = default_layers(model)
    elif isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty; pass None for the default layers")
    out = {}
    for name in layers:
        if not isinstance(name, str):
            raise TypeError(f"layers must hold module names (strings), got {name!r}")
        if not name or name not in modules:
            known = [n for n in modules if n]
            raise ValueError(f"layers: unknown layer {name!r}; the model's modules are {known}")
        params = [f"{name}.{p}" for p, _ in modules[name].named_parameters()]
        out[name] = (modules[name], params)
    return out


# -- the budget ---------------------------------------------------------------------------------


def stratified_subset(groups, budget, random_state=0) -> np.ndarray:
    """A seeded subset of at most ``budget`` samples keeping each group's share.

    Each group (code) gets floor(budget n_g / n) samples, the remaining places going to the
    largest remainders (ties to the lower code), then every group present gets at least one
    sample (taken from the largest allocation) when ``budget`` allows; the samples of a group are
    drawn without replacement by ``numpy.random.default_rng(random_state)``. So the poisoned
    share of the subset is the poisoned share of the data up to one sample. When
    ``budget >= n`` every sample is returned.

    Parameters
    ----------
    groups : array-like of shape (n,)
        Group codes (integers, e.g. ``ImageBackdoorData.groups()``) or a boolean poisoned mask.
    budget : int
        The largest subset size, >= 1.
    random_state : int, default=0
        Seed of the draw.

    Returns
    -------
    ndarray of int64
        Sorted sample indices, ``min(budget, n)`` of them.

    Raises
    ------
    TypeError
        If ``budget`` or ``random_state`` is not an int, or ``groups`` not integers/booleans.
    ValueError
        If ``budget`` < 1, ``random_state`` < 0, or ``groups`` is empty or not 1-D.
    """
    budget = check_int(budget, "budget", 1)
    seed = check_int(random_state, "random_state", 0)
    codes = np.asarray(groups)
    if codes.ndim != 1 or codes.size == 0:
        raise ValueError(f"groups must be a non-empty 1-D array, got shape {codes.shape}")
    if not (np.issubdtype(codes.dtype, np.integer) or np.issubdtype(codes.dtype, np.bool_)):
        raise TypeError(f"groups must be integer codes or a boolean mask, got {codes.dtype}")
    n = len(codes)
    if budget >= n:
        return np.arange(n, dtype=np.int64)
    values, counts = np.unique(codes, return_counts=True)
    quota = budget * counts / n
    take = np.floor(quota).astype(int)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: budget - take.sum()]] += 1
    for g in np.flatnonzero(take == 0):
        donor = int(np.argmax(take))
        if take[donor] > 1:
            take[donor] -= 1
            take[g] = 1
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(codes == v), size=k, replace=False)
        for v, k in zip(values, take, strict=True)
    ]
    return np.sort(np.concatenate(picks)).astype(np.int64)


# -- group-mean gradients and the loss-reduction decomposition ----------------------------------


def _functional(model):
    """(parameters dict, buffers dict, call) for functional evaluation of ``model``."""
    from torch.func import functional_call

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def call(overrides, x):
        merged = dict(params)
        merged.update(overrides)
        return functional_call(model, (merged, buffers), (x,))

    return params, call


def _group_pass(model, Xt, yt, poisoned, names, batch_size, device):
    """Mean losses and gradients of the mean losses of B and C, chunked, in eval mode."""
    torch = require_torch()
    F = torch.nn.functional
    params, call = _functional(model)
    mask = torch.as_tensor(poisoned)
    n_b, n_c = int(mask.sum()), int((~mask).sum())
    sums = {
        "b": [torch.zeros_like(params[k]) for k in names],
        "c": [torch.zeros_like(params[k]) for k in names],
    }
    loss_b = loss_c = 0.0
    leaves = {k: params[k].clone().requires_grad_(True) for k in names}
    with eval_mode(model):
        for start in range(0, len(Xt), batch_size):
            xb = Xt[start : start + batch_size].to(device)
            yb = yt[start : start + batch_size].to(device)
            mb = mask[start : start + batch_size].to(device)
            logits = call(leaves, xb)
            _check_logits(logits, yb)
            losses = F.cross_entropy(logits, yb, reduction="none")
            for key, sel, count in (("b", mb, n_b), ("c", ~mb, n_c)):
                if not bool(sel.any()):
                    continue
                part = losses[sel].sum() / count
                grads = torch.autograd.grad(
                    part, [leaves[k] for k in names], retain_graph=key == "b", allow_unused=True
                )
                for acc, g in zip(sums[key], grads, strict=True):
                    if g is not None:
                        acc += g
                if key == "b":
                    loss_b += float(part.detach())
                else:
                    loss_c += float(part.detach())
    g_b = dict(zip(names, sums["b"], strict=True))
    g_c = dict(zip(names, sums["c"], strict=True))
    return g_b, g_c, loss_b, loss_c


def _group_losses(model, overrides, Xt, yt, poisoned, batch_size, device):
    """Mean loss over B and over C with some parameters replaced (eval mode, no gradients)."""
    torch = require_torch()
    F = torch.nn.functional
    _, call = _functional(model)
    mask = torch.as_tensor(poisoned)
    total_b = total_c = 0.0
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(Xt), batch_size):
            xb = Xt[start : start + batch_size].to(device)
            yb = yt[start : start + batch_size].to(device)
            mb = mask[start : start + batch_size].to(device)
            losses = F.cross_entropy(call(overrides, xb), yb, reduction="none").double()
            total_b += float(losses[mb].sum())
            total_c += float(losses[~mb].sum())
    return total_b / int(mask.sum()), total_c / int((~mask).sum())


def group_mean_gradients(model, X, y, poisoned, *, params=None, batch_size=256):
    """Gradients of the mean poisoned loss and of the mean clean loss (two backward passes).

    g_b = d/dtheta (1/|B|) sum_{i in B} l_i and g_c = d/dtheta (1/|C|) sum_{i in C} l_i, with
    l_i the cross-entropy (nats) in eval mode. Per chunk of ``batch_size`` samples one forward
    pass and one backward pass per group; no per-sample gradient is formed. The model's
    parameters and their ``.grad`` are left untouched (a functional copy is differentiated).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning 2-D logits.
    X : array-like or torch.Tensor of shape (n, ...)
        Inputs in the model's layout.
    y : array-like or torch.Tensor of shape (n,)
        Integer labels.
    poisoned : array-like of bool, shape (n,)
        The poisoned mask B (C is its complement); both must be non-empty.
    params : str or sequence of str, optional
        Parameters to differentiate (see :func:`~backdoor_curves.nn.per_sample.select_parameters`);
        None for all that require a gradient.
    batch_size : int, default=256
        Samples per pass.

    Returns
    -------
    g_b : dict of str to torch.Tensor
        Parameter name -> gradient of the mean poisoned loss (the parameter's shape).
    g_c : dict of str to torch.Tensor
        Parameter name -> gradient of the mean clean loss.

    Raises
    ------
    TypeError
        For a non-module ``model``, inputs of a wrong type, or a non-boolean ``poisoned``.
    ValueError
        For mismatched lengths, a ``poisoned`` mask with an empty group, an unknown name in
        ``params``, ``batch_size`` < 1, or a model whose output is not 2-D.
    """
    batch_size = _check_batch_size(batch_size)
    names = select_parameters(model, params)
    Xt, yt, device = _as_inputs(X, y, model)
    mask = _poisoned_mask(poisoned, len(Xt))
    g_b, g_c, _, _ = _group_pass(model, Xt, yt, mask, names, batch_size, device)
    return g_b, g_c


def _flat(grads: dict, names) -> np.ndarray:
    return np.concatenate([grads[k].detach().double().cpu().reshape(-1).numpy() for k in names])


def _loss_reduction(model, Xt, yt, mask, lr, beta, names, batch_size, device, group=None):
    """Theorem-1 terms and the measured step; ``group`` = (g_b, g_c, loss_b, loss_c) when the
    group means are known already (the Tracker has them from its per-sample gradients)."""
    torch = require_torch()
    if group is None:
        group = _group_pass(model, Xt, yt, mask, names, batch_size, device)
    g_b, g_c, loss_b, loss_c = group
    eta = float(mask.mean())
    terms = loss_reduction_terms(_flat(g_b, names), _flat(g_c, names), lr, eta, beta=beta)
    params = dict(model.named_parameters())
    with torch.no_grad():
        stepped = {
            k: params[k].detach() - lr * (beta * eta * g_b[k] + (1 - eta) * g_c[k]) for k in names
        }
    after_b, after_c = _group_losses(model, stepped, Xt, yt, mask, batch_size, device)
    measured_b, measured_c = loss_b - after_b, loss_c - after_c
    out = {"eta": eta, "lr": float(lr), "beta": float(beta), **terms}
    out.update(
        loss_poisoned=loss_b,
        loss_clean=loss_c,
        measured_poisoned=measured_b,
        measured_clean=measured_c,
        measured_delta=measured_b - measured_c,
    )
    return out, g_b, g_c


def loss_reduction(model, X, y, poisoned, lr, *, beta=1.0, params=None, batch_size=256) -> dict:
    """Theorem-1 prediction of the one-step loss reduction beside the measured one.

    From the group-mean gradients g_b, g_c (:func:`group_mean_gradients`, eval mode) and
    eta = |B| / n: r_bb = lr ||g_b||^2, r_cc = lr ||g_c||^2, r_bc = lr g_b . g_c,
    predicted_poisoned = beta eta r_bb + (1 - eta) r_bc, predicted_clean = beta eta r_bc +
    (1 - eta) r_cc and Delta = their difference (= eta r_bb - (1 - eta) r_cc + (1 - 2 eta) r_bc at
    beta = 1; see :func:`~backdoor_curves.nn.metrics.loss_reduction_terms`). Then one plain SGD
    step (no momentum, no weight decay) theta' = theta - lr g on the weighted training loss
    (1/n) sum_i w_i l_i, g = beta eta g_b + (1 - eta) g_c, is taken on a functional copy of the
    parameters (the model is unchanged) and the mean losses are measured again:
    measured_poisoned = L_B(theta) - L_B(theta') and measured_clean likewise, so a positive value
    is a decrease. The prediction is exact to first order: the gap to the measurement is
    O(lr^2).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning 2-D logits.
    X : array-like or torch.Tensor of shape (n, ...)
        Inputs in the model's layout.
    y : array-like or torch.Tensor of shape (n,)
        Integer labels.
    poisoned : array-like of bool, shape (n,)
        The poisoned mask B; both B and its complement must be non-empty.
    lr : float
        The step size, > 0.
    beta : float, default=1.0
        Weight of the poisoned samples in the training loss, in [0, 1].
    params : str or sequence of str, optional
        Restrict the gradients and the step to these parameters / layers (None: all that
        require a gradient).
    batch_size : int, default=256
        Samples per pass.

    Returns
    -------
    dict
        Floats ``eta``, ``lr``, ``beta``, ``r_bb``, ``r_cc``, ``r_bc``, ``delta``,
        ``predicted_poisoned``, ``predicted_clean`` (predicted decreases, nats),
        ``loss_poisoned``, ``loss_clean`` (mean losses before the step, nats),
        ``measured_poisoned``, ``measured_clean`` (measured decreases, nats) and
        ``measured_delta`` = measured_poisoned - measured_clean (compare with ``delta``).

    Raises
    ------
    TypeError
        For a non-module ``model``, inputs of a wrong type, or non-numeric ``lr``/``beta``.
    ValueError
        For mismatched lengths, an empty group, ``lr`` <= 0, ``beta`` outside [0, 1], an
        unknown name in ``params``, ``batch_size`` < 1, or a model whose output is not 2-D.
    """
    batch_size = _check_batch_size(batch_size)
    names = select_parameters(model, params)
    Xt, yt, device = _as_inputs(X, y, model)
    mask = _poisoned_mask(poisoned, len(Xt))
    lr = check_positive(lr, "lr")
    beta = _unit_interval(beta, "beta")
    out, _, _ = _loss_reduction(model, Xt, yt, mask, lr, beta, names, batch_size, device)
    return out


# -- synchronization ----------------------------------------------------------------------------


class _GroupSums:
    """Running sums of unit vectors per group code (float64, on the tensors' device)."""

    def __init__(self):
        self.sums = {}
        self.counts = {0: 0, 1: 0, 2: 0}

    def add(self, vectors, codes) -> None:
        torch = require_torch()
        v = vectors.reshape(vectors.shape[0], -1).double()
        norms = torch.linalg.vector_norm(v, dim=1)
        keep = norms > 0
        units = v[keep] / norms[keep, None]
        kept_codes = codes[keep]
        for g in (0, 1, 2):
            sel = kept_codes == g
            count = int(sel.sum())
            if count == 0:
                continue
            part = units[sel].sum(dim=0)
            self.sums[g] = self.sums[g] + part if g in self.sums else part
            self.counts[g] += count

    def _sum(self, codes):
        parts = [self.sums[g] for g in codes if g in self.sums]
        if not parts:
            return None, 0
        total = parts[0].clone()
        for p in parts[1:]:
            total += p
        return total.cpu().numpy(), sum(self.counts[g] for g in codes)

    def cosine(self, first, second=None) -> float:
        sa, na = self._sum(first)
        if second is None:
            return float("nan") if sa is None else mean_cosine_from_sums(sa, na)
        sb, nb = self._sum(second)
        if sa is None or sb is None:
            return float("nan")
        return mean_cosine_from_sums(sa, na, sb, nb)


def _pool(output):
    """Global average pooling over every axis after the channel axis (NCHW), per sample."""
    if isinstance(output, tuple | list):
        output = output[0]
    if output.ndim > 2:
        output = output.mean(dim=tuple(range(2, output.ndim)))
    return output.reshape(output.shape[0], -1)


def _layer_pass(model, Xt, yt, codes, layers, batch_size, device, *, all_params, fwd_batch=None):
    """Synchronization sums per layer, squared per-sample gradient norms, losses and means.

    One per-sample-gradient pass (vmap) over the parameters of the layers (or over every
    parameter with ``all_params``, for self-influence and the group-mean gradients) and one
    forward pass with hooks, in chunks of ``fwd_batch`` (default ``batch_size``; the Tracker
    passes the chunking of :func:`_group_losses`, so that the losses before and after its step
    are computed alike). Returns the per-layer gradient and activation sums, the squared
    gradient norms (zeros without ``all_params``), the losses, and with ``all_params`` the
    group means (g_b, g_c, mean loss of B, mean loss of C) of :func:`_group_pass`, as the means
    of the per-sample gradients (else None).
    """
    torch = require_torch()
    F = torch.nn.functional
    codes_t = torch.as_tensor(codes)
    grad_sums = {name: _GroupSums() for name in layers}
    act_sums = {name: _GroupSums() for name in layers}
    si_names = select_parameters(model, None) if all_params else []
    wanted = set(si_names) | {p for _, ps in layers.values() for p in ps}
    names = [n for n, _ in model.named_parameters() if n in wanted]
    sq_norms = np.zeros(len(Xt))
    sum_b, sum_c = {}, {}
    if names:
        for start, grads in iter_per_sample_grads(model, Xt, yt, names, batch_size=batch_size):
            c = codes_t[start : start + len(next(iter(grads.values())))].to(device)
            for layer, (_, ps) in layers.items():
                if ps:
                    flat = torch.cat([grads[p].reshape(len(c), -1) for p in ps], dim=1)
                    grad_sums[layer].add(flat, c)
            if si_names:
                sq = sum(grads[k].double().reshape(len(c), -1).pow(2).sum(dim=1) for k in si_names)
                sq_norms[start : start + len(c)] = sq.cpu().numpy()
                in_b = c == 0
                for k in si_names:
                    part_b, part_c = grads[k][in_b].sum(dim=0), grads[k][~in_b].sum(dim=0)
                    sum_b[k] = sum_b[k] + part_b if k in sum_b else part_b
                    sum_c[k] = sum_c[k] + part_c if k in sum_c else part_c
    captured = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _i, output, name=name: captured.__setitem__(name, _pool(output).detach())
        )
        for name, (module, _) in layers.items()
    ]
    losses = np.empty(len(Xt))
    fwd_batch = fwd_batch or batch_size
    try:
        with eval_mode(model), torch.no_grad():
            for start in range(0, len(Xt), fwd_batch):
                xb = Xt[start : start + fwd_batch].to(device)
                yb = yt[start : start + fwd_batch].to(device)
                c = codes_t[start : start + fwd_batch].to(device)
                captured.clear()
                logits = model(xb)
                _check_logits(logits, yb)
                losses[start : start + len(xb)] = (
                    F.cross_entropy(logits, yb, reduction="none").double().cpu().numpy()
                )
                for layer in layers:
                    act_sums[layer].add(captured[layer], c)
    finally:
        for h in handles:
            h.remove()
    group = None
    n_b, n_c = int((codes == 0).sum()), int((codes != 0).sum())
    if si_names and n_b and n_c:
        g_b = {k: v / n_b for k, v in sum_b.items()}
        g_c = {k: v / n_c for k, v in sum_c.items()}
        group = (g_b, g_c, float(losses[codes == 0].mean()), float(losses[codes != 0].mean()))
    return grad_sums, act_sums, sq_norms, losses, group


def _sync_rows(layers, grad_sums, act_sums, model) -> list[dict]:
    params = dict(model.named_parameters())
    rows = []
    for layer, (_, ps) in layers.items():
        row = {"layer": layer, "n_params": int(sum(params[p].numel() for p in ps))}
        for kind, sums in (("grad", grad_sums), ("act", act_sums)):
            for pair, first, second in _PAIRS:
                row[f"{kind}_cos_{pair}"] = sums[layer].cosine(first, second)
        rows.append(row)
    return rows


def synchronization(model, X, y, groups, layers=None, *, batch_size=64) -> pd.DataFrame:
    """Per-layer synchronization: mean pairwise cosine of per-sample gradients and activations.

    For each layer l and each set of pairs: S_l^grad = mean cos(g_l(i), g_l(j)) with g_l(i) the
    gradient of sample i's loss with respect to the layer's parameters (per-sample gradients by
    ``torch.func.vmap``), and S_l^act the same mean over the layer's output, global-average-pooled
    over the spatial axes (a (C, H, W) output becomes C numbers). Within a group the mean runs
    over distinct pairs i != j, across two groups over all pairs; both come from sums of unit
    vectors (:func:`~backdoor_curves.nn.metrics.mean_cosine_from_sums`), so no n x n matrix and
    no (n, p) gradient matrix is stored. Vectors of norm zero are left out. Eval mode throughout.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning 2-D logits.
    X : array-like or torch.Tensor of shape (n, ...)
        Inputs in the model's layout.
    y : array-like or torch.Tensor of shape (n,)
        Integer labels.
    groups : array-like of shape (n,)
        Group codes 0 (poisoned), 1 (clean, target class), 2 (other clean), as
        ``ImageBackdoorData.groups()``; or a boolean poisoned mask (clean samples then count as
        code 2, and the ``target_clean`` columns are NaN).
    layers : str or sequence of str, optional
        Module names (``model.named_modules()``); None for :func:`default_layers`. A module
        without parameters (e.g. an activation) has NaN gradient columns.
    batch_size : int, default=64
        Samples per vectorized pass.

    Returns
    -------
    pandas.DataFrame
        One row per layer with ``layer``, ``n_params`` and, for ``kind`` in ``grad``, ``act``,
        the dimensionless mean cosines ``{kind}_cos_poisoned``, ``{kind}_cos_target_clean``,
        ``{kind}_cos_other_clean``, ``{kind}_cos_clean`` (within groups),
        ``{kind}_cos_poisoned_clean`` and ``{kind}_cos_poisoned_target_clean`` (across); NaN
        where a set has no pair.

    Raises
    ------
    TypeError
        For a non-module ``model`` or inputs of a wrong type.
    ValueError
        For mismatched lengths, group codes outside {0, 1, 2}, an unknown layer name,
        ``batch_size`` < 1, or a model whose output is not 2-D.
    """
    batch_size = _check_batch_size(batch_size)
    Xt, yt, device = _as_inputs(X, y, model)
    codes = _group_codes(groups, len(Xt))
    resolved = _resolve_layers(model, layers)
    grad_sums, act_sums, _, _, _ = _layer_pass(
        model, Xt, yt, codes, resolved, batch_size, device, all_params=False
    )
    return pd.DataFrame(_sync_rows(resolved, grad_sums, act_sums, model), columns=SYNC_COLUMNS)


# -- the callback -------------------------------------------------------------------------------


def _group_stat(values, codes, g, fn) -> float:
    sel = codes == g
    return float(fn(values[sel])) if sel.any() else float("nan")


class Tracker:
    """Training callback recording early fitting, IP, Delta, synchronization and self-influence.

    Follows the protocol of :mod:`backdoor_curves.nn.callbacks`: the trainer calls
    ``on_train_begin``, ``on_epoch_end`` after every epoch and ``on_train_end``. At the start
    (epoch 0, with ``track_initial``) and after every ``every``-th epoch the tracker evaluates the
    current model in eval mode (the model's mode, parameters and ``.grad`` are left as found; no
    torch random numbers are drawn, so training is unchanged) and records:

    - **per-sample losses** l_i (nats) of *all* training samples when
      ``n_train <= loss_samples`` (default: twice the budget, where one forward pass over all
      samples costs about what the budget's gradient pass costs), else of the budget subset; the
      column ``losses_on`` says which ("all" or "budget"). A forward pass over the whole training
      set costs about a third to a half of an epoch; pass ``loss_samples=n_train`` for ABL's IP
      over the whole set. From them: isolation precision at ``eta`` (the lowest-loss
      floor(eta n) samples, ties by index), the AUROC of -l as a poison detector, the early-fitting
      gap mean_C l - mean_B l (positive = poison fitted faster), and the mean and median loss of
      each group;
    - on the **budget subset** (a seeded stratified subset of at most ``budget`` training samples,
      fixed for the run, keeping each group's share; :func:`stratified_subset`):
      the Theorem-1 terms r_bb, r_cc, r_bc, Delta and the measured one-step changes at the
      trainer's current lr and beta (:func:`loss_reduction`); per-layer synchronization
      (:func:`synchronization`) and the per-layer split of r_bb, r_cc, r_bc; and self-influence
      SI_i = sum_t lr_t ||grad l_i(theta_t)||^2 over the tracked end-of-epoch checkpoints t
      (epoch 0 excluded; all parameters that require a gradient; lr_t the learning rate in
      effect during the epoch that ended at t, TracIn's convention), with its precision at eta
      (highest SI flagged) and AUROC.

    IP and the other loss columns are recorded at every tracked epoch (ABL reads IP after epochs
    1..5: ``history.query("1 <= epoch <= 5")``). The per-sample gradients (vmap) are only ever
    computed on the budget subset. Delta's measured step is a plain SGD step of the trainer's
    current lr (no momentum or weight decay), on a functional copy of the parameters. One Tracker
    records one run: ``on_train_begin`` clears earlier records (a resumed run starts at the
    resumed epoch, and its self-influence covers the epochs trained after resuming).

    Parameters
    ----------
    budget : int, default=1000
        Largest number of training samples on which gradients are taken, >= 1.
    eta : float, optional
        The isolated fraction of IP and of the self-influence precision, in (0, 1); None for the
        data's poison rate.
    layers : str or sequence of str, optional
        Modules whose synchronization is tracked (None: :func:`default_layers`).
    loss_samples : int, optional
        Compute the losses of all training samples when there are at most this many, else of the
        budget subset only; None for ``2 * budget``, 0 for always the subset.
    batch_size : int, default=256
        Samples per forward pass.
    grad_batch_size : int, default=64
        Samples per vectorized per-sample-gradient pass (memory ~ grad_batch_size x parameters).
    random_state : int, default=0
        Seed of the budget subset.
    track_initial : bool, default=True
        Also record the untrained model as epoch 0 (in ``on_train_begin``).
    every : int, default=1
        Record every ``every``-th epoch (and always the last one reached).

    Attributes
    ----------
    subset : ndarray of int64 or None
        Training-set indices of the budget subset (after ``on_train_begin``).
    eta : float or None
        The fraction used for IP (after ``on_train_begin``).
    history : pandas.DataFrame
        One row per tracked epoch, columns :data:`TRACKER_COLUMNS`.
    layer_history : pandas.DataFrame
        One row per tracked epoch and layer, columns :data:`LAYER_COLUMNS`.
    sample_losses : pandas.DataFrame
        Long format ``epoch``, ``sample`` (training index), ``group``, ``loss``.
    self_influence : pandas.DataFrame
        One row per subset sample: ``sample``, ``group``, ``poisoned``, ``self_influence``.

    Raises
    ------
    TypeError
        If an argument has a wrong type.
    ValueError
        If ``budget`` < 1, ``eta`` is outside (0, 1), ``every`` < 1, ``loss_samples`` < 0 or a
        batch size < 1; at ``on_train_begin``, if a layer name is unknown or floor(eta n) = 0 for
        the samples ranked.
    """

    def __init__(
        self,
        budget=1000,
        *,
        eta=None,
        layers=None,
        loss_samples=None,
        batch_size=256,
        grad_batch_size=64,
        random_state=0,
        track_initial=True,
        every=1,
    ):
        self.budget = check_int(budget, "budget", 1)
        if eta is not None:
            if isinstance(eta, bool) or not isinstance(eta, numbers.Real):
                raise TypeError(f"eta must be None or a real number in (0, 1), got {eta!r}")
            if not (0.0 < float(eta) < 1.0):
                raise ValueError(f"eta must lie strictly between 0 and 1, got {eta!r}")
            eta = float(eta)
        self._eta_arg = eta
        if layers is not None and not isinstance(layers, str):
            layers = list(layers)
        self.layers = layers
        if loss_samples is None:
            loss_samples = 2 * self.budget
        self.loss_samples = check_int(loss_samples, "loss_samples", 0)
        self.batch_size = _check_batch_size(batch_size, "batch_size")
        self.grad_batch_size = _check_batch_size(grad_batch_size, "grad_batch_size")
        self.random_state = check_int(random_state, "random_state", 0)
        self.track_initial = bool(track_initial)
        self.every = check_int(every, "every", 1)
        self.subset = None
        self.eta = None
        self._rows, self._layer_rows, self._loss_rows = [], [], []
        self._ready = False

    # the callback protocol ------------------------------------------------------------------

    def on_train_begin(self, state) -> None:
        """Fix the budget subset and record epoch 0 (with ``track_initial``).

        Parameters
        ----------
        state : TrainState
            The trainer's state (``model``, ``data``, ``beta``, ``lr``, ``epoch``, ``step``).
        """
        self._rows, self._layer_rows, self._loss_rows = [], [], []
        self._setup(state)
        if self.track_initial:
            self._record(state)

    def on_epoch_end(self, state) -> None:
        """Add the finished epoch to the self-influence and record it (every ``every`` epochs).

        Parameters
        ----------
        state : TrainState
            The trainer's state; ``state.epoch`` counts finished epochs.
        """
        if not self._ready:  # e.g. resumed from a checkpoint without on_train_begin
            self._setup(state)
        last = getattr(state.config, "epochs", None)
        if state.epoch % self.every == 0 or state.epoch == last:
            self._record(state, checkpoint=True)
        self._lr_prev = float(state.lr)

    def on_train_end(self, state) -> None:
        """Record the last epoch if ``every`` skipped it.

        Parameters
        ----------
        state : TrainState
            The trainer's state after the last epoch.
        """
        recorded = bool(self._rows) and self._rows[-1]["epoch"] == state.epoch
        if self._ready and state.epoch > 0 and not recorded:
            self._record(state, checkpoint=True)

    # results ---------------------------------------------------------------------------------

    @property
    def history(self) -> pd.DataFrame:
        """One row per tracked epoch (columns :data:`TRACKER_COLUMNS`)."""
        return pd.DataFrame(self._rows, columns=TRACKER_COLUMNS)

    @property
    def layer_history(self) -> pd.DataFrame:
        """One row per tracked epoch and layer (columns :data:`LAYER_COLUMNS`)."""
        return pd.DataFrame(self._layer_rows, columns=LAYER_COLUMNS)

    @property
    def sample_losses(self) -> pd.DataFrame:
        """Per-sample losses, long format: ``epoch``, ``sample``, ``group``, ``loss`` (nats)."""
        if not self._loss_rows:
            return pd.DataFrame(columns=["epoch", "sample", "group", "loss"])
        frames = [
            pd.DataFrame(
                {
                    "epoch": epoch,
                    "sample": idx,
                    "group": pd.Categorical.from_codes(codes, self._group_names),
                    "loss": losses,
                }
            )
            for epoch, idx, codes, losses in self._loss_rows
        ]
        return pd.concat(frames, ignore_index=True)

    @property
    def self_influence(self) -> pd.DataFrame:
        """Self-influence of the subset: ``sample``, ``group``, ``poisoned``, ``self_influence``."""
        if self.subset is None:
            return pd.DataFrame(columns=["sample", "group", "poisoned", "self_influence"])
        return pd.DataFrame(
            {
                "sample": self.subset,
                "group": pd.Categorical.from_codes(self._sub_codes, self._group_names),
                "poisoned": self._sub_codes == 0,
                "self_influence": self._si.scores.copy(),
            }
        )

    # internals -------------------------------------------------------------------------------

    def _setup(self, state) -> None:
        torch = require_torch()
        data, model = state.data, state.model
        X = data.to_nchw(data.X_train)
        self._X = torch.as_tensor(np.ascontiguousarray(X))
        self._y = torch.as_tensor(np.asarray(data.y_train, dtype=np.int64))
        self._codes = _group_codes(np.asarray(data.groups()), len(self._y), "X_train")
        poisoned = np.asarray(data.poisoned, dtype=bool)
        if not np.array_equal(poisoned, self._codes == 0):
            raise ValueError("data: groups() code 0 and the poisoned mask disagree")
        self._group_names = list(getattr(data, "GROUPS", GROUP_NAMES))
        self.eta = self._eta_arg if self._eta_arg is not None else float(data.poison_rate)
        if not (0.0 < self.eta < 1.0):
            raise ValueError(f"eta: the data's poison rate {self.eta} is outside (0, 1)")
        n = len(self._y)
        self.subset = stratified_subset(self._codes, self.budget, self.random_state)
        self._sub_codes = self._codes[self.subset]
        self._losses_on = "all" if n <= self.loss_samples else "budget"
        n_ranked = n if self._losses_on == "all" else len(self.subset)
        for what, count in (("the ranked samples", n_ranked), ("the subset", len(self.subset))):
            if math.floor(self.eta * count + 1e-9) < 1:
                raise ValueError(
                    f"eta: floor(eta * n) = 0 for {what} (eta = {self.eta}, n = {count}); "
                    "raise budget or eta"
                )
        self._layers = _resolve_layers(model, self.layers)
        self._si = SelfInfluence(len(self.subset))
        self._lr_prev = float(state.lr)
        self._ready = True

    def _record(self, state, checkpoint=False) -> None:
        t0 = time.perf_counter()
        model = state.model
        Xs, ys, device = _as_inputs(self._X[self.subset], self._y[self.subset], model)
        codes_s = self._sub_codes
        grad_sums, act_sums, sq_norms, sub_losses, group = _layer_pass(
            model,
            Xs,
            ys,
            codes_s,
            self._layers,
            self.grad_batch_size,
            device,
            all_params=True,
            fwd_batch=self.batch_size,
        )
        if self._losses_on == "all":
            losses = per_sample_losses(model, self._X, self._y, batch_size=self.batch_size)
            codes, idx = self._codes, np.arange(len(self._y))
        else:
            losses, codes, idx = sub_losses, codes_s, self.subset
        poisoned = codes == 0
        row = {
            "epoch": int(state.epoch),
            "step": int(state.step),
            "lr": float(state.lr),
            "losses_on": self._losses_on,
            "n_losses": len(losses),
            "eta": self.eta,
            "isolation_precision": isolation_precision(losses, poisoned, self.eta),
            "auroc": poison_auroc(losses, poisoned),
            "early_fitting_gap": early_fitting_gap(losses, codes),
        }
        for stat, fn in (("mean", np.mean), ("median", np.median)):
            for g, name in enumerate(GROUP_NAMES):
                row[f"loss_{stat}_{name}"] = _group_stat(losses, codes, g, fn)
        names = select_parameters(model, None)
        lr = float(state.lr)
        if lr > 0:
            beta = float(state.beta)
            red, g_b, g_c = _loss_reduction(
                model, Xs, ys, codes_s == 0, lr, beta, names, self.batch_size, device, group
            )
            row.update({k: red[k] for k in TRACKER_COLUMNS if k in red})
        else:
            g_b = g_c = None
        if checkpoint and state.epoch > 0:
            self._si.update(sq_norms, self._lr_prev)
        if self._si.n_checkpoints:
            row["si_precision"] = self._si.precision(codes_s == 0, self.eta)
            row["si_auroc"] = self._si.auroc(codes_s == 0)
        for sync in _sync_rows(self._layers, grad_sums, act_sums, model):
            layer = sync["layer"]
            _, ps = self._layers[layer]
            terms = {"r_bb": np.nan, "r_cc": np.nan, "r_bc": np.nan, "r_bb_share": np.nan}
            own = [p for p in ps if g_b is not None and p in g_b]
            if own:
                gb, gc = _flat(g_b, own), _flat(g_c, own)
                terms.update(
                    r_bb=lr * float(gb @ gb), r_cc=lr * float(gc @ gc), r_bc=lr * float(gb @ gc)
                )
                if row.get("r_bb"):
                    terms["r_bb_share"] = terms["r_bb"] / row["r_bb"]
            self._layer_rows.append({"epoch": int(state.epoch), **sync, **terms})
        self._loss_rows.append((int(state.epoch), idx.copy(), codes.copy(), losses.copy()))
        row["seconds"] = time.perf_counter() - t0
        self._rows.append(row)
