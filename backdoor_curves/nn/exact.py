"""The exact derivative of a training run with respect to the weight of the poison (DESIGN §4).

:func:`~backdoor_curves.nn.train.train` maps beta to trained parameters theta_T(beta) through T
optimizer steps; for a fixed seed (same initial weights, same batches, same dropout masks) the
backdoor loss of the trained network, L(beta) = L(V_t, theta_T(beta)), is a function of beta
alone. Its derivative at beta = 0 is what the finite differences of
:func:`~backdoor_curves.nn.curves.nn_backdoor_slope` approximate, (L(h) - L(0)) / h -> dL/dbeta as
h -> 0. Here it is computed exactly, by forward-mode differentiation through every step of the
same run: the derivative of an *actual training run*, not of an optimum (no Hessian inverse, no
influence-function approximation).

Smooth layers (tanh, softplus, average pooling, batch norm) make L smooth. ReLU and max pooling
make it piecewise smooth: an activation that changes sign, or a max-pool arg-max that moves, at
any step of the run is a kink of L(beta), and a run has many. The derivative is then the slope of
the piece that contains beta = 0; finite differences converge to it only for h below the
distance to the nearest kink. Measured on 300 pooled digits, SmallCNN(width=4), two epochs (the
tests' setting): the kinks lie within 1e-3 of beta = 0 (the forward difference is 43 % off at
h = 0.003, 2.8 % at h = 0.01, 1.7 % at h = 0.1) and below 3e-4 it converges linearly in h.

The run. Step t takes the batch B_t of :func:`~backdoor_curves.nn.train.batch_order` and the
weighted batch loss of :func:`~backdoor_curves.nn.train.weighted_loss`,

    L_t(theta, beta) = (1/|B_t|) sum_{i in B_t} w_i(beta) CE(f_theta(x_i), y_i),
    w_i(beta) = beta on a poisoned row, 1 on a clean row      (so dw_i/dbeta = 1 or 0),

g_t = grad_theta L_t(theta_t, beta), and torch.optim.SGD's update (learning rate eta, momentum
mu, dampening tau, weight decay lambda, optional Nesterov; PyTorch's ``_single_tensor_sgd``):

    d_t       = g_t + lambda theta_t
    m_t       = d_t                                  (first step: the buffer starts as d)
    m_t       = mu m_{t-1} + (1 - tau) d_t           (later steps)
    s_t       = d_t + mu m_t   (Nesterov)   or   m_t
    theta_t+1 = theta_t - eta s_t

The tangents. Every quantity carries its derivative along beta, written with a dot. Differentiating
the update gives the same recursion on (theta_dot, m_dot) with

    g_dot_t = H_t theta_dot_t + d/dbeta grad_theta L_t
            = jvp of (theta, beta) -> grad_theta L_t(theta, beta) along (theta_dot_t, 1),

a forward-over-reverse product (``torch.func.jvp`` of ``torch.func.grad``): one
Hessian-vector product per step, never a Hessian. theta_dot_0 = 0 (the initial weights do not
depend on beta). At the end,

    dL/dbeta = d/dbeta [ (1/|V_t|) sum_{(x, y) in V_t} CE(f_theta_T(x), y) ]
             = < grad_theta L(V_t, theta_T), theta_dot_T >       (a jvp of the test loss),

with the model in eval mode as :func:`~backdoor_curves.nn.train.evaluate` runs it.

Per-sample weights. The same recursion differentiates the run along any direction v of the
per-sample weights (w_i' = v_i instead of the poisoned mask): the batch gradient's tangent
gets the term (1/|B_t|) sum_{i in B_t} v_i grad l_i. With v = e_j it gives dL/dw_j, the
derivative of the backdoor loss with respect to row j's weight (:func:`point_derivatives`, the
tangents of many rows carried at once by ``torch.func.vmap`` over the per-step jvp). The
derivative is linear in v, so the per-row derivatives of the poisoned rows sum to dL/dbeta. At
beta = 0 a poisoned row sits in its batches with weight 0: it changes nothing in the primal run
(not even |B_t|, which counts it), only the tangent.

Batch normalisation. In train mode a BatchNorm layer normalises with the statistics of the
current batch (which depend on theta, not on beta directly) and updates its running mean and
variance, which the eval-mode network of the final loss uses; through theta they depend on beta.
They are carried as state with their own tangents: the running statistics are updated
functionally (the same exponential or cumulative average as PyTorch, the unbiased batch
variance), the train-mode output uses PyTorch's batch-norm kernel without running statistics (the
same numbers as the trainer's), and the eval-mode output is written out, (x - mean) / sqrt(var +
eps) * weight + bias, so that it is differentiable in the running statistics. Instance
normalisation with running statistics is refused.

torch is imported when a function runs (``import backdoor_curves.nn.exact`` does not import it).
"""

