"""Parameter deviation along a learning curve (DESIGN §5, paper 001 Eq. 6).

For a linear model with weights w (intercept excluded):

    rho(beta) = ||w(beta)||_2,   rho_ratio(beta) = rho(beta) / rho(0),
    nu(beta)  = (1 - cos(w(0), w(beta))) / 2  in [0, 1]

(nu = 0: same direction as the clean model; 1/2: orthogonal; 1: reversed). For a kernel SVM the
same quantities use the RKHS inner product <a, b>_K = a^T K b of the signed dual coefficients laid
out over D union P (zeros off the support).

A zero vector has no direction: where w(0) = 0 (e.g. no feature varies over the clean set, so
every linear learner's weights vanish) ``rho_ratio`` and ``nu`` are undefined, and where
w(beta) = 0 so is ``nu``. They are NaN there, never inf, and a :class:`DegenerateDeviationWarning`
says which and why. A vector counts as zero when its norm is at most :data:`ZERO_NORM` times the
largest norm of the vectors compared (a weight vector that should vanish comes out of a solver
at round-off level, 1e-15 relative, in a random direction, and its angle would be noise), or,
with a Gram matrix, when its squared norm a^T K a is below the round-off of that quadratic form,
16 eps |a|^T |K| |a| (an RBF kernel on features so small that every K(x, x') rounds to 1).
"""

from __future__ import annotations

import warnings

import numpy as np

from .._validation import check_real_array

__all__ = ["DegenerateDeviationWarning", "ZERO_NORM", "parameter_deviation"]

#: A parameter vector whose norm is at most this fraction of the largest norm compared is zero
#: (round-off of a vector that vanishes exactly, e.g. on constant features).
ZERO_NORM = 1e-12


class DegenerateDeviationWarning(RuntimeWarning):
    """A parameter vector of the deviation is zero, so its ratio or angle is NaN (undefined)."""


def _finite(value, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float array of one of ``ndims`` dimensions, real and finite, or raise."""
    if np.iscomplexobj(np.asarray(value)):  # a ValueError, as scikit-learn raises
        raise ValueError(f"{name} must hold real numbers: complex data are not supported")
    arr = check_real_array(value, name, "an array of real numbers")
    if arr.ndim not in ndims:
        dims = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {dims}, got an array of shape {arr.shape}")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite numbers (no NaN or inf)")
    return arr


def parameter_deviation(
    W: np.ndarray, w0: np.ndarray, gram: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Norm, norm ratio and angle measure of each row of ``W`` relative to ``w0``.

    Parameters
    ----------
    W : ndarray of shape (n_betas, p)
        Parameter vectors w(beta), one per row.
    w0 : ndarray of shape (p,)
        The reference w(0) (clean model).
    gram : ndarray of shape (p, p), optional
        Gram matrix K of the inner product (symmetric positive semi-definite); the Euclidean
        one when omitted.

    Returns
    -------
    dict with arrays ``rho``, ``rho_ratio`` and ``nu`` of shape (n_betas,)
        ``rho`` >= 0; ``rho_ratio`` is NaN where ``w0`` is zero, ``nu`` (in [0, 1]) where
        ``w0`` or the row is zero (norm at most :data:`ZERO_NORM` times the largest norm); for
        finite inputs nothing else is NaN or inf.

    Raises
    ------
    TypeError
        Naming the argument, if ``W``, ``w0`` or ``gram`` does not hold real numbers.
    ValueError
        Naming the argument, for NaN/inf, a wrong number of dimensions, ``W`` and ``w0`` of
        different lengths or a ``gram`` of the wrong shape.

    Warns
    -----
    DegenerateDeviationWarning
        When ``w0`` or a row of ``W`` is the zero vector to round-off, naming which.
    """
    W = _finite(W, "W", (1, 2))
    W = np.atleast_2d(W)
    w0 = _finite(w0, "w0", (1,))
    if W.shape[1] != w0.shape[0]:
        raise ValueError(f"W has {W.shape[1]} columns but w0 has {w0.shape[0]} entries")
    if gram is not None:
        gram = _finite(gram, "gram", (2,))
        if gram.shape != (w0.shape[0], w0.shape[0]):
            raise ValueError(
                f"gram must be of shape ({w0.shape[0]}, {w0.shape[0]}) (one row and column per "
                f"entry of w0), got {gram.shape}"
            )
    KW = W if gram is None else W @ gram  # rows: K w(beta) (K symmetric)
    sq = np.einsum("ij,ij->i", W, KW)
    rho = np.sqrt(np.maximum(sq, 0.0))
    sq0 = float(w0 @ (w0 if gram is None else gram @ w0))
    rho0 = float(np.sqrt(max(sq0, 0.0)))
    cross = KW @ w0
    floor = ZERO_NORM * max(rho0, float(rho.max(initial=0.0)))
    zero0, zero_rows = rho0 <= floor, rho <= floor
    if gram is not None:  # below the round-off of a^T K a: zero as far as it can be told
        absK = np.abs(gram)
        eps16 = 16.0 * np.finfo(float).eps
        zero0 = zero0 or sq0 <= eps16 * float(np.abs(w0) @ absK @ np.abs(w0))
        zero_rows = zero_rows | (sq <= eps16 * np.einsum("ij,ij->i", np.abs(W), np.abs(W) @ absK))
    if zero0 or zero_rows.any():
        which = "the reference w(0)" if zero0 else f"{int(zero_rows.sum())} row(s) of W"
        warnings.warn(
            f"{which} is the zero vector to round-off (e.g. no feature varies over the clean "
            "training points, or a kernel that rounds to 1 on features of tiny scale), so its "
            "direction is undefined: rho_ratio (where w(0) = 0) and nu are NaN there",
            DegenerateDeviationWarning,
            stacklevel=2,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.clip(cross / (rho * rho0), -1.0, 1.0)
        ratio = rho / rho0
    if zero0:
        ratio = np.full_like(rho, np.nan)
        cos = np.full_like(rho, np.nan)
    cos[zero_rows] = np.nan
    return {"rho": rho, "rho_ratio": ratio, "nu": 0.5 * (1.0 - cos)}
