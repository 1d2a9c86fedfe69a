"""Small random two-class problems from plain arrays (nothing fixed in advance but the seed)."""

from __future__ import annotations

import numpy as np

from backdoor_curves import BackdoorData


def random_backdoor_data(
    seed: int, *, n_clean=120, n_poison=14, n_test=40, d=8, labels=("cat", "dog")
) -> BackdoorData:
    """A BackdoorData built from plain random arrays (nothing fixed in advance but the seed).

    Two overlapping Gaussian classes; the "trigger" adds a fixed offset to the last feature and
    the poisoning/backdoor labels are flipped, so the backdoor is learnable but not free.
    """
    rng = np.random.default_rng(seed)
    a, b = labels

    def draw(n):
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]  # both classes present
        X = rng.normal(size=(n, d)) + 0.9 * (2 * y[:, None] - 1) * rng.uniform(0.5, 1.5, d)
        return X, np.where(y == 1, b, a)

    def trigger(X):
        X = X.copy()
        X[:, -1] += 2.5
        return X

    def flip(y):
        return np.where(y == a, b, a)

    Xc, yc = draw(n_clean)
    Xp, yp = draw(n_poison)
    Xt, yt = draw(n_test)
    return BackdoorData(Xc, yc, trigger(Xp), flip(yp), Xt, yt, trigger(Xt), flip(yt))