from __future__ import annotations

import contextlib
import math
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..data import ImageBackdoorData
from ..measures.results import slope_score
from ..utils import require_torch, resolve_device
from .train import (
    TrainConfig,
    _check_config,
    _check_data,
    _check_logits,
    _rng_devices,
    batch_order,
    deterministic,
    init_model,
    make_optimizer,
    training_seed,
    weighted_loss,
)

__all__ = ["PointDerivatives", "TrainingDerivative", "point_derivatives", "training_derivative"]

_JIT_DEPRECATION = r"`torch\.jit\.script` is deprecated"

#: Images per forward pass when the derivative of the backdoor test loss is accumulated.
_EVAL_BATCH = 256


@dataclass(frozen=True)
class TrainingDerivative:
    """The exact derivative of the backdoor loss of a training run at beta = 0.

    Attributes
    ----------
    derivative : float
        dL(V_t)/dbeta at beta = 0, where L(V_t) is the mean cross-entropy (natural log, nats) of
        the trained network on the backdoor test set V_t against the attacker's labels and
        beta the weight of the poisoned samples in the batch loss: nats per unit of beta.
        Negative when a little poison already lowers the backdoor loss (the backdoor is being
        learned). The limit of the finite difference (L(h) - L(0)) / h of
        :func:`~backdoor_curves.nn.curves.nn_backdoor_slope` as h -> 0, same seed (for ReLU
        or max-pool networks only below the kinks of L, see the module's docstring).
    score : float
        ``slope_score(derivative)`` = -(2/pi) arctan(derivative), in (-1, 1); positive when
        the backdoor is being learned.
    backdoor_loss : float
        L(0): mean cross-entropy in nats on V_t of the network trained at beta = 0 (as
        :func:`~backdoor_curves.nn.train.evaluate` computes it, in the model's dtype).
    clean_loss : float
        Mean cross-entropy in nats on the clean test set V of that network.
    clean_accuracy : float
        Its accuracy on V, in [0, 1].
    backdoor_accuracy : float
        Its attack success rate on V_t (fraction predicted as the attacker's label), in [0, 1].
    seconds : float
        Wall time of the whole computation (the differentiated training run and the
        evaluation), in seconds.
    n_steps : int
        Optimizer steps differentiated through (epochs times batches per epoch).
    model : torch.nn.Module
        The network trained at beta = 0 (eval mode): the primal of the differentiated run,
        the parameters :func:`~backdoor_curves.nn.train.train` gives at beta = 0 up to float
        rounding.
    config : TrainConfig
        The training configuration.
    """

    derivative: float
    score: float
    backdoor_loss: float
    clean_loss: float
    clean_accuracy: float
    backdoor_accuracy: float
    seconds: float
    n_steps: int
    model: Any = field(repr=False)
    config: TrainConfig = field(repr=False)


@dataclass
class _Run:
    """What a functional training run leaves (primal state and, if asked, its tangents)."""

    model: Any
    params: dict
    stats: dict
    dparams: dict | None
    dstats: dict | None
    n_steps: int
    n_directions: int | None = None  # m when the tangents are batched (leading axis m)


# ------------------------------------------------------------------------------ the optimizer


def _sgd_hyperparameters(optimizer, model, config) -> dict:
    """Per-parameter SGD settings, keyed by the parameter's name in ``model``."""
    torch = require_torch()
    if not isinstance(optimizer, torch.optim.SGD):
        name = config.optimizer if isinstance(config.optimizer, str) else type(optimizer).__name__
        raise ValueError(
            "config.optimizer must be SGD (momentum, weight decay and Nesterov are supported) "
            f"for the exact derivative of the training run, got {name!r}: forward-mode "
            "differentiation through other optimizers' updates is not implemented"
        )
    by_id = {id(p): name for name, p in model.named_parameters()}
    settings = {}
    for group in optimizer.param_groups:
        if group.get("maximize", False):
            raise ValueError("config.optimizer must minimise (SGD with maximize=True is refused)")
        hyper = {
            "lr": float(group["lr"]),
            "momentum": float(group["momentum"]),
            "dampening": float(group["dampening"]),
            "weight_decay": float(group["weight_decay"]),
            "nesterov": bool(group["nesterov"]),
        }
        for p in group["params"]:
            if id(p) not in by_id:
                raise ValueError(
                    "config.optimizer optimizes a tensor that is not a parameter of the model "
                    "of model_factory"
                )
            if p.requires_grad:
                settings[by_id[id(p)]] = hyper
    return settings


