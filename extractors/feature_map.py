"""The extractors' forward pass as a differentiable torch module (imports torch).

:class:`ImageFeatureMap` is phi: images in [0, 1] -> CNN features, the same computation as
:meth:`~extractors.features.AlexNetFeatures.transform` (grayscale repeated to three channels,
bilinear resize to ``resize x resize``, anti-aliased when shrinking, ImageNet normalization,
the truncated network in ``eval()`` mode), but as an ordinary ``torch.nn.Module`` whose output
carries gradients to its input. It is what explains a convex learner trained on CNN features in
the image's own pixels (paper 001, Fig. 12), by the chain rule

    grad_x f(phi(x)) = J_phi(x)^T grad_phi f,

for instance with :func:`backdoor_curves.explain.input_gradient_map` and ``feature_map=``.
The extractors run this module under ``torch.inference_mode()``: the features of ``transform``
and of this module are the same numbers.

Input layouts (a float tensor of pixel intensities in [0, 1], the project's image layouts):
``(n, H, W)`` grayscale, ``(n, H, W, C)`` channels last, or ``(n, C, H, W)`` channels first
(read as channels first only when the last axis is not of size 1 or 3), C in {1, 3}. Get one
from a fitted extractor with its ``feature_map()`` method; this module imports torch and is
imported only then.
"""

from __future__ import annotations

import torch

__all__ = ["ImageFeatureMap"]


class ImageFeatureMap(torch.nn.Module):
    """phi(x): the preprocessing and the truncated network of a feature extractor.

    Parameters
    ----------
    network : torch.nn.Module
        The truncated network (in ``eval()`` mode), mapping (n, 3, S, S) to (n, n_features).
    resize : int or None
        Side S the images are resized to (None: keep their size).
    mean, std : tuple of float or None
        Per-channel normalization (None: no normalization).

    Notes
    -----
    The module is in ``eval()`` mode and its parameters do not require gradients (the
    extractor is not trained): a backward pass computes gradients for the input only.
    """

    def __init__(self, network, resize, mean, std):
        super().__init__()
        self.network = network.eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.resize = resize
        if mean is None:
            self.register_buffer("mean", None)
            self.register_buffer("std", None)
        else:
            self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.eval()

    @staticmethod
    def channels_first(x):
        """``x`` in layout (n, C, H, W), C in {1, 3}, C-contiguous.

        Channels-last input is copied to a contiguous channels-first tensor, the layout
        :meth:`transform` feeds the network (a convolution's last bits depend on the memory
        layout).

        Parameters
        ----------
        x : torch.Tensor
            Images (n, H, W), (n, H, W, C) or (n, C, H, W), C in {1, 3}.

        Returns
        -------
        torch.Tensor of shape (n, C, H, W)

        Raises
        ------
        TypeError
            If ``x`` is not a torch tensor of real floating-point numbers.
        ValueError
            If ``x`` has no channel axis of size 1 or 3, not 3 or 4 dimensions, an empty image
            axis, or NaN / infinity.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"x must be a torch.Tensor of images (e.g. torch.as_tensor(images)), got "
                f"{type(x).__name__}"
            )
        if not x.is_floating_point():
            raise TypeError(
                f"x must hold real floating-point pixel intensities in [0, 1], got dtype {x.dtype}"
            )
        if x.ndim in (3, 4) and 0 in x.shape[1:]:
            raise ValueError(f"x has an empty image axis: shape {tuple(x.shape)}")
        if x.ndim == 3:
            x = x.unsqueeze(1)
        elif x.ndim == 4 and x.shape[-1] in (1, 3):
            x = x.permute(0, 3, 1, 2).contiguous()
        elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
            raise ValueError(
                "x must be images of shape (n, H, W), (n, H, W, C) or (n, C, H, W) with C in "
                f"{{1, 3}}, got a tensor of shape {tuple(x.shape)}"
            )
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or infinity")
        return x

    def forward(self, x):
        """Features phi(x), shape (n, n_features), in the dtype of the network's parameters.

        Parameters
        ----------
        x : torch.Tensor
            Images with pixel intensities in [0, 1] (see the module's docstring for layouts).

        Returns
        -------
        torch.Tensor of shape (n, n_features)
        """
        return self.features_of(self.channels_first(x))

    def features_of(self, x):
        """Features of images already in layout (n, C, H, W), C in {1, 3} (no layout guess).

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Pixel intensities in [0, 1].

        Returns
        -------
        torch.Tensor of shape (n, n_features)
        """
        param = next(self.network.parameters())
        x = x.to(device=param.device, dtype=param.dtype).expand(-1, 3, -1, -1)
        if self.resize is not None and tuple(x.shape[2:]) != (self.resize, self.resize):
            shrink = x.shape[2] > self.resize or x.shape[3] > self.resize
            x = torch.nn.functional.interpolate(
                x, size=(self.resize, self.resize), mode="bilinear", align_corners=False,
                antialias=shrink,
            )  # fmt: skip
        if self.mean is not None:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.network(x)
