"""Training-dynamics metrics of a poisoned training set, as pure functions over numpy arrays.

The quantities of the notes' part B (DBA paper, CIKM 2023, and ABL's isolation step), for per-sample
losses, gradients and activations computed elsewhere (:mod:`backdoor_curves.nn.per_sample`,
:mod:`backdoor_curves.nn.tracking`). No torch here: every function takes array-likes (a CPU torch
tensor converts through ``numpy.asarray``) and returns floats or numpy arrays.

Notation: N samples, the poisoned set B (a boolean mask, ``poisoned``), the clean set C (its
complement), eta = |B| / N the poison rate, l_i the cross-entropy of sample i (nats).

- **Isolation precision** (ABL): IP = |lowest-loss floor(eta N) samples ∩ B| / floor(eta N);
  random ranking gives IP = |B| / N in expectation.
- **Loss as a poison detector**: the AUROC of -l (lower loss = more suspicious).
- **Early-fitting gap**: mean_C l - mean_B l (positive: the poison is fitted faster).
- **Loss-reduction decomposition** (DBA's Theorem 1): from the group-mean gradients g_b, g_c,
  r_bb = lr ||g_b||^2, r_cc = lr ||g_c||^2, r_bc = lr g_b . g_c and
  Delta = eta r_bb - (1 - eta) r_cc + (1 - 2 eta) r_bc, the first-order difference between the
  one-step loss reduction of the mean poisoned loss and that of the mean clean loss.
- **Synchronization**: the mean pairwise cosine of per-sample vectors (gradients, activations)
  within a group (distinct pairs) and across two groups (all pairs).
- **Self-influence** (TracIn-style): SI_i = sum_t lr_t ||grad l_i(theta_t)||^2 over checkpoints;
  poisoned samples are expected to have the *higher* self-influence.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import check_fraction, check_positive

__all__ = [
    "POISONED_CODE",
    "SelfInfluence",
    "early_fitting_gap",
    "isolation_precision",
    "loss_reduction_terms",
    "mean_cosine_from_sums",
    "mean_pairwise_cosine",
    "poison_auroc",
    "self_influence",
]

#: The group code of the poisoned samples in ``ImageBackdoorData.groups()`` (``GROUPS[0]``).
POISONED_CODE = 0


# -- input checks (errors start with the argument's name) ---------------------------------------


def _scores(values, name: str) -> np.ndarray:
    """A non-empty, finite, real 1-D float64 array, or raise naming ``name``."""
    if values is None:
        raise TypeError(f"{name} must be a 1-D array of real numbers, got None")
    arr = np.asarray(values)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def _mask(mask, name: str, n: int, n_name: str) -> np.ndarray:
    """A boolean 1-D mask of length ``n`` (bools, or integers 0/1), or raise naming ``name``."""
    if mask is None:
        raise TypeError(f"{name} must be a boolean mask, got None")
    arr = np.asarray(mask)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        if np.any((arr != 0) & (arr != 1)):
            raise ValueError(f"{name} must be a boolean mask (or 0/1 integers)")
        arr = arr.astype(bool)
    elif not np.issubdtype(arr.dtype, np.bool_):
        raise TypeError(f"{name} must be a boolean mask, got dtype {arr.dtype}")
    if len(arr) != n:
        raise ValueError(f"{n_name} and {name} have different lengths ({n} != {len(arr)})")
    return arr


def _group_codes(groups, n: int, n_name: str = "X") -> np.ndarray:
    """Group codes 0/1/2 from codes or a boolean poisoned mask (True -> 0, False -> 2)."""
    if groups is None:
        raise TypeError("groups must be integer group codes or a boolean mask, got None")
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise ValueError(f"groups must be 1-D, got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"{n_name} and groups have different lengths ({n} != {len(arr)})")
    if np.issubdtype(arr.dtype, np.bool_):
        return np.where(arr, 0, 2).astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"groups must be integer group codes or a boolean mask, got {arr.dtype}")
    if np.any((arr < 0) | (arr > 2)):
        raise ValueError("groups must hold the codes 0 (poisoned), 1 and 2 (clean)")
    return arr.astype(np.int64)


def _unit_interval(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {type(value).__name__}")
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return value


def _n_flagged(eta: float, n: int) -> int:
    """floor(eta n), guarded against round-off (0.29 * 100 = 28.999999999999996 counts as 29)."""
    return int(math.floor(eta * n + 1e-9))


# -- loss-based poison detection ----------------------------------------------------------------


def isolation_precision(losses, poisoned, eta, *, lower_is_poisoned=True) -> float:
    """Share of poisoned samples among the floor(eta N) lowest-loss samples (ABL's isolation).

    IP = |S ∩ B| / |S| where S holds the k = floor(eta N) samples with the lowest ``losses``
    (ABL's convention, ``int(N * eta)`` in its code, computed here with a 1e-9 guard against
    float round-off). Ties are broken by index: among equal scores the sample with the smaller
    index is taken first (a stable sort). A random ranking gives |B| / N in expectation, so with
    eta = |B| / N the chance level is eta and a perfect detector gives 1.

    Parameters
    ----------
    losses : array-like of shape (N,)
        Per-sample scores, usually the cross-entropy of each training sample (nats) at the end of
        an epoch, in eval mode.
    poisoned : array-like of bool, shape (N,)
        The poisoned mask B.
    eta : float
        The isolated fraction, in (0, 1); ABL uses the poison rate.
    lower_is_poisoned : bool, default=True
        Flag the lowest scores (a loss); False flags the highest (self-influence).

    Returns
    -------
    float
        IP in [0, 1].

    Raises
    ------
    TypeError
        If ``losses`` or ``poisoned`` do not hold real numbers / booleans, or ``eta`` is not a
        real number.
    ValueError
        If ``losses`` is empty, not 1-D or not finite, ``poisoned`` has another length, ``eta``
        is outside (0, 1), or floor(eta N) = 0 (no sample isolated).

    Examples
    --------
    >>> isolation_precision([0.1, 2.0, 0.2, 1.5], [True, False, False, False], 0.5)
    0.5
    """
    scores = _scores(losses, "losses")
    mask = _mask(poisoned, "poisoned", len(scores), "losses")
    eta = check_fraction(eta, "eta")
    k = _n_flagged(eta, len(scores))
    if k < 1:
        raise ValueError(
            f"eta: floor(eta * N) = floor({eta} * {len(scores)}) = 0 samples isolated; "
            "raise eta or pass more samples"
        )
    order = np.argsort(scores if lower_is_poisoned else -scores, kind="stable")
    return float(mask[order[:k]].sum() / k)


def poison_auroc(scores, poisoned, *, lower_is_poisoned=True) -> float:
    """Area under the ROC curve of a per-sample score used as a poison detector.

    With ``lower_is_poisoned`` (a loss: the poison is fitted early, so its loss is low) the
    detector's score is ``-scores``; otherwise ``scores`` (self-influence). Computed by
    :func:`sklearn.metrics.roc_auc_score` with the poisoned samples as positives: 1 means every
    poisoned sample ranks as more suspicious than every clean one, 0.5 is chance, 0 the reverse.
    Tied scores count one half.

    Parameters
    ----------
    scores : array-like of shape (N,)
        Per-sample scores (a loss in nats, or a self-influence).
    poisoned : array-like of bool, shape (N,)
        The poisoned mask B (the positive class).
    lower_is_poisoned : bool, default=True
        Whether a lower score is more suspicious.

    Returns
    -------
    float
        The AUROC, in [0, 1].

    Raises
    ------
    TypeError
        If ``scores`` or ``poisoned`` do not hold real numbers / booleans.
    ValueError
        If ``scores`` is empty, not 1-D or not finite, ``poisoned`` has another length, or
        ``poisoned`` does not hold both poisoned and clean samples.
    """
    from sklearn.metrics import roc_auc_score

    values = _scores(scores, "scores")
    mask = _mask(poisoned, "poisoned", len(values), "scores")
    if mask.all() or not mask.any():
        raise ValueError("poisoned must hold both poisoned and clean samples for an AUROC")
    return float(roc_auc_score(mask, -values if lower_is_poisoned else values))


def early_fitting_gap(losses, groups) -> float:
    """Mean loss of the clean samples minus mean loss of the poisoned samples.

    EF = mean_{i in C} l_i - mean_{i in B} l_i, in nats. Positive means the poisoned samples are
    fitted faster than the clean ones (early fitting); negative, slower.

    Parameters
    ----------
    losses : array-like of shape (N,)
        Per-sample losses (nats).
    groups : array-like of shape (N,)
        Either the integer group codes of ``ImageBackdoorData.groups()`` (0 = poisoned, 1 = clean
        of the target class, 2 = other clean; every nonzero code counts as clean) or a boolean
        poisoned mask.

    Returns
    -------
    float
        The gap, in nats.

    Raises
    ------
    TypeError
        If ``losses`` are not real numbers or ``groups`` is neither integer nor boolean.
    ValueError
        If the lengths differ, ``groups`` holds a code outside {0, 1, 2}, or the poisoned or the
        clean group is empty.
    """
    values = _scores(losses, "losses")
    poisoned = _group_codes(groups, len(values), "losses") == POISONED_CODE
    if poisoned.all() or not poisoned.any():
        raise ValueError("groups must hold both poisoned (code 0) and clean samples")
    return float(values[~poisoned].mean() - values[poisoned].mean())


# -- the loss-reduction decomposition -----------------------------------------------------------


def loss_reduction_terms(g_b, g_c, lr, eta, *, beta=1.0) -> dict:
    """The first-order loss-reduction terms of one SGD step (DBA's Theorem 1).

    A gradient step theta' = theta - lr g on the training loss (1/N) sum_i w_i l_i, with w = 1 on
    clean and ``beta`` on poisoned samples, has g = beta eta g_b + (1 - eta) g_c, where g_b and g_c
    are the gradients of the mean poisoned and the mean clean loss. To first order in lr the mean
    poisoned loss then drops by lr g_b . g and the mean clean loss by lr g_c . g:

    - r_bb = lr ||g_b||^2, r_cc = lr ||g_c||^2, r_bc = lr g_b . g_c (the lr-scaled means over all
      ordered pairs of per-sample gradient products, self-pairs included);
    - predicted_poisoned = beta eta r_bb + (1 - eta) r_bc;
    - predicted_clean = beta eta r_bc + (1 - eta) r_cc;
    - Delta = predicted_poisoned - predicted_clean
      = beta eta r_bb - (1 - eta) r_cc + (1 - eta - beta eta) r_bc, which for beta = 1 is the
      theorem's eta r_bb - (1 - eta) r_cc + (1 - 2 eta) r_bc. Delta > 0 means the poisoned loss
      falls faster (early fitting).

    Parameters
    ----------
    g_b : array-like
        Gradient of the mean poisoned loss with respect to the parameters (any shape; flattened).
    g_c : array-like
        Gradient of the mean clean loss, the same number of entries as ``g_b``.
    lr : float
        The step size, > 0.
    eta : float
        The poison rate |B| / N, in (0, 1).
    beta : float, default=1.0
        The weight of the poisoned samples in the training loss, in [0, 1].

    Returns
    -------
    dict
        Floats ``r_bb``, ``r_cc``, ``r_bc``, ``delta``, ``predicted_poisoned`` and
        ``predicted_clean``, in the loss's units (nats) per step; a reduction is positive when
        the loss decreases.

    Raises
    ------
    TypeError
        If a gradient is not real numbers, or ``lr``, ``eta`` or ``beta`` is not a real number.
    ValueError
        If the gradients are empty, not finite or of different sizes, ``lr`` <= 0, ``eta`` is
        outside (0, 1) or ``beta`` outside [0, 1].

    Examples
    --------
    >>> t = loss_reduction_terms([1.0, 0.0], [0.0, 2.0], lr=0.1, eta=0.25)
    >>> round(t["r_bb"], 6), round(t["r_cc"], 6), t["r_bc"], round(t["delta"], 6)
    (0.1, 0.4, 0.0, -0.275)
    """
    gb = _scores(np.ravel(np.asarray(g_b)), "g_b")
    gc = _scores(np.ravel(np.asarray(g_c)), "g_c")
    if gb.shape != gc.shape:
        raise ValueError(f"g_b and g_c have different sizes ({gb.size} != {gc.size})")
    lr = check_positive(lr, "lr")
    eta = check_fraction(eta, "eta")
    beta = _unit_interval(beta, "beta")
    r_bb = lr * float(gb @ gb)
    r_cc = lr * float(gc @ gc)
    r_bc = lr * float(gb @ gc)
    pred_b = beta * eta * r_bb + (1 - eta) * r_bc
    pred_c = beta * eta * r_bc + (1 - eta) * r_cc
    return {
        "r_bb": r_bb,
        "r_cc": r_cc,
        "r_bc": r_bc,
        "delta": beta * eta * r_bb - (1 - eta) * r_cc + (1 - eta - beta * eta) * r_bc,
        "predicted_poisoned": pred_b,
        "predicted_clean": pred_c,
    }


# -- synchronization ----------------------------------------------------------------------------


def _rows(A, name: str) -> np.ndarray:
    if A is None:
        raise TypeError(f"{name} must be a 2-D array of real numbers, got None")
    arr = np.asarray(A)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def _unit_sum(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """Sum of the rows scaled to unit length (rows of norm 0 dropped) and the rows kept."""
    norms = np.linalg.norm(arr, axis=1)
    keep = norms > 0
    return (arr[keep] / norms[keep, None]).sum(axis=0), int(keep.sum())


def mean_cosine_from_sums(sum_a, n_a, sum_b=None, n_b=None) -> float:
    """Mean pairwise cosine from sums of unit vectors (streaming form of the mean cosine).

    For unit vectors u_1..u_n with sum s: the mean cosine over the n (n - 1) ordered distinct
    pairs is (||s||^2 - n) / (n (n - 1)), because ||s||^2 = sum_{i,j} u_i . u_j and each of the
    n self-pairs contributes 1. Across two sets with sums s_a, s_b the mean over all n_a n_b pairs
    is s_a . s_b / (n_a n_b). So a chunked pass only has to keep one vector per group.

    Parameters
    ----------
    sum_a : array-like of shape (d,)
        Sum of ``n_a`` unit vectors.
    n_a : int
        How many unit vectors ``sum_a`` adds up.
    sum_b : array-like of shape (d,), optional
        Sum of ``n_b`` unit vectors of a second set; None for the within-set mean.
    n_b : int, optional
        How many unit vectors ``sum_b`` adds up (required with ``sum_b``).

    Returns
    -------
    float
        The mean cosine, in [-1, 1] up to round-off; NaN when there is no pair (n_a < 2 within a
        set, or an empty set across).

    Raises
    ------
    TypeError
        If a count is not an integer, or ``n_b`` is missing with ``sum_b``.
    ValueError
        If a count is negative, the sums have different lengths, or ``sum_a`` is not 1-D.
    """
    for value, name in ((n_a, "n_a"), (n_b, "n_b")):
        if name == "n_b" and sum_b is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int (a count), got {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    sa = np.asarray(sum_a, dtype=np.float64)
    if sa.ndim != 1:
        raise ValueError(f"sum_a must be 1-D, got shape {sa.shape}")
    if sum_b is None:
        if n_a < 2:
            return float("nan")
        return float((sa @ sa - n_a) / (n_a * (n_a - 1)))
    sb = np.asarray(sum_b, dtype=np.float64)
    if sb.shape != sa.shape:
        raise ValueError(f"sum_a and sum_b have different shapes ({sa.shape} != {sb.shape})")
    if n_a == 0 or n_b == 0:
        return float("nan")
    return float(sa @ sb / (n_a * n_b))


def mean_pairwise_cosine(A, B=None) -> float:
    """Mean cosine similarity of the rows of ``A`` (distinct pairs), or between ``A`` and ``B``.

    Within a set: mean over the n (n - 1) ordered pairs i != j of cos(a_i, a_j) (the same as over
    the unordered pairs). Across two sets: mean over all n_a n_b pairs cos(a_i, b_j). Computed
    without an n x n matrix, from the sum of the normalized rows (see
    :func:`mean_cosine_from_sums`), in float64, so memory is O(n d) and time O(n d). Rows of norm
    zero have no direction and are left out (they count in no pair).

    Parameters
    ----------
    A : array-like of shape (n_a, d)
        Vectors, one per row (per-sample gradients of a layer, pooled activations ...).
    B : array-like of shape (n_b, d), optional
        A second set; None for the mean within ``A``.

    Returns
    -------
    float
        The mean cosine (dimensionless, in [-1, 1]); NaN when no pair is left (fewer than two
        nonzero rows within a set, or no nonzero row in one of the two sets).

    Raises
    ------
    TypeError
        If ``A`` or ``B`` does not hold real numbers.
    ValueError
        If ``A`` or ``B`` is not 2-D, empty or not finite, or their widths differ.

    Examples
    --------
    >>> mean_pairwise_cosine([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    0.3333333333333333
    """
    a = _rows(A, "A")
    sa, na = _unit_sum(a)
    if B is None:
        return mean_cosine_from_sums(sa, na)
    b = _rows(B, "B")
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"A and B have different widths ({a.shape[1]} != {b.shape[1]})")
    sb, nb = _unit_sum(b)
    return mean_cosine_from_sums(sa, na, sb, nb)


# -- self-influence -----------------------------------------------------------------------------


def self_influence(sq_grad_norms, lrs) -> np.ndarray:
    """Self-influence of each sample summed over checkpoints: SI_i = sum_t lr_t ||g_i(t)||^2.

    ||g_i(t)||^2 is the squared norm of the gradient of sample i's loss with respect to the
    parameters at checkpoint t; lr_t the learning rate in effect when the checkpoint was reached.
    SI_i is, to first order, the summed drop of l_i caused by training on sample i alone.

    Parameters
    ----------
    sq_grad_norms : array-like of shape (T, n)
        Squared per-sample gradient norms, one row per checkpoint (nats^2 per parameter unit^2).
    lrs : array-like of shape (T,)
        The learning rate of each checkpoint, > 0.

    Returns
    -------
    ndarray of shape (n,)
        SI, float64, >= 0 (nats per step, summed).

    Raises
    ------
    TypeError
        If the inputs are not real numbers.
    ValueError
        If ``sq_grad_norms`` is not 2-D, empty, negative or not finite, or ``lrs`` has another
        length or a value <= 0.
    """
    sq = _rows(sq_grad_norms, "sq_grad_norms")
    if np.any(sq < 0):
        raise ValueError("sq_grad_norms must be >= 0 (squared norms)")
    rates = _scores(lrs, "lrs")
    if len(rates) != sq.shape[0]:
        raise ValueError(
            f"sq_grad_norms and lrs have different numbers of checkpoints "
            f"({sq.shape[0]} != {len(rates)})"
        )
    if np.any(rates <= 0):
        raise ValueError("lrs must be > 0")
    return rates @ sq


class SelfInfluence:
    """Running self-influence SI_i = sum_t lr_t ||g_i(t)||^2 of a fixed set of samples.

    Call :meth:`update` once per checkpoint with the squared per-sample gradient norms; the
    sum is :attr:`scores`. Poisoned samples (mislabelled outliers for the clean majority) are
    expected to have the higher self-influence, so :meth:`precision` flags the *highest*
    floor(eta n) scores and :meth:`auroc` ranks by SI (higher = more suspicious).

    Parameters
    ----------
    n : int
        The number of samples tracked, >= 1.

    Attributes
    ----------
    scores : ndarray of shape (n,)
        The accumulated self-influence (float64; zeros before the first update).
    n_checkpoints : int
        How many updates were added.

    Raises
    ------
    TypeError
        If ``n`` is not an integer.
    ValueError
        If ``n`` < 1.
    """

    def __init__(self, n):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"n must be an int, got {n!r}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.scores = np.zeros(int(n))
        self.n_checkpoints = 0

    def update(self, sq_grad_norms, lr) -> np.ndarray:
        """Add lr ||g_i||^2 of one checkpoint to every sample's self-influence.

        Parameters
        ----------
        sq_grad_norms : array-like of shape (n,)
            Squared per-sample gradient norms at the checkpoint, >= 0.
        lr : float
            The learning rate in effect at the checkpoint, > 0.

        Returns
        -------
        ndarray of shape (n,)
            The updated :attr:`scores` (the array itself, not a copy).

        Raises
        ------
        TypeError
            If the norms or ``lr`` are not real numbers.
        ValueError
            If the norms have another length than ``n``, are negative or not finite, or
            ``lr`` <= 0.
        """
        sq = _scores(sq_grad_norms, "sq_grad_norms")
        if len(sq) != len(self.scores):
            raise ValueError(
                f"sq_grad_norms must have length n = {len(self.scores)}, got {len(sq)}"
            )
        if np.any(sq < 0):
            raise ValueError("sq_grad_norms must be >= 0 (squared norms)")
        self.scores += check_positive(lr, "lr") * sq
        self.n_checkpoints += 1
        return self.scores

    def precision(self, poisoned, eta) -> float:
        """Share of poisoned samples among the floor(eta n) highest self-influences.

        Parameters
        ----------
        poisoned : array-like of bool, shape (n,)
            The poisoned mask of the tracked samples.
        eta : float
            The flagged fraction, in (0, 1).

        Returns
        -------
        float
            The precision, in [0, 1] (chance level: the poisoned share of the samples).

        Raises
        ------
        ValueError
            As :func:`isolation_precision` (bad mask length, eta outside (0, 1), nothing
            flagged).
        """
        return isolation_precision(self.scores, poisoned, eta, lower_is_poisoned=False)

    def auroc(self, poisoned) -> float:
        """AUROC of the self-influence as a poison detector (higher SI = more suspicious).

        Parameters
        ----------
        poisoned : array-like of bool, shape (n,)
            The poisoned mask of the tracked samples.

        Returns
        -------
        float
            The AUROC, in [0, 1] (0.5 is chance).

        Raises
        ------
        ValueError
            As :func:`poison_auroc` (bad mask length, a single class).
        """
        return poison_auroc(self.scores, poisoned, lower_is_poisoned=False)