def _sgd_update(p, d, buf, hyper, first: bool):
    """One SGD step on one tensor (``d`` the gradient plus weight decay): new (p, buf).

    The same operations as torch.optim.SGD's single-tensor update, so the primal values match
    the trainer's bit for bit when the gradient does; linear in (p, d, buf), so the same call
    updates the tangents.
    """
    mu = hyper["momentum"]
    step = d
    if mu != 0.0:
        buf = d.clone() if first else buf.mul(mu).add(d, alpha=1.0 - hyper["dampening"])
        step = d.add(buf, alpha=mu) if hyper["nesterov"] else buf
    return p.add(step, alpha=-hyper["lr"]), buf


# ------------------------------------------------------------------------------ batch norm


class _BatchNormState:
    """Functional batch normalisation: running statistics as explicit state (see the module)."""

    def __init__(self, model):
        torch = require_torch()
        batchnorm = torch.nn.modules.batchnorm._BatchNorm
        instancenorm = torch.nn.modules.instancenorm._InstanceNorm
        self.modules = {}
        for name, module in model.named_modules():
            if isinstance(module, instancenorm) and module.track_running_stats:
                raise ValueError(
                    f"model_factory's model has the instance-norm layer {name!r} "
                    f"({type(module).__name__}) with running statistics: the exact derivative "
                    "does not carry them (use track_running_stats=False)"
                )
            if isinstance(module, batchnorm):
                self.modules[name] = module
        self.counts = {
            name: int(m.num_batches_tracked)
            for name, m in self.modules.items()
            if m.track_running_stats and m.num_batches_tracked is not None
        }
        self.record: dict | None = None

    @staticmethod
    def _key(name: str, attr: str) -> str:
        return f"{name}.{attr}" if name else attr

    def stat_names(self) -> list[str]:
        """Names (state-dict keys) of the float running statistics carried as state."""
        return [
            self._key(name, attr)
            for name, m in self.modules.items()
            if m.track_running_stats
            for attr in ("running_mean", "running_var")
        ]

    def count_names(self) -> dict[str, str]:
        """State-dict key of each layer's ``num_batches_tracked``."""
        return {name: self._key(name, "num_batches_tracked") for name in self.counts}

    def start_step(self) -> None:
        """Count a forward pass in train mode (PyTorch increments before averaging)."""
        for name in self.counts:
            self.counts[name] += 1

    @contextlib.contextmanager
    def patched(self):
        """Replace the layers' forward by the functional one for the duration."""
        try:
            for name, module in self.modules.items():
                module.forward = types.MethodType(self._forward_of(name), module)
            yield self
        finally:
            for module in self.modules.values():
                module.__dict__.pop("forward", None)

    def _forward_of(self, name: str):
        torch = require_torch()
        F = torch.nn.functional
        state = self

        def forward(module, x):
            module._check_input_dim(x)
            if module.training:
                if module.track_running_stats and state.record is not None:
                    if module.momentum is None:  # cumulative moving average
                        factor = 1.0 / float(state.counts[name])
                    else:
                        factor = module.momentum
                    dims = [0, *range(2, x.ndim)]
                    mean = x.mean(dims)
                    var = x.var(dims, correction=1)
                    rm, rv = module.running_mean, module.running_var
                    state.record[state._key(name, "running_mean")] = (
                        rm * (1 - factor) + mean * factor
                    )
                    state.record[state._key(name, "running_var")] = rv * (1 - factor) + var * factor
                return F.batch_norm(
                    x, None, None, module.weight, module.bias, True, 0.0, module.eps
                )
            if module.running_mean is None:  # no running statistics: batch statistics in eval too
                return F.batch_norm(
                    x, None, None, module.weight, module.bias, True, 0.0, module.eps
                )
            shape = (1, -1) + (1,) * (x.ndim - 2)
            out = (x - module.running_mean.view(shape)) * torch.rsqrt(
                module.running_var.view(shape) + module.eps
            )
            if module.weight is not None:
                out = out * module.weight.view(shape)
            if module.bias is not None:
                out = out + module.bias.view(shape)
            return out

        return forward


# ------------------------------------------------------------------------------ the run


