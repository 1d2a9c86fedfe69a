"""WaNet (Nguyen & Tran 2021): an imperceptible backdoor made of a small, fixed image warp.

The trigger follows the protocol of :mod:`~backdoor_curves.attacks.triggers` (images in [0, 1],
``(n, H, W)`` or ``(n, H, W, C)``, a new float64 array out) and reproduces the reference code
(``F.grid_sample(..., align_corners=True)``) in numpy, so the convex side needs no torch:

1. Control points: ``u ~ U[-1, 1)`` of shape ``(2, k, k)`` from
   ``np.random.default_rng(random_state)`` (``rng.random((2, k, k)) * 2 - 1``), normalized by
   its mean absolute value, ``u <- u / mean(|u|)``. Channel 0 moves columns (x), channel 1 rows
   (y).
2. Field: ``u`` upsampled to ``H x W`` by bicubic interpolation with ``align_corners=True``
   semantics (Keys' cubic convolution, a = -0.75, edge samples repeated: torch's
   ``F.interpolate(mode="bicubic", align_corners=True)``), giving ``d`` of shape ``(2, H, W)``.
3. Sampling grid, in grid_sample's normalized coordinates (-1 = first pixel centre, +1 = last):
   ``g_x[i, j] = clamp(-1 + 2 j / (W - 1) + s d_x[i, j] / W, -1, 1)`` and
   ``g_y[i, j] = clamp(-1 + 2 i / (H - 1) + s d_y[i, j] / H, -1, 1)``, with ``s = strength``
   (the reference code divides both by ``H``; its images are square).
4. With ``noise_mode``, each image gets its own extra perturbation ``e ~ U[-1, 1)`` of shape
   ``(2, H, W)``: ``g' = clamp(g + (e_x / W, e_y / H), -1, 1)`` (the reference code's
   ``noise=True``, ``+- 1/h``).
5. Bilinear sampling: ``x'[i, j] = sum of the four pixels around (r, c) weighted by
   (1 - |r - r'|)(1 - |c - c'|)``, at pixel coordinates ``c = (g_x + 1)(W - 1) / 2`` and
   ``r = (g_y + 1)(H - 1) / 2``, the same for every channel. The grid stays inside the image,
   so no padding is ever read.

Computed in pixel coordinates (``c = j + s d_x (W - 1) / (2 W)``, clipped to [0, W - 1]), so
``strength = 0`` returns the images exactly.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .._validation import check_int, check_positive, check_seed
from ._images import check_images, source_ranks

__all__ = ["WaNet", "bicubic_matrix"]

_CUBIC_A = -0.75  # Keys' cubic convolution parameter, as torch's bicubic interpolation


def _cubic_near(t: np.ndarray) -> np.ndarray:
    """Keys' kernel for 0 <= |t| <= 1: ((a + 2)|t| - (a + 3)) t^2 + 1."""
    return ((_CUBIC_A + 2.0) * t - (_CUBIC_A + 3.0)) * t * t + 1.0


def _cubic_far(t: np.ndarray) -> np.ndarray:
    """Keys' kernel for 1 < |t| < 2: ((a |t| - 5a) |t| + 8a) |t| - 4a."""
    return ((_CUBIC_A * t - 5.0 * _CUBIC_A) * t + 8.0 * _CUBIC_A) * t - 4.0 * _CUBIC_A


def bicubic_matrix(n_out: int, n_in: int) -> np.ndarray:
    """The linear map of 1-D bicubic upsampling with ``align_corners=True`` semantics.

    Output sample ``o`` sits at source coordinate ``x = o (n_in - 1) / (n_out - 1)`` (0 when
    ``n_out = 1``); with ``m = floor(x)`` and ``t = x - m`` it is
    ``sum_{q=-1..2} K(t - q) u[clip(m + q, 0, n_in - 1)]`` with Keys' kernel ``K`` (a = -0.75),
    as torch's ``F.interpolate(mode="bicubic", align_corners=True)``. A 2-D upsampling of ``u``
    is ``bicubic_matrix(H, k) @ u @ bicubic_matrix(W, k).T``.

    Parameters
    ----------
    n_out : int
        Output length (>= 1).
    n_in : int
        Input length (>= 1).

    Returns
    -------
    ndarray of float64, shape (n_out, n_in)
        Each row sums to 1.

    Raises
    ------
    TypeError, ValueError
        If ``n_out`` or ``n_in`` is not an int >= 1.
    """
    n_out = check_int(n_out, "n_out", minimum=1)
    n_in = check_int(n_in, "n_in", minimum=1)
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    x = scale * np.arange(n_out, dtype=np.float64)
    m = np.floor(x).astype(np.int64)
    t = x - m
    weights = (_cubic_far(t + 1.0), _cubic_near(t), _cubic_near(1.0 - t), _cubic_far(2.0 - t))
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    for offset, w in zip((-1, 0, 1, 2), weights, strict=True):
        np.add.at(matrix, (rows, np.clip(m + offset, 0, n_in - 1)), w)
    return matrix


