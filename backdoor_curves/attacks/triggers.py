"""Backdoor triggers: functions of an image batch that stamp the attacker's pattern (DESIGN §6).

Every trigger works on images with pixel values in [0, 1] (dimensionless intensities, 1 = white),
laid out as ``(n, H, W)`` (grayscale) or ``(n, H, W, C)`` (channels last). Row 0 is the top row,
column 0 the left column.

A trigger exposes one method, ``apply(images, source_labels, classes)``, which returns a *new*
float64 array of the same shape and never mutates its input. ``source_labels`` are the true labels
of the images before any relabelling; a trigger may depend on them (BadNets uses one patch per
source class) or not (the invisible grid is the same for every class). Every built-in trigger
stamps each image on its own: its result does not depend on the batch or the batching.

The registry :data:`TRIGGERS` names every trigger; :func:`make_trigger` builds one by name, and
configuration files, the CLI, the poisoning functions and the feature pipeline accept exactly its
names. A trigger's *configuration parameters* (:func:`trigger_params`: the keys a ``[data]``
table may set next to ``trigger = "..."``) are read from its class's signature:

- ``"badnets"`` -- :class:`BadNetsPatch` (Gu et al.): a seeded uniform-random ``t x t`` patch
  replaces the bottom-right corner, one patch per source class. Parameters: ``size``.
- ``"invisible"`` -- :class:`InvisibleGrid` (Zhong et al.): add a small intensity ``b`` at every
  pixel with even row and even column index, then clip to [0, 1]. Parameters: ``intensity``.
- ``"blend"`` -- :class:`~backdoor_curves.attacks.blend.Blend` (Chen et al.):
  ``(1 - alpha) x + alpha p`` with a fixed (seeded noise) pattern. Parameters: ``alpha``,
  ``pattern``.
- ``"sig"`` -- :class:`~backdoor_curves.attacks.blend.SIG` (Barni et al.): a horizontal sinusoid
  ``delta sin(2 pi j f / W)`` added to the image. Parameters: ``delta``, ``frequency``,
  ``combine``.
- ``"wanet"`` -- :class:`~backdoor_curves.attacks.warping.WaNet` (Nguyen & Tran): a fixed smooth
  warp of the image. Parameters: ``k``, ``strength``, ``noise_mode``.
- ``"dba"`` -- :class:`~backdoor_curves.attacks.dba.DeepBackdoorTrigger` (paper 002, the Deep
  Backdoor Attack): each image blended with its own pattern from gradient descent on chosen deep
  neurons of a clean model (by name: a SmallCNN trained on the embedded MNIST digits).
  Parameters: ``layer``, ``neurons``, ``n_neurons``, ``channel``, ``target_value``, ``steps``,
  ``lr``, ``alpha``.

The trigger's ``random_state`` (its seed) is not a configuration parameter: a ``[data]`` table's
``random_state`` is the poisoning seed, and the trigger keeps its default seed 0.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._validation import check_int, check_positive, check_seed
from ._images import check_images, source_ranks
from .blend import SIG, Blend
from .dba import DeepBackdoorTrigger
from .warping import WaNet

__all__ = [
    "Trigger",
    "BadNetsPatch",
    "InvisibleGrid",
    "Blend",
    "SIG",
    "WaNet",
    "TRIGGERS",
    "make_trigger",
    "trigger_params",
    "check_trigger_fits",
    "check_images",
    "source_ranks",
]


@runtime_checkable
class Trigger(Protocol):
    """Anything with an ``apply(images, source_labels, classes) -> ndarray`` method."""

    def apply(self, images, source_labels, classes) -> np.ndarray:  # pragma: no cover
        """Return triggered copies of ``images``.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            Pixel intensities in [0, 1]; never modified.
        source_labels : array-like of shape (n,)
            True label of each image, before any relabelling.
        classes : array-like of shape (n_classes,)
            All class labels of the task.

        Returns
        -------
        ndarray of float64, same shape as ``images``
            A new array with values in [0, 1].
        """
        ...


# ---------------------------------------------------------------------------- BadNets
class BadNetsPatch:
    """BadNets trigger: a seeded random ``size x size`` patch replaces the bottom-right corner.

    For an image ``x`` of height ``H`` and width ``W`` whose true (source) class has rank ``r``
    among the sorted classes, the triggered image is

        x'[i, j, c] = patch_r[i - (H - t), j - (W - t), c]   if i >= H - t and j >= W - t,
        x'[i, j, c] = x[i, j, c]                             otherwise,

    with ``t = size`` and ``patch_r ~ U[0, 1)`` drawn from ``np.random.default_rng([random_state,
    r])``. The patch therefore depends only on ``random_state`` and ``r`` (never on the order or
    the batching of the images), and colour images get an independent value per channel.

    Parameters
    ----------
    size : int, default=3
        Side ``t`` of the square patch, in pixels.
    random_state : int, default=0
        Non-negative seed of the patches.

    Raises
    ------
    TypeError
        If ``size`` or ``random_state`` is not an int.
    ValueError
        If ``size`` < 1 or ``random_state`` < 0.

    Examples
    --------
    >>> import numpy as np
    >>> trig = BadNetsPatch(size=2, random_state=0)
    >>> out = trig.apply(np.zeros((1, 4, 4)), [5], classes=[3, 5])
    >>> bool(np.all(out[0, 2:, 2:] == trig.patch(1))), float(out[0, :2].sum())
    (True, 0.0)
    """

    def __init__(self, size: int = 3, random_state: int = 0):
        self.size = check_int(size, "size", minimum=1)
        self.random_state = check_seed(random_state, "random_state")

    def __repr__(self) -> str:
        return f"BadNetsPatch(size={self.size}, random_state={self.random_state})"

    def patch(self, rank: int, n_channels: int | None = None) -> np.ndarray:
        """The patch of the class with the given rank among the sorted classes.

        Parameters
        ----------
        rank : int
            Position (0-based) of the source class in the sorted class list.
        n_channels : int or None
            ``None`` for grayscale (shape ``(size, size)``), else ``C`` (shape ``(size, size, C)``).

        Returns
        -------
        ndarray of float64 with values in [0, 1)
            Uniform draws of ``np.random.default_rng([random_state, rank])``: the same for the
            same ``rank`` and ``n_channels``, whatever the images.

        Raises
        ------
        TypeError
            If ``rank`` or ``n_channels`` is not an int.
        ValueError
            If ``rank`` < 0 or ``n_channels`` < 1.
        """
        rank = check_int(rank, "rank", minimum=0)
        rng = np.random.default_rng([self.random_state, rank])
        if n_channels is None:
            return rng.random((self.size, self.size))
        n_channels = check_int(n_channels, "n_channels", minimum=1)
        return rng.random((self.size, self.size, n_channels))

    def apply(self, images, source_labels, classes) -> np.ndarray:
        """Stamp each image with the patch of its source class.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            Pixel intensities in [0, 1].
        source_labels : array-like of shape (n,)
            True label of each image (before relabelling); must be in ``classes``.
        classes : array-like of shape (n_classes,)
            All class labels; a class's patch is chosen by its rank in ``sorted(classes)``.

        Returns
        -------
        ndarray of float64, same shape as ``images``
            A new array; ``images`` is not modified.

        Raises
        ------
        ValueError
            If the patch is larger than the images.
        TypeError, ValueError
            As :func:`check_images` and :func:`source_ranks` (bad images, labels outside
            ``classes``).
        """
        out = check_images(images)
        height, width = out.shape[1:3]
        t = self.size
        if t > height or t > width:
            raise ValueError(
                f"size={t} is larger than the image: images have shape {out.shape[1:]} "
                f"(H={height}, W={width})"
            )
        ranks = source_ranks(source_labels, classes, out.shape[0])
        n_channels = out.shape[3] if out.ndim == 4 else None
        for rank in np.unique(ranks):
            out[ranks == rank, height - t :, width - t :] = self.patch(int(rank), n_channels)
        return out


# ---------------------------------------------------------------------------- invisible grid
class InvisibleGrid:
    """Zhong et al.'s invisible grid trigger: a faint lattice of brightened pixels.

    For every image, channel ``c`` and pixel ``(i, j)``

        x'[i, j, c] = min(1, x[i, j, c] + b)   if i and j are both even (0, 2, 4, ...),
        x'[i, j, c] = x[i, j, c]               otherwise,

    with ``b = intensity`` (an intensity in pixel units of [0, 1]; the paper's b = 75 on the
    0..255 scale is the default 75/255). The trigger is the same for every source class.

    Parameters
    ----------
    intensity : float, default=75/255
        Added brightness ``b``, in (0, 1].

    Raises
    ------
    TypeError
        If ``intensity`` is not a real number.
    ValueError
        If ``intensity`` is not in (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> out = InvisibleGrid(0.5).apply(np.full((1, 3, 3), 0.7), [0], classes=[0, 1])
    >>> out[0].tolist()
    [[1.0, 0.7, 1.0], [0.7, 0.7, 0.7], [1.0, 0.7, 1.0]]
    """

    def __init__(self, intensity: float = 75 / 255):
        intensity = check_positive(intensity, "intensity")
        if intensity > 1.0:
            raise ValueError(f"intensity must lie in (0, 1] (pixel units), got {intensity!r}")
        self.intensity = intensity

    def __repr__(self) -> str:
        return f"InvisibleGrid(intensity={self.intensity!r})"

    @staticmethod
    def grid_mask(height: int, width: int) -> np.ndarray:
        """Boolean mask of the pixels the grid brightens.

        Parameters
        ----------
        height, width : int
            Image size in pixels.

        Returns
        -------
        ndarray of bool, shape (height, width)
            True where the row and the column index are both even.
        """
        rows = np.arange(height) % 2 == 0
        cols = np.arange(width) % 2 == 0
        return rows[:, None] & cols[None, :]

    def apply(self, images, source_labels, classes) -> np.ndarray:
        """Add the grid to every image and clip to [0, 1].

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
            As :func:`check_images` and :func:`source_ranks` (bad images, labels outside
            ``classes``).
        """
        out = check_images(images)
        source_ranks(source_labels, classes, out.shape[0])
        grid = out[:, ::2, ::2]  # a view: even rows and even columns, all channels
        grid += self.intensity
        np.clip(out, 0.0, 1.0, out=out)
        return out


# ---------------------------------------------------------------------------- registry
TRIGGERS: Mapping[str, type] = MappingProxyType(
    {
        "badnets": BadNetsPatch,
        "invisible": InvisibleGrid,
        "blend": Blend,
        "sig": SIG,
        "wanet": WaNet,
        "dba": DeepBackdoorTrigger,
    }
)
"""Trigger names accepted by :func:`make_trigger`, mapped to their classes (read-only).

The one list of triggers: configuration files, the CLI, the poisoning functions and the
``extractors`` pipeline read it (a new trigger is one entry here)."""

#: Constructor parameters that are never configuration keys (a ``[data]`` table's
#: ``random_state`` is the poisoning seed, not the trigger's).
#: DBA's ``batch_size`` and ``threads`` are its generation's speed settings, not the attack (and
#: ``batch_size`` is another key of the feature pipeline's data table).
_NOT_CONFIG = frozenset({"random_state", "batch_size", "threads"})
#: The value types a configuration parameter may have (its default's type).
_CONFIG_TYPES = (bool, int, float, str)


def _check_name(name) -> type:
    valid = sorted(TRIGGERS)
    if not isinstance(name, str):
        raise TypeError(f"trigger must be one of {valid}, got {type(name).__name__}")
    if name not in TRIGGERS:
        raise ValueError(f"trigger must be one of {valid}, got {name!r}")
    return TRIGGERS[name]


def _config_type(param: inspect.Parameter) -> type | None:
    """The TOML type of a constructor parameter, None if it is not a configuration parameter."""
    if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
        return None
    if type(param.default) in _CONFIG_TYPES:
        return type(param.default)
    if param.default is None:  # ``x: T | None = None`` with a scalar T
        kinds = [a for a in typing.get_args(param.annotation) if a is not type(None)]
        if len(kinds) == 1 and kinds[0] in _CONFIG_TYPES:
            return kinds[0]
    return None


def trigger_params(name: str | None = None) -> dict[str, type]:
    """The configuration parameters of a trigger, or of all triggers, with their value types.

    A configuration parameter is a keyword parameter of the trigger class whose default is a
    bool, int, float or str (what a TOML ``[data]`` table can hold), or None with an annotation
    ``T | None`` for one of those types T, other than ``random_state``; its type is its
    default's type, or T (a float parameter also takes ints). Other parameters (an array, a
    model) are set from Python only.

    Parameters
    ----------
    name : str, optional
        A name of :data:`TRIGGERS`; None: the union over all triggers.

    Returns
    -------
    dict of str to type
        Parameter name -> ``bool``, ``int``, ``float`` or ``str``, in signature order (for
        None: by trigger, then signature order).

    Raises
    ------
    TypeError
        If ``name`` is not a string, or (``name=None``) if two triggers give one parameter name
        different types.
    ValueError
        Naming ``trigger`` if the name is unknown.

    Examples
    --------
    >>> trigger_params("wanet")
    {'k': <class 'int'>, 'strength': <class 'float'>, 'noise_mode': <class 'bool'>}
    """
    if name is not None:
        cls = _check_name(name)
        try:  # resolve string annotations (``from __future__ import annotations``)
            params = inspect.signature(cls, eval_str=True).parameters.values()
        except (NameError, TypeError, SyntaxError):
            params = inspect.signature(cls).parameters.values()
        found = {p.name: _config_type(p) for p in params if p.name not in _NOT_CONFIG}
        return {key: kind for key, kind in found.items() if kind is not None}
    merged: dict[str, type] = {}
    for trigger in TRIGGERS:
        for key, kind in trigger_params(trigger).items():
            if merged.setdefault(key, kind) is not kind:
                raise TypeError(
                    f"trigger parameter {key!r} is a {merged[key].__name__} for one trigger and "
                    f"a {kind.__name__} for {trigger!r}: a configuration key needs one type"
                )
    return merged


def make_trigger(name: str, **params: Any) -> Trigger:
    """Build a trigger by name.

    Parameters
    ----------
    name : str
        A name of :data:`TRIGGERS`: "badnets", "invisible", "blend", "sig" or "wanet".
    **params
        Keyword arguments of the trigger's class, e.g. ``size`` and ``random_state`` for
        ``"badnets"``, ``intensity`` for ``"invisible"``, ``alpha`` for ``"blend"``.

    Returns
    -------
    Trigger
        The trigger, an instance of ``TRIGGERS[name]``.

    Raises
    ------
    TypeError
        If ``name`` is not a string, or naming a parameter the trigger does not accept.
    ValueError
        Naming ``trigger`` if the name is unknown (the message lists the valid names).

    Examples
    --------
    >>> make_trigger("badnets", size=4)
    BadNetsPatch(size=4, random_state=0)
    >>> make_trigger("sig", delta=0.1)
    SIG(delta=0.1, frequency=6.0, combine='add')
    """
    cls = _check_name(name)
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    for key in params:
        if key not in accepted:
            raise TypeError(
                f"{key} is not a parameter of the {name!r} trigger; it accepts {accepted}"
            )
    return cls(**params)


def check_trigger_fits(trigger: Trigger, image_shape: tuple[int, ...]) -> None:
    """Check, without real images, that a trigger can stamp images of the given shape.

    Configuration checks call this before any data is loaded. A trigger may define a method
    ``check_image_shape(image_shape)`` (cheap, e.g. when ``apply`` runs a model); otherwise it
    is applied to one blank (all-zero) image of source class 0 of the classes ``[0, 1]``.

    Parameters
    ----------
    trigger : Trigger
        A trigger object.
    image_shape : tuple of int
        ``(H, W)`` or ``(H, W, C)``.

    Raises
    ------
    ValueError
        The trigger's own error, e.g. ``size=5 is larger than the image: ...`` (it names the
        parameter at fault).

    Examples
    --------
    >>> check_trigger_fits(BadNetsPatch(size=3), (28, 28))
    >>> check_trigger_fits(BadNetsPatch(size=30), (28, 28))
    Traceback (most recent call last):
    ...
    ValueError: size=30 is larger than the image: images have shape (28, 28) (H=28, W=28)
    """
    check = getattr(trigger, "check_image_shape", None)
    if callable(check):
        check(tuple(image_shape))
        return
    trigger.apply(np.zeros((1, *image_shape)), [0], [0, 1])