def _unused_parameters(model, names, X, y, w, rows, n_classes) -> set[str]:
    """Parameters that receive no gradient on the first batch (torch.optim.SGD skips them)."""
    torch = require_torch()
    named = dict(model.named_parameters())
    tensors = [named[n] for n in names]
    with torch.random.fork_rng(devices=_rng_devices(torch)), torch.enable_grad():
        index = torch.from_numpy(rows)
        logits = model(X[index])
        _check_logits(logits, len(rows), n_classes, "model_factory's model")
        loss = weighted_loss(logits, y[index], w[index])
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
    return {n for n, g in zip(names, grads, strict=True) if g is None}


def _functional_run(
    model_factory: Callable[[], Any],
    data: ImageBackdoorData,
    beta: float,
    config: TrainConfig,
    *,
    tangent: bool,
    progress: bool = False,
    directions=None,
) -> _Run:
    """Train as :func:`train` does, functionally, at any real ``beta``; with tangents if asked.

    Runs inside the caller's :func:`deterministic` block. ``beta`` is not restricted to [0, 1]
    (central differences need beta = -h). With ``tangent=True`` each step's gradient is a
    ``torch.func.jvp`` of ``torch.func.grad`` along (theta_dot, 1); with ``tangent=False`` it is
    ``torch.func.grad`` alone (the primal run only, cheaper).

    ``directions`` (with ``tangent=True``) replaces the tangent of the sample weights, whose
    default is the poisoned mask (d w_i / d beta): a tensor of shape (n_train,) gives one
    tangent, of shape (m, n_train) m tangents at once (``torch.func.vmap`` over the jvp; the
    primal is computed once per step), and the run's tangents get a leading axis of length m.
    """
    torch = require_torch()
    func = torch.func
    model = init_model(model_factory, config.seed).to(resolve_device(config.device))
    optimizer = make_optimizer(model, config)
    hyper = _sgd_hyperparameters(optimizer, model, config)
    bn = _BatchNormState(model)

    named = dict(model.named_parameters())
    if not hyper:
        raise ValueError(
            "model_factory's model has no parameter that config.optimizer updates (with "
            "requires_grad=True): the training run does not depend on beta"
        )
    dtype = named[next(iter(hyper))].dtype
    device = named[next(iter(hyper))].device
    X = torch.from_numpy(ImageBackdoorData.to_nchw(data.X_train)).to(device, dtype)
    y = torch.from_numpy(data.y_train).to(device)
    poisoned = torch.from_numpy(data.poisoned).to(device)
    w_probe = torch.where(poisoned, torch.tensor(beta, dtype=dtype, device=device), 1.0)
    batched = directions is not None and directions.ndim == 2
    if tangent:
        w_dot = poisoned.to(dtype) if directions is None else directions.to(device, dtype)
    order = batch_order(data.n_train, config.batch_size, config.epochs, config.seed)
    k = data.n_classes

    model.train()
    state_dict = {key: v.detach().clone() for key, v in model.state_dict(keep_vars=True).items()}
    unused = _unused_parameters(model, list(hyper), X, y, w_probe, order[0][0], k)
    trained = [name for name in hyper if name not in unused]
    params = {name: state_dict[name] for name in trained}
    stat_names = bn.stat_names()
    stats = {name: state_dict[name] for name in stat_names}
    count_names = bn.count_names()
    constants = {
        key: v
        for key, v in state_dict.items()
        if key not in params and key not in stats and key not in count_names.values()
    }
    # buffers that are not tensors of state_dict (non-persistent ones) are left on the module
    bufs = {
        key: v.detach()
        for key, v in model.named_buffers()
        if key not in stats and key not in count_names.values()
    }
    constants.update(bufs)

    def batch_gradient(params, stats, weights, xb, yb):
        def loss_fn(params):
            bn.record = {}
            logits = func.functional_call(model, {**constants, **stats, **params}, (xb,))
            _check_logits(logits, len(yb), k, "model_factory's model")
            per_sample = torch.nn.functional.cross_entropy(logits, yb, reduction="none")
            record, bn.record = bn.record, None
            return (per_sample * weights).sum() / len(yb), record

        grads, record = func.grad(loss_fn, has_aux=True)(params)
        return grads, {**stats, **record}

    def step_jvp(primals, tangents, xb, yb):
        return func.jvp(lambda p, s, w: batch_gradient(p, s, w, xb, yb), primals, tangents)

    if batched:
        # one primal, m tangents: vmap over the tangents only (dropout masks shared)
        step_jvp = func.vmap(
            step_jvp, in_dims=(None, 0, None, None), out_dims=((None, None), 0),
            randomness="same",
        )  # fmt: skip
    lead = (directions.shape[0],) if batched else ()

    def zeros(tensors):
        return {n: torch.zeros(lead + v.shape, dtype=v.dtype, device=v.device)
                for n, v in tensors.items()}  # fmt: skip

    dparams = zeros(params) if tangent else None
    dstats = zeros(stats) if tangent else None
    bufs_m: dict = {}
    dbufs_m: dict = {}
    n_steps = 0
    seed = training_seed(config.seed)
    total = sum(len(batches) for batches in order)
    with (
        torch.random.fork_rng(devices=_rng_devices(torch)),
        bn.patched(),
        tqdm(total=total, desc="d/dbeta", disable=not progress, leave=False) as bar,
        warnings.catch_warnings(),
    ):
        # torch's forward-mode decompositions call the deprecated torch.jit.script internally;
        # the warning is torch's own, not the user's to act on
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATION, category=FutureWarning)
        torch.manual_seed(seed)  # the trainer's dropout stream
        for epoch in order:
            for rows in epoch:
                index = torch.from_numpy(rows).to(device)
                xb, yb, wb = X[index], y[index], w_probe[index]
                bn.start_step()
                if tangent:
                    dwb = w_dot[..., index]
                    (grads, new_stats), (dgrads, dnew_stats) = step_jvp(
                        (params, stats, wb), (dparams, dstats, dwb), xb, yb
                    )
                else:
                    grads, new_stats = batch_gradient(params, stats, wb, xb, yb)
                first_step = n_steps == 0
                new_params, new_dparams = {}, {}
                for name, p in params.items():
                    h = hyper[name]
                    d = grads[name]
                    if h["weight_decay"] != 0.0:
                        d = d.add(p, alpha=h["weight_decay"])
                    new_params[name], bufs_m[name] = _sgd_update(
                        p, d, bufs_m.get(name), h, first_step
                    )
                    if tangent:
                        dd = dgrads[name]
                        if h["weight_decay"] != 0.0:
                            dd = dd.add(dparams[name], alpha=h["weight_decay"])
                        new_dparams[name], dbufs_m[name] = _sgd_update(
                            dparams[name], dd, dbufs_m.get(name), h, first_step
                        )
                params, stats = new_params, {n: new_stats[n] for n in stat_names}
                if tangent:
                    dparams = new_dparams
                    dstats = {n: dnew_stats[n] for n in stat_names}
                n_steps += 1
                bar.update()

    with torch.no_grad():
        for name, value in {**params, **stats}.items():
            state_dict[name] = value
        for layer, key in count_names.items():
            state_dict[key] = torch.tensor(bn.counts[layer], dtype=torch.long, device=device)
        model.load_state_dict({key: v.detach() for key, v in state_dict.items()}, strict=False)
    model.eval()
    return _Run(model, params, stats, dparams, dstats, n_steps, lead[0] if batched else None)