def _image_seed(image: np.ndarray) -> int:
    """A 64-bit integer digest of one float64 image (its shape and bytes; -0.0 counts as 0.0)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.asarray(image.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(image + 0.0).tobytes())
    return int.from_bytes(h.digest(), "little")


def _bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``images`` (n, H, W, C) sampled at pixel coordinates ``rows``, ``cols`` in the image.

    ``rows``/``cols`` have shape (H, W) (one grid for all images) or (n, H, W) (one per image).
    """
    n, height, width = images.shape[:3]
    r0 = np.clip(np.floor(rows), 0, max(height - 2, 0)).astype(np.int64)
    c0 = np.clip(np.floor(cols), 0, max(width - 2, 0)).astype(np.int64)
    r1, c1 = np.minimum(r0 + 1, height - 1), np.minimum(c0 + 1, width - 1)
    wr, wc = (rows - r0)[..., None], (cols - c0)[..., None]
    if rows.ndim == 2:
        take = lambda r, c: images[:, r, c]  # noqa: E731
    else:
        batch = np.arange(n)[:, None, None]
        take = lambda r, c: images[batch, r, c]  # noqa: E731
    top = (1.0 - wc) * take(r0, c0) + wc * take(r0, c1)
    bottom = (1.0 - wc) * take(r1, c0) + wc * take(r1, c1)
    return (1.0 - wr) * top + wr * bottom


