"""Input-gradient maps: where a (clean or poisoned) model looks in an image (paper 001, Fig. 12).

The map of a fitted learner at an input x is the gradient of its decision function,

    linear models (logistic, ridge, linear SVM):  grad_x f(x) = w                 (any x)
    RBF SVM:  grad_x f(x) = sum_i y_i a_i K(x, x_i) (-2 gamma) (x - x_i),
              f(x) = sum_i y_i a_i exp(-gamma ||x - x_i||^2) + b,

in units of decision value per unit of pixel intensity; positive entries push x towards
``classes_[1]`` (encoded +1), negative ones towards ``classes_[0]``. With a differentiable
feature map phi (a CNN, in torch), f(phi(x)) is differentiated through phi by the chain rule,
grad_x f = J_phi(x)^T grad_phi f, the vector-Jacobian product computed by torch's autograd.

Images: the map is returned in the image's shape; a colour image's map (H, W, 3) is reduced to
one value per pixel by the maximum over the channels of the absolute gradient (the paper's
"maximum value for each channel" mask), so its magnitude, not its sign, is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from .._threads import blas_limit
from .._validation import check_choice, check_matrix
from ..data import check_backdoor_data
from ..learners import RBFSVMLearner
from ..learners.base import BaseLearner, check_learner
from ..utils import require_torch

__all__ = [
    "decision_gradient",
    "input_gradient_map",
    "clean_and_poisoned_maps",
    "reduce_channels",
]

#: How :func:`reduce_channels` turns a colour map into one value per pixel.
CHANNEL_REDUCTIONS = ("absmax", "max", "none")


def decision_gradient(learner: BaseLearner, X) -> np.ndarray:
    """Gradient of a fitted learner's decision function with respect to its input features.

    Parameters
    ----------
    learner : BaseLearner
        A fitted learner with a linear decision function (``coef_``: logistic, ridge, linear
        SVM) or an :class:`~backdoor_curves.RBFSVMLearner`.
    X : array-like of shape (n, n_features)
        Points at which the gradient is taken.

    Returns
    -------
    ndarray of shape (n, n_features)
        Row i is grad_x f(x_i): ``coef_`` for linear models; for the RBF SVM
        ``sum_k y_k a_k K(x_i, x_k) (-2 gamma) (x_i - x_k)`` over the support vectors x_k.
        Units: decision value per unit of feature; positive towards ``classes_[1]``.

    Raises
    ------
    TypeError
        If the learner has neither ``coef_`` nor an RBF kernel.
    sklearn.exceptions.NotFittedError
        Before ``fit``.
    """
    check_learner(learner)
    check_is_fitted(learner, "classes_")
    X = check_matrix(X, "X", n_features=learner.n_features_in_)
    if isinstance(learner, RBFSVMLearner):
        sv = learner.support_vectors_
        coef = learner.dual_coef_full_[learner.support_]  # y_k a_k, in support_vectors_'s order
        with blas_limit():
            weights = learner.kernel(X, sv) * coef  # y_k a_k K(x_i, x_k), shape (n, n_sv)
            # sum_k w_ik (x_i - x_k) = x_i sum_k w_ik - W sv
            return -2.0 * learner.gamma * (X * weights.sum(axis=1)[:, None] - weights @ sv)
    if hasattr(learner, "coef_"):
        return np.tile(np.asarray(learner.coef_, dtype=float), (X.shape[0], 1))
    raise TypeError(
        f"input gradients need a linear learner (coef_) or an RBFSVMLearner, got "
        f"{type(learner).__name__}"
    )


def reduce_channels(gradient: np.ndarray, image_shape=None, channels: str = "absmax"):
    """Reshape a flat gradient to its image and reduce colour channels to one value per pixel.

    Parameters
    ----------
    gradient : ndarray of shape (n_features,)
        A flat gradient (pixels in the layout of the flattened image, channels last).
    image_shape : tuple of int, optional
        ``(H, W)`` or ``(H, W, C)``; None returns ``gradient`` unchanged.
    channels : {"absmax", "max", "none"}, default="absmax"
        For ``(H, W, C)`` images: ``max_c |g[h, w, c]|`` (the paper's mask), ``max_c g[h, w, c]``,
        or keep the channels.

    Returns
    -------
    ndarray
        Shape ``(H, W)`` (or ``(H, W, C)`` with ``channels="none"``; ``(n_features,)`` without
        ``image_shape``).

    Raises
    ------
    ValueError
        If ``image_shape`` does not hold ``n_features`` values or ``channels`` is unknown.
    """
    channels = check_choice(channels, "channels", CHANNEL_REDUCTIONS)
    g = np.asarray(gradient, dtype=float)
    if image_shape is None:
        return g
    shape = tuple(int(s) for s in image_shape)
    if int(np.prod(shape)) != g.size:
        raise ValueError(f"image_shape {shape} does not hold {g.size} values")
    g = g.reshape(shape)
    if len(shape) == 3 and channels != "none":
        g = np.abs(g).max(axis=-1) if channels == "absmax" else g.max(axis=-1)
    return g


def input_gradient_map(
    learner: BaseLearner,
    x,
    *,
    image_shape: Sequence[int] | None = None,
    feature_map: Callable | None = None,
    channels: str = "absmax",
) -> np.ndarray:
    """The gradient of a fitted learner's decision function with respect to the input x.

    Without ``feature_map``, the learner sees x itself (pixels): the map is grad_x f(x)
    (:func:`decision_gradient`; for linear models the weights w, whatever x). With
    ``feature_map`` (a torch callable phi, images -> features, e.g. a CNN up to a layer) the
    learner was trained on phi(x) and the map is

        grad_x f(phi(x)) = J_phi(x)^T grad_phi f(phi(x)),

    a vector-Jacobian product by torch's autograd (the feature-space gradient is the closed
    form above, evaluated at phi(x)).

    Parameters
    ----------
    learner : BaseLearner
        A fitted learner (linear models or RBF SVM).
    x : array-like
        One input: ``(n_features,)`` pixels (or features), an image ``(H, W)`` / ``(H, W, C)``,
        or, with ``feature_map``, whatever single input it takes (a leading batch axis of size 1
        is added before calling it).
    image_shape : tuple of int, optional
        Shape to give the map when ``x`` is flat (e.g. ``data.image_shape``); by default the
        shape of ``x`` when it is not flat.
    feature_map : callable, optional
        A torch function (e.g. ``torch.nn.Module`` in ``eval()`` mode) mapping a float tensor
        batch of shape ``(1, *x.shape)`` to features of shape ``(1, n_features)``; needs the
        ``torch`` extra. For a learner trained on AlexNet / ResNet features, the extractor's
        own forward pass: ``extractor.feature_map()`` (:mod:`extractors.feature_map`).
    channels : {"absmax", "max", "none"}, default="absmax"
        Reduction of colour maps (H, W, C); see :func:`reduce_channels`.

    Returns
    -------
    ndarray
        The map, in decision value per unit of input; shaped as the image (colour channels
        reduced), or flat.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: unsupported learner, wrong number of features, non-finite input.
    """
    check_learner(learner)
    check_is_fitted(learner, "classes_")
    arr = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError("x must hold finite numbers (no NaN or inf)")
    if feature_map is None:
        shape = tuple(image_shape) if image_shape is not None else None
        if shape is None and arr.ndim > 1:
            shape = arr.shape
        flat = arr.reshape(1, -1)
        grad = decision_gradient(learner, flat)[0]
        return reduce_channels(grad, shape, channels)
    grad = _through_feature_map(learner, arr, feature_map)
    shape = tuple(image_shape) if image_shape is not None else arr.shape
    if len(shape) == 1:
        return grad.reshape(shape)
    return reduce_channels(grad.ravel(), shape, channels)


def _through_feature_map(learner, arr: np.ndarray, feature_map) -> np.ndarray:
    """grad_x f(phi(x)) by one backward pass of torch through phi."""
    torch = require_torch()
    x_t = torch.tensor(arr[None], dtype=torch.float32, requires_grad=True)
    with torch.enable_grad():
        phi = feature_map(x_t)
        if phi.ndim != 2 or phi.shape[0] != 1:
            raise ValueError(
                f"feature_map must return features of shape (1, n_features), got {tuple(phi.shape)}"
            )
        features = phi.detach().double().cpu().numpy()
        g_phi = decision_gradient(learner, features)  # (1, n_features), closed form
        (g_x,) = torch.autograd.grad(
            phi, x_t, grad_outputs=torch.as_tensor(g_phi, dtype=phi.dtype, device=phi.device)
        )
    return g_x[0].detach().double().cpu().numpy()


def clean_and_poisoned_maps(
    learner: BaseLearner,
    data,
    x,
    *,
    beta: float = 1.0,
    channels: str = "absmax",
) -> dict[str, np.ndarray]:
    """Input-gradient maps of the clean and the poisoned model at the same input.

    The learner is cloned twice: fitted on D alone (the clean model, beta = 0) and on D with P
    at weight ``beta`` (the poisoned model, beta = 1: ordinary training on the poisoned set).

    Parameters
    ----------
    learner : BaseLearner
        A learner of this package (cloned; not modified): linear models or RBF SVM.
    data : BackdoorData
        The poisoned data set; ``data.image_shape`` shapes the maps.
    x : array-like of shape (n_features,)
        The input, e.g. a triggered test image ``data.X_test_bd[i]``.
    beta : float in (0, 1], default=1.0
        Weight of P in the poisoned model.
    channels : {"absmax", "max", "none"}, default="absmax"
        Reduction of colour maps; see :func:`reduce_channels`.

    Returns
    -------
    dict of str to ndarray
        ``{"clean": map, "poisoned": map}``, each shaped as the image (flat without
        ``data.image_shape``).

    Raises
    ------
    TypeError, ValueError
        Naming the argument: not a learner or BackdoorData, ``beta`` outside (0, 1].
    """
    check_learner(learner)
    check_backdoor_data(data)
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"beta must be a number in (0, 1], got {type(beta).__name__}")
    if not 0.0 < float(beta) <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta}")
    x = check_matrix(np.asarray(x, dtype=float).reshape(1, -1), "x", n_features=data.n_features)
    with blas_limit():
        clean = clone(learner).fit(data.X_clean, data.y_clean)
        poisoned = clone(learner).fit(
            data.X_train, data.y_train, sample_weight=data.sample_weight(float(beta))
        )
    shape = data.image_shape
    return {
        name: input_gradient_map(model, x[0], image_shape=shape, channels=channels)
        for name, model in (("clean", clean), ("poisoned", poisoned))
    }