def _scores(run: _Run, data: ImageBackdoorData) -> dict[str, float]:
    """The four curve quantities of the run's model and the derivative of the backdoor loss.

    The same definitions as :func:`~backdoor_curves.nn.train.evaluate` (eval mode, per-sample
    cross-entropy summed in float64, arg-max predictions), in the dtype of the model's
    parameters; on V_t each batch is a ``torch.func.jvp`` along the run's tangents, when it has
    them, so the derivative (key ``derivative``) comes with the loss.
    """
    torch = require_torch()
    func = torch.func
    F = torch.nn.functional
    model = run.model
    bn = _BatchNormState(model)
    params, stats = run.params, run.stats
    held = {
        key: v.detach()
        for key, v in model.state_dict(keep_vars=True).items()
        if key not in params and key not in stats
    }
    for key, v in model.named_buffers():
        if key not in stats and key not in held:
            held[key] = v.detach()
    first = next(iter(params.values()))
    device, dtype = first.device, first.dtype

    def per_sample(params, stats, xb, yb):
        logits = func.functional_call(model, {**held, **stats, **params}, (xb,))
        _check_logits(logits, len(yb), data.n_classes, "model_factory's model")
        return F.cross_entropy(logits, yb, reduction="none").double().sum(), logits

    out = {}
    model.eval()
    with bn.patched():
        for name, X_set, y_set in (
            ("backdoor", data.X_test_bd, data.y_test_bd),
            ("clean", data.X_test, data.y_test),
        ):
            X = torch.from_numpy(ImageBackdoorData.to_nchw(X_set)).to(device, dtype)
            y = torch.from_numpy(y_set).to(device)
            loss = torch.zeros((), dtype=torch.float64, device=device)
            dloss = torch.zeros(
                () if run.n_directions is None else (run.n_directions,),
                dtype=torch.float64,
                device=device,
            )
            correct = 0
            for start in range(0, len(y), _EVAL_BATCH):
                xb, yb = X[start : start + _EVAL_BATCH], y[start : start + _EVAL_BATCH]
                if name == "backdoor" and run.dparams is not None:

                    def test_jvp(dp, ds, xb=xb, yb=yb):
                        return func.jvp(
                            lambda p, s: per_sample(p, s, xb, yb), (params, stats), (dp, ds)
                        )

                    if run.n_directions is not None:
                        test_jvp = func.vmap(test_jvp, out_dims=((None, None), 0))
                    (value, logits), (tangent, _) = test_jvp(run.dparams, run.dstats)
                    dloss += tangent
                else:
                    with torch.no_grad():
                        value, logits = per_sample(params, stats, xb, yb)
                loss += value
                correct += int((logits.argmax(dim=1) == yb).sum())
            out[f"{name}_loss"] = float(loss) / len(y)
            out[f"{name}_accuracy"] = correct / len(y)
            if name == "backdoor" and run.dparams is not None:
                dloss = dloss / len(y)
                out["derivative"] = (
                    float(dloss) if run.n_directions is None else dloss.cpu().numpy()
                )
    return out


