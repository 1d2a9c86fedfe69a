"""Whole-image additive triggers: Blend (Chen et al. 2017) and SIG (Barni et al. 2019).

Both follow the trigger protocol of :mod:`~backdoor_curves.attacks.triggers`: images with pixel
intensities in [0, 1], laid out ``(n, H, W)`` or ``(n, H, W, C)`` (row 0 at the top, column 0 at
the left); ``apply(images, source_labels, classes)`` returns a new float64 array of the same
shape. Neither depends on the source class, and each image's result depends on that image alone
(never on the batch it is stamped with).

- :class:`Blend`: ``x' = (1 - alpha) x + alpha p`` with a fixed pattern ``p`` (seeded uniform
  noise by default), the same for every channel unless ``p`` has channels of its own.
- :class:`SIG`: a horizontal sinusoid ``v[i, j] = delta sin(2 pi j f / W)`` added to every row
  and channel (``x' = clip(x + v, 0, 1)``), or blended as in paper 002
  (``x' = clip(0.8 x + 0.2 v, 0, 1)``).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_positive, check_seed
from ._images import check_images, source_ranks

__all__ = ["Blend", "SIG"]


def _check_unit_interval(value, name: str) -> float:
    """``value`` as a float in (0, 1]."""
    value = check_positive(value, name)
    if value > 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    return value


# ---------------------------------------------------------------------------- Blend
class Blend:
    """Blend trigger: every image is mixed with one fixed pattern at ratio ``alpha``.

    For every image, pixel ``(i, j)`` and channel ``c``

        x'[i, j, c] = (1 - alpha) x[i, j, c] + alpha p[i, j(, c)],

    clipped to [0, 1] (a convex combination of two values in [0, 1], so the clip only removes
    rounding). With ``pattern="noise"``, ``p`` is ``np.random.default_rng(random_state).random((H,
    W))`` for images of height ``H`` and width ``W``: uniform noise in [0, 1), one value per
    pixel shared by all channels (paper 000's ``Blendnoise``), determined by ``random_state``,
    ``H`` and ``W`` alone. An array ``pattern`` of shape ``(H, W)`` is used as given (broadcast
    over channels); one of shape ``(H, W, C)`` gives each channel its own pattern and applies to
    ``(n, H, W, C)`` images only.

    Parameters
    ----------
    alpha : float, default=0.2
        Blend ratio in (0, 1] (paper 002: 0.2; paper 000: 0.3). 1 replaces the image by the
        pattern.
    pattern : "noise" or array-like of shape (H, W) or (H, W, C), default="noise"
        The pattern ``p``, with values in [0, 1]; copied.
    random_state : int, default=0
        Non-negative seed of the ``"noise"`` pattern (unused for an array pattern).

    Raises
    ------
    TypeError
        If ``alpha`` is not a real number, ``random_state`` not an int, or ``pattern`` neither
        a string nor an array of real numbers.
    ValueError
        If ``alpha`` is not in (0, 1], ``random_state`` < 0, ``pattern`` is a string other than
        ``"noise"``, or an array that is not 2-D or 3-D, is empty, or holds NaN/inf or values
        outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> trig = Blend(alpha=0.25, pattern=np.ones((2, 2)))
    >>> trig.apply(np.zeros((1, 2, 2)), [0], [0, 1])[0].tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """

    def __init__(self, alpha: float = 0.2, pattern="noise", random_state: int = 0):
        self.alpha = _check_unit_interval(alpha, "alpha")
        self.random_state = check_seed(random_state, "random_state")
        if isinstance(pattern, str):
            check_choice(pattern, "pattern", ("noise",))
            self.pattern = pattern
        else:
            # an (H, W) or (H, W, C) pattern, checked as a batch of one (n, H, W(, C)) image
            arr = np.asarray(pattern) if not isinstance(pattern, np.ndarray) else pattern
            if arr.ndim == 0:
                raise TypeError(
                    "pattern must be 'noise' or an array of shape (H, W) or (H, W, C), got "
                    f"{type(pattern).__name__}"
                )
            if arr.ndim not in (2, 3):
                raise ValueError(
                    f"pattern must be 'noise' or an array of shape (H, W) or (H, W, C), got an "
                    f"array of shape {arr.shape}"
                )
            arr = check_images(arr[None], "pattern")[0]
            arr.setflags(write=False)
            self.pattern = arr

    def __repr__(self) -> str:
        pattern = (
            repr(self.pattern)
            if isinstance(self.pattern, str)
            else f"<array of shape {self.pattern.shape}>"
        )
        return f"Blend(alpha={self.alpha!r}, pattern={pattern}, random_state={self.random_state})"

    def pattern_for(self, height: int, width: int) -> np.ndarray:
        """The pattern ``p`` blended into images of the given size.

        Parameters
        ----------
        height, width : int
            Image size ``H x W`` in pixels.

        Returns
        -------
        ndarray of float64, shape (H, W) or (H, W, C)
            For ``pattern="noise"``: ``np.random.default_rng(random_state).random((H, W))``, the
            same for the same ``H`` and ``W``; else the (read-only) array pattern.

        Raises
        ------
        ValueError
            Naming ``pattern`` if an array pattern does not have height ``H`` and width ``W``.
        """
        if isinstance(self.pattern, str):
            return np.random.default_rng(self.random_state).random((height, width))
        if self.pattern.shape[:2] != (height, width):
            raise ValueError(
                f"pattern has shape {self.pattern.shape}, which does not fit images of height "
                f"{height} and width {width}"
            )
        return self.pattern

    def apply(self, images, source_labels, classes) -> np.ndarray:
        """Blend every image with the pattern.

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
            Naming ``pattern`` if an array pattern does not fit the images (another ``H x W``,
            or channels given for grayscale images or not matching ``C``).
        TypeError, ValueError
            As :func:`~backdoor_curves.attacks.triggers.check_images` and
            :func:`~backdoor_curves.attacks.triggers.source_ranks`.
        """
        out = check_images(images)
        source_ranks(source_labels, classes, out.shape[0])
        p = self.pattern_for(*out.shape[1:3])
        if p.ndim == 3 and (out.ndim != 4 or out.shape[3] != p.shape[2]):
            raise ValueError(
                f"pattern has shape {p.shape}, which does not fit images of shape "
                f"{out.shape[1:]}: an (H, W, C) pattern needs (n, H, W, C) images with the "
                "same C"
            )
        if out.ndim == 4 and p.ndim == 2:
            p = p[:, :, None]
        out *= 1.0 - self.alpha
        out += self.alpha * p
        np.clip(out, 0.0, 1.0, out=out)
        return out


# ---------------------------------------------------------------------------- SIG
_COMBINE = ("add", "blend")
_BLEND_WEIGHT = 0.2  # of the signal in SIG's combine="blend" (paper 002: 0.8 img + 0.2 signal)


class SIG:
    """SIG trigger (Barni et al.): a horizontal sinusoidal signal over the whole image.

    For images of width ``W``, the signal is the same for every row ``i`` and channel ``c``:

        v[i, j] = delta * sin(2 pi j f / W),   j = 0, ..., W - 1,

    with ``delta`` in pixel units of [0, 1] (the usual delta = 20 on the 0..255 scale is the
    default 20/255) and ``f = frequency`` periods across the image. Then

    - ``combine="add"`` (Barni et al.):   x' = clip(x + v, 0, 1);
    - ``combine="blend"`` (paper 002's ``signalTrigger``): x' = clip(0.8 x + 0.2 v, 0, 1).

    The trigger does not depend on the source class nor on any seed. SIG is a clean-label
    attack in its paper (poisoned images keep their true label); the poisoning functions of this
    package relabel the poisoned points whatever the trigger.

    Parameters
    ----------
    delta : float, default=20/255
        Amplitude of the signal, in (0, 1].
    frequency : float, default=6
        Number of periods ``f`` across the image width, > 0.
    combine : {"add", "blend"}, default="add"
        How the signal meets the image (the formulas above).

    Raises
    ------
    TypeError
        If ``delta`` or ``frequency`` is not a real number, or ``combine`` not a string.
    ValueError
        If ``delta`` is not in (0, 1], ``frequency`` is not a finite number > 0, or
        ``combine`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> out = SIG(delta=0.5, frequency=1).apply(np.full((1, 1, 4), 0.5), [0], [0, 1])
    >>> np.round(out[0, 0], 12).tolist()
    [0.5, 1.0, 0.5, 0.0]
    """

    def __init__(self, delta: float = 20 / 255, frequency: float = 6.0, combine: str = "add"):
        self.delta = _check_unit_interval(delta, "delta")
        self.frequency = check_positive(frequency, "frequency")
        self.combine = check_choice(combine, "combine", _COMBINE)

    def __repr__(self) -> str:
        return f"SIG(delta={self.delta!r}, frequency={self.frequency!r}, combine={self.combine!r})"

    def signal(self, width: int) -> np.ndarray:
        """The signal of one row, ``v[j] = delta sin(2 pi j f / W)``.

        Parameters
        ----------
        width : int
            Image width ``W`` in pixels.

        Returns
        -------
        ndarray of float64, shape (W,)
            Values in [-delta, delta].
        """
        j = np.arange(width, dtype=np.float64)
        return self.delta * np.sin(2.0 * np.pi * j * self.frequency / width)

    def apply(self, images, source_labels, classes) -> np.ndarray:
        """Add (or blend) the signal into every image and clip to [0, 1].

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
        TypeError, ValueError
            As :func:`~backdoor_curves.attacks.triggers.check_images` and
            :func:`~backdoor_curves.attacks.triggers.source_ranks`.
        """
        out = check_images(images)
        source_ranks(source_labels, classes, out.shape[0])
        v = self.signal(out.shape[2])  # indexed by the column j
        if out.ndim == 4:
            v = v[:, None]
        if self.combine == "blend":
            out *= 1.0 - _BLEND_WEIGHT
            v = _BLEND_WEIGHT * v
        out += v
        np.clip(out, 0.0, 1.0, out=out)
        return out
