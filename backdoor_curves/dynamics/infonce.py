"""InfoNCE estimate of the mutual information I(A; B) between two sets of paired vectors.

A critic T(a, b) = MLP(cat(a, b)) (``Linear(d_a + d_b, h) - ReLU - Linear(h, h) - ReLU -
Linear(h, 1)``, paper 000's ``TNet``) is trained to tell each sample's partner b_i from K
negatives b_{j_1}, ..., b_{j_K} drawn *with replacement from the same mini-batch* (the index i
itself may be drawn, as in the reference code). On a batch of B pairs the estimate is

    I_hat = (1/B) sum_i [ T(a_i, b_i) - log( e^{T(a_i, b_i)} + sum_{k=1..K} e^{T(a_i, b_{j_k})} ) ]
            + log(K + 1)                                                               (nats)

and the critic minimizes -I_hat. Each bracket is <= 0 (the positive is one of the K + 1 terms of
the log-sum-exp), so I_hat <= log(K + 1) exactly, in floating point too: the estimator cannot
report more than log(K + 1) nats, whatever the true MI. The reference code subtracts the *mean*
over i of the log-sum-exp from each T(a_i, b_i) before averaging; the average (the reported
value and the loss) is the same number, mean_i T_i - mean_i lse_i, so this module implements the
per-sample form above, whose terms are each bounded by 0.

Two effects keep I_hat below the true MI even with the best critic (the log density ratio):
the log(K + 1) cap, and the negatives' coming from a batch of B samples that includes the
positive (with K >> B the estimate tends to the classic in-batch InfoNCE bound, <= log B). Take
B and K well above exp(I). On paper 000's Gaussian case (I = 1.5 ln 7 = 2.92 nats) the best
critic scores 2.66 at B = 128, K = 256, 2.79 at B = 256, K = 1024 and 2.85 at B = 512, K = 2048
(Monte Carlo). The other way, the critic is scored on the pairs it trains on, so it overfits a
little: independent variables give about +0.04 nats at n = 1024 (more for smaller samples).

Training: AdamW (weight decay ``weight_decay``), the gradient norm clipped at ``clip``, ``epochs``
passes over a seeded permutation of the samples in batches of ``batch_size`` (the last, partial
batch of a pass is dropped, so every batch has K negatives from B = ``batch_size`` samples; it
changes with the permutation). The estimate of an epoch is the mean of the bracket over its
batches, computed while the critic trains (as the reference code does); the reported value is
the mean over the last ``average_last`` epochs. No learning-rate schedule, AMP or half-epoch
subsampling (the reference has them; they change speed, not what is estimated).

Cost: the first layer is applied to a and b separately (W [a; b] = W_a a + W_b b, the same
function), and when K >= B the critic is evaluated once on all B x B pairs of the batch and the
log-sum-exp over the K drawn negatives is taken as log-sum-exp_j (T_ij + log c_ij), c_ij the
number of times j was drawn for row i (the same number as evaluating the K draws one by one).
So a batch costs about min(K, B) * B * h^2 multiply-adds.

Determinism: the critic's initial weights are drawn under ``torch.manual_seed(seed)`` inside
``torch.random.fork_rng`` (the global random state is left as found); the permutations and the
negatives come from a ``torch.Generator`` seeded likewise. The estimate runs on one CPU thread
by default (``threads``; restored afterwards), so the same seed gives the same value bit for bit
on the same machine. Inputs are standardized column by column (an invertible affine map, which
leaves the MI unchanged) unless ``standardize=False``; ``pca_a`` / ``pca_b``
first project a or b on at most that many principal components (:func:`pca_reduce`; a lossy
map, so I(A'; B) <= I(A; B)).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from .._validation import check_int, check_matrix, check_positive, check_seed
from ..utils import require_torch, resolve_device

__all__ = ["MIEstimate", "estimate_mi", "pca_reduce", "standardize_columns"]


@dataclass(frozen=True)
class MIEstimate:
    """An InfoNCE estimate of I(A; B) and how it was obtained.

    Attributes
    ----------
    value : float
        The estimate in nats: the mean of the last ``average_last`` entries of ``trace``.
    trace : ndarray of float64, shape (epochs,)
        The estimate of every critic epoch (nats), each <= ``bound``.
    bound : float
        log(K + 1), the largest value the estimator can report (nats).
    seconds : float
        Wall time of the estimate (preprocessing and critic training).
    n_samples : int
        Number of pairs (a_i, b_i).
    n_negatives : int
        K.
    batch_size : int
        B, the samples per batch the negatives are drawn from.
    """

    value: float
    trace: np.ndarray
    bound: float
    seconds: float
    n_samples: int
    n_negatives: int
    batch_size: int


def standardize_columns(x: np.ndarray) -> np.ndarray:
    """Center every column and divide it by its standard deviation (constant columns: zeros).

    Parameters
    ----------
    x : ndarray of shape (n, d)
        Samples in rows.

    Returns
    -------
    ndarray of float64, shape (n, d)
        (x - mean) / std per column, with std the population standard deviation; a column whose
        std is 0 becomes 0. An invertible map of each non-constant column, so mutual
        information is unchanged.

    Raises
    ------
    TypeError, ValueError
        Naming ``x`` when it is not a finite 2-D array of real numbers with a row.
    """
    x = check_matrix(x, "x")
    centered = x - x.mean(axis=0)
    std = centered.std(axis=0)
    return np.divide(centered, std, out=np.zeros_like(centered), where=std > 0)


def pca_reduce(x, n_components: int, random_state: int = 0) -> np.ndarray:
    """Project samples on at most ``n_components`` principal components (scikit-learn's PCA).

    Parameters
    ----------
    x : array-like of shape (n, d)
        Samples in rows (e.g. flattened images).
    n_components : int
        The largest number of components kept, >= 1. When it is >= min(n, d) the data are
        returned unprojected (as float64): a rotation would not change any mutual information.
    random_state : int, default=0
        Seed of PCA's randomized solver (used by scikit-learn for large inputs).

    Returns
    -------
    ndarray of float64, shape (n, min(n_components, d, n))
        The principal-component scores (centered, not whitened).

    Raises
    ------
    TypeError, ValueError
        Naming ``x`` when it is not a finite 2-D array, ``n_components`` when it is not an int
        >= 1, ``random_state`` when it is not a seed.
    """
    x = check_matrix(x, "x")
    k = check_int(n_components, "n_components", 1)
    seed = check_seed(random_state)
    if k >= min(x.shape):
        return x
    return PCA(n_components=k, random_state=seed).fit_transform(x)


def _critic(torch, in_dim: int, hidden: int, seed: int, device):
    """The MLP critic, with initial weights drawn under ``manual_seed(seed)`` (state restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(in_dim, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 1),
        )
    return net.to(device)


def _batch_terms(torch, critic, a, b, negatives, d_a: int):
    """T(a_i, b_i) - logsumexp over the positive and the drawn negatives, per row of the batch."""
    first, rest = critic[0], critic[1:]
    u = a @ first.weight[:, :d_a].T + first.bias  # (B, h)
    v = b @ first.weight[:, d_a:].T  # (B, h)
    batch, k = negatives.shape
    positive = rest(u + v).squeeze(-1)  # rest starts with the first ReLU
    if k < batch:
        negative = rest(u[:, None, :] + v[negatives]).squeeze(-1)  # (B, K)
    else:  # all B x B pairs once, each weighted by how often it was drawn
        scores = rest(u[:, None, :] + v[None, :, :]).squeeze(-1)  # (B, B)
        rows = torch.arange(batch, device=a.device)[:, None] * batch
        counts = torch.bincount((negatives + rows).reshape(-1), minlength=batch * batch)
        negative = scores + torch.log(counts.reshape(batch, batch).to(scores.dtype))
    logits = torch.cat([positive[:, None], negative], dim=1)
    return positive - torch.logsumexp(logits, dim=1)


def estimate_mi(
    a,
    b,
    *,
    n_negatives: int,
    epochs: int,
    batch_size: int = 128,
    hidden: int = 128,
    lr: float = 5e-4,
    weight_decay: float = 1e-4,
    clip: float = 5.0,
    average_last: int = 5,
    pca_a: int | None = None,
    pca_b: int | None = None,
    standardize: bool = True,
    random_state: int = 0,
    device: Any = "cpu",
    threads: int | None = 1,
) -> MIEstimate:
    """InfoNCE estimate of I(A; B) in nats from paired samples (see the module docstring).

    Parameters
    ----------
    a : array-like of shape (n, d_a)
        Samples of A (a 1-D array is one feature). The critic's first argument.
    b : array-like of shape (n, d_b)
        Samples of B, row i paired with ``a[i]``; the negatives are rows of ``b``.
    n_negatives : int
        K >= 1, negatives per sample, drawn with replacement from the batch. The estimate is
        at most log(K + 1).
    epochs : int
        Critic training passes over the samples, >= ``average_last``.
    batch_size : int, default=128
        B, >= 2; ``min(batch_size, n)`` is used.
    hidden : int, default=128
        Width h of the critic's hidden layers, >= 1.
    lr : float, default=5e-4
        AdamW's learning rate, > 0.
    weight_decay : float, default=1e-4
        AdamW's decoupled weight decay, >= 0.
    clip : float, default=5.0
        The critic's gradient norm is clipped to this value (> 0) before each step.
    average_last : int, default=5
        The reported value is the mean of the last ``average_last`` epoch estimates, >= 1.
    pca_a, pca_b : int, optional
        Reduce ``a`` (``b``) to at most this many principal components first
        (:func:`pca_reduce`, seeded by ``random_state``).
    standardize : bool, default=True
        Standardize every column of a and b (after the PCA) to mean 0 and variance 1.
    random_state : int, default=0
        Seed of the critic's weights, the batch permutations and the negatives.
    device : str or torch.device, default="cpu"
        Where the critic trains.
    threads : int or None, default=1
        torch's CPU threads during the estimate (restored afterwards); None leaves them as they
        are. One thread makes the value reproducible bit for bit (parallel CPU kernels may sum
        in another order) and is the fastest on a shared machine for these small batches.

    Returns
    -------
    MIEstimate
        The value, the per-epoch trace, the bound log(K + 1) and the wall time.

    Raises
    ------
    TypeError
        Naming the argument of the wrong kind.
    ValueError
        Naming ``a`` or ``b`` when not finite 2-D arrays of the same length n >= 2, an integer
        argument below its minimum, ``epochs`` < ``average_last``, or a real argument out of
        range.
    """
    torch = require_torch()
    start = time.perf_counter()
    a = check_matrix(np.asarray(a).reshape(len(a), -1) if np.ndim(a) == 1 else a, "a")
    b = check_matrix(np.asarray(b).reshape(len(b), -1) if np.ndim(b) == 1 else b, "b")
    if len(a) != len(b):
        raise ValueError(f"a and b have different lengths ({len(a)} != {len(b)})")
    if len(a) < 2:
        raise ValueError(f"a and b must hold at least 2 samples, got {len(a)}")
    k = check_int(n_negatives, "n_negatives", 1)
    average_last = check_int(average_last, "average_last", 1)
    epochs = check_int(epochs, "epochs", 1)
    if epochs < average_last:
        raise ValueError(f"epochs must be >= average_last = {average_last}, got {epochs}")
    batch = min(check_int(batch_size, "batch_size", 2), len(a))
    hidden = check_int(hidden, "hidden", 1)
    lr = check_positive(lr, "lr")
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    clip = check_positive(clip, "clip")
    seed = check_seed(random_state)
    if not isinstance(standardize, bool):
        raise TypeError(f"standardize must be a bool, got {type(standardize).__name__}")
    for name, value in (("pca_a", pca_a), ("pca_b", pca_b)):
        if value is not None:
            check_int(value, name, 1)
    if pca_a is not None:
        a = pca_reduce(a, pca_a, seed)
    if pca_b is not None:
        b = pca_reduce(b, pca_b, seed)
    if standardize:
        a, b = standardize_columns(a), standardize_columns(b)
    device = resolve_device(device)
    if threads is not None:
        threads = check_int(threads, "threads", 1)
    saved = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        trace = _train(torch, a, b, k, epochs, batch, hidden, lr, weight_decay, clip, seed, device)
    finally:
        torch.set_num_threads(saved)
    log_k1 = math.log(k + 1)
    return MIEstimate(
        value=float(trace[-average_last:].mean()),
        trace=trace,
        bound=log_k1,
        seconds=time.perf_counter() - start,
        n_samples=len(a),
        n_negatives=k,
        batch_size=batch,
    )


def _train(torch, a, b, k, epochs, batch, hidden, lr, weight_decay, clip, seed, device):
    """Train a fresh critic; the estimate of every epoch (nats)."""
    d_a = a.shape[1]
    critic = _critic(torch, d_a + b.shape[1], hidden, seed, device)
    optimizer = torch.optim.AdamW(critic.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    at = torch.as_tensor(a, dtype=torch.float32, device=device)
    bt = torch.as_tensor(b, dtype=torch.float32, device=device)
    n = len(at)
    n_batches = n // batch
    log_k1 = math.log(k + 1)
    trace = np.empty(epochs)
    params = list(critic.parameters())
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen, device=device)
        total = 0.0
        for index in perm[: n_batches * batch].reshape(n_batches, batch):
            negatives = torch.randint(0, batch, (batch, k), generator=gen, device=device)
            terms = _batch_terms(torch, critic, at[index], bt[index], negatives, d_a)
            loss = -terms.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            total += float(terms.detach().double().sum())
        trace[epoch] = total / (n_batches * batch) + log_k1
    return trace