# ------------------------------------------------------------------------------ public


def training_derivative(
    model_factory: Callable[[], Any],
    data: ImageBackdoorData,
    config: TrainConfig | None = None,
    *,
    direction=None,
    progress: bool = False,
) -> TrainingDerivative:
    """The exact derivative dL(V_t)/dbeta at beta = 0 of the training run of :func:`train`.

    Replays the run of ``train(model_factory, data, 0.0, config)`` functionally (the same
    initial weights from ``init_model(model_factory, config.seed)``, the same batches from
    ``batch_order``, the same weighted batch loss (1/B) sum_i w_i l_i with w_i = beta on the
    poisoned rows, the same SGD update, the same dropout stream) and carries the derivatives of
    the parameters, of SGD's momentum buffers and of batch-norm running statistics along beta
    through every step: per step one ``torch.func.jvp`` of ``torch.func.grad`` of the batch loss
    in (theta, beta) along (d theta / d beta, 1). At the end

        dL/dbeta = < grad_theta L(V_t, theta_T), d theta_T / d beta >,

    L(V_t) the mean cross-entropy (natural log) on the backdoor test set, the model in eval
    mode. The cost is about two to three training runs (one forward-over-reverse pass per step).
    See the module's docstring for the recursion and the treatment of batch normalisation.

    Parameters
    ----------
    model_factory : callable
        Returns a fresh ``torch.nn.Module`` mapping images (n, C, H, W) in [0, 1] to logits
        (n, data.n_classes); the images are cast to the dtype of its parameters (a float64
        model runs in float64). Layers: anything ``torch.func`` differentiates twice; BatchNorm
        layers in train mode are supported (running statistics carried with their tangents),
        instance norm with running statistics is refused. Every parameter that the optimizer
        updates should take part in every batch's loss: parameters without a gradient on the
        first batch are held fixed (torch.optim.SGD skips them), the others are updated with
        weight decay on every step.
    data : ImageBackdoorData
        The poisoned data: the training set and its poisoned mask, and the backdoor test set
        V_t (``X_test_bd``, ``y_test_bd``) of the loss; the clean test set for the accuracy.
    config : TrainConfig, optional
        The training configuration, as given to :func:`train`; ``TrainConfig()`` when omitted.
        The optimizer must be SGD: ``"sgd"`` or a callable returning ``torch.optim.SGD``
        (momentum, dampening, weight decay and Nesterov, per parameter group).
    direction : array-like of shape (n_train,), optional
        The tangent of the per-sample weights w_i (rows of ``data.X_train``), instead of the
        poisoned mask d w_i / d beta: the derivative becomes sum_i direction_i dL/dw_i at the
        weights of beta = 0 (1 on clean rows, 0 on poisoned rows), e.g. a one-hot vector for
        one row's derivative (see :func:`point_derivatives` for many rows at once). None
        (default): the poisoned mask, dL/dbeta.
    progress : bool, default=False
        Show a tqdm progress bar over the optimizer steps.

    Returns
    -------
    TrainingDerivative
        ``derivative`` = dL(V_t)/dbeta at beta = 0 in nats per unit of beta (negative: the
        backdoor is being learned; with ``direction``, sum_i direction_i dL/dw_i instead),
        ``score`` = -(2/pi) arctan(derivative), the loss L(0) and the clean and backdoor
        accuracy of the network trained at beta = 0, the wall time and the number of steps.

    Raises
    ------
    TypeError
        Naming ``model_factory`` if it is not a factory of ``torch.nn.Module``, ``data`` if it is
        not an ImageBackdoorData, ``config`` if it is not a TrainConfig, ``progress`` if it is not
        a bool, ``direction`` if it is not an array of real numbers.
    ValueError
        Naming ``direction`` when it is not of shape (n_train,) or not finite; naming
        ``config.optimizer`` when it is not SGD (Adam, AdamW, another optimizer, or SGD
        with ``maximize=True``); naming ``model_factory`` when its model outputs no (n,
        data.n_classes) logits, has an instance-norm layer with running statistics (the message
        names the layer), or no parameter the optimizer updates; naming ``device`` when CUDA is
        asked for but not available.

    See Also
    --------
    backdoor_curves.nn.curves.nn_backdoor_slope : The finite differences (L(h) - L(0)) / h.

    Notes
    -----
    The result is deterministic: the same seed gives the same derivative bit for bit on the CPU
    (the computation runs under :func:`~backdoor_curves.nn.train.deterministic`). The primal of
    the differentiated run reproduces the trainer's parameters up to float rounding (a few ulps
    per step in float32: the same operations, the gradient computed through ``torch.func``).
    """
    config = _check_config(config)
    data = _check_data(data)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")
    torch = require_torch()
    if direction is not None:
        direction = torch.from_numpy(_check_direction(direction, data.n_train))
    start = time.perf_counter()
    with deterministic(config):
        run = _functional_run(
            model_factory, data, 0.0, config, tangent=True, progress=progress, directions=direction
        )
        scores = _scores(run, data)
    derivative = scores["derivative"]
    return TrainingDerivative(
        derivative=derivative,
        score=float(slope_score(derivative)),
        backdoor_loss=scores["backdoor_loss"],
        clean_loss=scores["clean_loss"],
        clean_accuracy=scores["clean_accuracy"],
        backdoor_accuracy=scores["backdoor_accuracy"],
        seconds=time.perf_counter() - start,
        n_steps=run.n_steps,
        model=run.model,
        config=config,
    )


