"""A training callback estimating I(X; T) and I(T; Y_hat) per group at chosen epochs (paper 000).

At every checkpoint epoch (0 = the untrained model, in ``on_train_begin``) the callback takes a
deep copy of the model in eval mode, with Gaussian noise of std gamma on the chosen layers when
gamma > 0 (:func:`~backdoor_curves.dynamics.noise.layer_representation`), computes the tracked
representation T (the output of ``layer``, globally average-pooled when 4-D) and the logits of
a fixed sample of the training set, and estimates for each group, with a fresh InfoNCE critic
per group x checkpoint x MI (:func:`~backdoor_curves.dynamics.infonce.estimate_mi`):

- I(X; T): critic T(t, x), negatives drawn among the x's (the reference code's orientation), X
  the flattened training image, PCA-reduced to ``pca_components`` per group (once per run);
- I(T; Y_hat): critic T(y_hat, t), negatives among the t's; Y_hat the logits (``y_hat="logits"``,
  with the noise) or the one-hot training labels (``"labels"``: constant within a one-class group,
  so this MI is then 0).

Groups (all-to-one data, target class t; the poisoned rows carry label t):

- ``"target_all"``: every training row labelled t (poisoned and clean);
- ``"target_poisoned"``: the poisoned rows;
- ``"target_clean"``: the clean rows of class t;
- ``"class_<c>"``: the clean rows of each other class c (or of ``classes`` only).

Each group is a seeded sample of at most ``max_samples`` of its rows (by default the same
number for every group: ``equal_size``), drawn once at ``on_train_begin`` and kept for every
checkpoint. The model, its gradients, its hooks' random
generators and torch's and numpy's global random states are left as found (the critics and the
noise use their own seeded generators), so a training with the callback ends with the same
parameters, bit for bit, as one without it.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._validation import check_choice, check_int, check_positive, check_seed
from .infonce import MIEstimate, estimate_mi, pca_reduce
from .noise import layer_representation, resolve_modules

__all__ = [
    "DEFAULT_TY_OPTIONS",
    "DEFAULT_XT_OPTIONS",
    "DYNAMICS_COLUMNS",
    "InformationDynamics",
    "TARGET_GROUPS",
    "class_group",
]

#: The columns of :attr:`InformationDynamics.history`.
DYNAMICS_COLUMNS = ["epoch", "group", "mi_xt", "mi_ty", "n", "seconds"]
#: The names of the target-class groups.
TARGET_GROUPS = ("target_all", "target_poisoned", "target_clean")
#: Settings of the I(X; T) critic at CPU scale (a few hundred samples per group): the estimate
#: levels off by about epoch 40 (3 batches an epoch for 200 samples). Paper 000: K 512, batch
#: 128, lr 3e-4, 350 epochs over 4,500 samples per group.
DEFAULT_XT_OPTIONS = {"n_negatives": 128, "epochs": 60, "batch_size": 64, "hidden": 64,
                      "lr": 3e-3}  # fmt: skip
#: Settings of the I(T; Y_hat) critic (paper 000: K 256, batch 512, lr 5e-4, 250 epochs).
DEFAULT_TY_OPTIONS = {"n_negatives": 128, "epochs": 60, "batch_size": 64, "hidden": 64,
                      "lr": 3e-3}  # fmt: skip


def class_group(c: int) -> str:
    """The group name of the clean rows of class ``c``: ``"class_<c>"``.

    Parameters
    ----------
    c : int
        A class index.

    Returns
    -------
    str
    """
    return f"class_{int(c)}"


def _options(options, defaults: dict, name: str) -> dict:
    if options is None:
        return dict(defaults)
    if not isinstance(options, Mapping):
        raise TypeError(f"{name} must be a dict of estimate_mi options, got {type(options)}")
    bad = {"a", "b", "random_state"} & set(options)
    if bad:
        raise ValueError(f"{name} must not set {sorted(bad)} (the callback sets them)")
    return {**defaults, **options}


def _layer_names(names):
    """``noise_layers`` as None, a name, or a non-empty list of names (checked, not resolved)."""
    if names is None or isinstance(names, str):
        return names
    if not isinstance(names, Sequence):
        raise TypeError(f"noise_layers must be a module name or a list of them, got {names!r}")
    if not names:
        raise ValueError("noise_layers must not be empty (None: the tracked layer)")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"noise_layers must hold module names (strings), got {name!r}")
    return list(names)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class InformationDynamics:
    """Training callback: I(X; T) and I(T; Y_hat) per group at chosen epochs (module docstring).

    Parameters
    ----------
    layer : str
        Name of the module whose output is T (e.g. ``"conv2"`` of ``SmallCNN``,
        ``"layer4"`` of a ResNet).
    checkpoints : sequence of int
        Finished-epoch counts at which to estimate (0: before training), each >= 0.
    noise_std : float, default=0.0
        gamma >= 0 of the Gaussian noise added to ``noise_layers`` in the evaluated copy
        (paper 000: 0.4; 0.1 in its rebuttal).
    noise_layers : str or sequence of str, optional
        Modules that get the noise; None for ``[layer]``.
    max_samples : int, default=500
        The largest sample of a group, >= 2.
    equal_size : bool, default=True
        Draw the same number of rows, min(max_samples, size of the smallest group), for every
        group. The InfoNCE estimate depends on the sample size (the critic is scored on the
        pairs it trains on, and a batch cannot exceed the sample), so groups of unequal sizes
        would differ in MI for that reason alone.
    classes : sequence of int, optional
        The clean classes tracked (None: every class but the target).
    pca_components : int or None, default=64
        X is reduced to at most this many principal components per group (None: the raw
        flattened image).
    y_hat : {"logits", "labels"}, default="logits"
        What Y_hat is.
    xt_options, ty_options : dict, optional
        :func:`~backdoor_curves.dynamics.infonce.estimate_mi` options of the two estimates,
        over :data:`DEFAULT_XT_OPTIONS` and :data:`DEFAULT_TY_OPTIONS`.
    batch_size : int, default=256
        Images per forward pass of the model, >= 1.
    random_state : int, default=0
        Seed of the group samples, the PCA, the noise and the critics.

    Attributes
    ----------
    samples : dict
        Group name -> the training-row indices of its sample (after ``on_train_begin``).
    estimates : dict
        (epoch, group, "xt" or "ty") -> the :class:`~backdoor_curves.dynamics.infonce.MIEstimate`.

    Raises
    ------
    TypeError, ValueError
        Naming the argument of the wrong kind or value; at ``on_train_begin``, naming ``data``
        when it has no target class (all-to-all), ``classes`` when one is not a clean class,
        ``layer`` when the model has no such module, or a group with fewer than 2 rows.
    """

    def __init__(
        self,
        layer: str,
        checkpoints: Sequence[int],
        *,
        noise_std: float = 0.0,
        noise_layers=None,
        max_samples: int = 500,
        equal_size: bool = True,
        classes: Sequence[int] | None = None,
        pca_components: int | None = 64,
        y_hat: str = "logits",
        xt_options: Mapping | None = None,
        ty_options: Mapping | None = None,
        batch_size: int = 256,
        random_state: int = 0,
    ):
        if not isinstance(layer, str):
            raise TypeError(f"layer must be a module name (str), got {type(layer).__name__}")
        self.layer = layer
        if isinstance(checkpoints, numbers.Integral) and not isinstance(checkpoints, bool):
            checkpoints = [checkpoints]
        if not isinstance(checkpoints, Sequence) or not checkpoints:
            raise ValueError(f"checkpoints must be a non-empty list of epochs, got {checkpoints!r}")
        self.checkpoints = tuple(sorted({check_int(e, "checkpoints", 0) for e in checkpoints}))
        self.noise_std = check_positive(noise_std, "noise_std", allow_zero=True)
        self.noise_layers = _layer_names(noise_layers)
        self.max_samples = check_int(max_samples, "max_samples", 2)
        if not isinstance(equal_size, bool):
            raise TypeError(f"equal_size must be a bool, got {type(equal_size).__name__}")
        self.equal_size = equal_size
        self.classes = None if classes is None else [check_int(c, "classes", 0) for c in classes]
        self.pca_components = (
            None if pca_components is None else check_int(pca_components, "pca_components", 1)
        )
        self.y_hat = check_choice(y_hat, "y_hat", ("logits", "labels"))
        self.xt_options = _options(xt_options, DEFAULT_XT_OPTIONS, "xt_options")
        self.ty_options = _options(ty_options, DEFAULT_TY_OPTIONS, "ty_options")
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.random_state = check_seed(random_state)
        self.samples: dict = {}
        self.estimates: dict = {}
        self._rows: list = []
        self._ready = False

    # the callback protocol ------------------------------------------------------------------

    def on_train_begin(self, state) -> None:
        """Draw the group samples, reduce their X once, and estimate at epoch 0 if asked.

        Parameters
        ----------
        state : TrainState
            The trainer's state (``model``, ``data``, ``epoch``).
        """
        self._rows, self.estimates = [], {}
        self._setup(state)
        if state.epoch in self.checkpoints:
            self._record(state)

    def on_epoch_end(self, state) -> None:
        """Estimate both MIs per group when ``state.epoch`` is a checkpoint.

        Parameters
        ----------
        state : TrainState
            The trainer's state; ``state.epoch`` counts finished epochs.
        """
        if not self._ready:
            self._setup(state)
        if state.epoch in self.checkpoints:
            self._record(state)

    def on_train_end(self, state) -> None:
        """Nothing to finish (the estimates are recorded at their checkpoints).

        Parameters
        ----------
        state : TrainState
            The trainer's final state.
        """

    # results ---------------------------------------------------------------------------------

    @property
    def history(self) -> pd.DataFrame:
        """One row per checkpoint and group (a property, as ``Tracker.history``).

        Returns
        -------
        pandas.DataFrame
            Columns :data:`DYNAMICS_COLUMNS`: ``epoch``, ``group``, ``mi_xt`` and ``mi_ty``
            (nats, InfoNCE estimates, each <= log(K + 1) of its critic), ``n`` (the group's
            sample size) and ``seconds`` (both estimates of the row).
        """
        return pd.DataFrame(self._rows, columns=DYNAMICS_COLUMNS)

    # internals -------------------------------------------------------------------------------

    def _setup(self, state) -> None:
        resolve_modules(state.model, [self.layer], name="layer")
        if self.noise_layers is not None:
            resolve_modules(state.model, self.noise_layers, name="noise_layers")
        data = state.data
        target = getattr(data, "target", None)
        if target is None:
            raise ValueError(
                "data has no target class (all-to-all poisoning): InformationDynamics needs "
                "all-to-one data"
            )
        y = np.asarray(data.y_train)
        poisoned = np.asarray(data.poisoned, dtype=bool)
        others = [c for c in range(int(data.n_classes)) if c != target]
        classes = others if self.classes is None else self.classes
        for c in classes:
            if c not in others:
                raise ValueError(f"classes: {c} is not a clean class (classes {others})")
        masks = {
            "target_all": y == target,
            "target_poisoned": poisoned,
            "target_clean": (y == target) & ~poisoned,
        }
        masks.update({class_group(c): (y == c) & ~poisoned for c in classes})
        rng = np.random.default_rng(self.random_state)
        members = {name: np.flatnonzero(mask) for name, mask in masks.items()}
        for name, rows in members.items():
            if len(rows) < 2:
                raise ValueError(f"group {name!r} has {len(rows)} training row(s); 2 are needed")
        smallest = min(len(rows) for rows in members.values())
        self.samples = {}
        for name, rows in members.items():
            size = min(self.max_samples, smallest if self.equal_size else len(rows))
            if len(rows) > size:
                rows = np.sort(rng.choice(rows, size, replace=False))
            self.samples[name] = rows.astype(np.int64)
        union = np.unique(np.concatenate(list(self.samples.values())))
        self._union = union
        self._X = data.to_nchw(np.asarray(data.X_train)[union])
        position = {row: k for k, row in enumerate(union)}
        self._where = {g: np.array([position[r] for r in rows]) for g, rows in self.samples.items()}
        flat = self._X.reshape(len(union), -1).astype(np.float64)
        self._x = {}
        for k, (g, where) in enumerate(self._where.items()):
            xg = flat[where]
            if self.pca_components is not None:
                xg = pca_reduce(xg, self.pca_components, _seed(self.random_state, 1, k))
            self._x[g] = xg
        self._labels = np.eye(int(data.n_classes))[y[union]]
        self._ready = True

    def _record(self, state) -> None:
        epoch = int(state.epoch)
        T, logits = layer_representation(
            state.model,
            self._X,
            self.layer,
            batch_size=self.batch_size,
            noise_std=self.noise_std,
            noise_layers=self.noise_layers,
            seed=_seed(self.random_state, 2, epoch),
        )
        y_hat = logits if self.y_hat == "logits" else self._labels
        for k, (group, where) in enumerate(self._where.items()):
            start = time.perf_counter()
            t = T[where]
            xt = self._estimate(t, self._x[group], self.xt_options, epoch, k, 0)
            ty = self._estimate(y_hat[where], t, self.ty_options, epoch, k, 1)
            self.estimates[(epoch, group, "xt")] = xt
            self.estimates[(epoch, group, "ty")] = ty
            self._rows.append(
                {
                    "epoch": epoch,
                    "group": group,
                    "mi_xt": xt.value,
                    "mi_ty": ty.value,
                    "n": len(where),
                    "seconds": time.perf_counter() - start,
                }
            )

    def _estimate(self, a, b, options, epoch: int, group: int, which: int) -> MIEstimate:
        seed = _seed(self.random_state, 3, epoch, group, which)
        return estimate_mi(a, b, **options, random_state=seed)
