"""The attack-comparison sections of an nn configuration: ``[[attack]]``, ``[dynamics]``,
``[convex]`` (issue 16).

::

    [[attack]]                   # one table per attack; replaces [data]'s trigger keys
    name = "Blend"               # display name (default: the trigger)
    trigger = "blend"            # a name of backdoor_curves.attacks.TRIGGERS
    alpha = 0.2                  # the trigger's parameters

    [dynamics]                   # information-bottleneck dynamics of one training at beta = 1
    layer = "conv2"              # the module whose output is T
    checkpoints = [0, 1, 2, 4, 8]  # finished epochs at which I(X;T), I(T;Y_hat) are estimated
    phases = [1, 4, 8]           # checkpoints of the stealthiness score (default: all but 0)
    noise_std = 0.1              # Gaussian noise gamma on `layer` in the evaluated copy
    max_samples = 300            # rows per group
    classes = [1, 2, 3]          # clean reference classes (default: every class but the target)
    pca_components = 32          # X reduced to this many components (0: the raw image)
    y_hat = "logits"             # or "labels"
    negatives = 64               # InfoNCE negatives K of both critics
    critic_epochs = 30           # epochs of each critic
    random_state = 0

    [convex]                     # the same attacks on a two-class problem, convex learners
    digits = [7, 1]              # the embedded MNIST pair (the first is class -1)
    learner = "logistic"         # a learner kind of the registry
    C = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]   # the regularization grid (alpha for ridge)
    at = 1.0                     # the setting whose slope score the attack table shows
    fraction = 0.1               # poisoned fraction (default: [data] fraction)
    max_backdoor_accuracy = 0.1  # robust region: backdoor accuracy <= this ...
    clean_drop = 0.02            # ... and clean accuracy >= the grid's best - this

The specs are frozen dataclasses; the parsers raise ``ValueError`` naming the key
(``dynamics.layer``, ``convex.C[2]``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._config import check_known_keys
from .._config import config_error as _fail
from ._toml import int_list, is_int, is_number, table, typed

__all__ = [
    "AttackSpec",
    "ConvexSpec",
    "DynamicsSpec",
    "parse_convex",
    "parse_dynamics",
]

_DYNAMICS_KEYS = (
    "layer",
    "checkpoints",
    "phases",
    "noise_std",
    "max_samples",
    "classes",
    "pca_components",
    "y_hat",
    "negatives",
    "critic_epochs",
    "random_state",
)
_CONVEX_KEYS = (
    "digits",
    "learner",
    "C",
    "at",
    "fraction",
    "max_backdoor_accuracy",
    "clean_drop",
)
#: The default regularization grid of ``[convex]``.
DEFAULT_CONVEX_C = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class AttackSpec:
    """One ``[[attack]]`` table: a registered trigger and its parameters.

    Attributes
    ----------
    name : str
        Display name and output label (column ``attack``).
    trigger : str
        A name of :data:`backdoor_curves.attacks.triggers.TRIGGERS`.
    params : dict
        The trigger's configuration parameters, e.g. ``{"alpha": 0.2}``.
    """

    name: str
    trigger: str
    params: dict = field(default_factory=dict)

    def data_keys(self) -> dict:
        """The ``[data]`` keys this attack sets: ``trigger`` and its parameters.

        Returns
        -------
        dict
        """
        return {"trigger": self.trigger, **self.params}


@dataclass(frozen=True)
class DynamicsSpec:
    """The ``[dynamics]`` table: one training at beta = 1 with information dynamics.

    Attributes
    ----------
    layer : str
        The module whose (pooled) output is the representation T.
    checkpoints : tuple of int
        Finished epochs at which the mutual informations are estimated (0: before training);
        the training runs ``max(checkpoints)`` epochs.
    phases : tuple of int
        The checkpoints the stealthiness score averages over.
    noise_std : float
        gamma of the Gaussian noise on ``layer`` in the evaluated copy (0: none).
    max_samples : int
        The largest sample of a group.
    classes : tuple of int or None
        The clean reference classes (None: every class but the target).
    pca_components : int or None
        X reduced to at most this many principal components (None: the raw image).
    y_hat : str
        ``"logits"`` or ``"labels"``.
    negatives : int
        InfoNCE negatives K of both critics.
    critic_epochs : int
        Training epochs of each critic (>= 5: the estimate is the mean of the last five).
    random_state : int
        Seed of the samples, the PCA, the noise and the critics.
    """

    layer: str
    checkpoints: tuple
    phases: tuple
    noise_std: float = 0.0
    max_samples: int = 300
    classes: tuple | None = None
    pca_components: int | None = 32
    y_hat: str = "logits"
    negatives: int = 64
    critic_epochs: int = 30
    random_state: int = 0

    @property
    def epochs(self) -> int:
        """Epochs of the training: the last checkpoint."""
        return max(self.checkpoints)

    def callback(self):
        """A fresh :class:`~backdoor_curves.dynamics.callback.InformationDynamics`.

        Returns
        -------
        InformationDynamics
            With these settings; both critics use ``negatives`` and ``critic_epochs``.
        """
        from ..dynamics.callback import InformationDynamics

        critic = {"n_negatives": self.negatives, "epochs": self.critic_epochs}
        return InformationDynamics(
            self.layer,
            list(self.checkpoints),
            noise_std=self.noise_std,
            max_samples=self.max_samples,
            classes=None if self.classes is None else list(self.classes),
            pca_components=self.pca_components,
            y_hat=self.y_hat,
            xt_options=critic,
            ty_options=critic,
            random_state=self.random_state,
        )


@dataclass(frozen=True)
class ConvexSpec:
    """The ``[convex]`` table: each attack on an embedded two-class MNIST problem.

    Attributes
    ----------
    digits : tuple of int
        The pair of digits.
    learner : str
        A key of :data:`backdoor_curves.learners.LEARNER_KINDS`.
    C : tuple of float
        The regularization grid (the learner's ``C``, or ``alpha`` for ridge).
    at : float
        The grid value whose slope score and accuracies the attack table shows.
    fraction : float or None
        Poisoned fraction (None: the ``[data]`` fraction).
    max_backdoor_accuracy : float
        Robust region: backdoor accuracy at beta = 1 <= this.
    clean_drop : float
        Robust region: clean accuracy >= the grid's best - this.
    """

    digits: tuple = (7, 1)
    learner: str = "logistic"
    C: tuple = DEFAULT_CONVEX_C
    at: float = 1.0
    fraction: float | None = None
    max_backdoor_accuracy: float = 0.1
    clean_drop: float = 0.02

    def make_learner(self, value: float):
        """The learner at one grid value.

        Parameters
        ----------
        value : float
            The regularization (``C``, or ``alpha`` for ridge).

        Returns
        -------
        BaseLearner
        """
        from ..learners import LEARNER_KINDS

        kind = LEARNER_KINDS[self.learner]
        return kind.cls(**{kind.regularization: value})


def parse_dynamics(raw) -> DynamicsSpec:
    """Validate a ``[dynamics]`` table.

    Parameters
    ----------
    raw : Mapping
        The table.

    Returns
    -------
    DynamicsSpec

    Raises
    ------
    ValueError
        Naming the key (``dynamics.<key>``).
    """
    t = table(raw, "dynamics")
    check_known_keys(t, set(_DYNAMICS_KEYS), "dynamics")
    if "layer" not in t:
        raise _fail("dynamics.layer", "missing: the module whose output is T (e.g. 'conv2')")
    kwargs = {"layer": typed(t["layer"], str, "dynamics.layer")}
    kwargs["checkpoints"] = tuple(sorted(int_list(t.get("checkpoints", [0, 1, 2, 3]),
                                                  "dynamics.checkpoints", 0)))  # fmt: skip
    if max(kwargs["checkpoints"]) < 1:
        raise _fail("dynamics.checkpoints", "must hold an epoch >= 1 (the training's length)")
    default_phases = [e for e in kwargs["checkpoints"] if e > 0]
    phases = tuple(sorted(int_list(t.get("phases", default_phases), "dynamics.phases", 0)))
    missing = [e for e in phases if e not in kwargs["checkpoints"]]
    if missing:
        raise _fail("dynamics.phases", f"{missing} are not in dynamics.checkpoints")
    kwargs["phases"] = phases
    if "noise_std" in t:
        value = typed(t["noise_std"], float, "dynamics.noise_std")
        if value < 0:
            raise _fail("dynamics.noise_std", f"must be >= 0, got {value}")
        kwargs["noise_std"] = value
    # critic_epochs: the reported estimate is the mean of the last 5 critic epochs
    for key, minimum in (("max_samples", 2), ("negatives", 1), ("critic_epochs", 5)):
        if key in t:
            if not is_int(t[key]) or t[key] < minimum:
                raise _fail(f"dynamics.{key}", f"must be an int >= {minimum}, got {t[key]!r}")
            kwargs[key] = t[key]
    if "random_state" in t:
        if not is_int(t["random_state"]) or t["random_state"] < 0:
            raise _fail("dynamics.random_state", f"must be an int >= 0, got {t['random_state']!r}")
        kwargs["random_state"] = t["random_state"]
    if "pca_components" in t:
        value = t["pca_components"]
        if not is_int(value) or value < 0:
            raise _fail("dynamics.pca_components", f"must be an int >= 0, got {value!r}")
        kwargs["pca_components"] = value or None
    if "classes" in t:
        classes = int_list(t["classes"], "dynamics.classes", 0)
        if max(classes) > 9:
            raise _fail("dynamics.classes", f"must be classes 0..9, got {list(classes)}")
        kwargs["classes"] = classes
    if "y_hat" in t:
        if t["y_hat"] not in ("logits", "labels"):
            raise _fail("dynamics.y_hat", f"must be 'logits' or 'labels', got {t['y_hat']!r}")
        kwargs["y_hat"] = t["y_hat"]
    return DynamicsSpec(**kwargs)


def parse_convex(raw) -> ConvexSpec:
    """Validate a ``[convex]`` table.

    Parameters
    ----------
    raw : Mapping
        The table.

    Returns
    -------
    ConvexSpec

    Raises
    ------
    ValueError
        Naming the key (``convex.<key>``).
    """
    from ..learners import LEARNER_KINDS

    t = table(raw, "convex")
    check_known_keys(t, set(_CONVEX_KEYS), "convex")
    kwargs: dict = {}
    if "digits" in t:
        digits = t["digits"]
        if (
            not isinstance(digits, list)
            or len(digits) != 2
            or not all(is_int(d) and 0 <= d <= 9 for d in digits)
            or digits[0] == digits[1]
        ):
            raise _fail("convex.digits", f"must be two distinct digits 0..9, got {digits!r}")
        kwargs["digits"] = tuple(digits)
    if "learner" in t:
        if t["learner"] not in LEARNER_KINDS:
            raise _fail(
                "convex.learner", f"must be one of {sorted(LEARNER_KINDS)}, got {t['learner']!r}"
            )
        kwargs["learner"] = t["learner"]
    values = t.get("C", list(DEFAULT_CONVEX_C))
    if not isinstance(values, list) or not values:
        raise _fail("convex.C", f"must be a non-empty list of positive numbers, got {values!r}")
    for i, v in enumerate(values):
        if not is_number(v) or v <= 0:
            raise _fail(f"convex.C[{i}]", f"must be a positive number, got {v!r}")
    if len(set(values)) != len(values):
        raise _fail("convex.C", f"must not repeat a value, got {values!r}")
    kwargs["C"] = tuple(float(v) for v in values)
    at = t.get("at", 1.0 if 1.0 in kwargs["C"] else kwargs["C"][len(values) // 2])
    if not is_number(at) or float(at) not in kwargs["C"]:
        raise _fail("convex.at", f"must be one of convex.C {list(kwargs['C'])}, got {at!r}")
    kwargs["at"] = float(at)
    if "fraction" in t:
        value = typed(t["fraction"], float, "convex.fraction")
        if not 0 < value < 1:
            raise _fail("convex.fraction", f"must lie strictly between 0 and 1, got {value}")
        kwargs["fraction"] = value
    for key in ("max_backdoor_accuracy", "clean_drop"):
        if key in t:
            value = typed(t[key], float, f"convex.{key}")
            if not 0 <= value <= 1:
                raise _fail(f"convex.{key}", f"must lie in [0, 1], got {value}")
            kwargs[key] = value
    return ConvexSpec(**kwargs)