def _check_direction(direction, n_train: int) -> np.ndarray:
    """``direction`` as a finite float64 vector of length n_train."""
    try:
        values = np.asarray(direction)
    except Exception as exc:  # ragged input and the like
        raise TypeError(f"direction must be an array of real numbers, got {direction!r}") from exc
    if (
        values.dtype == bool
        or not np.issubdtype(values.dtype, np.number)
        or np.iscomplexobj(values)
    ):
        raise TypeError(f"direction must hold real numbers, got dtype {values.dtype}")
    if values.shape != (n_train,):
        raise ValueError(
            f"direction must have shape (n_train,) = ({n_train},), one value per training row, "
            f"got {values.shape}"
        )
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("direction must be finite (no NaN or inf)")
    return values


def _check_rows(rows, data: ImageBackdoorData) -> np.ndarray:
    """Training-row indices: distinct ints in [0, n_train); default the poisoned rows."""
    if rows is None:
        return np.flatnonzero(data.poisoned)
    values = np.asarray(rows)
    if values.ndim == 0:
        values = values[None]
    if values.size == 0:
        raise ValueError("rows must hold at least one training row")
    if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(
            f"rows must be integer indices of training rows, got dtype {values.dtype} (pass "
            "np.flatnonzero(mask) for a boolean mask)"
        )
    if values.ndim != 1:
        raise ValueError(f"rows must be a 1-d sequence of indices, got shape "
                         f"{values.shape}")  # fmt: skip
    if values.min() < 0 or values.max() >= data.n_train:
        raise ValueError(f"rows must lie in [0, n_train) = [0, {data.n_train})")
    if np.unique(values).size != values.size:
        raise ValueError("rows must not repeat a row")
    return values.astype(np.int64)


