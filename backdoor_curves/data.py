"""The container every curve, slope and study takes: clean, poisoning and test sets.

Notation (DESIGN §3): D is the clean training set, P the poisoning set (triggered inputs with the
attacker's labels), V the clean test set and V_t the backdoor test set (triggered test inputs with
the attacker's labels). The learners see D with sample weight 1 and P with weight ``beta``.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_betas, check_matrix, check_same_length, check_vector

__all__ = ["BackdoorData"]


class BackdoorData:
    """Clean training set D, poisoning set P, clean test set V and backdoor test set V_t.

    Any two label values are accepted (ints or strings). Internally they are sorted, as
    scikit-learn does, and the second one is encoded as +1, the first as -1.

    Parameters
    ----------
    X_clean, y_clean : array-like of shape (n_clean, n_features), (n_clean,)
        Clean training set D. It must contain both classes.
    X_poison, y_poison : array-like of shape (n_poison, n_features), (n_poison,)
        Poisoning set P: triggered inputs with the attacker's labels. Must not be empty.
    X_test, y_test : array-like of shape (n_test, n_features), (n_test,)
        Clean test set V.
    X_test_bd, y_test_bd : array-like of shape (n_test_bd, n_features), (n_test_bd,)
        Backdoor test set V_t: triggered test inputs with the attacker's labels.
    image_shape : tuple of int, optional
        Shape of one image when the features are flattened pixels (for plots only).

    Attributes
    ----------
    classes : ndarray of shape (2,)
        The two labels, sorted; ``classes[1]`` is encoded as +1.
    n_clean, n_poison, n_features : int
        Sizes of D, P and the feature dimension.

    Raises
    ------
    TypeError
        Naming the argument, if an array is None, sparse, or not numbers (labels: numbers or
        strings).
    ValueError
        Naming the argument, for a wrong shape, NaN/inf, a feature count that differs from
        ``X_clean``'s, labels and inputs of different lengths, an empty P, ``y_clean`` without
        exactly two classes, a label outside ``y_clean``'s classes, or an ``image_shape`` that
        does not hold ``n_features`` values.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = np.where(X[:, 0] > 0, "cat", "dog")
    >>> data = BackdoorData(X[:30], y[:30], X[30:35] + 2, np.full(5, "cat"),
    ...                     X[35:], y[35:], X[35:] + 2, np.full(5, "cat"))
    >>> data.classes.tolist(), data.n_clean, data.n_poison
    (['cat', 'dog'], 30, 5)
    """

    #: The eight arrays, in the constructor's order.
    ARRAYS = (
        "X_clean",
        "y_clean",
        "X_poison",
        "y_poison",
        "X_test",
        "y_test",
        "X_test_bd",
        "y_test_bd",
    )

    def __init__(
        self,
        X_clean,
        y_clean,
        X_poison,
        y_poison,
        X_test,
        y_test,
        X_test_bd,
        y_test_bd,
        *,
        image_shape: tuple[int, ...] | None = None,
    ):
        self.X_clean = check_matrix(X_clean, "X_clean")
        d = self.X_clean.shape[1]
        self.X_poison = check_matrix(X_poison, "X_poison", n_features=d, allow_empty=True)
        if self.X_poison.shape[0] == 0:
            raise ValueError("X_poison is empty: the poisoning set P needs at least one sample")
        self.X_test = check_matrix(X_test, "X_test", n_features=d)
        self.X_test_bd = check_matrix(X_test_bd, "X_test_bd", n_features=d)

        labels = {}
        for name, X, y in [
            ("y_clean", self.X_clean, y_clean),
            ("y_poison", self.X_poison, y_poison),
            ("y_test", self.X_test, y_test),
            ("y_test_bd", self.X_test_bd, y_test_bd),
        ]:
            y = check_vector(y, name)
            check_same_length(X, y, "X_" + name[2:], name)
            labels[name] = y

        classes = np.unique(labels["y_clean"])
        if classes.size != 2:
            raise ValueError(
                f"y_clean must contain exactly two classes (binary task), got {classes.size}: "
                f"{classes.tolist()[:10]}"
            )
        for name, y in labels.items():
            extra = np.setdiff1d(np.unique(y), classes)
            if extra.size:
                raise ValueError(
                    f"{name} has labels {extra.tolist()[:10]} not in y_clean's classes "
                    f"{classes.tolist()}: more than two classes are not supported"
                )
        self.classes = classes
        self.y_clean, self.y_poison = labels["y_clean"], labels["y_poison"]
        self.y_test, self.y_test_bd = labels["y_test"], labels["y_test_bd"]
        if image_shape is not None:
            image_shape = tuple(int(s) for s in image_shape)
            if any(s <= 0 for s in image_shape) or int(np.prod(image_shape)) != d:
                raise ValueError(f"image_shape {image_shape} does not hold {d} features")
        self.image_shape = image_shape

    # ------------------------------------------------------------------ sizes and encodings
    @property
    def n_clean(self) -> int:
        return self.X_clean.shape[0]

    @property
    def n_poison(self) -> int:
        return self.X_poison.shape[0]

    @property
    def n_features(self) -> int:
        return self.X_clean.shape[1]

    def encode(self, y) -> np.ndarray:
        """Map labels to {-1.0, +1.0} (``classes[1]`` -> +1).

        Parameters
        ----------
        y : array-like of shape (n,)
            Labels from ``classes``; not checked: any label other than ``classes[1]``, unknown
            ones included, maps to -1.

        Returns
        -------
        ndarray of float64, shape (n,)
            +1.0 where ``y == classes[1]``, else -1.0.
        """
        return np.where(np.asarray(y) == self.classes[1], 1.0, -1.0)

    @property
    def X_train(self) -> np.ndarray:
        """D followed by P, shape (n_clean + n_poison, n_features)."""
        return np.vstack([self.X_clean, self.X_poison])

    @property
    def y_train(self) -> np.ndarray:
        """Labels of D followed by those of P."""
        return np.concatenate([self.y_clean, self.y_poison])

    @property
    def poison_mask(self) -> np.ndarray:
        """Boolean mask over ``X_train`` that is True on P."""
        return np.r_[np.zeros(self.n_clean, bool), np.ones(self.n_poison, bool)]

    def sample_weight(self, beta: float) -> np.ndarray:
        """Per-sample weights over ``X_train``: 1 on D, ``beta`` on P.

        Parameters
        ----------
        beta : float in [0, 1]
            Weight of every poisoning point (0: the clean model's training set; 1: ordinary
            training on D and P).

        Returns
        -------
        ndarray of float64, shape (n_clean + n_poison,)
            The weights, D first (the layout of ``X_train``).

        Raises
        ------
        ValueError
            If ``beta`` is outside [0, 1], NaN or infinite.
        """
        (beta,) = check_betas(beta, "beta")
        return np.r_[np.ones(self.n_clean), np.full(self.n_poison, beta)]

    def __repr__(self) -> str:
        return (
            f"BackdoorData(n_clean={self.n_clean}, n_poison={self.n_poison}, "
            f"n_test={len(self.y_test)}, n_test_bd={len(self.y_test_bd)}, "
            f"n_features={self.n_features}, classes={self.classes.tolist()})"
        )


def check_backdoor_data(data) -> BackdoorData:
    """Refuse anything but a :class:`BackdoorData` with a ``TypeError`` naming ``data``.

    Parameters
    ----------
    data : object

    Returns
    -------
    BackdoorData
        ``data`` itself.

    Raises
    ------
    TypeError
        If ``data`` is not a BackdoorData.
    """
    if not isinstance(data, BackdoorData):
        raise TypeError(f"data must be a BackdoorData, got {type(data).__name__}")
    return data
