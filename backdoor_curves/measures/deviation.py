"""Parameter deviation along a learning curve (DESIGN §5, paper 001 Eq. 6).

For a linear model with weights w (intercept excluded):

    rho(beta) = ||w(beta)||_2,   rho_ratio(beta) = rho(beta) / rho(0),
    nu(beta)  = (1 - cos(w(0), w(beta))) / 2  in [0, 1]

(nu = 0: same direction as the clean model; 1/2: orthogonal; 1: reversed). For a kernel SVM the
same quantities use the RKHS inner product <a, b>_K = a^T K b of the signed dual coefficients laid
out over D union P (zeros off the support).
"""

from __future__ import annotations

import numpy as np

__all__ = ["parameter_deviation"]


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
        Gram matrix K of the inner product; the Euclidean one when omitted.

    Returns
    -------
    dict with arrays ``rho``, ``rho_ratio`` and ``nu`` of shape (n_betas,).
    """
    W = np.atleast_2d(np.asarray(W, dtype=float))
    w0 = np.asarray(w0, dtype=float)
    if W.shape[1] != w0.shape[0]:
        raise ValueError(f"W has {W.shape[1]} columns but w0 has {w0.shape[0]} entries")
    KW = W if gram is None else W @ gram  # rows: K w(beta) (K symmetric)
    sq = np.einsum("ij,ij->i", W, KW)
    rho = np.sqrt(np.maximum(sq, 0.0))
    rho0 = float(np.sqrt(max(w0 @ (w0 if gram is None else gram @ w0), 0.0)))
    cross = KW @ w0
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.clip(cross / (rho * rho0), -1.0, 1.0)
        ratio = rho / rho0
    return {"rho": rho, "rho_ratio": ratio, "nu": 0.5 * (1.0 - cos)}