@dataclass(frozen=True)
class PointDerivatives:
    """Per-row exact derivatives dL(V_t)/dw_j of a training run at beta = 0.

    Attributes
    ----------
    rows : ndarray of int, shape (m,)
        The training rows j (indices into ``data.X_train``), in the order asked.
    derivatives : ndarray of float, shape (m,)
        dL(V_t)/dw_j: the derivative of the mean backdoor test loss (nats) of the trained
        network with respect to the weight w_j of row j in the batch loss (1/|B|) sum_i w_i l_i,
        at the weights of beta = 0 (1 on clean rows, 0 on poisoned rows). Negative: upweighting
        the row lowers the backdoor loss. The derivatives are linear in the weights' tangent, so
        over the poisoned rows they sum to :attr:`TrainingDerivative.derivative`.
    poisoned : ndarray of bool, shape (m,)
        Whether each row is poisoned.
    backdoor_loss : float
        L(0), mean cross-entropy in nats on V_t of the network trained at beta = 0.
    seconds : float
        Wall time of the whole computation, in seconds.
    n_steps : int
        Optimizer steps of one training run.
    chunk_size : int
        Rows whose tangents were carried together (one replay of the run per chunk).
    """

    rows: np.ndarray
    derivatives: np.ndarray
    poisoned: np.ndarray
    backdoor_loss: float
    seconds: float
    n_steps: int
    chunk_size: int


def point_derivatives(
    model_factory: Callable[[], Any],
    data: ImageBackdoorData,
    config: TrainConfig | None = None,
    rows=None,
    *,
    chunk_size: int = 32,
    progress: bool = False,
) -> PointDerivatives:
    """Exact derivatives dL(V_t)/dw_j at beta = 0 for chosen training rows j, in one batch.

    The derivative of :func:`training_derivative` along the one-hot direction e_j of the
    per-sample weights, for every row j of ``rows`` (default: the poisoned rows). Row j enters
    the run only on the steps whose batch holds it, through the term (1/|B_t|) grad l_j of the
    batch gradient's tangent; from there the tangent of the parameters is carried through every
    later step like that of beta. The tangents of ``chunk_size`` rows are carried together:
    ``torch.func.vmap`` over the per-step ``torch.func.jvp`` (one primal pass per step, the
    Hessian-vector products batched), so memory grows with ``chunk_size`` times the
    parameters and activations of one batch, and time with the number of chunks (each chunk
    replays the run once) times the cost of its batched jvps.

    Parameters
    ----------
    model_factory : callable
        As for :func:`training_derivative`.
    data : ImageBackdoorData
        The poisoned data.
    config : TrainConfig, optional
        The training configuration (SGD); ``TrainConfig()`` when omitted.
    rows : array-like of int, optional
        Distinct training-row indices in [0, n_train); clean rows are allowed (their weight is
        1 at beta = 0). Default: every poisoned row, ``np.flatnonzero(data.poisoned)``.
    chunk_size : int, default=32
        Rows per batched replay (at least 1).
    progress : bool, default=False
        Show a progress bar over the optimizer steps of each replay.

    Returns
    -------
    PointDerivatives
        ``derivatives[k]`` = dL(V_t)/dw_{rows[k]} in nats per unit of weight; over all poisoned
        rows they sum to ``training_derivative(...).derivative`` up to float rounding.

    Raises
    ------
    TypeError
        As :func:`training_derivative`; naming ``rows`` if they are not integers, ``chunk_size``
        if it is not an int.
    ValueError
        As :func:`training_derivative`; naming ``rows`` when empty, out of range or repeated,
        ``chunk_size`` when below 1.
    """
    config = _check_config(config)
    data = _check_data(data)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"chunk_size must be an int, got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    rows = _check_rows(rows, data)
    torch = require_torch()
    start = time.perf_counter()
    parts = []
    loss = math.nan
    n_steps = 0
    with deterministic(config):
        for first in range(0, rows.size, chunk_size):
            chunk = rows[first : first + chunk_size]
            directions = torch.zeros((chunk.size, data.n_train), dtype=torch.float64)
            directions[torch.arange(chunk.size), torch.from_numpy(chunk)] = 1.0
            run = _functional_run(
                model_factory, data, 0.0, config, tangent=True, progress=progress,
                directions=directions,
            )  # fmt: skip
            scores = _scores(run, data)
            parts.append(np.asarray(scores["derivative"], dtype=np.float64))
            loss, n_steps = scores["backdoor_loss"], run.n_steps
    return PointDerivatives(
        rows=rows,
        derivatives=np.concatenate(parts),
        poisoned=data.poisoned[rows].copy(),
        backdoor_loss=loss,
        seconds=time.perf_counter() - start,
        n_steps=n_steps,
        chunk_size=chunk_size,
    )