class WaNet:
    """WaNet trigger: every image is resampled through one fixed, smooth warping field.

    The field, the grid and the sampling are those of the module docstring: ``k x k`` seeded
    control points, bicubic upsampling, ``grid = clamp(identity + s * d / (H, W), -1, 1)``,
    bilinear sampling with ``align_corners=True`` semantics. The field depends only on
    ``random_state``, ``k``, ``strength`` and the image size, so every image of a batch, and of
    every batch, is warped alike; the trigger does not depend on the source class.

    With ``noise_mode=True`` each image's grid also gets a random perturbation of at most one
    pixel step (``U[-1, 1) / H`` in normalized units), drawn from
    ``np.random.default_rng([random_state, seed(image)])``, where ``seed(image)`` is a 64-bit
    BLAKE2b digest of the image's shape and float64 pixel values: the perturbation is a function
    of the image itself, never of its position in a batch or of the batching (two identical
    images get the same one).

    Parameters
    ----------
    k : int, default=4
        Side of the control grid (>= 2; at most the image's height and width).
    strength : float, default=0.5
        Warping strength ``s`` >= 0 (0: the identity).
    noise_mode : bool, default=False
        Add the per-image perturbation.
    random_state : int, default=0
        Non-negative seed of the control points (and of the perturbations).

    Raises
    ------
    TypeError
        If ``k`` or ``random_state`` is not an int, ``strength`` not a real number, or
        ``noise_mode`` not a bool.
    ValueError
        If ``k`` < 2, ``strength`` is negative or not finite, or ``random_state`` < 0.

    Examples
    --------
    >>> import numpy as np
    >>> imgs = np.random.default_rng(0).random((2, 8, 8))
    >>> bool(np.array_equal(WaNet(strength=0.0).apply(imgs, [0, 1], [0, 1]), imgs))
    True
    >>> WaNet().grid(8, 8).shape
    (8, 8, 2)
    """

    def __init__(
        self,
        k: int = 4,
        strength: float = 0.5,
        noise_mode: bool = False,
        random_state: int = 0,
    ):
        self.k = check_int(k, "k", minimum=2)
        self.strength = check_positive(strength, "strength", allow_zero=True)
        if not isinstance(noise_mode, bool | np.bool_):
            raise TypeError(f"noise_mode must be True or False, got {type(noise_mode).__name__}")
        self.noise_mode = bool(noise_mode)
        self.random_state = check_seed(random_state, "random_state")

    def __repr__(self) -> str:
        return (
            f"WaNet(k={self.k}, strength={self.strength!r}, noise_mode={self.noise_mode}, "
            f"random_state={self.random_state})"
        )

    def control_points(self) -> np.ndarray:
        """The normalized control points ``u / mean(|u|)``, ``u ~ U[-1, 1)`` (step 1).

        Returns
        -------
        ndarray of float64, shape (2, k, k)
            Channel 0 displaces columns (x), channel 1 rows (y).
        """
        u = np.random.default_rng(self.random_state).random((2, self.k, self.k)) * 2.0 - 1.0
        return u / np.mean(np.abs(u))

    def field(self, height: int, width: int) -> np.ndarray:
        """The control points upsampled to the image size (step 2): ``d`` of shape (2, H, W).

        Parameters
        ----------
        height, width : int
            Image size in pixels.

        Returns
        -------
        ndarray of float64, shape (2, height, width)
            ``bicubic_matrix(H, k) @ u[c] @ bicubic_matrix(W, k).T`` for each channel ``c``.
        """
        u = self.control_points()
        rows, cols = bicubic_matrix(height, self.k), bicubic_matrix(width, self.k)
        return np.einsum("hk,ckl,wl->chw", rows, u, cols)

    def _pixel_grid(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Row and column coordinates (H, W) of step 3, in pixels, inside the image."""
        d = self.field(height, width)
        i = np.arange(height, dtype=np.float64)[:, None]
        j = np.arange(width, dtype=np.float64)[None, :]
        rows = i + (height - 1) / 2.0 * (self.strength * d[1] / height)
        cols = j + (width - 1) / 2.0 * (self.strength * d[0] / width)
        return np.clip(rows, 0.0, height - 1.0), np.clip(cols, 0.0, width - 1.0)

    def grid(self, height: int, width: int) -> np.ndarray:
        """The sampling grid of step 3 in grid_sample's normalized coordinates.

        Parameters
        ----------
        height, width : int
            Image size in pixels.

        Returns
        -------
        ndarray of float64, shape (height, width, 2)
            ``[..., 0]`` = x (column), ``[..., 1]`` = y (row), in [-1, 1]: the ``grid`` of
            ``torch.nn.functional.grid_sample(images, grid[None], align_corners=True)`` that
            gives :meth:`apply` without ``noise_mode``.
        """
        rows, cols = self._pixel_grid(height, width)
        x = 2.0 * cols / (width - 1) - 1.0 if width > 1 else np.full_like(cols, -1.0)
        y = 2.0 * rows / (height - 1) - 1.0 if height > 1 else np.full_like(rows, -1.0)
        return np.stack([x, y], axis=-1)

    def perturbation(self, image) -> np.ndarray:
        """The ``noise_mode`` perturbation ``e ~ U[-1, 1)`` of one image (step 4).

        Parameters
        ----------
        image : array-like of shape (H, W) or (H, W, C)
            Pixel intensities in [0, 1].

        Returns
        -------
        ndarray of float64, shape (2, H, W)
            ``np.random.default_rng([random_state, seed(image)]).random((2, H, W)) * 2 - 1``;
            channel 0 for x (columns), 1 for y (rows).

        Raises
        ------
        TypeError, ValueError
            As :func:`~backdoor_curves.attacks.triggers.check_images` on ``image[None]``.
        """
        arr = np.asarray(image) if not isinstance(image, np.ndarray) else image
        if arr.ndim not in (2, 3):
            raise ValueError(f"image must have shape (H, W) or (H, W, C), got shape {arr.shape}")
        return self._perturbation(check_images(arr[None], "image")[0])

    def _perturbation(self, img: np.ndarray) -> np.ndarray:
        """:meth:`perturbation` of an image already checked (float64)."""
        rng = np.random.default_rng([self.random_state, _image_seed(img)])
        return rng.random((2, *img.shape[:2])) * 2.0 - 1.0

    def apply(self, images, source_labels, classes) -> np.ndarray:
        """Warp every image.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            Pixel intensities in [0, 1].
        source_labels : array-like of shape (n,)
            True label of each image; checked against ``classes`` but otherwise unused.
        classes : array-like of shape (n_classes,)
            All class labels.

        Returns
        -------
        ndarray of float64, same shape as ``images``
            A new array; ``images`` is not modified.

        Raises
        ------
        ValueError
            Naming ``k`` if the control grid is larger than the image (``k > min(H, W)``).
        TypeError, ValueError
            As :func:`~backdoor_curves.attacks.triggers.check_images` and
            :func:`~backdoor_curves.attacks.triggers.source_ranks`.
        """
        out = check_images(images)
        source_ranks(source_labels, classes, out.shape[0])
        height, width = out.shape[1:3]
        if self.k > min(height, width):
            raise ValueError(
                f"k={self.k} is larger than the image: images have shape {out.shape[1:]} "
                f"(H={height}, W={width})"
            )
        cube = out if out.ndim == 4 else out[..., None]
        rows, cols = self._pixel_grid(height, width)
        if self.noise_mode and len(out):
            e = np.stack([self._perturbation(img) for img in out])  # (n, 2, H, W)
            rows = np.clip(rows + (height - 1) / 2.0 * e[:, 1] / height, 0.0, height - 1.0)
            cols = np.clip(cols + (width - 1) / 2.0 * e[:, 0] / width, 0.0, width - 1.0)
        warped = _bilinear(cube, rows, cols)
        np.clip(warped, 0.0, 1.0, out=warped)
        return warped.reshape(out.shape)
